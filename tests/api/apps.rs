//! External apps: the admin API, register and the verified webhook, what users write from
//! SSE, `/ws` and XMPP reaching a real HTTP receiver (signed, in order per chat), the app's
//! answers of every type, retries, dead letters and replays, a `kill -9` in the middle of
//! deliveries, private destinations, and every refusal.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::helpers::*;
use crate::restart::{free_port, run_binary_with, wait_healthy};
use crate::xmpp::Xmpp;

/// How the receiver answers.
#[derive(Clone, Debug)]
pub enum Mode {
    Success,
    /// 500 for the first N requests, then success.
    FailFirst(usize),
    /// 200 with `{"status":"FAIL"}`.
    Wrong,
    /// Wait this long, then succeed.
    Slow(Duration),
}

#[derive(Clone, Debug)]
pub struct Seen {
    at: Instant,
    headers: HashMap<String, String>,
    body: Bytes,
}

impl Seen {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// A real HTTP server on loopback that records what it is sent.
pub struct Receiver {
    pub url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    mode: Arc<Mutex<Mode>>,
    server: actix_web::dev::ServerHandle,
}

struct ReceiverState {
    seen: Arc<Mutex<Vec<Seen>>>,
    mode: Arc<Mutex<Mode>>,
}

async fn receive(req: HttpRequest, body: Bytes, state: web::Data<ReceiverState>) -> HttpResponse {
    let headers =
        req.headers().iter().map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned())).collect();
    let count = {
        let mut seen = state.seen.lock().unwrap();
        seen.push(Seen { at: Instant::now(), headers, body });
        seen.len()
    };
    let mode = state.mode.lock().unwrap().clone();
    match mode {
        Mode::Success => HttpResponse::Ok().json(json!({"status": "SUCCESS"})),
        Mode::FailFirst(n) if count <= n => HttpResponse::InternalServerError().body("not now"),
        Mode::FailFirst(_) => HttpResponse::Ok().json(json!({"status": "SUCCESS"})),
        Mode::Wrong => HttpResponse::Ok().json(json!({"status": "FAIL"})),
        Mode::Slow(wait) => {
            actix_rt::time::sleep(wait).await;
            HttpResponse::Ok().json(json!({"status": "SUCCESS"}))
        }
    }
}

impl Receiver {
    pub fn start(mode: Mode) -> Receiver {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mode = Arc::new(Mutex::new(mode));
        let state = web::Data::new(ReceiverState { seen: seen.clone(), mode: mode.clone() });
        let (base, handle) = loopback_server(move |cfg| {
            cfg.app_data(state.clone()).default_service(web::to(receive));
        });
        Receiver { url: format!("{base}/hook"), seen, mode, server: handle }
    }

    fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    /// The deliveries of messages (not verification events) seen so far.
    pub fn messages(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().iter().filter(|s| s.json().get("chat_id").is_some()).cloned().collect()
    }

