//! Reconciliation: what the agent must do so that the containers it runs match its assignments.
//! Pure — assignments and observed containers in, actions out — so every rule is tested directly.
//!
//! Rules:
//! - a task assigned `Running` with no container is started;
//! - a container whose task is assigned `Shutdown`, or no longer assigned at all, is stopped and removed;
//! - an exited container is restarted per the task's restart policy (see [`super::restart`]);
//! - of two containers for one task (a crash between create and remove), the running or newest stays;
//! - a running container whose assignment names a newer version of a secret or config it has
//!   gets the new version in place, without a restart (see [`super::files::stale`]);
//! - a task with an action in flight is left alone until it completes;
//! - containers without the `hoist.task` label are not the worker's and are never looked at
//!   (the caller only passes labelled ones).

use super::restart::{self, Decision, Policy};
use hoist_proto::cluster::TaskState;
use hoist_proto::node::Assignment;
use std::collections::BTreeMap;

/// How a task's container looks to the agent right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    Running,
    Exited {
        code: i32,
        /// When it exited, milliseconds since the Unix epoch.
        finished_ms: u64,
    },
    /// Creating the container failed (bad image, invalid spec): terminal, the controller replaces it.
    CreateFailed {
        message: String,
    },
    /// An action is in flight (starting, restarting, removing).
    Busy,
}

/// One container (or failed attempt) of an orchestrated task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedTask {
    pub task_id: String,
    pub container_id: Option<String>,
    pub phase: Phase,
    /// Times the agent restarted this task, oldest first (ms since the Unix epoch).
    pub restarts_ms: Vec<u64>,
    /// Creation time, to tell the newest of duplicates.
    pub created_ms: u64,
    /// The container's address on the node's bridge.
    pub address: Option<String>,
    /// The check its image's `HEALTHCHECK` makes, used when the spec has none
    /// ([`super::health::effective`]).
    pub image_check: Option<super::health::Check>,
    /// The versions of the secrets and configs the container has (none without a container).
    pub files: Vec<hoist_proto::files::FileVersion>,
}

/// What the executor must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Create and start a container for the task.
    Start { task: Assignment },
    /// Remove the exited container and start a new one; `restarts_ms` already includes this restart.
    Restart {
        task: Assignment,
        old_container: String,
        restarts_ms: Vec<u64>,
    },
    /// Stop (grace period, then SIGKILL) and remove a container.
    Remove {
        task_id: String,
        container_id: String,
        reason: String,
    },
    /// Fetch the secrets and configs the running container has an older version of and replace
    /// its files in place (with the signal their references ask for); no restart. Not an action
    /// that makes the task busy: the container keeps running and reporting as it is.
    UpdateFiles {
        task: Assignment,
        container_id: String,
    },
}

