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

    /// See [`Connection::schema_version`].
    pub fn schema_version(&self) -> Result<u32, DbError> {
        self.0.schema_version()
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
