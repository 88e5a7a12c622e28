//! Ranking: which feasible node takes the next replica. Fewest replicas of the service in the
//! node's spread group (label value), then on the node, then the least loaded node, then the node
//! id — so placements spread evenly and are deterministic.
//!
//! Placing many replicas at once uses two heaps: spread groups by replica count, and inside each
//! group its feasible nodes by rank. A placement changes only the chosen node and its group, so
//! a batch of `k` placements over `n` nodes costs about `(n + k) log n`.

use super::feasible::{check, explain, Demand, Misfit, NodeUsage};
use crate::state::Map;
use hoist_proto::cluster::Node;
use std::borrow::Borrow;
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

/// A node's rank inside its spread group: replicas of the service there, load, tasks, index.
type NodeKey = (u64, u64, u64, usize);
/// A group's rank: replicas of the service in the group, then its best node's key.
type GroupKey = (u64, NodeKey, usize);

fn load_permille(node: &Node, u: &NodeUsage) -> u64 {
    let frac = |used: u64, cap: u64| used.saturating_mul(1000).checked_div(cap).unwrap_or(0);
    frac(u.cpu_millis, node.capacity.cpu_millis)
        .max(frac(u.memory_bytes, node.capacity.memory_bytes))
}

fn node_key(i: usize, n: &Node, u: Option<&NodeUsage>, service: &str) -> NodeKey {
    match u {
        None => (0, 0, 0, i),
        Some(u) => (
            u.per_service.get(service).copied().unwrap_or(0),
            load_permille(n, u),
            u.tasks,
            i,
        ),
    }
}

/// One spread group (all nodes when there is no spread label): its replica count and its
/// feasible nodes by rank. A placement changes only the chosen node's key and its group's count,
/// so both heaps stay exact: each placement costs O(log n).
struct Group {
    count: u64,
    nodes: BinaryHeap<Reverse<NodeKey>>,
}

/// Places `count` replicas with `demand` on `nodes`, updating `usage` as it goes. `spread` is a
/// node label key to spread over first (`zone`); nodes without the label form one more group.
/// The nodes may be owned or borrowed (the reconciliation ranks the state's own, uncopied).
pub fn place<N: Borrow<Node>>(
    nodes: &[N],
    usage: &mut Map<String, NodeUsage>,
    demand: &Demand,
    spread: Option<&str>,
    count: usize,
) -> Placement {
    let spread = spread.map(|s| s.strip_prefix("node.labels.").unwrap_or(s));
    let mut group_ids: BTreeMap<Option<&str>, usize> = BTreeMap::new();
    let mut groups: Vec<Group> = Vec::new();
    let mut misfits: BTreeMap<usize, Misfit> = BTreeMap::new();
    for (i, n) in nodes.iter().map(Borrow::borrow).enumerate() {
        let label = spread.and_then(|k| n.labels.get(k).map(String::as_str));
        let g = *group_ids.entry(label).or_insert_with(|| {
            groups.push(Group {
                count: 0,
                nodes: BinaryHeap::new(),
            });
            groups.len() - 1
        });
        let u = usage.get(&n.id);
        groups[g].count += u
            .and_then(|u| u.per_service.get(&demand.service))
            .copied()
            .unwrap_or(0);
        match check(n, u, demand) {
            Ok(()) => groups[g]
                .nodes
                .push(Reverse(node_key(i, n, u, &demand.service))),
            Err(m) => {
                misfits.insert(i, m);
            }
        }
    }
    let group_key = |g: usize, grp: &Group| -> Option<GroupKey> {
        grp.nodes.peek().map(|Reverse(k)| (grp.count, *k, g))
    };
    let mut ranked: BinaryHeap<Reverse<GroupKey>> = groups
        .iter()
        .enumerate()
        .filter_map(|(g, grp)| group_key(g, grp).map(Reverse))
        .collect();
    let mut chosen = Vec::with_capacity(count.min(1 << 20));
    while chosen.len() < count {
        let Some(Reverse((_, _, g))) = ranked.pop() else {
            break;
        };
        let grp = &mut groups[g];
        let Some(Reverse(k)) = grp.nodes.pop() else {
            continue;
        };
        let i = k.3;
        let n: &Node = nodes[i].borrow();
        match check(n, usage.get(&n.id), demand) {
            Ok(()) => {
                let u = usage.entry(n.id.clone()).or_default();
                u.add(demand);
                grp.count += 1;
                grp.nodes
                    .push(Reverse(node_key(i, n, Some(u), &demand.service)));
                chosen.push(n.id.clone());
            }
            Err(m) => {
                misfits.insert(i, m);
            }
        }
        if let Some(k) = group_key(g, grp) {
            ranked.push(Reverse(k));
        }
    }
    let unplaced = (chosen.len() < count).then(|| {
        let list: Vec<(String, Misfit)> = misfits
            .into_iter()
            .map(|(i, m)| (nodes[i].borrow().id.clone(), m))
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
        let d = Demand::of(&ServiceSpec::new("web", "img"), 1);
        let p = place(&nodes, &mut Map::new(), &d, None, 30);
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
        let d = Demand::of(&ServiceSpec::new("web", "img"), 1);
        let p = place(&nodes, &mut Map::new(), &d, Some("zone"), 4);
        let c = counts(&p);
        assert_eq!(c["b1"], 2);
        assert_eq!(c["a1"] + c["a2"], 2);
    }

    #[test]
    fn least_loaded_first_and_explains_the_rest() {
        let nodes = vec![node("n1", 1024, &[]), node("n2", 1024, &[])];
        let mut usage = Map::new();
        let mut other = ServiceSpec::new("db", "img");
        other.resources.memory = Some("768Mi".into());
        usage
            .entry("n1".to_string())
            .or_insert_with(NodeUsage::default)
            .add(&Demand::of(&other, 1));
        let mut spec = ServiceSpec::new("web", "img");
        spec.resources.memory = Some("512Mi".into());
        let d = Demand::of(&spec, 1);
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
            let d = Demand::of(&spec, 1);
            let mut usage = Map::new();
            let p = place(&nodes, &mut usage, &d, None, count);
            let mut usage2 = Map::new();
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
