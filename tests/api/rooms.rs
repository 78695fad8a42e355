//! MUC rooms: join, leave, post and invite over REST with SSE and websocket occupants,
//! history, the entry and speaking rules, the directory and the admin API.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::*;

const QUIET: Duration = Duration::from_millis(300);

fn auth(name: &str) -> (&str, String) {
    (name, format!("pw-{name}"))
}

impl TestApp {
    pub(crate) async fn join(&self, name: &str, stream: &str, room: &str, query: &str) -> Reply {
        let (u, p) = auth(name);
        let url = self.url(&format!("/restapi/v1/chat/{stream}/rooms/{room}{query}"));
        reply(self.client.put(url).basic_auth(u, &p).send().await).await
    }

    pub(crate) async fn say(&self, name: &str, stream: &str, room: &str, body: &str) -> Reply {
        let (u, p) = auth(name);
        self.post_json(&format!("/restapi/v1/chat/{stream}/rooms/{room}"), (u, &p), &json!({ "body": body })).await
    }

    pub(crate) async fn create_room(&self, room: Value) -> Reply {
        self.post_json("/restapi/v1/chatrooms", self.admin(), &room).await
    }
}

#[actix_web::test]
async fn sse_and_websocket_occupants_share_a_room() {
    let app = spawn_app().await;
    for name in ["ann", "bob", "carl"] {
        app.create_user(name).await;
    }
    let ann = app.login("ann").await;
    let mut ann_sse = app.sse("ann", &format!("?stream={ann}")).await;

    // Ann's first join creates the room and makes her its owner.
    let r = app.join("ann", &ann, "lobby", "").await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"room": "lobby@conference.localhost", "nick": "ann", "role": "moderator", "affiliation": "owner", "created": true})
    );
    let me = next_of(&mut ann_sse, "chatapi.presence", "available").await;
    assert_eq!(
        (me.data["from"].clone(), me.data["role"].clone()),
        (json!("lobby@conference.localhost/ann"), json!("moderator"))
    );
    assert_eq!(app.say("ann", &ann, "lobby", "first").await.status, 200);
    assert_eq!(app.say("ann", &ann, "lobby", "second").await.status, 200);
    let echo = next_of(&mut ann_sse, "chatapi.muc", "groupchat").await;
    assert_eq!(
        (echo.data["body"].clone(), echo.data["from"].clone()),
        (json!("first"), json!("lobby@conference.localhost/ann"))
    );
    assert!(echo.id.is_none(), "room events carry no 1:1 replay id");

    // Bob joins over the websocket with a nick: he hears Ann, himself, then the history.
    let bob = app.login("bob").await;
    let mut bob_ws = app.ws("bob", &format!("?stream={bob}")).await;
    let r = app.join("bob", &bob, "lobby", "?nick=Bobby").await;
    assert_eq!(
        (r.status, r.json()["role"].clone(), r.json()["affiliation"].clone()),
        (200, json!("participant"), json!("none"))
    );
    let first = bob_ws.next().await;
    assert_eq!(
        (first["event"].clone(), first["from"].clone()),
        (json!("chatapi.presence"), json!("lobby@conference.localhost/ann"))
    );
    assert_eq!(bob_ws.next().await["from"], "lobby@conference.localhost/Bobby");
    let h1 = bob_ws.next().await;
    assert_eq!((h1["event"].clone(), h1["body"].clone()), (json!("chatapi.muc"), json!("first")));
    assert!(h1["delay"].is_string(), "history is marked: {h1}");
    assert_eq!(bob_ws.next().await["body"], "second");
    let joined = next_of(&mut ann_sse, "chatapi.presence", "available").await;
    assert_eq!(joined.data["nick"], "Bobby");

    // A message reaches every occupant, the sender included, and is archived.
    assert_eq!(app.say("bob", &bob, "lobby", "hello all").await.status, 200);
    let live = next_ws_of(&mut bob_ws, "chatapi.muc", "groupchat").await;
    assert_eq!((live["body"].clone(), live["delay"].clone()), (json!("hello all"), Value::Null));
    assert_eq!(next_of(&mut ann_sse, "chatapi.muc", "groupchat").await.data["body"], "hello all");
    let (c, cp) = auth("carl");
    let history = app.get("/restapi/v1/chat/rooms/lobby/chathistory", (c, &cp)).await.json();
    let bodies: Vec<&str> =
        history["messages"].as_array().unwrap().iter().map(|m| m["body"].as_str().unwrap()).collect();
    assert_eq!(bodies, ["first", "second", "hello all"]);
    let occupants = app.get("/restapi/v1/chat/rooms/lobby/occupants", (c, &cp)).await.json();
    assert_eq!(occupants["occupants"].as_array().unwrap().len(), 2);

    // Refusals: a non-occupant may not post; a taken nick; someone else's stream.
    let carl = app.login("carl").await;
    assert_eq!(app.say("carl", &carl, "lobby", "let me in").await.status, 403);
    assert_eq!(app.join("carl", &carl, "lobby", "?nick=ann").await.status, 409);
    assert_eq!(app.join("carl", &ann, "lobby", "").await.status, 403);
    assert_eq!(app.join("carl", &carl, "Lobby", "").await.status, 400);
    assert_eq!(app.say("carl", &carl, "nowhere", "x").await.status, 404);

    // Invitations: only occupants invite; the invitee hears it; unknown users are 404.
    let mut carl_sse = app.sse("carl", &format!("?stream={carl}")).await;
    let (b, bp) = auth("bob");
    let (a, ap) = auth("ann");
    let r = app.post_text(&format!("/restapi/v1/chat/{carl}/rooms/lobby/ann"), (c, &cp), "hi").await;
    assert_eq!(r.status, 403);
    let r = app.post_text(&format!("/restapi/v1/chat/{ann}/rooms/lobby/carl"), (a, &ap), "join us").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let invitation = carl_sse.next().await;
    assert_eq!(invitation.event, "chatapi.muc");
    assert_eq!(invitation.data["type"], "invitationReceived");
    assert_eq!(
        (invitation.data["room"].clone(), invitation.data["reason"].clone()),
        (json!("lobby@conference.localhost"), json!("join us"))
    );
    assert_eq!(invitation.data["inviter"], "ann@localhost");
    assert_eq!(app.post_text(&format!("/restapi/v1/chat/{ann}/rooms/lobby/ghost"), (a, &ap), "").await.status, 404);
    let r = app.post_text(&format!("/restapi/v1/chat/{bob}/rooms/lobby/carl"), (b, &bp), "").await;
    assert_eq!(r.status, 200, "any occupant invites to a room that is not members-only: {}", r.text());
    assert_eq!(next_of(&mut carl_sse, "chatapi.muc", "invitationReceived").await.data["inviter"], "bob@localhost");

    // Leaving is announced; the websocket closing leaves too.
    assert_eq!(app.delete(&format!("/restapi/v1/chat/{ann}/rooms/lobby"), (a, &ap)).await.status, 200);
    let gone = next_ws_of(&mut bob_ws, "chatapi.presence", "unavailable").await;
    assert_eq!(gone["from"], "lobby@conference.localhost/ann");
    let own = next_of(&mut ann_sse, "chatapi.presence", "unavailable").await;
    assert_eq!(own.data["from"], "lobby@conference.localhost/ann", "the leaver hears it too");
    assert_eq!(app.delete(&format!("/restapi/v1/chat/{ann}/rooms/lobby"), (a, &ap)).await.status, 403);
    assert_eq!(app.join("ann", &ann, "lobby", "").await.status, 200);
    let (b, bp) = (b, bp);
    assert_eq!(app.post_text(&format!("/restapi/v1/chat/{bob}/logoff"), (b, &bp), "").await.status, 200);
    let gone = next_of(&mut ann_sse, "chatapi.presence", "unavailable").await;
    assert_eq!(gone.data["from"], "lobby@conference.localhost/Bobby");
}

