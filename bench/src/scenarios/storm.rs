//! `xmpp storm`: a reconnect storm. N clients sign in (not measured), then all drop at once
//! without closing their streams, as when a network blips or a balancer restarts. While
//! they are away a sender writes one message to each (round 0); then all N reconnect at
//! once while the sender writes each a second (round 1) as fast as it goes. Measured: the
//! time until every client is signed in again, each sign-in's latency, the server's CPU per
//! login, and whether every client got both messages exactly once: the offline one and the
//! one that raced its return.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use crate::client::{observe_xmpp, Observed, Outgoing, Ws};
use crate::report::{Latencies, Report};
use crate::scenarios::{close_all, ensure_descriptors, Context};
use crate::xmpp::sign_in;
use crate::BenchError;

/// How long the server is given to notice the dropped connections.
const NOTICE: Duration = Duration::from_secs(2);
/// How long a client listens for a duplicate after it has both messages.
const DUPLICATE_WATCH: Duration = Duration::from_secs(1);

/// One client's storm.
struct Return {
    /// From the storm's start to signed in (bound, available, pinged).
    signed_in_after: Option<Duration>,
    /// The sign-in alone, from its connect.
    login: Option<Duration>,
    /// From the storm's start to both messages received.
    complete_after: Option<Duration>,
    /// Copies of each round's message.
    seen: [u32; 2],
    error: Option<String>,
    ws: Option<Ws>,
}

