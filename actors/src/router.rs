//! `Router`: the registry of accounts, online users, login streams and stations, and the
//! first hop of every message.
//!
//! Doors send it `Login`, `Attach`, `Submit` and friends; it answers from its own tables
//! (never touching SQLite itself) and forwards per-user work to each user's
//! [`UserSession`]. A submitted message is handed to the store; when its transaction
//! commits, the store's writer thread sends [`MessageCommitted`] back here, in commit
//! order, and the router passes it to the recipient's session for delivery.
//!
//! It also holds what presence needs across users: each online user's last visible
//! presence (answering probes) and every blocklist (checked on every message, chat state,
//! presence and subscription request, for offline recipients too).

use std::collections::{HashMap, HashSet};
use std::future::ready;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use crate::clock::now_ms;
use crate::jid::{Jid, Username};
use crate::model::{Address, ChatState, Condition, Event, NewMessage, Payload, Push, StoredMessage};
use crate::muc::conference::Conference;
use crate::muc::room::Joined;
use crate::muc::RoomError;
use crate::presence::{Availability, PresenceUpdate, Show, StationPresence};
use crate::random::random_hex;
use crate::roster::{self, RosterError, RosterOp, Transition};
use crate::store::{Store, StoreError};
use crate::user_session::{
    AttachConnection, CloseStation, ContactGone, ContactView, DeliverLive, DeliverMessage, DetachConnection, EnterRoom,
    ExitRoom, GetPresence, IncomingPresence, ListContacts, OpenStation, RosterChanged, SetStationPresence, Shutdown,
    UserSession,
};

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

/// Why the router refused a request.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RouteError {
    #[error("user '{0}' does not exist")]
    UnknownUser(String),
    #[error("stream '{0}' does not exist (it may have expired or been logged off)")]
    UnknownStream(String),
    #[error("stream '{0}' belongs to another user")]
    NotYourStream(String),
    #[error("too many connections for this user (limit {0})")]
    TooManyConnections(usize),
    #[error("'{0}' is not accepting messages or requests from you")]
    NotAccepting(String),
    #[error("you have blocked '{0}'; unblock them first")]
    YouBlocked(String),
    #[error("you cannot {0} yourself")]
    Yourself(&'static str),
    #[error("you do not see the presence of '{0}' (not a contact you are subscribed to)")]
    NotSubscribed(String),
    #[error("user '{0}' has no live session")]
    Offline(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct RouterStats {
    pub messages_routed: AtomicU64,
    pub messages_stored: AtomicU64,
    pub users_online: AtomicU64,
    pub stations: AtomicU64,
    pub connections: AtomicU64,
}

/// A login stream or station as the doors see it.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamInfo {
    pub stream_id: Option<String>,
    pub username: String,
    pub resource: String,
}

impl StreamInfo {
    /// The station's full address.
    pub fn jid(&self) -> Jid {
        Jid::full(Username::parse(&self.username).expect("stored user names are valid"), self.resource.clone())
    }
}

/// One station in an admin listing (`GET /restapi/v1/sessions`).
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub username: String,
    pub resource: String,
    pub stream_id: Option<String>,
    pub created_ms: i64,
    pub last_active_ms: i64,
    pub connections: usize,
    pub doors: Vec<&'static str>,
}

struct OnlineUser {
    session: Addr<UserSession>,
    stations: HashMap<String, StationEntry>,
    connections: usize,
    /// The user's last visible presence, if available: what probes are answered with.
    presence: Option<Arc<PresenceUpdate>>,
}

struct StationEntry {
    stream_id: Option<String>,
    created_ms: i64,
    last_active_ms: i64,
    /// Open connections, by id, with the door each came through.
    connections: HashMap<u64, &'static str>,
}

impl StationEntry {
    /// A station of its own for one connection: it ends when that connection closes.
    fn is_connection_owned(&self) -> bool {
        self.stream_id.is_none()
    }
}

/// The registry and first hop. One per server.
pub struct Router {
    config: Arc<CoreConfig>,
    store: Store,
    conference: Addr<Conference>,
    directory: HashSet<String>,
    online: HashMap<String, OnlineUser>,
    /// Login stream id → (user, resource).
    streams: HashMap<String, (String, String)>,
    /// Blocker → the users it blocks (XEP-0191), for every user.
    blocks: HashMap<String, HashSet<String>>,
    next_connection_id: u64,
    next_live_id: u64,
    stats: Arc<RouterStats>,
    /// User → watchers of its availability (workgroups watching their agents), by key.
    watchers: HashMap<String, HashMap<String, Recipient<UserStatus>>>,
}

impl Router {
    /// A router over `store`, knowing the accounts in `usernames` and the (blocker,
    /// blocked) pairs in `blocks`.
    pub fn new(
        config: CoreConfig,
        store: Store,
        conference: Addr<Conference>,
        usernames: Vec<String>,
        blocks: Vec<(String, String)>,
        stats: Arc<RouterStats>,
    ) -> Self {
        let mut blocklists: HashMap<String, HashSet<String>> = HashMap::new();
        for (blocker, blocked) in blocks {
            blocklists.entry(blocker).or_default().insert(blocked);
        }
        Router {
            config: Arc::new(config),
            store,
            conference,
            directory: usernames.into_iter().collect(),
            online: HashMap::new(),
            streams: HashMap::new(),
            blocks: blocklists,
            next_connection_id: 1,
            next_live_id: 1,
            stats,
            watchers: HashMap::new(),
        }
    }

