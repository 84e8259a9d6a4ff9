//! The one HTTP stack (axum on tokio) behind both servers: the per-command hook API
//! ([`crate::hooks::api`]) and `kvform serve` ([`crate::serve`]).
//!
//! [`Running`] owns a small runtime on its own thread, so callers stay synchronous (the
//! apply executor, `kvform health`) and stopping is one call: stop accepting, let requests
//! in flight finish, join.

use axum::Router;
use axum::body::Body;
use std::net::{SocketAddr, TcpListener};
use std::thread::JoinHandle;
use tokio::sync::oneshot;

/// The client's address, in every request's extensions (`ConnectInfo<Peer>`): the per-address
/// login limit of `kvform serve` keys on it.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, Accept>> for Peer {
    fn connect_info(stream: axum::serve::IncomingStream<'_, Accept>) -> Peer {
        Peer(*stream.remote_addr())
    }
}

/// The listener both servers accept on: TCP without Nagle delay (small JSON answers go out
/// at once; keep-alive clients otherwise wait on delayed ACKs).
pub struct Accept {
    tcp: tokio::net::TcpListener,
}

impl axum::serve::Listener for Accept {
    type Io = tokio::net::TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.tcp.accept().await {
                Ok((tcp, addr)) => {
                    let _ = tcp.set_nodelay(true);
                    return (tcp, addr);
                }
                // Out of file descriptors and the like: wait a little rather than spin.
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, TlsAccept>> for Peer {
    fn connect_info(stream: axum::serve::IncomingStream<'_, TlsAccept>) -> Peer {
        Peer(*stream.remote_addr())
    }
}

/// [`Accept`] with a TLS handshake: handshakes run as tasks of their own (a slow or silent
/// client holds up no one, and is dropped after [`HANDSHAKE_TIME`]); a connection that is
/// not TLS (plain HTTP to an HTTPS port) fails its handshake and is closed.
pub struct TlsAccept {
    tcp: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    handshakes: tokio::task::JoinSet<Option<(tokio_rustls::server::TlsStream<tokio::net::TcpStream>, SocketAddr)>>,
}

const HANDSHAKE_TIME: std::time::Duration = std::time::Duration::from_secs(10);

impl axum::serve::Listener for TlsAccept {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            tokio::select! {
                accepted = self.tcp.accept() => match accepted {
                    Ok((tcp, addr)) => {
                        let _ = tcp.set_nodelay(true);
                        let acceptor = self.acceptor.clone();
                        self.handshakes.spawn(async move {
                            let tls = tokio::time::timeout(HANDSHAKE_TIME, acceptor.accept(tcp)).await.ok()?.ok()?;
                            Some((tls, addr))
                        });
                    }
                    Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
                },
                Some(done) = self.handshakes.join_next(), if !self.handshakes.is_empty() => {
                    if let Ok(Some(ready)) = done {
                        return ready;
                    }
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// A server running on its own thread and runtime.
pub struct Running {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Running {
    /// Serve `router` on `listener` (already bound, so bind errors reach the caller
    /// synchronously) until [`Running::stop`].
    pub fn start(name: &str, listener: TcpListener, router: Router) -> std::io::Result<Running> {
        Running::start_tls(name, listener, router, None)
    }

    /// [`Running::start`], speaking TLS with `tls` when given.
    pub fn start_tls(
        name: &str,
        listener: TcpListener,
        router: Router,
        tls: Option<std::sync::Arc<tokio_rustls::rustls::ServerConfig>>,
    ) -> std::io::Result<Running> {
        listener.set_nonblocking(true)?;
        let runtime = runtime()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new().name(name.into()).spawn(move || {
            runtime.block_on(async move {
                let Ok(tcp) = tokio::net::TcpListener::from_std(listener) else { return };
                let shutdown = async move {
                    let _ = stopped.await;
                };
                let service = router.into_make_service_with_connect_info::<Peer>();
                let _ = match tls {
                    None => axum::serve(Accept { tcp }, service).with_graceful_shutdown(shutdown).await,
                    Some(config) => {
                        let acceptor = tokio_rustls::TlsAcceptor::from(config);
                        let listener = TlsAccept { tcp, acceptor, handshakes: tokio::task::JoinSet::new() };
                        axum::serve(listener, service).with_graceful_shutdown(shutdown).await
                    }
                };
            });
            // Blocking handlers still running (a semaphore waiter woken by shutdown) finish
            // here rather than being abandoned.
            runtime.shutdown_timeout(std::time::Duration::from_secs(5));
        })?;
        Ok(Running { stop: Some(stop), thread: Some(thread) })
    }

    /// Stop accepting, finish requests in flight, join the server thread.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.halt();
    }
}

/// The runtime both servers use: two workers (connections are cheap tasks; the real work
/// runs on the blocking pool, which grows as waiting handlers need it).
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).thread_name("kvform-http").enable_all().build()
}

/// Why a request body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("request body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("could not read the request body")]
    Unreadable,
}

impl BodyError {
    /// 413 or 400.
    pub fn status(&self) -> u16 {
        match self {
            BodyError::TooLarge(_) => 413,
            BodyError::Unreadable => 400,
        }
    }
}

/// After a body went over its limit, how much more of it the server reads (and discards)
/// so the client, still writing, gets to read the 413; past this (or [`DRAIN_TIME`]) the
/// connection is closed as before.
const DRAIN_MAX: usize = 64 << 20;
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(10);

/// The whole body, refusing more than `limit` bytes without buffering them.
///
/// A refusal must reach the client: closing the connection while it is still sending
/// resets the socket, and the client sees "connection reset" or a broken pipe instead of
/// the 413. So a declared length over the limit with `Expect: 100-continue` is refused
/// before the client sends anything (the body is never polled, so no `100 Continue` goes
/// out), and otherwise the rest of an oversized body is read and dropped (up to
/// [`DRAIN_MAX`]) before the answer.
pub async fn read_body(
    headers: &axum::http::HeaderMap,
    body: Body,
    limit: usize,
) -> Result<axum::body::Bytes, BodyError> {
    use axum::http::header;
    use http_body_util::BodyExt;
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok());
    let expects = headers
        .get(header::EXPECT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("100-continue"));
    if expects && declared.is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge(limit));
    }
    let mut body = body;
    let mut buf = Vec::new();
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(|_| BodyError::Unreadable)?.into_data() else { continue };
        if buf.len() + data.len() > limit {
            drain(body).await;
            return Err(BodyError::TooLarge(limit));
        }
        buf.extend_from_slice(&data);
    }
    Ok(buf.into())
}

/// Read and drop what is left of `body`, at most [`DRAIN_MAX`] bytes within [`DRAIN_TIME`].
async fn drain(mut body: Body) {
    use http_body_util::BodyExt;
    let read = async {
        let mut left = DRAIN_MAX;
        while let Some(Ok(frame)) = body.frame().await {
            let n = frame.data_ref().map_or(0, |d| d.len());
            if n >= left {
                return;
            }
            left -= n;
        }
    };
    let _ = tokio::time::timeout(DRAIN_TIME, read).await;
}
