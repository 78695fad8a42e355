//! One XMPP client stream (RFC 6120), whatever carries it: an [`XmppSession`] actor per
//! connection walks the stream's stages, and a [`Link`] (the websocket door's or the TCP
//! door's) carries its bytes and says how secure the connection is.
//!
//! Stages: stream header → features (STARTTLS where the link can; SASL SCRAM-SHA-256 and
//! SCRAM-SHA-1, `-PLUS` over TLS, with the stored credentials (`super::scram`), and PLAIN: the
//! password, a token from `/restapi/v1/auth/token`, or a site user's site token) →
//! `<success/>` → a restarted stream → features (bind, session) → resource binding, which
//! attaches the connection to the router as a station of its own (door `xmpp`). From then on
//! stanzas go through the shared dispatcher ([`super::stanza::dispatch`]) one at a time, in
//! order, and the station's events come back rendered as stanzas ([`super::render`]). A
//! malformed part ends this stream with a stream error and never affects another; a refused
//! stanza gets a stanza error.

use std::collections::HashSet;
use std::time::Instant;

use actix::dev::ToEnvelope;
use actix::prelude::*;
use actix_web::web;
use base64::Engine;
use bytestring::ByteString;
use switchboard_actors::model::records::AccountKind;
use switchboard_actors::model::scram::ScramMechanism;
use switchboard_actors::random::random_hex;
use switchboard_actors::router::Attach;
use switchboard_actors::user_session::ReturnUndelivered;
use switchboard_actors::{Event, Payload, Push};

use super::ns;
use super::render;
use super::scram::{parse_client_first, ChannelBindings, ScramExchange};
use super::sm::{self, StreamManagement};
use super::stanza::{dispatch, error_reply, is_stanza, submit_message, Origin, Refused};
use super::xml::Element;
use crate::binding::Binding;
use crate::config::secs;
use crate::outbox::OutboxBudget;
use crate::state::AppState;

/// Failed SASL attempts before the stream is closed.
const MAX_AUTH_FAILURES: u32 = 3;

/// How long after a stanza the server asks for an acknowledgement (XEP-0198 `<r/>`), for
/// everything sent meanwhile.
const ACK_REQUEST_DELAY: std::time::Duration = std::time::Duration::from_millis(500);

/// What carries one stream: the websocket door's frames or a TCP connection.
pub trait Link: Sized + Unpin + 'static {
    type Context: ActorContext + AsyncContext<XmppSession<Self>> + ToEnvelope<XmppSession<Self>, Push>;
    /// Whether a stream error before the stream header must send the header first (TCP:
    /// RFC 6120 §4.9.1.1); the websocket framing has no such rule.
    const HEADER_BEFORE_ERROR: bool;

    /// Queues `text` for the client (already counted against the outbox budget).
    fn write(&mut self, ctx: &mut Self::Context, text: ByteString);
    /// Closes the connection after what was queued; `reason` may be empty.
    fn close(&mut self, ctx: &mut Self::Context, reason: &str);
    /// The server's stream header.
    fn header(&self, from: &str, id: &str) -> String;
    /// What ends the server's stream.
    fn footer(&self) -> &'static str;
    /// Checks the client's stream header (its element name and namespace).
    fn check_header(open: &Element) -> Result<(), String>;
    fn security(&self) -> &Security;
    /// Called once the actor runs (timers of the transport's own).
    fn started(_session: &mut XmppSession<Self>, _ctx: &mut Self::Context) {}
    /// Makes the stream resumable under `id` (XEP-0198); false where the transport cannot
    /// take a stream over from another connection.
    fn offer_resumption(&mut self, _ctx: &mut Self::Context, _id: &str, _username: &str) -> bool {
        false
    }
    /// The stream is no longer resumable under `id`.
    fn forget_resumption(&mut self, _id: &str) {}
}

