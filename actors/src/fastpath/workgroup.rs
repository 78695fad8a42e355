//! `Workgroup`: one actor per workgroup. It owns the queue's [`Machine`], the visitors'
//! stations and the chats it set up, and turns everything that happens into machine
//! inputs: agents' commands and availability (watched through the router), visitors'
//! requests, answers to offers, rooms emptying, and a timer armed for the machine's next
//! deadline (no polling). It runs the machine's effects:
//!
//! - to agents (all their live stations): `chatapi.assist` `offerReceived` / `offerRevoked`,
//!   `chatapi.muc` `invitationReceived`, and `chatapi.ask` `notify-queue` summaries;
//! - to visitors (their own station, with a backlog until they connect): `chatapi.ask`
//!   `update-queue`, `depart-queue` and the room `offer`;
//! - on acceptance, a temporary, non-public, members-only room (the agent and the visitor
//!   are its only members) that the workgroup watches: when the agent leaves, the agent's
//!   chat count drops; when the room ends, the chat's record is closed. The transcript is
//!   the room's archive.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use serde_json::{json, Value};

use super::machine::{AgentView, DepartReason, Effect, Input, Machine, Refusal, Settings, Waiting};
use super::{ChatRecord, FastpathError, FastpathOptions, WorkgroupRecord};
use crate::clock::now_ms;
use crate::model::event::{Invitation, WorkgroupEvent, WorkgroupInvitation};
use crate::model::{Address, Event, Payload, Push};
use crate::muc::conference::{Conference, CreateRoom, FindRoom, JoinRoom, StationLeft};
use crate::muc::room::{Join, Post, RoomActivity};
use crate::muc::{Affiliation, MucOptions, RoomConfig, RoomRecord};
use crate::random::random_hex;
use crate::router::{DeliverToUser, Router, UnwatchUser, UserStatus, WatchUser};
use crate::station::{AddConnection, EndStation, RemoveConnection, Station, StationEvent};
use crate::storage::WorkgroupStorage;

/// How a visitor appears in its room's affiliations and archive (never a user name:
/// user names cannot contain ':').
pub fn visitor_key(user_id: &str) -> String {
    format!("visitor:{user_id}")
}

/// One workgroup.
pub struct Workgroup {
    options: Arc<FastpathOptions>,
    muc: Arc<MucOptions>,
    record: WorkgroupRecord,
    /// `name@workgroup.{domain}`.
    jid: String,
    machine: Machine,
    store: Arc<dyn WorkgroupStorage>,
    router: Addr<Router>,
    conference: Addr<Conference>,
    registry: Recipient<VisitorReport>,
    visitors: HashMap<String, Visitor>,
    /// Room name → the chat set up in it.
    chats: HashMap<String, Chat>,
    timer: Option<SpawnHandle>,
    next_room: u64,
    next_connection: u64,
    next_generation: u64,
}

struct Visitor {
    token: String,
    /// Tells this visitor apart from an earlier one with the same id (delayed timers).
    generation: u64,
    /// Where its events go and how it enters the room.
    sink: Sink,
    nickname: String,
    email: String,
    question: String,
    stage: Stage,
}

/// A web visitor has a station of its own (reached with its token); a signed-in user who
/// queued through the workgroup IQ gets the events on its own stations and enters the room
/// as itself.
enum Sink {
    Station(Addr<Station>),
    User(String),
}

impl Visitor {
    /// How the visitor appears in its room's affiliations and occupants.
    fn room_key(&self, user_id: &str) -> String {
        match &self.sink {
            Sink::Station(_) => visitor_key(user_id),
            Sink::User(username) => username.clone(),
        }
    }

