//! What every HTTP handler shares: the router's, the conference's and Fastpath's addresses, the store,
//! the authenticator and the configuration.

use std::sync::Arc;

use actix::Addr;
use switchboard_actors::fastpath::registry::Fastpath;
use switchboard_actors::fastpath::FastpathOptions;
use switchboard_actors::muc::conference::Conference;
use switchboard_actors::muc::MucOptions;
use switchboard_actors::password::PasswordWorker;
use switchboard_actors::{Hosts, Router, RouterStats, Store};

use crate::auth::Authenticator;
use crate::config::Config;

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
    pub store: Store,
    pub auth: Arc<Authenticator>,
    pub passwords: Addr<PasswordWorker>,
}

impl AppState {
    pub fn domain(&self) -> &str {
        &self.config.server.domain
    }
}
