//! The controller's API bodies: services with their version history, nodes, tasks, cluster status
//! and errors. JSON over HTTP; what is stored and sent between processes are their twins in
//! [`crate::format`].

use crate::node::Health;
use crate::service::{FieldError, ServicePort, ServiceSpec};
pub use compact_str::CompactString;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A service as it is now: its current spec and version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    pub name: String,
    /// Starts at 1; grows by one for every change of the spec.
    pub version: u64,
    /// Shared with the version history it comes from (encoded as a plain spec).
    pub spec: Arc<ServiceSpec>,
    /// Leader time of the first version, milliseconds since the Unix epoch.
    pub created_ms: u64,
    /// Leader time of the current version.
    pub updated_ms: u64,
    /// The stable virtual IP clients reach it on (`endpoint_mode = "vip"`, once the cluster has
    /// an overlay); kept across updates, freed on `rm`. Format 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vip: Option<String>,
}

/// `GET /v1/services`: a service with how many of its replicas run (JSON only, never stored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceSummary {
    #[serde(flatten)]
    pub service: Service,
    /// Replicas running now (any version), as `docker service ls` counts them.
    #[serde(default)]
    pub running: u64,
    /// Replicas wanted: `replicas`, or for a global service one per eligible node.
    #[serde(default)]
    pub desired: u64,
    /// Of those running, the ones that passed their health check or have none.
    #[serde(default)]
    pub healthy: u64,
}

/// Why a version was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VersionOrigin {
    Apply,
    Scale,
    /// A copy of the spec of version `from`.
    Rollback {
        from: u64,
    },
    /// The spec of version `from` again, so that its replicas are replaced through the update
    /// policy: a secret or config they use with `on_update = "restart"` has a new version.
    /// Format 2.
    Restart {
        from: u64,
    },
}

/// One entry of a service's version history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceVersion {
    pub version: u64,
    pub origin: VersionOrigin,
    pub created_ms: u64,
    /// Shared by the views of this version (encoded as a plain spec).
    pub spec: Arc<ServiceSpec>,
}

/// Answer to apply, scale and rollback: the service after the change, and whether anything changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceChange {
    pub service: Service,
    /// False when the request matched the current spec: no new version was made.
    pub changed: bool,
}

/// `POST /v1/services/{name}/scale`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScaleRequest {
    pub replicas: i64,
}

/// `POST /v1/services/{name}/rollback`: to `version`, or to the one before the current.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    #[serde(default)]
    pub version: Option<u64>,
}

/// Whether a node is alive, as the leader sees its heartbeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeStatus {
    Ready,
    /// No heartbeat for the grace period: its replicas are replaced elsewhere.
    Down,
}

/// Whether a node takes work, as the operator sets it (`hoist node pause|drain|activate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeAvailability {
    /// Takes new replicas.
    #[default]
    Active,
    /// Keeps its replicas, takes no new ones.
    Paused,
    /// Its replicas move elsewhere; takes no new ones.
    Drained,
}

/// What a node offers to replicas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NodeResources {
    pub cpu_millis: u64,
    pub memory_bytes: u64,
}