pub async fn run(ctx: &mut Context, clients: usize) -> Result<Report, BenchError> {
    let mut report = Report::new("xmpp storm");
    report.parameter("clients", clients);
    if let Some(mechanism) = ctx.opts.xmpp.mechanism {
        report.parameter("mechanism", format!("{mechanism:?}"));
    }
    ensure_descriptors(ctx, clients + 1)?;
    let accounts = ctx.accounts(clients + 1).await?;
    let (sender_account, accounts) = accounts.split_first().expect("at least two accounts");
    let xmpp = ctx.opts.xmpp.clone();
    let sender = sign_in(&xmpp.url, &xmpp.domain, sender_account, xmpp.mechanism, 0).await?.ws;
    let first = ctx.open_clients(accounts, 1).await?;
    let addresses: Arc<Vec<String>> = Arc::new(accounts.iter().map(|a| ctx.address_of(a)).collect());

    // The drop: every socket closes at once, no stream end, no close frame.
    drop(first);
    tokio::time::sleep(NOTICE).await;
    let (mut sink, mut source) = sender.split();
    // Bounces would come here; none are expected. Drained so the sender's socket never fills.
    let bounces = tokio::spawn(async move {
        let mut refused = 0u64;
        while let Some(Ok(frame)) = source.next().await {
            if let Message::Text(text) = frame {
                if matches!(observe_xmpp(text.as_str()), Observed::Refused(_)) {
                    refused += 1;
                }
            }
        }
        refused
    });
    let epoch = Instant::now();
    send_round(&mut sink, &addresses, 0, epoch).await?;
    // Give the server time to store round 0 before the clients come back.
    tokio::time::sleep(Duration::from_secs(1)).await;

    let before = ctx.server_sample();
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + ctx.opts.duration;
    let tasks: Vec<_> = accounts
        .iter()
        .cloned()
        .enumerate()
        .map(|(i, account)| {
            let xmpp = xmpp.clone();
            tokio::spawn(async move {
                let attempt = async {
                    let connect = Instant::now();
                    let signed = sign_in(&xmpp.url, &xmpp.domain, &account, xmpp.mechanism, 1 + i).await;
                    (signed, connect.elapsed(), started.elapsed())
                };
                let mut back = Return {
                    signed_in_after: None,
                    login: None,
                    complete_after: None,
                    seen: [0; 2],
                    error: None,
                    ws: None,
                };
                let mut signed = match tokio::time::timeout_at(deadline, attempt).await {
                    Ok((Ok(signed), login, after)) => {
                        (back.login, back.signed_in_after) = (Some(login), Some(after));
                        signed
                    }
                    Ok((Err(e), _, _)) => {
                        back.error = Some(e.to_string());
                        return back;
                    }
                    Err(_) => {
                        back.error = Some("not signed in before --duration".into());
                        return back;
                    }
                };
                for frame in &signed.early {
                    count(&mut back.seen, frame);
                }
                let mut watch_until = None;
                loop {
                    if back.seen.iter().all(|&n| n > 0) && back.complete_after.is_none() {
                        back.complete_after = Some(started.elapsed());
                        watch_until = Some(tokio::time::Instant::now() + DUPLICATE_WATCH);
                    }
                    let until = watch_until.unwrap_or(deadline).min(deadline);
                    match tokio::time::timeout_at(until, signed.ws.next()).await {
                        Ok(Some(Ok(Message::Text(text)))) => count(&mut back.seen, text.as_str()),
                        Ok(Some(Ok(_))) => {}
                        Ok(_) => {
                            back.error = Some("the server closed the connection".into());
                            break;
                        }
                        Err(_) => break,
                    }
                }
                back.ws = Some(signed.ws);
                back
            })
        })
        .collect();
    let round1 = send_round(&mut sink, &addresses, 1, epoch).await;

    let mut returns = Vec::with_capacity(clients);
    for task in tasks {
        if let Ok(back) = task.await {
            returns.push(back);
        }
    }
    let after = ctx.server_sample();
    round1?;

    let signed: Vec<&Return> = returns.iter().filter(|r| r.signed_in_after.is_some()).collect();
    let all_signed_in = signed.iter().filter_map(|r| r.signed_in_after).max().unwrap_or_default();
    report.figure("signed_in", signed.len() as f64, "");
    report.figure("all_signed_in_after", all_signed_in.as_secs_f64(), "s");
    report.figure("logins_per_second", signed.len() as f64 / all_signed_in.as_secs_f64().max(1e-9), "/s");
    let mut logins = Latencies::default();
    for login in signed.iter().filter_map(|r| r.login) {
        logins.record(login.as_micros() as u64);
    }
    let logins = logins.summary();
    report.figure("login_p50", logins.p50, "ms");
    report.figure("login_p99", logins.p99, "ms");
    report.figure("login_max", logins.max, "ms");
    let expected = 2 * clients as u64;
    let received: u64 = returns.iter().map(|r| r.seen.iter().filter(|&&n| n > 0).count() as u64).sum();
    let duplicates: u64 =
        returns.iter().map(|r| r.seen.iter().map(|&n| u64::from(n.saturating_sub(1))).sum::<u64>()).sum();
    report.figure("messages_sent", expected as f64, "");
    report.figure("messages_received", received as f64, "");
    report.figure("messages_lost", (expected - received) as f64, "");
    report.figure("messages_duplicated", duplicates as f64, "");
    if let Some(all) = returns.iter().map(|r| r.complete_after).collect::<Option<Vec<_>>>() {
        let last = all.into_iter().max().unwrap_or_default();
        report.figure("all_messages_after", last.as_secs_f64(), "s");
    }
    if let (Some(before), Some(after)) = (before, after) {
        let cpu = after.cpu_seconds - before.cpu_seconds;
        report.figure("server_cpu", cpu, "s");
        report.figure("server_cpu_per_login", cpu * 1e6 / signed.len().max(1) as f64, "µs");
        report.figure("server_resident_memory", after.resident_bytes as f64 / 1048576.0, "MiB");
    } else {
        report.note("pass --server-pid PID for the server's CPU and memory");
    }
    let failed = returns.iter().filter(|r| r.error.is_some()).count();
    if let Some(first) = returns.iter().find_map(|r| r.error.clone()) {
        report.note(format!("{failed} clients failed; first: {first}"));
    }
    report.complete = signed.len() == clients && received == expected && duplicates == 0;

    let sinks = returns.into_iter().filter_map(|r| r.ws).map(|ws| ws.split().0).collect();
    close_all(sinks).await;
    let _ = sink.close().await;
    if let Ok(Ok(refused)) = tokio::time::timeout(Duration::from_secs(2), bounces).await {
        if refused > 0 {
            report.figure("errors", refused as f64, "");
        }
    }
    Ok(report)
}

/// The sender writes message `round` to every client.
async fn send_round<S>(sink: &mut S, addresses: &[String], round: usize, epoch: Instant) -> Result<(), BenchError>
where
    S: futures_util::Sink<Message> + Unpin,
    S::Error: std::fmt::Display,
{
    for (i, to) in addresses.iter().enumerate() {
        let frame = Outgoing::XmppChat { to: to.clone() }.frame(round, i, epoch.elapsed().as_nanos() as u64);
        sink.feed(Message::text(frame)).await.map_err(|e| BenchError::Server(format!("the sender's socket: {e}")))?;
    }
    sink.flush().await.map_err(|e| BenchError::Server(format!("the sender's socket: {e}")))
}

/// Counts a storm message in a frame: its round is the marker's sender.
fn count(seen: &mut [u32; 2], frame: &str) {
    if let Observed::Delivered { sender, .. } = observe_xmpp(frame) {
        if let Some(n) = seen.get_mut(sender) {
            *n += 1;
        }
    }
}
