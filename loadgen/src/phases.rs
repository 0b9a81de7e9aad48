//! Where a request's time went before its response head, from the
//! client's own connection: on a new connection, name resolution (our
//! resolver), TCP connect and the TLS handshake (a layer around reqwest's
//! connector, and the TLS session store rustls reads as it writes its
//! ClientHello); on every request, when its body was handed to the
//! connection. A request on a pooled connection has no connection
//! phases.
//!
//! The connector and the resolver run in the request's own task (hyper's
//! client races the pool against a new connection inside the request's
//! future), so they find the request's [`Phases`] in a task-local; a
//! connection finished in the background after the pool won belongs to no
//! request and is not stamped.

use bytes::Bytes;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::time::Instant;

/// The moments of one request's connection phases.
#[derive(Clone, Copy, Debug, Default)]
pub struct Phases {
    pub dns: Option<(Instant, Instant)>,
    /// The connector's whole call: resolution, TCP connect, TLS.
    pub connect: Option<(Instant, Instant)>,
    /// When rustls began the handshake (the TCP connection was up).
    pub tls_start: Option<Instant>,
    /// When the body was handed to the connection.
    pub written: Option<Instant>,
}

/// The phases as durations, in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Durations {
    pub dns_us: Option<u64>,
    pub connect_us: Option<u64>,
    pub tls_us: Option<u64>,
    /// From the send to the body handed to the connection.
    pub written_us: Option<u64>,
}

fn us(from: Instant, to: Instant) -> u64 {
    u64::try_from(to.saturating_duration_since(from).as_micros()).unwrap_or(u64::MAX)
}

impl Phases {
    /// The durations, with the request sent at `start`: TCP connect is
    /// the connector's call less resolution before it and TLS after it.
    pub fn durations(&self, start: Instant) -> Durations {
        let connect = self.connect.map(|(from, to)| {
            let tcp_from = self.dns.map_or(from, |(_, end)| end.max(from));
            let tcp_to = self.tls_start.map_or(to, |t| t.min(to));
            (
                us(tcp_from, tcp_to),
                self.tls_start.map(|t| us(t.min(to), to)),
            )
        });
        Durations {
            // A name resolved for a connection this request did not end up
            // using (the pool served it first) is not its phase.
            dns_us: self
                .dns
                .filter(|_| self.connect.is_some())
                .map(|(from, to)| us(from, to)),
            connect_us: connect.map(|(tcp, _)| tcp),
            tls_us: connect.and_then(|(_, tls)| tls),
            written_us: self.written.map(|w| us(start, w)),
        }
    }
}

/// A request's phases, shared with the connection that serves it.
pub type Cell = Arc<Mutex<Phases>>;

tokio::task_local! {
    static CURRENT: Cell;
}

/// Runs `request` (a request's send, up to its response head) with `cell`
/// as the place its connection phases are stamped.
pub async fn scope<F: Future>(cell: Cell, request: F) -> F::Output {
    CURRENT.scope(cell, request).await
}

fn stamp(f: impl FnOnce(&mut Phases)) {
    let _ = CURRENT.try_with(|c| f(&mut c.lock().expect("phases lock")));
}

/// Name resolution through the system's resolver (as reqwest's own),
/// stamped.
#[derive(Debug, Default)]
pub struct Resolver;

impl reqwest::dns::Resolve for Resolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let from = Instant::now();
            let addrs: Vec<std::net::SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            // The task that finishes it: a request's own, or none when
            // the pool served the request first (see `Timed`).
            let end = Instant::now();
            stamp(|p| p.dns = Some((from, end)));
            let addrs: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// The layer around reqwest's connector that stamps its whole call.
#[derive(Clone, Copy, Debug, Default)]
pub struct Connect;

impl<S> tower_layer::Layer<S> for Connect {
    type Service = Timed<S>;
    fn layer(&self, inner: S) -> Timed<S> {
        Timed(inner)
    }
}

#[derive(Clone, Debug)]
pub struct Timed<S>(S);

impl<S, R> tower_service::Service<R> for Timed<S>
where
    S: tower_service::Service<R>,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: R) -> Self::Future {
        let from = Instant::now();
        let connecting = self.0.call(req);
        Box::pin(async move {
            let conn = connecting.await;
            // Stamped in the task that finishes it. When the pool gave the
            // request a connection first, hyper finishes this one in the
            // background: no request's task, no stamp (it did not serve
            // the request that started it).
            if conn.is_ok() {
                let end = Instant::now();
                stamp(|p| p.connect = Some((from, end)));
            }
            conn
        })
    }
}

/// The TLS session store, delegating to rustls's own, that stamps the
/// start of a handshake: rustls reads it (a key-share hint, a ticket to
/// resume) as it writes the ClientHello, right after the TCP connect.
#[derive(Debug)]
pub struct SessionStore(Arc<dyn rustls::client::ClientSessionStore>);

impl SessionStore {
    pub fn new(inner: Arc<dyn rustls::client::ClientSessionStore>) -> Self {
        Self(inner)
    }
}

fn tls_started() {
    stamp(|p| {
        p.tls_start.get_or_insert_with(Instant::now);
    });
}

type ServerName<'a> = rustls::pki_types::ServerName<'a>;

impl rustls::client::ClientSessionStore for SessionStore {
    fn set_kx_hint(&self, name: ServerName<'static>, group: rustls::NamedGroup) {
        self.0.set_kx_hint(name, group);
    }

    fn kx_hint(&self, name: &ServerName<'_>) -> Option<rustls::NamedGroup> {
        tls_started();
        self.0.kx_hint(name)
    }

    fn set_tls12_session(
        &self,
        name: ServerName<'static>,
        value: rustls::client::Tls12ClientSessionValue,
    ) {
        self.0.set_tls12_session(name, value);
    }

    fn tls12_session(
        &self,
        name: &ServerName<'_>,
    ) -> Option<rustls::client::Tls12ClientSessionValue> {
        tls_started();
        self.0.tls12_session(name)
    }

    fn remove_tls12_session(&self, name: &ServerName<'static>) {
        self.0.remove_tls12_session(name);
    }

    fn insert_tls13_ticket(
        &self,
        name: ServerName<'static>,
        value: rustls::client::Tls13ClientSessionValue,
    ) {
        self.0.insert_tls13_ticket(name, value);
    }

    fn take_tls13_ticket(
        &self,
        name: &ServerName<'static>,
    ) -> Option<rustls::client::Tls13ClientSessionValue> {
        tls_started();
        self.0.take_tls13_ticket(name)
    }
}

/// A request body of known length that stamps when the connection takes
/// it (hyper polls the body as it writes the request).
pub struct Body {
    data: Option<Bytes>,
    len: u64,
    cell: Cell,
}

impl Body {
    pub fn new(data: Vec<u8>, cell: Cell) -> Self {
        Self {
            len: data.len() as u64,
            data: Some(Bytes::from(data)),
            cell,
        }
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        let data = self.data.take();
        if data.is_some() {
            self.cell.lock().expect("phases lock").written = Some(Instant::now());
        }
        Poll::Ready(data.map(|d| Ok(http_body::Frame::data(d))))
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        let left = self.data.as_ref().map_or(0, |_| self.len);
        http_body::SizeHint::with_exact(left)
    }
}
