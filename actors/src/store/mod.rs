//! The store: SQLite (the embedded default) or PostgreSQL behind one interface.
//!
//! Blocking database calls never run on an actor's or a web worker's thread (DESIGN.md §5):
//! - reads run on a [`SyncArbiter`] of [`StoreReader`] actors, one connection each;
//! - writes go to the [`WriteBatcher`], which groups every write that arrives while a commit
//!   is in flight into the next transaction (group commit), and hands each batch to the one
//!   [`StoreWriter`] thread. Each write runs in its own savepoint, so one failing write (a
//!   duplicate user, say) never undoes the others in its batch.
//!
//! A write's future resolves only after its transaction committed; a write's `after_commit`
//! hook runs on the writer thread in commit order, which is how committed messages reach
//! the router in the order of their ids.
//!
//! The domain modules write their SQL once for both engines, through [`db::Db`]; the engine
//! is chosen when the store opens ([`Store::open`] for a SQLite file, [`Store::open_postgres`]
//! for a PostgreSQL URL), and the batching, the savepoints and the readers are the same.

mod apps;
#[cfg(test)]
mod contract;
pub(crate) mod db;
mod groups;
mod interfaces;
mod leases;
mod mailbox;
pub mod memory;
mod messages;
mod ozeki;
pub mod postgres;
mod rooms;
mod roster;
mod schema;
mod sites;
mod users;
mod workgroups;

use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use actix::prelude::*;
use tokio::sync::oneshot;

use db::{Db, Dialect};

use crate::model::{NewMessage, StoredMessage};
use crate::storage::AfterCommit;

pub use crate::model::records::{HistoryQuery, NewUser, UserRecord, UserUpdate};

pub use crate::storage::{StoreError, StoreResult};

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::database("the store", e)
    }
}

/// Tuning of the store, from the `[store]` config section.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Reader threads (connections) on the `SyncArbiter`.
    pub readers: usize,
    /// Most writes grouped in one transaction.
    pub max_batch: usize,
    /// SQLite `synchronous` pragma: `full` (survives power loss) or `normal` (survives a
    /// process crash, not power loss; faster). PostgreSQL commits as its server is set.
    pub synchronous: String,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions { readers: 2, max_batch: 1024, synchronous: "full".into() }
    }
}

/// Counters the writer keeps, for `/metrics`.
#[derive(Debug, Default)]
pub struct StoreStats {
    pub batches: std::sync::atomic::AtomicU64,
    pub writes: std::sync::atomic::AtomicU64,
    pub commit_micros: std::sync::atomic::AtomicU64,
}

/// The store's one interface. Cheap to clone; every method returns a `'static` future and
/// enqueues its work at call time, so calls made in order are executed in order.
#[derive(Clone)]
pub struct Store {
    batcher: Addr<WriteBatcher>,
    readers: Addr<StoreReader>,
    pub stats: Arc<StoreStats>,
}

impl Store {
    /// Opens (creating) the database file, applies migrations and starts the store's
    /// actors. Must be called from inside a running actix system.
    pub fn open(path: &Path, options: StoreOptions) -> StoreResult<Store> {
        let path = path.to_owned();
        let connect_options = options.clone();
        Store::start(move || open_connection(&path, &connect_options), options)
    }

    /// Connects to a PostgreSQL database (`postgres://user:password@host:port/name`),
    /// applies migrations and starts the store's actors, one connection per thread. Must be
    /// called from inside a running actix system; it blocks until the migrations are done.
    pub fn open_postgres(url: &str, options: StoreOptions) -> StoreResult<Store> {
        let url = url.to_owned();
        Store::start(move || postgres::connect(&url), options)
    }