    fn station(&self) -> Result<&Addr<Station>, FastpathError> {
        match &self.sink {
            Sink::Station(station) => Ok(station),
            Sink::User(_) => {
                Err(FastpathError::Conflict("a signed-in user's request is followed on its own stations".into()))
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Stage {
    Queued,
    /// An agent accepted: the room exists, the visitor has not entered it yet.
    Invited {
        room: String,
    },
    InRoom {
        room: String,
    },
    /// The request or the chat is over; the visitor lingers for a late reader.
    Ended,
}

struct Chat {
    agent: String,
    user_id: String,
    /// The agent's chat count includes this chat (until the agent leaves the room).
    counted: bool,
}

fn settings_of(record: &WorkgroupRecord, options: &FastpathOptions) -> Settings {
    Settings {
        offer_timeout_ms: record.offer_timeout_ms,
        request_timeout_ms: record.request_timeout_ms,
        rejection_memory_ms: options.rejection_memory_ms,
        max_chats: record.max_chats,
    }
}

impl From<Refusal> for FastpathError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::UnknownOffer(id) => FastpathError::UnknownOffer(id),
            Refusal::NotYourOffer(id) => FastpathError::NotYourOffer(id),
            Refusal::AlreadyQueued(id) => FastpathError::AlreadyQueued(id),
            Refusal::NotQueued(id) => FastpathError::UnknownVisitor(id),
            other => FastpathError::Conflict(other.to_string()),
        }
    }
}

/// What a workgroup tells its registry about a visitor. Sent by the workgroup.
#[derive(Message)]
#[rtype(result = "()")]
pub enum VisitorReport {
    /// The visitor's request or chat ended: its id may be asked with again.
    Settled { user_id: String, token: String },
    /// The visitor ended.
    Gone { user_id: String, token: String },
}

impl Workgroup {
    pub fn new(
        options: Arc<FastpathOptions>,
        muc: Arc<MucOptions>,
        record: WorkgroupRecord,
        store: Arc<dyn WorkgroupStorage>,
        router: Addr<Router>,
        conference: Addr<Conference>,
        registry: Recipient<VisitorReport>,
    ) -> Self {
        let jid = format!("{}@{}", record.name, options.host());
        let machine = Machine::new(&record.name, settings_of(&record, &options), record.open);
        Workgroup {
            options,
            muc,
            record,
            jid,
            machine,
            store,
            router,
            conference,
            registry,
            visitors: HashMap::new(),
            chats: HashMap::new(),
            timer: None,
            next_room: 1,
            next_connection: 1,
            next_generation: 1,
        }
    }

    fn watch_key(&self) -> String {
        format!("workgroup:{}", self.record.name)
    }

    fn visitor_address(&self, user_id: &str) -> String {
        format!("{}/{user_id}", self.jid)
    }

    fn room_address(&self, room: &str) -> String {
        format!("{room}@{}", self.muc.host())
    }

    /// Feeds the machine one input now, runs its effects and re-arms the timer.
    fn apply(&mut self, input: Input, ctx: &mut Context<Self>) -> Result<(), Refusal> {
        let effects = self.machine.on(input, now_ms())?;
        self.run(effects, ctx);
        self.arm(ctx);
        Ok(())
    }

    /// One timer, for the machine's next deadline.
    fn arm(&mut self, ctx: &mut Context<Self>) {
        if let Some(handle) = self.timer.take() {
            ctx.cancel_future(handle);
        }
        let now = now_ms();
        if let Some(deadline) = self.machine.next_deadline(now) {
            let wait = Duration::from_millis((deadline - now).max(0) as u64);
            self.timer = Some(ctx.run_later(wait, |act, ctx| {
                act.timer = None;
                if let Err(e) = act.apply(Input::Tick, ctx) {
                    tracing::warn!(workgroup = %act.record.name, error = %e, "tick refused");
                }
            }));
        }
    }

    fn to_visitor(&self, user_id: &str, what: WorkgroupEvent) {
        if let Some(visitor) = self.visitors.get(user_id) {
            let event = Event::new(Payload::Workgroup(what));
            match &visitor.sink {
                Sink::Station(station) => station.do_send(StationEvent { event }),
                Sink::User(username) => self.router.do_send(DeliverToUser { username: username.clone(), event }),
            }
        }
    }

    fn to_agent(&self, agent: &str, payload: Payload) {
        self.router.do_send(DeliverToUser { username: agent.to_owned(), event: Event::new(payload) });
    }

