//! Specs an agent already holds, left out of its assignments.
//!
//! An assignments answer lists every task of the node with its service's spec. While a cluster
//! fills, each placement wakes its node's poll, and the answer repeats the spec of every task
//! the node already runs: the leader encodes O(tasks on the node) specs per placement, most of
//! its work for the answer. So a poll may name the specs it holds — those of the answer it
//! last took, by service and version — and that answer's Raft term; the leader then leaves out
//! each one it would send unchanged ([`crate::node::Assignment::spec_held`]), and the agent
//! fills them in from what it holds ([`fill`]).
//!
//! What makes a left-out spec the one a whole answer would carry (the leader's side is in the
//! controller's `api/agent.rs` and `state/spec_changes.rs`):
//!
//! - The same term means the same leader, one process whose state only moves forward, speaking
//!   the same format to this agent. Any other leader answers in full.
//! - The leader notes the Raft index of every change to a service's specs (a new version, a
//!   scale in place, a deletion, the cluster format raised, a snapshot installed). A spec is
//!   left out only when no change to its service is newer than the poll's `index`, which is
//!   at most the index of the answer the agent holds: the spec is as that answer had it.
//!
//! The query (`specs=NAME@VERSION,...&specs_term=T`) names at most [`HeldSpecs::MAX`] versions:
//! a node running more gets the others in full. Format 2; an older controller ignores both
//! parameters and answers in full.

use crate::node::Assignment;
use crate::service::ServiceSpec;
use std::collections::BTreeMap;

/// What a poll says it holds: service versions (sorted, without repeats) and the term of the
/// answer they came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeldSpecs {
    pub term: u64,
    versions: Vec<(String, u64)>,
}

impl HeldSpecs {
    /// The most versions a poll names (at most ~20 KiB of query with 63-byte names).
    pub const MAX: usize = 256;

    /// `versions` sorted and without repeats.
    fn new(term: u64, mut versions: Vec<(String, u64)>) -> HeldSpecs {
        versions.sort_unstable();
        versions.dedup();
        HeldSpecs { term, versions }
    }

    /// The specs of `tasks`, the answer of term `term` an agent took.
    pub fn of(term: u64, tasks: &[Assignment]) -> HeldSpecs {
        let versions = tasks.iter().map(|t| (t.service.clone(), t.service_version));
        HeldSpecs::from_versions(term, versions)
    }

    /// The specs of these service versions, from the answer of term `term` an agent took (one
    /// that keeps only which versions it holds, as the simulator's nodes do).
    pub fn from_versions(
        term: u64,
        versions: impl IntoIterator<Item = (String, u64)>,
    ) -> HeldSpecs {
        let mut held = HeldSpecs::new(term, versions.into_iter().collect());
        held.versions.truncate(Self::MAX);
        held
    }

    pub fn is_empty(&self) -> bool {
        self.versions.is_empty()
    }

    /// Whether the spec of `version` of `service` is held.
    pub fn holds(&self, service: &str, version: u64) -> bool {
        self.versions
            .binary_search_by(|(s, v)| (s.as_str(), *v).cmp(&(service, version)))
            .is_ok()
    }

    /// The `specs` parameter: `NAME@VERSION,...`.
    pub fn query(&self) -> String {
        let mut out = String::new();
        for (i, (service, version)) in self.versions.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(service);
            out.push('@');
            out.push_str(&version.to_string());
        }
        out
    }

    /// Reads a `specs` parameter (see [`HeldSpecs::query`]) said with `specs_term` `term`.
    pub fn parse(term: u64, text: &str) -> Result<HeldSpecs, String> {
        let mut versions = Vec::new();
        for item in text.split(',').filter(|i| !i.is_empty()) {
            let parsed = item
                .split_once('@')
                .filter(|(s, _)| !s.is_empty())
                .and_then(|(s, v)| Some((s.to_string(), v.parse::<u64>().ok()?)));
            let Some(pair) = parsed else {
                return Err(format!(
                    "specs: {item:?} is not SERVICE@VERSION (a version is a whole number)"
                ));
            };
            versions.push(pair);
        }
        if versions.len() > Self::MAX {
            return Err(format!(
                "specs: {} versions named, at most {} are read",
                versions.len(),
                Self::MAX
            ));
        }
        Ok(HeldSpecs::new(term, versions))
    }
}

