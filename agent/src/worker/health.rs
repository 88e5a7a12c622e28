//! A replica's health as its checks see it: a pure state machine fed with probe results.
//!
//! Docker's and Swarm's rules: a replica is `starting` until its first successful probe; failures
//! during `start_period` do not count; `retries` consecutive failures after it make it `unhealthy`;
//! one success makes it `healthy` again. An unhealthy replica is reported, not restarted here: the
//! controller replaces it (as Swarm's orchestrator does), so a node never fights its controller.
//!
//! Which check a replica runs ([`effective`]): its service spec's if it has one, else its image's
//! `HEALTHCHECK` ([`Check::from_image`]), as Swarm does; `HEALTHCHECK NONE`, or neither, is no
//! check, and the replica reports `Health::None`.

use super::probe::Probe;
use super::reconcile::ObservedTask;
use hoist_proto::node::{Assignment, Health};
use hoist_proto::quantity::parse_duration_ms;
use hoist_proto::service::HealthCheck;
use hoist_proto::ImageHealthcheck;

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

/// A check as the worker runs it: what to probe, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub probe: Probe,
    pub timing: Timing,
}

/// Docker's defaults for an image check's zero values.
const IMAGE_INTERVAL_MS: u64 = 30_000;
const IMAGE_TIMEOUT_MS: u64 = 30_000;
const IMAGE_RETRIES: u32 = 3;

impl Check {
    /// A service spec's check (`None` only for a spec the controller would not have accepted).
    pub fn from_spec(h: &HealthCheck) -> Option<Check> {
        Some(Check {
            probe: Probe::from_spec(h)?,
            timing: Timing::from_spec(h),
        })
    }

    /// An image's `HEALTHCHECK`, by Docker's rules: `["CMD", argv..]` runs argv in the container,
    /// `["CMD-SHELL", command]` runs the command with the image's `SHELL` (default
    /// `/bin/sh -c`); `["NONE"]`, an empty test or an unknown kind is no check. Zero durations
    /// and retries take Docker's defaults (interval 30s, timeout 30s, start period 0s, 3
    /// retries). Docker's `start_interval` is not used: checks run every interval from the start.
    pub fn from_image(h: &ImageHealthcheck, shell: Option<&[String]>) -> Option<Check> {
        let (kind, rest) = h.test.split_first()?;
        let argv: Vec<String> = match kind.as_str() {
            "CMD" => rest.to_vec(),
            "CMD-SHELL" => {
                let command = rest.join(" ");
                if command.trim().is_empty() {
                    return None;
                }
                let shell = match shell {
                    Some(s) if !s.is_empty() => s.to_vec(),
                    _ => vec!["/bin/sh".to_string(), "-c".to_string()],
                };
                shell.into_iter().chain([command]).collect()
            }
            _ => return None,
        };
        if argv.first().is_none_or(|a| a.is_empty()) {
            return None;
        }
        let ms = |ns: u64, default: u64| match ns {
            0 => default,
            ns => ns.div_ceil(1_000_000),
        };
        Some(Check {
            probe: Probe::Exec(argv),
            timing: Timing {
                interval_ms: ms(h.interval_ns, IMAGE_INTERVAL_MS),
                timeout_ms: ms(h.timeout_ns, IMAGE_TIMEOUT_MS),
                retries: match h.retries {
                    0 => IMAGE_RETRIES,
                    r => r,
                },
                start_period_ms: ms(h.start_period_ns, 0),
            },
        })
    }
}

/// The check a replica runs: the spec's always wins; without one, the image's (`image`, from its
/// container), if any.
pub fn effective(spec: Option<&HealthCheck>, image: Option<&Check>) -> Option<Check> {
    match spec {
        Some(h) => Check::from_spec(h),
        None => image.cloned(),
    }
}

/// The check of assigned task `a` whose current container is `obs`.
pub fn check_for(a: &Assignment, obs: Option<&ObservedTask>) -> Option<Check> {
    effective(
        a.spec.health_check.as_ref(),
        obs.and_then(|o| o.image_check.as_ref()),
    )
}

/// A task's health for its status: `None` without a check, else its monitor's verdict
/// (`monitored`), `Starting` until a monitor runs.
pub fn task_health(check: Option<&Check>, monitored: Option<Health>) -> Health {
    match (check, monitored) {
        (None, _) => Health::None,
        (Some(_), Some(h)) => h,
        (Some(_), None) => Health::Starting,
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

    fn image(test: &[&str]) -> ImageHealthcheck {
        ImageHealthcheck {
            test: test.iter().map(|s| s.to_string()).collect(),
            ..ImageHealthcheck::default()
        }
    }

    fn exec(argv: &[&str]) -> Probe {
        Probe::Exec(argv.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn an_image_check_by_dockers_rules() {
        let c = Check::from_image(&image(&["CMD", "/bin/check", "-q"]), None).unwrap();
        assert_eq!(c.probe, exec(&["/bin/check", "-q"]));
        assert_eq!(
            c.timing,
            Timing {
                interval_ms: 30_000,
                timeout_ms: 30_000,
                retries: 3,
                start_period_ms: 0
            },
            "Docker's defaults for zeros"
        );
        let shell =
            Check::from_image(&image(&["CMD-SHELL", "curl -f localhost || exit 1"]), None).unwrap();
        assert_eq!(
            shell.probe,
            exec(&["/bin/sh", "-c", "curl -f localhost || exit 1"])
        );
        let pwsh = ["pwsh".to_string(), "-Command".to_string()];
        let c = Check::from_image(&image(&["CMD-SHELL", "Test-It"]), Some(&pwsh)).unwrap();
        assert_eq!(
            c.probe,
            exec(&["pwsh", "-Command", "Test-It"]),
            "the image's SHELL"
        );
        for none in [
            &["NONE"][..],
            &[],
            &["CMD"],
            &["CMD-SHELL", " "],
            &["WHAT", "x"],
        ] {
            assert_eq!(Check::from_image(&image(none), None), None, "{none:?}");
        }
        let timed = ImageHealthcheck {
            test: vec!["CMD".into(), "true".into()],
            interval_ns: 2_000_000_000,
            timeout_ns: 1_500_000,
            start_period_ns: 60_000_000_000,
            start_interval_ns: 5_000_000_000,
            retries: 5,
        };
        assert_eq!(
            Check::from_image(&timed, None).unwrap().timing,
            Timing {
                interval_ms: 2000,
                timeout_ms: 2,
                retries: 5,
                start_period_ms: 60_000
            }
        );
    }

    #[test]
    fn the_spec_check_wins_over_the_image_check() {
        let from_image = Check::from_image(&image(&["CMD", "false"]), None).unwrap();
        let spec = HealthCheck {
            command: vec![],
            http_path: None,
            tcp_port: Some(80),
            interval: "1s".into(),
            timeout: "1s".into(),
            retries: 2,
            start_period: "0s".into(),
        };
        let c = effective(Some(&spec), Some(&from_image)).unwrap();
        assert_eq!(c.probe, Probe::Tcp(80));
        assert_eq!(effective(None, Some(&from_image)), Some(from_image.clone()));
        assert_eq!(effective(None, None), None);
        assert_eq!(task_health(None, Some(Health::Healthy)), Health::None);
        assert_eq!(task_health(Some(&from_image), None), Health::Starting);
        assert_eq!(
            task_health(Some(&from_image), Some(Health::Unhealthy)),
            Health::Unhealthy
        );
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
