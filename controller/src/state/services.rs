//! Service commands: apply (idempotent), delete, scale and rollback, each keeping the version history.

use super::{invalid, not_found, ServiceRecord, State, HISTORY_LIMIT};
use hoist_proto::cluster::{ServiceChange, ServiceVersion, TaskState, VersionOrigin};
use hoist_proto::raft::{CommandError, ErrorCode, Response};
use hoist_proto::service::{validate_name_in, ServiceSpec};
use std::sync::Arc;

impl State {
    pub(super) fn apply_service(
        &mut self,
        spec: &ServiceSpec,
        now: u64,
    ) -> Result<Response, CommandError> {
        self.apply_service_with(spec, now, true)
    }

    /// [`State::apply_service`]; a stack deploy, which checked the published ports of all its
    /// services together (a port may move from one of them to another), skips that check.
    pub(super) fn apply_service_with(
        &mut self,
        spec: &ServiceSpec,
        now: u64,
        check_ports: bool,
    ) -> Result<Response, CommandError> {
        if let Some(e) = spec.validate_in(self.cluster_format).into_iter().next() {
            return Err(invalid(&e.field, &e.message));
        }
        self.check_file_references(spec)?;
        // An apply without credentials keeps the ones the service has (as Swarm's update does),
        // as long as its image stays on the same registry: they are never sent to another one.
        let kept_auth;
        let spec = match (&spec.registry_auth, self.services.get(&spec.name)) {
            (None, Some(r))
                if r.current().spec.registry_auth.is_some()
                    && image_registry(&r.current().spec.image) == image_registry(&spec.image) =>
            {
                let mut s = spec.clone();
                s.registry_auth = r.current().spec.registry_auth.clone();
                kept_auth = s;
                &kept_auth
            }
            _ => spec,
        };
        // Once a service autoscales, its replica count is the autoscaler's: an apply that keeps
        // autoscaling keeps the count (within the new bounds), as Kubernetes' HPA does.
        let kept_replicas;
        let spec = match (self.autoscaled_replicas(spec), self.cluster_format >= 2) {
            (Some(replicas), true) if replicas != spec.replicas => {
                let mut s = spec.clone();
                s.replicas = replicas;
                kept_replicas = s;
                &kept_replicas
            }
            _ => spec,
        };
        // Checked before anything changes: a refused apply leaves the state as it was.
        if check_ports {
            self.check_published_ports(spec)?;
        }
        let vip = self.vip_for(spec)?;
        let response = self.new_version(Arc::new(spec.clone()), VersionOrigin::Apply, now);
        if self.set_vip(&spec.name, vip) {
            self.touch_endpoints(&spec.name);
        }
        Ok(match response {
            Response::Service(mut change) => {
                change.service.vip = self.vips.get(&spec.name).cloned();
                Response::Service(change)
            }
            other => other,
        })
    }

    pub(super) fn delete_service(&mut self, name: &str) -> Result<Response, CommandError> {
        let record = self.services.remove(name).ok_or_else(|| no_service(name))?;
        let vip = self.vips.remove(name);
        // With the overlay, replicas serving clients drain first: gone from every node's
        // addresses at this index, stopped by the leader once every node has applied it.
        let drain = self.cluster_format >= 2;
        let index = self.index;
        let mut nodes = Vec::new();
        for id in self.task_ids(name, |_| true) {
            let Some(mut task) = self.tasks.get_mut(&id) else {
                continue;
            };
            if drain && task.is_endpoint() {
                task.drain_index = Some(index);
                task.message = "service deleted".into();
            } else if task.desired != TaskState::Shutdown && task.drain_index.is_none() {
                task.desired = TaskState::Shutdown;
                task.message = "service deleted".into();
                nodes.push((task.node.clone(), id));
            }
        }
        for (node, task) in nodes {
            self.touch_task(&node, &task);
        }
        self.rollouts.remove(name);
        self.autoscale.remove(name);
        self.touch_endpoints(name);
        let mut view = record.view(name);
        view.vip = vip;
        Ok(Response::Deleted(view))
    }

