//! XMPP over TCP (RFC 6120) on `xmpp.c2s_bind`: STARTTLS with the generated certificate,
//! SCRAM-SHA-256, SCRAM-SHA-1 and their `-PLUS` forms bound to the TLS session, every
//! refusal (no SASL before TLS, wrong passwords, three failures, bad XML, a wrong host),
//! whitespace keepalives and the silence timeout, and chat with an SSE user.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use base64::Engine;
use sha2::{Digest, Sha256};
use switchboard::xmpp::framer::{Framer, Part};
use switchboard::xmpp::xml::{parse_element, Element};
use switchboard_actors::model::scram::ScramMechanism;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::helpers::*;
use crate::sasl::{scram_bound, XmlPeer};
use crate::xmpp::Frame;

const CLIENT: &str = "jabber:client";
const TLS: &str = "urn:ietf:params:xml:ns:xmpp-tls";
const SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
const STREAMS: &str = "http://etherx.jabber.org/streams";

enum Conn {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    Gone,
}

impl AsyncRead for Conn {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Gone => Poll::Ready(Ok(())),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Gone => Poll::Ready(Ok(0)),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s).poll_flush(cx),
            Conn::Gone => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Gone => Poll::Ready(Ok(())),
        }
    }
}

/// A test XMPP client over TCP.
pub struct XmppTcp {
    conn: Conn,
    framer: Framer,
    parts: std::collections::VecDeque<Part>,
    pub jid: String,
}

impl XmlPeer for XmppTcp {
    async fn send(&mut self, xml: &str) {
        XmppTcp::send(self, xml).await
    }

    async fn next(&mut self) -> Element {
        XmppTcp::next(self).await
    }
}

/// The certificate the server generated into its data directory.
fn server_certificate(app: &TestApp) -> rustls::pki_types::CertificateDer<'static> {
    use rustls::pki_types::pem::PemObject;
    let path = app.dir.path().join("tls/xmpp-cert.pem");
    rustls::pki_types::CertificateDer::from_pem_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

impl XmppTcp {
    pub async fn connect(app: &TestApp) -> XmppTcp {
        let port = app.xmpp_port.expect("the test server has an XMPP listener");
        let stream = TcpStream::connect(("127.0.0.1", port)).await.expect("connect to the XMPP listener");
        XmppTcp {
            conn: Conn::Plain(stream),
            framer: Framer::new(1 << 20),
            parts: Default::default(),
            jid: String::new(),
        }
    }

