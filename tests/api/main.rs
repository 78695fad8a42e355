//! Black-box tests: the real server, real sockets (HTTP, SSE, websocket), one binary. Its
//! servers store in SQLite; `tests/api_postgres.rs` runs a chosen part of it on PostgreSQL.

/// Whether the servers of this suite store in PostgreSQL (see `helpers::store_env`).
pub const ON_POSTGRES: bool = false;

mod admin;
mod apps;
mod bench;
mod browser;
mod chat;
mod cli;
mod contacts;
mod delivery;
mod fastpath;
mod groups;
mod helpers;
mod interop;
mod layers;
mod limits;
mod live;
mod ozeki;
mod ozeki_client;
mod profile;
mod restart;
mod rooms;
mod sasl;
mod sites;
mod upgrade;
mod xmpp;
mod xmpp_archive;
mod xmpp_tcp;
