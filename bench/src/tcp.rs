//! XMPP over TCP (RFC 6120) for the `xmpp` scenarios, behind the same frames as RFC 7395: a
//! [`Conn`] is a websocket or a TCP stream, and the scenarios send and read text frames on
//! either. On TCP, the framing `<open/>` the scenarios write becomes a stream header,
//! `<close/>` the stream's end, and what the server writes is cut into one frame per
//! top-level element (quick-xml finds the boundaries; the server's stream header is not a
//! frame). No TLS: the servers under test allow plain TCP from loopback (Switchboard with
//! `xmpp.allow_plain_on_loopback`).

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::{Sink, Stream};
use quick_xml::events::Event;
use quick_xml::Reader;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

/// A client connection: a websocket, or XMPP over TCP.
pub enum Conn {
    Ws(Box<WebSocketStream<TcpStream>>),
    Tcp(XmppTcp),
}

impl Stream for Conn {
    type Item = Result<Message, WsError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.get_mut() {
            Conn::Ws(ws) => Pin::new(ws.as_mut()).poll_next(cx),
            Conn::Tcp(tcp) => Pin::new(tcp).poll_next(cx),
        }
    }
}

impl Sink<Message> for Conn {
    type Error = WsError;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        match self.get_mut() {
            Conn::Ws(ws) => Pin::new(ws.as_mut()).poll_ready(cx),
            Conn::Tcp(tcp) => Pin::new(tcp).poll_ready(cx),
        }
    }

    fn start_send(self: Pin<&mut Self>, item: Message) -> Result<(), WsError> {
        match self.get_mut() {
            Conn::Ws(ws) => Pin::new(ws.as_mut()).start_send(item),
            Conn::Tcp(tcp) => Pin::new(tcp).start_send(item),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        match self.get_mut() {
            Conn::Ws(ws) => Pin::new(ws.as_mut()).poll_flush(cx),
            Conn::Tcp(tcp) => Pin::new(tcp).poll_flush(cx),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        match self.get_mut() {
            Conn::Ws(ws) => Pin::new(ws.as_mut()).poll_close(cx),
            Conn::Tcp(tcp) => Pin::new(tcp).poll_close(cx),
        }
    }
}

/// One XMPP stream over TCP, as text frames.
pub struct XmppTcp {
    stream: TcpStream,
    /// Read and not yet cut into elements.
    read: Vec<u8>,
    /// Nesting of `read[..]`'s start: 0 before the server's header, 1 between elements.
    depth: usize,
    frames: VecDeque<String>,
    write: Vec<u8>,
    closed: bool,
}

impl XmppTcp {
    pub fn new(stream: TcpStream) -> XmppTcp {
        XmppTcp { stream, read: Vec::new(), depth: 0, frames: VecDeque::new(), write: Vec::new(), closed: false }
    }

    /// Moves every complete top-level element of `read` into `frames`; `read` keeps what
    /// follows the last boundary, and `depth` the nesting there (0 or 1).
    fn cut(&mut self) -> Result<(), WsError> {
        let mut reader = Reader::from_reader(self.read.as_slice());
        // The stream's own start tag came in an earlier read: its end has no start here.
        reader.config_mut().check_end_names = false;
        reader.config_mut().allow_unmatched_ends = true;
        let mut depth = self.depth;
        let (mut consumed, mut depth_there) = (0, self.depth);
        let mut element_start = 0;
        loop {
            let before = reader.buffer_position() as usize;
            let event = match reader.read_event() {
                Ok(Event::Eof) => break,
                Ok(event) => event,
                // Most often an element cut short by the read: wait for the rest.
                Err(_) => break,
            };
            let after = reader.buffer_position() as usize;
            match event {
                Event::Start(start) if depth <= 1 && is_stream_header(start.name().into_inner()) => {
                    depth = 1;
                    (consumed, depth_there) = (after, 1);
                }
                Event::Start(_) => {
                    if depth == 1 {
                        element_start = before;
                    }
                    depth += 1;
                }
                Event::Empty(_) if depth == 1 => {
                    self.frames.push_back(text(&self.read[before..after])?);
                    (consumed, depth_there) = (after, 1);
                }
                Event::End(end) if depth == 1 && is_stream_header(end.name().into_inner()) => {
                    self.closed = true;
                    depth = 0;
                    (consumed, depth_there) = (after, 0);
                }
                Event::End(_) => {
                    depth = depth.saturating_sub(1);
                    if depth == 1 {
                        self.frames.push_back(text(&self.read[element_start..after])?);
                        (consumed, depth_there) = (after, 1);
                    }
                }
                _ if depth <= 1 => (consumed, depth_there) = (after, depth),
                _ => {}
            }
        }
        self.read.drain(..consumed);
        self.depth = depth_there;
        Ok(())
    }
}

fn is_stream_header(name: &str) -> bool {
    name == "stream:stream" || name == "stream"
}

fn text(bytes: &[u8]) -> Result<String, WsError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| WsError::Io(io::Error::new(io::ErrorKind::InvalidData, "not UTF-8")))
}

