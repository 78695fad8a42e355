//! The chat stream API: login, logoff, sending, history, and each user acting only as itself.

use serde_json::json;

use crate::helpers::*;

#[actix_web::test]
async fn login_gives_a_new_unguessable_stream_each_time() {
    let app = spawn_app().await;
    app.create_user("ann").await;
    let r = app.post_text("/restapi/v1/chat/ann/login", ("ann", "pw-ann"), "").await;
    assert_eq!(r.status, 200);
    let first = r.text();
    assert!(first.len() >= 32 && first.chars().all(|c| c.is_ascii_hexdigit()), "{first}");
    let second = app.login("ann").await;
    assert_ne!(first, second);

    assert_eq!(app.post_text("/restapi/v1/chat/ann/login", ("ann", "nope"), "").await.status, 401);
    app.create_user("bob").await;
    assert_eq!(app.post_text("/restapi/v1/chat/ann/login", ("bob", "pw-bob"), "").await.status, 403);
    // The admin may act for anyone (middleware); an unknown user is 404.
    assert_eq!(app.post_text("/restapi/v1/chat/ann/login", app.admin(), "").await.status, 200);
    assert_eq!(app.post_text("/restapi/v1/chat/ghost/login", app.admin(), "").await.status, 404);
}

#[actix_web::test]
async fn logoff_ends_the_stream_and_only_the_owner_may_do_it() {
    let app = spawn_app().await;
    app.create_user("ann").await;
    app.create_user("bob").await;
    let stream = app.login("ann").await;
    let path = format!("/restapi/v1/chat/{stream}/logoff");
    assert_eq!(app.post_text(&path, ("bob", "pw-bob"), "").await.status, 403);
    assert_eq!(app.post_text(&path, ("ann", "pw-ann"), "").await.status, 200);
    assert_eq!(app.post_text(&path, ("ann", "pw-ann"), "").await.status, 404);
    assert_eq!(app.send("ann", &stream, "bob", "late").await.status, 404);
    assert_eq!(app.post_text("/restapi/v1/chat/nosuchstream/logoff", ("ann", "pw-ann"), "").await.status, 404);
}

