//! Creating and starting a container: validate, resolve the image, prepare the process, and set up
//! cgroup, network and files before the supervisor starts it. Every step is undone if a later one
//! fails, so a failed `run` leaves nothing behind.

use super::files::{ContainerFiles, FilesState};
use super::prepare;
use super::record::{ContainerRecord, State, RECORD_VERSION};
use super::volumes::{self, AnonymousVolume};
use super::{Container, Manager};
use crate::error::AgentError;
use crate::runtime::{
    mounts, now_rfc3339, users, write_json_atomic, Bind, ContainerDir, RuntimeSpec,
};
use hoist_proto::{rules, CreateContainer, Created, NetworkMode};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::watch;

impl Manager {
    /// Creates and starts a container. Returns once its command has been exec'd. An `attached`
    /// caller streams the container's output and removes a `--rm` container itself after the exit.
    pub async fn create(
        self: &Arc<Self>,
        req: CreateContainer,
        attached: bool,
    ) -> Result<(Arc<Container>, Created), AgentError> {
        self.create_with_files(req, attached, None).await
    }

    /// [`Manager::create`] with secrets and configs (`files`: a service replica's, fetched by
    /// the worker), written to the container's volatile directory and linked at their targets
    /// ([`super::files`]). Their content is in no record.
    pub async fn create_with_files(
        self: &Arc<Self>,
        req: CreateContainer,
        attached: bool,
        files: Option<ContainerFiles>,
    ) -> Result<(Arc<Container>, Created), AgentError> {
        let t0 = Instant::now();
        validate(&req)?;
        crate::network::kind::kind(req.network, self.config.cluster_dns.is_some())
            .map_err(AgentError::Invalid)?;
        let images = self.deps.images.clone();
        let image_ref = req.image.clone();
        let image = tokio::task::spawn_blocking(move || images.resolve(&image_ref))
            .await
            .map_err(|e| AgentError::internal("resolve image", e))??;
        self.create_with(req, image, attached, t0, true, files)
            .await
    }

    /// Creates and starts a container from an image the caller resolved (the builder runs RUN
    /// steps on image states that have no name). Without anonymous volumes for the image's
    /// `VOLUME`s, as BuildKit runs RUN steps: what a step writes below one stays in its layer.
    pub async fn create_from(
        self: &Arc<Self>,
        req: CreateContainer,
        image: crate::image::ResolvedImage,
        attached: bool,
        t0: Instant,
    ) -> Result<(Arc<Container>, Created), AgentError> {
        self.create_with(req, image, attached, t0, false, None)
            .await
    }

