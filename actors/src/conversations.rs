//! Ozeki clients' records and what they poll for: `Conversations` (station keys, each
//! user's conversation settings, reports) and `ChangeFeed` (`chatnotification`), which is
//! kept from the core's own events rather than by scanning the archive, one per server.
//!
//! A user is watched once one of its stations signs in. From then on the router tells the
//! feed of every 1:1 message the user sends or receives (`ConversationMoved`), and the
//! router's availability watchers tell it when the user's contacts come and go. Each station
//! is told of a change once: a poll reports what the station was not yet told of, and a
//! download of a conversation counts as told. All of it is bounded per user.

use std::collections::HashMap;

use actix::prelude::*;

use crate::model::ozeki::{ConversationProps, ConversationReport, StationKey};
use crate::router::{ConversationMoved, Router, UserStatus, WatchConversations, WatchUser};
use crate::storage::{MessageStorage, OzekiStorage, Storage, StoreResult};

/// Most conversations remembered per watched user (the oldest are forgotten first).
const MAX_PEERS: usize = 1000;

/// The key the feed watches availability under.
const WATCH_KEY: &str = "ozeki-feed";

/// Start watching a user (idempotent); resolves once its conversations are known.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Watch {
    pub username: String,
}

/// What changed for a station since it was last told; marks all of it told. `contacts`
/// are the user's contacts now (their availability is watched from this poll on).
#[derive(Message)]
#[rtype(result = "Changes")]
pub struct PollChanges {
    pub username: String,
    pub station: String,
    pub contacts: Vec<String>,
}

/// A poll's answer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Changes {
    /// Peers whose conversation has messages the station was not told of.
    pub conversations: Vec<String>,
    /// Contacts whose availability changed since the station was told.
    pub availability: Vec<String>,
    /// The user's list of conversations (or their settings) changed.
    pub conversation_list: bool,
}

/// A station downloaded a conversation through message `through_id`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Downloaded {
    pub username: String,
    pub station: String,
    pub peer: String,
    pub through_id: i64,
}

/// A user's conversation settings changed (favourite, mute, hide, colour, clear).
#[derive(Message)]
#[rtype(result = "()")]
pub struct ConversationListChanged {
    pub username: String,
}

/// The availability of `usernames` as the feed knows it (watching those it did not).
#[derive(Message)]
#[rtype(result = "Vec<(String, UserStatus)>")]
pub struct AvailabilityOf {
    pub usernames: Vec<String>,
}

/// The newest message id of each of a user's conversations that the feed knows of.
#[derive(Message)]
#[rtype(result = "Vec<(String, i64)>")]
pub struct ConversationHeads {
    pub username: String,
}

#[derive(Default)]
struct StationMarks {
    /// Peer → the newest message id the station was told of.
    conversations: HashMap<String, i64>,
    /// Contact → the availability version the station was told of.
    availability: HashMap<String, u64>,
    list_version: u64,
}

#[derive(Default)]
struct Watched {
    /// Peer → the newest message id.
    heads: HashMap<String, i64>,
    list_version: u64,
}

/// The feed.
pub struct ChangeFeed {
    messages: std::sync::Arc<dyn MessageStorage>,
    router: Addr<Router>,
    users: HashMap<String, Watched>,
    stations: HashMap<(String, String), StationMarks>,
    /// Contact → (status, version).
    status: HashMap<String, (UserStatus, u64)>,
}

impl ChangeFeed {
    pub fn new(storage: &Storage, router: Addr<Router>) -> ChangeFeed {
        ChangeFeed {
            messages: storage.messages.clone(),
            router,
            users: HashMap::new(),
            stations: HashMap::new(),
            status: HashMap::new(),
        }
    }

