//! XMPP over TCP (RFC 6120): the client listener on `xmpp.c2s_bind`.
//!
//! Each connection is an [`XmppSession`] (the same stream logic as the websocket door) and
//! one task that owns the socket: it cuts what the client sends into parts ([`Framer`]),
//! hands them to the session one at a time (waiting for each, so a client that floods is
//! read no faster than it is served), and writes what the session queues. STARTTLS turns the
//! socket into a TLS one in place: the session answers `<proceed/>`, the task writes it,
//! runs the handshake and starts a new stream, and tells the session the TLS session's
//! channel bindings. A client that sends nothing for `xmpp.timeout_secs` is closed.
//!
//! XEP-0198 resumption: a stream with stream management enabled registers itself under its
//! resumption id ([`Resumable`], one per server). When its connection drops it waits; a new
//! connection that authenticates as the same user and sends `<resume/>` hands its socket
//! task to that stream, which sends again what the client had not acknowledged.
//!
//! What is read goes through one scratch buffer per worker thread, so an idle connection
//! holds no read buffer of its own (TLS keeps rustls's).

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::sync::Mutex;
use std::task::{Context as TaskContext, Poll};

use actix::prelude::*;
use actix_service::{fn_service, ServiceFactory};
use actix_web::rt::net::TcpStream;
use actix_web::web;
use bytestring::ByteString;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::Notify;
use tokio::time::{sleep_until, Instant};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use super::framer::{Framer, Part};
use super::ns;
use super::scram::ChannelBindings;
use super::session::{Flow, Inbound, Link, Security, XmppSession};
use super::tls::TlsSetup;
use super::xml::{escape, parse_element, Element, XmlError};
use crate::config::secs;
use crate::outbox::OutboxBudget;
use crate::state::AppState;

/// Size of the per-thread scratch buffer reads go through.
const READ_CHUNK: usize = 16 * 1024;

thread_local! {
    static SCRATCH: RefCell<Vec<u8>> = RefCell::new(vec![0; READ_CHUNK]);
}

/// The listener's service for actix-server: one [`serve`] per accepted connection.
pub fn service(
    state: web::Data<AppState>,
    tls: Option<Arc<TlsSetup>>,
    resumable: Arc<Resumable>,
) -> impl ServiceFactory<TcpStream, Config = (), Response = (), Error = (), InitError = ()> {
    fn_service(move |stream: TcpStream| {
        // Boxed: the task actix-server spawns holds a pointer, not the connection's whole
        // state machine (which each wrapping future would copy into its own).
        let serving = Box::pin(serve(stream, state.clone(), tls.clone(), resumable.clone()));
        async move {
            serving.await;
            Ok::<_, ()>(())
        }
    })
}

/// A resumable stream: its user and its actor.
type Waiting = (String, Addr<XmppSession<TcpLink>>);

/// The server's resumable streams, by resumption id.
#[derive(Default)]
pub struct Resumable {
    streams: Mutex<HashMap<String, Waiting>>,
}

impl Resumable {
    fn insert(&self, id: &str, username: &str, session: Addr<XmppSession<TcpLink>>) {
        self.lock().insert(id.to_owned(), (username.to_owned(), session));
    }

    fn remove(&self, id: &str) {
        self.lock().remove(id);
    }

