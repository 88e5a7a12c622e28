//! The replicated cluster state and its pure, deterministic `apply`.
//!
//! Every controller applies the same committed commands in the same order and must reach the same
//! state, so nothing here reads a clock, a random source or the disk: time comes stamped on the
//! [`Request`] by the leader. Raft, HTTP and storage live elsewhere and only call [`State::apply`].

mod assignment_changes;
mod autoscale;
mod endpoint_changes;
pub mod events;
mod files;
mod nodes;
mod operators;
mod overlay;
mod services;
mod snapshot;
mod spec_changes;
mod stacks;
mod task_table;
mod tasks;
#[cfg(test)]
pub(crate) mod tests;
mod usage;
mod vips;

pub use assignment_changes::{AssignmentChanges, Changed};
pub use endpoint_changes::{ChangedReplicas, EndpointChanges};
pub use operators::{describe as describe_command, valid_token_name, AUDIT_KEEP};
pub use services::same_run_spec;
pub use snapshot::{decode_snapshot, encode_snapshot, snapshot_format, SnapshotError};
pub use spec_changes::SpecChanges;
pub use task_table::{TaskMut, TaskTable};
pub use usage::NodeUsages;

use hoist_proto::cluster::{
    AuditEntry, AutoscaleLog, ClusterCa, ClusterNetwork, HookToken, Node, OperatorToken, Rollout,
    Service, ServiceVersion, Stack, Task,
};
use hoist_proto::events::{Event, EventId};
use hoist_proto::files::{MemberKey, StoredFile};
use hoist_proto::raft::{Command, CommandError, ErrorCode, Request, Response};
use hoist_proto::service::ServiceSpec;
use std::collections::{BTreeMap, VecDeque};

/// How many versions of a service are kept; older ones are dropped from the history.
pub const HISTORY_LIMIT: usize = 32;
/// How many ended tasks are kept per replica slot.
pub const SLOT_HISTORY_LIMIT: usize = 5;

/// The cluster's identity and join secret, made once (see `hoist_proto::node::parse_join_token`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterIdentity {
    pub cluster_id: String,
    /// The worker join token's secret.
    pub secret: String,
    /// The manager join token's secret: empty until the first `hoist cluster token --role
    /// manager` makes it. Format 2.
    pub manager_secret: String,
}

/// A service's versions, oldest first; the last one is current.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRecord {
    pub created_ms: u64,
    /// A deque: dropping the oldest version must not shift the others. Never empty (decoding
    /// refuses a snapshot with an empty one). Shared: every command copies the services map to
    /// see what it changed, and a change then copies the records of the changed entry's leaf;
    /// each of those copies is a count, not up to [`HISTORY_LIMIT`] versions.
    pub history: std::sync::Arc<VecDeque<ServiceVersion>>,
}

impl ServiceRecord {
    /// The current version (a record always holds at least one).
    pub fn current(&self) -> &ServiceVersion {
        self.history
            .back()
            .expect("a service record holds at least one version")
    }

    /// The service as the API shows it.
    pub fn view(&self, name: &str) -> Service {
        let cur = self.current();
        Service {
            name: name.to_string(),
            version: cur.version,
            spec: cur.spec.clone(),
            created_ms: self.created_ms,
            updated_ms: cur.created_ms,
            vip: None,
        }
    }
}

/// An ordered map whose copies share their structure: cloning the state costs O(1) per map, and a
/// change after a copy copies only the path to the changed entry (16-entry leaves). The leader
/// reconciles on such a copy while commits go on (`leader/run.rs`); snapshots are built from one.
pub type Map<K, V> = imbl::OrdMap<K, V>;

