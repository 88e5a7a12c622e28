//! Today's types ↔ format 1, field by field (see [`crate::format::mirror`]).

use super::*;
use crate::format::mirror::{FromV1, ToV1};
use crate::{cluster as c, node as n, raft as r, service as s};
use crate::{mirror_v1, mirror_v1_enum};
use std::collections::VecDeque;

mirror_v1!(s::ServiceSpec => ServiceSpec {
    name, image, command, args, env, replicas, resources, ports, health_check, restart, update,
    placement, labels, autoscale, mode, stop_signal, stop_grace_period, endpoint_mode, user,
    workdir, hostname, init, read_only, ulimits, mounts, image_digest, registry_auth, cap_add,
    cap_drop, no_new_privileges, userns, secrets, configs,
});
mirror_v1!(crate::files::FileRef => FileRef { source, target, mode, uid, gid, on_update });
mirror_v1_enum!(s::ServiceMode { Replicated = 0, Global = 1 });
mirror_v1!(s::ResourceSpec => ResourceSpec { cpu, memory, limits, reservations });
mirror_v1!(s::ResourceLimits => ResourceLimits { cpu, memory, pids });
mirror_v1!(s::ResourceReservations => ResourceReservations { cpu, memory });
mirror_v1!(s::Ulimit => Ulimit { soft, hard });
mirror_v1_enum!(s::MountType { Bind = 0, Volume = 1, Tmpfs = 2 });
mirror_v1!(s::Mount => Mount { kind, source, target, read_only, size, mode });
mirror_v1!(crate::image::RegistryAuth => RegistryAuth { username, password });
mirror_v1_enum!(s::PortProtocol { Tcp = 0, Udp = 1 });
mirror_v1_enum!(s::PortMode { Ingress = 0, Host = 1 });
mirror_v1_enum!(s::EndpointMode { Vip = 0, Dnsrr = 1 });
mirror_v1!(s::ServicePort => ServicePort { target, published, protocol, mode });
mirror_v1!(s::HealthCheck => HealthCheck {
    command, http_path, tcp_port, interval, timeout, retries, start_period,
});
mirror_v1_enum!(s::RestartCondition { Any = 0, OnFailure = 1, None = 2 });
mirror_v1!(s::RestartPolicy => RestartPolicy { condition, max_attempts, delay, window });
mirror_v1_enum!(s::FailureAction { Pause = 0, Rollback = 1, Continue = 2 });
mirror_v1_enum!(s::UpdateOrder { StopFirst = 0, StartFirst = 1 });
mirror_v1!(s::UpdatePolicy => UpdatePolicy {
    parallelism, delay, failure_action, monitor, order, max_failure_ratio, drain,
});
mirror_v1!(s::Placement => Placement { constraints, max_per_node, spread });
mirror_v1!(s::Autoscale => Autoscale {
    min, max, step, target, cooldown_up, stabilization_down, query, target_value, interval,
});

impl ToV1<f64> for s::Number {
    fn to_v1(&self) -> f64 {
        self.0
    }
}
impl FromV1<f64> for s::Number {
    fn from_v1(v: f64) -> Result<Self, String> {
        Ok(s::Number(v))
    }
}

