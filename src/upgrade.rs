//! Upgraded connections (the `/ws` and `/xmpp-websocket` doors) without the HTTP layer's
//! per-connection buffers.
//!
//! actix-http keeps an 8 KiB read buffer and an 8 KiB write buffer for every connection, for
//! as long as it lives; a websocket held open for hours would carry both. So requests with
//! `Connection: Upgrade` leave the HTTP dispatcher through actix-http's upgrade hook and are
//! served here:
//! - the request still goes through the one [`App`](actix_web::App) (routing, extractors,
//!   authentication, the websocket handshake), with a request body fed from here;
//! - a `101` response's head is encoded by the HTTP codec, and its body (the websocket
//!   context's frames) is written to the socket chunk by chunk as it is produced, with no
//!   buffer of our own;
//! - what the client sends is read through one scratch buffer per worker thread and handed
//!   over in exact-size chunks, at most [`INBOX_LIMIT`] bytes ahead of the connection actor.
//!
//! Each upgraded connection runs in a task of its own, so the HTTP dispatcher's task ends at
//! the upgrade. An idle upgraded socket so holds no buffer at all, and no HTTP state. A
//! response other than `101` (a refused handshake, an unknown path) is written by the HTTP
//! codec, and the connection is closed after it.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use actix_codec::{Encoder, Framed};
use actix_http::body::{BoxBody, MessageBody};
use actix_http::error::PayloadError;
use actix_http::{h1, ConnectionType, Payload, Request, Response, StatusCode};
use actix_service::{fn_factory, fn_service, IntoServiceFactory, Service, ServiceFactory};
use actix_web::dev::{AppConfig, ServiceResponse};
use actix_web::rt::net::TcpStream;
use bytes::{Buf, Bytes, BytesMut};
use futures_util::Stream;

/// Most bytes read from one client and not yet taken by its connection actor; past this the
/// socket is not read (TCP pushes back on the client).
pub const INBOX_LIMIT: usize = 64 * 1024;

/// Size of the per-thread scratch buffer reads go through.
const READ_CHUNK: usize = 16 * 1024;

/// Socket operations one poll of a connection may make before it yields to the others.
const OPS_PER_POLL: usize = 64;

thread_local! {
    static SCRATCH: RefCell<Vec<u8>> = RefCell::new(vec![0; READ_CHUNK]);
}

/// The upgrade service for [`actix_http::HttpServiceBuilder::upgrade`]: one instance of the
/// application per worker (`make_app` builds it, as for the HTTP service).
pub fn service_factory<F, I, S, B>(
    make_app: F,
) -> impl ServiceFactory<
    (Request, Framed<TcpStream, h1::Codec>),
    Config = (),
    Response = (),
    Error = actix_web::Error,
    InitError = (),
>
where
    F: Fn() -> I + Clone + 'static,
    I: IntoServiceFactory<S, Request>,
    S: ServiceFactory<
            Request,
            Config = AppConfig,
            Response = ServiceResponse<B>,
            Error = actix_web::Error,
            InitError = (),
        > + 'static,
    S::Service: 'static,
    B: MessageBody + 'static,
{
    fn_factory(move || {
        let factory = make_app().into_factory();
        async move {
            let app = Rc::new(factory.new_service(AppConfig::default()).await?);
            Ok(fn_service(move |(request, framed): (Request, Framed<TcpStream, h1::Codec>)| {
                // The connection goes on in a task of its own, and the HTTP dispatcher's task
                // (2.8 KiB, sized for a keep-alive HTTP connection) ends here.
                let app = app.clone();
                actix_web::rt::spawn(async move {
                    if let Err(e) = serve(app, request, framed).await {
                        tracing::debug!(error = %e, "upgraded connection ended with an error");
                    }
                });
                std::future::ready(Ok::<(), actix_web::Error>(()))
            }))
        }
    })
}

/// Serves one upgrade request, and the connection after it.
///
/// The handshake's future (the application's, with its middleware) is boxed and gone once
/// the `101` is written: what the connection's task keeps is the socket, its inbox and the
/// relay between them, a few hundred bytes.
async fn serve<A, B>(app: Rc<A>, request: Request, framed: Framed<TcpStream, h1::Codec>) -> io::Result<()>
where
    A: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody + 'static,
{
    match Box::pin(handshake(app, request, framed)).await? {
        Some((io, inbox, body)) => pump(&io, &inbox, body).await,
        None => Ok(()),
    }
}

