//! Reconciliation driven round by round against the pure state, with simulated agents that start
//! what they are assigned and stop what they are told to.

use super::*;
use crate::state::tests::test_node;
use hoist_proto::cluster::NodeStatus;
use hoist_proto::node::TaskStatus;
use hoist_proto::raft::{Command, Request, Response};

struct Sim {
    st: State,
    now: u64,
    idx: u64,
    ids: u64,
    /// Health reported for new tasks of a service version.
    unhealthy_version: Option<(String, u64)>,
    /// How many of those new tasks come up unhealthy (`None`: all of them).
    unhealthy_budget: Option<u64>,
    /// New tasks of a service version whose container keeps exiting (restarted in place by the
    /// agent: running, with restarts).
    crashing_version: Option<(String, u64)>,
    /// The leader's kind of reconciliation, which remembers between passes.
    reconciler: Reconciler,
}

impl Sim {
    fn new() -> Sim {
        Sim {
            st: State::default(),
            now: 1_000_000,
            idx: 0,
            ids: 0,
            unhealthy_version: None,
            unhealthy_budget: None,
            crashing_version: None,
            reconciler: Reconciler::default(),
        }
    }

    fn cmd(&mut self, command: Command) -> Response {
        self.idx += 1;
        let r = self.st.apply_at(
            self.idx,
            &Request {
                time_ms: self.now,
                command,
            },
        );
        assert!(!matches!(r, Response::Error(_)), "{r:?}");
        r
    }

    fn node(&mut self, id: &str, labels: &[(&str, &str)]) {
        let mut n = test_node(id, 4000, 8 << 30);
        n.labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.cmd(Command::RegisterNode(n));
    }

    fn service(&mut self, spec: ServiceSpec) {
        self.cmd(Command::ApplyService(Box::new(spec)));
    }

    /// A pass of the kept reconciler, checked against a whole pass on the same state: the
    /// services it skips must be exactly those with nothing new to do.
    fn reconcile(&mut self) -> Reconciled {
        let mut ids = self.ids;
        let mut named = Vec::new();
        let whole = reconcile(&self.st, self.now, &mut || {
            ids += 1;
            named.push(format!("t{ids:04}"));
            format!("t{ids:04}")
        });
        self.ids = ids;
        let mut again = named.into_iter();
        let kept = self.reconciler.pass(&self.st, self.now, &mut || {
            again.next().expect("no more new tasks than a whole pass")
        });
        assert_eq!(kept, whole, "a pass that remembers, at {}", self.now);
        kept
    }

    fn commit(&mut self, r: Reconciled) {
        for (name, from, rollout) in r.rollbacks {
            self.cmd(Command::Batch(vec![
                Command::RollbackService {
                    name: name.clone(),
                    version: Some(from),
                },
                Command::Plan(Plan {
                    rollouts: vec![(name, rollout)],
                    ..Default::default()
                }),
            ]));
        }
        self.cmd(Command::Plan(r.plan));
    }

    /// Agents on ready nodes start pending tasks and stop those told to.
    fn agents(&mut self) {
        let mut by_node: BTreeMap<String, Vec<TaskStatus>> = BTreeMap::new();
        let mut budget = self.unhealthy_budget;
        for t in self.st.tasks.values() {
            let up = self
                .st
                .nodes
                .get(t.node.as_str())
                .is_some_and(|n| n.status == NodeStatus::Ready);
            if !up || t.state.is_terminal() {
                continue;
            }
            let (state, health) = if t.desired == TaskState::Shutdown {
                (TaskState::Shutdown, t.health)
            } else if t.state == TaskState::Pending {
                let bad = self
                    .unhealthy_version
                    .as_ref()
                    .is_some_and(|(s, v)| *s == t.service && *v == t.service_version)
                    && budget.is_none_or(|b| b > 0);
                if bad {
                    budget = budget.map(|b| b - 1);
                }
                (
                    TaskState::Running,
                    if bad { Health::Unhealthy } else { Health::None },
                )
            } else {
                continue;
            };
            let crashing = self
                .crashing_version
                .as_ref()
                .is_some_and(|(s, v)| *s == t.service && *v == t.service_version);
            by_node
                .entry(t.node.to_string())
                .or_default()
                .push(TaskStatus {
                    task_id: t.id.to_string(),
                    state,
                    health,
                    container_id: None,
                    address: Some(format!("10.89.0.{}", t.slot)),
                    exit_code: None,
                    message: if crashing {
                        "exited with code 1; restarting in 1s".into()
                    } else {
                        String::new()
                    },
                    restarts: u64::from(crashing),
                });
        }
        self.unhealthy_budget = budget;
        for (node, tasks) in by_node {
            self.cmd(Command::ReportStatus { node, tasks });
        }
    }

