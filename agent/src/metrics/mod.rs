//! `hoist-agent --metrics-listen ADDR:PORT` (default `127.0.0.1:9323`, Docker's metrics port):
//! a TCP listener answering `GET /metrics` in Prometheus text, or OpenMetrics when the scraper's
//! `Accept` asks for it (`hoist_common::metrics`).
//!
//! Per container (labels `container`, `service`, `task`, `slot`, `node`, [`labels`]): CPU
//! seconds, memory usage and limit, network bytes, processes, restarts, OOM kills, running;
//! its health probes' results, latency and the health they gave; then image pulls. Usage is
//! read at scrape time straight from the files the kernel keeps (cgroup v1 or v2 and
//! `/proc/PID/net/dev`, [`sample`]) on two threads, no process started, so a scrape of 200
//! containers stays well under the 50 ms a 15 s scrape interval can afford; probes and pulls
//! are recorded as they happen ([`mod@events`]).
//!
//! Separate from the local API's unix socket on purpose: a scraper gets numbers, never the
//! container API. The default listens on loopback only; `--metrics-listen none` turns it off.

pub mod events;
pub mod exposition;
pub mod labels;
pub mod netdev;
pub mod sample;

pub use events::events;

use crate::containers::Manager;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use hoist_common::metrics::Exposition;
use prometheus_client::registry::Registry;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// The default `--metrics-listen`: loopback, Docker's metrics port.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9323";

/// Threads that read the containers' files during a scrape.
const SAMPLE_THREADS: usize = 2;

/// `--metrics-listen`: `IP:PORT`, or `none` (or nothing) for no listener.
pub fn parse_listen(flag: &str) -> Result<Option<SocketAddr>, String> {
    match flag.trim() {
        "" | "none" => Ok(None),
        addr => addr.parse().map(Some).map_err(|_| {
            format!("--metrics-listen {addr:?} is not IP:PORT (e.g. 127.0.0.1:9323) or none")
        }),
    }
}

/// What the listener needs.
#[derive(Debug, Clone)]
struct Ctx {
    mgr: Arc<Manager>,
}

/// Serves `GET /metrics` on `listener` for the life of the process.
pub async fn serve(listener: tokio::net::TcpListener, mgr: Arc<Manager>) -> std::io::Result<()> {
    let app = axum::Router::new()
        .route("/metrics", axum::routing::get(scrape))
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                axum::Json(serde_json::json!({
                    "code": "not_found",
                    "message": "this listener serves GET /metrics only"
                })),
            )
        })
        .with_state(Ctx { mgr });
    hoist_transport::serve(
        listener,
        app,
        hoist_transport::Limits::default(),
        std::future::pending(),
    )
    .await
}

async fn scrape(State(ctx): State<Ctx>, headers: HeaderMap) -> Response {
    let format = Exposition::from_accept(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
    match tokio::task::spawn_blocking(move || render(&ctx.mgr, format)).await {
        Ok(body) => ([(header::CONTENT_TYPE, format.content_type())], body).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("collecting the metrics failed: {e}\n"),
        )
            .into_response(),
    }
}

/// The whole answer (blocking: reads the containers' files).
pub fn render(mgr: &Manager, format: Exposition) -> String {
    let scrape = collect(mgr);
    let mut registry = Registry::default();
    registry.register_collector(Box::new(scrape));
    format.encode(&registry)
}

/// Gathers one scrape's values (blocking).
pub fn collect(mgr: &Manager) -> exposition::Scrape {
    let node = crate::worker::identity::load(&mgr.config.data_dir)
        .ok()
        .and_then(|i| i.node_id)
        .unwrap_or_default();
    let started = Instant::now();
    let containers = sample::all(mgr, &node, SAMPLE_THREADS);
    let collect_seconds = started.elapsed().as_secs_f64();
    let live: HashSet<&str> = containers.iter().map(|c| c.id.as_str()).collect();
    let probes = events().probes(&live);
    exposition::Scrape {
        probes,
        containers,
        pulls: Some(events().pulls()),
        node,
        collect_seconds,
    }
}

#[cfg(test)]
mod tests;
