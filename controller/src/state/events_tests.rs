//! What each kind of command tells (`events.rs`), on the pure state.

use super::super::tests::{req, test_node, test_task};
use super::super::State;
use hoist_proto::cluster::{
    NodeAvailability, NodeStatus, ReleaseState, Rollout, RolloutState, TaskState,
};
use hoist_proto::events::{self as ev, Event, EventId};
use hoist_proto::node::{Health, TaskStatus};
use hoist_proto::raft::{Command, Plan, Response, StackDeploy};
use hoist_proto::service::ServiceSpec;
use proptest::prelude::*;

/// A cluster at format 2 with node `n1`, applied through the telling path from index 1.
struct Lab {
    st: State,
    index: u64,
}

impl Lab {
    fn new() -> Lab {
        let mut lab = Lab {
            st: State {
                cluster_format: 2,
                ..State::default()
            },
            index: 0,
        };
        lab.tell(Command::RegisterNode(test_node("n1", 8_000, 8 << 30)));
        lab
    }

    /// Applies `command` as the next entry; answers its events.
    fn tell(&mut self, command: Command) -> Vec<Event> {
        self.index += 1;
        let (_, events) = self
            .st
            .apply_at_telling(self.index, &req(self.index * 10, command));
        events
    }

    /// The events' types.
    fn kinds(&mut self, command: Command) -> Vec<String> {
        self.tell(command).into_iter().map(|e| e.kind).collect()
    }
}

fn spec(name: &str, image: &str, replicas: i64) -> ServiceSpec {
    let mut s = ServiceSpec::new(name, image);
    s.replicas = replicas;
    s
}

fn apply(s: ServiceSpec) -> Command {
    Command::ApplyService(Box::new(s))
}

fn report(task: &str, state: TaskState, health: Health, restarts: u64, message: &str) -> Command {
    Command::ReportStatus {
        node: "n1".into(),
        tasks: vec![TaskStatus {
            task_id: task.into(),
            state,
            health,
            container_id: Some("c".into()),
            address: Some("10.200.1.5".into()),
            exit_code: None,
            message: message.into(),
            restarts,
        }],
    }
}

fn rollout(version: u64, from: u64, state: RolloutState, updated: u64, total: u64) -> Rollout {
    Rollout {
        version,
        from_version: from,
        state,
        updated,
        total,
        failures: 0,
        message: format!("{updated}/{total} replicas updated to version {version}"),
        started_ms: 0,
        updated_ms: 0,
        batch_started_ms: 0,
        rollback_of: None,
    }
}

fn one(events: Vec<Event>) -> Event {
    assert_eq!(events.len(), 1, "{events:#?}");
    events.into_iter().next().unwrap()
}

#[test]
fn a_service_is_created_updated_scaled_rolled_back_and_removed() {
    let mut lab = Lab::new();
    let e = one(lab.tell(apply(spec("web", "busybox", 3))));
    assert_eq!(
        (
            e.kind.as_str(),
            e.service.as_deref(),
            e.version,
            e.to.as_deref()
        ),
        (ev::SERVICE_CREATED, Some("web"), Some(1), Some("3"))
    );
    assert_eq!(e.id, EventId::new(lab.index, 0));
    assert_eq!((e.index, e.time_ms), (lab.index, lab.index * 10));
    assert_eq!(e.message, "web created: 3 replicas of busybox");
    // The same spec again changes nothing and tells nothing.
    assert!(lab.tell(apply(spec("web", "busybox", 3))).is_empty());
    let e = one(lab.tell(apply(spec("web", "busybox:1.36", 3))));
    assert_eq!(
        (e.kind.as_str(), e.from.as_deref(), e.to.as_deref()),
        (ev::SERVICE_UPDATED, Some("1"), Some("2"))
    );
    assert_eq!(e.message, "web updated to version 2: image changed");
    let e = one(lab.tell(Command::ScaleService {
        name: "web".into(),
        replicas: 5,
    }));
    assert_eq!(
        (e.kind.as_str(), e.from.as_deref(), e.to.as_deref()),
        (ev::SERVICE_SCALED, Some("3"), Some("5"))
    );
    // An apply that changes the image and the count tells both.
    let kinds = lab.kinds(apply(spec("web", "busybox:1.37", 2)));
    assert_eq!(kinds, [ev::SERVICE_UPDATED, ev::SERVICE_SCALED]);
    let e = lab.tell(Command::RollbackService {
        name: "web".into(),
        version: Some(2),
    });
    assert_eq!(e[0].kind, ev::SERVICE_UPDATED);
    assert!(
        e[0].message
            .contains("rolled back to the spec of version 2"),
        "{}",
        e[0].message
    );
    assert_eq!(e[1].kind, ev::SERVICE_SCALED);
    let e = one(lab.tell(Command::DeleteService { name: "web".into() }));
    assert_eq!(
        (e.kind.as_str(), e.service.as_deref()),
        (ev::SERVICE_REMOVED, Some("web"))
    );
    // Refused: nothing happened, nothing is told.
    assert!(lab
        .tell(Command::ScaleService {
            name: "web".into(),
            replicas: 2
        })
        .is_empty());
}

