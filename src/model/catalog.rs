//! The build-written namespaces of SPEC §8, projected from the workspace like the rest of the
//! desired KV (pure):
//!
//! - `maand/prometheus`, built only when some job is a Prometheus server (ships
//!   `prometheus.yml` or `prometheus.yml.tpl`; maand `promconfig/catalog.go` 35-41, 208-216):
//!   `scrape/<job>` (every job with a `_prometheus/scrape.yaml`), `scrape_jobs` /
//!   `scrape_jobs_length` (the jobs counted: a job whose targets use `maand:port/…` and that
//!   has no active allocation has nothing to scrape and is left out), `scrape_configs` (the
//!   items of the counted jobs, in job name order). Written for every bucket: without a
//!   server job or scrape files `[]`, `""`, `0`.
//! - `maand/job/<job>` `job_name`: the job's name for every job (maand
//!   `build/build_variables.go` 360); with a server job, a scrape file's first item's
//!   `job_name` (`maand:job` → the job's name) replaces it (`promconfig/catalog.go` 159-170).
//!   Written by `super::project` with the job's other keys ([`job_name`]).
//! - [`Prometheus`]: what the job templates' `scrapeConfigs` and `ruleFiles` read besides the
//!   KV (maand reads them from its database: `job_ports`, allocations, `job_files`).
//! - `maand/worker` `certs/ca.crt`: the CA certificate, when the bucket has one.
//! - `maand/job/<job>/worker/<host>` `certs/<name>.spec`: the certificate declaration, and
//!   [`DesiredCerts`]: which certificate every non-removed allocation must hold. The
//!   certificate and key values are decided by the plan (the state holds them) and made by
//!   `apply`, never here.

use super::types::{AllocState, Allocation, DesiredCert, DesiredCerts};
use crate::certs::{IssueRequest, sans_for, spec_value};
use crate::kv::{KvMap, NamespaceKind};
use crate::workspace::scrape::JOB_PLACEHOLDER;
use crate::workspace::types::{Job, Worker, Workspace};
use std::collections::BTreeMap;

/// What `scrapeConfigs` and `ruleFiles` (job templates, maand `promconfig/scrape_deploy.go`,
/// `rule_files_deploy.go`) read besides the KV, per job of the workspace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prometheus {
    /// Every job of the workspace, by name.
    pub jobs: BTreeMap<String, PromJob>,
    /// `(job, path under _prometheus/alerts/)` of every alert file (`.yaml`/`.yml`), sorted
    /// (maand `ListPrometheusAlertFiles`: job name, then path).
    pub alert_files: Vec<(String, String)>,
    /// The job named `prometheus` is a Prometheus server (maand's `ruleFiles` gate,
    /// `JobHasPrometheusServerConfig(tx, "prometheus")`).
    pub prometheus_job_is_server: bool,
}

/// One job, as the scrape expansion sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PromJob {
    /// The manifest's port names with their assigned numbers (`None`: not assigned, the job
    /// has no active allocation).
    pub ports: BTreeMap<String, Option<u16>>,
    /// Hosts of the active allocations, fleet order (maand `GetActiveAllocations`).
    pub active_hosts: Vec<String>,
    /// The scrape file's items (compact JSON, placeholders as written), when it has one: the
    /// source of `scrapeConfigs` when the KV catalog lists no job (maand
    /// `renderScrapeConfigsFromWorkspace`).
    pub scrape: Option<Vec<String>>,
}

/// [`Prometheus`] of a workspace, given the assigned ports and the allocations.
pub fn prometheus_facts(ws: &Workspace, ports: &BTreeMap<String, u16>, allocations: &[Allocation]) -> Prometheus {
    let mut out = Prometheus {
        prometheus_job_is_server: ws.jobs.get("prometheus").is_some_and(|j| j.prometheus_server),
        ..Prometheus::default()
    };
    for job in ws.jobs.values() {
        let active_hosts = allocations
            .iter()
            .filter(|a| a.job == job.name && a.state == AllocState::Active)
            .map(|a| a.host.clone())
            .collect();
        let ports = job.ports.iter().map(|p| (p.name.clone(), ports.get(&p.name).copied())).collect();
        let scrape = job.scrape.as_ref().map(|s| s.items.clone());
        out.jobs.insert(job.name.clone(), PromJob { ports, active_hosts, scrape });
        out.alert_files.extend(job.alert_files.iter().map(|f| (job.name.clone(), f.clone())));
    }
    out
}

