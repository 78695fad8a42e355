//! A small HTTP/1.1 client over tokio: one request per connection for the admin calls, and
//! a streaming reader for Server-Sent Events (chunked or not). Enough for a load generator
//! that must not share a connection pool with what it measures.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use base64::Engine;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};

use crate::target::Target;
use crate::BenchError;

/// How a request authenticates.
pub enum Auth<'a> {
    None,
    Basic(&'a str, &'a str),
    Bearer(&'a str),
}

pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Response {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Result<serde_json::Value, BenchError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            BenchError::Server(format!("the server answered {} with non-JSON ({e}): {}", self.status, self.text()))
        })
    }
}

/// Connects to the target from loopback source address number `source` (127.0.0.1 +
/// source % 250), so that more connections than one address has ephemeral ports can be held.
pub async fn connect(target: &Target, source: usize) -> Result<TcpStream, BenchError> {
    let socket = match target.addr {
        SocketAddr::V4(_) => {
            let socket = TcpSocket::new_v4().map_err(io_error("socket"))?;
            if target.addr.ip() != IpAddr::V4(Ipv4Addr::LOCALHOST) || source == 0 {
                socket
            } else {
                let last = 1 + (source % 250) as u8;
                socket
                    .bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)), 0))
                    .map_err(io_error("bind a loopback source address"))?;
                socket
            }
        }
        SocketAddr::V6(_) => TcpSocket::new_v6().map_err(io_error("socket"))?,
    };
    let stream = socket.connect(target.addr).await.map_err(|e| unreachable(target, e))?;
    stream.set_nodelay(true).map_err(io_error("TCP_NODELAY"))?;
    Ok(stream)
}

fn unreachable(target: &Target, e: std::io::Error) -> BenchError {
    match e.raw_os_error() {
        Some(libc::EMFILE) | Some(libc::ENFILE) => BenchError::Limits(format!(
            "out of file descriptors in the bench ({e}); raise the limit (ulimit -n) or open fewer connections"
        )),
        Some(libc::EADDRNOTAVAIL) => {
            BenchError::Limits(format!("out of loopback ports toward {} ({e})", target.authority()))
        }
        _ => BenchError::Unreachable(format!(
            "cannot reach {} ({e}); is the server running? (`cargo run --release` starts Switchboard)",
            target.authority()
        )),
    }
}

fn io_error(what: &'static str) -> impl Fn(std::io::Error) -> BenchError {
    move |e| BenchError::Server(format!("{what}: {e}"))
}

fn auth_header(auth: &Auth) -> String {
    match auth {
        Auth::None => String::new(),
        Auth::Basic(user, password) => format!(
            "Authorization: Basic {}\r\n",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        ),
        Auth::Bearer(token) => format!("Authorization: Bearer {token}\r\n"),
    }
}

/// One request on its own connection; a JSON body when given.
pub async fn request(
    target: &Target,
    method: &str,
    path: &str,
    auth: Auth<'_>,
    json: Option<&serde_json::Value>,
) -> Result<Response, BenchError> {
    let mut stream = connect(target, 0).await?;
    let body = json.map(|v| v.to_string()).unwrap_or_default();
    let content = if json.is_some() { "Content-Type: application/json\r\n" } else { "" };
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n{}{content}Content-Length: {}\r\n\r\n",
        target.authority(),
        auth_header(&auth),
        body.len()
    );
    stream.write_all(head.as_bytes()).await.map_err(io_error("write request"))?;
    stream.write_all(body.as_bytes()).await.map_err(io_error("write request"))?;
    let mut reader = BufReader::new(stream);
    let (status, chunked) = read_head(&mut reader).await?;
    let body = if chunked {
        let mut body = Vec::new();
        while let Some(chunk) = next_chunk(&mut reader).await? {
            body.extend_from_slice(&chunk);
        }
        body
    } else {
        let mut body = Vec::new();
        reader.read_to_end(&mut body).await.map_err(io_error("read response"))?;
        body
    };
    Ok(Response { status, body })
}

/// Reads the status line and headers; returns the status and whether the body is chunked.
async fn read_head(reader: &mut BufReader<TcpStream>) -> Result<(u16, bool), BenchError> {
    let mut line = String::new();
    reader.read_line(&mut line).await.map_err(io_error("read response"))?;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| BenchError::Server(format!("not an HTTP response: {line:?}")))?;
    let mut chunked = false;
    loop {
        line.clear();
        let n = reader.read_line(&mut line).await.map_err(io_error("read response"))?;
        if n == 0 || line == "\r\n" || line == "\n" {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
            chunked = true;
        }
    }
    Ok((status, chunked))
}

/// The next chunk of a chunked body, or `None` at its end.
async fn next_chunk(reader: &mut BufReader<TcpStream>) -> Result<Option<Vec<u8>>, BenchError> {
    let mut line = String::new();
    if reader.read_line(&mut line).await.map_err(io_error("read chunk"))? == 0 {
        return Ok(None);
    }
    let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
        .map_err(|_| BenchError::Server(format!("bad chunk size line {line:?}")))?;
    if size == 0 {
        return Ok(None);
    }
    let mut chunk = vec![0; size + 2];
    reader.read_exact(&mut chunk).await.map_err(io_error("read chunk"))?;
    chunk.truncate(size);
    Ok(Some(chunk))
}

/// An open Server-Sent Events stream.
pub struct EventStream {
    reader: BufReader<TcpStream>,
    chunked: bool,
    buffer: String,
}

/// One event: its `event:` name and `data:` text.
pub struct ServerEvent {
    pub event: String,
    pub data: String,
}

impl EventStream {
    /// `GET path` with `Accept: text/event-stream`; anything but 200 is an error.
    pub async fn open(target: &Target, path: &str, source: usize) -> Result<EventStream, BenchError> {
        let mut stream = connect(target, source).await?;
        let head = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\nConnection: keep-alive\r\n\r\n",
            target.authority()
        );
        stream.write_all(head.as_bytes()).await.map_err(io_error("write request"))?;
        let mut reader = BufReader::new(stream);
        let (status, chunked) = read_head(&mut reader).await?;
        if status != 200 {
            return Err(BenchError::Refused(format!(
                "GET {} answered {status}",
                path.split('?').next().unwrap_or(path)
            )));
        }
        Ok(EventStream { reader, chunked, buffer: String::new() })
    }

    /// The next event (comments and heartbeats skipped); `None` when the stream ends.
    pub async fn next(&mut self) -> Result<Option<ServerEvent>, BenchError> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = ServerEvent { event: "message".into(), data: String::new() };
                for line in block.lines() {
                    if let Some(name) = line.strip_prefix("event:") {
                        event.event = name.trim().to_owned();
                    } else if let Some(data) = line.strip_prefix("data:") {
                        event.data.push_str(data.strip_prefix(' ').unwrap_or(data));
                    }
                }
                if !event.data.is_empty() {
                    return Ok(Some(event));
                }
                continue;
            }
            let bytes = if self.chunked {
                match next_chunk(&mut self.reader).await? {
                    Some(chunk) => chunk,
                    None => return Ok(None),
                }
            } else {
                let mut buf = vec![0; 16 * 1024];
                let n = self.reader.read(&mut buf).await.map_err(io_error("read events"))?;
                if n == 0 {
                    return Ok(None);
                }
                buf.truncate(n);
                buf
            };
            self.buffer.push_str(&String::from_utf8_lossy(&bytes).replace("\r\n", "\n"));
        }
    }
}
