//! Web sites (ImbaChat): site user tokens made like the seed's PHP `getJWT` sign users in on
//! every door, every refusal says what is wrong, and the users-info URL of a real HTTP server
//! started here names them in events, contacts, search and room occupants, cached and
//! batched, without a failing site holding chat up. Also the browser rules (CORS, the
//! websocket `Origin` check).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{web, HttpRequest, HttpResponse};
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::helpers::*;
use crate::xmpp::Xmpp;

#[derive(Clone, Copy, PartialEq, Debug)]
enum SiteMode {
    Answer,
    Fail,
    Slow,
}

/// What the site's server saw: one entry per users-info request, the ids it was asked.
struct SiteState {
    calls: Mutex<Vec<Vec<String>>>,
    refused: Mutex<usize>,
    mode: Mutex<SiteMode>,
}

/// A site's own HTTP server, like the seed's PHP handler: Basic `root:abc` (the user name
/// compared lower-cased), ids in `?user_ids=` or as the last path segment.
struct SiteServer {
    base: String,
    state: Arc<SiteState>,
    _handle: actix_web::dev::ServerHandle,
}

fn people() -> HashMap<&'static str, Value> {
    HashMap::from([
        ("1", json!({"user_id": 1, "name": "John", "avatar_url": "http://img.example/1.png", "badge": "gold"})),
        ("2", json!({"user_id": 2, "name": "Mary", "avatar_url": false, "chat_role": "admin"})),
        ("3", json!({"user_id": "3", "name": "Ivan", "lastlogin": 1700000000})),
        ("4", json!({"user_id": 4, "name": "Olga"})),
        ("5", json!({"user_id": 5, "name": "Paul"})),
        ("P11 A", json!({"user_id": "P11 A", "name": "Profile A"})),
    ])
}

async fn users_info(req: HttpRequest, state: web::Data<Arc<SiteState>>) -> HttpResponse {
    let authorized = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|c| c.split_once(':').map(|(u, p)| (u.to_lowercase(), p.to_owned())))
        .is_some_and(|(u, p)| u == "root" && p == "abc");
    if !authorized {
        *state.refused.lock().unwrap() += 1;
        return HttpResponse::Unauthorized()
            .insert_header(("WWW-Authenticate", "Basic realm=\"Backend\""))
            .json(json!({"code": 401, "version": 1.0, "error": "Authenticate required!", "debug": ""}));
    }
    let raw = match req.match_info().get("ids") {
        Some(ids) => ids.to_owned(),
        None => crate_query(req.query_string(), "user_ids"),
    };
    let ids: Vec<String> = raw.split(',').map(str::to_owned).collect();
    state.calls.lock().unwrap().push(ids.clone());
    let mode = *state.mode.lock().unwrap();
    match mode {
        SiteMode::Fail => return HttpResponse::InternalServerError().body("database is down"),
        SiteMode::Slow => actix_rt::time::sleep(Duration::from_secs(30)).await,
        SiteMode::Answer => {}
    }
    let known = people();
    HttpResponse::Ok().json(ids.iter().filter_map(|id| known.get(id.as_str()).cloned()).collect::<Vec<_>>())
}

fn crate_query(query: &str, name: &str) -> String {
    web::Query::<HashMap<String, String>>::from_query(query).unwrap().get(name).cloned().unwrap_or_default()
}

impl SiteServer {
    fn start() -> SiteServer {
        let state = Arc::new(SiteState {
            calls: Mutex::default(),
            refused: Mutex::default(),
            mode: Mutex::new(SiteMode::Answer),
        });
        let data = web::Data::new(state.clone());
        let (base, handle) = loopback_server(move |cfg| {
            cfg.app_data(data.clone())
                .route("/users", web::get().to(users_info))
                .route("/imbachat/api/v1/users/{ids}", web::get().to(users_info));
        });
        SiteServer { base, state, _handle: handle }
    }

    fn calls(&self) -> Vec<Vec<String>> {
        self.state.calls.lock().unwrap().clone()
    }

    fn set(&self, mode: SiteMode) {
        *self.state.mode.lock().unwrap() = mode;
    }
}

