//! Shared fixtures for the hook-runtime tests: real buckets in temp dirs (workspace files,
//! key, state), the desired state loaded the way the CLI loads it, and `mini_apply`: plan,
//! then the real apply executor with the real [`RuntimeHooks`].
#![allow(dead_code)]

use kvform::apply::{ApplyOptions, HookSteps, NoHooks, NoProgress, SharedTxn, StepFailure, execute};
use kvform::bucket::Bucket;
use kvform::hooks::steps_impl::RuntimeHooks;
use kvform::model::{self, types::Desired, types::Prior};
use kvform::plan::{Action, Change, Plan, PlanOptions, diff};
use kvform::secrets::Keyring;
use kvform::state::Write;
use kvform::state::{StateStore, WriteTxn};
use kvform::workspace::{self, types::Settings};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[path = "../pg_support/mod.rs"]
mod pg_support;

pub const NOW: i64 = 1_767_323_045; // 2026-01-02T03:04:05Z
pub const NOW_STR: &str = "2026-01-02T03:04:05Z";

/// `$body(tb)` as two tests: `$sqlite` on a fresh bucket with `$workers` and its state in the
/// SQLite file, `$pg` on one with its state on PostgreSQL ([`TestBucket::new_on_postgres`]:
/// skipped without `KVFORM_TEST_PG_URL`, a failure under `CI=true`).
#[macro_export]
macro_rules! on_both_backends {
    ($sqlite:ident, $pg:ident, $workers:expr, $body:expr) => {
        #[test]
        fn $sqlite() {
            $body($crate::hooks_apply_support::TestBucket::new($workers));
        }

        #[test]
        fn $pg() {
            if let Some(tb) = $crate::hooks_apply_support::TestBucket::new_on_postgres(stringify!($pg), $workers) {
                $body(tb);
            }
        }
    };
}

pub struct TestBucket {
    pub dir: tempfile::TempDir,
    /// A PostgreSQL state (see [`TestBucket::new_on_postgres`]); `None`: the SQLite file.
    /// Its registry schema and bucket schema are dropped with the bucket.
    pub pg: Option<kvform::state::Location>,
}

impl Drop for TestBucket {
    fn drop(&mut self) {
        if let Some(kvform::state::Location::Postgres(pg)) = &self.pg {
            drop(pg_support::DropRegistry(pg.schema.clone()));
        }
    }
}

impl TestBucket {
    /// A bucket with `workers` (host, labels) and a fresh key and state.
    pub fn new(workers: &[(&str, &[&str])]) -> TestBucket {
        let tb = Self::layout(workers, None);
        StateStore::init(&Bucket::at(tb.root()).default_state_file(), 1767323045).unwrap();
        tb
    }

    /// [`TestBucket::new`] with the state on PostgreSQL (`KVFORM_TEST_PG_URL`, a registry
    /// schema of its own, the `state` block in kvform.hcl); `None` when no database is set
    /// (see `pg_support::pg_url`).
    pub fn new_on_postgres(test: &str, workers: &[(&str, &[&str])]) -> Option<TestBucket> {
        pg_support::pg_url(test)?;
        let schema = format!("kvh_{}", &uuid::Uuid::new_v4().simple().to_string()[..16]);
        let loc = kvform::state::Location::Postgres(kvform::state::PgLocation {
            url_env: "KVFORM_TEST_PG_URL".into(),
            schema: schema.clone(),
            bucket_id: None,
        });
        let (_, _, id) = loc.init(1767323045).unwrap();
        let id = id.unwrap();
        let kvform::state::Location::Postgres(pg) = loc else { unreachable!() };
        let tb = Self::layout(
            workers,
            Some(kvform::state::Location::Postgres(kvform::state::PgLocation { bucket_id: Some(id), ..pg })),
        );
        tb.write(
            "kvform.hcl",
            &format!("state {{\n  backend = \"postgres\"\n  url_env = \"KVFORM_TEST_PG_URL\"\n  schema = \"{schema}\"\n  bucket_id = \"{id}\"\n}}\n"),
        );
        Some(tb)
    }

    fn layout(workers: &[(&str, &[&str])], pg: Option<kvform::state::Location>) -> TestBucket {
        let dir = tempfile::tempdir().unwrap();
        let tb = TestBucket { dir, pg };
        let list: Vec<serde_json::Value> =
            workers.iter().map(|(h, labels)| serde_json::json!({"host": h, "labels": labels})).collect();
        tb.write("workspace/workers.json", &serde_json::to_string_pretty(&list).unwrap());
        Keyring::create(&Bucket::at(tb.root())).unwrap();
        tb
    }

    /// A copy of an example bucket's workspace (and kvform.hcl) with a fresh key and state.
    pub fn from_example(example: &Path) -> TestBucket {
        let dir = tempfile::tempdir().unwrap();
        let status =
            std::process::Command::new("cp").arg("-r").arg(example.join(".")).arg(dir.path()).status().unwrap();
        assert!(status.success());
        // What running the example left behind (git-ignored) is not part of the example.
        for runtime in ["data", "secrets", "logs"] {
            let _ = std::fs::remove_dir_all(dir.path().join(runtime));
        }
        let b = Bucket::at(dir.path());
        Keyring::create(&b).unwrap();
        let (store, _) = StateStore::init(&b.default_state_file(), NOW).unwrap();
        // As `kvform init` does: the CA, for the certificates the example declares.
        kvform::certs::ca::ensure(&b, &store.meta().unwrap().bucket_id.to_string(), NOW).unwrap();
        TestBucket { dir, pg: None }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root().join(rel)
    }

    pub fn write(&self, rel: &str, text: &str) {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap_or_default()
    }

