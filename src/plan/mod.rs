//! The plan: `diff(desired, current) -> Plan` (pure), the rollout the apply executor
//! follows, the renderers (text, JSON, markdown), saved plans and the workspace digest.
//!
//! - [`types`] — `Plan`, `Change`, `Wave`/`JobRollout`/`Batch`, `Summary`, `PlanOptions`.
//! - [`diff`] — ownership-driven diff, purges, TTL expiry.
//! - [`certs`] — which certificates the plan (re)issues, and why.
//! - [`rollout`] — waves -> jobs -> allocation batches + hooks (single source of truth).
//! - [`render`] — `render_text`, `render_json`, `render_markdown`, `plan_schema`.
//! - [`saved`] — the `SavedPlan` document (encode/decode) and `check_applicable`.
//! - [`digest`] — `WorkspaceDigest` over file bytes (the shell reads the files).
//! - [`target`] — `--target JOB`: a plan narrowed to some jobs (a pure filter).
//!
//! No file I/O here: reading the workspace and writing plan files is `cli::plan_files`.

pub mod certs;
pub mod diff;
pub mod digest;
pub mod graph;
pub mod render;
pub mod rollout;
pub mod saved;
pub mod target;
pub mod types;

pub use diff::diff;
pub use digest::WorkspaceDigest;
pub use render::json::{PlanDocument, plan_schema, render_errored_json, render_json, write_document, write_json};
pub use render::markdown::{MarkdownOptions, render_markdown, render_markdown_with};
pub use render::text::{TextOptions, render_text};
pub use saved::{PlanError, SavedPlan, check_applicable};
pub use types::*;
