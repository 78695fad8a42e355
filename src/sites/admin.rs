//! The admin API for web sites (ImbaChat's widget settings, `specs/vendor_apis.md` §3.1):
//! `POST|GET /restapi/v1/sites`, `GET|PUT|DELETE /restapi/v1/sites/{id}` and
//! `POST …/{id}/secret` to rotate the HS256 key of the site's user tokens.
//!
//! The entity: `{"id","name","usersInfoUrl","apiLogin","apiPassword","origins","idsIn"}`.
//! The secret is shown once, when made; the API password is never shown again.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};
use switchboard_actors::clock::{format_stamp, now_ms};
use switchboard_actors::model::sites::{check_origin, check_site_id, IdsIn, SiteRecord};
use switchboard_actors::random::random_hex;

use crate::auth::Admin;
use crate::error::ApiError;
use crate::outbound::destination;
use crate::state::AppState;

/// Longest name, API login or password, in characters.
const MAX_FIELD_CHARS: usize = 256;
/// Most origins one site may list.
const MAX_ORIGINS: usize = 32;

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SiteEntity {
    pub id: Option<String>,
    pub name: Option<String>,
    pub users_info_url: Option<String>,
    pub api_login: Option<String>,
    pub api_password: Option<String>,
    pub origins: Option<Vec<String>>,
    pub ids_in: Option<String>,
}

pub fn site_json(site: &SiteRecord) -> Value {
    json!({
        "id": site.id,
        "name": site.name,
        "usersInfoUrl": site.users_info_url,
        "apiLogin": site.api_login,
        "apiPasswordSet": !site.api_password.is_empty(),
        "origins": site.origins,
        "idsIn": site.ids_in.as_str(),
        "widget": format!("/imbachat/v1/{}/widget", site.id),
        "created": format_stamp(site.created_ms),
        "modified": format_stamp(site.modified_ms),
    })
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found("SiteNotFoundException", format!("site '{id}' does not exist"))
}

fn short(field: &str, value: Option<String>) -> Result<Option<String>, ApiError> {
    match value {
        Some(v) if v.chars().count() > MAX_FIELD_CHARS => {
            Err(ApiError::bad_request(format!("{field} is longer than {MAX_FIELD_CHARS} characters")))
        }
        Some(v) if v.chars().any(char::is_control) => {
            Err(ApiError::bad_request(format!("{field} holds control characters")))
        }
        other => Ok(other),
    }
}

/// Applies the entity's fields to `site`, checking each.
async fn apply(state: &AppState, site: &mut SiteRecord, body: SiteEntity) -> Result<(), ApiError> {
    if let Some(name) = short("name", body.name)? {
        site.name = name;
    }
    if let Some(url) = body.users_info_url {
        let url = url.trim().to_owned();
        if !url.is_empty() {
            destination(&url, state.config.sites.allow_private_destinations)
                .await
                .map_err(|why| ApiError::bad_request(format!("usersInfoUrl: {why}")))?;
        }
        site.users_info_url = url;
    }
    if let Some(login) = short("apiLogin", body.api_login)? {
        site.api_login = login;
    }
    if let Some(password) = short("apiPassword", body.api_password)? {
        site.api_password = password;
    }
    if let Some(origins) = body.origins {
        if origins.len() > MAX_ORIGINS {
            return Err(ApiError::bad_request(format!("a site lists at most {MAX_ORIGINS} origins")));
        }
        let checked: Result<Vec<String>, String> = origins.iter().map(|o| check_origin(o)).collect();
        site.origins = checked.map_err(|why| ApiError::bad_request(format!("origins: {why}")))?;
    }
    if let Some(ids_in) = body.ids_in {
        site.ids_in = IdsIn::parse(&ids_in)
            .ok_or_else(|| ApiError::bad_request(format!("idsIn is \"query\" or \"path\", not {ids_in:?}")))?;
    }
    Ok(())
}

/// `POST /restapi/v1/sites` → 201 with the site and its `secret` (shown once).
pub async fn create(
    _: Admin,
    state: web::Data<AppState>,
    body: web::Json<SiteEntity>,
) -> Result<HttpResponse, ApiError> {
    let mut body = body.into_inner();
    let id = body.id.take().ok_or_else(|| ApiError::bad_request("id is missing (the widget id)"))?;
    check_site_id(&id).map_err(ApiError::bad_request)?;
    let now = now_ms();
    let mut site = SiteRecord {
        id: id.clone(),
        name: id,
        users_info_url: String::new(),
        api_login: String::new(),
        api_password: String::new(),
        origins: Vec::new(),
        ids_in: IdsIn::default(),
        secret: random_hex(32),
        created_ms: now,
        modified_ms: now,
    };
    apply(&state, &mut site, body).await?;
    state.sites.create(site.clone()).await.map_err(|e| match e {
        switchboard_actors::StoreError::Conflict(m) => ApiError::conflict("SiteAlreadyExistsException", m),
        other => other.into(),
    })?;
    let mut shown = site_json(&site);
    shown["secret"] = json!(site.secret);
    Ok(HttpResponse::Created().json(shown))
}

pub async fn list(_: Admin, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let sites: Vec<Value> = state.sites.list().iter().map(|s| site_json(s)).collect();
    Ok(HttpResponse::Ok().json(json!({ "sites": sites })))
}

pub async fn get(_: Admin, state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let site = state.sites.get(&id).ok_or_else(|| not_found(&id))?;
    Ok(HttpResponse::Ok().json(site_json(&site)))
}

/// `PUT /restapi/v1/sites/{id}`: the fields given change; the id cannot.
pub async fn update(
    _: Admin,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<SiteEntity>,
) -> Result<HttpResponse, ApiError> {
    let mut site = (*state.sites.get(&id).ok_or_else(|| not_found(&id))?).clone();
    let mut body = body.into_inner();
    if body.id.take().is_some_and(|other| other != site.id) {
        return Err(ApiError::bad_request("a site's id cannot change (its widget and its users' accounts use it)"));
    }
    apply(&state, &mut site, body).await?;
    site.modified_ms = now_ms();
    state.sites.update(site.clone()).await?;
    Ok(HttpResponse::Ok().json(site_json(&site)))
}

pub async fn delete(_: Admin, state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    if state.sites.delete(&id).await? {
        Ok(HttpResponse::Ok().json(json!({ "deleted": id.as_str() })))
    } else {
        Err(not_found(&id))
    }
}

/// `POST /restapi/v1/sites/{id}/secret`: a new secret; tokens made with the old one stop
/// working at once.
pub async fn rotate_secret(
    _: Admin,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let mut site = (*state.sites.get(&id).ok_or_else(|| not_found(&id))?).clone();
    site.secret = random_hex(32);
    site.modified_ms = now_ms();
    state.sites.update(site.clone()).await?;
    Ok(HttpResponse::Ok().json(json!({ "id": site.id, "secret": site.secret })))
}
