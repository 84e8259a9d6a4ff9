//! [`StateStore`]: an open state, and every read and open of it. The maintenance
//! operations (gc, check, copy, tokens, backup) are written over it in their own files.

use super::*;

/// An open state. Owns its connection ([`Db`]: SQLite or PostgreSQL).
pub struct StateStore {
    pub(super) conn: Db,
    /// The SQLite file, or `postgres:<schema>/<bucket id>` (what messages name).
    pub(super) path: PathBuf,
    pub(super) keyring: Option<Arc<Keyring>>,
    /// Where a PostgreSQL state is (to take its lock); `None` on SQLite.
    pub(super) pg: Option<postgres::PgTarget>,
}

impl std::fmt::Debug for StateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateStore").field("path", &self.path).field("keyring", &self.keyring).finish()
    }
}

impl StateStore {
    /// Create the state (fresh `bucket_id` and `lineage`) or migrate an older schema.
    /// Dir 0700, file 0600. Used by `kvform init` and by `apply` on a bucket with no state;
    /// `now` (the command's one clock read) is the state's `created_at`.
    pub fn init(path: &Path, now: i64) -> Result<(StateStore, InitOutcome), StateError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            private_dir(dir)?;
        }
        let io = |source| StateError::Io { path: path.to_path_buf(), source };
        std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(path).map_err(io)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
        let mut conn = Connection::open(path).map_err(sql(path, "open"))?;
        let mode: String =
            conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0)).map_err(sql(path, "enable WAL"))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StateError::NotAState {
                path: path.into(),
                reason: format!("cannot enable WAL (mode {mode})"),
            });
        }
        schema::configure(&conn).map_err(sql(path, "configure"))?;
        let found = schema::user_version(&conn).map_err(sql(path, "read schema version"))?;
        let outcome = match found {
            0 => {
                let tables: i64 = conn
                    .query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table'", [], |r| r.get(0))
                    .map_err(sql(path, "inspect"))?;
                if tables > 0 {
                    return Err(StateError::NotAState {
                        path: path.into(),
                        reason: "it holds tables but no kvform schema version".into(),
                    });
                }
                schema::migrate(&mut conn, 0).map_err(sql(path, "create schema"))?;
                conn.execute(
                    "INSERT INTO meta (id, bucket_id, lineage, serial, created_at) VALUES (1, ?1, ?2, 0, ?3)",
                    params![Uuid::new_v4().to_string(), Uuid::new_v4().to_string(), now],
                )
                .map_err(sql(path, "write meta"))?;
                InitOutcome::Created
            }
            v if v < schema::SCHEMA_VERSION => {
                let mut backup = path.as_os_str().to_owned();
                backup.push(format!(".schema-v{v}.bak"));
                let backup = PathBuf::from(backup);
                backup::backup_connection(&conn, path, &backup)?;
                let to = schema::migrate(&mut conn, v).map_err(sql(path, "migrate"))?;
                // Migrations can delete most of a large state (the stored peer lists of
                // schema 1): give the space back.
                conn.execute_batch("VACUUM").map_err(sql(path, "compact after migrating"))?;
                InitOutcome::Migrated { from: v, to, backup }
            }
            v if v > schema::SCHEMA_VERSION => {
                return Err(StateError::NewerSchema { path: path.into(), found: v, want: schema::SCHEMA_VERSION });
            }
            _ => InitOutcome::UpToDate,
        };
        Ok((
            StateStore { conn: Db::new(sqlite::Lite(conn)), path: path.to_path_buf(), keyring: None, pg: None },
            outcome,
        ))
    }

    /// Open an existing state. Refuses a missing file, a non-kvform file and an old schema.
    pub fn open(path: &Path) -> Result<StateStore, StateError> {
        Self::open_existing(path, OpenFlags::SQLITE_OPEN_READ_WRITE)
    }

    /// Open an existing state for reading only (`validate --print-desired`): SQLite is
    /// asked for a read-only connection, so nothing this handle does can change the file.
    pub fn open_read_only(path: &Path) -> Result<StateStore, StateError> {
        Self::open_existing(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
    }

    fn open_existing(path: &Path, mode: OpenFlags) -> Result<StateStore, StateError> {
        if !path.is_file() {
            return Err(StateError::Missing(path.to_path_buf()));
        }
        let flags = OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
        // On a read-only filesystem SQLite cannot create the WAL index (`-shm`) a WAL state
        // needs even for reading; `immutable=1` tells it nothing can change the file, so it
        // reads without one. Writers are refused in `begin_write`.
        let conn = if fs_status(path).read_only {
            Connection::open_with_flags(immutable_uri(path), OpenFlags::SQLITE_OPEN_READ_ONLY | flags)
        } else {
            Connection::open_with_flags(path, mode | flags)
        }
        .map_err(sql(path, "open"))?;
        schema::configure(&conn).map_err(sql(path, "configure"))?;
        let found = schema::user_version(&conn).map_err(sql(path, "read schema version"))?;
        if found == 0 {
            return Err(StateError::NotAState { path: path.into(), reason: "no kvform schema version".into() });
        }
        if found < schema::SCHEMA_VERSION {
            return Err(StateError::OldSchema { path: path.into(), found, want: schema::SCHEMA_VERSION });
        }
        if found > schema::SCHEMA_VERSION {
            return Err(StateError::NewerSchema { path: path.into(), found, want: schema::SCHEMA_VERSION });
        }
        let store = StateStore { conn: Db::new(sqlite::Lite(conn)), path: path.to_path_buf(), keyring: None, pg: None };
        store.meta()?;
        Ok(store)
    }

    /// Attach the bucket's keyring: needed to write `secrets/*` values.
    pub fn with_keyring(mut self, keyring: Keyring) -> StateStore {
        self.keyring = Some(Arc::new(keyring));
        self
    }

    pub fn keyring(&self) -> Option<&Keyring> {
        self.keyring.as_deref()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn meta(&self) -> Result<Meta, StateError> {
        read_meta(&self.conn, &self.path)
    }

    /// Latest row of every key, tombstones included, in one ordered scan.
    pub fn snapshot(&self) -> Result<Snapshot, StateError> {
        read_snapshot(&self.conn, &self.path)
    }

    /// What a plan needs of the state, in one read transaction: the rows without their
    /// values, handed to `desire` to build the desired state, then the values compared with
    /// `kv(&desired)` (only differing values are kept). See `crate::kv::current`.
    pub fn read_for_plan<D, E: From<StateError>>(
        &self,
        desire: impl FnOnce(&LeanSnapshot) -> Result<D, E>,
        kv: impl FnOnce(&D) -> &KvMap,
    ) -> Result<(LeanSnapshot, D), E> {
        lean::read_for_plan(&self.conn, &self.path, true, desire, kv)
    }

    /// [`Self::read_for_plan`], reading only what may have changed since the last apply
    /// when `mode` is incremental (`fingerprint`); `purged` names the namespaces the plan
    /// purges; `kv` gives the desired values and their types. Also returns what the apply records. The desired state is `None` when the
    /// plan is known to be empty without building it (see `lean::read_for_plan_with`).
    pub fn read_for_plan_with<D, E: From<StateError>>(
        &self,
        how: PlanRead<'_>,
        desire: impl Fn(&LeanSnapshot, Skip<'_>) -> Result<D, E>,
        view: impl Fn(&D) -> (&KvMap, &crate::kv::KvTypes, &crate::kv::inputs::Units),
        purged: impl Fn(&D, &LeanSnapshot) -> std::collections::BTreeSet<String>,
    ) -> Result<(LeanSnapshot, Option<D>, PlanBasis), E> {
        lean::read_for_plan_with(&self.conn, &self.path, true, how, desire, view, purged)
    }

    /// The latest row of every key without values (only `maand/bucket`'s are read): enough
    /// for `Prior::from_current`, not for a plan (use `read_for_plan`).
    pub fn lean_snapshot(&self) -> Result<LeanSnapshot, StateError> {
        lean::read_lean_snapshot(&self.conn, &self.path)
    }

    /// The latest row of one key (tombstone included), if the key was ever written; a
    /// derived key (`crate::kv::derived`) as readers see it.
    pub fn get(&self, ns: &str, key: &str) -> Result<Option<Entry>, StateError> {
        read_key(&self.conn, &self.path, ns, key)
    }

    /// The live values of many keys at once (absent and tombstoned keys are missing): one
    /// statement on PostgreSQL where [`Self::get`] per key is a round trip each.
    pub fn live_values(&self, keys: &[(String, String)]) -> Result<LiveValues, StateError> {
        bulk::live_values(&self.conn, &self.path, keys)
    }

    /// [`Self::snapshot`] with every derived key added: the state as readers see it
    /// (`cat kv`, `kv keys`). Never plan against it (derived keys are not stored).
    pub fn snapshot_with_derived(&self) -> Result<Snapshot, StateError> {
        let mut snap = read_snapshot(&self.conn, &self.path)?;
        crate::kv::derived::add_to_entries(&mut snap.entries);
        Ok(snap)
    }

    /// Type, description and first-version time of a key's latest row.
    pub fn key_meta(&self, ns: &str, key: &str) -> Result<Option<crate::kv::KeyMeta>, StateError> {
        read_key_meta(&self.conn, &self.path, ns, key)
    }

    /// Live keys of a namespace (derived keys included), sorted.
    pub fn live_keys(&self, ns: &str) -> Result<Vec<String>, StateError> {
        live_keys(&self.conn, &self.path, ns)
    }

    /// Every kept version of a key, oldest first.
    pub fn history(&self, ns: &str, key: &str) -> Result<Vec<VersionRow>, StateError> {
        read_history(&self.conn, &self.path, ns, key)
    }

    /// The newest `limit` audit records, newest first.
    pub fn audit(&self, limit: usize) -> Result<Vec<AuditRecord>, StateError> {
        self.conn
            .query_map(
                "SELECT serial, operation, actor, tool_version, started_at, finished_at, duration_ms,
                        added, changed, destroyed, removed, resealed, status
                   FROM applies ORDER BY id DESC LIMIT ?1",
                vals![limit as i64],
                |r| {
                    Ok(AuditRecord {
                        serial: r.u64(0)?,
                        operation: r.text(1)?,
                        actor: r.text(2)?,
                        tool_version: r.text(3)?,
                        started_at: r.i64(4)?,
                        finished_at: r.i64(5)?,
                        duration_ms: r.u64(6)?,
                        added: r.u64(7)?,
                        changed: r.u64(8)?,
                        destroyed: r.u64(9)?,
                        removed: r.u64(10)?,
                        resealed: r.u64(11)?,
                        status: r.text(12)?,
                    })
                },
            )
            .map_err(sql(&self.path, "read audit records"))
    }

    /// Take the write lock (fail at once when `lock_timeout` is zero, else wait up to it)
    /// and begin the write transaction. The transaction owns the connection (`Send +
    /// 'static`). `now` (the command's one clock read) is when the lock record says it was
    /// taken.
    pub fn begin_write(self, operation: &str, lock_timeout: Duration, now: i64) -> Result<WriteTxn, StateError> {
        let guard = match &self.pg {
            Some(target) => postgres::lock::acquire(target, &self.path, operation, lock_timeout, now)?,
            None => {
                if fs_status(&self.path).read_only {
                    return Err(StateError::ReadOnly { path: self.path, context: "a write needs the write lock" });
                }
                let guard = lock::acquire(&self.path, operation, lock_timeout, now)?;
                if let Some(c) = self.conn.lite() {
                    check_before_write(c, &self.path)?;
                }
                guard
            }
        };
        WriteTxn::begin(self.conn, self.path, self.keyring, guard)
    }

    pub(crate) fn conn(&self) -> &Db {
        &self.conn
    }

    /// The write lock's status ([`lock::status`]) on either backend: the holder of a held
    /// lock, or the stale record a dead holder left.
    pub fn lock_status(&self) -> Result<(Option<LockHolder>, Option<LockHolder>), StateError> {
        match &self.pg {
            Some(t) => postgres::lock::status(t),
            None => lock::status(&self.path),
        }
    }

    /// Where a PostgreSQL state lives; `None` for SQLite.
    pub fn pg_target(&self) -> Option<&postgres::PgTarget> {
        self.pg.as_ref()
    }

    /// `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        self.conn.backend()
    }

    /// Whether a read is a network round trip (PostgreSQL) rather than a local B-tree
    /// lookup: callers on an async runtime must then not run it on a worker thread.
    pub fn is_remote(&self) -> bool {
        self.conn.is_remote()
    }

    /// Bytes of a PostgreSQL state's tables and indexes; `None` for SQLite (its file is the size).
    pub fn storage_bytes(&self) -> Result<Option<u64>, StateError> {
        self.conn.storage_bytes().map_err(sql(&self.path, "measure the state"))
    }

    /// Whether this state's PostgreSQL session has ended (a server restart, a terminated
    /// backend); a long-running reader ([`crate::serve`]) then [`Self::reconnect`]s.
    pub fn connection_lost(&self) -> bool {
        self.conn.is_closed()
    }

    /// A new session for a PostgreSQL state whose connection was lost (no-op on SQLite).
    /// The statement cache goes with the old session; the keyring stays.
    pub fn reconnect(&mut self) -> Result<(), StateError> {
        if let Some(t) = &self.pg {
            self.conn = t.reopen()?;
        }
        Ok(())
    }
}
