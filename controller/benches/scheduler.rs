//! Scheduler benchmark: 5,000 simulated nodes, 100,000 tasks (20 services × 5,000 replicas,
//! spread over 5 zones). Two measures:
//!
//! - `decide`: the pure reconciler computing the whole plan from a snapshot (placements/s).
//! - `commit`: the same placements decided and committed through a real Raft of 1 member and of
//!   3 members on loopback (log with fsync, HTTP replication, every member's state machine
//!   re-checking every placement), in plans of `CHUNK` tasks proposed concurrently (placements/s
//!   committed).
//!
//! - `apply`: one committed plan of 5,000 placements (one per node) applied into a state that
//!   already holds the 100,000 tasks, as every member applies each entry; beside it, the sum of
//!   the usage of those 5,000 nodes' tasks, which each entry cost before the state kept each
//!   node's usage (`state/usage.rs`); and a reconcile pass over the 100,000 once converged,
//!   beside the sum of every task's usage each pass also cost before. The same pass by the
//!   leader's reconciler, which remembers the services it found with nothing to do: with nothing
//!   changed, after one task's status report (its service, 5,000 tasks, runs again), and after
//!   one node is paused (every service has tasks on every node here, so all run again); and
//!   after one node is paused in a cluster of 1,000 services × 100 replicas on the 5,000 nodes,
//!   where a node holds a few services' replicas and only those run again.
//!
//! `cargo bench -p hoist-controller --bench scheduler`; each iteration prints placements/s.

use criterion::{criterion_group, criterion_main, Criterion};
use hoist_controller::api::{serve, tasks_for, Ctx, Holds, NodeTasks};
use hoist_controller::leader::{Leader, LeaderSettings};
use hoist_controller::raft::{RaftNode, RaftSettings};
use hoist_controller::scheduler::reconcile::Reconciler;
use hoist_controller::scheduler::{reconcile, usage_of};
use hoist_controller::state::State;
use hoist_proto::cluster::{Node, NodeAvailability, NodeResources, NodeStatus, TaskState};
use hoist_proto::format::Codec;
use hoist_proto::held_specs::HeldSpecs;
use hoist_proto::node::{Assignments, Health, TaskStatus};
use hoist_proto::raft::{Command, Plan, Request, Response};
use hoist_proto::service::ServiceSpec;
use std::time::{Duration, Instant};

const NODES: usize = 5_000;
const SERVICES: usize = 20;
const REPLICAS: i64 = 5_000;
const CHUNK: usize = 5_000;

fn node(i: usize) -> Node {
    Node {
        id: format!("n{i:05}"),
        hostname: format!("host-{i:05}"),
        address: format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255),
        labels: [("zone".to_string(), format!("z{}", i % 5))].into(),
        agent_labels: Default::default(),
        capacity: NodeResources {
            cpu_millis: 16_000,
            memory_bytes: 64 << 30,
        },
        status: NodeStatus::Ready,
        availability: NodeAvailability::Active,
        agent_version: "bench".into(),
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

fn service(i: usize) -> ServiceSpec {
    let mut s = ServiceSpec::new(&format!("svc{i:02}"), "img:1");
    s.replicas = REPLICAS;
    s.resources.cpu = Some("100m".into());
    s.resources.memory = Some("128Mi".into());
    if i.is_multiple_of(2) {
        s.placement.spread = Some("zone".into());
    }
    s
}

fn setup_commands() -> Vec<Command> {
    let mut c: Vec<Command> = (0..NODES).map(|i| Command::RegisterNode(node(i))).collect();
    c.extend((0..SERVICES).map(|i| Command::ApplyService(Box::new(service(i)))));
    c
}

fn ids() -> impl FnMut() -> String {
    let mut n = 0u64;
    move || {
        n += 1;
        format!("{n:016x}")
    }
}

fn decide(c: &mut Criterion) {
    let mut st = State::default();
    for cmd in setup_commands() {
        st.apply(&Request {
            time_ms: 1,
            command: cmd,
        });
    }
    let mut g = c.benchmark_group("scheduler");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    g.bench_function("decide_100k_on_5k_nodes", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let t = Instant::now();
                let r = reconcile(&st, 2, &mut ids());
                let d = t.elapsed();
                assert_eq!(r.plan.place.len(), SERVICES * REPLICAS as usize);
                eprintln!(
                    "decide: {} placements in {:?} = {:.0}/s",
                    r.plan.place.len(),
                    d,
                    r.plan.place.len() as f64 / d.as_secs_f64()
                );
                total += d;
            }
            total
        })
    });
    g.finish();
}

