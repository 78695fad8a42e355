//! `ozeki`: S HTTP API users each send M messages through the Ozeki 10 HTTP API's REST form
//! (`POST /api?action=sendmsg`, `batch` messages a request, one request at a time per user,
//! each on a new connection as the vendor's client makes them) to their own receiver on
//! `/ws`. Timed from send to delivery; each request's round trip is timed too.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures_util::StreamExt;
use serde_json::json;
use tokio::task::JoinHandle;

use crate::args::Protocol;
use crate::client::marker;
use crate::http::{request, Auth};
use crate::report::{Latencies, Report};
use crate::scenarios::{close_all, report_outcome, spawn_readers, Context, Flow, Outcome, Shared, Source};
use crate::BenchError;

pub async fn run(ctx: &mut Context, senders: usize, messages: usize, batch: usize) -> Result<Report, BenchError> {
    if ctx.opts.protocol != Protocol::Json {
        return Err(BenchError::Usage("ozeki runs against Switchboard's own doors".into()));
    }
    let mut report = Report::new("ozeki");
    report.parameter("senders", senders);
    report.parameter("messages_per_sender", messages);
    report.parameter("batch", batch);

    let http_users = ctx.http_accounts(senders).await?;
    let receivers = ctx.accounts(senders).await?;
    let clients = ctx.open_clients(&receivers, 1).await?;
    let mut sinks = Vec::with_capacity(senders);
    let mut sources = Vec::with_capacity(senders);
    for ws in clients {
        let (sink, source) = ws.split();
        sinks.push(sink);
        sources.push((Source::Ws(source, Protocol::Json), None));
    }
    let shared = Shared::new((senders * messages) as u64, senders, 1, Flow::Receiver);
    let readers = spawn_readers(sources, &shared);
    let before = ctx.server_sample();
    let own_before = crate::server::own_sample();
    let sent = Arc::new(AtomicU64::new(0));
    let accepted = Arc::new(AtomicU64::new(0));
    let round_trips = Arc::new(Mutex::new(Latencies::default()));
    let first_refusal: Arc<Mutex<Option<String>>> = Arc::default();
    let deadline = tokio::time::Instant::now() + ctx.opts.duration;
    let start_ns = shared.now_ns();
    let start = Instant::now();
    let tasks: Vec<JoinHandle<()>> = http_users
        .into_iter()
        .zip(receivers.iter().map(|r| r.username.clone()))
        .enumerate()
        .map(|(index, (user, to))| {
            let (server, shared, sent, accepted) =
                (ctx.opts.server.clone(), shared.clone(), sent.clone(), accepted.clone());
            let (round_trips, first_refusal) = (round_trips.clone(), first_refusal.clone());
            tokio::spawn(async move {
                let mut left = messages;
                while left > 0 && tokio::time::Instant::now() < deadline {
                    let n = left.min(batch);
                    let list: Vec<_> =
                        (0..n).map(|_| json!({"to_address": to, "text": marker(index, shared.now_ns())})).collect();
                    let body = json!({ "messages": list });
                    let began = Instant::now();
                    let auth = Auth::Basic(&user.username, &user.password);
                    let answer = request(&server, "POST", "/api?action=sendmsg", auth, Some(&body)).await;
                    round_trips.lock().expect("latencies").record(began.elapsed().as_micros() as u64);
                    sent.fetch_add(n as u64, Ordering::Relaxed);
                    left -= n;
                    let ok = answer
                        .as_ref()
                        .ok()
                        .and_then(|a| a.json().ok())
                        .and_then(|v| v["data"]["success_count"].as_u64());
                    match ok {
                        Some(count) => {
                            accepted.fetch_add(count, Ordering::Relaxed);
                        }
                        None => {
                            let why = match answer {
                                Ok(a) => format!("{}: {}", a.status, a.text()),
                                Err(e) => e.to_string(),
                            };
                            first_refusal.lock().expect("error slot").get_or_insert(why);
                            break;
                        }
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        let _ = task.await;
    }
    let complete = shared.wait_delivered(deadline).await;
    ctx.add_server_cost(&mut report, before, accepted.load(Ordering::Relaxed) as f64, "server_cpu_per_message");
    let own = crate::server::own_sample();
    report.figure("bench_cpu_seconds", own.cpu_seconds - own_before.cpu_seconds, "s");
    let latencies = readers.stop().await;
    let mut outcome: Outcome = shared.outcome(sent.load(Ordering::Relaxed), start_ns, start, complete);
    outcome.acked = accepted.load(Ordering::Relaxed);
    if let Some(refusal) = first_refusal.lock().expect("error slot").take() {
        outcome.refused += 1;
        outcome.first_error.get_or_insert(refusal);
    }
    report_outcome(&mut report, &outcome, latencies, true);
    let requests = std::mem::take(&mut *round_trips.lock().expect("latencies")).summary();
    report.figure("request_p50", requests.p50, "ms");
    report.figure("request_p99", requests.p99, "ms");
    report.note(format!("one request at a time per HTTP API user, {batch} messages each, a new connection each"));
    close_all(sinks).await;
    Ok(report)
}