    pub async fn send(&mut self, xml: &str) {
        self.send_bytes(xml.as_bytes()).await;
    }

    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        self.conn.write_all(bytes).await.expect("xmpp send");
        self.conn.flush().await.expect("xmpp flush");
    }

    /// Sends a stream header and reads the server's; returns the features that follow.
    pub async fn open(&mut self) -> Element {
        self.send(&format!(
            "<?xml version='1.0'?><stream:stream to='localhost' xmlns='{CLIENT}' xmlns:stream='{STREAMS}' version='1.0'>"
        ))
        .await;
        match self.part().await {
            Some(Part::Open(header)) => {
                let header = parse_element(&header, 1 << 20, CLIENT).unwrap();
                assert_eq!((header.name.as_str(), header.ns.as_str()), ("stream", STREAMS));
                assert_eq!(header.get_attr("from"), Some("localhost"));
            }
            other => panic!("expected the server's stream header, got {other:?}"),
        }
        let features = self.next().await;
        assert_eq!(features.name, "features", "{}", features.to_xml());
        features
    }

    async fn part(&mut self) -> Option<Part> {
        self.part_within(WAIT).await.unwrap_or_else(|| panic!("nothing from the server within {WAIT:?}"))
    }

    /// The next part within `limit`: `Some(None)` when the connection ended.
    async fn part_within(&mut self, limit: Duration) -> Option<Option<Part>> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(part) = self.parts.pop_front() {
                return Some(Some(part));
            }
            let mut buf = [0u8; 8192];
            let read = match tokio::time::timeout_at(deadline, self.conn.read(&mut buf)).await {
                Err(_) => return None,
                Ok(Err(_)) | Ok(Ok(0)) => return Some(None),
                Ok(Ok(n)) => n,
            };
            let mut parts = Vec::new();
            self.framer.push(&buf[..read], &mut parts).unwrap_or_else(|e| panic!("the server sent bad XML: {e}"));
            self.parts.extend(parts);
        }
    }

    pub async fn next_within(&mut self, limit: Duration) -> Option<Frame> {
        match self.part_within(limit).await? {
            None | Some(Part::Close) => Some(Frame::Closed),
            Some(Part::Open(header)) => panic!("an unexpected stream header: {header}"),
            Some(Part::Element(text)) => {
                let element = parse_element(&text, 1 << 20, CLIENT)
                    .unwrap_or_else(|e| panic!("the server sent bad XML ({e}): {text}"));
                Some(Frame::Stanza(element))
            }
        }
    }

    pub async fn next(&mut self) -> Element {
        match self.next_within(WAIT).await {
            Some(Frame::Stanza(e)) => e,
            Some(Frame::Closed) => panic!("xmpp stream closed"),
            None => panic!("no xmpp element within {WAIT:?}"),
        }
    }

    /// Everything until the stream ends (`</stream:stream>` and the socket closing).
    pub async fn until_closed(&mut self) -> Vec<Element> {
        let mut seen = Vec::new();
        loop {
            match self.next_within(WAIT).await {
                Some(Frame::Stanza(e)) => seen.push(e),
                Some(Frame::Closed) => return seen,
                None => {
                    panic!("the stream did not close; saw {:?}", seen.iter().map(Element::to_xml).collect::<Vec<_>>())
                }
            }
        }
    }

    /// STARTTLS, trusting the server's generated certificate; returns the features of the
    /// new stream.
    pub async fn starttls(&mut self, app: &TestApp) -> Element {
        self.send(&format!("<starttls xmlns='{TLS}'/>")).await;
        let proceed = self.next().await;
        assert_eq!((proceed.name.as_str(), proceed.ns.as_str()), ("proceed", TLS), "{}", proceed.to_xml());
        let mut roots = rustls::RootCertStore::empty();
        roots.add(server_certificate(app)).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let Conn::Plain(stream) = std::mem::replace(&mut self.conn, Conn::Gone) else { panic!("TLS already") };
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, stream)
            .await
            .expect("the TLS handshake with the generated certificate");
        self.conn = Conn::Tls(Box::new(tls));
        self.framer.reset();
        self.open().await
    }

    /// RFC 9266 `tls-exporter` of this connection's TLS session.
    fn tls_exporter(&self) -> Vec<u8> {
        let Conn::Tls(tls) = &self.conn else { panic!("no TLS") };
        tls.get_ref().1.export_keying_material([0u8; 32], b"EXPORTER-Channel-Binding", None).unwrap().to_vec()
    }

    /// After SASL success: the restarted stream, then binding.
    pub async fn bind(&mut self, resource: &str) {
        let features = self.open().await.to_xml();
        assert!(features.contains("urn:ietf:params:xml:ns:xmpp-bind"), "{features}");
        assert!(features.contains(SM), "stream management is offered: {features}");
        self.send(&format!(
            "<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>{resource}</resource></bind></iq>"
        ))
        .await;
        let bound = self.next().await;
        assert_eq!(bound.get_attr("type"), Some("result"), "{}", bound.to_xml());
        self.jid = bound.elements().next().unwrap().elements().next().unwrap().text_content();
    }

    /// Connects, STARTTLS and SCRAM-SHA-256, up to the restarted stream's features.
    pub async fn authenticated(app: &TestApp, user: &str) -> XmppTcp {
        let mut x = XmppTcp::connect(app).await;
        x.open().await;
        x.starttls(app).await;
        let sha256 = ScramMechanism::Sha256;
        let password = format!("pw-{user}");
        scram_bound(&mut x, sha256.name(), sha256, user, &password, "n,,", &[]).await.unwrap();
        x
    }

    /// Connects, STARTTLS, SCRAM-SHA-256 and binds `resource`.
    pub async fn login(app: &TestApp, user: &str, resource: &str) -> XmppTcp {
        let mut x = XmppTcp::authenticated(app, user).await;
        x.bind(resource).await;
        x
    }

    /// The next element that `matches`, skipping others.
    pub async fn next_where(&mut self, what: &str, matches: impl Fn(&Element) -> bool) -> Element {
        let mut skipped = Vec::new();
        loop {
            match self.next_within(WAIT).await {
                Some(Frame::Stanza(e)) if matches(&e) => return e,
                Some(Frame::Stanza(e)) => skipped.push(e.to_xml()),
                Some(Frame::Closed) => panic!("closed waiting for {what}; saw {skipped:?}"),
                None => panic!("no {what} within {WAIT:?}; saw {skipped:?}"),
            }
        }
    }

    /// Nothing but what `allowed` lets through arrives for `limit`.
    pub async fn assert_quiet_except(&mut self, limit: Duration, allowed: impl Fn(&Element) -> bool) {
        let deadline = tokio::time::Instant::now() + limit;
        while let Some(frame) = self.next_within(deadline - tokio::time::Instant::now()).await {
            match frame {
                Frame::Stanza(e) if allowed(&e) => {}
                Frame::Stanza(e) => panic!("unexpected: {}", e.to_xml()),
                Frame::Closed => panic!("the stream closed"),
            }
        }
    }

    /// Sends an IQ and returns its answer (other stanzas in between are skipped).
    pub async fn iq(&mut self, id: &str, xml: &str) -> Element {
        self.send(xml).await;
        self.next_where(id, |e| e.name == "iq" && e.get_attr("id") == Some(id)).await
    }
}

