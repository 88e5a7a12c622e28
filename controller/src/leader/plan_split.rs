//! A plan cut into Raft entries of bounded size. One reconcile pass can place a whole service at
//! once (100,000 replicas after `hoist service create`), and a plan is one Raft entry: at a few
//! hundred bytes per placement that entry would be tens of MiB, which no follower can take within
//! openraft 0.9's AppendEntries budget (one heartbeat interval; `raft/network.rs` splits bodies
//! over 1 MiB only between entries, never inside one), so it would be retried forever while
//! nothing else commits. Each part is applied, and re-checked, on its own in order.

use hoist_proto::raft::Plan;

/// Placements per Raft entry: about half a MiB of tasks.
pub const PLACEMENTS_PER_ENTRY: usize = 2_000;

/// `plan` as parts of at most `max` placements each, in order. The first part carries the
/// stops, removals and drains (small, and what frees room for the placements); the last carries
/// the rollout progress, recorded once the placements before it were applied. A plan within
/// the bound stays whole. Pure.
pub fn split(mut plan: Plan, max: usize) -> Vec<Plan> {
    let max = max.max(1);
    if plan.place.len() <= max {
        return vec![plan];
    }
    let rollouts = std::mem::take(&mut plan.rollouts);
    let mut place = std::mem::take(&mut plan.place).into_iter();
    let mut parts = Vec::new();
    let mut first = Some(plan);
    loop {
        let chunk: Vec<_> = place.by_ref().take(max).collect();
        if chunk.is_empty() {
            break;
        }
        let mut part = first.take().unwrap_or_default();
        part.place = chunk;
        parts.push(part);
    }
    if let Some(last) = parts.last_mut() {
        last.rollouts = rollouts;
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::tests::test_task;
    use hoist_proto::cluster::{Rollout, RolloutState, Task};

    fn placements(n: usize) -> Vec<Task> {
        (0..n)
            .map(|i| test_task(&format!("t{i}"), "web", 2, i as u64, "n1"))
            .collect()
    }

    fn rollout() -> Rollout {
        Rollout {
            version: 2,
            from_version: 1,
            state: RolloutState::Updating,
            updated: 0,
            total: 5,
            failures: 0,
            message: String::new(),
            started_ms: 0,
            updated_ms: 0,
            batch_started_ms: 0,
            rollback_of: None,
        }
    }

    #[test]
    fn a_large_plan_is_cut_in_order_with_stops_first_and_rollouts_last() {
        let plan = Plan {
            place: placements(5),
            stop: vec![("old".into(), "scaled down".into())],
            remove: vec!["gone".into()],
            rollouts: vec![("web".into(), rollout())],
            drain: vec![("leaving".into(), "update".into())],
        };
        let parts = split(plan.clone(), 2);
        let ids: Vec<Vec<&str>> = parts
            .iter()
            .map(|p| p.place.iter().map(|t| t.id.as_str()).collect())
            .collect();
        assert_eq!(ids, vec![vec!["t0", "t1"], vec!["t2", "t3"], vec!["t4"]]);
        assert_eq!(
            (parts[0].stop.clone(), parts[0].remove.clone()),
            (plan.stop, plan.remove)
        );
        assert_eq!(parts[0].drain, plan.drain);
        assert!(parts[1..]
            .iter()
            .all(|p| p.stop.is_empty() && p.remove.is_empty() && p.drain.is_empty()));
        assert!(parts[..2].iter().all(|p| p.rollouts.is_empty()));
        assert_eq!(parts[2].rollouts, plan.rollouts);
    }

    #[test]
    fn a_plan_within_the_bound_stays_whole() {
        let plan = Plan {
            place: placements(3),
            rollouts: vec![("web".into(), rollout())],
            ..Default::default()
        };
        assert_eq!(split(plan.clone(), 3), vec![plan.clone()]);
        assert_eq!(split(Plan::default(), 3), vec![Plan::default()]);
        // A bound of 0 is taken as 1.
        assert_eq!(split(plan, 0).len(), 3);
    }
}
