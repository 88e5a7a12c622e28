//! One sample of every message type, in today's types: the values the golden files of each format
//! hold (`proto/golden/vN/`). Format 0's files were written by Hoist 0.1.0 itself from the same
//! values (`proto/golden/v0/generator`); a later format's, by the build that introduced it. A value
//! set here only from format 1 on is a field format 0 cannot say.
#![allow(missing_docs)]

use crate::cluster::*;
use crate::node::*;
use crate::raft::*;
use crate::service::*;
use std::collections::BTreeMap;
use std::sync::Arc;

pub fn spec_full(format: u32) -> ServiceSpec {
    let mut s = ServiceSpec::new("web", "registry.example:5000/team/web:1.2");
    s.command = vec!["/bin/server".into()];
    s.args = vec!["--port".into(), "80".into()];
    s.env = BTreeMap::from([("A".into(), "1".into()), ("MODE".into(), "prod".into())]);
    s.replicas = 3;
    s.resources = ResourceSpec {
        cpu: Some("500m".into()),
        memory: Some("64Mi".into()),
        ..ResourceSpec::default()
    };
    s.ports = vec![
        ServicePort {
            target: 80,
            published: Some(8080),
            protocol: PortProtocol::Tcp,
            mode: Default::default(),
        },
        ServicePort {
            target: 53,
            published: None,
            protocol: PortProtocol::Udp,
            mode: Default::default(),
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
        drain: None,
    };
    s.placement = Placement {
        constraints: vec!["node.labels.zone==a".into()],
        max_per_node: 2,
        spread: Some("zone".into()),
    };
    s.labels = BTreeMap::from([("team".into(), "blue".into())]);
    s.autoscale = Some(Autoscale {
        min: 1,
        max: 9,
        ..Autoscale::default()
    });
    s.mode = ServiceMode::Replicated;
    if format >= 1 {
        s.stop_signal = Some("SIGQUIT".into());
        s.stop_grace_period = Some("30s".into());
    }
    s
}

pub fn node(format: u32) -> Node {
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
        agent_format: if format >= 1 { 1 } else { 0 },
        registered_ms: 1_700_000_000_000,
        updated_ms: 1_700_000_000_500,
        subnet: (format >= 2).then(|| "10.200.3.0/24".into()),
        wg_public_key: (format >= 2).then(|| WG_KEY.into()),
        wg_endpoint: (format >= 2).then(|| "10.0.0.11:51820".into()),
        overlay_generation: if format >= 2 { 17 } else { 0 },
        overlay_problem: None,
        credential_sha256: String::new(),
        cert_key_sha256: String::new(),
    }
}

/// A node whose agent holds a certificate: the hash of its key (format 2).
pub fn node_cert_key() -> Node {
    Node {
        credential_sha256: "cd".repeat(32),
        cert_key_sha256: "5e".repeat(32),
        ..node(2)
    }
}

/// A WireGuard public key (32 bytes, base64).
pub const WG_KEY: &str = "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=";

/// A node whose subnet could not be allocated (format 2).
pub fn node_without_subnet() -> Node {
    Node {
        id: "n9".into(),
        subnet: None,
        overlay_problem: Some(crate::overlay::exhausted("10.200.0.0/16", 24)),
        ..node(2)
    }
}

pub fn overlay() -> Overlay {
    Overlay {
        cluster_cidr: "10.200.0.0/16".into(),
        subnet: Some("10.200.3.0/24".into()),
        problem: None,
        peers: vec![OverlayPeer {
            node: "n2".into(),
            public_key: WG_KEY.into(),
            endpoint: "10.0.0.12:51820".into(),
            subnet: "10.200.4.0/24".into(),
            generation: 18,
        }],
        changed_since: 0,
        peer_count: 0,
    }
}

/// The sample overlay's peer as `node` at `generation`, with a subnet of its own (tests of
/// merging overlays).
pub fn overlay_peer(node: &str, generation: u64) -> OverlayPeer {
    OverlayPeer {
        node: node.into(),
        subnet: format!("10.200.{generation}.0/24"),
        generation,
        ..overlay().peers.remove(0)
    }
}

/// The sample overlay with these peers, as a whole overlay (`changed_since` 0) or as the changes
/// since an overlay index.
pub fn overlay_with(peers: Vec<OverlayPeer>, changed_since: u64, peer_count: u64) -> Overlay {
    Overlay {
        peers,
        changed_since,
        peer_count,
        ..overlay()
    }
}

