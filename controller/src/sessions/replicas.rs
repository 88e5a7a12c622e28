//! Which replicas a session reaches: every running replica of a service for its logs, one for an
//! exec (the slot asked for, or the lowest running one). Pure, over the replicated tasks and nodes.

use crate::state::Map;
use hoist_proto::cluster::{Node, NodeStatus, Task, TaskState};

/// A running replica and where it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replica {
    pub slot: u64,
    pub node: String,
    pub task: String,
    /// The container the agent last reported for the task (a restart makes a new one).
    pub container: Option<String>,
    /// Its node is marked down: it cannot be reached now.
    pub node_down: bool,
    /// Leaving the service's addresses before it stops (a rolling update replaced it).
    pub draining: bool,
    pub version: u64,
}

impl Replica {
    /// `NAME.SLOT@NODE`, as the merged logs prefix its lines.
    pub fn label(&self, service: &str) -> String {
        format!("{service}.{}@{}", self.slot, self.node)
    }
}

/// The replicas of `service` that run: wanted and reported running, by slot, the one meant to
/// stay first (not draining, newest version), then by node.
pub fn running<'a>(
    tasks: impl IntoIterator<Item = &'a Task>,
    nodes: &Map<String, Node>,
    service: &str,
) -> Vec<Replica> {
    let mut out: Vec<Replica> = tasks
        .into_iter()
        .filter(|t| {
            t.service == service
                && t.desired == TaskState::Running
                && t.state == TaskState::Running
                && !t.node.is_empty()
        })
        .map(|t| Replica {
            slot: t.slot,
            node: t.node.to_string(),
            task: t.id.to_string(),
            container: t.container_id.as_deref().map(str::to_string),
            node_down: nodes
                .get(t.node.as_str())
                .is_none_or(|n| n.status == NodeStatus::Down),
            draining: t.drain_index.is_some(),
            version: t.service_version,
        })
        .collect();
    out.sort_by(|a, b| {
        (a.slot, a.draining, std::cmp::Reverse(a.version), &a.node).cmp(&(
            b.slot,
            b.draining,
            std::cmp::Reverse(b.version),
            &b.node,
        ))
    });
    out
}

/// Why an exec has no replica to run in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("service {service} has no running replica")]
    NoneRunning { service: String },
    #[error("service {service} has no running replica in slot {slot} (running: {running})")]
    NoSuchSlot {
        service: String,
        slot: u64,
        running: String,
    },
    #[error("replica {label} runs on node {node}, which is down")]
    NodeDown { label: String, node: String },
}

/// The replica an exec runs in: the one of `slot`, else the lowest running slot whose node is
/// up.
pub fn exec_target(
    service: &str,
    replicas: &[Replica],
    slot: Option<u64>,
) -> Result<Replica, TargetError> {
    let candidates: Vec<&Replica> = match slot {
        Some(s) => replicas.iter().filter(|r| r.slot == s).collect(),
        None => replicas.iter().collect(),
    };
    if let Some(up) = candidates.iter().find(|r| !r.node_down) {
        return Ok((*up).clone());
    }
    match (candidates.first(), slot) {
        (Some(down), _) => Err(TargetError::NodeDown {
            label: down.label(service),
            node: down.node.clone(),
        }),
        (None, None) => Err(TargetError::NoneRunning {
            service: service.to_string(),
        }),
        (None, Some(slot)) => {
            let mut slots: Vec<String> = replicas.iter().map(|r| r.slot.to_string()).collect();
            slots.dedup();
            Err(TargetError::NoSuchSlot {
                service: service.to_string(),
                slot,
                running: if slots.is_empty() {
                    "none".into()
                } else {
                    format!("slots {}", slots.join(", "))
                },
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hoist_proto::format::samples;

    fn task(id: &str, slot: u64, node: &str, state: TaskState) -> Task {
        Task {
            id: id.into(),
            service: "web".into(),
            slot,
            node: node.into(),
            desired: TaskState::Running,
            state,
            drain_index: None,
            ..samples::task()
        }
    }

    fn nodes(down: &[&str]) -> Map<String, Node> {
        ["n1", "n2"]
            .iter()
            .map(|id| {
                let mut n = samples::node(2);
                n.id = id.to_string();
                n.status = if down.contains(id) {
                    NodeStatus::Down
                } else {
                    NodeStatus::Ready
                };
                (id.to_string(), n)
            })
            .collect()
    }

    #[test]
    fn running_replicas_in_slot_order() {
        let mut other = task("x", 0, "n1", TaskState::Running);
        other.service = "api".into();
        let mut stopping = task("s", 1, "n1", TaskState::Running);
        stopping.desired = TaskState::Shutdown;
        let tasks = [
            task("c", 2, "n2", TaskState::Running),
            task("a", 0, "n1", TaskState::Running),
            task("p", 1, "n2", TaskState::Pending),
            other,
            stopping,
        ];
        let r = running(&tasks, &nodes(&["n2"]), "web");
        let got: Vec<(&str, u64, bool)> = r
            .iter()
            .map(|r| (r.task.as_str(), r.slot, r.node_down))
            .collect();
        assert_eq!(got, [("a", 0, false), ("c", 2, true)]);
        assert_eq!(r[1].label("web"), "web.2@n2");
    }

    #[test]
    fn a_slot_s_lasting_replica_comes_first() {
        let mut old = task("old", 0, "n1", TaskState::Running);
        old.service_version = 1;
        old.drain_index = Some(9);
        let mut new = task("new", 0, "n2", TaskState::Running);
        new.service_version = 2;
        let r = running(&[old, new], &nodes(&[]), "web");
        assert_eq!(r[0].task, "new");
        assert_eq!(exec_target("web", &r, Some(0)).unwrap().task, "new");
    }

    #[test]
    fn exec_targets() {
        let tasks = [
            task("a", 0, "n2", TaskState::Running),
            task("b", 1, "n1", TaskState::Running),
            task("c", 2, "n1", TaskState::Running),
        ];
        let r = running(&tasks, &nodes(&["n2"]), "web");
        assert_eq!(
            exec_target("web", &r, None).unwrap().task,
            "b",
            "the first whose node is up"
        );
        assert_eq!(exec_target("web", &r, Some(2)).unwrap().task, "c");
        assert_eq!(
            exec_target("web", &r, Some(0)).unwrap_err().to_string(),
            "replica web.0@n2 runs on node n2, which is down"
        );
        assert_eq!(
            exec_target("web", &r, Some(7)).unwrap_err().to_string(),
            "service web has no running replica in slot 7 (running: slots 0, 1, 2)"
        );
        assert_eq!(
            exec_target("web", &[], None).unwrap_err().to_string(),
            "service web has no running replica"
        );
        assert_eq!(
            exec_target("web", &[], Some(1)).unwrap_err().to_string(),
            "service web has no running replica in slot 1 (running: none)"
        );
    }
}
