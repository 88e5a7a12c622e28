//! Format 1's Raft payload: commands, their answers, the outcome of a forwarded write.

use super::cluster::{ClusterNetwork, Node, Rollout, StackChange, Task, TaskStatus};
use super::service::{Service, ServiceChange, ServiceSpec};
use std::collections::BTreeMap;

#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct StallNotice {
    #[prost(uint64, tag = "1")]
    pub leader: u64,
    #[prost(uint64, tag = "2")]
    pub term: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Request {
    #[prost(uint64, tag = "1")]
    pub time_ms: u64,
    #[prost(message, optional, tag = "2")]
    pub command: Option<Command>,
}

/// A command: exactly one of the `kind` variants. Variants get new tags, never reused ones.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Command {
    #[prost(
        oneof = "command::Kind",
        tags = "1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41"
    )]
    pub kind: Option<command::Kind>,
}

pub mod command {
    use super::*;

    // Transient wire values, decoded once and converted at once: no boxing.
    #[allow(clippy::large_enum_variant)]
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Kind {
        #[prost(message, tag = "1")]
        ApplyService(ServiceSpec),
        #[prost(message, tag = "2")]
        DeleteService(Name),
        #[prost(message, tag = "3")]
        ScaleService(Scale),
        #[prost(message, tag = "4")]
        RollbackService(Rollback),
        #[prost(message, tag = "5")]
        RegisterNode(Node),
        #[prost(message, tag = "6")]
        SetNodeStatus(NodeStatus),
        #[prost(message, tag = "7")]
        RemoveNode(Name),
        #[prost(message, tag = "8")]
        PutTasks(Tasks),
        #[prost(message, tag = "9")]
        RemoveTasks(Names),
        /// A state image (`HOISTSM`, format 0 or 1).
        #[prost(bytes, tag = "10")]
        Restore(Vec<u8>),
        #[prost(message, tag = "11")]
        Noop(Empty),
        #[prost(message, tag = "12")]
        Batch(Commands),
        #[prost(message, tag = "13")]
        Plan(Plan),
        #[prost(message, tag = "14")]
        SetNodeAvailability(NodeAvailability),
        #[prost(message, tag = "15")]
        SetNodeLabels(NodeLabels),
        #[prost(message, tag = "16")]
        ReportStatus(Report),
        #[prost(message, tag = "17")]
        InitCluster(InitCluster),
        #[prost(message, tag = "18")]
        SetClusterFormat(ClusterFormat),
        #[prost(message, tag = "19")]
        SetNodeVersion(NodeVersion),
        /// Format 2.
        #[prost(message, tag = "20")]
        SetClusterNetwork(ClusterNetwork),
        /// Format 2.
        #[prost(message, tag = "21")]
        DeployStack(StackDeploy),
        /// Format 2.
        #[prost(message, tag = "22")]
        SetReleaseState(ReleaseVerdict),
        /// Format 2.
        #[prost(message, tag = "23")]
        RollbackStack(StackRollback),
        /// Format 2.
        #[prost(message, tag = "24")]
        RemoveStack(Name),
        /// Format 2.
        #[prost(message, tag = "25")]
        Autoscale(super::super::cluster::AutoscaleDecision),
        /// Format 2.
        #[prost(message, tag = "26")]
        CreateHookToken(super::super::cluster::HookToken),
        /// Format 2.
        #[prost(message, tag = "27")]
        RemoveHookToken(Name),
        /// Format 2.
        #[prost(message, tag = "28")]
        CreateOperatorToken(super::super::cluster::OperatorToken),
        /// Format 2.
        #[prost(message, tag = "29")]
        RemoveOperatorToken(Name),
        /// Format 2.
        #[prost(message, tag = "30")]
        TouchOperatorTokens(Names),
        /// Format 2.
        #[prost(message, tag = "31")]
        Audited(Box<Audited>),
        /// Format 2.
        #[prost(message, tag = "32")]
        PutFile(super::super::cluster::FileWrite),
        /// Format 2.
        #[prost(message, tag = "33")]
        RemoveFile(super::super::cluster::FileName),
        /// Format 2.
        #[prost(message, tag = "34")]
        SetMemberKey(super::super::cluster::MemberPublicKey),
        /// Format 2.
        #[prost(message, tag = "35")]
        SealDataKey(super::super::cluster::SealDataKey),
        /// Format 2.
        #[prost(message, tag = "36")]
        SetAutolock(super::super::cluster::Autolock),
        /// Format 2.
        #[prost(message, tag = "37")]
        RemoveMemberKeys(super::super::cluster::MemberIds),
        /// Format 2.
        #[prost(message, tag = "38")]
        SetClusterCa(super::super::cluster::ClusterCa),
        /// Format 2.
        #[prost(message, tag = "39")]
        RotateJoinSecret(super::super::cluster::JoinSecret),
        /// Format 2.
        #[prost(message, tag = "40")]
        RotateClusterCa(super::super::cluster::ClusterCa),
        /// Format 2.
        #[prost(message, tag = "41")]
        FinishCaRotation(super::super::cluster::CaDigest),
    }
}

