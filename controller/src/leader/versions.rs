//! Pure decisions about versions: when the cluster may move to a newer format, and which nodes'
//! recorded agent versions are out of date.
//!
//! The cluster format is what every member can read. The leader raises it to the newest format
//! that all members of the current membership (voters and learners) have told they read; a
//! member it has not heard from holds it back. It is never lowered: a member too old for it is
//! refused when it asks to join.

use hoist_proto::cluster::Node;
use hoist_proto::format::{PeerVersion, CURRENT};
use hoist_proto::raft::Command;

/// The format to move the cluster to, if it can move: the newest that every member reads.
pub fn format_to_raise(cluster_format: u32, members: &[Option<PeerVersion>]) -> Option<u32> {
    let common = members
        .iter()
        .map(|m| m.as_ref().map(|v| v.format.min(CURRENT)))
        .min()??;
    (common > cluster_format).then_some(common)
}

/// `SetNodeVersion` commands for nodes whose agent told another version than the state holds.
/// Only once the cluster is at format 1 (the command's own), and only for a format the agent
/// shares with this build.
pub fn node_version_updates<'a>(
    cluster_format: u32,
    nodes: impl IntoIterator<Item = &'a Node>,
    told: impl Fn(&str) -> Option<PeerVersion>,
) -> Vec<Command> {
    if cluster_format < 1 {
        return Vec::new();
    }
    nodes
        .into_iter()
        .filter_map(|n| {
            let v = told(&n.id)?;
            let format = v.common_format();
            (n.agent_version != v.version || n.agent_format != format).then(|| {
                Command::SetNodeVersion {
                    id: n.id.clone(),
                    agent_version: v.version,
                    agent_format: format,
                }
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hoist_proto::cluster::{NodeAvailability, NodeResources, NodeStatus};

    fn v(format: u32) -> Option<PeerVersion> {
        Some(PeerVersion {
            version: format!("0.{}.0", format + 1),
            format,
            oldest: format.saturating_sub(1),
        })
    }

    #[test]
    fn the_cluster_moves_only_when_every_member_reads_the_newer_format() {
        assert_eq!(format_to_raise(0, &[v(1), v(1), v(1)]), Some(1));
        assert_eq!(format_to_raise(0, &[v(1), v(0), v(1)]), None);
        assert_eq!(format_to_raise(0, &[v(1), None, v(1)]), None, "unheard of");
        assert_eq!(format_to_raise(1, &[v(1), v(1)]), None, "already there");
        assert_eq!(format_to_raise(1, &[v(1), v(0)]), None, "never lowered");
        assert_eq!(
            format_to_raise(0, &[v(CURRENT + 3)]),
            Some(CURRENT),
            "capped"
        );
        assert_eq!(format_to_raise(0, &[]), None);
    }

    fn node(id: &str, version: &str, format: u32) -> Node {
        Node {
            id: id.into(),
            hostname: id.into(),
            address: "10.0.0.1".into(),
            labels: Default::default(),
            agent_labels: Default::default(),
            capacity: NodeResources::default(),
            status: NodeStatus::Ready,
            availability: NodeAvailability::Active,
            agent_version: version.into(),
            agent_format: format,
            registered_ms: 0,
            updated_ms: 0,
            subnet: None,
            wg_public_key: None,
            wg_endpoint: None,
            overlay_generation: 0,
            overlay_problem: None,
            credential_sha256: String::new(),
            cert_key_sha256: String::new(),
        }
    }

    #[test]
    fn node_versions_are_recorded_once_the_cluster_can_say_them() {
        let nodes = [
            node("a", "0.1.0", 0),
            node("b", "0.2.0", 1),
            node("c", "0.1.0", 0),
        ];
        let told = |id: &str| match id {
            "a" => v(1),
            "b" => v(1).map(|mut x| {
                x.version = "0.2.0".into();
                x
            }),
            _ => None,
        };
        assert!(node_version_updates(0, &nodes, told).is_empty());
        let cmds = node_version_updates(1, &nodes, told);
        assert_eq!(
            cmds,
            vec![Command::SetNodeVersion {
                id: "a".into(),
                agent_version: "0.2.0".into(),
                agent_format: 1,
            }]
        );
    }
}
