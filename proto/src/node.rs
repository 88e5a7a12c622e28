//! The agent–controller protocol: how an agent joins, proves it is alive, learns what to run and
//! reports what runs. Binary bodies over HTTP under `/v1/agent/...` on any controller member;
//! members that are not the leader forward to it. The body is the format the two sides share
//! (see [`crate::format`]): protobuf (`application/x-protobuf`) from format 1, postcard
//! (`application/x-postcard`) with a 0.1.0 peer. Each side names its version and format in the
//! `hoist-version` and `hoist-format` headers; an agent starts in format 0 and moves up once a
//! controller's answer says it can. The controller answers in the format it was asked in.
//!
//! | route | body | answer |
//! | --- | --- | --- |
//! | `POST /v1/agent/register` | [`RegisterRequest`] | [`RegisterResponse`] |
//! | `POST /v1/agent/certificate` | [`CertificateRequest`] | [`CertificateResponse`] (format 2) |
//! | `POST /v1/agent/heartbeat` | [`Heartbeat`] | [`HeartbeatAck`] |
//! | `GET /v1/agent/assignments?node=ID&index=N&wait_ms=M` | — | [`Assignments`] (long poll; `&overlay_index=O`, `&specs=...&specs_term=T`, `&tasks_term=T` format 2) |
//! | `POST /v1/agent/status` | [`StatusReport`] | [`StatusAck`] |
//! | `GET /v1/agent/endpoints?index=N&wait_ms=M` | — | [`ServiceEndpoints`] (long poll, format 2; `&changed=1` or `2` to be sent changes) |
//! | `POST /v1/agent/overlay` | [`OverlayReport`] | [`StatusAck`] (format 2) |
//! | `POST /v1/agent/volumes` | [`VolumeReport`] | [`StatusAck`] (format 2) |
//! | `GET /v1/agent/sessions?node=ID&wait_ms=M` | — | [`crate::session::SessionRequests`] (long poll, format 2) |
//! | `POST /v1/agent/sessions/{id}?node=ID` | [`crate::session::SessionFrame`]s | [`StatusAck`] (format 2; see [`crate::session`]) |
//!
//! Every answer from the controller carries the Raft `term` it was produced in. An agent keeps the
//! newest term it has seen and ignores anything stamped with an older one: a deposed leader that
//! has not noticed yet cannot make it stop or start replicas.
//!
//! What the controller (leader) does with them:
//!
//! - **register**: checks the token (`HOIST1-<cluster id>-<secret>` or
//!   `HOIST2-<cluster id>-<CA digest>-<secret>`, see [`parse_join_token`];
//!   401 `bad_token`/`wrong_cluster` otherwise), keeps `node_id` if given (lowercase letters,
//!   digits, `-`) or assigns `n<8 hex>`, and commits the node (ready; operator availability and
//!   labels the agent does not set are kept). Compare [`RegisterResponse::cluster_id`] with the
//!   token's. The agent should store `node_id` and register again after a restart.
//! - **heartbeat**: `known = false` means the node was removed: register again.
//! - **assignments**: answers at once when `index` is 0, else when the node's assignments changed
//!   after `index` (a Raft index), else after `wait_ms` (at most 30 s) with the same index. The
//!   list is the node's whole truth: a task not listed must be stopped and removed. A task whose
//!   `service_version` changes with the same `task_id` (a scale made a new version) keeps
//!   running untouched. For a deleted service, `spec` has only the name and `desired` is
//!   `Shutdown`. A poll that names the specs it holds (`specs`, `specs_term`: see
//!   [`crate::held_specs`]) gets those left out while unchanged; one that names the term of
//!   the answer whose tasks it holds (`tasks_term`: see [`crate::held_tasks`]) gets in full
//!   only the tasks changed since `index`. 404 when the node is unknown (register again).
//! - **status**: only tasks assigned to that node are taken; a task that reached `Shutdown`,
//!   `Failed` or `Complete` never changes again. Report `Running` + `Healthy` (or `Health::None`
//!   without a check) for a replica to count as ready; `Failed` means "for good" (restart policy
//!   exhausted): the controller replaces it. `Running` + `Unhealthy` is replaced too. The
//!   controller keeps its own stop reason when the report's message is empty.
//! - Errors are JSON `{code, message}` (not postcard) with an HTTP status; 503 `not_leader` /
//!   `no_leader` when no leader can answer (members forward to the leader otherwise): retry.
//!
//! Heartbeats live in the leader's memory only; the Raft log sees a node only when it registers,
//! changes status (down after the grace period, back up) or its tasks change state.
//! Fields and variants are only added (see ARCHITECTURE.md, "Formats").

use crate::cluster::{NodeResources, TaskState};
use crate::service::ServiceSpec;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The media type of every body on `/v1/agent/...`.
pub const POSTCARD_MEDIA_TYPE: &str = "application/x-postcard";

