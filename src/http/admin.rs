//! Administration (restAPI plugin shapes, `specs/openfire.md` §5): users, sessions and
//! server broadcasts. Every handler takes [`Admin`], so anyone else gets 403.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::json;
use switchboard_actors::clock::format_stamp;
use switchboard_actors::model::records::AccountKind;
use switchboard_actors::password::{HashPassword, HashedPassword};
use switchboard_actors::router::{Broadcast, Kick, ListSessions};
use switchboard_actors::store::{NewUser, UserRecord, UserUpdate};
use switchboard_actors::Username;

use crate::auth::{Admin, ADMIN_USERNAME};
use crate::error::ApiError;
use crate::inbound::check_message_body;
use crate::requests::require_account;
use crate::state::AppState;

/// Longest password accepted (argon2 takes any length; this bounds the work).
const MAX_PASSWORD_LEN: usize = 1024;

#[derive(Debug, Serialize, Deserialize, Clone)]
pub struct Property {
    #[serde(alias = "@key")]
    pub key: String,
    #[serde(alias = "@value", default)]
    pub value: String,
}

/// A user's properties in every shape the REST API plugin has written them: a list, or
/// `{"property": [...]}` (or one object), keys `key`/`value` or `@key`/`@value`; `null` is none.
fn plugin_properties<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Vec<Property>>, D::Error> {
    use serde::de::Error;
    let raw = Option::<serde_json::Value>::deserialize(d)?;
    let list = match raw {
        None | Some(serde_json::Value::Null) => return Ok(None),
        Some(serde_json::Value::Object(mut wrapper)) if wrapper.contains_key("property") => {
            match wrapper.remove("property") {
                Some(serde_json::Value::Array(items)) => items,
                Some(serde_json::Value::Null) | None => Vec::new(),
                Some(one) => vec![one],
            }
        }
        Some(serde_json::Value::Array(items)) => items,
        Some(other) => return Err(D::Error::custom(format!("properties must be a list, not {other}"))),
    };
    list.into_iter()
        .map(|item| serde_json::from_value(item).map_err(D::Error::custom))
        .collect::<Result<_, _>>()
        .map(Some)
}

/// A user as the admin API reads and writes it. The password is write-only.
#[derive(Debug, Deserialize, Default)]
pub struct UserEntity {
    pub username: Option<String>,
    pub password: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    #[serde(default, deserialize_with = "plugin_properties")]
    pub properties: Option<Vec<Property>>,
    /// `user` (the default) or `http`, an HTTP API user.
    pub kind: Option<String>,
}

fn user_json(user: &UserRecord) -> serde_json::Value {
    json!({
        "username": user.username,
        "kind": user.kind.as_str(),
        "name": user.name,
        "email": user.email,
        "properties": user.properties.iter().map(|(k, v)| json!({"key": k, "value": v})).collect::<Vec<_>>(),
        "creationDate": format_stamp(user.created_ms),
        "modificationDate": format_stamp(user.modified_ms),
    })
}

fn check_password(password: &str) -> Result<(), ApiError> {
    if password.is_empty() {
        return Err(ApiError::bad_request("password must not be empty"));
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(ApiError::bad_request(format!("password must be at most {MAX_PASSWORD_LEN} bytes")));
    }
    Ok(())
}

fn check_email(email: &str) -> Result<(), ApiError> {
    if !email.is_empty() && (!email.contains('@') || email.contains(char::is_whitespace)) {
        return Err(ApiError::bad_request(format!("email {email:?} is not an e-mail address")));
    }
    Ok(())
}

/// The kind an account is created with (`user` when not given).
fn parse_kind(raw: Option<&str>) -> Result<AccountKind, ApiError> {
    match raw.map(|r| (r, AccountKind::parse(r))) {
        None => Ok(AccountKind::User),
        Some((_, Some(AccountKind::App))) => {
            Err(ApiError::bad_request("an app's account is made with its app: POST /restapi/v1/apps"))
        }
        Some((_, Some(AccountKind::Site))) => Err(ApiError::bad_request(
            "a site user's account is made when the site signs it in (POST /restapi/v1/sites)",
        )),
        Some((_, Some(kind))) => Ok(kind),
        Some((raw, None)) => Err(ApiError::bad_request(format!("unknown account kind {raw:?}; expected user or http"))),
    }
}

fn properties(list: Option<Vec<Property>>) -> Result<Option<Vec<(String, String)>>, ApiError> {
    let Some(list) = list else { return Ok(None) };
    if list.iter().any(|p| p.key.is_empty()) {
        return Err(ApiError::bad_request("property keys must not be empty"));
    }
    Ok(Some(list.into_iter().map(|p| (p.key, p.value)).collect()))
}

