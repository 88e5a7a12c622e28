//! The payload of the controller's Raft log: commands stamped with the leader's clock, and what
//! applying them answers. Postcard-encoded; variants are only ever appended.

use crate::cluster::{
    AutoscaleDecision, AutoscaleOutcome, ClusterCa, ClusterNetwork, HookToken, Node,
    NodeAvailability, NodeStatus, OperatorToken, ReleaseState, Rollout, Service, ServiceChange,
    StackChange, Task,
};
use crate::node::TaskStatus;
use crate::service::ServiceSpec;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A leader's word to its voters that its disk is stalled and it is alive (`POST /raft/stall`):
/// they hold their elections for a moment instead of replacing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StallNotice {
    pub leader: u64,
    pub term: u64,
}

/// One log entry's application data: a command and the leader's wall clock when it was proposed.
/// `apply` uses `time_ms` instead of reading a clock, so every member computes the same state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub time_ms: u64,
    pub command: Command,
}

/// A change to the replicated state. Append new variants at the end only.
// `RegisterNode` carries the node by value, as every caller builds it: boxing it now would change
// every one of them for a few bytes (the node's certificate key hash took it past the lint's
// threshold).
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Create or update a service; the same spec as the current one is a no-op.
    ApplyService(Box<ServiceSpec>),
    DeleteService {
        name: String,
    },
    ScaleService {
        name: String,
        replicas: i64,
    },
    /// Make a new version with the spec of `version` (default: the one before the current).
    RollbackService {
        name: String,
        version: Option<u64>,
    },
    /// Add or replace a node.
    RegisterNode(Node),
    SetNodeStatus {
        id: String,
        status: NodeStatus,
    },
    RemoveNode {
        id: String,
    },
    /// Add or replace tasks (a scheduler plan).
    PutTasks(Vec<Task>),
    RemoveTasks(Vec<String>),
    /// Replace the whole state with an operator's snapshot (postcard bytes of the state image).
    Restore(Vec<u8>),
    /// Does nothing; used to probe that the log accepts writes.
    Noop,
    /// Several commands in one log entry, applied in order (the leader groups concurrent writes).
    /// A batch inside a batch is refused.
    Batch(Vec<Command>),
    /// A scheduler plan computed by the leader from a snapshot; `apply` re-checks it.
    Plan(Plan),
    /// Operator: whether the node takes work.
    SetNodeAvailability {
        id: String,
        availability: NodeAvailability,
    },
    /// Operator: set and remove node labels.
    SetNodeLabels {
        id: String,
        set: BTreeMap<String, String>,
        remove: Vec<String>,
    },
    /// An agent's batched task status report.
    ReportStatus {
        node: String,
        tasks: Vec<TaskStatus>,
    },
    /// Creates the cluster id and join secret; ignored once they exist (the first one wins).
    InitCluster {
        cluster_id: String,
        secret: String,
    },
    /// The leader, once every member reads `format`: from now on the cluster writes it.
    /// The cluster format never goes down. Format 1.
    SetClusterFormat {
        format: u32,
    },
    /// The leader, when a node's agent reports another version than the state holds. Format 1.
    SetNodeVersion {
        id: String,
        agent_version: String,
        agent_format: u32,
    },
    /// The leader, once the cluster is at format 2 and has no overlay address plan yet: from its
    /// `--cluster-cidr`. Set once; every node without a subnet gets one. Format 2.
    SetClusterNetwork(ClusterNetwork),
    /// Operator: create or update every service of a stack as one release (format 2). All or
    /// nothing: a spec that would be refused refuses the whole deploy.
    DeployStack(Box<StackDeploy>),
    /// The leader, when every changed service of a release has rolled out (or something else
    /// took over): the release's verdict. Format 2.
    SetReleaseState {
        stack: String,
        release: u64,
        state: ReleaseState,
        message: String,
    },
    /// The leader, when a service of a deploying release failed its update: every changed
    /// service goes back to its previous version, services the release created are removed.
    /// Format 2.
    RollbackStack {
        stack: String,
        release: u64,
        reason: String,
    },
    /// Operator: delete a stack and every service of it. Format 2.
    RemoveStack {
        name: String,
    },
    /// The leader: an autoscaling decision (from a hook, an alert or the query) with its
    /// reason. Sets the service's replicas without making a new version. Format 2.
    Autoscale(Box<AutoscaleDecision>),
    /// Operator: a new hook token (only its secret's hash). Format 2.
    CreateHookToken(HookToken),
    /// Operator: revoke a hook token. Format 2.
    RemoveHookToken {
        id: String,
    },
    /// Admin (or the first leader, for the bootstrap admin token): a new operator token (only
    /// its secret's hash). Format 2.
    CreateOperatorToken(OperatorToken),
    /// Admin: revoke an operator token. The last admin token cannot be removed. Format 2.
    RemoveOperatorToken {
        name: String,
    },
    /// A member: these tokens were used (at this entry's time). Sent at most once a minute per
    /// token and member. Format 2.
    TouchOperatorTokens {
        names: Vec<String>,
    },
    /// An operator's write: `command`, recorded in the audit log under `actor` (a token's
    /// name) with its outcome. Format 2.
    Audited {
        actor: String,
        command: Box<Command>,
    },
    /// Deployer: a new version of a secret or config (the first creates it). Format 2.
    PutFile(Box<crate::files::FileWrite>),
    /// Deployer: remove a secret or config that no service references. Format 2.
    RemoveFile {
        kind: crate::files::FileKind,
        name: String,
    },
    /// A member: its public key for the cluster's data key (a member whose key changed loses
    /// its sealed copy until the leader seals a new one). Format 2.
    SetMemberKey {
        member: u64,
        public_key: Vec<u8>,
    },
    /// The leader: the data key `key_id` sealed for these members. The first one names the
    /// cluster's data key; a copy of another key is refused. Format 2.
    SealDataKey {
        key_id: String,
        keys: Vec<crate::files::SealedKey>,
    },
    /// Admin: turn autolock on (the unlock key, sealed under the data key: every member then
    /// keeps its private key only encrypted with it) or off (empty). Format 2.
    SetAutolock {
        sealed_unlock_key: Vec<u8>,
    },
    /// The leader: forget the public keys (and sealed copies of the data key) of these
    /// members, which are no longer in the cluster. Format 2.
    RemoveMemberKeys {
        members: Vec<u64>,
    },
    /// The leader, once the data key exists: the cluster's root CA (its key sealed under the
    /// data key). Set once: the same CA again changes nothing, another one is refused. Format 2.
    SetClusterCa(Box<ClusterCa>),
    /// Admin: a new secret for the worker join token (32 lowercase hex digits); tokens with the
    /// old one no longer register nodes. With `manager`, the manager join token's secret (made
    /// by the first one): tokens with the old one no longer add members. Format 2.
    RotateJoinSecret {
        secret: String,
        #[serde(default)]
        manager: bool,
    },
    /// Admin (`hoist cluster ca rotate`): a new root replaces the cluster's, with the old one
    /// as `previous_pem` and the new one cross-signed by it; both are trusted until
    /// [`Command::FinishCaRotation`]. Refused while a rotation is going on. Format 2.
    RotateClusterCa(Box<ClusterCa>),
    /// The leader, once every member and live node holds a certificate under the root with
    /// `digest`: the previous root is no longer trusted. Format 2.
    FinishCaRotation {
        digest: String,
    },
}

