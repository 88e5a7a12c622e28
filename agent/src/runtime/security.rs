//! The privileges a container keeps: Docker's 14 default capabilities, `no_new_privs`, a seccomp
//! filter that denies the kernel's administrative and escape-prone system calls, and rlimits.
//!
//! These run in the container's first process (and in exec'd processes) just before `execve`.

use caps::{CapSet, Capability, CapsHashSet};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule,
};
use std::collections::BTreeMap;

/// Docker's default capability set.
pub const DEFAULT_CAPS: [Capability; 14] = [
    Capability::CAP_CHOWN,
    Capability::CAP_DAC_OVERRIDE,
    Capability::CAP_FSETID,
    Capability::CAP_FOWNER,
    Capability::CAP_MKNOD,
    Capability::CAP_NET_RAW,
    Capability::CAP_SETGID,
    Capability::CAP_SETUID,
    Capability::CAP_SETFCAP,
    Capability::CAP_SETPCAP,
    Capability::CAP_NET_BIND_SERVICE,
    Capability::CAP_SYS_CHROOT,
    Capability::CAP_KILL,
    Capability::CAP_AUDIT_WRITE,
];

fn default_set() -> CapsHashSet {
    DEFAULT_CAPS.iter().copied().collect()
}

/// Drops every capability outside the default set from the bounding set. Call while still root with
/// full capabilities, before changing user.
pub fn drop_bounding() -> Result<(), String> {
    let keep = default_set();
    for cap in caps::all() {
        if !keep.contains(&cap) {
            caps::drop(None, CapSet::Bounding, cap)
                .map_err(|e| format!("drop {cap} from the bounding set: {e}"))?;
        }
    }
    Ok(())
}

/// Switches to `uid`/`gid` with supplementary groups, then leaves the process with the default
/// capabilities if it is root and with none otherwise (as Docker does for non-root users).
pub fn set_identity(uid: u32, gid: u32, groups: &[u32]) -> Result<(), String> {
    use nix::unistd::{setgroups, setresgid, setresuid, Gid, Uid};
    let gids: Vec<Gid> = groups.iter().map(|g| Gid::from_raw(*g)).collect();
    setgroups(&gids).map_err(|e| format!("setgroups: {e}"))?;
    setresgid(Gid::from_raw(gid), Gid::from_raw(gid), Gid::from_raw(gid))
        .map_err(|e| format!("setgid {gid}: {e}"))?;
    setresuid(Uid::from_raw(uid), Uid::from_raw(uid), Uid::from_raw(uid))
        .map_err(|e| format!("setuid {uid}: {e}"))?;
    let set = if uid == 0 {
        default_set()
    } else {
        CapsHashSet::new()
    };
    caps::clear(None, CapSet::Ambient).map_err(|e| format!("clear ambient capabilities: {e}"))?;
    for which in [CapSet::Effective, CapSet::Permitted, CapSet::Inheritable] {
        caps::set(None, which, &set).map_err(|e| format!("set {which:?} capabilities: {e}"))?;
    }
    Ok(())
}