/// The cluster filled with the 100,000 tasks, and a plan placing one more service's 5,000
/// replicas, one per node.
fn full_cluster_and_next_plan() -> (State, Plan) {
    let mut st = State::default();
    let apply = |st: &mut State, command| {
        st.apply(&Request {
            time_ms: 1,
            command,
        })
    };
    for cmd in setup_commands() {
        apply(&mut st, cmd);
    }
    let mut new_id = ids();
    let plan = reconcile(&st, 2, &mut new_id).plan;
    for part in plan.place.chunks(CHUNK) {
        let p = Plan {
            place: part.to_vec(),
            ..Default::default()
        };
        assert!(
            matches!(apply(&mut st, Command::Plan(p)), Response::Plan(r) if r.refused.is_empty())
        );
    }
    let mut extra = service(SERVICES);
    extra.replicas = NODES as i64;
    extra.placement.max_per_node = 1;
    apply(&mut st, Command::ApplyService(Box::new(extra)));
    let next = reconcile(&st, 2, &mut new_id).plan;
    assert_eq!(next.place.len(), NODES);
    (st, next)
}

/// A report that task `id` runs.
fn running(id: &str) -> TaskStatus {
    TaskStatus {
        task_id: id.into(),
        state: TaskState::Running,
        health: Health::None,
        container_id: None,
        address: None,
        exit_code: None,
        message: String::new(),
        restarts: 0,
    }
}

/// The time of `iters` remembered passes, each after `change`: the reconciler first passes over
/// `base` (so it remembers it converged), then over a copy of it with `change` applied.
fn time_pass_after(
    reconciler: &mut Reconciler,
    base: &State,
    change: &Command,
    iters: u64,
) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        reconciler.pass(base, 4, &mut ids());
        let mut st = base.clone();
        st.apply(&Request {
            time_ms: 4,
            command: change.clone(),
        });
        let t = Instant::now();
        let r = reconciler.pass(&st, 4, &mut ids());
        total += t.elapsed();
        assert!(r.plan.place.is_empty() && r.plan.stop.is_empty());
    }
    total
}

/// The time `iters` applies of `command` take, each to a fresh copy of `state` while another
/// copy is held (as a member's read view holds one): every map the command changes is copied
/// on write.
fn time_apply_while_held(state: &State, command: &Command, iters: u64) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let mut st = state.clone();
        let held = st.clone();
        let t = Instant::now();
        st.apply(&Request {
            time_ms: 4,
            command: command.clone(),
        });
        total += t.elapsed();
        drop(held);
    }
    total
}

