//! User namespaces (`hoist run --userns`, a spec's `userns = true`): the container's root is an
//! unprivileged id range of the host, not the host's root.
//!
//! One range per agent (`--userns-range`, default [`IdRange::DEFAULT`]) for every such
//! container, as Docker's `userns-remap` has one: a volume shared by two containers keeps
//! meaning the same owners in both. Container id `N` is host id `first + N`.
//!
//! How a container gets there:
//! - The supervisor makes the namespace before it starts the container ([`create`]): a child
//!   that exists only to carry it, whose maps the supervisor writes (only a process with
//!   `CAP_SETUID` over the parent namespace may map a whole range). Its descriptor is all that
//!   is kept.
//! - The container's first process builds its mounts as the host's root, then enters the
//!   namespace last ([`enter`], after `pivot_root`, before dropping privileges). So every other
//!   namespace (mount, network, uts, ipc, pid, cgroup) stays owned by the host: root inside can
//!   neither mount nor change the network, whatever capabilities it is given. Ports below 1024
//!   and ping are opened to it through the network namespace's own sysctls, as Docker does.
//! - The image's layers are shared by every container, unchanged: each is mounted idmapped with
//!   the namespace ([`idmapped_bind`]), so a file that is root's on disk is the container root's.
//!   Overlayfs takes idmapped lower layers but not an idmapped upper one (it falls back to
//!   read-only), so the writable layer holds host ids: its root directory belongs to the
//!   container's root, and what the container writes gets `first + N` on disk, as in volumes.
//! - Volumes are plain bind mounts: a file the container's root creates in one belongs to host
//!   id `first` (Docker's behaviour). A volume the agent makes for such a container gets the
//!   image's content with ids shifted into the range.

