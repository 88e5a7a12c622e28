//! `/v1/agent/...`: the agent–controller protocol of `hoist_proto::node`. Only the leader answers
//! (the forwarding layer sends agents there); errors are JSON [`ApiError`]s. A request's body is
//! postcard (an agent of 0.1.0, or one that has not heard this controller's version yet) or
//! protobuf (format 1); the answer is in the same format. Every request tells the agent's
//! version, which the leader keeps beside the node's heartbeat.

use super::error::ApiError;
use super::query::Query;
use super::Ctx;
use crate::raft::peers::{body_format, peer_version};
use crate::state::Changed;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use hoist_proto::cluster::{Node, NodeAvailability, NodeStatus, Task};
use hoist_proto::format::v0::memory_bytes;
use hoist_proto::format::{Codec, PeerVersion, OLDEST, PROTOBUF_MEDIA_TYPE};
use hoist_proto::held_specs::HeldSpecs;
use hoist_proto::node::{
    parse_join_token, Assignment, Assignments, CertificateRequest, CertificateResponse, Heartbeat,
    HeartbeatAck, Overlay, RegisterRequest, RegisterResponse, ReplicaAddress, ServiceAddresses,
    ServiceEndpoints, StatusAck, StatusReport, POSTCARD_MEDIA_TYPE,
};
use hoist_proto::quantity::Quantity;
use hoist_proto::raft::{Command, Response as RaftResponse};
use hoist_proto::service::ServiceSpec;
use hoist_transport::tls::{CertRole, TlsPeer};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Longest long poll; agents behind a forwarding member stay under its 60 s request timeout.
const MAX_WAIT: Duration = Duration::from_secs(30);

fn decode<T: Codec>(headers: &HeaderMap, body: &[u8]) -> Result<T, ApiError> {
    T::decode(body, body_format(headers)).map_err(|e| ApiError::bad_request(e.to_string()))
}

pub(super) fn encode<T: Codec>(v: &T, format: u32) -> Response {
    let media = if format == 0 {
        POSTCARD_MEDIA_TYPE
    } else {
        PROTOBUF_MEDIA_TYPE
    };
    match v.encode(format) {
        Ok(b) => ([(header::CONTENT_TYPE, media)], b).into_response(),
        Err(e) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
            .into_response(),
    }
}

/// The agent's version, refused when this controller cannot talk with it.
pub(super) fn agent_version(headers: &HeaderMap) -> Result<PeerVersion, ApiError> {
    let v = peer_version(headers);
    match v.incompatibility(OLDEST) {
        None => Ok(v),
        Some(why) => Err(ApiError::new(
            StatusCode::UPGRADE_REQUIRED,
            "incompatible_version",
            format!("this agent cannot join: {why}"),
        )),
    }
}

/// The version an agent's request names, refused as [`agent_version`] refuses it; read from
/// the headers without copying them (a `HeaderMap` argument is a copy of them all, which a long
/// poll would hold through its whole wait).
pub(super) struct AgentVersion(pub PeerVersion);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for AgentVersion {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, ApiError> {
        agent_version(&parts.headers).map(AgentVersion)
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
pub async fn register(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let version = agent_version(&headers)?;
    let req: RegisterRequest = decode(&headers, &body)?;
    let format = body_format(&headers);
    ctx.node.ensure_leader()?;
    let parts = parse_join_token(&req.token)
        .map_err(|m| ApiError::new(StatusCode::UNAUTHORIZED, "bad_token", m))?;
    let (identity, cluster_format) = ctx
        .node
        .stale_read(|s| (s.identity.clone(), s.cluster_format));
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
    // The overlay's fields are said only once every member reads them (format 2).
    let (wg_public_key, wg_endpoint) = if cluster_format >= 2 {
        if let Some(k) = &req.wg_public_key {
            hoist_proto::overlay::check_public_key(k)
                .map_err(|m| ApiError::field(StatusCode::BAD_REQUEST, "wg_public_key", m))?;
        }
        if let Some(e) = &req.wg_endpoint {
            hoist_proto::overlay::check_endpoint(e)
                .map_err(|m| ApiError::field(StatusCode::BAD_REQUEST, "wg_endpoint", m))?;
        }
        (
            req.wg_public_key.map(|k| k.trim().to_string()),
            req.wg_endpoint.map(|e| e.trim().to_string()),
        )
    } else {
        (None, None)
    };
    let format2 = cluster_format >= 2 && format >= 2 && version.common_format() >= 2;
    // An agent that sends a signing request (one speaking TLS) gets a certificate naming the
    // node, and from then on only a certificate for that key acts for the node.
    let signed = match &req.csr {
        Some(csr) if format2 => Some(sign_for(&ctx, &id, csr)?),
        _ => None,
    };
    // Otherwise, from format 2 on both sides (and in the answer's format), the node gets a
    // credential of its own; only its hash is replicated, and only that credential may act for
    // the node from now on. A registration in an older format (an agent's first, which learns
    // the controller's format) gets none, and clears an earlier one.
    let credential = (format2 && signed.is_none()).then(|| hex::encode(rand::random::<[u8; 32]>()));
    let node = Node {
        credential_sha256: credential
            .as_deref()
            .map(crate::credentials::digest)
            .unwrap_or_default(),
        id: id.clone(),
        hostname: req.hostname,
        address: req.address,
        labels: req.labels,
        agent_labels: BTreeMap::new(),
        capacity: req.capacity,
        status: NodeStatus::Ready,
        availability: NodeAvailability::Active,
        agent_version: req.agent_version,
        // Said only once every member can read it (see `leader::versions`).
        agent_format: if cluster_format >= 1 {
            version.common_format()
        } else {
            0
        },
        registered_ms: 0,
        updated_ms: 0,
        subnet: None,
        wg_public_key,
        wg_endpoint,
        overlay_generation: 0,
        overlay_problem: None,
        cert_key_sha256: signed
            .as_ref()
            .map(|s| s.key_sha256.clone())
            .unwrap_or_default(),
    };
    match ctx.node.write(Command::RegisterNode(node)).await? {
        RaftResponse::Node(_) => {}
        RaftResponse::Error(e) => return Err(e.into()),
        other => return Err(super::services::unexpected(&other)),
    }
    ctx.leader.liveness.beat(&id, Instant::now());
    // Its agent starts afresh: the sessions it was answering are over.
    ctx.sessions.node_registered(&id);
    tracing::info!(node = %id, version = %version.version, format = version.format, "node registered");
    ctx.leader.liveness.told_version(&id, version);
    let node_credential = credential.map(|c| hoist_proto::node::node_credential(&id, &c));
    let pace = ctx.leader.pace(ctx.node.stale_read(|s| s.nodes.len()));
    Ok(encode(
        &RegisterResponse {
            node_id: id,
            term: ctx.node.term(),
            heartbeat_interval_ms: pace.interval.as_millis() as u64,
            grace_ms: pace.grace.as_millis() as u64,
            cluster_id: identity.cluster_id,
            node_credential,
            certificate: signed.as_ref().map(|s| s.certificate.clone()),
            ca_certificate: signed.map(|s| s.ca_certificate),
        },
        format,
    ))
}

/// A node certificate signed here, and the key it names.
struct Signed {
    key_sha256: String,
    certificate: String,
    ca_certificate: String,
}

/// Signs a certificate for node `node` from its agent's request.
fn sign_for(ctx: &Ctx, node: &str, csr: &str) -> Result<Signed, ApiError> {
    let key_sha256 = hoist_transport::pki::request_key_sha256(csr)
        .map_err(|m| ApiError::field(StatusCode::BAD_REQUEST, "csr", m))?;
    let signer = signer(ctx)?;
    let certificate = ctx
        .pki
        .sign_node(&signer.ca, node, csr)
        .map_err(sign_error)?;
    Ok(Signed {
        key_sha256,
        certificate: signer.with_intermediates(&certificate),
        ca_certificate: signer.roots,
    })
}

/// The cluster's CA, opened here (`crate::pki::open_signer`), or why it cannot sign.
pub(super) fn signer(ctx: &Ctx) -> Result<crate::pki::Signer, ApiError> {
    ctx.node
        .stale_read(|s| crate::pki::open_signer(s, &ctx.keyring))
        .map_err(sign_error)
}

pub(super) fn sign_error(e: crate::pki::SignError) -> ApiError {
    use crate::pki::SignError;
    match e {
        SignError::NoCa | SignError::Locked => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "no_ca", e.to_string())
        }
        SignError::Request(m) => ApiError::field(StatusCode::BAD_REQUEST, "csr", m),
        SignError::Corrupt(_) => {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
        }
    }
}

