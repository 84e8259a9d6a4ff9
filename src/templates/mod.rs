//! maand's templates (SPEC §12): files ending in `.tpl` under `workspace/jobs/<job>/`,
//! rendered per active allocation with Go `text/template` (maand `deploy/templates.go`), and
//! a job's `_prometheus/scrape.yaml.tpl`, rendered with a job-level context and a smaller
//! function set (maand `promconfig/scrape_template.go`).
//!
//! The engine is `gtmpl-ng`, a port of Go's `text/template` (actions, pipelines, variables,
//! `define`/`template`, trim markers, Go's built-ins). Its template functions are plain `fn`
//! pointers with no room for a context argument, so the render's context (who renders, what
//! it may read, the store) is installed in a thread-local for the length of one render —
//! the engine does the same with its own limits.
//!
//! Pure: values come from a [`Reader`] the caller supplies (the current state for `kvform
//! render`, the apply's write transaction during `apply`); nothing here touches a file.
//!
//! Reads obey the hook access table (`crate::hooks::access::readable`): a template of
//! allocation (job J, host H) reads what J's hooks on H may read, and a scrape template reads
//! maand's build-time set (bucket, `vars/bucket`, J's job namespaces and those of the jobs J
//! demands). A denied namespace or a missing key is an error naming the template, its line
//! and column and the key; `getOptional` gives `""` for a missing key.

mod funcs;
mod prom;

pub use crate::model::catalog::Prometheus;
use gtmpl_ng::{Context, Template};
use gtmpl_value_ng::Value;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// The store as a template reads it: plaintext values (secrets opened), derived keys
/// resolved.
pub trait Reader {
    /// The live value of a key, `None` when it has none.
    fn get(&self, ns: &str, key: &str) -> Result<Option<String>, String>;
    /// The live keys of a namespace, sorted.
    fn keys(&self, ns: &str) -> Result<Vec<String>, String>;
}

/// maand's dot context of a job template (`deploy.AllocationData`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    pub allocation_id: String,
    pub job: String,
    pub current_version: String,
    pub new_version: String,
    pub worker_ip: String,
    pub worker_id: String,
    pub labels: Vec<String>,
    /// `/opt/worker/<bucket_id>` (maand's path on the worker).
    pub bucket_path: String,
    /// `/opt/worker/<bucket_id>/jobs/<job>`.
    pub job_path: String,
}

impl Allocation {
    fn value(&self) -> Value {
        let s = |v: &str| Value::String(v.to_string());
        let mut m = HashMap::new();
        m.insert("AllocationID".to_string(), s(&self.allocation_id));
        m.insert("Job".to_string(), s(&self.job));
        m.insert("CurrentVersion".to_string(), s(&self.current_version));
        m.insert("NewVersion".to_string(), s(&self.new_version));
        m.insert("WorkerIP".to_string(), s(&self.worker_ip));
        m.insert("WorkerID".to_string(), s(&self.worker_id));
        m.insert("Labels".to_string(), Value::Array(self.labels.iter().map(|l| s(l)).collect()));
        m.insert("BucketPath".to_string(), s(&self.bucket_path));
        m.insert("JobPath".to_string(), s(&self.job_path));
        Value::Object(m)
    }
}

/// Who renders: an allocation's job template, or a job's build-time scrape template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// A job template of allocation (job, host); `upstreams` are the jobs it demands.
    Allocation { job: String, host: String, upstreams: Vec<String> },
    /// `_prometheus/scrape.yaml.tpl` of a job (no worker: `get`, `getSecret`, `keys` only).
    Scrape { job: String, upstreams: Vec<String> },
}

impl Scope {
    fn job(&self) -> &str {
        match self {
            Scope::Allocation { job, .. } | Scope::Scrape { job, .. } => job,
        }
    }

    /// Whether this render may read `ns`; the refusal says why.
    fn check_read(&self, ns: &str) -> Result<(), String> {
        match self {
            Scope::Allocation { job, host, upstreams } => {
                crate::hooks::access::readable(job, host, upstreams, ns).map_err(|d| d.message)
            }
            Scope::Scrape { job, upstreams } => {
                let own = [
                    "maand/bucket".to_string(),
                    "vars/bucket".to_string(),
                    format!("maand/job/{job}"),
                    format!("vars/bucket/job/{job}"),
                    format!("vars/job/{job}"),
                    format!("secrets/job/{job}"),
                ];
                let upstream = |u: &String| {
                    [format!("maand/job/{u}"), format!("vars/job/{u}"), format!("secrets/job/{u}")]
                        .contains(&ns.to_string())
                };
                if own.iter().any(|o| o == ns) || upstreams.iter().any(upstream) {
                    return Ok(());
                }
                Err(format!(
                    "the scrape template of job {job} may not read {ns}: it is rendered when the catalog is built, \
                     with the bucket's namespaces, its job's and those of the jobs it demands (no worker namespaces)"
                ))
            }
        }
    }
}

/// A rendered file, with the secret values it read (to mask them wherever it is shown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub text: String,
    pub secrets: Vec<String>,
}

impl Rendered {
    /// The text with every secret value it read replaced by `(sensitive)`.
    pub fn masked(&self) -> String {
        let mut t = self.text.clone();
        let mut secrets: Vec<&String> = self.secrets.iter().filter(|s| !s.is_empty()).collect();
        // Longest first, so a secret that contains another is masked whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        for s in secrets {
            t = t.replace(s.as_str(), "(sensitive)");
        }
        t
    }
}

