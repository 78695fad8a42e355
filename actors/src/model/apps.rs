//! External apps (R-Chat style): an app, the chats it takes part in, and the webhook
//! deliveries of what end users write there.
//!
//! An app speaks as an account of kind `app` (its name is the account's user name); like an
//! HTTP API user it holds no live station. What end users send it is delivered to its
//! webhook from a durable outbox: each delivery is written in the same transaction as the
//! message.

/// An app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppRecord {
    /// Server-issued, 16 hex digits.
    pub id: String,
    /// Also the user name of the app's account.
    pub name: String,
    pub description: String,
    /// SHA-256 of the bearer token.
    pub token_digest: Vec<u8>,
    /// Issued by `register` (the seed's Chatday-Signature-Token); signs the webhooks.
    pub signature_token: Option<String>,
    /// Set once verified; `None`: no deliveries.
    pub webhook_url: Option<String>,
    pub created_ms: i64,
    pub modified_ms: i64,
}

/// What kind of conversation a chat is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatKind {
    /// 1:1 with a user (`peer` is the user name).
    User,
    /// A room the admin attached the app to (`peer` is the room's name).
    Room,
}

impl ChatKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChatKind::User => "user",
            ChatKind::Room => "room",
        }
    }

    pub fn parse(raw: &str) -> Option<ChatKind> {
        match raw {
            "user" => Some(ChatKind::User),
            "room" => Some(ChatKind::Room),
            _ => None,
        }
    }
}

/// A conversation an app takes part in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppChat {
    /// Server-issued, stable.
    pub chat_id: String,
    pub app_id: String,
    pub kind: ChatKind,
    /// The user at the other end of a 1:1 chat, or the room.
    pub peer: String,
    pub created_ms: i64,
}

/// A message of a chat as a webhook carries it: a 1:1 message, or a room's.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatMessage {
    pub id: i64,
    /// The room it was said in (`None`: 1:1).
    pub room: Option<String>,
    pub from_user: String,
    pub body: String,
    pub data: Option<serde_json::Value>,
    pub stamp_ms: i64,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// To be sent (again) at `next_attempt_ms`.
    Pending,
    Delivered,
    /// Given up after too many attempts or too long; an admin may replay it.
    Dead,
}

impl DeliveryState {
    pub const NAMES: &'static str = "pending, delivered, dead";

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Dead => "dead",
        }
    }

    pub fn parse(raw: &str) -> Option<DeliveryState> {
        match raw {
            "pending" => Some(DeliveryState::Pending),
            "delivered" => Some(DeliveryState::Delivered),
            "dead" => Some(DeliveryState::Dead),
            _ => None,
        }
    }
}

/// One message to be POSTed to an app's webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Orders deliveries; a chat's are sent in this order.
    pub seq: i64,
    /// The same on every attempt (`X-Switchboard-Delivery`).
    pub delivery_id: String,
    pub app_id: String,
    pub chat_id: String,
    /// The chat's kind: `message_id` is a room message's for a room.
    pub kind: ChatKind,
    /// The archived message.
    pub message_id: i64,
    pub state: DeliveryState,
    pub attempts: u32,
    pub next_attempt_ms: i64,
    pub last_error: Option<String>,
    pub created_ms: i64,
}

/// What an attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    Delivered,
    /// Try again at `at_ms`.
    Retry {
        at_ms: i64,
        error: String,
    },
    Dead {
        error: String,
    },
}

/// How the outbox retries: exponential backoff from `base_ms`, at most `cap_ms` apart, for
/// at most `max_attempts` attempts and `max_age_ms` after the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub base_ms: i64,
    pub cap_ms: i64,
    pub max_attempts: u32,
    pub max_age_ms: i64,
}

impl RetryPolicy {
    /// What a failed attempt (`attempts` so far, this one counted) leads to; `jitter` in
    /// [0, 1) spreads retries (a quarter of the delay either way).
    pub fn after_failure(
        &self,
        delivery: &Delivery,
        attempts: u32,
        now_ms: i64,
        jitter: f64,
        error: String,
    ) -> DeliveryOutcome {
        if attempts >= self.max_attempts || now_ms - delivery.created_ms >= self.max_age_ms {
            return DeliveryOutcome::Dead { error };
        }
        let exponent = attempts.saturating_sub(1).min(30);
        let delay = self.base_ms.saturating_mul(1i64 << exponent).min(self.cap_ms);
        let spread = (delay as f64 * (jitter - 0.5) * 0.5) as i64;
        DeliveryOutcome::Retry { at_ms: now_ms + (delay + spread).max(1), error }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery() -> Delivery {
        Delivery {
            seq: 1,
            delivery_id: "d".into(),
            app_id: "a".into(),
            chat_id: "c".into(),
            kind: ChatKind::User,
            message_id: 1,
            state: DeliveryState::Pending,
            attempts: 0,
            next_attempt_ms: 0,
            last_error: None,
            created_ms: 0,
        }
    }

    #[test]
    fn retries_back_off_exponentially_within_the_cap_then_die() {
        let policy = RetryPolicy { base_ms: 100, cap_ms: 1000, max_attempts: 5, max_age_ms: 60_000 };
        let at = |attempts| match policy.after_failure(&delivery(), attempts, 10_000, 0.5, "e".into()) {
            DeliveryOutcome::Retry { at_ms, .. } => at_ms - 10_000,
            other => panic!("{other:?}"),
        };
        assert_eq!([at(1), at(2), at(3), at(4)], [100, 200, 400, 800]);
        let capped = RetryPolicy { max_attempts: 50, ..policy };
        assert!(matches!(
            capped.after_failure(&delivery(), 20, 10_000, 0.5, "e".into()),
            DeliveryOutcome::Retry { at_ms: 11_000, .. }
        ));
        assert_eq!(
            policy.after_failure(&delivery(), 5, 10_000, 0.5, "gone".into()),
            DeliveryOutcome::Dead { error: "gone".into() }
        );
        assert!(matches!(
            policy.after_failure(&delivery(), 1, 60_000, 0.5, "old".into()),
            DeliveryOutcome::Dead { .. }
        ));
        let early = policy.after_failure(&delivery(), 3, 10_000, 0.0, "e".into());
        let late = policy.after_failure(&delivery(), 3, 10_000, 0.999, "e".into());
        assert!(
            matches!((early, late), (DeliveryOutcome::Retry { at_ms: a, .. }, DeliveryOutcome::Retry { at_ms: b, .. }) if a < 10_400 && b > 10_400)
        );
    }

    #[test]
    fn states_round_trip() {
        for s in [DeliveryState::Pending, DeliveryState::Delivered, DeliveryState::Dead] {
            assert_eq!(DeliveryState::parse(s.as_str()), Some(s));
        }
    }
}
