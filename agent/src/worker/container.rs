//! How a task becomes a container and how a container is recognised as a task again: the create
//! request built from an assignment, and the labels that carry the task's identity and restart
//! history on the container itself — so a restarted agent re-adopts its containers from disk.
//! Pure, tested directly.

use super::reconcile::{ObservedTask, Phase};
use hoist_proto::node::Assignment;
use hoist_proto::quantity::{parse_cpu_millis, parse_duration_ms, parse_size};
use hoist_proto::service::{Mount, MountType, PortMode, PortProtocol};
use hoist_proto::{
    ContainerInfo, ContainerStatus, CreateContainer, NamedVolumeMount, NetworkMode, PortMapping,
    Protocol, Resources, TmpfsMount, VolumeMount,
};

/// The task a container runs. Containers without it are not the worker's and are never touched.
pub const TASK: &str = "hoist.task";
pub const SERVICE: &str = "hoist.service";
pub const SLOT: &str = "hoist.slot";
pub const VERSION: &str = "hoist.service-version";
/// Times (ms since the Unix epoch) the agent restarted the task, comma-separated, the last 100.
pub const RESTARTS: &str = "hoist.restarts";

const KEPT_RESTARTS: usize = 100;

/// The create request for a task: `<service>.<slot>.<task id>` named, bridge networked, with an
/// init as pid 1 unless the spec says `init = false` (so the stop signal reaches any command), the
/// task's labels, and every field of the spec that says how its container runs: user, workdir,
/// hostname, read-only root, ulimits, mounts (bind, named volume, tmpfs), capabilities,
/// `no_new_privileges`, the user namespace, and the limits (not the reservations, which are the
/// scheduler's). With the
/// routing `mesh` on this node, `ingress` ports are the mesh's (every node answers them); the
/// replica publishes only its `host` ones.
pub fn create_request(
    a: &Assignment,
    restarts_ms: &[u64],
    mesh: bool,
) -> Result<CreateContainer, String> {
    let s = &a.spec;
    // The limits cap the container; reservations are the scheduler's.
    let cpu_millis = match s.resources.limit_cpu() {
        Some(q) => Some(
            parse_cpu_millis(q.as_str())
                .ok_or_else(|| format!("resources.cpu: {:?} is not a CPU amount", q.as_str()))?,
        ),
        None => None,
    };
    let memory_bytes = match s.resources.limit_memory() {
        Some(q) => Some(parse_size(q.as_str()).map_err(|e| format!("resources.memory: {e}"))?),
        None => None,
    };
    let pids_limit = match s.resources.limits.as_ref().and_then(|l| l.pids) {
        Some(p) => Some(
            u64::try_from(p)
                .ok()
                .filter(|&p| p > 0)
                .ok_or_else(|| format!("resources.limits.pids: {p} must be at least 1"))?,
        ),
        None => None,
    };
    let (volumes, named_volumes, tmpfs) = mounts(&s.mounts)?;
    let mut ports = Vec::new();
    for (i, p) in s.ports.iter().enumerate() {
        let Some(published) = p.published else {
            continue;
        };
        if mesh && p.mode == PortMode::Ingress {
            continue;
        }
        let port = |v: i64, f: &str| {
            u16::try_from(v)
                .ok()
                .filter(|&v| v > 0)
                .ok_or_else(|| format!("ports[{i}].{f}: {v} is not in 1..=65535"))
        };
        ports.push(PortMapping {
            host_port: port(published, "published")?,
            container_port: port(p.target, "target")?,
            protocol: match p.protocol {
                PortProtocol::Tcp => Protocol::Tcp,
                PortProtocol::Udp => Protocol::Udp,
            },
        });
    }
    let mut labels = s.labels.clone();
    labels.insert(TASK.into(), a.task_id.clone());
    labels.insert(SERVICE.into(), a.service.clone());
    labels.insert(SLOT.into(), a.slot.to_string());
    labels.insert(VERSION.into(), a.service_version.to_string());
    let kept = &restarts_ms[restarts_ms.len().saturating_sub(KEPT_RESTARTS)..];
    if !kept.is_empty() {
        let list: Vec<String> = kept.iter().map(u64::to_string).collect();
        labels.insert(RESTARTS.into(), list.join(","));
    }
    Ok(CreateContainer {
        image: s.image.clone(),
        name: Some(container_name(a)),
        cmd: s.args.clone(),
        entrypoint: (!s.command.is_empty()).then(|| s.command.clone()),
        env: s.env.iter().map(|(k, v)| format!("{k}={v}")).collect(),
        workdir: s.workdir.clone(),
        user: s.user.clone(),
        hostname: s.hostname.clone(),
        resources: Resources {
            memory_bytes,
            cpu_millis,
            pids_limit,
            ..Resources::default()
        },
        network: NetworkMode::Bridge,
        ports,
        volumes,
        named_volumes,
        tmpfs,
        read_only: s.read_only,
        init: s.init.unwrap_or(true),
        ulimits: s.ulimits.clone(),
        labels,
        stop_signal: s.stop_signal.clone(),
        stop_grace_ms: match &s.stop_grace_period {
            Some(g) => Some(
                parse_duration_ms(g)
                    .ok_or_else(|| format!("stop_grace_period: {g:?} is not a duration"))?,
            ),
            None => None,
        },
        cap_add: s.cap_add.clone(),
        cap_drop: s.cap_drop.clone(),
        no_new_privileges: s.no_new_privileges,
        userns: s.userns,
        ..CreateContainer::default()
    })
}

