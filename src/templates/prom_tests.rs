//! maand's tests of the Prometheus template functions, ported: `promconfig/scrape_test.go`
//! (the expansion and YAML parts), `promconfig/rule_files_deploy_test.go` and
//! `deploy/templates_prometheus_test.go` (`scrapeConfigs`, `ruleFiles` in a template), over an
//! in-memory reader; plus the exact YAML yaml.v3 writes.

use super::*;
use crate::model::catalog::PromJob;
use crate::templates::{Allocation, Rendered, TemplateError, render_job};
use std::collections::BTreeMap;
use std::rc::Rc;

fn items(yaml: &str) -> Vec<Map<String, Value>> {
    yaml_serde::from_str(yaml).unwrap()
}

const API_PLACEHOLDER: &str = "
- job_name: api
  static_configs:
    - targets:
        - maand:port/api_metrics_port
";

// scrape_test.go TestExpandScrapeConfigs_noActiveAllocations
#[test]
fn no_active_allocation_is_no_targets() {
    let e = expand("api", &items(API_PLACEHOLDER), &["api_metrics_port"], &[("api_metrics_port", 30421)], &[]);
    assert_eq!(e.unwrap_err(), ExpandError::NoTargets);
}

// scrape_test.go TestResolveMetricsPortKey
#[test]
fn implicit_metrics_port() {
    assert_eq!(metrics_port("api", &["api_metrics_port"]).unwrap(), "api_metrics_port");
    assert_eq!(metrics_port("worker", &["metrics_port"]).unwrap(), "metrics_port");
    let e = metrics_port("worker", &["a_metrics_port", "b_metrics_port"]).unwrap_err();
    assert!(e.contains("a_metrics_port, b_metrics_port"), "{e}");
    assert!(metrics_port("worker", &["http"]).is_err());
}

// scrape_test.go TestExpandScrapeConfigs
#[test]
fn port_placeholders_expand_to_every_active_host() {
    let cfg = items(
        "
- job_name: api
  metrics_path: /metrics
  static_configs:
    - targets:
        - maand:port/api_metrics_port
      labels:
        maand_job: api
",
    );
    let out =
        expand("api", &cfg, &["api_metrics_port"], &[("api_metrics_port", 30421)], &["10.0.0.1", "10.0.0.2"]).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0]["static_configs"][0]["targets"], serde_json::json!(["10.0.0.1:30421", "10.0.0.2:30421"]));
    // A pinned host, and the implicit port.
    let pinned = items("- job_name: a\n  static_configs:\n    - targets: [maand:port/_implicit/10.0.0.2]\n");
    let out =
        expand("api", &pinned, &["api_metrics_port"], &[("api_metrics_port", 1)], &["10.0.0.1", "10.0.0.2"]).unwrap();
    assert_eq!(out[0]["static_configs"][0]["targets"], serde_json::json!(["10.0.0.2:1"]));
    let e = expand("api", &pinned, &["api_metrics_port"], &[("api_metrics_port", 1)], &["10.0.0.1"]).unwrap_err();
    assert!(matches!(&e, ExpandError::Invalid(m) if m.contains("\"10.0.0.2\" is not an active allocation")), "{e:?}");
}

// scrape_test.go TestExpandScrapeConfigs_maandJobPlaceholder + TestResolveScrapeJobName
#[test]
fn the_job_placeholder_becomes_the_job_name() {
    let cfg = items(
        "
- job_name: maand:job
  static_configs:
    - targets:
        - 127.0.0.1:9090
      labels:
        maand_job: maand:job
",
    );
    let out = expand("clickhouse_keeper", &cfg, &[], &[], &["10.0.0.1"]).unwrap();
    assert_eq!(out[0]["job_name"], "clickhouse_keeper");
    assert_eq!(out[0]["static_configs"][0]["labels"]["maand_job"], "clickhouse_keeper");
    assert_eq!(resolve_job_name("api", "api"), "api");
    assert_eq!(resolve_job_name("api", "maand:job"), "api");
}

// scrape_test.go TestExpandScrapeConfigs_literalTarget
#[test]
fn literal_targets_are_kept() {
    let cfg = items("- job_name: external\n  static_configs:\n    - targets:\n        - blackbox.internal:9115\n");
    let out = expand("api", &cfg, &[], &[], &[]).unwrap();
    assert_eq!(out[0]["static_configs"][0]["targets"][0], "blackbox.internal:9115");
}