mirror_v1!(c::Service => Service { name, version, spec, created_ms, updated_ms, vip });
mirror_v1!(c::ServiceVersion => ServiceVersion { version, origin, created_ms, spec });
mirror_v1!(c::ServiceChange => ServiceChange { service, changed });
mirror_v1!(c::Stack => Stack { name, created_ms, services, releases });
mirror_v1!(c::StackRelease => StackRelease {
    release, created_ms, updated_ms, state, message, members, removed,
});
mirror_v1!(c::StackMember => StackMember { service, version, previous, changed });
mirror_v1_enum!(c::ReleaseState { Deploying = 0, Completed = 1, RolledBack = 2, Superseded = 3 });
mirror_v1!(c::StackChange => StackChange { stack, changed, services });
mirror_v1_enum!(c::AutoscaleSource { Alertmanager = 0, Hook = 1, Query = 2, Operator = 3 });
mirror_v1!(c::AutoscaleDecision => AutoscaleDecision {
    service, source, from, to, reason, detail, dedup, index, time_ms,
});
mirror_v1!(c::AutoscaleLog => AutoscaleLog { decisions, seen, total, scaled });
mirror_v1!(c::AutoscaleOutcome => AutoscaleOutcome { decision, applied });
mirror_v1!(c::HookToken => HookToken { id, service, secret_sha256, created_ms });
mirror_v1_enum!(c::Role { Viewer = 0, Deployer = 1, Admin = 2 });
mirror_v1!(c::OperatorToken => OperatorToken {
    name, role, id, secret_sha256, created_ms, created_by, last_used_ms,
});
mirror_v1!(c::AuditEntry => AuditEntry { index, time_ms, actor, action, error });
mirror_v1_enum!(crate::files::FileKind { Secret = 0, Config = 1 });
mirror_v1!(crate::files::StoredFile => StoredFile {
    kind, name, version, created_ms, updated_ms, size, data,
});
mirror_v1!(crate::files::FileWrite => FileWrite { kind, name, data, size });
mirror_v1!(crate::files::FileVersion => FileVersion { kind, name, version });
mirror_v1!(crate::files::FileContent => FileContent { kind, name, version, data });
mirror_v1!(crate::files::TaskFiles => TaskFiles { files });
mirror_v1!(crate::files::MemberKey => MemberKey { public_key, sealed_data_key });
mirror_v1!(crate::files::SealedKey => SealedKey { member, public_key, sealed });
mirror_v1_enum!(c::NodeStatus { Ready = 0, Down = 1 });
mirror_v1_enum!(c::NodeAvailability { Active = 0, Paused = 1, Drained = 2 });
mirror_v1!(c::NodeResources => NodeResources { cpu_millis, memory_bytes });
mirror_v1!(c::Node => Node {
    id, hostname, address, labels, agent_labels, capacity, status, availability, agent_version,
    registered_ms, updated_ms, agent_format, subnet, wg_public_key, wg_endpoint,
    overlay_generation, overlay_problem, credential_sha256, cert_key_sha256,
});
mirror_v1!(c::ClusterNetwork => ClusterNetwork { cidr, subnet_prefix, vip_cidr });
mirror_v1!(c::ClusterCa => ClusterCa {
    cert_pem, sealed_key, digest, created_ms, previous_pem, cross_pem,
});
mirror_v1_enum!(c::TaskState { Pending = 0, Running = 1, Shutdown = 2, Failed = 3, Complete = 4 });
mirror_v1!(c::Task => Task {
    id, service, service_version, slot, node, desired, state, health, address, container_id,
    exit_code, message, restarts, created_ms, updated_ms, ready_since_ms, drain_index,
});
mirror_v1_enum!(c::RolloutState {
    Updating = 0, Completed = 1, Paused = 2, RollingBack = 3, RolledBack = 4, Failed = 5,
});
mirror_v1!(c::Rollout => Rollout {
    version, from_version, state, updated, total, failures, message, started_ms, updated_ms,
    batch_started_ms, rollback_of,
});

impl ToV1<VersionOrigin> for c::VersionOrigin {
    fn to_v1(&self) -> VersionOrigin {
        match *self {
            c::VersionOrigin::Apply => VersionOrigin { kind: 0, from: 0 },
            c::VersionOrigin::Scale => VersionOrigin { kind: 1, from: 0 },
            c::VersionOrigin::Rollback { from } => VersionOrigin { kind: 2, from },
            c::VersionOrigin::Restart { from } => VersionOrigin { kind: 3, from },
        }
    }
}
impl ToV1<Option<VersionOrigin>> for c::VersionOrigin {
    fn to_v1(&self) -> Option<VersionOrigin> {
        Some(self.to_v1())
    }
}
impl FromV1<Option<VersionOrigin>> for c::VersionOrigin {
    fn from_v1(v: Option<VersionOrigin>) -> Result<Self, String> {
        let v = v.unwrap_or_default();
        match v.kind {
            0 => Ok(c::VersionOrigin::Apply),
            1 => Ok(c::VersionOrigin::Scale),
            2 => Ok(c::VersionOrigin::Rollback { from: v.from }),
            3 => Ok(c::VersionOrigin::Restart { from: v.from }),
            k => Err(format!("{k} is not a version origin this build knows")),
        }
    }
}