#[actix_web::test]
async fn a_websocket_client_joins_posts_and_leaves_over_its_own_socket() {
    let app = spawn_app().await;
    for name in ["ann", "bob", "carl"] {
        app.create_user(name).await;
    }
    let mut ann = app.ws("ann", "").await;
    let mut bob = app.ws("bob", "").await;

    ann.send(json!({"op": "join", "room": "deck", "nick": "Annie", "id": "j1"})).await;
    let joined = ann.next_of_type("joined").await;
    assert_eq!(
        joined,
        json!({"type": "joined", "id": "j1", "room": "deck@conference.localhost", "nick": "Annie",
               "role": "moderator", "affiliation": "owner", "created": true})
    );
    bob.send(json!({"op": "join", "room": "deck", "id": 7})).await;
    let joined = bob.next_of_type("joined").await;
    assert_eq!(
        (joined["id"].clone(), joined["nick"].clone(), joined["created"].clone()),
        (json!(7), json!("bob"), json!(false))
    );
    assert_eq!(next_ws_of(&mut ann, "chatapi.presence", "available").await["nick"], "bob");

    // A groupchat is acknowledged once archived and reaches every occupant, the sender too
    // (its own copy may come before or after the ack).
    bob.send(json!({"op": "groupchat", "room": "deck", "body": "ahoy", "data": {"k": 1}, "id": "g1"})).await;
    let (mut ack, mut echo) = (None, None);
    while ack.is_none() || echo.is_none() {
        let frame = bob.next().await;
        match frame["type"].as_str() {
            Some("ack") => ack = Some(frame),
            Some("groupchat") => echo = Some(frame),
            _ => {} // bob's own join presence may still be on its way
        }
    }
    let (ack, echo) = (ack.unwrap(), echo.unwrap());
    assert_eq!(ack["id"], "g1");
    let msg_id = ack["msgId"].as_str().expect("msgId").to_owned();
    let live = next_ws_of(&mut ann, "chatapi.muc", "groupchat").await;
    for seen in [echo, live] {
        assert_eq!(
            (
                seen["type"].clone(),
                seen["body"].clone(),
                seen["from"].clone(),
                seen["data"].clone(),
                seen["id"].clone()
            ),
            (json!("groupchat"), json!("ahoy"), json!("deck@conference.localhost/bob"), json!({"k": 1}), json!(msg_id))
        );
    }

    // Refusals come back as error frames naming the command; the socket stays.
    let refusals = [
        (json!({"op": "join", "room": "Deck!", "id": "e1"}), 400),
        (json!({"op": "join", "room": "deck", "nick": "a/b", "id": "e3"}), 400),
        (json!({"op": "groupchat", "room": "nowhere", "body": "x", "id": "e4"}), 404),
        (json!({"op": "groupchat", "room": "deck", "body": "  ", "id": "e5"}), 400),
        (json!({"op": "leave", "room": "elsewhere", "id": "e6"}), 404),
    ];
    for (command, status) in refusals {
        let id = command["id"].clone();
        bob.send(command).await;
        let error = bob.next_of_type("error").await;
        assert_eq!((error["id"].clone(), error["code"].clone()), (id, json!(status)), "{error}");
    }

    let mut carl = app.ws("carl", "").await;
    carl.send(json!({"op": "join", "room": "deck", "nick": "Annie", "id": "e2"})).await;
    assert_eq!(carl.next_of_type("error").await["code"], 409, "the nick is taken");

    // Leaving: answered, announced, and posting afterwards is refused.
    bob.send(json!({"op": "leave", "room": "deck", "id": "l1"})).await;
    assert_eq!(bob.next_of_type("left").await, json!({"type": "left", "room": "deck", "id": "l1"}));
    assert_eq!(next_ws_of(&mut ann, "chatapi.presence", "unavailable").await["from"], "deck@conference.localhost/bob");
    bob.send(json!({"op": "groupchat", "room": "deck", "body": "still here?", "id": "g2"})).await;
    assert_eq!(bob.next_of_type("error").await["code"], 403);
}

