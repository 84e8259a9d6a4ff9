//! `kvform serve` (SPEC §9): one long-running process per bucket — the REST API under
//! `/api/v1`, Prometheus metrics at `/metrics` — on the same HTTP stack as the hook API
//! ([`crate::http`]), with the same key rules as `kvform kv set` ([`crate::kv::rules`]).
//!
//! - [`access`] — the role table (reader, writer, admin) and token namespace patterns.
//! - [`rest`] — the routes and their handlers.
//! - [`metrics`] — counters, gauges and histograms through `prometheus-client` (`kvform_*`).
//! - [`openapi`] — the OpenAPI 3 document served at `/api/v1/openapi.json`.
//! - [`search`] — `GET /api/v1/search` (the operation is [`crate::ops::search`]); `ui_search`
//!   its page in the UI.
//! - `watch` — what wakes a watch (`?index=N&wait=`): commits, not a poll.
//! - [`ui`] — the web UI at `/` (sessions, CSRF, forms); `ui_pages` renders its HTML.
//! - [`tls`] — HTTPS: a certificate from files, or one issued from the bucket CA.
//!
//! Reads use one read-only connection (SQLite WAL or PostgreSQL MVCC: never waiting for the
//! apply lock); each write
//! opens the state, takes the write lock for at most [`WRITE_LOCK_TIMEOUT`] like `kv set`,
//! and commits one change set.

pub mod access;
mod api_types;
mod keys;
pub mod metrics;
pub mod openapi;
pub mod rest;
mod search;
pub mod tls;
mod tokens;
pub mod ui;
mod ui_pages;
mod ui_search;
mod watch;

use crate::bucket::Bucket;
use crate::plan::Plan;
use crate::state::{Location, StateError, StateStore};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// How long a write waits for a running `apply` before answering 503.
pub const WRITE_LOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// The plan of the workspace against the state, computed by the CLI's pipeline (the shell
/// hands it in so `serve` plans exactly as `kvform plan` does).
pub type Planner = Arc<dyn Fn() -> Result<Plan, String> + Send + Sync>;

/// What `kvform serve` needs from the shell.
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub bucket: Bucket,
    /// The bucket's state: an SQLite file or a PostgreSQL bucket (`state { backend }`).
    pub location: Location,
    pub max_versions: u32,
    pub planner: Planner,
    /// HTTPS with this configuration ([`tls`]); `None` serves plain HTTP.
    pub tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    /// `/metrics` without a token (`--metrics-public`), for scrapers that carry none.
    pub metrics_public: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}\n  help: pick another address with --listen 127.0.0.1:PORT")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error(transparent)]
    State(#[from] StateError),
    #[error("cannot read {}: {reason}\n  help: --tls-cert takes a PEM certificate chain (the server's first), --tls-key its PEM private key", .path.display())]
    TlsFile { path: std::path::PathBuf, reason: String },
    #[error(
        "cannot serve TLS with {what}: {reason}\n  help: check that the key belongs to the certificate (or use --tls-from-ca)"
    )]
    Tls { what: String, reason: String },
    #[error(
        "--tls-from-ca issues a certificate for the listen address, and `{0}` names no host\n  help: listen on the address clients connect to (`--listen 10.0.0.5:7400`), or bring a certificate for your host name with --tls-cert FILE --tls-key FILE"
    )]
    FromCaUnspecified(SocketAddr),
    #[error(transparent)]
    Certs(crate::certs::CertsError),
}

/// Shared by every request.
pub(crate) struct App {
    pub(crate) bucket: Bucket,
    pub(crate) location: Location,
    pub(crate) max_versions: u32,
    pub(crate) planner: Planner,
    reader: Mutex<StateStore>,
    pub(crate) metrics: metrics::Metrics,
    pub(crate) sessions: ui::Sessions,
    /// Failed logins per client address (the UI's `/login` limit).
    pub(crate) logins: ui::LoginLimit,
    /// Served over TLS: the UI's cookies get `Secure`.
    pub(crate) tls: bool,
    /// `/metrics` answers without a token.
    pub(crate) metrics_public: bool,
    /// What wakes the watches: every commit, this server's or another process's.
    pub(crate) changes: watch::Changes,
}

