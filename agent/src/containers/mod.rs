//! The agent's containers: create, start, stop, kill, remove, wait, exec, logs, stats, and
//! re-attaching to running containers after an agent restart.
//!
//! State lives in one directory per container (see [`crate::runtime::ContainerDir`]); this module
//! keeps an in-memory index of it and a watch channel per container that the supervisor's `wait`
//! answer drives, so every waiter (`run`, `stop`, `logs -f`) wakes the moment the process exits.
//!
//! The manager reaches the kernel and other processes only through the [`Deps`] it is built
//! with: the image store, the network (whose own kernel edges are traits), cgroups and the
//! supervisor. The daemon passes the host's; unit tests pass recording fakes
//! (`crate::testing`), so create, remove and restore run without root.

mod create;
pub mod diff;
pub mod files;
mod logs;
pub mod named_volumes;
pub mod prepare;
pub mod record;
mod restore;
mod spread;
pub mod supervisor;
#[cfg(test)]
mod tests;
pub mod volumes;

use crate::config::AgentConfig;
use crate::error::AgentError;
use crate::image::Images;
use crate::network::Network;
use crate::runtime::cgroup::{CgroupHandle, CgroupVersion, Cgroups};
use crate::runtime::{now_rfc3339, read_json, write_json_atomic, ContainerDir};
use hoist_proto::{ContainerInfo, ContainerStats, ExitInfo};
use record::{ContainerRecord, State};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

pub use logs::LogOptions;
pub use supervisor::{Shim, StartMode, Supervisor, SupervisorError};

/// What the manager works through, passed in at construction: the host's in the daemon
/// (`main.rs`), recording fakes in tests (`crate::testing`). Never chosen by `cfg!(test)`.
#[derive(Debug, Clone)]
pub struct Deps {
    /// Resolves an image to its config and layer dirs ([`crate::image::ImageStore`]).
    pub images: Arc<dyn Images>,
    /// Container networking: real IPAM and port rules over its own kernel traits.
    pub network: Arc<Network>,
    /// Cgroup creation, limits, stats and removal ([`crate::runtime::cgroup::CgroupDriver`]).
    pub cgroups: Arc<dyn Cgroups>,
    /// Starts supervisors and speaks to them ([`Shim`]).
    pub supervisor: Arc<dyn Supervisor>,
}

/// Docker's grace period between the stop signal and SIGKILL.
pub const DEFAULT_STOP_GRACE_MS: u64 = 10_000;

/// One container known to the agent.
#[derive(Debug)]
pub struct Container {
    pub record: ContainerRecord,
    pub dir: ContainerDir,
    pub cgroup: CgroupHandle,
    state: watch::Sender<State>,
    /// Its secrets and configs, as it has them ([`files`]; no content).
    files: Mutex<Option<files::FilesState>>,
    /// Held while its files are replaced or removed: one rotation at a time.
    files_lock: tokio::sync::Mutex<()>,
}

impl Container {
    pub fn state(&self) -> State {
        self.state.borrow().clone()
    }

    pub fn info(&self) -> ContainerInfo {
        record::info(
            &self.record,
            &self.state.borrow(),
            &volumes::root_of(&self.dir),
        )
    }

    /// Resolves once the container has exited.
    pub async fn wait_exit(&self) -> ExitInfo {
        let mut rx = self.state.subscribe();
        let state = rx.wait_for(|s| matches!(s, State::Exited { .. })).await;
        match state.as_deref() {
            Ok(State::Exited { exit, .. }) => exit.clone(),
            // The sender lives as long as `self`, so the channel cannot close under us.
            _ => unreachable!("state channel closed while the container exists"),
        }
    }
}

/// The agent's container manager: shared by every API handler.
#[derive(Debug)]
pub struct Manager {
    pub config: AgentConfig,
    deps: Deps,
    containers: Mutex<BTreeMap<String, Arc<Container>>>,
    /// Held while named volumes are made or removed ([`named_volumes`]).
    volume_lock: Arc<Mutex<()>>,
}

