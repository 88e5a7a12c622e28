//! The labels of a container's series: `container` (its name), and for a replica of a cluster
//! service `service`, `task` and `slot` from the labels the worker gave it
//! (`worker::container`), empty for a plain `hoist run` container; `node` is this agent's node
//! id, empty for a standalone agent. Pure.

use crate::worker::container::{restarts_ms, SERVICE, SLOT, TASK};
use prometheus_client::encoding::EncodeLabelSet;
use std::collections::BTreeMap;

/// See the module doc.
#[derive(Debug, Clone, Default, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ContainerLabels {
    pub container: String,
    pub service: String,
    pub task: String,
    pub slot: String,
    pub node: String,
}

impl ContainerLabels {
    /// The labels of container `name` with the container labels `labels`, on `node`.
    pub fn of(name: &str, labels: &BTreeMap<String, String>, node: &str) -> ContainerLabels {
        let get = |k: &str| labels.get(k).cloned().unwrap_or_default();
        ContainerLabels {
            container: name.to_string(),
            service: get(SERVICE),
            task: get(TASK),
            slot: get(SLOT),
            node: node.to_string(),
        }
    }
}

/// How often the agent restarted the task a container runs (its `hoist.restarts` label keeps
/// the last 100 times): 0 for a plain container.
pub fn restarts(labels: &BTreeMap<String, String>) -> u64 {
    restarts_ms(labels).len() as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::worker::container::RESTARTS;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_replica_has_its_service_task_and_slot() {
        let l = labels(&[
            (SERVICE, "web"),
            (TASK, "0123456789abcdef"),
            (SLOT, "3"),
            ("team", "a"),
            (RESTARTS, "1700000000000,1700000001000"),
        ]);
        assert_eq!(
            ContainerLabels::of("web.3.0123456789ab", &l, "node-1"),
            ContainerLabels {
                container: "web.3.0123456789ab".into(),
                service: "web".into(),
                task: "0123456789abcdef".into(),
                slot: "3".into(),
                node: "node-1".into(),
            }
        );
        assert_eq!(restarts(&l), 2);
    }

    #[test]
    fn a_plain_container_has_only_its_name_and_node() {
        let l = labels(&[("team", "a")]);
        assert_eq!(
            ContainerLabels::of("db", &l, ""),
            ContainerLabels {
                container: "db".into(),
                ..ContainerLabels::default()
            }
        );
        assert_eq!(restarts(&l), 0);
    }
}
