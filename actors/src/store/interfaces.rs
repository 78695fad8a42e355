//! The store (SQLite or PostgreSQL) behind every storage interface: each call is one read on a reader
//! connection or one write in the next group commit.

use std::sync::Arc;

use super::db::Db;
use super::{apps, groups, leases, mailbox, messages, ozeki, rooms, roster, sites, users, workgroups, Store};
use crate::model::apps::{AppChat, AppRecord, ChatKind, ChatMessage, Delivery, DeliveryOutcome, DeliveryState};
use crate::model::groups::GroupRecord;
use crate::model::mailbox::{Folder, Mail, MailAction};
use crate::model::ozeki::{ConversationProps, ConversationReport, StationKey};
use crate::model::records::{
    AccountKind, ChatRecord, HistoryQuery, MucServiceRecord, NewUser, RoomHistoryQuery, RoomRecord, RosterItem,
    Transition, UserRecord, UserUpdate, WorkgroupRecord,
};
use crate::model::sites::SiteRecord;
use crate::model::{NewMessage, NewRoomMessage, RoomMessage, StoredMessage};
use crate::storage::{
    AccountStorage, AfterCommit, AppStorage, GroupStorage, LeaseStorage, MailboxStorage, MessageStorage, OzekiStorage,
    RoomStorage, RosterRule, RosterStorage, SiteStorage, StoreFuture, StoreResult, WorkgroupStorage,
};

/// Boxes a store future, naming the entity in a database failure.
fn named<T: 'static>(
    entity: &'static str,
    work: impl std::future::Future<Output = StoreResult<T>> + 'static,
) -> StoreFuture<T> {
    Box::pin(async move { work.await.map_err(|e| e.on(entity)) })
}

impl AccountStorage for Store {
    fn create_user(&self, user: NewUser) -> StoreFuture<()> {
        named("account", self.write(move |c| users::create(c, &user)))
    }

    fn update_user(&self, update: UserUpdate) -> StoreFuture<()> {
        named("account", self.write(move |c| users::update(c, &update)))
    }

    fn delete_user(&self, username: String) -> StoreFuture<()> {
        named("account", self.write(move |c| users::delete(c, &username)))
    }

    fn find_user(&self, username: String) -> StoreFuture<Option<UserRecord>> {
        named("account", self.read(move |c| users::find(c, &username)))
    }

    fn list_users(&self, search: Option<String>, limit: Option<usize>) -> StoreFuture<Vec<UserRecord>> {
        named("account", self.read(move |c| users::list(c, search.as_deref(), limit)))
    }

    fn set_property(&self, username: String, key: String, value: String) -> StoreFuture<()> {
        named("user property", self.write(move |c| users::set_property(c, &username, &key, &value)))
    }

    fn delete_property(&self, username: String, key: String) -> StoreFuture<()> {
        named("user property", self.write(move |c| users::delete_property(c, &username, &key)))
    }

    fn find_user_by_email(&self, email: String) -> StoreFuture<Option<UserRecord>> {
        named("account", self.read(move |c| users::find_by_email(c, &email)))
    }

    fn account_names(&self) -> StoreFuture<Vec<(String, AccountKind)>> {
        named("account", self.read(users::account_names))
    }

    fn set_locked(&self, username: String, locked: bool) -> StoreFuture<()> {
        named("account", self.write(move |c| users::set_locked(c, &username, locked)))
    }

    fn system_properties(&self) -> StoreFuture<Vec<(String, String)>> {
        named("system property", self.read(users::system_properties))
    }

    fn put_system_property(&self, key: String, value: String) -> StoreFuture<bool> {
        named("system property", self.write(move |c| users::put_system_property(c, &key, &value)))
    }

    fn delete_system_property(&self, key: String) -> StoreFuture<bool> {
        named("system property", self.write(move |c| users::delete_system_property(c, &key)))
    }

    fn vcard(&self, username: String) -> StoreFuture<Option<String>> {
        named("vcard", self.read(move |c| groups::vcard(c, &username)))
    }

