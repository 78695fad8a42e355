//! The one model of what travels, and its renderings.
//!
//! A message enters through any door as a [`NewMessage`], is stored as a [`StoredMessage`],
//! and leaves through every door as an [`Event`]: rendered **once**, wrapped in an `Arc`, and
//! shared by every station and connection that receives it (DESIGN.md §3, §7). Event names
//! and JSON keys are ofchat's (`specs/openfire.md` §3), but the JSON is built by serde and so
//! is always valid and escaped.

use std::sync::Arc;

use actix::Message;
use bytes::Bytes;
use bytestring::ByteString;
use serde::Serialize;
use serde_json::{json, Value};

use crate::clock::{format_stamp, Stamp};
use crate::jid::Jid;

/// The `type` of a message stanza (RFC 6121 §5.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    /// ofchat's `data`: the whole JSON object the client posted, when it posted JSON.
    pub data: Option<Value>,
    /// The id the client gave the message, echoed in acknowledgements.
    pub client_id: Option<String>,
}

/// A message as committed to the store; `id` orders all messages and is the event id.
#[derive(Debug, Clone, PartialEq)]
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
}

impl StoredMessage {
    pub fn from_address(&self, domain: &str) -> String {
        address(&self.from_user, self.from_resource.as_deref(), domain)
    }

    pub fn to_address(&self, domain: &str) -> String {
        address(&self.to_user, self.to_resource.as_deref(), domain)
    }

    /// The JSON object the history API and the events share.
    pub fn to_json(&self, domain: &str) -> Value {
        serde_json::to_value(self.json_view(domain, false)).unwrap_or(Value::Null)
    }

    /// The message's JSON shape, borrowed; `delayed` adds `"delay"` (XEP-0203).
    fn json_view<'a>(&'a self, domain: &'a str, delayed: bool) -> MessageJson<'a> {
        MessageJson {
            id: self.id,
            kind: self.kind.as_str(),
            from: Address { user: &self.from_user, resource: self.from_resource.as_deref(), domain },
            to: Address { user: &self.to_user, resource: self.to_resource.as_deref(), domain },
            body: &self.body,
            data: self.data.as_ref(),
            stamp: Stamp(self.stamp_ms),
            delay: delayed.then_some(Stamp(self.stamp_ms)),
        }
    }
}

/// A stored message's JSON keys, in one place (ofchat's names).
#[derive(Serialize)]
struct MessageJson<'a> {
    #[serde(serialize_with = "as_decimal_string")]
    id: i64,
    #[serde(rename = "type")]
    kind: &'static str,
    from: Address<'a>,
    to: Address<'a>,
    body: &'a str,
    data: Option<&'a Value>,
    stamp: Stamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    delay: Option<Stamp>,
}

fn as_decimal_string<S: serde::Serializer>(id: &i64, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(id)
}

/// `user@domain` or `user@domain/resource`, written straight into the JSON.
struct Address<'a> {
    user: &'a str,
    resource: Option<&'a str>,
    domain: &'a str,
}

impl std::fmt::Display for Address<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.user)?;
        f.write_str("@")?;
        f.write_str(self.domain)?;
        if let Some(resource) = self.resource {
            f.write_str("/")?;
            f.write_str(resource)?;
        }
        Ok(())
    }
}

impl Serialize for Address<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

fn address(user: &str, resource: Option<&str>, domain: &str) -> String {
    Address { user, resource, domain }.to_string()
}

/// One event, rendered once for every door: the SSE frame and the `/ws` text frame.
#[derive(Debug)]
pub struct Event {
    /// ofchat event name, e.g. `chatapi.chat`.
    pub name: &'static str,
    /// The stored message id, for events that are stored messages: SSE `id:` lines,
    /// `Last-Event-ID` replay and per-connection de-duplication use it.
    pub seq: Option<i64>,
    /// The JSON object alone (what SSE carries in `data:`).
    pub json: Arc<str>,
    /// `id: …\nevent: …\ndata: …\n\n`.
    pub sse_frame: Bytes,
    /// The JSON object with an extra `"event"` key, for `/ws`.
    pub ws_frame: ByteString,
    /// The XMPP stanza, rendered by the first XMPP connection that receives the event and
    /// shared by the rest (`None`: the event has no XMPP form).
    pub xmpp_frame: std::sync::OnceLock<Option<ByteString>>,
}

impl Event {
    /// Renders an event from its name and JSON object.
    pub fn render(name: &'static str, seq: Option<i64>, object: Value) -> Arc<Event> {
        Event::from_object(name, seq, &object)
    }

    /// Renders an event from its name and anything that serializes as a JSON object: the
    /// object is serialized once, and the SSE and `/ws` frames are built from that text.
    fn from_object(name: &'static str, seq: Option<i64>, object: &impl Serialize) -> Arc<Event> {
        let json = serde_json::to_string(object).unwrap_or_else(|e| {
            tracing::error!(event = name, error = %e, "an event did not serialize; sending it empty");
            "{}".to_owned()
        });
        let mut sse = String::with_capacity(json.len() + name.len() + 40);
        if let Some(seq) = seq {
            sse.push_str("id: ");
            sse.push_str(&seq.to_string());
            sse.push('\n');
        }
        sse.push_str("event: ");
        sse.push_str(name);
        sse.push_str("\ndata: ");
        sse.push_str(&json);
        sse.push_str("\n\n");
        Arc::new(Event {
            name,
            seq,
            ws_frame: ByteString::from(with_event_key(name, &json)),
            json: Arc::from(json),
            sse_frame: Bytes::from(sse),
            xmpp_frame: std::sync::OnceLock::new(),
        })
    }

