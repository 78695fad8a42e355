//! `MucRoom`: one actor per room. It owns the occupant list (nick → station, real user,
//! role), the config and affiliations, and a bounded ring of recent messages; it enforces
//! XEP-0045's entry and speaking rules, archives every message before fanning it out, and
//! renders each room event once: every occupant's station receives the same `Arc<Event>`.
//!
//! A persistent room lives as long as the server; a temporary one stops when its last
//! occupant leaves, telling the [`Conference`] so that the name can be used again.
//!
//! In a cluster a room lives on its owner node; an occupant may sit on another node
//! ([`Seat::On`]), and the room relays its events there once per node, naming the stations.
//! On every other node the room's actor stands in for it ([`StandIn`]): it forwards each call
//! to the owner ([`RoomCall`]), delivers what the owner relays to its own stations, and when
//! the owner dies it moves (`MoveTo`): to a new owner, or to this node, rebuilt from the store,
//! and its stations enter the room again.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use actix::prelude::*;
use serde_json::Value;

pub use super::calls::{Administer, Joined, OccupantView, RoomView, Seat};
use super::calls::{RoomAnswer, RoomCall};
use super::{Affiliation, AffiliationLists, MucOptions, Role, RoomError, RoomRecord};
use crate::clock::now_ms;
use crate::cluster::{AskPeers, Relay, Targets, ToPeers};
use crate::groups::{GroupChanged, GroupIndex};
use crate::model::event::{Invitation, OccupantPresence};
use crate::model::records::RoomHistoryQuery;
use crate::model::{Address, Event, NewRoomMessage, Payload, RoomMessage};
use crate::station::{Station, StationEvent, StationEvents};
use crate::storage::{AppStorage, RoomStorage};

/// Ids of messages in rooms without a log, counted down from -1.
static UNLOGGED_IDS: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(1);

/// One room.
pub struct MucRoom {
    options: Arc<MucOptions>,
    store: Arc<dyn RoomStorage>,
    /// The registry, told when the room stops.
    registry: Recipient<RoomStopped>,
    record: RoomRecord,
    /// `name@conference.domain`.
    jid: String,
    occupants: HashMap<String, Occupant>,
    /// (user, resource) → nick.
    by_station: HashMap<(String, String), String>,
    /// The recent messages, rendered as history (with `delay`), oldest first.
    history: VecDeque<Arc<Event>>,
    /// Who hears about departures and the room's end (the workgroup that made it).
    watcher: Option<Recipient<RoomActivity>>,
    /// A temporary room still empty this long after it started ends.
    empty_timeout: Option<std::time::Duration>,
    /// Set while external apps are attached: messages are archived with their webhook
    /// deliveries, and the apps may post.
    apps: Option<Arc<dyn AppStorage>>,
    /// Resolves group affiliations to their people.
    groups: Arc<GroupIndex>,
    /// How the room reaches its cluster (none on one machine).
    link: Option<Arc<RoomLink>>,
    /// Set on a node that stands in for the room's owner.
    stand_in: Option<StandIn>,
}

/// How rooms reach the other nodes of their cluster.
pub struct RoomLink {
    /// This node's name.
    pub node: String,
    pub link: Recipient<ToPeers>,
    pub asker: Recipient<AskPeers>,
}

/// A room owned by another node, as this node stands in for it.
struct StandIn {
    owner: String,
    /// This node's stations in the room: (user, resource) → how they joined.
    local: HashMap<(String, String), LocalSeat>,
    /// The room's occupants as the owner announced them, by nick.
    present: HashMap<String, OccupantPresence>,
}

struct LocalSeat {
    nick: String,
    password: Option<String>,
    station: Addr<Station>,
}

/// The same events to one station.
fn hand_over(station: &Addr<Station>, mut events: Vec<Arc<Event>>) {
    match events.len() {
        0 => {}
        1 => station.do_send(StationEvent { event: events.pop().expect("one event") }),
        _ => station.do_send(StationEvents { events }),
    }
}

/// What a watcher hears about its room.
#[derive(Message, Debug, Clone, PartialEq, Eq)]
#[rtype(result = "()")]
pub enum RoomActivity {
    /// An occupant left (or was removed).
    Left { room: String, username: String },
    /// The room ended.
    Ended { room: String },
}

/// A room stopped (a temporary room emptied, or a room was destroyed). Sent by the room to its registry.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RoomStopped {
    pub name: String,
    pub room: Addr<MucRoom>,
}

struct Occupant {
    nick: String,
    username: String,
    resource: String,
    seat: Seat,
    role: Role,
    /// The affiliation its presence shows.
    affiliation: Option<Affiliation>,
    /// This occupant's presence, rendered once for everyone who joins after it.
    presence: Arc<Event>,
}

impl MucRoom {
    pub fn new(
        options: Arc<MucOptions>,
        store: Arc<dyn RoomStorage>,
        registry: Recipient<RoomStopped>,
        record: RoomRecord,
    ) -> Self {
        let jid = options.room_jid(&record.name);
        MucRoom {
            options,
            store,
            registry,
            record,
            jid,
            occupants: HashMap::new(),
            by_station: HashMap::new(),
            history: VecDeque::new(),
            watcher: None,
            empty_timeout: None,
            apps: None,
            groups: Arc::default(),
            link: None,
            stand_in: None,
        }
    }

    /// A room whose occupants may sit on other nodes of the cluster `link` reaches.
    pub fn linked(mut self, link: Option<Arc<RoomLink>>) -> Self {
        self.link = link;
        self
    }