/// Runs the request through the application and writes its response head. An upgrade gives
/// back the socket, the inbox and the response body to relay; a refusal is written whole
/// and gives back nothing.
async fn handshake<A, B>(
    app: Rc<A>,
    request: Request,
    framed: Framed<TcpStream, h1::Codec>,
) -> io::Result<Option<(TcpStream, Rc<RefCell<Inbox>>, BoxBody)>>
where
    A: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody + 'static,
{
    let parts = framed.into_parts();
    let (io, mut codec) = (parts.io, parts.codec);
    // Bytes the client sent right behind the request head (a websocket client may write its
    // first frame without waiting for the 101).
    let inbox = Inbox::shared();
    if !parts.read_buf.is_empty() {
        inbox.borrow_mut().push(Bytes::copy_from_slice(&parts.read_buf));
    }
    drop(parts.read_buf);
    drop(parts.write_buf);

    let body_stream: Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>> = Box::pin(InboxStream(inbox.clone()));
    let (request, _) = request.replace_payload(Payload::from(body_stream));
    let response: Response<BoxBody> = match app.call(request).await {
        Ok(response) => Response::from(response).map_body(|_, body| body.boxed()),
        Err(e) => Response::from(e),
    };
    let (mut head, body) = response.into_parts();
    let upgraded = head.status() == StatusCode::SWITCHING_PROTOCOLS;
    if !upgraded {
        head.head_mut().set_connection_type(ConnectionType::Close);
    }
    let mut out = BytesMut::new();
    codec.encode(h1::Message::Item((head, body.size())), &mut out)?;
    if upgraded {
        write_all(&io, out.freeze()).await?;
        Ok(Some((io, inbox, body)))
    } else {
        drop(inbox);
        write_encoded_body(&io, &mut codec, out, body).await?;
        Ok(None)
    }
}

/// A refused upgrade: the rest of the response through the HTTP codec, then close.
async fn write_encoded_body(io: &TcpStream, codec: &mut h1::Codec, mut out: BytesMut, body: BoxBody) -> io::Result<()> {
    let mut body = std::pin::pin!(body);
    while let Some(chunk) = poll_fn(|cx| body.as_mut().poll_next(cx)).await {
        let chunk = chunk.map_err(|e| io::Error::other(e.to_string()))?;
        codec.encode(h1::Message::Chunk(Some(chunk)), &mut out)?;
    }
    codec.encode(h1::Message::Chunk(None), &mut out)?;
    write_all(io, out.freeze()).await
}

