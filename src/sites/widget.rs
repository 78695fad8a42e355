//! The embeddable widget (`specs/vendor_apis.md` §3.5): `GET /imbachat/v1/{dev_id}/widget` and
//! `GET /widget.js?site=ID` serve one self-contained script (`src/web/static/widget.js`) with
//! the site's id set in front of it. It defines `window.ImbaChat.load(options)` and the
//! `imbaChat` / `imbaApi` calls, and talks to this server (the origin it was loaded from).

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use crate::auth::query_param;
use crate::error::ApiError;
use crate::state::AppState;

const WIDGET: &str = include_str!("../web/static/widget.js");

fn script(state: &AppState, site: &str) -> Result<HttpResponse, ApiError> {
    let site = state
        .sites
        .get(site)
        .ok_or_else(|| ApiError::not_found("SiteNotFoundException", format!("there is no site (widget) '{site}'")))?;
    let id = serde_json::to_string(&site.id).map_err(|e| ApiError::internal(e.to_string()))?;
    let mut body = String::with_capacity(WIDGET.len() + id.len() + 32);
    body.push_str("window.__switchboardSite=");
    body.push_str(&id);
    body.push_str(";\n");
    body.push_str(WIDGET);
    Ok(HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .body(body))
}

/// `GET /imbachat/v1/{dev_id}/widget`.
pub async fn by_path(state: web::Data<AppState>, dev_id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    script(&state, &dev_id)
}

/// `GET /widget.js?site=ID`.
pub async fn by_query(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let site = query_param(req.query_string(), "site")
        .ok_or_else(|| ApiError::bad_request("name the site: /widget.js?site=ID"))?;
    script(&state, &site)
}
