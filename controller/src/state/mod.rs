//! The replicated cluster state and its pure, deterministic `apply`.
//!
//! Every controller applies the same committed commands in the same order and must reach the same
//! state, so nothing here reads a clock, a random source or the disk: time comes stamped on the
//! [`Request`] by the leader. Raft, HTTP and storage live elsewhere and only call [`State::apply`].

mod image;
mod nodes;
mod services;
#[cfg(test)]
mod tests;

pub use image::{decode_image, encode_image, ImageError};

use hoist_proto::cluster::{Node, Service, ServiceVersion, Task};
use hoist_proto::raft::{Command, CommandError, ErrorCode, Request, Response};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, VecDeque};

/// How many versions of a service are kept; older ones are dropped from the history.
pub const HISTORY_LIMIT: usize = 32;

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
