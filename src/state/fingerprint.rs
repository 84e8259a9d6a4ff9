//! Change-proportional planning (SPEC §11): what the state remembers of the last apply so
//! that the next plan reads and compares only the namespaces that may have changed.
//!
//! Each apply stores, per live namespace, a fingerprint ([`Digest`]) of the desired keys
//! and values it was verified or written with (table `fingerprints`), and the serial that
//! record is valid at (`plan_base`, with the kvform version that computed it: another
//! version may project differently, so its fingerprints are not trusted). A plan then
//! treats a namespace as **unchanged** — not read, not compared — when its fingerprint
//! equals the fingerprint of its desired keys now, no key of it was written after that
//! serial (index `latest_serial`), no key of it has expired (index `latest_expiry`), and
//! the plan does not purge it. Every other namespace is read and compared in full, exactly
//! as a full plan would (`plan --refresh` reads them all).
//!
//! The fingerprint is of the namespace's *projected* desired keys, so it changes whenever
//! any workspace piece the namespace is projected from changes (a worker's entry, a job's
//! manifest/vars/bucket.jobs block, placement, ports, bucket settings), with no dependency
//! list to keep in step with the projection.
//!
//! Why the invariant holds — a row says "at serial S this namespace held exactly these
//! desired keys (synced: and nothing else live; all ttl 0)":
//! - the apply writes a namespace's row when the plan's writer writes the namespace (inside
//!   the job's savepoint, so a rolled-back job keeps the row it had before), and at commit
//!   for namespaces it read and found unchanged; rows of namespaces it is about to change
//!   are first set to [`UNVERIFIED`], outside any savepoint;
//! - any other writer in the apply's transaction (hooks) sets the namespace's row to
//!   [`UNVERIFIED`];
//! - at commit every row written on the way is dropped if its namespace is not live: the
//!   rows are also the list of live namespaces the next plan's model starts from;
//! - writes outside applies (`kv set`, `post_build` hooks) land at a serial > S and make the
//!   namespace dirty; gc only removes tombstones and old versions, never live content.
//!
//! **Inputs.** Comparing fingerprints of projected keys still needs every namespace
//! projected. So the same table also records, per projection unit (a job or a worker,
//! `crate::kv::inputs`), the digest of the inputs the unit was projected from, under the
//! row name `input:<unit>` (no namespace of the layout starts with `input:`; reusing the
//! table keeps the schema as it is). A plan skips a unit — does not project, read or compare
//! any of its namespaces — when its input digest equals the recorded one and none of its
//! namespaces is dirty; it is then in the state exactly as that apply left it. The row
//! says "the unit's namespaces hold what these inputs project to":
//! - it is written at commit for every unit the plan projected, unless one of the unit's
//!   namespaces ends the apply unverified (a hook wrote it, the job's checkpoint rolled
//!   back, or a targeted apply wrote it without verifying), in which case it is dropped;
//! - it is dropped for any unit a foreign writer touched, and for units no longer in the
//!   workspace;
//! - a purge the plan finds inside a skipped unit (not expected: what a unit purges follows
//!   from its inputs) makes the plan project everything instead.

use super::backend::{Db, vals};
use super::fingerprint_rows as rows;
use super::{StateError, sql};
use crate::kv::inputs::{InputDigest, Units, unit_of};
use crate::kv::{KvMap, KvType, KvTypes, Value};
use sha2::{Digest as _, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

/// The fingerprint of one namespace's desired keys: 16 bytes of sha256.
pub use super::fingerprint_rows::Digest;

/// The row of a live namespace whose content no plan has verified (a hook wrote it during
/// the apply, or the apply was about to change it): it matches no digest, so the next plan
/// reads the namespace, and its presence keeps the namespace known as live.
pub const UNVERIFIED: Digest = [0xff; 16];

/// The fingerprint of a namespace's desired keys (trimmed values, as plans compare them,
/// and the type of each key that is not a `string`: a type is part of the desired key).
pub fn digest(keys: Option<&BTreeMap<String, Value>>, types: Option<&BTreeMap<String, KvType>>) -> Digest {
    let mut h = Sha256::new();
    for (k, v) in keys.into_iter().flatten() {
        h.update(k.as_bytes());
        h.update([0u8]);
        for part in v.trimmed_parts() {
            h.update(part.as_bytes());
        }
        // String keys hash as before typed values existed, so those namespaces keep their
        // recorded fingerprints; a typed key never hashes like an untyped one (NUL, SOH).
        if let Some(t) = types.and_then(|t| t.get(k)).filter(|t| !t.is_string()) {
            h.update([1u8]);
            h.update(t.as_str().as_bytes());
        }
        h.update([0u8]);
    }
    let full = h.finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&full[..16]);
    out
}

