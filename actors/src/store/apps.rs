//! External apps: `apps`, `app_chats` and the webhook outbox `app_deliveries`. A message to
//! an app's account, or in a room an app is attached to, and its delivery rows are written in
//! one transaction.

use super::db::{args, Db, Row};

use super::messages::{self, row_to_message, COLUMNS as MESSAGE_COLUMNS};
use super::{rooms, users, StoreError, StoreResult};
use crate::clock::now_ms;
use crate::model::apps::{AppChat, AppRecord, ChatKind, ChatMessage, Delivery, DeliveryOutcome, DeliveryState};
use crate::model::records::NewUser;
use crate::model::{NewMessage, NewRoomMessage, RoomMessage, StoredMessage};

const APP: &str = "id, name, description, token_digest, signature_token, webhook_url, created_ms, modified_ms";

fn row_to_app(row: &Row<'_>) -> StoreResult<AppRecord> {
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
pub fn create(conn: &Db, app: &AppRecord, account: &NewUser) -> StoreResult<()> {
    users::create(conn, account)?;
    conn.execute(
        &format!("INSERT INTO apps ({APP}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"),
        args![
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

pub fn update(conn: &Db, app: &AppRecord) -> StoreResult<()> {
    let changed = conn.execute(
        "UPDATE apps SET description = ?2, token_digest = ?3, signature_token = ?4, webhook_url = ?5, modified_ms = ?6
         WHERE id = ?1",
        args![app.id, app.description, app.token_digest, app.signature_token, app.webhook_url, now_ms()],
    )?;
    if changed == 0 {
        return Err(StoreError::NotFound(format!("app '{}' does not exist", app.id)));
    }
    Ok(())
}

/// The app, its account, chats and deliveries; false if there was none.
pub fn delete(conn: &Db, id: &str) -> StoreResult<bool> {
    let Some(app) = find(conn, id)? else { return Ok(false) };
    conn.execute("DELETE FROM apps WHERE id = ?1", args![id])?;
    users::delete(conn, &app.name)?;
    Ok(true)
}

pub fn find(conn: &Db, id: &str) -> StoreResult<Option<AppRecord>> {
    conn.query_opt(&format!("SELECT {APP} FROM apps WHERE id = ?1"), args![id], row_to_app)
}

pub fn by_token(conn: &Db, digest: &[u8]) -> StoreResult<Option<AppRecord>> {
    conn.query_opt(&format!("SELECT {APP} FROM apps WHERE token_digest = ?1"), args![digest], row_to_app)
}

pub fn all(conn: &Db) -> StoreResult<Vec<AppRecord>> {
    let apps = conn.query_map(&format!("SELECT {APP} FROM apps ORDER BY name"), args![], row_to_app)?;
    Ok(apps)
}

const CHAT: &str = "chat_id, app_id, kind, peer, created_ms";

fn row_to_chat(row: &Row<'_>) -> StoreResult<AppChat> {
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
pub fn open_chat(conn: &Db, app_id: &str, kind: ChatKind, peer: &str, new_chat_id: &str) -> StoreResult<AppChat> {
    conn.execute(
        "INSERT INTO app_chats (chat_id, app_id, kind, peer, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (app_id, kind, peer) DO NOTHING",
        args![new_chat_id, app_id, kind.as_str(), peer, now_ms()],
    )?;
    conn.query_one(
        &format!("SELECT {CHAT} FROM app_chats WHERE app_id = ?1 AND kind = ?2 AND peer = ?3"),
        args![app_id, kind.as_str(), peer],
        row_to_chat,
    )
}

/// Ends an app's chat with `peer` (a room it is detached from); false if there was none.
pub fn close_chat(conn: &Db, app_id: &str, kind: ChatKind, peer: &str) -> StoreResult<bool> {
    let closed = conn.execute(
        "DELETE FROM app_chats WHERE app_id = ?1 AND kind = ?2 AND peer = ?3",
        args![app_id, kind.as_str(), peer],
    )?;
    Ok(closed > 0)
}

/// Every room some app is attached to.
pub fn watched_rooms(conn: &Db) -> StoreResult<Vec<String>> {
    let rooms =
        conn.query_map("SELECT DISTINCT peer FROM app_chats WHERE kind = 'room' ORDER BY peer", args![], |r| r.get(0))?;
    Ok(rooms)
}

/// A room message, archived with a delivery for every app attached to the room that has a
/// webhook (but the one that sent it), in one transaction.
pub fn append_room_message(conn: &Db, message: &NewRoomMessage) -> StoreResult<RoomMessage> {
    let stored = rooms::append_message(conn, message)?;
    conn.execute(
        &format!(
            "INSERT INTO app_deliveries (delivery_id, app_id, chat_id, kind, message_id, state, attempts,
                                         next_attempt_ms, created_ms)
             SELECT {}, a.id, c.chat_id, 'room', CAST(?1 AS BIGINT), 'pending', 0, CAST(?2 AS BIGINT),
                    CAST(?2 AS BIGINT)
             FROM app_chats c JOIN apps a ON a.id = c.app_id
             WHERE c.kind = 'room' AND c.peer = ?3 AND a.webhook_url IS NOT NULL AND a.name <> ?4",
            conn.dialect().random_id()
        ),
        args![stored.id, stored.stamp_ms, stored.room, stored.from_user],
    )?;
    Ok(stored)
}

pub fn chat(conn: &Db, chat_id: &str) -> StoreResult<Option<AppChat>> {
    conn.query_opt(&format!("SELECT {CHAT} FROM app_chats WHERE chat_id = ?1"), args![chat_id], row_to_chat)
}

/// An app's chats, oldest first, from `offset`.
pub fn chats(conn: &Db, app_id: &str, offset: usize, limit: usize) -> StoreResult<Vec<AppChat>> {
    let rows = conn.query_map(
        &format!("SELECT {CHAT} FROM app_chats WHERE app_id = ?1 ORDER BY created_ms, chat_id LIMIT ?2 OFFSET ?3"),
        args![app_id, limit as i64, offset as i64],
        row_to_chat,
    )?;
    Ok(rows)
}

/// A message from a user to an app's account: archived (not waiting for any station), its
/// chat opened if new, and, when the app has a webhook, its delivery queued, in one
/// transaction.
pub fn append_for_app(
    conn: &Db,
    message: &NewMessage,
    app_id: &str,
    new_chat_id: &str,
    delivery_id: &str,
) -> StoreResult<(StoredMessage, AppChat)> {
    let stored = messages::append(conn, message, None)?;
    conn.execute("UPDATE messages SET pending = 0 WHERE id = ?1", args![stored.id])?;
    let chat = open_chat(conn, app_id, ChatKind::User, &stored.from_user, new_chat_id)?;
    conn.execute(
        "INSERT INTO app_deliveries (delivery_id, app_id, chat_id, kind, message_id, state, attempts, next_attempt_ms,
                                     created_ms)
         SELECT CAST(?1 AS TEXT), id, CAST(?2 AS TEXT), 'user', CAST(?3 AS BIGINT), 'pending', 0,
                CAST(?4 AS BIGINT), CAST(?4 AS BIGINT)
         FROM apps WHERE id = ?5 AND webhook_url IS NOT NULL",
        args![delivery_id, chat.chat_id, stored.id, stored.stamp_ms, app_id],
    )?;
    Ok((stored, chat))
}

const DELIVERY: &str =
    "seq, delivery_id, app_id, chat_id, kind, message_id, state, attempts, next_attempt_ms, last_error, created_ms";

fn row_to_delivery(row: &Row<'_>) -> StoreResult<Delivery> {
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
pub fn pending(conn: &Db, after_seq: i64, limit: usize) -> StoreResult<Vec<Delivery>> {
    let rows = conn.query_map(
        &format!("SELECT {DELIVERY} FROM app_deliveries WHERE seq > ?1 AND state = 'pending' ORDER BY seq LIMIT ?2"),
        args![after_seq, limit as i64],
        row_to_delivery,
    )?;
    Ok(rows)
}

pub fn settle(conn: &Db, seq: i64, attempts: u32, outcome: &DeliveryOutcome) -> StoreResult<()> {
    let (state, next, error) = match outcome {
        DeliveryOutcome::Delivered => ("delivered", None, None),
        DeliveryOutcome::Retry { at_ms, error } => ("pending", Some(*at_ms), Some(error.as_str())),
        DeliveryOutcome::Dead { error } => ("dead", None, Some(error.as_str())),
    };
    conn.execute(
        "UPDATE app_deliveries SET state = ?2, attempts = ?3, next_attempt_ms = COALESCE(?4, next_attempt_ms),
             last_error = COALESCE(?5, last_error)
         WHERE seq = ?1",
        args![seq, state, attempts, next, error],
    )?;
    Ok(())
}

/// An app's deliveries (in one state, when given), newest first.
pub fn list(conn: &Db, app_id: &str, state: Option<DeliveryState>, limit: usize) -> StoreResult<Vec<Delivery>> {
    let rows = conn.query_map(
        &format!(
            "SELECT {DELIVERY} FROM app_deliveries WHERE app_id = ?1 AND (CAST(?2 AS TEXT) IS NULL OR state = ?2)
         ORDER BY seq DESC LIMIT ?3"
        ),
        args![app_id, state.map(DeliveryState::as_str), limit as i64],
        row_to_delivery,
    )?;
    Ok(rows)
}

/// Dead deliveries of an app (one, or all) back to pending now, attempts from zero; how many.
pub fn replay(conn: &Db, app_id: &str, seq: Option<i64>) -> StoreResult<usize> {
    let now = now_ms();
    let changed = conn.execute(
        "UPDATE app_deliveries SET state = 'pending', attempts = 0, next_attempt_ms = ?3, created_ms = ?3
         WHERE app_id = ?1 AND state = 'dead' AND (CAST(?2 AS BIGINT) IS NULL OR seq = ?2)",
        args![app_id, seq, now],
    )?;
    Ok(changed)
}

/// How many deliveries are pending, and the creation time of the oldest.
pub fn depth(conn: &Db) -> StoreResult<(u64, Option<i64>)> {
    conn.query_one("SELECT COUNT(*), MIN(created_ms) FROM app_deliveries WHERE state = 'pending'", args![], |r| {
        Ok((r.get::<i64>(0)? as u64, r.get(1)?))
    })
}

/// A chat's archived message: a 1:1 message, or a room's.
pub fn message(conn: &Db, kind: ChatKind, id: i64) -> StoreResult<Option<ChatMessage>> {
    match kind {
        ChatKind::User => {
            let found = conn.query_opt(
                &format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ?1"),
                args![id],
                row_to_message,
            )?;
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
