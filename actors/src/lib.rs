//! Switchboard's realtime core: the actors, the stanza/event model and the store.
//!
//! Map:
//! - [`jid`]: addresses (`Username`, `Jid`), parsed once at the doors.
//! - [`event`]: the one model of what travels (`NewMessage`, `StoredMessage`) and its
//!   rendering, once per event, into [`event::Event`]; `Push` is what connections receive.
//! - [`store`]: SQLite behind one interface (`Store`): reader `SyncArbiter`, group-commit
//!   writer.
//! - [`router`]: `Router`, the registry of users, streams and stations and the first hop.
//! - [`user_session`]: `UserSession`, one per online user: delivery and offline flush.
//! - [`roster`], [`presence`]: contacts and the RFC 6121 subscription rules (plain code),
//!   show values, a user's visible presence and its events.
//! - [`fastpath`]: the workgroup state machine (queue, offers, revokes).
//! - [`muc`]: `MucRoom` (one per room) and the `Conference` registry.
//! - [`station`]: `Station`, one per station: fan-out to its live connections.
//! - [`password`], [`random`], [`clock`]: argon2 hashing, secrets and ids, timestamps.
//!
//! This crate never depends on actix-web: the doors live in the `switchboard` crate.

pub mod clock;
pub mod event;
pub mod fastpath;
pub mod jid;
pub mod muc;
pub mod password;
pub mod presence;
pub mod random;
pub mod roster;
pub mod router;
pub mod station;
pub mod store;
pub mod user_session;

#[cfg(test)]
mod test_support;

pub use event::{ChatState, Event, MessageKind, NewMessage, Push, StoredMessage};
pub use jid::{Jid, Username};
pub use router::{CoreConfig, RouteError, Router, RouterStats};
pub use store::{Store, StoreError, StoreOptions};