/// HTTP header on a member's "not the leader" answer (503): the leader's `HOST:PORT`. An agent
/// tries it next, also when its `--join` list does not name it (a member added later): agents
/// with node certificates are not forwarded, so without it they could not reach such a leader.
/// Older members send no such header; older agents ignore it.
pub const LEADER_HEADER: &str = "hoist-leader";

/// An agent asks to join (or, restarted, to re-join) the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterRequest {
    /// The join token printed by `hoist cluster token`.
    pub token: String,
    /// The id the agent had before (kept in its data dir); `None` on first join.
    pub node_id: Option<String>,
    pub hostname: String,
    /// The address other hosts reach this node on (published ports, overlay endpoint).
    pub address: String,
    /// From `--label KEY=VALUE`.
    pub labels: BTreeMap<String, String>,
    /// What the host offers: its CPUs and memory.
    pub capacity: NodeResources,
    pub agent_version: String,
    /// The agent's WireGuard public key, base64 of 32 bytes (its private key never leaves the
    /// host). Format 2; dropped by a controller whose cluster is not at format 2 yet.
    #[serde(default)]
    pub wg_public_key: Option<String>,
    /// Where its tunnel listens, `IP:PORT` (`--advertise-addr`, `--wg-port`). Format 2.
    #[serde(default)]
    pub wg_endpoint: Option<String>,
    /// A certificate signing request (PEM) for the node's own key: the controller answers with a
    /// certificate naming the node. Format 2.
    #[serde(default)]
    pub csr: Option<String>,
}

/// The controller's answer to a registration.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterResponse {
    /// The node's id from now on; the agent stores it.
    pub node_id: String,
    pub term: u64,
    /// How often the agent should heartbeat.
    pub heartbeat_interval_ms: u64,
    /// Silence after which the node is marked down.
    pub grace_ms: u64,
    /// The cluster the agent joined: equals the id inside its token (see [`parse_join_token`]).
    pub cluster_id: String,
    /// The node's own credential (`HOISTNODE1-<node>-<secret>`): the agent sends it instead of
    /// the join token from now on, and the controllers take no other for this node. Kept in
    /// memory only; a restarted agent registers again and gets a new one. Format 2.
    #[serde(default)]
    pub node_credential: Option<String>,
    /// The node's certificate (PEM), issued for the key of [`RegisterRequest::csr`]. Format 2.
    #[serde(default)]
    pub certificate: Option<String>,
    /// The cluster's root certificate(s) (PEM): what the agent trusts the controllers by.
    /// Format 2.
    #[serde(default)]
    pub ca_certificate: Option<String>,
}

impl std::fmt::Debug for RegisterResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisterResponse")
            .field("node_id", &self.node_id)
            .field("term", &self.term)
            .field("heartbeat_interval_ms", &self.heartbeat_interval_ms)
            .field("grace_ms", &self.grace_ms)
            .field("cluster_id", &self.cluster_id)
            .field(
                "node_credential",
                &self.node_credential.as_ref().map(|_| "<hidden>"),
            )
            .field("certificate", &self.certificate)
            .field("ca_certificate", &self.ca_certificate)
            .finish()
    }
}

/// `POST /v1/agent/certificate`: an agent renews its node's certificate with a CSR for its own
/// key (answer: [`CertificateResponse`]). Format 2.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateRequest {
    pub node_id: String,
    /// A certificate signing request (PEM) for the node's key.
    pub csr: String,
}

/// The answer to a [`CertificateRequest`]. Format 2.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateResponse {
    /// The node's new certificate, PEM.
    pub certificate: String,
    /// The cluster's root certificate(s), PEM.
    pub ca_certificate: String,
}

/// The prefix of a node's credential.
pub const NODE_CREDENTIAL_PREFIX: &str = "HOISTNODE1-";

/// A node's credential as agents send it.
pub fn node_credential(node: &str, secret: &str) -> String {
    format!("{NODE_CREDENTIAL_PREFIX}{node}-{secret}")
}

/// `(node, secret)` of a node credential, or `None` for any other text.
pub fn parse_node_credential(text: &str) -> Option<(&str, &str)> {
    let rest = text.trim().strip_prefix(NODE_CREDENTIAL_PREFIX)?;
    let (node, secret) = rest.rsplit_once('-')?;
    let ok =
        !node.is_empty() && secret.len() == 64 && secret.bytes().all(|b| b.is_ascii_hexdigit());
    ok.then_some((node, secret))
}

