//! Property: for a random small workspace and a random prior state, applying the plan and
//! planning again gives "No changes." (library level: load -> desired -> diff -> execute
//! with `NoHooks` -> snapshot -> desired -> diff is empty).

use kvform::apply::{ApplyOptions, NoHooks, NoProgress, execute};
use kvform::model::types::Prior;
use kvform::plan::{PlanOptions, diff};
use kvform::secrets::Keyring;
use kvform::state::Write;
use kvform::state::{ApplyRecord, PlanBasis, PlanRead, ReadMode, StateStore};
use proptest::prelude::*;
use std::path::Path;
use std::time::Duration;

const NOW: i64 = 1_767_323_045;
const LABELS: &[&str] = &["api", "db", "web"];
const JOBS: &[&str] = &["api", "db", "web", "cron"];

#[derive(Debug, Clone)]
struct Ws {
    /// Per worker: label mask over LABELS, optional tag value.
    workers: Vec<(u8, Option<u8>)>,
    /// Per job of JOBS: present, selector mask override, vars.hcl value, disabled.
    jobs: Vec<(bool, u8, Option<u8>, bool)>,
    bucket_vars: Vec<(u8, u8)>,
    with_port: bool,
}

#[derive(Debug, Clone)]
enum Pre {
    /// A key in vars/job/<job> (hook-style), with a ttl of 0, expired or not yet expired.
    Var {
        job: usize,
        key: u8,
        ttl: u8,
    },
    Secret {
        job: usize,
        key: u8,
    },
    /// A leftover key in a synced namespace.
    Stale {
        ns: u8,
        key: u8,
    },
}

fn ws_strategy() -> impl Strategy<Value = Ws> {
    (
        prop::collection::vec((0u8..8, prop::option::of(0u8..3)), 0..4),
        prop::collection::vec((any::<bool>(), 0u8..8, prop::option::of(0u8..3), prop::bool::weighted(0.2)), 4),
        prop::collection::vec((0u8..4, 0u8..3), 0..4),
        any::<bool>(),
    )
        .prop_map(|(workers, jobs, bucket_vars, with_port)| Ws { workers, jobs, bucket_vars, with_port })
}

fn pre_strategy() -> impl Strategy<Value = Vec<Pre>> {
    prop::collection::vec(
        prop_oneof![
            (0usize..4, 0u8..3, 0u8..3).prop_map(|(job, key, ttl)| Pre::Var { job, key, ttl }),
            (0usize..4, 0u8..2).prop_map(|(job, key)| Pre::Secret { job, key }),
            (0u8..4, 0u8..2).prop_map(|(ns, key)| Pre::Stale { ns, key }),
        ],
        0..6,
    )
}

fn labels(mask: u8) -> Vec<&'static str> {
    LABELS.iter().enumerate().filter(|(i, _)| mask & (1 << i) != 0).map(|(_, l)| *l).collect()
}

fn write_ws(root: &Path, ws: &Ws) {
    let w = root.join("workspace");
    std::fs::create_dir_all(w.join("jobs")).unwrap();
    let workers: Vec<serde_json::Value> = ws
        .workers
        .iter()
        .enumerate()
        .map(|(i, (mask, tag))| {
            let mut v = serde_json::json!({"host": format!("10.0.0.{}", i + 1), "labels": labels(*mask)});
            if let Some(t) = tag {
                v["tags"] = serde_json::json!({"zone": format!("z{t}")});
            }
            v
        })
        .collect();
    std::fs::write(w.join("workers.json"), serde_json::to_string(&workers).unwrap()).unwrap();
    let mut disabled = serde_json::Map::new();
    for (i, (present, sel, vars, off)) in ws.jobs.iter().enumerate() {
        if !present {
            continue;
        }
        let name = JOBS[i];
        let dir = w.join("jobs").join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let mut m = serde_json::json!({"version": "1.0.0"});
        if name == "cron" && *sel != 0 {
            m["selectors"] = serde_json::json!(labels(*sel));
        }
        if ws.with_port && name == "api" {
            m["resources"] = serde_json::json!({"ports": {"api_http": {}}});
        }
        std::fs::write(dir.join("manifest.json"), m.to_string()).unwrap();
        if let Some(v) = vars {
            std::fs::write(dir.join("vars.hcl"), format!("k{v} = \"v{v}\"\n")).unwrap();
        }
        if *off {
            disabled.insert(name.into(), serde_json::json!({}));
        }
    }
    std::fs::write(w.join("disabled.json"), serde_json::json!({"jobs": disabled}).to_string()).unwrap();
    // One value per key (a repeated attribute is an error).
    let vars: std::collections::BTreeMap<u8, u8> = ws.bucket_vars.iter().copied().collect();
    let conf: String = vars.iter().map(|(k, v)| format!("b{k} = \"{v}\"\n")).collect();
    std::fs::write(w.join("bucket.conf"), conf).unwrap();
}

