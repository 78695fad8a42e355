//! XMPP over WebSocket (RFC 7395): `GET /xmpp-websocket`, subprotocol `xmpp`.
//!
//! One [`XmppConnection`] actor per socket walks the stream's stages: `<open/>` → features
//! (SASL SCRAM-SHA-256, SCRAM-SHA-1 with the stored credentials (`super::scram`), and PLAIN:
//! the password, a token from `/restapi/v1/auth/token` so a browser never holds the real
//! password, or a site user's site token) → `<success/>` → a new `<open/>` → features (bind, session) →
//! resource binding, which attaches the connection to the router as a station of its own
//! (door `xmpp`). From then on stanzas go through the shared dispatcher
//! ([`super::stanza::dispatch`]) one at a time, in order, and the station's events come back
//! rendered as stanzas ([`super::render`]). A malformed frame ends this stream with a stream
//! error and never affects another; a refused stanza gets a stanza error.

use std::collections::HashSet;
use std::time::Instant;

use actix::prelude::*;
use actix_web::{web, HttpRequest, HttpResponse};
use actix_web_actors::ws;
use base64::Engine;
use bytestring::ByteString;
use switchboard_actors::model::records::AccountKind;
use switchboard_actors::model::scram::ScramMechanism;
use switchboard_actors::random::random_hex;
use switchboard_actors::router::Attach;
use switchboard_actors::{Event, Push};

use super::ns;
use super::render;
use super::scram::{parse_client_first, ScramExchange};
use super::stanza::{dispatch, error_reply, is_stanza, submit_message, Origin, Refused};
use super::xml::{parse_element, Element, XmlError};
use crate::binding::Binding;
use crate::config::secs;
use crate::error::ApiError;
use crate::outbox::{MeteredBody, OutboxBudget};
use crate::state::AppState;

/// Failed SASL attempts before the stream is closed.
const MAX_AUTH_FAILURES: u32 = 3;

/// `GET /xmpp-websocket`: upgrade with the `xmpp` subprotocol.
pub async fn open(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let offered = req
        .headers()
        .get_all("sec-websocket-protocol")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim() == "xmpp");
    if !offered {
        return Err(ApiError::bad_request("XMPP over WebSocket needs the subprotocol 'xmpp' (RFC 7395 §3.1)"));
    }
    let mut response = ws::handshake_with_protocols(&req, &["xmpp"])
        .map_err(|e| ApiError::bad_request(format!("not a websocket handshake: {e}")))?;
    let budget = OutboxBudget::new(state.config.limits.outbox_bytes);
    let max = state.config.limits.max_body_bytes;
    let actor = XmppConnection {
        state: state.clone(),
        budget: budget.clone(),
        stream_id: random_hex(8),
        stage: Stage::Opening,
        username: None,
        resource: None,
        binding: None,
        auth_failures: 0,
        scram: None,
        own_occupants: HashSet::new(),
        highest_seq: 0,
        last_heard: Instant::now(),
    };
    let frames = ws::WebsocketContext::with_codec(actor, payload, actix_http::ws::Codec::new().max_size(max));
    Ok(response.streaming(MeteredBody { inner: Box::pin(frames), budget }))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Waiting for the first `<open/>`.
    Opening,
    /// Opened; waiting for SASL.
    Authenticating,
    /// Authenticated; waiting for the restarted `<open/>`.
    Reopening,
    /// Authenticated and reopened; waiting for resource binding.
    Binding,
    /// Bound: stanzas flow.
    Bound,
    Closed,
}

/// One XMPP-over-WebSocket connection.
pub struct XmppConnection {
    state: web::Data<AppState>,
    budget: OutboxBudget,
    stream_id: String,
    stage: Stage,
    username: Option<String>,
    resource: Option<String>,
    binding: Option<Binding>,
    auth_failures: u32,
    /// A SCRAM exchange waiting for the client's final message.
    scram: Option<ScramExchange>,
    /// `room@service/nick` addresses this connection occupies: their presence is its own.
    own_occupants: HashSet<String>,
    highest_seq: i64,
    last_heard: Instant,
}

type Ctx = ws::WebsocketContext<XmppConnection>;

fn stream_features(children: Vec<Element>) -> Element {
    let mut features = Element::new("stream:features", "").attr("xmlns:stream", ns::STREAMS);
    for child in children {
        features = features.child(child);
    }
    features
}

