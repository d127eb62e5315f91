//! The HTTP listener: HTTP/1.1 connections, each held to a header, body and idle deadline, and a
//! cap on open connections, so slow or idle clients cannot hold the process's file descriptors
//! and starve ingest (`axum::serve` has no timeouts). Graceful shutdown as in `axum::serve`: stop
//! accepting, let requests in progress finish, close idle connections.
//!
//! hyper's own `header_read_timeout` also starts while a kept-alive connection waits for its next
//! request, so it cannot tell "idle" from "sending headers slowly"; the watchdog here does.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::Router;
use bytes::Bytes;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::config::ServerConfig;

/// The deadlines and the connection cap (`[server]` in the configuration).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub header: Duration,
    pub body: Duration,
    pub idle: Duration,
    pub max_connections: usize,
}

/// File descriptors kept for the ledger, outbound requests and the rest of the process.
const FD_RESERVE: u64 = 256;

impl Limits {
    /// The configured limits, with `max_connections` kept under the file-descriptor limit (raised
    /// to the hard limit first if that is needed and allowed).
    pub fn from_config(c: &ServerConfig) -> Self {
        let wanted = c.max_connections as u64;
        let max_connections = fd_room(wanted + FD_RESERVE).saturating_sub(FD_RESERVE).clamp(1, wanted) as usize;
        if max_connections < c.max_connections {
            tracing::warn!(
                configured = c.max_connections,
                max_connections,
                "server.max_connections lowered to fit the file-descriptor limit (ulimit -n)"
            );
        }
        Self {
            header: Duration::from_millis(c.header_timeout_ms),
            body: Duration::from_millis(c.body_timeout_ms),
            idle: Duration::from_millis(c.idle_timeout_ms),
            max_connections,
        }
    }
}

/// How many file descriptors the process may open, after raising the soft limit towards `wanted`.
fn fd_room(wanted: u64) -> u64 {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    let current = limit.current.unwrap_or(u64::MAX);
    if current < wanted {
        let raised = limit.maximum.map_or(wanted, |max| max.min(wanted));
        if raised > current {
            limit.current = Some(raised);
            if setrlimit(Resource::Nofile, limit).is_ok() {
                return raised;
            }
        }
    }
    current
}

/// Serves `router` on `listener` until `stop`, then waits for open connections to finish.
pub async fn serve(listener: TcpListener, router: Router, limits: Limits, stop: CancellationToken) -> io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => p.map_err(io::Error::other)?,
            _ = stop.cancelled() => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors (EMFILE) or an aborted handshake: not fatal; pause so a
                    // full table does not spin the loop.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.cancelled() => break,
        };
        while connections.try_join_next().is_some() {}
        connections.spawn(connection(stream, peer, router.clone(), limits, stop.clone(), permit));
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// Where a connection stands, for its watchdog.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// No request in progress, since `since` (the last byte in or out).
    Idle,
    /// A request's first bytes came at `since`; its headers are not complete.
    Head,
    /// A request is with the router (its body has its own deadline).
    Busy,
}

struct Watch {
    phase: Phase,
    since: Instant,
    in_flight: usize,
}

/// The connection's [`Watch`], and a wake-up for its watchdog when the phase (and so the
/// deadline) changes.
#[derive(Clone)]
struct Shared(Arc<(Mutex<Watch>, Notify)>);

impl Shared {
    fn new() -> Self {
        let watch = Watch { phase: Phase::Idle, since: Instant::now(), in_flight: 0 };
        Self(Arc::new((Mutex::new(watch), Notify::new())))
    }

    fn with<T>(&self, f: impl FnOnce(&mut Watch) -> T) -> T {
        // Every update leaves the fields whole, so a poisoned lock is still consistent.
        let (watch, changed) = &*self.0;
        let mut w = watch.lock().unwrap_or_else(PoisonError::into_inner);
        let phase = w.phase;
        let out = f(&mut w);
        if w.phase != phase {
            changed.notify_one();
        }
        out
    }

