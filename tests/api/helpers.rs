//! The test harness: starts the real server on 127.0.0.1:0 with a temporary data
//! directory, and speaks HTTP, SSE and websocket to it over real sockets. The server's store
//! is SQLite in the data directory, or, in the suite built with `crate::ON_POSTGRES`, a fresh
//! database on the tests' own PostgreSQL server.

use std::pin::Pin;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use awc::ws;
use bytes::Bytes;
use futures_util::{SinkExt, Stream, StreamExt};
use serde_json::Value;
use switchboard::{Application, Config};
use tempfile::TempDir;

pub const WAIT: Duration = Duration::from_secs(5);

pub struct TestApp {
    pub base: String,
    pub admin_password: String,
    pub dir: TempDir,
    pub client: awc::Client,
    pub config: Config,
    /// The Ozeki HTTP API's own listener, when `ozeki.http_api_bind` is set.
    pub http_api_base: Option<String>,
    /// The XMPP TCP listener's port, when `xmpp.c2s_bind` is set.
    pub xmpp_port: Option<u16>,
    handle: ServerHandle,
}

/// A test configuration: port 0, a fresh data dir, a random admin password.
pub fn test_config(dir: &TempDir) -> Config {
    let mut config = Config::default();
    config.server.bind = "127.0.0.1:0".into();
    config.server.data_dir = dir.path().to_path_buf();
    config.server.workers = 2;
    config.admin.password = format!("admin-{}", switchboard_actors::random::random_hex(8));
    config.store.synchronous = "normal".into();
    for (key, value) in store_env(dir.path()) {
        match key {
            "SWITCHBOARD_STORE_BACKEND" => config.store.backend = value,
            "SWITCHBOARD_STORE_URL" => config.store.url = value,
            _ => unreachable!("store_env sets the backend and the URL"),
        }
    }
    config
}

/// The store settings for a server over the data directory `data`, as environment: none
/// for SQLite (the file in `data`); on PostgreSQL, a database of its own, the same one
/// each time `data` is asked for (a restart finds what was stored).
pub fn store_env(data: &std::path::Path) -> Vec<(&'static str, String)> {
    if !crate::ON_POSTGRES {
        return Vec::new();
    }
    static DATABASES: std::sync::Mutex<Vec<(std::path::PathBuf, String)>> = std::sync::Mutex::new(Vec::new());
    let mut databases = DATABASES.lock().unwrap();
    let url = match databases.iter().find(|(path, _)| path == data) {
        Some((_, url)) => url.clone(),
        None => {
            let url = switchboard_actors::testing::TestPostgres::shared().database();
            databases.push((data.to_path_buf(), url.clone()));
            url
        }
    };
    vec![("SWITCHBOARD_STORE_BACKEND", "postgres".to_owned()), ("SWITCHBOARD_STORE_URL", url)]
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = test_config(&dir);
    tweak(&mut config);
    start(dir, config).await
}

/// Starts a server on an existing data dir (a restart).
pub async fn start(dir: TempDir, config: Config) -> TestApp {
    let app = Application::build(config.clone()).await.expect("server builds");
    let base = format!("http://127.0.0.1:{}", app.port());
    let http_api_base = app.http_api_port().map(|port| format!("http://127.0.0.1:{port}"));
    let xmpp_port = app.xmpp_port();
    let handle = app.handle();
    actix_rt::spawn(app.run_until_stopped());
    let client = awc::Client::builder().timeout(Duration::from_secs(10)).finish();
    TestApp {
        base,
        admin_password: config.admin.password.clone(),
        dir,
        client,
        config,
        http_api_base,
        xmpp_port,
        handle,
    }
}

pub struct Reply {
    pub status: u16,
    pub body: Bytes,
    /// The `Content-Type` answered, if any.
    pub content_type: Option<String>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text()))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The error message of an error reply.
    pub fn message(&self) -> String {
        self.json()["message"].as_str().unwrap_or_default().to_owned()
    }
}