/// Everything the controllers agree on. Plain data, ordered maps for a deterministic encoding
/// (see [`snapshot`] for how it is stored).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct State {
    pub services: Map<String, ServiceRecord>,
    pub nodes: Map<String, Node>,
    pub tasks: TaskTable,
    pub identity: Option<ClusterIdentity>,
    /// Rolling updates, by service.
    pub rollouts: Map<String, Rollout>,
    /// Ended tasks per service and slot, newest last, at most [`SLOT_HISTORY_LIMIT`] each.
    pub slot_history: Map<String, Map<u64, VecDeque<Task>>>,
    /// Raft index of the last change to each node's assignments (for the agents' long poll).
    pub node_index: Map<String, u64>,
    /// Raft index of the last change to each service's endpoints (for the registry's watch).
    pub endpoints_index: Map<String, u64>,
    /// The format every member reads (`hoist_proto::format`): what the cluster writes. Raised by
    /// the leader once the last member has been upgraded; never lowered. 0 in a state from 0.1.0.
    pub cluster_format: u32,
    /// The overlay's address plan (format 2); set once by the leader.
    pub network: Option<ClusterNetwork>,
    /// Raft index of the last change to any node's overlay record (a subnet, key or endpoint, a
    /// node removed): every agent's assignments poll wakes on it. Format 2.
    pub overlay_index: u64,
    /// Services' virtual IPs, by service name (format 2; `state/vips.rs`).
    pub vips: Map<String, String>,
    /// Stacks and their releases, by name (format 2; `state/stacks.rs`).
    pub stacks: Map<String, Stack>,
    /// Autoscaling decisions and applied alerts, by service (format 2; `state/autoscale.rs`).
    pub autoscale: Map<String, AutoscaleLog>,
    /// Tokens of the scaling hooks, by id (format 2).
    pub hook_tokens: Map<String, HookToken>,
    /// Operators' tokens, by name (format 2; `state/operators.rs`).
    pub operator_tokens: Map<String, OperatorToken>,
    /// Operators' writes, oldest first, at most [`AUDIT_KEEP`] (format 2).
    pub audit: imbl::Vector<AuditEntry>,
    /// Secrets, by name, their content sealed under the data key (format 2; `state/files.rs`).
    pub secrets: Map<String, StoredFile>,
    /// Configs, by name (format 2).
    pub configs: Map<String, StoredFile>,
    /// Members' public keys and sealed copies of the data key, by member id (format 2;
    /// `crate::keyring`).
    pub member_keys: Map<u64, MemberKey>,
    /// The id of the cluster's data key; empty until the first leader of format 2 makes it.
    pub data_key_id: String,
    /// The unlock key sealed under the data key while autolock is on; empty when off
    /// (`crate::keyring::lock`).
    pub autolock: Vec<u8>,
    /// The cluster's root CA, its key sealed under the data key; `None` until the first leader
    /// with a data key makes it (format 2; `state/files.rs`).
    pub ca: Option<ClusterCa>,
    /// Raft index of the entry being applied; set by the state machine before [`State::apply`].
    /// Not part of the state's encoding or hash: a refused command must change nothing.
    pub index: u64,
    /// The nodes whose assignments changed, and whether any endpoints did, since the state
    /// machine last took them, to wake only the polls concerned (`crate::raft::watches`). Not
    /// part of the state.
    pub touched: Touched,
    /// Each node's usage by its tasks, kept as they change (`state/usage.rs`). Derived: not part
    /// of the state's encoding or comparison.
    pub usage: NodeUsages,
    /// The index of each service's last change to what its agents are sent
    /// (`state/spec_changes.rs`). Derived per process: not part of the state's encoding or
    /// comparison.
    pub spec_changes: SpecChanges,
    /// Below which index the endpoints' changes are not known (`state/endpoint_changes.rs`).
    /// Derived per process: not part of the state's encoding or comparison.
    pub endpoint_changes: EndpointChanges,
    /// The index of each node's newest changes to its tasks' assignments
    /// (`state/assignment_changes.rs`). Derived per process: not part of the state's encoding or
    /// comparison.
    pub assignment_changes: AssignmentChanges,
}

/// What [`State::touch_node`] and [`State::touch_endpoints`] noted until taken. Not part of the
/// state: two states are equal whatever their notes (a refused command may leave one, which only
/// wakes a poll that then finds nothing new).
#[derive(Debug, Clone, Default)]
pub struct Touched {
    pub nodes: Vec<String>,
    pub endpoints: bool,
}

impl Touched {
    /// What was noted since the last take.
    pub fn take(&mut self) -> Touched {
        std::mem::take(self)
    }
}