/// `POST /v1/agent/certificate`: a new certificate for a node's key before its current one
/// expires. Only for the key the node registered with (a new key registers again with the join
/// token), and only by the node itself.
pub async fn certificate(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    agent_version(&headers)?;
    let req: CertificateRequest = decode(&headers, &body)?;
    ctx.node.ensure_leader()?;
    super::auth::check_acts_for(&ctx, &req.node_id)?;
    let key = hoist_transport::pki::request_key_sha256(&req.csr)
        .map_err(|m| ApiError::field(StatusCode::BAD_REQUEST, "csr", m))?;
    let registered = ctx
        .node
        .stale_read(|s| s.nodes.get(&req.node_id).map(|n| n.cert_key_sha256.clone()));
    match registered {
        None => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_node",
                format!(
                    "node {:?} is not in the cluster: register again with the join token",
                    req.node_id
                ),
            ))
        }
        Some(k) if k.is_empty() || k != key => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "other_key",
                format!(
                    "node {:?} registered another key: a certificate is renewed for the same key, \
                     a new key registers again with the join token",
                    req.node_id
                ),
            ))
        }
        Some(_) => {}
    }
    let signed = sign_for(&ctx, &req.node_id, &req.csr)?;
    tracing::debug!(node = %req.node_id, "node certificate renewed");
    Ok(encode(
        &CertificateResponse {
            certificate: signed.certificate,
            ca_certificate: signed.ca_certificate,
        },
        body_format(&headers),
    ))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `POST /v1/agent/heartbeat`
pub async fn heartbeat(
    State(ctx): State<Ctx>,
    peer: Option<Extension<TlsPeer>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let version = agent_version(&headers)?;
    let hb: Heartbeat = decode(&headers, &body)?;
    ctx.node.ensure_leader()?;
    super::auth::check_acts_for(&ctx, &hb.node_id)?;
    let (known, root, rotating, nodes) = ctx.node.stale_read(|s| {
        let ca = s.ca.as_ref();
        (
            s.nodes.contains_key(&hb.node_id),
            ca.map(|c| c.digest.clone()).unwrap_or_default(),
            ca.is_some_and(|c| c.rotating()),
            s.nodes.len(),
        )
    });
    if known {
        ctx.leader.liveness.beat(&hb.node_id, Instant::now());
        if hb.endpoints_applied > 0 {
            ctx.leader.drains.applied(&hb.node_id, hb.endpoints_applied);
        }
        ctx.leader.liveness.told_version(&hb.node_id, version);
        // During a rotation: which root the node's certificate is under, for its end.
        if let Some(cert) = peer.as_ref().and_then(|p| p.identity.as_ref()) {
            if rotating && cert.role == CertRole::Node && cert.id == hb.node_id {
                ctx.pki
                    .rotation
                    .node_presented(&hb.node_id, &cert.issuer_key_id);
            }
        }
    }
    // Format 2: the root to be under, and the pace as the cluster grew since registration.
    let (ca_digest, heartbeat_interval_ms) = if body_format(&headers) >= 2 {
        (root, ctx.leader.pace(nodes).interval.as_millis() as u64)
    } else {
        (String::new(), 0)
    };
    Ok(encode(
        &HeartbeatAck {
            term: ctx.node.term(),
            known,
            ca_digest,
            heartbeat_interval_ms,
        },
        body_format(&headers),
    ))
}

#[derive(Debug, Deserialize)]
pub struct PollQuery {
    node: String,
    #[serde(default)]
    index: u64,
    #[serde(default)]
    wait_ms: u64,
    /// The overlay index of the overlay the agent holds (format 2): the answer leaves the
    /// overlay out while it is unchanged. 0 (or absent, as from an older agent): always sent.
    #[serde(default)]
    overlay_index: u64,
    /// The specs the agent holds, `NAME@VERSION,...`, from its answer of term `specs_term`
    /// (format 2, `hoist_proto::held_specs`): the answer leaves out those unchanged since
    /// `index`. Absent (as from an older agent): every spec is sent.
    #[serde(default)]
    specs: Option<String>,
    #[serde(default)]
    specs_term: u64,
    /// The term of the answer at `index` whose tasks the agent holds (format 2,
    /// `hoist_proto::held_tasks`): an answer of the same term lists in full only the tasks
    /// changed since `index`, and names the others. Absent (as from an older agent): every task
    /// is listed in full.
    #[serde(default)]
    tasks_term: u64,
}

/// `GET /v1/agent/assignments?node=ID&index=N&wait_ms=M[&overlay_index=O][&specs=S&specs_term=T][&tasks_term=T]`:
/// answers when the node's assignments changed after `index` (at once when `index` is 0), or
/// after `wait_ms` (≤ 30 s) with the same. The overlay (every peer: O(nodes)) is sent only when
/// it changed since `overlay_index`, the specs the poll holds only when they changed since
/// `index`, and the tasks it holds only when they changed since `index` (the others by id), so
/// a poll woken by one new task costs one entry and an id per other task.
pub async fn assignments(
    State(ctx): State<Ctx>,
    AgentVersion(version): AgentVersion,
    Query(q): Query<PollQuery>,
) -> Result<Response, ApiError> {
    // A GET has no body to tell its format: the answer is in the newest format the agent says
    // it reads (format 0 for one that says nothing).
    let format = version.common_format();
    ctx.node.ensure_leader()?;
    super::auth::check_acts_for(&ctx, &q.node)?;
    let held = match (&q.specs, format >= 2 && q.index > 0) {
        (Some(text), true) => {
            Some(HeldSpecs::parse(q.specs_term, text).map_err(ApiError::bad_request)?)
        }
        _ => None,
    };
    // Woken only by a change to this node's assignments (or to the overlay, for an agent that
    // wires it), not by every commit: thousands of idle polls cost nothing.
    let mut wakes = vec![ctx.node.node_watch(&q.node)];
    if format >= 2 {
        wakes.push(ctx.node.overlay_watch());
    }
    wait_for_change(&ctx, q.index, q.wait_ms, wakes, |s| {
        if !s.nodes.contains_key(&q.node) {
            return Err(ApiError::not_found(format!(
                "node {:?} is not registered",
                q.node
            )));
        }
        Ok(poll_index(s, &q.node, format))
    })
    .await?;
    let term = ctx.node.term();
    // Only this leader's own answers (this term) are known to hold specs and tasks as its state
    // has them.
    let held = held.filter(|h| h.term == term);
    let holds = Holds {
        index: q.index,
        specs: held.as_ref(),
        tasks: q.index > 0 && q.tasks_term == term,
    };
    let out = ctx.node.stale_read(|s| {
        let index = poll_index(s, &q.node, format).max(1);
        let tasks = tasks_for(s, &q.node, format, holds);
        let (overlay, overlay_index) = match format {
            0 | 1 => (None, 0),
            _ => overlay_for_poll(s, &q.node, q.overlay_index, &ctx.overlay_peers),
        };
        Assignments {
            index,
            term,
            tasks: tasks.tasks,
            overlay,
            overlay_index,
            changed_since: tasks.changed_since,
            unchanged: tasks.unchanged,
        }
    });
    Ok(encode(&out, format))
}

