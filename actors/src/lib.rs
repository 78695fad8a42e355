//! Switchboard's realtime core: the actors, the stanza/event model and the store.
//!
//! Map:
//! - [`jid`]: addresses (`Username`, `Jid`), parsed once at the doors.
//! - [`model`]: the one model under every door: typed addresses, messages, records and
//!   events (`Event` carries a `Payload`; each door renders it, once per event); `Push` is
//!   what connections receive.
//! - [`storage`]: the storage interfaces per domain (accounts, messages, rosters, rooms,
//!   workgroups) the actors depend on, and `StoreError`.
//! - [`store`]: SQLite behind those interfaces (`Store`): reader `SyncArbiter`, group-commit
//!   writer; `store::memory` for tests.
//! - [`router`]: `Router`, the registry of users, streams and stations and the first hop:
//!   its tables (`Directory`, `StationTable`) as plain data, its handlers by concern.
//! - [`cluster`]: several nodes of one domain: the typed relays between their routers and
//!   the directory of live peers and the users they hold.
//! - [`route_error`]: `RouteError`, the router's and sessions' refusals with their
//!   RFC 6120 conditions.
//! - [`user_session`]: `UserSession`, one per online user: delivery and offline flush.
//! - [`roster`], [`presence`]: contacts and the RFC 6121 subscription rules (plain code),
//!   show values, a user's visible presence and its events.
//! - [`fastpath`]: the workgroup state machine (queue, offers, revokes).
//! - [`muc`]: `MucRoom` (one per room) and the `Conference` registry.
//! - [`station`]: `Station`, one per station: fan-out to its live connections.
//! - [`accounts`], [`archive`]: the services the doors read and change data through
//!   (accounts with the directory kept in step; history, transcripts, workgroup chats).
//! - [`conversations`]: the change feed Ozeki clients poll (conversations with new
//!   messages, contacts whose availability changed), kept from the core's events.
//! - [`apps`], [`webhooks`]: external apps (created with their accounts) and the worker
//!   that delivers what users send them to their webhooks from the durable outbox.
//! - [`sites`]: web sites whose users sign in with the site's tokens, and their accounts.
//! - [`mailbox`]: HTTP API users' sending and folders, and the clock that sends what
//!   waits in their outboxes.
//! - [`password`], [`scram`], [`random`], [`clock`]: argon2 hashing, SCRAM credentials and
//!   proofs, secrets and ids, timestamps.
//!
//! This crate never depends on actix-web: the doors live in the `switchboard` crate.

pub mod accounts;
pub mod apps;
pub mod archive;
pub mod clock;
pub mod cluster;
pub mod conversations;
pub mod fastpath;
pub mod groups;
pub mod jid;
pub mod mailbox;
pub mod model;
pub mod muc;
pub mod password;
pub mod presence;
pub mod random;
pub mod roster;
pub mod route_error;
pub mod router;
pub mod scram;
pub mod sites;
pub mod station;
pub mod storage;
pub mod store;
pub mod user_session;
pub mod webhooks;

#[cfg(test)]
mod test_support;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use jid::{Jid, Username};
pub use model::{Address, ChatState, Event, Hosts, MessageKind, NewMessage, Payload, Push, StoredMessage};
pub use router::{CoreConfig, RouteError, Router, RouterStats};
pub use store::{Store, StoreError, StoreOptions};
