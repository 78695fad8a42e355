//! The core's typed events as XMPP stanzas.
//!
//! An XMPP connection renders each event from its payload here, once: the stanza is kept in
//! the event's XMPP slot, so a room message to a thousand XMPP occupants is rendered once.
//! Stanzas carry no `to` where the event is shared by several recipients (the client's own
//! address is implied, RFC 6120 §8.1.1.1); the one per-recipient form, a room's
//! self-presence (status 110), is rendered by [`own_occupant_presence`] and not cached.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};

use bytestring::ByteString;
use switchboard_actors::clock::format_stamp;
use switchboard_actors::model::event::{CopyDirection, Invitation, OccupantPresence, WorkgroupEvent};
use switchboard_actors::model::{RenderSlot, RoomMessage};
use switchboard_actors::presence::Show;
use switchboard_actors::{Address, Event, Hosts, Payload, StoredMessage};

use super::xml::{Element, Node};
use super::{blocking, ns};

/// Numbers blocklist pushes' IQ ids (each event is rendered once for every station).
static BLOCKLIST_PUSHES: AtomicU64 = AtomicU64::new(0);

/// The event as a text frame, rendered once per event; `None` if it has no XMPP form.
pub fn frame(event: &Event, hosts: &Hosts) -> Option<ByteString> {
    event.rendered(RenderSlot::Xmpp, |event| match &event.payload {
        // The door built this reply itself: it is already a stanza.
        Payload::DoorReply(stanza) => Some(ByteString::from(stanza.to_string())),
        payload => stanza(payload, hosts).map(|el| ByteString::from(el.to_xml())),
    })
}

/// The occupant presence in `event` marked as the recipient's own (status code 110), if it is
/// the presence of `user` in one of the rooms this connection occupies (`own_occupants`,
/// `room@service/nick` addresses).
pub fn own_occupant_presence(
    event: &Event,
    hosts: &Hosts,
    user: &str,
    own_occupants: &HashSet<String>,
) -> Option<ByteString> {
    // Cheap checks first: most presences are someone else's.
    let Payload::Occupant(occupant) = &event.payload else {
        return None;
    };
    if occupant.user != user || own_occupants.is_empty() {
        return None;
    }
    let address = hosts.render(&Address::occupant(occupant.room.as_str(), occupant.nick.as_str()));
    if !own_occupants.contains(&address) {
        return None;
    }
    let mut el = occupant_presence(occupant, hosts);
    if let Some(x) = el.children.iter_mut().find_map(|n| match n {
        Node::Element(e) if e.ns == ns::MUC_USER => Some(e),
        _ => None,
    }) {
        x.children.push(Node::Element(Element::new("status", ns::MUC_USER).attr("code", "110")));
    }
    Some(ByteString::from(el.to_xml()))
}