/// An agent's host as the scheduler sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    pub id: String,
    pub hostname: String,
    /// The address other hosts reach this node on.
    pub address: String,
    pub labels: BTreeMap<String, String>,
    /// The labels the agent declared (`--label`) when it last registered: what a re-registration
    /// merges against, so the operator's edits of the others survive an agent restart.
    #[serde(default)]
    pub agent_labels: BTreeMap<String, String>,
    pub capacity: NodeResources,
    /// Liveness: ready or down.
    pub status: NodeStatus,
    /// Operator-set: active, paused or drained.
    pub availability: NodeAvailability,
    pub agent_version: String,
    /// The newest format the agent reads (0 until the cluster itself is at format 1): replicas
    /// whose spec needs a newer one are not placed there. Format 1.
    #[serde(default)]
    pub agent_format: u32,
    /// Leader time of the first registration.
    pub registered_ms: u64,
    /// Leader time of the last change.
    pub updated_ms: u64,
    /// The node's share of the cluster CIDR (`10.200.3.0/24`): its bridge and its containers'
    /// addresses. Allocated when it registers (or when the cluster's overlay is set up), kept
    /// across agent restarts, freed with the node. `None` while the cluster has no overlay yet
    /// or the CIDR is exhausted (then [`Node::overlay_problem`] says so). Format 2.
    #[serde(default)]
    pub subnet: Option<String>,
    /// The agent's WireGuard public key (base64 of 32 bytes). Format 2.
    #[serde(default)]
    pub wg_public_key: Option<String>,
    /// Where its tunnel listens, `IP:PORT`. Format 2.
    #[serde(default)]
    pub wg_endpoint: Option<String>,
    /// Raft index of the last change to the node's overlay record (subnet, key, endpoint): the
    /// peer generation agents compare. Format 2.
    #[serde(default)]
    pub overlay_generation: u64,
    /// Why the node has no subnet although the cluster has an overlay (the CIDR is exhausted).
    /// Format 2.
    #[serde(default)]
    pub overlay_problem: Option<String>,
    /// Lowercase hex SHA-256 of the node's own credential (`HOISTNODE1-<node>-<secret>`),
    /// issued when its agent registers: from then on only that credential may act for the
    /// node. Empty for an agent older than format 2. Never in an API answer. Format 2.
    #[serde(default, skip_serializing)]
    pub credential_sha256: String,
    /// Lowercase hex SHA-256 of the SubjectPublicKeyInfo DER of the key its certificate was
    /// issued for: only a client certificate for that key acts for the node. Empty for a node
    /// without one. Never in an API answer. Format 2.
    #[serde(default, skip_serializing)]
    pub cert_key_sha256: String,
}

impl Node {
    /// The oldest format that can carry this record.
    pub fn format(&self) -> u32 {
        if self.subnet.is_some()
            || self.wg_public_key.is_some()
            || self.wg_endpoint.is_some()
            || self.overlay_generation != 0
            || self.overlay_problem.is_some()
            || !self.credential_sha256.is_empty()
            || !self.cert_key_sha256.is_empty()
        {
            2
        } else {
            u32::from(self.agent_format != 0)
        }
    }
}

/// The cluster's overlay address plan, set once by the leader from `hoist-controller
/// --cluster-cidr` (format 2): every node gets a `/subnet_prefix` out of `cidr`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterNetwork {
    /// `10.200.0.0/16` by default.
    pub cidr: String,
    /// The prefix length of each node's subnet, 24 by default.
    pub subnet_prefix: u32,
    /// Where services' virtual IPs come from (`hoist-controller --vip-cidr`, `10.201.0.0/16`);
    /// absent in a plan set before virtual IPs existed, until the leader adds it.
    #[serde(default)]
    pub vip_cidr: Option<String>,
}

/// The cluster's root certificate authority (format 2): made once by the leader when the data key
/// exists. Its private key is sealed under the data key (`HSEAL1...`, never in clear in the log).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterCa {
    /// The root certificate, PEM.
    pub cert_pem: String,
    /// The CA's private key (PKCS#8 PEM) sealed under the data key.
    pub sealed_key: Vec<u8>,
    /// Lowercase hex SHA-256 of the root certificate's DER: what join tokens carry.
    pub digest: String,
    /// When it was made (ms since the epoch, the leader's clock).
    pub created_ms: u64,
    /// While a rotation is going on (`hoist cluster ca rotate`): the root this one replaces,
    /// PEM, still trusted until every member and node holds a certificate under this one.
    /// Empty otherwise.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub previous_pem: String,
    /// While a rotation is going on: this root's certificate cross-signed by the previous root
    /// (PEM), which chains under this root carry so that the previous root verifies them.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cross_pem: String,
}

