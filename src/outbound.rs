//! Outbound HTTP (apps' webhooks, sites' users-info URLs): one client per thread with
//! timeouts and kept-alive connections, and the destination rules every request passes.
//!
//! Destinations: plain `http://` URLs; the host is resolved and every address it resolves to
//! must be public unless the caller's `allow_private_destinations` is on (loopback, private,
//! link-local, carrier-grade NAT, multicast and the like are refused), and the request goes
//! to the address that was checked, so a DNS answer cannot change between the check and the
//! connection. Redirects are not followed.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use actix_web::http::Uri;

/// Where an outbound request goes: the checked address, and the URL's host and path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub addr: SocketAddr,
    pub host: String,
    pub path: String,
}

/// Whether an address is one an outbound request may not reach unless private destinations are on.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || a >= 240
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0 && v4.octets()[2] == 0)
                || (a == 198 && (b == 18 || b == 19))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_internal(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || (first == 0x2001 && v6.segments()[1] == 0x0db8)
        }
    }
}

/// Checks an outbound URL and resolves it (what goes wrong is said).
pub async fn destination(url: &str, allow_private: bool) -> Result<Destination, String> {
    let uri: Uri = url.trim().parse().map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err("https destinations are not supported by this server yet: use http behind a TLS proxy".into())
        }
        _ => return Err(format!("{url:?}: an outbound URL starts with http://")),
    }
    let host = uri.host().filter(|h| !h.is_empty()).ok_or_else(|| format!("{url:?} has no host"))?;
    let port = uri.port_u16().unwrap_or(80);
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> =
        tokio::net::lookup_host((bare, port)).await.map_err(|e| format!("cannot resolve {host}: {e}"))?.collect();
    let first = *addrs.first().ok_or_else(|| format!("{host} resolves to no address"))?;
    if !allow_private {
        if let Some(internal) = addrs.iter().find(|a| is_internal(a.ip())) {
            return Err(format!(
                "{host} is (or resolves to) {}, a private or internal address; outbound requests may not reach those unless allow_private_destinations is on",
                internal.ip()
            ));
        }
    }
    let path = uri.path_and_query().map_or("/".to_owned(), |p| p.as_str().to_owned());
    let host_header = match uri.port_u16() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    };
    Ok(Destination { addr: first, host: host_header, path })
}

thread_local! {
    /// One client (and its connection pool) per thread: awc's client is not `Send`.
    static CLIENT: std::cell::RefCell<Option<(Duration, awc::Client)>> = const { std::cell::RefCell::new(None) };
}

/// This thread's client for `timeout`: keeps connections alive between requests, never
/// follows a redirect.
pub fn client_for(timeout: Duration) -> awc::Client {
    CLIENT.with(|cell| {
        let mut slot = cell.borrow_mut();
        match slot.as_ref() {
            Some((t, client)) if *t == timeout => client.clone(),
            _ => {
                let client = awc::Client::builder().timeout(timeout).disable_redirects().finish();
                *slot = Some((timeout, client.clone()));
                client
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_known() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fc00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(is_internal(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "8.8.8.8", "2606:4700::1111"] {
            assert!(!is_internal(ip.parse().unwrap()), "{ip}");
        }
    }

    #[actix_web::test]
    async fn destinations_are_checked_before_any_request() {
        let refused = destination("http://127.0.0.1:9/hook", false).await.unwrap_err();
        assert!(refused.contains("private or internal"), "{refused}");
        let ok = destination("http://127.0.0.1:9/hook?x=1", true).await.unwrap();
        assert_eq!(
            (ok.addr.to_string().as_str(), ok.host.as_str(), ok.path.as_str()),
            ("127.0.0.1:9", "127.0.0.1:9", "/hook?x=1")
        );
        assert!(destination("ftp://example.org/", true).await.unwrap_err().contains("http://"));
        assert!(destination("https://example.org/", true).await.unwrap_err().contains("https"));
    }
}
