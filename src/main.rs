//! `switchboard`: parse flags, load the configuration, start logging, run the server; or,
//! with a subcommand (`user`, `room`, `group`), run one admin command against a running
//! server (`switchboard::cli`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use switchboard::{cli, Application, Config};
use tracing_subscriber::EnvFilter;

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Switchboard: an actor-based, XMPP-flavoured realtime chat server.
#[derive(Parser)]
#[command(name = "switchboard", version, about, long_about = None, after_help = ENVIRONMENT)]
struct Flags {
    /// Listen address (default 127.0.0.1:7070; config server.bind).
    #[arg(long, value_name = "ADDR")]
    bind: Option<String>,
    /// Data directory for the database and generated secrets (default ./data).
    #[arg(long, global = true, value_name = "DIR")]
    data: Option<PathBuf>,
    /// TOML configuration (see config/default.toml for every key).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(flatten)]
    connection: cli::Connection,
    /// An admin command for a running server; without one, the server runs.
    #[command(subcommand)]
    command: Option<cli::Command>,
}

const ENVIRONMENT: &str = "Every config key can also be set as SWITCHBOARD_<SECTION>_<KEY>, e.g. \
SWITCHBOARD_ADMIN_PASSWORD, SWITCHBOARD_SERVER_DOMAIN. Log level: RUST_LOG or log.level.";

fn main() -> ExitCode {
    let flags = Flags::parse();
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
    if let Some(command) = flags.command {
        return cli::run(command, flags.connection, &config);
    }
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.log.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).init();

    let system = actix_web::rt::System::new();
    let outcome = system.block_on(async move {
        let bind = config.server.bind.clone();
        let app = Application::build(config).await.map_err(|e| e.to_string())?;
        if let Some(path) = &app.generated_admin_password {
            eprintln!("switchboard: first start: the admin password was generated and written to {}", path.display());
        }
        if let Some(path) = &app.generated_xmpp_cert {
            eprintln!(
                "switchboard: generated a self-signed certificate for XMPP STARTTLS: {} (clients must trust it)",
                path.display()
            );
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
