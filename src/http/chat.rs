//! ofchat's stream API (`specs/openfire.md` §2): log in to a stream id, send messages, read
//! history. A user may only use its own streams and read its own history; the admin may act
//! for anyone.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};
use switchboard_actors::clock::{format_stamp, parse_instant};
use switchboard_actors::router::{Login, Logoff, SendChatState, SubmitFromStream};
use switchboard_actors::store::HistoryQuery;
use switchboard_actors::MessageKind;

use crate::auth::{Caller, CallerStation};
use crate::chatapi::add_display_name;
use crate::error::ApiError;
use crate::inbound::{check_message_body, parse_chat_state, parse_recipient, parse_username};
use crate::state::AppState;

/// `POST /restapi/v1/chat/{username}/login` → 200 `text/plain` stream id. Each login is a
/// new station.
pub async fn login(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let username = path.into_inner();
    caller.require_self(&username)?;
    let info = state.router.send(Login { username }).await??;
    let stream_id = info.stream_id.expect("a login always has a stream id");
    Ok(HttpResponse::Ok().content_type("text/plain; charset=utf-8").body(stream_id))
}

/// `POST /restapi/v1/chat/{streamid}/logoff`.
pub async fn logoff(station: CallerStation, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let stream_id = station.stream.stream_id.clone().expect("a resolved login stream has its id");
    state.router.send(Logoff { stream_id }).await??;
    Ok(HttpResponse::Ok().finish())
}

/// A message body as posted: JSON `{"body": …, …}` (the whole object travels as `data`, as in
/// ofchat) or plain text.
pub struct PostedMessage {
    pub body: String,
    pub data: Option<Value>,
}

/// Parses a posted message. With `Content-Type: application/json` the body must be a JSON
/// object with a string `body`; otherwise a JSON object with a `body` is read as JSON and
/// anything else is the text itself.
pub fn parse_posted(req: &HttpRequest, raw: &[u8], max_chars: usize) -> Result<PostedMessage, ApiError> {
    let text = std::str::from_utf8(raw).map_err(|_| ApiError::bad_request("message body is not valid UTF-8"))?;
    let declared_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("application/json"));
    let posted = if declared_json || text.trim_start().starts_with('{') {
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(object)) => {
                let body = match object.get("body") {
                    Some(Value::String(body)) => body.clone(),
                    Some(_) => return Err(ApiError::bad_request("\"body\" must be a string")),
                    None => return Err(ApiError::bad_request("a JSON message needs a string \"body\"")),
                };
                PostedMessage { body, data: Some(Value::Object(object)) }
            }
            Ok(_) if declared_json => return Err(ApiError::bad_request("a JSON message must be an object")),
            Err(e) if declared_json => return Err(ApiError::bad_request(format!("invalid JSON: {e}"))),
            _ => PostedMessage { body: text.to_owned(), data: None },
        }
    } else {
        PostedMessage { body: text.to_owned(), data: None }
    };
    check_message_body(&posted.body, max_chars)?;
    Ok(posted)
}

/// `POST /restapi/v1/chat/{streamid}/messages/{to}` → 200 `{"id","stamp"}` once stored. The
/// router resolves and checks the stream as it takes the message (404 unknown, 403 another
/// user's).
pub async fn send_message(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    raw: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let (stream_id, to) = path.into_inner();
    let to = parse_recipient(&to, state.domain())?;
    let posted = parse_posted(&req, &raw, state.config.limits.max_message_chars)?;
    let owner = (!caller.is_admin()).then_some(caller.username);
    let submit =
        SubmitFromStream { stream_id, owner, to, kind: MessageKind::Chat, body: posted.body, data: posted.data };
    let stored = state.router.send(submit).await??;
    Ok(HttpResponse::Ok().json(json!({ "id": stored.id.to_string(), "stamp": format_stamp(stored.stamp_ms) })))
}

#[derive(Deserialize)]
pub struct HistoryParams {
    to: Option<String>,
    start: Option<String>,
    end: Option<String>,
    keywords: Option<String>,
    limit: Option<usize>,
    before: Option<i64>,
    after: Option<i64>,
}

