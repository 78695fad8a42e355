//! Fastpath workgroups: the whole story with millisecond timers (queue, round-robin offers,
//! reject, timeout revoke, cancel revoke, accept, the room, agent-not-found), the admin API
//! and its ofchat aliases, and every refusal.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::*;

fn auth(name: &str) -> (&str, String) {
    (name, format!("pw-{name}"))
}

impl TestApp {
    pub(crate) async fn create_workgroup(&self, body: Value) -> Reply {
        self.post_json("/restapi/v1/workgroups", self.admin(), &body).await
    }

    /// `POST /restapi/v1/ask` without any credentials, as a web visitor does.
    pub(crate) async fn ask(&self, body: Value) -> Reply {
        reply(self.client.post(self.url("/restapi/v1/ask")).send_json(&body).await).await
    }

    pub(crate) async fn ask_for(&self, workgroup: &str, user_id: &str) -> Reply {
        self.ask(json!({
            "workgroup": workgroup,
            "userID": user_id,
            "emailAddress": format!("{user_id}@example.net"),
            "question": format!("help {user_id}"),
            "nickname": format!("Visitor {user_id}"),
        }))
        .await
    }

    /// A visitor's call on `/restapi/v1/ask/{user_id}` with its token (`None`: no token).
    pub(crate) async fn visitor(&self, method: &str, user_id: &str, token: Option<&str>, body: &str) -> Reply {
        let url = self.url(&format!("/restapi/v1/ask/{user_id}"));
        let mut request = match method {
            "GET" => self.client.get(url),
            "POST" => self.client.post(url),
            "PUT" => self.client.put(url),
            "DELETE" => self.client.delete(url),
            other => panic!("method {other}"),
        };
        if let Some(token) = token {
            request = request.insert_header(("authorization", format!("Bearer {token}")));
        }
        reply(request.insert_header(("content-type", "text/plain")).send_body(body.to_owned()).await).await
    }

    pub(crate) async fn visitor_sse(&self, user_id: &str, token: &str) -> Sse {
        let request = self
            .client
            .get(self.url(&format!("/sse/{user_id}?token={token}")))
            .insert_header(("accept", "text/event-stream"))
            .timeout(Duration::from_secs(3600));
        Self::open_sse(request, user_id).await
    }

    pub(crate) async fn visitor_ws(&self, token: &str) -> Ws {
        let (response, framed) = self
            .client
            .ws(self.ws_url(&format!("/ws?token={token}")))
            .connect()
            .await
            .unwrap_or_else(|e| panic!("visitor websocket: {e}"));
        assert_eq!(response.status().as_u16(), 101);
        Ws { framed }
    }

    /// An agent's call on its stream (`/restapi/v1/chat/{stream}/{rest}`).
    pub(crate) async fn agent(&self, method: &str, name: &str, stream: &str, rest: &str) -> Reply {
        let (u, p) = auth(name);
        let url = self.url(&format!("/restapi/v1/chat/{stream}/{rest}"));
        let request = match method {
            "GET" => self.client.get(url),
            "POST" => self.client.post(url),
            "PUT" => self.client.put(url),
            "DELETE" => self.client.delete(url),
            other => panic!("method {other}"),
        };
        reply(request.basic_auth(u, &p).send().await).await
    }
}

/// The next `chatapi.assist` event of `kind` for the visitor `user_id`.
pub(crate) async fn next_assist(sse: &mut Sse, kind: &str, user_id: &str) -> Value {
    loop {
        let e = next_of(sse, "chatapi.assist", kind).await;
        if e.data["userID"] == user_id {
            return e.data;
        }
    }
}

/// The next `chatapi.ask` `update-queue` position a visitor is told.
pub(crate) async fn next_position(sse: &mut Sse) -> i64 {
    next_of(sse, "chatapi.ask", "update-queue").await.data["position"].as_i64().expect("position")
}

