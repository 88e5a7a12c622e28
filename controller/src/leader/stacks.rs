//! A stack release's verdict, read from its services (pure): the leader proposes what this
//! answers, and `apply` acts only on the release still deploying (a stale verdict is refused).
//!
//! A changed service is **done** when its rollout of the release's version completed, or, when
//! it had no rollout (a new service, or a change of replicas only), when every desired replica
//! of that version is ready. It **failed** when its rollout paused, failed or rolled back, or
//! when a replica of that version failed since the release began (a new service has no rollout
//! to pause). Any failure rolls the whole release back; all done completes it; a service that
//! left the release's version for another reason (removed, or changed outside the stack)
//! supersedes it.

use crate::state::{same_run_spec, State};
use hoist_proto::cluster::{ReleaseState, RolloutState, StackMember, StackRelease, TaskState};
use hoist_proto::raft::Command;
use hoist_proto::service::ServiceMode;

/// Restarts in place after which a new service's replica is taken as failed.
const CRASH_LOOP_RESTARTS: u64 = 3;

/// Where one changed service of a release stands.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Progress {
    Done,
    Waiting,
    Failed(String),
    Superseded(String),
}

/// The commands that end the releases whose verdict is in.
pub fn verdicts(state: &State) -> Vec<Command> {
    let mut out = Vec::new();
    for stack in state.stacks.values() {
        let Some(release) = stack.current() else {
            continue;
        };
        if release.state != ReleaseState::Deploying {
            continue;
        }
        if let Some(c) = verdict(state, &stack.name, release) {
            out.push(c);
        }
    }
    out
}

fn verdict(state: &State, stack: &str, release: &StackRelease) -> Option<Command> {
    let mut all_done = true;
    let mut superseded = None;
    for m in release.members.iter().filter(|m| m.changed) {
        match progress(state, release, m) {
            Progress::Done => {}
            Progress::Waiting => all_done = false,
            Progress::Failed(why) => {
                return Some(Command::RollbackStack {
                    stack: stack.to_string(),
                    release: release.release,
                    reason: format!("{}: {why}", m.service),
                })
            }
            Progress::Superseded(why) => {
                superseded.get_or_insert(format!("{}: {why}", m.service));
            }
        }
    }
    let (state, message) = match (superseded, all_done) {
        (Some(why), _) => (ReleaseState::Superseded, why),
        (None, true) => (ReleaseState::Completed, String::new()),
        (None, false) => return None,
    };
    Some(Command::SetReleaseState {
        stack: stack.to_string(),
        release: release.release,
        state,
        message,
    })
}

fn progress(state: &State, release: &StackRelease, m: &StackMember) -> Progress {
    let Some(record) = state.services.get(&m.service) else {
        return Progress::Superseded("the service was removed".into());
    };
    let current = record.current();
    let rollout = state.rollouts.get(&m.service);
    // The version to judge: the release's, or a later one that only scaled it (a scale moves
    // the tasks and the rollout along with it and changes nothing that runs).
    let mut version = m.version;
    if current.version != m.version {
        if let Some(r) = rollout.filter(|r| r.rollback_of == Some(m.version)) {
            return Progress::Failed(format!(
                "its update failed and was rolled back: {}",
                r.message
            ));
        }
        let released = record.history.iter().find(|v| v.version == m.version);
        let scaled_only = current.version > m.version
            && released.is_some_and(|v| same_run_spec(&v.spec, &current.spec));
        if !scaled_only {
            return Progress::Superseded(format!(
                "changed outside the stack (version {})",
                current.version
            ));
        }
        version = current.version;
    }
    if let Some(r) = rollout.filter(|r| r.version == version) {
        return match r.state {
            RolloutState::Completed => Progress::Done,
            RolloutState::Updating | RolloutState::RollingBack => Progress::Waiting,
            RolloutState::Paused | RolloutState::Failed | RolloutState::RolledBack => {
                Progress::Failed(r.message.clone())
            }
        };
    }
    progress_of_tasks(state, release, &m.service, version, &current.spec)
}

