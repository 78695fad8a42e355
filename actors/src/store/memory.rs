//! `MemoryStore`: every storage interface held in memory, for tests of the actors without
//! SQLite (and a reference for other implementations). Each call "commits" at once, in call
//! order, and runs its `after_commit` hook before resolving, as the SQLite store does.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

use futures_util::FutureExt;

use super::roster::refusal_with_shared;
use crate::clock::now_ms;
use crate::model::apps::{AppChat, AppRecord, ChatKind, ChatMessage, Delivery, DeliveryOutcome, DeliveryState};
use crate::model::groups::{transition_with_shared, with_shared, GroupRecord};
use crate::model::mailbox::{Folder, Mail, MailAction};
use crate::model::ozeki::{ConversationProps, ConversationReport, StationKey};
use crate::model::records::{
    AccountKind, ChatRecord, HistoryQuery, MucServiceRecord, NewUser, RoomHistoryQuery, RoomRecord, RosterItem,
    Transition, UserRecord, UserUpdate, WorkgroupRecord,
};
use crate::model::sites::SiteRecord;
use crate::model::{MessageKind, NewMessage, NewRoomMessage, RoomMessage, StoredMessage};
use crate::storage::{
    AccountStorage, AfterCommit, AppStorage, GroupStorage, LeaseStorage, MailboxStorage, MessageStorage, OzekiStorage,
    RoomStorage, RosterRule, RosterStorage, SiteStorage, StoreError, StoreFuture, StoreResult, WorkgroupStorage,
};

#[derive(Default)]
struct Tables {
    users: BTreeMap<String, UserRecord>,
    /// Messages by id, with whether each is still pending.
    messages: BTreeMap<i64, (StoredMessage, bool)>,
    next_id: i64,
    /// (owner, contact) → row.
    roster: BTreeMap<(String, String), RosterItem>,
    blocks: BTreeSet<(String, String)>,
    rooms: BTreeMap<String, RoomRecord>,
    room_messages: Vec<RoomMessage>,
    workgroups: BTreeMap<String, WorkgroupRecord>,
    chats: BTreeMap<String, ChatRecord>,
    /// HTTP users' filed messages, in filing order: (owner, message).
    mailbox: Vec<(String, Mail)>,
    station_keys: Vec<StationKey>,
    /// (conversation, username) → settings.
    conversations: BTreeMap<(String, String), ConversationProps>,
    reports: Vec<ConversationReport>,
    apps: BTreeMap<String, AppRecord>,
    system_properties: BTreeMap<String, String>,
    app_chats: Vec<AppChat>,
    deliveries: Vec<Delivery>,
    groups: BTreeMap<String, GroupRecord>,
    vcards: BTreeMap<String, String>,
    muc_services: BTreeMap<String, MucServiceRecord>,
    sites: BTreeMap<String, SiteRecord>,
    /// Lease name → (node, until_ms).
    leases: BTreeMap<String, (String, i64)>,
}

impl Tables {
    /// The shared groups both users are in, by name.
    fn shared_between(&self, a: &str, b: &str) -> Vec<String> {
        self.groups.values().filter(|g| g.shared && g.has(a) && g.has(b)).map(|g| g.name.clone()).collect()
    }

    fn missing_user<'a>(&self, mut names: impl Iterator<Item = &'a String>) -> Option<StoreError> {
        names.find(|n| !self.users.contains_key(*n)).map(|n| StoreError::NotFound(format!("user '{n}' does not exist")))
    }

    fn missing_group<'a>(&self, mut names: impl Iterator<Item = &'a String>) -> Option<StoreError> {
        names
            .find(|n| !self.groups.contains_key(*n))
            .map(|n| StoreError::NotFound(format!("group '{n}' does not exist")))
    }
}

/// Every storage interface, in memory.
#[derive(Default, Clone)]
pub struct MemoryStore {
    tables: Arc<Mutex<Tables>>,
}

fn done<T: 'static>(value: StoreResult<T>) -> StoreFuture<T> {
    Box::pin(std::future::ready(value))
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    fn tables(&self) -> MutexGuard<'_, Tables> {
        self.tables.lock().expect("memory store lock")
    }

    fn next_id(tables: &mut Tables) -> i64 {
        tables.next_id += 1;
        tables.next_id
    }
}

impl AccountStorage for MemoryStore {
    fn create_user(&self, user: NewUser) -> StoreFuture<()> {
        let mut t = self.tables();
        if t.users.contains_key(&user.username) {
            return done(Err(StoreError::Conflict(format!("user '{}' already exists", user.username))));
        }
        let now = now_ms();
        let record = UserRecord {
            username: user.username.clone(),
            kind: user.kind,
            password_hash: user.password_hash,
            name: user.name,
            email: user.email,
            properties: user.properties,
            created_ms: now,
            modified_ms: now,
            locked: false,
            scram: user.scram,
        };
        t.users.insert(user.username, record);
        done(Ok(()))
    }

    fn update_user(&self, update: UserUpdate) -> StoreFuture<()> {
        let mut t = self.tables();
        let Some(user) = t.users.get_mut(&update.username) else {
            return done(Err(StoreError::NotFound(format!("user '{}' does not exist", update.username))));
        };
        if let Some(hash) = update.password_hash {
            user.password_hash = hash;
        }
        if let Some(scram) = update.scram {
            user.scram = scram;
        }
        if let Some(name) = update.name {
            user.name = name;
        }
        if let Some(email) = update.email {
            user.email = email;
        }
        if let Some(properties) = update.properties {
            user.properties = properties;
        }
        user.modified_ms = now_ms();
        done(Ok(()))
    }

