//! `kvform render` (SPEC §12) on the quickstart, whose `api` job ships `config.json.tpl`:
//! per active allocation, against the current state, secrets masked unless `--reveal`,
//! `--out` in maand's staged layout with private modes, and errors that name the template's
//! file:line and the key.

#[path = "pg_support/mod.rs"]
mod pg_support;
mod quickstart_copy;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

fn kvform(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kvform")).arg("-C").arg(dir).args(args).env("NO_COLOR", "1").output().unwrap()
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let o = kvform(dir, args);
    assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

fn password(dir: &Path) -> String {
    ok(dir, &["kv", "get", "secrets/job/database", "admin_password", "--reveal"]).trim().to_string()
}

#[test]
fn renders_each_active_allocation_against_the_state() {
    let dir = quickstart_copy::quickstart_copy();
    let d = dir.path();
    ok(d, &["apply", "--auto-approve"]);
    let out = ok(d, &["render"]);
    let pw = password(d);
    assert!(pw.len() >= 16, "the bootstrap hook made a password");
    assert!(!out.contains(&pw), "secrets are masked when printed:\n{out}");
    // Two active api allocations, in fleet order; values from every readable layer.
    let first = out.find("# 10.0.0.1/jobs/api/config.json\n").expect(&out);
    let second = out.find("# 10.0.0.2/jobs/api/config.json\n").expect(&out);
    assert!(first < second);
    for want in [
        "\"listen\": \"10.0.0.1:30000\"",
        "\"listen\": \"10.0.0.2:30000\"",
        "\"base_path\": \"/api/v1\"",
        "\"workers\": 4",
        "\"peers\": \"10.0.0.2\"",         // derived key of the allocation namespace
        "\"database\": \"10.0.0.1:5432\"", // an upstream job's namespace (api demands database)
        "\"database_password\": \"(sensitive)\"",
        "\"version\": \"1.4.0\"",
    ] {
        assert!(out.contains(want), "{want} missing:\n{out}");
    }
    // Deterministic.
    assert_eq!(out, ok(d, &["render"]));

    let revealed = ok(d, &["render", "--job", "api", "--worker", "10.0.0.2", "--reveal"]);
    assert!(revealed.contains(&format!("\"database_password\": \"{pw}\"")), "{revealed}");
    assert!(!revealed.contains("10.0.0.1/jobs/api"), "only the worker asked for: {revealed}");

    // --out: maand's staged layout, real values, private modes, nothing printed.
    let staged = tempfile::tempdir().unwrap();
    let o = kvform(d, &["render", "--out", staged.path().to_str().unwrap()]);
    assert!(o.status.success() && o.stdout.is_empty(), "{}", String::from_utf8_lossy(&o.stderr));
    let file = staged.path().join("10.0.0.1/jobs/api/config.json");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains(&pw) && text.contains("\"listen\": \"10.0.0.1:30000\""), "{text}");
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    let jobdir = staged.path().join("10.0.0.1/jobs/api");
    assert_eq!(std::fs::metadata(&jobdir).unwrap().permissions().mode() & 0o777, 0o700);
    assert!(!staged.path().join("10.0.0.3").exists(), "frontend has no templates, api no allocation there");
}

