//! Connections: the accept loop, the connection limit, the header-read,
//! keep-alive and idle timeouts, and the graceful drain. axum's own
//! `serve` has none of these: idle and half-sent connections stayed open
//! for ever (about 20,000 of them took every file descriptor), and a
//! shutdown waited its whole grace for a client still sending headers.
//!
//! Each connection is served by hyper's HTTP/1 connection (keep-alive and
//! pipelining included) over a socket that notes when bytes move; a small
//! loop beside it closes the connection when the rule of its state
//! expires:
//! - waiting for a request (fresh, or a request's head started): the
//!   whole head within `header_read_timeout`, from the accept or from the
//!   head's first byte;
//! - between two requests on a kept-alive connection: the next one within
//!   `keep_alive_timeout`;
//! - serving a request: some byte read or written every `idle_timeout`
//!   (a stream writes a comment every 15 s, so only a client that stopped
//!   reading, or a body that stopped arriving, is cut).

use crate::metrics::Metrics;
use axum::Router;
use axum::body::{Body, HttpBody};
use axum::extract::ConnectInfo;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// What a connection may take (the command line's `--max-connections`
/// and timeouts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Open connections at most; past it a new one gets a 503 and is
    /// closed.
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub keep_alive_timeout: Duration,
    pub idle_timeout: Duration,
}

/// `wanted`, or less when the process may not open that many files (the
/// listener, logs and Redis need some too: 100 are kept for them).
pub fn within_open_files(wanted: usize) -> usize {
    let soft = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|l| open_files(&l));
    soft.map_or(wanted, |n| wanted.min(n.saturating_sub(100).max(1)))
}

/// The soft "Max open files" of a `/proc/PID/limits` text.
fn open_files(limits: &str) -> Option<usize> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The answer to a connection past the limit, the server's usual 503
/// body: sent without reading the request, then the connection is closed.
fn refusal(max_connections: usize) -> Arc<[u8]> {
    let body = serde_json::to_string(&wire::protocol::ErrorBody::new(
        wire::protocol::BodyErrorKind::Overloaded,
        format!("the server has {max_connections} connections open (--max-connections); retry after 1 second"),
    ))
    .expect("an error body serializes");
    format!(
        "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
    .into()
}

/// What a connection is doing, as its socket and its requests tell.
struct Watch {
    base: Instant,
    /// Milliseconds from `base`, of the last byte read or written.
    last_io: AtomicU64,
    /// Requests whose response is not over.
    busy: AtomicUsize,
    /// 1 + milliseconds from `base` when a request's head began to
    /// arrive; 0 when none is arriving.
    head_started: AtomicU64,
    /// Milliseconds from `base` when the connection last had nothing to
    /// do (accepted, or a response ended).
    idle_since: AtomicU64,
    served: AtomicU64,
    /// A reload: every answer from now on says `Connection: close`, so
    /// the connection ends after the next answer whose head is still to
    /// be sent (hyper closes after it), and its client knows.
    closing: std::sync::atomic::AtomicBool,
    /// A change the watching loop must see (a head began, a response ended).
    changed: tokio::sync::Notify,
}

/// Why a connection was closed by a timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expired {
    HeaderRead,
    KeepAlive,
    Idle,
}

impl Expired {
    pub fn as_str(self) -> &'static str {
        match self {
            Expired::HeaderRead => "header_read",
            Expired::KeepAlive => "keep_alive",
            Expired::Idle => "idle",
        }
    }
}

impl Watch {
    fn new() -> Self {
        Watch {
            base: Instant::now(),
            last_io: AtomicU64::new(0),
            busy: AtomicUsize::new(0),
            head_started: AtomicU64::new(0),
            idle_since: AtomicU64::new(0),
            served: AtomicU64::new(0),
            closing: std::sync::atomic::AtomicBool::new(false),
            changed: tokio::sync::Notify::new(),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn read(&self) {
        let now = self.now();
        self.last_io.store(now, Ordering::Relaxed);
        if self.busy.load(Ordering::Acquire) == 0
            && self
                .head_started
                .compare_exchange(0, now + 1, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            self.changed.notify_one();
        }
    }

    fn wrote(&self) {
        self.last_io.store(self.now(), Ordering::Relaxed);
    }

    fn request_began(&self) {
        self.busy.fetch_add(1, Ordering::AcqRel);
        self.head_started.store(0, Ordering::Release);
        self.served.fetch_add(1, Ordering::Relaxed);
    }

    fn response_ended(&self) {
        self.idle_since.store(self.now(), Ordering::Relaxed);
        self.busy.fetch_sub(1, Ordering::AcqRel);
        self.changed.notify_one();
    }

    fn busy(&self) -> bool {
        self.busy.load(Ordering::Acquire) > 0
    }

    /// The rule that applies now and when it expires (ms from `base`).
    fn deadline(&self, l: &Limits) -> (Expired, u64) {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        if self.busy() {
            let last = self.last_io.load(Ordering::Relaxed);
            return (Expired::Idle, last.saturating_add(ms(l.idle_timeout)));
        }
        let head = self.head_started.load(Ordering::Acquire);
        if head > 0 {
            return (
                Expired::HeaderRead,
                (head - 1).saturating_add(ms(l.header_read_timeout)),
            );
        }
        let idle = self.idle_since.load(Ordering::Relaxed);
        if self.served.load(Ordering::Relaxed) == 0 {
            (
                Expired::HeaderRead,
                idle.saturating_add(ms(l.header_read_timeout)),
            )
        } else {
            (
                Expired::KeepAlive,
                idle.saturating_add(ms(l.keep_alive_timeout)),
            )
        }
    }
}

/// A socket that tells its [`Watch`] when bytes move.
struct Watched {
    io: TcpStream,
    watch: Arc<Watch>,
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.io).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.watch.read();
        }
        r
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.watch.wrote();
        }
        r
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.watch.wrote();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// A response body that tells its [`Watch`] when the response is over
/// (sent, or dropped with its connection).
struct Tracked {
    inner: Body,
    watch: Arc<Watch>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.watch.response_ended();
    }
}