    fn delete_user(&self, username: String) -> StoreFuture<()> {
        let mut t = self.tables();
        if t.users.remove(&username).is_none() {
            return done(Err(StoreError::NotFound(format!("user '{username}' does not exist"))));
        }
        t.roster.retain(|(owner, contact), _| *owner != username && *contact != username);
        t.blocks.retain(|(blocker, blocked)| *blocker != username && *blocked != username);
        t.mailbox.retain(|(owner, _)| *owner != username);
        t.station_keys.retain(|k| k.username != username);
        t.conversations.retain(|(_, user), _| *user != username);
        t.vcards.remove(&username);
        for group in t.groups.values_mut() {
            group.members.remove(&username);
            group.admins.remove(&username);
        }
        for (m, pending) in t.messages.values_mut() {
            *pending &= m.to_user != username;
        }
        done(Ok(()))
    }

    fn find_user(&self, username: String) -> StoreFuture<Option<UserRecord>> {
        done(Ok(self.tables().users.get(&username).cloned()))
    }

    fn list_users(&self, search: Option<String>, limit: Option<usize>) -> StoreFuture<Vec<UserRecord>> {
        let needle = search.map(|s| s.to_lowercase());
        let t = self.tables();
        let matches = t.users.values().filter(|u| {
            needle.as_ref().is_none_or(|n| {
                [&u.username, &u.name, &u.email].iter().any(|field| field.to_lowercase().contains(n.as_str()))
            })
        });
        done(Ok(matches.take(limit.unwrap_or(usize::MAX)).cloned().collect()))
    }

    fn set_property(&self, username: String, key: String, value: String) -> StoreFuture<()> {
        let mut t = self.tables();
        let Some(user) = t.users.get_mut(&username) else {
            return done(Err(StoreError::NotFound(format!("user '{username}' does not exist"))));
        };
        user.properties.retain(|(k, _)| *k != key);
        user.properties.push((key, value));
        done(Ok(()))
    }

    fn delete_property(&self, username: String, key: String) -> StoreFuture<()> {
        let mut t = self.tables();
        let Some(user) = t.users.get_mut(&username) else {
            return done(Err(StoreError::NotFound(format!("user '{username}' does not exist"))));
        };
        let before = user.properties.len();
        user.properties.retain(|(k, _)| *k != key);
        if user.properties.len() == before {
            return done(Err(StoreError::NotFound(format!("property '{key}' does not exist"))));
        }
        done(Ok(()))
    }

    fn find_user_by_email(&self, email: String) -> StoreFuture<Option<UserRecord>> {
        let email = email.trim().to_lowercase();
        let t = self.tables();
        let found = t.users.values().find(|u| !email.is_empty() && u.email.trim().to_lowercase() == email);
        done(Ok(found.cloned()))
    }

    fn account_names(&self) -> StoreFuture<Vec<(String, AccountKind)>> {
        done(Ok(self.tables().users.values().map(|u| (u.username.clone(), u.kind)).collect()))
    }

    fn set_locked(&self, username: String, locked: bool) -> StoreFuture<()> {
        match self.tables().users.get_mut(&username) {
            Some(user) => {
                user.locked = locked;
                done(Ok(()))
            }
            None => done(Err(StoreError::NotFound(format!("user '{username}' does not exist")))),
        }
    }

    fn system_properties(&self) -> StoreFuture<Vec<(String, String)>> {
        done(Ok(self.tables().system_properties.iter().map(|(k, v)| (k.clone(), v.clone())).collect()))
    }

    fn put_system_property(&self, key: String, value: String) -> StoreFuture<bool> {
        done(Ok(self.tables().system_properties.insert(key, value).is_none()))
    }

    fn delete_system_property(&self, key: String) -> StoreFuture<bool> {
        done(Ok(self.tables().system_properties.remove(&key).is_some()))
    }

    fn vcard(&self, username: String) -> StoreFuture<Option<String>> {
        done(Ok(self.tables().vcards.get(&username).cloned()))
    }

    fn put_vcard(&self, username: String, vcard: Option<String>) -> StoreFuture<bool> {
        let mut t = self.tables();
        if let Some(missing) = t.missing_user(std::iter::once(&username)) {
            return done(Err(missing));
        }
        done(Ok(match vcard {
            Some(vcard) => {
                t.vcards.insert(username, vcard);
                true
            }
            None => t.vcards.remove(&username).is_some(),
        }))
    }
}

impl LeaseStorage for MemoryStore {
    fn claim_lease(&self, name: String, node: String, now_ms: i64, until_ms: i64) -> StoreFuture<bool> {
        let mut t = self.tables();
        let granted = match t.leases.get(&name) {
            Some((holder, until)) => *holder == node || *until < now_ms,
            None => true,
        };
        if granted {
            t.leases.insert(name, (node, until_ms));
        }
        done(Ok(granted))
    }

    fn release_lease(&self, name: String, node: String) -> StoreFuture<()> {
        let mut t = self.tables();
        if t.leases.get(&name).is_some_and(|(holder, _)| *holder == node) {
            t.leases.remove(&name);
        }
        done(Ok(()))
    }

    fn claim_leases(&self, names: Vec<String>, node: String, now_ms: i64, until_ms: i64) -> StoreFuture<Vec<String>> {
        let mut t = self.tables();
        let holders = names
            .into_iter()
            .map(|name| match t.leases.get(&name) {
                Some((holder, until)) if *holder != node && *until >= now_ms => holder.clone(),
                _ => {
                    t.leases.insert(name, (node.clone(), until_ms));
                    node.clone()
                }
            })
            .collect();
        done(Ok(holders))
    }

