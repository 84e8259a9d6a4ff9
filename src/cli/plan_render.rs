//! `plan --render` (SPEC §12): after the plan, each rendered template's line diff against the
//! last apply's render, for review in a pull request.
//!
//! The templates are rendered against the state as the plan leaves it: the current state
//! with the plan's writes and tombstones laid over it. What the plan cannot know is
//! `(known after apply)`: a value `apply` makes (a certificate, its key), and the keys hooks
//! may write during this apply — in `vars/job/<job>` and `secrets/job/<job>` of a job the plan
//! rolls out, every key the workspace does not declare. Secrets are `(sensitive)` on both
//! sides: the previous render is read from the state (`crate::state::render`, the masked copy
//! `apply` records in its transaction), so any checkout sharing the state — a CI runner — diffs
//! against the last apply; never from the staged files.

use super::Context;
use super::pipeline::{Loaded, load_for_hooks};
use super::render::{StateReader, allocation};
use crate::plan::{Action, Plan};
use crate::templates::{Reader, render_job};
use crate::workspace::templates::job_templates;
use anyhow::Context as _;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

pub const UNKNOWN: &str = "(known after apply)";

/// What the plan does to one key.
enum Planned {
    Value(String),
    Gone,
    Unknown,
}

/// The current state with the plan laid over it.
struct PlannedReader {
    base: StateReader,
    keys: BTreeMap<(String, String), Planned>,
    /// Namespaces whose undeclared keys hooks of this apply may write.
    hook_written: BTreeSet<String>,
    /// Keys the workspace declares (`vars.hcl`), per namespace.
    declared: BTreeMap<String, BTreeSet<String>>,
}

impl Reader for PlannedReader {
    fn get(&self, ns: &str, key: &str) -> Result<Option<String>, String> {
        match self.keys.get(&(ns.to_string(), key.to_string())) {
            Some(Planned::Value(v)) => return Ok(Some(v.clone())),
            Some(Planned::Gone) => return Ok(None),
            Some(Planned::Unknown) => return Ok(Some(UNKNOWN.into())),
            None => {}
        }
        if self.hook_written.contains(ns) && !self.declared.get(ns).is_some_and(|d| d.contains(key)) {
            return Ok(Some(UNKNOWN.into()));
        }
        self.base.get(ns, key)
    }

    fn keys(&self, ns: &str) -> Result<Vec<String>, String> {
        let mut names: BTreeSet<String> = self.base.keys(ns)?.into_iter().collect();
        for ((n, k), p) in self.keys.range((ns.to_string(), String::new())..) {
            if n != ns {
                break;
            }
            match p {
                Planned::Gone => names.remove(k),
                _ => names.insert(k.clone()),
            };
        }
        Ok(names.into_iter().collect())
    }
}

/// One file's review: `+` new, `~` changed (with its diff), `-` no longer rendered.
fn diff_lines(before: &str, after: &str) -> Vec<String> {
    let diff = similar::TextDiff::from_lines(before, after);
    let mut out = Vec::new();
    for group in diff.grouped_ops(2) {
        for op in group {
            for change in diff.iter_changes(&op) {
                let sign = match change.tag() {
                    similar::ChangeTag::Delete => '-',
                    similar::ChangeTag::Insert => '+',
                    similar::ChangeTag::Equal => ' ',
                };
                out.push(format!("      {sign} {}", change.value().trim_end_matches('\n')));
            }
        }
        out.push("      …".into());
    }
    out.pop();
    out
}

