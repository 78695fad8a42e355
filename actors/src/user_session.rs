//! `UserSession`: one actor per online user (a user with at least one station).
//!
//! It owns the user's stations and decides where each message goes: a message to the bare
//! address reaches every live station, one to a full address that one station. What no
//! live station takes stays pending in the store. When a station comes alive, the session
//! flushes the pending messages first, in id order, and holds back messages that commit
//! meanwhile so that order is kept (DESIGN.md §5, offline delivery). The router starts it,
//! tells it about stations and connections, and stops it when the last station ends.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use actix::prelude::*;

use crate::event::{Event, StoredMessage};
use crate::station::{AddConnection, EndStation, RemoveConnection, Station, StationEvent};
use crate::store::Store;

/// One online user.
pub struct UserSession {
    username: String,
    domain: String,
    store: Store,
    stations: HashMap<String, StationSlot>,
    flush: FlushState,
}

struct StationSlot {
    addr: Addr<Station>,
    connections: usize,
}

/// The offline flush: `Running` while pending messages are being read from the store.
enum FlushState {
    Idle,
    Running {
        /// Messages committed while the flush reads; delivered after it, in order.
        held_back: Vec<Arc<StoredMessage>>,
        /// Another station came alive meanwhile: flush again when this one is done.
        again: bool,
    },
}

impl UserSession {
    pub fn new(username: String, domain: String, store: Store) -> Self {
        UserSession { username, domain, store, stations: HashMap::new(), flush: FlushState::Idle }
    }

    fn live_stations(&self) -> impl Iterator<Item = (&String, &StationSlot)> {
        self.stations.iter().filter(|(_, slot)| slot.connections > 0)
    }

    /// Pushes a stored message to the stations it is for; true if any live station took it.
    fn push_message(&self, message: &StoredMessage, event: &Arc<Event>) -> bool {
        let mut delivered = false;
        match &message.deliver_to {
            Some(resource) => {
                if let Some(slot) = self.stations.get(resource).filter(|s| s.connections > 0) {
                    slot.addr.do_send(StationEvent { event: event.clone() });
                    delivered = true;
                }
            }
            None => {
                for (_, slot) in self.live_stations() {
                    slot.addr.do_send(StationEvent { event: event.clone() });
                    delivered = true;
                }
            }
        }
        delivered
    }

    fn mark_delivered(&self, ids: Vec<i64>, ctx: &mut Context<Self>) {
        if ids.is_empty() {
            return;
        }
        let username = self.username.clone();
        self.store
            .mark_delivered(ids)
            .into_actor(self)
            .map(move |result, _, _| {
                if let Err(e) = result {
                    tracing::warn!(%username, error = %e, "could not mark messages delivered; they will be delivered again");
                }
            })
            .spawn(ctx);
    }

    fn start_flush(&mut self, ctx: &mut Context<Self>) {
        if let FlushState::Running { again, .. } = &mut self.flush {
            *again = true;
            return;
        }
        self.flush = FlushState::Running { held_back: Vec::new(), again: false };
        self.store
            .pending_for(self.username.clone())
            .into_actor(self)
            .map(|result, act, ctx| {
                let pending = result.unwrap_or_else(|e| {
                    tracing::warn!(user = %act.username, error = %e, "could not read pending messages");
                    Vec::new()
                });
                let FlushState::Running { held_back, again } = std::mem::replace(&mut act.flush, FlushState::Idle)
                else {
                    return;
                };
                let mut flushed = HashSet::with_capacity(pending.len());
                let mut delivered = Vec::new();
                for message in pending {
                    flushed.insert(message.id);
                    if act.push_message(&message, &Event::chat(&message, &act.domain)) {
                        delivered.push(message.id);
                    }
                }
                for message in held_back.into_iter().filter(|m| !flushed.contains(&m.id)) {
                    if act.push_message(&message, &Event::chat(&message, &act.domain)) {
                        delivered.push(message.id);
                    }
                }
                act.mark_delivered(delivered, ctx);
                if again {
                    act.start_flush(ctx);
                }
            })
            .spawn(ctx);
    }
}

impl Actor for UserSession {
    type Context = Context<Self>;
}