#[test]
fn errors_name_the_template_line_and_key() {
    let dir = quickstart_copy::quickstart_copy();
    let d = dir.path();
    ok(d, &["apply", "--auto-approve"]);
    let tpl = d.join("workspace/jobs/api/conf/extra.ini.tpl");
    std::fs::create_dir_all(tpl.parent().unwrap()).unwrap();

    std::fs::write(&tpl, "a = 1\nb = {{ get \"vars/job/api\" \"nope\" }}\n").unwrap();
    let o = kvform(d, &["render", "--job", "api"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("template workspace/jobs/api/conf/extra.ini.tpl: 2:"), "{err}");
    assert!(err.contains("vars/job/api has no key \"nope\""), "{err}");
    assert!(err.contains("(allocations api@10.0.0.1, api@10.0.0.2)"), "one line for both: {err}");
    // The other templates still render.
    assert!(String::from_utf8_lossy(&o.stdout).contains("# 10.0.0.1/jobs/api/config.json"));

    // A namespace the allocation's hooks may not read (frontend does not demand api's
    // neighbours): denied like the hook API, not read.
    std::fs::write(&tpl, "x = {{ get \"vars/job/frontend\" \"anything\" }}\n").unwrap();
    let err = String::from_utf8(kvform(d, &["render", "--job", "api"]).stderr).unwrap();
    assert!(err.contains("1:") && err.contains("may not read vars/job/frontend"), "{err}");

    // getOptional gives "" for a missing key.
    std::fs::write(&tpl, "x = [{{ getOptional \"vars/job/api\" \"nope\" }}]\n").unwrap();
    assert!(ok(d, &["render", "--job", "api"]).contains("x = []"));

    // A .tpl that cannot be read is an error, never a template left out.
    std::fs::remove_file(&tpl).unwrap();
    std::os::unix::fs::symlink(d.join("missing-target"), &tpl).unwrap();
    let o = kvform(d, &["render"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot read workspace/jobs/api/conf/extra.ini.tpl"));
}

#[test]
fn unknown_job_or_worker_is_an_error() {
    let dir = quickstart_copy::quickstart_copy();
    let d = dir.path();
    ok(d, &["apply", "--auto-approve"]);
    let o = kvform(d, &["render", "--job", "apii"]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("api"));
    let o = kvform(d, &["render", "--worker", "10.9.9.9"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("no worker `10.9.9.9` in workspace/workers.json"), "{err}");
    assert!(err.contains("help: pass a host as it appears there: 10.0.0.1, 10.0.0.2, 10.0.0.3"), "{err}");
    // A typo beside a good host writes nothing into --out.
    let out = d.join("staged");
    let o = kvform(d, &["render", "--worker", "10.0.0.1", "--worker", "10.9.9.9", "--out", out.to_str().unwrap()]);
    assert!(!o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!out.exists(), "nothing rendered before the unknown worker was refused");
}

/// `apply` renders a job's templates after its namespaces are written and before its hooks,
/// into `data/stage/<host>/jobs/<job>/` (private), and the hooks find it in
/// `KVFORM_STAGE_DIR`; a template that fails fails its job like a failed hook.
#[test]
fn apply_stages_templates_for_the_hooks() {
    let dir = quickstart_copy::quickstart_copy();
    let d = dir.path();
    let manifest = d.join("workspace/jobs/api/manifest.json");
    let mut m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    m["commands"]["command_stage"] = serde_json::json!({ "executed_on": ["pre_deploy"] });
    std::fs::write(&manifest, serde_json::to_string_pretty(&m).unwrap()).unwrap();
    std::fs::write(
        d.join("workspace/jobs/api/_modules/command_stage.py"),
        "import json, os\nimport kvform_hook as kv\n\
ip = os.environ['ALLOCATION_IP']\n\
path = os.path.join(os.environ['KVFORM_STAGE_DIR'], ip, 'jobs', 'api', 'config.json')\n\
kv.put('staged/' + ip, json.load(open(path))['listen'])\n",
    )
    .unwrap();
    ok(d, &["apply", "--auto-approve"]);
    for (ip, listen) in [("10.0.0.1", "10.0.0.1:30000"), ("10.0.0.2", "10.0.0.2:30000")] {
        let got = ok(d, &["kv", "get", "vars/job/api", &format!("staged/{ip}")]);
        assert_eq!(got.trim(), listen, "the pre_deploy hook read its staged file");
    }
    let staged = d.join("data/stage/10.0.0.1/jobs/api/config.json");
    let text = std::fs::read_to_string(&staged).unwrap();
    assert!(text.contains(&password(d)), "the staged file holds the real secret: {text}");
    assert_eq!(std::fs::metadata(&staged).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::metadata(d.join("data/stage/10.0.0.1")).unwrap().permissions().mode() & 0o777, 0o700);
    // Nothing of it in the logs.
    let logs =
        String::from_utf8(Command::new("grep").arg("-r").arg(password(d)).arg(d.join("logs")).output().unwrap().stdout)
            .unwrap();
    assert!(logs.is_empty(), "{logs}");

    // A failing template fails the job (its checkpoint rolled back), with file:line.
    std::fs::write(d.join("workspace/jobs/api/broken.conf.tpl"), "{{ get \"vars/job/api\" \"nope\" }}").unwrap();
    m["version"] = serde_json::json!("1.4.1"); // a new version: api rolls out again
    std::fs::write(&manifest, serde_json::to_string_pretty(&m).unwrap()).unwrap();
    let o = kvform(d, &["apply", "--auto-approve"]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned() + &String::from_utf8_lossy(&o.stdout);
    assert!(!o.status.success(), "{err}");
    assert!(err.contains("workspace/jobs/api/broken.conf.tpl: 1:"), "{err}");
}

/// `plan --render`: each rendered file's line diff against the last apply's render, secrets
/// masked on both sides, and a value a hook writes during this apply `(known after apply)`.
#[test]
fn plan_render_shows_the_rendered_diff() {
    let dir = quickstart_copy::quickstart_copy();
    let d = dir.path();
    ok(d, &["apply", "--auto-approve"]);
    assert!(d.join("data/render/10.0.0.1/jobs/api/config.json").is_file());
    let same = ok(d, &["plan", "--render"]);
    assert!(same.contains("No changes to rendered files."), "{same}");

    // A template edit alone rolls nothing out; the review shows what the file would hold.
    // database_url is written by api's own post_deploy hook (vars.hcl does not declare it).
    let tpl = d.join("workspace/jobs/api/config.json.tpl");
    let text = std::fs::read_to_string(&tpl).unwrap();
    let text = text.replace(
        "  \"version\":",
        "  \"url\": \"{{ getOptional \"vars/job/api\" \"database_url\" }}\",\n  \"version\":",
    );
    std::fs::write(&tpl, &text).unwrap();
    let out = ok(d, &["plan", "--render"]);
    assert!(out.contains("      +   \"url\": \"postgres://app@10.0.0.1:5432/app\",\n"), "{out}");

    // A new version rolls api out: its hooks run again, so what they write is unknown now.
    let manifest = d.join("workspace/jobs/api/manifest.json");
    std::fs::write(&manifest, std::fs::read_to_string(&manifest).unwrap().replace("\"1.4.0\"", "\"1.4.1\"")).unwrap();
    let out = ok(d, &["plan", "--render"]);
    let pw = password(d);
    assert!(!out.contains(&pw), "{out}");
    assert!(out.contains("  ~ 10.0.0.1/jobs/api/config.json\n"), "{out}");
    assert!(out.contains("      -   \"version\": \"1.4.0\",\n"), "{out}");
    assert!(out.contains("      +   \"version\": \"1.4.1\",\n"), "{out}");
    assert!(out.contains("+   \"url\": \"(known after apply)\","), "api's hooks run in this apply: {out}");
    assert!(out.contains("\"database_password\": \"(sensitive)\""), "{out}");
    assert!(out.contains("Templates: 0 new, 2 changed, 0 no longer rendered."), "{out}");
    // Deterministic, like the plan itself.
    assert_eq!(out, ok(d, &["plan", "--render"]));
}

/// `scrapeConfigs` and `ruleFiles` (maand `promconfig/scrape_deploy.go`,
/// `rule_files_deploy.go`): frontend becomes the bucket's Prometheus server by shipping
/// `prometheus.yml.tpl`; api's scrape item comes out of the catalog with its `maand:job` and
/// `maand:port/api_http` placeholders expanded over api's active allocations, in yaml.v3's
/// layout, both in `kvform render` and in the file `apply` stages.
#[test]
fn scrape_configs_and_rule_files_expand_the_catalog() {
    let dir = quickstart_copy::quickstart_copy();
    let d = dir.path();
    let tpl = "global:\n  scrape_interval: 15s\nscrape_configs:\n  - job_name: self\n    static_configs:\n      \
               - targets: ['{{ .WorkerIP }}:9090']\n{{- scrapeConfigs }}\n{{ ruleFiles }}";
    std::fs::write(d.join("workspace/jobs/frontend/prometheus.yml.tpl"), tpl).unwrap();
    let alerts = d.join("workspace/jobs/api/_prometheus/alerts");
    std::fs::create_dir_all(alerts.join("more")).unwrap();
    std::fs::write(alerts.join("slo.yaml"), "groups: []\n").unwrap();
    std::fs::write(alerts.join("more/errors.yml"), "groups: []\n").unwrap();
    std::fs::write(alerts.join("README.md"), "not a rule file\n").unwrap();
    ok(d, &["apply", "--auto-approve"]);
    let want = "global:\n  scrape_interval: 15s\nscrape_configs:\n  - job_name: self\n    static_configs:\n      \
                - targets: ['10.0.0.2:9090']\n  - job_name: api\n    metrics_path: /metrics\n    \
                scrape_interval: 15s\n    static_configs:\n      - targets:\n          - 10.0.0.1:30000\n          \
                - 10.0.0.2:30000\nrule_files:\n  - rules/api/errors.yml\n  - rules/api/slo.yaml\n";
    let out = ok(d, &["render", "--job", "frontend", "--worker", "10.0.0.2"]);
    assert_eq!(out, format!("# 10.0.0.2/jobs/frontend/prometheus.yml\n{want}"));
    let staged = std::fs::read_to_string(d.join("data/stage/10.0.0.2/jobs/frontend/prometheus.yml")).unwrap();
    assert_eq!(staged, want);
}

/// The last apply's render is in the shared state: a second checkout (a CI runner: the
/// repository and the bucket key, no `data/`) sharing the state diffs `plan --render` against
/// it — a line diff, not a whole new file — on SQLite and on PostgreSQL.
fn plan_render_from_a_second_checkout(state_block: Option<String>) {
    let dir = quickstart_copy::quickstart_copy();
    let d = dir.path();
    let hcl = d.join("kvform.hcl");
    let shared = match state_block {
        Some(block) => block,
        None => format!("state {{\n  path = \"{}\"\n}}\n", d.join("data/kvform.db").display()),
    };
    let text = std::fs::read_to_string(&hcl).unwrap().replace("state {\n  path = \"data/kvform.db\"\n}\n", &shared);
    assert!(text.contains(&shared), "{text}");
    let pg = !text.contains("path = ");
    std::fs::write(&hcl, text).unwrap();
    if pg {
        ok(d, &["init"]); // creates the bucket on PostgreSQL and writes its id into kvform.hcl
    }
    ok(d, &["apply", "--auto-approve"]);
    let pw = password(d);

    // The runner: kvform.hcl (as the apply left it), the workspace and the key; no data/.
    let ci = tempfile::tempdir().unwrap();
    let c = ci.path();
    std::fs::copy(&hcl, c.join("kvform.hcl")).unwrap();
    std::fs::create_dir_all(c.join("secrets")).unwrap();
    std::fs::set_permissions(c.join("secrets"), std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::copy(d.join("secrets/kv.key"), c.join("secrets/kv.key")).unwrap();
    let copied = std::process::Command::new("cp").arg("-r").arg(d.join("workspace")).arg(c).status().unwrap();
    assert!(copied.success());
    assert!(!c.join("data/render").exists());
    let same = ok(c, &["plan", "--render"]);
    assert!(same.contains("No changes to rendered files."), "{same}");

    let manifest = c.join("workspace/jobs/api/manifest.json");
    std::fs::write(&manifest, std::fs::read_to_string(&manifest).unwrap().replace("\"1.4.0\"", "\"1.4.1\"")).unwrap();
    let out = ok(c, &["plan", "--render"]);
    assert!(out.contains("  ~ 10.0.0.1/jobs/api/config.json\n"), "{out}");
    assert!(!out.contains("  + 10.0.0.1/jobs/api/config.json"), "a line diff, not a new file: {out}");
    assert!(out.contains("      -   \"version\": \"1.4.0\",\n"), "{out}");
    assert!(out.contains("      +   \"version\": \"1.4.1\",\n"), "{out}");
    assert!(out.contains("Templates: 0 new, 2 changed, 0 no longer rendered."), "{out}");
    assert!(!out.contains(&pw), "{out}");
}

#[test]
fn plan_render_diffs_against_the_render_in_the_shared_state() {
    plan_render_from_a_second_checkout(None);
}

#[test]
fn plan_render_diffs_against_the_render_in_the_shared_state_on_postgres() {
    if pg_support::pg_url("plan_render_diffs_against_the_render_in_the_shared_state_on_postgres").is_none() {
        return;
    }
    let schema = format!("kvr_{}", &uuid::Uuid::new_v4().simple().to_string()[..16]);
    let _drop = pg_support::DropRegistry(schema.clone());
    let block = format!(
        "state {{\n  backend = \"postgres\"\n  url_env = \"KVFORM_TEST_PG_URL\"\n  schema  = \"{schema}\"\n}}\n"
    );
    plan_render_from_a_second_checkout(Some(block));
}

/// A job whose hook fails is rolled back with its render: the state keeps the render of the
/// last apply that succeeded, so `plan --render` still shows the change (the files staged on
/// disk by the failed attempt are not what the workers run).
#[test]
fn a_failed_job_keeps_its_previous_render_in_the_state() {
    let dir = quickstart_copy::quickstart_copy();
    let d = dir.path();
    ok(d, &["apply", "--auto-approve"]);
    let manifest = d.join("workspace/jobs/api/manifest.json");
    std::fs::write(&manifest, std::fs::read_to_string(&manifest).unwrap().replace("\"1.4.0\"", "\"1.4.1\"")).unwrap();
    let hook = d.join("workspace/jobs/api/_modules/command_connect.py");
    let text = std::fs::read_to_string(&hook).unwrap();
    std::fs::write(&hook, format!("import sys\nsys.exit('failing on purpose')\n{text}")).unwrap();
    let o = kvform(d, &["apply", "--auto-approve"]);
    assert!(!o.status.success(), "api's post_deploy fails");
    let staged = std::fs::read_to_string(d.join("data/stage/10.0.0.1/jobs/api/config.json")).unwrap();
    assert!(staged.contains("\"version\": \"1.4.1\""), "the failed attempt rendered: {staged}");
    let out = ok(d, &["plan", "--render"]);
    assert!(out.contains("      -   \"version\": \"1.4.0\",\n"), "{out}");
    assert!(out.contains("      +   \"version\": \"1.4.1\",\n"), "{out}");
}