    fn round(&mut self) -> Reconciled {
        self.now += 1_000;
        let r = self.reconcile();
        self.commit(r.clone());
        self.agents();
        r
    }

    fn rounds(&mut self, n: usize) {
        for _ in 0..n {
            self.round();
        }
    }

    /// `t`'s agent reports it in `state`, with `health`.
    fn report(&mut self, t: &Task, state: TaskState, health: Health) {
        let failed = state == TaskState::Failed;
        self.cmd(Command::ReportStatus {
            node: t.node.to_string(),
            tasks: vec![TaskStatus {
                task_id: t.id.to_string(),
                state,
                health,
                container_id: None,
                address: t.address.as_deref().map(str::to_string),
                exit_code: failed.then_some(1),
                message: if failed { "boom" } else { "" }.into(),
                restarts: t.restarts,
            }],
        });
    }

    fn running(&self, service: &str) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for t in self.st.tasks.values() {
            if t.service == service && t.desired == TaskState::Running && t.is_ready() {
                *m.entry(t.node.to_string()).or_default() += 1;
            }
        }
        m
    }

    fn total(&self, service: &str) -> usize {
        self.running(service).values().sum()
    }

    fn set_status(&mut self, node: &str, status: NodeStatus) {
        self.cmd(Command::SetNodeStatus {
            id: node.into(),
            status,
        });
    }
}

fn web(replicas: i64) -> ServiceSpec {
    let mut s = ServiceSpec::new("web", "img:1");
    s.replicas = replicas;
    s.update.monitor = "0s".into();
    s
}

#[test]
fn thirty_replicas_spread_evenly_and_converge() {
    let mut sim = Sim::new();
    for n in ["n1", "n2", "n3"] {
        sim.node(n, &[]);
    }
    sim.service(web(30));
    sim.rounds(2);
    assert_eq!(
        sim.running("web").values().copied().collect::<Vec<_>>(),
        vec![10, 10, 10]
    );
    // Converged: nothing more to do.
    assert!(sim.reconcile().is_empty(), "{:?}", sim.reconcile());
}

#[test]
fn down_node_replaced_then_exactly_n_after_heal() {
    let mut sim = Sim::new();
    for n in ["n1", "n2", "n3"] {
        sim.node(n, &[]);
    }
    sim.service(web(6));
    sim.rounds(2);
    sim.set_status("n3", NodeStatus::Down);
    sim.rounds(2);
    let r = sim.running("web");
    assert_eq!(r.get("n3"), None);
    assert_eq!(sim.total("web"), 6, "{r:?}");
    // The node returns: its old tasks are told to stop; exactly 6 desired.
    sim.set_status("n3", NodeStatus::Ready);
    sim.rounds(2);
    let desired = sim
        .st
        .tasks
        .values()
        .filter(|t| t.desired == TaskState::Running)
        .count();
    assert_eq!(desired, 6);
    assert_eq!(sim.total("web"), 6);
    assert!(sim
        .st
        .tasks
        .values()
        .all(|t| t.node != "n3" || t.desired == TaskState::Running));
    // History keeps the replaced tasks with their reason.
    let reasons: Vec<&str> = sim.st.slot_history["web"]
        .values()
        .flatten()
        .map(|t| t.message.as_str())
        .collect();
    assert!(
        reasons.iter().any(|m| m.contains("node n3 is down")),
        "{reasons:?}"
    );
}

