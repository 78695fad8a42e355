//! One database connection, SQLite or PostgreSQL, behind the few calls the store's domain
//! modules make: run a statement, read rows, read a column. The SQL is written once, in
//! the dialect both engines share (`?N` parameters, `ON CONFLICT … DO UPDATE`, `RETURNING`);
//! where they differ (the random id, the insertion order of a table without an id), a
//! module asks [`Db::dialect`]. Values cross as [`Value`]s: integers (flags included) are
//! 64-bit on both, text is text and blobs are bytes.

use std::cell::RefCell;
use std::collections::HashMap;

use super::{StoreError, StoreResult};

/// Which SQL engine is behind a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// An expression for a fresh random id: 32 lowercase hex digits.
    pub fn random_id(self) -> &'static str {
        match self {
            Dialect::Sqlite => "lower(hex(randomblob(16)))",
            Dialect::Postgres => "replace(gen_random_uuid()::text, '-', '')",
        }
    }

    /// The column that orders a table in insertion order where the table has no id of its
    /// own (SQLite's `rowid`; PostgreSQL's tables get a `seq` column for it).
    pub fn insertion_order(self) -> &'static str {
        match self {
            Dialect::Sqlite => "rowid",
            Dialect::Postgres => "seq",
        }
    }
}

/// One value bound to a statement's parameter.
#[derive(Debug, Clone, Copy)]
pub enum Value<'a> {
    Null,
    Int(i64),
    Text(&'a str),
    Blob(&'a [u8]),
    /// Lists, for `= ANY(?N)` and `unnest(…)` on PostgreSQL (SQLite has no arrays).
    Ints(&'a [i64]),
    MaybeInts(&'a [Option<i64>]),
    MaybeTexts(&'a [Option<&'a str>]),
}

/// What can be bound to a parameter.
pub trait Param {
    fn value(&self) -> Value<'_>;
}

macro_rules! int_params {
    ($($t:ty),*) => {$(
        impl Param for $t {
            fn value(&self) -> Value<'_> {
                Value::Int(*self as i64)
            }
        }
    )*};
}
int_params!(i64, u32);

impl Param for usize {
    fn value(&self) -> Value<'_> {
        Value::Int(i64::try_from(*self).unwrap_or(i64::MAX))
    }
}

impl Param for bool {
    fn value(&self) -> Value<'_> {
        Value::Int(i64::from(*self))
    }
}

impl Param for str {
    fn value(&self) -> Value<'_> {
        Value::Text(self)
    }
}

impl Param for String {
    fn value(&self) -> Value<'_> {
        Value::Text(self)
    }
}

impl Param for [u8] {
    fn value(&self) -> Value<'_> {
        Value::Blob(self)
    }
}

impl Param for Vec<u8> {
    fn value(&self) -> Value<'_> {
        Value::Blob(self)
    }
}

impl<T: Param + ?Sized> Param for &T {
    fn value(&self) -> Value<'_> {
        (**self).value()
    }
}

impl<T: Param> Param for Option<T> {
    fn value(&self) -> Value<'_> {
        match self {
            Some(v) => v.value(),
            None => Value::Null,
        }
    }
}

impl Param for [i64] {
    fn value(&self) -> Value<'_> {
        Value::Ints(self)
    }
}

impl Param for Value<'_> {
    fn value(&self) -> Value<'_> {
        *self
    }
}

/// A statement's parameters: `args![a, b, c]` binds `?1`, `?2`, `?3`.
macro_rules! args {
    () => { &[] as &[&dyn $crate::store::db::Param] };
    ($($x:expr),+ $(,)?) => { &[$(&$x as &dyn $crate::store::db::Param),+] as &[&dyn $crate::store::db::Param] };
}
pub(crate) use args;

impl rusqlite::ToSql for Value<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match *self {
            Value::Null => ValueRef::Null,
            Value::Int(i) => ValueRef::Integer(i),
            Value::Text(s) => ValueRef::Text(s.as_bytes()),
            Value::Blob(b) => ValueRef::Blob(b),
            Value::Ints(_) | Value::MaybeInts(_) | Value::MaybeTexts(_) => {
                return Err(rusqlite::Error::ToSqlConversionFailure("SQLite has no arrays".into()))
            }
        }))
    }
}

