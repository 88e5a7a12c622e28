//! Leader forwarding: every `/v1` request is buffered; when its handler answers "not the leader,
//! but X is", the same request is sent once to X and X's answer is returned. A forwarded request
//! carries `x-hoist-forwarded` and is never forwarded again. The streaming routes (logs, exec,
//! session output) are not buffered but streamed both ways: `stream_forward.rs`.
//!
//! Version headers travel through: the leader sees the client's (an agent's format decides the
//! body of the leader's answer), and the client sees the leader's, not this member's, so an agent
//! speaking to a 0.1.0 leader through an upgraded member stays in format 0. A format-1 body is
//! not forwarded to a leader that reads only format 0: the answer says to retry, without
//! version headers, so the agent retries in format 0.

use super::body::{buffer, BLOB_LIMIT, JSON_LIMIT};
use super::error::{ApiError, LeaderHint};
use super::Ctx;
use crate::raft::peers::body_format;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hoist_proto::format::{FORMAT_HEADER, OLDEST_FORMAT_HEADER, VERSION_HEADER};

pub const FORWARDED: &str = "x-hoist-forwarded";

/// The middleware (see the module doc).
pub async fn forward_to_leader(State(ctx): State<Ctx>, req: Request, next: Next) -> Response {
    if let Some(refused) = certificate_elsewhere(&ctx, &req) {
        return refused;
    }
    if let Some(streams) = super::stream_forward::streaming(req.method(), req.uri().path()) {
        // Boxed, as is the forwarding below: a request answered here (every long poll on the
        // leader) then holds a small future while it waits, not room for both paths.
        return Box::pin(super::stream_forward::forward(ctx, req, next, streams)).await;
    }
    let method = req.method().clone();
    let uri = req.uri().clone();
    let headers = req.headers().clone();
    let operator_certificate = operator_certificate(&req);
    let forwarded = headers.contains_key(FORWARDED);
    let limit = if uri.path() == "/v1/cluster/snapshot" {
        BLOB_LIMIT
    } else {
        JSON_LIMIT
    };
    let (parts, body) = req.into_parts();
    let bytes = match buffer(&headers, body, limit).await {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    // A request only the leader can answer goes there at once when another member leads;
    // otherwise the handler runs here and may still answer "not the leader, but X is".
    let known_elsewhere = match ctx.node.leader() {
        Some((id, addr)) if id != ctx.node.id() && needs_leader(&method, &uri) => {
            if let Some(refused) = older_leader(&ctx, &headers, id, &addr) {
                return refused;
            }
            Some(addr)
        }
        _ => None,
    };
    let leader = match known_elsewhere {
        Some(addr) if !forwarded => addr,
        _ => {
            let resp = next
                .run(Request::from_parts(parts, Body::from(bytes.clone())))
                .await;
            let Some(LeaderHint(leader)) = resp.extensions().get::<LeaderHint>().cloned() else {
                return resp;
            };
            if forwarded {
                return resp;
            }
            if body_format(&headers) > ctx.node.peers().format_at(&leader) {
                return older_leader_refusal(&leader);
            }
            leader
        }
    };
    Box::pin(send_to_leader(
        &ctx,
        &leader,
        method,
        &uri,
        &headers,
        bytes,
        operator_certificate,
    ))
    .await
}

/// Sends the buffered request to the leader at `leader` and answers with what it answered.
async fn send_to_leader(
    ctx: &Ctx,
    leader: &str,
    method: axum::http::Method,
    uri: &axum::http::Uri,
    headers: &axum::http::HeaderMap,
    bytes: axum::body::Bytes,
    operator_certificate: Option<(header::HeaderName, header::HeaderValue)>,
) -> Response {
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let timeout = std::time::Duration::from_secs(if is_long_poll(uri, headers) { 65 } else { 10 });
    // Between members: over mutual TLS once this member has a certificate.
    let sent = ctx.node.peer_clients().send(leader, |client, base| {
        let mut out = client
            .request(method.clone(), format!("{base}{path}"))
            .timeout(timeout)
            .header(FORWARDED, "1")
            .body(bytes.clone());
        for h in [
            header::CONTENT_TYPE,
            header::IF_NONE_MATCH,
            header::AUTHORIZATION,
        ]
        .into_iter()
        .chain(version_headers())
        {
            if let Some(v) = headers.get(&h) {
                out = out.header(h, v);
            }
        }
        if let Some((k, v)) = &operator_certificate {
            out = out.header(k, v);
        }
        out
    });
    match sent.await {
        Ok(r) => {
            let status = r.status();
            let kept: Vec<_> = [header::CONTENT_TYPE, header::ETAG]
                .into_iter()
                .chain(version_headers())
                .filter_map(|h| Some((h.clone(), r.headers().get(&h)?.clone())))
                .collect();
            match r.bytes().await {
                Ok(body) => {
                    let mut resp = (status, body).into_response();
                    // Replacing, not adding: the body's own type must not stand beside the
                    // leader's.
                    for (k, v) in kept {
                        resp.headers_mut().insert(k, v);
                    }
                    resp
                }
                Err(e) => outcome_unknown(leader, &e),
            }
        }
        Err(e) if e.is_connect() => leader_unreachable(leader, &e),
        Err(e) => outcome_unknown(leader, &e),
    }
}

/// What a member forwarding `req` says of the operator certificate it came with, if any
/// (`operator_certs.rs`): the certificate cannot travel with the request.
pub(super) fn operator_certificate(
    req: &Request,
) -> Option<(header::HeaderName, header::HeaderValue)> {
    let certificate = req
        .extensions()
        .get::<hoist_transport::tls::TlsPeer>()
        .and_then(|p| p.identity.as_ref());
    super::operator_certs::forwarded_header(certificate, req.headers())
}

/// An agent request authenticated by its node certificate is not forwarded: the certificate
/// was verified on this member's TLS connection and cannot travel with the request, so the
/// agent is told where the leader is and goes there itself (its client moves on to the next
/// member on a 503).
fn certificate_elsewhere(ctx: &Ctx, req: &Request) -> Option<Response> {
    let by_certificate = req
        .extensions()
        .get::<hoist_transport::tls::TlsPeer>()
        .and_then(|p| p.identity.as_ref())
        .is_some_and(|i| i.role == hoist_transport::tls::CertRole::Node);
    if !by_certificate || !req.uri().path().starts_with("/v1/agent/") {
        return None;
    }
    let (id, addr) = ctx.node.leader()?;
    (id != ctx.node.id()).then(|| {
        let mut resp = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_leader",
            format!(
                "this member is not the leader; the leader is at {addr}: agents with \
                 certificates talk to it directly"
            ),
        )
        .into_response();
        super::error::leader_header(&mut resp, &addr);
        ours(resp)
    })
}