    fn renew_leases(&self, node: String, until_ms: i64) -> StoreFuture<()> {
        let mut t = self.tables();
        for (holder, until) in t.leases.values_mut() {
            if *holder == node {
                *until = until_ms;
            }
        }
        done(Ok(()))
    }
}

impl SiteStorage for MemoryStore {
    fn create_site(&self, site: SiteRecord) -> StoreFuture<()> {
        let mut t = self.tables();
        if t.sites.contains_key(&site.id) {
            return done(Err(StoreError::Conflict(format!("site '{}' already exists", site.id))));
        }
        t.sites.insert(site.id.clone(), site);
        done(Ok(()))
    }

    fn update_site(&self, site: SiteRecord) -> StoreFuture<()> {
        let mut t = self.tables();
        let Some(stored) = t.sites.get_mut(&site.id) else {
            return done(Err(StoreError::NotFound(format!("site '{}' does not exist", site.id))));
        };
        *stored = SiteRecord { created_ms: stored.created_ms, ..site };
        done(Ok(()))
    }

    fn delete_site(&self, id: String) -> StoreFuture<bool> {
        done(Ok(self.tables().sites.remove(&id).is_some()))
    }

    fn all_sites(&self) -> StoreFuture<Vec<SiteRecord>> {
        done(Ok(self.tables().sites.values().cloned().collect()))
    }
}

impl GroupStorage for MemoryStore {
    fn create_group(&self, group: GroupRecord) -> StoreFuture<()> {
        let mut t = self.tables();
        if t.groups.contains_key(&group.name) {
            return done(Err(StoreError::Conflict(format!("group '{}' already exists", group.name))));
        }
        if let Some(missing) = t.missing_user(group.people().iter()) {
            return done(Err(missing));
        }
        t.groups.insert(group.name.clone(), group);
        done(Ok(()))
    }

    fn update_group(&self, mut group: GroupRecord) -> StoreFuture<()> {
        let mut t = self.tables();
        let Some(created_ms) = t.groups.get(&group.name).map(|g| g.created_ms) else {
            return done(Err(StoreError::NotFound(format!("group '{}' does not exist", group.name))));
        };
        if let Some(missing) = t.missing_user(group.people().iter()) {
            return done(Err(missing));
        }
        group.created_ms = created_ms;
        group.modified_ms = now_ms();
        t.groups.insert(group.name.clone(), group);
        done(Ok(()))
    }

    fn delete_group(&self, name: String) -> StoreFuture<bool> {
        let mut t = self.tables();
        for room in t.rooms.values_mut() {
            room.group_affiliations.remove(&name);
        }
        for workgroup in t.workgroups.values_mut() {
            workgroup.member_groups.remove(&name);
        }
        done(Ok(t.groups.remove(&name).is_some()))
    }

    fn group(&self, name: String) -> StoreFuture<Option<GroupRecord>> {
        done(Ok(self.tables().groups.get(&name).cloned()))
    }

    fn all_groups(&self) -> StoreFuture<Vec<GroupRecord>> {
        done(Ok(self.tables().groups.values().cloned().collect()))
    }

    fn set_membership(&self, group: String, username: String, admin: Option<bool>) -> StoreFuture<bool> {
        let mut t = self.tables();
        if let Some(missing) = t.missing_group(std::iter::once(&group)) {
            return done(Err(missing));
        }
        if let Some(missing) = t.missing_user(std::iter::once(&username)) {
            return done(Err(missing));
        }
        let record = t.groups.get_mut(&group).expect("checked above");
        let before = (record.members.contains(&username), record.admins.contains(&username));
        record.members.remove(&username);
        record.admins.remove(&username);
        match admin {
            Some(true) => record.admins.insert(username.clone()),
            Some(false) => record.members.insert(username.clone()),
            None => false,
        };
        let after = (record.members.contains(&username), record.admins.contains(&username));
        if before != after {
            record.modified_ms = now_ms();
        }
        done(Ok(before != after))
    }
}

impl Tables {
    fn filed(&self, owner: &str, folder: Folder, id: &str) -> Option<usize> {
        self.mailbox.iter().position(|(o, m)| o == owner && m.folder == folder && m.message_id == id)
    }

    fn file(&mut self, owner: &str, mail: Mail) {
        if let Some(at) = self.filed(owner, mail.folder, &mail.message_id) {
            self.mailbox.remove(at);
        }
        self.mailbox.push((owner.to_owned(), mail));
    }

    /// A message waiting for `owner`, as an inbox message.
    fn waiting(&self, owner: &str, id: i64) -> Option<Mail> {
        let (m, pending) = self.messages.get(&id)?;
        let live = m.expires_ms.is_none_or(|at| at > now_ms());
        (*pending && live && m.to_user == owner).then(|| Mail::waiting(owner, m))
    }
}

impl MailboxStorage for MemoryStore {
    fn put_mails(&self, owner: String, mails: Vec<Mail>) -> StoreFuture<()> {
        let mut t = self.tables();
        for mail in mails {
            t.file(&owner, mail);
        }
        done(Ok(()))
    }

    fn find_mails(&self, owner: String, folders: Vec<Folder>, ids: Vec<String>) -> StoreFuture<Vec<Mail>> {
        let t = self.tables();
        let found = folders
            .iter()
            .flat_map(|folder| ids.iter().map(move |id| (*folder, id)))
            .filter_map(|(folder, id)| t.filed(&owner, folder, id).map(|at| t.mailbox[at].1.clone()));
        done(Ok(found.collect()))
    }