impl PartialEq for Touched {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Touched {}

impl State {
    /// Applies one committed command. Refused commands leave the state unchanged and answer
    /// [`Response::Error`]; nothing here panics on any input.
    pub fn apply(&mut self, req: &Request) -> Response {
        let response = self.apply_telling(req, None);
        #[cfg(test)]
        if let Err(e) = (self.usage_is_exact()).and_then(|()| self.tasks.tally_is_exact()) {
            panic!("after {:?}: {e}", req.command);
        }
        response
    }

    /// [`State::apply`], adding to `told` (when given) the events it tells (`events.rs`).
    fn apply_telling(&mut self, req: &Request, told: Option<&mut Vec<Event>>) -> Response {
        let Some(told) = told else {
            return self.apply_command(req, None);
        };
        let before = events::Before::of(self, &req.command);
        let response = self.apply_command(req, Some(told));
        told.extend(events::derive(
            &before,
            self,
            &req.command,
            &response,
            req.time_ms,
        ));
        response
    }

    fn apply_command(&mut self, req: &Request, told: Option<&mut Vec<Event>>) -> Response {
        let (services_before, format_before) = (self.services.clone(), self.cluster_format);
        let response = self.apply_checked(req, told);
        self.settle_usage(&services_before, format_before);
        if self.cluster_format != format_before {
            self.everything_changed(self.index);
        }
        self.spec_changes
            .note(&services_before, &self.services, self.index);
        response
    }

    fn apply_checked(&mut self, req: &Request, mut told: Option<&mut Vec<Event>>) -> Response {
        let now = req.time_ms;
        if let Err(e) = self.check_format(&req.command) {
            return Response::Error(e);
        }
        let result = match &req.command {
            Command::ApplyService(spec) => self.apply_service(spec, now),
            Command::DeleteService { name } => self.delete_service(name),
            Command::ScaleService { name, replicas } => self.scale_service(name, *replicas, now),
            Command::RollbackService { name, version } => {
                self.rollback_service(name, *version, now)
            }
            Command::RegisterNode(node) => self.register_node(node, now),
            Command::SetNodeStatus { id, status } => self.set_node_status(id, *status, now),
            Command::RemoveNode { id } => self.remove_node(id),
            Command::PutTasks(tasks) => self.put_tasks(tasks, now),
            Command::RemoveTasks(ids) => Ok(self.remove_tasks(ids)),
            Command::Restore(bytes) => self.restore(bytes),
            Command::Noop => Ok(Response::Ok),
            Command::Plan(plan) => Ok(Response::Plan(self.apply_plan(plan, now))),
            Command::SetNodeAvailability { id, availability } => {
                self.set_node_availability(id, *availability, now)
            }
            Command::SetNodeLabels { id, set, remove } => {
                self.set_node_labels(id, set, remove, now)
            }
            Command::ReportStatus { node, tasks } => Ok(self.report_status(node, tasks, now)),
            Command::InitCluster { cluster_id, secret } => {
                if self.identity.is_none() {
                    self.identity = Some(ClusterIdentity {
                        cluster_id: cluster_id.clone(),
                        secret: secret.clone(),
                        manager_secret: String::new(),
                    });
                }
                Ok(Response::Ok)
            }
            Command::SetClusterFormat { format } => {
                self.cluster_format = self.cluster_format.max(*format);
                Ok(Response::Ok)
            }
            Command::SetNodeVersion {
                id,
                agent_version,
                agent_format,
            } => self.set_node_version(id, agent_version, *agent_format, now),
            Command::SetClusterNetwork(net) => self.set_cluster_network(net),
            Command::DeployStack(d) => self.deploy_stack(d, now),
            Command::SetReleaseState {
                stack,
                release,
                state,
                message,
            } => self.set_release_state(stack, *release, *state, message, now),
            Command::RollbackStack {
                stack,
                release,
                reason,
            } => self.rollback_stack(stack, *release, reason, now),
            Command::RemoveStack { name } => self.remove_stack(name),
            Command::Autoscale(decision) => self.apply_autoscale(decision, now),
            Command::CreateHookToken(token) => self.create_hook_token(token),
            Command::RemoveHookToken { id } => self.remove_hook_token(id),
            Command::CreateOperatorToken(token) => self.create_operator_token(token),
            Command::RemoveOperatorToken { name } => self.remove_operator_token(name),
            Command::TouchOperatorTokens { names } => Ok(self.touch_operator_tokens(names, now)),
            Command::PutFile(write) => self.put_file(write, now),
            Command::RemoveFile { kind, name } => self.remove_file(*kind, name),
            Command::SetMemberKey { member, public_key } => {
                self.set_member_key(*member, public_key)
            }
            Command::SealDataKey { key_id, keys } => self.seal_data_key(key_id, keys),
            Command::SetAutolock { sealed_unlock_key } => self.set_autolock(sealed_unlock_key),
            Command::RemoveMemberKeys { members } => {
                for m in members {
                    self.member_keys.remove(m);
                }
                Ok(Response::Ok)
            }
            Command::SetClusterCa(ca) => self.set_cluster_ca(ca),
            Command::RotateClusterCa(ca) => self.rotate_cluster_ca(ca),
            Command::FinishCaRotation { digest } => self.finish_ca_rotation(digest),
            Command::RotateJoinSecret { secret, manager } => {
                self.rotate_join_secret(secret, *manager)
            }
            Command::Audited { actor, command } => {
                if matches!(**command, Command::Audited { .. }) {
                    return Response::Error(CommandError {
                        code: ErrorCode::Invalid,
                        message: "an audited command cannot hold another".into(),
                        field: None,
                    });
                }
                let response = self.apply_telling(
                    &Request {
                        time_ms: now,
                        command: (**command).clone(),
                    },
                    told,
                );
                self.record_audit(actor, command, &response, now);
                Ok(response)
            }
            Command::Batch(commands) => Ok(Response::Batch(
                commands
                    .iter()
                    .map(|c| self.apply_one_of_batch(c, now, told.as_deref_mut()))
                    .collect(),
            )),
        };
        result.unwrap_or_else(Response::Error)
    }

