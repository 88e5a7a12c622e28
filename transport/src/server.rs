//! Serving a router on a listener, with the limits every Hoist listener has.
//!
//! `axum::serve` sets no timer on its connections, so hyper's header-read timeout never fires:
//! a client that opens a connection and sends half a request line holds it forever, and nothing
//! bounds how many such connections one client holds. This loop is axum's, plus three limits:
//!
//! - a connection must send a request's complete headers within
//!   [`Limits::header_read_timeout`] of opening or of its previous response: hyper starts that
//!   timer whenever a connection waits for a request, so it bounds slow headers and idle
//!   keep-alive connections alike;
//! - at most [`Limits::max_connections`] connections are served at once; the next ones wait in
//!   the kernel's accept queue until one closes (back-pressure, not errors);
//! - on shutdown, no new connection is accepted and open ones finish their current request.
//!
//! A TLS client that asks for HTTP/2 by ALPN (`h2`) gets it: all its requests share one
//! connection, however many wait at once (an agent's long polls, its heartbeats and its
//! reports), so a large cluster's members hold one connection per agent rather than one per
//! request in flight. HTTP/2 has no header-read timer, so the same limit is kept another way:
//! such a connection is closed once no request has been in flight on it for
//! [`Limits::header_read_timeout`] (which also bounds a stream whose headers never end: it is
//! not in flight until they have), and pinged after that long without a frame from the client,
//! to drop one whose client is gone.

use axum::serve::Listener;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulConnection;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::sync::{watch, Semaphore};
use tower::ServiceExt;

/// The limits of one listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// How long a connection may take to send a request's headers, counted from when it opens
    /// or when its previous response was written (so also how long it may sit idle).
    pub header_read_timeout: Duration,
    /// How many connections are served at once.
    pub max_connections: usize,
}

/// Default of [`Limits::header_read_timeout`] (hyper's own default once a timer is set).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Default of [`Limits::max_connections`]: every agent of a large cluster may hold its
/// connection to one member (one over HTTP/2; five over HTTP/1.1, one per request in flight:
/// three long polls, heartbeats and reports), and each costs some tens of KiB.
pub const MAX_CONNECTIONS: usize = 16_384;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read_timeout: HEADER_READ_TIMEOUT,
            max_connections: MAX_CONNECTIONS,
        }
    }
}

/// How often a listener that stays at its connection limit says so.
const FULL_WARN_EVERY: Duration = Duration::from_secs(60);

