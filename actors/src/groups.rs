//! `Groups`: the one way to create, change and delete a user group, and the
//! [`GroupIndex`] the rooms and workgroups resolve groups with.
//!
//! A change is written by the store first. Then the index follows, and when the change
//! touches a shared group (Openfire's shared rosters), the router has the online people it
//! touches reload their rosters: their stations get roster pushes and the presence that
//! sharing now allows or no longer allows, on every door.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock};

use actix::{Addr, Message, Recipient};

use crate::model::groups::GroupRecord;
use crate::router::{RostersStale, Router};
use crate::storage::{GroupStorage, Storage, StoreError, StoreResult};

/// Who is in which group (members and admins), read by rooms (group affiliations) and
/// workgroups (agents by group) without asking anyone. Kept by [`Groups`].
#[derive(Default)]
pub struct GroupIndex {
    people: RwLock<HashMap<String, BTreeSet<String>>>,
}

impl GroupIndex {
    /// The index of every stored group.
    pub async fn load(storage: &Storage) -> StoreResult<Arc<GroupIndex>> {
        let groups = storage.groups.all_groups().await?;
        let index = GroupIndex::default();
        for group in &groups {
            index.set(group);
        }
        Ok(Arc::new(index))
    }

    /// Whether `username` is a member or admin of `group`.
    pub fn contains(&self, group: &str, username: &str) -> bool {
        self.read().get(group).is_some_and(|people| people.contains(username))
    }

    /// Whether `username` is in any of `groups`.
    pub fn in_any<'a>(&self, groups: impl IntoIterator<Item = &'a String>, username: &str) -> bool {
        let people = self.read();
        groups.into_iter().any(|g| people.get(g).is_some_and(|p| p.contains(username)))
    }

    /// Whether `username` is one of `members` or in one of `groups` (a workgroup's agents).
    pub fn admits(&self, members: &BTreeSet<String>, groups: &BTreeSet<String>, username: &str) -> bool {
        members.contains(username) || self.in_any(groups, username)
    }

    pub fn exists(&self, group: &str) -> bool {
        self.read().contains_key(group)
    }

    /// The groups `username` is in, sorted.
    pub fn groups_of(&self, username: &str) -> Vec<String> {
        let mut found: Vec<String> =
            self.read().iter().filter(|(_, people)| people.contains(username)).map(|(g, _)| g.clone()).collect();
        found.sort();
        found
    }

    fn set(&self, group: &GroupRecord) {
        self.write().insert(group.name.clone(), group.people());
    }

    fn remove(&self, group: &str) {
        self.write().remove(group);
    }

    fn forget_user(&self, username: &str) {
        for people in self.write().values_mut() {
            people.remove(username);
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, BTreeSet<String>>> {
        self.people.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, BTreeSet<String>>> {
        self.people.write().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A group's people changed, or it was deleted: rooms and workgroups that name it apply
/// their rules again (an outcast group's new person leaves, a workgroup's agent no longer in
/// the group goes offline). Sent by [`Groups`] after the commit and the index update.
#[derive(Message, Clone, Debug)]
#[rtype(result = "()")]
pub struct GroupChanged {
    pub group: String,
    pub deleted: bool,
}

/// User groups.
#[derive(Clone)]
pub struct Groups {
    storage: Arc<dyn GroupStorage>,
    index: Arc<GroupIndex>,
    router: Addr<Router>,
    /// Who hears of [`GroupChanged`] (the conference, the workgroup registry).
    listeners: Arc<Vec<Recipient<GroupChanged>>>,
}

impl Groups {
    pub fn new(storage: &Storage, index: Arc<GroupIndex>, router: Addr<Router>) -> Groups {
        Groups { storage: storage.groups.clone(), index, router, listeners: Arc::default() }
    }

    /// These hear of every change to a group's people and of its deletion.
    pub fn with_listeners(mut self, listeners: Vec<Recipient<GroupChanged>>) -> Self {
        self.listeners = Arc::new(listeners);
        self
    }

    fn tell(&self, group: &str, deleted: bool) {
        for listener in self.listeners.iter() {
            listener.do_send(GroupChanged { group: group.to_owned(), deleted });
        }
    }

    pub fn index(&self) -> &Arc<GroupIndex> {
        &self.index
    }

    /// `Conflict` if the name is taken, `NotFound` for a person without an account.
    pub async fn create(&self, group: GroupRecord) -> StoreResult<()> {
        self.storage.create_group(group.clone()).await?;
        self.index.set(&group);
        if group.shared {
            self.rosters_changed(group.people());
        }
        Ok(())
    }

    /// Replaces a group's description, sharing and people (`NotFound` if there is none).
    pub async fn update(&self, group: GroupRecord) -> StoreResult<()> {
        let before = self.require(&group.name).await?;
        self.storage.update_group(group.clone()).await?;
        self.index.set(&group);
        self.after_change(&before, Some(&group));
        if before.people() != group.people() {
            self.tell(&group.name, false);
        }
        Ok(())
    }

    /// False if there was none.
    pub async fn delete(&self, name: &str) -> StoreResult<bool> {
        let Some(before) = self.find(name).await? else { return Ok(false) };
        let deleted = self.storage.delete_group(name.to_owned()).await?;
        self.index.remove(name);
        self.after_change(&before, None);
        self.tell(name, true);
        Ok(deleted)
    }

    pub async fn find(&self, name: &str) -> StoreResult<Option<GroupRecord>> {
        self.storage.group(name.to_owned()).await
    }

    pub async fn require(&self, name: &str) -> StoreResult<GroupRecord> {
        self.find(name).await?.ok_or_else(|| StoreError::NotFound(format!("group '{name}' does not exist")))
    }

    /// Every group, by name.
    pub async fn list(&self) -> StoreResult<Vec<GroupRecord>> {
        self.storage.all_groups().await
    }

    /// Puts `username` in the group as a member (`Some(false)`) or admin (`Some(true)`), or
    /// takes it out (`None`); false if nothing changed.
    pub async fn set_membership(&self, group: &str, username: &str, admin: Option<bool>) -> StoreResult<bool> {
        let changed = self.storage.set_membership(group.to_owned(), username.to_owned(), admin).await?;
        if changed {
            let after = self.require(group).await?;
            self.index.set(&after);
            self.tell(group, false);
            if after.shared {
                let mut touched = after.people();
                touched.insert(username.to_owned());
                self.rosters_changed(touched);
            }
        }
        Ok(changed)
    }

    /// A deleted account leaves every group (the store dropped its memberships).
    pub fn forget_user(&self, username: &str) {
        self.index.forget_user(username);
    }

    fn after_change(&self, before: &GroupRecord, after: Option<&GroupRecord>) {
        let shared_after = after.is_some_and(|g| g.shared);
        if !before.shared && !shared_after {
            return; // Nobody's roster shows it.
        }
        let unchanged = after.is_some_and(|g| g.shared == before.shared && g.people() == before.people());
        if unchanged {
            return;
        }
        let mut touched = before.people();
        touched.extend(after.map(GroupRecord::people).unwrap_or_default());
        self.rosters_changed(touched);
    }

    fn rosters_changed(&self, usernames: BTreeSet<String>) {
        self.router.do_send(RostersStale { usernames: usernames.into_iter().collect() });
    }
}