fn apply(c: &mut Criterion) {
    let (full, plan) = full_cluster_and_next_plan();
    let mut g = c.benchmark_group("scheduler");
    g.sample_size(20);
    g.bench_function("apply_5k_placements_into_100k", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let mut st = full.clone();
                let command = Command::Plan(plan.clone());
                let t = Instant::now();
                let r = st.apply(&Request {
                    time_ms: 3,
                    command,
                });
                total += t.elapsed();
                assert!(matches!(r, Response::Plan(p) if p.placed as usize == NODES));
            }
            total
        })
    });
    // Status reports as agents send them while a cluster fills: one task from each of 2,000
    // nodes, spread over the id space, applied while a copy of the state is held (as the
    // leader's reconcile and snapshots hold one), so every change copies what it touches.
    let reports = Command::Batch(
        (0..2_000)
            .map(|i| {
                let n = node(i).id;
                let t = full.tasks.on_node(&n).nth(i % SERVICES).expect("a task");
                Command::ReportStatus {
                    node: n,
                    tasks: vec![running(&t.id)],
                }
            })
            .collect(),
    );
    g.bench_function("apply_2k_status_reports_into_100k", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let mut st = full.clone();
                let t = Instant::now();
                st.apply(&Request {
                    time_ms: 3,
                    command: reports.clone(),
                });
                total += t.elapsed();
            }
            total
        })
    });
    // Operators' scales as `bench/controller` sends them: one entry of 64, one per service, each
    // service with the most versions its history keeps, applied while a copy of the state is held
    // (as a member's read view holds one). Every command copies the services map to see what it
    // changed, so each scale copies the records that share the scaled one's leaf.
    let mut histories = State::default();
    let format = Command::SetClusterFormat { format: 2 };
    histories.apply(&Request {
        time_ms: 1,
        command: format,
    });
    for v in 0..hoist_controller::state::HISTORY_LIMIT {
        for i in 0..64 {
            let mut spec = ServiceSpec::new(&format!("k{i:02}"), &format!("img:{v}"));
            spec.replicas = 1;
            histories.apply(&Request {
                time_ms: 2,
                command: Command::ApplyService(Box::new(spec)),
            });
        }
    }
    let scales = Command::Batch(
        (0..64)
            .map(|i| Command::ScaleService {
                name: format!("k{i:02}"),
                replicas: 2,
            })
            .collect(),
    );
    g.bench_function("apply_64_scales_of_long_histories", |b| {
        b.iter_custom(|iters| time_apply_while_held(&histories, &scales, iters))
    });
    // The same scales once every service's autoscale log is full (the last 100 decisions: every
    // operator's scale is one), as it is a few seconds into `bench/controller`. A log copied to
    // record one decision shares the other decisions.
    let mut full_logs = histories.clone();
    for round in 0..hoist_proto::cluster::AutoscaleLog::KEEP as i64 {
        full_logs.apply(&Request {
            time_ms: 3,
            command: Command::Batch(
                (0..64)
                    .map(|i| Command::ScaleService {
                        name: format!("k{i:02}"),
                        replicas: 3 + round % 2,
                    })
                    .collect(),
            ),
        });
    }
    g.bench_function("apply_64_scales_with_full_autoscale_logs", |b| {
        b.iter_custom(|iters| time_apply_while_held(&full_logs, &scales, iters))
    });
    // A pass over the converged cluster (the 100,000 running as planned: nothing to do), and the
    // sum of every task's usage that each pass also cost before the state kept it.
    let mut converged = full.clone();
    converged.apply(&Request {
        time_ms: 3,
        command: Command::DeleteService {
            name: service(SERVICES).name,
        },
    });
    g.bench_function("reconcile_pass_converged_100k", |b| {
        b.iter(|| {
            let r = reconcile(&converged, 4, &mut ids());
            assert!(r.plan.place.is_empty() && r.plan.stop.is_empty());
            r
        })
    });
    let mut reconciler = Reconciler::default();
    reconciler.pass(&converged, 4, &mut ids());
    g.bench_function("reconcile_pass_remembered_converged_100k", |b| {
        b.iter(|| {
            let r = reconciler.pass(&converged, 4, &mut ids());
            assert!(r.plan.place.is_empty() && r.plan.stop.is_empty());
            r
        })
    });
    let first = converged.tasks.values().next().expect("a task").clone();
    let report = Command::ReportStatus {
        node: first.node.to_string(),
        tasks: vec![running(&first.id)],
    };
    g.bench_function("reconcile_pass_remembered_after_one_report_100k", |b| {
        b.iter_custom(|iters| time_pass_after(&mut reconciler, &converged, &report, iters))
    });
    // What `GET /v1/cluster/status` reports as `state_hash`: the whole state encoded and hashed.
    g.bench_function("state_hash_100k", |b| b.iter(|| converged.hash()));
    let pause = Command::SetNodeAvailability {
        id: first.node.to_string(),
        availability: NodeAvailability::Paused,
    };
    g.bench_function(
        "reconcile_pass_remembered_after_one_node_paused_100k",
        |b| b.iter_custom(|iters| time_pass_after(&mut reconciler, &converged, &pause, iters)),
    );
    // 1,000 services of 100 replicas: a node holds about 20 replicas of about 20 services.
    let mut small = State::default();
    let mut new_id = ids();
    let setup = (0..NODES)
        .map(|i| Command::RegisterNode(node(i)))
        .chain((0..1_000).map(|i| {
            let mut s = service(i);
            s.name = format!("small{i:04}");
            s.replicas = 100;
            Command::ApplyService(Box::new(s))
        }));
    for command in setup {
        small.apply(&Request {
            time_ms: 1,
            command,
        });
    }
    let plan = reconcile(&small, 2, &mut new_id).plan;
    for part in plan.place.chunks(CHUNK) {
        let command = Command::Plan(Plan {
            place: part.to_vec(),
            ..Default::default()
        });
        small.apply(&Request {
            time_ms: 3,
            command,
        });
    }
    assert_eq!(small.tasks.len(), 100_000);
    let pause_small = Command::SetNodeAvailability {
        id: small
            .tasks
            .values()
            .next()
            .expect("a task")
            .node
            .to_string(),
        availability: NodeAvailability::Paused,
    };
    let mut reconciler = Reconciler::default();
    g.bench_function(
        "reconcile_pass_remembered_after_one_node_paused_1k_services",
        |b| b.iter_custom(|iters| time_pass_after(&mut reconciler, &small, &pause_small, iters)),
    );
    g.bench_function("reconcile_pass_converged_100k_in_1k_services", |b| {
        b.iter(|| reconcile(&small, 4, &mut ids()))
    });
    g.bench_function("sum_usage_of_all_100k", |b| {
        b.iter(|| usage_of(converged.tasks.values(), |t| converged.demand_of(t)))
    });
    // What each entry's re-check summed before the state kept each node's usage.
    g.bench_function("sum_usage_of_5k_nodes_of_100k", |b| {
        b.iter(|| {
            let u = usage_of(
                plan.place.iter().flat_map(|t| full.tasks.on_node(&t.node)),
                |t| full.demand_of(t),
            );
            assert_eq!(u.len(), NODES);
            u
        })
    });
    g.finish();
}

