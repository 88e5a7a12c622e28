//! Format 1's nodes, tasks and rollouts, and the agent–controller protocol.

use super::service::ServiceSpec;
use std::collections::BTreeMap;

#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct NodeResources {
    #[prost(uint64, tag = "1")]
    pub cpu_millis: u64,
    #[prost(uint64, tag = "2")]
    pub memory_bytes: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Node {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(string, tag = "2")]
    pub hostname: String,
    #[prost(string, tag = "3")]
    pub address: String,
    #[prost(btree_map = "string, string", tag = "4")]
    pub labels: BTreeMap<String, String>,
    #[prost(btree_map = "string, string", tag = "5")]
    pub agent_labels: BTreeMap<String, String>,
    #[prost(message, optional, tag = "6")]
    pub capacity: Option<NodeResources>,
    /// `NodeStatus`: 0 ready, 1 down.
    #[prost(int32, tag = "7")]
    pub status: i32,
    /// `NodeAvailability`: 0 active, 1 paused, 2 drained.
    #[prost(int32, tag = "8")]
    pub availability: i32,
    #[prost(string, tag = "9")]
    pub agent_version: String,
    #[prost(uint64, tag = "10")]
    pub registered_ms: u64,
    #[prost(uint64, tag = "11")]
    pub updated_ms: u64,
    #[prost(uint32, tag = "12")]
    pub agent_format: u32,
    // Format 2: the overlay.
    #[prost(string, optional, tag = "13")]
    pub subnet: Option<String>,
    #[prost(string, optional, tag = "14")]
    pub wg_public_key: Option<String>,
    #[prost(string, optional, tag = "15")]
    pub wg_endpoint: Option<String>,
    #[prost(uint64, tag = "16")]
    pub overlay_generation: u64,
    #[prost(string, optional, tag = "17")]
    pub overlay_problem: Option<String>,
    /// Format 2.
    #[prost(string, tag = "18")]
    pub credential_sha256: String,
    /// Format 2.
    #[prost(string, tag = "19")]
    pub cert_key_sha256: String,
}

