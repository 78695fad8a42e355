//! HTTP API users' folders: the `mailbox` table, and the inbox, which is what waits for
//! the user in the `messages` table (see `model::mailbox`).

use super::db::{args, Db, Row};

use super::messages::{row_to_message, COLUMNS as MESSAGE_COLUMNS};
use super::StoreResult;
use crate::clock::now_ms;
use crate::model::mailbox::{Folder, Mail, MailAction, ReportRequests};

const COLUMNS: &str = "message_id, folder, from_user, from_station, to_address, to_user, to_station, text,
     created_ms, valid_until_ms, time_to_send_ms, reports, tags, status, archive_id, marked";

/// Files `mail` in its folder under `owner`, replacing one with the same id there.
pub fn put(conn: &Db, owner: &str, mail: &Mail) -> StoreResult<()> {
    let tags = serde_json::to_string(&mail.tags).expect("tags serialize");
    // Replaced as a new row, so that the folder's insertion order puts it last.
    conn.execute(
        "DELETE FROM mailbox WHERE owner = ?1 AND folder = ?2 AND message_id = ?3",
        args![owner, mail.folder.as_str(), mail.message_id],
    )?;
    conn.execute(
        &format!(
            "INSERT INTO mailbox (owner, {COLUMNS}, filed_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)"
        ),
        args![
            owner,
            mail.message_id,
            mail.folder.as_str(),
            mail.from_user,
            mail.from_station,
            mail.to_address,
            mail.to_user,
            mail.to_station,
            mail.text,
            mail.created_ms,
            mail.valid_until_ms,
            mail.time_to_send_ms,
            mail.reports.map(reports_bits),
            tags,
            mail.status,
            mail.archive_id,
            mail.marked,
            now_ms(),
        ],
    )?;
    Ok(())
}

pub fn find(conn: &Db, owner: &str, folder: Folder, message_id: &str) -> StoreResult<Option<Mail>> {
    conn.query_opt(
        &format!("SELECT {COLUMNS} FROM mailbox WHERE owner = ?1 AND folder = ?2 AND message_id = ?3"),
        args![owner, folder.as_str(), message_id],
        row_to_mail,
    )
}

/// The messages of `ids` filed in any of `folders`.
pub fn find_all(conn: &Db, owner: &str, folders: &[Folder], ids: &[String]) -> StoreResult<Vec<Mail>> {
    let mut found = Vec::new();
    for folder in folders {
        for id in ids {
            found.extend(find(conn, owner, *folder, id)?);
        }
    }
    Ok(found)
}

/// Up to `limit` unmarked messages of a folder, oldest first.
pub fn folder(conn: &Db, owner: &str, folder: Folder, limit: usize) -> StoreResult<Vec<Mail>> {
    if folder == Folder::Inbox {
        return inbox(conn, owner, limit);
    }
    let rows = conn.query_map(
        &format!(
            "SELECT {COLUMNS} FROM mailbox WHERE owner = ?1 AND folder = ?2 AND marked = 0 ORDER BY {} LIMIT ?3",
            conn.dialect().insertion_order()
        ),
        args![owner, folder.as_str(), limit as i64],
        row_to_mail,
    )?;
    Ok(rows)
}

/// What waits for `owner` in the archive and has not expired, oldest first.
fn inbox(conn: &Db, owner: &str, limit: usize) -> StoreResult<Vec<Mail>> {
    let rows = conn.query_map(
        &format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE to_user = ?1 AND pending = 1 AND kind IN ('chat', 'normal')
         AND (expires_ms IS NULL OR expires_ms > ?3) ORDER BY id LIMIT ?2"
        ),
        args![owner, limit as i64, now_ms()],
        row_to_message,
    )?;
    let waiting = rows;
    Ok(waiting.iter().map(|m| Mail::waiting(owner, m)).collect())
}

