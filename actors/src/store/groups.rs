//! User groups and vCards: the `user_groups`, `group_members` and `vcards` tables, and the
//! shared-roster query the roster reads use.

use std::collections::BTreeMap;

use super::db::{args, Db};

use super::{StoreError, StoreResult};
use crate::clock::now_ms;
use crate::model::groups::GroupRecord;

/// Inserts a new group with its people; `Conflict` if the name is taken, `NotFound` for a
/// person without an account.
pub fn create(conn: &Db, group: &GroupRecord) -> StoreResult<()> {
    let inserted = conn.execute(
        "INSERT INTO user_groups (name, description, shared, created_ms, modified_ms) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (name) DO NOTHING",
        args![group.name, group.description, group.shared, group.created_ms, group.modified_ms],
    )?;
    if inserted == 0 {
        return Err(StoreError::Conflict(format!("group '{}' already exists", group.name)));
    }
    write_people(conn, group)
}

/// Replaces a group's description, sharing and people; `NotFound` if it does not exist.
pub fn update(conn: &Db, group: &GroupRecord) -> StoreResult<()> {
    let changed = conn.execute(
        "UPDATE user_groups SET description = ?2, shared = ?3, modified_ms = ?4 WHERE name = ?1",
        args![group.name, group.description, group.shared, now_ms()],
    )?;
    if changed == 0 {
        return Err(StoreError::NotFound(format!("group '{}' does not exist", group.name)));
    }
    write_people(conn, group)
}

fn write_people(conn: &Db, group: &GroupRecord) -> StoreResult<()> {
    conn.execute("DELETE FROM group_members WHERE group_name = ?1", args![&group.name])?;
    for person in group.people() {
        if !conn.exists("SELECT 1 FROM users WHERE username = ?1", args![&person])? {
            return Err(StoreError::NotFound(format!("user '{person}' does not exist")));
        }
        conn.execute(
            "INSERT INTO group_members (group_name, username, admin) VALUES (?1, ?2, ?3)",
            args![group.name, person, group.admins.contains(&person)],
        )?;
    }
    Ok(())
}

/// False if there was none.
pub fn delete(conn: &Db, name: &str) -> StoreResult<bool> {
    Ok(conn.execute("DELETE FROM user_groups WHERE name = ?1", args![name])? > 0)
}

/// Every group with its people, by name.
pub fn load_all(conn: &Db) -> StoreResult<Vec<GroupRecord>> {
    load(conn, None)
}

pub fn find(conn: &Db, name: &str) -> StoreResult<Option<GroupRecord>> {
    Ok(load(conn, Some(name))?.pop())
}

fn load(conn: &Db, only: Option<&str>) -> StoreResult<Vec<GroupRecord>> {
    let mut groups: BTreeMap<String, GroupRecord> = BTreeMap::new();
    let rows = conn.query_map(
        "SELECT name, description, shared, created_ms, modified_ms FROM user_groups
         WHERE CAST(?1 AS TEXT) IS NULL OR name = ?1",
        args![only],
        |r| {
            Ok(GroupRecord {
                name: r.get(0)?,
                description: r.get(1)?,
                shared: r.get(2)?,
                members: Default::default(),
                admins: Default::default(),
                created_ms: r.get(3)?,
                modified_ms: r.get(4)?,
            })
        },
    )?;
    for group in rows {
        groups.insert(group.name.clone(), group);
    }
    let rows = conn.query_map(
        "SELECT group_name, username, admin FROM group_members WHERE CAST(?1 AS TEXT) IS NULL OR group_name = ?1",
        args![only],
        |r| Ok((r.get::<String>(0)?, r.get::<String>(1)?, r.get::<bool>(2)?)),
    )?;
    for (group, username, admin) in rows {
        if let Some(record) = groups.get_mut(&group) {
            if admin {
                record.admins.insert(username);
            } else {
                record.members.insert(username);
            }
        }
    }
    Ok(groups.into_values().collect())
}

/// Makes `username` a member (`Some(false)`), an admin (`Some(true)`) or no longer one of
/// the group (`None`); false if nothing changed. `NotFound` for no such group or user.
pub fn set_membership(conn: &Db, group: &str, username: &str, admin: Option<bool>) -> StoreResult<bool> {
    if !conn.exists("SELECT 1 FROM user_groups WHERE name = ?1", args![group])? {
        return Err(StoreError::NotFound(format!("group '{group}' does not exist")));
    }
    if !conn.exists("SELECT 1 FROM users WHERE username = ?1", args![username])? {
        return Err(StoreError::NotFound(format!("user '{username}' does not exist")));
    }
    let changed = match admin {
        None => {
            conn.execute("DELETE FROM group_members WHERE group_name = ?1 AND username = ?2", args![group, username])?
        }
        Some(admin) => conn.execute(
            "INSERT INTO group_members (group_name, username, admin) VALUES (?1, ?2, ?3)
             ON CONFLICT (group_name, username) DO UPDATE SET admin = excluded.admin WHERE group_members.admin <> excluded.admin",
            args![group, username, admin],
        )?,
    };
    if changed > 0 {
        conn.execute("UPDATE user_groups SET modified_ms = ?2 WHERE name = ?1", args![group, now_ms()])?;
    }
    Ok(changed > 0)
}

/// The shared groups `owner` is in, by each other person of them: (contact, group names).
pub fn shared_peers(conn: &Db, owner: &str) -> StoreResult<BTreeMap<String, Vec<String>>> {
    let rows = conn.query_map(
        "SELECT other.username, g.name FROM group_members me
         JOIN user_groups g ON g.name = me.group_name AND g.shared = 1
         JOIN group_members other ON other.group_name = g.name AND other.username != me.username
         WHERE me.username = ?1 ORDER BY g.name",
        args![owner],
        |r| Ok((r.get::<String>(0)?, r.get::<String>(1)?)),
    )?;
    let mut peers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (contact, group) in rows {
        peers.entry(contact).or_default().push(group);
    }
    Ok(peers)
}

/// The shared groups both users are in, by name.
pub fn shared_between(conn: &Db, a: &str, b: &str) -> StoreResult<Vec<String>> {
    let rows = conn.query_map(
        "SELECT g.name FROM user_groups g
         JOIN group_members x ON x.group_name = g.name AND x.username = ?1
         JOIN group_members y ON y.group_name = g.name AND y.username = ?2
         WHERE g.shared = 1 ORDER BY g.name",
        args![a, b],
        |r| r.get::<String>(0),
    )?;
    Ok(rows)
}

pub fn vcard(conn: &Db, username: &str) -> StoreResult<Option<String>> {
    conn.query_opt("SELECT vcard FROM vcards WHERE username = ?1", args![username], |r| r.get(0))
}

/// Writes (`Some`) or removes a user's vCard; false if there was nothing to remove.
/// `NotFound` for no such user.
pub fn put_vcard(conn: &Db, username: &str, vcard: Option<&str>) -> StoreResult<bool> {
    if !conn.exists("SELECT 1 FROM users WHERE username = ?1", args![username])? {
        return Err(StoreError::NotFound(format!("user '{username}' does not exist")));
    }
    let changed = match vcard {
        None => conn.execute("DELETE FROM vcards WHERE username = ?1", args![username])?,
        Some(vcard) => conn.execute(
            "INSERT INTO vcards (username, vcard, modified_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT (username) DO UPDATE SET vcard = excluded.vcard, modified_ms = excluded.modified_ms",
            args![username, vcard, now_ms()],
        )?,
    };
    Ok(changed > 0)
}
