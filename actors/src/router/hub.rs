//! `Router`: the hub that owns the [`Directory`] and the [`StationTable`], and the helpers
//! every concern's handlers share (opening and closing stations, refusals, presence fan-out,
//! watchers, idle expiry).
//!
//! The handlers live beside it, one file per concern: `streams` (login streams and
//! connections), `messages` (1:1 messages, chat states, headlines, direct events),
//! `presence` (presence, probes, watchers, blocklists), `roster` (contact changes) and
//! `admin` (accounts, kicks, listings). Per-user work goes straight to each user's
//! [`UserSession`], whose address the stream handlers hand back to the doors.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use super::directory::Directory;
use super::stations::StationTable;
use crate::clock::now_ms;
use crate::cluster::protocol::RelayedPresence;
use crate::cluster::{ClusterMembership, Relay};
use crate::jid::Jid;
use crate::model::records::AccountKind;
use crate::model::{Address, Condition, Event, Payload};
use crate::muc::conference::Conference;
use crate::presence::{PresenceUpdate, Show};
use crate::random::random_hex;
use crate::route_error::RouteError;
use crate::storage::Storage;
use crate::user_session::{CloseStation, DeliverLive, IncomingPresence, OpenStation, Shutdown, UserSession};

/// What the core needs to know from the configuration.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// The XMPP domain of every address (`user@domain`).
    pub domain: String,
    /// A login stream with no connection and no use for this long ends.
    pub stream_idle_timeout: Duration,
    /// Most live connections one user may hold at once.
    pub max_connections_per_user: usize,
    /// Subscription requests are approved without asking the contact.
    pub roster_auto_accept: bool,
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct RouterStats {
    pub messages_routed: AtomicU64,
    pub messages_stored: AtomicU64,
    pub users_online: AtomicU64,
    pub stations: AtomicU64,
    pub connections: AtomicU64,
    /// Relays sent to and received from cluster peers (one per peer).
    pub relays_sent: AtomicU64,
    pub relays_received: AtomicU64,
}

/// A watched user's availability: online (any station), and available to chat (its
/// visible presence is available or `chat`, not away, xa or dnd). Sent to watchers.
#[derive(Message, Debug, Clone, PartialEq, Eq)]
#[rtype(result = "()")]
pub struct UserStatus {
    pub username: String,
    pub online: bool,
    pub available_to_chat: bool,
}

/// A 1:1 message was committed in `owner`'s conversation with `peer`: told to the
/// conversation feed for the users it watches.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct ConversationMoved {
    pub owner: String,
    pub peer: String,
    pub id: i64,
}

/// Webhook deliveries were queued (committed). Sent to the apps' outbox.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct DeliveriesQueued;

/// The registry and first hop. One per server.
pub struct Router {
    pub(super) config: Arc<CoreConfig>,
    pub(super) storage: Storage,
    pub(super) conference: Addr<Conference>,
    pub(super) directory: Directory,
    pub(super) stations: StationTable<Addr<UserSession>>,
    next_live_id: u64,
    pub(super) stats: Arc<RouterStats>,
    /// User → watchers of its availability (workgroups watching their agents), by key.
    pub(super) watchers: std::collections::HashMap<String, std::collections::HashMap<String, Recipient<UserStatus>>>,
    /// Where committed 1:1 messages of the watched users are told (the Ozeki change feed).
    pub(super) conversation_feed: Option<Recipient<ConversationMoved>>,
    pub(super) conversation_watched: std::collections::HashSet<String>,
    /// Told when a message to an app queued a webhook delivery.
    pub(super) app_outbox: Option<Recipient<DeliveriesQueued>>,
    /// This node's cluster, once it joined one.
    pub(super) cluster: Option<ClusterMembership>,
}

impl Router {
    /// A router over `storage`, knowing the accounts in `accounts` and the (blocker,
    /// blocked) pairs in `blocks`.
    pub fn new(
        config: CoreConfig,
        storage: Storage,
        conference: Addr<Conference>,
        accounts: Vec<(String, AccountKind)>,
        blocks: Vec<(String, String)>,
        stats: Arc<RouterStats>,
    ) -> Self {
        Router {
            config: Arc::new(config),
            storage,
            conference,
            directory: Directory::new(accounts, blocks),
            stations: StationTable::default(),
            next_live_id: 1,
            stats,
            watchers: Default::default(),
            conversation_feed: None,
            conversation_watched: Default::default(),
            app_outbox: None,
            cluster: None,
        }
    }

    /// Opens a station for `username` (starting its session if it is offline); its resource.
    pub(super) fn open_station(
        &mut self,
        username: &str,
        stream_id: Option<String>,
        wanted: Option<&str>,
        ctx: &mut Context<Self>,
    ) -> String {
        let (storage, conference) = (&self.storage, self.conference.clone());
        let router = ctx.address();
        let started = self.stations.ensure_online(username, || {
            UserSession::new(username.to_owned(), storage, router.clone().recipient(), router.recipient(), conference)
                .start()
        });
        if started {
            self.stats.users_online.fetch_add(1, Relaxed);
        }
        let taken = |name: &str| self.stations.user(username).is_some_and(|user| user.has_station(name));
        let resource = match wanted.filter(|name| valid_resource(name)) {
            Some(name) if !taken(name) => name.to_owned(),
            Some(name) => format!("{name}.{}", random_hex(3)),
            None => random_hex(6),
        };
        self.stations.open_station(username, &resource, stream_id, now_ms());
        if let Some(session) = self.stations.session(username) {
            session.do_send(OpenStation { resource: resource.clone() });
        }
        self.stats.stations.fetch_add(1, Relaxed);
        self.announce(username);
        resource
    }