    fn read(&self) {
        self.with(|w| {
            if w.phase == Phase::Idle {
                w.phase = Phase::Head;
                w.since = Instant::now();
            }
        });
    }

    fn wrote(&self) {
        self.with(|w| {
            if w.phase == Phase::Idle {
                w.since = Instant::now();
            }
        });
    }

    fn begin(&self) {
        self.with(|w| {
            w.in_flight += 1;
            w.phase = Phase::Busy;
        });
    }

    fn end(&self) {
        self.with(|w| {
            w.in_flight = w.in_flight.saturating_sub(1);
            if w.in_flight == 0 {
                w.phase = Phase::Idle;
                w.since = Instant::now();
            }
        });
    }

    /// Resolves when the connection has outstayed its phase's deadline; says which.
    async fn expired(&self, limits: Limits) -> &'static str {
        loop {
            let (deadline, why) = self.with(|w| match w.phase {
                Phase::Idle => (Some(w.since + limits.idle), "idle"),
                Phase::Head => (Some(w.since + limits.header), "headers too slow"),
                Phase::Busy => (None, ""),
            });
            let changed = self.0 .1.notified();
            match deadline {
                Some(at) if at <= Instant::now() => return why,
                Some(at) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(at) => {}
                        _ = changed => {}
                    }
                }
                // The body and the handler are bounded elsewhere.
                None => changed.await,
            }
        }
    }
}

async fn connection(
    stream: TcpStream,
    peer: std::net::SocketAddr,
    router: Router,
    limits: Limits,
    stop: CancellationToken,
    _permit: OwnedSemaphorePermit,
) {
    let watch = Shared::new();
    let io = TokioIo::new(Watched { inner: stream, watch: watch.clone() });
    let service_watch = watch.clone();
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let watch = service_watch.clone();
        let router = router.clone();
        watch.begin();
        let deadline = Instant::now() + limits.body;
        async move {
            let mut request = request.map(|body| Body::new(DeadlineBody::new(body, deadline, limits.body)));
            // Handlers that need the client's address (the capture rate limit) read it as axum's
            // `ConnectInfo`, as `into_make_service_with_connect_info` would have set it.
            request.extensions_mut().insert(axum::extract::ConnectInfo(peer));
            let response = router.oneshot(request).await;
            watch.end();
            response
        }
    });
    let conn = hyper::server::conn::http1::Builder::new().serve_connection(io, service);
    tokio::pin!(conn);
    let mut stopping = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            _ = stop.cancelled(), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
            why = watch.expired(limits) => {
                tracing::debug!(why, "closing a connection");
                return;
            }
        }
    }
}

/// The socket, telling the watchdog when bytes move.
struct Watched {
    inner: TcpStream,
    watch: Shared,
}

impl AsyncRead for Watched {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.watch.read();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.watch.wrote();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.watch.wrote();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A request body that fails with [`BodyTimeout`] once its deadline passes: one deadline for the
/// whole body, so trickling a byte at a time does not extend it.
struct DeadlineBody {
    inner: Incoming,
    deadline: Pin<Box<tokio::time::Sleep>>,
    limit: Duration,
}

impl DeadlineBody {
    fn new(inner: Incoming, deadline: Instant, limit: Duration) -> Self {
        Self { inner, deadline: Box::pin(tokio::time::sleep_until(deadline)), limit }
    }
}

impl hyper::body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(Box::new(BodyTimeout(self.limit)))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The request body did not arrive in time (`server.body_timeout_ms`).
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {} ms", .0.as_millis())]
pub struct BodyTimeout(pub Duration);

/// Whether `e` or an error it wraps is a [`BodyTimeout`].
pub fn is_body_timeout(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(e) = next {
        if e.is::<BodyTimeout>() {
            return true;
        }
        next = e.source();
    }
    false
}

/// Resolves on ctrl-c or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
