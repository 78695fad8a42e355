//! The router: the registry of accounts, online users, login streams and stations, and the
//! first hop of every message.
//!
//! Doors send it `Login`, `Attach`, `Submit` and friends; it answers from its own tables
//! (never touching SQLite itself) and hands per-user work to each user's session. A
//! submitted message is handed to the store; when its transaction commits, the store's
//! writer thread sends `MessageCommitted` back here, in commit order, and the router passes
//! it to the recipient's session for delivery.
//!
//! - [`directory`]: `Directory`, accounts and blocklists (plain data, unit-tested).
//! - [`stations`]: `StationTable`, online users, stations, login streams and connections
//!   (plain data, unit-tested): the one record of which connection belongs where.
//! - [`hub`]: the `Router` actor over both tables, and the helpers its handlers share.
//! - [`streams`], [`messages`], [`presence`], [`roster`], [`admin`]: the handlers, by
//!   concern.
//! - [`cluster`]: joining a cluster, peer leases, and what peers relay.

pub mod admin;
pub mod cluster;
pub mod directory;
pub mod hub;
pub mod messages;
pub mod presence;
pub mod roster;
pub mod stations;
pub mod streams;

#[cfg(test)]
mod tests;

pub use admin::{AppKnown, AttachAppOutbox, Kick, ListSessions, TakeCensus, UserAdded, UserRemoved};
pub use cluster::{ClusterView, JoinCluster, LinkRestored, ViewCluster};
pub use hub::{ConversationMoved, CoreConfig, DeliveriesQueued, Router, RouterStats, UserStatus};
pub use messages::{
    Broadcast, DeliverToUser, MessageCommitted, SendChatState, SendDisplayed, Submit, SubmitAll, SubmitFromStream,
    WatchConversations,
};
pub use presence::{Blocklist, PresenceOf, SetBlock, UnwatchUser, WatchUser};
pub use roster::{ChangeRoster, RostersStale};
pub use stations::{Census, SessionInfo};
pub use streams::{Attach, Attached, Detach, Login, Logoff, ResolveStream, StreamInfo};

pub use crate::route_error::RouteError;
