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