    fn name(&self) -> String {
        self.record.name.clone()
    }

    fn run(&mut self, effects: Vec<Effect>, ctx: &mut Context<Self>) {
        let mut queue_changed = false;
        for effect in effects {
            match effect {
                Effect::QueueStatus { user_id, position, remaining_secs } => {
                    let status = WorkgroupEvent::QueueStatus {
                        workgroup: self.name(),
                        user_id: user_id.clone(),
                        position,
                        remaining_secs,
                    };
                    self.to_visitor(&user_id, status);
                }
                Effect::Departed { user_id, reason } => {
                    self.to_visitor(
                        &user_id,
                        WorkgroupEvent::Departed { workgroup: self.name(), user_id: user_id.clone(), reason },
                    );
                    self.settle(&user_id, ctx);
                }
                Effect::Offer { agent, offer_id, user_id, metadata, timeout_secs } => {
                    let offer =
                        WorkgroupEvent::Offer { workgroup: self.name(), offer_id, user_id, metadata, timeout_secs };
                    self.to_agent(&agent, Payload::Workgroup(offer));
                }
                Effect::Revoke { agent, offer_id, user_id, reason } => {
                    let revoke = WorkgroupEvent::OfferRevoked { workgroup: self.name(), offer_id, user_id, reason };
                    self.to_agent(&agent, Payload::Workgroup(revoke));
                }
                Effect::Accepted { agent, user_id, metadata } => self.open_chat(agent, user_id, metadata, ctx),
                Effect::QueueChanged => queue_changed = true,
            }
        }
        if queue_changed {
            self.notify_agents();
        }
    }

    fn status(&self) -> &'static str {
        if !self.machine.is_open() {
            "closed"
        } else if self.machine.accepting() {
            "open"
        } else {
            "ready"
        }
    }

    /// Every online agent gets the queue's summary.
    fn notify_agents(&self) {
        let waiting = self.machine.waiting();
        let summary = Event::new(Payload::Workgroup(WorkgroupEvent::QueueSummary {
            workgroup: self.name(),
            status: self.status(),
            user_count: waiting.len(),
            average_wait_secs: self.machine.average_wait_secs(),
            oldest_entry_ms: waiting.first().map(|w| w.joined_ms),
        }));
        for agent in self.machine.agents() {
            self.router.do_send(DeliverToUser { username: agent.name, event: summary.clone() });
        }
    }

    /// An agent accepted `user_id`'s request: a room for the two of them, then invitations.
    fn open_chat(&mut self, agent: String, user_id: String, metadata: Value, ctx: &mut Context<Self>) {
        let room = format!("{}{}", random_hex(3), self.next_room);
        self.next_room += 1;
        let question = self.visitors.get(&user_id).map(|v| v.question.clone()).unwrap_or_default();
        let config = RoomConfig {
            natural_name: format!("{} chat", self.record.name),
            description: question,
            persistent: false,
            public_room: false,
            members_only: true,
            can_anyone_discover_jid: false,
            ..RoomConfig::default()
        };
        let mut record = RoomRecord::new(room.clone(), config);
        record.affiliations.insert(agent.clone(), Affiliation::Admin);
        if let Some(visitor) = self.visitors.get(&user_id) {
            record.affiliations.insert(visitor.room_key(&user_id), Affiliation::Member);
        }
        self.chats.insert(room.clone(), Chat { agent: agent.clone(), user_id: user_id.clone(), counted: true });
        if let Some(visitor) = self.visitors.get_mut(&user_id) {
            visitor.stage = Stage::Invited { room: room.clone() };
        }
        let empty_timeout = Duration::from_millis(self.record.request_timeout_ms.max(60_000) as u64);
        let create =
            CreateRoom { record, watcher: Some(ctx.address().recipient()), empty_timeout: Some(empty_timeout) };
        self.conference
            .send(create)
            .into_actor(self)
            .map(move |result, act, ctx| match result {
                Ok(Ok(())) => act.invite(&room, &agent, &user_id, metadata),
                Ok(Err(e)) => {
                    tracing::error!(workgroup = %act.record.name, room = %room, error = %e, "could not create a chat room");
                    act.room_ended(&room, ctx);
                }
                Err(e) => {
                    tracing::error!(workgroup = %act.record.name, room = %room, error = %e, "could not create a chat room");
                    act.room_ended(&room, ctx);
                }
            })
            .spawn(ctx);
    }

