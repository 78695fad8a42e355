//! Numbered schema migrations, applied in order at start-up. Never edit a released migration:
//! add the next one.
//!
//! The migrations are written in SQLite's dialect; PostgreSQL gets the same text with its
//! own names for the types ([`postgres_text`]), and a migration that must differ says so
//! with [`Migration::Each`]. SQLite keeps the number of the last one applied in `PRAGMA
//! user_version`; PostgreSQL in the table `schema_version`, under an advisory lock so that
//! nodes starting together migrate once.

use super::db::{args, Db};
use super::StoreResult;

/// One migration.
enum Migration {
    /// The same statements on both engines (PostgreSQL's through [`postgres_text`]).
    Same(&'static str),
    /// Statements that differ by engine.
    Each { sqlite: &'static str, postgres: &'static str },
}

use Migration::{Each, Same};

const MIGRATIONS: &[Migration] = &[
    // 1: accounts and the message archive.
    Same(
        "CREATE TABLE users (
         username      TEXT PRIMARY KEY,
         password_hash TEXT NOT NULL,
         name          TEXT NOT NULL DEFAULT '',
         email         TEXT NOT NULL DEFAULT '',
         created_ms    INTEGER NOT NULL,
         modified_ms   INTEGER NOT NULL
     );
     CREATE TABLE user_properties (
         username TEXT NOT NULL REFERENCES users(username) ON DELETE CASCADE,
         key      TEXT NOT NULL,
         value    TEXT NOT NULL,
         PRIMARY KEY (username, key)
     );
     -- Every 1:1 message, in commit order. `pending` = not yet pushed to a live station;
     -- `deliver_to` = the station (resource) it waits for, NULL for any.
     CREATE TABLE messages (
         id            INTEGER PRIMARY KEY AUTOINCREMENT,
         stamp_ms      INTEGER NOT NULL,
         kind          TEXT NOT NULL,
         from_user     TEXT NOT NULL,
         from_resource TEXT,
         to_user       TEXT NOT NULL,
         to_resource   TEXT,
         body          TEXT NOT NULL,
         data          TEXT,
         pending       INTEGER NOT NULL DEFAULT 1,
         deliver_to    TEXT
     );
     CREATE INDEX messages_to ON messages (to_user, id);
     CREATE INDEX messages_from ON messages (from_user, id);
     CREATE INDEX messages_pending ON messages (to_user, id) WHERE pending = 1;",
    ),
    // 2: contacts (one row per side of a pair, see roster.rs) and blocklists.
    Same(
        "CREATE TABLE roster (
         owner        TEXT NOT NULL REFERENCES users(username) ON DELETE CASCADE,
         contact      TEXT NOT NULL REFERENCES users(username) ON DELETE CASCADE,
         nickname     TEXT,
         groups       TEXT NOT NULL DEFAULT '[]',
         subscription INTEGER NOT NULL DEFAULT 0,
         ask_out      INTEGER NOT NULL DEFAULT 0,
         pending_in   INTEGER NOT NULL DEFAULT 0,
         preapproved  INTEGER NOT NULL DEFAULT 0,
         listed       INTEGER NOT NULL DEFAULT 0,
         PRIMARY KEY (owner, contact)
     ) WITHOUT ROWID;
     CREATE INDEX roster_contact ON roster (contact);
     CREATE TABLE blocklist (
         blocker    TEXT NOT NULL REFERENCES users(username) ON DELETE CASCADE,
         blocked    TEXT NOT NULL REFERENCES users(username) ON DELETE CASCADE,
         created_ms INTEGER NOT NULL,
         PRIMARY KEY (blocker, blocked)
     ) WITHOUT ROWID;
     CREATE INDEX blocklist_blocked ON blocklist (blocked);",
    ),
    // 3: persistent MUC rooms (config as JSON), their affiliations, and every room message.
    // The archive outlives a room; a room's history starts at its `created_ms`.
    Same(
        "CREATE TABLE rooms (
         name        TEXT PRIMARY KEY,
         config      TEXT NOT NULL,
         created_ms  INTEGER NOT NULL,
         modified_ms INTEGER NOT NULL
     );
     CREATE TABLE room_affiliations (
         room        TEXT NOT NULL REFERENCES rooms(name) ON DELETE CASCADE,
         username    TEXT NOT NULL,
         affiliation TEXT NOT NULL,
         PRIMARY KEY (room, username)
     ) WITHOUT ROWID;
     CREATE TABLE room_messages (
         id        INTEGER PRIMARY KEY AUTOINCREMENT,
         room      TEXT NOT NULL,
         stamp_ms  INTEGER NOT NULL,
         nick      TEXT NOT NULL,
         from_user TEXT NOT NULL,
         body      TEXT NOT NULL,
         data      TEXT
     );
     CREATE INDEX room_messages_room ON room_messages (room, id);",
    ),
    // 4: Fastpath workgroups, their agents (members), and one row per chat a workgroup
    // set up (its transcript is the room's archive in `room_messages`).
    Same(
        "CREATE TABLE workgroups (
         name               TEXT PRIMARY KEY,
         description        TEXT NOT NULL,
         open               INTEGER NOT NULL,
         max_chats          INTEGER NOT NULL,
         offer_timeout_ms   INTEGER NOT NULL,
         request_timeout_ms INTEGER NOT NULL,
         created_ms         INTEGER NOT NULL,
         modified_ms        INTEGER NOT NULL
     );
     CREATE TABLE workgroup_members (
         workgroup TEXT NOT NULL REFERENCES workgroups(name) ON DELETE CASCADE,
         username  TEXT NOT NULL REFERENCES users(username) ON DELETE CASCADE,
         PRIMARY KEY (workgroup, username)
     ) WITHOUT ROWID;
     CREATE TABLE workgroup_chats (
         room       TEXT PRIMARY KEY,
         workgroup  TEXT NOT NULL,
         visitor    TEXT NOT NULL,
         agent      TEXT NOT NULL,
         question   TEXT NOT NULL,
         email      TEXT NOT NULL,
         started_ms INTEGER NOT NULL,
         ended_ms   INTEGER
     );
     CREATE INDEX workgroup_chats_workgroup ON workgroup_chats (workgroup, started_ms);",
    ),
    // 5: what an account is for: `user` (a person) or `http` (an HTTP API user).
    Same("ALTER TABLE users ADD COLUMN kind TEXT NOT NULL DEFAULT 'user';"),
    // 6: HTTP API users' folders other than the inbox (which is what waits for them in
    // `messages`); accounts found by e-mail address.
    Same(
        "CREATE TABLE mailbox (
         owner          TEXT NOT NULL REFERENCES users(username) ON DELETE CASCADE,
         message_id     TEXT NOT NULL,
         folder         TEXT NOT NULL,
         from_user      TEXT NOT NULL,
         from_station   TEXT,
         to_address     TEXT NOT NULL,
         to_user        TEXT,
         to_station     TEXT,
         text           TEXT NOT NULL,
         created_ms     INTEGER NOT NULL,
         valid_until_ms INTEGER,
         time_to_send_ms INTEGER,
         reports        INTEGER,
         tags           TEXT NOT NULL DEFAULT '[]',
         status         TEXT,
         archive_id     INTEGER,
         marked         INTEGER NOT NULL DEFAULT 0,
         filed_ms       INTEGER NOT NULL,
         PRIMARY KEY (owner, folder, message_id)
     );
     CREATE INDEX mailbox_due ON mailbox (time_to_send_ms) WHERE folder = 'outbox';
     CREATE INDEX users_email ON users (lower(trim(email)));",
    ),
    // 7: Ozeki clients: each station's API key (its SHA-256; a station id is unique), each user's settings of a
    // conversation, and the reports (read markers) made in conversations.
    Same(
        "CREATE TABLE ozeki_keys (
         station    TEXT PRIMARY KEY,
         username   TEXT NOT NULL REFERENCES users(username) ON DELETE CASCADE,
         digest     BLOB NOT NULL UNIQUE,
         created_ms INTEGER NOT NULL
     );
     CREATE INDEX ozeki_keys_user ON ozeki_keys (username);
     CREATE TABLE ozeki_conversations (
         conversation    TEXT NOT NULL,
         username        TEXT NOT NULL REFERENCES users(username) ON DELETE CASCADE,
         peer            TEXT NOT NULL,
         instance        TEXT NOT NULL,
         muted           INTEGER NOT NULL,
         favorite        INTEGER NOT NULL,
         hide_id         TEXT NOT NULL,
         color           TEXT NOT NULL,
         cleared_through INTEGER NOT NULL,
         changed_ms      INTEGER NOT NULL,
         PRIMARY KEY (conversation, username)
     );
     CREATE INDEX ozeki_conversations_user ON ozeki_conversations (username);
     CREATE TABLE ozeki_reports (
         seq          INTEGER PRIMARY KEY AUTOINCREMENT,
         conversation TEXT NOT NULL,
         report_id    TEXT NOT NULL,
         username     TEXT NOT NULL,
         kind         TEXT NOT NULL,
         created_ms   INTEGER NOT NULL,
         message_ids  TEXT NOT NULL
     );
     CREATE INDEX ozeki_reports_conversation ON ozeki_reports (conversation, seq);",
    ),
    // 8: a message may expire (Ozeki's ValidUntil): after that it is not delivered from the
    // offline store.
    Same("ALTER TABLE messages ADD COLUMN expires_ms INTEGER;"),
    // 9: external apps (each with an account of kind 'app'), their chats (1:1, or rooms the
    // app is attached to), and the webhook outbox: a delivery row is written in the same
    // transaction as its message (`message_id` is a room message's for a room chat).
    Same(
        "CREATE TABLE apps (
         id              TEXT PRIMARY KEY,
         name            TEXT NOT NULL UNIQUE REFERENCES users(username) ON DELETE CASCADE,
         description     TEXT NOT NULL,
         token_digest    BLOB NOT NULL UNIQUE,
         signature_token TEXT,
         webhook_url     TEXT,
         created_ms      INTEGER NOT NULL,
         modified_ms     INTEGER NOT NULL
     );
     CREATE TABLE app_chats (
         chat_id    TEXT PRIMARY KEY,
         app_id     TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
         kind       TEXT NOT NULL,
         peer       TEXT NOT NULL,
         created_ms INTEGER NOT NULL,
         UNIQUE (app_id, kind, peer)
     );
     CREATE INDEX app_chats_rooms ON app_chats (peer) WHERE kind = 'room';
     CREATE TABLE app_deliveries (
         seq             INTEGER PRIMARY KEY AUTOINCREMENT,
         delivery_id     TEXT NOT NULL UNIQUE,
         app_id          TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
         chat_id         TEXT NOT NULL,
         kind            TEXT NOT NULL,
         message_id      INTEGER NOT NULL,
         state           TEXT NOT NULL,
         attempts        INTEGER NOT NULL,
         next_attempt_ms INTEGER NOT NULL,
         last_error      TEXT,
         created_ms      INTEGER NOT NULL
     );
     CREATE INDEX app_deliveries_pending ON app_deliveries (chat_id, seq) WHERE state = 'pending';
     CREATE INDEX app_deliveries_app ON app_deliveries (app_id, state, seq);",
    ),
    // 10: system properties the admin API keeps (the REST API plugin's).
    Same(
        "CREATE TABLE system_properties (
         key   TEXT PRIMARY KEY,
         value TEXT NOT NULL
     ) WITHOUT ROWID;",
    ),
    // 11: the admin can lock an account out.
    Same("ALTER TABLE users ADD COLUMN locked INTEGER NOT NULL DEFAULT 0;"),
    // 12: user groups (shared rosters, room affiliations and workgroup agents by group) and
    // vCards.
    Same(
        "CREATE TABLE user_groups (
         name        TEXT PRIMARY KEY,
         description TEXT NOT NULL DEFAULT '',
         shared      INTEGER NOT NULL DEFAULT 0,
         created_ms  INTEGER NOT NULL,
         modified_ms INTEGER NOT NULL
     );
     CREATE TABLE group_members (
         group_name TEXT NOT NULL REFERENCES user_groups(name) ON DELETE CASCADE,
         username   TEXT NOT NULL REFERENCES users(username) ON DELETE CASCADE,
         admin      INTEGER NOT NULL DEFAULT 0,
         PRIMARY KEY (group_name, username)
     ) WITHOUT ROWID;
     CREATE INDEX group_members_user ON group_members (username);
     CREATE TABLE room_group_affiliations (
         room        TEXT NOT NULL REFERENCES rooms(name) ON DELETE CASCADE,
         group_name  TEXT NOT NULL REFERENCES user_groups(name) ON DELETE CASCADE,
         affiliation TEXT NOT NULL,
         PRIMARY KEY (room, group_name)
     ) WITHOUT ROWID;
     CREATE TABLE workgroup_member_groups (
         workgroup  TEXT NOT NULL REFERENCES workgroups(name) ON DELETE CASCADE,
         group_name TEXT NOT NULL REFERENCES user_groups(name) ON DELETE CASCADE,
         PRIMARY KEY (workgroup, group_name)
     ) WITHOUT ROWID;
     CREATE TABLE vcards (
         username    TEXT PRIMARY KEY REFERENCES users(username) ON DELETE CASCADE,
         vcard       TEXT NOT NULL,
         modified_ms INTEGER NOT NULL
     ) WITHOUT ROWID;",
    ),
    // 13: MUC services besides the default one.
    Same(
        "CREATE TABLE muc_services (
         name        TEXT PRIMARY KEY,
         description TEXT NOT NULL DEFAULT '',
         hidden      INTEGER NOT NULL DEFAULT 0
     ) WITHOUT ROWID;",
    ),
    // 14: web sites whose users sign in with the site's tokens.
    Same(
        "CREATE TABLE sites (
         id             TEXT PRIMARY KEY,
         name           TEXT NOT NULL,
         users_info_url TEXT NOT NULL,
         api_login      TEXT NOT NULL,
         api_password   TEXT NOT NULL,
         origins        TEXT NOT NULL,
         ids_in         TEXT NOT NULL,
         secret         TEXT NOT NULL,
         created_ms     INTEGER NOT NULL,
         modified_ms    INTEGER NOT NULL
     ) WITHOUT ROWID;",
    ),
    // 15: SCRAM credentials per account (RFC 5803 lines), derived when a password is set.
    Same("ALTER TABLE users ADD COLUMN scram TEXT NOT NULL DEFAULT '';"),
    // 16: PostgreSQL's mailbox gets the insertion order SQLite keeps as `rowid`.
    Each { sqlite: "", postgres: "ALTER TABLE mailbox ADD COLUMN seq BIGINT GENERATED BY DEFAULT AS IDENTITY;" },
    // 17: leases on duties that one node of a cluster does at a time.
    Same(
        "CREATE TABLE leases (
         name     TEXT PRIMARY KEY,
         node     TEXT NOT NULL,
         until_ms INTEGER NOT NULL
     ) WITHOUT ROWID;",
    ),
];