pub async fn reply(
    response: Result<
        awc::ClientResponse<impl Stream<Item = Result<Bytes, awc::error::PayloadError>> + Unpin>,
        awc::error::SendRequestError,
    >,
) -> Reply {
    let mut response = response.expect("request sent");
    let status = response.status().as_u16();
    let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let body = response.body().limit(16 * 1024 * 1024).await.expect("body read");
    Reply { status, body, content_type }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn ws_url(&self, path: &str) -> String {
        format!("ws{}{}", self.base.trim_start_matches("http"), path)
    }

    /// Stops the server and returns its data dir and config, for a restart.
    pub async fn stop(self) -> (TempDir, Config) {
        self.handle.stop(true).await;
        (self.dir, self.config)
    }

    pub async fn get(&self, path: &str, auth: (&str, &str)) -> Reply {
        reply(self.client.get(self.url(path)).basic_auth(auth.0, auth.1).send().await).await
    }

    pub async fn get_bearer(&self, path: &str, token: &str) -> Reply {
        reply(self.client.get(self.url(path)).insert_header(("authorization", format!("Bearer {token}"))).send().await)
            .await
    }

    pub async fn delete(&self, path: &str, auth: (&str, &str)) -> Reply {
        reply(self.client.delete(self.url(path)).basic_auth(auth.0, auth.1).send().await).await
    }

    pub async fn post_json(&self, path: &str, auth: (&str, &str), body: &Value) -> Reply {
        reply(self.client.post(self.url(path)).basic_auth(auth.0, auth.1).send_json(body).await).await
    }

    pub async fn put_json(&self, path: &str, auth: (&str, &str), body: &Value) -> Reply {
        reply(self.client.put(self.url(path)).basic_auth(auth.0, auth.1).send_json(body).await).await
    }

    pub async fn post_text(&self, path: &str, auth: (&str, &str), body: &str) -> Reply {
        reply(
            self.client
                .post(self.url(path))
                .basic_auth(auth.0, auth.1)
                .insert_header(("content-type", "text/plain"))
                .send_body(body.to_owned())
                .await,
        )
        .await
    }

    pub fn admin(&self) -> (&str, &str) {
        ("admin", &self.admin_password)
    }

    /// Creates a user whose password is `pw-<name>`.
    pub async fn create_user(&self, name: &str) {
        let r = self
            .post_json(
                "/restapi/v1/users",
                self.admin(),
                &serde_json::json!({"username": name, "password": format!("pw-{name}"), "name": name.to_uppercase(), "email": format!("{name}@example.org")}),
            )
            .await;
        assert_eq!(r.status, 201, "create {name}: {}", r.text());
    }

    /// Logs `name` in; returns the stream id.
    pub async fn login(&self, name: &str) -> String {
        let pw = format!("pw-{name}");
        let r = self.post_text(&format!("/restapi/v1/chat/{name}/login"), (name, &pw), "").await;
        assert_eq!(r.status, 200, "login {name}: {}", r.text());
        r.text()
    }

    /// Sends a JSON message `{"body": body}` from `name`'s stream.
    pub async fn send(&self, name: &str, stream: &str, to: &str, body: &str) -> Reply {
        let pw = format!("pw-{name}");
        self.post_json(
            &format!("/restapi/v1/chat/{stream}/messages/{to}"),
            (name, &pw),
            &serde_json::json!({ "body": body }),
        )
        .await
    }

    /// Opens `/sse/{name}` as `name` (query appended as given).
    pub async fn sse(&self, name: &str, query: &str) -> Sse {
        self.sse_with(name, query, None).await
    }

    pub async fn sse_with(&self, name: &str, query: &str, last_event_id: Option<&str>) -> Sse {
        let pw = format!("pw-{name}");
        let mut request = self
            .client
            .get(self.url(&format!("/sse/{name}{query}")))
            .basic_auth(name, &pw)
            .insert_header(("accept", "text/event-stream"))
            .timeout(Duration::from_secs(3600));
        if let Some(id) = last_event_id {
            request = request.insert_header(("Last-Event-ID", id));
        }
        Self::open_sse(request, name).await
    }

    /// Opens an SSE stream from a prepared request; waits for the greeting.
    pub async fn open_sse(request: awc::ClientRequest, who: &str) -> Sse {
        let response = request.send().await.expect("SSE request sent");
        assert_eq!(response.status().as_u16(), 200, "SSE for {who}");
        let mut sse = Sse { body: Box::pin(response), buffer: String::new(), comments: Vec::new() };
        // The greeting comment arrives once the connection is attached.
        sse.wait_comment("connected as").await;
        sse
    }

    /// Opens `/ws` as `name` with Basic auth (query appended as given).
    pub async fn ws(&self, name: &str, query: &str) -> Ws {
        let pw = format!("pw-{name}");
        let (response, framed) = self
            .client
            .ws(self.ws_url(&format!("/ws{query}")))
            .basic_auth(name, Some(&pw))
            .connect()
            .await
            .unwrap_or_else(|e| panic!("websocket for {name}: {e}"));
        assert_eq!(response.status().as_u16(), 101);
        Ws { framed }
    }
}

