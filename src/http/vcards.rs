//! vCards over the admin API (the REST API plugin's `/users/{username}/vcard`, vcard-temp
//! XML in and out) and avatars for signed-in users (`/avatars/{username}`: the photo of
//! the user's vCard). XMPP clients read and write the same vCards with `vcard-temp` IQs.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::auth::{Admin, Caller};
use crate::error::ApiError;
use crate::requests::require_account;
use crate::state::AppState;
use crate::vcard;

/// `GET /users/{username}/vcard` → the vCard as XML; 204 when the user has none.
pub async fn get(_: Admin, state: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    require_account(&state, &path).await?;
    Ok(match state.accounts.vcard(&path).await? {
        Some(xml) => HttpResponse::Ok().content_type("application/xml; charset=utf-8").body(xml),
        None => HttpResponse::NoContent().finish(),
    })
}

/// `PUT /users/{username}/vcard` (vcard-temp XML): stores it.
pub async fn put(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    require_account(&state, &path).await?;
    let xml = std::str::from_utf8(&body).map_err(|_| ApiError::bad_request("the vCard is not valid UTF-8"))?;
    let checked = vcard::check(xml, state.config.limits.max_body_bytes)?;
    state.accounts.put_vcard(&path, Some(checked)).await?;
    Ok(HttpResponse::Ok().json(json!({ "username": path.as_str() })))
}

/// `DELETE /users/{username}/vcard`.
pub async fn delete(_: Admin, state: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    require_account(&state, &path).await?;
    if !state.accounts.put_vcard(&path, None).await? {
        return Err(ApiError::not_found("VCardNotFoundException", format!("user '{}' has no vCard", path.as_str())));
    }
    Ok(HttpResponse::Ok().json(json!({ "username": path.as_str() })))
}

/// `GET /avatars/{username}`: the photo of the user's vCard, for any signed-in user; 404
/// when there is none.
pub async fn avatar(_: Caller, state: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    require_account(&state, &path).await?;
    let photo = state
        .accounts
        .vcard(&path)
        .await?
        .and_then(|xml| vcard::parse_stored(&xml))
        .and_then(|element| vcard::photo(&element))
        .ok_or_else(|| {
            ApiError::not_found("AvatarNotFoundException", format!("user '{}' has no avatar", path.as_str()))
        })?;
    Ok(HttpResponse::Ok()
        .content_type(photo.media_type)
        .insert_header((header::CACHE_CONTROL, "private, max-age=60"))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .body(photo.bytes))
}