fn mechanisms(features: &Element) -> Vec<String> {
    features.find("mechanisms", SASL).map(|m| m.elements().map(|e| e.text_content()).collect()).unwrap_or_default()
}

/// A server with the XMPP TCP listener on a free port.
async fn spawn_with_c2s(tweak: impl FnOnce(&mut switchboard::Config)) -> TestApp {
    spawn_app_with(|config| {
        config.xmpp.c2s_bind = "127.0.0.1:0".into();
        tweak(config);
    })
    .await
}

#[actix_web::test]
async fn starttls_is_required_then_scram_signs_in_and_chats_with_an_sse_user() {
    let app = spawn_with_c2s(|_| {}).await;
    app.create_user("ann").await;
    app.create_user("bob").await;
    assert!(app.dir.path().join("tls/xmpp-key.pem").exists(), "the pair was generated into the data dir");
    let mut x = XmppTcp::connect(&app).await;
    let features = x.open().await;
    let starttls = features.find("starttls", TLS).expect("STARTTLS is offered");
    assert!(starttls.find("required", TLS).is_some(), "and required: {}", features.to_xml());
    assert!(mechanisms(&features).is_empty(), "no SASL before TLS: {}", features.to_xml());
    // SASL before TLS is refused with a reason; the stream goes on.
    let plain = base64::engine::general_purpose::STANDARD.encode("\0ann\0pw-ann");
    x.send(&format!("<auth xmlns='{SASL}' mechanism='PLAIN'>{plain}</auth>")).await;
    let refused = x.next().await;
    assert!(refused.find("encryption-required", SASL).is_some(), "{}", refused.to_xml());
    let features = x.starttls(&app).await;
    assert!(features.find("starttls", TLS).is_none(), "no second STARTTLS: {}", features.to_xml());
    assert_eq!(
        mechanisms(&features),
        ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"],
        "{}",
        features.to_xml()
    );
    let bindings: Vec<_> = features
        .find("sasl-channel-binding", "urn:xmpp:sasl-cb:0")
        .expect("XEP-0440 channel-binding types")
        .elements()
        .filter_map(|e| e.get_attr("type").map(str::to_owned))
        .collect();
    assert_eq!(bindings, ["tls-exporter", "tls-server-end-point"]);
    let sha256 = ScramMechanism::Sha256;
    scram_bound(&mut x, sha256.name(), sha256, "ann", "pw-ann", "n,,", &[]).await.unwrap();
    x.bind("laptop").await;
    assert_eq!(x.jid, "ann@localhost/laptop");

    // Chat both ways with an SSE user.
    let bob = app.login("bob").await;
    let mut bob_sse = app.sse("bob", &format!("?stream={bob}")).await;
    x.send("<message to='bob@localhost' type='chat' id='m1'><body>hello over TCP</body></message>").await;
    let got = next_of(&mut bob_sse, "chatapi.chat", "chat").await;
    assert_eq!((got.data["body"].as_str(), got.data["from"].as_str()), (Some("hello over TCP"), Some(x.jid.as_str())));
    assert_eq!(app.send("bob", &bob, "ann", "hello back").await.status, 200);
    let message = loop {
        let e = x.next().await;
        if e.name == "message" {
            break e;
        }
    };
    assert_eq!(message.child_text("body", CLIENT).as_deref(), Some("hello back"));
    assert!(message.get_attr("from").unwrap().starts_with("bob@localhost/"), "{}", message.to_xml());

    // SCRAM-SHA-1 on a second connection, a station of its own.
    let mut y = XmppTcp::connect(&app).await;
    y.open().await;
    y.starttls(&app).await;
    let sha1 = ScramMechanism::Sha1;
    scram_bound(&mut y, sha1.name(), sha1, "ann", "pw-ann", "n,,", &[]).await.unwrap();
    y.bind("phone").await;
    assert_eq!(y.jid, "ann@localhost/phone");
    y.send("<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>").await;
    assert_eq!(y.next().await.get_attr("type"), Some("result"));
    y.send("</stream:stream>").await;
    assert!(y.until_closed().await.is_empty(), "the server closes its stream too");
}

