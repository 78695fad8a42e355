//! MUC rooms: the `rooms`, `room_affiliations` and `room_messages` tables.

use std::collections::BTreeMap;

use super::db::{args, Db, Row};

use super::{StoreError, StoreResult};
use crate::model::records::{Affiliation, MucServiceRecord, RoomConfig, RoomHistoryQuery, RoomRecord};
use crate::model::{NewRoomMessage, RoomMessage};

fn config_json(config: &RoomConfig) -> String {
    serde_json::to_string(config).expect("a room config serialises")
}

/// Inserts a new room with its affiliations; `Conflict` if the name is taken.
pub fn create(conn: &Db, room: &RoomRecord) -> StoreResult<()> {
    let inserted = conn.execute(
        "INSERT INTO rooms (name, config, created_ms, modified_ms) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (name) DO NOTHING",
        args![room.name, config_json(&room.config), room.created_ms, room.modified_ms],
    )?;
    if inserted == 0 {
        return Err(StoreError::Conflict(format!("room '{}' already exists", room.name)));
    }
    write_affiliations(conn, room)
}

/// Writes a room's whole state (config and affiliations), creating it if needed.
pub fn save(conn: &Db, room: &RoomRecord) -> StoreResult<()> {
    conn.execute(
        "INSERT INTO rooms (name, config, created_ms, modified_ms) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (name) DO UPDATE SET config = excluded.config, modified_ms = excluded.modified_ms",
        args![room.name, config_json(&room.config), room.created_ms, room.modified_ms],
    )?;
    write_affiliations(conn, room)
}

fn write_affiliations(conn: &Db, room: &RoomRecord) -> StoreResult<()> {
    conn.execute("DELETE FROM room_affiliations WHERE room = ?1", args![&room.name])?;
    for (username, affiliation) in &room.affiliations {
        conn.execute(
            "INSERT INTO room_affiliations (room, username, affiliation) VALUES (?1, ?2, ?3)",
            args![room.name, username, affiliation.as_str()],
        )?;
    }
    conn.execute("DELETE FROM room_group_affiliations WHERE room = ?1", args![&room.name])?;
    for (group, affiliation) in &room.group_affiliations {
        if !conn.exists("SELECT 1 FROM user_groups WHERE name = ?1", args![group])? {
            return Err(StoreError::NotFound(format!("group '{group}' does not exist")));
        }
        conn.execute(
            "INSERT INTO room_group_affiliations (room, group_name, affiliation) VALUES (?1, ?2, ?3)",
            args![room.name, group, affiliation.as_str()],
        )?;
    }
    Ok(())
}

/// Removes a room and its affiliations (its archived messages stay).
pub fn delete(conn: &Db, name: &str) -> StoreResult<()> {
    conn.execute("DELETE FROM rooms WHERE name = ?1", args![name])?;
    Ok(())
}

/// Every stored room.
pub fn load_all(conn: &Db) -> StoreResult<Vec<RoomRecord>> {
    load(conn, None)
}

/// One stored room, by name.
pub fn load_one(conn: &Db, name: &str) -> StoreResult<Option<RoomRecord>> {
    Ok(load(conn, Some(name))?.pop())
}