impl ClusterCa {
    /// Whether a rotation to this root is still going on.
    pub fn rotating(&self) -> bool {
        !self.previous_pem.is_empty()
    }

    /// The roots members and nodes trust now (PEM): this one first, then the previous one
    /// during a rotation.
    pub fn trusted_pem(&self) -> String {
        let mut text = self.cert_pem.clone();
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&self.previous_pem);
        text
    }

    /// What a certificate signed under this root is presented with besides the roots: the
    /// cross-signed root during a rotation, nothing otherwise (PEM).
    pub fn intermediates_pem(&self) -> &str {
        &self.cross_pem
    }
}

impl std::fmt::Debug for ClusterCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterCa")
            .field("cert_pem", &self.cert_pem)
            .field("sealed_key", &"<sealed>")
            .field("digest", &self.digest)
            .field("created_ms", &self.created_ms)
            .field("rotating", &self.rotating())
            .finish()
    }
}

/// The lifecycle of a task (one replica of one service version on one node).
/// Variants are only appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskState {
    /// Assigned, not running yet (image being pulled, container being created).
    Pending,
    Running,
    /// Stopped because it was asked to (desired `Shutdown`).
    Shutdown,
    /// Failed for good: start failed, restart policy exhausted, or unhealthy.
    Failed,
    /// Exited 0 and the restart policy does not restart it.
    Complete,
}

impl TaskState {
    /// Whether the task will never run again.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskState::Shutdown | TaskState::Failed | TaskState::Complete
        )
    }
}

/// A replica placed by the scheduler on a node, with what its agent last reported.
///
/// Its strings are [`CompactString`]s: ids, names, addresses and short messages (up to 24 bytes)
/// are kept inside the task instead of behind a pointer of their own each. The controller holds
/// every task of the cluster, and five such allocations were about 75 bytes of each task's
/// 830 on the heap (`bench/README.md`, "Controller at scale"). They encode as strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    pub id: CompactString,
    pub service: CompactString,
    pub service_version: u64,
    /// Replica slot, 0-based; stable across updates. Global services use one slot per node.
    pub slot: u64,
    pub node: CompactString,
    /// `Running` to run it, `Shutdown` to stop it.
    pub desired: TaskState,
    /// As the agent last reported it.
    pub state: TaskState,
    pub health: Health,
    /// The replica's IP on its node's network.
    pub address: Option<CompactString>,
    pub container_id: Option<CompactString>,
    pub exit_code: Option<i32>,
    /// One line: why it is pending, failed, stopped, replaced...
    pub message: CompactString,
    pub restarts: u64,
    /// Leader time when it was placed.
    pub created_ms: u64,
    pub updated_ms: u64,
    /// Leader time since when it has been Running and healthy (or Running without a check).
    pub ready_since_ms: Option<u64>,
    /// The Raft index at which it was taken out of its service's addresses to stop: every node
    /// stops sending it new connections, then (after `update.drain`) it is stopped. Format 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drain_index: Option<u64>,
}

impl Task {
    /// Running and healthy, or running without a health check.
    pub fn is_ready(&self) -> bool {
        self.state == TaskState::Running && matches!(self.health, Health::Healthy | Health::None)
    }

    /// Whether clients are sent to it: wanted, ready, with an address, not draining.
    pub fn is_endpoint(&self) -> bool {
        self.desired == TaskState::Running
            && self.drain_index.is_none()
            && self.is_ready()
            && self.address.is_some()
    }

    /// The task as one of its service's ready replicas, if it is one ([`Task::is_endpoint`]).
    pub fn as_replica(&self) -> Option<crate::node::ReplicaAddress> {
        if !self.is_endpoint() {
            return None;
        }
        Some(crate::node::ReplicaAddress {
            slot: self.slot,
            task: self.id.to_string(),
            node: self.node.to_string(),
            address: self.address.as_deref()?.to_string(),
        })
    }
}

