//! JSON files: `workers.json`, `disabled.json`, `jobs/<job>/manifest.json` (+ `_modules/`).
//!
//! - [`doc`]: the positioned-JSON layer (read + register, strict parse, typed accessors
//!   that report at the exact key or value);
//! - [`workers`], [`disabled`], [`manifest`] (+ [`scripts`]): one file format each;
//! - [`schema`]: the serde/schemars description of the three formats that produces
//!   `schemas/*.schema.json` (documentation for editors; parsing does not use it).

pub mod disabled;
pub mod doc;
pub mod manifest;
pub mod schema;
pub mod scripts;
pub mod workers;

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
pub fn jobs(root: &Path, sources: &mut SourceMap, diags: &mut Diagnostics) -> BTreeMap<String, Job> {
    let mut out = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(root.join("workspace/jobs")) else { return out };
    let mut names: Vec<String> = Vec::new();
    for entry in entries.flatten() {
        if !entry.path().join("manifest.json").is_file() {
            continue;
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
