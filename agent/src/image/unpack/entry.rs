//! Applying one tar entry beneath the layer root: path resolution, replacement, metadata, whiteouts.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{fchmod, futimens, mkdirat, mknodat, utimensat, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fchownat, linkat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};
use tar::EntryType;
use xattr::FileExt as _;

use super::fsat::{self, Kind};
use super::{display, normalize, ImageError, Unpacker};

const WHITEOUT_PREFIX: &[u8] = b".wh.";
const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";
const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// Ownership, mode and mtime of an entry, from its header.
struct Meta {
    uid: u32,
    gid: u32,
    mode: u32,
    mtime: u64,
}

impl Unpacker<'_> {
    /// Applies one entry; any error names the entry.
    pub(super) fn apply_entry<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
    ) -> Result<(), ImageError> {
        let raw = entry.path_bytes().into_owned();
        let shown = display(&raw);
        self.count_entries(&shown, 1)?;
        let comps = normalize(&raw).map_err(|reason| ImageError::layer(&shown, reason))?;
        let meta = read_meta(entry.header()).map_err(|reason| ImageError::layer(&shown, reason))?;

        if let Some((name, parents)) = comps.split_last() {
            let base = name.as_bytes();
            if base.starts_with(WHITEOUT_PREFIX) {
                return self.whiteout(&shown, parents, base);
            }
        }
        let kind = entry.header().entry_type();
        match kind {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                self.regular(&shown, &comps, &meta, entry)
            }
            EntryType::Directory => self.directory(&shown, &comps, &meta, entry),
            EntryType::Symlink => {
                let target = link_target(entry, &shown)?;
                self.symlink(&shown, &comps, &meta, &target)
            }
            EntryType::Link => {
                let target = link_target(entry, &shown)?;
                self.hardlink(&shown, &comps, &target)
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                tracing::warn!(entry = %shown, ?kind, "skipping device node or fifo in layer");
                Ok(())
            }
            EntryType::XGlobalHeader => Ok(()),
            other => {
                tracing::warn!(entry = %shown, kind = ?other, "skipping layer entry of unsupported type");
                Ok(())
            }
        }
    }

    fn count_entries(&mut self, shown: &str, n: u64) -> Result<(), ImageError> {
        self.entries += n;
        if self.entries > self.limits.max_entries {
            return Err(ImageError::layer(
                shown,
                format!("layer has more than {} entries", self.limits.max_entries),
            ));
        }
        Ok(())
    }

    /// Opens the directory holding the last component of `comps`, creating missing parents
    /// (mode 0755) and refusing to pass through a symlink or a non-directory.
    fn open_parent(
        &mut self,
        shown: &str,
        parents: &[OsString],
        create: bool,
    ) -> Result<OwnedFd, ImageError> {
        let mut cur = openat(&self.root, ".", fsat::DIR_NOFOLLOW, Mode::empty())
            .map_err(|e| self.io("open layer root", shown, e))?;
        for comp in parents {
            let opened = if create {
                fsat::open_or_create_dir_at(&cur, comp)
            } else {
                fsat::open_dir_at(&cur, comp).map(|fd| (fd, false))
            };
            cur = match opened {
                Ok((fd, created)) => {
                    if created {
                        self.count_entries(shown, 1)?;
                    }
                    fd
                }
                Err(Errno::ELOOP | Errno::ENOTDIR) => {
                    let what = match fsat::kind_at(&cur, comp) {
                        Ok(Kind::Symlink) => "is a symlink (not followed)",
                        _ => "is not a directory",
                    };
                    return Err(ImageError::layer(
                        shown,
                        format!("parent component {:?} {what}", comp.to_string_lossy()),
                    ));
                }
                Err(Errno::ENOENT) => {
                    return Err(ImageError::layer(
                        shown,
                        format!(
                            "parent component {:?} does not exist",
                            comp.to_string_lossy()
                        ),
                    ))
                }
                Err(e) => return Err(self.io("open parent directory of", shown, e)),
            };
        }
        Ok(cur)
    }

    /// Makes room for a new entry `name` in `parent`: an existing entry is replaced (later tar
    /// entries win), except that a directory stays when the new entry is a directory too.
    /// Returns whether an existing directory was kept.
    fn make_room(
        &self,
        shown: &str,
        parent: BorrowedFd<'_>,
        name: &OsStr,
        new_is_dir: bool,
    ) -> Result<bool, ImageError> {
        match fsat::kind_at(parent, name).map_err(|e| self.io("stat", shown, e))? {
            Kind::Missing => Ok(false),
            Kind::Dir if new_is_dir => Ok(true),
            Kind::Dir => fsat::remove_all_at(parent, name)
                .map(|()| false)
                .map_err(|e| self.io("remove directory", shown, e)),
            Kind::Symlink | Kind::Other => unlinkat(parent, name, UnlinkatFlags::NoRemoveDir)
                .map(|()| false)
                .map_err(|e| self.io("remove", shown, e)),
        }
    }

    fn regular<R: Read>(
        &mut self,
        shown: &str,
        comps: &[OsString],
        meta: &Meta,
        entry: &mut tar::Entry<'_, R>,
    ) -> Result<(), ImageError> {
        let (name, parents) = comps
            .split_last()
            .ok_or_else(|| ImageError::layer(shown, "regular file at the layer root"))?;
        let remaining = self.limits.max_bytes.saturating_sub(self.bytes);
        if entry.size() > remaining {
            return Err(self.over_byte_quota(shown));
        }
        let parent = self.open_parent(shown, parents, true)?;
        self.make_room(shown, parent.as_fd(), name, false)?;
        let flags =
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = openat(
            &parent,
            name.as_os_str(),
            flags,
            Mode::from_bits_truncate(0o600),
        )
        .map_err(|e| self.io("create file", shown, e))?;
        let mut file = File::from(fd);
        let written = io::copy(&mut entry.by_ref().take(remaining + 1), &mut file)
            .map_err(|e| ImageError::layer(shown, format!("cannot read file content: {e}")))?;
        if written > remaining {
            return Err(self.over_byte_quota(shown));
        }
        self.bytes += written;
        self.set_xattrs(shown, &file, entry)?;
        self.set_fd_meta(shown, file.as_fd(), meta)
    }

    fn directory<R: Read>(
        &mut self,
        shown: &str,
        comps: &[OsString],
        meta: &Meta,
        entry: &mut tar::Entry<'_, R>,
    ) -> Result<(), ImageError> {
        let fd = match comps.split_last() {
            None => openat(&self.root, ".", fsat::DIR_NOFOLLOW, Mode::empty())
                .map_err(|e| self.io("open layer root", shown, e))?,
            Some((name, parents)) => {
                let parent = self.open_parent(shown, parents, true)?;
                if !self.make_room(shown, parent.as_fd(), name, true)? {
                    mkdirat(&parent, name.as_os_str(), Mode::from_bits_truncate(0o700))
                        .map_err(|e| self.io("create directory", shown, e))?;
                }
                fsat::open_dir_at(&parent, name).map_err(|e| self.io("open directory", shown, e))?
            }
        };
        let dir = File::from(fd);
        self.set_xattrs(shown, &dir, entry)?;
        self.set_owner_mode(shown, dir.as_fd(), meta)?;
        self.dir_times.push((comps.to_vec(), meta.mtime));
        Ok(())
    }

    fn symlink(
        &mut self,
        shown: &str,
        comps: &[OsString],
        meta: &Meta,
        target: &[u8],
    ) -> Result<(), ImageError> {
        let (name, parents) = comps
            .split_last()
            .ok_or_else(|| ImageError::layer(shown, "symlink at the layer root"))?;
        let parent = self.open_parent(shown, parents, true)?;
        self.make_room(shown, parent.as_fd(), name, false)?;
        // The target is stored verbatim: it is data, resolved only inside the container.
        symlinkat(OsStr::from_bytes(target), &parent, name.as_os_str())
            .map_err(|e| self.io("create symlink", shown, e))?;
        fchownat(
            &parent,
            name.as_os_str(),
            Some(Uid::from_raw(meta.uid)),
            Some(Gid::from_raw(meta.gid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|e| self.io("chown symlink", shown, e))?;
        let t = timespec(meta.mtime);
        utimensat(
            &parent,
            name.as_os_str(),
            &t,
            &t,
            UtimensatFlags::NoFollowSymlink,
        )
        .map_err(|e| self.io("set mtime of symlink", shown, e))
    }

    fn hardlink(
        &mut self,
        shown: &str,
        comps: &[OsString],
        target: &[u8],
    ) -> Result<(), ImageError> {
        let (name, parents) = comps
            .split_last()
            .ok_or_else(|| ImageError::layer(shown, "hardlink at the layer root"))?;
        let target_comps = normalize(target).map_err(|reason| {
            ImageError::layer(
                shown,
                format!("hardlink target {:?}: {reason}", display(target)),
            )
        })?;
        if target_comps == comps {
            return Ok(()); // a link to itself changes nothing
        }
        let (target_name, target_parents) = target_comps
            .split_last()
            .ok_or_else(|| ImageError::layer(shown, "hardlink to the layer root"))?;
        let not_found = || {
            ImageError::layer(
                shown,
                format!(
                    "hardlink target {:?} is not a file inside the layer",
                    display(target)
                ),
            )
        };
        let target_parent = match self.open_parent(shown, target_parents, false) {
            Ok(fd) => fd,
            Err(ImageError::InvalidLayer { .. }) => return Err(not_found()),
            Err(e) => return Err(e),
        };
        match fsat::kind_at(&target_parent, target_name)
            .map_err(|e| self.io("stat hardlink target of", shown, e))?
        {
            Kind::Missing | Kind::Dir => return Err(not_found()),
            Kind::Symlink | Kind::Other => {}
        }
        let parent = self.open_parent(shown, parents, true)?;
        self.make_room(shown, parent.as_fd(), name, false)?;
        // No AT_SYMLINK_FOLLOW: a link to a symlink links the symlink itself.
        linkat(
            &target_parent,
            target_name.as_os_str(),
            &parent,
            name.as_os_str(),
            AtFlags::empty(),
        )
        .map_err(|e| self.io("create hardlink", shown, e))
    }

    /// `.wh..wh..opq` marks the parent opaque; `.wh.NAME` becomes a 0:0 character device `NAME`.
    fn whiteout(
        &mut self,
        shown: &str,
        parents: &[OsString],
        base: &[u8],
    ) -> Result<(), ImageError> {
        if base == OPAQUE_MARKER {
            let parent = File::from(self.open_parent(shown, parents, true)?);
            return parent
                .set_xattr(OPAQUE_XATTR, b"y")
                .map_err(|e| self.io("set opaque xattr on", shown, e));
        }
        let target = &base[WHITEOUT_PREFIX.len()..];
        if target.starts_with(WHITEOUT_PREFIX) {
            tracing::warn!(entry = %shown, "skipping aufs metadata whiteout in layer");
            return Ok(());
        }
        if matches!(target, b"" | b"." | b"..") {
            return Err(ImageError::layer(
                shown,
                "whiteout names no file (.wh., .wh.. and .wh... are invalid)",
            ));
        }
        let name = OsStr::from_bytes(target);
        let parent = self.open_parent(shown, parents, true)?;
        self.make_room(shown, parent.as_fd(), name, false)?;
        mknodat(
            &parent,
            name,
            SFlag::S_IFCHR,
            Mode::empty(),
            nix::sys::stat::makedev(0, 0),
        )
        .map_err(|e| self.io("create whiteout", shown, e))?;
        fchownat(
            &parent,
            name,
            Some(Uid::from_raw(0)),
            Some(Gid::from_raw(0)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|e| self.io("chown whiteout", shown, e))
    }

    /// Applies `SCHILY.xattr.*` PAX records: only `user.*` and `security.capability`; the
    /// `trusted.*` namespace (overlayfs' own metadata among it) is never taken from a layer.
    fn set_xattrs<R: Read>(
        &self,
        shown: &str,
        file: &File,
        entry: &mut tar::Entry<'_, R>,
    ) -> Result<(), ImageError> {
        let Ok(Some(pax)) = entry.pax_extensions() else {
            return Ok(());
        };
        for ext in pax.flatten() {
            let Some(name) = ext.key_bytes().strip_prefix(b"SCHILY.xattr.") else {
                continue;
            };
            let name = OsStr::from_bytes(name);
            let allowed =
                name.as_bytes().starts_with(b"user.") || name.as_bytes() == b"security.capability";
            if !allowed {
                tracing::warn!(entry = %shown, xattr = %name.to_string_lossy(), "skipping xattr from layer");
                continue;
            }
            file.set_xattr(name, ext.value_bytes())
                .map_err(|e| self.io("set xattr on", shown, e))?;
        }
        Ok(())
    }

    /// Owner, then mode (chown clears set-id bits), then mtime.
    fn set_fd_meta(&self, shown: &str, fd: BorrowedFd<'_>, meta: &Meta) -> Result<(), ImageError> {
        self.set_owner_mode(shown, fd, meta)?;
        let t = timespec(meta.mtime);
        futimens(fd, &t, &t).map_err(|e| self.io("set mtime of", shown, e))
    }

    fn set_owner_mode(
        &self,
        shown: &str,
        fd: BorrowedFd<'_>,
        meta: &Meta,
    ) -> Result<(), ImageError> {
        fchown(
            fd,
            Some(Uid::from_raw(meta.uid)),
            Some(Gid::from_raw(meta.gid)),
        )
        .map_err(|e| self.io("chown", shown, e))?;
        fchmod(fd, Mode::from_bits_truncate(meta.mode & 0o7777))
            .map_err(|e| self.io("chmod", shown, e))
    }

    /// Sets directory mtimes after all entries are in; a directory replaced or removed since is
    /// skipped (the walk never follows a symlink).
    pub(super) fn restore_dir_times(&mut self) {
        for (comps, mtime) in std::mem::take(&mut self.dir_times) {
            let Ok(mut cur) = openat(&self.root, ".", fsat::DIR_NOFOLLOW, Mode::empty()) else {
                return;
            };
            let mut ok = true;
            for comp in &comps {
                match fsat::open_dir_at(&cur, comp) {
                    Ok(fd) => cur = fd,
                    Err(_) => {
                        ok = false;
                        break;
                    }
                }
            }
            if ok {
                let t = timespec(mtime);
                if let Err(e) = futimens(&cur, &t, &t) {
                    tracing::debug!(error = %e, "cannot set directory mtime");
                }
            }
        }
    }

    fn over_byte_quota(&self, shown: &str) -> ImageError {
        ImageError::layer(
            shown,
            format!(
                "layer writes more than its quota of {} bytes",
                self.limits.max_bytes
            ),
        )
    }

    fn io(&self, op: &'static str, shown: &str, e: impl Into<io::Error>) -> ImageError {
        ImageError::Io {
            op,
            path: self.root_path.join(shown.trim_start_matches('/')),
            source: e.into(),
        }
    }
}

fn read_meta(header: &tar::Header) -> Result<Meta, String> {
    let uid = header.uid().map_err(|e| format!("bad uid: {e}"))?;
    let gid = header.gid().map_err(|e| format!("bad gid: {e}"))?;
    Ok(Meta {
        uid: u32::try_from(uid).map_err(|_| format!("uid {uid} out of range"))?,
        gid: u32::try_from(gid).map_err(|_| format!("gid {gid} out of range"))?,
        mode: header.mode().map_err(|e| format!("bad mode: {e}"))?,
        mtime: header.mtime().unwrap_or(0),
    })
}

fn link_target<R: Read>(entry: &tar::Entry<'_, R>, shown: &str) -> Result<Vec<u8>, ImageError> {
    match entry.link_name_bytes() {
        Some(t) if !t.is_empty() => Ok(t.into_owned()),
        _ => Err(ImageError::layer(shown, "link has an empty target")),
    }
}

fn timespec(secs: u64) -> TimeSpec {
    TimeSpec::new(i64::try_from(secs).unwrap_or(i64::MAX), 0)
}
