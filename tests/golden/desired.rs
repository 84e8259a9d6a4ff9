//! `testdata/desired/<case>/` -> `golden/desired/<case>.txt` (owned by the model work).
//!
//! A case is a bucket. Optional files next to `workspace/`:
//! - `bucket_id`: the UUID to derive ids from (default [`DEFAULT_BUCKET_ID`]);
//! - `prior.json`: what the current state holds,
//!   `{"ports": {"api_http": 30001}, "workers": ["10.0.0.1"], "jobs": ["api"],
//!   "allocations": [["api", "10.0.0.1"]], "purged_jobs": ["old"]}` (every field optional).
//!
//! Output: warnings of the load (if any), then `model::render::text`. A case whose
//! workspace does not load or whose model fails is a failure showing the diagnostics.

use crate::support::{Golden, case_name, cases};
use kvform::model::types::Prior;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use uuid::Uuid;

/// Used when a case has no `bucket_id` file, so goldens do not change between runs.
const DEFAULT_BUCKET_ID: &str = "6b766672-6d00-4000-8000-000000000001";

#[derive(serde::Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct PriorFile {
    ports: BTreeMap<String, u16>,
    workers: BTreeSet<String>,
    jobs: BTreeSet<String>,
    allocations: BTreeSet<(String, String)>,
    purged_jobs: BTreeSet<String>,
}

fn prior(dir: &Path) -> Result<Prior, String> {
    let id = match std::fs::read_to_string(dir.join("bucket_id")) {
        Ok(s) => s.trim().to_string(),
        Err(_) => DEFAULT_BUCKET_ID.to_string(),
    };
    let bucket_id = Uuid::parse_str(&id).map_err(|e| format!("bucket_id {id:?}: {e}"))?;
    let file: PriorFile = match std::fs::read_to_string(dir.join("prior.json")) {
        Ok(s) => serde_json::from_str(&s).map_err(|e| format!("prior.json: {e}"))?,
        Err(_) => PriorFile::default(),
    };
    Ok(Prior {
        bucket_id,
        ports: file.ports,
        workers: file.workers,
        jobs: file.jobs,
        allocations: file.allocations,
        purged_jobs: file.purged_jobs,
    })
}

#[test]
fn desired_state() {
    let mut g = Golden::new();
    for dir in &cases("desired") {
        let name = case_name(dir);
        let prior = match prior(dir) {
            Ok(p) => p,
            Err(e) => {
                g.fail(format!("testdata/desired/{name}: {e}"));
                continue;
            }
        };
        let loaded = kvform::workspace::load(dir);
        let rendered = loaded.diagnostics.render(&loaded.sources, false);
        let Some(ws) = &loaded.workspace else {
            g.fail(format!("testdata/desired/{name}: the workspace does not load:\n{rendered}"));
            continue;
        };
        match kvform::model::desired(ws, &prior) {
            Ok(d) => g.check(&format!("desired/{name}.txt"), &(rendered + &kvform::model::render::text(&d))),
            Err(mut e) => {
                e.sort(&loaded.sources);
                g.fail(format!("testdata/desired/{name}: the model fails:\n{}", e.render(&loaded.sources, false)));
            }
        }
    }
    g.finish("desired", 20);
}
