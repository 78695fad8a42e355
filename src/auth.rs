//! Who is calling: HTTP Basic, bearer tokens (HS256 JWT), `?token=`, and a web site's user
//! tokens (`?site=ID` with the site's token as bearer or `?token=`; `crate::sites::tokens`).
//!
//! Passwords are checked against argon2 hashes on a blocking thread. A successful check is
//! remembered for `auth.credential_cache_secs` as a keyed SHA-256 digest (the key is random
//! per process), so repeated requests do not each pay for argon2; digests are compared in
//! constant time. Failed logins are counted per user name and answered 429 past the limit.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::Addr;
use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest};
use base64::Engine;
use futures_util::future::LocalBoxFuture;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use switchboard_actors::accounts::Accounts;
use switchboard_actors::model::records::AccountKind;
use switchboard_actors::model::records::UserUpdate;
use switchboard_actors::model::sites::parse_site_username;
use switchboard_actors::password::{DeriveScram, PasswordHasher, PasswordWorker, VerifyPassword};
use switchboard_actors::router::{ResolveStream, Router, StreamInfo};
use switchboard_actors::sites::{SiteUserError, Sites};

use crate::config::{secs, AuthConfig};
use crate::error::ApiError;
use crate::sites::tokens;
use crate::sites::users_info::UsersInfo;

/// The account every admin-only endpoint requires.
pub const ADMIN_USERNAME: &str = "admin";

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub username: String,
}

impl Caller {
    pub fn is_admin(&self) -> bool {
        self.username == ADMIN_USERNAME
    }

    /// A user acts only as itself; the admin may act for anyone.
    pub fn may_act_as(&self, username: &str) -> bool {
        self.is_admin() || self.username == username
    }

    pub fn require_self(&self, username: &str) -> Result<(), ApiError> {
        if self.may_act_as(username) {
            Ok(())
        } else {
            Err(ApiError::not_yourself())
        }
    }
}

/// An authenticated admin (403 for anyone else).
#[derive(Debug, Clone)]
pub struct Admin(pub Caller);

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    iat: u64,
    exp: u64,
}

struct CachedCredential {
    digest: [u8; 32],
    until: Instant,
}

struct FailedLogins {
    count: u32,
    since: Instant,
}

/// Checks credentials and issues tokens. One per server, shared by every worker.
pub struct Authenticator {
    accounts: Accounts,
    passwords: Addr<PasswordWorker>,
    digest_key: [u8; 32],
    cache: Mutex<HashMap<String, CachedCredential>>,
    failures: Mutex<HashMap<String, FailedLogins>>,
    encoding: EncodingKey,
    decoding: DecodingKey,
    token_ttl: Duration,
    cache_ttl: Duration,
    max_failed: u32,
    failure_window: Duration,
    /// The admin API's shared secret, when configured.
    api_secret: Option<String>,
    /// Web sites, whose users sign in with the site's tokens, and what they are called.
    sites: Option<(Sites, Arc<UsersInfo>)>,
    /// Keys the salts SCRAM shows for user names without credentials (stable across restarts,
    /// as a real salt is, so the exchange does not tell which names exist).
    scram_salt_key: [u8; 32],
}

impl Authenticator {
    pub fn new(accounts: Accounts, passwords: Addr<PasswordWorker>, config: &AuthConfig, jwt_secret: &[u8]) -> Self {
        let mut digest_key = [0u8; 32];
        getrandom::fill(&mut digest_key).expect("the operating system's random source is available");
        Authenticator {
            accounts,
            passwords,
            digest_key,
            cache: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
            encoding: EncodingKey::from_secret(jwt_secret),
            decoding: DecodingKey::from_secret(jwt_secret),
            token_ttl: secs(config.token_ttl_secs),
            cache_ttl: secs(config.credential_cache_secs),
            max_failed: config.max_failed_logins,
            failure_window: secs(config.failed_login_window_secs),
            api_secret: None,
            sites: None,
            scram_salt_key: Sha256::new()
                .chain_update(b"switchboard scram salts")
                .chain_update(jwt_secret)
                .finalize()
                .into(),
        }
    }

    pub fn scram_salt_key(&self) -> &[u8] {
        &self.scram_salt_key
    }

    /// Accepts site user tokens of `sites`, and has a signed-in site user's name and avatar
    /// asked of its site.
    pub fn with_sites(mut self, sites: Sites, users_info: Arc<UsersInfo>) -> Self {
        self.sites = Some((sites, users_info));
        self
    }

