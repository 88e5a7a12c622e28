//! Turning an overlayfs upper directory into an OCI layer tar.
//!
//! A RUN or COPY step writes through an overlay whose upper directory the builder owns; what the
//! step changed is exactly that directory, in overlayfs's own notation. OCI layers use another:
//! a deleted path is a 0:0 character device in the upper dir and an empty `.wh.NAME` entry in
//! the tar; a directory whose lower contents are hidden carries `trusted.overlay.opaque=y` and
//! becomes the directory plus `.wh..wh..opq`. Entries are written in sorted order, hardlinks as
//! tar links; the mount points the runtime itself creates (`/proc`, `/etc/hosts`, ...) are left
//! out when the lower layers did not have them, and so are directories overlayfs merely copied
//! up (unchanged mode and owner, nothing kept beneath).
//!
//! The directory is walked without following symlinks: only entries whose `lstat` says
//! "directory" are descended into.

use crate::runtime::userns::IdRange;
use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufWriter};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// Paths the runtime creates as mount points when an image lacks them (also what `hoist diff`
/// leaves out).
pub(crate) const RUNTIME_MOUNT_POINTS: &[&str] = &[
    "proc",
    "sys",
    "dev",
    "etc/hosts",
    "etc/hostname",
    "etc/resolv.conf",
    // Where a service replica's secrets and configs are mounted (`runtime::secret_files`).
    "run/.hoist-files",
];

/// What was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DiffStats {
    pub entries: u64,
    pub whiteouts: u64,
}

/// Writes the changes in `upper` as a layer tar at `out`. `lowers` are the layers below (lowest
/// first), consulted to tell runtime mount points and bare copy-ups from real changes. `ids`:
/// the host ids of a user-namespaced container's writable layer, mapped back to its own.
pub fn write_diff(
    upper: &Path,
    lowers: &[PathBuf],
    ids: Option<IdRange>,
    out: &Path,
) -> io::Result<DiffStats> {
    write_layer(upper, lowers, &[], ids, out)
}

/// [`write_diff`], also leaving out `mount_points` (paths relative to the root: a RUN step's
/// `--mount` targets) the lowers lack, with the directories created only to hold them.
pub fn write_diff_without(
    upper: &Path,
    lowers: &[PathBuf],
    mount_points: &[String],
    out: &Path,
) -> io::Result<DiffStats> {
    write_layer(upper, lowers, mount_points, None, out)
}

fn write_layer(
    upper: &Path,
    lowers: &[PathBuf],
    mount_points: &[String],
    ids: Option<IdRange>,
    out: &Path,
) -> io::Result<DiffStats> {
    let mut items = Vec::new();
    let mut left_out = Vec::new();
    let mut scan = Scan {
        lowers,
        mount_points,
        ids,
        items: &mut items,
        left_out: &mut left_out,
    };
    scan.collect(upper, "")?;
    let keep = prune(&items, lowers, &left_out);
    let file = File::create(out)?;
    let mut tar = tar::Builder::new(BufWriter::new(file));
    tar.mode(tar::HeaderMode::Complete);
    let mut links: HashMap<(u64, u64), String> = HashMap::new();
    let mut stats = DiffStats::default();
    for (item, _) in items.iter().zip(&keep).filter(|(_, k)| **k) {
        write_item(&mut tar, item, &mut links, &mut stats)?;
    }
    tar.into_inner()?
        .into_inner()
        .map_err(|e| e.into_error())?
        .sync_all()?;
    Ok(stats)
}

/// One entry of the upper directory, in walk order (a directory before what it holds).
struct Item {
    rel: String,
    path: PathBuf,
    meta: fs::Metadata,
    kind: ItemKind,
    /// The owner the layer gives it (the container's own ids).
    uid: u32,
    gid: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ItemKind {
    Dir { opaque: bool },
    Whiteout,
    Other,
}

/// An overlayfs whiteout: a 0/0 character device.
pub(crate) fn is_whiteout(meta: &fs::Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == 0
}

/// An overlayfs opaque directory (`trusted.overlay.opaque=y`; only root reads `trusted.*`).
pub(crate) fn is_opaque(path: &Path) -> io::Result<bool> {
    Ok(xattr::get(path, "trusted.overlay.opaque")?.as_deref() == Some(b"y"))
}

/// A walk of the upper directory.
struct Scan<'a> {
    lowers: &'a [PathBuf],
    mount_points: &'a [String],
    ids: Option<IdRange>,
    items: &'a mut Vec<Item>,
    /// Mount points left out (the image lacks them).
    left_out: &'a mut Vec<String>,
}

