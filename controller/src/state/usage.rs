//! What each node's tasks hold (cpu, memory, host ports, replicas per service), kept as the
//! tasks change instead of summed again for every plan.
//!
//! Every member re-checks a plan's placements against its nodes' usage, so that a stale plan can
//! never overcommit a node. Summed from the tasks, that check cost as many steps as the plan's
//! nodes hold tasks: a plan part of a large service touches every node, so each committed entry
//! cost O(tasks) and the fill slowed as the cluster filled. Here a placement adds its demand to
//! its node, and anything else that can change a node's usage (a task ending or leaving, a
//! service's spec changing or going, the cluster format rising) marks the node stale; stale nodes
//! are summed again from their own tasks before usage is next read and at the end of every
//! command. So after every command the usage is exactly [`usage_of`] over the state's tasks,
//! on every member alike, and the common case — placements — costs O(1) per task.
//!
//! The usage is derived, like the task table's indexes: neither encoded nor compared.

use super::{Map, ServiceRecord, State};
use crate::scheduler::feasible::{usage_of, Demand, NodeUsage};
use std::collections::BTreeSet;

/// Each node's usage, and the nodes to sum again before it is read.
#[derive(Debug, Clone, Default)]
pub struct NodeUsages {
    by_node: Map<String, NodeUsage>,
    stale: BTreeSet<String>,
}

impl PartialEq for NodeUsages {
    /// Derived from the tasks and the services, which the state compares.
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for NodeUsages {}

impl NodeUsages {
    /// Each node's usage, as of the end of the last command applied.
    pub fn by_node(&self) -> &Map<String, NodeUsage> {
        &self.by_node
    }
}

impl State {
    /// Each node's usage by the tasks holding resources there (nodes holding none are absent).
    pub fn node_usage(&self) -> &Map<String, NodeUsage> {
        debug_assert!(self.usage.stale.is_empty(), "usage read while stale");
        self.usage.by_node()
    }

    /// Adds a task just placed on `node` with `demand`.
    pub(super) fn usage_add(&mut self, node: &str, demand: &Demand) {
        if self.usage.stale.contains(node) {
            return;
        }
        match self.usage.by_node.get_mut(node) {
            Some(u) => u.add(demand),
            None => {
                let mut u = NodeUsage::default();
                u.add(demand);
                self.usage.by_node.insert(node.to_string(), u);
            }
        }
    }

    /// Notes that `node`'s usage may have changed in a way only its tasks can tell.
    pub(super) fn usage_stale(&mut self, node: &str) {
        if !self.usage.stale.contains(node) {
            self.usage.stale.insert(node.to_string());
        }
    }

    /// Sums the stale nodes again from their tasks.
    pub(super) fn refresh_usage(&mut self) {
        for node in std::mem::take(&mut self.usage.stale) {
            let summed = usage_of(self.tasks.on_node(&node), |t| self.demand_of(t));
            match summed.into_values().next() {
                Some(u) => {
                    self.usage.by_node.insert(node, u);
                }
                None => {
                    self.usage.by_node.remove(&node);
                }
            }
        }
    }

    /// Sums every node's usage from the tasks (a state just decoded or restored, a new format;
    /// tests that put tasks in the table directly).
    pub(crate) fn rebuild_usage(&mut self) {
        let summed = usage_of(self.tasks.values(), |t| self.demand_of(t));
        self.usage = NodeUsages {
            by_node: summed.into_iter().collect(),
            stale: BTreeSet::new(),
        };
    }

    /// After a command: the nodes of every service whose versions changed (their tasks' demands
    /// may have: a spec edited or deleted), or every node when the cluster format changed (sizes
    /// read differently); then the stale nodes summed again.
    pub(super) fn settle_usage(
        &mut self,
        services_before: &Map<String, ServiceRecord>,
        format_before: u32,
    ) {
        if self.cluster_format != format_before {
            self.rebuild_usage();
            return;
        }
        if !self.services.ptr_eq(services_before) {
            let changed: BTreeSet<String> = services_before
                .diff(&self.services)
                .map(|d| match d {
                    imbl::ordmap::DiffItem::Add(k, _)
                    | imbl::ordmap::DiffItem::Update { new: (k, _), .. }
                    | imbl::ordmap::DiffItem::Remove(k, _) => k.clone(),
                })
                .collect();
            let nodes: BTreeSet<String> = changed
                .iter()
                .flat_map(|s| self.tasks.of_service(s).map(|t| t.node.clone()))
                .collect();
            for n in nodes {
                self.usage_stale(&n);
            }
        }
        self.refresh_usage();
    }

    /// Whether the kept usage is what summing the tasks gives (for tests).
    #[cfg(test)]
    pub(crate) fn usage_is_exact(&self) -> Result<(), String> {
        let summed: Map<String, NodeUsage> = usage_of(self.tasks.values(), |t| self.demand_of(t))
            .into_iter()
            .collect();
        if self.usage.stale.is_empty() && summed == self.usage.by_node {
            return Ok(());
        }
        Err(format!(
            "kept usage {:?} (stale {:?}), summed {:?}",
            self.usage.by_node, self.usage.stale, summed
        ))
    }
}

#[cfg(test)]
mod tests {
    use crate::state::tests::{req, test_node, test_task};
    use crate::state::State;
    use hoist_proto::cluster::TaskState;
    use hoist_proto::node::{Health, TaskStatus};
    use hoist_proto::raft::{Command, Plan};
    use hoist_proto::service::{ServicePort, ServiceSpec};
    use proptest::prelude::*;