/// How a plan reads the state (`StateStore::read_for_plan_with`).
#[derive(Debug, Clone, Copy)]
pub struct PlanRead<'a> {
    pub mode: super::ReadMode,
    /// Unix seconds: decides TTL expiry.
    pub now: i64,
    /// `plan::workspace_digest` of the workspace being planned, taken before it was loaded.
    pub workspace_digest: Option<&'a str>,
}

/// The record of the last apply's plan (`plan_base`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Base {
    pub serial: u64,
    pub workspace_digest: Option<String>,
    /// No namespace was left unverified.
    pub verified: bool,
}

/// What a plan learned about the namespaces it read, for the apply to record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanBasis {
    /// Every namespace was read (no usable fingerprints, or `--refresh`): the apply rewrites
    /// the whole table.
    pub full: bool,
    /// The namespaces the plan read and compared, with the fingerprint of their desired
    /// keys now (of no keys when not desired).
    pub read: BTreeMap<String, Digest>,
    /// The projection units of the plan's workspace (`None`: record nothing about units,
    /// e.g. a targeted apply).
    pub units: Option<UnitBasis>,
}

/// The units a plan projected, for the apply to record (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnitBasis {
    /// Projected units with the digest of their inputs.
    pub projected: BTreeMap<String, InputDigest>,
    /// Every unit of the workspace (rows of other units are dropped).
    pub known: BTreeSet<String>,
}

impl UnitBasis {
    pub fn of(units: &Units) -> UnitBasis {
        UnitBasis {
            projected: units.projected.iter().filter_map(|u| Some((u.clone(), (*units.inputs.get(u)?)?))).collect(),
            known: units.inputs.keys().cloned().collect(),
        }
    }
}

/// The row name of a unit's input digest.
const INPUT_PREFIX: &str = "input:";

fn input_row(unit: &str) -> String {
    format!("{INPUT_PREFIX}{unit}")
}

/// The apply's pending fingerprint writes (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct Staged {
    /// The plan's writer (`apply`); any other writer invalidates a namespace's row.
    pub writer: String,
    /// Namespaces with changes: their row is written when the plan's writer writes them.
    pub on_write: HashMap<String, Digest>,
    /// `on_write` as staged, kept as it was: a hook's write moves a namespace out of
    /// `on_write`, and a rollback of its job does not move it back.
    pub planned: HashMap<String, Digest>,
    /// Namespaces read and found unchanged: their row is written at commit.
    pub on_commit: HashMap<String, Digest>,
    /// Namespaces another writer wrote, or the plan's writer wrote without the plan having
    /// read them (a targeted apply): [`UNVERIFIED`] while live.
    pub foreign: BTreeSet<String>,
    /// What to record about units (`PlanBasis::units`).
    pub units: Option<UnitBasis>,
    /// The workspace the plan was made from.
    pub workspace_digest: Option<String>,
}

/// Fingerprints valid at this serial, if the kvform version that wrote them is this one.
pub(crate) fn read_base(conn: &Db, path: &Path) -> Result<Option<Base>, StateError> {
    let row = conn
        .query_opt("SELECT serial, tool_version, workspace_digest, verified FROM plan_base WHERE id = 1", &[], |r| {
            Ok((r.i64(0)?, r.text(1)?, r.opt_text(2)?, r.bool(3)?))
        })
        .map_err(sql(path, "read plan base"))?;
    Ok(row.filter(|(_, v, _, _)| v == env!("CARGO_PKG_VERSION")).map(|(serial, _, workspace_digest, verified)| Base {
        serial: serial as u64,
        workspace_digest,
        verified,
    }))
}

/// Every recorded fingerprint: per namespace, and per unit (its input digest).
pub(crate) fn read_table(conn: &Db, path: &Path) -> Result<Table, StateError> {
    let mut out = Table::default();
    conn.query("SELECT namespace, digest FROM fingerprints", &[], |r| {
        let ns = r.text(0)?;
        let blob = r.bytes(1)?;
        let mut d = [0u8; 16];
        if blob.len() == 16 {
            d.copy_from_slice(blob);
        }
        match ns.strip_prefix(INPUT_PREFIX) {
            Some(unit) => out.units.insert(unit.to_string(), d),
            None => out.namespaces.insert(ns, d),
        };
        Ok(())
    })
    .map_err(sql(path, "read fingerprints"))?;
    Ok(out)
}

