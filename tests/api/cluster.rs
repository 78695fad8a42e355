//! Several nodes of one domain: servers sharing one PostgreSQL database and a NATS server of
//! the test's own (`switchboard_actors::testing::TestNats`), each on its own port. Users on
//! different nodes chat, see each other's presence, are listed and kicked from any node;
//! rooms owned by one node have occupants on all of them; a NATS outage is reported and
//! local users keep chatting; a node killed with `kill -9` loses no acknowledged message,
//! and its rooms come back on another node.

use std::time::Duration;

use serde_json::{json, Value};
use switchboard_actors::testing::{TestNats, TestPostgres};

use crate::helpers::{next_of, next_ws_of, start, test_config, Sse, TestApp, Ws, WAIT};
use crate::xmpp::{is_message_with_body, Xmpp};

/// Nodes `n0…` of one cluster over one database and `nats`, all with the same admin.
async fn cluster(nats: &TestNats, nodes: usize) -> Vec<TestApp> {
    cluster_with(nats, nodes, |_| {}).await
}

/// As `cluster`, each node's configuration changed by `tweak`.
async fn cluster_with(nats: &TestNats, nodes: usize, tweak: impl Fn(&mut switchboard::Config)) -> Vec<TestApp> {
    let database = TestPostgres::shared().database();
    let name = format!("c{}", switchboard_actors::random::random_hex(4));
    let admin_password = format!("admin-{}", switchboard_actors::random::random_hex(8));
    let token_key = switchboard_actors::random::random_hex(32);
    let mut apps = Vec::new();
    for i in 0..nodes {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = test_config(&dir);
        config.admin.password = admin_password.clone();
        config.auth.jwt_secret = token_key.clone();
        config.store.backend = "postgres".into();
        config.store.url = database.clone();
        config.cluster.nats_url = nats.url();
        config.cluster.node = format!("n{i}");
        config.cluster.name = name.clone();
        config.cluster.heartbeat_secs = 0.2;
        config.cluster.lease_secs = 1.0;
        tweak(&mut config);
        apps.push(start(dir, config).await);
    }
    for app in &apps {
        wait_for_peers(app, nodes - 1).await;
    }
    apps
}

/// The node's `/system/readiness/cluster` answer: status and detail.
async fn cluster_readiness(app: &TestApp) -> (u16, String) {
    let r = app.get("/restapi/v1/system/readiness/cluster", app.admin()).await;
    (r.status, r.json()["detail"].as_str().unwrap_or_default().to_owned())
}

