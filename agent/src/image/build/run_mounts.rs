//! `RUN --mount`s on the host: what each mount binds into the step's container, and the
//! cleanup that keeps them out of the step's layer.
//!
//! - `cache`: a directory under `build/cache-mounts/`, named by a hash of its id, kept between
//!   builds (created with the mount's mode and owner the first time).
//! - `bind`: a path of the build context, or of a stage or image whose layers are mounted
//!   read-only (an overlay in the agent's mount namespace, unmounted after the step).
//! - `tmpfs`: a tmpfs mounted for the step (with its `size`), then unmounted.
//! - `secret`: the secret's bytes written to a tmpfs of their own (never to disk), bound
//!   read-only; not part of the cache key, as in BuildKit.
//!
//! A mount's target that did not exist in the image is created by the runtime to mount on; the
//! layer writer leaves it out, with the parents made for it (`layer::write_diff_without`), so a
//! mount leaves no trace in the layer.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use hoist_proto::VolumeMount;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use sha2::{Digest as _, Sha256};

use super::dockerfile::{Dockerfile, Instruction};
use super::run_mount::{MountKind, RunMount};
use super::{line_err, Builder, StepResult};
use crate::error::AgentError;
use crate::runtime::mounts;

/// The host side of a step's mounts: binds for the container, host mounts to undo.
#[derive(Debug, Default)]
pub(super) struct Prepared {
    pub volumes: Vec<VolumeMount>,
    /// Mounts made on the host for this step (overlays, tmpfs), to unmount after it.
    pub host_mounts: Vec<PathBuf>,
}

impl Prepared {
    /// Unmounts what was mounted for the step (lazily: a straggling process cannot block it).
    pub fn release(&mut self) {
        for m in self.host_mounts.drain(..).rev() {
            if let Err(e) = umount2(&m, MntFlags::MNT_DETACH) {
                tracing::warn!(path = %m.display(), error = %e, "unmount build mount");
            }
            let _ = std::fs::remove_dir_all(&m);
        }
    }
}

