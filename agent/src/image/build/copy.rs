//! COPY and ADD: writing build-context files into the image through an overlay the builder owns.
//!
//! Why an overlay, not a hand-made tar: the destination is a path *inside the image*, where
//! parents may be symlinks, may already exist with their own owners, or may have to be created;
//! writing through the merged view gets Docker's semantics (symlinks resolve inside the image,
//! existing directories keep their metadata, copy-up) and leaves exactly the change in the upper
//! directory, which `layer` turns into the step's layer, as for RUN.
//!
//! The overlay is mounted by a dedicated thread that first moves into a mount namespace of its
//! own (`unshare(CLONE_NEWNS)`, everything private): the host never sees the mount, and when the
//! thread ends — also if the agent dies — the kernel drops it. Every path in the image is resolved
//! with `openat2(RESOLVE_IN_ROOT)` (`runtime::mounts::open_in_root`); files are created with
//! `O_NOFOLLOW|O_EXCL`, so an image symlink can never redirect a write outside the root.

use std::ffi::{CString, OsStr};
use std::fs::{self, File};
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{fchmod, futimens, mkdirat, utimensat, Mode, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fchownat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};

use crate::image::unpack::{self, LayerLimits};
use crate::runtime::{mounts, users};
use hoist_common::dockerignore;

/// Where a COPY reads its sources.
#[derive(Debug, Clone)]
pub enum CopyFrom {
    /// The build context (or a directory of heredoc files): sources are already expanded,
    /// relative, and known to exist without passing through a symlink.
    Context(PathBuf),
    /// A stage or an image: its layers (lowest first) are mounted read-only on `mountpoint`;
    /// sources are resolved inside it (symlinks resolve inside that root, globs expand there).
    Layers {
        lowers: Vec<PathBuf>,
        mountpoint: PathBuf,
    },
}

/// One COPY/ADD step.
#[derive(Debug, Clone)]
pub struct CopySpec {
    /// Lower layers, lowest first (at least one: an empty dir for `FROM scratch`).
    pub lowers: Vec<PathBuf>,
    pub upper: PathBuf,
    pub work: PathBuf,
    /// An empty directory to mount the overlay on.
    pub mountpoint: PathBuf,
    pub from: CopyFrom,
    /// Source paths relative to their root, cleaned.
    pub sources: Vec<String>,
    /// Absolute destination inside the image; a trailing `/` means "into this directory".
    pub dest: String,
    /// `--chown` as written (`user[:group]`, names or ids), resolved against the image.
    pub chown: Option<String>,
    /// `--chmod` octal mode for copied files and directories.
    pub chmod: Option<u32>,
    /// ADD: local tar archives (plain, gzip, zstd) are extracted into the destination.
    pub extract_archives: bool,
    /// `--parents`: each source keeps its parent directories under the destination.
    pub parents: bool,
    /// `--exclude` patterns, matched against paths relative to the sources' root.
    pub excludes: Vec<String>,
}

/// Runs the copy on a thread in its own mount namespace and waits for it.
pub fn run(spec: CopySpec) -> Result<(), String> {
    std::thread::Builder::new()
        .name("hoist-build-copy".into())
        .spawn(move || in_private_mount_ns(&spec))
        .map_err(|e| format!("spawn copy thread: {e}"))?
        .join()
        .map_err(|_| "copy thread panicked".to_owned())?
}

fn in_private_mount_ns(spec: &CopySpec) -> Result<(), String> {
    // This thread only: it leaves the tokio pool's shared filesystem context for good and ends
    // right after, taking its mount namespace (and the overlays) with it.
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
        .map_err(|e| format!("unshare mount namespace: {e}"))?;
    mounts::make_private().map_err(|e| e.to_string())?;
    if let CopyFrom::Layers { lowers, mountpoint } = &spec.from {
        mounts::mount_overlay_ro(lowers, mountpoint).map_err(|e| e.to_string())?;
    }
    // The upper becomes a layer: not volatile.
    mounts::mount_overlay(
        &spec.lowers,
        &spec.upper,
        &spec.work,
        &spec.mountpoint,
        false,
    )
    .map_err(|e| e.to_string())?;
    let result = copy_all(spec);
    if let Err(e) = nix::mount::umount2(&spec.mountpoint, nix::mount::MntFlags::MNT_DETACH) {
        tracing::warn!(error = %e, "unmount build overlay");
    }
    if let CopyFrom::Layers { mountpoint, .. } = &spec.from {
        let _ = nix::mount::umount2(mountpoint, nix::mount::MntFlags::MNT_DETACH);
    }
    result
}

