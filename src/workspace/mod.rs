//! Workspace discovery and parsing (SPEC §2).
//!
//! [`load`] reads every file of a bucket's workspace, reports **every** problem it can
//! find (not just the first) and returns the typed, validated [`types::Workspace`] only
//! when there are no errors. HCL goes through hcl-rs's `hcl::edit` parser so attributes
//! and blocks keep their spans; JSON goes through jsonc-parser's AST so every value has
//! a range, not only syntax errors.
//!
//! Files:
//! - [`hcl_files`]: `kvform.hcl`, `bucket.conf`, `bucket.jobs[.<env>].conf`, `vars.hcl`.
//! - [`json_files`]: `workers.json`, `disabled.json`, `jobs/<job>/manifest.json` and the
//!   scripts in `_modules/`.
//! - [`source`]: reading one file as text into the source map (shared by both).
//! - [`scrape`]: `jobs/<job>/_prometheus/scrape.yaml` (YAML); [`ca`]: `secrets/ca.crt`.
//! - [`checks`]: rules that span files (bucket-wide port names, demands that point at
//!   other jobs, bucket.jobs blocks for unknown jobs, reservations within bounds).

pub mod ca;
pub mod checks;
pub mod format;
pub mod hcl_files;
pub mod json_files;
pub mod scrape;
pub mod source;
pub mod templates;
pub mod types;
pub mod units;

use crate::diag::{Diagnostics, SourceMap};
use std::path::Path;
use types::{Settings, Workspace};

/// What [`load`] returns: the workspace when there were no errors, every diagnostic
/// (warnings included, sorted by file and position), and the sources needed to render them
/// — and any diagnostics later stages produce with spans into these files.
pub struct Loaded {
    pub workspace: Option<Workspace>,
    pub diagnostics: Diagnostics,
    pub sources: SourceMap,
}

/// Load and validate the workspace of the bucket at `root`. Never writes anything.
pub fn load(root: &Path) -> Loaded {
    let mut sources = SourceMap::new();
    let mut diags = Diagnostics::new();
    let settings = hcl_files::settings(root, &mut sources, &mut diags);
    load_rest(root, settings, sources, diags)
}

/// [`load`] with `kvform.hcl` already parsed (the CLI session parses it once per command).
pub fn load_with_settings(root: &Path, settings: &Settings) -> Loaded {
    load_rest(root, settings.clone(), SourceMap::new(), Diagnostics::new())
}

fn load_rest(root: &Path, settings: Settings, mut sources: SourceMap, mut diags: Diagnostics) -> Loaded {
    sources.set_max_file_size(settings.max_file_size);
    check_workspace_dir(root, &mut diags);
    let (bucket_vars, port_pool) = hcl_files::bucket_conf(root, &mut sources, &mut diags);
    let job_configs = hcl_files::bucket_jobs(root, &settings.job_config_selector, &mut sources, &mut diags);
    let workers = json_files::workers(root, &mut sources, &mut diags);
    let disabled = json_files::disabled(root, &mut sources, &mut diags);
    let mut jobs = json_files::jobs(root, &mut sources, &mut diags);
    for job in jobs.values_mut() {
        job.vars = hcl_files::job_vars(root, &job.name, &mut sources, &mut diags);
    }
    load_catalog_files(root, &mut jobs, &mut sources, &mut diags);
    let ca = ca::load(root, &mut sources, &mut diags);

    let ws = Workspace {
        root: root.to_path_buf(),
        settings,
        workers,
        disabled,
        bucket_vars,
        port_pool,
        job_configs,
        jobs,
        ca,
    };
    checks::cross_file(&ws, &mut diags);
    diags.sort(&sources);
    let workspace = (!diags.has_errors()).then_some(ws);
    Loaded { workspace, diagnostics: diags, sources }
}

/// `workspace/` itself: absent is an empty workspace, but one that exists and cannot be
/// listed (a dangling symlink, a file, no permission) would make every file look absent,
/// and the plan would purge every job.
fn check_workspace_dir(root: &Path, diags: &mut Diagnostics) {
    let dir = root.join("workspace");
    let problem = match source::resolve(&dir) {
        Ok(None) => return,
        Ok(Some(meta)) if !meta.is_dir() => source::ReadError::NotRegular(source::kind(&meta)),
        Ok(Some(_)) => match std::fs::read_dir(&dir) {
            Ok(_) => return,
            Err(e) => source::ReadError::Io(e),
        },
        Err(e) => e,
    };
    let what = match &problem {
        source::ReadError::NotRegular(kind) => format!("it is {kind}, not a directory"),
        other => other.to_string(),
    };
    diags.push(
        crate::diag::Diagnostic::error(format!("cannot read workspace: {what}"))
            .in_file("workspace")
            .help("workspace/ must be a directory kvform can list; fix or remove it"),
    );
}

/// Each job's `_prometheus/scrape.yaml`, and whether it is a Prometheus server (SPEC §8; maand
/// `promconfig/catalog.go` 208-216 tests that either file exists).
fn load_catalog_files(
    root: &Path,
    jobs: &mut std::collections::BTreeMap<String, types::Job>,
    sources: &mut SourceMap,
    diags: &mut Diagnostics,
) {
    for job in jobs.values_mut() {
        job.scrape = scrape::load(root, &job.name, &job.ports, sources, diags, &mut job.scrape_template);
        let dir = root.join("workspace/jobs").join(&job.name);
        job.prometheus_server = ["prometheus.yml", "prometheus.yml.tpl"].iter().any(|f| dir.join(f).exists());
        job.alert_files = scrape::alert_files(root, &job.name, diags);
    }
}

/// Where the workspace declares `key` of `ns` — a `vars.hcl` attribute of `vars/job/<job>`,
/// as `workspace/jobs/<job>/vars.hcl:LINE` — or `None`. A write there from any door (`kv
/// set`, the REST API, the web UI, a hook) is reverted by the next apply, which writes the
/// workspace's value back: the doors say so. A file that cannot be read declares nothing
/// here (validate and plan report it).
pub fn declared_var(root: &Path, ns: &str, key: &str) -> Option<String> {
    let job = ns.strip_prefix("vars/job/")?;
    if job.contains('/') {
        return None;
    }
    declared_vars(root, job).into_iter().find(|(name, _)| name == key).map(|(_, at)| at)
}

/// Every key `workspace/jobs/<job>/vars.hcl` declares, with where ([`declared_var`] for a
/// whole job: the hook API reads them once per apply).
pub fn declared_vars(root: &Path, job: &str) -> Vec<(String, String)> {
    let (mut sources, mut diags) = (crate::diag::SourceMap::new(), crate::diag::Diagnostics::new());
    let vars = hcl_files::job_vars(root, job, &mut sources, &mut diags);
    vars.iter()
        .map(|v| {
            let (line, _) = sources.line_col(v.span.file, v.span.start);
            (v.name.clone(), format!("workspace/jobs/{job}/vars.hcl:{line}"))
        })
        .collect()
}

/// The warning a door gives for a write to a key the workspace declares at `at`.
pub fn declared_warning(ns: &str, key: &str, at: &str) -> String {
    format!(
        "{ns} {key} is declared by the workspace ({at}): the next apply writes the workspace's value back; change it there to keep it"
    )
}

/// The warning a door gives for a delete of a key the workspace declares at `at`: the
/// deletion stands until the next apply, which writes the workspace's value back.
pub fn declared_delete_warning(ns: &str, key: &str, at: &str) -> String {
    format!(
        "{ns} {key} is declared by the workspace ({at}): the next apply writes the workspace's value back; remove it there to keep it deleted"
    )
}