    fn session_for(&mut self, username: &str, router: Addr<Router>) -> &mut OnlineUser {
        if !self.online.contains_key(username) {
            let session =
                UserSession::new(username.to_owned(), self.store.clone(), router, self.conference.clone()).start();
            self.online.insert(
                username.to_owned(),
                OnlineUser { session, stations: HashMap::new(), connections: 0, presence: None },
            );
            self.stats.users_online.fetch_add(1, Relaxed);
        }
        self.online.get_mut(username).expect("inserted above")
    }

    fn open_station(&mut self, username: &str, stream_id: Option<String>, router: Addr<Router>) -> String {
        let resource = random_hex(6);
        let now = now_ms();
        let user = self.session_for(username, router);
        user.session.do_send(OpenStation { resource: resource.clone() });
        user.stations.insert(
            resource.clone(),
            StationEntry {
                stream_id: stream_id.clone(),
                created_ms: now,
                last_active_ms: now,
                connections: HashMap::new(),
            },
        );
        if let Some(id) = stream_id {
            self.streams.insert(id, (username.to_owned(), resource.clone()));
        }
        self.stats.stations.fetch_add(1, Relaxed);
        resource
    }

    fn close_station(&mut self, username: &str, resource: &str, reason: &str) {
        let Some(user) = self.online.get_mut(username) else {
            return;
        };
        let Some(entry) = user.stations.remove(resource) else {
            return;
        };
        if let Some(id) = &entry.stream_id {
            self.streams.remove(id);
        }
        user.connections -= entry.connections.len();
        self.stats.connections.fetch_sub(entry.connections.len() as u64, Relaxed);
        self.stats.stations.fetch_sub(1, Relaxed);
        user.session.do_send(CloseStation { resource: resource.to_owned(), reason: reason.to_owned() });
        if user.stations.is_empty() {
            user.session.do_send(Shutdown);
            self.online.remove(username);
            self.notify_watchers(username);
            self.stats.users_online.fetch_sub(1, Relaxed);
        }
    }

    fn close_all(&mut self, username: &str, reason: &str) -> usize {
        let resources: Vec<String> =
            self.online.get(username).map(|u| u.stations.keys().cloned().collect()).unwrap_or_default();
        for resource in &resources {
            self.close_station(username, resource, reason);
        }
        resources.len()
    }

    /// A user's availability as its watchers see it.
    fn status_of(&self, username: &str) -> UserStatus {
        let user = self.online.get(username);
        let show = user.and_then(|u| u.presence.as_ref()).and_then(|p| p.availability.as_ref()).map(|a| a.show);
        UserStatus {
            username: username.to_owned(),
            online: user.is_some(),
            available_to_chat: matches!(show, Some(Show::Available | Show::Chat)),
        }
    }

    fn notify_watchers(&self, username: &str) {
        if let Some(watchers) = self.watchers.get(username) {
            let status = self.status_of(username);
            for watcher in watchers.values() {
                watcher.do_send(status.clone());
            }
        }
    }

    /// An id for an event that is not a stored message.
    fn live_id(&mut self, kind: &str) -> String {
        let id = format!("{kind}-{}", self.next_live_id);
        self.next_live_id += 1;
        id
    }

    /// Whether either user blocks the other.
    fn blocked_either(&self, a: &str, b: &str) -> bool {
        let blocks = |x: &str, y: &str| self.blocks.get(x).is_some_and(|set| set.contains(y));
        blocks(a, b) || blocks(b, a)
    }

    /// Why `from` may not send to `to`, if a block stands between them (XEP-0191 §3.5).
    fn block_refusal(&self, from: &str, to: &str) -> Option<RouteError> {
        if self.blocks.get(to).is_some_and(|set| set.contains(from)) {
            Some(RouteError::NotAccepting(to.to_owned()))
        } else if self.blocks.get(from).is_some_and(|set| set.contains(to)) {
            Some(RouteError::YouBlocked(to.to_owned()))
        } else {
            None
        }
    }

    /// Refuses a stanza because of a block: the sending station gets an error event (what
    /// an XMPP client gets as a stanza error), and the door gets the error to answer with.
    fn refuse(&mut self, from: &Jid, to: &Jid, client_id: Option<String>, error: RouteError) -> RouteError {
        let condition = match error {
            RouteError::YouBlocked(_) => Condition::NotAcceptable,
            _ => Condition::ServiceUnavailable,
        };
        let id = client_id.unwrap_or_else(|| self.live_id("error"));
        let event = Event::new(Payload::StanzaError {
            id,
            from: Address::user(to.user.as_str()),
            to: Address::from(from),
            condition,
            text: error.to_string(),
        });
        if let Some(user) = self.online.get(from.user.as_str()) {
            user.session.do_send(DeliverLive { event, resource: from.resource.clone() });
        }
        error
    }

    /// Pushes a presence to each online user in `to`, unless a block stands between them.
    fn fan_out_presence(&self, update: &Arc<PresenceUpdate>, to: &[String]) {
        for name in to {
            if self.blocked_either(&update.from_user, name) {
                continue;
            }
            if let Some(user) = self.online.get(name) {
                user.session.do_send(IncomingPresence { update: update.clone(), resource: None });
            }
        }
    }