#[test]
fn nodes_join_go_down_come_back_drain_and_leave() {
    let mut lab = Lab::new();
    let e = one(lab.tell(Command::RegisterNode(test_node("n2", 1000, 1 << 30))));
    assert_eq!(
        (e.kind.as_str(), e.node.as_deref()),
        (ev::NODE_REGISTERED, Some("n2"))
    );
    let down = Command::SetNodeStatus {
        id: "n2".into(),
        status: NodeStatus::Down,
    };
    let e = one(lab.tell(down.clone()));
    assert_eq!(
        (e.kind.as_str(), e.from.as_deref(), e.to.as_deref()),
        (ev::NODE_DOWN, Some("ready"), Some("down"))
    );
    // Said once: the same status again is no news.
    assert!(lab.tell(down).is_empty());
    // An agent that registers again is up.
    assert_eq!(
        lab.kinds(Command::RegisterNode(test_node("n2", 1000, 1 << 30))),
        [ev::NODE_UP]
    );
    let avail = |a| Command::SetNodeAvailability {
        id: "n2".into(),
        availability: a,
    };
    assert_eq!(
        lab.kinds(avail(NodeAvailability::Drained)),
        [ev::NODE_DRAINED]
    );
    assert_eq!(
        lab.kinds(avail(NodeAvailability::Paused)),
        [ev::NODE_PAUSED]
    );
    assert_eq!(
        lab.kinds(avail(NodeAvailability::Active)),
        [ev::NODE_ACTIVE]
    );
    assert_eq!(
        lab.kinds(Command::RemoveNode { id: "n2".into() }),
        [ev::NODE_REMOVED]
    );
    assert!(lab.tell(Command::RemoveNode { id: "n2".into() }).is_empty());
}

