//! The apps' webhooks on the wire: the request each delivery is (rendered here, signed with
//! the app's signature token) and the verification event a new webhook URL must answer. They
//! go through `crate::outbound` (its destination rules, with `apps.allow_private_destinations`).

use std::time::Duration;

use futures_util::future::LocalBoxFuture;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use switchboard_actors::accounts::Accounts;
use switchboard_actors::clock::format_stamp;
use switchboard_actors::random::hex;
use switchboard_actors::webhooks::{WebhookJob, WebhookPort};

use crate::outbound::{client_for, destination};

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