/// Where a rolling update is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RolloutState {
    Updating,
    Completed,
    /// A new replica failed and `failure_action = "pause"`: nothing more moves until the next apply.
    Paused,
    /// A new replica failed and `failure_action = "rollback"`: the previous spec is rolling out.
    RollingBack,
    /// The rollback finished.
    RolledBack,
    /// The rollback itself failed.
    Failed,
}

/// A service's rolling update, kept in the replicated state so a new leader continues it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rollout {
    /// The version being rolled out.
    pub version: u64,
    /// The version it replaces.
    pub from_version: u64,
    pub state: RolloutState,
    /// Slots of the service at `version` and ready.
    pub updated: u64,
    /// Slots to update in all.
    pub total: u64,
    /// New replicas that failed their health gate.
    pub failures: u64,
    pub message: String,
    pub started_ms: u64,
    pub updated_ms: u64,
    /// When the last batch was started (for `update.delay`).
    pub batch_started_ms: u64,
    /// When this rollout is an automatic rollback: the version that failed.
    pub rollback_of: Option<u64>,
}

/// One replica slot as `hoist service ps` shows it: the current task (or why there is none) and
/// the slot's recent tasks, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaView {
    pub slot: u64,
    /// The task meant to run now; `None` while the slot is pending.
    pub task: Option<Task>,
    /// Why the slot is not placed: per node, what does not fit.
    pub pending: Option<String>,
    pub history: Vec<Task>,
}

/// `GET /v1/services/{name}/ps`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceTasks {
    pub service: String,
    pub version: u64,
    pub replicas: Vec<ReplicaView>,
}

/// One healthy running replica, for discovery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub address: String,
    /// The container port (first of `ports`), if any.
    pub port: Option<u16>,
    /// Every port of the service's spec: the container port (`target`), the node port it is
    /// published on, if any, and the protocol.
    #[serde(default)]
    pub ports: Vec<ServicePort>,
    pub node: String,
    pub node_address: String,
    pub task: String,
}

/// `GET /v1/services/{name}/endpoints`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoints {
    /// Pass it back as `index` to wait for the next change.
    pub index: u64,
    pub endpoints: Vec<Endpoint>,
}

/// `GET /v1/cluster/token`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinToken {
    /// `HOIST2-<cluster id>-<root CA digest>-<secret>`, or `HOIST1-<cluster id>-<secret>` below
    /// format 2 (see [`crate::node::parse_join_token`]).
    pub token: String,
    pub cluster_id: String,
}

/// `POST /v1/nodes/{id}/labels`: set and remove labels.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelRequest {
    #[serde(default)]
    pub set: BTreeMap<String, String>,
    #[serde(default)]
    pub remove: Vec<String>,
}

/// `POST /v1/nodes/{id}/availability`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AvailabilityRequest {
    pub availability: NodeAvailability,
}

/// A node as `hoist node ls|inspect` shows it: the replicated record plus what the leader knows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeView {
    pub node: Node,
    /// The node's overlay subnet (`node.subnet`, repeated here for scripts).
    #[serde(default)]
    pub subnet: Option<String>,
    /// Tasks meant to run there.
    pub tasks: u64,
    /// Reserved by those tasks.
    pub reserved: NodeResources,
    /// Milliseconds since the last heartbeat the answering leader received, if any.
    pub last_heartbeat_ms_ago: Option<u64>,
    /// Each overlay peer as this node's agent last reported it (handshake, bytes, probes through
    /// the tunnel), and how long ago; empty when it has not reported to this leader.
    #[serde(default)]
    pub peers: Vec<crate::agent::PeerStatus>,
    #[serde(default)]
    pub peers_reported_ms_ago: Option<u64>,
    /// What is wrong with those peers, in words (as `hoist net doctor` says it on the node).
    #[serde(default)]
    pub peer_problems: Vec<String>,
    /// Why the node's service addresses (nftables) could not be applied, as it last reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mesh_error: Option<String>,
}

