//! When the worker tells the leader about this node's named volumes (`POST /v1/agent/volumes`,
//! for `hoist node volumes`), pure: the loop in `worker/mod.rs` reads the volumes (names, users,
//! creation; a directory read and the in-memory index) every [`CHECK_EVERY`] and sends a report:
//!
//! - at once when the names or users changed since the last report the leader took (or the node
//!   id: a new registration), or when a new leader appeared (the loop is woken);
//! - every [`REPORT_EVERY`] otherwise, so a leader that restarted or took over learns them;
//! - after a failure, again after [`RETRY_AFTER`] at the earliest (an older leader refuses the
//!   report: it is not said in format 1 at all, and an older format-2 leader answers 404).
//!
//! Sizes are the costly part (a walk of every file), so they are never a reason to report: all
//! volumes are walked at most once every [`SIZE_EVERY`], and only when a report is being made; a
//! volume not measured yet (new since the last walk) is walked alone with the report that first
//! lists it. A report carries the sizes of the last walk, so they may be a minute old.

use hoist_proto::node::{NodeVolume, VolumeReport};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How often the volumes are read and compared with the last report.
pub const CHECK_EVERY: Duration = Duration::from_secs(2);
/// The longest a leader goes without a report.
pub const REPORT_EVERY: Duration = Duration::from_secs(30);
/// The shortest time between two walks that measure the volumes' sizes.
pub const SIZE_EVERY: Duration = Duration::from_secs(60);
/// After a failed report.
pub const RETRY_AFTER: Duration = Duration::from_secs(10);

/// What a report says that makes a new one worth sending: the node and each volume's name and
/// users.
type Key = (String, Vec<(String, Vec<String>)>);

fn key_of(node_id: &str, volumes: &[NodeVolume]) -> Key {
    (
        node_id.to_string(),
        volumes
            .iter()
            .map(|v| (v.name.clone(), v.used_by.clone()))
            .collect(),
    )
}

#[derive(Debug, Default)]
pub struct Reporter {
    /// What the leader last took, and when.
    sent: Option<(Key, Instant)>,
    /// No attempt before this, after a failure.
    retry_at: Option<Instant>,
    /// The sizes of the last walk, and when it ended.
    sizes: BTreeMap<String, u64>,
    sized_at: Option<Instant>,
}

impl Reporter {
    /// Whether `volumes` (of `node_id`, as read now) are to be reported.
    pub fn due(&self, node_id: &str, volumes: &[NodeVolume], now: Instant) -> bool {
        if self.retry_at.is_some_and(|t| now < t) {
            return false;
        }
        match &self.sent {
            None => true,
            Some((key, at)) => {
                *key != key_of(node_id, volumes)
                    || now.saturating_duration_since(*at) >= REPORT_EVERY
            }
        }
    }

    /// The volumes to walk before the report of `volumes` is made, and whether that is all of
    /// them (the minute is up) or only those never measured.
    pub fn to_measure(&self, volumes: &[NodeVolume], now: Instant) -> (Vec<String>, bool) {
        let all = self
            .sized_at
            .is_none_or(|t| now.saturating_duration_since(t) >= SIZE_EVERY);
        let names = volumes
            .iter()
            .filter(|v| all || !self.sizes.contains_key(&v.name))
            .map(|v| v.name.clone())
            .collect();
        (names, all)
    }

    /// Keeps the sizes of a walk that ended at `now`; a walk of `all` replaces every size (a
    /// volume gone is forgotten) and starts the next minute.
    pub fn measured(&mut self, sizes: BTreeMap<String, u64>, all: bool, now: Instant) {
        if all {
            self.sizes = sizes;
            self.sized_at = Some(now);
        } else {
            self.sizes.extend(sizes);
        }
    }

    /// The report of `volumes`, with the sizes of the last walk.
    pub fn report(&self, node_id: &str, volumes: &[NodeVolume]) -> VolumeReport {
        VolumeReport {
            node_id: node_id.to_string(),
            volumes: volumes
                .iter()
                .map(|v| NodeVolume {
                    size_bytes: self.sizes.get(&v.name).copied(),
                    ..v.clone()
                })
                .collect(),
        }
    }

    /// The leader took the report of `volumes` at `now`.
    pub fn sent(&mut self, node_id: &str, volumes: &[NodeVolume], now: Instant) {
        self.sent = Some((key_of(node_id, volumes), now));
        self.retry_at = None;
    }

