//! The message archive and the offline queue (the `messages` table).

use rusqlite::{params, Connection};

use super::StoreResult;
use crate::clock::now_ms;
use crate::model::records::HistoryQuery;
use crate::model::{MessageKind, NewMessage, StoredMessage};

pub(super) const COLUMNS: &str =
    "id, stamp_ms, kind, from_user, from_resource, to_user, to_resource, body, data, deliver_to, expires_ms";

pub fn append(conn: &Connection, msg: &NewMessage, deliver_to: Option<String>) -> StoreResult<StoredMessage> {
    let stamp_ms = now_ms();
    let data = msg.data.as_ref().map(|d| d.to_string());
    let mut stmt = conn.prepare_cached(
        "INSERT INTO messages (stamp_ms, kind, from_user, from_resource, to_user, to_resource, body, data, deliver_to,
                               expires_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?;
    stmt.execute(params![
        stamp_ms,
        msg.kind.as_str(),
        msg.from.user.as_str(),
        msg.from.resource,
        msg.to.user.as_str(),
        msg.to.resource,
        msg.body,
        data,
        deliver_to,
        msg.expires_ms,
    ])?;
    Ok(StoredMessage {
        id: conn.last_insert_rowid(),
        stamp_ms,
        kind: msg.kind,
        from_user: msg.from.user.as_str().to_owned(),
        from_resource: msg.from.resource.clone(),
        to_user: msg.to.user.as_str().to_owned(),
        to_resource: msg.to.resource.clone(),
        body: msg.body.clone(),
        data: msg.data.clone(),
        deliver_to,
        expires_ms: msg.expires_ms,
    })
}

pub fn mark_delivered(conn: &Connection, ids: &[i64]) -> StoreResult<()> {
    let mut stmt = conn.prepare_cached("UPDATE messages SET pending = 0 WHERE id = ?1")?;
    for id in ids {
        stmt.execute([id])?;
    }
    Ok(())
}

pub fn mark_pending(conn: &Connection, ids: &[i64]) -> StoreResult<()> {
    let mut stmt = conn.prepare_cached("UPDATE messages SET pending = 1 WHERE id = ?1")?;
    for id in ids {
        stmt.execute([id])?;
    }
    Ok(())
}

/// What waits for `username` and has not expired, oldest first.
pub fn pending_for(conn: &Connection, username: &str) -> StoreResult<Vec<StoredMessage>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM messages WHERE to_user = ?1 AND pending = 1
         AND (expires_ms IS NULL OR expires_ms > ?2) ORDER BY id"
    ))?;
    let rows = stmt.query_map(params![username, now_ms()], row_to_message)?.collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub fn retarget_pending(conn: &Connection, username: &str, resource: &str) -> StoreResult<()> {
    conn.execute(
        "UPDATE messages SET deliver_to = NULL WHERE to_user = ?1 AND deliver_to = ?2 AND pending = 1",
        params![username, resource],
    )?;
    Ok(())
}

pub fn retarget_all_pending(conn: &Connection) -> StoreResult<()> {
    conn.execute("UPDATE messages SET deliver_to = NULL WHERE pending = 1 AND deliver_to IS NOT NULL", [])?;
    Ok(())
}

pub fn received_since(
    conn: &Connection,
    username: &str,
    after_id: i64,
    limit: usize,
) -> StoreResult<Vec<StoredMessage>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM messages
         WHERE to_user = ?1 AND id > ?2 AND kind IN ('chat', 'normal') ORDER BY id LIMIT ?3"
    ))?;
    let rows =
        stmt.query_map(params![username, after_id, limit as i64], row_to_message)?.collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Everyone `username` exchanged 1:1 messages with, with the newest message's id and stamp,
