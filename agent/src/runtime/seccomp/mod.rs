//! The seccomp filter of every container process: Docker's default profile, an allow-list.
//!
//! A call the profile does not name fails with `EPERM`, so a system call the kernel adds
//! tomorrow is refused until it is reviewed (a deny list let every new call through). The list
//! is Docker's (moby's `profiles/seccomp/default.json` as of 2026; io_uring left it in Docker
//! 25), for x86-64: the calls every container may make, a few allowed only with certain arguments
//! (`socket` without `AF_ALG` and `AF_VSOCK`, `personality` with Linux's own personalities,
//! `clone` without namespace flags), and those a capability opens (`mount`, `unshare`, `setns`
//! only with `CAP_SYS_ADMIN`, `ptrace` helpers with `CAP_SYS_PTRACE`...), so that `cap_add`
//! means what it means under Docker. `clone3` fails with `ENOSYS` unless the container has
//! `CAP_SYS_ADMIN`: its flags are in memory, where a classic BPF filter cannot look, and libc
//! falls back to `clone` on `ENOSYS`.
//!
//! One difference from Docker: the filter is x86-64 only, so a 32-bit (`int 0x80`) system
//! call kills the process, as it did before.
//!
//! [`Profile`] is pure (what is allowed, with an evaluator for tests); [`Seccomp`] is its
//! compiled form (`bpf.rs`: one program, a binary search over the call numbers), installed
//! just before the container's process drops to its user.

mod bpf;

use std::collections::{BTreeMap, BTreeSet};

/// x86-64 numbers of calls newer than the libc crate's table
/// (`arch/x86/entry/syscalls/syscall_64.tbl`).
mod newer {
    pub const IO_PGETEVENTS: i64 = 333;
    pub const URETPROBE: i64 = 335;
    pub const CACHESTAT: i64 = 451;
    pub const MAP_SHADOW_STACK: i64 = 453;
    pub const FUTEX_WAKE: i64 = 454;
    pub const FUTEX_WAIT: i64 = 455;
    pub const FUTEX_REQUEUE: i64 = 456;
    pub const STATMOUNT: i64 = 457;
    pub const LISTMOUNT: i64 = 458;
    pub const LSM_GET_SELF_ATTR: i64 = 459;
    pub const LSM_SET_SELF_ATTR: i64 = 460;
    pub const LSM_LIST_MODULES: i64 = 461;
    pub const SETXATTRAT: i64 = 463;
    pub const GETXATTRAT: i64 = 464;
    pub const LISTXATTRAT: i64 = 465;
    pub const REMOVEXATTRAT: i64 = 466;
}

