//! [`RaftNode`]: the controller's consensus facade in Hoist's own terms — open a member, bootstrap,
//! write a command, read linearizably, report status, change membership, serve RPC bodies.

use super::forwarder::Forwarder;
use super::leader_loss::LeaderLoss;
use super::link::Links;
use super::log_store::LogStore;
use super::network::Network;
use super::peers::Peers;
use super::proposer::Proposer;
use super::rpc::{self, RpcError, RpcKind};
use super::stall::StallGuard;
use super::state_machine::Machine;
use super::store::{Store, StoreError};
use super::wire::{self, Outcome};
use super::TypeConfig;
use crate::state::State;
use hoist_proto::cluster::{ClusterStatus, Member};
use hoist_proto::format::{Codec, PeerVersion};
use hoist_proto::raft::{Command, Response, StallNotice};
use hoist_transport::client::PeerClients;
use openraft::error::{CheckIsLeaderError, ClientWriteError, RaftError};
use openraft::{
    BasicNode, ChangeMembers, Config, LogId, Raft, RaftMetrics, ServerState, SnapshotPolicy,
};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Timings and compaction knobs; tests shorten them.
///
/// openraft 0.9 lets a follower elect only after a leader lease (= `election_max_ms`) plus a random
/// election timeout in `election_min_ms..election_max_ms` without heartbeats, checked every
/// 1.5 × `heartbeat_ms`: the defaults give a failover of about 350–475 ms.
#[derive(Debug, Clone)]
pub struct RaftSettings {
    pub heartbeat_ms: u64,
    pub election_min_ms: u64,
    pub election_max_ms: u64,
    /// Build a snapshot (and compact the log) after this many applied entries.
    pub snapshot_every: u64,
    /// Entries kept in the log behind a snapshot for slow followers.
    pub keep_logs: u64,
    /// A write or linearizable read not done by then answers "no quorum".
    pub op_timeout: Duration,
    /// Start as the only voter of the cluster in the data dir (`--force-new-cluster`, see
    /// [`super::recovery`]).
    pub force_new_cluster: bool,
}

impl Default for RaftSettings {
    fn default() -> Self {
        RaftSettings {
            heartbeat_ms: 50,
            election_min_ms: 150,
            election_max_ms: 200,
            snapshot_every: 10_000,
            keep_logs: 1_000,
            op_timeout: Duration::from_secs(3),
            force_new_cluster: false,
        }
    }
}

/// Why a write, read or membership change did not happen here. Also sent between members as the
/// outcome of a forwarded write (see [`wire`]).
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConsensusError {
    /// This member is not the leader; `leader` is who is, if known (id, address).
    #[error("not the leader (leader: {leader:?})")]
    NotLeader { leader: Option<(u64, String)> },
    /// Refused before anything was proposed: no quorum is reachable.
    #[error("no quorum: {0}")]
    NoQuorum(String),
    /// Proposed, but not known to be committed: the outcome is unknown.
    #[error("outcome unknown: {0}")]
    Unknown(String),
    /// Raft refused the change (e.g. a membership change already in progress).
    #[error("{0}")]
    Rejected(String),
    /// Raft (or the task in front of it) stopped before anything was proposed. A stop with a
    /// write in flight is [`ConsensusError::Unknown`].
    #[error("raft stopped: {0}")]
    Fatal(String),
    /// Refused before anything was proposed: the command needs a newer cluster format than the
    /// cluster has, because a member has not been upgraded yet.
    #[error("{0}")]
    NeedsUpgrade(String),
}

/// Alias used by callers that write.
pub type WriteError = ConsensusError;
/// Alias used by callers that read.
pub type ReadError = ConsensusError;

/// Why a member could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("raft config: {0}")]
    Config(String),
    #[error("raft: {0}")]
    Raft(String),
}

/// One controller's Raft member. Cheap to clone.
#[derive(Clone)]
pub struct RaftNode {
    inner: Arc<Inner>,
}

