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

use super::{StateError, sql};
use crate::kv::inputs::{InputDigest, Units, unit_of};
use crate::kv::{KvMap, Value};
use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest as _, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

/// The fingerprint of one namespace's desired keys: 16 bytes of sha256.
pub type Digest = [u8; 16];

/// The row of a live namespace whose content no plan has verified (a hook wrote it during
/// the apply, or the apply was about to change it): it matches no digest, so the next plan
/// reads the namespace, and its presence keeps the namespace known as live.
pub const UNVERIFIED: Digest = [0xff; 16];

/// The fingerprint of a namespace's desired keys (trimmed values, as plans compare them).
pub fn digest(keys: Option<&BTreeMap<String, Value>>) -> Digest {
    let mut h = Sha256::new();
    for (k, v) in keys.into_iter().flatten() {
        h.update(k.as_bytes());
        h.update([0u8]);
        for part in v.trimmed_parts() {
            h.update(part.as_bytes());
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
pub(crate) fn read_base(conn: &Connection, path: &Path) -> Result<Option<Base>, StateError> {
    let row: Option<(i64, String, Option<String>, bool)> = conn
        .query_row("SELECT serial, tool_version, workspace_digest, verified FROM plan_base WHERE id = 1", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .optional()
        .map_err(sql(path, "read plan base"))?;
    Ok(row.filter(|(_, v, _, _)| v == env!("CARGO_PKG_VERSION")).map(|(serial, _, workspace_digest, verified)| Base {
        serial: serial as u64,
        workspace_digest,
        verified,
    }))
}

/// Every recorded fingerprint: per namespace, and per unit (its input digest).
pub(crate) fn read_table(conn: &Connection, path: &Path) -> Result<Table, StateError> {
    let err = || sql(path, "read fingerprints");
    let mut st = conn.prepare_cached("SELECT namespace, digest FROM fingerprints").map_err(err())?;
    let mut rows = st.query([]).map_err(err())?;
    let mut out = Table::default();
    while let Some(r) = rows.next().map_err(err())? {
        let ns: String = r.get(0).map_err(err())?;
        let blob = r.get_ref(1).and_then(|v| Ok(v.as_blob()?)).map_err(err())?;
        let mut d = [0u8; 16];
        if blob.len() == 16 {
            d.copy_from_slice(blob);
        }
        match ns.strip_prefix(INPUT_PREFIX) {
            Some(unit) => out.units.insert(unit.to_string(), d),
            None => out.namespaces.insert(ns, d),
        };
    }
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

fn read_row(conn: &Connection, path: &Path, ns: &str) -> Result<Option<Digest>, StateError> {
    let blob: Option<Vec<u8>> = conn
        .prepare_cached("SELECT digest FROM fingerprints WHERE namespace = ?1")
        .and_then(|mut st| st.query_row([ns], |r| r.get(0)).optional())
        .map_err(sql(path, "read fingerprint"))?;
    Ok(blob.and_then(|b| b.try_into().ok()))
}

/// Namespaces with a key written after `base` or a live key expired at `now` (both indexed).
pub(crate) fn dirty(conn: &Connection, path: &Path, base: u64, now: i64) -> Result<BTreeSet<String>, StateError> {
    let err = || sql(path, "find changed namespaces");
    let mut out = BTreeSet::new();
    for (query, arg) in [
        ("SELECT DISTINCT namespace FROM latest WHERE serial > ?1", base as i64),
        ("SELECT DISTINCT namespace FROM latest WHERE ttl > 0 AND deleted = 0 AND created_at + ttl <= ?1", now),
    ] {
        let mut st = conn.prepare_cached(query).map_err(err())?;
        let rows = st.query_map([arg], |r| r.get::<_, String>(0)).map_err(err())?;
        for ns in rows {
            out.insert(ns.map_err(err())?);
        }
    }
    Ok(out)
}

/// Whether a namespace has a live key.
pub(crate) fn is_live(conn: &Connection, path: &Path, ns: &str) -> Result<bool, StateError> {
    conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM latest WHERE namespace = ?1 AND deleted = 0)")
        .and_then(|mut st| st.query_row([ns], |r| r.get(0)))
        .map_err(sql(path, "read namespace"))
}

pub(crate) fn put_row(conn: &Connection, path: &Path, ns: &str, d: &Digest) -> Result<(), StateError> {
    conn.prepare_cached("INSERT OR REPLACE INTO fingerprints (namespace, digest) VALUES (?1, ?2)")
        .and_then(|mut st| st.execute(params![ns, &d[..]]))
        .map_err(sql(path, "write fingerprint"))?;
    Ok(())
}

pub(crate) fn delete_row(conn: &Connection, path: &Path, ns: &str) -> Result<(), StateError> {
    conn.prepare_cached("DELETE FROM fingerprints WHERE namespace = ?1")
        .and_then(|mut st| st.execute([ns]))
        .map_err(sql(path, "drop fingerprint"))?;
    Ok(())
}

/// At commit: the rows of namespaces read unchanged, and a check that every row written
/// on the way names a namespace still live; then the base serial.
pub(crate) fn finish(conn: &Connection, path: &Path, staged: Staged, serial: u64) -> Result<(), StateError> {
    for (ns, d) in &staged.on_commit {
        if is_live(conn, path, ns)? {
            put_row(conn, path, ns, d)?;
        } else {
            delete_row(conn, path, ns)?;
        }
    }
    // A row exists only for a live namespace: the model learns which namespaces are live
    // from these rows (an allocation's `is_new`, removed jobs and workers).
    for ns in staged.on_write.keys().chain(staged.foreign.iter()) {
        if !is_live(conn, path, ns)? {
            delete_row(conn, path, ns)?;
        }
    }
    if let Some(units) = &staged.units {
        finish_units(conn, path, &staged, units)?;
    } else {
        for unit in staged.foreign.iter().filter_map(|ns| unit_of(ns)) {
            delete_row(conn, path, &input_row(&unit))?;
        }
    }
    let verified = !conn
        .query_row("SELECT EXISTS (SELECT 1 FROM fingerprints WHERE digest = ?1)", [&UNVERIFIED[..]], |r| {
            r.get::<_, bool>(0)
        })
        .map_err(sql(path, "check fingerprints"))?;
    conn.execute(
        "INSERT OR REPLACE INTO plan_base (id, serial, tool_version, workspace_digest, verified)
         VALUES (1, ?1, ?2, ?3, ?4)",
        params![serial as i64, env!("CARGO_PKG_VERSION"), staged.workspace_digest, verified],
    )
    .map_err(sql(path, "write plan base"))?;
    Ok(())
}

/// The input rows at commit (see the module docs): a projected unit is recorded unless one
/// of its namespaces ends unverified; rows of units a foreign writer touched, or that are no
/// longer in the workspace, are dropped.
fn finish_units(conn: &Connection, path: &Path, staged: &Staged, units: &UnitBasis) -> Result<(), StateError> {
    let empty = digest(None);
    let mut broken: BTreeSet<String> = staged.foreign.iter().filter_map(|ns| unit_of(ns)).collect();
    for (ns, d) in &staged.on_write {
        let Some(unit) = unit_of(ns) else { continue };
        // Written as planned: the row holds the planned digest (or, not live any more, was
        // dropped, which is right only for a namespace with no desired keys).
        let ok = match read_row(conn, path, ns)? {
            Some(row) => row == *d,
            None => *d == empty,
        };
        if !ok {
            broken.insert(unit);
        }
    }
    for (unit, d) in &units.projected {
        if broken.contains(unit) {
            delete_row(conn, path, &input_row(unit))?;
        } else {
            put_row(conn, path, &input_row(unit), d)?;
        }
    }
    for unit in broken.iter().filter(|u| !units.projected.contains_key(*u)) {
        delete_row(conn, path, &input_row(unit))?;
    }
    let recorded: Vec<String> = {
        let mut st = conn
            .prepare_cached("SELECT substr(namespace, ?1) FROM fingerprints WHERE namespace >= ?2 AND namespace < ?3")
            .map_err(sql(path, "read fingerprints"))?;
        // `;` follows `:`: the range is exactly the names starting with the prefix.
        let rows = st
            .query_map(params![INPUT_PREFIX.len() as i64 + 1, INPUT_PREFIX, "input;"], |r| r.get(0))
            .map_err(sql(path, "read fingerprints"))?;
        rows.collect::<Result<_, _>>().map_err(sql(path, "read fingerprints"))?
    };
    for unit in recorded.iter().filter(|u| !units.known.contains(*u)) {
        delete_row(conn, path, &input_row(unit))?;
    }
    Ok(())
}

/// The fingerprint of every namespace of `kv` (for a full plan's basis).
pub(crate) fn digests_of(kv: &KvMap, namespaces: impl IntoIterator<Item = String>) -> BTreeMap<String, Digest> {
    namespaces.into_iter().map(|ns| (ns.clone(), digest(kv.get(&ns)))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_follow_keys_and_trimmed_values() {
        let m = |pairs: &[(&str, &str)]| -> BTreeMap<String, Value> {
            pairs.iter().map(|(k, v)| (k.to_string(), Value::from(*v))).collect()
        };
        let a = digest(Some(&m(&[("a", "1"), ("b", "2")])));
        assert_eq!(a, digest(Some(&m(&[("a", " 1 "), ("b", "2")]))));
        assert_ne!(a, digest(Some(&m(&[("a", "1"), ("b", "3")]))));
        assert_ne!(a, digest(Some(&m(&[("a", "1")]))));
        assert_ne!(digest(Some(&m(&[("ab", "")]))), digest(Some(&m(&[("a", "b")]))));
        assert_eq!(digest(None), digest(Some(&m(&[]))));
    }
}
