//! Forwarding of the streaming routes: the forwarding layer (`forward.rs`) buffers a request and
//! its answer whole, which a followed log (an answer without end) or an agent's session output
//! (a request body without end) cannot be. These routes go to the leader as streams both ways,
//! byte by byte as they come, and the end of either side ends the other: an operator closing
//! its connection closes the forwarded request, and so the leader's session.
//!
//! A member that leads, or knows no leader, answers them itself (the handler says "not the
//! leader" when it must). Bodies that are not streams (an exec's JSON request) are still
//! bounded as every JSON body is.

use super::body::{buffer, JSON_LIMIT};
use super::error::ApiError;
use super::forward::{
    leader_unreachable, older_leader_refusal, operator_certificate, version_headers, FORWARDED,
};
use super::Ctx;
use crate::raft::peers::body_format;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// What streams in a streaming route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Streams {
    /// The answer (the request body is small JSON, or none).
    Answer,
    /// The request body.
    Request,
}

/// Whether `method` `path` is a streaming route.
pub fn streaming(method: &Method, path: &str) -> Option<Streams> {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method, parts.as_slice()) {
        (&Method::GET, ["v1", "services", _, "logs"]) => Some(Streams::Answer),
        (&Method::POST, ["v1", "services", _, "exec"]) => Some(Streams::Answer),
        (&Method::POST, ["v1", "agent", "sessions", _]) => Some(Streams::Request),
        _ => None,
    }
}

/// Sends a streaming route to the leader when another member leads (see the module doc).
pub async fn forward(ctx: Ctx, req: Request, next: Next, streams: Streams) -> Response {
    let (id, addr) = match ctx.node.leader() {
        Some((id, addr)) if id != ctx.node.id() && !req.headers().contains_key(FORWARDED) => {
            (id, addr)
        }
        _ => return next.run(req).await,
    };
    if body_format(req.headers()) > ctx.node.peers().format_of(id) {
        return older_leader_refusal(&addr);
    }
    let operator_certificate = operator_certificate(&req);
    let (parts, body) = req.into_parts();
    let body = match streams {
        Streams::Request => reqwest::Body::wrap_stream(body.into_data_stream()),
        Streams::Answer => match buffer(&parts.headers, body, JSON_LIMIT).await {
            Ok(b) => reqwest::Body::from(b),
            Err(e) => return e.into_response(),
        },
    };
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    // Between members: over mutual TLS once this member has a certificate (a streamed body
    // cannot be sent twice, so there is no plain retry here).
    let clients = ctx.node.peer_clients();
    let (client, base) = match clients.tls() {
        Some(tls) => (tls, format!("https://{addr}")),
        None => (clients.plain().clone(), format!("http://{addr}")),
    };
    let mut out = client
        .request(parts.method.clone(), format!("{base}{path}"))
        .header(FORWARDED, "1")
        .body(body);
    for h in [header::CONTENT_TYPE, header::AUTHORIZATION]
        .into_iter()
        .chain(version_headers())
    {
        if let Some(v) = parts.headers.get(&h) {
            out = out.header(h, v);
        }
    }
    if let Some((k, v)) = operator_certificate {
        out = out.header(k, v);
    }
    match out.send().await {
        Ok(r) => {
            let status = r.status();
            let kept: Vec<_> = std::iter::once(header::CONTENT_TYPE)
                .chain(version_headers())
                .filter_map(|h| Some((h.clone(), r.headers().get(&h)?.clone())))
                .collect();
            let mut resp = (status, Body::from_stream(r.bytes_stream())).into_response();
            for (k, v) in kept {
                resp.headers_mut().insert(k, v);
            }
            resp
        }
        Err(e) if e.is_connect() => leader_unreachable(&addr, &e),
        Err(e) => stream_unanswered(&addr, &e),
    }
}

/// The leader took the request but sent no answer: a log stream can simply be asked again, but
/// an exec may have started its command.
fn stream_unanswered(leader: &str, e: &reqwest::Error) -> Response {
    let mut resp = ApiError::new(
        StatusCode::GATEWAY_TIMEOUT,
        "outcome_unknown",
        format!(
            "the leader at {leader} did not answer ({e}); logs can be asked again, an exec's command may or may not have started"
        ),
    )
    .into_response();
    for (k, v) in crate::raft::peers::version_headers() {
        resp.headers_mut().insert(k, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_streaming_routes() {
        let logs = "/v1/services/web/logs";
        assert_eq!(streaming(&Method::GET, logs), Some(Streams::Answer));
        assert_eq!(streaming(&Method::POST, logs), None);
        assert_eq!(
            streaming(&Method::POST, "/v1/services/web/exec"),
            Some(Streams::Answer)
        );
        assert_eq!(
            streaming(&Method::POST, "/v1/agent/sessions/0123"),
            Some(Streams::Request)
        );
        assert_eq!(
            streaming(&Method::GET, "/v1/agent/sessions"),
            None,
            "a long poll"
        );
        assert_eq!(streaming(&Method::GET, "/v1/services/web"), None);
        assert_eq!(streaming(&Method::GET, "/v1/services/web/logs/x"), None);
    }
}
