//! Ozeki's JSON client API (`index.php?srv=chatserver&api=…`): station keys from the admin
//! API, sign-in, signed calls, friends, conversations crossing into XMPP and SSE and back,
//! paging both ways, notifications, reports as read markers, per-user settings, and every
//! refusal.

use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use switchboard::ozeki::render::ozeki_time;
use switchboard_actors::clock::now_ms;
use switchboard_actors::model::ozeki::{ConversationId, OzekiUserId};

use crate::helpers::*;
use crate::xmpp::Xmpp;

/// A signed-in Ozeki station.
struct Station {
    station: String,
    apikey: String,
    userid: String,
}

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

fn user_id(email: &str) -> String {
    OzekiUserId::from_email(email).unwrap().to_string()
}

async fn issue_key(app: &TestApp, user: &str, station: &str) -> Reply {
    app.post_json(&format!("/restapi/v1/users/{user}/ozeki/apikeys"), app.admin(), &json!({ "station": station })).await
}

async fn station(app: &TestApp, user: &str, station: &str) -> Station {
    let r = issue_key(app, user, station).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let apikey = r.json()["apikey"].as_str().unwrap().to_owned();
    assert_eq!(r.json()["stationid"], station);
    Station { station: station.into(), apikey, userid: user_id(&format!("{user}@example.org")) }
}

async fn raw_call(app: &TestApp, path_and_query: &str, headers: &[(&str, String)], body: &str) -> Reply {
    let mut request = app.client.post(app.url(path_and_query)).insert_header(("content-type", "application/json"));
    for (name, value) in headers {
        request = request.insert_header((*name, value.clone()));
    }
    reply(request.send_body(body.to_owned()).await).await
}

