//! The JSON websocket door: `GET /ws[?stream=ID][&token=JWT]`, and for Fastpath
//! visitors `GET /ws?token=visitor-…` (events only; a visitor posts with
//! `PUT /restapi/v1/ask/{userID}`).
//!
//! Each socket is a [`WsConnection`] actor (actix-web-actors), attached by the router to a
//! station like an SSE connection. It pushes the same event objects as SSE, with an extra
//! `"event"` key, and accepts JSON commands:
//! - `{"op":"message","to","body","data","id"}` → `{"type":"ack","id","msgId","stamp"}` once
//!   the message is committed, or `{"type":"error","id","code","message"}`;
//! - `{"op":"chatstate","to","state","id"}` and `{"op":"presence","show","status","priority","id"}`
//!   → nothing on success, an error frame otherwise;
//! - `{"op":"join","room","nick","password","id"}` → `{"type":"joined","id","room","nick",…}`,
//!   `{"op":"groupchat","room","body","data","id"}` → an ack once archived,
//!   `{"op":"leave","room","id"}` → `{"type":"left","id","room"}`;
//! - `{"op":"ping","id"}` → `{"type":"pong","id"}`.
//!
//! A bad frame gets an error frame; the connection stays. A client that does not read
//! (outbox over `limits.outbox_bytes`) or stays silent past `websocket.timeout_secs` is
//! closed with a reason.
//!
//! actix-web-actors is deprecated upstream in favour of actix-ws; this module and
//! `xmpp::websocket` are the only ones that use it, so a move is local. Once upgraded, the
//! socket itself is served by `crate::upgrade`, outside the HTTP dispatcher.

use std::time::Instant;

use actix::prelude::*;
use actix_web::{web, HttpRequest, HttpResponse};
use actix_web_actors::ws;
use bytestring::ByteString;
use serde::Deserialize;
use serde_json::{json, Value};
use switchboard_actors::clock::format_stamp;
use switchboard_actors::fastpath::registry::FindVisitor;
use switchboard_actors::muc::room::Post;
use switchboard_actors::muc::RoomError;
use switchboard_actors::router::{Attach, SendChatState, Submit};
use switchboard_actors::user_session::UserSession;
use switchboard_actors::{Event, Jid, MessageKind, NewMessage, Push};

use crate::auth::query_param;
use crate::auth::{resolve_stream, visitor_token};
use crate::binding::{attach_visitor, Binding};
use crate::chatapi;
use crate::chatapi::joined_json;
use crate::config::secs;
use crate::error::ApiError;
use crate::inbound::{check_message_body, check_nick, parse_chat_state, parse_presence, parse_recipient};
use crate::outbox::{MeteredBody, OutboxBudget};
use crate::requests::find_room;
use crate::requests::{self, OwnStation};
use crate::state::AppState;

/// `GET /ws`: authenticate, attach to a station (or a visitor's), upgrade.
pub async fn open(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let visitor = visitor_token(&req);
    let mut user = None;
    if visitor.is_none() {
        let caller = state.auth.authenticate(&req).await?;
        let stream_id = query_param(req.query_string(), "stream");
        let username = match &stream_id {
            // Checked before the upgrade so that a wrong stream is an HTTP error, not a close.
            Some(id) => resolve_stream(&state.router, &caller, id).await?.username,
            None => caller.username.clone(),
        };
        user = Some((username, stream_id));
    }
    let mut response =
        ws::handshake(&req).map_err(|e| ApiError::bad_request(format!("not a websocket handshake: {e}")))?;
    let budget = OutboxBudget::new(state.config.limits.outbox_bytes);
    let actor = WsConnection {
        state: state.clone(),
        jid: None,
        binding: None,
        budget: budget.clone(),
        highest_seq: 0,
        last_heard: Instant::now(),
    };
    let (connection, frames) = ws::WebsocketContext::create_with_addr(actor, payload);
    // Each bind is queued before the upgrade answer is sent, so it is handled before any
    // client frame.
    match (user, visitor) {
        (Some((username, stream_id)), _) => {
            let attached = state
                .router
                .send(Attach {
                    username: username.clone(),
                    stream_id,
                    resource: None,
                    connection: connection.clone().recipient(),
                    door: "ws",
                })
                .await??;
            let jid = attached.station.jid();
            let binding = Binding::User {
                router: state.router.clone(),
                session: attached.station.session.clone(),
                username,
                resource: attached.station.resource.clone(),
                connection_id: attached.connection_id,
            };
            connection.do_send(Bound { jid: Some(jid), binding });
        }
        (None, Some(token)) => {
            let user_id = state.fastpath.send(FindVisitor { token: token.clone() }).await??;
            let (binding, _) = attach_visitor(&state, user_id, token, connection.clone().recipient()).await?;
            connection.do_send(Bound { jid: None, binding });
        }
        (None, None) => unreachable!("either an account or a visitor token was found above"),
    }
    Ok(response.streaming(MeteredBody { inner: Box::pin(frames), budget }))
}

