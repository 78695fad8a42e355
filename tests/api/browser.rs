//! End to end in headless Chromium (Debian's `chromium`, driven by `playwright-core` from npm,
//! pinned by `tests/browser/package-lock.json`): the web client, the widget embedded in a site's
//! page with the seed's snippet, and the agent console with the visitor page. The script
//! (`tests/browser/e2e.mjs`) drives the pages and reports each step; this test sets the server
//! up and checks the other side. Screenshots go to `target/screenshots/`.
//!
//! Needs `/usr/bin/chromium` (`apt-get install chromium`; `.ci/run` does it) and Node.js.

use std::path::{Path, PathBuf};
use std::time::Duration;

use actix_web::{web, HttpResponse};
use base64::Engine;
use serde_json::{json, Value};

use crate::helpers::*;

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

fn shots_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&dir).expect("the screenshots folder");
    dir
}

/// Starts `e2e.mjs` with the scenario's input.
fn run(scenario: &str, base: &str, mut input: Value) -> NodeScript {
    assert!(
        Path::new("/usr/bin/chromium").exists() || std::env::var_os("CHROMIUM").is_some(),
        "the browser tests need Chromium: apt-get install chromium (.ci/run installs it)"
    );
    input["scenario"] = json!(scenario);
    input["base"] = json!(base);
    input["shots"] = json!(shots_dir());
    let input = input.to_string();
    NodeScript::start("browser", &browser_dir(), "playwright-core", &["e2e.mjs", &input])
}

const LONG: Duration = Duration::from_secs(30);

#[actix_web::test]
async fn two_people_sign_in_in_two_browsers_see_each_other_chat_reload_and_meet_in_a_room() {
    let app = spawn_app().await;
    for name in ["ann", "bob", "cy"] {
        app.create_user(name).await;
    }
    for (owner, contact) in [("ann", "bob@localhost"), ("bob", "ann@localhost")] {
        let item = json!({"jid": contact, "subscriptionType": 3});
        let r = app.post_json(&format!("/restapi/v1/users/{owner}/roster"), app.admin(), &item).await;
        assert!(r.status == 201 || r.status == 409, "{}", r.text());
    }
    // Enough history that the first page is not all of it.
    let stream = app.login("ann").await;
    for i in 0..35 {
        assert_eq!(app.send("ann", &stream, "bob", &format!("earlier {i}")).await.status, 200);
    }
    let page = reply(app.client.get(app.url("/")).send().await).await;
    assert_eq!(page.status, 200);
    assert!(page.text().contains("/web/app.js"), "{}", page.text());

    let passwords = json!({"ann": "pw-ann", "bob": "pw-bob", "cy": "pw-cy"});
    let mut script = run("chat", &app.base, json!({ "passwords": passwords, "offline": 35 }));
    script.step_within("online", LONG).await;
    script.step("presence").await;
    let request = script.step("request").await;
    assert_eq!(request["accepted"], "cy@localhost");
    let roster = app.get("/restapi/v1/users/cy/roster", app.admin()).await;
    assert!(
        roster.text().contains("ann@localhost") && roster.text().contains("\"subscriptionType\":3"),
        "{}",
        roster.text()
    );
    let unread = script.step("unread").await;
    assert_eq!(unread["count"], "35", "bob's unread count includes what waited: {unread}");
    script.step("received").await;
    script.step("typing").await;
    script.step("history").await;
    let paged = script.step("paged").await;
    assert!(paged["after"].as_u64() > paged["before"].as_u64(), "older messages paged in: {paged}");
    script.step("room").await;
    script.step("done").await;
    script.finish().await;
    // What the browsers said went through the server's archive.
    let history = app.get("/restapi/v1/chat/ann/messages?to=bob@localhost&limit=2", ("ann", "pw-ann")).await;
    let history = history.json();
    let bodies: Vec<&str> =
        history["messages"].as_array().unwrap().iter().map(|m| m["body"].as_str().unwrap()).collect();
    assert_eq!(bodies, ["hello bob", "hi ann"]);
}

