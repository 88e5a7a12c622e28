//! Today's types ↔ format 0, field by field (see [`crate::format::mirror`]).

use super::*;
use crate::format::mirror::{FromV0, ToV0};
use crate::format::Unrepresentable;
use crate::{cluster as c, node as n, raft as r, service as s};
use crate::{mirror_v0, mirror_v0_enum};

mirror_v0!(s::ServiceSpec => ServiceSpec {
    name, image, command, args, env, replicas, resources, ports, health_check, restart, update,
    placement, labels, autoscale, mode,
} added {
    stop_signal: 1, stop_grace_period: 1, endpoint_mode: 2, user: 2, workdir: 2, hostname: 2,
    init: 2, read_only: 2, ulimits: 2, mounts: 2, image_digest: 2, registry_auth: 2, cap_add: 2,
    cap_drop: 2, no_new_privileges: 2, userns: 2, secrets: 2, configs: 2,
});
mirror_v0_enum!(s::ServiceMode => ServiceMode { Replicated, Global });
mirror_v0!(s::ResourceSpec => ResourceSpec { cpu, memory } added { limits: 2, reservations: 2 });
mirror_v0_enum!(s::PortProtocol => PortProtocol { Tcp, Udp });
mirror_v0!(s::ServicePort => ServicePort { target, published, protocol } added { mode: 2 });
mirror_v0!(s::HealthCheck => HealthCheck {
    command, http_path, tcp_port, interval, timeout, retries, start_period,
});
mirror_v0_enum!(s::RestartCondition => RestartCondition { Any, OnFailure, None });
mirror_v0!(s::RestartPolicy => RestartPolicy { condition, max_attempts, delay, window });
mirror_v0_enum!(s::FailureAction => FailureAction { Pause, Rollback, Continue });
mirror_v0_enum!(s::UpdateOrder => UpdateOrder { StopFirst, StartFirst });
mirror_v0!(s::UpdatePolicy => UpdatePolicy {
    parallelism, delay, failure_action, monitor, order, max_failure_ratio,
} added { drain: 2 });
mirror_v0!(s::Placement => Placement { constraints, max_per_node, spread });
mirror_v0!(s::Autoscale => Autoscale { min, max } added {
    step: 2, target: 2, cooldown_up: 2, stabilization_down: 2, query: 2, target_value: 2,
    interval: 2,
});

mirror_v0!(c::Service => Service { name, version, spec, created_ms, updated_ms } added { vip: 2 });
mirror_v0!(c::ServiceVersion => ServiceVersion { version, origin, created_ms, spec });
mirror_v0!(c::ServiceChange => ServiceChange { service, changed });
mirror_v0_enum!(c::NodeStatus => NodeStatus { Ready, Down });
mirror_v0_enum!(c::NodeAvailability => NodeAvailability { Active, Paused, Drained });
mirror_v0!(c::NodeResources => NodeResources { cpu_millis, memory_bytes });
mirror_v0!(c::Node => Node {
    id, hostname, address, labels, agent_labels, capacity, status, availability, agent_version,
    registered_ms, updated_ms,
} added {
    agent_format: 1, subnet: 2, wg_public_key: 2, wg_endpoint: 2, overlay_generation: 2,
    overlay_problem: 2, credential_sha256: 2, cert_key_sha256: 2,
});
mirror_v0_enum!(c::TaskState => TaskState { Pending, Running, Shutdown, Failed, Complete });
mirror_v0!(c::Task => Task {
    id, service, service_version, slot, node, desired, state, health, address, container_id,
    exit_code, message, restarts, created_ms, updated_ms, ready_since_ms,
} added { drain_index: 2 });
mirror_v0_enum!(c::RolloutState => RolloutState {
    Updating, Completed, Paused, RollingBack, RolledBack, Failed,
});
mirror_v0!(c::Rollout => Rollout {
    version, from_version, state, updated, total, failures, message, started_ms, updated_ms,
    batch_started_ms, rollback_of,
});

impl ToV0<VersionOrigin> for c::VersionOrigin {
    fn to_v0(&self) -> Result<VersionOrigin, Unrepresentable> {
        Ok(match *self {
            c::VersionOrigin::Apply => VersionOrigin::Apply,
            c::VersionOrigin::Scale => VersionOrigin::Scale,
            c::VersionOrigin::Rollback { from } => VersionOrigin::Rollback { from },
            c::VersionOrigin::Restart { .. } => {
                return Err(Unrepresentable::new("VersionOrigin::Restart", 2, 0))
            }
        })
    }
}
impl FromV0<VersionOrigin> for c::VersionOrigin {
    fn from_v0(v: VersionOrigin) -> Self {
        match v {
            VersionOrigin::Apply => c::VersionOrigin::Apply,
            VersionOrigin::Scale => c::VersionOrigin::Scale,
            VersionOrigin::Rollback { from } => c::VersionOrigin::Rollback { from },
        }
    }
}

