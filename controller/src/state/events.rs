//! Events told from the commands the state applies: what happened to services, rollouts,
//! replicas, nodes and stacks, for `GET /v1/events` and `hoist events`.
//!
//! Every member applies the same entries to the same state, so what is told here is the same on
//! every member, in the same order: an event is named by its entry's index and its position
//! among that entry's events, and a client resumes on any member. Telling events by comparing
//! the records a command may change, before and after (rather than in each command's code),
//! keeps `apply` as it is and tells the same thing whichever path changed a record (a plan, a
//! stack rollback, a batch).
//!
//! Pure: [`Before::of`] notes those records before the command is applied, [`derive`](fn@derive) compares
//! them with the state after it. The events are not part of the state (not in snapshots, not
//! hashed): a member keeps the recent ones in memory (`crate::events`).

use super::{same_run_spec, State};
use hoist_proto::cluster::{
    AutoscaleDecision, NodeAvailability, NodeStatus, ReleaseState, Rollout, RolloutState, Task,
    VersionOrigin,
};
use hoist_proto::events::{self as ev, Event};
use hoist_proto::node::Health;
use hoist_proto::raft::{Command, Response};
use hoist_proto::service::{ServiceMode, ServiceSpec};
use std::collections::BTreeSet;
use std::sync::Arc;

/// A service as events compare it.
#[derive(Debug, Clone)]
struct ServiceMark {
    version: u64,
    spec: Arc<ServiceSpec>,
}

/// A node as events compare it.
#[derive(Debug, Clone, Copy)]
struct NodeMark {
    status: NodeStatus,
    availability: NodeAvailability,
}

/// A stack as events compare it: its current release and where that stands, if it has one.
type StackMark = Option<(u64, ReleaseState)>;

/// The records a command may change, as they were before it was applied (`None`: absent).
#[derive(Debug, Default)]
pub struct Before {
    services: Vec<(String, Option<ServiceMark>)>,
    stacks: Vec<(String, Option<StackMark>)>,
    rollouts: Vec<(String, Option<Rollout>)>,
    nodes: Vec<(String, Option<NodeMark>)>,
    tasks: Vec<(String, Option<Task>)>,
    seen_tasks: BTreeSet<String>,
    cluster_format: u32,
}

impl Before {
    /// Notes what `command` may change in `state`. Commands that tell nothing note nothing (a
    /// batch's commands are noted one by one as they are applied).
    pub fn of(state: &State, command: &Command) -> Before {
        let mut b = Before {
            cluster_format: state.cluster_format,
            ..Before::default()
        };
        match command {
            Command::ApplyService(spec) => b.service(state, &spec.name),
            Command::DeleteService { name }
            | Command::ScaleService { name, .. }
            | Command::RollbackService { name, .. } => b.service(state, name),
            Command::RegisterNode(node) => b.node(state, &node.id),
            Command::SetNodeStatus { id, .. }
            | Command::SetNodeAvailability { id, .. }
            | Command::RemoveNode { id } => b.node(state, id),
            Command::PutTasks(tasks) => tasks.iter().for_each(|t| b.task(state, &t.id)),
            Command::RemoveTasks(ids) => ids.iter().for_each(|id| b.task(state, id)),
            Command::ReportStatus { tasks, .. } => {
                tasks.iter().for_each(|t| b.task(state, &t.task_id))
            }
            Command::Plan(plan) => {
                for id in plan
                    .place
                    .iter()
                    .map(|t| t.id.as_str())
                    .chain(plan.remove.iter().map(String::as_str))
                {
                    b.task(state, id);
                }
                for (service, _) in &plan.rollouts {
                    b.rollout(state, service);
                }
            }
            Command::DeployStack(d) => {
                b.stack(state, &d.name);
                if d.prune {
                    b.services_of_stack(state, &d.name);
                }
                d.services.iter().for_each(|s| b.service(state, &s.name));
            }
            Command::Autoscale(d) => b.service(state, &d.service),
            Command::SetReleaseState { stack, .. } => b.stack(state, stack),
            Command::RollbackStack { stack, .. } => {
                b.stack(state, stack);
                b.services_of_stack(state, stack);
            }
            Command::RemoveStack { name } => {
                b.stack(state, name);
                b.services_of_stack(state, name);
            }
            // Told from the command and its answer alone (`cluster.format`, `cluster.restored`),
            // or nothing to tell (labels, versions, the overlay's plan, a batch as a whole).
            // A command added later tells nothing until it gets an arm here and in `derive`.
            _ => {}
        }
        b
    }

