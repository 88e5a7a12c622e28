//! Format 0's services, nodes, tasks and rollouts (0.1.0's `hoist_proto::cluster`).

use super::node::Health;
use super::service::ServiceSpec;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    pub name: String,
    pub version: u64,
    pub spec: ServiceSpec,
    pub created_ms: u64,
    pub updated_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum VersionOrigin {
    Apply,
    Scale,
    Rollback { from: u64 },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceVersion {
    pub version: u64,
    pub origin: VersionOrigin,
    pub created_ms: u64,
    pub spec: ServiceSpec,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceChange {
    pub service: Service,
    pub changed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeStatus {
    Ready,
    Down,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeAvailability {
    Active,
    Paused,
    Drained,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeResources {
    pub cpu_millis: u64,
    pub memory_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    pub id: String,
    pub hostname: String,
    pub address: String,
    pub labels: BTreeMap<String, String>,
    pub agent_labels: BTreeMap<String, String>,
    pub capacity: NodeResources,
    pub status: NodeStatus,
    pub availability: NodeAvailability,
    pub agent_version: String,
    pub registered_ms: u64,
    pub updated_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskState {
    Pending,
    Running,
    Shutdown,
    Failed,
    Complete,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    pub id: String,
    pub service: String,
    pub service_version: u64,
    pub slot: u64,
    pub node: String,
    pub desired: TaskState,
    pub state: TaskState,
    pub health: Health,
    pub address: Option<String>,
    pub container_id: Option<String>,
    pub exit_code: Option<i32>,
    pub message: String,
    pub restarts: u64,
    pub created_ms: u64,
    pub updated_ms: u64,
    pub ready_since_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RolloutState {
    Updating,
    Completed,
    Paused,
    RollingBack,
    RolledBack,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rollout {
    pub version: u64,
    pub from_version: u64,
    pub state: RolloutState,
    pub updated: u64,
    pub total: u64,
    pub failures: u64,
    pub message: String,
    pub started_ms: u64,
    pub updated_ms: u64,
    pub batch_started_ms: u64,
    pub rollback_of: Option<u64>,
}
