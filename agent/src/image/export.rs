//! `hoist export`: a container's filesystem, flattened, as one tar (what `docker export` writes).
//!
//! The kernel does the merging: a dedicated thread moves into a mount namespace of its own
//! (`unshare(CLONE_NEWNS)`, everything private, as COPY does in `build::copy`), mounts a
//! read-only overlay whose lower directories are the container's writable layer on top of its
//! image's layers, and tars the merged tree. Whiteouts and opaque directories are thus applied
//! exactly as the container saw them, and nothing is written anywhere. The host never sees the
//! mount; when the thread ends, also if the agent dies, the namespace and the mount go with it.
//!
//! The tree is walked without following symlinks (`lstat`, files opened `O_NOFOLLOW`), in sorted
//! order; hard links inside it are kept as tar links; sockets are left out (tar cannot hold
//! them), and so are the runtime's mount points that the image lacks (given as `skip`), which
//! `hoist diff` and `hoist commit` leave out too. A running container is read as it is, not
//! paused.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};

use super::ImageStore;
use crate::runtime::mounts;
use crate::runtime::userns::IdRange;

/// One export: what to merge, and a scratch directory of the store's for the mount point.
#[derive(Debug)]
pub struct ExportSpec {
    /// The image's layers, lowest first (may be empty).
    pub lowers: Vec<PathBuf>,
    /// The container's writable layer (its overlay upper directory).
    pub upper: PathBuf,
    /// Relative paths (`etc/hosts`) to leave out, with what is beneath them.
    pub skip: Vec<String>,
    /// The host ids of a user-namespaced container's writable layer, mapped back in the tar.
    pub ids: Option<IdRange>,
    /// `mnt/` (the mount point) and `empty/` (a lower directory when there is only one layer),
    /// under the store's `tmp/`, which the agent clears when it starts.
    scratch: tempfile::TempDir,
}

impl ExportSpec {
    pub fn new(
        store: &ImageStore,
        lowers: Vec<PathBuf>,
        upper: PathBuf,
        skip: Vec<String>,
        ids: Option<IdRange>,
    ) -> io::Result<Self> {
        let scratch = tempfile::Builder::new()
            .prefix("export-")
            .tempdir_in(&store.tmp)?;
        for d in ["mnt", "empty"] {
            fs::create_dir(scratch.path().join(d))?;
        }
        Ok(Self {
            lowers,
            upper,
            skip,
            ids,
            scratch,
        })
    }
}

/// Writes the tar to `out` from a thread in its own mount namespace, and hands `out` back with
/// the outcome (on failure the caller still owns the stream, to break it).
pub fn export<W: Write + Send + 'static>(
    spec: ExportSpec,
    out: W,
) -> (Option<W>, Result<(), String>) {
    let thread = std::thread::Builder::new()
        .name("hoist-export".into())
        .spawn(move || {
            let mut out = out;
            let result = in_private_mount_ns(&spec, &mut out);
            (out, result)
        });
    match thread {
        Err(e) => (None, Err(format!("spawn export thread: {e}"))),
        Ok(t) => match t.join() {
            Ok((out, result)) => (Some(out), result),
            Err(_) => (None, Err("export thread panicked".to_owned())),
        },
    }
}

fn in_private_mount_ns<W: Write>(spec: &ExportSpec, out: &mut W) -> Result<(), String> {
    // This thread only: it leaves the shared filesystem context for good and ends right after.
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
        .map_err(|e| format!("unshare mount namespace: {e}"))?;
    mounts::make_private().map_err(|e| e.to_string())?;
    let (mountpoint, empty) = (
        spec.scratch.path().join("mnt"),
        spec.scratch.path().join("empty"),
    );
    // Topmost first, as overlayfs wants `lowerdir=`; without an upper directory it needs two.
    let mut layers: Vec<&Path> = vec![spec.upper.as_path()];
    layers.extend(spec.lowers.iter().rev().map(PathBuf::as_path));
    if layers.len() < 2 {
        layers.push(empty.as_path());
    }
    let lowerdir: Vec<String> = layers.iter().map(|l| l.display().to_string()).collect();
    let data = format!("lowerdir={}", lowerdir.join(":"));
    nix::mount::mount(
        Some("overlay"),
        &mountpoint,
        Some("overlay"),
        MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(data.as_str()),
    )
    .map_err(|e| format!("mount the container's filesystem: {e}"))?;
    let result = write_tar(&mountpoint, &spec.skip, spec.ids, out).map_err(|e| e.to_string());
    if let Err(e) = nix::mount::umount2(&mountpoint, MntFlags::MNT_DETACH) {
        tracing::warn!(error = %e, "unmount export overlay");
    }
    result
}

