//! Stacks: services deployed together and released as one.
//!
//! `docker stack deploy` updates each service on its own: when one fails its update the others
//! stay on the new version, and the command has already returned (docker/cli#373,
//! moby/moby#34712). Here a deploy is one **release**: every service it changes rolls out under
//! the release's number, the leader gives the release one verdict (`leader/stacks.rs` reads the
//! services' rollouts), and when any of them fails, every changed service goes back to its
//! previous version and services the release created are removed — in one command, so no member
//! ever sees half a rollback.
//!
//! A deploy is all or nothing: every spec is checked (validation, published ports against other
//! services and among the stack's own, room for new virtual IPs) before anything changes.

use super::{invalid, not_found, State};
use hoist_proto::cluster::{
    ReleaseState, ServiceChange, Stack, StackChange, StackMember, StackRelease,
};
use hoist_proto::raft::{CommandError, ErrorCode, Response, StackDeploy};
use hoist_proto::service::{validate_stack_name, PortMode};
use std::collections::BTreeSet;

/// How many releases a stack keeps.
pub const RELEASE_HISTORY_LIMIT: usize = 20;

fn conflict(message: String) -> CommandError {
    CommandError {
        code: ErrorCode::Conflict,
        message,
        field: None,
    }
}

impl State {
    pub(super) fn deploy_stack(
        &mut self,
        d: &StackDeploy,
        now: u64,
    ) -> Result<Response, CommandError> {
        self.check_deploy(d)?;
        let named: BTreeSet<&str> = d.services.iter().map(|s| s.name.as_str()).collect();
        let mut changes = Vec::new();
        // Pruned services go first: a port they held may be one the deploy gives another.
        let mut removed = Vec::new();
        if d.prune {
            let gone = self.services_of(&d.name);
            for name in gone.into_iter().filter(|n| !named.contains(n.as_str())) {
                self.delete_into(&name, &mut changes)?;
                removed.push(name);
            }
        }
        let mut members = Vec::new();
        for spec in &d.services {
            let previous = self
                .services
                .get(&spec.name)
                .map_or(0, |r| r.current().version);
            // `check_deploy` checked every port of the stack at once (and everything else
            // `apply_service` could refuse): nothing below fails.
            let change = match self.apply_service_with(spec, now, false)? {
                Response::Service(c) => c,
                other => {
                    return Err(conflict(format!(
                        "{}: unexpected answer {other:?}",
                        spec.name
                    )))
                }
            };
            members.push(StackMember {
                service: spec.name.clone(),
                version: change.service.version,
                previous,
                changed: change.changed,
            });
            changes.push(change);
        }
        let services = self.services_of(&d.name);
        let changed = members.iter().any(|m| m.changed) || !removed.is_empty();
        let stack = self.stacks.entry(d.name.clone()).or_insert_with(|| Stack {
            name: d.name.clone(),
            created_ms: now,
            services: vec![],
            releases: vec![],
        });
        stack.services = services;
        if changed || stack.releases.is_empty() {
            if let Some(cur) = stack.releases.last_mut() {
                if cur.state == ReleaseState::Deploying {
                    cur.state = ReleaseState::Superseded;
                    cur.message = "a later deploy took over".into();
                    cur.updated_ms = now;
                }
            }
            let release = stack.releases.last().map_or(1, |r| r.release + 1);
            // Nothing to roll out (only removals, or a first deploy of unchanged services):
            // the release is complete at once.
            let rolling = members.iter().any(|m| m.changed);
            stack.releases.push(StackRelease {
                release,
                created_ms: now,
                updated_ms: now,
                state: if rolling {
                    ReleaseState::Deploying
                } else {
                    ReleaseState::Completed
                },
                message: String::new(),
                members,
                removed,
            });
            if stack.releases.len() > RELEASE_HISTORY_LIMIT {
                stack.releases.remove(0);
            }
        }
        Ok(Response::Stack(Box::new(StackChange {
            stack: stack.clone(),
            changed,
            services: changes,
        })))
    }

