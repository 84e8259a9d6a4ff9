//! The key rules every writer obeys — `kvform kv set`, the hook API and `kvform serve` call
//! these same functions (ARCHITECTURE: one set of key rules, whichever door a write uses).

use super::{ExternalWrites, NamespaceKind};

/// A write the key rules refuse; the message says what and the `help:` what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error(
        "unknown namespace {0:?}\n  help: namespaces follow the layout: maand/bucket, maand/worker/<host>, maand/job/<job>, vars/bucket, vars/job/<job>, secrets/job/<job>, …"
    )]
    UnknownNamespace(String),
    #[error(
        "{0} is owned by the workspace: change the workspace and run `kvform apply`\n  help: operators and hooks write only vars/job/<job> and secrets/job/<job>"
    )]
    Owned(String),
    /// The message of [`crate::kv::keys`] (the one key rule set), e.g. "invalid key …".
    #[error("{0}")]
    BadKey(String),
    #[error("{0}: `{1}` is not a job name\n  help: job names match ^[a-z0-9][a-z0-9_-]*$ (lower case)")]
    BadJob(String, String),
    #[error(
        "{0}: there is no job `{1}` in the workspace (workspace/jobs/{1}/manifest.json), so the next `kvform apply` would purge this key\n  help: check the job name, or add the job to the workspace first"
    )]
    NoSuchJob(String, String),
}

/// The namespace, which must be in the layout.
pub fn namespace(ns: &str) -> Result<NamespaceKind, RuleError> {
    NamespaceKind::parse(ns).ok_or_else(|| RuleError::UnknownNamespace(ns.to_string()))
}

/// The namespace, which must accept operator writes.
pub fn writable(ns: &str) -> Result<ExternalWrites, RuleError> {
    match namespace(ns)?.rule().external_writes {
        ExternalWrites::Refused => Err(RuleError::Owned(ns.to_string())),
        w => Ok(w),
    }
}

/// The key rules of [`crate::kv::keys`] (characters, segments, length), as a rule error.
pub fn check_key(key: &str) -> Result<(), RuleError> {
    crate::kv::keys::check_key(key).map_err(|e| RuleError::BadKey(e.message))
}

/// A write to `vars/job/<job>` or `secrets/job/<job>` must name a job of the workspace: the
/// next plan purges the namespaces of jobs it does not know, so a typo would be lost silently.
pub fn job_in_workspace(b: &crate::bucket::Bucket, ns: &str) -> Result<(), RuleError> {
    let Some(job) = namespace(ns)?.job().map(str::to_string) else { return Ok(()) };
    if !crate::workspace::json_files::manifest::is_job_name(&job) {
        return Err(RuleError::BadJob(ns.to_string(), job));
    }
    if !b.jobs_dir().join(&job).join("manifest.json").is_file() {
        return Err(RuleError::NoSuchJob(ns.to_string(), job));
    }
    Ok(())
}
