//! Format 1's Raft protocol and storage records: log ids, votes, memberships, log entries, the
//! three RPCs and their answers, snapshot metadata. Hoist's own messages, so that the Raft
//! library can change without changing what is on disk or on the wire; `controller/src/raft`
//! converts them to and from the library's types.

use super::raft::{Empty, Request};
use std::collections::BTreeMap;

#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct LogId {
    #[prost(uint64, tag = "1")]
    pub term: u64,
    #[prost(uint64, tag = "2")]
    pub node_id: u64,
    #[prost(uint64, tag = "3")]
    pub index: u64,
}

#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct Vote {
    #[prost(uint64, tag = "1")]
    pub term: u64,
    #[prost(uint64, tag = "2")]
    pub node_id: u64,
    #[prost(bool, tag = "3")]
    pub committed: bool,
}

/// One voter set of a (possibly joint) configuration.
#[derive(Clone, PartialEq, prost::Message)]
pub struct VoterSet {
    #[prost(uint64, repeated, tag = "1")]
    pub ids: Vec<u64>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct MemberNode {
    #[prost(string, tag = "1")]
    pub addr: String,
}

/// Voter sets (two during a joint change) and every member's address; a member in `nodes` but in
/// no voter set is a learner.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Membership {
    #[prost(message, repeated, tag = "1")]
    pub configs: Vec<VoterSet>,
    #[prost(btree_map = "uint64, message", tag = "2")]
    pub nodes: BTreeMap<u64, MemberNode>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct StoredMembership {
    #[prost(message, optional, tag = "1")]
    pub log_id: Option<LogId>,
    #[prost(message, optional, tag = "2")]
    pub membership: Option<Membership>,
}

/// One log entry: its id and a blank, a command, or a membership change.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Entry {
    #[prost(message, optional, tag = "1")]
    pub log_id: Option<LogId>,
    #[prost(oneof = "entry::Payload", tags = "2, 3, 4")]
    pub payload: Option<entry::Payload>,
}

pub mod entry {
    use super::*;

    // Transient wire values, decoded once and converted at once: no boxing.
    #[allow(clippy::large_enum_variant)]
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Payload {
        #[prost(message, tag = "2")]
        Blank(Empty),
        #[prost(message, tag = "3")]
        Normal(Request),
        #[prost(message, tag = "4")]
        Membership(Membership),
    }
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SnapshotMeta {
    #[prost(message, optional, tag = "1")]
    pub last_log_id: Option<LogId>,
    #[prost(message, optional, tag = "2")]
    pub last_membership: Option<StoredMembership>,
    #[prost(string, tag = "3")]
    pub snapshot_id: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct AppendEntriesRequest {
    #[prost(message, optional, tag = "1")]
    pub vote: Option<Vote>,
    #[prost(message, optional, tag = "2")]
    pub prev_log_id: Option<LogId>,
    #[prost(message, optional, tag = "3")]
    pub leader_commit: Option<LogId>,
    #[prost(message, repeated, tag = "4")]
    pub entries: Vec<Entry>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct AppendEntriesResponse {
    #[prost(oneof = "append_entries_response::Kind", tags = "1, 2, 3, 4")]
    pub kind: Option<append_entries_response::Kind>,
}

pub mod append_entries_response {
    use super::*;

    // Transient wire values, decoded once and converted at once: no boxing.
    #[allow(clippy::large_enum_variant)]
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Kind {
        #[prost(message, tag = "1")]
        Success(Empty),
        /// Only some entries matched: up to this log id (absent: none).
        #[prost(message, tag = "2")]
        PartialSuccess(PartialSuccess),
        #[prost(message, tag = "3")]
        Conflict(Empty),
        #[prost(message, tag = "4")]
        HigherVote(Vote),
    }
}

#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct PartialSuccess {
    #[prost(message, optional, tag = "1")]
    pub matching: Option<LogId>,
}

#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct VoteRequest {
    #[prost(message, optional, tag = "1")]
    pub vote: Option<Vote>,
    #[prost(message, optional, tag = "2")]
    pub last_log_id: Option<LogId>,
}

#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct VoteResponse {
    #[prost(message, optional, tag = "1")]
    pub vote: Option<Vote>,
    #[prost(bool, tag = "2")]
    pub vote_granted: bool,
    #[prost(message, optional, tag = "3")]
    pub last_log_id: Option<LogId>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct InstallSnapshotRequest {
    #[prost(message, optional, tag = "1")]
    pub vote: Option<Vote>,
    #[prost(message, optional, tag = "2")]
    pub meta: Option<SnapshotMeta>,
    #[prost(uint64, tag = "3")]
    pub offset: u64,
    #[prost(bytes = "vec", tag = "4")]
    pub data: Vec<u8>,
    #[prost(bool, tag = "5")]
    pub done: bool,
}

#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct InstallSnapshotResponse {
    #[prost(message, optional, tag = "1")]
    pub vote: Option<Vote>,
}

/// A Raft call that failed on the peer: `kind` 0 storage error, 1 panicked, 2 stopped,
/// 3 snapshot mismatch (the peer expects chunk `expect_id`@`expect_offset`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct RaftError {
    #[prost(int32, tag = "1")]
    pub kind: i32,
    #[prost(string, tag = "2")]
    pub message: String,
    #[prost(string, tag = "3")]
    pub expect_id: String,
    #[prost(uint64, tag = "4")]
    pub expect_offset: u64,
    #[prost(string, tag = "5")]
    pub got_id: String,
    #[prost(uint64, tag = "6")]
    pub got_offset: u64,
}

/// The answer to `/raft/append`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AppendEntriesResult {
    #[prost(message, optional, tag = "1")]
    pub ok: Option<AppendEntriesResponse>,
    #[prost(message, optional, tag = "2")]
    pub err: Option<RaftError>,
}

/// The answer to `/raft/vote`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct VoteResult {
    #[prost(message, optional, tag = "1")]
    pub ok: Option<VoteResponse>,
    #[prost(message, optional, tag = "2")]
    pub err: Option<RaftError>,
}

/// The answer to `/raft/snapshot`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct InstallSnapshotResult {
    #[prost(message, optional, tag = "1")]
    pub ok: Option<InstallSnapshotResponse>,
    #[prost(message, optional, tag = "2")]
    pub err: Option<RaftError>,
}

/// This member's id and address, fixed when it first started (redb `identity`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct MemberIdentity {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(string, tag = "2")]
    pub address: String,
}