#[actix_web::test]
async fn scram_plus_is_bound_to_this_tls_session() {
    let app = spawn_with_c2s(|_| {}).await;
    app.create_user("ann").await;
    let (sha256, sha1) = (ScramMechanism::Sha256, ScramMechanism::Sha1);

    // tls-exporter, as the client computes it from its own side of the session.
    let mut x = XmppTcp::connect(&app).await;
    x.open().await;
    x.starttls(&app).await;
    let exporter = x.tls_exporter();
    scram_bound(&mut x, "SCRAM-SHA-256-PLUS", sha256, "ann", "pw-ann", "p=tls-exporter,,", &exporter).await.unwrap();
    x.bind("plus").await;

    // tls-server-end-point: the hash of the certificate the client was shown.
    let mut x = XmppTcp::connect(&app).await;
    x.open().await;
    x.starttls(&app).await;
    let end_point = Sha256::digest(server_certificate(&app).as_ref()).to_vec();
    let gs2 = "p=tls-server-end-point,,";
    scram_bound(&mut x, "SCRAM-SHA-1-PLUS", sha1, "ann", "pw-ann", gs2, &end_point).await.unwrap();

    // Another session's binding, a 'y' while -PLUS is offered, and -PLUS without p= fail.
    let mut x = XmppTcp::connect(&app).await;
    x.open().await;
    x.starttls(&app).await;
    let refused =
        scram_bound(&mut x, "SCRAM-SHA-256-PLUS", sha256, "ann", "pw-ann", "p=tls-exporter,,", &exporter).await;
    assert!(refused.unwrap_err().contains("not this connection"));
    let refused = scram_bound(&mut x, "SCRAM-SHA-256", sha256, "ann", "pw-ann", "y,,", &[]).await;
    assert!(refused.unwrap_err().contains("stripped"));
    let refused = scram_bound(&mut x, "SCRAM-SHA-256-PLUS", sha256, "ann", "pw-ann", "n,,", &[]).await;
    assert!(refused.unwrap_err().contains("needs channel binding"));
    let closing = x.until_closed().await;
    assert!(closing.iter().any(|e| e.name == "error"), "three failures end the stream");
}

#[actix_web::test]
async fn wrong_passwords_and_bad_streams_are_refused_with_their_reasons() {
    let app = spawn_with_c2s(|_| {}).await;
    app.create_user("ann").await;
    let sha256 = ScramMechanism::Sha256;
    let mut x = XmppTcp::connect(&app).await;
    x.open().await;
    x.starttls(&app).await;
    for attempt in 1..=3 {
        let refused = scram_bound(&mut x, sha256.name(), sha256, "ann", "wrong", "n,,", &[]).await.unwrap_err();
        assert!(refused.contains("not-authorized"), "attempt {attempt}: {refused}");
    }
    let closing = x.until_closed().await;
    let error = closing.iter().find(|e| e.name == "error").expect("a stream error");
    assert!(error.to_xml().contains("too many failed authentication attempts"), "{}", error.to_xml());

    // Each of these ends the stream with the named condition, header first.
    for (input, condition) in [
        ("<iq><a></b></iq>", "not-well-formed"),
        ("<!-- a comment -->", "restricted-xml"),
        ("<message>", "policy-violation"),
        ("<message to='x'><body>stanzas wait for authentication</body></message>", "not-authorized"),
    ] {
        let mut x = XmppTcp::connect(&app).await;
        x.open().await;
        let mut bytes = input.as_bytes().to_vec();
        if condition == "policy-violation" {
            bytes.extend(std::iter::repeat_n(b'x', app.config.limits.max_body_bytes + 10));
        }
        x.send_bytes(&bytes).await;
        let closing = x.until_closed().await;
        let error = closing.iter().find(|e| e.name == "error").unwrap_or_else(|| panic!("{input}: no stream error"));
        assert!(error.find(condition, "urn:ietf:params:xml:ns:xmpp-streams").is_some(), "{input}: {}", error.to_xml());
    }
    let mut x = XmppTcp::connect(&app).await;
    x.send(&format!("<stream:stream to='elsewhere.example' xmlns='{CLIENT}' xmlns:stream='{STREAMS}' version='1.0'>"))
        .await;
    assert!(matches!(x.part().await, Some(Part::Open(_))), "the header comes before the error");
    let closing = x.until_closed().await;
    assert!(closing[0].to_xml().contains("host-unknown"), "{}", closing[0].to_xml());
    // Not a stream at all: the header, then the error.
    let mut x = XmppTcp::connect(&app).await;
    x.send("GET / HTTP/1.1\r\n\r\n").await;
    assert!(matches!(x.part().await, Some(Part::Open(_))));
    let closing = x.until_closed().await;
    assert!(closing[0].to_xml().contains("not-well-formed"), "{}", closing[0].to_xml());
}

