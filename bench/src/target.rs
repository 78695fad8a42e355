//! The server under load: `http://host:port` or `ws://host:port/path`, resolved once, and
//! refused unless every address it names is loopback (the tool loads only this machine).

use std::net::{SocketAddr, ToSocketAddrs};

use crate::BenchError;

#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// As written (for the `Host` header).
    pub host: String,
    pub port: u16,
    /// Path for websocket targets (`/` when none).
    pub path: String,
    pub addr: SocketAddr,
    /// `tcp://`: XMPP over TCP (RFC 6120), for `--xmpp-url`.
    pub tcp: bool,
}

impl Target {
    /// Parses `http://host[:port][/path]`, `ws://…` or `tcp://host:port`; `flag` names the
    /// option in errors.
    pub fn parse(url: &str, flag: &str) -> Result<Target, BenchError> {
        let tcp = url.starts_with("tcp://");
        let rest = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("ws://"))
            .or_else(|| url.strip_prefix("tcp://"))
            .ok_or_else(|| {
                BenchError::Usage(format!("{flag} must be an http://, ws:// or tcp:// URL (no TLS), not '{url}'"))
            })?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !host.ends_with(']') || authority.starts_with('[') => {
                (host, port.parse::<u16>().map_err(|_| BenchError::Usage(format!("{flag}: bad port in '{url}'")))?)
            }
            _ => (authority, 80),
        };
        if host.is_empty() {
            return Err(BenchError::Usage(format!("{flag}: no host in '{url}'")));
        }
        let addrs: Vec<SocketAddr> = (host.trim_matches(|c| c == '[' || c == ']'), port)
            .to_socket_addrs()
            .map_err(|e| BenchError::Usage(format!("{flag}: cannot resolve '{host}': {e}")))?
            .collect();
        let addr = *addrs.first().ok_or_else(|| BenchError::Usage(format!("{flag}: '{host}' has no address")))?;
        if !addrs.iter().all(|a| a.ip().is_loopback()) {
            return Err(BenchError::Usage(format!(
                "{flag}: '{host}' is not a loopback address; switchboard-bench loads only this machine"
            )));
        }
        Ok(Target { host: host.to_owned(), port, path: path.to_owned(), addr, tcp })
    }

    /// The same server with another path.
    pub fn with_path(&self, path: &str) -> Target {
        Target { path: path.to_owned(), ..self.clone() }
    }

    /// `host:port`, for the `Host` header.
    pub fn authority(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// A `ws://` URL for `path_and_query` on this server.
    pub fn ws_url(&self, path_and_query: &str) -> String {
        format!("ws://{}{}", self.authority(), path_and_query)
    }
}
