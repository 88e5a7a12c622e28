//! Unit and property tests of the pure state: no Raft, no I/O.

use super::*;
use hoist_proto::cluster::{NodeAvailability, NodeResources, NodeStatus, TaskState, VersionOrigin};
use hoist_proto::node::{Health, TaskStatus};
use hoist_proto::raft::Plan;
use hoist_proto::service::ServiceSpec;
use proptest::prelude::*;

pub(crate) fn req(time_ms: u64, command: Command) -> Request {
    Request { time_ms, command }
}

pub(crate) fn spec(name: &str, image: &str, replicas: i64) -> ServiceSpec {
    let mut s = ServiceSpec::new(name, image);
    s.replicas = replicas;
    s
}

fn change(r: Response) -> hoist_proto::cluster::ServiceChange {
    match r {
        Response::Service(c) => c,
        other => panic!("expected a service change, got {other:?}"),
    }
}

#[test]
fn apply_is_idempotent_and_versions_grow() {
    let mut st = State::default();
    let c1 = change(st.apply(&req(
        10,
        Command::ApplyService(Box::new(spec("web", "nginx:1", 2))),
    )));
    assert!(c1.changed);
    assert_eq!((c1.service.version, c1.service.created_ms), (1, 10));
    let again = change(st.apply(&req(
        20,
        Command::ApplyService(Box::new(spec("web", "nginx:1", 2))),
    )));
    assert!(!again.changed);
    assert_eq!((again.service.version, again.service.updated_ms), (1, 10));
    let c2 = change(st.apply(&req(
        30,
        Command::ApplyService(Box::new(spec("web", "nginx:2", 2))),
    )));
    assert_eq!(
        (
            c2.service.version,
            c2.service.created_ms,
            c2.service.updated_ms
        ),
        (2, 10, 30)
    );
    let c3 = change(st.apply(&req(
        40,
        Command::ScaleService {
            name: "web".into(),
            replicas: 5,
        },
    )));
    assert_eq!((c3.service.version, c3.service.spec.replicas), (3, 5));
    let h = st.history("web").unwrap();
    assert_eq!(
        h.iter().map(|v| v.origin).collect::<Vec<_>>(),
        [
            VersionOrigin::Apply,
            VersionOrigin::Apply,
            VersionOrigin::Scale
        ]
    );
}

#[test]
fn specs_that_differ_only_in_replicas_run_the_same_containers() {
    let a = spec("web", "busybox", 1);
    assert!(same_run_spec(&a, &spec("web", "busybox", 7)));
    assert!(!same_run_spec(&a, &spec("web", "nginx", 1)));
    let mut b = a.clone();
    b.env.insert("A".into(), "1".into());
    assert!(!same_run_spec(&a, &b));
    let mut b = a.clone();
    b.update.parallelism = 3;
    assert!(!same_run_spec(&a, &b));
}