/// A spec's mounts as the agent's three kinds.
type Mounts = (Vec<VolumeMount>, Vec<NamedVolumeMount>, Vec<TmpfsMount>);

/// A spec's `[[mounts]]` as the agent's three kinds: binds of a node path, named volumes of the
/// node, fresh tmpfs mounts.
fn mounts(mounts: &[Mount]) -> Result<Mounts, String> {
    let (mut binds, mut named, mut tmpfs) = (Vec::new(), Vec::new(), Vec::new());
    for (i, m) in mounts.iter().enumerate() {
        let source = || {
            m.source.clone().filter(|s| !s.is_empty()).ok_or_else(|| {
                let kind = if m.kind == MountType::Bind {
                    "bind"
                } else {
                    "volume"
                };
                format!("mounts[{i}].source: a {kind} mount needs one")
            })
        };
        match m.kind {
            MountType::Bind => binds.push(VolumeMount {
                host_path: source()?,
                container_path: m.target.clone(),
                read_only: m.read_only,
            }),
            MountType::Volume => named.push(NamedVolumeMount {
                name: source()?,
                target: m.target.clone(),
                read_only: m.read_only,
            }),
            MountType::Tmpfs => tmpfs.push(TmpfsMount {
                target: m.target.clone(),
                size_bytes: match &m.size {
                    Some(q) => {
                        Some(parse_size(q.as_str()).map_err(|e| format!("mounts[{i}].size: {e}"))?)
                    }
                    None => None,
                },
                mode: match &m.mode {
                    Some(mode) => Some(
                        hoist_proto::rules::parse_mode(mode)
                            .map_err(|e| format!("mounts[{i}].mode: {e}"))?,
                    ),
                    None => None,
                },
                read_only: m.read_only,
            }),
        }
    }
    Ok((binds, named, tmpfs))
}

/// `web.3.<first 12 of the task id>`: unique per task, readable in `hoist ps`.
pub fn container_name(a: &Assignment) -> String {
    let short: String = a
        .task_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(12)
        .collect();
    format!("{}.{}.{short}", a.service, a.slot)
}

/// The times the agent restarted a container's task, from its labels (none for other containers).
pub fn restarts_ms(labels: &std::collections::BTreeMap<String, String>) -> Vec<u64> {
    labels
        .get(RESTARTS)
        .map(|l| l.split(',').filter_map(|t| t.parse().ok()).collect())
        .unwrap_or_default()
}

