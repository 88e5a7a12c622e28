//! The Raft RPC server side, on bytes: the API layer routes `/raft/{kind}` bodies here, so that
//! HTTP framework and Raft library never meet.

use super::TypeConfig;
use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};
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
#[error("raft rpc body does not decode: {0}")]
pub struct RpcError(#[from] postcard::Error);

/// Decodes a request, hands it to Raft, encodes `Result<response, RaftError>`.
pub async fn handle(
    raft: &Raft<TypeConfig>,
    kind: RpcKind,
    body: &[u8],
) -> Result<Vec<u8>, RpcError> {
    let out = match kind {
        RpcKind::Append => {
            let req: AppendEntriesRequest<TypeConfig> = postcard::from_bytes(body)?;
            postcard::to_stdvec(&raft.append_entries(req).await)?
        }
        RpcKind::Vote => {
            let req: VoteRequest<u64> = postcard::from_bytes(body)?;
            postcard::to_stdvec(&raft.vote(req).await)?
        }
        RpcKind::Snapshot => {
            let req: InstallSnapshotRequest<TypeConfig> = postcard::from_bytes(body)?;
            postcard::to_stdvec(&raft.install_snapshot(req).await)?
        }
    };
    Ok(out)
}