/// The statements of a migration in PostgreSQL's dialect.
fn postgres_text(sqlite: &str) -> String {
    sqlite
        .replace("INTEGER PRIMARY KEY AUTOINCREMENT", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY")
        .replace("INTEGER", "BIGINT")
        .replace("BLOB", "BYTEA")
        .replace(" WITHOUT ROWID", "")
}

/// Applies every migration newer than the database's, all in one transaction on
/// PostgreSQL and each in its own on SQLite.
pub fn migrate(db: &Db) -> StoreResult<()> {
    match db {
        Db::Sqlite(conn) => {
            let applied: usize = conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))? as usize;
            for (index, migration) in MIGRATIONS.iter().enumerate().skip(applied) {
                let number = index + 1;
                let sql = match migration {
                    Same(sql) | Each { sqlite: sql, .. } => sql,
                };
                conn.execute_batch(&format!("BEGIN; {sql}; PRAGMA user_version = {number}; COMMIT;"))
                    .inspect_err(|_| drop(conn.execute_batch("ROLLBACK")))?;
                tracing::info!(migration = number, "applied schema migration");
            }
            Ok(())
        }
        Db::Postgres(pg) => {
            pg.batch_execute(
                "BEGIN;
                 SELECT pg_advisory_xact_lock(727001);
                 CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL);",
            )?;
            let outcome = (|| {
                let applied = db.query_opt("SELECT version FROM schema_version", args![], |r| r.get::<i64>(0))?;
                if applied.is_none() {
                    db.execute("INSERT INTO schema_version (version) VALUES (0)", args![])?;
                }
                let applied = applied.unwrap_or(0) as usize;
                for (index, migration) in MIGRATIONS.iter().enumerate().skip(applied) {
                    match migration {
                        Same(sql) => pg.batch_execute(&postgres_text(sql))?,
                        Each { postgres, .. } => pg.batch_execute(postgres)?,
                    }
                    tracing::info!(migration = index + 1, "applied schema migration");
                }
                db.execute("UPDATE schema_version SET version = ?1", args![MIGRATIONS.len() as i64])?;
                pg.batch_execute("COMMIT")
            })();
            if outcome.is_err() {
                let _ = pg.batch_execute("ROLLBACK");
            }
            outcome
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_apply_once() {
        let db = Db::Sqlite(rusqlite::Connection::open_in_memory().unwrap());
        migrate(&db).unwrap();
        migrate(&db).unwrap();
        let version = db.query_one("PRAGMA user_version", args![], |r| r.get::<i64>(0)).unwrap();
        assert_eq!(version as usize, MIGRATIONS.len());
    }

    #[test]
    fn nodes_that_start_together_on_postgresql_migrate_once() {
        let url = crate::testing::TestPostgres::shared().database();
        let starts: Vec<_> = (0..3)
            .map(|_| {
                let url = url.clone();
                std::thread::spawn(move || migrate(&super::super::postgres::connect(&url)?))
            })
            .collect();
        for start in starts {
            start.join().unwrap().unwrap();
        }
        let db = super::super::postgres::connect(&url).unwrap();
        let version = db.query_one("SELECT version FROM schema_version", args![], |r| r.get::<i64>(0)).unwrap();
        assert_eq!(version as usize, MIGRATIONS.len());
        let rows = db.query_one("SELECT COUNT(*) FROM schema_version", args![], |r| r.get::<i64>(0)).unwrap();
        assert_eq!(rows, 1, "one version row");
        migrate(&db).unwrap();
    }

    #[test]
    fn postgres_gets_its_own_type_names() {
        let text = postgres_text("id INTEGER PRIMARY KEY AUTOINCREMENT, n INTEGER, b BLOB) WITHOUT ROWID;");
        assert_eq!(text, "id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, n BIGINT, b BYTEA);");
    }
}
