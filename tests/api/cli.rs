//! The admin command line (`switchboard user|room|group …`): the real binary against a real
//! server, with the admin password read from the data directory, text and `--json` output,
//! refusals and exit codes.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use crate::restart::{free_port, run_binary_with, wait_healthy};

struct Outcome {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `switchboard ARGS` with `--data` (for the generated admin password) and `--server`.
async fn cli(data: &Path, base: &str, args: &[&str], stdin: Option<&str>) -> Outcome {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"));
    command
        .args(["--data", data.to_str().unwrap(), "--server", base])
        .args(args)
        .env_remove("SWITCHBOARD_ADMIN_PASSWORD")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("the cli starts");
    if let Some(text) = stdin {
        use tokio::io::AsyncWriteExt;
        child.stdin.take().unwrap().write_all(text.as_bytes()).await.unwrap();
    }
    drop(child.stdin.take());
    let output = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output()).await.unwrap().unwrap();
    Outcome {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn ok(outcome: &Outcome, what: &str) {
    assert_eq!(outcome.code, 0, "{what}: {} {}", outcome.stdout, outcome.stderr);
}

#[actix_web::test]
async fn the_admin_cli_manages_users_rooms_and_groups_on_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    // No admin password given: the server generates one into the data directory.
    let mut server = run_binary_with(dir.path(), port, None, &[]);
    let client = awc::Client::builder().timeout(Duration::from_secs(10)).finish();
    wait_healthy(&client, &base).await;
    for _ in 0..100 {
        if dir.path().join("admin-password").exists() {
            break;
        }
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
    let data = dir.path();

    ok(&cli(data, &base, &["user", "add", "ann", "--password", "pw-ann", "--name", "Ann A"], None).await, "add ann");
    ok(&cli(data, &base, &["user", "add", "bob", "--password-stdin"], Some("pw-bob\n")).await, "add bob");
    let listed = cli(data, &base, &["user", "list"], None).await;
    ok(&listed, "list");
    assert!(listed.stdout.lines().any(|l| l.starts_with("ann\tAnn A")), "{}", listed.stdout);
    assert!(listed.stdout.lines().any(|l| l.starts_with("bob\t")), "{}", listed.stdout);
    let as_json = cli(data, &base, &["user", "list", "--search", "ann", "--json"], None).await;
    ok(&as_json, "list --json");
    let value: Value = serde_json::from_str(as_json.stdout.trim()).unwrap();
    assert_eq!(value["users"].as_array().unwrap().len(), 1, "{value}");

    // The password works through the chat API, and passwd changes it.
    let login = |user: &'static str, password: &'static str| {
        let request = client.post(format!("{base}/restapi/v1/chat/{user}/login")).basic_auth(user, password);
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(login("bob", "pw-bob").await, 200);
    ok(&cli(data, &base, &["user", "passwd", "bob", "--password", "new-bob"], None).await, "passwd");
    assert_eq!(login("bob", "pw-bob").await, 401);
    assert_eq!(login("bob", "new-bob").await, 200);
    ok(&cli(data, &base, &["user", "lock", "bob"], None).await, "lock");
    assert_eq!(login("bob", "new-bob").await, 401);
    ok(&cli(data, &base, &["user", "unlock", "bob"], None).await, "unlock");
    assert_eq!(login("bob", "new-bob").await, 200);

    // Rooms and groups.
    ok(
        &cli(data, &base, &["room", "create", "lobby", "--natural-name", "The Lobby", "--owner", "ann"], None).await,
        "room",
    );
    let rooms = cli(data, &base, &["room", "list"], None).await;
    assert!(rooms.stdout.contains("lobby\tThe Lobby"), "{}", rooms.stdout);
    ok(&cli(data, &base, &["group", "add", "crew", "--shared", "--member", "ann"], None).await, "group add");
    let members = cli(data, &base, &["group", "members", "crew", "--add", "bob"], None).await;
    ok(&members, "members");
    assert!(members.stdout.contains("ann@") && members.stdout.contains("bob@"), "{}", members.stdout);
    let members = cli(data, &base, &["group", "members", "crew", "--remove", "ann"], None).await;
    assert!(!members.stdout.contains("ann@"), "{}", members.stdout);
    let groups = cli(data, &base, &["group", "list"], None).await;
    assert!(groups.stdout.contains("crew\t1 people\tshared"), "{}", groups.stdout);
    ok(&cli(data, &base, &["group", "delete", "crew"], None).await, "group delete");
    ok(&cli(data, &base, &["room", "delete", "lobby"], None).await, "room delete");
    ok(&cli(data, &base, &["user", "delete", "bob"], None).await, "delete");

    // Refusals: the server's message and exit code 1.
    let again = cli(data, &base, &["user", "add", "ann", "--password", "x"], None).await;
    assert_eq!(again.code, 1, "{}", again.stderr);
    assert!(again.stderr.contains("409") && again.stderr.contains("already exists"), "{}", again.stderr);
    let missing = cli(data, &base, &["group", "delete", "nope"], None).await;
    assert_eq!(missing.code, 1);
    assert!(missing.stderr.contains("group 'nope' does not exist"), "{}", missing.stderr);
    let wrong = cli(data, &base, &["user", "list", "--admin-password", "wrong"], None).await;
    assert_eq!(wrong.code, 1);
    assert!(wrong.stderr.contains("401"), "{}", wrong.stderr);
    // Bad usage: exit code 2; no password known: 2; nobody listening: 3.
    assert_eq!(cli(data, &base, &["user", "add", "cy"], None).await.code, 2, "no password given");
    let empty = tempfile::tempdir().unwrap();
    let nopass = cli(empty.path(), &base, &["user", "list"], None).await;
    assert_eq!(nopass.code, 2);
    assert!(nopass.stderr.contains("no admin password"), "{}", nopass.stderr);
    let down = cli(data, &format!("http://127.0.0.1:{}", free_port()), &["user", "list"], None).await;
    assert_eq!(down.code, 3, "{}", down.stderr);
    assert!(down.stderr.contains("cannot reach"), "{}", down.stderr);
    assert_eq!(cli(data, &base, &["user", "frobnicate"], None).await.code, 2);

    server.kill().unwrap();
    server.wait().unwrap();
}
