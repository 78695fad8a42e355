//! The router in a cluster: joining (`JoinCluster`), heartbeats and peer leases, telling
//! peers which users this node holds, and applying what peers relay (`FromPeer`) to this
//! node's own stations.
//!
//! Every handler elsewhere does its local work as on one machine, then hands the part for
//! users held by peers to the helpers here ([`Router::relay_to_holders`],
//! [`Router::relay_to_peers`]), which send each relay once per node that needs it. What a
//! peer relays is applied here to local stations only and never relayed again.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use super::hub::Router;
use crate::clock::now_ms;
use crate::cluster::protocol::{PeerSession, RelayedPresence};
use crate::cluster::{AskPeers, ClusterMembership, FromPeer, Heard, Holding, Peers, Relay, Targets, ToPeers};
use crate::model::{Event, Payload};
use crate::muc::conference::PeerGone;
use crate::user_session::{
    ContactGone, DeliverLive, DeliverMessage, DeliverSentCopy, FlushPending, IncomingPresence, ReloadRoster,
    RosterChanged,
};

/// Holdings per snapshot relay: a snapshot of many users goes in parts, each well under
/// the bus's message size.
const SNAPSHOT_PART: usize = 2000;

/// Join a cluster: from now on this router tells `link` what is for peers, heartbeats
/// every `heartbeat`, and counts a peer dead after `lease` without one. Sent once by the
/// server after its cluster link started.
#[derive(Message)]
#[rtype(result = "()")]
pub struct JoinCluster {
    pub node: String,
    pub started_ms: i64,
    pub heartbeat: Duration,
    pub lease: Duration,
    pub link: Recipient<ToPeers>,
    pub asker: Recipient<AskPeers>,
}

impl Handler<JoinCluster> for Router {
    type Result = ();

    fn handle(&mut self, msg: JoinCluster, ctx: &mut Context<Self>) {
        self.cluster = Some(ClusterMembership {
            node: msg.node,
            started_ms: msg.started_ms,
            peers: Peers::new(msg.lease.as_millis() as i64),
            link: msg.link,
            asker: msg.asker,
        });
        self.heartbeat();
        ctx.run_interval(msg.heartbeat, |act, _| act.heartbeat());
    }
}

/// The live peers and the users they hold. Sent by `/system/readiness/cluster` and
/// `/metrics`.
#[derive(Message)]
#[rtype(result = "Option<ClusterView>")]
pub struct ViewCluster;

/// What this node knows of its cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterView {
    pub node: String,
    pub peers: Vec<String>,
    /// Users with a station on some peer.
    pub remote_users_online: usize,
}

impl Handler<ViewCluster> for Router {
    type Result = Option<ClusterView>;

    fn handle(&mut self, _: ViewCluster, _: &mut Context<Self>) -> Option<ClusterView> {
        self.cluster.as_ref().map(|c| ClusterView {
            node: c.node.clone(),
            peers: c.peers.nodes(),
            remote_users_online: c.peers.users_online(),
        })
    }
}

impl Router {
    /// The peers that hold `user`.
    pub(super) fn holders_of(&self, user: &str) -> Vec<String> {
        self.cluster.as_ref().map_or_else(Vec::new, |c| c.peers.nodes_of(user).map(str::to_owned).collect())
    }

    /// Sends `relay` to `nodes` (nothing when there are none).
    pub(super) fn relay_to(&self, nodes: Vec<String>, relay: Relay) {
        if let (Some(cluster), false) = (&self.cluster, nodes.is_empty()) {
            self.stats.relays_sent.fetch_add(nodes.len() as u64, Relaxed);
            cluster.link.do_send(ToPeers { targets: Targets::Nodes(nodes), relay: Arc::new(relay) });
        }
    }

    /// Sends `relay` to the peers that hold `user`.
    pub(super) fn relay_to_holders(&self, user: &str, relay: impl FnOnce() -> Relay) {
        let nodes = self.holders_of(user);
        if !nodes.is_empty() {
            self.relay_to(nodes, relay());
        }
    }