/// The site's own server: a page embedding the widget with the seed's snippet, and the
/// users-info URL (Basic `root:abc`).
struct SitePages {
    server: String,
    page: std::sync::Mutex<String>,
}

/// A page for a visitor the site has not signed in: the widget is loaded with no argument.
async fn guest_page(state: web::Data<SitePages>) -> HttpResponse {
    let page = format!(
        r#"<!doctype html><html><body><h1>The Shop</h1><script src="{}/imbachat/v1/shop/widget"></script>
<script>window.ImbaChat.load().then(function (r) {{ window.guestResult = r; }});</script></body></html>"#,
        state.server
    );
    HttpResponse::Ok().content_type("text/html; charset=utf-8").body(page)
}

async fn site_page(state: web::Data<SitePages>) -> HttpResponse {
    HttpResponse::Ok().content_type("text/html; charset=utf-8").body(state.page.lock().unwrap().clone())
}

async fn site_users(req: actix_web::HttpRequest) -> HttpResponse {
    let expected = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("root:abc"));
    if req.headers().get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return HttpResponse::Unauthorized().json(json!({"code": 401, "error": "Authenticate required!"}));
    }
    let names = [("1", "John"), ("2", "Mary")];
    let query = web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string()).unwrap();
    let ids = query.get("user_ids").cloned().unwrap_or_default();
    let users: Vec<Value> = ids
        .split(',')
        .filter_map(|id| names.iter().find(|(n, _)| *n == id))
        .map(|(id, name)| json!({"user_id": id.parse::<u64>().unwrap(), "name": name, "avatar_url": false}))
        .collect();
    HttpResponse::Ok().json(users)
}

#[actix_web::test]
async fn a_sites_page_embeds_the_widget_with_the_seed_snippet_and_a_site_user_chats_from_it() {
    let app = spawn_app_with(|c| c.sites.allow_private_destinations = true).await;
    let pages = web::Data::new(SitePages { server: app.base.clone(), page: std::sync::Mutex::new(String::new()) });
    let data = pages.clone();
    let (site_base, _site) = loopback_server(move |cfg| {
        cfg.app_data(data.clone())
            .route("/", web::get().to(site_page))
            .route("/guest", web::get().to(guest_page))
            .route("/users", web::get().to(site_users));
    });

    let body = json!({
        "id": "shop", "name": "The Shop", "usersInfoUrl": format!("{site_base}/users"),
        "apiLogin": "root", "apiPassword": "abc", "origins": [site_base], "idsIn": "query",
    });
    let r = app.post_json("/restapi/v1/sites", app.admin(), &body).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let secret = r.json()["secret"].as_str().unwrap().to_owned();
    let widget = reply(app.client.get(app.url("/imbachat/v1/shop/widget")).send().await).await;
    assert_eq!(widget.status, 200);
    assert!(widget.content_type.as_deref().unwrap_or_default().starts_with("text/javascript"));
    let by_query = reply(app.client.get(app.url("/widget.js?site=shop")).send().await).await;
    assert_eq!(by_query.body, widget.body);
    assert_eq!(reply(app.client.get(app.url("/imbachat/v1/nope/widget")).send().await).await.status, 404);
    eprintln!("widget script: {} bytes", widget.body.len());

    // The seed's embedding snippet, unchanged, with a token made like its PHP getJWT.
    *pages.page.lock().unwrap() = format!(
        r#"<!doctype html><html><head><meta charset="utf-8"><title>The Shop</title></head>
<body><h1>The Shop</h1><p>Our products.</p>
<script src="{server}/imbachat/v1/shop/widget"></script>
<script>
imbaApi.on('imbaChat.loaded', function (e) {{ window.loadedEvent = e; }});
function imbachatWidget(o){{ if(!window.ImbaChat) return setTimeout(imbachatWidget,50,o);
  window.ImbaChat.load(o); }}
imbachatWidget({{user_id: 1, token: "{token}"}});
</script></body></html>"#,
        server = pages.server,
        token = site_token(json!(1), &secret),
    );
    // Site user 2 listens on SSE, signed in with its own site token.
    let request = app
        .client
        .get(app.url(&format!("/sse/shop.2?site=shop&token={}", site_token(json!(2), &secret))))
        .insert_header(("accept", "text/event-stream"))
        .timeout(Duration::from_secs(3600));
    let mut mary = TestApp::open_sse(request, "shop.2").await;

    let input = json!({"page": format!("{site_base}/"), "guestPage": format!("{site_base}/guest"), "message": "Is the blue one in stock?", "reply": "It is!"});
    let mut script = run("widget", &app.base, input);
    let connected = script.step_within("connected", LONG).await;
    eprintln!(
        "widget: load() to connected {:.0} ms, navigation to connected {:.0} ms",
        connected["loadToConnectedMs"].as_f64().unwrap(),
        connected["navigationToConnectedMs"].as_f64().unwrap()
    );
    assert_eq!(connected["loaded"]["user"], "shop.1@localhost", "imbaChat.loaded fired: {connected}");
    let dialog = script.step("dialog").await;
    assert_eq!((dialog["name"].as_str(), dialog["jid"].as_str()), (Some("Mary"), Some("shop.2@localhost")));
    script.step("titled").await;
    script.step("sent").await;
    let got = next_of(&mut mary, "chatapi.chat", "chat").await;
    assert_eq!(got.data["body"], "Is the blue one in stock?");
    assert_eq!(got.data["from"].as_str().unwrap().split('/').next(), Some("shop.1@localhost"));
    assert_eq!(got.data["name"], "John", "the sender's name from the users-info URL: {}", got.data);
    script.step("waiting-for-reply").await;
    let (token, stream) = app.site_session("shop", &site_token(json!(2), &secret)).await;
    let path = format!("/restapi/v1/chat/{stream}/messages/shop.1@localhost");
    let sent = app.post_bearer(&path, &token, Some(&json!({"body": "It is!"}))).await;
    assert_eq!(sent.status, 200, "{}", sent.text());
    script.step("replied").await;
    script.step("closed").await;
    let guest = script.step("guest").await;
    assert_eq!(guest["result"], json!({"guest": true}), "{guest}");
    assert!(guest["note"].as_str().unwrap().contains("Sign in"), "{guest}");
    script.step("done").await;
    script.finish().await;
}