/// How secure a connection is, and what that allows.
#[derive(Debug, Clone, Default)]
pub struct Security {
    /// STARTTLS can be offered (the link has a TLS configuration).
    pub tls_available: bool,
    pub encrypted: bool,
    /// SASL may go ahead without TLS (the websocket door, whose TLS is its proxy's; a
    /// loopback TCP client where configured).
    pub plain_allowed: bool,
    pub channel_bindings: ChannelBindings,
}

impl Security {
    pub fn can_start_tls(&self) -> bool {
        self.tls_available && !self.encrypted
    }

    pub fn sasl_allowed(&self) -> bool {
        self.encrypted || self.plain_allowed
    }
}

/// One part of the client's stream, in the order it came.
#[derive(Debug, Message)]
#[rtype(result = "Flow")]
pub enum Inbound {
    /// A stream header (a first one, or a restart after STARTTLS or SASL).
    Open(Element),
    Element(Element),
    /// The client ended its stream.
    Close,
    /// The connection is gone.
    Lost,
    /// Nothing came from the client for too long.
    Silent,
}

/// What the transport does next.
#[derive(Debug, Clone, PartialEq, Eq, MessageResponse)]
pub enum Flow {
    Continue,
    /// `<proceed/>` was queued: write it, then start TLS and a new stream.
    StartTls,
    /// The client asks to resume stream `previd` of `username` (XEP-0198), having handled
    /// `h` of its stanzas: the transport hands itself to that stream, or answers that it
    /// cannot ([`XmppSession::resume_failed`]).
    Resume {
        previd: String,
        h: u32,
        username: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stage {
    /// Waiting for the first stream header (or the one after STARTTLS).
    Opening,
    /// Opened; waiting for STARTTLS or SASL.
    Authenticating,
    /// Authenticated; waiting for the restarted stream.
    Reopening,
    /// Authenticated and reopened; waiting for resource binding.
    Binding,
    /// Bound: stanzas flow.
    Bound,
    Closed,
}

/// One XMPP client stream.
pub struct XmppSession<L: Link> {
    pub(super) link: L,
    state: web::Data<AppState>,
    pub(super) budget: OutboxBudget,
    stream_id: String,
    pub(super) stage: Stage,
    header_sent: bool,
    username: Option<String>,
    resource: Option<String>,
    binding: Option<Binding>,
    auth_failures: u32,
    /// A SCRAM exchange waiting for the client's final message (boxed, as `sm`: held by
    /// few streams, so kept out of every idle one).
    scram: Option<Box<ScramExchange>>,
    /// `room@service/nick` addresses this connection occupies: their presence is its own.
    own_occupants: HashSet<String>,
    /// XEP-0198, once the client enabled it.
    pub(super) sm: Option<Box<StreamManagement>>,
    /// The connection is gone and the stream waits to be resumed; the number tells one wait
    /// from the next.
    pub(super) detached: Option<u64>,
    /// The client asked for copies of its user's messages on other stations (XEP-0280).
    carbons: bool,
    highest_seq: i64,
    pub(super) last_heard: Instant,
}

type Ctx<L> = <L as Link>::Context;

impl<L: Link> XmppSession<L> {
    pub fn new(state: web::Data<AppState>, link: L, budget: OutboxBudget) -> Self {
        XmppSession {
            link,
            state,
            budget,
            stream_id: random_hex(8),
            stage: Stage::Opening,
            header_sent: false,
            username: None,
            resource: None,
            binding: None,
            auth_failures: 0,
            scram: None,
            own_occupants: HashSet::new(),
            sm: None,
            detached: None,
            carbons: false,
            highest_seq: 0,
            last_heard: Instant::now(),
        }
    }

    pub(super) fn state(&self) -> &AppState {
        &self.state
    }

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
    fn push_event(&mut self, event: &Event, ctx: &mut Ctx<L>) {
        if !event.first_time(&mut self.highest_seq) {
            return;
        }
        if !self.carbons && matches!(event.payload, Payload::Copy { .. }) {
            return;
        }
        let hosts = &self.state.hosts;
        let user = self.username.as_deref().unwrap_or_default();
        let own = render::own_occupant_presence(event, hosts, user, &self.own_occupants);
        if let Some(frame) = own.or_else(|| render::frame(event, hosts)) {
            let message_id = match &event.payload {
                Payload::Message { message, .. } => Some(message.id),
                _ => None,
            };
            self.send_stanza_text(frame, message_id, ctx);
        }
    }

    fn send_text(&mut self, text: ByteString, ctx: &mut Ctx<L>) {
        self.send_stanza_text(text, None, ctx)
    }

    /// Writes a stanza (`message_id`: the stored message it carries); with stream
    /// management it is kept until the client acknowledges it, and while the stream waits
    /// for a resumption it is only kept.
    fn send_stanza_text(&mut self, text: ByteString, message_id: Option<i64>, ctx: &mut Ctx<L>) {
        if let Some(sm) = &mut self.sm {
            sm.sent_one(text.clone(), message_id);
            if sm.unacked_bytes() > self.state.config.limits.outbox_bytes {
                tracing::info!("closing an XMPP stream: too much unacknowledged");
                return self.stream_error("policy-violation", "the client does not acknowledge what it gets", ctx);
            }
            if self.detached.is_some() {
                return;
            }
            self.request_ack_soon(ctx);
        }
        if !self.budget.try_take(text.len()) {
            tracing::info!("closing a slow XMPP client: outbox full");
            self.stream_error("policy-violation", "the client is not reading fast enough", ctx);
            return;
        }
        self.link.write(ctx, text);
    }

    /// Stream management elements (`<enabled/>`, `<a/>`, `<r/>`…) are not stanzas: not
    /// counted.
    fn send_nonza(&mut self, element: &Element, ctx: &mut Ctx<L>) {
        self.link.write(ctx, ByteString::from(element.to_xml()));
    }

    /// Asks the client for an acknowledgement shortly, once for everything sent meanwhile.
    fn request_ack_soon(&mut self, ctx: &mut Ctx<L>) {
        let Some(sm) = &mut self.sm else { return };
        if sm.ack_requested {
            return;
        }
        sm.ack_requested = true;
        ctx.run_later(ACK_REQUEST_DELAY, |act, ctx| {
            if act.detached.is_some() || act.stage != Stage::Bound {
                return;
            }
            if let Some(sm) = &mut act.sm {
                sm.ack_requested = false;
                if sm.unacked().next().is_some() {
                    act.send_nonza(&Element::new("r", sm::NS), ctx);
                }
            }
        });
    }

    /// XEP-0198 elements from the client.
    fn stream_management(&mut self, element: &Element, ctx: &mut Ctx<L>) -> Flow {
        match (element.name.as_str(), self.stage) {
            ("enable", Stage::Bound) if self.sm.is_none() => {
                let wants_resume = matches!(element.get_attr("resume"), Some("true" | "1"));
                let username = self.username.clone().unwrap_or_default();
                let id = random_hex(16);
                let resumable = wants_resume && self.link.offer_resumption(ctx, &id, &username);
                let mut enabled = Element::new("enabled", sm::NS);
                if resumable {
                    let max = self.state.config.xmpp.resume_secs.round() as u64;
                    enabled = enabled.attr("id", id.clone()).attr("resume", "true").attr("max", max.to_string());
                }
                self.sm = Some(Box::new(StreamManagement::new(resumable.then_some(id))));
                self.send_nonza(&enabled, ctx);
            }
            ("enable", _) => {
                let failed = Element::new("failed", sm::NS).child(Element::new("unexpected-request", ns::STANZAS));
                self.send_nonza(&failed, ctx);
            }
            ("r", Stage::Bound) if self.sm.is_some() => {
                let handled = self.sm.as_ref().map_or(0, |sm| sm.handled);
                self.send_nonza(&Element::new("a", sm::NS).attr("h", handled.to_string()), ctx);
            }
            ("a", Stage::Bound) if self.sm.is_some() => {
                let h = element.get_attr("h").and_then(|h| h.parse::<u32>().ok());
                let acknowledged = match (h, &mut self.sm) {
                    (Some(h), Some(sm)) => sm.acknowledge(h),
                    _ => Err("<a/> carries h, a number".into()),
                };
                if let Err(text) = acknowledged {
                    self.stream_error("undefined-condition", &text, ctx);
                }
            }
            ("resume", Stage::Binding) => {
                let previd = element.get_attr("previd").unwrap_or_default().to_owned();
                match element.get_attr("h").and_then(|h| h.parse::<u32>().ok()) {
                    Some(h) if !previd.is_empty() => {
                        let username = self.username.clone().unwrap_or_default();
                        return Flow::Resume { previd, h, username };
                    }
                    _ => self.resume_failed("bad-request", ctx),
                }
            }
            (name, _) => {
                let text = format!("<{name} xmlns='{}'> is not expected here", sm::NS);
                self.stream_error("unsupported-stanza-type", &text, ctx);
            }
        }
        Flow::Continue
    }

    /// The stream named in `<resume/>` cannot be resumed: the client may bind afresh.
    pub(super) fn resume_failed(&mut self, condition: &str, ctx: &mut Ctx<L>) {
        let failed = Element::new("failed", sm::NS).child(Element::new(condition, ns::STANZAS));
        self.send_nonza(&failed, ctx);
    }

    /// This stream takes over a new connection (XEP-0198 resumption): `h` is what the client
    /// handled; answers `<resumed/>` and sends again what the client did not get.
    pub(super) fn resumed(&mut self, h: u32, ctx: &mut Ctx<L>) -> Result<(), String> {
        let (Some(sm), true) = (&mut self.sm, self.stage == Stage::Bound) else {
            return Err("the stream is not resumable".into());
        };
        sm.acknowledge(h)?;
        self.detached = None;
        let resumed = Element::new("resumed", sm::NS)
            .attr("h", sm.handled.to_string())
            .attr("previd", sm.id.clone().unwrap_or_default());
        let again: Vec<ByteString> = sm.unacked().cloned().collect();
        self.send_nonza(&resumed, ctx);
        for stanza in again {
            if self.budget.try_take(stanza.len()) {
                self.link.write(ctx, stanza);
            }
        }
        self.request_ack_soon(ctx);
        Ok(())
    }

    /// The connection is gone: a resumable stream waits `xmpp.resume_secs` for its client,
    /// keeping what comes meanwhile; any other ends.
    pub(super) fn connection_lost(&mut self, ctx: &mut Ctx<L>) {
        let resumable = self.stage == Stage::Bound && self.sm.as_ref().is_some_and(|sm| sm.id.is_some());
        if !resumable {
            self.stage = Stage::Closed;
            ctx.stop();
            return;
        }
        let wait = self.detached.map_or(1, |n| n + 1);
        self.detached = Some(wait);
        ctx.run_later(secs(self.state.config.xmpp.resume_secs), move |act, ctx| {
            if act.detached == Some(wait) {
                act.stage = Stage::Closed;
                ctx.stop();
            }
        });
    }

    fn send(&mut self, element: &Element, ctx: &mut Ctx<L>) {
        self.send_text(ByteString::from(element.to_xml()), ctx);
    }

    /// Ends this stream with a stream error (RFC 6120 §4.9), then closes the connection.
    pub(super) fn stream_error(&mut self, condition: &str, text: &str, ctx: &mut Ctx<L>) {
        if self.stage == Stage::Closed {
            return;
        }
        if !self.header_sent && L::HEADER_BEFORE_ERROR {
            let header = self.link.header(self.domain(), &self.stream_id);
            self.link.write(ctx, ByteString::from(header));
        }
        self.stage = Stage::Closed;
        let error = Element::new("stream:error", "")
            .attr("xmlns:stream", ns::STREAMS)
            .child(Element::new(condition, ns::STREAM_ERRORS))
            .child(Element::new("text", ns::STREAM_ERRORS).text(text));
        self.link.write(ctx, ByteString::from(error.to_xml()));
        let footer = self.link.footer();
        self.link.write(ctx, ByteString::from_static(footer));
        self.link.close(ctx, condition);
    }

    /// One part of the stream from the client, in order.
    pub(super) fn inbound(&mut self, part: Inbound, ctx: &mut Ctx<L>) -> Flow {
        let element = match (part, self.stage) {
            (_, Stage::Closed) => return Flow::Continue,
            (Inbound::Open(open), Stage::Opening | Stage::Reopening) => {
                self.opened(&open, ctx);
                return Flow::Continue;
            }
            (Inbound::Open(_), _) => {
                self.stream_error("not-authorized", "the stream may restart only after STARTTLS or SASL", ctx);
                return Flow::Continue;
            }
            (Inbound::Close, _) => {
                self.stage = Stage::Closed;
                let footer = self.link.footer();
                self.link.write(ctx, ByteString::from_static(footer));
                self.link.close(ctx, "");
                return Flow::Continue;
            }
            (Inbound::Lost, _) => {
                self.connection_lost(ctx);
                return Flow::Continue;
            }
            (Inbound::Silent, _) => {
                self.stream_error("connection-timeout", "no traffic from the client", ctx);
                return Flow::Continue;
            }
            (Inbound::Element(element), _) => element,
        };
        if element.ns == sm::NS {
            return self.stream_management(&element, ctx);
        }
        let security = self.link.security();
        match (element.ns.as_str(), element.name.as_str(), self.stage) {
            (ns::TLS, "starttls", Stage::Authenticating) if security.can_start_tls() => {
                self.link.write(ctx, ByteString::from(Element::new("proceed", ns::TLS).to_xml()));
                self.stage = Stage::Opening;
                self.header_sent = false;
                return Flow::StartTls;
            }
            (ns::SASL, "auth", Stage::Authenticating) if !security.sasl_allowed() => {
                self.sasl_failure("encryption-required", "this server requires STARTTLS before authentication", ctx)
            }
            (ns::SASL, "auth", Stage::Authenticating) if self.scram.is_none() => self.authenticate(&element, ctx),
            (ns::SASL, "response", Stage::Authenticating) if self.scram.is_some() => self.scram_final(&element, ctx),
            (ns::SASL, "abort", Stage::Authenticating) => {
                self.scram = None;
                self.send(&Element::new("failure", ns::SASL).child(Element::new("aborted", ns::SASL)), ctx)
            }
            (ns::CLIENT, "iq", Stage::Binding) if element.find("bind", ns::BIND).is_some() => self.bind(element, ctx),
            (_, _, Stage::Bound) if is_stanza(&element) => {
                if let Some(sm) = &mut self.sm {
                    sm.handled_one();
                }
                self.stanza(element, ctx)
            }
            (_, _, Stage::Binding) if is_stanza(&element) => {
                let refused = Refused { condition: "not-authorized", ..Refused::bad_request("bind a resource first") };
                let reply = error_reply(&element, &refused, "");
                self.send(&reply, ctx);
            }
            (_, _, Stage::Opening) => {
                self.stream_error("not-authorized", "the stream starts with a stream header", ctx)
            }
            (_, _, Stage::Authenticating | Stage::Reopening) if is_stanza(&element) => {
                self.stream_error("not-authorized", "authenticate first", ctx)
            }
            (namespace, name, _) => {
                let text = format!("<{name} xmlns='{namespace}'> is not expected here");
                self.stream_error("unsupported-stanza-type", &text, ctx)
            }
        }
        Flow::Continue
    }

    fn opened(&mut self, open: &Element, ctx: &mut Ctx<L>) {
        let header = self.link.header(self.domain(), &self.stream_id);
        self.link.write(ctx, ByteString::from(header));
        self.header_sent = true;
        if let Err(text) = L::check_header(open) {
            return self.stream_error("invalid-namespace", &text, ctx);
        }
        let to = open.get_attr("to").unwrap_or_default();
        if to != self.domain() {
            let text = format!("this server serves '{}', not '{to}'", self.domain());
            return self.stream_error("host-unknown", &text, ctx);
        }
        let features = if self.stage == Stage::Opening {
            self.stage = Stage::Authenticating;
            self.sasl_features()
        } else {
            self.stage = Stage::Binding;
            let session = Element::new("session", ns::SESSION).child(Element::new("optional", ns::SESSION));
            vec![Element::new("bind", ns::BIND), session, Element::new("sm", sm::NS)]
        };
        let mut element = Element::new("stream:features", "").attr("xmlns:stream", ns::STREAMS);
        for child in features {
            element = element.child(child);
        }
        self.send(&element, ctx);
    }

    /// Before authentication: STARTTLS where the transport can, and the SASL mechanisms where
    /// authentication may go ahead (`-PLUS` first when the TLS session gives a binding).
    fn sasl_features(&self) -> Vec<Element> {
        let security = self.link.security();
        let mut features = Vec::new();
        if security.can_start_tls() {
            let mut starttls = Element::new("starttls", ns::TLS);
            if !security.sasl_allowed() {
                starttls = starttls.child(Element::new("required", ns::TLS));
            }
            features.push(starttls);
        }
        if !security.sasl_allowed() {
            return features;
        }
        let bindings = &security.channel_bindings;
        let mut mechanisms = Element::new("mechanisms", ns::SASL);
        if bindings.any() {
            for mechanism in [ScramMechanism::Sha256, ScramMechanism::Sha1] {
                mechanisms = mechanisms.text_child("mechanism", ns::SASL, format!("{}-PLUS", mechanism.name()));
            }
        }
        let mechanisms = mechanisms
            .text_child("mechanism", ns::SASL, ScramMechanism::Sha256.name())
            .text_child("mechanism", ns::SASL, ScramMechanism::Sha1.name())
            .text_child("mechanism", ns::SASL, "PLAIN");
        features.push(mechanisms);
        if bindings.any() {
            let mut types = Element::new("sasl-channel-binding", ns::SASL_CB);
            for name in bindings.names() {
                types = types.child(Element::new("channel-binding", ns::SASL_CB).attr("type", name));
            }
            features.push(types);
        }
        features
    }

    fn sasl_failure(&mut self, condition: &str, text: &str, ctx: &mut Ctx<L>) {
        self.auth_failures += 1;
        let failure = Element::new("failure", ns::SASL)
            .child(Element::new(condition, ns::SASL))
            .child(Element::new("text", ns::SASL).text(text));
        self.send(&failure, ctx);
        if self.auth_failures >= MAX_AUTH_FAILURES {
            self.stream_error("not-authorized", "too many failed authentication attempts", ctx);
        }
    }

    fn authenticate(&mut self, auth: &Element, ctx: &mut Ctx<L>) {
        let mechanism = auth.get_attr("mechanism").unwrap_or_default().to_owned();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.text_content().trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok());
        let (base, plus) = match mechanism.strip_suffix("-PLUS") {
            Some(base) => (base, true),
            None => (mechanism.as_str(), false),
        };
        if let Some(scram) = ScramMechanism::from_name(base) {
            if plus && !self.link.security().channel_bindings.any() {
                return self.sasl_failure("invalid-mechanism", "-PLUS mechanisms need a TLS session", ctx);
            }
            return match decoded {
                Some(first) => self.scram_first(scram, plus, first, ctx),
                None => self.sasl_failure("incorrect-encoding", "the SCRAM message is not base64 of UTF-8", ctx),
            };
        }
        if mechanism != "PLAIN" {
            return self.sasl_failure(
                "invalid-mechanism",
                "the mechanisms are SCRAM-SHA-256(-PLUS), SCRAM-SHA-1(-PLUS) and PLAIN",
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
    fn scram_first(&mut self, mechanism: ScramMechanism, plus: bool, first: String, ctx: &mut Ctx<L>) {
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
            let bindings = &act.link.security().channel_bindings;
            let salt_key = act.state.auth.scram_salt_key();
            match ScramExchange::start(mechanism, &first, keys, salt_key, plus, bindings) {
                Ok(exchange) => {
                    let challenge = base64::engine::general_purpose::STANDARD.encode(&exchange.server_first);
                    act.scram = Some(Box::new(exchange));
                    act.send(&Element::new("challenge", ns::SASL).text(challenge), ctx);
                }
                Err(why) => act.sasl_failure("malformed-request", &why, ctx),
            }
        }));
    }

    /// SCRAM's last round: the client's proof in; success with the server's signature.
    fn scram_final(&mut self, response: &Element, ctx: &mut Ctx<L>) {
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

    fn bind(&mut self, iq: Element, ctx: &mut Ctx<L>) {
        let username = self.username.clone().unwrap_or_default();
        // Always a station of its own: the resource asked for, or one made up (empty).
        let wanted = iq.find("bind", ns::BIND).and_then(|bind| bind.child_text("resource", ns::BIND));
        let attach = Attach {
            username,
            stream_id: None,
            resource: Some(wanted.unwrap_or_default()),
            connection: ctx.address().recipient(),
            door: "xmpp",
        };
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

    /// XEP-0280 `<enable/>` or `<disable/>`: this connection's own setting, answered here.
    fn carbons_setting(&mut self, stanza: &Element, ctx: &mut Ctx<L>) -> bool {
        if stanza.name != "iq" || stanza.get_attr("type") != Some("set") {
            return false;
        }
        let Some(setting) = stanza.elements().next().filter(|e| e.ns == ns::CARBONS) else { return false };
        let enable = match setting.name.as_str() {
            "enable" => true,
            "disable" => false,
            _ => return false,
        };
        if stanza.get_attr("to").is_some_and(|to| to != self.domain() && !to.starts_with(&self.own_bare())) {
            return false;
        }
        self.carbons = enable;
        let result = Element::new("iq", ns::CLIENT)
            .attr("type", "result")
            .attr("id", stanza.get_attr("id").unwrap_or_default())
            .attr("to", self.full_address());
        self.send(&result, ctx);
        true
    }

    fn own_bare(&self) -> String {
        format!("{}@{}", self.username.as_deref().unwrap_or_default(), self.domain())
    }

    fn stanza(&mut self, stanza: Element, ctx: &mut Ctx<L>) {
        if self.carbons_setting(&stanza, ctx) {
            return;
        }
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
    fn refuse(&mut self, stanza: &Element, refused: &Refused, ctx: &mut Ctx<L>) {
        if stanza.get_attr("type") != Some("error") {
            let reply = error_reply(stanza, refused, &self.full_address());
            self.send(&reply, ctx);
        }
    }
}

impl<L: Link> Actor for XmppSession<L> {
    type Context = L::Context;

    fn started(&mut self, ctx: &mut Ctx<L>) {
        L::started(self, ctx);
    }

    fn stopped(&mut self, _: &mut Ctx<L>) {
        if let Some(sm) = self.sm.take() {
            if let Some(id) = &sm.id {
                self.link.forget_resumption(id);
            }
            // What the client never acknowledged waits again for the user's next station.
            if let Some(Binding::User { session, resource, .. }) = &self.binding {
                session.do_send(ReturnUndelivered { resource: resource.clone(), ids: sm.unacked_messages() });
            }
        }
        if let Some(binding) = self.binding.take() {
            binding.detach();
        }
    }
}

impl<L: Link> Handler<Push> for XmppSession<L> {
    type Result = ();

    fn handle(&mut self, msg: Push, ctx: &mut Ctx<L>) {
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

impl<L: Link> Handler<Inbound> for XmppSession<L> {
    type Result = Flow;

    fn handle(&mut self, part: Inbound, ctx: &mut Ctx<L>) -> Flow {
        self.inbound(part, ctx)
    }
}