    fn invite(&mut self, room: &str, agent: &str, user_id: &str, metadata: Value) {
        let invitation = Invitation {
            room: room.to_owned(),
            inviter: Address::workgroup(self.name()),
            invitee: agent.to_owned(),
            reason: room.to_owned(),
            password: None,
            workgroup: Some(WorkgroupInvitation { workgroup: self.name(), user_id: user_id.to_owned(), metadata }),
        };
        self.to_agent(agent, Payload::Invitation(invitation));
        let offered = WorkgroupEvent::ChatOffered {
            workgroup: self.name(),
            user_id: user_id.to_owned(),
            room: room.to_owned(),
            agent: agent.to_owned(),
        };
        self.to_visitor(user_id, offered);
        let (question, email) =
            self.visitors.get(user_id).map(|v| (v.question.clone(), v.email.clone())).unwrap_or_default();
        let chat = ChatRecord {
            room: room.to_owned(),
            workgroup: self.record.name.clone(),
            visitor: user_id.to_owned(),
            agent: agent.to_owned(),
            question,
            email,
            started_ms: now_ms(),
            ended_ms: None,
        };
        let name = self.record.name.clone();
        let stored = self.store.start_chat(chat);
        actix::spawn(async move {
            if let Err(e) = stored.await {
                tracing::warn!(workgroup = %name, error = %e, "could not record a chat");
            }
        });
    }

    /// A chat's room is gone: the agent's count drops (if it has not already), the record
    /// is closed, and the visitor's part is over.
    fn room_ended(&mut self, room: &str, ctx: &mut Context<Self>) {
        let Some(chat) = self.chats.remove(room) else {
            return;
        };
        if chat.counted {
            let _ = self.apply(Input::ChatEnded { agent: chat.agent.clone() }, ctx);
        }
        let ended = self.store.end_chat(room.to_owned(), now_ms());
        actix::spawn(async move {
            if let Err(e) = ended.await {
                tracing::warn!(error = %e, "could not close a chat record");
            }
        });
        let in_this_room = self
            .visitors
            .get(&chat.user_id)
            .is_some_and(|v| matches!(&v.stage, Stage::Invited { room: r } | Stage::InRoom { room: r } if r == room));
        if in_this_room {
            let ended = WorkgroupEvent::ChatEnded {
                workgroup: self.name(),
                user_id: chat.user_id.clone(),
                room: room.to_owned(),
            };
            self.to_visitor(&chat.user_id, ended);
            self.settle(&chat.user_id, ctx);
        }
    }

    /// The visitor's request or chat is over: it stays known for the linger time.
    fn settle(&mut self, user_id: &str, ctx: &mut Context<Self>) {
        let Some(visitor) = self.visitors.get_mut(user_id) else {
            return;
        };
        visitor.stage = Stage::Ended;
        let generation = visitor.generation;
        self.registry.do_send(VisitorReport::Settled { user_id: user_id.to_owned(), token: visitor.token.clone() });
        let user_id = user_id.to_owned();
        let linger = Duration::from_millis(self.options.visitor_linger_ms.max(0) as u64);
        ctx.run_later(linger, move |act, _| {
            let current = act.visitors.get(&user_id).is_some_and(|v| v.generation == generation);
            if current {
                act.forget(&user_id, "the request has ended");
            }
        });
    }

    /// Ends a visitor: its connections close, it leaves its room, the registry forgets it.
    fn forget(&mut self, user_id: &str, reason: &str) {
        let Some(visitor) = self.visitors.remove(user_id) else {
            return;
        };
        if let Sink::Station(station) = &visitor.sink {
            if let Stage::InRoom { room } = &visitor.stage {
                self.conference.do_send(StationLeft {
                    room: room.clone(),
                    username: visitor_key(user_id),
                    resource: user_id.to_owned(),
                });
            }
            station.do_send(EndStation { reason: reason.to_owned() });
        }
        self.registry.do_send(VisitorReport::Gone { user_id: user_id.to_owned(), token: visitor.token });
    }