/// Serves `router` on `listener` with `limits` until `shutdown` completes, then waits for the
/// open connections to finish their requests.
pub async fn serve<L>(
    listener: L,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: Listener,
{
    serve_inner(listener, router, limits, None, Streams::new(), shutdown).await
}

/// The TLS configuration a listener serves with, or `None` while it has none (then it serves
/// plain HTTP only). Replaced when the member's certificate is renewed or the cluster's roots
/// change: each new connection takes the current one.
pub type TlsSource = watch::Receiver<Option<Arc<rustls::ServerConfig>>>;

/// As [`serve`], and TLS on the same listener: a connection whose first byte opens a TLS
/// handshake (0x16) is served over TLS with `tls`'s current configuration, and its requests
/// carry a [`TlsPeer`](crate::tls::TlsPeer) naming the client certificate's holder; any other
/// connection is plain HTTP. One port, so that operators, agents and members reach a member at
/// the address they always used, and a client upgrades to TLS without a new address.
pub async fn serve_tls<L>(
    listener: L,
    router: Router,
    limits: Limits,
    tls: TlsSource,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: Listener,
{
    serve_inner(
        listener,
        router,
        limits,
        Some(tls),
        Streams::new(),
        shutdown,
    )
    .await
}

/// A TLS connection handed to a [`StreamService`].
pub trait StreamIo: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> StreamIo for T {}

/// A protocol other than HTTP, served on the TLS connections that negotiate its ALPN name (see
/// [`serve_tls_with`]). It gets the connection after the handshake and the client certificate's
/// holder, and serves it until it closes; the listener's shutdown drops it.
pub trait StreamService: Send + Sync + 'static {
    fn serve(
        &self,
        io: Box<dyn StreamIo>,
        peer: crate::tls::TlsPeer,
    ) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

/// Stream protocols by ALPN name.
pub type Streams = Vec<(&'static [u8], Arc<dyn StreamService>)>;

/// As [`serve_tls`], and a TLS connection that negotiates one of `streams`' ALPN names goes to
/// that protocol instead of HTTP. The TLS configuration must offer those names (see
/// [`crate::tls::server_config_alpn`]); a client that asks for none gets HTTP as always.
pub async fn serve_tls_with<L>(
    listener: L,
    router: Router,
    limits: Limits,
    tls: TlsSource,
    streams: Streams,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: Listener,
{
    serve_inner(listener, router, limits, Some(tls), streams, shutdown).await
}

/// How many requests one HTTP/2 connection may have in flight at once (RFC 9113 advises no
/// fewer than 100; an agent has a handful).
const HTTP2_MAX_STREAMS: u32 = 100;

/// The first byte of a TLS connection (a handshake record).
const TLS_HANDSHAKE: u8 = 0x16;

async fn serve_inner<L>(
    mut listener: L,
    router: Router,
    limits: Limits,
    tls: Option<TlsSource>,
    streams: Streams,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: Listener,
{
    let streams = Arc::new(streams);
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut warned_full: Option<Instant> = None;
    // Dropping the receiver tells the accept loop and every connection to stop.
    let (signal_tx, signal_rx) = watch::channel(());
    tokio::spawn(async move {
        shutdown.await;
        drop(signal_rx);
    });
    // Every connection holds a receiver: the sender sees them all gone once the last closes.
    let (close_tx, close_rx) = watch::channel(());
    loop {
        let permit = match permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                if warned_full.is_none_or(|at| at.elapsed() >= FULL_WARN_EVERY) {
                    warned_full = Some(Instant::now());
                    tracing::warn!(
                        limit = limits.max_connections,
                        "connection limit reached: new connections wait until one closes"
                    );
                }
                tokio::select! {
                    p = permits.clone().acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => break,
                    },
                    _ = signal_tx.closed() => break,
                }
            }
        };
        let (io, _addr) = tokio::select! {
            conn = listener.accept() => conn,
            _ = signal_tx.closed() => break,
        };
        let router = router.clone();
        let signal_tx = signal_tx.clone();
        let close_rx = close_rx.clone();
        let tls = tls.as_ref().and_then(|t| t.borrow().clone());
        let streams = streams.clone();
        tokio::spawn(async move {
            match tls {
                None => connection(io, router, limits, &signal_tx, false).await,
                Some(config) => {
                    sniffed_connection(io, router, limits, config, &streams, &signal_tx).await
                }
            }
            drop(permit);
            drop(close_rx);
        });
    }
    drop(close_rx);
    drop(listener);
    close_tx.closed().await;
    Ok(())
}

/// A connection of a listener that also speaks TLS: plain or TLS by its first byte.
async fn sniffed_connection<I>(
    mut io: I,
    router: Router,
    limits: Limits,
    config: Arc<rustls::ServerConfig>,
    streams: &Streams,
    stop: &watch::Sender<()>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // The first byte counts against the header-read timeout like the rest of the headers.
    let mut first = [0u8; 1];
    match tokio::time::timeout(limits.header_read_timeout, io.read(&mut first)).await {
        Ok(Ok(1)) => {}
        _ => return,
    }
    let io = Rewind {
        first: Some(first[0]),
        inner: io,
    };
    if first[0] != TLS_HANDSHAKE {
        return connection(io, router, limits, stop, false).await;
    }
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let stream = match tokio::time::timeout(limits.header_read_timeout, acceptor.accept(io)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => return,
    };
    // Behind a pointer from here on: moved into the connection and its futures, it is otherwise
    // stored inline in each of them (several KiB per connection for as long as it lives).
    let stream = Box::new(stream);
    let peer = crate::tls::TlsPeer {
        identity: stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .and_then(|leaf| crate::tls::identity_of(leaf)),
    };
    let alpn = stream.get_ref().1.alpn_protocol();
    let http2 = alpn == Some(crate::tls::ALPN_HTTP2);
    if let Some((_, service)) = streams.iter().find(|(name, _)| Some(*name) == alpn) {
        let serving = service.serve(stream, peer);
        tokio::select! {
            _ = serving => {}
            _ = stop.closed() => {}
        }
        return;
    }
    let router = router.map_request(move |mut req: axum::extract::Request<Incoming>| {
        req.extensions_mut().insert(peer.clone());
        req
    });
    connection(stream, router, limits, stop, http2).await
}

/// Serves one connection's requests until it closes, or until `stop` says so (then its current
/// request finishes). Over HTTP/2 when it negotiated it (`http2`): then also closed gracefully
/// once no request has been in flight for [`Limits::header_read_timeout`], and pinged when the
/// client sent nothing for that long (no answer within it closes the connection).
async fn connection<I, S>(io: I, service: S, limits: Limits, stop: &watch::Sender<()>, http2: bool)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: tower::Service<
            axum::extract::Request<Incoming>,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let service = TowerToHyperService::new(service);
    if !http2 {
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout);
        let conn = Box::pin(builder.serve_connection(TokioIo::new(io), service));
        return drive(conn, stop, None).await;
    }
    let (in_flight, in_flight_rx) = watch::channel(0usize);
    let service = Counted {
        inner: service,
        in_flight: Arc::new(in_flight),
    };
    let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        // `Counted` dates the answers instead, unindexed (`date_header`).
        .auto_date_header(false)
        .max_concurrent_streams(HTTP2_MAX_STREAMS)
        .keep_alive_interval(limits.header_read_timeout)
        .keep_alive_timeout(limits.header_read_timeout);
    let conn = Box::pin(builder.serve_connection(TokioIo::new(io), service));
    drive(conn, stop, Some((in_flight_rx, limits.header_read_timeout))).await
}