    /// Everything a deploy could be refused for, checked before anything changes.
    fn check_deploy(&self, d: &StackDeploy) -> Result<(), CommandError> {
        validate_stack_name(&d.name).map_err(|m| invalid("name", m))?;
        if d.services.is_empty() {
            return Err(invalid("services", "a stack needs at least one service"));
        }
        let prefix = format!("{}_", d.name);
        // The stack's own services the deploy redefines or prunes: their current ports are
        // about to change, and the stack's ports are checked among themselves below.
        let redefined: BTreeSet<&str> = d.services.iter().map(|s| s.name.as_str()).collect();
        let replaced: BTreeSet<String> = self
            .services_of(&d.name)
            .into_iter()
            .filter(|n| d.prune || redefined.contains(n.as_str()))
            .collect();
        let mut names = BTreeSet::new();
        let mut ports = Vec::new();
        for (i, spec) in d.services.iter().enumerate() {
            let field = |f: &str| format!("services[{i}].{f}");
            if !spec.name.starts_with(&prefix) || spec.name.len() == prefix.len() {
                return Err(invalid(
                    &field("name"),
                    format!("{:?} must be named {prefix}SERVICE", spec.name),
                ));
            }
            if !names.insert(spec.name.as_str()) {
                return Err(invalid(
                    &field("name"),
                    format!("{:?} is given twice", spec.name),
                ));
            }
            if let Some(e) = spec.validate_in(self.cluster_format).into_iter().next() {
                return Err(invalid(
                    &format!("{} ({})", field(&e.field), spec.name),
                    &e.message,
                ));
            }
            self.check_published_ports_except(spec, &replaced)
                .map_err(|mut e| {
                    e.message = format!("{}: {}", spec.name, e.message);
                    e
                })?;
            for p in &spec.ports {
                let Some(published) = p.published else {
                    continue;
                };
                // Two of the stack's own services may share a port only both in host mode.
                let key = (published, p.protocol);
                let clash = ports.iter().any(|(k, mode)| {
                    *k == key && (p.mode == PortMode::Ingress || *mode == PortMode::Ingress)
                });
                if clash {
                    return Err(conflict(format!(
                        "{}: port {published} is published by another service of the stack",
                        spec.name
                    )));
                }
                ports.push((key, p.mode));
            }
        }
        let specs: Vec<_> = d.services.iter().collect();
        self.check_vips_for(&specs)
    }

    pub(super) fn set_release_state(
        &mut self,
        stack: &str,
        release: u64,
        state: ReleaseState,
        message: &str,
        now: u64,
    ) -> Result<Response, CommandError> {
        let r = self.deploying_release(stack, release)?;
        r.state = state;
        r.message = message.to_string();
        r.updated_ms = now;
        Ok(Response::Ok)
    }

    pub(super) fn rollback_stack(
        &mut self,
        stack: &str,
        release: u64,
        reason: &str,
        now: u64,
    ) -> Result<Response, CommandError> {
        let members = self.deploying_release(stack, release)?.members.clone();
        let mut changes = Vec::new();
        for m in members.iter().filter(|m| m.changed) {
            let Some(record) = self.services.get(&m.service) else {
                continue;
            };
            // A service that already left the release's version (it rolled itself back, or an
            // operator changed it) is left as it is.
            if record.current().version != m.version {
                continue;
            }
            if m.previous == 0 {
                self.delete_into(&m.service, &mut changes)?;
            } else if let Response::Service(c) =
                self.rollback_service(&m.service, Some(m.previous), now)?
            {
                changes.push(c);
            }
        }
        let services = self.services_of(stack);
        let s = self.stacks.get_mut(stack).expect("checked above");
        s.services = services;
        let r = s.releases.last_mut().expect("checked above");
        r.state = ReleaseState::RolledBack;
        r.message = reason.to_string();
        r.updated_ms = now;
        Ok(Response::Stack(Box::new(StackChange {
            stack: s.clone(),
            changed: true,
            services: changes,
        })))
    }

    pub(super) fn remove_stack(&mut self, name: &str) -> Result<Response, CommandError> {
        let Some(stack) = self.stacks.remove(name) else {
            return Err(not_found(format!("stack {name:?} not found")));
        };
        let mut changes = Vec::new();
        for n in self.services_of(name) {
            self.delete_into(&n, &mut changes)?;
        }
        Ok(Response::Stack(Box::new(StackChange {
            stack,
            changed: true,
            services: changes,
        })))
    }

    /// The stack's current release, which must be `release` and still deploying: a verdict on
    /// an older or finished release (a stale leader's) changes nothing.
    fn deploying_release(
        &mut self,
        stack: &str,
        release: u64,
    ) -> Result<&mut StackRelease, CommandError> {
        let s = self
            .stacks
            .get_mut(stack)
            .ok_or_else(|| not_found(format!("stack {stack:?} not found")))?;
        match s.releases.last_mut() {
            Some(r) if r.release == release && r.state == ReleaseState::Deploying => Ok(r),
            _ => Err(conflict(format!(
                "stack {stack:?}: release {release} is not the one deploying"
            ))),
        }
    }

    /// A stack by name.
    pub fn stack(&self, name: &str) -> Option<Stack> {
        self.stacks.get(name).cloned()
    }

    /// The services of stack `stack` (named `STACK_...`), sorted.
    fn services_of(&self, stack: &str) -> Vec<String> {
        let prefix = format!("{stack}_");
        self.services
            .keys()
            .filter(|n| n.starts_with(&prefix))
            .cloned()
            .collect()
    }

    /// Deletes service `name` and records it in `changes`.
    fn delete_into(
        &mut self,
        name: &str,
        changes: &mut Vec<ServiceChange>,
    ) -> Result<(), CommandError> {
        if let Response::Deleted(service) = self.delete_service(name)? {
            changes.push(ServiceChange {
                service,
                changed: true,
            });
        }
        Ok(())
    }
}
