//! Writes one sample of every message and record type of format 0, encoded by Hoist 0.1.0.
//! The same values are built by `proto/src/format/samples.rs` in today's types, so that the
//! golden test can compare what it decodes with what was meant.

use hoist_controller::raft::{ConsensusError, TypeConfig};
use hoist_controller::state::{encode_image, ClusterIdentity, ServiceRecord, State};
use hoist_proto::cluster::*;
use hoist_proto::node::*;
use hoist_proto::raft::*;
use hoist_proto::service::*;
use openraft::error::{Fatal, InstallSnapshotError, RaftError, SnapshotMismatch};
use openraft::raft::*;
use openraft::*;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn spec_full() -> ServiceSpec {
    let mut s = ServiceSpec::new("web", "registry.example:5000/team/web:1.2");
    s.command = vec!["/bin/server".into()];
    s.args = vec!["--port".into(), "80".into()];
    s.env = BTreeMap::from([("A".into(), "1".into()), ("MODE".into(), "prod".into())]);
    s.replicas = 3;
    s.resources = ResourceSpec {
        cpu: Some("500m".into()),
        memory: Some("64Mi".into()),
    };
    s.ports = vec![
        ServicePort {
            target: 80,
            published: Some(8080),
            protocol: PortProtocol::Tcp,
        },
        ServicePort {
            target: 53,
            published: None,
            protocol: PortProtocol::Udp,
        },
    ];
    s.health_check = Some(HealthCheck {
        command: vec![],
        http_path: Some("/healthz".into()),
        tcp_port: Some(80),
        interval: "2s".into(),
        timeout: "1s".into(),
        retries: 2,
        start_period: "5s".into(),
    });
    s.restart = RestartPolicy {
        condition: RestartCondition::OnFailure,
        max_attempts: 5,
        delay: "2s".into(),
        window: "1m".into(),
    };
    s.update = UpdatePolicy {
        parallelism: 2,
        delay: "3s".into(),
        failure_action: FailureAction::Rollback,
        monitor: "4s".into(),
        order: UpdateOrder::StartFirst,
        max_failure_ratio: Some("0.25".into()),
    };
    s.placement = Placement {
        constraints: vec!["node.labels.zone==a".into()],
        max_per_node: 2,
        spread: Some("zone".into()),
    };
    s.labels = BTreeMap::from([("team".into(), "blue".into())]);
    s.autoscale = Some(Autoscale { min: 1, max: 9 });
    s.mode = ServiceMode::Replicated;
    s
}

fn node() -> Node {
    Node {
        id: "n1".into(),
        hostname: "host-1".into(),
        address: "10.0.0.11".into(),
        labels: BTreeMap::from([("zone".into(), "a".into()), ("disk".into(), "ssd".into())]),
        agent_labels: BTreeMap::from([("zone".into(), "a".into())]),
        capacity: NodeResources {
            cpu_millis: 2000,
            memory_bytes: 4 << 30,
        },
        status: NodeStatus::Down,
        availability: NodeAvailability::Drained,
        agent_version: "0.1.0".into(),
        registered_ms: 1_700_000_000_000,
        updated_ms: 1_700_000_000_500,
    }
}

fn task() -> Task {
    Task {
        id: "00000000000000aa".into(),
        service: "web".into(),
        service_version: 2,
        slot: 1,
        node: "n1".into(),
        desired: TaskState::Running,
        state: TaskState::Running,
        health: Health::Healthy,
        address: Some("10.89.0.5".into()),
        container_id: Some("c0ffee".into()),
        exit_code: Some(-1),
        message: "started".into(),
        restarts: 2,
        created_ms: 1_700_000_001_000,
        updated_ms: 1_700_000_002_000,
        ready_since_ms: Some(1_700_000_002_000),
    }
}

fn rollout() -> Rollout {
    Rollout {
        version: 2,
        from_version: 1,
        state: RolloutState::RollingBack,
        updated: 1,
        total: 3,
        failures: 1,
        message: "task 00aa failed its health check".into(),
        started_ms: 10,
        updated_ms: 20,
        batch_started_ms: 15,
        rollback_of: Some(3),
    }
}