    /// `create` and `create_from`; `image_volumes` says whether the image's `VOLUME`s get
    /// anonymous volumes ([`volumes`]), `files` are its secrets and configs.
    async fn create_with(
        self: &Arc<Self>,
        req: CreateContainer,
        image: crate::image::ResolvedImage,
        attached: bool,
        t0: Instant,
        image_volumes: bool,
        files: Option<ContainerFiles>,
    ) -> Result<(Arc<Container>, Created), AgentError> {
        let files = files.filter(|f| !f.refs.is_empty());
        validate(&req)?;
        crate::network::kind::kind(req.network, self.config.cluster_dns.is_some())
            .map_err(AgentError::Invalid)?;

        let id = hoist_common::ids::new_id();
        let name = match &req.name {
            Some(n) => n.clone(),
            None => hoist_common::ids::random_name(),
        };
        let hostname = match (&req.hostname, req.network) {
            (Some(h), _) => h.clone(),
            (None, NetworkMode::Host) => nix::unistd::gethostname()
                .map(|h| h.to_string_lossy().into_owned())
                .unwrap_or_else(|_| "localhost".into()),
            (None, _) => hoist_common::ids::short_id(&id).to_string(),
        };
        let mut process =
            prepare::process(&req, &image.config, &hostname).map_err(AgentError::Invalid)?;
        hoist_proto::limits::check_process(&process.args, &process.env)
            .map_err(AgentError::Invalid)?;
        let identity = {
            let read = |p: &str| {
                image
                    .layers
                    .iter()
                    .rev()
                    .find_map(|l| mounts::read_in_root(l, p, 1 << 20).ok())
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default()
            };
            let passwd = read("etc/passwd");
            let id = users::resolve(process.user.as_deref(), &passwd, &read("etc/group"))
                .map_err(AgentError::Invalid)?;
            // As runc does: a process without HOME gets its user's home directory.
            if !process.env.iter().any(|e| e.starts_with("HOME=")) {
                process
                    .env
                    .push(format!("HOME={}", users::home(id.uid, &passwd)));
            }
            id
        };
        if req.userns {
            self.config
                .userns_range
                .check_ids(identity.uid, identity.gid, &identity.additional_gids)
                .map_err(AgentError::Invalid)?;
        }
        let stop_signal = prepare::stop_signal(
            req.stop_signal
                .as_deref()
                .or(image.config.stop_signal.as_deref()),
        )
        .map_err(AgentError::Invalid)?;
        let anonymous_volumes: Vec<AnonymousVolume> = if image_volumes {
            volumes::anonymous_targets(&image.config.volumes, &volumes::requested_targets(&req))
                .map_err(AgentError::Invalid)?
                .into_iter()
                .map(|target| AnonymousVolume {
                    id: hoist_common::ids::new_id(),
                    target,
                })
                .collect()
        } else {
            Vec::new()
        };

        if let Some(f) = &files {
            let mut mounts = volumes::requested_targets(&req);
            mounts.extend(anonymous_volumes.iter().map(|v| v.target.as_str()));
            super::files::check_create(
                f,
                &mounts,
                req.userns.then_some(self.config.userns_range),
                self.config.volatile_on_tmpfs,
            )?;
        }

        let dir = ContainerDir(self.config.containers_dir().join(&id));
        let cgroup = self.deps.cgroups.handle_for(&id);
        let record = ContainerRecord {
            version: RECORD_VERSION,
            id: id.clone(),
            name: name.clone(),
            image: image.reference.clone(),
            image_id: image.id.clone(),
            command: process.args.clone(),
            created_at: now_rfc3339(),
            ip_address: None,
            stop_signal,
            spec: req.clone(),
            anonymous_volumes: anonymous_volumes.clone(),
            healthcheck: image.config.healthcheck.clone(),
            shell: image.config.shell.clone(),
            userns: req.userns.then_some(self.config.userns_range),
        };
        // Reserve the name: the container is listed (as created) from here on.
        {
            let mut index = self.index();
            if index.values().any(|c| c.record.name == name) {
                return Err(AgentError::Conflict(format!(
                    "the container name {name:?} is already in use"
                )));
            }
            let placeholder = Container {
                record: record.clone(),
                dir: dir.clone(),
                cgroup: cgroup.clone(),
                state: watch::channel(State::Created).0,
                files: Default::default(),
                files_lock: Default::default(),
            };
            index.insert(id.clone(), Arc::new(placeholder));
        }

        let resolved_us = t0.elapsed().as_micros();
        let prepared = self
            .prepare(
                &req,
                record,
                &dir,
                &hostname,
                process,
                identity,
                image.layers,
                files.as_ref(),
            )
            .await;
        // The content is on the tmpfs now: none of it stays in this process's memory.
        drop(files);
        let prepared_us = t0.elapsed().as_micros();
        // Any failure from here on undoes everything: nothing of the container is left behind.
        let started = match prepared {
            Ok(prepared) => match self.deps.supervisor.start(&dir).await {
                Ok(started) => Ok((prepared, started)),
                Err(e) => Err(AgentError::from(e)),
            },
            Err(e) => Err(e),
        };
        let ((record, spec, files), started) = match started {
            Ok(v) => v,
            Err(e) => {
                self.index().remove(&id);
                let _ = self.release(&id, &dir, &cgroup, &anonymous_volumes).await;
                return Err(e);
            }
        };
        let create_to_exec_us = t0.elapsed().as_micros() as u64;
        tracing::debug!(%id, resolved_us, prepared_us, create_to_exec_us, "create phases");
        let container = Arc::new(Container {
            record,
            dir,
            cgroup: spec.cgroup,
            state: watch::channel(State::Running {
                pid: started.pid,
                started_at: started.started_at,
            })
            .0,
            files: std::sync::Mutex::new(files),
            files_lock: Default::default(),
        });
        self.insert(container.clone());
        tracing::info!(%id, %name, create_to_exec_us, "container started");
        self.monitor(container.clone(), req.auto_remove && !attached);
        Ok((
            container,
            Created {
                id,
                name,
                create_to_exec_us: Some(create_to_exec_us),
            },
        ))
    }

