//! Node commands: register (or re-register), liveness, operator availability and labels.

use super::{invalid, not_found, State};
use hoist_proto::cluster::{Node, NodeAvailability, NodeStatus};
use hoist_proto::raft::{CommandError, Response};
use std::collections::BTreeMap;

impl State {
    /// Adds a node, or refreshes a known one (address, capacity, labels from the agent; it is
    /// ready again). Operator availability and labels the agent does not set are kept.
    pub(super) fn register_node(
        &mut self,
        node: &Node,
        now: u64,
    ) -> Result<Response, CommandError> {
        if node.id.is_empty() {
            return Err(invalid("id", "must not be empty"));
        }
        let mut new = node.clone();
        new.status = NodeStatus::Ready;
        new.updated_ms = now;
        match self.nodes.get(&node.id) {
            Some(old) => {
                new.availability = old.availability;
                new.registered_ms = old.registered_ms;
                let mut labels = old.labels.clone();
                labels.extend(node.labels.clone());
                new.labels = labels;
            }
            None => new.registered_ms = now,
        }
        self.nodes.insert(new.id.clone(), new.clone());
        self.touch_node(&new.id);
        Ok(Response::Node(new))
    }

    fn node_mut(&mut self, id: &str) -> Result<&mut Node, CommandError> {
        self.nodes
            .get_mut(id)
            .ok_or_else(|| not_found(format!("node {id:?} not found")))
    }

    pub(super) fn set_node_status(
        &mut self,
        id: &str,
        status: NodeStatus,
        now: u64,
    ) -> Result<Response, CommandError> {
        let node = self.node_mut(id)?;
        if node.status != status {
            node.status = status;
            node.updated_ms = now;
        }
        Ok(Response::Node(node.clone()))
    }

    pub(super) fn set_node_availability(
        &mut self,
        id: &str,
        availability: NodeAvailability,
        now: u64,
    ) -> Result<Response, CommandError> {
        let node = self.node_mut(id)?;
        if node.availability != availability {
            node.availability = availability;
            node.updated_ms = now;
        }
        Ok(Response::Node(node.clone()))
    }

    pub(super) fn set_node_labels(
        &mut self,
        id: &str,
        set: &BTreeMap<String, String>,
        remove: &[String],
        now: u64,
    ) -> Result<Response, CommandError> {
        if let Some(k) = set
            .keys()
            .chain(remove)
            .find(|k| k.is_empty() || k.len() > 253 || k.contains(['=', ' ']))
        {
            return Err(invalid("labels", format!("{k:?} is not a label key")));
        }
        let node = self.node_mut(id)?;
        for k in remove {
            node.labels.remove(k);
        }
        node.labels.extend(set.clone());
        node.updated_ms = now;
        Ok(Response::Node(node.clone()))
    }

    pub(super) fn remove_node(&mut self, id: &str) -> Result<Response, CommandError> {
        let node = self
            .nodes
            .remove(id)
            .ok_or_else(|| not_found(format!("node {id:?} not found")))?;
        Ok(Response::Node(node))
    }
}
