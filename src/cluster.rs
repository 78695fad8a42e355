//! The cluster link: this node's connection to NATS, carrying the router's relays to its
//! peers and theirs to it.
//!
//! Subjects, under `switchboard.{cluster.name}`: `node.{node}` is each node's own (one
//! subscriber, so what one node sends another arrives in order), `all` is every node's
//! (heartbeats). A relay is JSON: `{"node","started_ms","relay"}`. The link runs on an
//! arbiter of its own, so encoding, decoding and the NATS connection stay off the router's
//! thread.
//!
//! While NATS is out of reach the link drops what it would send (and counts it): nothing
//! relayed is the only copy of anything. A committed message stays pending in the shared
//! store until a station takes it, and when a peer comes back into reach every node reads
//! what waits for its users again. `/system/readiness/cluster` reports the outage.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use bytes::Bytes;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use switchboard_actors::clock::now_ms;
use switchboard_actors::cluster::{AskPeers, FromPeer, Relay, Targets, ToPeers};
use switchboard_actors::fastpath::registry::{Fastpath, LinkFastpath};
use switchboard_actors::muc::conference::{Conference, LinkRooms};
use switchboard_actors::router::{JoinCluster, LinkRestored};
use switchboard_actors::Router;
use tokio::sync::mpsc;

use crate::config::{secs, Config};

/// What `/system/readiness/cluster` and `/metrics` read of the link.
#[derive(Debug)]
pub struct ClusterStatus {
    pub node: String,
    /// When this node started (epoch ms), as its peers know it.
    pub started_ms: i64,
    /// The NATS URL, without a password.
    pub nats: String,
    pub connected: AtomicBool,
    /// When the connection last came up or went down (epoch ms).
    pub since_ms: AtomicI64,
    /// The last error the NATS client reported.
    pub last_error: Mutex<Option<String>>,
    /// Relays not sent because NATS was out of reach, and peers' relays that did not decode.
    pub relays_dropped: AtomicU64,
    pub relays_undecodable: AtomicU64,
    /// Times the connection to NATS was lost.
    pub outages: AtomicU64,
}

#[derive(Serialize)]
struct Outgoing<'a> {
    node: &'a str,
    started_ms: i64,
    relay: &'a Relay,
}

#[derive(Deserialize)]
struct Incoming {
    node: String,
    started_ms: i64,
    relay: Relay,
}

/// The actor the router sends its relays to.
pub struct ClusterLink {
    client: async_nats::Client,
    prefix: String,
    node: String,
    started_ms: i64,
    ask_timeout: Duration,
    status: Arc<ClusterStatus>,
    /// To the task that publishes, in order.
    outbox: mpsc::UnboundedSender<(String, Bytes)>,
}

impl Actor for ClusterLink {
    type Context = Context<Self>;
}

impl ClusterLink {
    fn node_subject(&self, node: &str) -> String {
        format!("{}.node.{node}", self.prefix)
    }

    fn encode(&self, relay: &Relay) -> Bytes {
        let outgoing = Outgoing { node: &self.node, started_ms: self.started_ms, relay };
        Bytes::from(serde_json::to_vec(&outgoing).expect("a relay encodes"))
    }
}

impl Handler<ToPeers> for ClusterLink {
    type Result = ();

    fn handle(&mut self, msg: ToPeers, _: &mut Context<Self>) {
        if self.client.connection_state() != async_nats::connection::State::Connected {
            let count = match &msg.targets {
                Targets::Nodes(nodes) => nodes.len() as u64,
                Targets::Everyone => 1,
            };
            self.status.relays_dropped.fetch_add(count, Relaxed);
            return;
        }
        let payload = self.encode(&msg.relay);
        match msg.targets {
            Targets::Everyone => {
                let _ = self.outbox.send((format!("{}.all", self.prefix), payload));
            }
            Targets::Nodes(nodes) => {
                for node in nodes {
                    let _ = self.outbox.send((self.node_subject(&node), payload.clone()));
                }
            }
        }
    }
}

impl Handler<AskPeers> for ClusterLink {
    type Result = ResponseFuture<Vec<(String, Relay)>>;

