//! Node and task commands: the placeholders the scheduler and node-liveness loops build on. A task
//! plan is re-checked here against the current state before it takes effect.

use super::{invalid, not_found, State};
use hoist_proto::cluster::{Node, NodeStatus, Task};
use hoist_proto::raft::{CommandError, ErrorCode, Response};

impl State {
    pub(super) fn register_node(
        &mut self,
        node: &Node,
        now: u64,
    ) -> Result<Response, CommandError> {
        if node.id.is_empty() {
            return Err(invalid("id", "must not be empty"));
        }
        let mut node = node.clone();
        node.updated_ms = now;
        self.nodes.insert(node.id.clone(), node.clone());
        Ok(Response::Node(node))
    }

    pub(super) fn set_node_status(
        &mut self,
        id: &str,
        status: NodeStatus,
        now: u64,
    ) -> Result<Response, CommandError> {
        let node = self
            .nodes
            .get_mut(id)
            .ok_or_else(|| not_found(format!("node {id:?} not found")))?;
        if node.status != status {
            node.status = status;
            node.updated_ms = now;
        }
        Ok(Response::Node(node.clone()))
    }

    pub(super) fn remove_node(&mut self, id: &str) -> Result<Response, CommandError> {
        let node = self
            .nodes
            .remove(id)
            .ok_or_else(|| not_found(format!("node {id:?} not found")))?;
        Ok(Response::Node(node))
    }

    /// Takes a plan only if every task names an existing service at its current version and a
    /// ready node; otherwise none of it.
    pub(super) fn put_tasks(&mut self, tasks: &[Task], now: u64) -> Result<Response, CommandError> {
        for t in tasks {
            let Some(record) = self.services.get(&t.service) else {
                return Err(conflict(format!(
                    "task {:?}: service {:?} no longer exists",
                    t.id, t.service
                )));
            };
            if record.current().version != t.service_version {
                return Err(conflict(format!(
                    "task {:?}: service {:?} is at version {}, the plan was for {}",
                    t.id,
                    t.service,
                    record.current().version,
                    t.service_version
                )));
            }
            match self.nodes.get(&t.node) {
                Some(n) if n.status == NodeStatus::Ready => {}
                _ => {
                    return Err(conflict(format!(
                        "task {:?}: node {:?} is not ready",
                        t.id, t.node
                    )))
                }
            }
        }
        for t in tasks {
            let mut t = t.clone();
            t.updated_ms = now;
            self.tasks.insert(t.id.clone(), t);
        }
        Ok(Response::Tasks(tasks.len() as u64))
    }

    pub(super) fn remove_tasks(&mut self, ids: &[String]) -> Response {
        let removed = ids
            .iter()
            .filter(|id| self.tasks.remove(id.as_str()).is_some())
            .count();
        Response::Tasks(removed as u64)
    }
}

fn conflict(message: String) -> CommandError {
    CommandError {
        code: ErrorCode::Conflict,
        message,
        field: None,
    }
}
