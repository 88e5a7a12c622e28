//! Which of a node's tasks changed what its agent is sent, and when: what lets the leader answer
//! a poll with only the tasks that changed since the answer the agent holds (`api/agent.rs`, and
//! `hoist_proto::held_tasks` for the agent's side).
//!
//! A poll is woken by one new task on its node, yet a whole answer lists every task of the node:
//! while a cluster fills, each placement costs the leader O(tasks on the node) entries to build,
//! encode and send, and every overlay change (a node joining) as much on every node. An agent
//! that holds the answer at index `I` holds each task as it was then; a task is the same now
//! when nothing changed it after `I`. What changes a task's entry: its placement, its desired
//! state, its service version (a scale in place), a new version of a secret or config it reads,
//! its removal; the node registered again changes all of them. Each is noted here at its index;
//! what changes a spec is in [`super::SpecChanges`].
//!
//! Each node keeps its newest [`AssignmentChanges::KEEP`] changes, the task ids hashed (a
//! collision only sends a task that did not change). An answer to a poll older than what a node
//! keeps is whole, as is any after a snapshot, a restore or a new cluster format.
//!
//! Derived and kept per process, like [`super::SpecChanges`]: neither encoded nor compared, and
//! used by the leader only for polls whose held answer it gave in its current term.

use super::Map;
use std::collections::VecDeque;
use std::hash::{Hash, Hasher};

#[derive(Debug, Clone, Default)]
pub struct AssignmentChanges {
    /// Every change at or before it may be unnoted (a snapshot, a restore, a new format).
    floor: u64,
    by_node: Map<String, NodeChanges>,
}

/// One node's newest changes.
#[derive(Debug, Clone, Default)]
struct NodeChanges {
    /// Every change of this node at or before it may be unnoted.
    floor: u64,
    /// `(index, hash of the task id)`, oldest first, at most [`AssignmentChanges::KEEP`].
    recent: VecDeque<(u64, u64)>,
}

/// The tasks of a node changed after some index, as [`AssignmentChanges::after`] answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed(Vec<u64>);

impl Changed {
    /// Whether `task` may have changed.
    pub fn contains(&self, task: &str) -> bool {
        self.0.contains(&id_hash(task))
    }
}

impl AssignmentChanges {
    /// How many changes each node keeps. A poll is usually answered a change or a few after the
    /// answer it holds; more changes to one node between two of its polls (a large plan) get a
    /// whole answer.
    pub const KEEP: usize = 64;

    /// `task` on `node` changed at `index`.
    pub fn task(&mut self, node: &str, task: &str, index: u64) {
        let changes = match self.by_node.get_mut(node) {
            Some(c) => c,
            None => {
                self.by_node
                    .insert(node.to_string(), NodeChanges::default());
                self.by_node.get_mut(node).expect("just inserted")
            }
        };
        if changes.recent.len() == Self::KEEP {
            if let Some((dropped, _)) = changes.recent.pop_front() {
                changes.floor = changes.floor.max(dropped);
            }
        }
        changes.recent.push_back((index, id_hash(task)));
    }

    /// Every task on `node` may have changed at `index`.
    pub fn node(&mut self, node: &str, index: u64) {
        self.by_node.insert(
            node.to_string(),
            NodeChanges {
                floor: index,
                recent: VecDeque::new(),
            },
        );
    }

    /// Everything may have changed at `index`.
    pub fn everything(&mut self, index: u64) {
        self.floor = self.floor.max(index);
        self.by_node = Map::default();
    }

    /// The tasks of `node` changed after `index`; `None` when not every change after it is
    /// noted (a whole answer is needed).
    pub fn after(&self, node: &str, index: u64) -> Option<Changed> {
        let (floor, recent) = match self.by_node.get(node) {
            Some(c) => (c.floor.max(self.floor), &c.recent),
            None => (self.floor, &VecDeque::new()),
        };
        if index == 0 || floor > index {
            return None;
        }
        let newer = recent.iter().rev().take_while(|(at, _)| *at > index);
        Some(Changed(newer.map(|(_, id)| *id).collect()))
    }
}

fn id_hash(task: &str) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    task.hash(&mut h);
    h.finish()
}

impl PartialEq for AssignmentChanges {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for AssignmentChanges {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_tells_the_tasks_changed_after_an_index() {
        let mut c = AssignmentChanges::default();
        c.task("a", "t1", 5);
        c.task("a", "t2", 7);
        c.task("b", "t3", 8);
        let after5 = c.after("a", 5).expect("all noted");
        assert!(after5.contains("t2") && !after5.contains("t1") && !after5.contains("t3"));
        assert_eq!(c.after("a", 7), Some(Changed(vec![])));
        assert!(c.after("a", 4).expect("all noted").contains("t1"));
        // A node nothing was noted for: nothing changed since the floor.
        assert_eq!(c.after("z", 3), Some(Changed(vec![])));
        // Index 0 holds nothing.
        assert_eq!(c.after("a", 0), None);
    }

    #[test]
    fn what_is_not_kept_any_more_asks_for_a_whole_answer() {
        let mut c = AssignmentChanges::default();
        for i in 0..=AssignmentChanges::KEEP as u64 {
            c.task("a", &format!("t{i}"), 10 + i);
        }
        // The change at 10 was dropped: a poll at 9 cannot be told what changed.
        assert_eq!(c.after("a", 9), None);
        assert!(c.after("a", 10).expect("kept").contains("t1"));

        c.node("a", 100);
        assert_eq!(c.after("a", 99), None, "the node registered again");
        assert_eq!(c.after("a", 100), Some(Changed(vec![])));

        c.task("b", "t", 120);
        c.everything(150);
        assert_eq!(
            c.after("b", 149),
            None,
            "a snapshot, a restore, a new format"
        );
        assert_eq!(c.after("z", 149), None);
        assert_eq!(c.after("b", 150), Some(Changed(vec![])));
    }
}