/// An operator's write and who made it (format 2).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Audited {
    #[prost(string, tag = "1")]
    pub actor: String,
    #[prost(message, optional, boxed, tag = "2")]
    pub command: Option<Box<Command>>,
}

#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Empty {}

/// Format 2.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StackDeploy {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, repeated, tag = "2")]
    pub services: Vec<ServiceSpec>,
    #[prost(bool, tag = "3")]
    pub prune: bool,
}

/// Format 2.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ReleaseVerdict {
    #[prost(string, tag = "1")]
    pub stack: String,
    #[prost(uint64, tag = "2")]
    pub release: u64,
    /// `ReleaseState`, as in `StackRelease.state`.
    #[prost(int32, tag = "3")]
    pub state: i32,
    #[prost(string, tag = "4")]
    pub message: String,
}

/// Format 2.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StackRollback {
    #[prost(string, tag = "1")]
    pub stack: String,
    #[prost(uint64, tag = "2")]
    pub release: u64,
    #[prost(string, tag = "3")]
    pub reason: String,
}

/// A name or id (`DeleteService`, `RemoveNode`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Name {
    #[prost(string, tag = "1")]
    pub name: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Names {
    #[prost(string, repeated, tag = "1")]
    pub names: Vec<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Scale {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(sint64, tag = "2")]
    pub replicas: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Rollback {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(uint64, optional, tag = "2")]
    pub version: Option<u64>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct NodeStatus {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(int32, tag = "2")]
    pub status: i32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct NodeAvailability {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(int32, tag = "2")]
    pub availability: i32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct NodeLabels {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(btree_map = "string, string", tag = "2")]
    pub set: BTreeMap<String, String>,
    #[prost(string, repeated, tag = "3")]
    pub remove: Vec<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Tasks {
    #[prost(message, repeated, tag = "1")]
    pub tasks: Vec<Task>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Commands {
    #[prost(message, repeated, tag = "1")]
    pub commands: Vec<Command>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Report {
    #[prost(string, tag = "1")]
    pub node: String,
    #[prost(message, repeated, tag = "2")]
    pub tasks: Vec<TaskStatus>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct InitCluster {
    #[prost(string, tag = "1")]
    pub cluster_id: String,
    #[prost(string, tag = "2")]
    pub secret: String,
}

#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct ClusterFormat {
    #[prost(uint32, tag = "1")]
    pub format: u32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct NodeVersion {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(string, tag = "2")]
    pub agent_version: String,
    #[prost(uint32, tag = "3")]
    pub agent_format: u32,
}

/// A task id and why (a stop in a plan, a refused placement).
#[derive(Clone, PartialEq, prost::Message)]
pub struct TaskReason {
    #[prost(string, tag = "1")]
    pub task: String,
    #[prost(string, tag = "2")]
    pub reason: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ServiceRollout {
    #[prost(string, tag = "1")]
    pub service: String,
    #[prost(message, optional, tag = "2")]
    pub rollout: Option<Rollout>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Plan {
    #[prost(message, repeated, tag = "1")]
    pub place: Vec<Task>,
    #[prost(message, repeated, tag = "2")]
    pub stop: Vec<TaskReason>,
    #[prost(string, repeated, tag = "3")]
    pub remove: Vec<String>,
    #[prost(message, repeated, tag = "4")]
    pub rollouts: Vec<ServiceRollout>,
    /// Format 2.
    #[prost(message, repeated, tag = "5")]
    pub drain: Vec<TaskReason>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct PlanResult {
    #[prost(uint64, tag = "1")]
    pub placed: u64,
    #[prost(message, repeated, tag = "2")]
    pub refused: Vec<TaskReason>,
    #[prost(uint64, tag = "3")]
    pub stopped: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct CommandError {
    /// `ErrorCode`: 0 not found, 1 invalid, 2 conflict.
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
    #[prost(string, optional, tag = "3")]
    pub field: Option<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Response {
    #[prost(
        oneof = "response::Kind",
        tags = "1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12"
    )]
    pub kind: Option<response::Kind>,
}

pub mod response {
    use super::*;

    // Transient wire values, decoded once and converted at once: no boxing.
    #[allow(clippy::large_enum_variant)]
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Kind {
        #[prost(message, tag = "1")]
        Service(ServiceChange),
        #[prost(message, tag = "2")]
        Deleted(Service),
        #[prost(message, tag = "3")]
        Node(Node),
        #[prost(uint64, tag = "4")]
        Tasks(u64),
        #[prost(uint64, tag = "5")]
        Restored(u64),
        #[prost(message, tag = "6")]
        Ok(Empty),
        #[prost(message, tag = "7")]
        Error(CommandError),
        #[prost(message, tag = "8")]
        Batch(Responses),
        #[prost(message, tag = "9")]
        Plan(PlanResult),
        /// Format 2.
        #[prost(message, tag = "10")]
        Stack(StackChange),
        /// Format 2.
        #[prost(message, tag = "11")]
        Autoscale(super::super::cluster::AutoscaleOutcome),
        /// Format 2.
        #[prost(message, tag = "12")]
        File(super::super::cluster::StoredFile),
    }
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Responses {
    #[prost(message, repeated, tag = "1")]
    pub responses: Vec<Response>,
}

/// Why a forwarded write did not happen: `kind` 0 not the leader (`leader_id`, `leader_address`
/// if known), 1 no quorum, 2 outcome unknown, 3 rejected, 4 fatal, 5 needs a newer cluster format.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ConsensusError {
    #[prost(int32, tag = "1")]
    pub kind: i32,
    #[prost(string, tag = "2")]
    pub message: String,
    #[prost(uint64, optional, tag = "3")]
    pub leader_id: Option<u64>,
    #[prost(string, optional, tag = "4")]
    pub leader_address: Option<String>,
}

/// `POST /raft/propose`: writes forwarded to the leader.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Propose {
    #[prost(message, repeated, tag = "1")]
    pub commands: Vec<Command>,
}

/// The leader's answer to [`Propose`]: one outcome per command, in order.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Outcomes {
    #[prost(message, repeated, tag = "1")]
    pub outcomes: Vec<Outcome>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Outcome {
    #[prost(oneof = "outcome::Kind", tags = "1, 2")]
    pub kind: Option<outcome::Kind>,
}

pub mod outcome {
    use super::*;

    // Transient wire values, decoded once and converted at once: no boxing.
    #[allow(clippy::large_enum_variant)]
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Kind {
        #[prost(message, tag = "1")]
        Ok(Response),
        #[prost(message, tag = "2")]
        Err(ConsensusError),
    }
}