impl XmppConnection {
    fn domain(&self) -> &str {
        self.state.domain()
    }

    fn full_address(&self) -> String {
        format!(
            "{}@{}/{}",
            self.username.as_deref().unwrap_or_default(),
            self.domain(),
            self.resource.as_deref().unwrap_or_default()
        )
    }

    /// An event from the station, as this connection's stanza (a room's self-presence gets
    /// status 110); events with no XMPP form are skipped.
    fn push_event(&mut self, event: &Event, ctx: &mut Ctx) {
        if !event.first_time(&mut self.highest_seq) {
            return;
        }
        let hosts = &self.state.hosts;
        let user = self.username.as_deref().unwrap_or_default();
        let own = render::own_occupant_presence(event, hosts, user, &self.own_occupants);
        if let Some(frame) = own.or_else(|| render::frame(event, hosts)) {
            self.send_text(frame, ctx);
        }
    }

    fn send_text(&mut self, text: ByteString, ctx: &mut Ctx) {
        if !self.budget.try_take(text.len()) {
            tracing::info!("closing a slow XMPP client: outbox full");
            self.stream_error("policy-violation", "the client is not reading fast enough", ctx);
            return;
        }
        ctx.text(text);
    }

    fn send(&mut self, element: &Element, ctx: &mut Ctx) {
        self.send_text(ByteString::from(element.to_xml()), ctx);
    }

    /// Ends this stream with a stream error (RFC 6120 §4.9), then closes the socket.
    fn stream_error(&mut self, condition: &str, text: &str, ctx: &mut Ctx) {
        if self.stage == Stage::Closed {
            return;
        }
        self.stage = Stage::Closed;
        let error = stream_features(Vec::new());
        let error = Element { name: "stream:error".into(), ..error }
            .child(Element::new(condition, ns::STREAM_ERRORS))
            .child(Element::new("text", ns::STREAM_ERRORS).text(text));
        ctx.text(error.to_xml());
        ctx.text(Element::new("close", ns::FRAMING).to_xml());
        ctx.close(Some(ws::CloseReason { code: ws::CloseCode::Normal, description: Some(condition.to_owned()) }));
        ctx.stop();
    }

    fn handle_frame(&mut self, text: &str, ctx: &mut Ctx) {
        let max = self.state.config.limits.max_body_bytes;
        let element = match parse_element(text, max, ns::CLIENT) {
            Ok(element) => element,
            Err(e @ XmlError::TooLarge(..)) => return self.stream_error("policy-violation", &e.to_string(), ctx),
            Err(e @ XmlError::Restricted(_)) => return self.stream_error("restricted-xml", &e.to_string(), ctx),
            Err(e) => return self.stream_error("not-well-formed", &e.to_string(), ctx),
        };
        match (element.ns.as_str(), element.name.as_str(), self.stage) {
            (ns::FRAMING, "open", Stage::Opening | Stage::Reopening) => self.opened(&element, ctx),
            (ns::FRAMING, "close", _) => {
                self.stage = Stage::Closed;
                ctx.text(Element::new("close", ns::FRAMING).to_xml());
                ctx.close(Some(ws::CloseReason { code: ws::CloseCode::Normal, description: None }));
                ctx.stop();
            }
            (ns::SASL, "auth", Stage::Authenticating) if self.scram.is_none() => self.authenticate(&element, ctx),
            (ns::SASL, "response", Stage::Authenticating) if self.scram.is_some() => self.scram_final(&element, ctx),
            (ns::SASL, "abort", Stage::Authenticating) => {
                self.scram = None;
                self.send(&Element::new("failure", ns::SASL).child(Element::new("aborted", ns::SASL)), ctx)
            }
            (ns::CLIENT, "iq", Stage::Binding) if element.find("bind", ns::BIND).is_some() => self.bind(element, ctx),
            (_, _, Stage::Bound) if is_stanza(&element) => self.stanza(element, ctx),
            (_, _, Stage::Binding) if is_stanza(&element) => {
                let refused = Refused { condition: "not-authorized", ..Refused::bad_request("bind a resource first") };
                let reply = error_reply(&element, &refused, "");
                self.send(&reply, ctx);
            }
            (_, _, Stage::Opening) => self.stream_error("not-authorized", "the stream starts with <open/>", ctx),
            (_, _, Stage::Authenticating | Stage::Reopening) if is_stanza(&element) => {
                self.stream_error("not-authorized", "authenticate first", ctx)
            }
            (namespace, name, _) => {
                let text = format!("<{name} xmlns='{namespace}'> is not expected here");
                self.stream_error("unsupported-stanza-type", &text, ctx)
            }
        }
    }

