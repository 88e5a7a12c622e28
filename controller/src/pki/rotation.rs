//! The end of a rotation of the cluster's root (`hoist cluster ca rotate`).
//!
//! A rotation puts a new root in the state with the old one beside it: both are trusted, and
//! certificates under the new root carry its cross-signature by the old one, so that nothing
//! that still trusts only the old root refuses them. Members sign themselves a new certificate
//! as soon as they apply it; agents renew theirs at their next heartbeat, whose answer names
//! the new root. The old root can only be dropped once nobody presents a certificate under it
//! any more, or that holder's next connection would fail.
//!
//! Who presents what is seen, not assumed. The leader reads the certificate each member serves
//! (one TLS handshake per member: [`hoist_transport::client::served_certificate`]) and the one
//! each node's agent presents on its heartbeats (the leader answers every heartbeat). Which
//! root signed a certificate is its authority key identifier, the root's subject key identifier.
//! When every member and every node that is not down is under the new root, the leader writes
//! `FinishCaRotation`. A node that is down then comes back with a certificate under a root no
//! one trusts any more: its agent registers again with a join token of the new root.

use hoist_proto::cluster::{Node, NodeStatus};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

/// What the leader saw of a rotation (in memory; a new leader sees it all again within a
/// heartbeat interval).
#[derive(Debug, Default)]
pub struct Tracker {
    /// For each node, the key id of the root its agent's certificate was under at its last
    /// heartbeat over mutual TLS during a rotation (nothing is noted outside one).
    nodes: Mutex<HashMap<String, String>>,
    /// The last progress the leader computed; `None` when no rotation is going on.
    progress: Mutex<Option<Progress>>,
}

impl Tracker {
    /// A heartbeat of `node` came with a certificate whose issuer has key id `issuer_key_id`.
    pub fn node_presented(&self, node: &str, issuer_key_id: &str) {
        if let Ok(mut nodes) = self.nodes.lock() {
            if nodes.get(node).map(String::as_str) != Some(issuer_key_id) {
                nodes.insert(node.to_string(), issuer_key_id.to_string());
            }
        }
    }

    /// What each node presented last.
    pub fn nodes(&self) -> HashMap<String, String> {
        self.nodes.lock().map(|n| n.clone()).unwrap_or_default()
    }

    /// No rotation is going on (any more): forgets what was seen.
    pub fn reset(&self) {
        if let Ok(mut nodes) = self.nodes.lock() {
            nodes.clear();
        }
        self.set_progress(None);
    }

    pub fn set_progress(&self, progress: Option<Progress>) {
        if let Ok(mut slot) = self.progress.lock() {
            *slot = progress;
        }
    }

    pub fn progress(&self) -> Option<Progress> {
        self.progress.lock().ok()?.clone()
    }
}

/// How far a rotation is: who is under the new root already, and who is not yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Progress {
    /// The new root's digest.
    pub digest: String,
    pub members: Count<u64>,
    pub nodes: Count<String>,
}

/// Holders under the new root, and those still waited for with why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Count<T: Ord> {
    pub done: usize,
    pub total: usize,
    /// Who is still waited for, and what was seen of it.
    pub waiting: BTreeMap<T, String>,
}

impl<T: Ord> Count<T> {
    fn new() -> Count<T> {
        Count {
            done: 0,
            total: 0,
            waiting: BTreeMap::new(),
        }
    }

    fn add(&mut self, who: T, seen: Result<(), String>) {
        self.total += 1;
        match seen {
            Ok(()) => self.done += 1,
            Err(why) => {
                self.waiting.insert(who, why);
            }
        }
    }
}

impl Progress {
    /// Whether the previous root can be dropped.
    pub fn complete(&self) -> bool {
        self.members.waiting.is_empty() && self.nodes.waiting.is_empty()
    }
}