impl postgres::types::ToSql for Value<'_> {
    fn to_sql(
        &self,
        ty: &postgres::types::Type,
        out: &mut bytes::BytesMut,
    ) -> Result<postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        use postgres::types::{IsNull, Type};
        match *self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(i) => match *ty {
                Type::INT8 => i.to_sql(ty, out),
                Type::INT4 => i32::try_from(i)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(i)?.to_sql(ty, out),
                Type::BOOL => (i != 0).to_sql(ty, out),
                _ => Err(format!("an integer cannot be bound to a parameter of type {ty}").into()),
            },
            Value::Text(s) => s.to_sql(ty, out),
            Value::Blob(b) => b.to_sql(ty, out),
            Value::Ints(list) => list.to_sql(ty, out),
            Value::MaybeInts(list) => list.to_sql(ty, out),
            Value::MaybeTexts(list) => list.to_sql(ty, out),
        }
    }

    fn accepts(_: &postgres::types::Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

/// What a column can be read as.
pub trait Column: Sized {
    fn from_sqlite(row: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<Self>;
    fn from_postgres(row: &postgres::Row, index: usize) -> Result<Self, postgres::Error>;
}

macro_rules! same_columns {
    ($($t:ty),*) => {$(
        impl Column for $t {
            fn from_sqlite(row: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<Self> {
                row.get(index)
            }
            fn from_postgres(row: &postgres::Row, index: usize) -> Result<Self, postgres::Error> {
                row.try_get(index)
            }
        }
    )*};
}
same_columns!(String, Option<String>, Vec<u8>, Option<Vec<u8>>);

/// PostgreSQL types a literal or an expression by itself (`SELECT 1` is an `int4`): every
/// integer column is read as 64 bits.
fn postgres_int(row: &postgres::Row, index: usize) -> Result<Option<i64>, postgres::Error> {
    use postgres::types::Type;
    match *row.columns()[index].type_() {
        Type::INT4 => Ok(row.try_get::<_, Option<i32>>(index)?.map(i64::from)),
        Type::INT2 => Ok(row.try_get::<_, Option<i16>>(index)?.map(i64::from)),
        Type::BOOL => Ok(row.try_get::<_, Option<bool>>(index)?.map(i64::from)),
        _ => row.try_get(index),
    }
}

impl Column for Option<i64> {
    fn from_sqlite(row: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<Self> {
        row.get(index)
    }
    fn from_postgres(row: &postgres::Row, index: usize) -> Result<Self, postgres::Error> {
        postgres_int(row, index)
    }
}

impl Column for i64 {
    fn from_sqlite(row: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<Self> {
        row.get(index)
    }
    fn from_postgres(row: &postgres::Row, index: usize) -> Result<Self, postgres::Error> {
        // A NULL read as a number is a schema error; `try_get` names it.
        match postgres_int(row, index)? {
            Some(i) => Ok(i),
            None => row.try_get(index),
        }
    }
}

impl Column for bool {
    fn from_sqlite(row: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<Self> {
        row.get(index)
    }
    fn from_postgres(row: &postgres::Row, index: usize) -> Result<Self, postgres::Error> {
        Ok(i64::from_postgres(row, index)? != 0)
    }
}

macro_rules! narrow_columns {
    ($($t:ty),*) => {$(
        impl Column for $t {
            fn from_sqlite(row: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<Self> {
                row.get(index)
            }
            fn from_postgres(row: &postgres::Row, index: usize) -> Result<Self, postgres::Error> {
                let wide = i64::from_postgres(row, index)?;
                // Out of range only if the database holds what the store never wrote.
                Ok(wide.clamp(<$t>::MIN as i64, <$t>::MAX as i64) as $t)
            }
        }
        impl Column for Option<$t> {
            fn from_sqlite(row: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<Self> {
                row.get(index)
            }
            fn from_postgres(row: &postgres::Row, index: usize) -> Result<Self, postgres::Error> {
                Ok(postgres_int(row, index)?.map(|wide| wide.clamp(<$t>::MIN as i64, <$t>::MAX as i64) as $t))
            }
        }
    )*};
}
narrow_columns!(u32);

/// One row of a result.
pub enum Row<'r> {
    Sqlite(&'r rusqlite::Row<'r>),
    Postgres(&'r postgres::Row),
}

impl Row<'_> {
    /// Column `index` (from 0).
    pub fn get<T: Column>(&self, index: usize) -> StoreResult<T> {
        match self {
            Row::Sqlite(row) => Ok(T::from_sqlite(row, index)?),
            Row::Postgres(row) => Ok(T::from_postgres(row, index)?),
        }
    }
}

/// One connection, of either engine.
pub enum Db {
    Sqlite(rusqlite::Connection),
    Postgres(Box<PgConnection>),
}

/// A PostgreSQL connection and the statements it has prepared, by their SQL; made again
/// when the server closed it (a restart, a terminated backend), between transactions.
pub struct PgConnection {
    config: postgres::Config,
    client: RefCell<postgres::Client>,
    statements: RefCell<HashMap<String, postgres::Statement>>,
}

/// Most statements one PostgreSQL connection keeps prepared; the store runs about 150
/// distinct ones.
const PG_STATEMENT_CACHE: usize = 512;

impl PgConnection {
    pub fn new(config: postgres::Config, client: postgres::Client) -> PgConnection {
        PgConnection { config, client: RefCell::new(client), statements: RefCell::default() }
    }

    /// Connects again if the server closed the connection. Only between transactions: a
    /// transaction that lost its connection is gone, and its writes are reported failed.
    fn reconnect_if_closed(&self) -> StoreResult<()> {
        if !self.client.borrow().is_closed() {
            return Ok(());
        }
        let client = self.config.connect(postgres::NoTls)?;
        *self.client.borrow_mut() = client;
        self.statements.borrow_mut().clear();
        tracing::warn!("the PostgreSQL connection was closed; connected again");
        Ok(())
    }

    fn statement(&self, sql: &str) -> StoreResult<postgres::Statement> {
        self.statement_as(sql, || sql.to_owned())
    }

    /// The statement cached as `sql`, prepared from `text()` (in `?N` form) the first time.
    fn statement_as(&self, sql: &str, text: impl FnOnce() -> String) -> StoreResult<postgres::Statement> {
        if let Some(statement) = self.statements.borrow().get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.borrow_mut().prepare(&numbered_parameters(&text()))?;
        let mut statements = self.statements.borrow_mut();
        if statements.len() >= PG_STATEMENT_CACHE {
            statements.clear();
        }
        statements.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }

    fn bind<'v>(params: &'v [Value<'v>]) -> Vec<&'v (dyn postgres::types::ToSql + Sync)> {
        params.iter().map(|v| v as &(dyn postgres::types::ToSql + Sync)).collect()
    }

    /// Runs statements given as text, with no parameters (migrations, transaction control).
    pub fn batch_execute(&self, sql: &str) -> StoreResult<()> {
        Ok(self.client.borrow_mut().batch_execute(sql)?)
    }
}

/// `?N` parameters as PostgreSQL's `$N`, outside quoted text.
pub fn numbered_parameters(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut quoted = false;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                quoted = !quoted;
                out.push(c);
            }
            '?' if !quoted && chars.peek().is_some_and(|d| d.is_ascii_digit()) => out.push('$'),
            _ => out.push(c),
        }
    }
    out
}

impl Db {
    /// Before a transaction or a read: a PostgreSQL connection the server closed is made
    /// again (SQLite's file is always there).
    pub fn ready(&self) -> StoreResult<()> {
        match self {
            Db::Sqlite(_) => Ok(()),
            Db::Postgres(pg) => pg.reconnect_if_closed(),
        }
    }

    pub fn dialect(&self) -> Dialect {
        match self {
            Db::Sqlite(_) => Dialect::Sqlite,
            Db::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Runs one statement; the number of rows it changed.
    pub fn execute(&self, sql: &str, params: &[&dyn Param]) -> StoreResult<usize> {
        match self {
            Db::Sqlite(conn) => {
                let mut statement = conn.prepare_cached(sql)?;
                Ok(statement.execute(rusqlite::params_from_iter(params.iter().map(|p| p.value())))?)
            }
            Db::Postgres(pg) => {
                let statement = pg.statement(sql)?;
                let values: Vec<Value<'_>> = params.iter().map(|p| p.value()).collect();
                let changed = pg.client.borrow_mut().execute(&statement, &PgConnection::bind(&values))?;
                Ok(changed as usize)
            }
        }
    }

    /// Runs an `INSERT` into a table with an `id` column; the new row's id. (SQLite reads
    /// it from the connection, cheaper than a `RETURNING` row; PostgreSQL returns it.)
    pub fn insert(&self, sql: &'static str, params: &[&dyn Param]) -> StoreResult<i64> {
        match self {
            Db::Sqlite(conn) => {
                let mut statement = conn.prepare_cached(sql)?;
                statement.execute(rusqlite::params_from_iter(params.iter().map(|p| p.value())))?;
                Ok(conn.last_insert_rowid())
            }
            Db::Postgres(pg) => {
                let statement = pg.statement_as(sql, || format!("{sql} RETURNING id"))?;
                let values: Vec<Value<'_>> = params.iter().map(|p| p.value()).collect();
                let row = pg.client.borrow_mut().query_one(&statement, &PgConnection::bind(&values))?;
                Ok(i64::from_postgres(&row, 0)?)
            }
        }
    }

    /// Runs a statement of one parameter once for each of `each`, prepared once.
    pub fn execute_each<P: Param>(&self, sql: &str, each: &[P]) -> StoreResult<()> {
        match self {
            Db::Sqlite(conn) => {
                let mut statement = conn.prepare_cached(sql)?;
                for p in each {
                    statement.execute([p.value()])?;
                }
            }
            Db::Postgres(pg) => {
                let statement = pg.statement(sql)?;
                let mut client = pg.client.borrow_mut();
                for p in each {
                    client.execute(&statement, &[&p.value() as &(dyn postgres::types::ToSql + Sync)])?;
                }
            }
        }
        Ok(())
    }

    /// Every row of a query, each read by `read`.
    pub fn query_map<T>(
        &self,
        sql: &str,
        params: &[&dyn Param],
        mut read: impl FnMut(&Row<'_>) -> StoreResult<T>,
    ) -> StoreResult<Vec<T>> {
        match self {
            Db::Sqlite(conn) => {
                let mut statement = conn.prepare_cached(sql)?;
                let mut rows = statement.query(rusqlite::params_from_iter(params.iter().map(|p| p.value())))?;
                let mut out = Vec::new();
                while let Some(row) = rows.next()? {
                    out.push(read(&Row::Sqlite(row))?);
                }
                Ok(out)
            }
            Db::Postgres(pg) => {
                let statement = pg.statement(sql)?;
                let values: Vec<Value<'_>> = params.iter().map(|p| p.value()).collect();
                let rows = pg.client.borrow_mut().query(&statement, &PgConnection::bind(&values))?;
                rows.iter().map(|row| read(&Row::Postgres(row))).collect()
            }
        }
    }

    /// The first row of a query, if any, read by `read`.
    pub fn query_opt<T>(
        &self,
        sql: &str,
        params: &[&dyn Param],
        read: impl FnOnce(&Row<'_>) -> StoreResult<T>,
    ) -> StoreResult<Option<T>> {
        match self {
            Db::Sqlite(conn) => {
                let mut statement = conn.prepare_cached(sql)?;
                let mut rows = statement.query(rusqlite::params_from_iter(params.iter().map(|p| p.value())))?;
                match rows.next()? {
                    Some(row) => Ok(Some(read(&Row::Sqlite(row))?)),
                    None => Ok(None),
                }
            }
            Db::Postgres(pg) => {
                let statement = pg.statement(sql)?;
                let values: Vec<Value<'_>> = params.iter().map(|p| p.value()).collect();
                let rows = pg.client.borrow_mut().query(&statement, &PgConnection::bind(&values))?;
                match rows.first() {
                    Some(row) => Ok(Some(read(&Row::Postgres(row))?)),
                    None => Ok(None),
                }
            }
        }
    }

    /// The one row a query must return (an aggregate, an `INSERT … RETURNING`).
    pub fn query_one<T>(
        &self,
        sql: &str,
        params: &[&dyn Param],
        read: impl FnOnce(&Row<'_>) -> StoreResult<T>,
    ) -> StoreResult<T> {
        self.query_opt(sql, params, read)?
            .ok_or_else(|| StoreError::database("the store", NoRow(sql.lines().next().unwrap_or_default().to_owned())))
    }

    /// Whether a query returns a row.
    pub fn exists(&self, sql: &str, params: &[&dyn Param]) -> StoreResult<bool> {
        Ok(self.query_opt(sql, params, |_| Ok(()))?.is_some())
    }

    /// Runs a transaction-control statement (`BEGIN`, `SAVEPOINT op`, `COMMIT`…).
    pub fn control(&self, sql: &str) -> StoreResult<()> {
        match self {
            Db::Sqlite(conn) => {
                conn.prepare_cached(sql)?.execute([])?;
                Ok(())
            }
            Db::Postgres(pg) => pg.batch_execute(sql),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the statement returned no row: {0}")]
struct NoRow(String);

impl From<postgres::Error> for StoreError {
    fn from(e: postgres::Error) -> Self {
        StoreError::database("the store", e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_renumbered_outside_quotes() {
        assert_eq!(numbered_parameters("SELECT ?1, '?2', ?12 WHERE a = ?3"), "SELECT $1, '?2', $12 WHERE a = $3");
        assert_eq!(numbered_parameters("a LIKE ?1 ESCAPE '\\'"), "a LIKE $1 ESCAPE '\\'");
    }
}