    /// Everything before the supervisor starts: cgroup, network, generated files, secrets and
    /// configs, the spec on disk.
    #[allow(clippy::too_many_arguments)]
    async fn prepare(
        &self,
        req: &CreateContainer,
        mut record: ContainerRecord,
        dir: &ContainerDir,
        hostname: &str,
        process: prepare::Process,
        identity: users::Identity,
        layers: Vec<std::path::PathBuf>,
        task_files: Option<&ContainerFiles>,
    ) -> Result<(ContainerRecord, RuntimeSpec, Option<FilesState>), AgentError> {
        let io = |what: String, e: std::io::Error| AgentError::internal(what, e);
        let userns = req.userns.then_some(self.config.userns_range);
        // What the container's root owns on the host in a user namespace: its own id there.
        let owner = |path: &Path| match userns {
            Some(r) => std::os::unix::fs::chown(path, Some(r.first), Some(r.first))
                .map_err(|e| io(format!("chown {}", path.display()), e)),
            None => Ok(()),
        };
        // `rootfs` is in the volatile half (`DATA/run/ID`), which this creates too.
        for d in [dir.upper(), dir.work(), dir.rootfs()] {
            std::fs::create_dir_all(&d).map_err(|e| io(format!("create {}", d.display()), e))?;
        }
        // The writable layer's root is the root of what the container sees as `/`.
        owner(&dir.upper())?;
        let cgroups = self.deps.cgroups.clone();
        let (id, res) = (record.id.clone(), req.resources);
        let t = Instant::now();
        let cgroup = tokio::task::spawn_blocking(move || cgroups.create(&id, &res))
            .await
            .map_err(|e| AgentError::internal("cgroup", e))?
            .map_err(|e| io("create cgroup".into(), e))?;
        tracing::debug!(id = %record.id, us = t.elapsed().as_micros(), "cgroup created");
        let t = Instant::now();
        let attachment = self
            .deps
            .network
            .attach(&record.id, req.network, &req.ports)
            .await?;
        tracing::debug!(id = %record.id, us = t.elapsed().as_micros(), "network attached");
        record.ip_address = attachment.ip.map(|ip| ip.to_string());

        let files = [
            (
                "hosts",
                "/etc/hosts",
                prepare::hosts_file(hostname, attachment.ip),
            ),
            ("hostname", "/etc/hostname", format!("{hostname}\n")),
            (
                "resolv.conf",
                "/etc/resolv.conf",
                match (self.config.cluster_dns, req.network) {
                    (Some(dns), NetworkMode::Cluster) => prepare::cluster_resolv_conf(
                        dns,
                        &std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
                        prepare::stack_of(&req.labels),
                    ),
                    _ => prepare::resolv_conf(
                        &std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
                    ),
                },
            ),
        ];
        let mut binds = Vec::new();
        for (file, target, content) in files {
            let path = dir.run().join(file);
            std::fs::write(&path, content)
                .map_err(|e| io(format!("write {}", path.display()), e))?;
            owner(&path)?;
            binds.push(Bind {
                source: path,
                target: target.into(),
                read_only: false,
            });
        }
        // Secrets and configs: beside the generated files, in the volatile directory only.
        let (files_state, files_mount) = match task_files {
            Some(f) => {
                let (state, mount) = super::files::write_new(dir, f, userns)?;
                tracing::info!(id = %record.id, files = %super::files::list(&state.versions()), "secrets and configs written");
                (Some(state), Some(mount))
            }
            None => (None, None),
        };
        let mut volume_binds = Vec::new();
        for v in &req.volumes {
            let host = Path::new(&v.host_path);
            if !host.exists() {
                create_dirs(host, userns.map(|r| r.first))
                    .map_err(|e| AgentError::Invalid(format!("volume {}: {e}", v.host_path)))?;
            }
            volume_binds.push(Bind {
                source: host.to_path_buf(),
                target: v.container_path.clone(),
                read_only: v.read_only,
            });
        }
        if !record.anonymous_volumes.is_empty() {
            let t = Instant::now();
            let (root, anonymous) = (self.config.volumes_dir(), record.anonymous_volumes.clone());
            let (layers, mountpoint) = (layers.clone(), dir.rootfs());
            let sources = tokio::task::spawn_blocking(move || {
                volumes::create(&root, &anonymous, &layers, &mountpoint, userns)
            })
            .await
            .map_err(|e| AgentError::internal("volumes", e))?
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::InvalidInput => AgentError::Invalid(e.to_string()),
                _ => AgentError::internal("create the image's volumes", e),
            })?;
            for (v, source) in record.anonymous_volumes.iter().zip(sources) {
                volume_binds.push(Bind {
                    source,
                    target: v.target.clone(),
                    read_only: false,
                });
            }
            tracing::debug!(id = %record.id, us = t.elapsed().as_micros(), "volumes made");
        }
        if !req.named_volumes.is_empty() {
            let t = Instant::now();
            let sources = self.ensure_named_volumes(req, &layers, dir).await?;
            for (v, source) in req.named_volumes.iter().zip(sources) {
                volume_binds.push(Bind {
                    source,
                    target: v.target.clone(),
                    read_only: v.read_only,
                });
            }
            tracing::debug!(id = %record.id, us = t.elapsed().as_micros(), "named volumes ready");
        }
        volumes::sort_binds(&mut volume_binds);
        binds.extend(volume_binds);
        let rlimits =
            crate::runtime::security::rlimits(&req.ulimits).map_err(AgentError::Invalid)?;
        let capabilities = hoist_proto::capabilities::effective(&req.cap_add, &req.cap_drop)
            .map_err(AgentError::Invalid)?;
        let spec = RuntimeSpec {
            id: record.id.clone(),
            layers,
            args: process.args,
            env: process.env,
            cwd: process.cwd,
            uid: identity.uid,
            gid: identity.gid,
            additional_gids: identity.additional_gids,
            hostname: hostname.to_string(),
            read_only: req.read_only,
            volatile_rootfs: req.auto_remove,
            binds,
            netns: attachment.netns,
            own_netns: crate::network::kind::kind(req.network, self.config.cluster_dns.is_some())
                .is_ok_and(|k| k.netns == crate::network::kind::Netns::Own),
            cgroup,
            log_max_bytes: self.config.log_max_bytes,
            init: req.init,
            tmpfs: req.tmpfs.clone(),
            rlimits,
            capabilities: Some(capabilities.into_iter().map(String::from).collect()),
            no_new_privileges: req.no_new_privileges.unwrap_or(true),
            userns,
            files: files_mount,
        };
        write_json_atomic(&dir.spec(), &spec).map_err(|e| io("write spec".into(), e))?;
        write_json_atomic(&dir.record(), &record).map_err(|e| io("write record".into(), e))?;
        Ok((record, spec, files_state))
    }
}

