//! The SQLite side of the [`Connection`] seam: a state file through `rusqlite`.

use super::backend::{Connection, DbError, Row, Val};

/// An open SQLite state file.
pub(crate) struct Lite(pub(crate) rusqlite::Connection);

impl Connection for Lite {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    fn is_remote(&self) -> bool {
        false
    }

    fn is_closed(&self) -> bool {
        false
    }

    fn lite(&self) -> Option<&rusqlite::Connection> {
        Some(&self.0)
    }

    fn execute(&self, sql: &str, params: &[Val<'_>]) -> Result<u64, DbError> {
        Ok(self.0.prepare_cached(sql)?.execute(rusqlite::params_from_iter(params))? as u64)
    }

    fn query(
        &self,
        sql: &str,
        params: &[Val<'_>],
        f: &mut dyn FnMut(&Row<'_, '_>) -> Result<(), DbError>,
    ) -> Result<(), DbError> {
        let mut st = self.0.prepare_cached(sql)?;
        let mut rows = st.query(rusqlite::params_from_iter(params))?;
        while let Some(r) = rows.next()? {
            f(&Row::Lite(r))?;
        }
        Ok(())
    }

    fn copy_in(&self, _sql: &str, _data: &[u8]) -> Result<u64, DbError> {
        Err(DbError::Decode { column: 0, reason: "COPY is PostgreSQL-only".into() })
    }

    fn batch(&self, sql: &str) -> Result<(), DbError> {
        Ok(self.0.execute_batch(sql)?)
    }

    fn begin_write(&self) -> Result<(), DbError> {
        self.batch("BEGIN IMMEDIATE")
    }

    fn begin_read(&self) -> Result<(), DbError> {
        self.batch("BEGIN")
    }

    fn secret_rows(&self) -> &'static str {
        super::SECRET_ROWS
    }

    fn schema_version(&self) -> Result<u32, DbError> {
        Ok(super::schema::user_version(&self.0)?)
    }
}

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