#[actix_web::test]
async fn loopback_clients_may_skip_tls_where_configured_and_silence_closes_a_stream() {
    let app = spawn_with_c2s(|config| {
        config.xmpp.allow_plain_on_loopback = true;
        config.xmpp.timeout_secs = 1.0;
    })
    .await;
    app.create_user("ann").await;
    let mut x = XmppTcp::connect(&app).await;
    let features = x.open().await;
    let starttls = features.find("starttls", TLS).expect("STARTTLS is still offered");
    assert!(starttls.find("required", TLS).is_none(), "not required: {}", features.to_xml());
    assert!(mechanisms(&features).contains(&"PLAIN".to_owned()));
    assert!(!mechanisms(&features).iter().any(|m| m.ends_with("-PLUS")), "no -PLUS without TLS");
    let plain = base64::engine::general_purpose::STANDARD.encode("\0ann\0pw-ann");
    x.send(&format!("<auth xmlns='{SASL}' mechanism='PLAIN'>{plain}</auth>")).await;
    assert_eq!(x.next().await.name, "success");
    x.bind("bot").await;
    // Whitespace keepalives hold the stream past the timeout...
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        x.send(" ").await;
    }
    x.send("<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>").await;
    assert_eq!(x.next().await.get_attr("type"), Some("result"));
    // ...and silence ends it.
    let started = std::time::Instant::now();
    let closing = x.until_closed().await;
    assert!(closing.iter().any(|e| e.to_xml().contains("connection-timeout")));
    assert!(started.elapsed() >= Duration::from_millis(800), "{:?}", started.elapsed());
}

const CARBONS: &str = "urn:xmpp:carbons:2";
const SM: &str = "urn:xmpp:sm:3";

fn is_stanza(e: &Element) -> bool {
    matches!(e.name.as_str(), "message" | "presence" | "iq") && e.ns == CLIENT
}

fn body(e: &Element) -> Option<String> {
    (e.name == "message").then(|| e.child_text("body", CLIENT)).flatten()
}

/// Reads until `bodies` messages came, in that order, counting every stanza into `handled`
/// (XEP-0198 `h`); stream management elements are skipped.
async fn read_messages(x: &mut XmppTcp, bodies: &[&str], handled: &mut u32) -> Vec<String> {
    let mut seen = Vec::new();
    while seen.len() < bodies.len() {
        let e = x.next().await;
        if is_stanza(&e) {
            *handled += 1;
            if let Some(b) = body(&e) {
                seen.push(b);
            }
        }
    }
    assert_eq!(seen, bodies);
    seen
}

/// Ann and Bob; Bob's login stream, and Ann on TCP as `ann@localhost/phone` with resumable
/// stream management and its resumption id.
async fn ann_resumable_and_bob(app: &TestApp) -> (String, XmppTcp, String) {
    for name in ["ann", "bob"] {
        app.create_user(name).await;
    }
    let bob = app.login("bob").await;
    let mut ann = XmppTcp::login(app, "ann", "phone").await;
    let previd = enable_resumption(&mut ann).await;
    (bob, ann, previd)
}

/// Enables stream management with resumption; returns the resumption id.
async fn enable_resumption(x: &mut XmppTcp) -> String {
    x.send(&format!("<enable xmlns='{SM}' resume='true'/>")).await;
    let enabled = x.next_where("<enabled/>", |e| e.name == "enabled").await;
    assert_eq!(enabled.get_attr("resume"), Some("true"), "{}", enabled.to_xml());
    enabled.get_attr("id").expect("a resumption id").to_owned()
}