struct Inner {
    id: u64,
    address: String,
    raft: Raft<TypeConfig>,
    machine: Machine,
    settings: RaftSettings,
    /// Membership changes one at a time: openraft refuses a change while another is in flight.
    membership_lock: tokio::sync::Mutex<()>,
    /// Groups concurrent writes into batch entries.
    proposer: Proposer,
    /// Groups writes for another leader into one request.
    forwarder: Forwarder,
    /// Keeps disk stalls from causing elections.
    stall: Arc<StallGuard>,
    /// Stands early when the leader's process is gone.
    leader_loss: Arc<LeaderLoss>,
    /// The member links this member opens (Raft's and the forwarder's).
    links: Arc<Links>,
    /// The versions other members said they run.
    peers: Arc<Peers>,
    /// How this member calls the others (mutual TLS once it has a certificate).
    clients: Arc<PeerClients>,
    /// The last state hash [`RaftNode::status`] computed, with the last applied log id it is
    /// the hash at: the state is a function of the log applied, so it holds until the next.
    state_hash: std::sync::Mutex<Option<(Option<LogId<u64>>, String)>>,
}

impl std::fmt::Debug for RaftNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaftNode")
            .field("id", &self.inner.id)
            .field("address", &self.inner.address)
            .finish()
    }
}

/// Logs every change of term, leader or role, so an election shows in each member's log with the
/// moment it happened (openraft's own election logs are at a level we keep quiet).
fn log_leadership_changes(id: u64, raft: &Raft<TypeConfig>) {
    let mut rx = raft.metrics();
    tokio::spawn(async move {
        let mut seen = None;
        let mut last_leader = None;
        loop {
            let now = {
                let m = rx.borrow_and_update();
                (m.current_term, m.current_leader, m.state)
            };
            if seen != Some(now) {
                let (term, leader, state) = now;
                if leader.is_some() && leader != last_leader {
                    crate::metrics::recorders().leader_changed();
                    last_leader = leader;
                }
                tracing::info!(term, leader = ?leader, role = ?state, member = id, "raft leadership");
                seen = Some(now);
            }
            if rx.changed().await.is_err() {
                return;
            }
        }
    });
}

impl RaftNode {
    /// Opens (or creates) the member stored in `data_dir`. A new member takes `id` (or a random one)
    /// and `address`; a restarted one keeps what it stored.
    pub async fn open(
        data_dir: &Path,
        address: &str,
        id: Option<u64>,
        settings: RaftSettings,
    ) -> Result<RaftNode, StartError> {
        let store = Store::open(data_dir)?;
        let (id, address) = match store.identity()? {
            Some((stored_id, stored_addr)) => {
                if stored_addr != address {
                    tracing::warn!(
                        stored_addr,
                        address,
                        "data dir was created for another address; keeping the stored one for Raft"
                    );
                }
                (stored_id, stored_addr)
            }
            None if settings.force_new_cluster => {
                return Err(StartError::Config(format!(
                    "--force-new-cluster: {} is not the data dir of a member",
                    data_dir.display()
                )))
            }
            None => {
                let id = id.unwrap_or_else(|| rand::random::<u64>() >> 11 | 1);
                store.set_identity(id, address)?;
                (id, address.to_string())
            }
        };
        if settings.force_new_cluster {
            let forced = super::recovery::force_new_cluster(&store, id, &address)?;
            tracing::warn!(
                member = id,
                index = forced.index,
                term = forced.term,
                previous_voters = ?forced.previous_voters,
                "forced a new cluster: this member is its only voter, with all the state it held; \
                 add members back with --join from empty data dirs"
            );
        }
        let config = Config {
            cluster_name: "hoist".into(),
            heartbeat_interval: settings.heartbeat_ms,
            election_timeout_min: settings.election_min_ms,
            election_timeout_max: settings.election_max_ms,
            install_snapshot_timeout: 5_000,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(settings.snapshot_every),
            max_in_snapshot_log_to_keep: settings.keep_logs,
            // Purge as soon as `keep_logs` is exceeded by as much again (at most 256 at a time):
            // a fixed 256 would keep a small log uncompacted and no member would ever need a
            // snapshot to catch up.
            purge_batch_size: settings.keep_logs.clamp(1, 256),
            ..Default::default()
        }
        .validate()
        .map_err(|e| StartError::Config(e.to_string()))?;
        let machine = Machine::open(store.clone())?;
        // A stall is forgiven until the leader's next heartbeat can have arrived.
        let stall = StallGuard::new(Duration::from_millis(
            settings.election_max_ms + settings.heartbeat_ms,
        ));
        let peers = Arc::new(Peers::new(machine.cluster_format.clone()));
        let clients = Arc::new(PeerClients::new(super::network::plain_peer_client()));
        let links = Arc::new(Links::new(id, peers.clone(), clients.clone()));
        let log = LogStore::open(store, stall.clone())?;
        let raft = Raft::new(
            id,
            Arc::new(config),
            Network::new(id, peers.clone(), clients.clone(), links.clone()).with_log(log.clone()),
            log,
            machine.clone(),
        )
        .await
        .map_err(|e| StartError::Raft(e.to_string()))?;
        stall.attach(raft.clone());
        tokio::spawn(stall.clone().watch(
            id,
            Duration::from_millis(settings.heartbeat_ms),
            peers.clone(),
            clients.clone(),
        ));
        log_leadership_changes(id, &raft);
        let proposer = Proposer::start(raft.clone(), settings.op_timeout);
        let forwarder = Forwarder::start(
            settings.op_timeout + Duration::from_secs(2),
            peers.clone(),
            clients.clone(),
            links.clone(),
        );
        // openraft's leader lease is the longest election timeout.
        let lease = Duration::from_millis(settings.election_max_ms);
        let heartbeat = Duration::from_millis(settings.heartbeat_ms);
        let leader_loss = LeaderLoss::new(lease, heartbeat, stall.clone());
        Ok(RaftNode {
            inner: Arc::new(Inner {
                id,
                address,
                raft,
                machine,
                settings,
                membership_lock: Default::default(),
                proposer,
                forwarder,
                leader_loss,
                links,
                stall,
                peers,
                clients,
                state_hash: Default::default(),
            }),
        })
    }

    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// How this member calls the others: Raft, forwarded writes and requests.
    pub fn peer_clients(&self) -> &Arc<PeerClients> {
        &self.inner.clients
    }