/// One node running one replica of each of `n` services with a full spec (the format's sample:
/// command, env, ports, health check, restart and update policies...), and the index of the
/// last change.
fn node_running_services(n: usize) -> (State, u64) {
    let mut st = State::default();
    let mut at = 0;
    let mut apply = |st: &mut State, command| {
        at += 1;
        st.apply_at(
            at,
            &Request {
                time_ms: 1,
                command,
            },
        )
    };
    apply(&mut st, Command::SetClusterFormat { format: 2 });
    let mut agent = node(0);
    agent.agent_format = 2;
    apply(&mut st, Command::RegisterNode(agent));
    for i in 0..n {
        let mut s = hoist_proto::format::samples::spec_full(2);
        s.name = format!("svc{i:02}");
        s.ports.iter_mut().for_each(|p| p.published = None);
        s.placement = Default::default();
        s.replicas = 1;
        let r = apply(&mut st, Command::ApplyService(Box::new(s)));
        assert!(matches!(r, Response::Service(_)), "{r:?}");
    }
    let plan = reconcile(&st, 2, &mut ids()).plan;
    assert_eq!(plan.place.len(), n);
    let r = apply(&mut st, Command::Plan(plan));
    assert!(
        matches!(&r, Response::Plan(p) if p.placed as usize == n),
        "{r:?}"
    );
    (st, at)
}

/// An agent's poll answer for a node running 20 services, encoded: every spec, with the specs
/// the poll holds left out (its `specs` parameter read as the controller reads it), and, after
/// a 21st task was placed, with the 20 tasks the poll holds named only (`tasks_term`).
fn answers(c: &mut Criterion) {
    let (st, index) = node_running_services(20);
    let n = node(0).id;
    let answer = |t: NodeTasks| Assignments {
        index,
        term: 1,
        tasks: t.tasks,
        overlay: None,
        overlay_index: 0,
        changed_since: t.changed_since,
        unchanged: t.unchanged,
    };
    let full = tasks_for(&st, &n, 2, Holds::default()).tasks;
    let query = HeldSpecs::of(1, &full).query();
    fn holding(held: &HeldSpecs, index: u64) -> Holds<'_> {
        Holds {
            index,
            specs: Some(held),
            tasks: false,
        }
    }
    // One more service, its replica placed on the node: the change a poll wakes for.
    let mut one_more = st.clone();
    let mut s = hoist_proto::format::samples::spec_full(2);
    s.name = "svc20".into();
    s.ports.iter_mut().for_each(|p| p.published = None);
    s.placement = Default::default();
    s.replicas = 1;
    let req = |command| Request {
        time_ms: 1,
        command,
    };
    one_more.apply_at(index + 1, &req(Command::ApplyService(Box::new(s))));
    let mut new_id = || "new-task".to_string();
    let plan = reconcile(&one_more, 2, &mut new_id).plan;
    assert_eq!(plan.place.len(), 1);
    one_more.apply_at(index + 2, &req(Command::Plan(plan)));
    let mut g = c.benchmark_group("assignments");
    let held = HeldSpecs::parse(1, &query).unwrap();
    let sizes = [
        answer(tasks_for(&st, &n, 2, Holds::default())),
        answer(tasks_for(&st, &n, 2, holding(&held, index))),
        answer(tasks_for(
            &one_more,
            &n,
            2,
            Holds {
                tasks: true,
                ..holding(&held, index)
            },
        )),
    ]
    .map(|a| a.encode(2).unwrap().len());
    eprintln!(
        "assignments: answer of 20 tasks: {} B with every spec, {} B with them held; \
         of 21 tasks, 20 held: {} B",
        sizes[0], sizes[1], sizes[2]
    );
    g.bench_function("answer_20_tasks_every_spec", |b| {
        b.iter(|| {
            answer(tasks_for(&st, &n, 2, Holds::default()))
                .encode(2)
                .unwrap()
        })
    });
    g.bench_function("answer_20_tasks_specs_held", |b| {
        b.iter(|| {
            let held = HeldSpecs::parse(1, &query).unwrap();
            let a = answer(tasks_for(&st, &n, 2, holding(&held, index)));
            assert!(a.tasks.iter().all(|t| t.spec_held));
            a.encode(2).unwrap()
        })
    });
    g.bench_function("answer_21_tasks_20_held", |b| {
        b.iter(|| {
            let held = HeldSpecs::parse(1, &query).unwrap();
            let holds = Holds {
                tasks: true,
                ..holding(&held, index)
            };
            let a = answer(tasks_for(&one_more, &n, 2, holds));
            assert_eq!((a.tasks.len(), a.unchanged.len()), (1, 20));
            a.encode(2).unwrap()
        })
    });
    g.finish();
}

