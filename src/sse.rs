//! The Server-Sent Events door: `GET /sse/{username}[?stream=ID][&token=JWT]`, and for
//! Fastpath visitors `GET /sse/{userID}?token=visitor-…`.
//!
//! Each request is one connection: an [`SseConnection`] actor, attached by the router to a
//! station, writes the station's events (ofchat names and keys, `specs/openfire.md` §3) into
//! the response body. Unlike ofchat, every open connection of a user receives events,
//! events carry `id:` lines, and a reconnect with `Last-Event-ID` replays the 1:1 messages
//! received since that id (replay and live events are merged in id order, without
//! duplicates). A heartbeat comment keeps idle connections open through proxies.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use actix::prelude::*;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use futures_util::Stream;
use serde_json::json;
use switchboard_actors::router::Attach;
use switchboard_actors::{Event, Hosts, Push};
use tokio::sync::mpsc;

use crate::auth::{query_param, visitor_token};
use crate::binding::{attach_visitor, Binding};
use crate::chatapi;
use crate::config::secs;
use crate::error::ApiError;
use crate::outbox::OutboxBudget;
use crate::state::AppState;

/// `GET /sse/{username}`, or a visitor's `GET /sse/{userID}?token=visitor-…`.
pub async fn open(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name = path.into_inner();
    if let Some(accept) = req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()) {
        if !(accept.contains("text/event-stream") || accept.contains("*/*")) {
            return Err(ApiError::new(
                actix_web::http::StatusCode::NOT_ACCEPTABLE,
                "NotAcceptableException",
                "this resource is an event stream: send Accept: text/event-stream",
            ));
        }
    }
    if let Some(token) = visitor_token(&req) {
        return open_for_visitor(&state, name, token).await;
    }
    let caller = state.auth.authenticate(&req).await?;
    let username = name;
    caller.require_self(&username)?;
    let last_event_id = req
        .headers()
        .get("Last-Event-ID")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| query_param(req.query_string(), "lastEventId"))
        .filter(|v| !v.trim().is_empty())
        .map(|v| v.trim().parse::<i64>().map_err(|_| ApiError::bad_request("Last-Event-ID must be a message id")))
        .transpose()?;
    let stream_id = query_param(req.query_string(), "stream");

    let (connection, body) = start_connection(&state, last_event_id.is_some());
    let attached = match state
        .router
        .send(Attach {
            username: username.clone(),
            stream_id,
            resource: None,
            connection: connection.clone().recipient(),
            door: "sse",
        })
        .await
    {
        Ok(Ok(attached)) => attached,
        Ok(Err(e)) => {
            connection.do_send(ClientGone);
            return Err(e.into());
        }
        Err(e) => {
            connection.do_send(ClientGone);
            return Err(e.into());
        }
    };
    connection.do_send(Bind {
        binding: Binding::User {
            router: state.router.clone(),
            session: attached.station.session.clone(),
            username: username.clone(),
            resource: attached.station.resource.clone(),
            connection_id: attached.connection_id,
        },
    });
    if let Some(after) = last_event_id {
        let archive = state.archive.clone();
        let replay_limit = state.config.sse.replay_limit;
        let target = connection.clone();
        actix_web::rt::spawn(async move {
            let events = match archive.received_since(username, after, replay_limit).await {
                Ok(messages) => messages.into_iter().map(|m| Event::delayed_message(Arc::new(m))).collect(),
                Err(e) => {
                    tracing::warn!(error = %e, "Last-Event-ID replay failed");
                    Vec::new()
                }
            };
            target.do_send(Replay { events });
        });
    }
    let jid = attached.station.jid().render(state.domain());
    Ok(respond(body, &jid))
}

/// A visitor's event stream: attached to its station (401/403/404 from the token check).
async fn open_for_visitor(state: &AppState, user_id: String, token: String) -> Result<HttpResponse, ApiError> {
    let (connection, body) = start_connection(state, false);
    match attach_visitor(state, user_id, token, connection.clone().recipient()).await {
        Ok((binding, address)) => {
            connection.do_send(Bind { binding });
            Ok(respond(body, &address))
        }
        Err(e) => {
            connection.do_send(ClientGone);
            Err(e)
        }
    }
}

/// A connection actor and the response body it writes into.
fn start_connection(state: &AppState, replaying: bool) -> (Addr<SseConnection>, SseBody) {
    let budget = OutboxBudget::new(state.config.limits.outbox_bytes);
    let (outbox, events) = mpsc::unbounded_channel();
    let connection = SseConnection {
        outbox,
        budget: budget.clone(),
        binding: None,
        hosts: state.hosts.clone(),
        highest_seq: 0,
        held_for_replay: replaying.then(Vec::new),
    }
    .start();
    let period = secs(state.config.sse.heartbeat_secs);
    let body = SseBody {
        greeting: None,
        events,
        budget,
        heartbeat: tokio::time::interval_at(tokio::time::Instant::now() + period, period),
        connection: connection.clone(),
    };
    (connection, body)
}