/// What a poll holds, from this leader's answers of its current term.
#[derive(Debug, Clone, Copy, Default)]
pub struct Holds<'a> {
    /// The index of the answer the poll holds (its `index`; 0: none).
    pub index: u64,
    /// The specs of that answer, as the poll named them (`specs`).
    pub specs: Option<&'a HeldSpecs>,
    /// The poll holds that answer's tasks and takes an answer listing only the changed ones
    /// (`tasks_term`, `hoist_proto::held_tasks`).
    pub tasks: bool,
}

/// A node's tasks as an answer lists them ([`Assignments::tasks`], [`Assignments::unchanged`],
/// [`Assignments::changed_since`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeTasks {
    pub tasks: Vec<Assignment>,
    pub unchanged: Vec<String>,
    pub changed_since: u64,
}

/// The assignments of `node` in `format`, for a poll that holds `holds`: the specs it holds are
/// left out where [`leave_out_spec`] allows, and, when it holds the tasks too, the tasks
/// [`leave_out_task`] allows are named in `unchanged` only. Pure (public for the scheduler
/// bench).
pub fn tasks_for(s: &crate::state::State, node: &str, format: u32, holds: Holds) -> NodeTasks {
    let changed = match holds.tasks && format >= 2 {
        true => s.assignment_changes.after(node, holds.index),
        false => None,
    };
    let mut out = NodeTasks {
        tasks: Vec::new(),
        unchanged: Vec::new(),
        changed_since: if changed.is_some() { holds.index } else { 0 },
    };
    for t in s.tasks.on_node(node) {
        let spec = s.spec_of(&t.service, t.service_version);
        let spec_changed = s.spec_changes.last(&t.service);
        if let (Some(changed), Some(spec)) = (&changed, spec) {
            if leave_out_task(changed, holds.index, t, spec, spec_changed) {
                out.unchanged.push(t.id.to_string());
                continue;
            }
        }
        let spec_held = spec.is_some()
            && holds
                .specs
                .is_some_and(|h| leave_out_spec(h, holds.index, t, spec_changed));
        out.tasks.push(Assignment {
            task_id: t.id.to_string(),
            service: t.service.to_string(),
            service_version: t.service_version,
            slot: t.slot,
            spec: match spec {
                Some(spec) if !spec_held => spec_for(spec, format, s.cluster_format, &t.id),
                _ => ServiceSpec::new(&t.service, ""),
            },
            desired: t.desired,
            files: match (format >= 2, spec) {
                (true, Some(spec)) => s.file_versions(spec),
                _ => vec![],
            },
            spec_held,
        });
    }
    out
}

/// Whether the spec of `task` can be left out of the answer to a poll at `index` that holds
/// `held` (of this leader's term), its service's specs last changed at `changed`: the poll holds
/// the spec of that version as an answer at `index` or later had it, and nothing changed it
/// since. Pure.
fn leave_out_spec(held: &HeldSpecs, index: u64, task: &Task, changed: u64) -> bool {
    index > 0 && changed <= index && held.holds(&task.service, task.service_version)
}

/// Whether `task` can be named only, as unchanged, in the answer to a poll that holds the tasks
/// of this leader's answer at `index`: nothing changed the task after `index` (`changed`, its
/// node's changes since), nor its service's specs (last changed at `spec_changed`), and it
/// reads no secret or config (whose versions are not noted per task: always sent). Pure.
fn leave_out_task(
    changed: &Changed,
    index: u64,
    task: &Task,
    spec: &ServiceSpec,
    spec_changed: u64,
) -> bool {
    index > 0
        && spec_changed <= index
        && spec.file_sources().next().is_none()
        && !changed.contains(&task.id)
}

/// A long poll's wait: returns once `current` passes `index` (at once when `index` is 0), or
/// after `wait_ms` (at most 30 s) unchanged; `current`'s error ends it. Woken only by `wakes`
/// (the changes that concern this poll) and by a change of leadership, not by every commit.
async fn wait_for_change(
    ctx: &Ctx,
    index: u64,
    wait_ms: u64,
    mut wakes: Vec<tokio::sync::watch::Receiver<u64>>,
    current: impl Fn(&crate::state::State) -> Result<u64, ApiError>,
) -> Result<(), ApiError> {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(wait_ms).min(MAX_WAIT);
    let mut leadership = ctx.node.leadership_watch();
    loop {
        // Marked seen before the state is read: a change applied after the read wakes us.
        for w in &mut wakes {
            w.mark_unchanged();
        }
        leadership.mark_unchanged();
        let now_at = ctx.node.stale_read(&current)?;
        if index == 0 || now_at > index || tokio::time::Instant::now() >= deadline {
            return Ok(());
        }
        let changed = futures::future::select_all(wakes.iter_mut().map(|w| Box::pin(w.changed())));
        let closed = tokio::select! {
            _ = tokio::time::sleep_until(deadline) => false,
            (r, _, _) = changed => r.is_err(),
            r = leadership.changed() => r.is_err(),
        };
        if closed {
            // The member is shutting down: nothing will wake us again.
            tokio::time::sleep_until(deadline).await;
        }
        ctx.node.ensure_leader()?;
    }
}

/// The index an assignments poll answers at: the node's own changes and, for an agent that
/// wires the overlay, any peer's.
fn poll_index(s: &crate::state::State, node: &str, format: u32) -> u64 {
    let own = s.node_index.get(node).copied().unwrap_or(0);
    if format >= 2 {
        own.max(s.overlay_index)
    } else {
        own
    }
}

/// The overlay for a poll from `node` that holds the overlay as of overlay index `held` (0:
/// none), and the index it is as of. Every peer of a large cluster is most of an answer's size
/// and of the leader's time to make it, so a poll that holds one gets it only when it changed,
/// and then only the peers changed since `held` (a node's `overlay_generation` is the index of
/// its record's last change), found in `peers` without a walk of every node.
fn overlay_for_poll(
    s: &crate::state::State,
    node: &str,
    held: u64,
    peers: &super::overlay_peers::Cache,
) -> (Option<Overlay>, u64) {
    let at = s.overlay_index;
    let since = match held {
        0 => 0,
        // A member behind the one that answered before: the whole overlay.
        h if h > at => 0,
        h if h == at => return (None, at),
        h => h,
    };
    (peers.peers(s).overlay(s, node, since), at)
}

