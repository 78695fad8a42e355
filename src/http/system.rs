//! The REST API plugin's `/system` endpoints, admin only: system properties
//! (`/system/properties[/{key}]`, kept in the store; the server itself reads none of them),
//! and the health checks (`/system/liveness[/deadlock|/properties]`,
//! `/system/readiness[/server|/cluster|/plugins|/connections]`): 200 when the check passes,
//! 503 when it fails, with a JSON body saying what was checked.
//!
//! Liveness asks the router and the store to answer within `LIVENESS_WAIT`: a server whose
//! core stopped answering is not alive. No system property needs a restart, and there are no
//! plugins or cluster to wait for, so those checks pass once the server answers.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use actix_web::{web, HttpResponse};
use serde_json::json;
use switchboard_actors::router::{TakeCensus, ViewCluster};

use serde::Deserialize;

use crate::auth::Admin;
use crate::error::ApiError;
use crate::state::AppState;

/// Longest property key and value, in characters.
const MAX_KEY_CHARS: usize = 256;
const MAX_VALUE_CHARS: usize = 4000;

/// The plugin's system property entity; `null` or absent fields are allowed where it makes
/// sense (the key comes from the path on PUT).
#[derive(Debug, Deserialize, Default)]
pub struct SystemProperty {
    pub key: Option<String>,
    pub value: Option<String>,
}

fn check(key: &str, value: &str) -> Result<(), ApiError> {
    if key.trim().is_empty() || key.chars().count() > MAX_KEY_CHARS {
        return Err(ApiError::bad_request(format!("a property key is 1 to {MAX_KEY_CHARS} characters")));
    }
    if value.chars().count() > MAX_VALUE_CHARS {
        return Err(ApiError::too_large(format!("a property value is at most {MAX_VALUE_CHARS} characters")));
    }
    Ok(())
}

fn not_found(key: &str) -> ApiError {
    ApiError::not_found("PropertyNotFoundException", format!("system property '{key}' does not exist"))
}

/// `GET /system/properties`: `{"property":[{"key","value"}]}`.
pub async fn properties(_: Admin, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let all = state.accounts.system_properties().await?;
    let list: Vec<_> = all.iter().map(|(k, v)| json!({"key": k, "value": v})).collect();
    Ok(HttpResponse::Ok().json(json!({ "property": list })))
}

/// `GET /system/properties/{key}`.
pub async fn property(_: Admin, state: web::Data<AppState>, key: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let all = state.accounts.system_properties().await?;
    let (k, v) = all.into_iter().find(|(k, _)| *k == *key).ok_or_else(|| not_found(&key))?;
    Ok(HttpResponse::Ok().json(json!({"key": k, "value": v})))
}

/// `POST /system/properties {"key","value"}`: 201, replacing one of the same key.
pub async fn create_property(
    _: Admin,
    state: web::Data<AppState>,
    body: web::Json<SystemProperty>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let key = body.key.ok_or_else(|| ApiError::bad_request("key is missing"))?;
    let value = body.value.unwrap_or_default();
    check(&key, &value)?;
    state.accounts.put_system_property(key, value).await?;
    Ok(HttpResponse::Created().finish())
}

/// `PUT /system/properties/{key} {"key","value"}`: 404 for an unknown key, 400 when the
/// body names another.
pub async fn update_property(
    _: Admin,
    state: web::Data<AppState>,
    key: web::Path<String>,
    body: web::Json<SystemProperty>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    if body.key.as_deref().is_some_and(|k| k != key.as_str()) {
        return Err(ApiError::bad_request("the body's key is not the one in the URL"));
    }
    let value = body.value.unwrap_or_default();
    check(&key, &value)?;
    let all = state.accounts.system_properties().await?;
    if !all.iter().any(|(k, _)| *k == *key) {
        return Err(not_found(&key));
    }
    state.accounts.put_system_property(key.into_inner(), value).await?;
    Ok(HttpResponse::Ok().finish())
}