    /// The room's stand-in on a node that does not own it: `owner` does.
    pub fn standing_in_for(mut self, owner: String) -> Self {
        self.stand_in = Some(StandIn { owner, local: HashMap::new(), present: HashMap::new() });
        self
    }

    /// Relays `events` to stations `to` on `node`: one relay for all of them.
    fn relay_events(&self, node: &str, events: &[Arc<Event>], to: Vec<(String, String)>) {
        if let Some(link) = &self.link {
            let relay = Relay::RoomEvents {
                room: self.record.name.clone(),
                events: events.iter().map(|e| e.payload.clone()).collect(),
                to,
            };
            link.link.do_send(ToPeers { targets: Targets::Nodes(vec![node.to_owned()]), relay: Arc::new(relay) });
        }
    }

    /// Events to one occupant's station, wherever it sits.
    fn send_to(&self, occupant: &Occupant, events: Vec<Arc<Event>>) {
        match &occupant.seat {
            Seat::Here(station) => hand_over(station, events),
            Seat::On(node) => {
                self.relay_events(node, &events, vec![(occupant.username.clone(), occupant.resource.clone())])
            }
        }
    }

    /// Forwards `call` to the owner (this is a stand-in), and reads its answer with `pick`.
    /// The owner's "no such room" ends the stand-in. A plain future: the answer reaches the
    /// caller even if the stand-in stopped meanwhile.
    fn forward<R: 'static>(
        &self,
        call: RoomCall,
        pick: fn(RoomAnswer) -> Option<R>,
        ctx: &Context<Self>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<R, RoomError>>>> {
        let room = self.record.name.clone();
        let owner = self.stand_in.as_ref().map(|s| s.owner.clone()).unwrap_or_default();
        let asked = self.link.as_ref().map(|link| {
            link.asker
                .send(AskPeers { nodes: vec![owner.clone()], relay: Relay::RoomCall { room: room.clone(), call } })
        });
        let me = ctx.address();
        Box::pin(async move {
            let answers = match asked {
                Some(asked) => asked.await.unwrap_or_default(),
                None => Vec::new(),
            };
            let answer = answers.into_iter().find_map(|(_, relay)| match relay {
                Relay::RoomAnswer { answer } => Some(answer),
                _ => None,
            });
            let answer = answer.unwrap_or_else(|| Err(RoomError::Unreachable(room.clone(), owner)));
            if let Err(RoomError::NotFound(_)) = &answer {
                me.do_send(Dismiss);
            }
            pick(answer?).ok_or_else(|| RoomError::BadRequest(format!("room '{room}' answered with something else")))
        })
    }

    /// Group affiliations resolve with this index.
    pub fn with_groups(mut self, groups: Arc<GroupIndex>) -> Self {
        self.groups = groups;
        self
    }

    /// A room whose departures and end `watcher` hears about, ending if still empty
    /// `empty_timeout` after it starts (nobody came).
    pub fn watched(
        mut self,
        watcher: Option<Recipient<RoomActivity>>,
        empty_timeout: Option<std::time::Duration>,
    ) -> Self {
        self.watcher = watcher;
        self.empty_timeout = empty_timeout;
        self
    }

    /// Attaches (`Some`) or detaches the external apps' outbox.
    pub fn with_apps(mut self, apps: Option<Arc<dyn AppStorage>>) -> Self {
        self.apps = apps;
        self
    }

    /// Archives a message (with the apps' deliveries when apps are attached); the room hears
    /// of it once committed.
    fn archive(
        &mut self,
        message: NewRoomMessage,
        ctx: &mut Context<Self>,
    ) -> ResponseFuture<Result<Arc<RoomMessage>, RoomError>> {
        let room = ctx.address();
        let committed: crate::storage::AfterCommit<Arc<RoomMessage>> =
            Box::new(move |committed| room.do_send(RoomMessageCommitted { message: committed.clone() }));
        let stored = match &self.apps {
            Some(apps) => apps.append_watched_room_message(message, committed),
            None if !self.record.config.log_enabled => {
                // Not logged: an id of its own (below zero, so never an archive's) at once.
                let id = -UNLOGGED_IDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let unlogged = Arc::new(message.stored(id, now_ms()));
                committed(&unlogged);
                Box::pin(std::future::ready(Ok(unlogged)))
            }
            None => self.store.append_room_message(message, committed),
        };
        Box::pin(async move { stored.await.map_err(RoomError::from) })
    }

    /// The user's own affiliation, else the strongest one a group of it holds (an outcast
    /// group bans only those with no affiliation of their own, as in Openfire).
    fn affiliation_of(&self, username: &str) -> Option<Affiliation> {
        if let Some(own) = self.record.affiliations.get(username) {
            return Some(*own);
        }
        let by_group = self
            .record
            .group_affiliations
            .iter()
            .filter(|(group, _)| self.groups.contains(group, username))
            .map(|(_, affiliation)| *affiliation);
        by_group.fold(None, |best: Option<Affiliation>, a| match best {
            Some(b) if b.outranks(a) => Some(b),
            _ => Some(a),
        })
    }

    /// An occupant's presence; an unavailable one may say why the room removed it.
    fn render_presence(&self, occupant: &Occupant, available: bool, reason: Option<&str>) -> Arc<Event> {
        Event::new(Payload::Occupant(OccupantPresence {
            room: self.record.name.clone(),
            nick: occupant.nick.clone(),
            user: occupant.username.clone(),
            resource: occupant.resource.clone(),
            jid_visible: self.record.config.can_anyone_discover_jid,
            available,
            role: occupant.role,
            affiliation: occupant.affiliation,
            reason: reason.map(str::to_owned),
            new_nick: None,
        }))
    }

