//! The PostgreSQL side of opening a state (SPEC §10); [`super::location`] says where one is.
//!
//! Layout: one database holds many buckets. The configured schema (`state { schema }`,
//! default `kvform`) holds the registry `buckets(bucket_id, lineage, schema_name,
//! created_at)`; each bucket's tables (the same tables as SQLite's, see
//! `super::schema::PG_SCHEMA`) live in a schema of their own, `<registry>_b_<bucket id hex>`
//! (`kvform_b_…`; the registry's name in it, so two registries in one database — tests, or
//! teams sharing a server — can hold the same bucket id),
//! selected with `search_path` — so every state query is the same text on both backends,
//! and dropping a bucket is one `DROP SCHEMA`.
//!
//! The bucket is named in kvform.hcl (`state { bucket_id }`, written by `kvform init`) so a
//! fresh clone on an ephemeral runner finds its state. The connection string comes only
//! from the environment (`url_env`): it usually carries a password, and kvform.hcl is
//! committed.

mod conn;
pub mod lock;
pub mod restore;
mod write_behind;

use super::backend::Db;
use super::{InitOutcome, StateError, StateStore, schema, sql};
use conn::Pg;
use std::path::{Path, PathBuf};
use uuid::Uuid;

/// `state { backend = "postgres" … }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgLocation {
    /// The environment variable holding the connection string.
    pub url_env: String,
    /// The registry schema.
    pub schema: String,
    /// `None` before `kvform init` created the bucket.
    pub bucket_id: Option<Uuid>,
}

/// An opened PostgreSQL location: what the lock needs to reconnect.
#[derive(Debug, Clone)]
pub struct PgTarget {
    pub url: String,
    pub registry: String,
    pub bucket_id: Uuid,
}

impl PgTarget {
    /// The bucket's own schema.
    pub fn bucket_schema(&self) -> String {
        bucket_schema(&self.registry, self.bucket_id)
    }

    /// What messages call this state.
    pub fn display(&self) -> PathBuf {
        PathBuf::from(format!("postgres:{}/{}", self.registry, self.bucket_id))
    }

    /// A new session of the bucket's state (a lost one's replacement).
    pub(crate) fn reopen(&self) -> Result<Db, StateError> {
        Ok(Db::new(Pg::new(self.connect("reconnect")?)))
    }

    /// A new connection with `search_path` on the bucket's schema.
    pub fn connect(&self, purpose: &'static str) -> Result<postgres::Client, StateError> {
        let mut client = connect(&self.url, &self.display(), purpose)?;
        client
            .batch_execute(&format!("SET search_path TO {}", ident(&self.bucket_schema())))
            .map_err(sql(&self.display(), purpose))?;
        Ok(client)
    }
}

/// At most 63 bytes (PostgreSQL's identifier limit) for a registry name of at most
/// [`MAX_REGISTRY_LEN`].
pub fn bucket_schema(registry: &str, bucket_id: Uuid) -> String {
    format!("{registry}_b_{}", bucket_id.simple())
}

/// The longest `state { schema }`: 28 + `_b_` + 32 hex digits = 63.
pub const MAX_REGISTRY_LEN: usize = 28;

/// A quoted identifier (schema names come from kvform.hcl).
pub(crate) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn connect(url: &str, shown: &Path, context: &'static str) -> Result<postgres::Client, StateError> {
    let mut config: postgres::Config = url.parse().map_err(|e: postgres::Error| {
        // The crate's parse errors never echo the string (it may hold a password).
        StateError::Config(format!("the PostgreSQL connection string is invalid: {e}"))
    })?;
    if config.get_application_name().is_none() {
        config.application_name("kvform");
    }
    config.connect(postgres::NoTls).map_err(sql(shown, context))
}

impl PgLocation {
    fn url(&self) -> Result<String, StateError> {
        match std::env::var(&self.url_env) {
            Ok(u) if !u.trim().is_empty() => Ok(u),
            _ => Err(StateError::Config(format!(
                "the state is on PostgreSQL but ${} is not set\n  help: export {}=postgres://user@host/db (kvform.hcl `state {{ url_env }}` names the variable)",
                self.url_env, self.url_env
            ))),
        }
    }