fn write_pre(store: StateStore, pre: &[Pre]) {
    let mut txn = store.begin_write("test", Duration::ZERO, 1767323045).unwrap();
    for p in pre {
        match p {
            Pre::Var { job, key, ttl } => {
                // ttl 0 = forever; 1 = expired by NOW; 2 = still valid at NOW.
                let (ttl, at) = match ttl {
                    0 => (0, NOW - 10),
                    1 => (60, NOW - 600),
                    _ => (6000, NOW - 600),
                };
                txn.put(
                    Write::new(&format!("vars/job/{}", JOBS[*job]), &format!("h{key}"), "x", "hook:t", at).ttl(ttl),
                )
                .unwrap();
            }
            Pre::Secret { job, key } => {
                txn.put(Write::new(&format!("secrets/job/{}", JOBS[*job]), &format!("s{key}"), "pw", "hook:t", NOW))
                    .unwrap();
            }
            Pre::Stale { ns, key } => {
                let ns = ["maand/bucket", "maand/worker/10.0.0.9", "maand/job/gone", "vars/bucket"][*ns as usize];
                txn.put(Write::new(ns, &format!("old{key}"), "1", "apply", NOW - 100)).unwrap();
            }
        }
    }
    txn.commit(ApplyRecord::new("test", NOW)).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn apply_then_plan_again_has_no_changes(ws in ws_strategy(), pre in pre_strategy(), purge in any::<bool>()) {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        write_ws(root, &ws);
        let path = root.join("data/kvform.db");
        let ring = || Keyring::from_bytes(&[7u8; 32]);
        let (store, _) = StateStore::init(&path, 1767323045).unwrap();
        write_pre(store.with_keyring(ring()), &pre);

        let loaded = kvform::workspace::load(root);
        let Some(workspace) = loaded.workspace else {
            panic!("generated workspace is invalid:\n{}", loaded.diagnostics.render(&loaded.sources, false));
        };
        let opts = PlanOptions { purge_secrets_kv: purge };

        let store = StateStore::open(&path).unwrap().with_keyring(ring());
        let snap = store.snapshot().unwrap();
        let desired = kvform::model::desired(&workspace, &Prior::from_snapshot(&snap)).expect("model accepts");
        let plan = diff(&desired, &snap, &opts, NOW);
        // The lean path (rows without values, then values compared in place) plans the same.
        let (lean, lean_desired) = store
            .read_for_plan(|s| Ok::<_, kvform::state::StateError>(kvform::model::desired(&workspace, &Prior::from_current(s)).expect("model accepts")), |d| &d.kv)
            .unwrap();
        prop_assert_eq!(&lean_desired.kv, &desired.kv);
        prop_assert_eq!(&diff(&lean_desired, &lean, &opts, NOW), &plan);
        let txn = store.begin_write("apply", Duration::ZERO, 1767323045).unwrap();
        let report = execute(txn, &plan, &desired, &mut NoHooks, &mut NoProgress, &ApplyOptions::new(NOW)).unwrap();
        prop_assert_eq!(report.status, kvform::state::ApplyStatus::Success);
        prop_assert_eq!(
            (report.added, report.changed, report.destroyed),
            (plan.summary.add as u64, plan.summary.change as u64, plan.summary.destroy as u64)
        );

        let snap2 = StateStore::open(&path).unwrap().snapshot().unwrap();
        let desired2 = kvform::model::desired(&workspace, &Prior::from_snapshot(&snap2)).expect("model accepts");
        let again = diff(&desired2, &snap2, &opts, NOW);
        prop_assert!(again.is_empty(), "second plan not empty:\n{}", kvform::plan::render_text(&again, Default::default()));
    }
}

/// A plan read `mode`-wise (what `kvform plan` / `plan --refresh` do), for the workspace
/// at `root` (its digest taken as `kvform` takes it).
fn plan_with(
    store: &StateStore,
    root: &Path,
    workspace: &kvform::workspace::types::Workspace,
    mode: ReadMode,
    opts: &PlanOptions,
    now: i64,
) -> Planned {
    let digest = kvform::cli::plan_files::workspace_digest(root, 64 << 20).unwrap();
    let how = PlanRead { mode, now, workspace_digest: Some(&digest) };
    let (snap, desired, basis) = store
        .read_for_plan_with(
            how,
            |s, skip| {
                Ok::<_, kvform::state::StateError>(
                    kvform::model::desired_with(workspace, &Prior::from_current(s), skip).expect("model accepts"),
                )
            },
            |d| (&d.kv, &d.kv_types, &d.units),
            |d, s| kvform::plan::diff::purge_reasons(d, s, opts).into_keys().collect(),
        )
        .unwrap();
    let plan = match &desired {
        Some(d) => diff(d, &snap, opts, now),
        None => kvform::plan::Plan::no_changes(snap.lineage, snap.serial, opts, now),
    };
    (plan, desired, basis, digest)
}

/// A plan, its desired state (`None`: known empty without one), what it read, the digest.
type Planned = (kvform::plan::Plan, Option<kvform::model::types::Desired>, PlanBasis, String);