    fn start<C>(connect: C, options: StoreOptions) -> StoreResult<Store>
    where
        C: Fn() -> StoreResult<Db> + Send + Sync + Clone + 'static,
    {
        // On a thread of its own: PostgreSQL's blocking client cannot start on an async one.
        postgres::connect_off_thread(|| {
            let db = connect()?;
            schema::migrate(&db)?;
            // Stations do not survive a restart: what waited for one waits for any.
            messages::retarget_all_pending(&db)
        })?;

        let stats = Arc::new(StoreStats::default());
        let writer_connect = connect.clone();
        let writer_stats = stats.clone();
        let writer = SyncArbiter::start(1, move || StoreWriter {
            db: writer_connect().expect("the database opened once at start-up opens again"),
            stats: writer_stats.clone(),
        });
        let readers = SyncArbiter::start(options.readers.max(1), move || StoreReader {
            db: connect().expect("the database opened once at start-up opens again"),
        });
        let batcher = WriteBatcher {
            writer,
            queue: Vec::new(),
            delivered_marks: Vec::new(),
            in_flight: false,
            max_batch: options.max_batch.max(1),
        }
        .start();
        Ok(Store { batcher, readers, stats })
    }

    /// Runs `work` in the next write transaction; resolves after the commit.
    pub fn write<T, F>(&self, work: F) -> impl Future<Output = StoreResult<T>> + 'static
    where
        T: Send + 'static,
        F: FnOnce(&Db) -> StoreResult<T> + Send + 'static,
    {
        self.write_then(work, |_| {})
    }

    /// As [`Store::write`], and runs `after_commit` with the result on the writer thread,
    /// in commit order, before the caller's future resolves.
    pub fn write_then<T, F, H>(&self, work: F, after_commit: H) -> impl Future<Output = StoreResult<T>> + 'static
    where
        T: Send + 'static,
        F: FnOnce(&Db) -> StoreResult<T> + Send + 'static,
        H: FnOnce(&T) + Send + 'static,
    {
        self.enqueue(Atomicity::OwnSavepoint, work, after_commit)
    }

    /// As [`Store::write_then`], for `work` that runs exactly one SQL statement: SQLite
    /// undoes a failed statement by itself, so it needs no savepoint (whose sub-journal
    /// copies every page the write touches). PostgreSQL gives every write a savepoint, since
    /// a failed statement aborts its whole transaction there.
    fn write_statement_then<T, F, H>(&self, work: F, after_commit: H) -> impl Future<Output = StoreResult<T>> + 'static
    where
        T: Send + 'static,
        F: FnOnce(&Db) -> StoreResult<T> + Send + 'static,
        H: FnOnce(&T) + Send + 'static,
    {
        self.enqueue(Atomicity::SingleStatement, work, after_commit)
    }

    fn enqueue<T, F, H>(
        &self,
        atomicity: Atomicity,
        work: F,
        after_commit: H,
    ) -> impl Future<Output = StoreResult<T>> + 'static
    where
        T: Send + 'static,
        F: FnOnce(&Db) -> StoreResult<T> + Send + 'static,
        H: FnOnce(&T) + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<StoreResult<T>>();
        let settle = settle_with(tx, after_commit);
        let run: WriteWork = Box::new(move |conn| settle(work(conn)));
        self.batcher.do_send(Write { op: WriteOp::Work { atomicity, run } });
        async move { rx.await.unwrap_or(Err(StoreError::Unavailable)) }
    }

    /// Appends a 1:1 message in the next write transaction, as [`Store::write_then`] does;
    /// appends that share a batch are one statement on PostgreSQL.
    fn append_then(
        &self,
        message: NewMessage,
        deliver_to: Option<String>,
        after_commit: AfterCommit<Arc<StoredMessage>>,
    ) -> impl Future<Output = StoreResult<Arc<StoredMessage>>> + 'static {
        let (tx, rx) = oneshot::channel::<StoreResult<Arc<StoredMessage>>>();
        let settle = settle_with(tx, after_commit);
        let settle: SettleAppend = Box::new(move |stored| settle(stored.map(Arc::new)));
        self.batcher.do_send(Write { op: WriteOp::Append(Box::new(AppendOp { message, deliver_to, settle })) });
        async move { rx.await.unwrap_or(Err(StoreError::Unavailable)) }
    }

    /// Runs `work` on a reader connection.
    pub fn read<T, F>(&self, work: F) -> impl Future<Output = StoreResult<T>> + 'static
    where
        T: Send + 'static,
        F: FnOnce(&Db) -> StoreResult<T> + Send + 'static,
    {
        let request = self.readers.send(Read { work: Box::new(work) });
        async move { request.await.unwrap_or(Err(StoreError::Unavailable)) }
    }

    /// Marks messages as delivered to a live station (no longer pending). Marks are not
    /// awaited: every mark that arrives while a commit is in flight goes into one statement
    /// loop of the next batch. A mark that fails is logged, and its messages stay pending,
    /// so they are delivered again (at least once).
    fn mark_delivered_later(&self, ids: Vec<i64>) {
        if !ids.is_empty() {
            self.batcher.do_send(MarkDelivered { ids });
        }
    }
}

