//! The rules a container's settings must keep, checked in one place by both sides: the
//! controller refuses a service spec at apply with them (`service/validate.rs`), and the agent
//! refuses a create request with them. One copy, so that nothing the controller accepts fails
//! later on every replica (a spec with `memory = "4Mi"` used to be accepted and then refused by
//! each agent). Pure functions; each answers the problem in words, without the field name.

/// The smallest memory limit a container may have: below it the runtime itself does not fit.
pub const MIN_MEMORY_BYTES: u64 = 6 << 20;

/// The most open files a container may ask for: Linux's default `fs.nr_open`.
pub const MAX_NOFILE: i64 = 1 << 20;

/// The limits `setrlimit` knows, by the names Docker and Compose use, with their resource number.
pub const ULIMITS: &[(&str, i32)] = &[
    ("cpu", 0),
    ("fsize", 1),
    ("data", 2),
    ("stack", 3),
    ("core", 4),
    ("rss", 5),
    ("nproc", 6),
    ("nofile", 7),
    ("memlock", 8),
    ("as", 9),
    ("locks", 10),
    ("sigpending", 11),
    ("msgqueue", 12),
    ("nice", 13),
    ("rtprio", 14),
    ("rttime", 15),
];

/// The resource number of a ulimit name.
pub fn ulimit_resource(name: &str) -> Option<i32> {
    ULIMITS.iter().find(|(n, _)| *n == name).map(|(_, r)| *r)
}

/// Checks a memory limit in bytes.
pub fn check_memory(bytes: u64) -> Result<(), String> {
    if bytes < MIN_MEMORY_BYTES {
        return Err(format!(
            "{} is below the minimum of 6MiB",
            format_bytes(bytes)
        ));
    }
    Ok(())
}

/// Checks a pids limit.
pub fn check_pids(pids: i64) -> Result<(), String> {
    if pids < 1 {
        return Err(format!("{pids} must be at least 1"));
    }
    Ok(())
}

/// Checks one ulimit: a known name, values ≥ 0 or -1 (unlimited), soft ≤ hard.
pub fn check_ulimit(name: &str, soft: i64, hard: i64) -> Result<(), String> {
    if ulimit_resource(name).is_none() {
        let known: Vec<&str> = ULIMITS.iter().map(|(n, _)| *n).collect();
        return Err(format!(
            "{name:?} is not a ulimit (one of {})",
            known.join(", ")
        ));
    }
    for v in [soft, hard] {
        if v < -1 {
            return Err(format!("{v} must be ≥ 0, or -1 for unlimited"));
        }
    }
    // The kernel caps open files at `fs.nr_open` (1048576 unless raised): beyond, setrlimit
    // fails on every node, so it is refused here rather than on each replica.
    if name == "nofile" && (soft == -1 || hard == -1 || hard > MAX_NOFILE) {
        return Err(format!(
            "{soft}:{hard}: open files cannot be unlimited or above {MAX_NOFILE}"
        ));
    }
    let unlimited = |v: i64| if v == -1 { u64::MAX } else { v as u64 };
    if unlimited(soft) > unlimited(hard) {
        return Err(format!("soft {soft} is above hard {hard}"));
    }
    Ok(())
}

/// Checks a path inside the container: absolute, not `/`, no `..`, no NUL.
pub fn check_container_path(path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err(format!("{path:?} must be an absolute path"));
    }
    if path.contains('\0') {
        return Err(format!("{path:?} must not contain a NUL byte"));
    }
    if path.split('/').any(|c| c == "..") {
        return Err(format!("{path:?} must not contain '..'"));
    }
    // One spelling per path, so that two mounts of one target are seen as such on both sides.
    let inner = path.trim_end_matches('/');
    if inner.split('/').skip(1).any(|c| c.is_empty() || c == ".") {
        return Err(format!("{path:?} must not contain '//' or '.' components"));
    }
    if path.split('/').all(str::is_empty) {
        return Err("the root directory cannot be a mount point".into());
    }
    Ok(())
}

/// Checks a bind mount's source on the node: absolute, no `..`, no NUL.
pub fn check_host_path(path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err(format!("{path:?} must be an absolute path on the node"));
    }
    if path.contains('\0') || path.split('/').any(|c| c == "..") {
        return Err(format!("{path:?} must not contain '..' or a NUL byte"));
    }
    Ok(())
}