    fn touch(&mut self, username: &str, resource: &str) {
        if let Some(entry) = self.online.get_mut(username).and_then(|u| u.stations.get_mut(resource)) {
            entry.last_active_ms = now_ms();
        }
    }

    /// Ends login streams nobody used for `stream_idle_timeout`.
    fn expire_idle_streams(&mut self) {
        let cutoff = now_ms() - self.config.stream_idle_timeout.as_millis() as i64;
        let idle: Vec<(String, String)> = self
            .online
            .iter()
            .flat_map(|(name, user)| {
                user.stations
                    .iter()
                    .filter(|(_, s)| s.connections.is_empty() && s.last_active_ms < cutoff)
                    .map(move |(res, _)| (name.clone(), res.clone()))
            })
            .collect();
        for (username, resource) in idle {
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

/// Open a login stream (a new station) for a user. Sent by the chat API's login.
#[derive(Message)]
#[rtype(result = "Result<StreamInfo, RouteError>")]
pub struct Login {
    pub username: String,
}

impl Handler<Login> for Router {
    type Result = Result<StreamInfo, RouteError>;

    fn handle(&mut self, msg: Login, ctx: &mut Context<Self>) -> Self::Result {
        if !self.directory.contains(&msg.username) {
            return Err(RouteError::UnknownUser(msg.username));
        }
        let stream_id = random_hex(16);
        let resource = self.open_station(&msg.username, Some(stream_id.clone()), ctx.address());
        Ok(StreamInfo { stream_id: Some(stream_id), username: msg.username, resource })
    }
}

/// End a login stream and its station. Sent by the chat API's logoff.
#[derive(Message)]
#[rtype(result = "Result<(), RouteError>")]
pub struct Logoff {
    pub stream_id: String,
}

impl Handler<Logoff> for Router {
    type Result = Result<(), RouteError>;

    fn handle(&mut self, msg: Logoff, _: &mut Context<Self>) -> Self::Result {
        let (username, resource) =
            self.streams.get(&msg.stream_id).cloned().ok_or(RouteError::UnknownStream(msg.stream_id))?;
        self.close_station(&username, &resource, "logged off");
        Ok(())
    }
}

/// Look a login stream up (and count it as used). Sent by every `/chat/{streamid}/…` call.
#[derive(Message)]
#[rtype(result = "Option<StreamInfo>")]
pub struct ResolveStream {
    pub stream_id: String,
}

impl Handler<ResolveStream> for Router {
    type Result = Option<StreamInfo>;

    fn handle(&mut self, msg: ResolveStream, _: &mut Context<Self>) -> Self::Result {
        let (username, resource) = self.streams.get(&msg.stream_id).cloned()?;
        self.touch(&username, &resource);
        Some(StreamInfo { stream_id: Some(msg.stream_id), username, resource })
    }
}

/// Attach a live connection to a station. Sent by the SSE and websocket doors.
///
/// With `stream_id`, the connection joins that login stream; without, the user's most
/// recent login stream; without either, a station of its own that ends with it.
#[derive(Message)]
#[rtype(result = "Result<Attached, RouteError>")]
pub struct Attach {
    pub username: String,
    pub stream_id: Option<String>,
    pub connection: Recipient<Push>,
    /// Which door the connection came through (`sse`, `ws`), for listings and metrics.
    pub door: &'static str,
}

/// Where a connection was attached.
#[derive(Debug, Clone)]
pub struct Attached {
    pub station: StreamInfo,
    pub connection_id: u64,
}

impl Handler<Attach> for Router {
    type Result = Result<Attached, RouteError>;

    fn handle(&mut self, msg: Attach, ctx: &mut Context<Self>) -> Self::Result {
        if !self.directory.contains(&msg.username) {
            return Err(RouteError::UnknownUser(msg.username));
        }
        let open = self.online.get(&msg.username).map_or(0, |u| u.connections);
        if open >= self.config.max_connections_per_user {
            return Err(RouteError::TooManyConnections(self.config.max_connections_per_user));
        }
        let (resource, stream_id) = match msg.stream_id {
            Some(id) => {
                let (owner, resource) =
                    self.streams.get(&id).cloned().ok_or_else(|| RouteError::UnknownStream(id.clone()))?;
                if owner != msg.username {
                    return Err(RouteError::NotYourStream(id));
                }
                (resource, Some(id))
            }
            None => {
                let latest = self.online.get(&msg.username).and_then(|u| {
                    u.stations
                        .iter()
                        .filter(|(_, s)| s.stream_id.is_some())
                        .max_by_key(|(_, s)| s.created_ms)
                        .map(|(res, s)| (res.clone(), s.stream_id.clone()))
                });
                match latest {
                    Some(found) => found,
                    None => (self.open_station(&msg.username, None, ctx.address()), None),
                }
            }
        };
        let connection_id = self.next_connection_id;
        self.next_connection_id += 1;
        let user = self.online.get_mut(&msg.username).expect("the station's user is online");
        let entry = user.stations.get_mut(&resource).expect("resolved above");
        entry.connections.insert(connection_id, msg.door);
        entry.last_active_ms = now_ms();
        user.connections += 1;
        self.stats.connections.fetch_add(1, Relaxed);
        user.session.do_send(AttachConnection {
            resource: resource.clone(),
            connection_id,
            connection: msg.connection,
        });
        Ok(Attached { station: StreamInfo { stream_id, username: msg.username, resource }, connection_id })
    }
}

/// A connection closed. Sent by the connection's door.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Detach {
    pub username: String,
    pub resource: String,
    pub connection_id: u64,
}

impl Handler<Detach> for Router {
    type Result = ();

    fn handle(&mut self, msg: Detach, _: &mut Context<Self>) {
        let Some(user) = self.online.get_mut(&msg.username) else {
            return;
        };
        let Some(entry) = user.stations.get_mut(&msg.resource) else {
            return;
        };
        if entry.connections.remove(&msg.connection_id).is_none() {
            return;
        }
        entry.last_active_ms = now_ms();
        user.connections -= 1;
        self.stats.connections.fetch_sub(1, Relaxed);
        let owned_and_empty = entry.is_connection_owned() && entry.connections.is_empty();
        user.session.do_send(DetachConnection { resource: msg.resource.clone(), connection_id: msg.connection_id });
        if owned_and_empty {
            self.close_station(&msg.username, &msg.resource, "connection closed");
        }
    }
}

/// Store and route a message. Sent by every door; replies once the message is committed.
#[derive(Message)]
#[rtype(result = "Result<Arc<StoredMessage>, RouteError>")]
pub struct Submit {
    pub message: NewMessage,
}

impl Handler<Submit> for Router {
    type Result = ResponseFuture<Result<Arc<StoredMessage>, RouteError>>;

    fn handle(&mut self, msg: Submit, ctx: &mut Context<Self>) -> Self::Result {
        let message = msg.message;
        let to_user = message.to.user.as_str();
        if !self.directory.contains(to_user) {
            return Box::pin(ready(Err(RouteError::UnknownUser(to_user.to_owned()))));
        }
        if let Some(refusal) = self.block_refusal(message.from.user.as_str(), to_user) {
            let error = self.refuse(&message.from, &message.to, message.client_id.clone(), refusal);
            return Box::pin(ready(Err(error)));
        }
        // RFC 6121 §8.5.3.2.1: a full address whose resource is not a station of the user is
        // treated as the bare address.
        let deliver_to = message
            .to
            .resource
            .clone()
            .filter(|res| self.online.get(to_user).is_some_and(|u| u.stations.contains_key(res)));
        if let Some(res) = &message.from.resource {
            self.touch(message.from.user.as_str(), res);
        }
        self.stats.messages_routed.fetch_add(1, Relaxed);
        let feed = ctx.address();
        let stored = self.store.append_message(message, deliver_to, move |committed| {
            feed.do_send(MessageCommitted { message: committed.clone() })
        });
        Box::pin(async move { stored.await.map_err(RouteError::from) })
    }
}

/// A message was committed. Sent by the store's writer thread, in commit order.
#[derive(Message)]
#[rtype(result = "()")]
pub struct MessageCommitted {
    pub message: Arc<StoredMessage>,
}

impl Handler<MessageCommitted> for Router {
    type Result = ();

    fn handle(&mut self, msg: MessageCommitted, _: &mut Context<Self>) {
        self.stats.messages_stored.fetch_add(1, Relaxed);
        if let Some(user) = self.online.get(&msg.message.to_user) {
            user.session.do_send(DeliverMessage { message: msg.message });
        }
        // Otherwise the recipient is offline: the message stays pending in the store.
    }
}

/// A chat state for the recipient's live stations; not archived, not stored offline. Sent
/// by the chat API and `/ws`.
#[derive(Message)]
#[rtype(result = "Result<(), RouteError>")]
pub struct SendChatState {
    pub from: Jid,
    pub to: Jid,
    pub state: ChatState,
}

impl Handler<SendChatState> for Router {
    type Result = Result<(), RouteError>;

    fn handle(&mut self, msg: SendChatState, _: &mut Context<Self>) -> Self::Result {
        let to_user = msg.to.user.as_str();
        if !self.directory.contains(to_user) {
            return Err(RouteError::UnknownUser(to_user.to_owned()));
        }
        if let Some(refusal) = self.block_refusal(msg.from.user.as_str(), to_user) {
            return Err(self.refuse(&msg.from, &msg.to, None, refusal));
        }
        if let Some(res) = &msg.from.resource {
            self.touch(msg.from.user.as_str(), res);
        }
        let id = self.live_id("state");
        let Some(user) = self.online.get(to_user) else {
            return Ok(()); // Offline: a chat state is not worth keeping.
        };
        // As for messages, a resource that is no station of the user means the bare address.
        let resource = msg.to.resource.clone().filter(|r| user.stations.contains_key(r));
        let event = Event::new(Payload::ChatState {
            id,
            from: Address::from(&msg.from),
            to: Address::from(&msg.to),
            state: msg.state,
        });
        user.session.do_send(DeliverLive { event, resource });
        Ok(())
    }
}

/// A headline to every online user, live only. Sent by the admin API; replies with the
/// number of users it reached.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct Broadcast {
    pub body: String,
}

impl Handler<Broadcast> for Router {
    type Result = usize;

