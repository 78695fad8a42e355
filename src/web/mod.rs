//! The web client's files, compiled into the binary (`src/web/static/`, plain ES modules and
//! CSS, no build step): the client at `/`, its modules and style under `/web/`, and the
//! Fastpath visitor page at `/ask/{workgroup}`. The pages load nothing from elsewhere; their
//! Content-Security-Policy says so.

use actix_web::http::header;
use actix_web::{web, HttpResponse};

use crate::error::ApiError;

/// What the server's own pages may load and talk to: itself only (pictures from anywhere,
/// as site avatars are on the sites).
const PAGE_POLICY: &str = "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data: http: https:; \
                           frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

const INDEX: &str = include_str!("static/index.html");
const ASK: &str = include_str!("static/ask.html");

/// The files under `/web/`: name, content type, content.
const FILES: &[(&str, &str, &str)] = &[
    ("app.js", "text/javascript; charset=utf-8", include_str!("static/app.js")),
    ("ask.js", "text/javascript; charset=utf-8", include_str!("static/ask.js")),
    ("common.js", "text/javascript; charset=utf-8", include_str!("static/common.js")),
    ("style.css", "text/css; charset=utf-8", include_str!("static/style.css")),
];

fn page(html: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CONTENT_SECURITY_POLICY, PAGE_POLICY))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(html)
}

/// `GET /`: the web client.
pub fn index() -> HttpResponse {
    page(INDEX)
}

/// `GET /ask/{workgroup}`: the visitor page (the page itself reads the workgroup from its path).
pub async fn ask_page(_workgroup: web::Path<String>) -> HttpResponse {
    page(ASK)
}

/// `GET /web/{file}`.
pub async fn file(name: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let (_, content_type, content) = FILES
        .iter()
        .find(|(file, _, _)| *file == name.as_str())
        .ok_or_else(|| ApiError::not_found("NotFoundException", format!("there is no file /web/{name}")))?;
    Ok(HttpResponse::Ok()
        .content_type(*content_type)
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(*content))
}
