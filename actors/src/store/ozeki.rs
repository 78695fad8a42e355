//! Ozeki clients' records: `ozeki_keys` (station keys, as digests), `ozeki_conversations`
//! (each user's settings of a conversation) and `ozeki_reports`.

use rusqlite::{params, Connection, OptionalExtension};

use super::{StoreError, StoreResult};
use crate::model::ozeki::{ConversationProps, ConversationReport, StationKey};

pub fn add_key(conn: &Connection, key: &StationKey) -> StoreResult<()> {
    let inserted = conn.execute(
        "INSERT INTO ozeki_keys (username, station, digest, created_ms) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT DO NOTHING",
        params![key.username, key.station, key.digest, key.created_ms],
    )?;
    if inserted == 0 {
        return Err(StoreError::Conflict(format!("station '{}' already has a key", key.station)));
    }
    Ok(())
}

fn row_to_key(row: &rusqlite::Row<'_>) -> rusqlite::Result<StationKey> {
    Ok(StationKey { username: row.get(0)?, station: row.get(1)?, digest: row.get(2)?, created_ms: row.get(3)? })
}

pub fn key_by_digest(conn: &Connection, digest: &[u8]) -> StoreResult<Option<StationKey>> {
    let mut stmt =
        conn.prepare_cached("SELECT username, station, digest, created_ms FROM ozeki_keys WHERE digest = ?1")?;
    Ok(stmt.query_row([digest], row_to_key).optional()?)
}

pub fn key_of_station(conn: &Connection, station: &str) -> StoreResult<Option<StationKey>> {
    let mut stmt =
        conn.prepare_cached("SELECT username, station, digest, created_ms FROM ozeki_keys WHERE station = ?1")?;
    Ok(stmt.query_row([station], row_to_key).optional()?)
}

pub fn keys_of(conn: &Connection, username: &str) -> StoreResult<Vec<StationKey>> {
    let mut stmt = conn.prepare_cached(
        "SELECT username, station, digest, created_ms FROM ozeki_keys WHERE username = ?1 ORDER BY created_ms, station",
    )?;
    let keys = stmt.query_map([username], row_to_key)?.collect::<Result<Vec<_>, _>>()?;
    Ok(keys)
}

pub fn delete_key(conn: &Connection, username: &str, station: &str) -> StoreResult<bool> {
    Ok(conn.execute("DELETE FROM ozeki_keys WHERE username = ?1 AND station = ?2", params![username, station])? > 0)
}

const PROPS: &str =
    "conversation, username, peer, instance, muted, favorite, hide_id, color, cleared_through, changed_ms";

fn row_to_props(row: &rusqlite::Row<'_>) -> rusqlite::Result<ConversationProps> {
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

pub fn conversation(conn: &Connection, conversation: &str, username: &str) -> StoreResult<Option<ConversationProps>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {PROPS} FROM ozeki_conversations WHERE conversation = ?1 AND username = ?2"
    ))?;
    Ok(stmt.query_row(params![conversation, username], row_to_props).optional()?)
}

pub fn conversations(conn: &Connection, username: &str) -> StoreResult<Vec<ConversationProps>> {
    let mut stmt =
        conn.prepare_cached(&format!("SELECT {PROPS} FROM ozeki_conversations WHERE username = ?1 ORDER BY peer"))?;
    let found = stmt.query_map([username], row_to_props)?.collect::<Result<Vec<_>, _>>()?;
    Ok(found)
}

pub fn save_conversation(conn: &Connection, p: &ConversationProps) -> StoreResult<()> {
    let mut stmt = conn.prepare_cached(&format!(
        "INSERT OR REPLACE INTO ozeki_conversations ({PROPS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
    ))?;
    stmt.execute(params![
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
    ])?;
    Ok(())
}

pub fn add_report(conn: &Connection, r: &ConversationReport) -> StoreResult<()> {
    let ids = serde_json::to_string(&r.message_ids).expect("ids serialize");
    conn.execute(
        "INSERT INTO ozeki_reports (conversation, report_id, username, kind, created_ms, message_ids)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![r.conversation, r.id, r.username, r.kind, r.created_ms, ids],
    )?;
    Ok(())
}

/// The newest `limit` reports of a conversation since `since_ms`, oldest first.
pub fn reports(
    conn: &Connection,
    conversation: &str,
    since_ms: i64,
    limit: usize,
) -> StoreResult<Vec<ConversationReport>> {
    let mut stmt = conn.prepare_cached(
        "SELECT report_id, conversation, username, kind, created_ms, message_ids FROM ozeki_reports
         WHERE conversation = ?1 AND created_ms >= ?2 ORDER BY seq DESC LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![conversation, since_ms, limit as i64], |row| {
        let ids: String = row.get(5)?;
        Ok(ConversationReport {
            id: row.get(0)?,
            conversation: row.get(1)?,
            username: row.get(2)?,
            kind: row.get(3)?,
            created_ms: row.get(4)?,
            message_ids: serde_json::from_str(&ids).unwrap_or_default(),
        })
    })?;
    let mut reports = rows.collect::<Result<Vec<_>, _>>()?;
    reports.reverse();
    Ok(reports)
}
