//! Anonymous volumes: what a container gets for each `VOLUME` of its image, as under Docker.
//!
//! Every image volume path that no requested bind mount (`-v HOST:PATH`) covers gets a fresh
//! volume, `DATA/volumes/<64-hex id>/_data`, which starts out as a copy of what the image holds at
//! that path (owners, modes, symlinks and all; `runtime::image_copy`, which resolves the path
//! inside the image and follows no symlink) and is bind-mounted there. The container's record
//! lists its volumes (`ContainerRecord::anonymous_volumes`), so they outlive agent restarts and
//! the container's exit, and `inspect` shows them among the mounts.
//!
//! A volume belongs to exactly one container and goes with it: removing the container removes its
//! anonymous volumes (Docker does this for `--rm` and `rm -v`; data meant to outlive a container
//! goes in a named volume, [`super::named_volumes`], kept apart under `DATA/named-volumes`).
//! An image volume path that any requested mount (bind, named volume, tmpfs) targets gets none. Crash safety: volumes are made before the record
//! is written and removed after the record's directory, so a crash leaves at most volumes that no
//! record names; the agent removes those at start (`Manager::restore`), unless some record could
//! not be read, in which case nothing is removed on a guess.
//!
//! Builds run their RUN steps without the image's volumes (`Manager::create_from`), as BuildKit
//! does: what a step writes below a `VOLUME` path stays in its layer.

use crate::runtime::{Bind, ContainerDir};
use hoist_proto::{CreateContainer, MountInfo, MountKind};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};

/// One anonymous volume of a container, as its record keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnonymousVolume {
    /// 64 hex digits: the directory's name under `DATA/volumes`.
    pub id: String,
    /// The path inside the container, cleaned.
    pub target: String,
}

/// The directory below a volume's own that is mounted (Docker's layout).
const DATA: &str = "_data";

/// `path` cleaned as Go's `filepath.Clean` does an absolute path (`//`, `.`, `..` and a trailing
/// `/` resolved lexically, `..` stopping at the root); `None` if it is not absolute.
pub fn clean(path: &str) -> Option<String> {
    if !path.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = Vec::new();
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    Some(format!("/{}", parts.join("/")))
}

/// Where the request mounts something: its binds, named volumes and tmpfs mounts.
pub fn requested_targets(req: &CreateContainer) -> Vec<&str> {
    req.volumes
        .iter()
        .map(|v| v.container_path.as_str())
        .chain(req.named_volumes.iter().map(|v| v.target.as_str()))
        .chain(req.tmpfs.iter().map(|t| t.target.as_str()))
        .collect()
}

/// The image volume paths that get an anonymous volume, cleaned, each once, in the image's order:
/// those no requested mount (bind, named volume, tmpfs; [`requested_targets`]) has as its target
/// (Docker's rule: only the exact path counts; a volume below a bind mount is mounted on top of
/// it). Pure.
pub fn anonymous_targets(
    image_volumes: &[String],
    requested: &[&str],
) -> Result<Vec<String>, String> {
    let bound: BTreeSet<String> = requested.iter().filter_map(|t| clean(t)).collect();
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for v in image_volumes {
        let Some(path) = clean(v) else {
            return Err(format!("the image's VOLUME {v:?} is not an absolute path"));
        };
        if path == "/" {
            return Err("the image's VOLUME / cannot be mounted: it is the root".into());
        }
        if !bound.contains(&path) && seen.insert(path.clone()) {
            out.push(path);
        }
    }
    Ok(out)
}

