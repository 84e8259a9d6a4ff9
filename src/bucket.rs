//! Where a bucket's files live (SPEC §1), and how a command finds its bucket.

use std::path::{Path, PathBuf};

/// A bucket directory. Holds paths only; reading and writing them is other modules' job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    pub root: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum BucketError {
    #[error("{} is not a kvform bucket (no kvform.hcl and no workspace/ directory)\n  help: run `kvform init {}` to create one, or pass -C DIR to point at an existing bucket", .0.display(), .0.display())]
    NotABucket(PathBuf),
    #[error("cannot access {}: {source}", .path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

impl Bucket {
    /// The bucket at `dir` (from `-C/--chdir` or the current directory). Fails clearly when
    /// the directory is not a bucket.
    pub fn find(dir: &Path) -> Result<Bucket, BucketError> {
        let root = dir.canonicalize().map_err(|source| BucketError::Io { path: dir.to_path_buf(), source })?;
        let b = Bucket { root };
        if b.settings_file().is_file() || b.workspace_dir().is_dir() {
            Ok(b)
        } else {
            Err(BucketError::NotABucket(dir.to_path_buf()))
        }
    }

    /// A bucket at `root` without checking it exists (for `kvform init`).
    pub fn at(root: impl Into<PathBuf>) -> Bucket {
        Bucket { root: root.into() }
    }

    pub fn settings_file(&self) -> PathBuf {
        self.root.join("kvform.hcl")
    }
    pub fn workspace_dir(&self) -> PathBuf {
        self.root.join("workspace")
    }
    pub fn jobs_dir(&self) -> PathBuf {
        self.workspace_dir().join("jobs")
    }
    pub fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }
    /// Default state path; `kvform.hcl`'s `state { path }` may move it (see
    /// [`Bucket::state_file_for`]).
    pub fn default_state_file(&self) -> PathBuf {
        self.data_dir().join("kvform.db")
    }
    /// The state file for a configured `state { path }` (relative to the bucket root).
    pub fn state_file_for(&self, configured: &Path) -> PathBuf {
        if configured.is_absolute() { configured.to_path_buf() } else { self.root.join(configured) }
    }
    pub fn secrets_dir(&self) -> PathBuf {
        self.root.join("secrets")
    }
    pub fn key_file(&self) -> PathBuf {
        self.secrets_dir().join("kv.key")
    }
    pub fn old_key_file(&self) -> PathBuf {
        self.secrets_dir().join("kv.key.old")
    }
    /// Hook logs of one apply: `logs/<serial>/<job>/<command>@<host>.log`.
    pub fn logs_dir(&self) -> PathBuf {
        self.root.join("logs")
    }
}
