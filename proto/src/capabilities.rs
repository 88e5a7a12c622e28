//! Linux capabilities by name, and the set a container gets from `cap_add` and `cap_drop`.
//!
//! One copy for both sides: the controller refuses an unknown name at apply (naming the field),
//! and the agent computes the set it hands the runtime with the same rules. Names are Docker's:
//! case does not matter, the `CAP_` prefix may be left out, and `ALL` means every capability.
//! Pure.

use std::collections::BTreeSet;

/// Every capability this build knows, at its number (`include/uapi/linux/capability.h`).
pub const ALL: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Docker's default set: what a container gets without `cap_add` or `cap_drop`.
pub const DEFAULT: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// The word for every capability in `cap_add` and `cap_drop`.
pub const EVERY: &str = "ALL";

/// A name as written (`net_admin`, `CAP_NET_ADMIN`, `all`) → its canonical form
/// (`CAP_NET_ADMIN`, `ALL`); an unknown name is refused.
pub fn normalize(name: &str) -> Result<&'static str, String> {
    let upper = name.trim().to_ascii_uppercase();
    if upper == EVERY {
        return Ok(EVERY);
    }
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    ALL.iter()
        .find(|c| **c == full)
        .copied()
        .ok_or_else(|| format!("unknown capability {name:?} (names are Linux's, as CAP_NET_ADMIN or NET_ADMIN, or ALL)"))
}

/// The capability's number, for a canonical name.
pub fn number(name: &str) -> Option<u32> {
    ALL.iter().position(|c| *c == name).map(|n| n as u32)
}

/// The capabilities a container gets, in number order, by Docker's rules: `ALL` in `add` gives
/// every capability but those dropped; else `ALL` in `drop` gives only those added; else the
/// default set without those dropped, plus those added.
pub fn effective(add: &[String], drop: &[String]) -> Result<Vec<&'static str>, String> {
    let add: BTreeSet<&str> = add.iter().map(|n| normalize(n)).collect::<Result<_, _>>()?;
    let drop: BTreeSet<&str> = drop
        .iter()
        .map(|n| normalize(n))
        .collect::<Result<_, _>>()?;
    let set: BTreeSet<&'static str> = if add.contains(EVERY) {
        ALL.iter().copied().filter(|c| !drop.contains(c)).collect()
    } else if drop.contains(EVERY) {
        ALL.iter().copied().filter(|c| add.contains(c)).collect()
    } else {
        ALL.iter()
            .copied()
            .filter(|c| (DEFAULT.contains(c) && !drop.contains(c)) || add.contains(c))
            .collect()
    };
    let mut out: Vec<&'static str> = set.into_iter().collect();
    out.sort_by_key(|c| number(c));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn names_are_read_as_docker_reads_them() {
        assert_eq!(normalize("net_admin"), Ok("CAP_NET_ADMIN"));
        assert_eq!(normalize("CAP_SYS_ADMIN"), Ok("CAP_SYS_ADMIN"));
        assert_eq!(normalize("Cap_Kill"), Ok("CAP_KILL"));
        assert_eq!(normalize("all"), Ok("ALL"));
        assert_eq!(normalize(" chown "), Ok("CAP_CHOWN"));
        for bad in [
            "",
            "CAP_",
            "CAP_ALL",
            "NET-ADMIN",
            "SYS_ADMIN2",
            "CAP_CHOWN\0",
        ] {
            assert!(normalize(bad).is_err(), "{bad:?}");
        }
        assert_eq!(number("CAP_CHOWN"), Some(0));
        assert_eq!(number("CAP_SYS_ADMIN"), Some(21));
        assert_eq!(number("CAP_CHECKPOINT_RESTORE"), Some(40));
    }

    #[test]
    fn the_default_set_is_dockers_fourteen() {
        let d = effective(&[], &[]).unwrap();
        assert_eq!(d.len(), 14);
        // The bits of /proc/PID/status's CapEff in a Docker container: 00000000a80425fb.
        let mask: u64 = d.iter().map(|c| 1u64 << number(c).unwrap()).sum();
        assert_eq!(mask, 0xa80425fb);
    }

    #[test]
    fn add_and_drop_follow_dockers_rules() {
        let e = effective(&names(&["NET_ADMIN"]), &names(&["chown", "CAP_KILL"])).unwrap();
        assert!(e.contains(&"CAP_NET_ADMIN"));
        assert!(!e.contains(&"CAP_CHOWN") && !e.contains(&"CAP_KILL"));
        assert_eq!(e.len(), 13);
        // Drop ALL keeps only what is added.
        let e = effective(&names(&["NET_BIND_SERVICE"]), &names(&["ALL"])).unwrap();
        assert_eq!(e, ["CAP_NET_BIND_SERVICE"]);
        assert!(effective(&[], &names(&["all"])).unwrap().is_empty());
        // Add ALL gives every capability but the dropped ones (drop ALL then means nothing).
        let e = effective(&names(&["ALL"]), &names(&["SYS_ADMIN"])).unwrap();
        assert_eq!(e.len(), 40);
        assert!(!e.contains(&"CAP_SYS_ADMIN"));
        assert_eq!(
            effective(&names(&["ALL"]), &names(&["ALL"])).unwrap().len(),
            41
        );
        // In number order, each once.
        let e = effective(&names(&["sys_admin", "SYS_ADMIN", "chown"]), &[]).unwrap();
        let nums: Vec<u32> = e.iter().map(|c| number(c).unwrap()).collect();
        assert!(nums.windows(2).all(|w| w[0] < w[1]), "{nums:?}");
        assert_eq!(
            effective(&names(&["NET_ADMN"]), &[]).unwrap_err(),
            "unknown capability \"NET_ADMN\" (names are Linux's, as CAP_NET_ADMIN or NET_ADMIN, or ALL)"
        );
    }
}