/// Serves `conn` until it ends; shuts it down gracefully (its requests in flight finish) when
/// `stop` says so, or, given `idle`, once the count of requests in flight has stayed 0 for
/// that long.
async fn drive<C>(
    mut conn: Pin<Box<C>>,
    stop: &watch::Sender<()>,
    mut idle: Option<(watch::Receiver<usize>, Duration)>,
) where
    C: GracefulConnection,
    C::Error: std::fmt::Display,
{
    let mut stopping = std::pin::pin!(stop.closed());
    let mut stopped = false;
    loop {
        let idle_for = match &mut idle {
            Some((in_flight, limit)) => (*in_flight.borrow_and_update() == 0).then_some(*limit),
            None => None,
        };
        let changed = async {
            match &mut idle {
                // The connection holds the sender, so it outlives this loop; were it gone,
                // nothing would change any more.
                Some((in_flight, _)) => {
                    if in_flight.changed().await.is_err() {
                        std::future::pending::<()>().await
                    }
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            served = conn.as_mut() => {
                if let Err(e) = served {
                    tracing::trace!(error = %e, "connection ended");
                }
                break;
            }
            _ = &mut stopping, if !stopped => {
                stopped = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = changed => {}
            _ = tokio::time::sleep(idle_for.unwrap_or_default()), if idle_for.is_some() && !stopped => {
                stopped = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// A service that counts its requests in flight in `in_flight`: from when their headers are
/// complete until their response is ready (or the request is dropped). It also dates each
/// answer ([`date_header`]).
#[derive(Clone)]
struct Counted<S> {
    inner: S,
    in_flight: Arc<watch::Sender<usize>>,
}

/// One request counted in flight, until dropped.
struct InFlight(Arc<watch::Sender<usize>>);

impl InFlight {
    fn new(count: &Arc<watch::Sender<usize>>) -> InFlight {
        count.send_modify(|n| *n += 1);
        InFlight(count.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

impl<S, R, B> hyper::service::Service<R> for Counted<S>
where
    S: hyper::service::Service<R, Response = hyper::Response<B>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn call(&self, req: R) -> Self::Future {
        let counted = InFlight::new(&self.in_flight);
        let answer = self.inner.call(req);
        Box::pin(async move {
            let mut answer = answer.await;
            drop(counted);
            if let (Ok(resp), Some(date)) = (&mut answer, date_header()) {
                resp.headers_mut()
                    .entry(hyper::header::DATE)
                    .or_insert(date);
            }
            answer
        })
    }
}

/// The `date` of an HTTP/2 answer now, marked sensitive so that HPACK never indexes it. Its value
/// changes every second; hyper's own date header is indexed, so each connection's encoder kept
/// its table (4 KiB of header text, the size agents allow) full of past seconds: 5.7 KiB of
/// memory per agent connection in a heap profile, 0.9 KiB with this. Formatted once a second
/// per thread.
fn date_header() -> Option<hyper::header::HeaderValue> {
    use std::cell::RefCell;
    thread_local! {
        static NOW: RefCell<Option<(u64, hyper::header::HeaderValue)>> = const { RefCell::new(None) };
    }
    let now = std::time::SystemTime::now();
    let second = now.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
    NOW.with_borrow_mut(|cached| {
        if cached.as_ref().is_none_or(|(s, _)| *s != second) {
            let mut value =
                hyper::header::HeaderValue::from_str(&httpdate::fmt_http_date(now)).ok()?;
            value.set_sensitive(true);
            *cached = Some((second, value));
        }
        cached.as_ref().map(|(_, v)| v.clone())
    })
}

/// A stream with its first byte read already and given back to the next read.
struct Rewind<I> {
    first: Option<u8>,
    inner: I,
}

impl<I: AsyncRead + Unpin> AsyncRead for Rewind<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if buf.remaining() > 0 {
            if let Some(b) = self.first.take() {
                buf.put_slice(&[b]);
                return Poll::Ready(Ok(()));
            }
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Rewind<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests;
