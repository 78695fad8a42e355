//! `POST /restapi/v1/chat/{streamid}/xmpp`: one raw stanza over HTTP, on behalf of the
//! stream's station.
//!
//! The stanza goes through the same dispatcher as XMPP over WebSocket, with `from` stamped
//! as the station's full address. Unlike ofchat (always 200, errors only logged), bad
//! input is answered: malformed XML, several roots, DTDs and entities, an unknown stanza or
//! one over `limits.max_body_bytes` → 400/413 with what is wrong; a refused stanza (unknown
//! recipient, not an occupant, …) → its status; accepted → 202. Replies (IQ results and
//! errors) arrive on the station as `chatapi.xmpp {"xmpp":"<base64 of the stanza>"}`.

use std::sync::Arc;

use actix_web::{web, HttpResponse};
use serde_json::json;
use switchboard_actors::user_session::DeliverLive;
use switchboard_actors::{Event, Payload};

use super::ns;
use super::stanza::{dispatch, is_stanza, Origin};
use super::xml::{parse_element, XmlError};
use crate::auth::CallerStation;
use crate::error::ApiError;
use crate::state::AppState;

/// Maps an XML refusal to 400, or 413 for size.
pub fn xml_refusal(e: XmlError) -> ApiError {
    match e {
        XmlError::TooLarge(..) => ApiError::too_large(e.to_string()),
        other => ApiError::bad_request(other.to_string()),
    }
}

/// `POST /restapi/v1/chat/{streamid}/xmpp` → 202 `{"replies": n}`.
pub async fn post_stanza(
    CallerStation { stream: station, .. }: CallerStation,
    state: web::Data<AppState>,
    raw: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let stream = station;
    let text = std::str::from_utf8(&raw).map_err(|_| ApiError::bad_request("the stanza is not valid UTF-8"))?;
    let stanza = parse_element(text, state.config.limits.max_body_bytes, ns::CLIENT).map_err(xml_refusal)?;
    if !is_stanza(&stanza) {
        return Err(ApiError::bad_request(format!(
            "<{} xmlns='{}'> is not a stanza; expected <message>, <presence> or <iq> in jabber:client",
            stanza.name, stanza.ns
        )));
    }
    let origin = Origin {
        state: &state,
        username: &stream.username,
        resource: &stream.resource,
        session: Some(&stream.session),
    };
    let replies = dispatch(&origin, &stanza).await.map_err(|r| r.into_api())?;
    let count = replies.len();
    for reply in replies {
        let event = Event::new(Payload::DoorReply(Arc::from(reply.to_xml())));
        stream.session.do_send(DeliverLive { event, resource: Some(stream.resource.clone()) });
    }
    Ok(HttpResponse::Accepted().json(json!({ "replies": count })))
}