/// The actions that bring `observed` to `desired` at time `now_ms`.
pub fn reconcile(desired: &[Assignment], observed: &[ObservedTask], now_ms: u64) -> Vec<Action> {
    let mut by_task: BTreeMap<&str, Vec<&ObservedTask>> = BTreeMap::new();
    for o in observed {
        by_task.entry(o.task_id.as_str()).or_default().push(o);
    }
    let wanted: BTreeMap<&str, &Assignment> = desired
        .iter()
        .filter(|a| a.desired == TaskState::Running)
        .map(|a| (a.task_id.as_str(), a))
        .collect();
    let mut actions = Vec::new();
    for (task_id, list) in &by_task {
        if wanted.contains_key(task_id) || list.iter().any(|o| o.phase == Phase::Busy) {
            continue;
        }
        let reason = if desired.iter().any(|a| a.task_id == *task_id) {
            "desired state is shutdown"
        } else {
            "no longer assigned to this node"
        };
        for o in list {
            if let Some(c) = &o.container_id {
                actions.push(remove(task_id, c, reason));
            }
        }
    }
    for (task_id, task) in &wanted {
        let Some(list) = by_task.get(task_id) else {
            actions.push(Action::Start {
                task: (*task).clone(),
            });
            continue;
        };
        if list.iter().any(|o| o.phase == Phase::Busy) {
            continue;
        }
        let keep = primary(list);
        for o in list.iter().filter(|o| !std::ptr::eq(**o, keep)) {
            if let Some(c) = &o.container_id {
                actions.push(remove(task_id, c, "a newer container runs this task"));
            }
        }
        if keep.phase == Phase::Running
            && !task.files.is_empty()
            && !super::files::stale(&super::files::followed(task), &keep.files).is_empty()
        {
            if let Some(c) = &keep.container_id {
                actions.push(Action::UpdateFiles {
                    task: (*task).clone(),
                    container_id: c.clone(),
                });
            }
        }
        if let Phase::Exited { code, finished_ms } = keep.phase {
            let policy = Policy::from_spec(&task.spec.restart);
            if restart::decide(&policy, code, finished_ms, &keep.restarts_ms, now_ms)
                == Decision::Now
            {
                let mut restarts_ms = keep.restarts_ms.clone();
                restarts_ms.push(now_ms);
                actions.push(Action::Restart {
                    task: (*task).clone(),
                    old_container: keep.container_id.clone().unwrap_or_default(),
                    restarts_ms,
                });
            }
        }
    }
    actions
}

/// The container that stands for the task: a running one, else the newest. `list` is not empty.
pub fn primary<'a>(list: &[&'a ObservedTask]) -> &'a ObservedTask {
    list.iter()
        .copied()
        .max_by_key(|o| (o.phase == Phase::Running, o.created_ms))
        .expect("a task is observed only with at least one container")
}

