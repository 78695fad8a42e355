//! The admin API for external apps: `POST|GET /restapi/v1/apps`, `GET|PUT|DELETE
//! /restapi/v1/apps/{id}`, `POST …/{id}/token` (rotate), `GET …/{id}/deliveries?state=`, and
//! `POST …/{id}/deliveries/replay` or `…/deliveries/{seq}/replay` for dead deliveries, and
//! `POST|DELETE …/{id}/rooms/{room}` to attach the app to a room (a chat of its own).

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};
use switchboard_actors::clock::{format_stamp, now_ms};
use switchboard_actors::model::apps::{AppRecord, Delivery, DeliveryState};
use switchboard_actors::random::random_hex;
use switchboard_actors::webhooks::LookNow;
use switchboard_actors::Username;

use super::api::{chat_json, token_digest};
use crate::auth::Admin;
use crate::error::ApiError;
use crate::requests::find_room;
use crate::state::AppState;

/// Longest description, in characters.
const MAX_DESCRIPTION_CHARS: usize = 1000;

#[derive(Debug, Deserialize, Default)]
pub struct AppEntity {
    pub name: Option<String>,
    pub description: Option<String>,
}

fn app_json(app: &AppRecord, state: &AppState) -> Value {
    json!({
        "id": app.id,
        "name": app.name,
        "jid": format!("{}@{}", app.name, state.domain()),
        "description": app.description,
        "registered": app.signature_token.is_some(),
        "webhook": app.webhook_url,
        "created": format_stamp(app.created_ms),
        "modified": format_stamp(app.modified_ms),
    })
}

fn description(raw: Option<String>) -> Result<Option<String>, ApiError> {
    match raw {
        Some(d) if d.chars().count() > MAX_DESCRIPTION_CHARS => {
            Err(ApiError::bad_request(format!("description is longer than {MAX_DESCRIPTION_CHARS} characters")))
        }
        other => Ok(other),
    }
}

async fn found(state: &AppState, id: &str) -> Result<AppRecord, ApiError> {
    state
        .apps
        .find(id)
        .await?
        .ok_or_else(|| ApiError::not_found("AppNotFoundException", format!("app '{id}' does not exist")))
}

/// `POST /restapi/v1/apps {"name","description"}` → 201 `{"id","token",…}`; the token is
/// shown once.
pub async fn create(
    _: Admin,
    state: web::Data<AppState>,
    body: web::Json<AppEntity>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let name = body.name.ok_or_else(|| ApiError::bad_request("name is missing"))?;
    let name = Username::parse(&name).map_err(|e| ApiError::bad_request(format!("name {name:?}: {e}")))?;
    let token = random_hex(32);
    let now = now_ms();
    let app = AppRecord {
        id: random_hex(8),
        name: name.as_str().to_owned(),
        description: description(body.description)?.unwrap_or_default(),
        token_digest: token_digest(&token),
        signature_token: None,
        webhook_url: None,
        created_ms: now,
        modified_ms: now,
    };
    state.apps.create(app.clone()).await?;
    let mut shown = app_json(&app, &state);
    shown["token"] = json!(token);
    Ok(HttpResponse::Created().json(shown))
}

pub async fn list(_: Admin, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let apps = state.apps.all().await?;
    Ok(HttpResponse::Ok().json(json!({"apps": apps.iter().map(|a| app_json(a, &state)).collect::<Vec<_>>()})))
}

pub async fn get(_: Admin, state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(app_json(&found(&state, &id).await?, &state)))
}

/// `PUT /restapi/v1/apps/{id} {"description"}` (the name is the account's and stays).
pub async fn update(
    _: Admin,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<AppEntity>,
) -> Result<HttpResponse, ApiError> {
    let mut app = found(&state, &id).await?;
    let body = body.into_inner();
    if body.name.as_deref().is_some_and(|n| n != app.name) {
        return Err(ApiError::bad_request("an app's name cannot change (it is its account's)"));
    }
    if let Some(d) = description(body.description)? {
        app.description = d;
    }
    state.apps.update(app.clone()).await?;
    Ok(HttpResponse::Ok().json(app_json(&app, &state)))
}

