//! Hooks: job commands run once per active allocation, and the loopback HTTP API they use
//! to read and write the store (SPEC §6).
//!
//! - [`access`] — the access table (who may read/write which namespace, per event).
//! - [`store`] — [`store::HookStore`], the seam to the state (the apply executor implements
//!   it over its write transaction), and an in-memory store.
//! - [`token`] — per-hook bearer tokens, issued at start and revoked at exit.
//! - [`semaphore`] — named semaphores per job + event.
//! - [`api`] — the HTTP server (axum, 127.0.0.1 only) and its routes.
//! - [`redact`] — [`redact::SeenSecrets`]: secret plaintexts a hook saw, redacted from its output.
//! - [`runner`] — running a hook process: environment, process group, timeout, logs.
//! - [`txn_store`] — [`store::HookStore`] over the state: the apply's write transaction
//!   ([`txn_store::TxnStore`]) or a read-only view ([`txn_store::ReadOnlyStore`]).
//! - [`steps_impl`] — [`steps_impl::RuntimeHooks`], the executor's hook steps, and the pieces
//!   `kvform run` / `kvform health` share with it.
//! - `python/kvform_hook.py` — the stdlib-only client module put on hooks' `PYTHONPATH`.

pub mod access;
pub mod api;
pub mod redact;
pub mod render_step;
mod routes;
pub mod runner;
pub mod semaphore;
pub mod steps_impl;
pub mod store;
pub mod token;
pub mod txn_store;
