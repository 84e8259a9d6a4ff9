//! `kvform serve [--listen 127.0.0.1:7400]`: the REST API and metrics of one bucket until
//! SIGINT/SIGTERM (then: stop accepting, finish requests in flight, close the state, exit 0).

use super::Context;
use super::session::Session;
use crate::serve::{Planner, ServeConfig, Server};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// Serve the bucket's state over HTTP: REST API (/api/v1), Prometheus metrics (/metrics).
///
/// Every request needs a token: `kvform token create NAME --role reader|writer|admin`
/// (/metrics too, unless --metrics-public).
///
/// Examples:
///   kvform serve
///   kvform serve --listen 127.0.0.1:7401
///   kvform serve --listen 10.0.0.5:7400 --tls-from-ca     # clients: curl --cacert secrets/ca.crt
///   kvform serve --listen 0.0.0.0:7400 --tls-cert server.crt --tls-key server.key
///   kvform serve --metrics-public                        # Prometheus scrapes /metrics without a token
///   curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:7400/api/v1/namespaces
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Address to listen on. Off loopback, plain HTTP is refused unless --insecure-http.
    #[arg(long, default_value = "127.0.0.1:7400")]
    listen: SocketAddr,
    /// Serve plain HTTP on a non-loopback address anyway (tokens and session cookies cross
    /// the network in clear: only behind a TLS proxy or on a network you trust).
    #[arg(long, conflicts_with = "tls_from_ca")]
    insecure_http: bool,
    /// Serve HTTPS with this certificate (PEM; the chain, the server's certificate first).
    #[arg(long, value_name = "FILE", requires = "tls_key", conflicts_with_all = ["tls_from_ca", "insecure_http"])]
    tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Serve HTTPS with a certificate issued at start from the bucket CA (secrets/ca.crt) for
    /// the --listen address; its key stays in memory (clients trust secrets/ca.crt).
    #[arg(long)]
    tls_from_ca: bool,
    /// Serve /metrics without a token, for a scraper that carries none (the API and the UI
    /// still need one). Metrics show counts, timings, job and host names and certificate
    /// expiries, never keys' values.
    #[arg(long)]
    metrics_public: bool,
}

/// Plain HTTP off loopback would send bearer tokens and session cookies in clear.
fn check_plain_http(listen: SocketAddr, tls: bool, insecure_http: bool) -> anyhow::Result<()> {
    if listen.ip().is_loopback() || tls || insecure_http {
        return Ok(());
    }
    anyhow::bail!(
        "refusing to serve plain HTTP on `{listen}`, which is not a loopback address: API tokens and session cookies would cross the network in clear\n  help: serve HTTPS with `--tls-cert FILE --tls-key FILE` (or `--tls-from-ca`), or pass `--insecure-http` if a TLS proxy or a trusted network protects it"
    )
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    // Checks the bucket, kvform.hcl and KVFORM_NOW once, up front; a long-running server
    // then reads the clock per request (TTLs, token expiry).
    let tls_wanted = args.tls_from_ca || args.tls_cert.is_some();
    check_plain_http(args.listen, tls_wanted, args.insecure_http)?;
    let session = Session::new(ctx)?;
    let location = session.state_location();
    // The plan route plans exactly as `kvform plan` does, through the CLI's pipeline.
    let dir = ctx.dir.clone();
    let planner: Planner = Arc::new(move || {
        let ctx = Context { dir: dir.clone(), printer: super::printer::Printer::new(false, false, true) };
        let loaded = super::pipeline::load(&ctx).map_err(|e| format!("{e:#}"))?;
        let store = loaded.open_state().map_err(|e| format!("{e:#}"))?;
        let planned = loaded
            .plan(&ctx, store.as_ref(), &crate::plan::PlanOptions::default(), crate::state::ReadMode::Incremental)
            .map_err(|e| format!("{e:#}"))?;
        Ok(planned.plan)
    });
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(crate::serve::tls::from_files(cert, key)?),
        _ if args.tls_from_ca => Some(crate::serve::tls::from_ca(&session.bucket, args.listen, session.now)?),
        _ => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let cfg = ServeConfig {
        tls,
        listen: args.listen,
        max_versions: session.settings.max_versions,
        bucket: session.bucket,
        location,
        planner,
        metrics_public: args.metrics_public,
    };
    let server = Server::start(cfg)?;
    if !args.listen.ip().is_loopback() && !tls_wanted {
        ctx.printer.warn(&format!(
            "serving plain HTTP on {} (--insecure-http): API tokens and session cookies cross the network in clear",
            args.listen
        ));
    }
    ctx.printer.info(&format!("serving on {scheme}://{} (Ctrl-C to stop)", server.local_addr()));
    wait_for_signal()?;
    ctx.printer.info("stopping: finishing requests in flight");
    server.stop();
    Ok(ExitCode::SUCCESS)
}

/// Block until SIGINT or SIGTERM.
fn wait_for_signal() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r,
            _ = term.recv() => Ok(()),
        }
    })?;
    Ok(())
}
