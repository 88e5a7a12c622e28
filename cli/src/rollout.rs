//! Following a service's rolling update: progress lines until it completes (exit 0), pauses,
//! fails or rolls back (exit 1). Used by `hoist service apply` and `hoist service rollout status`.

use crate::controller_client::{report, ControllerClient};
use hoist_proto::cluster::{Rollout, RolloutState, ServiceTasks, TaskState};
use reqwest::Method;
use std::time::{Duration, Instant};

/// How following a rollout ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Completed,
    /// Paused, failed, rolled back, superseded or timed out, with why.
    Failed(String),
}

/// What a rollout record means for someone waiting on `version`; `None` while still moving.
pub fn judge(r: &Rollout, version: u64) -> Option<Outcome> {
    if r.version == version {
        return match r.state {
            RolloutState::Completed => Some(Outcome::Completed),
            RolloutState::Updating | RolloutState::RollingBack => None,
            RolloutState::Paused => Some(Outcome::Failed(format!("update paused: {}", r.message))),
            // The current version is an automatic rollback: the update before it failed, and
            // `rollout status` says so with a non-zero exit, as `apply` did.
            RolloutState::RolledBack if r.rollback_of.is_some() => Some(Outcome::Failed(format!(
                "the update to version {} failed and was rolled back: {}",
                r.rollback_of.unwrap_or_default(),
                r.message
            ))),
            RolloutState::RolledBack | RolloutState::Failed => {
                Some(Outcome::Failed(r.message.clone()))
            }
        };
    }
    if r.version > version {
        if r.rollback_of == Some(version) {
            return match r.state {
                RolloutState::RollingBack => None,
                RolloutState::RolledBack | RolloutState::Completed => Some(Outcome::Failed(
                    format!("update failed and was rolled back: {}", r.message),
                )),
                _ => Some(Outcome::Failed(format!("rollback: {}", r.message))),
            };
        }
        return Some(Outcome::Failed(format!(
            "superseded by version {}",
            r.version
        )));
    }
    None
}

fn line(name: &str, r: &Rollout) -> String {
    let state = serde_json::to_value(r.state)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default();
    format!(
        "{name}: {state} {}/{} (version {}): {}",
        r.updated, r.total, r.version, r.message
    )
}

/// How many replicas run `version` (or a later one), and the replicas in a few words: `2/3
/// running; slot 2 pending: n1 needs ...`. Pure.
pub fn replica_summary(ps: &ServiceTasks, version: u64) -> (usize, String) {
    if ps.replicas.is_empty() {
        return (0, "no replica scheduled yet".into());
    }
    let total = ps.replicas.len();
    let running = ps
        .replicas
        .iter()
        .filter(|r| {
            r.task
                .as_ref()
                .is_some_and(|t| t.state == TaskState::Running && t.service_version >= version)
        })
        .count();
    let mut parts = vec![format!("{running}/{total} running")];
    for r in &ps.replicas {
        match (&r.task, &r.pending) {
            (None, Some(why)) => parts.push(format!("slot {} pending: {why}", r.slot)),
            (Some(t), _) if t.state != TaskState::Running && !t.message.is_empty() => {
                let state = serde_json::to_value(t.state)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_default();
                parts.push(format!(
                    "slot {} {state} on {}: {}",
                    r.slot, t.node, t.message
                ));
            }
            _ => {}
        }
    }
    (running, parts.join("; "))
}

/// The longest one watch waits: short enough that pending reasons show as they change.
const WATCH_WAIT: Duration = Duration::from_secs(2);

/// `--timeout` and `--progress-deadline`, for every command that follows a rollout.
#[derive(Debug, Clone, clap::Args)]
pub struct FollowArgs {
    /// Give up waiting after this long in all (`30m`, `90s`); default: no limit.
    #[arg(long, value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    /// Fail when the rollout makes no progress for this long (no more replicas running than
    /// before, the update not moving), naming what did not converge. A spec whose
    /// `update.delay` or `update.monitor` is longer needs a longer deadline.
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub progress_deadline: Duration,
}

impl From<&FollowArgs> for Limits {
    fn from(a: &FollowArgs) -> Self {
        Limits {
            timeout: a.timeout,
            progress_deadline: a.progress_deadline,
        }
    }
}

/// A duration flag (`5m`, `90s`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    hoist_proto::quantity::parse_duration_ms(text)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("{text:?} is not a duration (e.g. 5m, 90s)"))
}

/// How long to follow a rollout.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Give up after this long in all (`--timeout`); `None`: no limit.
    pub timeout: Option<Duration>,
    /// Give up when nothing moved for this long (`--progress-deadline`, Kubernetes'
    /// `progressDeadlineSeconds`): no replica started, stopped or changed its reason.
    pub progress_deadline: Duration,
}