fn stanza(payload: &Payload, hosts: &Hosts) -> Option<Element> {
    let at = |address: &Address| hosts.render(address);
    match payload {
        Payload::Message { message, delayed } => {
            let mut el = stored_message(message, hosts);
            if *delayed {
                let delay = Element::new("delay", ns::DELAY)
                    .attr("from", hosts.domain.as_str())
                    .attr("stamp", format_stamp(message.stamp_ms));
                el = el.child(delay);
            }
            Some(el)
        }
        // XEP-0280 §6: the copy forwarded inside a message from the user's own bare address.
        Payload::Copy { message, direction } => {
            let own = at(&Address::user(
                match direction {
                    CopyDirection::Sent => &message.from_user,
                    CopyDirection::Received => &message.to_user,
                }
                .as_str(),
            ));
            let name = match direction {
                CopyDirection::Sent => "sent",
                CopyDirection::Received => "received",
            };
            let forwarded = Element::new("forwarded", ns::FORWARD).child(stored_message(message, hosts));
            let wrapper = Element::new(name, ns::CARBONS).child(forwarded);
            Some(
                Element::new("message", ns::CLIENT)
                    .attr("type", message.kind.as_str())
                    .attr("from", own)
                    .child(wrapper),
            )
        }
        Payload::Headline { id, body, .. } => Some(
            message_element("headline", hosts.domain.clone(), id.clone()).text_child("body", ns::CLIENT, body.as_str()),
        ),
        Payload::ChatState { id, from, to, state } => Some(
            message_element("chat", at(from), id.clone())
                .attr("to", at(to))
                .child(Element::new(state.as_str(), ns::CHAT_STATES)),
        ),
        // XEP-0333: one marker, for the newest message seen (it marks those before it too).
        Payload::Displayed { id, from, to, message_ids } => message_ids.last().map(|last| {
            message_element("chat", at(from), id.clone())
                .attr("to", at(to))
                .child(Element::new("displayed", ns::CHAT_MARKERS).attr("id", last.as_str()))
        }),
        Payload::StanzaError { id, from, to: _, condition, text } => {
            let error = Element::new("error", ns::CLIENT)
                .attr("type", "cancel")
                .child(Element::new(condition.as_str(), ns::STANZAS))
                .child(Element::new("text", ns::STANZAS).text(text.as_str()));
            Some(message_element("error", at(from), id.clone()).child(error))
        }
        // Contacts' resources come one by one (`StationPresence`); the visible presence is
        // shown only when it says the user is gone (an unavailable from the bare address
        // covers every resource).
        Payload::Presence { from, availability: None } => Some(
            Element::new("presence", ns::CLIENT)
                .attr("from", at(&Address::user(from.as_str())))
                .attr("type", "unavailable"),
        ),
        Payload::Presence { availability: Some(_), .. } => None,
        Payload::StationPresence { from, resource, availability, priority } => {
            let address = at(&Address::station(from.as_str(), Some(resource.clone())));
            let mut el = Element::new("presence", ns::CLIENT).attr("from", address);
            match availability {
                Some(availability) => {
                    if matches!(availability.show, Show::Chat | Show::Away | Show::Xa | Show::Dnd) {
                        el = el.text_child("show", ns::CLIENT, availability.show.as_str());
                    }
                    if let Some(status) = &availability.status {
                        el = el.text_child("status", ns::CLIENT, status.as_str());
                    }
                    if *priority != 0 {
                        el = el.text_child("priority", ns::CLIENT, priority.to_string());
                    }
                }
                None => el.set_attr("type", "unavailable"),
            }
            Some(el)
        }
        Payload::Subscription { kind, from, to } => Some(
            Element::new("presence", ns::CLIENT)
                .attr("from", at(&Address::user(from.as_str())))
                .attr("type", kind.as_str())
                .attr("to", at(&Address::user(to.as_str()))),
        ),
        Payload::RosterPush { push_id, contact, item } => {
            let jid = at(&Address::user(contact.as_str()));
            let mut el = Element::new("item", ns::ROSTER).attr("jid", jid);
            match item {
                Some(row) => {
                    // An empty attribute is not written: no nickname, no `name`.
                    el = el
                        .attr("name", row.nickname.clone().unwrap_or_default())
                        .attr("subscription", row.subscription.name());
                    if row.ask_out {
                        el.set_attr("ask", "subscribe");
                    }
                    for group in &row.groups {
                        el = el.text_child("group", ns::ROSTER, group.as_str());
                    }
                }
                None => el = el.attr("subscription", "remove"),
            }
            let iq = Element::new("iq", ns::CLIENT).attr("type", "set").attr("id", format!("push-{push_id}"));
            Some(iq.child(Element::new("query", ns::ROSTER).child(el)))
        }
        Payload::BlocklistPush { user, on } => {
            let item = Element::new("item", blocking::NS).attr("jid", at(&Address::user(user.as_str())));
            let command = Element::new(if *on { "block" } else { "unblock" }, blocking::NS).child(item);
            let id = format!("block-{}", BLOCKLIST_PUSHES.fetch_add(1, Ordering::Relaxed) + 1);
            Some(Element::new("iq", ns::CLIENT).attr("type", "set").attr("id", id).child(command))
        }
        Payload::Occupant(occupant) => Some(occupant_presence(occupant, hosts)),
        Payload::RoomMessage { message, delayed } => {
            let mut el = room_message(message, hosts);
            if *delayed {
                let delay = Element::new("delay", ns::DELAY)
                    .attr("from", at(&Address::room(message.room.as_str())))
                    .attr("stamp", format_stamp(message.stamp_ms));
                el = el.child(delay);
            }
            Some(el)
        }
        Payload::Invitation(invitation) => Some(invitation_message(invitation, hosts)),
        Payload::RoomPrivate { id, room, from_nick, to, body, .. } => Some(
            message_element("chat", at(&Address::occupant(room.as_str(), from_nick.as_str())), id.clone())
                .attr("to", at(to))
                .text_child("body", ns::CLIENT, body.as_str())
                .child(Element::new("x", ns::MUC_USER)),
        ),
        Payload::RoomDestroyed { room, reason } => {
            let destroy = Element::new("destroy", ns::MUC_USER).text_child("reason", ns::MUC_USER, reason.as_str());
            let x = Element::new("x", ns::MUC_USER)
                .child(Element::new("item", ns::MUC_USER).attr("affiliation", "none").attr("role", "none"))
                .child(destroy);
            Some(
                Element::new("presence", ns::CLIENT)
                    .attr("type", "unavailable")
                    .attr("from", at(&Address::room(room.as_str())))
                    .child(x),
            )
        }
        Payload::Workgroup(event) => workgroup_stanza(event, hosts),
        Payload::DoorReply(_) => None,
    }
}

