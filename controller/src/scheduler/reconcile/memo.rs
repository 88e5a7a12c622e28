//! What the leader's reconciliation remembers between passes: the services a pass left with
//! nothing to do, and what their answer depended on.
//!
//! A service's answer is a function of its record (spec and history), its rollout, its tasks,
//! the nodes, the cluster format, the clock, and — only when it has slots to place — the usage of
//! the nodes. Most passes at scale find most services converged, and reading every service's
//! tasks to find that again was the pass's whole cost (35–40 ms at 100,000 tasks, so about
//! 0.4 s at 1,000,000, on every pass). So a service
//! whose last answer was empty (or only "pending") is skipped while all of these are as they
//! were:
//!
//! - its record and rollout, compared by value (a few fields: the specs are shared `Arc`s, which
//!   compare by pointer first);
//! - its tasks, by the stamp the task table puts on a service at any change to them
//!   (`state/task_table.rs`);
//! - the nodes: a replicated service with nothing to place reads only the nodes its tasks are
//!   on, so a change to some nodes (found by diffing the state's map against the copy kept here,
//!   which costs what changed) forgets the services with tasks on them, every global service
//!   and every service with pending slots; a change of the cluster format forgets everything;
//! - the clock, below the earliest time the pass noted at which time alone changes the answer (a
//!   monitor window, a restart delay or an update delay ending);
//! - for a service with slots it could not place: the usage its placement saw, by pointer.
//!
//! A service that planned anything is run again next pass: its plan changes the state, or was
//! refused and must be made again. The reconcile tests check every pass against a whole one.

use super::Runs;
use crate::scheduler::feasible::NodeUsage;
use crate::state::{Map, ServiceRecord, State};
use hoist_proto::cluster::{Node, Rollout};
use hoist_proto::service::ServiceMode;
use imbl::ordmap::DiffItem;
use std::collections::{HashMap, HashSet};

/// A service the last pass that ran it left with nothing to plan.
#[derive(Debug)]
pub(super) struct Quiet {
    pub record: ServiceRecord,
    pub rollout: Option<Rollout>,
    /// The stamp of its tasks then.
    pub tasks: Option<u64>,
    /// Until when time alone does not change its answer.
    pub until_ms: u64,
    /// The slots it could not place, and why, with the nodes' usage its placement saw.
    pub pending: Option<(Runs, Map<String, NodeUsage>)>,
}

impl Quiet {
    /// Whether its answer holds with `usage` as the pass has it now: always for a service with
    /// nothing to place; for one with pending slots, only with the usage its placement saw.
    pub fn holds_with(&self, usage: &Map<String, NodeUsage>) -> bool {
        self.pending.as_ref().is_none_or(|(_, u)| u.ptr_eq(usage))
    }
}

#[derive(Debug, Default)]
pub(super) struct Memo {
    /// The nodes the remembered services were reconciled against.
    nodes: Map<String, Node>,
    format: u32,
    quiet: HashMap<String, Quiet>,
}

impl Memo {
    /// Starts a pass on `state`: forgets what a change of nodes or of the format may concern.
    pub fn begin(&mut self, state: &State) {
        if self.format != state.cluster_format {
            self.quiet.clear();
        } else if !self.quiet.is_empty() && !self.nodes.ptr_eq(&state.nodes) {
            let mut concerned: HashSet<&str> = HashSet::new();
            for d in self.nodes.diff(&state.nodes) {
                let node = match d {
                    DiffItem::Add(id, _) | DiffItem::Remove(id, _) => id,
                    DiffItem::Update { new: (id, _), .. } => id,
                };
                concerned.extend(state.tasks.on_node(node).map(|t| t.service.as_str()));
            }
            self.quiet.retain(|service, q| {
                let global = q.record.current().spec.mode == ServiceMode::Global;
                !global && q.pending.is_none() && !concerned.contains(service.as_str())
            });
        }
        self.nodes = state.nodes.clone();
        self.format = state.cluster_format;
    }

    /// `service` as the last pass that ran it left it, if none of its inputs changed since but
    /// perhaps the usage (see [`Quiet::holds_with`]).
    pub fn quiet(
        &self,
        service: &str,
        record: &ServiceRecord,
        rollout: Option<&Rollout>,
        tasks: Option<u64>,
        now: u64,
    ) -> Option<&Quiet> {
        let q = self.quiet.get(service)?;
        let same = now < q.until_ms
            && q.tasks == tasks
            && q.rollout.as_ref() == rollout
            && q.record == *record;
        same.then_some(q)
    }

    pub fn note(&mut self, service: &str, quiet: Quiet) {
        self.quiet.insert(service.to_string(), quiet);
    }

    pub fn forget(&mut self, service: &str) {
        self.quiet.remove(service);
    }

    /// The services remembered as quiet, in order (for tests).
    #[cfg(test)]
    pub fn quiet_services(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.quiet.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    /// Ends a pass: services gone from `state` are forgotten once the memo holds more than the
    /// state's services (so it never holds more than twice as many, and most passes pay nothing).
    pub fn end(&mut self, state: &State) {
        if self.quiet.len() > state.services.len() {
            self.quiet.retain(|s, _| state.services.contains_key(s));
        }
    }
}