    fn folder(&self, owner: String, folder: Folder, limit: usize) -> StoreFuture<Vec<Mail>> {
        let t = self.tables();
        let found: Vec<Mail> = if folder == Folder::Inbox {
            let ids = t.messages.iter().filter(|(_, (m, _))| matches!(m.kind, MessageKind::Chat | MessageKind::Normal));
            ids.filter_map(|(id, _)| t.waiting(&owner, *id)).take(limit).collect()
        } else {
            let rows = t.mailbox.iter().filter(|(o, m)| *o == owner && m.folder == folder && !m.marked);
            rows.map(|(_, m)| m.clone()).take(limit).collect()
        };
        done(Ok(found))
    }

    fn file_mail(
        &self,
        owner: String,
        folder: Folder,
        ids: Vec<String>,
        action: MailAction,
    ) -> StoreFuture<Vec<String>> {
        let mut t = self.tables();
        let mut found = Vec::new();
        for id in ids {
            let mail = match t.filed(&owner, folder, &id) {
                Some(at) => Some(t.mailbox.remove(at).1),
                None if folder == Folder::Inbox => {
                    let waiting = id.parse().ok().and_then(|archive_id| t.waiting(&owner, archive_id));
                    if let Some((_, pending)) = waiting.as_ref().and_then(|m| t.messages.get_mut(&m.archive_id?)) {
                        *pending = false;
                    }
                    waiting
                }
                None => None,
            };
            let Some(mut mail) = mail else { continue };
            match (action, folder) {
                (MailAction::Delete, Folder::Deleted) => {}
                (MailAction::Delete, _) => {
                    mail.folder = Folder::Deleted;
                    mail.marked = false;
                    t.file(&owner, mail);
                }
                (MailAction::Mark, _) => {
                    mail.marked = true;
                    t.file(&owner, mail);
                }
            }
            found.push(id);
        }
        done(Ok(found))
    }

    fn due_mail(&self, now_ms: i64, limit: usize) -> StoreFuture<Vec<(String, Mail)>> {
        let t = self.tables();
        let mut due: Vec<(String, Mail)> = t
            .mailbox
            .iter()
            .filter(|(_, m)| m.folder == Folder::Outbox && m.time_to_send_ms.is_some_and(|at| at <= now_ms))
            .cloned()
            .collect();
        due.sort_by_key(|(_, m)| m.time_to_send_ms);
        due.truncate(limit);
        done(Ok(due))
    }

    fn settle_mail(&self, owner: String, mail: Mail) -> StoreFuture<()> {
        let mut t = self.tables();
        if let Some(at) = t.filed(&owner, Folder::Outbox, &mail.message_id) {
            t.mailbox.remove(at);
        }
        t.file(&owner, mail);
        done(Ok(()))
    }
}

impl MessageStorage for MemoryStore {
    fn append_message(
        &self,
        message: NewMessage,
        deliver_to: Option<String>,
        after_commit: AfterCommit<Arc<StoredMessage>>,
    ) -> StoreFuture<Arc<StoredMessage>> {
        let stored = {
            let mut t = self.tables();
            let id = Self::next_id(&mut t);
            let stored = StoredMessage {
                id,
                stamp_ms: now_ms(),
                kind: message.kind,
                from_user: message.from.user.to_string(),
                from_resource: message.from.resource,
                to_user: message.to.user.to_string(),
                to_resource: message.to.resource,
                body: message.body,
                data: message.data,
                deliver_to,
                expires_ms: message.expires_ms,
            };
            t.messages.insert(id, (stored.clone(), true));
            Arc::new(stored)
        };
        after_commit(&stored);
        done(Ok(stored))
    }

    fn mark_delivered(&self, ids: Vec<i64>) {
        let mut t = self.tables();
        for id in ids {
            if let Some((_, pending)) = t.messages.get_mut(&id) {
                *pending = false;
            }
        }
    }

    fn mark_pending(&self, ids: Vec<i64>) -> StoreFuture<()> {
        let mut t = self.tables();
        for id in ids {
            if let Some((_, pending)) = t.messages.get_mut(&id) {
                *pending = true;
            }
        }
        done(Ok(()))
    }

    fn pending_for(&self, username: String) -> StoreFuture<Vec<StoredMessage>> {
        let t = self.tables();
        let now = now_ms();
        let pending = t
            .messages
            .values()
            .filter(|(m, pending)| *pending && m.to_user == username && m.expires_ms.is_none_or(|at| at > now));
        done(Ok(pending.map(|(m, _)| m.clone()).collect()))
    }

    fn retarget_pending(&self, username: String, resource: String) -> StoreFuture<()> {
        let mut t = self.tables();
        for (m, pending) in t.messages.values_mut() {
            if *pending && m.to_user == username && m.deliver_to.as_deref() == Some(resource.as_str()) {
                m.deliver_to = None;
            }
        }
        done(Ok(()))
    }

    fn received_since(&self, username: String, after_id: i64, limit: usize) -> StoreFuture<Vec<StoredMessage>> {
        let t = self.tables();
        let received = t.messages.range(after_id + 1..).map(|(_, (m, _))| m).filter(|m| m.to_user == username);
        done(Ok(received.take(limit).cloned().collect()))
    }