    fn handle(&mut self, msg: AskPeers, _: &mut Context<Self>) -> Self::Result {
        let payload = self.encode(&msg.relay);
        let asks: Vec<_> = msg
            .nodes
            .into_iter()
            .map(|node| {
                let (client, subject, payload) = (self.client.clone(), self.node_subject(&node), payload.clone());
                let wait = self.ask_timeout;
                async move {
                    let answer = tokio::time::timeout(wait, client.request(subject, payload)).await.ok()?.ok()?;
                    let incoming: Incoming = serde_json::from_slice(&answer.payload).ok()?;
                    Some((node, incoming.relay))
                }
            })
            .collect();
        Box::pin(async move { futures_util::future::join_all(asks).await.into_iter().flatten().collect() })
    }
}

/// Why the link could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot reach NATS at {nats}: {message}")]
pub struct LinkError {
    nats: String,
    message: String,
}

/// Where the link hands what peers relay: rooms' relays to the rooms' registry, Fastpath's
/// to the Fastpath registry, the rest to the router.
#[derive(Clone)]
pub struct Receivers {
    pub router: Addr<Router>,
    pub conference: Addr<Conference>,
    pub fastpath: Addr<Fastpath>,
}

/// Connects to NATS (waiting for it if it is not up yet), subscribes this node's subjects
/// and has the router and the rooms' registry join the cluster.
pub async fn start(config: &Config, receivers: Receivers) -> Result<Arc<ClusterStatus>, LinkError> {
    let router = receivers.router.clone();
    let node = config.cluster_node();
    let prefix = format!("switchboard.{}", config.cluster_name());
    let url = config.cluster.nats_url.trim().to_owned();
    let started_ms = now_ms();
    let status = Arc::new(ClusterStatus {
        node: node.clone(),
        started_ms,
        nats: crate::config::without_password(&url),
        connected: AtomicBool::new(false),
        since_ms: AtomicI64::new(now_ms()),
        last_error: Mutex::new(None),
        relays_dropped: AtomicU64::new(0),
        relays_undecodable: AtomicU64::new(0),
        outages: AtomicU64::new(0),
    });
    let heartbeat = secs(config.cluster.heartbeat_secs);
    let lease = secs(config.cluster.lease_secs);
    let ask_timeout = secs(config.cluster.ask_timeout_secs);
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let arbiter = Arbiter::new();
    let link_status = status.clone();
    let link_router = router.clone();
    arbiter.spawn(async move {
        let started = connect_and_subscribe(&url, &node, &prefix, link_status.clone(), receivers.clone()).await;
        let client = match started {
            Ok(client) => client,
            Err(message) => {
                let _ = ready_tx.send(Err(message));
                return;
            }
        };
        let (outbox, mut outgoing) = mpsc::unbounded_channel::<(String, Bytes)>();
        let publisher = client.clone();
        actix::spawn(async move {
            while let Some((subject, payload)) = outgoing.recv().await {
                if let Err(e) = publisher.publish(subject, payload).await {
                    tracing::debug!(error = %e, "a relay was not published");
                }
            }
        });
        let link =
            ClusterLink { client, prefix, node: node.clone(), started_ms, ask_timeout, status: link_status, outbox }
                .start();
        link_router.do_send(JoinCluster {
            node,
            started_ms,
            heartbeat,
            lease,
            link: link.clone().recipient(),
            asker: link.clone().recipient(),
        });
        receivers.conference.do_send(LinkRooms { link: link.clone().recipient(), asker: link.clone().recipient() });
        receivers.fastpath.do_send(LinkFastpath { link: link.clone().recipient(), asker: link.recipient() });
        let _ = ready_tx.send(Ok(()));
    });
    let nats = status.nats.clone();
    match ready_rx.await {
        Ok(Ok(())) => Ok(status),
        Ok(Err(message)) => Err(LinkError { nats, message }),
        Err(_) => Err(LinkError { nats, message: "the cluster link stopped while starting".into() }),
    }
}