impl Manager {
    /// The named volumes of `req`, made (and filled from the image) if new, under the volume
    /// lock; answers the directories to mount, in order.
    async fn ensure_named_volumes(
        &self,
        req: &CreateContainer,
        layers: &[std::path::PathBuf],
        dir: &ContainerDir,
    ) -> Result<Vec<std::path::PathBuf>, AgentError> {
        let root = self.named_volumes_root();
        let (mounts, layers, mountpoint) =
            (req.named_volumes.clone(), layers.to_vec(), dir.rootfs());
        let userns = req.userns.then_some(self.config.userns_range);
        // A std mutex held on the blocking thread: fills of one volume never overlap.
        let lock = self.volume_lock.clone();
        let result = tokio::task::spawn_blocking(move || {
            let _guard = lock.lock().unwrap_or_else(|p| p.into_inner());
            super::named_volumes::ensure(&root, &mounts, &layers, &mountpoint, userns)
        })
        .await
        .map_err(|e| AgentError::internal("named volumes", e))?;
        result.map_err(|e| match e.kind() {
            std::io::ErrorKind::InvalidInput => AgentError::Invalid(format!("named volume: {e}")),
            _ => AgentError::internal("create named volumes", e),
        })
    }
}

/// Creates `path` and its missing parents; with `owner`, the directories it made get that owner
/// (Docker makes a missing bind source the remapped root's).
fn create_dirs(path: &Path, owner: Option<u32>) -> std::io::Result<()> {
    let missing: Vec<&Path> = path.ancestors().take_while(|p| !p.exists()).collect();
    std::fs::create_dir_all(path)?;
    if let Some(id) = owner {
        for dir in missing {
            std::os::unix::fs::chown(dir, Some(id), Some(id))?;
        }
    }
    Ok(())
}