    fn service(&mut self, state: &State, name: &str) {
        if self.services.iter().any(|(n, _)| n == name) {
            return;
        }
        let mark = state.services.get(name).map(|r| {
            let cur = r.current();
            ServiceMark {
                version: cur.version,
                spec: cur.spec.clone(),
            }
        });
        self.services.push((name.to_string(), mark));
    }

    fn services_of_stack(&mut self, state: &State, stack: &str) {
        let prefix = format!("{stack}_");
        for name in state.services.keys().filter(|n| n.starts_with(&prefix)) {
            self.service(state, name);
        }
    }

    fn stack(&mut self, state: &State, name: &str) {
        let mark = state
            .stacks
            .get(name)
            .map(|s| s.current().map(|r| (r.release, r.state)));
        self.stacks.push((name.to_string(), mark));
    }

    fn rollout(&mut self, state: &State, service: &str) {
        if !self.rollouts.iter().any(|(s, _)| s == service) {
            let r = state.rollouts.get(service).cloned();
            self.rollouts.push((service.to_string(), r));
        }
    }

    fn node(&mut self, state: &State, id: &str) {
        let mark = state.nodes.get(id).map(|n| NodeMark {
            status: n.status,
            availability: n.availability,
        });
        self.nodes.push((id.to_string(), mark));
    }

    fn task(&mut self, state: &State, id: &str) {
        if self.seen_tasks.insert(id.to_string()) {
            self.tasks
                .push((id.to_string(), state.tasks.get(id).cloned()));
        }
    }
}

/// The events of one applied command: `before` (noted by [`Before::of`]) against `after`, the
/// state once `command` was applied and answered `response`, at the leader's `time_ms`. Ids are
/// left at `0.0`: the caller numbers the events of an entry. A refused command tells nothing.
pub fn derive(
    before: &Before,
    after: &State,
    command: &Command,
    response: &Response,
    time_ms: u64,
) -> Vec<Event> {
    if matches!(response, Response::Error(_)) {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut tell = Teller {
        time_ms,
        out: &mut out,
    };
    // The cause before its effects (an autoscaling decision, then `service.scaled`).
    if let Response::Autoscale(outcome) = response {
        if outcome.applied {
            tell.decision(&outcome.decision, after);
        }
    }
    for (name, b) in &before.services {
        tell.service(name, b.as_ref(), after);
    }
    for (name, b) in &before.stacks {
        tell.stack(name, b.as_ref(), after);
    }
    for (service, b) in &before.rollouts {
        tell.rollout(service, b.as_ref(), after.rollouts.get(service));
    }
    for (id, b) in &before.nodes {
        tell.node(id, b.as_ref(), after);
    }
    for (id, b) in &before.tasks {
        tell.task(b.as_ref(), after.tasks.get(id));
    }
    match (command, response) {
        (Command::SetClusterFormat { .. }, _) if after.cluster_format > before.cluster_format => {
            let mut e = tell.event(
                ev::CLUSTER_FORMAT,
                format!(
                    "the cluster moved to format {} (every member reads it)",
                    after.cluster_format
                ),
            );
            e.from = Some(before.cluster_format.to_string());
            e.to = Some(after.cluster_format.to_string());
            tell.push(e);
        }
        (Command::Restore(_), Response::Restored(n)) => {
            let e = tell.event(
                ev::CLUSTER_RESTORED,
                format!("the state was replaced by an operator's snapshot ({n} services)"),
            );
            tell.push(e);
        }
        _ => {}
    }
    out
}

/// Builds the events of one command, in order.
struct Teller<'a> {
    time_ms: u64,
    out: &'a mut Vec<Event>,
}