/// "Still here." Sent every `heartbeat_interval_ms` to the leader.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub node_id: String,
    /// The newest term the agent has seen.
    pub term_seen: u64,
    /// The index of the newest endpoints watch answer this node has applied to its service
    /// addresses and DNS: a replica drained at index N stops once every live node says ≥ N.
    /// Format 2.
    #[serde(default)]
    pub endpoints_applied: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatAck {
    pub term: u64,
    /// False when the controller no longer knows the node (removed): the agent must register again.
    pub known: bool,
    /// The digest of the cluster's current root: an agent whose certificate is under another
    /// (the root was rotated) renews it at once. Format 2; empty when the cluster has no CA.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ca_digest: String,
    /// How often to heartbeat from now on: the leader spreads heartbeats as the cluster grows
    /// (`--max-heartbeats-per-second`). Format 2; 0 when not said (keep the current interval).
    #[serde(default)]
    pub heartbeat_interval_ms: u64,
}

/// One replica the node must run (or stop), with everything needed to run it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    pub task_id: String,
    pub service: String,
    pub service_version: u64,
    pub slot: u64,
    /// The spec of `service_version`.
    pub spec: ServiceSpec,
    /// `Running` to run it, `Shutdown` to stop and remove it.
    pub desired: TaskState,
    /// The current version of every secret and config the spec references: a new one is
    /// fetched (`GET /v1/agent/files`) and replaces the file in the running replica. Format 2.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<crate::files::FileVersion>,
    /// The spec is left out (`spec` holds only the service's name): the poll said it holds the
    /// spec of this `service_version` ([`crate::held_specs::HeldSpecs`]), unchanged since. The
    /// agent fills it in from what it holds ([`crate::held_specs::fill`]). Format 2.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub spec_held: bool,
}

/// The node's full set of assignments as of Raft index `index`: every task of the node, so an
/// agent that missed answers loses nothing. Specs the poll said it holds may be left out (see
/// [`Assignment::spec_held`]), and, when the poll said it holds the tasks of its answer at
/// `index` (`tasks_term`), the tasks unchanged since are named only, in
/// [`Assignments::unchanged`] ([`crate::held_tasks`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignments {
    /// Pass it back as `index` to wait for the next change.
    pub index: u64,
    pub term: u64,
    pub tasks: Vec<Assignment>,
    /// The overlay as this node must wire it: its own subnet and every peer. Sent to agents of
    /// format 2 once the cluster has an overlay; a change of any peer wakes every poll. When the
    /// poll named the overlay it holds (`overlay_index`): left out while that is current, and
    /// otherwise only what changed since ([`Overlay::changed_since`]). Format 2.
    #[serde(default)]
    pub overlay: Option<Overlay>,
    /// The cluster's overlay index this answer is as of; the agent passes it back as the poll's
    /// `overlay_index`. 0 from a controller that always sends the overlay. Format 2.
    #[serde(default)]
    pub overlay_index: u64,
    /// Not 0: `tasks` holds only the tasks changed since this index (the poll's `index`), and
    /// [`Assignments::unchanged`] the ids of the others, as the agent holds them from its answer
    /// at that index. A held task named in neither is gone: stop and remove it. Sent only to a
    /// poll that named the term of the answer it holds (`tasks_term`). Format 2.
    #[serde(default)]
    pub changed_since: u64,
    /// With `changed_since`: the ids of the node's tasks unchanged since, in no order. Format 2.
    #[serde(default)]
    pub unchanged: Vec<String>,
}

/// The overlay seen from one node (see [`Assignments::overlay`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overlay {
    /// The cluster CIDR (`10.200.0.0/16`): everything in it is reached through the tunnel.
    pub cluster_cidr: String,
    /// This node's subnet; `None` when none could be allocated (`problem` says why).
    pub subnet: Option<String>,
    pub problem: Option<String>,
    /// Every other node that has a subnet and a key, by node id; in an answer with
    /// `changed_since`, only those whose record changed after it.
    pub peers: Vec<OverlayPeer>,
    /// Not 0: this answers a poll that held the overlay as of this overlay index, and `peers`
    /// holds only the peers whose `generation` is newer; every other peer is as held. Sent only
    /// to a poll that named the index it holds. Format 2.
    #[serde(default)]
    pub changed_since: u64,
    /// With `changed_since`: how many peers the whole overlay has. A held peer that is gone (its
    /// node removed) leaves the merged list longer than this (see [`Overlay::merge`]). Format 2.
    #[serde(default)]
    pub peer_count: u64,
}

impl Overlay {
    /// The whole overlay from `held` (the one as of `changed_since`) and `self`, an answer with
    /// `changed_since`; `self` when it is whole already. `None` when the two do not add up: a
    /// held peer was removed since, and the whole overlay must be asked for (a poll naming no
    /// index).
    pub fn merge(self, held: Option<&Overlay>) -> Option<Overlay> {
        if self.changed_since == 0 {
            return Some(self);
        }
        let held = held?;
        let mut peers: std::collections::BTreeMap<&str, &OverlayPeer> =
            held.peers.iter().map(|p| (p.node.as_str(), p)).collect();
        for p in &self.peers {
            peers.insert(&p.node, p);
        }
        if peers.len() as u64 != self.peer_count {
            return None;
        }
        let peers = peers.into_values().cloned().collect();
        Some(Overlay {
            peers,
            changed_since: 0,
            peer_count: 0,
            ..self
        })
    }
}

