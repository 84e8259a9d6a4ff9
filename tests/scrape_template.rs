//! `_prometheus/scrape.yaml.tpl` rendered when the catalog is built (maand
//! `promconfig/scrape_template.go`), on the quickstart with frontend as the Prometheus
//! server: the plan shows the rendered configs, a secret the template read is masked in every
//! plan output, and errors name the template's file:line and the key.

mod quickstart_copy;

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

fn failed(dir: &Path, args: &[&str]) -> String {
    let o = kvform(dir, args);
    assert!(!o.status.success(), "{args:?} succeeded: {}", String::from_utf8_lossy(&o.stdout));
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `kv set` of the database password, the value on stdin.
fn set_secret(dir: &Path, value: &str) {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_kvform"))
        .arg("-C")
        .arg(dir)
        .args(["kv", "set", "secrets/job/database", "admin_password", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(value.as_bytes()).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// `plan -json` of a plan that fails: the document on stdout, `errored`.
fn plan_json(dir: &Path) -> serde_json::Value {
    let o = kvform(dir, &["plan", "-json"]);
    assert!(!o.status.success(), "the plan succeeded: {}", String::from_utf8_lossy(&o.stdout));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["errored"], true, "{v}");
    v
}

const TEMPLATE: &str = r#"- job_name: {{ .Job }}
  metrics_path: {{ get "vars/job/api" "base_path" }}/metrics
  basic_auth:
    username: app
    password: "{{ get "secrets/job/database" "admin_password" }}"
  static_configs:
    - targets: ["maand:port/api_http"]
"#;

#[test]
fn the_scrape_template_is_rendered_into_the_catalog_with_secrets_masked() {
    let dir = quickstart_copy::quickstart_copy();
    let d = dir.path();
    std::fs::write(d.join("workspace/jobs/frontend/prometheus.yml"), "global: {}\n").unwrap();
    ok(d, &["apply", "--auto-approve"]);
    let pw = ok(d, &["kv", "get", "secrets/job/database", "admin_password", "--reveal"]).trim().to_string();
    assert!(pw.len() >= 16);

    let prom = d.join("workspace/jobs/api/_prometheus");
    std::fs::write(prom.join("scrape.yaml.tpl"), TEMPLATE).unwrap();
    // Both files: an error, as in maand.
    let err = failed(d, &["plan"]);
    assert!(err.contains("job api has both workspace/jobs/api/_prometheus/scrape.yaml and"), "{err}");
    std::fs::remove_file(prom.join("scrape.yaml")).unwrap();

    let plan = ok(d, &["plan"]);
    assert!(!plan.contains(&pw), "{plan}");
    assert!(plan.contains("maand/prometheus  scrape/api = (sensitive)"), "{plan}");
    assert!(plan.contains("maand/prometheus  scrape_configs = (sensitive)"), "{plan}");
    let json = ok(d, &["plan", "--json"]);
    assert!(!json.contains(&pw), "{json}");
    ok(d, &["apply", "--auto-approve"]);
    // The catalog holds the rendered config (the value Prometheus needs, as maand writes it).
    let stored = ok(d, &["kv", "get", "maand/prometheus", "scrape/api"]);
    assert!(stored.contains("\"metrics_path\":\"/api/v1/metrics\""), "{stored}");
    assert!(stored.contains(&pw), "{stored}");
    // Rendered from the same values, the next plan has nothing to do.
    let again = ok(d, &["plan"]);
    assert!(again.contains("No changes."), "{again}");
    // A secret it reads changes (the workspace does not): the incremental plan renders again.
    set_secret(d, "rotated-password-1234");
    let plan = ok(d, &["plan"]);
    assert!(plan.contains("~ maand/prometheus  scrape/api = (sensitive)"), "{plan}");
    assert!(!plan.contains("rotated-password-1234"), "{plan}");
    set_secret(d, &pw);

    // A template change shows as a change of the masked keys, never the value.
    std::fs::write(prom.join("scrape.yaml.tpl"), TEMPLATE.replace("username: app", "username: ops")).unwrap();
    let plan = ok(d, &["plan"]);
    assert!(!plan.contains(&pw), "{plan}");
    assert!(plan.contains("scrape/api = (sensitive)"), "{plan}");
    // A saved plan holds no value of the masked keys; applying it writes the rendered one.
    ok(d, &["plan", "--out", "p.plan"]);
    assert!(!String::from_utf8_lossy(&std::fs::read(d.join("p.plan")).unwrap()).contains(&pw));
    ok(d, &["apply", "p.plan"]);
    let stored = ok(d, &["kv", "get", "maand/prometheus", "scrape/api"]);
    assert!(stored.contains("\"username\":\"ops\"") && stored.contains(&pw), "{stored}");
}

#[test]
fn scrape_template_errors_name_the_file_line_and_key() {
    let dir = quickstart_copy::quickstart_copy();
    let d = dir.path();
    std::fs::write(d.join("workspace/jobs/frontend/prometheus.yml"), "global: {}\n").unwrap();
    let prom = d.join("workspace/jobs/api/_prometheus");
    std::fs::remove_file(prom.join("scrape.yaml")).unwrap();
    std::fs::write(
        prom.join("scrape.yaml.tpl"),
        "- job_name: x\n  metrics_path: {{ get \"vars/job/api\" \"nope\" }}\n",
    )
    .unwrap();
    let err = failed(d, &["plan"]);
    assert!(err.contains("--> workspace/jobs/api/_prometheus/scrape.yaml.tpl:2:20"), "{err}");
    assert!(err.contains("vars/job/api has no key \"nope\""), "{err}");
    assert!(err.contains("help:") && err.contains("1 scrape template did not render"), "{err}");
    // `plan -json`: the same error in the diagnostics list, in Terraform's shape, with the
    // template's file and the range from the failing action to the end of its line.
    let json = plan_json(d);
    let first = &json["diagnostics"][0];
    assert_eq!(first["severity"], "error", "{json}");
    assert!(first["summary"].as_str().unwrap().contains("vars/job/api has no key \"nope\""), "{json}");
    assert!(first["detail"].as_str().unwrap().starts_with("help: "), "{json}");
    assert_eq!(
        first["range"],
        serde_json::json!({
            "filename": "workspace/jobs/api/_prometheus/scrape.yaml.tpl",
            "start": { "line": 2, "column": 20, "byte": 33 },
            "end": { "line": 2, "column": 48, "byte": 61 }
        }),
        "{json}"
    );
    // A parse error: at the end of the text for an action never closed.
    std::fs::write(prom.join("scrape.yaml.tpl"), "- job_name: x\n  metrics_path: {{ get \"vars/job/api\"\n").unwrap();
    let json = plan_json(d);
    let first = &json["diagnostics"][0];
    assert_eq!(first["summary"], "unclosed action", "{json}");
    assert_eq!(first["range"]["filename"], "workspace/jobs/api/_prometheus/scrape.yaml.tpl", "{json}");
    assert_eq!(first["range"]["start"]["line"], 3, "{json}");
    // A namespace outside the build-time scope.
    std::fs::write(prom.join("scrape.yaml.tpl"), "{{ get \"maand/worker\" \"x\" }}").unwrap();
    let err = failed(d, &["plan"]);
    assert!(err.contains("scrape.yaml.tpl:1:4") && err.contains("may not read maand/worker"), "{err}");
    // Rendered text that is not a scrape file: the diagnostic points into the rendered text.
    std::fs::write(
        prom.join("scrape.yaml.tpl"),
        "- job_name: {{ .Job }}\n  static_configs:\n    - targets: [\"maand:port/nope\"]\n",
    )
    .unwrap();
    let err = failed(d, &["plan"]);
    assert!(err.contains("scrape.yaml.tpl (rendered)"), "{err}");
    assert!(err.contains("`maand:port/nope`"), "{err}");
    assert!(err.contains("`kvform render` shows job templates") && !err.contains("kvform validate"), "{err}");
    let json = plan_json(d);
    let first = &json["diagnostics"][0];
    assert!(first["summary"].as_str().unwrap().contains("`maand:port/nope`"), "{json}");
    assert_eq!(first["range"]["filename"], "workspace/jobs/api/_prometheus/scrape.yaml.tpl (rendered)", "{json}");
    assert_eq!(first["range"]["start"]["line"], 1, "{json}");
}