    /// A station already in the room asks for another nick (XEP-0045 §7.6): everyone hears
    /// the old nick leave (status 303, naming the new one), then the new one arrive.
    fn change_nick(&mut self, old: &str, new: &str) -> Result<(), RoomError> {
        if !self.record.config.can_change_nickname {
            return Err(RoomError::NotAllowed(format!("nicks cannot be changed in room '{}'", self.record.name)));
        }
        if self.occupants.contains_key(new) {
            return Err(RoomError::NickTaken(new.to_owned()));
        }
        let Some(mut occupant) = self.occupants.remove(old) else { return Ok(()) };
        let leaving = Event::new(Payload::Occupant(OccupantPresence {
            room: self.record.name.clone(),
            nick: old.to_owned(),
            user: occupant.username.clone(),
            resource: occupant.resource.clone(),
            jid_visible: self.record.config.can_anyone_discover_jid,
            available: false,
            role: occupant.role,
            affiliation: occupant.affiliation,
            reason: None,
            new_nick: Some(new.to_owned()),
        }));
        self.broadcast(&leaving);
        self.send_to(&occupant, vec![leaving]);
        occupant.nick = new.to_owned();
        occupant.presence = self.render_presence(&occupant, true, None);
        let arriving = occupant.presence.clone();
        self.by_station.insert((occupant.username.clone(), occupant.resource.clone()), new.to_owned());
        self.occupants.insert(new.to_owned(), occupant);
        self.broadcast(&arriving);
        Ok(())
    }

    fn render_message(&self, message: &Arc<RoomMessage>, as_history: bool) -> Arc<Event> {
        Event::new(Payload::RoomMessage { message: message.clone(), delayed: as_history })
    }

    fn remember(&mut self, event: Arc<Event>) {
        if self.options.history == 0 {
            return;
        }
        if self.history.len() == self.options.history {
            self.history.pop_front();
        }
        self.history.push_back(event);
    }

    /// The same event to every occupant's station: local ones directly, each other node's
    /// in one relay.
    fn broadcast(&self, event: &Arc<Event>) {
        let mut elsewhere: HashMap<&str, Vec<(String, String)>> = HashMap::new();
        for occupant in self.occupants.values() {
            match &occupant.seat {
                Seat::Here(station) => station.do_send(StationEvent { event: event.clone() }),
                Seat::On(node) => {
                    elsewhere.entry(node).or_default().push((occupant.username.clone(), occupant.resource.clone()))
                }
            }
        }
        for (node, to) in elsewhere {
            self.relay_events(node, std::slice::from_ref(event), to);
        }
    }

    /// Removes an occupant and tells everyone (it included) that it left.
    fn remove_occupant(&mut self, nick: &str, reason: Option<&str>) {
        let Some(occupant) = self.occupants.remove(nick) else {
            return;
        };
        self.by_station.remove(&(occupant.username.clone(), occupant.resource.clone()));
        let gone = self.render_presence(&occupant, false, reason);
        self.send_to(&occupant, vec![gone.clone()]);
        self.broadcast(&gone);
        if let Some(watcher) = &self.watcher {
            watcher.do_send(RoomActivity::Left { room: self.record.name.clone(), username: occupant.username });
        }
    }

    /// A temporary room with nobody in it ends.
    fn stop_if_unused(&mut self, ctx: &mut Context<Self>) {
        if self.occupants.is_empty() && !self.record.config.persistent {
            self.registry.do_send(RoomStopped { name: self.record.name.clone(), room: ctx.address() });
            ctx.stop();
        }
    }

    /// After a change of config or affiliations: remove whoever may no longer be here,
    /// and re-announce occupants whose role changed.
    fn enforce_rules(&mut self) {
        let nicks: Vec<String> = self.occupants.keys().cloned().collect();
        for nick in nicks {
            let username = self.occupants[&nick].username.clone();
            let affiliation = self.affiliation_of(&username);
            if affiliation == Some(Affiliation::Outcast) {
                self.remove_occupant(&nick, Some("banned from the room"));
                continue;
            }
            if self.record.config.members_only && affiliation.is_none() {
                self.remove_occupant(&nick, Some("the room is members-only"));
                continue;
            }
            let role = Role::on_entry(affiliation, self.record.config.moderated);
            let occupant = &self.occupants[&nick];
            if (occupant.role, occupant.affiliation) != (role, affiliation) {
                let occupant = self.occupants.get_mut(&nick).expect("listed above");
                occupant.role = role;
                occupant.affiliation = affiliation;
                let presence = self.render_presence(&self.occupants[&nick], true, None);
                self.occupants.get_mut(&nick).expect("listed above").presence = presence.clone();
                self.broadcast(&presence);
            }
        }
    }

    /// Saves the room's config and affiliations if it is persistent, or forgets them if not.
    fn persist(&self) -> impl std::future::Future<Output = Result<(), RoomError>> + 'static {
        let saved = if self.record.config.persistent {
            futures_util::future::Either::Left(self.store.save_room(self.record.clone()))
        } else {
            futures_util::future::Either::Right(self.store.delete_room(self.record.name.clone()))
        };
        async move { saved.await.map_err(RoomError::from) }
    }

    fn view(&self) -> RoomView {
        let mut occupants: Vec<OccupantView> = self
            .occupants
            .values()
            .map(|o| OccupantView {
                nick: o.nick.clone(),
                username: o.username.clone(),
                role: o.role,
                affiliation: self.affiliation_of(&o.username),
            })
            .collect();
        occupants.sort_by(|a, b| a.nick.cmp(&b.nick));
        RoomView { record: self.record.clone(), occupants }
    }
}