    fn history(&self, query: HistoryQuery) -> StoreFuture<Vec<StoredMessage>> {
        let t = self.tables();
        let mut found: Vec<StoredMessage> = t
            .messages
            .values()
            .map(|(m, _)| m)
            .filter(|m| m.from_user == query.username || m.to_user == query.username)
            .filter(|m| query.with.as_ref().is_none_or(|w| m.from_user == *w || m.to_user == *w))
            .filter(|m| query.start_ms.is_none_or(|s| m.stamp_ms >= s) && query.end_ms.is_none_or(|e| m.stamp_ms <= e))
            .filter(|m| query.keywords.as_ref().is_none_or(|k| m.body.to_lowercase().contains(&k.to_lowercase())))
            .filter(|m| query.before.is_none_or(|b| m.id < b) && query.after.is_none_or(|a| m.id > a))
            .cloned()
            .collect();
        // The newest `limit` (the oldest after `after`), oldest first, as SQLite answers.
        found.sort_by_key(|m| m.id);
        if query.after.is_some() {
            found.truncate(query.limit);
        } else {
            let skip = found.len().saturating_sub(query.limit);
            found.drain(..skip);
        }
        done(Ok(found))
    }

    fn peers_of(&self, username: String, limit: usize) -> StoreFuture<Vec<(String, i64, i64)>> {
        let t = self.tables();
        let mut newest: BTreeMap<String, (i64, i64)> = BTreeMap::new();
        for (m, _) in t.messages.values() {
            if !matches!(m.kind, MessageKind::Chat | MessageKind::Normal) {
                continue;
            }
            let peer = match (&m.from_user, &m.to_user) {
                (from, to) if *from == username && *to != username => to,
                (from, to) if *to == username && *from != username => from,
                _ => continue,
            };
            newest.insert(peer.clone(), (m.id, m.stamp_ms));
        }
        let mut peers: Vec<(String, i64, i64)> = newest.into_iter().map(|(p, (id, stamp))| (p, id, stamp)).collect();
        peers.sort_by_key(|(_, id, _)| std::cmp::Reverse(*id));
        peers.truncate(limit);
        done(Ok(peers))
    }
}

impl Tables {
    fn open_chat(&mut self, app_id: &str, kind: ChatKind, peer: &str, new_chat_id: &str) -> AppChat {
        if let Some(chat) = self.app_chats.iter().find(|c| c.app_id == app_id && c.kind == kind && c.peer == peer) {
            return chat.clone();
        }
        let chat = AppChat {
            chat_id: new_chat_id.into(),
            app_id: app_id.into(),
            kind,
            peer: peer.into(),
            created_ms: now_ms(),
        };
        self.app_chats.push(chat.clone());
        chat
    }
}

/// A new pending delivery of `message_id` in a chat, due at once.
fn pending_delivery(
    seq: i64,
    delivery_id: String,
    app_id: String,
    chat_id: String,
    kind: ChatKind,
    message_id: i64,
    at_ms: i64,
) -> Delivery {
    Delivery {
        seq,
        delivery_id,
        app_id,
        chat_id,
        kind,
        message_id,
        state: DeliveryState::Pending,
        attempts: 0,
        next_attempt_ms: at_ms,
        last_error: None,
        created_ms: at_ms,
    }
}

impl AppStorage for MemoryStore {
    fn create_app(&self, app: AppRecord, account: NewUser) -> StoreFuture<()> {
        // Ready at once, as every call here: the account first, then the app.
        match self.create_user(account).now_or_never() {
            Some(Ok(())) => {
                self.tables().apps.insert(app.id.clone(), app);
                done(Ok(()))
            }
            Some(Err(e)) => done(Err(e)),
            None => done(Err(StoreError::Unavailable)),
        }
    }

    fn update_app(&self, app: AppRecord) -> StoreFuture<()> {
        let mut t = self.tables();
        let Some(known) = t.apps.get_mut(&app.id) else {
            return done(Err(StoreError::NotFound(format!("app '{}' does not exist", app.id))));
        };
        *known = AppRecord { modified_ms: now_ms(), ..app };
        done(Ok(()))
    }

    fn delete_app(&self, id: String) -> StoreFuture<bool> {
        let removed = self.tables().apps.remove(&id);
        let Some(app) = removed else { return done(Ok(false)) };
        {
            let mut t = self.tables();
            t.app_chats.retain(|c| c.app_id != id);
            t.deliveries.retain(|d| d.app_id != id);
        }
        let deleted = self.delete_user(app.name);
        Box::pin(async move { deleted.await.map(|()| true) })
    }

    fn app(&self, id: String) -> StoreFuture<Option<AppRecord>> {
        done(Ok(self.tables().apps.get(&id).cloned()))
    }

    fn app_by_token(&self, digest: Vec<u8>) -> StoreFuture<Option<AppRecord>> {
        done(Ok(self.tables().apps.values().find(|a| a.token_digest == digest).cloned()))
    }

    fn all_apps(&self) -> StoreFuture<Vec<AppRecord>> {
        done(Ok(self.tables().apps.values().cloned().collect()))
    }

    fn append_for_app(
        &self,
        message: NewMessage,
        app_id: String,
        new_chat_id: String,
        delivery_id: String,
        after_commit: AfterCommit<Arc<StoredMessage>>,
    ) -> StoreFuture<(Arc<StoredMessage>, AppChat)> {
        // The memory store's futures are ready at once: this "commits" now, like the rest.
        let appended = self.append_message(message, None, Box::new(|_| {})).now_or_never();
        let stored = match appended {
            Some(Ok(stored)) => stored,
            Some(Err(e)) => return done(Err(e)),
            None => return done(Err(StoreError::Unavailable)),
        };
        let chat = {
            let mut t = self.tables();
            if let Some((_, pending)) = t.messages.get_mut(&stored.id) {
                *pending = false;
            }
            let chat = t.open_chat(&app_id, ChatKind::User, &stored.from_user, &new_chat_id);
            if t.apps.get(&app_id).is_some_and(|a| a.webhook_url.is_some()) {
                let seq = t.deliveries.last().map_or(1, |d| d.seq + 1);
                let chat_id = chat.chat_id.clone();
                let delivery =
                    pending_delivery(seq, delivery_id, app_id, chat_id, ChatKind::User, stored.id, stored.stamp_ms);
                t.deliveries.push(delivery);
            }
            chat
        };
        after_commit(&stored);
        done(Ok((stored, chat)))
    }

