//! Chat states, user properties and user search.

use std::time::Duration;

use serde_json::json;

use crate::helpers::*;

#[actix_web::test]
async fn chat_states_reach_live_stations_only_and_are_never_stored() {
    let app = spawn_app().await;
    app.create_user("ann").await;
    app.create_user("bob").await;
    let ann = app.login("ann").await;
    let pw = ("ann", "pw-ann");
    // bob offline: accepted, but nothing waits for him.
    let r = app.post_text(&format!("/restapi/v1/chat/{ann}/chatstate/composing/bob"), pw, "").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let mut bob = app.sse("bob", "").await;
    bob.assert_quiet(Duration::from_millis(300)).await;

    let mut bob_ws = app.ws("bob", "").await;
    assert_eq!(app.post_text(&format!("/restapi/v1/chat/{ann}/chatstate/paused/bob"), pw, "").await.status, 200);
    let e = bob.next().await;
    assert_eq!(e.event, "chatapi.chat");
    assert_eq!(e.data["state"], "paused");
    assert_eq!(e.data["type"], "chat");
    assert!(e.data["from"].as_str().unwrap().starts_with("ann@localhost/"));
    assert!(e.data.get("body").is_none());
    assert!(e.id.is_none(), "not a stored message: no SSE id line");
    assert_eq!(bob_ws.next().await["state"], "paused");

    // Over the websocket too.
    let mut ann_ws = app.ws("ann", &format!("?stream={ann}")).await;
    ann_ws.send(json!({"op": "chatstate", "to": "bob", "state": "active"})).await;
    assert_eq!(bob.next().await.data["state"], "active");
    ann_ws.send(json!({"op": "chatstate", "to": "bob", "state": "dancing", "id": 9})).await;
    let err = ann_ws.next_of_type("error").await;
    assert_eq!((err["code"].clone(), err["id"].clone()), (json!(400), json!(9)));

    let r = app.post_text(&format!("/restapi/v1/chat/{ann}/chatstate/dancing/bob"), pw, "").await;
    assert_eq!(r.status, 400);
    assert!(r.message().contains("composing"), "names the allowed states: {}", r.text());
    assert_eq!(app.post_text(&format!("/restapi/v1/chat/{ann}/chatstate/paused/ghost"), pw, "").await.status, 404);
    assert_eq!(
        app.post_text(&format!("/restapi/v1/chat/{ann}/chatstate/paused/bob"), ("bob", "pw-bob"), "").await.status,
        403
    );
    let history = app.get("/restapi/v1/chat/bob/messages", ("bob", "pw-bob")).await.json();
    assert_eq!(history["messages"], json!([]), "chat states are not archived");
}

#[actix_web::test]
async fn users_set_and_remove_only_their_own_properties() {
    let app = spawn_app_with(|c| c.limits.max_property_chars = 10).await;
    app.create_user("ann").await;
    app.create_user("bob").await;
    let ann = app.login("ann").await;
    let pw = ("ann", "pw-ann");
    assert_eq!(app.post_text(&format!("/restapi/v1/chat/{ann}/users/colour"), pw, "teal").await.status, 200);
    assert_eq!(app.post_text(&format!("/restapi/v1/chat/{ann}/users/colour"), pw, "navy").await.status, 200);
    let user = app.get("/restapi/v1/users/ann", app.admin()).await.json();
    assert_eq!(user["properties"], json!([{"key": "colour", "value": "navy"}]));
    assert_eq!(app.post_text(&format!("/restapi/v1/chat/{ann}/users/colour"), pw, &"x".repeat(11)).await.status, 413);
    assert_eq!(
        app.post_text(&format!("/restapi/v1/chat/{ann}/users/colour"), ("bob", "pw-bob"), "red").await.status,
        403,
        "bob cannot use ann's stream"
    );
    assert_eq!(app.delete(&format!("/restapi/v1/chat/{ann}/users/colour"), pw).await.status, 200);
    assert_eq!(app.delete(&format!("/restapi/v1/chat/{ann}/users/colour"), pw).await.status, 404);
    let user = app.get("/restapi/v1/users/ann", app.admin()).await.json();
    assert_eq!(user["properties"], json!([]));
}

#[actix_web::test]
async fn any_user_can_search_for_others_by_name_or_email() {
    let app = spawn_app_with(|c| c.limits.max_search_results = 2).await;
    for name in ["alice", "alina", "albert", "bob"] {
        app.create_user(name).await;
    }
    let me = ("bob", "pw-bob");
    let r = app.get("/restapi/v1/chat/users?search=ALI", me).await;
    assert_eq!(r.status, 200);
    let users = r.json()["users"].as_array().unwrap().clone();
    assert_eq!(users.len(), 2);
    assert_eq!(users[0], json!({"username": "alice", "name": "ALICE", "email": "alice@example.org"}));
    let r = app.get("/restapi/v1/chat/users?search=albert@example", me).await;
    assert_eq!(r.json()["users"][0]["username"], "albert");
    assert_eq!(app.get("/restapi/v1/chat/users?search=zzz", me).await.json()["users"], json!([]));
    assert_eq!(app.get("/restapi/v1/chat/users?search=", me).await.status, 400);
    assert_eq!(reply(app.client.get(app.url("/restapi/v1/chat/users?search=al")).send().await).await.status, 401);
}
