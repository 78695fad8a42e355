//! The message archive and the offline queue (the `messages` table).

use super::db::{args, Db, Dialect, Param, Row, Value};
use super::{StoreError, StoreResult};
use crate::clock::now_ms;
use crate::model::records::HistoryQuery;
use crate::model::{MessageKind, NewMessage, StoredMessage};

pub(super) const COLUMNS: &str =
    "id, stamp_ms, kind, from_user, from_resource, to_user, to_resource, body, data, deliver_to, expires_ms";

pub fn append(conn: &Db, msg: &NewMessage, deliver_to: Option<String>) -> StoreResult<StoredMessage> {
    let stamp_ms = now_ms();
    let data = msg.data.as_ref().map(|d| d.to_string());
    let id = conn.insert(
        "INSERT INTO messages (stamp_ms, kind, from_user, from_resource, to_user, to_resource, body, data, deliver_to,
                               expires_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        args![
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
        ],
    )?;
    Ok(stored(msg, id, stamp_ms, deliver_to))
}

/// Appends several messages in one statement (PostgreSQL: `unnest` over one array per
/// column), their ids in the order given; on SQLite, one by one.
pub fn append_all(conn: &Db, msgs: &[(&NewMessage, Option<&str>)]) -> StoreResult<Vec<StoredMessage>> {
    if conn.dialect() == Dialect::Sqlite {
        return msgs.iter().map(|(msg, deliver_to)| append(conn, msg, deliver_to.map(str::to_owned))).collect();
    }
    let stamp_ms = now_ms();
    let data: Vec<Option<String>> = msgs.iter().map(|(m, _)| m.data.as_ref().map(|d| d.to_string())).collect();
    let column = |f: &dyn Fn(&NewMessage) -> Option<&str>| msgs.iter().map(|(m, _)| f(m)).collect::<Vec<_>>();
    let stamps = vec![stamp_ms; msgs.len()];
    let kinds = column(&|m| Some(m.kind.as_str()));
    let from_users = column(&|m| Some(m.from.user.as_str()));
    let from_resources = column(&|m| m.from.resource.as_deref());
    let to_users = column(&|m| Some(m.to.user.as_str()));
    let to_resources = column(&|m| m.to.resource.as_deref());
    let bodies = column(&|m| Some(m.body.as_str()));
    let data_texts: Vec<Option<&str>> = data.iter().map(|d| d.as_deref()).collect();
    let deliver_tos: Vec<Option<&str>> = msgs.iter().map(|(_, d)| *d).collect();
    let expiries: Vec<Option<i64>> = msgs.iter().map(|(m, _)| m.expires_ms).collect();
    // Ids are drawn in the order the rows are inserted, which is the arrays' order.
    let mut ids = conn.query_map(
        "INSERT INTO messages (stamp_ms, kind, from_user, from_resource, to_user, to_resource, body, data, deliver_to,
                               expires_ms)
         SELECT * FROM unnest(?1::BIGINT[], ?2::TEXT[], ?3::TEXT[], ?4::TEXT[], ?5::TEXT[], ?6::TEXT[], ?7::TEXT[],
                              ?8::TEXT[], ?9::TEXT[], ?10::BIGINT[])
         RETURNING id",
        args![
            Value::Ints(&stamps),
            Value::MaybeTexts(&kinds),
            Value::MaybeTexts(&from_users),
            Value::MaybeTexts(&from_resources),
            Value::MaybeTexts(&to_users),
            Value::MaybeTexts(&to_resources),
            Value::MaybeTexts(&bodies),
            Value::MaybeTexts(&data_texts),
            Value::MaybeTexts(&deliver_tos),
            Value::MaybeInts(&expiries),
        ],
        |r| r.get::<i64>(0),
    )?;
    ids.sort_unstable();
    if ids.len() != msgs.len() {
        return Err(StoreError::database("message", RowCount { expected: msgs.len(), got: ids.len() }));
    }
    Ok(msgs
        .iter()
        .zip(ids)
        .map(|((msg, deliver_to), id)| stored(msg, id, stamp_ms, deliver_to.map(str::to_owned)))
        .collect())
}

#[derive(Debug, thiserror::Error)]
#[error("{expected} messages were appended as {got} rows")]
struct RowCount {
    expected: usize,
    got: usize,
}

/// The stored form of a message just inserted.
fn stored(msg: &NewMessage, id: i64, stamp_ms: i64, deliver_to: Option<String>) -> StoredMessage {
    StoredMessage {
        id,
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
    }
}

pub fn mark_delivered(conn: &Db, ids: &[i64]) -> StoreResult<()> {
    set_pending(conn, ids, 0)
}

pub fn mark_pending(conn: &Db, ids: &[i64]) -> StoreResult<()> {
    set_pending(conn, ids, 1)
}

/// One statement per id on SQLite (each a B-tree lookup, no statement to parse); one for all
/// on PostgreSQL, where each statement is a round trip.
fn set_pending(conn: &Db, ids: &[i64], pending: i64) -> StoreResult<()> {
    match conn.dialect() {
        Dialect::Sqlite => conn.execute_each(
            if pending == 0 {
                "UPDATE messages SET pending = 0 WHERE id = ?1"
            } else {
                "UPDATE messages SET pending = 1 WHERE id = ?1"
            },
            ids,
        ),
        Dialect::Postgres => {
            conn.execute("UPDATE messages SET pending = ?1 WHERE id = ANY(?2)", args![pending, ids])?;
            Ok(())
        }
    }
}

