//! Which web pages may call the server from a browser: the server's own pages, and the
//! `origins` of the sites (`model::sites`). Every request passes [`check`]:
//! - a request without `Origin`, or from the server's own origin, goes on unchanged;
//! - a CORS request from a site's origin gets `Access-Control-Allow-Origin` (and a preflight
//!   `OPTIONS` its answer, 204); from any other origin no CORS header, so the browser keeps
//!   the answer from the page, and a preflight is refused with 403;
//! - a websocket upgrade (`/ws`, `/xmpp-websocket`) from another origin is refused with 403
//!   unless a site lists that origin (with `?site=ID`, that site).

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse};

use crate::auth::query_param;
use crate::error::ApiError;
use crate::state::AppState;

/// Whether `origin` (`scheme://host[:port]`) names the host the request was sent to.
fn same_origin(origin: &str, req: &ServiceRequest) -> bool {
    // The Host header itself: a page's script cannot set it, unlike the forwarding headers.
    let host = req.headers().get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or_default().to_ascii_lowercase();
    let origin = origin.to_ascii_lowercase();
    let rest = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://")).unwrap_or(&origin);
    rest == host || rest.strip_suffix(":80") == Some(host.as_str()) || host.strip_suffix(":80") == Some(rest)
}

fn allowed_by_sites(state: &AppState, origin: &str, site: Option<&str>) -> bool {
    match site {
        Some(id) => state.sites.get(id).is_some_and(|s| s.allows_origin(origin)),
        None => state.sites.list().iter().any(|s| s.allows_origin(origin)),
    }
}

fn is_upgrade(req: &ServiceRequest) -> bool {
    req.headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// The middleware (see the module header).
pub async fn check(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let origin = req.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let (Some(origin), Some(state)) = (origin, req.app_data::<web::Data<AppState>>().cloned()) else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    if same_origin(&origin, &req) {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    let site = query_param(req.query_string(), "site");
    let allowed = allowed_by_sites(&state, &origin, site.as_deref());
    if is_upgrade(&req) && !allowed {
        let refusal = ApiError::forbidden(format!(
            "a page from {origin} may not open this websocket: it is not one of the origins of {}",
            site.map_or("any site".to_owned(), |s| format!("site '{s}'"))
        ));
        return Ok(req.error_response(refusal));
    }
    let preflight =
        req.method() == Method::OPTIONS && req.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if preflight {
        if !allowed {
            let refusal = ApiError::forbidden(format!("{origin} is not one of the origins of any site"));
            return Ok(req.error_response(refusal));
        }
        let answer = HttpResponse::NoContent()
            .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.as_str()))
            .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, "GET, POST, PUT, DELETE"))
            .insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, "authorization, content-type, last-event-id"))
            .insert_header((header::ACCESS_CONTROL_MAX_AGE, "600"))
            .insert_header((header::VARY, "Origin"))
            .finish();
        return Ok(req.into_response(answer));
    }
    let mut response = next.call(req).await?.map_into_boxed_body();
    if allowed {
        if let Ok(value) = HeaderValue::from_str(&origin) {
            let headers = response.headers_mut();
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
            headers.insert(header::VARY, HeaderValue::from_static("Origin"));
        }
    }
    Ok(response)
}
