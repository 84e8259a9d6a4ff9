//! Where a state lives: [`StateConfig`] is what `kvform.hcl` says (`state { … }`, typed
//! when the settings are parsed), [`Location`] is that resolved against the bucket root.
//!
//! This file is the only place that tells the backends apart by name (SPEC §10): every
//! other module opens, creates, restores or unlocks a [`Location`] through the methods
//! below and never learns which backend it got; a message names it with
//! [`Location::describe`].

use super::postgres::PgLocation;
use super::{InitOutcome, StateError, StateStore, backup, lock};
use std::path::{Path, PathBuf};
use std::time::Duration;
use uuid::Uuid;

/// `state { backend path url_env schema bucket_id }` of `kvform.hcl`, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateConfig {
    /// `backend = "sqlite"` (the default): the state file, relative to the bucket root
    /// unless absolute (default `data/kvform.db`).
    Sqlite { path: PathBuf },
    /// `backend = "postgres"`. `path` is still what `state { path }` says: the file
    /// `kvform state migrate --to sqlite` writes.
    Postgres { target: PgLocation, path: PathBuf },
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig::Sqlite { path: PathBuf::from("data/kvform.db") }
    }
}

impl StateConfig {
    /// `state { path }`, as written (an SQLite state's file, relative to the bucket root
    /// unless absolute).
    pub fn sqlite_path(&self) -> &Path {
        match self {
            StateConfig::Sqlite { path } | StateConfig::Postgres { path, .. } => path,
        }
    }

    /// `state { bucket_id }` of a PostgreSQL state (`None` on SQLite, or before `kvform
    /// init` wrote it).
    pub fn bucket_id(&self) -> Option<Uuid> {
        match self {
            StateConfig::Sqlite { .. } => None,
            StateConfig::Postgres { target, .. } => target.bucket_id,
        }
    }

    /// Where the state of the bucket at `root` is.
    pub fn locate(&self, root: &Path) -> Location {
        match self {
            StateConfig::Sqlite { path } => Location::Sqlite(file_under(root, path)),
            StateConfig::Postgres { target, .. } => Location::Postgres(target.clone()),
        }
    }

    /// The SQLite file `state { path }` names, whatever the backend (`state migrate --to
    /// sqlite` writes there).
    pub fn sqlite_location(&self, root: &Path) -> Location {
        Location::Sqlite(file_under(root, self.sqlite_path()))
    }
}

fn file_under(root: &Path, configured: &Path) -> PathBuf {
    if configured.is_absolute() { configured.to_path_buf() } else { root.join(configured) }
}

/// Where the state of a bucket is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// An SQLite file.
    Sqlite(PathBuf),
    Postgres(PgLocation),
}

impl Location {
    /// What messages call this state: the file relative to `root` (absolute when outside
    /// it), or `on PostgreSQL ($URL_ENV, schema S[, bucket ID])`.
    pub fn describe(&self, root: &Path) -> String {
        match self {
            Location::Sqlite(p) => p.strip_prefix(root).unwrap_or(p).display().to_string(),
            Location::Postgres(pg) => format!(
                "on PostgreSQL (${}, schema {}{})",
                pg.url_env,
                pg.schema,
                pg.bucket_id.map_or(String::new(), |id| format!(", bucket {id}"))
            ),
        }
    }

    /// The SQLite file, `None` on PostgreSQL.
    pub fn file(&self) -> Option<&Path> {
        match self {
            Location::Sqlite(p) => Some(p),
            Location::Postgres(_) => None,
        }
    }

    /// Whether a read is a network round trip (see [`StateStore::is_remote`]), known
    /// before anything is opened.
    pub fn is_remote(&self) -> bool {
        matches!(self, Location::Postgres(_))
    }

    /// Open the state (see [`StateStore::open`]).
    pub fn open(&self) -> Result<StateStore, StateError> {
        match self {
            Location::Sqlite(p) => StateStore::open(p),
            Location::Postgres(pg) => pg.open(),
        }
    }

    /// Open the state for reads only: an SQLite file read-only (it works on a read-only
    /// filesystem and never writes), a PostgreSQL bucket over a plain connection (reads
    /// there never take the lock either).
    pub fn open_read_only(&self) -> Result<StateStore, StateError> {
        match self {
            Location::Sqlite(p) => StateStore::open_read_only(p),
            Location::Postgres(pg) => pg.open(),
        }
    }

    /// The state, or `None` when there is none yet: one connection on PostgreSQL, where
    /// [`Self::exists`] and then [`Self::open`] would open two.
    pub fn open_if_any(&self) -> Result<Option<StateStore>, StateError> {
        match self {
            Location::Sqlite(p) if !p.exists() => Ok(None),
            Location::Sqlite(p) => StateStore::open(p).map(Some),
            Location::Postgres(pg) if pg.bucket_id.is_none() => Ok(None),
            Location::Postgres(pg) => match pg.open() {
                Err(StateError::Missing(_)) => Ok(None),
                other => other.map(Some),
            },
        }
    }

    /// Whether there is a state here yet.
    pub fn exists(&self) -> Result<bool, StateError> {
        match self {
            Location::Sqlite(p) => Ok(p.exists()),
            Location::Postgres(pg) => pg.exists(),
        }
    }