/// The NATS client, with this node's subjects subscribed and their relays going to `router`.
async fn connect_and_subscribe(
    url: &str,
    node: &str,
    prefix: &str,
    status: Arc<ClusterStatus>,
    receivers: Receivers,
) -> Result<async_nats::Client, String> {
    let events = status.clone();
    let restored_to = receivers.router.clone();
    let client = async_nats::ConnectOptions::new()
        .name(format!("switchboard {node}"))
        .no_echo()
        .retry_on_initial_connect()
        .max_reconnects(None)
        .reconnect_delay_callback(|attempts| Duration::from_millis((attempts as u64 * 100).min(2000)))
        .event_callback(move |event| {
            let status = events.clone();
            let router = restored_to.clone();
            async move {
                match event {
                    async_nats::Event::Connected => {
                        tracing::info!(nats = %status.nats, "connected to NATS");
                        status.connected.store(true, Relaxed);
                        status.since_ms.store(now_ms(), Relaxed);
                        if status.outages.load(Relaxed) > 0 {
                            router.do_send(LinkRestored);
                        }
                    }
                    async_nats::Event::Disconnected => {
                        tracing::warn!(nats = %status.nats, "lost NATS; serving local users only");
                        status.outages.fetch_add(1, Relaxed);
                        status.connected.store(false, Relaxed);
                        status.since_ms.store(now_ms(), Relaxed);
                    }
                    other => *status.last_error.lock().expect("the error slot") = Some(other.to_string()),
                }
            }
        })
        .connect(url)
        .await
        .map_err(|e| e.to_string())?;
    for subject in [format!("{prefix}.node.{node}"), format!("{prefix}.all")] {
        let subscription = client.subscribe(subject).await.map_err(|e| e.to_string())?;
        actix::spawn(receive(subscription, client.clone(), status.clone(), receivers.clone()));
    }
    Ok(client)
}

/// Hands each relay of `subscription` to the router or the rooms' registry, in order; an
/// ask's answer goes back to the asker. The router answers at once; a room's answer may
/// wait for a commit, so it is awaited aside while the next relays go on.
async fn receive(
    mut subscription: async_nats::Subscriber,
    client: async_nats::Client,
    status: Arc<ClusterStatus>,
    receivers: Receivers,
) {
    let Receivers { router, conference, fastpath } = receivers;
    while let Some(message) = subscription.next().await {
        let incoming: Incoming = match serde_json::from_slice(&message.payload) {
            Ok(incoming) => incoming,
            Err(e) => {
                status.relays_undecodable.fetch_add(1, Relaxed);
                tracing::warn!(subject = %message.subject, error = %e, "a relay from a peer did not decode");
                continue;
            }
        };
        let from_peer = FromPeer { node: incoming.node, started_ms: incoming.started_ms, relay: incoming.relay };
        if from_peer.relay.is_for_fastpath() {
            hand_aside(&fastpath, from_peer, message.reply, &client, &status);
            continue;
        }
        if from_peer.relay.is_for_rooms() {
            hand_aside(&conference, from_peer, message.reply, &client, &status);
            continue;
        }
        let Some(reply) = message.reply else {
            router.do_send(from_peer);
            continue;
        };
        let Ok(Some(answer)) = router.send(from_peer).await else {
            continue;
        };
        answer_peer(&client, &status, reply, &answer).await;
    }
}

/// Hands a relay to `registry` now (keeping the order relays came in); an ask's answer,
/// which may wait for a commit, is awaited and sent back aside.
fn hand_aside<A>(
    registry: &Addr<A>,
    from_peer: FromPeer,
    reply: Option<async_nats::Subject>,
    client: &async_nats::Client,
    status: &Arc<ClusterStatus>,
) where
    A: Actor + Handler<FromPeer>,
    A::Context: actix::dev::ToEnvelope<A, FromPeer>,
{
    let Some(reply) = reply else {
        registry.do_send(from_peer);
        return;
    };
    let answered = registry.send(from_peer);
    let (client, status) = (client.clone(), status.clone());
    actix::spawn(async move {
        if let Ok(Some(answer)) = answered.await {
            answer_peer(&client, &status, reply, &answer).await;
        }
    });
}

async fn answer_peer(client: &async_nats::Client, status: &ClusterStatus, reply: async_nats::Subject, answer: &Relay) {
    let outgoing = Outgoing { node: &status.node, started_ms: status.started_ms, relay: answer };
    let payload = Bytes::from(serde_json::to_vec(&outgoing).expect("a relay encodes"));
    if let Err(e) = client.publish(reply, payload).await {
        tracing::debug!(error = %e, "an answer to a peer was not published");
    }
}