fn open_connection(path: &Path, options: &StoreOptions) -> StoreResult<Db> {
    let conn = rusqlite::Connection::open(path)?;
    // Every statement the store runs stays parsed (the default cache holds 16).
    conn.set_prepared_statement_cache_capacity(64);
    let synchronous = match options.synchronous.as_str() {
        "normal" => "NORMAL",
        _ => "FULL",
    };
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = {synchronous};
         PRAGMA foreign_keys = ON;
         PRAGMA busy_timeout = 5000;"
    ))?;
    Ok(Db::Sqlite(conn))
}

// ---- the write path -------------------------------------------------------------------

/// Reports a write's outcome once its transaction committed (or failed).
type Completion = Box<dyn FnOnce(Result<(), StoreError>) + Send>;
/// One write's work: runs inside the batch transaction, says whether it succeeded, and
/// returns what to do when the commit is known.
type WriteWork = Box<dyn FnOnce(&Db) -> (bool, Completion) + Send>;

/// How a failed write is undone without undoing the rest of its batch.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Atomicity {
    /// Several statements: the write runs in a savepoint, rolled back if it fails.
    OwnSavepoint,
    /// One statement (or independent ones, each fine to keep alone): SQLite undoes a
    /// failed statement by itself (PostgreSQL does not: there it gets a savepoint too).
    SingleStatement,
}

/// What a write's work returns to the writer: whether it succeeded, and what to do when the
/// commit is known (answer the caller, after the write's `after_commit` hook).
fn settle_with<T: Send + 'static>(
    tx: oneshot::Sender<StoreResult<T>>,
    after_commit: impl FnOnce(&T) + Send + 'static,
) -> impl FnOnce(StoreResult<T>) -> (bool, Completion) + Send + 'static {
    move |result| match result {
        Ok(value) => {
            let done: Completion = Box::new(move |outcome| {
                let _ = tx.send(outcome.map(|()| {
                    after_commit(&value);
                    value
                }));
            });
            (true, done)
        }
        Err(e) => (false, Box::new(move |_| drop(tx.send(Err(e))))),
    }
}

/// One write of a batch.
enum WriteOp {
    /// Work of its own.
    Work { atomicity: Atomicity, run: WriteWork },
    /// A 1:1 message: the batch's consecutive ones are one statement on PostgreSQL.
    Append(Box<AppendOp>),
}

/// Given the stored message (or why it was not), what to do once the commit is known.
type SettleAppend = Box<dyn FnOnce(StoreResult<StoredMessage>) -> (bool, Completion) + Send>;

/// A message waiting to be appended.
struct AppendOp {
    message: NewMessage,
    deliver_to: Option<String>,
    settle: SettleAppend,
}

impl AppendOp {
    /// Appends it alone.
    fn run(self, db: &Db) -> (bool, Completion) {
        (self.settle)(messages::append(db, &self.message, self.deliver_to))
    }
}

/// A write for the batcher. Sent by [`Store`]; no reply (the op carries its own channel).
#[derive(Message)]
#[rtype(result = "()")]
struct Write {
    op: WriteOp,
}

/// Delivered marks for the batcher. Sent by [`Store::mark_delivered`].
#[derive(Message)]
#[rtype(result = "()")]
struct MarkDelivered {
    ids: Vec<i64>,
}

/// Collects writes while a commit is in flight and sends them as the next batch.
struct WriteBatcher {
    writer: Addr<StoreWriter>,
    queue: Vec<WriteOp>,
    /// Messages delivered live since the last batch left: one op in the next batch.
    delivered_marks: Vec<i64>,
    in_flight: bool,
    max_batch: usize,
}

