//! maand's own template tests, ported (`deploy/templates_test.go`,
//! `deploy/templates_funcs_test.go`, `deploy/templates_secret_test.go`,
//! `promconfig/scrape_template_test.go`): the same templates, values and expectations, over
//! an in-memory reader.

use super::*;
use std::collections::BTreeMap;

#[derive(Default)]
struct Mem(BTreeMap<(String, String), String>);

impl Mem {
    fn with(pairs: &[(&str, &str, &str)]) -> Rc<dyn Reader> {
        Rc::new(Mem(pairs.iter().map(|(n, k, v)| ((n.to_string(), k.to_string()), v.to_string())).collect()))
    }
}

impl Reader for Mem {
    fn get(&self, ns: &str, key: &str) -> Result<Option<String>, String> {
        Ok(self.0.get(&(ns.to_string(), key.to_string())).cloned())
    }
    fn keys(&self, ns: &str) -> Result<Vec<String>, String> {
        Ok(self.0.keys().filter(|(n, _)| n == ns).map(|(_, k)| k.clone()).collect())
    }
}

fn alloc(job: &str, host: &str) -> Allocation {
    Allocation {
        allocation_id: "a1".into(),
        job: job.into(),
        current_version: "0.0.0".into(),
        new_version: "1.2.0".into(),
        worker_ip: host.into(),
        worker_id: "w1".into(),
        labels: vec!["db".into(), "worker".into()],
        bucket_path: "/opt/worker/b1".into(),
        job_path: format!("/opt/worker/b1/jobs/{job}"),
    }
}

fn render(job: &str, tpl: &str, reader: Rc<dyn Reader>) -> Result<Rendered, TemplateError> {
    render_job(&format!("workspace/jobs/{job}/t.tpl"), tpl, &alloc(job, "10.0.0.1"), &[], reader, Rc::default())
}

fn ok(job: &str, tpl: &str, reader: Rc<dyn Reader>) -> String {
    render(job, tpl, reader).unwrap_or_else(|e| panic!("{e}")).text
}

