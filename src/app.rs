//! Start-up: from a [`Config`] to a running server.
//!
//! [`Application::build`] opens the store, makes sure the admin account and the token key
//! exist, starts the router, binds the listener (port 0 works: tests use it) and returns
//! the server ready to run. `main` and the black-box tests both start the server this way.

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;

use actix::Actor;
use actix_http::HttpService;
use actix_service::map_config;
use actix_web::dev::{AppConfig, Server, ServerHandle};
use actix_web::middleware::from_fn;
use actix_web::{web, App};
use switchboard_actors::accounts::Accounts;
use switchboard_actors::apps::Apps;
use switchboard_actors::archive::Archive;
use switchboard_actors::cluster::duties::Duties;
use switchboard_actors::conversations::{ChangeFeed, Conversations};
use switchboard_actors::fastpath::registry::Fastpath;
use switchboard_actors::fastpath::FastpathOptions;
use switchboard_actors::groups::{GroupIndex, Groups};
use switchboard_actors::mailbox::{Mailbox, OutboxClock};
use switchboard_actors::model::apps::RetryPolicy;
use switchboard_actors::muc::conference::Conference;
use switchboard_actors::muc::MucOptions;
use switchboard_actors::password::start_password_workers;
use switchboard_actors::router::CoreConfig;
use switchboard_actors::sites::Sites;
use switchboard_actors::storage::Storage;
use switchboard_actors::webhooks::{WebhookOptions, WebhookStats, Webhooks};
use switchboard_actors::Hosts;
use switchboard_actors::{Router, RouterStats, Store, StoreError, StoreOptions};

use crate::apps::webhook::HttpWebhooks;
use crate::auth::Authenticator;
use crate::config::{secs, Config};
use crate::secrets;
use crate::sites::users_info::{UsersInfo, UsersInfoOptions};
use crate::state::AppState;
use crate::xmpp::tls::TlsSetup;
use crate::{http, routes, sites};