    fn moved(&mut self, owner: &str, peer: &str, id: i64) {
        let Some(watched) = self.users.get_mut(owner) else { return };
        let new_peer = !watched.heads.contains_key(peer);
        let head = watched.heads.entry(peer.to_owned()).or_insert(id);
        *head = (*head).max(id);
        if new_peer {
            watched.list_version += 1;
            if watched.heads.len() > MAX_PEERS {
                let oldest = watched.heads.iter().min_by_key(|(_, id)| **id).map(|(p, _)| p.clone());
                if let Some(oldest) = oldest {
                    watched.heads.remove(&oldest);
                }
            }
        }
    }

    fn set_status(&mut self, status: UserStatus) {
        match self.status.get_mut(&status.username) {
            Some((known, version)) if *known != status => {
                *known = status;
                *version += 1;
            }
            Some(_) => {}
            None => {
                self.status.insert(status.username.clone(), (status, 1));
            }
        }
    }

    /// Watches the availability of those in `usernames` not yet watched; resolves once
    /// their status is known.
    fn watch_status(&mut self, usernames: &[String], ctx: &mut Context<Self>) -> ResponseActFuture<Self, ()> {
        let unknown: Vec<String> = usernames.iter().filter(|u| !self.status.contains_key(*u)).cloned().collect();
        let router = self.router.clone();
        let me = ctx.address().recipient();
        let asked = async move {
            let mut found = Vec::with_capacity(unknown.len());
            for username in unknown {
                let watch = WatchUser { username, key: WATCH_KEY.to_owned(), watcher: me.clone() };
                if let Ok(status) = router.send(watch).await {
                    found.push(status);
                }
            }
            found
        };
        Box::pin(asked.into_actor(self).map(|found, feed, _| {
            for status in found {
                feed.set_status(status);
            }
        }))
    }
}

impl Actor for ChangeFeed {
    type Context = Context<Self>;
}

impl Handler<ConversationMoved> for ChangeFeed {
    type Result = ();

    fn handle(&mut self, msg: ConversationMoved, _: &mut Context<Self>) {
        self.moved(&msg.owner, &msg.peer, msg.id);
    }
}

impl Handler<UserStatus> for ChangeFeed {
    type Result = ();

    fn handle(&mut self, msg: UserStatus, _: &mut Context<Self>) {
        self.set_status(msg);
    }
}

impl Handler<Watch> for ChangeFeed {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, msg: Watch, ctx: &mut Context<Self>) -> Self::Result {
        if self.users.contains_key(&msg.username) {
            return Box::pin(fut::ready(()));
        }
        self.users.insert(msg.username.clone(), Watched::default());
        // Watched before the archive is read: a message committed in between is told
        // twice at most, never missed.
        self.router.do_send(WatchConversations { username: msg.username.clone(), feed: ctx.address().recipient() });
        let seeded = self.messages.peers_of(msg.username.clone(), MAX_PEERS);
        Box::pin(seeded.into_actor(self).map(move |peers, feed, _| match peers {
            Ok(peers) => {
                for (peer, id, _) in peers {
                    feed.moved(&msg.username, &peer, id);
                }
            }
            Err(e) => tracing::warn!(error = %e, user = %msg.username, "could not read a user's conversations"),
        }))
    }
}

impl Handler<PollChanges> for ChangeFeed {
    type Result = ResponseActFuture<Self, Changes>;

    fn handle(&mut self, msg: PollChanges, ctx: &mut Context<Self>) -> Self::Result {
        let watched = self.watch_status(&msg.contacts, ctx);
        Box::pin(watched.map(move |(), feed, _| {
            let key = (msg.username.clone(), msg.station.clone());
            let marks = feed.stations.entry(key).or_default();
            let mut changes = Changes::default();
            if let Some(watched) = feed.users.get(&msg.username) {
                for (peer, head) in &watched.heads {
                    let told = marks.conversations.entry(peer.clone()).or_insert(0);
                    if *head > *told {
                        *told = *head;
                        changes.conversations.push(peer.clone());
                    }
                }
                if watched.list_version > marks.list_version {
                    marks.list_version = watched.list_version;
                    changes.conversation_list = true;
                }
            }
            for contact in &msg.contacts {
                let Some((_, version)) = feed.status.get(contact) else { continue };
                let told = marks.availability.entry(contact.clone()).or_insert(0);
                if *version > *told {
                    *told = *version;
                    changes.availability.push(contact.clone());
                }
            }
            changes.conversations.sort();
            changes
        }))
    }
}

