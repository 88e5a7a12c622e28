//! The Raft RPC client: each RPC is an HTTP POST to the peer's `/raft/{append,vote,snapshot}` with a
//! postcard body; the answer is a postcard `Result` of the peer's Raft call.

use super::TypeConfig;
use openraft::error::{
    InstallSnapshotError, NetworkError, PayloadTooLarge, RPCError, RaftError, RemoteError,
    Unreachable,
};
use openraft::network::{Backoff, RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::BasicNode;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::time::Duration;

/// The largest AppendEntries body sent whole. openraft 0.9 gives an AppendEntries RPC one
/// heartbeat interval (50 ms) to be sent, appended with `fdatasync` and answered; a catch-up of
/// many large entries in one body would time out again on every retry.
const MAX_APPEND_BYTES: usize = 1 << 20;

/// Makes one [`Peer`] per target; all share one HTTP connection pool.
#[derive(Clone, Debug)]
pub struct Network {
    client: reqwest::Client,
}

impl Network {
    pub fn new() -> Self {
        hoist_common::init_tls();
        let client = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_millis(500))
            .pool_idle_timeout(Duration::from_secs(30))
            .tcp_nodelay(true)
            .build()
            .expect("http client builds");
        Network { client }
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Peer;

    async fn new_client(&mut self, target: u64, node: &BasicNode) -> Peer {
        Peer {
            client: self.client.clone(),
            target,
            addr: node.addr.clone(),
        }
    }
}

/// The connection to one peer.
#[derive(Debug)]
pub struct Peer {
    client: reqwest::Client,
    target: u64,
    addr: String,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Msg(String);

impl Peer {
    async fn call<Req, Resp, E>(
        &self,
        path: &str,
        req: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<u64, BasicNode, RaftError<u64, E>>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let body =
            postcard::to_stdvec(req).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        self.send(path, body, option).await
    }

    /// POSTs an encoded request and decodes the peer's `Result`.
    async fn send<Resp, E>(
        &self,
        path: &str,
        body: Vec<u8>,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<u64, BasicNode, RaftError<u64, E>>>
    where
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let url = format!("http://{}/raft/{path}", self.addr);
        let (status, bytes) = post_postcard(&self.client, url, option.hard_ttl(), body)
            .await
            .map_err(|e| {
                if e.is_connect() {
                    RPCError::Unreachable(Unreachable::new(&e))
                } else {
                    RPCError::Network(NetworkError::new(&e))
                }
            })?;
        if !status.is_success() {
            let msg = Msg(format!(
                "{}: HTTP {status}: {}",
                self.addr,
                String::from_utf8_lossy(&bytes)
            ));
            return Err(RPCError::Network(NetworkError::new(&msg)));
        }
        let result: Result<Resp, RaftError<u64, E>> =
            postcard::from_bytes(&bytes).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

/// POSTs a postcard body to a member; answers the status and the whole answer body.
pub(super) async fn post_postcard(
    client: &reqwest::Client,
    url: String,
    timeout: Duration,
    body: Vec<u8>,
) -> Result<(reqwest::StatusCode, bytes::Bytes), reqwest::Error> {
    let resp = client
        .post(url)
        .timeout(timeout)
        .header("content-type", "application/postcard")
        .body(body)
        .send()
        .await?;
    let status = resp.status();
    Ok((status, resp.bytes().await?))
}

impl RaftNetwork<TypeConfig> for Peer {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        let body =
            postcard::to_stdvec(&rpc).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        if body.len() > MAX_APPEND_BYTES && rpc.entries.len() > 1 {
            // openraft retries at once with at most this many entries (and keeps the hint for a
            // few RPCs): a catch-up of large entries (scheduler plans) goes in pieces.
            let fit = (rpc.entries.len() * MAX_APPEND_BYTES / body.len()).max(1);
            return Err(RPCError::PayloadTooLarge(
                PayloadTooLarge::new_entries_hint(fit as u64),
            ));
        }
        self.send("append", body, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<u64>,
        RPCError<u64, BasicNode, RaftError<u64, InstallSnapshotError>>,
    > {
        self.call("snapshot", &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        self.call("vote", &rpc, &option).await
    }

    /// Retry an unreachable peer soon: a restarted member should catch up quickly.
    fn backoff(&self) -> Backoff {
        Backoff::new(std::iter::repeat(Duration::from_millis(100)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hoist_proto::raft::{Command, Request};
    use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, Vote};

    fn big_entry(index: u64) -> Entry<TypeConfig> {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
            payload: EntryPayload::Normal(Request {
                time_ms: 0,
                command: Command::DeleteService {
                    name: "x".repeat(400_000),
                },
            }),
        }
    }

    /// Several entries over 1 MiB are refused with a hint before anything is sent (the peer's
    /// address is unreachable: reaching it would be a different error); one entry goes whole.
    #[tokio::test]
    async fn large_appends_are_split_by_an_entries_hint() {
        let mut peer = Peer {
            client: Network::new().client,
            target: 2,
            addr: "127.0.0.1:1".into(),
        };
        let rpc = |entries| AppendEntriesRequest {
            vote: Vote::new_committed(1, 1),
            prev_log_id: None,
            leader_commit: None,
            entries,
        };
        let option = RPCOption::new(Duration::from_millis(200));
        let four = (1..=4).map(big_entry).collect();
        match peer.append_entries(rpc(four), option.clone()).await {
            Err(RPCError::PayloadTooLarge(p)) => assert_eq!(p.entries_hint(), 2),
            other => panic!("expected PayloadTooLarge, got {other:?}"),
        }
        let one = vec![big_entry(1)];
        assert!(matches!(
            peer.append_entries(rpc(one), option).await,
            Err(RPCError::Unreachable(_) | RPCError::Network(_))
        ));
    }
}
