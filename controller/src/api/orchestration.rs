//! Operator routes over orchestration: the join token, nodes (list, inspect, label, availability),
//! and per service its replicas (`ps`), rolling update and endpoints (with a blocking watch).

use super::body::json;
use super::error::ApiError;
use super::query::Query;
use super::{read, write, Ctx};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use hoist_proto::cluster::{
    AvailabilityRequest, Endpoint, Endpoints, JoinToken, LabelRequest, Node, NodeResources,
    NodeView, NodeVolumes, ReplicaView, Rollout, RolloutState, ServiceTasks, TaskState,
};
use hoist_proto::node::JoinTokenParts;
use hoist_proto::raft::{Command, Response};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::state::State as Cluster;

/// Which join token: `?role=worker` (the default: agents) or `?role=manager` (members).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenQuery {
    #[serde(default)]
    pub role: TokenRole,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenRole {
    #[default]
    Worker,
    Manager,
}

/// `GET /v1/cluster/token[?role=manager]`: made once through Raft, then always the same. The
/// manager token needs the cluster's CA (format 2): a member joining with it verifies the
/// cluster by the root's digest before it sends anything.
pub async fn token(
    State(ctx): State<Ctx>,
    Query(q): Query<TokenQuery>,
) -> Result<Json<JoinToken>, ApiError> {
    let id = identity(&ctx).await?;
    let ca_digest = cluster_ca_digest(&ctx).await?;
    let secret = match q.role {
        TokenRole::Worker => id.secret,
        TokenRole::Manager => {
            if ca_digest.is_none() {
                return Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "no_ca",
                    "a manager join token carries the cluster CA's digest, and the cluster has no \
                     CA yet (made once it runs at format 2): retry shortly",
                ));
            }
            if id.manager_secret.is_empty() {
                rotate(&ctx, true).await?;
                identity(&ctx).await?.manager_secret
            } else {
                id.manager_secret
            }
        }
    };
    Ok(Json(JoinToken {
        token: JoinTokenParts {
            cluster_id: id.cluster_id.clone(),
            ca_digest,
            secret,
        }
        .encode(),
        cluster_id: id.cluster_id,
    }))
}

/// The cluster's identity, made through Raft the first time.
async fn identity(ctx: &Ctx) -> Result<crate::state::ClusterIdentity, ApiError> {
    let mut identity = ctx.node.read(|s| s.identity.clone()).await?;
    if identity.is_none() {
        let cmd = Command::InitCluster {
            cluster_id: format!("{:016x}", rand::random::<u64>()),
            secret: format!("{:032x}", rand::random::<u128>()),
        };
        write(ctx, cmd).await?;
        identity = ctx.node.read(|s| s.identity.clone()).await?;
    }
    identity.ok_or_else(|| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "no cluster identity",
        )
    })
}

/// How long a token request waits for a new cluster's data key before it answers a token
/// without the CA digest (which agents then use over plain HTTP).
const CA_WAIT: Duration = Duration::from_secs(3);

