//! Following a service's rolling update: progress lines until it completes (exit 0), pauses,
//! fails or rolls back (exit 1). Used by `hoist service apply` and `hoist service rollout status`.

use crate::controller_client::{report, ControllerClient};
use hoist_proto::cluster::{Rollout, RolloutState};
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

/// The longest one watch waits (below the client's 30 s request timeout).
const WATCH_WAIT: Duration = Duration::from_secs(20);

/// Follows `name`'s rollout of `version` (the current one when `None`) until it ends or
/// `timeout` passes; answers the exit code.
pub async fn follow(
    client: &ControllerClient,
    name: &str,
    version: Option<u64>,
    timeout: Duration,
    json: bool,
) -> i32 {
    let path = format!("/v1/services/{name}/rollout");
    let deadline = Instant::now() + timeout;
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
                    .min(WATCH_WAIT);
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
        if Instant::now() >= deadline {
            eprintln!("error: {name}: still {last:?} after {timeout:?}");
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
