//! Saved plans (`kvform plan --out FILE`, `kvform apply FILE`): the plan plus what it was
//! made from (lineage, base serial, kvform version, workspace digest, options), as JSON.
//!
//! Encoding and decoding only; the file itself is written and read by the shell
//! (`cli::plan_files`: mode 0600 from the first byte, atomic rename). No secret reaches
//! it: the plan never writes `secrets/*` and carries no value of those namespaces.
//!
//! Before applying, [`check_applicable`] refuses a plan made for another state (lineage),
//! on an older state (serial), by another kvform version, or from another workspace
//! (digest) — each with what to do.

use super::types::{FORMAT_VERSION, KVFORM_VERSION, Plan, PlanMeta, PlanOptions};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use uuid::Uuid;

/// The saved-plan document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedPlan {
    pub format_version: String,
    pub kvform_version: String,
    pub lineage: Uuid,
    pub base_serial: u64,
    /// The time the plan was computed at (its command's `now`), written in RFC 3339 like
    /// every JSON time; held as unix seconds. Files of earlier versions (unix seconds, or no
    /// field: 0) still read; apply re-plans at its own `now` anyway.
    #[serde(default, with = "rfc3339_or_seconds")]
    pub planned_at: i64,
    /// The digest (`plan::WorkspaceDigest`) of the workspace the plan was made from.
    pub workspace_digest: String,
    pub options: PlanOptions,
    /// `plan --target JOB`: the jobs the plan was narrowed to (none: the whole workspace).
    /// Applying the file narrows the re-plan the same way.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<String>,
    pub plan: Plan,
}

/// `planned_at`: written as RFC 3339; read from RFC 3339 or from the unix seconds that
/// kvform wrote before.
mod rfc3339_or_seconds {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(secs: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::clock::format_time(*secs))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Seconds(i64),
            Text(String),
        }
        match Either::deserialize(d)? {
            Either::Seconds(n) => Ok(n),
            Either::Text(t) => crate::clock::parse_time(&t)
                .ok_or_else(|| D::Error::custom(format!("`planned_at` {t:?} is not an RFC 3339 time"))),
        }
    }
}

/// The io/JSON error is part of the message (`cause`, not `source`), so anyhow's error chain
/// does not print it a second time.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("cannot write plan file {}: {cause}", path.display())]
    Write { path: PathBuf, cause: std::io::Error },
    #[error("cannot read plan file {}: {cause}", path.display())]
    Read { path: PathBuf, cause: std::io::Error },
    #[error(
        "{} is not a kvform plan file: {cause}\n  help: make one with `kvform plan --out {}`",
        path.display(),
        path.display()
    )]
    Parse { path: PathBuf, cause: serde_json::Error },
    #[error(
        "{} has plan format {found:?}; this kvform reads format {FORMAT_VERSION:?}\n  help: run `kvform plan --out FILE` again",
        path.display()
    )]
    Format { path: PathBuf, found: String },
    #[error("Saved plan does not match this state (lineage {plan} in the plan, {state} in the state)")]
    Lineage { plan: Uuid, state: Uuid },
    #[error("Saved plan is stale: the state changed after this plan was made; run `kvform plan` again")]
    Stale { plan_serial: u64, state_serial: u64 },
    #[error(
        "Saved plan was made by kvform {plan}, this is kvform {current}; run `kvform plan` again with this version"
    )]
    Version { plan: String, current: String },
    #[error("Saved plan is stale: the workspace changed after this plan was made; run `kvform plan` again")]
    Workspace,
}

impl SavedPlan {
    /// Wrap a plan for saving; `workspace_digest` is `cli::plan_files::workspace_digest`.
    pub fn new(plan: Plan, workspace_digest: String) -> SavedPlan {
        SavedPlan {
            format_version: FORMAT_VERSION.into(),
            kvform_version: plan.meta.kvform_version.clone(),
            lineage: plan.meta.lineage,
            base_serial: plan.meta.base_serial,
            planned_at: plan.meta.now,
            workspace_digest,
            options: plan.meta.options.clone(),
            targets: Vec::new(),
            plan,
        }
    }

    /// The plan file's bytes (pretty JSON and a newline). Writing them is the shell's job
    /// (`cli::plan_files`).
    pub fn to_json(&self) -> Vec<u8> {
        let mut json = serde_json::to_vec_pretty(self).expect("a saved plan always serialises");
        json.push(b'\n');
        json
    }

    /// Decode a plan file's bytes (`path` names it in errors), with the plan's metadata
    /// restored from the file.
    pub fn from_json(path: &Path, bytes: &[u8]) -> Result<SavedPlan, PlanError> {
        // The format version first, so a future format gets this message, not a field error.
        #[derive(Deserialize)]
        struct Head {
            format_version: String,
        }
        let head: Head =
            serde_json::from_slice(bytes).map_err(|cause| PlanError::Parse { path: path.to_path_buf(), cause })?;
        if head.format_version != FORMAT_VERSION {
            return Err(PlanError::Format { path: path.to_path_buf(), found: head.format_version });
        }
        let mut saved: SavedPlan =
            serde_json::from_slice(bytes).map_err(|cause| PlanError::Parse { path: path.to_path_buf(), cause })?;
        saved.plan.meta = PlanMeta {
            lineage: saved.lineage,
            base_serial: saved.base_serial,
            kvform_version: saved.kvform_version.clone(),
            options: saved.options.clone(),
            now: saved.planned_at,
        };
        Ok(saved)
    }
}

/// Whether a saved plan may be applied to the state (`lineage`, `serial`) and workspace
/// (`current_digest`) as they are now.
pub fn check_applicable(saved: &SavedPlan, lineage: Uuid, serial: u64, current_digest: &str) -> Result<(), PlanError> {
    if saved.lineage != lineage {
        return Err(PlanError::Lineage { plan: saved.lineage, state: lineage });
    }
    if saved.base_serial != serial {
        return Err(PlanError::Stale { plan_serial: saved.base_serial, state_serial: serial });
    }
    if saved.kvform_version != KVFORM_VERSION {
        return Err(PlanError::Version { plan: saved.kvform_version.clone(), current: KVFORM_VERSION.into() });
    }
    if saved.workspace_digest != current_digest {
        return Err(PlanError::Workspace);
    }
    Ok(())
}
