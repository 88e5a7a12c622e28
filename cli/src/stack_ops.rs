//! What `hoist stack deploy|ls|services|ps|rm|history` do against the controllers, once a
//! Compose file has become service specs (`compose/`).
//!
//! A deploy is one release: the controller applies every service at once (all or nothing), and
//! this follows the release until its one verdict — completed (exit 0), rolled back or superseded
//! (exit 1) — or until nothing has moved for the progress deadline.

use crate::controller_client::{report, ControllerClient};
use crate::rollout::{replica_summary, Limits};
use crate::{resolve, service};
use comfy_table::Table;
use hoist_proto::cluster::{
    ReleaseState, ServiceSummary, ServiceTasks, Stack, StackChange, StackRelease,
};
use hoist_proto::service::ServiceSpec;
use reqwest::Method;
use std::time::{Duration, Instant};

fn print_json<T: serde::Serialize>(v: &T) {
    println!("{}", serde_json::to_string_pretty(v).expect("json encodes"));
}

fn word(v: impl serde::Serialize) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

/// The short (Compose) name of a stack's service: `shop_web` → `web`.
pub fn short_name<'a>(stack: &str, service: &'a str) -> &'a str {
    service
        .strip_prefix(stack)
        .and_then(|s| s.strip_prefix('_'))
        .unwrap_or(service)
}

/// What a release did, one line per service it touched.
pub fn describe_release(r: &StackRelease) -> Vec<String> {
    let mut lines = Vec::new();
    for m in &r.members {
        lines.push(match (m.changed, m.previous) {
            (false, _) => format!("{}: unchanged (version {})", m.service, m.version),
            (true, 0) => format!("{}: created (version {})", m.service, m.version),
            (true, p) => format!("{}: updated (version {p} → {})", m.service, m.version),
        });
    }
    for s in &r.removed {
        lines.push(format!("{s}: removed"));
    }
    lines
}

/// `hoist stack deploy`: applies `specs` as one release and follows it; answers the exit code.
pub async fn deploy(
    client: &ControllerClient,
    name: &str,
    mut specs: Vec<ServiceSpec>,
    prune: bool,
    resolve_opts: &resolve::ResolveOptions,
    limits: Option<Limits>,
    json: bool,
) -> anyhow::Result<i32> {
    if let Err(e) = resolve::prepare(&mut specs, resolve_opts).await {
        eprintln!("error: {e}");
        return Ok(1);
    }
    let services = specs
        .iter()
        .map(resolve::apply_body)
        .collect::<Result<Vec<_>, _>>()?;
    let body = serde_json::json!({ "name": name, "services": services, "prune": prune });
    let change = match client
        .json::<StackChange>(Method::POST, "/v1/stacks", Some(&body))
        .await
    {
        Ok(c) => c,
        Err(e) => return Ok(report(&e)),
    };
    let Some(release) = change.stack.current().cloned() else {
        eprintln!("error: the controller answered a stack without a release");
        return Ok(3);
    };
    if !change.changed {
        if !json {
            println!(
                "stack {name}: unchanged (release {}, {})",
                release.release,
                word(release.state)
            );
        }
        // The same files again while their release is still deploying (an earlier deploy was
        // interrupted): its verdict is this one's.
        // (After a rolled-back or superseded release, unchanged means the services already run
        // what the files say.)
        return Ok(match (release.state, limits) {
            (ReleaseState::Deploying, Some(limits)) => {
                follow(client, name, release.release, limits, json).await
            }
            _ => {
                if json {
                    print_json(&change);
                }
                0
            }
        });
    }
    if !json {
        println!("stack {name}: release {}", release.release);
        for l in describe_release(&release) {
            println!("  {l}");
        }
    }
    let Some(limits) = limits else {
        if json {
            print_json(&change);
        }
        return Ok(0);
    };
    Ok(follow(client, name, release.release, limits, json).await)
}