#[actix_web::test]
async fn a_dropped_stream_resumes_on_a_new_connection_with_nothing_lost_or_doubled() {
    let app = spawn_with_c2s(|_| {}).await;
    let (bob, mut ann, previd) = ann_resumable_and_bob(&app).await;
    let mut handled = 0;
    for body in ["one", "two", "three"] {
        assert_eq!(app.send("bob", &bob, "ann", body).await.status, 200);
    }
    read_messages(&mut ann, &["one", "two", "three"], &mut handled).await;
    // The server asks for an acknowledgement; Ann answers for what she has.
    let request = ann.next_where("<r/>", |e| e.name == "r" && e.ns == SM).await;
    assert_eq!(request.to_xml(), format!("<r xmlns=\"{SM}\"/>"));
    ann.send("<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>").await;
    ann.next_where("the ping's answer", |e| e.get_attr("id") == Some("p1")).await;
    handled += 1;
    ann.send(&format!("<a xmlns='{SM}' h='1'/>")).await;
    ann.send(&format!("<r xmlns='{SM}'/>")).await;
    let answer = ann.next_where("<a/>", |e| e.name == "a" && e.ns == SM).await;
    assert_eq!(answer.get_attr("h"), Some("1"), "the server handled Ann's one stanza, the ping");
    // The connection dies; what comes meanwhile is kept for the stream.
    drop(ann);
    tokio::time::sleep(Duration::from_millis(100)).await;
    for body in ["four", "five"] {
        assert_eq!(app.send("bob", &bob, "ann", body).await.status, 200);
    }

    // Another user cannot take Ann's stream, and an unknown id is not found.
    let mut mallory = XmppTcp::authenticated(&app, "bob").await;
    mallory.open().await;
    mallory.send(&format!("<resume xmlns='{SM}' previd='{previd}' h='0'/>")).await;
    let failed = mallory.next().await;
    assert!(failed.name == "failed" && failed.to_xml().contains("item-not-found"), "{}", failed.to_xml());

    // Ann comes back on a new connection, having handled every stanza before the drop.
    let mut ann = XmppTcp::authenticated(&app, "ann").await;
    ann.open().await;
    ann.send(&format!("<resume xmlns='{SM}' previd='nonsense' h='0'/>")).await;
    assert_eq!(ann.next().await.name, "failed");
    ann.send(&format!("<resume xmlns='{SM}' previd='{previd}' h='{handled}'/>")).await;
    let resumed = ann.next().await;
    assert_eq!(resumed.name, "resumed", "{}", resumed.to_xml());
    assert_eq!((resumed.get_attr("previd"), resumed.get_attr("h")), (Some(previd.as_str()), Some("1")));
    // Only what she had not had comes again: four and five, once.
    let mut after = 0;
    read_messages(&mut ann, &["four", "five"], &mut after).await;
    assert_eq!(after, 2, "nothing before them is sent again");
    // The stream goes on as the same station.
    assert_eq!(app.send("bob", &bob, "ann@localhost/phone", "six").await.status, 200);
    read_messages(&mut ann, &["six"], &mut after).await;
    ann.send("<iq type='get' id='p2'><ping xmlns='urn:xmpp:ping'/></iq>").await;
    let pong = ann.next_where("the ping's answer", |e| e.get_attr("id") == Some("p2")).await;
    assert_eq!(pong.get_attr("to"), Some("ann@localhost/phone"));
    ann.assert_quiet_except(Duration::from_millis(700), |e| !is_stanza(e)).await;
}

