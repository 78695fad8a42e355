//! Contacts (RFC 6121 subscriptions), presence and blocklists.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::*;

/// Roster pushes (RFC 6121 §2.1.6) go to every station; these tests watch presence.
const ROSTER_PUSHES: &[&str] = &["chatapi.roster"];
const QUIET: Duration = Duration::from_millis(300);

fn pw(name: &str) -> (&str, String) {
    (name, format!("pw-{name}"))
}

impl TestApp {
    async fn users(&self, names: &[&str]) {
        for name in names {
            self.create_user(name).await;
        }
    }

    async fn contacts(&self, name: &str, stream: &str) -> Vec<Value> {
        let (u, p) = pw(name);
        let r = self.get(&format!("/restapi/v1/chat/{stream}/contacts"), (u, &p)).await;
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()["rosterItem"].as_array().unwrap().clone()
    }

    async fn add_contact(&self, name: &str, stream: &str, item: Value) -> Reply {
        let (u, p) = pw(name);
        self.post_json(&format!("/restapi/v1/chat/{stream}/contacts"), (u, &p), &item).await
    }

    async fn presence(&self, name: &str, stream: &str, query: &str) -> Reply {
        let (u, p) = pw(name);
        self.post_text(&format!("/restapi/v1/chat/{stream}/presence{query}"), (u, &p), "").await
    }

    /// Makes `a` and `b` see each other's presence (admin roster, subscription both).
    pub(crate) async fn befriend(&self, a: &str, b: &str) {
        let r = self
            .post_json(
                &format!("/restapi/v1/users/{a}/roster"),
                self.admin(),
                &json!({"jid": b, "subscriptionType": 3}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
    }
}

#[actix_web::test]
async fn the_subscription_handshake_runs_both_ways_and_waits_for_an_offline_contact() {
    let app = spawn_app().await;
    app.users(&["ann", "bob", "carl"]).await;
    let ann = app.login("ann").await;
    let bob = app.login("bob").await;
    let mut ann_sse = app.sse("ann", &format!("?stream={ann}")).await;
    let mut bob_sse = app.sse("bob", &format!("?stream={bob}")).await;

    let r = app.add_contact("ann", &ann, json!({"jid": "bob", "nickname": "Bobby", "groups": ["friends"]})).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let item = r.json();
    assert_eq!((item["jid"].clone(), item["subscriptionType"].clone()), (json!("bob@localhost"), json!(0)));
    assert_eq!(item["ask"], "subscribe");

    // Bob is asked; he sees a request, not a contact, and Ann sees nothing of him yet.
    let request = bob_sse.next_presence("subscribe", "ann@localhost").await;
    assert_eq!(request.data["to"], "bob@localhost");
    assert_eq!(app.contacts("bob", &bob).await, Vec::<Value>::new());
    let listed = app.contacts("ann", &ann).await;
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0]["nickname"].clone(), listed[0]["groups"].clone()), (json!("Bobby"), json!(["friends"])));
    assert_eq!(listed[0]["show"], Value::Null, "not subscribed yet: unknown, not offline");
    ann_sse.assert_quiet_except(QUIET, ROSTER_PUSHES).await;

    // Bob approves by adding Ann back: both directions at once.
    let r = app.add_contact("bob", &bob, json!({"jid": "ann@localhost"})).await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["subscriptionType"], 3);
    ann_sse.next_presence("subscribed", "bob@localhost").await;
    let seen = ann_sse.next_presence("available", "bob@localhost").await;
    assert_eq!(
        (seen.data["show"].clone(), seen.data["availability"].clone()),
        (json!("available"), json!("available"))
    );
    bob_sse.next_presence("available", "ann@localhost").await;
    let listed = app.contacts("ann", &ann).await;
    assert_eq!((listed[0]["subscriptionType"].clone(), listed[0]["show"].clone()), (json!(3), json!("available")));
    assert_eq!(app.contacts("bob", &bob).await[0]["subscriptionType"], 3);

    // Refusals.
    let (a, p) = pw("ann");
    assert_eq!(app.add_contact("ann", &ann, json!({"jid": "bob"})).await.status, 409);
    assert_eq!(app.add_contact("ann", &ann, json!({"jid": "ghost"})).await.status, 404);
    let r = app.add_contact("ann", &ann, json!({"jid": "ann"})).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(app.add_contact("ann", &ann, json!({"nickname": "x"})).await.status, 400);
    assert_eq!(app.add_contact("ann", &ann, json!({"jid": "carl", "groups": [1]})).await.status, 400);
    assert_eq!(app.add_contact("bob", &ann, json!({"jid": "carl"})).await.status, 403, "another user's stream");
    let r = app.put_json(&format!("/restapi/v1/chat/{ann}/contacts/carl"), (a, &p), &json!({"nickname": "C"})).await;
    assert_eq!(r.status, 404);
    assert_eq!(app.delete(&format!("/restapi/v1/chat/{ann}/contacts/carl"), (a, &p)).await.status, 404);
    let r = app.put_json(&format!("/restapi/v1/chat/{ann}/contacts/bob"), (a, &p), &json!({"nickname": "B"})).await;
    assert_eq!((r.status, r.json()["nickname"].clone()), (200, json!("B")));

    // A request to an offline user waits for their next station.
    assert_eq!(app.add_contact("ann", &ann, json!({"jid": "carl"})).await.status, 201);
    let mut carl_sse = app.sse("carl", "").await;
    carl_sse.next_presence("subscribe", "ann@localhost").await;
}

