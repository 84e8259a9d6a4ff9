//! The typed, validated workspace: what `workspace::load` produces and `model::desired`
//! consumes. Everything here has passed the rules of SPEC §2; spans are kept so later
//! stages (ports, resources, the dependency graph) can point at the lines responsible.

use crate::diag::{Span, Spanned};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// A loaded, validated workspace. The files it was read from stay in
/// [`super::Loaded::sources`].
#[derive(Clone)]
pub struct Workspace {
    /// The bucket root (the directory holding `kvform.hcl` and `workspace/`).
    pub root: PathBuf,
    pub settings: Settings,
    /// Workers in file order (fleet order is computed by the model from `position`).
    pub workers: Vec<Worker>,
    pub disabled: Disabled,
    /// `bucket.conf` attributes in file order, values converted (including the port pool).
    pub bucket_vars: Vec<Var>,
    pub port_pool: PortPool,
    /// Blocks of the bucket.jobs file chosen by `job_config_selector`, by job name.
    pub job_configs: BTreeMap<String, JobConfig>,
    /// Jobs by name (directories under `workspace/jobs/` that hold a `manifest.json`).
    pub jobs: BTreeMap<String, Job>,
    /// The bucket CA's certificate (`secrets/ca.crt`), when the bucket has one (SPEC §8).
    pub ca: Option<CaCert>,
}

/// The public half of the bucket CA, as read from `secrets/ca.crt` (the private key is only
/// read by `apply` when it issues certificates).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaCert {
    /// The PEM text, trimmed.
    pub pem: String,
}

/// `kvform.hcl`.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub job_config_selector: String,
    pub max_versions: u32,
    /// `state { … }`: where the state is (SQLite file or PostgreSQL bucket).
    pub state: crate::state::StateConfig,
    /// Per hook invocation, seconds. Default 600 (`"10m"`).
    pub hook_timeout_secs: u64,
    /// 0 = ephemeral loopback port.
    pub api_port: u16,
    /// `limits { max_file_size }`: a larger workspace file is refused unread. Default 64 MiB.
    pub max_file_size: u64,
    /// Validity of issued certificates, days (`certs_ttl`, default 60).
    pub certs_ttl_days: u32,
    /// Re-issue a certificate this many days before it expires (`certs_renewal_days`, default 15).
    pub certs_renewal_days: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            job_config_selector: String::new(),
            max_versions: 10,
            state: crate::state::StateConfig::default(),
            hook_timeout_secs: 600,
            api_port: 0,
            max_file_size: crate::workspace::source::DEFAULT_MAX_FILE_SIZE,
            certs_ttl_days: 60,
            certs_renewal_days: 15,
        }
    }
}

/// One entry of `workers.json`, normalised.
#[derive(Debug, Clone, PartialEq)]
pub struct Worker {
    /// Trimmed, non-empty, unique.
    pub host: String,
    pub hostname: Option<String>,
    /// Lowercased, trimmed, de-duplicated, always containing `worker`; in the order
    /// written with `worker` appended when it was not written.
    pub labels: Vec<String>,
    /// Capacity in MB, `None` when not declared.
    pub memory_mb: Option<f64>,
    /// Capacity in MHz, `None` when not declared.
    pub cpu_mhz: Option<f64>,
    /// Keys and values trimmed, case kept.
    pub tags: BTreeMap<String, String>,
    /// Explicit `position`, if written.
    pub position: Option<i64>,
    /// Index in the `workers.json` array.
    pub index: usize,
    /// The worker's object in `workers.json`.
    pub span: Span,
}

/// `disabled.json`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Disabled {
    pub jobs: BTreeMap<String, DisabledJob>,
    pub workers: Vec<Spanned<String>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DisabledJob {
    /// Span of the job's key in `disabled.json`.
    pub span: Span,
    /// Empty = the whole job is disabled.
    pub allocations: Vec<Spanned<String>>,
}