/// `DELETE /system/properties/{key}`.
pub async fn delete_property(
    _: Admin,
    state: web::Data<AppState>,
    key: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    if state.accounts.delete_system_property(key.clone()).await? {
        Ok(HttpResponse::Ok().finish())
    } else {
        Err(not_found(&key))
    }
}

/// How long the core may take to answer a liveness check.
const LIVENESS_WAIT: Duration = Duration::from_secs(2);

fn answer(check: &str, passed: bool, detail: &str) -> HttpResponse {
    let body = json!({"check": check, "passed": passed, "detail": detail});
    if passed {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// Whether the router and the store each answer within the wait.
async fn core_answers(state: &AppState) -> Result<(), String> {
    match tokio::time::timeout(LIVENESS_WAIT, state.router.send(TakeCensus)).await {
        Ok(Ok(_)) => {}
        Ok(Err(_)) => return Err("the router has stopped".into()),
        Err(_) => return Err(format!("the router did not answer within {LIVENESS_WAIT:?}")),
    }
    match tokio::time::timeout(LIVENESS_WAIT, state.accounts.find("admin")).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!("the store failed: {e}")),
        Err(_) => Err(format!("the store did not answer within {LIVENESS_WAIT:?}")),
    }
}

/// `GET /system/liveness` and `/system/liveness/deadlock`.
pub async fn liveness(_: Admin, state: web::Data<AppState>, check: &'static str) -> HttpResponse {
    match core_answers(&state).await {
        Ok(()) => answer(check, true, "the router and the store answer"),
        Err(why) => answer(check, false, &why),
    }
}

/// `GET /system/liveness/properties`: no system property change waits for a restart.
pub async fn liveness_properties(_: Admin) -> HttpResponse {
    answer("properties", true, "no system property change needs a restart")
}

/// `GET /system/readiness/cluster`: passes on a node of no cluster, and on a node connected
/// to NATS (naming its live peers); fails, saying since when, while NATS is out of reach
/// (the node serves its local users meanwhile).
async fn cluster_readiness(state: &AppState) -> HttpResponse {
    let Some(link) = &state.cluster else {
        return answer("cluster", true, "clustering is not enabled");
    };
    let view = state.router.send(ViewCluster).await.ok().flatten();
    let peers = view.map(|v| v.peers).unwrap_or_default();
    let since = switchboard_actors::clock::format_stamp(link.since_ms.load(Relaxed));
    let (passed, detail) = if link.connected.load(Relaxed) {
        let peers = if peers.is_empty() { "none".to_owned() } else { peers.join(", ") };
        (true, format!("node {} connected to NATS at {} since {since}; live peers: {peers}", link.node, link.nats))
    } else {
        let error = link.last_error.lock().expect("the error slot").clone();
        let error = error.map(|e| format!(" (last error: {e})")).unwrap_or_default();
        (
            false,
            format!(
                "node {} cannot reach NATS at {} since {since}{error}; serving its local users only",
                link.node, link.nats
            ),
        )
    };
    let mut response = answer("cluster", passed, &detail);
    if let Ok(value) = actix_web::http::header::HeaderValue::from_str(&link.node) {
        response.headers_mut().insert(actix_web::http::header::HeaderName::from_static("x-switchboard-node"), value);
    }
    response
}

/// `GET /system/readiness[/…]`: the server has started (it answers) and has no plugins to
/// wait for; `readiness` also checks that the core answers, `cluster` the cluster link.
pub async fn readiness(_: Admin, state: web::Data<AppState>, check: &'static str) -> HttpResponse {
    match check {
        "readiness" => match core_answers(&state).await {
            Ok(()) => answer(check, true, "started; listeners open; no cluster or plugins to wait for"),
            Err(why) => answer(check, false, &why),
        },
        "cluster" => cluster_readiness(&state).await,
        "plugins" => answer(check, true, "there are no plugins to start"),
        _ => answer(check, true, "started and accepting connections"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_check_answers_503_with_why() {
        let failed = answer("deadlock", false, "the router did not answer within 2s");
        assert_eq!(failed.status(), actix_web::http::StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(answer("deadlock", true, "ok").status(), actix_web::http::StatusCode::OK);
    }
}