pub fn project(ws: &Workspace, _fleet: &[&Worker], allocations: &[Allocation], kv: &mut KvMap) -> DesiredCerts {
    prometheus(ws, allocations, kv);
    if let Some(ca) = &ws.ca {
        kv.entry(NamespaceKind::Workers.path()).or_default().insert("certs/ca.crt".into(), ca.pem.as_str().into());
    }
    certificates(ws, allocations, kv)
}

/// Whether the workspace has a Prometheus server job (the catalog's gate).
pub fn has_prometheus_server(ws: &Workspace) -> bool {
    ws.jobs.values().any(|j| j.prometheus_server)
}

/// `maand/job/<job>` `job_name`: the job's name, or with a Prometheus server job in the
/// workspace its scrape file's first `job_name` (`maand:job` → the job's name).
pub fn job_name(job: &Job, server: bool) -> &str {
    match job.scrape.as_ref().filter(|_| server) {
        Some(s) if s.first_job_name != JOB_PLACEHOLDER => s.first_job_name.as_str(),
        _ => job.name.as_str(),
    }
}

fn prometheus(ws: &Workspace, allocations: &[Allocation], kv: &mut KvMap) {
    let mut counted: Vec<&str> = Vec::new();
    let mut items: Vec<&str> = Vec::new();
    let mut ns = std::collections::BTreeMap::new();
    let server = has_prometheus_server(ws);
    for job in ws.jobs.values().filter(|_| server) {
        let Some(scrape) = &job.scrape else { continue };
        ns.insert(format!("scrape/{}", job.name), format!("[{}]", scrape.items.join(",")).into());
        let active = allocations.iter().any(|a| a.job == job.name && a.state == AllocState::Active);
        if scrape.uses_port_placeholder && !active {
            continue;
        }
        counted.push(&job.name);
        items.extend(scrape.items.iter().map(String::as_str));
    }
    ns.insert("scrape_configs".into(), format!("[{}]", items.join(",")).into());
    ns.insert("scrape_jobs".into(), counted.join(",").into());
    ns.insert("scrape_jobs_length".into(), counted.len().to_string().into());
    kv.insert(NamespaceKind::Prometheus.path(), ns);
}

fn certificates(ws: &Workspace, allocations: &[Allocation], kv: &mut KvMap) -> DesiredCerts {
    let mut out = DesiredCerts {
        ca_pem: ws.ca.as_ref().map(|c| c.pem.clone()),
        ca_pending: false,
        renewal_days: ws.settings.certs_renewal_days,
        certs: Vec::new(),
        unreadable_keys: Default::default(),
    };
    for job in ws.jobs.values().filter(|j| !j.certs.is_empty()) {
        // Allocations are sorted by job, then fleet order.
        let placed: Vec<&str> = allocations
            .iter()
            .filter(|a| a.job == job.name && a.state != AllocState::Removed)
            .map(|a| a.host.as_str())
            .collect();
        for host in &placed {
            let ns = NamespaceKind::Allocation { job: job.name.clone(), host: host.to_string() }.path();
            for decl in &job.certs {
                let sans = if decl.one { sans_for(placed.iter().copied()) } else { sans_for([*host]) };
                if let Some(keys) = kv.get_mut(&ns) {
                    keys.insert(format!("certs/{}.spec", decl.name), spec_value(decl).into());
                }
                out.certs.push(DesiredCert {
                    job: job.name.clone(),
                    host: host.to_string(),
                    namespace: ns.clone(),
                    one: decl.one,
                    request: IssueRequest {
                        name: decl.name.clone(),
                        common_name: decl.common_name.clone(),
                        key_type: decl.key_type,
                        pkcs8: decl.pkcs8,
                        sans,
                        ttl_days: ws.settings.certs_ttl_days,
                    },
                });
            }
        }
    }
    out.certs.sort_by(|a, b| (&a.namespace, &a.request.name).cmp(&(&b.namespace, &b.request.name)));
    out
}

/// Live values of the state a scrape template may read (namespace → key → plaintext),
/// read by the caller before the plan (the model reads no state): `scrape_namespaces`.
#[derive(Debug, Clone, Default)]
pub struct StateValues {
    pub values: BTreeMap<String, BTreeMap<String, String>>,
    /// Why `secrets/*` could not be read (the bucket key is missing on this machine).
    pub secrets_unavailable: Option<String>,
}

