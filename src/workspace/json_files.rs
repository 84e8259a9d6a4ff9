//! JSON files: `workers.json`, `disabled.json`, `jobs/<job>/manifest.json` (+ `_modules/`).

use super::types::{Disabled, Job, Worker};
use crate::diag::{Diagnostics, SourceMap};
use std::collections::BTreeMap;
use std::path::Path;

/// `workspace/workers.json` (missing file = no workers).
pub fn workers(_root: &Path, _sources: &mut SourceMap, _diags: &mut Diagnostics) -> Vec<Worker> {
    Vec::new()
}

/// `workspace/disabled.json` (optional).
pub fn disabled(_root: &Path, _sources: &mut SourceMap, _diags: &mut Diagnostics) -> Disabled {
    Disabled::default()
}

/// Every `workspace/jobs/<job>/manifest.json` with its `_modules/` scripts. `vars` is
/// left empty (filled from vars.hcl by the loader).
pub fn jobs(_root: &Path, _sources: &mut SourceMap, _diags: &mut Diagnostics) -> BTreeMap<String, Job> {
    BTreeMap::new()
}
