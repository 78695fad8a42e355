//! Interop: `@xmpp/client` 0.14 (npm), a client nobody on this project wrote, connects over
//! `/xmpp-websocket`, and over TCP on `xmpp.c2s_bind` with STARTTLS (trusting the generated
//! certificate), authenticates with SASL SCRAM-SHA-1, binds, fetches its roster, talks 1:1
//! with a REST/SSE user, joins a room, and fetches its 1:1 archive and the room's. The script
//! (`tests/interop/xmpp-client.mjs`) prints one JSON line per step; this test drives the
//! other side.
//!
//! Needs Node.js ≥ 20.10 and `npm ci --prefix tests/interop` (`.ci/run` does it; this test
//! runs it too when the packages are missing).

use std::path::Path;

use serde_json::json;

use crate::helpers::*;

fn interop_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop")
}

#[actix_web::test]
async fn xmpp_js_over_websocket_binds_fetches_its_roster_chats_joins_a_room_and_reads_its_archive() {
    let app = spawn_app().await;
    let service = app.ws_url("/xmpp-websocket");
    chat_with_xmpp_js(&app, &service, &[]).await;
}

#[actix_web::test]
async fn xmpp_js_over_tcp_with_starttls_does_the_same() {
    let app = spawn_app_with(|config| config.xmpp.c2s_bind = "127.0.0.1:0".into()).await;
    let service = format!("xmpp://127.0.0.1:{}", app.xmpp_port.unwrap());
    let cert = app.dir.path().join("tls/xmpp-cert.pem");
    chat_with_xmpp_js(&app, &service, &[("NODE_EXTRA_CA_CERTS", cert.to_str().unwrap())]).await;
}

/// Ann on `@xmpp/client` at `service`, Bob on REST and SSE.
async fn chat_with_xmpp_js(app: &TestApp, service: &str, env: &[(&str, &str)]) {
    for name in ["ann", "bob"] {
        app.create_user(name).await;
    }
    let r = app
        .post_json("/restapi/v1/users/ann/roster", app.admin(), &json!({"jid": "bob@localhost", "subscriptionType": 3}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let bob = app.login("bob").await;
    let mut bob_sse = app.sse("bob", &format!("?stream={bob}")).await;
    let joined = reply(
        app.client.put(app.url(&format!("/restapi/v1/chat/{bob}/rooms/hall"))).basic_auth("bob", "pw-bob").send().await,
    )
    .await;
    assert_eq!(joined.status, 201, "{}", joined.text());

    let args = ["--experimental-websocket", "xmpp-client.mjs", service, "localhost", "ann", "pw-ann", "bob@localhost"];
    let mut script = NodeScript::start_with_env(
        "interop",
        &interop_dir(),
        "@xmpp/client",
        &[&args[..], &["hall@conference.localhost"]].concat(),
        env,
    );

    let sasl = script.step("sasl").await;
    assert_eq!(sasl["offered"], json!(["SCRAM-SHA-1", "PLAIN"]), "the library's mechanisms that the server offers");
    let online = script.step("online").await;
    assert!(online["jid"].as_str().unwrap().starts_with("ann@localhost/"), "{online}");
    let roster = script.step("roster").await;
    assert_eq!(roster["items"], json!(["bob@localhost"]));

    script.step("sent").await;
    let got = loop {
        let e = next_of(&mut bob_sse, "chatapi.chat", "chat").await;
        if e.data["body"] == "hello from xmpp.js" {
            break e;
        }
    };
    assert_eq!(got.data["from"], online["jid"]);

    let joined = script.step("joined").await;
    assert_eq!(joined["self"], true, "self-presence carries status 110");
    loop {
        let e = next_of(&mut bob_sse, "chatapi.muc", "groupchat").await;
        if e.data["body"] == "xmpp.js in the room" {
            assert_eq!(e.data["from"], "hall@conference.localhost/interop");
            break;
        }
    }
    let said = app
        .post_json(
            &format!("/restapi/v1/chat/{bob}/rooms/hall"),
            ("bob", "pw-bob"),
            &json!({"body": "bob in the room"}),
        )
        .await;
    assert!(said.status < 300, "{}", said.text());

    assert_eq!(app.send("bob", &bob, "ann", "hello back").await.status, 200);
    script.step("answered").await;
    let archive = script.step("archive").await;
    assert_eq!(archive["bodies"], json!(["hello from xmpp.js", "hello back"]), "{archive}");
    assert_eq!(archive["complete"], "true");
    let room_archive = script.step("room archive").await;
    assert_eq!(room_archive["bodies"], json!(["xmpp.js in the room", "bob in the room"]), "{room_archive}");
    assert_eq!(room_archive["complete"], "true");
    script.step("done").await;
    script.finish().await;
}
