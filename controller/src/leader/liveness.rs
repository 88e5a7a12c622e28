//! Heartbeats in the leader's memory, and the pure decision of which nodes changed liveness.
//! Each request from an agent also tells its version, kept here beside its last heartbeat.

use hoist_proto::cluster::{Node, NodeStatus};
use hoist_proto::format::PeerVersion;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The last heartbeat of every node, as this member received them.
#[derive(Debug)]
pub struct Liveness {
    grace: Duration,
    seen: Mutex<HashMap<String, Instant>>,
    versions: Mutex<HashMap<String, PeerVersion>>,
}

impl Liveness {
    pub fn new(grace: Duration) -> Liveness {
        Liveness {
            grace,
            seen: Mutex::default(),
            versions: Mutex::default(),
        }
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

    /// A new leader gives every node a fresh grace period: its heartbeats went to the old one.
    pub fn fresh_grace<'a>(&self, nodes: impl IntoIterator<Item = &'a str>, now: Instant) {
        let mut seen = self.seen.lock().expect("liveness lock");
        seen.clear();
        for n in nodes {
            seen.insert(n.to_string(), now);
        }
    }

    /// Nodes whose liveness must change: ready ones silent for longer than the grace period go
    /// down; down ones heard from within it come back. Never-heard-of nodes start their grace now.
    pub fn changes<'a>(
        &self,
        nodes: impl IntoIterator<Item = &'a Node>,
        now: Instant,
    ) -> Vec<(String, NodeStatus)> {
        let mut seen = self.seen.lock().expect("liveness lock");
        let mut out = Vec::new();
        for n in nodes {
            let last = *seen.entry(n.id.clone()).or_insert(now);
            let silent = now.saturating_duration_since(last) > self.grace;
            match (n.status, silent) {
                (NodeStatus::Ready, true) => out.push((n.id.clone(), NodeStatus::Down)),
                (NodeStatus::Down, false) => out.push((n.id.clone(), NodeStatus::Ready)),
                _ => {}
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
        // A new leader: fresh grace for everyone.
        n.status = NodeStatus::Ready;
        l.fresh_grace(["n1"], t0 + Duration::from_secs(100));
        assert!(l.changes([&n], t0 + Duration::from_secs(110)).is_empty());
    }
}
