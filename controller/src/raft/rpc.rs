//! The Raft RPC server side, on bytes: the API layer routes `/raft/{kind}` bodies here with the
//! format their media type names, so that HTTP framework and Raft library never meet. The answer
//! is in the format of the request.

use super::wire;
use super::TypeConfig;
use hoist_proto::format::DecodeError;
use openraft::Raft;

/// Which RPC a body carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RpcKind {
    Append,
    Vote,
    Snapshot,
}

impl RpcKind {
    /// From the last path segment of `/raft/{kind}`.
    pub fn from_path(s: &str) -> Option<RpcKind> {
        match s {
            "append" => Some(RpcKind::Append),
            "vote" => Some(RpcKind::Vote),
            "snapshot" => Some(RpcKind::Snapshot),
            _ => None,
        }
    }
}

/// A body that is not the RPC it claims to be.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    #[error("raft rpc body does not decode: {0}")]
    Decode(#[from] DecodeError),
    #[error("no raft rpc {0:?}")]
    UnknownKind(String),
}

/// Decodes a request in `format`, hands it to Raft, encodes `Result<response, RaftError>`.
/// Also answers who sent it (the leader or candidate its vote names): a member of 0.1.0 does not
/// say so in a header.
pub async fn handle(
    raft: &Raft<TypeConfig>,
    kind: RpcKind,
    body: &[u8],
    format: u32,
) -> Result<(Vec<u8>, u64), RpcError> {
    let out = match kind {
        RpcKind::Append => {
            let req = wire::decode_append(body, format)?;
            let from = req.vote.leader_id.node_id;
            (
                wire::encode_append_result(&raft.append_entries(req).await, format),
                from,
            )
        }
        RpcKind::Vote => {
            let req = wire::decode_vote_request(body, format)?;
            let from = req.vote.leader_id.node_id;
            (
                wire::encode_vote_result(&raft.vote(req).await, format),
                from,
            )
        }
        RpcKind::Snapshot => {
            let req = wire::decode_snapshot_request(body, format)?;
            let from = req.vote.leader_id.node_id;
            (
                wire::encode_snapshot_result(&raft.install_snapshot(req).await, format),
                from,
            )
        }
    };
    Ok(out)
}
