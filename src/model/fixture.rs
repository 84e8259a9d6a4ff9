//! Test fixtures: validated [`Workspace`] values built in Rust, so the model can be tested
//! without the parser. Every span is distinct (file 0, increasing offsets) so tests can
//! tell which claimant a diagnostic points at.
//!
//! Compiled into the library only under `cfg(test)`; `tests/model_props.rs` includes the
//! same file with `#[path]` (it only names `crate::{diag, workspace}` paths, which that
//! test crate re-exports at its root).

use crate::diag::{Span, Spanned};
use crate::workspace::types::{
    Bounds, Command, Demand, Disabled, DisabledJob, Event, Job, JobConfig, PortPool, PortSpec, Settings, Var, Worker,
    Workspace,
};
use std::collections::BTreeMap;
use std::path::PathBuf;

pub struct WsBuilder {
    ws: Workspace,
    next: usize,
}

impl Default for WsBuilder {
    fn default() -> Self {
        Self::new()
    }
}

#[allow(dead_code)] // Not every test binary uses every builder method.
impl WsBuilder {
    pub fn new() -> Self {
        WsBuilder {
            ws: Workspace {
                root: PathBuf::from("/bucket"),
                settings: Settings::default(),
                workers: Vec::new(),
                disabled: Disabled::default(),
                bucket_vars: Vec::new(),
                port_pool: PortPool::default(),
                job_configs: BTreeMap::new(),
                jobs: BTreeMap::new(),
                ca: None,
            },
            next: 0,
        }
    }

    /// A fresh span, distinct from every other span of this builder.
    pub fn span(&mut self) -> Span {
        self.next += 10;
        Span::new(0, self.next..self.next + 5)
    }

    pub fn worker(self, host: &str, labels: &[&str]) -> Self {
        self.worker_with(host, labels, |_| {})
    }

    /// A worker with normalised labels (`worker` appended), then `f` for the rest.
    pub fn worker_with(mut self, host: &str, labels: &[&str], f: impl FnOnce(&mut Worker)) -> Self {
        let mut ls: Vec<String> = Vec::new();
        for l in labels {
            let l = l.trim().to_lowercase();
            if !ls.contains(&l) {
                ls.push(l);
            }
        }
        if !ls.iter().any(|l| l == "worker") {
            ls.push("worker".into());
        }
        let span = self.span();
        let mut w = Worker {
            host: host.into(),
            hostname: None,
            labels: ls,
            memory_mb: None,
            cpu_mhz: None,
            tags: BTreeMap::new(),
            position: None,
            index: self.ws.workers.len(),
            span,
        };
        f(&mut w);
        self.ws.workers.push(w);
        self
    }

    pub fn job(self, name: &str) -> Self {
        self.job_with(name, |_| {})
    }

    pub fn job_with(mut self, name: &str, f: impl FnOnce(&mut Job)) -> Self {
        let span = self.span();
        let mut j = Job::with_defaults(name, span);
        f(&mut j);
        self.ws.jobs.insert(name.into(), j);
        self
    }

    fn job_mut(&mut self, job: &str) -> &mut Job {
        self.ws.jobs.get_mut(job).unwrap_or_else(|| panic!("fixture: add job `{job}` first"))
    }

    pub fn version(mut self, job: &str, v: &str) -> Self {
        let span = self.span();
        self.job_mut(job).version = Some(Spanned::new(v.into(), span));
        self
    }

    /// `{}` port when `fixed` is `None`.
    pub fn port(mut self, job: &str, name: &str, fixed: Option<u16>) -> Self {
        let span = self.span();
        self.job_mut(job).ports.push(PortSpec { name: name.into(), fixed, span });
        self
    }

    pub fn memory(mut self, job: &str, min: f64, max: f64) -> Self {
        let span = self.span();
        self.job_mut(job).memory = Some(Bounds { min, max, span });
        self
    }

    pub fn cpu(mut self, job: &str, min: f64, max: f64) -> Self {
        let span = self.span();
        self.job_mut(job).cpu = Some(Bounds { min, max, span });
        self
    }

