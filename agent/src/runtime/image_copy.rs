//! Copying what an image holds at one path into a directory of the host, without following any
//! of the image's symlinks: how an anonymous volume starts out with the image's content at its
//! path (Docker's copy of a `VOLUME` into a new volume).
//!
//! The image's view is the overlay of its layers. With one layer that is the layer itself (the
//! overlay whiteouts a lowest layer may hold are skipped, as the overlay hides them); with more,
//! a read-only overlay of them is mounted by a thread that first moves into a mount namespace of
//! its own, as the builder's COPY does (`image/build/copy.rs`): the host never sees the mount, and
//! it goes when the thread ends, also if the agent dies. The path is resolved in the image with
//! `openat2(RESOLVE_IN_ROOT)` (symlinks on the way resolve as if the image were `/`); below it,
//! every entry is opened relative to its parent with `O_NOFOLLOW`, and created in the destination
//! relative to its parent with `O_EXCL|O_NOFOLLOW`, so no symlink can redirect a read or a write.
//!
//! Kept: regular files (with hard links among the copied files), directories, symlinks, fifos and
//! device nodes, each with owner, mode (set-id and sticky bits too) and times. Not kept: extended
//! attributes (file capabilities, ACLs); sockets are skipped. For a container in a user namespace
//! the owners are shifted into its id range (`super::userns`), as the container sees them.

use super::mounts;
use super::userns::IdRange;
use nix::dir::Dir;
use nix::fcntl::{openat, readlinkat, AtFlags, OFlag};
use nix::sys::stat::{
    fchmod, fchmodat, fstat, fstatat, futimens, mkdirat, mknodat, utimensat, FchmodatFlags,
    FileStat, Mode, SFlag, UtimensatFlags,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fchownat, linkat, symlinkat, Gid, Uid};
use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Directories nested deeper below the path are refused (each level holds two descriptors).
const MAX_DEPTH: usize = 256;

/// Copies the content of each `path` in the image made of `layers` (lowest first) into its
/// `dest`, an existing empty directory, and gives `dest` the owner, mode and times of the image's
/// directory. `mountpoint` is an empty directory the overlay of several layers is mounted on, in a
/// mount namespace of its own. With `range` (a user-namespaced container's), owners are shifted
/// into it. Answers, for each path, false when the image has nothing there (nothing is copied);
/// fails when what it has there is not a directory (a volume cannot be mounted over it).
pub fn copy_image_paths(
    layers: &[PathBuf],
    mountpoint: &Path,
    copies: &[(String, PathBuf)],
    range: Option<IdRange>,
) -> io::Result<Vec<bool>> {
    match layers {
        [] => Ok(vec![false; copies.len()]),
        [one] => copy_all(one, copies, range),
        _ => {
            let (layers, mountpoint, copies) =
                (layers.to_vec(), mountpoint.to_owned(), copies.to_vec());
            std::thread::Builder::new()
                .name("hoist-volume-copy".into())
                .spawn(move || in_private_mount_ns(&layers, &mountpoint, &copies, range))?
                .join()
                .map_err(|_| io::Error::other("the volume copy thread panicked"))?
        }
    }
}

fn copy_all(
    root: &Path,
    copies: &[(String, PathBuf)],
    range: Option<IdRange>,
) -> io::Result<Vec<bool>> {
    copies
        .iter()
        .map(|(path, dest)| copy_from_root(root, path, dest, range))
        .collect()
}

fn in_private_mount_ns(
    layers: &[PathBuf],
    mountpoint: &Path,
    copies: &[(String, PathBuf)],
    range: Option<IdRange>,
) -> io::Result<Vec<bool>> {
    // This thread only: it leaves the shared filesystem context for good and ends right after,
    // taking its mount namespace (and the overlay) with it.
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
        .map_err(|e| io::Error::other(format!("unshare mount namespace: {e}")))?;
    mounts::make_private()?;
    let lower: Vec<String> = layers
        .iter()
        .rev()
        .map(|l| l.display().to_string())
        .collect();
    // Only lower dirs: a read-only overlay, nothing is ever written to a layer.
    nix::mount::mount(
        Some("overlay"),
        mountpoint,
        Some("overlay"),
        nix::mount::MsFlags::MS_RDONLY,
        Some(format!("lowerdir={}", lower.join(":")).as_str()),
    )
    .map_err(|e| io::Error::other(format!("mount the image read-only: {e}")))?;
    let result = copy_all(mountpoint, copies, range);
    if let Err(e) = nix::mount::umount2(mountpoint, nix::mount::MntFlags::MNT_DETACH) {
        tracing::warn!(error = %e, "unmount the image's overlay");
    }
    result
}