/// Apply a plan as `kvform apply` does (fingerprints staged); `hook` is a write a hook makes
/// in the apply's transaction before the changes (`pre_deploy`).
fn apply_recorded(store: StateStore, planned: &Planned, hook: Option<(usize, u8)>, now: i64) {
    let (plan, desired, basis, digest) = planned;
    let mut txn = store.begin_write("apply", Duration::ZERO, now).unwrap();
    txn.stage_fingerprints(basis, plan.changed_namespaces(), kvform::apply::APPLY_WRITER, Some(digest)).unwrap();
    if let Some((job, key)) = hook {
        txn.put(Write::new(&format!("vars/job/{}", JOBS[job]), &format!("k{key}"), "hooked", "hook:t", now)).unwrap();
    }
    // What `kvform apply` does: an empty plan only records what it verified.
    if plan.is_empty() {
        txn.commit(ApplyRecord::new("apply", now)).unwrap();
        return;
    }
    let desired = desired.as_ref().expect("a plan with changes has a desired state");
    let report = execute(txn, plan, desired, &mut NoHooks, &mut NoProgress, &ApplyOptions::new(now)).unwrap();
    assert_eq!(report.status, kvform::state::ApplyStatus::Success);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// Change-proportional planning (SPEC §11): after an apply recorded its fingerprints, a
    /// plan that reads only what may have changed equals the full plan (`--refresh`), for a
    /// random workspace change, random out-of-band writes, a hook write during the apply and
    /// the clock moving past ttls; and after applying it, both plan "No changes.".
    #[test]
    fn incremental_plan_equals_full_plan(
        ws1 in ws_strategy(),
        pre in pre_strategy(),
        ws2 in prop::option::weighted(0.7, ws_strategy()),
        ws3 in prop::option::weighted(0.7, ws_strategy()),
        later in pre_strategy(),
        hook in prop::option::of((0usize..4, 0u8..3)),
        wait in prop_oneof![Just(0i64), Just(6_000i64)],
    ) {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        write_ws(root, &ws1);
        let path = root.join("data/kvform.db");
        let ring = || Keyring::from_bytes(&[7u8; 32]);
        let (store, _) = StateStore::init(&path, NOW).unwrap();
        write_pre(store.with_keyring(ring()), &pre);
        let open = || StateStore::open(&path).unwrap().with_keyring(ring());
        let load = || kvform::workspace::load(root).workspace.expect("generated workspace is valid");
        let opts = PlanOptions::default();

        // First apply: nothing recorded yet, so the incremental read is a full one.
        let ws = load();
        let first = plan_with(&open(), root, &ws, ReadMode::Incremental, &opts, NOW);
        prop_assert!(first.2.full);
        apply_recorded(open(), &first, hook, NOW);

        // Out of band: hook/operator writes after the apply; then the workspace changes and
        // time passes.
        write_pre(open(), &later);
        // Often a new workspace, else the same one (only the out-of-band writes changed).
        std::fs::remove_dir_all(root.join("workspace")).unwrap();
        write_ws(root, ws2.as_ref().unwrap_or(&ws1));
        let ws = load();
        let now = NOW + wait;
        let incr = plan_with(&open(), root, &ws, ReadMode::Incremental, &opts, now);
        let full = plan_with(&open(), root, &ws, ReadMode::Full, &opts, now);
        prop_assert!(!incr.2.full);
        prop_assert_eq!(&incr.0, &full.0, "incremental:\n{}\nfull:\n{}",
            kvform::plan::render_text(&incr.0, Default::default()), kvform::plan::render_text(&full.0, Default::default()));

        apply_recorded(open(), &incr, hook, now);
        let again = plan_with(&open(), root, &ws, ReadMode::Incremental, &opts, now);
        let refreshed = plan_with(&open(), root, &ws, ReadMode::Full, &opts, now);
        prop_assert_eq!(&again.0, &refreshed.0);
        // A hook overriding a vars.hcl key is undone by the next plan, never hidden.
        if hook.is_none() {
            prop_assert!(again.0.is_empty(), "{}", kvform::plan::render_text(&again.0, Default::default()));
        }

        // A third workspace after an incremental apply: units recorded by a plan that skipped
        // others (placement moved by workers' labels, ports, vars) still plan as a full plan.
        apply_recorded(open(), &again, None, now);
        std::fs::remove_dir_all(root.join("workspace")).unwrap();
        write_ws(root, ws3.as_ref().or(ws2.as_ref()).unwrap_or(&ws1));
        let ws = load();
        let incr = plan_with(&open(), root, &ws, ReadMode::Incremental, &opts, now);
        let full = plan_with(&open(), root, &ws, ReadMode::Full, &opts, now);
        prop_assert_eq!(&incr.0, &full.0, "incremental:\n{}\nfull:\n{}",
            kvform::plan::render_text(&incr.0, Default::default()), kvform::plan::render_text(&full.0, Default::default()));
        apply_recorded(open(), &incr, None, now);
        let last = plan_with(&open(), root, &ws, ReadMode::Incremental, &opts, now);
        prop_assert!(last.0.is_empty(), "{}", kvform::plan::render_text(&last.0, Default::default()));
    }
}
