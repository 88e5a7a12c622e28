//! What the agent records as it happens, for the metrics: health probe results and latencies
//! (the worker's monitors) and image pulls (every pull: `hoist pull`, a build's `FROM`, a
//! replica's image). Process-wide ([`events`]), so the worker and the image code record with one
//! call and need no handle passed through them.
//!
//! Probes are kept per container id and dropped at the scrape that no longer finds the
//! container, so a removed replica leaves no series behind.

use hoist_common::metrics::LATENCY_BUCKETS;
use hoist_proto::node::Health;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;
use std::collections::{HashMap, HashSet};
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

/// Image pull buckets in seconds: 100 ms to 10 minutes.
const PULL_BUCKETS: [f64; 11] = [
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 600.0,
];

/// One container's probes so far.
#[derive(Debug, Clone)]
pub struct Probes {
    pub successes: u64,
    pub failures: u64,
    /// Probe latencies in seconds.
    pub seconds: Histogram,
    /// The health after the last probe.
    pub health: Health,
}

/// Image pulls so far.
#[derive(Debug, Clone)]
pub struct Pulls {
    pub succeeded: Counter,
    pub failed: Counter,
    pub seconds: Histogram,
}

/// The recorder (see the module doc).
#[derive(Debug)]
pub struct Events {
    probes: Mutex<HashMap<String, Probes>>,
    pulls: Pulls,
}

impl Default for Events {
    fn default() -> Self {
        Events {
            probes: Mutex::default(),
            pulls: Pulls {
                succeeded: Counter::default(),
                failed: Counter::default(),
                seconds: Histogram::new(PULL_BUCKETS),
            },
        }
    }
}

impl Events {
    /// One health probe of `container`: whether it passed, how long it took, and the health
    /// that follows.
    pub fn probe(&self, container: &str, passed: bool, took: Duration, health: Health) {
        let mut all = self.probes.lock().unwrap_or_else(|p| p.into_inner());
        let p = all.entry(container.to_string()).or_insert_with(|| Probes {
            successes: 0,
            failures: 0,
            seconds: Histogram::new(LATENCY_BUCKETS),
            health,
        });
        if passed {
            p.successes += 1;
        } else {
            p.failures += 1;
        }
        p.seconds.observe(took.as_secs_f64());
        p.health = health;
    }

    /// One image pull that ended, well or not, after `took`.
    pub fn pull(&self, ok: bool, took: Duration) {
        if ok {
            self.pulls.succeeded.inc();
        } else {
            self.pulls.failed.inc();
        }
        self.pulls.seconds.observe(took.as_secs_f64());
    }

    /// The probes of the containers in `live`, by container id; the others are forgotten.
    pub fn probes(&self, live: &HashSet<&str>) -> Vec<(String, Probes)> {
        let mut all = self.probes.lock().unwrap_or_else(|p| p.into_inner());
        all.retain(|id, _| live.contains(id.as_str()));
        all.iter().map(|(id, p)| (id.clone(), p.clone())).collect()
    }

    /// The pulls so far (clones share the values).
    pub fn pulls(&self) -> Pulls {
        self.pulls.clone()
    }
}

/// This process's recorder.
pub fn events() -> &'static Events {
    static EVENTS: LazyLock<Events> = LazyLock::new(Events::default);
    &EVENTS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_count_by_outcome_and_forget_removed_containers() {
        let e = Events::default();
        e.probe("c1", true, Duration::from_millis(2), Health::Healthy);
        e.probe("c1", false, Duration::from_millis(20), Health::Unhealthy);
        e.probe("c2", true, Duration::from_millis(1), Health::Starting);
        let p = e.probes(&HashSet::from(["c1"]));
        assert_eq!(p.len(), 1);
        let (id, c1) = &p[0];
        assert_eq!(id, "c1");
        assert_eq!((c1.successes, c1.failures), (1, 1));
        assert_eq!(c1.health, Health::Unhealthy);
        assert_eq!(c1.seconds.count(), 2);
        assert!((c1.seconds.sum() - 0.022).abs() < 1e-9);
        // c2 is gone for good, even if it were live again.
        assert!(e.probes(&HashSet::from(["c1", "c2"])).len() == 1);
    }

    #[test]
    fn pulls_count_by_outcome() {
        let e = Events::default();
        e.pull(true, Duration::from_secs(1));
        e.pull(false, Duration::from_millis(5));
        e.pull(true, Duration::from_secs(3));
        let p = e.pulls();
        assert_eq!((p.succeeded.get(), p.failed.get()), (2, 1));
        assert_eq!(p.seconds.count(), 3);
    }
}