    /// Whether a connection that has written stored messages up to `highest_seq` should
    /// write this event (events that are not stored messages always); advances the mark.
    /// A message reaching a connection twice (replay and live) is written once.
    pub fn first_time(&self, highest_seq: &mut i64) -> bool {
        match self.seq {
            Some(seq) if seq <= *highest_seq => false,
            Some(seq) => {
                *highest_seq = seq;
                true
            }
            None => true,
        }
    }

    /// A stored 1:1 message as `chatapi.chat`.
    pub fn chat(message: &StoredMessage, domain: &str) -> Arc<Event> {
        Event::from_object("chatapi.chat", Some(message.id), &message.json_view(domain, false))
    }

    /// A stored 1:1 message delivered late (from the offline store, or replayed): the event
    /// carries `"delay"`, the original stamp (XEP-0203).
    pub fn chat_delayed(message: &StoredMessage, domain: &str) -> Arc<Event> {
        Event::from_object("chatapi.chat", Some(message.id), &message.json_view(domain, true))
    }

    /// A server headline (admin broadcast): a `chatapi.chat` event with `"type":"headline"`
    /// (ofchat sends any message with a body as `chatapi.chat`); live only, never stored.
    pub fn headline(id: String, from: &str, body: &str, stamp_ms: i64) -> Arc<Event> {
        Event::render(
            "chatapi.chat",
            None,
            json!({
                "id": id,
                "type": "headline",
                "from": from,
                "to": Value::Null,
                "body": body,
                "data": Value::Null,
                "stamp": format_stamp(stamp_ms),
            }),
        )
    }
}

/// The `/ws` form of an event: its JSON object with `"event":"<name>"` as the first key.
fn with_event_key(name: &str, json: &str) -> String {
    let Some(rest) = json.strip_prefix('{') else {
        return json.to_owned();
    };
    let mut framed = String::with_capacity(json.len() + name.len() + 12);
    framed.push_str("{\"event\":\"");
    framed.push_str(name);
    framed.push('"');
    if rest.trim_start() != "}" {
        framed.push(',');
    }
    framed.push_str(rest);
    framed
}

/// A chat state (XEP-0085): live only, never archived or stored offline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

impl Event {
    /// A chat state as ofchat renders it: `chatapi.chat` with `state` and no body.
    pub fn chat_state(id: String, from: &str, to: &str, state: ChatState) -> Arc<Event> {
        Event::render(
            "chatapi.chat",
            None,
            json!({ "id": id, "type": "chat", "from": from, "to": to, "state": state.as_str() }),
        )
    }
}

impl Event {
    /// A stanza error for the sender (RFC 6120 §8.3, e.g. a message to someone who blocks
    /// the sender): `chatapi.chat` with `"type":"error"`, the condition and a message.
    pub fn error(id: String, from: &str, to: &str, condition: &str, message: &str) -> Arc<Event> {
        Event::render(
            "chatapi.chat",
            None,
            json!({ "id": id, "type": "error", "from": from, "to": to, "condition": condition, "message": message }),
        )
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

    fn sample() -> StoredMessage {
        StoredMessage {
            id: 7,
            stamp_ms: 1_000,
            kind: MessageKind::Chat,
            from_user: "ann".into(),
            from_resource: Some("r1".into()),
            to_user: "bob".into(),
            to_resource: None,
            body: "say \"hi\"\n<b>".into(),
            data: Some(json!({"body": "x", "n": 1})),
            deliver_to: None,
        }
    }

    #[test]
    fn chat_events_render_escaped_json_for_each_door() {
        let ev = Event::chat(&sample(), "d");
        let parsed: Value = serde_json::from_str(&ev.json).unwrap();
        assert_eq!(parsed["body"], "say \"hi\"\n<b>");
        assert_eq!(parsed["from"], "ann@d/r1");
        assert_eq!(parsed["to"], "bob@d");
        assert_eq!(parsed["id"], "7");
        assert_eq!(parsed["data"]["n"], 1);
        let sse = std::str::from_utf8(&ev.sse_frame).unwrap();
        assert!(sse.starts_with("id: 7\nevent: chatapi.chat\ndata: {"), "{sse}");
        assert!(sse.ends_with("}\n\n"));
        assert_eq!(sse.trim_end().lines().count(), 3, "JSON must stay on one data line");
        let ws: Value = serde_json::from_str(&ev.ws_frame).unwrap();
        assert_eq!(ws["event"], "chatapi.chat");
        assert_eq!(ws["body"], parsed["body"]);
        assert!(parsed.get("delay").is_none());
    }

    #[test]
    fn the_history_object_and_the_event_carry_the_same_keys() {
        let message = sample();
        let history = message.to_json("d");
        let mut event: Value = serde_json::from_str(&Event::chat(&message, "d").json).unwrap();
        assert_eq!(event, history);
        assert_eq!(history["stamp"], "1970-01-01T00:00:01.000Z");
        let delayed: Value = serde_json::from_str(&Event::chat_delayed(&message, "d").json).unwrap();
        assert_eq!(delayed["delay"], history["stamp"]);
        event["delay"] = delayed["delay"].clone();
        assert_eq!(delayed, event, "a delayed event differs only by its delay");
    }

    #[test]
    fn the_ws_frame_puts_the_event_name_first() {
        assert_eq!(with_event_key("e", "{}"), r#"{"event":"e"}"#);
        assert_eq!(with_event_key("e", r#"{"a":1}"#), r#"{"event":"e","a":1}"#);
        let ev = Event::render("chatapi.presence", None, json!({}));
        assert_eq!(&*ev.ws_frame, r#"{"event":"chatapi.presence"}"#);
    }
}