/// Owner and mode applied to what is copied, and what is left out.
#[derive(Debug, Clone, Copy)]
struct Owner<'a> {
    uid: u32,
    gid: u32,
    chmod: Option<u32>,
    /// `--exclude` patterns, with `.dockerignore`'s rules (a match excludes what is beneath).
    excludes: &'a dockerignore::IgnoreRules,
}

impl Owner<'_> {
    fn excluded(&self, rel: &str) -> bool {
        self.excludes.is_excluded(rel)
    }
}

/// A source ready to copy: where it is now, its name, and its path relative to its root.
struct Source {
    path: PathBuf,
    rel: String,
}

impl Source {
    fn name(&self) -> String {
        Path::new(&self.rel)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

/// The sources of a stage or image: resolved inside its mounted root.
fn resolve_in_layers(
    root_dir: &Path,
    spec: &CopySpec,
    owner: Owner<'_>,
) -> Result<Vec<Source>, String> {
    let root: OwnedFd = File::open(root_dir)
        .map_err(|e| format!("open source root: {e}"))?
        .into();
    let mut out = Vec::new();
    for src in &spec.sources {
        let clean = src.trim_matches('/');
        if dockerignore::has_glob(clean) {
            let all = super::sources::walk(root_dir, "").map_err(|e| e.to_string())?;
            let matched: Vec<String> = all
                .into_iter()
                .filter(|p| {
                    let name = p.rsplit('/').next().unwrap_or(p);
                    dockerignore::glob_match(clean, p)
                        && !owner.excluded(p)
                        && !owner.excluded(name)
                })
                .collect();
            if matched.is_empty() {
                return Err(format!("no file matches {src:?}"));
            }
            out.extend(matched.into_iter().map(|rel| Source {
                path: root_dir.join(&rel),
                rel,
            }));
            continue;
        }
        let fd = mounts::lookup_in_root(&root, clean).map_err(|e| format!("{src}: {e}"))?;
        let real =
            fs::read_link(mounts::fd_path(&fd)).map_err(|e| format!("resolve {src}: {e}"))?;
        out.push(Source {
            path: real,
            rel: clean.to_owned(),
        });
    }
    Ok(out)
}

fn copy_all(spec: &CopySpec) -> Result<(), String> {
    let root: OwnedFd = File::open(&spec.mountpoint)
        .map_err(|e| format!("open build root: {e}"))?
        .into();
    let (uid, gid) = match &spec.chown {
        None => (0, 0),
        Some(chown) => {
            let read = |p: &str| {
                mounts::read_in_root(&spec.mountpoint, p, 1 << 20)
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default()
            };
            let id = users::resolve(Some(chown), &read("etc/passwd"), &read("etc/group"))
                .map_err(|e| format!("--chown={chown}: {e}"))?;
            (id.uid, id.gid)
        }
    };
    let excludes = dockerignore::IgnoreRules::parse(&spec.excludes.join("\n"));
    let owner = Owner {
        uid,
        gid,
        chmod: spec.chmod,
        excludes: &excludes,
    };
    let sources = match &spec.from {
        CopyFrom::Context(dir) => spec
            .sources
            .iter()
            .map(|s| Source {
                path: dir.join(s),
                rel: s.clone(),
            })
            .collect(),
        CopyFrom::Layers { mountpoint, .. } => resolve_in_layers(mountpoint, spec, owner)?,
    };
    let into_dir = spec.dest.ends_with('/');
    if sources.len() > 1 && !into_dir {
        return Err(format!(
            "with more than one source the destination must be a directory ending in /: {}",
            spec.dest
        ));
    }
    for src in &sources {
        // `--parents`: the source's parent directories are kept under the destination.
        let dest = match (spec.parents, Path::new(&src.rel).parent()) {
            (true, Some(p)) if !p.as_os_str().is_empty() => {
                format!("{}/{}/", spec.dest.trim_end_matches('/'), p.display())
            }
            _ => spec.dest.clone(),
        };
        let into_dir = into_dir || dest != spec.dest;
        let meta = fs::symlink_metadata(&src.path).map_err(|e| format!("{}: {e}", src.rel))?;
        if meta.is_dir() && !(spec.parents && !src.name().is_empty() && src.rel != ".") {
            let dir = mounts::open_in_root(&root, &dest, mounts::Create::Dir)
                .map_err(|e| format!("destination {dest}: {e}"))?;
            // `--exclude` patterns match paths below the copied directory.
            copy_dir_children(&src.path, &reopen_dir(&dir)?, owner, "")?;
        } else if spec.extract_archives && is_archive(&src.path) {
            extract(&root, &src.path, &dest)?;
        } else {
            let base = src.name();
            let dest_is_dir = into_dir
                || mounts::lookup_in_root(&root, &dest)
                    .ok()
                    .is_some_and(|fd| is_dir_fd(&fd));
            let target = if dest_is_dir {
                format!("{}/{base}", dest.trim_end_matches('/'))
            } else {
                dest.clone()
            };
            let (parent, name) = target
                .rsplit_once('/')
                .map(|(p, n)| (if p.is_empty() { "/" } else { p }, n))
                .ok_or_else(|| format!("bad destination {target}"))?;
            if name.is_empty() {
                return Err(format!("bad destination {target}"));
            }
            let parent = mounts::open_in_root(&root, parent, mounts::Create::Dir)
                .map_err(|e| format!("destination {target}: {e}"))?;
            copy_entry(
                &src.path,
                &meta,
                &reopen_dir(&parent)?,
                OsStr::new(name),
                owner,
                "",
            )?;
        }
    }
    Ok(())
}

fn is_dir_fd(fd: &OwnedFd) -> bool {
    nix::sys::stat::fstat(fd)
        .map(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR)
        .unwrap_or(false)
}

/// An `O_PATH` fd from `open_in_root` → a real directory fd for the `*at` calls.
fn reopen_dir(fd: &OwnedFd) -> Result<OwnedFd, String> {
    nix::fcntl::openat(
        fd,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("destination is not a directory: {e}"))
}

fn copy_dir_children(
    src: &Path,
    dest: &OwnedFd,
    owner: Owner<'_>,
    rel: &str,
) -> Result<(), String> {
    let mut names: Vec<_> = fs::read_dir(src)
        .map_err(|e| format!("{}: {e}", src.display()))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", src.display()))?;
    names.sort();
    for name in names {
        let child_rel = match rel {
            "" | "." => name.to_string_lossy().into_owned(),
            r => format!("{r}/{}", name.to_string_lossy()),
        };
        if owner.excluded(&child_rel) {
            continue;
        }
        let path = src.join(&name);
        let meta = fs::symlink_metadata(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        copy_entry(&path, &meta, dest, &name, owner, &child_rel)?;
    }
    Ok(())
}

fn copy_entry(
    src: &Path,
    meta: &fs::Metadata,
    parent: &OwnedFd,
    name: &OsStr,
    owner: Owner<'_>,
    rel: &str,
) -> Result<(), String> {
    let shown = || format!("{}", Path::new(name).display());
    let err = |what: &str, e: nix::errno::Errno| format!("{what} {}: {e}", shown());
    let mode = owner.chmod.unwrap_or(meta.permissions().mode() & 0o7777);
    let existing = nix::sys::stat::fstatat(parent, name, AtFlags::AT_SYMLINK_NOFOLLOW).ok();
    let existing_dir = existing.is_some_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR);
    let t = TimeSpec::new(meta.mtime(), meta.mtime_nsec());
    if meta.is_dir() {
        if !existing_dir {
            if existing.is_some() {
                unlinkat(parent, name, UnlinkatFlags::NoRemoveDir)
                    .map_err(|e| err("replace", e))?;
            }
            mkdirat(parent, name, Mode::from_bits_truncate(0o700)).map_err(|e| err("mkdir", e))?;
        }
        let dir = nix::fcntl::openat(
            parent,
            name,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| err("open directory", e))?;
        fchown(
            &dir,
            Some(Uid::from_raw(owner.uid)),
            Some(Gid::from_raw(owner.gid)),
        )
        .map_err(|e| err("chown", e))?;
        fchmod(&dir, Mode::from_bits_truncate(mode)).map_err(|e| err("chmod", e))?;
        copy_dir_children(src, &dir, owner, rel)?;
        futimens(&dir, &t, &t).map_err(|e| err("set mtime of", e))?;
        return Ok(());
    }
    if existing_dir {
        return Err(format!(
            "cannot replace directory {} with a non-directory",
            shown()
        ));
    }
    if existing.is_some() {
        unlinkat(parent, name, UnlinkatFlags::NoRemoveDir).map_err(|e| err("replace", e))?;
    }
    if meta.file_type().is_symlink() {
        let target = fs::read_link(src).map_err(|e| format!("{}: {e}", src.display()))?;
        symlinkat(target.as_os_str(), parent, name).map_err(|e| err("symlink", e))?;
        fchownat(
            parent,
            name,
            Some(Uid::from_raw(owner.uid)),
            Some(Gid::from_raw(owner.gid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|e| err("chown", e))?;
        utimensat(parent, name, &t, &t, UtimensatFlags::NoFollowSymlink)
            .map_err(|e| err("set mtime of", e))?;
        return Ok(());
    }
    if !meta.is_file() {
        // Devices, fifos, sockets in a build context: Docker refuses them too.
        return Err(format!(
            "{}: only files, directories and symlinks can be copied",
            src.display()
        ));
    }
    let mut input = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(src)
        .map_err(|e| format!("{}: {e}", src.display()))?;
    let cname = CString::new(name.as_bytes()).map_err(|_| "NUL in file name".to_owned())?;
    // SAFETY: valid dir fd and NUL-terminated name; O_EXCL|O_NOFOLLOW never follows a link.
    let fd = unsafe {
        libc::openat(
            parent.as_raw_fd(),
            cname.as_ptr(),
            libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_WRONLY | libc::O_CLOEXEC,
            0o600,
        )
    };
    if fd < 0 {
        return Err(format!(
            "create {}: {}",
            shown(),
            io::Error::last_os_error()
        ));
    }
    // SAFETY: the kernel just returned this descriptor; nothing else owns it.
    let mut out = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    io::copy(&mut input, &mut out).map_err(|e| format!("write {}: {e}", shown()))?;
    // Owner first: chown clears set-id bits that chmod then restores.
    fchown(
        out.as_fd(),
        Some(Uid::from_raw(owner.uid)),
        Some(Gid::from_raw(owner.gid)),
    )
    .map_err(|e| err("chown", e))?;
    fchmod(out.as_fd(), Mode::from_bits_truncate(mode)).map_err(|e| err("chmod", e))?;
    futimens(out.as_fd(), &t, &t).map_err(|e| err("set mtime of", e))?;
    Ok(())
}

/// A local tar (plain, gzip or zstd) that ADD extracts, recognised by content like Docker.
fn is_archive(path: &Path) -> bool {
    let Ok(f) = File::open(path) else {
        return false;
    };
    let Ok(mut stream) = unpack::decompress(f) else {
        return false;
    };
    let mut head = vec![0u8; 512];
    let mut n = 0;
    while n < head.len() {
        match io::Read::read(&mut stream, &mut head[n..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    n == 512 && &head[257..262] == b"ustar"
}

/// Extracts an archive into `dest` inside the image with the layer unpacker (no symlink followed,
/// ownership as in the archive).
fn extract(root: &OwnedFd, archive: &Path, dest: &str) -> Result<(), String> {
    let dir = mounts::open_in_root(root, dest, mounts::Create::Dir)
        .map_err(|e| format!("destination {dest}: {e}"))?;
    // The resolved directory's real path in this (private) mount namespace: nothing else writes
    // here, so it still names the directory just resolved.
    let real = fs::read_link(mounts::fd_path(&dir)).map_err(|e| format!("resolve {dest}: {e}"))?;
    let f = File::open(archive).map_err(|e| format!("{}: {e}", archive.display()))?;
    let stream = unpack::decompress(f).map_err(|e| format!("{}: {e}", archive.display()))?;
    unpack::apply_layer(&real, stream, LayerLimits::default())
        .map(|_| ())
        .map_err(|e| format!("extract {}: {e}", archive.display()))
}
