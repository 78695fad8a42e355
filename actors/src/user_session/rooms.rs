//! A user's stations in rooms: entering and leaving from one station. The session remembers
//! each station's rooms so that a station that ends leaves them.

use actix::prelude::*;

use super::UserSession;
use crate::muc::conference::{FindRoom, JoinRoom, StationLeft};
use crate::muc::room::{Joined, Leave};
use crate::muc::RoomError;

/// Enter a room from one of the user's stations. Sent by the doors, with the session's address from the stream.
#[derive(Message)]
#[rtype(result = "Result<Joined, RoomError>")]
pub struct EnterRoom {
    pub resource: String,
    pub room: String,
    pub nick: String,
    pub password: Option<String>,
}

impl Handler<EnterRoom> for UserSession {
    type Result = ResponseActFuture<Self, Result<Joined, RoomError>>;

    fn handle(&mut self, msg: EnterRoom, _: &mut Context<Self>) -> Self::Result {
        let Some(slot) = self.stations.get(&msg.resource) else {
            return Box::pin(fut::ready(Err(RoomError::BadRequest("the station has ended".into()))));
        };
        let join = JoinRoom::new(
            msg.room.clone(),
            self.username.clone(),
            msg.resource.clone(),
            msg.nick,
            msg.password,
            slot.addr.clone(),
        );
        Box::pin(self.conference.send(join).into_actor(self).map(move |result, act, _| {
            let joined = result.map_err(|_| RoomError::NotFound(msg.room.clone()))??;
            match act.stations.get_mut(&msg.resource) {
                Some(slot) => {
                    slot.rooms.insert(msg.room);
                }
                // The station ended while joining: leave again.
                None => act.conference.do_send(StationLeft {
                    room: msg.room,
                    username: act.username.clone(),
                    resource: msg.resource,
                }),
            }
            Ok(joined)
        }))
    }
}

/// Leave a room from one of the user's stations. Sent by the doors, with the session's address from the stream.
#[derive(Message)]
#[rtype(result = "Result<(), RoomError>")]
pub struct ExitRoom {
    pub resource: String,
    pub room: String,
}

impl Handler<ExitRoom> for UserSession {
    type Result = ResponseActFuture<Self, Result<(), RoomError>>;

    fn handle(&mut self, msg: ExitRoom, _: &mut Context<Self>) -> Self::Result {
        if let Some(slot) = self.stations.get_mut(&msg.resource) {
            slot.rooms.remove(&msg.room);
        }
        let name = msg.room.clone();
        let leave = Leave { username: self.username.clone(), resource: msg.resource };
        let found = self.conference.send(FindRoom { name: msg.room });
        Box::pin(
            async move {
                let room = found.await.ok().flatten().ok_or_else(|| RoomError::NotFound(name.clone()))?;
                room.send(leave).await.map_err(|_| RoomError::NotFound(name))?
            }
            .into_actor(self),
        )
    }
}