impl Actor for MucRoom {
    type Context = Context<Self>;

    fn stopped(&mut self, _: &mut Context<Self>) {
        if let Some(watcher) = &self.watcher {
            watcher.do_send(RoomActivity::Ended { room: self.record.name.clone() });
        }
    }

    fn started(&mut self, ctx: &mut Context<Self>) {
        if self.stand_in.is_some() {
            return; // The owner keeps the history and the timeouts.
        }
        if let Some(timeout) = self.empty_timeout {
            ctx.run_later(timeout, |act, ctx| act.stop_if_unused(ctx));
        }
        self.load_history(ctx);
    }
}

impl MucRoom {
    /// History survives restarts and moves: the ring starts from the archive.
    fn load_history(&mut self, ctx: &mut Context<Self>) {
        if self.options.history == 0 {
            return;
        }
        self.store
            .room_messages(RoomHistoryQuery {
                room: self.record.name.clone(),
                start_ms: self.record.created_ms,
                limit: self.options.history,
                ..Default::default()
            })
            .into_actor(self)
            .map(|result, act, _| match result {
                Ok(messages) => {
                    for message in messages {
                        let event = act.render_message(&Arc::new(message), true);
                        act.remember(event);
                    }
                }
                Err(e) => tracing::warn!(room = %act.record.name, error = %e, "could not load room history"),
            })
            .wait(ctx);
    }

    /// Lets a station in, under XEP-0045's entry rules (on the owner).
    fn admit(&mut self, msg: Join) -> Result<Joined, RoomError> {
        let name = self.record.name.clone();
        let affiliation = self.affiliation_of(&msg.username);
        if self.record.config.login_restricted_to_nickname && msg.nick != msg.username {
            return Err(RoomError::NotAllowed(format!(
                "room '{name}' is entered with one's user name as nick ('{}')",
                msg.username
            )));
        }
        let key = (msg.username.clone(), msg.resource.clone());
        if let Some(nick) = self.by_station.get(&key).cloned() {
            if nick != msg.nick {
                self.change_nick(&nick, &msg.nick)?;
            }
            let occupant = &self.occupants[&msg.nick];
            return Ok(Joined {
                room: self.jid.clone(),
                nick: msg.nick.clone(),
                role: occupant.role,
                affiliation,
                created: false,
            });
        }
        if affiliation == Some(Affiliation::Outcast) {
            return Err(RoomError::Outcast(name));
        }
        if self.record.config.members_only && affiliation.is_none() {
            return Err(RoomError::MembersOnly(name));
        }
        let privileged = matches!(affiliation, Some(Affiliation::Owner | Affiliation::Admin));
        if let Some(password) = &self.record.config.password {
            if !privileged && msg.password.as_deref() != Some(password.as_str()) {
                return Err(RoomError::BadPassword(name));
            }
        }
        let max = self.record.config.max_users;
        if max > 0 && self.occupants.len() >= max as usize {
            return Err(RoomError::Full(name, max));
        }
        if self.occupants.contains_key(&msg.nick) {
            return Err(RoomError::NickTaken(msg.nick));
        }
        let role = Role::on_entry(affiliation, self.record.config.moderated);
        let presence = Event::new(Payload::Occupant(OccupantPresence {
            room: self.record.name.clone(),
            nick: msg.nick.clone(),
            user: msg.username.clone(),
            resource: msg.resource.clone(),
            jid_visible: self.record.config.can_anyone_discover_jid,
            available: true,
            role,
            affiliation,
            reason: None,
            new_nick: None,
        }));
        let occupant = Occupant {
            nick: msg.nick.clone(),
            username: msg.username,
            resource: msg.resource,
            seat: msg.seat,
            role,
            affiliation,
            presence: presence.clone(),
        };
        // The newcomer first hears who is here, then everyone hears the newcomer, then the
        // newcomer gets the history (XEP-0045 §7.2.3 – §7.2.15).
        let present: Vec<Arc<Event>> = self.occupants.values().map(|other| other.presence.clone()).collect();
        self.send_to(&occupant, present);
        self.by_station.insert(key, msg.nick.clone());
        self.occupants.insert(msg.nick.clone(), occupant);
        self.broadcast(&presence);
        if !msg.rejoin {
            self.send_to(&self.occupants[&msg.nick], self.history.iter().cloned().collect());
        }
        Ok(Joined { room: self.jid.clone(), nick: msg.nick, role, affiliation, created: false })
    }
}

/// Enter the room from a station. Sent by the conference.
#[derive(Message, Clone)]
#[rtype(result = "Result<Joined, RoomError>")]
pub struct Join {
    pub username: String,
    pub resource: String,
    pub nick: String,
    pub password: Option<String>,
    pub seat: Seat,
    /// The station was in the room before the room moved to this node (no history again).
    pub rejoin: bool,
}

impl Handler<Join> for MucRoom {
    type Result = ActorResponse<Self, Result<Joined, RoomError>>;

    fn handle(&mut self, msg: Join, ctx: &mut Context<Self>) -> Self::Result {
        let Some(stand_in) = &mut self.stand_in else {
            return ActorResponse::reply(self.admit(msg));
        };
        let Seat::Here(station) = msg.seat else {
            return ActorResponse::reply(Err(RoomError::BadRequest("a stand-in seats only its own stations".into())));
        };
        // Known before the owner answers: what it relays to the newcomer may come first.
        let key = (msg.username.clone(), msg.resource.clone());
        let seat = LocalSeat { nick: msg.nick.clone(), password: msg.password.clone(), station };
        let before = stand_in.local.insert(key.clone(), seat);
        let call = RoomCall::Join {
            username: msg.username,
            resource: msg.resource,
            nick: msg.nick,
            password: msg.password,
            rejoin: msg.rejoin,
        };
        let pick = |answer| match answer {
            RoomAnswer::Joined(joined) => Some(joined),
            _ => None,
        };
        ActorResponse::r#async(self.forward(call, pick, ctx).into_actor(self).map(move |result, act, _| {
            if result.is_err() {
                if let Some(stand_in) = &mut act.stand_in {
                    match before {
                        Some(before) => stand_in.local.insert(key, before),
                        None => stand_in.local.remove(&key),
                    };
                }
            }
            result
        }))
    }
}