    /// Accepts `Authorization: <secret>` as the admin (the REST API plugin's secret-key
    /// mode); an empty secret leaves it off.
    pub fn with_api_secret(mut self, secret: &str) -> Self {
        self.api_secret = Some(secret.to_owned()).filter(|s| !s.is_empty());
        self
    }

    /// Whether `value` (a whole `Authorization` header) is the shared secret.
    fn is_api_secret(&self, value: &str) -> bool {
        self.api_secret.as_ref().is_some_and(|secret| {
            let (a, b) = (secret.as_bytes(), value.trim().as_bytes());
            a.len() == b.len() && bool::from(a.ct_eq(b))
        })
    }

    fn digest(&self, username: &str, password: &str) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(self.digest_key);
        hasher.update(username.as_bytes());
        hasher.update([0u8]);
        hasher.update(password.as_bytes());
        hasher.finalize().into()
    }

    /// Checks a user name and password.
    pub async fn verify(&self, username: &str, password: &str) -> Result<Caller, ApiError> {
        self.check_not_locked(username)?;
        let digest = self.digest(username, password);
        {
            let cache = self.cache.lock().expect("auth cache lock");
            if let Some(hit) = cache.get(username) {
                if hit.until > Instant::now() && bool::from(hit.digest.ct_eq(&digest)) {
                    return Ok(Caller { username: username.to_owned() });
                }
            }
        }
        // A site user has no password: only its site's tokens sign it in.
        let user = self.accounts.find(username).await?.filter(|u| u.kind != AccountKind::Site);
        let locked = user.as_ref().is_some_and(|u| u.locked);
        let lacks_scram = user.as_ref().is_some_and(|u| u.scram.is_empty());
        // An unknown user still costs one argon2 verification, so timing does not tell
        // which user names exist.
        let hash = user.map(|u| u.password_hash).unwrap_or_else(|| dummy_hash().to_owned());
        let ok = self.passwords.send(VerifyPassword { password: password.to_owned(), phc: hash }).await?;
        if ok && locked {
            return Err(locked_out(username));
        }
        if ok {
            if lacks_scram {
                self.add_scram_keys(username, password);
            }
            self.failures.lock().expect("auth failures lock").remove(username);
            self.cache
                .lock()
                .expect("auth cache lock")
                .insert(username.to_owned(), CachedCredential { digest, until: Instant::now() + self.cache_ttl });
            Ok(Caller { username: username.to_owned() })
        } else {
            self.record_failure(username);
            Err(ApiError::unauthorized("wrong user name or password"))
        }
    }

    /// Gives an account made before SCRAM credentials were kept its credentials, from the
    /// password it just signed in with (in the background; the login does not wait).
    fn add_scram_keys(&self, username: &str, password: &str) {
        let (accounts, passwords) = (self.accounts.clone(), self.passwords.clone());
        let (username, password) = (username.to_owned(), password.to_owned());
        actix_web::rt::spawn(async move {
            let Ok(scram) = passwords.send(DeriveScram { password }).await else { return };
            let update = UserUpdate { username, scram: Some(scram), ..Default::default() };
            if let Err(e) = accounts.update(update).await {
                tracing::warn!(error = %e, "could not keep an account's SCRAM credentials");
            }
        });
    }

    /// Refuses a sign-in to a user name with too many recent failures (429).
    pub fn check_not_locked(&self, username: &str) -> Result<(), ApiError> {
        let failures = self.failures.lock().expect("auth failures lock");
        if let Some(f) = failures.get(username) {
            let elapsed = f.since.elapsed();
            if f.count >= self.max_failed && elapsed < self.failure_window {
                let wait = (self.failure_window - elapsed).as_secs().max(1);
                return Err(ApiError::too_many(format!(
                    "too many failed logins for '{username}'; try again in {wait} s"
                )));
            }
        }
        Ok(())
    }

    /// Counts a failed sign-in of `username` (every door's, for the lockout above).
    pub fn record_failure(&self, username: &str) {
        let mut failures = self.failures.lock().expect("auth failures lock");
        let entry = failures.entry(username.to_owned()).or_insert(FailedLogins { count: 0, since: Instant::now() });
        if entry.since.elapsed() >= self.failure_window {
            *entry = FailedLogins { count: 0, since: Instant::now() };
        }
        entry.count += 1;
    }

    /// Forgets a remembered password (it changed, or the account was deleted).
    pub fn forget(&self, username: &str) {
        self.cache.lock().expect("auth cache lock").remove(username);
    }

    /// Issues a token for `username`; returns it and its expiry (Unix seconds).
    pub fn issue_token(&self, username: &str) -> Result<(String, u64), ApiError> {
        let now = jsonwebtoken::get_current_timestamp();
        let exp = now + self.token_ttl.as_secs().max(1);
        let claims = Claims { sub: username.to_owned(), iat: now, exp };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| ApiError::internal(format!("could not sign token: {e}")))?;
        Ok((token, exp))
    }

    /// Checks a token's signature and expiry.
    pub fn verify_token(&self, token: &str) -> Result<Caller, ApiError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map_err(|e| ApiError::unauthorized(format!("invalid token: {e}")))?;
        Ok(Caller { username: data.claims.sub })
    }

    /// Checks a token, and that its account still exists (a deleted account's tokens die
    /// with it, not at their expiry).
    pub async fn verify_live_token(&self, token: &str) -> Result<Caller, ApiError> {
        let caller = self.verify_token(token)?;
        match self.accounts.find(&caller.username).await? {
            Some(user) if user.locked => Err(locked_out(&user.username)),
            Some(_) => Ok(caller),
            None => Err(ApiError::unauthorized("the token's account no longer exists")),
        }
    }

    /// Checks a site user token of site `site_id`; the site user's account is made on its
    /// first sign-in.
    pub async fn verify_site_token(&self, site_id: &str, token: &str) -> Result<Caller, ApiError> {
        let Some((sites, users_info)) = &self.sites else {
            return Err(ApiError::unauthorized("site sign-in is not available on this server"));
        };
        let site = sites.get(site_id).ok_or_else(|| ApiError::unauthorized(format!("there is no site '{site_id}'")))?;
        let user_id = tokens::verify(token, site.secret.as_bytes(), jsonwebtoken::get_current_timestamp())
            .map_err(|why| ApiError::unauthorized(format!("invalid site token: {why}")))?;
        let (username, locked) = sites.site_user(&site.id, &user_id).await.map_err(|e| match e {
            SiteUserError::Store(e) => ApiError::from(e),
            other => ApiError::unauthorized(format!("invalid site token: {other}")),
        })?;
        if locked {
            return Err(locked_out(&username));
        }
        users_info.signed_in(&username);
        Ok(Caller { username })
    }

    /// SASL PLAIN's user name and password: a token from `/restapi/v1/auth/token`, a site
    /// user's own site token (the user name `SITE.ID` names the site), or the password.
    pub async fn verify_plain(&self, username: &str, password: &str) -> Result<Caller, ApiError> {
        let looks_like_jwt = password.matches('.').count() == 2;
        if looks_like_jwt && self.verify_token(password).is_ok() {
            let caller = self.verify_live_token(password).await?;
            return if caller.username == username {
                Ok(caller)
            } else {
                Err(ApiError::unauthorized("the token belongs to someone else"))
            };
        }
        if let (true, Some((site, _))) = (looks_like_jwt, parse_site_username(username)) {
            if self.sites.as_ref().is_some_and(|(sites, _)| sites.get(site).is_some()) {
                let caller = self.verify_site_token(site, password).await?;
                return if caller.username == username {
                    Ok(caller)
                } else {
                    Err(ApiError::unauthorized("the site token is another user's"))
                };
            }
        }
        self.verify(username, password).await
    }

    /// Authenticates a request from its `Authorization` header (Basic or Bearer), or from
    /// a `token` query parameter (browsers cannot set headers on EventSource/WebSocket).
    /// With `?site=ID`, the bearer or `?token=` is a user token of that site.
    pub async fn authenticate(&self, req: &HttpRequest) -> Result<Caller, ApiError> {
        if let Some(site) = query_param(req.query_string(), "site") {
            let token = bearer(req).or_else(|| query_param(req.query_string(), "token")).ok_or_else(|| {
                ApiError::unauthorized("a site sign-in needs the site's user token (Bearer or ?token=)")
            })?;
            return self.verify_site_token(&site, &token).await;
        }
        if let Some(value) = req.headers().get(header::AUTHORIZATION) {
            let value = value.to_str().map_err(|_| ApiError::unauthorized("malformed Authorization header"))?;
            let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
            return if scheme.eq_ignore_ascii_case("basic") {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(rest.trim())
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| ApiError::unauthorized("malformed Basic credentials"))?;
                let (user, password) =
                    decoded.split_once(':').ok_or_else(|| ApiError::unauthorized("malformed Basic credentials"))?;
                self.verify(user, password).await
            } else if scheme.eq_ignore_ascii_case("bearer") {
                self.verify_live_token(rest.trim()).await
            } else if self.is_api_secret(value) {
                Ok(Caller { username: ADMIN_USERNAME.to_owned() })
            } else if self.api_secret.is_some() {
                Err(ApiError::unauthorized("wrong shared secret (or use Basic or Bearer)"))
            } else {
                Err(ApiError::unauthorized(
                    "unsupported Authorization scheme; use Basic or Bearer (shared-secret auth is off: admin.api_secret)",
                ))
            };
        }
        if let Some(token) = query_param(req.query_string(), "token") {
            return self.verify_live_token(&token).await;
        }
        Err(ApiError::unauthorized("authentication required (HTTP Basic, Bearer token or ?token=)"))
    }
}

