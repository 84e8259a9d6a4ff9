//! The file side of saved plans and the workspace digest (the pure encode/decode and hashing
//! live in `crate::plan`):
//!
//! - [`write`]: the plan file is created with mode 0600 from the first byte — written to a
//!   fresh temporary file opened with that mode in the same directory, then renamed over the
//!   target — so it is never world-readable, even briefly, and a crash never leaves half a
//!   plan.
//! - [`read`]: the file's bytes, decoded by `SavedPlan::from_json`.
//! - [`workspace_digest`]: `kvform.hcl` and every file under `workspace/`, read the way the
//!   workspace loader reads (regular files only, at most `limits { max_file_size }`), fed to
//!   `plan::WorkspaceDigest` in path order. `__pycache__` directories are skipped: Python
//!   writes them next to hook scripts when a hook runs, which must not make a saved plan
//!   stale. Symlinked directories are not followed (no cycles); symlinked files count with
//!   their target's contents; FIFOs, devices and sockets are left out (the workspace loader
//!   reports them where they matter).

use crate::plan::{PlanError, SavedPlan, WorkspaceDigest};
use crate::workspace::source;
use anyhow::Context as _;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Directory names left out of the digest (see the module docs).
const SKIPPED_DIRS: &[&str] = &["__pycache__"];

/// Write the plan file, mode 0600 from creation, replacing any existing file.
pub fn write(saved: &SavedPlan, path: &Path) -> Result<(), PlanError> {
    let err = |cause| PlanError::Write { path: path.to_path_buf(), cause };
    let json = saved.to_json();
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().ok_or_else(|| err(std::io::Error::other("not a file name")))?;
    let tmp = dir.join(format!(".{}.tmp-{}", name.to_string_lossy(), std::process::id()));
    // A leftover from a crashed run of this same process id is ours to replace.
    let _ = std::fs::remove_file(&tmp);
    let result = (|| {
        let mut f = private_file(&tmp)?;
        f.write_all(&json)?;
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
    SavedPlan::from_json(path, &bytes)
}

fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)
}

/// Hex sha256 of the bucket's workspace files (see the module docs).
pub fn workspace_digest(root: &Path, max_file_size: u64) -> anyhow::Result<String> {
    let cannot = || format!("cannot read the workspace of {}", root.display());
    let mut files: Vec<String> = Vec::new();
    if root.join("kvform.hcl").is_file() {
        files.push("kvform.hcl".into());
    }
    // The CA certificate is projected into `maand/worker` (`certs rotate-ca` changes only
    // it): a plan must not take the workspace as unchanged across a rotation.
    if root.join("secrets/ca.crt").is_file() {
        files.push("secrets/ca.crt".into());
    }
    let ws = root.join("workspace");
    if ws.is_dir() {
        collect(root, &ws, &mut files).with_context(cannot)?;
    }
    files.sort();
    let mut digest = WorkspaceDigest::new();
    for rel in &files {
        // Listed as a regular file a moment ago; gone since counts as absent.
        match source::read_regular(&root.join(rel), max_file_size) {
            Ok(Some(bytes)) => digest.add(rel, &bytes),
            Ok(None) => {}
            Err(e) => return Err(anyhow::anyhow!("cannot read {rel}: {e}\n  help: {}", e.help())).with_context(cannot),
        }
    }
    Ok(digest.finish())
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<String>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path: PathBuf = entry.path();
        let kind = entry.file_type()?;
        if kind.is_dir() {
            if !SKIPPED_DIRS.iter().any(|d| entry.file_name() == *d) {
                collect(root, &path, out)?;
            }
        } else if kind.is_file() || (kind.is_symlink() && path.is_file()) {
            let rel = path.strip_prefix(root).expect("walked under root");
            let rel: Vec<String> = rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
            out.push(rel.join("/"));
        }
    }
    Ok(())
}
