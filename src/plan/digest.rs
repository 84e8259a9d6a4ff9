//! The workspace digest a saved plan carries: sha256 over `kvform.hcl` and every file under
//! `workspace/`, so `apply PLANFILE` can refuse a plan made from a workspace that has since
//! changed.
//!
//! Each file contributes its relative path (`/`-separated), a NUL, its length (u64 LE) and
//! its bytes, in sorted path order: unambiguous, and independent of directory listing order.
//! An absent `kvform.hcl` contributes nothing (it is optional). `__pycache__` directories
//! are skipped: Python writes them next to hook scripts when a hook runs, which must not
//! make a saved plan stale. Symlinked directories are not followed (no cycles); symlinked
//! files count with their target's contents.

use sha2::{Digest, Sha256};
use std::io;
use std::path::Path;

/// Directory names left out of the digest (see the module docs).
const SKIPPED_DIRS: &[&str] = &["__pycache__"];

/// Hex sha256 of the bucket's workspace files.
pub fn workspace_digest(root: &Path) -> io::Result<String> {
    let mut files: Vec<String> = Vec::new();
    if root.join("kvform.hcl").is_file() {
        files.push("kvform.hcl".into());
    }
    let ws = root.join("workspace");
    if ws.is_dir() {
        collect(root, &ws, &mut files)?;
    }
    files.sort();
    let mut h = Sha256::new();
    for rel in &files {
        let bytes = std::fs::read(root.join(rel))?;
        h.update(rel.as_bytes());
        h.update([0u8]);
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(&bytes);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<String>) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
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