    fn target(&self, bucket_id: Uuid) -> Result<PgTarget, StateError> {
        Ok(PgTarget { url: self.url()?, registry: self.schema.clone(), bucket_id })
    }

    /// What messages call this bucket (`postgres:<registry>/<bucket id>`, as
    /// [`PgTarget::display`]); without a bucket id, the registry alone.
    pub(crate) fn shown(&self) -> PathBuf {
        match self.bucket_id {
            Some(id) => PathBuf::from(format!("postgres:{}/{id}", self.schema)),
            None => PathBuf::from(format!("postgres:{}", self.schema)),
        }
    }

    fn no_bucket_id(&self) -> StateError {
        StateError::Config(
            "kvform.hcl names no PostgreSQL bucket (`state { bucket_id }`)\n  help: run `kvform init`: it creates the bucket and writes its id into kvform.hcl".into(),
        )
    }

    /// Whether the bucket exists in the database.
    pub fn exists(&self) -> Result<bool, StateError> {
        let Some(id) = self.bucket_id else { return Ok(false) };
        let t = self.target(id)?;
        let mut c = connect(&t.url, &t.display(), "connect")?;
        registered(&mut c, &t)
    }

    /// Open the bucket's state; [`StateError::Missing`] when the database has no such bucket.
    pub fn open(&self) -> Result<StateStore, StateError> {
        let id = self.bucket_id.ok_or_else(|| self.no_bucket_id())?;
        let t = self.target(id)?;
        let shown = t.display();
        let mut client = connect(&t.url, &shown, "connect")?;
        if !registered(&mut client, &t)? {
            return Err(StateError::Missing(shown));
        }
        client
            .batch_execute(&format!("SET search_path TO {}", ident(&t.bucket_schema())))
            .map_err(sql(&shown, "select the bucket schema"))?;
        let store = StateStore { conn: Db::new(Pg::new(client)), path: shown.clone(), keyring: None, pg: Some(t) };
        let found = store.conn.schema_version().map_err(sql(&shown, "read schema version"))?;
        if found > schema::SCHEMA_VERSION {
            return Err(StateError::NewerSchema { path: shown, found, want: schema::SCHEMA_VERSION });
        }
        if found == 5 {
            // 5 -> 6: the last apply's render (`super::render`).
            let step = format!("{}UPDATE schema_info SET version = 6 WHERE id = 1;", schema::PG_RENDER_FILES);
            store.conn.batch(&format!("BEGIN; {step} COMMIT;")).map_err(sql(&shown, "migrate to schema 6"))?;
        } else if found < schema::SCHEMA_VERSION {
            // No PostgreSQL state was written at a schema older than 5.
            return Err(StateError::OldSchema { path: shown, found, want: schema::SCHEMA_VERSION });
        }
        store.meta()?;
        Ok(store)
    }

    /// Create the bucket (a fresh id unless kvform.hcl names one) at the current schema,
    /// or open it when it exists. Returns the bucket id with the store.
    pub fn init(&self, now: i64) -> Result<(StateStore, InitOutcome, Uuid), StateError> {
        let id = self.bucket_id.unwrap_or_else(Uuid::new_v4);
        let t = self.target(id)?;
        let shown = t.display();
        let mut client = connect(&t.url, &shown, "connect")?;
        let created = create_bucket(&mut client, &t, Uuid::new_v4(), now, None)?;
        drop(client);
        let loc = PgLocation { bucket_id: Some(id), ..self.clone() };
        let store = loc.open()?;
        Ok((store, if created { InitOutcome::Created } else { InitOutcome::UpToDate }, id))
    }
}

impl PgLocation {
    /// Drop the bucket's schema and registry record (`state migrate --force`).
    pub(crate) fn drop_bucket(&self) -> Result<(), StateError> {
        let id = self.bucket_id.ok_or_else(|| self.no_bucket_id())?;
        let t = self.target(id)?;
        let shown = t.display();
        let mut c = connect(&t.url, &shown, "connect")?;
        let mut tx = c.transaction().map_err(sql(&shown, "begin"))?;
        tx.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", ident(&t.bucket_schema())))
            .map_err(sql(&shown, "drop the bucket schema"))?;
        tx.execute(&format!("DELETE FROM {}.buckets WHERE bucket_id = $1", ident(&t.registry)), &[&id.to_string()])
            .map_err(sql(&shown, "unregister the bucket"))?;
        tx.commit().map_err(sql(&shown, "commit"))
    }
}

