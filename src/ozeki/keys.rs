//! The admin API for Ozeki clients' station keys: `POST /restapi/v1/users/{u}/ozeki/apikeys`
//! issues one (`{"station"}` optional: a 32-hex station id is made when absent) and shows it
//! once; `GET` lists the stations; `DELETE …/apikeys/{station}` revokes. Only the key's
//! SHA-256 is stored.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use switchboard_actors::clock::{format_stamp, now_ms};
use switchboard_actors::model::ozeki::{OzekiUserId, StationKey};
use switchboard_actors::random::random_hex;

use crate::auth::Admin;
use crate::error::ApiError;
use crate::state::AppState;

/// Longest station id, in bytes.
const MAX_STATION_BYTES: usize = 64;

#[derive(Debug, Deserialize, Default)]
pub struct NewKey {
    pub station: Option<String>,
}

/// The digest a key is stored and looked up by; also the key its signatures are made with.
pub fn key_digest(apikey: &str) -> Vec<u8> {
    Sha256::digest(apikey.trim().as_bytes()).to_vec()
}

fn check_station(station: &str) -> Result<(), ApiError> {
    let fine = !station.is_empty()
        && station.len() <= MAX_STATION_BYTES
        && station.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if fine {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "station {station:?}: 1 to {MAX_STATION_BYTES} letters, digits, '-', '_' or '.'"
        )))
    }
}

/// `POST /restapi/v1/users/{username}/ozeki/apikeys`.
pub async fn issue(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: Option<web::Json<NewKey>>,
) -> Result<HttpResponse, ApiError> {
    let username = path.into_inner();
    let user = state.accounts.find(&username).await?.ok_or_else(|| ApiError::user_not_found(&username))?;
    if OzekiUserId::from_email(&user.email).is_none() {
        return Err(ApiError::bad_request(format!(
            "user '{username}' has no e-mail address, so it has no Ozeki user id; set one first"
        )));
    }
    let station = body.and_then(|b| b.into_inner().station).unwrap_or_else(|| random_hex(16));
    check_station(&station)?;
    let apikey = random_hex(32);
    let key = StationKey { username, station: station.clone(), digest: key_digest(&apikey), created_ms: now_ms() };
    state.conversations.add_key(key).await?;
    Ok(HttpResponse::Created().json(json!({"apikey": apikey, "stationid": station})))
}

/// `GET /restapi/v1/users/{username}/ozeki/apikeys`.
pub async fn list(_: Admin, state: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let username = path.into_inner();
    state.accounts.find(&username).await?.ok_or_else(|| ApiError::user_not_found(&username))?;
    let keys = state.conversations.keys_of(&username).await?;
    let keys: Vec<_> =
        keys.iter().map(|k| json!({"stationid": k.station, "created": format_stamp(k.created_ms)})).collect();
    Ok(HttpResponse::Ok().json(json!({"apikeys": keys})))
}

/// `DELETE /restapi/v1/users/{username}/ozeki/apikeys/{station}`.
pub async fn revoke(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (username, station) = path.into_inner();
    if state.conversations.revoke_key(&username, &station).await? {
        Ok(HttpResponse::Ok().json(json!({"revoked": station})))
    } else {
        Err(ApiError::not_found(
            "KeyNotFoundException",
            format!("user '{username}' has no key for station '{station}'"),
        ))
    }
}
