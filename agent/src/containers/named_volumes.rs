//! Named volumes: data of this node that outlives its containers (Docker's `-v NAME:PATH`, a
//! service's `[[mounts]] type = "volume"`).
//!
//! A volume is `DATA/named-volumes/NAME/_data`, apart from the anonymous volumes
//! (`DATA/volumes/ID`, [`super::volumes`]), so the sweep of anonymous volumes at start never sees
//! one. It is made the first time a container mounts it, filled with the content and ownership of
//! the image's directory at the container's target (as Docker does, `runtime::image_copy`, no
//! symlink followed), and from then on mounted as it is: removing the container keeps it, so a
//! task restarted or updated on this node finds its data again. Only `hoist volume rm` removes
//! one, and not while any container (running or not) names it.
//!
//! Crash safety: a volume is built under `.tmp-NAME-RANDOM` and renamed into place once filled,
//! so a volume either exists whole or not at all; leftovers of a create cut short are removed at
//! start ([`sweep_tmp`]). Creation and removal hold the manager's volume lock, so two containers
//! starting with a new volume fill it once, and a removal never races a create.

use super::Manager;
use crate::error::AgentError;
use crate::runtime::userns::IdRange;
use hoist_proto::node::NodeVolume;
use hoist_proto::{NamedVolumeMount, VolumeInfo};
use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};

/// The directory below a volume's own that is mounted (Docker's layout).
const DATA: &str = "_data";
const TMP_PREFIX: &str = ".tmp-";

/// `DATA/named-volumes`.
pub fn root(data_dir: &Path) -> PathBuf {
    data_dir.join("named-volumes")
}

/// The host path of volume `name`'s content (what is mounted).
pub fn data_path(root: &Path, name: &str) -> PathBuf {
    root.join(name).join(DATA)
}

/// Makes each volume of `mounts` that does not exist yet, filled from the image (`layers` lowest
/// first; `mountpoint` an empty directory for the image's overlay), and answers the directory to
/// mount for each mount, in order. A volume mounted twice is filled from its first target. A
/// volume made for a user-namespaced container (`range`) is its root's, its content's owners
/// shifted into the range. Blocking; call with the manager's volume lock held.
pub fn ensure(
    root: &Path,
    mounts: &[NamedVolumeMount],
    layers: &[PathBuf],
    mountpoint: &Path,
    range: Option<IdRange>,
) -> io::Result<Vec<PathBuf>> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if mounts.is_empty() {
        return Ok(Vec::new());
    }
    std::fs::create_dir_all(root)?;
    // Only the agent walks in here; containers see their volume through the mount.
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o700))?;
    let mut fresh: Vec<(String, PathBuf)> = Vec::new(); // (name, tmp dir)
    let mut copies: Vec<(String, PathBuf)> = Vec::new(); // (image path, tmp data dir)
    let mut seen = BTreeSet::new();
    for m in mounts {
        hoist_proto::rules::check_volume_name(&m.name)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        if !seen.insert(m.name.clone()) || root.join(&m.name).exists() {
            continue;
        }
        let tmp = root.join(format!(
            "{TMP_PREFIX}{}-{}",
            m.name,
            &hoist_common::ids::new_id()[..12]
        ));
        std::fs::DirBuilder::new().mode(0o711).create(&tmp)?;
        fresh.push((m.name.clone(), tmp.clone()));
        let data = tmp.join(DATA);
        std::fs::DirBuilder::new().mode(0o755).create(&data)?;
        if let Some(r) = range {
            std::os::unix::fs::chown(&data, Some(r.first), Some(r.first))?;
        }
        copies.push((m.target.clone(), data));
    }
    let filled = crate::runtime::image_copy::copy_image_paths(layers, mountpoint, &copies, range);
    if let Err(e) = filled {
        for (_, tmp) in &fresh {
            let _ = std::fs::remove_dir_all(tmp);
        }
        return Err(e);
    }
    for (name, tmp) in fresh {
        std::fs::rename(&tmp, root.join(&name))?;
        tracing::info!(volume = %name, "named volume created");
    }
    Ok(mounts.iter().map(|m| data_path(root, &m.name)).collect())
}

/// The names of the volumes under `root`, sorted.
pub fn names(root: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| hoist_proto::rules::check_volume_name(n).is_ok())
        .collect();
    v.sort();
    v
}