/// Another node on the overlay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverlayPeer {
    pub node: String,
    /// Base64 WireGuard public key.
    pub public_key: String,
    /// `IP:PORT` of its tunnel.
    pub endpoint: String,
    /// The subnet routed to it.
    pub subnet: String,
    /// Raft index of the last change to this peer's record.
    pub generation: u64,
}

/// Every service's ready replicas (running, healthy or without a check, not stopping), for the
/// agents' DNS: one cluster-wide watch per agent instead of one per service. Full state as of
/// Raft index `index`, or only what changed since the index the agent holds
/// ([`ServiceEndpoints::changed_since`]). Format 2.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ServiceEndpoints {
    /// Pass it back as `index` to wait for the next change.
    pub index: u64,
    pub term: u64,
    /// By service name.
    pub services: Vec<ServiceAddresses>,
    /// Not 0: `services` holds only the services whose endpoints changed after this index (the
    /// poll's), and [`ServiceEndpoints::unchanged`] names the others, as the agent holds them
    /// from its answer at that index. A held service named in neither is gone. Sent only to a
    /// poll that said it merges (`changed=1`, or `changed=2` for entries of changed replicas,
    /// [`ServiceAddresses::partial`]). Format 2.
    #[serde(default)]
    pub changed_since: u64,
    /// With `changed_since`: the services unchanged since, by name, in no order. Format 2.
    #[serde(default)]
    pub unchanged: Vec<String>,
    /// How long after this answer the agent waits before it polls again (0: at once), set by
    /// the leader from the cluster's size so that the answers it gives stay within a rate: in a
    /// large cluster that changes all the time, each agent takes the changes of the last
    /// moment together, as kube-proxy's `minSyncPeriod` does. A poll woken by the agent's own
    /// assignments does not wait. Format 2.
    #[serde(default)]
    pub pace_ms: u64,
}

impl ServiceEndpoints {
    /// The whole table from `held` (the answer as of `changed_since`) and `self`, an answer
    /// with `changed_since`; `self` when it is whole already. `None` when the two do not add up
    /// (`held` is of another index, lacks a service named unchanged or sent in part, or a
    /// service's replicas do not come to the count sent): the whole table must be asked for (a
    /// poll at index 0).
    pub fn merge(self, held: Option<&ServiceEndpoints>) -> Option<ServiceEndpoints> {
        if self.changed_since == 0 {
            return Some(self);
        }
        let held = held.filter(|h| h.index == self.changed_since)?;
        let by_name: std::collections::HashMap<&str, &ServiceAddresses> = held
            .services
            .iter()
            .map(|s| (s.service.as_str(), s))
            .collect();
        let mut services = Vec::with_capacity(self.services.len() + self.unchanged.len());
        for s in self.services {
            services.push(if s.partial {
                let held = by_name.get(s.service.as_str())?;
                s.merge(held)?
            } else {
                s
            });
        }
        for name in &self.unchanged {
            services.push((*by_name.get(name.as_str())?).clone());
        }
        services.sort_by(|a, b| a.service.cmp(&b.service));
        services.dedup_by(|a, b| a.service == b.service);
        Some(ServiceEndpoints {
            index: self.index,
            term: self.term,
            services,
            changed_since: 0,
            unchanged: Vec::new(),
            pace_ms: self.pace_ms,
        })
    }
}

/// One service's ready replicas: all of them, sorted by slot then task; or, in an answer of
/// changes to a poll that merges replicas ([`ServiceAddresses::partial`]), those changed since.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ServiceAddresses {
    pub service: String,
    pub replicas: Vec<ReplicaAddress>,
    /// Its virtual IP (`endpoint_mode = "vip"`); `SERVICE` resolves to it.
    #[serde(default)]
    pub vip: Option<String>,
    /// The ports of its current spec (VIP ports, and ingress ports published on every node).
    #[serde(default)]
    pub ports: Vec<crate::service::ServicePort>,
    /// In an answer with [`ServiceEndpoints::changed_since`], to a poll that said `changed=2`:
    /// `replicas` lists only the replicas that are ready and changed after that index,
    /// [`ServiceAddresses::removed`] the tasks that are not ready any more, and
    /// [`ServiceAddresses::replica_count`] how many ready replicas there are in all; `vip` and
    /// `ports` are whole. What a rollout or a fill sends each agent is then what changed, not
    /// every replica of the services it touches. Format 2.
    #[serde(default)]
    pub partial: bool,
    /// With `partial`: tasks no longer among the ready replicas, by id, some perhaps never
    /// held (ready and gone again between two answers). Format 2.
    #[serde(default)]
    pub removed: Vec<String>,
    /// With `partial`: the ready replicas in all, once merged. Format 2.
    #[serde(default)]
    pub replica_count: u64,
}

