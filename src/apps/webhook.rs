//! The apps' webhooks on the wire: the request each delivery is (rendered here, signed with
//! the app's signature token), the verification event a new webhook URL must answer, and
//! the destination rules every outbound request passes.
//!
//! Destinations: plain `http://` URLs; the host is resolved and every address it resolves to
//! must be public unless `apps.allow_private_destinations` is on (loopback, private,
//! link-local, carrier-grade NAT, multicast and the like are refused), and the request goes
//! to the address that was checked, so a DNS answer cannot change between the check and the
//! connection. Redirects are not followed.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use actix_web::http::Uri;
use futures_util::future::LocalBoxFuture;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use switchboard_actors::accounts::Accounts;
use switchboard_actors::clock::format_stamp;
use switchboard_actors::random::hex;
use switchboard_actors::webhooks::{WebhookJob, WebhookPort};

/// Where a webhook request goes: the checked address, and the URL's host and path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub addr: SocketAddr,
    pub host: String,
    pub path: String,
}

/// Whether an address is one a webhook may not reach unless private destinations are on.
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

/// Checks a webhook URL and resolves it (what goes wrong is said).
pub async fn destination(url: &str, allow_private: bool) -> Result<Destination, String> {
    let uri: Uri = url.trim().parse().map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err("https webhooks are not supported by this server yet: use http behind a TLS proxy".into())
        }
        _ => return Err(format!("{url:?}: a webhook URL starts with http://")),
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
                "{host} is (or resolves to) {}, a private or internal address; webhooks may not reach those",
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

/// A message's `{"type","data"}` as a webhook shows it: what an app sent carries its own;
/// anything else is text.
pub fn message_content(body: &str, data: Option<&Value>) -> Value {
    match data.and_then(|d| d.get("app_message")) {
        Some(content) => content.clone(),
        None => json!({"type": "text", "data": body}),
    }
}

/// `sha256=<hex>` of the HMAC-SHA256 of `body` keyed with `token`.
pub fn signature(token: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(token.as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    format!("sha256={}", hex(&mac.finalize().into_bytes()))
}

thread_local! {
    /// One client (and its connection pool) per thread: awc's client is not `Send`.
    static CLIENT: std::cell::RefCell<Option<(Duration, awc::Client)>> = const { std::cell::RefCell::new(None) };
}

/// This thread's webhook client: keeps connections to receivers alive between deliveries,
/// never follows a redirect.
fn client_for(timeout: Duration) -> awc::Client {
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

/// The HTTP side of webhook deliveries.
#[derive(Clone)]
pub struct HttpWebhooks {
    pub accounts: Accounts,
    pub allow_private: bool,
    pub timeout: Duration,
}

/// The receiver's answer, judged: delivered is 2xx with `{"status":"SUCCESS"}`.
fn judge(status: u16, body: &[u8]) -> Result<(), String> {
    let said: Option<Value> = serde_json::from_slice(body).ok();
    let success = said.as_ref().and_then(|v| v.get("status")).and_then(Value::as_str) == Some("SUCCESS");
    if (200..300).contains(&status) && success {
        return Ok(());
    }
    let shown: String = String::from_utf8_lossy(body).chars().take(200).collect();
    Err(format!("the webhook answered {status} with {shown:?}; expected 200 with {{\"status\":\"SUCCESS\"}}"))
}

impl HttpWebhooks {
    /// POSTs `body` to `url`, signed with `token`; `Ok` when the receiver took it.
    pub async fn post(&self, url: &str, token: &str, delivery_id: &str, body: Vec<u8>) -> Result<(), String> {
        let target = destination(url, self.allow_private).await?;
        let client = client_for(self.timeout);
        let timestamp =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
        let request = client
            .post(format!("http://{}{}", target.addr, target.path))
            .insert_header(("host", target.host.as_str()))
            .insert_header(("content-type", "application/json"))
            .insert_header(("x-chatday-signature-token", token))
            .insert_header(("x-switchboard-signature", signature(token, &body)))
            .insert_header(("x-switchboard-timestamp", timestamp.to_string()))
            .insert_header(("x-switchboard-delivery", delivery_id));
        let mut response =
            request.send_body(body).await.map_err(|e| format!("the webhook could not be reached: {e}"))?;
        let answer = response.body().limit(64 * 1024).await.map_err(|e| format!("the webhook's answer: {e}"))?;
        judge(response.status().as_u16(), &answer)
    }

    async fn deliver_job(self, job: WebhookJob) -> Result<(), String> {
        let url = job.app.webhook_url.clone().ok_or("no webhook set")?;
        let token = job.app.signature_token.clone().ok_or("the app has not registered")?;
        let name = match self.accounts.find(&job.message.from_user).await {
            Ok(Some(user)) if !user.name.is_empty() => user.name,
            _ => job.message.from_user.clone(),
        };
        let mut body = json!({
            "chat_id": job.delivery.chat_id,
            "message": message_content(&job.message.body, job.message.data.as_ref()),
            "from": {"id": job.message.from_user, "name": name},
            "id": job.message.id.to_string(),
            "stamp": format_stamp(job.message.stamp_ms),
        });
        if let Some(room) = &job.message.room {
            body["room"] = json!(room);
        }
        self.post(&url, &token, &job.delivery.delivery_id, body.to_string().into_bytes()).await
    }
}

impl WebhookPort for HttpWebhooks {
    fn deliver(&self, job: WebhookJob) -> LocalBoxFuture<'static, Result<(), String>> {
        Box::pin(self.clone().deliver_job(job))
    }
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

    #[test]
    fn signatures_are_the_hmac_of_the_exact_bytes_and_answers_are_judged() {
        assert_eq!(
            signature("key", b"The quick brown fox jumps over the lazy dog"),
            "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
        );
        assert!(judge(200, br#"{"status":"SUCCESS"}"#).is_ok());
        assert!(judge(200, br#"{"status":"FAIL"}"#).is_err());
        assert!(judge(500, br#"{"status":"SUCCESS"}"#).unwrap_err().contains("500"));
    }
}