// scrape_test.go TestScrapeConfigsYAML, with the exact text yaml.v3 writes
#[test]
fn the_fragment_is_yaml_v3_indented_after_newlines() {
    let cfg = items("- job_name: api\n  static_configs:\n    - targets:\n        - 10.0.0.1:9090\n");
    let y = configs_yaml(&cfg);
    assert!(y.starts_with('\n'));
    assert_eq!(y, "\n  - job_name: api\n    static_configs:\n      - targets:\n          - 10.0.0.1:9090");
    assert_eq!(configs_yaml(&[]), "");
}

#[test]
fn yaml_keys_in_natural_order_and_scalars_quoted_as_yaml_v3_does() {
    let v = serde_json::json!({
        "z": [], "a10": 1, "a9": {}, "b": {"c": {"d": "x"}}, "n": null, "t": true,
        "s": ["true", "1", "", "1.5", "1:20", "a: b", "#c", "- d", "it's", "ok:1", "x #y", "[::1]:9090", "10.0.0.1:1"]
    });
    assert_eq!(
        to_yaml(&v),
        "a9: {}\na10: 1\nb:\n    c:\n        d: x\n\"n\": null\ns:\n    - \"true\"\n    - \"1\"\n    - \"\"\n    - \"1.5\"\n    \
         - \"1:20\"\n    - 'a: b'\n    - '#c'\n    - '- d'\n    - it's\n    - ok:1\n    - 'x #y'\n    - '[::1]:9090'\n    \
         - 10.0.0.1:1\nt: true\nz: []\n"
    );
    // `n` is a YAML 1.1 bool: yaml.v3 quotes it as a key too (as it writes `"on":`).
    assert_eq!(natural_cmp("job_name", "jobs"), std::cmp::Ordering::Less);
    assert_eq!(natural_cmp("a2", "a10"), std::cmp::Ordering::Less);
    // Numbers as Go's FormatFloat(f, 'g', -1, 64) writes them.
    let nums = serde_json::json!([30, 30.0, 1.5, 0.000015, 1e21, -2.5e-7]);
    assert_eq!(to_yaml(&nums), "- 30\n- 30\n- 1.5\n- 1.5e-05\n- 1e+21\n- -2.5e-07\n");
}

fn catalog() -> Prometheus {
    let mut c = Prometheus::default();
    c.jobs.insert(
        "api".into(),
        PromJob {
            ports: BTreeMap::from([("api_metrics_port".to_string(), Some(30421))]),
            active_hosts: vec!["10.0.0.1".into()],
            scrape: Some(vec![
                r#"{"job_name":"api","static_configs":[{"targets":["maand:port/api_metrics_port"]}]}"#.into(),
            ]),
        },
    );
    c.jobs.insert("prometheus".into(), PromJob::default());
    c
}

#[derive(Default)]
struct Mem(BTreeMap<(String, String), String>);

impl Reader for Mem {
    fn get(&self, ns: &str, key: &str) -> Result<Option<String>, String> {
        Ok(self.0.get(&(ns.to_string(), key.to_string())).cloned())
    }
    fn keys(&self, ns: &str) -> Result<Vec<String>, String> {
        Ok(self.0.keys().filter(|(n, _)| n == ns).map(|(_, k)| k.clone()).collect())
    }
}

fn kv_catalog(jobs: &str) -> Rc<dyn Reader> {
    let unexpanded = r#"[{"job_name":"api","static_configs":[{"targets":["maand:port/api_metrics_port"]}]}]"#;
    Rc::new(Mem(BTreeMap::from([
        (("maand/prometheus".into(), "scrape_jobs".into()), jobs.into()),
        (("maand/prometheus".into(), "scrape/api".into()), unexpanded.into()),
    ])))
}