async fn write_all(io: &TcpStream, mut bytes: Bytes) -> io::Result<()> {
    while !bytes.is_empty() {
        io.writable().await?;
        match io.try_write(&bytes) {
            Ok(n) => bytes.advance(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Moves bytes both ways until the response body (the connection actor's output) ends or
/// the socket fails. Each round reads what the client sent (while the inbox has room), then
/// gathers what the actor produced into one write, as the HTTP dispatcher does. The body is
/// polled only when the last write went out, so a client that does not read stops the
/// output here (the connection's outbox budget then closes it).
fn pump<'a>(
    io: &'a TcpStream,
    inbox: &'a Rc<RefCell<Inbox>>,
    body: BoxBody,
) -> impl Future<Output = io::Result<()>> + 'a {
    let mut body = Box::pin(body);
    let mut unwritten: Option<Bytes> = None;
    let mut body_ended = false;
    let mut reading = true;
    poll_fn(move |cx| {
        for _ in 0..OPS_PER_POLL {
            let mut progress = false;

            while reading && inbox.borrow_mut().poll_room(cx).is_ready() {
                match io.poll_read_ready(cx) {
                    Poll::Ready(Ok(())) => {
                        let read = SCRATCH.with_borrow_mut(|scratch| {
                            io.try_read(scratch).map(|n| Bytes::copy_from_slice(&scratch[..n]))
                        });
                        match read {
                            Ok(bytes) if bytes.is_empty() => {
                                inbox.borrow_mut().finish(None);
                                reading = false;
                            }
                            Ok(bytes) => {
                                inbox.borrow_mut().push(bytes);
                                progress = true;
                            }
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                            Err(e) => {
                                inbox.borrow_mut().finish(Some(PayloadError::Io(e)));
                                reading = false;
                            }
                        }
                    }
                    Poll::Ready(Err(e)) => {
                        inbox.borrow_mut().finish(Some(PayloadError::Io(e)));
                        reading = false;
                    }
                    Poll::Pending => break,
                }
            }

            if unwritten.is_none() && !body_ended {
                loop {
                    match body.as_mut().poll_next(cx) {
                        Poll::Ready(Some(Ok(chunk))) => {
                            let gathered = match unwritten.take() {
                                None => chunk,
                                Some(earlier) => concat(&earlier, &chunk),
                            };
                            let full = gathered.len() >= WRITE_GATHER_LIMIT;
                            unwritten = (!gathered.is_empty()).then_some(gathered);
                            progress = true;
                            if full {
                                break;
                            }
                        }
                        Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(io::Error::other(e.to_string()))),
                        Poll::Ready(None) => {
                            body_ended = true;
                            break;
                        }
                        Poll::Pending => break,
                    }
                }
            }

            while let Some(chunk) = &mut unwritten {
                match io.poll_write_ready(cx) {
                    Poll::Ready(Ok(())) => match io.try_write(chunk) {
                        Ok(n) => {
                            chunk.advance(n);
                            if chunk.is_empty() {
                                unwritten = None;
                                progress = true;
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(e) => return Poll::Ready(Err(e)),
                    },
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => break,
                }
            }

            if body_ended && unwritten.is_none() {
                return Poll::Ready(Ok(()));
            }
            if !progress {
                return Poll::Pending;
            }
        }
        // Busy both ways: let the worker's other connections run, and come back.
        cx.waker().wake_by_ref();
        Poll::Pending
    })
}

/// Most output bytes gathered into one write.
const WRITE_GATHER_LIMIT: usize = 64 * 1024;

fn concat(first: &[u8], second: &[u8]) -> Bytes {
    let mut joined = BytesMut::with_capacity(first.len() + second.len());
    joined.extend_from_slice(first);
    joined.extend_from_slice(second);
    joined.freeze()
}

/// What the client sent and the connection actor has not yet taken.
#[derive(Default)]
struct Inbox {
    chunks: VecDeque<Bytes>,
    queued: usize,
    ended: bool,
    error: Option<PayloadError>,
    /// The request body's reader, waiting for bytes.
    reader: Option<Waker>,
    /// The socket reader, waiting for room.
    socket: Option<Waker>,
}

impl Inbox {
    fn shared() -> Rc<RefCell<Inbox>> {
        Rc::new(RefCell::new(Inbox::default()))
    }

    fn push(&mut self, bytes: Bytes) {
        self.queued += bytes.len();
        self.chunks.push_back(bytes);
        if let Some(reader) = self.reader.take() {
            reader.wake();
        }
    }

    fn finish(&mut self, error: Option<PayloadError>) {
        self.ended = true;
        self.error = error;
        if let Some(reader) = self.reader.take() {
            reader.wake();
        }
    }

    fn poll_room(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.queued < INBOX_LIMIT {
            Poll::Ready(())
        } else {
            self.socket = Some(cx.waker().clone());
            Poll::Pending
        }
    }
}

/// The request body the application reads: the inbox, drained.
struct InboxStream(Rc<RefCell<Inbox>>);

impl Stream for InboxStream {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut inbox = self.0.borrow_mut();
        if let Some(bytes) = inbox.chunks.pop_front() {
            inbox.queued -= bytes.len();
            if inbox.chunks.is_empty() {
                // An idle connection keeps no queue storage.
                inbox.chunks = VecDeque::new();
            }
            if let Some(socket) = inbox.socket.take() {
                socket.wake();
            }
            return Poll::Ready(Some(Ok(bytes)));
        }
        if let Some(error) = inbox.error.take() {
            return Poll::Ready(Some(Err(error)));
        }
        if inbox.ended {
            return Poll::Ready(None);
        }
        inbox.reader = Some(cx.waker().clone());
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noop_context() -> Context<'static> {
        Context::from_waker(Waker::noop())
    }

    #[test]
    fn the_inbox_hands_over_chunks_in_order_then_ends() {
        let inbox = Inbox::shared();
        let mut stream = InboxStream(inbox.clone());
        let mut cx = noop_context();
        assert!(Pin::new(&mut stream).poll_next(&mut cx).is_pending());
        inbox.borrow_mut().push(Bytes::from_static(b"ab"));
        inbox.borrow_mut().push(Bytes::from_static(b"c"));
        inbox.borrow_mut().finish(None);
        let mut got = Vec::new();
        while let Poll::Ready(Some(Ok(bytes))) = Pin::new(&mut stream).poll_next(&mut cx) {
            got.extend_from_slice(&bytes);
        }
        assert_eq!(got, b"abc");
        assert!(matches!(Pin::new(&mut stream).poll_next(&mut cx), Poll::Ready(None)));
    }

    #[test]
    fn a_full_inbox_refuses_more_until_read() {
        let inbox = Inbox::shared();
        let mut stream = InboxStream(inbox.clone());
        let mut cx = noop_context();
        inbox.borrow_mut().push(Bytes::from(vec![0u8; INBOX_LIMIT]));
        assert!(inbox.borrow_mut().poll_room(&mut cx).is_pending());
        assert!(matches!(Pin::new(&mut stream).poll_next(&mut cx), Poll::Ready(Some(Ok(_)))));
        assert!(inbox.borrow_mut().poll_room(&mut cx).is_ready());
    }

    #[test]
    fn a_socket_error_reaches_the_reader_after_the_data() {
        let inbox = Inbox::shared();
        let mut stream = InboxStream(inbox.clone());
        let mut cx = noop_context();
        inbox.borrow_mut().push(Bytes::from_static(b"x"));
        inbox.borrow_mut().finish(Some(PayloadError::Io(io::Error::other("reset"))));
        assert!(matches!(Pin::new(&mut stream).poll_next(&mut cx), Poll::Ready(Some(Ok(_)))));
        assert!(matches!(Pin::new(&mut stream).poll_next(&mut cx), Poll::Ready(Some(Err(_)))));
        assert!(matches!(Pin::new(&mut stream).poll_next(&mut cx), Poll::Ready(None)));
    }
}