#[actix_web::test]
async fn what_a_stream_that_is_not_resumed_never_acknowledged_waits_for_the_next_login() {
    let app = spawn_with_c2s(|config| config.xmpp.resume_secs = 0.5).await;
    let (bob, mut ann, previd) = ann_resumable_and_bob(&app).await;
    let mut handled = 0;
    assert_eq!(app.send("bob", &bob, "ann", "seen").await.status, 200);
    assert_eq!(app.send("bob", &bob, "ann", "not acknowledged").await.status, 200);
    read_messages(&mut ann, &["seen", "not acknowledged"], &mut handled).await;
    ann.send(&format!("<a xmlns='{SM}' h='1'/>")).await;
    ann.send("<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>").await;
    ann.next_where("the ping's answer", |e| e.get_attr("id") == Some("p1")).await;
    drop(ann);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(app.send("bob", &bob, "ann", "while away").await.status, 200);
    tokio::time::sleep(Duration::from_millis(1200)).await;

    // Too late to resume; a new login gets what was never acknowledged, once, as offline.
    let mut ann = XmppTcp::authenticated(&app, "ann").await;
    ann.open().await;
    ann.send(&format!("<resume xmlns='{SM}' previd='{previd}' h='{handled}'/>")).await;
    assert_eq!(ann.next().await.name, "failed");
    ann.send("<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>").await;
    ann.next_where("the bind result", |e| e.get_attr("id") == Some("b")).await;
    let mut again = 0;
    read_messages(&mut ann, &["not acknowledged", "while away"], &mut again).await;
    ann.assert_quiet_except(Duration::from_millis(500), |e| body(e).is_none()).await;
}

fn carbon<'a>(e: &'a Element, direction: &str) -> Option<&'a Element> {
    let wrapper = e.find(direction, CARBONS)?;
    wrapper.find("forwarded", "urn:xmpp:forward:0")?.find("message", CLIENT)
}

#[actix_web::test]
async fn carbons_copy_a_users_messages_to_its_other_resources_that_asked() {
    let app = spawn_with_c2s(|_| {}).await;
    for name in ["ann", "bob"] {
        app.create_user(name).await;
    }
    let mut laptop = XmppTcp::login(&app, "ann", "laptop").await;
    let info = laptop
        .iq("d1", "<iq type='get' id='d1' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
        .await;
    assert!(info.to_xml().contains(CARBONS), "the server says it has carbons: {}", info.to_xml());
    let mut phone = XmppTcp::login(&app, "ann", "phone").await;
    let mut tablet = XmppTcp::login(&app, "ann", "tablet").await;
    for (x, id) in [(&mut laptop, "c1"), (&mut phone, "c2")] {
        let enabled = x.iq(id, &format!("<iq type='set' id='{id}'><enable xmlns='{CARBONS}'/></iq>")).await;
        assert_eq!(enabled.get_attr("type"), Some("result"), "{}", enabled.to_xml());
    }
    let mut bob = crate::xmpp::Xmpp::login(&app, "bob", "pw-bob").await;

    // Sent from the phone: the laptop gets a <sent/> copy; the tablet, which did not ask, none.
    phone.send("<message to='bob@localhost' type='chat' id='s1'><body>from my phone</body></message>").await;
    let copy = laptop.next_where("a sent copy", |e| carbon(e, "sent").is_some()).await;
    assert_eq!(copy.get_attr("from"), Some("ann@localhost"), "a copy comes from the user's own bare address");
    let inner = carbon(&copy, "sent").unwrap();
    assert_eq!(inner.get_attr("from"), Some("ann@localhost/phone"));
    assert_eq!(inner.get_attr("to"), Some("bob@localhost"));
    assert_eq!(inner.child_text("body", CLIENT).as_deref(), Some("from my phone"));
    let got = bob.next_where("the message", |e| e.name == "message").await;
    assert_eq!(got.get_attr("from"), Some("ann@localhost/phone"));

    // To the bare address: every resource gets the message itself, and no copy.
    bob.send("<message to='ann@localhost' type='chat' id='b1'><body>to all of you</body></message>").await;
    for x in [&mut laptop, &mut phone, &mut tablet] {
        let m = x.next_where("the message", |e| e.name == "message" && e.find("body", CLIENT).is_some()).await;
        assert_eq!(m.child_text("body", CLIENT).as_deref(), Some("to all of you"));
    }
    // To the phone alone: the laptop gets a <received/> copy.
    bob.send("<message to='ann@localhost/phone' type='chat' id='b2'><body>just the phone</body></message>").await;
    let m = phone.next_where("the message", |e| e.name == "message" && e.find("body", CLIENT).is_some()).await;
    assert_eq!(m.child_text("body", CLIENT).as_deref(), Some("just the phone"));
    let copy = laptop.next_where("a received copy", |e| carbon(e, "received").is_some()).await;
    let inner = carbon(&copy, "received").unwrap();
    assert_eq!(
        (inner.get_attr("to"), inner.child_text("body", CLIENT).as_deref()),
        (Some("ann@localhost/phone"), Some("just the phone"))
    );

    // After <disable/>, no more copies; the tablet never had any.
    laptop.iq("c3", &format!("<iq type='set' id='c3'><disable xmlns='{CARBONS}'/></iq>")).await;
    phone.send("<message to='bob@localhost' type='chat' id='s2'><body>again</body></message>").await;
    bob.next_where("the message", |e| e.name == "message").await;
    let is_copy = |e: &Element| carbon(e, "sent").is_some() || carbon(e, "received").is_some();
    laptop.assert_quiet_except(Duration::from_millis(300), |e| !is_copy(e)).await;
    tablet.assert_quiet_except(Duration::from_millis(300), |e| !is_copy(e)).await;
}

fn presence_from<'a>(e: &'a Element, from: &str) -> Option<&'a Element> {
    (e.name == "presence" && e.get_attr("from") == Some(from)).then_some(e)
}