#[test]
fn a_replica_is_placed_runs_gets_healthy_restarts_fails_and_is_forgotten() {
    let mut lab = Lab::new();
    lab.tell(apply(spec("web", "busybox", 2)));
    let place = Command::Plan(Plan {
        place: vec![
            test_task("t0", "web", 1, 0, "n1"),
            test_task("t1", "web", 1, 1, "n1"),
        ],
        ..Plan::default()
    });
    let placed = lab.tell(place);
    assert_eq!(placed.len(), 2);
    let e = &placed[1];
    assert_eq!(
        (
            e.kind.as_str(),
            e.task.as_deref(),
            e.slot,
            e.node.as_deref(),
            e.from.as_deref(),
            e.to.as_deref()
        ),
        (
            ev::TASK_STATE,
            Some("t1"),
            Some(1),
            Some("n1"),
            None,
            Some("pending")
        )
    );
    assert_eq!(e.id, EventId::new(lab.index, 1));
    let e = one(lab.tell(report("t0", TaskState::Running, Health::Starting, 0, "")));
    assert_eq!(
        (e.kind.as_str(), e.from.as_deref(), e.to.as_deref()),
        (ev::TASK_STATE, Some("pending"), Some("running"))
    );
    assert_eq!(e.message, "web.0 on n1: pending → running");
    let e = one(lab.tell(report("t0", TaskState::Running, Health::Healthy, 0, "")));
    assert_eq!(
        (e.kind.as_str(), e.to.as_deref()),
        (ev::TASK_HEALTH, Some("healthy"))
    );
    // The same report again is no news.
    assert!(lab
        .tell(report("t0", TaskState::Running, Health::Healthy, 0, ""))
        .is_empty());
    let kinds = lab.kinds(report(
        "t0",
        TaskState::Running,
        Health::Starting,
        1,
        "exited with code 1",
    ));
    assert_eq!(kinds, [ev::TASK_RESTARTED, ev::TASK_HEALTH]);
    let e = one(lab.tell(report(
        "t0",
        TaskState::Failed,
        Health::Unhealthy,
        1,
        "unhealthy",
    )));
    assert_eq!(
        (e.kind.as_str(), e.to.as_deref()),
        (ev::TASK_STATE, Some("failed"))
    );
    assert_eq!(e.message, "web.0 on n1: running → failed: unhealthy");
    // Ended replicas filed away tell nothing more; one still pending (on a dead node) is
    // told forgotten.
    let stop = Command::Plan(Plan {
        stop: vec![("t1".into(), "node n1 is down".into())],
        ..Plan::default()
    });
    assert!(lab.tell(stop).is_empty());
    let remove = Command::Plan(Plan {
        remove: vec!["t0".into(), "t1".into()],
        ..Plan::default()
    });
    let e = one(lab.tell(remove));
    assert_eq!(
        (e.kind.as_str(), e.task.as_deref(), e.from.as_deref()),
        (ev::TASK_REMOVED, Some("t1"), Some("pending"))
    );
    assert!(e.message.contains("node n1 is down"), "{}", e.message);
}

#[test]
fn a_rollout_starts_progresses_and_completes() {
    let mut lab = Lab::new();
    lab.tell(apply(spec("web", "busybox", 3)));
    lab.tell(apply(spec("web", "busybox:2", 3)));
    let progress = |r: Rollout| {
        Command::Plan(Plan {
            rollouts: vec![("web".into(), r)],
            ..Plan::default()
        })
    };
    let e = one(lab.tell(progress(rollout(2, 1, RolloutState::Updating, 0, 3))));
    assert_eq!(
        (e.kind.as_str(), e.from.as_deref(), e.to.as_deref()),
        (ev::ROLLOUT_STARTED, Some("1"), Some("2"))
    );
    let e = one(lab.tell(progress(rollout(2, 1, RolloutState::Updating, 1, 3))));
    assert_eq!(
        (e.kind.as_str(), e.from.as_deref(), e.to.as_deref()),
        (ev::ROLLOUT_PROGRESS, Some("0/3"), Some("1/3"))
    );
    assert_eq!(e.message, "web: 1/3 replicas updated to version 2");
    // A plan that records the same progress is no news.
    assert!(lab
        .tell(progress(rollout(2, 1, RolloutState::Updating, 1, 3)))
        .is_empty());
    let e = one(lab.tell(progress(rollout(2, 1, RolloutState::Completed, 3, 3))));
    assert_eq!(
        (e.kind.as_str(), e.from.as_deref(), e.to.as_deref()),
        (ev::ROLLOUT_COMPLETED, Some("updating"), Some("completed"))
    );
    // A plan for another version than the service's is not applied, and tells nothing.
    assert!(lab
        .tell(progress(rollout(7, 1, RolloutState::Updating, 0, 3)))
        .is_empty());
}