#[test]
fn unmet_constraint_is_pending_with_reason_until_a_node_fits() {
    let mut sim = Sim::new();
    sim.node("n1", &[("zone", "b")]);
    let mut s = web(2);
    s.placement.constraints = vec!["node.labels.zone==a".into()];
    sim.service(s);
    let r = sim.round();
    assert_eq!(
        r.pending["web"],
        vec![(0..2, "n1: constraint zone == a".into())]
    );
    sim.node("n2", &[("zone", "a")]);
    sim.rounds(2);
    assert_eq!(sim.running("web").get("n2"), Some(&2));
}

#[test]
fn scale_down_and_up_and_delete() {
    let mut sim = Sim::new();
    sim.node("n1", &[]);
    sim.node("n2", &[]);
    sim.service(web(4));
    sim.rounds(2);
    let before: BTreeSet<String> = sim.st.tasks.keys().map(String::from).collect();
    sim.cmd(Command::ScaleService {
        name: "web".into(),
        replicas: 2,
    });
    sim.rounds(2);
    assert_eq!(sim.total("web"), 2);
    sim.cmd(Command::ScaleService {
        name: "web".into(),
        replicas: 5,
    });
    sim.rounds(2);
    assert_eq!(sim.total("web"), 5);
    // Scaling did not restart the slots that stayed.
    assert!(sim.st.tasks.keys().filter(|k| before.contains(*k)).count() >= 2);
    sim.cmd(Command::DeleteService { name: "web".into() });
    sim.rounds(3);
    assert!(sim.st.tasks.is_empty(), "{:?}", sim.st.tasks);
}

#[test]
fn rolling_update_stop_first_respects_parallelism_and_completes() {
    let mut sim = Sim::new();
    for n in ["n1", "n2", "n3"] {
        sim.node(n, &[]);
    }
    let mut s = web(6);
    s.update.parallelism = 2;
    sim.service(s.clone());
    sim.rounds(2);
    s.image = "img:2".into();
    sim.service(s);
    let mut rounds = 0;
    loop {
        sim.round();
        rounds += 1;
        let ready = sim.total("web");
        assert!(
            ready >= 4,
            "never more than 2 replicas down at once ({ready})"
        );
        let r = &sim.st.rollouts["web"];
        if r.state == RolloutState::Completed {
            break;
        }
        assert_eq!(r.state, RolloutState::Updating);
        assert!(rounds < 20, "{r:?}");
    }
    assert!(sim
        .st
        .tasks
        .values()
        .filter(|t| t.desired == TaskState::Running)
        .all(|t| t.service_version == 2));
    assert_eq!(sim.total("web"), 6);
}

/// `update.delay` is a pause between batches: it counts from when the last batch passed its
/// monitor window, not from when that batch started.
#[test]
fn update_delay_pauses_after_each_batch_passed_its_monitor_window() {
    let mut sim = Sim::new();
    sim.node("n1", &[]);
    let mut s = web(2);
    s.update.parallelism = 1;
    s.update.monitor = "3s".into();
    s.update.delay = "5s".into();
    sim.service(s.clone());
    sim.rounds(2);
    s.image = "img:2".into();
    sim.service(s);
    for _ in 0..30 {
        sim.round();
        if sim.st.rollouts["web"].state == RolloutState::Completed {
            break;
        }
    }
    assert_eq!(sim.st.rollouts["web"].state, RolloutState::Completed);
    let mut created: Vec<u64> = sim
        .st
        .tasks
        .values()
        .filter(|t| t.service_version == 2)
        .map(|t| t.created_ms)
        .collect();
    created.sort_unstable();
    assert_eq!(created.len(), 2);
    // Rounds are 1 s apart: the first replica runs at once, passes its monitor 3 s later, and the
    // second starts 5 s after that (8 s), not 5 s after the first started.
    let gap = created[1] - created[0];
    assert!(
        (8_000..=9_000).contains(&gap),
        "second batch {gap} ms after the first"
    );
}