    /// `username`'s stream `id`, if it waits (another user's is not found either).
    fn find(&self, id: &str, username: &str) -> Option<Addr<XmppSession<TcpLink>>> {
        self.lock().get(id).filter(|(owner, _)| owner == username).map(|(_, session)| session.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Waiting>> {
        self.streams.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Tells one connection's socket task from another's.
static NEXT_LINK: AtomicU64 = AtomicU64::new(1);

/// What the session asks the socket task to do.
#[derive(Debug)]
pub enum Outgoing {
    Text(ByteString),
    /// Write what is queued, then close.
    Close,
}

/// What the session queues for its socket task: a deque behind a lock and a wake-up. An
/// idle connection holds no buffer (a channel would keep a block of slots for each).
#[derive(Clone, Default)]
struct Outbox(Arc<OutboxInner>);

#[derive(Default)]
struct OutboxInner {
    items: Mutex<VecDeque<Outgoing>>,
    ready: Notify,
}

/// A queue that grew past this many items is given back when it empties.
const OUTBOX_KEPT: usize = 8;

impl Outbox {
    fn push(&self, item: Outgoing) {
        self.0.items.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push_back(item);
        self.0.ready.notify_one();
    }

    fn pop(&self) -> Option<Outgoing> {
        let mut items = self.0.items.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let item = items.pop_front();
        if items.is_empty() && items.capacity() > OUTBOX_KEPT {
            *items = VecDeque::new();
        }
        item
    }

    /// The next item, waiting for one. Cancel-safe: an item is taken only when returned.
    async fn next(&self) -> Outgoing {
        loop {
            if let Some(item) = self.pop() {
                return item;
            }
            self.0.ready.notified().await;
        }
    }
}

/// The TCP door's side of a stream.
pub struct TcpLink {
    id: u64,
    out: Outbox,
    security: Security,
    resumable: Arc<Resumable>,
}

type Ctx = Context<XmppSession<TcpLink>>;

impl Link for TcpLink {
    type Context = Ctx;
    const HEADER_BEFORE_ERROR: bool = true;

    fn write(&mut self, _ctx: &mut Ctx, text: ByteString) {
        self.out.push(Outgoing::Text(text));
    }

    fn close(&mut self, ctx: &mut Ctx, _reason: &str) {
        self.out.push(Outgoing::Close);
        ctx.stop();
    }

    fn header(&self, from: &str, id: &str) -> String {
        format!(
            "<?xml version='1.0'?><stream:stream xmlns='{}' xmlns:stream='{}' from='{}' id='{}' version='1.0' \
             xml:lang='en'>",
            ns::CLIENT,
            ns::STREAMS,
            escape(from),
            escape(id)
        )
    }

    fn footer(&self) -> &'static str {
        "</stream:stream>"
    }

    fn check_header(open: &Element) -> Result<(), String> {
        if open.name != "stream" || open.ns != ns::STREAMS {
            return Err(format!("the stream header is <stream:stream xmlns:stream='{}'>", ns::STREAMS));
        }
        Ok(())
    }

    fn security(&self) -> &Security {
        &self.security
    }

    fn offer_resumption(&mut self, ctx: &mut Ctx, id: &str, username: &str) -> bool {
        self.resumable.insert(id, username, ctx.address());
        true
    }

    fn forget_resumption(&mut self, id: &str) {
        self.resumable.remove(id);
    }
}

/// A stream that waited takes over a new connection's socket task (XEP-0198 `<resume/>`).
#[derive(Message)]
#[rtype(result = "Result<(), String>")]
struct Resume {
    h: u32,
    link: u64,
    out: Outbox,
    security: Security,
    budget: OutboxBudget,
}

impl Handler<Resume> for XmppSession<TcpLink> {
    type Result = Result<(), String>;

    fn handle(&mut self, resume: Resume, ctx: &mut Ctx) -> Self::Result {
        // The old socket task, if it still runs, is told to close.
        let (old_out, old_security) = (
            std::mem::replace(&mut self.link.out, resume.out),
            std::mem::replace(&mut self.link.security, resume.security),
        );
        let old = (self.link.id, std::mem::replace(&mut self.budget, resume.budget));
        self.link.id = resume.link;
        match self.resumed(resume.h, ctx) {
            Ok(()) => {
                old_out.push(Outgoing::Close);
                Ok(())
            }
            Err(why) => {
                (self.link.out, self.link.security) = (old_out, old_security);
                (self.link.id, self.budget) = old;
                Err(why)
            }
        }
    }
}

/// The socket task of connection `link` ended or heard nothing for too long; a stream that
/// has moved to another connection ignores it.
#[derive(Message)]
#[rtype(result = "()")]
struct LinkEnded {
    link: u64,
    silent: bool,
}

impl Handler<LinkEnded> for XmppSession<TcpLink> {
    type Result = ();

    fn handle(&mut self, ended: LinkEnded, ctx: &mut Ctx) {
        if ended.link == self.link.id {
            self.inbound(if ended.silent { Inbound::Silent } else { Inbound::Lost }, ctx);
        }
    }
}

/// `<resume/>` named no stream this user may take: the new stream says so and goes on.
#[derive(Message)]
#[rtype(result = "()")]
struct ResumeFailed;

impl Handler<ResumeFailed> for XmppSession<TcpLink> {
    type Result = ();

    fn handle(&mut self, _: ResumeFailed, ctx: &mut Ctx) {
        self.resume_failed("item-not-found", ctx);
    }
}

/// The TLS session is up: its channel bindings.
#[derive(Message)]
#[rtype(result = "()")]
struct TlsStarted(ChannelBindings);

impl Handler<TlsStarted> for XmppSession<TcpLink> {
    type Result = ();

    fn handle(&mut self, started: TlsStarted, _: &mut Ctx) {
        self.link.security.encrypted = true;
        self.link.security.channel_bindings = started.0;
    }
}

/// A part of the stream the framer refused: the session ends the stream with this.
#[derive(Message)]
#[rtype(result = "()")]
struct Broken {
    condition: &'static str,
    text: String,
}

impl Handler<Broken> for XmppSession<TcpLink> {
    type Result = ();

    fn handle(&mut self, broken: Broken, ctx: &mut Ctx) {
        self.stream_error(broken.condition, &broken.text, ctx);
    }
}

fn broken(error: &XmlError) -> Broken {
    let condition = match error {
        XmlError::TooLarge(..) => "policy-violation",
        XmlError::Restricted(_) => "restricted-xml",
        _ => "not-well-formed",
    };
    Broken { condition, text: error.to_string() }
}

/// The socket, before or after STARTTLS.
enum Io {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// Only while the handshake holds the socket.
    Gone,
}

impl AsyncRead for Io {
    fn poll_read(self: Pin<&mut Self>, cx: &mut TaskContext<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => Pin::new(s).poll_read(cx, buf),
            Io::Gone => Poll::Ready(Ok(())),
        }
    }
}

impl AsyncWrite for Io {
    fn poll_write(self: Pin<&mut Self>, cx: &mut TaskContext<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Io::Tls(s) => Pin::new(s).poll_write(cx, buf),
            Io::Gone => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_flush(cx),
            Io::Tls(s) => Pin::new(s).poll_flush(cx),
            Io::Gone => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Io::Tls(s) => Pin::new(s).poll_shutdown(cx),
            Io::Gone => Poll::Ready(Ok(())),
        }
    }
}

/// Reads what is there into the framer; `Ok(0)` at the end of the stream.
async fn read_some(io: &mut Io, framer: &mut Framer, parts: &mut Vec<Part>) -> Result<usize, ReadError> {
    poll_fn(|cx| {
        SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            let mut buf = ReadBuf::new(&mut scratch);
            match Pin::new(&mut *io).poll_read(cx, &mut buf) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(Err(e)) => Poll::Ready(Err(ReadError::Io(e))),
                Poll::Ready(Ok(())) => {
                    let read = buf.filled();
                    Poll::Ready(framer.push(read, parts).map(|()| read.len()).map_err(ReadError::Xml))
                }
            }
        })
    })
    .await
}