#[actix_web::test]
async fn auto_accept_approves_without_asking() {
    let app = spawn_app_with(|c| c.roster.auto_accept = true).await;
    app.users(&["ann", "bob"]).await;
    let ann = app.login("ann").await;
    let mut ann_sse = app.sse("ann", &format!("?stream={ann}")).await;
    let mut bob_sse = app.sse("bob", "").await;
    let r = app.add_contact("ann", &ann, json!({"jid": "bob"})).await;
    assert_eq!((r.status, r.json()["subscriptionType"].clone()), (201, json!(1)));
    ann_sse.next_presence("subscribed", "bob@localhost").await;
    ann_sse.next_presence("available", "bob@localhost").await;
    bob_sse.assert_quiet_except(QUIET, ROSTER_PUSHES).await; // Ann is not visible to Bob: his side is `from`.
    let bob = app.login("bob").await;
    let theirs = app.contacts("bob", &bob).await;
    assert_eq!((theirs[0]["jid"].clone(), theirs[0]["subscriptionType"].clone()), (json!("ann@localhost"), json!(2)));
}

#[actix_web::test]
async fn removing_a_contact_cancels_both_directions() {
    let app = spawn_app().await;
    app.users(&["ann", "bob"]).await;
    let ann = app.login("ann").await;
    let bob = app.login("bob").await;
    app.add_contact("ann", &ann, json!({"jid": "bob"})).await;
    app.add_contact("bob", &bob, json!({"jid": "ann"})).await;
    let mut ann_sse = app.sse("ann", &format!("?stream={ann}")).await;
    let mut bob_sse = app.sse("bob", &format!("?stream={bob}")).await;
    bob_sse.next_presence("available", "ann@localhost").await;

    let (a, p) = pw("ann");
    assert_eq!(app.delete(&format!("/restapi/v1/chat/{ann}/contacts/bob@localhost"), (a, &p)).await.status, 200);
    bob_sse.next_presence("unsubscribe", "ann@localhost").await;
    bob_sse.next_presence("unsubscribed", "ann@localhost").await;
    bob_sse.next_presence("unavailable", "ann@localhost").await;
    ann_sse.next_presence("unavailable", "bob@localhost").await;
    assert_eq!(app.contacts("ann", &ann).await, Vec::<Value>::new());
    let theirs = app.contacts("bob", &bob).await;
    assert_eq!(theirs[0]["subscriptionType"], 0, "Bob keeps Ann listed, with no subscription");
    // Ann's presence no longer reaches Bob.
    assert_eq!(app.presence("ann", &ann, "?show=away").await.status, 200);
    bob_sse.assert_quiet_except(QUIET, ROSTER_PUSHES).await;
    let (b, bp) = pw("bob");
    let r = app.get(&format!("/restapi/v1/chat/{bob}/presence/ann"), (b, &bp)).await;
    assert_eq!(r.status, 403, "{}", r.text());
}

