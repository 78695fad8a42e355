//! User groups and vCards: the `user_groups`, `group_members` and `vcards` tables, and the
//! shared-roster query the roster reads use.

use std::collections::BTreeMap;

use rusqlite::{params, Connection, OptionalExtension};

use super::{StoreError, StoreResult};
use crate::clock::now_ms;
use crate::model::groups::GroupRecord;

/// Inserts a new group with its people; `Conflict` if the name is taken, `NotFound` for a
/// person without an account.
pub fn create(conn: &Connection, group: &GroupRecord) -> StoreResult<()> {
    let inserted = conn.execute(
        "INSERT INTO user_groups (name, description, shared, created_ms, modified_ms) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (name) DO NOTHING",
        params![group.name, group.description, group.shared, group.created_ms, group.modified_ms],
    )?;
    if inserted == 0 {
        return Err(StoreError::Conflict(format!("group '{}' already exists", group.name)));
    }
    write_people(conn, group)
}

/// Replaces a group's description, sharing and people; `NotFound` if it does not exist.
pub fn update(conn: &Connection, group: &GroupRecord) -> StoreResult<()> {
    let changed = conn.execute(
        "UPDATE user_groups SET description = ?2, shared = ?3, modified_ms = ?4 WHERE name = ?1",
        params![group.name, group.description, group.shared, now_ms()],
    )?;
    if changed == 0 {
        return Err(StoreError::NotFound(format!("group '{}' does not exist", group.name)));
    }
    write_people(conn, group)
}

fn write_people(conn: &Connection, group: &GroupRecord) -> StoreResult<()> {
    conn.execute("DELETE FROM group_members WHERE group_name = ?1", [&group.name])?;
    let mut exists = conn.prepare_cached("SELECT 1 FROM users WHERE username = ?1")?;
    let mut insert =
        conn.prepare_cached("INSERT INTO group_members (group_name, username, admin) VALUES (?1, ?2, ?3)")?;
    for person in group.people() {
        if exists.query_row([&person], |_| Ok(())).optional()?.is_none() {
            return Err(StoreError::NotFound(format!("user '{person}' does not exist")));
        }
        insert.execute(params![group.name, person, group.admins.contains(&person)])?;
    }
    Ok(())
}

/// False if there was none.
pub fn delete(conn: &Connection, name: &str) -> StoreResult<bool> {
    Ok(conn.execute("DELETE FROM user_groups WHERE name = ?1", [name])? > 0)
}

/// Every group with its people, by name.
pub fn load_all(conn: &Connection) -> StoreResult<Vec<GroupRecord>> {
    load(conn, None)
}

pub fn find(conn: &Connection, name: &str) -> StoreResult<Option<GroupRecord>> {
    Ok(load(conn, Some(name))?.pop())
}

fn load(conn: &Connection, only: Option<&str>) -> StoreResult<Vec<GroupRecord>> {
    let mut groups: BTreeMap<String, GroupRecord> = BTreeMap::new();
    let mut stmt = conn.prepare_cached(
        "SELECT name, description, shared, created_ms, modified_ms FROM user_groups
         WHERE ?1 IS NULL OR name = ?1",
    )?;
    let rows = stmt.query_map([only], |r| {
        Ok(GroupRecord {
            name: r.get(0)?,
            description: r.get(1)?,
            shared: r.get(2)?,
            members: Default::default(),
            admins: Default::default(),
            created_ms: r.get(3)?,
            modified_ms: r.get(4)?,
        })
    })?;
    for row in rows {
        let group = row?;
        groups.insert(group.name.clone(), group);
    }
    let mut stmt = conn
        .prepare_cached("SELECT group_name, username, admin FROM group_members WHERE ?1 IS NULL OR group_name = ?1")?;
    let rows =
        stmt.query_map([only], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, bool>(2)?)))?;
    for row in rows {
        let (group, username, admin) = row?;
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
pub fn set_membership(conn: &Connection, group: &str, username: &str, admin: Option<bool>) -> StoreResult<bool> {
    if conn.query_row("SELECT 1 FROM user_groups WHERE name = ?1", [group], |_| Ok(())).optional()?.is_none() {
        return Err(StoreError::NotFound(format!("group '{group}' does not exist")));
    }
    if conn.query_row("SELECT 1 FROM users WHERE username = ?1", [username], |_| Ok(())).optional()?.is_none() {
        return Err(StoreError::NotFound(format!("user '{username}' does not exist")));
    }
    let changed = match admin {
        None => conn.execute("DELETE FROM group_members WHERE group_name = ?1 AND username = ?2", [group, username])?,
        Some(admin) => conn.execute(
            "INSERT INTO group_members (group_name, username, admin) VALUES (?1, ?2, ?3)
             ON CONFLICT (group_name, username) DO UPDATE SET admin = excluded.admin WHERE admin != excluded.admin",
            params![group, username, admin],
        )?,
    };
    if changed > 0 {
        conn.execute("UPDATE user_groups SET modified_ms = ?2 WHERE name = ?1", params![group, now_ms()])?;
    }
    Ok(changed > 0)
}

/// The shared groups `owner` is in, by each other person of them: (contact, group names).
pub fn shared_peers(conn: &Connection, owner: &str) -> StoreResult<BTreeMap<String, Vec<String>>> {
    let mut stmt = conn.prepare_cached(
        "SELECT other.username, g.name FROM group_members me
         JOIN user_groups g ON g.name = me.group_name AND g.shared = 1
         JOIN group_members other ON other.group_name = g.name AND other.username != me.username
         WHERE me.username = ?1 ORDER BY g.name",
    )?;
    let rows = stmt.query_map([owner], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    let mut peers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for row in rows {
        let (contact, group) = row?;
        peers.entry(contact).or_default().push(group);
    }
    Ok(peers)
}

/// The shared groups both users are in, by name.
pub fn shared_between(conn: &Connection, a: &str, b: &str) -> StoreResult<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT g.name FROM user_groups g
         JOIN group_members x ON x.group_name = g.name AND x.username = ?1
         JOIN group_members y ON y.group_name = g.name AND y.username = ?2
         WHERE g.shared = 1 ORDER BY g.name",
    )?;
    let rows = stmt.query_map([a, b], |r| r.get::<_, String>(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn vcard(conn: &Connection, username: &str) -> StoreResult<Option<String>> {
    Ok(conn.query_row("SELECT vcard FROM vcards WHERE username = ?1", [username], |r| r.get(0)).optional()?)
}

/// Writes (`Some`) or removes a user's vCard; false if there was nothing to remove.
/// `NotFound` for no such user.
pub fn put_vcard(conn: &Connection, username: &str, vcard: Option<&str>) -> StoreResult<bool> {
    if conn.query_row("SELECT 1 FROM users WHERE username = ?1", [username], |_| Ok(())).optional()?.is_none() {
        return Err(StoreError::NotFound(format!("user '{username}' does not exist")));
    }
    let changed = match vcard {
        None => conn.execute("DELETE FROM vcards WHERE username = ?1", [username])?,
        Some(vcard) => conn.execute(
            "INSERT INTO vcards (username, vcard, modified_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT (username) DO UPDATE SET vcard = excluded.vcard, modified_ms = excluded.modified_ms",
            params![username, vcard, now_ms()],
        )?,
    };
    Ok(changed > 0)
}
