//! Format 0's Raft payload (0.1.0's `hoist_proto::raft`) and the outcome of a forwarded write.

use super::cluster::{Node, NodeAvailability, NodeStatus, Rollout, Service, ServiceChange, Task};
use super::node::TaskStatus;
use super::service::ServiceSpec;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StallNotice {
    pub leader: u64,
    pub term: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub time_ms: u64,
    pub command: Command,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    ApplyService(Box<ServiceSpec>),
    DeleteService {
        name: String,
    },
    ScaleService {
        name: String,
        replicas: i64,
    },
    RollbackService {
        name: String,
        version: Option<u64>,
    },
    RegisterNode(Node),
    SetNodeStatus {
        id: String,
        status: NodeStatus,
    },
    RemoveNode {
        id: String,
    },
    PutTasks(Vec<Task>),
    RemoveTasks(Vec<String>),
    Restore(Vec<u8>),
    Noop,
    Batch(Vec<Command>),
    Plan(Plan),
    SetNodeAvailability {
        id: String,
        availability: NodeAvailability,
    },
    SetNodeLabels {
        id: String,
        set: BTreeMap<String, String>,
        remove: Vec<String>,
    },
    ReportStatus {
        node: String,
        tasks: Vec<TaskStatus>,
    },
    InitCluster {
        cluster_id: String,
        secret: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Plan {
    pub place: Vec<Task>,
    pub stop: Vec<(String, String)>,
    pub remove: Vec<String>,
    pub rollouts: Vec<(String, Rollout)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PlanResult {
    pub placed: u64,
    pub refused: Vec<(String, String)>,
    pub stopped: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorCode {
    NotFound,
    Invalid,
    Conflict,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandError {
    pub code: ErrorCode,
    pub message: String,
    pub field: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    Service(ServiceChange),
    Deleted(Service),
    Node(Node),
    Tasks(u64),
    Restored(u64),
    Ok,
    Error(CommandError),
    Batch(Vec<Response>),
    Plan(PlanResult),
}

/// Why a forwarded write did not happen (0.1.0's `ConsensusError`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConsensusError {
    NotLeader { leader: Option<(u64, String)> },
    NoQuorum(String),
    Unknown(String),
    Rejected(String),
    Fatal(String),
}

/// The leader's answer for one forwarded command (`POST /raft/propose` answers a `Vec` of them).
pub type Outcome = Result<Response, ConsensusError>;