    /// One step of a cluster's life, over two services, three nodes and twelve task ids.
    #[derive(Debug, Clone)]
    enum Step {
        /// A spec: memory in MiB and a published port (or none).
        Apply(usize, u64, Option<u16>),
        Delete(usize),
        Rollback(usize),
        /// A placement of (task, service, node) at the service's current version.
        Place(usize, usize, usize),
        Report(usize, TaskState),
        Stop(usize),
        Remove(usize),
        RaiseFormat,
    }

    const SERVICES: [&str; 2] = ["web", "db"];

    fn step() -> impl Strategy<Value = Step> {
        let state = prop_oneof![
            Just(TaskState::Running),
            Just(TaskState::Failed),
            Just(TaskState::Complete),
        ];
        prop_oneof![
            (0..2usize, 0..3u64, prop::option::of(80..82u16))
                .prop_map(|(s, m, p)| Step::Apply(s, m, p)),
            (0..2usize).prop_map(Step::Delete),
            (0..2usize).prop_map(Step::Rollback),
            (0..12usize, 0..2usize, 0..3usize).prop_map(|(t, s, n)| Step::Place(t, s, n)),
            (0..12usize, state).prop_map(|(t, s)| Step::Report(t, s)),
            (0..12usize).prop_map(Step::Stop),
            (0..12usize).prop_map(Step::Remove),
            Just(Step::RaiseFormat),
        ]
    }

    fn command(st: &State, step: &Step) -> Command {
        let task = |i: usize| format!("t{i}");
        match step {
            Step::Apply(s, mib, port) => {
                let mut spec = ServiceSpec::new(SERVICES[*s], "img");
                spec.resources.memory = Some(format!("{mib}Mi").as_str().into());
                spec.ports = port
                    .map(|p| ServicePort {
                        target: 80,
                        published: Some(p.into()),
                        protocol: Default::default(),
                        mode: Default::default(),
                    })
                    .into_iter()
                    .collect();
                Command::ApplyService(Box::new(spec))
            }
            Step::Delete(s) => Command::DeleteService {
                name: SERVICES[*s].into(),
            },
            Step::Rollback(s) => Command::RollbackService {
                name: SERVICES[*s].into(),
                version: None,
            },
            Step::Place(t, s, n) => {
                let service = SERVICES[*s];
                let version = st.services.get(service).map_or(1, |r| r.current().version);
                let placed = test_task(&task(*t), service, version, *t as u64, &format!("n{n}"));
                Command::Plan(Plan {
                    place: vec![placed],
                    ..Plan::default()
                })
            }
            Step::Report(t, state) => Command::ReportStatus {
                node: st
                    .tasks
                    .get(&task(*t))
                    .map_or("n0".into(), |t| t.node.clone()),
                tasks: vec![TaskStatus {
                    task_id: task(*t),
                    state: *state,
                    health: Health::None,
                    container_id: None,
                    address: None,
                    exit_code: None,
                    message: String::new(),
                    restarts: 0,
                }],
            },
            Step::Stop(t) => Command::Plan(Plan {
                stop: vec![(task(*t), "stop".into())],
                ..Plan::default()
            }),
            Step::Remove(t) => Command::RemoveTasks(vec![task(*t)]),
            Step::RaiseFormat => Command::SetClusterFormat {
                format: st.cluster_format + 1,
            },
        }
    }

    proptest! {
        /// Whatever the commands, the kept usage is what summing the tasks gives, after each.
        #[test]
        fn the_kept_usage_is_always_the_tasks_sum(steps in prop::collection::vec(step(), 1..60)) {
            let mut st = State::default();
            for n in 0..3 {
                st.apply(&req(0, Command::RegisterNode(test_node(&format!("n{n}"), 4_000, 4 << 30))));
            }
            for (i, s) in steps.iter().enumerate() {
                let c = command(&st, s);
                st.apply(&req(i as u64 + 1, c));
                prop_assert_eq!(st.usage_is_exact(), Ok(()), "after {:?}", s);
            }
            let placed = st.tasks.len();
            prop_assert!(placed <= 12);
        }
    }

    #[test]
    fn a_placement_counts_and_an_end_frees() {
        let mut st = State::default();
        st.apply(&req(
            0,
            Command::RegisterNode(test_node("n0", 4_000, 4 << 30)),
        ));
        let mut web = ServiceSpec::new("web", "img");
        web.resources.memory = Some("512Mi".into());
        st.apply(&req(1, Command::ApplyService(Box::new(web))));
        let place = |id: &str, slot| {
            Command::Plan(Plan {
                place: vec![test_task(id, "web", 1, slot, "n0")],
                ..Plan::default()
            })
        };
        st.apply(&req(2, place("a", 0)));
        st.apply(&req(3, place("b", 1)));
        let used = |st: &State| st.node_usage().get("n0").map(|u| (u.memory_bytes, u.tasks));
        assert_eq!(used(&st), Some((1 << 30, 2)));
        st.apply(&req(4, command(&st, &Step::Report(0, TaskState::Failed))));
        assert_eq!(
            used(&st),
            Some((1 << 30, 2)),
            "t0 is not a task here: nothing changes"
        );
        let mut failed = command(&st, &Step::Report(0, TaskState::Failed));
        if let Command::ReportStatus { node, tasks } = &mut failed {
            *node = "n0".into();
            tasks[0].task_id = "a".into();
        }
        st.apply(&req(5, failed));
        assert_eq!(used(&st), Some((512 << 20, 1)));
        st.apply(&req(6, Command::DeleteService { name: "web".into() }));
        assert_eq!(
            used(&st),
            Some((0, 1)),
            "a deleted service's replica holds nothing"
        );
        st.apply(&req(7, Command::RemoveTasks(vec!["a".into(), "b".into()])));
        assert_eq!(used(&st), None);
    }
}