/// The acknowledgement of a committed message, 1:1 or in a room (the client's `id` is added
/// by [`WsConnection::answer`]).
fn ack(id: i64, stamp_ms: i64) -> Value {
    json!({ "type": "ack", "msgId": id.to_string(), "stamp": format_stamp(stamp_ms) })
}

/// One websocket connection.
pub struct WsConnection {
    state: web::Data<AppState>,
    /// The station's full address and this connection's id, once attached.
    /// The station's full address, for an account's connection (a visitor's has none).
    jid: Option<Jid>,
    binding: Option<Binding>,
    budget: OutboxBudget,
    /// Highest stored-message id written: a message is never written twice.
    highest_seq: i64,
    last_heard: Instant,
}

/// Commands a client sends.
#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
enum ClientCommand {
    Message { to: String, body: Option<String>, data: Option<Value>, id: Option<Value> },
    Ping { id: Option<Value> },
    Chatstate { to: String, state: String, id: Option<Value> },
    Presence { show: Option<String>, status: Option<String>, priority: Option<i64>, id: Option<Value> },
    Join { room: String, nick: Option<String>, password: Option<String>, id: Option<Value> },
    Leave { room: String, id: Option<Value> },
    Groupchat { room: String, body: Option<String>, data: Option<Value>, id: Option<Value> },
}

impl WsConnection {
    fn send_text(&mut self, text: ByteString, ctx: &mut ws::WebsocketContext<Self>) {
        if !self.budget.try_take(text.len()) {
            tracing::info!("closing a slow websocket client: outbox full");
            ctx.close(Some(ws::CloseReason {
                code: ws::CloseCode::Policy,
                description: Some("outbox full: the client is not reading fast enough".into()),
            }));
            ctx.stop();
            return;
        }
        ctx.text(text);
    }

    fn push_event(&mut self, event: &Event, ctx: &mut ws::WebsocketContext<Self>) {
        if event.first_time(&mut self.highest_seq) && chatapi::on_json_doors(&event.payload) {
            self.send_text(chatapi::ws_frame(event, &self.state.hosts), ctx);
        }
    }

    fn send_json(&mut self, value: Value, ctx: &mut ws::WebsocketContext<Self>) {
        self.send_text(ByteString::from(value.to_string()), ctx);
    }

    fn send_error(&mut self, id: Option<Value>, error: &ApiError, ctx: &mut ws::WebsocketContext<Self>) {
        self.send_json(
            json!({ "type": "error", "id": id, "code": error.status.as_u16(), "message": error.message }),
            ctx,
        );
    }