fn status() -> TaskStatus {
    TaskStatus {
        task_id: "00000000000000aa".into(),
        state: TaskState::Failed,
        health: Health::Unhealthy,
        container_id: Some("c0ffee".into()),
        address: None,
        exit_code: Some(137),
        message: "killed".into(),
        restarts: 4,
    }
}

fn commands() -> Vec<(&'static str, Command)> {
    vec![
        ("apply-service", Command::ApplyService(Box::new(spec_full()))),
        ("delete-service", Command::DeleteService { name: "web".into() }),
        ("scale-service", Command::ScaleService { name: "web".into(), replicas: 5 }),
        ("rollback-service", Command::RollbackService { name: "web".into(), version: Some(1) }),
        ("register-node", Command::RegisterNode(node())),
        ("set-node-status", Command::SetNodeStatus { id: "n1".into(), status: NodeStatus::Ready }),
        ("remove-node", Command::RemoveNode { id: "n2".into() }),
        ("put-tasks", Command::PutTasks(vec![task()])),
        ("remove-tasks", Command::RemoveTasks(vec!["a".into(), "b".into()])),
        ("restore", Command::Restore(vec![1, 2, 3])),
        ("noop", Command::Noop),
        ("batch", Command::Batch(vec![Command::Noop, Command::RemoveTasks(vec!["c".into()])])),
        (
            "plan",
            Command::Plan(Plan {
                place: vec![task()],
                stop: vec![("t2".into(), "scaled down".into())],
                remove: vec!["t3".into()],
                rollouts: vec![("web".into(), rollout())],
            }),
        ),
        (
            "set-node-availability",
            Command::SetNodeAvailability { id: "n1".into(), availability: NodeAvailability::Paused },
        ),
        (
            "set-node-labels",
            Command::SetNodeLabels {
                id: "n1".into(),
                set: BTreeMap::from([("zone".into(), "b".into())]),
                remove: vec!["disk".into()],
            },
        ),
        ("report-status", Command::ReportStatus { node: "n1".into(), tasks: vec![status()] }),
        (
            "init-cluster",
            Command::InitCluster {
                cluster_id: "0123456789abcdef".into(),
                secret: "00112233445566778899aabbccddeeff".into(),
            },
        ),
    ]
}

fn service(spec: ServiceSpec) -> Service {
    Service {
        name: "web".into(),
        version: 2,
        spec: Arc::new(spec),
        created_ms: 5,
        updated_ms: 6,
    }
}

fn responses() -> Vec<(&'static str, Response)> {
    vec![
        ("service", Response::Service(ServiceChange { service: service(spec_full()), changed: true })),
        ("deleted", Response::Deleted(service(ServiceSpec::new("web", "busybox")))),
        ("node", Response::Node(node())),
        ("tasks", Response::Tasks(7)),
        ("restored", Response::Restored(2)),
        ("ok", Response::Ok),
        (
            "error",
            Response::Error(CommandError {
                code: ErrorCode::Invalid,
                message: "replicas: must be ≥ 0".into(),
                field: Some("replicas".into()),
            }),
        ),
        ("batch", Response::Batch(vec![Response::Ok, Response::Tasks(1)])),
        (
            "plan",
            Response::Plan(PlanResult {
                placed: 2,
                refused: vec![("t9".into(), "n1: needs 1 CPU, 0 free".into())],
                stopped: 1,
            }),
        ),
    ]
}

fn state() -> State {
    let mut st = State::default();
    let v1 = ServiceVersion {
        version: 1,
        origin: VersionOrigin::Apply,
        created_ms: 100,
        spec: Arc::new(ServiceSpec::new("web", "busybox")),
    };
    let v2 = ServiceVersion {
        version: 2,
        origin: VersionOrigin::Rollback { from: 1 },
        created_ms: 200,
        spec: Arc::new(spec_full()),
    };
    st.services.insert(
        "web".into(),
        ServiceRecord { created_ms: 100, history: VecDeque::from([v1, v2]) },
    );
    st.nodes.insert("n1".into(), node());
    st.tasks.insert(task().id, task());
    st.identity = Some(ClusterIdentity {
        cluster_id: "0123456789abcdef".into(),
        secret: "00112233445566778899aabbccddeeff".into(),
    });
    st.rollouts.insert("web".into(), rollout());
    let mut ended = task();
    ended.id = "00000000000000bb".into();
    ended.state = TaskState::Shutdown;
    st.slot_history
        .insert("web".into(), BTreeMap::from([(1, VecDeque::from([ended]))]));
    st.node_index.insert("n1".into(), 41);
    st.endpoints_index.insert("web".into(), 42);
    st
}