    /// Refuses a command that needs a newer format than the cluster's: a member that has not been
    /// upgraded yet could not apply it as the others do. The leader checks before proposing
    /// (`RaftNode::write`); this keeps a stale leader's mistake from ever changing the state.
    fn check_format(&self, command: &Command) -> Result<(), CommandError> {
        // A batch's commands are checked one by one as they are applied.
        let needs = match command {
            Command::Batch(_) => 0,
            c => c.needs_cluster_format(),
        };
        if needs <= self.cluster_format {
            return Ok(());
        }
        Err(CommandError {
            code: ErrorCode::Conflict,
            message: format!(
                "this needs cluster format {needs}, and the cluster is at format {}: \
                 finish upgrading every controller member first",
                self.cluster_format
            ),
            field: None,
        })
    }

    /// Applies one command of a batch; nested batches are refused.
    fn apply_one_of_batch(
        &mut self,
        command: &Command,
        now: u64,
        told: Option<&mut Vec<Event>>,
    ) -> Response {
        if matches!(command, Command::Batch(_)) {
            return Response::Error(CommandError {
                code: ErrorCode::Invalid,
                message: "a batch cannot contain a batch".into(),
                field: None,
            });
        }
        self.apply_telling(
            &Request {
                time_ms: now,
                command: command.clone(),
            },
            told,
        )
    }

    /// Applies a command committed at Raft log `index`.
    pub fn apply_at(&mut self, index: u64, req: &Request) -> Response {
        self.index = index;
        self.apply(req)
    }

    /// [`State::apply_at`], answering also the events it tells, numbered `INDEX.0`, `INDEX.1`...
    pub fn apply_at_telling(&mut self, index: u64, req: &Request) -> (Response, Vec<Event>) {
        self.index = index;
        let mut told = Vec::new();
        let response = self.apply_telling(req, Some(&mut told));
        for (seq, e) in told.iter_mut().enumerate() {
            e.index = index;
            e.id = EventId::new(index, seq as u32);
        }
        (response, told)
    }

    /// The spec a task was made from: its version if still kept, else the current one.
    pub fn spec_of(&self, service: &str, version: u64) -> Option<&ServiceSpec> {
        let r = self.services.get(service)?;
        Some(
            &r.history
                .iter()
                .rev()
                .find(|v| v.version == version)
                .unwrap_or_else(|| r.current())
                .spec,
        )
    }

