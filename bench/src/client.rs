//! The clients' side of the wire: opening websockets (JSON `/ws` or XMPP subprotocol), the
//! frames a sender writes, and what a reader makes of each frame it gets.
//!
//! Every measured message carries `sb {sender} {nanos}` as its body: the sender's index and
//! when it was sent, in nanoseconds since the run's epoch, so a receiver knows its latency
//! without a lookup. Frames are recognised by substring first; JSON or XML is parsed only
//! for the rare frames that need it, so the client spends its CPU on the wire, not on parsing.

use futures_util::stream::{SplitSink, SplitStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

use crate::http::connect;
use crate::target::Target;
pub use crate::tcp::Conn;
use crate::BenchError;

/// A client's connection: a websocket, or XMPP over TCP for the `xmpp` scenarios.
pub type Ws = Conn;
pub type WsSink = SplitSink<Ws, Message>;
pub type WsSource = SplitStream<Ws>;

/// Opens a websocket to `path_and_query` on `target`, from loopback source `source`.
pub async fn open_ws(
    target: &Target,
    path_and_query: &str,
    subprotocol: Option<&'static str>,
    source: usize,
) -> Result<Ws, BenchError> {
    let stream = connect(target, source).await?;
    let mut request = target
        .ws_url(path_and_query)
        .into_client_request()
        .map_err(|e| BenchError::Usage(format!("bad websocket URL: {e}")))?;
    if let Some(protocol) = subprotocol {
        request.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static(protocol));
    }
    let config = WebSocketConfig::default().max_message_size(Some(1 << 24));
    match tokio_tungstenite::client_async_with_config(request, stream, Some(config)).await {
        Ok((ws, _)) => Ok(Conn::Ws(Box::new(ws))),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            let body = response.body().as_ref().map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default();
            let path = path_and_query.split('?').next().unwrap_or(path_and_query);
            Err(BenchError::Refused(format!("the server refused the websocket {path} ({}): {body}", response.status())))
        }
        Err(e) => Err(BenchError::Server(format!("websocket handshake: {e}"))),
    }
}

/// The body of a measured message.
pub fn marker(sender: usize, sent_ns: u64) -> String {
    format!("sb {sender} {sent_ns}")
}

/// What a reader saw in one frame.
#[derive(Debug, PartialEq, Eq)]
pub enum Observed {
    /// A measured message arrived.
    Delivered {
        sender: usize,
        sent_ns: u64,
    },
    /// A message was acknowledged as stored (JSON door).
    Acked,
    /// A room join was answered (JSON `joined`, XMPP self-presence).
    Joined,
    /// A presence (someone else's room presence, a contact's).
    Presence,
    /// An error frame or stanza error.
    Refused(String),
    Other,
}

/// Parses the `sb {sender} {nanos}` that starts at `text[at..]`.
fn parse_marker(text: &str, at: usize) -> Option<Observed> {
    let rest = &text[at + 3..];
    let end = rest.find(|c: char| !(c.is_ascii_digit() || c == ' ')).unwrap_or(rest.len());
    let mut numbers = rest[..end].split(' ');
    let sender = numbers.next()?.parse().ok()?;
    let sent_ns = numbers.next()?.parse().ok()?;
    Some(Observed::Delivered { sender, sent_ns })
}

/// A webhook delivery's body: a measured message when its `message.data` is a marker.
pub fn observe_webhook(body: &str) -> Observed {
    match body.find("\"data\":\"sb ") {
        Some(at) => parse_marker(body, at + 8).unwrap_or(Observed::Other),
        None => Observed::Other,
    }
}

/// A JSON-door frame (`/ws` event or reply, or SSE data).
pub fn observe_json(text: &str) -> Observed {
    if let Some(at) = text.find("\"body\":\"sb ") {
        if text.contains("\"type\":\"chat\"") || text.contains("\"type\":\"groupchat\"") {
            if let Some(seen) = parse_marker(text, at + 8) {
                return seen;
            }
        }
    }
    if text.contains("\"type\":\"ack\"") {
        return Observed::Acked;
    }
    if text.contains("\"type\":\"joined\"") {
        return Observed::Joined;
    }
    if text.contains("\"event\":\"chatapi.presence\"") {
        return Observed::Presence;
    }
    if text.contains("\"type\":\"error\"") {
        let message = serde_json::from_str::<serde_json::Value>(text)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_owned))
            .unwrap_or_else(|| text.to_owned());
        return Observed::Refused(message);
    }
    Observed::Other
}