/// Whether `name` can be a volume's (or container's) id: 64 lowercase hex digits.
pub fn is_id(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The host path a volume's content lives in (and that is mounted).
pub fn data_path(root: &Path, id: &str) -> PathBuf {
    root.join(id).join(DATA)
}

/// `DATA/volumes` for the container directory `DATA/containers/ID`.
pub fn root_of(dir: &ContainerDir) -> PathBuf {
    match dir.path().parent().and_then(Path::parent) {
        Some(data) => data.join("volumes"),
        None => dir.path().join("volumes"),
    }
}

/// Mounts in the order they are made: parents before children (Docker sorts by depth), so a
/// volume below a bind mount lands on top of it. Stable: equal depths keep their order.
pub fn sort_binds(binds: &mut [Bind]) {
    binds.sort_by_key(|b| depth(&b.target));
}

fn depth(path: &str) -> usize {
    path.split('/').filter(|p| !p.is_empty()).count()
}

/// The mounts of a container as `inspect` shows them: its bind mounts, named volumes, tmpfs
/// mounts and anonymous volumes (under `root`, `DATA/volumes`), parents before children.
pub fn mounts(spec: &CreateContainer, volumes: &[AnonymousVolume], root: &Path) -> Vec<MountInfo> {
    let named_root = super::named_volumes::root(root.parent().unwrap_or(root));
    let mut v: Vec<MountInfo> = spec
        .volumes
        .iter()
        .map(|b| MountInfo {
            kind: MountKind::Bind,
            name: None,
            source: b.host_path.clone(),
            destination: clean(&b.container_path).unwrap_or_else(|| b.container_path.clone()),
            read_only: b.read_only,
        })
        .chain(spec.named_volumes.iter().map(|n| {
            MountInfo {
                kind: MountKind::Volume,
                name: Some(n.name.clone()),
                source: super::named_volumes::data_path(&named_root, &n.name)
                    .display()
                    .to_string(),
                destination: clean(&n.target).unwrap_or_else(|| n.target.clone()),
                read_only: n.read_only,
            }
        }))
        .chain(spec.tmpfs.iter().map(|t| MountInfo {
            kind: MountKind::Tmpfs,
            name: None,
            source: "tmpfs".into(),
            destination: clean(&t.target).unwrap_or_else(|| t.target.clone()),
            read_only: t.read_only,
        }))
        .chain(volumes.iter().map(|a| MountInfo {
            kind: MountKind::Volume,
            name: Some(a.id.clone()),
            source: data_path(root, &a.id).display().to_string(),
            destination: a.target.clone(),
            read_only: false,
        }))
        .collect();
    v.sort_by_key(|m| depth(&m.destination));
    v
}

/// Makes the container's volumes under `root` and fills each with the image's content at its
/// path (`layers` lowest first; `mountpoint` an empty directory to mount them on, privately).
/// For a user-namespaced container (`range`) each is its root's, owners shifted into the range.
/// Answers the directories to mount, in the order of `volumes`. Blocking. On failure, what was
/// made stays for the caller's release (or the next start's sweep) to remove.
pub fn create(
    root: &Path,
    volumes: &[AnonymousVolume],
    layers: &[PathBuf],
    mountpoint: &Path,
    range: Option<crate::runtime::userns::IdRange>,
) -> io::Result<Vec<PathBuf>> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if volumes.is_empty() {
        return Ok(Vec::new());
    }
    std::fs::create_dir_all(root)?;
    // Only the agent walks in here; containers see their volume through the mount.
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o700))?;
    let mut copies = Vec::new();
    for v in volumes {
        if !is_id(&v.id) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("bad volume id {:?}", v.id),
            ));
        }
        let data = data_path(root, &v.id);
        std::fs::DirBuilder::new()
            .mode(0o711)
            .create(root.join(&v.id))?;
        std::fs::DirBuilder::new().mode(0o755).create(&data)?;
        if let Some(r) = range {
            std::os::unix::fs::chown(&data, Some(r.first), Some(r.first))?;
        }
        copies.push((v.target.clone(), data));
    }
    crate::runtime::image_copy::copy_image_paths(layers, mountpoint, &copies, range)?;
    Ok(copies.into_iter().map(|(_, data)| data).collect())
}

/// Removes a volume (nothing if it is not there). Only ids are ever removed.
pub fn remove(root: &Path, id: &str) -> io::Result<()> {
    if !is_id(id) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("bad volume id {id:?}"),
        ));
    }
    match std::fs::remove_dir_all(root.join(id)) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Removes the volumes under `root` that are not in `keep`: left by a create that never finished
