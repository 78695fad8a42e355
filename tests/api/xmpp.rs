//! The XMPP doors: raw stanzas over `POST …/xmpp`, and XMPP over WebSocket (RFC 7395)
//! talking to SSE and `/ws` users 1:1 and in rooms, with every refusal.

use std::time::Duration;

use awc::ws;
use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use switchboard::xmpp::xml::{parse_element, Element};

use crate::helpers::*;

const CLIENT: &str = "jabber:client";
const FRAMING: &str = "urn:ietf:params:xml:ns:xmpp-framing";

/// A test XMPP-over-WebSocket client.
pub struct Xmpp {
    framed: actix_codec::Framed<awc::BoxedSocket, ws::Codec>,
    pub jid: String,
}

pub enum Frame {
    Stanza(Element),
    Closed,
}

impl Xmpp {
    pub async fn connect(app: &TestApp) -> Xmpp {
        let (response, framed) = app
            .client
            .ws(app.ws_url("/xmpp-websocket"))
            .protocols(["xmpp"])
            .connect()
            .await
            .unwrap_or_else(|e| panic!("xmpp websocket: {e}"));
        assert_eq!(response.status().as_u16(), 101);
        assert_eq!(response.headers().get("sec-websocket-protocol").unwrap(), "xmpp");
        Xmpp { framed, jid: String::new() }
    }

    /// Connects, authenticates with PLAIN and binds; `jid` is the bound address.
    pub async fn login(app: &TestApp, user: &str, password: &str) -> Xmpp {
        let mut x = Xmpp::connect(app).await;
        x.open().await;
        let features = x.next().await;
        assert!(features.to_xml().contains("PLAIN"), "{}", features.to_xml());
        let success = x.auth(user, password).await;
        assert_eq!(success.name, "success", "{}", success.to_xml());
        x.open().await;
        let features = x.next().await;
        assert!(features.to_xml().contains("urn:ietf:params:xml:ns:xmpp-bind"), "{}", features.to_xml());
        x.send("<iq xmlns='jabber:client' type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>test</resource></bind></iq>").await;
        let bound = x.next().await;
        assert_eq!(bound.get_attr("type"), Some("result"), "{}", bound.to_xml());
        x.jid = bound.elements().next().unwrap().elements().next().unwrap().text_content();
        x
    }

    pub async fn open(&mut self) {
        self.send(&format!("<open xmlns='{FRAMING}' to='localhost' version='1.0'/>")).await;
        let open = self.next().await;
        assert_eq!((open.name.as_str(), open.ns.as_str()), ("open", FRAMING), "{}", open.to_xml());
    }

    pub async fn auth(&mut self, user: &str, password: &str) -> Element {
        let plain = base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"));
        self.send(&format!("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{plain}</auth>")).await;
        self.next().await
    }

    pub async fn send(&mut self, xml: &str) {
        self.framed.send(ws::Message::Text(xml.to_owned().into())).await.expect("xmpp send");
    }

