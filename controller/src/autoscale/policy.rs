//! The scaling policy, pure: from what was asked (a step, a count, a value against its target)
//! and what the replicated history says, the replica count to commit and what limited it.
//!
//! The order is Kubernetes' HPA's: a raw recommendation, clamped to the bounds; a scale-up waits
//! out `cooldown_up` after the last one; a scale-down goes only as low as the highest
//! recommendation of the last `stabilization_down`, so a load that dips for a moment (or
//! oscillates around its threshold) scales nothing down.

use hoist_proto::service::Autoscale;

/// What a hook or the query asks for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Ask {
    /// `up` or `down` by the spec's `step`.
    Step { up: bool },
    /// An exact count (`{"replicas": N}`).
    Replicas(i64),
    /// Proportional: `value` per replica against `target` per replica.
    Value { value: f64, target: f64 },
}

/// A proportional ask within this ratio of its target changes nothing (HPA's tolerance), so
/// noise around the target does not scale.
pub const TOLERANCE: f64 = 0.1;

/// What the history says, besides the service's bounds.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub current: i64,
    pub bounds: &'a Autoscale,
    pub now_ms: u64,
    /// When the last scale-up was committed.
    pub last_up_ms: Option<u64>,
    /// Recommendations (time, replicas) seen lately, oldest first: the window of
    /// `stabilization_down` is taken from them.
    pub recent: &'a [(u64, i64)],
}

/// The decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// What the ask alone recommends, within the bounds (what the stabilization window keeps).
    pub recommendation: i64,
    pub to: i64,
    /// What limited it, for the history; empty when nothing did.
    pub detail: String,
}

/// The count that `ask` recommends before the bounds: the ask alone.
pub fn raw(ask: Ask, current: i64, bounds: &Autoscale) -> (i64, Option<String>) {
    match ask {
        Ask::Step { up: true } => (current.saturating_add(bounds.step_or_default()), None),
        Ask::Step { up: false } => (current.saturating_sub(bounds.step_or_default()), None),
        Ask::Replicas(n) => (n, None),
        Ask::Value { value, target } => {
            let ratio = value / target;
            if current > 0 && (ratio - 1.0).abs() <= TOLERANCE {
                let note = format!("within {:.0}% of the target", TOLERANCE * 100.0);
                return (current, Some(note));
            }
            // A service at 0 replicas has no per-replica load: one replica per target's worth.
            let want = if current > 0 {
                current as f64 * ratio
            } else {
                ratio
            };
            (want.ceil().clamp(0.0, i64::MAX as f64) as i64, None)
        }
    }
}

/// Decides (see the module doc).
pub fn decide(ask: Ask, cx: &Context) -> Verdict {
    let b = cx.bounds;
    let (raw, note) = raw(ask, cx.current, b);
    let recommendation = raw.clamp(b.min, b.max);
    let mut details: Vec<String> = note.into_iter().collect();
    if recommendation < raw {
        details.push(format!("clamped to max {}", b.max));
    } else if recommendation > raw {
        details.push(format!("clamped to min {}", b.min));
    }
    let mut to = recommendation;
    if to > cx.current {
        let cooldown = b.cooldown_up_ms();
        if let Some(last) = cx.last_up_ms {
            let ready = last.saturating_add(cooldown);
            if cx.now_ms < ready {
                details.push(format!("cooldown_up: {} left", seconds(ready - cx.now_ms)));
                to = cx.current;
            }
        }
    } else if to < cx.current {
        let window = b.stabilization_down_ms();
        let since = cx.now_ms.saturating_sub(window);
        let highest = cx
            .recent
            .iter()
            .filter(|(t, _)| *t >= since)
            .map(|(_, r)| *r)
            .max()
            .unwrap_or(to);
        let floor = highest.clamp(to, cx.current);
        if floor > to {
            details.push(format!(
                "held by stabilization_down: the highest recommendation of the last {} is {highest}",
                seconds(window)
            ));
            to = floor;
        }
    }
    Verdict {
        recommendation,
        to,
        detail: details.join("; "),
    }
}