    /// Waits until `count` different messages were delivered (duplicates aside).
    async fn wait_for_distinct(&self, count: usize, limit: Duration) -> Vec<Seen> {
        let deadline = Instant::now() + limit;
        loop {
            let seen = self.messages();
            let distinct: std::collections::HashSet<String> =
                seen.iter().map(|s| s.json()["id"].as_str().unwrap_or_default().to_owned()).collect();
            if distinct.len() >= count || Instant::now() > deadline {
                return seen;
            }
            actix_rt::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until `count` message deliveries were seen.
    pub async fn wait_for(&self, count: usize, limit: Duration) -> Vec<Seen> {
        let deadline = Instant::now() + limit;
        loop {
            let seen = self.messages();
            if seen.len() >= count || Instant::now() > deadline {
                return seen;
            }
            actix_rt::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn signature(token: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(token.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect::<String>())
}

pub fn fast_retries(c: &mut switchboard::Config) {
    c.apps.allow_private_destinations = true;
    c.apps.retry_base_secs = 0.2;
    c.apps.outbox_tick_secs = 0.05;
    c.apps.webhook_timeout_secs = 1.0;
}

/// An app `name`, registered, with its webhook at `receiver`: (id, token, signature token).
pub async fn registered_app(app: &TestApp, name: &str, receiver: &Receiver) -> (String, String, String) {
    let r = app.post_json("/restapi/v1/apps", app.admin(), &json!({"name": name, "description": "a bot"})).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let created = r.json();
    let (id, token) = (created["id"].as_str().unwrap().to_owned(), created["token"].as_str().unwrap().to_owned());
    let r = app_call(app, "POST", "/api/v1/register", &token, None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let signing = r.json()["signature_token"].as_str().unwrap().to_owned();
    let r = app_call(app, "PUT", "/api/v1/webhook", &token, Some(json!({"url": receiver.url}))).await;
    assert_eq!(r.status, 200, "{}", r.text());
    (id, token, signing)
}

async fn app_call(app: &TestApp, method: &str, path: &str, token: &str, body: Option<Value>) -> Reply {
    let request = match method {
        "POST" => app.client.post(app.url(path)),
        "PUT" => app.client.put(app.url(path)),
        "DELETE" => app.client.delete(app.url(path)),
        _ => app.client.get(app.url(path)),
    }
    .insert_header(("authorization", format!("Bearer {token}")));
    match body {
        Some(body) => reply(request.send_json(&body).await).await,
        None => reply(request.send().await).await,
    }
}

#[actix_web::test]
async fn an_app_gets_what_users_write_from_every_door_signed_and_in_order_and_answers_every_type() {
    let app = spawn_app_with(fast_retries).await;
    for name in ["ann", "bob", "cy"] {
        app.create_user(name).await;
    }
    let receiver = Receiver::start(Mode::Wrong);
    let r = app.post_json("/restapi/v1/apps", app.admin(), &json!({"name": "bot", "description": "a bot"})).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let token = r.json()["token"].as_str().unwrap().to_owned();
    assert_eq!(r.json()["jid"], "bot@localhost");

    let r = app_call(&app, "PUT", "/api/v1/webhook", &token, Some(json!({"url": receiver.url}))).await;
    assert_eq!(r.status, 409, "a webhook needs a register first: {}", r.text());
    assert_eq!(r.json()["status"], "FAIL");
    let r = app_call(&app, "POST", "/api/v1/register", &token, None).await;
    let signing = r.json()["signature_token"].as_str().unwrap().to_owned();
    assert_eq!(r.json()["status"], "SUCCESS");
    let r = app_call(&app, "PUT", "/api/v1/webhook", &token, Some(json!({"url": receiver.url}))).await;
    assert_eq!(r.status, 400, "a wrong verification answer: {}", r.text());
    assert!(r.json()["message"].as_str().unwrap().contains("verification"), "{}", r.text());
    receiver.set(Mode::Success);
    let r = app_call(&app, "PUT", "/api/v1/webhook", &token, Some(json!({"url": receiver.url}))).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let verify = receiver.seen.lock().unwrap().last().unwrap().clone();
    assert_eq!(verify.json()["event"], "verify");
    assert_eq!(verify.headers["x-chatday-signature-token"], signing);
    assert_eq!(app_call(&app, "GET", "/api/v1/webhook", &token, None).await.json()["url"], receiver.url);

    // Users write from SSE's REST, /ws and XMPP.
    let ann = app.login("ann").await;
    let mut ann_sse = app.sse("ann", &format!("?stream={ann}")).await;
    let mut bob = app.ws("bob", "").await;
    let mut cy = Xmpp::login(&app, "cy", "pw-cy").await;
    for i in 1..=5 {
        assert_eq!(app.send("ann", &ann, "bot", &format!("ann {i}")).await.status, 200);
    }
    bob.send(json!({"op": "message", "to": "bot@localhost", "body": "from ws", "id": "w1"})).await;
    cy.send("<message xmlns='jabber:client' to='bot@localhost' type='chat' id='x1'><body>from xmpp</body></message>")
        .await;
    let seen = receiver.wait_for(7, Duration::from_secs(10)).await;
    assert_eq!(seen.len(), 7, "each message once");
    let mut by_chat: HashMap<String, Vec<String>> = HashMap::new();
    for s in &seen {
        assert_eq!(s.headers["x-chatday-signature-token"], signing);
        assert_eq!(s.headers["x-switchboard-signature"], signature(&signing, &s.body), "over the exact bytes");
        assert!(s.headers.contains_key("x-switchboard-timestamp") && s.headers.contains_key("x-switchboard-delivery"));
        let body = s.json();
        assert_eq!(body["message"]["type"], "text");
        by_chat
            .entry(body["chat_id"].as_str().unwrap().to_owned())
            .or_default()
            .push(body["message"]["data"].as_str().unwrap().to_owned());
    }
    assert_eq!(by_chat.len(), 3, "one chat per user");
    let ann_chat =
        seen.iter().find(|s| s.json()["from"]["id"] == "ann").unwrap().json()["chat_id"].as_str().unwrap().to_owned();
    assert_eq!(by_chat[&ann_chat], ["ann 1", "ann 2", "ann 3", "ann 4", "ann 5"], "in order per chat");
    let from_ws = seen.iter().find(|s| s.json()["message"]["data"] == "from ws").unwrap().json();
    assert_eq!(from_ws["from"], json!({"id": "bob", "name": "BOB"}));

    // The app answers in ann's chat with every type.
    let answers = [
        (json!({"type": "text", "data": "hello ann"}), "hello ann"),
        (
            json!({"type": "image", "data": {"url": "https://example.org/a.png", "mime": "image/png", "size": 1200}}),
            "https://example.org/a.png",
        ),
        (
            json!({"type": "file", "data": {"url": "https://example.org/r.pdf", "name": "r.pdf"}}),
            "https://example.org/r.pdf",
        ),
        (json!({"type": "sticker", "data": {"sticker_id": "wave"}}), "sticker:wave"),
        (
            json!({"type": "location", "data": {"latitude": 47.5, "longitude": 19.04, "name": "Budapest"}}),
            "geo:47.5,19.04",
        ),
    ];
    for (message, body) in &answers {
        let r =
            app_call(&app, "POST", "/api/v1/messages", &token, Some(json!({"chat_id": ann_chat, "message": message})))
                .await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(r.json()["id"].is_string() && r.json()["stamp"].is_string());
        let got = next_of(&mut ann_sse, "chatapi.chat", "chat").await;
        assert_eq!(got.data["body"], *body);
        assert_eq!(got.data["from"], "bot@localhost/app");
        assert_eq!(got.data["data"]["app_message"], *message, "the structured data travels too");
    }
    for (message, problem) in [
        (json!({"type": "video", "data": "x"}), "message.type"),
        (json!({"type": "text", "data": {"x": 1}}), "must be a string"),
        (json!({"type": "image", "data": {"name": "no url"}}), "url"),
        (json!({"type": "location", "data": {"latitude": 91, "longitude": 0}}), "latitude"),
        (json!({"type": "file", "data": {"url": "https://e.org/f", "size": "big"}}), "size"),
        (json!({"type": "sticker", "data": {}}), "sticker_id"),
    ] {
        let r =
            app_call(&app, "POST", "/api/v1/messages", &token, Some(json!({"chat_id": ann_chat, "message": message})))
                .await;
        assert_eq!(r.status, 400, "{message}: {}", r.text());
        assert!(r.json()["message"].as_str().unwrap().contains(problem), "{message}: {}", r.text());
    }
    // The app's own messages are not sent back to it.
    assert_eq!(receiver.messages().len(), 7);

    let chats = app_call(&app, "GET", "/api/v1/chats?limit=2", &token, None).await.json();
    assert_eq!(chats["chats"].as_array().unwrap().len(), 2);
    assert_eq!(chats["next"], 2);
    let rest = app_call(&app, "GET", "/api/v1/chats?offset=2", &token, None).await.json();
    assert_eq!(rest["chats"].as_array().unwrap().len(), 1);
    let history =
        app_call(&app, "GET", &format!("/api/v1/chats/{ann_chat}/messages?limit=3"), &token, None).await.json();
    let kinds: Vec<&str> =
        history["messages"].as_array().unwrap().iter().map(|m| m["message"]["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["file", "sticker", "location"], "the newest page: {history}");
    let older = app_call(
        &app,
        "GET",
        &format!("/api/v1/chats/{ann_chat}/messages?limit=3&before={}", history["before"].as_str().unwrap()),
        &token,
        None,
    )
    .await
    .json();
    assert_eq!(older["messages"].as_array().unwrap().len(), 3);

    // The app opens a chat itself.
    let r = app_call(&app, "POST", "/api/v1/chats", &token, Some(json!({"user": "bob@localhost"}))).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let bob_chat = r.json()["chat_id"].as_str().unwrap().to_owned();
    assert_eq!(
        seen.iter().find(|s| s.json()["from"]["id"] == "bob").unwrap().json()["chat_id"],
        bob_chat,
        "the same chat"
    );
    // The app's messages reach every door.
    let hi = json!({"chat_id": bob_chat, "message": {"type": "text", "data": "hi bob"}});
    assert_eq!(app_call(&app, "POST", "/api/v1/messages", &token, Some(hi)).await.status, 200);
    assert_eq!(next_ws_of(&mut bob, "chatapi.chat", "chat").await["body"], "hi bob");
    let cy_chat =
        seen.iter().find(|s| s.json()["from"]["id"] == "cy").unwrap().json()["chat_id"].as_str().unwrap().to_owned();
    let hi = json!({"chat_id": cy_chat, "message": {"type": "text", "data": "hi cy"}});
    assert_eq!(app_call(&app, "POST", "/api/v1/messages", &token, Some(hi)).await.status, 200);
    let got = cy.next_where("the app's message", |e| e.child_text("body", "jabber:client").is_some()).await;
    assert_eq!(got.child_text("body", "jabber:client").as_deref(), Some("hi cy"));
    assert_eq!(got.get_attr("from"), Some("bot@localhost/app"));
    receiver.server.stop(false).await;
}

#[actix_web::test]
async fn an_app_attached_to_a_room_hears_its_occupants_and_speaks_there() {
    let app = spawn_app_with(fast_retries).await;
    app.create_user("ann").await;
    let receiver = Receiver::start(Mode::Success);
    let (id, token, signing) = registered_app(&app, "bot", &receiver).await;
    let r =
        app.post_json("/restapi/v1/chatrooms", app.admin(), &json!({"roomName": "hall", "naturalName": "Hall"})).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = app.post_json(&format!("/restapi/v1/apps/{id}/rooms/ghost"), app.admin(), &json!({})).await;
    assert_eq!(r.status, 404, "no such room: {}", r.text());
    let r = app.post_json(&format!("/restapi/v1/apps/{id}/rooms/hall"), app.admin(), &json!({})).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let room_chat = r.json()["chat_id"].as_str().unwrap().to_owned();
    assert_eq!(r.json()["room"], "hall");

    let ann = app.login("ann").await;
    let mut ann_sse = app.sse("ann", &format!("?stream={ann}")).await;
    let joined = reply(
        app.client.put(app.url(&format!("/restapi/v1/chat/{ann}/rooms/hall"))).basic_auth("ann", "pw-ann").send().await,
    )
    .await;
    assert!(joined.status < 300, "{}", joined.text());
    let posted = reply(
        app.client
            .post(app.url(&format!("/restapi/v1/chat/{ann}/rooms/hall")))
            .basic_auth("ann", "pw-ann")
            .insert_header(("content-type", "text/plain"))
            .send_body("hello room")
            .await,
    )
    .await;
    assert_eq!(posted.status, 200, "{}", posted.text());
    let seen = receiver.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(seen.len(), 1);
    let body = seen[0].json();
    assert_eq!((body["chat_id"].as_str(), body["room"].as_str()), (Some(room_chat.as_str()), Some("hall")), "{body}");
    assert_eq!(body["from"]["id"], "ann");
    assert_eq!(body["message"], json!({"type": "text", "data": "hello room"}));
    assert_eq!(seen[0].headers["x-switchboard-signature"], signature(&signing, &seen[0].body));

    let say = json!({"chat_id": room_chat, "message": {"type": "text", "data": "bot here"}});
    let r = app_call(&app, "POST", "/api/v1/messages", &token, Some(say)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let got = loop {
        let e = next_of(&mut ann_sse, "chatapi.muc", "groupchat").await;
        if e.data["body"] == "bot here" {
            break e;
        }
    };
    assert_eq!(got.data["from"], "hall@conference.localhost/bot");
    actix_rt::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(receiver.messages().len(), 1, "the app's own post is not sent back to it");
    let history = app_call(&app, "GET", &format!("/api/v1/chats/{room_chat}/messages"), &token, None).await.json();
    let bodies: Vec<&str> =
        history["messages"].as_array().unwrap().iter().map(|m| m["message"]["data"].as_str().unwrap()).collect();
    assert_eq!(bodies, ["hello room", "bot here"], "{history}");
    let page = app_call(&app, "GET", &format!("/api/v1/chats/{room_chat}/messages?limit=1"), &token, None).await.json();
    assert_eq!(page["messages"][0]["message"]["data"], "bot here");
    let before = page["before"].as_str().unwrap().to_owned();
    let older =
        app_call(&app, "GET", &format!("/api/v1/chats/{room_chat}/messages?limit=1&before={before}"), &token, None)
            .await
            .json();
    assert_eq!(older["messages"][0]["message"]["data"], "hello room", "paged back: {older}");

    assert_eq!(app.delete(&format!("/restapi/v1/apps/{id}/rooms/hall"), app.admin()).await.status, 200);
    assert_eq!(app.delete(&format!("/restapi/v1/apps/{id}/rooms/hall"), app.admin()).await.status, 404, "not attached");
    let say = json!({"chat_id": room_chat, "message": {"type": "text", "data": "gone"}});
    assert_eq!(app_call(&app, "POST", "/api/v1/messages", &token, Some(say)).await.status, 404, "detached");
    receiver.server.stop(false).await;
}

#[actix_web::test]
async fn a_slow_receiver_holds_up_only_its_own_app() {
    let app = spawn_app_with(fast_retries).await;
    app.create_user("ann").await;
    let slow = Receiver::start(Mode::Success);
    let fast = Receiver::start(Mode::Success);
    registered_app(&app, "slowbot", &slow).await;
    registered_app(&app, "fastbot", &fast).await;
    slow.set(Mode::Slow(Duration::from_secs(3)));
    let ann = app.login("ann").await;
    for i in 0..3 {
        assert_eq!(app.send("ann", &ann, "slowbot", &format!("slow {i}")).await.status, 200);
    }
    let began = Instant::now();
    for i in 0..20 {
        assert_eq!(app.send("ann", &ann, "fastbot", &format!("fast {i}")).await.status, 200);
    }
    let seen = fast.wait_for(20, Duration::from_secs(5)).await;
    assert_eq!(seen.len(), 20);
    assert!(began.elapsed() < Duration::from_secs(2), "the fast app waited for the slow one: {:?}", began.elapsed());
    assert!(slow.messages().len() <= 1, "the slow app's chat goes one at a time");
    slow.server.stop(false).await;
    fast.server.stop(false).await;
}

#[actix_web::test]
async fn failed_deliveries_are_retried_with_growing_delays_and_dead_ones_are_replayed() {
    let app = spawn_app_with(|c| {
        fast_retries(c);
        c.apps.max_attempts = 4;
    })
    .await;
    app.create_user("ann").await;
    let receiver = Receiver::start(Mode::Success);
    let (id, _token, _) = registered_app(&app, "bot", &receiver).await;
    let ann = app.login("ann").await;

    receiver.set(Mode::FailFirst(receiver.seen.lock().unwrap().len() + 3));
    assert_eq!(app.send("ann", &ann, "bot", "eventually").await.status, 200);
    let seen = receiver.wait_for(4, Duration::from_secs(10)).await;
    assert_eq!(seen.len(), 4, "three failures, then delivered");
    let ids: Vec<&str> = seen.iter().map(|s| s.headers["x-switchboard-delivery"].as_str()).collect();
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "the same delivery id on every attempt: {ids:?}");
    let gaps: Vec<Duration> = seen.windows(2).map(|w| w[1].at - w[0].at).collect();
    assert!(gaps[2] > gaps[0], "the delays grow: {gaps:?}");
    actix_rt::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(receiver.messages().len(), 4, "delivered once");
    let delivered = app.get(&format!("/restapi/v1/apps/{id}/deliveries?state=delivered"), app.admin()).await.json();
    assert_eq!(delivered["deliveries"][0]["attempts"], 4);

    // A receiver that never answers: each attempt times out; dead after max_attempts, then
    // replayed by the admin.
    receiver.set(Mode::Slow(Duration::from_secs(60)));
    assert_eq!(app.send("ann", &ann, "bot", "doomed").await.status, 200);
    let metrics = app.get("/metrics", app.admin()).await.text();
    assert!(metrics.contains("switchboard_webhook_outbox_depth 1"), "the acknowledged message waits: {metrics}");
    assert!(metrics.contains("switchboard_webhook_outbox_oldest_seconds "), "{metrics}");
    let deadline = Instant::now() + Duration::from_secs(15);
    let dead = loop {
        let dead = app.get(&format!("/restapi/v1/apps/{id}/deliveries?state=dead"), app.admin()).await.json();
        if !dead["deliveries"].as_array().unwrap().is_empty() || Instant::now() > deadline {
            break dead;
        }
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(dead["deliveries"][0]["attempts"], 4, "{dead}");
    let error = dead["deliveries"][0]["last_error"].as_str().unwrap().to_lowercase();
    assert!(error.contains("timeout") || error.contains("timed out"), "{dead}");
    let metrics = app.get("/metrics", app.admin()).await.text();
    assert!(metrics.contains("switchboard_webhook_attempts_total{outcome=\"dead\"} 1"), "{metrics}");
    receiver.set(Mode::Success);
    let before = receiver.messages().len();
    let r = app.post_json(&format!("/restapi/v1/apps/{id}/deliveries/replay"), app.admin(), &json!({})).await;
    assert_eq!(r.json()["replayed"], 1, "{}", r.text());
    let seen = receiver.wait_for(before + 1, Duration::from_secs(5)).await;
    assert_eq!(seen.last().unwrap().json()["message"]["data"], "doomed");
    assert_eq!(
        app.post_json(&format!("/restapi/v1/apps/{id}/deliveries/999/replay"), app.admin(), &json!({})).await.status,
        404
    );
    receiver.server.stop(false).await;
}

#[actix_web::test]
async fn every_app_refusal_says_what_is_wrong() {
    let app = spawn_app_with(|c| c.limits.max_body_bytes = 4096).await;
    app.create_user("ann").await;
    let receiver = Receiver::start(Mode::Success);
    let r = app.post_json("/restapi/v1/apps", app.admin(), &json!({"name": "bot"})).await;
    let (id, token) = (r.json()["id"].as_str().unwrap().to_owned(), r.json()["token"].as_str().unwrap().to_owned());
    app_call(&app, "POST", "/api/v1/register", &token, None).await;

    // Private destinations are refused while the setting is off (the default).
    let r = app_call(&app, "PUT", "/api/v1/webhook", &token, Some(json!({"url": receiver.url}))).await;
    assert_eq!(r.status, 400);
    assert!(r.json()["message"].as_str().unwrap().contains("private or internal"), "{}", r.text());
    assert!(receiver.seen.lock().unwrap().is_empty(), "nothing was sent there");
    let r = app_call(&app, "PUT", "/api/v1/webhook", &token, Some(json!({"url": "ftp://example.org/"}))).await;
    assert_eq!(r.status, 400);

    assert_eq!(
        app.post_json("/restapi/v1/apps", app.admin(), &json!({"name": "ann"})).await.status,
        409,
        "a user's name"
    );
    assert_eq!(app.post_json("/restapi/v1/apps", ("ann", "pw-ann"), &json!({"name": "x"})).await.status, 403);
    let r = app
        .post_json("/restapi/v1/users", app.admin(), &json!({"username": "fake", "password": "p", "kind": "app"}))
        .await;
    assert_eq!(r.status, 400, "apps are made as apps: {}", r.text());

    let r = reply(app.client.post(app.url("/api/v1/register")).send().await).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["status"], "FAIL");
    assert_eq!(app_call(&app, "POST", "/api/v1/register", "nope", None).await.status, 401);
    let r = app.post_json(&format!("/restapi/v1/apps/{id}/token"), app.admin(), &json!({})).await;
    let rotated = r.json()["token"].as_str().unwrap().to_owned();
    assert_eq!(app_call(&app, "GET", "/api/v1/chats", &token, None).await.status, 401, "the old token is gone");
    assert_eq!(app_call(&app, "GET", "/api/v1/chats", &rotated, None).await.status, 200);

    let other = app.post_json("/restapi/v1/apps", app.admin(), &json!({"name": "other"})).await.json();
    let other_token = other["token"].as_str().unwrap().to_owned();
    let mine = app_call(&app, "POST", "/api/v1/chats", &rotated, Some(json!({"user": "ann"}))).await.json();
    let chat = mine["chat_id"].as_str().unwrap().to_owned();
    let text = json!({"type": "text", "data": "hi"});
    let r =
        app_call(&app, "POST", "/api/v1/messages", &other_token, Some(json!({"chat_id": chat, "message": text}))).await;
    assert_eq!(r.status, 403, "another app's chat: {}", r.text());
    let r =
        app_call(&app, "POST", "/api/v1/messages", &rotated, Some(json!({"chat_id": "nochat", "message": text}))).await;
    assert_eq!(r.status, 404);
    let r = app_call(&app, "POST", "/api/v1/chats", &rotated, Some(json!({"user": "ghost"}))).await;
    assert_eq!(r.status, 404);
    let big = json!({"chat_id": chat, "message": {"type": "text", "data": "x".repeat(5000)}});
    assert_eq!(app_call(&app, "POST", "/api/v1/messages", &rotated, Some(big)).await.status, 413);
    let r = reply(
        app.client
            .post(app.url("/api/v1/messages"))
            .insert_header(("authorization", format!("Bearer {rotated}")))
            .insert_header(("content-type", "application/json"))
            .send_body("{\"chat_id\":")
            .await,
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(r.json()["message"].as_str().unwrap().contains("invalid JSON"));
    assert_eq!(app_call(&app, "GET", "/api/v1/chats?limit=5000", &rotated, None).await.status, 400);

    // Deleting the app removes its account.
    assert_eq!(app.delete(&format!("/restapi/v1/apps/{id}"), app.admin()).await.status, 200);
    assert_eq!(app.get("/restapi/v1/users/bot", app.admin()).await.status, 404);
    assert_eq!(app_call(&app, "GET", "/api/v1/chats", &rotated, None).await.status, 401);
    receiver.server.stop(false).await;
}

#[actix_web::test]
async fn kill_9_during_deliveries_loses_nothing_and_keeps_each_chat_in_order() {
    // Slow enough that the 200 messages are still being delivered when the sends are done,
    // however long a loaded machine takes to send them.
    let receiver = Receiver::start(Mode::Slow(Duration::from_millis(50)));
    let dir = tempfile::tempdir().unwrap();
    let client = awc::Client::builder().timeout(Duration::from_secs(10)).finish();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let admin = ("admin", "crash-apps-admin");
    let env = [("SWITCHBOARD_APPS_ALLOW_PRIVATE_DESTINATIONS", "true"), ("SWITCHBOARD_APPS_RETRY_BASE_SECS", "0.1")];
    let mut server = run_binary_with(dir.path(), port, Some(admin.1), &env);
    wait_healthy(&client, &base).await;
    let post = |path: &str, auth: Option<(&str, &str)>, bearer: Option<&str>, body: Value| {
        let mut request = client.post(format!("{base}{path}"));
        if let Some((user, password)) = auth {
            request = request.basic_auth(user, password);
        }
        if let Some(token) = bearer {
            request = request.insert_header(("authorization", format!("Bearer {token}")));
        }
        async move { reply(request.send_json(&body).await).await }
    };
    let users = ["u1", "u2", "u3", "u4"];
    for name in users {
        let r =
            post("/restapi/v1/users", Some(admin), None, json!({"username": name, "password": format!("pw-{name}")}))
                .await;
        assert_eq!(r.status, 201);
    }
    let created = post("/restapi/v1/apps", Some(admin), None, json!({"name": "bot"})).await.json();
    let token = created["token"].as_str().unwrap().to_owned();
    assert_eq!(post("/api/v1/register", None, Some(&token), json!({})).await.status, 200);
    let hook = reply(
        client
            .put(format!("{base}/api/v1/webhook"))
            .insert_header(("authorization", format!("Bearer {token}")))
            .send_json(&json!({"url": receiver.url}))
            .await,
    )
    .await;
    assert_eq!(hook.status, 200, "{}", hook.text());

    // 200 messages from four users (four chats), each acknowledged (committed).
    let mut streams = HashMap::new();
    for name in users {
        let pw = format!("pw-{name}");
        let r =
            reply(client.post(format!("{base}/restapi/v1/chat/{name}/login")).basic_auth(name, &pw).send().await).await;
        streams.insert(name, r.text());
    }
    for i in 0..50 {
        for name in users {
            let pw = format!("pw-{name}");
            let path = format!("/restapi/v1/chat/{}/messages/bot", streams[name]);
            let r = post(&path, Some((name, &pw)), None, json!({"body": format!("{name} {i}")})).await;
            assert_eq!(r.status, 200, "{}", r.text());
        }
    }
    // Some were delivered, most were not: kill -9.
    let partial = receiver.wait_for(20, Duration::from_secs(10)).await.len();
    assert!(partial < 200, "the receiver is slow enough to be interrupted ({partial})");
    server.kill().expect("kill -9");
    server.wait().unwrap();
    let mut server = run_binary_with(dir.path(), port, Some(admin.1), &env);
    wait_healthy(&client, &base).await;

    let seen = receiver.wait_for_distinct(200, Duration::from_secs(60)).await;
    let _ = server.kill();
    let _ = server.wait();
    let mut first_seen: Vec<(String, String)> = Vec::new();
    let mut deliveries_of: HashMap<String, String> = HashMap::new();
    for s in &seen {
        let body = s.json();
        let message = body["id"].as_str().unwrap().to_owned();
        let delivery = s.headers["x-switchboard-delivery"].clone();
        match deliveries_of.get(&message) {
            Some(known) => assert_eq!(*known, delivery, "a duplicate carries the same delivery id"),
            None => {
                deliveries_of.insert(message, delivery);
                first_seen.push((
                    body["from"]["id"].as_str().unwrap().to_owned(),
                    body["message"]["data"].as_str().unwrap().to_owned(),
                ));
            }
        }
    }
    assert_eq!(first_seen.len(), 200, "every message arrived");
    for name in users {
        let order: Vec<&str> =
            first_seen.iter().filter(|(from, _)| from == name).map(|(_, text)| text.as_str()).collect();
        let expected: Vec<String> = (0..50).map(|i| format!("{name} {i}")).collect();
        assert_eq!(order, expected, "{name}'s chat in order");
    }
    receiver.server.stop(false).await;
}
