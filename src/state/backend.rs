//! The backend seam: a [`Connection`] is one open database — SQLite (`super::sqlite`) or
//! PostgreSQL (`super::postgres`) — with the few operations `state/` needs, so every query
//! of the version/serial/fingerprint logic is written once, above it, against [`Db`].
//!
//! What differs between the dialects lives behind the trait, in the two implementations:
//! - placeholders: SQL is written with SQLite's `?N`; PostgreSQL's connection rewrites them
//!   to `$N` (and sends a statement unprepared the first time, prepared and cached from the
//!   second);
//! - [`Db::secret_rows`]: SQLite's `GLOB` is case-sensitive where its `LIKE` is not;
//!   PostgreSQL's `LIKE` is case-sensitive, and `%` matches what `*` matches;
//! - transactions ([`Db::begin_write`], [`Db::begin_read`]): SQLite takes its write lock up
//!   front with `BEGIN IMMEDIATE`; on PostgreSQL writers are already serialised by the
//!   advisory lock (`super::postgres::lock`), and a plan's two scans read one
//!   `REPEATABLE READ` snapshot;
//! - [`Db::is_remote`]: a statement is a network round trip, so the callers above send
//!   many rows per statement (`super::bulk`) and the write transaction holds first
//!   versions back ([`RowSink`], `super::postgres::write_behind`);
//! - pragmas, `user_version` and `sqlite_master` exist only on SQLite (see `super::schema`).
//!
//! Integers are BIGINT on PostgreSQL and booleans 0/1 integers on both, so a row reads the
//! same through [`Row`] on either backend.

/// An error of either backend, or a value that does not decode.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error("{}", pg_message(.0))]
    Pg(#[from] postgres::Error),
    #[error("column {column}: {reason}")]
    Decode { column: usize, reason: String },
}

/// PostgreSQL's own message (with its detail) instead of the crate's "db error: …" wrapper.
fn pg_message(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => match db.detail() {
            Some(d) => format!("{} ({d})", db.message()),
            None => db.message().to_string(),
        },
        None => e.to_string(),
    }
}

impl DbError {
    /// A unique constraint refused a row.
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, DbError::Pg(e) if e.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION))
    }

    /// The connection to the server is gone or cannot be made (closed, reset, refused, or
    /// the server shutting down: SQLSTATE class 57P, "operator intervention").
    pub fn is_connection_lost(&self) -> bool {
        match self {
            DbError::Pg(e) => {
                e.is_closed()
                    || e.as_db_error().is_none() && e.code().is_none()
                    || e.code().is_some_and(|c| c.code().starts_with("57P"))
            }
            _ => false,
        }
    }
}

/// A statement parameter.
#[derive(Debug, Clone, Copy)]
pub enum Val<'a> {
    I(i64),
    T(&'a str),
    B(&'a [u8]),
    OptI(Option<i64>),
    OptT(Option<&'a str>),
    /// Arrays, PostgreSQL only: the bulk statements (`unnest`) of `super::bulk`.
    TA(&'a [&'a str]),
    IA(&'a [i64]),
    BA(&'a [&'a [u8]]),
}

impl From<i64> for Val<'_> {
    fn from(v: i64) -> Self {
        Val::I(v)
    }
}
impl From<bool> for Val<'_> {
    fn from(v: bool) -> Self {
        Val::I(v as i64)
    }
}
impl<'a> From<&'a str> for Val<'a> {
    fn from(v: &'a str) -> Self {
        Val::T(v)
    }
}
impl<'a> From<&'a String> for Val<'a> {
    fn from(v: &'a String) -> Self {
        Val::T(v)
    }
}
impl<'a> From<&'a [u8]> for Val<'a> {
    fn from(v: &'a [u8]) -> Self {
        Val::B(v)
    }
}
impl From<Option<i64>> for Val<'_> {
    fn from(v: Option<i64>) -> Self {
        Val::OptI(v)
    }
}
impl<'a> From<Option<&'a str>> for Val<'a> {
    fn from(v: Option<&'a str>) -> Self {
        Val::OptT(v)
    }
}

/// `vals![a, b]`: a parameter slice.
macro_rules! vals {
    ($($v:expr),* $(,)?) => { &[$($crate::state::backend::Val::from($v)),*][..] };
}
pub(crate) use vals;

