//! Finding a job's templates (SPEC §12): every file whose name ends in `.tpl` under
//! `workspace/jobs/<job>/`, at any depth (maand `transpile` walks the job's staged files),
//! read with the workspace's rules: a `.tpl` that exists but cannot be read is an error,
//! never a template silently left out.

use super::source::{ReadError, read_regular};
use std::path::{Path, PathBuf};

/// One template of a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobTemplate {
    /// Path under the job's directory, `/`-separated (`conf/app.yaml.tpl`).
    pub rel: String,
    /// Bucket-relative path, for messages (`workspace/jobs/api/conf/app.yaml.tpl`).
    pub shown: String,
    pub text: String,
}

impl JobTemplate {
    /// Where the rendered file goes under the job's staged directory: the path without
    /// `.tpl` (maand: `config.json.tpl` → `config.json`).
    pub fn output(&self) -> &str {
        self.rel.strip_suffix(".tpl").unwrap_or(&self.rel)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot read {path}: {source}")]
pub struct TemplateReadError {
    pub path: String,
    #[source]
    pub source: ReadError,
}

/// The templates of the job whose directory is `job_dir`, sorted by path. `shown_prefix` is
/// the directory as the user names it (`workspace/jobs/api`).
pub fn job_templates(job_dir: &Path, shown_prefix: &str, limit: u64) -> Result<Vec<JobTemplate>, TemplateReadError> {
    let found = files_under(job_dir, |name| name.ends_with(".tpl"))
        .map_err(|e| TemplateReadError { path: shown_prefix.to_string(), source: e.into() })?;
    let mut out = Vec::with_capacity(found.len());
    for (rel, path) in found {
        let shown = format!("{shown_prefix}/{rel}");
        let fail = |source: ReadError| TemplateReadError { path: shown.clone(), source };
        let bytes = read_regular(&path, limit).map_err(fail)?.ok_or_else(|| {
            fail(ReadError::Io(std::io::Error::new(std::io::ErrorKind::NotFound, "it disappeared while being read")))
        })?;
        let text = String::from_utf8(bytes).map_err(|_| {
            fail(ReadError::Io(std::io::Error::new(std::io::ErrorKind::InvalidData, "it is not UTF-8 text")))
        })?;
        out.push(JobTemplate { rel, shown, text });
    }
    Ok(out)
}

/// The files below `dir` whose name `keep` accepts, as (`/`-separated path under `dir`,
/// path), sorted; none when `dir` does not exist. Directories are entered, symlinked ones are
/// not (a link out of the tree is not part of it).
pub fn files_under(dir: &Path, keep: impl Fn(&str) -> bool) -> std::io::Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    walk(dir, "", &keep, &mut out)?;
    out.sort();
    Ok(out)
}

fn walk(dir: &Path, rel: &str, keep: &impl Fn(&str) -> bool, out: &mut Vec<(String, PathBuf)>) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let child = if rel.is_empty() { name.clone() } else { format!("{rel}/{name}") };
        let kind = entry.file_type()?;
        if kind.is_dir() {
            walk(&entry.path(), &child, keep, out)?;
        } else if keep(&name) {
            out.push((child, entry.path()));
        }
    }
    Ok(())
}
