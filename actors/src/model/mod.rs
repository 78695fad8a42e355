//! The one model under every door: addresses, messages, records and typed events.
//!
//! Everything here is a plain value. The store persists the records, the actors apply the
//! rules to them and route the events, and each door renders them in its own wire format;
//! nothing in this module knows one (DESIGN.md §3).
//!
//! - [`address`]: `Address` (a user's station, a room occupant, a workgroup visitor) and the
//!   `Hosts` that render it.
//! - [`message`]: `NewMessage`, `StoredMessage`, room messages, chat states.
//! - [`records`]: presence values, roster rows, rooms, workgroups and chats.
//! - [`ozeki`]: Ozeki's md5 user and conversation ids.
//! - [`apps`]: external apps, their chats and webhook deliveries.
//! - [`groups`]: user groups (shared rosters, group affiliations).
//! - [`scram`]: SCRAM credentials per mechanism, as the store keeps them.
//! - [`names`]: display names and avatars beside addresses (site users).
//! - [`sites`]: web sites that sign their users in with tokens, and site users' names.
//! - [`mailbox`]: an HTTP API user's folders and the messages in them.
//! - [`event`]: `Event` (a `Payload` with the doors' cached renderings) and `Push`.

pub mod address;
pub mod apps;
pub mod event;
pub mod groups;
pub mod mailbox;
pub mod message;
pub mod names;
pub mod ozeki;
pub mod records;
pub mod scram;
pub mod sites;

pub use address::{Address, Hosts};
pub use event::{Condition, Event, Payload, Push, RenderSlot};
pub use message::{ChatState, MessageKind, NewMessage, NewRoomMessage, RoomMessage, StoredMessage};