/// One HCL attribute converted to its store value (SPEC §2 bucket.conf conversion).
#[derive(Debug, Clone, PartialEq)]
pub struct Var {
    pub name: String,
    pub value: String,
    /// What the HCL value is (number, bool, list/object → json, else string).
    pub kv_type: crate::kv::KvType,
    /// The whole attribute (`name = value`).
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortPool {
    pub min: u16,
    pub max: u16,
}

impl Default for PortPool {
    fn default() -> Self {
        PortPool { min: 30000, max: 39999 }
    }
}

/// One `job "<name>" { … }` block of the chosen bucket.jobs file.
#[derive(Debug, Clone, PartialEq)]
pub struct JobConfig {
    pub job: String,
    /// Reservation overrides, already unit-parsed.
    pub memory_mb: Option<Spanned<f64>>,
    pub cpu_mhz: Option<Spanned<f64>>,
    /// Every attribute of the block, in file order (memory/cpu included, as written).
    pub vars: Vec<Var>,
    /// The block header (`job "api"`).
    pub span: Span,
}

/// `jobs/<job>/manifest.json` (+ `vars.hcl`, + the scripts found in `_modules/`).
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub name: String,
    /// Trimmed, as written; `None` when absent (store value `0.0.0`).
    pub version: Option<Spanned<String>>,
    /// Lowercased; default `[<name>]`.
    pub selectors: Vec<String>,
    pub memory: Option<Bounds>,
    pub cpu: Option<Bounds>,
    /// In manifest order.
    pub ports: Vec<PortSpec>,
    /// By full command name (`command_…`).
    pub commands: BTreeMap<String, Command>,
    /// >= 1, default 1.
    pub max_concurrent_upgrades: u32,
    /// 0 = all at once (default).
    pub max_concurrent_starts: u32,
    /// Default 0.
    pub min_allocations_count: u32,
    /// `vars.hcl` attributes in file order.
    pub vars: Vec<Var>,
    /// `certs.<name>` declarations, by name order.
    pub certs: Vec<CertDecl>,
    /// `_prometheus/scrape.yaml`, when the job ships one (or its rendered
    /// `scrape.yaml.tpl`, once the catalog rendered it).
    pub scrape: Option<Scrape>,
    /// `_prometheus/scrape.yaml.tpl`, when the job ships one (rendered at plan time).
    pub scrape_template: Option<ScrapeTemplate>,
    /// The job is a Prometheus server: it ships `prometheus.yml` or `prometheus.yml.tpl` in
    /// its directory (maand's `hasPrometheusServerJob`, the catalog's gate, SPEC §8).
    pub prometheus_server: bool,
    /// Alert rule files: paths under `_prometheus/alerts/` ending in `.yaml` or `.yml`,
    /// sorted (what the templates' `ruleFiles` lists).
    pub alert_files: Vec<String>,
    /// The whole manifest document; used for diagnostics about the job as a whole.
    pub span: Span,
}

/// The key algorithm of a declared certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum KeyType {
    EcdsaP256,
    Ed25519,
    Rsa2048,
    Rsa4096,
}

impl KeyType {
    pub const ALL: [KeyType; 4] = [KeyType::EcdsaP256, KeyType::Ed25519, KeyType::Rsa2048, KeyType::Rsa4096];

    pub fn as_str(self) -> &'static str {
        match self {
            KeyType::EcdsaP256 => "ecdsa-p256",
            KeyType::Ed25519 => "ed25519",
            KeyType::Rsa2048 => "rsa-2048",
            KeyType::Rsa4096 => "rsa-4096",
        }
    }

    pub fn parse(s: &str) -> Option<KeyType> {
        KeyType::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// One `certs.<name>` entry of a manifest (SPEC §8).
#[derive(Debug, Clone, PartialEq)]
pub struct CertDecl {
    /// Matches the job name pattern; the keys are `certs/<name>.crt` and `certs/<name>.key`.
    pub name: String,
    /// `subject.common_name`; the job name when absent.
    pub common_name: String,
    /// PKCS#8 `PRIVATE KEY` PEM; otherwise the traditional form (PKCS#1 / SEC1).
    pub pkcs8: bool,
    /// One certificate shared by every allocation of the job.
    pub one: bool,
    pub key_type: KeyType,
    /// The `certs.<name>` property.
    pub span: Span,
}

/// A job's `_prometheus/scrape.yaml.tpl`, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScrapeTemplate {
    /// `workspace/jobs/<job>/_prometheus/scrape.yaml.tpl`.
    pub shown: String,
    pub text: String,
}