impl ServiceAddresses {
    /// `held` (this service as the agent holds it) with this entry's changed replicas; `None`
    /// when they do not come to [`ServiceAddresses::replica_count`].
    fn merge(self, held: &ServiceAddresses) -> Option<ServiceAddresses> {
        let mut replicas: std::collections::HashMap<&str, &ReplicaAddress> =
            held.replicas.iter().map(|r| (r.task.as_str(), r)).collect();
        for task in &self.removed {
            replicas.remove(task.as_str());
        }
        for r in &self.replicas {
            replicas.insert(&r.task, r);
        }
        if replicas.len() as u64 != self.replica_count {
            return None;
        }
        let mut replicas: Vec<ReplicaAddress> = replicas.into_values().cloned().collect();
        replicas.sort_by(ReplicaAddress::order);
        Some(ServiceAddresses {
            service: self.service,
            replicas,
            vip: self.vip,
            ports: self.ports,
            partial: false,
            removed: Vec::new(),
            replica_count: 0,
        })
    }
}

/// One ready replica of a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaAddress {
    pub slot: u64,
    pub task: String,
    pub node: String,
    /// Its address on the overlay.
    pub address: String,
}

impl ReplicaAddress {
    /// The order of a whole entry's replicas: by slot, then task (two tasks share a slot while
    /// one replaces the other).
    pub fn order(a: &ReplicaAddress, b: &ReplicaAddress) -> std::cmp::Ordering {
        (a.slot, &a.task).cmp(&(b.slot, &b.task))
    }
}

/// An overlay agent's view of its peers, sent every few seconds to `POST /v1/agent/overlay`; the
/// leader keeps the latest in memory for `hoist node inspect` (answer: [`StatusAck`]). Format 2.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OverlayReport {
    pub node_id: String,
    pub peers: Vec<crate::agent::PeerStatus>,
    /// Why the node's service addresses (nftables) could not be applied, if they could not.
    #[serde(default)]
    pub mesh_error: Option<String>,
}

/// A node's named volumes, sent to `POST /v1/agent/volumes` when their names or users change and
/// every 30 s otherwise; the leader keeps the latest in memory for `hoist node volumes` (answer:
/// [`StatusAck`]). Format 2.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeReport {
    pub node_id: String,
    /// Sorted by name.
    pub volumes: Vec<NodeVolume>,
}

/// One named volume of a node, as its agent reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeVolume {
    pub name: String,
    /// Bytes its files take on disk as the agent last measured them: every volume at most once
    /// a minute, a new one with the first report that lists it (so up to a minute old).
    /// Absent: not measured.
    #[serde(default)]
    pub size_bytes: Option<u64>,
    /// The containers (names) whose spec mounts it, running or not.
    #[serde(default)]
    pub used_by: Vec<String>,
    /// When it was made (first used), milliseconds since the Unix epoch.
    #[serde(default)]
    pub created_ms: Option<u64>,
}

/// A task's health as the agent's checks see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    /// The spec has no health check.
    None,
    /// Within the start period or before the first check.
    Starting,
    Healthy,
    Unhealthy,
}

/// What a node observes of one task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskStatus {
    pub task_id: String,
    pub state: TaskState,
    pub health: Health,
    /// The local container id, when one exists.
    pub container_id: Option<String>,
    /// The replica's address on its node's network (`IP`), for the service registry.
    pub address: Option<String>,
    pub exit_code: Option<i32>,
    /// One line: why it failed, was restarted, is unhealthy...
    pub message: String,
    /// Restarts the agent made under the restart policy.
    pub restarts: u64,
}

/// Task status changes since the last report, batched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReport {
    pub node_id: String,
    pub term_seen: u64,
    pub tasks: Vec<TaskStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusAck {
    pub term: u64,
}

/// The prefix of a join token; bumped if the format changes.
pub const TOKEN_PREFIX: &str = "HOIST1";
/// The prefix of a join token that also carries the digest of the cluster's root certificate
/// (format 2).
pub const TOKEN_PREFIX_CA: &str = "HOIST2";

/// A join token's parts. The text form is `HOIST1-<cluster id>-<secret>`, or
/// `HOIST2-<cluster id>-<CA digest>-<secret>` for a token that also names the cluster's root
/// certificate: the cluster id is 16 lowercase hex digits (a random id made once per cluster), the
/// CA digest 64 (the SHA-256 of the root certificate's DER), the secret 32 (128 random bits).
/// An agent compares the cluster id with [`RegisterResponse::cluster_id`] to know it reached the
/// cluster the token was made for (and, with a digest, trusts only a controller that proves it
/// holds that CA); the controller compares the cluster id and the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinTokenParts {
    pub cluster_id: String,
    /// Lowercase hex SHA-256 of the cluster's root certificate (DER); `None` in a `HOIST1` token.
    pub ca_digest: Option<String>,
    pub secret: String,
}

