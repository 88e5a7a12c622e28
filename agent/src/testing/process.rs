//! Fakes of what lives outside the kernel but outside the agent too: the image store
//! ([`FakeImages`]) and the per-container supervisor process ([`FakeSupervisor`]).
//!
//! The fake supervisor does what the manager relies on from the real one: it refuses a directory
//! without `spec.json`, writes `started.json` before answering, writes `exit.json` when the
//! container ends, and is gone (cannot be reached) once it has ended. A container ends when a
//! test says so ([`FakeHost::exit_container`]) or on any signal it is sent.

use super::FakeHost;
use crate::containers::{Supervisor, SupervisorError};
use crate::image::{ImageError, Images, ResolvedImage};
use crate::runtime::{read_json, write_json_atomic, ContainerDir, RuntimeSpec, Started};
use futures::future::BoxFuture;
use hoist_proto::ExitInfo;
use sha2::Digest;
use std::io;
use std::sync::Arc;

/// The images added to the host ([`FakeHost::add_image`]): op `image resolve`.
#[derive(Debug)]
pub struct FakeImages {
    host: Arc<FakeHost>,
}

impl FakeImages {
    pub fn new(host: Arc<FakeHost>) -> Self {
        FakeImages { host }
    }
}

impl Images for FakeImages {
    fn resolve(&self, reference: &str) -> Result<ResolvedImage, ImageError> {
        self.host
            .call("image resolve", reference)
            .map_err(ImageError::Corrupt)?;
        let (config, layer) = self
            .host
            .image(reference)
            .ok_or_else(|| ImageError::NotFound(reference.to_string()))?;
        Ok(ResolvedImage {
            id: format!("sha256:{}", hex::encode(sha2::Sha256::digest(reference))),
            reference: reference.to_string(),
            config,
            layers: vec![layer],
        })
    }
}

/// Supervisors as records in the host: ops `supervisor start`, `supervisor kill`.
#[derive(Debug)]
pub struct FakeSupervisor {
    host: Arc<FakeHost>,
}

impl FakeSupervisor {
    pub fn new(host: Arc<FakeHost>) -> Self {
        FakeSupervisor { host }
    }
}

fn id_of(dir: &ContainerDir) -> String {
    dir.path()
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// What a client sees when no supervisor listens on the socket.
fn gone() -> SupervisorError {
    SupervisorError::Io {
        context: "ask the supervisor",
        source: io::Error::from(io::ErrorKind::ConnectionRefused),
    }
}

impl Supervisor for FakeSupervisor {
    fn start<'a>(
        &'a self,
        dir: &'a ContainerDir,
    ) -> BoxFuture<'a, Result<Started, SupervisorError>> {
        Box::pin(async move {
            let id = id_of(dir);
            self.host.call("supervisor start", &id).map_err(|message| {
                SupervisorError::StartFailed {
                    message,
                    exit_code: 127,
                }
            })?;
            let spec: Option<RuntimeSpec> =
                read_json(&dir.spec()).map_err(|source| SupervisorError::Io {
                    context: "read spec",
                    source,
                })?;
            spec.ok_or_else(|| SupervisorError::StartFailed {
                message: format!("{}: missing", dir.spec().display()),
                exit_code: 125,
            })?;
            let pid = self.host.world(|w| {
                w.supervisors.insert(
                    id.clone(),
                    super::Supervised {
                        dir: dir.path().to_path_buf(),
                        exit: None,
                    },
                );
                100_000 + w.supervisors.len() as i32
            });
            let started = Started {
                shim_pid: pid - 1,
                pid,
                started_at: crate::runtime::now_rfc3339(),
            };
            write_json_atomic(&dir.started(), &started).map_err(|source| SupervisorError::Io {
                context: "record start",
                source,
            })?;
            Ok(started)
        })
    }

    fn kill<'a>(
        &'a self,
        dir: &'a ContainerDir,
        signal: i32,
    ) -> BoxFuture<'a, Result<(), SupervisorError>> {
        Box::pin(async move {
            let id = id_of(dir);
            self.host
                .call("supervisor kill", format!("{id} {signal}"))
                .map_err(|_| gone())?;
            if signal == 0 {
                return Ok(());
            }
            match self.host.end(&id, 128 + signal, Some(signal)) {
                true => Ok(()),
                false => Err(gone()),
            }
        })
    }

    fn wait<'a>(
        &'a self,
        dir: &'a ContainerDir,
    ) -> BoxFuture<'a, Result<ExitInfo, SupervisorError>> {
        Box::pin(async move {
            let id = id_of(dir);
            let mut exits = self.host.exits.subscribe();
            let mut first = true;
            loop {
                let seen = self.host.world(|w| w.supervisors.get(&id).cloned());
                match seen {
                    Some(s) if s.exit.is_none() => {}
                    // It had ended before we asked: the supervisor has left.
                    Some(_) if first => return Err(gone()),
                    Some(s) => return s.exit.ok_or_else(gone),
                    None => return Err(gone()),
                }
                first = false;
                if exits.changed().await.is_err() {
                    return Err(gone());
                }
            }
        })
    }
}
