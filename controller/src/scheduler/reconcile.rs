//! Reconciliation: compares what the services want with the tasks that exist and answers a
//! [`Plan`]: tasks to stop (on down or drained nodes, failed, unhealthy, scaled away, replaced by
//! a rolling update), ended tasks to file away, new tasks to place, and rollout progress. Pure:
//! the leader calls it on a snapshot with its clock and an id source, and commits the plan.
//!
//! The leader keeps a [`Reconciler`] across passes: it remembers which services a pass left with
//! nothing to do, and skips them in the next while nothing they depend on changed (`memo.rs`).
//! So a pass over a converged cluster costs a few steps per service, not per task.

mod memo;

use super::feasible::{check, Demand, NodeUsage};
use super::rank::place;
use crate::state::{same_run_spec, Map, State};
use hoist_proto::cluster::{
    CompactString, Node, NodeAvailability, NodeStatus, Rollout, RolloutState, Task, TaskState,
};
use hoist_proto::node::Health;
use hoist_proto::quantity::{parse_duration_ms, parse_ratio_permille, Quantity};
use hoist_proto::raft::Plan;
use hoist_proto::service::{
    FailureAction, RestartCondition, ServiceMode, ServiceSpec, UpdateOrder,
};
use memo::{Memo, Quiet};
use std::cell::{Cell, OnceCell};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Range;
use std::sync::Arc;

/// Per service: unplaced slots and why, as runs of consecutive slots with one shared reason (a
/// service of a thousand replicas that fit nowhere is one run, not a thousand entries, on every
/// reconciliation).
pub type Pending = BTreeMap<String, Runs>;

/// One service's unplaced slots: runs of consecutive slots and their reason.
pub type Runs = Vec<(Range<u64>, Arc<str>)>;

/// Adds `slot` to `runs`, extending the last run when it is the next slot for the same reason.
fn push_pending(runs: &mut Runs, slot: u64, why: &Arc<str>) {
    if let Some((r, w)) = runs.last_mut() {
        if r.end == slot && (Arc::ptr_eq(w, why) || **w == **why) {
            r.end += 1;
            return;
        }
    }
    runs.push((slot..slot + 1, why.clone()));
}

/// What one reconciliation decided.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reconciled {
    pub plan: Plan,
    /// Slots that could not be placed, per service, with the reason per node.
    pub pending: Pending,
    /// Automatic rollbacks to propose: service, version to copy, and the rollout to record for
    /// the version the rollback makes.
    pub rollbacks: Vec<(String, u64, Rollout)>,
}

impl Reconciled {
    /// How many entries the plan and the rollbacks hold (a service that adds none found
    /// nothing to do).
    fn planned(&self) -> usize {
        let p = &self.plan;
        p.place.len()
            + p.stop.len()
            + p.drain.len()
            + p.remove.len()
            + p.rollouts.len()
            + self.rollbacks.len()
    }

    /// Whether there is anything to commit.
    pub fn is_empty(&self) -> bool {
        let p = &self.plan;
        p.place.is_empty()
            && p.stop.is_empty()
            && p.drain.is_empty()
            && p.remove.is_empty()
            && p.rollouts.is_empty()
            && self.rollbacks.is_empty()
    }
}

/// The slot of a global service's replica on `node`: a stable hash of the node id (53 bits, so
/// JSON clients read it exactly).
pub fn global_slot(node: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in node.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h & ((1 << 53) - 1)
}

/// Whether `failures` of an update's `total` new replicas stay within `update.max_failure_ratio`
/// (absent or invalid: 0, so the first failure acts, as in Swarm).
fn within_failure_ratio(failures: u64, total: u64, ratio: &Option<Quantity>) -> bool {
    let permille = ratio
        .as_ref()
        .and_then(|r| parse_ratio_permille(r.as_str()))
        .unwrap_or(0);
    failures.saturating_mul(1000) <= permille.saturating_mul(total)
}

fn ms(text: &str, default: u64) -> u64 {
    parse_duration_ms(text).unwrap_or(default)
}

/// The state's nodes as a pass reads them, each form built on first use: a pass that skips every
/// service reads none.
struct Nodes<'a> {
    state: &'a State,
    /// In id order, for ranking and for global services.
    list: OnceCell<Vec<&'a Node>>,
    /// By id, for the lookups a pass makes per task: hashing an id costs less than walking the
    /// state's B-tree comparing ids (the pass's largest cost at 100,000 tasks).
    by_id: OnceCell<HashMap<&'a str, &'a Node>>,
}