fn errno(what: impl std::fmt::Display) -> impl FnOnce(nix::errno::Errno) -> io::Error {
    move |e| io::Error::new(io::Error::from(e).kind(), format!("{what}: {e}"))
}

/// Copies `path` of the image whose merged view is the directory `root`.
fn copy_from_root(
    root: &Path,
    path: &str,
    dest: &Path,
    range: Option<IdRange>,
) -> io::Result<bool> {
    let root: OwnedFd = File::open(root)?.into();
    let src = match mounts::lookup_in_root(&root, path) {
        Ok(fd) => fd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(io::Error::new(e.kind(), format!("{path}: {e}"))),
    };
    let st = fstat(&src).map_err(errno(path))?;
    if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{path} is not a directory in the image: a volume cannot be mounted over it"),
        ));
    }
    // The O_PATH descriptor → one that can be read.
    let src = openat(
        &src,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(errno(path))?;
    let dest_fd = nix::fcntl::open(
        dest,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(errno(dest.display()))?;
    let mut copy = Copy {
        dest_root: &dest_fd,
        links: HashMap::new(),
        range,
    };
    copy.children(&src, &dest_fd, Path::new(path), Path::new(""), 0)?;
    let owner = owner(&st, range, Path::new(path))?;
    set_owner_mode_times(&dest_fd, &st, owner).map_err(errno(path))?;
    Ok(true)
}

/// The owner a copy of a file with `st` gets: the same, or shifted into `range`.
fn owner(st: &FileStat, range: Option<IdRange>, shown: &Path) -> io::Result<(u32, u32)> {
    match range {
        None => Ok((st.st_uid, st.st_gid)),
        Some(r) => r.shift(st.st_uid, st.st_gid).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{}: {e}", shown.display()),
            )
        }),
    }
}

struct Copy<'a> {
    /// The destination directory, for hard links (`linkat` relative to it).
    dest_root: &'a OwnedFd,
    /// Files with more than one link already copied: (device, inode) → path below the root.
    links: HashMap<(u64, u64), PathBuf>,
    /// A user namespace's ids, which owners are shifted into.
    range: Option<IdRange>,
}

