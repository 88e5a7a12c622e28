//! `/v1/agent/...`: the agent–controller protocol of `hoist_proto::node`, postcard bodies. Only the
//! leader answers (the forwarding layer sends agents there); errors are JSON [`ApiError`]s.

use super::error::ApiError;
use super::Ctx;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use hoist_proto::cluster::{Node, NodeAvailability, NodeStatus};
use hoist_proto::node::{
    parse_join_token, Assignment, Assignments, Heartbeat, HeartbeatAck, RegisterRequest,
    RegisterResponse, StatusAck, StatusReport, POSTCARD_MEDIA_TYPE,
};
use hoist_proto::raft::{Command, Response as RaftResponse};
use hoist_proto::service::ServiceSpec;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Longest long poll; agents behind a forwarding member stay under its 60 s request timeout.
const MAX_WAIT: Duration = Duration::from_secs(30);

fn decode<T: DeserializeOwned>(body: &[u8], what: &str) -> Result<T, ApiError> {
    postcard::from_bytes(body).map_err(|e| ApiError::bad_request(format!("{what}: {e}")))
}

fn encode<T: Serialize>(v: &T) -> Response {
    match postcard::to_stdvec(v) {
        Ok(b) => ([(header::CONTENT_TYPE, POSTCARD_MEDIA_TYPE)], b).into_response(),
        Err(e) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
            .into_response(),
    }
}

fn valid_node_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 63
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// `POST /v1/agent/register`
pub async fn register(State(ctx): State<Ctx>, body: Bytes) -> Result<Response, ApiError> {
    let req: RegisterRequest = decode(&body, "register request")?;
    ctx.node.ensure_leader()?;
    let parts = parse_join_token(&req.token)
        .map_err(|m| ApiError::new(StatusCode::UNAUTHORIZED, "bad_token", m))?;
    let identity = ctx.node.stale_read(|s| s.identity.clone());
    let Some(identity) = identity else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "bad_token",
            "this cluster has no join token yet: run `hoist cluster token`",
        ));
    };
    if parts.cluster_id != identity.cluster_id {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "wrong_cluster",
            format!(
                "the token is for cluster {}, this is cluster {}",
                parts.cluster_id, identity.cluster_id
            ),
        ));
    }
    if !constant_time_eq(parts.secret.as_bytes(), identity.secret.as_bytes()) {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "bad_token",
            "the join token's secret is wrong",
        ));
    }
    if req.hostname.is_empty() || req.address.is_empty() {
        return Err(ApiError::bad_request(
            "register request: hostname and address must not be empty",
        ));
    }
    let id = match &req.node_id {
        Some(id) if valid_node_id(id) => id.clone(),
        Some(id) => {
            return Err(ApiError::field(
                StatusCode::BAD_REQUEST,
                "node_id",
                format!("{id:?} is not a node id (lowercase letters, digits, '-')"),
            ))
        }
        None => format!("n{:08x}", rand::random::<u32>()),
    };
    let node = Node {
        id: id.clone(),
        hostname: req.hostname,
        address: req.address,
        labels: req.labels,
        agent_labels: BTreeMap::new(),
        capacity: req.capacity,
        status: NodeStatus::Ready,
        availability: NodeAvailability::Active,
        agent_version: req.agent_version,
        registered_ms: 0,
        updated_ms: 0,
    };
    match ctx.node.write(Command::RegisterNode(node)).await? {
        RaftResponse::Node(_) => {}
        RaftResponse::Error(e) => return Err(e.into()),
        other => return Err(super::services::unexpected(&other)),
    }
    ctx.leader.liveness.beat(&id, Instant::now());
    tracing::info!(node = %id, "node registered");
    Ok(encode(&RegisterResponse {
        node_id: id,
        term: ctx.node.term(),
        heartbeat_interval_ms: ctx.leader.settings.heartbeat_interval.as_millis() as u64,
        grace_ms: ctx.leader.settings.grace.as_millis() as u64,
        cluster_id: identity.cluster_id,
    }))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `POST /v1/agent/heartbeat`
pub async fn heartbeat(State(ctx): State<Ctx>, body: Bytes) -> Result<Response, ApiError> {
    let hb: Heartbeat = decode(&body, "heartbeat")?;
    ctx.node.ensure_leader()?;
    let known = ctx.node.stale_read(|s| s.nodes.contains_key(&hb.node_id));
    if known {
        ctx.leader.liveness.beat(&hb.node_id, Instant::now());
    }
    Ok(encode(&HeartbeatAck {
        term: ctx.node.term(),
        known,
    }))
}

#[derive(Debug, Deserialize)]
pub struct PollQuery {
    node: String,
    #[serde(default)]
    index: u64,
    #[serde(default)]
    wait_ms: u64,
}

/// `GET /v1/agent/assignments?node=ID&index=N&wait_ms=M`: answers when the node's assignments
/// changed after `index` (at once when `index` is 0), or after `wait_ms` (≤ 30 s) with the same.
pub async fn assignments(
    State(ctx): State<Ctx>,
    Query(q): Query<PollQuery>,
) -> Result<Response, ApiError> {
    ctx.node.ensure_leader()?;
    let wait = Duration::from_millis(q.wait_ms).min(MAX_WAIT);
    let deadline = tokio::time::Instant::now() + wait;
    let mut applied = ctx.node.applied_watch();
    loop {
        let (known, idx) = ctx.node.stale_read(|s| {
            (
                s.nodes.contains_key(&q.node),
                s.node_index.get(&q.node).copied().unwrap_or(0),
            )
        });
        if !known {
            return Err(ApiError::not_found(format!(
                "node {:?} is not registered",
                q.node
            )));
        }
        if q.index == 0 || idx > q.index || tokio::time::Instant::now() >= deadline {
            break;
        }
        applied.mark_unchanged();
        let _ = tokio::time::timeout_at(deadline, applied.changed()).await;
        ctx.node.ensure_leader()?;
    }
    let term = ctx.node.term();
    let out = ctx.node.stale_read(|s| {
        let index = s.node_index.get(&q.node).copied().unwrap_or(0).max(1);
        let tasks = s
            .tasks
            .values()
            .filter(|t| t.node == q.node)
            .map(|t| Assignment {
                task_id: t.id.clone(),
                service: t.service.clone(),
                service_version: t.service_version,
                slot: t.slot,
                spec: s
                    .spec_of(&t.service, t.service_version)
                    .cloned()
                    .unwrap_or_else(|| ServiceSpec::new(&t.service, "")),
                desired: t.desired,
            })
            .collect();
        Assignments { index, term, tasks }
    });
    Ok(encode(&out))
}

/// `POST /v1/agent/status`
pub async fn status(State(ctx): State<Ctx>, body: Bytes) -> Result<Response, ApiError> {
    let report: StatusReport = decode(&body, "status report")?;
    ctx.node.ensure_leader()?;
    let known = ctx
        .node
        .stale_read(|s| s.nodes.contains_key(&report.node_id));
    if !known {
        return Err(ApiError::not_found(format!(
            "node {:?} is not registered",
            report.node_id
        )));
    }
    ctx.leader.liveness.beat(&report.node_id, Instant::now());
    if !report.tasks.is_empty() {
        if let RaftResponse::Error(e) = ctx
            .node
            .write(Command::ReportStatus {
                node: report.node_id,
                tasks: report.tasks,
            })
            .await?
        {
            return Err(e.into());
        }
    }
    Ok(encode(&StatusAck {
        term: ctx.node.term(),
    }))
}