/// newest first, at most `limit`.
pub fn peers_of(conn: &Connection, username: &str, limit: usize) -> StoreResult<Vec<(String, i64, i64)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT peer, MAX(id), MAX(stamp_ms) FROM (
             SELECT to_user AS peer, id, stamp_ms FROM messages WHERE from_user = ?1 AND kind IN ('chat', 'normal')
             UNION ALL
             SELECT from_user AS peer, id, stamp_ms FROM messages WHERE to_user = ?1 AND kind IN ('chat', 'normal')
         ) WHERE peer <> ?1 GROUP BY peer ORDER BY MAX(id) DESC LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![username, limit as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// A page of history, oldest first. With `after`, the oldest `limit` messages after it;
/// otherwise the newest `limit` messages (before `before`, when given).
pub fn history(conn: &Connection, q: &HistoryQuery) -> StoreResult<Vec<StoredMessage>> {
    let mut sql = format!("SELECT {COLUMNS} FROM messages WHERE ");
    let mut args: Vec<rusqlite::types::Value> = Vec::new();
    let arg = |v: rusqlite::types::Value, args: &mut Vec<rusqlite::types::Value>| {
        args.push(v);
        format!("?{}", args.len())
    };
    let me = arg(q.username.clone().into(), &mut args);
    match &q.with {
        Some(with) => {
            let peer = arg(with.clone().into(), &mut args);
            sql.push_str(&format!(
                "((from_user = {me} AND to_user = {peer}) OR (from_user = {peer} AND to_user = {me}))"
            ));
        }
        None => sql.push_str(&format!("(from_user = {me} OR to_user = {me})")),
    }
    if let Some(start) = q.start_ms {
        sql.push_str(&format!(" AND stamp_ms >= {}", arg(start.into(), &mut args)));
    }
    if let Some(end) = q.end_ms {
        sql.push_str(&format!(" AND stamp_ms <= {}", arg(end.into(), &mut args)));
    }
    if let Some(keywords) = q.keywords.as_deref().filter(|k| !k.is_empty()) {
        let pattern = format!("%{}%", super::users::escape_like(keywords));
        sql.push_str(&format!(" AND body LIKE {} ESCAPE '\\'", arg(pattern.into(), &mut args)));
    }
    if let Some(before) = q.before {
        sql.push_str(&format!(" AND id < {}", arg(before.into(), &mut args)));
    }
    let ascending = q.after.is_some();
    if let Some(after) = q.after {
        sql.push_str(&format!(" AND id > {}", arg(after.into(), &mut args)));
    }
    let limit = arg((q.limit as i64).into(), &mut args);
    sql.push_str(&format!(" ORDER BY id {} LIMIT {limit}", if ascending { "ASC" } else { "DESC" }));
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query_map(rusqlite::params_from_iter(args), row_to_message)?.collect::<Result<Vec<_>, _>>()?;
    if !ascending {
        rows.reverse();
    }
    Ok(rows)
}

pub(super) fn row_to_message(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredMessage> {
    let kind: String = row.get(2)?;
    let data: Option<String> = row.get(8)?;
    Ok(StoredMessage {
        id: row.get(0)?,
        stamp_ms: row.get(1)?,
        kind: MessageKind::parse(&kind).unwrap_or(MessageKind::Chat),
        from_user: row.get(3)?,
        from_resource: row.get(4)?,
        to_user: row.get(5)?,
        to_resource: row.get(6)?,
        body: row.get(7)?,
        data: data.and_then(|d| serde_json::from_str(&d).ok()),
        deliver_to: row.get(9)?,
        expires_ms: row.get(10)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jid::{Jid, Username};

    fn db() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::schema::migrate(&mut conn).unwrap();
        conn
    }

    fn msg(from: &str, to: &str, body: &str) -> NewMessage {
        NewMessage {
            from: Jid::full(Username::parse(from).unwrap(), "r".into()),
            to: Jid::bare(Username::parse(to).unwrap()),
            kind: MessageKind::Chat,
            body: body.into(),
            data: None,
            client_id: None,
            expires_ms: None,
        }
    }

    #[test]
    fn pending_messages_wait_until_marked() {
        let conn = db();
        let a = append(&conn, &msg("ann", "bob", "one"), None).unwrap();
        let b = append(&conn, &msg("ann", "bob", "two"), Some("phone".into())).unwrap();
        assert!(b.id > a.id);
        let pending = pending_for(&conn, "bob").unwrap();
        assert_eq!(pending.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(), ["one", "two"]);
        mark_delivered(&conn, &[a.id]).unwrap();
        retarget_pending(&conn, "bob", "phone").unwrap();
        let pending = pending_for(&conn, "bob").unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].deliver_to, None);
    }

    #[test]
    fn history_pages_oldest_first() {
        let conn = db();
        for i in 0..5 {
            append(&conn, &msg("ann", "bob", &format!("m{i}")), None).unwrap();
        }
        append(&conn, &msg("carl", "bob", "other 100%"), None).unwrap();
        let q = HistoryQuery { username: "bob".into(), with: Some("ann".into()), limit: 2, ..Default::default() };
        let page = history(&conn, &q).unwrap();
        assert_eq!(page.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(), ["m3", "m4"]);
        let older = history(&conn, &HistoryQuery { before: Some(page[0].id), ..q.clone() }).unwrap();
        assert_eq!(older.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(), ["m1", "m2"]);
        let first = history(&conn, &HistoryQuery { after: Some(0), ..q.clone() }).unwrap();
        assert_eq!(first[0].body, "m0");
        let kw =
            HistoryQuery { username: "bob".into(), keywords: Some("100%".into()), limit: 10, ..Default::default() };
        assert_eq!(history(&conn, &kw).unwrap().len(), 1);
        assert_eq!(received_since(&conn, "bob", first[0].id, 100).unwrap().len(), 5);
    }
}
