//! The replicated state as metric values, computed at scrape time from one read-locked look at
//! [`State`] (this member's applied state: every member answers the same once it has caught
//! up). Pure: the tests build states by hand.

use crate::state::State;
use hoist_proto::cluster::{NodeStatus, TaskState};
use hoist_proto::node::Health;
use hoist_proto::service::ServiceMode;
use std::collections::BTreeMap;

/// One service's replicas.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Replicas {
    /// `replicas` of its spec; for a global service, the replicas placed (one per eligible node).
    pub desired: u64,
    /// Tasks still wanted whose container runs (any version).
    pub running: u64,
    /// Of those, the ones that passed their health check (or have none).
    pub healthy: u64,
    /// Placed on a node and wanted, not running yet (image pull, container start).
    pub starting: u64,
}

/// Every service's replica counts, by name.
pub fn replicas(state: &State) -> BTreeMap<String, Replicas> {
    let mut out: BTreeMap<String, Replicas> = state
        .services
        .keys()
        .map(|name| (name.clone(), Replicas::default()))
        .collect();
    let mut placed: BTreeMap<&str, u64> = BTreeMap::new();
    for t in state
        .tasks
        .values()
        .filter(|t| t.desired == TaskState::Running)
    {
        let Some(r) = out.get_mut(t.service.as_str()) else {
            continue;
        };
        *placed.entry(&t.service).or_default() += 1;
        match t.state {
            TaskState::Running => {
                r.running += 1;
                if matches!(t.health, Health::Healthy | Health::None) {
                    r.healthy += 1;
                }
            }
            TaskState::Pending => r.starting += 1,
            _ => {}
        }
    }
    for (name, r) in out.iter_mut() {
        let spec = &state.services[name].current().spec;
        r.desired = match spec.mode {
            ServiceMode::Replicated => u64::try_from(spec.replicas).unwrap_or(0),
            ServiceMode::Global => placed.get(name.as_str()).copied().unwrap_or(0),
        };
    }
    out
}

/// Each autoscaled service's decisions so far, from its replicated history: those that changed
/// its replicas and those that held them (a bound, a cooldown, the stabilization window, a
/// failed query). Counters: the history keeps both totals for good, past its last 100 entries.
pub fn autoscale_decisions(state: &State) -> Vec<(String, u64, u64)> {
    state
        .autoscale
        .iter()
        .map(|(service, log)| {
            (
                service.clone(),
                log.scaled,
                log.total.saturating_sub(log.scaled),
            )
        })
        .collect()
}

/// Nodes by status (`ready`, `down`).
pub fn nodes_by_status(state: &State) -> BTreeMap<&'static str, u64> {
    let mut out = BTreeMap::from([("ready", 0), ("down", 0)]);
    for n in state.nodes.values() {
        let key = match n.status {
            NodeStatus::Ready => "ready",
            NodeStatus::Down => "down",
        };
        *out.entry(key).or_default() += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::tests::{cluster_with_nodes, req, test_task};
    use hoist_proto::cluster::Task;
    use hoist_proto::raft::Command;
    use hoist_proto::service::ServiceSpec;

    fn with_service(name: &str, replicas: i64) -> State {
        let mut st = cluster_with_nodes(2);
        let mut spec = ServiceSpec::new(name, "img");
        spec.replicas = replicas;
        st.apply(&req(1, Command::ApplyService(Box::new(spec))));
        st
    }

    fn task(
        service: &str,
        slot: u64,
        desired: TaskState,
        state: TaskState,
        health: Health,
    ) -> Task {
        let mut t = test_task(&format!("{service}-{slot}"), service, 1, slot, "n1");
        (t.desired, t.state, t.health) = (desired, state, health);
        t
    }

    #[test]
    fn counts_running_healthy_and_starting_replicas_of_wanted_tasks() {
        let mut s = with_service("web", 4);
        use TaskState::*;
        for t in [
            task("web", 0, Running, Running, Health::Healthy),
            task("web", 1, Running, Running, Health::Unhealthy),
            task("web", 2, Running, Running, Health::None),
            task("web", 3, Running, Pending, Health::Starting),
            // Being stopped: neither counted as running nor as starting.
            task("web", 4, Shutdown, Running, Health::Healthy),
            // A task of a service that is gone counts nowhere.
            task("gone", 0, Running, Running, Health::None),
        ] {
            s.tasks.insert(t);
        }
        let r = replicas(&s);
        assert_eq!(r.len(), 1, "{r:?}");
        assert_eq!(
            r["web"],
            Replicas {
                desired: 4,
                running: 3,
                healthy: 2,
                starting: 1
            }
        );
    }

    #[test]
    fn autoscale_decisions_are_split_into_scaled_and_held() {
        let mut s = with_service("web", 2);
        let log = s.autoscale.entry("web".into()).or_default();
        (log.total, log.scaled) = (5, 3);
        assert_eq!(autoscale_decisions(&s), vec![("web".to_string(), 3, 2)]);
    }

    #[test]
    fn a_service_without_tasks_is_listed_with_zeros_and_nodes_by_status() {
        let mut s = with_service("idle", 2);
        assert_eq!(
            replicas(&s)["idle"],
            Replicas {
                desired: 2,
                ..Replicas::default()
            }
        );
        s.nodes.get_mut("n2").expect("n2").status = NodeStatus::Down;
        assert_eq!(
            nodes_by_status(&s),
            BTreeMap::from([("ready", 1), ("down", 1)])
        );
    }
}