impl Scan<'_> {
    fn collect(&mut self, dir: &Path, rel: &str) -> io::Result<()> {
        let mut names: Vec<_> = fs::read_dir(dir)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()?;
        names.sort();
        for name in names {
            let Some(name) = name.to_str() else {
                return Err(io::Error::other(format!(
                    "{rel}/{}: non-UTF-8 file names are not supported in build layers",
                    name.to_string_lossy()
                )));
            };
            let path = dir.join(name);
            let child = if rel.is_empty() {
                name.to_owned()
            } else {
                format!("{rel}/{name}")
            };
            let mount_point = RUNTIME_MOUNT_POINTS.contains(&child.as_str())
                || self.mount_points.contains(&child);
            if mount_point && lower_meta(self.lowers, &child).is_none() {
                self.left_out.push(child);
                continue;
            }
            let meta = fs::symlink_metadata(&path)?;
            let ft = meta.file_type();
            let kind = if is_whiteout(&meta) {
                ItemKind::Whiteout
            } else if ft.is_dir() {
                if xattr::get(&path, "trusted.overlay.redirect")?.is_some() {
                    return Err(io::Error::other(format!(
                    "{child}: a renamed directory (overlayfs redirect) cannot be turned into a layer"
                )));
                }
                ItemKind::Dir {
                    opaque: xattr::get(&path, "trusted.overlay.opaque")?.as_deref() == Some(b"y"),
                }
            } else {
                ItemKind::Other
            };
            let unshift = |id: u32| self.ids.map_or(id, |r| r.unshift(id));
            self.items.push(Item {
                rel: child.clone(),
                path: path.clone(),
                uid: unshift(meta.uid()),
                gid: unshift(meta.gid()),
                meta,
                kind,
            });
            if matches!(kind, ItemKind::Dir { .. }) {
                self.collect(&path, &child)?;
            }
        }
        Ok(())
    }
}

/// Which items to write: all but directories that overlayfs only copied up (to hold a mount
/// point or a change that was then undone) — not opaque, nothing kept beneath, and the same
/// mode and owner as the directory below — and directories the image lacks that were made only
/// to hold a left-out mount point.
fn prune(items: &[Item], lowers: &[PathBuf], left_out: &[String]) -> Vec<bool> {
    let mut keep = vec![true; items.len()];
    for i in (0..items.len()).rev() {
        let item = &items[i];
        if item.kind != (ItemKind::Dir { opaque: false }) {
            continue;
        }
        let prefix = format!("{}/", item.rel);
        let kept_below = (i + 1..items.len())
            .take_while(|&j| items[j].rel.starts_with(&prefix))
            .any(|j| keep[j]);
        if kept_below {
            continue;
        }
        let keep_it = match lower_meta(lowers, &item.rel) {
            Some(m) => {
                !(m.is_dir()
                    && m.mode() == item.meta.mode()
                    && m.uid() == item.uid
                    && m.gid() == item.gid)
            }
            None => !left_out.iter().any(|m| m.starts_with(&prefix)),
        };
        keep[i] = keep_it;
    }
    keep
}

fn write_item<W: io::Write>(
    tar: &mut tar::Builder<W>,
    item: &Item,
    links: &mut HashMap<(u64, u64), String>,
    stats: &mut DiffStats,
) -> io::Result<()> {
    let (rel, meta) = (item.rel.as_str(), &item.meta);
    let mut header = tar::Header::new_gnu();
    match item.kind {
        ItemKind::Whiteout => {
            // An overlayfs whiteout: the path was deleted.
            let (parent, name) = rel.rsplit_once('/').map_or(("", rel), |(p, n)| (p, n));
            let wh = if parent.is_empty() {
                format!(".wh.{name}")
            } else {
                format!("{parent}/.wh.{name}")
            };
            stats.whiteouts += 1;
            return empty_file(tar, &wh, meta);
        }
        ItemKind::Dir { opaque } => {
            set_metadata(&mut header, item);
            header.set_size(0);
            stats.entries += 1;
            tar.append_data(&mut header, format!("{rel}/"), io::empty())?;
            if opaque {
                stats.whiteouts += 1;
                empty_file(tar, &format!("{rel}/.wh..wh..opq"), meta)?;
            }
            return Ok(());
        }
        ItemKind::Other => {}
    }
    set_metadata(&mut header, item);
    stats.entries += 1;
    let ft = meta.file_type();
    if ft.is_symlink() {
        let target = fs::read_link(&item.path)?;
        header.set_size(0);
        return tar.append_link(&mut header, rel, target);
    }
    if ft.is_file() {
        if meta.nlink() > 1 {
            let key = (meta.dev(), meta.ino());
            if let Some(first) = links.get(&key) {
                header.set_entry_type(tar::EntryType::Link);
                header.set_size(0);
                return tar.append_link(&mut header, rel, first.clone());
            }
            links.insert(key, rel.to_owned());
        }
        let f = File::open(&item.path)?;
        return tar.append_data(&mut header, rel, f);
    }
    // Fifos, sockets and device nodes: written as they are (the unpacker skips devices).
    header.set_size(0);
    tar.append_data(&mut header, rel, io::empty())
}

