//! Events as XMPP stanzas.
//!
//! Every event is rendered once as JSON by the core; an XMPP connection turns it into a
//! stanza here. The stanza is cached in the event (`Event::xmpp_frame`), so a room message
//! to a thousand XMPP occupants is rendered once. Stanzas carry no `to` where the event is
//! shared by several recipients (the client's own address is implied, RFC 6120 §8.1.1.1);
//! the one per-recipient form, a room's self-presence (status 110), is rendered by
//! [`occupant_self_presence`] and not cached.

use base64::Engine;
use bytestring::ByteString;
use serde_json::Value;
use switchboard_actors::Event;

use super::ns;
use super::xml::Element;

fn text(json: &Value, key: &str) -> String {
    json.get(key).and_then(Value::as_str).unwrap_or_default().to_owned()
}

/// The event as a text frame, rendered once per event; `None` if it has no XMPP form.
pub fn frame(event: &Event, domain: &str) -> Option<ByteString> {
    event
        .xmpp_frame
        .get_or_init(|| {
            let json: Value = serde_json::from_str(&event.json).ok()?;
            stanza(event.name, &json, domain).map(|el| ByteString::from(el.to_xml()))
        })
        .clone()
}

/// The occupant presence from `event` marked as the recipient's own (status code 110), if
/// the event is an occupant presence from `own_address`.
pub fn occupant_self_presence(event: &Event, own_address: &str) -> Option<ByteString> {
    // A substring check first: most presences are someone else's, and parsing each one for
    // every XMPP occupant would make a large room's joins quadratic in JSON parsing.
    if event.name != "chatapi.presence" || !event.json.contains(own_address) {
        return None;
    }
    let json: Value = serde_json::from_str(&event.json).ok()?;
    if json.get("room").is_none() || json["from"] != own_address {
        return None;
    }
    let mut el = occupant_presence(&json);
    if let Some(x) = el.children.iter_mut().find_map(|n| match n {
        super::xml::Node::Element(e) if e.ns == ns::MUC_USER => Some(e),
        _ => None,
    }) {
        x.children.push(super::xml::Node::Element(Element::new("status", ns::MUC_USER).attr("code", "110")));
    }
    Some(ByteString::from(el.to_xml()))
}

fn stanza(name: &str, json: &Value, domain: &str) -> Option<Element> {
    let kind = json.get("type").and_then(Value::as_str).unwrap_or_default();
    match name {
        "chatapi.chat" => chat(kind, json, domain),
        "chatapi.muc" => muc(kind, json),
        "chatapi.presence" if json.get("room").is_some() => Some(occupant_presence(json)),
        "chatapi.presence" => Some(presence(kind, json)),
        "chatapi.roster" => roster_push(json),
        "chatapi.assist" => assist(kind, json),
        "chatapi.ask" => ask(kind, json),
        "chatapi.xmpp" => {
            let raw = base64::engine::general_purpose::STANDARD.decode(text(json, "xmpp")).ok()?;
            super::xml::parse_element(&String::from_utf8(raw).ok()?, usize::MAX, ns::CLIENT).ok()
        }
        _ => None,
    }
}

fn message(kind: &str, json: &Value) -> Element {
    Element::new("message", ns::CLIENT).attr("type", kind).attr("from", text(json, "from")).attr("id", text(json, "id"))
}

fn chat(kind: &str, json: &Value, domain: &str) -> Option<Element> {
    if kind == "error" {
        let error = Element::new("error", ns::CLIENT)
            .attr("type", "cancel")
            .child(Element::new(&text(json, "condition"), ns::STANZAS))
            .child(Element::new("text", ns::STANZAS).text(text(json, "message")));
        return Some(message("error", json).child(error));
    }
    if let Some(state) = json.get("state").and_then(Value::as_str) {
        return Some(message(kind, json).attr("to", text(json, "to")).child(Element::new(state, ns::CHAT_STATES)));
    }
    let mut el = message(kind, json).attr("to", text(json, "to")).text_child("body", ns::CLIENT, text(json, "body"));
    if let Some(data) = json.get("data").filter(|d| !d.is_null()) {
        // XEP-0335 JSON container: the JSON doors' `data` travels with the message.
        el = el.child(Element::new("json", "urn:xmpp:json:0").text(data.to_string()));
    }
    if let Some(stamp) = json.get("delay").and_then(Value::as_str) {
        el = el.child(Element::new("delay", ns::DELAY).attr("from", domain).attr("stamp", stamp));
    }
    Some(el)
}

fn muc(kind: &str, json: &Value) -> Option<Element> {
    match kind {
        "groupchat" => {
            let mut el = message("groupchat", json).text_child("body", ns::CLIENT, text(json, "body"));
            if let Some(stamp) = json.get("delay").and_then(Value::as_str) {
                let room = text(json, "to");
                el = el.child(Element::new("delay", ns::DELAY).attr("from", room).attr("stamp", stamp));
            }
            Some(el)
        }
        "invitationReceived" => {
            let invite = Element::new("invite", ns::MUC_USER).attr("from", text(json, "inviter")).text_child(
                "reason",
                ns::MUC_USER,
                text(json, "reason"),
            );
            let mut x = Element::new("x", ns::MUC_USER).child(invite);
            if let Some(password) = json.get("password").and_then(Value::as_str) {
                x = x.text_child("password", ns::MUC_USER, password);
            }
            Some(Element::new("message", ns::CLIENT).attr("from", text(json, "room")).child(x))
        }
        "destroyed" => {
            let destroy =
                Element::new("destroy", ns::MUC_USER).text_child("reason", ns::MUC_USER, text(json, "reason"));
            let x = Element::new("x", ns::MUC_USER)
                .child(Element::new("item", ns::MUC_USER).attr("affiliation", "none").attr("role", "none"))
                .child(destroy);
            Some(
                Element::new("presence", ns::CLIENT)
                    .attr("type", "unavailable")
                    .attr("from", text(json, "room"))
                    .child(x),
            )
        }
        _ => None,
    }
}