/// A node's named volumes as `hoist node volumes` shows them (`GET /v1/nodes/{id}/volumes`): its
/// agent's latest report to the answering leader, kept in the leader's memory only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeVolumes {
    pub node: String,
    pub hostname: String,
    /// Milliseconds since the report arrived; absent when the node has not reported to this
    /// leader (then `volumes` is empty and `note` says why).
    #[serde(default)]
    pub reported_ms_ago: Option<u64>,
    #[serde(default)]
    pub volumes: Vec<crate::node::NodeVolume>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A controller in the Raft group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub id: u64,
    /// Where it serves Raft and the API, `HOST:PORT`.
    pub address: String,
    /// A voter counts for quorum; a learner only receives the log.
    pub voter: bool,
    /// The Hoist version it runs, as the answering member last heard (absent: not heard).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The newest format it reads, likewise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<u32>,
}

/// `GET /v1/cluster/status`, as seen by the member that answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterStatus {
    /// The answering member.
    pub id: u64,
    /// `leader`, `follower`, `candidate` or `learner`.
    pub role: String,
    pub leader: Option<u64>,
    pub leader_address: Option<String>,
    pub term: u64,
    pub last_log_index: Option<u64>,
    pub last_applied: Option<u64>,
    pub snapshot_index: Option<u64>,
    /// Log entries up to this index are compacted away (only a snapshot holds them).
    #[serde(default)]
    pub purged_index: Option<u64>,
    /// Snapshots this member installed from a leader since it started (catch-up of a member the
    /// leader's log no longer reaches back to).
    #[serde(default)]
    pub snapshots_installed: u64,
    pub members: Vec<Member>,
    /// SHA-256 of the replicated state at `last_applied`; equal on members with equal `last_applied`.
    pub state_hash: String,
    pub services: u64,
    /// The answering member's Hoist version (a member of 0.1.0 does not say it).
    #[serde(default = "legacy_version")]
    pub version: String,
    /// The newest format the answering member reads and writes.
    #[serde(default)]
    pub format: u32,
    /// The format the cluster writes: the newest every member reads.
    #[serde(default)]
    pub cluster_format: u32,
    /// The overlay's address plan, once set (format 2).
    #[serde(default)]
    pub network: Option<ClusterNetwork>,
}

/// The version of a member that does not say it: only 0.1.0 did not.
fn legacy_version() -> String {
    "0.1.0".into()
}

/// `POST /v1/cluster/members`: add a member (as learner, then voter unless `learner`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinRequest {
    pub id: u64,
    pub address: String,
    #[serde(default)]
    pub learner: bool,
}

/// `POST /v1/cluster/members/{id}/certificate`: a joining member's signing request for its
/// own key; answered with [`MemberCertificate`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberCertificateRequest {
    /// Where the member is reached (`HOST:PORT`): its certificate names the address.
    pub address: String,
    /// PEM.
    pub csr: String,
}

/// A member's certificate and the cluster's root, PEM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberCertificate {
    pub certificate: String,
    pub ca_certificate: String,
}

/// Every non-2xx answer of the controller's API carries one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// `invalid`, `not_found`, `conflict`, `no_quorum`, `payload_too_large`, `internal`...
    pub code: String,
    /// One line naming the field or thing at fault.
    pub message: String,
    /// The offending field's dotted path, when one is at fault.
    #[serde(default)]
    pub field: Option<String>,
    /// All field problems when a spec is invalid.
    #[serde(default)]
    pub errors: Vec<FieldError>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shapes() {
        let v = ServiceVersion {
            version: 2,
            origin: VersionOrigin::Rollback { from: 1 },
            created_ms: 5,
            spec: Arc::new(ServiceSpec::new("a", "b")),
        };
        let j = serde_json::to_value(&v).unwrap();
        assert_eq!(j["origin"], serde_json::json!({"rollback": {"from": 1}}));
        assert_eq!(serde_json::to_value(VersionOrigin::Apply).unwrap(), "apply");
        let back: ServiceVersion = serde_json::from_value(j).unwrap();
        assert_eq!(back, v);
    }
}