/// `GET /v1/agent/endpoints?index=N&wait_ms=M[&changed=1|2]`: every service's ready replicas,
/// for the agents' DNS; answers when any changed after `index` (at once when `index` is 0), or
/// after `wait_ms` (≤ 30 s) unchanged. With `changed=1` the agent says it holds the answer at
/// `index` and merges: only the services changed since are listed, the others named
/// ([`ServiceEndpoints::changed_since`]), so that an answer costs what changed rather than every
/// replica of the cluster, for every agent at every change. With `changed=2` it also merges a
/// service's changed replicas ([`ServiceAddresses::partial`]): a change to one replica of a
/// large service costs one replica. Format 2.
pub async fn endpoints(
    State(ctx): State<Ctx>,
    AgentVersion(version): AgentVersion,
    Query(q): Query<EndpointsQuery>,
) -> Result<Response, ApiError> {
    let format = version.common_format();
    if format < 2 {
        return Err(ApiError::bad_request(
            "the endpoints watch needs an agent of format 2 or newer",
        ));
    }
    ctx.node.ensure_leader()?;
    let wakes = vec![ctx.node.endpoints_watch()];
    wait_for_change(&ctx, q.index, q.wait_ms, wakes, |s| Ok(endpoints_index(s))).await?;
    let term = ctx.node.term();
    // On a copy: the answer is built without holding the lock `apply` needs.
    let state = ctx.node.view();
    let since = changes_since(&state, q.index, q.changed);
    let key = super::endpoint_answers::Key {
        since: match since {
            Since::Whole => 0,
            Since::Changes { index, .. } => index,
        },
        replicas: matches!(since, Since::Changes { replicas: true, .. }),
        index: endpoints_index(&state).max(1),
        floor: state.endpoint_changes.floor(),
        term,
        format,
        pace_ms: endpoints_pace(state.nodes.len()).as_millis() as u64,
    };
    let media = [(header::CONTENT_TYPE, PROTOBUF_MEDIA_TYPE)];
    if let Some(bytes) = ctx.endpoint_answers.get(&key) {
        return Ok((media, bytes).into_response());
    }
    let mut answer = service_endpoints(&state, term, &since);
    answer.pace_ms = key.pace_ms;
    let bytes = Bytes::from(answer.encode(format).map_err(|e| {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
    })?);
    ctx.endpoint_answers.put(key, bytes.clone());
    Ok((media, bytes).into_response())
}

/// How many endpoints answers the leader gives in a second, across agents, once the cluster is
/// large enough that its agents are paced: each change wakes every agent's poll, and a cluster
/// of thousands of nodes changes all the time while it fills or rolls out.
const ENDPOINTS_ANSWERS_PER_SECOND: u64 = 2_000;

/// The longest an agent is asked to wait between two endpoints answers: how stale its DNS and
/// service addresses may be while changes keep coming (kube-proxy's `minSyncPeriod` is 1 s).
const ENDPOINTS_PACE_MAX: Duration = Duration::from_secs(2);

/// How long each agent waits after an endpoints answer before it polls again
/// ([`ServiceEndpoints::pace_ms`]) in a cluster of `nodes`: not at all in a small one, and so
/// that all of them together ask [`ENDPOINTS_ANSWERS_PER_SECOND`] at most in a large one.
fn endpoints_pace(nodes: usize) -> Duration {
    let ms = (nodes as u64).saturating_mul(1000) / ENDPOINTS_ANSWERS_PER_SECOND;
    Duration::from_millis(ms).min(ENDPOINTS_PACE_MAX)
}

/// What an endpoints answer lists.
#[derive(Debug, PartialEq)]
pub(crate) enum Since<'a> {
    /// Every ready replica of every service.
    Whole,
    /// What changed after `index`, the others named: the services whose replicated
    /// `endpoints_index` is newer and those created since (which the agent does not hold).
    /// With `replicas`, a service whose changes this process still keeps (`kept`, when it
    /// holds every change since) and which name tasks is sent as those.
    Changes {
        index: u64,
        kept: Option<crate::state::ChangedReplicas<'a>>,
        replicas: bool,
    },
}

/// What an endpoints answer can list to a poll at `index`: changes since it when the agent
/// merges them (`changed`: 1 services, 2 replicas too) and this process knows every change
/// after it; else the whole table. Replicas fall back to whole services once the changes since
/// the poll are no longer all kept.
fn changes_since(s: &crate::state::State, index: u64, changed: u8) -> Since<'_> {
    let known = changed > 0
        && index > 0
        && index <= endpoints_index(s)
        && s.endpoint_changes.known_since(index);
    if !known {
        return Since::Whole;
    }
    Since::Changes {
        index,
        kept: s.endpoint_changes.after(index),
        replicas: changed >= 2,
    }
}

#[derive(Debug, Deserialize)]
pub struct EndpointsQuery {
    #[serde(default)]
    index: u64,
    #[serde(default)]
    wait_ms: u64,
    /// 1: the poll holds the answer at `index` and merges an answer of changed services; 2: of
    /// changed replicas too.
    #[serde(default)]
    changed: u8,
}

/// The newest change to any service's endpoints.
fn endpoints_index(s: &crate::state::State) -> u64 {
    s.endpoints_index.values().copied().max().unwrap_or(0)
}

/// Every service's ready replicas (running, ready, still wanted), by slot then task; or what
/// changed `since`, the unchanged services named. Costs the tasks of the services listed in
/// full (the task table's index by service) and the replicas listed in part, not the cluster's.
pub(crate) fn service_endpoints(
    s: &crate::state::State,
    term: u64,
    since: &Since<'_>,
) -> ServiceEndpoints {
    let (index, kept, replicas) = match since {
        Since::Whole => (0, None, false),
        Since::Changes {
            index,
            kept,
            replicas,
        } => (*index, kept.as_ref(), *replicas),
    };
    // Every change kept bumps `endpoints_index` too, but a creation: those two say it all.
    let changed = |name: &str| {
        index == 0
            || s.endpoints_index.get(name).is_none_or(|i| *i > index)
            || s.endpoint_changes.created_after(name, index)
    };
    let mut services = Vec::new();
    let mut unchanged = Vec::new();
    for name in s.services.keys() {
        if !changed(name) {
            unchanged.push(name.clone());
            continue;
        }
        let spec = s.services.get(name).map(|r| &r.current().spec);
        let entry = ServiceAddresses {
            service: name.to_string(),
            vip: s.vips.get(name).cloned(),
            ports: spec.map(|s| s.ports.clone()).unwrap_or_default(),
            ..Default::default()
        };
        let tasks = match kept {
            Some(k) if replicas => k.get(name.as_str()).and_then(Option::as_ref),
            _ => None,
        };
        services.push(match tasks {
            Some(tasks) => changed_replicas(s, entry, tasks),
            None => ServiceAddresses {
                replicas: ready_replicas(s, name),
                ..entry
            },
        });
    }
    ServiceEndpoints {
        index: endpoints_index(s).max(1),
        term,
        services,
        changed_since: index,
        unchanged,
        pace_ms: 0,
    }
}

/// `service`'s ready replicas, by slot then task.
fn ready_replicas(s: &crate::state::State, service: &str) -> Vec<ReplicaAddress> {
    let tasks = s.tasks.of_service(service);
    let mut replicas: Vec<ReplicaAddress> = tasks.filter_map(Task::as_replica).collect();
    replicas.sort_by(ReplicaAddress::order);
    replicas
}

/// `entry` as the changes to `tasks`, each as it is now: the ready replicas (in no order), and
/// the others as removed.
fn changed_replicas(
    s: &crate::state::State,
    entry: ServiceAddresses,
    tasks: &std::collections::HashMap<&str, Option<&ReplicaAddress>>,
) -> ServiceAddresses {
    let (mut replicas, mut removed) = (Vec::new(), Vec::new());
    for (task, now) in tasks {
        match now {
            Some(r) => replicas.push((*r).clone()),
            None => removed.push(task.to_string()),
        }
    }
    ServiceAddresses {
        replicas,
        partial: true,
        removed,
        replica_count: s.tasks.endpoints_of(&entry.service),
        ..entry
    }
}

/// `spec` as an agent reading `format` can take it, in a cluster at `cluster_format`.
///
/// - Sizes: a format-0 cluster reads them as 0.1.0 did, and an agent of any version must limit a
///   replica to what the scheduler reserved, so the memory goes out in plain bytes.
/// - The scheduler places a replica only on a node whose agent reads its spec's format; a task of
///   an older version whose spec is no longer kept is sent the current one, which may say more
///   than an old agent reads: it gets the spec without what it cannot read (the replica runs on;
///   only how it stops would differ).
fn spec_for(spec: &ServiceSpec, format: u32, cluster_format: u32, task: &str) -> ServiceSpec {
    let mut out = if spec.format() > format {
        tracing::warn!(%task, format, "sending a spec without the fields this agent cannot read");
        spec.for_format(format)
    } else {
        spec.clone()
    };
    if cluster_format == 0 {
        if let Some(bytes) = spec
            .resources
            .memory
            .as_ref()
            .and_then(|m| memory_bytes(m.as_str(), 0))
        {
            out.resources.memory = Some(Quantity(bytes.to_string()));
        }
    }
    out
}