/// The item's mode, times and size, and the owner the layer gives it.
fn set_metadata(header: &mut tar::Header, item: &Item) {
    header.set_metadata_in_mode(&item.meta, tar::HeaderMode::Complete);
    header.set_uid(item.uid.into());
    header.set_gid(item.gid.into());
}

fn empty_file<W: io::Write>(
    tar: &mut tar::Builder<W>,
    rel: &str,
    like: &fs::Metadata,
) -> io::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(like.mtime().max(0) as u64);
    h.set_size(0);
    tar.append_data(&mut h, rel, io::empty())
}

/// Metadata of `rel` in the topmost lower layer that has it, walked without following symlinks
/// (a symlinked parent counts as absent).
fn lower_meta(lowers: &[PathBuf], rel: &str) -> Option<fs::Metadata> {
    lowers.iter().rev().find_map(|l| {
        let mut p = l.clone();
        for comp in rel.split('/') {
            match fs::symlink_metadata(&p) {
                Ok(m) if m.is_dir() => p.push(comp),
                _ => return None,
            }
        }
        fs::symlink_metadata(&p).ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn entries(tar_path: &Path) -> Vec<(String, tar::EntryType)> {
        let mut a = tar::Archive::new(File::open(tar_path).unwrap());
        a.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path().unwrap().display().to_string(),
                    e.header().entry_type(),
                )
            })
            .collect()
    }

    #[test]
    fn files_dirs_links_and_hardlinks_in_sorted_order() {
        let t = tempfile::tempdir().unwrap();
        let upper = t.path().join("upper");
        fs::create_dir_all(upper.join("app/sub")).unwrap();
        fs::write(upper.join("app/b.txt"), "b").unwrap();
        fs::write(upper.join("app/a.txt"), "a").unwrap();
        fs::hard_link(upper.join("app/a.txt"), upper.join("app/sub/a2")).unwrap();
        symlink("/etc/passwd", upper.join("app/link")).unwrap();
        let out = t.path().join("layer.tar");
        let stats = write_diff(&upper, &[], None, &out).unwrap();
        assert_eq!(stats.whiteouts, 0);
        let got = entries(&out);
        let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "app/",
                "app/a.txt",
                "app/b.txt",
                "app/link",
                "app/sub/",
                "app/sub/a2"
            ]
        );
        assert_eq!(got[3].1, tar::EntryType::Symlink);
        assert_eq!(got[5].1, tar::EntryType::Link);
    }

    #[test]
    fn a_user_namespaced_layers_host_ids_are_mapped_back() {
        use std::os::unix::fs::lchown;
        let t = tempfile::tempdir().unwrap();
        let (upper, lower) = (t.path().join("upper"), t.path().join("lower"));
        let ids = IdRange {
            first: 3_000_000,
            count: 65_536,
        };
        for d in ["etc", "var"] {
            fs::create_dir_all(lower.join(d)).unwrap();
            fs::create_dir_all(upper.join(d)).unwrap();
            // Copied up by overlayfs with the lower's owner, as the container sees it.
            lchown(upper.join(d), Some(3_000_000), Some(3_000_000)).unwrap();
        }
        fs::write(upper.join("etc/app.conf"), "x").unwrap();
        lchown(upper.join("etc/app.conf"), Some(3_000_033), Some(3_000_033)).unwrap();
        let out = t.path().join("layer.tar");
        write_diff(&upper, &[lower], Some(ids), &out).unwrap();
        let mut a = tar::Archive::new(File::open(&out).unwrap());
        let got: Vec<(String, u64, u64)> = a
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().display().to_string(),
                    h.uid().unwrap(),
                    h.gid().unwrap(),
                )
            })
            .collect();
        // `var` is a bare copy-up once its owner is mapped back, and is left out.
        assert_eq!(
            got,
            [
                ("etc/".to_string(), 0, 0),
                ("etc/app.conf".to_string(), 33, 33)
            ]
        );
    }

    #[test]
    fn runtime_mount_points_are_left_out_unless_the_lowers_have_them() {
        let t = tempfile::tempdir().unwrap();
        let upper = t.path().join("upper");
        let lower = t.path().join("lower");
        fs::create_dir_all(upper.join("proc")).unwrap();
        fs::create_dir_all(upper.join("etc")).unwrap();
        fs::write(upper.join("etc/hosts"), "").unwrap();
        fs::write(upper.join("etc/hostname"), "").unwrap();
        fs::create_dir_all(lower.join("etc")).unwrap();
        fs::write(lower.join("etc/hostname"), "x").unwrap();
        let out = t.path().join("layer.tar");
        write_diff(&upper, &[lower], None, &out).unwrap();
        let names: Vec<String> = entries(&out).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["etc/", "etc/hostname"]);
    }

    #[test]
    fn step_mount_points_and_the_directories_made_for_them_are_left_out() {
        let t = tempfile::tempdir().unwrap();
        let (upper, lower) = (t.path().join("upper"), t.path().join("lower"));
        fs::create_dir_all(lower.join("root")).unwrap();
        fs::create_dir_all(upper.join("root/.cache/go")).unwrap();
        fs::create_dir_all(upper.join("run/secrets")).unwrap();
        fs::write(upper.join("run/secrets/token"), "").unwrap();
        fs::create_dir_all(upper.join("work")).unwrap();
        fs::write(upper.join("work/out.bin"), "built").unwrap();
        let out = t.path().join("layer.tar");
        let mounts = ["root/.cache/go", "run/secrets/token", "work/src"].map(String::from);
        write_diff_without(&upper, &[lower], &mounts, &out).unwrap();
        let names: Vec<String> = entries(&out).into_iter().map(|(n, _)| n).collect();
        // `root` is the image's own (copied up unchanged), `run` was made for the secret;
        // `work` holds a real change.
        assert_eq!(names, ["work/", "work/out.bin"]);
    }

    #[test]
    fn bare_copy_ups_are_left_out() {
        let t = tempfile::tempdir().unwrap();
        let (upper, lower) = (t.path().join("upper"), t.path().join("lower"));
        // `etc` only holds a left-out mount point; `var/empty` was copied up unchanged; `srv`
        // changed mode; `new` does not exist below.
        for d in ["etc", "var/empty", "srv", "new"] {
            fs::create_dir_all(upper.join(d)).unwrap();
        }
        fs::write(upper.join("etc/hosts"), "").unwrap();
        for d in ["etc", "var/empty", "srv"] {
            fs::create_dir_all(lower.join(d)).unwrap();
        }
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(upper.join("srv"), fs::Permissions::from_mode(0o700)).unwrap();
        let out = t.path().join("layer.tar");
        write_diff(&upper, &[lower], None, &out).unwrap();
        let names: Vec<String> = entries(&out).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["new/", "srv/"]);
    }

    /// Needs root (mknod of a whiteout, trusted.* xattrs), as the agent has.
    #[test]
    fn overlay_whiteouts_become_oci_whiteouts() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let upper = t.path().join("upper");
        fs::create_dir_all(upper.join("etc/opaque")).unwrap();
        nix::sys::stat::mknod(
            &upper.join("etc/gone"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o000),
            0,
        )
        .unwrap();
        xattr::set(upper.join("etc/opaque"), "trusted.overlay.opaque", b"y").unwrap();
        let out = t.path().join("layer.tar");
        let stats = write_diff(&upper, &[], None, &out).unwrap();
        assert_eq!(stats.whiteouts, 2);
        let names: Vec<String> = entries(&out).into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            [
                "etc/",
                "etc/.wh.gone",
                "etc/opaque/",
                "etc/opaque/.wh..wh..opq"
            ]
        );
    }
}