#[actix_web::test]
async fn messages_accept_json_or_text_and_every_address_form() {
    let app = spawn_app().await;
    app.create_user("ann").await;
    app.create_user("bob").await;
    let stream = app.login("ann").await;
    let bob_stream = app.login("bob").await;
    let mut bob = app.sse("bob", &format!("?stream={bob_stream}")).await;
    let bob_resource = bob.comments[0].rsplit('/').next().unwrap().to_owned();

    let r = app
        .post_json(
            &format!("/restapi/v1/chat/{stream}/messages/bob"),
            ("ann", "pw-ann"),
            &json!({"body": "hi \"bob\" <b>&", "mood": {"x": 1}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.json()["id"].as_str().unwrap().parse::<i64>().is_ok());
    let e = bob.next().await;
    assert_eq!(e.event, "chatapi.chat");
    assert_eq!(e.data["body"], "hi \"bob\" <b>&");
    assert_eq!(e.data["data"]["mood"]["x"], 1, "the whole JSON object travels as data");
    assert_eq!(e.data["type"], "chat");
    assert!(e.data["from"].as_str().unwrap().starts_with("ann@localhost/"), "server-stamped from");
    assert_eq!(e.id.as_deref(), e.data["id"].as_str());

    let r = app.post_text(&format!("/restapi/v1/chat/{stream}/messages/bob"), ("ann", "pw-ann"), "just text").await;
    assert_eq!(r.status, 200);
    let e = bob.next().await;
    assert_eq!(e.data["body"], "just text");
    assert_eq!(e.data["data"], serde_json::Value::Null);

    for to in [
        "bob@localhost".to_string(),
        format!("bob@localhost/{bob_resource}"),
        format!("bob@localhost@{bob_resource}"),
        "bob@localhost@%".to_string(),
    ] {
        let r = app.send("ann", &stream, &to, &format!("to {to}")).await;
        assert_eq!(r.status, 200, "{to}: {}", r.text());
        assert_eq!(bob.next().await.data["body"], format!("to {to}"));
    }
}

#[actix_web::test]
async fn bad_messages_are_refused_clearly() {
    let app = spawn_app_with(|c| {
        c.limits.max_message_chars = 50;
        c.limits.max_body_bytes = 1000;
    })
    .await;
    app.create_user("ann").await;
    app.create_user("bob").await;
    let stream = app.login("ann").await;
    let path = format!("/restapi/v1/chat/{stream}/messages/bob");
    let ann = ("ann", "pw-ann");

    let r = app.send("ann", &stream, "carol", "hi").await;
    assert_eq!((r.status, r.message().contains("carol")), (404, true), "{}", r.text());
    let r = app.send("ann", &stream, "bob@elsewhere.net", "hi").await;
    assert_eq!(r.status, 404, "{}", r.text());
    let r = app.send("ann", &stream, "Bob", "hi").await;
    assert_eq!(r.status, 400, "{}", r.text());

    let malformed = reply(
        app.client
            .post(app.url(&path))
            .basic_auth("ann", "pw-ann")
            .insert_header(("content-type", "application/json"))
            .send_body("{\"body\": \"x\"")
            .await,
    )
    .await;
    assert_eq!(malformed.status, 400);
    assert!(malformed.message().contains("invalid JSON"), "{}", malformed.text());
    let r = app.post_json(&path, ann, &json!({"text": "no body key"})).await;
    assert_eq!(r.status, 400);
    assert!(r.message().contains("body"));
    let r = app.post_json(&path, ann, &json!({"body": 42})).await;
    assert_eq!(r.status, 400);
    assert_eq!(app.post_text(&path, ann, "   ").await.status, 400);

    let r = app.post_text(&path, ann, &"x".repeat(51)).await;
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(r.message().contains("50"));
    let r = app.post_text(&path, ann, &"x".repeat(5000)).await;
    assert_eq!(r.status, 413, "{}", r.text());

    // Someone else's stream, and no stream at all.
    app.create_user("eve").await;
    let r = app.post_text(&path, ("eve", "pw-eve"), "spoof").await;
    assert_eq!(r.status, 403);
    assert_eq!(app.post_text("/restapi/v1/chat/nope/messages/bob", ann, "x").await.status, 404);
    // Nothing of the above was stored.
    let history = app.get("/restapi/v1/chat/bob/messages", ("bob", "pw-bob")).await;
    assert_eq!(history.json()["messages"], json!([]));
}

#[actix_web::test]
async fn history_is_private_ordered_filtered_and_paged() {
    let app = spawn_app().await;
    for name in ["ann", "bob", "cid"] {
        app.create_user(name).await;
    }
    let ann = app.login("ann").await;
    let bob = app.login("bob").await;
    let cid = app.login("cid").await;
    for i in 0..5 {
        assert_eq!(app.send("ann", &ann, "bob", &format!("a{i}")).await.status, 200);
        assert_eq!(app.send("bob", &bob, "ann", &format!("b{i}")).await.status, 200);
    }
    assert_eq!(app.send("cid", &cid, "bob", "from cid: pineapple").await.status, 200);

    let bodies = |r: &Reply| -> Vec<String> {
        r.json()["messages"].as_array().unwrap().iter().map(|m| m["body"].as_str().unwrap().to_owned()).collect()
    };
    let r = app.get("/restapi/v1/chat/bob/messages", ("bob", "pw-bob")).await;
    assert_eq!(r.status, 200);
    assert_eq!(bodies(&r).len(), 11);
    assert_eq!(bodies(&r)[0], "a0", "oldest first");
    let first = &r.json()["messages"][0];
    for key in ["id", "from", "to", "type", "body", "data", "stamp"] {
        assert!(first.get(key).is_some(), "history item has {key}: {first}");
    }

    let r = app.get("/restapi/v1/chat/bob/messages?to=cid", ("bob", "pw-bob")).await;
    assert_eq!(bodies(&r), vec!["from cid: pineapple"]);
    let r = app.get("/restapi/v1/chat/bob/messages?keywords=PINEAPPLE", ("bob", "pw-bob")).await;
    assert_eq!(bodies(&r).len(), 1);

    let r = app.get("/restapi/v1/chat/ann/messages?to=bob&limit=4", ("ann", "pw-ann")).await;
    assert_eq!(bodies(&r), vec!["a3", "b3", "a4", "b4"], "the newest page, oldest first");
    let oldest_id = r.json()["messages"][0]["id"].as_str().unwrap().to_owned();
    let r =
        app.get(&format!("/restapi/v1/chat/ann/messages?to=bob&limit=4&before={oldest_id}"), ("ann", "pw-ann")).await;
    assert_eq!(bodies(&r), vec!["a1", "b1", "a2", "b2"]);
    let r = app.get("/restapi/v1/chat/ann/messages?to=bob&limit=3&after=0", ("ann", "pw-ann")).await;
    assert_eq!(bodies(&r), vec!["a0", "b0", "a1"]);

    let r = app.get("/restapi/v1/chat/ann/messages?start=2000-01-01&end=2000-01-02", ("ann", "pw-ann")).await;
    assert_eq!(bodies(&r).len(), 0);
    let r = app.get("/restapi/v1/chat/ann/messages?start=2000-01-01T00:00:00Z", ("ann", "pw-ann")).await;
    assert_eq!(bodies(&r).len(), 10);

    // Refusals.
    assert_eq!(app.get("/restapi/v1/chat/bob/messages", ("ann", "pw-ann")).await.status, 403);
    assert_eq!(app.get("/restapi/v1/chat/bob/messages", app.admin()).await.status, 200);
    let r = app.get("/restapi/v1/chat/ann/messages?limit=0", ("ann", "pw-ann")).await;
    assert_eq!(r.status, 400);
    assert!(r.message().contains("limit"));
    assert_eq!(app.get("/restapi/v1/chat/ann/messages?limit=100000", ("ann", "pw-ann")).await.status, 400);
    assert_eq!(app.get("/restapi/v1/chat/ann/messages?limit=many", ("ann", "pw-ann")).await.status, 400);
    let r = app.get("/restapi/v1/chat/ann/messages?start=yesterday", ("ann", "pw-ann")).await;
    assert_eq!(r.status, 400);
    assert!(r.message().contains("start"));
}

#[actix_web::test]
async fn tokens_are_issued_for_the_right_password_only() {
    let app = spawn_app().await;
    app.create_user("ann").await;
    let r = reply(
        app.client
            .post(app.url("/restapi/v1/auth/token"))
            .send_json(&json!({"username": "ann", "password": "pw-ann"}))
            .await,
    )
    .await;
    assert_eq!(r.status, 200);
    let token = r.json()["token"].as_str().unwrap().to_owned();
    assert!(r.json()["expires"].as_u64().unwrap() > 0);
    let with_token = app.get_bearer("/restapi/v1/chat/ann/messages", &token).await;
    assert_eq!(with_token.status, 200);
    let forged = app.get_bearer("/restapi/v1/chat/ann/messages", &format!("{token}x")).await;
    assert_eq!(forged.status, 401);
    // A deleted account's token stops working at once.
    assert_eq!(app.delete("/restapi/v1/users/ann", app.admin()).await.status, 200);
    let orphan = app.get_bearer("/restapi/v1/chat/ann/messages", &token).await;
    assert_eq!(orphan.status, 401);
    let r = reply(
        app.client
            .post(app.url("/restapi/v1/auth/token"))
            .send_json(&json!({"username": "ann", "password": "nope"}))
            .await,
    )
    .await;
    assert_eq!(r.status, 401);
}

#[actix_web::test]
async fn idle_login_streams_expire() {
    let app = spawn_app_with(|c| c.streams.idle_timeout_secs = 0.3).await;
    app.create_user("ann").await;
    app.create_user("bob").await;
    let idle = app.login("ann").await;
    let held = app.login("bob").await;
    let _bob_sse = app.sse("bob", &format!("?stream={held}")).await;
    actix_rt::time::sleep(std::time::Duration::from_millis(1200)).await;
    assert_eq!(app.send("ann", &idle, "bob", "hello?").await.status, 404, "unused stream expired");
    assert_eq!(app.send("bob", &held, "ann", "still here").await.status, 200, "a stream with a connection stays");
}
