//! Service commands: apply (idempotent), delete, scale and rollback, each keeping the version history.

use super::{invalid, not_found, ServiceRecord, State, HISTORY_LIMIT};
use hoist_proto::cluster::{ServiceChange, ServiceVersion, TaskState, VersionOrigin};
use hoist_proto::raft::{CommandError, ErrorCode, Response};
use hoist_proto::service::{validate_name, ServiceSpec};
use std::collections::VecDeque;

impl State {
    pub(super) fn apply_service(
        &mut self,
        spec: &ServiceSpec,
        now: u64,
    ) -> Result<Response, CommandError> {
        if let Some(e) = spec.validate().into_iter().next() {
            return Err(invalid(&e.field, &e.message));
        }
        Ok(self.new_version(spec.clone(), VersionOrigin::Apply, now))
    }

    pub(super) fn delete_service(&mut self, name: &str) -> Result<Response, CommandError> {
        let record = self.services.remove(name).ok_or_else(|| no_service(name))?;
        for task in self.tasks.values_mut().filter(|t| t.service == name) {
            task.desired = TaskState::Shutdown;
        }
        Ok(Response::Deleted(record.view(name)))
    }

    pub(super) fn scale_service(
        &mut self,
        name: &str,
        replicas: i64,
        now: u64,
    ) -> Result<Response, CommandError> {
        let record = self.services.get(name).ok_or_else(|| no_service(name))?;
        let mut spec = record.current().spec.clone();
        spec.replicas = replicas;
        if let Some(e) = spec.validate().into_iter().find(|e| e.field == "replicas") {
            return Err(invalid(&e.field, &e.message));
        }
        Ok(self.new_version(spec, VersionOrigin::Scale, now))
    }

    pub(super) fn rollback_service(
        &mut self,
        name: &str,
        version: Option<u64>,
        now: u64,
    ) -> Result<Response, CommandError> {
        let record = self.services.get(name).ok_or_else(|| no_service(name))?;
        let target = match version {
            Some(v) => record
                .history
                .iter()
                .find(|h| h.version == v)
                .ok_or_else(|| {
                    let first = record.history[0].version;
                    let last = record.current().version;
                    CommandError {
                        code: ErrorCode::NotFound,
                        message: format!(
                            "version: service {name:?} has no version {v} (kept: {first}..={last})"
                        ),
                        field: Some("version".into()),
                    }
                })?,
            None => record
                .history
                .iter()
                .rev()
                .nth(1)
                .ok_or_else(|| CommandError {
                    code: ErrorCode::Conflict,
                    message: format!(
                        "service {name:?} has no version before {}",
                        record.current().version
                    ),
                    field: None,
                })?,
        };
        let from = target.version;
        let spec = target.spec.clone();
        Ok(self.new_version(spec, VersionOrigin::Rollback { from }, now))
    }

    /// Records `spec` as the service's next version unless it equals the current one.
    fn new_version(&mut self, spec: ServiceSpec, origin: VersionOrigin, now: u64) -> Response {
        let name = spec.name.clone();
        let record = self
            .services
            .entry(name.clone())
            .or_insert_with(|| ServiceRecord {
                created_ms: now,
                history: VecDeque::new(),
            });
        let changed = record.history.back().is_none_or(|cur| cur.spec != spec);
        if changed {
            let version = record.history.back().map_or(1, |cur| cur.version + 1);
            record.history.push_back(ServiceVersion {
                version,
                origin,
                created_ms: now,
                spec,
            });
            if record.history.len() > HISTORY_LIMIT {
                record.history.pop_front();
            }
        }
        Response::Service(ServiceChange {
            service: record.view(&name),
            changed,
        })
    }
}

fn no_service(name: &str) -> CommandError {
    match validate_name(name) {
        Ok(()) => not_found(format!("service {name:?} not found")),
        Err(m) => invalid("name", m),
    }
}