/// The digest of the cluster's root certificate for a join token: from format 2 on, the CA is
/// made here if no one made it yet, so that the first token a new cluster hands out already
/// lets agents verify it (no trust on first use). `None` below format 2, or when the data key
/// is still missing after [`CA_WAIT`] (a token without the digest still joins, over plain HTTP).
async fn cluster_ca_digest(ctx: &Ctx) -> Result<Option<String>, ApiError> {
    let deadline = Instant::now() + CA_WAIT;
    loop {
        let (format, digest) = ctx
            .node
            .read(|s| (s.cluster_format, s.ca.as_ref().map(|c| c.digest.clone())))
            .await?;
        if format < 2 || digest.is_some() {
            return Ok(digest);
        }
        match crate::pki::sync::make_ca(&ctx.node, &ctx.keyring).await {
            Ok(()) => continue,
            Err(e) if Instant::now() >= deadline => {
                tracing::warn!(error = %e, "handing out a join token without the CA digest");
                return Ok(None);
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// `POST /v1/cluster/token/rotate[?role=manager]`: a new secret for the worker (or manager)
/// join token. Nodes and members already joined keep their certificates; the old token
/// registers no node (adds no member) from now on.
pub async fn rotate_token(
    State(ctx): State<Ctx>,
    Query(q): Query<TokenQuery>,
) -> Result<Json<JoinToken>, ApiError> {
    // Make the identity first if the cluster never handed out a token.
    identity(&ctx).await?;
    rotate(&ctx, q.role == TokenRole::Manager).await?;
    token(State(ctx), Query(q)).await
}

async fn rotate(ctx: &Ctx, manager: bool) -> Result<(), ApiError> {
    let cmd = Command::RotateJoinSecret {
        secret: format!("{:032x}", rand::random::<u128>()),
        manager,
    };
    if let Response::Error(e) = write(ctx, cmd).await? {
        return Err(e.into());
    }
    let which = if manager { "manager" } else { "worker" };
    tracing::info!("a new {which} join token");
    Ok(())
}

fn node_view(ctx: &Ctx, s: &Cluster, node: &Node) -> NodeView {
    // Counted by the task table as tasks change: `node ls` costs O(nodes), not O(tasks).
    let tasks = s.tasks.running_on(&node.id);
    // What its tasks hold until they are known to have stopped, as the scheduler counts it.
    let reserved = s
        .node_usage()
        .get(&node.id)
        .map(|u| NodeResources {
            cpu_millis: u.cpu_millis,
            memory_bytes: u.memory_bytes,
        })
        .unwrap_or_default();
    let overlay = ctx.leader.overlay_of(&node.id, Instant::now());
    NodeView {
        subnet: node.subnet.clone(),
        node: node.clone(),
        tasks,
        reserved,
        last_heartbeat_ms_ago: ctx
            .leader
            .liveness
            .since(&node.id, Instant::now())
            .map(|d| d.as_millis() as u64),
        peers_reported_ms_ago: overlay.as_ref().map(|(age, _)| age.as_millis() as u64),
        peer_problems: overlay
            .as_ref()
            .map(|(_, p)| hoist_proto::agent::peer_problems(p))
            .unwrap_or_default(),
        peers: overlay.map(|(_, p)| p).unwrap_or_default(),
        mesh_error: ctx.leader.mesh_error_of(&node.id),
    }
}

/// `GET /v1/nodes`
pub async fn list_nodes(
    State(ctx): State<Ctx>,
    RawQuery(q): RawQuery,
) -> Result<Json<Vec<NodeView>>, ApiError> {
    let c = ctx.clone();
    Ok(Json(
        read(&ctx, q, move |s| {
            s.nodes.values().map(|n| node_view(&c, s, n)).collect()
        })
        .await?,
    ))
}

/// `GET /v1/nodes/{id}`: by id or hostname.
pub async fn get_node(
    State(ctx): State<Ctx>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<NodeView>, ApiError> {
    let c = ctx.clone();
    let v = read(&ctx, q, |s| find_node(s, &id).map(|n| node_view(&c, s, n))).await?;
    v.map(Json)
        .ok_or_else(|| ApiError::not_found(format!("node {id:?} not found")))
}

fn find_node<'a>(s: &'a Cluster, id: &str) -> Option<&'a Node> {
    s.nodes
        .get(id)
        .or_else(|| s.nodes.values().find(|n| n.hostname == id))
}

async fn resolve(ctx: &Ctx, id: &str) -> Result<String, ApiError> {
    ctx.node
        .read(|s| find_node(s, id).map(|n| n.id.clone()))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("node {id:?} not found")))
}

fn node_answer(r: Response) -> Result<Json<Node>, ApiError> {
    match r {
        Response::Node(n) => Ok(Json(n)),
        Response::Error(e) => Err(e.into()),
        other => Err(super::services::unexpected(&other)),
    }
}

/// `POST /v1/nodes/{id}/labels`
pub async fn label_node(
    State(ctx): State<Ctx>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Node>, ApiError> {
    let req: LabelRequest = json(&headers, &body, "label request")?;
    let id = resolve(&ctx, &id).await?;
    node_answer(
        write(
            &ctx,
            Command::SetNodeLabels {
                id,
                set: req.set,
                remove: req.remove,
            },
        )
        .await?,
    )
}

/// `POST /v1/nodes/{id}/availability`
pub async fn set_availability(
    State(ctx): State<Ctx>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Node>, ApiError> {
    let req: AvailabilityRequest = json(&headers, &body, "availability request")?;
    let id = resolve(&ctx, &id).await?;
    node_answer(
        write(
            &ctx,
            Command::SetNodeAvailability {
                id,
                availability: req.availability,
            },
        )
        .await?,
    )
}

/// `DELETE /v1/nodes/{id}`
pub async fn remove_node(
    State(ctx): State<Ctx>,
    Path(id): Path<String>,
) -> Result<Json<Node>, ApiError> {
    let id = resolve(&ctx, &id).await?;
    node_answer(write(&ctx, Command::RemoveNode { id }).await?)
}

/// How old a volume report may be before the answer says so: three of the agent's 30 s reports.
const VOLUMES_STALE: Duration = Duration::from_secs(90);

/// `GET /v1/nodes/{id}/volumes`: the node's named volumes, as its agent last reported them to
/// this leader (in memory).
pub async fn node_volumes(
    State(ctx): State<Ctx>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<NodeVolumes>, ApiError> {
    let node = read(&ctx, q, |s| find_node(s, &id).cloned())
        .await?
        .ok_or_else(|| ApiError::not_found(format!("node {id:?} not found")))?;
    let report = ctx.leader.volumes_of(&node.id, Instant::now());
    Ok(Json(volumes_view(&node, report)))
}

/// The answer of `GET /v1/nodes/{id}/volumes` from the leader's latest report, if any.
fn volumes_view(
    node: &Node,
    report: Option<(Duration, Vec<hoist_proto::node::NodeVolume>)>,
) -> NodeVolumes {
    let note = match &report {
        None => Some(format!(
            "node {} has not reported its volumes to this leader: its agent ({}) is older than \
             the volume reports, or has not sent one since this leader took over (they come \
             every 30 s)",
            node.id, node.agent_version
        )),
        Some((age, _)) if node.status == hoist_proto::cluster::NodeStatus::Down => Some(format!(
            "node {} is down: this is its last report, {}s old",
            node.id,
            age.as_secs()
        )),
        Some((age, _)) if *age > VOLUMES_STALE => Some(format!(
            "this report is {}s old: the node has not reported since",
            age.as_secs()
        )),
        Some(_) => None,
    };
    NodeVolumes {
        node: node.id.clone(),
        hostname: node.hostname.clone(),
        reported_ms_ago: report.as_ref().map(|(age, _)| age.as_millis() as u64),
        volumes: report.map(|(_, v)| v).unwrap_or_default(),
        note,
    }
}

fn no_service(name: &str) -> ApiError {
    ApiError::not_found(format!("service {name:?} not found"))
}

/// `GET /v1/services/{name}/ps`
pub async fn ps(
    State(ctx): State<Ctx>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<ServiceTasks>, ApiError> {
    let pending: BTreeMap<u64, std::sync::Arc<str>> =
        ctx.leader.pending(&name).into_iter().collect();
    let out = read(&ctx, q, |s| {
        let svc = s.service(&name)?;
        let mut slots: BTreeMap<u64, ReplicaView> = BTreeMap::new();
        let view = |slot| ReplicaView {
            slot,
            task: None,
            pending: None,
            history: vec![],
        };
        for t in s.tasks.of_service(&name) {
            let v = slots.entry(t.slot).or_insert_with(|| view(t.slot));
            // The slot's task is the one meant to run on: not one draining away.
            let better = v
                .task
                .as_ref()
                .is_none_or(|cur| cur.drain_index.is_some() && t.drain_index.is_none());
            if t.desired == TaskState::Running && better {
                if let Some(old) = v.task.replace(t.clone()) {
                    v.history.push(old);
                }
            } else {
                v.history.push(t.clone());
            }
        }
        if let Some(h) = s.slot_history.get(&name) {
            for (slot, ended) in h {
                let v = slots.entry(*slot).or_insert_with(|| view(*slot));
                v.history.extend(ended.iter().rev().cloned());
            }
        }
        for (slot, why) in &pending {
            let v = slots.entry(*slot).or_insert_with(|| view(*slot));
            if v.task.is_none() {
                v.pending = Some(why.to_string());
            }
        }
        for v in slots.values_mut() {
            v.history.sort_by_key(|t| std::cmp::Reverse(t.updated_ms));
        }
        Some(ServiceTasks {
            service: name.clone(),
            version: svc.version,
            replicas: slots.into_values().collect(),
        })
    })
    .await?;
    out.map(Json).ok_or_else(|| no_service(&name))
}

/// The rollout as the API shows it: the recorded one for the current version, else one made up
/// from the replicas (a first deployment, or a change that needed no rolling update).
pub fn rollout_view(s: &Cluster, name: &str) -> Option<Rollout> {
    let record = s.services.get(name)?;
    let cur = record.current();
    if let Some(r) = s.rollouts.get(name) {
        if r.version == cur.version {
            return Some(r.clone());
        }
    }
    let global = cur.spec.mode == hoist_proto::service::ServiceMode::Global;
    let ready = s
        .tasks
        .of_service(name)
        .filter(|t| {
            t.desired == TaskState::Running && t.service_version == cur.version && t.is_ready()
        })
        .count() as u64;
    let total = if global {
        ready.max(1)
    } else {
        cur.spec.replicas.max(0) as u64
    };
    let done = ready >= total;
    Some(Rollout {
        version: cur.version,
        from_version: cur.version.saturating_sub(1),
        state: if done {
            RolloutState::Completed
        } else {
            RolloutState::Updating
        },
        updated: ready.min(total),
        total,
        failures: 0,
        message: format!("{}/{total} replicas running", ready.min(total)),
        started_ms: cur.created_ms,
        updated_ms: cur.created_ms,
        batch_started_ms: 0,
        rollback_of: None,
    })
}

/// `GET /v1/services/{name}/rollout[?timeout_ms=M]`: the rolling update's progress, with an `ETag`.
/// With `If-None-Match: ETAG` the answer waits until the rollout differs from that one (or the
/// timeout, default 30 s, at most 60 s, passes), so `hoist service apply` follows an update
/// without polling.
pub async fn rollout(
    State(ctx): State<Ctx>,
    Path(name): Path<String>,
    headers: HeaderMap,
    Query(watch): Query<WatchQuery>,
    RawQuery(q): RawQuery,
) -> Result<axum::response::Response, ApiError> {
    let seen = headers
        .get(axum::http::header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let deadline = watch.deadline()?;
    // Marked seen before each read, so a change between the read and the wait still wakes it.
    let mut applied = ctx.node.applied_watch();
    applied.mark_unchanged();
    let mut r = read(&ctx, q, |s| rollout_view(s, &name))
        .await?
        .ok_or_else(|| no_service(&name))?;
    while seen.as_deref() == Some(rollout_etag(&r).as_str())
        && tokio::time::Instant::now() < deadline
    {
        if let Ok(Err(_)) = tokio::time::timeout_at(deadline, applied.changed()).await {
            break; // shutting down
        }
        ctx.node.ensure_leader()?;
        r = ctx
            .node
            .stale_read(|s| rollout_view(s, &name))
            .ok_or_else(|| no_service(&name))?;
    }
    let etag = rollout_etag(&r);
    Ok(([(axum::http::header::ETAG, etag)], Json(r)).into_response())
}

/// A strong validator of a rollout view: a hash of its encoding.
fn rollout_etag(r: &Rollout) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    postcard::to_stdvec(r).unwrap_or_default().hash(&mut h);
    format!("\"{:016x}\"", h.finish())
}

/// The longest a blocking watch waits (`timeout_ms`).
pub const MAX_WATCH_MS: u64 = 60_000;

/// The query of a blocking watch (endpoints, rollout).
#[derive(Debug, Deserialize)]
pub struct WatchQuery {
    #[serde(default)]
    index: u64,
    /// How long to wait for a change (after `index`, or from an `If-None-Match` ETag), default
    /// 30 s, at most 60 s.
    #[serde(default)]
    timeout_ms: Option<u64>,
    /// Read by `read` from the raw query; here so that a bad value is refused before a wait.
    #[serde(default)]
    #[allow(dead_code)]
    stale: Option<bool>,
}

impl WatchQuery {
    /// When the watch answers unchanged: `timeout_ms` from now, default 30 s; more than
    /// [`MAX_WATCH_MS`] is a 400.
    fn deadline(&self) -> Result<tokio::time::Instant, ApiError> {
        let wait = self.timeout_ms.unwrap_or(30_000);
        if wait > MAX_WATCH_MS {
            return Err(ApiError::field(
                StatusCode::BAD_REQUEST,
                "timeout_ms",
                format!("{wait} is above the most a watch waits, {MAX_WATCH_MS}"),
            ));
        }
        Ok(tokio::time::Instant::now() + Duration::from_millis(wait))
    }
}

fn endpoints_of(s: &Cluster, name: &str) -> Option<Endpoints> {
    let record = s.services.get(name)?;
    let ports = &record.current().spec.ports;
    let port = ports.first().and_then(|p| u16::try_from(p.target).ok());
    let endpoints = s
        .tasks
        .of_service(name)
        .filter(|t| t.is_endpoint())
        .filter_map(|t| {
            Some(Endpoint {
                address: t.address.as_deref()?.to_string(),
                port,
                ports: ports.clone(),
                node: t.node.to_string(),
                node_address: s.nodes.get(t.node.as_str()).map(|n| n.address.clone())?,
                task: t.id.to_string(),
            })
        })
        .collect();
    Some(Endpoints {
        index: s.endpoints_index.get(name).copied().unwrap_or(0).max(1),
        endpoints,
    })
}

/// `GET /v1/services/{name}/endpoints?index=N&timeout_ms=M`: healthy running replicas; with
/// `index`, answers when they change after N (or at the timeout, unchanged).
pub async fn endpoints(
    State(ctx): State<Ctx>,
    Path(name): Path<String>,
    Query(q): Query<WatchQuery>,
) -> Result<Json<Endpoints>, ApiError> {
    ctx.node.read(|_| ()).await?;
    let deadline = q.deadline()?;
    // Marked seen before each read (`changed` marks it as it returns), so a change between the
    // read and the wait still wakes it.
    let mut applied = ctx.node.applied_watch();
    applied.mark_unchanged();
    loop {
        let e = ctx
            .node
            .stale_read(|s| endpoints_of(s, &name))
            .ok_or_else(|| no_service(&name))?;
        if q.index == 0 || e.index > q.index || tokio::time::Instant::now() >= deadline {
            return Ok(Json(e));
        }
        if let Ok(Err(_)) = tokio::time::timeout_at(deadline, applied.changed()).await {
            return Ok(Json(e)); // shutting down
        }
        ctx.node.ensure_leader()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hoist_proto::cluster::NodeStatus;
    use hoist_proto::format::samples;

    #[test]
    fn a_node_that_never_reported_its_volumes_has_none_and_a_note() {
        let node = samples::node(2);
        let v = volumes_view(&node, None);
        assert_eq!(v.node, node.id);
        assert!(v.volumes.is_empty() && v.reported_ms_ago.is_none());
        let note = v.note.unwrap();
        assert!(note.contains("has not reported its volumes"), "{note}");
        assert!(note.contains(&node.agent_version), "{note}");
    }

    #[test]
    fn a_volume_report_is_shown_with_its_age_and_a_note_once_old_or_down() {
        let mut node = samples::node(2);
        node.status = NodeStatus::Ready;
        let vols = samples::volume_report().volumes;
        let v = volumes_view(&node, Some((Duration::from_millis(1500), vols.clone())));
        assert_eq!(v.volumes, vols);
        assert_eq!(v.reported_ms_ago, Some(1500));
        assert_eq!(v.note, None);
        let old = volumes_view(&node, Some((Duration::from_secs(120), vols.clone())));
        assert!(old.note.unwrap().contains("120s old"));
        node.status = NodeStatus::Down;
        let down = volumes_view(&node, Some((Duration::from_secs(5), vols)));
        assert!(down.note.unwrap().contains("is down"));
    }
}