/// The refusal of a locked-out account's sign-in.
fn locked_out(username: &str) -> ApiError {
    ApiError::unauthorized(format!("the account '{username}' is locked out by the administrator"))
}

/// An argon2id hash of a random string, verified against when the user is unknown.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| PasswordHasher::new().hash(&switchboard_actors::random::random_hex(16)))
}

/// The first value of a query parameter, percent-decoded.
pub fn query_param(query: &str, name: &str) -> Option<String> {
    web::Query::<HashMap<String, String>>::from_query(query).ok().and_then(|q| q.get(name).cloned())
}

/// Prefix of visitor tokens: tells them apart from account tokens (JWTs).
pub const VISITOR_TOKEN_PREFIX: &str = "visitor-";

/// The token of `Authorization: Bearer …`, if the request has one.
fn bearer(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_owned())
}

/// The visitor token of a request: `?token=` or `Authorization: Bearer visitor-…`.
pub fn visitor_token(req: &HttpRequest) -> Option<String> {
    bearer(req).or_else(|| query_param(req.query_string(), "token")).filter(|t| t.starts_with(VISITOR_TOKEN_PREFIX))
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Caller, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let auth = req.app_data::<web::Data<Authenticator>>().expect("the Authenticator is registered").clone();
            auth.authenticate(&req).await
        })
    }
}

