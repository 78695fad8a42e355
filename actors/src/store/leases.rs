//! Leases (`leases`): which node of a cluster does a duty, until when.

use super::db::{args, Db};
use super::StoreResult;

/// Takes or renews `name` for `node` until `until_ms` when it is free, `node`'s, or ran out
/// by `now_ms`; whether `node` holds it now. One statement, so two nodes claiming at once
/// cannot both win.
pub fn claim(conn: &Db, name: &str, node: &str, now_ms: i64, until_ms: i64) -> StoreResult<bool> {
    let changed = conn.execute(
        "INSERT INTO leases (name, node, until_ms) VALUES (?1, ?2, ?3)
         ON CONFLICT (name) DO UPDATE SET node = excluded.node, until_ms = excluded.until_ms
         WHERE leases.node = excluded.node OR leases.until_ms < ?4",
        args![name, node, until_ms, now_ms],
    )?;
    Ok(changed > 0)
}

pub fn release(conn: &Db, name: &str, node: &str) -> StoreResult<()> {
    conn.execute("DELETE FROM leases WHERE name = ?1 AND node = ?2", args![name, node])?;
    Ok(())
}

/// Claims each of `names` as [`claim`] does, in one transaction; the holder of each after
/// the claim, in order.
pub fn claim_each(conn: &Db, names: &[String], node: &str, now_ms: i64, until_ms: i64) -> StoreResult<Vec<String>> {
    let mut holders = Vec::with_capacity(names.len());
    for name in names {
        claim(conn, name, node, now_ms, until_ms)?;
        let holder = conn.query_map("SELECT node FROM leases WHERE name = ?1", args![name], |r| r.get::<String>(0))?;
        holders.push(holder.into_iter().next().unwrap_or_else(|| node.to_owned()));
    }
    Ok(holders)
}

/// Extends every lease `node` holds to `until_ms`: one statement however many it holds.
pub fn renew_all(conn: &Db, node: &str, until_ms: i64) -> StoreResult<()> {
    conn.execute("UPDATE leases SET until_ms = ?1 WHERE node = ?2", args![until_ms, node])?;
    Ok(())
}