impl<'a> Nodes<'a> {
    fn new(state: &'a State) -> Nodes<'a> {
        Nodes {
            state,
            list: OnceCell::new(),
            by_id: OnceCell::new(),
        }
    }

    fn list(&self) -> &[&'a Node] {
        self.list
            .get_or_init(|| self.state.nodes.values().collect())
    }

    fn get(&self, id: &str) -> Option<&'a Node> {
        let by_id = self.by_id.get_or_init(|| {
            let nodes = &self.state.nodes;
            nodes.iter().map(|(id, n)| (id.as_str(), n)).collect()
        });
        by_id.get(id).copied()
    }

    /// A node that is up.
    fn is_up(&self, id: &str) -> bool {
        self.get(id).is_some_and(|n| n.status == NodeStatus::Ready)
    }
}

/// The slots a service should fill: `0..replicas` for a replicated service (kept as a count, so a
/// service of many unplaceable replicas costs no map per reconciliation), one slot per eligible
/// node for a global one.
enum Wanted<'n> {
    Replicated(u64),
    Global(BTreeMap<u64, &'n Node>),
}

impl<'n> Wanted<'n> {
    fn contains(&self, slot: u64) -> bool {
        match self {
            Wanted::Replicated(n) => slot < *n,
            Wanted::Global(m) => m.contains_key(&slot),
        }
    }

    fn len(&self) -> u64 {
        match self {
            Wanted::Replicated(n) => *n,
            Wanted::Global(m) => m.len() as u64,
        }
    }

    /// The slots in ascending order.
    fn slots(&self) -> impl Iterator<Item = u64> + '_ {
        let (count, nodes) = match self {
            Wanted::Replicated(n) => (*n, None),
            Wanted::Global(m) => (0, Some(m.keys().copied())),
        };
        (0..count).chain(nodes.into_iter().flatten())
    }

    /// The node a global service's slot belongs to.
    fn node(&self, slot: u64) -> Option<&'n Node> {
        match self {
            Wanted::Replicated(_) => None,
            Wanted::Global(m) => m.get(&slot).copied(),
        }
    }
}

/// Reconciles every service; `new_id` names new tasks. A whole pass, remembering nothing: the
/// leader keeps a [`Reconciler`] instead.
pub fn reconcile(state: &State, now: u64, new_id: &mut dyn FnMut() -> String) -> Reconciled {
    Reconciler::default().pass(state, now, new_id)
}

/// Reconciliation that remembers, between passes, the services it left with nothing to do. A
/// pass answers what [`reconcile`] answers on the same state at the same time; it only skips
/// the services whose answer it already knows.
#[derive(Debug, Default)]
pub struct Reconciler {
    memo: Memo,
    /// The services the last pass ran (for tests).
    #[cfg(test)]
    ran: Vec<String>,
}