mirror_v0!(n::RegisterRequest => RegisterRequest {
    token, node_id, hostname, address, labels, capacity, agent_version,
} added { wg_public_key: 2, wg_endpoint: 2, csr: 2 });
mirror_v0!(n::RegisterResponse => RegisterResponse {
    node_id, term, heartbeat_interval_ms, grace_ms, cluster_id,
} added { node_credential: 2, certificate: 2, ca_certificate: 2 });
mirror_v0!(n::Heartbeat => Heartbeat { node_id, term_seen } added { endpoints_applied: 2 });
mirror_v0!(n::HeartbeatAck => HeartbeatAck { term, known } added { ca_digest: 2, heartbeat_interval_ms: 2 });
mirror_v0!(n::Assignment => Assignment {
    task_id, service, service_version, slot, spec, desired,
} added { files: 2, spec_held: 2 });
mirror_v0!(n::Assignments => Assignments { index, term, tasks } added {
    overlay: 2, overlay_index: 2, changed_since: 2, unchanged: 2,
});
mirror_v0_enum!(n::Health => Health { None, Starting, Healthy, Unhealthy });
mirror_v0!(n::TaskStatus => TaskStatus {
    task_id, state, health, container_id, address, exit_code, message, restarts,
});
mirror_v0!(n::StatusReport => StatusReport { node_id, term_seen, tasks });
mirror_v0!(n::StatusAck => StatusAck { term });

mirror_v0!(r::StallNotice => StallNotice { leader, term });
mirror_v0!(r::Request => Request { time_ms, command });
mirror_v0!(r::Plan => Plan { place, stop, remove, rollouts } added { drain: 2 });
mirror_v0!(r::PlanResult => PlanResult { placed, refused, stopped });
mirror_v0_enum!(r::ErrorCode => ErrorCode { NotFound, Invalid, Conflict });
mirror_v0!(r::CommandError => CommandError { code, message, field });

impl ToV0<Command> for r::Command {
    fn to_v0(&self) -> Result<Command, Unrepresentable> {
        use r::Command as D;
        Ok(match self {
            D::ApplyService(spec) => Command::ApplyService(spec.to_v0()?),
            D::DeleteService { name } => Command::DeleteService { name: name.clone() },
            D::ScaleService { name, replicas } => Command::ScaleService {
                name: name.clone(),
                replicas: *replicas,
            },
            D::RollbackService { name, version } => Command::RollbackService {
                name: name.clone(),
                version: *version,
            },
            D::RegisterNode(node) => Command::RegisterNode(node.to_v0()?),
            D::SetNodeStatus { id, status } => Command::SetNodeStatus {
                id: id.clone(),
                status: status.to_v0()?,
            },
            D::RemoveNode { id } => Command::RemoveNode { id: id.clone() },
            D::PutTasks(tasks) => Command::PutTasks(tasks.to_v0()?),
            D::RemoveTasks(ids) => Command::RemoveTasks(ids.clone()),
            D::Restore(bytes) => Command::Restore(bytes.clone()),
            D::Noop => Command::Noop,
            D::Batch(commands) => Command::Batch(commands.to_v0()?),
            D::Plan(plan) => Command::Plan(plan.to_v0()?),
            D::SetNodeAvailability { id, availability } => Command::SetNodeAvailability {
                id: id.clone(),
                availability: availability.to_v0()?,
            },
            D::SetNodeLabels { id, set, remove } => Command::SetNodeLabels {
                id: id.clone(),
                set: set.clone(),
                remove: remove.clone(),
            },
            D::ReportStatus { node, tasks } => Command::ReportStatus {
                node: node.clone(),
                tasks: tasks.to_v0()?,
            },
            D::InitCluster { cluster_id, secret } => Command::InitCluster {
                cluster_id: cluster_id.clone(),
                secret: secret.clone(),
            },
            D::SetClusterFormat { .. } => {
                return Err(Unrepresentable::new("command SetClusterFormat", 1, 0))
            }
            D::SetNodeVersion { .. } => {
                return Err(Unrepresentable::new("command SetNodeVersion", 1, 0))
            }
            D::SetClusterNetwork(_) => {
                return Err(Unrepresentable::new("command SetClusterNetwork", 2, 0))
            }
            D::DeployStack(_)
            | D::SetReleaseState { .. }
            | D::RollbackStack { .. }
            | D::RemoveStack { .. } => return Err(Unrepresentable::new("stack commands", 2, 0)),
            D::Autoscale(_) | D::CreateHookToken(_) | D::RemoveHookToken { .. } => {
                return Err(Unrepresentable::new("autoscale commands", 2, 0))
            }
            D::CreateOperatorToken(_)
            | D::RemoveOperatorToken { .. }
            | D::TouchOperatorTokens { .. }
            | D::Audited { .. } => {
                return Err(Unrepresentable::new("operator token commands", 2, 0))
            }
            D::PutFile(_)
            | D::RemoveFile { .. }
            | D::SetMemberKey { .. }
            | D::SealDataKey { .. }
            | D::SetAutolock { .. }
            | D::RemoveMemberKeys { .. } => {
                return Err(Unrepresentable::new("secret and config commands", 2, 0))
            }
            D::SetClusterCa(_)
            | D::RotateJoinSecret { .. }
            | D::RotateClusterCa(_)
            | D::FinishCaRotation { .. } => {
                return Err(Unrepresentable::new("cluster CA commands", 2, 0))
            }
        })
    }
}