/// The next SSE event named `event` whose `type` is `kind`, skipping others.
pub async fn next_of(sse: &mut Sse, event: &str, kind: &str) -> SseEvent {
    loop {
        let e = sse.next().await;
        if e.event == event && e.data["type"] == kind {
            return e;
        }
    }
}

/// The next websocket frame of event `event` and `type` `kind`, skipping others.
pub async fn next_ws_of(ws: &mut Ws, event: &str, kind: &str) -> Value {
    loop {
        let v = ws.next().await;
        if v["event"] == event && v["type"] == kind {
            return v;
        }
    }
}

#[derive(Debug, Clone)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: String,
    pub data: Value,
}

pub struct Sse {
    body: Pin<Box<dyn Stream<Item = Result<Bytes, awc::error::PayloadError>>>>,
    buffer: String,
    pub comments: Vec<String>,
}

pub enum SseItem {
    Event(SseEvent),
    Closed,
}

impl Sse {
    /// The next event (comments are recorded, not returned); panics after `WAIT`.
    pub async fn next(&mut self) -> SseEvent {
        match self.next_within(WAIT).await {
            Some(SseItem::Event(e)) => e,
            Some(SseItem::Closed) => panic!("SSE stream closed while waiting for an event"),
            None => panic!("no SSE event within {WAIT:?}"),
        }
    }

    /// The next `chatapi.presence` event of `kind` from `from` (a bare address), skipping
    /// others; panics after `WAIT`.
    pub async fn next_presence(&mut self, kind: &str, from: &str) -> SseEvent {
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut skipped = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_within(left).await {
                Some(SseItem::Event(e))
                    if e.event == "chatapi.presence" && e.data["type"] == kind && e.data["from"] == from =>
                {
                    return e
                }
                Some(SseItem::Event(e)) => skipped.push(e),
                Some(SseItem::Closed) => panic!("SSE closed waiting for {kind} presence from {from}; saw {skipped:?}"),
                None => panic!("no {kind} presence from {from} within {WAIT:?}; saw {skipped:?}"),
            }
        }
    }

    /// The next event or the end of the stream, or `None` if nothing came within `limit`.
    pub async fn next_within(&mut self, limit: Duration) -> Option<SseItem> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(block_end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..block_end + 2).collect();
                if let Some(event) = self.parse_block(&block) {
                    return Some(SseItem::Event(event));
                }
                continue;
            }
            match tokio::time::timeout_at(deadline, self.body.next()).await {
                Err(_) => return None,
                Ok(None) | Ok(Some(Err(_))) => return Some(SseItem::Closed),
                Ok(Some(Ok(chunk))) => self.buffer.push_str(&String::from_utf8_lossy(&chunk)),
            }
        }
    }

    fn parse_block(&mut self, block: &str) -> Option<SseEvent> {
        let (mut id, mut event, mut data) = (None, None, None);
        for line in block.lines() {
            if let Some(comment) = line.strip_prefix(':') {
                self.comments.push(comment.trim().to_owned());
            } else if let Some(v) = line.strip_prefix("id: ") {
                id = Some(v.to_owned());
            } else if let Some(v) = line.strip_prefix("event: ") {
                event = Some(v.to_owned());
            } else if let Some(v) = line.strip_prefix("data: ") {
                data = Some(serde_json::from_str(v).unwrap_or_else(|e| panic!("SSE data is not JSON ({e}): {v}")));
            }
        }
        Some(SseEvent { id, event: event?, data: data? })
    }

    async fn wait_comment(&mut self, prefix: &str) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while !self.comments.iter().any(|c| c.starts_with(prefix)) {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                assert!(self.parse_block(&block).is_none(), "an event arrived before the greeting");
                continue;
            }
            let chunk = tokio::time::timeout_at(deadline, self.body.next())
                .await
                .expect("SSE greeting in time")
                .expect("SSE stream open")
                .expect("SSE chunk");
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// Asserts that no event arrives within `limit`.
    pub async fn assert_quiet(&mut self, limit: Duration) {
        if let Some(SseItem::Event(e)) = self.next_within(limit).await {
            panic!("unexpected SSE event: {e:?}");
        }
    }

    /// Asserts that no event other than those named in `except` arrives within `limit`.
    pub async fn assert_quiet_except(&mut self, limit: Duration, except: &[&str]) {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_within(left).await {
                Some(SseItem::Event(e)) if except.contains(&e.event.as_str()) => continue,
                Some(SseItem::Event(e)) => panic!("unexpected SSE event: {e:?}"),
                _ => return,
            }
        }
    }

    /// Waits for the end of the stream; returns the events seen before it.
    pub async fn until_closed(&mut self) -> Vec<SseEvent> {
        let mut seen = Vec::new();
        loop {
            match self.next_within(WAIT).await {
                Some(SseItem::Event(e)) => seen.push(e),
                Some(SseItem::Closed) => return seen,
                None => panic!("SSE stream did not close; saw {seen:?}"),
            }
        }
    }
}

