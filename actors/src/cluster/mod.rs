//! Several nodes of one domain: what a node's router tells the others, and what it knows of
//! them.
//!
//! Nodes share the database and a message bus (NATS, run by the server crate's cluster
//! link). Each node's router keeps its own users' stations, as on one machine, and tells its
//! peers which users it holds; what is for a user held elsewhere (a committed message, a
//! chat state, a presence, a roster push, a kick) goes to the nodes that hold it, once per
//! node. Local delivery never leaves the router.
//!
//! - [`protocol`]: `Relay`, the typed messages between routers, and the link's actor
//!   messages (`ToPeers`, `AskPeers`, `FromPeer`). The link encodes them; nothing here
//!   knows the wire format.
//! - [`peers`]: `Peers`, the directory of live peers (heartbeats and leases) and of the
//!   users each one holds (plain data, unit-tested), and `ClusterMembership`, a router's
//!   place in its cluster.
//! - [`duties`]: `Duties`, the work one node at a time does, under leases in the store.

pub mod duties;
pub mod peers;
pub mod protocol;

pub use peers::{ClusterMembership, Heard, Peers};
pub use protocol::{AskPeers, FromPeer, Holding, Relay, Targets, ToPeers};