    /// Sends `relay` to every live peer.
    pub(super) fn relay_to_peers(&self, relay: impl FnOnce() -> Relay) {
        if let Some(cluster) = &self.cluster {
            self.relay_to(cluster.peers.nodes(), relay());
        }
    }

    /// Whether a peer holds station `resource` of `user`.
    pub(super) fn remote_station(&self, user: &str, resource: &str) -> bool {
        self.cluster.as_ref().is_some_and(|c| c.peers.has_station(user, resource))
    }

    /// Whether a peer holds a station of `user`, and whether one is available to chat.
    pub(super) fn remote_status(&self, user: &str) -> (bool, bool) {
        self.cluster.as_ref().map_or((false, false), |c| c.peers.online(user))
    }

    /// The user's stations on peers.
    pub(super) fn remote_station_count(&self, user: &str) -> usize {
        self.cluster.as_ref().map_or(0, |c| c.peers.station_count(user))
    }

    /// What this node holds of `user`, as its peers are told.
    fn holding_of(&self, user: &str) -> Holding {
        let available = self.stations.user(user).is_some_and(|_| self.local_status(user).1);
        Holding {
            resources: self.stations.resources(user),
            available,
            watched: self.conversation_watched.contains(user),
        }
    }

    /// Tells every peer what this node now holds of `user`.
    pub(super) fn announce(&self, user: &str) {
        if self.cluster.is_some() {
            let holding = self.holding_of(user);
            self.relay_to_peers(|| Relay::Holding { user: user.to_owned(), holding });
        }
    }

    fn heartbeat(&mut self) {
        let Some(cluster) = &mut self.cluster else {
            return;
        };
        cluster.link.do_send(ToPeers { targets: Targets::Everyone, relay: Arc::new(Relay::Heartbeat) });
        let dead = cluster.peers.expire(now_ms());
        for (node, gone) in dead {
            tracing::warn!(%node, users = gone.len(), "cluster peer stopped answering; its stations are gone");
            self.peer_gone(&node, gone);
        }
    }

    /// A peer died or restarted: its users' watchers hear, and what waited for its stations
    /// waits for any station (done by one node: the first live one by name).
    fn peer_gone(&mut self, node: &str, gone: Vec<(String, Holding)>) {
        let Some(cluster) = &self.cluster else {
            return;
        };
        self.conference.do_send(PeerGone { node: node.to_owned() });
        let cleaner = cluster.peers.nodes().into_iter().filter(|n| n != node).min();
        let this_node_cleans = cleaner.is_none_or(|first| cluster.node < first);
        for (user, holding) in gone {
            self.notify_watchers(&user);
            if this_node_cleans {
                for resource in holding.resources {
                    let retargeted = self.storage.messages.retarget_pending(user.clone(), resource);
                    actix::spawn(async move {
                        if let Err(e) = retargeted.await {
                            tracing::warn!(error = %e, "could not release the messages of a dead node's station");
                        }
                    });
                }
            }
        }
    }

    /// Everything this node holds, in parts, to `node`.
    fn send_snapshot(&self, node: &str, want_yours: bool, resync: bool) {
        let users: Vec<(String, Holding)> = self
            .stations
            .users()
            .map(|(name, _)| name.clone())
            .chain(self.conversation_watched.iter().filter(|u| self.stations.user(u).is_none()).cloned())
            .map(|name| {
                let holding = self.holding_of(&name);
                (name, holding)
            })
            .collect();
        let mut parts = users.chunks(SNAPSHOT_PART).peekable();
        if parts.peek().is_none() {
            let relay = Relay::Snapshot { users: Vec::new(), first: true, want_yours, resync };
            self.relay_to(vec![node.to_owned()], relay);
        }
        for (i, part) in parts.enumerate() {
            let first = i == 0;
            let relay = Relay::Snapshot {
                users: part.to_vec(),
                first,
                want_yours: want_yours && first,
                resync: resync && first,
            };
            self.relay_to(vec![node.to_owned()], relay);
        }
    }

