//! The storage interfaces the core depends on, one per domain (in the spirit of conduit's
//! `Data` traits): accounts, messages and their archive, HTTP users' mailboxes, rosters and
//! blocklists, rooms, workgroups. The SQLite [`Store`](crate::store::Store) implements them all; a cluster
//! implements them on PostgreSQL; tests use [`memory`](crate::store::memory).
//!
//! Every call returns a future that resolves after the work is done, and for a write
//! after its commit (acknowledge-after-commit). Writes that feed the live core take an
//! `after_commit` hook, which the store runs in commit order before the future resolves,
//! so that what is delivered is in the order it was committed.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::model::apps::{AppChat, AppRecord, ChatKind, ChatMessage, Delivery, DeliveryOutcome, DeliveryState};
use crate::model::groups::GroupRecord;
use crate::model::mailbox::{Folder, Mail, MailAction};
use crate::model::ozeki::{ConversationProps, ConversationReport, StationKey};
use crate::model::records::{
    AccountKind, ChatRecord, HistoryQuery, MucServiceRecord, NewUser, RoomHistoryQuery, RoomRecord, RosterItem,
    Transition, UserRecord, UserUpdate, WorkgroupRecord,
};
use crate::model::sites::SiteRecord;
use crate::model::{Condition, NewMessage, NewRoomMessage, RoomMessage, StoredMessage};

/// Why a store call failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotFound(String),
    /// The database failed while working on `entity`; `source` says how.
    #[error("database error on {entity}: {source}")]
    Database {
        entity: &'static str,
        #[source]
        source: DatabaseFailure,
    },
    #[error("the store is unavailable (shutting down, or its database cannot be reached)")]
    Unavailable,
}

/// A store failure as it crosses nodes: conflicts and absences keep their message, a
/// database failure arrives as "unavailable" (its cause is logged where it happened).
pub mod wire_store_error {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::StoreError;

    #[derive(Serialize, Deserialize)]
    enum Wire {
        Conflict(String),
        NotFound(String),
        Unavailable,
    }

    pub fn serialize<S: Serializer>(error: &StoreError, serializer: S) -> Result<S::Ok, S::Error> {
        match error {
            StoreError::Conflict(m) => Wire::Conflict(m.clone()),
            StoreError::NotFound(m) => Wire::NotFound(m.clone()),
            StoreError::Database { .. } | StoreError::Unavailable => Wire::Unavailable,
        }
        .serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<StoreError, D::Error> {
        Ok(match Wire::deserialize(deserializer)? {
            Wire::Conflict(m) => StoreError::Conflict(m),
            Wire::NotFound(m) => StoreError::NotFound(m),
            Wire::Unavailable => StoreError::Unavailable,
        })
    }
}

/// The underlying database error, shared so that a refusal can be cloned to every caller
/// of a batch.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct DatabaseFailure(pub Arc<dyn std::error::Error + Send + Sync>);

impl PartialEq for DatabaseFailure {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_string() == other.0.to_string()
    }
}

impl StoreError {
    /// A database failure on `entity`.
    pub fn database(entity: &'static str, source: impl std::error::Error + Send + Sync + 'static) -> StoreError {
        StoreError::Database { entity, source: DatabaseFailure(Arc::new(source)) }
    }

    /// The same failure, said to concern `entity` (a failure that named none yet).
    pub fn on(self, entity: &'static str) -> StoreError {
        match self {
            StoreError::Database { entity: "the store", source } => StoreError::Database { entity, source },
            other => other,
        }
    }

