//! External apps: `apps`, `app_chats` and the webhook outbox `app_deliveries`. A message to
//! an app's account, or in a room an app is attached to, and its delivery rows are written in
//! one transaction.

use rusqlite::{params, Connection, OptionalExtension};

use super::messages::{self, row_to_message, COLUMNS as MESSAGE_COLUMNS};
use super::{rooms, users, StoreError, StoreResult};
use crate::clock::now_ms;
use crate::model::apps::{AppChat, AppRecord, ChatKind, ChatMessage, Delivery, DeliveryOutcome, DeliveryState};
use crate::model::records::NewUser;
use crate::model::{NewMessage, NewRoomMessage, RoomMessage, StoredMessage};

const APP: &str = "id, name, description, token_digest, signature_token, webhook_url, created_ms, modified_ms";

fn row_to_app(row: &rusqlite::Row<'_>) -> rusqlite::Result<AppRecord> {
    Ok(AppRecord {
        id: row.get(0)?,
        name: row.get(1)?,
        description: row.get(2)?,
        token_digest: row.get(3)?,
        signature_token: row.get(4)?,
        webhook_url: row.get(5)?,
        created_ms: row.get(6)?,
        modified_ms: row.get(7)?,
    })
}

/// The app and its account, together.
pub fn create(conn: &Connection, app: &AppRecord, account: &NewUser) -> StoreResult<()> {
    users::create(conn, account)?;
    conn.execute(
        &format!("INSERT INTO apps ({APP}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"),
        params![
            app.id,
            app.name,
            app.description,
            app.token_digest,
            app.signature_token,
            app.webhook_url,
            app.created_ms,
            app.modified_ms
        ],
    )?;
    Ok(())
}

pub fn update(conn: &Connection, app: &AppRecord) -> StoreResult<()> {
    let changed = conn.execute(
        "UPDATE apps SET description = ?2, token_digest = ?3, signature_token = ?4, webhook_url = ?5, modified_ms = ?6
         WHERE id = ?1",
        params![app.id, app.description, app.token_digest, app.signature_token, app.webhook_url, now_ms()],
    )?;
    if changed == 0 {
        return Err(StoreError::NotFound(format!("app '{}' does not exist", app.id)));
    }
    Ok(())
}

/// The app, its account, chats and deliveries; false if there was none.
pub fn delete(conn: &Connection, id: &str) -> StoreResult<bool> {
    let Some(app) = find(conn, id)? else { return Ok(false) };
    conn.execute("DELETE FROM apps WHERE id = ?1", [id])?;
    users::delete(conn, &app.name)?;
    Ok(true)
}

pub fn find(conn: &Connection, id: &str) -> StoreResult<Option<AppRecord>> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {APP} FROM apps WHERE id = ?1"))?;
    Ok(stmt.query_row([id], row_to_app).optional()?)
}

pub fn by_token(conn: &Connection, digest: &[u8]) -> StoreResult<Option<AppRecord>> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {APP} FROM apps WHERE token_digest = ?1"))?;
    Ok(stmt.query_row([digest], row_to_app).optional()?)
}

pub fn all(conn: &Connection) -> StoreResult<Vec<AppRecord>> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {APP} FROM apps ORDER BY name"))?;
    let apps = stmt.query_map([], row_to_app)?.collect::<Result<Vec<_>, _>>()?;
    Ok(apps)
}

const CHAT: &str = "chat_id, app_id, kind, peer, created_ms";

fn row_to_chat(row: &rusqlite::Row<'_>) -> rusqlite::Result<AppChat> {
    let kind: String = row.get(2)?;
    Ok(AppChat {
        chat_id: row.get(0)?,
        app_id: row.get(1)?,
        kind: ChatKind::parse(&kind).unwrap_or(ChatKind::User),
        peer: row.get(3)?,
        created_ms: row.get(4)?,
    })
}

/// The app's chat with `peer` (a user or a room), made with `new_chat_id` if there is none.
pub fn open_chat(
    conn: &Connection,
    app_id: &str,
    kind: ChatKind,
    peer: &str,
    new_chat_id: &str,
) -> StoreResult<AppChat> {
    conn.execute(
        "INSERT INTO app_chats (chat_id, app_id, kind, peer, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (app_id, kind, peer) DO NOTHING",
        params![new_chat_id, app_id, kind.as_str(), peer, now_ms()],
    )?;
    let mut stmt =
        conn.prepare_cached(&format!("SELECT {CHAT} FROM app_chats WHERE app_id = ?1 AND kind = ?2 AND peer = ?3"))?;
    Ok(stmt.query_row(params![app_id, kind.as_str(), peer], row_to_chat)?)
}