use nix::sys::wait::waitpid;
use serde::{Deserialize, Serialize};
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Host ids `first .. first + count`, which are container ids `0 .. count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdRange {
    pub first: u32,
    pub count: u32,
}

impl IdRange {
    /// 65,536 ids from 0x70000000 (1879048192): above what `useradd` hands out in
    /// `/etc/subuid` (from 100000, 65,536 per user) and systemd-nspawn's container ranges
    /// (524288–1879048191), below the ids that read as negative (2^31 and up).
    pub const DEFAULT: IdRange = IdRange {
        first: 0x7000_0000,
        count: 65_536,
    };

    /// `FIRST:COUNT`, checked. Pure.
    pub fn parse(text: &str) -> Result<IdRange, String> {
        let (first, count) = text
            .split_once(':')
            .ok_or_else(|| format!("{text:?} is not FIRST:COUNT"))?;
        let number = |s: &str, what: &str| {
            s.trim()
                .parse::<u32>()
                .map_err(|_| format!("{text:?}: {what} {s:?} is not a number"))
        };
        IdRange {
            first: number(first, "first id")?,
            count: number(count, "count")?,
        }
        .checked()
    }

    /// The range of `user` in an `/etc/subuid` (or `/etc/subgid`) file: its first
    /// `USER:FIRST:COUNT` line. Pure.
    pub fn from_subid(file: &str, user: &str) -> Option<Result<IdRange, String>> {
        file.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .find_map(|l| {
                let (name, range) = l.split_once(':')?;
                (name == user).then(|| IdRange::parse(range))
            })
    }

    /// The range, if it is one a container's root may be mapped to: not starting at the host's
    /// root, at least one id, and ending below `u32::MAX` (the kernel's "no id").
    pub fn checked(self) -> Result<IdRange, String> {
        if self.first == 0 {
            return Err(
                "the range must not start at 0: that maps the container's root to the host's"
                    .into(),
            );
        }
        if self.count == 0 {
            return Err("the range must hold at least one id".into());
        }
        if u64::from(self.first) + u64::from(self.count) > u64::from(u32::MAX) {
            return Err(format!(
                "{}:{} ends past the largest id, {}",
                self.first,
                self.count,
                u32::MAX - 1
            ));
        }
        Ok(self)
    }

    /// The host id of container id `id`, if the range has it. Pure.
    pub fn to_host(self, id: u32) -> Option<u32> {
        (id < self.count).then(|| self.first + id)
    }

    /// The id an image would give a file the container owns as `id` on the host: ids of the
    /// range go back to container ids, others (an image layer's own, seen through a merged
    /// view) stay. What `hoist commit`, `diff` and `export` show of a user-namespaced
    /// container's writable layer. Pure.
    pub fn unshift(self, id: u32) -> u32 {
        match id.checked_sub(self.first) {
            Some(n) if n < self.count => n,
            _ => id,
        }
    }

    /// The line `uid_map` and `gid_map` take. Pure.
    pub fn map_line(self) -> String {
        format!("0 {} {}\n", self.first, self.count)
    }

    /// Checks that a process's ids are inside the range (container ids). Pure.
    pub fn check_ids(self, uid: u32, gid: u32, groups: &[u32]) -> Result<(), String> {
        let outside = |what: &str, id: u32| {
            format!(
                "{what} {id} is outside the user namespace's {} ids (--userns maps 0..{})",
                self.count,
                self.count - 1
            )
        };
        if self.to_host(uid).is_none() {
            return Err(outside("user", uid));
        }
        for g in std::iter::once(&gid).chain(groups) {
            if self.to_host(*g).is_none() {
                return Err(outside("group", *g));
            }
        }
        Ok(())
    }

    /// The host ids for an owner on disk: ids inside the range are shifted, others are refused.
    pub fn shift(self, uid: u32, gid: u32) -> Result<(u32, u32), String> {
        match (self.to_host(uid), self.to_host(gid)) {
            (Some(u), Some(g)) => Ok((u, g)),
            _ => Err(format!(
                "owner {uid}:{gid} cannot be mapped into the user namespace's {} ids",
                self.count
            )),
        }
    }
}

/// Makes a user namespace with `range` mapped for uids and gids, and answers its descriptor.
/// Forks a child into it (`clone3(CLONE_NEWUSER)`), writes the child's maps, opens the
/// namespace, then lets the child exit. Call from a single-threaded process.
pub fn create(range: IdRange) -> Result<OwnedFd, String> {
    let (hold_r, hold_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| format!("user namespace: pipe: {e}"))?;
    let child = match super::fork::clone_fork(libc::CLONE_NEWUSER as u64) {
        Err(e) => return Err(format!("user namespace: clone: {e}")),
        Ok(None) => {
            drop(hold_w);
            // Wait for the parent to be done with us (EOF), then leave without cleanup.
            let mut b = [0u8; 1];
            let _ = nix::unistd::read(&hold_r, &mut b);
            // SAFETY: _exit in the forked child.
            unsafe { libc::_exit(0) }
        }
        Ok(Some((pid, _pidfd))) => pid,
    };
    drop(hold_r);
    let result = (|| {
        for file in ["uid_map", "gid_map"] {
            let path = format!("/proc/{child}/{file}");
            std::fs::write(&path, range.map_line())
                .map_err(|e| format!("user namespace: write {path}: {e}"))?;
        }
        std::fs::File::open(format!("/proc/{child}/ns/user"))
            .map(OwnedFd::from)
            .map_err(|e| format!("user namespace: open: {e}"))
    })();
    drop(hold_w);
    let _ = waitpid(child, None);
    result
}

/// Moves the calling process into the user namespace `ns`: it keeps its other namespaces and
/// gets every capability inside `ns` (none over the host). Single-threaded callers only.
pub fn enter(ns: &OwnedFd) -> Result<(), String> {
    nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWUSER)
        .map_err(|e| format!("enter the user namespace: {e}"))
}

fn cstring(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path has a NUL byte"))
}

/// Mounts `source` read-only on `target` (an existing directory) with the ids of `ns`: a file
/// with owner `N` on disk shows as host id `first + N`, which is `N` inside the namespace.
pub fn idmapped_bind(source: &Path, target: &Path, ns: &OwnedFd) -> io::Result<()> {
    let ctx = |what: &str, e: io::Error| {
        io::Error::new(
            e.kind(),
            format!("idmapped mount of {}: {what}: {e}", source.display()),
        )
    };
    let src = cstring(source)?;
    // SAFETY: a NUL-terminated path; the kernel answers a new descriptor or -1.
    let tree = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            src.as_ptr(),
            libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC,
        )
    };
    if tree < 0 {
        return Err(ctx("open_tree", io::Error::last_os_error()));
    }
    // SAFETY: the kernel returned a new descriptor that nothing else owns.
    let tree = unsafe { OwnedFd::from_raw_fd(tree as i32) };
    let attr = libc::mount_attr {
        attr_set: libc::MOUNT_ATTR_IDMAP | libc::MOUNT_ATTR_RDONLY,
        attr_clr: 0,
        propagation: 0,
        userns_fd: ns.as_raw_fd() as u64,
    };
    // SAFETY: `attr` lives across the call and its size is passed; the path is empty with
    // AT_EMPTY_PATH, so the descriptor itself is changed.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            &attr as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    };
    if rc < 0 {
        return Err(ctx("mount_setattr", io::Error::last_os_error()));
    }
    let dst = cstring(target)?;
    // SAFETY: a detached mount's descriptor and a NUL-terminated target path.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            dst.as_ptr(),
            libc::MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if rc < 0 {
        return Err(ctx("move_mount", io::Error::last_os_error()));
    }
    Ok(())
}

/// The network namespace's sysctls a user-namespaced root needs for what root may do in an
/// ordinary container: bind ports below 1024 and ping (the namespace's owner is the host's
/// root, so its capabilities inside do not count there). Docker sets the same two.
pub const NET_SYSCTLS: [(&str, &str); 2] = [
    ("/proc/sys/net/ipv4/ip_unprivileged_port_start", "0"),
    ("/proc/sys/net/ipv4/ping_group_range", "0 2147483647"),
];

/// Writes [`NET_SYSCTLS`] for the network namespace the caller is in.
pub fn open_network_to_root() -> Result<(), String> {
    for (path, value) in NET_SYSCTLS {
        std::fs::write(path, value).map_err(|e| format!("write {path}: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_parsed_and_checked() {
        assert_eq!(
            IdRange::parse("100000:65536"),
            Ok(IdRange {
                first: 100_000,
                count: 65_536
            })
        );
        assert!(IdRange::parse("0:65536")
            .unwrap_err()
            .contains("must not start at 0"));
        assert!(IdRange::parse("100000:0")
            .unwrap_err()
            .contains("at least one id"));
        assert!(IdRange::parse("4294901760:65536")
            .unwrap_err()
            .contains("ends past the largest id"));
        assert!(IdRange::parse("4294901759:65536").is_ok());
        assert!(IdRange::parse("100000")
            .unwrap_err()
            .contains("FIRST:COUNT"));
        assert!(IdRange::parse("a:1")
            .unwrap_err()
            .contains("first id \"a\""));
        assert_eq!(IdRange::DEFAULT.checked(), Ok(IdRange::DEFAULT));
        assert_eq!(IdRange::DEFAULT.first, 1_879_048_192);
    }

    #[test]
    fn subordinate_ranges_come_from_etc_subuid() {
        let file = "# comment\nalice:100000:65536\nhoist:231072:65536\nhoist:900000:10\n";
        assert_eq!(
            IdRange::from_subid(file, "hoist"),
            Some(Ok(IdRange {
                first: 231_072,
                count: 65_536
            }))
        );
        assert_eq!(IdRange::from_subid(file, "bob"), None);
        assert!(IdRange::from_subid("hoist:0:5\n", "hoist")
            .unwrap()
            .is_err());
    }

    #[test]
    fn ids_map_into_the_range() {
        let r = IdRange {
            first: 1_000_000,
            count: 65_536,
        };
        assert_eq!(r.map_line(), "0 1000000 65536\n");
        assert_eq!(r.to_host(0), Some(1_000_000));
        assert_eq!(r.to_host(65_535), Some(1_065_535));
        assert_eq!(r.to_host(65_536), None);
        assert_eq!(r.shift(33, 33), Ok((1_000_033, 1_000_033)));
        assert_eq!(r.unshift(1_000_033), 33);
        assert_eq!(r.unshift(0), 0, "an image's own ids stay");
        assert_eq!(r.unshift(1_065_536), 1_065_536, "past the range");
        assert_eq!(r.unshift(999_999), 999_999);
        assert!(r.shift(70_000, 0).is_err());
        assert!(r.check_ids(1000, 1000, &[10, 65_534]).is_ok());
        assert_eq!(
            r.check_ids(70_000, 0, &[]).unwrap_err(),
            "user 70000 is outside the user namespace's 65536 ids (--userns maps 0..65535)"
        );
        assert!(r
            .check_ids(0, 0, &[65_536])
            .unwrap_err()
            .starts_with("group 65536"));
    }

    #[test]
    fn a_namespace_is_made_with_the_map_and_idmapped_mounts_show_its_ids() {
        use std::os::unix::fs::MetadataExt;
        let r = IdRange {
            first: 0x7100_0000,
            count: 1000,
        };
        // clone3 copies only this thread into the child, which only waits on a pipe.
        let ns = create(r).unwrap();
        let theirs = std::fs::read_link(format!("/proc/self/fd/{}", ns.as_raw_fd())).unwrap();
        assert_ne!(std::fs::read_link("/proc/self/ns/user").unwrap(), theirs);
        assert!(theirs.to_string_lossy().starts_with("user:["), "{theirs:?}");

        let tmp = tempfile::tempdir().unwrap();
        let (layer, target) = (tmp.path().join("layer"), tmp.path().join("target"));
        std::fs::create_dir_all(layer.join("etc")).unwrap();
        std::fs::write(layer.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
        std::os::unix::fs::lchown(layer.join("etc/passwd"), Some(0), Some(42)).unwrap();
        std::os::unix::fs::lchown(layer.join("etc"), Some(2000), Some(0)).unwrap();
        std::fs::create_dir(&target).unwrap();
        // In a mount namespace of this thread's own, gone when it ends.
        let seen = std::thread::spawn(move || {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).unwrap();
            super::super::mounts::make_private().unwrap();
            idmapped_bind(&layer, &target, &ns).unwrap();
            let file = std::fs::metadata(target.join("etc/passwd")).unwrap();
            let dir = std::fs::metadata(target.join("etc")).unwrap();
            let write = std::fs::write(target.join("x"), "");
            (
                (file.uid(), file.gid()),
                (dir.uid(), dir.gid()),
                write.is_err(),
            )
        })
        .join()
        .unwrap();
        // Owner 0 is the range's first id; 2000 is outside a 1000-id range: the overflow id.
        assert_eq!(seen.0, (0x7100_0000, 0x7100_0000 + 42));
        assert_eq!(seen.1, (65_534, 0x7100_0000));
        assert!(seen.2, "the idmapped layer is read-only");
        assert!(!tmp.path().join("layer/x").exists());
    }
}