/// A new station for this user. Sent by the router (login, or a connection without one).
#[derive(Message)]
#[rtype(result = "()")]
pub struct OpenStation {
    pub resource: String,
}

impl Handler<OpenStation> for UserSession {
    type Result = ();

    fn handle(&mut self, msg: OpenStation, _: &mut Context<Self>) {
        let addr = Station::new().start();
        self.stations.insert(msg.resource, StationSlot { addr, connections: 0 });
    }
}

/// A connection attaches to one of the user's stations. Sent by the router.
#[derive(Message)]
#[rtype(result = "()")]
pub struct AttachConnection {
    pub resource: String,
    pub connection_id: u64,
    pub connection: Recipient<crate::event::Push>,
}

impl Handler<AttachConnection> for UserSession {
    type Result = ();

    fn handle(&mut self, msg: AttachConnection, ctx: &mut Context<Self>) {
        let Some(slot) = self.stations.get_mut(&msg.resource) else {
            msg.connection.do_send(crate::event::Push::Close { reason: "the stream has ended".into() });
            return;
        };
        slot.addr.do_send(AddConnection { connection_id: msg.connection_id, connection: msg.connection });
        slot.connections += 1;
        if slot.connections == 1 {
            // The station just came alive: what waited for it goes out first.
            self.start_flush(ctx);
        }
    }
}

/// A connection closed. Sent by the router.
#[derive(Message)]
#[rtype(result = "()")]
pub struct DetachConnection {
    pub resource: String,
    pub connection_id: u64,
}

impl Handler<DetachConnection> for UserSession {
    type Result = ();

    fn handle(&mut self, msg: DetachConnection, _: &mut Context<Self>) {
        if let Some(slot) = self.stations.get_mut(&msg.resource) {
            slot.addr.do_send(RemoveConnection { connection_id: msg.connection_id });
            slot.connections = slot.connections.saturating_sub(1);
        }
    }
}

/// A committed 1:1 message for this user. Sent by the router, in commit order.
#[derive(Message)]
#[rtype(result = "()")]
pub struct DeliverMessage {
    pub message: Arc<StoredMessage>,
}

impl Handler<DeliverMessage> for UserSession {
    type Result = ();

    fn handle(&mut self, msg: DeliverMessage, ctx: &mut Context<Self>) {
        if let FlushState::Running { held_back, .. } = &mut self.flush {
            held_back.push(msg.message);
            return;
        }
        let event = Event::chat(&msg.message, &self.domain);
        if self.push_message(&msg.message, &event) {
            self.mark_delivered(vec![msg.message.id], ctx);
        }
    }
}

/// An event for live stations only, never stored (headlines, chat states): to every live
/// station, or to one (`resource`). Sent by the router.
#[derive(Message)]
#[rtype(result = "()")]
pub struct DeliverLive {
    pub event: Arc<Event>,
    pub resource: Option<String>,
}

impl Handler<DeliverLive> for UserSession {
    type Result = ();

    fn handle(&mut self, msg: DeliverLive, _: &mut Context<Self>) {
        for (resource, slot) in self.live_stations() {
            if msg.resource.as_ref().is_none_or(|only| only == resource) {
                slot.addr.do_send(StationEvent { event: msg.event.clone() });
            }
        }
    }
}

/// End one station (logoff, expiry, kick). Sent by the router, which already forgot it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CloseStation {
    pub resource: String,
    pub reason: String,
}

impl Handler<CloseStation> for UserSession {
    type Result = ();

    fn handle(&mut self, msg: CloseStation, ctx: &mut Context<Self>) {
        let Some(slot) = self.stations.remove(&msg.resource) else {
            return;
        };
        slot.addr.do_send(EndStation { reason: msg.reason });
        // What waited for this station now waits for any; a live one gets it at once.
        self.store
            .retarget_pending(self.username.clone(), msg.resource)
            .into_actor(self)
            .map(|_, act, ctx| {
                if act.live_stations().next().is_some() {
                    act.start_flush(ctx);
                }
            })
            .spawn(ctx);
    }
}

/// The user has no station left. Sent by the router after the last `CloseStation`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Shutdown;

impl Handler<Shutdown> for UserSession {
    type Result = ();

    fn handle(&mut self, _: Shutdown, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}