    /// Whether this is a PostgreSQL location whose bucket `kvform.hcl` does not name yet
    /// (only `kvform init` creates one, because it also writes the id into kvform.hcl).
    pub fn lacks_bucket_id(&self) -> bool {
        matches!(self, Location::Postgres(PgLocation { bucket_id: None, .. }))
    }

    /// Create or upgrade the state (see [`StateStore::init`]). Also returns the PostgreSQL
    /// bucket id (to be written into kvform.hcl when it was not there).
    pub fn init(&self, now: i64) -> Result<(StateStore, InitOutcome, Option<Uuid>), StateError> {
        match self {
            Location::Sqlite(p) => StateStore::init(p, now).map(|(s, o)| (s, o, None)),
            Location::Postgres(pg) => pg.init(now).map(|(s, o, id)| (s, o, Some(id))),
        }
    }

    /// `kvform state force-unlock ID`.
    pub fn force_unlock(&self, id: &str) -> Result<lock::ForceUnlock, StateError> {
        match self {
            Location::Sqlite(p) => lock::force_unlock(p, id),
            Location::Postgres(pg) => {
                let store = pg.open()?;
                let target = store.pg_target().expect("a PostgreSQL store has its target");
                super::postgres::lock::force_unlock(target, id)
            }
        }
    }

    /// `kvform state restore FILE` onto this state. On PostgreSQL the state it replaces is
    /// first saved as an SQLite backup in `aside_dir` (see [`super::postgres::restore`]).
    pub fn restore(
        &self,
        file: &Path,
        aside_dir: &Path,
        lock_timeout: Duration,
        now: i64,
        force: bool,
    ) -> Result<backup::RestoreOutcome, StateError> {
        match self {
            Location::Sqlite(p) => backup::restore(p, file, lock_timeout, now, force),
            Location::Postgres(pg) => super::postgres::restore::restore(pg, file, aside_dir, lock_timeout, now, force),
        }
    }

    /// A new, empty state here for bucket `bucket_id` to be copied into (`state migrate`):
    /// refused when it is the state at `src` itself, or when a state is already here
    /// unless `force` (which removes it first). A PostgreSQL target is the bucket of the
    /// same id.
    pub(crate) fn fresh_copy_target(
        &self,
        src: &Path,
        bucket_id: Uuid,
        force: bool,
        now: i64,
    ) -> Result<StateStore, StateError> {
        let refuse = |what: String| {
            StateError::Config(format!(
                "{what} already holds a state\n  help: pass --force to replace it with this one (what it holds is lost)"
            ))
        };
        let here = StateError::Config("the state is already there".into());
        match self {
            Location::Sqlite(path) => {
                if path == src {
                    return Err(here);
                }
                if path.exists() {
                    if !force {
                        return Err(refuse(path.display().to_string()));
                    }
                    for suffix in ["", "-wal", "-shm"] {
                        let mut p = path.as_os_str().to_owned();
                        p.push(suffix);
                        let _ = std::fs::remove_file(PathBuf::from(p));
                    }
                }
                Ok(StateStore::init(path, now)?.0)
            }
            Location::Postgres(pg) => {
                let loc = PgLocation { bucket_id: Some(bucket_id), ..pg.clone() };
                if loc.shown() == src {
                    return Err(here);
                }
                if loc.exists()? {
                    if !force {
                        return Err(refuse(format!("PostgreSQL (schema {}, bucket {bucket_id})", pg.schema)));
                    }
                    loc.drop_bucket()?;
                }
                Ok(loc.init(now)?.0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pg(bucket_id: Option<Uuid>) -> PgLocation {
        PgLocation { url_env: "KVFORM_PG_URL".into(), schema: "kvform".into(), bucket_id }
    }

    #[test]
    fn a_config_is_located_under_the_bucket_root() {
        let root = Path::new("/b");
        assert_eq!(StateConfig::default().locate(root), Location::Sqlite("/b/data/kvform.db".into()));
        let abs = StateConfig::Sqlite { path: "/var/kv.db".into() };
        assert_eq!(abs.locate(root), Location::Sqlite("/var/kv.db".into()));
        let on_pg = StateConfig::Postgres { target: pg(None), path: "s/kv.db".into() };
        assert_eq!(on_pg.locate(root), Location::Postgres(pg(None)));
        assert_eq!(on_pg.sqlite_location(root), Location::Sqlite("/b/s/kv.db".into()));
        assert!(on_pg.locate(root).is_remote() && on_pg.locate(root).lacks_bucket_id());
        assert!(!abs.locate(root).is_remote() && !abs.locate(root).lacks_bucket_id());
    }

    #[test]
    fn messages_name_the_state_without_its_connection_string() {
        let root = Path::new("/b");
        assert_eq!(Location::Sqlite("/b/data/kvform.db".into()).describe(root), "data/kvform.db");
        assert_eq!(Location::Sqlite("/elsewhere/kv.db".into()).describe(root), "/elsewhere/kv.db");
        assert_eq!(Location::Postgres(pg(None)).describe(root), "on PostgreSQL ($KVFORM_PG_URL, schema kvform)");
        let id = Uuid::nil();
        assert_eq!(
            Location::Postgres(pg(Some(id))).describe(root),
            format!("on PostgreSQL ($KVFORM_PG_URL, schema kvform, bucket {id})")
        );
    }
}
