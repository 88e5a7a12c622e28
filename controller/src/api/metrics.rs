//! `GET /metrics` and the middleware that counts every API request for it (see
//! [`crate::metrics`]). The route sits outside the `/v1` router, so the leader-forwarding
//! middleware never sees it: each member answers for itself.

use super::Ctx;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hoist_common::metrics::Exposition;
use std::time::Instant;

/// `GET /metrics`: Prometheus text, or OpenMetrics when `Accept` asks for it.
pub async fn scrape(State(ctx): State<Ctx>, headers: HeaderMap) -> Response {
    let format = Exposition::from_accept(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
    let body = crate::metrics::render(&ctx.node, &ctx.leader, format);
    ([(header::CONTENT_TYPE, format.content_type())], body).into_response()
}

/// Counts the request by its matched route (never the raw path: one series per route, not per
/// service name), method and answer status, and observes its latency.
pub async fn track(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = match req.method().as_str() {
        m @ ("GET" | "POST" | "PUT" | "DELETE" | "HEAD" | "PATCH" | "OPTIONS") => m.to_string(),
        _ => "other".to_string(),
    };
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let resp = next.run(req).await;
    crate::metrics::recorders().request(&method, &route, resp.status().as_u16(), started.elapsed());
    resp
}
