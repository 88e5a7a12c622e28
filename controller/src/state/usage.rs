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
use hoist_proto::service::{PortProtocol, ServiceSpec};
use imbl::ordmap::DiffItem;
use std::collections::BTreeSet;
use std::sync::Arc;

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

    /// After a command: the nodes of every service added, deleted, or changed so that one of its
    /// tasks may hold something else (see [`holdings_moved`]), or every node when the cluster
    /// format changed (sizes read differently); then the stale nodes summed again. A scale or an
    /// edit of what the replicas hold nothing of costs no sum.
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
            let format = self.cluster_format;
            let moved: Vec<String> = services_before
                .diff(&self.services)
                .filter_map(|d| match d {
                    DiffItem::Add(k, _) | DiffItem::Remove(k, _) => Some(k.clone()),
                    DiffItem::Update {
                        old: (k, old),
                        new: (_, new),
                    } => holdings_moved(old, new, format).then(|| k.clone()),
                })
                .collect();
            let nodes: BTreeSet<String> = moved
                .iter()
                .flat_map(|s| self.tasks.of_service(s).map(|t| t.node.to_string()))
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

/// What a replica with `demand` adds to its node beyond being counted.
fn held(demand: &Demand) -> (u64, u64, &[(u16, PortProtocol)]) {
    (demand.cpu_millis, demand.memory_bytes, &demand.ports)
}

/// Whether a task of the service may hold something else under `new` than under `old`. A
/// task's demand is its version's spec's, or the current one's when its version left the
/// history ([`State::spec_of`]); so the holdings stay put when every version in either history,
/// and the current spec, hold the same under both. (Tasks moved to a new version in place have a
/// spec that runs the same: `same_run_spec` compares resources, ports and placement.)
///
/// The same spec (one `Arc`) holds the same, so a demand is worked out only for a version whose
/// spec the command replaced: a scale in place of a service with a long history costs two, not
/// two per version kept (`scheduler` bench, `apply_64_scales_of_long_histories`).
fn holdings_moved(old: &ServiceRecord, new: &ServiceRecord, format: u32) -> bool {
    fn at(r: &ServiceRecord, v: Option<u64>) -> &Arc<ServiceSpec> {
        &v.and_then(|v| r.history.iter().rev().find(|x| x.version == v))
            .unwrap_or_else(|| r.current())
            .spec
    }
    let moved = |before: &Arc<ServiceSpec>, after: &Arc<ServiceSpec>| {
        !Arc::ptr_eq(before, after)
            && held(&Demand::of(before, format)) != held(&Demand::of(after, format))
    };
    let (was, is) = (&old.history, &new.history);
    if was.len() == is.len()
        && was
            .iter()
            .zip(is.iter())
            .all(|(a, b)| a.version == b.version)
    {
        // The same versions (a change in place): each is its own pair, the current one last.
        return was
            .iter()
            .zip(is.iter())
            .any(|(a, b)| moved(&a.spec, &b.spec));
    }
    let versions = was.iter().chain(is.iter()).map(|x| Some(x.version));
    versions
        .chain([None])
        .any(|v| moved(at(old, v), at(new, v)))
}

#[cfg(test)]
mod tests {
    use crate::state::tests::{req, test_node, test_task};
    use crate::state::{State, HISTORY_LIMIT};
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
        Scale(usize, i64),
        /// As many new versions (new images) as the history keeps, the last with this memory:
        /// the replicas of older versions then read the current spec.
        Churn(usize, u64),
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
            (0..2usize, 0..4i64).prop_map(|(s, n)| Step::Scale(s, n)),
            (0..2usize, 0..3u64).prop_map(|(s, m)| Step::Churn(s, m)),
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
            Step::Churn(s, mib) => Command::Batch(
                (0..HISTORY_LIMIT)
                    .map(|i| {
                        let mut spec = ServiceSpec::new(SERVICES[*s], &format!("img:{i}"));
                        spec.resources.memory = Some(format!("{mib}Mi").as_str().into());
                        Command::ApplyService(Box::new(spec))
                    })
                    .collect(),
            ),
            Step::Scale(s, replicas) => Command::ScaleService {
                name: SERVICES[*s].into(),
                replicas: *replicas,
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
                    .map_or("n0".into(), |t| t.node.to_string()),
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
    fn only_a_change_of_what_replicas_hold_moves_the_holdings() {
        use super::holdings_moved;
        use crate::state::ServiceRecord;
        use hoist_proto::cluster::{ServiceVersion, VersionOrigin};
        let version = |v: u64, mib: u64, replicas: i64| {
            let mut spec = ServiceSpec::new("web", "img");
            spec.resources.memory = Some(format!("{mib}Mi").as_str().into());
            spec.replicas = replicas;
            ServiceVersion {
                version: v,
                spec: spec.into(),
                created_ms: 0,
                origin: VersionOrigin::Apply,
            }
        };
        let record = |versions: Vec<ServiceVersion>| ServiceRecord {
            created_ms: 0,
            history: std::sync::Arc::new(versions.into()),
        };
        let v1 = record(vec![version(1, 64, 1)]);
        let scaled = record(vec![version(1, 64, 1), version(2, 64, 5)]);
        assert!(!holdings_moved(&v1, &scaled, 2), "a scale holds the same");
        let bigger = record(vec![version(1, 64, 1), version(2, 128, 1)]);
        assert!(
            holdings_moved(&v1, &bigger, 2),
            "a task of a version older than both histories reads the current spec"
        );
        // Version 1 leaves the history: its tasks now read version 3's spec.
        let kept = record(vec![version(1, 64, 1), version(2, 128, 1)]);
        let pruned = record(vec![version(2, 128, 1), version(3, 128, 2)]);
        assert!(holdings_moved(&kept, &pruned, 2));
        let same = record(vec![
            version(1, 64, 1),
            version(2, 128, 1),
            version(3, 128, 2),
        ]);
        assert!(!holdings_moved(&kept, &same, 2));
        // The same versions, changed in place (a scale, or a service deleted and created again
        // in one command): only a spec that holds something else moves them.
        let in_place = record(vec![version(1, 64, 1), version(2, 128, 3)]);
        assert!(!holdings_moved(&kept, &in_place, 2), "a scale in place");
        let remade = record(vec![version(1, 256, 1), version(2, 128, 1)]);
        assert!(holdings_moved(&kept, &remade, 2), "an older version remade");
        let remade = record(vec![version(1, 64, 1), version(2, 256, 1)]);
        assert!(
            holdings_moved(&kept, &remade, 2),
            "the current version remade"
        );
        assert!(!holdings_moved(&kept, &kept.clone(), 2), "the same specs");
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