/// Fills in the specs `tasks` left out ([`Assignment::spec_held`]) from `held`, the tasks of the
/// answer the poll named. Names the first service version `held` lacks: the answer cannot be
/// taken, and the agent should ask for a whole one (`index` 0, no `specs`).
pub fn fill(held: &[Assignment], tasks: &mut [Assignment]) -> Result<(), String> {
    if !tasks.iter().any(|t| t.spec_held) {
        return Ok(());
    }
    let specs: BTreeMap<(&str, u64), &ServiceSpec> = held
        .iter()
        .filter(|t| !t.spec_held)
        .map(|t| ((t.service.as_str(), t.service_version), &t.spec))
        .collect();
    for t in tasks.iter_mut().filter(|t| t.spec_held) {
        let Some(spec) = specs.get(&(t.service.as_str(), t.service_version)) else {
            return Err(format!(
                "the controller left out the spec of {}@{}, which this agent does not hold",
                t.service, t.service_version
            ));
        };
        t.spec = ServiceSpec::clone(spec);
        t.spec_held = false;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::TaskState;

    fn task(id: &str, service: &str, version: u64, image: &str) -> Assignment {
        Assignment {
            task_id: id.into(),
            service: service.into(),
            service_version: version,
            slot: 0,
            spec: ServiceSpec::new(service, image),
            desired: TaskState::Running,
            files: vec![],
            spec_held: false,
        }
    }

    fn held_out(mut t: Assignment) -> Assignment {
        t.spec = ServiceSpec::new(&t.service, "");
        t.spec_held = true;
        t
    }

    #[test]
    fn a_poll_names_each_version_once_and_reads_back_what_it_sent() {
        let tasks = [
            task("a", "web", 3, "nginx"),
            task("b", "api", 1, "api"),
            task("c", "web", 3, "nginx"),
            task("d", "web", 4, "nginx:2"),
        ];
        let held = HeldSpecs::of(7, &tasks);
        assert_eq!(held.query(), "api@1,web@3,web@4");
        assert!(held.holds("web", 3) && held.holds("web", 4) && held.holds("api", 1));
        assert!(!held.holds("web", 2) && !held.holds("db", 1));
        assert_eq!(HeldSpecs::parse(7, &held.query()).unwrap(), held);
        assert!(HeldSpecs::of(7, &[]).is_empty());
        assert_eq!(HeldSpecs::parse(7, "").unwrap(), HeldSpecs::of(7, &[]));
    }

    #[test]
    fn a_node_running_many_versions_names_at_most_max() {
        let tasks: Vec<_> = (0..HeldSpecs::MAX as u64 + 10)
            .map(|i| task(&i.to_string(), &format!("s{i:04}"), 1, "x"))
            .collect();
        let held = HeldSpecs::of(1, &tasks);
        assert!(held.holds("s0000", 1) && !held.holds("s0265", 1));
        assert_eq!(HeldSpecs::parse(1, &held.query()).unwrap(), held);
        let too_many = format!("{},x@1", held.query());
        let e = HeldSpecs::parse(1, &too_many).unwrap_err();
        assert!(e.contains("257 versions named, at most 256"), "{e}");
    }

    #[test]
    fn a_malformed_list_is_refused_naming_the_item() {
        for (text, item) in [
            ("web", "\"web\""),
            ("web@", "\"web@\""),
            ("@3", "\"@3\""),
            ("web@3,api@x", "\"api@x\""),
            ("web@-1", "\"web@-1\""),
        ] {
            let e = HeldSpecs::parse(1, text).unwrap_err();
            assert!(
                e.contains(item) && e.contains("SERVICE@VERSION"),
                "{text}: {e}"
            );
        }
    }

    #[test]
    fn left_out_specs_are_filled_in_from_the_answer_held() {
        let held = [task("a", "web", 3, "nginx"), task("b", "api", 1, "api")];
        let whole = [
            task("a", "web", 3, "nginx"),
            task("c", "web", 3, "nginx"),
            task("d", "db", 1, "postgres"),
        ];
        let mut answer = [
            held_out(whole[0].clone()),
            held_out(whole[1].clone()),
            whole[2].clone(),
        ];
        fill(&held, &mut answer).unwrap();
        assert_eq!(answer, whole);
    }

    #[test]
    fn a_spec_left_out_that_is_not_held_is_an_error() {
        let held = [task("a", "web", 3, "nginx")];
        let mut answer = [held_out(task("a", "web", 4, "nginx:2"))];
        let e = fill(&held, &mut answer).unwrap_err();
        assert!(e.contains("web@4"), "{e}");
    }
}