impl Actor for WriteBatcher {
    type Context = Context<Self>;
}

impl WriteBatcher {
    fn flush(&mut self, ctx: &mut Context<Self>) {
        if self.in_flight || (self.queue.is_empty() && self.delivered_marks.is_empty()) {
            return;
        }
        let take = self.queue.len().min(self.max_batch);
        let mut ops: Vec<WriteOp> = Vec::with_capacity(take + 1);
        ops.extend(self.queue.drain(..take));
        if !self.delivered_marks.is_empty() {
            ops.push(mark_delivered_op(std::mem::take(&mut self.delivered_marks)));
        }
        self.in_flight = true;
        self.writer
            .send(CommitBatch { ops })
            .into_actor(self)
            .map(|_, act, ctx| {
                act.in_flight = false;
                act.flush(ctx);
            })
            .spawn(ctx);
    }
}

impl Handler<Write> for WriteBatcher {
    type Result = ();

    fn handle(&mut self, msg: Write, ctx: &mut Context<Self>) {
        self.queue.push(msg.op);
        self.flush(ctx);
    }
}

impl Handler<MarkDelivered> for WriteBatcher {
    type Result = ();

    fn handle(&mut self, msg: MarkDelivered, ctx: &mut Context<Self>) {
        self.delivered_marks.extend(msg.ids);
        self.flush(ctx);
    }
}

/// One write that clears the pending flag of every id in `ids`.
fn mark_delivered_op(ids: Vec<i64>) -> WriteOp {
    // Each id's update stands alone: a mark that sticks is a delivery that happened.
    let run: WriteWork = Box::new(move |conn| {
        let report = |ids: &[i64], e: &StoreError| {
            tracing::warn!(messages = ids.len(), error = %e, "could not mark messages delivered; they will be delivered again");
        };
        match messages::mark_delivered(conn, &ids) {
            Ok(()) => (
                true,
                Box::new(move |outcome: Result<(), StoreError>| {
                    if let Err(e) = outcome {
                        report(&ids, &e);
                    }
                }),
            ),
            Err(e) => {
                report(&ids, &e);
                (false, Box::new(|_| {}))
            }
        }
    });
    WriteOp::Work { atomicity: Atomicity::SingleStatement, run }
}

/// A batch of writes for one transaction. Sent by the batcher; replies when committed.
#[derive(Message)]
#[rtype(result = "()")]
struct CommitBatch {
    ops: Vec<WriteOp>,
}

/// The one writer connection, on its own thread.
struct StoreWriter {
    db: Db,
    stats: Arc<StoreStats>,
}

impl Actor for StoreWriter {
    type Context = SyncContext<Self>;
}

impl StoreWriter {
    /// One transaction; a savepoint only around the writes that need one.
    fn commit_on_sqlite(&self, ops: Vec<WriteOp>, completions: &mut Vec<(bool, Completion)>) -> StoreResult<()> {
        self.db.control("BEGIN IMMEDIATE")?;
        for op in ops {
            let (atomicity, run) = match op {
                WriteOp::Work { atomicity, run } => (atomicity, run),
                // One statement: SQLite undoes it by itself if it fails.
                WriteOp::Append(append) => {
                    completions.push(append.run(&self.db));
                    continue;
                }
            };
            let savepoint = atomicity == Atomicity::OwnSavepoint;
            if savepoint {
                self.db.control("SAVEPOINT op")?;
            }
            let (ok, done) = run(&self.db);
            if savepoint {
                if !ok {
                    self.db.control("ROLLBACK TO op")?;
                }
                self.db.control("RELEASE op")?;
            }
            completions.push((ok, done));
        }
        self.db.control("COMMIT")
    }

