//! Ozeki Chat's identifiers as typed values (`specs/vendor_apis.md` §1, DESIGN.md §4): a
//! user's id is the md5 of its lower-cased, trimmed e-mail address; a 1:1 conversation's id
//! is the md5 of the two user ids, sorted, joined with `;`. Both are 32 lower-case hex
//! digits. A user without an e-mail address has no Ozeki id. Also the records an Ozeki
//! client's stations keep: station keys, per-user conversation settings, reports.

use std::fmt;

use md5::{Digest, Md5};

/// 32 lower-case hex digits of an md5 digest.
fn md5_hex(input: &str) -> String {
    let digest = Md5::digest(input.as_bytes());
    let mut hex = String::with_capacity(32);
    for byte in digest.iter() {
        hex.push(char::from(b"0123456789abcdef"[usize::from(byte >> 4)]));
        hex.push(char::from(b"0123456789abcdef"[usize::from(byte & 0x0f)]));
    }
    hex
}

/// Whether `raw` is 32 lower-case hex digits.
fn is_md5_hex(raw: &str) -> bool {
    raw.len() == 32 && raw.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// An account's Ozeki user id: `md5(lower(trim(email)))`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OzekiUserId(String);

impl OzekiUserId {
    /// The id of the account with this e-mail address; `None` when it has none.
    pub fn from_email(email: &str) -> Option<OzekiUserId> {
        let email = email.trim().to_lowercase();
        (!email.is_empty()).then(|| OzekiUserId(md5_hex(&email)))
    }

    /// An id as a client sends it: 32 hex digits (upper case is accepted and lowered).
    pub fn parse(raw: &str) -> Option<OzekiUserId> {
        let raw = raw.trim().to_ascii_lowercase();
        is_md5_hex(&raw).then_some(OzekiUserId(raw))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OzekiUserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A 1:1 conversation's id: `md5(a + ";" + b)` with the two user ids sorted ascending, so
/// both sides name the conversation alike.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConversationId(String);

impl ConversationId {
    pub fn between(one: &OzekiUserId, other: &OzekiUserId) -> ConversationId {
        let (first, second) = if one <= other { (one, other) } else { (other, one) };
        ConversationId(md5_hex(&format!("{first};{second}")))
    }

    /// An id as a client sends it: 32 hex digits.
    pub fn parse(raw: &str) -> Option<ConversationId> {
        let raw = raw.trim().to_ascii_lowercase();
        is_md5_hex(&raw).then_some(ConversationId(raw))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ConversationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An API key a station of a user's signs in and signs its calls with; only its digest is
/// kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StationKey {
    pub username: String,
    /// The station id (`Ozeki-Station`), which is also the station's resource in the core.
    pub station: String,
    /// SHA-256 of the key.
    pub digest: Vec<u8>,
    pub created_ms: i64,
}

/// One user's view of a conversation: its generation and the user's own settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationProps {
    pub conversation: String,
    pub username: String,
    /// The other party.
    pub peer: String,
    /// 10 letters and digits; a clear issues a new one.
    pub instance: String,
    pub muted: bool,
    pub favorite: bool,
    /// Ozeki's `hideid`: empty when shown.
    pub hide_id: String,
    /// `#rrggbb`.
    pub color: String,
    /// Messages up to this archive id were cleared by the user.
    pub cleared_through: i64,
    pub changed_ms: i64,
}

/// A report a user made on messages of a conversation (`viewed`: read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationReport {
    pub id: String,
    pub conversation: String,
    pub username: String,
    pub kind: String,
    pub created_ms: i64,
    pub message_ids: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_id_is_the_md5_of_the_trimmed_lower_cased_email() {
        let id = OzekiUserId::from_email("admin@ozeki.hu").unwrap();
        assert_eq!(id.as_str(), "d574638619cbff603bf857164c47e850");
        assert_eq!(OzekiUserId::from_email("  Admin@OZEKI.hu \n"), Some(id));
        assert_eq!(OzekiUserId::from_email(""), None);
        assert_eq!(OzekiUserId::from_email("   "), None, "no e-mail, no Ozeki id");
    }

    #[test]
    fn a_conversation_id_is_the_md5_of_the_sorted_pair_whichever_side_asks() {
        let a = OzekiUserId::parse("aa68d2204cb2bb85f2de3b9aad0d86d7").unwrap();
        let b = OzekiUserId::parse("d574638619cbff603bf857164c47e850").unwrap();
        let id = ConversationId::between(&a, &b);
        assert_eq!(id.as_str(), "8ca16186c36a4e0a1ef2096e6c60b613");
        assert_eq!(ConversationId::between(&b, &a), id);
        assert_eq!(ConversationId::parse("8CA16186C36A4E0A1EF2096E6C60B613"), Some(id));
    }

    #[test]
    fn only_32_hex_digits_parse_as_ids() {
        assert!(OzekiUserId::parse("d574638619cbff603bf857164c47e85").is_none(), "31 digits");
        assert!(OzekiUserId::parse("g574638619cbff603bf857164c47e850").is_none(), "not hex");
        assert!(ConversationId::parse("").is_none());
    }
}
