//! `clone3` with fork semantics: a child that is a copy of the calling (single-threaded)
//! process, born in the new namespaces `flags` asks for, and a pidfd for it. Unlike
//! `unshare` + `fork`, the caller stays where it is and may create threads afterwards.

use nix::unistd::Pid;
use std::os::fd::OwnedFd;

/// `clone3(flags | CLONE_PIDFD)` without a new stack: returns `None` in the child and the
/// child's pid and pidfd in the parent. `flags` are namespace flags (`CLONE_NEWPID`,
/// `CLONE_NEWUSER`); the child's exit is reported with SIGCHLD.
pub fn clone_fork(flags: u64) -> std::io::Result<Option<(Pid, OwnedFd)>> {
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
    }
    let mut pidfd: libc::c_int = -1;
    let args = CloneArgs {
        flags: flags | libc::CLONE_PIDFD as u64,
        pidfd: &mut pidfd as *mut libc::c_int as u64,
        child_tid: 0,
        parent_tid: 0,
        exit_signal: libc::SIGCHLD as u64,
        stack: 0,
        stack_size: 0,
        tls: 0,
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
