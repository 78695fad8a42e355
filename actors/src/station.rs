//! `Station`: one station of a user (a login stream, or a connection's own station), and
//! the fan-out to its live connections.
//!
//! A station is what a full address `user@domain/resource` names. Its connections (SSE
//! streams, websockets) are `Recipient<Push>`s: the station never knows which door a
//! connection belongs to. It is started and ended by the user's [`UserSession`].
//!
//! [`UserSession`]: crate::user_session::UserSession

use std::sync::Arc;

use actix::prelude::*;

use crate::event::{Event, Push};

/// One station and its live connections.
pub struct Station {
    connections: Vec<(u64, Recipient<Push>)>,
}

impl Station {
    pub fn new() -> Self {
        Station { connections: Vec::new() }
    }
}

impl Default for Station {
    fn default() -> Self {
        Self::new()
    }
}

impl Actor for Station {
    type Context = Context<Self>;
}

/// A connection became a live end of this station. Sent by the user session.
#[derive(Message)]
#[rtype(result = "()")]
pub struct AddConnection {
    pub connection_id: u64,
    pub connection: Recipient<Push>,
}

impl Handler<AddConnection> for Station {
    type Result = ();

    fn handle(&mut self, msg: AddConnection, _: &mut Context<Self>) {
        self.connections.push((msg.connection_id, msg.connection));
    }
}

/// A connection closed. Sent by the user session.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RemoveConnection {
    pub connection_id: u64,
}

impl Handler<RemoveConnection> for Station {
    type Result = ();

    fn handle(&mut self, msg: RemoveConnection, _: &mut Context<Self>) {
        self.connections.retain(|(id, _)| *id != msg.connection_id);
    }
}

/// An event for every live connection of the station. Sent by the user session; the same
/// `Arc<Event>` goes to every connection (no per-connection copy).
#[derive(Message)]
#[rtype(result = "()")]
pub struct StationEvent {
    pub event: Arc<Event>,
}

impl Handler<StationEvent> for Station {
    type Result = ();

    fn handle(&mut self, msg: StationEvent, _: &mut Context<Self>) {
        for (_, connection) in &self.connections {
            connection.do_send(Push::Event(msg.event.clone()));
        }
    }
}

/// The station ends (logoff, expiry, kick, account deleted): every connection is told why
/// and closed. Sent by the user session.
#[derive(Message)]
#[rtype(result = "()")]
pub struct EndStation {
    pub reason: String,
}

impl Handler<EndStation> for Station {
    type Result = ();

    fn handle(&mut self, msg: EndStation, ctx: &mut Context<Self>) {
        for (_, connection) in self.connections.drain(..) {
            connection.do_send(Push::Close { reason: msg.reason.clone() });
        }
        ctx.stop();
    }
}
