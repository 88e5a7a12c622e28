//! The overlay's replicated part (format 2): the cluster's address plan and each node's subnet,
//! WireGuard key and endpoint. Subnets are allocated here, in `apply`, so that every member
//! computes the same ones and two registrations can never get the same subnet; a removed node's
//! subnet is free again at once. Any change to a node's overlay record moves `overlay_index`,
//! which wakes every agent's assignments poll (each agent needs every peer).

use super::{invalid, State};
use hoist_proto::cluster::{ClusterNetwork, Node};
use hoist_proto::overlay::{allocate, exhausted, parse_plan};
use hoist_proto::raft::{CommandError, Response};
use std::collections::BTreeSet;
use std::net::Ipv4Addr;

impl State {
    /// Sets the address plan once (the first one wins, as the cluster id does) and gives every
    /// node without a subnet one, in node id order.
    pub(super) fn set_cluster_network(
        &mut self,
        net: &ClusterNetwork,
    ) -> Result<Response, CommandError> {
        parse_plan(&net.cidr, net.subnet_prefix).map_err(|m| invalid("cluster_cidr", m))?;
        if let Some(v) = &net.vip_cidr {
            v.parse::<ipnet::Ipv4Net>()
                .map_err(|e| invalid("vip_cidr", format!("{v:?}: {e}")))?;
        }
        if let Some(cur) = &mut self.network {
            // Set once, like the plan itself; a plan from before virtual IPs gets its range.
            if cur.vip_cidr.is_none() && net.vip_cidr.is_some() {
                cur.vip_cidr = net.vip_cidr.clone();
                self.assign_missing_vips();
            }
            return Ok(Response::Ok);
        }
        self.network = Some(net.clone());
        self.assign_missing_vips();
        let ids: Vec<String> = self.nodes.keys().cloned().collect();
        for id in ids {
            self.assign_subnet(&id);
        }
        Ok(Response::Ok)
    }

    /// Gives node `id` a subnet if it has none and the cluster has a plan; records why not when
    /// the CIDR is exhausted. Moves the overlay generation when anything changed.
    pub(super) fn assign_subnet(&mut self, id: &str) {
        let Some(net) = &self.network else { return };
        let Ok(cidr) = parse_plan(&net.cidr, net.subnet_prefix) else {
            return;
        };
        if self.nodes.get(id).is_none_or(|n| n.subnet.is_some()) {
            return;
        }
        let used: BTreeSet<Ipv4Addr> = self
            .nodes
            .values()
            .filter_map(|n| n.subnet.as_deref()?.parse::<ipnet::Ipv4Net>().ok())
            .map(|n| n.network())
            .collect();
        let (subnet, problem) = match allocate(cidr, net.subnet_prefix, &used) {
            Some(s) => (Some(s.to_string()), None),
            None => (None, Some(exhausted(&net.cidr, net.subnet_prefix))),
        };
        let index = self.index;
        let node = self.nodes.get_mut(id).expect("checked above");
        if node.subnet != subnet || node.overlay_problem != problem {
            node.subnet = subnet;
            node.overlay_problem = problem;
            node.overlay_generation = index;
            self.overlay_index = index;
        }
    }

    /// Carries a re-registering node's overlay record over: its subnet stays; a key or endpoint
    /// it did not send (an agent of an older format) stays as it was.
    pub(super) fn merge_overlay(&mut self, old: Option<&Node>, new: &mut Node) {
        let Some(old) = old else {
            new.subnet = None;
            new.overlay_problem = None;
            new.overlay_generation = self.index;
            return;
        };
        new.subnet = old.subnet.clone();
        new.overlay_problem = old.overlay_problem.clone();
        if new.wg_public_key.is_none() {
            new.wg_public_key = old.wg_public_key.clone();
        }
        if new.wg_endpoint.is_none() {
            new.wg_endpoint = old.wg_endpoint.clone();
        }
        new.overlay_generation =
            if new.wg_public_key != old.wg_public_key || new.wg_endpoint != old.wg_endpoint {
                self.index
            } else {
                old.overlay_generation
            };
    }

