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
//!   noted here with the task it concerns and what the task is after it (a ready replica with
//!   its address, or not one), or as a change to the whole service (its virtual IP, its
//!   removal, its creation). An answer lists, for a service whose changes since the poll's
//!   index are all still kept, the newest of each task's changes: no lookup in the task table
//!   (those lookups and the ordered maps built around them took about a third of the leader's
//!   samples during a fill of 1,000 nodes with their watches). The newest `KEEP` changes are kept, across services; a poll older than the oldest
//!   falls back to whole services.
//!
//! Whole or in part, an answer of changes must list every service the agent does not hold:
//! those created since its index. `endpoints_index` does not say (a service is created without
//! a change to it, and a deleted service's entry stays), so each service's creation is noted
//! too.
//!
//! Derived and kept per process: neither encoded nor compared, like `spec_changes`. Persistent
//! (`imbl`), since every answer is built on a copy of the state.

use super::Map;
use hoist_proto::node::ReplicaAddress;
use std::collections::{BTreeMap, HashMap};

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
    what: What,
}

#[derive(Debug, Clone)]
enum What {
    /// Anything of the service.
    Service,
    /// A task as it is after the change: a ready replica, or the id of one that is not.
    Replica(Result<ReplicaAddress, Box<str>>),
}

/// What changed after an index, by service: each changed task as it is now (`None`: not a
/// ready replica any more), or `None` when the whole service changed.
pub type ChangedReplicas<'a> =
    BTreeMap<&'a str, Option<HashMap<&'a str, Option<&'a ReplicaAddress>>>>;

impl EndpointChanges {
    /// How many changes are kept, across services: about 3.4 MB at most (estimated from an
    /// entry's size with its replica's strings, not profiled). An agent asks at most every
    /// `pace_ms` (1 s at 2,000 nodes), and a fill makes a few thousand replicas ready each
    /// second on this VM; an answer older than what is kept gets whole services.
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

    /// `task` of `service` entered, left or moved among its ready replicas at `index`: it is
    /// `now` (`None`: not a ready replica).
    pub fn replica(&mut self, service: &str, task: &str, now: Option<ReplicaAddress>, index: u64) {
        let now = now.ok_or_else(|| task.into());
        self.note(index, service, What::Replica(now));
    }

    /// Anything of `service` may have changed at `index` (its virtual IP, its ports, its
    /// removal).
    pub fn service(&mut self, service: &str, index: u64) {
        self.note(index, service, What::Service);
    }

    fn note(&mut self, index: u64, service: &str, what: What) {
        if self.recent.len() == Self::KEEP {
            if let Some(oldest) = self.recent.pop_front() {
                self.dropped = self.dropped.max(oldest.index);
            }
        }
        self.recent.push_back(Change {
            index,
            service: service.into(),
            what,
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

    /// At or below which index changes may be unknown: raised by a restore, an installed
    /// snapshot or a new format, after which an index no longer names the same table.
    pub fn floor(&self) -> u64 {
        self.floor
    }

    /// Whether an answer at `index` can be brought up to date with the services whose
    /// `endpoints_index` is newer than it.
    pub fn known_since(&self, index: u64) -> bool {
        index > self.floor
    }

    /// The replicas changed after `index`, by service, each as its newest change left it;
    /// `None` when not every change after it is kept (whole services are needed). As many
    /// steps as there were changes since.
    pub fn after(&self, index: u64) -> Option<ChangedReplicas<'_>> {
        if !self.known_since(index) || index < self.dropped {
            return None;
        }
        let mut changed = ChangedReplicas::new();
        // Newest first: a task's first change seen is where it stands.
        let newer = self.recent.iter().rev().take_while(|c| c.index > index);
        for c in newer {
            let entry = changed
                .entry(&*c.service)
                .or_insert_with(|| Some(HashMap::new()));
            match (entry, &c.what) {
                (Some(tasks), What::Replica(now)) => {
                    let (task, now) = match now {
                        Ok(r) => (r.task.as_str(), Some(r)),
                        Err(task) => (&**task, None),
                    };
                    tasks.entry(task).or_insert(now);
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

    fn ready(task: &str, address: &str) -> Option<ReplicaAddress> {
        Some(ReplicaAddress {
            slot: 0,
            task: task.into(),
            node: "n1".into(),
            address: address.into(),
        })
    }

    /// The changed tasks of `service` as `(task, address or "-")`, sorted.
    fn tasks(c: &ChangedReplicas<'_>, service: &str) -> Option<Vec<(String, String)>> {
        let tasks = c.get(service)?.as_ref()?;
        let mut v: Vec<(String, String)> = tasks
            .iter()
            .map(|(t, r)| (t.to_string(), r.map_or("-".into(), |r| r.address.clone())))
            .collect();
        v.sort();
        Some(v)
    }

    fn pairs(v: &[(&str, &str)]) -> Option<Vec<(String, String)>> {
        Some(
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
        )
    }

    #[test]
    fn the_replicas_changed_after_an_index_by_service_as_they_are_now() {
        let mut c = EndpointChanges::default();
        c.replica("web", "w1", ready("w1", "10.0.0.1"), 5);
        c.replica("web", "w2", ready("w2", "10.0.0.2"), 7);
        c.replica("web", "w1", None, 8);
        c.replica("api", "a1", ready("a1", "10.0.1.1"), 8);
        c.service("db", 9);
        c.replica("db", "d1", ready("d1", "10.0.2.1"), 10);
        let after = c.after(6).expect("all kept");
        assert_eq!(
            tasks(&after, "web"),
            pairs(&[("w1", "-"), ("w2", "10.0.0.2")])
        );
        assert_eq!(tasks(&after, "api"), pairs(&[("a1", "10.0.1.1")]));
        assert_eq!(after.get("db"), Some(&None), "changed as a whole");
        assert_eq!(after.len(), 3);
        // Older: w1 ready at 5 and gone at 8 is gone.
        assert_eq!(
            tasks(&c.after(4).expect("all kept"), "web"),
            tasks(&after, "web")
        );
        assert_eq!(c.after(10).expect("all kept").len(), 0);
        // A change to the whole service before the index does not count.
        assert_eq!(
            tasks(&c.after(9).expect("all kept"), "db"),
            pairs(&[("d1", "10.0.2.1")])
        );
    }

    #[test]
    fn what_is_not_kept_any_more_asks_for_whole_services() {
        let mut c = EndpointChanges::default();
        for i in 0..EndpointChanges::KEEP as u64 {
            c.replica("web", &format!("w{i}"), None, 10 + i / 2);
        }
        assert!(c.after(9).is_some());
        // One more drops one of the two changes at index 10: a poll at 9 would miss it, one
        // at 10 held both.
        c.replica("web", "x", None, 20_000);
        assert!(c.after(9).is_none());
        let after10 = c.after(10).expect("kept");
        let web = after10["web"].as_ref().expect("by replica");
        assert!(web.contains_key("w2") && !web.contains_key("w1"));
        // A snapshot or a restore: nothing at or below it is known.
        c.everything(30_000);
        assert!(c.after(20_000).is_none());
        assert!(!c.known_since(30_000) && c.known_since(30_001));
        assert!(c.after(30_000).is_none());
        assert_eq!(c.after(30_001).map(|a| a.len()), Some(0));
    }
}
