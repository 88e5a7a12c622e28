//! Sessions: `hoist service logs` and `hoist service exec` of replicas on any node, through the
//! controllers (`hoist_proto::session` has the protocol).
//!
//! Why a reverse channel: agents only ever connect out to the controllers (register, heartbeat,
//! assignments), so a host opens no new port and no exec listener waits on the network for
//! anyone who can reach it. The leader keeps, in memory only, the sessions an operator asked for
//! ([`Table`]); a node's session poll takes those of its node, and the agent streams each one's
//! output back in the body of a request that the leader pipes to the operator's answer. Nothing
//! of a session is proposed to Raft: its bytes never reach the log or a snapshot.
//!
//! - [`table`]: which sessions wait for which node, which are answered, where output goes.
//! - [`logs`]: one service's logs, every replica's output merged line by line.
//! - [`replicas`]: which replicas run where (pure), [`lines`]: whole lines out of pieces (pure),
//!   [`query`]: the logs query (pure).

pub mod lines;
pub mod logs;
pub mod query;
pub mod replicas;
pub mod table;

pub use table::{AttachError, Attached, SessionEvent};

use hoist_proto::session::SessionRequest;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use table::Table;
use tokio::sync::{mpsc, watch};

/// Time an agent has to begin answering a session (poll, then its output request).
pub const ATTACH_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest session poll; agents behind a forwarding member stay under its 65 s timeout.
pub const MAX_POLL: Duration = Duration::from_secs(30);

/// The leader's sessions. (Streams forwarded to the leader go through the member's peer
/// clients, `RaftNode::peer_clients`, which set no overall timeout: a followed log may last for
/// days.)
#[derive(Debug)]
pub struct Sessions {
    table: Mutex<Table>,
    /// Bumped when sessions are queued: waiting polls look again.
    queued: watch::Sender<u64>,
}

impl Default for Sessions {
    fn default() -> Self {
        Sessions {
            table: Mutex::default(),
            queued: watch::channel(0).0,
        }
    }
}

/// A random session id: 128 bits, 32 hex digits.
pub fn new_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

impl Sessions {
    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Asks `node` to run `request`; its events go to `to_operator`. Unless the agent begins
    /// answering within [`ATTACH_TIMEOUT`], the operator hears that the node did not answer.
    pub fn open(
        self: &Arc<Self>,
        node: &str,
        request: SessionRequest,
        to_operator: mpsc::Sender<SessionEvent>,
    ) -> Result<(), String> {
        let id = request.id.clone();
        self.table()
            .open(node, request, to_operator, Instant::now())?;
        tracing::debug!(session = %id, %node, "session asked");
        self.queued.send_modify(|n| *n = n.wrapping_add(1));
        let me = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(ATTACH_TIMEOUT).await;
            let late = me.table().expire(Instant::now(), ATTACH_TIMEOUT);
            for (to_operator, node) in late {
                tracing::info!(%node, "a session was not answered in time");
                let why = format!(
                    "node {node} did not answer within {}s (its agent is unreachable, busy, or \
                     older than Hoist 0.3)",
                    ATTACH_TIMEOUT.as_secs()
                );
                let _ = to_operator.try_send(SessionEvent::Ended(Some(why)));
            }
        });
        Ok(())
    }

    /// A node's session poll: the sessions waiting for it, as soon as there are some, or none
    /// after `wait` (at most [`MAX_POLL`]).
    pub async fn poll(&self, node: &str, wait: Duration) -> Vec<SessionRequest> {
        let deadline = tokio::time::Instant::now() + wait.min(MAX_POLL);
        let mut queued = self.queued.subscribe();
        loop {
            queued.mark_unchanged();
            if self.table().has_queued(node) {
                let list = self.table().take_queued(node);
                if !list.is_empty() {
                    return list;
                }
            }
            if tokio::time::timeout_at(deadline, queued.changed())
                .await
                .is_err()
            {
                return Vec::new();
            }
        }
    }

    /// `node`'s agent begins answering session `id`.
    pub fn attach(&self, id: &str, node: &str) -> Result<Attached, AttachError> {
        self.table().attach(id, node)
    }

    /// Session `id` is over.
    pub fn finish(&self, id: &str) {
        self.table().finish(id);
    }

    /// `node` registered again: its sessions end, and their operators hear why.
    pub fn node_registered(&self, node: &str) {
        let ended = self.table().node_registered(node);
        for (to_operator, node) in ended {
            let why =
                format!("node {node} registered again (its agent restarted): the session ended");
            let _ = to_operator.try_send(SessionEvent::Ended(Some(why)));
        }
    }

    /// Sessions asked or under way.
    pub fn open_count(&self) -> usize {
        self.table().len()
    }
}