/// The calls every container may make, whatever their arguments: Docker's unconditional list
/// (its x86-64 names; the 32-bit and other architectures' names have no number here), then
/// `arch_prctl` and `modify_ldt` (x86-64's own), then `ptrace` and `process_vm_readv/writev`,
/// which Docker allows on kernels from 4.8, where `ptrace` can no longer get around seccomp.
#[rustfmt::skip]
const ALLOWED: &[i64] = &[
    libc::SYS_accept, libc::SYS_accept4, libc::SYS_access, libc::SYS_adjtimex, libc::SYS_alarm,
    libc::SYS_bind, libc::SYS_brk, newer::CACHESTAT, libc::SYS_capget, libc::SYS_capset,
    libc::SYS_chdir, libc::SYS_chmod, libc::SYS_chown, libc::SYS_clock_adjtime,
    libc::SYS_clock_getres, libc::SYS_clock_gettime, libc::SYS_clock_nanosleep, libc::SYS_close,
    libc::SYS_close_range, libc::SYS_connect, libc::SYS_copy_file_range, libc::SYS_creat,
    libc::SYS_dup, libc::SYS_dup2, libc::SYS_dup3, libc::SYS_epoll_create, libc::SYS_epoll_create1,
    libc::SYS_epoll_ctl, libc::SYS_epoll_ctl_old, libc::SYS_epoll_pwait, libc::SYS_epoll_pwait2,
    libc::SYS_epoll_wait, libc::SYS_epoll_wait_old, libc::SYS_eventfd, libc::SYS_eventfd2,
    libc::SYS_execve, libc::SYS_execveat, libc::SYS_exit, libc::SYS_exit_group,
    libc::SYS_faccessat, libc::SYS_faccessat2, libc::SYS_fadvise64, libc::SYS_fallocate,
    libc::SYS_fanotify_mark, libc::SYS_fchdir, libc::SYS_fchmod, libc::SYS_fchmodat,
    libc::SYS_fchmodat2, libc::SYS_fchown, libc::SYS_fchownat, libc::SYS_fcntl,
    libc::SYS_fdatasync, libc::SYS_fgetxattr, libc::SYS_flistxattr, libc::SYS_flock,
    libc::SYS_fork, libc::SYS_fremovexattr, libc::SYS_fsetxattr, libc::SYS_fstat,
    libc::SYS_fstatfs, libc::SYS_fsync, libc::SYS_ftruncate, libc::SYS_futex, newer::FUTEX_REQUEUE,
    newer::FUTEX_WAIT, libc::SYS_futex_waitv, newer::FUTEX_WAKE, libc::SYS_futimesat,
    libc::SYS_getcpu, libc::SYS_getcwd, libc::SYS_getdents, libc::SYS_getdents64,
    libc::SYS_getegid, libc::SYS_geteuid, libc::SYS_getgid, libc::SYS_getgroups,
    libc::SYS_getitimer, libc::SYS_getpeername, libc::SYS_getpgid, libc::SYS_getpgrp,
    libc::SYS_getpid, libc::SYS_getppid, libc::SYS_getpriority, libc::SYS_getrandom,
    libc::SYS_getresgid, libc::SYS_getresuid, libc::SYS_getrlimit, libc::SYS_get_robust_list,
    libc::SYS_getrusage, libc::SYS_getsid, libc::SYS_getsockname, libc::SYS_getsockopt,
    libc::SYS_get_thread_area, libc::SYS_gettid, libc::SYS_gettimeofday, libc::SYS_getuid,
    libc::SYS_getxattr, newer::GETXATTRAT, libc::SYS_inotify_add_watch, libc::SYS_inotify_init,
    libc::SYS_inotify_init1, libc::SYS_inotify_rm_watch, libc::SYS_io_cancel, libc::SYS_ioctl,
    libc::SYS_io_destroy, libc::SYS_io_getevents, newer::IO_PGETEVENTS, libc::SYS_ioprio_get,
    libc::SYS_ioprio_set, libc::SYS_io_setup, libc::SYS_io_submit, libc::SYS_kill,
    libc::SYS_landlock_add_rule, libc::SYS_landlock_create_ruleset,
    libc::SYS_landlock_restrict_self, libc::SYS_lchown, libc::SYS_lgetxattr, libc::SYS_link,
    libc::SYS_linkat, libc::SYS_listen, newer::LISTMOUNT, libc::SYS_listxattr, newer::LISTXATTRAT,
    libc::SYS_llistxattr, libc::SYS_lremovexattr, libc::SYS_lseek, libc::SYS_lsetxattr,
    libc::SYS_lstat, libc::SYS_madvise, newer::MAP_SHADOW_STACK, libc::SYS_membarrier,
    libc::SYS_memfd_create, libc::SYS_memfd_secret, libc::SYS_mincore, libc::SYS_mkdir,
    libc::SYS_mkdirat, libc::SYS_mknod, libc::SYS_mknodat, libc::SYS_mlock, libc::SYS_mlock2,
    libc::SYS_mlockall, libc::SYS_mmap, libc::SYS_mprotect, libc::SYS_mq_getsetattr,
    libc::SYS_mq_notify, libc::SYS_mq_open, libc::SYS_mq_timedreceive, libc::SYS_mq_timedsend,
    libc::SYS_mq_unlink, libc::SYS_mremap, libc::SYS_mseal, libc::SYS_msgctl, libc::SYS_msgget,
    libc::SYS_msgrcv, libc::SYS_msgsnd, libc::SYS_msync, libc::SYS_munlock, libc::SYS_munlockall,
    libc::SYS_munmap, libc::SYS_name_to_handle_at, libc::SYS_nanosleep, libc::SYS_newfstatat,
    libc::SYS_open, libc::SYS_openat, libc::SYS_openat2, libc::SYS_pause, libc::SYS_pidfd_open,
    libc::SYS_pidfd_send_signal, libc::SYS_pipe, libc::SYS_pipe2, libc::SYS_pkey_alloc,
    libc::SYS_pkey_free, libc::SYS_pkey_mprotect, libc::SYS_poll, libc::SYS_ppoll, libc::SYS_prctl,
    libc::SYS_pread64, libc::SYS_preadv, libc::SYS_preadv2, libc::SYS_prlimit64,
    libc::SYS_process_mrelease, libc::SYS_pselect6, libc::SYS_pwrite64, libc::SYS_pwritev,
    libc::SYS_pwritev2, libc::SYS_read, libc::SYS_readahead, libc::SYS_readlink,
    libc::SYS_readlinkat, libc::SYS_readv, libc::SYS_recvfrom, libc::SYS_recvmmsg,
    libc::SYS_recvmsg, libc::SYS_remap_file_pages, libc::SYS_removexattr, newer::REMOVEXATTRAT,
    libc::SYS_rename, libc::SYS_renameat, libc::SYS_renameat2, libc::SYS_restart_syscall,
    libc::SYS_rmdir, libc::SYS_rseq, libc::SYS_rt_sigaction, libc::SYS_rt_sigpending,
    libc::SYS_rt_sigprocmask, libc::SYS_rt_sigqueueinfo, libc::SYS_rt_sigreturn,
    libc::SYS_rt_sigsuspend, libc::SYS_rt_sigtimedwait, libc::SYS_rt_tgsigqueueinfo,
    libc::SYS_sched_getaffinity, libc::SYS_sched_getattr, libc::SYS_sched_getparam,
    libc::SYS_sched_get_priority_max, libc::SYS_sched_get_priority_min,
    libc::SYS_sched_getscheduler, libc::SYS_sched_rr_get_interval, libc::SYS_sched_setaffinity,
    libc::SYS_sched_setattr, libc::SYS_sched_setparam, libc::SYS_sched_setscheduler,
    libc::SYS_sched_yield, libc::SYS_seccomp, libc::SYS_select, libc::SYS_semctl, libc::SYS_semget,
    libc::SYS_semop, libc::SYS_semtimedop, libc::SYS_sendfile, libc::SYS_sendmmsg,
    libc::SYS_sendmsg, libc::SYS_sendto, libc::SYS_setfsgid, libc::SYS_setfsuid, libc::SYS_setgid,
    libc::SYS_setgroups, libc::SYS_setitimer, libc::SYS_setpgid, libc::SYS_setpriority,
    libc::SYS_setregid, libc::SYS_setresgid, libc::SYS_setresuid, libc::SYS_setreuid,
    libc::SYS_setrlimit, libc::SYS_set_robust_list, libc::SYS_setsid, libc::SYS_setsockopt,
    libc::SYS_set_thread_area, libc::SYS_set_tid_address, libc::SYS_setuid, libc::SYS_setxattr,
    newer::SETXATTRAT, libc::SYS_shmat, libc::SYS_shmctl, libc::SYS_shmdt, libc::SYS_shmget,
    libc::SYS_shutdown, libc::SYS_sigaltstack, libc::SYS_signalfd, libc::SYS_signalfd4,
    libc::SYS_socketpair, libc::SYS_splice, libc::SYS_stat, libc::SYS_statfs, newer::STATMOUNT,
    libc::SYS_statx, libc::SYS_symlink, libc::SYS_symlinkat, libc::SYS_sync,
    libc::SYS_sync_file_range, libc::SYS_syncfs, libc::SYS_sysinfo, libc::SYS_tee,
    libc::SYS_tgkill, libc::SYS_time, libc::SYS_timer_create, libc::SYS_timer_delete,
    libc::SYS_timer_getoverrun, libc::SYS_timer_gettime, libc::SYS_timer_settime,
    libc::SYS_timerfd_create, libc::SYS_timerfd_gettime, libc::SYS_timerfd_settime,
    libc::SYS_times, libc::SYS_tkill, libc::SYS_truncate, libc::SYS_umask, libc::SYS_uname,
    libc::SYS_unlink, libc::SYS_unlinkat, newer::URETPROBE, libc::SYS_utime, libc::SYS_utimensat,
    libc::SYS_utimes, libc::SYS_vfork, libc::SYS_vmsplice, libc::SYS_wait4, libc::SYS_waitid,
    libc::SYS_write, libc::SYS_writev,    libc::SYS_arch_prctl, libc::SYS_modify_ldt,
    libc::SYS_process_vm_readv, libc::SYS_process_vm_writev, libc::SYS_ptrace,
];