/// The caller's own login stream, named by the `{streamid}` in the path: the caller is
/// authenticated, the stream resolved (404 if unknown) and checked to be the caller's (403;
/// the admin may use anyone's). Derefs to the stream, whose `session` serves it.
pub struct CallerStation {
    pub caller: Caller,
    pub stream: StreamInfo,
}

impl std::ops::Deref for CallerStation {
    type Target = StreamInfo;

    fn deref(&self) -> &StreamInfo {
        &self.stream
    }
}

/// Resolves a stream id `caller` may use: 404 if unknown, 403 if another user's.
pub async fn resolve_stream(router: &Addr<Router>, caller: &Caller, stream_id: &str) -> Result<StreamInfo, ApiError> {
    let info = router.send(ResolveStream { stream_id: stream_id.to_owned() }).await?.ok_or_else(|| {
        ApiError::not_found(
            "StreamNotFoundException",
            format!("stream '{stream_id}' does not exist (it may have expired or been logged off)"),
        )
    })?;
    caller.require_self(&info.username)?;
    Ok(info)
}

impl FromRequest for CallerStation {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<CallerStation, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let caller = Caller::from_request(req, payload);
        let stream_id = req.match_info().get("streamid").map(str::to_owned);
        let router = req.app_data::<web::Data<Addr<Router>>>().expect("the router is registered").clone();
        Box::pin(async move {
            let caller = caller.await?;
            let stream_id = stream_id.expect("CallerStation is used only on routes with a {streamid}");
            let stream = resolve_stream(&router, &caller, &stream_id).await?;
            Ok(CallerStation { caller, stream })
        })
    }
}

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Admin, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let caller = Caller::from_request(req, payload);
        Box::pin(async move {
            let caller = caller.await?;
            if caller.is_admin() {
                Ok(Admin(caller))
            } else {
                Err(ApiError::forbidden("this endpoint is for the admin only"))
            }
        })
    }
}