impl HttpBody for Tracked {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Serves `router` on `listener` until `shutdown` resolves; then stops
/// accepting, closes every connection with no request in progress, lets
/// open responses finish for up to `grace`, and cuts what remains.
/// How one generation of the accept loop ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Drain {
    /// Shutdown: idle and half-sent connections close at once, open
    /// streams get the grace.
    Stop,
    /// A graceful reload: a new generation accepts on the same listener;
    /// here each connection ends after its next answer whose head is not
    /// yet sent, which says `Connection: close`, so no client meets a
    /// connection closed under its request. No answer is cut: when the
    /// grace ends, idle connections close and busy ones finish.
    Reload,
}

pub async fn serve(
    listener: Arc<TcpListener>,
    router: Router,
    metrics: Arc<Metrics>,
    limits: Limits,
    shutdown: impl Future<Output = Drain> + Send + 'static,
    grace: Duration,
) {
    let tracker = TaskTracker::new();
    let stop = CancellationToken::new();
    let force = CancellationToken::new();
    let reload = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let open = Arc::new(AtomicUsize::new(0));
    let refused = refusal(limits.max_connections);
    tokio::pin!(shutdown);
    let drain = loop {
        let (tcp, peer) = tokio::select! {
            d = &mut shutdown => break d,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors, most likely: the backlog
                    // waits while open connections time out.
                    tracing::error!(error = %e, openConnections = open.load(Ordering::Relaxed), "Cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        if open.load(Ordering::Relaxed) >= limits.max_connections {
            metrics.connection_refused();
            tracing::warn!(peer = %peer, maxConnections = limits.max_connections, "Connection refused: the connection limit is reached");
            tracker.spawn(refuse(tcp, Arc::clone(&refused)));
            continue;
        }
        let _ = tcp.set_nodelay(true);
        open.fetch_add(1, Ordering::Relaxed);
        metrics.set_connections(open.load(Ordering::Relaxed));
        let (router, metrics, open) = (router.clone(), Arc::clone(&metrics), Arc::clone(&open));
        let ends = Ends {
            stop: stop.clone(),
            force: force.clone(),
            reload: Arc::clone(&reload),
        };
        tracker.spawn(async move {
            connection(tcp, peer, router, &metrics, limits, ends).await;
            let left = open.fetch_sub(1, Ordering::Relaxed) - 1;
            metrics.set_connections(left);
        });
    };
    drop(listener);
    if drain == Drain::Reload {
        tracing::info!(
            openConnections = open.load(Ordering::Relaxed),
            graceSeconds = grace.as_secs_f64(),
            "Reloading: a new generation accepts; this one ends each connection after its next answer"
        );
        reload.store(true, Ordering::Release);
    } else {
        tracing::info!(
            activeStreams = metrics.active(),
            openConnections = open.load(Ordering::Relaxed),
            graceSeconds = grace.as_secs_f64(),
            "Shutting down: no new connections, open streams may finish"
        );
    }
    stop.cancel();
    tracker.close();
    if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
        metrics.grace_over();
        tracing::warn!(
            activeStreams = metrics.active(),
            openConnections = open.load(Ordering::Relaxed),
            "Shutdown grace period over; the server closes the remaining streams"
        );
        force.cancel();
        tracker.wait().await;
    }
}

/// A connection past the limit: the 503, then closed (never read, so
/// nothing of it waits in memory).
async fn refuse(mut tcp: TcpStream, answer: Arc<[u8]>) {
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = tcp.write_all(&answer).await;
        let _ = tcp.shutdown().await;
    })
    .await;
}

/// How a connection learns that its generation ends.
struct Ends {
    stop: CancellationToken,
    force: CancellationToken,
    /// Set before `stop` when the end is a reload ([`Drain::Reload`]).
    reload: Arc<std::sync::atomic::AtomicBool>,
}