    pub async fn next_within(&mut self, limit: Duration) -> Option<Frame> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let frame = match tokio::time::timeout_at(deadline, self.framed.next()).await {
                Err(_) => return None,
                Ok(None) | Ok(Some(Err(_))) => return Some(Frame::Closed),
                Ok(Some(Ok(frame))) => frame,
            };
            match frame {
                ws::Frame::Text(bytes) => {
                    let text = String::from_utf8(bytes.to_vec()).unwrap();
                    let element = parse_element(&text, 1 << 20, CLIENT)
                        .unwrap_or_else(|e| panic!("the server sent bad XML ({e}): {text}"));
                    return Some(Frame::Stanza(element));
                }
                ws::Frame::Close(_) => return Some(Frame::Closed),
                ws::Frame::Ping(p) => {
                    let _ = self.framed.send(ws::Message::Pong(p)).await;
                }
                _ => {}
            }
        }
    }

    pub async fn next(&mut self) -> Element {
        match self.next_within(WAIT).await {
            Some(Frame::Stanza(e)) => e,
            Some(Frame::Closed) => panic!("xmpp stream closed"),
            None => panic!("no xmpp frame within {WAIT:?}"),
        }
    }

    /// The next element that `matches`, skipping others.
    pub async fn next_where(&mut self, what: &str, matches: impl Fn(&Element) -> bool) -> Element {
        let mut skipped = Vec::new();
        loop {
            match self.next_within(WAIT).await {
                Some(Frame::Stanza(e)) if matches(&e) => return e,
                Some(Frame::Stanza(e)) => skipped.push(e.to_xml()),
                Some(Frame::Closed) => panic!("closed waiting for {what}; saw {skipped:?}"),
                None => panic!("no {what} within {WAIT:?}; saw {skipped:?}"),
            }
        }
    }

    /// Reads until the stream closes; returns what came before.
    pub async fn until_closed(&mut self) -> Vec<Element> {
        let mut seen = Vec::new();
        loop {
            match self.next_within(WAIT).await {
                Some(Frame::Stanza(e)) => seen.push(e),
                Some(Frame::Closed) => return seen,
                None => panic!(
                    "the xmpp stream did not close; saw {:?}",
                    seen.iter().map(Element::to_xml).collect::<Vec<_>>()
                ),
            }
        }
    }
}

/// The resource of `user`'s one station, from the admin session list.
async fn station_resource(app: &TestApp, user: &str) -> String {
    let sessions = app.get(&format!("/restapi/v1/sessions/{user}"), app.admin()).await.json();
    let list = sessions["sessions"].as_array().cloned().unwrap_or_default();
    let address = list[0]["sessionId"].as_str().unwrap_or_else(|| panic!("{sessions}")).to_owned();
    address.rsplit('/').next().unwrap().to_owned()
}

pub(crate) fn is_message_with_body(e: &Element, body: &str) -> bool {
    e.name == "message" && e.child_text("body", CLIENT).as_deref() == Some(body)
}

impl TestApp {
    async fn post_stanza(&self, name: &str, stream: &str, xml: &str) -> Reply {
        self.post_text(&format!("/restapi/v1/chat/{stream}/xmpp"), (name, &format!("pw-{name}")), xml).await
    }
}