/// Follows `name`'s rollout of `version` (the current one when `None`) until it ends, stops
/// making progress for `limits.progress_deadline`, or `limits.timeout` passes; answers the
/// exit code. Shows each replica's pending reason as it changes.
pub async fn follow(
    client: &ControllerClient,
    name: &str,
    version: Option<u64>,
    limits: Limits,
    json: bool,
) -> i32 {
    let path = format!("/v1/services/{name}/rollout");
    let started = Instant::now();
    let far = Duration::from_secs(100 * 365 * 24 * 3600);
    let deadline = started + limits.timeout.unwrap_or(far);
    let mut progress_at = started;
    let mut last_progress = String::new();
    let mut last_summary = String::new();
    let mut most_running = 0;
    let mut last = String::new();
    let mut version = version;
    // Each answer carries an ETag; sending it back makes the controller answer only when the
    // rollout has changed (or after the wait), so progress shows at once without polling.
    let mut etag: Option<String> = None;
    loop {
        let (url, headers) = match &etag {
            Some(tag) => {
                let wait = deadline
                    .saturating_duration_since(Instant::now())
                    .min(WATCH_WAIT)
                    .max(Duration::from_millis(1));
                (
                    format!("{path}?timeout_ms={}", wait.as_millis()),
                    vec![("if-none-match", tag.as_str())],
                )
            }
            None => (path.clone(), vec![]),
        };
        let (r, tag) = match client.call_with(Method::GET, &url, None, &headers).await {
            Ok((bytes, h)) => match serde_json::from_slice::<Rollout>(&bytes) {
                Ok(r) => (
                    r,
                    h.get("etag")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string),
                ),
                Err(e) => {
                    eprintln!("error: the rollout answer does not decode: {e}");
                    return 3;
                }
            },
            Err(e) => return report(&e),
        };
        let v = *version.get_or_insert(r.version);
        let l = line(name, &r);
        if l != last && !json {
            println!("{l}");
            last = l;
        }
        if let Some(outcome) = judge(&r, v) {
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&r).expect("json encodes")
                );
            }
            return match outcome {
                Outcome::Completed => 0,
                Outcome::Failed(m) => {
                    eprintln!("error: {name}: {m}");
                    1
                }
            };
        }
        // Why the replicas that do not run yet do not: shown as it changes, and what counts as
        // progress for the deadline.
        let (running, summary) = match client
            .json::<ServiceTasks>(Method::GET, &format!("/v1/services/{name}/ps"), None)
            .await
        {
            Ok(ps) => replica_summary(&ps, v),
            Err(_) => (0, String::new()),
        };
        if summary != last_summary && !summary.is_empty() && !json {
            println!("{name}: {summary}");
        }
        // Progress is more replicas running than ever before, or the rollout moving: a replica
        // that keeps restarting changes the words but makes no progress.
        most_running = most_running.max(running);
        let progress = format!("{} {:?} {} {most_running}", r.updated, r.state, r.version);
        if progress != last_progress {
            last_progress = progress;
            progress_at = Instant::now();
        }
        last_summary = summary;
        let now = Instant::now();
        if now.duration_since(progress_at) >= limits.progress_deadline {
            eprintln!(
                "error: {name}: no progress for {}: {}",
                humantime::format_duration(limits.progress_deadline),
                if last_summary.is_empty() {
                    &last
                } else {
                    &last_summary
                }
            );
            return 1;
        }
        if now >= deadline {
            eprintln!(
                "error: {name}: still {last:?} after {}",
                humantime::format_duration(limits.timeout.unwrap_or_default())
            );
            return 1;
        }
        if tag.is_none() {
            // A controller without rollout watches: poll.
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        etag = tag;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(version: u64, state: RolloutState, rollback_of: Option<u64>) -> Rollout {
        Rollout {
            version,
            from_version: version - 1,
            state,
            updated: 0,
            total: 1,
            failures: 0,
            message: "m".into(),
            started_ms: 0,
            updated_ms: 0,
            batch_started_ms: 0,
            rollback_of,
        }
    }

    #[test]
    fn the_replica_summary_names_each_pending_slot() {
        use hoist_proto::cluster::{ReplicaView, Task};
        let task = |slot: u64, state: TaskState, message: &str| Task {
            id: format!("t{slot}").into(),
            service: "web".into(),
            service_version: 2,
            slot,
            node: "n1".into(),
            desired: TaskState::Running,
            state,
            health: hoist_proto::node::Health::None,
            address: None,
            container_id: None,
            exit_code: None,
            message: message.into(),
            restarts: 0,
            created_ms: 0,
            updated_ms: 0,
            ready_since_ms: None,
            drain_index: None,
        };
        let ps = ServiceTasks {
            service: "web".into(),
            version: 2,
            replicas: vec![
                ReplicaView {
                    slot: 1,
                    task: Some(task(1, TaskState::Running, "")),
                    pending: None,
                    history: vec![],
                },
                ReplicaView {
                    slot: 2,
                    task: None,
                    pending: Some("n1: needs 900 GiB memory, 23.5 GiB free".into()),
                    history: vec![],
                },
                ReplicaView {
                    slot: 3,
                    task: Some(task(3, TaskState::Pending, "pulling image")),
                    pending: None,
                    history: vec![],
                },
            ],
        };
        assert_eq!(
            replica_summary(&ps, 2).1,
            "1/3 running; slot 2 pending: n1: needs 900 GiB memory, 23.5 GiB free; \
             slot 3 pending on n1: pulling image"
        );
    }

    #[test]
    fn outcomes() {
        assert_eq!(judge(&r(2, RolloutState::Updating, None), 2), None);
        assert_eq!(
            judge(&r(2, RolloutState::Completed, None), 2),
            Some(Outcome::Completed)
        );
        assert!(matches!(
            judge(&r(2, RolloutState::Paused, None), 2),
            Some(Outcome::Failed(_))
        ));
        assert_eq!(judge(&r(3, RolloutState::RollingBack, Some(2)), 2), None);
        assert!(matches!(
            judge(&r(3, RolloutState::RolledBack, Some(2)), 2),
            Some(Outcome::Failed(m)) if m.contains("rolled back")
        ));
        assert!(matches!(
            judge(&r(3, RolloutState::RolledBack, Some(2)), 3),
            Some(Outcome::Failed(m)) if m.contains("version 2 failed and was rolled back")
        ));
        assert!(matches!(
            judge(&r(4, RolloutState::Updating, None), 2),
            Some(Outcome::Failed(m)) if m.contains("superseded")
        ));
    }
}
