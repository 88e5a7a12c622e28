//! Lossless stops: a replica that serves clients leaves every node's addresses before it is
//! asked to stop.
//!
//! When the scheduler wants such a replica stopped (rolling update, scale down, node drain,
//! `rm`), the leader first commits it as draining (`Plan::drain`: `Task::drain_index` = the
//! entry's index N; the endpoints watch no longer lists it). Every overlay agent applies the new
//! endpoints to its nftables maps and DNS, then says so in its next heartbeat
//! (`endpoints_applied`, sent at once after applying). Once every live agent has said ≥ N — a
//! node whose heartbeats stopped is fenced by the grace period, and one that heartbeats but never
//! catches up stops holding the drain after the grace period too — the replica keeps running for
//! its `update.drain` (1 s by default) so in-flight requests finish, and only then is it stopped
//! (`Plan::stop`: its stop signal, then SIGKILL after `stop_grace_period`).
//!
//! The acknowledgements and timers are the leader's memory; a new leader starts the timers again
//! and learns every agent's applied index from its next heartbeat, so a failover can delay a
//! drain, never cut it short.

use crate::state::State;
use hoist_proto::cluster::{NodeStatus, TaskState};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The leader's memory of acknowledgements and drains in progress.
#[derive(Debug, Default)]
pub struct Drains {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Per node: the newest endpoints index it applied.
    applied: HashMap<String, u64>,
    /// Per draining task: when this leader first saw it draining, and when its barrier passed.
    tasks: HashMap<String, (Instant, Option<Instant>)>,
}

/// A task id and why it stops.
pub type TaskReason = (String, String);

/// Splits the scheduler's stops: replicas that serve clients drain first, those already draining
/// are left to [`Drains::due`], the rest stop at once. A replica on a node that is down stops at
/// once too: its agent is out of reach, so the stop only takes it out of the endpoints, as a
/// drain would, and the barrier would hold its slot (and so its replacement, which a plan may
/// not place beside it) for up to a grace period more. Pure.
pub fn split_stops(state: &State, stops: Vec<TaskReason>) -> (Vec<TaskReason>, Vec<TaskReason>) {
    let mut stop = Vec::new();
    let mut drain = Vec::new();
    let node_up =
        |node: &str| (state.nodes.get(node)).is_some_and(|n| n.status == NodeStatus::Ready);
    for (id, why) in stops {
        match state.tasks.get(&id) {
            Some(t) if t.drain_index.is_some() && t.desired == TaskState::Running => {}
            Some(t) if state.cluster_format >= 2 && t.is_endpoint() && node_up(&t.node) => {
                drain.push((id, why))
            }
            _ => stop.push((id, why)),
        }
    }
    (stop, drain)
}

/// Whether every live overlay node has applied the endpoints at `index`. Pure.
pub fn barrier_passed(
    state: &State,
    index: u64,
    applied: impl Fn(&str) -> Option<u64>,
    live: impl Fn(&str) -> bool,
) -> bool {
    state
        .nodes
        .values()
        // Overlay agents: they run the mesh and acknowledge (a node with a subnet of its own, or
        // an older agent, has no maps to wait for).
        .filter(|n| {
            n.status == NodeStatus::Ready
                && n.agent_format >= 2
                && n.subnet.is_some()
                && n.wg_public_key.is_some()
        })
        .filter(|n| live(&n.id))
        .all(|n| applied(&n.id).is_some_and(|a| a >= index))
}

