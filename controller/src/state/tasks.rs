//! Task commands: scheduler plans (re-checked here so a stale plan can never overcommit a node),
//! agents' status reports, and the bounded per-slot history of ended tasks.

use super::{State, SLOT_HISTORY_LIMIT};
use crate::scheduler::feasible::{check, holds_resources, Demand, NodeUsage};
use hoist_proto::cluster::{Task, TaskState};
use hoist_proto::node::{Health, TaskStatus};
use hoist_proto::raft::{CommandError, ErrorCode, Plan, PlanResult, Response};
use std::collections::{BTreeMap, BTreeSet};

impl State {
    /// The demand of a task's spec, if its service is known.
    pub fn demand_of(&self, t: &Task) -> Option<Demand> {
        self.spec_of(&t.service, t.service_version)
            .map(|spec| Demand::of(spec, self.cluster_format))
    }

    /// Why `t` cannot be placed now, given its node's `usage`; `None` when it can.
    fn refuse(
        &self,
        t: &Task,
        usage: Option<&NodeUsage>,
        demands: &mut BTreeMap<String, Demand>,
    ) -> Option<String> {
        if self.tasks.contains_key(&t.id) {
            return Some(format!("task {:?} already exists", t.id));
        }
        let Some(record) = self.services.get(t.service.as_str()) else {
            return Some(format!("service {:?} no longer exists", t.service));
        };
        let current = record.current();
        if current.version != t.service_version {
            return Some(format!(
                "service {:?} is at version {}, the plan was for {}",
                t.service, current.version, t.service_version
            ));
        }
        let Some(node) = self.nodes.get(t.node.as_str()) else {
            return Some(format!("node {:?} does not exist", t.node));
        };
        let demand = demands
            .entry(t.service.to_string())
            .or_insert_with(|| Demand::of(&current.spec, self.cluster_format));
        check(node, usage, demand)
            .err()
            .map(|m| format!("{}: {m}", t.node))
    }

    /// Stores a placement `refuse` accepted, its demand counted on its node.
    fn insert_placed(&mut self, t: &Task, demand: &Demand, now: u64) {
        let has_check = self
            .spec_of(&t.service, t.service_version)
            .is_some_and(|s| s.health_check.is_some());
        let mut t = t.clone();
        t.desired = TaskState::Running;
        t.state = TaskState::Pending;
        t.health = if has_check {
            Health::Starting
        } else {
            Health::None
        };
        t.created_ms = now;
        t.updated_ms = now;
        t.ready_since_ms = None;
        self.touch_task(&t.node, &t.id);
        self.usage_add(&t.node, demand);
        self.tasks.insert(t);
    }

    /// Takes every task of a plan or none of them (the older, all-or-nothing command).
    pub(super) fn put_tasks(&mut self, tasks: &[Task], now: u64) -> Result<Response, CommandError> {
        let mut usage: BTreeMap<&str, NodeUsage> = BTreeMap::new();
        let mut demands = BTreeMap::new();
        for t in tasks {
            let node = t.node.as_str();
            if !usage.contains_key(node) {
                let kept = self.node_usage().get(node).cloned().unwrap_or_default();
                usage.insert(node, kept);
            }
            if let Some(why) = self.refuse(t, usage.get(node), &mut demands) {
                return Err(CommandError {
                    code: ErrorCode::Conflict,
                    message: format!("task {:?}: {why}", t.id),
                    field: None,
                });
            }
            if let Some(d) = demands.get(t.service.as_str()) {
                usage.entry(node).or_default().add(d);
            }
        }
        for t in tasks {
            self.insert_placed(t, &demands[t.service.as_str()], now);
        }
        Ok(Response::Tasks(tasks.len() as u64))
    }

    /// Moves tasks into their slot's history.
    pub(super) fn remove_tasks(&mut self, ids: &[String]) -> Response {
        let mut removed = 0;
        for id in ids {
            if let Some(t) = self.tasks.remove(id.as_str()) {
                removed += 1;
                self.touch_task(&t.node, &t.id);
                if holds_resources(&t) {
                    self.usage_stale(&t.node);
                }
                self.remember(t);
            }
        }
        Response::Tasks(removed)
    }

    fn remember(&mut self, t: Task) {
        let slots = self.slot_history.entry(t.service.to_string()).or_default();
        let h = slots.entry(t.slot).or_default();
        h.push_back(t);
        while h.len() > SLOT_HISTORY_LIMIT {
            h.pop_front();
        }
    }