/// or a removal cut short. Answers the ids removed.
pub fn sweep(root: &Path, keep: &BTreeSet<String>) -> Vec<String> {
    let mut removed = Vec::new();
    for entry in std::fs::read_dir(root).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !is_id(&name) || keep.contains(&name) {
            continue;
        }
        match remove(root, &name) {
            Ok(()) => removed.push(name),
            Err(e) => {
                tracing::warn!(volume = %name, "could not remove a volume no container has: {e}")
            }
        }
    }
    removed.sort();
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bind(host: &str, path: &str) -> hoist_proto::VolumeMount {
        hoist_proto::VolumeMount {
            host_path: host.into(),
            container_path: path.into(),
            read_only: false,
        }
    }

    #[test]
    fn paths_are_cleaned_like_go_does() {
        assert_eq!(clean("/data/").as_deref(), Some("/data"));
        assert_eq!(clean("//a/./b//c/..").as_deref(), Some("/a/b"));
        assert_eq!(clean("/../../x").as_deref(), Some("/x"));
        assert_eq!(clean("/").as_deref(), Some("/"));
        assert_eq!(clean("data"), None);
    }

    #[test]
    fn every_image_volume_not_bound_gets_one_volume() {
        let image = vec![
            "/data".to_string(),
            "/logs/".into(),
            "/data/".into(),
            "/cache".into(),
            "/data/sub".into(),
        ];
        assert_eq!(
            anonymous_targets(&image, &[]).unwrap(),
            ["/data", "/logs", "/cache", "/data/sub"]
        );
        // A mount at the exact path wins (bind, named volume or tmpfs); one at a parent does
        // not cover the child.
        let req = CreateContainer {
            volumes: vec![bind("/srv/data", "/data/")],
            named_volumes: vec![hoist_proto::NamedVolumeMount {
                name: "c".into(),
                target: "/cache".into(),
                read_only: false,
            }],
            tmpfs: vec![hoist_proto::TmpfsMount {
                target: "/logs".into(),
                size_bytes: None,
                mode: None,
                read_only: false,
            }],
            ..Default::default()
        };
        assert_eq!(
            anonymous_targets(&image, &requested_targets(&req)).unwrap(),
            ["/data/sub"]
        );
        assert!(anonymous_targets(&["rel".into()], &[])
            .unwrap_err()
            .contains("not an absolute path"));
        assert!(anonymous_targets(&["/.".into()], &[])
            .unwrap_err()
            .contains("root"));
    }

    #[test]
    fn mounts_are_made_and_shown_parents_first() {
        let root = Path::new("/var/lib/hoist/volumes");
        let id = "a".repeat(64);
        let vols = [AnonymousVolume {
            id: id.clone(),
            target: "/data".into(),
        }];
        let spec = CreateContainer {
            volumes: vec![bind("/srv/x", "/data/sub/x")],
            named_volumes: vec![hoist_proto::NamedVolumeMount {
                name: "db".into(),
                target: "/var/lib/db/".into(),
                read_only: true,
            }],
            tmpfs: vec![hoist_proto::TmpfsMount {
                target: "/run".into(),
                size_bytes: Some(1 << 20),
                mode: None,
                read_only: false,
            }],
            ..Default::default()
        };
        let m = mounts(&spec, &vols, root);
        let shown: Vec<_> = m
            .iter()
            .map(|m| {
                (
                    m.kind,
                    m.destination.as_str(),
                    m.source.as_str(),
                    m.read_only,
                )
            })
            .collect();
        let anonymous = format!("/var/lib/hoist/volumes/{id}/_data");
        assert_eq!(
            shown,
            [
                (MountKind::Tmpfs, "/run", "tmpfs", false),
                (MountKind::Volume, "/data", anonymous.as_str(), false),
                (MountKind::Bind, "/data/sub/x", "/srv/x", false),
                (
                    MountKind::Volume,
                    "/var/lib/db",
                    "/var/lib/hoist/named-volumes/db/_data",
                    true
                ),
            ]
        );
        assert_eq!(m[1].name.as_deref(), Some(id.as_str()));
        assert_eq!(m[3].name.as_deref(), Some("db"));
        let mut binds = vec![
            Bind {
                source: "/a".into(),
                target: "/data/sub/x".into(),
                read_only: false,
            },
            Bind {
                source: "/b".into(),
                target: "/data".into(),
                read_only: false,
            },
        ];
        sort_binds(&mut binds);
        assert_eq!(binds[0].target, "/data");
    }

    #[test]
    fn create_copies_remove_and_sweep_clean() {
        let tmp = tempfile::tempdir().unwrap();
        let layer = tmp.path().join("layer");
        std::fs::create_dir_all(layer.join("data")).unwrap();
        std::fs::write(layer.join("data/seed"), "seed").unwrap();
        let root = tmp.path().join("volumes");
        let (a, b) = ("a".repeat(64), "b".repeat(64));
        let vols = [
            AnonymousVolume {
                id: a.clone(),
                target: "/data".into(),
            },
            AnonymousVolume {
                id: b.clone(),
                target: "/empty".into(),
            },
        ];
        let made = create(&root, &vols, &[layer], Path::new("/nonexistent"), None).unwrap();
        assert_eq!(made, [data_path(&root, &a), data_path(&root, &b)]);
        assert_eq!(
            std::fs::read_to_string(made[0].join("seed")).unwrap(),
            "seed"
        );
        assert_eq!(std::fs::read_dir(&made[1]).unwrap().count(), 0);
        std::fs::create_dir(root.join("not-an-id")).unwrap();
        assert_eq!(
            sweep(&root, &BTreeSet::from([a.clone()])),
            std::slice::from_ref(&b)
        );
        assert!(root.join(&a).exists() && root.join("not-an-id").exists());
        remove(&root, &a).unwrap();
        remove(&root, &a).unwrap();
        assert!(!root.join(&a).exists());
        assert!(remove(&root, "../x").is_err());
    }
}