    fn put_vcard(&self, username: String, vcard: Option<String>) -> StoreFuture<bool> {
        named("vcard", self.write(move |c| groups::put_vcard(c, &username, vcard.as_deref())))
    }
}

impl GroupStorage for Store {
    fn create_group(&self, group: GroupRecord) -> StoreFuture<()> {
        named("group", self.write(move |c| groups::create(c, &group)))
    }

    fn update_group(&self, group: GroupRecord) -> StoreFuture<()> {
        named("group", self.write(move |c| groups::update(c, &group)))
    }

    fn delete_group(&self, name: String) -> StoreFuture<bool> {
        named("group", self.write(move |c| groups::delete(c, &name)))
    }

    fn group(&self, name: String) -> StoreFuture<Option<GroupRecord>> {
        named("group", self.read(move |c| groups::find(c, &name)))
    }

    fn all_groups(&self) -> StoreFuture<Vec<GroupRecord>> {
        named("group", self.read(groups::load_all))
    }

    fn set_membership(&self, group: String, username: String, admin: Option<bool>) -> StoreFuture<bool> {
        named("group", self.write(move |c| groups::set_membership(c, &group, &username, admin)))
    }
}

impl SiteStorage for Store {
    fn create_site(&self, site: SiteRecord) -> StoreFuture<()> {
        named("site", self.write(move |c| sites::create(c, &site)))
    }

    fn update_site(&self, site: SiteRecord) -> StoreFuture<()> {
        named("site", self.write(move |c| sites::update(c, &site)))
    }

    fn delete_site(&self, id: String) -> StoreFuture<bool> {
        named("site", self.write(move |c| sites::delete(c, &id)))
    }

    fn all_sites(&self) -> StoreFuture<Vec<SiteRecord>> {
        named("site", self.read(sites::load_all))
    }
}

impl AppStorage for Store {
    fn create_app(&self, app: AppRecord, account: NewUser) -> StoreFuture<()> {
        named("app", self.write(move |c| apps::create(c, &app, &account)))
    }

    fn update_app(&self, app: AppRecord) -> StoreFuture<()> {
        named("app", self.write(move |c| apps::update(c, &app)))
    }

    fn delete_app(&self, id: String) -> StoreFuture<bool> {
        named("app", self.write(move |c| apps::delete(c, &id)))
    }

    fn app(&self, id: String) -> StoreFuture<Option<AppRecord>> {
        named("app", self.read(move |c| apps::find(c, &id)))
    }

    fn app_by_token(&self, digest: Vec<u8>) -> StoreFuture<Option<AppRecord>> {
        named("app", self.read(move |c| apps::by_token(c, &digest)))
    }

    fn all_apps(&self) -> StoreFuture<Vec<AppRecord>> {
        named("app", self.read(apps::all))
    }

    fn append_for_app(
        &self,
        message: NewMessage,
        app_id: String,
        new_chat_id: String,
        delivery_id: String,
        after_commit: AfterCommit<Arc<StoredMessage>>,
    ) -> StoreFuture<(Arc<StoredMessage>, AppChat)> {
        let work = move |c: &Db| {
            apps::append_for_app(c, &message, &app_id, &new_chat_id, &delivery_id)
                .map(|(stored, chat)| (Arc::new(stored), chat))
        };
        let written = self.write_then(work, move |(stored, _): &(Arc<StoredMessage>, AppChat)| after_commit(stored));
        named("message", written)
    }

    fn open_chat(&self, app_id: String, kind: ChatKind, peer: String, new_chat_id: String) -> StoreFuture<AppChat> {
        named("chat", self.write(move |c| apps::open_chat(c, &app_id, kind, &peer, &new_chat_id)))
    }

    fn close_chat(&self, app_id: String, kind: ChatKind, peer: String) -> StoreFuture<bool> {
        named("chat", self.write(move |c| apps::close_chat(c, &app_id, kind, &peer)))
    }

    fn watched_rooms(&self) -> StoreFuture<Vec<String>> {
        named("chat", self.read(apps::watched_rooms))
    }