/// The bytes a frame means on TCP: the framing's `<open/>` as a stream header, `<close/>` as
/// the stream's end, anything else as written.
fn wire(frame: &str) -> String {
    if frame.starts_with("<open ") && frame.contains("urn:ietf:params:xml:ns:xmpp-framing") {
        let to = frame.split("to=\"").nth(1).and_then(|r| r.split('"').next()).unwrap_or_default();
        return format!(
            "<?xml version='1.0'?><stream:stream to='{to}' version='1.0' xmlns='jabber:client' \
             xmlns:stream='http://etherx.jabber.org/streams'>"
        );
    }
    if frame.starts_with("<close ") && frame.contains("urn:ietf:params:xml:ns:xmpp-framing") {
        return "</stream:stream>".into();
    }
    frame.to_owned()
}

impl Stream for XmppTcp {
    type Item = Result<Message, WsError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(frame) = this.frames.pop_front() {
                return Poll::Ready(Some(Ok(Message::text(frame))));
            }
            if this.closed {
                return Poll::Ready(Some(Ok(Message::Close(None))));
            }
            let mut chunk = [0u8; 16 * 1024];
            let mut buf = ReadBuf::new(&mut chunk);
            match Pin::new(&mut this.stream).poll_read(cx, &mut buf) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Some(Err(WsError::Io(e)))),
                Poll::Ready(Ok(())) if buf.filled().is_empty() => return Poll::Ready(None),
                Poll::Ready(Ok(())) => {
                    this.read.extend_from_slice(buf.filled());
                    if let Err(e) = this.cut() {
                        return Poll::Ready(Some(Err(e)));
                    }
                }
            }
        }
    }
}

impl Sink<Message> for XmppTcp {
    type Error = WsError;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        if self.write.len() > 64 * 1024 {
            return self.poll_flush(cx);
        }
        Poll::Ready(Ok(()))
    }

    fn start_send(self: Pin<&mut Self>, item: Message) -> Result<(), WsError> {
        let this = self.get_mut();
        match item {
            Message::Text(text) => this.write.extend_from_slice(wire(text.as_str()).as_bytes()),
            Message::Close(_) => this.write.extend_from_slice(b"</stream:stream>"),
            // No pings on TCP; whitespace would do.
            _ => {}
        }
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        let this = self.get_mut();
        while !this.write.is_empty() {
            match Pin::new(&mut this.stream).poll_write(cx, &this.write) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(WsError::Io(e))),
                Poll::Ready(Ok(n)) => {
                    this.write.drain(..n);
                }
            }
        }
        Pin::new(&mut this.stream).poll_flush(cx).map_err(WsError::Io)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        match self.as_mut().poll_flush(cx) {
            Poll::Ready(Ok(())) => Pin::new(&mut self.get_mut().stream).poll_shutdown(cx).map_err(WsError::Io),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_stream_is_cut_into_elements_across_reads() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = tokio::spawn(async move { TcpStream::connect(addr).await.unwrap() });
        let (server, _) = listener.accept().await.unwrap();
        let mut tcp = XmppTcp::new(client.await.unwrap());
        drop(server);
        let input = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
                     xmlns:stream='http://etherx.jabber.org/streams' id='x'><stream:features><bind/></stream:features> \
                     <success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/><stream:stream id='y'><message><body>sb 1 2</body></message></stream:stream>";
        let mut frames = Vec::new();
        for piece in input.as_bytes().chunks(7) {
            tcp.read.extend_from_slice(piece);
            tcp.cut().unwrap();
            frames.extend(tcp.frames.drain(..));
        }
        assert_eq!(
            frames,
            [
                "<stream:features><bind/></stream:features>",
                "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>",
                "<message><body>sb 1 2</body></message>"
            ]
        );
        assert!(tcp.closed);
    }

    #[test]
    fn framing_elements_become_stream_tags() {
        let open = r#"<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="localhost" version="1.0"/>"#;
        assert!(wire(open).contains("<stream:stream to='localhost'"));
        assert_eq!(wire(r#"<close xmlns="urn:ietf:params:xml:ns:xmpp-framing"/>"#), "</stream:stream>");
        assert_eq!(wire("<presence/>"), "<presence/>");
    }
}
