//! What changed in the services' endpoints, and when: what lets the leader answer an agent's
//! endpoints watch with only what changed since the answer the agent holds (`api/agent.rs`
//! `endpoints`, `hoist_proto::node::ServiceEndpoints::merge` for the agent's side).
//!
//! Two grains:
//!
//! - **By service.** The replicated `State::endpoints_index` says when each service's endpoints
//!   last changed, and keeps a removed service's entry (its removal is a change). That holds
//!   for every change a command makes, but not for a restored image: it brings the indexes of
//!   another time with endpoints that may differ from what an agent holds. A restore, an
//!   installed snapshot and a new format raise the floor (`State::everything_changed`); a poll
//!   that holds an answer at or below it is answered in full.
//! - **By replica.** A service's entry is every ready replica: a change to one replica of a
//!   service of 1,000 sent 1,000 addresses to every agent, and a fill or a rollout changes one
//!   replica after another (`bench/results/sim-watches-2026-12-06.md`). So each change is also
//!   noted here with the task it concerns, or as a change to the whole service (its virtual IP,
//!   its removal). An answer lists, for a service whose changes since the poll's index are all
//!   still kept, only the tasks they name. The newest `KEEP` changes are kept, across services;
//!   a poll older than the oldest falls back to whole services.
//!
//! Whole or in part, an answer of changes must list every service the agent does not hold:
//! those created since its index. `endpoints_index` does not say (a service is created without
//! a change to it, and a deleted service's entry stays), so each service's creation is noted
//! too.
//!
//! Derived and kept per process: neither encoded nor compared, like `spec_changes`. Persistent
//! (`imbl`), since every answer is built on a copy of the state.

use super::Map;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, Default)]
pub struct EndpointChanges {
    /// Every change at or before it may be unknown (a snapshot, a restore, a new format).
    floor: u64,
    /// The index of the newest change dropped from `recent`: an answer to a poll older than
    /// it cannot list the replicas changed since.
    dropped: u64,
    /// Oldest first, at most [`EndpointChanges::KEEP`].
    recent: imbl::Vector<Change>,
    /// The index each service was last created at (by this process's knowledge).
    created: Map<String, u64>,
}

#[derive(Debug, Clone)]
struct Change {
    index: u64,
    service: Box<str>,
    /// `None`: the whole service.
    task: Option<Box<str>>,
}

/// What changed after an index, by service: the tasks, or `None` when the whole service did.
pub type ChangedReplicas<'a> = BTreeMap<&'a str, Option<BTreeSet<&'a str>>>;

impl EndpointChanges {
    /// How many changes are kept, across services: about 1.3 MB at most. An agent asks at
    /// most once a second (`hoist_agent`'s endpoints watch), and a fill makes a few thousand
    /// replicas ready each second on this VM; an answer older than what is kept gets whole
    /// services.
    pub const KEEP: usize = 16_384;

    /// Everything may have changed at `index`.
    pub fn everything(&mut self, index: u64) {
        self.floor = self.floor.max(index);
        self.recent.clear();
        self.created.clear();
    }

    /// `service` was created at `index`: an agent holding an answer older than that holds
    /// none of it.
    pub fn created(&mut self, service: &str, index: u64) {
        self.created.insert(service.to_string(), index);
        self.service(service, index);
    }

    /// Whether `service` was created after `index`.
    pub fn created_after(&self, service: &str, index: u64) -> bool {
        self.created.get(service).is_some_and(|at| *at > index)
    }

    /// `task` of `service` entered, left or moved among its ready replicas at `index`.
    pub fn replica(&mut self, service: &str, task: &str, index: u64) {
        self.note(index, service, Some(task.into()));
    }

    /// Anything of `service` may have changed at `index` (its virtual IP, its ports, its
    /// removal).
    pub fn service(&mut self, service: &str, index: u64) {
        self.note(index, service, None);
    }

    fn note(&mut self, index: u64, service: &str, task: Option<Box<str>>) {
        if self.recent.len() == Self::KEEP {
            if let Some(oldest) = self.recent.pop_front() {
                self.dropped = self.dropped.max(oldest.index);
            }
        }
        self.recent.push_back(Change {
            index,
            service: service.into(),
            task,
        });
    }

    /// Drops every change kept, as if more than [`EndpointChanges::KEEP`] had come since (for
    /// tests).
    #[cfg(test)]
    pub fn forget(&mut self) {
        if let Some(newest) = self.recent.back() {
            self.dropped = self.dropped.max(newest.index);
        }
        self.recent.clear();
    }

    /// Whether an answer at `index` can be brought up to date with the services whose
    /// `endpoints_index` is newer than it.
    pub fn known_since(&self, index: u64) -> bool {
        index > self.floor
    }

    /// The replicas changed after `index`, by service; `None` when not every change after it
    /// is kept (whole services are needed). As many steps as there were changes since.
    pub fn after(&self, index: u64) -> Option<ChangedReplicas<'_>> {
        if !self.known_since(index) || index < self.dropped {
            return None;
        }
        let mut changed = ChangedReplicas::new();
        let newer = self.recent.iter().rev().take_while(|c| c.index > index);
        for c in newer {
            let entry = changed
                .entry(&*c.service)
                .or_insert_with(|| Some(BTreeSet::new()));
            match (entry, &c.task) {
                (Some(tasks), Some(task)) => {
                    tasks.insert(task);
                }
                (entry, _) => *entry = None,
            }
        }
        Some(changed)
    }
}

impl PartialEq for EndpointChanges {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for EndpointChanges {}

#[cfg(test)]
mod tests {
    use super::*;

    fn tasks<'a>(ids: &[&'a str]) -> Option<BTreeSet<&'a str>> {
        Some(ids.iter().copied().collect())
    }

    #[test]
    fn the_replicas_changed_after_an_index_by_service() {
        let mut c = EndpointChanges::default();
        c.replica("web", "w1", 5);
        c.replica("web", "w2", 7);
        c.replica("web", "w1", 8);
        c.replica("api", "a1", 8);
        c.service("db", 9);
        c.replica("db", "d1", 10);
        let after = c.after(6).expect("all kept");
        assert_eq!(
            after,
            ChangedReplicas::from([
                ("web", tasks(&["w1", "w2"])),
                ("api", tasks(&["a1"])),
                ("db", None),
            ])
        );
        assert_eq!(c.after(4).expect("all kept")["web"], tasks(&["w1", "w2"]));
        assert_eq!(c.after(10), Some(ChangedReplicas::new()));
        // A change to the whole service after the index wins over its replicas'.
        assert_eq!(c.after(9).expect("all kept")["db"], tasks(&["d1"]));
    }

    #[test]
    fn what_is_not_kept_any_more_asks_for_whole_services() {
        let mut c = EndpointChanges::default();
        for i in 0..EndpointChanges::KEEP as u64 {
            c.replica("web", &format!("w{i}"), 10 + i / 2);
        }
        assert!(c.after(9).is_some());
        // One more drops one of the two changes at index 10: a poll at 9 would miss it, one
        // at 10 held both.
        c.replica("web", "x", 20_000);
        assert_eq!(c.after(9), None);
        assert!(c.after(10).expect("kept")["web"]
            .as_ref()
            .is_some_and(|t| t.contains("w2") && !t.contains("w1")));
        // A snapshot or a restore: nothing at or below it is known.
        c.everything(30_000);
        assert_eq!(c.after(20_000), None);
        assert!(!c.known_since(30_000) && c.known_since(30_001));
        assert_eq!(c.after(30_000), None);
        assert_eq!(c.after(30_001), Some(ChangedReplicas::new()));
    }
}