    /// One transaction, a savepoint around every write (a failed statement aborts the
    /// whole transaction on PostgreSQL), and around each run of consecutive appends, which
    /// are one statement. Ending one savepoint and opening the next is one round trip, as
    /// are `BEGIN` with the first and the last with `COMMIT`.
    fn commit_on_postgres(&self, ops: Vec<WriteOp>, completions: &mut Vec<(bool, Completion)>) -> StoreResult<()> {
        let mut units: Vec<Unit> = Vec::with_capacity(ops.len());
        for op in ops {
            match (op, units.last_mut()) {
                (WriteOp::Append(append), Some(Unit::Appends(run))) => run.push(*append),
                (WriteOp::Append(append), _) => units.push(Unit::Appends(vec![*append])),
                (WriteOp::Work { run, .. }, _) => units.push(Unit::Work(run)),
            }
        }
        self.db.control("BEGIN; SAVEPOINT op")?;
        let count = units.len();
        for (index, unit) in units.into_iter().enumerate() {
            let next = if index + 1 == count { "RELEASE op; COMMIT" } else { "RELEASE op; SAVEPOINT op" };
            match unit {
                Unit::Work(run) => {
                    let (ok, done) = run(&self.db);
                    completions.push((ok, done));
                    self.end_savepoint(ok, next)?;
                }
                Unit::Appends(run) => self.append_run_on_postgres(run, next, completions)?,
            }
        }
        if count == 0 {
            self.db.control("RELEASE op; COMMIT")?;
        }
        Ok(())
    }

    /// Appends consecutive messages in one statement; if that fails, each alone in a
    /// savepoint of its own, so that only the failing one is refused.
    fn append_run_on_postgres(
        &self,
        run: Vec<AppendOp>,
        next: &str,
        completions: &mut Vec<(bool, Completion)>,
    ) -> StoreResult<()> {
        if run.len() > 1 {
            let pairs: Vec<(&NewMessage, Option<&str>)> =
                run.iter().map(|a| (&a.message, a.deliver_to.as_deref())).collect();
            match messages::append_all(&self.db, &pairs) {
                Ok(stored) => {
                    for (append, stored) in run.into_iter().zip(stored) {
                        completions.push((append.settle)(Ok(stored)));
                    }
                    return self.db.control(next);
                }
                Err(e) => {
                    tracing::debug!(error = %e, messages = run.len(), "appending together failed; appending one by one");
                    self.db.control("ROLLBACK TO op")?;
                }
            }
        }
        let last = run.len().saturating_sub(1);
        for (index, append) in run.into_iter().enumerate() {
            let (ok, done) = append.run(&self.db);
            completions.push((ok, done));
            self.end_savepoint(ok, if index == last { next } else { "RELEASE op; SAVEPOINT op" })?;
        }
        Ok(())
    }

    /// Ends the current write's savepoint (undoing it when it failed) with `next`.
    fn end_savepoint(&self, ok: bool, next: &str) -> StoreResult<()> {
        if ok {
            self.db.control(next)
        } else {
            self.db.control(&format!("ROLLBACK TO op; {next}"))
        }
    }
}

/// What the PostgreSQL writer runs in one savepoint.
enum Unit {
    Work(WriteWork),
    Appends(Vec<AppendOp>),
}

impl Handler<CommitBatch> for StoreWriter {
    type Result = ();

    fn handle(&mut self, batch: CommitBatch, _: &mut SyncContext<Self>) {
        use std::sync::atomic::Ordering::Relaxed;
        let started = std::time::Instant::now();
        let count = batch.ops.len() as u64;
        let mut completions: Vec<(bool, Completion)> = Vec::with_capacity(batch.ops.len());
        // Without a connection no write runs: each caller hears the store is unavailable.
        let outcome = self.db.ready().and_then(|()| match self.db.dialect() {
            Dialect::Sqlite => self.commit_on_sqlite(batch.ops, &mut completions),
            Dialect::Postgres => self.commit_on_postgres(batch.ops, &mut completions),
        });
        if let Err(e) = &outcome {
            tracing::error!(error = %e, "store batch failed; rolling back");
            let _ = self.db.control("ROLLBACK");
        }
        self.stats.batches.fetch_add(1, Relaxed);
        self.stats.writes.fetch_add(count, Relaxed);
        self.stats.commit_micros.fetch_add(started.elapsed().as_micros() as u64, Relaxed);
        for (ok, done) in completions {
            // A failed op already reported its own error; the commit outcome is for the rest.
            done(if ok { outcome.clone() } else { Ok(()) });
        }
    }
}

// ---- the read path --------------------------------------------------------------------

type ReadWork<T> = Box<dyn FnOnce(&Db) -> StoreResult<T> + Send>;

