//! An XMPP client over WebSocket (RFC 7395) or TCP (RFC 6120, [`crate::tcp`]), as small as a load generator needs: open the
//! stream, register in-band (XEP-0077) if asked, authenticate with SASL PLAIN or
//! SCRAM-SHA-1 (RFC 5802), bind a resource, start a session where the server requires it,
//! send initial presence, and join a room (XEP-0045) up to its self-presence. It speaks to
//! Switchboard, ejabberd and Prosody alike.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use hmac::{Hmac, Mac};
use quick_xml::events::Event;
use quick_xml::Reader;
use sha1::{Digest, Sha1};
use tokio_tungstenite::tungstenite::Message;

use crate::args::Mechanism;
use crate::client::{open_ws, Conn, Ws};
use crate::server::Account;
use crate::target::Target;
use crate::tcp::XmppTcp;
use crate::BenchError;

const SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
/// How long one step of the login may take.
const STEP: Duration = Duration::from_secs(15);

/// One element of a frame, flattened: its local name, attributes and direct text.
#[derive(Debug, Default)]
pub struct Node {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub text: String,
}

impl Node {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// The elements of a frame in document order (prefixes dropped).
pub fn nodes(frame: &str) -> Vec<Node> {
    let mut reader = Reader::from_str(frame);
    let mut out: Vec<Node> = Vec::new();
    let mut open: Vec<usize> = Vec::new();
    loop {
        match reader.read_event() {
            Ok(Event::Start(start)) => {
                out.push(node_of(&start));
                open.push(out.len() - 1);
            }
            Ok(Event::Empty(start)) => out.push(node_of(&start)),
            Ok(Event::End(_)) => {
                open.pop();
            }
            Ok(Event::Text(text)) => {
                if let Some(&i) = open.last() {
                    out[i].text.push_str(&text.xml_content(quick_xml::XmlVersion::Implicit1_0));
                }
            }
            Ok(Event::Eof) | Err(_) => break,
            Ok(_) => {}
        }
    }
    out
}

fn node_of(start: &quick_xml::events::BytesStart<'_>) -> Node {
    let qname = start.name().into_inner().to_owned();
    let name = qname.rsplit(':').next().unwrap_or(&qname).to_owned();
    let attrs = start
        .attributes()
        .flatten()
        .map(|a| {
            let key = a.key.into_inner().to_owned();
            let value =
                a.normalized_value(quick_xml::XmlVersion::Implicit1_0).map(|v| v.into_owned()).unwrap_or_default();
            (key, value)
        })
        .collect();
    Node { name, attrs, text: String::new() }
}

/// XML-escapes text for an element's content or an attribute.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&apos;")
}

/// A connection being set up.
pub struct Stream {
    pub ws: Ws,
    domain: String,
    /// Messages that arrived while the set-up waited for something else (offline messages
    /// come with the initial presence, before the ping's answer).
    early: Vec<String>,
}

/// A signed-in connection.
pub struct SignedIn {
    pub ws: Ws,
    /// The bound full address.
    pub jid: String,
    /// Message stanzas that arrived during the sign-in, in order.
    pub early: Vec<String>,
}

/// SCRAM's SaltedPassword by (password, salt, iterations): a client keeps it (RFC 5802
/// §5.1), so a reconnection costs HMACs, as the server's side does.
static SALTED_PASSWORDS: LazyLock<Mutex<HashMap<SaltedKey, [u8; 20]>>> = LazyLock::new(Default::default);

/// A password, its salt and the iteration count.
type SaltedKey = (String, Vec<u8>, u32);

impl Stream {
    pub async fn send(&mut self, frame: String) -> Result<(), BenchError> {
        self.ws.send(Message::text(frame)).await.map_err(|e| BenchError::Server(format!("XMPP send: {e}")))
    }