    fn append_watched_room_message(
        &self,
        message: NewRoomMessage,
        after_commit: AfterCommit<Arc<RoomMessage>>,
    ) -> StoreFuture<Arc<RoomMessage>> {
        let work = move |c: &Db| apps::append_room_message(c, &message).map(Arc::new);
        named("room message", self.write_then(work, after_commit))
    }

    fn chat(&self, chat_id: String) -> StoreFuture<Option<AppChat>> {
        named("chat", self.read(move |c| apps::chat(c, &chat_id)))
    }

    fn chats(&self, app_id: String, offset: usize, limit: usize) -> StoreFuture<Vec<AppChat>> {
        named("chat", self.read(move |c| apps::chats(c, &app_id, offset, limit)))
    }

    fn pending_deliveries(&self, after_seq: i64, limit: usize) -> StoreFuture<Vec<Delivery>> {
        named("delivery", self.read(move |c| apps::pending(c, after_seq, limit)))
    }

    fn settle_deliveries(&self, settled: Vec<(i64, u32, DeliveryOutcome)>) -> StoreFuture<()> {
        let work = move |c: &Db| {
            settled.iter().try_for_each(|(seq, attempts, outcome)| apps::settle(c, *seq, *attempts, outcome))
        };
        named("delivery", self.write(work))
    }

    fn deliveries(&self, app_id: String, state: Option<DeliveryState>, limit: usize) -> StoreFuture<Vec<Delivery>> {
        named("delivery", self.read(move |c| apps::list(c, &app_id, state, limit)))
    }

    fn replay_deliveries(&self, app_id: String, seq: Option<i64>) -> StoreFuture<usize> {
        named("delivery", self.write(move |c| apps::replay(c, &app_id, seq)))
    }

    fn outbox_depth(&self) -> StoreFuture<(u64, Option<i64>)> {
        named("delivery", self.read(apps::depth))
    }

    fn archived_message(&self, kind: ChatKind, id: i64) -> StoreFuture<Option<ChatMessage>> {
        named("message", self.read(move |c| apps::message(c, kind, id)))
    }
}

impl OzekiStorage for Store {
    fn add_station_key(&self, key: StationKey) -> StoreFuture<()> {
        named("station key", self.write(move |c| ozeki::add_key(c, &key)))
    }

    fn station_key(&self, digest: Vec<u8>) -> StoreFuture<Option<StationKey>> {
        named("station key", self.read(move |c| ozeki::key_by_digest(c, &digest)))
    }

    fn station_key_of(&self, station: String) -> StoreFuture<Option<StationKey>> {
        named("station key", self.read(move |c| ozeki::key_of_station(c, &station)))
    }

    fn station_keys(&self, username: String) -> StoreFuture<Vec<StationKey>> {
        named("station key", self.read(move |c| ozeki::keys_of(c, &username)))
    }

    fn delete_station_key(&self, username: String, station: String) -> StoreFuture<bool> {
        named("station key", self.write(move |c| ozeki::delete_key(c, &username, &station)))
    }

    fn conversation(&self, conversation: String, username: String) -> StoreFuture<Option<ConversationProps>> {
        named("conversation", self.read(move |c| ozeki::conversation(c, &conversation, &username)))
    }

    fn conversations(&self, username: String) -> StoreFuture<Vec<ConversationProps>> {
        named("conversation", self.read(move |c| ozeki::conversations(c, &username)))
    }

    fn save_conversation(&self, props: ConversationProps) -> StoreFuture<()> {
        named("conversation", self.write(move |c| ozeki::save_conversation(c, &props)))
    }

    fn add_report(&self, report: ConversationReport) -> StoreFuture<()> {
        named("report", self.write(move |c| ozeki::add_report(c, &report)))
    }

    fn reports(&self, conversation: String, since_ms: i64, limit: usize) -> StoreFuture<Vec<ConversationReport>> {
        named("report", self.read(move |c| ozeki::reports(c, &conversation, since_ms, limit)))
    }
}