    /// The ids of `service`'s tasks that `pick` selects, to change them one by one (a
    /// persistent map lends no iterator of mutable entries).
    fn task_ids(&self, service: &str, pick: impl Fn(&Task) -> bool) -> Vec<String> {
        self.tasks
            .of_service(service)
            .filter(|t| pick(t))
            .map(|t| t.id.to_string())
            .collect()
    }

    /// What every agent is sent may have changed at `index`: a new format, a restored image, an
    /// installed snapshot. Only whole answers are given to polls older than it.
    pub fn everything_changed(&mut self, index: u64) {
        self.spec_changes.everything(index);
        self.assignment_changes.everything(index);
        self.endpoint_changes.everything(index);
    }

    /// Marks `task`'s assignment on `node` as changed at this index.
    pub(crate) fn touch_task(&mut self, node: &str, task: &str) {
        self.assignment_changes.task(node, task, self.index);
        self.wake_node(node);
    }

    /// Marks all of `node`'s assignments as changed at this index.
    pub(crate) fn touch_node(&mut self, node: &str) {
        self.assignment_changes.node(node, self.index);
        self.wake_node(node);
    }

    /// Wakes `node`'s poll: something it is sent changed at this index.
    fn wake_node(&mut self, node: &str) {
        self.touched.nodes.push(node.to_string());
        let index = self.index;
        match self.node_index.get_mut(node) {
            Some(i) => *i = index,
            None => {
                self.node_index.insert(node.to_string(), index);
            }
        }
    }

    /// Marks `service`'s endpoints as changed at this index, all of them (its virtual IP, its
    /// removal).
    pub(crate) fn touch_endpoints(&mut self, service: &str) {
        self.endpoint_changes.service(service, self.index);
        self.bump_endpoints(service);
    }

    /// Marks `task` as having entered, left or moved among its service's ready replicas at
    /// this index, as it is now.
    pub(crate) fn touch_endpoint(&mut self, task: &str) {
        let Some(t) = self.tasks.get(task) else {
            return;
        };
        let (service, now) = (t.service.clone(), t.as_replica());
        self.endpoint_changes
            .replica(&service, task, now, self.index);
        self.bump_endpoints(&service);
    }

    fn bump_endpoints(&mut self, service: &str) {
        self.touched.endpoints = true;
        let index = self.index;
        match self.endpoints_index.get_mut(service) {
            Some(i) => *i = index,
            None => {
                self.endpoints_index.insert(service.to_string(), index);
            }
        }
    }

    /// A service by name.
    pub fn service(&self, name: &str) -> Option<Service> {
        self.services.get(name).map(|r| self.view_of(name, r))
    }

    /// All services, by name.
    pub fn list_services(&self) -> Vec<Service> {
        self.services
            .iter()
            .map(|(n, r)| self.view_of(n, r))
            .collect()
    }

    fn view_of(&self, name: &str, record: &ServiceRecord) -> Service {
        Service {
            vip: self.vips.get(name).cloned(),
            ..record.view(name)
        }
    }

    /// Every service with its running, healthy and desired replica counts.
    pub fn service_summaries(&self) -> Vec<hoist_proto::cluster::ServiceSummary> {
        let mut counts: BTreeMap<&str, (u64, u64, u64)> = BTreeMap::new();
        for t in self.tasks.values() {
            if t.desired != hoist_proto::cluster::TaskState::Running {
                continue;
            }
            let c = counts.entry(t.service.as_str()).or_default();
            c.1 += 1;
            if t.state == hoist_proto::cluster::TaskState::Running {
                c.0 += 1;
            }
            if t.is_ready() {
                c.2 += 1;
            }
        }
        self.services
            .iter()
            .map(|(n, r)| {
                let (running, placed, healthy) =
                    counts.get(n.as_str()).copied().unwrap_or_default();
                let spec = &r.current().spec;
                let desired = match spec.mode {
                    hoist_proto::service::ServiceMode::Replicated => spec.replicas.max(0) as u64,
                    hoist_proto::service::ServiceMode::Global => placed,
                };
                hoist_proto::cluster::ServiceSummary {
                    service: self.view_of(n, r),
                    running,
                    desired,
                    healthy,
                }
            })
            .collect()
    }

