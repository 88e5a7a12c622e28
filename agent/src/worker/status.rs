//! What the agent tells the controller about its tasks: each task's status derived from its
//! assignment, its container and its health (pure), and the batching of reports — only what
//! changed since the controller last acknowledged, everything again after a (re-)registration or
//! a new term.

use super::reconcile::{ObservedTask, Phase};
use super::restart::{self, Decision, Policy};
use hoist_proto::cluster::TaskState;
use hoist_proto::node::{Assignment, Health, TaskStatus};
use std::collections::BTreeMap;

/// The status of an assigned task. `obs` is its current container (the primary one), `health` its
/// checks' verdict (`Health::None` without a health check).
pub fn task_status(
    a: &Assignment,
    obs: Option<&ObservedTask>,
    health: Health,
    now_ms: u64,
) -> TaskStatus {
    let mut st = TaskStatus {
        task_id: a.task_id.clone(),
        state: TaskState::Pending,
        health: Health::None,
        container_id: obs.and_then(|o| o.container_id.clone()),
        address: obs.and_then(|o| o.address.clone()),
        exit_code: None,
        message: String::new(),
        restarts: obs.map_or(0, |o| o.restarts_ms.len() as u64),
    };
    let stopping = a.desired != TaskState::Running;
    let Some(o) = obs else {
        if stopping {
            st.state = TaskState::Shutdown;
            st.message = "stopped".into();
        } else {
            st.message = "starting".into();
        }
        return st;
    };
    match &o.phase {
        Phase::Busy if stopping => {
            st.state = TaskState::Running;
            st.message = "stopping".into();
        }
        Phase::Busy => st.message = "starting".into(),
        Phase::Running => {
            st.state = TaskState::Running;
            st.health = health;
            if stopping {
                st.message = "stopping".into();
            }
        }
        Phase::CreateFailed { message } => {
            st.state = TaskState::Failed;
            st.message = message.clone();
        }
        Phase::Exited { code, finished_ms } => {
            st.exit_code = Some(*code);
            let policy = Policy::from_spec(&a.spec.restart);
            let decision = restart::decide(&policy, *code, *finished_ms, &o.restarts_ms, now_ms);
            match decision {
                _ if stopping => {
                    st.state = TaskState::Shutdown;
                    st.message = format!("exited with code {code}");
                }
                Decision::Now | Decision::At(_) => {
                    let wait_s = match decision {
                        Decision::At(t) => t.saturating_sub(now_ms).div_ceil(1000),
                        _ => 0,
                    };
                    st.message = format!("exited with code {code}; restarting in {wait_s}s");
                }
                Decision::Never(why) => {
                    st.state = if *code == 0 {
                        TaskState::Complete
                    } else {
                        TaskState::Failed
                    };
                    st.message = format!("exited with code {code} ({why})");
                }
            }
        }
    }
    st
}

/// The controller's view of our tasks as far as it acknowledged it.
#[derive(Debug, Default)]
pub struct Batcher {
    acked: BTreeMap<String, TaskStatus>,
}

/// Fields that matter for a report; the "restarting in Ns" countdown alone is no change.
fn same(a: &TaskStatus, b: &TaskStatus) -> bool {
    let key = |s: &TaskStatus| {
        (
            s.state,
            s.health,
            s.container_id.clone(),
            s.address.clone(),
            s.exit_code,
            s.restarts,
            s.message.split("; restarting in").next().map(str::to_owned),
        )
    };
    key(a) == key(b)
}

impl Batcher {
    /// Statuses in `current` that differ from what the controller acknowledged.
    pub fn changes(&self, current: &[TaskStatus]) -> Vec<TaskStatus> {
        current
            .iter()
            .filter(|s| self.acked.get(&s.task_id).is_none_or(|a| !same(a, s)))
            .cloned()
            .collect()
    }

    /// The controller acknowledged `sent`.
    pub fn ack(&mut self, sent: Vec<TaskStatus>) {
        for s in sent {
            self.acked.insert(s.task_id.clone(), s);
        }
    }

    /// Forgets tasks that are no longer assigned.
    pub fn retain(&mut self, assigned: impl Fn(&str) -> bool) {
        self.acked.retain(|id, _| assigned(id));
    }