enum ReadError {
    Io(io::Error),
    Xml(XmlError),
}

enum Next {
    Out(Outgoing),
    Read(Result<usize, ReadError>),
    Silent,
}

/// Writes `first` and whatever else is queued, then flushes; false when the socket failed
/// or the session asked to close.
async fn write_queued(io: &mut Io, first: Outgoing, queue: &Outbox, budget: &OutboxBudget) -> bool {
    let mut next = Some(first);
    while let Some(item) = next.take() {
        match item {
            Outgoing::Text(text) => {
                if io.write_all(text.as_bytes()).await.is_err() {
                    return false;
                }
                budget.release(text.len());
            }
            Outgoing::Close => {
                let _ = io.flush().await;
                let _ = io.shutdown().await;
                return false;
            }
        }
        next = queue.pop();
    }
    io.flush().await.is_ok()
}

/// One client connection, from accept to close.
async fn serve(stream: TcpStream, state: web::Data<AppState>, tls: Option<Arc<TlsSetup>>, resumable: Arc<Resumable>) {
    let loopback = stream.peer_addr().is_ok_and(|peer| peer.ip().is_loopback());
    let _ = stream.set_nodelay(true);
    let config = state.config.clone();
    let out = Outbox::default();
    let security = Security {
        tls_available: tls.is_some(),
        plain_allowed: config.xmpp.allow_plain_on_loopback && loopback,
        ..Security::default()
    };
    let budget = OutboxBudget::new(config.limits.outbox_bytes);
    let link = NEXT_LINK.fetch_add(1, Ordering::Relaxed);
    let tcp_link = TcpLink { id: link, out: out.clone(), security: security.clone(), resumable: resumable.clone() };
    let mut session = XmppSession::new(state, tcp_link, budget.clone()).start();
    let max = config.limits.max_body_bytes;
    let timeout = secs(config.xmpp.timeout_secs);
    let mut io = Io::Plain(stream);
    let mut framer = Framer::new(max);
    let mut parts = Vec::new();
    let mut reading = true;
    let mut deadline = Instant::now() + timeout;
    'connection: loop {
        let next = tokio::select! {
            biased;
            item = out.next() => Next::Out(item),
            read = read_some(&mut io, &mut framer, &mut parts), if reading => Next::Read(read),
            () = sleep_until(deadline), if reading => Next::Silent,
        };
        match next {
            Next::Out(item) => {
                if !write_queued(&mut io, item, &out, &budget).await {
                    break;
                }
            }
            Next::Read(Ok(0)) => break,
            Next::Read(Err(ReadError::Io(error))) => {
                tracing::debug!(%error, "an XMPP client's connection failed");
                break;
            }
            Next::Read(Err(ReadError::Xml(error))) => {
                // What came before the error is still served, then the stream ends.
                reading = false;
                for part in parts.drain(..) {
                    if let Some(inbound) = to_inbound(part, max, &session) {
                        let _ = session.send(inbound).await;
                    }
                }
                session.do_send(broken(&error));
            }
            Next::Read(Ok(_)) => {
                deadline = Instant::now() + timeout;
                let mut pending = std::mem::take(&mut parts).into_iter();
                while let Some(part) = pending.next() {
                    let Some(inbound) = to_inbound(part, max, &session) else {
                        reading = false;
                        break;
                    };
                    match session.send(inbound).await {
                        Ok(Flow::Continue) => {}
                        Ok(Flow::StartTls) => {
                            if pending.next().is_some() || framer.pending() > 0 {
                                // Nothing may follow <starttls/> before <proceed/>.
                                break 'connection;
                            }
                            let Some(tls) = &tls else { break 'connection };
                            // Boxed, as the resumption below: rare steps, kept out of
                            // the state every idle connection holds.
                            match Box::pin(start_tls(&mut io, &out, &budget, tls)).await {
                                Some(bindings) => session.do_send(TlsStarted(bindings)),
                                None => break 'connection,
                            }
                            framer.reset();
                        }
                        Ok(Flow::Resume { previd, h, username }) => {
                            let Some(stream) = resumable.find(&previd, &username) else {
                                session.do_send(ResumeFailed);
                                continue;
                            };
                            let mut security = security.clone();
                            security.encrypted = matches!(io, Io::Tls(_));
                            if let Io::Tls(tls_stream) = &io {
                                security.channel_bindings =
                                    tls.as_ref().map(|t| t.bindings(tls_stream.get_ref().1)).unwrap_or_default();
                            }
                            let resume = Resume { h, link, out: out.clone(), security, budget: budget.clone() };
                            match Box::pin(stream.send(resume)).await {
                                Ok(Ok(())) => {
                                    // The stream that authenticated this connection is done.
                                    session.do_send(Inbound::Lost);
                                    session = stream;
                                }
                                _ => session.do_send(ResumeFailed),
                            }
                        }
                        Err(_) => break 'connection,
                    }
                }
            }
            Next::Silent => {
                reading = false;
                session.do_send(LinkEnded { link, silent: true });
            }
        }
    }
    session.do_send(LinkEnded { link, silent: false });
}