    fn queue_view(&self) -> QueueView {
        let agents = self.machine.agents();
        QueueView {
            name: self.record.name.clone(),
            jid: self.jid.clone(),
            status: self.status(),
            average_wait_secs: self.machine.average_wait_secs(),
            max_chats: self.record.max_chats,
            current_chats: agents.iter().map(|a| a.chats).sum(),
            waiting: self.machine.waiting(),
            agents,
        }
    }
}

impl Actor for Workgroup {
    type Context = Context<Self>;

    fn stopped(&mut self, _: &mut Context<Self>) {
        for agent in self.machine.agents() {
            self.router.do_send(UnwatchUser { username: agent.name, key: self.watch_key() });
        }
    }
}

/// A visitor asks to join the queue. Sent by the registry, which made the token.
#[derive(Message)]
#[rtype(result = "Result<Waiting, FastpathError>")]
pub struct Enqueue {
    pub user_id: String,
    pub token: String,
    pub nickname: String,
    pub email: String,
    pub question: String,
    /// A signed-in user queueing as itself (the workgroup IQ); `None` for a web visitor.
    pub user: Option<String>,
}

impl Handler<Enqueue> for Workgroup {
    type Result = Result<Waiting, FastpathError>;

    fn handle(&mut self, msg: Enqueue, ctx: &mut Context<Self>) -> Self::Result {
        if !self.machine.is_open() {
            return Err(FastpathError::Closed(self.record.name.clone()));
        }
        if !self.machine.accepting() {
            return Err(FastpathError::NoAgent(self.record.name.clone()));
        }
        // An earlier, ended visitor with this id gives way.
        if self.visitors.get(&msg.user_id).is_some_and(|v| v.stage == Stage::Ended) {
            self.forget(&msg.user_id, "replaced by a new request");
        }
        let sink = match msg.user {
            Some(username) => Sink::User(username),
            None => Sink::Station(Station::with_backlog(self.options.visitor_backlog).start()),
        };
        let generation = self.next_generation;
        self.next_generation += 1;
        let metadata = json!({ "question": msg.question, "email": msg.email, "username": msg.nickname });
        self.visitors.insert(
            msg.user_id.clone(),
            Visitor {
                token: msg.token,
                generation,
                sink,
                nickname: msg.nickname,
                email: msg.email,
                question: msg.question,
                stage: Stage::Queued,
            },
        );
        match self.apply(Input::Join { user_id: msg.user_id.clone(), metadata }, ctx) {
            Ok(()) => self
                .machine
                .waiting()
                .into_iter()
                .find(|w| w.user_id == msg.user_id)
                .ok_or_else(|| FastpathError::Conflict("the request ended at once".into())),
            Err(refusal) => {
                if let Some(Visitor { sink: Sink::Station(station), .. }) = self.visitors.remove(&msg.user_id) {
                    station.do_send(EndStation { reason: refusal.to_string() });
                }
                Err(match refusal {
                    Refusal::Closed => FastpathError::Closed(self.record.name.clone()),
                    Refusal::NoAgent => FastpathError::NoAgent(self.record.name.clone()),
                    other => other.into(),
                })
            }
        }
    }
}

/// What a visitor may do with its request (`/restapi/v1/ask/{userID}` and its doors).
#[derive(Debug)]
pub enum VisitorAction {
    Status,
    /// Depart the queue, or leave the room; the visitor ends.
    Leave,
    JoinRoom,
    Say(String),
    Attach(Recipient<Push>),
    Detach(u64),
}

/// A visitor's state (`GET /ask/{userID}`).
#[derive(Debug, Clone, PartialEq)]
pub struct VisitorStatus {
    pub workgroup: String,
    pub in_queue: bool,
    /// 1-based, while queued.
    pub position: Option<usize>,
    pub remaining_secs: Option<i64>,
    /// The room's address once an agent accepted.
    pub room: Option<String>,
    pub in_room: bool,
}