impl Drains {
    /// `node` applied the endpoints as of `index`.
    pub fn applied(&self, node: &str, index: u64) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let e = inner.applied.entry(node.to_string()).or_default();
        *e = (*e).max(index);
    }

    /// What `node` last said it applied.
    pub fn applied_by(&self, node: &str) -> Option<u64> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.applied.get(node).copied()
    }

    /// Draining tasks whose barrier passed and whose drain period is over: stop them now.
    /// `live` says whether a node heartbeated within the grace period.
    pub fn due(
        &self,
        state: &State,
        now: Instant,
        grace: Duration,
        live: impl Fn(&str) -> bool,
    ) -> Vec<(String, String)> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let Inner { applied, tasks } = &mut *inner;
        let mut due = Vec::new();
        let mut seen = Vec::new();
        // The draining tasks through the table's tally, not a scan of every task each round.
        for t in state.tasks.draining() {
            let (Some(index), TaskState::Running) = (t.drain_index, t.desired) else {
                continue;
            };
            seen.push(t.id.to_string());
            let (started, cleared) = tasks.entry(t.id.to_string()).or_insert((now, None));
            if cleared.is_none() {
                let passed = barrier_passed(state, index, |n| applied.get(n).copied(), &live);
                if passed || now.duration_since(*started) >= grace {
                    if !passed {
                        tracing::warn!(task = %t.id, index, "a live node has not applied the drain within the grace period: stopping anyway");
                    }
                    tracing::info!(task = %t.id, index, waited = ?now.duration_since(*started), "every live node applied the drain");
                    *cleared = Some(now);
                }
            }
            let drain = state
                .spec_of(&t.service, t.service_version)
                .map_or(1_000, |s| s.drain_ms());
            if cleared.is_some_and(|c| now.duration_since(c) >= Duration::from_millis(drain)) {
                let why = if t.message.is_empty() {
                    "drained".to_string()
                } else {
                    t.message.to_string()
                };
                due.push((t.id.to_string(), why));
            }
        }
        tasks.retain(|id, _| seen.contains(id));
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::tests::{cluster_with_nodes, ready_task};

    #[test]
    fn serving_replicas_drain_and_the_rest_stop_at_once() {
        let mut s = cluster_with_nodes(2);
        s.cluster_format = 2;
        let a = ready_task(&mut s, "a", "n1");
        let mut b = ready_task(&mut s, "b", "n2");
        b.state = TaskState::Pending;
        s.tasks.insert(b.clone());
        let mut c = ready_task(&mut s, "c", "n2");
        c.drain_index = Some(7);
        s.tasks.insert(c.clone());
        let stops = vec![
            (a.id.to_string(), "x".to_string()),
            (b.id.to_string(), "y".to_string()),
            (c.id.to_string(), "z".to_string()),
        ];
        let (stop, drain) = split_stops(&s, stops.clone());
        assert_eq!(stop, vec![(b.id.to_string(), "y".into())]);
        assert_eq!(drain, vec![(a.id.to_string(), "x".into())]);
        // On a node that is down, a serving replica stops at once.
        s.nodes.get_mut("n1").expect("n1").status = NodeStatus::Down;
        let (stop, drain) = split_stops(&s, stops.clone());
        assert_eq!(
            stop,
            vec![
                (a.id.to_string(), "x".into()),
                (b.id.to_string(), "y".into())
            ]
        );
        assert_eq!(drain, vec![]);
        s.nodes.get_mut("n1").expect("n1").status = NodeStatus::Ready;
        // Before the routing mesh (format < 2) nothing drains.
        s.cluster_format = 1;
        let (stop, drain) = split_stops(&s, stops);
        assert_eq!((stop.len(), drain.len()), (2, 0));
    }

    #[test]
    fn the_barrier_waits_for_every_live_overlay_node() {
        let s = cluster_with_nodes(3);
        let applied = |n: &str| match n {
            "n1" => Some(10),
            "n2" => Some(9),
            _ => None,
        };
        assert!(!barrier_passed(&s, 10, applied, |_| true));
        // n2 and n3 silent (fenced): only n1 counts.
        assert!(barrier_passed(&s, 10, applied, |n| n == "n1"));
        assert!(barrier_passed(&s, 9, applied, |n| n != "n3"));
    }

    #[test]
    fn a_drain_stops_after_the_barrier_and_the_drain_period() {
        let mut s = cluster_with_nodes(2);
        s.cluster_format = 2;
        let mut t = ready_task(&mut s, "a", "n1");
        t.drain_index = Some(5);
        t.message = "scaled down".into();
        s.tasks.insert(t.clone());
        let d = Drains::default();
        let t0 = Instant::now();
        let grace = Duration::from_secs(15);
        assert!(d.due(&s, t0, grace, |_| true).is_empty());
        d.applied("n1", 5);
        d.applied("n2", 4);
        assert!(d.due(&s, t0, grace, |_| true).is_empty(), "n2 is behind");
        d.applied("n2", 6);
        assert!(d.due(&s, t0, grace, |_| true).is_empty(), "drain period");
        let later = t0 + Duration::from_millis(1_000);
        assert_eq!(
            d.due(&s, later, grace, |_| true),
            vec![(t.id.to_string(), "scaled down".to_string())]
        );
    }

    #[test]
    fn a_stuck_node_holds_a_drain_for_the_grace_period_at_most() {
        let mut s = cluster_with_nodes(1);
        s.cluster_format = 2;
        let mut t = ready_task(&mut s, "a", "n1");
        t.drain_index = Some(5);
        s.tasks.insert(t.clone());
        let d = Drains::default();
        let t0 = Instant::now();
        let grace = Duration::from_secs(2);
        assert!(d.due(&s, t0, grace, |_| true).is_empty());
        assert!(d.due(&s, t0 + grace, grace, |_| true).is_empty());
        assert_eq!(
            d.due(&s, t0 + grace + Duration::from_secs(1), grace, |_| true)
                .len(),
            1
        );
    }
}