#[actix_web::test]
async fn a_visitor_queues_on_the_visitor_page_and_an_agent_accepts_in_the_console_and_they_chat() {
    let app = spawn_app_with(|c| c.fastpath.offer_timeout_secs = 30.0).await;
    app.create_user("ann").await;
    let r = app.post_json("/restapi/v1/workgroups", app.admin(), &json!({"name": "sales", "members": ["ann"]})).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let page = reply(app.client.get(app.url("/ask/sales")).send().await).await;
    assert_eq!(page.status, 200);
    assert!(page.text().contains("/web/ask.js"));

    let mut script = run("fastpath", &app.base, json!({"passwords": {"ann": "pw-ann"}}));
    script.step_within("agent-online", LONG).await;
    let queued = script.step("queued").await;
    assert!(queued["status"].as_str().unwrap().contains("number 1"), "{queued}");
    let offered = script.step("offered").await;
    assert_eq!(offered["question"], "Do you ship to Mars?", "{offered}");
    assert!(offered["countdown"].as_str().unwrap().ends_with(" s"), "{offered}");
    script.step("accepted").await;
    script.step("chatted").await;
    script.step("done").await;
    script.finish().await;
    let chats = app.get("/restapi/v1/workgroups/sales/chats", app.admin()).await;
    let chat = &chats.json()["chats"][0];
    assert_eq!((chat["agent"].as_str(), chat["question"].as_str()), (Some("ann"), Some("Do you ship to Mars?")));
    let room = chat["room"].as_str().unwrap().split('@').next().unwrap().to_owned();
    let transcript = app.get(&format!("/restapi/v1/workgroups/sales/chats/{room}"), app.admin()).await;
    let text = transcript.text();
    assert!(text.contains("Hello, I have a question") && text.contains("Yes, we do"), "{text}");
}
