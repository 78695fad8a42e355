//! `RouteError`: why the router or a user's session refused a request, with the RFC 6120
//! condition an XMPP door answers it with (the HTTP doors map it to a status).

use crate::model::Condition;
use crate::storage::StoreError;

/// Why the router refused a request.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RouteError {
    #[error("user '{0}' does not exist")]
    UnknownUser(String),
    #[error("stream '{0}' does not exist (it may have expired or been logged off)")]
    UnknownStream(String),
    #[error("stream '{0}' belongs to another user")]
    NotYourStream(String),
    #[error("too many connections for this user (limit {0})")]
    TooManyConnections(usize),
    #[error("'{0}' is not accepting messages or requests from you")]
    NotAccepting(String),
    #[error("you have blocked '{0}'; unblock them first")]
    YouBlocked(String),
    #[error("you cannot {0} yourself")]
    Yourself(&'static str),
    #[error("you do not see the presence of '{0}' (not a contact you are subscribed to)")]
    NotSubscribed(String),
    #[error("user '{0}' has no live session")]
    Offline(String),
    #[error("'{0}' holds no live station (an HTTP API user sends and receives through /api, an app through /api/v1)")]
    NoLiveStation(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl RouteError {
    /// The stanza error condition for this refusal (RFC 6120 §8.3.3).
    pub fn condition(&self) -> Condition {
        match self {
            RouteError::UnknownUser(_) | RouteError::UnknownStream(_) => Condition::ItemNotFound,
            RouteError::NotYourStream(_) => Condition::Forbidden,
            RouteError::TooManyConnections(_) => Condition::ResourceConstraint,
            RouteError::NotAccepting(_) | RouteError::YouBlocked(_) => Condition::NotAcceptable,
            RouteError::Offline(_) => Condition::Conflict,
            RouteError::Yourself(_) => Condition::BadRequest,
            RouteError::NotSubscribed(_) | RouteError::NoLiveStation(_) => Condition::Forbidden,
            RouteError::Store(e) => e.condition(),
        }
    }
}
