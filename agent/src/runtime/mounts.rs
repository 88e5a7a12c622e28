//! The container's filesystem view: the overlay rootfs, `/proc`, a minimal `/dev`, read-only `/sys`,
//! bind mounts, masked and read-only kernel paths, and `pivot_root`.
//!
//! Every path inside the rootfs comes from the image and may be a hostile symlink (`/dev -> /`,
//! a volume target swapped for a symlink mid-start: CVE-2021-30465). So targets are resolved with
//! `openat2(RESOLVE_IN_ROOT)` relative to an fd of the rootfs, and mounts are made onto
//! `/proc/self/fd/N` of the resolved fd: a symlink can only ever lead somewhere inside the rootfs,
//! and the mount lands on exactly the inode that was checked.

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{mknodat, Mode, SFlag};
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

/// What to create when a path inside the rootfs does not exist yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Create {
    Dir,
    File,
}

fn openat2(dirfd: &OwnedFd, path: &str, flags: i32, resolve: u64) -> io::Result<OwnedFd> {
    let c = CString::new(path)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path has a NUL byte"))?;
    // SAFETY: open_how is plain integers; all-zero is its documented default.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.resolve = resolve;
    // SAFETY: `c` and `how` outlive the call; the size passed is the struct's own.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dirfd.as_raw_fd(),
            c.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

const IN_ROOT: u64 = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;

/// Opens `path` (absolute or relative, interpreted inside `root`) as an `O_PATH` fd, creating
/// missing directories and, for [`Create::File`], an empty final file. Symlinks resolve as if
/// `root` were `/`.
pub fn open_in_root(root: &OwnedFd, path: &str, create: Create) -> io::Result<OwnedFd> {
    let rel = path.trim_start_matches('/');
    if rel.is_empty() {
        return openat2(root, ".", libc::O_PATH | libc::O_DIRECTORY, IN_ROOT);
    }
    match openat2(root, rel, libc::O_PATH, IN_ROOT) {
        Ok(fd) => return Ok(fd),
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(ctx(e, path)),
        Err(_) => {}
    }
    // Walk down, creating what is missing, each step resolved inside the root again.
    let parts: Vec<&str> = rel
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    let mut prefix = String::new();
    let mut parent = openat2(root, ".", libc::O_PATH | libc::O_DIRECTORY, IN_ROOT)?;
    for (i, part) in parts.iter().enumerate() {
        if *part == ".." {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{path}: '..' is not allowed"),
            ));
        }
        if !prefix.is_empty() {
            prefix.push('/');
        }
        prefix.push_str(part);
        let last = i + 1 == parts.len();
        match openat2(root, &prefix, libc::O_PATH, IN_ROOT) {
            Ok(fd) => {
                parent = fd;
                continue;
            }
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(ctx(e, path)),
            Err(_) => {}
        }
        let name = CString::new(*part)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))?;
        if last && create == Create::File {
            // SAFETY: valid fd and NUL-terminated name; O_EXCL|O_NOFOLLOW never follows a link.
            let fd = unsafe {
                libc::openat(
                    parent.as_raw_fd(),
                    name.as_ptr(),
                    libc::O_CREAT
                        | libc::O_EXCL
                        | libc::O_NOFOLLOW
                        | libc::O_WRONLY
                        | libc::O_CLOEXEC,
                    0o644,
                )
            };
            if fd < 0 {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::AlreadyExists {
                    return Err(ctx(e, path));
                }
            } else {
                // SAFETY: fd was just returned by openat.
                drop(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        } else {
            // SAFETY: valid fd and NUL-terminated name.
            let rc = unsafe { libc::mkdirat(parent.as_raw_fd(), name.as_ptr(), 0o755) };
            if rc != 0 {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::AlreadyExists {
                    return Err(ctx(e, path));
                }
            }
        }
        parent = openat2(root, &prefix, libc::O_PATH, IN_ROOT).map_err(|e| ctx(e, path))?;
    }
    Ok(parent)
}

/// Opens `path` inside `root` as an `O_PATH` fd without creating anything (symlinks resolve as
/// if `root` were `/`).
pub fn lookup_in_root(root: &OwnedFd, path: &str) -> io::Result<OwnedFd> {
    let rel = path.trim_start_matches('/');
    let rel = if rel.is_empty() { "." } else { rel };
    openat2(root, rel, libc::O_PATH, IN_ROOT)
}