mirror_v1!(n::RegisterRequest => RegisterRequest {
    token, node_id, hostname, address, labels, capacity, agent_version, wg_public_key, wg_endpoint,
    csr,
});
mirror_v1!(n::RegisterResponse => RegisterResponse {
    node_id, term, heartbeat_interval_ms, grace_ms, cluster_id, node_credential, certificate,
    ca_certificate,
});
mirror_v1!(n::CertificateRequest => CertificateRequest { node_id, csr });
mirror_v1!(n::CertificateResponse => CertificateResponse { certificate, ca_certificate });
mirror_v1!(n::Heartbeat => Heartbeat { node_id, term_seen, endpoints_applied });
mirror_v1!(n::HeartbeatAck => HeartbeatAck { term, known, ca_digest, heartbeat_interval_ms });
mirror_v1!(n::Assignment => Assignment {
    task_id, service, service_version, slot, spec, desired, files, spec_held,
});
mirror_v1!(n::Assignments => Assignments {
    index, term, tasks, overlay, overlay_index, changed_since, unchanged,
});
mirror_v1!(n::Overlay => Overlay {
    cluster_cidr, subnet, problem, peers, changed_since, peer_count,
});
mirror_v1!(n::OverlayPeer => OverlayPeer { node, public_key, endpoint, subnet, generation });
mirror_v1!(n::ServiceEndpoints => ServiceEndpoints {
    index, term, services, changed_since, unchanged, pace_ms,
});
mirror_v1!(n::ServiceAddresses => ServiceAddresses {
    service, replicas, vip, ports, partial, removed, replica_count,
});
mirror_v1!(n::ReplicaAddress => ReplicaAddress { slot, task, node, address });
mirror_v1!(n::OverlayReport => OverlayReport { node_id, peers, mesh_error });
mirror_v1!(n::VolumeReport => VolumeReport { node_id, volumes });
mirror_v1!(n::NodeVolume => NodeVolume { name, size_bytes, used_by, created_ms });
mirror_v1!(crate::agent::PeerStatus => PeerStatus {
    node, endpoint, subnet, handshake_age_s, rx_bytes, tx_bytes, probes_sent, probes_lost,
    probes_lost_in_a_row, probe_rtt_ms,
});
mirror_v1_enum!(n::Health { None = 0, Starting = 1, Healthy = 2, Unhealthy = 3 });
mirror_v1!(n::TaskStatus => TaskStatus {
    task_id, state, health, container_id, address, exit_code, message, restarts,
});
mirror_v1!(n::StatusReport => StatusReport { node_id, term_seen, tasks });
mirror_v1!(n::StatusAck => StatusAck { term });

mirror_v1!(r::StallNotice => StallNotice { leader, term });
mirror_v1!(r::Request => Request { time_ms, command });
mirror_v1!(r::Plan => Plan { place, stop, remove, rollouts, drain });
mirror_v1!(r::PlanResult => PlanResult { placed, refused, stopped });
mirror_v1_enum!(r::ErrorCode { NotFound = 0, Invalid = 1, Conflict = 2 });
mirror_v1!(r::CommandError => CommandError { code, message, field });

impl ToV1<TaskReason> for (String, String) {
    fn to_v1(&self) -> TaskReason {
        TaskReason {
            task: self.0.clone(),
            reason: self.1.clone(),
        }
    }
}
impl FromV1<TaskReason> for (String, String) {
    fn from_v1(v: TaskReason) -> Result<Self, String> {
        Ok((v.task, v.reason))
    }
}
impl ToV1<ServiceRollout> for (String, c::Rollout) {
    fn to_v1(&self) -> ServiceRollout {
        ServiceRollout {
            service: self.0.clone(),
            rollout: self.1.to_v1(),
        }
    }
}
impl FromV1<ServiceRollout> for (String, c::Rollout) {
    fn from_v1(v: ServiceRollout) -> Result<Self, String> {
        Ok((v.service, FromV1::from_v1(v.rollout)?))
    }
}

