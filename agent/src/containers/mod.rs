//! The agent's containers: create, start, stop, kill, remove, wait, exec, logs, stats, and
//! re-attaching to running containers after an agent restart.
//!
//! State lives in one directory per container (see [`crate::runtime::ContainerDir`]); this module
//! keeps an in-memory index of it and a watch channel per container that the supervisor's `wait`
//! answer drives, so every waiter (`run`, `stop`, `logs -f`) wakes the moment the process exits.

mod create;
mod logs;
pub mod prepare;
pub mod record;
mod shim_client;
mod spread;

use crate::config::AgentConfig;
use crate::error::AgentError;
use crate::image::ImageStore;
use crate::network::Network;
use crate::runtime::cgroup::{CgroupDriver, CgroupHandle};
use crate::runtime::{
    now_rfc3339, read_json, write_json_atomic, ContainerDir, RuntimeSpec, Started,
};
use hoist_proto::{ContainerInfo, ContainerStats, ExitInfo};
use record::{ContainerRecord, State};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

pub use logs::LogOptions;

/// One container known to the agent.
#[derive(Debug)]
pub struct Container {
    pub record: ContainerRecord,
    pub dir: ContainerDir,
    pub cgroup: CgroupHandle,
    state: watch::Sender<State>,
}

impl Container {
    pub fn state(&self) -> State {
        self.state.borrow().clone()
    }

    pub fn info(&self) -> ContainerInfo {
        record::info(&self.record, &self.state.borrow())
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
    pub images: Arc<ImageStore>,
    pub network: Arc<Network>,
    pub cgroups: CgroupDriver,
    containers: Mutex<BTreeMap<String, Arc<Container>>>,
}

impl Manager {
    pub fn new(
        config: AgentConfig,
        images: Arc<ImageStore>,
        network: Arc<Network>,
        cgroups: CgroupDriver,
    ) -> Arc<Self> {
        Arc::new(Self {
            config,
            images,
            network,
            cgroups,
            containers: Mutex::new(BTreeMap::new()),
        })
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
        signal_container(&c, signal).await
    }