fn ctx(e: io::Error, path: &str) -> io::Error {
    io::Error::new(e.kind(), format!("{path}: {e}"))
}

/// Reads a small file of an image layer (or any rootfs) as the container would see it: symlinks
/// resolve inside `root`, never to the host's files. At most `limit` bytes.
pub fn read_in_root(root: &Path, path: &str, limit: u64) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let dir: OwnedFd = std::fs::File::open(root)?.into();
    let fd = openat2(&dir, path.trim_start_matches('/'), libc::O_RDONLY, IN_ROOT)?;
    let mut out = Vec::new();
    std::fs::File::from(fd).take(limit).read_to_end(&mut out)?;
    Ok(out)
}

/// The `/proc/self/fd/N` path that names exactly the inode behind `fd`.
pub fn fd_path(fd: &OwnedFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

fn mnt(
    source: Option<&str>,
    target: &str,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> io::Result<()> {
    mount(source, target, fstype, flags, data)
        .map_err(|e| mount_error(fstype.or(source).unwrap_or(""), target, e))
}

/// What a failed mount says: what was mounted, where, and why.
fn mount_error(what: &str, target: &str, e: nix::errno::Errno) -> io::Error {
    io::Error::other(format!("mount {what} on {target}: {e}"))
}

/// Makes every mount in the new namespace private, so nothing the container mounts reaches the host.
pub fn make_private() -> io::Result<()> {
    mnt(None, "/", None, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None)
}

/// Mounts the overlay: `layers` lowest first, the container's own upper and work dirs.
///
/// `volatile` is for a container removed when it exits (`--rm`): the overlay never syncs its
/// upper directory (Linux 5.10's `volatile`). Not at the container's `fsync`, and not at unmount.
/// Otherwise that unmount flushes the disk, inside the exit of the container's last process,
/// before its supervisor hears of the exit. The price: the upper's writes are lost if the host
/// crashes, and a volatile upper never mounts again. Neither matters to a layer that goes with
/// its container; a container's overlay is mounted once. A kernel without `volatile` refuses
/// it (EINVAL); the overlay is then mounted as usual.
pub fn mount_overlay(
    layers: &[impl AsRef<Path>],
    upper: &Path,
    work: &Path,
    target: &Path,
    volatile: bool,
) -> io::Result<()> {
    let target = target.display().to_string();
    if volatile {
        let data = overlay_options(layers, upper, work, true);
        match mount(
            Some("overlay"),
            target.as_str(),
            Some("overlay"),
            MsFlags::empty(),
            Some(data.as_str()),
        ) {
            // A kernel without `volatile`.
            Err(nix::errno::Errno::EINVAL) => {}
            other => return other.map_err(|e| mount_error("overlay", &target, e)),
        }
    }
    let data = overlay_options(layers, upper, work, false);
    mnt(
        Some("overlay"),
        &target,
        Some("overlay"),
        MsFlags::empty(),
        Some(&data),
    )
}

/// The overlay's mount options: `layers` lowest first (overlayfs lists the topmost first).
/// Pure.
fn overlay_options(
    layers: &[impl AsRef<Path>],
    upper: &Path,
    work: &Path,
    volatile: bool,
) -> String {
    let lower: Vec<String> = layers
        .iter()
        .rev()
        .map(|l| l.as_ref().display().to_string())
        .collect();
    format!(
        "lowerdir={},upperdir={},workdir={}{}",
        lower.join(":"),
        upper.display(),
        work.display(),
        if volatile { ",volatile" } else { "" }
    )
}

/// Mounts a read-only overlay of `layers` (lowest first; at least two: the kernel needs two
/// lower directories when there is no upper one) on `target`.
pub fn mount_overlay_ro(layers: &[impl AsRef<Path>], target: &Path) -> io::Result<()> {
    let lower: Vec<String> = layers
        .iter()
        .rev()
        .map(|l| l.as_ref().display().to_string())
        .collect();
    mnt(
        Some("overlay"),
        &target.display().to_string(),
        Some("overlay"),
        MsFlags::MS_RDONLY,
        Some(&format!("lowerdir={}", lower.join(":"))),
    )
}

const NOSUID_NODEV_NOEXEC: MsFlags = MsFlags::MS_NOSUID
    .union(MsFlags::MS_NODEV)
    .union(MsFlags::MS_NOEXEC);

/// Mounts `/proc`, `/dev` (with its standard nodes, `pts`, `shm`, `mqueue`) and a read-only `/sys`
/// into the rootfs. With a user namespace's `range`, `/dev` and `/dev/shm` belong to the
/// container's root and `/dev/pts`'s terminals to its `tty` group (5).
pub fn mount_kernel_filesystems(
    root: &OwnedFd,
    range: Option<super::userns::IdRange>,
) -> io::Result<()> {
    let owner = owner_options(range);
    let proc_dir = open_in_root(root, "/proc", Create::Dir)?;
    mnt(
        Some("proc"),
        &fd_path(&proc_dir),
        Some("proc"),
        NOSUID_NODEV_NOEXEC,
        None,
    )?;

    let sys = open_in_root(root, "/sys", Create::Dir)?;
    mnt(
        Some("sysfs"),
        &fd_path(&sys),
        Some("sysfs"),
        NOSUID_NODEV_NOEXEC | MsFlags::MS_RDONLY,
        None,
    )?;

    let dev = open_in_root(root, "/dev", Create::Dir)?;
    mnt(
        Some("tmpfs"),
        &fd_path(&dev),
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
        Some(&format!("mode=755,size=65536k{owner}")),
    )?;
    // Re-open: the fd above names the directory below the new tmpfs.
    let dev = open_in_root(root, "/dev", Create::Dir)?;
    let devfd = openat2(
        &dev,
        ".",
        libc::O_DIRECTORY | libc::O_RDONLY,
        libc::RESOLVE_BENEATH,
    )?;
    for (name, major, minor) in [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ] {
        mknodat(
            &devfd,
            name,
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o666),
            nix::sys::stat::makedev(major, minor),
        )
        .map_err(|e| io::Error::other(format!("mknod /dev/{name}: {e}")))?;
    }
    for (name, mode) in [("pts", 0o755), ("shm", 0o1777), ("mqueue", 0o1777)] {
        nix::sys::stat::mkdirat(&devfd, name, Mode::from_bits_truncate(mode))
            .map_err(|e| io::Error::other(format!("mkdir /dev/{name}: {e}")))?;
    }
    for (link, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
        ("core", "/proc/kcore"),
    ] {
        nix::unistd::symlinkat(target, &devfd, link)
            .map_err(|e| io::Error::other(format!("symlink /dev/{link}: {e}")))?;
    }
    let sub = |name: &str| {
        openat2(
            &devfd,
            name,
            libc::O_PATH,
            libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS,
        )
    };
    mnt(
        Some("devpts"),
        &fd_path(&sub("pts")?),
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some(&format!(
            "newinstance,ptmxmode=0666,mode=0620,gid={}",
            range.and_then(|r| r.to_host(5)).unwrap_or(5)
        )),
    )?;
    mnt(
        Some("shm"),
        &fd_path(&sub("shm")?),
        Some("tmpfs"),
        NOSUID_NODEV_NOEXEC,
        Some(&format!("mode=1777,size=65536k{owner}")),
    )?;
    mnt(
        Some("mqueue"),
        &fd_path(&sub("mqueue")?),
        Some("mqueue"),
        NOSUID_NODEV_NOEXEC,
        None,
    )?;
    Ok(())
}

/// Mounts the container's own cgroups read-only at `/sys/fs/cgroup`, as Docker does. Called after
/// the cgroup namespace is unshared, so the container sees its own cgroup as the root and can read
/// its limits but not change them.
pub fn mount_cgroups(root: &OwnedFd, cgroup: &super::cgroup::CgroupHandle) -> io::Result<()> {
    use super::cgroup::CgroupHandle;
    let target = open_in_root(root, "/sys/fs/cgroup", Create::Dir)?;
    let ro = NOSUID_NODEV_NOEXEC | MsFlags::MS_RDONLY;
    match cgroup {
        CgroupHandle::V2 { .. } => mnt(
            Some("cgroup2"),
            &fd_path(&target),
            Some("cgroup2"),
            ro,
            None,
        ),
        CgroupHandle::V1 { dirs } => {
            mnt(
                Some("tmpfs"),
                &fd_path(&target),
                Some("tmpfs"),
                NOSUID_NODEV_NOEXEC,
                Some("mode=755,size=64k"),
            )?;
            let cg = open_in_root(root, "/sys/fs/cgroup", Create::Dir)?;
            let cgdir = openat2(
                &cg,
                ".",
                libc::O_DIRECTORY | libc::O_RDONLY,
                libc::RESOLVE_BENEATH,
            )?;
            for controller in dirs.keys() {
                nix::sys::stat::mkdirat(
                    &cgdir,
                    controller.as_str(),
                    Mode::from_bits_truncate(0o755),
                )
                .map_err(|e| io::Error::other(format!("mkdir /sys/fs/cgroup/{controller}: {e}")))?;
                let sub = openat2(
                    &cgdir,
                    controller,
                    libc::O_PATH,
                    libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS,
                )?;
                mnt(
                    Some("cgroup"),
                    &fd_path(&sub),
                    Some("cgroup"),
                    ro,
                    Some(controller),
                )?;
            }
            mnt(
                None,
                &fd_path(&cg),
                None,
                MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | NOSUID_NODEV_NOEXEC,
                None,
            )
        }
    }
}

/// Bind-mounts `source` (a host path) onto `target` inside the rootfs, read-only if asked.
pub fn bind_into(root: &OwnedFd, source: &Path, target: &str, read_only: bool) -> io::Result<()> {
    let meta = std::fs::metadata(source)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", source.display())))?;
    let kind = if meta.is_dir() {
        Create::Dir
    } else {
        Create::File
    };
    let fd = open_in_root(root, target, kind)?;
    let src = source.display().to_string();
    mnt(
        Some(&src),
        &fd_path(&fd),
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
    )?;
    if read_only {
        let fd = open_in_root(root, target, kind)?;
        mnt(
            None,
            &fd_path(&fd),
            None,
            MsFlags::MS_REMOUNT
                | MsFlags::MS_BIND
                | MsFlags::MS_RDONLY
                | MsFlags::MS_NOSUID
                | MsFlags::MS_NODEV,
            None,
        )?;
    }
    Ok(())
}

/// Mounts a fresh tmpfs on `target` inside the rootfs: `nosuid,nodev` (Docker's flags), with the
/// size and mode asked (default mode `1777`, default size the kernel's), its root the
/// container root's.
pub fn tmpfs_into(
    root: &OwnedFd,
    t: &hoist_proto::TmpfsMount,
    range: Option<super::userns::IdRange>,
) -> io::Result<()> {
    let fd = open_in_root(root, &t.target, Create::Dir)?;
    let mut flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    if t.read_only {
        flags |= MsFlags::MS_RDONLY;
    }
    mnt(
        Some("tmpfs"),
        &fd_path(&fd),
        Some("tmpfs"),
        flags,
        Some(&format!("{}{}", tmpfs_options(t), owner_options(range))),
    )
    .map_err(|e| io::Error::other(format!("tmpfs {}: {e}", t.target)))
}

/// The tmpfs's mount data: `mode=1777[,size=BYTES]`. Pure.
pub fn tmpfs_options(t: &hoist_proto::TmpfsMount) -> String {
    let mut data = format!("mode={:o}", t.mode.unwrap_or(0o1777));
    if let Some(size) = t.size_bytes {
        data.push_str(&format!(",size={size}"));
    }
    data
}

/// `,uid=N,gid=N` making a tmpfs's root the container root's in a user namespace (`range`);
/// nothing without one. Pure.
pub fn owner_options(range: Option<super::userns::IdRange>) -> String {
    match range {
        Some(r) => format!(",uid={0},gid={0}", r.first),
        None => String::new(),
    }
}

/// Makes `rootfs` the process's `/` and detaches the old root.
pub fn pivot_root(rootfs: &OwnedFd) -> io::Result<()> {
    nix::unistd::fchdir(rootfs).map_err(|e| io::Error::other(format!("chdir rootfs: {e}")))?;
    nix::unistd::pivot_root(".", ".").map_err(|e| io::Error::other(format!("pivot_root: {e}")))?;
    umount2(".", MntFlags::MNT_DETACH)
        .map_err(|e| io::Error::other(format!("detach old root: {e}")))?;
    nix::unistd::chdir("/").map_err(|e| io::Error::other(format!("chdir /: {e}")))?;
    Ok(())
}

/// Paths hidden from the container (Docker's defaults): files get `/dev/null` over them,
/// directories an empty read-only tmpfs.
pub const MASKED_PATHS: [&str; 11] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths the container may read but not write.
pub const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Applies [`MASKED_PATHS`] and [`READONLY_PATHS`]; runs after `pivot_root`. Paths the kernel
/// does not have are skipped.
pub fn protect_kernel_paths() -> io::Result<()> {
    for path in MASKED_PATHS {
        match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => mnt(
                Some("tmpfs"),
                path,
                Some("tmpfs"),
                MsFlags::MS_RDONLY,
                Some("size=0"),
            )?,
            Ok(_) => mnt(Some("/dev/null"), path, None, MsFlags::MS_BIND, None)?,
            Err(_) => {}
        }
    }
    for path in READONLY_PATHS {
        if Path::new(path).exists() {
            mnt(
                Some(path),
                path,
                None,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None,
            )?;
            mnt(
                None,
                path,
                None,
                MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY | MsFlags::MS_REC,
                None,
            )?;
        }
    }
    Ok(())
}

