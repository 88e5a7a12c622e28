//! Node commands: register (or re-register), liveness, operator availability and labels.

use super::{invalid, not_found, State};
use hoist_proto::cluster::{Node, NodeAvailability, NodeStatus};
use hoist_proto::raft::{CommandError, Response};
use std::collections::BTreeMap;

impl State {
    /// Adds a node, or refreshes a known one (address, capacity, labels from the agent; it is
    /// ready again). Operator availability is kept, and so are the operator's label edits except
    /// where the agent's own declaration changed ([`merge_labels`]).
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
        new.agent_labels = node.labels.clone();
        let old = self.nodes.get(&node.id).cloned();
        match &old {
            Some(old) => {
                new.availability = old.availability;
                new.registered_ms = old.registered_ms;
                new.labels = merge_labels(&old.labels, &old.agent_labels, &node.labels);
            }
            None => new.registered_ms = now,
        }
        self.merge_overlay(old.as_ref(), &mut new);
        let overlay_changed = State::overlay_changed(old.as_ref(), &new);
        self.nodes.insert(new.id.clone(), new.clone());
        self.touch_node(&new.id);
        if overlay_changed {
            self.overlay_index = self.index;
        }
        self.assign_subnet(&new.id);
        Ok(Response::Node(self.nodes[&new.id].clone()))
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

    pub(super) fn set_node_version(
        &mut self,
        id: &str,
        version: &str,
        format: u32,
        now: u64,
    ) -> Result<Response, CommandError> {
        let node = self.node_mut(id)?;
        if node.agent_version != version || node.agent_format != format {
            node.agent_version = version.to_string();
            node.agent_format = format;
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
        // Its agent's poll, if one is open, wakes to learn it is no longer registered.
        self.touched.nodes.push(id.to_string());
        if node.subnet.is_some() || node.wg_public_key.is_some() {
            self.overlay_index = self.index;
        }
        if node.subnet.is_some() {
            // Its subnet is free again: the first node still waiting for one gets it.
            let waiting = self
                .nodes
                .values()
                .find(|n| n.subnet.is_none() && n.overlay_problem.is_some())
                .map(|n| n.id.clone());
            if let Some(id) = waiting {
                self.assign_subnet(&id);
            }
        }
        Ok(Response::Node(node))
    }
}

/// A node's labels after its agent registers again: a three-way merge of the labels as they are
/// (`current`, maybe edited with `hoist node label`), what the agent declared last time (`before`)
/// and what it declares now (`declared`). A key whose declaration changed takes the agent's new
/// value; a key the agent no longer declares goes, unless the operator had changed it; the
/// operator's edits of keys the agent left alone stay (a removed label does not come back).
pub fn merge_labels(
    current: &BTreeMap<String, String>,
    before: &BTreeMap<String, String>,
    declared: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut out = current.clone();
    for (k, v) in declared {
        if before.get(k) != Some(v) {
            out.insert(k.clone(), v.clone());
        }
    }
    for (k, v) in before {
        if !declared.contains_key(k) && current.get(k) == Some(v) {
            out.remove(k);
        }
    }
    out
}