/// When volume `name` was made: its directory's birth, else last change.
fn created_time(root: &Path, name: &str) -> Option<std::time::SystemTime> {
    let meta = std::fs::metadata(root.join(name)).ok()?;
    meta.created().or_else(|_| meta.modified()).ok()
}

/// When volume `name` was made, RFC 3339.
fn created_at(root: &Path, name: &str) -> Option<String> {
    let t = created_time(root, name)?;
    Some(humantime::format_rfc3339_seconds(t).to_string())
}

pub use crate::runtime::disk_usage::disk_usage;

/// Removes what a create cut short left (`.tmp-*`).
pub fn sweep_tmp(root: &Path) {
    for entry in std::fs::read_dir(root).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(TMP_PREFIX) {
            tracing::warn!(dir = %name, "removing a named volume whose creation was cut short");
            if let Err(e) = std::fs::remove_dir_all(entry.path()) {
                tracing::warn!(dir = %name, "could not remove it: {e}");
            }
        }
    }
}

impl Manager {
    /// `DATA/named-volumes`.
    pub fn named_volumes_root(&self) -> PathBuf {
        root(&self.config.data_dir)
    }

    /// The names of the containers whose spec mounts volume `name`.
    fn volume_users(&self, name: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .index()
            .values()
            .filter(|c| c.record.spec.named_volumes.iter().any(|m| m.name == name))
            .map(|c| c.record.name.clone())
            .collect();
        v.sort();
        v
    }

    fn volume_info(&self, name: &str, size: bool) -> VolumeInfo {
        let root = self.named_volumes_root();
        let data = data_path(&root, name);
        VolumeInfo {
            name: name.to_string(),
            created_at: created_at(&root, name),
            mountpoint: data.display().to_string(),
            size_bytes: size.then(|| disk_usage(&data)),
            used_by: self.volume_users(name),
        }
    }

    /// `GET /v1/volumes`: every named volume of this node (sizes left out: they take a walk).
    pub fn volumes(&self) -> Vec<VolumeInfo> {
        names(&self.named_volumes_root())
            .iter()
            .map(|n| self.volume_info(n, false))
            .collect()
    }

    /// Every named volume with its users and creation time, for the worker's reports to the
    /// leader. Sizes are left out: this is a directory read and the in-memory index, cheap
    /// enough to compare every few seconds; [`Manager::volume_size`] walks a volume.
    pub fn node_volumes(&self) -> Vec<NodeVolume> {
        let root = self.named_volumes_root();
        names(&root)
            .into_iter()
            .map(|name| NodeVolume {
                created_ms: created_time(&root, &name)
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map(|d| d.as_millis() as u64),
                used_by: self.volume_users(&name),
                size_bytes: None,
                name,
            })
            .collect()
    }

    /// Bytes volume `name` takes on disk (0 when it is gone). Blocking (walks the volume).
    pub fn volume_size(&self, name: &str) -> u64 {
        disk_usage(&data_path(&self.named_volumes_root(), name))
    }

    /// `GET /v1/volumes/NAME`, with its size on disk. Blocking (walks the volume).
    pub fn volume(&self, name: &str) -> Result<VolumeInfo, AgentError> {
        hoist_proto::rules::check_volume_name(name).map_err(AgentError::Invalid)?;
        if !self.named_volumes_root().join(name).is_dir() {
            return Err(AgentError::NotFound(format!("no such volume: {name}")));
        }
        Ok(self.volume_info(name, true))
    }

    /// `DELETE /v1/volumes/NAME`: refused while a container names it. Blocking.
    pub fn remove_volume(&self, name: &str) -> Result<(), AgentError> {
        hoist_proto::rules::check_volume_name(name).map_err(AgentError::Invalid)?;
        let _lock = self.volume_lock();
        let dir = self.named_volumes_root().join(name);
        if !dir.is_dir() {
            return Err(AgentError::NotFound(format!("no such volume: {name}")));
        }
        let users = self.volume_users(name);
        if !users.is_empty() {
            return Err(AgentError::Conflict(format!(
                "volume {name} is in use by container(s) {}: remove them first",
                users.join(", ")
            )));
        }
        std::fs::remove_dir_all(&dir)
            .map_err(|e| AgentError::internal(format!("remove volume {name}"), e))?;
        tracing::info!(volume = %name, "named volume removed");
        Ok(())
    }