#[derive(Debug)]
pub enum VisitorReply {
    Status(VisitorStatus),
    Done,
    /// A connection joined the visitor's station: its id and the visitor's address.
    Attached {
        connection_id: u64,
        address: String,
    },
}

/// A visitor's action, token already checked. Sent by the registry.
#[derive(Message)]
#[rtype(result = "Result<VisitorReply, FastpathError>")]
pub struct ForVisitor {
    pub user_id: String,
    pub action: VisitorAction,
}

impl Handler<ForVisitor> for Workgroup {
    type Result = ResponseActFuture<Self, Result<VisitorReply, FastpathError>>;

    fn handle(&mut self, msg: ForVisitor, ctx: &mut Context<Self>) -> Self::Result {
        let done = |r: Result<VisitorReply, FastpathError>| -> Self::Result { Box::pin(fut::ready(r)) };
        let user_id = msg.user_id;
        let Some(visitor) = self.visitors.get(&user_id) else {
            return done(Err(FastpathError::UnknownVisitor(user_id)));
        };
        let stage = visitor.stage.clone();
        match msg.action {
            VisitorAction::Status => {
                let waiting = self.machine.waiting().into_iter().find(|w| w.user_id == user_id);
                let room = match &stage {
                    Stage::Invited { room } | Stage::InRoom { room } => Some(self.room_address(room)),
                    _ => None,
                };
                done(Ok(VisitorReply::Status(VisitorStatus {
                    workgroup: self.jid.clone(),
                    in_queue: waiting.is_some(),
                    position: waiting.as_ref().map(|w| w.position),
                    remaining_secs: waiting.as_ref().map(|w| w.remaining_secs),
                    room,
                    in_room: matches!(stage, Stage::InRoom { .. }),
                })))
            }
            VisitorAction::Leave => {
                if stage == Stage::Queued {
                    if let Err(e) = self.apply(Input::Depart { user_id: user_id.clone() }, ctx) {
                        tracing::warn!(workgroup = %self.record.name, error = %e, "depart refused");
                    }
                }
                self.forget(&user_id, "the visitor left");
                done(Ok(VisitorReply::Done))
            }
            VisitorAction::JoinRoom => {
                let room = match stage {
                    Stage::Invited { room } | Stage::InRoom { room } => room,
                    Stage::Queued => {
                        return done(Err(FastpathError::Conflict(
                            "still waiting in the queue: no agent has accepted yet".into(),
                        )))
                    }
                    Stage::Ended => return done(Err(FastpathError::Conflict("the request has ended".into()))),
                };
                let station = match visitor.station() {
                    Ok(station) => station.clone(),
                    Err(e) => return done(Err(e)),
                };
                let mut nick = visitor.nickname.clone();
                if self.chats.get(&room).is_some_and(|c| c.agent == nick) {
                    nick.push_str(" (visitor)");
                }
                let join = JoinRoom {
                    room: room.clone(),
                    join: Join {
                        username: visitor_key(&user_id),
                        resource: user_id.clone(),
                        nick,
                        password: None,
                        station,
                    },
                    may_create: false,
                };
                Box::pin(self.conference.send(join).into_actor(self).map(move |result, act, _| match result {
                    Ok(Ok(_)) => {
                        if let Some(visitor) = act.visitors.get_mut(&user_id) {
                            visitor.stage = Stage::InRoom { room };
                        }
                        Ok(VisitorReply::Done)
                    }
                    Ok(Err(e)) => Err(FastpathError::Conflict(format!("cannot enter the chat room: {e}"))),
                    Err(_) => Err(FastpathError::Gone),
                }))
            }
            VisitorAction::Say(body) => {
                let Stage::InRoom { room } = stage else {
                    return done(Err(FastpathError::Conflict(
                        "not in the chat room: join it first (POST /restapi/v1/ask/{userID})".into(),
                    )));
                };
                let find = self.conference.send(FindRoom { name: room });
                let post = Post { username: visitor_key(&user_id), resource: user_id, body, data: None };
                Box::pin(
                    async move {
                        let room =
                            find.await.ok().flatten().ok_or(FastpathError::Conflict("the chat has ended".into()))?;
                        match room.send(post).await {
                            Ok(Ok(_)) => Ok(VisitorReply::Done),
                            Ok(Err(e)) => Err(FastpathError::Conflict(e.to_string())),
                            Err(_) => Err(FastpathError::Conflict("the chat has ended".into())),
                        }
                    }
                    .into_actor(self),
                )
            }
            VisitorAction::Attach(connection) => {
                let station = match visitor.station() {
                    Ok(station) => station,
                    Err(e) => return done(Err(e)),
                };
                let connection_id = self.next_connection;
                self.next_connection += 1;
                station.do_send(AddConnection { connection_id, connection });
                done(Ok(VisitorReply::Attached { connection_id, address: self.visitor_address(&user_id) }))
            }
            VisitorAction::Detach(connection_id) => {
                if let Ok(station) = visitor.station() {
                    station.do_send(RemoveConnection { connection_id });
                }
                done(Ok(VisitorReply::Done))
            }
        }
    }
}