impl Drop for Prepared {
    fn drop(&mut self) {
        self.release();
    }
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> AgentError {
    let what = what.into();
    move |e| AgentError::internal(what, e)
}

/// The directory of cache mount `id`.
pub(super) fn cache_dir(root: &Path, id: &str) -> PathBuf {
    root.join(&hex::encode(Sha256::digest(id.as_bytes()))[..32])
}

/// The mount's `uid`, `gid` (default root) and `mode` (default `default_mode`) on `path`.
fn set_owner_and_mode(path: &Path, m: &RunMount, default_mode: u32) -> StepResult<()> {
    std::fs::set_permissions(
        path,
        std::fs::Permissions::from_mode(m.mode.unwrap_or(default_mode)),
    )
    .map_err(io(format!("chmod {}", path.display())))?;
    nix::unistd::chown(
        path,
        Some(nix::unistd::Uid::from_raw(m.uid.unwrap_or(0))),
        Some(nix::unistd::Gid::from_raw(m.gid.unwrap_or(0))),
    )
    .map_err(|e| AgentError::internal(format!("chown {}", path.display()), e))
}

fn mount_tmpfs(at: &Path, size: Option<u64>, mode: u32) -> StepResult<()> {
    std::fs::create_dir_all(at).map_err(io("create tmpfs mountpoint"))?;
    let mut data = format!("mode={mode:o}");
    if let Some(s) = size {
        data.push_str(&format!(",size={s}"));
    }
    mount(
        Some("tmpfs"),
        at,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(data.as_str()),
    )
    .map_err(|e| AgentError::internal(format!("mount tmpfs on {}", at.display()), e))
}

impl Builder {
    /// Prepares the mounts of a RUN step on the host.
    pub(super) async fn prepare_mounts(
        &mut self,
        df: &Dockerfile,
        stage: usize,
        inst: &Instruction,
        specs: &[RunMount],
    ) -> StepResult<Prepared> {
        let mut p = Prepared::default();
        for (n, m) in specs.iter().enumerate() {
            let bind = |host: PathBuf, ro: bool| VolumeMount {
                host_path: host.display().to_string(),
                container_path: m.target.clone(),
                read_only: ro,
            };
            match m.kind {
                MountKind::Cache => {
                    let dir = cache_dir(&self.cache_mounts, &m.id);
                    if !dir.exists() {
                        let tmp = dir.with_extension("new");
                        let _ = std::fs::remove_dir_all(&tmp);
                        std::fs::create_dir_all(&tmp).map_err(io("create cache mount"))?;
                        set_owner_and_mode(&tmp, m, 0o755)?;
                        std::fs::rename(&tmp, &dir).map_err(io("create cache mount"))?;
                    }
                    p.volumes.push(bind(dir, m.read_only));
                }
                MountKind::Bind => {
                    let host = match &m.from {
                        None => {
                            let rel = if m.source.is_empty() { "." } else { &m.source };
                            self.context.join(rel)
                        }
                        Some(from) => {
                            let state = self.state_named(df, stage, inst, from).await?;
                            let lowers = self.readonly_lowers(&state)?;
                            let at = self.scratch_dir()?.join(format!("mount-{}-{n}", inst.line));
                            std::fs::create_dir_all(&at).map_err(io("create bind mountpoint"))?;
                            mounts::mount_overlay_ro(&lowers, &at)
                                .map_err(|e| line_err(inst, format!("--mount from={from}: {e}")))?;
                            p.host_mounts.push(at.clone());
                            let root: std::os::fd::OwnedFd = std::fs::File::open(&at)
                                .map_err(io("open bind source"))?
                                .into();
                            let fd = mounts::lookup_in_root(&root, &m.source).map_err(|e| {
                                line_err(inst, format!("--mount source={}: {e}", m.source))
                            })?;
                            std::fs::read_link(mounts::fd_path(&fd))
                                .map_err(io("resolve bind source"))?
                        }
                    };
                    if !host.exists() {
                        return Err(line_err(
                            inst,
                            format!("--mount source={}: not found", m.source),
                        ));
                    }
                    if m.read_only {
                        p.volumes.push(bind(host, true));
                    } else {
                        // `rw`: the step writes into a layer of its own, dropped after it.
                        let at = self.scratch_dir()?.join(format!("rw-{}-{n}", inst.line));
                        let (upper, work, merged) =
                            (at.join("upper"), at.join("work"), at.join("mnt"));
                        for d in [&upper, &work, &merged] {
                            std::fs::create_dir_all(d).map_err(io("create rw bind dirs"))?;
                        }
                        if host.is_dir() {
                            // Writes to an `rw` bind are discarded after the step: volatile.
                            mounts::mount_overlay(&[&host], &upper, &work, &merged, true).map_err(
                                |e| line_err(inst, format!("--mount source={},rw: {e}", m.source)),
                            )?;
                            p.host_mounts.push(merged.clone());
                            p.volumes.push(bind(merged, false));
                        } else {
                            let copy = upper.join("file");
                            std::fs::copy(&host, &copy).map_err(io("copy rw bind source"))?;
                            p.volumes.push(bind(copy, false));
                        }
                    }
                }
                MountKind::Tmpfs => {
                    let at = self.scratch_dir()?.join(format!("tmpfs-{}-{n}", inst.line));
                    mount_tmpfs(&at, m.size, m.mode.unwrap_or(0o1777))?;
                    p.host_mounts.push(at.clone());
                    p.volumes.push(bind(at, false));
                }
                MountKind::Secret => {
                    let Some(data) = self.req.secrets.get(&m.id) else {
                        if m.required {
                            return Err(line_err(
                                inst,
                                format!(
                                    "secret {:?} is required: give it with hoist build --secret id={},src=FILE",
                                    m.id, m.id
                                ),
                            ));
                        }
                        continue;
                    };
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(data)
                        .map_err(|e| {
                            AgentError::Invalid(format!("secret {:?}: not base64: {e}", m.id))
                        })?;
                    let at = self
                        .scratch_dir()?
                        .join(format!("secret-{}-{n}", inst.line));
                    mount_tmpfs(&at, Some(bytes.len() as u64 + 4096), 0o700)?;
                    p.host_mounts.push(at.clone());
                    let file = at.join("secret");
                    std::fs::write(&file, &bytes).map_err(io("write secret"))?;
                    set_owner_and_mode(&file, m, 0o400)?;
                    p.volumes.push(bind(file, true));
                }
            }
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_dirs_are_named_by_id() {
        let a = cache_dir(Path::new("/c"), "go");
        assert_eq!(a, cache_dir(Path::new("/c"), "go"));
        assert_ne!(a, cache_dir(Path::new("/c"), "/root/.cache"));
    }
}
