//! A replica's health as its checks see it: a pure state machine fed with probe results.
//!
//! Docker's and Swarm's rules: a replica is `starting` until its first successful probe; failures
//! during `start_period` do not count; `retries` consecutive failures after it make it `unhealthy`;
//! one success makes it `healthy` again. An unhealthy replica is reported, not restarted here: the
//! controller replaces it (as Swarm's orchestrator does), so a node never fights its controller.

use hoist_proto::node::Health;
use hoist_proto::quantity::parse_duration_ms;
use hoist_proto::service::HealthCheck;

/// A health check with its durations parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub interval_ms: u64,
    pub timeout_ms: u64,
    pub retries: u32,
    pub start_period_ms: u64,
}

impl Timing {
    /// The check's timing; values the controller validated, Docker's defaults if unparsable.
    pub fn from_spec(h: &HealthCheck) -> Timing {
        Timing {
            interval_ms: parse_duration_ms(&h.interval)
                .filter(|&v| v > 0)
                .unwrap_or(30_000),
            timeout_ms: parse_duration_ms(&h.timeout)
                .filter(|&v| v > 0)
                .unwrap_or(30_000),
            retries: u32::try_from(h.retries).unwrap_or(3).max(1),
            start_period_ms: parse_duration_ms(&h.start_period).unwrap_or(0),
        }
    }
}

/// The state of one container's checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthState {
    pub health: Health,
    /// Consecutive failures that counted.
    pub failures: u32,
    /// When the container started (ms since the Unix epoch).
    pub started_ms: u64,
    /// The last probe's outcome, for the operator.
    pub last_message: String,
}

impl HealthState {
    pub fn new(started_ms: u64) -> Self {
        HealthState {
            health: Health::Starting,
            failures: 0,
            started_ms,
            last_message: String::new(),
        }
    }

    /// Records one probe result at `now_ms`; answers the health after it.
    pub fn record(&mut self, t: &Timing, result: Result<(), String>, now_ms: u64) -> Health {
        match result {
            Ok(()) => {
                self.failures = 0;
                self.health = Health::Healthy;
                self.last_message.clear();
            }
            Err(message) => {
                self.last_message = message;
                let in_start_period = now_ms < self.started_ms.saturating_add(t.start_period_ms);
                if !in_start_period || self.health == Health::Healthy {
                    self.failures += 1;
                }
                if self.failures >= t.retries {
                    self.health = Health::Unhealthy;
                }
            }
        }
        self.health
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing(retries: u32, start_period_ms: u64) -> Timing {
        Timing {
            interval_ms: 1000,
            timeout_ms: 500,
            retries,
            start_period_ms,
        }
    }

    fn fail() -> Result<(), String> {
        Err("connection refused".into())
    }

    #[test]
    fn starting_then_healthy_then_unhealthy_after_retries_then_healthy() {
        let t = timing(3, 0);
        let mut s = HealthState::new(0);
        assert_eq!(s.health, Health::Starting);
        assert_eq!(s.record(&t, Ok(()), 1000), Health::Healthy);
        assert_eq!(s.record(&t, fail(), 2000), Health::Healthy);
        assert_eq!(s.record(&t, fail(), 3000), Health::Healthy);
        assert_eq!(s.record(&t, fail(), 4000), Health::Unhealthy);
        assert_eq!(s.last_message, "connection refused");
        assert_eq!(s.record(&t, Ok(()), 5000), Health::Healthy);
        assert_eq!(s.failures, 0);
    }

    #[test]
    fn failures_in_the_start_period_do_not_count() {
        let t = timing(2, 10_000);
        let mut s = HealthState::new(0);
        for now in [1000, 2000, 3000, 9000] {
            assert_eq!(s.record(&t, fail(), now), Health::Starting);
        }
        assert_eq!(s.record(&t, fail(), 10_000), Health::Starting);
        assert_eq!(s.record(&t, fail(), 11_000), Health::Unhealthy);
    }

    #[test]
    fn a_success_in_the_start_period_ends_it() {
        let t = timing(1, 10_000);
        let mut s = HealthState::new(0);
        assert_eq!(s.record(&t, Ok(()), 1000), Health::Healthy);
        assert_eq!(s.record(&t, fail(), 2000), Health::Unhealthy);
    }

    #[test]
    fn timing_from_spec() {
        let h = HealthCheck {
            command: vec!["true".into()],
            http_path: None,
            tcp_port: None,
            interval: "2s".into(),
            timeout: "500ms".into(),
            retries: 4,
            start_period: "1m".into(),
        };
        assert_eq!(
            Timing::from_spec(&h),
            Timing {
                interval_ms: 2000,
                timeout_ms: 500,
                retries: 4,
                start_period_ms: 60_000
            }
        );
    }
}
