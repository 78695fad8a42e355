//! Contacts and blocklists: the `roster` and `blocklist` tables.

use std::collections::BTreeMap;

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::{groups, StoreError, StoreResult};
use crate::clock::now_ms;
use crate::model::groups::{transition_with_shared, with_shared};
use crate::model::records::{RosterItem, Subscription, Transition};
use crate::storage::RosterRule;

const COLUMNS: &str = "owner, contact, nickname, groups, subscription, ask_out, pending_in, preapproved, listed";

fn item_from_row(row: &Row<'_>) -> rusqlite::Result<RosterItem> {
    let groups: String = row.get(3)?;
    Ok(RosterItem {
        owner: row.get(0)?,
        contact: row.get(1)?,
        nickname: row.get(2)?,
        groups: serde_json::from_str(&groups).unwrap_or_default(),
        subscription: Subscription::from_code(row.get(4)?).unwrap_or_default(),
        ask_out: row.get(5)?,
        pending_in: row.get(6)?,
        preapproved: row.get(7)?,
        listed: row.get(8)?,
    })
}

/// Every row `owner` holds (listed items, and requests waiting for the owner's answer),
/// with the people of its shared groups (`roster::with_shared`), by contact.
pub fn load(conn: &Connection, owner: &str) -> StoreResult<Vec<RosterItem>> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM roster WHERE owner = ?1 ORDER BY contact"))?;
    let rows = stmt.query_map([owner], item_from_row)?;
    let mut stored: BTreeMap<String, RosterItem> =
        rows.map(|row| row.map(|item| (item.contact.clone(), item))).collect::<Result<_, _>>()?;
    for (contact, shared) in groups::shared_peers(conn, owner)? {
        let row = with_shared(stored.remove(&contact), owner, &contact, &shared);
        stored.extend(row.map(|row| (contact, row)));
    }
    Ok(stored.into_values().collect())
}

fn get(conn: &Connection, owner: &str, contact: &str) -> StoreResult<Option<RosterItem>> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM roster WHERE owner = ?1 AND contact = ?2"))?;
    Ok(stmt.query_row([owner, contact], item_from_row).optional()?)
}

fn put(conn: &Connection, owner: &str, contact: &str, row: Option<&RosterItem>) -> StoreResult<()> {
    match row {
        None => {
            conn.execute("DELETE FROM roster WHERE owner = ?1 AND contact = ?2", [owner, contact])?;
        }
        Some(item) => {
            let groups = serde_json::to_string(&item.groups).expect("a list of strings serialises");
            conn.execute(
                &format!("INSERT OR REPLACE INTO roster ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"),
                params![
                    item.owner,
                    item.contact,
                    item.nickname,
                    groups,
                    item.subscription.code(),
                    item.ask_out,
                    item.pending_in,
                    item.preapproved,
                    item.listed
                ],
            )?;
        }
    }
    Ok(())
}

/// A refusal of the owner's change to a contact it has only through shared groups: the
/// share, which the administrator manages, is why.
pub(super) fn refusal_with_shared(refused: StoreError, owner: &str, contact: &str, shared: &[String]) -> StoreError {
    match refused {
        StoreError::NotFound(_) if !shared.is_empty() => StoreError::Conflict(format!(
            "'{contact}' is in the contacts of '{owner}' through shared group '{}', which the administrator manages",
            shared.join("', '")
        )),
        other => other,
    }
}

/// Reads both rows of the pair (`owner`'s, then `contact`'s), runs the caller's `rule` on
/// them and writes both rows it returns, in the caller's transaction. The rule (RFC 6121's
/// subscription states) belongs to the caller; the store only keeps the two sides together.
pub fn change(conn: &Connection, owner: &str, contact: &str, rule: RosterRule) -> StoreResult<Transition> {
    let mine = get(conn, owner, contact)?;
    let theirs = get(conn, contact, owner)?;
    let shared = groups::shared_between(conn, owner, contact)?;
    let transition = rule(mine, theirs).map_err(|e| refusal_with_shared(e, owner, contact, &shared))?;
    for side in [&transition.owner_side, &transition.contact_side] {
        put(conn, &side.owner, &side.contact, side.after.as_ref())?;
    }
    Ok(transition_with_shared(transition, &shared))
}

/// Every (blocker, blocked) pair.
pub fn all_blocks(conn: &Connection) -> StoreResult<Vec<(String, String)>> {
    let mut stmt = conn.prepare("SELECT blocker, blocked FROM blocklist")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Adds (`on`) or removes a block; false if there was nothing to change.
pub fn set_block(conn: &Connection, blocker: &str, blocked: &str, on: bool) -> StoreResult<bool> {
    let changed = if on {
        conn.execute(
            "INSERT INTO blocklist (blocker, blocked, created_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT (blocker, blocked) DO NOTHING",
            params![blocker, blocked, now_ms()],
        )?
    } else {
        conn.execute("DELETE FROM blocklist WHERE blocker = ?1 AND blocked = ?2", [blocker, blocked])?
    };
    Ok(changed > 0)
}