    fn handle(&mut self, msg: Broadcast, _: &mut Context<Self>) -> usize {
        let id = self.live_id("headline");
        // Rendered once; every session and station shares the same Arc.
        let event = Event::new(Payload::Headline { id, body: msg.body, stamp_ms: now_ms() });
        for user in self.online.values() {
            user.session.do_send(DeliverLive { event: event.clone(), resource: None });
        }
        self.online.len()
    }
}

/// End every station of a user. Sent by the admin API; replies with how many ended.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct Kick {
    pub username: String,
    pub reason: String,
}

impl Handler<Kick> for Router {
    type Result = usize;

    fn handle(&mut self, msg: Kick, _: &mut Context<Self>) -> usize {
        self.close_all(&msg.username, &msg.reason)
    }
}

/// An account was created. Sent by the admin API after the store committed it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct UserAdded {
    pub username: String,
}

impl Handler<UserAdded> for Router {
    type Result = ();

    fn handle(&mut self, msg: UserAdded, _: &mut Context<Self>) {
        self.directory.insert(msg.username);
    }
}

/// An account was deleted: it can no longer receive, and its stations end. Sent by the
/// admin API after the store committed it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct UserRemoved {
    pub username: String,
}

impl Handler<UserRemoved> for Router {
    type Result = ();

