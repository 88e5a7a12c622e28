//! A leader whose process died is replaced as soon as the voters' leases allow.
//!
//! openraft 0.9 lets a follower stand only once its leader lease (`--election-max-ms`) and then a
//! random election timeout (`--election-min-ms` to `--election-max-ms`) have passed without word
//! from the leader, looked at on its tick (1.5 × `--heartbeat-ms`): 350–475 ms with the defaults.
//! That was all of a failover's time after `kill -9` (`bench/results/writes-cpu-2026-12-07.md`).
//! The lease cannot be cut short: a voter refuses every vote until its lease from the leader's
//! last word has run out, which is what keeps a deposed leader from being believed. The random
//! timeout after it is there so that followers who all lost word at once do not all stand at once
//! and split the vote.
//!
//! A process that dies has its connections closed by the kernel, so each follower sees the
//! leader's member links close ([`super::link`]). A follower that saw that, and has heard nothing
//! from the leader since, stands as soon as the lease has run out on every voter (the lease after
//! its own last word from the leader, and [`MARGIN`] for the others, who heard that word a little
//! later), each follower [`STAGGER`] after the one before it in the order of member ids, so that
//! the first one alive is elected before the next stands. The followers of a leader never called
//! one another, so a follower that may stand opens links to the other voters while it waits, once
//! the leader has missed two heartbeats ([`WARM_AFTER`], [`super::link::Links::warm`]): opening
//! one when the vote is asked took about 44 ms on a loaded host, and the next follower had stood by
//! then. A leader that lives speaks before that, so a link it closes costs no link opened.
//!
//! Nothing else changes:
//! - a link that closes while the leader lives (an idle link, a dropped call) is followed by the
//!   leader's next heartbeat, 50 ms later, and that word cancels the early stand;
//! - a leader that falls silent with its connections open (its host gone, a partition, a hung
//!   disk) is replaced by Raft's own timers, as before;
//! - a follower holding its elections while a disk stall passes ([`super::stall`]) does not stand.
//!
//! Clusters whose members talk plain HTTP (no certificates) have no links, and no early stand.

use super::stall::StallGuard;
use super::TypeConfig;
use openraft::{Raft, ServerState};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Past the lease on this member, for the other voters, whose lease began when they handled the
/// leader's last word to them: a few milliseconds after this member, more on a loaded host.
pub const MARGIN: Duration = Duration::from_millis(25);
/// How many heartbeat intervals of silence after a leader's link closed before this member opens
/// links to the other voters for its vote requests.
pub const WARM_AFTER: u32 = 2;
/// Between two followers' early stands: more than a vote takes on a loaded host (2–23 ms
/// measured), so that the first is elected, or has asked, before the next stands.
pub const STAGGER: Duration = Duration::from_millis(40);

/// What this member last heard from a member, and when that member's link last closed (ms since
/// the [`LeaderLoss`] was made).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Word {
    heard_ms: u64,
    closed_ms: Option<u64>,
}

/// When a follower of rank `rank` stands after its leader's link closed at `closed_ms`, having
/// last heard it at `heard_ms`, with a leader lease of `lease`: `None` when the leader spoke after
/// the close (it lives).
fn stand_at(heard_ms: u64, closed_ms: u64, lease: Duration, rank: usize) -> Option<u64> {
    (closed_ms >= heard_ms).then(|| {
        heard_ms
            + lease.as_millis() as u64
            + MARGIN.as_millis() as u64
            + rank as u64 * STAGGER.as_millis() as u64
    })
}

/// `me`'s place among the `voters` that may succeed `leader`, by member id (0 stands first);
/// `None` when `me` is not one of them.
fn rank(me: u64, leader: u64, voters: impl IntoIterator<Item = u64>) -> Option<usize> {
    let mut others: Vec<u64> = voters.into_iter().filter(|v| *v != leader).collect();
    others.sort_unstable();
    others.iter().position(|v| *v == me)
}

/// What this member heard from the others and when their links closed; one per member.
#[derive(Debug)]
pub struct LeaderLoss {
    epoch: Instant,
    lease: Duration,
    heartbeat: Duration,
    stall: Arc<StallGuard>,
    words: Mutex<HashMap<u64, Word>>,
    /// Whether a task waits to stand.
    waiting: AtomicBool,
}

