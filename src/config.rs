//! Configuration: one serde struct with defaults, loaded from an optional TOML file,
//! then environment variables, then command-line flags (each overriding the one before).
//!
//! Every key `key` of section `[section]` can be set from the environment as
//! `SWITCHBOARD_<SECTION>_<KEY>` (upper case), e.g. `SWITCHBOARD_SERVER_BIND`,
//! `SWITCHBOARD_ADMIN_PASSWORD`. `config/default.toml` documents every key; a test checks
//! that it matches [`Config::default`]. Unknown keys are errors, so a typo never passes, in a
//! file or in a variable; keys that are off by default (absent from the defaults) are set
//! from the environment too.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Prefix of every environment override.
pub const ENV_PREFIX: &str = "SWITCHBOARD";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub admin: AdminConfig,
    pub auth: AuthConfig,
    pub limits: LimitsConfig,
    pub streams: StreamsConfig,
    pub sse: SseConfig,
    pub websocket: WebsocketConfig,
    pub xmpp: XmppConfig,
    pub store: StoreConfig,
    pub history: HistoryConfig,
    pub roster: RosterConfig,
    pub muc: MucConfig,
    pub fastpath: FastpathConfig,
    pub ozeki: OzekiConfig,
    pub apps: AppsConfig,
    pub sites: SitesConfig,
    pub cluster: ClusterConfig,
    pub log: LogConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub bind: String,
    pub domain: String,
    pub data_dir: PathBuf,
    pub workers: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: "127.0.0.1:7070".into(),
            domain: "localhost".into(),
            data_dir: PathBuf::from("./data"),
            workers: 0,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    pub password: String,
    /// The REST API plugin's "secret key": `Authorization: <secret>` acts as the admin.
    /// Empty: off.
    pub api_secret: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    pub jwt_secret: String,
    pub token_ttl_secs: f64,
    pub credential_cache_secs: f64,
    pub max_failed_logins: u32,
    pub failed_login_window_secs: f64,
    pub hash_threads: usize,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            jwt_secret: String::new(),
            token_ttl_secs: 3600.0,
            credential_cache_secs: 300.0,
            max_failed_logins: 10,
            failed_login_window_secs: 300.0,
            hash_threads: 2,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    pub max_body_bytes: usize,
    pub max_message_chars: usize,
    pub max_connections_per_user: usize,
    pub outbox_bytes: usize,
    pub max_search_results: usize,
    pub max_property_chars: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_body_bytes: 64 * 1024,
            max_message_chars: 10_000,
            max_connections_per_user: 64,
            outbox_bytes: 1024 * 1024,
            max_search_results: 50,
            max_property_chars: 4000,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StreamsConfig {
    pub idle_timeout_secs: f64,
}

