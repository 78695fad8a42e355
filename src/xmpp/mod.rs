//! The XMPP doors.
//!
//! - [`xml`]: one element from a string (restricted XML, limits) and back.
//! - [`stanza`]: what a stanza from a station means, in the core's messages; shared by both
//!   doors, so a message sent from either arrives like one from the JSON doors.
//! - [`render`]: events (rendered once as JSON) as XMPP stanzas, cached once per event.
//! - [`scram`]: SASL SCRAM-SHA-1 and SCRAM-SHA-256 messages.
//! - [`blocking`], [`mam`]: XEP-0191 blocking commands and XEP-0313 archive queries.
//! - [`post`]: `POST /restapi/v1/chat/{streamid}/xmpp`, one stanza over HTTP.
//! - [`session`]: one client stream's stages and stanzas, over any transport; [`sm`]: its
//!   XEP-0198 counters.
//! - [`websocket`]: XMPP over WebSocket (RFC 7395) at `/xmpp-websocket`.
//! - [`tcp`], [`framer`], [`tls`]: XMPP over TCP (RFC 6120) on `xmpp.c2s_bind`, with STARTTLS.

pub mod blocking;
pub mod framer;
pub mod mam;
pub mod post;
pub mod render;
pub mod scram;
pub mod session;
pub mod sm;
pub mod stanza;
pub mod tcp;
pub mod tls;
pub mod websocket;
pub mod xml;

/// Namespaces.
pub mod ns {
    pub const CLIENT: &str = "jabber:client";
    pub const FRAMING: &str = "urn:ietf:params:xml:ns:xmpp-framing";
    pub const STREAMS: &str = "http://etherx.jabber.org/streams";
    pub const STREAM_ERRORS: &str = "urn:ietf:params:xml:ns:xmpp-streams";
    pub const STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";
    pub const SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
    pub const SASL_CB: &str = "urn:xmpp:sasl-cb:0";
    pub const TLS: &str = "urn:ietf:params:xml:ns:xmpp-tls";
    pub const BIND: &str = "urn:ietf:params:xml:ns:xmpp-bind";
    pub const SESSION: &str = "urn:ietf:params:xml:ns:xmpp-session";
    pub const ROSTER: &str = "jabber:iq:roster";
    pub const PING: &str = "urn:xmpp:ping";
    pub const DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";
    pub const DISCO_ITEMS: &str = "http://jabber.org/protocol/disco#items";
    pub const CHAT_STATES: &str = "http://jabber.org/protocol/chatstates";
    pub const CHAT_MARKERS: &str = "urn:xmpp:chat-markers:0";
    pub const DELAY: &str = "urn:xmpp:delay";
    pub const FORWARD: &str = "urn:xmpp:forward:0";
    pub const CARBONS: &str = "urn:xmpp:carbons:2";
    pub const MUC: &str = "http://jabber.org/protocol/muc";
    pub const MUC_USER: &str = "http://jabber.org/protocol/muc#user";
    pub const WORKGROUP: &str = "http://jabber.org/protocol/workgroup";
    pub const JIVE_WORKGROUP: &str = "http://jivesoftware.com/protocol/workgroup";
    pub const DATA: &str = "urn:switchboard:data";
}
