//! Ranking: which feasible node takes the next replica. Fewest replicas of the service in the
//! node's spread group (label value), then on the node, then the least loaded node, then the node
//! id — so placements spread evenly and are deterministic.
//!
//! Placing many replicas at once uses a heap with lazy re-keying: every key only grows when a
//! replica is placed, so a popped entry whose key is stale is pushed back with its new key, and a
//! batch of `k` placements over `n` nodes costs about `(n + k) log n`.

use super::feasible::{check, explain, Demand, Misfit, NodeUsage};
use hoist_proto::cluster::Node;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

/// The outcome of placing a number of replicas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// Chosen node ids, in placement order.
    pub nodes: Vec<String>,
    /// Why the rest could not be placed (per node), when some could not.
    pub unplaced: Option<String>,
}

type Key = (u64, u64, u64, u64, usize);

fn load_permille(node: &Node, u: &NodeUsage) -> u64 {
    let frac = |used: u64, cap: u64| {
        if cap == 0 {
            0
        } else {
            used.saturating_mul(1000) / cap
        }
    };
    frac(u.cpu_millis, node.capacity.cpu_millis)
        .max(frac(u.memory_bytes, node.capacity.memory_bytes))
}

/// Places `count` replicas with `demand` on `nodes`, updating `usage` as it goes. `spread` is a
/// node label key to spread over first (`zone`).
pub fn place(
    nodes: &[Node],
    usage: &mut BTreeMap<String, NodeUsage>,
    demand: &Demand,
    spread: Option<&str>,
    count: usize,
) -> Placement {
    let spread = spread.map(|s| s.strip_prefix("node.labels.").unwrap_or(s));
    let group_of = |n: &Node| spread.and_then(|k| n.labels.get(k).cloned());
    let mut groups: BTreeMap<Option<String>, u64> = BTreeMap::new();
    if spread.is_some() {
        for n in nodes {
            let c = usage
                .get(&n.id)
                .and_then(|u| u.per_service.get(&demand.service))
                .copied()
                .unwrap_or(0);
            *groups.entry(group_of(n)).or_default() += c;
        }
    }
    let key = |i: usize,
               n: &Node,
               usage: &BTreeMap<String, NodeUsage>,
               groups: &BTreeMap<Option<String>, u64>|
     -> Key {
        let empty = NodeUsage::default();
        let u = usage.get(&n.id).unwrap_or(&empty);
        let g = if spread.is_some() {
            groups.get(&group_of(n)).copied().unwrap_or(0)
        } else {
            0
        };
        let s = u.per_service.get(&demand.service).copied().unwrap_or(0);
        (g, s, load_permille(n, u), u.tasks, i)
    };
    let mut misfits: BTreeMap<usize, Misfit> = BTreeMap::new();
    let mut heap = BinaryHeap::new();
    for (i, n) in nodes.iter().enumerate() {
        match check(n, usage.get(&n.id), demand) {
            Ok(()) => heap.push(Reverse(key(i, n, usage, &groups))),
            Err(m) => {
                misfits.insert(i, m);
            }
        }
    }
    let mut chosen = Vec::with_capacity(count.min(nodes.len() * 4));
    while chosen.len() < count {
        let Some(Reverse(k)) = heap.pop() else { break };
        let i = k.4;
        let n = &nodes[i];
        let fresh = key(i, n, usage, &groups);
        if fresh != k {
            heap.push(Reverse(fresh));
            continue;
        }
        if let Err(m) = check(n, usage.get(&n.id), demand) {
            misfits.insert(i, m);
            continue;
        }
        usage.entry(n.id.clone()).or_default().add(demand);
        if spread.is_some() {
            *groups.entry(group_of(n)).or_default() += 1;
        }
        chosen.push(n.id.clone());
        heap.push(Reverse(key(i, n, usage, &groups)));
    }
    let unplaced = (chosen.len() < count).then(|| {
        let list: Vec<(String, Misfit)> = misfits
            .into_iter()
            .map(|(i, m)| (nodes[i].id.clone(), m))
            .collect();
        explain(&list)
    });
    Placement {
        nodes: chosen,
        unplaced,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::feasible::tests::node;
    use hoist_proto::service::ServiceSpec;
    use proptest::prelude::*;

    fn counts(p: &Placement) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for n in &p.nodes {
            *m.entry(n.clone()).or_default() += 1;
        }
        m
    }

    #[test]
    fn thirty_over_three_is_ten_each() {
        let nodes = vec![
            node("n1", 4096, &[]),
            node("n2", 4096, &[]),
            node("n3", 4096, &[]),
        ];
        let d = Demand::of(&ServiceSpec::new("web", "img"));
        let p = place(&nodes, &mut BTreeMap::new(), &d, None, 30);
        assert_eq!(p.unplaced, None);
        assert!(counts(&p).values().all(|&c| c == 10), "{p:?}");
    }

    #[test]
    fn spreads_over_a_label_first() {
        // Two nodes in zone a, one in zone b: 4 replicas go 2 to b, 2 to a (one per a-node).
        let nodes = vec![
            node("a1", 4096, &[("zone", "a")]),
            node("a2", 4096, &[("zone", "a")]),
            node("b1", 4096, &[("zone", "b")]),
        ];
        let d = Demand::of(&ServiceSpec::new("web", "img"));
        let p = place(&nodes, &mut BTreeMap::new(), &d, Some("zone"), 4);
        let c = counts(&p);
        assert_eq!(c["b1"], 2);
        assert_eq!(c["a1"] + c["a2"], 2);
    }

    #[test]
    fn least_loaded_first_and_explains_the_rest() {
        let nodes = vec![node("n1", 1024, &[]), node("n2", 1024, &[])];
        let mut usage = BTreeMap::new();
        let mut other = ServiceSpec::new("db", "img");
        other.resources.memory = Some("768Mi".into());
        usage
            .entry("n1".to_string())
            .or_insert_with(NodeUsage::default)
            .add(&Demand::of(&other));
        let mut spec = ServiceSpec::new("web", "img");
        spec.resources.memory = Some("512Mi".into());
        let d = Demand::of(&spec);
        let p = place(&nodes, &mut usage, &d, None, 3);
        assert_eq!(p.nodes, vec!["n2", "n2"]);
        assert_eq!(
            p.unplaced.as_deref(),
            Some("n1: needs 512 MiB, 256 MiB free; n2: needs 512 MiB, 0 B free")
        );
    }

    proptest! {
        /// Whatever the nodes and demands, no node ends above its capacity, replicas of one service
        /// differ by at most one between nodes that had room, and the result is deterministic.
        #[test]
        fn never_overcommits_spreads_and_is_deterministic(
            mems in prop::collection::vec(256u64..4096, 1..12),
            need in 0u64..1024,
            count in 0usize..200,
        ) {
            let nodes: Vec<Node> = mems.iter().enumerate()
                .map(|(i, m)| node(&format!("n{i:02}"), *m, &[])).collect();
            let mut spec = ServiceSpec::new("web", "img");
            spec.resources.memory = Some(format!("{need}Mi").as_str().into());
            let d = Demand::of(&spec);
            let mut usage = BTreeMap::new();
            let p = place(&nodes, &mut usage, &d, None, count);
            let mut usage2 = BTreeMap::new();
            prop_assert_eq!(&p, &place(&nodes, &mut usage2, &d, None, count));
            for n in &nodes {
                let used = usage.get(&n.id).map_or(0, |u| u.memory_bytes);
                prop_assert!(used <= n.capacity.memory_bytes);
            }
            let c = counts(&p);
            if p.unplaced.is_none() {
                prop_assert_eq!(p.nodes.len(), count);
                let max = c.values().max().copied().unwrap_or(0);
                // Any node with fewer than max-1 must be full.
                for n in &nodes {
                    let k = c.get(&n.id).copied().unwrap_or(0);
                    if k + 1 < max {
                        let free = n.capacity.memory_bytes - usage.get(&n.id).map_or(0, |u| u.memory_bytes);
                        prop_assert!(free < d.memory_bytes, "{} has room but only {} of max {}", n.id, k, max);
                    }
                }
            } else {
                // Nothing could take one more.
                for n in &nodes {
                    prop_assert!(check(n, usage.get(&n.id), &d).is_err());
                }
            }
        }
    }
}
