//! Fastpath workgroups (`name@workgroup.{domain}`): visitors queue, agents get offers.
//!
//! - [`machine`]: the state machine as plain code, `on(input, now) -> effects`, unit-tested
//!   with a fake clock.
//! - [`workgroup`]: `Workgroup`, one actor per workgroup: it feeds the machine (agents'
//!   commands and presence, visitors' requests, a timer armed for the machine's next
//!   deadline) and runs its effects: events to agents and visitors, rooms for accepted
//!   requests.
//! - [`visitors`], [`agents`]: the workgroup's handlers for what visitors and agents ask.
//! - [`registry`]: `Fastpath`, the registry: stored workgroups, membership checks, and the
//!   index of visitors (user id → workgroup, token).
//!
//! This file holds the plain types they share: a workgroup's stored settings, a chat's
//! record, the options and the errors.

pub mod agents;
pub mod calls;
pub mod machine;
pub mod registry;
pub mod visitors;
pub mod workgroup;

pub use crate::model::records::{ChatRecord, WorkgroupRecord};
use crate::model::Condition;
use crate::storage::StoreError;

/// What Fastpath needs from the configuration.
#[derive(Debug, Clone)]
pub struct FastpathOptions {
    /// The XMPP domain; workgroups are `name@workgroup.{domain}`.
    pub domain: String,
    /// How long an agent who rejected a request is skipped for it (ms).
    pub rejection_memory_ms: i64,
    /// Events a visitor's station keeps while the visitor has no connection open.
    pub visitor_backlog: usize,
    /// How long a visitor whose request or chat ended stays known (for `GET /ask/{id}` and
    /// a late connection), in ms.
    pub visitor_linger_ms: i64,
}

impl FastpathOptions {
    /// `workgroup.{domain}`.
    pub fn host(&self) -> String {
        format!("workgroup.{}", self.domain)
    }
}

/// Checks a workgroup name: 1 to 64 characters of `a-z`, `0-9`, `.`, `_`, `-`, starting
/// with a letter or digit (the node part of its address).
pub fn check_workgroup_name(raw: &str) -> Result<(), FastpathError> {
    let valid = !raw.is_empty()
        && raw.len() <= 64
        && raw.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && raw.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
    if valid {
        Ok(())
    } else {
        Err(FastpathError::BadRequest(format!(
            "workgroup name {raw:?} must be 1 to 64 characters of a-z, 0-9, '.', '_', '-', starting with a letter or digit"
        )))
    }
}

/// Checks a visitor's `userID`: 1 to 64 characters of letters, digits, `.`, `_`, `-`, `@`
/// and `+` (it appears in URLs and addresses).
pub fn check_visitor_id(raw: &str) -> Result<(), FastpathError> {
    let valid = !raw.is_empty()
        && raw.len() <= 64
        && raw.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@' | '+'));
    if valid {
        Ok(())
    } else {
        Err(FastpathError::BadRequest(format!(
            "userID {raw:?} must be 1 to 64 characters of letters, digits, '.', '_', '-', '@' and '+'"
        )))
    }
}

/// Why a Fastpath request was refused; the doors map each to a status code. It crosses
/// nodes as it is (a store failure as its kind).
#[derive(Debug, Clone, PartialEq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum FastpathError {
    #[error("workgroup '{0}' does not exist")]
    NoWorkgroup(String),
    #[error("workgroup '{0}' already exists")]
    Exists(String),
    #[error("you are not an agent (member) of workgroup '{0}'")]
    NotMember(String),
    #[error("workgroup '{0}' is closed")]
    Closed(String),
    #[error("workgroup '{0}' has no agent available; try again later")]
    NoAgent(String),
    #[error("'{0}' is already waiting in a queue")]
    AlreadyQueued(String),
    #[error("no visitor '{0}' is known (never asked, or gone)")]
    UnknownVisitor(String),
    #[error("the visitor token is unknown or has expired")]
    UnknownToken,
    #[error("the token does not belong to visitor '{0}'")]
    BadToken(String),
    #[error("offer '{0}' does not exist (it was answered, revoked or never made)")]
    UnknownOffer(String),
    #[error("offer '{0}' is not your pending offer")]
    NotYourOffer(String),
    #[error("you are not online as an agent of workgroup '{0}'")]
    NotOnline(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("the workgroup stopped")]
    Gone,
    /// In a cluster: the node serving Fastpath did not answer, or none does yet.
    #[error("{0}")]
    Unreachable(String),
    #[error(transparent)]
    Store(
        #[from]
        #[serde(with = "crate::storage::wire_store_error")]
        StoreError,
    ),
}

impl FastpathError {
    /// The stanza error condition for this refusal (RFC 6120 §8.3.3).
    pub fn condition(&self) -> Condition {
        match self {
            FastpathError::NoWorkgroup(_) | FastpathError::UnknownVisitor(_) | FastpathError::UnknownOffer(_) => {
                Condition::ItemNotFound
            }
            FastpathError::Exists(_)
            | FastpathError::AlreadyQueued(_)
            | FastpathError::NotYourOffer(_)
            | FastpathError::NotOnline(_)
            | FastpathError::Conflict(_) => Condition::Conflict,
            FastpathError::NotMember(_) | FastpathError::BadToken(_) => Condition::Forbidden,
            FastpathError::UnknownToken => Condition::NotAuthorized,
            FastpathError::Closed(_)
            | FastpathError::NoAgent(_)
            | FastpathError::Gone
            | FastpathError::Unreachable(_) => Condition::ServiceUnavailable,
            FastpathError::BadRequest(_) => Condition::BadRequest,
            FastpathError::Store(e) => e.condition(),
        }
    }
}
