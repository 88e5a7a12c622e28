//! The golden files of the controller's records and messages (`proto/golden/vN/`): the state
//! snapshot, Raft log entries and a segment file, the values kept in redb, the Raft RPCs and the
//! forwarded writes. Format 0's were written by Hoist 0.1.0 (`proto/golden/v0/generator`, from
//! the same values as here); see `hoist_proto::format::golden` for the rules.

use crate::raft::wire::{self, Outcome};
use crate::raft::{ConsensusError, TypeConfig};
use crate::state::{decode_snapshot, encode_snapshot, ClusterIdentity, ServiceRecord, State};
use hoist_proto::cluster::{ServiceVersion, TaskState, VersionOrigin};
use hoist_proto::format::golden::{assert_none_missing, check_bytes, dir};
use hoist_proto::format::{samples, CURRENT, OLDEST};
use hoist_proto::raft::{Command, Response};
use hoist_proto::service::ServiceSpec;
use openraft::error::{Fatal, InstallSnapshotError, RaftError, SnapshotMismatch};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, VoteRequest, VoteResponse,
};
use openraft::{
    BasicNode, CommittedLeaderId, Entry, EntryPayload, LogId, Membership, SnapshotMeta,
    SnapshotSegmentId, StoredMembership, Vote,
};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;

fn state(format: u32) -> State {
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
        spec: Arc::new(samples::spec_full(format)),
    };
    st.services.insert(
        "web".into(),
        ServiceRecord {
            created_ms: 100,
            history: VecDeque::from([v1, v2]).into(),
        },
    );
    st.nodes.insert("n1".into(), samples::node(format));
    st.tasks.insert(samples::task());
    st.identity = Some(ClusterIdentity {
        cluster_id: "0123456789abcdef".into(),
        secret: "00112233445566778899aabbccddeeff".into(),
        manager_secret: String::new(),
    });
    st.rollouts.insert("web".into(), samples::rollout());
    let mut ended = samples::task();
    ended.id = "00000000000000bb".into();
    ended.state = TaskState::Shutdown;
    st.slot_history.insert(
        "web".into(),
        [(1u64, VecDeque::from([ended]))].into_iter().collect(),
    );
    st.node_index.insert("n1".into(), 41);
    st.endpoints_index.insert("web".into(), 42);
    st.cluster_format = format;
    if format >= 2 {
        st.network = Some(hoist_proto::cluster::ClusterNetwork {
            cidr: "10.200.0.0/16".into(),
            subnet_prefix: 24,
            vip_cidr: None,
        });
        st.overlay_index = 17;
    }
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
        (
            "blank",
            Entry {
                log_id: log_id(10),
                payload: EntryPayload::Blank,
            },
        ),
        (
            "normal",
            Entry {
                log_id: log_id(11),
                payload: EntryPayload::Normal(samples::request(Command::ScaleService {
                    name: "web".into(),
                    replicas: 4,
                })),
            },
        ),
        (
            "membership",
            Entry {
                log_id: log_id(12),
                payload: EntryPayload::Membership(membership()),
            },
        ),
    ]
}

fn snapshot_meta() -> SnapshotMeta<u64, BasicNode> {
    SnapshotMeta {
        last_log_id: Some(log_id(12)),
        last_membership: StoredMembership::new(Some(log_id(12)), membership()),
        snapshot_id: "3-12-0".into(),
    }
}

/// A check of one file of `format`, by encode and decode functions.
struct Checker {
    format: u32,
    missing: Vec<PathBuf>,
}

impl Checker {
    fn file<T: PartialEq + std::fmt::Debug>(
        &mut self,
        name: &str,
        expected: &T,
        encode: impl Fn(&T, u32) -> Vec<u8>,
        decode: impl Fn(&[u8], u32) -> Result<T, String>,
    ) {
        let f = self.format;
        check_bytes(
            f,
            &format!("{name}.bin"),
            expected,
            |v| encode(v, f),
            |b| decode(b, f),
            &mut self.missing,
        );
    }
}