    fn opened(&mut self, open: &Element, ctx: &mut Ctx) {
        let to = open.get_attr("to").unwrap_or_default();
        if to != self.domain() {
            let text = format!("this server serves '{}', not '{to}'", self.domain());
            self.send(&self.open_reply(), ctx);
            return self.stream_error("host-unknown", &text, ctx);
        }
        self.send(&self.open_reply(), ctx);
        let features = if self.stage == Stage::Opening {
            self.stage = Stage::Authenticating;
            let mechanisms = Element::new("mechanisms", ns::SASL)
                .text_child("mechanism", ns::SASL, ScramMechanism::Sha256.name())
                .text_child("mechanism", ns::SASL, ScramMechanism::Sha1.name())
                .text_child("mechanism", ns::SASL, "PLAIN");
            stream_features(vec![mechanisms])
        } else {
            self.stage = Stage::Binding;
            let session = Element::new("session", ns::SESSION).child(Element::new("optional", ns::SESSION));
            stream_features(vec![Element::new("bind", ns::BIND), session])
        };
        self.send(&features, ctx);
    }

    fn open_reply(&self) -> Element {
        Element::new("open", ns::FRAMING)
            .attr("from", self.domain())
            .attr("id", self.stream_id.clone())
            .attr("version", "1.0")
            .attr("xml:lang", "en")
    }

    fn sasl_failure(&mut self, condition: &str, text: &str, ctx: &mut Ctx) {
        self.auth_failures += 1;
        let failure = Element::new("failure", ns::SASL)
            .child(Element::new(condition, ns::SASL))
            .child(Element::new("text", ns::SASL).text(text));
        self.send(&failure, ctx);
        if self.auth_failures >= MAX_AUTH_FAILURES {
            self.stream_error("not-authorized", "too many failed authentication attempts", ctx);
        }
    }