/// The calls a capability opens (Docker's rules that include a capability).
#[rustfmt::skip]
const BY_CAPABILITY: &[(&str, &[i64])] = &[
    ("CAP_DAC_READ_SEARCH", &[libc::SYS_open_by_handle_at]),
    ("CAP_SYS_ADMIN", &[
        libc::SYS_bpf, libc::SYS_clone, libc::SYS_clone3, libc::SYS_fanotify_init,
        libc::SYS_fsconfig, libc::SYS_fsmount, libc::SYS_fsopen, libc::SYS_fspick,
        libc::SYS_lookup_dcookie, newer::LSM_GET_SELF_ATTR, newer::LSM_LIST_MODULES,
        newer::LSM_SET_SELF_ATTR, libc::SYS_mount, libc::SYS_mount_setattr, libc::SYS_move_mount,
        libc::SYS_open_tree, libc::SYS_perf_event_open, libc::SYS_quotactl, libc::SYS_quotactl_fd,
        libc::SYS_setdomainname, libc::SYS_sethostname, libc::SYS_setns, libc::SYS_syslog,
        libc::SYS_umount2, libc::SYS_unshare,
    ]),
    ("CAP_SYS_BOOT", &[libc::SYS_reboot]),
    ("CAP_SYS_CHROOT", &[libc::SYS_chroot]),
    ("CAP_SYS_MODULE", &[libc::SYS_delete_module, libc::SYS_init_module, libc::SYS_finit_module]),
    ("CAP_SYS_PACCT", &[libc::SYS_acct]),
    ("CAP_SYS_PTRACE", &[
        libc::SYS_kcmp, libc::SYS_pidfd_getfd, libc::SYS_process_madvise,
        libc::SYS_process_vm_readv, libc::SYS_process_vm_writev, libc::SYS_ptrace,
    ]),
    ("CAP_SYS_RAWIO", &[libc::SYS_iopl, libc::SYS_ioperm]),
    ("CAP_SYS_TIME", &[libc::SYS_settimeofday, libc::SYS_clock_settime]),
    ("CAP_SYS_TTY_CONFIG", &[libc::SYS_vhangup]),
    ("CAP_SYS_NICE", &[
        libc::SYS_get_mempolicy, libc::SYS_mbind, libc::SYS_set_mempolicy,
        libc::SYS_set_mempolicy_home_node,
    ]),
    ("CAP_SYSLOG", &[libc::SYS_syslog]),
    ("CAP_BPF", &[libc::SYS_bpf]),
    ("CAP_PERFMON", &[libc::SYS_perf_event_open]),
];

