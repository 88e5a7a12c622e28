//! The ring of recent events and the positions streams read from.

use hoist_proto::events::{Event, EventId};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// How many events a member keeps by default (a few MB; hours of a busy cluster's changes).
pub const EVENTS_KEPT: usize = 10_000;

/// Where a stream starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// After this event (`Last-Event-ID`, or `?index=N`: after entry N).
    After(EventId),
    /// With the first kept event at or after this leader time (ms since the epoch).
    Since(u64),
    /// With the next event applied.
    Now,
}

/// Events a reader asked for that this member no longer holds (or never held): those after
/// `after` up to and including entry `through`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lost {
    /// The reader's position, when it gave one (not for [`Start::Since`]).
    pub after: Option<EventId>,
    /// The newest entry whose events are not held: the stream goes on after it.
    pub through: u64,
}

/// One read: what was lost first, then events in order, and the position to read from next.
#[derive(Debug, Clone, Default)]
pub struct Read {
    pub lost: Option<Lost>,
    pub events: Vec<Arc<Event>>,
    pub next: Option<EventId>,
    /// Whether more events are held after `next` (the read stopped at its limit).
    pub more: bool,
}

#[derive(Debug)]
struct Ring {
    events: VecDeque<Arc<Event>>,
    capacity: usize,
    /// Events of entries up to this index are not held: evicted, or before this member's state
    /// began (its snapshot at start, one installed from the leader).
    horizon: u64,
    /// The leader time of the newest event evicted; `None` when the horizon is a snapshot's
    /// (the time of what it covers is unknown).
    horizon_time_ms: Option<u64>,
    /// The newest event pushed, or the horizon as a whole entry.
    last: EventId,
}

/// The ring and its change signal (see the module doc of `crate::events`).
#[derive(Debug)]
pub struct EventLog {
    ring: Mutex<Ring>,
    changed: watch::Sender<u64>,
    /// The member is stopping: streams end (their clients go on with another member).
    closed: AtomicBool,
}

impl EventLog {
    /// An empty log keeping `capacity` events, whose member's state begins after entry
    /// `horizon` (its snapshot's index; 0 for a new member).
    pub fn new(capacity: usize, horizon: u64) -> EventLog {
        EventLog {
            ring: Mutex::new(Ring {
                events: VecDeque::new(),
                capacity: capacity.max(1),
                horizon,
                horizon_time_ms: None,
                last: EventId::after_entry(horizon),
            }),
            changed: watch::Sender::new(0),
            closed: AtomicBool::new(false),
        }
    }