impl ToV1<Command> for r::Command {
    fn to_v1(&self) -> Command {
        use command::Kind as K;
        use r::Command as D;
        let kind = match self {
            D::ApplyService(spec) => K::ApplyService(spec.to_v1()),
            D::DeleteService { name } => K::DeleteService(Name { name: name.clone() }),
            D::ScaleService { name, replicas } => K::ScaleService(Scale {
                name: name.clone(),
                replicas: *replicas,
            }),
            D::RollbackService { name, version } => K::RollbackService(Rollback {
                name: name.clone(),
                version: *version,
            }),
            D::RegisterNode(node) => K::RegisterNode(node.to_v1()),
            D::SetNodeStatus { id, status } => K::SetNodeStatus(NodeStatus {
                id: id.clone(),
                status: status.to_v1(),
            }),
            D::RemoveNode { id } => K::RemoveNode(Name { name: id.clone() }),
            D::PutTasks(tasks) => K::PutTasks(Tasks {
                tasks: tasks.to_v1(),
            }),
            D::RemoveTasks(ids) => K::RemoveTasks(Names { names: ids.clone() }),
            D::Restore(bytes) => K::Restore(bytes.clone()),
            D::Noop => K::Noop(Empty {}),
            D::Batch(commands) => K::Batch(Commands {
                commands: commands.to_v1(),
            }),
            D::Plan(plan) => K::Plan(plan.to_v1()),
            D::SetNodeAvailability { id, availability } => {
                K::SetNodeAvailability(NodeAvailability {
                    id: id.clone(),
                    availability: availability.to_v1(),
                })
            }
            D::SetNodeLabels { id, set, remove } => K::SetNodeLabels(NodeLabels {
                id: id.clone(),
                set: set.clone(),
                remove: remove.clone(),
            }),
            D::ReportStatus { node, tasks } => K::ReportStatus(Report {
                node: node.clone(),
                tasks: tasks.to_v1(),
            }),
            D::InitCluster { cluster_id, secret } => K::InitCluster(InitCluster {
                cluster_id: cluster_id.clone(),
                secret: secret.clone(),
            }),
            D::SetClusterFormat { format } => {
                K::SetClusterFormat(ClusterFormat { format: *format })
            }
            D::SetNodeVersion {
                id,
                agent_version,
                agent_format,
            } => K::SetNodeVersion(NodeVersion {
                id: id.clone(),
                agent_version: agent_version.clone(),
                agent_format: *agent_format,
            }),
            D::SetClusterNetwork(n) => K::SetClusterNetwork(n.to_v1()),
            D::DeployStack(d) => K::DeployStack(StackDeploy {
                name: d.name.clone(),
                services: d.services.to_v1(),
                prune: d.prune,
            }),
            D::SetReleaseState {
                stack,
                release,
                state,
                message,
            } => K::SetReleaseState(ReleaseVerdict {
                stack: stack.clone(),
                release: *release,
                state: state.to_v1(),
                message: message.clone(),
            }),
            D::RollbackStack {
                stack,
                release,
                reason,
            } => K::RollbackStack(StackRollback {
                stack: stack.clone(),
                release: *release,
                reason: reason.clone(),
            }),
            D::RemoveStack { name } => K::RemoveStack(Name { name: name.clone() }),
            D::Autoscale(d) => K::Autoscale(d.to_v1()),
            D::CreateHookToken(t) => K::CreateHookToken(t.to_v1()),
            D::RemoveHookToken { id } => K::RemoveHookToken(Name { name: id.clone() }),
            D::CreateOperatorToken(t) => K::CreateOperatorToken(t.to_v1()),
            D::RemoveOperatorToken { name } => K::RemoveOperatorToken(Name { name: name.clone() }),
            D::TouchOperatorTokens { names } => K::TouchOperatorTokens(Names {
                names: names.clone(),
            }),
            D::Audited { actor, command } => K::Audited(Box::new(Audited {
                actor: actor.clone(),
                command: Some(Box::new((**command).to_v1())),
            })),
            D::PutFile(w) => K::PutFile((**w).to_v1()),
            D::RemoveFile { kind, name } => K::RemoveFile(FileName {
                kind: kind.to_v1(),
                name: name.clone(),
            }),
            D::SetMemberKey { member, public_key } => K::SetMemberKey(MemberPublicKey {
                member: *member,
                public_key: public_key.clone(),
            }),
            D::SealDataKey { key_id, keys } => K::SealDataKey(SealDataKey {
                key_id: key_id.clone(),
                keys: keys.to_v1(),
            }),
            D::SetAutolock { sealed_unlock_key } => K::SetAutolock(Autolock {
                sealed_unlock_key: sealed_unlock_key.clone(),
            }),
            D::RemoveMemberKeys { members } => K::RemoveMemberKeys(MemberIds {
                members: members.clone(),
            }),
            D::SetClusterCa(ca) => K::SetClusterCa((**ca).to_v1()),
            D::RotateJoinSecret { secret, manager } => K::RotateJoinSecret(JoinSecret {
                secret: secret.clone(),
                manager: *manager,
            }),
            D::RotateClusterCa(ca) => K::RotateClusterCa((**ca).to_v1()),
            D::FinishCaRotation { digest } => K::FinishCaRotation(CaDigest {
                digest: digest.clone(),
            }),
        };
        Command { kind: Some(kind) }
    }
}
impl ToV1<Option<Command>> for r::Command {
    fn to_v1(&self) -> Option<Command> {
        Some(self.to_v1())
    }
}