fn occupant_presence(json: &Value) -> Element {
    let mut el = Element::new("presence", ns::CLIENT).attr("from", text(json, "from"));
    if json["type"] == "unavailable" {
        el.set_attr("type", "unavailable");
    }
    let item = Element::new("item", ns::MUC_USER)
        .attr("affiliation", text(json, "affiliation"))
        .attr("role", text(json, "role"))
        .attr("jid", text(json, "jid"));
    let mut x = Element::new("x", ns::MUC_USER).child(item);
    if let Some(reason) = json.get("reason").and_then(Value::as_str) {
        x = x.child(Element::new("status", ns::MUC_USER).attr("code", "307")).text_child(
            "reason",
            ns::MUC_USER,
            reason,
        );
    }
    el.child(x)
}

fn presence(kind: &str, json: &Value) -> Element {
    let mut el = Element::new("presence", ns::CLIENT).attr("from", text(json, "from"));
    match kind {
        "available" => {
            let show = text(json, "show");
            if matches!(show.as_str(), "chat" | "away" | "xa" | "dnd") {
                el = el.text_child("show", ns::CLIENT, show);
            }
            if let Some(status) = json.get("status").and_then(Value::as_str) {
                el = el.text_child("status", ns::CLIENT, status);
            }
        }
        other => {
            el.set_attr("type", other);
            if other != "unavailable" {
                el.set_attr("to", text(json, "to"));
            }
        }
    }
    el
}

fn roster_push(json: &Value) -> Option<Element> {
    let item = json.get("item")?;
    let mut el = Element::new("item", ns::ROSTER)
        .attr("jid", text(item, "jid"))
        .attr("name", text(item, "nickname"))
        .attr("subscription", text(item, "subscription"));
    if item["ask"] == true {
        el.set_attr("ask", "subscribe");
    }
    for group in item.get("groups").and_then(Value::as_array).into_iter().flatten() {
        el = el.text_child("group", ns::ROSTER, group.as_str().unwrap_or_default());
    }
    let iq = Element::new("iq", ns::CLIENT).attr("type", "set").attr("id", text(json, "id"));
    Some(iq.child(Element::new("query", ns::ROSTER).child(el)))
}

fn assist(kind: &str, json: &Value) -> Option<Element> {
    let iq = Element::new("iq", ns::CLIENT)
        .attr("type", "set")
        .attr("from", text(json, "workgroup"))
        .attr("id", text(json, "id"));
    let session = Element::new("session", ns::JIVE_WORKGROUP)
        .attr("id", text(json, "id"))
        .attr("workgroup", text(json, "workgroup"));
    match kind {
        "offerReceived" => {
            let mut metadata = Element::new("metadata", ns::JIVE_WORKGROUP);
            if let Some(map) = json.get("metaData").and_then(Value::as_object) {
                for (key, value) in map {
                    metadata = metadata.child(
                        Element::new("value", ns::JIVE_WORKGROUP)
                            .attr("name", key.clone())
                            .text(value.as_str().unwrap_or_default()),
                    );
                }
            }
            let offer = Element::new("offer", ns::WORKGROUP)
                .attr("id", text(json, "id"))
                .attr("jid", text(json, "from"))
                .child(metadata)
                .text_child("timeout", ns::WORKGROUP, json["timeout"].to_string())
                .child(session)
                .child(Element::new("user-request", ns::WORKGROUP));
            Some(iq.child(offer))
        }
        "offerRevoked" => {
            let revoke = Element::new("offer-revoke", ns::WORKGROUP)
                .attr("id", text(json, "id"))
                .attr("jid", text(json, "from"))
                .text_child("reason", ns::WORKGROUP, text(json, "reason"))
                .child(session);
            Some(iq.child(revoke))
        }
        _ => None,
    }
}

fn ask(kind: &str, json: &Value) -> Option<Element> {
    let from = text(json, "from");
    match kind {
        "update-queue" => {
            let status = Element::new("queue-status", ns::WORKGROUP)
                .text_child("position", ns::WORKGROUP, json["position"].to_string())
                .text_child("time", ns::WORKGROUP, json["remaingTime"].to_string());
            Some(Element::new("message", ns::CLIENT).attr("from", from).child(status))
        }
        "depart-queue" => {
            let depart =
                Element::new("depart-queue", ns::WORKGROUP).child(Element::new(&text(json, "reason"), ns::WORKGROUP));
            Some(Element::new("message", ns::CLIENT).attr("from", from).child(depart))
        }
        "offer" => {
            let invite = Element::new("invite", ns::MUC_USER).attr("from", from).text_child(
                "reason",
                ns::MUC_USER,
                "Please join me for a chat.",
            );
            let x = Element::new("x", ns::MUC_USER).child(invite);
            Some(Element::new("message", ns::CLIENT).attr("from", text(json, "mucRoom")).child(x))
        }
        "notify-queue" => {
            let notify = Element::new("notify-queue", ns::WORKGROUP)
                .text_child("count", ns::WORKGROUP, json["userCount"].to_string())
                .text_child("time", ns::WORKGROUP, json["averageWaitTime"].to_string())
                .text_child("status", ns::WORKGROUP, text(json, "status"));
            Some(Element::new("presence", ns::CLIENT).attr("from", from).child(notify))
        }
        _ => None,
    }
}
