//! MUC rooms: the `rooms`, `room_affiliations` and `room_messages` tables.

use std::collections::BTreeMap;

use rusqlite::{params, Connection, OptionalExtension};

use super::{StoreError, StoreResult};
use crate::model::records::{Affiliation, MucServiceRecord, RoomConfig, RoomHistoryQuery, RoomRecord};
use crate::model::{NewRoomMessage, RoomMessage};

fn config_json(config: &RoomConfig) -> String {
    serde_json::to_string(config).expect("a room config serialises")
}

/// Inserts a new room with its affiliations; `Conflict` if the name is taken.
pub fn create(conn: &Connection, room: &RoomRecord) -> StoreResult<()> {
    let inserted = conn.execute(
        "INSERT INTO rooms (name, config, created_ms, modified_ms) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (name) DO NOTHING",
        params![room.name, config_json(&room.config), room.created_ms, room.modified_ms],
    )?;
    if inserted == 0 {
        return Err(StoreError::Conflict(format!("room '{}' already exists", room.name)));
    }
    write_affiliations(conn, room)
}

/// Writes a room's whole state (config and affiliations), creating it if needed.
pub fn save(conn: &Connection, room: &RoomRecord) -> StoreResult<()> {
    conn.execute(
        "INSERT INTO rooms (name, config, created_ms, modified_ms) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (name) DO UPDATE SET config = excluded.config, modified_ms = excluded.modified_ms",
        params![room.name, config_json(&room.config), room.created_ms, room.modified_ms],
    )?;
    write_affiliations(conn, room)
}

fn write_affiliations(conn: &Connection, room: &RoomRecord) -> StoreResult<()> {
    conn.execute("DELETE FROM room_affiliations WHERE room = ?1", [&room.name])?;
    let mut insert =
        conn.prepare_cached("INSERT INTO room_affiliations (room, username, affiliation) VALUES (?1, ?2, ?3)")?;
    for (username, affiliation) in &room.affiliations {
        insert.execute(params![room.name, username, affiliation.as_str()])?;
    }
    conn.execute("DELETE FROM room_group_affiliations WHERE room = ?1", [&room.name])?;
    let mut exists = conn.prepare_cached("SELECT 1 FROM user_groups WHERE name = ?1")?;
    let mut insert =
        conn.prepare_cached("INSERT INTO room_group_affiliations (room, group_name, affiliation) VALUES (?1, ?2, ?3)")?;
    for (group, affiliation) in &room.group_affiliations {
        if exists.query_row([group], |_| Ok(())).optional()?.is_none() {
            return Err(StoreError::NotFound(format!("group '{group}' does not exist")));
        }
        insert.execute(params![room.name, group, affiliation.as_str()])?;
    }
    Ok(())
}

/// Removes a room and its affiliations (its archived messages stay).
pub fn delete(conn: &Connection, name: &str) -> StoreResult<()> {
    conn.execute("DELETE FROM rooms WHERE name = ?1", [name])?;
    Ok(())
}

/// Every stored room.
pub fn load_all(conn: &Connection) -> StoreResult<Vec<RoomRecord>> {
    let mut rooms: BTreeMap<String, RoomRecord> = BTreeMap::new();
    let mut stmt = conn.prepare("SELECT name, config, created_ms, modified_ms FROM rooms")?;
    let rows = stmt.query_map([], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?, r.get::<_, i64>(3)?))
    })?;
    for row in rows {
        let (name, config, created_ms, modified_ms) = row?;
        let config: RoomConfig = serde_json::from_str(&config).map_err(|e| StoreError::database("room config", e))?;
        let mut record = RoomRecord::new(name.clone(), config);
        (record.created_ms, record.modified_ms) = (created_ms, modified_ms);
        rooms.insert(name, record);
    }
    let mut stmt = conn.prepare("SELECT room, username, affiliation FROM room_affiliations")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)))?;
    for row in rows {
        let (room, username, affiliation) = row?;
        if let (Some(record), Some(affiliation)) = (rooms.get_mut(&room), Affiliation::parse(&affiliation)) {
            record.affiliations.insert(username, affiliation);
        }
    }
    let mut stmt = conn.prepare("SELECT room, group_name, affiliation FROM room_group_affiliations")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)))?;
    for row in rows {
        let (room, group, affiliation) = row?;
        if let (Some(record), Some(affiliation)) = (rooms.get_mut(&room), Affiliation::parse(&affiliation)) {
            record.group_affiliations.insert(group, affiliation);
        }
    }
    Ok(rooms.into_values().collect())
}