    /// Forgets everything: the next report is a full one.
    pub fn reset(&mut self) {
        self.acked.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hoist_proto::service::{RestartCondition, ServiceSpec};

    fn assignment(desired: TaskState) -> Assignment {
        Assignment {
            task_id: "t1".into(),
            service: "web".into(),
            service_version: 1,
            slot: 0,
            spec: ServiceSpec::new("web", "busybox"),
            desired,
            files: vec![],
            spec_held: false,
        }
    }

    fn observed(phase: Phase) -> ObservedTask {
        ObservedTask {
            task_id: "t1".into(),
            container_id: Some("c1".into()),
            phase,
            restarts_ms: vec![1, 2],
            created_ms: 0,
            address: Some("10.89.1.5".into()),
            image_check: None,
            files: vec![],
        }
    }

    #[test]
    fn running_with_health_and_address() {
        let s = task_status(
            &assignment(TaskState::Running),
            Some(&observed(Phase::Running)),
            Health::Healthy,
            10,
        );
        assert_eq!(s.state, TaskState::Running);
        assert_eq!(s.health, Health::Healthy);
        assert_eq!(s.address.as_deref(), Some("10.89.1.5"));
        assert_eq!(s.container_id.as_deref(), Some("c1"));
        assert_eq!(s.restarts, 2);
    }

    #[test]
    fn exits_are_pending_while_restarting_and_final_otherwise() {
        let mut a = assignment(TaskState::Running);
        let o = observed(Phase::Exited {
            code: 3,
            finished_ms: 1000,
        });
        let s = task_status(&a, Some(&o), Health::None, 1000);
        assert_eq!(s.state, TaskState::Pending);
        assert_eq!(s.exit_code, Some(3));
        // Two restarts inside the window: 4 s of back-off.
        assert_eq!(s.message, "exited with code 3; restarting in 4s");
        a.spec.restart.condition = RestartCondition::None;
        let s = task_status(&a, Some(&o), Health::None, 1000);
        assert_eq!(s.state, TaskState::Failed);
        assert_eq!(s.message, "exited with code 3 (restart policy is none)");
        let ok = observed(Phase::Exited {
            code: 0,
            finished_ms: 1000,
        });
        assert_eq!(
            task_status(&a, Some(&ok), Health::None, 1000).state,
            TaskState::Complete
        );
    }

    #[test]
    fn create_failures_and_shutdowns() {
        let a = assignment(TaskState::Running);
        let mut o = observed(Phase::CreateFailed {
            message: "no such image: nope:1".into(),
        });
        o.container_id = None;
        let s = task_status(&a, Some(&o), Health::None, 0);
        assert_eq!(
            (s.state, s.message.as_str()),
            (TaskState::Failed, "no such image: nope:1")
        );
        let stop = assignment(TaskState::Shutdown);
        assert_eq!(
            task_status(&stop, None, Health::None, 0).state,
            TaskState::Shutdown
        );
        let s = task_status(&stop, Some(&observed(Phase::Running)), Health::Healthy, 0);
        assert_eq!(
            (s.state, s.message.as_str()),
            (TaskState::Running, "stopping")
        );
        assert_eq!(
            task_status(&a, None, Health::None, 0).state,
            TaskState::Pending
        );
    }

    #[test]
    fn batches_carry_only_changes_until_reset() {
        let a = assignment(TaskState::Running);
        let running = task_status(&a, Some(&observed(Phase::Running)), Health::Starting, 0);
        let mut b = Batcher::default();
        assert_eq!(
            b.changes(std::slice::from_ref(&running)),
            vec![running.clone()]
        );
        b.ack(vec![running.clone()]);
        assert!(b.changes(std::slice::from_ref(&running)).is_empty());
        let healthy = TaskStatus {
            health: Health::Healthy,
            ..running.clone()
        };
        assert_eq!(
            b.changes(std::slice::from_ref(&healthy)),
            vec![healthy.clone()]
        );
        // A countdown is not a change.
        let mut w1 = running.clone();
        w1.message = "exited with code 1; restarting in 4s".into();
        b.ack(vec![w1.clone()]);
        let mut w2 = w1.clone();
        w2.message = "exited with code 1; restarting in 3s".into();
        assert!(b.changes(&[w2]).is_empty());
        b.reset();
        assert_eq!(b.changes(std::slice::from_ref(&running)).len(), 1);
        b.ack(vec![running.clone()]);
        b.retain(|_| false);
        assert_eq!(b.changes(&[running]).len(), 1);
    }
}
