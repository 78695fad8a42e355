//! Delivery across doors and stations: bare vs full addresses, offline storage, replay.

use std::time::Duration;

use serde_json::json;

use crate::helpers::*;

#[actix_web::test]
async fn a_rest_message_reaches_sse_and_websocket_at_once() {
    let app = spawn_app().await;
    app.create_user("ann").await;
    app.create_user("bob").await;
    let ann = app.login("ann").await;
    let mut bob_sse = app.sse("bob", "").await;
    let mut bob_ws = app.ws("bob", "").await;
    let r = app.send("ann", &ann, "bob", "to every door").await;
    assert_eq!(r.status, 200);
    let id = r.json()["id"].as_str().unwrap().to_owned();
    let s = bob_sse.next().await;
    let w = bob_ws.next().await;
    assert_eq!(s.data["body"], "to every door");
    assert_eq!(w["body"], "to every door");
    assert_eq!(w["event"], "chatapi.chat");
    assert_eq!(s.data["id"], id);
    assert_eq!(w["id"], id);
    // The same event, rendered once: identical apart from the ws "event" key.
    let mut without_event = w.clone();
    without_event.as_object_mut().unwrap().remove("event");
    assert_eq!(without_event, s.data);
}

#[actix_web::test]
async fn websocket_messages_are_acked_after_commit_and_delivered() {
    let app = spawn_app().await;
    app.create_user("ann").await;
    app.create_user("bob").await;
    let mut ann = app.ws("ann", "").await;
    let mut bob = app.sse("bob", "").await;
    ann.send(json!({"op": "message", "to": "bob", "body": "over ws", "data": {"k": "v"}, "id": "c1"})).await;
    let ack = ann.next_of_type("ack").await;
    assert_eq!(ack["id"], "c1");
    let msg_id = ack["msgId"].as_str().unwrap().to_owned();
    assert!(ack["stamp"].as_str().unwrap().ends_with('Z'));
    // Acknowledged means stored: history already has it.
    let history = app.get("/restapi/v1/chat/bob/messages", ("bob", "pw-bob")).await.json();
    assert_eq!(history["messages"][0]["id"], msg_id);
    let e = bob.next().await;
    assert_eq!(e.data["body"], "over ws");
    assert_eq!(e.data["data"], json!({"k": "v"}));
    assert!(e.data["from"].as_str().unwrap().starts_with("ann@localhost/"));

    ann.send(json!({"op": "ping", "id": 7})).await;
    assert_eq!(ann.next().await, json!({"type": "pong", "id": 7}));
}

#[actix_web::test]
async fn bad_websocket_frames_get_error_frames_and_the_connection_stays() {
    let app = spawn_app_with(|c| c.limits.max_message_chars = 20).await;
    app.create_user("ann").await;
    app.create_user("bob").await;
    let mut ann = app.ws("ann", "").await;
    let cases: Vec<(String, u64, &str)> = vec![
        ("not json".into(), 400, "invalid command"),
        (json!({"op": "dance", "id": 1}).to_string(), 400, "dance"),
        (json!({"op": "message", "to": "bob", "id": 2}).to_string(), 400, "body"),
        (json!({"op": "message", "to": "ghost", "body": "x", "id": 3}).to_string(), 404, "ghost"),
        (json!({"op": "message", "to": "B O B", "body": "x", "id": 4}).to_string(), 400, "recipient"),
        (json!({"op": "message", "to": "bob", "body": "y".repeat(21), "id": 5}).to_string(), 413, "20"),
    ];
    for (frame, code, says) in cases {
        ann.send_text(&frame).await;
        let e = ann.next_of_type("error").await;
        assert_eq!(e["code"], code, "{frame}: {e}");
        assert!(e["message"].as_str().unwrap().contains(says), "{frame}: {e}");
    }
    ann.send(json!({"op": "message", "to": "bob", "body": "still fine", "id": "ok"})).await;
    assert_eq!(ann.next_of_type("ack").await["id"], "ok");
}

#[actix_web::test]
async fn bare_addresses_reach_every_station_and_full_addresses_one() {
    let app = spawn_app().await;
    app.create_user("ann").await;
    app.create_user("bob").await;
    let ann = app.login("ann").await;
    let phone = app.login("bob").await;
    let desk = app.login("bob").await;
    let mut on_phone = app.sse("bob", &format!("?stream={phone}")).await;
    let mut on_phone_too = app.ws("bob", &format!("?stream={phone}")).await;
    let mut on_desk = app.sse("bob", &format!("?stream={desk}")).await;
    let phone_jid = on_phone.comments[0].trim_start_matches("connected as ").to_owned();

    assert_eq!(app.send("ann", &ann, "bob", "everyone").await.status, 200);
    assert_eq!(on_phone.next().await.data["body"], "everyone");
    assert_eq!(on_phone_too.next().await["body"], "everyone");
    assert_eq!(on_desk.next().await.data["body"], "everyone");

    assert_eq!(app.send("ann", &ann, &phone_jid, "phone only").await.status, 200);
    assert_eq!(on_phone.next().await.data["body"], "phone only");
    assert_eq!(on_phone_too.next().await["body"], "phone only", "every connection of the station");
    on_desk.assert_quiet(Duration::from_millis(300)).await;
}