    fn handle(&mut self, msg: UserRemoved, _: &mut Context<Self>) {
        self.directory.remove(&msg.username);
        self.close_all(&msg.username, "the account was deleted");
        // The store dropped the account's contacts and blocks; the live tables follow.
        self.blocks.remove(&msg.username);
        for set in self.blocks.values_mut() {
            set.remove(&msg.username);
        }
        for user in self.online.values() {
            user.session.do_send(ContactGone { username: msg.username.clone() });
        }
    }
}

/// Every station of every online user. Sent by the admin API.
#[derive(Message)]
#[rtype(result = "Vec<SessionInfo>")]
pub struct ListSessions;

/// Live stations and connections by door, for `/metrics`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Census {
    pub users_online: u64,
    pub stations: u64,
    /// Door → stations with at least one connection through it.
    pub stations_by_door: std::collections::BTreeMap<&'static str, u64>,
    /// Door → open connections.
    pub connections_by_door: std::collections::BTreeMap<&'static str, u64>,
}

/// Count what is live. Sent by `/metrics`.
#[derive(Message)]
#[rtype(result = "Census")]
pub struct TakeCensus;

impl Handler<TakeCensus> for Router {
    type Result = MessageResult<TakeCensus>;

    fn handle(&mut self, _: TakeCensus, _: &mut Context<Self>) -> Self::Result {
        let mut census = Census { users_online: self.online.len() as u64, ..Census::default() };
        for user in self.online.values() {
            for station in user.stations.values() {
                census.stations += 1;
                let mut doors: Vec<&'static str> = station.connections.values().copied().collect();
                for door in &doors {
                    *census.connections_by_door.entry(door).or_default() += 1;
                }
                doors.sort_unstable();
                doors.dedup();
                for door in doors {
                    *census.stations_by_door.entry(door).or_default() += 1;
                }
            }
        }
        MessageResult(census)
    }
}

impl Handler<ListSessions> for Router {
    type Result = Vec<SessionInfo>;

    fn handle(&mut self, _: ListSessions, _: &mut Context<Self>) -> Vec<SessionInfo> {
        let mut out: Vec<SessionInfo> = self
            .online
            .iter()
            .flat_map(|(name, user)| {
                user.stations.iter().map(move |(res, s)| {
                    let mut doors: Vec<&'static str> = s.connections.values().copied().collect();
                    doors.sort_unstable();
                    doors.dedup();
                    SessionInfo {
                        username: name.clone(),
                        resource: res.clone(),
                        stream_id: s.stream_id.clone(),
                        created_ms: s.created_ms,
                        last_active_ms: s.last_active_ms,
                        connections: s.connections.len(),
                        doors,
                    }
                })
            })
            .collect();
        out.sort_by(|a, b| (&a.username, a.created_ms).cmp(&(&b.username, b.created_ms)));
        out
    }
}

// ---- contacts, presence, blocklists -----------------------------------------------------

/// Change a roster (add, update, remove a contact; or the admin's direct set). Sent by the
/// chat and admin APIs; replies after the commit with both sides' rows.
#[derive(Message)]
#[rtype(result = "Result<Transition, RouteError>")]
pub struct ChangeRoster {
    pub owner: String,
    pub contact: String,
    pub op: RosterOp,
}

impl Handler<ChangeRoster> for Router {
    type Result = ResponseFuture<Result<Transition, RouteError>>;

    fn handle(&mut self, msg: ChangeRoster, ctx: &mut Context<Self>) -> Self::Result {
        if msg.owner == msg.contact {
            return Box::pin(ready(Err(RouteError::Yourself("add as a contact"))));
        }
        for name in [&msg.owner, &msg.contact] {
            if !self.directory.contains(name) {
                return Box::pin(ready(Err(RouteError::UnknownUser(name.clone()))));
            }
        }
        if matches!(msg.op, RosterOp::Add { .. }) {
            if let Some(refusal) = self.block_refusal(&msg.owner, &msg.contact) {
                return Box::pin(ready(Err(refusal)));
            }
        }
        let feed = ctx.address();
        let (owner, contact, op) = (msg.owner.clone(), msg.contact.clone(), msg.op);
        let auto_accept = self.config.roster_auto_accept;
        // RFC 6121's rules, run by the store inside the pair's transaction.
        let rule = move |mine, theirs| {
            roster::apply(op, &owner, &contact, mine, theirs, auto_accept).map_err(|e| match e {
                RosterError::AlreadyListed(_) => StoreError::Conflict(e.to_string()),
                RosterError::NotListed(_) => StoreError::NotFound(e.to_string()),
            })
        };
        let changed = self.store.change_roster(msg.owner, msg.contact, rule, move |transition| {
            feed.do_send(RosterCommitted { transition: transition.clone() })
        });
        Box::pin(async move { changed.await.map_err(RouteError::from) })
    }
}