/// `--read-only`: remounts `/` read-only (the container's `/dev`, `/proc` and volumes keep their modes).
pub fn remount_root_readonly() -> io::Result<()> {
    mnt(
        None,
        "/",
        None,
        MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY,
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root_fd(dir: &Path) -> OwnedFd {
        OwnedFd::from(std::fs::File::open(dir).unwrap())
    }

    #[test]
    fn overlay_options_list_the_topmost_layer_first_and_volatile_last() {
        let layers = [Path::new("/l/base"), Path::new("/l/top")];
        let (upper, work) = (Path::new("/c/upper"), Path::new("/c/work"));
        assert_eq!(
            overlay_options(&layers, upper, work, false),
            "lowerdir=/l/top:/l/base,upperdir=/c/upper,workdir=/c/work"
        );
        assert_eq!(
            overlay_options(&layers, upper, work, true),
            "lowerdir=/l/top:/l/base,upperdir=/c/upper,workdir=/c/work,volatile"
        );
    }

    #[test]
    fn creates_missing_dirs_and_files_inside() {
        let tmp = tempfile::tempdir().unwrap();
        let root = root_fd(tmp.path());
        open_in_root(&root, "/a/b/c", Create::Dir).unwrap();
        assert!(tmp.path().join("a/b/c").is_dir());
        open_in_root(&root, "/etc/hosts", Create::File).unwrap();
        assert!(tmp.path().join("etc/hosts").is_file());
    }

    #[test]
    fn hostile_symlinks_stay_inside() {
        let tmp = tempfile::tempdir().unwrap();
        let rootdir = tmp.path().join("root");
        std::fs::create_dir(&rootdir).unwrap();
        let outside = tmp.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::create_dir_all(rootdir.join(outside.strip_prefix("/").unwrap())).unwrap();
        // /dev -> an absolute path that exists on the host (and, re-rooted, in the image);
        // /x -> ../../outside, which climbs above the root; /y -> a dangling target.
        std::os::unix::fs::symlink(&outside, rootdir.join("dev")).unwrap();
        std::os::unix::fs::symlink("../../outside", rootdir.join("x")).unwrap();
        std::os::unix::fs::symlink("/nowhere", rootdir.join("y")).unwrap();
        let root = root_fd(&rootdir);
        // Contained: the absolute link resolves inside the root.
        open_in_root(&root, "/dev/pts", Create::Dir).unwrap();
        assert!(rootdir
            .join(outside.strip_prefix("/").unwrap())
            .join("pts")
            .is_dir());
        // `..` is clamped at the root: ../../outside is /outside inside the image, which is missing.
        let e = open_in_root(&root, "/x/file", Create::File).unwrap_err();
        assert!(e.to_string().starts_with("/x/file"), "{e}");
        assert!(
            open_in_root(&root, "/y/z", Create::Dir).is_err(),
            "a dangling link is refused"
        );
        assert_eq!(
            std::fs::read_dir(&outside).unwrap().count(),
            0,
            "nothing may appear outside the root"
        );
        assert!(!Path::new("/nowhere").exists());
    }

    #[test]
    fn dotdot_is_refused_when_creating() {
        let tmp = tempfile::tempdir().unwrap();
        let root = root_fd(tmp.path());
        // An existing path with .. is clamped at the root by the kernel; creating through .. is refused.
        assert!(open_in_root(&root, "/../../nope/x", Create::Dir).is_err());
    }
}
