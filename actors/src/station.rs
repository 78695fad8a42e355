//! `Station`: one station of a user (a login stream, or a connection's own station), and
//! the fan-out to its live connections.
//!
//! A station is what a full address `user@domain/resource` names. Its connections (SSE
//! streams, websockets) are `Recipient<Push>`s: the station never knows which door a
//! connection belongs to. It is started and ended by the user's [`UserSession`], or by
//! a workgroup for a visitor; a visitor's station keeps a bounded backlog of the events
//! sent while no connection is open (a visitor gets its token before it can connect).
//!
//! [`UserSession`]: crate::user_session::UserSession

use std::collections::VecDeque;
use std::sync::Arc;

use actix::prelude::*;

use crate::model::{Event, Push};

/// One station and its live connections.
pub struct Station {
    connections: Vec<(u64, Recipient<Push>)>,
    /// Events kept while no connection is open, with the most kept (oldest dropped).
    backlog: Option<(VecDeque<Arc<Event>>, usize)>,
}

impl Station {
    pub fn new() -> Self {
        Station { connections: Vec::new(), backlog: None }
    }

    /// A station that keeps up to `limit` events while no connection is open and hands
    /// them to the next connection.
    pub fn with_backlog(limit: usize) -> Self {
        Station { connections: Vec::new(), backlog: Some((VecDeque::new(), limit.max(1))) }
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
        if let Some((kept, _)) = &mut self.backlog {
            for event in kept.drain(..) {
                msg.connection.do_send(Push::Event(event));
            }
        }
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
        if self.connections.is_empty() {
            self.keep(msg.event);
            return;
        }
        for (_, connection) in &self.connections {
            connection.do_send(Push::Event(msg.event.clone()));
        }
    }
}

/// Several events for every live connection of the station, in order, as one message per
/// connection. Sent by a room to a newcomer (the occupants already there).
#[derive(Message)]
#[rtype(result = "()")]
pub struct StationEvents {
    pub events: Vec<Arc<Event>>,
}

impl Handler<StationEvents> for Station {
    type Result = ();

    fn handle(&mut self, msg: StationEvents, _: &mut Context<Self>) {
        if self.connections.is_empty() {
            for event in msg.events {
                self.keep(event);
            }
            return;
        }
        for (_, connection) in &self.connections {
            connection.do_send(Push::Events(msg.events.clone()));
        }
    }
}

impl Station {
    /// Keeps an event for the next connection, when this station keeps a backlog.
    fn keep(&mut self, event: Arc<Event>) {
        if let Some((kept, limit)) = &mut self.backlog {
            if kept.len() == *limit {
                kept.pop_front();
            }
            kept.push_back(event);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Payload;
    use crate::test_support::recorder;

    /// Event `n`: a headline whose id is the number.
    fn event(n: u64) -> Arc<Event> {
        Event::new(Payload::Headline { id: n.to_string(), body: String::new(), stamp_ms: 0 })
    }

    fn numbers(inbox: &crate::test_support::Inbox) -> Vec<u64> {
        let number = |e: &Arc<Event>| match &e.payload {
            Payload::Headline { id, .. } => id.parse().ok(),
            _ => None,
        };
        inbox.lock().unwrap().iter().filter_map(number).collect()
    }

    #[actix_rt::test]
    async fn a_batch_reaches_every_connection_in_order_and_waits_in_the_backlog() {
        let station = Station::with_backlog(3).start();
        // No connection yet: the backlog keeps the newest three.
        station.send(StationEvents { events: (1..=4).map(event).collect() }).await.unwrap();
        let (first, first_recipient) = recorder();
        station.send(AddConnection { connection_id: 1, connection: first_recipient }).await.unwrap();
        let (second, second_recipient) = recorder();
        station.send(AddConnection { connection_id: 2, connection: second_recipient }).await.unwrap();
        station.send(StationEvents { events: (5..=7).map(event).collect() }).await.unwrap();
        station.send(StationEvent { event: event(8) }).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert_eq!(numbers(&first), vec![2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(numbers(&second), vec![5, 6, 7, 8]);
    }
}
