//! Format 1's replicated state: the body of a format-3 state image (snapshots, `hoist cluster
//! snapshot save`).

use super::cluster::{ClusterNetwork, Node, Rollout, Task};
use super::raft::Tasks;
use super::service::ServiceVersion;
use std::collections::BTreeMap;

#[derive(Clone, PartialEq, prost::Message)]
pub struct ClusterIdentity {
    #[prost(string, tag = "1")]
    pub cluster_id: String,
    #[prost(string, tag = "2")]
    pub secret: String,
    /// The manager join token's secret (empty: none made yet). Format 2.
    #[prost(string, tag = "3")]
    pub manager_secret: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ServiceRecord {
    #[prost(uint64, tag = "1")]
    pub created_ms: u64,
    #[prost(message, repeated, tag = "2")]
    pub history: Vec<ServiceVersion>,
}

/// Ended tasks of one service, per slot.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SlotHistory {
    #[prost(btree_map = "uint64, message", tag = "1")]
    pub slots: BTreeMap<u64, Tasks>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct State {
    #[prost(btree_map = "string, message", tag = "1")]
    pub services: BTreeMap<String, ServiceRecord>,
    #[prost(btree_map = "string, message", tag = "2")]
    pub nodes: BTreeMap<String, Node>,
    #[prost(btree_map = "string, message", tag = "3")]
    pub tasks: BTreeMap<String, Task>,
    #[prost(message, optional, tag = "4")]
    pub identity: Option<ClusterIdentity>,
    #[prost(btree_map = "string, message", tag = "5")]
    pub rollouts: BTreeMap<String, Rollout>,
    #[prost(btree_map = "string, message", tag = "6")]
    pub slot_history: BTreeMap<String, SlotHistory>,
    #[prost(btree_map = "string, uint64", tag = "7")]
    pub node_index: BTreeMap<String, u64>,
    #[prost(btree_map = "string, uint64", tag = "8")]
    pub endpoints_index: BTreeMap<String, u64>,
    #[prost(uint32, tag = "9")]
    pub cluster_format: u32,
    /// Format 2.
    #[prost(message, optional, tag = "10")]
    pub network: Option<ClusterNetwork>,
    /// Format 2.
    #[prost(uint64, tag = "11")]
    pub overlay_index: u64,
    /// Services' virtual IPs, by service. Format 2.
    #[prost(btree_map = "string, string", tag = "12")]
    pub vips: BTreeMap<String, String>,
    /// Stacks, by name. Format 2.
    #[prost(btree_map = "string, message", tag = "13")]
    pub stacks: BTreeMap<String, super::cluster::Stack>,
    /// Autoscaling histories, by service. Format 2.
    #[prost(btree_map = "string, message", tag = "14")]
    pub autoscale: BTreeMap<String, super::cluster::AutoscaleLog>,
    /// Hook tokens, by id. Format 2.
    #[prost(btree_map = "string, message", tag = "15")]
    pub hook_tokens: BTreeMap<String, super::cluster::HookToken>,
    /// Operator tokens, by name. Format 2.
    #[prost(btree_map = "string, message", tag = "16")]
    pub operator_tokens: BTreeMap<String, super::cluster::OperatorToken>,
    /// The audit log, oldest first. Format 2.
    #[prost(message, repeated, tag = "17")]
    pub audit: Vec<super::cluster::AuditEntry>,
    /// Secrets, by name (their content sealed). Format 2.
    #[prost(btree_map = "string, message", tag = "18")]
    pub secrets: BTreeMap<String, super::cluster::StoredFile>,
    /// Configs, by name. Format 2.
    #[prost(btree_map = "string, message", tag = "19")]
    pub configs: BTreeMap<String, super::cluster::StoredFile>,
    /// Members' public keys and sealed copies of the data key, by member id. Format 2.
    #[prost(btree_map = "uint64, message", tag = "20")]
    pub member_keys: BTreeMap<u64, super::cluster::MemberKey>,
    /// The id of the cluster's data key (empty: none yet). Format 2.
    #[prost(string, tag = "21")]
    pub data_key_id: String,
    /// The unlock key sealed under the data key while autolock is on (empty: off). Format 2.
    #[prost(bytes = "vec", tag = "22")]
    pub autolock: Vec<u8>,
    /// The cluster's root CA, its key sealed under the data key. Format 2.
    #[prost(message, optional, tag = "23")]
    pub ca: Option<super::cluster::ClusterCa>,
}
