//! The connection seam: one [`Db`] over SQLite (`rusqlite`) or PostgreSQL (the sync
//! `postgres` crate), with the few operations `state/` needs, so every query is written once.
//!
//! Why a seam and not a backend trait with two implementations: the state's SQL is almost
//! all portable, and two copies of the version/serial/fingerprint logic would drift. What
//! differs between the dialects is kept here, as named items:
//! - placeholders: SQL is written with SQLite's `?N`; [`Db`] rewrites them to `$N` for
//!   PostgreSQL (a statement is sent unprepared the first time and prepared and cached per
//!   connection from the second, see `Slot`);
//! - [`Db::secret_rows`]: SQLite's `GLOB` is case-sensitive where its `LIKE` is not;
//!   PostgreSQL's `LIKE` is case-sensitive, and `%` matches what `*` matches;
//! - transactions ([`Db::begin_write`], [`Db::begin_read`]): SQLite takes its write lock up
//!   front with `BEGIN IMMEDIATE`; on PostgreSQL writers are already serialised by the
//!   advisory lock (`super::lock`), and a plan's two scans read one `REPEATABLE READ`
//!   snapshot;
//! - pragmas, `user_version` and `sqlite_master` exist only on SQLite (see `super::schema`).
//!
//! Integers are BIGINT on PostgreSQL and booleans 0/1 integers on both, so a row reads the
//! same through [`Row`] on either backend.

use std::cell::RefCell;
use std::collections::HashMap;

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
    ($($v:expr),* $(,)?) => { &[$($crate::state::db::Val::from($v)),*][..] };
}
pub(crate) use vals;

impl rusqlite::ToSql for Val<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, Value, ValueRef};
        Ok(match *self {
            Val::I(i) => ToSqlOutput::Owned(Value::Integer(i)),
            Val::T(t) => ToSqlOutput::Borrowed(ValueRef::Text(t.as_bytes())),
            Val::B(b) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
            Val::OptI(Some(i)) => ToSqlOutput::Owned(Value::Integer(i)),
            Val::OptT(Some(t)) => ToSqlOutput::Borrowed(ValueRef::Text(t.as_bytes())),
            Val::OptI(None) | Val::OptT(None) => ToSqlOutput::Owned(Value::Null),
            Val::TA(_) | Val::IA(_) | Val::BA(_) => {
                return Err(rusqlite::Error::ToSqlConversionFailure("arrays are PostgreSQL-only parameters".into()));
            }
        })
    }
}