/// A read for a reader thread. Sent by [`Store::read`]; replies with the work's result.
struct Read<T> {
    work: ReadWork<T>,
}

impl<T: Send + 'static> Message for Read<T> {
    type Result = StoreResult<T>;
}

/// One reader connection on the reader `SyncArbiter`.
struct StoreReader {
    db: Db,
}

impl Actor for StoreReader {
    type Context = SyncContext<Self>;
}

impl<T: Send + 'static> Handler<Read<T>> for StoreReader {
    type Result = StoreResult<T>;

    fn handle(&mut self, msg: Read<T>, _: &mut SyncContext<Self>) -> StoreResult<T> {
        self.db.ready()?;
        (msg.work)(&self.db)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering::Relaxed;
    use std::sync::Mutex;

    use super::*;
    use crate::jid::{Jid, Username};
    use crate::model::{MessageKind, NewMessage};
    use crate::storage::{AccountStorage, MessageStorage};
    use crate::test_support::test_user as user;
    use crate::testing::TestPostgres;

    /// The store on each engine: SQLite in `dir`, PostgreSQL in a fresh database.
    fn engines(dir: &tempfile::TempDir) -> Vec<(&'static str, Store)> {
        vec![
            ("sqlite", Store::open(&dir.path().join("t.db"), StoreOptions::default()).unwrap()),
            ("postgres", Store::open_postgres(&TestPostgres::shared().database(), StoreOptions::default()).unwrap()),
        ]
    }

    fn message(i: usize) -> NewMessage {
        NewMessage {
            from: Jid::full(Username::parse("ann").unwrap(), "r".into()),
            to: Jid::bare(Username::parse("bob").unwrap()),
            kind: MessageKind::Chat,
            body: format!("m{i}"),
            data: None,
            client_id: None,
            expires_ms: None,
        }
    }

    #[actix_rt::test]
    async fn writes_that_arrive_together_commit_together_in_order() {
        let dir = tempfile::tempdir().unwrap();
        for (engine, store) in engines(&dir) {
            let fed: Arc<Mutex<Vec<i64>>> = Arc::default();
            let mut appends = Vec::new();
            let mut duplicate_pair = None;
            for i in 0..200 {
                let fed = fed.clone();
                appends.push(store.append_message(message(i), None, Box::new(move |m| fed.lock().unwrap().push(m.id))));
                if i == 100 {
                    // The second of these fails inside a batch: it must undo only itself.
                    duplicate_pair = Some((store.create_user(user("carl")), store.create_user(user("carl"))));
                }
            }
            let ids: Vec<i64> =
                futures_util::future::join_all(appends).await.into_iter().map(|r| r.unwrap().id).collect();
            let (first, second) = duplicate_pair.unwrap();
            assert_eq!(first.await, Ok(()), "{engine}");
            assert!(matches!(second.await, Err(StoreError::Conflict(_))), "{engine}");
            assert!(store.find_user("carl".into()).await.unwrap().is_some(), "{engine}");
            assert!(ids.windows(2).all(|w| w[0] < w[1]), "{engine}: ids follow call order");
            assert_eq!(*fed.lock().unwrap(), ids, "{engine}: after_commit runs in commit order");
            let batches = store.stats.batches.load(Relaxed);
            let writes = store.stats.writes.load(Relaxed);
            assert_eq!(writes, 202, "{engine}");
            assert!(batches < 20, "{engine}: 202 writes issued together took {batches} commits");
        }
    }

    #[actix_rt::test]
    async fn a_failing_single_statement_undoes_only_itself() {
        let dir = tempfile::tempdir().unwrap();
        for (engine, store) in engines(&dir) {
            store.create_user(user("carl")).await.unwrap();
            // Issued together, so one batch: the middle one (no savepoint of its own) fails.
            let before = store.append_message(message(1), None, Box::new(|_| {}));
            let failing = store.write_statement_then(
                |c| c.execute("INSERT INTO users (username) SELECT username FROM users WHERE username = 'carl'", &[]),
                |_| {},
            );
            let after = store.append_message(message(2), None, Box::new(|_| {}));
            let (before, failing, after) = tokio::join!(before, failing, after);
            assert!(matches!(failing, Err(StoreError::Database { .. })), "{engine}: {failing:?}");
            let pending = store.pending_for("bob".into()).await.unwrap();
            let ids: Vec<i64> = pending.iter().map(|m| m.id).collect();
            assert_eq!(ids, vec![before.unwrap().id, after.unwrap().id], "{engine}: both appends around it committed");
        }
    }

    #[actix_rt::test]
    async fn appends_issued_together_keep_their_order_and_a_refused_one_only_refuses_itself() {
        let dir = tempfile::tempdir().unwrap();
        for (engine, store) in engines(&dir) {
            let fed: Arc<Mutex<Vec<i64>>> = Arc::default();
            let appends: Vec<_> = (0..100)
                .map(|i| {
                    let mut m = message(i);
                    if i == 50 {
                        // PostgreSQL's text holds no NUL: this one is refused there.
                        m.body = "a\0b".into();
                    }
                    let fed = fed.clone();
                    store.append_message(m, Some(format!("r{i}")), Box::new(move |m| fed.lock().unwrap().push(m.id)))
                })
                .collect();
            let results = futures_util::future::join_all(appends).await;
            let refused = results.iter().filter(|r| r.is_err()).count();
            assert_eq!(refused, usize::from(engine == "postgres"), "{engine}: {:?}", results[50]);
            let stored: Vec<_> = results.into_iter().flatten().collect();
            assert!(stored.windows(2).all(|w| w[0].id < w[1].id), "{engine}: ids follow call order");
            assert_eq!(*fed.lock().unwrap(), stored.iter().map(|m| m.id).collect::<Vec<_>>(), "{engine}");
            let pending = store.pending_for("bob".into()).await.unwrap();
            assert_eq!(pending.len(), stored.len(), "{engine}: every acknowledged append is stored");
            for (kept, read) in stored.iter().zip(&pending) {
                assert_eq!(
                    (kept.id, &kept.body, &kept.deliver_to),
                    (read.id, &read.body, &read.deliver_to),
                    "{engine}"
                );
            }
        }
    }

    #[actix_rt::test]
    async fn a_postgresql_connection_the_server_closed_is_made_again() {
        let url = TestPostgres::shared().database();
        let store = Store::open_postgres(&url, StoreOptions::default()).unwrap();
        store.create_user(user("ann")).await.unwrap();
        // The server ends every other session on the database (as a restart would).
        let killer = url.clone();
        std::thread::spawn(move || {
            let db = postgres::connect(&killer).unwrap();
            db.query_map(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                 WHERE datname = current_database() AND pid <> pg_backend_pid()",
                db::args![],
                |_| Ok(()),
            )
            .unwrap();
        })
        .join()
        .unwrap();
        // The first calls may find the connections gone; then the store works again.
        let mut written = false;
        for name in ["bob", "carl", "dan", "eve"] {
            written |= store.create_user(user(name)).await.is_ok();
            let _ = store.find_user("ann".into()).await;
        }
        assert!(written, "a write succeeded after the connections were closed");
        assert!(store.find_user("ann".into()).await.unwrap().is_some(), "reads work again");
        store.append_message(message(1), None, Box::new(|_| {})).await.unwrap();
    }

    #[actix_rt::test]
    async fn delivered_marks_issued_together_are_one_write() {
        let dir = tempfile::tempdir().unwrap();
        for (engine, store) in engines(&dir) {
            let appends = (0..50).map(|i| store.append_message(message(i), None, Box::new(|_| {})));
            let ids: Vec<i64> =
                futures_util::future::join_all(appends).await.into_iter().map(|r| r.unwrap().id).collect();
            let writes_before = store.stats.writes.load(Relaxed);
            for id in &ids {
                store.mark_delivered(vec![*id]);
            }
            // A write issued after the marks commits with them or after them.
            store.create_user(user("carl")).await.unwrap();
            assert!(store.pending_for("bob".into()).await.unwrap().is_empty(), "{engine}: every mark took effect");
            let writes = store.stats.writes.load(Relaxed) - writes_before;
            assert!(writes <= 3, "{engine}: 50 marks and one user took {writes} writes");
        }
    }
}