pub async fn delete(_: Admin, state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    if state.apps.delete(&id).await? {
        Ok(HttpResponse::Ok().json(json!({"deleted": id.as_str()})))
    } else {
        Err(ApiError::not_found("AppNotFoundException", format!("app '{id}' does not exist")))
    }
}

/// `POST /restapi/v1/apps/{id}/token`: a new token; the old one stops working.
pub async fn rotate_token(
    _: Admin,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let mut app = found(&state, &id).await?;
    let token = random_hex(32);
    app.token_digest = token_digest(&token);
    state.apps.update(app).await?;
    Ok(HttpResponse::Ok().json(json!({"id": id.as_str(), "token": token})))
}

fn delivery_json(d: &Delivery) -> Value {
    json!({
        "seq": d.seq,
        "delivery_id": d.delivery_id,
        "chat_id": d.chat_id,
        "message_id": d.message_id.to_string(),
        "state": d.state.as_str(),
        "attempts": d.attempts,
        "next_attempt": format_stamp(d.next_attempt_ms),
        "last_error": d.last_error,
        "created": format_stamp(d.created_ms),
    })
}

#[derive(Debug, Deserialize)]
pub struct DeliveryQuery {
    pub state: Option<String>,
    pub limit: Option<usize>,
}

/// `GET /restapi/v1/apps/{id}/deliveries?state=pending|delivered|dead&limit=`, newest first.
pub async fn deliveries(
    _: Admin,
    state: web::Data<AppState>,
    id: web::Path<String>,
    query: web::Query<DeliveryQuery>,
) -> Result<HttpResponse, ApiError> {
    let app = found(&state, &id).await?;
    let wanted =
        match query.state.as_deref() {
            None | Some("") => None,
            Some(raw) => Some(DeliveryState::parse(raw).ok_or_else(|| {
                ApiError::bad_request(format!("state {raw:?} is not one of {}", DeliveryState::NAMES))
            })?),
        };
    let list = state.apps.deliveries(&app.id, wanted, query.limit.unwrap_or(100).min(1000)).await?;
    Ok(HttpResponse::Ok().json(json!({"deliveries": list.iter().map(delivery_json).collect::<Vec<_>>()})))
}

async fn replay_some(state: &AppState, id: &str, seq: Option<i64>) -> Result<HttpResponse, ApiError> {
    let app = found(state, id).await?;
    let replayed = state.apps.replay(&app.id, seq).await?;
    if seq.is_some() && replayed == 0 {
        return Err(ApiError::not_found("DeliveryNotFoundException", "no such dead delivery of this app"));
    }
    state.webhooks.do_send(LookNow);
    Ok(HttpResponse::Ok().json(json!({"replayed": replayed})))
}

/// `POST /restapi/v1/apps/{id}/deliveries/replay`: every dead delivery, again.
pub async fn replay_all(_: Admin, state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    replay_some(&state, &id, None).await
}

/// `POST /restapi/v1/apps/{id}/deliveries/{seq}/replay`.
pub async fn replay_one(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, i64)>,
) -> Result<HttpResponse, ApiError> {
    let (id, seq) = path.into_inner();
    replay_some(&state, &id, Some(seq)).await
}

/// `POST /restapi/v1/apps/{id}/rooms/{room}`: the app takes part in the room (201 with the
/// room chat's id); what occupants say there goes to its webhook, and it may post there.
pub async fn attach_room(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, room) = path.into_inner();
    let app = found(&state, &id).await?;
    find_room(&state, &room).await?;
    let chat = state.apps.attach_room(&app.id, &room, random_hex(8)).await?;
    Ok(HttpResponse::Created().json(chat_json(&chat)))
}

/// `DELETE /restapi/v1/apps/{id}/rooms/{room}`.
pub async fn detach_room(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, room) = path.into_inner();
    let app = found(&state, &id).await?;
    if !state.apps.detach_room(&app.id, &room).await? {
        return Err(ApiError::not_found("ChatNotFoundException", format!("app '{id}' is not in room '{room}'")));
    }
    Ok(HttpResponse::Ok().json(json!({"detached": room})))
}