impl FromV1<Command> for r::Command {
    fn from_v1(v: Command) -> Result<Self, String> {
        use command::Kind as K;
        use r::Command as D;
        Ok(match v.kind.ok_or("a command without a kind")? {
            K::ApplyService(spec) => D::ApplyService(Box::new(FromV1::from_v1(spec)?)),
            K::DeleteService(n) => D::DeleteService { name: n.name },
            K::ScaleService(s) => D::ScaleService {
                name: s.name,
                replicas: s.replicas,
            },
            K::RollbackService(r) => D::RollbackService {
                name: r.name,
                version: r.version,
            },
            K::RegisterNode(node) => D::RegisterNode(FromV1::from_v1(node)?),
            K::SetNodeStatus(s) => D::SetNodeStatus {
                id: s.id,
                status: FromV1::from_v1(s.status)?,
            },
            K::RemoveNode(n) => D::RemoveNode { id: n.name },
            K::PutTasks(t) => D::PutTasks(FromV1::from_v1(t.tasks)?),
            K::RemoveTasks(n) => D::RemoveTasks(n.names),
            K::Restore(bytes) => D::Restore(bytes),
            K::Noop(_) => D::Noop,
            K::Batch(b) => D::Batch(FromV1::from_v1(b.commands)?),
            K::Plan(p) => D::Plan(FromV1::from_v1(p)?),
            K::SetNodeAvailability(a) => D::SetNodeAvailability {
                id: a.id,
                availability: FromV1::from_v1(a.availability)?,
            },
            K::SetNodeLabels(l) => D::SetNodeLabels {
                id: l.id,
                set: l.set,
                remove: l.remove,
            },
            K::ReportStatus(r) => D::ReportStatus {
                node: r.node,
                tasks: FromV1::from_v1(r.tasks)?,
            },
            K::InitCluster(i) => D::InitCluster {
                cluster_id: i.cluster_id,
                secret: i.secret,
            },
            K::SetClusterFormat(f) => D::SetClusterFormat { format: f.format },
            K::SetNodeVersion(v) => D::SetNodeVersion {
                id: v.id,
                agent_version: v.agent_version,
                agent_format: v.agent_format,
            },
            K::SetClusterNetwork(n) => D::SetClusterNetwork(FromV1::from_v1(n)?),
            K::DeployStack(d) => D::DeployStack(Box::new(r::StackDeploy {
                name: d.name,
                services: FromV1::from_v1(d.services)?,
                prune: d.prune,
            })),
            K::SetReleaseState(v) => D::SetReleaseState {
                stack: v.stack,
                release: v.release,
                state: FromV1::from_v1(v.state)?,
                message: v.message,
            },
            K::RollbackStack(r) => D::RollbackStack {
                stack: r.stack,
                release: r.release,
                reason: r.reason,
            },
            K::RemoveStack(n) => D::RemoveStack { name: n.name },
            K::Autoscale(d) => D::Autoscale(Box::new(FromV1::from_v1(d)?)),
            K::CreateHookToken(t) => D::CreateHookToken(FromV1::from_v1(t)?),
            K::RemoveHookToken(n) => D::RemoveHookToken { id: n.name },
            K::CreateOperatorToken(t) => D::CreateOperatorToken(FromV1::from_v1(t)?),
            K::RemoveOperatorToken(n) => D::RemoveOperatorToken { name: n.name },
            K::TouchOperatorTokens(n) => D::TouchOperatorTokens { names: n.names },
            K::Audited(a) => D::Audited {
                actor: a.actor,
                command: Box::new(FromV1::from_v1(
                    *a.command.ok_or("an audited command without its command")?,
                )?),
            },
            K::PutFile(w) => D::PutFile(Box::new(FromV1::from_v1(w)?)),
            K::RemoveFile(n) => D::RemoveFile {
                kind: FromV1::from_v1(n.kind)?,
                name: n.name,
            },
            K::SetMemberKey(k) => D::SetMemberKey {
                member: k.member,
                public_key: k.public_key,
            },
            K::SealDataKey(k) => D::SealDataKey {
                key_id: k.key_id,
                keys: FromV1::from_v1(k.keys)?,
            },
            K::SetAutolock(a) => D::SetAutolock {
                sealed_unlock_key: a.sealed_unlock_key,
            },
            K::RemoveMemberKeys(m) => D::RemoveMemberKeys { members: m.members },
            K::SetClusterCa(ca) => D::SetClusterCa(Box::new(FromV1::from_v1(ca)?)),
            K::RotateJoinSecret(j) => D::RotateJoinSecret {
                secret: j.secret,
                manager: j.manager,
            },
            K::RotateClusterCa(ca) => D::RotateClusterCa(Box::new(FromV1::from_v1(ca)?)),
            K::FinishCaRotation(f) => D::FinishCaRotation { digest: f.digest },
        })
    }
}
impl FromV1<Option<Command>> for r::Command {
    fn from_v1(v: Option<Command>) -> Result<Self, String> {
        FromV1::from_v1(v.ok_or("missing command")?)
    }
}