#[actix_web::test]
async fn presence_reaches_subscribers_only_and_follows_the_best_station() {
    let app = spawn_app().await;
    app.users(&["ann", "bob", "carl", "dave"]).await;
    app.befriend("ann", "bob").await;
    // Dave sees Ann (Ann's side is `from`); Ann does not see Dave.
    let r = app
        .post_json("/restapi/v1/users/ann/roster", app.admin(), &json!({"jid": "dave", "subscriptionType": 2}))
        .await;
    assert_eq!(r.status, 201);
    let mut bob_sse = app.sse("bob", "").await;
    let mut carl_sse = app.sse("carl", "").await;
    let mut dave_ws = app.ws("dave", "").await;

    let ann = app.login("ann").await;
    // A login stream without a live connection is not available yet.
    let r = app.presence("ann", &ann, "?show=away&status=lunch").await;
    assert_eq!(r.status, 200, "{}", r.text());
    bob_sse.assert_quiet_except(QUIET, ROSTER_PUSHES).await;
    let mut ann_sse = app.sse("ann", &format!("?stream={ann}")).await;
    let e = bob_sse.next_presence("available", "ann@localhost").await;
    assert_eq!((e.data["show"].clone(), e.data["status"].clone()), (json!("away"), json!("lunch")));
    assert_eq!(e.data["availability"], "away");
    let frame = dave_ws.next().await;
    assert_eq!((frame["event"].clone(), frame["show"].clone()), (json!("chatapi.presence"), json!("away")));
    // Initial presence: Ann's new station saw Bob (available) at once; not Dave.
    ann_sse.next_presence("available", "bob@localhost").await;
    ann_sse.assert_quiet_except(QUIET, ROSTER_PUSHES).await;

    // A second station with a higher priority decides what contacts see.
    let second = app.login("ann").await;
    let mut ann_ws = app.ws("ann", &format!("?stream={second}")).await;
    let e = bob_sse.next_presence("available", "ann@localhost").await;
    assert_eq!(e.data["show"], "available", "the new station is more available than away");
    ann_ws.send(json!({"op": "presence", "show": "dnd", "status": "busy", "priority": 5})).await;
    let e = bob_sse.next_presence("available", "ann@localhost").await;
    assert_eq!((e.data["show"].clone(), e.data["availability"].clone()), (json!("dnd"), json!("busy")));
    ann_ws.send(json!({"op": "presence", "show": "offline"})).await;
    let e = bob_sse.next_presence("available", "ann@localhost").await;
    assert_eq!(e.data["show"], "away", "back to the other station");
    carl_sse.assert_quiet_except(QUIET, ROSTER_PUSHES).await;

    // Reading presence: own, a contact's, not a stranger's.
    let (a, p) = pw("ann");
    let r = app.get(&format!("/restapi/v1/chat/{ann}/presence/bob"), (a, &p)).await;
    assert_eq!(
        (r.status, r.json()["type"].clone(), r.json()["jid"].clone()),
        (200, json!("available"), json!("bob@localhost"))
    );
    let r = app.get(&format!("/restapi/v1/chat/{ann}/presence/ann"), (a, &p)).await;
    assert_eq!(r.json()["show"], "away");
    assert_eq!(app.get(&format!("/restapi/v1/chat/{ann}/presence/carl"), (a, &p)).await.status, 403);
    assert_eq!(app.get(&format!("/restapi/v1/chat/{ann}/presence/dave"), (a, &p)).await.status, 403);
    assert_eq!(app.get(&format!("/restapi/v1/chat/{ann}/presence/ghost"), (a, &p)).await.status, 404);

    // Refusals name what is allowed.
    let r = app.presence("ann", &ann, "?show=sleepy").await;
    assert_eq!(r.status, 400);
    assert!(r.message().contains("available, away, chat, dnd, xa, offline"), "{}", r.text());
    assert_eq!(app.presence("ann", &ann, "?priority=300").await.status, 400);
    let (b, bp) = pw("bob");
    assert_eq!(app.post_text(&format!("/restapi/v1/chat/{ann}/presence"), (b, &bp), "").await.status, 403);
    ann_ws.send(json!({"op": "presence", "show": "sleepy", "id": 4})).await;
    let err = ann_ws.next_of_type("error").await;
    assert_eq!((err["code"].clone(), err["id"].clone()), (json!(400), json!(4)));
}

