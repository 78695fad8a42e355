//! Upgraded connections over raw sockets: what the websocket bridge (`src/upgrade.rs`) must
//! keep from HTTP (whole refusals, then a close) and what it must not lose (bytes sent with
//! the handshake, frames larger than one read).

use std::time::Duration;

use base64::Engine;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

fn handshake(path: &str, extra_headers: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{extra_headers}\r\n"
    )
}

fn basic(name: &str) -> String {
    let credentials = base64::engine::general_purpose::STANDARD.encode(format!("{name}:pw-{name}"));
    format!("Authorization: Basic {credentials}\r\n")
}

/// A client text frame (masked, as RFC 6455 requires of clients).
fn client_text_frame(text: &str) -> Vec<u8> {
    let payload = text.as_bytes();
    let mask = [0x1f, 0x2e, 0x3d, 0x4c];
    let mut frame = vec![0x81];
    match payload.len() {
        n if n < 126 => frame.push(0x80 | n as u8),
        n if n <= u16::MAX as usize => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

/// Reads until the end of the response head; returns the head and what followed it.
async fn read_head(stream: &mut TcpStream) -> (String, Vec<u8>) {
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = got.split_off(end + 4);
            return (String::from_utf8_lossy(&got).into_owned(), rest);
        }
        let n = tokio::time::timeout(WAIT, stream.read(&mut chunk)).await.expect("a response head").unwrap();
        assert!(n > 0, "closed before the head ended: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&chunk[..n]);
    }
}

/// Reads server text frames until one parses as JSON with `"type": kind`.
async fn next_frame_of(stream: &mut TcpStream, buffered: &mut Vec<u8>, kind: &str) -> Value {
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        while let Some((opcode, payload, used)) = parse_server_frame(buffered) {
            buffered.drain(..used);
            if opcode == 1 {
                let value: Value = serde_json::from_slice(&payload).expect("a JSON text frame");
                if value["type"] == kind {
                    return value;
                }
            }
        }
        let n = tokio::time::timeout(WAIT, stream.read(&mut chunk)).await.expect("a frame in time").unwrap();
        assert!(n > 0, "the server closed the connection");
        buffered.extend_from_slice(&chunk[..n]);
    }
}

/// One unmasked server frame from the front of `bytes`: (opcode, payload, bytes used).
fn parse_server_frame(bytes: &[u8]) -> Option<(u8, Vec<u8>, usize)> {
    if bytes.len() < 2 {
        return None;
    }
    let opcode = bytes[0] & 0x0f;
    let (len, start) = match bytes[1] & 0x7f {
        126 => (u16::from_be_bytes(bytes.get(2..4)?.try_into().ok()?) as usize, 4),
        127 => (u64::from_be_bytes(bytes.get(2..10)?.try_into().ok()?) as usize, 10),
        n => (n as usize, 2),
    };
    let payload = bytes.get(start..start + len)?.to_vec();
    Some((opcode, payload, start + len))
}

async fn read_to_end(stream: &mut TcpStream) -> String {
    let mut all = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut all)).await.expect("the server closes the connection").unwrap();
    String::from_utf8_lossy(&all).into_owned()
}

#[actix_web::test]
async fn a_refused_upgrade_gets_a_whole_response_and_a_close() {
    let app = spawn_app().await;
    for (path, status, needle) in [("/ws", "401", "authentication required"), ("/nowhere", "404", "/nowhere")] {
        let mut stream = TcpStream::connect(app.base.trim_start_matches("http://")).await.unwrap();
        stream.write_all(handshake(path, "").as_bytes()).await.unwrap();
        let response = read_to_end(&mut stream).await;
        assert!(response.starts_with(&format!("HTTP/1.1 {status}")), "{path}: {response}");
        let (head, body) = response.split_once("\r\n\r\n").unwrap();
        assert!(head.to_ascii_lowercase().contains("connection: close"), "{head}");
        let message: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("a JSON error body: {body}"));
        assert!(message["message"].as_str().unwrap_or_default().contains(needle), "{path}: {message}");
    }
}

#[actix_web::test]
async fn a_frame_sent_with_the_handshake_is_answered() {
    let app = spawn_app().await;
    app.create_user("ann").await;
    let mut stream = TcpStream::connect(app.base.trim_start_matches("http://")).await.unwrap();
    let mut bytes = handshake("/ws", &basic("ann")).into_bytes();
    bytes.extend(client_text_frame(&json!({"op": "ping", "id": "early"}).to_string()));
    stream.write_all(&bytes).await.unwrap();
    let (head, mut rest) = read_head(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let pong = next_frame_of(&mut stream, &mut rest, "pong").await;
    assert_eq!(pong["id"], "early");
}

#[actix_web::test]
async fn frames_larger_than_one_read_arrive_whole() {
    let app = spawn_app().await;
    app.create_user("ann").await;
    let mut stream = TcpStream::connect(app.base.trim_start_matches("http://")).await.unwrap();
    stream.write_all(handshake("/ws", &basic("ann")).as_bytes()).await.unwrap();
    let (head, mut rest) = read_head(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    // Three frames of 50 KB each, written at once: several reads, and more than the bridge
    // reads ahead of the connection.
    let ids: Vec<String> = (0..3).map(|i| format!("{i}{}", "x".repeat(50_000))).collect();
    let mut burst = Vec::new();
    for id in &ids {
        burst.extend(client_text_frame(&json!({"op": "ping", "id": id}).to_string()));
    }
    stream.write_all(&burst).await.unwrap();
    for id in &ids {
        let pong = next_frame_of(&mut stream, &mut rest, "pong").await;
        assert_eq!(pong["id"].as_str().map(str::len), Some(id.len()));
        assert_eq!(pong["id"], id.as_str());
    }
    // The connection still serves after the burst.
    stream.write_all(&client_text_frame(r#"{"op":"ping","id":"after"}"#)).await.unwrap();
    let pong = next_frame_of(&mut stream, &mut rest, "pong").await;
    assert_eq!(pong["id"], "after");
    tokio::time::sleep(Duration::from_millis(10)).await;
}
