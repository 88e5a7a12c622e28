//! The files of a container's secrets and configs: their layout in its volatile directory, and
//! how the container sees them.
//!
//! Why this layout (Kubernetes' projected volumes, its `AtomicWriter`): a new version must
//! replace the files at once, never showing a half-written file or a mix of old and new ones.
//! So every set of contents is written whole into a fresh directory, `..vN`, and published by
//! renaming a symlink over `..data`, which is one atomic `rename(2)`:
//!
//! ```text
//! DATA/run/ID/files/
//!   ..v2/0  ..v2/1     one file per reference of the spec (its index), with its mode and owner
//!   ..data -> ..v2     what the container reads
//! ```
//!
//! The container gets `files` bind-mounted read-only, `nosuid,nodev,noexec`, at
//! [`MOUNT_POINT`], and the target of each reference becomes a symlink into `..data`
//! (`/run/secrets/db-pass -> /run/.hoist-files/..data/0`): a reader that opens the target after
//! the rename gets the new file, one that opened it before keeps reading the old one.
//!
//! `DATA/run` is the agent's own tmpfs ([`super::run_dir`]): the content never reaches a disk.
//! Writing is plain file-system work, tested on a temp dir; [`mount_into`] runs in the
//! container's first process, among its other mounts.

use super::mounts::{self, Create};
use nix::mount::{mount, MsFlags};
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Where the container sees its files directory.
pub const MOUNT_POINT: &str = "/run/.hoist-files";

/// The symlink naming the published generation.
const DATA: &str = "..data";
/// The symlink made before it is renamed over [`DATA`].
const DATA_TMP: &str = "..data.tmp";

/// `..vN`: the directory of generation `n`.
pub fn generation_name(n: u64) -> String {
    format!("..v{n}")
}

/// The generation a directory name stands for (`..v12` is 12); `None` for any other name. Pure.
pub fn parse_generation(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("..v")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// What the target of reference `index` points to, inside the container. Pure.
pub fn link_target(index: usize) -> String {
    format!("{MOUNT_POINT}/{DATA}/{index}")
}

/// What one file of a generation holds.
#[derive(Clone, Copy)]
pub enum Content<'a> {
    /// New content.
    Bytes(&'a [u8]),
    /// The same file as in the previous generation (hard-linked: same content, mode, owner).
    Keep,
}

/// One file of a generation: its content, mode and owner (host ids: a user-namespaced
/// container's are already shifted into its range).
#[derive(Clone, Copy)]
pub struct Entry<'a> {
    pub content: Content<'a>,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// Never shows the content: its size only.
impl std::fmt::Debug for Content<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Content::Bytes(b) => write!(f, "<{} bytes>", b.len()),
            Content::Keep => f.write_str("kept"),
        }
    }
}

impl std::fmt::Debug for Entry<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("content", &self.content)
            .field("mode", &format_args!("{:o}", self.mode))
            .field("uid", &self.uid)
            .field("gid", &self.gid)
            .finish()
    }
}

fn ctx(e: io::Error, what: &str, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

/// Makes the files directory `dir` (its parent must exist: the container's volatile directory,
/// never made again by a late writer after a removal).
pub fn create_dir(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .mode(0o755)
        .create(dir)
        .map_err(|e| ctx(e, "create", dir))?;
    // Whatever the agent's umask: every user of the container must reach its own files.
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).map_err(|e| ctx(e, "chmod", dir))
}