/// `clone`'s namespace flags (Docker's mask 2114060288): without `CAP_SYS_ADMIN`, a `clone`
/// with any of them is refused.
const CLONE_NAMESPACES: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWCGROUP
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET) as u64;

/// Address families `socket` refuses: `AF_ALG` (38, the kernel's crypto API) and `AF_VSOCK`
/// (40, the hypervisor's sockets).
const AF_ALG: u64 = 38;
const AF_VSOCK: u64 = 40;

/// The personalities `personality` accepts: Linux's own (`PER_LINUX`, `PER_LINUX32`, with
/// `UNAME26`) and the query `0xffffffff`.
const PERSONALITIES: [u64; 5] = [0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

/// A check of a call's first argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgCheck {
    Eq(u64),
    Lt(u64),
    Gt(u64),
    /// None of these bits set.
    NoneOf(u64),
}

impl ArgCheck {
    fn passes(self, arg: u64) -> bool {
        match self {
            ArgCheck::Eq(v) => arg == v,
            ArgCheck::Lt(v) => arg < v,
            ArgCheck::Gt(v) => arg > v,
            ArgCheck::NoneOf(mask) => arg & mask == 0,
        }
    }
}

/// What a container's processes may call. Pure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// Allowed whatever their arguments.
    pub allowed: BTreeSet<i64>,
    /// Allowed when the first argument passes one of the checks.
    pub allowed_if: BTreeMap<i64, Vec<ArgCheck>>,
    /// `clone3` fails with `ENOSYS` rather than `EPERM`.
    pub clone3_enosys: bool,
}