/// The MUC services the admin added, by name.
pub fn services(conn: &Connection) -> StoreResult<Vec<MucServiceRecord>> {
    let mut stmt = conn.prepare("SELECT name, description, hidden FROM muc_services ORDER BY name")?;
    let rows =
        stmt.query_map([], |r| Ok(MucServiceRecord { name: r.get(0)?, description: r.get(1)?, hidden: r.get(2)? }))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// `Conflict` if the name is taken.
pub fn add_service(conn: &Connection, service: &MucServiceRecord) -> StoreResult<()> {
    let inserted = conn.execute(
        "INSERT INTO muc_services (name, description, hidden) VALUES (?1, ?2, ?3) ON CONFLICT (name) DO NOTHING",
        params![service.name, service.description, service.hidden],
    )?;
    if inserted == 0 {
        return Err(StoreError::Conflict(format!("chat service '{}' already exists", service.name)));
    }
    Ok(())
}

/// Archives a room message; returns it with its id and stamp.
pub fn append_message(conn: &Connection, message: &NewRoomMessage) -> StoreResult<RoomMessage> {
    let stamp_ms = crate::clock::now_ms();
    let data = message.data.as_ref().map(|d| d.to_string());
    conn.prepare_cached(
        "INSERT INTO room_messages (room, stamp_ms, nick, from_user, body, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![message.room, stamp_ms, message.nick, message.from_user, message.body, data])?;
    Ok(message.clone().stored(conn.last_insert_rowid(), stamp_ms))
}

/// One archived room message.
pub fn message(conn: &Connection, id: i64) -> StoreResult<Option<RoomMessage>> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {MESSAGE} FROM room_messages WHERE id = ?1"))?;
    Ok(stmt.query_row([id], row_to_message).optional()?)
}

const MESSAGE: &str = "id, room, stamp_ms, nick, from_user, body, data";

fn row_to_message(r: &rusqlite::Row<'_>) -> rusqlite::Result<RoomMessage> {
    let data: Option<String> = r.get(6)?;
    Ok(RoomMessage {
        id: r.get(0)?,
        room: r.get(1)?,
        stamp_ms: r.get(2)?,
        nick: r.get(3)?,
        from_user: r.get(4)?,
        body: r.get(5)?,
        data: data.and_then(|d| serde_json::from_str(&d).ok()),
    })
}

/// The newest `limit` messages of `room` since `since_ms` (and before message `before`, when
/// given), oldest first.
/// A page of a room's archive: one statement per direction, the bounds it does not use
/// given as NULL.
pub fn history(conn: &Connection, q: &RoomHistoryQuery) -> StoreResult<Vec<RoomMessage>> {
    let (order, ascending) = if q.after.is_some() { ("ASC", true) } else { ("DESC", false) };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {MESSAGE} FROM room_messages WHERE room = ?1 AND stamp_ms >= ?2 AND (?3 IS NULL OR stamp_ms <= ?3)
         AND (?4 IS NULL OR id < ?4) AND (?5 IS NULL OR id > ?5) ORDER BY id {order} LIMIT ?6"
    ))?;
    let rows =
        stmt.query_map(params![q.room, q.start_ms, q.end_ms, q.before, q.after, q.limit as i64], row_to_message)?;
    let mut messages: Vec<RoomMessage> = rows.collect::<Result<_, _>>()?;
    if !ascending {
        messages.reverse();
    }
    Ok(messages)
}