pub struct Ws {
    pub framed: actix_codec::Framed<awc::BoxedSocket, ws::Codec>,
}

pub enum WsItem {
    Json(Value),
    Close(Option<ws::CloseReason>),
    Ended,
}

impl Ws {
    pub async fn send(&mut self, value: Value) {
        self.send_text(&value.to_string()).await;
    }

    pub async fn send_text(&mut self, text: &str) {
        self.framed.send(ws::Message::Text(text.to_owned().into())).await.expect("ws send");
    }

    /// The next text frame as JSON, or a close; `None` if nothing within `limit`.
    pub async fn next_within(&mut self, limit: Duration) -> Option<WsItem> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let frame = match tokio::time::timeout_at(deadline, self.framed.next()).await {
                Err(_) => return None,
                Ok(None) | Ok(Some(Err(_))) => return Some(WsItem::Ended),
                Ok(Some(Ok(frame))) => frame,
            };
            match frame {
                ws::Frame::Text(bytes) => {
                    return Some(WsItem::Json(serde_json::from_slice(&bytes).expect("ws frame is JSON")))
                }
                ws::Frame::Close(reason) => return Some(WsItem::Close(reason)),
                ws::Frame::Ping(p) => {
                    let _ = self.framed.send(ws::Message::Pong(p)).await;
                }
                _ => {}
            }
        }
    }

    /// The next JSON frame; panics on close or after `WAIT`.
    pub async fn next(&mut self) -> Value {
        match self.next_within(WAIT).await {
            Some(WsItem::Json(v)) => v,
            Some(WsItem::Close(reason)) => panic!("websocket closed: {reason:?}"),
            Some(WsItem::Ended) => panic!("websocket ended"),
            None => panic!("no websocket frame within {WAIT:?}"),
        }
    }

    /// The next frame of `type` (skipping others).
    pub async fn next_of_type(&mut self, kind: &str) -> Value {
        loop {
            let v = self.next().await;
            if v["type"] == kind {
                return v;
            }
        }
    }

    pub async fn assert_quiet(&mut self, limit: Duration) {
        if let Some(WsItem::Json(v)) = self.next_within(limit).await {
            panic!("unexpected websocket frame: {v}");
        }
    }

    /// Closes the socket from the client side, as a browser tab closing does.
    pub async fn close(mut self) {
        let _ = self.framed.send(ws::Message::Close(Some(ws::CloseCode::Normal.into()))).await;
        let _ = self.until_closed().await;
    }

    /// Waits for a close frame (or the end) and returns its reason.
    pub async fn until_closed(&mut self) -> Option<ws::CloseReason> {
        loop {
            match self.next_within(WAIT).await {
                Some(WsItem::Json(_)) => continue,
                Some(WsItem::Close(reason)) => return reason,
                Some(WsItem::Ended) => return None,
                None => panic!("websocket did not close"),
            }
        }
    }
}

/// A Node.js script the tests drive (`tests/interop`, `tests/browser`): it prints one JSON
/// line `{"event": …}` per step, and `{"event":"failed","error"}` if something went wrong.
pub struct NodeScript {
    name: &'static str,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    pub child: tokio::process::Child,
}

impl NodeScript {
    /// Runs `node ARGS…` in `dir` (npm's pinned packages installed there from the committed
    /// lockfile first, if `package` is missing).
    pub fn start(name: &'static str, dir: &std::path::Path, package: &str, args: &[&str]) -> NodeScript {
        NodeScript::start_with_env(name, dir, package, args, &[])
    }