/// Leave the room (`DELETE …/rooms/{room}`). Sent by the conference.
#[derive(Message)]
#[rtype(result = "Result<(), RoomError>")]
pub struct Leave {
    pub username: String,
    pub resource: String,
}

impl Handler<Leave> for MucRoom {
    type Result = ActorResponse<Self, Result<(), RoomError>>;

    fn handle(&mut self, msg: Leave, ctx: &mut Context<Self>) -> Self::Result {
        if self.stand_in.is_some() {
            let key = (msg.username.clone(), msg.resource.clone());
            let call = RoomCall::Leave { username: msg.username, resource: msg.resource };
            return ActorResponse::r#async(self.forward(call, done, ctx).into_actor(self).map(
                move |result, act, _| {
                    if let (Ok(()), Some(stand_in)) = (&result, &mut act.stand_in) {
                        stand_in.local.remove(&key);
                    }
                    result
                },
            ));
        }
        let Some(nick) = self.by_station.get(&(msg.username, msg.resource)).cloned() else {
            return ActorResponse::reply(Err(RoomError::NotOccupant(self.record.name.clone())));
        };
        self.remove_occupant(&nick, None);
        self.stop_if_unused(ctx);
        ActorResponse::reply(Ok(()))
    }
}

/// Reads an answer that says only "done".
fn done(answer: RoomAnswer) -> Option<()> {
    matches!(answer, RoomAnswer::Done).then_some(())
}

/// A station ended: it leaves the room. Sent by the user's session via the conference.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StationGone {
    pub username: String,
    pub resource: String,
}

impl Handler<StationGone> for MucRoom {
    type Result = ();

    fn handle(&mut self, msg: StationGone, ctx: &mut Context<Self>) {
        if let Some(stand_in) = &mut self.stand_in {
            stand_in.local.remove(&(msg.username.clone(), msg.resource.clone()));
            if let Some(link) = &self.link {
                let call = RoomCall::StationGone { username: msg.username, resource: msg.resource };
                let relay = Relay::RoomCall { room: self.record.name.clone(), call };
                let targets = Targets::Nodes(vec![stand_in.owner.clone()]);
                link.link.do_send(ToPeers { targets, relay: Arc::new(relay) });
            }
            return;
        }
        if let Some(nick) = self.by_station.get(&(msg.username, msg.resource)).cloned() {
            self.remove_occupant(&nick, None);
            self.stop_if_unused(ctx);
        }
    }
}

/// Post a message to the room; replies once it is archived.
#[derive(Message)]
#[rtype(result = "Result<Arc<RoomMessage>, RoomError>")]
pub struct Post {
    pub username: String,
    pub resource: String,
    pub body: String,
    pub data: Option<Value>,
}

impl Handler<Post> for MucRoom {
    type Result = ResponseFuture<Result<Arc<RoomMessage>, RoomError>>;

    fn handle(&mut self, msg: Post, ctx: &mut Context<Self>) -> Self::Result {
        if self.stand_in.is_some() {
            let call =
                RoomCall::Post { username: msg.username, resource: msg.resource, body: msg.body, data: msg.data };
            return self.forward(call, posted, ctx);
        }
        let name = self.record.name.clone();
        let Some(nick) = self.by_station.get(&(msg.username.clone(), msg.resource)) else {
            return Box::pin(std::future::ready(Err(RoomError::NotOccupant(name))));
        };
        if self.occupants[nick].role == Role::Visitor {
            return Box::pin(std::future::ready(Err(RoomError::Visitor(name))));
        }
        let message =
            NewRoomMessage { room: name, nick: nick.clone(), from_user: msg.username, body: msg.body, data: msg.data };
        self.archive(message, ctx)
    }
}

/// Reads an answer that carries an archived message.
fn posted(answer: RoomAnswer) -> Option<Arc<RoomMessage>> {
    match answer {
        RoomAnswer::Posted(message) => Some(Arc::new(message)),
        _ => None,
    }
}

/// A private message from an occupant to another (XEP-0045 §7.5), as the room's `allowPM`
/// permits (`anyone`, `participants`, `moderators`, `none`): live only, not archived.
#[derive(Message)]
#[rtype(result = "Result<(), RoomError>")]
pub struct SendPrivate {
    pub username: String,
    pub resource: String,
    pub to_nick: String,
    pub body: String,
    /// The sender's id for the message.
    pub id: String,
}

impl Handler<SendPrivate> for MucRoom {
    type Result = ResponseFuture<Result<(), RoomError>>;

    fn handle(&mut self, msg: SendPrivate, ctx: &mut Context<Self>) -> Self::Result {
        if self.stand_in.is_some() {
            let SendPrivate { username, resource, to_nick, body, id } = msg;
            return self.forward(RoomCall::SendPrivate { username, resource, to_nick, body, id }, done, ctx);
        }
        Box::pin(std::future::ready(self.send_private(msg)))
    }
}

