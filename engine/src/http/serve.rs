//! The HTTP/1.1 listener: every connection bounded in time and in number.
//!
//! `axum::serve` keeps every connection for as long as its peer likes: idle keep-alive
//! connections, half-sent headers and silent sockets stayed open forever, and at a 1,024
//! file limit 1,100 of them took `/healthz` down and left the call loop unable to open
//! SQLite. Here:
//! - a request's headers must arrive within [`Limits::header_read`];
//! - a connection with no request under way is closed after [`Limits::idle`] without a
//!   byte from its peer;
//! - at most [`Limits::max_connections`] are open at once, a number that leaves file
//!   descriptors for the database, the component cache and outbound calls. When a new one
//!   arrives at the cap, the connection idle the longest is closed to make room, so a
//!   flood of idle sockets never keeps Twilio's webhooks or a health check out. Only when
//!   every connection has a request under way is the newcomer turned away.

use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore, watch};

/// How connections are bounded.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest wait for a request's headers, from the first byte (or from the connection's
    /// opening, for its first request).
    pub header_read: Duration,
    /// Longest a connection with no request under way stays open without a byte from its
    /// peer.
    pub idle: Duration,
    /// Most connections open at once.
    pub max_connections: usize,
}

/// File descriptors kept out of the connection cap: SQLite's pool (three files a
/// connection: the database, its WAL and shared memory), the component cache, the
/// listener, and outbound connections to Twilio, SNS and fallbacks. Half the limit when
/// the limit is small.
const RESERVED_DESCRIPTORS: u64 = 128;

impl Limits {
    /// 10 s for headers, 60 s idle, and a cap that fits the process's file limit.
    pub fn for_file_limit(open_files: u64) -> Self {
        let reserve = RESERVED_DESCRIPTORS.min(open_files / 2);
        Self {
            header_read: Duration::from_secs(10),
            idle: Duration::from_secs(60),
            max_connections: usize::try_from(open_files.saturating_sub(reserve).clamp(16, 65_536))
                .unwrap_or(65_536),
        }
    }
}

/// Raises the soft limit on open files to the hard limit, and returns the soft limit now
/// in force. Many systems start services at a soft limit of 1,024 with a hard limit far
/// above: every connection is a descriptor.
pub fn raise_file_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(e) => {
            tracing::warn!(error = %e, "could not raise the open file limit");
            rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft)
        }
    }
}

/// One open connection, as the accept loop sees it.
#[derive(Debug)]
struct Connection {
    /// Requests under way.
    in_flight: AtomicUsize,
    /// Milliseconds since the server started, of the last byte read or written.
    last_activity: AtomicU64,
    /// Told to close at once (evicted).
    evict: Notify,
}

#[derive(Debug)]
struct Registry {
    started: Instant,
    connections: Mutex<HashMap<u64, Arc<Connection>>>,
}

impl Registry {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Tells the connection idle the longest to close; false when none is idle.
    fn evict_idlest(&self) -> bool {
        let connections = self.connections.lock().expect("connection registry");
        let idlest = connections
            .values()
            .filter(|c| c.in_flight.load(Ordering::Acquire) == 0)
            .min_by_key(|c| c.last_activity.load(Ordering::Relaxed));
        match idlest {
            Some(c) => {
                c.evict.notify_one();
                true
            }
            None => false,
        }
    }
}