impl Manager {
    pub fn new(config: AgentConfig, deps: Deps) -> Arc<Self> {
        Arc::new(Self {
            config,
            deps,
            containers: Mutex::new(BTreeMap::new()),
            volume_lock: Arc::new(Mutex::new(())),
        })
    }

    /// The host's cgroup hierarchy.
    pub fn cgroup_version(&self) -> CgroupVersion {
        self.deps.cgroups.version()
    }

    /// Every container the agent knows, running or not (for the metrics).
    pub fn containers(&self) -> Vec<Arc<Container>> {
        self.index().values().cloned().collect()
    }

    /// The cgroup driver the containers' usage is read through (for the metrics).
    pub fn cgroups(&self) -> &Arc<dyn Cgroups> {
        &self.deps.cgroups
    }

    fn index(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Arc<Container>>> {
        self.containers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Finds a container by full id, name, or unique id prefix, as Docker does.
    pub fn get(&self, key: &str) -> Result<Arc<Container>, AgentError> {
        let index = self.index();
        if let Some(c) = index.get(key) {
            return Ok(c.clone());
        }
        if let Some(c) = index.values().find(|c| c.record.name == key) {
            return Ok(c.clone());
        }
        let matches: Vec<_> = if key.len() >= 3 {
            index
                .values()
                .filter(|c| c.record.id.starts_with(key))
                .collect()
        } else {
            Vec::new()
        };
        match matches.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(AgentError::NotFound(format!("no such container: {key}"))),
            _ => Err(AgentError::Invalid(format!(
                "{key:?} matches more than one container: give more of the id"
            ))),
        }
    }

    pub fn list(&self, all: bool) -> Vec<ContainerInfo> {
        let mut v: Vec<ContainerInfo> = self
            .index()
            .values()
            .map(|c| c.info())
            .filter(|i| all || i.status == hoist_proto::ContainerStatus::Running)
            .collect();
        v.sort_by(|a, b| b.created_at.cmp(&a.created_at));
        v
    }

    fn insert(&self, c: Arc<Container>) {
        self.index().insert(c.record.id.clone(), c);
    }

    /// Sends `signal` to the container's first process.
    pub async fn kill(&self, key: &str, signal: i32) -> Result<(), AgentError> {
        let c = self.get(key)?;
        if !c.state().is_running() {
            return Err(AgentError::Conflict(format!(
                "container {} is not running",
                c.record.name
            )));
        }
        self.signal(&c, signal).await
    }

    /// Stops a container: its stop signal, `timeout` to exit, then SIGKILL. Stopping a container
    /// that is not running is not an error.
    /// Stops a container: its stop signal, then SIGKILL after `timeout`, or after the container's
    /// own grace period (`stop_grace_ms`, default 10 s) when `None`.
    pub async fn stop(
        &self,
        key: &str,
        timeout: Option<Duration>,
    ) -> Result<ContainerInfo, AgentError> {
        let c = self.get(key)?;
        let timeout = timeout.unwrap_or_else(|| {
            Duration::from_millis(c.record.spec.stop_grace_ms.unwrap_or(DEFAULT_STOP_GRACE_MS))
        });
        if c.state().is_running() {
            let _ = self.signal(&c, c.record.stop_signal).await;
            if tokio::time::timeout(timeout, c.wait_exit()).await.is_err() {
                self.signal(&c, libc::SIGKILL).await?;
                c.wait_exit().await;
            }
        }
        Ok(c.info())
    }

    /// Waits for the container to exit.
    pub async fn wait(&self, key: &str) -> Result<ExitInfo, AgentError> {
        let c = self.get(key)?;
        Ok(c.wait_exit().await)
    }

    /// Removes a container and everything it had: network, cgroup, files, and its anonymous
    /// volumes (as Docker's `rm -v`: an anonymous one is of no use without its container). Its
    /// named volumes stay ([`named_volumes`]). A running container is refused unless `force`,
    /// which kills it first.
    pub async fn remove(&self, key: &str, force: bool) -> Result<(), AgentError> {
        let c = self.get(key)?;
        if c.state().is_running() {
            if !force {
                return Err(AgentError::Conflict(format!(
                    "container {} is running: stop it first, or remove with force (-f)",
                    c.record.name
                )));
            }
            if let Err(e) = self.signal(&c, libc::SIGKILL).await {
                // Refused because the command exited between the look and the kill: its exit
                // is being recorded, which is what force asked for. Any other refusal stands.
                let exited = tokio::time::timeout(Duration::from_secs(2), c.wait_exit()).await;
                if exited.is_err() {
                    return Err(e);
                }
            }
            c.wait_exit().await;
        }
        self.index().remove(&c.record.id);
        self.release(&c.record.id, &c.dir, &c.cgroup, &c.record.anonymous_volumes)
            .await
    }

    /// Frees what a container held. Used by remove, by failed creates, and for leftovers at start-up.
    async fn release(
        &self,
        id: &str,
        dir: &ContainerDir,
        cgroup: &CgroupHandle,
        anonymous_volumes: &[volumes::AnonymousVolume],
    ) -> Result<(), AgentError> {
        let mut first_err = None;
        let t = std::time::Instant::now();
        if let Err(e) = self.deps.network.detach(id).await {
            first_err.get_or_insert(AgentError::internal("release network", e));
        }
        let network_us = t.elapsed().as_micros();
        // The record's directory first: a crash in between leaves only volatile files and volumes
        // no record names, which the next `restore` sweeps, never a record that would come back
        // as an exited container. It goes by one rename into the trash, deleted after the
        // removal has answered: deleting its files (the writable layer's among them) is most
        // of a removal's time.
        let (cgroups, cgroup) = (self.deps.cgroups.clone(), cgroup.clone());
        let record_dir = dir.path().to_path_buf();
        let trashed = self.config.trash_dir().join(id);
        let (volumes_root, volume_ids): (_, Vec<String>) = (
            self.config.volumes_dir(),
            anonymous_volumes.iter().map(|v| v.id.clone()).collect(),
        );
        let run = dir.run();
        let res = tokio::task::spawn_blocking(move || -> Result<Option<PathBuf>, AgentError> {
            cgroups
                .remove(&cgroup)
                .map_err(|e| AgentError::internal("remove cgroup", e))?;
            let in_trash = trash(&record_dir, &trashed);
            let mut paths = vec![run];
            if !in_trash {
                paths.insert(0, record_dir);
            }
            for path in paths {
                match std::fs::remove_dir_all(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(AgentError::internal(
                            format!("remove {}", path.display()),
                            e,
                        ))
                    }
                }
            }
            for id in volume_ids {
                volumes::remove(&volumes_root, &id)
                    .map_err(|e| AgentError::internal(format!("remove volume {id}"), e))?;
            }
            Ok(in_trash.then_some(trashed))
        })
        .await
        .map_err(|e| AgentError::internal("remove", e))?;
        match res {
            Ok(Some(trashed)) => empty_trash(vec![trashed]),
            Ok(None) => {}
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
        tracing::debug!(%id, network_us, total_us = t.elapsed().as_micros(), "released");
        first_err.map_or(Ok(()), Err)
    }

    pub fn stats(&self, key: &str) -> Result<ContainerStats, AgentError> {
        let c = self.get(key)?;
        if !c.state().is_running() {
            return Err(AgentError::Conflict(format!(
                "container {} is not running",
                c.record.name
            )));
        }
        Ok(self.stats_of(&c))
    }

    pub fn stats_all(&self) -> Vec<ContainerStats> {
        self.index()
            .values()
            .filter(|c| c.state().is_running())
            .map(|c| self.stats_of(c))
            .collect()
    }

    /// Follows a running container until it exits: records the exit, and removes the container
    /// if `remove_on_exit` (`--rm` without an attached client, which removes it itself).
    fn monitor(self: &Arc<Self>, c: Arc<Container>, remove_on_exit: bool) {
        let mgr = self.clone();
        tokio::spawn(async move {
            let exit = match mgr.deps.supervisor.wait(&c.dir).await {
                Ok(exit) => exit,
                Err(_) => mgr.supervisor_lost(&c).await,
            };
            let started_at = match c.state() {
                State::Running { started_at, .. } => Some(started_at),
                _ => None,
            };
            tracing::info!(id = %c.record.id, name = %c.record.name, code = exit.code, oom = exit.oom_killed, "container exited");
            c.state.send_replace(State::Exited { started_at, exit });
            // Nothing reads an exited container's secrets: they go now, not at its removal.
            mgr.discard_files(&c).await;
            if remove_on_exit {
                if let Err(e) = mgr.remove(&c.record.id, false).await {
                    tracing::warn!(id = %c.record.id, "auto-remove: {e}");
                }
            }
        });
    }
}

impl Manager {
    /// The supervisor is gone without a word (killed): recover the exit from its file, or end the
    /// orphaned container through its cgroup and record that.
    async fn supervisor_lost(&self, c: &Container) -> ExitInfo {
        for _ in 0..20 {
            if let Ok(Some(exit)) = read_json::<ExitInfo>(&c.dir.exit()) {
                return exit;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tracing::warn!(id = %c.record.id, "supervisor is gone; killing the container's processes");
        let (cgroups, cgroup) = (self.deps.cgroups.clone(), c.cgroup.clone());
        let _ = tokio::task::spawn_blocking(move || {
            for _ in 0..100 {
                if cgroups.pids(&cgroup).is_empty() {
                    break;
                }
                cgroups.signal_all(&cgroup, nix::sys::signal::Signal::SIGKILL);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
        .await;
        let exit = ExitInfo {
            code: 137,
            signal: Some(libc::SIGKILL),
            oom_killed: self.deps.cgroups.oom_killed(&c.cgroup),
            finished_at: now_rfc3339(),
        };
        let _ = write_json_atomic(&c.dir.exit(), &exit);
        exit
    }

    /// Sends `signal` to the container's first process through its supervisor, or to all its
    /// processes when no supervisor answers.
    async fn signal(&self, c: &Container, signal: i32) -> Result<(), AgentError> {
        match self.deps.supervisor.kill(&c.dir, signal).await {
            Ok(()) => Ok(()),
            Err(SupervisorError::Refused(e)) => {
                Err(AgentError::Conflict(format!("kill {}: {e}", c.record.name)))
            }
            Err(_) => {
                // No supervisor to ask: signal every process of the container directly.
                if let Ok(sig) = nix::sys::signal::Signal::try_from(signal) {
                    self.deps.cgroups.signal_all(&c.cgroup, sig);
                }
                Ok(())
            }
        }
    }

    fn stats_of(&self, c: &Container) -> ContainerStats {
        let s = self.deps.cgroups.stats(&c.cgroup);
        let res = &c.record.spec.resources;
        ContainerStats {
            id: c.record.id.clone(),
            name: c.record.name.clone(),
            memory_bytes: s.memory_bytes,
            memory_limit_bytes: res.memory_bytes,
            cpu_usage_ns: s.cpu_usage_ns,
            pids: s.pids,
            pids_limit: res.pids_limit,
        }
    }
}

/// Moves a removed container's directory into the trash (`AgentConfig::trash_dir`, made once by
/// `restore` at the agent's start): one rename, after which the container is gone from the
/// containers directory. False if it was not moved (no directory, no trash, another
/// filesystem...): the caller then deletes it in place.
fn trash(dir: &Path, trashed: &Path) -> bool {
    match std::fs::rename(dir, trashed) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => {
            tracing::debug!(dir = %dir.display(), "could not move into the trash ({e}): deleting in place");
            false
        }
    }
}

/// Deletes `paths` (trashed directories) on a blocking thread, after the caller has answered.
pub(crate) fn empty_trash(paths: Vec<PathBuf>) {
    tokio::task::spawn_blocking(move || {
        for path in paths {
            if let Err(e) = std::fs::remove_dir_all(&path) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(dir = %path.display(), "could not empty the trash: {e}");
                }
            }
        }
    });
}