impl MailboxStorage for Store {
    fn put_mails(&self, owner: String, mails: Vec<Mail>) -> StoreFuture<()> {
        named("mailbox", self.write(move |c| mails.iter().try_for_each(|mail| mailbox::put(c, &owner, mail))))
    }

    fn find_mails(&self, owner: String, folders: Vec<Folder>, ids: Vec<String>) -> StoreFuture<Vec<Mail>> {
        named("mailbox", self.read(move |c| mailbox::find_all(c, &owner, &folders, &ids)))
    }

    fn folder(&self, owner: String, folder: Folder, limit: usize) -> StoreFuture<Vec<Mail>> {
        named("mailbox", self.read(move |c| mailbox::folder(c, &owner, folder, limit)))
    }

    fn file_mail(
        &self,
        owner: String,
        folder: Folder,
        ids: Vec<String>,
        action: MailAction,
    ) -> StoreFuture<Vec<String>> {
        named("mailbox", self.write(move |c| mailbox::file(c, &owner, folder, &ids, action)))
    }

    fn due_mail(&self, now_ms: i64, limit: usize) -> StoreFuture<Vec<(String, Mail)>> {
        named("mailbox", self.read(move |c| mailbox::due(c, now_ms, limit)))
    }

    fn settle_mail(&self, owner: String, mail: Mail) -> StoreFuture<()> {
        named("mailbox", self.write(move |c| mailbox::settle(c, &owner, &mail)))
    }
}

impl MessageStorage for Store {
    fn append_message(
        &self,
        message: NewMessage,
        deliver_to: Option<String>,
        after_commit: AfterCommit<Arc<StoredMessage>>,
    ) -> StoreFuture<Arc<StoredMessage>> {
        named("message", self.append_then(message, deliver_to, after_commit))
    }

    fn mark_delivered(&self, ids: Vec<i64>) {
        self.mark_delivered_later(ids);
    }

    fn mark_pending(&self, ids: Vec<i64>) -> StoreFuture<()> {
        named("message", self.write(move |c| messages::mark_pending(c, &ids)))
    }

    fn pending_for(&self, username: String) -> StoreFuture<Vec<StoredMessage>> {
        named("message", self.read(move |c| messages::pending_for(c, &username)))
    }

    fn retarget_pending(&self, username: String, resource: String) -> StoreFuture<()> {
        named("message", self.write(move |c| messages::retarget_pending(c, &username, &resource)))
    }

    fn received_since(&self, username: String, after_id: i64, limit: usize) -> StoreFuture<Vec<StoredMessage>> {
        named("message", self.read(move |c| messages::received_since(c, &username, after_id, limit)))
    }

    fn history(&self, query: HistoryQuery) -> StoreFuture<Vec<StoredMessage>> {
        named("message", self.read(move |c| messages::history(c, &query)))
    }

    fn peers_of(&self, username: String, limit: usize) -> StoreFuture<Vec<(String, i64, i64)>> {
        named("message", self.read(move |c| messages::peers_of(c, &username, limit)))
    }
}

impl RosterStorage for Store {
    fn roster(&self, owner: String) -> StoreFuture<Vec<RosterItem>> {
        named("roster item", self.read(move |c| roster::load(c, &owner)))
    }

    fn change_roster(
        &self,
        owner: String,
        contact: String,
        rule: RosterRule,
        after_commit: AfterCommit<Transition>,
    ) -> StoreFuture<Transition> {
        named("roster item", self.write_then(move |c| roster::change(c, &owner, &contact, rule), after_commit))
    }

    fn all_blocks(&self) -> StoreFuture<Vec<(String, String)>> {
        named("block", self.read(roster::all_blocks))
    }

    fn set_block(&self, blocker: String, blocked: String, on: bool) -> StoreFuture<bool> {
        named("block", self.write(move |c| roster::set_block(c, &blocker, &blocked, on)))
    }
}

impl RoomStorage for Store {
    fn create_room(&self, room: RoomRecord) -> StoreFuture<()> {
        named("room", self.write(move |c| rooms::create(c, &room)))
    }

