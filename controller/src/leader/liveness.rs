//! Heartbeats in the leader's memory, and the pure decision of which nodes changed liveness.
//! Each request from an agent also tells its version, kept here beside its last heartbeat.
//!
//! The leader also paces the heartbeats: every node at the configured interval would be
//! thousands of TLS requests a second at thousands of nodes, on the member that also leads Raft.
//! As Nomad does (`max_heartbeats_per_second`), the interval grows with the cluster so that the
//! leader receives at most a set rate, and the grace before a node is marked down grows with it
//! ([`pace`]).

use hoist_proto::cluster::{Node, NodeStatus};
use hoist_proto::format::PeerVersion;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often agents heartbeat and how long a silent node stays ready, for a cluster's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pace {
    pub interval: Duration,
    pub grace: Duration,
}

/// The heartbeat pace for `nodes` nodes: the configured `interval`, or longer so that all of them
/// together send at most `max_per_second` heartbeats (0: no limit); the grace is the configured
/// one, or three intervals when that is longer (a node is never marked down for missing fewer
/// than three heartbeats).
pub fn pace(nodes: usize, interval: Duration, grace: Duration, max_per_second: u32) -> Pace {
    let spread = if max_per_second == 0 {
        Duration::ZERO
    } else {
        Duration::from_millis((nodes as u64).saturating_mul(1000) / u64::from(max_per_second))
    };
    let interval = interval.max(spread);
    Pace {
        interval,
        grace: grace.max(interval * 3),
    }
}

/// The last heartbeat of every node, as this member received them.
#[derive(Debug)]
pub struct Liveness {
    /// The grace in force ([`Pace::grace`]), set by the leader's loop as the cluster grows.
    grace: Mutex<Duration>,
    seen: Mutex<HashMap<String, Instant>>,
    versions: Mutex<HashMap<String, PeerVersion>>,
}

impl Liveness {
    pub fn new(grace: Duration) -> Liveness {
        Liveness {
            grace: Mutex::new(grace),
            seen: Mutex::default(),
            versions: Mutex::default(),
        }
    }

    /// Sets the grace in force (see [`pace`]).
    pub fn set_grace(&self, grace: Duration) {
        *self.grace.lock().expect("liveness lock") = grace;
    }

    /// The grace in force.
    pub fn grace(&self) -> Duration {
        *self.grace.lock().expect("liveness lock")
    }

    /// Records the version `node`'s agent told with its last request.
    pub fn told_version(&self, node: &str, version: PeerVersion) {
        let mut versions = self.versions.lock().expect("liveness lock");
        if versions.get(node) != Some(&version) {
            versions.insert(node.to_string(), version);
        }
    }

    /// The version `node`'s agent last told this member, if it told one.
    pub fn version_of(&self, node: &str) -> Option<PeerVersion> {
        self.versions
            .lock()
            .expect("liveness lock")
            .get(node)
            .cloned()
    }

    /// Records a heartbeat (or a registration, or a status report) from `node`.
    pub fn beat(&self, node: &str, now: Instant) {
        self.seen
            .lock()
            .expect("liveness lock")
            .insert(node.to_string(), now);
    }

    /// How long ago `node` was last heard from.
    pub fn since(&self, node: &str, now: Instant) -> Option<Duration> {
        self.seen
            .lock()
            .expect("liveness lock")
            .get(node)
            .map(|t| now.saturating_duration_since(*t))
    }