#[test]
fn a_failed_update_rolls_back_in_one_entry_and_its_events_are_numbered_in_order() {
    let mut lab = Lab::new();
    lab.tell(apply(spec("web", "busybox", 2)));
    lab.tell(apply(spec("web", "busybox:bad", 2)));
    let updating = Plan {
        rollouts: vec![("web".into(), rollout(2, 1, RolloutState::Updating, 0, 2))],
        ..Plan::default()
    };
    lab.tell(Command::Plan(updating));
    // What the leader commits on a failed update with failure_action = "rollback".
    let mut back = rollout(3, 2, RolloutState::RollingBack, 0, 2);
    back.rollback_of = Some(2);
    back.message = "rolling back to the spec of version 1: web.0 failed".into();
    let events = lab.tell(Command::Batch(vec![
        Command::RollbackService {
            name: "web".into(),
            version: Some(1),
        },
        Command::Plan(Plan {
            rollouts: vec![("web".into(), back.clone())],
            ..Plan::default()
        }),
    ]));
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, [ev::SERVICE_UPDATED, ev::ROLLOUT_ROLLING_BACK]);
    let ids: Vec<EventId> = events.iter().map(|e| e.id).collect();
    assert_eq!(
        ids,
        [EventId::new(lab.index, 0), EventId::new(lab.index, 1)]
    );
    assert_eq!(events[1].from.as_deref(), Some("2"));
    back.state = RolloutState::RolledBack;
    back.updated = 2;
    let e = one(lab.tell(Command::Plan(Plan {
        rollouts: vec![("web".into(), back)],
        ..Plan::default()
    })));
    assert_eq!(e.kind, ev::ROLLOUT_ROLLED_BACK);
}

#[test]
fn an_autoscaling_decision_is_told_before_the_scale_it_makes() {
    use hoist_proto::cluster::{AutoscaleDecision, AutoscaleSource};
    let mut lab = Lab::new();
    let mut s = spec("web", "busybox", 2);
    s.autoscale = Some(hoist_proto::service::Autoscale {
        min: 1,
        max: 4,
        step: None,
        target: None,
        cooldown_up: None,
        stabilization_down: None,
        query: None,
        target_value: None,
        interval: None,
    });
    lab.tell(apply(s));
    let decision = |from, to, dedup: Option<&str>| {
        Command::Autoscale(Box::new(AutoscaleDecision {
            service: "web".into(),
            source: AutoscaleSource::Alertmanager,
            from,
            to,
            reason: "alert HighLoad firing".into(),
            detail: if to == 4 {
                "clamped to max 4".into()
            } else {
                String::new()
            },
            dedup: dedup.map(str::to_string),
            index: 0,
            time_ms: 0,
        }))
    };
    let events = lab.tell(decision(2, 4, Some("k1")));
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, [ev::AUTOSCALE_DECISION, ev::SERVICE_SCALED]);
    assert_eq!(
        events[0].message,
        "web autoscaled from 2 to 4 (alertmanager): alert HighLoad firing; clamped to max 4"
    );
    assert_eq!(
        (events[0].from.as_deref(), events[0].to.as_deref()),
        (Some("2"), Some("4"))
    );
    // The same alert delivered again is applied once: nothing more is told.
    assert!(lab.tell(decision(4, 4, Some("k1"))).is_empty());
    // A decision that holds the count is told, with no scale.
    let e = one(lab.tell(decision(4, 4, None)));
    assert!(
        e.message.starts_with("web kept at 4 replicas"),
        "{}",
        e.message
    );
    // Refused (made from a stale count): nothing.
    assert!(lab.tell(decision(2, 3, None)).is_empty());
}

fn stack_deploy(images: &[(&str, &str)]) -> Command {
    Command::DeployStack(Box::new(StackDeploy {
        name: "shop".into(),
        services: images
            .iter()
            .map(|(n, i)| spec(&format!("shop_{n}"), i, 1))
            .collect(),
        prune: true,
    }))
}

