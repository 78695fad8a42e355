//! What routers of one cluster tell each other ([`Relay`]), and the actor messages between
//! a router and its cluster link ([`ToPeers`], [`AskPeers`], [`FromPeer`]).
//!
//! Every relay is typed; the link (in the server crate) chooses the encoding and the
//! subjects. Relays from one node to another arrive in the order they were sent (one
//! subject per node); a node's heartbeat goes to all nodes at once.

use std::sync::Arc;

use actix::Message;
use serde::{Deserialize, Serialize};

use crate::fastpath::calls::{FastpathAnswer, FastpathCall};
use crate::fastpath::FastpathError;
use crate::model::records::Availability;
use crate::model::records::{AccountKind, Notice, RowChange};
use crate::model::{Event, Payload, StoredMessage};
use crate::muc::calls::{RoomAnswer, RoomCall};
use crate::muc::RoomError;
use crate::presence::PresenceUpdate;

/// A user's stations on one node, as that node tells its peers (no resources: none left).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holding {
    /// The user's stations on that node.
    pub resources: Vec<String>,
    /// Its visible presence there is available to chat (not away, xa or dnd).
    pub available: bool,
    /// The node follows the user's conversations (the Ozeki change feed) without a station.
    pub watched: bool,
}

impl Holding {
    /// The node holds nothing of the user.
    pub fn is_empty(&self) -> bool {
        self.resources.is_empty() && !self.watched
    }
}

/// A presence as it crosses to another node: the payloads of a [`PresenceUpdate`]'s events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RelayedPresence {
    pub from_user: String,
    pub availability: Option<Availability>,
    pub event: Payload,
    pub stations: Vec<Payload>,
    pub news: Vec<Payload>,
}

impl RelayedPresence {
    pub fn of(update: &PresenceUpdate) -> RelayedPresence {
        let payloads = |events: &[Arc<Event>]| events.iter().map(|e| e.payload.clone()).collect();
        RelayedPresence {
            from_user: update.from_user.clone(),
            availability: update.availability.clone(),
            event: update.event.payload.clone(),
            stations: payloads(&update.stations),
            news: payloads(&update.news),
        }
    }

    /// The update again, with events of its own on this node.
    pub fn into_update(self) -> Arc<PresenceUpdate> {
        let events = |payloads: Vec<Payload>| payloads.into_iter().map(Event::new).collect();
        Arc::new(PresenceUpdate {
            from_user: self.from_user,
            availability: self.availability,
            event: Event::new(self.event),
            stations: events(self.stations),
            news: events(self.news),
        })
    }
}

/// One station on a node, for the admin session list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerSession {
    pub username: String,
    pub resource: String,
    pub stream_id: Option<String>,
    pub created_ms: i64,
    pub last_active_ms: i64,
    pub connections: usize,
    pub doors: Vec<String>,
}

