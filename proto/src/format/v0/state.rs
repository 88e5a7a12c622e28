//! Format 0's replicated state (0.1.0's controller `State`), the body of a format-2 state image.

use super::cluster::{Node, Rollout, ServiceVersion, Task};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterIdentity {
    pub cluster_id: String,
    pub secret: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceRecord {
    pub created_ms: u64,
    pub history: Vec<ServiceVersion>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub services: BTreeMap<String, ServiceRecord>,
    pub nodes: BTreeMap<String, Node>,
    pub tasks: BTreeMap<String, Task>,
    pub identity: Option<ClusterIdentity>,
    pub rollouts: BTreeMap<String, Rollout>,
    pub slot_history: BTreeMap<String, BTreeMap<u64, Vec<Task>>>,
    pub node_index: BTreeMap<String, u64>,
    pub endpoints_index: BTreeMap<String, u64>,
}
