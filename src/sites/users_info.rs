//! The users-info client (`specs/vendor_apis.md` §3.2–3.3): what a site's users are called
//! and look like, asked of the site's users-info URL and kept for `sites.users_info_ttl_secs`.
//!
//! A request is `GET` with `Authorization: Basic base64(apiLogin:apiPassword)` and the ids as
//! `?user_ids=1,2,3` or as a last path segment (`idsIn`), through `crate::outbound` and its
//! destination rules (`sites.allow_private_destinations`). The answer is a JSON array of
//! objects with `user_id` (a number or a string) and `name`; `avatar_url` is the picture, and
//! every other field is kept for the profiles API. Ids wanted within
//! `sites.users_info_batch_delay_secs` of each other go in one request.
//!
//! Chat never waits for a site: [`UsersInfo::want`] only schedules a request. What is known
//! goes into the shared [`DisplayNames`] that every door renders people with, and into the
//! account's name (so that search finds it). A slow, failing or refusing site leaves its users
//! shown by their ids, and is asked again after `sites.users_info_retry_secs`.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::Value;
use switchboard_actors::accounts::Accounts;
use switchboard_actors::model::names::{DisplayName, DisplayNames};
use switchboard_actors::model::records::{AccountKind, UserUpdate};
use switchboard_actors::model::sites::{parse_site_username, site_username, IdsIn, SiteRecord};
use switchboard_actors::sites::Sites;

use crate::config::{secs, SitesConfig};
use crate::outbound::{client_for, destination};
use crate::urls::component;

/// Largest users-info answer read.
const MAX_ANSWER_BYTES: usize = 1024 * 1024;
/// Answers kept before the stale ones are dropped (any id a site user asks about takes one).
const MAX_ENTRIES: usize = 100_000;

#[derive(Debug, Clone)]
pub struct UsersInfoOptions {
    pub ttl: Duration,
    pub timeout: Duration,
    pub retry: Duration,
    pub batch: usize,
    pub batch_delay: Duration,
    pub allow_private: bool,
}

impl UsersInfoOptions {
    pub fn from_config(config: &SitesConfig) -> Self {
        UsersInfoOptions {
            ttl: secs(config.users_info_ttl_secs),
            timeout: secs(config.users_info_timeout_secs),
            retry: secs(config.users_info_retry_secs),
            batch: config.users_info_batch.max(1),
            batch_delay: secs(config.users_info_batch_delay_secs),
            allow_private: config.allow_private_destinations,
        }
    }
}

/// What is known of one site user.
#[derive(Debug, Clone)]
enum Entry {
    /// Asked for; the answer has not come.
    Asking,
    /// The site answered (`None`: it does not know the id) and the answer is good until then.
    Known { profile: Option<Arc<Value>>, until: Instant },
    /// The site failed; ask again from then.
    Failed { retry_at: Instant },
}

#[derive(Default)]
struct State {
    entries: HashMap<(String, String), Entry>,
    /// Ids waiting for their site's next request.
    pending: HashMap<String, BTreeSet<String>>,
}

impl State {
    /// Drops what is stale; if that is not enough, everything settled (it is asked again
    /// when wanted).
    fn prune(&mut self, now: Instant) {
        self.entries.retain(|_, entry| match entry {
            Entry::Asking => true,
            Entry::Known { until, .. } => *until > now,
            Entry::Failed { retry_at } => *retry_at > now,
        });
        if self.entries.len() >= MAX_ENTRIES / 2 {
            self.entries.retain(|_, entry| matches!(entry, Entry::Asking));
        }
    }
}

/// Site users' names and avatars, fetched and kept.
pub struct UsersInfo {
    sites: Sites,
    accounts: Accounts,
    names: Arc<DisplayNames>,
    options: UsersInfoOptions,
    state: Mutex<State>,
    answered: tokio::sync::Notify,
    /// Requests made to sites, and those that failed (for `/metrics`).
    pub requests: AtomicU64,
    pub failures: AtomicU64,
}

/// A site user as the profiles API shows it: the site's fields, with the account beside them.
#[derive(Debug, Clone)]
pub struct SiteUser {
    pub user_id: String,
    pub username: String,
    pub profile: Option<Arc<Value>>,
}