/// Ends an app's chat with `peer` (a room it is detached from); false if there was none.
pub fn close_chat(conn: &Connection, app_id: &str, kind: ChatKind, peer: &str) -> StoreResult<bool> {
    let closed = conn.execute(
        "DELETE FROM app_chats WHERE app_id = ?1 AND kind = ?2 AND peer = ?3",
        params![app_id, kind.as_str(), peer],
    )?;
    Ok(closed > 0)
}

/// Every room some app is attached to.
pub fn watched_rooms(conn: &Connection) -> StoreResult<Vec<String>> {
    let mut stmt = conn.prepare_cached("SELECT DISTINCT peer FROM app_chats WHERE kind = 'room' ORDER BY peer")?;
    let rooms = stmt.query_map([], |r| r.get(0))?.collect::<Result<Vec<String>, _>>()?;
    Ok(rooms)
}

/// A room message, archived with a delivery for every app attached to the room that has a
/// webhook (but the one that sent it), in one transaction.
pub fn append_room_message(conn: &Connection, message: &NewRoomMessage) -> StoreResult<RoomMessage> {
    let stored = rooms::append_message(conn, message)?;
    conn.prepare_cached(
        "INSERT INTO app_deliveries (delivery_id, app_id, chat_id, kind, message_id, state, attempts, next_attempt_ms,
                                     created_ms)
         SELECT lower(hex(randomblob(16))), a.id, c.chat_id, 'room', ?1, 'pending', 0, ?2, ?2
         FROM app_chats c JOIN apps a ON a.id = c.app_id
         WHERE c.kind = 'room' AND c.peer = ?3 AND a.webhook_url IS NOT NULL AND a.name <> ?4",
    )?
    .execute(params![stored.id, stored.stamp_ms, stored.room, stored.from_user])?;
    Ok(stored)
}

pub fn chat(conn: &Connection, chat_id: &str) -> StoreResult<Option<AppChat>> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {CHAT} FROM app_chats WHERE chat_id = ?1"))?;
    Ok(stmt.query_row([chat_id], row_to_chat).optional()?)
}

/// An app's chats, oldest first, from `offset`.
pub fn chats(conn: &Connection, app_id: &str, offset: usize, limit: usize) -> StoreResult<Vec<AppChat>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {CHAT} FROM app_chats WHERE app_id = ?1 ORDER BY created_ms, chat_id LIMIT ?2 OFFSET ?3"
    ))?;
    let rows = stmt.query_map(params![app_id, limit as i64, offset as i64], row_to_chat)?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// A message from a user to an app's account: archived (not waiting for any station), its
/// chat opened if new, and, when the app has a webhook, its delivery queued, in one
/// transaction.
pub fn append_for_app(
    conn: &Connection,
    message: &NewMessage,
    app_id: &str,
    new_chat_id: &str,
    delivery_id: &str,
) -> StoreResult<(StoredMessage, AppChat)> {
    let stored = messages::append(conn, message, None)?;
    conn.execute("UPDATE messages SET pending = 0 WHERE id = ?1", [stored.id])?;
    let chat = open_chat(conn, app_id, ChatKind::User, &stored.from_user, new_chat_id)?;
    conn.execute(
        "INSERT INTO app_deliveries (delivery_id, app_id, chat_id, kind, message_id, state, attempts, next_attempt_ms,
                                     created_ms)
         SELECT ?1, id, ?2, 'user', ?3, 'pending', 0, ?4, ?4 FROM apps WHERE id = ?5 AND webhook_url IS NOT NULL",
        params![delivery_id, chat.chat_id, stored.id, stored.stamp_ms, app_id],
    )?;
    Ok((stored, chat))
}

const DELIVERY: &str =
    "seq, delivery_id, app_id, chat_id, kind, message_id, state, attempts, next_attempt_ms, last_error, created_ms";

