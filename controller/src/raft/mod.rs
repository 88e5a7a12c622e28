//! Raft: the only module that names `openraft`. It keeps the log in segment files and the vote in
//! redb, applies committed entries to the pure [`crate::state::State`], carries Raft RPCs over
//! HTTP in the format both members read ([`wire`], [`peers`]), and offers the rest of the
//! controller a small facade ([`RaftNode`]) in Hoist's own terms.

mod forwarder;
mod leader_loss;
pub mod link;
mod log_store;
mod network;
mod node;
pub mod peers;
mod proposer;
mod recovery;
mod rpc;
pub mod runtime;
mod stall;
mod state_machine;
mod store;
#[cfg(test)]
mod suite_test;
mod wal;
pub mod watches;
pub mod wire;

pub use node::{ConsensusError, RaftNode, RaftSettings, ReadError, StartError, WriteError};
pub use rpc::RpcError;
pub use store::{Store, StoreError};

use hoist_proto::raft::{Request, Response};

openraft::declare_raft_types!(
    /// Hoist's Raft types: log payload [`Request`], apply answer [`Response`], `u64` member ids.
    pub TypeConfig:
        D = Request,
        R = Response,
        NodeId = u64,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = std::io::Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// A member id.
pub type NodeId = u64;

/// Opens a log directory as a member would (for the golden test of 0.1.0's segment file).
#[cfg(test)]
pub(crate) fn open_log_for_test(
    dir: &std::path::Path,
    purged: Option<u64>,
) -> Result<(wal::Wal, Vec<wal::Loaded>), wal::WalError> {
    wal::Wal::open(dir, purged, hoist_proto::format::CURRENT)
}