    /// Whether nodes' overlay records differ in what peers see.
    pub(super) fn overlay_changed(old: Option<&Node>, new: &Node) -> bool {
        old.is_none_or(|o| {
            o.subnet != new.subnet
                || o.wg_public_key != new.wg_public_key
                || o.wg_endpoint != new.wg_endpoint
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::state::tests::{req, test_node};
    use crate::state::State;
    use hoist_proto::cluster::ClusterNetwork;
    use hoist_proto::raft::{Command, Response};

    fn plan(cidr: &str) -> Command {
        Command::SetClusterNetwork(ClusterNetwork {
            cidr: cidr.into(),
            subnet_prefix: 24,
            vip_cidr: None,
        })
    }

    fn node(id: &str) -> hoist_proto::cluster::Node {
        test_node(id, 1000, 1 << 30)
    }

    fn state_at_format_2() -> State {
        let mut st = State::default();
        assert_eq!(
            st.apply_at(1, &req(1, Command::SetClusterFormat { format: 2 })),
            Response::Ok
        );
        st
    }

    #[test]
    fn nodes_get_subnets_when_the_plan_is_set_and_when_they_register() {
        let mut st = state_at_format_2();
        st.apply_at(2, &req(2, Command::RegisterNode(node("n2"))));
        st.apply_at(3, &req(3, Command::RegisterNode(node("n1"))));
        assert!(st.nodes.values().all(|n| n.subnet.is_none()), "no plan yet");
        assert_eq!(st.apply_at(4, &req(4, plan("10.200.0.0/16"))), Response::Ok);
        assert_eq!(
            st.nodes["n1"].subnet.as_deref(),
            Some("10.200.0.0/24"),
            "id order"
        );
        assert_eq!(st.nodes["n2"].subnet.as_deref(), Some("10.200.1.0/24"));
        assert_eq!(st.overlay_index, 4);
        // A second plan changes nothing; a re-registration keeps the subnet.
        st.apply_at(5, &req(5, plan("10.9.0.0/16")));
        assert_eq!(st.network.as_ref().unwrap().cidr, "10.200.0.0/16");
        st.apply_at(6, &req(6, Command::RegisterNode(node("n2"))));
        assert_eq!(st.nodes["n2"].subnet.as_deref(), Some("10.200.1.0/24"));
        assert_eq!(st.overlay_index, 4, "nothing peers see changed");
        // Removal frees the subnet for the next node.
        st.apply_at(7, &req(7, Command::RemoveNode { id: "n1".into() }));
        assert_eq!(st.overlay_index, 7);
        st.apply_at(8, &req(8, Command::RegisterNode(node("n3"))));
        assert_eq!(st.nodes["n3"].subnet.as_deref(), Some("10.200.0.0/24"));
    }

    #[test]
    fn an_exhausted_cidr_is_said_on_the_node() {
        let mut st = state_at_format_2();
        st.apply_at(2, &req(2, plan("10.9.0.0/23")));
        for id in ["a", "b", "c"] {
            st.apply_at(3, &req(3, Command::RegisterNode(node(id))));
        }
        assert_eq!(st.nodes["c"].subnet, None);
        let why = st.nodes["c"].overlay_problem.as_deref().unwrap();
        assert!(why.contains("10.9.0.0/23 has no free /24"), "{why}");
        // A removed node's subnet goes to the node that was waiting.
        st.apply_at(4, &req(4, Command::RemoveNode { id: "a".into() }));
        assert_eq!(st.nodes["c"].subnet.as_deref(), Some("10.9.0.0/24"));
        assert_eq!(st.nodes["c"].overlay_problem, None);
    }

    #[test]
    fn a_bad_plan_or_a_format_1_cluster_is_refused() {
        let mut st = state_at_format_2();
        let Response::Error(e) = st.apply_at(2, &req(2, plan("10.9.0.1/16"))) else {
            panic!("accepted")
        };
        assert_eq!(e.field.as_deref(), Some("cluster_cidr"));
        let mut old = State {
            cluster_format: 1,
            ..State::default()
        };
        assert!(matches!(
            old.apply_at(2, &req(2, plan("10.9.0.0/16"))),
            Response::Error(_)
        ));
        assert!(old.network.is_none());
    }
}
