//! What every HTTP handler shares: the router's and the conference's addresses, the store,
//! the authenticator and the configuration.

use std::sync::Arc;

use actix::Addr;
use switchboard_actors::muc::conference::Conference;
use switchboard_actors::muc::MucOptions;
use switchboard_actors::password::PasswordWorker;
use switchboard_actors::{Router, Store};

use crate::auth::Authenticator;
use crate::config::Config;

pub struct AppState {
    pub config: Arc<Config>,
    pub router: Addr<Router>,
    pub conference: Addr<Conference>,
    pub muc: Arc<MucOptions>,
    pub store: Store,
    pub auth: Arc<Authenticator>,
    pub passwords: Addr<PasswordWorker>,
}

impl AppState {
    pub fn domain(&self) -> &str {
        &self.config.server.domain
    }
}