    /// A peer's holding of `user` changed: its watchers hear if its availability did.
    fn set_remote_holding(&mut self, node: &str, user: &str, holding: Holding) {
        let before = self.status_of(user);
        let Some(cluster) = &mut self.cluster else {
            return;
        };
        if cluster.peers.set_holding(node, user, holding) && self.status_of(user) != before {
            self.notify_watchers(user);
        }
    }

    /// A committed message, for this node's stations of its sender and recipient.
    pub(super) fn deliver_committed_here(&self, message: &Arc<crate::model::StoredMessage>, relayed: bool) {
        let m = message;
        if let Some(feed) = &self.conversation_feed {
            for (owner, peer) in [(&m.from_user, &m.to_user), (&m.to_user, &m.from_user)] {
                if self.conversation_watched.contains(owner) {
                    feed.do_send(super::hub::ConversationMoved { owner: owner.clone(), peer: peer.clone(), id: m.id });
                }
            }
        }
        // The sender's other stations get a copy (XEP-0280 sent copies); most senders have
        // one station, and then no copy is made. On a peer, every station is another one.
        if m.from_user != m.to_user {
            if let Some(sender) = self.stations.user(&m.from_user) {
                let sent_here = !relayed && m.from_resource.is_some();
                if sender.station_count() > usize::from(sent_here) {
                    sender.session.do_send(DeliverSentCopy { message: m.clone() });
                }
            }
        }
        if let Some(session) = self.stations.session(&m.to_user) {
            session.do_send(DeliverMessage { message: m.clone() });
        }
    }

    /// A live event for this node's stations of `user`.
    pub(super) fn deliver_live_here(&self, user: &str, resource: Option<String>, event: Arc<Event>) {
        if let Some(online) = self.stations.user(user) {
            let resource = resource.filter(|r| online.has_station(r));
            online.session.do_send(DeliverLive { event, resource });
        }
    }

    fn apply_relay(&mut self, node: &str, relay: Relay) -> Option<Relay> {
        match relay {
            Relay::Heartbeat => {}
            Relay::Holding { user, holding } => self.set_remote_holding(node, &user, holding),
            Relay::Snapshot { users, first, want_yours, resync } => {
                if resync {
                    self.flush_all();
                }
                if first {
                    let Some(cluster) = &mut self.cluster else {
                        return None;
                    };
                    let gone = cluster.peers.replace_holdings(node);
                    for (user, _) in gone {
                        self.notify_watchers(&user);
                    }
                }
                for (user, holding) in users {
                    self.set_remote_holding(node, &user, holding);
                }
                if want_yours {
                    self.send_snapshot(node, false, false);
                }
            }
            Relay::Committed { message } => self.deliver_committed_here(&Arc::new(message), true),
            Relay::Live { user, resource, payload } => self.deliver_live_here(&user, resource, Event::new(payload)),
            Relay::LiveToAll { payload } => {
                let event = Event::new(payload);
                for (_, user) in self.stations.users() {
                    user.session.do_send(DeliverLive { event: event.clone(), resource: None });
                }
            }
            Relay::Presence { update, to, resource } => {
                let update = update.into_update();
                for name in &to {
                    if self.directory.blocked_either(&update.from_user, name) {
                        continue;
                    }
                    if let Some(session) = self.stations.session(name) {
                        session.do_send(IncomingPresence { update: update.clone(), resource: resource.clone() });
                    }
                }
            }
            Relay::Probe { requester, resource, contacts } => {
                for contact in &contacts {
                    if self.directory.blocked_either(&requester, contact) {
                        continue;
                    }
                    if let Some(update) = self.stations.user(contact).and_then(|c| c.presence.as_ref()) {
                        let relay = Relay::Presence {
                            update: RelayedPresence::of(update),
                            to: vec![requester.clone()],
                            resource: resource.clone(),
                        };
                        self.relay_to(vec![node.to_owned()], relay);
                    }
                }
            }
            Relay::Notice { notice } => {
                let event = Event::new(Payload::Subscription {
                    kind: notice.kind,
                    from: notice.from.clone(),
                    to: notice.to.clone(),
                });
                self.deliver_live_here(&notice.to, None, event);
            }
            Relay::RosterChanged { change } => {
                if let Some(session) = self.stations.session(&change.owner) {
                    session.do_send(RosterChanged { change });
                }
            }
            Relay::RostersStale { usernames } => {
                for username in &usernames {
                    if let Some(session) = self.stations.session(username) {
                        session.do_send(ReloadRoster);
                    }
                }
            }
            Relay::Kick { username, reason } => {
                self.close_all(&username, &reason);
            }
            Relay::AccountAdded { username, kind } => self.directory.add(username, kind),
            Relay::AccountRemoved { username } => {
                self.directory.remove(&username);
                self.close_all(&username, "the account was deleted");
                for (_, user) in self.stations.users() {
                    user.session.do_send(ContactGone { username: username.clone() });
                }
            }
            Relay::AppKnown { username, app_id } => self.directory.set_app(&username, app_id),
            Relay::Block { blocker, blocked, on } => self.apply_block(&blocker, &blocked, on),
            Relay::ListSessions => {
                let sessions = self
                    .stations
                    .sessions()
                    .into_iter()
                    .map(|s| PeerSession {
                        username: s.username,
                        resource: s.resource,
                        stream_id: s.stream_id,
                        created_ms: s.created_ms,
                        last_active_ms: s.last_active_ms,
                        connections: s.connections,
                        doors: s.doors,
                    })
                    .collect();
                return Some(Relay::Sessions { sessions });
            }
            Relay::Sessions { .. } | Relay::RoomAnswer { .. } | Relay::FastpathAnswer { .. } => {}
            Relay::FastpathCall { .. } | Relay::FastpathPush { .. } => {}
            // The link hands these to the rooms' registry; one that came here is dropped.
            Relay::RoomCall { .. } | Relay::RoomEvents { .. } | Relay::RoomKnown { .. } | Relay::RoomGone { .. } => {}
        }
        None
    }
}