/// `12s`, `1.5s`, `5m`.
fn seconds(ms: u64) -> String {
    if ms >= 60_000 && ms.is_multiple_of(60_000) {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{:.1}s", ms as f64 / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hoist_proto::service::Number;

    fn bounds(min: i64, max: i64) -> Autoscale {
        Autoscale {
            min,
            max,
            cooldown_up: Some("30s".into()),
            stabilization_down: Some("60s".into()),
            ..Autoscale::default()
        }
    }

    fn cx<'a>(current: i64, b: &'a Autoscale, recent: &'a [(u64, i64)]) -> Context<'a> {
        Context {
            current,
            bounds: b,
            now_ms: 100_000,
            last_up_ms: None,
            recent,
        }
    }

    #[test]
    fn steps_up_and_down_by_the_spec_step() {
        let mut b = bounds(1, 10);
        b.step = Some(2);
        assert_eq!(decide(Ask::Step { up: true }, &cx(3, &b, &[])).to, 5);
        assert_eq!(decide(Ask::Step { up: false }, &cx(3, &b, &[])).to, 1);
    }

    #[test]
    fn a_request_outside_the_bounds_is_clamped_and_says_so() {
        let b = bounds(2, 5);
        let v = decide(Ask::Replicas(9), &cx(3, &b, &[]));
        assert_eq!((v.to, v.detail.as_str()), (5, "clamped to max 5"));
        let v = decide(Ask::Step { up: false }, &cx(2, &b, &[]));
        assert_eq!((v.to, v.detail.as_str()), (2, "clamped to min 2"));
    }

    #[test]
    fn proportional_scaling_goes_to_the_ceiling_and_ignores_noise() {
        let b = bounds(1, 20);
        let ask = |value| Ask::Value {
            value,
            target: 100.0,
        };
        assert_eq!(decide(ask(250.0), &cx(2, &b, &[])).to, 5);
        assert_eq!(decide(ask(201.0), &cx(2, &b, &[])).to, 5);
        let v = decide(ask(105.0), &cx(4, &b, &[]));
        assert_eq!((v.to, v.detail.as_str()), (4, "within 10% of the target"));
        // From zero replicas: one per target's worth.
        assert_eq!(decide(ask(250.0), &cx(0, &bounds(0, 9), &[])).to, 3);
        // A value that overflows is clamped, not wrapped.
        assert_eq!(decide(ask(f64::MAX), &cx(2, &b, &[])).to, 20);
        let _ = Number(1.0);
    }

    #[test]
    fn a_scale_up_waits_out_its_cooldown() {
        let b = bounds(1, 10);
        let mut c = cx(3, &b, &[]);
        c.last_up_ms = Some(88_000);
        let v = decide(Ask::Step { up: true }, &c);
        assert_eq!((v.to, v.detail.as_str()), (3, "cooldown_up: 18s left"));
        assert_eq!(v.recommendation, 4);
        c.last_up_ms = Some(70_000);
        assert_eq!(decide(Ask::Step { up: true }, &c).to, 4);
        // "0s" allows back-to-back scale-ups.
        let mut b0 = bounds(1, 10);
        b0.cooldown_up = Some("0s".into());
        let mut c = cx(3, &b0, &[]);
        c.last_up_ms = Some(100_000);
        assert_eq!(decide(Ask::Step { up: true }, &c).to, 4);
    }

    #[test]
    fn a_scale_down_goes_no_lower_than_the_window_highest() {
        let b = bounds(1, 10);
        // 30 s ago something recommended 6; 90 s ago 9 (outside the 60 s window).
        let recent = [(10_000, 9), (70_000, 6), (95_000, 3)];
        let v = decide(Ask::Replicas(2), &cx(8, &b, &recent));
        assert_eq!(v.to, 6);
        assert!(
            v.detail.starts_with("held by stabilization_down"),
            "{}",
            v.detail
        );
        // Once the window holds only low recommendations, down it goes.
        let v = decide(Ask::Replicas(2), &cx(8, &b, &[(95_000, 3)]));
        assert_eq!(v.to, 3);
        // Never above the current count.
        let v = decide(Ask::Replicas(2), &cx(4, &b, &[(95_000, 9)]));
        assert_eq!(v.to, 4);
    }

    #[test]
    fn an_oscillating_load_scales_once_up_and_not_down_within_the_window() {
        // The load crosses its threshold back and forth every 15 s for 10 minutes: the
        // policy scales up once, then holds (the window always holds the high recommendation).
        let mut b = bounds(1, 10);
        b.stabilization_down = Some("300s".into());
        let mut current = 2;
        let mut recent: Vec<(u64, i64)> = vec![];
        let mut last_up = None;
        let mut events = 0;
        for i in 0..40u64 {
            let now = i * 15_000;
            // The total load; the query answers it per replica.
            let total = if i % 2 == 0 { 320.0 } else { 120.0 };
            let value = total / current as f64;
            let c = Context {
                current,
                bounds: &b,
                now_ms: now,
                last_up_ms: last_up,
                recent: &recent,
            };
            let v = decide(
                Ask::Value {
                    value,
                    target: 100.0,
                },
                &c,
            );
            recent.push((now, v.recommendation));
            if v.to != current {
                events += 1;
                if v.to > current {
                    last_up = Some(now);
                }
                current = v.to;
            }
        }
        assert_eq!(events, 1, "one scale-up, then held");
        assert_eq!(current, 4);
    }
}