/// What one router tells another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Relay {
    /// "I am alive": to every node, every heartbeat (the envelope's start time tells a
    /// restart apart).
    Heartbeat,
    /// The sender's stations of `user` now (an empty holding: none left).
    Holding {
        user: String,
        holding: Holding,
    },
    /// Part of everything the sender holds, for a node that just appeared; `first` replaces
    /// what the receiver knew of the sender. `want_yours`: answer with your own. `resync`:
    /// the sender was out of reach, so relays to you may be lost: read again what waits for
    /// your users.
    Snapshot {
        users: Vec<(String, Holding)>,
        first: bool,
        want_yours: bool,
        resync: bool,
    },
    /// A committed 1:1 message: deliver it to your stations of its recipient, and copies to
    /// your stations of its sender.
    Committed {
        message: StoredMessage,
    },
    /// A live-only event for your stations of `user` (all of them when `resource` is none or
    /// not yours).
    Live {
        user: String,
        resource: Option<String>,
        payload: Payload,
    },
    /// A live-only event for every user you hold (an admin headline).
    LiveToAll {
        payload: Payload,
    },
    /// A presence for these users of yours (to `resource` of each, when given: a probe's
    /// answer).
    Presence {
        update: RelayedPresence,
        to: Vec<String>,
        resource: Option<String>,
    },
    /// `requester` (held by the sender) asks the presence of these contacts of yours.
    Probe {
        requester: String,
        resource: Option<String>,
        contacts: Vec<String>,
    },
    /// A subscription notice for your stations of `notice.to`.
    Notice {
        notice: Notice,
    },
    /// A committed roster row for your stations of `change.owner`.
    RosterChanged {
        change: RowChange,
    },
    /// These users' rosters changed outside a pair (a shared group): reload them.
    RostersStale {
        usernames: Vec<String>,
    },
    /// End every station of `username`.
    Kick {
        username: String,
        reason: String,
    },
    /// The accounts changed (committed by the sender).
    AccountAdded {
        username: String,
        kind: AccountKind,
    },
    AccountRemoved {
        username: String,
    },
    AppKnown {
        username: String,
        app_id: Option<String>,
    },
    Block {
        blocker: String,
        blocked: String,
        on: bool,
    },
    /// Ask: your stations. Answered with `Sessions`.
    ListSessions,
    Sessions {
        sessions: Vec<PeerSession>,
    },
    /// A call to `room`, owned by the receiver, from a node standing in for it. Answered
    /// with `RoomAnswer` when asked.
    RoomCall {
        room: String,
        call: RoomCall,
    },
    RoomAnswer {
        answer: Result<RoomAnswer, RoomError>,
    },
    /// Events of `room`, owned by the sender, for these stations (user, resource) of the
    /// receiver: one relay per node per event, however many occupants it has there.
    RoomEvents {
        room: String,
        events: Vec<Payload>,
        to: Vec<(String, String)>,
    },
    /// The sender owns a new stored room.
    RoomKnown {
        room: String,
    },
    /// The room ended on the sender, its owner.
    RoomGone {
        room: String,
    },
    /// A call to the registry of the receiver, which serves Fastpath. Answered with
    /// `FastpathAnswer`.
    FastpathCall {
        call: FastpathCall,
    },
    FastpathAnswer {
        answer: Result<FastpathAnswer, FastpathError>,
    },
    /// What a visitor's station on the sender pushed, for the receiver's connection `stream`
    /// (`close`: the station ended, saying why).
    FastpathPush {
        stream: u64,
        events: Vec<Payload>,
        close: Option<String>,
    },
}

impl Relay {
    /// Whether the Fastpath registry (rather than the router) takes this relay.
    pub fn is_for_fastpath(&self) -> bool {
        matches!(self, Relay::FastpathCall { .. } | Relay::FastpathPush { .. })
    }

    /// Whether the rooms' registry (rather than the router) takes this relay.
    pub fn is_for_rooms(&self) -> bool {
        matches!(
            self,
            Relay::RoomCall { .. } | Relay::RoomEvents { .. } | Relay::RoomKnown { .. } | Relay::RoomGone { .. }
        )
    }
}

/// Which nodes a relay is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Targets {
    /// These peers, each on its own subject.
    Nodes(Vec<String>),
    /// Every node at once (heartbeats): the shared subject.
    Everyone,
}

/// Send a relay to peers. Sent by the router to its cluster link.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct ToPeers {
    pub targets: Targets,
    pub relay: Arc<Relay>,
}

/// Ask peers and wait (at most the link's timeout) for their answers, by node. Sent by the
/// router to its cluster link; a peer that does not answer in time is left out.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Vec<(String, Relay)>")]
pub struct AskPeers {
    pub nodes: Vec<String>,
    pub relay: Relay,
}

/// A relay from a peer. Sent by the cluster link to the router, in the order the peer sent
/// them; the answer (to an ask) goes back to the asker.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Option<Relay>")]
pub struct FromPeer {
    pub node: String,
    /// The peer's start time (epoch ms): a new one means the peer restarted.
    pub started_ms: i64,
    pub relay: Relay,
}
