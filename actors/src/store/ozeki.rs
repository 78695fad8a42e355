//! Ozeki clients' records: `ozeki_keys` (station keys, as digests), `ozeki_conversations`
//! (each user's settings of a conversation) and `ozeki_reports`.

use super::db::{args, Db, Row};

use super::{StoreError, StoreResult};
use crate::model::ozeki::{ConversationProps, ConversationReport, StationKey};

pub fn add_key(conn: &Db, key: &StationKey) -> StoreResult<()> {
    let inserted = conn.execute(
        "INSERT INTO ozeki_keys (username, station, digest, created_ms) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT DO NOTHING",
        args![key.username, key.station, key.digest, key.created_ms],
    )?;
    if inserted == 0 {
        return Err(StoreError::Conflict(format!("station '{}' already has a key", key.station)));
    }
    Ok(())
}

fn row_to_key(row: &Row<'_>) -> StoreResult<StationKey> {
    Ok(StationKey { username: row.get(0)?, station: row.get(1)?, digest: row.get(2)?, created_ms: row.get(3)? })
}

pub fn key_by_digest(conn: &Db, digest: &[u8]) -> StoreResult<Option<StationKey>> {
    conn.query_opt(
        "SELECT username, station, digest, created_ms FROM ozeki_keys WHERE digest = ?1",
        args![digest],
        row_to_key,
    )
}

pub fn key_of_station(conn: &Db, station: &str) -> StoreResult<Option<StationKey>> {
    conn.query_opt(
        "SELECT username, station, digest, created_ms FROM ozeki_keys WHERE station = ?1",
        args![station],
        row_to_key,
    )
}

pub fn keys_of(conn: &Db, username: &str) -> StoreResult<Vec<StationKey>> {
    let keys = conn.query_map(
        "SELECT username, station, digest, created_ms FROM ozeki_keys WHERE username = ?1 ORDER BY created_ms, station",
        args![username],
        row_to_key,
    )?;
    Ok(keys)
}

pub fn delete_key(conn: &Db, username: &str, station: &str) -> StoreResult<bool> {
    Ok(conn.execute("DELETE FROM ozeki_keys WHERE username = ?1 AND station = ?2", args![username, station])? > 0)
}

const PROPS: &str =
    "conversation, username, peer, instance, muted, favorite, hide_id, color, cleared_through, changed_ms";

fn row_to_props(row: &Row<'_>) -> StoreResult<ConversationProps> {
    Ok(ConversationProps {
        conversation: row.get(0)?,
        username: row.get(1)?,
        peer: row.get(2)?,
        instance: row.get(3)?,
        muted: row.get(4)?,
        favorite: row.get(5)?,
        hide_id: row.get(6)?,
        color: row.get(7)?,
        cleared_through: row.get(8)?,
        changed_ms: row.get(9)?,
    })
}

pub fn conversation(conn: &Db, conversation: &str, username: &str) -> StoreResult<Option<ConversationProps>> {
    conn.query_opt(
        &format!("SELECT {PROPS} FROM ozeki_conversations WHERE conversation = ?1 AND username = ?2"),
        args![conversation, username],
        row_to_props,
    )
}

pub fn conversations(conn: &Db, username: &str) -> StoreResult<Vec<ConversationProps>> {
    let found = conn.query_map(
        &format!("SELECT {PROPS} FROM ozeki_conversations WHERE username = ?1 ORDER BY peer"),
        args![username],
        row_to_props,
    )?;
    Ok(found)
}

pub fn save_conversation(conn: &Db, p: &ConversationProps) -> StoreResult<()> {
    conn.execute(
        &format!(
            "INSERT INTO ozeki_conversations ({PROPS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT (conversation, username) DO UPDATE SET peer = excluded.peer,
                 instance = excluded.instance, muted = excluded.muted, favorite = excluded.favorite,
                 hide_id = excluded.hide_id, color = excluded.color,
                 cleared_through = excluded.cleared_through, changed_ms = excluded.changed_ms"
        ),
        args![
            p.conversation,
            p.username,
            p.peer,
            p.instance,
            p.muted,
            p.favorite,
            p.hide_id,
            p.color,
            p.cleared_through,
            p.changed_ms
        ],
    )?;
    Ok(())
}

pub fn add_report(conn: &Db, r: &ConversationReport) -> StoreResult<()> {
    let ids = serde_json::to_string(&r.message_ids).expect("ids serialize");
    conn.execute(
        "INSERT INTO ozeki_reports (conversation, report_id, username, kind, created_ms, message_ids)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        args![r.conversation, r.id, r.username, r.kind, r.created_ms, ids],
    )?;
    Ok(())
}

/// The newest `limit` reports of a conversation since `since_ms`, oldest first.
pub fn reports(conn: &Db, conversation: &str, since_ms: i64, limit: usize) -> StoreResult<Vec<ConversationReport>> {
    let rows = conn.query_map(
        "SELECT report_id, conversation, username, kind, created_ms, message_ids FROM ozeki_reports
         WHERE conversation = ?1 AND created_ms >= ?2 ORDER BY seq DESC LIMIT ?3",
        args![conversation, since_ms, limit as i64],
        |row| {
            let ids: String = row.get(5)?;
            Ok(ConversationReport {
                id: row.get(0)?,
                conversation: row.get(1)?,
                username: row.get(2)?,
                kind: row.get(3)?,
                created_ms: row.get(4)?,
                message_ids: serde_json::from_str(&ids).unwrap_or_default(),
            })
        },
    )?;
    let mut reports = rows;
    reports.reverse();
    Ok(reports)
}
