//! The replicated cluster state and its pure, deterministic `apply`.
//!
//! Every controller applies the same committed commands in the same order and must reach the same
//! state, so nothing here reads a clock, a random source or the disk: time comes stamped on the
//! [`Request`] by the leader. Raft, HTTP and storage live elsewhere and only call [`State::apply`].

mod image;
mod nodes;
mod services;
mod tasks;
#[cfg(test)]
pub(crate) mod tests;

pub use image::{decode_image, encode_image, ImageError};
pub use services::same_run_spec;

use hoist_proto::cluster::{Node, Rollout, Service, ServiceVersion, Task};
use hoist_proto::raft::{Command, CommandError, ErrorCode, Request, Response};
use hoist_proto::service::ServiceSpec;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, VecDeque};

/// How many versions of a service are kept; older ones are dropped from the history.
pub const HISTORY_LIMIT: usize = 32;
/// How many ended tasks are kept per replica slot.
pub const SLOT_HISTORY_LIMIT: usize = 5;

/// The cluster's identity and join secret, made once (see `hoist_proto::node::parse_join_token`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterIdentity {
    pub cluster_id: String,
    pub secret: String,
}

/// A service's versions, oldest first; the last one is current.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceRecord {
    pub created_ms: u64,
    /// A deque: dropping the oldest version must not shift the others (postcard encodes it as a Vec).
    pub history: VecDeque<ServiceVersion>,
}

impl ServiceRecord {
    /// The current version (a record always holds at least one).
    pub fn current(&self) -> &ServiceVersion {
        self.history
            .back()
            .expect("a service record holds at least one version")
    }

    /// The service as the API shows it.
    pub fn view(&self, name: &str) -> Service {
        let cur = self.current();
        Service {
            name: name.to_string(),
            version: cur.version,
            spec: cur.spec.clone(),
            created_ms: self.created_ms,
            updated_ms: cur.created_ms,
        }
    }
}

/// Everything the controllers agree on. Plain data, `BTreeMap`s for a deterministic encoding.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub services: BTreeMap<String, ServiceRecord>,
    pub nodes: BTreeMap<String, Node>,
    pub tasks: BTreeMap<String, Task>,
    pub identity: Option<ClusterIdentity>,
    /// Rolling updates, by service.
    pub rollouts: BTreeMap<String, Rollout>,
    /// Ended tasks per service and slot, newest last, at most [`SLOT_HISTORY_LIMIT`] each.
    pub slot_history: BTreeMap<String, BTreeMap<u64, VecDeque<Task>>>,
    /// Raft index of the last change to each node's assignments (for the agents' long poll).
    pub node_index: BTreeMap<String, u64>,
    /// Raft index of the last change to each service's endpoints (for the registry's watch).
    pub endpoints_index: BTreeMap<String, u64>,
    /// Raft index of the entry being applied; set by the state machine before [`State::apply`].
    /// Not part of the state's encoding or hash: a refused command must change nothing.
    #[serde(skip)]
    pub index: u64,
}

impl State {
    /// Applies one committed command. Refused commands leave the state unchanged and answer
    /// [`Response::Error`]; nothing here panics on any input.
    pub fn apply(&mut self, req: &Request) -> Response {
        let now = req.time_ms;
        let result = match &req.command {
            Command::ApplyService(spec) => self.apply_service(spec, now),
            Command::DeleteService { name } => self.delete_service(name),
            Command::ScaleService { name, replicas } => self.scale_service(name, *replicas, now),
            Command::RollbackService { name, version } => {
                self.rollback_service(name, *version, now)
            }
            Command::RegisterNode(node) => self.register_node(node, now),
            Command::SetNodeStatus { id, status } => self.set_node_status(id, *status, now),
            Command::RemoveNode { id } => self.remove_node(id),
            Command::PutTasks(tasks) => self.put_tasks(tasks, now),
            Command::RemoveTasks(ids) => Ok(self.remove_tasks(ids)),
            Command::Restore(bytes) => self.restore(bytes),
            Command::Noop => Ok(Response::Ok),
            Command::Plan(plan) => Ok(Response::Plan(self.apply_plan(plan, now))),
            Command::SetNodeAvailability { id, availability } => {
                self.set_node_availability(id, *availability, now)
            }
            Command::SetNodeLabels { id, set, remove } => {
                self.set_node_labels(id, set, remove, now)
            }
            Command::ReportStatus { node, tasks } => Ok(self.report_status(node, tasks, now)),
            Command::InitCluster { cluster_id, secret } => {
                if self.identity.is_none() {
                    self.identity = Some(ClusterIdentity {
                        cluster_id: cluster_id.clone(),
                        secret: secret.clone(),
                    });
                }
                Ok(Response::Ok)
            }
            Command::Batch(commands) => Ok(Response::Batch(
                commands
                    .iter()
                    .map(|c| self.apply_one_of_batch(c, now))
                    .collect(),
            )),
        };
        result.unwrap_or_else(Response::Error)
    }

