//! The rules every door applies to what comes in, whatever its wire format: message bodies,
//! recipients, chat states, presence values and nicknames, and bodies read within a limit. Each refusal says what is wrong.

use switchboard_actors::jid::AddressError;
use switchboard_actors::presence::{Show, StationPresence};
use switchboard_actors::{ChatState, Jid};

use actix_web::web;
use futures_util::StreamExt;

use crate::error::ApiError;

/// Longest nickname in a room, in characters.
pub const MAX_NICK_CHARS: usize = 64;

/// Longest presence status, in characters.
pub const MAX_STATUS_CHARS: usize = 1024;

/// The rule every door applies to a message body: not blank (400), at most `max_chars`
/// characters (413, `limits.max_message_chars`).
pub fn check_message_body(body: &str, max_chars: usize) -> Result<(), ApiError> {
    if body.trim().is_empty() {
        return Err(ApiError::bad_request("message body is empty"));
    }
    if body.chars().count() > max_chars {
        return Err(ApiError::too_large(format!("message body is longer than {max_chars} characters")));
    }
    Ok(())
}

/// Parses a recipient in any of the accepted spellings (400 if malformed, 404 if another
/// domain's).
pub fn parse_recipient(raw: &str, domain: &str) -> Result<Jid, ApiError> {
    Jid::parse(raw, domain).map_err(|e| match e {
        AddressError::ForeignDomain(_) => {
            ApiError::not_found("UserNotFoundException", format!("recipient {raw:?}: {e}"))
        }
        _ => ApiError::bad_request(format!("recipient {raw:?}: {e}")),
    })
}

/// The local user an address names (any spelling `parse_recipient` accepts).
pub fn parse_username(raw: &str, domain: &str) -> Result<String, ApiError> {
    Ok(parse_recipient(raw, domain)?.user.to_string())
}

/// Parses a chat state name (400 naming the allowed ones).
pub fn parse_chat_state(raw: &str) -> Result<ChatState, ApiError> {
    ChatState::parse(raw).ok_or_else(|| {
        ApiError::bad_request(format!("unknown chat state {raw:?}; expected one of {}", ChatState::NAMES))
    })
}

/// Checks a presence as given at a door (400 naming what is wrong).
pub fn parse_presence(
    show: Option<&str>,
    status: Option<String>,
    priority: Option<i64>,
) -> Result<StationPresence, ApiError> {
    let show = match show {
        None => Show::Available,
        Some(raw) => Show::parse(raw)
            .ok_or_else(|| ApiError::bad_request(format!("unknown show {raw:?}; expected one of {}", Show::NAMES)))?,
    };
    let status = status.filter(|s| !s.is_empty());
    if status.as_ref().is_some_and(|s| s.chars().count() > MAX_STATUS_CHARS) {
        return Err(ApiError::bad_request(format!("status is longer than {MAX_STATUS_CHARS} characters")));
    }
    let priority = match priority {
        None => 0,
        Some(p) => i8::try_from(p).map_err(|_| ApiError::bad_request("priority must be between -128 and 127"))?,
    };
    Ok(StationPresence { show, status, priority })
}

/// A nickname to join with: the one asked for, trimmed, or else the user name.
pub fn check_nick(asked: Option<String>, username: &str) -> Result<String, ApiError> {
    let nick = asked.map(|n| n.trim().to_owned()).unwrap_or_else(|| username.to_owned());
    if nick.is_empty() || nick.chars().count() > MAX_NICK_CHARS || nick.contains('/') {
        return Err(ApiError::bad_request(format!("nick must be 1 to {MAX_NICK_CHARS} characters, without '/'")));
    }
    Ok(nick)
}

/// A request body read by the door itself, up to `limit` bytes (413 beyond), for doors that
/// answer in their own envelope rather than through the JSON extractor.
pub async fn read_limited_body(mut payload: web::Payload, limit: usize) -> Result<web::Bytes, ApiError> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_request(format!("unreadable request body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::too_large(format!("request body is larger than {limit} bytes")));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

#[cfg(test)]
mod tests {
    use actix_web::http::StatusCode;

    use super::*;

    #[test]
    fn a_body_must_have_text_and_fit_the_limit() {
        assert!(check_message_body("hi", 10).is_ok());
        assert_eq!(check_message_body("  \n", 10).unwrap_err().status, StatusCode::BAD_REQUEST);
        assert_eq!(check_message_body("ééééé", 4).unwrap_err().status, StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[test]
    fn recipients_parse_in_every_spelling_and_other_domains_are_not_found() {
        assert_eq!(parse_username("bob@d/phone", "d").unwrap(), "bob");
        assert_eq!(parse_username("bob@d@%", "d").unwrap(), "bob");
        assert_eq!(parse_recipient("bob@elsewhere", "d").unwrap_err().status, StatusCode::NOT_FOUND);
        assert_eq!(parse_recipient("Bob!", "d").unwrap_err().status, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn presence_values_and_nicks_are_checked() {
        let p = parse_presence(Some("dnd"), Some(String::new()), Some(-5)).unwrap();
        assert_eq!((p.show, p.status, p.priority), (Show::Dnd, None, -5));
        assert!(parse_presence(Some("sleepy"), None, None).unwrap_err().message.contains("sleepy"));
        assert!(parse_presence(None, None, Some(300)).is_err());
        assert!(parse_chat_state("composing").is_ok());
        assert!(parse_chat_state("typing").unwrap_err().message.contains("typing"));
        assert_eq!(check_nick(Some("  Ann  ".into()), "ann").unwrap(), "Ann");
        assert_eq!(check_nick(None, "ann").unwrap(), "ann");
        assert!(check_nick(Some("a/b".into()), "ann").is_err());
        assert!(check_nick(Some("x".repeat(MAX_NICK_CHARS + 1)), "ann").is_err());
    }
}
