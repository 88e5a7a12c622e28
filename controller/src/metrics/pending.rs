//! Why a replica slot is pending, as a metric label: the scheduler explains an unplaced slot in
//! words per node (`n1: needs 512 MiB, 256 MiB free; n2: drained`, see
//! [`crate::scheduler::explain`]) for `hoist service ps`; a label must come from a small fixed
//! set, so the words are mapped back to the kinds of [`crate::scheduler::Misfit`]. The tests
//! build every kind through `explain` itself, so a reworded message cannot slip past them.

use std::collections::BTreeSet;

/// The kinds of reasons, comma-joined and sorted when nodes differ (`drained,memory`): the
/// label's value. `no_nodes` when the cluster has none, `other` for words not known here.
pub fn reason_label(explanation: &str) -> String {
    if explanation.trim() == "no nodes" {
        return "no_nodes".into();
    }
    let kinds: BTreeSet<&'static str> = explanation
        .split("; ")
        .filter(|part| !(part.starts_with("and ") && part.ends_with(" more nodes")))
        .map(|part| kind(part.split_once(": ").map_or(part, |(_, why)| why)))
        .collect();
    if kinds.is_empty() {
        return "other".into();
    }
    kinds.into_iter().collect::<Vec<_>>().join(",")
}

/// One node's misfit in words → its kind.
fn kind(why: &str) -> &'static str {
    match why {
        "down" => "down",
        "paused" => "paused",
        "drained" => "drained",
        w if w.starts_with("constraint ") => "constraint",
        w if w.starts_with("already runs max_per_node") => "max_per_node",
        w if w.starts_with("host port ") => "port",
        w if w.starts_with("needs ") && w.contains(" CPU, ") => "cpu",
        w if w.starts_with("needs ") && w.ends_with(" free") => "memory",
        w if w.starts_with("agent reads format ") => "agent_format",
        w if w.starts_with("no overlay subnet") => "no_subnet",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::{explain, Misfit};
    use hoist_proto::service::PortProtocol;

    fn one(m: Misfit) -> String {
        reason_label(&explain(&[("n1".into(), m)]))
    }

    #[test]
    fn every_misfit_has_its_kind() {
        assert_eq!(one(Misfit::Down), "down");
        assert_eq!(one(Misfit::Paused), "paused");
        assert_eq!(one(Misfit::Drained), "drained");
        assert_eq!(
            one(Misfit::Constraint("node.labels.zone == a".into())),
            "constraint"
        );
        assert_eq!(one(Misfit::MaxPerNode(1)), "max_per_node");
        assert_eq!(one(Misfit::Port(80, PortProtocol::Tcp)), "port");
        assert_eq!(
            one(Misfit::Cpu {
                need: 1500,
                free: 500
            }),
            "cpu"
        );
        assert_eq!(
            one(Misfit::Memory {
                need: 512 << 20,
                free: 0
            }),
            "memory"
        );
        assert_eq!(
            one(Misfit::AgentFormat { has: 1, needs: 2 }),
            "agent_format"
        );
        assert_eq!(
            one(Misfit::NoSubnet("the cluster CIDR is exhausted".into())),
            "no_subnet"
        );
        assert_eq!(reason_label(&explain(&[])), "no_nodes");
    }

    #[test]
    fn nodes_with_different_reasons_give_each_kind_once_sorted() {
        let misfits: Vec<(String, Misfit)> = (0..12)
            .map(|i| {
                let m = if i % 2 == 0 {
                    Misfit::Drained
                } else {
                    Misfit::Memory { need: 1, free: 0 }
                };
                (format!("n{i}"), m)
            })
            .collect();
        let words = explain(&misfits);
        assert!(words.ends_with("and 4 more nodes"), "{words}");
        assert_eq!(reason_label(&words), "drained,memory");
    }

    #[test]
    fn unknown_words_are_other() {
        assert_eq!(reason_label("n1: something new"), "other");
        assert_eq!(reason_label(""), "other");
    }
}