impl Handler<FromPeer> for Router {
    type Result = Option<Relay>;

    fn handle(&mut self, msg: FromPeer, _: &mut Context<Self>) -> Option<Relay> {
        let cluster = self.cluster.as_mut()?;
        if msg.node == cluster.node {
            return None; // Our own heartbeat, back from the shared subject.
        }
        self.stats.relays_received.fetch_add(1, Relaxed);
        match cluster.peers.heard(&msg.node, msg.started_ms, now_ms()) {
            Heard::Known => {}
            Heard::New => {
                tracing::info!(node = %msg.node, "cluster peer joined");
                self.send_snapshot(&msg.node, true, false);
            }
            Heard::Returned => {
                // What either side relayed while they could not hear each other was lost.
                tracing::info!(node = %msg.node, "cluster peer is back in reach");
                self.send_snapshot(&msg.node, true, true);
                self.flush_all();
            }
            Heard::Restarted { gone } => {
                tracing::info!(node = %msg.node, "cluster peer restarted");
                self.peer_gone(&msg.node, gone);
                self.send_snapshot(&msg.node, true, false);
            }
        }
        self.apply_relay(&msg.node, msg.relay)
    }
}

/// The cluster link is connected again after an outage. Sent by the link.
#[derive(Message)]
#[rtype(result = "()")]
pub struct LinkRestored;

impl Handler<LinkRestored> for Router {
    type Result = ();

    fn handle(&mut self, _: LinkRestored, _: &mut Context<Self>) {
        let Some(cluster) = &self.cluster else {
            return;
        };
        // Relays both ways may be lost: this node's users read again what waits for them,
        // and so do the peers' (they hear it from the snapshot).
        for node in cluster.peers.nodes() {
            self.send_snapshot(&node, true, true);
        }
        self.flush_all();
    }
}

impl Router {
    /// Every local user reads what waits for it again: relays lost while a peer was out of
    /// reach (a bus outage) leave their messages pending in the store.
    fn flush_all(&self) {
        for (_, user) in self.stations.users() {
            user.session.do_send(FlushPending);
        }
    }
}