#[test]
fn rollback_to_previous_and_to_a_version() {
    let mut st = State::default();
    st.apply(&req(
        1,
        Command::ApplyService(Box::new(spec("web", "nginx:1", 1))),
    ));
    st.apply(&req(
        2,
        Command::ApplyService(Box::new(spec("web", "nginx:2", 1))),
    ));
    let r = change(st.apply(&req(
        3,
        Command::RollbackService {
            name: "web".into(),
            version: None,
        },
    )));
    assert_eq!(
        (r.service.version, r.service.spec.image.as_str()),
        (3, "nginx:1")
    );
    assert_eq!(
        st.history("web").unwrap()[2].origin,
        VersionOrigin::Rollback { from: 1 }
    );
    let r = change(st.apply(&req(
        4,
        Command::RollbackService {
            name: "web".into(),
            version: Some(2),
        },
    )));
    assert_eq!(
        (r.service.version, r.service.spec.image.as_str()),
        (4, "nginx:2")
    );
    let before = st.hash();
    match st.apply(&req(
        5,
        Command::RollbackService {
            name: "web".into(),
            version: Some(9),
        },
    )) {
        Response::Error(e) => {
            assert_eq!(e.code, ErrorCode::NotFound);
            assert_eq!(
                e.message,
                "version: service \"web\" has no version 9 (kept: 1..=4)"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(st.hash(), before);
}

#[test]
fn refusals_name_the_field_and_change_nothing() {
    let mut st = State::default();
    st.apply(&req(
        1,
        Command::ApplyService(Box::new(spec("web", "nginx:1", 1))),
    ));
    let before = st.clone();
    let cases = [
        (
            Command::ScaleService {
                name: "web".into(),
                replicas: -1,
            },
            "replicas: must be ≥ 0",
        ),
        (
            Command::ScaleService {
                name: "nope".into(),
                replicas: 1,
            },
            "service \"nope\" not found",
        ),
        (
            Command::DeleteService {
                name: "nope".into(),
            },
            "service \"nope\" not found",
        ),
        (
            Command::ApplyService(Box::new(spec("web", "nginx:1", -3))),
            "replicas: must be ≥ 0",
        ),
        (
            Command::RollbackService {
                name: "web".into(),
                version: None,
            },
            "service \"web\" has no version before 1",
        ),
        (
            Command::Restore(b"junk".to_vec()),
            "snapshot: not a Hoist state image: bad magic at offset 0",
        ),
    ];
    for (cmd, msg) in cases {
        match st.apply(&req(2, cmd.clone())) {
            Response::Error(e) => assert_eq!(e.message, msg, "{cmd:?}"),
            other => panic!("{cmd:?} gave {other:?}"),
        }
        assert_eq!(st, before, "{cmd:?} changed the state");
    }
}

#[test]
fn history_is_bounded() {
    let mut st = State::default();
    for i in 0..(HISTORY_LIMIT as i64 + 10) {
        st.apply(&req(
            1,
            Command::ApplyService(Box::new(spec("web", "img", i))),
        ));
    }
    let h = st.history("web").unwrap();
    assert_eq!(h.len(), HISTORY_LIMIT);
    assert_eq!(h.last().unwrap().version, HISTORY_LIMIT as u64 + 10);
    assert_eq!(h[0].version, 11);
}

pub(crate) fn test_node(id: &str, cpu_millis: u64, memory_bytes: u64) -> Node {
    Node {
        id: id.into(),
        hostname: format!("h-{id}"),
        address: "10.0.0.1".into(),
        labels: Default::default(),
        agent_labels: Default::default(),
        capacity: NodeResources {
            cpu_millis,
            memory_bytes,
        },
        status: NodeStatus::Ready,
        availability: NodeAvailability::Active,
        agent_version: String::new(),
        agent_format: 0,
        registered_ms: 0,
        updated_ms: 0,
        subnet: None,
        wg_public_key: None,
        wg_endpoint: None,
        overlay_generation: 0,
        overlay_problem: None,
        credential_sha256: String::new(),
        cert_key_sha256: String::new(),
    }
}

pub(crate) fn test_task(id: &str, service: &str, version: u64, slot: u64, node: &str) -> Task {
    Task {
        id: id.into(),
        service: service.into(),
        service_version: version,
        slot,
        node: node.into(),
        desired: TaskState::Running,
        state: TaskState::Pending,
        health: Health::None,
        address: None,
        container_id: None,
        exit_code: None,
        message: Default::default(),
        restarts: 0,
        created_ms: 0,
        updated_ms: 0,
        ready_since_ms: None,
        drain_index: None,
    }
}

/// A cluster of `n` ready overlay nodes `n1..`, at format 2.
pub(crate) fn cluster_with_nodes(n: usize) -> State {
    let mut st = State {
        cluster_format: 2,
        ..State::default()
    };
    for i in 1..=n {
        let mut node = test_node(&format!("n{i}"), 4_000, 4 << 30);
        node.agent_format = 2;
        node.subnet = Some(format!("10.200.{i}.0/24"));
        node.wg_public_key = Some(format!("key{i}"));
        st.nodes.insert(node.id.clone(), node);
    }
    st
}

/// A running replica `id` of service `web` on `node`, with an address, in the state.
pub(crate) fn ready_task(st: &mut State, id: &str, node: &str) -> Task {
    let mut t = test_task(id, "web", 1, 0, node);
    t.state = TaskState::Running;
    t.address = Some("10.200.1.9".into());
    st.tasks.insert(t.clone());
    t
}

#[test]
fn task_plans_are_rechecked() {
    let mut st = State::default();
    st.apply(&req(
        1,
        Command::ApplyService(Box::new(spec("web", "img", 1))),
    ));
    st.apply(&req(
        2,
        Command::RegisterNode(test_node("n1", 2000, 1 << 30)),
    ));
    let task = test_task("t1", "web", 1, 0, "n1");
    assert_eq!(
        st.apply(&req(3, Command::PutTasks(vec![task.clone()]))),
        Response::Tasks(1)
    );
    st.apply(&req(
        4,
        Command::ApplyService(Box::new(spec("web", "img2", 2))),
    ));
    let stale = Task {
        id: "t2".into(),
        ..task.clone()
    };
    assert!(matches!(
        st.apply(&req(5, Command::PutTasks(vec![stale]))),
        Response::Error(_)
    ));
    st.apply(&req(
        6,
        Command::SetNodeStatus {
            id: "n1".into(),
            status: NodeStatus::Down,
        },
    ));
    let on_down = Task {
        id: "t3".into(),
        service_version: 2,
        ..task
    };
    assert!(matches!(
        st.apply(&req(7, Command::PutTasks(vec![on_down]))),
        Response::Error(_)
    ));
    st.apply(&req(8, Command::DeleteService { name: "web".into() }));
    assert_eq!(st.tasks["t1"].desired, TaskState::Shutdown);
}

/// A plan computed from a stale snapshot (two plans for the same free memory) never overcommits:
/// the second is refused placement by placement when applied.
#[test]
fn stale_plans_never_overcommit() {
    let mut st = State::default();
    let mut s = spec("web", "img", 4);
    s.resources.memory = Some("512Mi".into());
    s.ports.push(hoist_proto::service::ServicePort {
        target: 80,
        published: None,
        protocol: Default::default(),
        mode: Default::default(),
    });
    st.apply(&req(1, Command::ApplyService(Box::new(s))));
    st.apply(&req(
        2,
        Command::RegisterNode(test_node("n1", 4000, 1 << 30)),
    ));
    let plan = |ids: [&str; 2], slot: u64| Plan {
        place: ids
            .iter()
            .enumerate()
            .map(|(i, id)| test_task(id, "web", 1, slot + i as u64, "n1"))
            .collect(),
        ..Default::default()
    };
    let a = st.apply(&req(3, Command::Plan(plan(["a", "b"], 0))));
    let Response::Plan(a) = a else {
        panic!("{a:?}")
    };
    assert_eq!(a.placed, 2);
    let b = st.apply(&req(4, Command::Plan(plan(["c", "d"], 2))));
    let Response::Plan(b) = b else {
        panic!("{b:?}")
    };
    assert_eq!(b.placed, 0);
    assert_eq!(b.refused[0].1, "n1: needs 512 MiB, 0 B free");
    assert_eq!(st.tasks.len(), 2);
    // Max per node and host ports are re-checked the same way.
    let mut s = spec("api", "img", 2);
    s.placement.max_per_node = 1;
    s.ports.push(hoist_proto::service::ServicePort {
        target: 80,
        published: Some(8080),
        protocol: Default::default(),
        mode: Default::default(),
    });
    st.apply(&req(5, Command::ApplyService(Box::new(s))));
    st.apply(&req(
        6,
        Command::RegisterNode(test_node("n2", 4000, 1 << 30)),
    ));
    let p = Plan {
        place: vec![
            test_task("x", "api", 1, 0, "n2"),
            test_task("y", "api", 1, 1, "n2"),
        ],
        ..Default::default()
    };
    let Response::Plan(r) = st.apply(&req(7, Command::Plan(p))) else {
        panic!()
    };
    assert_eq!(r.placed, 1);
    assert_eq!(r.refused[0].1, "n2: already runs max_per_node = 1");
    assert_eq!(
        st.node_index["n2"], 0,
        "index is the entry's (0 without apply_at)"
    );
}

/// Two plans made from the same snapshot place the same slot (the second leader pass ran before
/// the first plan was applied): the slot takes the first, and the second is refused, also when
/// the same plan places the slot twice; a stopped replica no longer holds its slot.
#[test]
fn stale_plans_never_double_a_slot() {
    let mut st = State::default();
    st.apply(&req(
        1,
        Command::ApplyService(Box::new(spec("web", "img", 2))),
    ));
    for n in ["n1", "n2"] {
        st.apply(&req(2, Command::RegisterNode(test_node(n, 4000, 1 << 30))));
    }
    let place = |tasks: &[(&str, u64, &str)]| {
        let place = (tasks.iter())
            .map(|(id, slot, node)| test_task(id, "web", 1, *slot, node))
            .collect();
        Command::Plan(Plan {
            place,
            ..Default::default()
        })
    };
    let placed = |r: Response| match r {
        Response::Plan(p) => (p.placed, p.refused),
        other => panic!("{other:?}"),
    };
    let (n, refused) = placed(st.apply(&req(3, place(&[("a", 0, "n1")]))));
    assert_eq!((n, refused), (1, vec![]));
    let (n, refused) = placed(st.apply(&req(
        4,
        place(&[("b", 0, "n2"), ("c", 1, "n2"), ("d", 1, "n1")]),
    )));
    assert_eq!(n, 1, "only slot 1, once");
    assert_eq!(
        refused,
        vec![
            ("b".into(), "slot 0 is already filled".into()),
            ("d".into(), "slot 1 is already filled".into())
        ]
    );
    let stop = Command::Plan(Plan {
        stop: vec![("a".into(), "replaced".into())],
        ..Default::default()
    });
    st.apply(&req(5, stop));
    let (n, _) = placed(st.apply(&req(6, place(&[("e", 0, "n2")]))));
    assert_eq!(n, 1, "a stopped replica's slot takes a new one");
}

#[test]
fn status_reports_and_history() {
    let mut st = State::default();
    st.apply(&req(
        1,
        Command::ApplyService(Box::new(spec("web", "img", 1))),
    ));
    st.apply(&req(
        2,
        Command::RegisterNode(test_node("n1", 4000, 1 << 30)),
    ));
    st.apply_at(
        3,
        &req(
            3,
            Command::PutTasks(vec![test_task("t", "web", 1, 0, "n1")]),
        ),
    );
    assert_eq!(st.node_index["n1"], 3);
    let report = |state: TaskState, health: Health| Command::ReportStatus {
        node: "n1".into(),
        tasks: vec![TaskStatus {
            task_id: "t".into(),
            state,
            health,
            container_id: Some("c".into()),
            address: Some("10.89.0.2".into()),
            exit_code: None,
            message: String::new(),
            restarts: 0,
        }],
    };
    st.apply_at(4, &req(40, report(TaskState::Running, Health::None)));
    assert_eq!(st.tasks["t"].ready_since_ms, Some(40));
    assert_eq!(st.endpoints_index["web"], 4);
    // Another node cannot report about it.
    let mut other = report(TaskState::Failed, Health::None);
    if let Command::ReportStatus { node, .. } = &mut other {
        *node = "n2".into();
    }
    st.apply(&req(41, other));
    assert_eq!(st.tasks["t"].state, TaskState::Running);
    st.apply(&req(
        42,
        Command::Plan(Plan {
            stop: vec![("t".into(), "failed".into())],
            ..Default::default()
        }),
    ));
    st.apply(&req(42, report(TaskState::Failed, Health::None)));
    assert_eq!(st.tasks["t"].ready_since_ms, None);
    // Ended is final.
    st.apply(&req(43, report(TaskState::Running, Health::None)));
    assert_eq!(st.tasks["t"].state, TaskState::Failed);
    let p = Plan {
        stop: vec![("t".into(), "failed".into())],
        remove: vec!["t".into()],
        ..Default::default()
    };
    st.apply(&req(44, Command::Plan(p)));
    assert!(st.tasks.is_empty());
    assert_eq!(st.slot_history["web"][&0][0].message, "failed");
    assert_eq!(st.slot_history["web"][&0].len(), 1);
}

#[test]
fn restore_replaces_the_state() {
    let mut a = State::default();
    a.apply(&req(
        1,
        Command::ApplyService(Box::new(spec("web", "img", 1))),
    ));
    let image = encode_snapshot(&a, 0).unwrap();
    let mut b = State::default();
    b.apply(&req(
        1,
        Command::ApplyService(Box::new(spec("db", "pg", 1))),
    ));
    assert_eq!(
        b.apply(&req(2, Command::Restore(image.clone()))),
        Response::Restored(1)
    );
    assert_eq!(b.hash(), a.hash());
    let mut corrupt = image;
    let last = corrupt.len() - 1;
    corrupt[last] ^= 1;
    assert!(matches!(
        decode_snapshot(&corrupt),
        Err(SnapshotError::Checksum { .. })
    ));
}

fn arb_command() -> impl Strategy<Value = Command> {
    let name = prop::sample::select(vec!["a", "b", "c", "Bad_Name"]);
    let image = prop::sample::select(vec!["x", "y"]);
    prop_oneof![
        4 => (name.clone(), image, -1i64..4).prop_map(|(n, i, r)| Command::ApplyService(Box::new(spec(n, i, r)))),
        1 => name.clone().prop_map(|n| Command::DeleteService { name: n.into() }),
        2 => (name.clone(), -1i64..4).prop_map(|(n, r)| Command::ScaleService { name: n.into(), replicas: r }),
        2 => (name, prop::option::of(0u64..6)).prop_map(|(n, v)| Command::RollbackService { name: n.into(), version: v }),
        1 => Just(Command::Noop),
    ]
}

proptest! {
    #[test]
    fn apply_is_deterministic_and_errors_change_nothing(cmds in prop::collection::vec(arb_command(), 0..60)) {
        let mut a = State::default();
        let mut b = State::default();
        for (i, cmd) in cmds.iter().enumerate() {
            let r = req(i as u64, cmd.clone());
            let before = a.clone();
            let ra = a.apply(&r);
            let rb = b.apply(&r);
            prop_assert_eq!(&ra, &rb);
            if matches!(ra, Response::Error(_)) {
                prop_assert_eq!(&a, &before);
            }
            for (name, rec) in &a.services {
                prop_assert!(!rec.history.is_empty() && rec.history.len() <= HISTORY_LIMIT);
                prop_assert!(rec.history.iter().zip(rec.history.iter().skip(1)).all(|(a, b)| a.version < b.version));
                prop_assert!(rec.current().spec.validate().is_empty());
                prop_assert_eq!(&rec.current().spec.name, name);
            }
        }
        prop_assert_eq!(a.hash(), b.hash());
        if let Ok(image) = encode_snapshot(&a, a.cluster_format) {
            prop_assert_eq!(a.hash(), hex::encode(&image[12..44]), "the hash is the image's checksum");
            if a.cluster_format >= 1 {
                let whole = prost::Message::encode_to_vec(&snapshot::to_v1(&a, a.cluster_format).unwrap());
                prop_assert!(image[44..] == whole[..], "the image's body is the whole message");
            }
        }
        for format in [0, 1] {
            prop_assert_eq!(decode_snapshot(&encode_snapshot(&a, format).unwrap()).unwrap(), a.clone());
        }
    }

    #[test]
    fn reapplying_the_current_spec_is_a_no_op(cmds in prop::collection::vec(arb_command(), 0..30)) {
        let mut st = State::default();
        for (i, cmd) in cmds.iter().enumerate() {
            st.apply(&req(i as u64, cmd.clone()));
        }
        let before = st.clone();
        for svc in before.list_services() {
            let c = change(st.apply(&req(999, Command::ApplyService(Box::new(ServiceSpec::clone(&svc.spec))))));
            prop_assert!(!c.changed);
            prop_assert_eq!(c.service.version, svc.version);
        }
        prop_assert_eq!(st, before);
    }
}

proptest! {
    #[test]
    fn a_batch_is_the_same_as_its_commands_in_order(cmds in prop::collection::vec(arb_command(), 0..30)) {
        let mut one_by_one = State::default();
        let expected: Vec<Response> = cmds.iter().map(|c| one_by_one.apply(&req(7, c.clone()))).collect();
        let mut batched = State::default();
        let got = batched.apply(&req(7, Command::Batch(cmds.clone())));
        prop_assert_eq!(got, Response::Batch(expected));
        prop_assert_eq!(batched, one_by_one);
    }
}

#[test]
fn nested_batches_are_refused() {
    let mut st = State::default();
    let r = st.apply(&req(
        1,
        Command::Batch(vec![Command::Batch(vec![]), Command::Noop]),
    ));
    match r {
        Response::Batch(rs) => {
            assert!(
                matches!(&rs[0], Response::Error(e) if e.message == "a batch cannot contain a batch")
            );
            assert_eq!(rs[1], Response::Ok);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_refused_command_at_a_new_index_changes_no_hash() {
    let mut st = State::default();
    st.apply_at(
        1,
        &req(1, Command::ApplyService(Box::new(spec("web", "img", 1)))),
    );
    let before = st.hash();
    let r = st.apply_at(
        2,
        &req(
            2,
            Command::ScaleService {
                name: "nope".into(),
                replicas: 1,
            },
        ),
    );
    assert!(matches!(r, Response::Error(_)));
    assert_eq!(st.hash(), before);
}

fn labels(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
    kv.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn re_registration_keeps_the_operators_label_edits() {
    use super::nodes::merge_labels;
    let declared = labels(&[("zone", "a"), ("disk", "ssd")]);
    // The operator changed zone, removed disk and added rack; the agent restarts unchanged.
    let current = labels(&[("zone", "b"), ("rack", "r1")]);
    assert_eq!(merge_labels(&current, &declared, &declared), current);
    // The agent's own declaration changed: its new value wins for that key only.
    let now = labels(&[("zone", "c"), ("disk", "ssd")]);
    assert_eq!(
        merge_labels(&current, &declared, &now),
        labels(&[("zone", "c"), ("rack", "r1")])
    );
    // A label the agent stops declaring goes, unless the operator had changed it.
    let untouched = declared.clone();
    assert_eq!(
        merge_labels(&untouched, &declared, &labels(&[("zone", "a")])),
        labels(&[("zone", "a")])
    );
    assert_eq!(
        merge_labels(&current, &declared, &labels(&[("disk", "ssd")])),
        labels(&[("zone", "b"), ("rack", "r1")])
    );
}

#[test]
fn an_agent_restart_does_not_bring_back_a_removed_label() {
    let mut st = State::default();
    let mut n = test_node("n1", 4000, 1 << 30);
    n.labels = labels(&[("zone", "a")]);
    st.apply(&Request {
        time_ms: 1,
        command: Command::RegisterNode(n.clone()),
    });
    st.apply(&Request {
        time_ms: 2,
        command: Command::SetNodeLabels {
            id: "n1".into(),
            set: labels(&[("tier", "gold")]),
            remove: vec!["zone".into()],
        },
    });
    st.apply(&Request {
        time_ms: 3,
        command: Command::RegisterNode(n),
    });
    assert_eq!(st.nodes["n1"].labels, labels(&[("tier", "gold")]));
    assert_eq!(st.nodes["n1"].agent_labels, labels(&[("zone", "a")]));
}

#[test]
fn the_cluster_format_only_goes_up_and_gates_newer_commands() {
    let mut st = State::default();
    let mut graceful = spec("web", "img", 1);
    graceful.stop_grace_period = Some("30s".into());
    // A format-0 cluster refuses what a member not upgraded yet could not apply.
    match st.apply(&req(1, Command::ApplyService(Box::new(graceful.clone())))) {
        Response::Error(e) => {
            assert_eq!(e.code, ErrorCode::Conflict);
            assert!(
                e.message.contains("needs cluster format 1"),
                "{}",
                e.message
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(st, State::default());
    let set_version = Command::SetNodeVersion {
        id: "n1".into(),
        agent_version: "0.2.0".into(),
        agent_format: 1,
    };
    assert!(matches!(
        st.apply(&req(2, set_version.clone())),
        Response::Error(_)
    ));
    assert_eq!(
        st.apply(&req(3, Command::SetClusterFormat { format: 1 })),
        Response::Ok
    );
    assert_eq!(st.cluster_format, 1);
    assert!(matches!(
        st.apply(&req(4, Command::ApplyService(Box::new(graceful)))),
        Response::Service(_)
    ));
    st.apply(&req(
        5,
        Command::RegisterNode(test_node("n1", 1000, 1 << 30)),
    ));
    assert!(matches!(st.apply(&req(6, set_version)), Response::Node(n) if n.agent_format == 1));
    // Never lowered, also not by restoring a snapshot of a format-0 cluster.
    assert_eq!(
        st.apply(&req(7, Command::SetClusterFormat { format: 0 })),
        Response::Ok
    );
    assert_eq!(st.cluster_format, 1);
    let old = encode_snapshot(&State::default(), 0).unwrap();
    assert_eq!(
        st.apply(&req(8, Command::Restore(old))),
        Response::Restored(0)
    );
    assert_eq!(st.cluster_format, 1);
    // A format-0 cluster refuses an image of format 1: not every member would read it.
    let newer = encode_snapshot(&st, 1).unwrap();
    let mut zero = State::default();
    match zero.apply(&req(9, Command::Restore(newer))) {
        Response::Error(e) => assert!(e.message.contains("format 1 into a cluster at format 0")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn kept_registry_credentials_never_go_to_another_registry() {
    let mut st = State {
        cluster_format: 2,
        ..State::default()
    };
    let mut s = spec("web", "corp.example/app:1", 1);
    s.registry_auth = Some(hoist_proto::RegistryAuth {
        username: "u".into(),
        password: "p".into(),
    });
    st.apply(&req(1, Command::ApplyService(Box::new(s))));
    let auth = |st: &State| st.services["web"].current().spec.registry_auth.clone();
    // A later apply without credentials keeps them for the same registry...
    st.apply(&req(
        2,
        Command::ApplyService(Box::new(spec("web", "corp.example/app:2", 1))),
    ));
    assert!(auth(&st).is_some());
    // ...and drops them when the image moves to another one.
    st.apply(&req(
        3,
        Command::ApplyService(Box::new(spec("web", "nginx:1", 1))),
    ));
    assert_eq!(auth(&st), None);
    assert_eq!(
        super::services::image_registry("localhost:5000/a"),
        "localhost:5000"
    );
    assert_eq!(super::services::image_registry("team/app"), "docker.io");
}

#[test]
fn service_summaries_count_running_healthy_and_desired_replicas() {
    let mut st = cluster_with_nodes(1);
    st.apply(&req(
        1,
        Command::ApplyService(Box::new(spec("web", "img", 4))),
    ));
    let states = [
        (TaskState::Running, TaskState::Running, Health::Healthy),
        (TaskState::Running, TaskState::Running, Health::None),
        (TaskState::Running, TaskState::Running, Health::Unhealthy),
        (TaskState::Running, TaskState::Pending, Health::None),
        // Stopping: not counted.
        (TaskState::Shutdown, TaskState::Running, Health::Healthy),
    ];
    for (i, (desired, state, health)) in states.into_iter().enumerate() {
        let mut t = test_task(&format!("t{i}"), "web", 1, i as u64, "n1");
        (t.desired, t.state, t.health) = (desired, state, health);
        st.tasks.insert(t);
    }
    let s = &st.service_summaries()[0];
    assert_eq!((s.running, s.healthy, s.desired), (3, 2, 4));
}

#[test]
fn a_view_shares_the_maps_and_keeps_what_it_saw_while_the_state_moves_on() {
    let mut st = cluster_with_nodes(3);
    for i in 0..100 {
        ready_task(&mut st, &format!("t{i:03}"), "n1");
    }
    let view = st.clone();
    assert!(view.tasks.ptr_eq(&st.tasks) && view.nodes.ptr_eq(&st.nodes));
    st.tasks.get_mut("t007").unwrap().state = TaskState::Failed;
    st.tasks.remove("t008");
    assert_eq!(view.tasks["t007"].state, TaskState::Running);
    assert!(view.tasks.contains_key("t008"));
    assert_eq!((view.tasks.len(), st.tasks.len()), (100, 99));
    assert!(
        view.nodes.ptr_eq(&st.nodes),
        "an untouched map stays shared"
    );
}
