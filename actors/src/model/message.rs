//! Messages as the core knows them: accepted at a door ([`NewMessage`]), committed to the
//! store ([`StoredMessage`], [`RoomMessage`]), and the live-only chat states.

use serde_json::Value;

use crate::jid::Jid;

/// The `type` of a message stanza (RFC 6121 §5.2.2).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, Copy, PartialEq, Eq)]
pub enum MessageKind {
    Chat,
    Normal,
    Headline,
    Groupchat,
}

impl MessageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Chat => "chat",
            MessageKind::Normal => "normal",
            MessageKind::Headline => "headline",
            MessageKind::Groupchat => "groupchat",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "chat" => Some(MessageKind::Chat),
            "normal" => Some(MessageKind::Normal),
            "headline" => Some(MessageKind::Headline),
            "groupchat" => Some(MessageKind::Groupchat),
            _ => None,
        }
    }
}

/// A message accepted at a door, before it is stored. `from` is always the authenticated
/// station's full address, stamped by the server (never the client's claim).
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub from: Jid,
    pub to: Jid,
    pub kind: MessageKind,
    pub body: String,
    /// ofchat's `data`: the structured value the client posted with the message, if any.
    pub data: Option<Value>,
    /// The id the client gave the message, echoed in acknowledgements.
    pub client_id: Option<String>,
    /// When it expires (epoch ms): not delivered from the offline store after that.
    pub expires_ms: Option<i64>,
}

/// A message as committed to the store; `id` orders all messages and is the event id.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct StoredMessage {
    pub id: i64,
    pub stamp_ms: i64,
    pub kind: MessageKind,
    pub from_user: String,
    pub from_resource: Option<String>,
    pub to_user: String,
    pub to_resource: Option<String>,
    pub body: String,
    pub data: Option<Value>,
    /// The station the message still waits for (`None`: any station of `to_user`).
    pub deliver_to: Option<String>,
    /// When it expires (epoch ms): not delivered from the offline store after that.
    pub expires_ms: Option<i64>,
}

/// A room message as archived.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct RoomMessage {
    pub id: i64,
    pub room: String,
    pub stamp_ms: i64,
    pub nick: String,
    pub from_user: String,
    pub body: String,
    pub data: Option<Value>,
}

/// A room message before it is archived.
#[derive(Debug, Clone)]
pub struct NewRoomMessage {
    pub room: String,
    pub nick: String,
    pub from_user: String,
    pub body: String,
    pub data: Option<Value>,
}

impl NewRoomMessage {
    /// The message as kept, with the id and stamp it was given.
    pub fn stored(self, id: i64, stamp_ms: i64) -> RoomMessage {
        RoomMessage {
            id,
            room: self.room,
            stamp_ms,
            nick: self.nick,
            from_user: self.from_user,
            body: self.body,
            data: self.data,
        }
    }
}

/// A chat state (XEP-0085): live only, never archived or stored offline.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, Copy, PartialEq, Eq)]
pub enum ChatState {
    Active,
    Composing,
    Paused,
    Inactive,
    Gone,
}

impl ChatState {
    pub const NAMES: &'static str = "active, composing, paused, inactive, gone";

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "active" => Some(ChatState::Active),
            "composing" => Some(ChatState::Composing),
            "paused" => Some(ChatState::Paused),
            "inactive" => Some(ChatState::Inactive),
            "gone" => Some(ChatState::Gone),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ChatState::Active => "active",
            ChatState::Composing => "composing",
            ChatState::Paused => "paused",
            ChatState::Inactive => "inactive",
            ChatState::Gone => "gone",
        }
    }
}