impl Copy<'_> {
    /// Copies the entries of directory `src` into directory `dst`; `shown` names `src` in
    /// errors, `rel` is `dst` relative to the destination root.
    fn children(
        &mut self,
        src: &OwnedFd,
        dst: &OwnedFd,
        shown: &Path,
        rel: &Path,
        depth: usize,
    ) -> io::Result<()> {
        if depth > MAX_DEPTH {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{}: directories nest more than {MAX_DEPTH} deep",
                    shown.display()
                ),
            ));
        }
        let mut dir = Dir::openat(
            src,
            ".",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(errno(shown.display()))?;
        let mut names: Vec<CString> = Vec::new();
        for entry in dir.iter() {
            let entry = entry.map_err(errno(shown.display()))?;
            let name = entry.file_name();
            if name.to_bytes() != b"." && name.to_bytes() != b".." {
                names.push(name.to_owned());
            }
        }
        drop(dir);
        names.sort();
        for name in names {
            let os = std::ffi::OsStr::from_bytes(name.to_bytes());
            self.entry(src, dst, &name, &shown.join(os), &rel.join(os), depth)?;
        }
        Ok(())
    }

    fn entry(
        &mut self,
        src: &OwnedFd,
        dst: &OwnedFd,
        name: &CStr,
        shown: &Path,
        rel: &Path,
        depth: usize,
    ) -> io::Result<()> {
        let what = shown.display();
        let st = fstatat(src, name, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(errno(&what))?;
        let owner = owner(&st, self.range, shown)?;
        let perm = Mode::from_bits_truncate(st.st_mode & 0o7777);
        match st.st_mode & libc::S_IFMT {
            libc::S_IFDIR => {
                mkdirat(dst, name, Mode::from_bits_truncate(0o700)).map_err(errno(&what))?;
                let dir_flags =
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
                let from = openat(src, name, dir_flags, Mode::empty()).map_err(errno(&what))?;
                let to = openat(dst, name, dir_flags, Mode::empty()).map_err(errno(&what))?;
                self.children(&from, &to, shown, rel, depth + 1)?;
                // Last, so that writing the children does not change the time.
                set_owner_mode_times(&to, &st, owner).map_err(errno(&what))?;
            }
            libc::S_IFREG => {
                let key = (st.st_dev, st.st_ino);
                if st.st_nlink > 1 {
                    if let Some(first) = self.links.get(&key) {
                        return linkat(
                            self.dest_root,
                            first.as_path(),
                            dst,
                            name,
                            AtFlags::empty(),
                        )
                        .map_err(errno(&what));
                    }
                }
                let from = openat(
                    src,
                    name,
                    OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(errno(&what))?;
                let to = openat(
                    dst,
                    name,
                    OFlag::O_CREAT
                        | OFlag::O_EXCL
                        | OFlag::O_NOFOLLOW
                        | OFlag::O_WRONLY
                        | OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o600),
                )
                .map_err(errno(&what))?;
                let (mut from, mut to) = (File::from(from), File::from(to));
                io::copy(&mut from, &mut to)
                    .map_err(|e| io::Error::new(e.kind(), format!("{what}: {e}")))?;
                set_owner_mode_times(&OwnedFd::from(to), &st, owner).map_err(errno(&what))?;
                if st.st_nlink > 1 {
                    self.links.insert(key, rel.to_path_buf());
                }
            }
            libc::S_IFLNK => {
                let target = readlinkat(src, name).map_err(errno(&what))?;
                symlinkat(target.as_os_str(), dst, name).map_err(errno(&what))?;
                own_and_date(dst, name, &st, owner).map_err(errno(&what))?;
            }
            // A 0/0 character device is an overlay whiteout: not a file of the image.
            libc::S_IFCHR if st.st_rdev == 0 => {}
            kind @ (libc::S_IFCHR | libc::S_IFBLK | libc::S_IFIFO) => {
                mknodat(dst, name, SFlag::from_bits_truncate(kind), perm, st.st_rdev)
                    .map_err(errno(&what))?;
                // None of these follows a link: the node was just made, by name, here.
                own_and_date(dst, name, &st, owner).map_err(errno(&what))?;
                fchmodat(dst, name, perm, FchmodatFlags::FollowSymlink).map_err(errno(&what))?;
            }
            // Sockets belong to a process that is not there.
            _ => {}
        }
        Ok(())
    }
}

