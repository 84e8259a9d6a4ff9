//! `testdata/plan/<case>/steps/<n>/` -> `golden/plan/<case>/<n>.{plan.txt,plan.json,state.json}`.
//!
//! A case is a sequence of steps run against one bucket (a temporary directory that
//! persists across the steps), through the real binary. Each step directory holds:
//! - `workspace/` — replaces the bucket's `workspace/` (required);
//! - `kvform.hcl` — the bucket settings for this step (optional; removed when absent);
//! - `env` — `KEY=VALUE` lines for every command of the step (optional). `KVFORM_NOW`
//!   defaults to 2026-01-01T00:00:00Z plus `n` hours;
//! - `pre` — lines of `kv set NS KEY VALUE [--ttl N] [--secret]` / `kv delete NS KEY`, run
//!   before planning (optional; secret values are passed on stdin, as operators do);
//! - `args` — extra arguments for `plan` and `apply` (optional, e.g. `--purge-secrets-kv`);
//! - `secrets/` — files copied into the bucket's `secrets/` (0600) before the step: a fixed
//!   CA (`ca.crt`, `ca.key`) for cases with certificates, or a new one to rotate to.
//!
//! Per step: `plan` (stdout -> `<n>.plan.txt`), `plan --json` (-> `<n>.plan.json`),
//! `apply --auto-approve` (must succeed and report the plan's counts), then
//! `cat kv --format json` (-> `<n>.state.json`: every key's latest row with version,
//! ttl, created_at, serial and writer).
//!
//! Determinism: the state is created before step 1 through the library with a fixed bucket
//! id (ids derived from it appear in values), the clock is fixed per step, and the
//! `user@host` of operator writes (their writer, `kv set` in a step) is replaced by `<actor>`. Certificates
//! issued by apply are random: the state dump shows each as `<certificate #n …>` — its
//! subject, SANs, validity and whether the bucket CA signed it, `#n` numbering distinct PEMs
//! in order of appearance (so a `one` certificate shows the same number everywhere).

use crate::support::{Golden, case_name, cases, copy_dir};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const BUCKET_ID: &str = "6b766672-6d00-4000-8000-000000000002";
/// 2026-01-01T00:00:00Z.
const BASE_NOW: i64 = 1_767_225_600;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_kvform")
}

/// Where a case's state is: the default SQLite file, or a PostgreSQL bucket (the same
/// golden files must come out of both).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Backend {
    Sqlite,
    Postgres,
}

/// The `state` block of a PostgreSQL case: its own registry schema, the bucket [`BUCKET_ID`].
fn pg_attrs(schema: &str) -> Vec<(&'static str, Option<String>)> {
    vec![
        ("backend", Some("postgres".into())),
        ("url_env", Some("KVFORM_TEST_PG_URL".into())),
        ("schema", Some(schema.into())),
        ("bucket_id", Some(BUCKET_ID.into())),
        ("path", None),
    ]
}

/// A bucket with an empty state whose bucket id is [`BUCKET_ID`], and its key.
fn new_bucket(root: &Path, backend: Backend, schema: &str) {
    let bucket = kvform::bucket::Bucket::at(root);
    kvform::secrets::Keyring::create(&bucket).unwrap();
    if backend == Backend::Postgres {
        let loc = kvform::state::Location::Postgres(kvform::state::PgLocation {
            url_env: "KVFORM_TEST_PG_URL".into(),
            schema: schema.into(),
            bucket_id: Some(BUCKET_ID.parse().unwrap()),
        });
        drop(loc.init(1767323045).unwrap());
        return;
    }
    let path = bucket.default_state_file();
    drop(kvform::state::StateStore::init(&path, 1767323045).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute("UPDATE meta SET bucket_id = ?1 WHERE id = 1", [BUCKET_ID]).unwrap();
}

struct Step {
    n: u32,
    dir: PathBuf,
}

fn steps(case: &Path) -> Vec<Step> {
    let mut out: Vec<Step> = std::fs::read_dir(case.join("steps"))
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| Some(Step { n: e.file_name().to_str()?.parse().ok()?, dir: e.path() }))
                .collect()
        })
        .unwrap_or_default();
    out.sort_by_key(|s| s.n);
    out
}

fn env_of(step: &Step) -> Vec<(String, String)> {
    let mut env = vec![
        ("KVFORM_NOW".to_string(), (BASE_NOW + step.n as i64 * 3600).to_string()),
        ("NO_COLOR".to_string(), "1".to_string()),
    ];
    if let Ok(s) = std::fs::read_to_string(step.dir.join("env")) {
        for line in s.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
            let (k, v) = line.split_once('=').expect("env lines are KEY=VALUE");
            env.retain(|(ek, _)| ek != k);
            env.push((k.to_string(), v.to_string()));
        }
    }
    env
}