impl LeaderLoss {
    /// `lease`: openraft's leader lease, which is `--election-max-ms`; `heartbeat`:
    /// `--heartbeat-ms`.
    pub fn new(lease: Duration, heartbeat: Duration, stall: Arc<StallGuard>) -> Arc<LeaderLoss> {
        Arc::new(LeaderLoss {
            epoch: Instant::now(),
            lease,
            heartbeat,
            stall,
            words: Mutex::default(),
            waiting: AtomicBool::new(false),
        })
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn word(&self, member: u64) -> Option<Word> {
        let words = self.words.lock().unwrap_or_else(|p| p.into_inner());
        words.get(&member).copied()
    }

    /// `member` sent this member a Raft request (noted when it arrives, when the sender is known
    /// then: the other voters' leases run from when they handled the same word).
    pub fn heard(&self, member: u64) {
        let now = self.now_ms();
        let mut words = self.words.lock().unwrap_or_else(|p| p.into_inner());
        words.entry(member).or_default().heard_ms = now;
    }

    /// A link from `member` closed (its end went away, not this member's idle timeout). When
    /// `member` leads the term this member follows in, this member may stand early: a task waits
    /// for the time (see the module doc), and calls `warm` if the leader stays silent for
    /// [`WARM_AFTER`] heartbeats.
    pub fn link_closed(
        self: &Arc<Self>,
        member: u64,
        raft: &Raft<TypeConfig>,
        me: u64,
        warm: impl FnOnce() + Send + 'static,
    ) {
        {
            let now = self.now_ms();
            let mut words = self.words.lock().unwrap_or_else(|p| p.into_inner());
            words.entry(member).or_default().closed_ms = Some(now);
        }
        let term = {
            let m = raft.metrics();
            let m = m.borrow();
            if m.current_leader != Some(member) || m.state != ServerState::Follower {
                return;
            }
            m.current_term
        };
        if self.waiting.swap(true, Ordering::AcqRel) {
            return;
        }
        tracing::debug!(
            leader = member,
            term,
            "raft: a member link from the leader closed"
        );
        let (this, raft) = (self.clone(), raft.clone());
        tokio::spawn(async move {
            this.stand_when_due(raft, me, member, term, warm).await;
            this.waiting.store(false, Ordering::Release);
        });
    }

    /// When this member should stand for `leader`'s succession, from what it heard and the
    /// voters of `raft`'s membership; `None` when it should not (the leader spoke since its link
    /// closed, or this member is not a voter).
    fn due(&self, raft: &Raft<TypeConfig>, me: u64, leader: u64) -> Option<u64> {
        let word = self.word(leader)?;
        let voters: Vec<u64> = {
            let m = raft.metrics();
            let m = m.borrow();
            m.membership_config.membership().voter_ids().collect()
        };
        stand_at(
            word.heard_ms,
            word.closed_ms?,
            self.lease,
            rank(me, leader, voters)?,
        )
    }

    async fn stand_when_due(
        &self,
        raft: Raft<TypeConfig>,
        me: u64,
        leader: u64,
        term: u64,
        warm: impl FnOnce(),
    ) {
        let mut warm = Some(warm);
        loop {
            let still_follows = {
                let m = raft.metrics();
                let m = m.borrow();
                m.current_leader == Some(leader)
                    && m.current_term == term
                    && m.state == ServerState::Follower
            };
            // A hold for a disk stall turns Raft's own elections off (`super::stall`): those are
            // what stand then, once the hold ends.
            if !still_follows || self.stall.is_holding() {
                return;
            }
            let Some(at) = self.due(&raft, me, leader) else {
                tracing::debug!(
                    leader,
                    "raft: no early stand: the leader spoke after its link closed, or this member \
                     does not vote"
                );
                return;
            };
            let now = self.now_ms();
            if now >= at {
                let silent_ms = self.word(leader).map_or(0, |w| now - w.heard_ms);
                tracing::info!(
                    leader,
                    term,
                    silent_ms,
                    "raft: the leader's links closed and it has said nothing since: standing for election"
                );
                let _ = raft.trigger().elect().await;
                return;
            }
            let warm_at = self.word(leader).map_or(now, |w| {
                w.heard_ms + (self.heartbeat * WARM_AFTER).as_millis() as u64
            });
            let next = match warm.take() {
                Some(w) if now >= warm_at => {
                    w();
                    at
                }
                Some(w) => {
                    warm = Some(w);
                    warm_at.min(at)
                }
                None => at,
            };
            tokio::time::sleep(Duration::from_millis(next - now)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEASE: Duration = Duration::from_millis(200);

    #[test]
    fn a_follower_stands_once_the_lease_and_margin_are_over_staggered_by_rank() {
        assert_eq!(stand_at(1_000, 1_010, LEASE, 0), Some(1_225));
        assert_eq!(stand_at(1_000, 1_010, LEASE, 1), Some(1_265));
        assert_eq!(stand_at(1_000, 1_010, LEASE, 3), Some(1_345));
        // Closed in the same millisecond as the last word: the leader may have died just after.
        assert_eq!(stand_at(1_000, 1_000, LEASE, 0), Some(1_225));
    }

    #[test]
    fn a_leader_heard_after_its_link_closed_lives() {
        assert_eq!(stand_at(1_050, 1_010, LEASE, 0), None);
    }

    #[test]
    fn followers_stand_in_the_order_of_their_ids_without_the_leader() {
        assert_eq!(rank(7, 5, [5, 7, 9]), Some(0));
        assert_eq!(rank(9, 5, [9, 5, 7]), Some(1));
        assert_eq!(rank(3, 5, [9, 5, 7, 3, 1]), Some(1));
        // A learner (not among the voters) never stands.
        assert_eq!(rank(4, 5, [5, 7, 9]), None);
    }

    #[test]
    fn words_are_kept_by_member() {
        let loss = LeaderLoss::new(LEASE, LEASE / 4, StallGuard::new(LEASE));
        assert_eq!(loss.word(2), None);
        loss.heard(2);
        let w = loss.word(2).unwrap();
        assert_eq!(w.closed_ms, None);
        loss.words.lock().unwrap().get_mut(&2).unwrap().closed_ms = Some(w.heard_ms);
        loss.heard(3);
        assert_eq!(loss.word(2).unwrap().closed_ms, Some(w.heard_ms));
        assert!(loss.word(3).unwrap().closed_ms.is_none());
    }
}
