//! Rules that span files: bucket-wide uniqueness of port names, demands that must name an
//! existing job and command, versions on both ends of a demand, bucket.jobs blocks for
//! unknown jobs (a warning), reservations that must lie within the manifest bounds, and
//! disabled.json names that match nothing (warnings).
//!
//! Fixed-port collisions, capacity, demand cycles and version constraints need the
//! desired-state graph and are checked by `model`.

use super::types::{Bounds, Job, Workspace};
use crate::diag::suggest::hint;
use crate::diag::{Diagnostic, Diagnostics, Span, Spanned};
use crate::kv::value::decimal;
use crate::workspace::units::Quantity;
use std::collections::BTreeMap;

/// Keys of `maand/bucket` that port names (also keys there) must not shadow.
pub const RESERVED_PORT_NAMES: &[&str] = &["bucket_id", "jobs", "activejobs"];

pub fn cross_file(ws: &Workspace, diags: &mut Diagnostics) {
    ports(ws, diags);
    demands(ws, diags);
    versions(ws, diags);
    job_configs(ws, diags);
    disabled(ws, diags);
}

/// Port names are keys of `maand/bucket`, so they are unique across the bucket.
fn ports(ws: &Workspace, diags: &mut Diagnostics) {
    let mut claimed: BTreeMap<&str, (&str, Span)> = BTreeMap::new();
    for job in ws.jobs.values() {
        for port in &job.ports {
            if RESERVED_PORT_NAMES.contains(&port.name.as_str()) {
                diags.push(
                    Diagnostic::error(format!("port name `{}` is reserved", port.name))
                        .at(port.span)
                        .label(format!("`maand/bucket/{}` is written by kvform", port.name))
                        .help(format!(
                            "port names are keys of maand/bucket and must not be one of {}; rename the port",
                            RESERVED_PORT_NAMES.join(", ")
                        )),
                );
                continue;
            }
            match claimed.get(port.name.as_str()) {
                Some((first_job, first_span)) => diags.push(
                    Diagnostic::error(format!(
                        "port name `{}` is used by jobs `{first_job}` and `{}`",
                        port.name, job.name
                    ))
                    .at(port.span)
                    .label(format!("claimed again by `{}`", job.name))
                    .also(*first_span, format!("first claimed by `{first_job}`"))
                    .help("port names are keys of maand/bucket and must be unique across the bucket; rename one (e.g. prefix it with the job name)"),
                ),
                None => {
                    claimed.insert(&port.name, (&job.name, port.span));
                }
            }
        }
    }
}

/// Every demand names an existing job and one of its commands.
fn demands(ws: &Workspace, diags: &mut Diagnostics) {
    for job in ws.jobs.values() {
        for cmd in job.commands.values() {
            let Some(d) = &cmd.demands else { continue };
            let Some(upstream) = ws.jobs.get(&d.job) else {
                let mut diag = Diagnostic::error(format!("`{}` demands unknown job `{}`", cmd.name, d.job))
                    .at(d.job_span)
                    .label("no such job in workspace/jobs/");
                diag = diag.help(
                    hint(&d.job, ws.jobs.keys())
                        .unwrap_or_else(|| format!("create workspace/jobs/{}/manifest.json or fix the name", d.job)),
                );
                diags.push(diag);
                continue;
            };
            if !upstream.commands.contains_key(&d.command) {
                let known: Vec<&String> = upstream.commands.keys().collect();
                let help = hint(&d.command, known.iter().copied()).unwrap_or_else(|| {
                    if known.is_empty() {
                        format!("job `{}` has no commands", upstream.name)
                    } else {
                        format!(
                            "commands of `{}`: {}",
                            upstream.name,
                            known.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                        )
                    }
                });
                diags.push(
                    Diagnostic::error(format!("job `{}` has no command `{}`", d.job, d.command))
                        .at(d.command_span)
                        .label(format!("not a command of `{}`", d.job))
                        .help(help),
                );
            }
        }
    }
}