#[actix_web::test]
async fn the_last_station_going_makes_the_user_unavailable() {
    // A dropped SSE client is noticed at the next write: heartbeats make that prompt.
    let app = spawn_app_with(|c| c.sse.heartbeat_secs = 0.2).await;
    app.users(&["ann", "bob"]).await;
    app.befriend("ann", "bob").await;
    let mut bob_sse = app.sse("bob", "").await;

    // Two stations of their own: the websocket closing leaves Ann available.
    let ann_ws = app.ws("ann", "").await;
    bob_sse.next_presence("available", "ann@localhost").await;
    let ann_sse = app.sse("ann", "").await;
    ann_ws.close().await;
    bob_sse.assert_quiet_except(QUIET, ROSTER_PUSHES).await;
    // The SSE disconnect ends the last one.
    drop(ann_sse);
    let e = bob_sse.next_presence("unavailable", "ann@localhost").await;
    assert_eq!((e.data["show"].clone(), e.data["availability"].clone()), (json!("offline"), json!("offline")));

    // A login stream whose SSE disconnects counts too, and so does the websocket alone.
    let ann = app.login("ann").await;
    let ann_sse = app.sse("ann", &format!("?stream={ann}")).await;
    bob_sse.next_presence("available", "ann@localhost").await;
    drop(ann_sse);
    bob_sse.next_presence("unavailable", "ann@localhost").await;
    let ann_ws = app.ws("ann", &format!("?stream={ann}")).await;
    bob_sse.next_presence("available", "ann@localhost").await;
    ann_ws.close().await;
    bob_sse.next_presence("unavailable", "ann@localhost").await;
}