/// A template that did not parse or render: `file:line:col: what`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template {file}: {message}")]
pub struct TemplateError {
    /// The template's path as the user knows it (`workspace/jobs/api/config.json.tpl`).
    pub file: String,
    pub message: String,
}

/// What the functions of one render see.
struct Env {
    scope: Scope,
    reader: Rc<dyn Reader>,
    /// What `scrapeConfigs` and `ruleFiles` read besides the KV.
    catalog: Rc<Prometheus>,
    /// Secret values read so far.
    secrets: Vec<String>,
    /// The first error a function met, with its own wording (the engine's message for a
    /// failed function call is generic).
    error: Option<String>,
}

thread_local! {
    static ENV: RefCell<Option<Env>> = const { RefCell::new(None) };
}

/// Clears the thread's render context however the render ends.
struct Installed;
impl Drop for Installed {
    fn drop(&mut self) {
        ENV.with(|e| e.borrow_mut().take());
    }
}

/// Render `text` (the template at `file`) for `scope`, with `dot` as the dot context.
fn render_with(
    file: &str,
    text: &str,
    scope: Scope,
    dot: Value,
    reader: Rc<dyn Reader>,
    catalog: Rc<Prometheus>,
) -> Result<Rendered, TemplateError> {
    let fail = |message: String| TemplateError { file: file.to_string(), message };
    let mut tmpl = Template::default();
    tmpl.name = file.to_string();
    let scrape = matches!(scope, Scope::Scrape { .. });
    tmpl.add_funcs(if scrape { funcs::SCRAPE } else { funcs::JOB });
    tmpl.parse(text).map_err(|e| fail(parse_message(&strip_name(file, &e.to_string()))))?;
    ENV.with(|e| *e.borrow_mut() = Some(Env { scope, reader, catalog, secrets: Vec::new(), error: None }));
    let _installed = Installed;
    let out = tmpl.render(&Context::from(dot));
    let (secrets, error) = ENV.with(|e| {
        e.borrow_mut().as_mut().map(|e| (std::mem::take(&mut e.secrets), e.error.take())).unwrap_or_default()
    });
    match out {
        Ok(text) => Ok(Rendered { text, secrets }),
        Err(e) => {
            let engine = strip_name(file, &e.to_string());
            // The position comes from the engine, the reason from the function that failed.
            let message = match error {
                Some(reason) => format!("{}: {reason}", position(&engine).unwrap_or(engine.clone())),
                None => engine,
            };
            Err(fail(message))
        }
    }
}

/// The `line:col` the engine's message starts with, if any.
fn position(msg: &str) -> Option<String> {
    let mut parts = msg.splitn(3, ':');
    let (line, col) = (parts.next()?, parts.next()?);
    (line.trim().parse::<usize>().is_ok() && col.trim().parse::<usize>().is_ok())
        .then(|| format!("{}:{}", line.trim(), col.trim()))
}

/// The parser says `line:col:len:what`; the user reads `line:col: what`.
fn parse_message(msg: &str) -> String {
    let parts: Vec<&str> = msg.splitn(4, ':').collect();
    match parts.as_slice() {
        [line, col, len, what] if [line, col, len].iter().all(|n| n.trim().parse::<usize>().is_ok()) => {
            format!("{line}:{col}: {}", what.trim())
        }
        _ => msg.to_string(),
    }
}

/// The engine prefixes messages with `template: <name>:`; the error names the file itself.
fn strip_name(file: &str, msg: &str) -> String {
    let msg = msg.strip_prefix("template: ").unwrap_or(msg);
    msg.strip_prefix(file).and_then(|m| m.strip_prefix(':')).unwrap_or(msg).trim().to_string()
}

/// Render a job template for one active allocation (maand `transpile`); `catalog` is what
/// `scrapeConfigs` and `ruleFiles` read besides the KV (`Desired::prometheus`).
pub fn render_job(
    file: &str,
    text: &str,
    alloc: &Allocation,
    upstreams: &[String],
    reader: Rc<dyn Reader>,
    catalog: Rc<Prometheus>,
) -> Result<Rendered, TemplateError> {
    let scope =
        Scope::Allocation { job: alloc.job.clone(), host: alloc.worker_ip.clone(), upstreams: upstreams.to_vec() };
    render_with(file, text, scope, alloc.value(), reader, catalog)
}

/// Render a job's `_prometheus/scrape.yaml.tpl` (maand `RenderScrapeTemplate`): the dot has
/// `.Job`, `.CurrentVersion` and `.NewVersion` (both the job's version).
pub fn render_scrape(
    file: &str,
    text: &str,
    job: &str,
    version: &str,
    upstreams: &[String],
    reader: Rc<dyn Reader>,
) -> Result<Rendered, TemplateError> {
    let mut m = HashMap::new();
    m.insert("Job".to_string(), Value::String(job.to_string()));
    m.insert("CurrentVersion".to_string(), Value::String(version.to_string()));
    m.insert("NewVersion".to_string(), Value::String(version.to_string()));
    let scope = Scope::Scrape { job: job.to_string(), upstreams: upstreams.to_vec() };
    render_with(file, text, scope, Value::Object(m), reader, Rc::default())
}

#[cfg(test)]
mod tests;
