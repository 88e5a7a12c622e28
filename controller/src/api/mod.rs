//! The HTTP layer: the only module that names axum. `/v1` is the operator API (JSON) and the
//! agents' protocol, `/raft` the peer RPCs (bodies in the format of their media type). Handlers
//! are thin: decode, validate, propose or read, encode. Every answer this member makes names its
//! version (`hoist-version`, `hoist-format`); answers forwarded from the leader name the leader's.

mod agent;
mod body;
mod cluster;
mod error;
mod forward;
mod openapi;
mod orchestration;
mod services;
mod stacks;

pub use error::ApiError;

use crate::leader::Leader;
use crate::raft::peers::{self, MEMBER_HEADER};
use crate::raft::RaftNode;
use crate::state::State;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use hoist_proto::raft::{Command, Response};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// What every handler gets.
#[derive(Clone, Debug)]
pub struct Ctx {
    pub node: RaftNode,
    pub leader: Arc<Leader>,
    /// For forwarding requests to the leader.
    pub http: reqwest::Client,
}

impl Ctx {
    pub fn new(node: RaftNode, leader: Arc<Leader>) -> Ctx {
        hoist_common::init_tls();
        let http = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_millis(500))
            .timeout(Duration::from_secs(10))
            .tcp_nodelay(true)
            .build()
            .expect("http client builds");
        Ctx { node, leader, http }
    }
}

/// Reads linearizably unless the query says `stale=true`.
async fn read<T>(
    ctx: &Ctx,
    query: Option<String>,
    f: impl FnOnce(&State) -> T,
) -> Result<T, ApiError> {
    let stale = query.as_deref().is_some_and(|q| {
        q.split('&')
            .any(|kv| kv == "stale=true" || kv == "stale=1" || kv == "stale")
    });
    if stale {
        Ok(ctx.node.stale_read(f))
    } else {
        Ok(ctx.node.read(f).await?)
    }
}

/// Proposes a command through Raft.
async fn write(ctx: &Ctx, command: Command) -> Result<Response, ApiError> {
    Ok(ctx.node.write(command).await?)
}

/// The whole router: `/v1/...` behind leader forwarding, `/raft/...` for peers.
pub fn router(ctx: Ctx) -> Router {
    let v1 = Router::new()
        .route("/v1/services", get(services::list).post(services::apply))
        .route(
            "/v1/services/{name}",
            get(services::get)
                .put(services::put)
                .delete(services::delete),
        )
        .route("/v1/services/{name}/scale", post(services::scale))
        .route("/v1/services/{name}/history", get(services::history))
        .route("/v1/services/{name}/rollback", post(services::rollback))
        .route("/v1/services/{name}/ps", get(orchestration::ps))
        .route("/v1/services/{name}/rollout", get(orchestration::rollout))
        .route(
            "/v1/services/{name}/endpoints",
            get(orchestration::endpoints),
        )
        .route("/v1/stacks", get(stacks::list).post(stacks::deploy))
        .route("/v1/stacks/{name}", get(stacks::get).delete(stacks::remove))
        .route("/v1/cluster/token", get(orchestration::token))
        .route("/v1/nodes", get(orchestration::list_nodes))
        .route(
            "/v1/nodes/{id}",
            get(orchestration::get_node).delete(orchestration::remove_node),
        )
        .route("/v1/nodes/{id}/labels", post(orchestration::label_node))
        .route("/v1/nodes/{id}/volumes", get(orchestration::node_volumes))
        .route(
            "/v1/nodes/{id}/availability",
            post(orchestration::set_availability),
        )
        .route("/v1/agent/register", post(agent::register))
        .route("/v1/agent/heartbeat", post(agent::heartbeat))
        .route("/v1/agent/assignments", get(agent::assignments))
        .route("/v1/agent/endpoints", get(agent::endpoints))
        .route("/v1/agent/overlay", post(agent::overlay))
        .route("/v1/agent/volumes", post(agent::volumes))
        .route("/v1/agent/status", post(agent::status))
        .route("/v1/cluster/status", get(cluster::status))
        .route(
            "/v1/cluster/members",
            get(cluster::members).post(cluster::add_member),
        )
        .route(
            "/v1/cluster/members/{id}",
            axum::routing::delete(cluster::remove_member),
        )
        .route(
            "/v1/cluster/snapshot",
            get(cluster::download).post(cluster::restore),
        )
        .route("/v1/health", get(health))
        .route("/v1/openapi.json", get(openapi::document))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn(with_version))
        .layer(axum::middleware::from_fn_with_state(
            ctx.clone(),
            forward::forward_to_leader,
        ))
        .layer(DefaultBodyLimit::disable());
    let raft = Router::new()
        .route("/raft/{kind}", post(raft_rpc))
        .layer(axum::middleware::from_fn(with_version))
        .layer(DefaultBodyLimit::max(body::BLOB_LIMIT));
    v1.merge(raft).with_state(ctx)
}

async fn health(axum::extract::State(ctx): axum::extract::State<Ctx>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "ok": true, "id": ctx.node.id() }))
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("no route {}", uri.path()))
}

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not allowed on {}", uri.path()),
    )
}

/// Names this build's version on an answer made here.
async fn with_version(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let mut resp = next.run(req).await;
    for (k, v) in peers::version_headers() {
        resp.headers_mut().insert(k, v);
    }
    resp
}

async fn raft_rpc(
    axum::extract::State(ctx): axum::extract::State<Ctx>,
    Path(kind): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    let sender = headers
        .get(MEMBER_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let format = peers::body_format(&headers);
    let version = peers::peer_version(&headers);
    match ctx
        .node
        .handle_rpc(&kind, &body, format, sender, version)
        .await
    {
        Ok(out) => (
            [(header::CONTENT_TYPE, peers::raft_media_type(format))],
            out,
        )
            .into_response(),
        Err(e) => ApiError::bad_request(e.to_string()).into_response(),
    }
}

/// Serves the router on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    ctx: Ctx,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(ctx))
        .with_graceful_shutdown(shutdown)
        .await
}
