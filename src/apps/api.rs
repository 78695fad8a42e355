//! The apps' own API (R-Chat style), every call with `Authorization: Bearer <app token>`:
//! `POST /api/v1/register`, `GET|PUT|DELETE /api/v1/webhook`, `POST|GET /api/v1/chats`,
//! `GET /api/v1/chats/{chat_id}/messages`, `POST /api/v1/messages`. Answers are
//! `{"status":"SUCCESS",…}`; refusals `{"status":"FAIL","message"}` with their status
//! (400, 401, 403, 404, 409, 413).

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use switchboard_actors::clock::format_stamp;
use switchboard_actors::model::apps::{AppChat, AppRecord, ChatKind};
use switchboard_actors::model::records::HistoryQuery;
use switchboard_actors::model::{MessageKind, NewMessage};
use switchboard_actors::muc::conference::AppPostTo;
use switchboard_actors::muc::room::PostAsApp;
use switchboard_actors::random::random_hex;
use switchboard_actors::router::Submit;
use switchboard_actors::{Jid, Username};

use super::webhook::message_content;
use crate::error::ApiError;
use crate::inbound::{check_message_body, read_limited_body};
use crate::outbound::destination;
use crate::state::AppState;

/// The station an app's messages come from.
pub const APP_STATION: &str = "app";
/// Most chats or messages one page holds.
const MAX_PAGE: usize = 200;

/// A refusal in the apps' envelope.
pub struct Fail(ApiError);

impl From<ApiError> for Fail {
    fn from(e: ApiError) -> Fail {
        Fail(e)
    }
}

impl From<switchboard_actors::StoreError> for Fail {
    fn from(e: switchboard_actors::StoreError) -> Fail {
        Fail(e.into())
    }
}

impl std::fmt::Debug for Fail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::fmt::Display for Fail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.message)
    }
}

impl actix_web::ResponseError for Fail {
    fn status_code(&self) -> StatusCode {
        self.0.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut reply = HttpResponse::build(self.0.status);
        if self.0.status == StatusCode::UNAUTHORIZED {
            reply.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
        }
        reply.json(json!({"status": "FAIL", "message": self.0.message}))
    }
}

type Answer = Result<HttpResponse, Fail>;

fn success(mut fields: Value) -> Value {
    if let Value::Object(map) = &mut fields {
        map.insert("status".into(), json!("SUCCESS"));
    }
    fields
}

/// The SHA-256 an app's token is stored and looked up by.
pub fn token_digest(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// The calling app, from its bearer token.
async fn caller(req: &HttpRequest, state: &AppState) -> Result<AppRecord, Fail> {
    let value = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or("");
    let token = value
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::unauthorized("Authorization: Bearer <app token> is missing"))?;
    let app = state.apps.by_token(token_digest(token)).await?;
    Ok(app.ok_or_else(|| ApiError::unauthorized("the app token is not valid (unknown, or rotated)"))?)
}

/// A JSON object body, read within the size limit.
async fn object(payload: web::Payload, state: &AppState) -> Result<Map<String, Value>, Fail> {
    let body = read_limited_body(payload, state.config.limits.max_body_bytes).await?;
    match serde_json::from_slice(&body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::bad_request("the body must be a JSON object").into()),
        Err(e) => Err(ApiError::bad_request(format!("invalid JSON: {e}")).into()),
    }
}

/// `POST /api/v1/register`: a new signature token (the seed's Chatday-Signature-Token).
pub async fn register(req: HttpRequest, state: web::Data<AppState>) -> Answer {
    let mut app = caller(&req, &state).await?;
    let token = random_hex(32);
    app.signature_token = Some(token.clone());
    state.apps.update(app).await?;
    Ok(HttpResponse::Ok().json(success(json!({"signature_token": token}))))
}

/// `PUT /api/v1/webhook {"url"}`: verified first (it must answer the verification event).
pub async fn set_webhook(req: HttpRequest, payload: web::Payload, state: web::Data<AppState>) -> Answer {
    let mut app = caller(&req, &state).await?;
    let body = object(payload, &state).await?;
    let Some(token) = app.signature_token.clone() else {
        return Err(ApiError::conflict("NotRegisteredException", "register first: POST /api/v1/register").into());
    };
    let url = body
        .get("url")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .ok_or_else(|| ApiError::bad_request("url is missing"))?
        .to_owned();
    destination(&url, state.webhooks_http.allow_private).await.map_err(ApiError::bad_request)?;
    let verify = json!({"event": "verify", "app_id": app.id, "challenge": random_hex(16)});
    let verified = state
        .webhooks_http
        .post(&url, &token, &format!("verify-{}", random_hex(8)), verify.to_string().into_bytes())
        .await;
    verified.map_err(|e| ApiError::bad_request(format!("the webhook did not pass verification: {e}")))?;
    app.webhook_url = Some(url.clone());
    state.apps.update(app).await?;
    Ok(HttpResponse::Ok().json(success(json!({"url": url}))))
}

