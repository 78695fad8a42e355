//! SCRAM credentials (RFC 5802, RFC 7677) as the store keeps them: per mechanism the salt,
//! the iteration count, StoredKey and ServerKey, never the password. They are derived when a
//! password is set (see `crate::scram`), so that a SCRAM login costs HMACs, not argon2.
//!
//! Stored as one text line per mechanism, in the form of RFC 5803:
//! `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` (base64).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScramMechanism {
    Sha1,
    Sha256,
}

impl ScramMechanism {
    pub const ALL: [ScramMechanism; 2] = [ScramMechanism::Sha256, ScramMechanism::Sha1];

    /// The SASL mechanism's name.
    pub fn name(self) -> &'static str {
        match self {
            ScramMechanism::Sha1 => "SCRAM-SHA-1",
            ScramMechanism::Sha256 => "SCRAM-SHA-256",
        }
    }

    pub fn from_name(name: &str) -> Option<ScramMechanism> {
        ScramMechanism::ALL.into_iter().find(|m| m.name() == name)
    }
}

/// One mechanism's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramKeys {
    pub mechanism: ScramMechanism,
    pub salt: Vec<u8>,
    pub iterations: u32,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
}

impl ScramKeys {
    /// The stored line (RFC 5803's form).
    pub fn to_line(&self) -> String {
        format!(
            "{}${}:{}${}:{}",
            self.mechanism.name(),
            self.iterations,
            STANDARD.encode(&self.salt),
            STANDARD.encode(&self.stored_key),
            STANDARD.encode(&self.server_key)
        )
    }

    pub fn from_line(line: &str) -> Option<ScramKeys> {
        let mut parts = line.trim().split('$');
        let mechanism = ScramMechanism::from_name(parts.next()?)?;
        let (iterations, salt) = parts.next()?.split_once(':')?;
        let (stored, server) = parts.next()?.split_once(':')?;
        Some(ScramKeys {
            mechanism,
            salt: STANDARD.decode(salt).ok()?,
            iterations: iterations.parse().ok()?,
            stored_key: STANDARD.decode(stored).ok()?,
            server_key: STANDARD.decode(server).ok()?,
        })
    }

    /// Every mechanism's line, one per line.
    pub fn lines(all: &[ScramKeys]) -> String {
        all.iter().map(ScramKeys::to_line).collect::<Vec<_>>().join("\n")
    }

    pub fn parse_lines(text: &str) -> Vec<ScramKeys> {
        text.lines().filter_map(ScramKeys::from_line).collect()
    }
}