/// A report kept in the leader's memory must come to the leader from a registered node.
pub(super) fn check_reporter(ctx: &Ctx, node_id: &str) -> Result<(), ApiError> {
    ctx.node.ensure_leader()?;
    super::auth::check_acts_for(ctx, node_id)?;
    if !ctx.node.stale_read(|s| s.nodes.contains_key(node_id)) {
        return Err(ApiError::not_found(format!(
            "node {node_id:?} is not registered"
        )));
    }
    Ok(())
}

/// The answer to a report: the leader's term.
fn report_ack(ctx: &Ctx, headers: &HeaderMap) -> Response {
    encode(
        &StatusAck {
            term: ctx.node.term(),
        },
        body_format(headers),
    )
}

/// `POST /v1/agent/overlay`: an agent's view of its overlay peers, kept in the leader's memory for
/// `hoist node inspect`. Format 2.
pub async fn overlay(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    agent_version(&headers)?;
    let report: hoist_proto::node::OverlayReport = decode(&headers, &body)?;
    check_reporter(&ctx, &report.node_id)?;
    ctx.leader.overlay_reported(
        &report.node_id,
        report.peers,
        report.mesh_error,
        Instant::now(),
    );
    Ok(report_ack(&ctx, &headers))
}

/// `POST /v1/agent/volumes`: an agent's named volumes, kept in the leader's memory for `hoist node
/// volumes`. Format 2.
pub async fn volumes(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    agent_version(&headers)?;
    let report: hoist_proto::node::VolumeReport = decode(&headers, &body)?;
    check_reporter(&ctx, &report.node_id)?;
    ctx.leader
        .volumes_reported(&report.node_id, report.volumes, Instant::now());
    Ok(report_ack(&ctx, &headers))
}

/// `POST /v1/agent/status`
pub async fn status(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    agent_version(&headers)?;
    let report: StatusReport = decode(&headers, &body)?;
    ctx.node.ensure_leader()?;
    super::auth::check_acts_for(&ctx, &report.node_id)?;
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
    Ok(encode(
        &StatusAck {
            term: ctx.node.term(),
        },
        body_format(&headers),
    ))
}

#[cfg(test)]
mod tests {
    use super::{
        changes_since, endpoints_index, endpoints_pace, overlay_for_poll, poll_index,
        service_endpoints, tasks_for, Holds, Since, ENDPOINTS_PACE_MAX,
    };
    use crate::state::tests::{req, spec, test_node, test_task};
    use crate::state::{encode_snapshot, State};
    use hoist_proto::cluster::ClusterNetwork;
    use hoist_proto::cluster::TaskState;
    use hoist_proto::held_specs::HeldSpecs;
    use hoist_proto::held_tasks;
    use hoist_proto::node::{Assignment, Assignments, Health, ServiceEndpoints, TaskStatus};
    use hoist_proto::quantity::Quantity;
    use hoist_proto::raft::{Command, Plan};
    use proptest::prelude::*;

    /// What happens to the cluster (or the agent of node `a`) between two of its polls.
    #[derive(Debug, Clone)]
    enum Step {
        Apply {
            service: usize,
            image: usize,
            replicas: i64,
            memory: bool,
        },
        Scale {
            service: usize,
            replicas: i64,
        },
        Delete {
            service: usize,
        },
        /// A replica of the service's current version on `a` in `slot`.
        Place {
            service: usize,
            slot: u64,
        },
        Remove {
            service: usize,
            slot: u64,
        },
        /// The leader stops the service's replicas in `slot` (desired `Shutdown`).
        Stop {
            service: usize,
            slot: u64,
        },
        /// The agent reports every task ended or running (no change to what it is sent).
        Report {
            ended: bool,
        },
        /// The node registers again (its agent restarted, or it was removed).
        Register,
        Format(u32),
        /// An image of the state as it was (a backup) restored.
        Restore,
        /// The agent polls and takes the answer.
        Poll,
        /// The agent restarts: it holds nothing and asks from index 0.
        Restart,
    }