#[test]
fn start_first_keeps_all_replicas_up() {
    let mut sim = Sim::new();
    sim.node("n1", &[]);
    sim.node("n2", &[]);
    let mut s = web(4);
    s.update.order = UpdateOrder::StartFirst;
    sim.service(s.clone());
    sim.rounds(2);
    s.image = "img:2".into();
    sim.service(s);
    for _ in 0..15 {
        sim.round();
        assert!(sim.total("web") >= 4);
    }
    assert_eq!(sim.st.rollouts["web"].state, RolloutState::Completed);
    assert_eq!(sim.total("web"), 4);
}

#[test]
fn unhealthy_update_rolls_back() {
    let mut sim = Sim::new();
    sim.node("n1", &[]);
    sim.node("n2", &[]);
    let mut s = web(4);
    s.update.failure_action = FailureAction::Rollback;
    sim.service(s.clone());
    sim.rounds(2);
    s.image = "img:bad".into();
    sim.service(s);
    sim.unhealthy_version = Some(("web".into(), 2));
    for _ in 0..20 {
        sim.round();
    }
    let cur = sim.st.services["web"].current();
    assert_eq!(cur.version, 3);
    assert_eq!(cur.spec.image, "img:1");
    let r = &sim.st.rollouts["web"];
    assert_eq!(r.state, RolloutState::RolledBack, "{r:?}");
    assert_eq!(r.rollback_of, Some(2));
    assert_eq!(sim.total("web"), 4);
}

/// An update with `max_failure_ratio = 0.25` over 4 replicas tolerates one failed new replica
/// (replaced, the update completes) and rolls back on the second.
#[test]
fn max_failure_ratio_tolerates_then_acts() {
    for (failing, rolled_back) in [(1, false), (2, true)] {
        let mut sim = Sim::new();
        sim.node("n1", &[]);
        sim.node("n2", &[]);
        let mut s = web(4);
        s.update.failure_action = FailureAction::Rollback;
        s.update.max_failure_ratio = Some("0.25".into());
        sim.service(s.clone());
        sim.rounds(2);
        s.image = "img:2".into();
        sim.service(s);
        sim.unhealthy_version = Some(("web".into(), 2));
        sim.unhealthy_budget = Some(failing);
        for _ in 0..20 {
            sim.round();
        }
        let cur = sim.st.services["web"].current();
        let r = &sim.st.rollouts["web"];
        if rolled_back {
            assert_eq!(
                (cur.version, cur.spec.image.as_str()),
                (3, "img:1"),
                "{r:?}"
            );
            assert_eq!(r.rollback_of, Some(2), "{r:?}");
        } else {
            assert_eq!(
                (cur.version, cur.spec.image.as_str()),
                (2, "img:2"),
                "{r:?}"
            );
            assert_eq!(r.state, RolloutState::Completed, "{r:?}");
            assert_eq!(r.failures, 1, "{r:?}");
        }
        assert_eq!(sim.total("web"), 4);
    }
}

#[test]
fn unhealthy_update_pauses() {
    let mut sim = Sim::new();
    sim.node("n1", &[]);
    let mut s = web(3);
    sim.service(s.clone());
    sim.rounds(2);
    s.image = "img:bad".into();
    sim.service(s);
    sim.unhealthy_version = Some(("web".into(), 2));
    for _ in 0..10 {
        sim.round();
    }
    let r = &sim.st.rollouts["web"];
    assert_eq!(r.state, RolloutState::Paused, "{r:?}");
    assert!(r.message.contains("unhealthy"), "{}", r.message);
    // Two old replicas keep running while paused.
    assert!(sim.total("web") >= 2);
}

