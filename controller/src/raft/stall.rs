//! Disk-stall tolerance: a member whose disk stalls is slow, not dead, and must not cause an
//! election.
//!
//! openraft 0.9 waits for every log write's `fdatasync` inside its core task. While a write is
//! stalled, a leader sends no heartbeats and a follower handles none; when the stall outlasts the
//! election timeout (here 350–400 ms, kept short for a sub-500 ms failover), someone elects. The
//! shared disks of small VMs stall like that now and then (measured here: single-record writes of
//! 400–540 ms, a few times in ten minutes). So:
//!
//! - a member whose own log write took [`SLOW`] or more holds its elections for a grace period
//!   after the write ends, long enough to hear the leader's next heartbeat before it may blame the
//!   leader for a silence that was its own;
//! - a leader whose write has been stalled for [`SLOW`] tells its voters so, at the heartbeat
//!   interval (a [`StallNotice`]), and they hold their elections while the notices come;
//! - the notices stop after [`MAX_STALL`], so a leader whose disk hangs for good is replaced.
//!
//! A leader killed with `-9` sends no notice, so failover keeps its speed.

use super::network::post;
use super::peers::{raft_media_type, Peers};
use super::TypeConfig;
use hoist_proto::format::Codec;
use hoist_proto::raft::StallNotice;
use hoist_transport::client::PeerClients;
use openraft::Raft;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// A log write taking this long counts as a stall (and is logged as a slow write).
pub const SLOW: Duration = Duration::from_millis(100);
/// A leader stops announcing a stall after this long; its followers may then replace it.
pub const MAX_STALL: Duration = Duration::from_secs(2);

/// Shared by the log writer thread (which reports writes), the watchdog task and the RPC handler.
pub struct StallGuard {
    epoch: Instant,
    /// When the write in progress began (ms since `epoch`, plus one); 0 when none is.
    write_started: AtomicU64,
    /// While this guard has turned elections off: until when (ms since `epoch`).
    holding: Mutex<Option<u64>>,
    /// How long a hold lasts after its cause ends.
    grace: Duration,
    raft: OnceLock<Raft<TypeConfig>>,
}

impl std::fmt::Debug for StallGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StallGuard")
            .field("stalled_for", &self.stalled_for())
            .field("holding", &self.holding)
            .finish()
    }
}

impl StallGuard {
    pub fn new(grace: Duration) -> Arc<StallGuard> {
        Arc::new(StallGuard {
            epoch: Instant::now(),
            write_started: AtomicU64::new(0),
            holding: Mutex::new(None),
            grace,
            raft: OnceLock::new(),
        })
    }