    const SERVICES: [&str; 2] = ["web", "db"];

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            3 => (0..2usize, 0..3usize, 1..4i64, any::<bool>()).prop_map(|(service, image, replicas, memory)| Step::Apply { service, image, replicas, memory }),
            2 => (0..2usize, 1..5i64).prop_map(|(service, replicas)| Step::Scale { service, replicas }),
            1 => (0..2usize).prop_map(|service| Step::Delete { service }),
            4 => (0..2usize, 0..3u64).prop_map(|(service, slot)| Step::Place { service, slot }),
            2 => (0..2usize, 0..3u64).prop_map(|(service, slot)| Step::Remove { service, slot }),
            2 => (0..2usize, 0..3u64).prop_map(|(service, slot)| Step::Stop { service, slot }),
            1 => any::<bool>().prop_map(|ended| Step::Report { ended }),
            1 => Just(Step::Register),
            1 => (1..3u32).prop_map(Step::Format),
            1 => Just(Step::Restore),
            6 => Just(Step::Poll),
            1 => Just(Step::Restart),
        ]
    }

    #[test]
    fn a_poll_that_holds_the_specs_is_sent_only_new_ones() {
        let mut st = State::default();
        st.apply_at(
            1,
            &req(1, Command::RegisterNode(test_node("a", 64_000, 64 << 30))),
        );
        st.apply_at(
            2,
            &req(2, Command::ApplyService(Box::new(spec("web", "nginx", 3)))),
        );
        st.apply_at(
            3,
            &req(3, Command::ApplyService(Box::new(spec("db", "pg", 1)))),
        );
        let web: Vec<_> = (0..3)
            .map(|i| test_task(&format!("w{i}"), "web", 1, i, "a"))
            .collect();
        st.apply_at(4, &req(4, Command::PutTasks(web)));
        let first = tasks_for(&st, "a", 2, Holds::default()).tasks;
        let index = poll_index(&st, "a", 2);
        let db = test_task("d0", "db", 1, 0, "a");
        st.apply_at(5, &req(5, Command::PutTasks(vec![db])));

        let holds = HeldSpecs::of(7, &first);
        assert_eq!(holds.query(), "web@1");
        let answer = tasks_for(&st, "a", 2, specs_held(&holds, index)).tasks;
        let sent: Vec<(&str, bool, &str)> = answer
            .iter()
            .map(|t| (t.task_id.as_str(), t.spec_held, t.spec.image.as_str()))
            .collect();
        assert_eq!(
            sent,
            [
                ("d0", false, "pg"),
                ("w0", true, ""),
                ("w1", true, ""),
                ("w2", true, "")
            ]
        );
        // Asked from index 0 (the whole truth), or holding an answer older than a change: sent.
        assert!(tasks_for(&st, "a", 2, specs_held(&holds, 0))
            .tasks
            .iter()
            .all(|t| !t.spec_held));
        st.apply_at(
            6,
            &req(6, Command::ApplyService(Box::new(spec("web", "nginx", 4)))),
        );
        let answer = tasks_for(&st, "a", 2, specs_held(&holds, index)).tasks;
        assert!(
            answer.iter().all(|t| !t.spec_held),
            "a new replica count is a change"
        );
    }

    /// Node `a`'s agent reports `tasks` in `state`.
    fn report_on_a(tasks: Vec<String>, state: TaskState) -> Command {
        let status = |task_id| TaskStatus {
            state,
            ..report_status(task_id)
        };
        Command::ReportStatus {
            node: "a".into(),
            tasks: tasks.into_iter().map(status).collect(),
        }
    }

    fn specs_held(held: &HeldSpecs, index: u64) -> Holds<'_> {
        Holds {
            index,
            specs: Some(held),
            tasks: false,
        }
    }

    /// A cluster of node "a" running web (2 replicas), api and db (1 each), all ready with an
    /// address.
    fn endpoints_cluster() -> State {
        let mut st = State::default();
        st.apply_at(
            1,
            &req(1, Command::RegisterNode(test_node("a", 64_000, 64 << 30))),
        );
        let mut tasks = Vec::new();
        for (i, (name, n)) in [("web", 2), ("api", 1), ("db", 1)].into_iter().enumerate() {
            let at = 2 + i as u64;
            st.apply_at(
                at,
                &req(at, Command::ApplyService(Box::new(spec(name, "nginx", n)))),
            );
            tasks.extend((0..n).map(|k| test_task(&format!("{name}{k}"), name, 1, k as u64, "a")));
        }
        let ids: Vec<String> = tasks.iter().map(|t| t.id.to_string()).collect();
        st.apply_at(5, &req(5, Command::PutTasks(tasks)));
        let ready = |task_id: String| TaskStatus {
            address: Some(format!("10.200.0.{}", task_id.len())),
            ..report_status(task_id)
        };
        let report = Command::ReportStatus {
            node: "a".into(),
            tasks: ids.into_iter().map(ready).collect(),
        };
        st.apply_at(6, &req(6, report));
        st
    }

    /// A status report of `task_id` running, without an address.
    fn report_status(task_id: String) -> TaskStatus {
        TaskStatus {
            task_id,
            state: TaskState::Running,
            health: Health::None,
            container_id: Some("c".into()),
            address: None,
            exit_code: None,
            message: String::new(),
            restarts: 0,
        }
    }

    #[test]
    fn an_endpoints_watch_that_merges_is_sent_the_changed_services_only() {
        let mut st = endpoints_cluster();
        let whole = service_endpoints(&st, 1, &Since::Whole);
        let names = |e: &ServiceEndpoints| -> Vec<String> {
            e.services.iter().map(|s| s.service.clone()).collect()
        };
        assert_eq!(names(&whole), ["api", "db", "web"]);
        assert_eq!(whole.services[2].replicas.len(), 2);
        let at = whole.index;
        // web loses a replica and db is deleted: web in full, api named, db in neither.
        let stop = Plan {
            stop: vec![("web1".into(), "replaced".into())],
            ..Default::default()
        };
        st.apply_at(7, &req(7, Command::Plan(stop)));
        st.apply_at(8, &req(8, Command::DeleteService { name: "db".into() }));
        let since = changes_since(&st, at, 1);
        assert!(matches!(since, Since::Changes { index, replicas: false, .. } if index == at));
        let answer = service_endpoints(&st, 1, &since);
        assert_eq!(names(&answer), ["web"]);
        assert_eq!(answer.services[0].replicas.len(), 1);
        assert!(!answer.services[0].partial);
        assert_eq!(answer.unchanged, ["api"]);
        let merged = answer.merge(Some(&whole)).expect("adds up");
        assert_eq!(merged, service_endpoints(&st, 1, &Since::Whole));
        // Nothing changed since the newest: every service named.
        let now = endpoints_index(&st);
        let quiet = service_endpoints(&st, 1, &changes_since(&st, now, 1));
        assert_eq!((quiet.services.len(), quiet.unchanged.len()), (0, 2));
        // The whole table for a poll that does not merge, holds nothing, holds an answer newer
        // than this state, or one at or below a restore, snapshot or new format.
        assert_eq!(changes_since(&st, at, 0), Since::Whole);
        assert_eq!(changes_since(&st, 0, 1), Since::Whole);
        assert_eq!(changes_since(&st, now + 1, 1), Since::Whole);
        st.everything_changed(at);
        assert_eq!(changes_since(&st, at, 1), Since::Whole);
        assert!(matches!(changes_since(&st, now, 1), Since::Changes { index, .. } if index == now));
    }

    #[test]
    fn an_endpoints_watch_that_merges_replicas_is_sent_the_changed_replicas_only() {
        let mut st = endpoints_cluster();
        let whole = service_endpoints(&st, 1, &Since::Whole);
        let at = whole.index;
        // web1 stops, api0 moves to another address: each sent alone, with the count.
        let stop = Plan {
            stop: vec![("web1".into(), "replaced".into())],
            ..Default::default()
        };
        st.apply_at(7, &req(7, Command::Plan(stop)));
        let moved = Command::ReportStatus {
            node: "a".into(),
            tasks: vec![TaskStatus {
                address: Some("10.200.0.99".into()),
                ..report_status("api0".into())
            }],
        };
        st.apply_at(8, &req(8, moved));
        let since = changes_since(&st, at, 2);
        assert!(
            matches!(since, Since::Changes { index, kept: Some(_), replicas: true } if index == at)
        );
        let answer = service_endpoints(&st, 1, &since);
        let parts: Vec<_> = answer
            .services
            .iter()
            .map(|s| {
                let sent: Vec<&str> = s.replicas.iter().map(|r| r.task.as_str()).collect();
                (
                    s.service.as_str(),
                    s.partial,
                    sent,
                    s.removed.clone(),
                    s.replica_count,
                )
            })
            .collect();
        assert_eq!(
            parts,
            [
                ("api", true, vec!["api0"], vec![], 1),
                ("web", true, vec![], vec!["web1".to_string()], 1),
            ]
        );
        assert_eq!(answer.unchanged, ["db"]);
        let merged = answer.merge(Some(&whole)).expect("adds up");
        assert_eq!(merged, service_endpoints(&st, 1, &Since::Whole));
        // A service changed as a whole (deleted and applied again) is sent in full.
        st.apply_at(9, &req(9, Command::DeleteService { name: "db".into() }));
        let db = spec("db", "nginx", 1);
        st.apply_at(10, &req(10, Command::ApplyService(Box::new(db))));
        let answer = service_endpoints(&st, 1, &changes_since(&st, 8, 2));
        assert_eq!(answer.services.len(), 1);
        assert!(!answer.services[0].partial && answer.services[0].replicas.is_empty());
        // Changes no longer kept: whole services, as for a poll that merges services only.
        for i in 0..crate::state::EndpointChanges::KEEP as u64 {
            st.endpoint_changes.replica("web", "web0", None, 11 + i);
        }
        let since = changes_since(&st, 8, 2);
        assert!(matches!(
            since,
            Since::Changes {
                index: 8,
                kept: None,
                replicas: true
            }
        ));
        let answer = service_endpoints(&st, 1, &since);
        assert!(answer.services.iter().all(|s| !s.partial));
    }

    #[test]
    fn agents_are_paced_only_in_a_large_cluster() {
        assert_eq!(endpoints_pace(5), std::time::Duration::from_millis(2));
        assert_eq!(endpoints_pace(200), std::time::Duration::from_millis(100));
        assert_eq!(endpoints_pace(2_000), std::time::Duration::from_secs(1));
        assert_eq!(endpoints_pace(10_000), ENDPOINTS_PACE_MAX);
    }

    /// Steps of the endpoints property test.
    #[derive(Debug, Clone)]
    enum EndpointStep {
        Apply {
            service: usize,
        },
        Delete {
            service: usize,
        },
        Place {
            service: usize,
            slot: u64,
        },
        Stop {
            service: usize,
            slot: u64,
        },
        Drain {
            service: usize,
            slot: u64,
        },
        Remove {
            service: usize,
            slot: u64,
        },
        /// The tasks picked by the mask report running at address `address`, or failed.
        Report {
            mask: u8,
            address: u8,
            failed: bool,
        },
        Restore,
        /// More changes came than the leader keeps.
        Forget,
        /// The agent polls, merging services (1) or replicas too (2).
        Poll {
            changed: u8,
        },
        Restart,
    }

    fn endpoint_step() -> impl Strategy<Value = EndpointStep> {
        use EndpointStep::*;
        prop_oneof![
            2 => (0..2usize).prop_map(|service| Apply { service }),
            1 => (0..2usize).prop_map(|service| Delete { service }),
            4 => (0..2usize, 0..3u64).prop_map(|(service, slot)| Place { service, slot }),
            2 => (0..2usize, 0..3u64).prop_map(|(service, slot)| Stop { service, slot }),
            2 => (0..2usize, 0..3u64).prop_map(|(service, slot)| Drain { service, slot }),
            1 => (0..2usize, 0..3u64).prop_map(|(service, slot)| Remove { service, slot }),
            5 => (any::<u8>(), 1..4u8, prop::bool::weighted(0.2))
                .prop_map(|(mask, address, failed)| Report { mask, address, failed }),
            1 => Just(Restore),
            1 => Just(Forget),
            6 => (1..3u8).prop_map(|changed| Poll { changed }),
            1 => Just(Restart),
        ]
    }

    proptest! {
        /// An agent that merges the endpoints answers of changes into the table it holds ends
        /// up with exactly the whole table, whatever changed in between: services applied and
        /// deleted, replicas placed, made ready, moved, failed, drained, stopped and removed, a
        /// restored image, more changes than are kept; and every answer of changes adds up
        /// (none makes it ask again).
        #[test]
        fn merged_endpoints_are_the_whole_table(steps in prop::collection::vec(endpoint_step(), 1..80)) {
            let mut st = State { cluster_format: 2, ..State::default() };
            st.apply_at(1, &req(1, Command::RegisterNode(test_node("a", 64_000, 64 << 30))));
            let mut at = 1;
            let mut backup = encode_snapshot(&st, 2).unwrap();
            let mut held: Option<ServiceEndpoints> = None;
            let ids = |st: &State, service: usize, slot: u64| -> Vec<String> {
                st.tasks.of_service(SERVICES[service])
                    .filter(|t| t.slot == slot)
                    .map(|t| t.id.to_string())
                    .collect()
            };
            for step in steps {
                at += 1;
                let command = match step {
                    EndpointStep::Apply { service } => {
                        Command::ApplyService(Box::new(spec(SERVICES[service], "nginx", 3)))
                    }
                    EndpointStep::Delete { service } => Command::DeleteService { name: SERVICES[service].into() },
                    EndpointStep::Place { service, slot } => {
                        let name = SERVICES[service];
                        let Some(r) = st.services.get(name) else { continue };
                        let id = format!("{name}-{slot}-{at}");
                        Command::PutTasks(vec![test_task(&id, name, r.current().version, slot, "a")])
                    }
                    EndpointStep::Stop { service, slot } => {
                        let stop = ids(&st, service, slot).into_iter().map(|id| (id, "replaced".into())).collect();
                        Command::Plan(Plan { stop, ..Default::default() })
                    }
                    EndpointStep::Drain { service, slot } => {
                        let drain = ids(&st, service, slot).into_iter().map(|id| (id, "draining".into())).collect();
                        Command::Plan(Plan { drain, ..Default::default() })
                    }
                    EndpointStep::Remove { service, slot } => {
                        let remove = ids(&st, service, slot)
                            .into_iter()
                            .filter(|id| st.tasks.get(id).is_some_and(|t| t.desired == TaskState::Shutdown))
                            .collect();
                        Command::Plan(Plan { remove, ..Default::default() })
                    }
                    EndpointStep::Report { mask, address, failed } => {
                        let tasks = st.tasks.on_node("a")
                            .enumerate()
                            .filter(|(k, _)| mask & (1 << (k % 8)) != 0)
                            .map(|(k, t)| TaskStatus {
                                state: if failed { TaskState::Failed } else { TaskState::Running },
                                address: Some(format!("10.200.{address}.{k}")),
                                ..report_status(t.id.to_string())
                            })
                            .collect();
                        Command::ReportStatus { node: "a".into(), tasks }
                    }
                    EndpointStep::Restore => Command::Restore(std::mem::replace(&mut backup, encode_snapshot(&st, 2).unwrap())),
                    EndpointStep::Poll { changed } => {
                        let whole = service_endpoints(&st, 4, &Since::Whole);
                        let held_index = held.as_ref().map_or(0, |h| h.index);
                        let answer = service_endpoints(&st, 4, &changes_since(&st, held_index, changed));
                        if changed < 2 {
                            prop_assert!(answer.services.iter().all(|s| !s.partial));
                        }
                        let merged = answer.merge(held.as_ref());
                        prop_assert_eq!(merged.as_ref(), Some(&whole));
                        held = merged;
                        continue;
                    }
                    EndpointStep::Restart => {
                        held = None;
                        continue;
                    }
                    EndpointStep::Forget => {
                        st.endpoint_changes.forget();
                        continue;
                    }
                };
                st.apply_at(at, &req(at, command));
            }
        }
    }

    #[test]
    fn a_poll_that_holds_the_tasks_is_sent_only_the_changed_ones() {
        let mut st = State::default();
        let node = test_node("a", 64_000, 64 << 30);
        st.apply_at(1, &req(1, Command::RegisterNode(node.clone())));
        let web = spec("web", "nginx", 3);
        st.apply_at(2, &req(2, Command::ApplyService(Box::new(web))));
        let web: Vec<_> = (0..3)
            .map(|i| test_task(&format!("w{i}"), "web", 1, i, "a"))
            .collect();
        st.apply_at(3, &req(3, Command::PutTasks(web)));
        let index = poll_index(&st, "a", 2);
        let holds = |index| Holds {
            index,
            specs: None,
            tasks: true,
        };
        let ids = |t: &super::NodeTasks| -> (Vec<String>, Vec<String>, u64) {
            let sent = t.tasks.iter().map(|t| t.task_id.clone()).collect();
            (sent, t.unchanged.clone(), t.changed_since)
        };
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();

        // One replica stopped, one placed: those two in full, the others by id.
        let stop = Plan {
            stop: vec![("w1".into(), "replaced".into())],
            ..Default::default()
        };
        st.apply_at(4, &req(4, Command::Plan(stop)));
        let w3 = test_task("w3", "web", 1, 1, "a");
        st.apply_at(5, &req(5, Command::PutTasks(vec![w3])));
        let answer = tasks_for(&st, "a", 2, holds(index));
        assert_eq!(
            ids(&answer),
            (strings(&["w1", "w3"]), strings(&["w0", "w2"]), index)
        );
        // A status report changes nothing the agent is sent.
        let at = poll_index(&st, "a", 2);
        let report = report_on_a(vec!["w0".into()], TaskState::Running);
        st.apply_at(6, &req(6, report));
        let answer = tasks_for(&st, "a", 2, holds(at));
        assert_eq!(answer.tasks, vec![]);
        assert_eq!(answer.unchanged.len(), 4);
        // Whole: a poll that holds nothing, one that does not take a part, and any poll older
        // than a change to the service's specs or the node registered again.
        for (held, why) in [
            (Holds::default(), "holds nothing"),
            (
                specs_held(&HeldSpecs::default(), at),
                "does not name the tasks",
            ),
        ] {
            assert_eq!(tasks_for(&st, "a", 2, held).tasks.len(), 4, "{why}");
        }
        st.apply_at(
            7,
            &req(
                7,
                Command::ScaleService {
                    name: "web".into(),
                    replicas: 4,
                },
            ),
        );
        assert_eq!(ids(&tasks_for(&st, "a", 2, holds(at))).1, strings(&[]));
        let at = poll_index(&st, "a", 2);
        st.apply_at(8, &req(8, Command::RegisterNode(node)));
        let answer = tasks_for(&st, "a", 2, holds(at));
        assert_eq!((answer.tasks.len(), answer.changed_since), (4, 0));
    }

    proptest! {
        /// An agent that names the specs and the tasks it holds, and fills in what is left out,
        /// ends up with exactly the answer a poll naming nothing gets, whatever changed in
        /// between: new versions, scales in place, a service deleted and created again (its
        /// versions start again from 1), replicas placed, stopped and removed, status reports,
        /// the node registered again, a new cluster format, a restored image.
        #[test]
        fn what_is_left_out_is_what_the_agent_holds(steps in prop::collection::vec(step(), 1..60)) {
            let mut st = State::default();
            st.apply_at(1, &req(1, Command::RegisterNode(test_node("a", 64_000, 64 << 30))));
            let mut at = 1;
            let mut backup = encode_snapshot(&st, 2).unwrap();
            let term = 4;
            let (mut held, mut held_index): (Vec<Assignment>, u64) = (vec![], 0);
            for step in steps {
                at += 1;
                let command = match step {
                    Step::Apply { service, image, replicas, memory } => {
                        let mut s = spec(SERVICES[service], ["i1", "i2", "i3"][image], replicas);
                        if memory {
                            s.resources.memory = Some(Quantity("64Mi".into()));
                        }
                        Command::ApplyService(Box::new(s))
                    }
                    Step::Scale { service, replicas } => Command::ScaleService { name: SERVICES[service].into(), replicas },
                    Step::Delete { service } => Command::DeleteService { name: SERVICES[service].into() },
                    Step::Place { service, slot } => {
                        let name = SERVICES[service];
                        let Some(r) = st.services.get(name) else { continue };
                        let id = format!("{name}-{slot}-{at}");
                        let t = test_task(&id, name, r.current().version, slot, "a");
                        Command::PutTasks(vec![t])
                    }
                    Step::Remove { service, slot } => {
                        let ids: Vec<String> = st.tasks.on_node("a")
                            .filter(|t| t.service == SERVICES[service] && t.slot == slot)
                            .map(|t| t.id.to_string())
                            .collect();
                        Command::RemoveTasks(ids)
                    }
                    Step::Stop { service, slot } => {
                        let stop = st.tasks.on_node("a")
                            .filter(|t| t.service == SERVICES[service] && t.slot == slot)
                            .map(|t| (t.id.to_string(), "replaced".to_string()))
                            .collect();
                        Command::Plan(Plan { stop, ..Default::default() })
                    }
                    Step::Report { ended } => {
                        let state = if ended { TaskState::Shutdown } else { TaskState::Running };
                        report_on_a(st.tasks.on_node("a").map(|t| t.id.to_string()).collect(), state)
                    }
                    Step::Register => Command::RegisterNode(test_node("a", 64_000, 64 << 30)),
                    Step::Format(f) => Command::SetClusterFormat { format: f },
                    Step::Restore => Command::Restore(std::mem::replace(&mut backup, encode_snapshot(&st, 2).unwrap())),
                    Step::Poll => {
                        let whole = tasks_for(&st, "a", 2, Holds::default());
                        prop_assert_eq!((whole.changed_since, whole.unchanged.len()), (0, 0));
                        let holds = HeldSpecs::of(term, &held);
                        let holding = Holds { index: held_index, specs: Some(&holds), tasks: true };
                        let part = tasks_for(&st, "a", 2, holding);
                        let mut answer = Assignments {
                            index: poll_index(&st, "a", 2).max(1),
                            term,
                            tasks: part.tasks,
                            overlay: None,
                            overlay_index: 0,
                            changed_since: part.changed_since,
                            unchanged: part.unchanged,
                        };
                        held_tasks::merge(&held, &mut answer).map_err(TestCaseError::fail)?;
                        prop_assert_eq!(&answer.tasks, &whole.tasks);
                        (held, held_index) = (answer.tasks, answer.index);
                        continue;
                    }
                    Step::Restart => {
                        (held, held_index) = (vec![], 0);
                        continue;
                    }
                };
                st.apply_at(at, &req(at, command));
            }
        }
    }

    fn register(st: &mut State, at: u64, id: &str, key_byte: u8) {
        let mut n = test_node(id, 1000, 1 << 30);
        let c = char::from(b'A' + key_byte).to_string();
        n.wg_public_key = Some(format!("{}A=", c.repeat(42)));
        n.wg_endpoint = Some(format!("192.0.2.{key_byte}:51820"));
        st.apply_at(at, &req(at, Command::RegisterNode(n)));
    }

    #[test]
    fn the_overlay_is_sent_only_when_it_changed_since_the_index_the_agent_holds() {
        let mut st = State::default();
        // One cache through every change, as the leader keeps one.
        let cache = crate::api::overlay_peers::Cache::default();
        st.apply_at(1, &req(1, Command::SetClusterFormat { format: 2 }));
        let plan = ClusterNetwork {
            cidr: "10.200.0.0/16".into(),
            subnet_prefix: 24,
            vip_cidr: None,
        };
        st.apply_at(2, &req(2, Command::SetClusterNetwork(plan)));
        register(&mut st, 3, "a", 1);
        register(&mut st, 4, "b", 2);

        // An agent that holds none (or an older agent, which never says) gets it all.
        let (full, at) = overlay_for_poll(&st, "a", 0, &cache);
        let full = full.expect("the overlay");
        assert_eq!(at, 4);
        assert_eq!(full.subnet.as_deref(), Some("10.200.0.0/24"));
        let peers: Vec<&str> = full.peers.iter().map(|p| p.node.as_str()).collect();
        assert_eq!(peers, ["b"]);
        // Holding the current one: left out, at the same index.
        assert_eq!(overlay_for_poll(&st, "a", 4, &cache), (None, 4));
        // Holding an index this member has not reached (a leader behind): sent.
        assert!(overlay_for_poll(&st, "a", 9, &cache).0.is_some());

        // A change no peer sees (a label) keeps it left out; a new peer sends it again.
        st.apply_at(
            5,
            &req(
                5,
                Command::SetNodeLabels {
                    id: "b".into(),
                    set: [("zone".to_string(), "x".to_string())].into(),
                    remove: vec![],
                },
            ),
        );
        assert_eq!(overlay_for_poll(&st, "a", 4, &cache), (None, 4));
        register(&mut st, 6, "c", 3);
        let (changes, at) = overlay_for_poll(&st, "a", 4, &cache);
        let changes = changes.expect("the changes");
        assert_eq!(at, 6);
        let peers: Vec<&str> = changes.peers.iter().map(|p| p.node.as_str()).collect();
        assert_eq!(peers, ["c"], "only the new peer");
        assert_eq!((changes.changed_since, changes.peer_count), (4, 2));
        let merged = changes.merge(Some(&full)).expect("adds up");
        assert_eq!(
            Some(merged.clone()),
            overlay_for_poll(&st, "a", 0, &cache).0
        );

        // A removed peer: the changes do not add up with what is held, and the agent then asks
        // for the whole overlay.
        st.apply_at(7, &req(7, Command::RemoveNode { id: "b".into() }));
        let (changes, at) = overlay_for_poll(&st, "a", 6, &cache);
        assert_eq!(at, 7);
        assert_eq!(changes.clone().unwrap().peer_count, 1);
        assert_eq!(changes.unwrap().merge(Some(&merged)), None);
        let whole = overlay_for_poll(&st, "a", 0, &cache).0.unwrap();
        let peers: Vec<String> = whole.peers.into_iter().map(|p| p.node).collect();
        assert_eq!(peers, ["c"]);
    }
}