impl FromV0<Command> for r::Command {
    fn from_v0(v: Command) -> Self {
        use r::Command as D;
        match v {
            Command::ApplyService(spec) => D::ApplyService(FromV0::from_v0(spec)),
            Command::DeleteService { name } => D::DeleteService { name },
            Command::ScaleService { name, replicas } => D::ScaleService { name, replicas },
            Command::RollbackService { name, version } => D::RollbackService { name, version },
            Command::RegisterNode(node) => D::RegisterNode(FromV0::from_v0(node)),
            Command::SetNodeStatus { id, status } => D::SetNodeStatus {
                id,
                status: FromV0::from_v0(status),
            },
            Command::RemoveNode { id } => D::RemoveNode { id },
            Command::PutTasks(tasks) => D::PutTasks(FromV0::from_v0(tasks)),
            Command::RemoveTasks(ids) => D::RemoveTasks(ids),
            Command::Restore(bytes) => D::Restore(bytes),
            Command::Noop => D::Noop,
            Command::Batch(commands) => D::Batch(FromV0::from_v0(commands)),
            Command::Plan(plan) => D::Plan(FromV0::from_v0(plan)),
            Command::SetNodeAvailability { id, availability } => D::SetNodeAvailability {
                id,
                availability: FromV0::from_v0(availability),
            },
            Command::SetNodeLabels { id, set, remove } => D::SetNodeLabels { id, set, remove },
            Command::ReportStatus { node, tasks } => D::ReportStatus {
                node,
                tasks: FromV0::from_v0(tasks),
            },
            Command::InitCluster { cluster_id, secret } => D::InitCluster { cluster_id, secret },
        }
    }
}

impl ToV0<Response> for r::Response {
    fn to_v0(&self) -> Result<Response, Unrepresentable> {
        use r::Response as D;
        Ok(match self {
            D::Service(change) => Response::Service(change.to_v0()?),
            D::Deleted(service) => Response::Deleted(service.to_v0()?),
            D::Node(node) => Response::Node(node.to_v0()?),
            D::Tasks(n) => Response::Tasks(*n),
            D::Restored(n) => Response::Restored(*n),
            D::Ok => Response::Ok,
            D::Error(e) => Response::Error(e.to_v0()?),
            D::Batch(responses) => Response::Batch(responses.to_v0()?),
            D::Plan(result) => Response::Plan(result.to_v0()?),
            D::Stack(_) => return Err(Unrepresentable::new("response Stack", 2, 0)),
            D::Autoscale(_) => return Err(Unrepresentable::new("response Autoscale", 2, 0)),
            D::File(_) => return Err(Unrepresentable::new("response File", 2, 0)),
        })
    }
}

impl FromV0<Response> for r::Response {
    fn from_v0(v: Response) -> Self {
        use r::Response as D;
        match v {
            Response::Service(change) => D::Service(FromV0::from_v0(change)),
            Response::Deleted(service) => D::Deleted(FromV0::from_v0(service)),
            Response::Node(node) => D::Node(FromV0::from_v0(node)),
            Response::Tasks(n) => D::Tasks(n),
            Response::Restored(n) => D::Restored(n),
            Response::Ok => D::Ok,
            Response::Error(e) => D::Error(FromV0::from_v0(e)),
            Response::Batch(responses) => D::Batch(FromV0::from_v0(responses)),
            Response::Plan(result) => D::Plan(FromV0::from_v0(result)),
        }
    }
}
