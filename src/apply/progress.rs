//! What the executor reports while it runs. The CLI turns these events into plain lines
//! (non-TTY) or progress bars (TTY); tests record them. Events are facts, not text: the
//! implementor decides how to show them.

use crate::plan::BatchKind;

/// One step of an apply, in the order the executor takes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProgressEvent<'a> {
    /// Before anything runs: how many jobs and allocation batches' hosts the rollout has.
    Started { jobs: usize, allocations: usize },
    /// The bucket-level namespaces were written (step 1).
    BucketLevel { namespaces: usize },
    /// A job's checkpoint opened.
    JobStarted { wave: u32, job: &'a str },
    /// A batch's allocation namespaces were written and its hooks passed.
    BatchDone { job: &'a str, kind: BatchKind, hosts: &'a [String] },
    /// The job's checkpoint was kept.
    JobDone { job: &'a str },
    /// The job's checkpoint was rolled back.
    JobFailed { job: &'a str, message: &'a str },
    /// The job was not started because a job it demands failed or was skipped.
    JobSkipped { job: &'a str, because: &'a str },
    /// Something the operator should know that does not fail the apply.
    Warning(&'a str),
    /// `post_build` hooks of a job (after commit).
    PostBuild { job: &'a str },
    /// The executor is done (committed or rolled back).
    Finished,
}

/// Receives [`ProgressEvent`]s.
pub trait Progress {
    fn event(&mut self, event: ProgressEvent<'_>);
}

/// Discards every event.
pub struct NoProgress;

impl Progress for NoProgress {
    fn event(&mut self, _: ProgressEvent<'_>) {}
}
