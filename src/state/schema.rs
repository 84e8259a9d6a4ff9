//! The SQLite schema, connection settings and versioned migrations.
//!
//! Layout (why two version tables): every key's *latest* row lives in `latest`, its older
//! rows in `history`. Together they are the version rows of SPEC §4. Splitting them keeps
//! the hot paths to one B-tree each — a snapshot is one ordered scan of `latest`, a point
//! read one primary-key seek, a new key one insert — while history stays a plain append.
//! `state check` verifies the two agree (consecutive versions, latest = max).
//!
//! The schema version is SQLite's `user_version`; `meta` holds the bucket's ids and serial.

use rusqlite::Connection;
use std::time::Duration;

/// The schema this build writes. Bump it and append to [`MIGRATIONS`] for every change.
pub const SCHEMA_VERSION: u32 = 6;

/// One schema step: SQL, or code for steps that must look at the data.
pub enum Migration {
    Sql(&'static str),
    Code(fn(&rusqlite::Transaction) -> rusqlite::Result<()>),
}

/// `MIGRATIONS[i]` takes a state from schema `i` to `i + 1`.
pub const MIGRATIONS: &[Migration] = &[
    // 0 -> 1: the initial schema.
    Migration::Sql(
        "
    CREATE TABLE meta (
        id          INTEGER PRIMARY KEY CHECK (id = 1),
        bucket_id   TEXT    NOT NULL,
        lineage     TEXT    NOT NULL,
        serial      INTEGER NOT NULL CHECK (serial >= 0),
        created_at  INTEGER NOT NULL
    );
    -- Rowid tables with the value last: values can be large (peer lists of a big fleet), and
    -- SQLite stores a WITHOUT ROWID row inside its key's B-tree, where large rows split pages
    -- on every insert; here rows append, the (namespace, key) index stays small, and a scan
    -- that skips the value never walks its overflow pages.
    CREATE TABLE latest (
        namespace   TEXT    NOT NULL,
        key         TEXT    NOT NULL,
        version     INTEGER NOT NULL CHECK (version >= 1),
        deleted     INTEGER NOT NULL CHECK (deleted IN (0, 1)),
        ttl         INTEGER NOT NULL CHECK (ttl >= 0),
        created_at  INTEGER NOT NULL,
        serial      INTEGER NOT NULL,
        writer      TEXT    NOT NULL,
        value       TEXT    NOT NULL,
        UNIQUE (namespace, key)
    );
    CREATE TABLE history (
        namespace   TEXT    NOT NULL,
        key         TEXT    NOT NULL,
        version     INTEGER NOT NULL CHECK (version >= 1),
        deleted     INTEGER NOT NULL CHECK (deleted IN (0, 1)),
        ttl         INTEGER NOT NULL CHECK (ttl >= 0),
        created_at  INTEGER NOT NULL,
        serial      INTEGER NOT NULL,
        writer      TEXT    NOT NULL,
        value       TEXT    NOT NULL,
        UNIQUE (namespace, key, version),
        FOREIGN KEY (namespace, key) REFERENCES latest (namespace, key) ON DELETE CASCADE
    );
    -- The audit trail: one record per committed change set (and per failed apply).
    CREATE TABLE applies (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        serial       INTEGER NOT NULL,
        operation    TEXT    NOT NULL,
        actor        TEXT    NOT NULL,
        tool_version TEXT    NOT NULL,
        started_at   INTEGER NOT NULL,
        finished_at  INTEGER NOT NULL,
        duration_ms  INTEGER NOT NULL,
        added        INTEGER NOT NULL,
        changed      INTEGER NOT NULL,
        destroyed    INTEGER NOT NULL,
        removed      INTEGER NOT NULL,
        resealed     INTEGER NOT NULL,
        status       TEXT    NOT NULL
    );
    -- The last write lock taken (the live lock is the flock'd `<state>.lock` file; see lock.rs).
    CREATE TABLE lock (
        id          INTEGER PRIMARY KEY CHECK (id = 1),
        lock_id     TEXT    NOT NULL,
        actor       TEXT    NOT NULL,
        pid         INTEGER NOT NULL,
        operation   TEXT    NOT NULL,
        since       INTEGER NOT NULL
    );
    ",
    ),
    // 1 -> 2: `<label>_peers` and `peer_workers` are derived when read (SPEC §4): write
    // `placed_workers`, delete the stored peer rows (`super::migrate`).
    Migration::Code(super::migrate::derive_peer_keys),
    // 2 -> 3: change-proportional planning (`super::fingerprint`). Empty until the next
    // apply, so the first plan after migrating reads everything.
    Migration::Sql(
        "
    -- Per live namespace, the fingerprint of the desired keys the last apply verified.
    CREATE TABLE fingerprints (
        namespace   TEXT PRIMARY KEY,
        digest      BLOB NOT NULL
    ) WITHOUT ROWID;
    -- The serial the fingerprints are valid at, and the kvform that computed them.
    -- workspace_digest/verified: the workspace the last apply planned from, and whether
    -- every namespace it planned was verified (then an unchanged workspace and no write
    -- since need no projection at all).
    CREATE TABLE plan_base (
        id               INTEGER PRIMARY KEY CHECK (id = 1),
        serial           INTEGER NOT NULL,
        tool_version     TEXT    NOT NULL,
        workspace_digest TEXT,
        verified         INTEGER NOT NULL CHECK (verified IN (0, 1))
    );
    -- Keys written since a serial (out-of-band writes), and keys whose ttl ran out.
    CREATE INDEX latest_serial ON latest (serial);
    CREATE INDEX latest_expiry ON latest (created_at + ttl) WHERE ttl > 0 AND deleted = 0;
    ",
    ),
    // 3 -> 4: jobs whose allocations were all removed (or that left the workspace with
    // allocations). Their synced namespaces stay purged until the job is placed again; key
    // history cannot tell (gc removes it), so the state records it. States older than the
    // record get it inferred: jobs with allocation rows, none live, and no live job catalog.
    Migration::Sql(
        "
    CREATE TABLE purged_jobs (
        job     TEXT    NOT NULL PRIMARY KEY,
        serial  INTEGER NOT NULL
    ) WITHOUT ROWID;
    INSERT OR IGNORE INTO purged_jobs (job, serial)
    SELECT a.job, coalesce((SELECT serial FROM meta WHERE id = 1), 0)
      FROM (SELECT substr(namespace, 11, instr(substr(namespace, 11), '/') - 1) AS job, max(deleted = 0) AS live
              FROM latest WHERE namespace LIKE 'maand/job/%/worker/%' GROUP BY 1) a
     WHERE a.live = 0 AND a.job <> ''
       AND NOT EXISTS (SELECT 1 FROM latest l WHERE l.namespace = 'maand/job/' || a.job AND l.deleted = 0);
    ",
    ),
    // 4 -> 5: typed values and metadata, and API tokens (SPEC §9, `kvform serve`). Every version row gains `type`,
    // `description` and `key_created_at` (the key's first version, kept when old versions are
    // trimmed). The tables are rebuilt rather than ALTERed so the value stays the last column
    // (see above). `history_v1` is renamed first so its foreign key follows `latest_v1` and
    // no cascade touches the new tables.
    Migration::Sql(
        "
    ALTER TABLE history RENAME TO history_v1;
    ALTER TABLE latest RENAME TO latest_v1;
    CREATE TABLE latest (
        namespace      TEXT    NOT NULL,
        key            TEXT    NOT NULL,
        version        INTEGER NOT NULL CHECK (version >= 1),
        deleted        INTEGER NOT NULL CHECK (deleted IN (0, 1)),
        ttl            INTEGER NOT NULL CHECK (ttl >= 0),
        created_at     INTEGER NOT NULL,
        serial         INTEGER NOT NULL,
        writer         TEXT    NOT NULL,
        type           TEXT    NOT NULL DEFAULT 'string',
        description    TEXT    NOT NULL DEFAULT '',
        key_created_at INTEGER NOT NULL DEFAULT 0,
        value          TEXT    NOT NULL,
        UNIQUE (namespace, key)
    );
    CREATE TABLE history (
        namespace      TEXT    NOT NULL,
        key            TEXT    NOT NULL,
        version        INTEGER NOT NULL CHECK (version >= 1),
        deleted        INTEGER NOT NULL CHECK (deleted IN (0, 1)),
        ttl            INTEGER NOT NULL CHECK (ttl >= 0),
        created_at     INTEGER NOT NULL,
        serial         INTEGER NOT NULL,
        writer         TEXT    NOT NULL,
        type           TEXT    NOT NULL DEFAULT 'string',
        description    TEXT    NOT NULL DEFAULT '',
        key_created_at INTEGER NOT NULL DEFAULT 0,
        value          TEXT    NOT NULL,
        UNIQUE (namespace, key, version),
        FOREIGN KEY (namespace, key) REFERENCES latest (namespace, key) ON DELETE CASCADE
    );
    INSERT INTO latest (namespace, key, version, deleted, ttl, created_at, serial, writer, key_created_at, value)
         SELECT l.namespace, l.key, l.version, l.deleted, l.ttl, l.created_at, l.serial, l.writer,
                min(l.created_at, coalesce((SELECT min(h.created_at) FROM history_v1 h
                                             WHERE h.namespace = l.namespace AND h.key = l.key), l.created_at)),
                l.value
           FROM latest_v1 l ORDER BY l.rowid;
    INSERT INTO history (namespace, key, version, deleted, ttl, created_at, serial, writer, key_created_at, value)
         SELECT h.namespace, h.key, h.version, h.deleted, h.ttl, h.created_at, h.serial, h.writer,
                (SELECT l.key_created_at FROM latest l WHERE l.namespace = h.namespace AND l.key = h.key), h.value
           FROM history_v1 h ORDER BY h.rowid;
    DROP TABLE history_v1;
    DROP TABLE latest_v1;
    -- The rebuilt `latest` gets the indexes of 2 -> 3 again (they went with `latest_v1`).
    CREATE INDEX latest_serial ON latest (serial);
    CREATE INDEX latest_expiry ON latest (created_at + ttl) WHERE ttl > 0 AND deleted = 0;
    -- `kvform serve` API tokens: the sha-256 of each token, never the token (SPEC §9).
    CREATE TABLE api_tokens (
        name        TEXT    PRIMARY KEY,
        hash        TEXT    NOT NULL UNIQUE,
        role        TEXT    NOT NULL,
        namespaces  TEXT    NOT NULL,
        reveal      INTEGER NOT NULL CHECK (reveal IN (0, 1)),
        created_at  INTEGER NOT NULL,
        expires_at  INTEGER,
        revoked_at  INTEGER
    );
    ",
    ),
    // 5 -> 6: the last apply's template render, secrets masked (`super::render`), so
    // `plan --render` on another machine diffs against it.
    Migration::Sql(RENDER_FILES),
];

/// `render_files`: one row per rendered file of an allocation. `IF NOT EXISTS`: a state
/// taken back to an older version by hand keeps the table.
const RENDER_FILES: &str = "
    CREATE TABLE IF NOT EXISTS render_files (
        host    TEXT    NOT NULL,
        job     TEXT    NOT NULL,
        file    TEXT    NOT NULL,
        text    TEXT    NOT NULL,
        serial  INTEGER NOT NULL,
        PRIMARY KEY (host, job, file)
    );
";

/// 5 -> 6 on PostgreSQL (`super::pg`): the `render_files` of [`PG_SCHEMA`].
pub(crate) const PG_RENDER_FILES: &str = r#"
    CREATE TABLE IF NOT EXISTS render_files (
        host    TEXT COLLATE "C" NOT NULL,
        job     TEXT COLLATE "C" NOT NULL,
        file    TEXT COLLATE "C" NOT NULL,
        text    TEXT COLLATE "C" NOT NULL,
        serial  BIGINT NOT NULL,
        PRIMARY KEY (host, job, file)
    );
"#;

/// Settings every connection uses: WAL (readers never block the writer), `synchronous=FULL`
/// (a committed change set survives power loss), foreign keys on, and a busy timeout so a
/// reader that races WAL recovery after a crash waits instead of failing.
pub fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

pub fn user_version(conn: &Connection) -> rusqlite::Result<u32> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

/// Run every migration above `from`, in one transaction. Returns the new version.
pub fn migrate(conn: &mut Connection, from: u32) -> rusqlite::Result<u32> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    for (i, step) in MIGRATIONS.iter().enumerate().skip(from as usize) {
        match step {
            Migration::Sql(sql) => tx.execute_batch(sql)?,
            Migration::Code(f) => f(&tx)?,
        }
        tx.pragma_update(None, "user_version", (i + 1) as u32)?;
    }
    tx.commit()?;
    Ok(SCHEMA_VERSION)
}

/// Schema [`SCHEMA_VERSION`] on PostgreSQL, created as one step in a bucket's own schema
/// (`super::postgres`): the same tables and columns as SQLite's after every migration above, so
/// each state query runs unchanged on both. Differences, all of representation:
/// - integers are BIGINT (SQLite's INTEGER is 64-bit), blobs BYTEA, `applies.id` an
///   identity column (SQLite's AUTOINCREMENT);
/// - every text column compares bytewise (`COLLATE "C"`), as SQLite's do: the secret-row
///   ranges (`namespace < 'secrets0'`) and every `ORDER BY namespace, key` depend on it, and
///   a database's default collation is usually a locale's;
/// - `schema_info` holds the version (SQLite's `user_version`) so later migrations can run;
/// - `live_lock` is the record of the lock being held (SQLite keeps it in `<state>.lock`;
///   see `super::lock`).
///
/// Older schemas exist only in SQLite files; a PostgreSQL state starts at this version.
pub(crate) const PG_SCHEMA: &str = r#"
    CREATE TABLE schema_info (
        id          BIGINT PRIMARY KEY CHECK (id = 1),
        version     BIGINT NOT NULL
    );
    CREATE TABLE meta (
        id          BIGINT PRIMARY KEY CHECK (id = 1),
        bucket_id   TEXT COLLATE "C" NOT NULL,
        lineage     TEXT COLLATE "C" NOT NULL,
        serial      BIGINT NOT NULL CHECK (serial >= 0),
        created_at  BIGINT NOT NULL
    );
    CREATE TABLE latest (
        namespace      TEXT COLLATE "C" NOT NULL,
        key            TEXT COLLATE "C" NOT NULL,
        version        BIGINT NOT NULL CHECK (version >= 1),
        deleted        BIGINT NOT NULL CHECK (deleted IN (0, 1)),
        ttl            BIGINT NOT NULL CHECK (ttl >= 0),
        created_at     BIGINT NOT NULL,
        serial         BIGINT NOT NULL,
        writer         TEXT COLLATE "C" NOT NULL,
        type           TEXT COLLATE "C" NOT NULL DEFAULT 'string',
        description    TEXT COLLATE "C" NOT NULL DEFAULT '',
        key_created_at BIGINT NOT NULL DEFAULT 0,
        value          TEXT COLLATE "C" NOT NULL,
        UNIQUE (namespace, key)
    );
    CREATE TABLE history (
        namespace      TEXT COLLATE "C" NOT NULL,
        key            TEXT COLLATE "C" NOT NULL,
        version        BIGINT NOT NULL CHECK (version >= 1),
        deleted        BIGINT NOT NULL CHECK (deleted IN (0, 1)),
        ttl            BIGINT NOT NULL CHECK (ttl >= 0),
        created_at     BIGINT NOT NULL,
        serial         BIGINT NOT NULL,
        writer         TEXT COLLATE "C" NOT NULL,
        type           TEXT COLLATE "C" NOT NULL DEFAULT 'string',
        description    TEXT COLLATE "C" NOT NULL DEFAULT '',
        key_created_at BIGINT NOT NULL DEFAULT 0,
        value          TEXT COLLATE "C" NOT NULL,
        UNIQUE (namespace, key, version),
        FOREIGN KEY (namespace, key) REFERENCES latest (namespace, key) ON DELETE CASCADE
    );
    CREATE TABLE applies (
        id           BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        serial       BIGINT NOT NULL,
        operation    TEXT COLLATE "C" NOT NULL,
        actor        TEXT COLLATE "C" NOT NULL,
        tool_version TEXT COLLATE "C" NOT NULL,
        started_at   BIGINT NOT NULL,
        finished_at  BIGINT NOT NULL,
        duration_ms  BIGINT NOT NULL,
        added        BIGINT NOT NULL,
        changed      BIGINT NOT NULL,
        destroyed    BIGINT NOT NULL,
        removed      BIGINT NOT NULL,
        resealed     BIGINT NOT NULL,
        status       TEXT COLLATE "C" NOT NULL
    );
    CREATE TABLE lock (
        id          BIGINT PRIMARY KEY CHECK (id = 1),
        lock_id     TEXT COLLATE "C" NOT NULL,
        actor       TEXT COLLATE "C" NOT NULL,
        pid         BIGINT NOT NULL,
        operation   TEXT COLLATE "C" NOT NULL,
        since       BIGINT NOT NULL
    );
    CREATE TABLE live_lock (
        id          BIGINT PRIMARY KEY CHECK (id = 1),
        lock_id     TEXT COLLATE "C" NOT NULL,
        actor       TEXT COLLATE "C" NOT NULL,
        pid         BIGINT NOT NULL,
        operation   TEXT COLLATE "C" NOT NULL,
        since       BIGINT NOT NULL
    );
    CREATE TABLE fingerprints (
        namespace   TEXT COLLATE "C" PRIMARY KEY,
        digest      BYTEA NOT NULL
    );
    CREATE TABLE plan_base (
        id               BIGINT PRIMARY KEY CHECK (id = 1),
        serial           BIGINT NOT NULL,
        tool_version     TEXT COLLATE "C" NOT NULL,
        workspace_digest TEXT COLLATE "C",
        verified         BIGINT NOT NULL CHECK (verified IN (0, 1))
    );
    CREATE INDEX latest_serial ON latest (serial);
    CREATE INDEX latest_expiry ON latest ((created_at + ttl)) WHERE ttl > 0 AND deleted = 0;
    CREATE TABLE purged_jobs (
        job     TEXT COLLATE "C" NOT NULL PRIMARY KEY,
        serial  BIGINT NOT NULL
    );
    CREATE TABLE api_tokens (
        name        TEXT COLLATE "C" PRIMARY KEY,
        hash        TEXT COLLATE "C" NOT NULL UNIQUE,
        role        TEXT COLLATE "C" NOT NULL,
        namespaces  TEXT COLLATE "C" NOT NULL,
        reveal      BIGINT NOT NULL CHECK (reveal IN (0, 1)),
        created_at  BIGINT NOT NULL,
        expires_at  BIGINT,
        revoked_at  BIGINT
    );
    CREATE TABLE render_files (
        host    TEXT COLLATE "C" NOT NULL,
        job     TEXT COLLATE "C" NOT NULL,
        file    TEXT COLLATE "C" NOT NULL,
        text    TEXT COLLATE "C" NOT NULL,
        serial  BIGINT NOT NULL,
        PRIMARY KEY (host, job, file)
    );
"#;

/// PostgreSQL: a `NOTIFY kvform_state, '<bucket schema>'` when a change set commits (the
/// serial moves), so `kvform serve` wakes its watches on writes of other processes
/// (`kv set`, `apply`, another server) without polling. Installed by `kvform serve` when the
/// bucket has none yet (it is the one listener); `CREATE OR REPLACE` makes it idempotent.
/// A notification is delivered at commit, never for a rolled-back write.
pub(crate) const PG_NOTIFY_TRIGGER: &str = r#"
    CREATE OR REPLACE FUNCTION kvform_notify_write() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_notify('kvform_state', TG_TABLE_SCHEMA);
        RETURN NULL;
    END $$;
    CREATE OR REPLACE TRIGGER kvform_notify_write AFTER UPDATE OF serial ON meta
        FOR EACH ROW WHEN (NEW.serial IS DISTINCT FROM OLD.serial) EXECUTE FUNCTION kvform_notify_write();
"#;

/// The channel of [`PG_NOTIFY_TRIGGER`]; the payload is the bucket's schema.
pub const PG_NOTIFY_CHANNEL: &str = "kvform_state";