/// Hashes on the password workers: argon2 is deliberately slow.
async fn hash(state: &AppState, password: String) -> Result<HashedPassword, ApiError> {
    Ok(state.passwords.send(HashPassword { password }).await?)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchQuery {
    search: Option<String>,
    /// The REST API plugin's filter: users that have this property…
    property_key: Option<String>,
    /// …with this value (only with `propertyKey`).
    property_value: Option<String>,
}

/// `GET /restapi/v1/users[?search=][&propertyKey=[&propertyValue=]]`.
pub async fn list_users(
    _: Admin,
    state: web::Data<AppState>,
    query: web::Query<SearchQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    if query.property_value.is_some() && query.property_key.is_none() {
        return Err(ApiError::bad_request("propertyValue needs propertyKey"));
    }
    let users = state.accounts.list(query.search, None).await?;
    let wanted = |user: &&UserRecord| match (&query.property_key, &query.property_value) {
        (None, _) => true,
        (Some(key), None) => user.properties.iter().any(|(k, _)| k == key),
        (Some(key), Some(value)) => user.properties.iter().any(|(k, v)| k == key && v == value),
    };
    let shown: Vec<_> = users.iter().filter(wanted).map(user_json).collect();
    Ok(HttpResponse::Ok().json(json!({ "users": shown })))
}

/// `POST /restapi/v1/users` → 201.
pub async fn create_user(
    _: Admin,
    state: web::Data<AppState>,
    body: web::Json<UserEntity>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let raw_name = body.username.ok_or_else(|| ApiError::bad_request("missing field: username"))?;
    let username = Username::parse(&raw_name).map_err(|e| ApiError::bad_request(format!("invalid username: {e}")))?;
    let password = body.password.ok_or_else(|| ApiError::bad_request("missing field: password"))?;
    check_password(&password)?;
    let email = body.email.unwrap_or_default();
    check_email(&email)?;
    let properties = properties(body.properties)?.unwrap_or_default();
    let kind = parse_kind(body.kind.as_deref())?;
    let hashed = hash(&state, password).await?;
    state
        .accounts
        .create(NewUser {
            username: username.to_string(),
            kind,
            password_hash: hashed.phc,
            name: body.name.unwrap_or_default(),
            email,
            properties,
            scram: hashed.scram,
        })
        .await?;
    Ok(HttpResponse::Created().json(json!({ "username": username.to_string() })))
}

/// `GET /restapi/v1/users/{username}`.
pub async fn get_user(_: Admin, state: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let username = path.into_inner();
    match state.accounts.find(&username).await? {
        Some(user) => Ok(HttpResponse::Ok().json(user_json(&user))),
        None => Err(ApiError::user_not_found(&username)),
    }
}

/// `PUT /restapi/v1/users/{username}`: name, email, password and properties; renaming is
/// not supported.
pub async fn update_user(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<UserEntity>,
) -> Result<HttpResponse, ApiError> {
    let username = path.into_inner();
    let body = body.into_inner();
    if let Some(other) = body.username.as_deref().filter(|n| *n != username) {
        return Err(ApiError::bad_request(format!("renaming '{username}' to '{other}' is not supported")));
    }
    if let Some(email) = &body.email {
        check_email(email)?;
    }
    if body.kind.is_some() {
        let kind = parse_kind(body.kind.as_deref())?;
        let current = state.accounts.find(&username).await?.ok_or_else(|| ApiError::user_not_found(&username))?;
        if current.kind != kind {
            return Err(ApiError::bad_request(format!(
                "'{username}' is a {} account; an account's kind is set when it is created",
                current.kind.as_str()
            )));
        }
    }
    let hashed = match body.password {
        Some(password) => {
            check_password(&password)?;
            Some(hash(&state, password).await?)
        }
        None => None,
    };
    let password_changed = hashed.is_some();
    let (password_hash, scram) = hashed.map(|h| (h.phc, h.scram)).unzip();
    state
        .accounts
        .update(UserUpdate {
            username: username.clone(),
            password_hash,
            scram,
            name: body.name,
            email: body.email,
            properties: properties(body.properties)?,
        })
        .await?;
    if password_changed {
        state.auth.forget(&username);
    }
    Ok(HttpResponse::Ok().json(json!({ "username": username })))
}

/// `DELETE /restapi/v1/users/{username}`: the account goes and its stations end.
pub async fn delete_user(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let username = path.into_inner();
    if username == ADMIN_USERNAME {
        return Err(ApiError::forbidden("the admin account cannot be deleted"));
    }
    state.accounts.delete(username.clone()).await?;
    state.groups.forget_user(&username);
    state.auth.forget(&username);
    Ok(HttpResponse::Ok().json(json!({ "username": username })))
}

/// A station as the REST API plugin's session entity shows it (plus Switchboard's own
/// `loginStream`, `connections`, `doors` and, in a cluster, the `nodeName` of a station on
/// another node).
fn session_json(s: &switchboard_actors::router::SessionInfo, domain: &str) -> serde_json::Value {
    json!({
        "sessionId": format!("{}@{}/{}", s.username, domain, s.resource),
        "username": s.username,
        "resource": s.resource,
        "node": if s.node.is_some() { "Remote" } else { "Local" },
        "nodeName": s.node,
        "sessionStatus": "Authenticated",
        "presenceStatus": if s.connections > 0 { "Online" } else { "Offline" },
        "presenceMessage": "",
        "priority": 0,
        "hostAddress": "",
        "hostName": "",
        "creationDate": format_stamp(s.created_ms),
        "lastActionDate": format_stamp(s.last_active_ms),
        "secure": false,
        "loginStream": s.stream_id.is_some(),
        "connections": s.connections,
        "doors": s.doors,
    })
}

/// `POST /restapi/v1/lockouts/{username}`: the account signs in through no door from now
/// on, and its live stations end. 201.
pub async fn lock_out(_: Admin, state: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    set_lockout(&state, &path, true).await?;
    Ok(HttpResponse::Created().json(json!({ "username": path.as_str(), "locked": true })))
}

/// `DELETE /restapi/v1/lockouts/{username}`: the account may sign in again.
pub async fn unlock(_: Admin, state: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    set_lockout(&state, &path, false).await?;
    Ok(HttpResponse::Ok().json(json!({ "username": path.as_str(), "locked": false })))
}

async fn set_lockout(state: &AppState, username: &str, locked: bool) -> Result<(), ApiError> {
    if username == ADMIN_USERNAME {
        return Err(ApiError::forbidden("the admin account cannot be locked out"));
    }
    require_account(state, username).await?;
    state.accounts.set_locked(username, locked).await?;
    state.auth.forget(username);
    Ok(())
}

/// `GET /restapi/v1/sessions`: one entry per station.
pub async fn list_sessions(_: Admin, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let sessions = state.router.send(ListSessions).await?;
    let list: Vec<_> = sessions.iter().map(|s| session_json(s, state.domain())).collect();
    Ok(HttpResponse::Ok().json(json!({ "sessions": list })))
}

/// `GET /restapi/v1/sessions/{username}`: the user's stations (404 for no such user).
pub async fn user_sessions(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let username = path.into_inner();
    require_account(&state, &username).await?;
    let sessions = state.router.send(ListSessions).await?;
    let list: Vec<_> =
        sessions.iter().filter(|s| s.username == username).map(|s| session_json(s, state.domain())).collect();
    Ok(HttpResponse::Ok().json(json!({ "sessions": list })))
}

/// `GET /restapi/v1/system/statistics/sessions`: stations on this node (and so, without a
/// cluster, in all).
pub async fn session_statistics(_: Admin, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let sessions = state.router.send(ListSessions).await?;
    Ok(HttpResponse::Ok().json(json!({ "clusterSessions": sessions.len(), "localSessions": sessions.len() })))
}

/// `GET /restapi/v1/archive/messages/unread/{jid}`: messages to the user that no station
/// has taken yet.
pub async fn unread_count(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let username = crate::inbound::parse_username(&path, state.domain())?;
    require_account(&state, &username).await?;
    let waiting = state.archive.waiting_for(username).await?;
    Ok(HttpResponse::Ok().json(json!({ "count": waiting.len() })))
}

/// `DELETE /restapi/v1/sessions/{username}`: ends every station of the user.
pub async fn kick_user(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let username = path.into_inner();
    require_account(&state, &username).await?;
    let ended = state
        .router
        .send(Kick { username: username.clone(), reason: "the administrator ended the session".into() })
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "username": username, "stationsEnded": ended })))
}

#[derive(Deserialize)]
pub struct BroadcastBody {
    body: String,
}

/// `POST /restapi/v1/messages/users` `{"body"}` → 201: a headline to every online user.
pub async fn broadcast(
    _: Admin,
    state: web::Data<AppState>,
    body: web::Json<BroadcastBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner().body;
    check_message_body(&body, state.config.limits.max_message_chars)?;
    let reached = state.router.send(Broadcast { body }).await?;
    Ok(HttpResponse::Created().json(json!({ "usersReached": reached })))
}