/// Writes generation `n` into `dir/..vN`, entry `i` as file `i`. `previous` is the generation
/// [`Content::Keep`] entries are linked from. A leftover `..vN` of a write that was cut short
/// (never published) is replaced; the published generation never is.
pub fn write_generation(
    dir: &Path,
    n: u64,
    previous: Option<u64>,
    entries: &[Entry<'_>],
) -> io::Result<()> {
    if current_generation(dir)? == Some(n) {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{}: generation {n} is the published one", dir.display()),
        ));
    }
    let target = dir.join(generation_name(n));
    match fs::remove_dir_all(&target) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(ctx(e, "remove the leftover", &target)),
    }
    create_dir(&target)?;
    for (i, e) in entries.iter().enumerate() {
        let path = target.join(i.to_string());
        match e.content {
            Content::Bytes(data) => write_file(&path, data, e.mode, e.uid, e.gid)?,
            Content::Keep => {
                let prev = previous.ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("file {i} is to be kept, but there is no previous generation"),
                    )
                })?;
                let from = dir.join(generation_name(prev)).join(i.to_string());
                fs::hard_link(&from, &path).map_err(|e| ctx(e, "link", &from))?;
            }
        }
    }
    Ok(())
}

/// A new file with `data`, then its owner and mode (the owner first: `chown` clears set-id
/// bits). Never follows a symlink, never opens an existing file.
fn write_file(path: &Path, data: &[u8], mode: u32, uid: u32, gid: u32) -> io::Result<()> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| ctx(e, "create", path))?;
    f.write_all(data).map_err(|e| ctx(e, "write", path))?;
    std::os::unix::fs::fchown(&f, Some(uid), Some(gid)).map_err(|e| ctx(e, "chown", path))?;
    f.set_permissions(fs::Permissions::from_mode(mode & 0o7777))
        .map_err(|e| ctx(e, "chmod", path))
}

/// Publishes generation `n`: `..data.tmp -> ..vN`, renamed over `..data` (atomic).
pub fn publish(dir: &Path, n: u64) -> io::Result<()> {
    let tmp = dir.join(DATA_TMP);
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(ctx(e, "remove", &tmp)),
    }
    std::os::unix::fs::symlink(generation_name(n), &tmp).map_err(|e| ctx(e, "symlink", &tmp))?;
    let data = dir.join(DATA);
    fs::rename(&tmp, &data).map_err(|e| ctx(e, "rename onto", &data))
}

/// The published generation: where `..data` points; `None` before the first.
pub fn current_generation(dir: &Path) -> io::Result<Option<u64>> {
    let data = dir.join(DATA);
    match fs::read_link(&data) {
        Ok(to) => Ok(to.to_str().and_then(parse_generation)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ctx(e, "read", &data)),
    }
}

/// Removes every generation but `keep` (and a `..data.tmp` left by a cut-short publish).
/// Answers how many directories went.
pub fn remove_other_generations(dir: &Path, keep: u64) -> io::Result<usize> {
    let mut removed = 0;
    for entry in fs::read_dir(dir).map_err(|e| ctx(e, "read", dir))? {
        let entry = entry.map_err(|e| ctx(e, "read", dir))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name == DATA_TMP {
            fs::remove_file(entry.path()).map_err(|e| ctx(e, "remove", &entry.path()))?;
        } else if parse_generation(&name).is_some_and(|n| n != keep) {
            fs::remove_dir_all(entry.path()).map_err(|e| ctx(e, "remove", &entry.path()))?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Removes the files directory and everything in it (nothing there is kept).
pub fn remove(dir: &Path) -> io::Result<()> {
    match fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ctx(e, "remove", dir)),
    }
}

/// What the container's first process mounts and links (in the runtime spec): no content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilesMount {
    /// The files directory, `DATA/run/ID/files`.
    pub source: PathBuf,
    /// The target of each reference, by index.
    pub targets: Vec<String>,
    /// The host id of the container's root in a user namespace: the symlinks get it as their
    /// owner (a sticky directory lets others follow only links its owner or the follower owns).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<u32>,
}