    fn authenticate(&mut self, auth: &Element, ctx: &mut Ctx) {
        let mechanism = auth.get_attr("mechanism").unwrap_or_default().to_owned();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.text_content().trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok());
        if let Some(scram) = ScramMechanism::from_name(&mechanism) {
            return match decoded {
                Some(first) => self.scram_first(scram, first, ctx),
                None => self.sasl_failure("incorrect-encoding", "the SCRAM message is not base64 of UTF-8", ctx),
            };
        }
        if mechanism != "PLAIN" {
            return self.sasl_failure(
                "invalid-mechanism",
                "the mechanisms are SCRAM-SHA-256, SCRAM-SHA-1 and PLAIN",
                ctx,
            );
        }
        let Some(decoded) = decoded else {
            return self.sasl_failure("incorrect-encoding", "the PLAIN message is not base64 of UTF-8", ctx);
        };
        let parts: Vec<&str> = decoded.split('\0').collect();
        let [authzid, username, password] = parts[..] else {
            return self.sasl_failure("malformed-request", "PLAIN is authzid NUL authcid NUL password", ctx);
        };
        let username = username.to_owned();
        let own = format!("{username}@{}", self.domain());
        if !authzid.is_empty() && authzid != username && authzid != own {
            return self.sasl_failure("invalid-authzid", "you may only act as yourself", ctx);
        }
        let password = password.to_owned();
        let state = self.state.clone();
        let check = async move { state.auth.verify_plain(&username, &password).await };
        ctx.wait(check.into_actor(self).map(|result, act, ctx| match result {
            Ok(caller) => {
                act.username = Some(caller.username);
                act.stage = Stage::Reopening;
                act.send(&Element::new("success", ns::SASL), ctx);
            }
            Err(e) => act.sasl_failure("not-authorized", &e.message, ctx),
        }));
    }

    /// SCRAM's first round: the client's first message in, the server's (salt, iterations,
    /// nonce) out as a challenge.
    fn scram_first(&mut self, mechanism: ScramMechanism, first: String, ctx: &mut Ctx) {
        let username = match parse_client_first(&first) {
            Ok((_, _, username, _)) => username,
            Err(why) => return self.sasl_failure("malformed-request", &why, ctx),
        };
        if let Err(e) = self.state.auth.check_not_locked(&username) {
            return self.sasl_failure("temporary-auth-failure", &e.message, ctx);
        }
        let state = self.state.clone();
        let lookup = async move { state.accounts.find(&username).await };
        ctx.wait(lookup.into_actor(self).map(move |found, act, ctx| {
            let account = match found {
                Ok(account) => account,
                Err(e) => return act.sasl_failure("temporary-auth-failure", &e.to_string(), ctx),
            };
            if account.as_ref().is_some_and(|a| a.locked) {
                return act.sasl_failure("account-disabled", "the account is locked out by the administrator", ctx);
            }
            // A site user has no password, so no credentials: it signs in with its site's token.
            let keys = account
                .filter(|a| a.kind != AccountKind::Site)
                .and_then(|a| a.scram.into_iter().find(|k| k.mechanism == mechanism));
            match ScramExchange::start(mechanism, &first, keys, act.state.auth.scram_salt_key()) {
                Ok(exchange) => {
                    let challenge = base64::engine::general_purpose::STANDARD.encode(&exchange.server_first);
                    act.scram = Some(exchange);
                    act.send(&Element::new("challenge", ns::SASL).text(challenge), ctx);
                }
                Err(why) => act.sasl_failure("malformed-request", &why, ctx),
            }
        }));
    }

    /// SCRAM's last round: the client's proof in; success with the server's signature.
    fn scram_final(&mut self, response: &Element, ctx: &mut Ctx) {
        let Some(exchange) = self.scram.take() else { return };
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(response.text_content().trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok());
        let Some(decoded) = decoded else {
            return self.sasl_failure("incorrect-encoding", "the SCRAM message is not base64 of UTF-8", ctx);
        };
        match exchange.finish(&decoded) {
            Ok(server_final) => {
                self.username = Some(exchange.username);
                self.stage = Stage::Reopening;
                let answer = base64::engine::general_purpose::STANDARD.encode(server_final);
                self.send(&Element::new("success", ns::SASL).text(answer), ctx);
            }
            Err(why) => {
                self.state.auth.record_failure(&exchange.username);
                self.sasl_failure("not-authorized", &why, ctx);
            }
        }
    }

    fn bind(&mut self, iq: Element, ctx: &mut Ctx) {
        let username = self.username.clone().unwrap_or_default();
        let attach = Attach { username, stream_id: None, connection: ctx.address().recipient(), door: "xmpp" };
        let attached = self.state.router.send(attach);
        ctx.wait(attached.into_actor(self).map(move |result, act, ctx| {
            let outcome = match result {
                Ok(Ok(attached)) => Ok(attached),
                Ok(Err(e)) => Err(Refused::from(e)),
                Err(e) => Err(Refused::from(e)),
            };
            match outcome {
                Ok(attached) => {
                    act.resource = Some(attached.station.resource.clone());
                    act.binding = Some(Binding::User {
                        router: act.state.router.clone(),
                        session: attached.station.session.clone(),
                        username: attached.station.username.clone(),
                        resource: attached.station.resource.clone(),
                        connection_id: attached.connection_id,
                    });
                    act.stage = Stage::Bound;
                    let jid = act.full_address();
                    let result = Element::new("iq", ns::CLIENT)
                        .attr("type", "result")
                        .attr("id", iq.get_attr("id").unwrap_or_default())
                        .child(Element::new("bind", ns::BIND).text_child("jid", ns::BIND, jid));
                    act.send(&result, ctx);
                }
                Err(refused) => {
                    let reply = error_reply(&iq, &refused, "");
                    act.send(&reply, ctx);
                }
            }
        }));
    }

    /// Notes room joins and leaves, so that this connection's own occupant presence is
    /// marked as its own.
    fn track_occupancy(&mut self, stanza: &Element) {
        if stanza.name != "presence" {
            return;
        }
        let Some(to) = stanza.get_attr("to") else { return };
        let Some((bare, _nick)) = to.split_once('/') else { return };
        if self.state.muc.room_of_address(bare).is_none() {
            return;
        }
        match stanza.get_attr("type") {
            None => {
                self.own_occupants.insert(to.to_owned());
            }
            Some("unavailable") => {
                self.own_occupants.remove(to);
            }
            _ => {}
        }
    }

    fn stanza(&mut self, stanza: Element, ctx: &mut Ctx) {
        self.track_occupancy(&stanza);
        let state = self.state.clone();
        let username = self.username.clone().unwrap_or_default();
        let resource = self.resource.clone().unwrap_or_default();
        // A message with a body (1:1 or groupchat) is handed to the core now, in order, and
        // the next frame need not wait for its commit; only a refusal comes back, as a
        // stanza error.
        let session = self.binding.as_ref().and_then(Binding::session).cloned();
        let origin = Origin { state: &state, username: &username, resource: &resource, session: session.as_ref() };
        if let Some(submitted) = submit_message(&origin, &stanza) {
            match submitted {
                Ok(stored) => {
                    ctx.spawn(stored.into_actor(self).map(move |outcome, act, ctx| {
                        if let Err(refused) = outcome {
                            act.refuse(&stanza, &refused, ctx);
                        }
                    }));
                }
                Err(refused) => self.refuse(&stanza, &refused, ctx),
            }
            return;
        }
        let handled = async move {
            let origin = Origin { state: &state, username: &username, resource: &resource, session: session.as_ref() };
            let outcome = dispatch(&origin, &stanza).await;
            (stanza, outcome)
        };
        // Every other stanza one at a time: the next frame waits until this one is done.
        ctx.wait(handled.into_actor(self).map(|(stanza, outcome), act, ctx| match outcome {
            Ok(replies) => {
                for reply in replies {
                    act.send(&reply, ctx);
                }
            }
            Err(refused) => act.refuse(&stanza, &refused, ctx),
        }));
    }

    /// Answers a refused stanza with its stanza error (never an error to an error).
    fn refuse(&mut self, stanza: &Element, refused: &Refused, ctx: &mut Ctx) {
        if stanza.get_attr("type") != Some("error") {
            let reply = error_reply(stanza, refused, &self.full_address());
            self.send(&reply, ctx);
        }
    }
}