#[test]
fn a_crash_loop_fails_the_update_instead_of_stalling_it() {
    let mut sim = Sim::new();
    sim.node("n1", &[]);
    let mut s = web(3);
    s.update.monitor = "5s".into();
    sim.service(s.clone());
    sim.rounds(8);
    s.image = "img:crashes".into();
    sim.service(s);
    sim.crashing_version = Some(("web".into(), 2));
    for _ in 0..10 {
        sim.round();
    }
    let r = &sim.st.rollouts["web"];
    assert_eq!(r.state, RolloutState::Paused, "{r:?}");
    assert!(
        r.message.contains("exited during the update"),
        "{}",
        r.message
    );
}

#[test]
fn drain_moves_replicas_in_batches() {
    let mut sim = Sim::new();
    for n in ["n1", "n2", "n3"] {
        sim.node(n, &[]);
    }
    let mut s = web(6);
    s.update.parallelism = 1;
    sim.service(s);
    sim.rounds(2);
    sim.cmd(Command::SetNodeAvailability {
        id: "n1".into(),
        availability: NodeAvailability::Drained,
    });
    for _ in 0..10 {
        sim.round();
        assert!(sim.total("web") >= 5);
    }
    assert_eq!(sim.running("web").get("n1"), None);
    assert_eq!(sim.total("web"), 6);
}

#[test]
fn global_runs_one_per_eligible_node() {
    let mut sim = Sim::new();
    sim.node("n1", &[("zone", "a")]);
    sim.node("n2", &[("zone", "a")]);
    sim.node("n3", &[("zone", "b")]);
    let mut s = web(1);
    s.mode = ServiceMode::Global;
    s.placement.constraints = vec!["node.labels.zone==a".into()];
    sim.service(s);
    sim.rounds(2);
    let r = sim.running("web");
    assert_eq!(r.len(), 2);
    assert!(r.values().all(|&c| c == 1));
    sim.node("n4", &[("zone", "a")]);
    sim.rounds(2);
    assert_eq!(sim.running("web").len(), 3);
}

#[test]
fn spread_over_zones() {
    let mut sim = Sim::new();
    sim.node("a1", &[("zone", "a")]);
    sim.node("a2", &[("zone", "a")]);
    sim.node("b1", &[("zone", "b")]);
    let mut s = web(6);
    s.placement.spread = Some("zone".into());
    sim.service(s);
    sim.rounds(2);
    let r = sim.running("web");
    assert_eq!(r["b1"], 3);
    assert_eq!(r["a1"] + r["a2"], 3);
}

#[test]
fn pending_slots_are_kept_as_runs_per_reason() {
    let (a, b): (Arc<str>, Arc<str>) = ("no node fits".into(), "n1: constraint".into());
    let mut runs = Vec::new();
    for slot in [0, 1, 2] {
        push_pending(&mut runs, slot, &a);
    }
    // A gap, another reason, and the same text in a different allocation.
    push_pending(&mut runs, 4, &a);
    push_pending(&mut runs, 5, &b);
    push_pending(&mut runs, 6, &Arc::from("n1: constraint"));
    assert_eq!(runs, vec![(0..3, a.clone()), (4..5, a), (5..7, b)]);
}