    fn open_chat(&self, app_id: String, kind: ChatKind, peer: String, new_chat_id: String) -> StoreFuture<AppChat> {
        done(Ok(self.tables().open_chat(&app_id, kind, &peer, &new_chat_id)))
    }

    fn close_chat(&self, app_id: String, kind: ChatKind, peer: String) -> StoreFuture<bool> {
        let mut t = self.tables();
        let before = t.app_chats.len();
        t.app_chats.retain(|c| !(c.app_id == app_id && c.kind == kind && c.peer == peer));
        done(Ok(t.app_chats.len() < before))
    }

    fn watched_rooms(&self) -> StoreFuture<Vec<String>> {
        let t = self.tables();
        let rooms: BTreeSet<String> =
            t.app_chats.iter().filter(|c| c.kind == ChatKind::Room).map(|c| c.peer.clone()).collect();
        done(Ok(rooms.into_iter().collect()))
    }

    fn append_watched_room_message(
        &self,
        message: NewRoomMessage,
        after_commit: AfterCommit<Arc<RoomMessage>>,
    ) -> StoreFuture<Arc<RoomMessage>> {
        let stored = match self.append_room_message(message, Box::new(|_| {})).now_or_never() {
            Some(Ok(stored)) => stored,
            Some(Err(e)) => return done(Err(e)),
            None => return done(Err(StoreError::Unavailable)),
        };
        {
            let mut t = self.tables();
            let watching: Vec<(String, String)> = t
                .app_chats
                .iter()
                .filter(|c| c.kind == ChatKind::Room && c.peer == stored.room)
                .filter(|c| {
                    t.apps.get(&c.app_id).is_some_and(|a| a.webhook_url.is_some() && a.name != stored.from_user)
                })
                .map(|c| (c.app_id.clone(), c.chat_id.clone()))
                .collect();
            for (app_id, chat_id) in watching {
                let seq = t.deliveries.last().map_or(1, |d| d.seq + 1);
                let id = format!("room-{seq}");
                t.deliveries.push(pending_delivery(
                    seq,
                    id,
                    app_id,
                    chat_id,
                    ChatKind::Room,
                    stored.id,
                    stored.stamp_ms,
                ));
            }
        }
        after_commit(&stored);
        done(Ok(stored))
    }

    fn chat(&self, chat_id: String) -> StoreFuture<Option<AppChat>> {
        done(Ok(self.tables().app_chats.iter().find(|c| c.chat_id == chat_id).cloned()))
    }

    fn chats(&self, app_id: String, offset: usize, limit: usize) -> StoreFuture<Vec<AppChat>> {
        let t = self.tables();
        done(Ok(t.app_chats.iter().filter(|c| c.app_id == app_id).skip(offset).take(limit).cloned().collect()))
    }

    fn pending_deliveries(&self, after_seq: i64, limit: usize) -> StoreFuture<Vec<Delivery>> {
        let t = self.tables();
        let pending = t.deliveries.iter().filter(|d| d.seq > after_seq && d.state == DeliveryState::Pending);
        done(Ok(pending.take(limit).cloned().collect()))
    }

    fn settle_deliveries(&self, settled: Vec<(i64, u32, DeliveryOutcome)>) -> StoreFuture<()> {
        let mut t = self.tables();
        for (seq, attempts, outcome) in settled {
            let Some(d) = t.deliveries.iter_mut().find(|d| d.seq == seq) else { continue };
            d.attempts = attempts;
            match outcome {
                DeliveryOutcome::Delivered => d.state = DeliveryState::Delivered,
                DeliveryOutcome::Retry { at_ms, error } => {
                    d.next_attempt_ms = at_ms;
                    d.last_error = Some(error);
                }
                DeliveryOutcome::Dead { error } => {
                    d.state = DeliveryState::Dead;
                    d.last_error = Some(error);
                }
            }
        }
        done(Ok(()))
    }

    fn deliveries(&self, app_id: String, state: Option<DeliveryState>, limit: usize) -> StoreFuture<Vec<Delivery>> {
        let t = self.tables();
        let found = t.deliveries.iter().rev().filter(|d| d.app_id == app_id && state.is_none_or(|s| d.state == s));
        done(Ok(found.take(limit).cloned().collect()))
    }

    fn replay_deliveries(&self, app_id: String, seq: Option<i64>) -> StoreFuture<usize> {
        let mut t = self.tables();
        let now = now_ms();
        let mut count = 0;
        for d in t.deliveries.iter_mut() {
            if d.app_id == app_id && d.state == DeliveryState::Dead && seq.is_none_or(|s| d.seq == s) {
                (d.state, d.attempts, d.next_attempt_ms, d.created_ms) = (DeliveryState::Pending, 0, now, now);
                count += 1;
            }
        }
        done(Ok(count))
    }

    fn outbox_depth(&self) -> StoreFuture<(u64, Option<i64>)> {
        let t = self.tables();
        let pending = t.deliveries.iter().filter(|d| d.state == DeliveryState::Pending);
        let (count, oldest) = pending
            .fold((0u64, None::<i64>), |(n, o), d| (n + 1, Some(o.map_or(d.created_ms, |o| o.min(d.created_ms)))));
        done(Ok((count, oldest)))
    }

