//! kvform — a Terraform-style declarative reconciler for a fleet catalog.
//!
//! # Layout
//!
//! A pure core and a thin I/O shell (see `ARCHITECTURE.md`):
//!
//! - [`diag`] — spans, the source map and the rustc-style diagnostic renderer.
//! - [`workspace`] — finds and parses every workspace file (HCL with spans, JSON with
//!   positions) into typed, validated [`workspace::types::Workspace`].
//! - [`model`] — pure domain: placement, ports, resources, dependency waves and the
//!   projection into desired KV ([`model::types::Desired`]).
//! - [`kv`] — namespaces, the ownership table, value formats, state snapshots.
//! - [`plan`] — `diff(desired, current) -> Plan` and its renderers (text, JSON, markdown).
//! - [`state`] — the SQLite state store: schema, snapshot, write transactions, lock,
//!   history, GC, backup.
//! - [`secrets`] — the key file and AES-256-GCM sealing of `secrets/job/*` values.
//! - [`apply`] — the executor: waves, checkpoints, rollout batches.
//! - [`hooks`] — hook processes, the loopback HTTP API and the access table.
//! - [`serve`] — `kvform serve`: REST API, tokens' access table, metrics.
//! - [`http`] — the one HTTP stack (axum on tokio) both servers run on.
//! - [`cli`] — clap definitions, one file per command; the only place that knows about
//!   terminals and exit codes.
//! - [`bucket`] — where a bucket's files live.

pub mod apply;
pub mod bucket;
pub mod certs;
pub mod cli;
pub mod clock;
pub mod diag;
pub mod hooks;
pub mod http;
pub mod kv;
pub mod model;
pub mod ops;
pub mod plan;
pub mod secrets;
pub mod serve;
pub mod state;
pub mod templates;
pub mod workspace;