/// Where a rotation to the root `digest` (subject key id `root_key_id`) stands, from what each
/// member serves (the issuer key id of its certificate, or why it could not be read) and what
/// each node presented last. Nodes count when their agent holds a certificate of the cluster
/// (`cert_key_sha256`) and they are not down. Pure.
pub fn progress<'a>(
    digest: &str,
    root_key_id: &str,
    members: &BTreeMap<u64, Result<String, String>>,
    nodes: impl IntoIterator<Item = &'a Node>,
    presented: &HashMap<String, String>,
) -> Progress {
    let under_new = |issuer: &str| {
        if issuer == root_key_id {
            Ok(())
        } else {
            Err("its certificate is under the previous root".to_string())
        }
    };
    let mut m = Count::new();
    for (id, served) in members {
        m.add(
            *id,
            served.as_deref().map_err(Clone::clone).and_then(under_new),
        );
    }
    let mut n = Count::new();
    for node in nodes {
        if node.cert_key_sha256.is_empty() || node.status == NodeStatus::Down {
            continue;
        }
        let seen = match presented.get(&node.id) {
            Some(issuer) => under_new(issuer),
            None => Err("no heartbeat with a certificate seen by this leader yet".into()),
        };
        n.add(node.id.clone(), seen);
    }
    Progress {
        digest: digest.to_string(),
        members: m,
        nodes: n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, cert: bool, status: NodeStatus) -> Node {
        let mut n = hoist_proto::format::samples::node_cert_key();
        n.id = id.into();
        if !cert {
            n.cert_key_sha256.clear();
        }
        n.status = status;
        n
    }

    #[test]
    fn a_rotation_is_complete_when_every_member_and_live_node_is_under_the_new_root() {
        let members = BTreeMap::from([
            (1, Ok("new".to_string())),
            (2, Ok("old".to_string())),
            (3, Err("connect 10.0.0.3:7000: refused".to_string())),
        ]);
        let nodes = [
            node("a", true, NodeStatus::Ready),
            node("b", true, NodeStatus::Ready),
            node("c", true, NodeStatus::Ready),
            // Down, or without a certificate (an agent before 0.3.0): not waited for.
            node("d", true, NodeStatus::Down),
            node("e", false, NodeStatus::Ready),
        ];
        let presented = HashMap::from([
            ("a".to_string(), "new".to_string()),
            ("b".to_string(), "old".to_string()),
        ]);
        let p = progress("4d", "new", &members, &nodes, &presented);
        assert!(!p.complete());
        assert_eq!((p.members.done, p.members.total), (1, 3));
        assert_eq!(p.members.waiting.keys().collect::<Vec<_>>(), [&2, &3]);
        assert!(p.members.waiting[&3].contains("refused"));
        assert_eq!((p.nodes.done, p.nodes.total), (1, 3));
        assert_eq!(p.nodes.waiting.keys().collect::<Vec<_>>(), ["b", "c"]);
        assert!(p.nodes.waiting["c"].contains("no heartbeat"));

        let members = BTreeMap::from([(1, Ok("new".to_string())), (2, Ok("new".to_string()))]);
        let presented = HashMap::from([
            ("a".to_string(), "new".to_string()),
            ("b".to_string(), "new".to_string()),
            ("c".to_string(), "new".to_string()),
        ]);
        let p = progress("4d", "new", &members, &nodes, &presented);
        assert!(p.complete(), "{p:?}");
        assert_eq!(p.nodes.total, 3);
    }

    #[test]
    fn the_tracker_keeps_the_last_root_each_node_presented() {
        let t = Tracker::default();
        t.node_presented("a", "old");
        t.node_presented("a", "new");
        t.node_presented("b", "old");
        let seen = t.nodes();
        assert_eq!(seen["a"], "new");
        assert_eq!(seen["b"], "old");
        assert!(t.progress().is_none());
        t.reset();
        assert!(
            t.nodes().is_empty(),
            "a finished rotation forgets what it saw"
        );
    }
}