impl ToV1<Response> for r::Response {
    fn to_v1(&self) -> Response {
        use r::Response as D;
        use response::Kind as K;
        let kind = match self {
            D::Service(change) => K::Service(change.to_v1()),
            D::Deleted(service) => K::Deleted(service.to_v1()),
            D::Node(node) => K::Node(node.to_v1()),
            D::Tasks(n) => K::Tasks(*n),
            D::Restored(n) => K::Restored(*n),
            D::Ok => K::Ok(Empty {}),
            D::Error(e) => K::Error(e.to_v1()),
            D::Batch(responses) => K::Batch(Responses {
                responses: responses.to_v1(),
            }),
            D::Plan(result) => K::Plan(result.to_v1()),
            D::Stack(change) => K::Stack(change.to_v1()),
            D::Autoscale(outcome) => K::Autoscale(outcome.to_v1()),
            D::File(f) => K::File((**f).to_v1()),
        };
        Response { kind: Some(kind) }
    }
}

impl FromV1<Response> for r::Response {
    fn from_v1(v: Response) -> Result<Self, String> {
        use r::Response as D;
        use response::Kind as K;
        Ok(match v.kind.ok_or("a response without a kind")? {
            K::Service(change) => D::Service(FromV1::from_v1(change)?),
            K::Deleted(service) => D::Deleted(FromV1::from_v1(service)?),
            K::Node(node) => D::Node(FromV1::from_v1(node)?),
            K::Tasks(n) => D::Tasks(n),
            K::Restored(n) => D::Restored(n),
            K::Ok(_) => D::Ok,
            K::Error(e) => D::Error(FromV1::from_v1(e)?),
            K::Batch(b) => D::Batch(FromV1::from_v1(b.responses)?),
            K::Plan(p) => D::Plan(FromV1::from_v1(p)?),
            K::Stack(c) => D::Stack(Box::new(FromV1::from_v1(c)?)),
            K::Autoscale(o) => D::Autoscale(Box::new(FromV1::from_v1(o)?)),
            K::File(f) => D::File(Box::new(FromV1::from_v1(f)?)),
        })
    }
}

impl ToV1<Tasks> for VecDeque<c::Task> {
    fn to_v1(&self) -> Tasks {
        Tasks {
            tasks: self.to_v1(),
        }
    }
}
impl FromV1<Tasks> for VecDeque<c::Task> {
    fn from_v1(v: Tasks) -> Result<Self, String> {
        FromV1::from_v1(v.tasks)
    }
}
impl ToV1<SlotHistory> for imbl::OrdMap<u64, VecDeque<c::Task>> {
    fn to_v1(&self) -> SlotHistory {
        SlotHistory {
            slots: self.to_v1(),
        }
    }
}
impl FromV1<SlotHistory> for imbl::OrdMap<u64, VecDeque<c::Task>> {
    fn from_v1(v: SlotHistory) -> Result<Self, String> {
        FromV1::from_v1(v.slots)
    }
}