impl MucRoom {
    fn send_private(&mut self, msg: SendPrivate) -> Result<(), RoomError> {
        let name = self.record.name.clone();
        let nick = self.by_station.get(&(msg.username, msg.resource)).ok_or(RoomError::NotOccupant(name.clone()))?;
        let role = self.occupants[nick].role;
        let allowed = match self.record.config.allow_pm.as_str() {
            "none" => false,
            "moderators" => role == Role::Moderator,
            "participants" => role != Role::Visitor,
            _ => true,
        };
        if !allowed {
            return Err(RoomError::NotAllowed(format!(
                "private messages in room '{name}' are allowed to {}",
                self.record.config.allow_pm
            )));
        }
        let target = self
            .occupants
            .get(&msg.to_nick)
            .ok_or_else(|| RoomError::BadRequest(format!("there is no occupant '{}' in room '{name}'", msg.to_nick)))?;
        let event = Event::new(Payload::RoomPrivate {
            id: msg.id,
            room: name,
            from_nick: nick.clone(),
            to: Address::station(target.username.as_str(), Some(target.resource.clone())),
            body: msg.body,
            stamp_ms: crate::clock::now_ms(),
        });
        self.send_to(target, vec![event]);
        Ok(())
    }
}

/// An external app attached to the room posts (as its name, without occupying the room);
/// replies once it is archived. Sent by the apps' API through the conference.
#[derive(Message)]
#[rtype(result = "Result<Arc<RoomMessage>, RoomError>")]
pub struct PostAsApp {
    pub app: String,
    pub body: String,
    pub data: Option<Value>,
}

/// Whether apps are attached to the room (sent by the conference).
#[derive(Message)]
#[rtype(result = "()")]
pub struct AppsAttached {
    pub apps: Option<Arc<dyn AppStorage>>,
}

impl Handler<AppsAttached> for MucRoom {
    type Result = ();

    fn handle(&mut self, msg: AppsAttached, _: &mut Context<Self>) {
        self.apps = msg.apps;
    }
}

impl Handler<PostAsApp> for MucRoom {
    type Result = ResponseFuture<Result<Arc<RoomMessage>, RoomError>>;

    fn handle(&mut self, msg: PostAsApp, ctx: &mut Context<Self>) -> Self::Result {
        if self.stand_in.is_some() {
            return self.forward(RoomCall::PostAsApp { app: msg.app, body: msg.body, data: msg.data }, posted, ctx);
        }
        let name = self.record.name.clone();
        if self.apps.is_none() {
            return Box::pin(std::future::ready(Err(RoomError::NotOccupant(name))));
        }
        let message =
            NewRoomMessage { room: name, nick: msg.app.clone(), from_user: msg.app, body: msg.body, data: msg.data };
        self.archive(message, ctx)
    }
}

/// A room message was archived. Sent by the store's writer thread, in commit order.
#[derive(Message)]
#[rtype(result = "()")]
struct RoomMessageCommitted {
    message: Arc<RoomMessage>,
}

impl Handler<RoomMessageCommitted> for MucRoom {
    type Result = ();

    fn handle(&mut self, msg: RoomMessageCommitted, _: &mut Context<Self>) {
        let live = self.render_message(&msg.message, false);
        self.broadcast(&live);
        let as_history = self.render_message(&msg.message, true);
        self.remember(as_history);
    }
}

/// Invite users. `inviter` is an occupant's station, or `None` for the administrator.
/// Replies with one rendered invitation per invitee, for the caller to deliver. In a
/// members-only room the invitees become members (XEP-0045 §7.8.2).
#[derive(Message)]
#[rtype(result = "Result<Vec<(String, Arc<Event>)>, RoomError>")]
pub struct Invite {
    pub inviter: Option<(String, String)>,
    pub invitees: Vec<String>,
    pub reason: String,
}

impl Handler<Invite> for MucRoom {
    type Result = AtomicResponse<Self, Result<Vec<(String, Arc<Event>)>, RoomError>>;

    fn handle(&mut self, msg: Invite, ctx: &mut Context<Self>) -> Self::Result {
        if self.stand_in.is_some() {
            let call = RoomCall::Invite { inviter: msg.inviter, invitees: msg.invitees, reason: msg.reason };
            let pick = |answer| match answer {
                RoomAnswer::Invitations(invitations) => {
                    Some(invitations.into_iter().map(|(invitee, payload)| (invitee, Event::new(payload))).collect())
                }
                _ => None,
            };
            return AtomicResponse::new(Box::pin(self.forward(call, pick, ctx).into_actor(self)));
        }
        let name = self.record.name.clone();
        let inviter = match &msg.inviter {
            None => Address::user("admin"),
            Some((username, resource)) => {
                if !self.by_station.contains_key(&(username.clone(), resource.clone())) {
                    return AtomicResponse::new(Box::pin(fut::ready(Err(RoomError::NotOccupant(name)))));
                }
                // As in Openfire: any occupant invites to an open room; in a members-only room,
                // owners and admins, and others when the room lets occupants invite.
                let privileged = matches!(self.affiliation_of(username), Some(Affiliation::Owner | Affiliation::Admin));
                let config = &self.record.config;
                if !privileged && config.members_only && !config.can_occupants_invite {
                    return AtomicResponse::new(Box::pin(fut::ready(Err(RoomError::MayNotInvite(name)))));
                }
                Address::user(username.as_str())
            }
        };
        let mut changed = false;
        if self.record.config.members_only {
            for invitee in &msg.invitees {
                if !self.record.affiliations.contains_key(invitee) {
                    self.record.affiliations.insert(invitee.clone(), Affiliation::Member);
                    changed = true;
                }
            }
        }
        let invitations: Vec<(String, Arc<Event>)> = msg
            .invitees
            .iter()
            .map(|invitee| {
                let event = Event::new(Payload::Invitation(Invitation {
                    room: self.record.name.clone(),
                    inviter: inviter.clone(),
                    invitee: invitee.clone(),
                    reason: msg.reason.clone(),
                    password: self.record.config.password.clone(),
                    workgroup: None,
                }));
                (invitee.clone(), event)
            })
            .collect();
        let saved = if changed {
            self.record.modified_ms = now_ms();
            futures_util::future::Either::Left(self.persist())
        } else {
            futures_util::future::Either::Right(std::future::ready(Ok(())))
        };
        AtomicResponse::new(Box::pin(saved.into_actor(self).map(move |result, _, _| result.map(|()| invitations))))
    }
}

