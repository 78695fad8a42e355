//! `room` (and `xmpp room`): N occupants join one room, S of them send M messages each,
//! and every occupant (senders included) receives every message. Reports the time for all
//! N to join, the presence traffic the joins caused, and deliveries per second. Given the
//! nodes of a cluster, the occupants are spread over them.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use crate::args::Protocol;
use crate::client::{Outgoing, Ws};
use crate::report::{Latencies, Report};
use crate::scenarios::{close_all, measure, report_outcome, spawn_readers, Context, Flow, Lane, Shared, Source};
use crate::BenchError;

/// How long the joins may take before the run gives up.
const JOIN_LIMIT: Duration = Duration::from_secs(120);

pub async fn run(ctx: &mut Context, occupants: usize, senders: usize, messages: usize) -> Result<Report, BenchError> {
    let protocol = ctx.opts.protocol;
    let mut report = Report::new(if protocol == Protocol::Xmpp { "xmpp room" } else { "room" });
    report.parameter("occupants", occupants);
    report.parameter("senders", senders);
    report.parameter("messages_per_sender", messages);
    report.parameter("rate", ctx.opts.rate.map_or(serde_json::Value::Null, Into::into));

    let accounts = ctx.accounts(occupants).await?;
    // On a cluster, occupants are spread over the nodes (round robin over `--server`).
    let mut clients = ctx.open_clients_spread(&accounts, 1).await?;
    if ctx.opts.servers.len() > 1 {
        report.parameter("nodes", ctx.opts.servers.len());
    }
    let room_name = format!("{}room", ctx.run_id);
    let room = match protocol {
        Protocol::Json => room_name.clone(),
        Protocol::Xmpp => format!("{room_name}@{}", ctx.opts.xmpp.muc_service),
    };

    // The first occupant creates the room on its own, before the others join together.
    let first = clients.remove(0);
    let first = join_first(ctx, first, &room, &accounts[0].username).await?;
    clients.insert(0, first);

    let shared = Shared::new((senders * messages * occupants) as u64, senders, ctx.opts.window, Flow::OwnEcho);
    let mut sinks = Vec::with_capacity(occupants);
    let mut sources = Vec::with_capacity(occupants);
    for (i, ws) in clients.into_iter().enumerate() {
        let (sink, source) = ws.split();
        sinks.push(sink);
        sources.push((Source::Ws(source, protocol), (i < senders).then_some(i)));
    }
    let readers = spawn_readers(sources, &shared);

    // Every other occupant joins at once; the join is done when each has its answer.
    let before_join = ctx.server_sample();
    let since = shared.now_ns();
    let presences_before = shared.presences();
    shared.expect_joins(occupants as u64 - 1);
    let mut join_failed = None;
    for (i, sink) in sinks.iter_mut().enumerate().skip(1) {
        let nick = &accounts[i].username;
        let frame = match protocol {
            Protocol::Json => format!(r#"{{"op":"join","room":"{room}","nick":"{nick}","id":"j{i}"}}"#),
            Protocol::Xmpp => format!(
                r#"<presence xmlns="jabber:client" to="{room}/{nick}"><x xmlns="http://jabber.org/protocol/muc"><history maxstanzas="0"/></x></presence>"#
            ),
        };
        if let Err(e) = sink.send(Message::text(frame)).await {
            join_failed = Some(e.to_string());
            break;
        }
    }
    if let Some(e) = join_failed {
        return Err(BenchError::Server(format!("sending joins: {e}")));
    }
    let join_time = shared.joins(since, JOIN_LIMIT.min(ctx.opts.duration)).await;
    let Some(join_time) = join_time else {
        readers.stop().await;
        return Err(BenchError::Server(format!(
            "not every occupant was in the room within {:?}",
            JOIN_LIMIT.min(ctx.opts.duration)
        )));
    };
    // Let the join's presence traffic drain before measuring messages.
    settle(&shared).await;
    report.figure("join_all", join_time.as_secs_f64() * 1000.0, "ms");
    report.figure("join_presences_received", (shared.presences() - presences_before) as f64, "");
    ctx.add_server_cost(&mut report, before_join, (occupants - 1) as f64, "server_cpu_per_join");

    let lanes: Vec<Lane> = sinks
        .drain(..senders)
        .map(|sink| Lane {
            sink,
            outgoing: match protocol {
                Protocol::Json => Outgoing::JsonRoom { room: room.clone() },
                Protocol::Xmpp => Outgoing::XmppRoom { room: room.clone() },
            },
        })
        .collect();
    let before = ctx.server_sample();
    let (outcome, lanes) = measure(lanes, messages, &shared, &ctx.opts).await;
    ctx.add_server_cost(&mut report, before, outcome.delivered as f64, "server_cpu_per_delivery");
    let acked = ctx.await_acks(&shared, outcome.sent).await;
    let latencies: Latencies = readers.stop().await;
    let outcome = crate::scenarios::Outcome { acked, ..outcome };
    report_outcome(&mut report, &outcome, latencies, protocol == Protocol::Json);
    close_all(lanes.into_iter().map(|l| l.sink).chain(sinks).collect()).await;
    Ok(report)
}

/// Joins the room alone and waits for the answer (creating the room).
async fn join_first(ctx: &Context, ws: Ws, room: &str, nick: &str) -> Result<Ws, BenchError> {
    match ctx.opts.protocol {
        Protocol::Xmpp => crate::xmpp::join_room(ws, &ctx.opts.xmpp.domain, room, nick).await,
        Protocol::Json => {
            let mut ws = ws;
            let frame = format!(r#"{{"op":"join","room":"{room}","nick":"{nick}","id":"first"}}"#);
            ws.send(Message::text(frame)).await.map_err(|e| BenchError::Server(format!("join: {e}")))?;
            loop {
                let frame = tokio::time::timeout(Duration::from_secs(15), ws.next())
                    .await
                    .map_err(|_| BenchError::Server("no answer to the first join".into()))?;
                match frame {
                    Some(Ok(Message::Text(text))) if text.as_str().contains("\"type\":\"joined\"") => return Ok(ws),
                    Some(Ok(Message::Text(text))) if text.as_str().contains("\"type\":\"error\"") => {
                        return Err(BenchError::Refused(format!("joining the room was refused: {}", text.as_str())))
                    }
                    Some(Ok(_)) => continue,
                    _ => return Err(BenchError::Server("the first occupant's socket closed".into())),
                }
            }
        }
    }
}

/// Waits until no presence arrived for 200 ms (at most 10 s).
async fn settle(shared: &Shared) {
    let mut last = shared.presences();
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = shared.presences();
        if now == last {
            return;
        }
        last = now;
    }
}