/// Deletes or marks the named messages of a folder; returns the ids it found, in the order
/// they were named.
pub fn file(conn: &Db, owner: &str, folder: Folder, ids: &[String], action: MailAction) -> StoreResult<Vec<String>> {
    let mut done = Vec::new();
    for id in ids {
        let found = match find(conn, owner, folder, id)? {
            Some(mail) => Some(mail),
            None if folder == Folder::Inbox => take_waiting(conn, owner, id)?,
            None => None,
        };
        let Some(mut mail) = found else { continue };
        match (action, folder) {
            (MailAction::Delete, Folder::Deleted) => {
                conn.execute(
                    "DELETE FROM mailbox WHERE owner = ?1 AND folder = 'deleted' AND message_id = ?2",
                    args![owner, id],
                )?;
            }
            (MailAction::Delete, _) => {
                conn.execute(
                    "DELETE FROM mailbox WHERE owner = ?1 AND folder = ?2 AND message_id = ?3",
                    args![owner, folder.as_str(), id],
                )?;
                mail.folder = Folder::Deleted;
                mail.marked = false;
                put(conn, owner, &mail)?;
            }
            (MailAction::Mark, _) => {
                mail.marked = true;
                put(conn, owner, &mail)?;
            }
        }
        done.push(id.clone());
    }
    Ok(done)
}

/// A message waiting in the archive for `owner`, taken out of the waiting set (it is no
/// longer pending) to be filed as a mailbox row.
fn take_waiting(conn: &Db, owner: &str, id: &str) -> StoreResult<Option<Mail>> {
    let Ok(archive_id) = id.parse::<i64>() else { return Ok(None) };
    let waiting = inbox_one(conn, owner, archive_id)?;
    if waiting.is_some() {
        conn.execute("UPDATE messages SET pending = 0 WHERE id = ?1", args![archive_id])?;
    }
    Ok(waiting)
}

fn inbox_one(conn: &Db, owner: &str, archive_id: i64) -> StoreResult<Option<Mail>> {
    let waiting = conn.query_opt(
        &format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ?1 AND to_user = ?2 AND pending = 1"),
        args![archive_id, owner],
        row_to_message,
    )?;
    Ok(waiting.map(|m| Mail::waiting(owner, &m)))
}

/// Outbox messages due at `now_ms`, oldest due first: (owner, message).
pub fn due(conn: &Db, now_ms: i64, limit: usize) -> StoreResult<Vec<(String, Mail)>> {
    let rows = conn.query_map(
        &format!(
            "SELECT {COLUMNS}, owner FROM mailbox
         WHERE folder = 'outbox' AND time_to_send_ms <= ?1 ORDER BY time_to_send_ms, {} LIMIT ?2",
            conn.dialect().insertion_order()
        ),
        args![now_ms, limit as i64],
        |row| Ok((row.get(16)?, row_to_mail(row)?)),
    )?;
    Ok(rows)
}

/// Moves a message out of the outbox into the folder `mail` names.
pub fn settle(conn: &Db, owner: &str, mail: &Mail) -> StoreResult<()> {
    conn.execute(
        "DELETE FROM mailbox WHERE owner = ?1 AND folder = 'outbox' AND message_id = ?2",
        args![owner, mail.message_id],
    )?;
    put(conn, owner, mail)
}

fn reports_bits(r: ReportRequests) -> i64 {
    i64::from(r.submit) | i64::from(r.delivery) << 1 | i64::from(r.view) << 2
}

fn row_to_mail(row: &Row<'_>) -> StoreResult<Mail> {
    let folder: String = row.get(1)?;
    let reports: Option<i64> = row.get(11)?;
    let tags: String = row.get(12)?;
    Ok(Mail {
        message_id: row.get(0)?,
        folder: Folder::parse(&folder).unwrap_or(Folder::Deleted),
        from_user: row.get(2)?,
        from_station: row.get(3)?,
        to_address: row.get(4)?,
        to_user: row.get(5)?,
        to_station: row.get(6)?,
        text: row.get(7)?,
        created_ms: row.get(8)?,
        valid_until_ms: row.get(9)?,
        time_to_send_ms: row.get(10)?,
        reports: reports.map(|bits| ReportRequests {
            submit: bits & 1 != 0,
            delivery: bits & 2 != 0,
            view: bits & 4 != 0,
        }),
        tags: serde_json::from_str(&tags).unwrap_or_default(),
        status: row.get(13)?,
        archive_id: row.get(14)?,
        marked: row.get(15)?,
    })
}
