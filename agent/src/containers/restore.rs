//! `restore`: after an agent (re)start, re-read every container directory, re-attach to the
//! containers whose supervisors still run, and clean up what a crash left half-made.
//!
//! The rules, by what a container's directories hold:
//! - record, spec and start record: the container was started; it runs, or has exited if its
//!   exit is recorded. Its supervisor is asked to `wait` again.
//! - a record without the volatile half (`DATA/run/ID`): the host restarted, the tmpfs went
//!   and the container ended with it. Kept as exited, with 255 if its end was not seen.
//! - anything else (no record, or a volatile half without a start record): a create that never
//!   finished. Everything it may have made is released: network, cgroup, directories.
//! - a container started with `--rm` that is found ended, either way above, is removed: the
//!   agent would have removed it at its end.
//!
//! Then volatile halves without a container are swept, so are anonymous volumes no record names
//! (unless some record did not read: then no volume is removed on a guess), and the network drops
//! attachments, netns files and port rules of containers that are gone. The trash
//! (`DATA/trash`: directories of removals that answered before their files were deleted) is
//! emptied in the background.

use super::record::{ContainerRecord, State, RECORD_VERSION};
use super::{spread, Container, Manager};
use crate::error::AgentError;
use crate::runtime::{now_rfc3339, read_json, ContainerDir, RuntimeSpec, Started};
use hoist_proto::ExitInfo;
use std::sync::Arc;
use tokio::sync::watch;

impl Manager {
    /// Re-attaches to the containers in the data dir after a (re)start, and cleans up what a crash
    /// left half-made.
    pub async fn restore(self: &Arc<Self>) -> Result<usize, AgentError> {
        let root = self.config.containers_dir();
        for dir in [&root, &self.config.trash_dir()] {
            std::fs::create_dir_all(dir)
                .map_err(|e| AgentError::internal(format!("create {}", dir.display()), e))?;
        }
        if let Err(e) = spread::spread_subdirectories(&root) {
            tracing::warn!(dir = %root.display(), "could not ask the filesystem to spread container directories: {e}");
        }
        let entries = std::fs::read_dir(&root)
            .map_err(|e| AgentError::internal(format!("read {}", root.display()), e))?;
        let mut restored = 0;
        // Containers whose record does not read (corrupt, or of a newer agent): left exactly as
        // they are, network included, for the operator to look at. Never removed on a guess.
        let mut untouched = Vec::new();
        // Started with `--rm` and ended without the agent there to remove them: removed below,
        // as they would have been (and as Docker does at its start).
        let mut ended_while_away = Vec::new();
        for entry in entries.flatten() {
            let dir = ContainerDir(entry.path());
            let id = entry.file_name().to_string_lossy().into_owned();
            let record: Option<ContainerRecord> = match read_json(&dir.record()) {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(%id, "cannot read the container's record ({e}): leaving the container as it is");
                    untouched.push(id);
                    continue;
                }
            };
            if let Some(r) = record.as_ref().filter(|r| r.version > RECORD_VERSION) {
                tracing::error!(%id, version = r.version, "the container's record is of a newer agent: leaving the container as it is");
                untouched.push(id);
                continue;
            }
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
                    (record, self.deps.cgroups.handle_for(&id), state)
                }
                _ => {
                    tracing::warn!(%id, "removing a container whose creation never finished");
                    let cgroup = self.deps.cgroups.handle_for(&id);
                    // Its volumes, if it had come that far, are swept below with the others no
                    // record names.
                    let _ = self.release(&id, &dir, &cgroup, &[]).await;
                    continue;
                }
            };
            let running = state.is_running();
            // What secrets and configs a running container has; an exited one's go.
            let files = if running {
                super::files::load(&dir)
            } else {
                super::files::discard(&dir);
                None
            };
            let c = Arc::new(Container {
                record,
                dir,
                cgroup,
                state: watch::channel(state).0,
                files: std::sync::Mutex::new(files),
                files_lock: Default::default(),
            });
            self.insert(c.clone());
            let remove = c.record.spec.auto_remove;
            if running {
                self.monitor(c, remove);
            } else if remove {
                ended_while_away.push(id);
                continue;
            }
            restored += 1;
        }
        for id in ended_while_away {
            tracing::info!(%id, "removing a container started with --rm that ended while the agent was away");
            if let Err(e) = self.remove(&id, false).await {
                tracing::warn!(%id, "auto-remove: {e}");
            }
        }
        self.sweep_volumes(&untouched);
        super::named_volumes::sweep_tmp(&self.named_volumes_root());
        let mut live: Vec<String> = self.index().keys().cloned().collect();
        live.extend(untouched);
        self.sweep_volatile(&live);
        // Directories of removals that had answered when the agent stopped.
        let trash: Vec<_> = std::fs::read_dir(self.config.trash_dir())
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .collect();
        super::empty_trash(trash);
        self.deps
            .network
            .retain(&live)
            .await
            .map_err(|e| AgentError::internal("clean up network", e))?;
        Ok(restored)
    }

    /// Removes the anonymous volumes no container's record names: made by a create that never
    /// finished, or left by a removal cut short. Not when a record did not read (`untouched`):
    /// its volumes are unknown, and nothing is removed on a guess.
    fn sweep_volumes(&self, untouched: &[String]) {
        let root = self.config.volumes_dir();
        if !root.exists() {
            return;
        }
        if !untouched.is_empty() {
            tracing::warn!(containers = ?untouched, "some records do not read: keeping every volume");
            return;
        }
        let keep: std::collections::BTreeSet<String> = self
            .index()
            .values()
            .flat_map(|c| c.record.anonymous_volumes.iter().map(|v| v.id.clone()))
            .collect();
        for id in super::volumes::sweep(&root, &keep) {
            tracing::warn!(volume = %id, "removed a volume that no container has");
        }
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
}