    /// Stops a container: its stop signal, `timeout` to exit, then SIGKILL. Stopping a container
    /// that is not running is not an error.
    pub async fn stop(&self, key: &str, timeout: Duration) -> Result<ContainerInfo, AgentError> {
        let c = self.get(key)?;
        if c.state().is_running() {
            let _ = signal_container(&c, c.record.stop_signal).await;
            if tokio::time::timeout(timeout, c.wait_exit()).await.is_err() {
                signal_container(&c, libc::SIGKILL).await?;
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

    /// Removes a container and everything it had: network, cgroup, files. A running container is
    /// refused unless `force`, which kills it first.
    pub async fn remove(&self, key: &str, force: bool) -> Result<(), AgentError> {
        let c = self.get(key)?;
        if c.state().is_running() {
            if !force {
                return Err(AgentError::Conflict(format!(
                    "container {} is running: stop it first, or remove with force (-f)",
                    c.record.name
                )));
            }
            signal_container(&c, libc::SIGKILL).await?;
            c.wait_exit().await;
        }
        self.index().remove(&c.record.id);
        self.release(&c.record.id, &c.dir, &c.cgroup).await
    }

    /// Frees what a container held. Used by remove, by failed creates, and for leftovers at start-up.
    async fn release(
        &self,
        id: &str,
        dir: &ContainerDir,
        cgroup: &CgroupHandle,
    ) -> Result<(), AgentError> {
        let mut first_err = None;
        let t = std::time::Instant::now();
        if let Err(e) = self.network.detach(id).await {
            first_err.get_or_insert(AgentError::internal("release network", e));
        }
        let network_us = t.elapsed().as_micros();
        // The record's directory first: a crash in between leaves only volatile files, which the
        // next `restore` sweeps, never a record that would come back as an exited container.
        let (cgroup, paths) = (cgroup.clone(), [dir.path().to_path_buf(), dir.run()]);
        let res = tokio::task::spawn_blocking(move || -> Result<(), AgentError> {
            cgroup
                .remove()
                .map_err(|e| AgentError::internal("remove cgroup", e))?;
            for path in paths {
                match std::fs::remove_dir_all(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(AgentError::internal(
                            &format!("remove {}", path.display()),
                            e,
                        ))
                    }
                }
            }
            Ok(())
        })
        .await
        .map_err(|e| AgentError::internal("remove", e))?;
        if let Err(e) = res {
            first_err.get_or_insert(e);
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
        Ok(stats_of(&c))
    }

    pub fn stats_all(&self) -> Vec<ContainerStats> {
        self.index()
            .values()
            .filter(|c| c.state().is_running())
            .map(|c| stats_of(c))
            .collect()
    }

    /// Re-attaches to the containers in the data dir after a (re)start, and cleans up what a crash
    /// left half-made.
    pub async fn restore(self: &Arc<Self>) -> Result<usize, AgentError> {
        let root = self.config.containers_dir();
        std::fs::create_dir_all(&root)
            .map_err(|e| AgentError::internal(&format!("create {}", root.display()), e))?;
        if let Err(e) = spread::spread_subdirectories(&root) {
            tracing::warn!(dir = %root.display(), "could not ask the filesystem to spread container directories: {e}");
        }
        let entries = std::fs::read_dir(&root)
            .map_err(|e| AgentError::internal(&format!("read {}", root.display()), e))?;
        let mut restored = 0;
        for entry in entries.flatten() {
            let dir = ContainerDir(entry.path());
            let id = entry.file_name().to_string_lossy().into_owned();
            let record: Option<ContainerRecord> = read_json(&dir.record()).ok().flatten();
            let spec: Option<RuntimeSpec> = read_json(&dir.spec()).ok().flatten();
            let started: Option<Started> = read_json(&dir.started()).ok().flatten();
            let exit = read_json::<ExitInfo>(&dir.exit()).ok().flatten();
            let (record, cgroup, state) = match (record, spec, started) {
                (Some(record), Some(spec), Some(started)) => {
                    let state = match exit {
                        Some(exit) => State::Exited {
                            started_at: Some(started.started_at.clone()),
                            exit,
                        },
                        None => State::Running {
                            pid: started.pid,
                            started_at: started.started_at.clone(),
                        },
                    };
                    (record, spec.cgroup, state)
                }
                // The volatile half went with the tmpfs: the host restarted, and the container
                // ended with it. It is kept, exited, as Docker keeps it (255 when nothing was
                // recorded: the end was not seen).
                (Some(record), _, _) if !dir.run().exists() => {
                    let exit = exit.unwrap_or_else(|| ExitInfo {
                        code: 255,
                        signal: None,
                        oom_killed: false,
                        finished_at: now_rfc3339(),
                    });
                    let state = State::Exited {
                        started_at: None,
                        exit,
                    };
                    (record, self.cgroups.handle_for(&id), state)
                }
                _ => {
                    tracing::warn!(%id, "removing a container whose creation never finished");
                    let _ = self.release(&id, &dir, &self.cgroups.handle_for(&id)).await;
                    continue;
                }
            };
            let running = state.is_running();
            let c = Arc::new(Container {
                record,
                dir,
                cgroup,
                state: watch::channel(state).0,
            });
            self.insert(c.clone());
            if running {
                let remove = c.record.spec.auto_remove;
                self.monitor(c, remove);
            }
            restored += 1;
        }
        let live: Vec<String> = self.index().keys().cloned().collect();
        self.sweep_volatile(&live);
        self.network
            .retain(&live)
            .await
            .map_err(|e| AgentError::internal("clean up network", e))?;
        Ok(restored)
    }

    /// Removes volatile halves (`DATA/run/ID`) whose container is gone: left by a crash in the
    /// middle of a removal. Only container-id names are touched (`DATA/run/netns` is the network's).
    fn sweep_volatile(&self, live: &[String]) {
        let run = self.config.run_dir();
        for entry in std::fs::read_dir(&run).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let is_id = name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit());
            if is_id && !live.contains(&name) {
                tracing::warn!(id = %name, "removing the volatile files of a container that is gone");
                if let Err(e) = std::fs::remove_dir_all(entry.path()) {
                    tracing::warn!(id = %name, "could not remove {}: {e}", entry.path().display());
                }
            }
        }
    }

    /// Follows a running container until it exits: records the exit, and removes the container
    /// if `remove_on_exit` (`--rm` without an attached client, which removes it itself).
    fn monitor(self: &Arc<Self>, c: Arc<Container>, remove_on_exit: bool) {
        let mgr = self.clone();
        tokio::spawn(async move {
            let exit = match shim_client::wait(&c.dir).await {
                Ok(exit) => exit,
                Err(_) => supervisor_lost(&c).await,
            };
            let started_at = match c.state() {
                State::Running { started_at, .. } => Some(started_at),
                _ => None,
            };
            tracing::info!(id = %c.record.id, name = %c.record.name, code = exit.code, oom = exit.oom_killed, "container exited");
            c.state.send_replace(State::Exited { started_at, exit });
            if remove_on_exit {
                if let Err(e) = mgr.remove(&c.record.id, false).await {
                    tracing::warn!(id = %c.record.id, "auto-remove: {e}");
                }
            }
        });
    }
}

/// The supervisor is gone without a word (killed): recover the exit from its file, or end the
/// orphaned container through its cgroup and record that.
async fn supervisor_lost(c: &Container) -> ExitInfo {
    for _ in 0..20 {
        if let Ok(Some(exit)) = read_json::<ExitInfo>(&c.dir.exit()) {
            return exit;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tracing::warn!(id = %c.record.id, "supervisor is gone; killing the container's processes");
    let cgroup = c.cgroup.clone();
    let _ = tokio::task::spawn_blocking(move || {
        for _ in 0..100 {
            if cgroup.pids().is_empty() {
                break;
            }
            cgroup.signal_all(nix::sys::signal::Signal::SIGKILL);
            std::thread::sleep(Duration::from_millis(20));
        }
    })
    .await;
    let exit = ExitInfo {
        code: 137,
        signal: Some(libc::SIGKILL),
        oom_killed: c.cgroup.oom_killed(),
        finished_at: now_rfc3339(),
    };
    let _ = write_json_atomic(&c.dir.exit(), &exit);
    exit
}

async fn signal_container(c: &Container, signal: i32) -> Result<(), AgentError> {
    match shim_client::kill(&c.dir, signal).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::Other => {
            Err(AgentError::Conflict(format!("kill {}: {e}", c.record.name)))
        }
        Err(_) => {
            // No supervisor to ask: signal every process of the container directly.
            if let Ok(sig) = nix::sys::signal::Signal::try_from(signal) {
                c.cgroup.signal_all(sig);
            }
            Ok(())
        }
    }
}

fn stats_of(c: &Container) -> ContainerStats {
    let s = c.cgroup.stats();
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
