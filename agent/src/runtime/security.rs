//! The privileges a container keeps: its capabilities (Docker's 14 by default, changed by
//! `cap_add`/`cap_drop`), `no_new_privs` (on unless the spec turns it off), the seccomp
//! allow-list of [`super::seccomp`], and rlimits.
//!
//! These run in the container's first process (and in exec'd processes) just before `execve`,
//! in one order ([`Privileges::apply`]): bounding set, `no_new_privs`, seccomp, then the user
//! and capabilities. Seccomp goes in while the process still has `CAP_SYS_ADMIN`, so that a
//! container without `no_new_privs` gets its filter too (as runc does); the steps after it
//! (`setgroups`, `setresuid`, `capset`) are on every profile's list.

use super::seccomp::{Profile, Seccomp};
use caps::{CapSet, Capability, CapsHashSet};

/// What a container's processes keep, prepared (the filter compiled) before the fork.
#[derive(Debug, Clone)]
pub struct Privileges {
    /// The bounding set, and the effective/permitted sets of a root process.
    capabilities: CapsHashSet,
    no_new_privs: bool,
    seccomp: Seccomp,
}

impl Privileges {
    /// The privileges of a container whose capabilities are `names` (canonical, as
    /// `hoist_proto::capabilities::effective` gives them; `None`: Docker's default set, which is
    /// what a spec written by an agent before `cap_add` existed means).
    pub fn new(names: Option<&[String]>, no_new_privs: bool) -> Result<Self, String> {
        let names: Vec<&str> = match names {
            Some(n) => n.iter().map(String::as_str).collect(),
            None => hoist_proto::capabilities::DEFAULT.to_vec(),
        };
        let capabilities = names
            .iter()
            .map(|n| {
                n.parse::<Capability>()
                    .map_err(|_| format!("capability {n}: not known to this agent"))
            })
            .collect::<Result<CapsHashSet, _>>()?;
        let seccomp = Seccomp::compile(&Profile::docker_default(&names))?;
        Ok(Self {
            capabilities,
            no_new_privs,
            seccomp,
        })
    }

    /// Drops the calling process to what the container keeps, running as `uid`/`gid` with
    /// supplementary `groups`: every capability outside the set leaves the bounding set,
    /// `no_new_privs` is set (unless turned off), the seccomp filter goes in, then the process
    /// switches user and keeps the set if it is root, none otherwise (as Docker does for
    /// non-root users). Call while still root with full capabilities.
    pub fn apply(&self, uid: u32, gid: u32, groups: &[u32]) -> Result<(), String> {
        drop_bounding(&self.capabilities)?;
        if self.no_new_privs {
            set_no_new_privs()?;
        }
        self.seccomp.apply()?;
        set_identity(uid, gid, groups, &self.capabilities)
    }
}

/// Drops every capability outside `keep` from the bounding set.
fn drop_bounding(keep: &CapsHashSet) -> Result<(), String> {
    for cap in caps::all() {
        if !keep.contains(&cap) {
            caps::drop(None, CapSet::Bounding, cap)
                .map_err(|e| format!("drop {cap} from the bounding set: {e}"))?;
        }
    }
    Ok(())
}

/// Switches to `uid`/`gid` with supplementary groups, then leaves the process with `keep` if it
/// is root and with no capabilities otherwise.
fn set_identity(uid: u32, gid: u32, groups: &[u32], keep: &CapsHashSet) -> Result<(), String> {
    use nix::unistd::{setgroups, setresgid, setresuid, Gid, Uid};
    let gids: Vec<Gid> = groups.iter().map(|g| Gid::from_raw(*g)).collect();
    setgroups(&gids).map_err(|e| format!("setgroups: {e}"))?;
    setresgid(Gid::from_raw(gid), Gid::from_raw(gid), Gid::from_raw(gid))
        .map_err(|e| format!("setgid {gid}: {e}"))?;
    setresuid(Uid::from_raw(uid), Uid::from_raw(uid), Uid::from_raw(uid))
        .map_err(|e| format!("setuid {uid}: {e}"))?;
    let set = if uid == 0 {
        keep.clone()
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
fn set_no_new_privs() -> Result<(), String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn privileges_are_built_from_capability_names() {
        let p = Privileges::new(None, true).unwrap();
        assert_eq!(p.capabilities.len(), 14);
        assert!(p.capabilities.contains(&Capability::CAP_NET_BIND_SERVICE));
        let names = vec!["CAP_NET_ADMIN".to_string(), "CAP_SYS_ADMIN".to_string()];
        let p = Privileges::new(Some(&names), false).unwrap();
        assert_eq!(p.capabilities.len(), 2);
        assert!(!p.no_new_privs);
        let e = Privileges::new(Some(&["CAP_FLY".to_string()]), true).unwrap_err();
        assert_eq!(e, "capability CAP_FLY: not known to this agent");
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
}
