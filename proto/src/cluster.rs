//! The controller's API bodies: services with their version history, nodes, tasks, cluster status
//! and errors. JSON over HTTP; the replicated ones are also stored with postcard, so they stay plain.

use crate::service::{FieldError, ServiceSpec};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A service as it is now: its current spec and version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    pub name: String,
    /// Starts at 1; grows by one for every change of the spec.
    pub version: u64,
    pub spec: ServiceSpec,
    /// Leader time of the first version, milliseconds since the Unix epoch.
    pub created_ms: u64,
    /// Leader time of the current version.
    pub updated_ms: u64,
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
}

/// One entry of a service's version history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceVersion {
    pub version: u64,
    pub origin: VersionOrigin,
    pub created_ms: u64,
    pub spec: ServiceSpec,
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

/// Whether a node takes work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeStatus {
    Ready,
    Down,
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
    /// Where the agent's API answers, `HOST:PORT`.
    pub address: String,
    pub labels: BTreeMap<String, String>,
    pub capacity: NodeResources,
    pub status: NodeStatus,
    /// Leader time of the last status change.
    pub updated_ms: u64,
}

/// The lifecycle of a task (one replica of one service version on one node).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskState {
    Pending,
    Running,
    Shutdown,
    Failed,
}

/// A replica placed by the scheduler.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    pub id: String,
    pub service: String,
    pub service_version: u64,
    /// Replica slot, 0-based; stable across updates.
    pub slot: u64,
    pub node: String,
    pub desired: TaskState,
    pub state: TaskState,
    pub updated_ms: u64,
}

/// A controller in the Raft group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub id: u64,
    /// Where it serves Raft and the API, `HOST:PORT`.
    pub address: String,
    /// A voter counts for quorum; a learner only receives the log.
    pub voter: bool,
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
            spec: ServiceSpec::new("a", "b"),
        };
        let j = serde_json::to_value(&v).unwrap();
        assert_eq!(j["origin"], serde_json::json!({"rollback": {"from": 1}}));
        assert_eq!(serde_json::to_value(VersionOrigin::Apply).unwrap(), "apply");
        let back: ServiceVersion = serde_json::from_value(j).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn postcard_golden_bytes() {
        let t = Task {
            id: "t1".into(),
            service: "web".into(),
            service_version: 3,
            slot: 0,
            node: "n1".into(),
            desired: TaskState::Running,
            state: TaskState::Pending,
            updated_ms: 300,
        };
        let b = postcard::to_stdvec(&t).unwrap();
        assert_eq!(b, b"\x02t1\x03web\x03\x00\x02n1\x01\x00\xac\x02");
        assert_eq!(postcard::from_bytes::<Task>(&b).unwrap(), t);
        let o = postcard::to_stdvec(&VersionOrigin::Rollback { from: 7 }).unwrap();
        assert_eq!(o, [2, 7]);
    }
}