/// The recorded fingerprints ([`read_table`]).
#[derive(Debug, Default)]
pub(crate) struct Table {
    /// Live namespace -> fingerprint of its desired keys.
    pub namespaces: HashMap<String, Digest>,
    /// Unit -> digest of the inputs it was projected from.
    pub units: HashMap<String, InputDigest>,
}

/// Namespaces with a key written after `base` or a live key expired at `now` (both indexed).
pub(crate) fn dirty(conn: &Db, path: &Path, base: u64, now: i64) -> Result<BTreeSet<String>, StateError> {
    let mut out = BTreeSet::new();
    // No DISTINCT (the set dedupes): with it SQLite's planner walks the whole primary-key
    // index in namespace order instead of searching `latest_serial` / `latest_expiry` —
    // a full scan of the state on every plan (37% of a no-op plan at 100,000 allocations).
    for (query, arg) in [
        ("SELECT namespace FROM latest WHERE serial > ?1", base as i64),
        ("SELECT namespace FROM latest WHERE ttl > 0 AND deleted = 0 AND created_at + ttl <= ?1", now),
    ] {
        conn.query(query, vals![arg], |r| {
            out.insert(r.text(0)?);
            Ok(())
        })
        .map_err(sql(path, "find changed namespaces"))?;
    }
    Ok(out)
}

/// At commit: the rows of namespaces read unchanged, and a check that every row written
/// on the way names a namespace still live; then the base serial.
pub(crate) fn finish(conn: &Db, path: &Path, staged: Staged, serial: u64) -> Result<(), StateError> {
    // One liveness query and one write of each kind for all the namespaces (`super::bulk`).
    let touched: Vec<&str> = staged
        .on_commit
        .keys()
        .chain(staged.on_write.keys())
        .chain(staged.foreign.iter())
        .map(String::as_str)
        .collect();
    let live = rows::live_namespaces(conn, path, &touched)?;
    let mut put: Vec<(&str, &Digest)> = Vec::new();
    let mut drop: Vec<&str> = Vec::new();
    for (ns, d) in &staged.on_commit {
        if live.contains(ns) {
            put.push((ns, d));
        } else {
            drop.push(ns);
        }
    }
    // A row exists only for a live namespace: the model learns which namespaces are live
    // from these rows (an allocation's `is_new`, removed jobs and workers).
    drop.extend(
        staged.on_write.keys().chain(staged.foreign.iter()).map(String::as_str).filter(|ns| !live.contains(*ns)),
    );
    rows::put_fingerprints(conn, path, &put)?;
    rows::delete_fingerprints(conn, path, &drop)?;
    // Namespaces the plan changes that do not end as planned: their job rolled back or was
    // skipped. A live one keeps its UNVERIFIED mark; one that was not live before the apply
    // (a bucket's first apply, a new job) ends with no row at all, which no scan for
    // UNVERIFIED sees, so it is counted here.
    let written: Vec<&str> = staged.planned.keys().map(String::as_str).collect();
    let rows = rows::read_fingerprints(conn, path, &written)?;
    let empty = digest(None, None);
    let unmet: BTreeSet<&str> = staged
        .planned
        .iter()
        .filter(|(ns, d)| match rows.get(*ns) {
            Some(row) => row != *d,
            None => **d != empty,
        })
        .map(|(ns, _)| ns.as_str())
        .collect();
    if let Some(units) = &staged.units {
        finish_units(conn, path, &staged, units, &unmet)?;
    } else {
        let rows: Vec<String> = staged.foreign.iter().filter_map(|ns| unit_of(ns)).map(|u| input_row(&u)).collect();
        rows::delete_fingerprints(conn, path, &rows.iter().map(String::as_str).collect::<Vec<_>>())?;
    }
    let verified = unmet.is_empty()
        && !conn
            .query_one("SELECT EXISTS (SELECT 1 FROM fingerprints WHERE digest = ?1)", vals![&UNVERIFIED[..]], |r| {
                r.bool(0)
            })
            .map_err(sql(path, "check fingerprints"))?;
    conn.execute(
        "INSERT INTO plan_base (id, serial, tool_version, workspace_digest, verified) VALUES (1, ?1, ?2, ?3, ?4)
         ON CONFLICT (id) DO UPDATE SET serial = excluded.serial, tool_version = excluded.tool_version,
            workspace_digest = excluded.workspace_digest, verified = excluded.verified",
        vals![serial as i64, env!("CARGO_PKG_VERSION"), staged.workspace_digest.as_deref(), verified],
    )
    .map_err(sql(path, "write plan base"))?;
    Ok(())
}