    fn handle_text(&mut self, text: &str, ctx: &mut ws::WebsocketContext<Self>) {
        let command = match serde_json::from_str::<ClientCommand>(text) {
            Ok(command) => command,
            Err(e) => {
                let id = serde_json::from_str::<Value>(text).ok().and_then(|v| v.get("id").cloned());
                let hint = "expected {\"op\":\"message\"|\"groupchat\"|\"join\"|\"leave\"|\"chatstate\"|\"presence\"|\"ping\", …}";
                self.send_error(id, &ApiError::bad_request(format!("invalid command: {e}; {hint}")), ctx);
                return;
            }
        };
        match command {
            ClientCommand::Ping { id } => self.send_json(json!({ "type": "pong", "id": id }), ctx),
            ClientCommand::Chatstate { to, state, id } => match self.prepare_chat_state(&to, &state) {
                Ok(command) => {
                    let router = self.state.router.clone();
                    self.run_quietly(id, ctx, async move { Ok(router.send(command).await??) });
                }
                Err(e) => self.send_error(id, &e, ctx),
            },
            ClientCommand::Presence { show, status, priority, id } => {
                match (self.own_station(), parse_presence(show.as_deref(), status, priority)) {
                    (Ok((username, resource, session)), Ok(presence)) => self.run_quietly(id, ctx, async move {
                        let station = OwnStation { username: &username, resource: &resource, session: &session };
                        requests::set_presence(station, presence).await
                    }),
                    (Err(e), _) | (_, Err(e)) => self.send_error(id, &e, ctx),
                }
            }
            ClientCommand::Message { to, body, data, id } => match self.prepare_message(to, body, data, &id) {
                Ok(message) => {
                    let router = self.state.router.clone();
                    self.answer(id, ctx, async move {
                        let stored = router.send(Submit { message }).await??;
                        Ok(ack(stored.id, stored.stamp_ms))
                    });
                }
                Err(e) => self.send_error(id, &e, ctx),
            },
            ClientCommand::Groupchat { room, body, data, id } => match self.prepare_post(body, data) {
                Ok(post) => {
                    let state = self.state.clone();
                    self.answer(id, ctx, async move {
                        let room_addr = find_room(&state, &room).await?;
                        let stored = room_addr.send(post).await.map_err(|_| RoomError::NotFound(room))??;
                        Ok(ack(stored.id, stored.stamp_ms))
                    });
                }
                Err(e) => self.send_error(id, &e, ctx),
            },
            ClientCommand::Join { room, nick, password, id } => match self.prepare_join(room, nick) {
                Ok(((username, resource, session), room, nick)) => {
                    self.answer(id, ctx, async move {
                        let station = OwnStation { username: &username, resource: &resource, session: &session };
                        let joined = requests::enter_room(station, room, nick, password).await?;
                        let mut reply = joined_json(&joined);
                        reply["type"] = "joined".into();
                        Ok(reply)
                    });
                }
                Err(e) => self.send_error(id, &e, ctx),
            },
            ClientCommand::Leave { room, id } => match self.own_station() {
                Ok((username, resource, session)) => {
                    self.answer(id, ctx, async move {
                        let station = OwnStation { username: &username, resource: &resource, session: &session };
                        requests::exit_room(station, room.clone()).await?;
                        Ok(json!({ "type": "left", "room": room }))
                    });
                }
                Err(e) => self.send_error(id, &e, ctx),
            },
        }
    }

    /// Runs a command to its end, then writes its reply (with the client's `id`) or an
    /// error frame. Replies to one connection's commands may come back in any order.
    fn answer<F>(&mut self, id: Option<Value>, ctx: &mut ws::WebsocketContext<Self>, command: F)
    where
        F: std::future::Future<Output = Result<Value, ApiError>> + 'static,
    {
        command
            .into_actor(self)
            .map(move |result, act, ctx| match result {
                Ok(mut reply) => {
                    reply["id"] = id.unwrap_or(Value::Null);
                    act.send_json(reply, ctx)
                }
                Err(e) => act.send_error(id, &e, ctx),
            })
            .spawn(ctx);
    }

    /// Sends a command that answers nothing on success; a failure becomes an error frame.
    /// Runs a command that answers nothing unless it fails (chat states, presence).
    fn run_quietly<F>(&mut self, id: Option<Value>, ctx: &mut ws::WebsocketContext<Self>, command: F)
    where
        F: std::future::Future<Output = Result<(), ApiError>> + 'static,
    {
        command
            .into_actor(self)
            .map(move |result, act, ctx| {
                if let Err(e) = result {
                    act.send_error(id, &e, ctx);
                }
            })
            .spawn(ctx);
    }

    /// This connection's station as (user, resource, the user's session).
    fn own_station(&self) -> Result<(String, String, Addr<UserSession>), ApiError> {
        let jid = self.station()?;
        let session = self.binding.as_ref().and_then(Binding::session).cloned().ok_or_else(|| {
            ApiError::new(actix_web::http::StatusCode::SERVICE_UNAVAILABLE, "NotReadyException", "connection not ready")
        })?;
        Ok((jid.user.to_string(), jid.resource.unwrap_or_default(), session))
    }

    /// This connection's station address (set once attached, before any client frame).
    fn station(&self) -> Result<Jid, ApiError> {
        match (&self.jid, &self.binding) {
            (Some(jid), _) => Ok(jid.clone()),
            (None, Some(Binding::Visitor { user_id, .. })) => Err(ApiError::forbidden(format!(
                "a visitor's websocket receives events only; post with PUT /restapi/v1/ask/{user_id}"
            ))),
            _ => Err(ApiError::new(
                actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
                "NotReadyException",
                "connection not ready",
            )),
        }
    }