    pub(super) fn close_station(&mut self, username: &str, resource: &str, reason: &str) {
        let Some(closed) = self.stations.close_station(username, resource) else {
            return;
        };
        self.stats.connections.fetch_sub(closed.connections as u64, Relaxed);
        self.stats.stations.fetch_sub(1, Relaxed);
        closed.session.do_send(CloseStation { resource: resource.to_owned(), reason: reason.to_owned() });
        if closed.user_gone {
            closed.session.do_send(Shutdown);
            self.notify_watchers(username);
            self.stats.users_online.fetch_sub(1, Relaxed);
        }
        self.announce(username);
    }

    pub(super) fn close_all(&mut self, username: &str, reason: &str) -> usize {
        let resources = self.stations.resources(username);
        for resource in &resources {
            self.close_station(username, resource, reason);
        }
        resources.len()
    }

    /// Whether `username` has a station on this node, and whether its visible presence here
    /// is available to chat.
    pub(super) fn local_status(&self, username: &str) -> (bool, bool) {
        let user = self.stations.user(username);
        let show = user.and_then(|u| u.presence.as_ref()).and_then(|p| p.availability.as_ref()).map(|a| a.show);
        (user.is_some(), matches!(show, Some(Show::Available | Show::Chat)))
    }

    /// A user's availability as its watchers see it, over every node of the cluster.
    pub(super) fn status_of(&self, username: &str) -> UserStatus {
        let (here, available_here) = self.local_status(username);
        let (there, available_there) = self.remote_status(username);
        UserStatus {
            username: username.to_owned(),
            online: here || there,
            available_to_chat: available_here || available_there,
        }
    }

    pub(super) fn notify_watchers(&self, username: &str) {
        if let Some(watchers) = self.watchers.get(username) {
            let status = self.status_of(username);
            for watcher in watchers.values() {
                watcher.do_send(status.clone());
            }
        }
    }

    /// An id for an event that is not a stored message.
    pub(super) fn live_id(&mut self, kind: &str) -> String {
        let id = format!("{kind}-{}", self.next_live_id);
        self.next_live_id += 1;
        id
    }

    /// Refuses a stanza because of a block: the sending station gets an error event (what
    /// an XMPP client gets as a stanza error), and the door gets the error to answer with.
    pub(super) fn refuse(&mut self, from: &Jid, to: &Jid, client_id: Option<String>, error: RouteError) -> RouteError {
        let id = client_id.unwrap_or_else(|| self.live_id("error"));
        let event = Event::new(Payload::StanzaError {
            id,
            from: Address::user(to.user.as_str()),
            to: Address::from(from),
            condition: match error {
                RouteError::YouBlocked(_) => Condition::NotAcceptable,
                _ => Condition::ServiceUnavailable,
            },
            text: error.to_string(),
        });
        if let Some(session) = self.stations.session(from.user.as_str()) {
            session.do_send(DeliverLive { event, resource: from.resource.clone() });
        }
        error
    }

    /// Pushes a presence to each online user in `to`, unless a block stands between them:
    /// here, and once to each peer that holds some of them.
    pub(super) fn fan_out_presence(&self, update: &Arc<PresenceUpdate>, to: &[String]) {
        let allowed = || to.iter().filter(|name| !self.directory.blocked_either(&update.from_user, name));
        for name in allowed() {
            if let Some(session) = self.stations.session(name) {
                session.do_send(IncomingPresence { update: update.clone(), resource: None });
            }
        }
        if let Some(cluster) = &self.cluster {
            let by_node = cluster.peers.group_by_node(allowed());
            if !by_node.is_empty() {
                let relayed = RelayedPresence::of(update);
                for (node, users) in by_node {
                    let relay = Relay::Presence { update: relayed.clone(), to: users, resource: None };
                    self.relay_to(vec![node], relay);
                }
            }
        }
    }

    pub(super) fn touch(&mut self, username: &str, resource: &str) {
        self.stations.touch(username, resource, now_ms());
    }

    /// Ends login streams nobody used for `stream_idle_timeout`.
    fn expire_idle_streams(&mut self) {
        let cutoff = now_ms() - self.config.stream_idle_timeout.as_millis() as i64;
        for (username, resource) in self.stations.idle_stations(cutoff) {
            tracing::debug!(%username, %resource, "login stream expired");
            self.close_station(&username, &resource, "the stream expired");
        }
    }
}

impl Actor for Router {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let every = (self.config.stream_idle_timeout / 4).clamp(Duration::from_millis(50), Duration::from_secs(30));
        ctx.run_interval(every, |act, _| act.expire_idle_streams());
    }
}

/// A resource a client may choose: 1 to 256 bytes, no control characters, no white space at
/// either end (RFC 7622's OpaqueString profile, short of its Unicode rules).
fn valid_resource(name: &str) -> bool {
    !name.is_empty() && name.len() <= 256 && name.trim() == name && !name.chars().any(char::is_control)
}
