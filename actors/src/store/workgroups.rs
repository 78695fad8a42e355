//! Fastpath workgroups: the `workgroups`, `workgroup_members` and `workgroup_chats` tables.

use std::collections::BTreeMap;

use rusqlite::{params, Connection, OptionalExtension};

use super::{StoreError, StoreResult};
use crate::model::records::{ChatRecord, WorkgroupRecord};

/// Inserts a new workgroup with its members; `Conflict` if the name is taken, `NotFound`
/// if a member has no account.
pub fn create(conn: &Connection, workgroup: &WorkgroupRecord) -> StoreResult<()> {
    write(conn, workgroup, true)
}

/// Replaces a workgroup's settings and members; `NotFound` if it does not exist.
pub fn update(conn: &Connection, workgroup: &WorkgroupRecord) -> StoreResult<()> {
    write(conn, workgroup, false)
}

fn write(conn: &Connection, workgroup: &WorkgroupRecord, create: bool) -> StoreResult<()> {
    // Both statements take the same numbered values; an update keeps `created_ms` (?7).
    let sql = if create {
        "INSERT INTO workgroups (name, description, open, max_chats, offer_timeout_ms, request_timeout_ms,
                                 created_ms, modified_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (name) DO NOTHING"
    } else {
        "UPDATE workgroups SET description = ?2, open = ?3, max_chats = ?4, offer_timeout_ms = ?5,
                               request_timeout_ms = ?6, modified_ms = ?8
         WHERE name = ?1"
    };
    let changed = conn.execute(
        sql,
        params![
            workgroup.name,
            workgroup.description,
            workgroup.open,
            workgroup.max_chats,
            workgroup.offer_timeout_ms,
            workgroup.request_timeout_ms,
            workgroup.created_ms,
            workgroup.modified_ms
        ],
    )?;
    match (changed, create) {
        (0, true) => Err(StoreError::Conflict(format!("workgroup '{}' already exists", workgroup.name))),
        (0, false) => Err(StoreError::NotFound(format!("workgroup '{}' does not exist", workgroup.name))),
        _ => write_members(conn, workgroup),
    }
}

fn write_members(conn: &Connection, workgroup: &WorkgroupRecord) -> StoreResult<()> {
    conn.execute("DELETE FROM workgroup_members WHERE workgroup = ?1", [&workgroup.name])?;
    let mut exists = conn.prepare_cached("SELECT 1 FROM users WHERE username = ?1")?;
    let mut insert = conn.prepare_cached("INSERT INTO workgroup_members (workgroup, username) VALUES (?1, ?2)")?;
    for member in &workgroup.members {
        if exists.query_row([member], |_| Ok(())).optional()?.is_none() {
            return Err(StoreError::NotFound(format!("member '{member}' has no account")));
        }
        insert.execute(params![workgroup.name, member])?;
    }
    conn.execute("DELETE FROM workgroup_member_groups WHERE workgroup = ?1", [&workgroup.name])?;
    let mut exists = conn.prepare_cached("SELECT 1 FROM user_groups WHERE name = ?1")?;
    let mut insert =
        conn.prepare_cached("INSERT INTO workgroup_member_groups (workgroup, group_name) VALUES (?1, ?2)")?;
    for group in &workgroup.member_groups {
        if exists.query_row([group], |_| Ok(())).optional()?.is_none() {
            return Err(StoreError::NotFound(format!("group '{group}' does not exist")));
        }
        insert.execute(params![workgroup.name, group])?;
    }
    Ok(())
}

/// Removes a workgroup and its members; resolves to false if there was none. Its chats'
/// records and transcripts stay.
pub fn delete(conn: &Connection, name: &str) -> StoreResult<bool> {
    Ok(conn.execute("DELETE FROM workgroups WHERE name = ?1", [name])? > 0)
}

/// Every workgroup with its members.
pub fn load_all(conn: &Connection) -> StoreResult<Vec<WorkgroupRecord>> {
    let mut workgroups: BTreeMap<String, WorkgroupRecord> = BTreeMap::new();
    let mut stmt = conn.prepare(
        "SELECT name, description, open, max_chats, offer_timeout_ms, request_timeout_ms, created_ms, modified_ms
         FROM workgroups",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(WorkgroupRecord {
            name: r.get(0)?,
            description: r.get(1)?,
            members: Default::default(),
            member_groups: Default::default(),
            open: r.get(2)?,
            max_chats: r.get(3)?,
            offer_timeout_ms: r.get(4)?,
            request_timeout_ms: r.get(5)?,
            created_ms: r.get(6)?,
            modified_ms: r.get(7)?,
        })
    })?;
    for row in rows {
        let workgroup = row?;
        workgroups.insert(workgroup.name.clone(), workgroup);
    }
    let mut stmt = conn.prepare("SELECT workgroup, username FROM workgroup_members")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    for row in rows {
        let (workgroup, username) = row?;
        if let Some(record) = workgroups.get_mut(&workgroup) {
            record.members.insert(username);
        }
    }
    let mut stmt = conn.prepare("SELECT workgroup, group_name FROM workgroup_member_groups")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    for row in rows {
        let (workgroup, group) = row?;
        if let Some(record) = workgroups.get_mut(&workgroup) {
            record.member_groups.insert(group);
        }
    }
    Ok(workgroups.into_values().collect())
}

/// Records a chat a workgroup set up.
pub fn start_chat(conn: &Connection, chat: &ChatRecord) -> StoreResult<()> {
    conn.execute(
        "INSERT INTO workgroup_chats (room, workgroup, visitor, agent, question, email, started_ms, ended_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            chat.room,
            chat.workgroup,
            chat.visitor,
            chat.agent,
            chat.question,
            chat.email,
            chat.started_ms,
            chat.ended_ms
        ],
    )?;
    Ok(())
}

/// Records when a chat's room ended.
pub fn end_chat(conn: &Connection, room: &str, ended_ms: i64) -> StoreResult<()> {
    conn.execute(
        "UPDATE workgroup_chats SET ended_ms = ?2 WHERE room = ?1 AND ended_ms IS NULL",
        params![room, ended_ms],
    )?;
    Ok(())
}

/// One chat, by its room.
pub fn chat(conn: &Connection, room: &str) -> StoreResult<Option<ChatRecord>> {
    let mut stmt = conn.prepare_cached(
        "SELECT room, workgroup, visitor, agent, question, email, started_ms, ended_ms FROM workgroup_chats
         WHERE room = ?1",
    )?;
    Ok(stmt.query_row([room], chat_row).optional()?)
}

fn chat_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ChatRecord> {
    Ok(ChatRecord {
        room: r.get(0)?,
        workgroup: r.get(1)?,
        visitor: r.get(2)?,
        agent: r.get(3)?,
        question: r.get(4)?,
        email: r.get(5)?,
        started_ms: r.get(6)?,
        ended_ms: r.get(7)?,
    })
}

/// A workgroup's chats, newest first, at most `limit`.
pub fn chats(conn: &Connection, workgroup: &str, limit: usize) -> StoreResult<Vec<ChatRecord>> {
    let mut stmt = conn.prepare_cached(
        "SELECT room, workgroup, visitor, agent, question, email, started_ms, ended_ms FROM workgroup_chats
         WHERE workgroup = ?1 ORDER BY started_ms DESC, room LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![workgroup, limit as i64], chat_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}
