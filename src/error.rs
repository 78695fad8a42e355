//! API errors, mapped to HTTP status and a JSON body in this one place.
//!
//! The body follows the restAPI plugin's shape (`specs/openfire.md` §5):
//! `{"exception": "UserNotFoundException", "message": "user 'bob' does not exist"}`, with a
//! message that always says what is wrong.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;
use switchboard_actors::fastpath::FastpathError;
use switchboard_actors::model::Condition;
use switchboard_actors::muc::RoomError;
use switchboard_actors::{RouteError, StoreError};

/// An error answered to an HTTP client.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub exception: &'static str,
    pub message: String,
    /// The stanza error condition, when the error is a domain refusal: the XMPP doors answer
    /// with it as it is (a door's own errors have none; their status decides).
    pub condition: Option<Condition>,
}

impl ApiError {
    pub fn new(status: StatusCode, exception: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, exception, message: message.into(), condition: None }
    }

    /// The same error, naming the domain's stanza condition.
    pub fn with_condition(mut self, condition: Condition) -> Self {
        self.condition = Some(condition);
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "IllegalArgumentException", message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "NotAuthorizedException", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "NotAllowedException", message)
    }

    pub fn not_found(exception: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, exception, message)
    }

    pub fn conflict(exception: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, exception, message)
    }

    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "PayloadTooLargeException", message)
    }

    pub fn too_many(message: impl Into<String>) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, "TooManyRequestsException", message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "InternalServerErrorException", message)
    }

    pub fn user_not_found(username: &str) -> Self {
        Self::not_found("UserNotFoundException", format!("user '{username}' does not exist"))
    }

    /// The caller may only act as itself (or be the admin).
    pub fn not_yourself() -> Self {
        Self::forbidden("you may only act as yourself")
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        if self.status == StatusCode::UNAUTHORIZED {
            response.insert_header((header::WWW_AUTHENTICATE, "Basic realm=\"switchboard\", charset=\"UTF-8\""));
        }
        response.json(json!({ "exception": self.exception, "message": self.message }))
    }
}

impl From<RouteError> for ApiError {
    fn from(e: RouteError) -> Self {
        let condition = e.condition();
        let error = {
            match &e {
                RouteError::UnknownUser(_) => ApiError::not_found("UserNotFoundException", e.to_string()),
                RouteError::UnknownStream(_) => ApiError::not_found("StreamNotFoundException", e.to_string()),
                RouteError::NotYourStream(_) => ApiError::forbidden(e.to_string()),
                RouteError::TooManyConnections(_) => ApiError::too_many(e.to_string()),
                RouteError::NotAccepting(_) | RouteError::YouBlocked(_) => {
                    ApiError::new(StatusCode::FORBIDDEN, "NotAcceptableException", e.to_string())
                }
                RouteError::NotSubscribed(_) | RouteError::NoLiveStation(_) => ApiError::forbidden(e.to_string()),
                RouteError::Yourself(_) => ApiError::bad_request(e.to_string()),
                RouteError::Offline(_) => ApiError::conflict("NoSessionException", e.to_string()),
                RouteError::Store(store) => store.clone().into(),
            }
        };
        error.with_condition(condition)
    }
}

impl From<RoomError> for ApiError {
    fn from(e: RoomError) -> Self {
        let condition = e.condition();
        let error = {
            let message = e.to_string();
            match e {
                RoomError::NotFound(_) | RoomError::CreationRestricted(_) => {
                    ApiError::not_found("RoomNotFoundException", message)
                }
                RoomError::NoService(_) => ApiError::not_found("MUCServiceNotFoundException", message),
                RoomError::NotAffiliated(..) => ApiError::not_found("AffiliationNotFoundException", message),
                RoomError::Exists(_) => ApiError::conflict("RoomAlreadyExistsException", message),
                RoomError::NickTaken(_) => ApiError::conflict("NicknameTakenException", message),
                RoomError::BadName(_) | RoomError::BadRequest(_) => ApiError::bad_request(message),
                RoomError::Outcast(_)
                | RoomError::MembersOnly(_)
                | RoomError::BadPassword(_)
                | RoomError::NotOccupant(_)
                | RoomError::Visitor(_)
                | RoomError::MayNotInvite(_) => ApiError::forbidden(message),
                RoomError::NotAllowed(_) => ApiError::new(StatusCode::FORBIDDEN, "NotAllowedException", message),
                RoomError::Full(..) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "RoomFullException", message),
                RoomError::Unreachable(..) => {
                    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailableException", message)
                }
                RoomError::Store(store) => store.into(),
            }
        };
        error.with_condition(condition)
    }
}

impl From<FastpathError> for ApiError {
    fn from(e: FastpathError) -> Self {
        let condition = e.condition();
        let error = {
            let message = e.to_string();
            let unavailable = |exception| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, exception, message.clone());
            match e {
                FastpathError::NoWorkgroup(_) => ApiError::not_found("WorkgroupNotFoundException", message),
                FastpathError::UnknownVisitor(_) => ApiError::not_found("AssistanceNotFoundException", message),
                FastpathError::UnknownOffer(_) => ApiError::not_found("OfferNotFoundException", message),
                FastpathError::Exists(_) => ApiError::conflict("WorkgroupAlreadyExistsException", message),
                FastpathError::AlreadyQueued(_) => ApiError::conflict("AlreadyQueuedException", message),
                FastpathError::NotYourOffer(_) => ApiError::conflict("NotAcceptableException", message),
                FastpathError::NotOnline(_) | FastpathError::Conflict(_) => {
                    ApiError::conflict("ConflictException", message)
                }
                FastpathError::NotMember(_) => ApiError::forbidden(message),
                FastpathError::BadToken(_) => ApiError::forbidden(message),
                FastpathError::UnknownToken => ApiError::unauthorized(message),
                FastpathError::Closed(_) => unavailable("WorkgroupClosedException"),
                FastpathError::NoAgent(_) => unavailable("ServiceUnavailableException"),
                FastpathError::Gone | FastpathError::Unreachable(_) => unavailable("ServiceUnavailableException"),
                FastpathError::BadRequest(_) => ApiError::bad_request(message),
                FastpathError::Store(store) => store.into(),
            }
        };
        error.with_condition(condition)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        let condition = e.condition();
        let error = {
            match e {
                StoreError::Conflict(m) => ApiError::conflict("UserAlreadyExistsException", m),
                StoreError::NotFound(m) => ApiError::not_found("UserNotFoundException", m),
                StoreError::Database { entity, source } => {
                    tracing::error!(%entity, error = %source, "store failure");
                    ApiError::internal("the store failed; nothing was changed")
                }
                StoreError::Unavailable => ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "ServiceUnavailableException",
                    "the store is unavailable (shutting down, or its database cannot be reached)",
                ),
            }
        };
        error.with_condition(condition)
    }
}

impl From<actix::MailboxError> for ApiError {
    fn from(e: actix::MailboxError) -> Self {
        tracing::error!(error = %e, "actor mailbox failure");
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailableException", "the server is shutting down")
    }
}