/// The task a container stands for, if it is an orchestrated one.
pub fn observe(c: &ContainerInfo) -> Option<ObservedTask> {
    let labels = &c.spec.labels;
    let task_id = labels.get(TASK)?.clone();
    let restarts_ms = restarts_ms(labels);
    let phase = match (c.status, &c.exit) {
        (ContainerStatus::Exited, Some(exit)) => Phase::Exited {
            code: exit.code,
            finished_ms: rfc3339_ms(&exit.finished_at).unwrap_or(0),
        },
        (ContainerStatus::Exited, None) => Phase::Exited {
            code: 255,
            finished_ms: 0,
        },
        _ => Phase::Running,
    };
    Some(ObservedTask {
        task_id,
        container_id: Some(c.id.clone()),
        phase,
        restarts_ms,
        created_ms: rfc3339_ms(&c.created_at).unwrap_or(0),
        address: c.ip_address.clone(),
        image_check: c
            .healthcheck
            .as_ref()
            .and_then(|h| super::health::Check::from_image(h, c.shell.as_deref())),
        // The manager knows them, not the container's API view (the executor fills them in).
        files: vec![],
    })
}

/// Milliseconds since the Unix epoch of an RFC 3339 time.
pub fn rfc3339_ms(text: &str) -> Option<u64> {
    let t = humantime::parse_rfc3339_weak(text).ok()?;
    let d = t.duration_since(std::time::UNIX_EPOCH).ok()?;
    u64::try_from(d.as_millis()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hoist_proto::cluster::TaskState;
    use hoist_proto::service::{ServicePort, ServiceSpec};
    use hoist_proto::ExitInfo;

    fn assignment() -> Assignment {
        let mut spec = ServiceSpec::new("web", "busybox:latest");
        spec.command = vec!["httpd".into()];
        spec.args = vec!["-f".into(), "-p".into(), "80".into()];
        spec.env.insert("A".into(), "1".into());
        spec.resources.cpu = Some("500m".into());
        spec.resources.memory = Some("64Mi".into());
        spec.ports = vec![
            ServicePort {
                target: 80,
                published: Some(8080),
                protocol: PortProtocol::Tcp,
                mode: Default::default(),
            },
            ServicePort {
                target: 9000,
                published: None,
                protocol: PortProtocol::Udp,
                mode: Default::default(),
            },
        ];
        Assignment {
            task_id: "t-0123456789abcdef".into(),
            service: "web".into(),
            service_version: 4,
            slot: 2,
            spec,
            desired: TaskState::Running,
            files: vec![],
            spec_held: false,
        }
    }

    #[test]
    fn on_the_mesh_a_replica_publishes_only_its_host_ports() {
        let mut a = assignment();
        assert_eq!(create_request(&a, &[], true).unwrap().ports, vec![]);
        a.spec.ports[0].mode = PortMode::Host;
        let r = create_request(&a, &[], true).unwrap();
        assert_eq!(
            r.ports.iter().map(|p| p.host_port).collect::<Vec<_>>(),
            vec![8080]
        );
        a.spec.ports[0].mode = PortMode::Ingress;
        assert_eq!(
            create_request(&a, &[], false).unwrap().ports.len(),
            1,
            "no mesh: published here"
        );
    }

    #[test]
    fn the_create_request_carries_the_spec_and_the_task_labels() {
        let r = create_request(&assignment(), &[5, 7], false).unwrap();
        assert_eq!(r.image, "busybox:latest");
        assert_eq!(r.name.as_deref(), Some("web.2.t0123456789a"));
        assert_eq!(r.entrypoint, Some(vec!["httpd".to_string()]));
        assert_eq!(r.cmd, ["-f", "-p", "80"]);
        assert_eq!(r.env, ["A=1"]);
        assert_eq!(r.resources.cpu_millis, Some(500));
        assert_eq!(r.resources.memory_bytes, Some(64 << 20));
        assert_eq!(
            r.ports,
            [PortMapping {
                host_port: 8080,
                container_port: 80,
                protocol: Protocol::Tcp
            }]
        );
        assert!(r.init);
        assert_eq!(r.labels[TASK], "t-0123456789abcdef");
        assert_eq!(r.labels[SERVICE], "web");
        assert_eq!(r.labels[SLOT], "2");
        assert_eq!(r.labels[VERSION], "4");
        assert_eq!(r.labels[RESTARTS], "5,7");
        hoist_common::ids::validate_name(r.name.as_deref().unwrap()).unwrap();
    }

    #[test]
    fn bad_quantities_are_named() {
        let mut a = assignment();
        a.spec.resources.memory = Some("lots".into());
        assert_eq!(
            create_request(&a, &[], false).unwrap_err(),
            "resources.memory: \"lots\" is not a size (like 512k, 64m, 1.5g, 512Mi)"
        );
    }

    #[test]
    fn every_field_of_the_complete_spec_reaches_the_container() {
        use hoist_proto::service::{ResourceLimits, ResourceReservations, Ulimit};
        let mut a = assignment();
        let r = create_request(&a, &[], false).unwrap();
        assert!(r.init, "init by default");
        assert_eq!(
            (r.user.as_ref(), r.workdir.as_ref(), r.hostname.as_ref()),
            (None, None, None)
        );
        assert!(!r.read_only && r.ulimits.is_empty() && r.tmpfs.is_empty());
        assert!(r.volumes.is_empty() && r.named_volumes.is_empty());
        assert_eq!(r.resources.pids_limit, None);

        let s = &mut a.spec;
        s.user = Some("999:999".into());
        s.workdir = Some("/srv".into());
        s.hostname = Some("db-1".into());
        s.init = Some(false);
        s.read_only = true;
        s.ulimits.insert(
            "nofile".into(),
            Ulimit {
                soft: 1024,
                hard: 4096,
            },
        );
        s.resources.limits = Some(ResourceLimits {
            cpu: Some("1.5".into()),
            memory: Some("256Mi".into()),
            pids: Some(64),
        });
        s.resources.reservations = Some(ResourceReservations {
            cpu: Some("100m".into()),
            memory: Some("32Mi".into()),
        });
        let mount = |kind, source: Option<&str>, target: &str| Mount {
            kind,
            source: source.map(str::to_string),
            target: target.into(),
            read_only: false,
            size: None,
            mode: None,
        };
        s.mounts = vec![
            Mount {
                read_only: true,
                ..mount(MountType::Bind, Some("/srv/conf"), "/etc/app")
            },
            mount(MountType::Volume, Some("db-data"), "/var/lib/db"),
            Mount {
                size: Some("64Mi".into()),
                mode: Some("0700".into()),
                ..mount(MountType::Tmpfs, None, "/run")
            },
        ];
        let r = create_request(&a, &[], false).unwrap();
        assert_eq!(r.user.as_deref(), Some("999:999"));
        assert_eq!(r.workdir.as_deref(), Some("/srv"));
        assert_eq!(r.hostname.as_deref(), Some("db-1"));
        assert!(!r.init && r.read_only);
        assert_eq!(
            r.ulimits["nofile"],
            Ulimit {
                soft: 1024,
                hard: 4096
            }
        );
        // The limits, not the reservations, and not the plain values they win over.
        assert_eq!(r.resources.cpu_millis, Some(1500));
        assert_eq!(r.resources.memory_bytes, Some(256 << 20));
        assert_eq!(r.resources.pids_limit, Some(64));
        assert_eq!(
            r.volumes,
            [VolumeMount {
                host_path: "/srv/conf".into(),
                container_path: "/etc/app".into(),
                read_only: true
            }]
        );
        assert_eq!(
            r.named_volumes,
            [NamedVolumeMount {
                name: "db-data".into(),
                target: "/var/lib/db".into(),
                read_only: false
            }]
        );
        assert_eq!(
            r.tmpfs,
            [TmpfsMount {
                target: "/run".into(),
                size_bytes: Some(64 << 20),
                mode: Some(0o700),
                read_only: false
            }]
        );
        // Limits without a cpu or memory of their own fall back to the plain values.
        a.spec.resources.limits = Some(ResourceLimits {
            pids: Some(10),
            ..Default::default()
        });
        let r = create_request(&a, &[], false).unwrap();
        assert_eq!(
            (r.resources.cpu_millis, r.resources.memory_bytes),
            (Some(500), Some(64 << 20))
        );
    }

    #[test]
    fn hardening_reaches_the_container() {
        let mut a = assignment();
        let r = create_request(&a, &[], false).unwrap();
        assert!(r.cap_add.is_empty() && r.cap_drop.is_empty());
        assert_eq!((r.no_new_privileges, r.userns), (None, false));
        a.spec.cap_add = vec!["NET_ADMIN".into()];
        a.spec.cap_drop = vec!["ALL".into()];
        a.spec.no_new_privileges = Some(false);
        a.spec.userns = true;
        let r = create_request(&a, &[], false).unwrap();
        assert_eq!(
            (r.cap_add, r.cap_drop),
            (vec!["NET_ADMIN".to_string()], vec!["ALL".to_string()])
        );
        assert_eq!((r.no_new_privileges, r.userns), (Some(false), true));
    }

    #[test]
    fn bad_mounts_and_limits_are_named() {
        let mut a = assignment();
        a.spec.mounts = vec![Mount {
            kind: MountType::Volume,
            source: None,
            target: "/data".into(),
            read_only: false,
            size: None,
            mode: None,
        }];
        assert_eq!(
            create_request(&a, &[], false).unwrap_err(),
            "mounts[0].source: a volume mount needs one"
        );
        a.spec.mounts[0].kind = MountType::Tmpfs;
        a.spec.mounts[0].mode = Some("99".into());
        assert!(create_request(&a, &[], false)
            .unwrap_err()
            .starts_with("mounts[0].mode: \"99\" is not an octal mode"));
        a.spec.mounts.clear();
        a.spec.resources.limits = Some(hoist_proto::service::ResourceLimits {
            pids: Some(0),
            ..Default::default()
        });
        assert_eq!(
            create_request(&a, &[], false).unwrap_err(),
            "resources.limits.pids: 0 must be at least 1"
        );
    }

    #[test]
    fn the_spec_says_how_a_replica_stops() {
        let mut a = assignment();
        let r = create_request(&a, &[], false).unwrap();
        assert_eq!((r.stop_signal, r.stop_grace_ms), (None, None));
        a.spec.stop_signal = Some("SIGQUIT".into());
        a.spec.stop_grace_period = Some("1m30s".into());
        let r = create_request(&a, &[], false).unwrap();
        assert_eq!(r.stop_signal.as_deref(), Some("SIGQUIT"));
        assert_eq!(r.stop_grace_ms, Some(90_000));
    }

    #[test]
    fn containers_are_recognised_by_their_labels() {
        let req = create_request(&assignment(), &[5, 7], false).unwrap();
        let mut info = ContainerInfo {
            id: "c1".into(),
            name: "web.2.x".into(),
            image: "busybox:latest".into(),
            image_id: "sha256:x".into(),
            command: vec![],
            status: ContainerStatus::Exited,
            created_at: "2026-11-23T10:00:00.5Z".into(),
            started_at: None,
            pid: None,
            exit: Some(ExitInfo {
                code: 2,
                signal: None,
                oom_killed: false,
                finished_at: "2026-11-23T10:00:01.250000000Z".into(),
            }),
            ip_address: Some("10.89.1.7".into()),
            spec: req,
            mounts: vec![],
            healthcheck: None,
            shell: None,
        };
        let o = observe(&info).unwrap();
        assert_eq!(o.task_id, "t-0123456789abcdef");
        assert_eq!(o.image_check, None);
        assert_eq!(o.restarts_ms, [5, 7]);
        assert_eq!(o.address.as_deref(), Some("10.89.1.7"));
        let created = o.created_ms;
        assert_eq!(
            o.phase,
            Phase::Exited {
                code: 2,
                finished_ms: created + 750
            }
        );
        // The image's HEALTHCHECK, recorded with the container, comes along (in its SHELL).
        info.healthcheck = Some(hoist_proto::ImageHealthcheck {
            test: vec!["CMD-SHELL".into(), "test -e /ready".into()],
            retries: 1,
            ..Default::default()
        });
        info.shell = Some(vec!["/bin/ash".into(), "-c".into()]);
        let check = observe(&info).unwrap().image_check.unwrap();
        assert_eq!(
            check.probe,
            super::super::probe::Probe::Exec(vec![
                "/bin/ash".into(),
                "-c".into(),
                "test -e /ready".into()
            ])
        );
        assert_eq!(check.timing.retries, 1);
        info.healthcheck.as_mut().unwrap().test = vec!["NONE".into()];
        assert_eq!(observe(&info).unwrap().image_check, None);
        info.spec.labels.clear();
        assert_eq!(observe(&info), None, "unlabelled containers are not ours");
    }
}
