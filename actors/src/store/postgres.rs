//! Connecting to PostgreSQL: the blocking client (`postgres`, on the store's own threads),
//! without TLS (the database is expected on the node's network; put a TLS proxy or a local
//! socket in between otherwise).

use super::db::{Db, PgConnection};
use super::{StoreError, StoreResult};

/// One connection to the database at `url`. The blocking client runs a small runtime of its
/// own, which cannot start on a thread that already runs one: callers on an actix thread
/// connect through [`connect_off_thread`].
pub fn connect(url: &str) -> StoreResult<Db> {
    let config: postgres::Config = url.parse().map_err(|e| StoreError::database("the PostgreSQL URL", e))?;
    let client = config.connect(postgres::NoTls).map_err(|e| StoreError::database("the PostgreSQL connection", e))?;
    Ok(Db::Postgres(Box::new(PgConnection::new(config, client))))
}

/// Runs `work` on a thread of its own and waits for it: how a connection made at start-up
/// (migrations) is used from a thread that runs async tasks.
pub fn connect_off_thread<T: Send>(work: impl FnOnce() -> StoreResult<T> + Send) -> StoreResult<T> {
    std::thread::scope(|scope| {
        scope.spawn(work).join().unwrap_or_else(|_| Err(StoreError::database("the store", StartFailed)))
    })
}

#[derive(Debug, thiserror::Error)]
#[error("the start-up connection's thread failed")]
struct StartFailed;
