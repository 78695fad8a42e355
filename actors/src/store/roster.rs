//! Contacts and blocklists: the `roster` and `blocklist` tables.

use std::collections::BTreeMap;

use super::db::{args, Db, Row};

use super::{groups, StoreError, StoreResult};
use crate::clock::now_ms;
use crate::model::groups::{transition_with_shared, with_shared};
use crate::model::records::{RosterItem, Subscription, Transition};
use crate::storage::RosterRule;

const COLUMNS: &str = "owner, contact, nickname, groups, subscription, ask_out, pending_in, preapproved, listed";

fn item_from_row(row: &Row<'_>) -> StoreResult<RosterItem> {
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
pub fn load(conn: &Db, owner: &str) -> StoreResult<Vec<RosterItem>> {
    let rows = conn.query_map(
        &format!("SELECT {COLUMNS} FROM roster WHERE owner = ?1 ORDER BY contact"),
        args![owner],
        item_from_row,
    )?;
    let mut stored: BTreeMap<String, RosterItem> = rows.into_iter().map(|item| (item.contact.clone(), item)).collect();
    for (contact, shared) in groups::shared_peers(conn, owner)? {
        let row = with_shared(stored.remove(&contact), owner, &contact, &shared);
        stored.extend(row.map(|row| (contact, row)));
    }
    Ok(stored.into_values().collect())
}

fn get(conn: &Db, owner: &str, contact: &str) -> StoreResult<Option<RosterItem>> {
    conn.query_opt(
        &format!("SELECT {COLUMNS} FROM roster WHERE owner = ?1 AND contact = ?2"),
        args![owner, contact],
        item_from_row,
    )
}

fn put(conn: &Db, owner: &str, contact: &str, row: Option<&RosterItem>) -> StoreResult<()> {
    match row {
        None => {
            conn.execute("DELETE FROM roster WHERE owner = ?1 AND contact = ?2", args![owner, contact])?;
        }
        Some(item) => {
            let groups = serde_json::to_string(&item.groups).expect("a list of strings serialises");
            conn.execute(
                &format!(
                    "INSERT INTO roster ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                     ON CONFLICT (owner, contact) DO UPDATE SET nickname = excluded.nickname,
                         groups = excluded.groups, subscription = excluded.subscription,
                         ask_out = excluded.ask_out, pending_in = excluded.pending_in,
                         preapproved = excluded.preapproved, listed = excluded.listed"
                ),
                args![
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
pub fn change(conn: &Db, owner: &str, contact: &str, rule: RosterRule) -> StoreResult<Transition> {
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
pub fn all_blocks(conn: &Db) -> StoreResult<Vec<(String, String)>> {
    let rows = conn.query_map("SELECT blocker, blocked FROM blocklist", args![], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows)
}

/// Adds (`on`) or removes a block; false if there was nothing to change.
pub fn set_block(conn: &Db, blocker: &str, blocked: &str, on: bool) -> StoreResult<bool> {
    let changed = if on {
        conn.execute(
            "INSERT INTO blocklist (blocker, blocked, created_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT (blocker, blocked) DO NOTHING",
            args![blocker, blocked, now_ms()],
        )?
    } else {
        conn.execute("DELETE FROM blocklist WHERE blocker = ?1 AND blocked = ?2", args![blocker, blocked])?
    };
    Ok(changed > 0)
}
