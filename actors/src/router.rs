//! `Router`: the registry of accounts, online users, login streams and stations, and the
//! first hop of every message.
//!
//! Doors send it `Login`, `Attach`, `Submit` and friends; it answers from its own tables
//! (never touching SQLite itself) and forwards per-user work to each user's
//! [`UserSession`]. A submitted message is handed to the store; when its transaction
//! commits, the store's writer thread sends [`MessageCommitted`] back here, in commit
//! order, and the router passes it to the recipient's session for delivery.

use std::collections::{HashMap, HashSet};
use std::future::ready;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use crate::clock::now_ms;
use crate::event::{ChatState, Event, NewMessage, Push, StoredMessage};
use crate::jid::{Jid, Username};
use crate::random::random_hex;
use crate::store::{Store, StoreError};
use crate::user_session::{
    AttachConnection, CloseStation, DeliverLive, DeliverMessage, DetachConnection, OpenStation, Shutdown, UserSession,
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
    directory: HashSet<String>,
    online: HashMap<String, OnlineUser>,
    /// Login stream id → (user, resource).
    streams: HashMap<String, (String, String)>,
    next_connection_id: u64,
    next_live_id: u64,
    stats: Arc<RouterStats>,
}

impl Router {
    /// A router over `store`, knowing the accounts in `usernames`.
    pub fn new(config: CoreConfig, store: Store, usernames: Vec<String>, stats: Arc<RouterStats>) -> Self {
        Router {
            config: Arc::new(config),
            store,
            directory: usernames.into_iter().collect(),
            online: HashMap::new(),
            streams: HashMap::new(),
            next_connection_id: 1,
            next_live_id: 1,
            stats,
        }
    }

    fn session_for(&mut self, username: &str) -> &mut OnlineUser {
        if !self.online.contains_key(username) {
            let session = UserSession::new(username.to_owned(), self.config.domain.clone(), self.store.clone()).start();
            self.online.insert(username.to_owned(), OnlineUser { session, stations: HashMap::new(), connections: 0 });
            self.stats.users_online.fetch_add(1, Relaxed);
        }
        self.online.get_mut(username).expect("inserted above")
    }

    fn open_station(&mut self, username: &str, stream_id: Option<String>) -> String {
        let resource = random_hex(6);
        let now = now_ms();
        let user = self.session_for(username);
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

    /// An id for an event that is not a stored message.
    fn live_id(&mut self, kind: &str) -> String {
        let id = format!("{kind}-{}", self.next_live_id);
        self.next_live_id += 1;
        id
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

    fn handle(&mut self, msg: Login, _: &mut Context<Self>) -> Self::Result {
        if !self.directory.contains(&msg.username) {
            return Err(RouteError::UnknownUser(msg.username));
        }
        let stream_id = random_hex(16);
        let resource = self.open_station(&msg.username, Some(stream_id.clone()));
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

    fn handle(&mut self, msg: Attach, _: &mut Context<Self>) -> Self::Result {
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
                    None => (self.open_station(&msg.username, None), None),
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
        if let Some(res) = &msg.from.resource {
            self.touch(msg.from.user.as_str(), res);
        }
        let id = self.live_id("state");
        let domain = &self.config.domain;
        let Some(user) = self.online.get(to_user) else {
            return Ok(()); // Offline: a chat state is not worth keeping.
        };
        // As for messages, a resource that is no station of the user means the bare address.
        let resource = msg.to.resource.clone().filter(|r| user.stations.contains_key(r));
        let event = Event::chat_state(id, &msg.from.render(domain), &msg.to.render(domain), msg.state);
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
        let event = Event::headline(id, &self.config.domain, &msg.body, now_ms());
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
    }
}

/// Every station of every online user. Sent by the admin API.
#[derive(Message)]
#[rtype(result = "Vec<SessionInfo>")]
pub struct ListSessions;

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