    /// The next text frame.
    pub async fn next_frame(&mut self) -> Result<String, BenchError> {
        loop {
            let frame = tokio::time::timeout(STEP, self.ws.next())
                .await
                .map_err(|_| BenchError::Server(format!("the XMPP server said nothing for {STEP:?}")))?;
            match frame {
                Some(Ok(Message::Text(text))) => {
                    let text = text.as_str().to_owned();
                    if text.contains("<stream:error") || text.starts_with("<error") {
                        return Err(BenchError::Refused(format!("XMPP stream error: {text}")));
                    }
                    return Ok(text);
                }
                Some(Ok(Message::Close(reason))) => {
                    return Err(BenchError::Refused(format!("the XMPP server closed the stream: {reason:?}")))
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(BenchError::Server(format!("XMPP read: {e}"))),
                None => return Err(BenchError::Server("the XMPP server closed the connection".into())),
            }
        }
    }

    /// Frames until one whose root is `name` (and, for IQs, `id`).
    async fn until(&mut self, name: &str, id: Option<&str>) -> Result<Vec<Node>, BenchError> {
        loop {
            let frame = self.next_frame().await?;
            let found = nodes(&frame);
            if let Some(root) = found.first() {
                if root.name == name && (id.is_none() || root.attr("id") == id) {
                    return Ok(found);
                }
                if root.name == "message" {
                    self.early.push(frame);
                }
            }
        }
    }

    /// Opens (or re-opens) the stream and returns its features.
    async fn restart(&mut self) -> Result<Vec<Node>, BenchError> {
        let open = format!(
            r#"<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="{}" version="1.0"/>"#,
            escape(&self.domain)
        );
        self.send(open).await?;
        self.until("features", None).await
    }

    /// XEP-0077 in-band registration; an account that already exists counts as done.
    pub async fn register(&mut self, account: &Account) -> Result<(), BenchError> {
        let iq = format!(
            r#"<iq xmlns="jabber:client" type="set" id="reg1"><query xmlns="jabber:iq:register"><username>{}</username><password>{}</password></query></iq>"#,
            escape(&account.username),
            escape(&account.password)
        );
        self.send(iq).await?;
        let answer = self.until("iq", Some("reg1")).await?;
        match answer[0].attr("type") {
            Some("result") => Ok(()),
            _ if answer.iter().any(|n| n.name == "conflict") => Ok(()),
            _ => Err(BenchError::Refused(format!(
                "in-band registration of {} refused ({}); does the server allow XEP-0077 registration?",
                account.username,
                answer.iter().skip(1).map(|n| n.name.as_str()).collect::<Vec<_>>().join(" ")
            ))),
        }
    }

    /// SASL, bind, session and initial presence.
    pub async fn login(
        mut self,
        account: &Account,
        wanted: Option<Mechanism>,
        features: Vec<Node>,
    ) -> Result<SignedIn, BenchError> {
        let offered: Vec<&str> = features.iter().filter(|n| n.name == "mechanism").map(|n| n.text.trim()).collect();
        let mechanism = match wanted {
            Some(m) => m,
            None if offered.contains(&"SCRAM-SHA-1") => Mechanism::ScramSha1,
            None => Mechanism::Plain,
        };
        let name = match mechanism {
            Mechanism::Plain => "PLAIN",
            Mechanism::ScramSha1 => "SCRAM-SHA-1",
        };
        if !offered.contains(&name) {
            return Err(BenchError::Refused(format!("the XMPP server does not offer {name} (it offers {offered:?})")));
        }
        match mechanism {
            Mechanism::Plain => {
                let response = B64.encode(format!("\0{}\0{}", account.username, account.password));
                self.send(format!(r#"<auth xmlns="{SASL}" mechanism="PLAIN">{response}</auth>"#)).await?;
                self.sasl_outcome(account).await?;
            }
            Mechanism::ScramSha1 => self.scram(account).await?,
        }
        let features = self.restart().await?;
        self.send(
            r#"<iq xmlns="jabber:client" type="set" id="bind1"><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"><resource>bench</resource></bind></iq>"#
                .into(),
        )
        .await?;
        let bound = self.until("iq", Some("bind1")).await?;
        let jid = bound
            .iter()
            .find(|n| n.name == "jid")
            .map(|n| n.text.trim().to_owned())
            .ok_or_else(|| BenchError::Refused(format!("resource binding refused for {}", account.username)))?;
        let session_required = features
            .iter()
            .position(|n| n.name == "session")
            .is_some_and(|at| features[at + 1..].first().is_none_or(|n| n.name != "optional"));
        if session_required {
            self.send(
                r#"<iq xmlns="jabber:client" type="set" id="sess1"><session xmlns="urn:ietf:params:xml:ns:xmpp-session"/></iq>"#
                    .into(),
            )
            .await?;
            self.until("iq", Some("sess1")).await?;
        }
        // Initial presence, then a ping: once answered, the presence has been processed.
        self.send(r#"<presence xmlns="jabber:client"/>"#.into()).await?;
        self.send(r#"<iq xmlns="jabber:client" type="get" id="ping1"><ping xmlns="urn:xmpp:ping"/></iq>"#.into())
            .await?;
        self.until("iq", Some("ping1")).await?;
        Ok(SignedIn { ws: self.ws, jid, early: self.early })
    }

    async fn sasl_outcome(&mut self, account: &Account) -> Result<Vec<Node>, BenchError> {
        loop {
            let frame = self.next_frame().await?;
            let found = nodes(&frame);
            match found.first().map(|n| n.name.as_str()) {
                Some("success") => return Ok(found),
                Some("failure") => {
                    let condition = found.get(1).map(|n| n.name.clone()).unwrap_or_default();
                    return Err(BenchError::Refused(format!(
                        "the XMPP server refused the login of {} ({condition})",
                        account.username
                    )));
                }
                Some("challenge") => return Ok(found),
                _ => continue,
            }
        }
    }

    /// SCRAM-SHA-1 without channel binding (RFC 5802).
    async fn scram(&mut self, account: &Account) -> Result<(), BenchError> {
        let user = account.username.replace('=', "=3D").replace(',', "=2C");
        let client_nonce = crate::random_hex(12);
        let client_first_bare = format!("n={user},r={client_nonce}");
        let first = B64.encode(format!("n,,{client_first_bare}"));
        self.send(format!(r#"<auth xmlns="{SASL}" mechanism="SCRAM-SHA-1">{first}</auth>"#)).await?;
        let challenge = self.sasl_outcome(account).await?;
        let bad = |what: &str| BenchError::Server(format!("SCRAM-SHA-1: {what}"));
        let server_first = challenge
            .first()
            .filter(|n| n.name == "challenge")
            .and_then(|n| B64.decode(n.text.trim()).ok())
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| bad("no challenge"))?;
        let field = |key: &str| {
            server_first.split(',').find_map(|part| part.strip_prefix(key).map(str::to_owned)).ok_or_else(|| bad(key))
        };
        let nonce = field("r=")?;
        let salt = B64.decode(field("s=")?).map_err(|_| bad("salt is not base64"))?;
        let iterations: u32 = field("i=")?.parse().map_err(|_| bad("bad iteration count"))?;
        if !nonce.starts_with(&client_nonce) || iterations == 0 {
            return Err(bad("the server's nonce does not extend ours"));
        }
        let salted = salted_password(&account.password, salt, iterations);
        let client_key = hmac_sha1(&salted, b"Client Key");
        let stored_key: [u8; 20] = Sha1::digest(client_key).into();
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
        let signature = hmac_sha1(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(signature).map(|(k, s)| k ^ s).collect();
        let final_message = B64.encode(format!("{without_proof},p={}", B64.encode(proof)));
        self.send(format!(r#"<response xmlns="{SASL}">{final_message}</response>"#)).await?;
        let outcome = self.sasl_outcome(account).await?;
        let server_key = hmac_sha1(&salted, b"Server Key");
        let expected = format!("v={}", B64.encode(hmac_sha1(&server_key, auth_message.as_bytes())));
        let verifier = outcome
            .first()
            .and_then(|n| B64.decode(n.text.trim()).ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        if outcome[0].name != "success" || (!verifier.is_empty() && verifier != expected) {
            return Err(bad("the server's signature does not verify"));
        }
        Ok(())
    }
}

/// Opens a stream and returns it with its (pre-authentication) features.
pub async fn connect(url: &Target, domain: &str, source: usize) -> Result<(Stream, Vec<Node>), BenchError> {
    let ws = if url.tcp {
        Conn::Tcp(XmppTcp::new(crate::http::connect(url, source).await?))
    } else {
        open_ws(url, &url.path, Some("xmpp"), source).await?
    };
    let mut stream = Stream { ws, domain: domain.to_owned(), early: Vec::new() };
    let features = stream.restart().await?;
    Ok((stream, features))
}

/// Signs in: a bound, available connection.
pub async fn sign_in(
    url: &Target,
    domain: &str,
    account: &Account,
    mechanism: Option<Mechanism>,
    source: usize,
) -> Result<SignedIn, BenchError> {
    let (stream, features) = connect(url, domain, source).await?;
    stream.login(account, mechanism, features).await
}

/// Joins `room` (a bare room address) as `nick`, waiting for the self-presence. A room this
/// join created (status 201, locked until configured) is unlocked as an instant room.
pub async fn join_room(ws: Ws, domain: &str, room: &str, nick: &str) -> Result<Ws, BenchError> {
    let mut stream = Stream { ws, domain: domain.to_owned(), early: Vec::new() };
    stream
        .send(format!(
            r#"<presence xmlns="jabber:client" to="{}/{}"><x xmlns="http://jabber.org/protocol/muc"><history maxstanzas="0"/></x></presence>"#,
            escape(room),
            escape(nick)
        ))
        .await?;
    loop {
        let frame = stream.next_frame().await?;
        if !frame.starts_with("<presence") {
            continue;
        }
        let found = nodes(&frame);
        if found[0].attr("type") == Some("error") {
            return Err(BenchError::Refused(format!("joining {room} was refused: {frame}")));
        }
        let codes: Vec<&str> = found.iter().filter(|n| n.name == "status").filter_map(|n| n.attr("code")).collect();
        if !codes.contains(&"110") {
            continue;
        }
        if codes.contains(&"201") {
            stream
                .send(format!(
                    r#"<iq xmlns="jabber:client" type="set" to="{}" id="cfg1"><query xmlns="http://jabber.org/protocol/muc#owner"><x xmlns="jabber:x:data" type="submit"/></query></iq>"#,
                    escape(room)
                ))
                .await?;
            stream.until("iq", Some("cfg1")).await?;
        }
        return Ok(stream.ws);
    }
}

/// HMAC-SHA-1 (RFC 2104), as SCRAM-SHA-1 uses it.
fn hmac_sha1(key: &[u8], data: &[u8]) -> [u8; 20] {
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// SCRAM's SaltedPassword, computed once per password, salt and count.
fn salted_password(password: &str, salt: Vec<u8>, iterations: u32) -> [u8; 20] {
    let key = (password.to_owned(), salt, iterations);
    if let Some(salted) = SALTED_PASSWORDS.lock().expect("salted passwords").get(&key) {
        return *salted;
    }
    let salted = pbkdf2_sha1(password.as_bytes(), &key.1, iterations);
    SALTED_PASSWORDS.lock().expect("salted passwords").insert(key, salted);
    salted
}

/// PBKDF2 with HMAC-SHA-1 (RFC 8018): SCRAM's `Hi()`.
fn pbkdf2_sha1(password: &[u8], salt: &[u8], iterations: u32) -> [u8; 20] {
    pbkdf2::pbkdf2_hmac_array::<Sha1, 20>(password, salt, iterations)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn hmac_and_pbkdf2_match_their_test_vectors() {
        // RFC 2202 test case 2; RFC 6070 test case 2.
        assert_eq!(
            hex(&hmac_sha1(b"Jefe", b"what do ya want for nothing?")),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
        assert_eq!(hex(&pbkdf2_sha1(b"password", b"salt", 2)), "ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957");
    }

    #[test]
    fn frames_flatten_into_nodes() {
        let found = nodes(
            r#"<stream:features xmlns:stream="http://etherx.jabber.org/streams"><mechanisms xmlns="urn:ietf:params:xml:ns:xmpp-sasl"><mechanism>PLAIN</mechanism><mechanism>SCRAM-SHA-1</mechanism></mechanisms></stream:features>"#,
        );
        let names: Vec<&str> = found.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["features", "mechanisms", "mechanism", "mechanism"]);
        assert_eq!(found[3].text, "SCRAM-SHA-1");
        assert_eq!(nodes(r#"<iq type='result' id="b1"/>"#)[0].attr("id"), Some("b1"));
    }
}