/// A roster change committed. Sent by the store's writer thread, in commit order.
#[derive(Message)]
#[rtype(result = "()")]
struct RosterCommitted {
    transition: Transition,
}

impl Handler<RosterCommitted> for Router {
    type Result = ();

    fn handle(&mut self, msg: RosterCommitted, _: &mut Context<Self>) {
        let Transition { owner_side, contact_side, notices } = msg.transition;
        // The notices first: a contact hears "subscribed" before the presence it allows.
        for notice in notices {
            if let Some(user) = self.online.get(&notice.to) {
                let event = Event::new(Payload::Subscription {
                    kind: notice.kind,
                    from: notice.from.clone(),
                    to: notice.to.clone(),
                });
                user.session.do_send(DeliverLive { event, resource: None });
            }
        }
        for change in [owner_side, contact_side] {
            if let Some(user) = self.online.get(&change.owner) {
                user.session.do_send(RosterChanged { change });
            }
        }
    }
}

/// A user's presence for some of its contacts. Sent by the user's session: `broadcast` for
/// a change of its visible presence (to every subscriber; also remembered for probes),
/// otherwise a directed presence (to a new or former subscriber).
#[derive(Message)]
#[rtype(result = "()")]
pub struct PresenceOut {
    pub sender: Addr<UserSession>,
    pub update: Arc<PresenceUpdate>,
    pub to: Vec<String>,
    pub broadcast: bool,
}

impl Handler<PresenceOut> for Router {
    type Result = ();

    fn handle(&mut self, msg: PresenceOut, _: &mut Context<Self>) {
        if let Some(user) = self.online.get_mut(&msg.update.from_user) {
            if user.session != msg.sender {
                return; // From a session that already ended; the new one speaks for the user.
            }
            if msg.broadcast {
                user.presence = msg.update.availability.is_some().then(|| msg.update.clone());
                self.notify_watchers(&msg.update.from_user);
            }
        }
        self.fan_out_presence(&msg.update, &msg.to);
    }
}

/// Ask for the current presence of contacts. Sent by a session when a station comes alive
/// or a new subscription is approved; each available contact's presence goes back to the
/// requester (to one station, or to all).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Probe {
    pub requester: String,
    pub resource: Option<String>,
    pub contacts: Vec<String>,
}

impl Handler<Probe> for Router {
    type Result = ();

    fn handle(&mut self, msg: Probe, _: &mut Context<Self>) {
        let Some(requester) = self.online.get(&msg.requester) else {
            return;
        };
        for contact in &msg.contacts {
            if self.blocked_either(&msg.requester, contact) {
                continue;
            }
            if let Some(update) = self.online.get(contact).and_then(|c| c.presence.as_ref()) {
                requester.session.do_send(IncomingPresence { update: update.clone(), resource: msg.resource.clone() });
            }
        }
    }
}

/// Set one station's presence. Sent by the chat API and `/ws`.
#[derive(Message)]
#[rtype(result = "Result<(), RouteError>")]
pub struct SetPresence {
    pub username: String,
    pub resource: String,
    pub presence: StationPresence,
}

impl Handler<SetPresence> for Router {
    type Result = Result<(), RouteError>;

    fn handle(&mut self, msg: SetPresence, _: &mut Context<Self>) -> Self::Result {
        self.touch(&msg.username, &msg.resource);
        let user = self.online.get(&msg.username).ok_or_else(|| RouteError::Offline(msg.username.clone()))?;
        user.session.do_send(SetStationPresence { resource: msg.resource, presence: msg.presence });
        Ok(())
    }
}

/// An online user's contact list with the presence it sees. Sent by the chat API.
#[derive(Message)]
#[rtype(result = "Result<Vec<ContactView>, RouteError>")]
pub struct Contacts {
    pub username: String,
}

impl Handler<Contacts> for Router {
    type Result = ResponseFuture<Result<Vec<ContactView>, RouteError>>;

    fn handle(&mut self, msg: Contacts, _: &mut Context<Self>) -> Self::Result {
        let Some(user) = self.online.get(&msg.username) else {
            return Box::pin(ready(Err(RouteError::Offline(msg.username))));
        };
        let asked = user.session.send(ListContacts);
        Box::pin(async move { asked.await.map_err(|_| RouteError::Offline(msg.username)) })
    }
}

/// The presence of `of` as `username` may see it (itself, or a contact it is subscribed
/// to); `None` is unavailable. Sent by the chat API.
#[derive(Message)]
#[rtype(result = "Result<Option<Availability>, RouteError>")]
pub struct PresenceOf {
    pub username: String,
    pub of: String,
}

impl Handler<PresenceOf> for Router {
    type Result = ResponseFuture<Result<Option<Availability>, RouteError>>;