#[actix_web::test]
async fn blocking_stops_messages_and_presence_both_ways() {
    let app = spawn_app().await;
    app.users(&["ann", "bob"]).await;
    app.befriend("ann", "bob").await;
    let ann = app.login("ann").await;
    let bob = app.login("bob").await;
    let mut ann_sse = app.sse("ann", &format!("?stream={ann}")).await;
    let mut bob_sse = app.sse("bob", &format!("?stream={bob}")).await;
    ann_sse.next_presence("available", "bob@localhost").await;
    bob_sse.next_presence("available", "ann@localhost").await;
    let (b, bp) = pw("bob");
    let (a, ap) = pw("ann");

    let r = app.post_text(&format!("/restapi/v1/chat/{bob}/blocklist/ann"), (b, &bp), "").await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(app.post_text(&format!("/restapi/v1/chat/{bob}/blocklist/ann"), (b, &bp), "").await.status, 200);
    let r = app.get(&format!("/restapi/v1/chat/{bob}/blocklist"), (b, &bp)).await;
    assert_eq!(r.json(), json!({"blocked": ["ann@localhost"]}));
    // Each side stops seeing the other.
    ann_sse.next_presence("unavailable", "bob@localhost").await;
    bob_sse.next_presence("unavailable", "ann@localhost").await;

    // Ann's message is refused with an error event; nothing is stored for Bob.
    let r = app.send("ann", &ann, "bob", "let me in").await;
    assert_eq!(r.status, 403);
    assert!(r.message().contains("not accepting"), "{}", r.text());
    let e = ann_sse.next().await;
    assert_eq!((e.event.as_str(), e.data["type"].clone()), ("chatapi.chat", json!("error")));
    assert_eq!(e.data["from"], "bob@localhost");
    assert!(e.data["message"].as_str().unwrap().contains("not accepting"));
    let mut ann_ws = app.ws("ann", &format!("?stream={ann}")).await;
    ann_ws.send(json!({"op": "message", "to": "bob", "body": "hello?", "id": "m1"})).await;
    // Two frames, in either order: the reply to the op and the stanza error event.
    let (first, second) = (ann_ws.next().await, ann_ws.next().await);
    let (event, err) = if first.get("event").is_some() { (first, second) } else { (second, first) };
    assert_eq!((event["event"].clone(), event["id"].clone()), (json!("chatapi.chat"), json!("m1")));
    assert_eq!(
        (err["type"].clone(), err["code"].clone(), err["id"].clone()),
        (json!("error"), json!(403), json!("m1"))
    );
    assert_eq!(
        app.post_text(&format!("/restapi/v1/chat/{ann}/chatstate/composing/bob"), (a, &ap), "").await.status,
        403
    );
    // Bob cannot write to the user he blocks either.
    let r = app.send("bob", &bob, "ann", "hi").await;
    assert_eq!(r.status, 403);
    assert!(r.message().contains("unblock"), "{}", r.text());
    assert_eq!(bob_sse.next().await.data["condition"], "not-acceptable");
    // Presence changes do not cross, and a contact request is refused.
    assert_eq!(app.presence("ann", &ann, "?show=chat").await.status, 200);
    assert_eq!(app.presence("bob", &bob, "?show=chat").await.status, 200);
    bob_sse.assert_quiet_except(QUIET, ROSTER_PUSHES).await;
    // Ann's station heard only its own refusals (the websocket message, the chat state).
    for _ in 0..2 {
        assert_eq!(ann_sse.next().await.data["type"], "error");
    }
    ann_sse.assert_quiet_except(QUIET, ROSTER_PUSHES).await;
    let history = app.get("/restapi/v1/chat/bob/messages", (b, &bp)).await.json();
    assert_eq!(history["messages"], json!([]), "nothing stored for the blocker");
    assert_eq!(app.get(&format!("/restapi/v1/chat/{ann}/presence/bob"), (a, &ap)).await.json()["type"], "unavailable");

    // Offline: still nothing waits for Bob.
    drop(bob_sse);
    assert_eq!(app.send("ann", &ann, "bob", "still me").await.status, 403);
    let mut bob_sse = app.sse("bob", &format!("?stream={bob}")).await;
    bob_sse.assert_quiet_except(QUIET, ROSTER_PUSHES).await;

    // Refusals of the blocklist itself.
    assert_eq!(app.post_text(&format!("/restapi/v1/chat/{bob}/blocklist/bob"), (b, &bp), "").await.status, 400);
    assert_eq!(app.post_text(&format!("/restapi/v1/chat/{bob}/blocklist/ghost"), (b, &bp), "").await.status, 404);
    assert_eq!(app.get(&format!("/restapi/v1/chat/{bob}/blocklist"), (a, &ap)).await.status, 403);

    // Unblocking restores both.
    assert_eq!(app.delete(&format!("/restapi/v1/chat/{bob}/blocklist/ann"), (b, &bp)).await.status, 200);
    assert_eq!(app.delete(&format!("/restapi/v1/chat/{bob}/blocklist/ann"), (b, &bp)).await.status, 404);
    bob_sse.next_presence("available", "ann@localhost").await;
    assert_eq!(app.send("ann", &ann, "bob", "friends again").await.status, 200);
    assert_eq!(bob_sse.next().await.data["body"], "friends again");
}

