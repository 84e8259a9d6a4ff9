//! The PostgreSQL side of the [`Connection`] seam: the sync `postgres` crate, with a
//! statement cache and `?N` placeholders rewritten to `$N`.

use crate::state::backend::{Connection, DbError, Row, RowSink, Val};
use std::cell::RefCell;
use std::collections::HashMap;

/// A PostgreSQL connection with its statement cache (the `RefCell`s: `postgres::Client`
/// needs `&mut` where rusqlite's connection takes `&`; a `Db` is used by one thread at a
/// time, like the SQLite connection it stands beside).
pub(crate) struct Pg {
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
    pub(crate) fn new(client: postgres::Client) -> Pg {
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

impl Connection for Pg {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn is_remote(&self) -> bool {
        true
    }

    fn is_closed(&self) -> bool {
        // The sync client reads its socket only when used, so an idle session the server
        // ended shows as closed once a query has failed on it.
        self.client.borrow().is_closed()
    }

    fn lite(&self) -> Option<&rusqlite::Connection> {
        None
    }

    fn execute(&self, sql: &str, params: &[Val<'_>]) -> Result<u64, DbError> {
        match self.statement(sql)? {
            Some(st) => Ok(self.client.borrow_mut().execute(&st, &pg_params(params))?),
            None => {
                use postgres::fallible_iterator::FallibleIterator;
                let mut client = self.client.borrow_mut();
                let mut rows = client.query_typed_raw(&dollar_placeholders(sql), pg_typed_params(params))?;
                while rows.next()?.is_some() {}
                Ok(rows.rows_affected().unwrap_or(0))
            }
        }
    }

    fn query(
        &self,
        sql: &str,
        params: &[Val<'_>],
        f: &mut dyn FnMut(&Row<'_, '_>) -> Result<(), DbError>,
    ) -> Result<(), DbError> {
        use postgres::fallible_iterator::FallibleIterator;
        let st = self.statement(sql)?;
        let mut client = self.client.borrow_mut();
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

    fn copy_in(&self, sql: &str, data: &[u8]) -> Result<u64, DbError> {
        use std::io::Write as _;
        let mut client = self.client.borrow_mut();
        let mut w = client.copy_in(sql)?;
        w.write_all(data).map_err(|e| DbError::Decode { column: 0, reason: format!("COPY: {e}") })?;
        Ok(w.finish()?)
    }

    fn batch(&self, sql: &str) -> Result<(), DbError> {
        Ok(self.client.borrow_mut().batch_execute(sql)?)
    }

    fn begin_write(&self) -> Result<(), DbError> {
        self.batch("BEGIN ISOLATION LEVEL READ COMMITTED")
    }

    fn begin_read(&self) -> Result<(), DbError> {
        self.batch("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
    }

    fn secret_rows(&self) -> &'static str {
        SECRET_ROWS_PG
    }

    fn schema_version(&self) -> Result<u32, DbError> {
        let mut version = None;
        self.query("SELECT version FROM schema_info WHERE id = 1", &[], &mut |r| {
            version = Some(r.i64(0)?);
            Ok(())
        })?;
        let v = version.ok_or_else(|| DbError::Decode { column: 0, reason: "the query returned no row".into() })?;
        Ok(v as u32)
    }

    fn row_sink(&self) -> Box<dyn RowSink> {
        Box::<super::write_behind::WriteBehind>::default()
    }

    fn storage_bytes(&self) -> Result<Option<u64>, DbError> {
        let mut n = 0;
        self.query(
            "SELECT CAST(coalesce(sum(pg_total_relation_size(c.oid)), 0) AS BIGINT) FROM pg_class c
               JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = current_schema() AND c.relkind = 'r'",
            &[],
            &mut |r| {
                n = r.i64(0)?;
                Ok(())
            },
        )?;
        Ok(Some(n as u64))
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

/// [`crate::state::SECRET_ROWS`] in PostgreSQL's case-sensitive `LIKE` (no `_` in the patterns,
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