fn signature(apikey: &str, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(&Sha256::digest(apikey.as_bytes())).unwrap();
    mac.update(body.as_bytes());
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

impl Station {
    fn headers(&self, body: &str) -> Vec<(&'static str, String)> {
        vec![
            ("Ozeki-Station", self.station.clone()),
            ("Ozeki-User", self.userid.clone()),
            ("Ozeki-Signature", signature(&self.apikey, body)),
        ]
    }

    /// A signed call; the reply's JSON, which must say OK.
    async fn call(&self, app: &TestApp, api: &str, body: Value) -> Value {
        let reply = self.try_call(app, api, body).await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        let value = reply.json();
        assert_eq!(value["status"], "OK", "{api}: {value}");
        value
    }

    async fn try_call(&self, app: &TestApp, api: &str, mut body: Value) -> Reply {
        body["clientversioncode"] = json!(3);
        body["timestamp"] = json!(ozeki_time(now_ms()));
        let body = body.to_string();
        let srv = if api == "workspace" { "chatowner" } else { "chatserver" };
        raw_call(app, &format!("/ozeki/index.php?srv={srv}&api={api}"), &self.headers(&body), &body).await
    }
}

async fn befriend(app: &TestApp, a: &str, b: &str) {
    let body = json!({"jid": format!("{b}@localhost"), "subscriptionType": 3});
    let r = app.post_json(&format!("/restapi/v1/users/{a}/roster"), app.admin(), &body).await;
    assert_eq!(r.status, 201, "{}", r.text());
}

fn ozeki_message(id: &str, text: &str, valid_ms: i64) -> String {
    json!({"ID": id, "Type": "Message", "Created": ozeki_time(now_ms()), "ValidUntil": ozeki_time(now_ms() + valid_ms), "Data": b64(text)})
        .to_string()
}

fn ids_of(messages: &Value) -> Vec<String> {
    messages.as_array().unwrap().iter().map(|m| m["ID"].as_str().unwrap().to_owned()).collect()
}

#[actix_web::test]
async fn an_ozeki_client_talks_with_xmpp_and_sse_users_pages_both_ways_and_polls_for_changes() {
    let app = spawn_app().await;
    for name in ["ann", "bob"] {
        app.create_user(name).await;
    }
    befriend(&app, "ann", "bob").await;
    let ann = station(&app, "ann", "annphone").await;
    let bob_station = station(&app, "bob", "bobdesk").await;

    // Sign-in with the key.
    let body = json!({"action": "login", "apikey": ann.apikey}).to_string();
    let r =
        raw_call(&app, "/ozeki/index.php?srv=chatserver&api=chatlogin", &[("Ozeki-Station", "annphone".into())], &body)
            .await;
    let login = r.json();
    assert_eq!(login["status"], "OK", "{login}");
    assert_eq!(login["errormessage"], "");
    assert_eq!(login["userid"], ann.userid);
    assert_eq!(login["registration"], "true");
    assert_eq!(login["fullname"], "ANN");
    for field in ["server", "rsakey", "nick", "listeners"] {
        assert!(login.get(field).is_some(), "{field} in {login}");
    }
    assert_eq!(login["urls"]["login"], app.url("/ozeki/index.php?srv=chatserver&api=chatlogin"));
    assert_eq!(login["urls"]["notification"], app.url("/ozeki/index.php?srv=chatserver&api=chatnotification"));
    assert_eq!(login["listeners"]["ws"], app.ws_url("/ws"));

    // Bob is on XMPP and SSE.
    let mut bob_xmpp = Xmpp::login(&app, "bob", "pw-bob").await;
    bob_xmpp.send("<presence xmlns='jabber:client'/>").await;
    let bob_stream = app.login("bob").await;
    let mut bob_sse = app.sse("bob", &format!("?stream={bob_stream}")).await;

    let friends = ann.call(&app, "chatfriends", json!({"action": "list"})).await;
    assert_eq!(friends["friends"], json!({ bob_station.userid.clone(): "BOB" }));
    assert_eq!(friends["availabilities"][0]["friendid"], bob_station.userid);
    assert_eq!(friends["availabilities"][0]["availability"], "available");

    let conversation = ConversationId::between(
        &OzekiUserId::parse(&ann.userid).unwrap(),
        &OzekiUserId::parse(&bob_station.userid).unwrap(),
    )
    .to_string();
    let added = ann
        .call(
            &app,
            "chatconversation",
            json!({"action": "add", "conversationid": conversation, "instance": "x",
            "message": ozeki_message("guid-1", "Hello Bob", 7 * 86_400_000)}),
        )
        .await;
    assert_eq!(added["message"]["ID"], "guid-1");
    assert!(added["message"].get("Data").is_none(), "the reply echoes the message without Data");

    let got = bob_xmpp
        .next_where("ann's message", |e| e.name == "message" && e.child_text("body", "jabber:client").is_some())
        .await;
    assert_eq!(got.child_text("body", "jabber:client").as_deref(), Some("Hello Bob"));
    assert_eq!(got.get_attr("from"), Some("ann@localhost/annphone"), "the Ozeki station is a station");
    let got = next_of(&mut bob_sse, "chatapi.chat", "chat").await;
    assert_eq!(got.data["body"], "Hello Bob");
    assert_eq!(got.data["data"]["ozeki"]["ID"], "guid-1");
    assert_eq!(got.data["data"]["ozeki"]["Data"], b64("Hello Bob"));

    // The first poll names every contact's availability; the answers name the conversation.
    let first_poll = ann.call(&app, "chatnotification", json!({"action": "download"})).await;
    assert_eq!(first_poll["friendavailabilitesof"], json!([bob_station.userid]));
    bob_xmpp
        .send("<message xmlns='jabber:client' to='ann@localhost' type='chat'><body>Reply over XMPP</body></message>")
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(app.send("bob", &bob_stream, "ann", "Reply over SSE's REST").await.status, 200);
    let poll = ann.call(&app, "chatnotification", json!({"action": "download"})).await;
    assert_eq!(poll["conversationchangedof"], json!([conversation]), "{poll}");
    assert_eq!(poll["friendavailabilitesof"], json!([]), "told already");

    let download = ann
        .call(
            &app,
            "chatconversation",
            json!({"action": "download", "conversationid": conversation, "instance": "x",
            "firstmessagedate": "", "firstmessageid": "guid-1", "firstreportdate": "", "firstreportid": ""}),
        )
        .await;
    let messages = download["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 3, "{download}");
    assert_eq!(messages[0]["ID"], "guid-1");
    assert_eq!(messages[0]["Data"], b64("Hello Bob"), "as the client added it");
    assert_eq!(messages[1]["Data"], b64("Reply over XMPP"), "another door's body, base64");
    assert_eq!(messages[2]["Data"], b64("Reply over SSE's REST"));
    let poll = ann.call(&app, "chatnotification", json!({"action": "download"})).await;
    assert_eq!(poll["conversationchangedof"], json!([]), "downloaded: not named again");

    // Paging backwards.
    for i in 1..=4 {
        assert_eq!(app.send("bob", &bob_stream, "ann", &format!("page {i}")).await.status, 200);
    }
    let partial = |last_id: String, last_date: String| {
        let (app, ann, conversation) = (&app, &ann, conversation.clone());
        async move {
            ann.call(
                app,
                "chatconversation",
                json!({"action": "downloadpartial", "conversationid": conversation,
                "instance": "x", "lastmessagedate": last_date, "lastmessageid": last_id,
                "lastreportdate": "", "lastreportid": "", "limit": 2}),
            )
            .await
        }
    };
    let newest = partial(String::new(), String::new()).await;
    let newest_data: Vec<Value> = newest["messages"].as_array().unwrap().clone();
    let texts = |ms: &[Value]| -> Vec<String> {
        ms.iter()
            .map(|m| {
                String::from_utf8(
                    base64::engine::general_purpose::STANDARD.decode(m["Data"].as_str().unwrap()).unwrap(),
                )
                .unwrap()
            })
            .collect()
    };
    assert_eq!(texts(&newest_data), ["page 3", "page 4"]);
    let older =
        partial(newest_data[0]["ID"].as_str().unwrap().into(), newest_data[0]["Created"].as_str().unwrap().into())
            .await;
    let older_data = older["messages"].as_array().unwrap().clone();
    assert_eq!(texts(&older_data), ["page 1", "page 2"]);
    let oldest =
        partial(older_data[0]["ID"].as_str().unwrap().into(), older_data[0]["Created"].as_str().unwrap().into()).await;
    assert_eq!(texts(oldest["messages"].as_array().unwrap()), ["Reply over XMPP", "Reply over SSE's REST"]);

    // A report: stored for the conversation, and a read marker on bob's doors.
    let last_id = ids_of(&newest["messages"]).pop().unwrap();
    ann.call(
        &app,
        "chatreports",
        json!({"action": "viewed", "conversationid": conversation, "instance": "x",
        "firstmessagedate": "", "lastmessagedate": "", "messageids": [last_id]}),
    )
    .await;
    let marker = next_of(&mut bob_sse, "chatapi.chat", "displayed").await;
    assert_eq!(marker.data["messageIds"], json!([last_id]));
    assert_eq!(marker.data["from"], "ann@localhost/annphone");
    let marker =
        bob_xmpp.next_where("a displayed marker", |e| e.find("displayed", "urn:xmpp:chat-markers:0").is_some()).await;
    assert_eq!(marker.find("displayed", "urn:xmpp:chat-markers:0").unwrap().get_attr("id"), Some(last_id.as_str()));
    let bobs = bob_station
        .call(
            &app,
            "chatconversation",
            json!({"action": "downloadpartial", "conversationid": conversation,
            "lastmessageid": "", "lastmessagedate": "", "lastreportid": "", "lastreportdate": "", "limit": 10}),
        )
        .await;
    assert_eq!(bobs["reports"][0]["Type"], "viewed");
    assert_eq!(bobs["reports"][0]["messageids"], json!([last_id]));
    assert_eq!(bobs["reports"][0]["userid"], ann.userid);

    // Settings are each user's own.
    let list = ann.call(&app, "chatconversation", json!({"action": "list"})).await;
    let before = list["conversations"][0].clone();
    assert_eq!(before["id"], conversation);
    assert_eq!(before["participantids"].as_array().unwrap().len(), 2);
    let instance = before["instance"].as_str().unwrap().to_owned();
    assert_eq!(instance.len(), 10);
    for (action, extra) in [
        ("favorite", json!({})),
        ("mute", json!({})),
        ("hide", json!({"hideid": format!("{instance};")})),
        ("setlistitembackgroundcolor", json!({"color": "#FF8800"})),
    ] {
        let mut body = json!({"action": action, "conversationid": conversation});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        ann.call(&app, "chatconversation", body).await;
    }
    let mine = ann.call(&app, "chatconversation", json!({"action": "list"})).await["conversations"][0].clone();
    assert_eq!(
        mine["properties"],
        json!([{"userid": ann.userid, "ismuted": true, "isfavorite": true,
        "hideid": format!("{instance};"), "listitembackgroundcolor": "#ff8800"}])
    );
    assert_eq!(mine["favoriteby"], json!([ann.userid]));
    assert_eq!(mine["mutedby"], json!([ann.userid]));
    let theirs =
        bob_station.call(&app, "chatconversation", json!({"action": "list"})).await["conversations"][0].clone();
    assert_eq!(theirs["properties"][0]["isfavorite"], false, "bob's settings are his own: {theirs}");
    assert_eq!(theirs["properties"][0]["hideid"], "");
    let blocklist = ann.call(&app, "chatblocklist", json!({"action": "blocklist"})).await;
    assert_eq!(blocklist["blockedconversations"], json!([conversation]), "hidden, so it can be unhidden");
    let poll = ann.call(&app, "chatnotification", json!({"action": "download"})).await;
    assert_eq!(poll["conversationlistchangedof"], json!([ann.userid]));
    for action in ["unfavorite", "unmute", "unhide"] {
        ann.call(&app, "chatconversation", json!({"action": action, "conversationid": conversation})).await;
    }
    let bad = ann
        .try_call(
            &app,
            "chatconversation",
            json!({"action": "setlistitembackgroundcolor", "conversationid": conversation, "color": "red"}),
        )
        .await;
    assert_eq!(bad.json()["status"], "ERROR");
    assert!(bad.json()["errormessage"].as_str().unwrap().contains("#rrggbb"));

    // Clear: a new instance, and nothing to download for ann (bob keeps his).
    let cleared = ann
        .call(
            &app,
            "chatconversation",
            json!({"action": "clear", "conversationid": conversation, "instance": instance}),
        )
        .await;
    assert_ne!(cleared["conversation"]["instance"], instance);
    assert_eq!(cleared["conversation"]["lastmessageid"], "");
    let after = ann
        .call(
            &app,
            "chatconversation",
            json!({"action": "download", "conversationid": conversation, "firstmessageid": ""}),
        )
        .await;
    assert_eq!(after["messages"], json!([]));
    let bobs = bob_station
        .call(
            &app,
            "chatconversation",
            json!({"action": "download", "conversationid": conversation, "firstmessageid": ""}),
        )
        .await;
    assert_eq!(bobs["messages"].as_array().unwrap().len(), 7);

    // A message that expires is not downloaded once it has.
    ann.call(
        &app,
        "chatconversation",
        json!({"action": "add", "conversationid": conversation,
        "message": ozeki_message("short-lived", "gone soon", 1500)}),
    )
    .await;
    let soon = bob_station
        .call(
            &app,
            "chatconversation",
            json!({"action": "download", "conversationid": conversation, "firstmessageid": "short-lived"}),
        )
        .await;
    assert_eq!(ids_of(&soon["messages"]), ["short-lived"]);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let later = bob_station
        .call(
            &app,
            "chatconversation",
            json!({"action": "download", "conversationid": conversation, "firstmessageid": "short-lived"}),
        )
        .await;
    assert!(!ids_of(&later["messages"]).contains(&"short-lived".to_owned()), "{later}");

    let ws =
        ann.call(&app, "workspace", json!({"action": "workspaceregister", "workspacename": "ann.ozeki.chat"})).await;
    assert_eq!(ws["status"], "OK");
    ann.call(&app, "chatavailability", json!({"action": "useravailable"})).await;
}

#[actix_web::test]
async fn every_client_api_refusal_says_what_is_wrong() {
    let app = spawn_app_with(|c| c.limits.max_body_bytes = 4096).await;
    for name in ["ann", "bob"] {
        app.create_user(name).await;
    }
    befriend(&app, "ann", "bob").await;
    let r =
        app.post_json("/restapi/v1/users", app.admin(), &json!({"username": "nomail", "password": "pw-nomail"})).await;
    assert_eq!(r.status, 201);
    let r = issue_key(&app, "nomail", "s0").await;
    assert_eq!(r.status, 400);
    assert!(r.message().contains("no e-mail"), "{}", r.text());
    assert_eq!(app.post_json("/restapi/v1/users/bob/ozeki/apikeys", ("ann", "pw-ann"), &json!({})).await.status, 403);
    let ann = station(&app, "ann", "annphone").await;
    assert_eq!(issue_key(&app, "bob", "annphone").await.status, 409, "station ids are unique");
    let listed = app.get("/restapi/v1/users/ann/ozeki/apikeys", app.admin()).await.json();
    assert_eq!(listed["apikeys"][0]["stationid"], "annphone");
    assert!(listed["apikeys"][0].get("apikey").is_none(), "a key is shown once");

    let login = |key: &str| json!({"action": "login", "apikey": key}).to_string();
    let r = raw_call(&app, "/index.php?srv=chatserver&api=chatlogin", &[], &login("0123")).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["status"], "ERROR");
    assert!(r.json()["errormessage"].as_str().unwrap().contains("apikey"));
    let r = raw_call(
        &app,
        "/index.php?srv=chatserver&api=chatlogin",
        &[("Ozeki-Station", "other".into())],
        &login(&ann.apikey),
    )
    .await;
    assert_eq!(r.status, 401, "another station's key");

    // Without index.php, under another prefix.
    let ok = raw_call(&app, "/chat/?srv=chatserver&api=chatlogin", &[], &login(&ann.apikey)).await;
    assert_eq!(ok.json()["status"], "OK", "{}", ok.text());

    let body = json!({"action": "list"}).to_string();
    let mut headers = ann.headers(&body);
    headers[2].1 = signature("not the key", &body);
    let r = raw_call(&app, "/index.php?srv=chatserver&api=chatfriends", &headers, &body).await;
    assert_eq!(r.status, 401);
    assert!(r.json()["errormessage"].as_str().unwrap().contains("Ozeki-Signature"));
    let mut headers = ann.headers(&body);
    headers[1].1 = user_id("bob@example.org");
    let r = raw_call(&app, "/index.php?srv=chatserver&api=chatfriends", &headers, &body).await;
    assert_eq!(r.status, 401, "Ozeki-User must be the station's user");
    let r = raw_call(&app, "/index.php?srv=chatserver&api=chatfriends", &ann.headers(&body)[..2], &body).await;
    assert_eq!(r.status, 401, "no signature");

    let r = ann.try_call(&app, "chatmagic", json!({"action": "list"})).await;
    assert_eq!((r.status, r.json()["status"].as_str()), (200, Some("ERROR")));
    assert!(r.json()["errormessage"].as_str().unwrap().contains("unknown api"));
    let r = ann.try_call(&app, "chatconversation", json!({"action": "explode"})).await;
    assert!(r.json()["errormessage"].as_str().unwrap().contains("unknown action"), "{}", r.text());
    let broken = "{\"action\": ";
    let r = raw_call(&app, "/index.php?srv=chatserver&api=chatfriends", &ann.headers(broken), broken).await;
    assert_eq!((r.status, r.json()["status"].as_str()), (200, Some("ERROR")));
    assert!(r.json()["errormessage"].as_str().unwrap().contains("not valid JSON"));
    let big = json!({"action": "list", "pad": "x".repeat(5000)}).to_string();
    let r = raw_call(&app, "/index.php?srv=chatserver&api=chatfriends", &ann.headers(&big), &big).await;
    assert_eq!(r.status, 413);
    assert_eq!(r.json()["status"], "ERROR");
    let r =
        ann.try_call(&app, "chatconversation", json!({"action": "download", "conversationid": "0".repeat(32)})).await;
    assert!(r.json()["errormessage"].as_str().unwrap().contains("not one of yours"), "{}", r.text());
    let bob_id = OzekiUserId::from_email("bob@example.org").unwrap();
    let conversation = ConversationId::between(&OzekiUserId::parse(&ann.userid).unwrap(), &bob_id).to_string();
    let r = ann
        .try_call(
            &app,
            "chatconversation",
            json!({"action": "add", "conversationid": conversation,
        "message": ozeki_message("old", "too late", -60_000)}),
        )
        .await;
    assert!(r.json()["errormessage"].as_str().unwrap().contains("expired"), "{}", r.text());
    let r = ann
        .try_call(
            &app,
            "chatconversation",
            json!({"action": "add", "conversationid": conversation, "message": {"ID": "x"}}),
        )
        .await;
    assert!(r.json()["errormessage"].as_str().unwrap().contains("JSON string"), "{}", r.text());

    // Revoked: neither sign-in nor signed calls work any more.
    assert_eq!(app.delete("/restapi/v1/users/ann/ozeki/apikeys/annphone", app.admin()).await.status, 200);
    assert_eq!(app.delete("/restapi/v1/users/ann/ozeki/apikeys/annphone", app.admin()).await.status, 404);
    let r = raw_call(&app, "/index.php?srv=chatserver&api=chatlogin", &[], &login(&ann.apikey)).await;
    assert_eq!(r.status, 401);
    let r = ann.try_call(&app, "chatfriends", json!({"action": "list"})).await;
    assert_eq!(r.status, 401, "{}", r.text());

    // A user whose e-mail address was removed has no Ozeki id any more.
    let bob = station(&app, "bob", "bobdesk").await;
    let r = app.put_json("/restapi/v1/users/bob", app.admin(), &json!({"email": ""})).await;
    assert!(r.status < 300, "{}", r.text());
    let r = raw_call(&app, "/index.php?srv=chatserver&api=chatlogin", &[], &login(&bob.apikey)).await;
    assert_eq!(r.json()["status"], "ERROR");
    assert!(r.json()["errormessage"].as_str().unwrap().contains("no e-mail"), "{}", r.text());
}