/// A new version of a secret that a service uses with `on_update = "restart"` makes a version
/// of the same spec: the replicas are replaced through the update policy (not carried over as
/// for an identical spec), two at a time here, and every running one ends on the new version.
#[test]
fn a_restart_version_replaces_replicas_through_the_update_policy() {
    use hoist_proto::files::{FileKind, FileRef, FileWrite};
    let mut sim = Sim::new();
    sim.st.cluster_format = 2;
    for n in ["n1", "n2", "n3"] {
        let mut node = test_node(n, 4000, 8 << 30);
        node.agent_format = 2;
        sim.cmd(Command::RegisterNode(node));
    }
    let key = crate::keyring::DataKey::generate();
    let put = |value: &[u8]| {
        Command::PutFile(Box::new(FileWrite {
            kind: FileKind::Secret,
            name: "pw".into(),
            data: key.seal(b"secret/pw", value),
            size: value.len() as u64,
        }))
    };
    sim.cmd(put(b"one"));
    let mut s = web(6);
    s.update.parallelism = 2;
    s.secrets = vec![FileRef {
        source: "pw".into(),
        target: None,
        mode: None,
        uid: None,
        gid: None,
        on_update: Some("restart".into()),
    }];
    sim.service(s);
    sim.rounds(2);
    let before: Vec<String> = sim.st.tasks.keys().map(String::from).collect();
    sim.cmd(put(b"two"));
    let mut rounds = 0;
    loop {
        let plan = sim.round();
        rounds += 1;
        let states: Vec<String> = sim
            .st
            .tasks
            .values()
            .map(|t| {
                format!(
                    "{}:v{}:{:?}>{:?}",
                    t.slot, t.service_version, t.desired, t.state
                )
            })
            .collect();
        assert!(
            sim.total("web") >= 4,
            "never more than 2 down at once: round {rounds}: {states:?}\n{plan:?}"
        );
        if sim
            .st
            .rollouts
            .get("web")
            .is_some_and(|r| r.version == 2 && r.state == RolloutState::Completed)
        {
            break;
        }
        assert!(rounds < 20, "{:?}", sim.st.rollouts.get("web"));
    }
    let running: Vec<&Task> = sim
        .st
        .tasks
        .values()
        .filter(|t| t.desired == TaskState::Running)
        .collect();
    assert_eq!(running.len(), 6);
    assert!(running.iter().all(|t| t.service_version == 2));
    assert!(
        running.iter().all(|t| !before.iter().any(|b| *b == t.id)),
        "a replica was kept"
    );
}

/// What a random run does between passes.
#[derive(Debug, Clone)]
enum Step {
    /// A round: reconcile, commit, and the agents act.
    Round,
    /// Time passes (ms) and the leader reconciles without committing.
    Wait(u64),
    Down(usize),
    Up(usize),
    Drain(usize),
    Activate(usize),
    Scale(usize, i64),
    /// A new image for a service: a rolling update.
    Update(usize),
    Delete(usize),
    Create(usize),
    /// A running task (the k-th) fails or turns unhealthy.
    Fail(usize),
    Unhealthy(usize),
    Join,
    /// A plan made elsewhere (an earlier leader's, committed late) records a rollout in
    /// progress at a service's current version.
    LateRollout(usize),
}

fn step() -> impl proptest::strategy::Strategy<Value = Step> {
    use proptest::prelude::*;
    prop_oneof![
        6 => Just(Step::Round),
        3 => (0u64..7_000).prop_map(Step::Wait),
        1 => (0usize..4).prop_map(Step::Down),
        1 => (0usize..4).prop_map(Step::Up),
        1 => (0usize..4).prop_map(Step::Drain),
        1 => (0usize..4).prop_map(Step::Activate),
        1 => (0usize..3, 0i64..8).prop_map(|(s, n)| Step::Scale(s, n)),
        1 => (0usize..3).prop_map(Step::Update),
        1 => (0usize..3).prop_map(Step::Delete),
        1 => (0usize..3).prop_map(Step::Create),
        1 => (0usize..40).prop_map(Step::Fail),
        1 => (0usize..40).prop_map(Step::Unhealthy),
        1 => Just(Step::Join),
        1 => (0usize..3).prop_map(Step::LateRollout),
    ]
}

/// The services of a random run: a rolling one with monitor, delay and restart delays, one whose
/// replicas do not all fit (pending; the first one's memory decides how many), and a global one
/// with a constraint.
fn random_service(i: usize, image: u32) -> ServiceSpec {
    let mut s = ServiceSpec::new(["roll", "big", "glob"][i], &format!("img:{image}"));
    s.replicas = 3;
    s.update.monitor = "2s".into();
    s.update.delay = "1s".into();
    s.restart.delay = "3s".into();
    match i {
        0 => {
            s.update.failure_action = FailureAction::Rollback;
            s.resources.memory = Some("1Gi".into());
        }
        1 => s.resources.memory = Some("3Gi".into()),
        _ => {
            s.mode = ServiceMode::Global;
            s.placement.constraints = vec!["node.labels.zone==a".into()];
        }
    }
    s
}

proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config::with_cases(64))]

    /// Through random runs of joins, failures, drains, scales, updates, deletions and waits, a
    /// reconciler that remembers between passes answers what a whole pass does at every pass
    /// (`Sim::reconcile` checks each one).
    #[test]
    fn a_pass_that_remembers_answers_what_a_whole_pass_does(
        steps in proptest::collection::vec(step(), 1..60)
    ) {
        let mut sim = Sim::new();
        let mut nodes = 0;
        let join = |sim: &mut Sim, nodes: &mut usize| {
            let zone = if nodes.is_multiple_of(2) { "a" } else { "b" };
            sim.node(&format!("n{nodes}"), &[("zone", zone)]);
            *nodes += 1;
        };
        for _ in 0..3 {
            join(&mut sim, &mut nodes);
        }
        let mut images = [1u32; 3];
        for i in 0..3 {
            sim.service(random_service(i, 1));
        }
        let node = |nodes: usize, i: usize| format!("n{}", i % nodes);
        for step in steps {
            match step {
                Step::Round => {
                    sim.round();
                }
                Step::Wait(ms) => sim.now += ms,
                Step::Down(i) => sim.set_status(&node(nodes, i), NodeStatus::Down),
                Step::Up(i) => sim.set_status(&node(nodes, i), NodeStatus::Ready),
                Step::Drain(i) | Step::Activate(i) => {
                    let availability = match step {
                        Step::Drain(_) => NodeAvailability::Drained,
                        _ => NodeAvailability::Active,
                    };
                    sim.cmd(Command::SetNodeAvailability { id: node(nodes, i), availability });
                }
                Step::Scale(i, replicas) => {
                    let name = random_service(i, 1).name;
                    if sim.st.services.contains_key(&name) {
                        sim.cmd(Command::ScaleService { name, replicas });
                    }
                }
                Step::Update(i) => {
                    images[i] += 1;
                    let mut s = random_service(i, images[i]);
                    if let Some(r) = sim.st.services.get(&s.name) {
                        s.replicas = r.current().spec.replicas;
                    }
                    sim.service(s);
                }
                Step::Delete(i) => {
                    let name = random_service(i, 1).name;
                    if sim.st.services.contains_key(&name) {
                        sim.cmd(Command::DeleteService { name });
                    }
                }
                Step::Create(i) => {
                    if !sim.st.services.contains_key(&random_service(i, 1).name) {
                        sim.service(random_service(i, images[i]));
                    }
                }
                Step::Fail(k) | Step::Unhealthy(k) => {
                    let running: Vec<Task> = sim
                        .st
                        .tasks
                        .values()
                        .filter(|t| t.state == TaskState::Running)
                        .cloned()
                        .collect();
                    if let Some(t) = running.get(k % running.len().max(1)) {
                        match step {
                            Step::Fail(_) => sim.report(t, TaskState::Failed, t.health),
                            _ => sim.report(t, TaskState::Running, Health::Unhealthy),
                        }
                    }
                }
                Step::Join => join(&mut sim, &mut nodes),
                Step::LateRollout(i) => {
                    let name = random_service(i, 1).name;
                    if let Some(r) = sim.st.services.get(&name) {
                        let version = r.current().version;
                        let rollout = Rollout {
                            version,
                            from_version: version.saturating_sub(1),
                            state: RolloutState::Updating,
                            updated: 0,
                            total: 1,
                            failures: 0,
                            message: "late".into(),
                            started_ms: sim.now,
                            updated_ms: sim.now,
                            batch_started_ms: 0,
                            rollback_of: None,
                        };
                        sim.cmd(Command::Plan(Plan {
                            rollouts: vec![(name, rollout)],
                            ..Default::default()
                        }));
                    }
                }
            }
            sim.reconcile();
        }
    }
}