/// Print the template review of `plan` (nothing when the bucket has no templates).
pub fn print(ctx: &Context, plan: &Plan) -> anyhow::Result<()> {
    let Loaded { session, desired, store } = load_for_hooks(ctx)?;
    let rolled: BTreeSet<&str> = plan.rollout.iter().flat_map(|w| w.jobs.iter().map(|j| j.job.as_str())).collect();
    let mut keys = BTreeMap::new();
    for c in &plan.changes {
        let planned = match (c.action, &c.after) {
            (Action::Tombstone, _) => Planned::Gone,
            _ if c.after_unknown || c.after_sensitive => Planned::Unknown,
            (_, Some(v)) => Planned::Value(v.to_cow().into_owned()),
            (_, None) => Planned::Unknown,
        };
        keys.insert((c.namespace.clone(), c.key.clone()), planned);
    }
    let mut hook_written = BTreeSet::new();
    let mut declared = BTreeMap::new();
    for job in &rolled {
        for ns in [format!("vars/job/{job}"), format!("secrets/job/{job}")] {
            let names: BTreeSet<String> = desired.kv.get(&ns).map(|m| m.keys().cloned().collect()).unwrap_or_default();
            declared.insert(ns.clone(), names);
            hook_written.insert(ns);
        }
    }
    // The last apply's render, from the state (any checkout sharing it sees the same); a
    // state that has none (no apply rendered yet) shows every file as new.
    let last: BTreeMap<String, String> = store.last_render().context("cannot read the last render from the state")?;
    let reader = Rc::new(PlannedReader { base: StateReader { store, now: session.now }, keys, hook_written, declared });
    let jobs_dir = session.bucket.jobs_dir();
    let catalog = Rc::new(desired.prometheus.clone());
    let mut out: Vec<String> = Vec::new();
    let mut errors: Vec<String> = Vec::new();
    let (mut added, mut changed, mut removed) = (0, 0, 0);
    for (name, job) in &desired.jobs {
        let templates =
            job_templates(&jobs_dir.join(name), &format!("workspace/jobs/{name}"), session.settings.max_file_size)?;
        // Files the last apply rendered for this job, by staged path (`<host>/jobs/<job>/…`).
        let before: BTreeMap<&str, &str> = last
            .iter()
            .filter(|(path, _)| path.split('/').nth(2) == Some(name.as_str()))
            .map(|(p, t)| (p.as_str(), t.as_str()))
            .collect();
        let mut after: BTreeMap<String, String> = BTreeMap::new();
        if !templates.is_empty() {
            for host in &job.active_hosts {
                let alloc = allocation(&desired, reader.as_ref(), name, host)?;
                for t in &templates {
                    match render_job(&t.shown, &t.text, &alloc, &job.upstreams, reader.clone(), catalog.clone()) {
                        Ok(r) => {
                            after.insert(format!("{host}/jobs/{name}/{}", t.output()), r.masked());
                        }
                        Err(e) => errors.push(format!("{e} (allocation {name}@{host})")),
                    }
                }
            }
        }
        let paths: BTreeSet<&str> = before.keys().copied().chain(after.keys().map(String::as_str)).collect();
        for path in paths {
            match (before.get(path), after.get(path)) {
                (None, Some(a)) => {
                    added += 1;
                    out.push(format!("  + {path} ({} lines)", a.lines().count()));
                    out.extend(a.lines().map(|l| format!("      + {l}")));
                }
                (Some(b), Some(a)) if a != b => {
                    changed += 1;
                    out.push(format!("  ~ {path}"));
                    out.extend(diff_lines(b, a));
                }
                (Some(_), None) => {
                    removed += 1;
                    out.push(format!("  - {path} (no longer rendered)"));
                }
                _ => {}
            }
        }
    }
    let mut text = String::from("\nTemplates (against the planned state; secrets as (sensitive)):\n");
    if out.is_empty() {
        text.push_str("  No changes to rendered files.\n");
    } else {
        for l in &out {
            text.push_str(l);
            text.push('\n');
        }
        text.push_str(&format!("Templates: {added} new, {changed} changed, {removed} no longer rendered.\n"));
    }
    ctx.printer.out(&text);
    for e in &errors {
        ctx.printer.error(e);
    }
    if !errors.is_empty() {
        anyhow::bail!("{} template(s) failed to render against the planned state", errors.len());
    }
    Ok(())
}