/// In the container's first process, after its own mounts (so a tmpfs or volume at `/run` does
/// not hide them) and before `pivot_root` and a read-only root: bind-mounts the files directory
/// at [`MOUNT_POINT`], then makes each target a symlink into it.
pub fn mount_into(root: &OwnedFd, m: &FilesMount) -> io::Result<()> {
    let fd = mounts::open_in_root(root, MOUNT_POINT, Create::Dir)?;
    let source = m.source.display().to_string();
    let at = mounts::fd_path(&fd);
    mount(
        Some(source.as_str()),
        at.as_str(),
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| io::Error::other(format!("bind {source} on {MOUNT_POINT}: {e}")))?;
    // Re-opened: the fd above names the directory below the new mount.
    let fd = mounts::open_in_root(root, MOUNT_POINT, Create::Dir)?;
    let at = mounts::fd_path(&fd);
    mount(
        None::<&str>,
        at.as_str(),
        None::<&str>,
        MsFlags::MS_REMOUNT
            | MsFlags::MS_BIND
            | MsFlags::MS_RDONLY
            | MsFlags::MS_NOSUID
            | MsFlags::MS_NODEV
            | MsFlags::MS_NOEXEC,
        None::<&str>,
    )
    .map_err(|e| io::Error::other(format!("remount {MOUNT_POINT} read-only: {e}")))?;
    for (i, target) in m.targets.iter().enumerate() {
        link_into(root, target, &link_target(i), m.owner)?;
    }
    Ok(())
}