/// A job's `_prometheus/scrape.yaml`: a list of Prometheus scrape configs, placeholders
/// (`maand:job`, `maand:port/<name>`) kept as written.
#[derive(Debug, Clone, PartialEq)]
pub struct Scrape {
    /// The items as compact JSON objects with keys sorted (maand's encoding).
    pub items: Vec<String>,
    /// The first item's `job_name`, as written.
    pub first_job_name: String,
    /// Some `static_configs[].targets[]` entry uses `maand:port/…`.
    pub uses_port_placeholder: bool,
}

impl Job {
    /// A job with every manifest default (SPEC §2): selectors `[<name>]`, no bounds, no
    /// ports or commands, one upgrade at a time, all starts at once, no minimum count.
    pub fn with_defaults(name: &str, span: Span) -> Job {
        Job {
            name: name.to_string(),
            version: None,
            selectors: vec![name.to_string()],
            memory: None,
            cpu: None,
            ports: Vec::new(),
            commands: BTreeMap::new(),
            max_concurrent_upgrades: 1,
            max_concurrent_starts: 0,
            min_allocations_count: 0,
            vars: Vec::new(),
            certs: Vec::new(),
            scrape: None,
            scrape_template: None,
            prometheus_server: false,
            alert_files: Vec::new(),
            span,
        }
    }
}

/// Resource bounds, MB or MHz. `min` alone in the manifest means `max = min`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bounds {
    pub min: f64,
    pub max: f64,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PortSpec {
    pub name: String,
    /// `Some` for a fixed port, `None` for `{}` (assigned from the pool).
    pub fixed: Option<u16>,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Event {
    PostBuild,
    PreDeploy,
    PostDeploy,
    HealthCheck,
    Cli,
    /// Once per rollout batch on its first allocation (maand: replaces the runner's
    /// start/restart), and per removed allocation with `TARGET=stop`.
    JobControl,
    /// On each allocation of a rollout batch, after its `job_control`.
    AfterAllocationStarted,
    /// On each removed allocation, before its namespace is tombstoned.
    AfterAllocationStopped,
}

impl Event {
    pub const ALL: [Event; 8] = [
        Event::PostBuild,
        Event::PreDeploy,
        Event::PostDeploy,
        Event::HealthCheck,
        Event::Cli,
        Event::JobControl,
        Event::AfterAllocationStarted,
        Event::AfterAllocationStopped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Event::PostBuild => "post_build",
            Event::PreDeploy => "pre_deploy",
            Event::PostDeploy => "post_deploy",
            Event::HealthCheck => "health_check",
            Event::Cli => "cli",
            Event::JobControl => "job_control",
            Event::AfterAllocationStarted => "after_allocation_started",
            Event::AfterAllocationStopped => "after_allocation_stopped",
        }
    }

    pub fn parse(s: &str) -> Option<Event> {
        Event::ALL.into_iter().find(|e| e.as_str() == s)
    }
}

impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    /// Full name, `command_` prefix included.
    pub name: String,
    pub executed_on: Vec<Event>,
    pub demands: Option<Demand>,
    /// The single script in `_modules/`, relative to the bucket root
    /// (`workspace/jobs/<job>/_modules/<command>.py`).
    pub script: PathBuf,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Demand {
    pub job: String,
    pub command: String,
    /// Raw `config` object as compact canonical JSON (`{}` when absent); handed to hooks
    /// through `GET /demands`.
    pub config_json: String,
    pub min_version: Option<Spanned<String>>,
    pub max_version: Option<Spanned<String>>,
    /// The `demands` object.
    pub span: Span,
    /// The `demands.job` value (where an unknown job is reported).
    pub job_span: Span,
    /// The `demands.command` value (where an unknown command is reported).
    pub command_span: Span,
}