fn pg_params<'a>(params: &'a [Val<'a>]) -> Vec<&'a (dyn postgres::types::ToSql + Sync)> {
    params
        .iter()
        .map(|v| -> &(dyn postgres::types::ToSql + Sync) {
            match v {
                Val::I(i) => i,
                Val::T(t) => t,
                Val::B(b) => b,
                Val::OptI(i) => i,
                Val::OptT(t) => t,
                Val::TA(a) => a,
                Val::IA(a) => a,
                Val::BA(a) => a,
            }
        })
        .collect()
}

/// `params` with their PostgreSQL types, for a statement sent without preparing it.
fn pg_typed_params<'a>(params: &'a [Val<'a>]) -> Vec<(&'a (dyn postgres::types::ToSql + Sync), postgres::types::Type)> {
    use postgres::types::Type;
    let types = params.iter().map(|v| match v {
        Val::I(_) | Val::OptI(_) => Type::INT8,
        Val::T(_) | Val::OptT(_) => Type::TEXT,
        Val::B(_) => Type::BYTEA,
        Val::TA(_) => Type::TEXT_ARRAY,
        Val::IA(_) => Type::INT8_ARRAY,
        Val::BA(_) => Type::BYTEA_ARRAY,
    });
    pg_params(params).into_iter().zip(types).collect()
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

/// A PostgreSQL connection with its statement cache (the `RefCell`s: `postgres::Client`
/// needs `&mut` where rusqlite's connection takes `&`; a `Db` is used by one thread at a
/// time, like the SQLite connection it stands beside).
pub struct Pg {
    client: RefCell<postgres::Client>,
    stmts: RefCell<HashMap<String, Slot>>,
}

/// What the connection knows of a statement. Preparing costs a round trip of its own, so a
/// statement is sent unprepared, with its parameter types, the first time (one round trip,
/// most statements of a command run once), and prepared when it comes again (then the
/// server plans it once for the many runs of a loop).
enum Slot {
    SentOnce,
    Prepared(postgres::Statement),
}

impl Pg {
    pub fn new(client: postgres::Client) -> Pg {
        Pg { client: RefCell::new(client), stmts: RefCell::new(HashMap::new()) }
    }

    /// The prepared statement, or `None` the first time (send it with `query_typed_raw`).
    fn statement(&self, sql: &str) -> Result<Option<postgres::Statement>, DbError> {
        let known = match self.stmts.borrow().get(sql) {
            Some(Slot::Prepared(st)) => return Ok(Some(st.clone())),
            Some(Slot::SentOnce) => true,
            None => false,
        };
        if !known {
            self.stmts.borrow_mut().insert(sql.to_string(), Slot::SentOnce);
            return Ok(None);
        }
        let st = self.client.borrow_mut().prepare(&dollar_placeholders(sql))?;
        self.stmts.borrow_mut().insert(sql.to_string(), Slot::Prepared(st.clone()));
        Ok(Some(st))
    }
}

/// The connection of an open state.
pub enum Db {
    Lite(rusqlite::Connection),
    Pg(Box<Pg>),
}

impl Db {
    pub fn is_pg(&self) -> bool {
        matches!(self, Db::Pg(_))
    }

    /// The PostgreSQL session is gone (the server restarted, or ended it); an SQLite file
    /// never is.
    pub fn is_closed(&self) -> bool {
        match self {
            Db::Lite(_) => false,
            // The sync client reads its socket only when used, so an idle session the server
            // ended shows as closed once a query has failed on it.
            Db::Pg(p) => p.client.borrow().is_closed(),
        }
    }

    /// The SQLite connection, for what only SQLite has (pragmas, backups, migrations of
    /// old schemas); `None` on PostgreSQL.
    pub fn lite(&self) -> Option<&rusqlite::Connection> {
        match self {
            Db::Lite(c) => Some(c),
            Db::Pg(_) => None,
        }
    }

    /// Rows changed.
    pub fn execute(&self, sql: &str, params: &[Val<'_>]) -> Result<u64, DbError> {
        match self {
            Db::Lite(c) => Ok(c.prepare_cached(sql)?.execute(rusqlite::params_from_iter(params))? as u64),
            Db::Pg(p) => match p.statement(sql)? {
                Some(st) => Ok(p.client.borrow_mut().execute(&st, &pg_params(params))?),
                None => {
                    use postgres::fallible_iterator::FallibleIterator;
                    let mut client = p.client.borrow_mut();
                    let mut rows = client.query_typed_raw(&dollar_placeholders(sql), pg_typed_params(params))?;
                    while rows.next()?.is_some() {}
                    Ok(rows.rows_affected().unwrap_or(0))
                }
            },
        }
    }

    /// Run `f` on every row, in order.
    pub fn query(
        &self,
        sql: &str,
        params: &[Val<'_>],
        mut f: impl FnMut(&Row<'_, '_>) -> Result<(), DbError>,
    ) -> Result<(), DbError> {
        match self {
            Db::Lite(c) => {
                let mut st = c.prepare_cached(sql)?;
                let mut rows = st.query(rusqlite::params_from_iter(params))?;
                while let Some(r) = rows.next()? {
                    f(&Row::Lite(r))?;
                }
                Ok(())
            }
            Db::Pg(p) => {
                use postgres::fallible_iterator::FallibleIterator;
                let st = p.statement(sql)?;
                let mut client = p.client.borrow_mut();
                // Streamed, not collected: a snapshot of a large state is one pass.
                let mut rows = match st {
                    Some(st) => client.query_raw(&st, pg_params(params))?,
                    None => client.query_typed_raw(&dollar_placeholders(sql), pg_typed_params(params))?,
                };
                while let Some(r) = rows.next()? {
                    f(&Row::Pg(&r))?;
                }
                Ok(())
            }
        }
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

    /// `COPY … FROM STDIN` of `data` (text format); PostgreSQL only. Rows copied.
    pub fn copy_in(&self, sql: &str, data: &[u8]) -> Result<u64, DbError> {
        use std::io::Write as _;
        match self {
            Db::Lite(_) => Err(DbError::Decode { column: 0, reason: "COPY is PostgreSQL-only".into() }),
            Db::Pg(p) => {
                let mut client = p.client.borrow_mut();
                let mut w = client.copy_in(sql)?;
                w.write_all(data).map_err(|e| DbError::Decode { column: 0, reason: format!("COPY: {e}") })?;
                Ok(w.finish()?)
            }
        }
    }

    /// Statements without parameters, `;`-separated.
    pub fn batch(&self, sql: &str) -> Result<(), DbError> {
        match self {
            Db::Lite(c) => Ok(c.execute_batch(sql)?),
            Db::Pg(p) => Ok(p.client.borrow_mut().batch_execute(sql)?),
        }
    }

    /// Start the write transaction (see the module docs).
    pub fn begin_write(&self) -> Result<(), DbError> {
        match self {
            Db::Lite(_) => self.batch("BEGIN IMMEDIATE"),
            Db::Pg(_) => self.batch("BEGIN ISOLATION LEVEL READ COMMITTED"),
        }
    }

    /// Start a read transaction whose queries all see one snapshot.
    pub fn begin_read(&self) -> Result<(), DbError> {
        match self {
            Db::Lite(_) => self.batch("BEGIN"),
            Db::Pg(_) => self.batch("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"),
        }
    }

    /// SQL condition on a row's `namespace`/`key` for the encrypted values, the same set as
    /// `crate::kv::is_secret_key`: every `secrets/*` row and certificates' private keys.
    /// Both columns are compared bytewise (`COLLATE "C"` on PostgreSQL, see `super::schema`).
    pub fn secret_rows(&self) -> &'static str {
        match self {
            Db::Lite(_) => super::SECRET_ROWS,
            Db::Pg(_) => SECRET_ROWS_PG,
        }
    }
}

/// [`super::SECRET_ROWS`] in PostgreSQL's case-sensitive `LIKE` (no `_` in the patterns,
/// so `%` for `*` is the whole translation).
const SECRET_ROWS_PG: &str = "((namespace >= 'secrets/' AND namespace < 'secrets0') \
     OR (namespace LIKE 'maand/job/%/worker/%' AND key LIKE 'certs/%.key'))";

/// `?N` -> `$N` outside quoted strings and identifiers.
pub fn dollar_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut quote: Option<char> = None;
    for c in sql.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c == '?' => {
                out.push('$');
                continue;
            }
            None => {}
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_rewritten_outside_quotes_only() {
        assert_eq!(
            dollar_placeholders("SELECT ?1, '?2', \"a?\" WHERE x = ?12"),
            "SELECT $1, '?2', \"a?\" WHERE x = $12"
        );
    }
}