    /// A job: its manifest and `_modules/` scripts (name, body). Scripts are made
    /// executable (only needed for ones without .sh/.py).
    pub fn job(&self, name: &str, manifest: serde_json::Value, scripts: &[(&str, &str)]) {
        self.write(&format!("workspace/jobs/{name}/manifest.json"), &serde_json::to_string_pretty(&manifest).unwrap());
        for (file, body) in scripts {
            let rel = format!("workspace/jobs/{name}/_modules/{file}");
            self.write(&rel, body);
            std::fs::set_permissions(self.path(&rel), std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    }

    pub fn state_file(&self) -> PathBuf {
        Bucket::at(self.root()).default_state_file()
    }

    pub fn store(&self) -> StateStore {
        let b = Bucket::at(self.root());
        let store = match &self.pg {
            Some(loc) => loc.open().unwrap(),
            None => StateStore::open(&self.state_file()).unwrap(),
        };
        store.with_keyring(Keyring::load(&b).unwrap())
    }

    pub fn serial(&self) -> u64 {
        self.store().meta().unwrap().serial
    }

    /// The live value of a key (secrets opened).
    pub fn value(&self, ns: &str, key: &str) -> Option<String> {
        let s = self.store();
        let e = s.get(ns, key).unwrap().filter(|e| e.is_live())?;
        if ns.starts_with("secrets/") {
            Some(s.keyring().unwrap().open(ns, key, e.version, &e.value).unwrap().to_string())
        } else {
            Some(e.value)
        }
    }

    /// Settings and desired state, as the CLI builds them.
    pub fn desired(&self) -> (Settings, Desired) {
        let loaded = workspace::load(self.root());
        let ws = loaded
            .workspace
            .unwrap_or_else(|| panic!("invalid workspace:\n{}", loaded.diagnostics.render(&loaded.sources, false)));
        let prior = Prior::from_snapshot(&self.store().snapshot().unwrap());
        let desired = model::desired(&ws, &prior)
            .unwrap_or_else(|d| panic!("model errors:\n{}", d.render(&loaded.sources, false)));
        (ws.settings, desired)
    }

    /// Every file under `logs/`, concatenated.
    pub fn all_logs(&self) -> String {
        let mut out = String::new();
        let mut stack = vec![self.path("logs")];
        while let Some(d) = stack.pop() {
            let Ok(rd) = std::fs::read_dir(&d) else { continue };
            for e in rd.flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    out.push_str(&std::fs::read_to_string(&p).unwrap_or_default());
                }
            }
        }
        out
    }
}

/// What `mini_apply` did.
pub struct Applied {
    /// The serial after commit.
    pub serial: u64,
    pub plan: Plan,
    pub failures: Vec<StepFailure>,
    /// Jobs skipped because an upstream failed.
    pub skipped: Vec<String>,
}

fn apply_change(txn: &mut WriteTxn, c: &Change) {
    match c.action {
        Action::Create | Action::Update => {
            txn.put(Write::new(
                &c.namespace,
                &c.key,
                &c.after.as_ref().map(|v| v.to_string()).unwrap_or_default(),
                "apply",
                NOW,
            ))
            .unwrap();
        }
        Action::Tombstone => {
            txn.tombstone(&c.namespace, &c.key, "apply", NOW).unwrap();
        }
    }
}

fn apply_ns(shared: &SharedTxn, plan: &Plan, ns: &str) {
    let mut txn = shared.lock().unwrap();
    for c in plan.changes_in(ns) {
        apply_change(&mut txn, c);
    }
}

/// Plan and apply the bucket with the real hook runtime (`settings` adjusted by `tweak`).
pub fn mini_apply(tb: &TestBucket, tweak: impl FnOnce(&mut Settings)) -> Applied {
    let (mut settings, desired) = tb.desired();
    tweak(&mut settings);
    run_apply(tb, &desired, |shared| {
        Box::new(RuntimeHooks::start(tb.root(), &desired, shared, &settings, NOW).expect("start the hook runtime"))
    })
}

/// Plan and apply without hooks (seeds a state for CLI tests).
pub fn apply_without_hooks(tb: &TestBucket) -> Applied {
    let (_, desired) = tb.desired();
    run_apply(tb, &desired, |_| Box::new(NoHooks))
}

fn run_apply<'a>(
    tb: &TestBucket,
    desired: &Desired,
    make_hooks: impl FnOnce(SharedTxn) -> Box<dyn HookSteps + 'a>,
) -> Applied {
    let store = tb.store();
    let snap = store.snapshot().unwrap();
    let plan = diff(desired, &snap, &PlanOptions::default(), NOW);
    let plan = kvform::apply::certs::materialise(plan, desired, &Bucket::at(tb.root()), NOW).unwrap();
    let txn = store.begin_write("apply", Duration::ZERO, NOW).unwrap();
    // The hook runtime reads the current allocation versions from the transaction, then lets go.
    let shared: SharedTxn = Arc::new(Mutex::new(txn));
    let mut hooks = make_hooks(shared.clone());
    let txn = Arc::try_unwrap(shared).expect("the hook runtime keeps no transaction").into_inner().unwrap();
    let report = execute(txn, &plan, desired, hooks.as_mut(), &mut NoProgress, &ApplyOptions::new(NOW)).unwrap();
    drop(hooks); // stops the API
    let skipped = report.skipped.iter().map(|s| s.job.clone()).collect();
    Applied { serial: report.serial, plan, failures: report.failed, skipped }
}

/// A `.sh` hook appending `<EVENT> <JOB> <ALLOCATION_IP>` plus `extra` to `file` (relative
/// to the bucket root, where hooks run).
pub fn logging_hook(file: &str, extra: &str) -> String {
    format!("#!/bin/bash\nset -e\necho \"$EVENT $JOB $ALLOCATION_IP{extra}\" >> {file}\n")
}
