//! The two scans behind a plan on a large state (see `crate::kv::current`), in one read
//! transaction so both see the same state ([`read_for_plan`]):
//!
//! 1. [`read_lean_snapshot`]: every latest row without its value (except `maand/bucket`,
//!    whose port numbers the model needs before it can build the desired state).
//! 2. [`compare_values`]: every live value that is not encrypted (`secrets/*`, certificates'
//!    private keys), compared in place (borrowed
//!    from SQLite, never copied) with the desired value of its key; only values that differ,
//!    or whose key is not desired, are copied into the snapshot.

use super::backend::{Db, vals};
use super::fingerprint::{self, Base, Digest, PlanBasis, PlanRead, UnitBasis};
use super::{StateError, read_meta, sql};
use crate::kv::inputs::{InputDigest, Units, unit_of};
use crate::kv::{KvMap, KvTypes, LeanEntry, LeanSnapshot, LeanValue, is_secret_namespace};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// How a plan reads the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadMode {
    /// Read only what may have changed since the last apply (`super::fingerprint`); falls
    /// back to [`ReadMode::Full`] when the state has no usable fingerprints.
    Incremental,
    /// Read and compare everything (`plan --refresh`).
    Full,
}

/// More suspect namespaces than this share of the recorded ones are read with the two full
/// scans instead of one query each (same result, fewer round trips).
const SCAN_SHARE: usize = 4;

pub use crate::kv::inputs::Skip;

/// Project every unit.
fn project_all(_: &str, _: &InputDigest) -> bool {
    false
}