/// `hoist stack deploy`: the stack's services, named `STACK_SERVICE`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackDeploy {
    pub name: String,
    pub services: Vec<ServiceSpec>,
    /// Remove the stack's services that `services` no longer names.
    #[serde(default)]
    pub prune: bool,
}

impl Command {
    /// The oldest format that can carry this command: a member that reads only older ones could
    /// not apply it as the others do.
    pub fn format(&self) -> u32 {
        match self {
            Command::ApplyService(spec) => spec.format(),
            Command::RegisterNode(node) => node.format(),
            Command::Batch(commands) => commands.iter().map(Command::format).max().unwrap_or(0),
            Command::SetClusterFormat { .. } | Command::SetNodeVersion { .. } => 1,
            Command::SetClusterNetwork(_)
            | Command::DeployStack(_)
            | Command::SetReleaseState { .. }
            | Command::RollbackStack { .. }
            | Command::RemoveStack { .. }
            | Command::Autoscale(_)
            | Command::CreateHookToken(_)
            | Command::RemoveHookToken { .. }
            | Command::CreateOperatorToken(_)
            | Command::RemoveOperatorToken { .. }
            | Command::TouchOperatorTokens { .. }
            | Command::PutFile(_)
            | Command::RemoveFile { .. }
            | Command::SetMemberKey { .. }
            | Command::SealDataKey { .. }
            | Command::SetAutolock { .. }
            | Command::RemoveMemberKeys { .. }
            | Command::SetClusterCa(_)
            | Command::RotateJoinSecret { .. }
            | Command::RotateClusterCa(_)
            | Command::FinishCaRotation { .. } => 2,
            Command::Audited { command, .. } => command.format().max(2),
            Command::Plan(p) if !p.drain.is_empty() => 2,
            _ => 0,
        }
    }

