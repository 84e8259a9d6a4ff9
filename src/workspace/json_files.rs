//! JSON files: `workers.json`, `disabled.json`, `jobs/<job>/manifest.json` (+ `_modules/`).
//!
//! - [`doc`]: the positioned-JSON layer (read + register, strict parse, typed accessors
//!   that report at the exact key or value);
//! - [`workers`] (a clean file through `workers_fast`), [`disabled`], [`manifest`] (+ [`scripts`]): one file format each;
//! - [`schema`]: the serde/schemars description of the three formats that produces
//!   `schemas/*.schema.json` (documentation for editors; parsing does not use it).

pub mod disabled;
pub mod doc;
pub mod manifest;
pub mod schema;
pub mod scripts;
pub mod workers;
mod workers_fast;

#[cfg(test)]
mod tests;

use super::source;
use super::types::{Disabled, Job, Worker};
use crate::diag::{Diagnostic, Diagnostics, SourceMap};
use std::collections::BTreeMap;
use std::path::Path;

/// `workspace/workers.json` (missing file = no workers).
pub fn workers(root: &Path, sources: &mut SourceMap, diags: &mut Diagnostics) -> Vec<Worker> {
    workers::load(root, sources, diags)
}

/// `workspace/disabled.json` (optional).
pub fn disabled(root: &Path, sources: &mut SourceMap, diags: &mut Diagnostics) -> Disabled {
    disabled::load(root, sources, diags)
}

/// Every `workspace/jobs/<job>/manifest.json` with its `_modules/` scripts. `vars` is
/// left empty (filled from vars.hcl by the loader). Directories without a manifest are
/// ignored; jobs are read in name order so diagnostics come out in a stable order.
///
/// An entry that looks like a job but cannot be read is an error, never an absent job (the
/// plan would purge an absent job's namespaces): a dangling symlink, a FIFO or device, a job
/// directory that cannot be listed, a `manifest.json` that is not a readable regular file.
/// Regular files directly under `jobs/` (a README) are not jobs.
pub fn jobs(root: &Path, sources: &mut SourceMap, diags: &mut Diagnostics) -> BTreeMap<String, Job> {
    const DIR: &str = "workspace/jobs";
    let mut out = BTreeMap::new();
    let entries = match std::fs::read_dir(root.join(DIR)) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return out,
        Err(e) => {
            let e = match source::resolve(&root.join(DIR)) {
                Ok(Some(meta)) if !meta.is_dir() => source::ReadError::NotRegular(source::kind(&meta)),
                Err(cause) => cause,
                _ => source::ReadError::Io(e),
            };
            diags.push(unreadable_dir(DIR, &e));
            return out;
        }
    };
    let mut names: Vec<String> = Vec::new();
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                diags.push(unreadable_dir(DIR, &source::ReadError::Io(e)));
                continue;
            }
        };
        let rel = format!("{DIR}/{}", entry.file_name().to_string_lossy());
        let path = entry.path();
        match source::resolve(&path) {
            Ok(Some(meta)) if meta.is_dir() => {}
            // A README or .gitkeep next to the job directories; it vanished since the listing.
            Ok(Some(meta)) if meta.is_file() => continue,
            Ok(None) => continue,
            Ok(Some(meta)) => {
                diags.push(unreadable_dir(&rel, &source::ReadError::NotRegular(source::kind(&meta))));
                continue;
            }
            Err(e) => {
                diags.push(unreadable_dir(&rel, &e));
                continue;
            }
        }
        if let Err(e) = std::fs::read_dir(&path) {
            diags.push(unreadable_dir(&rel, &source::ReadError::Io(e)));
            continue;
        }
        match source::exists(&path.join("manifest.json")) {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                diags.push(source::unreadable(&format!("{rel}/manifest.json"), &source::ReadError::Io(e)));
                continue;
            }
        }
        match entry.file_name().into_string() {
            Ok(name) => names.push(name),
            Err(raw) => diags.push(
                Diagnostic::error(format!("job directory name {raw:?} is not valid UTF-8"))
                    .in_file("workspace/jobs")
                    .help(format!("rename the directory to match {}", manifest::JOB_NAME_PATTERN)),
            ),
        }
    }
    names.sort();
    for name in names {
        let rel = format!("workspace/jobs/{name}/manifest.json");
        let valid_name = manifest::is_job_name(&name);
        if !valid_name {
            diags.push(
                Diagnostic::error(format!("invalid job name `{name}`")).in_file(format!("workspace/jobs/{name}")).help(
                    format!(
                        "job names match {} (lower-case letters, digits, `_` and `-`); rename the directory",
                        manifest::JOB_NAME_PATTERN
                    ),
                ),
            );
        }
        let Some((file, text)) = source::read(root, &rel, sources, diags) else { continue };
        let Some(value) = doc::parse(file, &text, diags) else { continue };
        // An invalid name is still parsed, so its manifest's own errors show in the same run.
        if let Some(job) = manifest::job(root, &name, file, &value, diags)
            && valid_name
        {
            out.insert(name, job);
        }
    }
    out
}

/// A job directory (or `workspace/jobs` itself) that exists but cannot be listed.
fn unreadable_dir(rel: &str, e: &source::ReadError) -> Diagnostic {
    let help = match e {
        source::ReadError::NotRegular(_) | source::ReadError::Dangling(_) => {
            "a job is a directory holding manifest.json; replace or remove this entry".to_string()
        }
        _ => e.help(),
    };
    let what = match e {
        source::ReadError::NotRegular(kind) => format!("it is {kind}, not a directory"),
        other => other.to_string(),
    };
    Diagnostic::error(format!("cannot read {rel}: {what}")).in_file(rel).help(help)
}