/// A framed part as the session's input; `None` when it does not parse (the session has
/// been told to end the stream).
fn to_inbound(part: Part, max: usize, session: &Addr<XmppSession<TcpLink>>) -> Option<Inbound> {
    let parsed = match part {
        Part::Close => return Some(Inbound::Close),
        Part::Open(text) => parse_element(&text, max, ns::CLIENT).map(Inbound::Open),
        Part::Element(text) => parse_element(&text, max, ns::CLIENT).map(Inbound::Element),
    };
    match parsed {
        Ok(inbound) => Some(inbound),
        Err(error) => {
            session.do_send(broken(&error));
            None
        }
    }
}

/// Writes `<proceed/>` (queued by the session), then runs the TLS handshake on the socket.
async fn start_tls(io: &mut Io, queue: &Outbox, budget: &OutboxBudget, tls: &TlsSetup) -> Option<ChannelBindings> {
    while let Some(item) = queue.pop() {
        if !write_queued(io, item, queue, budget).await {
            return None;
        }
    }
    let Io::Plain(stream) = std::mem::replace(io, Io::Gone) else { return None };
    let handshake = TlsAcceptor::from(tls.config.clone()).accept(stream);
    let stream = match tokio::time::timeout(secs(30.0), handshake).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "an XMPP client's TLS handshake failed");
            return None;
        }
        Err(_) => return None,
    };
    let bindings = tls.bindings(stream.get_ref().1);
    *io = Io::Tls(Box::new(stream));
    Some(bindings)
}