    /// [`NodeScript::start`] with environment variables for the script.
    pub fn start_with_env(
        name: &'static str,
        dir: &std::path::Path,
        package: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> NodeScript {
        if !dir.join("node_modules").join(package).join("package.json").exists() {
            let status = std::process::Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(dir)
                .status()
                .expect("npm is installed (Node.js >= 20.10)");
            assert!(status.success(), "npm ci in {} failed", dir.display());
        }
        let mut child = tokio::process::Command::new("node")
            .args(args)
            .envs(env.iter().copied())
            .current_dir(dir)
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs");
        let stdout = child.stdout.take().expect("piped stdout");
        NodeScript { name, lines: tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout)), child }
    }

    /// The next step named `event`, skipping others; panics with what the script said if it
    /// failed, ended or took longer than `limit`.
    pub async fn step_within(&mut self, event: &str, limit: Duration) -> Value {
        loop {
            let line = tokio::time::timeout(limit, self.lines.next_line())
                .await
                .unwrap_or_else(|_| panic!("no '{event}' from the {} script in time", self.name))
                .expect("script output")
                .unwrap_or_else(|| panic!("the {} script ended before '{event}'", self.name));
            eprintln!("{}: {line}", self.name);
            let value: Value = serde_json::from_str(&line).unwrap_or_else(|_| panic!("{} said: {line}", self.name));
            assert_ne!(value["event"], "failed", "the {} script failed: {value}", self.name);
            if value["event"] == event {
                return value;
            }
        }
    }

    pub async fn step(&mut self, event: &str) -> Value {
        self.step_within(event, Duration::from_secs(20)).await
    }

    /// Waits for the script to exit, and checks that it succeeded.
    pub async fn finish(mut self) {
        let status = tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("the {} script did not exit", self.name))
            .expect("the script's status");
        assert!(status.success(), "the {} script exited with {status}", self.name);
    }
}

/// Starts a real HTTP server on a free loopback port (a site, a webhook receiver): one
/// worker, routes and data from `configure`. Returns its base URL and handle.
pub fn loopback_server(
    configure: impl Fn(&mut actix_web::web::ServiceConfig) + Clone + Send + 'static,
) -> (String, ServerHandle) {
    let server = actix_web::HttpServer::new(move || actix_web::App::new().configure(configure.clone()))
        .workers(1)
        .bind("127.0.0.1:0")
        .expect("a loopback port");
    let base = format!("http://127.0.0.1:{}", server.addrs()[0].port());
    let server = server.run();
    let handle = server.handle();
    actix_rt::spawn(server);
    (base, handle)
}

/// `getJWT($user_id, $secret_key, $time)` from the seed, step by step: `json_encode` of the
/// header and of the claims, base64 with `+/=` replaced, HMAC-SHA256 with the site's secret.
pub fn php_jwt(claims: &Value, secret: &str) -> String {
    use base64::Engine;
    use hmac::Mac;
    let url = |bytes: &[u8]| {
        base64::engine::general_purpose::STANDARD.encode(bytes).replace('+', "-").replace('/', "_").replace('=', "")
    };
    let header = url(br#"{"typ":"JWT","alg":"HS256"}"#);
    let payload = url(claims.to_string().as_bytes());
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("{header}.{payload}").as_bytes());
    format!("{header}.{payload}.{}", url(&mac.finalize().into_bytes()))
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_secs()
}

/// A site token for site user `user_id`, valid for an hour.
pub fn site_token(user_id: Value, secret: &str) -> String {
    php_jwt(&serde_json::json!({"exp": unix_now() + 3600, "user_id": user_id}), secret)
}

impl TestApp {
    /// `POST path` with a bearer token, a JSON body or none.
    pub async fn post_bearer(&self, path: &str, token: &str, body: Option<&Value>) -> Reply {
        let request = self.client.post(self.url(path)).insert_header(("authorization", format!("Bearer {token}")));
        match body {
            Some(body) => reply(request.send_json(body).await).await,
            None => reply(request.send_body("").await).await,
        }
    }

    /// A site user's session: the token exchanged for `token` of `site`, and a login stream.
    /// Returns (session token, stream id).
    pub async fn site_session(&self, site: &str, token: &str) -> (String, String) {
        let body = serde_json::json!({"site": site, "token": token});
        let exchanged = reply(self.client.post(self.url("/restapi/v1/auth/site-token")).send_json(&body).await).await;
        assert_eq!(exchanged.status, 200, "{}", exchanged.text());
        let (session, username) = (
            exchanged.json()["token"].as_str().unwrap().to_owned(),
            exchanged.json()["username"].as_str().unwrap().to_owned(),
        );
        let stream = self.post_bearer(&format!("/restapi/v1/chat/{username}/login"), &session, None).await;
        assert_eq!(stream.status, 200, "{}", stream.text());
        (session, stream.text())
    }
}