    /// Held while named volumes are made or removed.
    pub(super) fn volume_lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.volume_lock.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(name: &str, target: &str) -> NamedVolumeMount {
        NamedVolumeMount {
            name: name.into(),
            target: target.into(),
            read_only: false,
        }
    }

    #[test]
    fn a_volume_is_filled_once_from_the_image_and_then_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let layer = tmp.path().join("layer");
        std::fs::create_dir_all(layer.join("var/lib/db")).unwrap();
        std::fs::write(layer.join("var/lib/db/seed"), "seed").unwrap();
        let root = tmp.path().join("named-volumes");
        let mp = Path::new("/nonexistent");
        let layers = [layer.clone()];
        let made = ensure(&root, &[mount("db", "/var/lib/db")], &layers, mp, None).unwrap();
        assert_eq!(made, [data_path(&root, "db")]);
        assert_eq!(
            std::fs::read_to_string(made[0].join("seed")).unwrap(),
            "seed"
        );
        // Data written later stays; a second use copies nothing over it.
        std::fs::write(made[0].join("mine"), "x").unwrap();
        std::fs::remove_file(made[0].join("seed")).unwrap();
        let again = ensure(&root, &[mount("db", "/var/lib/db")], &layers, mp, None).unwrap();
        assert_eq!(again, made);
        assert!(made[0].join("mine").exists() && !made[0].join("seed").exists());
        // Two mounts of one new volume: filled from the first target, once.
        let two = ensure(
            &root,
            &[mount("pair", "/var/lib/db"), mount("pair", "/empty")],
            &layers,
            mp,
            None,
        )
        .unwrap();
        assert_eq!(two[0], two[1]);
        assert!(two[0].join("seed").exists());
        assert_eq!(names(&root), ["db", "pair"]);
        assert!(disk_usage(&made[0]) > 0);
        assert!(created_at(&root, "db").is_some());
        // A create cut short leaves only a .tmp- directory, which the start sweep removes.
        std::fs::create_dir_all(root.join(".tmp-x-123/_data")).unwrap();
        assert_eq!(names(&root), ["db", "pair"]);
        sweep_tmp(&root);
        assert!(!root.join(".tmp-x-123").exists() && root.join("db").exists());
        // A bad name is refused before anything is made.
        assert!(ensure(&root, &[mount("../x", "/a")], &layers, mp, None).is_err());
    }

    #[test]
    fn a_user_namespaced_containers_volume_is_its_roots() {
        use std::os::unix::fs::MetadataExt;
        let tmp = tempfile::tempdir().unwrap();
        let layer = tmp.path().join("layer");
        std::fs::create_dir_all(layer.join("srv")).unwrap();
        std::fs::write(layer.join("srv/page"), "p").unwrap();
        let root = tmp.path().join("named-volumes");
        let range = IdRange {
            first: 2_000_000,
            count: 65_536,
        };
        let made = ensure(
            &root,
            &[mount("site", "/srv"), mount("empty", "/not-in-image")],
            &[layer],
            Path::new("/x"),
            Some(range),
        )
        .unwrap();
        let owner = |p: &Path| {
            let m = std::fs::metadata(p).unwrap();
            (m.uid(), m.gid())
        };
        assert_eq!(owner(&made[0]), (2_000_000, 2_000_000));
        assert_eq!(owner(&made[0].join("page")), (2_000_000, 2_000_000));
        assert_eq!(
            owner(&made[1]),
            (2_000_000, 2_000_000),
            "a volume the image has nothing for is the container root's too"
        );
    }

    #[test]
    fn a_failed_fill_leaves_no_volume() {
        let tmp = tempfile::tempdir().unwrap();
        let layer = tmp.path().join("layer");
        std::fs::create_dir_all(&layer).unwrap();
        // The image has a file where the volume goes: it cannot be filled.
        std::fs::write(layer.join("data"), "not a dir").unwrap();
        let root = tmp.path().join("named-volumes");
        assert!(ensure(
            &root,
            &[mount("v", "/data")],
            &[layer],
            Path::new("/x"),
            None
        )
        .is_err());
        assert_eq!(std::fs::read_dir(&root).unwrap().count(), 0);
    }
}