    pub(super) fn scale_service(
        &mut self,
        name: &str,
        replicas: i64,
        now: u64,
    ) -> Result<Response, CommandError> {
        let record = self.services.get(name).ok_or_else(|| no_service(name))?;
        let current = &record.current().spec;
        current
            .replicas_problem(replicas)
            .map_err(|m| invalid("replicas", m))?;
        if self.cluster_format >= 2 {
            // A scale is not a version: history keeps deploys, and rollback never undoes one.
            let from = current.replicas;
            let response = self.set_replicas(name, replicas);
            if from != replicas {
                self.record_operator_scale(name, from, replicas, now);
            }
            return Ok(response);
        }
        let mut spec = ServiceSpec::clone(current);
        spec.replicas = replicas;
        Ok(self.new_version(Arc::new(spec), VersionOrigin::Scale, now))
    }

    /// Sets the current version's `replicas` in place (format 2): no new version, nothing
    /// restarts; the scheduler places or stops replicas to match.
    pub(super) fn set_replicas(&mut self, name: &str, replicas: i64) -> Response {
        let vip = self.vips.get(name).cloned();
        let Some(record) = self.services.get_mut(name) else {
            return Response::Error(no_service(name));
        };
        let changed = record.current().spec.replicas != replicas;
        if changed {
            let cur = Arc::make_mut(&mut record.history)
                .back_mut()
                .expect("a service record holds at least one version");
            Arc::make_mut(&mut cur.spec).replicas = replicas;
        }
        let mut view = record.view(name);
        view.vip = vip;
        Response::Service(ServiceChange {
            service: view,
            changed,
        })
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
        let mut spec = target.spec.clone();
        if self.cluster_format >= 2 {
            if let Some(replicas) = self.autoscaled_replicas(&spec) {
                Arc::make_mut(&mut spec).replicas = replicas;
            }
        }
        Ok(self.new_version(spec, VersionOrigin::Rollback { from }, now))
    }

    /// Records `spec` as the service's next version unless it equals the current one.
    /// Whether a version after `version` of `service` was made to restart its replicas (a
    /// replica of `version` is then outdated even if the spec is the same).
    pub fn restarted_since(&self, service: &str, version: u64) -> bool {
        self.services.get(service).is_some_and(|r| {
            r.history
                .iter()
                .any(|v| v.version > version && matches!(v.origin, VersionOrigin::Restart { .. }))
        })
    }

    /// A new version of `name` with its current spec (origin `restart`): its replicas are
    /// replaced through the update policy, as for any new version, since no task is carried
    /// over to it.
    pub(super) fn restart_service(&mut self, name: &str, now: u64) {
        let Some(record) = self.services.get_mut(name) else {
            return;
        };
        let cur = record.current().clone();
        let history = Arc::make_mut(&mut record.history);
        history.push_back(ServiceVersion {
            version: cur.version + 1,
            origin: VersionOrigin::Restart { from: cur.version },
            created_ms: now,
            spec: cur.spec,
        });
        if history.len() > HISTORY_LIMIT {
            history.pop_front();
        }
    }

    fn new_version(&mut self, spec: Arc<ServiceSpec>, origin: VersionOrigin, now: u64) -> Response {
        let name = spec.name.clone();
        if !self.services.contains_key(&name) {
            // An agent holds none of a new service's replicas: its first entry is whole. Noted
            // for this process's answers only (`endpoints_index` is replicated and unchanged).
            self.endpoint_changes.created(&name, self.index);
        }
        let record = self
            .services
            .entry(name.clone())
            .or_insert_with(|| ServiceRecord {
                created_ms: now,
                history: Default::default(),
            });
        let changed = record.history.back().is_none_or(|cur| cur.spec != spec);
        if changed {
            let version = record.history.back().map_or(1, |cur| cur.version + 1);
            let history = Arc::make_mut(&mut record.history);
            history.push_back(ServiceVersion {
                version,
                origin,
                created_ms: now,
                spec,
            });
            if history.len() > HISTORY_LIMIT {
                history.pop_front();
            }
        }
        let mut view = record.view(&name);
        view.vip = self.vips.get(&name).cloned();
        if changed {
            self.carry_over_tasks(&name);
        }
        Response::Service(ServiceChange {
            service: view,
            changed,
        })
    }
}