    /// Applies a scheduler plan: stops, removals, placements that still fit, rollout progress.
    pub(super) fn apply_plan(&mut self, plan: &Plan, now: u64) -> PlanResult {
        let mut result = PlanResult::default();
        for (id, reason) in &plan.stop {
            let Some(mut t) = self.tasks.get_mut(id) else {
                continue;
            };
            if t.desired == TaskState::Shutdown {
                continue;
            }
            t.desired = TaskState::Shutdown;
            t.message = reason.as_str().into();
            t.updated_ms = now;
            let node = t.node.clone();
            drop(t);
            self.touch_task(&node, id);
            self.touch_endpoint(id);
            result.stopped += 1;
        }
        for (id, reason) in &plan.drain {
            let index = self.index;
            let Some(mut t) = self.tasks.get_mut(id) else {
                continue;
            };
            if t.desired != TaskState::Running || t.drain_index.is_some() {
                continue;
            }
            t.drain_index = Some(index);
            t.message = reason.as_str().into();
            t.updated_ms = now;
            drop(t);
            self.touch_endpoint(id);
        }
        for id in &plan.remove {
            if self
                .tasks
                .get(id)
                .is_some_and(|t| t.desired == TaskState::Shutdown)
            {
                self.remove_tasks(std::slice::from_ref(id));
            }
        }
        // The removals above may have freed room on their nodes.
        self.refresh_usage();
        let mut demands = BTreeMap::new();
        // A slot takes one task per version: a plan made before another plan for the same slot
        // was applied must not double it. Each (service, slot, version) the plan places is
        // named by the position of its first placement (no copy of a name per task).
        let mut wanted: BTreeMap<(&str, u64, u64), usize> = BTreeMap::new();
        for (i, t) in plan.place.iter().enumerate() {
            wanted.entry(slot_key(t)).or_insert(i);
        }
        // Only the plan's services can hold those slots: their tasks, through the index, not
        // every task in the cluster on every member for every entry.
        let services: BTreeSet<&str> = plan.place.iter().map(|t| t.service.as_str()).collect();
        let mut filled: BTreeSet<usize> = (services.into_iter())
            .flat_map(|s| self.tasks.of_service(s))
            .filter(|t| t.desired == TaskState::Running)
            .filter_map(|t| wanted.get(&slot_key(t)).copied())
            .collect();
        for t in &plan.place {
            let key = wanted[&slot_key(t)];
            if filled.contains(&key) {
                result.refused.push((
                    t.id.to_string(),
                    format!("slot {} is already filled", t.slot),
                ));
                continue;
            }
            if let Some(why) = self.refuse(t, self.node_usage().get(t.node.as_str()), &mut demands)
            {
                result.refused.push((t.id.to_string(), why));
                continue;
            }
            filled.insert(key);
            self.insert_placed(t, &demands[t.service.as_str()], now);
            result.placed += 1;
        }
        for (service, rollout) in &plan.rollouts {
            let Some(record) = self.services.get(service) else {
                continue;
            };
            let v = record.current().version;
            if v == rollout.version {
                self.rollouts.insert(service.clone(), rollout.clone());
            }
        }
        result
    }

    /// Applies an agent's report. Reports about tasks not on that node, or about tasks that
    /// already ended, are ignored: an ended task never runs again.
    pub(super) fn report_status(
        &mut self,
        node: &str,
        statuses: &[TaskStatus],
        now: u64,
    ) -> Response {
        let mut applied = 0;
        for s in statuses {
            let Some(mut t) = self.tasks.get_mut(&s.task_id) else {
                continue;
            };
            if t.node != node || t.state.is_terminal() {
                continue;
            }
            let before = (t.is_ready(), t.address.clone());
            let ended = s.state.is_terminal().then(|| t.node.clone());
            t.state = s.state;
            t.health = s.health;
            t.container_id = s.container_id.as_deref().map(Into::into);
            if let Some(address) = &s.address {
                t.address = Some(address.as_str().into());
            }
            t.exit_code = s.exit_code;
            // The controller's reason for a stop ("node n3 is down") outlives an agent's
            // empty "stopped as asked".
            if !s.message.is_empty() || t.desired == TaskState::Running {
                t.message = s.message.as_str().into();
            }
            t.restarts = s.restarts;
            t.updated_ms = now;
            if t.is_ready() {
                t.ready_since_ms.get_or_insert(now);
            } else {
                t.ready_since_ms = None;
            }
            applied += 1;
            let moved = before != (t.is_ready(), t.address.clone());
            drop(t);
            if moved {
                self.touch_endpoint(&s.task_id);
            }
            // It no longer holds its node's resources.
            if let Some(node) = ended {
                self.usage_stale(&node);
            }
        }
        Response::Tasks(applied)
    }
}

/// What a slot holds one task of at a time: its service, slot and version.
fn slot_key(t: &Task) -> (&str, u64, u64) {
    (t.service.as_str(), t.slot, t.service_version)
}
