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

use axum::serve::Listener;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{watch, Semaphore};

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

/// Default of [`Limits::max_connections`]: every agent of a large cluster may hold a long poll
/// to one member, and each connection costs a few KiB.
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
    mut listener: L,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: Listener,
{
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
        let service = TowerToHyperService::new(router.clone());
        let signal_tx = signal_tx.clone();
        let close_rx = close_rx.clone();
        tokio::spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout);
            let conn = builder.serve_connection(TokioIo::new(io), service);
            tokio::pin!(conn);
            let mut stopping = std::pin::pin!(signal_tx.closed());
            let mut stopped = false;
            loop {
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

#[cfg(test)]
mod tests;