    /// The cluster format the cluster must be at for this command to be proposed: its
    /// [`format`](Command::format), except for the command that raises the cluster format itself
    /// (proposed only once every member reads the new one).
    pub fn needs_cluster_format(&self) -> u32 {
        match self {
            Command::SetClusterFormat { .. } => 0,
            Command::Batch(commands) => commands
                .iter()
                .map(Command::needs_cluster_format)
                .max()
                .unwrap_or(0),
            Command::Audited { command, .. } => command.needs_cluster_format().max(2),
            c => c.format(),
        }
    }
}

/// What the leader's scheduler and reconciler decided, from a snapshot of the state. `apply`
/// re-checks every placement against the state it is applied to (capacity, host ports,
/// max per node, node state, service version) and drops those that no longer fit, so a stale
/// plan can never overcommit a node.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Plan {
    /// New tasks (desired `Running`, state `Pending`).
    pub place: Vec<Task>,
    /// Tasks to stop (desired `Shutdown`), with the reason.
    pub stop: Vec<(String, String)>,
    /// Terminal tasks to move into their slot's history.
    pub remove: Vec<String>,
    /// Rolling-update progress, by service; applied only if the service is at `rollout.version`
    /// or `rollout.from_version`.
    pub rollouts: Vec<(String, Rollout)>,
    /// Tasks to take out of their service's addresses before they stop, with the reason: marked
    /// draining at this entry's index (the leader stops them once every node applied it). Format 2.
    #[serde(default)]
    pub drain: Vec<(String, String)>,
}

/// What applying a [`Plan`] did.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PlanResult {
    pub placed: u64,
    /// Placements refused by the re-check, with the reason.
    pub refused: Vec<(String, String)>,
    pub stopped: u64,
}

/// The kind of a refused command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    NotFound,
    Invalid,
    Conflict,
}

/// Why `apply` refused a command; the state is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandError {
    pub code: ErrorCode,
    pub message: String,
    /// The dotted path of the field at fault, if any.
    pub field: Option<String>,
}

/// What applying a command answered. Append new variants at the end only.
// A short-lived answer (one per applied command, moved once to its waiter): boxing the node
// would cost an allocation per answer for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    Service(ServiceChange),
    Deleted(Service),
    Node(Node),
    /// How many tasks a task command touched.
    Tasks(u64),
    /// The number of services after a restore.
    Restored(u64),
    Ok,
    Error(CommandError),
    /// One answer per command of a [`Command::Batch`], in order.
    Batch(Vec<Response>),
    Plan(PlanResult),
    /// A stack deploy or removal. Format 2.
    Stack(Box<StackChange>),
    /// An autoscaling decision applied (or seen before). Format 2.
    Autoscale(Box<AutoscaleOutcome>),
    /// A secret or config after a write or removal, without its content. Format 2.
    File(Box<crate::files::StoredFile>),
}