#[actix_web::test]
async fn the_whole_story_queue_offers_revokes_room_and_agent_not_found() {
    let app = spawn_app_with(|c| {
        // Rejectors stay skipped for the whole story.
        c.fastpath.rejection_memory_secs = 30.0;
        c.sse.heartbeat_secs = 0.2;
    })
    .await;
    for name in ["ann", "bob", "carl"] {
        app.create_user(name).await;
    }
    let created = app
        .create_workgroup(json!({
            "name": "support", "description": "Help desk", "members": ["ann", "bob"],
            "maxChats": 2, "offerTimeout": 1.5, "requestTimeout": 60,
        }))
        .await;
    assert_eq!(created.status, 201, "{}", created.text());
    assert_eq!(created.json()["jid"], "support@workgroup.localhost");
    assert_eq!(created.json()["offerTimeout"], 1.5);

    let ann = app.login("ann").await;
    let bob = app.login("bob").await;
    let mut ann_sse = app.sse("ann", &format!("?stream={ann}")).await;
    let mut bob_sse = app.sse("bob", &format!("?stream={bob}")).await;
    let assists = app.agent("GET", "ann", &ann, "assists").await;
    assert_eq!(assists.json(), json!({ "workgroup": ["support@workgroup.localhost"] }));
    for (name, stream) in [("ann", &ann), ("bob", &bob)] {
        let r = app.agent("POST", name, stream, "assists/support").await;
        assert_eq!(r.status, 200, "{name} online: {}", r.text());
    }
    next_of(&mut ann_sse, "chatapi.ask", "notify-queue").await;

    // v1 queues: Ann and Bob are equal (no chats, never chatted), Ann comes first by name.
    let asked = app.ask_for("support", "v1").await;
    assert_eq!(asked.status, 202, "{}", asked.text());
    let v1 = asked.json();
    assert_eq!((v1["position"].as_i64(), v1["estimatedTime"].as_i64()), (Some(1), Some(15)));
    let v1_token = v1["token"].as_str().unwrap().to_owned();
    // The visitor connects after the fact: the backlog holds its first queue status.
    let mut v1_sse = app.visitor_sse("v1", &v1_token).await;
    assert_eq!(next_position(&mut v1_sse).await, 1);
    let offer = next_assist(&mut ann_sse, "offerReceived", "v1").await;
    assert_eq!(offer["workgroup"], "support@workgroup.localhost");
    assert_eq!(
        offer["metaData"],
        json!({ "question": "help v1", "email": "v1@example.net", "username": "Visitor v1" })
    );
    assert_eq!(offer["timeout"], 2, "1.5 s rounds up to 2 s");

    // Ann rejects: the request goes to Bob at once.
    let offer_id = offer["id"].as_str().unwrap();
    assert_eq!(app.agent("DELETE", "ann", &ann, &format!("offer/{offer_id}")).await.status, 200);
    let to_bob = next_assist(&mut bob_sse, "offerReceived", "v1").await;
    assert_ne!(to_bob["id"], offer["id"]);
    // Bob lets it time out: revoked, and nobody is left for v1 (both are its rejectors).
    let revoked = next_assist(&mut bob_sse, "offerRevoked", "v1").await;
    assert_eq!(
        (revoked["id"].clone(), revoked["reason"].clone()),
        (to_bob["id"].clone(), json!("The offer has timed out"))
    );
    let late = app.agent("POST", "bob", &bob, &format!("offer/{}", to_bob["id"].as_str().unwrap())).await;
    assert_eq!(late.status, 404, "a revoked offer is gone: {}", late.text());

    // v2 and v3 queue behind v1; v2 goes to Ann, v3 to Bob.
    let v2 = app.ask_for("support", "v2").await.json();
    assert_eq!(v2["position"], 2);
    let v3 = app.ask_for("support", "v3").await.json();
    assert_eq!(v3["position"], 3);
    let v3_token = v3["token"].as_str().unwrap().to_owned();
    let mut v3_ws = app.visitor_ws(&v3_token).await;
    assert_eq!(next_ws_of(&mut v3_ws, "chatapi.ask", "update-queue").await["position"], 3);
    let to_ann = next_assist(&mut ann_sse, "offerReceived", "v2").await;
    let to_bob = next_assist(&mut bob_sse, "offerReceived", "v3").await;
    let queues = app.agent("GET", "ann", &ann, "assists/queues").await.json();
    let users: Vec<&str> =
        queues["queue"][0]["users"]["user"].as_array().unwrap().iter().map(|u| u["userID"].as_str().unwrap()).collect();
    assert_eq!(users, ["v1", "v2", "v3"]);
    let status = app.visitor("GET", "v1", Some(&v1_token), "").await.json();
    assert_eq!((status["inQueue"].clone(), status["queuePosition"].clone()), (json!(true), json!(1)));

    // v2 cancels while offered: Ann's offer is revoked ("User canceled"), v3 moves up.
    let v2_token = v2["token"].as_str().unwrap();
    assert_eq!(app.visitor("DELETE", "v2", Some(v2_token), "").await.status, 200);
    let revoked = next_assist(&mut ann_sse, "offerRevoked", "v2").await;
    assert_eq!((revoked["id"].clone(), revoked["reason"].clone()), (to_ann["id"].clone(), json!("User canceled")));
    assert_eq!(next_ws_of(&mut v3_ws, "chatapi.ask", "update-queue").await["position"], 2);
    assert_eq!(app.visitor("GET", "v2", Some(v2_token), "").await.status, 404, "a departed visitor is gone");

    // Ann may not take Bob's offer; Bob accepts it.
    let bobs = format!("offer/{}", to_bob["id"].as_str().unwrap());
    assert_eq!(app.agent("POST", "ann", &ann, &bobs).await.status, 409);
    assert_eq!(app.agent("POST", "bob", &bob, &bobs).await.status, 200);
    let invitation = next_of(&mut bob_sse, "chatapi.muc", "invitationReceived").await.data;
    let room_jid = invitation["room"].as_str().unwrap().to_owned();
    assert!(room_jid.ends_with("@conference.localhost"), "{room_jid}");
    assert_eq!(invitation["visitor"], "support@workgroup.localhost/v3");
    let offered = next_ws_of(&mut v3_ws, "chatapi.ask", "offer").await;
    assert_eq!(offered["mucRoom"], room_jid);
    let room = room_jid.split('@').next().unwrap().to_owned();
    // The room is not in the directory.
    let directory = app.get("/restapi/v1/chat/rooms?type=all", ("carl", "pw-carl")).await.json();
    assert!(!directory.to_string().contains(&room), "{directory}");

    // Both meet in the room and talk: Bob over SSE, the visitor over its websocket.
    let joined = app.agent("PUT", "bob", &bob, &format!("rooms/{room}")).await;
    assert_eq!(joined.status, 200, "{}", joined.text());
    assert_eq!(app.visitor("POST", "v3", Some(&v3_token), "").await.status, 200);
    assert_eq!(app.visitor("PUT", "v3", Some(&v3_token), "my printer is on fire").await.status, 200);
    loop {
        let e = next_of(&mut bob_sse, "chatapi.muc", "groupchat").await;
        if e.data["body"] == "my printer is on fire" {
            assert_eq!(e.data["from"], format!("{room_jid}/Visitor v3"));
            break;
        }
    }
    let (u, p) = auth("bob");
    let said =
        app.post_json(&format!("/restapi/v1/chat/{bob}/rooms/{room}"), (u, &p), &json!({"body": "unplug it"})).await;
    assert_eq!(said.status, 200, "{}", said.text());
    loop {
        let v = next_ws_of(&mut v3_ws, "chatapi.muc", "groupchat").await;
        if v["body"] == "unplug it" {
            assert_eq!(v["from"], format!("{room_jid}/bob"));
            break;
        }
    }
    let status = app.visitor("GET", "v3", Some(&v3_token), "").await.json();
    assert_eq!((status["inQueue"].clone(), status["room"].clone()), (json!(false), json!(room_jid)));
    let queues = app.agent("GET", "bob", &bob, "assists/queues").await.json();
    assert_eq!(queues["queue"][0]["currentChats"], 1);

    // No agent left for v1: Ann goes offline, Bob's stations all end.
    assert_eq!(app.agent("DELETE", "ann", &ann, "assists/support").await.status, 200);
    assert_eq!(app.agent("DELETE", "ann", &ann, "assists/support").await.status, 409, "already offline");
    let (u, p) = auth("bob");
    assert_eq!(app.post_text(&format!("/restapi/v1/chat/{bob}/logoff"), (u, &p), "").await.status, 200);
    let departed = next_of(&mut v1_sse, "chatapi.ask", "depart-queue").await;
    assert_eq!(departed.data["reason"], "agent-not-found");
    let status = app.visitor("GET", "v1", Some(&v1_token), "").await.json();
    assert_eq!((status["inQueue"].clone(), status["queuePosition"].clone()), (json!(false), json!(-1)));

    // The visitor leaves: the room ends, and its transcript stays.
    assert_eq!(app.visitor("DELETE", "v3", Some(&v3_token), "").await.status, 200);
    let mut ended = false;
    for _ in 0..50 {
        let chats = app.get("/restapi/v1/workgroups/support/chats", app.admin()).await.json();
        if !chats["chats"][0]["ended"].is_null() {
            assert_eq!(
                (chats["chats"][0]["agent"].clone(), chats["chats"][0]["visitor"].clone()),
                (json!("bob"), json!("v3"))
            );
            ended = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ended, "the chat record is closed when the room ends");
    let transcript = app.get(&format!("/restapi/v1/workgroups/support/chats/{room}"), app.admin()).await.json();
    let bodies: Vec<&str> =
        transcript["messages"].as_array().unwrap().iter().map(|m| m["body"].as_str().unwrap()).collect();
    assert_eq!(bodies, ["my printer is on fire", "unplug it"]);
    assert_eq!(
        app.get(&format!("/restapi/v1/chat/rooms/{room}"), ("carl", "pw-carl")).await.status,
        404,
        "the room is gone"
    );
}

#[actix_web::test]
async fn visitors_are_refused_clearly() {
    let app = spawn_app().await;
    for name in ["ann", "bob"] {
        app.create_user(name).await;
    }
    assert_eq!(app.create_workgroup(json!({"name": "sales", "members": ["ann"]})).await.status, 201);
    assert_eq!(app.create_workgroup(json!({"name": "closed", "members": ["ann"], "open": false})).await.status, 201);

    // Missing fields are named, all at once.
    let r = app.ask(json!({"userID": "v1", "workgroup": "sales"})).await;
    assert_eq!(r.status, 400);
    assert!(r.message().contains("emailAddress, question"), "{}", r.message());
    let r = app.ask(json!({"userID": "v 1", "workgroup": "sales", "emailAddress": "e", "question": "q"})).await;
    assert_eq!(r.status, 400, "a userID with a space: {}", r.text());
    assert_eq!(app.ask_for("nowhere", "v1").await.status, 404);
    let r = app.ask_for("closed", "v1").await;
    assert_eq!(r.status, 503);
    assert!(r.message().contains("closed"), "{}", r.message());
    let r = app.ask_for("sales", "v1").await;
    assert_eq!(r.status, 503, "no agent online: {}", r.text());
    assert!(r.message().contains("no agent"), "{}", r.message());

    // Ann online, but her only connection is a login stream with no SSE: not available.
    let ann = app.login("ann").await;
    assert_eq!(app.agent("POST", "ann", &ann, "assists/sales").await.status, 200);
    assert_eq!(app.ask_for("sales", "v1").await.status, 503);
    let _ann_sse = app.sse("ann", &format!("?stream={ann}")).await;
    let mut queued = None;
    for _ in 0..50 {
        let r = app.ask_for("sales", "v1").await;
        if r.status == 202 {
            queued = Some(r.json());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let v1 = queued.expect("accepted once Ann is connected");
    let token = v1["token"].as_str().unwrap();
    let r = app.ask_for("sales", "v1").await;
    assert_eq!(r.status, 409, "the same userID is already queued: {}", r.text());

    // The visitor's own calls need its token.
    assert_eq!(app.visitor("GET", "v1", None, "").await.status, 401);
    let other = "visitor-0000000000000000000000000000000000000000000000";
    assert_eq!(app.visitor("GET", "v1", Some(other), "").await.status, 403);
    assert_eq!(app.visitor("GET", "nobody", Some(token), "").await.status, 404);
    let r = app.visitor("POST", "v1", Some(token), "").await;
    assert_eq!(r.status, 409, "no room before an agent accepts: {}", r.text());
    assert_eq!(app.visitor("PUT", "v1", Some(token), "hello").await.status, 409);
    assert_eq!(app.visitor("PUT", "v1", Some(token), "  ").await.status, 400);
    let sse = app
        .client
        .get(app.url(&format!("/sse/v1?token={other}")))
        .insert_header(("accept", "text/event-stream"))
        .send()
        .await
        .unwrap();
    assert_eq!(sse.status().as_u16(), 403);
    let ws = app.client.ws(app.ws_url(&format!("/ws?token={other}"))).connect().await;
    assert!(ws.is_err(), "an unknown visitor token is refused before the upgrade");

    // A visitor's websocket receives events only.
    let mut ws = app.visitor_ws(token).await;
    ws.send(json!({"op": "message", "to": "ann", "body": "hi", "id": "m1"})).await;
    let error = ws.next_of_type("error").await;
    assert_eq!(error["code"], 403);

    // Leaving twice: the second time the visitor is gone.
    assert_eq!(app.visitor("DELETE", "v1", Some(token), "").await.status, 200);
    assert_eq!(app.visitor("DELETE", "v1", Some(token), "").await.status, 404);
    // The id is free again.
    assert_eq!(app.ask_for("sales", "v1").await.status, 202);
}

#[actix_web::test]
async fn agents_are_refused_clearly() {
    let app = spawn_app().await;
    for name in ["ann", "bob", "carl"] {
        app.create_user(name).await;
    }
    assert_eq!(
        app.create_workgroup(json!({"name": "sales", "members": ["ann", "bob"], "offerTimeout": 30})).await.status,
        201
    );
    let ann = app.login("ann").await;
    let bob = app.login("bob").await;
    let carl = app.login("carl").await;
    let mut ann_sse = app.sse("ann", &format!("?stream={ann}")).await;
    let _bob_sse = app.sse("bob", &format!("?stream={bob}")).await;

    let r = app.agent("POST", "carl", &carl, "assists/sales").await;
    assert_eq!(r.status, 403, "not a member: {}", r.text());
    assert_eq!(app.agent("GET", "carl", &carl, "assists").await.json(), json!({ "workgroup": [] }));
    assert_eq!(app.agent("POST", "ann", &ann, "assists/nowhere").await.status, 404);
    assert_eq!(app.agent("POST", "ann", &ann, "assists/sales@workgroup.elsewhere").await.status, 400);
    assert_eq!(app.agent("POST", "ann", &bob, "assists/sales").await.status, 403, "Bob's stream");
    assert_eq!(app.agent("DELETE", "ann", &ann, "assists/sales").await.status, 409, "not online yet");
    assert_eq!(app.agent("POST", "ann", &ann, "assists/sales@workgroup.localhost").await.status, 200, "full address");
    assert_eq!(app.agent("POST", "ann", &ann, "assists/sales").await.status, 200, "again: no change");

    assert_eq!(app.ask_for("sales", "v1").await.status, 202);
    let offer = next_assist(&mut ann_sse, "offerReceived", "v1").await;
    let id = offer["id"].as_str().unwrap();
    assert_eq!(app.agent("POST", "bob", &bob, &format!("offer/{id}")).await.status, 409, "Ann's offer");
    assert_eq!(app.agent("DELETE", "bob", &bob, &format!("offer/{id}")).await.status, 409);
    assert_eq!(app.agent("POST", "ann", &ann, "offer/sales-999").await.status, 404);
    assert_eq!(app.agent("POST", "ann", &ann, "offer/nonsense").await.status, 404);
    assert_eq!(app.agent("POST", "carl", &ann, &format!("offer/{id}")).await.status, 403, "Ann's stream");
    // Carl is told nothing about the queue.
    let carl_queues = app.agent("GET", "carl", &carl, "assists/queues").await.json();
    assert_eq!(carl_queues, json!({ "queue": [] }));
}

#[actix_web::test]
async fn the_admin_api_manages_workgroups_and_they_survive_a_restart() {
    let app = spawn_app().await;
    for name in ["ann", "bob"] {
        app.create_user(name).await;
    }
    // Admin only.
    let r = app.post_json("/restapi/v1/workgroups", ("ann", "pw-ann"), &json!({"name": "x"})).await;
    assert_eq!(r.status, 403);
    let r = reply(app.client.get(app.url("/restapi/v1/workgroups")).send().await).await;
    assert_eq!(r.status, 401);
    assert_eq!(app.get("/restapi/v1/workgroups/sales/chats", ("ann", "pw-ann")).await.status, 403);

    // Validation.
    for (body, why) in [
        (json!({"description": "no name"}), "name"),
        (json!({"name": "Bad Name"}), "workgroup name"),
        (json!({"name": "s", "maxChats": 0}), "maxChats"),
        (json!({"name": "s", "offerTimeout": -1}), "offerTimeout"),
        (json!({"name": "s", "members": ["Not Valid"]}), "members"),
    ] {
        let r = app.create_workgroup(body.clone()).await;
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        assert!(r.message().contains(why), "{body}: {}", r.message());
    }
    let r = app.create_workgroup(json!({"name": "s", "members": ["ghost"]})).await;
    assert_eq!(r.status, 404, "a member without an account: {}", r.text());

    // Defaults come from the configuration.
    let r = app.create_workgroup(json!({"name": "sales", "members": ["ann"]})).await;
    assert_eq!(r.status, 201);
    assert_eq!(
        r.json(),
        json!({
            "name": "sales", "jid": "sales@workgroup.localhost", "description": "", "members": ["ann"], "memberGroups": [],
            "open": true, "maxChats": 4, "offerTimeout": 20, "requestTimeout": 240,
        })
    );
    assert_eq!(app.create_workgroup(json!({"name": "sales"})).await.status, 409);

    // Update: only the fields given change; renaming is refused.
    let r = app
        .put_json("/restapi/v1/workgroups/sales", app.admin(), &json!({"members": ["ann", "bob"], "open": false}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        (r.json()["members"].clone(), r.json()["open"].clone(), r.json()["maxChats"].clone()),
        (json!(["ann", "bob"]), json!(false), json!(4))
    );
    assert_eq!(app.put_json("/restapi/v1/workgroups/sales", app.admin(), &json!({"name": "other"})).await.status, 400);
    assert_eq!(app.put_json("/restapi/v1/workgroups/nowhere", app.admin(), &json!({})).await.status, 404);
    assert_eq!(app.get("/restapi/v1/workgroups/nowhere", app.admin()).await.status, 404);
    assert_eq!(app.delete("/restapi/v1/workgroups/nowhere", app.admin()).await.status, 404);

    // ofchat's aliases: members as text.
    let r = app
        .post_json(
            "/restapi/v1/ask/admin",
            app.admin(),
            &json!({"name": "desk", "description": "d", "members": "ann, bob"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["members"], json!(["ann", "bob"]));
    let r = app.post_text("/restapi/v1/ask/admin/desk", app.admin(), "bob").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["members"], json!(["bob"]));
    assert_eq!(app.post_text("/restapi/v1/ask/admin/desk", ("ann", "pw-ann"), "ann").await.status, 403);

    let list = app.get("/restapi/v1/workgroups", app.admin()).await.json();
    let names: Vec<&str> = list["workgroups"].as_array().unwrap().iter().map(|w| w["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["desk", "sales"]);

    // Stored: a restart keeps both, with their settings.
    let (dir, config) = app.stop().await;
    let app = start(dir, config).await;
    let sales = app.get("/restapi/v1/workgroups/sales", app.admin()).await.json();
    assert_eq!((sales["members"].clone(), sales["open"].clone()), (json!(["ann", "bob"]), json!(false)));
    assert_eq!(app.delete("/restapi/v1/ask/admin/desk", app.admin()).await.status, 200);
    assert_eq!(app.get("/restapi/v1/workgroups/desk", app.admin()).await.status, 404);
    // A closed workgroup refuses visitors.
    assert_eq!(app.ask_for("sales", "v1").await.status, 503);
}

#[actix_web::test]
async fn a_workgroups_agents_may_come_from_a_user_group() {
    let app = spawn_app().await;
    for name in ["ann", "bob"] {
        app.create_user(name).await;
    }
    let r =
        app.post_json("/plugins/restapi/v1/groups", app.admin(), &json!({"name": "agents", "members": ["bob"]})).await;
    assert_eq!(r.status, 201);
    let r = app.create_workgroup(json!({"name": "help", "members": ["ann"], "memberGroups": ["agents"]})).await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["memberGroups"], json!(["agents"]));
    let bob = app.login("bob").await;
    assert_eq!(app.agent("POST", "bob", &bob, "assists/help").await.status, 200, "an agent through the group");
    let assists = app.agent("GET", "bob", &bob, "assists").await;
    assert_eq!(assists.json(), json!({ "workgroup": ["help@workgroup.localhost"] }));
    let r = app.create_workgroup(json!({"name": "none", "memberGroups": ["ghosts"]})).await;
    assert_eq!((r.status, r.json()["exception"].clone()), (404, json!("GroupNotFoundException")));
    let ann = app.login("ann").await;
    assert!(queue_agents(&app, &ann).await.contains("bob"), "bob is online as agent");
    // Out of the group, out of the workgroup's agents: offline at once, refused after.
    assert_eq!(app.delete("/restapi/v1/users/bob/groups/agents", app.admin()).await.status, 200);
    let mut offline = false;
    for _ in 0..50 {
        if !queue_agents(&app, &ann).await.contains("bob") {
            offline = true;
            break;
        }
        actix_rt::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(offline, "bob went offline: {}", queue_agents(&app, &ann).await);
    assert_eq!(app.agent("POST", "bob", &bob, "assists/help").await.status, 403);
}

/// The agents a workgroup's queue shows to `ann`, as text.
async fn queue_agents(app: &TestApp, stream: &str) -> String {
    let queues = app.agent("GET", "ann", stream, "assists/queues").await.json();
    queues["queue"][0]["agents"].to_string()
}