    /// Applies one command of a batch; nested batches are refused.
    fn apply_one_of_batch(&mut self, command: &Command, now: u64) -> Response {
        if matches!(command, Command::Batch(_)) {
            return Response::Error(CommandError {
                code: ErrorCode::Invalid,
                message: "a batch cannot contain a batch".into(),
                field: None,
            });
        }
        self.apply(&Request {
            time_ms: now,
            command: command.clone(),
        })
    }

    /// Applies a command committed at Raft log `index`.
    pub fn apply_at(&mut self, index: u64, req: &Request) -> Response {
        self.index = index;
        self.apply(req)
    }

    /// The spec a task was made from: its version if still kept, else the current one.
    pub fn spec_of(&self, service: &str, version: u64) -> Option<&ServiceSpec> {
        let r = self.services.get(service)?;
        Some(
            &r.history
                .iter()
                .rev()
                .find(|v| v.version == version)
                .unwrap_or_else(|| r.current())
                .spec,
        )
    }

    /// Marks `node`'s assignments as changed at this index.
    pub(crate) fn touch_node(&mut self, node: &str) {
        let index = self.index;
        match self.node_index.get_mut(node) {
            Some(i) => *i = index,
            None => {
                self.node_index.insert(node.to_string(), index);
            }
        }
    }

    /// Marks `service`'s endpoints as changed at this index.
    pub(crate) fn touch_endpoints(&mut self, service: &str) {
        let index = self.index;
        match self.endpoints_index.get_mut(service) {
            Some(i) => *i = index,
            None => {
                self.endpoints_index.insert(service.to_string(), index);
            }
        }
    }

    /// A service by name.
    pub fn service(&self, name: &str) -> Option<Service> {
        self.services.get(name).map(|r| r.view(name))
    }

    /// All services, by name.
    pub fn list_services(&self) -> Vec<Service> {
        self.services.iter().map(|(n, r)| r.view(n)).collect()
    }

    /// A service's kept versions, oldest first.
    pub fn history(&self, name: &str) -> Option<Vec<ServiceVersion>> {
        self.services
            .get(name)
            .map(|r| r.history.iter().cloned().collect())
    }

    /// SHA-256 of the state's canonical encoding, hex: equal states have equal hashes.
    pub fn hash(&self) -> String {
        let bytes = postcard::to_stdvec(self).expect("state encodes");
        hex::encode(Sha256::digest(bytes))
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<Response, CommandError> {
        let state = decode_image(bytes).map_err(|e| CommandError {
            code: ErrorCode::Invalid,
            message: format!("snapshot: {e}"),
            field: None,
        })?;
        *self = state;
        Ok(Response::Restored(self.services.len() as u64))
    }
}

/// A refusal naming the missing thing.
pub(crate) fn not_found(message: String) -> CommandError {
    CommandError {
        code: ErrorCode::NotFound,
        message,
        field: None,
    }
}

/// A refusal naming the field at fault.
pub(crate) fn invalid(field: &str, message: impl std::fmt::Display) -> CommandError {
    CommandError {
        code: ErrorCode::Invalid,
        message: format!("{field}: {message}"),
        field: Some(field.to_string()),
    }
}