/// A stack: services deployed together from Compose files and released as one (format 2).
/// Its services are named `STACK_SERVICE`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stack {
    pub name: String,
    pub created_ms: u64,
    /// The services it has now (full names), sorted.
    pub services: Vec<String>,
    /// Its releases, oldest first; the last is the current one. At most the last 20 are kept.
    pub releases: Vec<StackRelease>,
}

impl Stack {
    /// The current release, if the stack has had one.
    pub fn current(&self) -> Option<&StackRelease> {
        self.releases.last()
    }
}

/// One `hoist stack deploy`: every service it changed rolls out under this release, and the
/// release ends with one verdict for all of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackRelease {
    /// 1, 2, ... per stack.
    pub release: u64,
    pub created_ms: u64,
    pub updated_ms: u64,
    pub state: ReleaseState,
    /// Why it ended so (empty while deploying or when completed).
    #[serde(default)]
    pub message: String,
    /// Each service the deploy named: its version in this release and the one before.
    pub members: Vec<StackMember>,
    /// Services the deploy removed (`--prune`); a rollback does not bring them back.
    #[serde(default)]
    pub removed: Vec<String>,
}

/// A service of a release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackMember {
    pub service: String,
    /// Its version in this release.
    pub version: u64,
    /// Its version before the release; 0 when the release created it.
    pub previous: u64,
    /// Whether the release changed it (an unchanged service keeps its version).
    pub changed: bool,
}

/// Where a release stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReleaseState {
    /// Its services are rolling out.
    Deploying,
    /// Every changed service runs its new version.
    Completed,
    /// A service failed its update: every changed service went back to its previous version,
    /// and services the release created were removed.
    RolledBack,
    /// A later deploy, or a change to one of its services made outside the stack, took over
    /// before it ended.
    Superseded,
}

/// What a stack deploy or removal did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackChange {
    pub stack: Stack,
    /// False when the deploy changed nothing (no new release).
    pub changed: bool,
    /// Each service's outcome, in the order given (for a removal: the services removed).
    pub services: Vec<ServiceChange>,
}

/// Who asked for an autoscaling decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AutoscaleSource {
    /// `POST /v1/hooks/alertmanager`: a firing alert.
    Alertmanager,
    /// `POST /v1/services/NAME/scale-hook`: any other monitor.
    Hook,
    /// The leader's evaluation of the spec's PromQL `query`.
    Query,
    /// `hoist service scale`.
    Operator,
}

impl AutoscaleSource {
    pub fn as_str(self) -> &'static str {
        match self {
            AutoscaleSource::Alertmanager => "alertmanager",
            AutoscaleSource::Hook => "hook",
            AutoscaleSource::Query => "query",
            AutoscaleSource::Operator => "operator",
        }
    }
}

/// One autoscaling decision, committed through Raft with its reason and kept in the service's
/// autoscale history (format 2). `from == to` records a request that changed nothing (held by a
/// bound, a cooldown or the stabilization window, or a failed query) and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutoscaleDecision {
    pub service: String,
    pub source: AutoscaleSource,
    /// The replicas the decision was made from; `apply` refuses it if the service has another
    /// count by then (the leader decides again).
    pub from: i64,
    pub to: i64,
    /// What asked: the alert, the hook's request, the query's value against its target.
    pub reason: String,
    /// What limited it (`clamped to max 5`, `cooldown_up: 12s left`, `held by
    /// stabilization_down`), or the query's error; empty when nothing did.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
    /// An alert's identity (group key, fingerprint, startsAt): a delivery seen before is not
    /// applied again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dedup: Option<String>,
    /// The Raft index it was committed at (set by `apply`).
    #[serde(default)]
    pub index: u64,
    /// Leader time it was committed at (set by `apply`).
    #[serde(default)]
    pub time_ms: u64,
}

