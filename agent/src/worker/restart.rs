//! The restart policy of a task, as pure arithmetic: given how a container exited and when the
//! agent restarted it before, restart now, later, or never.
//!
//! The delay starts at `restart.delay` and doubles with every restart still inside `restart.window`,
//! up to five minutes; once restarts age out of the window the delay shrinks again. With
//! `max_attempts > 0`, a task restarted that many times within the window is given up.

use hoist_proto::quantity::parse_duration_ms;
use hoist_proto::service::{RestartCondition, RestartPolicy};

/// The longest back-off between two restarts.
pub const MAX_DELAY_MS: u64 = 5 * 60 * 1000;

/// A restart policy with its durations parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub condition: RestartCondition,
    /// 0 is unlimited.
    pub max_attempts: u64,
    pub delay_ms: u64,
    pub window_ms: u64,
}

impl Policy {
    /// The spec's policy; durations the controller validated, with its defaults if unparsable.
    pub fn from_spec(p: &RestartPolicy) -> Policy {
        Policy {
            condition: p.condition,
            max_attempts: u64::try_from(p.max_attempts).unwrap_or(0),
            delay_ms: parse_duration_ms(&p.delay).unwrap_or(1000),
            window_ms: parse_duration_ms(&p.window).unwrap_or(5 * 60 * 1000),
        }
    }
}

/// What to do with a task whose container exited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Restart it now.
    Now,
    /// Restart it at this time (milliseconds since the Unix epoch).
    At(u64),
    /// Leave it exited; the reason, for the operator.
    Never(String),
}

/// Restarts in `restarts_ms` (times the agent restarted the task) that are inside the window.
pub fn recent(p: &Policy, restarts_ms: &[u64], now_ms: u64) -> usize {
    restarts_ms
        .iter()
        .filter(|&&t| t.saturating_add(p.window_ms) > now_ms)
        .count()
}

/// The back-off before the next restart, after `recent` restarts inside the window.
pub fn delay_ms(p: &Policy, recent: usize) -> u64 {
    let factor = 1u64.checked_shl(recent.min(63) as u32).unwrap_or(u64::MAX);
    p.delay_ms.saturating_mul(factor).min(MAX_DELAY_MS)
}

/// Decides the fate of a container that exited with `exit_code` at `finished_ms`.
pub fn decide(
    p: &Policy,
    exit_code: i32,
    finished_ms: u64,
    restarts_ms: &[u64],
    now_ms: u64,
) -> Decision {
    match p.condition {
        RestartCondition::None => return Decision::Never("restart policy is none".into()),
        RestartCondition::OnFailure if exit_code == 0 => {
            return Decision::Never("restart policy is on-failure and it succeeded".into())
        }
        _ => {}
    }
    let n = recent(p, restarts_ms, now_ms);
    if p.max_attempts > 0 && n as u64 >= p.max_attempts {
        return Decision::Never(format!(
            "gave up after {n} restarts within {}",
            humantime::format_duration(std::time::Duration::from_millis(p.window_ms))
        ));
    }
    let due = finished_ms.saturating_add(delay_ms(p, n));
    if now_ms >= due {
        Decision::Now
    } else {
        Decision::At(due)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(condition: RestartCondition, max: u64) -> Policy {
        Policy {
            condition,
            max_attempts: max,
            delay_ms: 1000,
            window_ms: 60_000,
        }
    }

    #[test]
    fn conditions() {
        let any = policy(RestartCondition::Any, 0);
        assert_eq!(decide(&any, 0, 0, &[], 1000), Decision::Now);
        assert_eq!(decide(&any, 1, 0, &[], 999), Decision::At(1000));
        let onf = policy(RestartCondition::OnFailure, 0);
        assert!(matches!(decide(&onf, 0, 0, &[], 5000), Decision::Never(_)));
        assert_eq!(decide(&onf, 137, 0, &[], 5000), Decision::Now);
        let none = policy(RestartCondition::None, 0);
        assert_eq!(
            decide(&none, 1, 0, &[], 5000),
            Decision::Never("restart policy is none".into())
        );
    }

    #[test]
    fn backoff_doubles_up_to_five_minutes_and_shrinks_outside_the_window() {
        let p = policy(RestartCondition::Any, 0);
        assert_eq!(delay_ms(&p, 0), 1000);
        assert_eq!(delay_ms(&p, 1), 2000);
        assert_eq!(delay_ms(&p, 3), 8000);
        assert_eq!(delay_ms(&p, 9), MAX_DELAY_MS);
        assert_eq!(delay_ms(&p, 500), MAX_DELAY_MS);
        // Two restarts inside the window: 4 s after the exit.
        let now = 100_000;
        assert_eq!(
            decide(&p, 1, now, &[now - 10, now - 5], now),
            Decision::At(now + 4000)
        );
        // The same restarts 61 s ago no longer count.
        let later = now + 61_000;
        assert_eq!(
            decide(&p, 1, later - 1000, &[now - 10, now - 5], later),
            Decision::Now
        );
    }

    #[test]
    fn max_attempts_within_the_window() {
        let p = policy(RestartCondition::Any, 3);
        let now = 200_000;
        let three = [now - 3000, now - 2000, now - 1000];
        match decide(&p, 1, now, &three, now + 10_000) {
            Decision::Never(m) => assert_eq!(m, "gave up after 3 restarts within 1m"),
            d => panic!("{d:?}"),
        }
        // Once one ages out, it may restart again.
        assert!(matches!(
            decide(&p, 1, now, &three, now + 58_000),
            Decision::Now
        ));
    }

    #[test]
    fn zero_delay_restarts_at_once() {
        let mut p = policy(RestartCondition::Any, 0);
        p.delay_ms = 0;
        assert_eq!(decide(&p, 1, 50, &[1, 2, 3], 50), Decision::Now);
    }
}