fn remove(task_id: &str, container_id: &str, reason: &str) -> Action {
    Action::Remove {
        task_id: task_id.into(),
        container_id: container_id.into(),
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hoist_proto::service::{RestartCondition, ServiceSpec};

    fn task(id: &str, desired: TaskState) -> Assignment {
        Assignment {
            task_id: id.into(),
            service: "web".into(),
            service_version: 1,
            slot: 0,
            spec: ServiceSpec::new("web", "busybox"),
            desired,
            files: vec![],
            spec_held: false,
        }
    }

    fn seen(id: &str, container: &str, phase: Phase, created_ms: u64) -> ObservedTask {
        ObservedTask {
            task_id: id.into(),
            container_id: Some(container.into()),
            phase,
            restarts_ms: vec![],
            created_ms,
            address: None,
            image_check: None,
            files: vec![],
        }
    }

    fn exited(code: i32, finished_ms: u64) -> Phase {
        Phase::Exited { code, finished_ms }
    }

    #[test]
    fn starts_missing_tasks_and_leaves_running_ones() {
        let desired = [task("a", TaskState::Running), task("b", TaskState::Running)];
        let observed = [seen("a", "c1", Phase::Running, 1)];
        assert_eq!(
            reconcile(&desired, &observed, 10),
            vec![Action::Start {
                task: desired[1].clone()
            }]
        );
        assert_eq!(reconcile(&desired[..1], &observed, 10), vec![]);
    }

    #[test]
    fn removes_shutdown_and_unassigned_tasks() {
        let desired = [task("a", TaskState::Shutdown)];
        let observed = [
            seen("a", "c1", Phase::Running, 1),
            seen("z", "c9", exited(0, 5), 1),
        ];
        assert_eq!(
            reconcile(&desired, &observed, 10),
            vec![
                remove("a", "c1", "desired state is shutdown"),
                remove("z", "c9", "no longer assigned to this node"),
            ]
        );
        // A shutdown task with no container needs nothing.
        assert_eq!(reconcile(&desired, &[], 10), vec![]);
    }

    #[test]
    fn restarts_exited_containers_per_policy() {
        let mut t = task("a", TaskState::Running);
        t.spec.restart.delay = "1s".into();
        let mut o = seen("a", "c1", exited(1, 1000), 1);
        o.restarts_ms = vec![500];
        // One restart in the window: 2 s back-off.
        assert_eq!(reconcile(&[t.clone()], &[o.clone()], 2999), vec![]);
        assert_eq!(
            reconcile(&[t.clone()], &[o.clone()], 3000),
            vec![Action::Restart {
                task: t.clone(),
                old_container: "c1".into(),
                restarts_ms: vec![500, 3000],
            }]
        );
        t.spec.restart.condition = RestartCondition::None;
        assert_eq!(reconcile(&[t.clone()], &[o.clone()], 10_000_000), vec![]);
        t.spec.restart.condition = RestartCondition::OnFailure;
        o.phase = exited(0, 1000);
        assert_eq!(reconcile(&[t], &[o], 10_000_000), vec![]);
    }

    #[test]
    fn create_failures_are_terminal_and_busy_tasks_are_left_alone() {
        let t = task("a", TaskState::Running);
        let mut failed = seen(
            "a",
            "",
            Phase::CreateFailed {
                message: "x".into(),
            },
            1,
        );
        failed.container_id = None;
        assert_eq!(reconcile(std::slice::from_ref(&t), &[failed], 10), vec![]);
        let busy = seen("a", "c1", Phase::Busy, 1);
        assert_eq!(reconcile(&[t], std::slice::from_ref(&busy), 10), vec![]);
        // Busy even when no longer assigned: the removal is already under way.
        assert_eq!(reconcile(&[], &[busy], 10), vec![]);
    }

    #[test]
    fn a_running_container_with_an_older_secret_gets_the_new_one_in_place() {
        use hoist_proto::files::{FileKind, FileVersion};
        let v = |version| FileVersion {
            kind: FileKind::Secret,
            name: "db-pass".into(),
            version,
        };
        let mut t = task("a", TaskState::Running);
        t.spec.secrets = vec![hoist_proto::files::FileRef {
            source: "db-pass".into(),
            target: None,
            mode: None,
            uid: None,
            gid: None,
            on_update: None,
        }];
        t.files = vec![v(4)];
        let mut o = seen("a", "c1", Phase::Running, 1);
        o.files = vec![v(3)];
        assert_eq!(
            reconcile(std::slice::from_ref(&t), std::slice::from_ref(&o), 10),
            vec![Action::UpdateFiles {
                task: t.clone(),
                container_id: "c1".into()
            }]
        );
        // A reference that restarts the service instead: the running replica keeps its own.
        let mut restarts = t.clone();
        restarts.spec.secrets[0].on_update = Some("restart".into());
        assert_eq!(reconcile(&[restarts], std::slice::from_ref(&o), 10), vec![]);
        // Up to date (or ahead): nothing.
        o.files = vec![v(4)];
        assert_eq!(
            reconcile(std::slice::from_ref(&t), std::slice::from_ref(&o), 10),
            vec![]
        );
        // An exited container gets the new version with its restart, not in place.
        o.files = vec![v(3)];
        o.phase = exited(1, 5);
        let actions = reconcile(
            std::slice::from_ref(&t),
            std::slice::from_ref(&o),
            10_000_000,
        );
        assert!(
            matches!(actions.as_slice(), [Action::Restart { .. }]),
            "{actions:?}"
        );
        // A busy task is left alone.
        o.phase = Phase::Busy;
        assert_eq!(reconcile(&[t], &[o], 10), vec![]);
    }

    #[test]
    fn duplicates_keep_the_running_or_newest_container() {
        let t = task("a", TaskState::Running);
        let observed = [
            seen("a", "old", Phase::Running, 1),
            seen("a", "new", exited(1, 5), 2),
        ];
        assert_eq!(
            reconcile(std::slice::from_ref(&t), &observed, 6),
            vec![remove("a", "new", "a newer container runs this task")]
        );
        let observed = [
            seen("a", "old", exited(0, 3), 1),
            seen("a", "new", exited(1, 5), 2),
        ];
        let actions = reconcile(&[t], &observed, 5);
        assert_eq!(
            actions,
            vec![remove("a", "old", "a newer container runs this task")]
        );
    }
}