fn log_id(index: u64) -> LogId<u64> {
    LogId::new(CommittedLeaderId::new(3, 1), index)
}

fn membership() -> Membership<u64, BasicNode> {
    Membership::new(
        vec![BTreeSet::from([1, 2, 3])],
        BTreeMap::from([
            (1, BasicNode::new("10.78.1.11:7070")),
            (2, BasicNode::new("10.78.1.12:7070")),
            (3, BasicNode::new("10.78.1.13:7070")),
            (4, BasicNode::new("10.78.1.14:7070")),
        ]),
    )
}

fn entries() -> Vec<(&'static str, Entry<TypeConfig>)> {
    vec![
        ("blank", Entry { log_id: log_id(10), payload: EntryPayload::Blank }),
        (
            "normal",
            Entry {
                log_id: log_id(11),
                payload: EntryPayload::Normal(Request {
                    time_ms: 1_700_000_000_000,
                    command: Command::ScaleService { name: "web".into(), replicas: 4 },
                }),
            },
        ),
        ("membership", Entry { log_id: log_id(12), payload: EntryPayload::Membership(membership()) }),
    ]
}

fn snapshot_meta() -> SnapshotMeta<u64, BasicNode> {
    SnapshotMeta {
        last_log_id: Some(log_id(12)),
        last_membership: StoredMembership::new(Some(log_id(12)), membership()),
        snapshot_id: "3-12-0".into(),
    }
}

/// The segment-file record 0.1.0 wrote (`controller/src/raft/wal.rs`, private there).
fn wal_record(index: u64, term: u64, bytes: &[u8], out: &mut Vec<u8>) {
    let mut crc = crc32fast::Hasher::new();
    crc.update(&index.to_le_bytes());
    crc.update(&term.to_le_bytes());
    crc.update(bytes);
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out.extend_from_slice(&index.to_le_bytes());
    out.extend_from_slice(&term.to_le_bytes());
    out.extend_from_slice(bytes);
}

struct Out(PathBuf);

impl Out {
    fn bytes(&self, name: &str, bytes: &[u8]) {
        let path = self.0.join(name);
        if path.exists() {
            panic!("{} exists: golden files are add-only", path.display());
        }
        std::fs::write(&path, bytes).unwrap();
        println!("wrote {}", path.display());
    }

    fn postcard<T: Serialize>(&self, name: &str, v: &T) {
        self.bytes(&format!("{name}.bin"), &postcard::to_stdvec(v).unwrap());
    }
}

