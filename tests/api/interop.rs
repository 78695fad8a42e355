//! Interop: `@xmpp/client` 0.14 (npm), a client nobody on this project wrote, connects over
//! `/xmpp-websocket`, authenticates with SASL PLAIN, binds, fetches its roster, talks 1:1
//! with a REST/SSE user and joins a room. The script (`tests/interop/xmpp-client.mjs`)
//! prints one JSON line per step; this test drives the other side.
//!
//! Needs Node.js ≥ 20.10 and `npm ci --prefix tests/interop` (`.ci/run` does it; this test
//! runs it too when the packages are missing).

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::helpers::*;

fn interop_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop")
}

/// Installs the pinned packages from the committed lockfile if they are missing.
fn ensure_packages() {
    let dir = interop_dir();
    if dir.join("node_modules/@xmpp/client/package.json").exists() {
        return;
    }
    let status = std::process::Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(&dir)
        .status()
        .expect("npm is installed (Node.js >= 20.10 is needed for the interop test)");
    assert!(status.success(), "npm ci in tests/interop failed");
}

struct Script {
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    child: tokio::process::Child,
}

impl Script {
    /// The next step the script reports, or a panic with what it said.
    async fn step(&mut self, event: &str) -> Value {
        loop {
            let line = tokio::time::timeout(Duration::from_secs(20), self.lines.next_line())
                .await
                .unwrap_or_else(|_| panic!("no '{event}' from the interop script in time"))
                .expect("script output")
                .unwrap_or_else(|| panic!("the interop script ended before '{event}'"));
            let value: Value = serde_json::from_str(&line).unwrap_or_else(|_| panic!("script said: {line}"));
            assert_ne!(value["event"], "failed", "the interop script failed: {value}");
            if value["event"] == event {
                return value;
            }
        }
    }
}

#[actix_web::test]
async fn xmpp_js_connects_binds_fetches_its_roster_chats_and_joins_a_room() {
    ensure_packages();
    let app = spawn_app().await;
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

    let service = app.ws_url("/xmpp-websocket");
    let mut child = tokio::process::Command::new("node")
        .arg("--experimental-websocket")
        .arg("xmpp-client.mjs")
        .args([service.as_str(), "localhost", "ann", "pw-ann", "bob@localhost", "hall@conference.localhost"])
        .current_dir(interop_dir())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs");
    let stdout = child.stdout.take().unwrap();
    let mut script = Script { lines: BufReader::new(stdout).lines(), child };

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

    assert_eq!(app.send("bob", &bob, "ann", "hello back").await.status, 200);
    script.step("answered").await;
    script.step("done").await;
    let status =
        tokio::time::timeout(Duration::from_secs(10), script.child.wait()).await.expect("the script exits").unwrap();
    assert!(status.success(), "the interop script exited with {status}");
}