impl App {
    /// The read connection (with the keyring when the bucket has one, for `--reveal` tokens).
    /// A PostgreSQL session known to be gone (a query failed on it) is replaced first.
    pub(crate) fn reader(&self) -> MutexGuard<'_, StateStore> {
        let mut r = self.reader.lock().unwrap_or_else(|p| p.into_inner());
        if r.connection_lost() {
            // Still down: the old session stays, and the request's query reports it closed.
            let _ = r.reconnect();
        }
        r
    }

    /// `f` on the read connection, from an async handler. PostgreSQL's client blocks on a
    /// runtime of its own, which tokio refuses on one of its worker threads, so there `f`
    /// runs in `block_in_place`; an SQLite read is a few microseconds and stays where it is.
    ///
    /// A session the server ended (a restart, a failover, `pg_terminate_backend`) is only
    /// seen when a query fails on it (the server's goodbye, or the socket closed); then `f`
    /// runs once more on a new session, so the server outlives its database's restarts
    /// without a failed request. Every request's first read (its token, the state's serial)
    /// comes through here.
    pub(crate) fn read<T>(&self, f: impl Fn(&StateStore) -> Result<T, StateError>) -> Result<T, StateError> {
        let run = || {
            let mut r = self.reader();
            match f(&r) {
                Err(e) if e.is_unavailable() || r.connection_lost() => {
                    r.reconnect()?;
                    f(&r)
                }
                done => done,
            }
        };
        if self.location.is_remote() { tokio::task::block_in_place(run) } else { run() }
    }
}

/// A running server; [`Server::stop`] finishes requests in flight and releases the state.
///
/// The server keeps its own handle on the [`App`] so the read connection is closed on the
/// thread that stops the server, after the HTTP thread is joined: the router's handle is
/// dropped inside the HTTP runtime's `block_on`, and a PostgreSQL client closing its
/// session there panics ("Cannot start a runtime from within a runtime" — the `postgres`
/// crate drives a runtime of its own). Fields drop in order: `running` (joined) first.
pub struct Server {
    addr: SocketAddr,
    running: crate::http::Running,
    app: Arc<App>,
}

impl Server {
    pub fn start(cfg: ServeConfig) -> Result<Server, ServeError> {
        let mut reader = cfg.location.open_read_only()?;
        if let Ok(ring) = crate::secrets::Keyring::load(&cfg.bucket) {
            reader = reader.with_keyring(ring);
        }
        let listener =
            std::net::TcpListener::bind(cfg.listen).map_err(|source| ServeError::Bind { addr: cfg.listen, source })?;
        let addr = listener.local_addr().map_err(|source| ServeError::Bind { addr: cfg.listen, source })?;
        let metrics = metrics::Metrics::new(&cfg.bucket.logs_dir());
        // PostgreSQL: LISTEN on the bucket's channel; SQLite (no target): the state file's events.
        let changes = watch::Changes::start(reader.pg_target().cloned(), reader.path());
        let app = Arc::new(App {
            bucket: cfg.bucket,
            location: cfg.location,
            max_versions: cfg.max_versions,
            planner: cfg.planner,
            reader: Mutex::new(reader),
            metrics,
            sessions: ui::Sessions::default(),
            logins: ui::LoginLimit::default(),
            tls: cfg.tls.is_some(),
            metrics_public: cfg.metrics_public,
            changes,
        });
        let running = crate::http::Running::start_tls("kvform-serve", listener, rest::router(app.clone()), cfg.tls)
            .map_err(|source| ServeError::Bind { addr: cfg.listen, source })?;
        Ok(Server { addr, running, app })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stop accepting, finish requests in flight, close the state (here, on the caller's
    /// thread, outside any runtime).
    pub fn stop(self) {
        let Server { running, app, .. } = self;
        running.stop();
        drop(app);
    }
}
