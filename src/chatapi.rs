//! ofchat's JSON for the core's typed events: the `chatapi.*` event names and objects that SSE
//! and `/ws` carry (`specs/openfire.md` §3), and the message object the history API shares.
//!
//! Each event is rendered once per door: the JSON object into the event's `Json` slot, the SSE
//! frame and the `/ws` frame from that text into their own slots. Keys and their order are
//! the chat API's: a stored message's in its documented order, every other object's sorted.

use base64::Engine;
use bytestring::ByteString;
use serde::Serialize;
use serde_json::{json, Value};
use switchboard_actors::clock::{format_stamp, Stamp};
use switchboard_actors::model::event::{Invitation, OccupantPresence, WorkgroupEvent};
use switchboard_actors::model::names::DisplayName;
use switchboard_actors::model::records::{Affiliation, Availability};
use switchboard_actors::model::RenderSlot;
use switchboard_actors::muc::room::Joined;
use switchboard_actors::presence::Show;
use switchboard_actors::{Address, Event, Hosts, Payload, StoredMessage};

/// Whether the event has a form on the JSON doors: copies of a user's own messages for its
/// other stations (XEP-0280) and each station's own presence are for the XMPP door only
/// (ofchat shows one presence per user).
pub fn on_json_doors(payload: &Payload) -> bool {
    !matches!(payload, Payload::Copy { .. } | Payload::StationPresence { .. } | Payload::BlocklistPush { .. })
}

/// The event's name on the JSON doors.
pub fn event_name(payload: &Payload) -> &'static str {
    match payload {
        Payload::Message { .. }
        | Payload::Copy { .. }
        | Payload::Headline { .. }
        | Payload::ChatState { .. }
        | Payload::Displayed { .. }
        | Payload::StanzaError { .. } => "chatapi.chat",
        Payload::Presence { .. }
        | Payload::StationPresence { .. }
        | Payload::Subscription { .. }
        | Payload::Occupant(_) => "chatapi.presence",
        Payload::RosterPush { .. } | Payload::BlocklistPush { .. } => "chatapi.roster",
        Payload::RoomMessage { .. }
        | Payload::Invitation(_)
        | Payload::RoomDestroyed { .. }
        | Payload::RoomPrivate { .. } => "chatapi.muc",
        Payload::Workgroup(WorkgroupEvent::Offer { .. } | WorkgroupEvent::OfferRevoked { .. }) => "chatapi.assist",
        Payload::Workgroup(_) => "chatapi.ask",
        Payload::DoorReply(_) => "chatapi.xmpp",
    }
}

/// The event's JSON object, rendered once and shared by both JSON doors.
pub fn object_text(event: &Event, hosts: &Hosts) -> ByteString {
    event
        .rendered(RenderSlot::Json, |event| {
            let text = render_object(&event.payload, hosts).unwrap_or_else(|e| {
                tracing::error!(error = %e, "an event did not serialize; sending it empty");
                "{}".to_owned()
            });
            Some(ByteString::from(text))
        })
        .unwrap_or_default()
}

/// `id: …\nevent: …\ndata: …\n\n`, once per event.
pub fn sse_frame(event: &Event, hosts: &Hosts) -> ByteString {
    event
        .rendered(RenderSlot::Sse, |event| {
            let name = event_name(&event.payload);
            let json = object_text(event, hosts);
            let mut sse = String::with_capacity(json.len() + name.len() + 40);
            if let Some(seq) = event.seq() {
                sse.push_str("id: ");
                sse.push_str(&seq.to_string());
                sse.push('\n');
            }
            sse.push_str("event: ");
            sse.push_str(name);
            sse.push_str("\ndata: ");
            sse.push_str(&json);
            sse.push_str("\n\n");
            Some(ByteString::from(sse))
        })
        .unwrap_or_default()
}

/// The `/ws` text frame: the JSON object with `"event":"<name>"` as its first key.
pub fn ws_frame(event: &Event, hosts: &Hosts) -> ByteString {
    event
        .rendered(RenderSlot::JsonWebsocket, |event| {
            let json = object_text(event, hosts);
            Some(ByteString::from(with_event_key(event_name(&event.payload), &json)))
        })
        .unwrap_or_default()
}

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

/// A stored 1:1 message as the history API and `chatapi.chat` show it.
pub fn message_json(message: &StoredMessage, hosts: &Hosts) -> Value {
    serde_json::to_value(MessageJson::new(message, hosts, false)).unwrap_or(Value::Null)
}