/// Why the server could not be built; each says what it was doing.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: String, source: std::io::Error },
    #[error("cannot create data dir {}: {source}", path.display())]
    DataDir { path: PathBuf, source: std::io::Error },
    #[error("cannot open the database {database}: {source}")]
    Database { database: String, source: StoreError },
    #[error("cannot load the {what} from the database: {source}")]
    Load { what: &'static str, source: StoreError },
    /// The admin account or the token key could not be made or read.
    #[error("{0}")]
    Secrets(String),
    /// The XMPP listener's certificate could not be read or made.
    #[error("{0}")]
    Tls(String),
    #[error("cannot start the HTTP server: {0}")]
    Server(std::io::Error),
    #[error("cannot join the cluster: {0}")]
    Cluster(#[from] crate::cluster::LinkError),
}

/// A built, not yet running, server.
pub struct Application {
    port: u16,
    http_api_port: Option<u16>,
    xmpp_port: Option<u16>,
    server: Server,
    /// Set when this start generated the admin password (first start without one).
    pub generated_admin_password: Option<PathBuf>,
    /// Set when this start generated the XMPP listener's self-signed certificate.
    pub generated_xmpp_cert: Option<PathBuf>,
}

/// Connections the kernel may hold for a listener before they are accepted (capped by
/// `net.core.somaxconn`): a reconnect storm of thousands of clients must not have its SYNs
/// dropped and retried seconds later, as with the usual 128.
const LISTEN_BACKLOG: i32 = 4096;

/// A listening socket on `addr` (`host:port`; port 0 picks one).
fn listen(addr: &str) -> Result<TcpListener, BuildError> {
    let failed = |source| BuildError::Listen { addr: addr.to_owned(), source };
    let resolved = std::net::ToSocketAddrs::to_socket_addrs(addr)
        .map_err(failed)?
        .next()
        .ok_or_else(|| failed(std::io::Error::new(std::io::ErrorKind::InvalidInput, "no address")))?;
    let socket =
        socket2::Socket::new(socket2::Domain::for_address(resolved), socket2::Type::STREAM, None).map_err(failed)?;
    #[cfg(unix)]
    socket.set_reuse_address(true).map_err(failed)?;
    socket.bind(&resolved.into()).map_err(failed)?;
    socket.listen(LISTEN_BACKLOG).map_err(failed)?;
    Ok(socket.into())
}

impl Application {
    /// Builds the server. Must run inside an actix system (`#[actix_web::main]`,
    /// `#[actix_web::test]`).
    pub async fn build(config: Config) -> Result<Application, BuildError> {
        // The address first: a server that cannot listen stops before anything started.
        let listener = listen(&config.server.bind)?;
        let http_api_bind = config.ozeki.http_api_bind.trim().to_owned();
        let http_api_listener = match http_api_bind.as_str() {
            "" => None,
            addr => Some(listen(addr)?),
        };
        let c2s_bind = config.xmpp.c2s_bind.trim().to_owned();
        let c2s_listener = match c2s_bind.as_str() {
            "" => None,
            addr => Some(listen(addr)?),
        };
        let data_dir = &config.server.data_dir;
        std::fs::create_dir_all(data_dir).map_err(|source| BuildError::DataDir { path: data_dir.clone(), source })?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(data_dir, std::fs::Permissions::from_mode(0o700));
        }
        let store_options = StoreOptions {
            readers: config.store.readers,
            max_batch: config.store.max_batch,
            synchronous: config.store.synchronous.clone(),
        };
        let store = match config.store.backend.as_str() {
            "postgres" => Store::open_postgres(config.store.url.trim(), store_options),
            _ => Store::open(&config.database_path(), store_options),
        }
        .map_err(|source| BuildError::Database { database: config.database_name(), source })?;
        let commit_stats = store.stats.clone();
        let storage = Storage::on(store);
        let passwords = start_password_workers(config.auth.hash_threads);
        let jwt_secret = secrets::jwt_secret(&config).map_err(BuildError::Secrets)?;
        let xmpp_tls = match &c2s_listener {
            Some(_) => Some(Arc::new(TlsSetup::load(&config).map_err(BuildError::Tls)?)),
            None => None,
        };
        let load = |what| move |source| BuildError::Load { what, source };
        let accounts = storage.accounts.account_names().await.map_err(load("accounts"))?;
        let blocks = storage.rosters.all_blocks().await.map_err(load("blocklists"))?;
        let rooms = storage.rooms.all_rooms().await.map_err(load("rooms"))?;
        let workgroups = storage.workgroups.all_workgroups().await.map_err(load("workgroups"))?;
        let muc = MucOptions {
            domain: config.server.domain.clone(),
            service: config.muc.service.clone(),
            history: config.muc.history,
            users_can_create: config.muc.users_can_create,
            extra_services: Default::default(),
        };
        let group_index = GroupIndex::load(&storage).await.map_err(load("groups"))?;
        muc.extra_services.add(storage.rooms.muc_services().await.map_err(load("chat services"))?);
        let conference = Conference::new(muc.clone(), storage.rooms.clone(), rooms)
            .with_apps(storage.apps.clone())
            .with_groups(group_index.clone());
        let conference = match config.cluster.enabled() {
            true => conference.clustered(
                config.cluster_node(),
                storage.leases.clone(),
                secs(config.cluster.lease_secs),
                secs(config.cluster.heartbeat_secs),
            ),
            false => conference,
        }
        .start();

        let router_stats = Arc::new(RouterStats::default());
        let router = Router::new(
            CoreConfig {
                domain: config.server.domain.clone(),
                stream_idle_timeout: secs(config.streams.idle_timeout_secs),
                max_connections_per_user: config.limits.max_connections_per_user,
                roster_auto_accept: config.roster.auto_accept,
            },
            storage.clone(),
            conference.clone(),
            accounts,
            blocks,
            router_stats.clone(),
        )
        .start();
        let muc = Arc::new(muc);
        let fastpath_options = FastpathOptions {
            domain: config.server.domain.clone(),
            rejection_memory_ms: secs(config.fastpath.rejection_memory_secs).as_millis() as i64,
            visitor_backlog: config.fastpath.visitor_backlog,
            visitor_linger_ms: secs(config.fastpath.visitor_linger_secs).as_millis() as i64,
        };
        let fastpath = Fastpath::new(
            fastpath_options.clone(),
            muc.clone(),
            storage.workgroups.clone(),
            router.clone(),
            conference.clone(),
            workgroups,
        )
        .with_groups(group_index.clone());
        let fastpath = match config.cluster.enabled() {
            true => fastpath.clustered(
                config.cluster_node(),
                storage.leases.clone(),
                secs(config.cluster.lease_secs),
                secs(config.cluster.heartbeat_secs),
            ),
            false => fastpath,
        }
        .start();
        // In a cluster, the router joins its peers before any account changes.
        let cluster = match config.cluster.enabled() {
            true => {
                let receivers = crate::cluster::Receivers {
                    router: router.clone(),
                    conference: conference.clone(),
                    fastpath: fastpath.clone(),
                };
                Some(crate::cluster::start(&config, receivers).await?)
            }
            false => None,
        };
        // Accounts change through the core, which keeps the router's directory in step: the
        // admin account is made (or its password set) once the router runs.
        let accounts = Accounts::new(&storage, router.clone());
        let generated_admin_password =
            secrets::ensure_admin(&accounts, &passwords, &config).await.map_err(BuildError::Secrets)?;
        if let Some(path) = &generated_admin_password {
            tracing::warn!(path = %path.display(), "generated the admin password; it is in this file (mode 0600)");
        }
        let groups = Groups::new(&storage, group_index, router.clone())
            .with_listeners(vec![conference.clone().recipient(), fastpath.clone().recipient()]);
        let mailbox = Mailbox::new(&storage, router.clone());
        let outbox_clock = OutboxClock::new(mailbox.clone(), secs(config.ozeki.outbox_tick_secs));
        // In a cluster, one node at a time sends each outbox: the one holding its lease.
        let outbox_clock = if cluster.is_some() { outbox_clock.off_duty() } else { outbox_clock }.start();
        let feed = ChangeFeed::new(&storage, router.clone()).start();
        let apps = Apps::new(&storage, router.clone(), conference.clone());
        apps.announce_all().await.map_err(load("apps"))?;
        apps.announce_rooms().await.map_err(load("apps' rooms"))?;
        let webhooks_http = HttpWebhooks {
            accounts: accounts.clone(),
            allow_private: config.apps.allow_private_destinations,
            timeout: secs(config.apps.webhook_timeout_secs),
        };
        let webhook_stats = Arc::new(WebhookStats::default());
        let webhook_options = WebhookOptions {
            policy: RetryPolicy {
                base_ms: secs(config.apps.retry_base_secs).as_millis() as i64,
                cap_ms: secs(config.apps.retry_cap_secs).as_millis() as i64,
                max_attempts: config.apps.max_attempts.max(1),
                max_age_ms: secs(config.apps.max_age_secs).as_millis() as i64,
            },
            per_app: config.apps.max_in_flight_per_app.max(1),
            tick: secs(config.apps.outbox_tick_secs),
        };
        let port = std::rc::Rc::new(webhooks_http.clone());
        let webhooks = Webhooks::new(&storage, router.clone(), port, webhook_options, webhook_stats.clone());
        let webhooks = if cluster.is_some() { webhooks.off_duty() } else { webhooks }.start();
        if cluster.is_some() {
            Duties::new(
                config.cluster_node(),
                storage.leases.clone(),
                secs(config.cluster.lease_secs),
                secs(config.cluster.heartbeat_secs),
            )
            .with("apps-webhook-outbox", webhooks.clone().recipient())
            .with("ozeki-scheduled-outbox", outbox_clock.recipient())
            .start();
        }
        let hosts = Arc::new(Hosts::new(&config.server.domain, &config.muc.service));
        let sites = Sites::load(&storage, accounts.clone()).await.map_err(load("sites"))?;
        let users_info = UsersInfo::new(
            sites.clone(),
            accounts.clone(),
            hosts.names.clone(),
            UsersInfoOptions::from_config(&config.sites),
        );
        let auth = Arc::new(
            Authenticator::new(accounts.clone(), passwords.clone(), &config.auth, &jwt_secret)
                .with_api_secret(&config.admin.api_secret)
                .with_sites(sites.clone(), users_info.clone()),
        );

        let local_addr = listener.local_addr().map_err(BuildError::Server)?;
        let port = local_addr.port();
        let workers = if config.server.workers == 0 {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        } else {
            config.server.workers
        };
        let max_body = config.limits.max_body_bytes;
        let state = web::Data::new(AppState {
            hosts,
            config: Arc::new(config),
            router,
            conference,
            muc,
            fastpath,
            fastpath_options: Arc::new(fastpath_options),
            router_stats,
            commit_stats,
            accounts,
            groups,
            archive: Archive::new(&storage),
            mailbox,
            conversations: Conversations::new(&storage),
            feed,
            apps,
            webhooks,
            webhook_stats,
            webhooks_http,
            sites,
            users_info,
            auth,
            passwords,
            cluster,
        });
        let auth_data = web::Data::from(state.auth.clone());
        let router_data = web::Data::new(state.router.clone());
        let api_state = state.clone();
        let xmpp_state = state.clone();
        let make_app = move || {
            App::new()
                .app_data(state.clone())
                // What the extractors need (`Caller`, `CallerStation`), without the whole state.
                .app_data(auth_data.clone())
                .app_data(router_data.clone())
                .app_data(web::JsonConfig::default().limit(max_body).error_handler(http::json_error))
                .app_data(web::PayloadConfig::default().limit(max_body))
                .app_data(web::QueryConfig::default().error_handler(http::query_error))
                .wrap(from_fn(sites::origins::check))
                .configure(routes::routes)
                .default_service(web::to(routes::fallback))
        };
        // actix-web's HttpServer, plus the upgrade hook: websockets leave the HTTP
        // dispatcher and its buffers (see `upgrade`).
        let mut server = Server::build()
            .workers(workers)
            .listen("switchboard-http", listener, move || {
                HttpService::build()
                    .local_addr(local_addr)
                    // Chat frames are small and latency matters: no Nagle delay.
                    .tcp_nodelay(true)
                    .upgrade(crate::upgrade::service_factory(make_app.clone()))
                    .finish(map_config(make_app(), |_| AppConfig::default()))
                    .tcp()
            })
            .map_err(BuildError::Server)?;
        let mut http_api_port = None;
        if let Some(api_listener) = http_api_listener {
            let api_addr = api_listener.local_addr().map_err(BuildError::Server)?;
            http_api_port = Some(api_addr.port());
            tracing::info!(addr = %api_addr, "serving the Ozeki 10 HTTP API on a second listener");
            // Only the HTTP API: the rest of the server is not reachable on this port.
            let make_api_app = move || {
                App::new()
                    .app_data(api_state.clone())
                    .configure(routes::http_api_routes)
                    .default_service(web::to(http::no_route))
            };
            server = server
                .listen("switchboard-ozeki-http-api", api_listener, move || {
                    HttpService::build()
                        .local_addr(api_addr)
                        .finish(map_config(make_api_app(), |_| AppConfig::default()))
                        .tcp()
                })
                .map_err(BuildError::Server)?;
        }
        let mut xmpp_port = None;
        let generated_xmpp_cert = xmpp_tls.as_ref().filter(|tls| tls.generated).map(|tls| tls.cert_path.clone());
        if let Some(c2s_listener) = c2s_listener {
            let c2s_addr = c2s_listener.local_addr().map_err(BuildError::Server)?;
            xmpp_port = Some(c2s_addr.port());
            if let Some(tls) = &xmpp_tls {
                let how = if tls.generated { "generated a self-signed certificate" } else { "certificate" };
                tracing::info!(addr = %c2s_addr, cert = %tls.cert_path.display(), "serving XMPP clients over TCP; {how}");
            }
            let resumable = Arc::new(crate::xmpp::tcp::Resumable::default());
            server = server
                .listen("switchboard-xmpp-c2s", c2s_listener, move || {
                    crate::xmpp::tcp::service(xmpp_state.clone(), xmpp_tls.clone(), resumable.clone())
                })
                .map_err(BuildError::Server)?;
        }
        let server = server.run();
        Ok(Application { port, http_api_port, xmpp_port, server, generated_admin_password, generated_xmpp_cert })
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of the Ozeki HTTP API's own listener, when `ozeki.http_api_bind` is set.
    pub fn http_api_port(&self) -> Option<u16> {
        self.http_api_port
    }

    /// The port of the XMPP client listener, when `xmpp.c2s_bind` is set.
    pub fn xmpp_port(&self) -> Option<u16> {
        self.xmpp_port
    }

    /// A handle to stop the server.
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until stopped (SIGINT/SIGTERM, or [`ServerHandle::stop`]).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}
