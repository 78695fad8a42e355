//! The REST doors, and the extractor settings that turn bad input into clear errors.
//!
//! One file per endpoint family: [`admin`] (restAPI-style administration), [`chat`]
//! (ofchat's stream API), [`contacts`] (rosters, presence, blocklists), [`rooms`] (MUC),
//! [`fastpath`] (workgroups: admin, agents, visitors), [`groups`] (user groups), [`vcards`] (vCards and
//! avatars), [`metrics`], [`misc`] (health,
//! tokens), [`system`] (the plugin's liveness and readiness checks); [`entities`] renders the REST API's entities. The route table is
//! `crate::routes`; SSE and websockets live in `crate::sse`, `crate::ws` and `crate::xmpp`,
//! and what several doors share in `crate::inbound` and `crate::requests`.

pub mod admin;
pub mod chat;
pub mod contacts;
pub mod entities;
pub mod fastpath;
pub mod groups;
pub mod metrics;
pub mod misc;
pub mod rooms;
pub mod system;
pub mod vcards;

use actix_web::error::{JsonPayloadError, PayloadError};
use actix_web::{HttpRequest, HttpResponse};

use crate::error::ApiError;

/// 404 for paths no route serves.
pub async fn no_route(req: HttpRequest) -> HttpResponse {
    actix_web::ResponseError::error_response(&ApiError::not_found(
        "NotFoundException",
        format!("no resource at {} {}", req.method(), req.path()),
    ))
}

/// Maps JSON body errors: too large → 413, anything else → 400 with serde's message.
pub fn json_error(err: JsonPayloadError, _: &HttpRequest) -> actix_web::Error {
    let api = match &err {
        JsonPayloadError::Overflow { limit } | JsonPayloadError::OverflowKnownLength { limit, .. } => {
            ApiError::too_large(format!("request body is larger than {limit} bytes"))
        }
        JsonPayloadError::ContentType => ApiError::bad_request("expected Content-Type: application/json"),
        JsonPayloadError::Deserialize(e) => ApiError::bad_request(format!("invalid JSON: {e}")),
        JsonPayloadError::Serialize(e) => ApiError::bad_request(format!("invalid JSON: {e}")),
        JsonPayloadError::Payload(PayloadError::Overflow) => ApiError::too_large("request body is too large"),
        other => ApiError::bad_request(format!("unreadable request body: {other}")),
    };
    api.into()
}

/// Maps query-string errors to 400.
pub fn query_error(err: actix_web::error::QueryPayloadError, _: &HttpRequest) -> actix_web::Error {
    ApiError::bad_request(format!("invalid query string: {err}")).into()
}