/// A member serving the API and Raft RPCs on a loopback port of its own.
struct Member {
    node: RaftNode,
    _dir: tempfile::TempDir,
    stop: tokio::sync::oneshot::Sender<()>,
}

async fn member(id: u64) -> Member {
    let dir = tempfile::tempdir().expect("tempdir");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    // All 20 plans are proposed at once: the last waits for the others, longer than an API
    // write's 3 s timeout on a loaded machine.
    let settings = RaftSettings {
        op_timeout: Duration::from_secs(60),
        ..RaftSettings::default()
    };
    let node = RaftNode::open(dir.path(), &addr, Some(id), settings)
        .await
        .expect("open");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    // Only the API and Raft routes: no orchestration loop, so nothing else writes meanwhile.
    let ctx = Ctx::new(node.clone(), Leader::new(LeaderSettings::default()));
    tokio::spawn(serve(listener, Default::default(), ctx, async {
        let _ = stopped.await;
    }));
    Member {
        node,
        _dir: dir,
        stop,
    }
}

/// Decides and commits the 100,000 placements on a cluster of `members` (1 or 3).
async fn commit_once(members: u64) -> Duration {
    let mut cluster = Vec::new();
    for id in 1..=members {
        cluster.push(member(id).await);
    }
    let node = cluster[0].node.clone();
    node.bootstrap().await.expect("bootstrap");
    assert!(node.wait_for_leader(Duration::from_secs(10)).await);
    while !node.is_leader() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for m in &cluster[1..] {
        node.add_member(m.node.id(), m.node.address(), false)
            .await
            .expect("add member");
    }
    let setup = setup_commands();
    for chunk in setup.chunks(1_000) {
        node.write(Command::Batch(chunk.to_vec()))
            .await
            .expect("setup");
    }
    let t = Instant::now();
    // Decide from the leader's snapshot, commit in chunks, several plans in flight.
    let plan = node.stale_read(|s| reconcile(s, 2, &mut ids())).plan;
    let decided = t.elapsed();
    let total = plan.place.len();
    let writes = plan.place.chunks(CHUNK).map(|c| {
        let node = node.clone();
        let p = Plan {
            place: c.to_vec(),
            ..Default::default()
        };
        async move { node.write(Command::Plan(p)).await }
    });
    let mut placed = 0;
    for r in futures::future::join_all(writes).await {
        match r.expect("committed") {
            Response::Plan(p) => placed += p.placed,
            other => panic!("{other:?}"),
        }
    }
    let d = t.elapsed();
    assert_eq!(placed as usize, total);
    let tasks = node.stale_read(|s| s.tasks.len());
    assert_eq!(tasks, total);
    eprintln!(
        "commit ({members} member{}): {total} placements decided in {decided:?}, committed by {d:?} = {:.0}/s committed",
        if members == 1 { "" } else { "s" },
        total as f64 / d.as_secs_f64()
    );
    for m in cluster {
        m.node.shutdown().await;
        let _ = m.stop.send(());
    }
    d
}

fn commit(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut g = c.benchmark_group("scheduler");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(60));
    for (name, members) in [
        ("decide_and_commit_100k_raft", 1),
        ("decide_and_commit_100k_raft_3_members", 3),
    ] {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += rt.block_on(commit_once(members));
                }
                total
            })
        });
    }
    g.finish();
}

criterion_group!(benches, decide, apply, commit, answers);
criterion_main!(benches);
