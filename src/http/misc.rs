//! Health check and token issue.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use crate::error::ApiError;
use crate::state::AppState;

/// `GET /healthz`: 200 while the server answers. A node of a cluster also says whether it
/// reaches NATS (it serves its local users either way; `/system/readiness/cluster` has the
/// details).
pub async fn health(state: web::Data<AppState>) -> HttpResponse {
    match &state.cluster {
        None => HttpResponse::Ok().json(json!({ "status": "ok" })),
        Some(link) => {
            let nats =
                if link.connected.load(std::sync::atomic::Ordering::Relaxed) { "connected" } else { "unreachable" };
            HttpResponse::Ok().json(json!({ "status": "ok", "cluster": { "node": link.node, "nats": nats } }))
        }
    }
}

#[derive(Deserialize)]
pub struct TokenRequest {
    username: String,
    password: String,
}

/// `POST /restapi/v1/auth/token` `{"username","password"}` → `{"token","expires","username","jid"}`: an HS256
/// JWT for `/ws?token=` and `/sse/{user}?token=`, where browsers cannot send headers.
pub async fn issue_token(state: web::Data<AppState>, body: web::Json<TokenRequest>) -> Result<HttpResponse, ApiError> {
    let caller = state.auth.verify(&body.username, &body.password).await?;
    let (token, expires) = state.auth.issue_token(&caller.username)?;
    let jid = format!("{}@{}", caller.username, state.domain());
    Ok(HttpResponse::Ok().json(json!({ "token": token, "expires": expires, "username": caller.username, "jid": jid })))
}