/// Checks a create request with the rules the controller checks service specs with
/// (`hoist_proto::rules`), each problem naming its field.
fn validate(req: &CreateContainer) -> Result<(), AgentError> {
    let invalid = |m: String| Err(AgentError::Invalid(m));
    // Sizes first: everything after is linear in them, and a request beyond them would fail.
    hoist_proto::limits::check_create(req).map_err(AgentError::Invalid)?;
    if req.image.is_empty() {
        return invalid("image: must not be empty".into());
    }
    if let Some(name) = &req.name {
        hoist_common::ids::validate_name(name).map_err(AgentError::Invalid)?;
    }
    if let Some(m) = req.resources.memory_bytes {
        rules::check_memory(m).map_err(|e| AgentError::Invalid(format!("memory: {e}")))?;
    }
    if let Some(c) = req.resources.cpu_millis {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
        if c == 0 || c > cpus * 1000 {
            return invalid(format!(
                "cpus: {} is out of range: this host has {cpus} CPUs",
                c as f64 / 1000.0
            ));
        }
    }
    if let Some(p) = req.resources.pids_limit {
        let p = i64::try_from(p).unwrap_or(i64::MAX);
        rules::check_pids(p).map_err(|e| AgentError::Invalid(format!("pids-limit: {e}")))?;
    }
    if let Some(u) = req.user.as_deref().filter(|u| !u.is_empty()) {
        rules::check_user(u).map_err(|e| AgentError::Invalid(format!("user: {e}")))?;
    }
    if let Some(h) = &req.hostname {
        rules::check_hostname(h).map_err(|e| AgentError::Invalid(format!("hostname: {e}")))?;
    }
    if let Some(w) = req.workdir.as_deref().filter(|w| !w.is_empty()) {
        if !w.starts_with('/') || w.contains('\0') {
            return invalid(format!("workdir: {w:?} must be an absolute path"));
        }
    }
    for (name, u) in &req.ulimits {
        rules::check_ulimit(name, u.soft, u.hard)
            .map_err(|e| AgentError::Invalid(format!("ulimit {name}: {e}")))?;
    }
    if !req.ports.is_empty() && !matches!(req.network, NetworkMode::Bridge | NetworkMode::Cluster) {
        return invalid(
            format!(
                "ports: publishing ports needs --network bridge (not {:?})",
                req.network
            )
            .to_lowercase(),
        );
    }
    let mut seen = std::collections::HashSet::new();
    for p in &req.ports {
        if !seen.insert((p.host_port, p.protocol)) {
            return invalid(format!(
                "ports: host port {}/{} is given twice",
                p.host_port, p.protocol
            ));
        }
    }
    for v in &req.volumes {
        let at = format!("volume {}:{}", v.host_path, v.container_path);
        rules::check_host_path(&v.host_path)
            .and_then(|()| rules::check_container_path(&v.container_path))
            .map_err(|e| AgentError::Invalid(format!("{at}: {e}")))?;
    }
    for v in &req.named_volumes {
        let at = format!("volume {}:{}", v.name, v.target);
        rules::check_volume_name(&v.name)
            .and_then(|()| rules::check_container_path(&v.target))
            .map_err(|e| AgentError::Invalid(format!("{at}: {e}")))?;
    }
    for t in &req.tmpfs {
        let at = format!("tmpfs {}", t.target);
        rules::check_container_path(&t.target)
            .map_err(|e| AgentError::Invalid(format!("{at}: {e}")))?;
        if t.size_bytes == Some(0) {
            return invalid(format!("{at}: size must be more than 0"));
        }
        if let Some(m) = t.mode.filter(|m| *m > 0o7777) {
            return invalid(format!(
                "{at}: mode {m:o} is not a permission mode (at most 7777)"
            ));
        }
    }
    for (field, names) in [("cap_add", &req.cap_add), ("cap_drop", &req.cap_drop)] {
        for name in names {
            hoist_proto::capabilities::normalize(name)
                .map_err(|e| AgentError::Invalid(format!("{field}: {e}")))?;
        }
    }
    if req.userns && req.network == NetworkMode::Host {
        return invalid(
            "userns: a user-namespaced container cannot use the host's network: its root has \
             no say over the host's namespace (as under Docker)"
                .into(),
        );
    }
    let mut targets = std::collections::BTreeSet::new();
    for t in volumes::requested_targets(req) {
        let clean = volumes::clean(t).unwrap_or_else(|| t.to_string());
        if !targets.insert(clean.clone()) {
            return invalid(format!("mounts: two mounts target {clean}"));
        }
    }
    Ok(())
}
