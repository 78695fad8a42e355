//! `idle` (and `xmpp idle`): N authenticated `/ws` (or XMPP) connections, opened at
//! `--rate` per second, held, then closed. Reports the server's resident memory before, while holding and after closing,
//! the bytes each held connection costs (the server's, and the kernel's for TCP, which
//! counts both ends on loopback), and the server's CPU per login. With several `--server`
//! nodes, connection `i` goes to node `i mod n` (JSON door), and each node's bytes per
//! connection are reported too.

use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt};

use crate::args::Protocol;
use crate::client::open_ws;
use crate::report::Report;
use crate::scenarios::{close_all, ensure_descriptors, Context};
use crate::server::{tcp_kernel_bytes, tokens};
use crate::BenchError;

pub async fn run(ctx: &mut Context, conns: usize, per_user: usize, hold: Duration) -> Result<Report, BenchError> {
    let protocol = ctx.opts.protocol;
    let mut report = Report::new(if protocol == Protocol::Xmpp { "xmpp idle" } else { "idle" });
    report.parameter("conns", conns);
    report.parameter("per_user", per_user);
    report.parameter("nodes", ctx.opts.servers.len());
    report.parameter("hold_seconds", hold.as_secs_f64());
    report.parameter("rate", ctx.opts.rate.map_or(serde_json::Value::Null, Into::into));

    ensure_descriptors(ctx, conns)?;

    let users = conns.div_ceil(per_user);
    let accounts = ctx.accounts(users).await?;
    let tokens = match protocol {
        Protocol::Json => tokens(&ctx.opts.server, &accounts).await?,
        Protocol::Xmpp => Vec::new(),
    };
    // Let the account set-up's allocations settle before the first reading.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = ctx.server_sample();
    let nodes_before = ctx.node_samples();
    let kernel_before = tcp_kernel_bytes();

    let started = Instant::now();
    let pace = ctx.opts.rate.map(|rate| Duration::from_secs_f64(1.0 / rate));
    let servers = ctx.opts.servers.clone();
    let xmpp = ctx.opts.xmpp.clone();
    let (tokens, accounts) = (&tokens, &accounts);
    let opened: Vec<Result<_, BenchError>> = stream::iter(0..conns)
        .map(|i| {
            let (server, xmpp) = (servers[i % servers.len()].clone(), xmpp.clone());
            async move {
                if let Some(pace) = pace {
                    tokio::time::sleep_until(tokio::time::Instant::from_std(started + pace.mul_f64(i as f64))).await;
                }
                match protocol {
                    Protocol::Json => open_ws(&server, &format!("/ws?token={}", tokens[i % users]), None, i).await,
                    Protocol::Xmpp => {
                        let account = &accounts[i % users];
                        crate::xmpp::sign_in(&xmpp.url, &xmpp.domain, account, xmpp.mechanism, i).await.map(|s| s.ws)
                    }
                }
            }
        })
        .buffer_unordered(if pace.is_some() { 4096 } else { 128 })
        .take_until(tokio::time::sleep(ctx.opts.duration))
        .collect()
        .await;
    let ramp = started.elapsed();
    let mut sinks = Vec::with_capacity(opened.len());
    let mut first_error = None;
    let mut readers = Vec::with_capacity(opened.len());
    for result in opened {
        match result {
            Ok(ws) => {
                let (sink, mut source) = ws.split();
                sinks.push(sink);
                // Reading answers the server's pings; nothing else arrives on an idle socket.
                readers.push(tokio::spawn(async move { while let Some(Ok(_)) = source.next().await {} }));
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    let held = sinks.len();
    report.figure("connections_held", held as f64, "");
    report.figure("ramp", ramp.as_secs_f64(), "s");
    report.figure("logins_per_second", held as f64 / ramp.as_secs_f64().max(1e-9), "/s");
    if let Some(e) = &first_error {
        report.note(format!("{} connections failed; first: {e}", conns - held));
        report.complete = false;
    }
    tokio::time::sleep(hold).await;
    let holding = ctx.server_sample();
    let nodes_holding = ctx.node_samples();
    let kernel_holding = tcp_kernel_bytes();
    if let Some(admin) = &ctx.admin {
        if let Ok(metrics) = admin.metrics().await {
            let (door, name) = match protocol {
                Protocol::Json => ("switchboard_connections{door=\"ws\"}", "server_ws_connections"),
                Protocol::Xmpp => ("switchboard_connections{door=\"xmpp\"}", "server_xmpp_connections"),
            };
            if let Some((_, v)) = metrics.iter().find(|(k, _)| k == door) {
                report.figure(name, *v, "");
            }
        }
    }

    close_all(sinks).await;
    for reader in readers {
        reader.abort();
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = ctx.server_sample();

    match (before, holding, after) {
        (Some(before), Some(holding), Some(after)) => {
            let mib = |b: u64| b as f64 / 1048576.0;
            report.figure("server_rss_before", mib(before.resident_bytes), "MiB");
            report.figure("server_rss_holding", mib(holding.resident_bytes), "MiB");
            report.figure("server_rss_after_close", mib(after.resident_bytes), "MiB");
            let per_conn = holding.resident_bytes.saturating_sub(before.resident_bytes) as f64 / held.max(1) as f64;
            report.figure("server_bytes_per_connection", per_conn, "B");
            let login_cpu = holding.cpu_seconds - before.cpu_seconds;
            report.figure("server_cpu_per_login", login_cpu * 1e6 / held.max(1) as f64, "µs");
            if let (Some(k0), Some(k1)) = (kernel_before, kernel_holding) {
                let kernel = k1.saturating_sub(k0) as f64 / held.max(1) as f64;
                report.figure("kernel_tcp_bytes_per_connection", kernel, "B");
                report.figure("total_bytes_per_connection", per_conn + kernel / 2.0, "B");
                report.note("kernel TCP memory counts both ends of each loopback connection; total takes half");
            }
        }
        _ => report.note("pass --server-pid PID for the server's memory and CPU"),
    }
    if let (Some(before), Some(holding), true) = (nodes_before, nodes_holding, ctx.opts.servers.len() > 1) {
        for (node, (b, h)) in before.iter().zip(&holding).enumerate() {
            let on_node = (held + ctx.opts.servers.len() - 1 - node) / ctx.opts.servers.len();
            let per_conn = h.resident_bytes.saturating_sub(b.resident_bytes) as f64 / on_node.max(1) as f64;
            report.figure(format!("node{node}_bytes_per_connection"), per_conn, "B");
            report.figure(format!("node{node}_rss_holding"), h.resident_bytes as f64 / 1048576.0, "MiB");
        }
    }
    Ok(report)
}
