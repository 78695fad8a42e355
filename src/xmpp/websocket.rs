//! XMPP over WebSocket (RFC 7395): `GET /xmpp-websocket`, subprotocol `xmpp`.
//!
//! The stream itself is [`super::session`]'s; this door is its framing: one text frame per
//! element, `<open/>` and `<close/>` in the framing namespace for the stream's ends, websocket
//! pings for liveness. The socket's TLS, where there is one, is its proxy's, so SASL is offered
//! at once and no channel binding is.

use actix::prelude::*;
use actix_web::{web, HttpRequest, HttpResponse};
use actix_web_actors::ws;
use bytestring::ByteString;

use super::ns;
use super::session::{Flow, Inbound, Link, Security, XmppSession};
use super::xml::{parse_element, Element, XmlError};
use crate::config::secs;
use crate::error::ApiError;
use crate::outbox::{MeteredBody, OutboxBudget};
use crate::state::AppState;

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
    let link = WsLink { security: Security { plain_allowed: true, ..Security::default() } };
    let actor = XmppSession::new(state.clone(), link, budget.clone());
    let frames = ws::WebsocketContext::with_codec(actor, payload, actix_http::ws::Codec::new().max_size(max));
    Ok(response.streaming(MeteredBody { inner: Box::pin(frames), budget }))
}

/// The websocket door's side of a stream.
pub struct WsLink {
    security: Security,
}

type Ctx = ws::WebsocketContext<XmppSession<WsLink>>;

impl Link for WsLink {
    type Context = Ctx;
    const HEADER_BEFORE_ERROR: bool = false;

    fn write(&mut self, ctx: &mut Ctx, text: ByteString) {
        ctx.text(text);
    }

    fn close(&mut self, ctx: &mut Ctx, reason: &str) {
        let description = (!reason.is_empty()).then(|| reason.to_owned());
        ctx.close(Some(ws::CloseReason { code: ws::CloseCode::Normal, description }));
        ctx.stop();
    }

    fn header(&self, from: &str, id: &str) -> String {
        Element::new("open", ns::FRAMING)
            .attr("from", from)
            .attr("id", id)
            .attr("version", "1.0")
            .attr("xml:lang", "en")
            .to_xml()
    }

    fn footer(&self) -> &'static str {
        "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>"
    }

    fn check_header(_open: &Element) -> Result<(), String> {
        // Only `<open xmlns='…framing'/>` becomes a header (see `frame`).
        Ok(())
    }

    fn security(&self) -> &Security {
        &self.security
    }

    fn started(session: &mut XmppSession<WsLink>, ctx: &mut Ctx) {
        let websocket = &session.state().config.websocket;
        let timeout = secs(websocket.timeout_secs);
        ctx.run_interval(secs(websocket.ping_secs), move |act, ctx| {
            if act.last_heard.elapsed() > timeout {
                act.stream_error("connection-timeout", "no traffic from the client", ctx);
            } else {
                ctx.ping(b"");
            }
        });
    }
}

impl XmppSession<WsLink> {
    /// One text frame: one element, or the framing's `<open/>` / `<close/>`.
    fn frame(&mut self, text: &str, ctx: &mut Ctx) {
        let max = self.state().config.limits.max_body_bytes;
        let element = match parse_element(text, max, ns::CLIENT) {
            Ok(element) => element,
            Err(e @ XmlError::TooLarge(..)) => return self.stream_error("policy-violation", &e.to_string(), ctx),
            Err(e @ XmlError::Restricted(_)) => return self.stream_error("restricted-xml", &e.to_string(), ctx),
            Err(e) => return self.stream_error("not-well-formed", &e.to_string(), ctx),
        };
        let part = match (element.ns.as_str(), element.name.as_str()) {
            (ns::FRAMING, "open") => Inbound::Open(element),
            (ns::FRAMING, "close") => Inbound::Close,
            _ => Inbound::Element(element),
        };
        // No STARTTLS here, and no resumption: a stream cannot move to another websocket.
        if let Flow::Resume { .. } = self.inbound(part, ctx) {
            self.resume_failed("item-not-found", ctx);
        }
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for XmppSession<WsLink> {
    fn handle(&mut self, item: Result<ws::Message, ws::ProtocolError>, ctx: &mut Ctx) {
        self.last_heard = std::time::Instant::now();
        match item {
            Ok(ws::Message::Text(text)) => self.frame(&text, ctx),
            Ok(ws::Message::Binary(_)) => self.stream_error("bad-format", "XMPP frames are text (RFC 7395 §3.2)", ctx),
            Ok(ws::Message::Continuation(_)) => {
                self.stream_error("bad-format", "fragmented frames are not supported", ctx)
            }
            Ok(ws::Message::Ping(payload)) => ctx.pong(&payload),
            Ok(ws::Message::Pong(_)) | Ok(ws::Message::Nop) => {}
            Ok(ws::Message::Close(reason)) => {
                ctx.close(reason);
                self.inbound(Inbound::Lost, ctx);
            }
            Err(ws::ProtocolError::Overflow) => {
                self.stream_error("policy-violation", "the frame is larger than limits.max_body_bytes", ctx)
            }
            Err(e) => self.stream_error("not-well-formed", &e.to_string(), ctx),
        }
    }
}