/// `owner` and the source's times on `name` in `dir`, which is not followed if it is a link.
fn own_and_date(
    dir: &OwnedFd,
    name: &std::ffi::CStr,
    st: &FileStat,
    (uid, gid): (u32, u32),
) -> nix::Result<()> {
    fchownat(
        dir,
        name,
        Some(Uid::from_raw(uid)),
        Some(Gid::from_raw(gid)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )?;
    let (atime, mtime) = times(st);
    utimensat(dir, name, &atime, &mtime, UtimensatFlags::NoFollowSymlink)
}

fn times(st: &FileStat) -> (TimeSpec, TimeSpec) {
    (
        TimeSpec::new(st.st_atime, st.st_atime_nsec),
        TimeSpec::new(st.st_mtime, st.st_mtime_nsec),
    )
}

/// `owner`, then the source's mode and times. Owner first: chown clears set-id bits, which chmod
/// then sets again.
fn set_owner_mode_times(fd: &OwnedFd, st: &FileStat, (uid, gid): (u32, u32)) -> nix::Result<()> {
    fchown(fd, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))?;
    fchmod(fd, Mode::from_bits_truncate(st.st_mode & 0o7777))?;
    let (atime, mtime) = times(st);
    futimens(fd, &atime, &mtime)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    fn layer() -> (tempfile::TempDir, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("layer");
        std::fs::create_dir(&root).unwrap();
        (tmp, root)
    }

    /// One path of a one-layer image (no mount).
    fn copy_one(layer: &Path, path: &str, to: &Path) -> io::Result<bool> {
        let copies = [(path.to_string(), to.to_path_buf())];
        let done = copy_image_paths(
            &[layer.to_path_buf()],
            Path::new("/nonexistent"),
            &copies,
            None,
        )?;
        Ok(done[0])
    }

    fn dest(tmp: &tempfile::TempDir) -> PathBuf {
        let d = tmp.path().join("volume");
        std::fs::create_dir(&d).unwrap();
        d
    }

    #[test]
    fn copies_files_dirs_links_and_modes() {
        let (tmp, root) = layer();
        let data = root.join("var/lib/data");
        std::fs::create_dir_all(data.join("sub/deeper")).unwrap();
        std::fs::write(data.join("seed"), "seeded\n").unwrap();
        std::fs::set_permissions(data.join("seed"), std::fs::Permissions::from_mode(0o4751))
            .unwrap();
        std::fs::write(data.join("sub/deeper/f"), "deep").unwrap();
        std::fs::hard_link(data.join("seed"), data.join("sub/hard")).unwrap();
        std::os::unix::fs::symlink("seed", data.join("rel")).unwrap();
        std::os::unix::fs::symlink("/etc/shadow", data.join("abs")).unwrap();
        nix::unistd::mkfifo(&data.join("fifo"), Mode::from_bits_truncate(0o640)).unwrap();
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o1750)).unwrap();
        let mtime = std::fs::metadata(data.join("sub/deeper")).unwrap().mtime();
        let to = dest(&tmp);

        assert!(copy_one(&root, "/var/lib/data/", &to).unwrap());
        assert_eq!(
            std::fs::read_to_string(to.join("seed")).unwrap(),
            "seeded\n"
        );
        assert_eq!(
            std::fs::read_to_string(to.join("sub/deeper/f")).unwrap(),
            "deep"
        );
        let seed = std::fs::metadata(to.join("seed")).unwrap();
        assert_eq!(seed.permissions().mode() & 0o7777, 0o4751);
        assert_eq!(
            seed.ino(),
            std::fs::metadata(to.join("sub/hard")).unwrap().ino()
        );
        assert_eq!(
            std::fs::read_link(to.join("rel")).unwrap(),
            Path::new("seed")
        );
        assert_eq!(
            std::fs::read_link(to.join("abs")).unwrap(),
            Path::new("/etc/shadow")
        );
        assert!(std::fs::symlink_metadata(to.join("fifo"))
            .unwrap()
            .file_type()
            .is_fifo());
        assert_eq!(
            std::fs::metadata(&to).unwrap().permissions().mode() & 0o7777,
            0o1750,
            "the volume's root takes the image directory's mode"
        );
        assert_eq!(
            std::fs::metadata(to.join("sub/deeper")).unwrap().mtime(),
            mtime
        );
        let me = nix::unistd::geteuid().as_raw();
        assert_eq!(std::fs::metadata(to.join("seed")).unwrap().uid(), me);
    }

    use std::os::unix::fs::FileTypeExt;

    #[test]
    fn owners_are_shifted_into_a_user_namespace_range() {
        let (tmp, root) = layer();
        let data = root.join("data");
        std::fs::create_dir_all(data.join("www")).unwrap();
        std::fs::write(data.join("www/index.html"), "hi").unwrap();
        std::os::unix::fs::symlink("www", data.join("link")).unwrap();
        std::os::unix::fs::lchown(&data, Some(0), Some(0)).unwrap();
        std::os::unix::fs::lchown(data.join("www"), Some(33), Some(33)).unwrap();
        std::os::unix::fs::lchown(data.join("www/index.html"), Some(33), Some(50)).unwrap();
        std::os::unix::fs::lchown(data.join("link"), Some(0), Some(33)).unwrap();
        let to = dest(&tmp);
        let range = IdRange {
            first: 1_000_000,
            count: 65_536,
        };
        let copies = [("/data".to_string(), to.clone())];
        let nowhere = Path::new("/nonexistent");
        assert_eq!(
            copy_image_paths(std::slice::from_ref(&root), nowhere, &copies, Some(range)).unwrap(),
            [true]
        );
        let owner = |p: &Path| {
            let m = std::fs::symlink_metadata(p).unwrap();
            (m.uid(), m.gid())
        };
        assert_eq!(owner(&to), (1_000_000, 1_000_000));
        assert_eq!(owner(&to.join("www")), (1_000_033, 1_000_033));
        assert_eq!(owner(&to.join("www/index.html")), (1_000_033, 1_000_050));
        assert_eq!(owner(&to.join("link")), (1_000_000, 1_000_033));

        // An owner the range cannot hold is refused by name.
        std::os::unix::fs::lchown(data.join("www/index.html"), Some(70_000), Some(0)).unwrap();
        let again = tmp.path().join("again");
        std::fs::create_dir(&again).unwrap();
        let copies = [("/data".to_string(), again)];
        let e = copy_image_paths(&[root], nowhere, &copies, Some(range)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(
            e.to_string()
                .contains("/data/www/index.html: owner 70000:0"),
            "{e}"
        );
    }

    #[test]
    fn a_missing_path_copies_nothing_and_a_file_is_refused() {
        let (tmp, root) = layer();
        std::fs::write(root.join("file"), "x").unwrap();
        let to = dest(&tmp);
        assert!(!copy_one(&root, "/nope", &to).unwrap());
        assert_eq!(std::fs::read_dir(&to).unwrap().count(), 0);
        let e = copy_one(&root, "/file", &to).unwrap_err();
        assert!(e.to_string().contains("not a directory"), "{e}");
    }

    /// The volume path itself resolves inside the image: a symlink to an absolute host path
    /// leads to that path in the image, never to the host's.
    #[test]
    fn the_path_resolves_inside_the_image() {
        let (tmp, root) = layer();
        let outside = tmp.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("secret"), "host").unwrap();
        std::os::unix::fs::symlink(&outside, root.join("data")).unwrap();
        let inside = root.join(outside.strip_prefix("/").unwrap());
        std::fs::create_dir_all(&inside).unwrap();
        std::fs::write(inside.join("mine"), "image").unwrap();
        let to = dest(&tmp);
        assert!(copy_one(&root, "/data", &to).unwrap());
        assert_eq!(std::fs::read_to_string(to.join("mine")).unwrap(), "image");
        assert!(
            !to.join("secret").exists(),
            "the host's directory was not read"
        );
        // A link that climbs out is clamped at the image's root.
        let (tmp, root) = layer();
        std::os::unix::fs::symlink("../../../../../..", root.join("up")).unwrap();
        std::fs::write(root.join("top"), "root of the image").unwrap();
        let to = dest(&tmp);
        assert!(copy_one(&root, "/up", &to).unwrap());
        assert!(to.join("top").exists() && to.join("up").is_symlink());
    }

    /// Several layers, through the overlay (root only: it mounts): a whiteout in the upper layer
    /// hides a lower file, an opaque directory hides the lower one's content, ownership is kept.
    #[test]
    fn several_layers_are_merged_by_the_overlay() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: mounting an overlay needs root");
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let (lower, upper) = (tmp.path().join("l0"), tmp.path().join("l1"));
        std::fs::create_dir_all(lower.join("data/old")).unwrap();
        std::fs::write(lower.join("data/kept"), "lower").unwrap();
        std::fs::write(lower.join("data/gone"), "lower").unwrap();
        std::fs::write(lower.join("data/old/hidden"), "lower").unwrap();
        std::fs::create_dir_all(upper.join("data/old")).unwrap();
        std::fs::write(upper.join("data/new"), "upper").unwrap();
        std::os::unix::fs::chown(upper.join("data/new"), Some(1234), Some(4321)).unwrap();
        std::fs::write(upper.join("data/old/fresh"), "upper").unwrap();
        mknodat(
            nix::fcntl::AT_FDCWD,
            &upper.join("data/gone"),
            SFlag::S_IFCHR,
            Mode::empty(),
            0,
        )
        .unwrap();
        xattr_set(&upper.join("data/old"), "trusted.overlay.opaque", b"y");
        let (mnt, to) = (tmp.path().join("mnt"), tmp.path().join("volume"));
        std::fs::create_dir(&mnt).unwrap();
        std::fs::create_dir(&to).unwrap();
        let copies = [("/data".to_string(), to.clone())];
        assert_eq!(
            copy_image_paths(&[lower, upper], &mnt, &copies, None).unwrap(),
            [true]
        );
        let mut names: Vec<String> = std::fs::read_dir(&to)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["kept", "new", "old"]);
        assert!(!to.join("old/hidden").exists() && to.join("old/fresh").exists());
        let new = std::fs::metadata(to.join("new")).unwrap();
        assert_eq!((new.uid(), new.gid()), (1234, 4321));
        assert_eq!(
            std::fs::read_dir(&mnt).unwrap().count(),
            0,
            "not mounted here"
        );
    }

    fn xattr_set(path: &Path, name: &str, value: &[u8]) {
        let (p, n) = (
            CString::new(path.as_os_str().as_bytes()).unwrap(),
            CString::new(name).unwrap(),
        );
        // SAFETY: NUL-terminated strings and a buffer of the length given, all outliving the call.
        let rc = unsafe {
            libc::lsetxattr(
                p.as_ptr(),
                n.as_ptr(),
                value.as_ptr().cast(),
                value.len(),
                0,
            )
        };
        assert_eq!(rc, 0, "setxattr: {}", io::Error::last_os_error());
    }
}
