//! `pairs` (and `sse`, `xmpp pairs`): P senders, each writing M messages to its own
//! receiver. Every message is acknowledged on the JSON door once stored, and timed from
//! send to delivery. With several `--server` nodes, senders are on the first and receivers on
//! the second.

use futures_util::stream::{self, StreamExt, TryStreamExt};

use crate::args::{Protocol, Receivers};
use crate::client::Outgoing;
use crate::http::EventStream;
use crate::report::Report;
use crate::scenarios::{close_all, measure, report_outcome, spawn_readers, Context, Flow, Lane, Shared, Source};
use crate::server::tokens;
use crate::BenchError;

pub async fn run(ctx: &mut Context, pairs: usize, messages: usize, receivers: Receivers) -> Result<Report, BenchError> {
    let protocol = ctx.opts.protocol;
    let name = match (protocol, receivers) {
        (Protocol::Xmpp, _) => "xmpp pairs",
        (_, Receivers::Sse) => "sse",
        _ => "pairs",
    };
    let mut report = Report::new(name);
    report.parameter("pairs", pairs);
    report.parameter("messages_per_pair", messages);
    report.parameter("rate", ctx.opts.rate.map_or(serde_json::Value::Null, Into::into));
    report.parameter("window", ctx.opts.window);

    // With several nodes, every receiver is on the second: each message crosses nodes.
    let receivers_at = ctx.server_for(1).clone();
    report.parameter("nodes", ctx.opts.servers.len());
    let accounts = ctx.accounts(pairs * 2).await?;
    let (senders, listeners) = accounts.split_at(pairs);
    let sources: Vec<(Source, Option<usize>)> = match receivers {
        Receivers::Sse => {
            let tokens = tokens(&ctx.opts.server, listeners).await?;
            let server = receivers_at.clone();
            stream::iter(listeners.iter().zip(tokens).enumerate())
                .map(|(i, (account, token))| {
                    let server = server.clone();
                    let path = format!("/sse/{}?token={token}", account.username);
                    async move { EventStream::open(&server, &path, i + 1).await.map(|s| (Source::Sse(s), None)) }
                })
                .buffered(32)
                .try_collect()
                .await?
        }
        Receivers::Websocket => ctx
            .open_clients_on(&receivers_at, listeners, 1)
            .await?
            .into_iter()
            .map(|ws| (Source::Ws(ws.split().1, protocol), None))
            .collect(),
    };
    let mut lanes = Vec::with_capacity(pairs);
    let mut sender_sources = Vec::with_capacity(pairs);
    for (i, ws) in ctx.open_clients(senders, pairs + 1).await?.into_iter().enumerate() {
        let (sink, source) = ws.split();
        let to = ctx.address_of(&listeners[i]);
        let outgoing = match protocol {
            Protocol::Json => Outgoing::JsonChat { to },
            Protocol::Xmpp => Outgoing::XmppChat { to },
        };
        lanes.push(Lane { sink, outgoing });
        sender_sources.push((Source::Ws(source, protocol), Some(i)));
    }

    let shared = Shared::new((pairs * messages) as u64, pairs, ctx.opts.window, Flow::Receiver);
    let readers = spawn_readers(sources.into_iter().chain(sender_sources).collect(), &shared);
    let before = ctx.server_sample();
    let own_before = crate::server::own_sample();
    let (outcome, lanes) = measure(lanes, messages, &shared, &ctx.opts).await;
    ctx.add_server_cost(&mut report, before, outcome.delivered as f64, "server_cpu_per_message");
    let own = crate::server::own_sample();
    report.figure("bench_cpu_seconds", own.cpu_seconds - own_before.cpu_seconds, "s");
    let acked = ctx.await_acks(&shared, outcome.sent).await;
    let latencies = readers.stop().await;
    let outcome = crate::scenarios::Outcome { acked, ..outcome };
    report_outcome(&mut report, &outcome, latencies, protocol == Protocol::Json);
    if let Some(rate) = ctx.opts.rate {
        report.note(format!("offered load {rate} msg/s, paced over {pairs} senders"));
    } else {
        report.note(format!("ceiling: each sender keeps {} messages in flight", ctx.opts.window));
    }
    close_all(lanes.into_iter().map(|l| l.sink).collect()).await;
    Ok(report)
}
