//! What travels to stations and connections: typed events, never wire text.
//!
//! An [`Event`] is one [`Payload`] (a message, a presence, a room or workgroup event…) wrapped
//! in an `Arc` and shared by every station and connection that receives it (DESIGN.md §3,
//! §7). Each door renders the payload in its own format (ofchat JSON for SSE and `/ws`, XMPP
//! stanzas, …) and keeps the result in the event's cache slot for that door, so a room message
//! to a thousand connections of one door is rendered once.

use std::sync::{Arc, OnceLock};

use actix::Message;
use bytestring::ByteString;

use super::address::Address;
use super::message::{ChatState, RoomMessage, StoredMessage};
use super::records::{
    Affiliation, Availability, DepartReason, NoticeKind, RequestMetadata, RevokeReason, Role, RosterItem,
};

/// A stanza error condition (RFC 6120 §8.3.3) that a refusal carries to the sender.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, Copy, PartialEq, Eq)]
pub enum Condition {
    BadRequest,
    Conflict,
    Forbidden,
    ItemNotFound,
    JidMalformed,
    NotAcceptable,
    NotAllowed,
    NotAuthorized,
    PolicyViolation,
    RegistrationRequired,
    ResourceConstraint,
    ServiceUnavailable,
    InternalServerError,
}

impl Condition {
    /// The condition's element name.
    pub fn as_str(self) -> &'static str {
        match self {
            Condition::BadRequest => "bad-request",
            Condition::Conflict => "conflict",
            Condition::Forbidden => "forbidden",
            Condition::ItemNotFound => "item-not-found",
            Condition::JidMalformed => "jid-malformed",
            Condition::NotAcceptable => "not-acceptable",
            Condition::NotAllowed => "not-allowed",
            Condition::NotAuthorized => "not-authorized",
            Condition::PolicyViolation => "policy-violation",
            Condition::RegistrationRequired => "registration-required",
            Condition::ResourceConstraint => "resource-constraint",
            Condition::ServiceUnavailable => "service-unavailable",
            Condition::InternalServerError => "internal-server-error",
        }
    }

    /// The error type a refusal with this condition carries (RFC 6120 §8.3.2): whether to
    /// retry after changing the data (`modify`), after authenticating (`auth`), later
    /// (`wait`), or not at all (`cancel`).
    pub fn error_type(self) -> &'static str {
        match self {
            Condition::BadRequest | Condition::JidMalformed | Condition::PolicyViolation => "modify",
            Condition::Forbidden | Condition::NotAuthorized | Condition::RegistrationRequired => "auth",
            Condition::ResourceConstraint | Condition::InternalServerError | Condition::ServiceUnavailable => "wait",
            Condition::Conflict | Condition::ItemNotFound | Condition::NotAllowed | Condition::NotAcceptable => {
                "cancel"
            }
        }
    }
}

/// An occupant's presence in a room (XEP-0045 §7.2).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct OccupantPresence {
    pub room: String,
    pub nick: String,
    /// The occupant's real user and station: who it is, whether or not others may see it.
    pub user: String,
    pub resource: String,
    /// Others may see `user` (the room's `canAnyoneDiscoverJID`).
    pub jid_visible: bool,
    pub available: bool,
    pub role: Role,
    pub affiliation: Option<Affiliation>,
    /// Why the room removed the occupant (XEP-0045 §8.2 status 307), on an unavailable one.
    pub reason: Option<String>,
    /// The occupant's new nick, on the unavailable presence of a nick change (XEP-0045 §7.6,
    /// status 303).
    pub new_nick: Option<String>,
}

/// An invitation into a room (XEP-0045 §7.8.2).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct Invitation {
    pub room: String,
    pub inviter: Address,
    pub invitee: String,
    pub reason: String,
    pub password: Option<String>,
    /// Set when a workgroup invites its agent to meet a visitor.
    pub workgroup: Option<WorkgroupInvitation>,
}

/// The workgroup side of an agent's invitation: which request it answers.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct WorkgroupInvitation {
    pub workgroup: String,
    pub user_id: String,
    pub metadata: RequestMetadata,
}