    pub fn address(&self) -> &str {
        &self.inner.address
    }

    /// Makes this member a one-member cluster unless it already belongs to one.
    pub async fn bootstrap(&self) -> Result<(), ConsensusError> {
        let raft = &self.inner.raft;
        if raft
            .is_initialized()
            .await
            .map_err(|e| ConsensusError::Fatal(e.to_string()))?
        {
            return Ok(());
        }
        let members = BTreeMap::from([(self.inner.id, BasicNode::new(&self.inner.address))]);
        raft.initialize(members)
            .await
            .map_err(|e| ConsensusError::Rejected(e.to_string()))
    }

    /// Whether this member has a membership (bootstrapped, joined, or restarted from disk).
    pub async fn is_initialized(&self) -> bool {
        self.inner.raft.is_initialized().await.unwrap_or(false)
    }

    /// Reads openraft's latest metrics in place: a clone copies maps, and every write asks who
    /// leads several times.
    fn with_metrics<T>(&self, f: impl FnOnce(&RaftMetrics<u64, BasicNode>) -> T) -> T {
        f(&self.inner.raft.metrics().borrow())
    }

    fn metrics(&self) -> RaftMetrics<u64, BasicNode> {
        self.with_metrics(Clone::clone)
    }

    /// The leader as this member knows it: id and address.
    pub fn leader(&self) -> Option<(u64, String)> {
        self.with_metrics(leader_of)
    }

    /// Fails fast when this member cannot lead a write now.
    fn check_leader(&self) -> Result<(), ConsensusError> {
        let id = self.inner.id;
        // Generous next to the election timeout: a follower stalled on a slow fsync still
        // counts; a quorum that is really gone shows up within a second.
        let limit = (5 * self.inner.settings.election_max_ms).max(1_000);
        self.with_metrics(|m| {
            if m.state != ServerState::Leader || m.current_leader != Some(id) {
                return Err(ConsensusError::NotLeader {
                    leader: leader_of(m),
                });
            }
            let voters = m.membership_config.membership().voter_ids().count();
            match m.millis_since_quorum_ack {
                Some(ms) if voters > 1 && ms > limit => Err(ConsensusError::NoQuorum(format!(
                    "no quorum of {voters} members acknowledged for {ms} ms"
                ))),
                _ => Ok(()),
            }
        })
    }