impl State {
    /// After a change that does not touch what runs (only `replicas`), tasks of the previous
    /// version belong to the new one: nothing restarts, and a rollout in progress follows.
    fn carry_over_tasks(&mut self, name: &str) {
        let Some(record) = self.services.get(name) else {
            return;
        };
        let n = record.history.len();
        if n < 2 {
            return;
        }
        let (prev, cur) = (&record.history[n - 2], &record.history[n - 1]);
        // Before format 2, a change of the autoscale bounds made new tasks, as 0.2.0 does.
        if !same_run_spec(&prev.spec, &cur.spec)
            || (self.cluster_format < 2 && prev.spec.autoscale != cur.spec.autoscale)
        {
            return;
        }
        let (from, to) = (prev.version, cur.version);
        let mut nodes = Vec::new();
        for id in self.task_ids(name, |t| t.service_version == from) {
            if let Some(mut t) = self.tasks.get_mut(&id) {
                t.service_version = to;
                nodes.push((t.node.clone(), id));
            }
        }
        for (node, task) in nodes {
            self.touch_task(&node, &task);
        }
        if let Some(r) = self.rollouts.get_mut(name) {
            if r.version == from {
                r.version = to;
            }
        }
    }
}

/// The registry an image reference names, by Docker's rule (pure, the same on every member): the
/// first path component when it has a `.` or `:` or is `localhost`, else Docker Hub.
pub fn image_registry(image: &str) -> &str {
    match image.split_once('/') {
        Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => first,
        _ => "docker.io",
    }
}

/// Whether two specs run the same containers (they differ at most in `replicas`, how clients
/// find them, or the autoscaling policy).
pub fn same_run_spec(a: &ServiceSpec, b: &ServiceSpec) -> bool {
    // Destructured, so that a new field has to be placed on one side or the other here.
    let ServiceSpec {
        name,
        image,
        command,
        args,
        env,
        replicas: _,
        resources,
        ports,
        health_check,
        restart,
        update,
        placement,
        labels,
        // How many replicas may run, not what runs.
        autoscale: _,
        mode,
        stop_signal,
        stop_grace_period,
        // How clients find the replicas, not what runs.
        endpoint_mode: _,
        user,
        workdir,
        hostname,
        init,
        read_only,
        ulimits,
        mounts,
        image_digest,
        // How the image is fetched, not what runs.
        registry_auth: _,
        cap_add,
        cap_drop,
        no_new_privileges,
        userns,
        // Which files a replica mounts where (a new version of a file is not a new spec).
        secrets,
        configs,
    } = a;
    *name == b.name
        && *image == b.image
        && *command == b.command
        && *args == b.args
        && *env == b.env
        && *resources == b.resources
        && *ports == b.ports
        && *health_check == b.health_check
        && *restart == b.restart
        && *update == b.update
        && *placement == b.placement
        && *labels == b.labels
        && *mode == b.mode
        && *stop_signal == b.stop_signal
        && *stop_grace_period == b.stop_grace_period
        && *user == b.user
        && *workdir == b.workdir
        && *hostname == b.hostname
        && *init == b.init
        && *read_only == b.read_only
        && *ulimits == b.ulimits
        && *mounts == b.mounts
        && *image_digest == b.image_digest
        && *cap_add == b.cap_add
        && *cap_drop == b.cap_drop
        && *no_new_privileges == b.no_new_privileges
        && *userns == b.userns
        && *secrets == b.secrets
        && *configs == b.configs
}

pub(super) fn no_service(name: &str) -> CommandError {
    match validate_name_in(name, hoist_proto::format::CURRENT) {
        Ok(()) => not_found(format!("service {name:?} not found")),
        Err(m) => invalid("name", m),
    }
}