impl Reconciler {
    /// Reconciles every service that may have something to do; `new_id` names new tasks.
    pub fn pass(
        &mut self,
        state: &State,
        now: u64,
        new_id: &mut dyn FnMut() -> String,
    ) -> Reconciled {
        let mut out = Reconciled::default();
        let nodes = Nodes::new(state);
        // The state keeps each node's usage as its tasks change (`state/usage.rs`): a copy costs
        // O(1), and placing below copies only the paths to the nodes it fills.
        let mut usage = state.node_usage().clone();
        #[cfg(test)]
        if let Err(e) = state.usage_is_exact() {
            panic!("a test changed tasks without State::rebuild_usage: {e}");
        }
        self.memo.begin(state);
        #[cfg(test)]
        self.ran.clear();
        // Tasks whose service is gone, found through the index of services holding tasks.
        let deleted = state
            .tasks
            .services()
            .filter(|s| !state.services.contains_key(*s));
        for t in deleted.flat_map(|s| state.tasks.of_service(s)) {
            if t.desired == TaskState::Running {
                out.plan
                    .stop
                    .push((t.id.to_string(), "service deleted".into()));
            } else if t.state.is_terminal() || !nodes.is_up(&t.node) {
                out.plan.remove.push(t.id.to_string());
            }
        }
        // When most of the cluster's tasks belong to services that run again (the first pass,
        // or after a node changed), one scan grouping every task costs less than a lookup by id
        // per task.
        let quiet = |name: &str, record| {
            let rollout = state.rollouts.get(name);
            let stamp = state.tasks.stamp_of(name);
            self.memo.quiet(name, record, rollout, stamp, now).is_some()
        };
        let to_run: usize = (state.services.iter())
            .filter(|(name, record)| !quiet(name, record))
            .map(|(name, _)| state.tasks.count_of(name))
            .sum();
        let grouped = (to_run * 2 > state.tasks.len()).then(|| {
            let mut by_service: HashMap<&str, Vec<&Task>> = HashMap::new();
            for t in state.tasks.values() {
                by_service.entry(t.service.as_str()).or_default().push(t);
            }
            by_service
        });
        for (name, record) in &state.services {
            let rollout = state.rollouts.get(name);
            let tasks_stamp = state.tasks.stamp_of(name);
            let quiet = self.memo.quiet(name, record, rollout, tasks_stamp, now);
            if let Some(q) = quiet.filter(|q| q.holds_with(&usage)) {
                if let Some((runs, _)) = &q.pending {
                    out.pending.insert(name.clone(), runs.clone());
                }
                continue;
            }
            #[cfg(test)]
            self.ran.push(name.clone());
            let planned = out.planned();
            let usage_before = usage.clone();
            let cur = record.current();
            let looked_up: Vec<&Task>;
            let tasks: &[&Task] = match &grouped {
                Some(g) => g.get(name.as_str()).map_or(&[], Vec::as_slice),
                None => {
                    looked_up = state.tasks.of_service(name).collect();
                    &looked_up
                }
            };
            let mut svc = ServiceRun {
                state,
                name,
                spec: &cur.spec,
                version: cur.version,
                now,
                out: &mut out,
                nodes: &nodes,
                monitor_ms: ms(&cur.spec.update.monitor, 5_000),
                usage: &mut usage,
                wake_ms: Cell::new(u64::MAX),
            };
            svc.run(tasks, new_id);
            let wake_ms = svc.wake_ms.get();
            if out.planned() == planned {
                let pending = out.pending.get(name.as_str()).cloned();
                self.memo.note(
                    name,
                    Quiet {
                        record: record.clone(),
                        rollout: rollout.cloned(),
                        tasks: tasks_stamp,
                        until_ms: wake_ms,
                        pending: pending.map(|runs| (runs, usage_before)),
                    },
                );
            } else {
                self.memo.forget(name);
            }
        }
        self.memo.end(state);
        out
    }
}

struct ServiceRun<'a, 's> {
    state: &'a State,
    name: &'a str,
    spec: &'a ServiceSpec,
    version: u64,
    now: u64,
    out: &'a mut Reconciled,
    nodes: &'a Nodes<'s>,
    /// `update.monitor`, parsed once per pass.
    monitor_ms: u64,
    usage: &'a mut Map<String, NodeUsage>,
    /// The earliest time at which the passing of time alone could change this service's answer
    /// (a monitor window, a restart delay or an update delay ending): until then, unchanged
    /// inputs give the same answer.
    wake_ms: Cell<u64>,
}

impl ServiceRun<'_, '_> {
    fn is_current(&self, t: &Task) -> bool {
        t.service_version == self.version
            || (self
                .state
                .spec_of(&t.service, t.service_version)
                .is_some_and(|s| same_run_spec(s, self.spec))
                && !self.state.restarted_since(&t.service, t.service_version))
    }

    /// Notes a time at which this service's answer may change.
    fn wake_at(&self, ms: u64) {
        self.wake_ms.set(self.wake_ms.get().min(ms));
    }

    fn monitored(&self, t: &Task) -> bool {
        let Some(since) = t.ready_since_ms.filter(|_| t.is_ready()) else {
            return false;
        };
        let passed = since + self.monitor_ms;
        if self.now < passed {
            self.wake_at(passed);
        }
        self.now >= passed
    }

    /// Whether `t` is a replica of the version a rollout in progress is bringing in.
    fn updating(&self, rollout: Option<&Rollout>, t: &Task) -> bool {
        rollout.is_some_and(|r| {
            r.version == t.service_version
                && matches!(r.state, RolloutState::Updating | RolloutState::RollingBack)
        })
    }

    /// When `t` passed (or will pass) its monitor window.
    fn monitor_passed_ms(&self, t: &Task) -> u64 {
        t.ready_since_ms.map_or(0, |s| s + self.monitor_ms)
    }

    fn stop(&mut self, t: &Task, why: String) {
        self.out.plan.stop.push((t.id.to_string(), why));
    }