/// A stored message's JSON keys, in one place (ofchat's names and order).
#[derive(Serialize)]
struct MessageJson<'a> {
    #[serde(serialize_with = "as_decimal_string")]
    id: i64,
    #[serde(rename = "type")]
    kind: &'static str,
    from: Shown<'a>,
    to: Shown<'a>,
    body: &'a str,
    data: Option<&'a Value>,
    stamp: Stamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    delay: Option<Stamp>,
    /// The sender's display name and avatar, when its site told them.
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    avatar: Option<String>,
}

impl<'a> MessageJson<'a> {
    fn new(message: &'a StoredMessage, hosts: &'a Hosts, delayed: bool) -> Self {
        MessageJson {
            id: message.id,
            kind: message.kind.as_str(),
            from: Shown { user: &message.from_user, resource: message.from_resource.as_deref(), domain: &hosts.domain },
            to: Shown { user: &message.to_user, resource: message.to_resource.as_deref(), domain: &hosts.domain },
            body: &message.body,
            data: message.data.as_ref(),
            stamp: Stamp(message.stamp_ms),
            delay: delayed.then_some(Stamp(message.stamp_ms)),
            name: None,
            avatar: None,
        }
        .named(hosts.names.get(&message.from_user).as_deref())
    }

    fn named(self, known: Option<&DisplayName>) -> Self {
        match known {
            Some(n) => MessageJson { name: Some(n.name.clone()), avatar: n.avatar.clone(), ..self },
            None => self,
        }
    }
}

fn as_decimal_string<S: serde::Serializer>(id: &i64, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(id)
}

/// `user@domain[/resource]`, written straight into the JSON without a String of its own.
struct Shown<'a> {
    user: &'a str,
    resource: Option<&'a str>,
    domain: &'a str,
}

impl Serialize for Shown<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.resource {
            Some(resource) => serializer.collect_str(&format_args!("{}@{}/{}", self.user, self.domain, resource)),
            None => serializer.collect_str(&format_args!("{}@{}", self.user, self.domain)),
        }
    }
}

/// A user's presence as the chat API shows it (events, `GET …/presence/{jid}`, contact
/// lists).
pub fn presence_json(user: &str, availability: Option<&Availability>, hosts: &Hosts) -> Value {
    let (kind, show, status) = match availability {
        Some(a) => ("available", a.show, a.status.as_deref()),
        None => ("unavailable", Show::Offline, None),
    };
    let mut object = json!({
        "type": kind,
        "from": hosts.render(&Address::user(user)),
        "to": null,
        "show": show.as_str(),
        "status": status,
        "availability": show.ozeki(),
    });
    add_display_name(&mut object, user, hosts);
    object
}

/// Adds `name` and `avatar` to `object` when `user`'s site told them.
pub fn add_display_name(object: &mut Value, user: &str, hosts: &Hosts) {
    if let Some(known) = hosts.names.get(user) {
        object["name"] = json!(known.name);
        if let Some(avatar) = &known.avatar {
            object["avatar"] = json!(avatar);
        }
    }
}

/// What a join answers: `{"room","nick","role","affiliation","created"}`.
pub fn joined_json(joined: &Joined) -> Value {
    json!({
        "room": joined.room,
        "nick": joined.nick,
        "role": joined.role.as_str(),
        "affiliation": joined.affiliation.map_or("none", Affiliation::as_str),
        "created": joined.created,
    })
}