async fn connection(
    tcp: TcpStream,
    peer: SocketAddr,
    router: Router,
    metrics: &Metrics,
    limits: Limits,
    ends: Ends,
) {
    let Ends {
        stop,
        force,
        reload,
    } = ends;
    let watch = Arc::new(Watch::new());
    let io = hyper_util::rt::TokioIo::new(Watched {
        io: tcp,
        watch: Arc::clone(&watch),
    });
    let service = {
        let watch = Arc::clone(&watch);
        hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            watch.request_began();
            req.extensions_mut().insert(ConnectInfo(peer));
            let watch = Arc::clone(&watch);
            let router = router.clone();
            async move {
                let mut resp = router
                    .oneshot(req.map(Body::new))
                    .await
                    .unwrap_or_else(|never| match never {});
                if watch.closing.load(Ordering::Acquire) {
                    resp.headers_mut().insert(
                        axum::http::header::CONNECTION,
                        axum::http::HeaderValue::from_static("close"),
                    );
                }
                Ok::<_, std::convert::Infallible>(resp.map(|inner| Tracked { inner, watch }))
            }
        })
    };
    let mut http = hyper::server::conn::http1::Builder::new();
    // The head's time is this module's to keep (hyper's own timer would
    // also count the wait between two requests).
    http.header_read_timeout(None);
    let conn = http.serve_connection(io, service);
    tokio::pin!(conn);
    let mut draining = false;
    // A reload's grace ended while it served: it finishes that answer.
    let mut spared = false;
    loop {
        let (rule, at_ms) = watch.deadline(&limits);
        let at = watch.base + Duration::from_millis(at_ms);
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(peer = %peer, error = %e, "Connection ended with an error");
                }
                return;
            }
            () = stop.cancelled(), if !draining => {
                draining = true;
                if reload.load(Ordering::Acquire) {
                    // Ends after its next answer that can still say so.
                    watch.closing.store(true, Ordering::Release);
                    continue;
                }
                conn.as_mut().graceful_shutdown();
                if !watch.busy() {
                    return; // no request in progress: nothing to drain
                }
            }
            () = force.cancelled(), if !spared => {
                // A reload cuts no answer: a request that came on this
                // connection after the reload (its client had it pooled)
                // is served whole, and says `Connection: close`.
                if reload.load(Ordering::Acquire) && watch.busy() {
                    spared = true;
                    continue;
                }
                return;
            }
            () = watch.changed.notified() => {}
            () = tokio::time::sleep_until(at) => {
                // The rule may have changed since (a request began): only
                // an expiry of the rule in force closes.
                let (now_rule, now_at) = watch.deadline(&limits);
                if now_rule == rule && watch.now() >= now_at {
                    metrics.connection_timed_out(rule.as_str());
                    tracing::info!(peer = %peer, timeout = rule.as_str(), served = watch.served.load(Ordering::Relaxed), "Connection closed: {} timeout", rule.as_str().replace('_', "-"));
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max_connections: 10,
            header_read_timeout: Duration::from_millis(100),
            keep_alive_timeout: Duration::from_millis(300),
            idle_timeout: Duration::from_millis(500),
        }
    }

    #[test]
    fn each_state_has_its_rule() {
        let w = Watch::new();
        // Fresh: the head within the header timeout of the accept.
        assert_eq!(w.deadline(&limits()), (Expired::HeaderRead, 100));
        // A head began at 40 ms: 100 ms from then.
        w.head_started.store(41, Ordering::Relaxed);
        assert_eq!(w.deadline(&limits()), (Expired::HeaderRead, 140));
        // Serving: some byte every idle timeout.
        w.request_began();
        w.last_io.store(200, Ordering::Relaxed);
        assert_eq!(w.deadline(&limits()), (Expired::Idle, 700));
        // A byte read while serving starts no head (a pipelined request).
        w.read();
        assert_eq!(w.head_started.load(Ordering::Relaxed), 0);
        // Between requests: the keep-alive timeout from the response's end.
        w.response_ended();
        let idle = w.idle_since.load(Ordering::Relaxed);
        assert_eq!(w.deadline(&limits()), (Expired::KeepAlive, idle + 300));
        // The next request's first byte starts its head's clock.
        w.read();
        assert_eq!(w.deadline(&limits()).0, Expired::HeaderRead);
    }

    #[test]
    fn the_limit_stays_under_the_open_files() {
        let text = "Limit                     Soft Limit           Hard Limit           Units\nMax cpu time              unlimited            unlimited            seconds\nMax open files            1024                 524288               files\n";
        assert_eq!(open_files(text), Some(1024));
        assert_eq!(open_files("Max open files unlimited unlimited files"), None);
        assert!(within_open_files(usize::MAX) < usize::MAX);
    }

    #[test]
    fn the_refusal_is_a_complete_http_answer() {
        let answer = refusal(7);
        let text = std::str::from_utf8(&answer).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 503 "), "{head}");
        assert!(head.contains(&format!("Content-Length: {}", body.len())));
        assert!(head.contains("Retry-After: 1"));
        let v: wire::protocol::ErrorBody = serde_json::from_str(body).unwrap();
        assert_eq!(v.error.kind, wire::protocol::BodyErrorKind::Overloaded);
        assert!(v.error.message.contains("7 connections"));
    }
}