/// Jobs on either end of a demand need a `version` (it is what demands constrain).
/// Reported once per job at its manifest's opening `{`, pointing at one demand involved.
fn versions(ws: &Workspace, diags: &mut Diagnostics) {
    // job -> the first demand that involves it (span, label)
    let mut needs: BTreeMap<&str, (Span, String)> = BTreeMap::new();
    for job in ws.jobs.values() {
        for cmd in job.commands.values() {
            let Some(d) = &cmd.demands else { continue };
            needs.entry(&job.name).or_insert((d.span, format!("`{}` demands `{}` here", job.name, d.job)));
            if ws.jobs.contains_key(&d.job) {
                needs.entry(&d.job).or_insert((d.job_span, format!("`{}` demands `{}` here", job.name, d.job)));
            }
        }
    }
    for (name, (why, why_label)) in needs {
        let job: &Job = &ws.jobs[name];
        // A version that was written but invalid has its own error already; saying it is
        // missing too would send the operator looking for the wrong problem.
        let invalid_version_reported = diags
            .iter()
            .any(|d| d.span.is_some_and(|s| s.file == job.span.file) && d.message.starts_with("invalid `version` "));
        if job.version.is_some() || invalid_version_reported {
            continue;
        }
        let open = Span { file: job.span.file, start: job.span.start, end: job.span.start + 1 };
        diags.push(
            Diagnostic::error(format!("job `{name}` has no `version` but is part of a demand"))
                .at(open)
                .label("`version` missing in this manifest")
                .also(why, why_label)
                .help(format!(
                    r#"demands are checked against versions; add e.g. "version": "1.0.0" to workspace/jobs/{name}/manifest.json"#
                )),
        );
    }
}

/// bucket.jobs blocks name existing jobs; their reservations lie within the bounds.
fn job_configs(ws: &Workspace, diags: &mut Diagnostics) {
    for (name, cfg) in &ws.job_configs {
        let Some(job) = ws.jobs.get(name) else {
            diags.push(
                Diagnostic::warning(format!("bucket.jobs block for unknown job `{name}`"))
                    .at(cfg.span)
                    .label("no such job in workspace/jobs/")
                    .help(hint(name, ws.jobs.keys()).unwrap_or_else(|| "remove the block or fix the job name".into())),
            );
            continue;
        };
        within(diags, name, Quantity::Memory, cfg.memory_mb.as_ref(), job.memory.as_ref());
        within(diags, name, Quantity::Cpu, cfg.cpu_mhz.as_ref(), job.cpu.as_ref());
    }
}

fn within(diags: &mut Diagnostics, job: &str, q: Quantity, value: Option<&Spanned<f64>>, bounds: Option<&Bounds>) {
    let (Some(v), Some(b)) = (value, bounds) else { return };
    if v.value >= b.min && v.value <= b.max {
        return;
    }
    let unit = q.base_unit();
    let field = q.field();
    diags.push(
        Diagnostic::error(format!(
            "{field} reservation {} {unit} for job `{job}` is outside the manifest bounds {}..{} {unit}",
            decimal(v.value),
            decimal(b.min),
            decimal(b.max)
        ))
        .at(v.span)
        .label(if v.value < b.min { "below the minimum" } else { "above the maximum" })
        .also(b.span, format!("`resources.{field}` of `{job}`"))
        .help(format!(
            "choose a {field} between {} and {} {unit}, or widen the bounds in the manifest",
            decimal(b.min),
            decimal(b.max)
        )),
    );
}

/// disabled.json names that match nothing are warnings: they do nothing, probably a typo.
fn disabled(ws: &Workspace, diags: &mut Diagnostics) {
    let hosts: Vec<&String> = ws.workers.iter().map(|w| &w.host).collect();
    let unknown_host = |host: &Spanned<String>, what: &str| {
        Diagnostic::warning(format!("disabled.json names unknown worker `{}`", host.value))
            .at(host.span)
            .label(format!("no worker with this host in workers.json ({what})"))
            .help(hint(&host.value, hosts.iter().copied()).unwrap_or_else(|| "remove it or fix the host".into()))
    };
    for (name, dj) in &ws.disabled.jobs {
        let Some(job) = ws.jobs.get(name) else {
            diags.push(
                Diagnostic::warning(format!("disabled.json names unknown job `{name}`"))
                    .at(dj.span)
                    .label("no such job in workspace/jobs/")
                    .help(hint(name, ws.jobs.keys()).unwrap_or_else(|| "remove it or fix the job name".into())),
            );
            continue;
        };
        for host in &dj.allocations {
            match ws.workers.iter().find(|w| w.host == host.value) {
                None => diags.push(unknown_host(host, "allocation")),
                Some(w) if !job.selectors.iter().all(|s| w.labels.contains(s)) => diags.push(
                    Diagnostic::warning(format!("job `{name}` has no allocation on `{}`", host.value))
                        .at(host.span)
                        .label("the worker lacks one of the job's selectors")
                        .help(format!(
                            "selectors of `{name}`: {}; labels of `{}`: {}",
                            job.selectors.join(", "),
                            w.host,
                            w.labels.join(", ")
                        )),
                ),
                Some(_) => {}
            }
        }
    }
    for host in &ws.disabled.workers {
        if !hosts.contains(&&host.value) {
            diags.push(unknown_host(host, "workers"));
        }
    }
}
