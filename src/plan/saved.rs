//! Saved plans (`kvform plan --out FILE`, `kvform apply FILE`): the plan plus what it was
//! made from (lineage, base serial, kvform version, workspace digest, options), as JSON.
//!
//! The file is created with mode 0600 from the first byte: written to a fresh temporary
//! file opened with that mode in the same directory, then renamed over the target, so it
//! is never world-readable, even briefly, and a crash never leaves half a plan. No secret
//! reaches it: the plan never writes `secrets/*` and carries no value of those namespaces.
//!
//! Before applying, [`check_applicable`] refuses a plan made for another state (lineage),
//! on an older state (serial), by another kvform version, or from another workspace
//! (digest) — each with what to do.

use super::types::{FORMAT_VERSION, KVFORM_VERSION, Plan, PlanMeta, PlanOptions};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use uuid::Uuid;

/// The saved-plan document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedPlan {
    pub format_version: String,
    pub kvform_version: String,
    pub lineage: Uuid,
    pub base_serial: u64,
    /// `plan::digest::workspace_digest` of the workspace the plan was made from.
    pub workspace_digest: String,
    pub options: PlanOptions,
    pub plan: Plan,
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
    /// Wrap a plan for saving; `workspace_digest` is `digest::workspace_digest(root)`.
    pub fn new(plan: Plan, workspace_digest: String) -> SavedPlan {
        SavedPlan {
            format_version: FORMAT_VERSION.into(),
            kvform_version: plan.meta.kvform_version.clone(),
            lineage: plan.meta.lineage,
            base_serial: plan.meta.base_serial,
            workspace_digest,
            options: plan.meta.options.clone(),
            plan,
        }
    }

    /// Write the plan file, mode 0600 from creation, replacing any existing file.
    pub fn write(&self, path: &Path) -> Result<(), PlanError> {
        let err = |cause| PlanError::Write { path: path.to_path_buf(), cause };
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let name = path.file_name().ok_or_else(|| err(std::io::Error::other("not a file name")))?;
        let tmp = dir.join(format!(".{}.tmp-{}", name.to_string_lossy(), std::process::id()));
        // A leftover from a crashed run of this same process id is ours to replace.
        let _ = std::fs::remove_file(&tmp);
        let result = (|| {
            // Streamed: a large plan is never held as one JSON text (SPEC §11).
            let mut w = std::io::BufWriter::new(private_file(&tmp)?);
            serde_json::to_writer_pretty(&mut w, self).map_err(std::io::Error::from)?;
            w.write_all(b"\n")?;
            let f = w.into_inner().map_err(|e| e.into_error())?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result.map_err(err)
    }

    /// Read a plan file, with the plan's metadata restored from the file.
    pub fn read(path: &Path) -> Result<SavedPlan, PlanError> {
        let bytes = std::fs::read(path).map_err(|cause| PlanError::Read { path: path.to_path_buf(), cause })?;
        // The format version first, so a future format gets this message, not a field error.
        #[derive(Deserialize)]
        struct Head {
            format_version: String,
        }
        let head: Head =
            serde_json::from_slice(&bytes).map_err(|cause| PlanError::Parse { path: path.to_path_buf(), cause })?;
        if head.format_version != FORMAT_VERSION {
            return Err(PlanError::Format { path: path.to_path_buf(), found: head.format_version });
        }
        let mut saved: SavedPlan =
            serde_json::from_slice(&bytes).map_err(|cause| PlanError::Parse { path: path.to_path_buf(), cause })?;
        saved.plan.meta = PlanMeta {
            lineage: saved.lineage,
            base_serial: saved.base_serial,
            kvform_version: saved.kvform_version.clone(),
            options: saved.options.clone(),
        };
        Ok(saved)
    }
}

#[cfg(unix)]
fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)
}

#[cfg(not(unix))]
fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new().write(true).create_new(true).open(path)
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
