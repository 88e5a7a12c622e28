//! The overlay's peers as the assignments answers list them, built once per overlay index.
//!
//! Every change to a node's overlay record (a node joins, gets its subnet, changes its key or
//! endpoint, is removed) moves the overlay index and wakes every agent's assignments poll, and
//! each answer then lists the peers changed since the index that agent holds. Finding them took
//! a walk of every node for every answer: O(nodes) per answer, O(nodes²) per change. With
//! 10,000 simulated nodes, the walk took 13.5% of the leader's samples, and string comparisons
//! and the node map's cursor, most likely the walk's too, another 35%
//! (`bench/results/overlay-peers-2026-12-08.md`).
//!
//! Here the peers are listed once per overlay index, in node id order and by generation, so an
//! answer costs a binary search and the changed peers it lists. The overlay index says which list
//! is right: it is the Raft index of the last change to any peer's record, so two states at the
//! same overlay index have the same peers (the same argument lets a poll that holds the current
//! index be answered without any). That holds between two restores only: a restored image brings
//! the overlay index of its own time. So the list is keyed by the state's floor too
//! (`state/endpoint_changes.rs`), which a restore or an installed snapshot raises. The parts of
//! an answer that are the polling node's own (its subnet, its problem) and the cluster's plan
//! are read from the state of each answer, not from here.

use crate::state::State;
use hoist_proto::node::{Overlay, OverlayPeer};
use std::sync::{Arc, Mutex};

/// Every peer of the overlay at one overlay index: each node with a subnet, a key and an
/// endpoint.
#[derive(Debug)]
pub struct Peers {
    /// The overlay index these are the peers of.
    at: u64,
    /// The state's floor then (raised by a restore or an installed snapshot).
    floor: u64,
    /// In node id order, the order answers list them in.
    by_id: Vec<OverlayPeer>,
    /// Positions in `by_id`, by the peer's generation (the index of its record's last change).
    by_generation: Vec<usize>,
}

impl Peers {
    /// The peers of `s`. O(nodes).
    pub fn of(s: &State) -> Peers {
        let mut by_id: Vec<OverlayPeer> = s
            .nodes
            .values()
            .filter_map(|n| {
                let (Some(key), Some(endpoint), Some(subnet)) =
                    (&n.wg_public_key, &n.wg_endpoint, &n.subnet)
                else {
                    return None;
                };
                Some(OverlayPeer {
                    node: n.id.clone(),
                    public_key: key.clone(),
                    endpoint: endpoint.clone(),
                    subnet: subnet.clone(),
                    generation: n.overlay_generation,
                })
            })
            .collect();
        // The map is in key order, and a node's key is its id; sorted again so that the binary
        // searches below hold whatever the map's order.
        by_id.sort_by(|a, b| a.node.cmp(&b.node));
        let mut by_generation: Vec<usize> = (0..by_id.len()).collect();
        by_generation.sort_by_key(|&i| by_id[i].generation);
        Peers {
            at: s.overlay_index,
            floor: s.endpoint_changes.floor(),
            by_id,
            by_generation,
        }
    }

    /// The overlay as `node` must wire it, once the cluster has an address plan: every peer, or
    /// with `changed_since` those whose record changed after it. `s` is the state these peers
    /// were listed from, or one at the same overlay index and floor.
    pub fn overlay(&self, s: &State, node: &str, changed_since: u64) -> Option<Overlay> {
        let net = s.network.as_ref()?;
        let me = s.nodes.get(node)?;
        let mine = self
            .by_id
            .binary_search_by(|p| p.node.as_str().cmp(node))
            .ok();
        let peers: Vec<OverlayPeer> = if changed_since == 0 {
            let mut all = self.by_id.clone();
            if let Some(i) = mine {
                all.remove(i);
            }
            all
        } else {
            let from = self
                .by_generation
                .partition_point(|&i| self.by_id[i].generation <= changed_since);
            let mut changed: Vec<usize> = self.by_generation[from..]
                .iter()
                .copied()
                .filter(|&i| Some(i) != mine)
                .collect();
            changed.sort_unstable();
            changed.into_iter().map(|i| self.by_id[i].clone()).collect()
        };
        let peer_count = self.by_id.len() - usize::from(mine.is_some());
        Some(answer(net, me, peers, changed_since, peer_count as u64))
    }
}