#[actix_web::test]
async fn xmpp_contacts_see_every_resource_while_the_json_doors_see_one_presence() {
    let app = spawn_with_c2s(|_| {}).await;
    for name in ["ann", "bob", "cy"] {
        app.create_user(name).await;
    }
    for contact in ["bob@localhost", "cy@localhost"] {
        let r = app
            .post_json(
                "/restapi/v1/users/ann/roster",
                app.admin(),
                &serde_json::json!({"jid": contact, "subscriptionType": 3}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
    }
    let mut bob = XmppTcp::login(&app, "bob", "desk").await;
    let cy = app.login("cy").await;
    let mut cy_sse = app.sse("cy", &format!("?stream={cy}")).await;

    let mut laptop = XmppTcp::login(&app, "ann", "laptop").await;
    laptop.send("<presence><show>away</show><status>on the train</status><priority>5</priority></presence>").await;
    let away = bob
        .next_where("the laptop away", |e| {
            presence_from(e, "ann@localhost/laptop").is_some()
                && e.child_text("show", CLIENT).as_deref() == Some("away")
        })
        .await;
    assert_eq!(away.child_text("priority", CLIENT).as_deref(), Some("5"));
    let phone = XmppTcp::login(&app, "ann", "phone").await;
    let phone_up = bob.next_where("the phone", |e| presence_from(e, "ann@localhost/phone").is_some()).await;
    assert!(phone_up.get_attr("type").is_none() && phone_up.find("show", CLIENT).is_none(), "{}", phone_up.to_xml());

    // The JSON door sees one presence for Ann: the highest priority station's, the laptop.
    let seen = loop {
        let e = cy_sse.next_presence("available", "ann@localhost").await;
        if e.data["show"] == "away" {
            break e;
        }
    };
    assert_eq!(seen.data["status"], "on the train");
    // The phone going away changes no visible presence: nothing for the JSON door, a
    // resource leaving for XMPP.
    drop(phone);
    let gone = bob.next_where("the phone leaving", |e| presence_from(e, "ann@localhost/phone").is_some()).await;
    assert_eq!(gone.get_attr("type"), Some("unavailable"));
    bob.assert_quiet_except(Duration::from_millis(300), |e| presence_from(e, "ann@localhost").is_none()).await;
    cy_sse.assert_quiet_except(Duration::from_millis(300), &[]).await;

    // A new resource of Bob's is told of every available resource of Ann's: the laptop.
    let mut tablet = XmppTcp::login(&app, "bob", "tablet").await;
    let probed = tablet
        .next_where("Ann's laptop", |e| {
            e.name == "presence" && e.get_attr("from").is_some_and(|f| f.starts_with("ann@"))
        })
        .await;
    assert_eq!(probed.get_attr("from"), Some("ann@localhost/laptop"));
    assert_eq!(probed.child_text("show", CLIENT).as_deref(), Some("away"));
    tablet.assert_quiet_except(Duration::from_millis(300), |e| presence_from(e, "ann@localhost/phone").is_none()).await;

    // The last resource leaving: the resource, then Ann herself.
    drop(laptop);
    for x in [&mut bob, &mut tablet] {
        let left = x.next_where("the laptop leaving", |e| presence_from(e, "ann@localhost/laptop").is_some()).await;
        assert_eq!(left.get_attr("type"), Some("unavailable"));
        let all = x.next_where("Ann gone", |e| presence_from(e, "ann@localhost").is_some()).await;
        assert_eq!(all.get_attr("type"), Some("unavailable"));
    }
    cy_sse.next_presence("unavailable", "ann@localhost").await;
}