#[test]
fn a_stack_release_deploys_gets_its_verdict_and_the_stack_goes() {
    let mut lab = Lab::new();
    let kinds = lab.kinds(stack_deploy(&[("api", "busybox"), ("web", "busybox")]));
    assert_eq!(
        kinds,
        [ev::SERVICE_CREATED, ev::SERVICE_CREATED, ev::STACK_DEPLOYED]
    );
    let verdict = |release, state| Command::SetReleaseState {
        stack: "shop".into(),
        release,
        state,
        message: String::new(),
    };
    let e = one(lab.tell(verdict(1, ReleaseState::Completed)));
    assert_eq!(
        (e.kind.as_str(), e.stack.as_deref(), e.release),
        (ev::STACK_COMPLETED, Some("shop"), Some(1))
    );
    // A stale verdict is refused and tells nothing.
    assert!(lab.tell(verdict(1, ReleaseState::Completed)).is_empty());
    // Release 2 changes api and prunes web; release 3 comes while 2 still deploys.
    let kinds = lab.kinds(stack_deploy(&[("api", "busybox:2")]));
    assert_eq!(
        kinds,
        [ev::SERVICE_UPDATED, ev::SERVICE_REMOVED, ev::STACK_DEPLOYED]
    );
    let kinds = lab.kinds(stack_deploy(&[("api", "busybox:3")]));
    assert_eq!(
        kinds,
        [
            ev::SERVICE_UPDATED,
            ev::STACK_SUPERSEDED,
            ev::STACK_DEPLOYED
        ]
    );
    let events = lab.tell(Command::RollbackStack {
        stack: "shop".into(),
        release: 3,
        reason: "shop_api failed".into(),
    });
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, [ev::SERVICE_UPDATED, ev::STACK_ROLLED_BACK]);
    assert!(events[1].message.contains("shop_api failed"));
    let kinds = lab.kinds(Command::RemoveStack {
        name: "shop".into(),
    });
    assert_eq!(kinds, [ev::SERVICE_REMOVED, ev::STACK_REMOVED]);
}

#[test]
fn the_cluster_format_and_a_restore_are_told() {
    let mut lab = Lab::new();
    lab.st.cluster_format = 1;
    let e = one(lab.tell(Command::SetClusterFormat { format: 2 }));
    assert_eq!(
        (e.kind.as_str(), e.from.as_deref(), e.to.as_deref()),
        (ev::CLUSTER_FORMAT, Some("1"), Some("2"))
    );
    assert!(lab.tell(Command::SetClusterFormat { format: 2 }).is_empty());
    let image = super::super::encode_snapshot(&lab.st, 2).unwrap();
    assert_eq!(lab.kinds(Command::Restore(image)), [ev::CLUSTER_RESTORED]);
    // Commands with nothing to tell.
    assert!(lab.tell(Command::Noop).is_empty());
    assert!(lab
        .tell(Command::SetNodeLabels {
            id: "n1".into(),
            set: [("zone".to_string(), "a".to_string())].into(),
            remove: vec![],
        })
        .is_empty());
}

fn arb_command() -> impl Strategy<Value = Command> {
    let name = prop::sample::select(vec!["a", "b", "Bad_Name"]);
    let image = prop::sample::select(vec!["x", "y"]);
    let task = prop::sample::select(vec!["t0", "t1", "t2"]);
    let state = prop::sample::select(vec![
        TaskState::Pending,
        TaskState::Running,
        TaskState::Failed,
    ]);
    let single = prop_oneof![
        3 => (name.clone(), image, 0i64..4).prop_map(|(n, i, r)| apply(spec(n, i, r))),
        1 => name.clone().prop_map(|n| Command::DeleteService { name: n.into() }),
        2 => (name.clone(), -1i64..4).prop_map(|(n, r)| Command::ScaleService { name: n.into(), replicas: r }),
        1 => name.clone().prop_map(|n| Command::RollbackService { name: n.into(), version: None }),
        2 => (task.clone(), name, 0u64..3).prop_map(|(t, n, slot)| Command::Plan(Plan {
            place: vec![test_task(t, n, 1, slot, "n1")],
            ..Plan::default()
        })),
        3 => (task.clone(), state).prop_map(|(t, s)| report(t, s, Health::None, 0, "")),
        1 => task.prop_map(|t| Command::RemoveTasks(vec![t.into()])),
        1 => prop::bool::ANY.prop_map(|down| Command::SetNodeStatus {
            id: "n1".into(),
            status: if down { NodeStatus::Down } else { NodeStatus::Ready },
        }),
    ];
    prop_oneof![
        4 => single.clone(),
        1 => prop::collection::vec(single, 0..4).prop_map(Command::Batch),
    ]
}

/// An event without its place in the log.
fn unnumbered(mut e: Event) -> Event {
    e.id = EventId::new(0, 0);
    e.index = 0;
    e
}