    fn save_room(&self, room: RoomRecord) -> StoreFuture<()> {
        named("room", self.write(move |c| rooms::save(c, &room)))
    }

    fn delete_room(&self, name: String) -> StoreFuture<()> {
        named("room", self.write(move |c| rooms::delete(c, &name)))
    }

    fn all_rooms(&self) -> StoreFuture<Vec<RoomRecord>> {
        named("room", self.read(rooms::load_all))
    }

    fn stored_room(&self, name: String) -> StoreFuture<Option<RoomRecord>> {
        named("room", self.read(move |c| rooms::load_one(c, &name)))
    }

    fn append_room_message(
        &self,
        message: NewRoomMessage,
        after_commit: AfterCommit<Arc<RoomMessage>>,
    ) -> StoreFuture<Arc<RoomMessage>> {
        let work = move |c: &Db| rooms::append_message(c, &message).map(Arc::new);
        named("room message", self.write_statement_then(work, after_commit))
    }

    fn muc_services(&self) -> StoreFuture<Vec<MucServiceRecord>> {
        named("chat service", self.read(rooms::services))
    }

    fn add_muc_service(&self, service: MucServiceRecord) -> StoreFuture<()> {
        named("chat service", self.write(move |c| rooms::add_service(c, &service)))
    }

    fn room_messages(&self, query: RoomHistoryQuery) -> StoreFuture<Vec<RoomMessage>> {
        named("room message", self.read(move |c| rooms::history(c, &query)))
    }
}

impl WorkgroupStorage for Store {
    fn create_workgroup(&self, workgroup: WorkgroupRecord) -> StoreFuture<()> {
        named("workgroup", self.write(move |c| workgroups::create(c, &workgroup)))
    }

    fn update_workgroup(&self, workgroup: WorkgroupRecord) -> StoreFuture<()> {
        named("workgroup", self.write(move |c| workgroups::update(c, &workgroup)))
    }

    fn delete_workgroup(&self, name: String) -> StoreFuture<bool> {
        named("workgroup", self.write(move |c| workgroups::delete(c, &name)))
    }

    fn all_workgroups(&self) -> StoreFuture<Vec<WorkgroupRecord>> {
        named("workgroup", self.read(workgroups::load_all))
    }

    fn start_chat(&self, chat: ChatRecord) -> StoreFuture<()> {
        named("workgroup chat", self.write(move |c| workgroups::start_chat(c, &chat)))
    }

    fn end_chat(&self, room: String, ended_ms: i64) -> StoreFuture<()> {
        named("workgroup chat", self.write(move |c| workgroups::end_chat(c, &room, ended_ms)))
    }

    fn workgroup_chat(&self, room: String) -> StoreFuture<Option<ChatRecord>> {
        named("workgroup chat", self.read(move |c| workgroups::chat(c, &room)))
    }

    fn workgroup_chats(&self, workgroup: String, limit: usize) -> StoreFuture<Vec<ChatRecord>> {
        named("workgroup chat", self.read(move |c| workgroups::chats(c, &workgroup, limit)))
    }
}

impl LeaseStorage for Store {
    fn claim_lease(&self, name: String, node: String, now_ms: i64, until_ms: i64) -> StoreFuture<bool> {
        named("lease", self.write(move |c| leases::claim(c, &name, &node, now_ms, until_ms)))
    }

    fn release_lease(&self, name: String, node: String) -> StoreFuture<()> {
        named("lease", self.write(move |c| leases::release(c, &name, &node)))
    }

    fn claim_leases(&self, names: Vec<String>, node: String, now_ms: i64, until_ms: i64) -> StoreFuture<Vec<String>> {
        named("lease", self.write(move |c| leases::claim_each(c, &names, &node, now_ms, until_ms)))
    }

    fn renew_leases(&self, node: String, until_ms: i64) -> StoreFuture<()> {
        named("lease", self.write(move |c| leases::renew_all(c, &node, until_ms)))
    }
}