fn render_object(payload: &Payload, hosts: &Hosts) -> serde_json::Result<String> {
    let at = |address: &Address| hosts.render(address);
    let value = match payload {
        Payload::Message { message, delayed } => {
            return serde_json::to_string(&MessageJson::new(message, hosts, *delayed));
        }
        // Not written on these doors (see `on_json_doors`); the message itself if it were.
        Payload::Copy { message, .. } => return serde_json::to_string(&MessageJson::new(message, hosts, false)),
        Payload::Headline { id, body, stamp_ms } => json!({
            "id": id,
            "type": "headline",
            "from": hosts.domain,
            "to": Value::Null,
            "body": body,
            "data": Value::Null,
            "stamp": format_stamp(*stamp_ms),
        }),
        Payload::ChatState { id, from, to, state } => {
            json!({ "id": id, "type": "chat", "from": at(from), "to": at(to), "state": state.as_str() })
        }
        Payload::Displayed { id, from, to, message_ids } => {
            json!({ "id": id, "type": "displayed", "from": at(from), "to": at(to), "messageIds": message_ids })
        }
        Payload::StanzaError { id, from, to, condition, text } => json!({
            "id": id, "type": "error", "from": at(from), "to": at(to), "condition": condition.as_str(), "message": text,
        }),
        Payload::Presence { from, availability } => presence_json(from, availability.as_ref(), hosts),
        // Not written on these doors (see `on_json_doors`).
        Payload::StationPresence { from, availability, .. } => presence_json(from, availability.as_ref(), hosts),
        Payload::Subscription { kind, from, to } => json!({
            "type": kind.as_str(),
            "from": at(&Address::user(from.as_str())),
            "to": at(&Address::user(to.as_str())),
            "show": null,
            "status": null,
        }),
        Payload::RosterPush { push_id, contact, item } => {
            let jid = at(&Address::user(contact.as_str()));
            let item = match item {
                Some(row) => json!({
                    "jid": jid,
                    "nickname": row.nickname,
                    "subscription": row.subscription.name(),
                    "ask": row.ask_out,
                    "groups": row.groups,
                }),
                None => json!({ "jid": jid, "subscription": "remove", "groups": [] }),
            };
            json!({ "type": "push", "id": format!("push-{push_id}"), "item": item })
        }
        // Not written on these doors (see `on_json_doors`).
        Payload::BlocklistPush { user, on } => json!({
            "type": if *on { "block" } else { "unblock" },
            "item": { "jid": at(&Address::user(user.as_str())) },
        }),
        Payload::Occupant(occupant) => occupant_json(occupant, hosts),
        Payload::RoomMessage { message, delayed } => {
            let mut object = json!({
                "type": "groupchat",
                "id": message.id.to_string(),
                "from": at(&Address::occupant(message.room.as_str(), message.nick.as_str())),
                "to": at(&Address::room(message.room.as_str())),
                "body": message.body,
                "data": message.data,
                "stamp": format_stamp(message.stamp_ms),
            });
            if *delayed {
                object["delay"] = json!(format_stamp(message.stamp_ms));
            }
            object
        }
        Payload::Invitation(invitation) => invitation_json(invitation, hosts),
        Payload::RoomDestroyed { room, reason } => {
            let room = at(&Address::room(room.as_str()));
            json!({ "type": "destroyed", "room": room, "from": room, "reason": reason })
        }
        Payload::RoomPrivate { id, room, from_nick, to, body, stamp_ms } => json!({
            "type": "chat",
            "private": true,
            "id": id,
            "from": at(&Address::occupant(room.as_str(), from_nick.as_str())),
            "to": at(to),
            "room": at(&Address::room(room.as_str())),
            "body": body,
            "stamp": format_stamp(*stamp_ms),
        }),
        Payload::Workgroup(event) => workgroup_json(event, hosts),
        Payload::DoorReply(stanza) => {
            json!({ "xmpp": base64::engine::general_purpose::STANDARD.encode(stanza.as_bytes()) })
        }
    };
    serde_json::to_string(&value)
}

fn occupant_json(occupant: &OccupantPresence, hosts: &Hosts) -> Value {
    let available = occupant.available;
    let mut object = json!({
        "type": if available { "available" } else { "unavailable" },
        "from": hosts.render(&Address::occupant(occupant.room.as_str(), occupant.nick.as_str())),
        "to": null,
        "room": hosts.render(&Address::room(occupant.room.as_str())),
        "nick": occupant.nick,
        "show": if available { "available" } else { "offline" },
        "status": null,
        "role": if available { occupant.role.as_str() } else { "none" },
        "affiliation": occupant.affiliation.map_or("none", |a| a.as_str()),
    });
    if occupant.jid_visible {
        object["jid"] = json!(hosts.render(&Address::user(occupant.user.as_str())));
        add_display_name(&mut object, occupant.user.as_str(), hosts);
    }
    if let Some(reason) = &occupant.reason {
        object["reason"] = json!(reason);
    }
    if let Some(new_nick) = &occupant.new_nick {
        object["newNick"] = json!(new_nick);
    }
    object
}