fn row_to_delivery(row: &rusqlite::Row<'_>) -> rusqlite::Result<Delivery> {
    let kind: String = row.get(4)?;
    let state: String = row.get(6)?;
    Ok(Delivery {
        seq: row.get(0)?,
        delivery_id: row.get(1)?,
        app_id: row.get(2)?,
        chat_id: row.get(3)?,
        kind: ChatKind::parse(&kind).unwrap_or(ChatKind::User),
        message_id: row.get(5)?,
        state: DeliveryState::parse(&state).unwrap_or(DeliveryState::Dead),
        attempts: row.get(7)?,
        next_attempt_ms: row.get(8)?,
        last_error: row.get(9)?,
        created_ms: row.get(10)?,
    })
}

/// Pending deliveries after `after_seq`, in order.
pub fn pending(conn: &Connection, after_seq: i64, limit: usize) -> StoreResult<Vec<Delivery>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {DELIVERY} FROM app_deliveries WHERE seq > ?1 AND state = 'pending' ORDER BY seq LIMIT ?2"
    ))?;
    let rows = stmt.query_map(params![after_seq, limit as i64], row_to_delivery)?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

pub fn settle(conn: &Connection, seq: i64, attempts: u32, outcome: &DeliveryOutcome) -> StoreResult<()> {
    let mut stmt = conn.prepare_cached(
        "UPDATE app_deliveries SET state = ?2, attempts = ?3, next_attempt_ms = COALESCE(?4, next_attempt_ms),
             last_error = COALESCE(?5, last_error)
         WHERE seq = ?1",
    )?;
    let (state, next, error) = match outcome {
        DeliveryOutcome::Delivered => ("delivered", None, None),
        DeliveryOutcome::Retry { at_ms, error } => ("pending", Some(*at_ms), Some(error.as_str())),
        DeliveryOutcome::Dead { error } => ("dead", None, Some(error.as_str())),
    };
    stmt.execute(params![seq, state, attempts, next, error])?;
    Ok(())
}

/// An app's deliveries (in one state, when given), newest first.
pub fn list(conn: &Connection, app_id: &str, state: Option<DeliveryState>, limit: usize) -> StoreResult<Vec<Delivery>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {DELIVERY} FROM app_deliveries WHERE app_id = ?1 AND (?2 IS NULL OR state = ?2)
         ORDER BY seq DESC LIMIT ?3"
    ))?;
    let rows = stmt.query_map(params![app_id, state.map(DeliveryState::as_str), limit as i64], row_to_delivery)?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// Dead deliveries of an app (one, or all) back to pending now, attempts from zero; how many.
pub fn replay(conn: &Connection, app_id: &str, seq: Option<i64>) -> StoreResult<usize> {
    let now = now_ms();
    let changed = conn.execute(
        "UPDATE app_deliveries SET state = 'pending', attempts = 0, next_attempt_ms = ?3, created_ms = ?3
         WHERE app_id = ?1 AND state = 'dead' AND (?2 IS NULL OR seq = ?2)",
        params![app_id, seq, now],
    )?;
    Ok(changed)
}

/// How many deliveries are pending, and the creation time of the oldest.
pub fn depth(conn: &Connection) -> StoreResult<(u64, Option<i64>)> {
    Ok(conn.query_row("SELECT COUNT(*), MIN(created_ms) FROM app_deliveries WHERE state = 'pending'", [], |r| {
        Ok((r.get::<_, i64>(0)? as u64, r.get(1)?))
    })?)
}

/// A chat's archived message: a 1:1 message, or a room's.
pub fn message(conn: &Connection, kind: ChatKind, id: i64) -> StoreResult<Option<ChatMessage>> {
    match kind {
        ChatKind::User => {
            let mut stmt = conn.prepare_cached(&format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ?1"))?;
            let found = stmt.query_row([id], row_to_message).optional()?;
            Ok(found.map(|m| ChatMessage {
                id: m.id,
                room: None,
                from_user: m.from_user,
                body: m.body,
                data: m.data,
                stamp_ms: m.stamp_ms,
            }))
        }
        ChatKind::Room => Ok(rooms::message(conn, id)?.map(|m| ChatMessage {
            id: m.id,
            room: Some(m.room),
            from_user: m.from_user,
            body: m.body,
            data: m.data,
            stamp_ms: m.stamp_ms,
        })),
    }
}