/// One open database of either backend (see the module docs); [`Db`] is what the rest of
/// `state/` holds.
pub(crate) trait Connection: Send {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;
    /// Whether every statement is a network round trip (PostgreSQL) rather than a function
    /// call on a local file.
    fn is_remote(&self) -> bool;
    /// The session is gone (the server restarted, or ended it); an SQLite file never is.
    fn is_closed(&self) -> bool;
    /// The SQLite connection, for what only SQLite has (pragmas, backups, migrations of
    /// old schemas); `None` on PostgreSQL.
    fn lite(&self) -> Option<&rusqlite::Connection>;
    /// Rows changed.
    fn execute(&self, sql: &str, params: &[Val<'_>]) -> Result<u64, DbError>;
    /// Run `f` on every row, in order (streamed, not collected).
    fn query(
        &self,
        sql: &str,
        params: &[Val<'_>],
        f: &mut dyn FnMut(&Row<'_, '_>) -> Result<(), DbError>,
    ) -> Result<(), DbError>;
    /// `COPY … FROM STDIN` of `data` (text format); PostgreSQL only. Rows copied.
    fn copy_in(&self, sql: &str, data: &[u8]) -> Result<u64, DbError>;
    /// Statements without parameters, `;`-separated.
    fn batch(&self, sql: &str) -> Result<(), DbError>;
    /// Start the write transaction (see the module docs).
    fn begin_write(&self) -> Result<(), DbError>;
    /// Start a read transaction whose queries all see one snapshot.
    fn begin_read(&self) -> Result<(), DbError>;
    /// SQL condition on a row's `namespace`/`key` for the encrypted values, the same set as
    /// `crate::kv::is_secret_key`. Both columns are compared bytewise.
    fn secret_rows(&self) -> &'static str;
    /// The schema version of the open state.
    fn schema_version(&self) -> Result<u32, DbError>;
    /// Where a write transaction on this connection sends its rows.
    fn row_sink(&self) -> Box<dyn RowSink>;
    /// Bytes of a server-side state's tables and indexes; `None` for a file (its size is
    /// the file's).
    fn storage_bytes(&self) -> Result<Option<u64>, DbError>;
}

/// The connection of an open state.
pub struct Db(Box<dyn Connection>);

impl Db {
    pub(crate) fn new(conn: impl Connection + 'static) -> Db {
        Db(Box::new(conn))
    }

    /// `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        self.0.backend()
    }

    /// See [`Connection::is_remote`].
    pub fn is_remote(&self) -> bool {
        self.0.is_remote()
    }

    /// See [`Connection::is_closed`].
    pub fn is_closed(&self) -> bool {
        self.0.is_closed()
    }

    /// See [`Connection::lite`].
    pub fn lite(&self) -> Option<&rusqlite::Connection> {
        self.0.lite()
    }

    /// Rows changed.
    pub fn execute(&self, sql: &str, params: &[Val<'_>]) -> Result<u64, DbError> {
        self.0.execute(sql, params)
    }

    /// Run `f` on every row, in order.
    pub fn query(
        &self,
        sql: &str,
        params: &[Val<'_>],
        mut f: impl FnMut(&Row<'_, '_>) -> Result<(), DbError>,
    ) -> Result<(), DbError> {
        self.0.query(sql, params, &mut f)
    }

    /// Every row mapped with `f`.
    pub fn query_map<T>(
        &self,
        sql: &str,
        params: &[Val<'_>],
        mut f: impl FnMut(&Row<'_, '_>) -> Result<T, DbError>,
    ) -> Result<Vec<T>, DbError> {
        let mut out = Vec::new();
        self.query(sql, params, |r| {
            out.push(f(r)?);
            Ok(())
        })?;
        Ok(out)
    }

    /// The first row mapped with `f`, if there is one.
    pub fn query_opt<T>(
        &self,
        sql: &str,
        params: &[Val<'_>],
        f: impl FnOnce(&Row<'_, '_>) -> Result<T, DbError>,
    ) -> Result<Option<T>, DbError> {
        let mut f = Some(f);
        let mut out = None;
        self.query(sql, params, |r| {
            if let Some(f) = f.take() {
                out = Some(f(r)?);
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// The first row mapped with `f`; no row is an error.
    pub fn query_one<T>(
        &self,
        sql: &str,
        params: &[Val<'_>],
        f: impl FnOnce(&Row<'_, '_>) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        self.query_opt(sql, params, f)?
            .ok_or_else(|| DbError::Decode { column: 0, reason: "the query returned no row".into() })
    }

    /// See [`Connection::copy_in`].
    pub fn copy_in(&self, sql: &str, data: &[u8]) -> Result<u64, DbError> {
        self.0.copy_in(sql, data)
    }

    /// Statements without parameters, `;`-separated.
    pub fn batch(&self, sql: &str) -> Result<(), DbError> {
        self.0.batch(sql)
    }

    /// Start the write transaction (see the module docs).
    pub fn begin_write(&self) -> Result<(), DbError> {
        self.0.begin_write()
    }

    /// Start a read transaction whose queries all see one snapshot.
    pub fn begin_read(&self) -> Result<(), DbError> {
        self.0.begin_read()
    }

    /// See [`Connection::secret_rows`].
    pub fn secret_rows(&self) -> &'static str {
        self.0.secret_rows()
    }

    /// See [`Connection::storage_bytes`].
    pub fn storage_bytes(&self) -> Result<Option<u64>, DbError> {
        self.0.storage_bytes()
    }

    /// See [`Connection::row_sink`].
    pub(crate) fn row_sink(&self) -> Box<dyn RowSink> {
        self.0.row_sink()
    }

    /// See [`Connection::schema_version`].
    pub fn schema_version(&self) -> Result<u32, DbError> {
        self.0.schema_version()
    }
}

/// A key's first version, held back by a write-behind [`RowSink`] and sent in bulk
/// (`super::bulk::insert_first`).
#[derive(Debug)]
pub(crate) struct NewRow {
    pub namespace: String,
    pub key: String,
    pub value: String,
    pub ttl: i64,
    pub writer: String,
    pub now: i64,
    /// The key's type (already checked against the value).
    pub kv_type: crate::kv::KvType,
}

/// The next version of an existing key, as [`RowSink::append`] writes it.
pub(crate) struct NextVersion<'a> {
    pub ns: &'a str,
    pub key: &'a str,
    pub version: i64,
    /// The value as stored (sealed in `secrets/*`).
    pub stored: &'a str,
    pub deleted: bool,
    pub ttl: i64,
    pub now: i64,
    pub serial: i64,
    pub writer: &'a str,
    pub kv_type: &'a str,
    pub description: &'a str,
    /// Rows kept per key (>= 1): history older than `version - max_versions + 1` goes.
    pub max_versions: u32,
}

/// What a write-behind [`RowSink`] gives back to send, in order, when the write
/// transaction flushes it.
pub(crate) enum Held {
    /// First versions, for one bulk insert.
    Rows(Vec<NewRow>),
    /// Fingerprint rows (`super::fingerprint`), the last one per namespace.
    Fingerprints(std::collections::BTreeMap<String, [u8; 16]>),
    /// The oldest savepoint still held back: send `SAVEPOINT` now.
    Savepoint,
}

/// Where the write transaction's rows go. Every write goes through [`RowSink::append`] or
/// an insert of a first version; a sink may also hold first versions, fingerprint rows and
/// savepoints back and give them to the transaction to send in bulk ([`RowSink::drain`]).
/// The defaults hold nothing back: SQLite's sink (`super::sqlite::Direct`), where a
/// statement is a function call. PostgreSQL's (`super::postgres::write_behind`) holds
/// them back, because there every statement is a round trip.
///
/// The version/serial/fingerprint rules stay in the transaction, written once; a sink
/// only decides when rows travel.
pub(crate) trait RowSink: Send {
    /// Move the latest row of an existing key to `history`, write `v` as its latest row
    /// and trim history to `v.max_versions` rows in all.
    fn append(&mut self, conn: &Db, v: &NextVersion<'_>) -> Result<(), DbError>;

    /// Whether reading the rows of a batch of keys ahead saves round trips.
    fn reads_ahead(&self) -> bool {
        false
    }
    /// Whether [`Self::hold`] would take a first version of `key` in `ns`.
    fn would_hold(&self, _ns: &str, _key: &str) -> bool {
        false
    }
    /// Take a first version to send later (only after [`Self::would_hold`] said yes).
    fn hold(&mut self, row: NewRow) {
        unreachable!("a sink that holds nothing back was asked to hold {}/{}", row.namespace, row.key)
    }
    /// The held-back first version of a key.
    fn held_row(&self, _ns: &str, _key: &str) -> Option<&NewRow> {
        None
    }
    /// A key of `ns` was written at once (a first version there may now exist).
    fn touch(&mut self, _ns: &str) {}
    /// So many rows are held back that they should be sent now.
    fn full(&self) -> bool {
        false
    }
    /// Take a fingerprint row to send later; `false` when it must be written now.
    fn hold_fingerprint(&mut self, _ns: &str, _digest: &[u8; 16]) -> bool {
        false
    }
    /// Whether the fingerprint row of `ns` may exist (an upsert) rather than be known
    /// absent (an insert); it is counted as written from now on.
    fn fingerprint_may_exist(&mut self, _ns: &str) -> bool {
        true
    }
    /// The fingerprints table was just emptied.
    fn fingerprints_emptied(&mut self) {}
    /// Whether many fingerprint rows known absent go in one bulk insert.
    fn bulk_fingerprints(&self) -> bool {
        false
    }
    /// Hold a new savepoint back; `false` when `SAVEPOINT` must be sent now.
    fn hold_savepoint(&mut self) -> bool {
        false
    }
    /// The newest `n` held-back savepoints were released: what was held before them now
    /// comes, in order, before what was held since.
    fn release_held(&mut self, _n: usize) {}
    /// Roll back to the oldest of the newest `n` held-back savepoints: drop what was held
    /// since it.
    fn rollback_held(&mut self, _n: usize) {}
    /// Roll back to a savepoint that was sent: everything held back came after it.
    fn discard(&mut self) {}
    /// Nothing is held back.
    fn is_empty(&self) -> bool {
        true
    }
    /// Everything held back, in the order it must be sent.
    fn drain(&mut self) -> Vec<Held> {
        Vec::new()
    }
}

/// One result row of either backend.
pub enum Row<'a, 'b> {
    Lite(&'a rusqlite::Row<'b>),
    Pg(&'a postgres::Row),
}

impl<'a> Row<'a, '_> {
    pub fn i64(&self, i: usize) -> Result<i64, DbError> {
        self.opt_i64(i)?.ok_or_else(|| DbError::Decode { column: i, reason: "NULL where a number belongs".into() })
    }

    pub fn u64(&self, i: usize) -> Result<u64, DbError> {
        Ok(self.i64(i)? as u64)
    }

    pub fn bool(&self, i: usize) -> Result<bool, DbError> {
        Ok(self.i64(i)? != 0)
    }

    /// An integer, NULL as `None`. PostgreSQL's `EXISTS` and comparisons give booleans and
    /// some functions `integer`: all read as numbers, like SQLite's.
    pub fn opt_i64(&self, i: usize) -> Result<Option<i64>, DbError> {
        match self {
            Row::Lite(r) => Ok(r.get::<_, Option<i64>>(i)?),
            Row::Pg(r) => {
                use postgres::types::Type;
                let t = r.columns().get(i).map(|c| c.type_().clone());
                Ok(match t {
                    Some(Type::BOOL) => r.try_get::<_, Option<bool>>(i)?.map(i64::from),
                    Some(Type::INT4) => r.try_get::<_, Option<i32>>(i)?.map(i64::from),
                    Some(Type::INT2) => r.try_get::<_, Option<i16>>(i)?.map(i64::from),
                    Some(Type::NUMERIC) => {
                        return Err(DbError::Decode { column: i, reason: "NUMERIC (cast it to bigint)".into() });
                    }
                    _ => r.try_get::<_, Option<i64>>(i)?,
                })
            }
        }
    }

    /// Text borrowed from the row (no copy).
    pub fn str(&self, i: usize) -> Result<&'a str, DbError> {
        match self {
            Row::Lite(r) => Ok(r.get_ref(i)?.as_str().map_err(rusqlite::Error::from)?),
            Row::Pg(r) => Ok(r.try_get::<_, &str>(i)?),
        }
    }

    pub fn text(&self, i: usize) -> Result<String, DbError> {
        self.str(i).map(str::to_string)
    }

    pub fn opt_text(&self, i: usize) -> Result<Option<String>, DbError> {
        match self {
            Row::Lite(r) => Ok(r.get::<_, Option<String>>(i)?),
            Row::Pg(r) => Ok(r.try_get::<_, Option<String>>(i)?),
        }
    }

    pub fn bytes(&self, i: usize) -> Result<&'a [u8], DbError> {
        match self {
            Row::Lite(r) => Ok(r.get_ref(i)?.as_blob().map_err(rusqlite::Error::from)?),
            Row::Pg(r) => Ok(r.try_get::<_, &[u8]>(i)?),
        }
    }
}