proptest! {
    /// Telling changes nothing of what `apply` does, a refused command tells nothing, a batch
    /// tells what its commands tell one by one, and events are numbered in order in their entry.
    #[test]
    fn telling_is_a_pure_observer(cmds in prop::collection::vec(arb_command(), 0..40)) {
        let mut quiet = Lab::new();
        let mut told = Lab::new();
        // Applies batches command by command, each as an entry of its own.
        let mut split = Lab::new();
        for cmd in &cmds {
            quiet.index += 1;
            let time = quiet.index * 10;
            let expected = quiet.st.apply_at(quiet.index, &req(time, cmd.clone()));
            told.index += 1;
            let (got, events) = told.st.apply_at_telling(told.index, &req(time, cmd.clone()));
            prop_assert_eq!(&got, &expected);
            prop_assert_eq!(&told.st, &quiet.st);
            for (i, e) in events.iter().enumerate() {
                prop_assert_eq!(e.id, EventId::new(told.index, i as u32));
                prop_assert!(ev::TYPES.contains(&e.kind.as_str()), "{}", e.kind);
            }
            if matches!(got, Response::Error(_)) {
                prop_assert!(events.is_empty());
            }
            let parts = match cmd {
                Command::Batch(parts) => parts.clone(),
                other => vec![other.clone()],
            };
            let mut one_by_one = Vec::new();
            for part in parts {
                split.index += 1;
                let (_, e) = split.st.apply_at_telling(split.index, &req(time, part));
                one_by_one.extend(e.into_iter().map(unnumbered));
            }
            let events: Vec<Event> = events.into_iter().map(unnumbered).collect();
            prop_assert_eq!(events, one_by_one);
        }
    }
}

/// What telling costs `apply`: `hcargo test -p hoist-controller --release --lib
/// telling_costs -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement, not a check"]
fn telling_costs() {
    use std::time::Instant;
    const N: u64 = 1000;
    let mut base = Lab::new();
    base.tell(apply(spec("web", "busybox", N as i64)));
    let place = Command::Plan(Plan {
        place: (0..N)
            .map(|i| test_task(&format!("t{i}"), "web", 1, i, "n1"))
            .collect(),
        ..Plan::default()
    });
    let running = Command::ReportStatus {
        node: "n1".into(),
        tasks: (0..N)
            .map(|i| TaskStatus {
                task_id: format!("t{i}"),
                state: TaskState::Running,
                health: Health::None,
                container_id: Some("c".into()),
                address: Some("10.200.1.5".into()),
                exit_code: None,
                message: String::new(),
                restarts: 0,
            })
            .collect(),
    };
    for (what, cmd) in [("place 1000", place.clone()), ("1000 running", running)] {
        let mut st = base.st.clone();
        if what.starts_with("1000") {
            st.apply(&req(1, place.clone()));
        }
        let rounds = 50;
        let (mut quiet, mut told, mut events) = (0u128, 0u128, 0);
        for _ in 0..rounds {
            let mut a = st.clone();
            let t = Instant::now();
            a.apply_at(100, &req(1, cmd.clone()));
            quiet += t.elapsed().as_micros();
            let mut b = st.clone();
            let t = Instant::now();
            events = b.apply_at_telling(100, &req(1, cmd.clone())).1.len();
            told += t.elapsed().as_micros();
        }
        eprintln!(
            "{what}: apply {} µs, apply and tell {} µs ({events} events)",
            quiet / rounds,
            told / rounds
        );
    }
    // What a kept event weighs: the struct and its strings.
    let mut st = base.st.clone();
    let (_, events) = st.apply_at_telling(100, &req(1, place));
    let heap: usize = events
        .iter()
        .map(|e| {
            let opt = |s: &Option<String>| s.as_ref().map_or(0, String::capacity);
            e.kind.capacity()
                + e.message.capacity()
                + opt(&e.service)
                + opt(&e.node)
                + opt(&e.task)
                + opt(&e.stack)
                + opt(&e.from)
                + opt(&e.to)
        })
        .sum();
    let each = std::mem::size_of::<Event>() + heap / events.len();
    eprintln!(
        "a task.state event: {each} bytes; {} events: {:.1} MiB",
        crate::events::EVENTS_KEPT,
        (each * crate::events::EVENTS_KEPT) as f64 / (1 << 20) as f64
    );
}
