//! `kvform state restore FILE` onto a PostgreSQL bucket: the checks and the audit record of
//! the SQLite restore (`crate::state::backup`), with the rows copied in through the backend
//! seam (`crate::state::copy`) and the replaced state kept as an SQLite backup.

use super::PgLocation;
use crate::state::backend::{Db, vals};
use crate::state::backup::{RESTORE_RECORD, RestoreOutcome, unused_name, verify};
use crate::state::check::check_connection;
use crate::state::sqlite::Lite;
use crate::state::{StateError, copy, private_dir, read_meta, sql};
use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::time::Duration;

/// [`crate::state::backup::restore`] onto a PostgreSQL bucket (`loc`): the same checks and the same record, with
/// the rows copied in through the backend seam (`super::copy`). The bucket must exist and be
/// the backup's bucket (its id names the schema the rows live in); another lineage of it
/// needs `force`. The state it replaces is first saved as an SQLite backup in `aside_dir`
/// (`postgres-<bucket>.before-restore.<serial>`). The write lock is held throughout, so no
/// apply interleaves; readers see the old state until the copy commits.
pub fn restore(
    loc: &PgLocation,
    src: &Path,
    aside_dir: &Path,
    lock_timeout: Duration,
    now: i64,
    force: bool,
) -> Result<RestoreOutcome, StateError> {
    let restored = verify(src)?;
    let store = loc.open()?;
    let current = store.meta()?;
    if restored.bucket_id != current.bucket_id {
        return Err(StateError::Config(format!(
            "the backup {} is of bucket {}; this PostgreSQL bucket is {}\n  help: restore a backup of this bucket, or restore it into an SQLite state (`state {{ backend = \"sqlite\" }}`) and `kvform state migrate --to postgres` from there",
            src.display(),
            restored.bucket_id,
            current.bucket_id
        )));
    }
    if !force && current.lineage != restored.lineage {
        return Err(StateError::ForeignLineage {
            backup: src.to_path_buf(),
            found: restored.lineage,
            want: current.lineage,
        });
    }
    let txn = store.begin_write("state restore", lock_timeout, now)?;
    private_dir(aside_dir)?;
    let aside = unused_name(
        &aside_dir.join(format!("postgres-{}", current.bucket_id)),
        &format!(".before-restore.{}", current.serial),
    );
    // A connection of its own: the transaction's is inside its write transaction.
    let target = loc.open()?;
    copy::to_sqlite_file(&target, &aside)?;
    let backup = Db::new(Lite(
        Connection::open_with_flags(src, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
            .map_err(sql(src, "open backup"))?,
    ));
    // As on SQLite: the serial moves past both states, and the audit trail says why; in the
    // copy's own transaction, so the restored rows never show with the backup's serial.
    let serial = current.serial.max(restored.serial) + 1;
    let (c, p) = (target.conn(), target.path());
    copy::copy(&backup, src, c, p, |c| {
        c.execute("UPDATE meta SET serial = ?1 WHERE id = 1", vals![serial as i64]).map_err(sql(p, "bump serial"))?;
        let actor = crate::state::actor();
        c.execute(RESTORE_RECORD, vals![serial as i64, actor.as_str(), env!("CARGO_PKG_VERSION"), now])
            .map_err(sql(p, "write audit record"))?;
        Ok(())
    })?;
    let after = check_connection(c, p)?;
    if !after.ok() {
        return Err(StateError::Corrupt { path: p.into(), problems: after.problems });
    }
    let restored_meta = read_meta(c, p)?;
    // Released only now: the copy and the serial bump are one change for other writers.
    txn.rollback()?;
    Ok(RestoreOutcome { restored: restored_meta, previous: Some(current), kept_as: Some(aside) })
}
