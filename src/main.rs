//! `switchboard`: parse flags, load the configuration, start logging, run the server.

use std::path::PathBuf;
use std::process::ExitCode;

use switchboard::{Application, Config};
use tracing_subscriber::EnvFilter;

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const USAGE: &str = "\
Usage: switchboard [--bind ADDR] [--data DIR] [--config FILE]

  --bind ADDR     listen address (default 127.0.0.1:7070; config server.bind)
  --data DIR      data directory for the database and generated secrets (default ./data)
  --config FILE   TOML configuration (see config/default.toml for every key)

Every config key can also be set as SWITCHBOARD_<SECTION>_<KEY>, e.g.
SWITCHBOARD_ADMIN_PASSWORD, SWITCHBOARD_SERVER_DOMAIN. Log level: RUST_LOG or log.level.";

struct Flags {
    bind: Option<String>,
    data: Option<PathBuf>,
    config: Option<PathBuf>,
}

fn parse_flags(mut args: impl Iterator<Item = String>) -> Result<Flags, String> {
    let mut flags = Flags { bind: None, data: None, config: None };
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let mut value = || inline.clone().or_else(|| args.next()).ok_or_else(|| format!("{name} needs a value"));
        match name.as_str() {
            "--bind" => flags.bind = Some(value()?),
            "--data" => flags.data = Some(PathBuf::from(value()?)),
            "--config" => flags.config = Some(PathBuf::from(value()?)),
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(flags)
}

fn main() -> ExitCode {
    let flags = match parse_flags(std::env::args().skip(1)) {
        Ok(flags) => flags,
        Err(message) => {
            if message.is_empty() {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            eprintln!("switchboard: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mut config = match Config::load(flags.config.as_deref(), std::env::vars()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("switchboard: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(bind) = flags.bind {
        config.server.bind = bind;
    }
    if let Some(data) = flags.data {
        config.server.data_dir = data;
    }
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.log.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).init();

    let system = actix_web::rt::System::new();
    let outcome = system.block_on(async move {
        let bind = config.server.bind.clone();
        let app = Application::build(config).await?;
        if let Some(path) = &app.generated_admin_password {
            eprintln!("switchboard: first start: the admin password was generated and written to {}", path.display());
        }
        tracing::info!(%bind, port = app.port(), "switchboard is listening");
        app.run_until_stopped().await.map_err(|e| e.to_string())
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("switchboard: {e}");
            ExitCode::FAILURE
        }
    }
}
