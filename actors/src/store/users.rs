//! Accounts: the `users` and `user_properties` tables.

use super::db::{args, Db, Row};

use super::{StoreError, StoreResult};
use crate::clock::now_ms;
use crate::model::records::{AccountKind, NewUser, UserRecord, UserUpdate};
use crate::model::scram::ScramKeys;

pub fn create(conn: &Db, user: &NewUser) -> StoreResult<()> {
    let now = now_ms();
    let inserted = conn.execute(
        "INSERT INTO users (username, kind, password_hash, name, email, created_ms, modified_ms, scram)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7) ON CONFLICT (username) DO NOTHING",
        args![
            user.username,
            user.kind.as_str(),
            user.password_hash,
            user.name,
            user.email,
            now,
            ScramKeys::lines(&user.scram)
        ],
    )?;
    if inserted == 0 {
        return Err(StoreError::Conflict(format!("user '{}' already exists", user.username)));
    }
    replace_properties(conn, &user.username, &user.properties)
}

pub fn update(conn: &Db, update: &UserUpdate) -> StoreResult<()> {
    let changed = conn.execute(
        "UPDATE users SET
             password_hash = COALESCE(?2, password_hash),
             name = COALESCE(?3, name),
             email = COALESCE(?4, email),
             modified_ms = ?5,
             scram = COALESCE(?6, scram)
         WHERE username = ?1",
        args![
            update.username,
            update.password_hash,
            update.name,
            update.email,
            now_ms(),
            update.scram.as_deref().map(ScramKeys::lines)
        ],
    )?;
    if changed == 0 {
        return Err(not_found(&update.username));
    }
    if let Some(properties) = &update.properties {
        replace_properties(conn, &update.username, properties)?;
    }
    Ok(())
}

pub fn delete(conn: &Db, username: &str) -> StoreResult<()> {
    if conn.execute("DELETE FROM users WHERE username = ?1", args![username])? == 0 {
        return Err(not_found(username));
    }
    // The archive stays (it is also the other parties' history); nothing waits any more.
    conn.execute("UPDATE messages SET pending = 0 WHERE to_user = ?1 AND pending = 1", args![username])?;
    Ok(())
}

pub fn find(conn: &Db, username: &str) -> StoreResult<Option<UserRecord>> {
    let user = conn.query_opt(
        "SELECT username, password_hash, name, email, created_ms, modified_ms, kind, locked, scram
             FROM users WHERE username = ?1",
        args![username],
        row_to_user,
    )?;
    match user {
        Some(mut user) => {
            user.properties = properties_of(conn, &user.username)?;
            Ok(Some(user))
        }
        None => Ok(None),
    }
}

/// Every account, by user name; `search` matches user name, name or e-mail (case-insensitive).
pub fn list(conn: &Db, search: Option<&str>, limit: Option<usize>) -> StoreResult<Vec<UserRecord>> {
    let pattern = format!("%{}%", escape_like(search.unwrap_or("")));
    let limit = limit.map_or(i64::MAX, |l| l as i64);
    // `lower` on both sides: SQLite's LIKE ignores ASCII case, PostgreSQL's does not.
    let mut users = conn.query_map(
        "SELECT username, password_hash, name, email, created_ms, modified_ms, kind, locked, scram FROM users
         WHERE lower(username) LIKE lower(?1) ESCAPE '\\' OR lower(name) LIKE lower(?1) ESCAPE '\\'
            OR lower(email) LIKE lower(?1) ESCAPE '\\'
         ORDER BY username LIMIT ?2",
        args![pattern, limit],
        row_to_user,
    )?;
    for user in &mut users {
        user.properties = properties_of(conn, &user.username)?;
    }
    Ok(users)
}

/// Sets one property of a user (creating or replacing it).
pub fn set_property(conn: &Db, username: &str, key: &str, value: &str) -> StoreResult<()> {
    if !conn.exists("SELECT 1 FROM users WHERE username = ?1", args![username])? {
        return Err(not_found(username));
    }
    conn.execute(
        "INSERT INTO user_properties (username, key, value) VALUES (?1, ?2, ?3)
         ON CONFLICT (username, key) DO UPDATE SET value = excluded.value",
        args![username, key, value],
    )?;
    Ok(())
}

/// Removes one property of a user; `NotFound` if it was not set.
pub fn delete_property(conn: &Db, username: &str, key: &str) -> StoreResult<()> {
    let removed = conn.execute("DELETE FROM user_properties WHERE username = ?1 AND key = ?2", args![username, key])?;
    if removed == 0 {
        return Err(StoreError::NotFound(format!("user '{username}' has no property '{key}'")));
    }
    Ok(())
}

/// Every account's name and kind.
pub fn account_names(conn: &Db) -> StoreResult<Vec<(String, AccountKind)>> {
    let names = conn.query_map("SELECT username, kind FROM users", args![], |r| {
        let kind: String = r.get(1)?;
        Ok((r.get(0)?, AccountKind::parse(&kind).unwrap_or_default()))
    })?;
    Ok(names)
}

/// The account with this e-mail address (case and surrounding spaces aside); the first by
/// user name if several share it.
pub fn find_by_email(conn: &Db, email: &str) -> StoreResult<Option<UserRecord>> {
    let email = email.trim();
    if email.is_empty() {
        return Ok(None);
    }
    let username: Option<String> = conn.query_opt(
        "SELECT username FROM users WHERE lower(trim(email)) = lower(?1) ORDER BY username LIMIT 1",
        args![email],
        |r| r.get(0),
    )?;
    match username {
        Some(name) => find(conn, &name),
        None => Ok(None),
    }
}