    /// `job` demands `upstream` (command `command_use_<upstream>` -> `command_serve`).
    pub fn demand(self, job: &str, upstream: &str) -> Self {
        self.demand_with(job, upstream, |_| {})
    }

    pub fn demand_with(mut self, job: &str, upstream: &str, f: impl FnOnce(&mut Demand)) -> Self {
        let (cspan, dspan) = (self.span(), self.span());
        let name = format!("command_use_{upstream}");
        let mut demand = Demand {
            job: upstream.into(),
            command: "command_serve".into(),
            config_json: "{}".into(),
            min_version: None,
            max_version: None,
            span: dspan,
            job_span: dspan,
            command_span: dspan,
        };
        f(&mut demand);
        let cmd = Command {
            name: name.clone(),
            executed_on: vec![Event::PostDeploy],
            demands: Some(demand),
            script: PathBuf::from(format!("workspace/jobs/{job}/_modules/{name}.py")),
            span: cspan,
        };
        self.job_mut(job).commands.insert(name, cmd);
        self
    }

    /// A bound of a demand with its own span (for `demand_with`).
    pub fn spanned(&mut self, v: &str) -> Spanned<String> {
        let span = self.span();
        Spanned::new(v.into(), span)
    }

    /// A bucket.jobs block with reservation overrides (and their attributes as vars).
    pub fn job_config(mut self, job: &str, memory_mb: Option<f64>, cpu_mhz: Option<f64>) -> Self {
        let span = self.span();
        let mut cfg = JobConfig { job: job.into(), memory_mb: None, cpu_mhz: None, vars: Vec::new(), span };
        for (name, v) in [("cpu", cpu_mhz), ("memory", memory_mb)] {
            if let Some(v) = v {
                let s = self.span();
                let unit = if name == "cpu" { "mhz" } else { "mb" };
                cfg.vars.push(Var {
                    name: name.into(),
                    value: format!("{v} {unit}"),
                    kv_type: Default::default(),
                    span: s,
                });
                let sp = Spanned::new(v, s);
                if name == "cpu" { cfg.cpu_mhz = Some(sp) } else { cfg.memory_mb = Some(sp) }
            }
        }
        self.ws.job_configs.insert(job.into(), cfg);
        self
    }

    pub fn config_var(mut self, job: &str, name: &str, value: &str) -> Self {
        let span = self.span();
        let cfg = self.ws.job_configs.entry(job.into()).or_insert_with(|| JobConfig {
            job: job.into(),
            memory_mb: None,
            cpu_mhz: None,
            vars: Vec::new(),
            span,
        });
        cfg.vars.push(Var { name: name.into(), value: value.into(), kv_type: Default::default(), span });
        self
    }

    pub fn job_var(mut self, job: &str, name: &str, value: &str) -> Self {
        let span = self.span();
        self.job_mut(job).vars.push(Var { name: name.into(), value: value.into(), kv_type: Default::default(), span });
        self
    }

    pub fn bucket_var(mut self, name: &str, value: &str) -> Self {
        let span = self.span();
        self.ws.bucket_vars.push(Var { name: name.into(), value: value.into(), kv_type: Default::default(), span });
        self
    }

    /// The port pool, also written as `port_min`/`port_max` bucket vars like the parser does.
    pub fn pool(self, min: u16, max: u16) -> Self {
        let mut b = self.bucket_var("port_min", &min.to_string()).bucket_var("port_max", &max.to_string());
        b.ws.port_pool = PortPool { min, max };
        b
    }

    /// Disable `hosts` of `job` (all of the job when empty).
    pub fn disable_job(mut self, job: &str, hosts: &[&str]) -> Self {
        let span = self.span();
        let allocations = hosts.iter().map(|h| Spanned::new(h.to_string(), span)).collect();
        self.ws.disabled.jobs.insert(job.into(), DisabledJob { span, allocations });
        self
    }

    pub fn disable_worker(mut self, host: &str) -> Self {
        let span = self.span();
        self.ws.disabled.workers.push(Spanned::new(host.into(), span));
        self
    }

    pub fn build(self) -> Workspace {
        self.ws
    }
}