fn site_config(c: &mut switchboard::Config) {
    c.sites.allow_private_destinations = true;
    c.sites.users_info_retry_secs = 0.5;
    c.sites.users_info_timeout_secs = 1.0;
    c.sites.users_info_batch_delay_secs = 0.05;
}

/// Creates site `id` (ids in `ids_in`) with the users-info URL `url`; returns its secret.
async fn create_site(app: &TestApp, id: &str, url: &str, ids_in: &str) -> String {
    let body = json!({
        "id": id, "name": "The Shop", "usersInfoUrl": url, "apiLogin": "Root", "apiPassword": "abc",
        "origins": ["http://127.0.0.1:1"], "idsIn": ids_in,
    });
    let r = app.post_json("/restapi/v1/sites", app.admin(), &body).await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["idsIn"], ids_in);
    r.json()["secret"].as_str().unwrap().to_owned()
}

async fn exchange(app: &TestApp, site: &str, token: &str) -> Reply {
    reply(
        app.client.post(app.url("/restapi/v1/auth/site-token")).send_json(&json!({"site": site, "token": token})).await,
    )
    .await
}

/// Opens `/sse/{user}?site=…&token=…`.
async fn site_sse(app: &TestApp, site: &str, user: &str, token: &str) -> Sse {
    let request = app
        .client
        .get(app.url(&format!("/sse/{user}?site={site}&token={token}")))
        .insert_header(("accept", "text/event-stream"))
        .timeout(Duration::from_secs(3600));
    TestApp::open_sse(request, user).await
}