    fn handle(&mut self, msg: PresenceOf, _: &mut Context<Self>) -> Self::Result {
        if !self.directory.contains(&msg.of) {
            return Box::pin(ready(Err(RouteError::UnknownUser(msg.of))));
        }
        let Some(user) = self.online.get(&msg.username) else {
            return Box::pin(ready(Err(RouteError::Offline(msg.username))));
        };
        let asked = user.session.send(GetPresence { of: msg.of });
        Box::pin(async move { asked.await.map_err(|_| RouteError::Offline(msg.username))? })
    }
}

/// Block (`on`) or unblock a user. Sent by the chat API; replies after the commit with
/// whether anything changed.
#[derive(Message)]
#[rtype(result = "Result<bool, RouteError>")]
pub struct SetBlock {
    pub blocker: String,
    pub blocked: String,
    pub on: bool,
}

impl Handler<SetBlock> for Router {
    type Result = ResponseActFuture<Self, Result<bool, RouteError>>;

    fn handle(&mut self, msg: SetBlock, _: &mut Context<Self>) -> Self::Result {
        if msg.blocker == msg.blocked {
            return Box::pin(fut::ready(Err(RouteError::Yourself("block"))));
        }
        if !self.directory.contains(&msg.blocked) {
            return Box::pin(fut::ready(Err(RouteError::UnknownUser(msg.blocked))));
        }
        let SetBlock { blocker, blocked, on } = msg;
        let written = self.store.set_block(blocker.clone(), blocked.clone(), on);
        Box::pin(written.into_actor(self).map(move |result, act, _| {
            let changed = result?;
            if changed {
                act.apply_block(&blocker, &blocked, on);
            }
            Ok(changed)
        }))
    }
}

impl Router {
    /// A committed block or unblock: update the live table and let each side's view of the
    /// other follow (each session shows only what its own subscriptions allow).
    fn apply_block(&mut self, blocker: &str, blocked: &str, on: bool) {
        if on {
            self.blocks.entry(blocker.to_owned()).or_default().insert(blocked.to_owned());
        } else if let Some(set) = self.blocks.get_mut(blocker) {
            set.remove(blocked);
            if set.is_empty() {
                self.blocks.remove(blocker);
            }
        }
        for (from, to) in [(blocker, blocked), (blocked, blocker)] {
            let (Some(sender), Some(receiver)) = (self.online.get(from), self.online.get(to)) else {
                continue;
            };
            let Some(current) = &sender.presence else {
                continue; // Unavailable already, as far as anyone can see.
            };
            let update = if on {
                PresenceUpdate::new(from, None)
            } else if self.blocked_either(from, to) {
                continue; // Still blocked the other way.
            } else {
                current.clone()
            };
            receiver.session.do_send(IncomingPresence { update, resource: None });
        }
    }
}

/// The users `username` blocks, sorted. Sent by the chat API.
#[derive(Message)]
#[rtype(result = "Vec<String>")]
pub struct Blocklist {
    pub username: String,
}

impl Handler<Blocklist> for Router {
    type Result = Vec<String>;

    fn handle(&mut self, msg: Blocklist, _: &mut Context<Self>) -> Vec<String> {
        let mut list: Vec<String> =
            self.blocks.get(&msg.username).map(|set| set.iter().cloned().collect()).unwrap_or_default();
        list.sort_unstable();
        list
    }
}

// ---- rooms and direct events --------------------------------------------------------

/// Enter a room from a station. Sent by the chat API; forwarded to the user's session,
/// which remembers the room so that the station leaves it when it ends.
#[derive(Message)]
#[rtype(result = "Result<Joined, RoomError>")]
pub struct JoinRoomAs {
    pub username: String,
    pub resource: String,
    pub room: String,
    pub nick: String,
    pub password: Option<String>,
}

impl Handler<JoinRoomAs> for Router {
    type Result = ResponseFuture<Result<Joined, RoomError>>;

    fn handle(&mut self, msg: JoinRoomAs, _: &mut Context<Self>) -> Self::Result {
        self.touch(&msg.username, &msg.resource);
        let Some(user) = self.online.get(&msg.username) else {
            return Box::pin(ready(Err(RoomError::BadRequest("the station has ended".into()))));
        };
        let asked = user.session.send(EnterRoom {
            resource: msg.resource,
            room: msg.room.clone(),
            nick: msg.nick,
            password: msg.password,
        });
        Box::pin(async move { asked.await.map_err(|_| RoomError::NotFound(msg.room))? })
    }
}

/// Leave a room from a station. Sent by the chat API.
#[derive(Message)]
#[rtype(result = "Result<(), RoomError>")]
pub struct LeaveRoomAs {
    pub username: String,
    pub resource: String,
    pub room: String,
}

impl Handler<LeaveRoomAs> for Router {
    type Result = ResponseFuture<Result<(), RoomError>>;

    fn handle(&mut self, msg: LeaveRoomAs, _: &mut Context<Self>) -> Self::Result {
        let Some(user) = self.online.get(&msg.username) else {
            return Box::pin(ready(Err(RoomError::NotOccupant(msg.room))));
        };
        let asked = user.session.send(ExitRoom { resource: msg.resource, room: msg.room.clone() });
        Box::pin(async move { asked.await.map_err(|_| RoomError::NotOccupant(msg.room))? })
    }
}

