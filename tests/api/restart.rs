//! Durability: data survives a restart, and a `kill -9` right after acknowledgements loses
//! nothing that was acknowledged. The crash test runs the real binary.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;

use crate::helpers::*;

#[actix_web::test]
async fn users_and_messages_survive_a_restart() {
    let app = spawn_app().await;
    app.create_user("ann").await;
    app.create_user("bob").await;
    let ann = app.login("ann").await;
    assert_eq!(app.send("ann", &ann, "bob", "kept").await.status, 200);
    let (dir, config) = app.stop().await;

    let app = start(dir, config).await;
    assert_eq!(app.get("/restapi/v1/users/bob", app.admin()).await.status, 200);
    let history = app.get("/restapi/v1/chat/bob/messages", ("bob", "pw-bob")).await.json();
    assert_eq!(history["messages"][0]["body"], "kept");
    // Still pending for bob: delivered when he connects.
    let mut bob = app.sse("bob", "").await;
    assert_eq!(bob.next().await.data["body"], "kept");
    // Streams do not survive a restart.
    assert_eq!(app.send("ann", &ann, "bob", "old stream").await.status, 404);
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn run_binary(data: &std::path::Path, port: u16, admin_password: Option<&str>) -> Child {
    run_binary_with(data, port, admin_password, &[])
}

/// The real binary on `port` over `data`, with more environment (`SWITCHBOARD_*` settings).
pub fn run_binary_with(data: &std::path::Path, port: u16, admin_password: Option<&str>, env: &[(&str, &str)]) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    command.envs(store_env(data));
    command.envs(env.iter().copied());
    command
        .args(["--data", data.to_str().unwrap(), "--bind", &format!("127.0.0.1:{port}")])
        .env_remove("SWITCHBOARD_ADMIN_PASSWORD")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(pw) = admin_password {
        command.env("SWITCHBOARD_ADMIN_PASSWORD", pw);
    }
    command.spawn().expect("the switchboard binary starts")
}

pub async fn wait_healthy(client: &awc::Client, base: &str) {
    for _ in 0..100 {
        if let Ok(r) = client.get(format!("{base}/healthz")).send().await {
            if r.status().as_u16() == 200 {
                return;
            }
        }
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("server at {base} did not come up");
}

#[actix_web::test]
async fn kill_9_after_acknowledgements_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let client = awc::Client::builder().timeout(Duration::from_secs(10)).finish();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let admin = ("admin", "crash-test-admin");
    let mut server = run_binary(dir.path(), port, Some(admin.1));
    wait_healthy(&client, &base).await;
    for name in ["ann", "bob"] {
        let r = client
            .post(format!("{base}/restapi/v1/users"))
            .basic_auth(admin.0, admin.1)
            .send_json(&json!({"username": name, "password": format!("pw-{name}")}))
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201);
    }
    let mut login =
        client.post(format!("{base}/restapi/v1/chat/ann/login")).basic_auth("ann", "pw-ann").send().await.unwrap();
    let stream = String::from_utf8(login.body().await.unwrap().to_vec()).unwrap();
    let mut acked = Vec::new();
    for i in 0..50 {
        let mut r = client
            .post(format!("{base}/restapi/v1/chat/{stream}/messages/bob"))
            .basic_auth("ann", "pw-ann")
            .send_json(&json!({"body": format!("m{i}")}))
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let body: serde_json::Value = r.json().await.unwrap();
        acked.push(body["id"].as_str().unwrap().to_owned());
    }
    server.kill().expect("SIGKILL"); // std's kill() is SIGKILL on Unix
    server.wait().unwrap();

    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut server = run_binary(dir.path(), port, None);
    wait_healthy(&client, &base).await;
    let mut r = client
        .get(format!("{base}/restapi/v1/chat/bob/messages?limit=1000"))
        .basic_auth("bob", "pw-bob")
        .send()
        .await
        .unwrap();
    let history: serde_json::Value = r.json().await.unwrap();
    let ids: Vec<String> =
        history["messages"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ids, acked, "every acknowledged message survived, in order");
    server.kill().unwrap();
    server.wait().unwrap();
}

#[actix_web::test]
async fn first_start_generates_a_private_admin_password() {
    let dir = tempfile::tempdir().unwrap();
    let client = awc::Client::builder().timeout(Duration::from_secs(10)).finish();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut server = run_binary(dir.path(), port, None);
    wait_healthy(&client, &base).await;
    let path = dir.path().join("admin-password");
    let password = std::fs::read_to_string(&path).expect("admin-password written").trim().to_owned();
    assert!(password.len() >= 16);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let key = dir.path().join("jwt-secret");
        assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let ok = client.get(format!("{base}/restapi/v1/users")).basic_auth("admin", &password).send().await.unwrap();
    assert_eq!(ok.status().as_u16(), 200);
    for guess in ["admin", "password", "changeme", ""] {
        let r = client.get(format!("{base}/restapi/v1/users")).basic_auth("admin", guess).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 401, "no default password {guess:?}");
    }
    server.kill().unwrap();
    let output = server.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(path.to_str().unwrap()), "the path is printed: {stderr}");
}
