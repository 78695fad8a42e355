//! What visitors ask of a workgroup: joining the queue (`Enqueue`), their requests with a
//! checked token (`ForVisitor`: status, attach and detach a connection, post into the chat,
//! depart), and being forgotten (`ForgetVisitor`). Sent by the registry.

use actix::prelude::*;

use super::machine::{Input, Refusal, RequestMetadata, Waiting};
use super::workgroup::{visitor_key, Sink, Stage, Visitor, Workgroup};
use super::FastpathError;
use crate::model::Push;
use crate::muc::conference::{FindRoom, JoinRoom};
use crate::muc::room::{Join, Post, Seat};
use crate::station::{AddConnection, EndStation, RemoveConnection, Station};

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
        let metadata: RequestMetadata =
            [("question", &msg.question), ("email", &msg.email), ("username", &msg.nickname)]
                .into_iter()
                .map(|(field, value)| (field.to_owned(), value.clone()))
                .collect();
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
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
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

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
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
                        seat: Seat::Here(station),
                        rejoin: false,
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