/// Follows release `release` of `name` to its verdict; answers the exit code.
pub async fn follow(
    client: &ControllerClient,
    name: &str,
    release: u64,
    limits: Limits,
    json: bool,
) -> i32 {
    let started = Instant::now();
    let mut progress_at = started;
    let mut shown: std::collections::BTreeMap<String, String> = Default::default();
    let mut most_running: std::collections::BTreeMap<String, usize> = Default::default();
    loop {
        let stack = match client
            .json::<Stack>(Method::GET, &format!("/v1/stacks/{name}"), None)
            .await
        {
            Ok(s) => s,
            Err(e) => return report(&e),
        };
        let Some(r) = stack.releases.iter().find(|r| r.release == release) else {
            eprintln!("error: stack {name}: release {release} is no longer kept");
            return 1;
        };
        match r.state {
            ReleaseState::Deploying => {}
            ReleaseState::Completed => {
                if json {
                    print_json(&stack);
                } else {
                    println!("stack {name}: release {release} completed");
                }
                return 0;
            }
            ReleaseState::RolledBack => {
                if json {
                    print_json(&stack);
                }
                eprintln!(
                    "error: stack {name}: release {release} failed and every service was rolled \
                     back: {}",
                    r.message
                );
                return 1;
            }
            ReleaseState::Superseded => {
                if json {
                    print_json(&stack);
                }
                eprintln!(
                    "error: stack {name}: release {release} was superseded: {}",
                    r.message
                );
                return 1;
            }
        }
        // Each changed service's replicas, shown as they change; progress is a service with
        // more replicas running than ever before (a crash loop changes the words only).
        for m in r.members.iter().filter(|m| m.changed) {
            let path = format!("/v1/services/{}/ps", m.service);
            let (running, summary) =
                match client.json::<ServiceTasks>(Method::GET, &path, None).await {
                    Ok(ps) => replica_summary(&ps, m.version),
                    Err(e) => (0, e.to_string()),
                };
            if shown.get(&m.service) != Some(&summary) {
                if !json {
                    println!("{}: {summary}", m.service);
                }
                shown.insert(m.service.clone(), summary);
            }
            let most = most_running.entry(m.service.clone()).or_insert(0);
            if running > *most {
                *most = running;
                progress_at = Instant::now();
            }
        }
        let now = Instant::now();
        if now.duration_since(progress_at) >= limits.progress_deadline {
            let waiting: Vec<String> = shown.iter().map(|(s, w)| format!("{s}: {w}")).collect();
            eprintln!(
                "error: stack {name}: release {release} made no progress for {}: {}",
                humantime::format_duration(limits.progress_deadline),
                waiting.join("; ")
            );
            return 1;
        }
        if limits
            .timeout
            .is_some_and(|t| now.duration_since(started) >= t)
        {
            eprintln!("error: stack {name}: release {release} is still deploying");
            return 1;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `hoist stack ls`.
pub async fn ls(client: &ControllerClient, json: bool) -> i32 {
    let stacks = match client
        .json::<Vec<Stack>>(Method::GET, "/v1/stacks", None)
        .await
    {
        Ok(s) => s,
        Err(e) => return report(&e),
    };
    if json {
        print_json(&stacks);
        return 0;
    }
    let mut t = Table::new();
    t.load_preset(comfy_table::presets::NOTHING);
    t.set_header(["NAME", "SERVICES", "RELEASE", "STATE", "MESSAGE"]);
    for s in stacks {
        let (release, state, message) = match s.current() {
            Some(r) => (r.release.to_string(), word(r.state), r.message.clone()),
            None => ("-".into(), "-".into(), String::new()),
        };
        t.add_row([
            s.name.clone(),
            s.services.len().to_string(),
            release,
            state,
            message,
        ]);
    }
    println!("{t}");
    0
}

/// `hoist stack services NAME`: the stack's services with running/desired replicas.
pub async fn services(client: &ControllerClient, name: &str, json: bool) -> i32 {
    if let Err(e) = client
        .json::<Stack>(Method::GET, &format!("/v1/stacks/{name}"), None)
        .await
    {
        return report(&e);
    }
    let all = match client
        .json::<Vec<ServiceSummary>>(Method::GET, "/v1/services", None)
        .await
    {
        Ok(s) => s,
        Err(e) => return report(&e),
    };
    let prefix = format!("{name}_");
    let mine: Vec<ServiceSummary> = all
        .into_iter()
        .filter(|s| s.service.name.starts_with(&prefix))
        .collect();
    if json {
        print_json(&mine);
    } else {
        service::print_services(&mine);
    }
    0
}

/// `hoist stack ps NAME`: every replica of every service, with a SERVICE column.
pub async fn ps(client: &ControllerClient, name: &str, json: bool) -> i32 {
    let stack = match client
        .json::<Stack>(Method::GET, &format!("/v1/stacks/{name}"), None)
        .await
    {
        Ok(s) => s,
        Err(e) => return report(&e),
    };
    let mut all = Vec::new();
    for s in &stack.services {
        match client
            .json::<ServiceTasks>(Method::GET, &format!("/v1/services/{s}/ps"), None)
            .await
        {
            Ok(ps) => all.push(ps),
            Err(e) => return report(&e),
        }
    }
    if json {
        print_json(&all);
        return 0;
    }
    println!("{}", crate::ps::replica_table(&all, true));
    0
}

/// `hoist stack rm NAME...`.
pub async fn rm(client: &ControllerClient, names: &[String], json: bool) -> i32 {
    for name in names {
        match client
            .json::<StackChange>(Method::DELETE, &format!("/v1/stacks/{name}"), None)
            .await
        {
            Ok(c) if json => print_json(&c),
            Ok(c) => {
                for s in &c.services {
                    println!("{}: removed", s.service.name);
                }
                println!("stack {name}: removed");
            }
            Err(e) => return report(&e),
        }
    }
    0
}

/// `hoist stack history NAME`: its releases, the current one last.
pub async fn history(client: &ControllerClient, name: &str, json: bool) -> i32 {
    let stack = match client
        .json::<Stack>(Method::GET, &format!("/v1/stacks/{name}"), None)
        .await
    {
        Ok(s) => s,
        Err(e) => return report(&e),
    };
    if json {
        print_json(&stack.releases);
        return 0;
    }
    let mut t = Table::new();
    t.load_preset(comfy_table::presets::NOTHING);
    t.set_header(["RELEASE", "STATE", "CREATED", "CHANGES", "MESSAGE"]);
    for r in &stack.releases {
        let created = humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + Duration::from_millis(r.created_ms),
        );
        let changes: Vec<String> = r
            .members
            .iter()
            .filter(|m| m.changed)
            .map(|m| {
                let short = short_name(name, &m.service);
                match m.previous {
                    0 => format!("{short} +v{}", m.version),
                    p => format!("{short} v{p}→v{}", m.version),
                }
            })
            .chain(
                r.removed
                    .iter()
                    .map(|s| format!("{} -", short_name(name, s))),
            )
            .collect();
        t.add_row([
            r.release.to_string(),
            word(r.state),
            created.to_string(),
            changes.join(", "),
            r.message.clone(),
        ]);
    }
    println!("{t}");
    0
}

#[cfg(test)]
mod tests {
    use super::*;
    use hoist_proto::cluster::StackMember;

    #[test]
    fn a_release_is_described_service_by_service() {
        let r = StackRelease {
            release: 2,
            created_ms: 0,
            updated_ms: 0,
            state: ReleaseState::Deploying,
            message: String::new(),
            members: vec![
                StackMember {
                    service: "shop_web".into(),
                    version: 3,
                    previous: 2,
                    changed: true,
                },
                StackMember {
                    service: "shop_db".into(),
                    version: 1,
                    previous: 0,
                    changed: true,
                },
                StackMember {
                    service: "shop_api".into(),
                    version: 4,
                    previous: 4,
                    changed: false,
                },
            ],
            removed: vec!["shop_old".into()],
        };
        assert_eq!(
            describe_release(&r),
            [
                "shop_web: updated (version 2 → 3)",
                "shop_db: created (version 1)",
                "shop_api: unchanged (version 4)",
                "shop_old: removed"
            ]
        );
        assert_eq!(short_name("shop", "shop_web"), "web");
        assert_eq!(short_name("shop", "other"), "other");
    }
}
