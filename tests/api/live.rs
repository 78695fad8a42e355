//! The live doors' own rules: who may open what, tokens, limits, heartbeats.

use std::time::Duration;

use serde_json::json;

use crate::helpers::*;

async fn status_of_ws(app: &TestApp, request: awc::ws::WebsocketsRequest) -> u16 {
    let _ = app;
    match request.connect().await {
        Ok((response, _)) => response.status().as_u16(),
        Err(awc::error::WsClientError::InvalidResponseStatus(status)) => status.as_u16(),
        Err(e) => panic!("unexpected websocket error: {e}"),
    }
}

#[actix_web::test]
async fn sse_is_only_for_its_own_user() {
    let app = spawn_app().await;
    app.create_user("ann").await;
    app.create_user("eve").await;
    let stream = app.login("ann").await;
    let open = |user: &str, pw: &str, path: &str, accept: &str| {
        app.client.get(app.url(path)).basic_auth(user, pw).insert_header(("accept", accept.to_owned())).send()
    };
    assert_eq!(reply(open("eve", "pw-eve", "/sse/ann", "text/event-stream").await).await.status, 403);
    assert_eq!(reply(open("ann", "wrong", "/sse/ann", "text/event-stream").await).await.status, 401);
    assert_eq!(reply(app.client.get(app.url("/sse/ann")).send().await).await.status, 401);
    assert_eq!(reply(open("ann", "pw-ann", "/sse/ann", "application/json").await).await.status, 406);
    let r = reply(open("ann", "pw-ann", "/sse/ann?stream=nope", "text/event-stream").await).await;
    assert_eq!(r.status, 404);
    let r = reply(open("eve", "pw-eve", &format!("/sse/eve?stream={stream}"), "text/event-stream").await).await;
    assert_eq!(r.status, 403, "another user's stream");
}

#[actix_web::test]
async fn websocket_needs_credentials_and_accepts_tokens() {
    let app = spawn_app().await;
    app.create_user("ann").await;
    app.create_user("eve").await;
    let stream = app.login("ann").await;
    assert_eq!(status_of_ws(&app, app.client.ws(app.ws_url("/ws"))).await, 401);
    assert_eq!(status_of_ws(&app, app.client.ws(app.ws_url("/ws")).basic_auth("ann", Some("bad"))).await, 401);
    assert_eq!(status_of_ws(&app, app.client.ws(app.ws_url("/ws?token=forged.token.here"))).await, 401);
    let r = app.client.ws(app.ws_url(&format!("/ws?stream={stream}"))).basic_auth("eve", Some("pw-eve"));
    assert_eq!(status_of_ws(&app, r).await, 403);

    let token = reply(
        app.client
            .post(app.url("/restapi/v1/auth/token"))
            .send_json(&json!({"username": "ann", "password": "pw-ann"}))
            .await,
    )
    .await
    .json()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (response, framed) = app
        .client
        .ws(app.ws_url(&format!("/ws?token={token}&stream={stream}")))
        .connect()
        .await
        .expect("token upgrade");
    assert_eq!(response.status().as_u16(), 101);
    let mut ws = Ws { framed };
    ws.send(json!({"op": "ping"})).await;
    assert_eq!(ws.next().await["type"], "pong");
    // The token's connection is a live end of ann's stream.
    app.create_user("bob").await;
    let bob = app.login("bob").await;
    assert_eq!(app.send("bob", &bob, "ann", "via token").await.status, 200);
    assert_eq!(ws.next().await["body"], "via token");
}

#[actix_web::test]
async fn connections_per_user_are_limited() {
    let app = spawn_app_with(|c| c.limits.max_connections_per_user = 2).await;
    app.create_user("ann").await;
    let _one = app.sse("ann", "").await;
    let _two = app.ws("ann", "").await;
    let r = reply(
        app.client
            .get(app.url("/sse/ann"))
            .basic_auth("ann", "pw-ann")
            .insert_header(("accept", "text/event-stream"))
            .send()
            .await,
    )
    .await;
    assert_eq!(r.status, 429, "{}", r.text());
    let ws = app.client.ws(app.ws_url("/ws")).basic_auth("ann", Some("pw-ann"));
    assert_eq!(status_of_ws(&app, ws).await, 429);
}

#[actix_web::test]
async fn idle_sse_connections_get_heartbeats() {
    let app = spawn_app_with(|c| c.sse.heartbeat_secs = 0.2).await;
    app.create_user("ann").await;
    let mut sse = app.sse("ann", "").await;
    sse.assert_quiet(Duration::from_millis(700)).await;
    assert!(sse.comments.iter().filter(|c| c.is_empty()).count() >= 2, "heartbeats: {:?}", sse.comments);
}

#[actix_web::test]
async fn unknown_paths_are_404_with_a_message() {
    let app = spawn_app().await;
    let r = reply(app.client.get(app.url("/restapi/v1/nothing")).send().await).await;
    assert_eq!(r.status, 404);
    assert!(r.message().contains("/restapi/v1/nothing"));
}