impl UsersInfo {
    pub fn new(sites: Sites, accounts: Accounts, names: Arc<DisplayNames>, options: UsersInfoOptions) -> Arc<Self> {
        Arc::new(UsersInfo {
            sites,
            accounts,
            names,
            options,
            state: Mutex::default(),
            answered: tokio::sync::Notify::new(),
            requests: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A site user signed in: until its site tells more, it is called by its id.
    pub fn signed_in(self: &Arc<Self>, username: &str) {
        let Some((site, user_id)) = parse_site_username(username) else { return };
        if self.names.get(username).is_none() {
            self.names.set(username, DisplayName { name: user_id.clone(), avatar: None });
        }
        self.want_id(site, &user_id);
    }

    /// Schedules a request for `username`'s name and avatar if it is a site user whose
    /// answer is not known, not fresh and not already being asked. Never waits.
    pub fn want(self: &Arc<Self>, username: &str) {
        let Some((site, user_id)) = parse_site_username(username) else { return };
        self.want_id(site, &user_id);
    }

    fn want_id(self: &Arc<Self>, site: &str, user_id: &str) {
        let Some(record) = self.sites.get(site) else { return };
        if record.users_info_url.is_empty() {
            return;
        }
        let now = Instant::now();
        let mut state = self.state();
        let key = (site.to_owned(), user_id.to_owned());
        match state.entries.get(&key) {
            Some(Entry::Asking) => return,
            Some(Entry::Known { until, .. }) if *until > now => return,
            Some(Entry::Failed { retry_at }) if *retry_at > now => return,
            _ => {}
        }
        if state.entries.len() >= MAX_ENTRIES {
            state.prune(now);
        }
        state.entries.insert(key, Entry::Asking);
        let pending = state.pending.entry(site.to_owned()).or_default();
        let first = pending.is_empty();
        pending.insert(user_id.to_owned());
        drop(state);
        if first {
            let this = self.clone();
            let site = site.to_owned();
            actix_web::rt::spawn(async move {
                actix_web::rt::time::sleep(this.options.batch_delay).await;
                this.flush(&site).await;
            });
        }
    }

    /// Asks the site for everything pending for it, `batch` ids per request.
    async fn flush(self: &Arc<Self>, site: &str) {
        let ids: Vec<String> = self.state().pending.remove(site).map(|p| p.into_iter().collect()).unwrap_or_default();
        let Some(record) = self.sites.get(site) else {
            self.settle_failed(site, &ids);
            return;
        };
        for chunk in ids.chunks(self.options.batch) {
            self.requests.fetch_add(1, Ordering::Relaxed);
            match self.ask(&record, chunk).await {
                Ok(answer) => self.settle(&record, chunk, answer).await,
                Err(why) => {
                    self.failures.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(site, error = %why, "a users-info request failed; its users show as their ids for now");
                    self.settle_failed(site, chunk);
                }
            }
        }
        self.answered.notify_waiters();
    }

    fn settle_failed(&self, site: &str, ids: &[String]) {
        let retry_at = Instant::now() + self.options.retry;
        let mut state = self.state();
        for id in ids {
            state.entries.insert((site.to_owned(), id.clone()), Entry::Failed { retry_at });
        }
    }

    async fn settle(&self, site: &SiteRecord, asked: &[String], answer: HashMap<String, Value>) {
        let until = Instant::now() + self.options.ttl;
        for (user_id, profile) in &answer {
            let Ok(username) = site_username(&site.id, user_id) else { continue };
            let name = profile.get("name").and_then(Value::as_str).unwrap_or(user_id).to_owned();
            let avatar = profile.get("avatar_url").and_then(Value::as_str).filter(|a| !a.is_empty()).map(str::to_owned);
            // Only the site's own users take the names it gives.
            match self.accounts.find(&username).await {
                Ok(Some(account)) if account.kind == AccountKind::Site => {
                    self.names.set(&username, DisplayName { name: name.clone(), avatar });
                    if account.name != name {
                        let update = UserUpdate { username, name: Some(name), ..Default::default() };
                        if let Err(e) = self.accounts.update(update).await {
                            tracing::warn!(error = %e, "could not keep a site user's name");
                        }
                    }
                }
                _ => {}
            }
        }
        let mut state = self.state();
        for id in asked {
            let profile = answer.get(id).cloned().map(Arc::new);
            state.entries.insert((site.id.clone(), id.clone()), Entry::Known { profile, until });
        }
    }

    /// One request to the site's users-info URL: its users by id.
    async fn ask(&self, site: &SiteRecord, ids: &[String]) -> Result<HashMap<String, Value>, String> {
        let joined = ids.iter().map(|id| component(id)).collect::<Vec<_>>().join(",");
        let url = match site.ids_in {
            IdsIn::Query => {
                let separator = if site.users_info_url.contains('?') { '&' } else { '?' };
                format!("{}{separator}user_ids={joined}", site.users_info_url)
            }
            IdsIn::Path => format!("{}/{joined}", site.users_info_url.trim_end_matches('/')),
        };
        let target = destination(&url, self.options.allow_private).await?;
        let credentials =
            base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", site.api_login, site.api_password));
        let request = client_for(self.options.timeout)
            .get(format!("http://{}{}", target.addr, target.path))
            .insert_header(("host", target.host.as_str()))
            .insert_header(("authorization", format!("Basic {credentials}")))
            .insert_header(("accept", "application/json"));
        let mut response = request.send().await.map_err(|e| format!("the site could not be reached: {e}"))?;
        let status = response.status();
        let body = response.body().limit(MAX_ANSWER_BYTES).await.map_err(|e| format!("the site's answer: {e}"))?;
        if !status.is_success() {
            return Err(format!("the site answered {status}"));
        }
        parse_answer(&body)
    }

    /// The site's users `ids`, waiting up to the request timeout for what is not known yet
    /// (this is for the profiles API, never for chat). Ids the site knows get accounts.
    pub async fn users(self: &Arc<Self>, site: &str, ids: &[String]) -> Vec<SiteUser> {
        for id in ids {
            self.want_id(site, id);
        }
        let deadline = Instant::now() + self.options.timeout + self.options.batch_delay;
        loop {
            let notified = self.answered.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let settled = {
                let state = self.state();
                ids.iter().all(|id| !matches!(state.entries.get(&(site.to_owned(), id.clone())), Some(Entry::Asking)))
            };
            let left = deadline.saturating_duration_since(Instant::now());
            if settled || left.is_zero() || tokio::time::timeout(left, notified).await.is_err() {
                break;
            }
        }
        let mut found = Vec::with_capacity(ids.len());
        for id in ids {
            let profile = match self.state().entries.get(&(site.to_owned(), id.clone())) {
                Some(Entry::Known { profile, .. }) => profile.clone(),
                _ => None,
            };
            // A user the site knows can be written to before its first sign-in.
            let username = if profile.is_some() {
                self.sites.site_user(site, id).await.ok().map(|(username, _)| username)
            } else {
                site_username(site, id).ok()
            };
            if let Some(username) = username {
                found.push(SiteUser { user_id: id.clone(), username, profile });
            }
        }
        found
    }
}

/// The site's answer: an array of `{user_id, name, …}`, by id (ids may be numbers or strings).
fn parse_answer(body: &[u8]) -> Result<HashMap<String, Value>, String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| format!("the site's answer is not JSON: {e}"))?;
    let Value::Array(items) = value else {
        return Err("the site's answer is not a JSON array of users".into());
    };
    let mut users = HashMap::new();
    for item in items {
        let id = match item.get("user_id") {
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            _ => continue,
        };
        if item.get("name").and_then(Value::as_str).is_some() {
            users.insert(id, item);
        }
    }
    Ok(users)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_take_ids_as_numbers_or_strings_and_skip_what_has_no_name() {
        let body = br#"[{"user_id":6,"name":"John","avatar_url":false},{"user_id":"P11-A","name":"P"},{"user_id":7},{"name":"x"}]"#;
        let users = parse_answer(body).unwrap();
        assert_eq!(users.len(), 2);
        assert_eq!(users["6"]["name"], "John");
        assert_eq!(users["P11-A"]["name"], "P");
        assert!(parse_answer(br#"{"code":401}"#).unwrap_err().contains("array"));
        assert!(parse_answer(b"<html>").unwrap_err().contains("not JSON"));
    }
}