/// The input rows at commit (see the module docs): a projected unit is recorded unless one
/// of its namespaces ends unverified; rows of units a foreign writer touched, or that are no
/// longer in the workspace, are dropped.
/// `unmet`: the planned namespaces that did not end as planned (see [`finish`]).
fn finish_units(
    conn: &Db,
    path: &Path,
    staged: &Staged,
    units: &UnitBasis,
    unmet: &BTreeSet<&str>,
) -> Result<(), StateError> {
    let mut broken: BTreeSet<String> = staged.foreign.iter().filter_map(|ns| unit_of(ns)).collect();
    broken.extend(unmet.iter().filter_map(|ns| unit_of(ns)));
    let names: BTreeMap<&str, String> =
        units.projected.keys().chain(broken.iter()).map(|u| (u.as_str(), input_row(u))).collect();
    let mut put: Vec<(&str, &Digest)> = Vec::new();
    let mut drop: Vec<&str> = Vec::new();
    for (unit, d) in &units.projected {
        if broken.contains(unit) {
            drop.push(&names[unit.as_str()]);
        } else {
            put.push((&names[unit.as_str()], d));
        }
    }
    drop.extend(broken.iter().filter(|u| !units.projected.contains_key(*u)).map(|u| names[u.as_str()].as_str()));
    rows::put_fingerprints(conn, path, &put)?;
    rows::delete_fingerprints(conn, path, &drop)?;
    // `;` follows `:`: the range is exactly the names starting with the prefix.
    let recorded: Vec<String> = conn
        .query_map(
            "SELECT namespace FROM fingerprints WHERE namespace >= ?1 AND namespace < ?2",
            vals![INPUT_PREFIX, "input;"],
            |r| Ok(r.str(0)?[INPUT_PREFIX.len()..].to_string()),
        )
        .map_err(sql(path, "read fingerprints"))?;
    let gone: Vec<String> = recorded.iter().filter(|u| !units.known.contains(*u)).map(|u| input_row(u)).collect();
    rows::delete_fingerprints(conn, path, &gone.iter().map(String::as_str).collect::<Vec<_>>())?;
    Ok(())
}

/// The fingerprint of every namespace of `kv` (for a full plan's basis).
pub(crate) fn digests_of(
    kv: &KvMap,
    types: &KvTypes,
    namespaces: impl IntoIterator<Item = String>,
) -> BTreeMap<String, Digest> {
    namespaces.into_iter().map(|ns| (ns.clone(), digest(kv.get(&ns), types.get(&ns)))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_follow_keys_and_trimmed_values() {
        let m = |pairs: &[(&str, &str)]| -> BTreeMap<String, Value> {
            pairs.iter().map(|(k, v)| (k.to_string(), Value::from(*v))).collect()
        };
        let a = digest(Some(&m(&[("a", "1"), ("b", "2")])), None);
        assert_eq!(a, digest(Some(&m(&[("a", " 1 "), ("b", "2")])), None));
        assert_ne!(a, digest(Some(&m(&[("a", "1"), ("b", "3")])), None));
        assert_ne!(a, digest(Some(&m(&[("a", "1")])), None));
        assert_ne!(digest(Some(&m(&[("ab", "")])), None), digest(Some(&m(&[("a", "b")])), None));
        assert_eq!(digest(None, None), digest(Some(&m(&[])), None));
        // A type is part of the key; `string` is no type at all (older records still match).
        let typed = |t: KvType| BTreeMap::from([("a".to_string(), t)]);
        let ab = m(&[("a", "1"), ("b", "2")]);
        assert_eq!(a, digest(Some(&ab), Some(&typed(KvType::String))));
        assert_ne!(a, digest(Some(&ab), Some(&typed(KvType::Number))));
        assert_ne!(digest(Some(&ab), Some(&typed(KvType::Json))), digest(Some(&ab), Some(&typed(KvType::Number))));
    }
}