/// Forget a visitor whose id a new request takes over (`token` names the old one). Sent
/// by the registry.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ForgetVisitor {
    pub user_id: String,
    pub token: String,
}

impl Handler<ForgetVisitor> for Workgroup {
    type Result = ();

    fn handle(&mut self, msg: ForgetVisitor, _: &mut Context<Self>) {
        if self.visitors.get(&msg.user_id).is_some_and(|v| v.token == msg.token) {
            self.forget(&msg.user_id, "replaced by a new request");
        }
    }
}

/// An agent goes online (`true`) or offline for this workgroup. Sent by the registry,
/// which checked membership.
#[derive(Message)]
#[rtype(result = "Result<(), FastpathError>")]
pub struct AgentCommand {
    pub agent: String,
    pub online: bool,
}

impl Handler<AgentCommand> for Workgroup {
    type Result = ResponseActFuture<Self, Result<(), FastpathError>>;

    fn handle(&mut self, msg: AgentCommand, ctx: &mut Context<Self>) -> Self::Result {
        let agent = msg.agent;
        if !msg.online {
            if !self.machine.is_agent(&agent) {
                return Box::pin(fut::ready(Err(FastpathError::NotOnline(self.record.name.clone()))));
            }
            self.router.do_send(UnwatchUser { username: agent.clone(), key: self.watch_key() });
            let _ = self.apply(Input::AgentOffline { agent }, ctx);
            return Box::pin(fut::ready(Ok(())));
        }
        if self.machine.is_agent(&agent) {
            return Box::pin(fut::ready(Ok(())));
        }
        let watch = WatchUser { username: agent.clone(), key: self.watch_key(), watcher: ctx.address().recipient() };
        Box::pin(self.router.send(watch).into_actor(self).map(move |status, act, ctx| {
            let status = status.map_err(|_| FastpathError::Gone)?;
            if !act.machine.is_agent(&agent) {
                let _ = act.apply(Input::AgentOnline { agent: agent.clone() }, ctx);
            }
            let _ = act.apply(Input::AgentAvailability { agent, available: status.available_to_chat }, ctx);
            Ok(())
        }))
    }
}

impl Handler<UserStatus> for Workgroup {
    type Result = ();

    fn handle(&mut self, msg: UserStatus, ctx: &mut Context<Self>) {
        if !self.machine.is_agent(&msg.username) {
            return;
        }
        if msg.online {
            let _ = self.apply(Input::AgentAvailability { agent: msg.username, available: msg.available_to_chat }, ctx);
        } else {
            // Every station ended: the agent is offline, its pending offer counts as rejected.
            self.router.do_send(UnwatchUser { username: msg.username.clone(), key: self.watch_key() });
            let _ = self.apply(Input::AgentOffline { agent: msg.username }, ctx);
        }
    }
}