/// A converged service is skipped until something it depends on changes: the pass then answers
/// again, and the skipped service's "pending" is still told on every pass.
#[test]
fn a_converged_service_is_skipped_and_its_pending_still_told() {
    let mut sim = Sim::new();
    for n in ["n1", "n2"] {
        sim.node(n, &[]);
    }
    let mut big = web(5);
    big.name = "big".into();
    big.resources.memory = Some("3Gi".into());
    sim.service(big);
    sim.service(web(4));
    sim.rounds(3);
    // Converged, with one of big's replicas pending (two per node fit).
    let r = sim.reconcile();
    assert!(r.is_empty(), "{r:?}");
    assert_eq!(r.pending.keys().collect::<Vec<_>>(), ["big"]);
    assert_eq!(sim.reconciler.memo.quiet_services(), ["big", "web"]);
    // A task of web fails: web runs again (and replaces it), big stays skipped.
    let t = sim
        .st
        .tasks
        .values()
        .find(|t| t.service == "web")
        .cloned()
        .expect("a task");
    sim.report(&t, TaskState::Failed, Health::None);
    let r = sim.reconcile();
    assert_eq!(r.plan.stop.len(), 1, "{r:?}");
    assert_eq!(sim.reconciler.memo.quiet_services(), ["big"], "{r:?}");
    // Its slot waits the restart delay; big's pending is told although big was skipped.
    assert_eq!(r.pending.keys().collect::<Vec<_>>(), ["big", "web"]);
    assert_eq!(
        r.pending["big"],
        vec![(4..5, r.pending["big"][0].1.clone())]
    );
}

/// A replica that failed is replaced only once `restart.delay` has passed; until then its slot
/// is pending with the reason, and the failed task stays in it. (Filed away at once, as before,
/// it was replaced on the next pass whatever the delay.)
#[test]
fn a_failed_replica_is_replaced_after_its_restart_delay() {
    let mut sim = Sim::new();
    sim.node("n1", &[]);
    let mut s = web(1);
    s.restart.delay = "5s".into();
    sim.service(s);
    sim.rounds(2);
    let t = sim.st.tasks.values().next().cloned().expect("a task");
    sim.report(&t, TaskState::Failed, Health::None);
    let failed_at = sim.now;
    let mut replaced_after = None;
    for _ in 0..10 {
        let r = sim.round();
        if !r.plan.place.is_empty() {
            replaced_after = Some(sim.now - failed_at);
            break;
        }
        assert_eq!(
            r.pending["web"],
            vec![(0..1, "waiting restart delay after a failure".into())]
        );
        assert!(
            sim.st.tasks.contains_key(&t.id),
            "the failed task stays meanwhile"
        );
    }
    // The delay counts from the pass that stopped it, the first after the failure.
    assert_eq!(replaced_after, Some(1_000 + 5_000));
    assert!(
        !sim.st.tasks.contains_key(&t.id),
        "filed away once replaced"
    );
}

/// A change to a node makes a pass run again only the services with tasks on it (and global
/// services, and services with pending slots): the others did not read it.
#[test]
fn a_node_change_runs_again_only_the_services_on_that_node() {
    let mut sim = Sim::new();
    sim.node("n1", &[("zone", "a")]);
    sim.node("n2", &[("zone", "b")]);
    for (name, zone) in [("api", "b"), ("web", "a")] {
        let mut s = web(2);
        s.name = name.into();
        s.placement.constraints = vec![format!("node.labels.zone=={zone}")];
        sim.service(s);
    }
    sim.rounds(3);
    sim.reconcile();
    assert!(sim.reconcile().is_empty());
    assert!(sim.reconciler.ran.is_empty(), "{:?}", sim.reconciler.ran);
    sim.cmd(Command::SetNodeAvailability {
        id: "n2".into(),
        availability: NodeAvailability::Paused,
    });
    assert!(sim.reconcile().is_empty());
    assert_eq!(sim.reconciler.ran, ["api"]);
    assert!(sim.reconcile().is_empty());
    assert!(sim.reconciler.ran.is_empty(), "{:?}", sim.reconciler.ran);
}
