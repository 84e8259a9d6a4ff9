//! The SQLite side of the [`Connection`] seam: a state file through `rusqlite`.

use super::backend::{Connection, Db, DbError, NextVersion, Row, RowSink, Val, vals};

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

    fn row_sink(&self) -> Box<dyn RowSink> {
        Box::new(Direct)
    }

    fn storage_bytes(&self) -> Result<Option<u64>, DbError> {
        Ok(None)
    }
}

/// SQLite's [`RowSink`]: every write goes to the file at once (a statement is a function
/// call), so nothing is held back.
pub(crate) struct Direct;

impl RowSink for Direct {
    fn append(&mut self, c: &Db, v: &NextVersion<'_>) -> Result<(), DbError> {
        c.execute(
            "INSERT INTO history (namespace, key, version, value, deleted, ttl, created_at, serial, writer,
                                  type, description, key_created_at)
             SELECT namespace, key, version, value, deleted, ttl, created_at, serial, writer,
                    type, description, key_created_at FROM latest
              WHERE namespace = ?1 AND key = ?2",
            vals![v.ns, v.key],
        )?;
        c.execute(
            "UPDATE latest SET version = ?3, value = ?4, deleted = ?5, ttl = ?6, created_at = ?7, serial = ?8, writer = ?9,
                               type = ?10, description = ?11
              WHERE namespace = ?1 AND key = ?2",
            vals![
                v.ns,
                v.key,
                v.version,
                v.stored,
                v.deleted,
                v.ttl,
                v.now,
                v.serial,
                v.writer,
                v.kv_type,
                v.description
            ],
        )?;
        let keep_from = v.version - v.max_versions as i64 + 1;
        if keep_from > 1 {
            c.execute(
                "DELETE FROM history WHERE namespace = ?1 AND key = ?2 AND version < ?3",
                vals![v.ns, v.key, keep_from],
            )?;
        }
        Ok(())
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
