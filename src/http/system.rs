//! The REST API plugin's health checks (`/system/liveness[/deadlock|/properties]`,
//! `/system/readiness[/server|/cluster|/plugins|/connections]`): 200 when the check passes,
//! 503 when it fails, with a JSON body saying what was checked. Admin only, as in the plugin.
//!
//! Liveness asks the router and the store to answer within `LIVENESS_WAIT`: a server whose
//! core stopped answering is not alive. No system property needs a restart, and there are no
//! plugins or cluster to wait for, so those checks pass once the server answers.

use std::time::Duration;

use actix_web::{web, HttpResponse};
use serde_json::json;
use switchboard_actors::router::ListSessions;

use crate::auth::Admin;
use crate::state::AppState;

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
    match tokio::time::timeout(LIVENESS_WAIT, state.router.send(ListSessions)).await {
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

/// `GET /system/readiness[/…]`: the server has started (it answers) and has no cluster or
/// plugins to wait for; `readiness` also checks that the core answers.
pub async fn readiness(_: Admin, state: web::Data<AppState>, check: &'static str) -> HttpResponse {
    match check {
        "readiness" => match core_answers(&state).await {
            Ok(()) => answer(check, true, "started; listeners open; no cluster or plugins to wait for"),
            Err(why) => answer(check, false, &why),
        },
        "cluster" => answer(check, true, "clustering is not enabled"),
        "plugins" => answer(check, true, "there are no plugins to start"),
        _ => answer(check, true, "started and accepting connections"),
    }
}