#[actix_web::test]
async fn the_entry_and_speaking_rules_hold() {
    let app = spawn_app().await;
    for name in ["ann", "bob", "carl", "dave"] {
        app.create_user(name).await;
    }
    let streams: Vec<String> = {
        let mut v = Vec::new();
        for name in ["ann", "bob", "carl", "dave"] {
            v.push(app.login(name).await);
        }
        v
    };
    let (ann, bob, carl, dave) = (&streams[0], &streams[1], &streams[2], &streams[3]);

    let r = app
        .create_room(
            json!({"roomName": "club", "membersOnly": true, "members": ["bob@localhost"], "outcasts": ["carl"]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(app.join("carl", carl, "club", "").await.status, 403, "outcast");
    let r = app.join("dave", dave, "club", "").await;
    assert_eq!(r.status, 403, "not a member");
    assert!(r.message().contains("members-only"), "{}", r.text());
    assert_eq!(app.join("bob", bob, "club", "").await.status, 200, "a member");
    let (b, bp) = auth("bob");
    let r = app.post_text(&format!("/restapi/v1/chat/{bob}/rooms/club/dave"), (b, &bp), "").await;
    assert_eq!(r.status, 403, "a member may not invite to a members-only room unless it lets occupants: {}", r.text());

    app.create_room(json!({"roomName": "vault", "password": "sesame"})).await;
    assert_eq!(app.join("ann", ann, "vault", "").await.status, 403);
    assert_eq!(app.join("ann", ann, "vault", "?password=wrong").await.status, 403);
    assert_eq!(app.join("ann", ann, "vault", "?password=sesame").await.status, 200);

    app.create_room(json!({"roomName": "tiny", "maxUsers": 1})).await;
    assert_eq!(app.join("ann", ann, "tiny", "").await.status, 200);
    let r = app.join("bob", bob, "tiny", "").await;
    assert_eq!(r.status, 503, "{}", r.text());

    app.create_room(json!({"roomName": "stage", "moderated": true, "members": ["bob"]})).await;
    let r = app.join("dave", dave, "stage", "").await;
    assert_eq!(r.json()["role"], "visitor");
    let r = app.say("dave", dave, "stage", "may I?").await;
    assert_eq!(r.status, 403);
    assert!(r.message().contains("visitors"), "{}", r.text());
    assert_eq!(app.join("bob", bob, "stage", "").await.json()["role"], "participant");
    assert_eq!(app.say("bob", bob, "stage", "I may").await.status, 200);
    let participants = app.get("/restapi/v1/chatrooms/stage/participants", app.admin()).await.json();
    assert_eq!(participants["participants"].as_array().unwrap().len(), 1, "visitors have no voice");

    // A temporary room vanishes with its last occupant; a persistent one stays.
    assert_eq!(app.join("ann", ann, "popup", "").await.status, 201);
    let (a, ap) = auth("ann");
    assert_eq!(app.get("/restapi/v1/chat/rooms/popup", (a, &ap)).await.json()["persistent"], false);
    assert_eq!(app.delete(&format!("/restapi/v1/chat/{ann}/rooms/popup"), (a, &ap)).await.status, 200);
    assert_eq!(app.get("/restapi/v1/chat/rooms/popup", (a, &ap)).await.status, 404);
    assert_eq!(app.delete(&format!("/restapi/v1/chat/{ann}/rooms/vault"), (a, &ap)).await.status, 200);
    assert_eq!(app.get("/restapi/v1/chatrooms/vault", app.admin()).await.status, 200);
    // And the name can be taken again, by a new owner.
    assert_eq!(app.join("bob", bob, "popup", "").await.json()["affiliation"], "owner");

    // The directory hides members-only rooms from non-members.
    let (d, dp) = auth("dave");
    let names = |v: Value| -> Vec<String> {
        v["chatRooms"].as_array().unwrap().iter().map(|r| r["roomName"].as_str().unwrap().to_owned()).collect()
    };
    let seen = names(app.get("/restapi/v1/chat/rooms", (d, &dp)).await.json());
    assert!(!seen.contains(&"club".to_owned()), "{seen:?}");
    assert!(seen.contains(&"stage".to_owned()));
    assert_eq!(app.get("/restapi/v1/chat/rooms/club", (d, &dp)).await.status, 404);
    let (b, bp) = auth("bob");
    assert!(names(app.get("/restapi/v1/chat/rooms", (b, &bp)).await.json()).contains(&"club".to_owned()));
    assert_eq!(names(app.get("/restapi/v1/chat/rooms?search=VAU", (d, &dp)).await.json()), ["vault"]);
    assert_eq!(app.get("/restapi/v1/chat/rooms?type=secret", (d, &dp)).await.status, 400);
    let user_view = app.get("/restapi/v1/chat/rooms/vault", (d, &dp)).await.json();
    assert_eq!((user_view["passwordProtected"].clone(), user_view.get("password")), (json!(true), None));
}

#[actix_web::test]
async fn users_cannot_create_rooms_when_the_switch_is_off() {
    let app = spawn_app_with(|c| c.muc.users_can_create = false).await;
    app.create_user("ann").await;
    let ann = app.login("ann").await;
    let r = app.join("ann", &ann, "mine", "").await;
    assert_eq!(r.status, 404);
    assert!(r.message().contains("administrator"), "{}", r.text());
}

#[actix_web::test]
async fn the_admin_api_manages_rooms_and_affiliations() {
    let app = spawn_app().await;
    for name in ["ann", "bob"] {
        app.create_user(name).await;
    }
    let (a, ap) = auth("ann");
    assert_eq!(app.get("/restapi/v1/chatrooms", (a, &ap)).await.status, 403, "admin only");
    assert_eq!(app.post_json("/restapi/v1/chatrooms", (a, &ap), &json!({"roomName": "x"})).await.status, 403);

    let r = app.create_room(json!({"roomName": "team", "naturalName": "Team", "owners": ["ann"]})).await;
    assert_eq!(r.status, 201);
    let room = r.json();
    assert_eq!((room["persistent"].clone(), room["owners"].clone()), (json!(true), json!(["ann@localhost"])));
    assert_eq!(app.create_room(json!({"roomName": "team"})).await.status, 409);
    assert_eq!(app.create_room(json!({"roomName": "Team"})).await.status, 400);
    assert_eq!(app.create_room(json!({"naturalName": "no name"})).await.status, 400);
    assert_eq!(app.create_room(json!({"roomName": "odd", "maxUsers": "many"})).await.status, 400);

    let r = app
        .put_json("/restapi/v1/chatrooms/team", app.admin(), &json!({"naturalName": "The Team", "description": "us"}))
        .await;
    assert_eq!((r.status, r.json()["naturalName"].clone()), (200, json!("The Team")));
    assert_eq!(r.json()["owners"], json!(["ann@localhost"]), "lists not given are kept");
    assert_eq!(app.put_json("/restapi/v1/chatrooms/ghost", app.admin(), &json!({})).await.status, 404);
    app.create_room(json!({"roomName": "hidden", "publicRoom": false, "password": "pw"})).await;
    let all = app.get("/restapi/v1/chatrooms?type=all", app.admin()).await.json();
    assert_eq!(all["chatRooms"].as_array().unwrap().len(), 2, "the admin sees hidden rooms");
    assert_eq!(all["chatRooms"][0]["password"], "pw", "and their passwords");
    let public = app.get("/restapi/v1/chatrooms?type=public&search=team", app.admin()).await.json();
    assert_eq!(public["chatRooms"][0]["roomName"], "team");
    assert_eq!(public["chatRooms"].as_array().unwrap().len(), 1);

    // Affiliation lists.
    assert_eq!(app.post_text("/restapi/v1/chatrooms/team/members/bob", app.admin(), "").await.status, 201);
    let members = app.get("/restapi/v1/chatrooms/team/members", app.admin()).await.json();
    assert_eq!(members, json!({"members": ["bob@localhost"]}));
    assert_eq!(app.get("/restapi/v1/chatrooms/team/bosses", app.admin()).await.status, 404);
    assert_eq!(app.post_text("/restapi/v1/chatrooms/team/members/ghost", app.admin(), "").await.status, 404);
    let r = app.put_json("/restapi/v1/chatrooms/team/admins", app.admin(), &json!({"admins": ["bob@localhost"]})).await;
    assert_eq!(r.status, 200);
    assert_eq!(app.get("/restapi/v1/chatrooms/team/members", app.admin()).await.json(), json!({"members": []}));
    assert_eq!(app.delete("/restapi/v1/chatrooms/team/members/bob", app.admin()).await.status, 404);

    // Banning an occupant removes it with a reason; inviting and chat history.
    let bob = app.login("bob").await;
    let mut bob_sse = app.sse("bob", &format!("?stream={bob}")).await;
    assert_eq!(app.join("bob", &bob, "team", "").await.json()["role"], "moderator");
    let r = app
        .post_json(
            "/restapi/v1/chatrooms/team/invite",
            app.admin(),
            &json!({"reason": "meeting", "jidsToInvite": ["bob"]}),
        )
        .await;
    assert_eq!((r.status, r.json()["invited"].clone()), (200, json!(1)));
    assert_eq!(next_of(&mut bob_sse, "chatapi.muc", "invitationReceived").await.data["reason"], "meeting");
    assert_eq!(app.say("bob", &bob, "team", "minutes").await.status, 200);
    let history = app.get("/restapi/v1/chatrooms/team/chathistory", app.admin()).await.json();
    assert_eq!(history["messages"][0]["body"], "minutes");
    let occupants = app.get("/restapi/v1/chatrooms/team/occupants", app.admin()).await.json();
    assert_eq!(occupants["occupants"][0]["userAddress"], "bob@localhost");
    assert_eq!(app.delete("/restapi/v1/chatrooms/team/admins/bob", app.admin()).await.status, 200);
    assert_eq!(app.post_text("/restapi/v1/chatrooms/team/outcasts/bob", app.admin(), "").await.status, 201);
    let banned = next_of(&mut bob_sse, "chatapi.presence", "unavailable").await;
    assert_eq!(banned.data["reason"], "banned from the room");
    assert_eq!(app.say("bob", &bob, "team", "still here?").await.status, 403);

    // Deleting a room ends it for its occupants, with a reason.
    let ann = app.login("ann").await;
    let mut ann_sse = app.sse("ann", &format!("?stream={ann}")).await;
    assert_eq!(app.join("ann", &ann, "team", "").await.status, 200);
    assert_eq!(app.delete("/restapi/v1/chatrooms/team", app.admin()).await.status, 200);
    let ended = next_of(&mut ann_sse, "chatapi.muc", "destroyed").await;
    assert!(ended.data["reason"].as_str().unwrap().contains("destroyed"));
    assert_eq!(app.get("/restapi/v1/chatrooms/team", app.admin()).await.status, 404);
    assert_eq!(app.delete("/restapi/v1/chatrooms/team", app.admin()).await.status, 404);
    ann_sse.assert_quiet(QUIET).await;
}

#[actix_web::test]
async fn a_room_survives_a_restart_with_its_config_affiliations_and_history() {
    let app = spawn_app().await;
    for name in ["ann", "bob"] {
        app.create_user(name).await;
    }
    let r = app
        .create_room(
            json!({"roomName": "keep", "membersOnly": true, "members": ["ann"], "admins": ["bob"], "subject": "kept"}),
        )
        .await;
    assert_eq!(r.status, 201);
    let ann = app.login("ann").await;
    assert_eq!(app.join("ann", &ann, "keep", "").await.status, 200);
    assert_eq!(app.say("ann", &ann, "keep", "before the restart").await.status, 200);
    let (dir, config) = app.stop().await;

    let app = start(dir, config).await;
    let room = app.get("/restapi/v1/chatrooms/keep", app.admin()).await.json();
    assert_eq!((room["membersOnly"].clone(), room["subject"].clone()), (json!(true), json!("kept")));
    assert_eq!((room["members"].clone(), room["admins"].clone()), (json!(["ann@localhost"]), json!(["bob@localhost"])));
    let bob = app.login("bob").await;
    let mut bob_ws = app.ws("bob", &format!("?stream={bob}")).await;
    assert_eq!(app.join("bob", &bob, "keep", "").await.json()["role"], "moderator");
    let history = next_ws_of(&mut bob_ws, "chatapi.muc", "groupchat").await;
    assert_eq!((history["body"].clone(), history["delay"].is_string()), (json!("before the restart"), true));
}

#[actix_web::test]
async fn rooms_are_created_from_the_rest_api_plugins_entity_nulls_and_wrapped_lists_included() {
    let app = spawn_app().await;
    for name in ["ann", "bob"] {
        app.create_user(name).await;
    }
    let entity = json!({
        "roomName": "plugin", "naturalName": "Plugin room", "description": "made as the plugin sends it",
        "owners": null, "admins": {"admin": ["ann@localhost"]}, "members": ["bob@localhost"], "outcasts": null,
        "maxUsers": null, "password": null, "broadcastPresenceRoles": ["moderator", "participant"],
        "ownerGroups": null, "persistent": null
    });
    let r = app.post_json("/plugins/restapi/v1/chatrooms", app.admin(), &entity).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let room = app.get("/plugins/restapi/v1/chatrooms/plugin", app.admin()).await.json();
    assert_eq!(room["admins"], json!(["ann@localhost"]), "{room}");
    assert_eq!(room["members"], json!(["bob@localhost"]));
    assert_eq!(room["naturalName"], "Plugin room");
    let wrapped = json!({"roomName": "single", "owners": {"owner": "ann@localhost"}});
    assert_eq!(app.post_json("/restapi/v1/chatrooms", app.admin(), &wrapped).await.status, 201);
    let room = app.get("/restapi/v1/chatrooms/single", app.admin()).await.json();
    assert_eq!(room["owners"], json!(["ann@localhost"]));
    let bad = json!({"roomName": "bad", "owners": {"owner": 7}});
    assert_eq!(app.post_json("/restapi/v1/chatrooms", app.admin(), &bad).await.status, 400);
}

#[actix_web::test]
async fn joining_again_with_another_nick_changes_it_and_everyone_hears_so() {
    let app = spawn_app().await;
    for name in ["ann", "bob", "cy"] {
        app.create_user(name).await;
    }
    let (ann, bob) = (app.login("ann").await, app.login("bob").await);
    assert!(app.join("ann", &ann, "lobby", "").await.status < 300);
    assert!(app.join("bob", &bob, "lobby", "").await.status < 300);
    let mut bob_sse = app.sse("bob", &format!("?stream={bob}")).await;
    // Cy is on XMPP, its own station.
    let mut xmpp = crate::xmpp::Xmpp::login(&app, "cy", "pw-cy").await;
    xmpp.send("<presence xmlns='jabber:client' to='lobby@conference.localhost/cy'><x xmlns='http://jabber.org/protocol/muc'/></presence>").await;
    xmpp.next_where("its own presence", |e| {
        e.name == "presence" && e.get_attr("from") == Some("lobby@conference.localhost/cy")
    })
    .await;

    let r = app.join("ann", &ann, "lobby", "?nick=bob").await;
    assert_eq!(r.status, 409, "a nick another occupant holds: {}", r.text());
    let r = app.join("ann", &ann, "lobby", "?nick=annie").await;
    assert!(r.status < 300, "{}", r.text());
    assert_eq!(r.json()["nick"], "annie");
    let left = next_of(&mut bob_sse, "chatapi.presence", "unavailable").await;
    assert_eq!(
        (left.data["from"].as_str(), left.data["newNick"].as_str()),
        (Some("lobby@conference.localhost/ann"), Some("annie"))
    );
    let arrived = next_of(&mut bob_sse, "chatapi.presence", "available").await;
    assert_eq!(arrived.data["from"], "lobby@conference.localhost/annie");
    let changed = xmpp
        .next_where("the nick change", |e| e.name == "presence" && e.get_attr("type") == Some("unavailable"))
        .await
        .to_xml();
    assert!(changed.contains("code=\"303\"") && changed.contains("nick=\"annie\""), "{changed}");
    // The new nick is the occupant's from now on.
    assert_eq!(app.say("ann", &ann, "lobby", "renamed").await.status, 200);
    loop {
        let e = next_of(&mut bob_sse, "chatapi.muc", "groupchat").await;
        if e.data["body"] == "renamed" {
            assert_eq!(e.data["from"], "lobby@conference.localhost/annie");
            break;
        }
    }
    let occupants = app.get("/restapi/v1/chatrooms/lobby/occupants", app.admin()).await.json();
    let nicks: Vec<&str> =
        occupants["occupants"].as_array().unwrap().iter().map(|o| o["nick"].as_str().unwrap_or_default()).collect();
    assert!(nicks.contains(&"annie") && !nicks.contains(&"ann"), "{occupants}");
}

#[actix_web::test]
async fn the_admin_invites_one_user_by_path_as_the_plugin_does() {
    let app = spawn_app().await;
    app.create_user("ann").await;
    assert_eq!(app.create_room(json!({"roomName": "hall"})).await.status, 201);
    let ann = app.login("ann").await;
    let mut ann_sse = app.sse("ann", &format!("?stream={ann}")).await;
    let r = app
        .post_json("/plugins/restapi/v1/chatrooms/hall/invite/ann@localhost", app.admin(), &json!({"reason": null}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["invited"], 1);
    let invitation = next_of(&mut ann_sse, "chatapi.muc", "invitationReceived").await;
    assert_eq!(invitation.data["room"], "hall@conference.localhost");
    let r = reply(
        app.client
            .post(app.url("/restapi/v1/chatrooms/hall/invite/ann"))
            .basic_auth("admin", &app.admin_password)
            .send()
            .await,
    )
    .await;
    assert_eq!(r.status, 200, "no body at all: {}", r.text());
    assert_eq!(app.post_json("/restapi/v1/chatrooms/hall/invite/ghost", app.admin(), &json!({})).await.status, 404);
    assert_eq!(app.post_json("/restapi/v1/chatrooms/nowhere/invite/ann", app.admin(), &json!({})).await.status, 404);
}

#[actix_web::test]
async fn the_full_room_entity_with_group_affiliations_round_trips_and_its_rules_hold() {
    let app = spawn_app().await;
    for name in ["ann", "bob", "eve", "zed"] {
        app.create_user(name).await;
    }
    for (group, members) in [("staff", json!(["bob"])), ("banned", json!(["eve"]))] {
        let r =
            app.post_json("/plugins/restapi/v1/groups", app.admin(), &json!({"name": group, "members": members})).await;
        assert_eq!(r.status, 201, "{}", r.text());
    }
    // The plugin's entity as its clients send it, every field present, nulls included.
    let entity = json!({
        "roomName": "ops", "naturalName": "Ops", "description": "d", "password": null, "subject": "Status",
        "creationDate": null, "modificationDate": null, "maxUsers": 0, "persistent": true, "publicRoom": false,
        "registrationEnabled": false, "canAnyoneDiscoverJID": false, "canOccupantsChangeSubject": true,
        "canOccupantsInvite": false, "canChangeNickname": false, "logEnabled": false,
        "loginRestrictedToNickname": true, "membersOnly": true, "moderated": false, "allowPM": "moderators",
        "broadcastPresenceRoles": {"broadcastPresenceRole": ["moderator", "participant"]},
        "owners": ["ann"], "ownerGroups": null, "admins": null, "adminGroups": [], "members": null,
        "memberGroups": ["staff"], "outcasts": null, "outcastGroups": {"outcastGroup": ["banned"]},
    });
    let r = app.post_json("/plugins/restapi/v1/chatrooms", app.admin(), &entity).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let room = app.get("/plugins/restapi/v1/chatrooms/ops", app.admin()).await.json();
    for (key, want) in [
        ("registrationEnabled", json!(false)),
        ("canOccupantsChangeSubject", json!(true)),
        ("canChangeNickname", json!(false)),
        ("loginRestrictedToNickname", json!(true)),
        ("logEnabled", json!(false)),
        ("allowPM", json!("moderators")),
        ("broadcastPresenceRoles", json!(["moderator", "participant"])),
        ("subject", json!("Status")),
        ("memberGroups", json!(["staff"])),
        ("outcastGroups", json!(["banned"])),
        ("ownerGroups", json!([])),
        ("owners", json!(["ann@localhost"])),
    ] {
        assert_eq!(room[key], want, "{key}: {room}");
    }
    assert!(room["creationDate"].is_string() && room["modificationDate"].is_string(), "{room}");

    // Bob is a member through his group; Eve is an outcast through hers; Zed is neither.
    let bob = app.login("bob").await;
    let r = app.join("bob", &bob, "ops", "?nick=bob").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["affiliation"], "member");
    let eve = app.login("eve").await;
    let r = app.join("eve", &eve, "ops", "?nick=eve").await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.message().contains("banned"), "{}", r.text());
    let zed = app.login("zed").await;
    assert_eq!(app.join("zed", &zed, "ops", "?nick=zed").await.status, 403, "members-only");
    // Entry with another nick than one's user name, and nick changes, are refused here.
    let ann = app.login("ann").await;
    let r = app.join("ann", &ann, "ops", "?nick=boss").await;
    assert_eq!((r.status, r.json()["exception"].clone()), (403, json!("NotAllowedException")), "{}", r.text());
    assert_eq!(app.join("ann", &ann, "ops", "?nick=ann").await.status, 200);

    // Without a log, posts reach the occupants but no archive.
    let mut bob_sse = app.sse("bob", &format!("?stream={bob}")).await;
    let r = app.say("ann", &ann, "ops", "not for the record").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.json()["id"].as_str().unwrap().starts_with('-'), "an id outside the archive: {}", r.text());
    let heard = next_of(&mut bob_sse, "chatapi.muc", "groupchat").await;
    assert_eq!(heard.data["body"], "not for the record");
    let history = app.get("/restapi/v1/chatrooms/ops/chathistory", app.admin()).await.json();
    assert_eq!(history["messages"], json!([]), "{history}");
    // With the log on again, they are archived.
    let mut logged = room.clone();
    logged["logEnabled"] = json!(true);
    assert_eq!(app.put_json("/restapi/v1/chatrooms/ops", app.admin(), &logged).await.status, 200);
    app.say("ann", &ann, "ops", "on the record").await;
    let history = app.get("/restapi/v1/chatrooms/ops/chathistory", app.admin()).await.json();
    assert_eq!(history["messages"][0]["body"], "on the record", "{history}");

    // Out of the group, out of the members-only room; a deleted group's affiliation goes.
    assert_eq!(app.delete("/plugins/restapi/v1/users/bob/groups/staff", app.admin()).await.status, 200);
    let removed = bob_sse.next_presence("unavailable", "ops@conference.localhost/bob").await;
    assert!(removed.data.to_string().contains("members-only"), "{:?}", removed.data);
    assert_eq!(app.delete("/plugins/restapi/v1/groups/banned", app.admin()).await.status, 200);
    let room = app.get("/restapi/v1/chatrooms/ops", app.admin()).await.json();
    assert_eq!(room["outcastGroups"], json!([]), "{room}");
    let banned = json!({"name": "banned", "members": ["eve"]});
    assert_eq!(app.post_json("/restapi/v1/groups", app.admin(), &banned).await.status, 201);
    assert_eq!(app.post_json("/restapi/v1/users/bob/groups/staff", app.admin(), &json!({})).await.status, 201);

    // Group affiliations by path, as the plugin has them.
    let r = app.post_json("/plugins/restapi/v1/chatrooms/ops/admins/group/staff", app.admin(), &json!({})).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let room = app.get("/restapi/v1/chatrooms/ops", app.admin()).await.json();
    assert_eq!((room["adminGroups"].clone(), room["memberGroups"].clone()), (json!(["staff"]), json!([])));
    assert_eq!(app.delete("/plugins/restapi/v1/chatrooms/ops/admins/group/staff", app.admin()).await.status, 200);
    assert_eq!(app.delete("/plugins/restapi/v1/chatrooms/ops/admins/group/staff", app.admin()).await.status, 404);
    let r = app.post_json("/restapi/v1/chatrooms/ops/members/group/nope", app.admin(), &json!({})).await;
    assert_eq!((r.status, r.json()["exception"].clone()), (404, json!("GroupNotFoundException")));
    let mut bad = entity.clone();
    bad["roomName"] = json!("ops2");
    bad["memberGroups"] = json!(["nope"]);
    assert_eq!(app.create_room(bad).await.status, 404);
    for (field, value) in [("allowPM", json!("everyone")), ("broadcastPresenceRoles", json!(["king"]))] {
        let mut bad = entity.clone();
        bad["roomName"] = json!("ops3");
        bad[field] = value;
        let r = app.create_room(bad).await;
        assert_eq!(r.status, 400, "{field}: {}", r.text());
    }
}

#[actix_web::test]
async fn chat_services_servicename_and_bulk_rooms_as_the_plugin_has_them() {
    let app = spawn_app().await;
    let services = app.get("/plugins/restapi/v1/chatservices", app.admin()).await;
    assert_eq!(services.status, 200);
    assert_eq!(services.json()["chatServices"][0]["serviceName"], "conference");
    let r = app.post_json("/restapi/v1/chatservices", app.admin(), &json!({"serviceName": "conference"})).await;
    assert_eq!(r.status, 409);
    for bad in ["Games", "-x", "workgroup", ""] {
        let r = app.post_json("/restapi/v1/chatservices", app.admin(), &json!({"serviceName": bad})).await;
        assert_eq!(r.status, 400, "{bad:?}: {}", r.text());
    }
    assert_eq!(app.get("/restapi/v1/chatservices", ("x", "y")).await.status, 401);

    // Bulk creation: each room succeeds or fails on its own.
    let rooms = json!({"chatRooms": [
        {"roomName": "alpha", "naturalName": "A"},
        {"roomName": "beta", "owners": null},
        {"roomName": "Bad Name"},
    ]});
    let r = app.post_json("/plugins/restapi/v1/chatrooms/bulk?servicename=conference", app.admin(), &rooms).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let names = |list: &Value| list.as_array().unwrap().iter().map(|e| e["roomName"].clone()).collect::<Vec<_>>();
    assert_eq!(names(&r.json()["success"]), [json!("alpha"), json!("beta")]);
    assert_eq!(names(&r.json()["failure"]), [json!("Bad Name")]);
    assert_eq!(r.json()["failure"][0]["resultType"], "Failure");
    let again =
        app.post_json("/restapi/v1/chatrooms/bulk", app.admin(), &json!({"chatRooms": [{"roomName": "alpha"}]})).await;
    assert!(again.json()["failure"][0]["message"].as_str().unwrap().contains("already exists"), "{}", again.text());

    let update = json!({"chatRooms": [{"roomName": "alpha", "description": "first"}, {"roomName": "ghost"}]});
    let r = app.put_json("/plugins/restapi/v1/chatrooms/bulk", app.admin(), &update).await;
    assert_eq!(
        (names(&r.json()["success"]), names(&r.json()["failure"])),
        (vec![json!("alpha")], vec![json!("ghost")])
    );
    assert_eq!(app.get("/restapi/v1/chatrooms/alpha", app.admin()).await.json()["description"], "first");

    // `servicename` names this server's service, or nothing is found.
    assert_eq!(app.get("/plugins/restapi/v1/chatrooms/alpha?servicename=conference", app.admin()).await.status, 200);
    let r = app.get("/plugins/restapi/v1/chatrooms?servicename=games", app.admin()).await;
    assert_eq!((r.status, r.json()["exception"].clone()), (404, json!("MUCServiceNotFoundException")));
    let r = app.get("/plugins/restapi/v1/chatrooms/alpha?servicename=games", app.admin()).await;
    assert_eq!(r.status, 404);
    let r =
        app.post_json("/plugins/restapi/v1/chatrooms?servicename=games", app.admin(), &json!({"roomName": "x"})).await;
    assert_eq!((r.status, r.json()["exception"].clone()), (404, json!("MUCServiceNotFoundException")));

    let delete = reply(
        app.client
            .delete(app.url("/plugins/restapi/v1/chatrooms/bulk"))
            .basic_auth("admin", app.admin().1)
            .send_json(&json!({"chatRooms": [{"roomName": "alpha"}, {"roomName": "ghost"}]}))
            .await,
    )
    .await;
    assert_eq!(delete.status, 200, "{}", delete.text());
    assert_eq!(
        (names(&delete.json()["success"]), names(&delete.json()["failure"])),
        (vec![json!("alpha")], vec![json!("ghost")])
    );
    assert_eq!(app.get("/restapi/v1/chatrooms/alpha", app.admin()).await.status, 404);
    assert_eq!(app.get("/restapi/v1/chatrooms/beta", app.admin()).await.status, 200);
    let r = app.post_json("/restapi/v1/chatrooms/bulk", app.admin(), &json!({"chatRooms": []})).await;
    assert_eq!(r.status, 400);
    assert_eq!(app.post_json("/restapi/v1/chatrooms/bulk", ("x", "y"), &json!({"chatRooms": []})).await.status, 401);
}

#[actix_web::test]
async fn a_second_chat_service_holds_its_own_rooms_on_every_door_and_across_a_restart() {
    let app = spawn_app().await;
    for name in ["ann", "bob"] {
        app.create_user(name).await;
    }
    let new = json!({"serviceName": "games", "description": "Game rooms", "hidden": false});
    let r = app.post_json("/plugins/restapi/v1/chatservices", app.admin(), &new).await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(app.post_json("/plugins/restapi/v1/chatservices", app.admin(), &new).await.status, 409);
    let services = app.get("/plugins/restapi/v1/chatservices", app.admin()).await.json();
    let names: Vec<_> = services["chatServices"].as_array().unwrap().iter().map(|s| s["serviceName"].clone()).collect();
    assert_eq!(names, [json!("conference"), json!("games")]);

    // Two rooms named "lobby", one per service.
    let r = app
        .post_json(
            "/plugins/restapi/v1/chatrooms?servicename=games",
            app.admin(),
            &json!({"roomName": "lobby", "naturalName": "Game lobby"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        (r.json()["roomName"].clone(), r.json()["jid"].clone()),
        (json!("lobby"), json!("lobby@games.localhost"))
    );
    assert_eq!(app.create_room(json!({"roomName": "lobby", "naturalName": "Main lobby"})).await.status, 201);
    let games = app.get("/plugins/restapi/v1/chatrooms?servicename=games&type=all", app.admin()).await.json();
    assert_eq!(games["chatRooms"].as_array().unwrap().len(), 1, "{games}");
    assert_eq!(games["chatRooms"][0]["naturalName"], "Game lobby");
    let main = app.get("/plugins/restapi/v1/chatrooms/lobby", app.admin()).await.json();
    assert_eq!(main["naturalName"], "Main lobby");
    let game = app.get("/plugins/restapi/v1/chatrooms/lobby?servicename=games", app.admin()).await.json();
    assert_eq!(game["naturalName"], "Game lobby");

    // An SSE user joins by the room's address; an XMPP user by presence to it.
    let ann = app.login("ann").await;
    let mut ann_sse = app.sse("ann", &format!("?stream={ann}")).await;
    let r = app.join("ann", &ann, "lobby@games.localhost", "").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["room"], "lobby@games.localhost");
    let mut bob = crate::xmpp::Xmpp::login(&app, "bob", "pw-bob").await;
    bob.send("<presence xmlns='jabber:client' to='lobby@games.localhost/bob'><x xmlns='http://jabber.org/protocol/muc'/></presence>").await;
    bob.next_where("own presence", |e| e.name == "presence" && e.get_attr("from") == Some("lobby@games.localhost/bob"))
        .await;
    ann_sse.next_presence("available", "lobby@games.localhost/bob").await;
    bob.send("<message xmlns='jabber:client' to='lobby@games.localhost' type='groupchat'><body>gg</body></message>")
        .await;
    let heard = next_of(&mut ann_sse, "chatapi.muc", "groupchat").await;
    assert_eq!(
        (heard.data["from"].clone(), heard.data["body"].clone()),
        (json!("lobby@games.localhost/bob"), json!("gg"))
    );
    let occupants =
        app.get("/plugins/restapi/v1/chatrooms/lobby/occupants?servicename=games", app.admin()).await.json();
    assert_eq!(occupants["occupants"].as_array().unwrap().len(), 2, "{occupants}");
    let main_occupants = app.get("/plugins/restapi/v1/chatrooms/lobby/occupants", app.admin()).await.json();
    assert_eq!(main_occupants["occupants"], json!([]), "the other lobby is empty");
    // Disco lists the service.
    bob.send(
        "<iq xmlns='jabber:client' type='get' id='d1'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>",
    )
    .await;
    let items = bob.next_where("disco items", |e| e.get_attr("id") == Some("d1")).await;
    assert!(items.to_xml().contains("games.localhost"), "{}", items.to_xml());
    let history =
        app.get("/plugins/restapi/v1/chatrooms/lobby/chathistory?servicename=games", app.admin()).await.json();
    assert_eq!(history["messages"][0]["from"], "lobby@games.localhost/bob", "{history}");
    // A room on an unknown service is refused.
    let r = app.join("ann", &ann, "lobby@nowhere.localhost", "").await;
    assert_eq!(r.status, 404, "{}", r.text());

    // The service and its rooms survive a restart.
    let (dir, config) = app.stop().await;
    let app = start(dir, config).await;
    let game = app.get("/restapi/v1/chatrooms/lobby?servicename=games", app.admin()).await;
    assert_eq!(game.status, 200, "{}", game.text());
    assert_eq!(game.json()["jid"], "lobby@games.localhost");
    let r = app.delete("/restapi/v1/chatrooms/lobby?servicename=games", app.admin()).await;
    assert_eq!(r.status, 200);
    assert_eq!(app.get("/restapi/v1/chatrooms/lobby", app.admin()).await.status, 200, "the other lobby stays");
}
