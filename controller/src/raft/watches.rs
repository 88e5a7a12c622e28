//! Who to wake after an apply. Every agent keeps a long poll open for its assignments; waking
//! all of them on every commit (what a single "applied index" channel does) costs each commit
//! as many wake-ups, lock takes and answers as there are nodes, so at thousands of nodes an idle
//! cluster spends its CPU telling agents that nothing changed for them. Here a poll waits on its
//! own node's channel, which an apply signals only when that node's assignments changed, and on
//! the overlay's, signalled when any node's overlay record changed (every agent wires every
//! peer). The agents' endpoints watch (their DNS) waits on the endpoints' channel, signalled
//! when any service's endpoints changed. Polls also end when leadership moves
//! (`RaftNode::leadership_watch`).

use crate::state::Touched;
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::watch;

/// The channels of the polls in progress, by node, and the overlay's.
#[derive(Debug)]
pub struct Watches {
    nodes: Mutex<HashMap<String, watch::Sender<u64>>>,
    overlay: watch::Sender<u64>,
    endpoints: watch::Sender<u64>,
}

impl Default for Watches {
    fn default() -> Self {
        Watches {
            nodes: Mutex::default(),
            overlay: watch::Sender::new(0),
            endpoints: watch::Sender::new(0),
        }
    }
}

impl Watches {
    /// A receiver that changes when `node`'s assignments change (to the index they changed at).
    pub fn node(&self, node: &str) -> watch::Receiver<u64> {
        let mut nodes = self.nodes.lock().unwrap_or_else(|p| p.into_inner());
        match nodes.get(node) {
            Some(tx) => tx.subscribe(),
            None => {
                let (tx, rx) = watch::channel(0);
                nodes.insert(node.to_string(), tx);
                rx
            }
        }
    }

    /// A receiver that changes when any node's overlay record changes.
    pub fn overlay(&self) -> watch::Receiver<u64> {
        self.overlay.subscribe()
    }

    /// A receiver that changes when any service's endpoints change.
    pub fn endpoints(&self) -> watch::Receiver<u64> {
        self.endpoints.subscribe()
    }

    /// After applying up to `index`: wakes the polls of the touched nodes, every endpoints
    /// watch when endpoints changed, and every overlay poll when `overlay_changed`. A node's
    /// channel nobody listens to any more is dropped on the way.
    pub fn applied(&self, index: u64, touched: Touched, overlay_changed: bool) {
        if overlay_changed {
            self.overlay.send_replace(index);
        }
        if touched.endpoints {
            self.endpoints.send_replace(index);
        }
        if touched.nodes.is_empty() {
            return;
        }
        let mut nodes = self.nodes.lock().unwrap_or_else(|p| p.into_inner());
        for node in touched.nodes {
            if let Some(tx) = nodes.get(&node) {
                if tx.receiver_count() == 0 {
                    nodes.remove(&node);
                } else {
                    tx.send_replace(index);
                }
            }
        }
    }

    /// After a snapshot replaced the state: every poll looks again.
    pub fn everything_changed(&self, index: u64) {
        let mut nodes = self.nodes.lock().unwrap_or_else(|p| p.into_inner());
        nodes.retain(|_, tx| tx.receiver_count() > 0);
        for tx in nodes.values() {
            tx.send_replace(index);
        }
        self.overlay.send_replace(index);
        self.endpoints.send_replace(index);
    }

    /// How many nodes' channels are kept.
    #[cfg(test)]
    fn watched_nodes(&self) -> usize {
        self.nodes.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(ids: &[&str]) -> Touched {
        Touched {
            nodes: ids.iter().map(|s| s.to_string()).collect(),
            endpoints: false,
        }
    }

    #[test]
    fn only_the_touched_nodes_polls_wake() {
        let w = Watches::default();
        let mut a = w.node("a");
        let b = w.node("b");
        let overlay = w.overlay();
        let endpoints = w.endpoints();
        w.applied(7, nodes(&["a", "nobody-polls"]), false);
        assert!(a.has_changed().unwrap());
        assert_eq!(*a.borrow_and_update(), 7);
        assert!(!b.has_changed().unwrap());
        assert!(!overlay.has_changed().unwrap() && !endpoints.has_changed().unwrap());
        w.applied(8, nodes(&[]), true);
        assert!(overlay.has_changed().unwrap() && !a.has_changed().unwrap());
        w.applied(
            9,
            Touched {
                nodes: vec![],
                endpoints: true,
            },
            false,
        );
        assert!(endpoints.has_changed().unwrap() && !b.has_changed().unwrap());
        w.everything_changed(10);
        assert!(a.has_changed().unwrap() && b.has_changed().unwrap());
    }

    #[test]
    fn a_channel_nobody_listens_to_is_dropped_when_its_node_changes() {
        let w = Watches::default();
        drop(w.node("a"));
        let _b = w.node("b");
        assert_eq!(w.watched_nodes(), 2);
        w.applied(3, nodes(&["a", "b"]), false);
        assert_eq!(w.watched_nodes(), 1);
        drop(_b);
        w.everything_changed(4);
        assert_eq!(w.watched_nodes(), 0);
    }
}