/// Format 2.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ClusterNetwork {
    #[prost(string, tag = "1")]
    pub cidr: String,
    #[prost(uint32, tag = "2")]
    pub subnet_prefix: u32,
    #[prost(string, optional, tag = "3")]
    pub vip_cidr: Option<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Task {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(string, tag = "2")]
    pub service: String,
    #[prost(uint64, tag = "3")]
    pub service_version: u64,
    #[prost(uint64, tag = "4")]
    pub slot: u64,
    #[prost(string, tag = "5")]
    pub node: String,
    /// `TaskState`: 0 pending, 1 running, 2 shutdown, 3 failed, 4 complete.
    #[prost(int32, tag = "6")]
    pub desired: i32,
    #[prost(int32, tag = "7")]
    pub state: i32,
    /// `Health`: 0 none, 1 starting, 2 healthy, 3 unhealthy.
    #[prost(int32, tag = "8")]
    pub health: i32,
    #[prost(string, optional, tag = "9")]
    pub address: Option<String>,
    #[prost(string, optional, tag = "10")]
    pub container_id: Option<String>,
    #[prost(sint32, optional, tag = "11")]
    pub exit_code: Option<i32>,
    #[prost(string, tag = "12")]
    pub message: String,
    #[prost(uint64, tag = "13")]
    pub restarts: u64,
    #[prost(uint64, tag = "14")]
    pub created_ms: u64,
    #[prost(uint64, tag = "15")]
    pub updated_ms: u64,
    #[prost(uint64, optional, tag = "16")]
    pub ready_since_ms: Option<u64>,
    /// Format 2.
    #[prost(uint64, optional, tag = "17")]
    pub drain_index: Option<u64>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Rollout {
    #[prost(uint64, tag = "1")]
    pub version: u64,
    #[prost(uint64, tag = "2")]
    pub from_version: u64,
    /// `RolloutState`: 0 updating, 1 completed, 2 paused, 3 rolling back, 4 rolled back, 5 failed.
    #[prost(int32, tag = "3")]
    pub state: i32,
    #[prost(uint64, tag = "4")]
    pub updated: u64,
    #[prost(uint64, tag = "5")]
    pub total: u64,
    #[prost(uint64, tag = "6")]
    pub failures: u64,
    #[prost(string, tag = "7")]
    pub message: String,
    #[prost(uint64, tag = "8")]
    pub started_ms: u64,
    #[prost(uint64, tag = "9")]
    pub updated_ms: u64,
    #[prost(uint64, tag = "10")]
    pub batch_started_ms: u64,
    #[prost(uint64, optional, tag = "11")]
    pub rollback_of: Option<u64>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct RegisterRequest {
    #[prost(string, tag = "1")]
    pub token: String,
    #[prost(string, optional, tag = "2")]
    pub node_id: Option<String>,
    #[prost(string, tag = "3")]
    pub hostname: String,
    #[prost(string, tag = "4")]
    pub address: String,
    #[prost(btree_map = "string, string", tag = "5")]
    pub labels: BTreeMap<String, String>,
    #[prost(message, optional, tag = "6")]
    pub capacity: Option<NodeResources>,
    #[prost(string, tag = "7")]
    pub agent_version: String,
    // Format 2.
    #[prost(string, optional, tag = "8")]
    pub wg_public_key: Option<String>,
    #[prost(string, optional, tag = "9")]
    pub wg_endpoint: Option<String>,
    /// Format 2.
    #[prost(string, optional, tag = "10")]
    pub csr: Option<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct RegisterResponse {
    #[prost(string, tag = "1")]
    pub node_id: String,
    #[prost(uint64, tag = "2")]
    pub term: u64,
    #[prost(uint64, tag = "3")]
    pub heartbeat_interval_ms: u64,
    #[prost(uint64, tag = "4")]
    pub grace_ms: u64,
    #[prost(string, tag = "5")]
    pub cluster_id: String,
    /// Format 2.
    #[prost(string, optional, tag = "6")]
    pub node_credential: Option<String>,
    /// Format 2.
    #[prost(string, optional, tag = "7")]
    pub certificate: Option<String>,
    /// Format 2.
    #[prost(string, optional, tag = "8")]
    pub ca_certificate: Option<String>,
}

/// `POST /v1/agent/certificate` (format 2).
#[derive(Clone, PartialEq, prost::Message)]
pub struct CertificateRequest {
    #[prost(string, tag = "1")]
    pub node_id: String,
    #[prost(string, tag = "2")]
    pub csr: String,
}

/// The answer to `POST /v1/agent/certificate` (format 2).
#[derive(Clone, PartialEq, prost::Message)]
pub struct CertificateResponse {
    #[prost(string, tag = "1")]
    pub certificate: String,
    #[prost(string, tag = "2")]
    pub ca_certificate: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Heartbeat {
    #[prost(string, tag = "1")]
    pub node_id: String,
    #[prost(uint64, tag = "2")]
    pub term_seen: u64,
    /// Format 2.
    #[prost(uint64, tag = "3")]
    pub endpoints_applied: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct HeartbeatAck {
    #[prost(uint64, tag = "1")]
    pub term: u64,
    #[prost(bool, tag = "2")]
    pub known: bool,
    #[prost(string, tag = "3")]
    pub ca_digest: String,
    #[prost(uint64, tag = "4")]
    pub heartbeat_interval_ms: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Assignment {
    #[prost(string, tag = "1")]
    pub task_id: String,
    #[prost(string, tag = "2")]
    pub service: String,
    #[prost(uint64, tag = "3")]
    pub service_version: u64,
    #[prost(uint64, tag = "4")]
    pub slot: u64,
    #[prost(message, optional, tag = "5")]
    pub spec: Option<ServiceSpec>,
    #[prost(int32, tag = "6")]
    pub desired: i32,
    /// Format 2.
    #[prost(message, repeated, tag = "7")]
    pub files: Vec<FileVersion>,
    /// Format 2.
    #[prost(bool, tag = "8")]
    pub spec_held: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Assignments {
    #[prost(uint64, tag = "1")]
    pub index: u64,
    #[prost(uint64, tag = "2")]
    pub term: u64,
    #[prost(message, repeated, tag = "3")]
    pub tasks: Vec<Assignment>,
    /// Format 2.
    #[prost(message, optional, tag = "4")]
    pub overlay: Option<Overlay>,
    /// Format 2.
    #[prost(uint64, tag = "5")]
    pub overlay_index: u64,
    /// Format 2.
    #[prost(uint64, tag = "6")]
    pub changed_since: u64,
    /// Format 2.
    #[prost(string, repeated, tag = "7")]
    pub unchanged: Vec<String>,
}

/// Format 2.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Overlay {
    #[prost(string, tag = "1")]
    pub cluster_cidr: String,
    #[prost(string, optional, tag = "2")]
    pub subnet: Option<String>,
    #[prost(string, optional, tag = "3")]
    pub problem: Option<String>,
    #[prost(message, repeated, tag = "4")]
    pub peers: Vec<OverlayPeer>,
    /// Format 2.
    #[prost(uint64, tag = "5")]
    pub changed_since: u64,
    /// Format 2.
    #[prost(uint64, tag = "6")]
    pub peer_count: u64,
}

/// Format 2.
#[derive(Clone, PartialEq, prost::Message)]
pub struct OverlayPeer {
    #[prost(string, tag = "1")]
    pub node: String,
    #[prost(string, tag = "2")]
    pub public_key: String,
    #[prost(string, tag = "3")]
    pub endpoint: String,
    #[prost(string, tag = "4")]
    pub subnet: String,
    #[prost(uint64, tag = "5")]
    pub generation: u64,
}

/// Format 2.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ServiceEndpoints {
    #[prost(uint64, tag = "1")]
    pub index: u64,
    #[prost(uint64, tag = "2")]
    pub term: u64,
    #[prost(message, repeated, tag = "3")]
    pub services: Vec<ServiceAddresses>,
    /// Format 2.
    #[prost(uint64, tag = "4")]
    pub changed_since: u64,
    /// Format 2.
    #[prost(string, repeated, tag = "5")]
    pub unchanged: Vec<String>,
    /// Format 2.
    #[prost(uint64, tag = "6")]
    pub pace_ms: u64,
}

/// Format 2.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ServiceAddresses {
    #[prost(string, tag = "1")]
    pub service: String,
    #[prost(message, repeated, tag = "2")]
    pub replicas: Vec<ReplicaAddress>,
    #[prost(string, optional, tag = "3")]
    pub vip: Option<String>,
    #[prost(message, repeated, tag = "4")]
    pub ports: Vec<super::service::ServicePort>,
    /// Format 2.
    #[prost(bool, tag = "5")]
    pub partial: bool,
    /// Format 2.
    #[prost(string, repeated, tag = "6")]
    pub removed: Vec<String>,
    /// Format 2.
    #[prost(uint64, tag = "7")]
    pub replica_count: u64,
}

/// Format 2.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ReplicaAddress {
    #[prost(uint64, tag = "1")]
    pub slot: u64,
    #[prost(string, tag = "2")]
    pub task: String,
    #[prost(string, tag = "3")]
    pub node: String,
    #[prost(string, tag = "4")]
    pub address: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct TaskStatus {
    #[prost(string, tag = "1")]
    pub task_id: String,
    #[prost(int32, tag = "2")]
    pub state: i32,
    #[prost(int32, tag = "3")]
    pub health: i32,
    #[prost(string, optional, tag = "4")]
    pub container_id: Option<String>,
    #[prost(string, optional, tag = "5")]
    pub address: Option<String>,
    #[prost(sint32, optional, tag = "6")]
    pub exit_code: Option<i32>,
    #[prost(string, tag = "7")]
    pub message: String,
    #[prost(uint64, tag = "8")]
    pub restarts: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct StatusReport {
    #[prost(string, tag = "1")]
    pub node_id: String,
    #[prost(uint64, tag = "2")]
    pub term_seen: u64,
    #[prost(message, repeated, tag = "3")]
    pub tasks: Vec<TaskStatus>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct StatusAck {
    #[prost(uint64, tag = "1")]
    pub term: u64,
}

/// Format 2.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PeerStatus {
    #[prost(string, tag = "1")]
    pub node: String,
    #[prost(string, tag = "2")]
    pub endpoint: String,
    #[prost(string, tag = "3")]
    pub subnet: String,
    #[prost(uint64, optional, tag = "4")]
    pub handshake_age_s: Option<u64>,
    #[prost(uint64, tag = "5")]
    pub rx_bytes: u64,
    #[prost(uint64, tag = "6")]
    pub tx_bytes: u64,
    #[prost(uint32, tag = "7")]
    pub probes_sent: u32,
    #[prost(uint32, tag = "8")]
    pub probes_lost: u32,
    #[prost(uint32, tag = "9")]
    pub probes_lost_in_a_row: u32,
    #[prost(double, optional, tag = "10")]
    pub probe_rtt_ms: Option<f64>,
}

/// Format 2.
#[derive(Clone, PartialEq, prost::Message)]
pub struct OverlayReport {
    #[prost(string, tag = "1")]
    pub node_id: String,
    #[prost(message, repeated, tag = "2")]
    pub peers: Vec<PeerStatus>,
    #[prost(string, optional, tag = "3")]
    pub mesh_error: Option<String>,
}

/// Format 2.
#[derive(Clone, PartialEq, prost::Message)]
pub struct VolumeReport {
    #[prost(string, tag = "1")]
    pub node_id: String,
    #[prost(message, repeated, tag = "2")]
    pub volumes: Vec<NodeVolume>,
}

/// Format 2.
#[derive(Clone, PartialEq, prost::Message)]
pub struct NodeVolume {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(uint64, optional, tag = "2")]
    pub size_bytes: Option<u64>,
    #[prost(string, repeated, tag = "3")]
    pub used_by: Vec<String>,
    #[prost(uint64, optional, tag = "4")]
    pub created_ms: Option<u64>,
}

/// A stack (format 2).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Stack {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(uint64, tag = "2")]
    pub created_ms: u64,
    #[prost(string, repeated, tag = "3")]
    pub services: Vec<String>,
    #[prost(message, repeated, tag = "4")]
    pub releases: Vec<StackRelease>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct StackRelease {
    #[prost(uint64, tag = "1")]
    pub release: u64,
    #[prost(uint64, tag = "2")]
    pub created_ms: u64,
    #[prost(uint64, tag = "3")]
    pub updated_ms: u64,
    /// `ReleaseState`: 0 deploying, 1 completed, 2 rolled back, 3 superseded.
    #[prost(int32, tag = "4")]
    pub state: i32,
    #[prost(string, tag = "5")]
    pub message: String,
    #[prost(message, repeated, tag = "6")]
    pub members: Vec<StackMember>,
    #[prost(string, repeated, tag = "7")]
    pub removed: Vec<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct StackMember {
    #[prost(string, tag = "1")]
    pub service: String,
    #[prost(uint64, tag = "2")]
    pub version: u64,
    #[prost(uint64, tag = "3")]
    pub previous: u64,
    #[prost(bool, tag = "4")]
    pub changed: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct StackChange {
    #[prost(message, optional, tag = "1")]
    pub stack: Option<Stack>,
    #[prost(bool, tag = "2")]
    pub changed: bool,
    #[prost(message, repeated, tag = "3")]
    pub services: Vec<super::service::ServiceChange>,
}

/// An autoscaling decision (format 2).
#[derive(Clone, PartialEq, prost::Message)]
pub struct AutoscaleDecision {
    #[prost(string, tag = "1")]
    pub service: String,
    /// `AutoscaleSource`: 0 alertmanager, 1 hook, 2 query, 3 operator.
    #[prost(int32, tag = "2")]
    pub source: i32,
    #[prost(sint64, tag = "3")]
    pub from: i64,
    #[prost(sint64, tag = "4")]
    pub to: i64,
    #[prost(string, tag = "5")]
    pub reason: String,
    #[prost(string, tag = "6")]
    pub detail: String,
    #[prost(string, optional, tag = "7")]
    pub dedup: Option<String>,
    #[prost(uint64, tag = "8")]
    pub index: u64,
    #[prost(uint64, tag = "9")]
    pub time_ms: u64,
}

/// A service's autoscale history (format 2).
#[derive(Clone, PartialEq, prost::Message)]
pub struct AutoscaleLog {
    #[prost(message, repeated, tag = "1")]
    pub decisions: Vec<AutoscaleDecision>,
    #[prost(string, repeated, tag = "2")]
    pub seen: Vec<String>,
    #[prost(uint64, tag = "3")]
    pub total: u64,
    #[prost(uint64, tag = "4")]
    pub scaled: u64,
}

/// Format 2.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AutoscaleOutcome {
    #[prost(message, optional, tag = "1")]
    pub decision: Option<AutoscaleDecision>,
    #[prost(bool, tag = "2")]
    pub applied: bool,
}

/// A hook token: its id, scope and the SHA-256 of its secret (format 2).
#[derive(Clone, PartialEq, prost::Message)]
pub struct HookToken {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(string, optional, tag = "2")]
    pub service: Option<String>,
    #[prost(string, tag = "3")]
    pub secret_sha256: String,
    #[prost(uint64, tag = "4")]
    pub created_ms: u64,
}

/// An operator token: name, role, id and the SHA-256 of its secret (format 2).
#[derive(Clone, PartialEq, prost::Message)]
pub struct OperatorToken {
    #[prost(string, tag = "1")]
    pub name: String,
    /// `Role`: 0 viewer, 1 deployer, 2 admin.
    #[prost(int32, tag = "2")]
    pub role: i32,
    #[prost(string, tag = "3")]
    pub id: String,
    #[prost(string, tag = "4")]
    pub secret_sha256: String,
    #[prost(uint64, tag = "5")]
    pub created_ms: u64,
    #[prost(string, tag = "6")]
    pub created_by: String,
    #[prost(uint64, tag = "7")]
    pub last_used_ms: u64,
}

/// One write in the audit log (format 2).
#[derive(Clone, PartialEq, prost::Message)]
pub struct AuditEntry {
    #[prost(uint64, tag = "1")]
    pub index: u64,
    #[prost(uint64, tag = "2")]
    pub time_ms: u64,
    #[prost(string, tag = "3")]
    pub actor: String,
    #[prost(string, tag = "4")]
    pub action: String,
    #[prost(string, optional, tag = "5")]
    pub error: Option<String>,
}

/// A secret or config (format 2). `data` is a secret's sealed content or a config's content.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StoredFile {
    /// `FileKind`: 0 secret, 1 config.
    #[prost(int32, tag = "1")]
    pub kind: i32,
    #[prost(string, tag = "2")]
    pub name: String,
    #[prost(uint64, tag = "3")]
    pub version: u64,
    #[prost(uint64, tag = "4")]
    pub created_ms: u64,
    #[prost(uint64, tag = "5")]
    pub updated_ms: u64,
    #[prost(uint64, tag = "6")]
    pub size: u64,
    #[prost(bytes = "vec", tag = "7")]
    pub data: Vec<u8>,
}

/// A new version of a secret or config (format 2).
#[derive(Clone, PartialEq, prost::Message)]
pub struct FileWrite {
    #[prost(int32, tag = "1")]
    pub kind: i32,
    #[prost(string, tag = "2")]
    pub name: String,
    #[prost(bytes = "vec", tag = "3")]
    pub data: Vec<u8>,
    #[prost(uint64, tag = "4")]
    pub size: u64,
}

/// A secret or config by name (format 2).
#[derive(Clone, PartialEq, prost::Message)]
pub struct FileName {
    #[prost(int32, tag = "1")]
    pub kind: i32,
    #[prost(string, tag = "2")]
    pub name: String,
}

/// The version of a secret or config a task needs (format 2).
#[derive(Clone, PartialEq, prost::Message)]
pub struct FileVersion {
    #[prost(int32, tag = "1")]
    pub kind: i32,
    #[prost(string, tag = "2")]
    pub name: String,
    #[prost(uint64, tag = "3")]
    pub version: u64,
}

/// A version's content, for the agent running a task that references it (format 2).
#[derive(Clone, PartialEq, prost::Message)]
pub struct FileContent {
    #[prost(int32, tag = "1")]
    pub kind: i32,
    #[prost(string, tag = "2")]
    pub name: String,
    #[prost(uint64, tag = "3")]
    pub version: u64,
    #[prost(bytes = "vec", tag = "4")]
    pub data: Vec<u8>,
}

/// `GET /v1/agent/files` (format 2).
#[derive(Clone, PartialEq, prost::Message)]
pub struct TaskFiles {
    #[prost(message, repeated, tag = "1")]
    pub files: Vec<FileContent>,
}

/// A member's public key and its sealed copy of the data key (format 2).
#[derive(Clone, PartialEq, prost::Message)]
pub struct MemberKey {
    #[prost(bytes = "vec", tag = "1")]
    pub public_key: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub sealed_data_key: Vec<u8>,
}

/// `SetMemberKey` (format 2).
#[derive(Clone, PartialEq, prost::Message)]
pub struct MemberPublicKey {
    #[prost(uint64, tag = "1")]
    pub member: u64,
    #[prost(bytes = "vec", tag = "2")]
    pub public_key: Vec<u8>,
}

/// The data key sealed for one member (format 2).
#[derive(Clone, PartialEq, prost::Message)]
pub struct SealedKey {
    #[prost(uint64, tag = "1")]
    pub member: u64,
    #[prost(bytes = "vec", tag = "2")]
    pub public_key: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    pub sealed: Vec<u8>,
}

/// `SealDataKey` (format 2).
#[derive(Clone, PartialEq, prost::Message)]
pub struct SealDataKey {
    #[prost(string, tag = "1")]
    pub key_id: String,
    #[prost(message, repeated, tag = "2")]
    pub keys: Vec<SealedKey>,
}

/// `SetAutolock` (format 2): the unlock key sealed under the data key; empty: off.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Autolock {
    #[prost(bytes = "vec", tag = "1")]
    pub sealed_unlock_key: Vec<u8>,
}

/// `RemoveMemberKeys` (format 2).
#[derive(Clone, PartialEq, prost::Message)]
pub struct MemberIds {
    #[prost(uint64, repeated, tag = "1")]
    pub members: Vec<u64>,
}

/// The cluster's root CA, its key sealed under the data key (format 2).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ClusterCa {
    #[prost(string, tag = "1")]
    pub cert_pem: String,
    #[prost(bytes = "vec", tag = "2")]
    pub sealed_key: Vec<u8>,
    #[prost(string, tag = "3")]
    pub digest: String,
    #[prost(uint64, tag = "4")]
    pub created_ms: u64,
    #[prost(string, tag = "5")]
    pub previous_pem: String,
    #[prost(string, tag = "6")]
    pub cross_pem: String,
}

/// `FinishCaRotation` (format 2): the root whose rotation is over.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CaDigest {
    #[prost(string, tag = "1")]
    pub digest: String,
}

/// `RotateJoinSecret` (format 2).
#[derive(Clone, PartialEq, prost::Message)]
pub struct JoinSecret {
    #[prost(string, tag = "1")]
    pub secret: String,
    /// The manager join token's secret rather than the worker's.
    #[prost(bool, tag = "2")]
    pub manager: bool,
}