impl JoinTokenParts {
    /// The token's text: `HOIST2-...` when it carries a CA digest, `HOIST1-...` otherwise.
    pub fn encode(&self) -> String {
        match &self.ca_digest {
            Some(digest) => format!(
                "{TOKEN_PREFIX_CA}-{}-{digest}-{}",
                self.cluster_id, self.secret
            ),
            None => format!("{TOKEN_PREFIX}-{}-{}", self.cluster_id, self.secret),
        }
    }
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Whether `digest` has the shape of a root certificate's digest (as join tokens carry it):
/// a SHA-256, 64 lowercase hex digits.
pub fn is_ca_digest(digest: &str) -> bool {
    is_hex(digest, 64)
}

/// Whether `secret` has the shape of a join token's secret: 32 lowercase hex digits.
pub fn is_join_secret(secret: &str) -> bool {
    is_hex(secret, 32)
}

/// Reads a token made by `hoist cluster token` (`HOIST1` or `HOIST2`); the error names what is
/// wrong.
pub fn parse_join_token(token: &str) -> Result<JoinTokenParts, String> {
    const SHAPES: &str = "HOIST1-<cluster id>-<secret> or HOIST2-<cluster id>-<CA digest>-<secret>";
    let parts: Vec<&str> = token.trim().split('-').collect();
    let (id, ca_digest, secret) = match parts.as_slice() {
        [TOKEN_PREFIX, id, secret] => (*id, None, *secret),
        [TOKEN_PREFIX_CA, id, digest, secret] => (*id, Some(*digest), *secret),
        [prefix, _, ..] if *prefix != TOKEN_PREFIX && *prefix != TOKEN_PREFIX_CA => {
            return Err(format!(
                "join token: starts with {prefix:?}, expected {TOKEN_PREFIX:?} or {TOKEN_PREFIX_CA:?}"
            ));
        }
        _ => return Err(format!("join token: expected {SHAPES}")),
    };
    if !is_hex(id, 16) {
        return Err("join token: the cluster id must be 16 hex digits".into());
    }
    if let Some(digest) = ca_digest {
        if !is_ca_digest(digest) {
            return Err(
                "join token: the CA digest must be 64 lowercase hex digits (a SHA-256)".into(),
            );
        }
    }
    if !is_join_secret(secret) {
        return Err("join token: the secret must be 32 hex digits".into());
    }
    Ok(JoinTokenParts {
        cluster_id: id.into(),
        ca_digest: ca_digest.map(String::from),
        secret: secret.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::samples::{overlay_peer as peer, overlay_with as overlay};

    const ID: &str = "0123456789abcdef";
    const SECRET: &str = "00112233445566778899aabbccddeeff";

    #[test]
    fn join_tokens() {
        let t = JoinTokenParts {
            cluster_id: ID.into(),
            ca_digest: None,
            secret: SECRET.into(),
        };
        let text = t.encode();
        assert_eq!(
            text,
            "HOIST1-0123456789abcdef-00112233445566778899aabbccddeeff"
        );
        assert_eq!(parse_join_token(&text).unwrap(), t);
        assert_eq!(parse_join_token(&format!(" {text}\n")).unwrap(), t);
        // A HOIST2 token has four parts: three are not one.
        let e = parse_join_token(&format!("HOIST2-{ID}-{SECRET}")).unwrap_err();
        assert!(
            e.contains("expected HOIST1-<cluster id>-<secret> or HOIST2-"),
            "{e}"
        );
        assert!(parse_join_token("HOIST1-xyz-00")
            .unwrap_err()
            .contains("cluster id"));
        assert!(parse_join_token(&format!("HOIST1-{ID}-0011"))
            .unwrap_err()
            .contains("secret"));
        assert!(parse_join_token("nope").is_err());
        assert!(parse_join_token("").is_err());
    }

    #[test]
    fn join_tokens_with_a_ca_digest() {
        let digest = "ab".repeat(32);
        let t = JoinTokenParts {
            cluster_id: ID.into(),
            ca_digest: Some(digest.clone()),
            secret: SECRET.into(),
        };
        let text = t.encode();
        assert_eq!(text, format!("HOIST2-{ID}-{digest}-{SECRET}"));
        assert_eq!(parse_join_token(&text).unwrap(), t);
        // The same cluster and secret as the HOIST1 token.
        let old = parse_join_token(&format!("HOIST1-{ID}-{SECRET}")).unwrap();
        assert_eq!((old.cluster_id, old.secret), (t.cluster_id, t.secret));
        assert_eq!(old.ca_digest, None);
    }

    #[test]
    fn join_tokens_that_are_refused() {
        let digest = "ab".repeat(32);
        let refused = |text: String, says: &str| {
            let e = parse_join_token(&text).unwrap_err();
            assert!(e.contains(says), "{text}: {e}");
        };
        // The digest: 64 lowercase hex digits.
        refused(
            format!("HOIST2-{ID}-{}-{SECRET}", "ab".repeat(31)),
            "CA digest",
        );
        refused(
            format!("HOIST2-{ID}-{}-{SECRET}", "ab".repeat(33)),
            "CA digest",
        );
        refused(
            format!("HOIST2-{ID}-{}-{SECRET}", "xy".repeat(32)),
            "CA digest",
        );
        refused(
            format!("HOIST2-{ID}-{}-{SECRET}", "AB".repeat(32)),
            "CA digest",
        );
        refused(format!("HOIST2-{ID}--{SECRET}"), "CA digest");
        // The other parts, as in HOIST1.
        refused(
            format!("HOIST2-{}-{digest}-{SECRET}", "0g".repeat(8)),
            "cluster id",
        );
        refused(format!("HOIST2-{ID}-{digest}-{}", "0".repeat(31)), "secret");
        // A digest in a HOIST1 token, or none in a HOIST2 one: the wrong shape.
        refused(format!("HOIST1-{ID}-{digest}-{SECRET}"), "expected HOIST1-");
        refused(
            format!("HOIST2-{ID}-{digest}-{SECRET}-00"),
            "expected HOIST1-",
        );
        // Another prefix.
        refused(
            format!("HOIST3-{ID}-{digest}-{SECRET}"),
            "starts with \"HOIST3\"",
        );
        refused(
            format!("hoist2-{ID}-{digest}-{SECRET}"),
            "starts with \"hoist2\"",
        );
        refused(
            format!("HOISTNODE1-{ID}-{SECRET}"),
            "expected \"HOIST1\" or \"HOIST2\"",
        );
    }

    #[test]
    fn a_volume_report_is_format_2_only() {
        use crate::format::Codec;
        let r = crate::format::samples::volume_report();
        assert!(r.encode(1).is_err(), "never said to a format-1 leader");
        assert!(r.encode(0).is_err());
        let bytes = r.encode(2).unwrap();
        assert_eq!(VolumeReport::decode(&bytes, 2).unwrap(), r);
        assert!(VolumeReport::decode(&bytes, 1).is_err());
    }

    #[test]
    fn certificate_messages_are_format_2_only() {
        use crate::format::Codec;
        let r = crate::format::samples::certificate_request();
        assert!(r.encode(1).is_err() && r.encode(0).is_err());
        assert_eq!(
            CertificateRequest::decode(&r.encode(2).unwrap(), 2).unwrap(),
            r
        );
        let a = crate::format::samples::certificate_response();
        assert!(a.encode(1).is_err() && a.encode(0).is_err());
        assert_eq!(
            CertificateResponse::decode(&a.encode(2).unwrap(), 2).unwrap(),
            a
        );
        // JSON too, as every agent body.
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(
            serde_json::from_str::<CertificateRequest>(&json).unwrap(),
            r
        );
    }

    #[test]
    fn a_csr_and_a_certificate_are_format_2_only() {
        use crate::format::Codec;
        let r = crate::format::samples::register_request_csr();
        let csr_only = RegisterRequest {
            csr: r.csr.clone(),
            ..crate::format::samples::register_request(0)
        };
        assert_eq!(csr_only.encode(0).unwrap_err().what, "RegisterRequest.csr");
        assert_eq!(
            RegisterRequest::decode(&r.encode(2).unwrap(), 2).unwrap(),
            r
        );
        let a = crate::format::samples::register_response_certificate();
        assert_eq!(a.encode(0).unwrap_err().needs, 2);
        assert_eq!(
            RegisterResponse::decode(&a.encode(2).unwrap(), 2).unwrap(),
            a
        );
        // Absent from an older agent's JSON: none.
        let old: RegisterResponse = serde_json::from_value(serde_json::json!({
            "node_id": "n1", "term": 1, "heartbeat_interval_ms": 1, "grace_ms": 1,
            "cluster_id": "0123456789abcdef"
        }))
        .unwrap();
        assert_eq!((old.certificate, old.ca_certificate), (None, None));
    }

    #[test]
    fn changed_peers_merge_into_the_held_overlay_in_node_order() {
        let held = overlay(vec![peer("a", 3), peer("c", 4)], 0, 0);
        // Whole answers replace what is held.
        let whole = overlay(vec![peer("b", 9)], 0, 0);
        assert_eq!(whole.clone().merge(Some(&held)), Some(whole.clone()));
        assert_eq!(whole.clone().merge(None), Some(whole));
        // "b" is new and "c" changed: merged in node order, the rest as held.
        let changes = overlay(vec![peer("b", 7), peer("c", 8)], 4, 3);
        let merged = changes.merge(Some(&held)).expect("adds up");
        assert_eq!(
            merged,
            overlay(vec![peer("a", 3), peer("b", 7), peer("c", 8)], 0, 0)
        );
    }

    #[test]
    fn changes_that_do_not_add_up_ask_for_the_whole_overlay() {
        let held = overlay(vec![peer("a", 3), peer("c", 4)], 0, 0);
        // "a" was removed: the whole overlay has 2 peers, held plus changes make 3.
        assert_eq!(overlay(vec![peer("b", 7)], 4, 2).merge(Some(&held)), None);
        // Changes with nothing held to apply them to.
        assert_eq!(overlay(vec![peer("b", 7)], 4, 1).merge(None), None);
    }

    fn addresses(service: &str, slots: &[u64]) -> ServiceAddresses {
        ServiceAddresses {
            service: service.into(),
            replicas: slots
                .iter()
                .map(|&slot| ReplicaAddress {
                    slot,
                    task: format!("{service}-{slot}"),
                    node: "n1".into(),
                    address: format!("10.200.0.{slot}"),
                })
                .collect(),
            ..Default::default()
        }
    }

    fn endpoints(index: u64, services: Vec<ServiceAddresses>) -> ServiceEndpoints {
        ServiceEndpoints {
            index,
            term: 2,
            services,
            ..Default::default()
        }
    }

    #[test]
    fn changed_services_merge_into_the_held_endpoints_by_name() {
        let held = endpoints(
            40,
            vec![
                addresses("api", &[0]),
                addresses("db", &[0]),
                addresses("web", &[0, 1]),
            ],
        );
        // Whole answers replace what is held.
        let whole = endpoints(41, vec![addresses("api", &[0])]);
        assert_eq!(whole.clone().merge(Some(&held)), Some(whole.clone()));
        assert_eq!(whole.clone().merge(None), Some(whole));
        // "web" lost a replica and "cache" is new; "api" is as held; "db" was removed.
        let changes = ServiceEndpoints {
            services: vec![addresses("web", &[0]), addresses("cache", &[3])],
            changed_since: 40,
            unchanged: vec!["api".into()],
            ..endpoints(45, vec![])
        };
        assert_eq!(
            changes.merge(Some(&held)),
            Some(endpoints(
                45,
                vec![
                    addresses("api", &[0]),
                    addresses("cache", &[3]),
                    addresses("web", &[0])
                ]
            ))
        );
    }

    #[test]
    fn changed_replicas_merge_into_the_held_service_by_task() {
        let held = endpoints(
            40,
            vec![addresses("api", &[0]), addresses("web", &[0, 1, 2])],
        );
        // web-1 is gone, web-2 moved, web-5 is new, and "gone" was never held.
        let mut moved = addresses("web", &[2, 5]);
        moved.replicas[0].address = "10.200.9.2".into();
        let web = ServiceAddresses {
            partial: true,
            removed: vec!["web-1".into(), "gone".into()],
            replica_count: 3,
            vip: Some("10.201.0.7".into()),
            ..moved.clone()
        };
        let changes = ServiceEndpoints {
            changed_since: 40,
            unchanged: vec!["api".into()],
            ..endpoints(45, vec![web.clone()])
        };
        let mut whole = addresses("web", &[0, 2, 5]);
        whole.replicas[1] = moved.replicas[0].clone();
        whole.vip = Some("10.201.0.7".into());
        assert_eq!(
            changes.merge(Some(&held)),
            Some(endpoints(45, vec![addresses("api", &[0]), whole]))
        );
        // A count the merge does not come to, and a service sent in part that is not held.
        let miscounted = ServiceEndpoints {
            changed_since: 40,
            unchanged: vec!["api".into()],
            ..endpoints(
                45,
                vec![ServiceAddresses {
                    replica_count: 4,
                    ..web.clone()
                }],
            )
        };
        assert_eq!(miscounted.merge(Some(&held)), None);
        let unheld = ServiceEndpoints {
            changed_since: 40,
            ..endpoints(
                45,
                vec![ServiceAddresses {
                    service: "db".into(),
                    ..web
                }],
            )
        };
        assert_eq!(unheld.merge(Some(&held)), None);
    }

    #[test]
    fn endpoint_changes_that_do_not_add_up_ask_for_the_whole_table() {
        let held = endpoints(40, vec![addresses("api", &[0])]);
        let changes = |since: u64, unchanged: &[&str]| ServiceEndpoints {
            changed_since: since,
            unchanged: unchanged.iter().map(|s| s.to_string()).collect(),
            ..endpoints(45, vec![addresses("web", &[1])])
        };
        assert!(changes(40, &["api"]).merge(Some(&held)).is_some());
        // Changes since another index than the one held.
        assert_eq!(changes(39, &["api"]).merge(Some(&held)), None);
        // A service named unchanged that is not held.
        assert_eq!(changes(40, &["api", "db"]).merge(Some(&held)), None);
        // Nothing held to apply them to.
        assert_eq!(changes(40, &[]).merge(None), None);
    }
}