/// An XMPP frame: a stanza.
pub fn observe_xmpp(text: &str) -> Observed {
    if text.starts_with("<message") {
        if let Some(at) = text.find("<body>sb ") {
            if let Some(seen) = parse_marker(text, at + 6) {
                return seen;
            }
        }
        if has_attr(text, "type", "error") {
            return Observed::Refused(text.to_owned());
        }
        return Observed::Other;
    }
    if text.starts_with("<presence") {
        if text.contains("code=\"110\"") || text.contains("code='110'") {
            return Observed::Joined;
        }
        if has_attr(text, "type", "error") {
            return Observed::Refused(text.to_owned());
        }
        return Observed::Presence;
    }
    if text.starts_with("<iq") && has_attr(text, "type", "error") {
        return Observed::Refused(text.to_owned());
    }
    Observed::Other
}

/// `name="value"` or `name='value'` in the element's start tag.
fn has_attr(text: &str, name: &str, value: &str) -> bool {
    let head = &text[..text.find('>').unwrap_or(text.len())];
    head.contains(&format!(" {name}=\"{value}\"")) || head.contains(&format!(" {name}='{value}'"))
}

/// What one measured message looks like on the wire.
#[derive(Clone)]
pub enum Outgoing {
    /// `/ws` 1:1 to a user name.
    JsonChat { to: String },
    /// `/ws` to a room.
    JsonRoom { room: String },
    /// XMPP chat to a bare address.
    XmppChat { to: String },
    /// XMPP groupchat to a room address.
    XmppRoom { room: String },
}

impl Outgoing {
    pub fn frame(&self, sender: usize, seq: usize, sent_ns: u64) -> String {
        let body = marker(sender, sent_ns);
        match self {
            Outgoing::JsonChat { to } => format!(r#"{{"op":"message","to":"{to}","body":"{body}","id":{seq}}}"#),
            Outgoing::JsonRoom { room } => {
                format!(r#"{{"op":"groupchat","room":"{room}","body":"{body}","id":{seq}}}"#)
            }
            Outgoing::XmppChat { to } => {
                format!(
                    r#"<message xmlns="jabber:client" to="{to}" type="chat" id="m{seq}"><body>{body}</body></message>"#
                )
            }
            Outgoing::XmppRoom { room } => format!(
                r#"<message xmlns="jabber:client" to="{room}" type="groupchat" id="m{seq}"><body>{body}</body></message>"#
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deliveries_acks_and_errors_are_recognised() {
        let chat = r#"{"body":"sb 3 123456","event":"chatapi.chat","from":"a@localhost/x","type":"chat"}"#;
        assert_eq!(observe_json(chat), Observed::Delivered { sender: 3, sent_ns: 123456 });
        let room = r#"{"body":"sb 0 9","event":"chatapi.muc","type":"groupchat"}"#;
        assert_eq!(observe_json(room), Observed::Delivered { sender: 0, sent_ns: 9 });
        assert_eq!(observe_json(r#"{"id":1,"msgId":"5","type":"ack"}"#), Observed::Acked);
        assert_eq!(observe_json(r#"{"id":1,"room":"r","type":"joined"}"#), Observed::Joined);
        assert_eq!(
            observe_json(r#"{"code":404,"id":2,"message":"unknown user","type":"error"}"#),
            Observed::Refused("unknown user".into())
        );
        assert_eq!(observe_json(r#"{"event":"chatapi.presence","type":"available"}"#), Observed::Presence);

        let stanza = r#"<message from="a@l/r" to="b@l" type="chat" id="m1"><body>sb 7 42</body></message>"#;
        assert_eq!(observe_xmpp(stanza), Observed::Delivered { sender: 7, sent_ns: 42 });
        let me = r#"<presence from="r@c/n"><x xmlns="http://jabber.org/protocol/muc#user"><status code='110'/></x></presence>"#;
        assert_eq!(observe_xmpp(me), Observed::Joined);
        assert_eq!(observe_xmpp(r#"<presence from="r@c/other"/>"#), Observed::Presence);
        assert!(matches!(observe_xmpp(r#"<message type='error' from='x'/>"#), Observed::Refused(_)));
    }

    #[test]
    fn outgoing_frames_carry_the_marker() {
        let frame = Outgoing::JsonChat { to: "bob".into() }.frame(2, 9, 77);
        let value: serde_json::Value = serde_json::from_str(&frame).unwrap();
        assert_eq!(
            (value["op"].as_str(), value["body"].as_str(), value["id"].as_u64()),
            (Some("message"), Some("sb 2 77"), Some(9))
        );
        let frame = Outgoing::XmppRoom { room: "r@conference.localhost".into() }.frame(1, 2, 3);
        assert_eq!(observe_xmpp(&frame), Observed::Delivered { sender: 1, sent_ns: 3 });
    }
}