    fn archived_message(&self, kind: ChatKind, id: i64) -> StoreFuture<Option<ChatMessage>> {
        let t = self.tables();
        let found = match kind {
            ChatKind::User => t.messages.get(&id).map(|(m, _)| ChatMessage {
                id,
                room: None,
                from_user: m.from_user.clone(),
                body: m.body.clone(),
                data: m.data.clone(),
                stamp_ms: m.stamp_ms,
            }),
            ChatKind::Room => t.room_messages.iter().find(|m| m.id == id).map(|m| ChatMessage {
                id,
                room: Some(m.room.clone()),
                from_user: m.from_user.clone(),
                body: m.body.clone(),
                data: m.data.clone(),
                stamp_ms: m.stamp_ms,
            }),
        };
        done(Ok(found))
    }
}

impl OzekiStorage for MemoryStore {
    fn add_station_key(&self, key: StationKey) -> StoreFuture<()> {
        let mut t = self.tables();
        if t.station_keys.iter().any(|k| k.station == key.station) {
            let taken = format!("station '{}' already has a key", key.station);
            return done(Err(StoreError::Conflict(taken)));
        }
        t.station_keys.push(key);
        done(Ok(()))
    }

    fn station_key(&self, digest: Vec<u8>) -> StoreFuture<Option<StationKey>> {
        done(Ok(self.tables().station_keys.iter().find(|k| k.digest == digest).cloned()))
    }

    fn station_key_of(&self, station: String) -> StoreFuture<Option<StationKey>> {
        done(Ok(self.tables().station_keys.iter().find(|k| k.station == station).cloned()))
    }

    fn station_keys(&self, username: String) -> StoreFuture<Vec<StationKey>> {
        done(Ok(self.tables().station_keys.iter().filter(|k| k.username == username).cloned().collect()))
    }

    fn delete_station_key(&self, username: String, station: String) -> StoreFuture<bool> {
        let mut t = self.tables();
        let before = t.station_keys.len();
        t.station_keys.retain(|k| !(k.username == username && k.station == station));
        done(Ok(t.station_keys.len() < before))
    }

    fn conversation(&self, conversation: String, username: String) -> StoreFuture<Option<ConversationProps>> {
        done(Ok(self.tables().conversations.get(&(conversation, username)).cloned()))
    }

    fn conversations(&self, username: String) -> StoreFuture<Vec<ConversationProps>> {
        let t = self.tables();
        let mut found: Vec<ConversationProps> =
            t.conversations.values().filter(|p| p.username == username).cloned().collect();
        found.sort_by(|a, b| a.peer.cmp(&b.peer));
        done(Ok(found))
    }

    fn save_conversation(&self, props: ConversationProps) -> StoreFuture<()> {
        self.tables().conversations.insert((props.conversation.clone(), props.username.clone()), props);
        done(Ok(()))
    }

    fn add_report(&self, report: ConversationReport) -> StoreFuture<()> {
        self.tables().reports.push(report);
        done(Ok(()))
    }

    fn reports(&self, conversation: String, since_ms: i64, limit: usize) -> StoreFuture<Vec<ConversationReport>> {
        let t = self.tables();
        let mut found: Vec<ConversationReport> =
            t.reports.iter().filter(|r| r.conversation == conversation && r.created_ms >= since_ms).cloned().collect();
        let skip = found.len().saturating_sub(limit);
        found.drain(..skip);
        done(Ok(found))
    }
}

impl RosterStorage for MemoryStore {
    fn roster(&self, owner: String) -> StoreFuture<Vec<RosterItem>> {
        let t = self.tables();
        let mut rows: BTreeMap<String, RosterItem> =
            t.roster.iter().filter(|((o, _), _)| *o == owner).map(|((_, c), row)| (c.clone(), row.clone())).collect();
        let peers: BTreeSet<String> =
            t.groups.values().filter(|g| g.shared && g.has(&owner)).flat_map(|g| g.people()).collect();
        for contact in peers.into_iter().filter(|p| *p != owner) {
            let row = with_shared(rows.remove(&contact), &owner, &contact, &t.shared_between(&owner, &contact));
            rows.extend(row.map(|row| (contact, row)));
        }
        done(Ok(rows.into_values().collect()))
    }

    fn change_roster(
        &self,
        owner: String,
        contact: String,
        rule: RosterRule,
        after_commit: AfterCommit<Transition>,
    ) -> StoreFuture<Transition> {
        let transition = {
            let mut t = self.tables();
            let mine = t.roster.get(&(owner.clone(), contact.clone())).cloned();
            let theirs = t.roster.get(&(contact.clone(), owner.clone())).cloned();
            let shared = t.shared_between(&owner, &contact);
            let transition = match rule(mine, theirs) {
                Ok(transition) => transition,
                Err(refused) => return done(Err(refusal_with_shared(refused, &owner, &contact, &shared))),
            };
            for side in [&transition.owner_side, &transition.contact_side] {
                let key = (side.owner.clone(), side.contact.clone());
                match &side.after {
                    Some(row) => t.roster.insert(key, row.clone()),
                    None => t.roster.remove(&key),
                };
            }
            transition_with_shared(transition, &shared)
        };
        after_commit(&transition);
        done(Ok(transition))
    }

    fn all_blocks(&self) -> StoreFuture<Vec<(String, String)>> {
        done(Ok(self.tables().blocks.iter().cloned().collect()))
    }