/// Serves `app` on `listener` until `stop` says so; then stops accepting, lets requests
/// under way finish (up to 10 s), and returns.
pub async fn serve(
    listener: TcpListener,
    app: axum::Router,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let registry = Arc::new(Registry {
        started: Instant::now(),
        connections: Mutex::default(),
    });
    let mut next_id = 0u64;
    let mut refused_last_logged: Option<Instant> = None;
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors, or the peer gave up: wait a little, never spin.
                    tracing::warn!(error = %e, "could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stopped(&mut stop) => break,
        };
        let permit = match slots.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) if registry.evict_idlest() => {
                match tokio::time::timeout(Duration::from_secs(1), slots.clone().acquire_owned())
                    .await
                {
                    Ok(Ok(permit)) => permit,
                    _ => continue,
                }
            }
            Err(_) => {
                if refused_last_logged.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                    tracing::warn!(max = limits.max_connections, %peer,
                        "every connection has a request under way; a new one was refused");
                    refused_last_logged = Some(Instant::now());
                }
                drop(stream);
                continue;
            }
        };
        next_id += 1;
        let id = next_id;
        let connection = Arc::new(Connection {
            in_flight: AtomicUsize::new(0),
            last_activity: AtomicU64::new(registry.now_ms()),
            evict: Notify::new(),
        });
        registry
            .connections
            .lock()
            .expect("connection registry")
            .insert(id, connection.clone());
        let registry = registry.clone();
        let app = app.clone();
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let _permit = permit;
            serve_connection(stream, peer, app, limits, &connection, &registry, &mut stop).await;
            registry
                .connections
                .lock()
                .expect("connection registry")
                .remove(&id);
        });
    }
    drop(listener);
    // Every connection holds a slot until it ends: all of them back means all ended.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(Duration::from_secs(10), slots.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!("connections still open 10 s after shutdown began are dropped");
    }
}

async fn serve_connection(
    stream: TcpStream,
    peer: std::net::SocketAddr,
    app: axum::Router,
    limits: Limits,
    connection: &Arc<Connection>,
    registry: &Arc<Registry>,
    stop: &mut watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let io = TokioIo::new(Watched {
        inner: stream,
        connection: connection.clone(),
        registry: registry.clone(),
        idle: limits.idle,
        deadline: None,
    });
    let counted = {
        let connection = connection.clone();
        tower::service_fn(
            move |mut request: axum::extract::Request<hyper::body::Incoming>| {
                let connection = connection.clone();
                let app = app.clone();
                // The peer, for what limits by address (the console's sign-in).
                request
                    .extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                async move {
                    let _guard = InFlight::begin(&connection);
                    tower::ServiceExt::oneshot(app, request.map(axum::body::Body::new)).await
                }
            },
        )
    };
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read)
        .serve_connection(io, TowerToHyperService::new(counted));
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        // Evicted: it has no request under way, so there is nothing to finish.
        _ = connection.evict.notified() => return,
        _ = stopped(stop) => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}

/// Resolves once the server is told to stop (or its stopper is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    while !*stop.borrow_and_update() {
        if stop.changed().await.is_err() {
            return;
        }
    }
}

/// Counts a request under way on its connection while it lives.
struct InFlight(Arc<Connection>);

impl InFlight {
    fn begin(connection: &Arc<Connection>) -> Self {
        connection.in_flight.fetch_add(1, Ordering::AcqRel);
        Self(connection.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A socket that notes its last activity, and whose reads fail with `TimedOut` once no
/// byte has come for the idle limit while no request is under way.
struct Watched {
    inner: TcpStream,
    connection: Arc<Connection>,
    registry: Arc<Registry>,
    idle: Duration,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Watched {
    fn touch(&mut self) {
        self.connection
            .last_activity
            .store(self.registry.now_ms(), Ordering::Relaxed);
        self.deadline = None;
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(result) => {
                if buf.filled().len() > before {
                    self.touch();
                }
                Poll::Ready(result)
            }
            Poll::Pending => {
                let idle = self.idle;
                let deadline = self
                    .deadline
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
                ready!(deadline.as_mut().poll(cx));
                if self.connection.in_flight.load(Ordering::Acquire) > 0 {
                    // A handler is at work; hyper is only watching for the peer closing.
                    let deadline = self.deadline.insert(Box::pin(tokio::time::sleep(idle)));
                    let _ = deadline.as_mut().poll(cx);
                    return Poll::Pending;
                }
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "idle connection closed",
                )))
            }
        }
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = ready!(Pin::new(&mut self.inner).poll_write(cx, buf));
        if matches!(written, Ok(n) if n > 0) {
            self.touch();
        }
        Poll::Ready(written)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let written = ready!(Pin::new(&mut self.inner).poll_write_vectored(cx, bufs));
        if matches!(written, Ok(n) if n > 0) {
            self.touch();
        }
        Poll::Ready(written)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