/// The namespaces the scrape templates of `ws` may read (maand
/// `BuildScrapeTemplateNamespaces`: the bucket's, the job's and those of the jobs it demands),
/// given each job's upstreams; empty when no job has a `scrape.yaml.tpl`.
pub fn scrape_namespaces(ws: &Workspace, upstreams: &BTreeMap<String, Vec<String>>) -> Vec<String> {
    let mut out = std::collections::BTreeSet::new();
    for job in ws.jobs.values().filter(|j| j.scrape_template.is_some()) {
        out.extend(readable(&job.name, upstreams.get(&job.name).map(Vec::as_slice).unwrap_or_default()));
    }
    out.into_iter().collect()
}

/// The namespaces job `j`'s scrape template may read.
fn readable(j: &str, upstreams: &[String]) -> Vec<String> {
    let mut out = vec!["maand/bucket".to_string(), "vars/bucket".to_string()];
    out.extend([format!("maand/job/{j}"), format!("vars/bucket/job/{j}"), format!("vars/job/{j}")]);
    out.push(format!("secrets/job/{j}"));
    for u in upstreams {
        out.extend([format!("maand/job/{u}"), format!("vars/job/{u}"), format!("secrets/job/{u}")]);
    }
    out
}

/// What a scrape template reads: the desired keys where the model projected the namespace
/// (this plan's values, as maand renders after syncing the build's variables), else the
/// state; `secrets/*` and the keys hooks wrote into `vars/job/<job>` (not declared) from the
/// state.
struct ScrapeReader {
    desired: BTreeMap<String, BTreeMap<String, String>>,
    state: StateValues,
}

impl crate::templates::Reader for ScrapeReader {
    fn get(&self, ns: &str, key: &str) -> Result<Option<String>, String> {
        if crate::kv::is_secret_namespace(ns)
            && let Some(why) = &self.state.secrets_unavailable
        {
            return Err(why.clone());
        }
        let state = || self.state.values.get(ns).and_then(|m| m.get(key)).cloned();
        Ok(match self.desired.get(ns) {
            Some(m) => match m.get(key) {
                Some(v) => Some(v.clone()),
                None if ns.starts_with("vars/job/") => state(),
                None => None,
            },
            None => state(),
        })
    }

    fn keys(&self, ns: &str) -> Result<Vec<String>, String> {
        let mut names: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
        let state = self.state.values.get(ns).into_iter().flat_map(|m| m.keys().cloned());
        match self.desired.get(ns) {
            Some(m) => {
                names.extend(m.keys().cloned());
                if ns.starts_with("vars/job/") {
                    names.extend(state);
                }
            }
            None => names.extend(state),
        }
        Ok(names.into_iter().collect())
    }
}