    /// The newest Raft term this member knows.
    pub fn term(&self) -> u64 {
        self.with_metrics(|m| m.current_term)
    }

    /// Whether this member is the leader now (as far as it knows).
    pub fn is_leader(&self) -> bool {
        self.check_leader().is_ok()
    }

    /// Errors like a write would when this member is not the leader.
    pub fn ensure_leader(&self) -> Result<(), ConsensusError> {
        self.check_leader()
    }

    /// Waits for the applied log index to change (or returns at once if it is past `seen`).
    pub fn applied_watch(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.machine.applied.subscribe()
    }

    /// Changes when `node`'s assignments change (`super::watches`).
    pub fn node_watch(&self, node: &str) -> tokio::sync::watch::Receiver<u64> {
        self.inner.machine.watches.node(node)
    }

    /// Changes when any service's endpoints change.
    pub fn endpoints_watch(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.machine.watches.endpoints()
    }

    /// Changes when any node's overlay record changes.
    pub fn overlay_watch(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.machine.watches.overlay()
    }

    /// Changes when this member's vote, role, leader or membership changes (not on every
    /// commit, unlike the full metrics).
    pub fn leadership_watch(
        &self,
    ) -> tokio::sync::watch::Receiver<openraft::metrics::RaftServerMetrics<u64, BasicNode>> {
        self.inner.raft.server_metrics()
    }

    /// The events this member's applied entries told (`crate::events`).
    pub fn events(&self) -> &Arc<crate::events::EventLog> {
        &self.inner.machine.events
    }

    /// Proposes `command` (stamped with the leader's clock) and answers what applying it returned.
    /// On a follower that knows the leader, the command is forwarded there (grouped with others).
    /// A command that needs a newer format than the cluster's is refused here, before anything
    /// is proposed: a member not upgraded yet could not read it.
    pub async fn write(&self, command: Command) -> Result<Response, ConsensusError> {
        self.check_format(&command)?;
        match self.check_leader() {
            Ok(()) => self.inner.proposer.propose(command).await,
            Err(ConsensusError::NotLeader {
                leader: Some((id, addr)),
            }) if id != self.inner.id => {
                // The leader's own word (its RPCs to this member) counts as well as the
                // cluster's format: a member just restarted has applied nothing yet and would
                // otherwise speak format 0, in which some answers cannot travel.
                let format = self
                    .stale_read(|s| s.cluster_format)
                    .max(self.inner.peers.format_of(id));
                self.inner.forwarder.propose(addr, format, command).await
            }
            Err(e) => Err(e),
        }
    }

    /// Refuses `command` if it needs a newer format than the cluster is at, naming the members
    /// that hold the cluster back.
    fn check_format(&self, command: &Command) -> Result<(), ConsensusError> {
        let needs = command.needs_cluster_format();
        let cluster = self.stale_read(|s| s.cluster_format);
        if needs <= cluster {
            return Ok(());
        }
        let behind: Vec<String> = self
            .member_versions()
            .into_iter()
            .filter(|(_, _, v)| v.as_ref().is_none_or(|v| v.format < needs))
            .map(|(id, addr, v)| match v {
                Some(v) => format!(
                    "member {id} at {addr} runs Hoist {} (format {})",
                    v.version, v.format
                ),
                None => format!("member {id} at {addr} has not told its version yet"),
            })
            .collect();
        let why = if behind.is_empty() {
            "every member reads it now; the cluster moves to it within a second: retry".to_string()
        } else {
            format!("{}: finish upgrading the members first", behind.join("; "))
        };
        Err(ConsensusError::NeedsUpgrade(format!(
            "this needs cluster format {needs}, and the cluster is at format {cluster}: {why}"
        )))
    }

    /// Every member of the current membership with its address and the version it last told
    /// (this member's own included).
    pub fn member_versions(&self) -> Vec<(u64, String, Option<PeerVersion>)> {
        self.with_metrics(|m| {
            m.membership_config
                .membership()
                .nodes()
                .map(|(id, n)| {
                    // What a member said more than 10 s ago may no longer hold (it may have been
                    // replaced by an older binary since): only fresh word counts.
                    let v = if *id == self.inner.id {
                        Some(PeerVersion::this_build())
                    } else {
                        self.inner
                            .peers
                            .get(*id)
                            .filter(|(_, age)| *age < Duration::from_secs(10))
                            .map(|(v, _)| v)
                    };
                    (*id, n.addr.clone(), v)
                })
                .collect()
        })
    }

