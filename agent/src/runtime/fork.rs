//! `clone3` with fork semantics: a child that is a copy of the calling (single-threaded)
//! process, born in the new namespaces `flags` asks for, and a pidfd for it. Unlike
//! `unshare` + `fork`, the caller stays where it is and may create threads afterwards.

use nix::unistd::Pid;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

/// `CLONE_INTO_CGROUP` (Linux 5.7; not in the libc crate).
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// `clone3(flags | CLONE_PIDFD)` without a new stack: returns `None` in the child and the
/// child's pid and pidfd in the parent. `flags` are namespace flags (`CLONE_NEWPID`,
/// `CLONE_NEWUSER`); the child's exit is reported with SIGCHLD.
pub fn clone_fork(flags: u64) -> std::io::Result<Option<(Pid, OwnedFd)>> {
    clone_fork_into(flags, None)
}

/// [`clone_fork`], the child born in the cgroup v2 directory `cgroup` (open, `O_DIRECTORY`)
/// when given: `CLONE_INTO_CGROUP`, no move afterwards and none of the locks a move takes. A
/// kernel before 5.7 refuses the call (`EINVAL`), as does a cgroup the child may not join; the
/// caller then forks without it and moves the child.
pub fn clone_fork_into(
    flags: u64,
    cgroup: Option<BorrowedFd<'_>>,
) -> std::io::Result<Option<(Pid, OwnedFd)>> {
    /// `struct clone_args` up to `cgroup` (`CLONE_ARGS_SIZE_VER2`, 88 bytes). A kernel that
    /// knows a shorter one accepts it as long as what it does not know is zero.
    #[repr(C)]
    struct CloneArgs {
        flags: u64,
        pidfd: u64,
        child_tid: u64,
        parent_tid: u64,
        exit_signal: u64,
        stack: u64,
        stack_size: u64,
        tls: u64,
        set_tid: u64,
        set_tid_size: u64,
        cgroup: u64,
    }
    let mut pidfd: libc::c_int = -1;
    let (into, cgroup) = match cgroup {
        Some(fd) => (CLONE_INTO_CGROUP, fd.as_raw_fd() as u64),
        None => (0, 0),
    };
    let args = CloneArgs {
        flags: flags | libc::CLONE_PIDFD as u64 | into,
        pidfd: &mut pidfd as *mut libc::c_int as u64,
        child_tid: 0,
        parent_tid: 0,
        exit_signal: libc::SIGCHLD as u64,
        stack: 0,
        stack_size: 0,
        tls: 0,
        set_tid: 0,
        set_tid_size: 0,
        cgroup,
    };
    // SAFETY: clone3 without CLONE_VM and without a stack behaves like fork: the child gets a copy
    // of the calling thread. `args` and `pidfd` outlive the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match rc {
        -1 => Err(std::io::Error::last_os_error()),
        0 => Ok(None),
        // SAFETY: the kernel stored a new pidfd owned by nothing else.
        pid => Ok(Some((Pid::from_raw(pid as i32), unsafe {
            <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(pidfd)
        }))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    /// A cgroup v2 mount of this host (`/sys/fs/cgroup` on a v2 host, `/sys/fs/cgroup/unified`
    /// on a hybrid one like this machine's).
    fn cgroup2_mount() -> Option<std::path::PathBuf> {
        let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
        mounts.lines().find_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (f.get(2) == Some(&"cgroup2")).then(|| f[1].into())
        })
    }

    /// The real kernel: a child cloned into a v2 cgroup is there from its first instruction.
    #[test]
    fn a_child_is_born_in_the_cgroup_given() {
        let Some(mount) = cgroup2_mount().filter(|_| nix::unistd::Uid::effective().is_root())
        else {
            eprintln!("skipped: needs root and a cgroup v2 mount");
            return;
        };
        let name = format!("hoist-unit-clone-{}", std::process::id());
        let dir = mount.join(&name);
        std::fs::create_dir(&dir).unwrap();
        let fd = OwnedFd::from(std::fs::File::open(&dir).unwrap());
        match clone_fork_into(0, Some(fd.as_fd())).unwrap() {
            None => {
                // The child of a multi-threaded test: only async-signal-safe calls.
                // SAFETY: pause and _exit are async-signal-safe.
                unsafe {
                    libc::pause();
                    libc::_exit(0)
                }
            }
            Some((pid, _pidfd)) => {
                let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
                let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap();
                nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).unwrap();
                nix::sys::wait::waitpid(pid, None).unwrap();
                std::fs::remove_dir(&dir).unwrap();
                assert!(
                    cgroup.lines().any(|l| l == format!("0::/{name}")),
                    "born in {name}: {cgroup}"
                );
                assert_eq!(procs.trim(), pid.to_string());
            }
        }
    }
}