/// A service's autoscale history in the replicated state (format 2).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AutoscaleLog {
    /// The last [`AutoscaleLog::KEEP`] decisions, oldest first. Shared: the replicated state is
    /// copied on write, and a log copied to record one decision shares the other 99.
    pub decisions: std::collections::VecDeque<std::sync::Arc<AutoscaleDecision>>,
    /// The dedup keys of the last [`AutoscaleLog::KEEP_KEYS`] alerts applied.
    pub seen: std::collections::VecDeque<String>,
    /// Decisions ever committed for the service, and those that changed its replicas (the
    /// metrics' counters).
    pub total: u64,
    pub scaled: u64,
}

impl AutoscaleLog {
    pub const KEEP: usize = 100;
    pub const KEEP_KEYS: usize = 512;

    /// The last decision that scaled up, if one is still kept.
    pub fn last_up(&self) -> Option<&AutoscaleDecision> {
        self.decisions
            .iter()
            .rev()
            .find(|d| d.to > d.from)
            .map(|d| &**d)
    }
}

/// `GET /v1/services/{name}/autoscale` (JSON only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutoscaleStatus {
    pub service: String,
    pub replicas: i64,
    pub autoscale: Option<crate::service::Autoscale>,
    /// Oldest first.
    pub decisions: Vec<AutoscaleDecision>,
    #[serde(default)]
    pub total: u64,
}

/// What applying an autoscaling decision did (format 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutoscaleOutcome {
    /// The decision as recorded (with its index and time).
    pub decision: AutoscaleDecision,
    /// False when its alert had been applied before: nothing was recorded or changed.
    pub applied: bool,
}

/// A token that lets a monitor call the scaling hooks (`hoist hook token create`), kept as the
/// SHA-256 of its secret (format 2). Separate from operators' credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookToken {
    /// Public part of the token (`HOISTHOOK-<id>-<secret>`).
    pub id: String,
    /// Only this service may be scaled with it; `None`: any autoscaled service.
    #[serde(default)]
    pub service: Option<String>,
    /// Lowercase hex SHA-256 of the secret part.
    #[serde(skip_serializing)]
    #[serde(default)]
    pub secret_sha256: String,
    pub created_ms: u64,
}

/// What an operator's token may do (format 2). Ordered: each role may do what the ones before
/// it may.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read only: services, stacks, nodes, tasks, events, logs, the cluster's status.
    #[default]
    Viewer,
    /// A viewer who also changes services and stacks (apply, scale, rollback, remove), their
    /// secrets and configs, and runs commands in replicas.
    Deployer,
    /// Everything: tokens, members, nodes, snapshots, join tokens, the audit log.
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Deployer, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Deployer => "deployer",
            Role::Admin => "admin",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Role, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("{s:?} is not a role: admin, deployer or viewer"))
    }
}

/// An operator's credential (`hoist token create NAME --role ROLE`), kept as the SHA-256 of its
/// secret (format 2): a snapshot or a Raft log never holds a usable token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorToken {
    /// Unique; what `hoist token rm` and the audit log name.
    pub name: String,
    pub role: Role,
    /// The token's public id (`HOISTOP1-<cluster>-<id>-<secret>`).
    pub id: String,
    /// Lowercase hex SHA-256 of the secret part.
    #[serde(skip_serializing, default)]
    pub secret_sha256: String,
    pub created_ms: u64,
    /// Who made it (a token's name; `bootstrap` for the first admin token).
    pub created_by: String,
    /// When it was last used, to the minute (0: never).
    #[serde(default)]
    pub last_used_ms: u64,
}

/// One write as the audit log keeps it (format 2): who, when, what, and whether it was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// The Raft index it was committed at.
    pub index: u64,
    pub time_ms: u64,
    /// The operator token's name.
    pub actor: String,
    /// What was asked (`scale service web to 3`); never a secret's value.
    pub action: String,
    /// Why it was refused, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}