    /// An empty slot gets a new task, unless its last one failed within the restart delay.
    fn fill(&mut self, slot: u64, backoff: &BTreeSet<u64>, missing: &mut Vec<u64>) {
        if backoff.contains(&slot) {
            let runs = self.out.pending.entry(self.name.to_string()).or_default();
            push_pending(
                runs,
                slot,
                &Arc::from("waiting restart delay after a failure"),
            );
        } else {
            missing.push(slot);
        }
    }

    fn run(&mut self, tasks: &[&Task], new_id: &mut dyn FnMut() -> String) {
        let mut rollout = self.state.rollouts.get(self.name).cloned();
        let mut failure: Option<String> = None;
        let mut failed_now: u64 = 0;
        let mut live: Vec<&Task> = Vec::new();
        let mut backoff: BTreeSet<u64> = BTreeSet::new();
        let restart_delay = ms(&self.spec.restart.delay, 1_000);
        // Slots whose replica is draining: filled like empty ones, but a move in progress for
        // `update.parallelism` until their new replica passes its gate.
        let mut draining: BTreeSet<u64> = BTreeSet::new();
        for &t in tasks {
            let up = self.nodes.is_up(&t.node);
            if t.drain_index.is_some() && t.desired == TaskState::Running {
                // Leaving: the leader stops it once every node stopped sending it clients
                // (`leader/drain.rs`).
                draining.insert(t.slot);
                continue;
            }
            if t.desired == TaskState::Shutdown {
                // A failed replica stays in its slot until its restart delay has passed: the
                // slot waits that long (filed away at once, it would be refilled at once).
                let retry_ms = t.updated_ms + restart_delay;
                if t.state == TaskState::Failed && retry_ms > self.now {
                    backoff.insert(t.slot);
                    self.wake_at(retry_ms);
                } else if t.state.is_terminal() || !up {
                    self.out.plan.remove.push(t.id.to_string());
                }
                continue;
            }
            let bad = if !up {
                Some(format!("node {} is down", t.node))
            } else if t.state == TaskState::Failed
                && self.spec.restart.condition != RestartCondition::None
            {
                // With `condition = "none"` a failed replica stays failed in its slot.
                Some(format!("failed: {}", t.message))
            } else if t.state == TaskState::Running && t.health == Health::Unhealthy {
                Some(format!("unhealthy: {}", t.message))
            } else if t.restarts > 0 && self.updating(rollout.as_ref(), t) && !self.monitored(t) {
                // A new replica that exited (and was restarted in place by its agent) before it
                // passed its monitor window failed the update, as in Swarm: a crash loop must
                // not stall a rollout forever.
                Some(format!(
                    "exited during the update ({} restart(s)): {}",
                    t.restarts, t.message
                ))
            } else {
                None
            };
            match bad {
                Some(why) => {
                    let gated = self.updating(rollout.as_ref(), t);
                    if gated && up {
                        failed_now += 1;
                        if failure.is_none() {
                            failure = Some(format!("task {} {why}", t.id));
                        }
                    }
                    if t.state == TaskState::Failed || up {
                        backoff.insert(t.slot);
                    }
                    self.stop(t, why);
                }
                None => live.push(t),
            }
        }
        // Which slots should exist, and on which node for global services.
        let global = self.spec.mode == ServiceMode::Global;
        let demand = Demand::of(self.spec, self.state.cluster_format);
        let wanted = if global {
            Wanted::Global(
                self.nodes
                    .list()
                    .iter()
                    .copied()
                    .filter(|n| {
                        n.status == NodeStatus::Ready
                            && n.availability == NodeAvailability::Active
                            && demand.constraints.iter().all(|c| c.matches(n))
                    })
                    .map(|n| (global_slot(&n.id), n))
                    .collect(),
            )
        } else {
            Wanted::Replicated(self.spec.replicas.max(0) as u64)
        };
        let mut slots: BTreeMap<u64, Vec<&Task>> = BTreeMap::new();
        for t in live {
            if !wanted.contains(t.slot) {
                let why = if global {
                    "node no longer eligible"
                } else {
                    "scaled down"
                };
                self.stop(t, why.into());
            } else {
                slots.entry(t.slot).or_default().push(t);
            }
        }
        // Rollout bookkeeping.
        let any_outdated = slots.values().flatten().any(|t| !self.is_current(t));
        let needs_new = rollout.as_ref().is_none_or(|r| r.version != self.version);
        if needs_new && any_outdated {
            let from = slots
                .values()
                .flatten()
                .filter(|t| !self.is_current(t))
                .map(|t| t.service_version)
                .max()
                .unwrap_or(0);
            rollout = Some(Rollout {
                version: self.version,
                from_version: from,
                state: RolloutState::Updating,
                updated: 0,
                total: wanted.len(),
                failures: 0,
                message: format!("updating from version {from}"),
                started_ms: self.now,
                updated_ms: self.now,
                batch_started_ms: 0,
                rollback_of: None,
            });
        }
        if let (Some(r), Some(why)) = (rollout.as_mut(), failure) {
            r.failures += failed_now;
            r.updated_ms = self.now;
            let tolerated = r.state == RolloutState::Updating
                && within_failure_ratio(r.failures, r.total, &self.spec.update.max_failure_ratio);
            if tolerated {
                // The failed replicas were stopped above and are replaced like any other.
                r.message = format!(
                    "{} failure(s) within update.max_failure_ratio, continuing: {why}",
                    r.failures
                );
            } else {
                match (r.state, self.spec.update.failure_action) {
                    (RolloutState::RollingBack, _) => {
                        r.state = RolloutState::Failed;
                        r.message = format!("rollback failed: {why}");
                    }
                    (_, FailureAction::Pause) => {
                        r.state = RolloutState::Paused;
                        r.message = format!("paused: {why}");
                    }
                    (_, FailureAction::Rollback) => {
                        r.state = RolloutState::RolledBack;
                        r.message = format!("rolling back to version {}: {why}", r.from_version);
                        let back = Rollout {
                            version: self.version + 1,
                            from_version: self.version,
                            state: RolloutState::RollingBack,
                            updated: 0,
                            total: wanted.len(),
                            failures: 0,
                            message: format!(
                                "rolling back to the spec of version {}: {why}",
                                r.from_version
                            ),
                            started_ms: self.now,
                            updated_ms: self.now,
                            batch_started_ms: 0,
                            rollback_of: Some(self.version),
                        };
                        self.out
                            .rollbacks
                            .push((self.name.to_string(), r.from_version, back));
                    }
                    (_, FailureAction::Continue) => {}
                }
            }
        }
        let rolling = rollout
            .as_ref()
            .is_some_and(|r| matches!(r.state, RolloutState::Updating | RolloutState::RollingBack))
            && self.out.rollbacks.iter().all(|(n, _, _)| n != self.name);
        // Per slot: keep one current task; find what must move (outdated, drained).
        let start_first = self.spec.update.order == UpdateOrder::StartFirst;
        let mut missing: Vec<u64> = Vec::new();
        let mut movable: Vec<&Task> = Vec::new();
        let mut inflight = 0u64;
        let mut updated = 0u64;
        // When the latest replica of this version passed its monitor window: the pause between
        // batches (`update.delay`) counts from there.
        let mut last_done_ms = 0u64;
        for slot in wanted.slots() {
            // Most slots of a large service are empty while it scales up or cannot be placed.
            let Some(ts) = slots.remove(&slot) else {
                if draining.contains(&slot) {
                    inflight += 1;
                }
                self.fill(slot, &backoff, &mut missing);
                continue;
            };
            let mut current: Vec<&Task> =
                ts.iter().copied().filter(|t| self.is_current(t)).collect();
            current.sort_by_key(|t| (!t.is_ready(), t.created_ms, t.id.clone()));
            let drained = |t: &Task| {
                self.nodes
                    .get(&t.node)
                    .is_some_and(|n| n.availability == NodeAvailability::Drained)
            };
            for extra in current.iter().skip(1) {
                self.stop(extra, "duplicate replica".into());
            }
            let keep = current.first().copied();
            let old: Vec<&Task> = ts.iter().copied().filter(|t| !self.is_current(t)).collect();
            match keep {
                Some(k) if self.monitored(k) && !drained(k) => {
                    updated += 1;
                    last_done_ms = last_done_ms.max(self.monitor_passed_ms(k));
                    for o in old {
                        self.stop(o, format!("replaced by version {}", self.version));
                    }
                }
                Some(k) => {
                    if !self.monitored(k) {
                        inflight += 1;
                    }
                    // (A draining replica of this slot counts with its replacement, above.)
                    if drained(k) && k.is_ready() {
                        movable.push(k);
                    }
                    // An old task stays until the new one has passed its gate.
                }
                None if old.is_empty() => {
                    if draining.contains(&slot) {
                        inflight += 1;
                    }
                    self.fill(slot, &backoff, &mut missing)
                }
                None => {
                    if rolling {
                        movable.extend(old);
                    } else if let Some(o) = old.iter().find(|o| drained(o)) {
                        movable.push(o);
                    }
                }
            }
        }
        // Move up to `parallelism` replicas at once (rolling update or drain).
        let parallelism = self.spec.update.parallelism.max(1) as u64;
        let delay = ms(&self.spec.update.delay, 0);
        let mut budget = parallelism.saturating_sub(inflight);
        if rolling && last_done_ms > 0 && self.now < last_done_ms + delay {
            budget = 0;
            self.wake_at(last_done_ms + delay);
        }
        let mut started_batch = false;
        for t in movable.into_iter().take(budget as usize) {
            started_batch = true;
            if start_first {
                missing.push(t.slot);
            } else {
                let why = if self.is_current(t) {
                    format!("moved off drained node {}", t.node)
                } else {
                    format!("replaced by version {}", self.version)
                };
                self.stop(t, why);
                missing.push(t.slot);
            }
        }
        missing.sort_unstable();
        missing.dedup();
        self.place(&missing, &wanted, &demand, new_id);
        // Record rollout progress.
        if let Some(mut r) = rollout {
            if r.version == self.version
                && matches!(r.state, RolloutState::Updating | RolloutState::RollingBack)
                && self.out.rollbacks.iter().all(|(n, _, _)| n != self.name)
            {
                r.updated = updated;
                r.total = wanted.len();
                if started_batch {
                    r.batch_started_ms = self.now;
                }
                if updated == r.total {
                    r.state = if r.state == RolloutState::RollingBack {
                        RolloutState::RolledBack
                    } else {
                        RolloutState::Completed
                    };
                    r.message = format!("{updated}/{updated} replicas at version {}", r.version);
                } else {
                    r.message = format!(
                        "{updated}/{} replicas updated to version {}",
                        r.total, r.version
                    );
                }
            }
            let unchanged = self.state.rollouts.get(self.name).is_some_and(|o| {
                let mut o = o.clone();
                o.updated_ms = r.updated_ms;
                o == r
            });
            if !unchanged {
                r.updated_ms = self.now;
                self.out.plan.rollouts.push((self.name.to_string(), r));
            }
        }
    }

