//! What every HTTP handler shares: the router's, the conference's and Fastpath's addresses, the
//! accounts, archive and mailbox services, the authenticator and the configuration. Doors reach data
//! only through these.

use std::sync::Arc;

use actix::Addr;
use switchboard_actors::accounts::Accounts;
use switchboard_actors::apps::Apps;
use switchboard_actors::archive::Archive;
use switchboard_actors::conversations::{ChangeFeed, Conversations};
use switchboard_actors::fastpath::registry::Fastpath;
use switchboard_actors::fastpath::FastpathOptions;
use switchboard_actors::groups::Groups;
use switchboard_actors::mailbox::Mailbox;
use switchboard_actors::muc::conference::Conference;
use switchboard_actors::muc::MucOptions;
use switchboard_actors::password::PasswordWorker;
use switchboard_actors::sites::Sites;
use switchboard_actors::store::StoreStats;
use switchboard_actors::webhooks::{WebhookStats, Webhooks};
use switchboard_actors::{Hosts, Router, RouterStats};

use crate::apps::webhook::HttpWebhooks;
use crate::auth::Authenticator;
use crate::config::Config;
use crate::sites::users_info::UsersInfo;

pub struct AppState {
    pub config: Arc<Config>,
    pub router: Addr<Router>,
    pub conference: Addr<Conference>,
    pub muc: Arc<MucOptions>,
    /// The hosts every door renders addresses with.
    pub hosts: Arc<Hosts>,
    pub fastpath: Addr<Fastpath>,
    pub fastpath_options: Arc<FastpathOptions>,
    /// Counters the router keeps (messages routed and stored, live users and stations).
    pub router_stats: Arc<RouterStats>,
    /// The store's own counters (batches, writes, commit time), for `/metrics`.
    pub commit_stats: Arc<StoreStats>,
    /// Accounts: every read and change of one goes through the core.
    pub accounts: Accounts,
    /// User groups (shared rosters, group affiliations, agents by group).
    pub groups: Groups,
    /// History, transcripts, workgroup chats.
    pub archive: Archive,
    /// HTTP API users' sending and folders.
    pub mailbox: Mailbox,
    /// Ozeki clients' station keys, conversation settings and reports.
    pub conversations: Conversations,
    /// What Ozeki clients poll for.
    pub feed: Addr<ChangeFeed>,
    /// External apps, their chats and deliveries.
    pub apps: Apps,
    /// The webhook delivery worker, and its counters.
    pub webhooks: Addr<Webhooks>,
    pub webhook_stats: Arc<WebhookStats>,
    /// Outbound webhook requests (the verification of a new URL).
    pub webhooks_http: HttpWebhooks,
    /// Web sites whose users sign in with the site's tokens, and what their users are called.
    pub sites: Sites,
    pub users_info: Arc<UsersInfo>,
    pub auth: Arc<Authenticator>,
    pub passwords: Addr<PasswordWorker>,
    /// The cluster link's state, when this node is one of a cluster.
    pub cluster: Option<Arc<crate::cluster::ClusterStatus>>,
}

impl AppState {
    pub fn domain(&self) -> &str {
        &self.config.server.domain
    }
}