pub fn overlay_report() -> OverlayReport {
    OverlayReport {
        node_id: "n1".into(),
        peers: vec![crate::agent::PeerStatus {
            node: "n2".into(),
            endpoint: "10.0.0.12:51820".into(),
            subnet: "10.200.4.0/24".into(),
            handshake_age_s: Some(12),
            rx_bytes: 4096,
            tx_bytes: 8192,
            probes_sent: 10,
            probes_lost: 1,
            probes_lost_in_a_row: 0,
            probe_rtt_ms: Some(0.25),
        }],
        mesh_error: None,
    }
}

pub fn volume_report() -> VolumeReport {
    VolumeReport {
        node_id: "n1".into(),
        volumes: vec![
            NodeVolume {
                name: "pgdata".into(),
                size_bytes: Some(52_428_800),
                used_by: vec!["shop_db.1.00000000000000ab".into()],
                created_ms: Some(1_700_000_000_000),
            },
            NodeVolume {
                name: "scratch".into(),
                size_bytes: None,
                used_by: vec![],
                created_ms: None,
            },
        ],
    }
}

pub fn service_endpoints() -> ServiceEndpoints {
    ServiceEndpoints {
        index: 52,
        term: 3,
        services: vec![ServiceAddresses {
            service: "api".into(),
            replicas: vec![ReplicaAddress {
                slot: 0,
                task: "00000000000000aa".into(),
                node: "n2".into(),
                address: "10.200.4.7".into(),
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

pub fn task() -> Task {
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
        drain_index: None,
    }
}

pub fn rollout() -> Rollout {
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

pub fn status() -> TaskStatus {
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

pub fn commands(format: u32) -> Vec<(&'static str, Command)> {
    let mut v = vec![
        (
            "apply-service",
            Command::ApplyService(Box::new(spec_full(format))),
        ),
        (
            "delete-service",
            Command::DeleteService { name: "web".into() },
        ),
        (
            "scale-service",
            Command::ScaleService {
                name: "web".into(),
                replicas: 5,
            },
        ),
        (
            "rollback-service",
            Command::RollbackService {
                name: "web".into(),
                version: Some(1),
            },
        ),
        ("register-node", Command::RegisterNode(node(format))),
        (
            "set-node-status",
            Command::SetNodeStatus {
                id: "n1".into(),
                status: NodeStatus::Ready,
            },
        ),
        ("remove-node", Command::RemoveNode { id: "n2".into() }),
        ("put-tasks", Command::PutTasks(vec![task()])),
        (
            "remove-tasks",
            Command::RemoveTasks(vec!["a".into(), "b".into()]),
        ),
        ("restore", Command::Restore(vec![1, 2, 3])),
        ("noop", Command::Noop),
        (
            "batch",
            Command::Batch(vec![Command::Noop, Command::RemoveTasks(vec!["c".into()])]),
        ),
        (
            "plan",
            Command::Plan(Plan {
                place: vec![task()],
                stop: vec![("t2".into(), "scaled down".into())],
                remove: vec!["t3".into()],
                rollouts: vec![("web".into(), rollout())],
                drain: vec![],
            }),
        ),
        (
            "set-node-availability",
            Command::SetNodeAvailability {
                id: "n1".into(),
                availability: NodeAvailability::Paused,
            },
        ),
        (
            "set-node-labels",
            Command::SetNodeLabels {
                id: "n1".into(),
                set: BTreeMap::from([("zone".into(), "b".into())]),
                remove: vec!["disk".into()],
            },
        ),
        (
            "report-status",
            Command::ReportStatus {
                node: "n1".into(),
                tasks: vec![status()],
            },
        ),
        (
            "init-cluster",
            Command::InitCluster {
                cluster_id: "0123456789abcdef".into(),
                secret: "00112233445566778899aabbccddeeff".into(),
            },
        ),
    ];
    if format >= 1 {
        v.push((
            "set-cluster-format",
            Command::SetClusterFormat { format: 1 },
        ));
        v.push((
            "set-node-version",
            Command::SetNodeVersion {
                id: "n1".into(),
                agent_version: "0.2.0".into(),
                agent_format: 1,
            },
        ));
    }
    if format >= 2 {
        v.push((
            "set-cluster-network",
            Command::SetClusterNetwork(ClusterNetwork {
                cidr: "10.200.0.0/16".into(),
                subnet_prefix: 24,
                vip_cidr: None,
            }),
        ));
        v.push((
            "set-cluster-network-vips",
            Command::SetClusterNetwork(ClusterNetwork {
                cidr: "10.200.0.0/16".into(),
                subnet_prefix: 24,
                vip_cidr: Some("10.201.0.0/16".into()),
            }),
        ));
        v.push((
            "plan-drain",
            Command::Plan(Plan {
                stop: vec![("t2".into(), "drained".into())],
                drain: vec![("t4".into(), "replaced by version 3".into())],
                ..Plan::default()
            }),
        ));
        v.push((
            "apply-service-mesh",
            Command::ApplyService(Box::new(spec_mesh())),
        ));
        v.push((
            "register-node-without-subnet",
            Command::RegisterNode(node_without_subnet()),
        ));
        v.push((
            "apply-service-complete",
            Command::ApplyService(Box::new(spec_complete())),
        ));
        v.push((
            "deploy-stack",
            Command::DeployStack(Box::new(StackDeploy {
                name: "shop".into(),
                services: vec![spec_complete(), ServiceSpec::new("shop_web", "nginx")],
                prune: true,
            })),
        ));
        v.push((
            "set-release-state",
            Command::SetReleaseState {
                stack: "shop".into(),
                release: 2,
                state: ReleaseState::Completed,
                message: String::new(),
            },
        ));
        v.push((
            "rollback-stack",
            Command::RollbackStack {
                stack: "shop".into(),
                release: 2,
                reason: "shop_db: paused: task t1 failed".into(),
            },
        ));
        v.push((
            "remove-stack",
            Command::RemoveStack {
                name: "shop".into(),
            },
        ));
        v.push((
            "apply-service-autoscale",
            Command::ApplyService(Box::new(spec_autoscale())),
        ));
        v.push((
            "autoscale",
            Command::Autoscale(Box::new(autoscale_decision())),
        ));
        v.push(("create-hook-token", Command::CreateHookToken(hook_token())));
        v.push((
            "remove-hook-token",
            Command::RemoveHookToken {
                id: "0f1e2d3c".into(),
            },
        ));
        v.push((
            "create-operator-token",
            Command::CreateOperatorToken(operator_token()),
        ));
        v.push((
            "remove-operator-token",
            Command::RemoveOperatorToken { name: "ci".into() },
        ));
        v.push((
            "touch-operator-tokens",
            Command::TouchOperatorTokens {
                names: vec!["admin".into(), "ci".into()],
            },
        ));
        v.push((
            "put-secret",
            Command::PutFile(Box::new(crate::files::FileWrite {
                kind: crate::files::FileKind::Secret,
                name: "db-pass".into(),
                data: b"HSEAL1\0sealed-bytes".to_vec(),
                size: 12,
            })),
        ));
        v.push((
            "put-config",
            Command::PutFile(Box::new(crate::files::FileWrite {
                kind: crate::files::FileKind::Config,
                name: "api.toml".into(),
                data: b"port = 8080\n".to_vec(),
                size: 12,
            })),
        ));
        v.push((
            "remove-file",
            Command::RemoveFile {
                kind: crate::files::FileKind::Config,
                name: "api.toml".into(),
            },
        ));
        v.push((
            "set-member-key",
            Command::SetMemberKey {
                member: 2,
                public_key: vec![7; 32],
            },
        ));
        v.push((
            "seal-data-key",
            Command::SealDataKey {
                key_id: "3f2a9c01".into(),
                keys: vec![crate::files::SealedKey {
                    member: 2,
                    public_key: vec![7; 32],
                    sealed: vec![9; 80],
                }],
            },
        ));
        v.push((
            "set-autolock",
            Command::SetAutolock {
                sealed_unlock_key: b"HSEAL1\0sealed-unlock-key".to_vec(),
            },
        ));
        v.push((
            "remove-member-keys",
            Command::RemoveMemberKeys {
                members: vec![4, 5],
            },
        ));
        v.push((
            "audited-scale",
            Command::Audited {
                actor: "ci".into(),
                command: Box::new(Command::ScaleService {
                    name: "web".into(),
                    replicas: 4,
                }),
            },
        ));
        v.push((
            "set-cluster-ca",
            Command::SetClusterCa(Box::new(cluster_ca())),
        ));
        v.push((
            "rotate-join-secret",
            Command::RotateJoinSecret {
                secret: "ffeeddccbbaa99887766554433221100".into(),
                manager: false,
            },
        ));
        v.push((
            "rotate-manager-join-secret",
            Command::RotateJoinSecret {
                secret: "00112233445566778899aabbccddeeff".into(),
                manager: true,
            },
        ));
        v.push((
            "register-node-cert-key",
            Command::RegisterNode(node_cert_key()),
        ));
        v.push((
            "rotate-cluster-ca",
            Command::RotateClusterCa(Box::new(cluster_ca_rotating())),
        ));
        v.push((
            "finish-ca-rotation",
            Command::FinishCaRotation {
                digest: "4d".repeat(32),
            },
        ));
    }
    v
}

/// A root certificate, PEM (a sample's text: not a certificate that parses).
pub const CA_CERT_PEM: &str = "-----BEGIN CERTIFICATE-----\n\
    MIIBfTCCASOgAwIBAgIUSG9pc3QgY2x1c3RlciBDQSBzYW1wbGUwCgYIKoZIzj0E\n\
    AwIwFDESMBAGA1UEAwwJaG9pc3QtY2EwHhcNMjYwMTAxMDAwMDAwWhcNMzYwMTAx\n\
    -----END CERTIFICATE-----\n";

/// A node's certificate, PEM (a sample's text: not a certificate that parses).
pub const NODE_CERT_PEM: &str = "-----BEGIN CERTIFICATE-----\n\
    MIIBgjCCASigAwIBAgIUbjEgbm9kZSBjZXJ0aWZpY2F0ZSBzYW1wbGUwCgYIKoZI\n\
    zj0EAwIwFDESMBAGA1UEAwwJaG9pc3QtY2EwHhcNMjYwMTAxMDAwMDAwWhcNMjYw\n\
    -----END CERTIFICATE-----\n";

/// A certificate signing request, PEM (a sample's text: not a CSR that parses).
pub const CSR_PEM: &str = "-----BEGIN CERTIFICATE REQUEST-----\n\
    MIHHMG8CAQAwDTELMAkGA1UEAwwCbjEwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNC\n\
    AARob2lzdCBub2RlIGtleSBzYW1wbGUgZm9yIHRoZSBnb2xkZW4gZmlsZXMgb2Yg\n\
    -----END CERTIFICATE REQUEST-----\n";

/// The cluster's root CA as the state keeps it: its key sealed (format 2).
pub fn cluster_ca() -> ClusterCa {
    ClusterCa {
        cert_pem: CA_CERT_PEM.into(),
        sealed_key: b"HSEAL1\0sealed-ca-key".to_vec(),
        digest: "3c".repeat(32),
        created_ms: 1_700_000_000_000,
        previous_pem: String::new(),
        cross_pem: String::new(),
    }
}

/// A root that replaces [`cluster_ca`], during its rotation (format 2).
pub fn cluster_ca_rotating() -> ClusterCa {
    ClusterCa {
        cert_pem: CA_CERT_PEM.replace("MIIBfT", "MIIBgT"),
        sealed_key: b"HSEAL1\0sealed-next-ca-key".to_vec(),
        digest: "4d".repeat(32),
        created_ms: 1_700_000_600_000,
        previous_pem: CA_CERT_PEM.into(),
        cross_pem: CA_CERT_PEM.replace("MIIBfT", "MIIBhT"),
    }
}

/// A spec that references a secret and a config (format 2).
pub fn spec_files() -> ServiceSpec {
    let mut s = ServiceSpec::new("api", "registry.example:5000/team/api:7");
    s.secrets = vec![crate::files::FileRef {
        source: "db-pass".into(),
        target: Some("/run/secrets/db-pass".into()),
        mode: Some("0400".into()),
        uid: Some(0),
        gid: None,
        on_update: Some("signal:SIGHUP".into()),
    }];
    s.configs = vec![crate::files::FileRef {
        source: "api.toml".into(),
        target: None,
        mode: None,
        uid: Some(1000),
        gid: Some(1000),
        on_update: None,
    }];
    s
}

/// A secret as the state keeps it: sealed content (format 2).
pub fn stored_secret() -> crate::files::StoredFile {
    crate::files::StoredFile {
        kind: crate::files::FileKind::Secret,
        name: "db-pass".into(),
        version: 3,
        created_ms: 1_700_000_000_000,
        updated_ms: 1_700_000_300_000,
        size: 12,
        data: b"HSEAL1\0sealed-bytes".to_vec(),
    }
}

/// A task's assignment with the versions of the secret and config it references (format 2).
pub fn assignments_files() -> Assignments {
    Assignments {
        index: 57,
        term: 3,
        tasks: vec![Assignment {
            task_id: "00000000000000cc".into(),
            service: "api".into(),
            service_version: 1,
            slot: 0,
            spec: spec_files(),
            desired: TaskState::Running,
            files: vec![
                crate::files::FileVersion {
                    kind: crate::files::FileKind::Secret,
                    name: "db-pass".into(),
                    version: 3,
                },
                crate::files::FileVersion {
                    kind: crate::files::FileKind::Config,
                    name: "api.toml".into(),
                    version: 1,
                },
            ],
            spec_held: false,
        }],
        overlay: None,
        overlay_index: 0,
        changed_since: 0,
        unchanged: vec![],
    }
}

/// What an agent fetches for that task (format 2).
pub fn task_files() -> crate::files::TaskFiles {
    crate::files::TaskFiles {
        files: vec![
            crate::files::FileContent {
                kind: crate::files::FileKind::Secret,
                name: "db-pass".into(),
                version: 3,
                data: b"s3cret\n".to_vec(),
            },
            crate::files::FileContent {
                kind: crate::files::FileKind::Config,
                name: "api.toml".into(),
                version: 1,
                data: b"port = 8080\n".to_vec(),
            },
        ],
    }
}

/// A deployer's operator token (format 2).
pub fn operator_token() -> OperatorToken {
    OperatorToken {
        name: "ci".into(),
        role: Role::Deployer,
        id: "9a8b7c6d".into(),
        secret_sha256: "ef".repeat(32),
        created_ms: 1_700_000_000_000,
        created_by: "admin".into(),
        last_used_ms: 1_700_000_060_000,
    }
}

/// An audit log entry of a refused write (format 2).
pub fn audit_entry() -> AuditEntry {
    AuditEntry {
        index: 913,
        time_ms: 1_700_000_120_000,
        actor: "ci".into(),
        action: "scale service web to 4".into(),
        error: Some("service \"web\" not found".into()),
    }
}

/// A spec with format 2's autoscaling policy: steps, proportional target, cooldown,
/// stabilization and a PromQL query.
pub fn spec_autoscale() -> ServiceSpec {
    let mut s = ServiceSpec::new("api", "busybox");
    s.replicas = 2;
    s.autoscale = Some(Autoscale {
        min: 1,
        max: 10,
        step: Some(2),
        target: Some(Number(100.0)),
        cooldown_up: Some("0s".into()),
        stabilization_down: Some("5m".into()),
        query: Some(
            "sum(rate(hoist_container_network_receive_bytes_total{service=\"api\"}[1m]))".into(),
        ),
        target_value: Some(Number(0.75)),
        interval: Some("10s".into()),
    });
    s
}

/// An alert's decision, held by the bounds (format 2).
pub fn autoscale_decision() -> AutoscaleDecision {
    AutoscaleDecision {
        service: "api".into(),
        source: AutoscaleSource::Alertmanager,
        from: 9,
        to: 10,
        reason: "alert HighLoad firing (hoist_scale=up)".into(),
        detail: "clamped to max 10".into(),
        dedup: Some("5f1c0a9e7d2b3c4a".into()),
        index: 812,
        time_ms: 1_700_000_000_000,
    }
}

/// A hook token scoped to one service (format 2).
pub fn hook_token() -> HookToken {
    HookToken {
        id: "0f1e2d3c".into(),
        service: Some("api".into()),
        secret_sha256: "cd".repeat(32),
        created_ms: 1_700_000_000_000,
    }
}

/// A service's autoscale history (format 2).
pub fn autoscale_log() -> AutoscaleLog {
    let query = AutoscaleDecision {
        source: AutoscaleSource::Query,
        from: 10,
        to: 10,
        reason: "query failed".into(),
        detail: "prometheus: bad_data: parse error".into(),
        dedup: None,
        index: 830,
        ..autoscale_decision()
    };
    AutoscaleLog {
        decisions: [autoscale_decision(), query].map(Arc::new).into(),
        seen: ["5f1c0a9e7d2b3c4a".to_string()].into(),
        total: 2,
        scaled: 1,
    }
}

pub fn service(spec: ServiceSpec) -> Service {
    Service {
        name: "web".into(),
        version: 2,
        spec: Arc::new(spec),
        created_ms: 5,
        updated_ms: 6,
        vip: None,
    }
}

/// A spec with the routing mesh's fields (format 2): a host-mode port, DNS round robin, a drain.
pub fn spec_mesh() -> ServiceSpec {
    let mut s = ServiceSpec::new("api", "busybox");
    s.ports = vec![
        ServicePort {
            target: 80,
            published: Some(8080),
            protocol: PortProtocol::Tcp,
            mode: PortMode::Ingress,
        },
        ServicePort {
            target: 9000,
            published: Some(9000),
            protocol: PortProtocol::Udp,
            mode: PortMode::Host,
        },
    ];
    s.endpoint_mode = EndpointMode::Dnsrr;
    s.update.drain = Some("250ms".into());
    s
}

/// A spec with format 2's complete-spec fields: user, workdir, hostname, init, read-only root,
/// ulimits, mounts of every type, limits apart from reservations, a pinned digest and registry
/// credentials.
pub fn spec_complete() -> ServiceSpec {
    let mut s = ServiceSpec::new("db", "registry.example:5000/team/db:16");
    s.user = Some("999:999".into());
    s.workdir = Some("/var/lib/db".into());
    s.hostname = Some("db-primary".into());
    s.init = Some(false);
    s.read_only = true;
    s.ulimits = BTreeMap::from([
        (
            "nofile".into(),
            Ulimit {
                soft: 1024,
                hard: 4096,
            },
        ),
        ("core".into(), Ulimit { soft: 0, hard: 0 }),
    ]);
    s.mounts = vec![
        Mount {
            kind: MountType::Volume,
            source: Some("db-data".into()),
            target: "/var/lib/db".into(),
            read_only: false,
            size: None,
            mode: None,
        },
        Mount {
            kind: MountType::Bind,
            source: Some("/etc/ssl/certs".into()),
            target: "/certs".into(),
            read_only: true,
            size: None,
            mode: None,
        },
        Mount {
            kind: MountType::Tmpfs,
            source: None,
            target: "/run/db".into(),
            read_only: false,
            size: Some("16Mi".into()),
            mode: Some("1770".into()),
        },
    ];
    s.resources = ResourceSpec {
        cpu: None,
        memory: None,
        limits: Some(ResourceLimits {
            cpu: Some("2".into()),
            memory: Some("1Gi".into()),
            pids: Some(512),
        }),
        reservations: Some(ResourceReservations {
            cpu: Some("250m".into()),
            memory: Some("256Mi".into()),
        }),
    };
    s.stop_signal = Some("SIGINT".into());
    s.image_digest = Some(format!("sha256:{}", "ab".repeat(32)));
    s.registry_auth = Some(crate::image::RegistryAuth {
        username: "deploy".into(),
        password: "s3cret".into(),
    });
    s
}

/// A spec with container hardening (format 2): capabilities added and dropped, privileges
/// that setuid binaries may raise, a user namespace.
pub fn spec_hardened() -> ServiceSpec {
    let mut s = ServiceSpec::new("edge", "registry.example:5000/team/edge:3");
    s.cap_add = vec!["NET_ADMIN".into(), "CAP_SYS_PTRACE".into()];
    s.cap_drop = vec!["ALL".into()];
    s.no_new_privileges = Some(false);
    s.userns = true;
    s
}

/// A task taken out of its service's addresses (format 2).
pub fn task_draining() -> Task {
    Task {
        drain_index: Some(61),
        ..task()
    }
}

/// Format 2's endpoints as changed since the index the agent holds: `web` in full, `api` named
/// as unchanged.
pub fn service_endpoints_changed() -> ServiceEndpoints {
    let mut e = service_endpoints();
    e.index = 60;
    e.services[0].service = "web".into();
    e.changed_since = 52;
    e.unchanged = vec!["api".into()];
    e
}

/// Format 2's endpoints as changed since the index the agent holds, to a poll that merges
/// replicas: `web`'s changed replica, one removed, and the count; with the pace of polls.
pub fn service_endpoints_replicas_changed() -> ServiceEndpoints {
    let mut e = service_endpoints_changed();
    let web = &mut e.services[0];
    web.replicas[0].slot = 3;
    web.replicas[0].task = "00000000000000dd".into();
    web.partial = true;
    web.removed = vec!["00000000000000bb".into()];
    web.replica_count = 4;
    e.pace_ms = 250;
    e
}

/// Format 2's endpoints with a virtual IP and the ports.
pub fn service_endpoints_vip() -> ServiceEndpoints {
    let mut e = service_endpoints();
    e.services[0].vip = Some("10.201.0.4".into());
    e.services[0].ports = spec_full(2).ports;
    e
}

pub fn responses(format: u32) -> Vec<(&'static str, Response)> {
    let mut v = vec![
        (
            "service",
            Response::Service(ServiceChange {
                service: service(spec_full(format)),
                changed: true,
            }),
        ),
        (
            "deleted",
            Response::Deleted(service(ServiceSpec::new("web", "busybox"))),
        ),
        ("node", Response::Node(node(format))),
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
        (
            "batch",
            Response::Batch(vec![Response::Ok, Response::Tasks(1)]),
        ),
        (
            "plan",
            Response::Plan(PlanResult {
                placed: 2,
                refused: vec![("t9".into(), "n1: needs 1 CPU, 0 free".into())],
                stopped: 1,
            }),
        ),
    ];
    if format >= 2 {
        v.push((
            "stack",
            Response::Stack(Box::new(StackChange {
                stack: stack(),
                changed: true,
                services: vec![ServiceChange {
                    service: service(ServiceSpec::new("shop_web", "nginx:2")),
                    changed: true,
                }],
            })),
        ));
        v.push((
            "autoscale",
            Response::Autoscale(Box::new(AutoscaleOutcome {
                decision: autoscale_decision(),
                applied: true,
            })),
        ));
    }
    v
}

/// A stack with a rolled-back release and one deploying (format 2).
pub fn stack() -> Stack {
    Stack {
        name: "shop".into(),
        created_ms: 100,
        services: vec!["shop_db".into(), "shop_web".into()],
        releases: vec![
            StackRelease {
                release: 1,
                created_ms: 100,
                updated_ms: 150,
                state: ReleaseState::RolledBack,
                message: "shop_db: paused: task t1 failed".into(),
                members: vec![
                    StackMember {
                        service: "shop_db".into(),
                        version: 2,
                        previous: 1,
                        changed: true,
                    },
                    StackMember {
                        service: "shop_web".into(),
                        version: 4,
                        previous: 4,
                        changed: false,
                    },
                ],
                removed: vec!["shop_old".into()],
            },
            StackRelease {
                release: 2,
                created_ms: 200,
                updated_ms: 200,
                state: ReleaseState::Deploying,
                message: String::new(),
                members: vec![StackMember {
                    service: "shop_web".into(),
                    version: 5,
                    previous: 4,
                    changed: true,
                }],
                removed: vec![],
            },
        ],
    }
}

pub fn register_request(format: u32) -> RegisterRequest {
    RegisterRequest {
        token: "HOIST1-0123456789abcdef-00112233445566778899aabbccddeeff".into(),
        node_id: Some("n1".into()),
        hostname: "host-1".into(),
        address: "10.0.0.11".into(),
        labels: BTreeMap::from([("zone".into(), "a".into())]),
        capacity: NodeResources {
            cpu_millis: 2000,
            memory_bytes: 4 << 30,
        },
        agent_version: "0.1.0".into(),
        wg_public_key: (format >= 2).then(|| WG_KEY.into()),
        wg_endpoint: (format >= 2).then(|| "10.0.0.11:51820".into()),
        csr: None,
    }
}

pub fn register_response() -> RegisterResponse {
    RegisterResponse {
        node_id: "n1".into(),
        term: 3,
        heartbeat_interval_ms: 1000,
        grace_ms: 15000,
        cluster_id: "0123456789abcdef".into(),
        node_credential: None,
        certificate: None,
        ca_certificate: None,
    }
}

/// A registration's answer with the node's own credential (format 2).
pub fn register_response_credential() -> RegisterResponse {
    RegisterResponse {
        node_credential: Some(crate::node::node_credential("n1", &"ab".repeat(32))),
        ..register_response()
    }
}

/// A registration with a CSR for the node's key (format 2).
pub fn register_request_csr() -> RegisterRequest {
    RegisterRequest {
        token: format!(
            "HOIST2-0123456789abcdef-{}-00112233445566778899aabbccddeeff",
            "3c".repeat(32)
        ),
        csr: Some(CSR_PEM.into()),
        ..register_request(2)
    }
}

/// A registration's answer with the node's certificate and the cluster's root (format 2).
pub fn register_response_certificate() -> RegisterResponse {
    RegisterResponse {
        certificate: Some(NODE_CERT_PEM.into()),
        ca_certificate: Some(CA_CERT_PEM.into()),
        ..register_response_credential()
    }
}

/// `POST /v1/agent/certificate`: a renewal (format 2).
pub fn certificate_request() -> CertificateRequest {
    CertificateRequest {
        node_id: "n1".into(),
        csr: CSR_PEM.into(),
    }
}

/// Its answer (format 2).
pub fn certificate_response() -> CertificateResponse {
    CertificateResponse {
        certificate: NODE_CERT_PEM.into(),
        ca_certificate: CA_CERT_PEM.into(),
    }
}

pub fn heartbeat() -> Heartbeat {
    Heartbeat {
        node_id: "n1".into(),
        term_seen: 3,
        endpoints_applied: 0,
    }
}

pub fn heartbeat_ack() -> HeartbeatAck {
    HeartbeatAck {
        term: 3,
        known: true,
        ca_digest: String::new(),
        heartbeat_interval_ms: 0,
    }
}

pub fn assignments(format: u32) -> Assignments {
    Assignments {
        index: 41,
        term: 3,
        tasks: vec![
            Assignment {
                task_id: "00000000000000aa".into(),
                service: "web".into(),
                service_version: 2,
                slot: 1,
                spec: spec_full(format),
                desired: TaskState::Running,
                files: vec![],
                spec_held: false,
            },
            Assignment {
                task_id: "00000000000000bb".into(),
                service: "old".into(),
                service_version: 1,
                slot: 0,
                spec: ServiceSpec::new("old", ""),
                desired: TaskState::Shutdown,
                files: vec![],
                spec_held: false,
            },
        ],
        overlay: (format >= 2).then(overlay),
        overlay_index: 0,
        changed_since: 0,
        unchanged: vec![],
    }
}

/// An answer to a poll that named the specs it holds: the first task's spec left out (format 2).
pub fn assignments_spec_held() -> Assignments {
    let mut a = Assignments {
        index: 46,
        overlay: None,
        overlay_index: 40,
        ..assignments(2)
    };
    a.tasks[0].spec = ServiceSpec::new("web", "");
    a.tasks[0].spec_held = true;
    a
}

/// An answer to a poll that named the term of the answer whose tasks it holds: the first task
/// changed since, and another named as unchanged (format 2).
pub fn assignments_changed() -> Assignments {
    let mut a = Assignments {
        index: 47,
        overlay: None,
        overlay_index: 40,
        changed_since: 46,
        unchanged: vec!["00000000000000cc".into()],
        ..assignments(2)
    };
    a.tasks.truncate(1);
    a
}

/// An answer that carries the overlay's index, one that leaves the overlay out because the poll
/// named that index, and one with only the peers changed since the index named (format 2).
pub fn assignments_overlay_index() -> [Assignments; 3] {
    let full = Assignments {
        overlay_index: 40,
        ..assignments(2)
    };
    let unchanged = Assignments {
        index: 44,
        overlay: None,
        ..full.clone()
    };
    let mut changes = overlay();
    changes.peers[0].generation = 45;
    changes.changed_since = 40;
    changes.peer_count = 2;
    let changed = Assignments {
        index: 45,
        overlay: Some(changes),
        overlay_index: 45,
        ..full.clone()
    };
    [full, unchanged, changed]
}

pub fn status_report() -> StatusReport {
    StatusReport {
        node_id: "n1".into(),
        term_seen: 3,
        tasks: vec![status()],
    }
}

pub fn status_ack() -> StatusAck {
    StatusAck { term: 3 }
}

pub fn stall_notice() -> StallNotice {
    StallNotice { leader: 1, term: 7 }
}

/// The request every command sample travels in.
pub fn request(command: Command) -> Request {
    Request {
        time_ms: 1_700_000_000_000,
        command,
    }
}