impl Default for StreamsConfig {
    fn default() -> Self {
        StreamsConfig { idle_timeout_secs: 1800.0 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SseConfig {
    pub heartbeat_secs: f64,
    pub replay_limit: usize,
}

impl Default for SseConfig {
    fn default() -> Self {
        SseConfig { heartbeat_secs: 10.0, replay_limit: 1000 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct WebsocketConfig {
    pub ping_secs: f64,
    pub timeout_secs: f64,
}

impl Default for WebsocketConfig {
    fn default() -> Self {
        WebsocketConfig { ping_secs: 30.0, timeout_secs: 90.0 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `sqlite` (the embedded default: `file` in the data directory) or `postgres` (`url`).
    pub backend: String,
    pub file: String,
    /// The PostgreSQL database, `postgres://user:password@host:port/name`.
    pub url: String,
    pub readers: usize,
    pub max_batch: usize,
    pub synchronous: String,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            backend: "sqlite".into(),
            file: "switchboard.db".into(),
            url: String::new(),
            readers: 2,
            max_batch: 1024,
            synchronous: "full".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HistoryConfig {
    pub default_limit: usize,
    pub max_limit: usize,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        HistoryConfig { default_limit: 100, max_limit: 1000 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RosterConfig {
    pub auto_accept: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MucConfig {
    pub service: String,
    pub history: usize,
    pub users_can_create: bool,
}

impl Default for MucConfig {
    fn default() -> Self {
        MucConfig { service: "conference".into(), history: 20, users_can_create: true }
    }
}

/// Fastpath workgroups: the defaults a new workgroup gets, and the visitors' limits.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FastpathConfig {
    pub offer_timeout_secs: f64,
    pub request_timeout_secs: f64,
    pub rejection_memory_secs: f64,
    pub max_chats: u32,
    pub visitor_linger_secs: f64,
    pub visitor_backlog: usize,
}

impl Default for FastpathConfig {
    fn default() -> Self {
        FastpathConfig {
            offer_timeout_secs: 20.0,
            request_timeout_secs: 240.0,
            rejection_memory_secs: 20.0,
            max_chats: 4,
            visitor_linger_secs: 60.0,
            visitor_backlog: 64,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct XmppConfig {
    /// The XMPP client listener (RFC 6120 over TCP, e.g. "0.0.0.0:5222"); empty: none.
    pub c2s_bind: String,
    /// PEM certificate chain and private key for STARTTLS; both empty: a self-signed pair
    /// is generated into `<data_dir>/tls/` on first start and reused.
    pub tls_cert: String,
    pub tls_key: String,
    /// Lets a client on a loopback address authenticate without STARTTLS.
    pub allow_plain_on_loopback: bool,
    /// A TCP client that sends nothing (not even a whitespace keepalive) for this long is
    /// closed with `connection-timeout`.
    pub timeout_secs: f64,
    /// How long a stream with XEP-0198 resumption waits for its client after the connection
    /// drops, keeping what arrives; then what was not acknowledged waits in the store.
    pub resume_secs: f64,
}

impl Default for XmppConfig {
    fn default() -> Self {
        XmppConfig {
            c2s_bind: String::new(),
            tls_cert: String::new(),
            tls_key: String::new(),
            allow_plain_on_loopback: false,
            timeout_secs: 600.0,
            resume_secs: 300.0,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OzekiConfig {
    /// A second listener serving only the Ozeki 10 HTTP API (`/api`); empty: none.
    pub http_api_bind: String,
    pub max_messages_per_request: usize,
    pub max_download: usize,
    pub outbox_tick_secs: f64,
}

impl Default for OzekiConfig {
    fn default() -> Self {
        OzekiConfig {
            http_api_bind: String::new(),
            max_messages_per_request: 100,
            max_download: 1000,
            outbox_tick_secs: 1.0,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AppsConfig {
    /// Let webhooks reach loopback and private addresses (off: refused).
    pub allow_private_destinations: bool,
    pub webhook_timeout_secs: f64,
    pub retry_base_secs: f64,
    pub retry_cap_secs: f64,
    pub max_attempts: u32,
    pub max_age_secs: f64,
    pub max_in_flight_per_app: usize,
    pub outbox_tick_secs: f64,
}

impl Default for AppsConfig {
    fn default() -> Self {
        AppsConfig {
            allow_private_destinations: false,
            webhook_timeout_secs: 10.0,
            retry_base_secs: 1.0,
            retry_cap_secs: 300.0,
            max_attempts: 10,
            max_age_secs: 86_400.0,
            max_in_flight_per_app: 8,
            outbox_tick_secs: 0.25,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SitesConfig {
    /// Let users-info URLs reach loopback and private addresses (off: refused).
    pub allow_private_destinations: bool,
    pub users_info_ttl_secs: f64,
    pub users_info_timeout_secs: f64,
    pub users_info_retry_secs: f64,
    pub users_info_batch: usize,
    pub users_info_batch_delay_secs: f64,
}

impl Default for SitesConfig {
    fn default() -> Self {
        SitesConfig {
            allow_private_destinations: false,
            users_info_ttl_secs: 600.0,
            users_info_timeout_secs: 5.0,
            users_info_retry_secs: 30.0,
            users_info_batch: 100,
            users_info_batch_delay_secs: 0.02,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// The NATS server nodes route through, `nats://host:port` (empty: one node, no cluster).
    pub nats_url: String,
    /// This node's name, unique in the cluster (empty: the host name).
    pub node: String,
    /// The cluster's name, the prefix of its NATS subjects, so that clusters may share a NATS
    /// server (empty: the domain).
    pub name: String,
    pub heartbeat_secs: f64,
    /// A peer not heard for this long is dead: its stations are gone.
    pub lease_secs: f64,
    /// How long a node waits for its peers' answers (the admin session list).
    pub ask_timeout_secs: f64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            nats_url: String::new(),
            node: String::new(),
            name: String::new(),
            heartbeat_secs: 1.0,
            lease_secs: 5.0,
            ask_timeout_secs: 2.0,
        }
    }
}

impl ClusterConfig {
    /// Whether this node is one of a cluster.
    pub fn enabled(&self) -> bool {
        !self.nats_url.trim().is_empty()
    }
}

/// A name that can be one NATS subject token: letters, digits, `-` and `_`.
fn subject_token(name: &str) -> bool {
    !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { level: "info".into() }
    }
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("environment variable {name}: {message}")]
    Env { name: String, message: String },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// Defaults, overridden by `file` (when given), then by `SWITCHBOARD_*` variables from
    /// `env`.
    pub fn load(file: Option<&Path>, env: impl Iterator<Item = (String, String)>) -> Result<Config, ConfigError> {
        let mut tree = toml::Value::try_from(Config::default()).expect("the default config serializes");
        let source = file.map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("<defaults>"));
        if let Some(path) = file {
            let text =
                std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
            let overrides: toml::Value = toml::from_str(&text)
                .map_err(|e| ConfigError::Parse { path: path.to_owned(), message: e.to_string() })?;
            merge(&mut tree, overrides);
        }
        let from_env = apply_env(&mut tree, env)?;
        let config: Config = tree.try_into().map_err(|e: toml::de::Error| {
            let message = e.to_string();
            // A key the environment added that the config does not have: name the variable.
            match from_env.into_iter().find(|(_, key)| message.contains(&format!("`{key}`"))) {
                Some((name, _)) => ConfigError::Env { name, message },
                None => ConfigError::Parse { path: source, message },
            }
        })?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let positive = [
            ("auth.token_ttl_secs", self.auth.token_ttl_secs),
            ("streams.idle_timeout_secs", self.streams.idle_timeout_secs),
            ("sse.heartbeat_secs", self.sse.heartbeat_secs),
            ("websocket.ping_secs", self.websocket.ping_secs),
            ("websocket.timeout_secs", self.websocket.timeout_secs),
            ("fastpath.offer_timeout_secs", self.fastpath.offer_timeout_secs),
            ("fastpath.request_timeout_secs", self.fastpath.request_timeout_secs),
            ("fastpath.rejection_memory_secs", self.fastpath.rejection_memory_secs),
            ("fastpath.visitor_linger_secs", self.fastpath.visitor_linger_secs),
        ];
        for (key, value) in positive {
            if !(value.is_finite() && value > 0.0) {
                return Err(ConfigError::Invalid(format!("{key} must be a positive number of seconds")));
            }
        }
        if self.fastpath.max_chats == 0 {
            return Err(ConfigError::Invalid("fastpath.max_chats must be at least 1".into()));
        }
        match (self.store.backend.as_str(), self.store.url.trim().is_empty()) {
            ("sqlite", _) | ("postgres", false) => {}
            ("postgres", true) => {
                return Err(ConfigError::Invalid(
                    "store.backend \"postgres\" needs store.url (postgres://user:password@host:port/name)".into(),
                ))
            }
            _ => return Err(ConfigError::Invalid("store.backend must be \"sqlite\" or \"postgres\"".into())),
        }
        if !matches!(self.store.synchronous.as_str(), "full" | "normal") {
            return Err(ConfigError::Invalid("store.synchronous must be \"full\" or \"normal\"".into()));
        }
        if self.server.domain.is_empty() || self.server.domain.contains(['@', '/']) {
            return Err(ConfigError::Invalid("server.domain must be a plain host name".into()));
        }
        if self.muc.service.is_empty() || !self.muc.service.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(ConfigError::Invalid(
                "muc.service must be a plain subdomain label, e.g. \"conference\"".into(),
            ));
        }
        if self.cluster.enabled() {
            if self.store.backend != "postgres" {
                return Err(ConfigError::Invalid(
                    "cluster.nats_url needs store.backend = \"postgres\": the nodes of a cluster share one database"
                        .into(),
                ));
            }
            if self.auth.jwt_secret.is_empty() {
                return Err(ConfigError::Invalid(
                    "cluster.nats_url needs auth.jwt_secret: every node signs and checks tokens with the same key"
                        .into(),
                ));
            }
            if !self.cluster.nats_url.trim().starts_with("nats://") {
                return Err(ConfigError::Invalid("cluster.nats_url must be nats://host:port".into()));
            }
            for (key, name) in [("cluster.node", self.cluster_node()), ("cluster.name", self.cluster_name())] {
                if !subject_token(&name) {
                    return Err(ConfigError::Invalid(format!(
                        "{key} '{name}' must be 1 to 64 letters, digits, '-' or '_'"
                    )));
                }
            }
            let (heartbeat, lease) = (self.cluster.heartbeat_secs, self.cluster.lease_secs);
            let ask = self.cluster.ask_timeout_secs;
            if !(heartbeat.is_finite() && heartbeat > 0.0 && lease.is_finite() && lease >= 2.0 * heartbeat) {
                return Err(ConfigError::Invalid(
                    "cluster.heartbeat_secs must be positive and cluster.lease_secs at least twice it".into(),
                ));
            }
            if !(ask.is_finite() && ask > 0.0) {
                return Err(ConfigError::Invalid(
                    "cluster.ask_timeout_secs must be a positive number of seconds".into(),
                ));
            }
        }
        if self.history.default_limit == 0 || self.history.default_limit > self.history.max_limit {
            return Err(ConfigError::Invalid("history.default_limit must be between 1 and history.max_limit".into()));
        }
        Ok(())
    }

    /// Where the SQLite database lives.
    /// The database, as logs and errors may name it: the SQLite file, or the PostgreSQL URL
    /// without its password.
    pub fn database_name(&self) -> String {
        match self.store.backend.as_str() {
            "postgres" => without_password(self.store.url.trim()),
            _ => self.database_path().display().to_string(),
        }
    }

    pub fn database_path(&self) -> PathBuf {
        self.server.data_dir.join(&self.store.file)
    }

    /// This node's name in its cluster: `cluster.node`, or the host name.
    pub fn cluster_node(&self) -> String {
        match self.cluster.node.trim() {
            "" => std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().replace('.', "-"))
                .unwrap_or_else(|_| "node".into()),
            node => node.to_owned(),
        }
    }

    /// The cluster's name: `cluster.name`, or the domain with `-` for its dots.
    pub fn cluster_name(&self) -> String {
        match self.cluster.name.trim() {
            "" => self.server.domain.replace('.', "-"),
            name => name.to_owned(),
        }
    }
}

/// Seconds (as configured) to a `Duration`.
pub fn secs(value: f64) -> Duration {
    Duration::from_secs_f64(value.max(0.0))
}

fn merge(base: &mut toml::Value, overrides: toml::Value) {
    match (base, overrides) {
        (toml::Value::Table(base), toml::Value::Table(overrides)) => {
            for (key, value) in overrides {
                match base.get_mut(&key) {
                    Some(existing) if existing.is_table() && value.is_table() => merge(existing, value),
                    _ => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, value) => *base = value,
    }
}

/// Applies `SWITCHBOARD_<SECTION>_<KEY>` variables: a key of the defaults is parsed as its
/// type; any other key of a known section (one that is off or empty by default, and so
/// absent from the defaults) is inserted as a string, for the typed config to accept or
/// refuse. Returns the variables inserted that way, by the key they name. A variable that
/// names no section is refused.
fn apply_env(
    tree: &mut toml::Value,
    env: impl Iterator<Item = (String, String)>,
) -> Result<Vec<(String, String)>, ConfigError> {
    let toml::Value::Table(sections) = tree else {
        return Ok(Vec::new());
    };
    let prefix = format!("{ENV_PREFIX}_");
    let mut vars: std::collections::BTreeMap<String, String> =
        env.filter(|(name, _)| name.starts_with(&prefix)).collect();
    for (section_name, section) in sections.iter_mut() {
        let toml::Value::Table(keys) = section else { continue };
        for (key, value) in keys.iter_mut() {
            let name = format!("{ENV_PREFIX}_{}_{}", section_name, key).to_uppercase();
            let Some(raw) = vars.remove(&name) else { continue };
            let bad =
                |what: &str| ConfigError::Env { name: name.clone(), message: format!("expected {what}, got {raw:?}") };
            *value = match value {
                toml::Value::String(_) => toml::Value::String(raw.clone()),
                toml::Value::Integer(_) => toml::Value::Integer(raw.trim().parse().map_err(|_| bad("an integer"))?),
                toml::Value::Float(_) => toml::Value::Float(raw.trim().parse().map_err(|_| bad("a number"))?),
                toml::Value::Boolean(_) => toml::Value::Boolean(raw.trim().parse().map_err(|_| bad("true or false"))?),
                _ => continue,
            };
        }
    }
    let mut inserted = Vec::new();
    for (name, raw) in vars {
        let rest = &name[prefix.len()..];
        let section =
            sections.iter().filter(|(_, value)| value.is_table()).map(|(section, _)| section.clone()).find(|section| {
                rest.len() > section.len() + 1 && rest.starts_with(&format!("{}_", section.to_uppercase()))
            });
        let Some(section) = section else {
            let known: Vec<&str> = sections.keys().map(String::as_str).collect();
            return Err(ConfigError::Env {
                name,
                message: format!("names no configuration key (the sections are {})", known.join(", ")),
            });
        };
        let key = rest[section.len() + 1..].to_lowercase();
        if let Some(toml::Value::Table(keys)) = sections.get_mut(&section) {
            keys.insert(key.clone(), toml::Value::String(raw));
        }
        inserted.push((name, key));
    }
    Ok(inserted)
}

/// A database URL with the password, if any, left out: `postgres://user:***@host/db`.
pub(crate) fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    match rest.rsplit_once('@') {
        Some((user_info, host)) => {
            let user = user_info.split(':').next().unwrap_or_default();
            let hidden = if user_info.contains(':') { ":***" } else { "" };
            format!("{scheme}://{user}{hidden}@{host}")
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_absent_from_the_defaults_can_still_be_set_from_the_environment() {
        // A section whose keys are all off by default serializes as an empty table.
        let mut tree: toml::Value = toml::from_str("[listeners]\n[server]\nbind = \"x\"").unwrap();
        let env = vec![
            ("SWITCHBOARD_LISTENERS_EXTRA_BIND".to_string(), "127.0.0.1:9509".to_string()),
            ("SWITCHBOARD_SERVER_BIND".to_string(), "y".to_string()),
        ];
        let inserted = apply_env(&mut tree, env.into_iter()).unwrap();
        assert_eq!(inserted, vec![("SWITCHBOARD_LISTENERS_EXTRA_BIND".to_string(), "extra_bind".to_string())]);
        assert_eq!(tree["listeners"]["extra_bind"].as_str(), Some("127.0.0.1:9509"));
        assert_eq!(tree["server"]["bind"].as_str(), Some("y"));
    }

    #[test]
    fn an_environment_variable_that_names_no_key_is_refused_by_name() {
        let typo = vec![("SWITCHBOARD_SERVER_BINDD".to_string(), "0.0.0.0:1".to_string())];
        let err = Config::load(None, typo.into_iter()).unwrap_err().to_string();
        assert!(err.contains("SWITCHBOARD_SERVER_BINDD") && err.contains("bindd"), "{err}");
        let nowhere = vec![("SWITCHBOARD_NOWHERE_KEY".to_string(), "1".to_string())];
        let err = Config::load(None, nowhere.into_iter()).unwrap_err().to_string();
        assert!(err.contains("SWITCHBOARD_NOWHERE_KEY") && err.contains("sections are"), "{err}");
        let unrelated = vec![("SWITCHBOARDING".to_string(), "1".to_string())];
        assert!(Config::load(None, unrelated.into_iter()).is_ok(), "not ours: no underscore after the prefix");
    }

    fn no_env() -> std::iter::Empty<(String, String)> {
        std::iter::empty()
    }

    #[test]
    fn the_shipped_default_file_matches_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/default.toml");
        let loaded = Config::load(Some(&path), no_env()).unwrap();
        assert_eq!(loaded, Config::default());
    }

    #[test]
    fn env_overrides_every_key_by_type() {
        let env = vec![
            ("SWITCHBOARD_SERVER_BIND".to_string(), "0.0.0.0:9".to_string()),
            ("SWITCHBOARD_ADMIN_PASSWORD".to_string(), "pw".to_string()),
            ("SWITCHBOARD_LIMITS_MAX_BODY_BYTES".to_string(), "12".to_string()),
            ("SWITCHBOARD_SSE_HEARTBEAT_SECS".to_string(), "0.5".to_string()),
            ("OTHER_THING".to_string(), "x".to_string()),
        ];
        let c = Config::load(None, env.into_iter()).unwrap();
        assert_eq!(c.server.bind, "0.0.0.0:9");
        assert_eq!(c.admin.password, "pw");
        assert_eq!(c.limits.max_body_bytes, 12);
        assert_eq!(c.sse.heartbeat_secs, 0.5);
    }

    #[test]
    fn bad_values_and_unknown_keys_are_errors() {
        let env = vec![("SWITCHBOARD_LIMITS_MAX_BODY_BYTES".to_string(), "lots".to_string())];
        let err = Config::load(None, env.into_iter()).unwrap_err().to_string();
        assert!(err.contains("SWITCHBOARD_LIMITS_MAX_BODY_BYTES"), "{err}");

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[server]\nbnid = \"x\"\n").unwrap();
        let err = Config::load(Some(&path), no_env()).unwrap_err().to_string();
        assert!(err.contains("bnid"), "{err}");

        std::fs::write(&path, "[store]\nsynchronous = \"sometimes\"\n").unwrap();
        assert!(Config::load(Some(&path), no_env()).is_err());

        std::fs::write(&path, "[store]\nbackend = \"postgres\"\n").unwrap();
        let err = Config::load(Some(&path), no_env()).unwrap_err().to_string();
        assert!(err.contains("store.url"), "{err}");
        std::fs::write(&path, "[store]\nbackend = \"mysql\"\n").unwrap();
        assert!(Config::load(Some(&path), no_env()).is_err());
    }

    #[test]
    fn the_store_url_is_named_without_its_password() {
        let env = [
            ("SWITCHBOARD_STORE_BACKEND", "postgres"),
            ("SWITCHBOARD_STORE_URL", "postgres://sb:s3cret@db.internal:5432/chat"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let config = Config::load(None, env.into_iter()).unwrap();
        assert_eq!(config.store.backend, "postgres");
        assert_eq!(config.database_name(), "postgres://sb:***@db.internal:5432/chat");
        assert_eq!(without_password("postgres://sb@db/chat"), "postgres://sb@db/chat");
    }

    #[test]
    fn a_cluster_node_needs_postgres_a_shared_token_key_and_names_that_are_subject_tokens() {
        let load = |pairs: &[(&str, &str)]| {
            let env = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>();
            Config::load(None, env.into_iter()).map_err(|e| e.to_string())
        };
        let nats = ("SWITCHBOARD_CLUSTER_NATS_URL", "nats://127.0.0.1:4222");
        let pg = [("SWITCHBOARD_STORE_BACKEND", "postgres"), ("SWITCHBOARD_STORE_URL", "postgres://sb@db/chat")];
        let key = ("SWITCHBOARD_AUTH_JWT_SECRET", "0123456789abcdef0123456789abcdef");
        let node = ("SWITCHBOARD_CLUSTER_NODE", "n1");
        assert!(load(&[nats]).unwrap_err().contains("store.backend"));
        assert!(load(&[nats, pg[0], pg[1]]).unwrap_err().contains("auth.jwt_secret"));
        let config = load(&[nats, pg[0], pg[1], key, node]).unwrap();
        assert!(config.cluster.enabled());
        assert_eq!((config.cluster_node(), config.cluster_name()), ("n1".to_owned(), "localhost".to_owned()));
        let err = load(&[nats, pg[0], pg[1], key, ("SWITCHBOARD_CLUSTER_NODE", "a.b")]).unwrap_err();
        assert!(err.contains("cluster.node 'a.b'"), "{err}");
        let err = load(&[nats, pg[0], pg[1], key, node, ("SWITCHBOARD_CLUSTER_LEASE_SECS", "1")]).unwrap_err();
        assert!(err.contains("lease_secs"), "{err}");
        assert!(load(&[("SWITCHBOARD_CLUSTER_NATS_URL", "http://x"), pg[0], pg[1], key, node]).is_err());
        assert!(!load(&[]).unwrap().cluster.enabled());
    }
}