/// Waits until the node is connected and counts `peers` live peers.
async fn wait_for_peers(app: &TestApp, peers: usize) {
    let mut last = (0, String::new());
    for _ in 0..100 {
        last = cluster_readiness(app).await;
        let listed =
            last.1.split("live peers: ").nth(1).map_or(
                0,
                |list| {
                    if list == "none" {
                        0
                    } else {
                        list.split(", ").count()
                    }
                },
            );
        if last.0 == 200 && listed == peers {
            return;
        }
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the node did not see {peers} peers: {last:?}");
}

/// The next 1:1 message on a `/ws` connection, skipping other frames.
async fn next_ws_message(ws: &mut Ws) -> Value {
    loop {
        let v = ws.next().await;
        if v["event"] == "chatapi.chat" && v["body"].is_string() {
            return v;
        }
    }
}

/// The next SSE event that `matches`, skipping others.
async fn next_sse_where(sse: &mut Sse, matches: impl Fn(&Value) -> bool) -> Value {
    loop {
        let e = sse.next().await;
        if matches(&e.data) {
            return e.data;
        }
    }
}

fn history_ids(history: &Value) -> Vec<String> {
    history["messages"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap().to_owned()).collect()
}

#[actix_web::test]
async fn a_message_from_sse_on_one_node_reaches_ws_and_xmpp_on_another() {
    let nats = TestNats::start();
    let nodes = cluster(&nats, 2).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    // Accounts made on one node are known to the other at once.
    a.create_user("ann").await;
    a.create_user("bob").await;
    let ann_stream = a.login("ann").await;
    let mut ann_sse = a.sse("ann", &format!("?stream={ann_stream}")).await;
    let mut bob_ws = b.ws("bob", "").await;
    let mut bob_xmpp = Xmpp::login(b, "bob", "pw-bob").await;
    bob_xmpp.send("<presence xmlns='jabber:client'/>").await;

    let sent = a.send("ann", &ann_stream, "bob", "across nodes").await;
    assert_eq!(sent.status, 200, "{}", sent.text());
    let id = sent.json()["id"].as_str().unwrap().to_owned();
    let on_ws = next_ws_message(&mut bob_ws).await;
    assert_eq!((on_ws["body"].as_str(), on_ws["id"].as_str()), (Some("across nodes"), Some(id.as_str())));
    let stanza = bob_xmpp.next_where("the message", |e| e.name == "message").await;
    assert_eq!(stanza.get_attr("id"), Some(id.as_str()), "{}", stanza.to_xml());
    assert!(stanza.to_xml().contains("across nodes"));

    // A reply and a chat state from node B reach Ann's SSE on node A.
    bob_ws.send(json!({"op": "chatstate", "to": "ann", "state": "composing"})).await;
    let composing = next_sse_where(&mut ann_sse, |d| d["state"] == "composing").await;
    assert!(composing["from"].as_str().unwrap().starts_with("bob@localhost"), "{composing}");
    bob_ws.send(json!({"op": "message", "to": "ann", "body": "and back", "id": "r1"})).await;
    let ack = bob_ws.next_of_type("ack").await;
    let reply = next_sse_where(&mut ann_sse, |d| d["body"].is_string()).await;
    assert_eq!((reply["body"].as_str(), reply["id"].as_str()), (Some("and back"), ack["msgId"].as_str()));

    // The same history, with the same ids, on both nodes.
    let on_a = a.get("/restapi/v1/chat/bob/messages", ("bob", "pw-bob")).await.json();
    let on_b = b.get("/restapi/v1/chat/bob/messages", ("bob", "pw-bob")).await.json();
    assert_eq!(history_ids(&on_a), history_ids(&on_b));
    assert_eq!(history_ids(&on_a), vec![id, ack["msgId"].as_str().unwrap().to_owned()]);
    // Every node labels its metrics with its name.
    let metrics = b.get("/metrics", b.admin()).await.text();
    assert!(metrics.contains("switchboard_users_online{node=\"n1\"} 1"), "{metrics}");
    assert!(metrics.contains("switchboard_cluster_peers{node=\"n1\"} 1"), "{metrics}");
}

#[actix_web::test]
async fn presence_subscriptions_kicks_and_the_session_list_cross_nodes() {
    let nats = TestNats::start();
    let nodes = cluster(&nats, 3).await;
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
    for name in ["ann", "bob", "cid"] {
        c.create_user(name).await;
    }
    let ann_stream = a.login("ann").await;
    let mut ann_sse = a.sse("ann", &format!("?stream={ann_stream}")).await;
    let bob_stream = b.login("bob").await;
    let mut bob_sse = b.sse("bob", &format!("?stream={bob_stream}")).await;
    // Ann (node A) asks Bob (node B); Bob approves by adding her back.
    let r = a
        .post_json(&format!("/restapi/v1/chat/{ann_stream}/contacts"), ("ann", "pw-ann"), &json!({"jid": "bob"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    bob_sse.next_presence("subscribe", "ann@localhost").await;
    let r = b
        .post_json(&format!("/restapi/v1/chat/{bob_stream}/contacts"), ("bob", "pw-bob"), &json!({"jid": "ann"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    ann_sse.next_presence("subscribed", "bob@localhost").await;
    ann_sse.next_presence("available", "bob@localhost").await;
    bob_sse.next_presence("available", "ann@localhost").await;
    // A change of Bob's presence on B reaches Ann on A.
    let r = b
        .post_text(&format!("/restapi/v1/chat/{bob_stream}/presence?show=away&status=lunch"), ("bob", "pw-bob"), "")
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let away = ann_sse.next_presence("available", "bob@localhost").await;
    assert_eq!(away.data["show"], "away", "{:?}", away.data);
    // Cid comes online on C and sees Ann's presence (probed on node A).
    c.befriend("cid", "ann").await;
    let cid_stream = c.login("cid").await;
    let mut cid_sse = c.sse("cid", &format!("?stream={cid_stream}")).await;
    cid_sse.next_presence("available", "ann@localhost").await;

    // Node C's session list shows every node's stations.
    let sessions = c.get("/restapi/v1/sessions", c.admin()).await.json();
    let mut rows: Vec<(String, String)> = sessions["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["username"].as_str().unwrap().to_owned(), s["nodeName"].as_str().unwrap_or("here").to_owned()))
        .collect();
    rows.sort();
    assert_eq!(rows, [("ann".into(), "n0".into()), ("bob".into(), "n1".into()), ("cid".into(), "here".into())]);
    // A kick on node C ends Bob's station on node B; Ann sees him go.
    let r = c.delete("/restapi/v1/sessions/bob", c.admin()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    bob_sse.until_closed().await;
    ann_sse.next_presence("unavailable", "bob@localhost").await;
}

#[actix_web::test]
async fn a_nats_outage_is_reported_local_users_keep_chatting_and_what_waited_arrives_after() {
    let mut nats = TestNats::start();
    let nodes = cluster(&nats, 2).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    for name in ["ann", "bob", "cid"] {
        a.create_user(name).await;
    }
    let ann_stream = a.login("ann").await;
    let mut cid_ws = a.ws("cid", "").await;
    let mut bob_ws = b.ws("bob", "").await;

    nats.kill();
    let mut detail = (0, String::new());
    for _ in 0..50 {
        detail = cluster_readiness(a).await;
        if detail.0 == 503 {
            break;
        }
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(detail.0, 503, "{detail:?}");
    assert!(detail.1.contains("cannot reach NATS") && detail.1.contains("local users"), "{detail:?}");
    let health = a.get("/healthz", a.admin()).await;
    assert_eq!((health.status, health.json()["cluster"]["nats"].clone()), (200, json!("unreachable")));
    // Node A serves its own users meanwhile.
    let local = a.send("ann", &ann_stream, "cid", "still here").await;
    assert_eq!(local.status, 200, "{}", local.text());
    assert_eq!(next_ws_message(&mut cid_ws).await["body"], "still here");
    // A message for a user on the unreachable node is stored and acknowledged…
    let waiting = a.send("ann", &ann_stream, "bob", "after the outage").await;
    assert_eq!(waiting.status, 200, "{}", waiting.text());
    let id = waiting.json()["id"].as_str().unwrap().to_owned();

    // …and arrives once NATS is back and the nodes see each other again.
    nats.resume();
    wait_for_peers(a, 1).await;
    wait_for_peers(b, 1).await;
    let late = next_ws_message(&mut bob_ws).await;
    assert_eq!((late["body"].as_str(), late["id"].as_str()), (Some("after the outage"), Some(id.as_str())));
    let again = a.send("ann", &ann_stream, "bob", "live again").await;
    assert_eq!(again.status, 200);
    assert_eq!(next_ws_message(&mut bob_ws).await["body"], "live again");
}

#[actix_web::test]
async fn a_node_killed_with_kill_9_under_load_loses_no_acknowledged_message() {
    use crate::restart::{free_port, run_binary_with, wait_healthy};
    let nats = TestNats::start();
    let database = TestPostgres::shared().database();
    let name = format!("c{}", switchboard_actors::random::random_hex(4));
    let client = awc::Client::builder().timeout(Duration::from_secs(10)).finish();
    let admin = ("admin", "kill-test-admin");
    let node = |i: usize| {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let env = [
            ("SWITCHBOARD_STORE_BACKEND", "postgres".to_owned()),
            ("SWITCHBOARD_STORE_URL", database.clone()),
            ("SWITCHBOARD_CLUSTER_NATS_URL", nats.url()),
            ("SWITCHBOARD_CLUSTER_NODE", format!("n{i}")),
            ("SWITCHBOARD_CLUSTER_NAME", name.clone()),
            ("SWITCHBOARD_CLUSTER_HEARTBEAT_SECS", "0.2".to_owned()),
            ("SWITCHBOARD_CLUSTER_LEASE_SECS", "1".to_owned()),
            ("SWITCHBOARD_AUTH_JWT_SECRET", "kill-test-token-key-0123456789abcdef".to_owned()),
        ];
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let child = run_binary_with(dir.path(), port, Some(admin.1), &env);
        (dir, format!("http://127.0.0.1:{port}"), child)
    };
    // Node B starts first: it serves Fastpath.
    let (_b_dir, b, mut b_child) = node(1);
    wait_healthy(&client, &b).await;
    let (_a_dir, a, mut a_child) = node(0);
    wait_healthy(&client, &a).await;
    for user in ["ann", "bob", "carl"] {
        let r = client
            .post(format!("{a}/restapi/v1/users"))
            .basic_auth(admin.0, admin.1)
            .send_json(&json!({"username": user, "password": format!("pw-{user}")}))
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201);
    }
    let stream = |base: String, user: &'static str| {
        let client = client.clone();
        async move {
            let mut r = client
                .post(format!("{base}/restapi/v1/chat/{user}/login"))
                .basic_auth(user, format!("pw-{user}"))
                .send()
                .await
                .unwrap();
            String::from_utf8(r.body().await.unwrap().to_vec()).unwrap()
        }
    };
    // A room made on node B (its owner), with Carl in it from node A.
    let r = client
        .post(format!("{b}/restapi/v1/chatrooms"))
        .basic_auth(admin.0, admin.1)
        .send_json(&json!({"roomName": "ops", "persistent": true}))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let carl = stream(a.clone(), "carl").await;
    let r = client
        .post(format!("{a}/restapi/v1/workgroups"))
        .basic_auth(admin.0, admin.1)
        .send_json(&json!({"name": "desk", "members": ["carl"]}))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let say_in_ops = |body: &'static str| {
        let (client, a, carl) = (client.clone(), a.clone(), carl.clone());
        async move {
            let sent = client
                .post(format!("{a}/restapi/v1/chat/{carl}/rooms/ops"))
                .basic_auth("carl", "pw-carl")
                .send_json(&json!({ "body": body }))
                .await;
            sent.map_or(0, |r| r.status().as_u16())
        }
    };
    let r = client.put(format!("{a}/restapi/v1/chat/{carl}/rooms/ops")).basic_auth("carl", "pw-carl").send().await;
    assert_eq!(r.unwrap().status().as_u16(), 200);
    assert_eq!(say_in_ops("before the kill").await, 200);

    // Bob holds a station on node B; Ann sends from node B, which is killed mid-way.
    let _bob = stream(b.clone(), "bob").await;
    let ann = stream(b.clone(), "ann").await;
    let mut acked = Vec::new();
    for i in 0..200 {
        if i == 100 {
            b_child.kill().expect("SIGKILL");
        }
        let sent = client
            .post(format!("{b}/restapi/v1/chat/{ann}/messages/bob"))
            .basic_auth("ann", "pw-ann")
            .send_json(&json!({"body": format!("m{i}")}))
            .await;
        let Ok(mut r) = sent else { break };
        if r.status().as_u16() != 200 {
            break;
        }
        let body: Value = r.json().await.unwrap();
        acked.push(body["id"].as_str().unwrap().to_owned());
    }
    b_child.wait().unwrap();
    assert!(acked.len() >= 100, "{} acknowledged before the kill", acked.len());

    // Bob reconnects to node A: every acknowledged message waits for him there, in order.
    let deadline = std::time::Instant::now() + WAIT;
    let readiness = loop {
        let mut r = client
            .get(format!("{a}/restapi/v1/system/readiness/cluster"))
            .basic_auth(admin.0, admin.1)
            .send()
            .await
            .unwrap();
        let body: Value = r.json().await.unwrap();
        let detail = body["detail"].as_str().unwrap_or_default().to_owned();
        if detail.ends_with("live peers: none") || std::time::Instant::now() > deadline {
            break detail;
        }
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(readiness.ends_with("live peers: none"), "node A still counts node B alive: {readiness}");
    let mut r = client
        .get(format!("{a}/restapi/v1/chat/bob/messages?limit=1000"))
        .basic_auth("bob", "pw-bob")
        .send()
        .await
        .unwrap();
    let history: Value = r.json().await.unwrap();
    let stored = history_ids(&history);
    assert_eq!(stored[..acked.len()], acked[..], "every acknowledged message is stored, in order");
    let mut r = client
        .get(format!("{a}/sse/bob"))
        .basic_auth("bob", "pw-bob")
        .insert_header(("accept", "text/event-stream"))
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let mut text = String::new();
    let deadline = std::time::Instant::now() + WAIT * 2;
    let last = acked.last().unwrap().clone();
    use futures_util::StreamExt;
    while !text.contains(&format!("\"id\":\"{last}\"")) && std::time::Instant::now() < deadline {
        match actix_rt::time::timeout(Duration::from_secs(1), r.next()).await {
            Ok(Some(Ok(chunk))) => text.push_str(&String::from_utf8_lossy(&chunk)),
            Ok(_) => break,
            Err(_) => {}
        }
    }
    for id in &acked {
        assert!(text.contains(&format!("\"id\":\"{id}\"")), "message {id} did not reach Bob on node A");
    }

    // The room came back on node A, rebuilt from the store, with Carl in it again.
    let deadline = std::time::Instant::now() + WAIT;
    let mut status = 0;
    while std::time::Instant::now() < deadline {
        status = say_in_ops("after the kill").await;
        if status == 200 {
            break;
        }
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 200, "Carl could not post in the moved room");
    let mut r = client
        .get(format!("{a}/restapi/v1/chat/rooms/ops/chathistory"))
        .basic_auth("ann", "pw-ann")
        .send()
        .await
        .unwrap();
    let archive: Value = r.json().await.unwrap();
    let bodies: Vec<&str> =
        archive["messages"].as_array().unwrap().iter().map(|m| m["body"].as_str().unwrap()).collect();
    assert_eq!(bodies, ["before the kill", "after the kill"]);
    let mut r = client
        .get(format!("{a}/restapi/v1/chatrooms/ops/participants"))
        .basic_auth(admin.0, admin.1)
        .send()
        .await
        .unwrap();
    let participants: Value = r.json().await.unwrap();
    assert_eq!(participants["participants"].as_array().map(Vec::len), Some(1), "{participants}");

    // Fastpath moved to node A with its workgroup: Carl, listening there, goes online and
    // the workgroup queues a visitor for him.
    let carl_listens = client
        .get(format!("{a}/sse/carl?stream={carl}"))
        .basic_auth("carl", "pw-carl")
        .insert_header(("accept", "text/event-stream"))
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .unwrap();
    assert_eq!(carl_listens.status().as_u16(), 200);
    let deadline = std::time::Instant::now() + WAIT;
    let mut status = 0;
    while std::time::Instant::now() < deadline {
        let online =
            client.post(format!("{a}/restapi/v1/chat/{carl}/assists/desk")).basic_auth("carl", "pw-carl").send().await;
        status = online.map_or(0, |r| r.status().as_u16());
        if status == 200 {
            break;
        }
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 200, "the workgroup did not come back on node A");
    // Carl's availability reaches the restarted workgroup through the router a moment later.
    let deadline = std::time::Instant::now() + WAIT;
    let (mut asked_status, mut asked_body) = (0, String::new());
    while std::time::Instant::now() < deadline {
        let mut asked = client
            .post(format!("{a}/restapi/v1/ask"))
            .send_json(&json!({"workgroup": "desk", "userID": "v9", "emailAddress": "v9@example.net", "question": "hi", "nickname": "V"}))
            .await
            .unwrap();
        asked_status = asked.status().as_u16();
        asked_body = String::from_utf8_lossy(&asked.body().await.unwrap()).into_owned();
        if asked_status != 503 {
            break;
        }
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(asked_status, 202, "{asked_body}");
    let mut r = client
        .get(format!("{a}/restapi/v1/chat/{carl}/assists/queues"))
        .basic_auth("carl", "pw-carl")
        .send()
        .await
        .unwrap();
    let queues: Value = r.json().await.unwrap();
    assert_eq!(queues["queue"][0]["users"]["user"][0]["userID"], "v9", "{queues}");
    a_child.kill().unwrap();
    a_child.wait().unwrap();
}

#[actix_web::test]
async fn an_apps_webhook_and_an_http_user_are_fed_once_by_messages_sent_on_other_nodes() {
    use crate::apps::{fast_retries, registered_app, Mode, Receiver};
    use crate::ozeki::{api_post, client_time, create_http_user, folder, texts, GATEWAY};
    let nats = TestNats::start();
    let nodes = cluster_with(&nats, 3, |c| {
        fast_retries(c);
        c.ozeki.outbox_tick_secs = 0.1;
    })
    .await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let receiver = Receiver::start(Mode::Success);
    registered_app(a, "bot", &receiver).await;
    create_http_user(a, "gateway").await;
    b.create_user("ann").await;
    let ann = b.login("ann").await;
    let mut ann_sse = b.sse("ann", &format!("?stream={ann}")).await;
    for i in 1..=5 {
        assert_eq!(b.send("ann", &ann, "bot", &format!("ann {i}")).await.status, 200);
    }
    assert_eq!(b.send("ann", &ann, "gateway", "to the gateway").await.status, 200);

    // One node delivers the app's outbox: each message once, in order.
    receiver.wait_for(5, Duration::from_secs(10)).await;
    actix_rt::time::sleep(Duration::from_millis(500)).await;
    let seen: Vec<String> =
        receiver.messages().iter().map(|s| s.json()["message"]["data"].as_str().unwrap().to_owned()).collect();
    assert_eq!(seen, ["ann 1", "ann 2", "ann 3", "ann 4", "ann 5"], "each once, in order, from one node");
    // The HTTP user downloads on node A what was sent on node B.
    assert_eq!(texts(&folder(a, "inbox").await), ["to the gateway"]);
    // What it sends for later goes out once, from the node holding the outbox's lease.
    let now = switchboard_actors::clock::now_ms();
    let later = json!({"messages": [{"message_id": "later-1", "to_address": "ann", "text": "scheduled",
        "create_date": client_time(now), "time_to_send": client_time(now + 1500)}]});
    let r = api_post(a, "sendmsg", GATEWAY, &later).await;
    assert_eq!(r.json()["data"]["messages"][0]["status"], "SUCCESS", "{}", r.text());
    let got = next_sse_where(&mut ann_sse, |d| d["body"] == "scheduled").await;
    assert!(got["from"].as_str().unwrap().starts_with("gateway@localhost"), "{got}");
    actix_rt::time::sleep(Duration::from_millis(800)).await;
    let history = b.get("/restapi/v1/chat/ann/messages", ("ann", "pw-ann")).await.json();
    let scheduled = history["messages"].as_array().unwrap().iter().filter(|m| m["body"] == "scheduled").count();
    assert_eq!(scheduled, 1, "sent once: {history}");
}

#[actix_web::test]
async fn a_room_owned_by_one_node_has_occupants_on_three() {
    let nats = TestNats::start();
    let nodes = cluster(&nats, 3).await;
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
    for user in ["ann", "bob", "carl", "dave"] {
        a.create_user(user).await;
    }
    // The admin makes the room on node C, which owns it from then on.
    let made = c.create_room(json!({"roomName": "hall", "persistent": true})).await;
    assert_eq!(made.status, 201, "{}", made.text());
    let taken = a.create_room(json!({"roomName": "hall"})).await;
    assert_eq!(taken.status, 409, "the name is taken cluster-wide: {}", taken.text());

    // Ann joins over REST on node A (SSE), Bob over REST on node B (/ws), Carl over XMPP on C.
    let ann = a.login("ann").await;
    let mut ann_sse = a.sse("ann", &format!("?stream={ann}")).await;
    let joined = a.join("ann", &ann, "hall", "").await;
    assert_eq!(joined.status, 200, "{}", joined.text());
    assert_eq!(joined.json()["room"], "hall@conference.localhost");
    next_of(&mut ann_sse, "chatapi.presence", "available").await;
    assert_eq!(a.say("ann", &ann, "hall", "before the others").await.status, 200);
    assert_eq!(next_of(&mut ann_sse, "chatapi.muc", "groupchat").await.data["body"], "before the others");

    let bob = b.login("bob").await;
    let mut bob_ws = b.ws("bob", &format!("?stream={bob}")).await;
    assert_eq!(b.join("bob", &bob, "hall", "?nick=Bobby").await.status, 200);
    let present = next_ws_of(&mut bob_ws, "chatapi.presence", "available").await;
    assert_eq!(present["from"], "hall@conference.localhost/ann", "Bob first hears who is there");
    let history = next_ws_of(&mut bob_ws, "chatapi.muc", "groupchat").await;
    assert_eq!((history["body"].as_str(), history["delay"].is_string()), (Some("before the others"), true));
    assert_eq!(next_of(&mut ann_sse, "chatapi.presence", "available").await.data["nick"], "Bobby");

    let mut carl = Xmpp::login(c, "carl", "pw-carl").await;
    carl.send("<presence xmlns='jabber:client' to='hall@conference.localhost/carl'><x xmlns='http://jabber.org/protocol/muc'/></presence>").await;
    let own = carl
        .next_where("own presence", |e| {
            e.name == "presence" && e.get_attr("from") == Some("hall@conference.localhost/carl")
        })
        .await;
    assert!(own.to_xml().contains("code=\"110\""), "self-presence: {}", own.to_xml());
    next_of(&mut ann_sse, "chatapi.presence", "available").await;

    // A post from each node reaches the occupants on every node.
    assert_eq!(a.say("ann", &ann, "hall", "from A").await.status, 200);
    let on_b = next_ws_of(&mut bob_ws, "chatapi.muc", "groupchat").await;
    assert_eq!((on_b["body"].as_str(), on_b["from"].as_str()), (Some("from A"), Some("hall@conference.localhost/ann")));
    carl.next_where("Ann's post", |e| is_message_with_body(e, "from A")).await;
    carl.send(
        "<message xmlns='jabber:client' to='hall@conference.localhost' type='groupchat'><body>from C</body></message>",
    )
    .await;
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let e = next_of(&mut ann_sse, "chatapi.muc", "groupchat").await;
        seen.push(e.data["body"].as_str().unwrap().to_owned());
    }
    assert_eq!(seen, ["from A", "from C"]);
    assert_eq!(next_ws_of(&mut bob_ws, "chatapi.muc", "groupchat").await["body"], "from C");
    assert_eq!(b.say("bob", &bob, "hall", "from B").await.status, 200);
    carl.next_where("Bob's post", |e| is_message_with_body(e, "from B")).await;
    assert_eq!(next_of(&mut ann_sse, "chatapi.muc", "groupchat").await.data["body"], "from B");

    // Every node answers for the room: its occupants, its archive, the admin API.
    let (d, dp) = ("dave", "pw-dave");
    let occupants = b.get("/restapi/v1/chat/rooms/hall/occupants", (d, dp)).await.json();
    let mut nicks: Vec<&str> =
        occupants["occupants"].as_array().unwrap().iter().map(|o| o["nick"].as_str().unwrap()).collect();
    nicks.sort();
    assert_eq!(nicks, ["Bobby", "ann", "carl"], "{occupants}");
    let archive = a.get("/restapi/v1/chat/rooms/hall/chathistory", (d, dp)).await.json();
    let bodies: Vec<&str> =
        archive["messages"].as_array().unwrap().iter().map(|m| m["body"].as_str().unwrap()).collect();
    assert_eq!(bodies, ["before the others", "from A", "from C", "from B"]);
    let changed = a
        .put_json(
            "/restapi/v1/chatrooms/hall",
            a.admin(),
            &json!({"roomName": "hall", "persistent": true, "naturalName": "The Hall"}),
        )
        .await;
    assert_eq!(changed.status, 200, "{}", changed.text());
    assert_eq!(b.get("/restapi/v1/chatrooms/hall", b.admin()).await.json()["naturalName"], "The Hall");

    // A room a user's join creates belongs to the node it was made on; others find it.
    let dave = b.login("dave").await;
    assert_eq!(b.join("dave", &dave, "popup", "").await.status, 201);
    let ann_in_popup = a.join("ann", &ann, "popup", "").await;
    assert_eq!(ann_in_popup.status, 200, "{}", ann_in_popup.text());
    assert_eq!(ann_in_popup.json()["affiliation"], "none", "Dave made it and owns it");

    // Leaving from node B is heard on A and C.
    assert_eq!(b.delete(&format!("/restapi/v1/chat/{bob}/rooms/hall"), ("bob", "pw-bob")).await.status, 200);
    let gone = next_of(&mut ann_sse, "chatapi.presence", "unavailable").await;
    assert_eq!(gone.data["from"], "hall@conference.localhost/Bobby");
    carl.next_where("Bob leaving", |e| {
        e.name == "presence"
            && e.get_attr("type") == Some("unavailable")
            && e.get_attr("from") == Some("hall@conference.localhost/Bobby")
    })
    .await;
    // And a room destroyed on node A is gone everywhere.
    assert_eq!(a.delete("/restapi/v1/chatrooms/hall", a.admin()).await.status, 200);
    for node in &nodes {
        let mut status = 0;
        for _ in 0..50 {
            status = node.get("/restapi/v1/chatrooms/hall", node.admin()).await.status;
            if status == 404 {
                break;
            }
            actix_rt::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(status, 404, "the room is gone on every node");
    }
}

#[actix_web::test]
async fn a_fastpath_offer_reaches_an_agent_on_another_node_and_the_visitor_on_a_third() {
    use crate::fastpath::{next_assist, next_position};
    let nats = TestNats::start();
    let nodes = cluster(&nats, 3).await;
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
    a.create_user("bob").await;
    // One node serves Fastpath; the admin API answers on every node.
    let created = c.create_workgroup(json!({"name": "support", "members": ["bob"]})).await;
    assert_eq!(created.status, 201, "{}", created.text());
    let listed = b.get("/restapi/v1/workgroups", b.admin()).await.json();
    assert_eq!(listed["workgroups"][0]["name"], "support", "{listed}");

    // Bob, the agent, is on node B; the visitor asks and listens on node C.
    let bob = b.login("bob").await;
    let mut bob_sse = b.sse("bob", &format!("?stream={bob}")).await;
    let online = b.agent("POST", "bob", &bob, "assists/support").await;
    assert_eq!(online.status, 200, "{}", online.text());
    let asked = c.ask_for("support", "v1").await;
    assert_eq!(asked.status, 202, "{}", asked.text());
    let token = asked.json()["token"].as_str().unwrap().to_owned();
    let mut visitor_sse = c.visitor_sse("v1", &token).await;
    assert_eq!(next_position(&mut visitor_sse).await, 1);
    let offer = next_assist(&mut bob_sse, "offerReceived", "v1").await;
    let accepted = b.agent("POST", "bob", &bob, &format!("offer/{}", offer["id"].as_str().unwrap())).await;
    assert_eq!(accepted.status, 200, "{}", accepted.text());
    let invitation = next_of(&mut bob_sse, "chatapi.muc", "invitationReceived").await.data;
    let room_jid = invitation["room"].as_str().unwrap().to_owned();
    let offered = next_of(&mut visitor_sse, "chatapi.ask", "offer").await;
    assert_eq!(offered.data["mucRoom"], room_jid);

    // They meet in the chat room and talk across the three nodes.
    let room = room_jid.split('@').next().unwrap().to_owned();
    let joined = b.agent("PUT", "bob", &bob, &format!("rooms/{room}")).await;
    assert_eq!(joined.status, 200, "{}", joined.text());
    assert_eq!(c.visitor("POST", "v1", Some(&token), "").await.status, 200);
    assert_eq!(c.visitor("PUT", "v1", Some(&token), "my printer is on fire").await.status, 200);
    loop {
        let e = next_of(&mut bob_sse, "chatapi.muc", "groupchat").await;
        if e.data["body"] == "my printer is on fire" {
            break;
        }
    }
    let said = b.say("bob", &bob, &room, "unplug it").await;
    assert_eq!(said.status, 200, "{}", said.text());
    loop {
        let e = next_of(&mut visitor_sse, "chatapi.muc", "groupchat").await;
        if e.data["body"] == "unplug it" {
            assert_eq!(e.data["from"], format!("{room_jid}/bob"));
            break;
        }
    }
    let status = a.visitor("GET", "v1", Some(&token), "").await.json();
    assert_eq!((status["inQueue"].clone(), status["room"].clone()), (json!(false), json!(room_jid)));
    let on_a = a.login("bob").await;
    let queues = a.agent("GET", "bob", &on_a, "assists/queues").await.json();
    assert_eq!(queues["queue"][0]["currentChats"], 1, "{queues}");
}