fn e(d: impl std::fmt::Display) -> String {
    d.to_string()
}

#[test]
fn every_golden_file_of_every_format_read_decodes() {
    let mut missing = Vec::new();
    for format in OLDEST..=CURRENT {
        let mut c = Checker {
            format,
            missing: Vec::new(),
        };
        c.file(
            "state-snapshot",
            &state(format),
            |s, f| encode_snapshot(s, f).unwrap(),
            |b, _| decode_snapshot(b).map_err(e),
        );
        if format >= 2 {
            // The routing mesh's state: a VIP range, a service's VIP, a draining task.
            let mut st = state(format);
            if let Some(n) = st.network.as_mut() {
                n.vip_cidr = Some("10.201.0.0/16".into());
            }
            st.vips.insert("web".into(), "10.201.0.1".into());
            let t = samples::task_draining();
            st.tasks.insert(t);
            c.file(
                "state-snapshot-vips",
                &st,
                |s, f| encode_snapshot(s, f).unwrap(),
                |b, _| decode_snapshot(b).map_err(e),
            );
            // Stacks and their releases.
            let mut st = state(format);
            st.stacks.insert("shop".into(), samples::stack());
            c.file(
                "state-snapshot-stacks",
                &st,
                |s, f| encode_snapshot(s, f).unwrap(),
                |b, _| decode_snapshot(b).map_err(e),
            );
            // Autoscaling histories and hook tokens.
            let mut st = state(format);
            st.autoscale.insert("api".into(), samples::autoscale_log());
            let token = samples::hook_token();
            st.hook_tokens.insert(token.id.clone(), token);
            c.file(
                "state-snapshot-autoscale",
                &st,
                |s, f| encode_snapshot(s, f).unwrap(),
                |b, _| decode_snapshot(b).map_err(e),
            );
            // Operators' tokens and the audit log.
            let mut st = state(format);
            let token = samples::operator_token();
            st.operator_tokens.insert(token.name.clone(), token);
            st.audit.push_back(samples::audit_entry());
            c.file(
                "state-snapshot-operators",
                &st,
                |s, f| encode_snapshot(s, f).unwrap(),
                |b, _| decode_snapshot(b).map_err(e),
            );
            // Secrets, configs and the data key's sealed copies.
            let mut st = state(format);
            let secret = samples::stored_secret();
            st.secrets.insert(secret.name.clone(), secret);
            let config = hoist_proto::files::StoredFile {
                kind: hoist_proto::files::FileKind::Config,
                name: "api.toml".into(),
                version: 1,
                created_ms: 1_700_000_000_000,
                updated_ms: 1_700_000_000_000,
                size: 12,
                data: b"port = 8080\n".to_vec(),
            };
            st.configs.insert(config.name.clone(), config);
            st.member_keys.insert(
                2,
                hoist_proto::files::MemberKey {
                    public_key: vec![7; 32],
                    sealed_data_key: vec![9; 80],
                },
            );
            st.data_key_id = "3f2a9c0112345678".into();
            c.file(
                "state-snapshot-files",
                &st,
                |s, f| encode_snapshot(s, f).unwrap(),
                |b, _| decode_snapshot(b).map_err(e),
            );
            // A version made to restart replicas (`on_update = "restart"`).
            let mut st = state(format);
            if let Some(r) = st.services.get_mut("web") {
                let cur = r.current().clone();
                std::sync::Arc::make_mut(&mut r.history).push_back(ServiceVersion {
                    version: 3,
                    origin: VersionOrigin::Restart { from: 2 },
                    created_ms: 300,
                    spec: cur.spec,
                });
            }
            c.file(
                "state-snapshot-restart",
                &st,
                |s, f| encode_snapshot(s, f).unwrap(),
                |b, _| decode_snapshot(b).map_err(e),
            );
            // Autolock on: the unlock key sealed under the data key.
            let mut st = state(format);
            st.data_key_id = "3f2a9c0112345678".into();
            st.autolock = b"HSEAL1\0sealed-unlock-key".to_vec();
            c.file(
                "state-snapshot-autolock",
                &st,
                |s, f| encode_snapshot(s, f).unwrap(),
                |b, _| decode_snapshot(b).map_err(e),
            );
            // A node with its own credential (only the hash).
            let mut st = state(format);
            if let Some(n) = st.nodes.get_mut("n1") {
                n.credential_sha256 = "cd".repeat(32);
            }
            c.file(
                "state-snapshot-node-credential",
                &st,
                |s, f| encode_snapshot(s, f).unwrap(),
                |b, _| decode_snapshot(b).map_err(e),
            );
            // The cluster's root CA (its key sealed) and a node's certificate key hash.
            let mut st = state(format);
            st.data_key_id = "3f2a9c0112345678".into();
            st.ca = Some(samples::cluster_ca());
            st.nodes.insert("n1".into(), samples::node_cert_key());
            c.file(
                "state-snapshot-ca",
                &st,
                |s, f| encode_snapshot(s, f).unwrap(),
                |b, _| decode_snapshot(b).map_err(e),
            );
            // A manager join token's secret beside the worker's.
            let mut st = state(format);
            if let Some(i) = st.identity.as_mut() {
                i.manager_secret = "ffeeddccbbaa99887766554433221100".into();
            }
            c.file(
                "state-snapshot-manager-token",
                &st,
                |s, f| encode_snapshot(s, f).unwrap(),
                |b, _| decode_snapshot(b).map_err(e),
            );
            // A rotation of the root going on: the previous root and the cross-signed new one.
            let mut st = state(format);
            st.data_key_id = "3f2a9c0112345678".into();
            st.ca = Some(samples::cluster_ca_rotating());
            c.file(
                "state-snapshot-ca-rotating",
                &st,
                |s, f| encode_snapshot(s, f).unwrap(),
                |b, _| decode_snapshot(b).map_err(e),
            );
        }
        for (name, entry) in entries() {
            c.file(
                &format!("raft-entry-{name}"),
                &entry,
                |v, f| wire::encode_entry(v, f).unwrap(),
                |b, f| wire::decode_entry(b, f).map_err(e),
            );
        }
        c.file(
            "vote",
            &Vote::new_committed(3, 1),
            wire::encode_vote,
            |b, f| wire::decode_vote(b, f).map_err(e),
        );
        c.file(
            "committed",
            &Some(log_id(11)),
            |v, f| wire::encode_log_id(v.as_ref(), f),
            |b, f| wire::decode_log_id("committed", b, f).map_err(e),
        );
        c.file("purged", &log_id(9), wire::encode_purged, |b, f| {
            wire::decode_purged(b, f).map_err(e)
        });
        c.file(
            "snapshot-meta",
            &snapshot_meta(),
            wire::encode_snapshot_meta,
            |b, f| wire::decode_snapshot_meta(b, f).map_err(e),
        );
        c.file(
            "identity",
            &(1u64, "10.78.1.11:7070".to_string()),
            |v, f| wire::encode_identity(v.0, &v.1, f),
            |b, f| wire::decode_identity(b, f).map_err(e),
        );
        // openraft's request has no equality: compared by its debug form.
        let append = AppendEntriesRequest::<TypeConfig> {
            vote: Vote::new_committed(3, 1),
            prev_log_id: Some(log_id(9)),
            leader_commit: Some(log_id(10)),
            entries: entries().into_iter().map(|(_, e)| e).collect(),
        };
        c.file(
            "append-entries-request",
            &format!("{append:?}"),
            |_, f| wire::encode_append(&append, f).unwrap(),
            |b, f| {
                wire::decode_append(b, f)
                    .map(|r| format!("{r:?}"))
                    .map_err(e)
            },
        );
        let ok: wire::AppendResult = Ok(AppendEntriesResponse::PartialSuccess(Some(log_id(11))));
        c.file(
            "append-entries-result",
            &ok,
            wire::encode_append_result,
            |b, f| wire::decode_append_result(b, f).map_err(e),
        );
        let stopped: wire::AppendResult = Err(RaftError::Fatal(Fatal::Stopped));
        c.file(
            "append-entries-result-stopped",
            &stopped,
            wire::encode_append_result,
            |b, f| wire::decode_append_result(b, f).map_err(e),
        );
        c.file(
            "vote-request",
            &VoteRequest {
                vote: Vote::new(4, 2),
                last_log_id: Some(log_id(12)),
            },
            wire::encode_vote_request,
            |b, f| wire::decode_vote_request(b, f).map_err(e),
        );
        let vote: wire::VoteResult = Ok(VoteResponse {
            vote: Vote::new(4, 2),
            vote_granted: true,
            last_log_id: Some(log_id(12)),
        });
        c.file("vote-result", &vote, wire::encode_vote_result, |b, f| {
            wire::decode_vote_result(b, f).map_err(e)
        });
        let image = encode_snapshot(&state(format), format).unwrap();
        c.file(
            "install-snapshot-request",
            &InstallSnapshotRequest::<TypeConfig> {
                vote: Vote::new_committed(3, 1),
                meta: snapshot_meta(),
                offset: 0,
                data: image[..64].to_vec(),
                done: false,
            },
            wire::encode_snapshot_request,
            |b, f| wire::decode_snapshot_request(b, f).map_err(e),
        );
        let mismatch: wire::SnapshotResult = Err(RaftError::APIError(
            InstallSnapshotError::SnapshotMismatch(SnapshotMismatch {
                expect: SnapshotSegmentId {
                    id: "3-12-0".into(),
                    offset: 0,
                },
                got: SnapshotSegmentId {
                    id: "3-12-0".into(),
                    offset: 64,
                },
            }),
        ));
        c.file(
            "install-snapshot-result",
            &mismatch,
            wire::encode_snapshot_result,
            |b, f| wire::decode_snapshot_result(b, f).map_err(e),
        );
        c.file(
            "propose",
            &vec![
                Command::Noop,
                Command::ScaleService {
                    name: "web".into(),
                    replicas: 2,
                },
            ],
            |v, f| wire::encode_proposal(v, f).unwrap(),
            |b, f| wire::decode_proposal(b, f).map_err(e),
        );
        // Outcomes carry errors without equality: compared by their debug form.
        let outcomes: Vec<Outcome> = vec![
            Ok(Response::Tasks(1)),
            Err(ConsensusError::NotLeader {
                leader: Some((2, "10.78.1.12:7070".into())),
            }),
            Err(ConsensusError::NoQuorum("no quorum".into())),
        ];
        c.file(
            "outcomes",
            &format!("{outcomes:?}"),
            |_, f| wire::encode_outcomes(&outcomes, f),
            |b, f| {
                wire::decode_outcomes(b, f)
                    .map(|o| format!("{o:?}"))
                    .map_err(e)
            },
        );
        missing.extend(c.missing);
    }
    assert_none_missing(&missing);
}

/// 0.1.0's segment file (three records, then the zeros of its preallocated rest) reads back as
/// the three entries.
#[test]
fn a_format_0_log_segment_reads_back() {
    let golden = dir(0).join("raft-log-segment.log");
    let tmp = tempfile::tempdir().unwrap();
    std::fs::copy(&golden, tmp.path().join("00000000000000000010.log")).unwrap();
    let (_, live) = crate::raft::open_log_for_test(tmp.path(), None).unwrap();
    let got: Vec<Entry<TypeConfig>> = live
        .iter()
        .map(|l| wire::decode_entry(&l.record.bytes, l.format).unwrap())
        .collect();
    let want: Vec<Entry<TypeConfig>> = entries().into_iter().map(|(_, e)| e).collect();
    assert_eq!(got, want);
}