impl Profile {
    /// Docker's default profile for a container with `capabilities` (canonical names).
    pub fn docker_default(capabilities: &[&str]) -> Profile {
        let has = |c: &str| capabilities.contains(&c);
        let mut allowed: BTreeSet<i64> = ALLOWED.iter().copied().collect();
        for (cap, calls) in BY_CAPABILITY {
            if has(cap) {
                allowed.extend(calls.iter().copied());
            }
        }
        let mut allowed_if = BTreeMap::from([
            (
                libc::SYS_socket,
                vec![
                    ArgCheck::Lt(AF_ALG),
                    ArgCheck::Eq(AF_ALG + 1),
                    ArgCheck::Gt(AF_VSOCK),
                ],
            ),
            (
                libc::SYS_personality,
                PERSONALITIES.iter().map(|p| ArgCheck::Eq(*p)).collect(),
            ),
        ]);
        let admin = has("CAP_SYS_ADMIN");
        if !admin {
            allowed_if.insert(libc::SYS_clone, vec![ArgCheck::NoneOf(CLONE_NAMESPACES)]);
        }
        allowed_if.retain(|nr, _| !allowed.contains(nr));
        Profile {
            allowed,
            allowed_if,
            clone3_enosys: !admin,
        }
    }

    /// What the filter answers for call `nr` with first argument `arg0`: `Ok` to run it, or
    /// the errno it fails with.
    pub fn verdict(&self, nr: i64, arg0: u64) -> Result<(), i32> {
        if nr == libc::SYS_clone3 && self.clone3_enosys {
            return Err(libc::ENOSYS);
        }
        if self.allowed.contains(&nr) {
            return Ok(());
        }
        match self.allowed_if.get(&nr) {
            Some(checks) if checks.iter().any(|c| c.passes(arg0)) => Ok(()),
            _ => Err(libc::EPERM),
        }
    }
}

/// A [`Profile`] compiled to one BPF program (`bpf.rs`: a binary search over the call
/// numbers; `clone3`'s `ENOSYS`, when the profile says so, is one of its answers).
#[derive(Debug, Clone)]
pub struct Seccomp {
    program: Vec<bpf::Insn>,
}

impl Seccomp {
    pub fn compile(profile: &Profile) -> Result<Self, String> {
        Ok(Self {
            program: bpf::program(profile)?,
        })
    }