fn registered(c: &mut postgres::Client, t: &PgTarget) -> Result<bool, StateError> {
    let shown = t.display();
    let has_registry: bool = c
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM information_schema.tables WHERE table_schema = $1 AND table_name = 'buckets')",
            &[&t.registry],
        )
        .and_then(|r| r.try_get(0))
        .map_err(sql(&shown, "read the bucket registry"))?;
    if !has_registry {
        return Ok(false);
    }
    let q = format!("SELECT 1 FROM {}.buckets WHERE bucket_id = $1", ident(&t.registry));
    let row = c.query_opt(&q, &[&t.bucket_id.to_string()]).map_err(sql(&shown, "read the bucket registry"))?;
    Ok(row.is_some())
}

/// Create the registry (if missing) and the bucket's schema at [`schema::SCHEMA_VERSION`]
/// with its meta record, in one transaction; `false` when the bucket already exists.
/// `serial`: the meta serial to start at (a migrated state keeps its own; 0 when new).
pub(crate) fn create_bucket(
    c: &mut postgres::Client,
    t: &PgTarget,
    lineage: Uuid,
    now: i64,
    serial: Option<i64>,
) -> Result<bool, StateError> {
    let shown = t.display();
    let err = |ctx| sql(&shown, ctx);
    let mut tx = c.transaction().map_err(err("begin creating the bucket"))?;
    // Creating schemas races between processes (`IF NOT EXISTS` is not atomic in
    // PostgreSQL's catalog): serialise creators on one transaction-scoped advisory lock.
    tx.execute("SELECT pg_advisory_xact_lock(7021741935627710517)", &[]).map_err(err("serialise bucket creation"))?;
    let reg = ident(&t.registry);
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {reg};
         CREATE TABLE IF NOT EXISTS {reg}.buckets (
             bucket_id   TEXT COLLATE \"C\" PRIMARY KEY,
             lineage     TEXT COLLATE \"C\" NOT NULL,
             schema_name TEXT COLLATE \"C\" NOT NULL UNIQUE,
             created_at  BIGINT NOT NULL
         );"
    ))
    .map_err(err("create the bucket registry"))?;
    let exists = tx
        .query_opt(&format!("SELECT 1 FROM {reg}.buckets WHERE bucket_id = $1"), &[&t.bucket_id.to_string()])
        .map_err(err("read the bucket registry"))?
        .is_some();
    if exists {
        tx.commit().map_err(err("commit"))?;
        return Ok(false);
    }
    let bs = t.bucket_schema();
    tx.batch_execute(&format!("CREATE SCHEMA {}; SET LOCAL search_path TO {};", ident(&bs), ident(&bs)))
        .map_err(err("create the bucket schema"))?;
    tx.batch_execute(schema::PG_SCHEMA).map_err(err("create schema"))?;
    tx.execute("INSERT INTO schema_info (id, version) VALUES (1, $1)", &[&(schema::SCHEMA_VERSION as i64)])
        .map_err(err("write schema version"))?;
    tx.execute(
        "INSERT INTO meta (id, bucket_id, lineage, serial, created_at) VALUES (1, $1, $2, $3, $4)",
        &[&t.bucket_id.to_string(), &lineage.to_string(), &serial.unwrap_or(0), &now],
    )
    .map_err(err("write meta"))?;
    tx.execute(
        &format!("INSERT INTO {reg}.buckets (bucket_id, lineage, schema_name, created_at) VALUES ($1, $2, $3, $4)"),
        &[&t.bucket_id.to_string(), &lineage.to_string(), &bs, &now],
    )
    .map_err(err("register the bucket"))?;
    tx.commit().map_err(err("commit"))?;
    Ok(true)
}