// deploy/templates_test.go TestTranspile_rendersTemplate
#[test]
fn renders_a_template() {
    assert_eq!(
        ok("app", r#"hello {{ get "vars/job/app" "name" }}"#, Mem::with(&[("vars/job/app", "name", "world")])),
        "hello world"
    );
}

// deploy/templates_test.go TestTranspile_postgresStyleMemoryTemplate
#[test]
fn postgres_style_memory_template() {
    let tpl = r#"{{ define "pgMemUnit" -}}
{{- $mb := int . -}}
{{- if ge $mb 1024 -}}
{{- div $mb 1024 -}}GB
{{- else -}}
{{- $mb -}}MB
{{- end -}}
{{- end }}
{{- $clonefrom := eq (get (printf "maand/worker/%s" .WorkerIP) "postgres_allocation_index") "1" -}}
{{- $memMB := int (get "vars/job/postgres" "memory") -}}
{{- $sharedMB := div $memMB 4 -}}
{{- $cacheMB := div (mul $memMB 3) 4 -}}
{{- $maintMB := min 2048 (div $memMB 16) -}}
{{- $workMB := min 128 (max 4 (div $memMB 64)) -}}
clone_from = {{ $clonefrom }}
shared_buffers = {{ template "pgMemUnit" $sharedMB }}
effective_cache_size = {{ template "pgMemUnit" $cacheMB }}
maintenance_work_mem = {{ $maintMB }}MB
work_mem = {{ $workMB }}MB
"#;
    let reader = Mem::with(&[
        ("vars/job/postgres", "memory", "8192"),
        ("maand/worker/10.0.0.1", "postgres_allocation_index", "1"),
    ]);
    let out = ok("postgres", tpl, reader);
    for want in [
        "clone_from = true",
        "shared_buffers = 2GB",
        "effective_cache_size = 6GB",
        "maintenance_work_mem = 512MB",
        "work_mem = 128MB",
    ] {
        assert!(out.contains(want), "{want:?} missing from:\n{out}");
    }
}

// deploy/templates_funcs_test.go TestTemplateFuncMap_mathAndStringHelpers (+ getSecretAndHelpers)
#[test]
fn math_and_string_helpers() {
    let r = || Mem::with(&[]);
    assert_eq!(ok("app", "{{ add 3 4 }} {{ sub 3 2 }} {{ mul 3 4 }} {{ div 8 4 }}", r()), "7 1 12 2");
    assert_eq!(ok("app", "{{ min 3 8 }} {{ max 3 8 }} {{ add 1 2 }}", r()), "3 8 3");
    assert_eq!(ok("app", r#"{{ index (split "a,b" ",") 1 }} {{ len (split "a,b" ",") }}"#, r()), "b 2");
    assert_eq!(
        ok("app", r#"[{{ trim "  host  " }}] {{ lower "HELLO" }} {{ upper "hello" }}"#, r()),
        "[host] hello HELLO"
    );
    assert_eq!(ok("app", r#"{{ join (split "a,b" ",") "-" }}"#, r()), "a-b");
    assert_eq!(ok("app", r#"{{ int "42" }} {{ int 99 }} {{ int " 7 " }}"#, r()), "42 99 7");
    assert_eq!(
        ok("app", r#"{{ join .Labels "," }} {{ .NewVersion }} {{ .JobPath }}"#, r()),
        "db,worker 1.2.0 /opt/worker/b1/jobs/app"
    );
}

// deploy/templates_funcs_test.go TestTemplateFuncMap_getPanicsOnDisallowedNamespace
#[test]
fn get_refuses_a_namespace_the_allocation_may_not_read() {
    let e =
        render("app", "line one\n{{ get \"vars/job/other\" \"name\" }}", Mem::with(&[("vars/job/other", "name", "x")]))
            .unwrap_err();
    assert_eq!(e.file, "workspace/jobs/app/t.tpl");
    assert!(e.message.starts_with("2:"), "the line of the call: {}", e.message);
    assert!(e.message.contains("may not read vars/job/other"), "{}", e.message);
}

// deploy/templates_funcs_test.go TestTemplateFuncMap_getAndKeys
#[test]
fn get_and_keys() {
    let r = Mem::with(&[("vars/job/app", "name", "maand"), ("vars/job/app", "port", "80")]);
    assert_eq!(
        ok("app", r#"{{ get "vars/job/app" "name" }}|{{ range keys "vars/job/app" }}{{ . }},{{ end }}"#, r),
        "maand|name,port,"
    );
}

// deploy/templates_funcs_test.go TestTemplateFuncMap_getOptional
#[test]
fn get_optional() {
    let r = || Mem::with(&[("vars/job/app", "name", "maand")]);
    assert_eq!(
        ok("app", r#"{{ getOptional "vars/job/app" "name" }}[{{ getOptional "vars/job/app" "missing" }}]"#, r()),
        "maand[]"
    );
    assert!(render("app", r#"{{ getOptional "vars/job/other" "name" }}"#, r()).is_err());
}

#[test]
fn a_missing_key_names_the_key_and_the_line() {
    let e = render("app", "a\nb\n  {{ get \"vars/job/app\" \"nope\" }}", Mem::with(&[])).unwrap_err();
    assert!(e.message.starts_with("3:"), "{}", e.message);
    assert!(e.message.contains("vars/job/app has no key \"nope\""), "{}", e.message);
    assert!(e.to_string().starts_with("template workspace/jobs/app/t.tpl: 3:"), "{e}");
}

#[test]
fn a_parse_error_names_the_file_and_line() {
    let e = render("app", "ok\n{{ if }}", Mem::with(&[])).unwrap_err();
    assert!(e.to_string().contains("workspace/jobs/app/t.tpl"), "{e}");
    assert!(e.message.starts_with("2:") && e.message.ends_with(": missing value for if"), "{}", e.message);
}

// deploy/templates_secret_test.go TestTemplateGetSecret + TestTemplateGetDecryptsSecretsNamespace
#[test]
fn secrets_render_and_are_masked_where_shown() {
    let r = || Mem::with(&[("secrets/job/app", "token", "abc123")]);
    let out = render("app", r#"token={{ getSecret "token" }}"#, r()).unwrap();
    assert_eq!(out.text, "token=abc123");
    assert_eq!(out.masked(), "token=(sensitive)");
    let out = render("app", r#"{{ get "secrets/job/app" "token" }}"#, r()).unwrap();
    assert_eq!(out.text, "abc123");
    assert_eq!(out.secrets, ["abc123"]);
}

#[test]
fn upstream_namespaces_are_readable_only_when_demanded() {
    let r = || Mem::with(&[("vars/job/db", "port", "5432")]);
    let tpl = r#"{{ get "vars/job/db" "port" }}"#;
    let a = alloc("app", "10.0.0.1");
    assert!(render_job("t.tpl", tpl, &a, &[], r(), Rc::default()).is_err());
    assert_eq!(render_job("t.tpl", tpl, &a, &["db".to_string()], r(), Rc::default()).unwrap().text, "5432");
}

// promconfig/scrape_template_test.go: job-level context, build-time functions only
#[test]
fn scrape_template_has_the_job_context_and_build_time_functions() {
    let r = || Mem::with(&[("vars/job/app", "path", "/metrics"), ("secrets/job/app", "pw", "s3")]);
    let tpl = r#"- job_name: {{ .Job }}
  metrics_path: {{ get "vars/job/app" "path" }}
  basic_auth: {password: {{ getSecret "pw" }}}
  version: {{ .NewVersion }}"#;
    let out = render_scrape("workspace/jobs/app/_prometheus/scrape.yaml.tpl", tpl, "app", "1.0.0", &[], r()).unwrap();
    assert_eq!(out.text, "- job_name: app\n  metrics_path: /metrics\n  basic_auth: {password: s3}\n  version: 1.0.0");
    // No worker at build time: no `.WorkerIP`, no worker namespaces, no getOptional.
    let e = render_scrape("s.tpl", r#"{{ get "maand/worker" "x" }}"#, "app", "1", &[], r()).unwrap_err();
    assert!(e.message.contains("no worker namespaces"), "{}", e.message);
    assert!(render_scrape("s.tpl", r#"{{ getOptional "vars/job/app" "x" }}"#, "app", "1", &[], r()).is_err());
}

#[test]
fn the_render_context_is_cleared_after_an_error() {
    let _ = render("app", r#"{{ get "vars/job/app" "nope" }}"#, Mem::with(&[]));
    assert!(ENV.with(|e| e.borrow().is_none()));
    assert_eq!(ok("app", r#"{{ get "vars/job/app" "a" }}"#, Mem::with(&[("vars/job/app", "a", "1")])), "1");
}