/// [`read_for_plan`] that reads only the namespaces that may have changed (see
/// `super::fingerprint`): `desire` gets a view whose live namespaces come from the recorded
/// fingerprints (rows read for `maand/bucket` and the dirty namespaces only), and which
/// units it may leave unprojected; `view` gives the desired keys and what was done with each
/// unit; `purged` names the namespaces the plan purges. Returns a partial snapshot
/// (`covered`) and the basis the apply records. The plan made from it equals the full plan
/// (tests/plan_props.rs).
///
/// The desired state is `None` when nothing can have changed: the workspace digest is the
/// one the last apply planned from, that apply verified every namespace, and nothing was
/// written or expired since — the plan is empty without projecting anything (the model is
/// a fixed point: applying a plan and planning again gives no changes).
pub(crate) fn read_for_plan_with<D, E: From<StateError>>(
    conn: &Db,
    path: &Path,
    own_txn: bool,
    how: PlanRead<'_>,
    desire: impl Fn(&LeanSnapshot, Skip<'_>) -> Result<D, E>,
    view: impl Fn(&D) -> (&KvMap, &KvTypes, &Units),
    purged: impl Fn(&D, &LeanSnapshot) -> BTreeSet<String>,
) -> Result<(LeanSnapshot, Option<D>, PlanBasis), E> {
    let (mode, now) = (how.mode, how.now);
    if own_txn {
        conn.begin_read().map_err(sql(path, "begin reading"))?;
    }
    let out = (|| {
        let base = match mode {
            ReadMode::Incremental => fingerprint::read_base(conn, path)?,
            ReadMode::Full => None,
        };
        match base {
            Some(base) => {
                let dirty = fingerprint::dirty(conn, path, base.serial, now)?;
                if unchanged(&base, how.workspace_digest, &dirty) {
                    let meta = read_meta(conn, path)?;
                    let snap = LeanSnapshot {
                        bucket_id: meta.bucket_id,
                        lineage: meta.lineage,
                        serial: meta.serial,
                        purged_jobs: super::read_purged_jobs(conn, path)?,
                        covered: Some(BTreeSet::new()),
                        ..Default::default()
                    };
                    return Ok((snap, None, PlanBasis::default()));
                }
                let (mut snap, desired, basis) = incremental(conn, path, dirty, desire, &view, purged)?;
                snap.types = super::listing::read_var_types(conn, path)?;
                Ok((snap, Some(desired), basis))
            }
            None => {
                let mut snap = read_lean_snapshot(conn, path)?;
                let desired = desire(&snap, &project_all)?;
                let (want, types, units) = view(&desired);
                compare_values(conn, path, &mut snap, want)?;
                snap.types = super::listing::read_var_types(conn, path)?;
                let all = want.keys().chain(snap.entries.keys()).cloned().collect::<BTreeSet<_>>();
                let read = fingerprint::digests_of(want, types, all);
                let units = Some(UnitBasis::of(units));
                Ok((snap, Some(desired), PlanBasis { full: true, read, units }))
            }
        }
    })();
    if own_txn {
        let ended = conn.batch("COMMIT").map_err(sql(path, "end reading"));
        if out.is_ok() {
            ended?;
        }
    }
    out
}

/// Nothing can have changed since the last apply (see [`read_for_plan_with`]).
fn unchanged(base: &Base, workspace_digest: Option<&str>, dirty: &BTreeSet<String>) -> bool {
    base.verified
        && dirty.is_empty()
        && workspace_digest.is_some()
        && base.workspace_digest.as_deref() == workspace_digest
}

fn incremental<D, E: From<StateError>>(
    conn: &Db,
    path: &Path,
    dirty: BTreeSet<String>,
    desire: impl Fn(&LeanSnapshot, Skip<'_>) -> Result<D, E>,
    view: &impl Fn(&D) -> (&KvMap, &KvTypes, &Units),
    purged: impl Fn(&D, &LeanSnapshot) -> BTreeSet<String>,
) -> Result<(LeanSnapshot, D, PlanBasis), E> {
    let meta = read_meta(conn, path)?;
    let fingerprint::Table { namespaces: table, units: recorded } = fingerprint::read_table(conn, path)?;
    // What the model needs: which namespaces are live, and maand/bucket's values.
    let mut pre = LeanSnapshot {
        bucket_id: meta.bucket_id,
        lineage: meta.lineage,
        serial: meta.serial,
        purged_jobs: super::read_purged_jobs(conn, path)?,
        ..Default::default()
    };
    let bucket = crate::kv::NamespaceKind::Bucket.path();
    let bucket_rows = read_namespace(conn, path, &bucket, None)?;
    for ns in table.keys().chain(dirty.iter()) {
        if *ns == bucket || pre.unread_live.contains(ns) {
            continue;
        }
        if !dirty.contains(ns) || super::fingerprint_rows::is_live(conn, path, ns)? {
            pre.unread_live.insert(ns.clone());
        }
    }
    if !bucket_rows.is_empty() {
        pre.entries.insert(bucket.clone(), bucket_rows);
    }
    // A unit is skipped when its inputs are the recorded ones and nothing wrote into it.
    let dirty_units: BTreeSet<String> = dirty.iter().filter_map(|ns| unit_of(ns)).collect();
    let skip = |unit: &str, d: &InputDigest| !dirty_units.contains(unit) && recorded.get(unit) == Some(d);
    let mut desired = desire(&pre, &skip)?;
    let mut purges = purged(&desired, &pre);
    if purges.iter().any(|ns| !view(&desired).2.projects(ns)) {
        // What a unit purges follows from its inputs, so this is not expected; if it
        // happens, the plan projects everything rather than trust a skipped unit.
        desired = desire(&pre, &project_all)?;
        purges = purged(&desired, &pre);
    }
    let (want, types, units) = view(&desired);

    // Suspect: written or expired since, purged, or desired keys that differ from the record.
    // Namespaces of skipped units are none of these: not dirty, not purged, and their
    // desired keys are the recorded ones.
    let mut suspect = dirty;
    suspect.extend(purges);
    let empty = fingerprint::digest(None, None);
    let mut digests: BTreeMap<String, Digest> = BTreeMap::new();
    for (ns, keys) in want {
        let d = fingerprint::digest(Some(keys), types.get(ns));
        if table.get(ns) != Some(&d) {
            suspect.insert(ns.clone());
        }
        digests.insert(ns.clone(), d);
    }
    for (ns, d) in &table {
        if !want.contains_key(ns) && *d != empty && units.projects(ns) {
            suspect.insert(ns.clone());
        }
    }
    // Checked, not assumed: a covered namespace without its desired keys would be tombstoned.
    assert!(suspect.iter().all(|ns| units.projects(ns)), "a suspect namespace in a skipped unit");

    let mut snap = pre;
    snap.unread_live.retain(|ns| !suspect.contains(ns));
    if !suspect.contains(&bucket) {
        let live = snap.entries.remove(&bucket).is_some_and(|m| m.values().any(|e| !e.deleted));
        if live {
            snap.unread_live.insert(bucket.clone());
        }
    }
    if suspect.len() > table.len() / SCAN_SHARE + 64 {
        // Most of the state is suspect (a large change): two scans beat a query each.
        let mut full = read_lean_snapshot(conn, path)?;
        compare_values(conn, path, &mut full, want)?;
        full.entries.retain(|ns, _| suspect.contains(ns));
        snap.entries = full.entries;
    } else {
        let mut rows = read_namespaces(conn, path, &suspect, want)?;
        for ns in &suspect {
            match rows.remove(ns) {
                Some(rows) if !rows.is_empty() => snap.entries.insert(ns.clone(), rows),
                _ => snap.entries.remove(ns),
            };
        }
    }
    let read = suspect.iter().map(|ns| (ns.clone(), digests.get(ns).copied().unwrap_or(empty))).collect();
    snap.covered = Some(suspect);
    let units = Some(UnitBasis::of(units));
    Ok((snap, desired, PlanBasis { full: false, read, units }))
}

/// Every latest row of one namespace; live values compared with `want` when given (else
/// kept, as the lean snapshot keeps `maand/bucket`'s), never read in `secrets/*`.
fn read_namespace(
    conn: &Db,
    path: &Path,
    ns: &str,
    want: Option<&KvMap>,
) -> Result<BTreeMap<String, LeanEntry>, StateError> {
    let secret = is_secret_namespace(ns);
    let no_values = BTreeMap::new();
    let want_ns = want.and_then(|w| w.get(ns)).unwrap_or(&no_values);
    let mut out = BTreeMap::new();
    conn.query("SELECT key, deleted, ttl, created_at, value FROM latest WHERE namespace = ?1", vals![ns], |r| {
        let (key, entry) = lean_row(r, 0, secret, want.map(|_| want_ns))?;
        out.insert(key, entry);
        Ok(())
    })
    .map_err(sql(path, "read namespace"))?;
    Ok(out)
}

/// `key, deleted, ttl, created_at, value` from column `at` on, as [`read_namespace`] keeps
/// it (`want`: the namespace's desired keys to compare with).
fn lean_row(
    r: &super::backend::Row<'_, '_>,
    at: usize,
    secret: bool,
    want: Option<&BTreeMap<String, crate::kv::Value>>,
) -> Result<(String, LeanEntry), super::backend::DbError> {
    let key = r.text(at)?;
    let deleted = r.bool(at + 1)?;
    let value = if deleted || secret {
        LeanValue::NotRead
    } else {
        let v = r.str(at + 4)?;
        match want.and_then(|w| w.get(&key)) {
            Some(w) if w.eq_trimmed(v) => LeanValue::SameAsDesired,
            _ => LeanValue::Stored(v.trim().to_string()),
        }
    };
    Ok((key, LeanEntry { deleted, ttl: r.u64(at + 2)?, created_at: r.i64(at + 3)?, value }))
}

/// [`read_namespace`] of each of `namespaces` (compared with `want`): one statement per
/// few thousand namespaces on PostgreSQL, where a query per namespace is a round trip.
fn read_namespaces(
    conn: &Db,
    path: &Path,
    namespaces: &BTreeSet<String>,
    want: &KvMap,
) -> Result<BTreeMap<String, BTreeMap<String, LeanEntry>>, StateError> {
    let mut out = BTreeMap::new();
    if !conn.is_remote() {
        for ns in namespaces {
            out.insert(ns.clone(), read_namespace(conn, path, ns, Some(want))?);
        }
        return Ok(out);
    }
    let names: Vec<&str> = namespaces.iter().map(String::as_str).collect();
    let no_values = BTreeMap::new();
    for chunk in names.chunks(super::bulk::CHUNK) {
        conn.query(
            "SELECT l.namespace, l.key, l.deleted, l.ttl, l.created_at, l.value
               FROM latest l JOIN unnest(?1::text[]) AS u(n) ON l.namespace = u.n COLLATE \"C\"",
            vals![super::backend::Val::TA(chunk)],
            |r| {
                let ns = r.str(0)?;
                let want_ns = want.get(ns).unwrap_or(&no_values);
                let (key, entry) = lean_row(r, 1, is_secret_namespace(ns), Some(want_ns))?;
                out.entry(ns.to_string()).or_insert_with(BTreeMap::new).insert(key, entry);
                Ok(())
            },
        )
        .map_err(sql(path, "read namespaces"))?;
    }
    Ok(out)
}

/// Scan the rows (1), build the desired state from them (`desire`), compare the values (2):
/// returns the lean snapshot and the desired state. `own_txn`: wrap the scans in a read
/// transaction (false when the connection is already inside one, as a `WriteTxn` is).
pub(crate) fn read_for_plan<D, E: From<StateError>>(
    conn: &Db,
    path: &Path,
    own_txn: bool,
    desire: impl FnOnce(&LeanSnapshot) -> Result<D, E>,
    kv: impl FnOnce(&D) -> &KvMap,
) -> Result<(LeanSnapshot, D), E> {
    if own_txn {
        conn.begin_read().map_err(sql(path, "begin reading"))?;
    }
    let out = (|| {
        let mut snap = read_lean_snapshot(conn, path)?;
        let desired = desire(&snap)?;
        compare_values(conn, path, &mut snap, kv(&desired))?;
        snap.types = super::listing::read_var_types(conn, path)?;
        Ok((snap, desired))
    })();
    if own_txn {
        // Nothing was written: ending the read transaction either way is the same.
        let ended = conn.batch("COMMIT").map_err(sql(path, "end reading"));
        if out.is_ok() {
            ended?;
        }
    }
    out
}

pub(crate) fn read_lean_snapshot(conn: &Db, path: &Path) -> Result<LeanSnapshot, StateError> {
    let meta = read_meta(conn, path)?;
    let mut entries: BTreeMap<String, BTreeMap<String, LeanEntry>> = BTreeMap::new();
    // Rows arrive sorted by (namespace, key): fill one namespace's map at a time.
    let mut current: Option<(String, BTreeMap<String, LeanEntry>)> = None;
    conn.query(
        "SELECT namespace, key, deleted, ttl, created_at,
                CASE WHEN namespace = 'maand/bucket' AND deleted = 0 THEN value END
           FROM latest ORDER BY namespace, key",
        &[],
        |r| {
            let ns = r.str(0)?;
            if current.as_ref().is_none_or(|(cur, _)| cur != ns)
                && let Some((done, map)) = current.replace((ns.to_string(), BTreeMap::new()))
            {
                entries.insert(done, map);
            }
            let key = r.text(1)?;
            let value = match r.opt_text(5)? {
                Some(v) => LeanValue::Stored(v.trim().to_string()),
                None => LeanValue::NotRead,
            };
            let entry = LeanEntry { deleted: r.bool(2)?, ttl: r.u64(3)?, created_at: r.i64(4)?, value };
            if let Some((_, map)) = current.as_mut() {
                map.insert(key, entry);
            }
            Ok(())
        },
    )
    .map_err(sql(path, "read snapshot"))?;
    if let Some((done, map)) = current {
        entries.insert(done, map);
    }
    let purged_jobs = super::read_purged_jobs(conn, path)?;
    Ok(LeanSnapshot {
        bucket_id: meta.bucket_id,
        lineage: meta.lineage,
        serial: meta.serial,
        entries,
        purged_jobs,
        ..Default::default()
    })
}

fn compare_values(conn: &Db, path: &Path, snap: &mut LeanSnapshot, desired: &KvMap) -> Result<(), StateError> {
    let no_values = BTreeMap::new();
    // The maps of the namespace the rows are in (rows arrive sorted by namespace).
    let mut ns_now = String::new();
    let mut want = &no_values;
    conn.query(
        &format!(
            "SELECT namespace, key, value FROM latest WHERE deleted = 0 AND NOT {} ORDER BY namespace, key",
            conn.secret_rows()
        ),
        &[],
        |r| {
            let ns = r.str(0)?;
            if ns != ns_now {
                ns_now.clear();
                ns_now.push_str(ns);
                want = desired.get(ns).unwrap_or(&no_values);
            }
            let key = r.str(1)?;
            let value = r.str(2)?;
            // Both scans run in one transaction, so every row here was in the first scan.
            // (Looked up per row: a closure called per row cannot keep a `&mut` into `snap`.)
            let Some(entry) = snap.entries.get_mut(ns_now.as_str()).and_then(|m| m.get_mut(key)) else {
                return Ok(());
            };
            entry.value = match want.get(key) {
                Some(w) if w.eq_trimmed(value) => LeanValue::SameAsDesired,
                _ => LeanValue::Stored(value.trim().to_string()),
            };
            Ok(())
        },
    )
    .map_err(sql(path, "compare values"))
}