    /// A new leader gives every ready node a fresh grace period: its heartbeats went to the old
    /// one. Down nodes get none: they stay down until they are heard from (else a leader change
    /// would revive every dead node for a grace period, and the scheduler, which prefers empty
    /// nodes, would send new replicas to them first).
    pub fn fresh_grace<'a>(&self, nodes: impl IntoIterator<Item = &'a Node>, now: Instant) {
        let mut seen = self.seen.lock().expect("liveness lock");
        seen.clear();
        for n in nodes {
            if n.status == NodeStatus::Ready {
                seen.insert(n.id.clone(), now);
            }
        }
    }

    /// Nodes whose liveness must change: ready ones silent for longer than the grace period go
    /// down; down ones heard from within it come back. Ready nodes never heard of start their
    /// grace now; down ones stay down until heard from.
    pub fn changes<'a>(
        &self,
        nodes: impl IntoIterator<Item = &'a Node>,
        now: Instant,
    ) -> Vec<(String, NodeStatus)> {
        let grace = self.grace();
        let mut seen = self.seen.lock().expect("liveness lock");
        let mut out = Vec::new();
        let silent = |last: Instant| now.saturating_duration_since(last) > grace;
        for n in nodes {
            match n.status {
                NodeStatus::Ready => {
                    if silent(*seen.entry(n.id.clone()).or_insert(now)) {
                        out.push((n.id.clone(), NodeStatus::Down));
                    }
                }
                NodeStatus::Down => {
                    if seen.get(&n.id).is_some_and(|last| !silent(*last)) {
                        out.push((n.id.clone(), NodeStatus::Ready));
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::tests::test_node;

    #[test]
    fn the_pace_spreads_heartbeats_as_the_cluster_grows() {
        let (s, ms) = (Duration::from_secs, Duration::from_millis);
        // (nodes, interval, grace, max per second) → (interval, grace)
        let cases = [
            // Small clusters keep the configured pace.
            ((100, s(1), s(15), 500), (s(1), s(15))),
            // 2,000 nodes at 500/s: every 4 s; 15 s of grace still covers three.
            ((2_000, s(1), s(15), 500), (s(4), s(15))),
            // 10,000 nodes: every 20 s, down after a minute of silence.
            ((10_000, s(1), s(15), 500), (s(20), s(60))),
            // 0 turns the limit off; a short grace still covers three intervals.
            ((10_000, ms(500), s(1), 0), (ms(500), ms(1500))),
            ((3, s(1), s(1), 1), (s(3), s(9))),
        ];
        for ((nodes, interval, grace, max), (want_interval, want_grace)) in cases {
            assert_eq!(
                pace(nodes, interval, grace, max),
                Pace {
                    interval: want_interval,
                    grace: want_grace
                },
                "{nodes} nodes, {max}/s"
            );
        }
    }

    #[test]
    fn grace_flap_and_return() {
        let l = Liveness::new(Duration::from_secs(15));
        let t0 = Instant::now();
        let mut n = test_node("n1", 1000, 1 << 30);
        assert!(
            l.changes([&n], t0).is_empty(),
            "first sight starts the grace"
        );
        // A 10 s flap moves nothing.
        assert!(l.changes([&n], t0 + Duration::from_secs(10)).is_empty());
        l.beat("n1", t0 + Duration::from_secs(10));
        assert!(l.changes([&n], t0 + Duration::from_secs(24)).is_empty());
        // 16 s of silence: down.
        assert_eq!(
            l.changes([&n], t0 + Duration::from_secs(26)),
            vec![("n1".to_string(), NodeStatus::Down)]
        );
        n.status = NodeStatus::Down;
        assert!(l.changes([&n], t0 + Duration::from_secs(27)).is_empty());
        l.beat("n1", t0 + Duration::from_secs(28));
        assert_eq!(
            l.changes([&n], t0 + Duration::from_secs(28)),
            vec![("n1".to_string(), NodeStatus::Ready)]
        );
        // A new leader: fresh grace for everyone ready.
        n.status = NodeStatus::Ready;
        l.fresh_grace([&n], t0 + Duration::from_secs(100));
        assert!(l.changes([&n], t0 + Duration::from_secs(110)).is_empty());
    }

    #[test]
    fn a_new_leader_does_not_revive_down_nodes() {
        let l = Liveness::new(Duration::from_secs(15));
        let t0 = Instant::now();
        let ready = test_node("alive", 1000, 1 << 30);
        let mut dead = test_node("dead", 1000, 1 << 30);
        dead.status = NodeStatus::Down;
        // This member starts leading: the ready node gets its grace, the down one none.
        l.fresh_grace([&ready, &dead], t0);
        assert!(l.changes([&ready, &dead], t0).is_empty());
        assert!(l
            .changes([&ready, &dead], t0 + Duration::from_secs(5))
            .is_empty());
        // A down node this member has never heard of stays down...
        let mut unknown = test_node("unknown", 1000, 1 << 30);
        unknown.status = NodeStatus::Down;
        assert!(l
            .changes([&unknown], t0 + Duration::from_secs(6))
            .is_empty());
        // ...until it is heard from.
        l.beat("dead", t0 + Duration::from_secs(7));
        assert_eq!(
            l.changes([&ready, &dead], t0 + Duration::from_secs(7)),
            vec![("dead".to_string(), NodeStatus::Ready)]
        );
        // The ready one, silent past its fresh grace, goes down as before.
        assert_eq!(
            l.changes([&ready], t0 + Duration::from_secs(16)),
            vec![("alive".to_string(), NodeStatus::Down)]
        );
    }
}