    /// The stanza error condition for this failure (RFC 6120 §8.3.3).
    pub fn condition(&self) -> Condition {
        match self {
            StoreError::Conflict(_) => Condition::Conflict,
            StoreError::NotFound(_) => Condition::ItemNotFound,
            StoreError::Database { .. } => Condition::InternalServerError,
            StoreError::Unavailable => Condition::ServiceUnavailable,
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// What a storage call resolves to.
pub type StoreFuture<T> = Pin<Box<dyn Future<Output = StoreResult<T>>>>;

/// Run with a write's result on commit, in commit order, before the caller's future resolves.
pub type AfterCommit<T> = Box<dyn FnOnce(&T) + Send + 'static>;

/// A domain rule run inside a roster transaction: the two rows of a pair (owner's, then
/// contact's) in, the transition to write out (`Conflict`, `NotFound`… to refuse).
pub type RosterRule =
    Box<dyn FnOnce(Option<RosterItem>, Option<RosterItem>) -> StoreResult<Transition> + Send + 'static>;

/// Accounts and their properties.
pub trait AccountStorage: Send + Sync {
    fn create_user(&self, user: NewUser) -> StoreFuture<()>;
    fn update_user(&self, update: UserUpdate) -> StoreFuture<()>;
    /// Also drops the account's contacts, blocks and properties.
    fn delete_user(&self, username: String) -> StoreFuture<()>;
    fn find_user(&self, username: String) -> StoreFuture<Option<UserRecord>>;
    /// The account with this e-mail address (case and surrounding spaces aside; the first
    /// by user name if several share it).
    fn find_user_by_email(&self, email: String) -> StoreFuture<Option<UserRecord>>;
    /// Accounts matching `search` (user name, name or e-mail), at most `limit`.
    fn list_users(&self, search: Option<String>, limit: Option<usize>) -> StoreFuture<Vec<UserRecord>>;
    fn set_property(&self, username: String, key: String, value: String) -> StoreFuture<()>;
    fn delete_property(&self, username: String, key: String) -> StoreFuture<()>;
    /// Every account's name and kind.
    fn account_names(&self) -> StoreFuture<Vec<(String, AccountKind)>>;
    /// Locks an account out, or lets it in again (`NotFound` for no such account).
    fn set_locked(&self, username: String, locked: bool) -> StoreFuture<()>;
    /// The system properties the admin API keeps, by key.
    fn system_properties(&self) -> StoreFuture<Vec<(String, String)>>;
    /// Sets one; resolves to true if it was new.
    fn put_system_property(&self, key: String, value: String) -> StoreFuture<bool>;
    /// False if there was none.
    fn delete_system_property(&self, key: String) -> StoreFuture<bool>;
    /// The user's vCard (vcard-temp XML), if one is stored.
    fn vcard(&self, username: String) -> StoreFuture<Option<String>>;
    /// Stores (`Some`) or removes a vCard; false if there was none to remove. `NotFound`
    /// for no such user.
    fn put_vcard(&self, username: String, vcard: Option<String>) -> StoreFuture<bool>;
}

/// User groups (`model::groups`). Rosters read through [`RosterStorage`] include the
/// people of the owner's shared groups.
pub trait GroupStorage: Send + Sync {
    /// `Conflict` if the name is taken, `NotFound` for a person without an account.
    fn create_group(&self, group: GroupRecord) -> StoreFuture<()>;
    /// Replaces description, sharing and people; `NotFound` if there is no such group.
    fn update_group(&self, group: GroupRecord) -> StoreFuture<()>;
    /// The group and its memberships, room affiliations and workgroup places; false if
    /// there was none.
    fn delete_group(&self, name: String) -> StoreFuture<bool>;
    fn group(&self, name: String) -> StoreFuture<Option<GroupRecord>>;
    fn all_groups(&self) -> StoreFuture<Vec<GroupRecord>>;
    /// Makes the user a member (`Some(false)`), an admin (`Some(true)`) or none of the group
    /// (`None`); false if nothing changed. `NotFound` for no such group or user.
    fn set_membership(&self, group: String, username: String, admin: Option<bool>) -> StoreFuture<bool>;
}

/// Web sites whose users sign in with the site's tokens (`model::sites`).
pub trait SiteStorage: Send + Sync {
    /// `Conflict` if the id is taken.
    fn create_site(&self, site: SiteRecord) -> StoreFuture<()>;
    /// Replaces everything but the id and creation time; `NotFound` if there is no such site.
    fn update_site(&self, site: SiteRecord) -> StoreFuture<()>;
    /// False if there was none. Its users' accounts stay.
    fn delete_site(&self, id: String) -> StoreFuture<bool>;
    fn all_sites(&self) -> StoreFuture<Vec<SiteRecord>>;
}

/// 1:1 messages: the archive, and what waits for offline stations.
pub trait MessageStorage: Send + Sync {
    /// Stores a message, pending for `deliver_to` (a station) or any station of its
    /// recipient; `after_commit` sees it with its id.
    fn append_message(
        &self,
        message: NewMessage,
        deliver_to: Option<String>,
        after_commit: AfterCommit<Arc<StoredMessage>>,
    ) -> StoreFuture<Arc<StoredMessage>>;
    /// Marks messages as delivered to a live station (no longer pending); not awaited.
    /// A mark that is lost leaves its messages pending, to be delivered again.
    fn mark_delivered(&self, ids: Vec<i64>);
    /// Messages a connection took and then lost (XEP-0198: never acknowledged, never
    /// resumed): pending again, for the user's next station.
    fn mark_pending(&self, ids: Vec<i64>) -> StoreFuture<()>;
    /// What waits for `username`, oldest first.
    fn pending_for(&self, username: String) -> StoreFuture<Vec<StoredMessage>>;
    /// A station ended: what waited for it now waits for any station of the user.
    fn retarget_pending(&self, username: String, resource: String) -> StoreFuture<()>;
    /// Messages `username` received after message `after_id`, oldest first, at most `limit`.
    fn received_since(&self, username: String, after_id: i64, limit: usize) -> StoreFuture<Vec<StoredMessage>>;
    fn history(&self, query: HistoryQuery) -> StoreFuture<Vec<StoredMessage>>;
    /// Everyone `username` exchanged 1:1 messages with: (peer, newest message id, its
    /// stamp), newest first, at most `limit`.
    fn peers_of(&self, username: String, limit: usize) -> StoreFuture<Vec<(String, i64, i64)>>;
}

/// HTTP API users' folders (`model::mailbox`). The inbox is what waits for the user in
/// the 1:1 archive; the other folders are rows of their own.
pub trait MailboxStorage: Send + Sync {
    /// Files each message in its folder under `owner` (replacing one with the same id
    /// there), in one transaction.
    fn put_mails(&self, owner: String, mails: Vec<Mail>) -> StoreFuture<()>;
    /// The messages of `ids` filed in any of `owner`'s `folders` (marked or not; for the
    /// inbox, only those filed there by a mark).
    fn find_mails(&self, owner: String, folders: Vec<Folder>, ids: Vec<String>) -> StoreFuture<Vec<Mail>>;
    /// Up to `limit` messages of a folder not marked, oldest first.
    fn folder(&self, owner: String, folder: Folder, limit: usize) -> StoreFuture<Vec<Mail>>;
    /// Deletes or marks the named messages of a folder, in one transaction; resolves to the
    /// ids it found there.
    fn file_mail(
        &self,
        owner: String,
        folder: Folder,
        ids: Vec<String>,
        action: MailAction,
    ) -> StoreFuture<Vec<String>>;
    /// Outbox messages due at `now_ms`, every owner's, oldest due first: (owner, message).
    fn due_mail(&self, now_ms: i64, limit: usize) -> StoreFuture<Vec<(String, Mail)>>;
    /// Moves a message out of the outbox into the folder `mail` names.
    fn settle_mail(&self, owner: String, mail: Mail) -> StoreFuture<()>;
}

/// Ozeki clients' records: station keys (as digests), each user's settings of a
/// conversation, and the reports made in conversations.
pub trait OzekiStorage: Send + Sync {
    /// `Conflict` if the station already has a key (station ids are unique).
    fn add_station_key(&self, key: StationKey) -> StoreFuture<()>;
    /// The key with this digest.
    fn station_key(&self, digest: Vec<u8>) -> StoreFuture<Option<StationKey>>;
    fn station_key_of(&self, station: String) -> StoreFuture<Option<StationKey>>;
    fn station_keys(&self, username: String) -> StoreFuture<Vec<StationKey>>;
    /// False if there was none.
    fn delete_station_key(&self, username: String, station: String) -> StoreFuture<bool>;
    fn conversation(&self, conversation: String, username: String) -> StoreFuture<Option<ConversationProps>>;
    /// Every conversation `username` has settings for, by peer.
    fn conversations(&self, username: String) -> StoreFuture<Vec<ConversationProps>>;
    fn save_conversation(&self, props: ConversationProps) -> StoreFuture<()>;
    fn add_report(&self, report: ConversationReport) -> StoreFuture<()>;
    /// The newest `limit` reports of a conversation made since `since_ms`, oldest first.
    fn reports(&self, conversation: String, since_ms: i64, limit: usize) -> StoreFuture<Vec<ConversationReport>>;
}

/// External apps, their chats, and the webhook outbox.
pub trait AppStorage: Send + Sync {
    /// The app and its account (`account`, of kind `app`) together; `Conflict` if the name
    /// is taken.
    fn create_app(&self, app: AppRecord, account: NewUser) -> StoreFuture<()>;
    /// Writes description, token, signature token and webhook.
    fn update_app(&self, app: AppRecord) -> StoreFuture<()>;
    /// The app, its account, chats and deliveries; false if there was none.
    fn delete_app(&self, id: String) -> StoreFuture<bool>;
    fn app(&self, id: String) -> StoreFuture<Option<AppRecord>>;
    fn app_by_token(&self, digest: Vec<u8>) -> StoreFuture<Option<AppRecord>>;
    fn all_apps(&self) -> StoreFuture<Vec<AppRecord>>;
    /// A message from a user to the app's account: archived, not waiting for any station;
    /// the user's chat with the app opened if new (as `new_chat_id`); and, when the app has
    /// a webhook, its delivery (`delivery_id`) queued; all in one transaction.
    fn append_for_app(
        &self,
        message: NewMessage,
        app_id: String,
        new_chat_id: String,
        delivery_id: String,
        after_commit: AfterCommit<Arc<StoredMessage>>,
    ) -> StoreFuture<(Arc<StoredMessage>, AppChat)>;
    /// The app's chat with `peer` (a user, or a room it is attached to), opened as
    /// `new_chat_id` if there is none.
    fn open_chat(&self, app_id: String, kind: ChatKind, peer: String, new_chat_id: String) -> StoreFuture<AppChat>;
    /// Ends the app's chat with `peer` (a room it is detached from); false if there was none.
    fn close_chat(&self, app_id: String, kind: ChatKind, peer: String) -> StoreFuture<bool>;
    /// Every room some app is attached to.
    fn watched_rooms(&self) -> StoreFuture<Vec<String>>;
    /// A message in a room some app is attached to: archived with a delivery for each such
    /// app that has a webhook (but the sender), in one transaction.
    fn append_watched_room_message(
        &self,
        message: NewRoomMessage,
        after_commit: AfterCommit<Arc<RoomMessage>>,
    ) -> StoreFuture<Arc<RoomMessage>>;
    fn chat(&self, chat_id: String) -> StoreFuture<Option<AppChat>>;
    /// An app's chats, oldest first, from `offset`.
    fn chats(&self, app_id: String, offset: usize, limit: usize) -> StoreFuture<Vec<AppChat>>;
    /// Pending deliveries after `after_seq`, in order, at most `limit`.
    fn pending_deliveries(&self, after_seq: i64, limit: usize) -> StoreFuture<Vec<Delivery>>;
    /// Records attempts' outcomes (sequence, attempts so far, outcome), in one transaction.
    fn settle_deliveries(&self, settled: Vec<(i64, u32, DeliveryOutcome)>) -> StoreFuture<()>;
    /// An app's deliveries (in `state`, when given), newest first.
    fn deliveries(&self, app_id: String, state: Option<DeliveryState>, limit: usize) -> StoreFuture<Vec<Delivery>>;
    /// Dead deliveries (one, or all of the app's) back to pending now; how many.
    fn replay_deliveries(&self, app_id: String, seq: Option<i64>) -> StoreFuture<usize>;
    /// Pending deliveries, and the oldest one's creation time.
    fn outbox_depth(&self) -> StoreFuture<(u64, Option<i64>)>;
    /// A chat's archived message: 1:1 (`User`) or a room's.
    fn archived_message(&self, kind: ChatKind, id: i64) -> StoreFuture<Option<ChatMessage>>;
}

/// Rosters (both rows of a pair change together) and blocklists.
pub trait RosterStorage: Send + Sync {
    /// Every roster row `owner` holds.
    fn roster(&self, owner: String) -> StoreFuture<Vec<RosterItem>>;
    /// Runs `rule` on the pair's two rows and writes what it returns, in one transaction.
    fn change_roster(
        &self,
        owner: String,
        contact: String,
        rule: RosterRule,
        after_commit: AfterCommit<Transition>,
    ) -> StoreFuture<Transition>;
    /// Every (blocker, blocked) pair.
    fn all_blocks(&self) -> StoreFuture<Vec<(String, String)>>;
    /// Adds (`on`) or removes a block; false if there was nothing to change.
    fn set_block(&self, blocker: String, blocked: String, on: bool) -> StoreFuture<bool>;
}

/// MUC rooms and their archive.
pub trait RoomStorage: Send + Sync {
    /// `Conflict` if the name is taken.
    fn create_room(&self, room: RoomRecord) -> StoreFuture<()>;
    /// Writes a room's config and affiliations (creating it if needed).
    fn save_room(&self, room: RoomRecord) -> StoreFuture<()>;
    /// Forgets a room's config and affiliations; its archive stays.
    fn delete_room(&self, name: String) -> StoreFuture<()>;
    fn all_rooms(&self) -> StoreFuture<Vec<RoomRecord>>;
    /// One stored room, by name.
    fn stored_room(&self, name: String) -> StoreFuture<Option<RoomRecord>>;
    fn append_room_message(
        &self,
        message: NewRoomMessage,
        after_commit: AfterCommit<Arc<RoomMessage>>,
    ) -> StoreFuture<Arc<RoomMessage>>;
    /// The MUC services the admin added.
    fn muc_services(&self) -> StoreFuture<Vec<MucServiceRecord>>;
    /// `Conflict` if the name is taken.
    fn add_muc_service(&self, service: MucServiceRecord) -> StoreFuture<()>;
    /// A page of a room's archive (see [`RoomHistoryQuery`]).
    fn room_messages(&self, query: RoomHistoryQuery) -> StoreFuture<Vec<RoomMessage>>;
}

/// Fastpath workgroups and the chats they set up.
pub trait WorkgroupStorage: Send + Sync {
    /// `Conflict` if the name is taken, `NotFound` for a member without an account.
    fn create_workgroup(&self, workgroup: WorkgroupRecord) -> StoreFuture<()>;
    fn update_workgroup(&self, workgroup: WorkgroupRecord) -> StoreFuture<()>;
    /// False if there was none; its chat records stay.
    fn delete_workgroup(&self, name: String) -> StoreFuture<bool>;
    fn all_workgroups(&self) -> StoreFuture<Vec<WorkgroupRecord>>;
    fn start_chat(&self, chat: ChatRecord) -> StoreFuture<()>;
    fn end_chat(&self, room: String, ended_ms: i64) -> StoreFuture<()>;
    fn workgroup_chat(&self, room: String) -> StoreFuture<Option<ChatRecord>>;
    /// A workgroup's chats, newest first.
    fn workgroup_chats(&self, workgroup: String, limit: usize) -> StoreFuture<Vec<ChatRecord>>;
}

/// Leases: a duty (a named piece of work) that one node of a cluster does at a time.
pub trait LeaseStorage: Send + Sync {
    /// Takes or renews the lease on `name` for `node` until `until_ms`: granted when nobody
    /// holds it, when `node` does, or when the holder's lease ran out by `now_ms`. Whether
    /// `node` holds it now.
    fn claim_lease(&self, name: String, node: String, now_ms: i64, until_ms: i64) -> StoreFuture<bool>;
    /// Gives the lease up, if `node` holds it.
    fn release_lease(&self, name: String, node: String) -> StoreFuture<()>;
    /// Claims each of `names` as `claim_lease` does, at once: the holder of each after the
    /// claim (`node` where granted), in order.
    fn claim_leases(&self, names: Vec<String>, node: String, now_ms: i64, until_ms: i64) -> StoreFuture<Vec<String>>;
    /// Extends every lease `node` holds to `until_ms` (a node holding many renews them at once).
    fn renew_leases(&self, node: String, until_ms: i64) -> StoreFuture<()>;
}

/// Every storage interface, as the core's actors and services take them.
#[derive(Clone)]
pub struct Storage {
    pub accounts: Arc<dyn AccountStorage>,
    pub messages: Arc<dyn MessageStorage>,
    pub rosters: Arc<dyn RosterStorage>,
    pub rooms: Arc<dyn RoomStorage>,
    pub workgroups: Arc<dyn WorkgroupStorage>,
    pub mailboxes: Arc<dyn MailboxStorage>,
    pub ozeki: Arc<dyn OzekiStorage>,
    pub apps: Arc<dyn AppStorage>,
    pub groups: Arc<dyn GroupStorage>,
    pub sites: Arc<dyn SiteStorage>,
    pub leases: Arc<dyn LeaseStorage>,
}

impl Storage {
    /// Every interface on one implementation.
    pub fn on<S>(store: S) -> Storage
    where
        S: AccountStorage
            + MessageStorage
            + MailboxStorage
            + OzekiStorage
            + AppStorage
            + RosterStorage
            + RoomStorage
            + WorkgroupStorage
            + GroupStorage
            + SiteStorage
            + LeaseStorage
            + 'static,
    {
        let store = Arc::new(store);
        Storage {
            accounts: store.clone(),
            messages: store.clone(),
            rosters: store.clone(),
            rooms: store.clone(),
            workgroups: store.clone(),
            mailboxes: store.clone(),
            ozeki: store.clone(),
            apps: store.clone(),
            groups: store.clone(),
            sites: store.clone(),
            leases: store,
        }
    }
}