// ---- watching users (workgroup agents) ----------------------------------------------

/// A watched user's availability: online (any station), and available to chat (its
/// visible presence is available or `chat`, not away, xa or dnd). Sent to watchers.
#[derive(Message, Debug, Clone, PartialEq, Eq)]
#[rtype(result = "()")]
pub struct UserStatus {
    pub username: String,
    pub online: bool,
    pub available_to_chat: bool,
}

/// Watch a user's availability under `key` (one watch per key and user); replies with the
/// current status, then every change follows. Sent by workgroups for their agents.
#[derive(Message)]
#[rtype(result = "UserStatus")]
pub struct WatchUser {
    pub username: String,
    pub key: String,
    pub watcher: Recipient<UserStatus>,
}

impl Handler<WatchUser> for Router {
    type Result = MessageResult<WatchUser>;

    fn handle(&mut self, msg: WatchUser, _: &mut Context<Self>) -> Self::Result {
        self.watchers.entry(msg.username.clone()).or_default().insert(msg.key, msg.watcher);
        MessageResult(self.status_of(&msg.username))
    }
}

/// Stop watching a user.
#[derive(Message)]
#[rtype(result = "()")]
pub struct UnwatchUser {
    pub username: String,
    pub key: String,
}

impl Handler<UnwatchUser> for Router {
    type Result = ();

    fn handle(&mut self, msg: UnwatchUser, _: &mut Context<Self>) {
        if let Some(watchers) = self.watchers.get_mut(&msg.username) {
            watchers.remove(&msg.key);
            if watchers.is_empty() {
                self.watchers.remove(&msg.username);
            }
        }
    }
}

/// A live-only event for one station (a reply to a stanza posted over HTTP). Dropped if the
/// station has ended.
#[derive(Message)]
#[rtype(result = "()")]
pub struct DeliverToStation {
    pub username: String,
    pub resource: String,
    pub event: Arc<Event>,
}

impl Handler<DeliverToStation> for Router {
    type Result = ();

    fn handle(&mut self, msg: DeliverToStation, _: &mut Context<Self>) {
        if let Some(user) = self.online.get(&msg.username) {
            user.session.do_send(DeliverLive { event: msg.event, resource: Some(msg.resource) });
        }
    }
}

/// A live-only event for every live station of a user (a room invitation). Sent by the
/// APIs; `UnknownUser` if there is no such account, nothing kept if it is offline.
#[derive(Message)]
#[rtype(result = "Result<(), RouteError>")]
pub struct DeliverToUser {
    pub username: String,
    pub event: Arc<Event>,
}

impl Handler<DeliverToUser> for Router {
    type Result = Result<(), RouteError>;

    fn handle(&mut self, msg: DeliverToUser, _: &mut Context<Self>) -> Self::Result {
        if !self.directory.contains(&msg.username) {
            return Err(RouteError::UnknownUser(msg.username));
        }
        if let Some(user) = self.online.get(&msg.username) {
            user.session.do_send(DeliverLive { event: msg.event, resource: None });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::roster::Subscription;
    use crate::store::{NewUser, StoreOptions};
    use crate::test_support::{first_matching, recorder, Inbox};

    async fn attach(router: &Addr<Router>, username: &str) -> Inbox {
        let (seen, connection) = recorder();
        let attach = Attach { username: username.into(), stream_id: None, connection, door: "test" };
        router.send(attach).await.unwrap().unwrap();
        seen
    }

    #[actix_rt::test]
    async fn a_presence_change_is_rendered_once_for_all_contacts() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db"), StoreOptions::default()).unwrap();
        let names: Vec<String> = (0..20).map(|i| format!("u{i}")).collect();
        for name in names.iter().chain([&"ann".to_owned()]) {
            let user = NewUser {
                username: name.clone(),
                password_hash: "h".into(),
                name: String::new(),
                email: String::new(),
                properties: vec![],
            };
            store.create_user(user).await.unwrap();
        }
        let config = CoreConfig {
            domain: "d".into(),
            stream_idle_timeout: Duration::from_secs(60),
            max_connections_per_user: 4,
            roster_auto_accept: false,
        };
        let mut everyone = names.clone();
        everyone.push("ann".into());
        let muc = crate::muc::MucOptions {
            domain: "d".into(),
            service: "conference".into(),
            history: 0,
            users_can_create: false,
        };
        let conference = crate::muc::conference::Conference::new(muc, store.clone(), vec![]).start();
        let router = Router::new(config, store, conference, everyone, vec![], Arc::default()).start();
        for name in &names {
            let op = RosterOp::AdminSet {
                create: true,
                nickname: None,
                groups: vec![],
                subscription: Some(Subscription::Both),
            };
            router.send(ChangeRoster { owner: "ann".into(), contact: name.clone(), op }).await.unwrap().unwrap();
        }
        let mut inboxes = Vec::new();
        for name in &names {
            inboxes.push(attach(&router, name).await);
        }
        attach(&router, "ann").await;

        let firsts = first_matching(
            &inboxes,
            "ann's presence",
            |e| matches!(&e.payload, crate::model::Payload::Presence { from, .. } if from == "ann"),
        )
        .await;
        assert!(firsts.windows(2).all(|w| Arc::ptr_eq(&w[0], &w[1])), "one rendering shared by all 20 contacts");
    }
}