#[actix_web::test]
async fn offline_messages_wait_and_arrive_in_order() {
    let app = spawn_app().await;
    app.create_user("ann").await;
    app.create_user("bob").await;
    let ann = app.login("ann").await;
    for i in 0..5 {
        assert_eq!(app.send("ann", &ann, "bob", &format!("offline {i}")).await.status, 200);
    }
    let mut bob = app.ws("bob", "").await;
    for i in 0..5 {
        assert_eq!(bob.next().await["body"], format!("offline {i}"));
    }
    bob.assert_quiet(Duration::from_millis(200)).await;
    // Delivered once: a second station coming alive later does not get them again.
    drop(bob);
    let mut again = app.sse("bob", "").await;
    again.assert_quiet(Duration::from_millis(300)).await;
}

#[actix_web::test]
async fn a_station_without_a_connection_keeps_what_is_addressed_to_it() {
    let app = spawn_app().await;
    app.create_user("ann").await;
    app.create_user("bob").await;
    let ann = app.login("ann").await;
    let desk = app.login("bob").await;
    let phone = app.login("bob").await;
    let mut elsewhere = app.sse("bob", &format!("?stream={desk}")).await;
    let sessions = app.get("/restapi/v1/sessions", app.admin()).await.json();
    let phone_resource = sessions["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["username"] == "bob" && s["connections"] == 0)
        .map(|s| s["resource"].as_str().unwrap().to_owned())
        .expect("the phone station, not live");
    let r = app.send("ann", &ann, &format!("bob@localhost/{phone_resource}"), "for the phone").await;
    assert_eq!(r.status, 200);
    elsewhere.assert_quiet(Duration::from_millis(300)).await;
    let mut phone_sse = app.sse("bob", &format!("?stream={phone}")).await;
    assert_eq!(phone_sse.next().await.data["body"], "for the phone");
}

#[actix_web::test]
async fn last_event_id_replays_what_was_missed_without_duplicates() {
    let app = spawn_app().await;
    app.create_user("ann").await;
    app.create_user("bob").await;
    let ann = app.login("ann").await;
    let mut bob = app.sse("bob", "").await;
    assert_eq!(app.send("ann", &ann, "bob", "one").await.status, 200);
    let first = bob.next().await;
    let seen_id = first.id.clone().expect("events carry id: lines");
    drop(bob);
    // Messages while disconnected (one kept pending, since bob has no station now).
    assert_eq!(app.send("ann", &ann, "bob", "two").await.status, 200);
    assert_eq!(app.send("ann", &ann, "bob", "three").await.status, 200);
    let mut again = app.sse_with("bob", "", Some(&seen_id)).await;
    assert_eq!(again.next().await.data["body"], "two");
    assert_eq!(again.next().await.data["body"], "three");
    again.assert_quiet(Duration::from_millis(300)).await;
    assert_eq!(app.send("ann", &ann, "bob", "four").await.status, 200);
    assert_eq!(again.next().await.data["body"], "four");

    // Replay also covers messages another connection already took.
    let mut fresh = app.sse_with("bob", "", Some("0")).await;
    let bodies: Vec<_> = [fresh.next().await, fresh.next().await, fresh.next().await, fresh.next().await]
        .iter()
        .map(|e| e.data["body"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(bodies, ["one", "two", "three", "four"]);

    let bad = reply(
        app.client
            .get(app.url("/sse/bob"))
            .basic_auth("bob", "pw-bob")
            .insert_header(("Last-Event-ID", "yesterday"))
            .send()
            .await,
    )
    .await;
    assert_eq!(bad.status, 400);
}

#[actix_web::test]
async fn a_slow_websocket_reader_is_closed_not_buffered_forever() {
    let app = spawn_app_with(|c| c.limits.outbox_bytes = 16 * 1024).await;
    app.create_user("ann").await;
    app.create_user("bob").await;
    let ann = app.login("ann").await;
    let mut bob = app.ws("bob", "").await;
    let body = "z".repeat(9_000);
    let total = 1500;
    for _ in 0..total {
        // Bob does not read; the kernel's socket buffers fill, then the outbox.
        let r = app.send("ann", &ann, "bob", &body).await;
        assert_eq!(r.status, 200);
    }
    let mut received = 0;
    let reason = loop {
        match bob.next_within(WAIT).await {
            Some(WsItem::Json(_)) => received += 1,
            Some(WsItem::Close(reason)) => break reason,
            Some(WsItem::Ended) => break None,
            None => panic!("the slow reader was never closed ({received} frames)"),
        }
    };
    assert!(received < total, "closed before everything was delivered");
    let description = reason.and_then(|r| r.description).unwrap_or_default();
    assert!(description.contains("outbox full"), "close reason: {description:?}");
}

#[actix_web::test]
async fn a_slow_sse_reader_is_closed_not_buffered_forever() {
    let app = spawn_app_with(|c| c.limits.outbox_bytes = 16 * 1024).await;
    app.create_user("ann").await;
    app.create_user("bob").await;
    let ann = app.login("ann").await;
    let mut bob = app.sse("bob", "").await;
    let body = "z".repeat(9_000);
    let total = 1500;
    for _ in 0..total {
        assert_eq!(app.send("ann", &ann, "bob", &body).await.status, 200);
    }
    // The server gave up on the reader: the stream ends before all messages arrived.
    let received = bob.until_closed().await;
    assert!(received.len() < total, "closed after {} of {total}", received.len());
    let sessions = app.get("/restapi/v1/sessions", app.admin()).await.json();
    let bobs = sessions["sessions"].as_array().unwrap().iter().filter(|s| s["username"] == "bob").count();
    assert_eq!(bobs, 0, "the closed connection's station ended: {sessions}");
}