    fn ring(&self) -> std::sync::MutexGuard<'_, Ring> {
        // A reader that panicked holding the lock left the ring consistent (every change is one
        // push or pop): keep serving it.
        self.ring.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends the events of applied entries (ids above every held one, in order) and wakes
    /// the readers. Events of an entry are evicted together, oldest entry first.
    pub fn push(&self, events: Vec<Event>) {
        if events.is_empty() {
            return;
        }
        {
            let mut r = self.ring();
            for e in events {
                if e.id <= r.last {
                    // Not newer than what is held: a bug upstream; never reorder the ring.
                    tracing::warn!(id = %e.id, last = %r.last, "event out of order dropped");
                    continue;
                }
                r.last = e.id;
                r.events.push_back(Arc::new(e));
            }
            while r.events.len() > r.capacity {
                let Some(gone) = r.events.pop_front() else {
                    break;
                };
                r.horizon = gone.index;
                r.horizon_time_ms = Some(r.horizon_time_ms.unwrap_or(0).max(gone.time_ms));
                while r.events.front().is_some_and(|e| e.index == gone.index) {
                    r.events.pop_front();
                }
            }
        }
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// The member's state was replaced by a snapshot at entry `index` (installed from the
    /// leader): what happened before it is not known here.
    pub fn reset(&self, index: u64) {
        {
            let mut r = self.ring();
            r.events.clear();
            r.horizon = r.horizon.max(index);
            r.horizon_time_ms = None;
            r.last = r.last.max(EventId::after_entry(r.horizon));
        }
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Ends every stream: this member stops applying entries.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Changes whenever events are pushed, the ring is reset or the log is closed.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// The oldest event held and the horizon, for status answers.
    pub fn bounds(&self) -> (Option<EventId>, u64) {
        let r = self.ring();
        (r.events.front().map(|e| e.id), r.horizon)
    }

    /// Where a stream starting at `start` reads from, and what it lost before it.
    pub fn position(&self, start: Start) -> (EventId, Option<Lost>) {
        let r = self.ring();
        match start {
            Start::After(id) => (id, None),
            Start::Now => (r.last, None),
            Start::Since(ms) => {
                let first = r.events.iter().position(|e| e.time_ms >= ms);
                let pos = match first {
                    Some(0) => EventId::after_entry(r.horizon),
                    Some(i) => r.events[i - 1].id,
                    None => r.last,
                };
                let lost = r.horizon > 0
                    && match r.horizon_time_ms {
                        Some(t) => t >= ms,
                        // The times before a snapshot are unknown: lost unless a kept event
                        // older than `ms` shows that the horizon is older too.
                        None => first == Some(0) || r.events.is_empty(),
                    };
                let lost = lost.then_some(Lost {
                    after: None,
                    through: r.horizon,
                });
                (pos, lost)
            }
        }
    }

    /// Up to `max` events after `after`; first what was lost, if `after` is older than what
    /// is held.
    pub fn read(&self, after: EventId, max: usize) -> Read {
        let r = self.ring();
        let mut out = Read::default();
        let mut from = after;
        let held_from = EventId::after_entry(r.horizon);
        if from < held_from {
            out.lost = Some(Lost {
                after: Some(after),
                through: r.horizon,
            });
            from = held_from;
        }
        let start = r.events.partition_point(|e| e.id <= from);
        let end = (start + max).min(r.events.len());
        out.events = r.events.range(start..end).cloned().collect();
        out.more = end < r.events.len();
        out.next = Some(out.events.last().map_or(from, |e| e.id));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(index: u64, seq: u32, time_ms: u64) -> Event {
        let mut e = Event::new("service.created", time_ms, format!("{index}.{seq}"));
        e.id = EventId::new(index, seq);
        e.index = index;
        e
    }

    fn ids(read: &Read) -> Vec<String> {
        read.events.iter().map(|e| e.id.to_string()).collect()
    }

    #[test]
    fn a_reader_resumes_exactly_after_its_last_event() {
        let log = EventLog::new(100, 0);
        log.push(vec![event(3, 0, 30), event(3, 1, 30), event(5, 0, 50)]);
        let all = log.read(EventId::after_entry(0), 10);
        assert_eq!(ids(&all), ["3.0", "3.1", "5.0"]);
        assert!(all.lost.is_none() && !all.more);
        assert_eq!(ids(&log.read(EventId::new(3, 0), 10)), ["3.1", "5.0"]);
        // `?index=3`: after every event of entry 3.
        assert_eq!(ids(&log.read(EventId::after_entry(3), 10)), ["5.0"]);
        assert_eq!(ids(&log.read(EventId::after_entry(4), 10)), ["5.0"]);
        let page = log.read(EventId::after_entry(0), 2);
        assert!(page.more);
        assert_eq!(page.next, Some(EventId::new(3, 1)));
        // A reader ahead of this member (it read from a member further along) waits.
        let ahead = log.read(EventId::new(9, 0), 10);
        assert!(ahead.events.is_empty() && ahead.lost.is_none());
        assert_eq!(ahead.next, Some(EventId::new(9, 0)));
    }

    #[test]
    fn whole_entries_are_evicted_and_a_reader_behind_them_is_told() {
        let log = EventLog::new(3, 0);
        log.push(vec![event(1, 0, 10), event(1, 1, 10)]);
        log.push(vec![event(2, 0, 20), event(2, 1, 20)]);
        // Over capacity: entry 1 goes as a whole, entry 2 stays whole.
        assert_eq!(log.bounds(), (Some(EventId::new(2, 0)), 1));
        let r = log.read(EventId::new(1, 0), 10);
        assert_eq!(
            r.lost,
            Some(Lost {
                after: Some(EventId::new(1, 0)),
                through: 1
            })
        );
        assert_eq!(ids(&r), ["2.0", "2.1"]);
        // Exactly at the horizon: nothing lost.
        let r = log.read(EventId::after_entry(1), 10);
        assert!(r.lost.is_none());
        assert_eq!(ids(&r), ["2.0", "2.1"]);
        // An entry larger than the ring is evicted at once, and said lost.
        log.push((0..5).map(|s| event(3, s, 30)).collect());
        assert_eq!(log.bounds(), (None, 3));
        let r = log.read(EventId::new(2, 1), 10);
        assert_eq!(r.lost.map(|l| l.through), Some(3));
        assert!(r.events.is_empty());
        assert_eq!(r.next, Some(EventId::after_entry(3)));
    }

    #[test]
    fn a_member_started_from_a_snapshot_holds_nothing_before_it() {
        let log = EventLog::new(10, 40);
        log.push(vec![event(41, 0, 1000)]);
        let r = log.read(EventId::new(39, 2), 10);
        assert_eq!(r.lost.map(|l| l.through), Some(40));
        assert_eq!(ids(&r), ["41.0"]);
        assert!(log.read(EventId::after_entry(40), 10).lost.is_none());
        // A snapshot installed later: nothing before it is held any more.
        log.reset(60);
        let r = log.read(EventId::new(41, 0), 10);
        assert_eq!(r.lost.map(|l| l.through), Some(60));
        assert_eq!(log.position(Start::Now).0, EventId::after_entry(60));
        log.push(vec![event(61, 0, 2000)]);
        assert_eq!(ids(&log.read(EventId::after_entry(60), 10)), ["61.0"]);
    }

    #[test]
    fn since_starts_at_the_first_event_at_that_time_and_knows_when_older_ones_went() {
        let log = EventLog::new(3, 0);
        log.push(vec![event(1, 0, 100)]);
        log.push(vec![event(2, 0, 200)]);
        log.push(vec![event(3, 0, 300)]);
        let (pos, lost) = log.position(Start::Since(150));
        assert_eq!((pos, lost), (EventId::new(1, 0), None));
        assert_eq!(ids(&log.read(pos, 10)), ["2.0", "3.0"]);
        // Everything kept is older: start with the next event.
        let (pos, lost) = log.position(Start::Since(500));
        assert_eq!((pos, lost), (EventId::new(3, 0), None));
        log.push(vec![event(4, 0, 400)]);
        // Entry 1 (time 100) was evicted: from 150 nothing is lost, from 50 it is.
        assert_eq!(log.position(Start::Since(150)).1, None);
        let (pos, lost) = log.position(Start::Since(50));
        assert_eq!(lost.map(|l| l.through), Some(1));
        assert_eq!(ids(&log.read(pos, 10)), ["2.0", "3.0", "4.0"]);
        // From a snapshot, the times before it are unknown: lost unless a kept event is older.
        let log = EventLog::new(10, 40);
        log.push(vec![event(41, 0, 1000), event(42, 0, 2000)]);
        assert!(log.position(Start::Since(500)).1.is_some());
        assert!(log.position(Start::Since(1500)).1.is_none());
        assert!(EventLog::new(10, 0).position(Start::Since(5)).1.is_none());
    }

    #[tokio::test]
    async fn readers_are_woken_by_pushes_and_never_hold_them_up() {
        let log = Arc::new(EventLog::new(1000, 0));
        let mut rx = log.subscribe();
        rx.borrow_and_update();
        // A reader that never reads does not stop pushes beyond the ring's size.
        let _idle = log.subscribe();
        for i in 1..=5000u64 {
            log.push(vec![event(i, 0, i)]);
        }
        assert!(rx.has_changed().unwrap());
        assert_eq!(log.bounds(), (Some(EventId::new(4001, 0)), 4000));
        let waiter = {
            let log = log.clone();
            let mut rx = log.subscribe();
            let at = log.position(Start::Now).0;
            tokio::spawn(async move {
                loop {
                    rx.borrow_and_update();
                    let r = log.read(at, 10);
                    if !r.events.is_empty() {
                        return ids(&r);
                    }
                    rx.changed().await.unwrap();
                }
            })
        };
        tokio::task::yield_now().await;
        log.push(vec![event(5001, 0, 1)]);
        assert_eq!(waiter.await.unwrap(), ["5001.0"]);
    }
}