/// Render every job's `_prometheus/scrape.yaml.tpl` (maand `RenderScrapeTemplate`) against
/// `desired` (built without them) and the state's `values`: (job, rendered) in job order, or
/// every template's error.
pub fn render_scrape_templates(
    ws: &Workspace,
    desired: &super::types::Desired,
    values: &StateValues,
) -> Result<Vec<(String, crate::templates::Rendered)>, Vec<crate::templates::TemplateError>> {
    let (mut out, mut errors) = (Vec::new(), Vec::new());
    for job in ws.jobs.values() {
        let Some(t) = &job.scrape_template else { continue };
        let Some(dj) = desired.jobs.get(&job.name) else { continue };
        let readable = readable(&job.name, &dj.upstreams);
        let pick = |m: &crate::kv::KvMap| -> BTreeMap<String, BTreeMap<String, String>> {
            readable
                .iter()
                .filter_map(|ns| {
                    m.get(ns).map(|keys| (ns.clone(), keys.iter().map(|(k, v)| (k.clone(), v.to_string())).collect()))
                })
                .collect()
        };
        let state = StateValues {
            values: readable.iter().filter_map(|ns| values.values.get(ns).map(|m| (ns.clone(), m.clone()))).collect(),
            secrets_unavailable: values.secrets_unavailable.clone(),
        };
        let reader = std::rc::Rc::new(ScrapeReader { desired: pick(&desired.kv), state });
        match crate::templates::render_scrape(&t.shown, &t.text, &job.name, &dj.version, &dj.upstreams, reader) {
            Ok(r) => out.push((job.name.clone(), r)),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() { Ok(out) } else { Err(errors) }
}

/// Keys of the build-written namespaces (`maand/prometheus`) whose value holds a secret a
/// scrape template read (as written, or JSON-escaped inside an item): shown `(sensitive)`.
pub fn sensitive_keys(kv: &crate::kv::KvMap, secrets: &[String]) -> std::collections::BTreeSet<(String, String)> {
    let mut needles: Vec<String> = Vec::new();
    for s in secrets.iter().filter(|s| !s.is_empty()) {
        needles.push(s.clone());
        let json = serde_json::to_string(s).unwrap_or_default();
        needles.push(json.trim_matches('"').to_string());
    }
    let mut out = std::collections::BTreeSet::new();
    let ns = NamespaceKind::Prometheus.path();
    for (key, v) in kv.get(&ns).into_iter().flatten() {
        let text = v.to_string();
        if needles.iter().any(|n| !n.is_empty() && text.contains(n.as_str())) {
            out.insert((ns.clone(), key.clone()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixture::WsBuilder;
    use crate::model::types::Prior;
    use crate::workspace::types::ScrapeTemplate;

    fn template(text: &str) -> Workspace {
        let mut ws = WsBuilder::new()
            .worker("10.0.0.1", &["api"])
            .job("api")
            .version("api", "2.0.0")
            .port("api", "api_metrics", None)
            .job_var("api", "path", "/metrics")
            .build();
        let shown = "workspace/jobs/api/_prometheus/scrape.yaml.tpl".to_string();
        ws.jobs.get_mut("api").unwrap().scrape_template = Some(ScrapeTemplate { shown, text: text.into() });
        ws
    }

    fn state() -> StateValues {
        let ns = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        StateValues {
            values: BTreeMap::from([
                ("vars/job/api".to_string(), ns(&[("path", "/old"), ("hook_key", "from-a-hook")])),
                ("secrets/job/api".to_string(), ns(&[("pw", "s3cret")])),
                ("maand/job/api".to_string(), ns(&[("version", "1.0.0")])),
            ]),
            secrets_unavailable: None,
        }
    }

    // promconfig/scrape_template_test.go TestRenderScrapeTemplate, through the catalog's
    // reader: this plan's values where the model projects them, the state for the rest.
    #[test]
    fn scrape_templates_read_the_plan_over_the_state() {
        let tpl = r#"- job_name: {{ get "maand/job/api" "job_name" }}
  metrics_path: {{ get "vars/job/api" "path" }}
  labels: {hook: {{ get "vars/job/api" "hook_key" }}, v: {{ get "maand/job/api" "version" }}, n: {{ .NewVersion }}}
  basic_auth: {password: {{ getSecret "pw" }}}
  keys: [{{ join (keys "vars/job/api") "," }}]"#;
        let ws = template(tpl);
        let desired = crate::model::desired(&ws, &Prior::default()).unwrap();
        let out = render_scrape_templates(&ws, &desired, &state()).unwrap();
        assert_eq!(out.len(), 1);
        let (job, r) = &out[0];
        assert_eq!(job, "api");
        assert_eq!(
            r.text,
            "- job_name: api\n  metrics_path: /metrics\n  labels: {hook: from-a-hook, v: 2.0.0, n: 2.0.0}\n  \
             basic_auth: {password: s3cret}\n  keys: [hook_key,path]"
        );
        assert_eq!(r.secrets, ["s3cret"]);
        // The catalog keys holding the secret are masked, as written or JSON-escaped.
        let mut kv = crate::kv::KvMap::new();
        kv.entry("maand/prometheus".into()).or_default().insert("scrape/api".into(), r#"[{"p":"s3cret"}]"#.into());
        kv.entry("maand/prometheus".into()).or_default().insert("scrape_jobs".into(), "api".into());
        let masked = sensitive_keys(&kv, &r.secrets);
        assert_eq!(
            masked.into_iter().collect::<Vec<_>>(),
            [("maand/prometheus".to_string(), "scrape/api".to_string())]
        );
    }

    #[test]
    fn scrape_template_errors_and_a_missing_key_file() {
        let ws = template("a\n{{ get \"vars/job/api\" \"nope\" }}");
        let desired = crate::model::desired(&ws, &Prior::default()).unwrap();
        let e = render_scrape_templates(&ws, &desired, &state()).unwrap_err();
        assert!(
            e[0].to_string().starts_with("template workspace/jobs/api/_prometheus/scrape.yaml.tpl: 2:"),
            "{}",
            e[0]
        );
        assert!(e[0].message.contains("vars/job/api has no key \"nope\""), "{}", e[0]);
        let ws = template("{{ getSecret \"pw\" }}");
        let no_key = StateValues { secrets_unavailable: Some("the bucket key is missing".into()), ..state() };
        let e = render_scrape_templates(&ws, &desired, &no_key).unwrap_err();
        assert!(e[0].message.contains("the bucket key is missing"), "{}", e[0]);
    }
}