/// A stored 1:1 message as a `<message>` (live delivery, offline delivery and the archive).
pub fn stored_message(message: &StoredMessage, hosts: &Hosts) -> Element {
    let from = hosts.render(&Address::station(message.from_user.as_str(), message.from_resource.clone()));
    let to = hosts.render(&Address::station(message.to_user.as_str(), message.to_resource.clone()));
    let mut el = message_element(message.kind.as_str(), from, message.id.to_string()).attr("to", to).text_child(
        "body",
        ns::CLIENT,
        message.body.as_str(),
    );
    if let Some(data) = message.data.as_ref().filter(|d| !d.is_null()) {
        // XEP-0335 JSON container: the JSON doors' `data` travels with the message.
        el = el.child(Element::new("json", "urn:xmpp:json:0").text(data.to_string()));
    }
    el
}

/// A room's archived message as the `<message type='groupchat'>` its occupants saw, from
/// the sender's occupant address (live delivery, history on entry and the room's archive).
pub fn room_message(message: &RoomMessage, hosts: &Hosts) -> Element {
    let from = hosts.render(&Address::occupant(message.room.as_str(), message.nick.as_str()));
    message_element("groupchat", from, message.id.to_string()).text_child("body", ns::CLIENT, message.body.as_str())
}

fn message_element(kind: &str, from: String, id: String) -> Element {
    Element::new("message", ns::CLIENT).attr("type", kind).attr("from", from).attr("id", id)
}

fn occupant_presence(occupant: &OccupantPresence, hosts: &Hosts) -> Element {
    let from = hosts.render(&Address::occupant(occupant.room.as_str(), occupant.nick.as_str()));
    let mut el = Element::new("presence", ns::CLIENT).attr("from", from);
    if !occupant.available {
        el.set_attr("type", "unavailable");
    }
    let mut item = Element::new("item", ns::MUC_USER)
        .attr("affiliation", occupant.affiliation.map_or("none", |a| a.as_str()))
        .attr("role", if occupant.available { occupant.role.as_str() } else { "none" });
    if occupant.jid_visible {
        item.set_attr("jid", hosts.render(&Address::user(occupant.user.as_str())));
    }
    if let Some(new_nick) = &occupant.new_nick {
        item.set_attr("nick", new_nick.as_str());
    }
    let mut x = Element::new("x", ns::MUC_USER).child(item);
    if occupant.new_nick.is_some() {
        x = x.child(Element::new("status", ns::MUC_USER).attr("code", "303"));
    }
    if let Some(reason) = &occupant.reason {
        x = x.child(Element::new("status", ns::MUC_USER).attr("code", "307")).text_child(
            "reason",
            ns::MUC_USER,
            reason.as_str(),
        );
    }
    el.child(x)
}

fn invitation_message(invitation: &Invitation, hosts: &Hosts) -> Element {
    let invite = Element::new("invite", ns::MUC_USER).attr("from", hosts.render(&invitation.inviter)).text_child(
        "reason",
        ns::MUC_USER,
        invitation.reason.as_str(),
    );
    let mut x = Element::new("x", ns::MUC_USER).child(invite);
    if let Some(password) = &invitation.password {
        x = x.text_child("password", ns::MUC_USER, password.as_str());
    }
    Element::new("message", ns::CLIENT).attr("from", hosts.render(&Address::room(invitation.room.as_str()))).child(x)
}

