//! `GET /metrics`: Prometheus text format (0.0.4), admin only.
//!
//! Live stations and connections by door, users online, rooms, workgroups, messages routed
//! and stored, the store's batches, writes and commit time (mean batch size and commit
//! latency follow from them), and the process's resident memory. On a node of a cluster,
//! the cluster link's state and relays too, and every sample carries a `node` label.

use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;

use actix_web::{web, HttpResponse};
use switchboard_actors::fastpath::registry::CountWorkgroups;
use switchboard_actors::muc::conference::CountRooms;
use switchboard_actors::router::{TakeCensus, ViewCluster};

use crate::auth::Admin;
use crate::error::ApiError;
use crate::state::AppState;

/// The process's resident memory in bytes, from `/proc/self/statm` (Linux); 0 elsewhere.
pub fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|pages| pages.parse::<u64>().ok()))
        .map_or(0, |pages| pages * 4096)
}

fn metric(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(String, u64)]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (labels, value) in samples {
        let _ = writeln!(out, "{name}{labels} {value}");
    }
}

/// Every sample of `text` with `name="value"` first among its labels.
fn with_label(text: &str, name: &str, value: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 4);
    for line in text.lines() {
        match line.find([' ', '{']) {
            Some(at) if !line.starts_with('#') => {
                let (metric, rest) = line.split_at(at);
                let _ = match rest.strip_prefix('{') {
                    Some(labels) => writeln!(out, "{metric}{{{name}=\"{value}\",{labels}"),
                    None => writeln!(out, "{metric}{{{name}=\"{value}\"}}{rest}"),
                };
            }
            _ => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

fn one(value: u64) -> Vec<(String, u64)> {
    vec![(String::new(), value)]
}

/// `GET /metrics`.
pub async fn metrics(_: Admin, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let census = state.router.send(TakeCensus).await?;
    // What this node runs (in a cluster, the rooms it owns and the workgroups it serves).
    let rooms = state.conference.send(CountRooms).await?;
    let workgroups = state.fastpath.send(CountWorkgroups).await?;
    let router = &state.router_stats;
    let store = &state.commit_stats;
    let by_door = |map: &std::collections::BTreeMap<&'static str, u64>| -> Vec<(String, u64)> {
        map.iter().map(|(door, n)| (format!("{{door=\"{door}\"}}"), *n)).collect()
    };
    let mut out = String::with_capacity(2048);
    metric(
        &mut out,
        "switchboard_users_online",
        "gauge",
        "Users with at least one station.",
        &one(census.users_online),
    );
    metric(
        &mut out,
        "switchboard_stations",
        "gauge",
        "Stations (login streams and connection-owned stations).",
        &one(census.stations),
    );
    metric(
        &mut out,
        "switchboard_live_stations",
        "gauge",
        "Stations with at least one open connection, by door.",
        &by_door(&census.stations_by_door),
    );
    metric(
        &mut out,
        "switchboard_connections",
        "gauge",
        "Open connections, by door.",
        &by_door(&census.connections_by_door),
    );
    metric(&mut out, "switchboard_rooms", "gauge", "Rooms running.", &one(rooms));
    metric(&mut out, "switchboard_workgroups", "gauge", "Workgroups.", &one(workgroups));
    metric(
        &mut out,
        "switchboard_messages_routed_total",
        "counter",
        "1:1 messages submitted.",
        &one(router.messages_routed.load(Relaxed)),
    );
    metric(
        &mut out,
        "switchboard_messages_stored_total",
        "counter",
        "1:1 messages committed.",
        &one(router.messages_stored.load(Relaxed)),
    );
    metric(
        &mut out,
        "switchboard_store_batches_total",
        "counter",
        "Store transactions (group commits).",
        &one(store.batches.load(Relaxed)),
    );
    metric(
        &mut out,
        "switchboard_store_writes_total",
        "counter",
        "Writes committed in those transactions.",
        &one(store.writes.load(Relaxed)),
    );
    metric(
        &mut out,
        "switchboard_store_commit_microseconds_total",
        "counter",
        "Time spent in store transactions, microseconds.",
        &one(store.commit_micros.load(Relaxed)),
    );
    let info = &state.users_info;
    let answers = [
        ("answered", info.requests.load(Relaxed).saturating_sub(info.failures.load(Relaxed))),
        ("failed", info.failures.load(Relaxed)),
    ];
    let answers: Vec<(String, u64)> = answers.iter().map(|(o, n)| (format!("{{outcome=\"{o}\"}}"), *n)).collect();
    metric(
        &mut out,
        "switchboard_users_info_requests_total",
        "counter",
        "Requests to sites' users-info URLs, by outcome.",
        &answers,
    );
    let hooks = &state.webhook_stats;
    let outcomes = [
        ("delivered", hooks.delivered.load(Relaxed)),
        ("failed", hooks.failed.load(Relaxed)),
        ("retried", hooks.retried.load(Relaxed)),
        ("dead", hooks.dead.load(Relaxed)),
    ];
    let outcomes: Vec<(String, u64)> = outcomes.iter().map(|(o, n)| (format!("{{outcome=\"{o}\"}}"), *n)).collect();
    metric(
        &mut out,
        "switchboard_webhook_attempts_total",
        "counter",
        "Webhook delivery attempts by outcome (a failed attempt is then retried or dead).",
        &outcomes,
    );
    let (depth, oldest) = state.apps.outbox_depth().await?;
    metric(&mut out, "switchboard_webhook_outbox_depth", "gauge", "Webhook deliveries pending.", &one(depth));
    let oldest_secs = oldest.map_or(0, |at| (switchboard_actors::clock::now_ms() - at).max(0) as u64 / 1000);
    metric(
        &mut out,
        "switchboard_webhook_outbox_oldest_seconds",
        "gauge",
        "Age of the oldest pending webhook delivery.",
        &one(oldest_secs),
    );
    metric(
        &mut out,
        "switchboard_resident_memory_bytes",
        "gauge",
        "Resident memory of the process.",
        &one(resident_bytes()),
    );
    if let Some(link) = &state.cluster {
        let view = state.router.send(ViewCluster).await?;
        let peers = view.map_or(0, |v| v.peers.len() as u64);
        metric(&mut out, "switchboard_cluster_peers", "gauge", "Live peers of this node.", &one(peers));
        let connected = u64::from(link.connected.load(Relaxed));
        metric(&mut out, "switchboard_cluster_connected", "gauge", "1 while NATS is in reach.", &one(connected));
        let relays = [
            ("sent", router.relays_sent.load(Relaxed)),
            ("received", router.relays_received.load(Relaxed)),
            ("dropped", link.relays_dropped.load(Relaxed)),
            ("undecodable", link.relays_undecodable.load(Relaxed)),
        ];
        let samples: Vec<_> = relays.iter().map(|(what, n)| (format!("{{what=\"{what}\"}}"), *n)).collect();
        metric(
            &mut out,
            "switchboard_cluster_relays_total",
            "counter",
            "Relays to and from peers (one per peer): sent, received, dropped while NATS was out of reach, and received but undecodable.",
            &samples,
        );
        out = with_label(&out, "node", &link.node);
    }
    Ok(HttpResponse::Ok().content_type("text/plain; version=0.0.4; charset=utf-8").body(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_node_label_goes_first_on_every_sample_and_nowhere_else() {
        let text = "# HELP a A.\n# TYPE a gauge\na 3\nb{door=\"sse\"} 4\n";
        assert_eq!(
            with_label(text, "node", "n1"),
            "# HELP a A.\n# TYPE a gauge\na{node=\"n1\"} 3\nb{node=\"n1\",door=\"sse\"} 4\n"
        );
    }
}
