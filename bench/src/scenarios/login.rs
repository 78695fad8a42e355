//! `login` (and `xmpp login`): N accounts sign in at once (`CONNECT_CONCURRENCY` at a time)
//! and hold their connections until all are in. On `/ws` each uses a token fetched before
//! the measured phase (so argon2 is not in it); over XMPP each does the whole stream
//! set-up, SASL (SCRAM-SHA-1 when offered, or `--mechanism`) and resource binding. Reports
//! logins per second and the server's CPU per login.

use std::time::Instant;

use futures_util::stream::{self, StreamExt, TryStreamExt};

use crate::args::Protocol;
use crate::client::{open_ws, Ws};
use crate::report::Report;
use crate::scenarios::{Context, CONNECT_CONCURRENCY};
use crate::server::tokens;
use crate::BenchError;

pub async fn run(ctx: &mut Context, logins: usize) -> Result<Report, BenchError> {
    let protocol = ctx.opts.protocol;
    let mut report = Report::new(if protocol == Protocol::Xmpp { "xmpp login" } else { "login" });
    report.parameter("logins", logins);
    let accounts = ctx.accounts(logins).await?;
    let tokens = match protocol {
        Protocol::Json => Some(tokens(&ctx.opts.server, &accounts).await?),
        Protocol::Xmpp => None,
    };
    if let Some(mechanism) = ctx.opts.xmpp.mechanism.filter(|_| protocol == Protocol::Xmpp) {
        report.parameter("mechanism", format!("{mechanism:?}"));
    }
    let before = ctx.server_sample();
    let started = Instant::now();
    let clients: Vec<Ws> = match tokens {
        Some(tokens) => {
            stream::iter(tokens.into_iter().enumerate())
                .map(|(i, token)| {
                    let server = ctx.opts.server.clone();
                    async move { open_ws(&server, &format!("/ws?token={token}"), None, i).await }
                })
                .buffer_unordered(CONNECT_CONCURRENCY)
                .try_collect()
                .await?
        }
        None => ctx.open_clients(&accounts, 0).await?,
    };
    let elapsed = started.elapsed().as_secs_f64();
    report.figure("logins", clients.len() as f64, "");
    report.figure("elapsed", elapsed, "s");
    report.figure("logins_per_second", clients.len() as f64 / elapsed.max(1e-9), "/s");
    ctx.add_server_cost(&mut report, before, clients.len() as f64, "server_cpu_per_login");
    stream::iter(clients)
        .for_each_concurrent(256, |mut ws| async move {
            let _ =
                tokio::time::timeout(std::time::Duration::from_secs(2), futures_util::SinkExt::close(&mut ws)).await;
        })
        .await;
    Ok(report)
}