/// Without a rollout: every desired replica of `version` ready is done; a replica of it that
/// failed since the release began is a failure.
fn progress_of_tasks(
    state: &State,
    release: &StackRelease,
    service: &str,
    version: u64,
    spec: &hoist_proto::service::ServiceSpec,
) -> Progress {
    let of_version =
        |t: &&hoist_proto::cluster::Task| t.service == service && t.service_version >= version;
    let ended = state
        .slot_history
        .get(service)
        .into_iter()
        .flat_map(|slots| slots.values().flatten());
    if let Some(t) = state
        .tasks
        .of_service(service)
        .chain(ended)
        .filter(of_version)
        .find(|t| t.state == TaskState::Failed && t.updated_ms >= release.created_ms)
    {
        return Progress::Failed(format!("replica {} failed: {}", t.slot, t.message));
    }
    // A replica its agent keeps restarting in place never "fails"; three exits are a crash loop
    // (an update's rollout already counts the first one, before the monitor window passes).
    if let Some(t) = state
        .tasks
        .of_service(service)
        .filter(of_version)
        .find(|t| t.desired == TaskState::Running && t.restarts >= CRASH_LOOP_RESTARTS)
    {
        return Progress::Failed(format!(
            "replica {} keeps exiting ({} restarts): {}",
            t.slot, t.restarts, t.message
        ));
    }
    let wanted: Vec<_> = state
        .tasks
        .of_service(service)
        .filter(of_version)
        .filter(|t| t.desired == TaskState::Running)
        .collect();
    let enough = match spec.mode {
        ServiceMode::Replicated => wanted.len() as i64 >= spec.replicas,
        ServiceMode::Global => !wanted.is_empty(),
    };
    // With a health check, a replica counts once it passed it (before its first result it
    // reports no health at all).
    let ready = |t: &&hoist_proto::cluster::Task| match spec.health_check {
        Some(_) => t.state == TaskState::Running && t.health == hoist_proto::node::Health::Healthy,
        None => t.is_ready(),
    };
    if enough && wanted.iter().all(ready) {
        Progress::Done
    } else {
        Progress::Waiting
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::tests::{cluster_with_nodes, req, test_task};
    use hoist_proto::raft::{Response, StackDeploy};
    use hoist_proto::service::ServiceSpec;

    fn deploy(st: &mut State, images: &[(&str, &str)]) -> Response {
        let services = images
            .iter()
            .map(|(n, i)| ServiceSpec::new(&format!("shop_{n}"), i))
            .collect();
        st.apply(&req(
            1,
            Command::DeployStack(Box::new(StackDeploy {
                name: "shop".into(),
                services,
                prune: false,
            })),
        ))
    }

    fn state() -> State {
        cluster_with_nodes(1)
    }

    /// Changes the state's first task.
    fn change_first_task(st: &mut State, change: impl FnOnce(&mut hoist_proto::cluster::Task)) {
        let id = st.tasks.keys().next().expect("a task").to_string();
        change(&mut st.tasks.get_mut(&id).expect("a task"));
    }

    /// Puts one replica of `service` at `version` in the state, ready or still pending.
    fn run_all(st: &mut State, service: &str, version: u64, ready: bool) {
        let mut t = test_task(&format!("{service}-{version}"), service, version, 1, "n1");
        if ready {
            t.state = TaskState::Running;
        }
        st.tasks = st
            .tasks
            .iter()
            .filter(|(_, t)| t.service != service)
            .map(|(k, t)| (k.to_string(), t.clone()))
            .collect();
        st.tasks.insert(t);
        st.rebuild_usage();
    }

    #[test]
    fn a_first_release_completes_when_every_replica_is_ready() {
        let mut st = state();
        deploy(&mut st, &[("web", "nginx"), ("db", "postgres")]);
        assert_eq!(verdicts(&st), vec![]);
        run_all(&mut st, "shop_web", 1, true);
        run_all(&mut st, "shop_db", 1, false);
        assert_eq!(verdicts(&st), vec![]);
        run_all(&mut st, "shop_db", 1, true);
        let v = verdicts(&st);
        assert!(
            matches!(
                &v[..],
                [Command::SetReleaseState {
                    state: ReleaseState::Completed,
                    release: 1,
                    ..
                }]
            ),
            "{v:?}"
        );
        for c in v {
            st.apply(&req(2, c));
        }
        assert_eq!(
            st.stacks["shop"].current().unwrap().state,
            ReleaseState::Completed
        );
        assert_eq!(verdicts(&st), vec![]);
    }

    #[test]
    fn a_paused_update_rolls_the_whole_release_back() {
        let mut st = state();
        deploy(&mut st, &[("web", "nginx:1"), ("db", "postgres:15")]);
        deploy(
            &mut st,
            &[
                ("web", "nginx:2"),
                ("db", "postgres:16"),
                ("cache", "redis"),
            ],
        );
        let rel = st.stacks["shop"].current().unwrap().clone();
        assert_eq!(rel.release, 2);
        assert_eq!(
            st.stacks["shop"].releases[0].state,
            ReleaseState::Superseded
        );
        let web = rel
            .members
            .iter()
            .find(|m| m.service == "shop_web")
            .unwrap();
        assert_eq!((web.previous, web.version, web.changed), (1, 2, true));
        st.rollouts.insert(
            "shop_db".into(),
            hoist_proto::cluster::Rollout {
                version: 2,
                from_version: 1,
                state: RolloutState::Paused,
                updated: 0,
                total: 1,
                failures: 1,
                message: "paused: task t1 failed: image not found".into(),
                started_ms: 0,
                updated_ms: 0,
                batch_started_ms: 0,
                rollback_of: None,
            },
        );
        let v = verdicts(&st);
        let [Command::RollbackStack {
            reason, release: 2, ..
        }] = &v[..]
        else {
            panic!("{v:?}")
        };
        assert!(reason.starts_with("shop_db: paused"), "{reason}");
        for c in v {
            st.apply(&req(2, c));
        }
        let s = &st.stacks["shop"];
        assert_eq!(s.current().unwrap().state, ReleaseState::RolledBack);
        assert!(
            !st.services.contains_key("shop_cache"),
            "the release created it"
        );
        assert_eq!(s.services, ["shop_db", "shop_web"]);
        for (n, image) in [("shop_web", "nginx:1"), ("shop_db", "postgres:15")] {
            let cur = st.services[n].current();
            assert_eq!((cur.version, cur.spec.image.as_str()), (3, image));
        }
        // A verdict on a release no longer deploying changes nothing.
        let again = st.apply(&req(
            3,
            Command::RollbackStack {
                stack: "shop".into(),
                release: 2,
                reason: "x".into(),
            },
        ));
        assert!(matches!(again, Response::Error(_)));
    }

    #[test]
    fn a_deploy_without_change_makes_no_release_and_a_bad_spec_changes_nothing() {
        let mut st = state();
        deploy(&mut st, &[("web", "nginx")]);
        let before = st.clone();
        let Response::Stack(c) = deploy(&mut st, &[("web", "nginx")]) else {
            panic!()
        };
        assert!(!c.changed);
        assert_eq!(st.stacks, before.stacks);
        let r = deploy(&mut st, &[("web", "nginx:2"), ("db", "")]);
        assert!(
            matches!(&r, Response::Error(e) if e.message.contains("image")),
            "{r:?}"
        );
        assert_eq!(st.services, before.services, "all or nothing");
        let r = st.apply(&req(
            1,
            Command::DeployStack(Box::new(StackDeploy {
                name: "shop".into(),
                services: vec![ServiceSpec::new("other_web", "nginx")],
                prune: false,
            })),
        ));
        assert!(
            matches!(&r, Response::Error(e) if e.message.contains("shop_SERVICE")),
            "{r:?}"
        );
    }

    #[test]
    fn a_published_port_may_move_between_services_of_the_stack() {
        use hoist_proto::service::ServicePort;
        let mut st = state();
        let port = |p: i64| ServicePort {
            target: 80,
            published: Some(p),
            protocol: Default::default(),
            mode: Default::default(),
        };
        let deploy_ports = |st: &mut State, specs: &[(&str, Option<i64>)], prune: bool| {
            let services = specs
                .iter()
                .map(|(n, p)| {
                    let mut s = ServiceSpec::new(&format!("shop_{n}"), "nginx");
                    s.ports = p.iter().map(|p| port(*p)).collect();
                    s
                })
                .collect();
            st.apply(&req(
                1,
                Command::DeployStack(Box::new(StackDeploy {
                    name: "shop".into(),
                    services,
                    prune,
                })),
            ))
        };
        assert!(matches!(
            deploy_ports(&mut st, &[("web", Some(80)), ("api", None)], false),
            Response::Stack(_)
        ));
        // Swapped between two services, and moved to a renamed one with --prune.
        let r = deploy_ports(&mut st, &[("web", None), ("api", Some(80))], false);
        assert!(matches!(r, Response::Stack(_)), "{r:?}");
        let r = deploy_ports(&mut st, &[("front", Some(80)), ("web", None)], true);
        assert!(matches!(r, Response::Stack(_)), "{r:?}");
        assert_eq!(st.stacks["shop"].services, ["shop_front", "shop_web"]);
        // Still one owner per port within the stack, and against other services.
        let r = deploy_ports(&mut st, &[("front", Some(80)), ("web", Some(80))], false);
        assert!(
            matches!(&r, Response::Error(e) if e.message.contains("another service of the stack")),
            "{r:?}"
        );
        let mut other = ServiceSpec::new("other", "nginx");
        other.ports = vec![port(81)];
        st.apply(&req(1, Command::ApplyService(Box::new(other))));
        let r = deploy_ports(&mut st, &[("front", Some(81)), ("web", None)], true);
        assert!(
            matches!(&r, Response::Error(e) if e.message.contains("already published by service \"other\"")),
            "{r:?}"
        );
    }

    #[test]
    fn a_crash_loop_of_a_new_service_fails_the_release() {
        let mut st = state();
        deploy(&mut st, &[("api", "busybox")]);
        run_all(&mut st, "shop_api", 1, false);
        change_first_task(&mut st, |t| t.restarts = 2);
        assert_eq!(verdicts(&st), vec![], "two restarts are not a loop yet");
        change_first_task(&mut st, |t| {
            t.restarts = 3;
            t.message = "exited with code 1; restarting in 4s".into();
        });
        let v = verdicts(&st);
        assert!(
            matches!(&v[..], [Command::RollbackStack { reason, .. }] if reason.contains("keeps exiting (3 restarts)")),
            "{v:?}"
        );
    }

    #[test]
    fn a_failed_replica_of_a_new_service_fails_the_release() {
        let mut st = state();
        deploy(&mut st, &[("web", "nope")]);
        run_all(&mut st, "shop_web", 1, false);
        change_first_task(&mut st, |t| {
            t.state = TaskState::Failed;
            t.updated_ms = 5;
            t.message = "image \"nope\" could not be pulled".into();
        });
        let v = verdicts(&st);
        assert!(
            matches!(&v[..], [Command::RollbackStack { reason, .. }] if reason.contains("could not be pulled")),
            "{v:?}"
        );
        st.apply(&req(2, v[0].clone()));
        assert!(st.services.is_empty());
        assert_eq!(st.stacks["shop"].services, Vec::<String>::new());
    }
}