/// What waits for `username` and has not expired, oldest first.
pub fn pending_for(conn: &Db, username: &str) -> StoreResult<Vec<StoredMessage>> {
    conn.query_map(
        &format!(
            "SELECT {COLUMNS} FROM messages WHERE to_user = ?1 AND pending = 1
             AND (expires_ms IS NULL OR expires_ms > ?2) ORDER BY id"
        ),
        args![username, now_ms()],
        row_to_message,
    )
}

pub fn retarget_pending(conn: &Db, username: &str, resource: &str) -> StoreResult<()> {
    conn.execute(
        "UPDATE messages SET deliver_to = NULL WHERE to_user = ?1 AND deliver_to = ?2 AND pending = 1",
        args![username, resource],
    )?;
    Ok(())
}

pub fn retarget_all_pending(conn: &Db) -> StoreResult<()> {
    conn.execute("UPDATE messages SET deliver_to = NULL WHERE pending = 1 AND deliver_to IS NOT NULL", args![])?;
    Ok(())
}

pub fn received_since(conn: &Db, username: &str, after_id: i64, limit: usize) -> StoreResult<Vec<StoredMessage>> {
    conn.query_map(
        &format!(
            "SELECT {COLUMNS} FROM messages
             WHERE to_user = ?1 AND id > ?2 AND kind IN ('chat', 'normal') ORDER BY id LIMIT ?3"
        ),
        args![username, after_id, limit],
        row_to_message,
    )
}

/// Everyone `username` exchanged 1:1 messages with, with the newest message's id and stamp,
/// newest first, at most `limit`.
pub fn peers_of(conn: &Db, username: &str, limit: usize) -> StoreResult<Vec<(String, i64, i64)>> {
    conn.query_map(
        "SELECT peer, MAX(id), MAX(stamp_ms) FROM (
             SELECT to_user AS peer, id, stamp_ms FROM messages WHERE from_user = ?1 AND kind IN ('chat', 'normal')
             UNION ALL
             SELECT from_user AS peer, id, stamp_ms FROM messages WHERE to_user = ?1 AND kind IN ('chat', 'normal')
         ) AS exchanged WHERE peer <> ?1 GROUP BY peer ORDER BY MAX(id) DESC LIMIT ?2",
        args![username, limit],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
}

/// A page of history, oldest first. With `after`, the oldest `limit` messages after it;
/// otherwise the newest `limit` messages (before `before`, when given).
pub fn history(conn: &Db, q: &HistoryQuery) -> StoreResult<Vec<StoredMessage>> {
    let mut sql = format!("SELECT {COLUMNS} FROM messages WHERE ");
    let mut args: Vec<Value<'_>> = Vec::new();
    fn arg<'a>(v: Value<'a>, args: &mut Vec<Value<'a>>) -> String {
        args.push(v);
        format!("?{}", args.len())
    }
    let me = arg(Value::Text(&q.username), &mut args);
    match &q.with {
        Some(with) => {
            let peer = arg(Value::Text(with), &mut args);
            sql.push_str(&format!(
                "((from_user = {me} AND to_user = {peer}) OR (from_user = {peer} AND to_user = {me}))"
            ));
        }
        None => sql.push_str(&format!("(from_user = {me} OR to_user = {me})")),
    }
    if let Some(start) = q.start_ms {
        sql.push_str(&format!(" AND stamp_ms >= {}", arg(Value::Int(start), &mut args)));
    }
    if let Some(end) = q.end_ms {
        sql.push_str(&format!(" AND stamp_ms <= {}", arg(Value::Int(end), &mut args)));
    }
    let pattern = q
        .keywords
        .as_deref()
        .filter(|k| !k.is_empty())
        .map(|keywords| format!("%{}%", super::users::escape_like(keywords)));
    if let Some(pattern) = &pattern {
        // Case-insensitive on both engines (PostgreSQL's LIKE is not).
        sql.push_str(&format!(" AND lower(body) LIKE lower({}) ESCAPE '\\'", arg(Value::Text(pattern), &mut args)));
    }
    if let Some(before) = q.before {
        sql.push_str(&format!(" AND id < {}", arg(Value::Int(before), &mut args)));
    }
    let ascending = q.after.is_some();
    if let Some(after) = q.after {
        sql.push_str(&format!(" AND id > {}", arg(Value::Int(after), &mut args)));
    }
    let limit = arg(q.limit.value(), &mut args);
    sql.push_str(&format!(" ORDER BY id {} LIMIT {limit}", if ascending { "ASC" } else { "DESC" }));
    let params: Vec<&dyn Param> = args.iter().map(|v| v as &dyn Param).collect();
    let mut rows = conn.query_map(&sql, &params, row_to_message)?;
    if !ascending {
        rows.reverse();
    }
    Ok(rows)
}

pub(super) fn row_to_message(row: &Row<'_>) -> StoreResult<StoredMessage> {
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

    fn db() -> Db {
        let conn = Db::Sqlite(rusqlite::Connection::open_in_memory().unwrap());
        super::super::schema::migrate(&conn).unwrap();
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
