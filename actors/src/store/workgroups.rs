//! Fastpath workgroups: the `workgroups`, `workgroup_members` and `workgroup_chats` tables.

use std::collections::BTreeMap;

use super::db::{args, Db, Row};

use super::{StoreError, StoreResult};
use crate::model::records::{ChatRecord, WorkgroupRecord};

/// Inserts a new workgroup with its members; `Conflict` if the name is taken, `NotFound`
/// if a member has no account.
pub fn create(conn: &Db, workgroup: &WorkgroupRecord) -> StoreResult<()> {
    write(conn, workgroup, true)
}

/// Replaces a workgroup's settings and members; `NotFound` if it does not exist.
pub fn update(conn: &Db, workgroup: &WorkgroupRecord) -> StoreResult<()> {
    write(conn, workgroup, false)
}

fn write(conn: &Db, workgroup: &WorkgroupRecord, create: bool) -> StoreResult<()> {
    // Both statements take the same numbered values; an update keeps `created_ms` (?7, only
    // compared with itself, so that it has a type on PostgreSQL).
    let sql = if create {
        "INSERT INTO workgroups (name, description, open, max_chats, offer_timeout_ms, request_timeout_ms,
                                 created_ms, modified_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (name) DO NOTHING"
    } else {
        "UPDATE workgroups SET description = ?2, open = ?3, max_chats = ?4, offer_timeout_ms = ?5,
                               request_timeout_ms = ?6, modified_ms = ?8
         WHERE name = ?1 AND CAST(?7 AS BIGINT) = CAST(?7 AS BIGINT)"
    };
    let changed = conn.execute(
        sql,
        args![
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

fn write_members(conn: &Db, workgroup: &WorkgroupRecord) -> StoreResult<()> {
    conn.execute("DELETE FROM workgroup_members WHERE workgroup = ?1", args![&workgroup.name])?;
    for member in &workgroup.members {
        if !conn.exists("SELECT 1 FROM users WHERE username = ?1", args![member])? {
            return Err(StoreError::NotFound(format!("member '{member}' has no account")));
        }
        conn.execute(
            "INSERT INTO workgroup_members (workgroup, username) VALUES (?1, ?2)",
            args![workgroup.name, member],
        )?;
    }
    conn.execute("DELETE FROM workgroup_member_groups WHERE workgroup = ?1", args![&workgroup.name])?;
    for group in &workgroup.member_groups {
        if !conn.exists("SELECT 1 FROM user_groups WHERE name = ?1", args![group])? {
            return Err(StoreError::NotFound(format!("group '{group}' does not exist")));
        }
        conn.execute(
            "INSERT INTO workgroup_member_groups (workgroup, group_name) VALUES (?1, ?2)",
            args![workgroup.name, group],
        )?;
    }
    Ok(())
}

/// Removes a workgroup and its members; resolves to false if there was none. Its chats'
/// records and transcripts stay.
pub fn delete(conn: &Db, name: &str) -> StoreResult<bool> {
    Ok(conn.execute("DELETE FROM workgroups WHERE name = ?1", args![name])? > 0)
}

/// Every workgroup with its members.
pub fn load_all(conn: &Db) -> StoreResult<Vec<WorkgroupRecord>> {
    let mut workgroups: BTreeMap<String, WorkgroupRecord> = BTreeMap::new();
    let rows = conn.query_map(
        "SELECT name, description, open, max_chats, offer_timeout_ms, request_timeout_ms, created_ms, modified_ms
         FROM workgroups",
        args![],
        |r| {
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
        },
    )?;
    for workgroup in rows {
        workgroups.insert(workgroup.name.clone(), workgroup);
    }
    let rows = conn.query_map("SELECT workgroup, username FROM workgroup_members", args![], |r| {
        Ok((r.get::<String>(0)?, r.get::<String>(1)?))
    })?;
    for (workgroup, username) in rows {
        if let Some(record) = workgroups.get_mut(&workgroup) {
            record.members.insert(username);
        }
    }
    let rows = conn.query_map("SELECT workgroup, group_name FROM workgroup_member_groups", args![], |r| {
        Ok((r.get::<String>(0)?, r.get::<String>(1)?))
    })?;
    for (workgroup, group) in rows {
        if let Some(record) = workgroups.get_mut(&workgroup) {
            record.member_groups.insert(group);
        }
    }
    Ok(workgroups.into_values().collect())
}

/// Records a chat a workgroup set up.
pub fn start_chat(conn: &Db, chat: &ChatRecord) -> StoreResult<()> {
    conn.execute(
        "INSERT INTO workgroup_chats (room, workgroup, visitor, agent, question, email, started_ms, ended_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        args![
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
pub fn end_chat(conn: &Db, room: &str, ended_ms: i64) -> StoreResult<()> {
    conn.execute(
        "UPDATE workgroup_chats SET ended_ms = ?2 WHERE room = ?1 AND ended_ms IS NULL",
        args![room, ended_ms],
    )?;
    Ok(())
}

/// One chat, by its room.
pub fn chat(conn: &Db, room: &str) -> StoreResult<Option<ChatRecord>> {
    conn.query_opt(
        "SELECT room, workgroup, visitor, agent, question, email, started_ms, ended_ms FROM workgroup_chats
         WHERE room = ?1",
        args![room],
        chat_row,
    )
}

fn chat_row(r: &Row<'_>) -> StoreResult<ChatRecord> {
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
pub fn chats(conn: &Db, workgroup: &str, limit: usize) -> StoreResult<Vec<ChatRecord>> {
    let rows = conn.query_map(
        "SELECT room, workgroup, visitor, agent, question, email, started_ms, ended_ms FROM workgroup_chats
         WHERE workgroup = ?1 ORDER BY started_ms DESC, room LIMIT ?2",
        args![workgroup, limit as i64],
        chat_row,
    )?;
    Ok(rows)
}