    fn place(
        &mut self,
        missing: &[u64],
        wanted: &Wanted<'_>,
        demand: &Demand,
        new_id: &mut dyn FnMut() -> String,
    ) {
        if missing.is_empty() {
            return;
        }
        let task = |slot: u64, node: &str, id: String| Task {
            id: id.into(),
            service: CompactString::new(self.name),
            service_version: self.version,
            slot,
            node: node.into(),
            desired: TaskState::Running,
            state: TaskState::Pending,
            health: Health::None,
            address: None,
            container_id: None,
            exit_code: None,
            message: CompactString::default(),
            restarts: 0,
            created_ms: self.now,
            updated_ms: self.now,
            ready_since_ms: None,
            drain_index: None,
        };
        if self.spec.mode == ServiceMode::Global {
            for &slot in missing {
                let Some(node) = wanted.node(slot) else {
                    continue;
                };
                match check(node, self.usage.get(&node.id), demand) {
                    Ok(()) => {
                        self.usage.entry(node.id.clone()).or_default().add(demand);
                        let t = task(slot, &node.id, new_id());
                        self.out.plan.place.push(t);
                    }
                    Err(m) => push_pending(
                        self.out.pending.entry(self.name.to_string()).or_default(),
                        slot,
                        &Arc::from(format!("{}: {m}", node.id)),
                    ),
                }
            }
            return;
        }
        let p = place(
            self.nodes.list(),
            self.usage,
            demand,
            self.spec.placement.spread.as_deref(),
            missing.len(),
        );
        for (slot, node) in missing.iter().zip(&p.nodes) {
            let t = task(*slot, node, new_id());
            self.out.plan.place.push(t);
        }
        if let Some(why) = p.unplaced {
            let why: Arc<str> = Arc::from(why);
            let runs = self.out.pending.entry(self.name.to_string()).or_default();
            for &slot in &missing[p.nodes.len()..] {
                push_pending(runs, slot, &why);
            }
        }
    }
}

#[cfg(test)]
mod tests;