fn invitation_json(invitation: &Invitation, hosts: &Hosts) -> Value {
    let room = hosts.render(&Address::room(invitation.room.as_str()));
    let to = hosts.render(&Address::user(invitation.invitee.as_str()));
    match &invitation.workgroup {
        None => json!({
            "type": "invitationReceived",
            "room": room,
            "inviter": hosts.render(&invitation.inviter),
            "to": to,
            "from": room,
            "reason": invitation.reason,
            "password": invitation.password,
        }),
        Some(workgroup) => json!({
            "type": "invitationReceived",
            "room": room,
            "inviter": hosts.render(&invitation.inviter),
            "from": room,
            "to": to,
            "url": format!("xmpp:{room}?join"),
            "reason": invitation.reason,
            "password": invitation.password,
            "workgroup": hosts.render(&Address::workgroup(workgroup.workgroup.as_str())),
            "visitor": hosts.render(&Address::visitor(workgroup.workgroup.as_str(), workgroup.user_id.as_str())),
            "userID": workgroup.user_id,
            "metaData": workgroup.metadata,
        }),
    }
}

fn workgroup_json(event: &WorkgroupEvent, hosts: &Hosts) -> Value {
    let workgroup_at = |name: &str| hosts.render(&Address::workgroup(name));
    let visitor_at = |name: &str, user_id: &str| hosts.render(&Address::visitor(name, user_id));
    // What a visitor hears comes from the workgroup, to the visitor's address.
    let to_visitor = |name: &str, user_id: &str, mut object: Value| {
        object["to"] = json!(visitor_at(name, user_id));
        object["from"] = json!(workgroup_at(name));
        object
    };
    match event {
        WorkgroupEvent::Offer { workgroup, offer_id, user_id, metadata, timeout_secs } => json!({
            "type": "offerReceived",
            "workgroup": workgroup_at(workgroup),
            "id": offer_id,
            "from": visitor_at(workgroup, user_id),
            "userID": user_id,
            "metaData": metadata,
            "timeout": timeout_secs,
        }),
        WorkgroupEvent::OfferRevoked { workgroup, offer_id, user_id, reason } => json!({
            "type": "offerRevoked",
            "workgroup": workgroup_at(workgroup),
            "id": offer_id,
            "from": visitor_at(workgroup, user_id),
            "userID": user_id,
            "reason": reason.as_str(),
        }),
        WorkgroupEvent::QueueStatus { workgroup, user_id, position, remaining_secs } => to_visitor(
            workgroup,
            user_id,
            json!({ "type": "update-queue", "position": position, "remaingTime": remaining_secs }),
        ),
        WorkgroupEvent::Departed { workgroup, user_id, reason } => {
            to_visitor(workgroup, user_id, json!({ "type": "depart-queue", "reason": reason.as_str() }))
        }
        WorkgroupEvent::ChatOffered { workgroup, user_id, room, agent } => {
            let room = hosts.render(&Address::room(room.as_str()));
            // The visitor page, which joins the room for the visitor (`crate::sites::widget`).
            let url = format!("/ask/{workgroup}?userID={}", crate::urls::component(user_id));
            to_visitor(workgroup, user_id, json!({ "type": "offer", "url": url, "mucRoom": room, "agent": agent }))
        }
        WorkgroupEvent::ChatEnded { workgroup, user_id, room } => {
            let room = hosts.render(&Address::room(room.as_str()));
            to_visitor(workgroup, user_id, json!({ "type": "chat-ended", "mucRoom": room }))
        }
        WorkgroupEvent::QueueSummary { workgroup, status, user_count, average_wait_secs, oldest_entry_ms } => {
            let jid = workgroup_at(workgroup);
            json!({
                "type": "notify-queue",
                "from": jid,
                "workgroup": jid,
                "status": status,
                "userCount": user_count,
                "averageWaitTime": average_wait_secs,
                "oldestEntry": oldest_entry_ms.map(format_stamp),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use switchboard_actors::model::event::{Condition, WorkgroupInvitation};
    use switchboard_actors::model::records::{Affiliation, DepartReason, NoticeKind, RevokeReason, Role, RosterItem};
    use switchboard_actors::model::ChatState;

    use super::*;
    use crate::fixtures::{hosts, occupant, room_message, stored_message};

    fn stored() -> Arc<StoredMessage> {
        stored_message(
            "say \"hi\"
<b>",
        )
    }

    fn sse(payload: Payload) -> String {
        sse_frame(&Event::new(payload), &hosts()).to_string()
    }

    fn ws(payload: Payload) -> String {
        ws_frame(&Event::new(payload), &hosts()).to_string()
    }

    /// The event's JSON object, after checking that the SSE frame is exactly
    /// `[id: SEQ\n]event: NAME\ndata: OBJECT\n\n` and the `/ws` frame exactly the object with
    /// `"event":"NAME"` first: a golden object below pins all three renderings.
    fn data(payload: Payload, name: &str) -> String {
        let event = Event::new(payload);
        let object = object_text(&event, &hosts()).to_string();
        let id_line = event.seq().map(|seq| format!("id: {seq}\n")).unwrap_or_default();
        assert_eq!(sse_frame(&event, &hosts()), format!("{id_line}event: {name}\ndata: {object}\n\n"));
        let ws_expected = match object.as_str() {
            "{}" => format!("{{\"event\":\"{name}\"}}"),
            _ => format!("{{\"event\":\"{name}\",{}", &object[1..]),
        };
        assert_eq!(ws_frame(&event, &hosts()), ws_expected);
        object
    }

    #[test]
    fn a_stored_message_keeps_its_documented_keys_on_every_json_door() {
        let live = Payload::Message { message: stored(), delayed: false };
        let object = r#"{"id":"7","type":"chat","from":"ann@d/r1","to":"bob@d","body":"say \"hi\"\n<b>","data":{"n":1},"stamp":"1970-01-01T00:00:01.000Z"}"#;
        assert_eq!(sse(live.clone()), format!("id: 7\nevent: chatapi.chat\ndata: {object}\n\n"));
        assert_eq!(ws(live), format!("{{\"event\":\"chatapi.chat\",{}", &object[1..]));
        let late = data(Payload::Message { message: stored(), delayed: true }, "chatapi.chat");
        assert!(late.ends_with(r#""stamp":"1970-01-01T00:00:01.000Z","delay":"1970-01-01T00:00:01.000Z"}"#), "{late}");
        assert_eq!(message_json(&stored(), &hosts()), serde_json::from_str::<Value>(object).unwrap());
    }

    #[test]
    fn live_chat_events_render_as_chatapi_chat() {
        let headline = Payload::Headline { id: "h1".into(), body: "maintenance".into(), stamp_ms: 0 };
        assert_eq!(
            sse(headline),
            "event: chatapi.chat\ndata: {\"body\":\"maintenance\",\"data\":null,\"from\":\"d\",\"id\":\"h1\",\"stamp\":\"1970-01-01T00:00:00.000Z\",\"to\":null,\"type\":\"headline\"}\n\n"
        );
        let state = Payload::ChatState {
            id: "s1".into(),
            from: Address::station("ann", Some("r1".into())),
            to: Address::user("bob"),
            state: ChatState::Composing,
        };
        assert_eq!(
            ws(state),
            r#"{"event":"chatapi.chat","from":"ann@d/r1","id":"s1","state":"composing","to":"bob@d","type":"chat"}"#
        );
        let error = Payload::StanzaError {
            id: "e1".into(),
            from: Address::user("bob"),
            to: Address::station("ann", Some("r1".into())),
            condition: Condition::NotAcceptable,
            text: "you block bob".into(),
        };
        assert_eq!(
            data(error, "chatapi.chat"),
            r#"{"condition":"not-acceptable","from":"bob@d","id":"e1","message":"you block bob","to":"ann@d/r1","type":"error"}"#
        );
    }

    #[test]
    fn presences_and_roster_pushes_render_with_their_keys() {
        let away = Availability { show: Show::Dnd, status: Some("busy".into()) };
        assert_eq!(
            data(Payload::Presence { from: "ann".into(), availability: Some(away) }, "chatapi.presence"),
            r#"{"availability":"busy","from":"ann@d","show":"dnd","status":"busy","to":null,"type":"available"}"#
        );
        assert_eq!(
            data(Payload::Presence { from: "ann".into(), availability: None }, "chatapi.presence"),
            r#"{"availability":"offline","from":"ann@d","show":"offline","status":null,"to":null,"type":"unavailable"}"#
        );
        let ask = Payload::Subscription { kind: NoticeKind::Subscribe, from: "ann".into(), to: "bob".into() };
        assert_eq!(
            data(ask, "chatapi.presence"),
            r#"{"from":"ann@d","show":null,"status":null,"to":"bob@d","type":"subscribe"}"#
        );
        let mut row = RosterItem::new("ann", "bob");
        row.nickname = Some("Bob".into());
        row.groups = vec!["work".into()];
        row.listed = true;
        let push = Payload::RosterPush { push_id: 3, contact: "bob".into(), item: Some(row) };
        assert_eq!(
            data(push, "chatapi.roster"),
            r#"{"id":"push-3","item":{"ask":false,"groups":["work"],"jid":"bob@d","nickname":"Bob","subscription":"none"},"type":"push"}"#
        );
        let removed = Payload::RosterPush { push_id: 4, contact: "bob".into(), item: None };
        assert_eq!(
            data(removed, "chatapi.roster"),
            r#"{"id":"push-4","item":{"groups":[],"jid":"bob@d","subscription":"remove"},"type":"push"}"#
        );
    }

    #[test]
    fn room_events_render_with_their_keys() {
        let mut occupant = occupant(Role::Moderator, Some(Affiliation::Owner));
        assert_eq!(
            data(Payload::Occupant(occupant.clone()), "chatapi.presence"),
            r#"{"affiliation":"owner","from":"hall@conference.d/Ann","jid":"ann@d","nick":"Ann","role":"moderator","room":"hall@conference.d","show":"available","status":null,"to":null,"type":"available"}"#
        );
        occupant.jid_visible = false;
        occupant.available = false;
        occupant.affiliation = None;
        occupant.reason = Some("spam".into());
        assert_eq!(
            data(Payload::Occupant(occupant), "chatapi.presence"),
            r#"{"affiliation":"none","from":"hall@conference.d/Ann","nick":"Ann","reason":"spam","role":"none","room":"hall@conference.d","show":"offline","status":null,"to":null,"type":"unavailable"}"#
        );
        assert_eq!(
            data(Payload::RoomMessage { message: room_message(), delayed: false }, "chatapi.muc"),
            r#"{"body":"hello","data":null,"from":"hall@conference.d/Ann","id":"9","stamp":"1970-01-01T00:00:02.000Z","to":"hall@conference.d","type":"groupchat"}"#
        );
        assert_eq!(
            data(Payload::RoomMessage { message: room_message(), delayed: true }, "chatapi.muc"),
            r#"{"body":"hello","data":null,"delay":"1970-01-01T00:00:02.000Z","from":"hall@conference.d/Ann","id":"9","stamp":"1970-01-01T00:00:02.000Z","to":"hall@conference.d","type":"groupchat"}"#
        );
        let invitation = Invitation {
            room: "hall".into(),
            inviter: Address::user("ann"),
            invitee: "bob".into(),
            reason: "join us".into(),
            password: Some("pw".into()),
            workgroup: None,
        };
        assert_eq!(
            data(Payload::Invitation(invitation), "chatapi.muc"),
            r#"{"from":"hall@conference.d","inviter":"ann@d","password":"pw","reason":"join us","room":"hall@conference.d","to":"bob@d","type":"invitationReceived"}"#
        );
        assert_eq!(
            data(Payload::RoomDestroyed { room: "hall".into(), reason: "closing".into() }, "chatapi.muc"),
            r#"{"from":"hall@conference.d","reason":"closing","room":"hall@conference.d","type":"destroyed"}"#
        );
    }

    #[test]
    fn workgroup_events_render_with_their_keys() {
        let workgroup = || "sales".to_owned();
        let user_id = || "v1".to_owned();
        let offer = WorkgroupEvent::Offer {
            workgroup: workgroup(),
            offer_id: "o1".into(),
            user_id: user_id(),
            metadata: [("question".to_owned(), "?".to_owned())].into(),
            timeout_secs: 20,
        };
        assert_eq!(
            data(Payload::Workgroup(offer), "chatapi.assist"),
            r#"{"from":"sales@workgroup.d/v1","id":"o1","metaData":{"question":"?"},"timeout":20,"type":"offerReceived","userID":"v1","workgroup":"sales@workgroup.d"}"#
        );
        let revoked = WorkgroupEvent::OfferRevoked {
            workgroup: workgroup(),
            offer_id: "o1".into(),
            user_id: user_id(),
            reason: RevokeReason::TimedOut,
        };
        assert_eq!(
            data(Payload::Workgroup(revoked), "chatapi.assist"),
            r#"{"from":"sales@workgroup.d/v1","id":"o1","reason":"The offer has timed out","type":"offerRevoked","userID":"v1","workgroup":"sales@workgroup.d"}"#
        );
        let status =
            WorkgroupEvent::QueueStatus { workgroup: workgroup(), user_id: user_id(), position: 2, remaining_secs: 30 };
        assert_eq!(
            data(Payload::Workgroup(status), "chatapi.ask"),
            r#"{"from":"sales@workgroup.d","position":2,"remaingTime":30,"to":"sales@workgroup.d/v1","type":"update-queue"}"#
        );
        let departed = WorkgroupEvent::Departed {
            workgroup: workgroup(),
            user_id: user_id(),
            reason: DepartReason::AgentNotFound,
        };
        assert_eq!(
            data(Payload::Workgroup(departed), "chatapi.ask"),
            r#"{"from":"sales@workgroup.d","reason":"agent-not-found","to":"sales@workgroup.d/v1","type":"depart-queue"}"#
        );
        let offered = WorkgroupEvent::ChatOffered {
            workgroup: workgroup(),
            user_id: user_id(),
            room: "ab1".into(),
            agent: "ann".into(),
        };
        assert_eq!(
            data(Payload::Workgroup(offered), "chatapi.ask"),
            r#"{"agent":"ann","from":"sales@workgroup.d","mucRoom":"ab1@conference.d","to":"sales@workgroup.d/v1","type":"offer","url":"/ask/sales?userID=v1"}"#
        );
        let ended = WorkgroupEvent::ChatEnded { workgroup: workgroup(), user_id: user_id(), room: "ab1".into() };
        assert_eq!(
            data(Payload::Workgroup(ended), "chatapi.ask"),
            r#"{"from":"sales@workgroup.d","mucRoom":"ab1@conference.d","to":"sales@workgroup.d/v1","type":"chat-ended"}"#
        );
        let summary = WorkgroupEvent::QueueSummary {
            workgroup: workgroup(),
            status: "open".into(),
            user_count: 1,
            average_wait_secs: 5,
            oldest_entry_ms: Some(0),
        };
        assert_eq!(
            data(Payload::Workgroup(summary), "chatapi.ask"),
            r#"{"averageWaitTime":5,"from":"sales@workgroup.d","oldestEntry":"1970-01-01T00:00:00.000Z","status":"open","type":"notify-queue","userCount":1,"workgroup":"sales@workgroup.d"}"#
        );
        let invitation = Invitation {
            room: "ab1".into(),
            inviter: Address::workgroup("sales"),
            invitee: "ann".into(),
            reason: "ab1".into(),
            password: None,
            workgroup: Some(WorkgroupInvitation {
                workgroup: workgroup(),
                user_id: user_id(),
                metadata: Default::default(),
            }),
        };
        assert_eq!(
            data(Payload::Invitation(invitation), "chatapi.muc"),
            r#"{"from":"ab1@conference.d","inviter":"sales@workgroup.d","metaData":{},"password":null,"reason":"ab1","room":"ab1@conference.d","to":"ann@d","type":"invitationReceived","url":"xmpp:ab1@conference.d?join","userID":"v1","visitor":"sales@workgroup.d/v1","workgroup":"sales@workgroup.d"}"#
        );
    }

    #[test]
    fn a_door_reply_travels_as_base64_to_the_json_doors() {
        assert_eq!(data(Payload::DoorReply(Arc::from("<iq/>")), "chatapi.xmpp"), r#"{"xmpp":"PGlxLz4="}"#);
    }

    #[test]
    fn an_event_is_rendered_once_per_door_for_any_number_of_recipients() {
        let event = Event::new(Payload::RoomMessage { message: room_message(), delayed: false });
        let first = ws_frame(&event, &hosts());
        for _ in 0..1000 {
            let again = ws_frame(&event, &hosts());
            // The same bytes, not a copy: ByteString clones share their buffer.
            assert_eq!(again.as_bytes().as_ptr(), first.as_bytes().as_ptr());
        }
        let sse_first = sse_frame(&event, &hosts());
        assert_eq!(sse_frame(&event, &hosts()).as_bytes().as_ptr(), sse_first.as_bytes().as_ptr());
    }

    #[test]
    fn the_ws_frame_puts_the_event_name_first() {
        assert_eq!(with_event_key("e", "{}"), r#"{"event":"e"}"#);
        assert_eq!(with_event_key("e", r#"{"a":1}"#), r#"{"event":"e","a":1}"#);
    }
}