    /// Connects the guard to the Raft it protects (created after the log store).
    pub fn attach(&self, raft: Raft<TypeConfig>) {
        let _ = self.raft.set(raft);
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// The log writer starts a write.
    pub fn write_begins(&self) {
        self.write_started
            .store(self.now_ms() + 1, Ordering::Release);
    }

    /// The log writer finished a write that took `took`; called before the write is reported
    /// durable, so the hold is in place before Raft's core resumes and looks at its timers.
    pub fn write_ends(&self, took: Duration) {
        self.write_started.store(0, Ordering::Release);
        if took >= SLOW {
            self.hold();
        }
    }

    /// How long the write in progress has taken so far.
    pub fn stalled_for(&self) -> Option<Duration> {
        match self.write_started.load(Ordering::Acquire) {
            0 => None,
            t => Some(Duration::from_millis(self.now_ms().saturating_sub(t - 1))),
        }
    }

    /// Holds elections for the grace period from now (extending a hold in progress).
    pub fn hold(&self) {
        let until = self.now_ms() + self.grace.as_millis() as u64;
        let mut holding = self.holding.lock().expect("stall lock");
        match *holding {
            Some(u) => *holding = Some(u.max(until)),
            None => {
                *holding = Some(until);
                if let Some(raft) = self.raft.get() {
                    raft.runtime_config().elect(false);
                }
                tracing::debug!("raft: holding elections while a disk stall passes");
            }
        }
    }

    /// Whether elections are held now.
    pub fn is_holding(&self) -> bool {
        self.holding.lock().expect("stall lock").is_some()
    }

    /// Ends a hold whose time is up.
    fn release_if_due(&self) {
        let mut holding = self.holding.lock().expect("stall lock");
        if holding.is_some_and(|until| self.now_ms() >= until) {
            *holding = None;
            if let Some(raft) = self.raft.get() {
                raft.runtime_config().elect(true);
            }
            tracing::debug!("raft: elections allowed again");
        }
    }

    /// A follower receives a leader's notice: it holds when the notice comes from the leader it
    /// follows, in the current term (anything else is stale and ignored).
    pub fn on_notice(&self, notice: &StallNotice) {
        let Some(raft) = self.raft.get() else { return };
        let from_leader = {
            let m = raft.metrics();
            let m = m.borrow();
            m.current_term == notice.term && m.current_leader == Some(notice.leader)
        };
        if from_leader {
            self.hold();
        }
    }

    /// Runs until Raft shuts down: every `tick`, holds elections while this member's own write is
    /// stalled, announces a leader's stall to its voters, and ends holds that are due.
    pub async fn watch(
        self: Arc<Self>,
        id: u64,
        tick: Duration,
        peers: Arc<Peers>,
        clients: Arc<PeerClients>,
    ) {
        let mut ticker = tokio::time::interval(tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let alive = self.raft.get().map(|r| r.metrics());
        loop {
            ticker.tick().await;
            if alive.as_ref().is_some_and(|m| m.has_changed().is_err()) {
                return; // Raft was shut down
            }
            if let Some(d) = self.stalled_for().filter(|d| *d >= SLOW) {
                self.hold();
                if d <= MAX_STALL {
                    self.announce(id, &clients, &peers);
                }
            }
            self.release_if_due();
        }
    }

    /// Sends a stall notice to every other voter when this member leads.
    fn announce(&self, id: u64, clients: &Arc<PeerClients>, peers: &Peers) {
        let Some(raft) = self.raft.get() else { return };
        let m = raft.metrics().borrow().clone();
        if m.current_leader != Some(id) {
            return;
        }
        let notice = StallNotice {
            leader: id,
            term: m.current_term,
        };
        let membership = m.membership_config.membership();
        for (peer, node) in membership.nodes() {
            if *peer == id || !membership.voter_ids().any(|v| v == *peer) {
                continue;
            }
            let format = peers.format_of(*peer);
            let Ok(body) = notice.encode(format) else {
                continue;
            };
            let (clients, addr) = (clients.clone(), node.addr.clone());
            tokio::spawn(async move {
                let timeout = Duration::from_secs(1);
                let media = raft_media_type(format);
                let _ = post(&clients, &addr, "/raft/stall", timeout, media, body).await;
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slow_write_holds_and_the_hold_ends_after_the_grace() {
        let g = StallGuard::new(Duration::from_millis(30));
        g.write_begins();
        assert!(g.stalled_for().is_some());
        g.write_ends(Duration::from_millis(5));
        assert!(!g.is_holding(), "a fast write holds nothing");
        assert_eq!(g.stalled_for(), None);
        g.write_begins();
        g.write_ends(SLOW);
        assert!(g.is_holding());
        g.release_if_due();
        assert!(g.is_holding(), "not before the grace is over");
        std::thread::sleep(Duration::from_millis(40));
        g.release_if_due();
        assert!(!g.is_holding());
    }

    #[test]
    fn a_stall_in_progress_is_measured() {
        let g = StallGuard::new(Duration::from_millis(30));
        g.write_begins();
        std::thread::sleep(Duration::from_millis(20));
        assert!(g.stalled_for().unwrap() >= Duration::from_millis(19));
    }
}