impl Teller<'_> {
    fn event(&self, kind: &str, message: String) -> Event {
        Event::new(kind, self.time_ms, message)
    }

    fn push(&mut self, e: Event) {
        self.out.push(e);
    }

    fn service(&mut self, name: &str, before: Option<&ServiceMark>, after: &State) {
        let now = after.services.get(name).map(|r| r.current());
        let subject = |mut e: Event, version: u64| {
            e.service = Some(name.to_string());
            e.version = Some(version);
            e
        };
        match (before, now) {
            (None, None) => {}
            (None, Some(v)) => {
                let what = match v.spec.mode {
                    ServiceMode::Global => "one replica per node".to_string(),
                    ServiceMode::Replicated => replicas_phrase(v.spec.replicas),
                };
                let mut e = subject(
                    self.event(
                        ev::SERVICE_CREATED,
                        format!("{name} created: {what} of {}", v.spec.image),
                    ),
                    v.version,
                );
                e.to = replicated(&v.spec).map(|n| n.to_string());
                self.push(e);
            }
            (Some(b), None) => {
                let e = subject(
                    self.event(ev::SERVICE_REMOVED, format!("{name} removed")),
                    b.version,
                );
                self.push(e);
            }
            (Some(b), Some(v)) => {
                if !same_run_spec(&b.spec, &v.spec) {
                    let message = match v.origin {
                        VersionOrigin::Rollback { from } => format!(
                            "{name} rolled back to the spec of version {from} (now version {})",
                            v.version
                        ),
                        _ => format!(
                            "{name} updated to version {}: {} changed",
                            v.version,
                            changed_fields(&b.spec, &v.spec)
                        ),
                    };
                    let mut e = subject(self.event(ev::SERVICE_UPDATED, message), v.version);
                    e.from = Some(b.version.to_string());
                    e.to = Some(v.version.to_string());
                    self.push(e);
                }
                if let (Some(from), Some(to)) = (replicated(&b.spec), replicated(&v.spec)) {
                    if from != to {
                        let mut e = subject(
                            self.event(
                                ev::SERVICE_SCALED,
                                format!("{name} scaled from {from} to {}", replicas_phrase(to)),
                            ),
                            v.version,
                        );
                        e.from = Some(from.to_string());
                        e.to = Some(to.to_string());
                        self.push(e);
                    }
                }
            }
        }
    }

    fn decision(&mut self, d: &AutoscaleDecision, after: &State) {
        let source = d.source.as_str();
        let mut message = if d.to == d.from {
            format!(
                "{} kept at {} ({source}): {}",
                d.service,
                replicas_phrase(d.from),
                d.reason
            )
        } else {
            format!(
                "{} autoscaled from {} to {} ({source}): {}",
                d.service, d.from, d.to, d.reason
            )
        };
        if !d.detail.is_empty() {
            message.push_str(&format!("; {}", d.detail));
        }
        let mut e = self.event(ev::AUTOSCALE_DECISION, message);
        e.service = Some(d.service.clone());
        e.version = after.services.get(&d.service).map(|r| r.current().version);
        e.from = Some(d.from.to_string());
        e.to = Some(d.to.to_string());
        self.push(e);
    }

    fn stack(&mut self, name: &str, before: Option<&StackMark>, after: &State) {
        let subject = |mut e: Event, release: Option<u64>| {
            e.stack = Some(name.to_string());
            e.release = release;
            e
        };
        let Some(stack) = after.stacks.get(name) else {
            if before.is_some() {
                let e = subject(
                    self.event(ev::STACK_REMOVED, format!("stack {name} removed")),
                    None,
                );
                self.push(e);
            }
            return;
        };
        let last = before.copied().flatten();
        // The release that was current: its verdict, if it got one.
        if let Some((number, state)) = last {
            if let Some(r) = stack.releases.iter().find(|r| r.release == number) {
                if r.state != state {
                    let (kind, said) = match r.state {
                        ReleaseState::Completed => (ev::STACK_COMPLETED, "completed".to_string()),
                        ReleaseState::RolledBack => {
                            (ev::STACK_ROLLED_BACK, format!("rolled back: {}", r.message))
                        }
                        ReleaseState::Superseded => {
                            (ev::STACK_SUPERSEDED, format!("superseded: {}", r.message))
                        }
                        ReleaseState::Deploying => (ev::STACK_DEPLOYED, "deploying".to_string()),
                    };
                    let mut e = subject(
                        self.event(kind, format!("stack {name} release {number} {said}")),
                        Some(number),
                    );
                    e.from = Some(word(&state));
                    e.to = Some(word(&r.state));
                    self.push(e);
                }
            }
        }
        // Releases made by this command.
        let newer = stack
            .releases
            .iter()
            .filter(|r| last.is_none_or(|(n, _)| r.release > n));
        for r in newer {
            let changed = r.members.iter().filter(|m| m.changed).count();
            let mut said = format!(
                "stack {name} release {}: {changed} of {} service(s) changed",
                r.release,
                r.members.len()
            );
            if !r.removed.is_empty() {
                said.push_str(&format!(", removed {}", r.removed.join(", ")));
            }
            if r.state == ReleaseState::Completed {
                said.push_str(", nothing to roll out");
            }
            let mut e = subject(self.event(ev::STACK_DEPLOYED, said), Some(r.release));
            e.to = Some(word(&r.state));
            self.push(e);
        }
    }

    fn rollout(&mut self, service: &str, before: Option<&Rollout>, after: Option<&Rollout>) {
        let Some(r) = after else {
            return;
        };
        let subject = |mut e: Event| {
            e.service = Some(service.to_string());
            e.version = Some(r.version);
            e
        };
        let new = before.is_none_or(|b| b.version != r.version);
        if new {
            if r.state == RolloutState::RollingBack {
                let failed = r.rollback_of.unwrap_or(r.from_version);
                let mut e = subject(self.event(
                    ev::ROLLOUT_ROLLING_BACK,
                    format!(
                        "{service}: the update to version {failed} failed: {}",
                        r.message
                    ),
                ));
                e.from = Some(failed.to_string());
                e.to = Some(r.version.to_string());
                self.push(e);
                return;
            }
            let mut e = subject(self.event(
                ev::ROLLOUT_STARTED,
                format!(
                    "{service}: rolling update from version {} to {} ({} replica(s))",
                    r.from_version, r.version, r.total
                ),
            ));
            e.from = Some(r.from_version.to_string());
            e.to = Some(r.version.to_string());
            self.push(e);
            if r.state != RolloutState::Updating {
                self.rollout_verdict(service, None, r);
            }
            return;
        }
        let b = before.expect("not new: there was one");
        if b.state != r.state {
            self.rollout_verdict(service, Some(b), r);
        } else if (b.updated, b.total) != (r.updated, r.total) {
            let mut e = subject(self.event(
                ev::ROLLOUT_PROGRESS,
                format!(
                    "{service}: {}/{} replicas updated to version {}",
                    r.updated, r.total, r.version
                ),
            ));
            e.from = Some(format!("{}/{}", b.updated, b.total));
            e.to = Some(format!("{}/{}", r.updated, r.total));
            self.push(e);
        }
    }

    fn rollout_verdict(&mut self, service: &str, before: Option<&Rollout>, r: &Rollout) {
        let kind = match r.state {
            RolloutState::Completed => ev::ROLLOUT_COMPLETED,
            RolloutState::Paused => ev::ROLLOUT_PAUSED,
            RolloutState::RollingBack => ev::ROLLOUT_ROLLING_BACK,
            RolloutState::RolledBack => ev::ROLLOUT_ROLLED_BACK,
            RolloutState::Failed => ev::ROLLOUT_FAILED,
            RolloutState::Updating => ev::ROLLOUT_PROGRESS,
        };
        let mut e = self.event(kind, format!("{service}: {}", r.message));
        e.service = Some(service.to_string());
        e.version = Some(r.version);
        e.from = before.map(|b| word(&b.state));
        e.to = Some(word(&r.state));
        self.push(e);
    }

    fn node(&mut self, id: &str, before: Option<&NodeMark>, after: &State) {
        let now = after.nodes.get(id);
        let subject = |mut e: Event| {
            e.node = Some(id.to_string());
            e
        };
        match (before, now) {
            (None, None) => {}
            (None, Some(n)) => {
                let e = subject(self.event(
                    ev::NODE_REGISTERED,
                    format!("node {id} joined ({}, {})", n.hostname, n.address),
                ));
                self.push(e);
            }
            (Some(_), None) => {
                let e = subject(self.event(ev::NODE_REMOVED, format!("node {id} removed")));
                self.push(e);
            }
            (Some(b), Some(n)) => {
                if b.status != n.status {
                    let (kind, said) = match n.status {
                        NodeStatus::Ready => (ev::NODE_UP, "is up again"),
                        NodeStatus::Down => (
                            ev::NODE_DOWN,
                            "is down (no heartbeat): its replicas are replaced",
                        ),
                    };
                    let mut e = subject(self.event(kind, format!("node {id} {said}")));
                    e.from = Some(word(&b.status));
                    e.to = Some(word(&n.status));
                    self.push(e);
                }
                if b.availability != n.availability {
                    let (kind, said) = match n.availability {
                        NodeAvailability::Drained => {
                            (ev::NODE_DRAINED, "drained: its replicas move elsewhere")
                        }
                        NodeAvailability::Paused => {
                            (ev::NODE_PAUSED, "paused: it takes no new replicas")
                        }
                        NodeAvailability::Active => (ev::NODE_ACTIVE, "active: it takes replicas"),
                    };
                    let mut e = subject(self.event(kind, format!("node {id} {said}")));
                    e.from = Some(word(&b.availability));
                    e.to = Some(word(&n.availability));
                    self.push(e);
                }
            }
        }
    }

    fn task(&mut self, before: Option<&Task>, now: Option<&Task>) {
        match (before, now) {
            (None, None) => {}
            (None, Some(t)) => {
                let said = format!(": placed (version {})", t.service_version);
                self.about_task(ev::TASK_STATE, t, said, None, Some(word(&t.state)));
            }
            (Some(b), None) => {
                if !b.state.is_terminal() {
                    let said = format!(" forgotten while {}{}", word(&b.state), colon(&b.message));
                    self.about_task(ev::TASK_REMOVED, b, said, Some(word(&b.state)), None);
                }
            }
            (Some(b), Some(t)) => {
                if b.state != t.state {
                    let (from, to) = (word(&b.state), word(&t.state));
                    let said = format!(": {from} → {to}{}", colon(&t.message));
                    self.about_task(ev::TASK_STATE, t, said, Some(from), Some(to));
                }
                if t.restarts > b.restarts {
                    let said = format!(
                        " restarted ({} restart(s)){}",
                        t.restarts,
                        colon(&t.message)
                    );
                    let (from, to) = (b.restarts.to_string(), t.restarts.to_string());
                    self.about_task(ev::TASK_RESTARTED, t, said, Some(from), Some(to));
                }
                // Health is news while the replica runs; an ended one's is not.
                let told = matches!(t.health, Health::Healthy | Health::Unhealthy)
                    || (t.health == Health::Starting && b.health != Health::None);
                if b.health != t.health && told && !t.state.is_terminal() {
                    let (from, to) = (word(&b.health), word(&t.health));
                    let said = format!(" is {to}{}", colon(&t.message));
                    self.about_task(ev::TASK_HEALTH, t, said, Some(from), Some(to));
                }
            }
        }
    }

    /// An event about replica `t`: "web.2 on n1" followed by `said`.
    fn about_task(
        &mut self,
        kind: &str,
        t: &Task,
        said: String,
        from: Option<String>,
        to: Option<String>,
    ) {
        let mut e = self.event(kind, format!("{} on {}{said}", replica(t), t.node));
        e.service = Some(t.service.to_string());
        e.node = Some(t.node.to_string());
        e.task = Some(t.id.to_string());
        e.slot = Some(t.slot);
        e.version = Some(t.service_version);
        e.from = from;
        e.to = to;
        self.push(e);
    }
}

