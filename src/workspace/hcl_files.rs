//! HCL files: `kvform.hcl`, `bucket.conf`, `bucket.jobs[.<env>].conf`, `jobs/<job>/vars.hcl`.

use super::types::{JobConfig, PortPool, Settings, Var};
use crate::diag::{Diagnostics, SourceMap};
use std::collections::BTreeMap;
use std::path::Path;

/// `kvform.hcl` (optional; defaults when missing).
pub fn settings(_root: &Path, _sources: &mut SourceMap, _diags: &mut Diagnostics) -> Settings {
    Settings::default()
}

/// `workspace/bucket.conf`: every attribute (in file order, converted) and the port pool.
pub fn bucket_conf(_root: &Path, _sources: &mut SourceMap, _diags: &mut Diagnostics) -> (Vec<Var>, PortPool) {
    (Vec::new(), PortPool::default())
}

/// The bucket.jobs file chosen by `selector` ("" -> `bucket.jobs.conf`).
pub fn bucket_jobs(
    _root: &Path,
    _selector: &str,
    _sources: &mut SourceMap,
    _diags: &mut Diagnostics,
) -> BTreeMap<String, JobConfig> {
    BTreeMap::new()
}

/// `workspace/jobs/<job>/vars.hcl` (optional).
pub fn job_vars(_root: &Path, _job: &str, _sources: &mut SourceMap, _diags: &mut Diagnostics) -> Vec<Var> {
    Vec::new()
}
