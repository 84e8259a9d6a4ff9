//! The workspace digest a saved plan carries: sha256 over `kvform.hcl`, `secrets/ca.crt` (the
//! public CA certificate the plan projects) and every file under `workspace/`, so `apply PLANFILE` can refuse a plan made from a workspace that has since
//! changed.
//!
//! Each file contributes its relative path (`/`-separated), a NUL, its length (u64 LE) and
//! its bytes, in sorted path order: unambiguous, and independent of directory listing order.
//! Pure: the shell (`cli::plan_files::workspace_digest`) finds and reads the files and feeds
//! them here in path order.

use sha2::{Digest, Sha256};

/// Accumulates files in sorted path order; [`WorkspaceDigest::finish`] gives the hex digest.
#[derive(Default)]
pub struct WorkspaceDigest {
    hasher: Sha256,
    last: Option<String>,
}

impl WorkspaceDigest {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add one file. Paths must come in ascending order (the framing is only unambiguous
    /// for one order); an out-of-order or repeated path panics, as a caller bug.
    pub fn add(&mut self, rel: &str, bytes: &[u8]) {
        assert!(self.last.as_deref().is_none_or(|l| l < rel), "workspace digest: {rel} out of order");
        self.hasher.update(rel.as_bytes());
        self.hasher.update([0u8]);
        self.hasher.update((bytes.len() as u64).to_le_bytes());
        self.hasher.update(bytes);
        self.last = Some(rel.to_string());
    }

    /// Hex sha256.
    pub fn finish(self) -> String {
        self.hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }
}