/// `web.2`: a replica as `hoist service logs` names it.
fn replica(t: &Task) -> String {
    format!("{}.{}", t.service, t.slot)
}

/// `: why`, or nothing without a why.
fn colon(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    }
}

/// The replica count of a replicated service (a global one has none of its own).
fn replicated(spec: &ServiceSpec) -> Option<i64> {
    (spec.mode == ServiceMode::Replicated).then_some(spec.replicas)
}

fn replicas_phrase(n: i64) -> String {
    format!("{n} replica{}", if n == 1 { "" } else { "s" })
}

/// The word the API uses for a value (`running`, `rolled-back`, `drained`...).
fn word<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => "?".into(),
    }
}

/// The spec fields (as the API names them) that differ, apart from `replicas`: `image, env`.
fn changed_fields(before: &ServiceSpec, after: &ServiceSpec) -> String {
    let (Ok(serde_json::Value::Object(b)), Ok(serde_json::Value::Object(a))) =
        (serde_json::to_value(before), serde_json::to_value(after))
    else {
        return "the spec".into();
    };
    let keys: BTreeSet<&String> = b.keys().chain(a.keys()).collect();
    let changed: Vec<&str> = keys
        .into_iter()
        .filter(|k| *k != "replicas" && b.get(*k) != a.get(*k))
        .map(String::as_str)
        .collect();
    if changed.is_empty() {
        "the spec".into()
    } else {
        changed.join(", ")
    }
}

#[cfg(test)]
#[path = "events_tests.rs"]
mod tests;