/// `prctl(PR_SET_NO_NEW_PRIVS)`: setuid binaries and file capabilities cannot raise privileges.
pub fn set_no_new_privs() -> Result<(), String> {
    // SAFETY: prctl with PR_SET_NO_NEW_PRIVS takes integer arguments only.
    let rc = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    if rc != 0 {
        return Err(format!("no_new_privs: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// One process limit as `setrlimit` takes it: the resource number and the soft and hard values
/// (`u64::MAX` is `RLIM_INFINITY`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Rlimit {
    /// The name it was asked by (`nofile`), for messages.
    pub name: String,
    pub resource: i32,
    pub soft: u64,
    pub hard: u64,
}

/// The rlimits of a container's ulimits (names as Docker's `--ulimit`, `-1` unlimited), checked
/// with the shared rules. Pure.
pub fn rlimits(
    ulimits: &std::collections::BTreeMap<String, hoist_proto::Ulimit>,
) -> Result<Vec<Rlimit>, String> {
    use hoist_proto::rules;
    let value = |v: i64| if v == -1 { u64::MAX } else { v as u64 };
    ulimits
        .iter()
        .map(|(name, u)| {
            rules::check_ulimit(name, u.soft, u.hard).map_err(|e| format!("ulimit {name}: {e}"))?;
            let resource = rules::ulimit_resource(name)
                .ok_or_else(|| format!("ulimit {name}: not a ulimit"))?;
            Ok(Rlimit {
                name: name.clone(),
                resource,
                soft: value(u.soft),
                hard: value(u.hard),
            })
        })
        .collect()
}

/// Raises the open-files limit to what Docker containers get by default (1048576), or as far as
/// this host lets us (without CAP_SYS_RESOURCE: the soft limit up to the inherited hard limit);
/// then sets the container's own limits (`--ulimit`), which win.
pub fn set_rlimits(limits: &[Rlimit]) -> Result<(), String> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if setrlimit(Resource::RLIMIT_NOFILE, 1_048_576, 1_048_576).is_err() {
        let (_, hard) =
            getrlimit(Resource::RLIMIT_NOFILE).map_err(|e| format!("rlimit nofile: {e}"))?;
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)
            .map_err(|e| format!("rlimit nofile: {e}"))?;
    }
    for l in limits {
        let value = libc::rlimit {
            rlim_cur: l.soft,
            rlim_max: l.hard,
        };
        // SAFETY: setrlimit reads the rlimit struct, which lives across the call; an unknown
        // resource number is refused with EINVAL, never undefined behaviour.
        if unsafe { libc::setrlimit(l.resource as _, &value) } != 0 {
            return Err(format!(
                "ulimit {}={}:{}: {}",
                l.name,
                l.soft as i64,
                l.hard as i64,
                std::io::Error::last_os_error()
            ));
        }
    }
    Ok(())
}

/// System calls a container never needs: loading kernel code, mounting, changing namespaces,
/// tracing other processes, keyrings, clocks, swap, reboot. They fail with EPERM.
const DENIED: &[i64] = &[
    libc::SYS_acct,
    libc::SYS_add_key,
    libc::SYS_bpf,
    libc::SYS_clock_adjtime,
    libc::SYS_clock_settime,
    libc::SYS_delete_module,
    libc::SYS_finit_module,
    libc::SYS_fsconfig,
    libc::SYS_fsmount,
    libc::SYS_fsopen,
    libc::SYS_fspick,
    libc::SYS_init_module,
    libc::SYS_ioperm,
    libc::SYS_iopl,
    libc::SYS_kcmp,
    libc::SYS_kexec_file_load,
    libc::SYS_kexec_load,
    libc::SYS_keyctl,
    libc::SYS_lookup_dcookie,
    libc::SYS_mount,
    libc::SYS_mount_setattr,
    libc::SYS_move_mount,
    libc::SYS_name_to_handle_at,
    libc::SYS_nfsservctl,
    libc::SYS_open_by_handle_at,
    libc::SYS_open_tree,
    libc::SYS_perf_event_open,
    libc::SYS_pivot_root,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    libc::SYS_ptrace,
    libc::SYS_quotactl,
    libc::SYS_reboot,
    libc::SYS_request_key,
    libc::SYS_setns,
    libc::SYS_settimeofday,
    libc::SYS_swapoff,
    libc::SYS_swapon,
    libc::SYS_syslog,
    libc::SYS__sysctl,
    libc::SYS_umount2,
    libc::SYS_unshare,
    libc::SYS_uselib,
    libc::SYS_userfaultfd,
    libc::SYS_ustat,
];

/// The container's seccomp filters (x86-64): the calls above fail with EPERM, `clone` with
/// `CLONE_NEWUSER` too, and `clone3` with ENOSYS so that libc falls back to `clone` (whose flags a
/// classic BPF filter can inspect; `clone3` passes them in memory). Everything else is allowed.
/// Two programs are installed; the kernel applies the most restrictive verdict of all.
#[derive(Debug, Clone)]
pub struct Seccomp {
    programs: Vec<BpfProgram>,
}

impl Seccomp {
    pub fn default_profile() -> Result<Self, String> {
        let arch = || {
            std::env::consts::ARCH
                .try_into()
                .map_err(|e| format!("seccomp arch: {e:?}"))
        };
        let mut deny: BTreeMap<i64, Vec<SeccompRule>> =
            DENIED.iter().map(|nr| (*nr, Vec::new())).collect();
        let new_user = libc::CLONE_NEWUSER as u64;
        let cond = SeccompCondition::new(
            0,
            SeccompCmpArgLen::Qword,
            SeccompCmpOp::MaskedEq(new_user),
            new_user,
        )
        .map_err(|e| format!("seccomp condition: {e}"))?;
        deny.insert(
            libc::SYS_clone,
            vec![SeccompRule::new(vec![cond]).map_err(|e| format!("seccomp rule: {e}"))?],
        );
        let eperm = SeccompFilter::new(
            deny,
            SeccompAction::Allow,
            SeccompAction::Errno(libc::EPERM as u32),
            arch()?,
        )
        .map_err(|e| format!("seccomp filter: {e}"))?;
        let enosys = SeccompFilter::new(
            BTreeMap::from([(libc::SYS_clone3, Vec::new())]),
            SeccompAction::Allow,
            SeccompAction::Errno(libc::ENOSYS as u32),
            arch()?,
        )
        .map_err(|e| format!("seccomp filter: {e}"))?;
        let programs = [eperm, enosys]
            .into_iter()
            .map(|f| f.try_into().map_err(|e| format!("seccomp compile: {e:?}")))
            .collect::<Result<_, _>>()?;
        Ok(Self { programs })
    }

    /// Installs the filters on the calling thread. Requires `no_new_privs` (or CAP_SYS_ADMIN).
    pub fn apply(&self) -> Result<(), String> {
        for prog in &self.programs {
            seccompiler::apply_filter(prog).map_err(|e| format!("seccomp: {e}"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_compiles() {
        let s = Seccomp::default_profile().unwrap();
        assert_eq!(s.programs.len(), 2);
        assert!(s.programs[0].len() > DENIED.len());
    }

    #[test]
    fn ulimits_become_rlimits() {
        use hoist_proto::Ulimit;
        let u = |soft, hard| Ulimit { soft, hard };
        let limits = rlimits(
            &[
                ("nofile".to_string(), u(1024, 4096)),
                ("core".to_string(), u(0, -1)),
            ]
            .into(),
        )
        .unwrap();
        assert_eq!(
            limits
                .iter()
                .map(|l| (l.name.as_str(), l.resource, l.soft, l.hard))
                .collect::<Vec<_>>(),
            [
                ("core", libc::RLIMIT_CORE as i32, 0, libc::RLIM_INFINITY),
                ("nofile", libc::RLIMIT_NOFILE as i32, 1024, 4096),
            ]
        );
        assert_eq!(
            rlimits(&[("nofile".to_string(), u(5, 1))].into()).unwrap_err(),
            "ulimit nofile: soft 5 is above hard 1"
        );
    }

    #[test]
    fn default_caps_are_fourteen_distinct() {
        assert_eq!(default_set().len(), 14);
    }
}