/// The refusal to forward a newer body than the leader `id` at `addr` reads, if it does not.
fn older_leader(
    ctx: &Ctx,
    headers: &axum::http::HeaderMap,
    id: u64,
    addr: &str,
) -> Option<Response> {
    (body_format(headers) > ctx.node.peers().format_of(id)).then(|| older_leader_refusal(addr))
}

/// Said without version headers, so that the agent retries in format 0.
pub(super) fn older_leader_refusal(addr: &str) -> Response {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "older_leader",
        format!("the leader at {addr} runs an older Hoist: retry in format 0"),
    )
    .into_response()
}

/// The headers that say a process's version.
pub(super) fn version_headers() -> [header::HeaderName; 3] {
    [VERSION_HEADER, FORMAT_HEADER, OLDEST_FORMAT_HEADER].map(header::HeaderName::from_static)
}

/// An answer made here (not the leader's): it names this member's version.
fn ours(mut resp: Response) -> Response {
    for (k, v) in crate::raft::peers::version_headers() {
        resp.headers_mut().insert(k, v);
    }
    resp
}

/// The request may have reached the leader: whether a write took effect is unknown.
fn outcome_unknown(leader: &str, e: &reqwest::Error) -> Response {
    ours(
        ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "outcome_unknown",
            format!(
            "the leader at {leader} did not answer ({e}); a write may or may not have been applied"
        ),
        )
        .into_response(),
    )
}

pub(super) fn leader_unreachable(leader: &str, e: &reqwest::Error) -> Response {
    ours(
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "leader_unreachable",
            format!("the leader at {leader} could not be reached ({e}); retry"),
        )
        .into_response(),
    )
}

/// Requests that may wait for a change (agents' assignments, endpoint and rollout watches).
fn is_long_poll(uri: &axum::http::Uri, headers: &axum::http::HeaderMap) -> bool {
    let path = uri.path();
    path == "/v1/agent/assignments"
        || path == "/v1/agent/sessions"
        || (path.ends_with("/endpoints") && uri.query().is_some_and(|q| q.contains("index=")))
        || (path.ends_with("/rollout") && headers.contains_key(header::IF_NONE_MATCH))
}

/// Routes sent to the leader before they run here: linearizable reads of the replicated state,
/// snapshots, membership, nodes and the agent protocol (heartbeats live in the leader's memory).
fn needs_leader(method: &axum::http::Method, uri: &axum::http::Uri) -> bool {
    let path = uri.path();
    let stale = uri
        .query()
        .is_some_and(|q| q.split('&').any(|kv| kv.starts_with("stale")));
    let get = method == axum::http::Method::GET;
    let state_route = path.starts_with("/v1/services")
        || path == "/v1/cluster/snapshot"
        || path.starts_with("/v1/cluster/token")
        || path.starts_with("/v1/nodes")
        || path.starts_with("/v1/agent/");
    // Service writes are decoded and validated here and reach the leader as commands, grouped
    // with others (the Raft layer's forwarder); only a "not the leader" answer forwards them whole.
    let service_write = path.starts_with("/v1/services") && !get;
    let member_change = path.starts_with("/v1/cluster/members") && !get;
    // Hooks decide with the leader's memory (the stabilization window).
    let hook = path.starts_with("/v1/hooks") || path.ends_with("/scale-hook");
    (state_route && !(get && stale) && !service_write) || member_change || (hook && !(get && stale))
}
