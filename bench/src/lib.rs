//! switchboard-bench: a load generator for Switchboard (and any RFC 7395 XMPP server), over
//! loopback only. It sets up its own accounts, drives one scenario, and reports figures as
//! a table and as JSON. Speed is measured here, never asserted by a timed test.

pub mod args;
pub mod client;
pub mod http;
pub mod report;
pub mod scenarios;
pub mod server;
pub mod target;
pub mod tcp;
pub mod xmpp;

use std::fmt;

use args::{Options, Scenario};
use report::Report;
use scenarios::Context;

/// Why a run could not go on.
#[derive(Debug)]
pub enum BenchError {
    /// `--help`: the help text to print.
    Help(String),
    /// The command line is wrong (exit status 2).
    Usage(String),
    /// Nothing answers at the server's address.
    Unreachable(String),
    /// The server answered and refused (login, account, join).
    Refused(String),
    /// The server misbehaved or the connection broke.
    Server(String),
    /// A file-descriptor or port limit of this machine.
    Limits(String),
}

impl fmt::Display for BenchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BenchError::Help(text) => f.write_str(text),
            BenchError::Usage(m) => write!(f, "{m}\n(switchboard-bench --help lists the scenarios and options)"),
            BenchError::Unreachable(m) | BenchError::Refused(m) | BenchError::Server(m) | BenchError::Limits(m) => {
                f.write_str(m)
            }
        }
    }
}

impl std::error::Error for BenchError {}

/// `n` random bytes as hex.
pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).expect("the OS random source");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs one scenario to its report, then removes what it created on the server.
pub async fn run(opts: Options) -> Result<Report, BenchError> {
    let json = opts.json.clone();
    let mut ctx = Context::new(opts).await?;
    let scenario = ctx.opts.scenario.clone();
    let result = match scenario {
        Scenario::Idle { conns, per_user, hold } => scenarios::idle::run(&mut ctx, conns, per_user, hold).await,
        Scenario::Login { logins } => scenarios::login::run(&mut ctx, logins).await,
        Scenario::Storm { clients } => scenarios::storm::run(&mut ctx, clients).await,
        Scenario::Pairs { pairs, messages, receivers } => {
            scenarios::pairs::run(&mut ctx, pairs, messages, receivers).await
        }
        Scenario::Room { occupants, senders, messages } => {
            scenarios::room::run(&mut ctx, occupants, senders, messages).await
        }
        Scenario::Ozeki { senders, messages, batch } => scenarios::ozeki::run(&mut ctx, senders, messages, batch).await,
        Scenario::Webhooks { senders, messages } => scenarios::webhooks::run(&mut ctx, senders, messages).await,
    };
    let mut report = match result {
        Ok(report) => report,
        Err(e) => {
            ctx.cleanup(&mut Report::new("cleanup")).await;
            return Err(e);
        }
    };
    ctx.cleanup(&mut report).await;
    if let Some(path) = json {
        let text = serde_json::to_string_pretty(&report.to_json()).expect("a report serialises");
        std::fs::write(&path, text + "\n")
            .map_err(|e| BenchError::Usage(format!("cannot write --json {}: {e}", path.display())))?;
    }
    Ok(report)
}

/// The command line, start to end: parse, run on a multi-threaded runtime, print.
/// Returns the process exit status.
pub fn main_with(args: &[String]) -> i32 {
    let opts = match args::parse(args, std::env::var("SWITCHBOARD_ADMIN_PASSWORD").ok()) {
        Ok(opts) => opts,
        Err(BenchError::Help(text)) => {
            print!("{text}");
            return 0;
        }
        Err(e) => {
            eprintln!("switchboard-bench: {e}");
            return 2;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("switchboard-bench: cannot start the runtime: {e}");
            return 1;
        }
    };
    match runtime.block_on(run(opts)) {
        Ok(report) => {
            print!("{}", report.table());
            if report.complete {
                0
            } else {
                3
            }
        }
        Err(e) => {
            eprintln!("switchboard-bench: {e}");
            match e {
                BenchError::Usage(_) => 2,
                _ => 1,
            }
        }
    }
}