/// Run the binary in `root`; (status ok, stdout, stderr).
fn kvform(root: &Path, env: &[(String, String)], args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    let mut cmd = Command::new(bin());
    cmd.arg("-C").arg(root).args(args).env_remove("KVFORM_NOW").env_remove("NO_COLOR");
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("the kvform binary runs");
    if let Some(input) = stdin {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Run the `pre` lines of a step; an error message on failure.
fn run_pre(root: &Path, env: &[(String, String)], step: &Step) -> Result<(), String> {
    let Ok(pre) = std::fs::read_to_string(step.dir.join("pre")) else { return Ok(()) };
    for line in pre.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let mut args: Vec<String> = line.split_whitespace().map(str::to_string).collect();
        let mut stdin = None;
        let secret = args.iter().any(|a| a == "--secret") || args.get(2).is_some_and(|ns| ns.starts_with("secrets/"));
        if args.len() >= 5 && args[1] == "set" && secret {
            stdin = Some(std::mem::replace(&mut args[4], "-".into()));
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let (ok, _, err) = kvform(root, env, &refs, stdin.as_deref());
        if !ok {
            return Err(format!("pre `{line}` failed:\n{err}"));
        }
    }
    Ok(())
}

/// The summary counts of a text plan, as the apply reports them.
fn expected_counts(plan_text: &str) -> String {
    match plan_text.lines().find_map(|l| l.strip_prefix("Plan: ")) {
        Some(rest) => {
            let n: Vec<&str> = rest.split(", ").map(|p| p.split(' ').next().unwrap()).collect();
            format!("Resources: {} added, {} changed, {} destroyed.", n[0], n[1], n[2])
        }
        None => "Resources: 0 added, 0 changed, 0 destroyed.".into(),
    }
}

/// One case in a registry schema of its own (PostgreSQL), dropped afterwards unless the case
/// failed (its rows are the evidence).
fn run_case(g: &mut Golden, case: &Path, backend: Backend) -> Result<(), String> {
    let schema = format!("kvg_{}", &uuid::Uuid::new_v4().simple().to_string()[..16]);
    let registry = (backend == Backend::Postgres).then(|| crate::tf_support::DropRegistry(schema.clone()));
    let result = run_steps(g, case, backend, &schema);
    if let (Err(e), Some(registry)) = (&result, registry) {
        std::mem::forget(registry);
        return Err(format!("{e}\n(kept the PostgreSQL schemas of registry {schema})"));
    }
    result
}

fn run_steps(g: &mut Golden, case: &Path, backend: Backend, schema: &str) -> Result<(), String> {
    let name = case_name(case);
    let steps = steps(case);
    if steps.is_empty() {
        return Err("no steps/<n>/ directories".into());
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    new_bucket(root, backend, schema);
    let actor = kvform::state::actor();
    for step in &steps {
        let n = step.n;
        let ws = root.join("workspace");
        let _ = std::fs::remove_dir_all(&ws);
        copy_dir(&step.dir.join("workspace"), &ws);
        let _ = std::fs::remove_file(root.join("kvform.hcl"));
        if step.dir.join("kvform.hcl").is_file() {
            std::fs::copy(step.dir.join("kvform.hcl"), root.join("kvform.hcl")).unwrap();
        }
        if backend == Backend::Postgres {
            kvform::workspace::hcl_files::set_state_attributes(root, &pg_attrs(schema)).unwrap();
        }
        copy_secrets(&step.dir, root);
        let env = env_of(step);
        run_pre(root, &env, step).map_err(|e| format!("step {n}: {e}"))?;
        let extra: Vec<String> = std::fs::read_to_string(step.dir.join("args"))
            .map(|s| s.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default();
        let with = |base: &[&str]| -> Vec<String> {
            base.iter().map(|s| s.to_string()).chain(extra.iter().cloned()).collect::<Vec<_>>()
        };
        let call = |args: Vec<String>| {
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            kvform(root, &env, &refs, None)
        };

        let (ok, text, err) = call(with(&["plan"]));
        if !ok {
            return Err(format!("step {n}: plan failed:\n{err}"));
        }
        g.check(&format!("plan/{name}/{n}.plan.txt"), &text);
        let (ok, json, err) = call(with(&["plan", "--json"]));
        if !ok {
            return Err(format!("step {n}: plan --json failed:\n{err}"));
        }
        g.check(&format!("plan/{name}/{n}.plan.json"), &mask_made_from(&mask_certificates(root, &json)));

        let (ok, out, err) = call(with(&["apply", "--auto-approve"]));
        let want = expected_counts(&text);
        let complete = out.lines().last() == Some(format!("Apply complete! {want}").as_str());
        if !ok || !complete {
            return Err(format!("step {n}: apply did not report `Apply complete! {want}`:\n{out}\n{err}"));
        }
        let (ok, dump, err) = call(vec!["cat".into(), "kv".into(), "--format".into(), "json".into()]);
        if !ok {
            return Err(format!("step {n}: cat kv failed:\n{err}"));
        }
        let dump = mask_certificates(root, &dump.replace(&actor, "<actor>"));
        g.check(&format!("plan/{name}/{n}.state.json"), &dump);
    }
    Ok(())
}

/// What changes from run to run in a plan document (the state's random lineage, the
/// kvform version) as placeholders; the base serial and time are fixed by the steps.
fn mask_made_from(json: &str) -> String {
    let mut doc: serde_json::Value = serde_json::from_str(json).expect("kvform prints JSON");
    doc["lineage"] = "<lineage>".into();
    doc["kvform_version"] = "<kvform version>".into();
    serde_json::to_string_pretty(&doc).unwrap() + "\n"
}

/// The step's `secrets/` files into the bucket's (0600).
fn copy_secrets(step: &Path, root: &Path) {
    let Ok(rd) = std::fs::read_dir(step.join("secrets")) else { return };
    for e in rd.flatten() {
        let to = root.join("secrets").join(e.file_name());
        std::fs::copy(e.path(), &to).unwrap();
        std::fs::set_permissions(&to, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    }
}

/// Replace the certificates apply issued (random) in a JSON document (`plan --json`, the
/// state dump) by what they say; CA certificates (fixed files of the case) stay as they are.
fn mask_certificates(root: &Path, json: &str) -> String {
    if !json.contains("BEGIN CERTIFICATE") {
        return json.to_string();
    }
    let ca = std::fs::read_to_string(root.join("secrets/ca.crt")).unwrap_or_default();
    let mut doc: serde_json::Value = serde_json::from_str(json).expect("kvform prints JSON");
    let mut seen: Vec<String> = Vec::new();
    mask_value(&mut doc, &ca, &mut seen);
    serde_json::to_string_pretty(&doc).unwrap() + "\n"
}

fn mask_value(v: &mut serde_json::Value, ca: &str, seen: &mut Vec<String>) {
    match v {
        serde_json::Value::Array(a) => a.iter_mut().for_each(|x| mask_value(x, ca, seen)),
        serde_json::Value::Object(o) => o.values_mut().for_each(|x| mask_value(x, ca, seen)),
        serde_json::Value::String(pem) if pem.contains("BEGIN CERTIFICATE") => {
            if kvform::certs::inspect::check_ca(pem).is_ok() {
                return;
            }
            let n = match seen.iter().position(|p| p == pem) {
                Some(i) => i + 1,
                None => {
                    seen.push(pem.clone());
                    seen.len()
                }
            };
            let info = kvform::certs::inspect::read(pem).expect("an issued certificate reads back");
            let at = |t: i64| jiff::Timestamp::from_second(t).unwrap().to_string();
            let by = if kvform::certs::inspect::signed_by(pem, ca) {
                "signed by the bucket CA"
            } else {
                "NOT signed by the bucket CA"
            };
            *v = format!(
                "<certificate #{n} CN={} SANs={} {}..{} {by}>",
                info.common_name,
                info.sans.join(","),
                at(info.not_before),
                at(info.not_after)
            )
            .into();
        }
        _ => {}
    }
}

#[test]
fn plan_and_apply_scenarios() {
    let mut g = Golden::new();
    let all = cases("plan");
    for case in &all {
        if let Err(e) = run_case(&mut g, case, Backend::Sqlite) {
            g.fail(format!("testdata/plan/{}: {e}", case_name(case)));
        }
    }
    assert!(all.len() >= 25, "expected at least 25 plan cases, found {}", all.len());
    g.finish("plan", 75);
}

/// The same cases and golden files with the state on PostgreSQL (`KVFORM_TEST_PG_URL`).
#[test]
fn plan_and_apply_scenarios_on_postgres() {
    if crate::tf_support::pg_url("plan_and_apply_scenarios_on_postgres").is_none() {
        return;
    }
    let mut g = Golden::new();
    let all = cases("plan");
    for case in &all {
        if let Err(e) = run_case(&mut g, case, Backend::Postgres) {
            g.fail(format!("testdata/plan/{} (postgres): {e}", case_name(case)));
        }
    }
    g.finish("plan (postgres)", 75);
}

/// The `quickstart` scenario must stay a copy of `examples/quickstart`, so the README's example
/// is the one whose plan and state are golden-tested.
#[test]
fn quickstart_scenario_matches_the_example() {
    fn files(root: &std::path::Path) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(&dir).unwrap().flatten() {
                let p = e.path();
                let name = e.file_name().to_string_lossy().into_owned();
                if p.is_dir() {
                    if name != "__pycache__" {
                        stack.push(p);
                    }
                } else {
                    let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                    out.push((rel, std::fs::read(&p).unwrap()));
                }
            }
        }
        out.sort();
        out
    }
    let example = crate::support::repo().join("examples/quickstart");
    for step in ["1", "2"] {
        let case = crate::support::repo().join("testdata/plan/quickstart/steps").join(step);
        assert_eq!(
            files(&case.join("workspace")),
            files(&example.join("workspace")),
            "step {step}: workspace/ differs"
        );
        assert_eq!(std::fs::read(case.join("kvform.hcl")).unwrap(), std::fs::read(example.join("kvform.hcl")).unwrap());
    }
}