/// An agent accepts or rejects an offer. Sent by the registry.
#[derive(Message)]
#[rtype(result = "Result<(), FastpathError>")]
pub struct Answer {
    pub agent: String,
    pub offer_id: String,
    pub accept: bool,
}

impl Handler<Answer> for Workgroup {
    type Result = Result<(), FastpathError>;

    fn handle(&mut self, msg: Answer, ctx: &mut Context<Self>) -> Self::Result {
        let input = if msg.accept {
            Input::Accept { agent: msg.agent, offer_id: msg.offer_id }
        } else {
            Input::Reject { agent: msg.agent, offer_id: msg.offer_id }
        };
        Ok(self.apply(input, ctx)?)
    }
}

/// A queue as `GET …/assists/queues` shows it.
#[derive(Debug, Clone)]
pub struct QueueView {
    pub name: String,
    pub jid: String,
    pub status: &'static str,
    pub average_wait_secs: i64,
    pub max_chats: u32,
    pub current_chats: u32,
    pub waiting: Vec<Waiting>,
    pub agents: Vec<AgentView>,
}

/// The queue's state. Sent by the registry.
#[derive(Message)]
#[rtype(result = "QueueView")]
pub struct DescribeQueue;

impl Handler<DescribeQueue> for Workgroup {
    type Result = MessageResult<DescribeQueue>;

    fn handle(&mut self, _: DescribeQueue, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.queue_view())
    }
}

/// New settings and members (admin update). Agents no longer members go offline.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Reconfigure {
    pub record: WorkgroupRecord,
}

impl Handler<Reconfigure> for Workgroup {
    type Result = ();

    fn handle(&mut self, msg: Reconfigure, ctx: &mut Context<Self>) {
        self.record = msg.record;
        self.machine.set_settings(settings_of(&self.record, &self.options));
        for agent in self.machine.agents() {
            if !self.record.members.contains(&agent.name) {
                self.router.do_send(UnwatchUser { username: agent.name.clone(), key: self.watch_key() });
                let _ = self.apply(Input::AgentOffline { agent: agent.name }, ctx);
            }
        }
        let _ = self.apply(Input::SetOpen { open: self.record.open }, ctx);
        self.notify_agents();
    }
}

/// The workgroup was deleted: waiting visitors are told no agent will come, every visitor
/// ends, the actor stops (chat rooms already open run on).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Dissolve;

impl Handler<Dissolve> for Workgroup {
    type Result = ();

    fn handle(&mut self, _: Dissolve, ctx: &mut Context<Self>) {
        let ids: Vec<String> = self.visitors.keys().cloned().collect();
        for user_id in ids {
            if self.visitors.get(&user_id).is_some_and(|v| v.stage == Stage::Queued) {
                let departed = WorkgroupEvent::Departed {
                    workgroup: self.name(),
                    user_id: user_id.clone(),
                    reason: DepartReason::AgentNotFound,
                };
                self.to_visitor(&user_id, departed);
            }
            self.forget(&user_id, "the workgroup was deleted");
        }
        ctx.stop();
    }
}

impl Handler<RoomActivity> for Workgroup {
    type Result = ();

    fn handle(&mut self, msg: RoomActivity, ctx: &mut Context<Self>) {
        match msg {
            RoomActivity::Left { room, username } => {
                let Some(chat) = self.chats.get_mut(&room) else {
                    return;
                };
                if username == chat.agent && chat.counted {
                    chat.counted = false;
                    let agent = chat.agent.clone();
                    let _ = self.apply(Input::ChatEnded { agent }, ctx);
                } else if self.visitors.get(&chat.user_id).is_some_and(|v| v.room_key(&chat.user_id) == username) {
                    let user_id = chat.user_id.clone();
                    if self.visitors.get(&user_id).is_some_and(|v| v.stage == Stage::InRoom { room: room.clone() }) {
                        self.settle(&user_id, ctx);
                    }
                }
            }
            RoomActivity::Ended { room } => self.room_ended(&room, ctx),
        }
    }
}