    fn set_block(&self, blocker: String, blocked: String, on: bool) -> StoreFuture<bool> {
        let mut t = self.tables();
        let pair = (blocker, blocked);
        done(Ok(if on { t.blocks.insert(pair) } else { t.blocks.remove(&pair) }))
    }
}

impl RoomStorage for MemoryStore {
    fn create_room(&self, room: RoomRecord) -> StoreFuture<()> {
        let mut t = self.tables();
        if t.rooms.contains_key(&room.name) {
            return done(Err(StoreError::Conflict(format!("room '{}' already exists", room.name))));
        }
        t.rooms.insert(room.name.clone(), room);
        done(Ok(()))
    }

    fn save_room(&self, room: RoomRecord) -> StoreFuture<()> {
        let mut t = self.tables();
        if let Some(missing) = t.missing_group(room.group_affiliations.keys()) {
            return done(Err(missing));
        }
        t.rooms.insert(room.name.clone(), room);
        done(Ok(()))
    }

    fn delete_room(&self, name: String) -> StoreFuture<()> {
        self.tables().rooms.remove(&name);
        done(Ok(()))
    }

    fn muc_services(&self) -> StoreFuture<Vec<MucServiceRecord>> {
        done(Ok(self.tables().muc_services.values().cloned().collect()))
    }

    fn add_muc_service(&self, service: MucServiceRecord) -> StoreFuture<()> {
        let mut t = self.tables();
        if t.muc_services.contains_key(&service.name) {
            return done(Err(StoreError::Conflict(format!("chat service '{}' already exists", service.name))));
        }
        t.muc_services.insert(service.name.clone(), service);
        done(Ok(()))
    }

    fn all_rooms(&self) -> StoreFuture<Vec<RoomRecord>> {
        done(Ok(self.tables().rooms.values().cloned().collect()))
    }

    fn stored_room(&self, name: String) -> StoreFuture<Option<RoomRecord>> {
        done(Ok(self.tables().rooms.get(&name).cloned()))
    }

    fn append_room_message(
        &self,
        message: NewRoomMessage,
        after_commit: AfterCommit<Arc<RoomMessage>>,
    ) -> StoreFuture<Arc<RoomMessage>> {
        let stored = {
            let mut t = self.tables();
            let id = Self::next_id(&mut t);
            let stored = message.stored(id, now_ms());
            t.room_messages.push(stored.clone());
            Arc::new(stored)
        };
        after_commit(&stored);
        done(Ok(stored))
    }

    fn room_messages(&self, q: RoomHistoryQuery) -> StoreFuture<Vec<RoomMessage>> {
        let t = self.tables();
        let wanted = |m: &&RoomMessage| {
            m.room == q.room
                && m.stamp_ms >= q.start_ms
                && q.end_ms.is_none_or(|e| m.stamp_ms <= e)
                && q.before.is_none_or(|b| m.id < b)
                && q.after.is_none_or(|a| m.id > a)
        };
        let mut found: Vec<RoomMessage> = t.room_messages.iter().filter(wanted).cloned().collect();
        if q.after.is_some() {
            found.truncate(q.limit);
        } else {
            let skip = found.len().saturating_sub(q.limit);
            found.drain(..skip);
        }
        done(Ok(found))
    }
}

impl WorkgroupStorage for MemoryStore {
    fn create_workgroup(&self, workgroup: WorkgroupRecord) -> StoreFuture<()> {
        let mut t = self.tables();
        if t.workgroups.contains_key(&workgroup.name) {
            return done(Err(StoreError::Conflict(format!("workgroup '{}' already exists", workgroup.name))));
        }
        if let Some(missing) = t.missing_user(workgroup.members.iter()) {
            return done(Err(missing));
        }
        if let Some(missing) = t.missing_group(workgroup.member_groups.iter()) {
            return done(Err(missing));
        }
        t.workgroups.insert(workgroup.name.clone(), workgroup);
        done(Ok(()))
    }

    fn update_workgroup(&self, workgroup: WorkgroupRecord) -> StoreFuture<()> {
        let mut t = self.tables();
        if let Some(missing) = t.missing_group(workgroup.member_groups.iter()) {
            return done(Err(missing));
        }
        t.workgroups.insert(workgroup.name.clone(), workgroup);
        done(Ok(()))
    }

    fn delete_workgroup(&self, name: String) -> StoreFuture<bool> {
        done(Ok(self.tables().workgroups.remove(&name).is_some()))
    }

    fn all_workgroups(&self) -> StoreFuture<Vec<WorkgroupRecord>> {
        done(Ok(self.tables().workgroups.values().cloned().collect()))
    }

    fn start_chat(&self, chat: ChatRecord) -> StoreFuture<()> {
        self.tables().chats.insert(chat.room.clone(), chat);
        done(Ok(()))
    }

    fn end_chat(&self, room: String, ended_ms: i64) -> StoreFuture<()> {
        if let Some(chat) = self.tables().chats.get_mut(&room) {
            chat.ended_ms = Some(ended_ms);
        }
        done(Ok(()))
    }

    fn workgroup_chat(&self, room: String) -> StoreFuture<Option<ChatRecord>> {
        done(Ok(self.tables().chats.get(&room).cloned()))
    }

    fn workgroup_chats(&self, workgroup: String, limit: usize) -> StoreFuture<Vec<ChatRecord>> {
        let t = self.tables();
        let mut chats: Vec<ChatRecord> = t.chats.values().filter(|c| c.workgroup == workgroup).cloned().collect();
        chats.sort_by_key(|c| std::cmp::Reverse(c.started_ms));
        chats.truncate(limit);
        done(Ok(chats))
    }
}