/// Escapes `%`, `_` and the escape character itself for a `LIKE … ESCAPE '\'` pattern.
pub fn escape_like(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn replace_properties(conn: &Db, username: &str, properties: &[(String, String)]) -> StoreResult<()> {
    conn.execute("DELETE FROM user_properties WHERE username = ?1", args![username])?;
    for (key, value) in properties {
        conn.execute(
            "INSERT INTO user_properties (username, key, value) VALUES (?1, ?2, ?3)
             ON CONFLICT (username, key) DO UPDATE SET value = excluded.value",
            args![username, key, value],
        )?;
    }
    Ok(())
}

fn properties_of(conn: &Db, username: &str) -> StoreResult<Vec<(String, String)>> {
    let props = conn.query_map(
        "SELECT key, value FROM user_properties WHERE username = ?1 ORDER BY key",
        args![username],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok(props)
}

fn row_to_user(row: &Row<'_>) -> StoreResult<UserRecord> {
    Ok(UserRecord {
        username: row.get(0)?,
        password_hash: row.get(1)?,
        name: row.get(2)?,
        email: row.get(3)?,
        properties: Vec::new(),
        created_ms: row.get(4)?,
        modified_ms: row.get(5)?,
        // A kind this version does not know reads as a person's account.
        kind: AccountKind::parse(&row.get::<String>(6)?).unwrap_or_default(),
        locked: row.get(7)?,
        scram: ScramKeys::parse_lines(&row.get::<String>(8)?),
    })
}

/// Locks an account out (or lets it in again).
pub fn set_locked(conn: &Db, username: &str, locked: bool) -> StoreResult<()> {
    if conn.execute("UPDATE users SET locked = ?2 WHERE username = ?1", args![username, locked])? == 0 {
        return Err(not_found(username));
    }
    Ok(())
}

fn not_found(username: &str) -> StoreError {
    StoreError::NotFound(format!("user '{username}' does not exist"))
}

/// Every system property, by key.
pub fn system_properties(conn: &Db) -> StoreResult<Vec<(String, String)>> {
    let rows = conn
        .query_map("SELECT key, value FROM system_properties ORDER BY key", args![], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows)
}

/// Sets a system property; true if it was new.
pub fn put_system_property(conn: &Db, key: &str, value: &str) -> StoreResult<bool> {
    let existed = conn.exists("SELECT 1 FROM system_properties WHERE key = ?1", args![key])?;
    conn.execute(
        "INSERT INTO system_properties (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        args![key, value])?;
    Ok(!existed)
}

pub fn delete_system_property(conn: &Db, key: &str) -> StoreResult<bool> {
    Ok(conn.execute("DELETE FROM system_properties WHERE key = ?1", args![key])? > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Db {
        let conn = Db::Sqlite(rusqlite::Connection::open_in_memory().unwrap());
        super::super::schema::migrate(&conn).unwrap();
        conn
    }

    fn alice() -> NewUser {
        NewUser {
            kind: Default::default(),
            username: "alice".into(),
            password_hash: "h".into(),
            name: "Alice Liddell".into(),
            email: "alice@example.org".into(),
            properties: vec![("k".into(), "v".into())],
            scram: crate::scram::derive("pw"),
        }
    }

    #[test]
    fn create_find_update_delete() {
        let conn = db();
        create(&conn, &alice()).unwrap();
        assert!(matches!(create(&conn, &alice()), Err(StoreError::Conflict(_))));
        let found = find(&conn, "alice").unwrap().unwrap();
        assert_eq!(found.properties, vec![("k".to_string(), "v".to_string())]);
        let mechanisms: Vec<_> = found.scram.iter().map(|k| k.mechanism).collect();
        assert_eq!(mechanisms, crate::model::scram::ScramMechanism::ALL, "both mechanisms' credentials are kept");
        assert!(found.scram.iter().all(|k| k.iterations == crate::scram::ITERATIONS && k.stored_key.len() >= 20));
        update(&conn, &UserUpdate { username: "alice".into(), name: Some("A".into()), ..Default::default() }).unwrap();
        let renamed = find(&conn, "alice").unwrap().unwrap();
        assert_eq!((renamed.name.as_str(), renamed.scram), ("A", found.scram), "credentials stay unless given");
        assert_eq!(list(&conn, Some("EXAMPLE"), None).unwrap().len(), 1);
        assert_eq!(list(&conn, Some("%"), None).unwrap().len(), 0, "LIKE wildcards are literal");
        assert_eq!(list(&conn, None, Some(0)).unwrap().len(), 0);
        set_property(&conn, "alice", "k", "v2").unwrap();
        set_property(&conn, "alice", "new", "x").unwrap();
        assert_eq!(find(&conn, "alice").unwrap().unwrap().properties.len(), 2);
        delete_property(&conn, "alice", "new").unwrap();
        assert!(matches!(delete_property(&conn, "alice", "new"), Err(StoreError::NotFound(_))));
        assert!(matches!(set_property(&conn, "ghost", "k", "v"), Err(StoreError::NotFound(_))));
        delete(&conn, "alice").unwrap();
        assert!(matches!(delete(&conn, "alice"), Err(StoreError::NotFound(_))));
        assert!(find(&conn, "alice").unwrap().is_none());
    }
}