    /// A service's kept versions, oldest first.
    pub fn history(&self, name: &str) -> Option<Vec<ServiceVersion>> {
        self.services
            .get(name)
            .map(|r| r.history.iter().cloned().collect())
    }

    /// SHA-256 of the state's canonical encoding in its own format, hex: equal states have
    /// equal hashes, and a format-0 state hashes as 0.1.0 hashed it, so members of both versions
    /// can be compared during an upgrade.
    pub fn hash(&self) -> String {
        let digest = snapshot::canonical_digest(self, self.cluster_format)
            .or_else(|_| snapshot::canonical_digest(self, hoist_proto::format::CURRENT))
            .expect("the current format says everything");
        hex::encode(digest)
    }

    /// Gives the worker join token a new secret: tokens with the old one no longer register
    /// nodes (nodes already registered keep their own credentials).
    fn rotate_join_secret(
        &mut self,
        secret: &str,
        manager: bool,
    ) -> Result<Response, CommandError> {
        if !hoist_proto::node::is_join_secret(secret) {
            return Err(invalid("secret", "must be 32 lowercase hex digits"));
        }
        let Some(identity) = self.identity.as_mut() else {
            return Err(CommandError {
                code: ErrorCode::Conflict,
                message: "the cluster has no join token yet: run `hoist cluster token`".into(),
                field: None,
            });
        };
        if manager {
            identity.manager_secret = secret.to_string();
        } else {
            identity.secret = secret.to_string();
        }
        Ok(Response::Ok)
    }

    /// Replaces the state with a snapshot; the cluster format stays at least what it was (a
    /// restored 0.1.0 snapshot does not take an upgraded cluster back to format 0).
    fn restore(&mut self, bytes: &[u8]) -> Result<Response, CommandError> {
        // An image of a newer format than the cluster's would not read on every member.
        if let Some(f) = snapshot_format(bytes).filter(|f| *f > self.cluster_format) {
            return Err(CommandError {
                code: ErrorCode::Conflict,
                message: format!(
                    "snapshot: an image of format {f} into a cluster at format {}",
                    self.cluster_format
                ),
                field: None,
            });
        }
        let mut state = decode_snapshot(bytes).map_err(|e| CommandError {
            code: ErrorCode::Invalid,
            message: format!("snapshot: {e}"),
            field: None,
        })?;
        state.cluster_format = state.cluster_format.max(self.cluster_format);
        state.index = self.index;
        // An image from before operators had tokens (or a cluster identity) keeps the current
        // ones, and the audit log goes on: restoring never locks the operators out.
        if state.operator_tokens.is_empty() {
            state.operator_tokens = std::mem::take(&mut self.operator_tokens);
        }
        if state.audit.is_empty() {
            state.audit = std::mem::take(&mut self.audit);
        }
        if state.identity.is_none() {
            state.identity = self.identity.take();
        }
        // The CA follows the data key it is sealed under: the running cluster's, when it has
        // one (the nodes' certificates chain to it, and another cluster's CA key would not open
        // here); the image's only when this cluster has none yet.
        if self.ca.is_some() {
            state.ca = self.ca.take();
        }
        // The members' keys belong to these members, not to the image's: the data key stays
        // the running cluster's. Secrets sealed under another cluster's key then say so when an
        // agent asks for them (create them again); a backup of this cluster opens as before.
        state.member_keys = std::mem::take(&mut self.member_keys);
        state.data_key_id = std::mem::take(&mut self.data_key_id);
        state.autolock = std::mem::take(&mut self.autolock);
        state.everything_changed(self.index);
        *self = state;
        Ok(Response::Restored(self.services.len() as u64))
    }
}

/// A refusal naming the missing thing.
pub(crate) fn not_found(message: String) -> CommandError {
    CommandError {
        code: ErrorCode::NotFound,
        message,
        field: None,
    }
}

/// A refusal naming the field at fault.
pub(crate) fn invalid(field: &str, message: impl std::fmt::Display) -> CommandError {
    CommandError {
        code: ErrorCode::Invalid,
        message: format!("{field}: {message}"),
        field: Some(field.to_string()),
    }
}
