//! User groups, as Openfire keeps them: a named set of users (members and admins), which
//! may share a roster (every person in it sees the others as contacts, both ways), hold a
//! room affiliation, or staff a workgroup. [`with_shared`] is what sharing does to a roster
//! row; the store applies it to every row it reads and reports.

use std::collections::BTreeSet;

use super::records::{RosterItem, Subscription, Transition};

/// A group as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRecord {
    pub name: String,
    pub description: String,
    /// Its people see each other in their contacts (Openfire's shared roster).
    pub shared: bool,
    pub members: BTreeSet<String>,
    /// Admins of the group are people of it too (Openfire counts them in its shared roster).
    pub admins: BTreeSet<String>,
    pub created_ms: i64,
    pub modified_ms: i64,
}

impl GroupRecord {
    pub fn new(name: String) -> Self {
        let now = crate::clock::now_ms();
        GroupRecord {
            name,
            description: String::new(),
            shared: false,
            members: BTreeSet::new(),
            admins: BTreeSet::new(),
            created_ms: now,
            modified_ms: now,
        }
    }

    /// Its members and admins.
    pub fn people(&self) -> BTreeSet<String> {
        self.members.union(&self.admins).cloned().collect()
    }

    pub fn has(&self, username: &str) -> bool {
        self.members.contains(username) || self.admins.contains(username)
    }
}

/// A group name as the admin API accepts it: 1–64 characters, no control characters or
/// `/`, not only spaces.
pub fn check_group_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err("a group name must not be empty".into());
    }
    if name.chars().count() > 64 {
        return Err(format!("group name {name:?} is longer than 64 characters"));
    }
    if name.chars().any(|c| c.is_control() || c == '/') {
        return Err(format!("group name {name:?} holds a control character or '/'"));
    }
    Ok(())
}

/// The row `owner` sees of `contact` when they share the groups `shared`: listed, with a
/// subscription both ways and those groups added; without shared groups, `stored` as it is.
pub fn with_shared(stored: Option<RosterItem>, owner: &str, contact: &str, shared: &[String]) -> Option<RosterItem> {
    if shared.is_empty() {
        return stored;
    }
    let mut row = stored.unwrap_or_else(|| RosterItem::new(owner, contact));
    row.listed = true;
    row.subscription = Subscription::Both;
    row.ask_out = false;
    row.pending_in = false;
    for group in shared {
        if !row.groups.contains(group) {
            row.groups.push(group.clone());
        }
    }
    Some(row)
}

/// A transition as both sides see it when they share the groups `shared`: each row with
/// [`with_shared`], and no subscription notices (there is nothing to ask or answer).
pub fn transition_with_shared(mut transition: Transition, shared: &[String]) -> Transition {
    if shared.is_empty() {
        return transition;
    }
    for side in [&mut transition.owner_side, &mut transition.contact_side] {
        side.before = with_shared(side.before.take(), &side.owner, &side.contact, shared);
        side.after = with_shared(side.after.take(), &side.owner, &side.contact, shared);
    }
    transition.notices.clear();
    transition
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admins_are_people_of_the_group() {
        let mut group = GroupRecord::new("staff".into());
        group.members.insert("ann".into());
        group.admins.insert("bob".into());
        assert!(group.has("bob") && group.has("ann") && !group.has("eve"));
        assert_eq!(group.people().into_iter().collect::<Vec<_>>(), ["ann", "bob"]);
    }

    #[test]
    fn group_names_are_checked() {
        assert!(check_group_name("Sales team").is_ok());
        assert!(check_group_name(" ").is_err());
        assert!(check_group_name("a/b").is_err());
        assert!(check_group_name(&"x".repeat(65)).is_err());
    }
}