fn main() {
    let dir = std::env::args().nth(1).expect("usage: hoist-golden-v0 OUT_DIR");
    std::fs::create_dir_all(&dir).unwrap();
    let out = Out(Path::new(&dir).to_path_buf());
    out.postcard("service-spec", &spec_full());
    out.postcard("service-spec-minimal", &ServiceSpec::new("web", "busybox"));
    out.postcard("node", &node());
    out.postcard("task", &task());
    out.postcard("rollout", &rollout());
    for (name, c) in commands() {
        out.postcard(&format!("request-{name}"), &Request { time_ms: 1_700_000_000_000, command: c });
    }
    for (name, r) in responses() {
        out.postcard(&format!("response-{name}"), &r);
    }
    out.postcard("stall-notice", &StallNotice { leader: 1, term: 7 });
    out.postcard(
        "register-request",
        &RegisterRequest {
            token: "HOIST1-0123456789abcdef-00112233445566778899aabbccddeeff".into(),
            node_id: Some("n1".into()),
            hostname: "host-1".into(),
            address: "10.0.0.11".into(),
            labels: BTreeMap::from([("zone".into(), "a".into())]),
            capacity: NodeResources { cpu_millis: 2000, memory_bytes: 4 << 30 },
            agent_version: "0.1.0".into(),
        },
    );
    out.postcard(
        "register-response",
        &RegisterResponse {
            node_id: "n1".into(),
            term: 3,
            heartbeat_interval_ms: 1000,
            grace_ms: 15000,
            cluster_id: "0123456789abcdef".into(),
        },
    );
    out.postcard("heartbeat", &Heartbeat { node_id: "n1".into(), term_seen: 3 });
    out.postcard("heartbeat-ack", &HeartbeatAck { term: 3, known: true });
    out.postcard(
        "assignments",
        &Assignments {
            index: 41,
            term: 3,
            tasks: vec![
                Assignment {
                    task_id: "00000000000000aa".into(),
                    service: "web".into(),
                    service_version: 2,
                    slot: 1,
                    spec: spec_full(),
                    desired: TaskState::Running,
                },
                Assignment {
                    task_id: "00000000000000bb".into(),
                    service: "old".into(),
                    service_version: 1,
                    slot: 0,
                    spec: ServiceSpec::new("old", ""),
                    desired: TaskState::Shutdown,
                },
            ],
        },
    );
    out.postcard(
        "status-report",
        &StatusReport { node_id: "n1".into(), term_seen: 3, tasks: vec![status()] },
    );
    out.postcard("status-ack", &StatusAck { term: 3 });
    out.bytes("state-snapshot.bin", &encode_image(&state()));
    for (name, e) in entries() {
        out.postcard(&format!("raft-entry-{name}"), &e);
    }
    let mut segment = Vec::new();
    for (_, e) in entries() {
        let bytes = postcard::to_stdvec(&e).unwrap();
        wal_record(e.log_id.index, e.log_id.leader_id.term, &bytes, &mut segment);
    }
    segment.resize(segment.len() + 4096, 0);
    out.bytes("raft-log-segment.log", &segment);
    // NID spelled out: a bare literal would make it i32.
    out.postcard("vote", &Vote::<u64>::new_committed(3, 1));
    out.postcard("committed", &Some(log_id(11)));
    out.postcard("purged", &log_id(9));
    out.postcard("snapshot-meta", &snapshot_meta());
    out.postcard("identity", &(1u64, "10.78.1.11:7070"));
    out.postcard(
        "append-entries-request",
        &AppendEntriesRequest::<TypeConfig> {
            vote: Vote::new_committed(3, 1),
            prev_log_id: Some(log_id(9)),
            leader_commit: Some(log_id(10)),
            entries: entries().into_iter().map(|(_, e)| e).collect(),
        },
    );
    let ok: Result<AppendEntriesResponse<u64>, RaftError<u64>> =
        Ok(AppendEntriesResponse::PartialSuccess(Some(log_id(11))));
    out.postcard("append-entries-result", &ok);
    let stopped: Result<AppendEntriesResponse<u64>, RaftError<u64>> =
        Err(RaftError::Fatal(Fatal::Stopped));
    out.postcard("append-entries-result-stopped", &stopped);
    out.postcard("vote-request", &VoteRequest { vote: Vote::new(4, 2), last_log_id: Some(log_id(12)) });
    let vote: Result<VoteResponse<u64>, RaftError<u64>> = Ok(VoteResponse {
        vote: Vote::new(4, 2),
        vote_granted: true,
        last_log_id: Some(log_id(12)),
    });
    out.postcard("vote-result", &vote);
    out.postcard(
        "install-snapshot-request",
        &InstallSnapshotRequest::<TypeConfig> {
            vote: Vote::new_committed(3, 1),
            meta: snapshot_meta(),
            offset: 0,
            data: encode_image(&state())[..64].to_vec(),
            done: false,
        },
    );
    let mismatch: Result<InstallSnapshotResponse<u64>, RaftError<u64, InstallSnapshotError>> =
        Err(RaftError::APIError(InstallSnapshotError::SnapshotMismatch(SnapshotMismatch {
            expect: SnapshotSegmentId { id: "3-12-0".into(), offset: 0 },
            got: SnapshotSegmentId { id: "3-12-0".into(), offset: 64 },
        })));
    out.postcard("install-snapshot-result", &mismatch);
    out.postcard(
        "propose",
        &vec![Command::Noop, Command::ScaleService { name: "web".into(), replicas: 2 }],
    );
    let outcomes: Vec<Result<Response, ConsensusError>> = vec![
        Ok(Response::Tasks(1)),
        Err(ConsensusError::NotLeader { leader: Some((2, "10.78.1.12:7070".into())) }),
        Err(ConsensusError::NoQuorum("no quorum".into())),
    ];
    out.postcard("outcomes", &outcomes);
}