/// `GET /api/v1/webhook`.
pub async fn get_webhook(req: HttpRequest, state: web::Data<AppState>) -> Answer {
    let app = caller(&req, &state).await?;
    Ok(HttpResponse::Ok().json(success(json!({"url": app.webhook_url}))))
}

/// `DELETE /api/v1/webhook`: deliveries stop (what is queued waits for a new one).
pub async fn delete_webhook(req: HttpRequest, state: web::Data<AppState>) -> Answer {
    let mut app = caller(&req, &state).await?;
    app.webhook_url = None;
    state.apps.update(app).await?;
    Ok(HttpResponse::Ok().json(success(json!({}))))
}

pub fn chat_json(chat: &AppChat) -> Value {
    json!({"chat_id": chat.chat_id, chat.kind.as_str(): chat.peer, "created": format_stamp(chat.created_ms)})
}

/// `POST /api/v1/chats {"user"}`: the app's chat with a user (opened if new).
pub async fn open_chat(req: HttpRequest, payload: web::Payload, state: web::Data<AppState>) -> Answer {
    let app = caller(&req, &state).await?;
    let body = object(payload, &state).await?;
    let user = body.get("user").and_then(Value::as_str).ok_or_else(|| ApiError::bad_request("user is missing"))?;
    let user = crate::inbound::parse_username(user, state.domain())?;
    let account = state.accounts.find(&user).await?.ok_or_else(|| ApiError::user_not_found(&user))?;
    if account.username == app.name {
        return Err(ApiError::bad_request("an app does not chat with itself").into());
    }
    let chat = state.apps.open_chat(&app.id, ChatKind::User, &account.username, random_hex(8)).await?;
    Ok(HttpResponse::Created().json(success(chat_json(&chat))))
}

fn page(req: &HttpRequest, name: &str, default: usize, max: usize) -> Result<usize, Fail> {
    let raw: Vec<(String, String)> = serde_urlencoded::from_str(req.query_string()).unwrap_or_default();
    match raw.iter().find(|(k, _)| k == name) {
        None => Ok(default),
        Some((_, v)) => match v.parse::<usize>() {
            Ok(n) if n <= max => Ok(n),
            _ => Err(ApiError::bad_request(format!("{name} must be a whole number up to {max}")).into()),
        },
    }
}

/// `GET /api/v1/chats?offset=&limit=`.
pub async fn chats(req: HttpRequest, state: web::Data<AppState>) -> Answer {
    let app = caller(&req, &state).await?;
    let (offset, limit) = (page(&req, "offset", 0, usize::MAX / 2)?, page(&req, "limit", 50, MAX_PAGE)?);
    let chats = state.apps.chats(&app.id, offset, limit).await?;
    let next = (chats.len() == limit).then_some(offset + limit);
    Ok(HttpResponse::Ok()
        .json(success(json!({"chats": chats.iter().map(chat_json).collect::<Vec<_>>(), "next": next}))))
}

/// One of the app's chats (404 unknown, 403 another app's).
async fn own_chat(state: &AppState, app: &AppRecord, chat_id: &str) -> Result<AppChat, Fail> {
    let chat = state.apps.chat(chat_id).await?;
    let chat =
        chat.ok_or_else(|| ApiError::not_found("ChatNotFoundException", format!("chat '{chat_id}' does not exist")))?;
    if chat.app_id != app.id {
        return Err(ApiError::forbidden(format!("chat '{chat_id}' is another app's")).into());
    }
    Ok(chat)
}

/// `GET /api/v1/chats/{chat_id}/messages?before=&limit=`: newest page first, oldest first
/// within it; `before` pages back.
pub async fn chat_messages(req: HttpRequest, state: web::Data<AppState>, path: web::Path<String>) -> Answer {
    let app = caller(&req, &state).await?;
    let chat = own_chat(&state, &app, &path).await?;
    let limit = page(&req, "limit", 50, MAX_PAGE)?.max(1);
    let before = match page(&req, "before", 0, usize::MAX / 2)? {
        0 => None,
        n => Some(n as i64),
    };
    // (id, from, body, data, stamp), oldest first.
    let messages: Vec<(i64, String, String, Option<Value>, i64)> = match chat.kind {
        ChatKind::User => {
            let query = HistoryQuery {
                username: app.name.clone(),
                with: Some(chat.peer.clone()),
                before,
                limit,
                ..Default::default()
            };
            let found = state.archive.history(query).await?;
            found.into_iter().map(|m| (m.id, m.from_user, m.body, m.data, m.stamp_ms)).collect()
        }
        ChatKind::Room => {
            // The room's archive since the app was attached: the newest `limit` before `before`.
            let found = state.archive.room_messages_before(chat.peer.clone(), chat.created_ms, before, limit).await?;
            found.into_iter().map(|m| (m.id, m.from_user, m.body, m.data, m.stamp_ms)).collect()
        }
    };
    let shown: Vec<Value> = messages
        .iter()
        .map(|(id, from, body, data, stamp)| {
            let message = message_content(body, data.as_ref());
            json!({"id": id.to_string(), "from": from, "message": message, "stamp": format_stamp(*stamp)})
        })
        .collect();
    let before = messages.first().filter(|_| messages.len() == limit).map(|m| m.0.to_string());
    Ok(HttpResponse::Ok().json(success(json!({"chat_id": chat.chat_id, "messages": shown, "before": before}))))
}