/// Polls the profiles API until `id`'s name is `name`.
async fn wait_for_name(app: &TestApp, site: &str, bearer: &str, id: &str, name: &str) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let r = app.get_bearer(&format!("/restapi/v1/sites/{site}/users?ids={}", id.replace(' ', "%20")), bearer).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let user = r.json()["users"][0].clone();
        if user["name"] == name || Instant::now() > deadline {
            assert_eq!(user["name"], name, "{user}");
            return user;
        }
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_rt::test]
async fn site_tokens_made_like_the_php_sample_sign_users_in_on_every_door_and_every_fault_is_refused() {
    let app = spawn_app_with(site_config).await;
    let site = SiteServer::start();
    let secret = create_site(&app, "shop", &format!("{}/users", site.base), "query").await;
    let other_secret = create_site(&app, "blog", "", "path").await;

    // The exchange: a session token for the site user's own account, made on first sign-in.
    let r = exchange(&app, "shop", &site_token(json!(1), &secret)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!((r.json()["username"].as_str(), r.json()["jid"].as_str()), (Some("shop.1"), Some("shop.1@localhost")));
    let session = r.json()["token"].as_str().unwrap().to_owned();
    let me = app.get("/restapi/v1/users/shop.1", app.admin()).await;
    assert_eq!(me.status, 200, "{}", me.text());
    // String ids: plain ones as they are, others as hex.
    let r = exchange(&app, "shop", &site_token(json!("p11-a"), &secret)).await;
    assert_eq!(r.json()["username"], "shop.p11-a", "{}", r.text());
    let r = exchange(&app, "shop", &site_token(json!("P11 A"), &secret)).await;
    assert_eq!(r.json()["username"], "shop..5031312041", "{}", r.text());

    // SSE with ?site=&token=, and a message to it over REST from another site user.
    let mut sse = site_sse(&app, "shop", "shop.1", &site_token(json!(1), &secret)).await;
    let (two, stream) = app.site_session("shop", &site_token(json!(2), &secret)).await;
    let path = format!("/restapi/v1/chat/{stream}/messages/shop.1@localhost");
    let sent = app.post_bearer(&path, &two, Some(&json!({"body": "hello from the shop"}))).await;
    assert_eq!(sent.status, 200, "{}", sent.text());
    let event = next_of(&mut sse, "chatapi.chat", "chat").await;
    assert_eq!(event.data["body"], "hello from the shop");
    assert_eq!(event.data["from"].as_str().unwrap().split('/').next(), Some("shop.2@localhost"));

    // /ws with ?site=&token=, and the session token from the exchange.
    for query in [format!("?site=shop&token={}", site_token(json!(1), &secret)), format!("?token={session}")] {
        let (response, _framed) = app.client.ws(app.ws_url(&format!("/ws{query}"))).connect().await.unwrap();
        assert_eq!(response.status().as_u16(), 101, "{query}");
    }
    // XMPP PLAIN with the site user's account name and its site token as the password.
    let x = Xmpp::login(&app, "shop.1", &site_token(json!(1), &secret)).await;
    assert!(x.jid.starts_with("shop.1@localhost/"), "{}", x.jid);

    // Every refusal, with what is wrong.
    let payload = site_token(json!(1), &secret).split('.').nth(1).unwrap().to_owned();
    let url = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let none = format!("{}.{payload}.", url(br#"{"typ":"JWT","alg":"none"}"#));
    let mut hs512 = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    let hs512_head = url(br#"{"typ":"JWT","alg":"HS512"}"#);
    hs512.update(format!("{hs512_head}.{payload}").as_bytes());
    let hs512 = format!("{hs512_head}.{payload}.{}", url(&hs512.finalize().into_bytes()));
    let cases = [
        ("shop", site_token(json!(1), "not the secret"), "signature"),
        ("shop", site_token(json!(1), &other_secret), "signature"),
        ("shop", none, "algorithm is \"none\""),
        ("shop", hs512, "HS512"),
        ("shop", php_jwt(&json!({"exp": unix_now() - 5, "user_id": 1}), &secret), "expired"),
        ("shop", php_jwt(&json!({"exp": unix_now() + 60}), &secret), "user_id"),
        ("shop", php_jwt(&json!({"user_id": 1}), &secret), "exp"),
        ("shop", php_jwt(&json!({"exp": unix_now() + 60, "user_id": true}), &secret), "user_id"),
        ("shop", "garbage".to_owned(), "not a JWT"),
        ("nowhere", site_token(json!(1), &secret), "no site 'nowhere'"),
    ];
    for (site_id, bad, says) in &cases {
        let r = exchange(&app, site_id, bad).await;
        assert_eq!(r.status, 401, "{says}: {}", r.text());
        assert!(r.message().contains(says), "{says}: {}", r.message());
        let ws = app.client.ws(app.ws_url(&format!("/ws?site={site_id}&token={bad}"))).connect().await;
        assert!(ws.is_err(), "{says}: the websocket was opened");
        let sse = reply(
            app.client
                .get(app.url(&format!("/sse/shop.1?site={site_id}&token={bad}")))
                .insert_header(("accept", "text/event-stream"))
                .send()
                .await,
        )
        .await;
        assert_eq!(sse.status, 401, "{says}: {}", sse.text());
    }
    let mut x = Xmpp::connect(&app).await;
    x.open().await;
    let _features = x.next().await;
    let failure = x.auth("shop.1", &site_token(json!(1), &other_secret)).await;
    assert_eq!(failure.name, "failure", "{}", failure.to_xml());
    // Another user's token does not sign in as shop.1 over XMPP.
    let failure = x.auth("shop.1", &site_token(json!(2), &secret)).await;
    assert_eq!(failure.name, "failure", "{}", failure.to_xml());

    // A site user has no password; a person with a name of a site user's shape is not the site's.
    let r = app.post_text("/restapi/v1/chat/shop.1/login", ("shop.1", ""), "").await;
    assert_eq!(r.status, 401, "{}", r.text());
    let r =
        app.post_json("/restapi/v1/users", app.admin(), &json!({"username": "shop.99", "password": "pw-shop"})).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = exchange(&app, "shop", &site_token(json!(99), &secret)).await;
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(r.message().contains("not this site's user"), "{}", r.message());
    let r = app
        .post_json("/restapi/v1/users", app.admin(), &json!({"username": "x", "password": "pw-x12345", "kind": "site"}))
        .await;
    assert_eq!(r.status, 400, "{}", r.text());

    // Rotating the secret ends the old tokens at once.
    let old = site_token(json!(1), &secret);
    let r = app.post_json("/restapi/v1/sites/shop/secret", app.admin(), &json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let new_secret = r.json()["secret"].as_str().unwrap().to_owned();
    assert_eq!(exchange(&app, "shop", &old).await.status, 401);
    assert_eq!(exchange(&app, "shop", &site_token(json!(1), &new_secret)).await.status, 200);
    // A locked-out site user is refused too.
    assert_eq!(app.post_json("/restapi/v1/lockouts/shop.1", app.admin(), &json!({})).await.status, 201);
    let r = exchange(&app, "shop", &site_token(json!(1), &new_secret)).await;
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(r.message().contains("locked"), "{}", r.message());
}

#[actix_rt::test]
async fn the_sites_admin_api_is_for_the_admin_and_checks_what_it_is_given() {
    let app = spawn_app_with(|c| c.sites.allow_private_destinations = false).await;
    app.create_user("ann").await;
    let body = json!({"id": "shop", "usersInfoUrl": "http://93.184.216.34/users", "origins": ["https://shop.example"]});
    let r = app.post_json("/restapi/v1/sites", ("ann", "pw-ann"), &body).await;
    assert_eq!(r.status, 403, "{}", r.text());
    let r = reply(app.client.post(app.url("/restapi/v1/sites")).send_json(&body).await).await;
    assert_eq!(r.status, 401, "{}", r.text());
    let r = app.post_json("/restapi/v1/sites", app.admin(), &body).await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["secret"].as_str().unwrap().len(), 64, "{}", r.text());
    assert_eq!(r.json()["name"], "shop");
    let shown = app.get("/restapi/v1/sites/shop", app.admin()).await;
    assert_eq!(shown.status, 200);
    assert!(shown.json().get("secret").is_none() && shown.json().get("apiPassword").is_none(), "{}", shown.text());
    assert_eq!(app.get("/restapi/v1/sites", app.admin()).await.json()["sites"][0]["id"], "shop");
    assert_eq!(app.get("/restapi/v1/sites", ("ann", "pw-ann")).await.status, 403);
    assert_eq!(app.post_json("/restapi/v1/sites", app.admin(), &body).await.status, 409);

    let refusals = [
        (json!({"name": "no id"}), "id is missing"),
        (json!({"id": "Shop"}), "lowercase"),
        (json!({"id": "a.b"}), "lowercase"),
        (json!({"id": "s2", "usersInfoUrl": "http://127.0.0.1:9/users"}), "private or internal"),
        (json!({"id": "s2", "usersInfoUrl": "ftp://x/"}), "http://"),
        (json!({"id": "s2", "origins": ["shop.example"]}), "origins"),
        (json!({"id": "s2", "origins": ["http://a/b"]}), "without a path"),
        (json!({"id": "s2", "idsIn": "body"}), "idsIn"),
        (json!({"id": "s2", "secret": "mine"}), "unknown field"),
        (json!({"id": "s2", "name": "x".repeat(300)}), "longer than"),
    ];
    for (body, says) in refusals {
        let r = app.post_json("/restapi/v1/sites", app.admin(), &body).await;
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        assert!(r.text().contains(says), "{body}: {}", r.text());
    }
    let r = app.put_json("/restapi/v1/sites/shop", app.admin(), &json!({"id": "other"})).await;
    assert_eq!(r.status, 400, "{}", r.text());
    let r = app.put_json("/restapi/v1/sites/shop", app.admin(), &json!({"name": "The Shop", "idsIn": "path"})).await;
    assert_eq!(
        (r.status, r.json()["name"].as_str(), r.json()["idsIn"].as_str()),
        (200, Some("The Shop"), Some("path"))
    );
    assert_eq!(app.put_json("/restapi/v1/sites/none", app.admin(), &json!({})).await.status, 404);
    assert_eq!(app.post_json("/restapi/v1/sites/none/secret", app.admin(), &json!({})).await.status, 404);
    assert_eq!(app.delete("/restapi/v1/sites/shop", ("ann", "pw-ann")).await.status, 403);
    assert_eq!(app.delete("/restapi/v1/sites/shop", app.admin()).await.status, 200);
    let r = app.get("/restapi/v1/sites/shop", app.admin()).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["exception"], "SiteNotFoundException", "{}", r.text());
}

#[actix_rt::test]
async fn users_info_names_site_users_everywhere_batched_cached_and_never_holding_chat_up() {
    let app = spawn_app_with(site_config).await;
    let site = SiteServer::start();
    let query_secret = create_site(&app, "shop", &format!("{}/users", site.base), "query").await;
    let path_secret = create_site(&app, "cms", &format!("{}/imbachat/api/v1/users", site.base), "path").await;

    // Three users sign in at once: one request for the three, with Basic auth the site checks.
    let tokens = [
        site_token(json!(1), &query_secret),
        site_token(json!(2), &query_secret),
        site_token(json!("3"), &query_secret),
    ];
    let (a, b, c) = tokio::join!(
        exchange(&app, "shop", &tokens[0]),
        exchange(&app, "shop", &tokens[1]),
        exchange(&app, "shop", &tokens[2])
    );
    let one = a.json()["token"].as_str().unwrap().to_owned();
    assert_eq!((b.status, c.status), (200, 200));
    let john = wait_for_name(&app, "shop", &one, "1", "John").await;
    assert_eq!((john["avatar_url"].as_str(), john["badge"].as_str()), (Some("http://img.example/1.png"), Some("gold")));
    assert_eq!(john["jid"], "shop.1@localhost");
    wait_for_name(&app, "shop", &one, "3", "Ivan").await;
    let calls = site.calls();
    assert_eq!(calls.len(), 1, "one request for three sign-ins: {calls:?}");
    let mut asked = calls[0].clone();
    asked.sort();
    assert_eq!(asked, ["1", "2", "3"]);
    assert_eq!(*site.state.refused.lock().unwrap(), 0, "the site accepted the server's credentials");

    // Ids not yet seen, asked together: one more request; then many lookups, no more.
    let r = app.get_bearer("/restapi/v1/sites/shop/users?ids=4,5,404", &one).await;
    let users = r.json()["users"].clone();
    assert_eq!((users[0]["name"].as_str(), users[1]["name"].as_str()), (Some("Olga"), Some("Paul")), "{users}");
    assert_eq!((users[2]["name"].as_str(), users[2]["known"].as_bool()), (Some("404"), Some(false)), "{users}");
    assert_eq!(site.calls().len(), 2);
    for _ in 0..10 {
        let r = app.get_bearer("/restapi/v1/sites/shop/users?ids=1,2,3,4,5", &one).await;
        assert_eq!(r.json()["users"][1]["name"], "Mary");
    }
    assert_eq!(site.calls().len(), 2, "answers are kept within the TTL: {:?}", site.calls());
    // A site user the site knows can be written to before it signs in: ids 4 and 5 have accounts.
    assert_eq!(app.get("/restapi/v1/users/shop.4", app.admin()).await.status, 200);
    assert_eq!(app.get("/restapi/v1/users/shop.404", app.admin()).await.status, 404);

    // Path ids, including one that is not plain.
    let cms = exchange(&app, "cms", &site_token(json!("P11 A"), &path_secret)).await.json()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    wait_for_name(&app, "cms", &cms, "P11 A", "Profile A").await;
    assert_eq!(site.calls().last().unwrap(), &vec!["P11 A".to_owned()], "sent escaped, read back: {:?}", site.calls());
    // The profiles API is for the site's own users (and the admin).
    let r = app.get_bearer("/restapi/v1/sites/shop/users?ids=1", &cms).await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(app.get("/restapi/v1/sites/shop/users?ids=1", app.admin()).await.status, 200);
    for bad in ["", "?ids=", "?ids=,"] {
        assert_eq!(app.get_bearer(&format!("/restapi/v1/sites/shop/users{bad}"), &one).await.status, 400, "{bad}");
    }

    // Names in events (from stays the address), contacts, search and room occupants.
    let mut sse = site_sse(&app, "shop", "shop.2", &site_token(json!(2), &query_secret)).await;
    let mut ws = {
        let (_, framed) = app
            .client
            .ws(app.ws_url(&format!("/ws?site=shop&token={}", site_token(json!(1), &query_secret))))
            .connect()
            .await
            .unwrap();
        Ws { framed }
    };
    ws.send(json!({"op": "message", "to": "shop.2@localhost", "body": "hi Mary", "id": "m1"})).await;
    assert_eq!(ws.next_of_type("ack").await["id"], "m1");
    let event = next_of(&mut sse, "chatapi.chat", "chat").await;
    assert_eq!(event.data["from"].as_str().unwrap().split('/').next(), Some("shop.1@localhost"));
    assert_eq!(
        (event.data["name"].as_str(), event.data["avatar"].as_str()),
        (Some("John"), Some("http://img.example/1.png"))
    );
    let history = app.get_bearer("/restapi/v1/chat/shop.1/messages?to=shop.2@localhost", &one).await;
    assert_eq!(history.json()["messages"][0]["name"], "John", "{}", history.text());

    let stream = app.post_bearer("/restapi/v1/chat/shop.1/login", &one, None).await.text();
    let added = app
        .post_bearer(&format!("/restapi/v1/chat/{stream}/contacts"), &one, Some(&json!({"jid": "shop.2@localhost"})))
        .await;
    assert_eq!(added.status, 201, "{}", added.text());
    let contacts = app.get_bearer(&format!("/restapi/v1/chat/{stream}/contacts"), &one).await;
    assert_eq!(contacts.json()["rosterItem"][0]["name"], "Mary", "{}", contacts.text());
    let found = app.get_bearer("/restapi/v1/chat/users?search=Ivan", &one).await;
    assert_eq!(found.json()["users"][0]["username"], "shop.3", "search finds the site's name: {}", found.text());
    assert_eq!(found.json()["users"][0]["name"], "Ivan");

    ws.send(json!({"op": "join", "room": "lobby@conference.localhost", "nick": "johnny", "id": "j1"})).await;
    assert_eq!(ws.next_of_type("joined").await["id"], "j1");
    let occupants = app.get_bearer("/restapi/v1/chat/rooms/lobby/occupants", &one).await;
    let listed = occupants.text();
    assert!(listed.contains("\"name\":\"John\""), "occupants name the site user: {listed}");

    // The site fails: chat goes on, users show as their ids, and are asked again later.
    let calls_before = site.calls().len();
    site.set(SiteMode::Fail);
    let five = exchange(&app, "shop", &site_token(json!(6), &query_secret)).await;
    assert_eq!(five.status, 200, "{}", five.text());
    let six = five.json()["token"].as_str().unwrap().to_owned();
    let mut six_ws = {
        let (_, framed) = app.client.ws(app.ws_url(&format!("/ws?token={six}"))).connect().await.unwrap();
        Ws { framed }
    };
    let started = Instant::now();
    six_ws.send(json!({"op": "message", "to": "shop.2@localhost", "body": "from six", "id": "s1"})).await;
    assert_eq!(six_ws.next_of_type("ack").await["id"], "s1");
    let event = next_of(&mut sse, "chatapi.chat", "chat").await;
    assert_eq!((event.data["body"].as_str(), event.data["name"].as_str()), (Some("from six"), Some("6")));
    assert!(started.elapsed() < Duration::from_secs(1), "delivery waited for the site: {:?}", started.elapsed());
    let shown = app.get_bearer("/restapi/v1/sites/shop/users?ids=6", &six).await;
    assert_eq!(shown.json()["users"][0]["name"], "6", "{}", shown.text());
    assert!(site.calls().len() > calls_before, "the failing site was asked");
    let metrics = app.get("/metrics", app.admin()).await.text();
    assert!(metrics.contains("switchboard_users_info_requests_total{outcome=\"failed\"} 1"), "{metrics}");
    // Slow is failing too, and does not hold chat up either.
    site.set(SiteMode::Slow);
    actix_rt::time::sleep(Duration::from_millis(600)).await;
    let started = Instant::now();
    let _ = app.get_bearer("/restapi/v1/sites/shop/users?ids=6", &six).await;
    six_ws.send(json!({"op": "message", "to": "shop.2@localhost", "body": "still here", "id": "s2"})).await;
    assert_eq!(six_ws.next_of_type("ack").await["id"], "s2");
    assert_eq!(next_of(&mut sse, "chatapi.chat", "chat").await.data["body"], "still here");
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    // Back again: after the retry delay the name comes.
    site.set(SiteMode::Answer);
    actix_rt::time::sleep(Duration::from_millis(1200)).await;
    let known = app.get_bearer("/restapi/v1/sites/shop/users?ids=6", &six).await;
    assert_eq!(known.json()["users"][0]["name"], "6", "the site does not know 6: {}", known.text());
    assert_eq!(known.json()["users"][0]["known"], false);
}

#[actix_rt::test]
async fn wrong_site_credentials_leave_names_as_ids() {
    let app = spawn_app_with(site_config).await;
    let site = SiteServer::start();
    let body = json!({"id": "shop", "usersInfoUrl": format!("{}/users", site.base), "apiLogin": "root", "apiPassword": "wrong"});
    let r = app.post_json("/restapi/v1/sites", app.admin(), &body).await;
    let secret = r.json()["secret"].as_str().unwrap().to_owned();
    let one = exchange(&app, "shop", &site_token(json!(1), &secret)).await.json()["token"].as_str().unwrap().to_owned();
    let r = app.get_bearer("/restapi/v1/sites/shop/users?ids=1", &one).await;
    assert_eq!(
        (r.json()["users"][0]["name"].as_str(), r.json()["users"][0]["known"].as_bool()),
        (Some("1"), Some(false))
    );
    assert!(*site.state.refused.lock().unwrap() >= 1, "the site refused the wrong password");
    // The right password: asked again (after the retry delay), named.
    let r = app.put_json("/restapi/v1/sites/shop", app.admin(), &json!({"apiPassword": "abc"})).await;
    assert_eq!(r.status, 200);
    actix_rt::time::sleep(Duration::from_millis(600)).await;
    wait_for_name(&app, "shop", &one, "1", "John").await;
}

#[actix_rt::test]
async fn browsers_from_a_sites_origins_may_call_and_others_may_not() {
    let app = spawn_app().await;
    let body = json!({"id": "shop", "origins": ["http://shop.example:8080"]});
    let secret =
        app.post_json("/restapi/v1/sites", app.admin(), &body).await.json()["secret"].as_str().unwrap().to_owned();
    let preflight = |origin: &str| {
        app.client
            .request(actix_web::http::Method::OPTIONS, app.url("/restapi/v1/auth/site-token"))
            .insert_header(("origin", origin))
            .insert_header(("access-control-request-method", "POST"))
            .insert_header(("access-control-request-headers", "content-type"))
            .send()
    };
    let ok = preflight("http://shop.example:8080").await.unwrap();
    assert_eq!(ok.status().as_u16(), 204);
    assert_eq!(ok.headers().get("access-control-allow-origin").unwrap(), "http://shop.example:8080");
    let refused = preflight("http://evil.example").await.unwrap();
    assert_eq!(refused.status().as_u16(), 403);
    assert!(refused.headers().get("access-control-allow-origin").is_none());

    let call = |origin: &str| {
        app.client
            .post(app.url("/restapi/v1/auth/site-token"))
            .insert_header(("origin", origin))
            .send_json(&json!({"site": "shop", "token": site_token(json!(7), &secret)}))
    };
    let allowed = call("http://shop.example:8080").await.unwrap();
    assert_eq!(allowed.status().as_u16(), 200);
    assert_eq!(allowed.headers().get("access-control-allow-origin").unwrap(), "http://shop.example:8080");
    let other = call("http://evil.example").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none(), "no CORS grant for another origin");

    let ws = |origin: String, query: String| {
        let app = &app;
        async move { app.client.ws(app.ws_url(&format!("/ws{query}"))).origin(origin).connect().await }
    };
    let site_query = format!("?site=shop&token={}", site_token(json!(7), &secret));
    let opened = ws("http://shop.example:8080".into(), site_query.clone()).await.unwrap();
    assert_eq!(opened.0.status().as_u16(), 101);
    match ws("http://evil.example".into(), site_query.clone()).await {
        Err(awc::error::WsClientError::InvalidResponseStatus(status)) => assert_eq!(status.as_u16(), 403),
        other => panic!("a foreign origin opened the websocket: {:?}", other.map(|o| o.0.status())),
    }
    // The server's own pages are always welcome.
    let own = app.base.clone();
    assert_eq!(ws(own, site_query).await.unwrap().0.status().as_u16(), 101);
}