#[actix_web::test]
async fn xmpp_and_sse_users_talk_one_to_one_with_delay_for_offline_messages() {
    let app = spawn_app().await;
    for name in ["ann", "bob", "dora"] {
        app.create_user(name).await;
    }
    let bob = app.login("bob").await;
    let mut bob_sse = app.sse("bob", &format!("?stream={bob}")).await;
    // Ann is offline: this waits in the store and arrives with <delay>.
    assert_eq!(app.send("bob", &bob, "ann", "while you were out").await.status, 200);

    let mut ann = Xmpp::login(&app, "ann", "pw-ann").await;
    assert!(ann.jid.starts_with("ann@localhost/"), "{}", ann.jid);
    let offline = ann.next_where("the offline message", |e| is_message_with_body(e, "while you were out")).await;
    assert!(offline.get_attr("from").unwrap().starts_with("bob@localhost/"));
    assert!(offline.find("delay", "urn:xmpp:delay").is_some(), "{}", offline.to_xml());

    // SSE → XMPP, live: no delay.
    assert_eq!(app.send("bob", &bob, "ann", "live one").await.status, 200);
    let live = ann.next_where("the live message", |e| is_message_with_body(e, "live one")).await;
    assert_eq!(live.get_attr("type"), Some("chat"));
    assert!(live.find("delay", "urn:xmpp:delay").is_none());

    // XMPP → SSE, with a spoofed `from` that the server replaces.
    ann.send("<message xmlns='jabber:client' to='bob@localhost' from='mallory@localhost/x' type='chat' id='m1'><body>hi &amp; bye</body></message>").await;
    let got = next_of(&mut bob_sse, "chatapi.chat", "chat").await;
    assert_eq!(got.data["body"], "hi & bye");
    assert_eq!(got.data["from"], ann.jid.as_str());

    // A chat state travels, and a presence change reaches the contact.
    ann.send("<message xmlns='jabber:client' to='bob@localhost' type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>").await;
    let state = next_of(&mut bob_sse, "chatapi.chat", "chat").await;
    assert_eq!(state.data["state"], "composing");

    // Roster over XMPP: set, push, get.
    ann.send("<iq xmlns='jabber:client' type='set' id='r1'><query xmlns='jabber:iq:roster'><item jid='bob@localhost' name='Bobby'><group>work</group></item></query></iq>").await;
    // The push and the result, in either order.
    let first = ann.next_where("the roster push or result", |e| e.name == "iq").await;
    let second = ann.next_where("the roster push or result", |e| e.name == "iq").await;
    let (push, result) = if first.get_attr("type") == Some("set") { (first, second) } else { (second, first) };
    assert!(push.to_xml().contains("Bobby"), "{}", push.to_xml());
    assert_eq!((result.get_attr("type"), result.get_attr("id")), (Some("result"), Some("r1")));
    ann.send("<iq xmlns='jabber:client' type='get' id='r2'><query xmlns='jabber:iq:roster'/></iq>").await;
    let roster = ann.next_where("the roster", |e| e.get_attr("id") == Some("r2")).await;
    let item = roster.elements().next().unwrap().elements().next().expect("one item");
    assert_eq!(
        (item.get_attr("jid"), item.get_attr("name"), item.get_attr("ask")),
        (Some("bob@localhost"), Some("Bobby"), Some("subscribe"))
    );
    assert_eq!(item.child_text("group", "jabber:iq:roster").as_deref(), Some("work"));
    let asked = next_of(&mut bob_sse, "chatapi.presence", "subscribe").await;
    assert_eq!(asked.data["from"], "ann@localhost");

    // Presence broadcast both ways between mutual contacts (the admin makes them `both`).
    let r = app
        .post_json(
            "/restapi/v1/users/ann/roster",
            app.admin(),
            &json!({"jid": "dora@localhost", "subscriptionType": 3}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let dora = app.login("dora").await;
    let mut dora_sse = app.sse("dora", &format!("?stream={dora}")).await;
    ann.send("<presence xmlns='jabber:client'><show>away</show><status>lunch</status></presence>").await;
    let away = loop {
        let e = dora_sse.next_presence("available", "ann@localhost").await;
        if e.data["show"] == "away" {
            break e;
        }
    };
    assert_eq!(away.data["status"], "lunch");
    let r = app.post_text(&format!("/restapi/v1/chat/{dora}/presence?show=dnd"), ("dora", "pw-dora"), "").await;
    assert_eq!(r.status, 200, "{}", r.text());
    // XMPP sees the station itself (RFC 6121 §4.4): from Dora's full address.
    let dora_station = format!("dora@localhost/{}", station_resource(&app, "dora").await);
    let seen = ann
        .next_where("Dora's presence", |e| {
            e.name == "presence"
                && e.get_attr("from") == Some(dora_station.as_str())
                && e.child_text("show", CLIENT).as_deref() == Some("dnd")
        })
        .await;
    assert!(seen.get_attr("type").is_none(), "{}", seen.to_xml());

    // Ping and disco.
    ann.send("<iq xmlns='jabber:client' type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>").await;
    let pong = ann.next_where("the ping result", |e| e.get_attr("id") == Some("p1")).await;
    assert_eq!(pong.get_attr("type"), Some("result"));
    ann.send("<iq xmlns='jabber:client' type='get' id='d1' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>").await;
    let info = ann.next_where("disco#info", |e| e.get_attr("id") == Some("d1")).await;
    assert!(info.to_xml().contains("urn:xmpp:ping"), "{}", info.to_xml());

    // Stanza errors: an unknown recipient, an unsupported query, a message without body.
    ann.send("<message xmlns='jabber:client' to='nobody@localhost' type='chat' id='e1'><body>x</body></message>").await;
    let error = ann.next_where("an error", |e| e.get_attr("id") == Some("e1")).await;
    assert_eq!(error.get_attr("type"), Some("error"));
    assert!(error.to_xml().contains("item-not-found"), "{}", error.to_xml());
    ann.send("<iq xmlns='jabber:client' type='get' id='e2'><query xmlns='jabber:iq:version'/></iq>").await;
    let error = ann.next_where("an error", |e| e.get_attr("id") == Some("e2")).await;
    assert!(error.to_xml().contains("service-unavailable"), "{}", error.to_xml());
    ann.send("<message xmlns='jabber:client' to='bob@localhost' type='chat' id='e3'/>").await;
    let error = ann.next_where("an error", |e| e.get_attr("id") == Some("e3")).await;
    assert!(error.to_xml().contains("bad-request"), "{}", error.to_xml());

    // A clean close.
    ann.send(&format!("<close xmlns='{FRAMING}'/>")).await;
    let closing = ann.until_closed().await;
    assert!(closing.iter().any(|e| e.name == "close"));
}

#[actix_web::test]
async fn xmpp_and_json_users_share_a_room() {
    let app = spawn_app().await;
    for name in ["ann", "bob", "carl"] {
        app.create_user(name).await;
    }
    let created = app
        .post_json("/restapi/v1/chatrooms", app.admin(), &json!({"roomName": "lounge", "canOccupantsInvite": true}))
        .await;
    assert_eq!(created.status, 201, "{}", created.text());
    let bob = app.login("bob").await;
    let mut bob_sse = app.sse("bob", &format!("?stream={bob}")).await;
    let (u, p) = ("bob", "pw-bob");
    let joined =
        reply(app.client.put(app.url(&format!("/restapi/v1/chat/{bob}/rooms/lounge"))).basic_auth(u, p).send().await)
            .await;
    assert_eq!(joined.status, 200, "{}", joined.text());
    let said = app
        .post_json(&format!("/restapi/v1/chat/{bob}/rooms/lounge"), (u, p), &json!({"body": "before you came"}))
        .await;
    assert_eq!(said.status, 200);
    let mut carl_ws = app.ws("carl", "").await;

    let mut ann = Xmpp::login(&app, "ann", "pw-ann").await;
    ann.send("<presence xmlns='jabber:client' to='lounge@conference.localhost/annie'><x xmlns='http://jabber.org/protocol/muc'/></presence>").await;
    let own = ann
        .next_where("own presence", |e| {
            e.name == "presence" && e.get_attr("from") == Some("lounge@conference.localhost/annie")
        })
        .await;
    assert!(own.to_xml().contains("code=\"110\""), "self-presence: {}", own.to_xml());
    let history = ann.next_where("history", |e| is_message_with_body(e, "before you came")).await;
    assert_eq!(history.get_attr("type"), Some("groupchat"));
    assert!(history.find("delay", "urn:xmpp:delay").is_some());
    bob_sse.next_presence("available", "lounge@conference.localhost/annie").await;

    // XMPP → room → SSE; SSE → room → XMPP.
    ann.send("<message xmlns='jabber:client' to='lounge@conference.localhost' type='groupchat'><body>hello room</body></message>").await;
    loop {
        let e = next_of(&mut bob_sse, "chatapi.muc", "groupchat").await;
        if e.data["body"] == "hello room" {
            assert_eq!(e.data["from"], "lounge@conference.localhost/annie");
            break;
        }
    }
    ann.next_where("own echo", |e| is_message_with_body(e, "hello room")).await;
    // Posts sent back to back (each handed over without waiting for the previous commit)
    // are archived and delivered in the order sent.
    for i in 0..5 {
        ann.send(&format!(
            "<message xmlns='jabber:client' to='lounge@conference.localhost' type='groupchat'><body>burst {i}</body></message>"
        ))
        .await;
    }
    let mut burst = Vec::new();
    while burst.len() < 5 {
        let e = next_of(&mut bob_sse, "chatapi.muc", "groupchat").await;
        if let Some(body) = e.data["body"].as_str().filter(|b| b.starts_with("burst ")) {
            burst.push(body.to_owned());
        }
    }
    assert_eq!(burst, (0..5).map(|i| format!("burst {i}")).collect::<Vec<_>>());
    assert_eq!(
        app.post_json(&format!("/restapi/v1/chat/{bob}/rooms/lounge"), (u, p), &json!({"body": "hi annie"}))
            .await
            .status,
        200
    );
    let got = ann.next_where("bob's message", |e| is_message_with_body(e, "hi annie")).await;
    assert_eq!(got.get_attr("from"), Some("lounge@conference.localhost/bob"));

    // A mediated invitation from XMPP reaches a /ws user.
    ann.send("<message xmlns='jabber:client' to='lounge@conference.localhost'><x xmlns='http://jabber.org/protocol/muc#user'><invite to='carl@localhost'><reason>join us</reason></invite></x></message>").await;
    let invitation = next_ws_of(&mut carl_ws, "chatapi.muc", "invitationReceived").await;
    assert_eq!(invitation["reason"], "join us");

    // Not an occupant of another room: a stanza error.
    ann.send("<message xmlns='jabber:client' to='other@conference.localhost' type='groupchat' id='g1'><body>x</body></message>").await;
    let error = ann.next_where("an error", |e| e.get_attr("id") == Some("g1")).await;
    assert_eq!(error.get_attr("type"), Some("error"));

    // A private message to one occupant (XEP-0045 §7.5): XMPP → SSE, and only there.
    ann.send("<message xmlns='jabber:client' to='lounge@conference.localhost/bob' type='chat' id='pm1'><body>just for you</body></message>").await;
    let private = loop {
        let e = next_of(&mut bob_sse, "chatapi.muc", "chat").await;
        if e.data["body"] == "just for you" {
            break e;
        }
    };
    assert_eq!(
        (private.data["from"].as_str(), private.data["private"].as_bool(), private.data["id"].as_str()),
        (Some("lounge@conference.localhost/annie"), Some(true), Some("pm1"))
    );
    assert_eq!(private.data["room"], "lounge@conference.localhost");
    // An XMPP occupant receives one as a chat message from the sender's occupant address.
    let mut dan = Xmpp::login(&app, "carl", "pw-carl").await;
    dan.send("<presence xmlns='jabber:client' to='lounge@conference.localhost/carl'><x xmlns='http://jabber.org/protocol/muc'/></presence>").await;
    dan.next_where("own presence", |e| {
        e.name == "presence" && e.get_attr("from") == Some("lounge@conference.localhost/carl")
    })
    .await;
    ann.send(
        "<message xmlns='jabber:client' to='lounge@conference.localhost/carl' type='chat'><body>psst</body></message>",
    )
    .await;
    let got = dan.next_where("the private message", |e| is_message_with_body(e, "psst")).await;
    assert_eq!((got.get_attr("from"), got.get_attr("type")), (Some("lounge@conference.localhost/annie"), Some("chat")));
    assert!(got.find("x", "http://jabber.org/protocol/muc#user").is_some(), "{}", got.to_xml());
    // No such occupant; and a room whose allowPM is none refuses.
    ann.send("<message xmlns='jabber:client' to='lounge@conference.localhost/nobody' type='chat' id='pm2'><body>x</body></message>").await;
    let error = ann.next_where("an error", |e| e.get_attr("id") == Some("pm2")).await;
    assert!(error.to_xml().contains("there is no occupant"), "{}", error.to_xml());
    let r = app
        .put_json(
            "/restapi/v1/chatrooms/lounge",
            app.admin(),
            &json!({"roomName": "lounge", "allowPM": "none", "canOccupantsInvite": true}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    ann.send("<message xmlns='jabber:client' to='lounge@conference.localhost/bob' type='chat' id='pm3'><body>x</body></message>").await;
    let error = ann.next_where("an error", |e| e.get_attr("id") == Some("pm3")).await;
    assert!(error.to_xml().contains("not-allowed") || error.to_xml().contains("forbidden"), "{}", error.to_xml());

    // Leaving.
    ann.send("<presence xmlns='jabber:client' to='lounge@conference.localhost/annie' type='unavailable'/>").await;
    bob_sse.next_presence("unavailable", "lounge@conference.localhost/annie").await;
}

#[actix_web::test]
async fn the_xmpp_websocket_refuses_bad_streams_without_affecting_others() {
    let app = spawn_app_with(|c| c.limits.max_body_bytes = 4096).await;
    for name in ["ann", "bob"] {
        app.create_user(name).await;
    }
    let mut bob = Xmpp::login(&app, "bob", "pw-bob").await;

    // Without the subprotocol: refused before the upgrade.
    let refused = app.client.ws(app.ws_url("/xmpp-websocket")).connect().await;
    assert!(refused.is_err());

    // A wrong password: SASL failure, and the third one closes the stream.
    let mut x = Xmpp::connect(&app).await;
    x.open().await;
    x.next().await;
    for _ in 0..2 {
        let failure = x.auth("ann", "wrong").await;
        assert_eq!(failure.name, "failure");
        assert!(failure.to_xml().contains("not-authorized"));
    }
    x.auth("ann", "wrong").await;
    let closing = x.until_closed().await;
    assert!(closing.iter().any(|e| e.to_xml().contains("not-authorized")), "{:?}", closing);

    // A token from /restapi/v1/auth/token works as the PLAIN password; someone else's does not.
    let token = app
        .post_json("/restapi/v1/auth/token", ("ann", "pw-ann"), &json!({"username": "ann", "password": "pw-ann"}))
        .await
        .json()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut with_token = Xmpp::login(&app, "ann", &token).await;
    let mut x = Xmpp::connect(&app).await;
    x.open().await;
    x.next().await;
    assert_eq!(x.auth("bob", &token).await.name, "failure");

    // Stanzas before authentication end the stream.
    let mut x = Xmpp::connect(&app).await;
    x.open().await;
    x.next().await;
    x.send("<message xmlns='jabber:client' to='bob@localhost'><body>x</body></message>").await;
    assert!(x.until_closed().await.iter().any(|e| e.to_xml().contains("not-authorized")));

    // Malformed XML, a DTD, an oversized stanza: a stream error, then the close.
    for (bad, condition) in [
        ("<message><body>unclosed</message>".to_owned(), "not-well-formed"),
        ("<!DOCTYPE x [<!ENTITY a 'b'>]><message/>".to_owned(), "restricted-xml"),
        (
            format!("<message xmlns='jabber:client' to='bob@localhost'><body>{}</body></message>", "x".repeat(5000)),
            "policy-violation",
        ),
    ] {
        let mut x = Xmpp::login(&app, "ann", "pw-ann").await;
        x.send(&bad).await;
        let closing = x.until_closed().await;
        assert!(
            closing.iter().any(|e| e.to_xml().contains(condition)),
            "{condition}: {:?}",
            closing.iter().map(Element::to_xml).collect::<Vec<_>>()
        );
    }
    // A wrong domain.
    let mut x = Xmpp::connect(&app).await;
    x.send(&format!("<open xmlns='{FRAMING}' to='elsewhere.example' version='1.0'/>")).await;
    assert!(x.until_closed().await.iter().any(|e| e.to_xml().contains("host-unknown")));

    // Bob's stream was never affected.
    with_token
        .send("<message xmlns='jabber:client' to='bob@localhost' type='chat'><body>still here?</body></message>")
        .await;
    bob.next_where("the message", |e| is_message_with_body(e, "still here?")).await;
}

#[actix_web::test]
async fn raw_stanzas_posted_over_http_reach_sse_ws_and_xmpp_users() {
    let app = spawn_app().await;
    for name in ["ann", "bob", "carl"] {
        app.create_user(name).await;
    }
    let ann = app.login("ann").await;
    let mut ann_sse = app.sse("ann", &format!("?stream={ann}")).await;
    let bob = app.login("bob").await;
    let mut bob_sse = app.sse("bob", &format!("?stream={bob}")).await;
    let mut bob_ws = app.ws("bob", &format!("?stream={bob}")).await;
    let mut carl = Xmpp::login(&app, "carl", "pw-carl").await;

    // A message, with a spoofed from: 202, and it arrives from Ann's stream station.
    let r = app
        .post_stanza(
            "ann",
            &ann,
            "<message to='bob@localhost' from='carl@localhost/x' type='chat'><body>over http</body></message>",
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let got = next_of(&mut bob_sse, "chatapi.chat", "chat").await;
    assert_eq!(got.data["body"], "over http");
    assert!(got.data["from"].as_str().unwrap().starts_with("ann@localhost/"));
    assert_ne!(got.data["from"], "carl@localhost/x");
    let got = next_ws_of(&mut bob_ws, "chatapi.chat", "chat").await;
    assert_eq!(got["body"], "over http");
    let r =
        app.post_stanza("ann", &ann, "<message to='carl@localhost' type='chat'><body>to xmpp</body></message>").await;
    assert_eq!(r.status, 202);
    carl.next_where("the message", |e| is_message_with_body(e, "to xmpp")).await;

    // An IQ: the result comes back on Ann's station as chatapi.xmpp.
    let r = app.post_stanza("ann", &ann, "<iq type='get' id='ping1'><ping xmlns='urn:xmpp:ping'/></iq>").await;
    assert_eq!(r.status, 202);
    let result = loop {
        let e = ann_sse.next().await;
        if e.event == "chatapi.xmpp" {
            break e;
        }
    };
    let raw = base64::engine::general_purpose::STANDARD.decode(result.data["xmpp"].as_str().unwrap()).unwrap();
    let result = parse_element(std::str::from_utf8(&raw).unwrap(), 4096, CLIENT).unwrap();
    assert_eq!((result.get_attr("type"), result.get_attr("id")), (Some("result"), Some("ping1")));

    // Presence to a room joins it; groupchat posts.
    let r = app.post_stanza("ann", &ann, "<presence to='hall@conference.localhost/ann'/>").await;
    assert_eq!(r.status, 202, "{}", r.text());
    let r = app
        .post_stanza(
            "ann",
            &ann,
            "<message to='hall@conference.localhost' type='groupchat'><body>posted</body></message>",
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    next_of(&mut ann_sse, "chatapi.muc", "groupchat").await;

    // A subscription request over HTTP reaches the contact.
    let r = app.post_stanza("ann", &ann, "<presence to='bob@localhost' type='subscribe'/>").await;
    assert_eq!(r.status, 202, "{}", r.text());
    bob_sse.next_presence("subscribe", "ann@localhost").await;

    // Bad input is answered.
    for (bad, status, needle) in [
        ("<message to='bob@localhost'><body>x</body>", 400, "not closed"),
        ("<message to='bob@localhost'/><message to='bob@localhost'/>", 400, "one root"),
        ("<!DOCTYPE m [<!ENTITY big 'x'>]><message to='bob@localhost'><body>&big;</body></message>", 400, "DTD"),
        ("<stream:features xmlns:stream='http://etherx.jabber.org/streams'/>", 400, "not a stanza"),
        ("<message to='nobody@localhost' type='chat'><body>x</body></message>", 404, "nobody"),
        ("<message to='bob@localhost' type='chat'/>", 400, "<body>"),
        ("", 400, "root"),
    ] {
        let r = app.post_stanza("ann", &ann, bad).await;
        assert_eq!(r.status, status, "{bad}: {}", r.text());
        assert!(r.message().contains(needle), "{bad}: {}", r.message());
    }
    let huge = format!("<message to='bob@localhost' type='chat'><body>{}</body></message>", "x".repeat(70_000));
    assert_eq!(app.post_stanza("ann", &ann, &huge).await.status, 413);
    // Someone else's stream.
    assert_eq!(app.post_stanza("bob", &ann, "<presence/>").await.status, 403);
    bob_sse.assert_quiet_except(Duration::from_millis(200), &["chatapi.presence"]).await;
}

#[actix_web::test]
async fn workgroup_iqs_queue_a_signed_in_user_and_answer_offers() {
    let app = spawn_app().await;
    for name in ["ann", "carl"] {
        app.create_user(name).await;
    }
    let r = app.post_json("/restapi/v1/workgroups", app.admin(), &json!({"name": "desk", "members": ["ann"]})).await;
    assert_eq!(r.status, 201);
    let ann = app.login("ann").await;
    let mut ann_sse = app.sse("ann", &format!("?stream={ann}")).await;
    let mut carl = Xmpp::login(&app, "carl", "pw-carl").await;
    const JOIN: &str = "<iq xmlns='jabber:client' type='set' id='q1' to='desk@workgroup.localhost'><join-queue xmlns='http://jabber.org/protocol/workgroup'><queue-notifications/><metadata xmlns='http://jivesoftware.com/protocol/workgroup'><value name='question'>where is my order?</value></metadata></join-queue></iq>";

    // No agent online yet: service-unavailable.
    carl.send(JOIN).await;
    let refused = carl.next_where("the join result", |e| e.get_attr("id") == Some("q1")).await;
    assert!(refused.to_xml().contains("service-unavailable"), "{}", refused.to_xml());

    let r = app
        .post_stanza(
            "ann",
            &ann,
            "<iq type='set' id='x'><offer-accept xmlns='http://jabber.org/protocol/workgroup' id='desk-99'/></iq>",
        )
        .await;
    assert_eq!(r.status, 404, "an unknown offer: {}", r.text());
    assert!(r.message().contains("desk-99"), "{}", r.message());
    assert_eq!(
        reply(
            app.client
                .post(app.url(&format!("/restapi/v1/chat/{ann}/assists/desk")))
                .basic_auth("ann", "pw-ann")
                .send()
                .await
        )
        .await
        .status,
        200
    );

    carl.send(JOIN).await;
    let joined = carl.next_where("the join result", |e| e.get_attr("id") == Some("q1")).await;
    assert_eq!(joined.get_attr("type"), Some("result"), "{}", joined.to_xml());
    let status = carl
        .next_where("queue status", |e| e.find("queue-status", "http://jabber.org/protocol/workgroup").is_some())
        .await;
    assert!(status.to_xml().contains("<position>1</position>"), "{}", status.to_xml());
    let offer = loop {
        let e = next_of(&mut ann_sse, "chatapi.assist", "offerReceived").await;
        if e.data["userID"] == "carl@localhost" {
            break e.data;
        }
    };
    assert_eq!(offer["metaData"]["question"], "where is my order?");

    // Departing revokes Ann's offer.
    carl.send("<iq xmlns='jabber:client' type='set' id='q2' to='desk@workgroup.localhost'><depart-queue xmlns='http://jabber.org/protocol/workgroup'/></iq>").await;
    let departed = carl.next_where("the depart result", |e| e.get_attr("id") == Some("q2")).await;
    assert_eq!(departed.get_attr("type"), Some("result"), "{}", departed.to_xml());
    let revoked = next_of(&mut ann_sse, "chatapi.assist", "offerRevoked").await;
    assert_eq!(revoked.data["reason"], "User canceled");

    // Again; Ann accepts with a raw IQ; Carl is invited and enters the room as himself.
    carl.send(&JOIN.replace("q1", "q3")).await;
    carl.next_where("the join result", |e| e.get_attr("id") == Some("q3")).await;
    let offer = loop {
        let e = next_of(&mut ann_sse, "chatapi.assist", "offerReceived").await;
        if e.data["userID"] == "carl@localhost" {
            break e.data;
        }
    };
    let accept = format!(
        "<iq type='set' id='a1'><offer-accept xmlns='http://jabber.org/protocol/workgroup' id='{}'/></iq>",
        offer["id"].as_str().unwrap()
    );
    assert_eq!(app.post_stanza("ann", &ann, &accept).await.status, 202);
    let invite =
        carl.next_where("the room invitation", |e| e.find("x", "http://jabber.org/protocol/muc#user").is_some()).await;
    let room = invite.get_attr("from").unwrap().to_owned();
    assert!(room.ends_with("@conference.localhost"), "{}", invite.to_xml());
    carl.send(&format!("<presence xmlns='jabber:client' to='{room}/carl'/>")).await;
    let own = carl
        .next_where("own presence", |e| e.name == "presence" && e.get_attr("from") == Some(&format!("{room}/carl")))
        .await;
    assert!(own.to_xml().contains("code=\"110\""), "{}", own.to_xml());
}