    fn prepare_chat_state(&self, to: &str, state: &str) -> Result<SendChatState, ApiError> {
        let from = self.station()?;
        let state = parse_chat_state(state)?;
        let to = parse_recipient(to, &self.state.config.server.domain)?;
        Ok(SendChatState { from, to, state })
    }

    fn prepare_post(&self, body: Option<String>, data: Option<Value>) -> Result<Post, ApiError> {
        let station = self.station()?;
        let body = self.check_body(body)?;
        Ok(Post { username: station.user.to_string(), resource: station.resource.unwrap_or_default(), body, data })
    }

    /// A join's station, room and nick, checked.
    #[allow(clippy::type_complexity)]
    fn prepare_join(
        &self,
        room: String,
        nick: Option<String>,
    ) -> Result<((String, String, Addr<UserSession>), String, String), ApiError> {
        let station = self.own_station()?;
        let room = self.state.muc.parse_room(&room)?;
        let nick = check_nick(nick, &station.0)?;
        Ok((station, room, nick))
    }

    /// A message body: present, not blank, within `limits.max_message_chars`.
    fn check_body(&self, body: Option<String>) -> Result<String, ApiError> {
        let body = body.ok_or_else(|| ApiError::bad_request("a message needs a \"body\""))?;
        check_message_body(&body, self.state.config.limits.max_message_chars)?;
        Ok(body)
    }

    fn prepare_message(
        &self,
        to: String,
        body: Option<String>,
        data: Option<Value>,
        id: &Option<Value>,
    ) -> Result<NewMessage, ApiError> {
        let from = self.station()?;
        let body = self.check_body(body)?;
        let to = parse_recipient(&to, &self.state.config.server.domain)?;
        // The client's id travels with the message so that a stanza error can name it.
        let client_id = id.as_ref().map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned));
        Ok(NewMessage { from, to, kind: MessageKind::Chat, body, data, client_id, expires_ms: None })
    }
}

impl Actor for WsConnection {
    type Context = ws::WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let timeout = secs(self.state.config.websocket.timeout_secs);
        ctx.run_interval(secs(self.state.config.websocket.ping_secs), move |act, ctx| {
            if act.last_heard.elapsed() > timeout {
                ctx.close(Some(ws::CloseReason {
                    code: ws::CloseCode::Away,
                    description: Some("no traffic from the client: timed out".into()),
                }));
                ctx.stop();
            } else {
                ctx.ping(b"");
            }
        });
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        if let Some(binding) = self.binding.take() {
            binding.detach();
        }
    }
}

/// Where this connection was attached, and the station's address for an account's
/// connection. Sent by the `/ws` handler.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Bound {
    pub jid: Option<Jid>,
    pub binding: Binding,
}

impl Handler<Bound> for WsConnection {
    type Result = ();

    fn handle(&mut self, msg: Bound, _: &mut Self::Context) {
        self.jid = msg.jid;
        self.binding = Some(msg.binding);
    }
}

impl Handler<Push> for WsConnection {
    type Result = ();

    fn handle(&mut self, msg: Push, ctx: &mut Self::Context) {
        match msg {
            Push::Event(_) | Push::Events(_) => {
                for event in msg.events() {
                    self.push_event(event, ctx);
                }
            }
            Push::Close { reason } => {
                // The station already forgot this connection: no detach.
                self.binding = None;
                ctx.close(Some(ws::CloseReason { code: ws::CloseCode::Normal, description: Some(reason) }));
                ctx.stop();
            }
        }
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for WsConnection {
    fn handle(&mut self, item: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        self.last_heard = Instant::now();
        match item {
            Ok(ws::Message::Text(text)) => self.handle_text(&text, ctx),
            Ok(ws::Message::Binary(_)) => {
                self.send_error(None, &ApiError::bad_request("binary frames are not supported; send JSON text"), ctx)
            }
            Ok(ws::Message::Continuation(_)) => {
                self.send_error(None, &ApiError::bad_request("fragmented frames are not supported"), ctx)
            }
            Ok(ws::Message::Ping(payload)) => ctx.pong(&payload),
            Ok(ws::Message::Pong(_)) | Ok(ws::Message::Nop) => {}
            Ok(ws::Message::Close(reason)) => {
                ctx.close(reason);
                ctx.stop();
            }
            Err(e) => {
                ctx.close(Some(ws::CloseReason { code: ws::CloseCode::Policy, description: Some(e.to_string()) }));
                ctx.stop();
            }
        }
    }
}