/// The overlay answer of node `me` listing `peers`, out of `peer_count` in all.
fn answer(
    net: &hoist_proto::cluster::ClusterNetwork,
    me: &hoist_proto::cluster::Node,
    peers: Vec<OverlayPeer>,
    changed_since: u64,
    peer_count: u64,
) -> Overlay {
    Overlay {
        cluster_cidr: net.cidr.clone(),
        subnet: me.subnet.clone(),
        problem: me.overlay_problem.clone(),
        peers,
        changed_since,
        // Said only with `changed_since`, for the agent's merge.
        peer_count: if changed_since == 0 { 0 } else { peer_count },
    }
}

/// The peers of the newest overlay index answered from, shared by every poll.
#[derive(Debug, Default)]
pub struct Cache(Mutex<Option<Arc<Peers>>>);

impl Cache {
    /// The peers at `s`'s overlay index: the ones held when they are of that index, else listed
    /// from `s` (and kept, unless `s` is older than the ones held). One poll lists them; the
    /// others woken by the same change wait for it rather than list them again.
    pub fn peers(&self, s: &State) -> Arc<Peers> {
        let mut held = self.0.lock().expect("overlay peers lock");
        let of_s = (s.endpoint_changes.floor(), s.overlay_index);
        match &*held {
            Some(p) if (p.floor, p.at) == of_s => p.clone(),
            Some(p) if (p.floor, p.at) > of_s => Arc::new(Peers::of(s)),
            _ => {
                let p = Arc::new(Peers::of(s));
                *held = Some(p.clone());
                p
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::tests::{req, test_node};
    use hoist_proto::cluster::ClusterNetwork;
    use hoist_proto::raft::Command;
    use proptest::prelude::*;

    /// What every answer did before this module: a walk of every node (the answer's other
    /// fields are filled alike).
    fn walk(s: &State, node: &str, changed_since: u64) -> Option<Overlay> {
        let net = s.network.as_ref()?;
        let me = s.nodes.get(node)?;
        let mut peer_count = 0;
        let mut peers = Vec::new();
        for n in s.nodes.values().filter(|n| n.id != node) {
            let (Some(key), Some(endpoint), Some(subnet)) =
                (&n.wg_public_key, &n.wg_endpoint, &n.subnet)
            else {
                continue;
            };
            peer_count += 1;
            if n.overlay_generation > changed_since {
                peers.push(OverlayPeer {
                    node: n.id.clone(),
                    public_key: key.clone(),
                    endpoint: endpoint.clone(),
                    subnet: subnet.clone(),
                    generation: n.overlay_generation,
                });
            }
        }
        Some(answer(net, me, peers, changed_since, peer_count))
    }

    /// A change to the nodes: (what, which node, which endpoint).
    #[derive(Debug, Clone)]
    enum Op {
        /// Registers (again) with a key and this endpoint.
        Register(u8, u8),
        /// Registers (again) without a key: not a peer, unless it had one before.
        RegisterKeyless(u8),
        Remove(u8),
        /// A change no peer sees.
        Label(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0..12u8, 0..3u8).prop_map(|(n, e)| Op::Register(n, e)),
            1 => (0..12u8).prop_map(Op::RegisterKeyless),
            1 => (0..12u8).prop_map(Op::Remove),
            1 => (0..12u8).prop_map(Op::Label),
        ]
    }

    fn apply(st: &mut State, at: u64, op: &Op) {
        let command = match op {
            Op::Register(n, e) | Op::RegisterKeyless(n @ e) => {
                let mut node = test_node(&format!("n{n:02}"), 1000, 1 << 30);
                if matches!(op, Op::Register(..)) {
                    node.wg_public_key = Some(format!("{}=", "K".repeat(42) + &n.to_string()));
                    node.wg_endpoint = Some(format!("192.0.2.{e}:51820"));
                }
                Command::RegisterNode(node)
            }
            Op::Remove(n) => Command::RemoveNode {
                id: format!("n{n:02}"),
            },
            Op::Label(n) => Command::SetNodeLabels {
                id: format!("n{n:02}"),
                set: [("zone".to_string(), at.to_string())].into(),
                remove: vec![],
            },
        };
        // A refused command (removing a node that is not there) changes nothing.
        st.apply_at(at, &req(at, command));
    }

    fn planned(prefix: u32) -> State {
        let mut st = State::default();
        st.apply_at(1, &req(1, Command::SetClusterFormat { format: 2 }));
        let plan = ClusterNetwork {
            cidr: "10.200.0.0/16".into(),
            // /28s of a /16 leave room for every node; /18s only for four (a node then waits
            // for a subnet, with a problem told).
            subnet_prefix: prefix,
            vip_cidr: None,
        };
        st.apply_at(2, &req(2, Command::SetClusterNetwork(plan)));
        st
    }

    proptest! {
        /// After every change, every node's answer for every index it may hold is what a walk
        /// of every node gives, with one cache kept through all the changes.
        #[test]
        fn answers_are_what_a_walk_of_every_node_gives(
            ops in prop::collection::vec(op(), 1..30),
            tight in any::<bool>(),
        ) {
            let mut st = planned(if tight { 18 } else { 28 });
            let cache = Cache::default();
            for (i, op) in ops.iter().enumerate() {
                let at = 3 + i as u64;
                apply(&mut st, at, op);
                let peers = cache.peers(&st);
                for node in (0..12u8).map(|n| format!("n{n:02}")) {
                    for since in 0..=at {
                        prop_assert_eq!(
                            peers.overlay(&st, &node, since),
                            walk(&st, &node, since),
                            "node {} since {} after {:?}", node, since, &ops[..=i]
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn peers_are_listed_once_per_overlay_index_and_an_older_state_does_not_replace_them() {
        let mut st = planned(28);
        apply(&mut st, 3, &Op::Register(1, 1));
        let old = st.clone();
        apply(&mut st, 4, &Op::Register(2, 1));
        let cache = Cache::default();
        let new = cache.peers(&st);
        assert!(
            Arc::ptr_eq(&new, &cache.peers(&st)),
            "held, not listed again"
        );
        // A change no peer sees keeps the overlay index, and the peers held.
        apply(&mut st, 5, &Op::Label(1));
        assert!(Arc::ptr_eq(&new, &cache.peers(&st)));
        // A poll answered from an older state gets that state's peers...
        let older = cache.peers(&old);
        assert_eq!(older.by_id.len(), 1);
        // ...and the newer ones stay held.
        assert!(Arc::ptr_eq(&new, &cache.peers(&st)));
        apply(&mut st, 6, &Op::Remove(2));
        let after = cache.peers(&st);
        assert!(!Arc::ptr_eq(&new, &after));
        assert_eq!(after.by_id.len(), 1);
    }

    #[test]
    fn a_restored_image_at_the_same_overlay_index_gets_its_own_peers() {
        // Two histories whose overlays last changed at the same index, with other peers.
        let mut st = planned(28);
        apply(&mut st, 3, &Op::Register(1, 1));
        let mut image = planned(28);
        apply(&mut image, 3, &Op::Register(2, 1));
        assert_eq!(st.overlay_index, image.overlay_index);
        let cache = Cache::default();
        assert_eq!(cache.peers(&st).by_id[0].node, "n01");
        let bytes = crate::state::encode_snapshot(&image, 2).unwrap();
        st.apply_at(4, &req(4, Command::Restore(bytes)));
        assert_eq!(st.overlay_index, 3, "the image's own");
        let restored = cache.peers(&st);
        assert_eq!(restored.by_id[0].node, "n02");
        assert_eq!(
            restored.overlay(&st, "n01", 0),
            walk(&st, "n01", 0),
            "n01 is no longer registered"
        );
    }
}