fn respond(mut body: SseBody, address: &str) -> HttpResponse {
    body.greeting = Some(Bytes::from(format!(": connected as {address}\nretry: 3000\n\n")));
    HttpResponse::Ok()
        .content_type("text/event-stream; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body)
}

/// One SSE connection: the live end of a station, writing into its response body.
pub struct SseConnection {
    outbox: mpsc::UnboundedSender<Bytes>,
    budget: OutboxBudget,
    binding: Option<Binding>,
    hosts: Arc<Hosts>,
    /// Highest stored-message id written: a message is never written twice.
    highest_seq: i64,
    /// Live events held back while a `Last-Event-ID` replay is read.
    held_for_replay: Option<Vec<Arc<Event>>>,
}

impl SseConnection {
    /// An event from the station: held while the replay runs, written otherwise.
    fn push_event(&mut self, event: Arc<Event>, ctx: &mut Context<Self>) {
        match &mut self.held_for_replay {
            Some(held) => held.push(event),
            None => self.write_event(&event, ctx),
        }
    }

    fn write_event(&mut self, event: &Arc<Event>, ctx: &mut Context<Self>) {
        if !event.first_time(&mut self.highest_seq) || !chatapi::on_json_doors(&event.payload) {
            return;
        }
        self.write(chatapi::sse_frame(event, &self.hosts).into_bytes(), ctx);
    }

    fn write(&mut self, frame: Bytes, ctx: &mut Context<Self>) {
        if !self.budget.try_take(frame.len()) {
            tracing::info!(owner = ?self.binding.as_ref().map(Binding::owner), "closing a slow SSE client: outbox full");
            ctx.stop();
            return;
        }
        if self.outbox.send(frame).is_err() {
            ctx.stop();
        }
    }
}

impl Actor for SseConnection {
    type Context = Context<Self>;

    fn stopped(&mut self, _: &mut Context<Self>) {
        if let Some(binding) = self.binding.take() {
            binding.detach();
        }
    }
}

impl Handler<Push> for SseConnection {
    type Result = ();

    fn handle(&mut self, msg: Push, ctx: &mut Context<Self>) {
        match msg {
            Push::Event(_) | Push::Events(_) => {
                for event in msg.events() {
                    self.push_event(event.clone(), ctx);
                }
            }
            Push::Close { reason } => {
                let frame = format!("event: chatapi.closed\ndata: {}\n\n", json!({ "reason": reason }));
                self.write(Bytes::from(frame), ctx);
                // The station already forgot this connection: no detach.
                self.binding = None;
                ctx.stop();
            }
        }
    }
}

/// Where this connection was attached. Sent by the SSE handler.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Bind {
    pub binding: Binding,
}

impl Handler<Bind> for SseConnection {
    type Result = ();

    fn handle(&mut self, msg: Bind, _: &mut Context<Self>) {
        self.binding = Some(msg.binding);
    }
}

/// The messages a `Last-Event-ID` reconnect missed. Sent by the SSE handler's replay task.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Replay {
    pub events: Vec<Arc<Event>>,
}

impl Handler<Replay> for SseConnection {
    type Result = ();

    fn handle(&mut self, msg: Replay, ctx: &mut Context<Self>) {
        let held = self.held_for_replay.take().unwrap_or_default();
        for event in msg.events.iter().chain(held.iter()) {
            self.write_event(event, ctx);
        }
    }
}

/// The client went away (the response body was dropped). Sent by [`SseBody`].
#[derive(Message)]
#[rtype(result = "()")]
pub struct ClientGone;

impl Handler<ClientGone> for SseConnection {
    type Result = ();

    fn handle(&mut self, _: ClientGone, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

/// The response body: the greeting, then frames from the connection actor, with heartbeat
/// comments while idle. Ends when the actor stops; tells the actor when the client leaves.
struct SseBody {
    greeting: Option<Bytes>,
    events: mpsc::UnboundedReceiver<Bytes>,
    budget: OutboxBudget,
    heartbeat: tokio::time::Interval,
    connection: Addr<SseConnection>,
}

impl Stream for SseBody {
    type Item = Result<Bytes, actix_web::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        if let Some(greeting) = self.greeting.take() {
            return Poll::Ready(Some(Ok(greeting)));
        }
        match self.events.poll_recv(cx) {
            Poll::Ready(Some(frame)) => {
                self.budget.release(frame.len());
                self.heartbeat.reset();
                return Poll::Ready(Some(Ok(frame)));
            }
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => {}
        }
        match self.heartbeat.poll_tick(cx) {
            Poll::Ready(_) => Poll::Ready(Some(Ok(Bytes::from_static(b": \n\n")))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for SseBody {
    fn drop(&mut self) {
        self.connection.do_send(ClientGone);
    }
}