/// Tars the tree at `root` (entries relative, no leading `./`, directories before their
/// contents, names sorted).
pub fn write_tar<W: Write>(
    root: &Path,
    skip: &[String],
    ids: Option<IdRange>,
    out: &mut W,
) -> io::Result<()> {
    let mut tar = tar::Builder::new(out);
    tar.mode(tar::HeaderMode::Complete);
    tar.follow_symlinks(false);
    let mut links = HashMap::new();
    add_dir(&mut tar, root, "", skip, ids, &mut links)?;
    tar.finish()?;
    Ok(())
}

fn add_dir<W: Write>(
    tar: &mut tar::Builder<W>,
    dir: &Path,
    rel: &str,
    skip: &[String],
    ids: Option<IdRange>,
    links: &mut HashMap<(u64, u64), PathBuf>,
) -> io::Result<()> {
    let mut names: Vec<_> = fs::read_dir(dir)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()?;
    names.sort();
    for name in names {
        let path = dir.join(&name);
        let child = if rel.is_empty() {
            PathBuf::from(&name)
        } else {
            Path::new(rel).join(&name)
        };
        let child_str = child.to_string_lossy();
        if skip.iter().any(|s| *s == child_str) {
            continue;
        }
        let meta = fs::symlink_metadata(&path)?;
        let ft = meta.file_type();
        if ft.is_socket() {
            continue;
        }
        let mut header = tar::Header::new_gnu();
        header.set_metadata_in_mode(&meta, tar::HeaderMode::Complete);
        if let Some(r) = ids {
            header.set_uid(r.unshift(meta.uid()).into());
            header.set_gid(r.unshift(meta.gid()).into());
        }
        if ft.is_dir() {
            header.set_size(0);
            // `name/`, as tar writes directories.
            tar.append_data(&mut header, child.join(""), io::empty())?;
            add_dir(tar, &path, &child_str, skip, ids, links)?;
        } else if ft.is_symlink() {
            header.set_size(0);
            tar.append_link(&mut header, &child, fs::read_link(&path)?)?;
        } else if ft.is_file() {
            if meta.nlink() > 1 {
                let key = (meta.dev(), meta.ino());
                if let Some(first) = links.get(&key) {
                    header.set_entry_type(tar::EntryType::Link);
                    header.set_size(0);
                    tar.append_link(&mut header, &child, first)?;
                    continue;
                }
                links.insert(key, child.clone());
            }
            let f = fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&path)?;
            tar.append_data(&mut header, &child, f)?;
        } else {
            // Fifos and device nodes: the entry, with the device's numbers.
            if ft.is_char_device() || ft.is_block_device() {
                let dev = meta.rdev();
                header.set_device_major(nix::sys::stat::major(dev) as u32)?;
                header.set_device_minor(nix::sys::stat::minor(dev) as u32)?;
            }
            header.set_size(0);
            tar.append_data(&mut header, &child, io::empty())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn listing(bytes: &[u8]) -> Vec<(String, tar::EntryType, String)> {
        let mut a = tar::Archive::new(bytes);
        a.entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let name = e.path().unwrap().display().to_string();
                let kind = e.header().entry_type();
                let target = e
                    .link_name()
                    .unwrap()
                    .map(|l| l.display().to_string())
                    .unwrap_or_default();
                let mut body = String::new();
                io::Read::read_to_string(&mut e, &mut body).unwrap();
                (name, kind, if target.is_empty() { body } else { target })
            })
            .collect()
    }

    #[test]
    fn a_tree_is_tarred_sorted_without_following_links() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        fs::create_dir_all(root.join("etc")).unwrap();
        fs::create_dir_all(root.join("b")).unwrap();
        fs::write(root.join("etc/hosts"), "skipped").unwrap();
        fs::write(root.join("etc/passwd"), "root:x:0:0").unwrap();
        fs::write(root.join("b/one"), "1").unwrap();
        fs::hard_link(root.join("b/one"), root.join("b/two")).unwrap();
        symlink("/etc/shadow", root.join("b/link")).unwrap();
        let mut bytes = Vec::new();
        write_tar(&root, &["etc/hosts".into()], None, &mut bytes).unwrap();
        let got = listing(&bytes);
        let names: Vec<(&str, &str)> = got
            .iter()
            .map(|(n, _, b)| (n.as_str(), b.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("b/", ""),
                ("b/link", "/etc/shadow"),
                ("b/one", "1"),
                ("b/two", "b/one"),
                ("etc/", ""),
                ("etc/passwd", "root:x:0:0"),
            ]
        );
        assert_eq!(got[0].1, tar::EntryType::Directory);
        assert_eq!(got[1].1, tar::EntryType::Symlink);
        assert_eq!(got[3].1, tar::EntryType::Link);
    }
}
