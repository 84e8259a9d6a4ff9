//! The apply executor (SPEC §5): one write transaction, bucket-level namespaces first, then
//! jobs wave by wave, each job in its own checkpoint (savepoint), allocation namespaces batch
//! by batch in rollout order, hook steps plugged in at the points SPEC §5 names.
//!
//! The executor drives; hooks are reached only through [`HookSteps`], so the executor can run
//! without hooks ([`NoHooks`]) and the hook runtime (`crate::hooks`) stays independent of it.
//!
//! The write transaction is shared as [`SharedTxn`] because hooks write through the loopback
//! API while the executor waits for them: never hold the lock while a hook runs.
//!
//! - [`executor`] — [`execute`] and [`post_build`].
//! - [`job`] — one job's checkpoint: namespaces, stops, `pre_deploy`, batches, rollout events.
//! - [`certs`] — the certificate material of `(known after apply)` changes, made in the transaction.
//! - [`reorder`] — the one-apply `rollout_order` override.
//! - [`progress`] — the [`Progress`] events the CLI shows.

pub mod certs;
pub mod executor;
pub mod job;
pub mod progress;
pub mod reorder;
pub mod steps;

pub use executor::{
    APPLY_WRITER, ApplyError, ApplyOptions, ApplyReport, PostBuildReport, SkippedJob, execute, has_post_build,
    post_build,
};
pub use job::EventEnv;
pub use progress::{NoProgress, Progress, ProgressEvent};
pub use steps::{HookSteps, NoHooks, StepContext, StepFailure};

use crate::state::WriteTxn;
use std::sync::{Arc, Mutex};

/// The apply's write transaction, shared between the executor and the hook API thread.
pub type SharedTxn = Arc<Mutex<WriteTxn>>;