/// The room's record and occupants. Sent by the APIs.
#[derive(Message)]
#[rtype(result = "Result<RoomView, RoomError>")]
pub struct Describe;

impl Handler<Describe> for MucRoom {
    type Result = ResponseFuture<Result<RoomView, RoomError>>;

    fn handle(&mut self, _: Describe, ctx: &mut Context<Self>) -> Self::Result {
        if self.stand_in.is_some() {
            return self.forward(RoomCall::Describe, viewed, ctx);
        }
        Box::pin(std::future::ready(Ok(self.view())))
    }
}

/// Reads an answer that shows the room.
fn viewed(answer: RoomAnswer) -> Option<RoomView> {
    match answer {
        RoomAnswer::View(view) => Some(*view),
        _ => None,
    }
}

/// Replaces the holders of each listed affiliation.
fn replace_lists(holders: &mut BTreeMap<String, Affiliation>, lists: AffiliationLists) {
    for (affiliation, names) in lists {
        holders.retain(|_, a| *a != affiliation);
        for name in names {
            holders.insert(name, affiliation);
        }
    }
}

/// Gives `holder` an affiliation, or removes the one it has (which must be `expected`).
fn affiliate(
    holders: &mut BTreeMap<String, Affiliation>,
    holder: String,
    affiliation: Option<Affiliation>,
    expected: Option<Affiliation>,
) -> Result<(), RoomError> {
    match affiliation {
        Some(a) => {
            holders.insert(holder, a);
        }
        None => {
            let current = holders.get(&holder).copied();
            let wanted = expected.or(current);
            if current.is_none() || current != wanted {
                let what = expected.map_or("affiliated", Affiliation::as_str);
                return Err(RoomError::NotAffiliated(holder, what.into()));
            }
            holders.remove(&holder);
        }
    }
    Ok(())
}

impl Handler<Administer> for MucRoom {
    type Result = AtomicResponse<Self, Result<RoomView, RoomError>>;

    fn handle(&mut self, msg: Administer, ctx: &mut Context<Self>) -> Self::Result {
        if self.stand_in.is_some() {
            let forwarded = self.forward(RoomCall::Administer(msg), viewed, ctx);
            return AtomicResponse::new(Box::pin(forwarded.into_actor(self)));
        }
        let mut next = self.record.clone();
        let changed = match msg {
            Administer::Configure { config, users, groups } => {
                next.config = config;
                replace_lists(&mut next.affiliations, users);
                replace_lists(&mut next.group_affiliations, groups);
                Ok(())
            }
            Administer::Affiliate { username, affiliation, expected } => {
                affiliate(&mut next.affiliations, username, affiliation, expected)
            }
            Administer::AffiliateGroup { group, affiliation, expected } => {
                affiliate(&mut next.group_affiliations, group, affiliation, expected)
            }
            Administer::ReplaceAll { affiliation, usernames } => {
                replace_lists(&mut next.affiliations, vec![(affiliation, usernames)]);
                Ok(())
            }
        };
        if let Err(refused) = changed {
            return AtomicResponse::new(Box::pin(fut::ready(Err(refused))));
        }
        next.modified_ms = now_ms();
        let previous = std::mem::replace(&mut self.record, next);
        let saved = self.persist();
        AtomicResponse::new(Box::pin(saved.into_actor(self).map(move |result, act, ctx| match result {
            Ok(()) => {
                act.enforce_rules();
                let view = act.view();
                act.stop_if_unused(ctx);
                Ok(view)
            }
            Err(e) => {
                act.record = previous;
                Err(e)
            }
        })))
    }
}

/// A group changed: a room that names it applies its entry rules again. A deleted group's
/// affiliation goes (the store dropped it with the group).
impl Handler<GroupChanged> for MucRoom {
    type Result = ();

    fn handle(&mut self, msg: GroupChanged, _: &mut Context<Self>) {
        if self.stand_in.is_some() {
            return; // The owner applies it.
        }
        let named = if msg.deleted {
            self.record.group_affiliations.remove(&msg.group).is_some()
        } else {
            self.record.group_affiliations.contains_key(&msg.group)
        };
        if named {
            self.enforce_rules();
        }
    }
}

/// End the room (admin `DELETE`): its stored config and affiliations go, every occupant is
/// told why and removed, and the actor stops.
#[derive(Message)]
#[rtype(result = "Result<(), RoomError>")]
pub struct Destroy {
    pub reason: String,
}

impl Handler<Destroy> for MucRoom {
    type Result = AtomicResponse<Self, Result<(), RoomError>>;

