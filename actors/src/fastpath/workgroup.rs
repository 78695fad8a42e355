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

use super::machine::{AgentView, DepartReason, Effect, Input, Machine, Refusal, RequestMetadata, Settings, Waiting};
use super::{ChatRecord, FastpathError, FastpathOptions, WorkgroupRecord};
use crate::clock::now_ms;
use crate::groups::GroupIndex;
use crate::model::event::{Invitation, WorkgroupEvent, WorkgroupInvitation};
use crate::model::{Address, Event, Payload};
use crate::muc::conference::{Conference, CreateRoom, StationLeft};
use crate::muc::room::RoomActivity;
use crate::muc::{Affiliation, MucOptions, RoomConfig, RoomRecord};
use crate::random::random_hex;
use crate::router::{DeliverToUser, Router, UnwatchUser};
use crate::station::{EndStation, Station, StationEvent};
use crate::storage::WorkgroupStorage;

/// How a visitor appears in its room's affiliations and archive (never a user name:
/// user names cannot contain ':').
pub fn visitor_key(user_id: &str) -> String {
    format!("visitor:{user_id}")
}

/// One workgroup.
pub struct Workgroup {
    pub(super) options: Arc<FastpathOptions>,
    pub(super) muc: Arc<MucOptions>,
    pub(super) record: WorkgroupRecord,
    /// `name@workgroup.{domain}`.
    pub(super) jid: String,
    pub(super) machine: Machine,
    pub(super) store: Arc<dyn WorkgroupStorage>,
    pub(super) router: Addr<Router>,
    pub(super) conference: Addr<Conference>,
    pub(super) registry: Recipient<VisitorReport>,
    pub(super) visitors: HashMap<String, Visitor>,
    /// Room name → the chat set up in it.
    pub(super) chats: HashMap<String, Chat>,
    pub(super) timer: Option<SpawnHandle>,
    pub(super) next_room: u64,
    pub(super) next_connection: u64,
    pub(super) next_generation: u64,
    /// Resolves agents by user group.
    groups: Arc<GroupIndex>,
}

pub(super) struct Visitor {
    pub(super) token: String,
    /// Tells this visitor apart from an earlier one with the same id (delayed timers).
    pub(super) generation: u64,
    /// Where its events go and how it enters the room.
    pub(super) sink: Sink,
    pub(super) nickname: String,
    pub(super) email: String,
    pub(super) question: String,
    pub(super) stage: Stage,
}

/// A web visitor has a station of its own (reached with its token); a signed-in user who
/// queued through the workgroup IQ gets the events on its own stations and enters the room
/// as itself.
pub(super) enum Sink {
    Station(Addr<Station>),
    User(String),
}

impl Visitor {
    /// How the visitor appears in its room's affiliations and occupants.
    pub(super) fn room_key(&self, user_id: &str) -> String {
        match &self.sink {
            Sink::Station(_) => visitor_key(user_id),
            Sink::User(username) => username.clone(),
        }
    }

    pub(super) fn station(&self) -> Result<&Addr<Station>, FastpathError> {
        match &self.sink {
            Sink::Station(station) => Ok(station),
            Sink::User(_) => {
                Err(FastpathError::Conflict("a signed-in user's request is followed on its own stations".into()))
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Stage {
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

pub(super) struct Chat {
    pub(super) agent: String,
    pub(super) user_id: String,
    /// The agent's chat count includes this chat (until the agent leaves the room).
    pub(super) counted: bool,
}

pub(super) fn settings_of(record: &WorkgroupRecord, options: &FastpathOptions) -> Settings {
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
            groups: Arc::default(),
        }
    }

    /// Agents may come from user groups, resolved with this index.
    pub fn with_groups(mut self, groups: Arc<GroupIndex>) -> Self {
        self.groups = groups;
        self
    }

    pub(super) fn watch_key(&self) -> String {
        format!("workgroup:{}", self.record.name)
    }

    pub(super) fn visitor_address(&self, user_id: &str) -> String {
        format!("{}/{user_id}", self.jid)
    }

    pub(super) fn room_address(&self, room: &str) -> String {
        format!("{room}@{}", self.muc.host())
    }

    /// Feeds the machine one input now, runs its effects and re-arms the timer.
    pub(super) fn apply(&mut self, input: Input, ctx: &mut Context<Self>) -> Result<(), Refusal> {
        let effects = self.machine.on(input, now_ms())?;
        self.run(effects, ctx);
        self.arm(ctx);
        Ok(())
    }

    /// One timer, for the machine's next deadline.
    pub(super) fn arm(&mut self, ctx: &mut Context<Self>) {
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

    pub(super) fn to_visitor(&self, user_id: &str, what: WorkgroupEvent) {
        if let Some(visitor) = self.visitors.get(user_id) {
            let event = Event::new(Payload::Workgroup(what));
            match &visitor.sink {
                Sink::Station(station) => station.do_send(StationEvent { event }),
                Sink::User(username) => self.router.do_send(DeliverToUser { username: username.clone(), event }),
            }
        }
    }

    pub(super) fn to_agent(&self, agent: &str, payload: Payload) {
        self.router.do_send(DeliverToUser { username: agent.to_owned(), event: Event::new(payload) });
    }

    pub(super) fn name(&self) -> String {
        self.record.name.clone()
    }

    pub(super) fn run(&mut self, effects: Vec<Effect>, ctx: &mut Context<Self>) {
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

    pub(super) fn status(&self) -> &'static str {
        if !self.machine.is_open() {
            "closed"
        } else if self.machine.accepting() {
            "open"
        } else {
            "ready"
        }
    }

    /// Every online agent gets the queue's summary.
    pub(super) fn notify_agents(&self) {
        let waiting = self.machine.waiting();
        let summary = Event::new(Payload::Workgroup(WorkgroupEvent::QueueSummary {
            workgroup: self.name(),
            status: self.status().into(),
            user_count: waiting.len(),
            average_wait_secs: self.machine.average_wait_secs(),
            oldest_entry_ms: waiting.first().map(|w| w.joined_ms),
        }));
        for agent in self.machine.agents() {
            self.router.do_send(DeliverToUser { username: agent.name, event: summary.clone() });
        }
    }

    /// An agent accepted `user_id`'s request: a room for the two of them, then invitations.
    pub(super) fn open_chat(
        &mut self,
        agent: String,
        user_id: String,
        metadata: RequestMetadata,
        ctx: &mut Context<Self>,
    ) {
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

    pub(super) fn invite(&mut self, room: &str, agent: &str, user_id: &str, metadata: RequestMetadata) {
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
    pub(super) fn room_ended(&mut self, room: &str, ctx: &mut Context<Self>) {
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
    pub(super) fn settle(&mut self, user_id: &str, ctx: &mut Context<Self>) {
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
    pub(super) fn forget(&mut self, user_id: &str, reason: &str) {
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

    pub(super) fn queue_view(&self) -> QueueView {
        let agents = self.machine.agents();
        QueueView {
            name: self.record.name.clone(),
            jid: self.jid.clone(),
            status: self.status().into(),
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

/// A queue as `GET …/assists/queues` shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct QueueView {
    pub name: String,
    pub jid: String,
    pub status: std::borrow::Cow<'static, str>,
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
            if !self.groups.admits(&self.record.members, &self.record.member_groups, &agent.name) {
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