/// The types an app may send.
const TYPES: &str = "text, image, file, sticker, location";

/// A message an app sends, checked: the body other doors show, and `{"type","data"}`.
pub fn parse_app_message(message: &Value, max_chars: usize) -> Result<(String, Value), ApiError> {
    let kind = message
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad_request(format!("message.type is missing; one of {TYPES}")))?;
    let data = message.get("data").ok_or_else(|| ApiError::bad_request("message.data is missing"))?;
    let field = |name: &str| data.get(name).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty());
    let url = || -> Result<String, ApiError> {
        let url =
            field("url").ok_or_else(|| ApiError::bad_request(format!("message.data.url is missing for {kind}")))?;
        if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() > 2048 {
            return Err(ApiError::bad_request("message.data.url must be an http(s) URL of at most 2048 bytes"));
        }
        Ok(url.to_owned())
    };
    let check_size = || match data.get("size") {
        None | Some(Value::Null) => Ok(()),
        Some(v) if v.as_u64().is_some() => Ok(()),
        Some(_) => Err(ApiError::bad_request("message.data.size must be a whole number of bytes")),
    };
    let object = || {
        if data.is_object() {
            Ok(())
        } else {
            Err(ApiError::bad_request(format!("message.data must be an object for {kind}")))
        }
    };
    let body = match kind {
        "text" => {
            let text = data.as_str().ok_or_else(|| ApiError::bad_request("message.data must be a string for text"))?;
            check_message_body(text, max_chars)?;
            text.to_owned()
        }
        "image" | "file" => {
            object()?;
            check_size()?;
            url()?
        }
        "sticker" => {
            object()?;
            match (field("sticker_id"), field("url")) {
                (_, Some(_)) => url()?,
                (Some(id), None) => format!("sticker:{id}"),
                (None, None) => return Err(ApiError::bad_request("message.data needs sticker_id or url for sticker")),
            }
        }
        "location" => {
            object()?;
            let coordinate = |name: &str, bound: f64| match data.get(name).and_then(Value::as_f64) {
                Some(v) if v.abs() <= bound => Ok(v),
                _ => Err(ApiError::bad_request(format!("message.data.{name} must be a number within ±{bound}"))),
            };
            let (lat, lon) = (coordinate("latitude", 90.0)?, coordinate("longitude", 180.0)?);
            format!("geo:{lat},{lon}")
        }
        other => return Err(ApiError::bad_request(format!("message.type {other:?} is not one of {TYPES}"))),
    };
    Ok((body, json!({"type": kind, "data": data})))
}

/// `POST /api/v1/messages {"chat_id","message":{"type","data"}}`: answered after the commit.
pub async fn send(req: HttpRequest, payload: web::Payload, state: web::Data<AppState>) -> Answer {
    let app = caller(&req, &state).await?;
    let body = object(payload, &state).await?;
    let chat_id =
        body.get("chat_id").and_then(Value::as_str).ok_or_else(|| ApiError::bad_request("chat_id is missing"))?;
    let chat = own_chat(&state, &app, chat_id).await?;
    let message = body.get("message").ok_or_else(|| ApiError::bad_request("message is missing"))?;
    let (text, content) = parse_app_message(message, state.config.limits.max_message_chars)?;
    let data = Some(json!({ "app_message": content }));
    if chat.kind == ChatKind::Room {
        let post = PostAsApp { app: app.name.clone(), body: text, data };
        let posted = state.conference.send(AppPostTo { room: chat.peer.clone(), post }).await;
        let stored = posted.map_err(|_| ApiError::internal("the server is shutting down"))?.map_err(ApiError::from)?;
        let answer = json!({"id": stored.id.to_string(), "stamp": format_stamp(stored.stamp_ms)});
        return Ok(HttpResponse::Ok().json(success(answer)));
    }
    let user = |name: &str| Username::parse(name).map_err(|e| ApiError::bad_request(e.to_string()));
    let submit = Submit {
        message: NewMessage {
            from: Jid::full(user(&app.name)?, APP_STATION.to_owned()),
            to: Jid::bare(user(&chat.peer)?),
            kind: MessageKind::Chat,
            body: text,
            data,
            client_id: None,
            expires_ms: None,
        },
    };
    let stored = state.router.send(submit).await.map_err(|_| ApiError::internal("the server is shutting down"))?;
    let stored = stored.map_err(ApiError::from)?;
    Ok(HttpResponse::Ok().json(success(json!({"id": stored.id.to_string(), "stamp": format_stamp(stored.stamp_ms)}))))
}