/// Checks a named volume's name, Docker's rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`, at most 128.
pub fn check_volume_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !first_ok || !rest_ok || name.len() > 128 {
        return Err(format!(
            "{name:?} is not a volume name (letters, digits, '_', '.', '-', starting with a \
             letter or digit, at most 128)"
        ));
    }
    Ok(())
}

/// Parses a tmpfs mode in octal (`"1777"`, `"0755"`, `"700"`).
pub fn parse_mode(mode: &str) -> Result<u32, String> {
    u32::from_str_radix(mode, 8)
        .ok()
        .filter(|m| *m <= 0o7777 && !mode.is_empty())
        .ok_or_else(|| format!("{mode:?} is not an octal mode (like \"1777\" or \"0755\")"))
}

/// Checks a user: a name, `UID`, `NAME:GROUP` or `UID:GID`, without whitespace or NUL.
pub fn check_user(user: &str) -> Result<(), String> {
    let ok = |p: &str| {
        !p.is_empty() && p.len() <= 256 && !p.chars().any(|c| c.is_whitespace() || c == '\0')
    };
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    if !ok(u) || g.is_some_and(|g| !ok(g) || g.contains(':')) {
        return Err(format!(
            "{user:?} is not a user (NAME, UID, NAME:GROUP or UID:GID)"
        ));
    }
    Ok(())
}

/// Checks a hostname: RFC 1123 labels separated by dots, at most 253 characters.
pub fn check_hostname(name: &str) -> Result<(), String> {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if name.is_empty() || name.len() > 253 || !name.split('.').all(label_ok) {
        return Err(format!(
            "{name:?} is not a hostname (letters, digits and '-' in dot-separated labels)"
        ));
    }
    Ok(())
}

fn format_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b}B")
    } else {
        let s = format!("{v:.2}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        format!("{s}{}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_and_pids() {
        assert_eq!(
            check_memory(4 << 20).unwrap_err(),
            "4MiB is below the minimum of 6MiB"
        );
        assert!(check_memory(6 << 20).is_ok());
        assert!(check_pids(0).is_err() && check_pids(1).is_ok());
    }

    #[test]
    fn ulimits() {
        assert!(check_ulimit("nofile", 1024, 4096).is_ok());
        assert!(
            check_ulimit("nofile", -1, -1).is_err(),
            "above nr_open: every node refuses"
        );
        assert!(check_ulimit("nofile", 1024, 2_000_000).is_err());
        assert!(check_ulimit("nofile", 1 << 20, 1 << 20).is_ok());
        assert!(check_ulimit("core", -1, -1).is_ok());
        assert!(check_ulimit("core", 0, -1).is_ok());
        assert_eq!(
            check_ulimit("nofile", 4096, 1024).unwrap_err(),
            "soft 4096 is above hard 1024"
        );
        assert!(check_ulimit("nofile", -1, 10).is_err());
        assert!(check_ulimit("files", 1, 1)
            .unwrap_err()
            .starts_with("\"files\" is not a ulimit (one of cpu, fsize"));
        assert_eq!(ulimit_resource("nofile"), Some(7));
    }

    #[test]
    fn paths_names_users_hostnames_modes() {
        assert!(check_container_path("/data").is_ok());
        assert!(check_container_path("data").is_err());
        assert!(check_container_path("/").is_err());
        assert!(check_container_path("/a/../b").is_err());
        assert!(
            check_container_path("/data/.").is_err() && check_container_path("//data").is_err()
        );
        assert!(check_container_path("/data/").is_ok());
        assert!(check_host_path("/srv/x").is_ok() && check_host_path("srv").is_err());
        assert!(check_volume_name("db-data_1.v").is_ok());
        assert!(check_volume_name("_x").is_err() && check_volume_name("a/b").is_err());
        for u in ["postgres", "999", "999:999", "app:staff"] {
            assert!(check_user(u).is_ok(), "{u}");
        }
        for u in ["", "a b", ":1", "1:", "1:2:3"] {
            assert!(check_user(u).is_err(), "{u:?}");
        }
        assert!(check_hostname("db-1.internal").is_ok());
        assert!(check_hostname("-x").is_err() && check_hostname("a..b").is_err());
        assert_eq!(parse_mode("1777"), Ok(0o1777));
        assert_eq!(parse_mode("0755"), Ok(0o755));
        assert!(
            parse_mode("888").is_err() && parse_mode("").is_err() && parse_mode("77777").is_err()
        );
    }
}
