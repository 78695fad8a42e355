//! What a site's pages call: `POST /restapi/v1/auth/site-token {"site","token"}` exchanges a
//! site user token for a session token (as `/auth/token` gives), and
//! `GET /restapi/v1/sites/{id}/users?ids=1,2` tells the site's users by their site ids: their
//! addresses and what the site's users-info URL says of them (`name`, `avatar_url` and the
//! site's other fields). Ids the site knows get accounts, so they can be written to before
//! they first sign in.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};
use switchboard_actors::model::sites::parse_site_username;

use crate::auth::{query_param, Caller};
use crate::error::ApiError;
use crate::state::AppState;

/// Most ids one profiles request may name.
const MAX_IDS: usize = 100;

#[derive(Debug, Deserialize)]
pub struct SiteTokenRequest {
    pub site: String,
    pub token: String,
}

/// `POST /restapi/v1/auth/site-token`.
pub async fn exchange(state: web::Data<AppState>, body: web::Json<SiteTokenRequest>) -> Result<HttpResponse, ApiError> {
    let caller = state.auth.verify_site_token(&body.site, &body.token).await?;
    let (token, expires) = state.auth.issue_token(&caller.username)?;
    Ok(HttpResponse::Ok().json(json!({
        "token": token,
        "expires": expires,
        "username": caller.username,
        "jid": format!("{}@{}", caller.username, state.domain()),
    })))
}

/// `GET /restapi/v1/sites/{id}/users?ids=…`: for the site's own users and the admin.
pub async fn users(
    caller: Caller,
    req: HttpRequest,
    state: web::Data<AppState>,
    site: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let own_site = parse_site_username(&caller.username).is_some_and(|(s, _)| s == site.as_str());
    if !(own_site || caller.is_admin()) {
        return Err(ApiError::forbidden(format!("only users of site '{site}' may look up its users")));
    }
    if state.sites.get(&site).is_none() {
        return Err(ApiError::not_found("SiteNotFoundException", format!("site '{site}' does not exist")));
    }
    let raw =
        query_param(req.query_string(), "ids").ok_or_else(|| ApiError::bad_request("ids is missing (ids=1,2,3)"))?;
    let ids: Vec<String> = raw.split(',').map(str::trim).filter(|i| !i.is_empty()).map(str::to_owned).collect();
    if ids.is_empty() || ids.len() > MAX_IDS {
        return Err(ApiError::bad_request(format!("ids names 1 to {MAX_IDS} user ids, comma-separated")));
    }
    let found = state.users_info.users(&site, &ids).await;
    let users: Vec<Value> = found
        .into_iter()
        .map(|user| {
            let mut shown = match user.profile.as_deref() {
                Some(Value::Object(fields)) => Value::Object(fields.clone()),
                _ => json!({ "name": user.user_id }),
            };
            shown["user_id"] = json!(user.user_id);
            shown["known"] = json!(user.profile.is_some());
            shown["username"] = json!(user.username);
            shown["jid"] = json!(format!("{}@{}", user.username, state.domain()));
            shown
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "users": users })))
}