/// Makes `target` (inside `root`) a symlink to `points_to`: its parent directories are made if
/// missing (resolved inside the root: an image's symlink cannot lead out), and what the image
/// has at that path (a file, a link, an empty directory) is replaced.
pub fn link_into(
    root: &OwnedFd,
    target: &str,
    points_to: &str,
    owner: Option<u32>,
) -> io::Result<()> {
    let err = |e: nix::errno::Errno, what: &str| {
        io::Error::new(io::Error::from(e).kind(), format!("{target}: {what}: {e}"))
    };
    let trimmed = target.trim_end_matches('/');
    let (parent, name) = match trimmed.rsplit_once('/') {
        Some((p, n)) if !n.is_empty() && n != "." && n != ".." => {
            (if p.is_empty() { "/" } else { p }, n)
        }
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{target:?} does not name a file"),
            ))
        }
    };
    let dir = mounts::open_in_root(root, parent, Create::Dir)
        .map_err(|e| io::Error::new(e.kind(), format!("{target}: {e}")))?;
    use nix::unistd::{unlinkat, UnlinkatFlags};
    match unlinkat(&dir, name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) => {}
        Err(nix::errno::Errno::ENOENT) => {}
        Err(nix::errno::Errno::EISDIR) => unlinkat(&dir, name, UnlinkatFlags::RemoveDir)
            .map_err(|e| err(e, "replace the directory there"))?,
        Err(e) => return Err(err(e, "replace what is there")),
    }
    nix::unistd::symlinkat(points_to, &dir, name).map_err(|e| err(e, "symlink"))?;
    if let Some(id) = owner {
        nix::unistd::fchownat(
            &dir,
            name,
            Some(nix::unistd::Uid::from_raw(id)),
            Some(nix::unistd::Gid::from_raw(id)),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|e| err(e, "chown the symlink"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn me() -> (u32, u32) {
        (
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw(),
        )
    }

    fn entry(data: &[u8], mode: u32) -> Entry<'_> {
        let (uid, gid) = me();
        Entry {
            content: Content::Bytes(data),
            mode,
            uid,
            gid,
        }
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    /// What the container reads at reference `i`, through `..data` as it does.
    fn read(dir: &Path, i: usize) -> String {
        fs::read_to_string(dir.join(DATA).join(i.to_string())).unwrap()
    }

    fn files_dir(tmp: &tempfile::TempDir) -> PathBuf {
        let dir = tmp.path().join("files");
        create_dir(&dir).unwrap();
        dir
    }

    #[test]
    fn generation_names_read_back_and_nothing_else_does() {
        assert_eq!(generation_name(12), "..v12");
        assert_eq!(parse_generation("..v12"), Some(12));
        for other in [
            "..v",
            "..v+1",
            "..v1x",
            "..data",
            "..data.tmp",
            "v1",
            "..v-1",
        ] {
            assert_eq!(parse_generation(other), None, "{other}");
        }
        assert_eq!(link_target(3), "/run/.hoist-files/..data/3");
    }

    #[test]
    fn a_generation_is_written_whole_with_modes_and_published() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = files_dir(&tmp);
        assert_eq!(current_generation(&dir).unwrap(), None);
        write_generation(
            &dir,
            1,
            None,
            &[entry(b"s3cret", 0o400), entry(b"conf", 0o644)],
        )
        .unwrap();
        // Written but not published: nothing to read yet.
        assert_eq!(current_generation(&dir).unwrap(), None);
        publish(&dir, 1).unwrap();
        assert_eq!(current_generation(&dir).unwrap(), Some(1));
        assert_eq!(names(&dir), ["..data", "..v1"]);
        assert_eq!(
            fs::read_link(dir.join("..data")).unwrap(),
            Path::new("..v1")
        );
        assert_eq!(
            (read(&dir, 0), read(&dir, 1)),
            ("s3cret".into(), "conf".into())
        );
        let meta = fs::metadata(dir.join("..v1/0")).unwrap();
        assert_eq!(meta.mode() & 0o7777, 0o400);
        assert_eq!((meta.uid(), meta.gid()), me());
        assert_eq!(
            fs::metadata(dir.join("..v1/1")).unwrap().mode() & 0o7777,
            0o644
        );
        assert_eq!(
            fs::metadata(dir.join("..v1")).unwrap().mode() & 0o7777,
            0o755
        );
        assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o7777, 0o755);
    }

    #[test]
    fn a_rotation_swaps_every_file_at_once_and_keeps_unchanged_ones() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = files_dir(&tmp);
        write_generation(
            &dir,
            1,
            None,
            &[entry(b"old", 0o400), entry(b"conf", 0o644)],
        )
        .unwrap();
        publish(&dir, 1).unwrap();
        // A reader that opened the old file before the swap.
        let mut before = fs::File::open(dir.join("..data/0")).unwrap();
        let (uid, gid) = me();
        let kept = Entry {
            content: Content::Keep,
            mode: 0o644,
            uid,
            gid,
        };
        write_generation(&dir, 2, Some(1), &[entry(b"new", 0o400), kept]).unwrap();
        // Until the rename, readers see only the old generation.
        assert_eq!(read(&dir, 0), "old");
        publish(&dir, 2).unwrap();
        assert_eq!(
            (read(&dir, 0), read(&dir, 1)),
            ("new".into(), "conf".into())
        );
        // The unchanged file is the same inode, linked.
        assert_eq!(
            fs::metadata(dir.join("..v1/1")).unwrap().ino(),
            fs::metadata(dir.join("..v2/1")).unwrap().ino()
        );
        assert_eq!(remove_other_generations(&dir, 2).unwrap(), 1);
        assert_eq!(names(&dir), ["..data", "..v2"]);
        assert_eq!(
            (read(&dir, 0), read(&dir, 1)),
            ("new".into(), "conf".into())
        );
        // The old reader keeps its file.
        let mut text = String::new();
        std::io::Read::read_to_string(&mut before, &mut text).unwrap();
        assert_eq!(text, "old");
    }

    #[test]
    fn leftovers_of_a_cut_short_rotation_are_replaced_or_swept() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = files_dir(&tmp);
        write_generation(&dir, 1, None, &[entry(b"one", 0o444)]).unwrap();
        publish(&dir, 1).unwrap();
        // A write of generation 2 cut short, and a symlink made but not renamed.
        fs::create_dir(dir.join("..v2")).unwrap();
        fs::write(dir.join("..v2/0"), "half").unwrap();
        std::os::unix::fs::symlink("..v2", dir.join(DATA_TMP)).unwrap();
        assert_eq!(read(&dir, 0), "one");
        write_generation(&dir, 2, Some(1), &[entry(b"two", 0o444)]).unwrap();
        publish(&dir, 2).unwrap();
        assert_eq!(read(&dir, 0), "two");
        // The published generation is never rewritten in place.
        let e = write_generation(&dir, 2, Some(1), &[entry(b"three", 0o444)]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(read(&dir, 0), "two");
        // A stale `..data.tmp` and old generations go; other names stay.
        std::os::unix::fs::symlink("..v1", dir.join(DATA_TMP)).unwrap();
        remove_other_generations(&dir, 2).unwrap();
        assert_eq!(names(&dir), ["..data", "..v2"]);
        // Keep without a previous generation is an error, not a guess.
        let (uid, gid) = me();
        let keep = Entry {
            content: Content::Keep,
            mode: 0o444,
            uid,
            gid,
        };
        assert!(write_generation(&dir, 3, None, &[keep]).is_err());
        remove(&dir).unwrap();
        assert!(!dir.exists());
        remove(&dir).unwrap();
    }

    #[test]
    fn a_generation_is_never_written_where_no_files_directory_is() {
        // After a removal of the container, a late writer must not make its directory again.
        let tmp = tempfile::tempdir().unwrap();
        let gone = tmp.path().join("gone/files");
        assert!(write_generation(&gone, 1, None, &[entry(b"x", 0o444)]).is_err());
        assert!(publish(&gone, 1).is_err());
        assert!(!tmp.path().join("gone").exists());
    }

    #[test]
    fn targets_become_symlinks_replacing_what_the_image_has() {
        let tmp = tempfile::tempdir().unwrap();
        let rootdir = tmp.path().join("root");
        fs::create_dir_all(rootdir.join("etc/app/conf.d")).unwrap();
        fs::write(rootdir.join("etc/app/config.yml"), "image's").unwrap();
        let root: OwnedFd = fs::File::open(&rootdir).unwrap().into();
        // A missing parent, an existing file, an empty directory.
        link_into(&root, "/run/secrets/db-pass", &link_target(0), None).unwrap();
        link_into(&root, "/etc/app/config.yml", &link_target(1), None).unwrap();
        link_into(&root, "/etc/app/conf.d", &link_target(2), None).unwrap();
        for (path, i) in [
            ("run/secrets/db-pass", 0),
            ("etc/app/config.yml", 1),
            ("etc/app/conf.d", 2),
        ] {
            assert_eq!(
                fs::read_link(rootdir.join(path)).unwrap(),
                Path::new(&format!("/run/.hoist-files/..data/{i}")),
                "{path}"
            );
        }
        // Made again (a restarted create): replaced, not an error.
        link_into(&root, "/run/secrets/db-pass", &link_target(3), None).unwrap();
        assert_eq!(
            fs::read_link(rootdir.join("run/secrets/db-pass")).unwrap(),
            Path::new("/run/.hoist-files/..data/3")
        );
        // The owner, when asked (a user namespace's root); only root may give one away.
        if nix::unistd::getuid().is_root() {
            link_into(&root, "/owned", &link_target(0), Some(1234)).unwrap();
            let meta = fs::symlink_metadata(rootdir.join("owned")).unwrap();
            assert_eq!((meta.uid(), meta.gid()), (1234, 1234));
        }
        // A directory with content is not thrown away.
        fs::remove_file(rootdir.join("etc/app/conf.d")).unwrap();
        fs::create_dir(rootdir.join("etc/app/conf.d")).unwrap();
        fs::write(rootdir.join("etc/app/conf.d/x"), "").unwrap();
        let e = link_into(&root, "/etc/app/conf.d", &link_target(2), None).unwrap_err();
        assert!(e.to_string().starts_with("/etc/app/conf.d: "), "{e}");
        assert!(link_into(&root, "/", &link_target(0), None).is_err());
    }

    #[test]
    fn an_image_symlink_cannot_lead_a_target_out_of_the_root() {
        let tmp = tempfile::tempdir().unwrap();
        let rootdir = tmp.path().join("root");
        let outside = tmp.path().join("outside");
        fs::create_dir_all(&rootdir).unwrap();
        fs::create_dir_all(&outside).unwrap();
        // `/run` in the image points at a host path (absolute) and `/x` climbs out.
        std::os::unix::fs::symlink(&outside, rootdir.join("run")).unwrap();
        std::os::unix::fs::symlink("../../outside", rootdir.join("x")).unwrap();
        // Where the absolute link leads when the root is `/`.
        let inside = rootdir.join(outside.strip_prefix("/").unwrap());
        fs::create_dir_all(&inside).unwrap();
        let root: OwnedFd = fs::File::open(&rootdir).unwrap().into();
        link_into(&root, "/run/secrets/a", &link_target(0), None).unwrap();
        let _ = link_into(&root, "/x/b", &link_target(1), None);
        assert_eq!(
            fs::read_dir(&outside).unwrap().count(),
            0,
            "nothing outside the root"
        );
        // It landed inside, where the link resolves when the root is `/`.
        assert!(fs::symlink_metadata(inside.join("secrets/a")).is_ok());
    }

    #[test]
    fn the_container_sees_the_files_read_only_and_a_rotation_at_once() {
        if !nix::unistd::getuid().is_root() {
            // Mounts take root.
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let dir = files_dir(&tmp);
        write_generation(&dir, 1, None, &[entry(b"one", 0o400)]).unwrap();
        publish(&dir, 1).unwrap();
        let rootdir = tmp.path().join("rootfs");
        fs::create_dir_all(rootdir.join("run/secrets")).unwrap();
        fs::write(rootdir.join("run/secrets/db-pass"), "the image's").unwrap();
        let m = FilesMount {
            source: dir.clone(),
            targets: vec!["/run/secrets/db-pass".into()],
            owner: None,
        };
        let (root, d) = (rootdir.clone(), dir.clone());
        // In a mount namespace of this thread's own, gone when it ends.
        let seen = std::thread::spawn(move || {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).unwrap();
            super::super::mounts::make_private().unwrap();
            let fd: OwnedFd = fs::File::open(&root).unwrap().into();
            mount_into(&fd, &m).unwrap();
            // What `/run/secrets/db-pass` leads to once the rootfs is `/`.
            let link = fs::read_link(root.join("run/secrets/db-pass")).unwrap();
            let through = root.join(link.strip_prefix("/").unwrap());
            let before = fs::read_to_string(&through).unwrap();
            let flags = nix::sys::statvfs::statvfs(&root.join("run/.hoist-files"))
                .unwrap()
                .flags();
            let write = fs::write(root.join("run/.hoist-files/x"), "");
            write_generation(&d, 2, Some(1), &[entry(b"two", 0o400)]).unwrap();
            publish(&d, 2).unwrap();
            let after = fs::read_to_string(&through).unwrap();
            (link, before, after, flags, write.is_err())
        })
        .join()
        .unwrap();
        use nix::sys::statvfs::FsFlags;
        assert_eq!(seen.0, Path::new("/run/.hoist-files/..data/0"));
        assert_eq!((seen.1.as_str(), seen.2.as_str()), ("one", "two"));
        for flag in [
            FsFlags::ST_RDONLY,
            FsFlags::ST_NOSUID,
            FsFlags::ST_NODEV,
            FsFlags::ST_NOEXEC,
        ] {
            assert!(seen.3.contains(flag), "{flag:?} in {:?}", seen.3);
        }
        assert!(seen.4, "the mount is read-only");
        // The host never saw the mount: the mount point is an empty directory here.
        assert_eq!(
            fs::read_dir(rootdir.join("run/.hoist-files"))
                .unwrap()
                .count(),
            0
        );
    }
}
