//! The black-box suites that exercise the store, run again with every server on
//! PostgreSQL (a fresh database per server on the tests' own PostgreSQL, see
//! `switchboard_actors::testing`): the same behaviour on both backends. The suites that
//! read the SQLite file itself, drive outside clients or measure stay in `tests/api`.

/// Whether the servers of this suite store in PostgreSQL (see `helpers::store_env`).
pub const ON_POSTGRES: bool = true;

#[path = "api/admin.rs"]
mod admin;
#[path = "api/apps.rs"]
mod apps;
#[path = "api/chat.rs"]
mod chat;
#[path = "api/cluster.rs"]
mod cluster;
#[path = "api/contacts.rs"]
mod contacts;
#[path = "api/delivery.rs"]
mod delivery;
#[path = "api/fastpath.rs"]
mod fastpath;
#[path = "api/groups.rs"]
mod groups;
// Shared with the whole suite, which uses all of it.
#[path = "api/helpers.rs"]
#[allow(dead_code)]
mod helpers;
#[path = "api/ozeki.rs"]
mod ozeki;
#[path = "api/restart.rs"]
mod restart;
#[path = "api/rooms.rs"]
mod rooms;
#[path = "api/sites.rs"]
mod sites;
#[path = "api/xmpp.rs"]
mod xmpp;
#[path = "api/xmpp_archive.rs"]
mod xmpp_archive;