    fn handle(&mut self, msg: Destroy, ctx: &mut Context<Self>) -> Self::Result {
        if self.stand_in.is_some() {
            let forwarded = self.forward(RoomCall::Destroy { reason: msg.reason }, done, ctx);
            return AtomicResponse::new(Box::pin(forwarded.into_actor(self).map(|result, act, ctx| {
                if result.is_ok() {
                    act.registry.do_send(RoomStopped { name: act.record.name.clone(), room: ctx.address() });
                    ctx.stop();
                }
                result
            })));
        }
        let deleted = self.store.delete_room(self.record.name.clone());
        AtomicResponse::new(Box::pin(deleted.into_actor(self).map(move |result, act, ctx| {
            result?;
            let ended = Event::new(Payload::RoomDestroyed { room: act.record.name.clone(), reason: msg.reason });
            // One event for everyone (XEP-0045 §10.9), instead of every occupant leaving.
            act.broadcast(&ended);
            act.occupants.clear();
            act.by_station.clear();
            act.registry.do_send(RoomStopped { name: act.record.name.clone(), room: ctx.address() });
            ctx.stop();
            Ok(())
        })))
    }
}

/// Events the room's owner relayed for this node's stations `to`. Sent by the conference to
/// a stand-in.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Relayed {
    pub events: Vec<Payload>,
    pub to: Vec<(String, String)>,
}

impl Handler<Relayed> for MucRoom {
    type Result = ();

    fn handle(&mut self, msg: Relayed, _: &mut Context<Self>) {
        let Some(stand_in) = &mut self.stand_in else {
            return;
        };
        let events: Vec<Arc<Event>> = msg.events.into_iter().map(Event::new).collect();
        for key in &msg.to {
            if let Some(seat) = stand_in.local.get(key) {
                hand_over(&seat.station, events.clone());
            }
        }
        for event in &events {
            let Payload::Occupant(presence) = &event.payload else {
                continue;
            };
            if presence.available {
                stand_in.present.insert(presence.nick.clone(), presence.clone());
                continue;
            }
            stand_in.present.remove(&presence.nick);
            // One of this node's stations, removed by the owner (a ban, a rule): no longer seated.
            let key = (presence.user.clone(), presence.resource.clone());
            let ours = stand_in.local.get(&key).is_some_and(|seat| seat.nick == presence.nick);
            if ours && presence.new_nick.is_none() && msg.to.contains(&key) {
                stand_in.local.remove(&key);
            }
        }
    }
}

/// A node of the cluster died: the owner removes the occupants that sat there.
#[derive(Message)]
#[rtype(result = "()")]
pub struct NodeGone {
    pub node: String,
}

impl Handler<NodeGone> for MucRoom {
    type Result = ();

    fn handle(&mut self, msg: NodeGone, ctx: &mut Context<Self>) {
        if self.stand_in.is_some() {
            return;
        }
        let gone: Vec<String> = self
            .occupants
            .values()
            .filter(|o| matches!(&o.seat, Seat::On(node) if *node == msg.node))
            .map(|o| o.nick.clone())
            .collect();
        for nick in gone {
            self.remove_occupant(&nick, None);
        }
        self.stop_if_unused(ctx);
    }
}

/// The room's owner died: a stand-in moves to the new owner (`Some`), or becomes the room
/// itself (`None`: this node took its lease), rebuilt from `record`. Either way, everyone
/// the old owner had announced leaves, and this node's stations enter again. Sent by the
/// conference.
#[derive(Message)]
#[rtype(result = "()")]
pub struct MoveTo {
    pub owner: Option<String>,
    pub record: RoomRecord,
}

impl Handler<MoveTo> for MucRoom {
    type Result = ();

    fn handle(&mut self, msg: MoveTo, ctx: &mut Context<Self>) {
        let Some(stand_in) = self.stand_in.take() else {
            return;
        };
        let ours: std::collections::HashSet<&str> = stand_in.local.values().map(|seat| seat.nick.as_str()).collect();
        let left: Vec<Arc<Event>> = stand_in
            .present
            .values()
            .filter(|presence| !ours.contains(presence.nick.as_str()))
            .map(|presence| Event::new(Payload::Occupant(OccupantPresence { available: false, ..presence.clone() })))
            .collect();
        for seat in stand_in.local.values() {
            hand_over(&seat.station, left.clone());
        }
        let rejoins: Vec<Join> = stand_in
            .local
            .iter()
            .map(|((username, resource), seat)| Join {
                username: username.clone(),
                resource: resource.clone(),
                nick: seat.nick.clone(),
                password: seat.password.clone(),
                seat: Seat::Here(seat.station.clone()),
                rejoin: true,
            })
            .collect();
        match msg.owner {
            Some(owner) => {
                tracing::info!(room = %self.record.name, %owner, "room moved to another node");
                self.stand_in = Some(StandIn { owner, local: stand_in.local, present: HashMap::new() });
                let me = ctx.address();
                for join in rejoins {
                    me.do_send(join);
                }
            }
            None => {
                tracing::info!(room = %self.record.name, "room moved to this node");
                self.record = msg.record;
                self.load_history(ctx);
                for join in rejoins {
                    let (username, nick) = (join.username.clone(), join.nick.clone());
                    if let Err(e) = self.admit(join) {
                        tracing::info!(room = %self.record.name, %username, %nick, error = %e, "could not enter the moved room");
                    }
                }
            }
        }
    }
}

/// A stand-in whose room ended on its owner stops. Sent by the conference, and by a
/// stand-in to itself when the owner has no such room.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Dismiss;

impl Handler<Dismiss> for MucRoom {
    type Result = ();

    fn handle(&mut self, _: Dismiss, ctx: &mut Context<Self>) {
        if self.stand_in.is_some() {
            self.registry.do_send(RoomStopped { name: self.record.name.clone(), room: ctx.address() });
            ctx.stop();
        }
    }
}