    /// The version registry, for the API layer to record what requests tell.
    pub fn peers(&self) -> &Peers {
        &self.inner.peers
    }

    /// Proposes commands forwarded by another member, here only (never forwarded again).
    async fn propose_here(&self, commands: Vec<Command>) -> Vec<Outcome> {
        let one = |c| async move {
            self.check_format(&c)?;
            self.check_leader()?;
            self.inner.proposer.propose(c).await
        };
        futures::future::join_all(commands.into_iter().map(one)).await
    }

    /// Reads the state after confirming leadership with a quorum and applying everything committed
    /// before the read began (linearizable). `f` reads a [`RaftNode::view`], off the lock.
    pub async fn read<T>(&self, f: impl FnOnce(&State) -> T) -> Result<T, ConsensusError> {
        self.check_leader()?;
        let timeout = self.inner.settings.op_timeout;
        match tokio::time::timeout(timeout, self.inner.raft.ensure_linearizable()).await {
            Err(_) => {
                return Err(ConsensusError::NoQuorum(format!(
                    "leadership not confirmed within {timeout:?}"
                )))
            }
            Ok(Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f)))) => {
                return Err(ConsensusError::NotLeader {
                    leader: f.leader_id.zip(f.leader_node.map(|n| n.addr)),
                })
            }
            Ok(Err(RaftError::APIError(e))) => return Err(ConsensusError::NoQuorum(e.to_string())),
            Ok(Err(RaftError::Fatal(e))) => return Err(ConsensusError::Fatal(e.to_string())),
            Ok(Ok(_)) => {}
        }
        Ok(f(&self.view()))
    }

    /// Reads this member's applied state without asking anyone: may lag the leader. `f` runs
    /// under the lock `apply` needs: keep it short, and take a [`RaftNode::view`] for a long read.
    pub fn stale_read<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        f(&self.inner.machine.shared.read().expect("state lock").state)
    }

    /// A copy of this member's applied state (like [`RaftNode::stale_read`], may lag the
    /// leader), to read for as long as needed while commits go on. Cheap: the big maps are
    /// persistent, so the copy shares them and the lock is held for a few pointer copies.
    pub fn view(&self) -> State {
        self.stale_read(State::clone)
    }

    /// The ids of every member (voters and learners) of the current membership, cheaply (no
    /// state hash, unlike [`RaftNode::status`]).
    pub fn member_ids(&self) -> BTreeSet<u64> {
        self.with_metrics(|m| {
            m.membership_config
                .membership()
                .nodes()
                .map(|(id, _)| *id)
                .collect()
        })
    }

    /// Every member (voters and learners) of the current membership, with its address.
    pub fn member_addresses(&self) -> BTreeMap<u64, String> {
        self.with_metrics(|m| {
            m.membership_config
                .membership()
                .nodes()
                .map(|(id, n)| (*id, n.addr.clone()))
                .collect()
        })
    }

    /// Whether `id` is in this member's view of the membership (voter or learner), or that view
    /// is still empty (a member that has not caught up). Asked on every Raft RPC: reads the
    /// membership in place.
    pub fn admits_member(&self, id: u64) -> bool {
        self.with_metrics(|m| {
            let membership = m.membership_config.membership();
            membership.nodes().next().is_none() || membership.nodes().any(|(n, _)| *n == id)
        })
    }

    /// Members, leader, term, log positions and the state hash, as this member sees them.
    ///
    /// The hash encodes the whole state (about 40 ms at 100,000 tasks: scheduler bench,
    /// `state_hash_100k`). It is computed on a copy once the state lock is released, so that no
    /// entry waits to be applied meanwhile, and once per applied entry however often this is
    /// asked. Call this off the async runtime's threads.
    pub fn status(&self) -> ClusterStatus {
        let m = self.metrics();
        let members = self.members_of(&m);
        let (last_applied, state) = {
            let a = self.inner.machine.shared.read().expect("state lock");
            (a.last_applied, a.state.clone())
        };
        let state_hash = self.state_hash(last_applied, &state);
        let role = match m.state {
            ServerState::Leader => "leader",
            ServerState::Follower => "follower",
            ServerState::Candidate => "candidate",
            ServerState::Learner => "learner",
            ServerState::Shutdown => "shutdown",
        };
        ClusterStatus {
            id: self.inner.id,
            role: role.into(),
            leader: m.current_leader,
            leader_address: m
                .current_leader
                .and_then(|l| m.membership_config.membership().get_node(&l))
                .map(|n| n.addr.clone()),
            term: m.current_term,
            last_log_index: m.last_log_index,
            last_applied: last_applied.map(|l| l.index),
            snapshot_index: m.snapshot.map(|s| s.index),
            purged_index: m.purged.map(|p| p.index),
            snapshots_installed: self
                .inner
                .machine
                .installed
                .load(std::sync::atomic::Ordering::Relaxed),
            members,
            state_hash,
            services: state.services.len() as u64,
            version: hoist_proto::format::VERSION.into(),
            format: hoist_proto::format::CURRENT,
            cluster_format: state.cluster_format,
            network: state.network.clone(),
        }
    }

    /// The members as [`RaftNode::status`] lists them, without its state hash.
    pub fn members(&self) -> Vec<Member> {
        self.members_of(&self.metrics())
    }

    fn members_of(&self, m: &RaftMetrics<u64, BasicNode>) -> Vec<Member> {
        let membership = m.membership_config.membership();
        let voters: BTreeSet<u64> = membership.voter_ids().collect();
        let versions: BTreeMap<u64, PeerVersion> = self
            .member_versions()
            .into_iter()
            .filter_map(|(id, _, v)| Some((id, v?)))
            .collect();
        membership
            .nodes()
            .map(|(id, n)| Member {
                id: *id,
                address: n.addr.clone(),
                voter: voters.contains(id),
                version: versions.get(id).map(|v| v.version.clone()),
                format: versions.get(id).map(|v| v.format),
            })
            .collect()
    }

    /// The hash of `state`, the state at `at`: computed again only when `at` moved.
    fn state_hash(&self, at: Option<LogId<u64>>, state: &State) -> String {
        let mut memo = self.inner.state_hash.lock().expect("state hash memo");
        match &*memo {
            Some((seen, hash)) if *seen == at => {
                // Tests run debug builds: there every answer from the memo is checked.
                debug_assert_eq!(*hash, state.hash(), "the state hash memo at {at:?}");
                hash.clone()
            }
            _ => {
                let hash = state.hash();
                *memo = Some((at, hash.clone()));
                hash
            }
        }
    }

    /// Adds a member: as a learner (waiting until it has caught up), then as a voter unless `learner`.
    pub async fn add_member(
        &self,
        id: u64,
        address: &str,
        learner: bool,
    ) -> Result<(), ConsensusError> {
        self.check_leader()?;
        let raft = &self.inner.raft;
        let deadline = Duration::from_secs(60);
        let step = tokio::time::timeout(
            deadline,
            raft.add_learner(id, BasicNode::new(address), true),
        );
        step.await
            .map_err(|_| ConsensusError::NoQuorum("learner did not catch up within 60s".into()))?
            .map_err(map_write_error)?;
        if !learner {
            let change =
                raft.change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])), false);
            tokio::time::timeout(deadline, change)
                .await
                .map_err(|_| {
                    ConsensusError::NoQuorum("membership change not committed within 60s".into())
                })?
                .map_err(map_write_error)?;
        }
        Ok(())
    }

    /// Removes a member (voter or learner) from the cluster.
    pub async fn remove_member(&self, id: u64) -> Result<bool, ConsensusError> {
        let _one_at_a_time = self.inner.membership_lock.lock().await;
        self.check_leader()?;
        let m = self.metrics();
        let membership = m.membership_config.membership();
        let is_voter = membership.voter_ids().any(|v| v == id);
        let known = membership.get_node(&id).is_some();
        if !known {
            return Ok(false);
        }
        let raft = &self.inner.raft;
        let timeout = Duration::from_secs(30);
        if is_voter {
            let change =
                raft.change_membership(ChangeMembers::RemoveVoters(BTreeSet::from([id])), false);
            tokio::time::timeout(timeout, change)
                .await
                .map_err(|_| {
                    ConsensusError::NoQuorum("membership change not committed within 30s".into())
                })?
                .map_err(map_write_error)?;
        }
        if self
            .metrics()
            .membership_config
            .membership()
            .get_node(&id)
            .is_some()
        {
            let change =
                raft.change_membership(ChangeMembers::RemoveNodes(BTreeSet::from([id])), false);
            tokio::time::timeout(timeout, change)
                .await
                .map_err(|_| {
                    ConsensusError::NoQuorum("membership change not committed within 30s".into())
                })?
                .map_err(map_write_error)?;
        }
        Ok(true)
    }

    /// Waits until some leader is known, up to `timeout`.
    pub async fn wait_for_leader(&self, timeout: Duration) -> bool {
        self.inner
            .raft
            .wait(Some(timeout))
            .metrics(|m| m.current_leader.is_some(), "a leader is known")
            .await
            .is_ok()
    }

    /// Serves one Raft RPC body in `format` from a peer that said `version` of itself (and, if
    /// it named itself, its id as `sender`); answers in the same format.
    pub async fn handle_rpc(
        &self,
        kind: &str,
        body: &[u8],
        format: u32,
        sender: Option<u64>,
        version: PeerVersion,
    ) -> Result<Vec<u8>, RpcError> {
        if let Some(member) = sender {
            self.inner.peers.record(sender, None, version.clone());
            // On arrival: the voters' leases run from when they handled the same word.
            self.inner.leader_loss.heard(member);
        }
        if kind == "stall" {
            let notice = StallNotice::decode(body, format)?;
            self.inner.stall.on_notice(&notice);
            return Ok(Vec::new());
        }
        if kind == "propose" {
            let commands = wire::decode_proposal(body, format)?;
            let outcomes = self.propose_here(commands).await;
            return Ok(wire::encode_outcomes(&outcomes, format));
        }
        let kind = RpcKind::from_path(kind).ok_or_else(|| RpcError::UnknownKind(kind.into()))?;
        let (out, from) = rpc::handle(&self.inner.raft, kind, body, format).await?;
        if sender.is_none() {
            self.inner.leader_loss.heard(from);
            self.inner.peers.record(Some(from), None, version);
        }
        Ok(out)
    }

    /// A member link from `member` closed from its end: when `member` is the leader, its
    /// process may be gone (`raft/leader_loss.rs`).
    pub fn member_link_closed(&self, member: u64) {
        let inner = &self.inner;
        // If this member may stand soon, its vote requests go over links already open (the
        // followers of a leader never called one another, so none is).
        let node = self.clone();
        let warm = move || {
            let inner = &node.inner;
            let m = inner.raft.metrics().borrow().clone();
            let membership = m.membership_config.membership();
            for voter in membership.voter_ids() {
                if voter == inner.id || voter == member {
                    continue;
                }
                if let Some(peer) = membership.get_node(&voter) {
                    inner.links.warm(&peer.addr);
                }
            }
        };
        inner
            .leader_loss
            .link_closed(member, &inner.raft, inner.id, warm);
    }

    /// Asks Raft to build a snapshot now (compacting the log).
    pub async fn trigger_snapshot(&self) -> Result<(), ConsensusError> {
        self.inner
            .raft
            .trigger()
            .snapshot()
            .await
            .map_err(|e| ConsensusError::Fatal(e.to_string()))
    }

    /// Stops Raft (and the event streams, which nothing feeds any more).
    pub async fn shutdown(&self) {
        self.inner.machine.events.close();
        let _ = self.inner.raft.shutdown().await;
    }
}

/// The leader `m` names, with its address.
fn leader_of(m: &RaftMetrics<u64, BasicNode>) -> Option<(u64, String)> {
    let id = m.current_leader?;
    let addr = m.membership_config.membership().get_node(&id)?.addr.clone();
    Some((id, addr))
}

fn map_write_error(e: RaftError<u64, ClientWriteError<u64, BasicNode>>) -> ConsensusError {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => ConsensusError::NotLeader {
            leader: f.leader_id.zip(f.leader_node.map(|n| n.addr)),
        },
        RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => {
            ConsensusError::Rejected(e.to_string())
        }
        RaftError::Fatal(f) => ConsensusError::Fatal(f.to_string()),
    }
}