fn session(offer_id: &str, workgroup_jid: &str) -> Element {
    Element::new("session", ns::JIVE_WORKGROUP).attr("id", offer_id).attr("workgroup", workgroup_jid)
}

fn workgroup_stanza(event: &WorkgroupEvent, hosts: &Hosts) -> Option<Element> {
    let workgroup_at = |name: &str| hosts.render(&Address::workgroup(name));
    let visitor_at = |name: &str, user_id: &str| hosts.render(&Address::visitor(name, user_id));
    let iq_from =
        |jid: &str, id: &str| Element::new("iq", ns::CLIENT).attr("type", "set").attr("from", jid).attr("id", id);
    match event {
        WorkgroupEvent::Offer { workgroup, offer_id, user_id, metadata, timeout_secs } => {
            let jid = workgroup_at(workgroup);
            let mut values = Element::new("metadata", ns::JIVE_WORKGROUP);
            for (key, value) in metadata {
                values = values
                    .child(Element::new("value", ns::JIVE_WORKGROUP).attr("name", key.clone()).text(value.as_str()));
            }
            let offer = Element::new("offer", ns::WORKGROUP)
                .attr("id", offer_id.as_str())
                .attr("jid", visitor_at(workgroup, user_id))
                .child(values)
                .text_child("timeout", ns::WORKGROUP, timeout_secs.to_string())
                .child(session(offer_id, &jid))
                .child(Element::new("user-request", ns::WORKGROUP));
            Some(iq_from(&jid, offer_id).child(offer))
        }
        WorkgroupEvent::OfferRevoked { workgroup, offer_id, user_id, reason } => {
            let jid = workgroup_at(workgroup);
            let revoke = Element::new("offer-revoke", ns::WORKGROUP)
                .attr("id", offer_id.as_str())
                .attr("jid", visitor_at(workgroup, user_id))
                .text_child("reason", ns::WORKGROUP, reason.as_str())
                .child(session(offer_id, &jid));
            Some(iq_from(&jid, offer_id).child(revoke))
        }
        WorkgroupEvent::QueueStatus { workgroup, position, remaining_secs, .. } => {
            let status = Element::new("queue-status", ns::WORKGROUP)
                .text_child("position", ns::WORKGROUP, position.to_string())
                .text_child("time", ns::WORKGROUP, remaining_secs.to_string());
            Some(Element::new("message", ns::CLIENT).attr("from", workgroup_at(workgroup)).child(status))
        }
        WorkgroupEvent::Departed { workgroup, reason, .. } => {
            let depart =
                Element::new("depart-queue", ns::WORKGROUP).child(Element::new(reason.as_str(), ns::WORKGROUP));
            Some(Element::new("message", ns::CLIENT).attr("from", workgroup_at(workgroup)).child(depart))
        }
        WorkgroupEvent::ChatOffered { workgroup, room, .. } => {
            let invite = Element::new("invite", ns::MUC_USER).attr("from", workgroup_at(workgroup)).text_child(
                "reason",
                ns::MUC_USER,
                "Please join me for a chat.",
            );
            let x = Element::new("x", ns::MUC_USER).child(invite);
            Some(Element::new("message", ns::CLIENT).attr("from", hosts.render(&Address::room(room.as_str()))).child(x))
        }
        WorkgroupEvent::ChatEnded { .. } => None,
        WorkgroupEvent::QueueSummary { workgroup, status, user_count, average_wait_secs, .. } => {
            let notify = Element::new("notify-queue", ns::WORKGROUP)
                .text_child("count", ns::WORKGROUP, user_count.to_string())
                .text_child("time", ns::WORKGROUP, average_wait_secs.to_string())
                .text_child("status", ns::WORKGROUP, status.as_ref());
            Some(Element::new("presence", ns::CLIENT).attr("from", workgroup_at(workgroup)).child(notify))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use switchboard_actors::model::event::{Condition, WorkgroupInvitation};
    use switchboard_actors::model::records::{
        Affiliation, Availability, DepartReason, NoticeKind, RevokeReason, Role, RosterItem, Subscription,
    };
    use switchboard_actors::model::ChatState;

    use super::*;
    use crate::fixtures::{self, hosts, room_message, stored_message};

    fn xml(payload: Payload) -> String {
        frame(&Event::new(payload), &hosts()).map(|f| f.to_string()).unwrap_or_default()
    }

    fn stored(delayed: bool) -> Payload {
        Payload::Message { message: stored_message("a < b"), delayed }
    }

    fn occupant() -> OccupantPresence {
        fixtures::occupant(Role::Participant, Some(Affiliation::Member))
    }

    #[test]
    fn one_to_one_events_render_as_message_stanzas() {
        assert_eq!(
            xml(stored(false)),
            r#"<message xmlns="jabber:client" type="chat" from="ann@d/r1" id="7" to="bob@d"><body>a &lt; b</body><json xmlns="urn:xmpp:json:0">{&quot;n&quot;:1}</json></message>"#
        );
        assert!(xml(stored(true))
            .ends_with(r#"<delay xmlns="urn:xmpp:delay" from="d" stamp="1970-01-01T00:00:01.000Z"/></message>"#));
        assert_eq!(
            xml(Payload::Headline { id: "h1".into(), body: "hi all".into(), stamp_ms: 0 }),
            r#"<message xmlns="jabber:client" type="headline" from="d" id="h1"><body>hi all</body></message>"#
        );
        let state = Payload::ChatState {
            id: "s1".into(),
            from: Address::station("ann", Some("r1".into())),
            to: Address::user("bob"),
            state: ChatState::Paused,
        };
        assert_eq!(
            xml(state),
            r#"<message xmlns="jabber:client" type="chat" from="ann@d/r1" id="s1" to="bob@d"><paused xmlns="http://jabber.org/protocol/chatstates"/></message>"#
        );
        let error = Payload::StanzaError {
            id: "e1".into(),
            from: Address::user("bob"),
            to: Address::user("ann"),
            condition: Condition::ServiceUnavailable,
            text: "bob blocks you".into(),
        };
        assert_eq!(
            xml(error),
            r#"<message xmlns="jabber:client" type="error" from="bob@d" id="e1"><error type="cancel"><service-unavailable xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/><text xmlns="urn:ietf:params:xml:ns:xmpp-stanzas">bob blocks you</text></error></message>"#
        );
    }

    #[test]
    fn presences_and_roster_pushes_render_as_stanzas() {
        let away = Availability { show: Show::Away, status: Some("lunch".into()) };
        let station = |availability, priority| Payload::StationPresence {
            from: "ann".into(),
            resource: "phone".into(),
            availability,
            priority,
        };
        assert_eq!(
            xml(station(Some(away.clone()), 5)),
            r#"<presence xmlns="jabber:client" from="ann@d/phone"><show>away</show><status>lunch</status><priority>5</priority></presence>"#
        );
        let plain = Availability { show: Show::Available, status: None };
        assert_eq!(xml(station(Some(plain), 0)), r#"<presence xmlns="jabber:client" from="ann@d/phone"/>"#);
        assert_eq!(xml(station(None, 0)), r#"<presence xmlns="jabber:client" from="ann@d/phone" type="unavailable"/>"#);
        // The visible presence shows on XMPP only when the user is gone.
        assert_eq!(xml(Payload::Presence { from: "ann".into(), availability: Some(away) }), "");
        assert_eq!(
            xml(Payload::Presence { from: "ann".into(), availability: None }),
            r#"<presence xmlns="jabber:client" from="ann@d" type="unavailable"/>"#
        );
        assert_eq!(
            xml(Payload::Subscription { kind: NoticeKind::Subscribed, from: "bob".into(), to: "ann".into() }),
            r#"<presence xmlns="jabber:client" from="bob@d" type="subscribed" to="ann@d"/>"#
        );
        let mut row = RosterItem::new("ann", "bob");
        row.subscription = Subscription::To;
        row.ask_out = true;
        row.groups = vec!["g".into()];
        assert_eq!(
            xml(Payload::RosterPush { push_id: 2, contact: "bob".into(), item: Some(row) }),
            r#"<iq xmlns="jabber:client" type="set" id="push-2"><query xmlns="jabber:iq:roster"><item jid="bob@d" subscription="to" ask="subscribe"><group>g</group></item></query></iq>"#
        );
        assert_eq!(
            xml(Payload::RosterPush { push_id: 3, contact: "bob".into(), item: None }),
            r#"<iq xmlns="jabber:client" type="set" id="push-3"><query xmlns="jabber:iq:roster"><item jid="bob@d" subscription="remove"/></query></iq>"#
        );
    }

    #[test]
    fn room_events_render_as_muc_stanzas() {
        assert_eq!(
            xml(Payload::Occupant(occupant())),
            r#"<presence xmlns="jabber:client" from="hall@conference.d/Ann"><x xmlns="http://jabber.org/protocol/muc#user"><item affiliation="member" role="participant" jid="ann@d"/></x></presence>"#
        );
        let kicked =
            OccupantPresence { available: false, jid_visible: false, reason: Some("spam".into()), ..occupant() };
        assert_eq!(
            xml(Payload::Occupant(kicked)),
            r#"<presence xmlns="jabber:client" from="hall@conference.d/Ann" type="unavailable"><x xmlns="http://jabber.org/protocol/muc#user"><item affiliation="member" role="none"/><status code="307"/><reason>spam</reason></x></presence>"#
        );
        let message = room_message();
        assert_eq!(
            xml(Payload::RoomMessage { message: message.clone(), delayed: false }),
            r#"<message xmlns="jabber:client" type="groupchat" from="hall@conference.d/Ann" id="9"><body>hello</body></message>"#
        );
        assert_eq!(
            xml(Payload::RoomMessage { message, delayed: true }),
            r#"<message xmlns="jabber:client" type="groupchat" from="hall@conference.d/Ann" id="9"><body>hello</body><delay xmlns="urn:xmpp:delay" from="hall@conference.d" stamp="1970-01-01T00:00:02.000Z"/></message>"#
        );
        let invitation = Invitation {
            room: "hall".into(),
            inviter: Address::user("ann"),
            invitee: "bob".into(),
            reason: "come".into(),
            password: Some("pw".into()),
            workgroup: None,
        };
        assert_eq!(
            xml(Payload::Invitation(invitation)),
            r#"<message xmlns="jabber:client" from="hall@conference.d"><x xmlns="http://jabber.org/protocol/muc#user"><invite from="ann@d"><reason>come</reason></invite><password>pw</password></x></message>"#
        );
        assert_eq!(
            xml(Payload::RoomDestroyed { room: "hall".into(), reason: "bye".into() }),
            r#"<presence xmlns="jabber:client" type="unavailable" from="hall@conference.d"><x xmlns="http://jabber.org/protocol/muc#user"><item affiliation="none" role="none"/><destroy><reason>bye</reason></destroy></x></presence>"#
        );
    }

    #[test]
    fn the_own_occupant_presence_carries_status_110_for_its_occupant_only() {
        let event = Event::new(Payload::Occupant(occupant()));
        let own: HashSet<String> = ["hall@conference.d/Ann".to_owned()].into();
        let mine = own_occupant_presence(&event, &hosts(), "ann", &own).expect("ann's own presence");
        assert!(mine.ends_with(r#"jid="ann@d"/><status code="110"/></x></presence>"#), "{mine}");
        assert_eq!(own_occupant_presence(&event, &hosts(), "bob", &own), None);
        assert_eq!(own_occupant_presence(&event, &hosts(), "ann", &HashSet::new()), None);
        let elsewhere: HashSet<String> = ["lobby@conference.d/Ann".to_owned()].into();
        assert_eq!(own_occupant_presence(&event, &hosts(), "ann", &elsewhere), None);
    }

    #[test]
    fn workgroup_events_render_as_fastpath_stanzas() {
        let offer = WorkgroupEvent::Offer {
            workgroup: "sales".into(),
            offer_id: "o1".into(),
            user_id: "v1".into(),
            metadata: [("question".to_owned(), "?".to_owned())].into(),
            timeout_secs: 20,
        };
        assert_eq!(
            xml(Payload::Workgroup(offer)),
            r#"<iq xmlns="jabber:client" type="set" from="sales@workgroup.d" id="o1"><offer xmlns="http://jabber.org/protocol/workgroup" id="o1" jid="sales@workgroup.d/v1"><metadata xmlns="http://jivesoftware.com/protocol/workgroup"><value name="question">?</value></metadata><timeout>20</timeout><session xmlns="http://jivesoftware.com/protocol/workgroup" id="o1" workgroup="sales@workgroup.d"/><user-request/></offer></iq>"#
        );
        let revoke = WorkgroupEvent::OfferRevoked {
            workgroup: "sales".into(),
            offer_id: "o1".into(),
            user_id: "v1".into(),
            reason: RevokeReason::UserCanceled,
        };
        assert_eq!(
            xml(Payload::Workgroup(revoke)),
            r#"<iq xmlns="jabber:client" type="set" from="sales@workgroup.d" id="o1"><offer-revoke xmlns="http://jabber.org/protocol/workgroup" id="o1" jid="sales@workgroup.d/v1"><reason>User canceled</reason><session xmlns="http://jivesoftware.com/protocol/workgroup" id="o1" workgroup="sales@workgroup.d"/></offer-revoke></iq>"#
        );
        let status = WorkgroupEvent::QueueStatus {
            workgroup: "sales".into(),
            user_id: "v1".into(),
            position: 1,
            remaining_secs: 60,
        };
        assert_eq!(
            xml(Payload::Workgroup(status)),
            r#"<message xmlns="jabber:client" from="sales@workgroup.d"><queue-status xmlns="http://jabber.org/protocol/workgroup"><position>1</position><time>60</time></queue-status></message>"#
        );
        let departed = WorkgroupEvent::Departed {
            workgroup: "sales".into(),
            user_id: "v1".into(),
            reason: DepartReason::DepartureRequested,
        };
        assert_eq!(
            xml(Payload::Workgroup(departed)),
            r#"<message xmlns="jabber:client" from="sales@workgroup.d"><depart-queue xmlns="http://jabber.org/protocol/workgroup"><departure-requested/></depart-queue></message>"#
        );
        let offered = WorkgroupEvent::ChatOffered {
            workgroup: "sales".into(),
            user_id: "v1".into(),
            room: "ab1".into(),
            agent: "ann".into(),
        };
        assert_eq!(
            xml(Payload::Workgroup(offered)),
            r#"<message xmlns="jabber:client" from="ab1@conference.d"><x xmlns="http://jabber.org/protocol/muc#user"><invite from="sales@workgroup.d"><reason>Please join me for a chat.</reason></invite></x></message>"#
        );
        let ended = WorkgroupEvent::ChatEnded { workgroup: "sales".into(), user_id: "v1".into(), room: "ab1".into() };
        assert_eq!(xml(Payload::Workgroup(ended)), "", "a chat's end has no stanza of its own");
        let summary = WorkgroupEvent::QueueSummary {
            workgroup: "sales".into(),
            status: "ready".into(),
            user_count: 0,
            average_wait_secs: 0,
            oldest_entry_ms: None,
        };
        assert_eq!(
            xml(Payload::Workgroup(summary)),
            r#"<presence xmlns="jabber:client" from="sales@workgroup.d"><notify-queue xmlns="http://jabber.org/protocol/workgroup"><count>0</count><time>0</time><status>ready</status></notify-queue></presence>"#
        );
        let invitation = Invitation {
            room: "ab1".into(),
            inviter: Address::workgroup("sales"),
            invitee: "ann".into(),
            reason: "ab1".into(),
            password: None,
            workgroup: Some(WorkgroupInvitation {
                workgroup: "sales".into(),
                user_id: "v1".into(),
                metadata: Default::default(),
            }),
        };
        assert_eq!(
            xml(Payload::Invitation(invitation)),
            r#"<message xmlns="jabber:client" from="ab1@conference.d"><x xmlns="http://jabber.org/protocol/muc#user"><invite from="sales@workgroup.d"><reason>ab1</reason></invite></x></message>"#
        );
    }

    #[test]
    fn a_door_reply_is_written_as_it_was_built_and_rendered_once() {
        let event = Event::new(Payload::DoorReply(Arc::from(r#"<iq xmlns="jabber:client" type="result" id="1"/>"#)));
        let first = frame(&event, &hosts()).unwrap();
        assert_eq!(&*first, r#"<iq xmlns="jabber:client" type="result" id="1"/>"#);
        for _ in 0..100 {
            assert_eq!(frame(&event, &hosts()).unwrap().as_bytes().as_ptr(), first.as_bytes().as_ptr());
        }
    }
}