fn render_prom(tpl: &str, reader: Rc<dyn Reader>, catalog: Prometheus) -> Result<Rendered, TemplateError> {
    let alloc = Allocation {
        allocation_id: "a".into(),
        job: "prometheus".into(),
        current_version: "0.0.0".into(),
        new_version: "1".into(),
        worker_ip: "10.0.0.1".into(),
        worker_id: "w".into(),
        labels: vec![],
        bucket_path: "/opt/worker/b".into(),
        job_path: "/opt/worker/b/jobs/prometheus".into(),
    };
    render_job("workspace/jobs/prometheus/prometheus.yml.tpl", tpl, &alloc, &[], reader, Rc::new(catalog))
}

// templates_prometheus_test.go TestRenderScrapeConfigsYAML_skipsJobWithoutAllocations
#[test]
fn a_job_without_active_allocations_is_left_out() {
    let mut c = catalog();
    c.jobs.get_mut("api").unwrap().active_hosts.clear();
    c.jobs.get_mut("api").unwrap().scrape = None;
    assert_eq!(scrape_configs(kv_catalog("api").as_ref(), &c).unwrap(), "");
}

// templates_prometheus_test.go TestTranspile_scrapeConfigsTemplate
#[test]
fn scrape_configs_in_a_template() {
    let tpl = "global:
  scrape_interval: 15s

scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ['127.0.0.1:9090']
{{ scrapeConfigs }}
";
    let out = render_prom(tpl, kv_catalog("api"), catalog()).unwrap().text;
    assert!(out.contains("job_name: prometheus"), "{out}");
    assert!(out.contains("job_name: api"), "{out}");
    assert!(out.contains("10.0.0.1:30421"), "{out}");
    assert_eq!(
        out,
        "global:\n  scrape_interval: 15s\n\nscrape_configs:\n  - job_name: prometheus\n    static_configs:\n      \
         - targets: ['127.0.0.1:9090']\n\n  - job_name: api\n    static_configs:\n      - targets:\n          \
         - 10.0.0.1:30421\n"
    );
}

// scrape_deploy.go renderScrapeConfigsFromWorkspace: no scrape_jobs in the catalog (no
// Prometheus server job) reads the jobs' scrape files.
#[test]
fn without_a_kv_catalog_the_scrape_files_are_expanded() {
    let out = scrape_configs(kv_catalog("").as_ref(), &catalog()).unwrap();
    assert_eq!(out, "\n  - job_name: api\n    static_configs:\n      - targets:\n          - 10.0.0.1:30421");
}

#[test]
fn scrape_configs_errors_name_the_template_and_line() {
    let r = Rc::new(Mem(BTreeMap::from([(("maand/prometheus".into(), "scrape_jobs".into()), "api".into())])));
    let e = render_prom("a\n{{ scrapeConfigs }}", r, catalog()).unwrap_err();
    assert!(e.to_string().starts_with("template workspace/jobs/prometheus/prometheus.yml.tpl: 2:"), "{e}");
    assert!(e.message.contains("scrapeConfigs: maand/prometheus has no key \"scrape/api\""), "{e}");
    let mut c = catalog();
    c.jobs.get_mut("api").unwrap().ports.insert("api_metrics_port".into(), None);
    let e = render_prom("{{ scrapeConfigs }}", kv_catalog("api"), c).unwrap_err();
    assert!(e.message.contains("port \"api_metrics_port\" has no assigned number"), "{e}");
}

// rule_files_deploy_test.go TestRenderRuleFilesYAML + _empty, and
// templates_prometheus_test.go TestTranspile_ruleFilesTemplate
#[test]
fn rule_files_list_the_alert_files() {
    assert_eq!(rule_files(&Prometheus::default()), "");
    let mut c = Prometheus {
        alert_files: vec![("api".into(), "slo.yaml".into()), ("web".into(), "sub/errors.yaml".into())],
        ..Prometheus::default()
    };
    assert_eq!(rule_files(&c), "rule_files:\n  - rules/api/slo.yaml\n  - rules/web/errors.yaml\n");
    c.prometheus_job_is_server = true;
    c.alert_files.truncate(1);
    let out = render_prom("global:\n  scrape_interval: 15s\n{{ ruleFiles }}\n", Rc::new(Mem::default()), c).unwrap();
    assert_eq!(
        out.text,
        "global:\n  scrape_interval: 15s\nrule_files:\n  - rules/maand/certs.yaml\n  - rules/api/slo.yaml\n\n"
    );
}
