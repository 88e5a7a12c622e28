//! The Raft RPC client: each RPC is a request on the member link ([`super::link`]) when both
//! members speak it, else an HTTP POST to the peer's `/raft/{append,vote,snapshot}`; the answer
//! is the peer's `Result` of its Raft call. The body is in the newest format both members
//! read (see [`super::peers`]): postcard for a 0.1.0 member or one not heard from yet, protobuf
//! otherwise. Every request names this member and its version; every answer tells the peer's.

use super::link::Links;
use super::log_store::LogStore;
use super::peers::{self, Peers, MEMBER_HEADER};
use super::wire;
use super::TypeConfig;
use hoist_proto::format::{DecodeError, Unrepresentable};
use hoist_proto::peer_link::Kind;
use hoist_transport::client::PeerClients;
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
use std::sync::Arc;
use std::time::Duration;

/// The largest AppendEntries body sent whole. openraft 0.9 gives an AppendEntries RPC one
/// heartbeat interval (50 ms) to be sent, appended with `fdatasync` and answered; a catch-up of
/// many large entries in one body would time out again on every retry.
const MAX_APPEND_BYTES: usize = 1 << 20;

/// Makes one [`Peer`] per target; all share the member's peer clients (connection pools, and
/// mutual TLS once the member has a certificate) and the version registry.
#[derive(Clone, Debug)]
pub struct Network {
    clients: Arc<PeerClients>,
    links: Arc<Links>,
    /// The member's log: AppendEntries carry the entries' bytes as it stored them.
    log: Option<LogStore>,
    /// This member's id, sent with every request.
    me: u64,
    peers: Arc<Peers>,
}

impl Network {
    pub fn new(me: u64, peers: Arc<Peers>, clients: Arc<PeerClients>, links: Arc<Links>) -> Self {
        Network {
            clients,
            links,
            log: None,
            me,
            peers,
        }
    }

    /// Entries go out as `log` stored them instead of encoded again for each follower.
    pub fn with_log(mut self, log: LogStore) -> Self {
        self.log = Some(log);
        self
    }
}

/// The plain-HTTP client a member calls its peers with until it has a certificate.
pub fn plain_peer_client() -> reqwest::Client {
    hoist_transport::client::builder()
        .connect_timeout(Duration::from_millis(500))
        .tcp_nodelay(true)
        .build()
        .expect("http client builds")
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Peer;

    async fn new_client(&mut self, target: u64, node: &BasicNode) -> Peer {
        Peer {
            clients: self.clients.clone(),
            links: self.links.clone(),
            log: self.log.clone(),
            me: self.me,
            peers: self.peers.clone(),
            target,
            addr: node.addr.clone(),
        }
    }
}

/// The connection to one peer.
#[derive(Debug)]
pub struct Peer {
    clients: Arc<PeerClients>,
    links: Arc<Links>,
    log: Option<LogStore>,
    me: u64,
    peers: Arc<Peers>,
    target: u64,
    addr: String,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Msg(String);

type Rpc<T, E = openraft::error::Infallible> =
    Result<T, RPCError<u64, BasicNode, RaftError<u64, E>>>;

fn network_error<E: std::error::Error>(
    e: impl std::fmt::Display,
) -> RPCError<u64, BasicNode, RaftError<u64, E>> {
    RPCError::Network(NetworkError::new(&Msg(e.to_string())))
}

impl Peer {
    /// The format to speak to this peer now.
    fn format(&self) -> u32 {
        self.peers.format_of(self.target)
    }

    /// Logs why an RPC cannot be sent to this peer in its format (an older member than the
    /// entries the leader has: it cannot catch up until it is upgraded).
    fn unsendable<E: std::error::Error>(
        &self,
        e: Unrepresentable,
    ) -> RPCError<u64, BasicNode, RaftError<u64, E>> {
        tracing::warn!(
            member = self.target,
            address = %self.addr,
            error = %e,
            "raft: this member reads an older format than the log holds; upgrade it"
        );
        network_error(format!(
            "member {} reads format {}: {e}",
            self.target, e.format
        ))
    }

    /// Sends an encoded `kind` request in `format`, on the member link or else as an HTTP POST,
    /// and decodes the peer's `Result` with `decode`.
    async fn send<T, E>(
        &self,
        kind: Kind,
        body: Vec<u8>,
        format: u32,
        option: &RPCOption,
        decode: impl FnOnce(&[u8], u32) -> Result<Result<T, RaftError<u64, E>>, DecodeError>,
    ) -> Rpc<T, E>
    where
        E: std::error::Error,
    {
        let linked = self
            .links
            .call(
                Some(self.target),
                &self.addr,
                kind,
                format,
                &body,
                option.hard_ttl(),
            )
            .await;
        let (answered_in, bytes) = match linked {
            Ok(Some(answer)) => answer,
            Ok(None) => self.post(kind.name(), body, format, option).await?,
            Err(e) => return Err(network_error(e)),
        };
        let result = decode(&bytes, answered_in).map_err(network_error)?;
        result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }

    /// POSTs an encoded request in `format` to `/raft/{path}`; answers the body that came back
    /// and its format.
    async fn post<E: std::error::Error>(
        &self,
        path: &str,
        body: Vec<u8>,
        format: u32,
        option: &RPCOption,
    ) -> Result<(u32, bytes::Bytes), RPCError<u64, BasicNode, RaftError<u64, E>>> {
        let body = bytes::Bytes::from(body);
        let send = self.clients.send(&self.addr, |client, base| {
            let mut req = client
                .post(format!("{base}/raft/{path}"))
                .timeout(option.hard_ttl())
                .header(
                    reqwest::header::CONTENT_TYPE,
                    peers::raft_media_type(format),
                )
                .header(MEMBER_HEADER, self.me);
            for (k, v) in peers::version_headers() {
                req = req.header(k, v);
            }
            req.body(body.clone())
        });
        let resp = send.await.map_err(|e| {
            if e.is_connect() {
                RPCError::Unreachable(Unreachable::new(&e))
            } else {
                RPCError::Network(NetworkError::new(&e))
            }
        })?;
        let status = resp.status();
        let answered_in = peers::body_format(resp.headers());
        self.peers.record(
            Some(self.target),
            Some(&self.addr),
            peers::peer_version(resp.headers()),
        );
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        if !status.is_success() {
            return Err(network_error(format!(
                "{}: HTTP {status}: {}",
                self.addr,
                String::from_utf8_lossy(&bytes)
            )));
        }
        Ok((answered_in, bytes))
    }
}

/// POSTs a body to a member with this build's version headers; answers the status, the headers
/// and the whole answer body.
pub(super) async fn post(
    clients: &PeerClients,
    addr: &str,
    path: &str,
    timeout: Duration,
    media_type: &str,
    body: Vec<u8>,
) -> Result<
    (
        reqwest::StatusCode,
        reqwest::header::HeaderMap,
        bytes::Bytes,
    ),
    reqwest::Error,
> {
    let body = bytes::Bytes::from(body);
    let resp = clients
        .send(addr, |client, base| {
            let mut req = client
                .post(format!("{base}{path}"))
                .timeout(timeout)
                .header(reqwest::header::CONTENT_TYPE, media_type);
            for (k, v) in peers::version_headers() {
                req = req.header(k, v);
            }
            req.body(body.clone())
        })
        .await?;
    let status = resp.status();
    let headers = resp.headers().clone();
    Ok((status, headers, resp.bytes().await?))
}

impl RaftNetwork<TypeConfig> for Peer {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        let mut format = self.format();
        let body = loop {
            let stored = |id: &openraft::LogId<u64>| self.log.as_ref()?.stored_entry(id);
            match wire::encode_append_reusing(&rpc, format, stored) {
                Ok(b) => break b,
                // An entry of a newer format proves the cluster was at that format when it was
                // written, so every member read it then (one that could not was refused). A
                // member restarted before re-applying that entry does not know it yet: to a peer
                // it has not heard from since, it speaks the format the entries need.
                Err(e)
                    if e.needs > format
                        && e.needs <= hoist_proto::format::CURRENT
                        && self.peers.get(self.target).is_none() =>
                {
                    format = e.needs
                }
                Err(e) => return Err(self.unsendable(e)),
            }
        };
        if body.len() > MAX_APPEND_BYTES && rpc.entries.len() > 1 {
            // openraft retries at once with at most this many entries (and keeps the hint for a
            // few RPCs): a catch-up of large entries (scheduler plans) goes in pieces.
            let fit = (rpc.entries.len() * MAX_APPEND_BYTES / body.len()).max(1);
            return Err(RPCError::PayloadTooLarge(
                PayloadTooLarge::new_entries_hint(fit as u64),
            ));
        }
        self.send(
            Kind::Append,
            body,
            format,
            &option,
            wire::decode_append_result,
        )
        .await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<u64>,
        RPCError<u64, BasicNode, RaftError<u64, InstallSnapshotError>>,
    > {
        let format = self.format();
        let body = wire::encode_snapshot_request(&rpc, format);
        self.send(
            Kind::Snapshot,
            body,
            format,
            &option,
            wire::decode_snapshot_result,
        )
        .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        let format = self.format();
        let body = wire::encode_vote_request(&rpc, format);
        self.send(Kind::Vote, body, format, &option, wire::decode_vote_result)
            .await
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
        let clients = Arc::new(PeerClients::new(plain_peer_client()));
        let mut peer = Peer {
            links: Arc::new(Links::new(1, Arc::default(), clients.clone())),
            clients,
            log: None,
            me: 1,
            peers: Arc::default(),
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