/// The stored rooms: every one, or the one named `only`.
fn load(conn: &Db, only: Option<&str>) -> StoreResult<Vec<RoomRecord>> {
    let filter = |column: &str| only.map_or_else(String::new, |_| format!(" WHERE {column} = ?1"));
    let name_arg = only.unwrap_or_default();
    let params: &[&dyn super::db::Param] = if only.is_some() { args![name_arg] } else { args![] };
    let mut rooms: BTreeMap<String, RoomRecord> = BTreeMap::new();
    let sql = format!("SELECT name, config, created_ms, modified_ms FROM rooms{}", filter("name"));
    let rows = conn.query_map(&sql, params, |r| {
        Ok((r.get::<String>(0)?, r.get::<String>(1)?, r.get::<i64>(2)?, r.get::<i64>(3)?))
    })?;
    for (name, config, created_ms, modified_ms) in rows {
        let config: RoomConfig = serde_json::from_str(&config).map_err(|e| StoreError::database("room config", e))?;
        let mut record = RoomRecord::new(name.clone(), config);
        (record.created_ms, record.modified_ms) = (created_ms, modified_ms);
        rooms.insert(name, record);
    }
    let sql = format!("SELECT room, username, affiliation FROM room_affiliations{}", filter("room"));
    let rows = conn.query_map(&sql, params, |r| Ok((r.get::<String>(0)?, r.get::<String>(1)?, r.get::<String>(2)?)))?;
    for (room, username, affiliation) in rows {
        if let (Some(record), Some(affiliation)) = (rooms.get_mut(&room), Affiliation::parse(&affiliation)) {
            record.affiliations.insert(username, affiliation);
        }
    }
    let sql = format!("SELECT room, group_name, affiliation FROM room_group_affiliations{}", filter("room"));
    let rows = conn.query_map(&sql, params, |r| Ok((r.get::<String>(0)?, r.get::<String>(1)?, r.get::<String>(2)?)))?;
    for (room, group, affiliation) in rows {
        if let (Some(record), Some(affiliation)) = (rooms.get_mut(&room), Affiliation::parse(&affiliation)) {
            record.group_affiliations.insert(group, affiliation);
        }
    }
    Ok(rooms.into_values().collect())
}

/// The MUC services the admin added, by name.
pub fn services(conn: &Db) -> StoreResult<Vec<MucServiceRecord>> {
    let rows = conn.query_map("SELECT name, description, hidden FROM muc_services ORDER BY name", args![], |r| {
        Ok(MucServiceRecord { name: r.get(0)?, description: r.get(1)?, hidden: r.get(2)? })
    })?;
    Ok(rows)
}

/// `Conflict` if the name is taken.
pub fn add_service(conn: &Db, service: &MucServiceRecord) -> StoreResult<()> {
    let inserted = conn.execute(
        "INSERT INTO muc_services (name, description, hidden) VALUES (?1, ?2, ?3) ON CONFLICT (name) DO NOTHING",
        args![service.name, service.description, service.hidden],
    )?;
    if inserted == 0 {
        return Err(StoreError::Conflict(format!("chat service '{}' already exists", service.name)));
    }
    Ok(())
}

/// Archives a room message; returns it with its id and stamp.
pub fn append_message(conn: &Db, message: &NewRoomMessage) -> StoreResult<RoomMessage> {
    let stamp_ms = crate::clock::now_ms();
    let data = message.data.as_ref().map(|d| d.to_string());
    let id = conn.insert(
        "INSERT INTO room_messages (room, stamp_ms, nick, from_user, body, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        args![message.room, stamp_ms, message.nick, message.from_user, message.body, data],
    )?;
    Ok(message.clone().stored(id, stamp_ms))
}

/// One archived room message.
pub fn message(conn: &Db, id: i64) -> StoreResult<Option<RoomMessage>> {
    conn.query_opt(&format!("SELECT {MESSAGE} FROM room_messages WHERE id = ?1"), args![id], row_to_message)
}

const MESSAGE: &str = "id, room, stamp_ms, nick, from_user, body, data";

fn row_to_message(r: &Row<'_>) -> StoreResult<RoomMessage> {
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
pub fn history(conn: &Db, q: &RoomHistoryQuery) -> StoreResult<Vec<RoomMessage>> {
    let (order, ascending) = if q.after.is_some() { ("ASC", true) } else { ("DESC", false) };
    let rows = conn.query_map(
        &format!(
            "SELECT {MESSAGE} FROM room_messages WHERE room = ?1 AND stamp_ms >= ?2 AND (CAST(?3 AS BIGINT) IS NULL OR stamp_ms <= ?3)
         AND (CAST(?4 AS BIGINT) IS NULL OR id < ?4)
         AND (CAST(?5 AS BIGINT) IS NULL OR id > ?5) ORDER BY id {order} LIMIT ?6"
        ),
        args![q.room, q.start_ms, q.end_ms, q.before, q.after, q.limit as i64],
        row_to_message,
    )?;
    let mut messages: Vec<RoomMessage> = rows;
    if !ascending {
        messages.reverse();
    }
    Ok(messages)
}
