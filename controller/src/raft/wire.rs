//! Raft's records and messages in Hoist's formats (see `hoist_proto::format`): log entries, vote,
//! log ids, snapshot metadata and identity on disk; the three Raft RPCs, forwarded writes and
//! their answers between members.
//!
//! Format 0 is what 0.1.0 wrote: postcard of openraft 0.9's own types with the format-0 payload
//! ([`V0`]). Format 1 is Hoist's protobuf messages (`hoist_proto::format::v1::consensus`), so that
//! what is stored and sent no longer depends on the Raft library's serde shapes.

use super::node::ConsensusError;
use super::TypeConfig;
use hoist_proto::format::mirror::{FromV0, FromV1, ToV0, ToV1};
use hoist_proto::format::v1::consensus as c1;
use hoist_proto::format::{v0, v1, DecodeError, Unrepresentable};
use hoist_proto::raft::{Command, Response};
use openraft::error::{Fatal, Infallible, InstallSnapshotError, RaftError, SnapshotMismatch};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{
    AnyError, BasicNode, CommittedLeaderId, Entry, EntryPayload, LogId, Membership, SnapshotMeta,
    SnapshotSegmentId, StorageIOError, StoredMembership, Vote,
};
use prost::Message;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

openraft::declare_raft_types!(
    /// Format 0's Raft types: 0.1.0's payload in openraft 0.9's envelopes.
    pub V0:
        D = v0::Request,
        R = v0::Response,
        NodeId = u64,
        Node = BasicNode,
        Entry = openraft::Entry<V0>,
        SnapshotData = std::io::Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

type Result<T, E = DecodeError> = std::result::Result<T, E>;

fn postcard_decode<T: DeserializeOwned>(what: &'static str, bytes: &[u8]) -> Result<T> {
    postcard::from_bytes(bytes).map_err(|e| DecodeError::new(what, 0, e))
}

fn protobuf_decode<T: Message + Default>(what: &'static str, bytes: &[u8]) -> Result<T> {
    T::decode(bytes).map_err(|e| DecodeError::new(what, 1, e))
}

fn postcard_encode<T: Serialize>(v: &T) -> Vec<u8> {
    postcard::to_stdvec(v).expect("plain data encodes")
}

fn missing(what: &'static str, field: &str) -> DecodeError {
    DecodeError::new(what, 1, format!("missing {field}"))
}

// Ids, votes, memberships.

fn log_id_v1(l: &LogId<u64>) -> c1::LogId {
    c1::LogId {
        term: l.leader_id.term,
        node_id: l.leader_id.node_id,
        index: l.index,
    }
}

fn log_id(l: c1::LogId) -> LogId<u64> {
    LogId::new(CommittedLeaderId::new(l.term, l.node_id), l.index)
}

fn vote_v1(v: &Vote<u64>) -> c1::Vote {
    c1::Vote {
        term: v.leader_id.term,
        node_id: v.leader_id.node_id,
        committed: v.committed,
    }
}

fn vote(v: c1::Vote) -> Vote<u64> {
    if v.committed {
        Vote::new_committed(v.term, v.node_id)
    } else {
        Vote::new(v.term, v.node_id)
    }
}

fn membership_v1(m: &Membership<u64, BasicNode>) -> c1::Membership {
    c1::Membership {
        configs: m
            .get_joint_config()
            .iter()
            .map(|set| c1::VoterSet {
                ids: set.iter().copied().collect(),
            })
            .collect(),
        nodes: m
            .nodes()
            .map(|(id, n)| {
                (
                    *id,
                    c1::MemberNode {
                        addr: n.addr.clone(),
                    },
                )
            })
            .collect(),
    }
}

fn membership(m: c1::Membership) -> Membership<u64, BasicNode> {
    let configs: Vec<BTreeSet<u64>> = m
        .configs
        .into_iter()
        .map(|s| s.ids.into_iter().collect())
        .collect();
    let nodes: BTreeMap<u64, BasicNode> = m
        .nodes
        .into_iter()
        .map(|(id, n)| (id, BasicNode::new(n.addr)))
        .collect();
    Membership::new(configs, nodes)
}

fn stored_membership_v1(m: &StoredMembership<u64, BasicNode>) -> c1::StoredMembership {
    c1::StoredMembership {
        log_id: m.log_id().as_ref().map(log_id_v1),
        membership: Some(membership_v1(m.membership())),
    }
}

fn stored_membership(m: c1::StoredMembership) -> StoredMembership<u64, BasicNode> {
    StoredMembership::new(
        m.log_id.map(log_id),
        membership(m.membership.unwrap_or_default()),
    )
}

fn snapshot_meta_v1(m: &SnapshotMeta<u64, BasicNode>) -> c1::SnapshotMeta {
    c1::SnapshotMeta {
        last_log_id: m.last_log_id.as_ref().map(log_id_v1),
        last_membership: Some(stored_membership_v1(&m.last_membership)),
        snapshot_id: m.snapshot_id.clone(),
    }
}

fn snapshot_meta(m: c1::SnapshotMeta) -> SnapshotMeta<u64, BasicNode> {
    SnapshotMeta {
        last_log_id: m.last_log_id.map(log_id),
        last_membership: stored_membership(m.last_membership.unwrap_or_default()),
        snapshot_id: m.snapshot_id,
    }
}

// Log entries.

fn entry_v1(e: &Entry<TypeConfig>) -> c1::Entry {
    use c1::entry::Payload;
    c1::Entry {
        log_id: Some(log_id_v1(&e.log_id)),
        payload: Some(match &e.payload {
            EntryPayload::Blank => Payload::Blank(v1::Empty {}),
            EntryPayload::Normal(req) => Payload::Normal(req.to_v1()),
            EntryPayload::Membership(m) => Payload::Membership(membership_v1(m)),
        }),
    }
}

fn entry(e: c1::Entry) -> Result<Entry<TypeConfig>> {
    use c1::entry::Payload;
    let what = "raft-entry";
    Ok(Entry {
        log_id: log_id(e.log_id.ok_or_else(|| missing(what, "log_id"))?),
        payload: match e.payload.ok_or_else(|| missing(what, "payload"))? {
            Payload::Blank(_) => EntryPayload::Blank,
            Payload::Normal(req) => EntryPayload::Normal(
                FromV1::from_v1(req).map_err(|e| DecodeError::new(what, 1, e))?,
            ),
            Payload::Membership(m) => EntryPayload::Membership(membership(m)),
        },
    })
}

fn entry_to_v0(e: &Entry<TypeConfig>) -> Result<Entry<V0>, Unrepresentable> {
    Ok(Entry {
        log_id: e.log_id,
        payload: match &e.payload {
            EntryPayload::Blank => EntryPayload::Blank,
            EntryPayload::Normal(req) => EntryPayload::Normal(req.to_v0()?),
            EntryPayload::Membership(m) => EntryPayload::Membership(m.clone()),
        },
    })
}

fn entry_from_v0(e: Entry<V0>) -> Entry<TypeConfig> {
    Entry {
        log_id: e.log_id,
        payload: match e.payload {
            EntryPayload::Blank => EntryPayload::Blank,
            EntryPayload::Normal(req) => EntryPayload::Normal(FromV0::from_v0(req)),
            EntryPayload::Membership(m) => EntryPayload::Membership(m),
        },
    }
}

/// A log entry in `format`, as stored in a segment file of that format.
pub fn encode_entry(e: &Entry<TypeConfig>, format: u32) -> Result<Vec<u8>, Unrepresentable> {
    Ok(match format {
        0 => postcard_encode(&entry_to_v0(e)?),
        _ => entry_v1(e).encode_to_vec(),
    })
}

pub fn decode_entry(bytes: &[u8], format: u32) -> Result<Entry<TypeConfig>> {
    match format {
        0 => Ok(entry_from_v0(postcard_decode("raft-entry", bytes)?)),
        _ => entry(protobuf_decode("raft-entry", bytes)?),
    }
}

// Values in redb, in the data dir's format.

pub fn encode_vote(v: &Vote<u64>, format: u32) -> Vec<u8> {
    match format {
        0 => postcard_encode(v),
        _ => vote_v1(v).encode_to_vec(),
    }
}

pub fn decode_vote(bytes: &[u8], format: u32) -> Result<Vote<u64>> {
    match format {
        0 => postcard_decode("vote", bytes),
        _ => Ok(vote(protobuf_decode("vote", bytes)?)),
    }
}

/// A log id that may be absent (the committed id): format 1 writes an empty value for none.
pub fn encode_log_id(l: Option<&LogId<u64>>, format: u32) -> Vec<u8> {
    match format {
        0 => postcard_encode(&l),
        _ => l.map(|l| log_id_v1(l).encode_to_vec()).unwrap_or_default(),
    }
}

pub fn decode_log_id(what: &'static str, bytes: &[u8], format: u32) -> Result<Option<LogId<u64>>> {
    match format {
        0 => postcard_decode(what, bytes),
        _ if bytes.is_empty() => Ok(None),
        _ => Ok(Some(log_id(protobuf_decode(what, bytes)?))),
    }
}

/// The purge point, which 0.1.0 stored as a plain log id (not an option).
pub fn decode_purged(bytes: &[u8], format: u32) -> Result<LogId<u64>> {
    match format {
        0 => postcard_decode("purged", bytes),
        _ => Ok(log_id(protobuf_decode("purged", bytes)?)),
    }
}

pub fn encode_purged(l: &LogId<u64>, format: u32) -> Vec<u8> {
    match format {
        0 => postcard_encode(l),
        _ => log_id_v1(l).encode_to_vec(),
    }
}

pub fn encode_snapshot_meta(m: &SnapshotMeta<u64, BasicNode>, format: u32) -> Vec<u8> {
    match format {
        0 => postcard_encode(m),
        _ => snapshot_meta_v1(m).encode_to_vec(),
    }
}

pub fn decode_snapshot_meta(bytes: &[u8], format: u32) -> Result<SnapshotMeta<u64, BasicNode>> {
    match format {
        0 => postcard_decode("snapshot-meta", bytes),
        _ => Ok(snapshot_meta(protobuf_decode("snapshot-meta", bytes)?)),
    }
}

pub fn encode_identity(id: u64, address: &str, format: u32) -> Vec<u8> {
    match format {
        0 => postcard_encode(&(id, address)),
        _ => c1::MemberIdentity {
            id,
            address: address.to_string(),
        }
        .encode_to_vec(),
    }
}

pub fn decode_identity(bytes: &[u8], format: u32) -> Result<(u64, String)> {
    match format {
        0 => postcard_decode("identity", bytes),
        _ => {
            let m: c1::MemberIdentity = protobuf_decode("identity", bytes)?;
            Ok((m.id, m.address))
        }
    }
}

// RPC errors.

fn raft_error_v1<E>(e: &RaftError<u64, E>, api: impl Fn(&E) -> c1::RaftError) -> c1::RaftError
where
    E: std::error::Error,
{
    match e {
        RaftError::Fatal(Fatal::StorageError(s)) => c1::RaftError {
            kind: 0,
            message: s.to_string(),
            ..Default::default()
        },
        RaftError::Fatal(Fatal::Panicked) => c1::RaftError {
            kind: 1,
            ..Default::default()
        },
        RaftError::Fatal(Fatal::Stopped) => c1::RaftError {
            kind: 2,
            ..Default::default()
        },
        RaftError::APIError(e) => api(e),
    }
}

fn fatal(e: &c1::RaftError) -> Option<Fatal<u64>> {
    match e.kind {
        0 => Some(Fatal::StorageError(
            StorageIOError::read_logs(AnyError::error(format!("on the peer: {}", e.message)))
                .into(),
        )),
        1 => Some(Fatal::Panicked),
        2 => Some(Fatal::Stopped),
        _ => None,
    }
}

fn infallible_error(e: c1::RaftError, what: &'static str) -> Result<RaftError<u64>> {
    fatal(&e)
        .map(RaftError::Fatal)
        .ok_or_else(|| DecodeError::new(what, 1, format!("error kind {}", e.kind)))
}

fn no_api_error(e: &Infallible) -> c1::RaftError {
    match *e {}
}

// AppendEntries.

pub fn encode_append(
    req: &AppendEntriesRequest<TypeConfig>,
    format: u32,
) -> Result<Vec<u8>, Unrepresentable> {
    encode_append_reusing(req, format, |_| None)
}

/// [`encode_append`], taking each entry's protobuf encoding from `stored` when it has it (the
/// log store's copy of what it wrote: the same bytes, since entries are encoded alike in every
/// format from 1 on), so that the leader does not encode an entry again for every follower.
/// `entries` is the message's last field: the result is byte for byte `encode_append`'s.
pub fn encode_append_reusing(
    req: &AppendEntriesRequest<TypeConfig>,
    format: u32,
    stored: impl Fn(&LogId<u64>) -> Option<std::sync::Arc<[u8]>>,
) -> Result<Vec<u8>, Unrepresentable> {
    use prost::encoding::{encode_key, encode_varint, WireType};
    Ok(match format {
        0 => postcard_encode(&AppendEntriesRequest::<V0> {
            vote: req.vote,
            prev_log_id: req.prev_log_id,
            leader_commit: req.leader_commit,
            entries: req
                .entries
                .iter()
                .map(entry_to_v0)
                .collect::<Result<_, _>>()?,
        }),
        _ => {
            let mut out = c1::AppendEntriesRequest {
                vote: Some(vote_v1(&req.vote)),
                prev_log_id: req.prev_log_id.as_ref().map(log_id_v1),
                leader_commit: req.leader_commit.as_ref().map(log_id_v1),
                entries: Vec::new(),
            }
            .encode_to_vec();
            for e in &req.entries {
                let encoded = stored(&e.log_id);
                let fresh;
                let bytes: &[u8] = match &encoded {
                    Some(b) => b,
                    None => {
                        fresh = entry_v1(e).encode_to_vec();
                        &fresh
                    }
                };
                encode_key(APPEND_ENTRIES_TAG, WireType::LengthDelimited, &mut out);
                encode_varint(bytes.len() as u64, &mut out);
                out.extend_from_slice(bytes);
            }
            out
        }
    })
}

/// The field number of `entries` in `AppendEntriesRequest` (format 1), its last.
const APPEND_ENTRIES_TAG: u32 = 4;

pub fn decode_append(bytes: &[u8], format: u32) -> Result<AppendEntriesRequest<TypeConfig>> {
    let what = "append-entries-request";
    match format {
        0 => {
            let r: AppendEntriesRequest<V0> = postcard_decode(what, bytes)?;
            Ok(AppendEntriesRequest {
                vote: r.vote,
                prev_log_id: r.prev_log_id,
                leader_commit: r.leader_commit,
                entries: r.entries.into_iter().map(entry_from_v0).collect(),
            })
        }
        _ => {
            let r: c1::AppendEntriesRequest = protobuf_decode(what, bytes)?;
            Ok(AppendEntriesRequest {
                vote: vote(r.vote.ok_or_else(|| missing(what, "vote"))?),
                prev_log_id: r.prev_log_id.map(log_id),
                leader_commit: r.leader_commit.map(log_id),
                entries: r.entries.into_iter().map(entry).collect::<Result<_>>()?,
            })
        }
    }
}

pub type AppendResult = std::result::Result<AppendEntriesResponse<u64>, RaftError<u64>>;

pub fn encode_append_result(r: &AppendResult, format: u32) -> Vec<u8> {
    use c1::append_entries_response::Kind;
    if format == 0 {
        return postcard_encode(r);
    }
    let out = match r {
        Ok(resp) => c1::AppendEntriesResult {
            ok: Some(c1::AppendEntriesResponse {
                kind: Some(match resp {
                    AppendEntriesResponse::Success => Kind::Success(v1::Empty {}),
                    AppendEntriesResponse::PartialSuccess(m) => {
                        Kind::PartialSuccess(c1::PartialSuccess {
                            matching: m.as_ref().map(log_id_v1),
                        })
                    }
                    AppendEntriesResponse::Conflict => Kind::Conflict(v1::Empty {}),
                    AppendEntriesResponse::HigherVote(v) => Kind::HigherVote(vote_v1(v)),
                }),
            }),
            err: None,
        },
        Err(e) => c1::AppendEntriesResult {
            ok: None,
            err: Some(raft_error_v1(e, no_api_error)),
        },
    };
    out.encode_to_vec()
}

pub fn decode_append_result(bytes: &[u8], format: u32) -> Result<AppendResult> {
    use c1::append_entries_response::Kind;
    let what = "append-entries-result";
    if format == 0 {
        return postcard_decode(what, bytes);
    }
    let r: c1::AppendEntriesResult = protobuf_decode(what, bytes)?;
    if let Some(e) = r.err {
        return Ok(Err(infallible_error(e, what)?));
    }
    let kind =
        r.ok.and_then(|o| o.kind)
            .ok_or_else(|| missing(what, "response"))?;
    Ok(Ok(match kind {
        Kind::Success(_) => AppendEntriesResponse::Success,
        Kind::PartialSuccess(p) => AppendEntriesResponse::PartialSuccess(p.matching.map(log_id)),
        Kind::Conflict(_) => AppendEntriesResponse::Conflict,
        Kind::HigherVote(v) => AppendEntriesResponse::HigherVote(vote(v)),
    }))
}

// Vote.

pub fn encode_vote_request(req: &VoteRequest<u64>, format: u32) -> Vec<u8> {
    match format {
        0 => postcard_encode(req),
        _ => c1::VoteRequest {
            vote: Some(vote_v1(&req.vote)),
            last_log_id: req.last_log_id.as_ref().map(log_id_v1),
        }
        .encode_to_vec(),
    }
}

pub fn decode_vote_request(bytes: &[u8], format: u32) -> Result<VoteRequest<u64>> {
    let what = "vote-request";
    match format {
        0 => postcard_decode(what, bytes),
        _ => {
            let r: c1::VoteRequest = protobuf_decode(what, bytes)?;
            Ok(VoteRequest {
                vote: vote(r.vote.ok_or_else(|| missing(what, "vote"))?),
                last_log_id: r.last_log_id.map(log_id),
            })
        }
    }
}

pub type VoteResult = std::result::Result<VoteResponse<u64>, RaftError<u64>>;

pub fn encode_vote_result(r: &VoteResult, format: u32) -> Vec<u8> {
    if format == 0 {
        return postcard_encode(r);
    }
    match r {
        Ok(v) => c1::VoteResult {
            ok: Some(c1::VoteResponse {
                vote: Some(vote_v1(&v.vote)),
                vote_granted: v.vote_granted,
                last_log_id: v.last_log_id.as_ref().map(log_id_v1),
            }),
            err: None,
        },
        Err(e) => c1::VoteResult {
            ok: None,
            err: Some(raft_error_v1(e, no_api_error)),
        },
    }
    .encode_to_vec()
}

pub fn decode_vote_result(bytes: &[u8], format: u32) -> Result<VoteResult> {
    let what = "vote-result";
    if format == 0 {
        return postcard_decode(what, bytes);
    }
    let r: c1::VoteResult = protobuf_decode(what, bytes)?;
    if let Some(e) = r.err {
        return Ok(Err(infallible_error(e, what)?));
    }
    let v = r.ok.ok_or_else(|| missing(what, "response"))?;
    Ok(Ok(VoteResponse {
        vote: vote(v.vote.ok_or_else(|| missing(what, "vote"))?),
        vote_granted: v.vote_granted,
        last_log_id: v.last_log_id.map(log_id),
    }))
}

// InstallSnapshot.

pub fn encode_snapshot_request(req: &InstallSnapshotRequest<TypeConfig>, format: u32) -> Vec<u8> {
    match format {
        0 => postcard_encode(req),
        _ => c1::InstallSnapshotRequest {
            vote: Some(vote_v1(&req.vote)),
            meta: Some(snapshot_meta_v1(&req.meta)),
            offset: req.offset,
            data: req.data.clone(),
            done: req.done,
        }
        .encode_to_vec(),
    }
}

pub fn decode_snapshot_request(
    bytes: &[u8],
    format: u32,
) -> Result<InstallSnapshotRequest<TypeConfig>> {
    let what = "install-snapshot-request";
    match format {
        0 => postcard_decode(what, bytes),
        _ => {
            let r: c1::InstallSnapshotRequest = protobuf_decode(what, bytes)?;
            Ok(InstallSnapshotRequest {
                vote: vote(r.vote.ok_or_else(|| missing(what, "vote"))?),
                meta: snapshot_meta(r.meta.ok_or_else(|| missing(what, "meta"))?),
                offset: r.offset,
                data: r.data,
                done: r.done,
            })
        }
    }
}

pub type SnapshotResult =
    std::result::Result<InstallSnapshotResponse<u64>, RaftError<u64, InstallSnapshotError>>;

pub fn encode_snapshot_result(r: &SnapshotResult, format: u32) -> Vec<u8> {
    if format == 0 {
        return postcard_encode(r);
    }
    match r {
        Ok(v) => c1::InstallSnapshotResult {
            ok: Some(c1::InstallSnapshotResponse {
                vote: Some(vote_v1(&v.vote)),
            }),
            err: None,
        },
        Err(e) => c1::InstallSnapshotResult {
            ok: None,
            err: Some(raft_error_v1(
                e,
                |InstallSnapshotError::SnapshotMismatch(m)| c1::RaftError {
                    kind: 3,
                    message: m.to_string(),
                    expect_id: m.expect.id.clone(),
                    expect_offset: m.expect.offset,
                    got_id: m.got.id.clone(),
                    got_offset: m.got.offset,
                },
            )),
        },
    }
    .encode_to_vec()
}

pub fn decode_snapshot_result(bytes: &[u8], format: u32) -> Result<SnapshotResult> {
    let what = "install-snapshot-result";
    if format == 0 {
        return postcard_decode(what, bytes);
    }
    let r: c1::InstallSnapshotResult = protobuf_decode(what, bytes)?;
    if let Some(e) = r.err {
        if e.kind == 3 {
            return Ok(Err(RaftError::APIError(
                InstallSnapshotError::SnapshotMismatch(SnapshotMismatch {
                    expect: SnapshotSegmentId {
                        id: e.expect_id,
                        offset: e.expect_offset,
                    },
                    got: SnapshotSegmentId {
                        id: e.got_id,
                        offset: e.got_offset,
                    },
                }),
            )));
        }
        return Ok(Err(RaftError::Fatal(fatal(&e).ok_or_else(|| {
            DecodeError::new(what, 1, format!("error kind {}", e.kind))
        })?)));
    }
    let v = r.ok.ok_or_else(|| missing(what, "response"))?;
    Ok(Ok(InstallSnapshotResponse {
        vote: vote(v.vote.ok_or_else(|| missing(what, "vote"))?),
    }))
}

// Forwarded writes.

/// What the leader answers for one forwarded command.
pub type Outcome = std::result::Result<Response, ConsensusError>;

pub fn encode_proposal(commands: &[Command], format: u32) -> Result<Vec<u8>, Unrepresentable> {
    Ok(match format {
        0 => postcard_encode(&commands.to_vec().to_v0()?),
        _ => v1::Propose {
            commands: commands.to_vec().to_v1(),
        }
        .encode_to_vec(),
    })
}

pub fn decode_proposal(bytes: &[u8], format: u32) -> Result<Vec<Command>> {
    let what = "propose";
    match format {
        0 => Ok(FromV0::from_v0(postcard_decode::<Vec<v0::Command>>(
            what, bytes,
        )?)),
        _ => {
            let p: v1::Propose = protobuf_decode(what, bytes)?;
            FromV1::from_v1(p.commands).map_err(|e| DecodeError::new(what, 1, e))
        }
    }
}

fn consensus_error_to_v0(e: &ConsensusError) -> v0::ConsensusError {
    match e {
        ConsensusError::NotLeader { leader } => v0::ConsensusError::NotLeader {
            leader: leader.clone(),
        },
        ConsensusError::NoQuorum(m) => v0::ConsensusError::NoQuorum(m.clone()),
        ConsensusError::Unknown(m) => v0::ConsensusError::Unknown(m.clone()),
        ConsensusError::Rejected(m) => v0::ConsensusError::Rejected(m.clone()),
        ConsensusError::Fatal(m) => v0::ConsensusError::Fatal(m.clone()),
        // 0.1.0 had no such refusal; it reads it as a rejection with the same words.
        e @ ConsensusError::NeedsUpgrade(_) => v0::ConsensusError::Rejected(e.to_string()),
    }
}

fn consensus_error_from_v0(e: v0::ConsensusError) -> ConsensusError {
    match e {
        v0::ConsensusError::NotLeader { leader } => ConsensusError::NotLeader { leader },
        v0::ConsensusError::NoQuorum(m) => ConsensusError::NoQuorum(m),
        v0::ConsensusError::Unknown(m) => ConsensusError::Unknown(m),
        v0::ConsensusError::Rejected(m) => ConsensusError::Rejected(m),
        v0::ConsensusError::Fatal(m) => ConsensusError::Fatal(m),
    }
}

fn consensus_error_v1(e: &ConsensusError) -> v1::ConsensusError {
    let (kind, message) = match e {
        ConsensusError::NotLeader { leader } => {
            return v1::ConsensusError {
                kind: 0,
                message: String::new(),
                leader_id: leader.as_ref().map(|l| l.0),
                leader_address: leader.as_ref().map(|l| l.1.clone()),
            }
        }
        ConsensusError::NoQuorum(m) => (1, m),
        ConsensusError::Unknown(m) => (2, m),
        ConsensusError::Rejected(m) => (3, m),
        ConsensusError::Fatal(m) => (4, m),
        ConsensusError::NeedsUpgrade(m) => (5, m),
    };
    v1::ConsensusError {
        kind,
        message: message.clone(),
        leader_id: None,
        leader_address: None,
    }
}

fn consensus_error(e: v1::ConsensusError) -> std::result::Result<ConsensusError, String> {
    Ok(match e.kind {
        0 => ConsensusError::NotLeader {
            leader: e.leader_id.zip(e.leader_address),
        },
        1 => ConsensusError::NoQuorum(e.message),
        2 => ConsensusError::Unknown(e.message),
        3 => ConsensusError::Rejected(e.message),
        4 => ConsensusError::Fatal(e.message),
        5 => ConsensusError::NeedsUpgrade(e.message),
        k => return Err(format!("error kind {k}")),
    })
}

pub fn encode_outcomes(outcomes: &[Outcome], format: u32) -> Vec<u8> {
    use v1::outcome::Kind;
    if format == 0 {
        // An answer format 0 cannot carry (a service with a VIP, say) is to a command that was
        // applied: the sender learns that the outcome is unknown, never that nothing happened.
        // Members pick the leader's format from what it told them, so this is rare.
        let old: Vec<v0::Outcome> = outcomes
            .iter()
            .map(|o| match o {
                Ok(r) => r.to_v0().map_err(|e| {
                    v0::ConsensusError::Unknown(format!(
                        "applied, but the answer cannot be sent in format 0 ({e}); read it back"
                    ))
                }),
                Err(e) => Err(consensus_error_to_v0(e)),
            })
            .collect();
        return postcard_encode(&old);
    }
    v1::Outcomes {
        outcomes: outcomes
            .iter()
            .map(|o| v1::Outcome {
                kind: Some(match o {
                    Ok(r) => Kind::Ok(r.to_v1()),
                    Err(e) => Kind::Err(consensus_error_v1(e)),
                }),
            })
            .collect(),
    }
    .encode_to_vec()
}

pub fn decode_outcomes(bytes: &[u8], format: u32) -> Result<Vec<Outcome>> {
    use v1::outcome::Kind;
    let what = "outcomes";
    if format == 0 {
        let old: Vec<v0::Outcome> = postcard_decode(what, bytes)?;
        return Ok(old
            .into_iter()
            .map(|o| match o {
                Ok(r) => Ok(FromV0::from_v0(r)),
                Err(e) => Err(consensus_error_from_v0(e)),
            })
            .collect());
    }
    let o: v1::Outcomes = protobuf_decode(what, bytes)?;
    o.outcomes
        .into_iter()
        .map(|o| {
            Ok(match o.kind.ok_or_else(|| missing(what, "outcome"))? {
                Kind::Ok(r) => Ok(FromV1::from_v1(r).map_err(|e| DecodeError::new(what, 1, e))?),
                Kind::Err(e) => Err(consensus_error(e).map_err(|e| DecodeError::new(what, 1, e))?),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hoist_proto::raft::Request;

    fn entries() -> Vec<Entry<TypeConfig>> {
        vec![
            Entry {
                log_id: LogId::new(CommittedLeaderId::new(3, 1), 7),
                payload: EntryPayload::Blank,
            },
            Entry {
                log_id: LogId::new(CommittedLeaderId::new(3, 1), 8),
                payload: EntryPayload::Normal(Request {
                    time_ms: 5,
                    command: Command::ScaleService {
                        name: "web".into(),
                        replicas: 3,
                    },
                }),
            },
            Entry {
                log_id: LogId::new(CommittedLeaderId::new(3, 1), 9),
                payload: EntryPayload::Membership(Membership::new(
                    vec![BTreeSet::from([1, 2])],
                    BTreeMap::from([
                        (1, BasicNode::new("a:1")),
                        (2, BasicNode::new("b:1")),
                        (3, BasicNode::new("c:1")),
                    ]),
                )),
            },
        ]
    }

    /// The leader sends entries as its log stored them: the same bytes as encoding them again,
    /// for every format from 1 on (and whichever entries the store no longer holds).
    #[test]
    fn an_append_of_stored_entries_is_the_append_encoded_anew() {
        let req = AppendEntriesRequest::<TypeConfig> {
            vote: Vote::new_committed(3, 1),
            prev_log_id: Some(LogId::new(CommittedLeaderId::new(3, 1), 6)),
            leader_commit: Some(LogId::new(CommittedLeaderId::new(3, 1), 8)),
            entries: entries(),
        };
        for format in 1..=hoist_proto::format::CURRENT {
            let stored: BTreeMap<u64, std::sync::Arc<[u8]>> = entries()
                .iter()
                .filter(|e| e.log_id.index != 8) // purged from the store meanwhile
                .map(|e| (e.log_id.index, encode_entry(e, format).unwrap().into()))
                .collect();
            let reused =
                encode_append_reusing(&req, format, |id| stored.get(&id.index).cloned()).unwrap();
            let whole = c1::AppendEntriesRequest {
                vote: Some(vote_v1(&req.vote)),
                prev_log_id: req.prev_log_id.as_ref().map(log_id_v1),
                leader_commit: req.leader_commit.as_ref().map(log_id_v1),
                entries: req.entries.iter().map(entry_v1).collect(),
            }
            .encode_to_vec();
            assert_eq!(reused, whole, "format {format}");
            assert_eq!(
                encode_append(&req, format).unwrap(),
                whole,
                "format {format}"
            );
            let back = decode_append(&reused, format).unwrap();
            assert_eq!(back.entries, entries(), "format {format}");
        }
    }

    #[test]
    fn entries_round_trip_in_both_formats() {
        for format in [0, 1] {
            for e in entries() {
                let b = encode_entry(&e, format).unwrap();
                assert_eq!(decode_entry(&b, format).unwrap(), e, "format {format}");
            }
        }
    }

    #[test]
    fn a_format_1_command_cannot_go_to_a_format_0_peer() {
        let e = Entry {
            log_id: LogId::new(CommittedLeaderId::new(3, 1), 8),
            payload: EntryPayload::Normal(Request {
                time_ms: 5,
                command: Command::SetClusterFormat { format: 1 },
            }),
        };
        let req = AppendEntriesRequest {
            vote: Vote::new_committed(3, 1),
            prev_log_id: None,
            leader_commit: None,
            entries: vec![e],
        };
        assert_eq!(encode_append(&req, 0).unwrap_err().needs, 1);
        let b = encode_append(&req, 1).unwrap();
        assert_eq!(decode_append(&b, 1).unwrap().entries, req.entries);
    }

    /// 0.1.0's answer bytes to a forwarded write (its own golden test, kept).
    #[test]
    fn outcomes_in_format_0_are_byte_for_byte_0_1_0s() {
        let outcomes: Vec<Outcome> = vec![
            Ok(Response::Ok),
            Err(ConsensusError::NotLeader {
                leader: Some((2, "h:1".into())),
            }),
            Err(ConsensusError::NotLeader { leader: None }),
            Err(ConsensusError::NoQuorum("q".into())),
            Err(ConsensusError::Unknown("u".into())),
            Err(ConsensusError::Rejected("r".into())),
            Err(ConsensusError::Fatal("f".into())),
        ];
        let bytes = encode_outcomes(&outcomes, 0);
        assert_eq!(
            bytes,
            [
                7, 0, 5, 1, 0, 1, 2, 3, 104, 58, 49, 1, 0, 0, 1, 1, 1, 113, 1, 2, 1, 117, 1, 3, 1,
                114, 1, 4, 1, 102
            ]
        );
        let back = decode_outcomes(&bytes, 0).unwrap();
        assert_eq!(format!("{back:?}"), format!("{outcomes:?}"));
    }

    /// An answer format 0 cannot carry is to a write that was applied: the sender must read
    /// "outcome unknown", never a refusal (which says nothing happened).
    #[test]
    fn an_answer_format_0_cannot_carry_is_an_unknown_outcome() {
        use hoist_proto::cluster::{AutoscaleDecision, AutoscaleOutcome, AutoscaleSource};
        let decision = AutoscaleDecision {
            service: "web".into(),
            source: AutoscaleSource::Hook,
            from: 1,
            to: 2,
            reason: "r".into(),
            detail: String::new(),
            dedup: None,
            index: 9,
            time_ms: 5,
        };
        let outcomes: Vec<Outcome> = vec![
            Ok(Response::Autoscale(Box::new(AutoscaleOutcome {
                decision,
                applied: true,
            }))),
            Ok(Response::Ok),
        ];
        let back = decode_outcomes(&encode_outcomes(&outcomes, 0), 0).unwrap();
        assert!(
            matches!(&back[0], Err(ConsensusError::Unknown(m)) if m.starts_with("applied")),
            "{back:?}"
        );
        assert!(matches!(back[1], Ok(Response::Ok)));
    }

    #[test]
    fn rpc_answers_round_trip() {
        for format in [0, 1] {
            for r in [
                Ok(AppendEntriesResponse::Success),
                Ok(AppendEntriesResponse::PartialSuccess(Some(LogId::new(
                    CommittedLeaderId::new(2, 1),
                    4,
                )))),
                Ok(AppendEntriesResponse::Conflict),
                Ok(AppendEntriesResponse::HigherVote(Vote::new(9, 2))),
                Err(RaftError::Fatal(Fatal::Stopped)),
            ] {
                let b = encode_append_result(&r, format);
                assert_eq!(decode_append_result(&b, format).unwrap(), r);
            }
            let mismatch: SnapshotResult = Err(RaftError::APIError(
                InstallSnapshotError::SnapshotMismatch(SnapshotMismatch {
                    expect: SnapshotSegmentId {
                        id: "a".into(),
                        offset: 0,
                    },
                    got: SnapshotSegmentId {
                        id: "a".into(),
                        offset: 9,
                    },
                }),
            ));
            let b = encode_snapshot_result(&mismatch, format);
            assert_eq!(decode_snapshot_result(&b, format).unwrap(), mismatch);
            let outcomes: Vec<Outcome> = vec![
                Ok(Response::Tasks(2)),
                Err(ConsensusError::NotLeader {
                    leader: Some((2, "b:1".into())),
                }),
                Err(ConsensusError::NoQuorum("x".into())),
            ];
            let b = encode_outcomes(&outcomes, format);
            let back = decode_outcomes(&b, format).unwrap();
            assert_eq!(format!("{back:?}"), format!("{outcomes:?}"));
        }
    }
}