#[actix_web::test]
async fn the_admin_manages_any_users_roster() {
    let app = spawn_app().await;
    app.users(&["ann", "bob"]).await;
    let (a, ap) = pw("ann");
    assert_eq!(app.get("/restapi/v1/users/ann/roster", (a, &ap)).await.status, 403, "admin only");
    assert_eq!(
        app.post_json("/restapi/v1/users/ann/roster", (a, &ap), &json!({"jid": "bob"})).await.status,
        403,
        "admin only"
    );
    let r = app
        .post_json(
            "/restapi/v1/users/ann/roster",
            app.admin(),
            &json!({"jid": "bob@localhost", "nickname": "B", "subscriptionType": 1, "groups": {"group": ["work"]}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let roster = app.get("/restapi/v1/users/ann/roster", app.admin()).await.json();
    assert_eq!(roster["rosterItem"][0]["groups"], json!(["work"]));
    assert_eq!(roster["rosterItem"][0]["subscriptionType"], 1);
    let theirs = app.get("/restapi/v1/users/bob/roster", app.admin()).await.json();
    assert_eq!(theirs["rosterItem"][0]["subscriptionType"], 2, "mirrored on the contact's side");

    let dup = app.post_json("/restapi/v1/users/ann/roster", app.admin(), &json!({"jid": "bob"})).await;
    assert_eq!(dup.status, 409);
    let bad =
        app.post_json("/restapi/v1/users/ann/roster", app.admin(), &json!({"jid": "bob", "subscriptionType": 7})).await;
    assert_eq!(bad.status, 400);
    assert!(bad.message().contains("subscriptionType"));
    assert_eq!(app.get("/restapi/v1/users/ghost/roster", app.admin()).await.status, 404);

    let r = app.put_json("/restapi/v1/users/ann/roster/bob", app.admin(), &json!({"nickname": "Bobby"})).await;
    assert_eq!(
        (r.status, r.json()["nickname"].clone(), r.json()["subscriptionType"].clone()),
        (200, json!("Bobby"), json!(1))
    );
    let r = app.put_json("/restapi/v1/users/bob/roster/ann", app.admin(), &json!({"subscriptionType": 3})).await;
    assert_eq!(r.status, 200, "Bob's side is listed since it has a subscription");
    let roster = app.get("/restapi/v1/users/ann/roster", app.admin()).await.json();
    assert_eq!(roster["rosterItem"][0]["subscriptionType"], 3);
    assert_eq!(app.put_json("/restapi/v1/users/ann/roster/ghost", app.admin(), &json!({})).await.status, 404);

    assert_eq!(app.delete("/restapi/v1/users/ann/roster/bob", app.admin()).await.status, 200);
    assert_eq!(app.delete("/restapi/v1/users/ann/roster/bob", app.admin()).await.status, 404);
    assert_eq!(app.get("/restapi/v1/users/ann/roster", app.admin()).await.json()["rosterItem"], json!([]));
    let theirs = app.get("/restapi/v1/users/bob/roster", app.admin()).await.json();
    assert_eq!(theirs["rosterItem"][0]["subscriptionType"], 0);

    // Deleting an account removes it from every roster.
    assert_eq!(app.delete("/restapi/v1/users/ann", app.admin()).await.status, 200);
    assert_eq!(app.get("/restapi/v1/users/bob/roster", app.admin()).await.json()["rosterItem"], json!([]));
}

#[actix_web::test]
async fn contacts_and_blocklists_survive_a_restart() {
    let app = spawn_app().await;
    app.users(&["ann", "bob", "carl"]).await;
    app.befriend("ann", "bob").await;
    let ann = app.login("ann").await;
    let (a, ap) = pw("ann");
    assert_eq!(app.post_text(&format!("/restapi/v1/chat/{ann}/blocklist/carl"), (a, &ap), "").await.status, 201);
    let (dir, config) = app.stop().await;

    let app = start(dir, config).await;
    let ann = app.login("ann").await;
    let listed = app.contacts("ann", &ann).await;
    assert_eq!((listed[0]["jid"].clone(), listed[0]["subscriptionType"].clone()), (json!("bob@localhost"), json!(3)));
    let r = app.get(&format!("/restapi/v1/chat/{ann}/blocklist"), (a, &ap)).await;
    assert_eq!(r.json(), json!({"blocked": ["carl@localhost"]}));
    let carl = app.login("carl").await;
    assert_eq!(app.send("carl", &carl, "ann", "hi").await.status, 403, "the block still stands");
}
