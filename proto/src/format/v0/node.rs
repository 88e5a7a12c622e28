//! Format 0's agent–controller protocol (0.1.0's `hoist_proto::node`), sent as
//! `application/x-postcard` bodies.

use super::cluster::{NodeResources, TaskState};
use super::service::ServiceSpec;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterRequest {
    pub token: String,
    pub node_id: Option<String>,
    pub hostname: String,
    pub address: String,
    pub labels: BTreeMap<String, String>,
    pub capacity: NodeResources,
    pub agent_version: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterResponse {
    pub node_id: String,
    pub term: u64,
    pub heartbeat_interval_ms: u64,
    pub grace_ms: u64,
    pub cluster_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub node_id: String,
    pub term_seen: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatAck {
    pub term: u64,
    pub known: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    pub task_id: String,
    pub service: String,
    pub service_version: u64,
    pub slot: u64,
    pub spec: ServiceSpec,
    pub desired: TaskState,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignments {
    pub index: u64,
    pub term: u64,
    pub tasks: Vec<Assignment>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Health {
    None,
    Starting,
    Healthy,
    Unhealthy,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskStatus {
    pub task_id: String,
    pub state: TaskState,
    pub health: Health,
    pub container_id: Option<String>,
    pub address: Option<String>,
    pub exit_code: Option<i32>,
    pub message: String,
    pub restarts: u64,
}

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