/// What a workgroup tells its agents and visitors (Fastpath).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub enum WorkgroupEvent {
    /// To an agent: a visitor's request is offered.
    Offer { workgroup: String, offer_id: String, user_id: String, metadata: RequestMetadata, timeout_secs: i64 },
    /// To an agent: the offer is taken back.
    OfferRevoked { workgroup: String, offer_id: String, user_id: String, reason: RevokeReason },
    /// To a visitor: its place in the queue and the estimated wait.
    QueueStatus { workgroup: String, user_id: String, position: usize, remaining_secs: i64 },
    /// To a visitor: it left the queue without a chat.
    Departed { workgroup: String, user_id: String, reason: DepartReason },
    /// To a visitor: an agent accepted; the room to join.
    ChatOffered { workgroup: String, user_id: String, room: String, agent: String },
    /// To a visitor: the chat's room ended.
    ChatEnded { workgroup: String, user_id: String, room: String },
    /// To agents: the queue's summary.
    QueueSummary {
        workgroup: String,
        status: std::borrow::Cow<'static, str>,
        user_count: usize,
        average_wait_secs: i64,
        oldest_entry_ms: Option<i64>,
    },
}

/// Which way the message of a [`Payload::Copy`] went.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, Copy, PartialEq, Eq)]
pub enum CopyDirection {
    /// The user sent it, from another station.
    Sent,
    /// It came to another of the user's stations.
    Received,
}

/// The typed content of an event.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub enum Payload {
    /// A stored 1:1 message; `delayed` when it is delivered late, from the offline store or a
    /// replay (XEP-0203).
    Message { message: Arc<StoredMessage>, delayed: bool },
    /// A copy of one of the user's own 1:1 messages for its other stations (XEP-0280), live
    /// only: one it sent from another station, or one delivered by full address to another
    /// of its stations. Doors that keep a user's devices in step show it; others skip it.
    Copy { message: Arc<StoredMessage>, direction: CopyDirection },
    /// A server headline (an admin broadcast): live only, never stored.
    Headline { id: String, body: String, stamp_ms: i64 },
    /// A chat state (XEP-0085): live only.
    ChatState { id: String, from: Address, to: Address, state: ChatState },
    /// `from` has seen (read) these messages of its conversation with `to`, the last one
    /// newest (XEP-0333 `displayed`): live only.
    Displayed { id: String, from: Address, to: Address, message_ids: Vec<String> },
    /// A stanza refused, back to its sender (RFC 6120 §8.3).
    StanzaError { id: String, from: Address, to: Address, condition: Condition, text: String },
    /// A user's visible presence (`None`: unavailable), broadcast to whoever holds the event.
    Presence { from: String, availability: Option<Availability> },
    /// One station's own presence (RFC 6121 §4.4: XMPP clients see each available resource
    /// of a contact; `None`: that station became unavailable). The JSON doors show only the
    /// user's visible [`Payload::Presence`].
    StationPresence { from: String, resource: String, availability: Option<Availability>, priority: i8 },
    /// A subscription request or answer (RFC 6121 §3).
    Subscription { kind: NoticeKind, from: String, to: String },
    /// A roster push (RFC 6121 §2.1.6): the contact's item, or `None` when it was removed.
    RosterPush { push_id: u64, contact: String, item: Option<RosterItem> },
    /// The user's blocklist changed (XEP-0191 §3.3, §3.4): `user` was blocked (`on`) or
    /// unblocked, from any door. To every live station of the blocker, so its other devices
    /// follow; live only.
    BlocklistPush { user: String, on: bool },
    /// An occupant entered, changed or left a room.
    Occupant(OccupantPresence),
    /// A room message; `delayed` when it comes as history.
    RoomMessage { message: Arc<RoomMessage>, delayed: bool },
    /// An invitation into a room.
    Invitation(Invitation),
    /// The room was destroyed (XEP-0045 §10.9).
    RoomDestroyed { room: String, reason: String },
    /// A private message from one occupant of `room` to another (XEP-0045 §7.5): live only,
    /// to the recipient's station `to`.
    RoomPrivate { id: String, room: String, from_nick: String, to: Address, body: String, stamp_ms: i64 },
    /// A Fastpath event.
    Workgroup(WorkgroupEvent),
    /// A reply a door built for one of its own stations (an XMPP IQ result to a raw POST),
    /// carried through the core untouched and unread.
    DoorReply(Arc<str>),
}

/// The doors' cache slots: each door renders an event at most once into its slot.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, Copy, PartialEq, Eq)]
pub enum RenderSlot {
    /// The event's JSON object alone (shared by the JSON doors).
    Json = 0,
    /// The SSE frame.
    Sse = 1,
    /// The `/ws` text frame.
    JsonWebsocket = 2,
    /// The XMPP stanza.
    Xmpp = 3,
    /// Spare slots for further doors.
    Other1 = 4,
    Other2 = 5,
}

const SLOTS: usize = 6;