    /// Sending failed at `now`.
    pub fn failed(&mut self, now: Instant) {
        self.retry_at = Some(now + RETRY_AFTER);
    }

    /// Report at the next check whatever changed (a new leader knows nothing yet).
    pub fn forget_sent(&mut self) {
        self.sent = None;
        self.retry_at = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vol(name: &str, users: &[&str]) -> NodeVolume {
        NodeVolume {
            name: name.into(),
            size_bytes: None,
            used_by: users.iter().map(|u| u.to_string()).collect(),
            created_ms: Some(1),
        }
    }

    #[test]
    fn a_report_goes_first_on_change_then_every_30s() {
        let t0 = Instant::now();
        let mut r = Reporter::default();
        let v1 = vec![vol("db", &["web.1.aa"])];
        assert!(r.due("n1", &v1, t0), "the first report goes at once");
        r.sent("n1", &v1, t0);
        assert!(!r.due("n1", &v1, t0 + CHECK_EVERY), "nothing changed");
        assert!(r.due("n1", &v1, t0 + REPORT_EVERY), "the slow beat");
        // A user more, a volume more, a volume less, another node id: at once.
        let more_users = vec![vol("db", &["web.1.aa", "web.1.bb"])];
        assert!(r.due("n1", &more_users, t0 + CHECK_EVERY));
        let more = vec![vol("db", &["web.1.aa"]), vol("logs", &[])];
        assert!(r.due("n1", &more, t0 + CHECK_EVERY));
        assert!(r.due("n1", &[], t0 + CHECK_EVERY));
        assert!(r.due("n2", &v1, t0 + CHECK_EVERY));
        // Sizes and creation times alone are no change.
        let mut sized = v1.clone();
        sized[0].size_bytes = Some(10);
        sized[0].created_ms = Some(2);
        assert!(!r.due("n1", &sized, t0 + CHECK_EVERY));
        // A new leader: everything again.
        r.forget_sent();
        assert!(r.due("n1", &v1, t0 + CHECK_EVERY));
    }

    #[test]
    fn a_failed_report_is_retried_after_a_pause() {
        let t0 = Instant::now();
        let mut r = Reporter::default();
        let v = vec![vol("db", &[])];
        r.failed(t0);
        assert!(!r.due("n1", &v, t0 + CHECK_EVERY));
        assert!(r.due("n1", &v, t0 + RETRY_AFTER));
        r.sent("n1", &v, t0 + RETRY_AFTER);
        assert!(!r.due("n1", &v, t0 + RETRY_AFTER + CHECK_EVERY));
    }

    #[test]
    fn sizes_are_walked_at_most_once_a_minute_and_ride_along() {
        let t0 = Instant::now();
        let mut r = Reporter::default();
        let db = [vol("db", &["a"])];
        assert_eq!(r.to_measure(&db, t0), (vec!["db".to_string()], true));
        r.measured(BTreeMap::from([("db".to_string(), 4096)]), true, t0);
        assert_eq!(r.to_measure(&db, t0 + REPORT_EVERY), (vec![], false));
        assert!(r.to_measure(&db, t0 + SIZE_EVERY).1);
        // A volume made since the walk: walked alone, once.
        let two = [vol("db", &["a"]), vol("new", &[])];
        let t1 = t0 + CHECK_EVERY;
        assert_eq!(r.to_measure(&two, t1), (vec!["new".to_string()], false));
        assert_eq!(r.report("n1", &two).volumes[1].size_bytes, None);
        r.measured(BTreeMap::from([("new".to_string(), 0)]), false, t1);
        assert_eq!(r.to_measure(&two, t1), (vec![], false));
        let report = r.report("n1", &two);
        assert_eq!(report.node_id, "n1");
        assert_eq!(report.volumes[0].size_bytes, Some(4096));
        assert_eq!(report.volumes[0].used_by, ["a"]);
        assert_eq!(report.volumes[1].size_bytes, Some(0));
        // The minute's walk replaces every size: a volume gone is forgotten.
        let t2 = t0 + SIZE_EVERY;
        r.measured(BTreeMap::from([("new".to_string(), 8192)]), true, t2);
        assert_eq!(r.report("n1", &db).volumes[0].size_bytes, None);
        assert_eq!(
            r.to_measure(&two, t2 + CHECK_EVERY),
            (vec!["db".to_string()], false)
        );
    }
}