/// `GET /restapi/v1/chat/{username}/messages?to=&start=&end=&keywords=&limit=&before=&after=`
/// → `{"messages":[…]}`, oldest first. Without `before`/`after` it is the newest page;
/// `before=ID` pages back, `after=ID` pages forward.
pub async fn history(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    params: web::Query<HistoryParams>,
) -> Result<HttpResponse, ApiError> {
    let username = path.into_inner();
    caller.require_self(&username)?;
    let p = params.into_inner();
    let instant = |name: &str, raw: &Option<String>| -> Result<Option<i64>, ApiError> {
        raw.as_deref()
            .map(|r| {
                parse_instant(r).ok_or_else(|| {
                    ApiError::bad_request(format!("{name} must be an RFC 3339 instant, a YYYY-MM-DD date or epoch ms"))
                })
            })
            .transpose()
    };
    let limits = &state.config.history;
    let limit = p.limit.unwrap_or(limits.default_limit);
    if limit == 0 || limit > limits.max_limit {
        return Err(ApiError::bad_request(format!("limit must be between 1 and {}", limits.max_limit)));
    }
    if p.before.is_some() && p.after.is_some() {
        return Err(ApiError::bad_request("give either before or after, not both"));
    }
    let with = match p.to.as_deref() {
        Some(raw) => Some(parse_username(raw, state.domain())?),
        None => None,
    };
    let query = HistoryQuery {
        username,
        with,
        start_ms: instant("start", &p.start)?,
        end_ms: instant("end", &p.end)?,
        keywords: p.keywords,
        before: p.before,
        after: p.after,
        limit,
    };
    let messages = state.archive.history(query).await?;
    Ok(HttpResponse::Ok().json(json!({ "messages": messages.iter().map(|m| crate::chatapi::message_json(m, &state.hosts)).collect::<Vec<_>>() })))
}

/// `POST /restapi/v1/chat/{streamid}/chatstate/{state}/{to}`: live only, never stored.
pub async fn chat_state(
    CallerStation { stream: station, .. }: CallerStation,
    state: web::Data<AppState>,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (_, chat_state, to) = path.into_inner();
    let chat_state = parse_chat_state(&chat_state)?;
    let to = parse_recipient(&to, state.domain())?;
    state.router.send(SendChatState { from: station.jid(), to, state: chat_state }).await??;
    Ok(HttpResponse::Ok().finish())
}

fn check_property_name(name: &str) -> Result<(), ApiError> {
    if name.trim().is_empty() || name.chars().count() > 100 {
        return Err(ApiError::bad_request("property names are 1 to 100 characters"));
    }
    Ok(())
}

/// `POST /restapi/v1/chat/{streamid}/users/{name}` (body: the value): sets the stream owner's
/// own property.
pub async fn set_property(
    CallerStation { stream: station, .. }: CallerStation,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    raw: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let (_, name) = path.into_inner();
    check_property_name(&name)?;
    let value = std::str::from_utf8(&raw).map_err(|_| ApiError::bad_request("the value is not valid UTF-8"))?;
    let max = state.config.limits.max_property_chars;
    if value.chars().count() > max {
        return Err(ApiError::too_large(format!("property values are at most {max} characters")));
    }
    state.accounts.set_property(station.username, name, value.to_owned()).await?;
    Ok(HttpResponse::Ok().finish())
}

/// `DELETE /restapi/v1/chat/{streamid}/users/{name}`: removes the stream owner's property
/// (404 if it was not set).
pub async fn delete_property(
    CallerStation { stream: station, .. }: CallerStation,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (_, name) = path.into_inner();
    check_property_name(&name)?;
    state.accounts.delete_property(station.username, name).await.map_err(|e| match e {
        switchboard_actors::StoreError::NotFound(m) => ApiError::not_found("PropertyNotFoundException", m),
        other => other.into(),
    })?;
    Ok(HttpResponse::Ok().finish())
}

#[derive(Deserialize)]
pub struct SearchParams {
    search: Option<String>,
}

/// `GET /restapi/v1/chat/users?search=`: "find friends" for any signed-in user. Only the
/// public fields; capped at `limits.max_search_results`.
pub async fn search_users(
    _: Caller,
    state: web::Data<AppState>,
    params: web::Query<SearchParams>,
) -> Result<HttpResponse, ApiError> {
    let search = params.into_inner().search.unwrap_or_default();
    if search.trim().is_empty() {
        return Err(ApiError::bad_request("search must not be empty"));
    }
    let users =
        state.accounts.list(Some(search.trim().to_owned()), Some(state.config.limits.max_search_results)).await?;
    let users: Vec<_> = users
        .iter()
        .map(|u| {
            let mut shown = json!({ "username": u.username, "name": u.name, "email": u.email });
            add_display_name(&mut shown, &u.username, &state.hosts);
            shown
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "users": users })))
}