/// One event: its payload and the doors' renderings of it.
#[derive(Debug)]
pub struct Event {
    pub payload: Payload,
    /// The renderings, by slot; allocated when the first door renders the event, so an
    /// event that is only held (a station's presence, kept for contacts who come online)
    /// costs its payload and a word.
    rendered: OnceLock<Box<Renderings>>,
}

type Renderings = [OnceLock<Option<ByteString>>; SLOTS];

impl Event {
    pub fn new(payload: Payload) -> Arc<Event> {
        Arc::new(Event { payload, rendered: OnceLock::new() })
    }

    /// The stored message id, for events that are stored 1:1 messages: SSE `id:` lines,
    /// `Last-Event-ID` replay and per-connection de-duplication use it.
    pub fn seq(&self) -> Option<i64> {
        match &self.payload {
            Payload::Message { message, .. } => Some(message.id),
            _ => None,
        }
    }

    /// This event in a door's format: rendered by `render` the first time the door asks,
    /// and shared by every later caller (`None`: the event has no form on that door).
    pub fn rendered(&self, slot: RenderSlot, render: impl FnOnce(&Event) -> Option<ByteString>) -> Option<ByteString> {
        let renderings = self.rendered.get_or_init(Box::default);
        renderings[slot as usize].get_or_init(|| render(self)).clone()
    }

    /// Whether a connection that has written stored messages up to `highest_seq` should
    /// write this event (events that are not stored messages always); advances the mark.
    /// A message reaching a connection twice (replay and live) is written once.
    pub fn first_time(&self, highest_seq: &mut i64) -> bool {
        match self.seq() {
            Some(seq) if seq <= *highest_seq => false,
            Some(seq) => {
                *highest_seq = seq;
                true
            }
            None => true,
        }
    }

    /// A stored 1:1 message delivered live.
    pub fn message(message: Arc<StoredMessage>) -> Arc<Event> {
        Event::new(Payload::Message { message, delayed: false })
    }

    /// A stored 1:1 message delivered late, carrying its original stamp as a delay.
    pub fn delayed_message(message: Arc<StoredMessage>) -> Arc<Event> {
        Event::new(Payload::Message { message, delayed: true })
    }
}

/// What a station pushes to each of its live connections.
#[derive(Message, Clone, Debug)]
#[rtype(result = "()")]
pub enum Push {
    /// An event to write to the client.
    Event(Arc<Event>),
    /// Several events to write in this order, in one message (a room's occupants, for a
    /// newcomer).
    Events(Vec<Arc<Event>>),
    /// The station ended (logoff, kick, expiry): say why and close.
    Close { reason: String },
}

impl Push {
    /// The events this push carries, in order (none for `Close`).
    pub fn events(&self) -> &[Arc<Event>] {
        match self {
            Push::Event(event) => std::slice::from_ref(event),
            Push::Events(events) => events,
            Push::Close { .. } => &[],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::message::MessageKind;

    fn stored(id: i64) -> Arc<StoredMessage> {
        Arc::new(StoredMessage {
            id,
            stamp_ms: 0,
            kind: MessageKind::Chat,
            from_user: "ann".into(),
            from_resource: None,
            to_user: "bob".into(),
            to_resource: None,
            body: "hi".into(),
            data: None,
            deliver_to: None,
            expires_ms: None,
        })
    }

    #[test]
    fn a_door_renders_an_event_once_and_every_holder_shares_it() {
        let event = Event::message(stored(3));
        let mut calls = 0;
        for _ in 0..1000 {
            let frame = event.rendered(RenderSlot::Sse, |_| {
                calls += 1;
                Some(ByteString::from_static("frame"))
            });
            assert_eq!(frame.as_deref(), Some("frame"));
        }
        assert_eq!(calls, 1);
        // Another door's slot is its own.
        assert_eq!(event.rendered(RenderSlot::Xmpp, |_| None), None);
        assert_eq!(event.rendered(RenderSlot::Xmpp, |_| Some(ByteString::from_static("late"))), None);
    }

    #[test]
    fn a_stored_message_is_written_once_per_connection() {
        let mut highest = 0;
        assert!(Event::message(stored(5)).first_time(&mut highest));
        assert!(!Event::delayed_message(stored(5)).first_time(&mut highest));
        assert!(!Event::message(stored(4)).first_time(&mut highest));
        let headline = Event::new(Payload::Headline { id: "h".into(), body: "b".into(), stamp_ms: 0 });
        assert!(headline.first_time(&mut highest));
        assert!(headline.first_time(&mut highest));
        assert_eq!(highest, 5);
    }
}
