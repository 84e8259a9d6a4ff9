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