    /// Installs the filter on the calling thread. Requires `no_new_privs` or `CAP_SYS_ADMIN`;
    /// sets neither (a container may ask to go without `no_new_privs`).
    pub fn apply(&self) -> Result<(), String> {
        let fprog = libc::sock_fprog {
            len: u16::try_from(self.program.len()).map_err(|_| "seccomp: filter too long")?,
            // `bpf::Insn` is the kernel's `struct sock_filter` (u16, u8, u8, u32), as libc's is.
            filter: self.program.as_ptr() as *mut libc::sock_filter,
        };
        // SAFETY: the kernel copies the program in during the call; `fprog` and the program
        // outlive it.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                0,
                &fprog as *const libc::sock_fprog,
            )
        };
        if rc != 0 {
            return Err(format!("seccomp: {}", std::io::Error::last_os_error()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hoist_proto::capabilities;

    fn default_caps() -> Vec<&'static str> {
        capabilities::effective(&[], &[]).unwrap()
    }

    fn with(cap: &str) -> Vec<&'static str> {
        capabilities::effective(&[cap.to_string()], &[]).unwrap()
    }

    #[test]
    fn the_default_profile_refuses_what_docker_refuses() {
        let p = Profile::docker_default(&default_caps());
        for (call, nr, arg0) in [
            ("keyctl", libc::SYS_keyctl, 0),
            ("add_key", libc::SYS_add_key, 0),
            ("request_key", libc::SYS_request_key, 0),
            ("mount", libc::SYS_mount, 0),
            ("umount2", libc::SYS_umount2, 0),
            (
                "unshare(CLONE_NEWUSER)",
                libc::SYS_unshare,
                libc::CLONE_NEWUSER as u64,
            ),
            ("setns", libc::SYS_setns, 0),
            (
                "clone(CLONE_NEWUSER)",
                libc::SYS_clone,
                libc::CLONE_NEWUSER as u64,
            ),
            (
                "clone(CLONE_NEWNET)",
                libc::SYS_clone,
                libc::CLONE_NEWNET as u64,
            ),
            ("bpf", libc::SYS_bpf, 0),
            ("perf_event_open", libc::SYS_perf_event_open, 0),
            ("kexec_load", libc::SYS_kexec_load, 0),
            ("init_module", libc::SYS_init_module, 0),
            ("reboot", libc::SYS_reboot, 0),
            ("swapon", libc::SYS_swapon, 0),
            ("userfaultfd", libc::SYS_userfaultfd, 0),
            ("io_uring_setup", libc::SYS_io_uring_setup, 0),
            ("kcmp", libc::SYS_kcmp, 0),
            ("socket(AF_VSOCK)", libc::SYS_socket, AF_VSOCK),
            ("socket(AF_ALG)", libc::SYS_socket, AF_ALG),
            (
                "personality(READ_IMPLIES_EXEC)",
                libc::SYS_personality,
                0x0040_0000,
            ),
            ("a call numbered past every known one", 1000, 0),
            ("an x32 call", 0x4000_0000 | libc::SYS_getpid, 0),
        ] {
            assert_eq!(p.verdict(nr, arg0), Err(libc::EPERM), "{call}");
        }
        assert_eq!(p.verdict(libc::SYS_clone3, 0), Err(libc::ENOSYS));
    }

    #[test]
    fn ordinary_work_is_allowed() {
        let p = Profile::docker_default(&default_caps());
        for (call, nr, arg0) in [
            ("read", libc::SYS_read, 0),
            ("openat", libc::SYS_openat, 0),
            ("execve", libc::SYS_execve, 0),
            ("fork-style clone", libc::SYS_clone, libc::SIGCHLD as u64),
            (
                "thread clone",
                libc::SYS_clone,
                (libc::CLONE_VM | libc::CLONE_THREAD | libc::CLONE_SIGHAND) as u64,
            ),
            ("socket(AF_INET)", libc::SYS_socket, libc::AF_INET as u64),
            ("socket(AF_UNIX)", libc::SYS_socket, libc::AF_UNIX as u64),
            (
                "socket(AF_NETLINK)",
                libc::SYS_socket,
                libc::AF_NETLINK as u64,
            ),
            ("socket(AF_XDP)", libc::SYS_socket, 44),
            ("personality(PER_LINUX)", libc::SYS_personality, 0),
            ("personality query", libc::SYS_personality, 0xffff_ffff),
            ("ptrace of one's own children", libc::SYS_ptrace, 0),
            ("setresuid (dropping to the user)", libc::SYS_setresuid, 0),
            ("capset", libc::SYS_capset, 0),
            ("close_range", libc::SYS_close_range, 0),
            ("futex_waitv", libc::SYS_futex_waitv, 0),
            ("cachestat", newer::CACHESTAT, 0),
            ("chroot (CAP_SYS_CHROOT is a default)", libc::SYS_chroot, 0),
        ] {
            assert_eq!(p.verdict(nr, arg0), Ok(()), "{call}");
        }
        assert!(p.allowed.len() > 300, "{}", p.allowed.len());
    }

    #[test]
    fn capabilities_open_the_calls_they_guard() {
        let admin = Profile::docker_default(&with("SYS_ADMIN"));
        for nr in [
            libc::SYS_mount,
            libc::SYS_unshare,
            libc::SYS_setns,
            libc::SYS_clone3,
        ] {
            assert_eq!(admin.verdict(nr, 0), Ok(()), "{nr}");
        }
        assert_eq!(
            admin.verdict(libc::SYS_clone, libc::CLONE_NEWUSER as u64),
            Ok(())
        );
        assert!(!admin.clone3_enosys && !admin.allowed_if.contains_key(&libc::SYS_clone));
        // Still refused: what no capability of Docker's opens.
        assert_eq!(admin.verdict(libc::SYS_keyctl, 0), Err(libc::EPERM));
        let ptrace = Profile::docker_default(&with("SYS_PTRACE"));
        assert_eq!(ptrace.verdict(libc::SYS_kcmp, 0), Ok(()));
        assert_eq!(ptrace.verdict(libc::SYS_mount, 0), Err(libc::EPERM));
        let time = Profile::docker_default(&with("SYS_TIME"));
        assert_eq!(time.verdict(libc::SYS_clock_settime, 0), Ok(()));
        // Dropping CAP_SYS_CHROOT closes chroot, as under Docker.
        let no_chroot = capabilities::effective(&[], &["SYS_CHROOT".to_string()]).unwrap();
        let p = Profile::docker_default(&no_chroot);
        assert_eq!(p.verdict(libc::SYS_chroot, 0), Err(libc::EPERM));
    }

    /// Runs `f` on a thread of its own with `profile` installed (filters are per thread), so
    /// the compiled BPF is checked against the kernel itself.
    fn under_filter<T: Send + 'static>(
        profile: &Profile,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> T {
        let compiled = Seccomp::compile(profile).unwrap();
        std::thread::spawn(move || {
            // SAFETY: prctl with integer arguments; affects this thread only.
            let rc = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
            assert_eq!(rc, 0);
            compiled.apply().unwrap();
            f()
        })
        .join()
        .unwrap()
    }

    fn errno_of(rc: libc::c_long) -> i32 {
        if rc < 0 {
            std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
        } else {
            0
        }
    }

    #[test]
    fn the_kernel_enforces_the_compiled_profile() {
        let p = Profile::docker_default(&default_caps());
        let got = under_filter(&p, || {
            // SAFETY: each call has arguments that change nothing if allowed (a keyring
            // query, a NULL mount, an unshare a multithreaded process cannot make), and
            // only the errno is looked at.
            unsafe {
                [
                    errno_of(libc::syscall(libc::SYS_keyctl, 0, -3, 0)),
                    errno_of(libc::syscall(
                        libc::SYS_add_key,
                        c"user".as_ptr(),
                        c"k".as_ptr(),
                        std::ptr::null::<u8>(),
                        0,
                        -3,
                    )),
                    errno_of(libc::syscall(libc::SYS_mount, 0, 0, 0, 0, 0)),
                    errno_of(libc::syscall(libc::SYS_unshare, libc::CLONE_NEWUSER)),
                    errno_of(libc::syscall(libc::SYS_clone3, 0, 0)),
                    errno_of(libc::syscall(
                        libc::SYS_socket,
                        AF_VSOCK,
                        libc::SOCK_STREAM,
                        0,
                    )),
                    errno_of(libc::syscall(libc::SYS_getppid)),
                ]
            }
        });
        let (eperm, enosys) = (libc::EPERM, libc::ENOSYS);
        assert_eq!(got, [eperm, eperm, eperm, eperm, enosys, eperm, 0]);

        // With CAP_SYS_ADMIN the same unshare reaches the kernel, which refuses it for its own
        // reason (a multithreaded process cannot enter a new user namespace).
        let admin = Profile::docker_default(&with("SYS_ADMIN"));
        let got = under_filter(&admin, || {
            // SAFETY: as above.
            unsafe { errno_of(libc::syscall(libc::SYS_unshare, libc::CLONE_NEWUSER)) }
        });
        assert_eq!(got, libc::EINVAL);
    }
}
