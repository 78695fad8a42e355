//! Web sites: the `sites` table. Origins are kept as one newline-separated column.

use super::db::{args, Db, Row};

use super::{StoreError, StoreResult};
use crate::model::sites::{IdsIn, SiteRecord};

/// Runs `sql` with the site's fields as ?1 to ?10, in the table's column order.
fn execute(conn: &Db, sql: &str, site: &SiteRecord) -> StoreResult<usize> {
    conn.execute(
        sql,
        args![
            site.id,
            site.name,
            site.users_info_url,
            site.api_login,
            site.api_password,
            site.origins.join("\n"),
            site.ids_in.as_str(),
            site.secret,
            site.created_ms,
            site.modified_ms
        ],
    )
}

/// `Conflict` if the id is taken.
pub fn create(conn: &Db, site: &SiteRecord) -> StoreResult<()> {
    let sql = "INSERT INTO sites (id, name, users_info_url, api_login, api_password, origins, ids_in, secret,
                                  created_ms, modified_ms)
               VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT (id) DO NOTHING";
    if execute(conn, sql, site)? == 0 {
        return Err(StoreError::Conflict(format!("site '{}' already exists", site.id)));
    }
    Ok(())
}

/// `NotFound` if there is no such site; its creation time (?9) stays (compared with itself,
/// so that every parameter has a type on PostgreSQL).
pub fn update(conn: &Db, site: &SiteRecord) -> StoreResult<()> {
    let sql = "UPDATE sites SET name = ?2, users_info_url = ?3, api_login = ?4, api_password = ?5, origins = ?6,
                                ids_in = ?7, secret = ?8, modified_ms = ?10
               WHERE id = ?1 AND CAST(?9 AS BIGINT) = CAST(?9 AS BIGINT)";
    if execute(conn, sql, site)? == 0 {
        return Err(StoreError::NotFound(format!("site '{}' does not exist", site.id)));
    }
    Ok(())
}

pub fn delete(conn: &Db, id: &str) -> StoreResult<bool> {
    Ok(conn.execute("DELETE FROM sites WHERE id = ?1", args![id])? > 0)
}

fn site(row: &Row) -> StoreResult<SiteRecord> {
    let origins: String = row.get(5)?;
    Ok(SiteRecord {
        id: row.get(0)?,
        name: row.get(1)?,
        users_info_url: row.get(2)?,
        api_login: row.get(3)?,
        api_password: row.get(4)?,
        origins: origins.lines().filter(|o| !o.is_empty()).map(str::to_owned).collect(),
        ids_in: IdsIn::parse(&row.get::<String>(6)?).unwrap_or_default(),
        secret: row.get(7)?,
        created_ms: row.get(8)?,
        modified_ms: row.get(9)?,
    })
}

/// Every site, by id.
pub fn load_all(conn: &Db) -> StoreResult<Vec<SiteRecord>> {
    let rows = conn.query_map(
        "SELECT id, name, users_info_url, api_login, api_password, origins, ids_in, secret, created_ms, modified_ms
         FROM sites ORDER BY id",
        args![],
        site,
    )?;
    Ok(rows)
}