impl Handler<Downloaded> for ChangeFeed {
    type Result = ();

    fn handle(&mut self, msg: Downloaded, _: &mut Context<Self>) {
        let marks = self.stations.entry((msg.username, msg.station)).or_default();
        let told = marks.conversations.entry(msg.peer).or_insert(0);
        *told = (*told).max(msg.through_id);
    }
}

impl Handler<ConversationListChanged> for ChangeFeed {
    type Result = ();

    fn handle(&mut self, msg: ConversationListChanged, _: &mut Context<Self>) {
        if let Some(watched) = self.users.get_mut(&msg.username) {
            watched.list_version += 1;
        }
    }
}

impl Handler<AvailabilityOf> for ChangeFeed {
    type Result = ResponseActFuture<Self, Vec<(String, UserStatus)>>;

    fn handle(&mut self, msg: AvailabilityOf, ctx: &mut Context<Self>) -> Self::Result {
        let watched = self.watch_status(&msg.usernames, ctx);
        Box::pin(watched.map(move |(), feed, _| {
            let known = msg.usernames.into_iter().filter_map(|u| feed.status.get(&u).map(|(s, _)| (u, s.clone())));
            known.collect()
        }))
    }
}

impl Handler<ConversationHeads> for ChangeFeed {
    type Result = MessageResult<ConversationHeads>;

    fn handle(&mut self, msg: ConversationHeads, _: &mut Context<Self>) -> Self::Result {
        let heads = self.users.get(&msg.username).map(|w| w.heads.iter().map(|(p, id)| (p.clone(), *id)).collect());
        MessageResult(heads.unwrap_or_default())
    }
}

/// Station keys, conversation settings and reports, for the Ozeki client door.
#[derive(Clone)]
pub struct Conversations {
    ozeki: std::sync::Arc<dyn OzekiStorage>,
}

impl Conversations {
    pub fn new(storage: &Storage) -> Conversations {
        Conversations { ozeki: storage.ozeki.clone() }
    }

    pub async fn add_key(&self, key: StationKey) -> StoreResult<()> {
        self.ozeki.add_station_key(key).await
    }

    pub async fn key_by_digest(&self, digest: Vec<u8>) -> StoreResult<Option<StationKey>> {
        self.ozeki.station_key(digest).await
    }

    pub async fn key_of_station(&self, station: &str) -> StoreResult<Option<StationKey>> {
        self.ozeki.station_key_of(station.to_owned()).await
    }

    pub async fn keys_of(&self, username: &str) -> StoreResult<Vec<StationKey>> {
        self.ozeki.station_keys(username.to_owned()).await
    }

    pub async fn revoke_key(&self, username: &str, station: &str) -> StoreResult<bool> {
        self.ozeki.delete_station_key(username.to_owned(), station.to_owned()).await
    }

    pub async fn settings(&self, conversation: &str, username: &str) -> StoreResult<Option<ConversationProps>> {
        self.ozeki.conversation(conversation.to_owned(), username.to_owned()).await
    }

    pub async fn all_settings(&self, username: &str) -> StoreResult<Vec<ConversationProps>> {
        self.ozeki.conversations(username.to_owned()).await
    }

    pub async fn save_settings(&self, props: ConversationProps) -> StoreResult<()> {
        self.ozeki.save_conversation(props).await
    }

    pub async fn add_report(&self, report: ConversationReport) -> StoreResult<()> {
        self.ozeki.add_report(report).await
    }

    pub async fn reports(
        &self,
        conversation: &str,
        since_ms: i64,
        limit: usize,
    ) -> StoreResult<Vec<ConversationReport>> {
        self.ozeki.reports(conversation.to_owned(), since_ms, limit).await
    }
}