impl Actor for XmppConnection {
    type Context = Ctx;

    fn started(&mut self, ctx: &mut Ctx) {
        let timeout = secs(self.state.config.websocket.timeout_secs);
        ctx.run_interval(secs(self.state.config.websocket.ping_secs), move |act, ctx| {
            if act.last_heard.elapsed() > timeout {
                act.stream_error("connection-timeout", "no traffic from the client", ctx);
            } else {
                ctx.ping(b"");
            }
        });
    }

    fn stopped(&mut self, _: &mut Ctx) {
        if let Some(binding) = self.binding.take() {
            binding.detach();
        }
    }
}

impl Handler<Push> for XmppConnection {
    type Result = ();

    fn handle(&mut self, msg: Push, ctx: &mut Ctx) {
        match msg {
            Push::Event(_) | Push::Events(_) => {
                for event in msg.events() {
                    self.push_event(event, ctx);
                }
            }
            Push::Close { reason } => {
                // The station already forgot this connection: no detach.
                self.binding = None;
                self.stream_error("reset", &reason, ctx);
            }
        }
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for XmppConnection {
    fn handle(&mut self, item: Result<ws::Message, ws::ProtocolError>, ctx: &mut Ctx) {
        self.last_heard = Instant::now();
        match item {
            Ok(ws::Message::Text(text)) => self.handle_frame(&text, ctx),
            Ok(ws::Message::Binary(_)) => self.stream_error("bad-format", "XMPP frames are text (RFC 7395 §3.2)", ctx),
            Ok(ws::Message::Continuation(_)) => {
                self.stream_error("bad-format", "fragmented frames are not supported", ctx)
            }
            Ok(ws::Message::Ping(payload)) => ctx.pong(&payload),
            Ok(ws::Message::Pong(_)) | Ok(ws::Message::Nop) => {}
            Ok(ws::Message::Close(reason)) => {
                self.stage = Stage::Closed;
                ctx.close(reason);
                ctx.stop();
            }
            Err(ws::ProtocolError::Overflow) => {
                self.stream_error("policy-violation", "the frame is larger than limits.max_body_bytes", ctx)
            }
            Err(e) => self.stream_error("not-well-formed", &e.to_string(), ctx),
        }
    }
}
