//! Parsers for the values operators type: sizes (`64m`), CPUs (`0.5`), published ports
//! (`8080:80/tcp`), volumes (`/src:/dst:ro`), users (`1000:1000`) and `KEY=VALUE` pairs.
//!
//! Each returns a one-line error that quotes the offending text, so the CLI and the API can pass
//! it straight to the operator.

use hoist_proto::{PortMapping, Protocol, VolumeMount};

/// Sizes follow one rule everywhere (Docker's binary units): see [`hoist_proto::quantity::parse_size`].
pub use hoist_proto::quantity::parse_size;

/// Formats bytes the way operators read them: `64MiB`, `1.5GiB`, `312B`.
pub fn format_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 || value.fract() == 0.0 {
        format!("{value:.0}{}", UNITS[unit])
    } else {
        format!("{value:.1}{}", UNITS[unit])
    }
}

/// `--cpus 0.5` → 500 thousandths of a CPU. Must be positive, at most 1024 CPUs, 3 decimals.
pub fn parse_cpus(text: &str) -> Result<u64, String> {
    let err = || format!("{text:?} is not a number of CPUs (examples: 0.5, 2)");
    let value: f64 = text.trim().parse().map_err(|_| err())?;
    if !value.is_finite() || value <= 0.0 || value > 1024.0 {
        return Err(err());
    }
    let millis = (value * 1000.0).round() as u64;
    if millis == 0 {
        return Err(format!("{text:?}: at least 0.001 CPUs"));
    }
    Ok(millis)
}

/// `-p HOSTPORT:PORT[/tcp|udp]`.
pub fn parse_port(text: &str) -> Result<PortMapping, String> {
    let (ports, proto) = match text.split_once('/') {
        Some((p, proto)) => (p, proto),
        None => (text, "tcp"),
    };
    let protocol = match proto {
        "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        _ => return Err(format!("{text:?}: protocol must be tcp or udp")),
    };
    let (host, container) = ports
        .split_once(':')
        .ok_or_else(|| format!("{text:?} is not HOSTPORT:PORT[/tcp|udp]"))?;
    let port = |p: &str| -> Result<u16, String> {
        match p.parse::<u16>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!("{text:?}: {p:?} is not a port (1-65535)")),
        }
    };
    Ok(PortMapping {
        host_port: port(host)?,
        container_port: port(container)?,
        protocol,
    })
}

/// `-v HOSTPATH:PATH[:ro|rw]`. Both paths must be absolute.
pub fn parse_volume(text: &str) -> Result<VolumeMount, String> {
    let parts: Vec<&str> = text.split(':').collect();
    let (host, container, read_only) = match parts.as_slice() {
        [h, c] => (*h, *c, false),
        [h, c, "ro"] => (*h, *c, true),
        [h, c, "rw"] => (*h, *c, false),
        [_, _, opt] => {
            return Err(format!(
                "{text:?}: unknown volume option {opt:?} (use ro or rw)"
            ))
        }
        _ => return Err(format!("{text:?} is not HOSTPATH:PATH[:ro]")),
    };
    for p in [host, container] {
        if !p.starts_with('/') {
            return Err(format!("{text:?}: {p:?} must be an absolute path"));
        }
    }
    if container.split('/').any(|c| c == "..") {
        return Err(format!("{text:?}: the container path may not contain '..'"));
    }
    Ok(VolumeMount {
        host_path: host.into(),
        container_path: container.into(),
        read_only,
    })
}

/// `KEY=VALUE` (an environment entry): the key must be non-empty and free of `=`.
pub fn parse_env(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("{text:?} is not KEY=VALUE")),
    }
}

/// Environment entries with Docker's override rule applied: an entry replaces every earlier
/// one with the same key (the part before the first `=`), and takes its place at the end. Linear
/// in the number of entries (one map of each key's last position), so a container with 100,000
/// variables costs no more than 10 times one with 10,000.
pub fn merge_env(entries: impl IntoIterator<Item = String>) -> Vec<String> {
    fn key(e: &str) -> &str {
        e.split('=').next().unwrap_or_default()
    }
    let entries: Vec<String> = entries.into_iter().collect();
    let mut last = std::collections::HashMap::with_capacity(entries.len());
    for (i, e) in entries.iter().enumerate() {
        last.insert(key(e), i);
    }
    let keep: Vec<bool> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| last.get(key(e)) == Some(&i))
        .collect();
    drop(last);
    entries
        .into_iter()
        .zip(keep)
        .filter_map(|(e, keep)| keep.then_some(e))
        .collect()
}

/// A user as given to `-u`: numeric ids, or names to look up in the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserSpec {
    Ids { uid: u32, gid: Option<u32> },
    Named { user: String, group: Option<String> },
}

/// `-u UID[:GID]` or `NAME[:GROUP]`.
pub fn parse_user(text: &str) -> Result<UserSpec, String> {
    if text.is_empty() {
        return Err("user must not be empty".into());
    }
    let (u, g) = match text.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (text, None),
    };
    if u.is_empty() || g.is_some_and(str::is_empty) {
        return Err(format!("{text:?} is not UID[:GID] or NAME[:GROUP]"));
    }
    match (u.parse::<u32>(), g.map(str::parse::<u32>)) {
        (Ok(uid), None) => Ok(UserSpec::Ids { uid, gid: None }),
        (Ok(uid), Some(Ok(gid))) => Ok(UserSpec::Ids {
            uid,
            gid: Some(gid),
        }),
        _ => Ok(UserSpec::Named {
            user: u.into(),
            group: g.map(Into::into),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The rule as it was written before it was made linear: remove, then append.
    fn merge_env_naive(entries: &[String]) -> Vec<String> {
        let mut env: Vec<String> = Vec::new();
        for kv in entries {
            let key = kv.split('=').next().unwrap_or_default();
            env.retain(|e| e.split('=').next() != Some(key));
            env.push(kv.clone());
        }
        env
    }

    #[test]
    fn merge_env_overrides_by_key() {
        let e = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            merge_env(e(&[
                "HOSTNAME=h",
                "PATH=/bin",
                "A=1",
                "A=2",
                "B=3",
                "PATH=/x",
                "C"
            ])),
            e(&["HOSTNAME=h", "A=2", "B=3", "PATH=/x", "C"])
        );
        assert_eq!(merge_env(e(&["A=1=2", "A=3", "A"])), e(&["A"]));
    }

    proptest! {
        #[test]
        fn merge_env_is_the_naive_rule(entries in proptest::collection::vec("[ABC]{0,2}(=[xy=]{0,2})?", 0..20)) {
            prop_assert_eq!(merge_env(entries.clone()), merge_env_naive(&entries));
        }
    }

    #[test]
    fn size_format() {
        assert_eq!(format_size(312), "312B");
        assert_eq!(format_size(64 << 20), "64MiB");
        assert_eq!(format_size(3 << 29), "1.5GiB");
    }

    #[test]
    fn cpus() {
        assert_eq!(parse_cpus("0.5"), Ok(500));
        assert_eq!(parse_cpus("2"), Ok(2000));
        assert!(parse_cpus("0").is_err());
        assert!(parse_cpus("-1").is_err());
        assert!(parse_cpus("lots").is_err());
        assert!(parse_cpus("0.0001").is_err());
    }

    #[test]
    fn ports() {
        assert_eq!(
            parse_port("8080:80"),
            Ok(PortMapping {
                host_port: 8080,
                container_port: 80,
                protocol: Protocol::Tcp
            })
        );
        assert_eq!(parse_port("53:53/udp").unwrap().protocol, Protocol::Udp);
        for bad in ["80", "0:80", "80:70000", "a:80", "80:80/sctp", ":80"] {
            assert!(parse_port(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn volumes() {
        let v = parse_volume("/data:/var/data:ro").unwrap();
        assert_eq!(
            (v.host_path.as_str(), v.container_path.as_str(), v.read_only),
            ("/data", "/var/data", true)
        );
        assert!(!parse_volume("/a:/b").unwrap().read_only);
        for bad in ["/a", "a:/b", "/a:b", "/a:/b:rx", "/a:/../etc", "/a:/b:ro:x"] {
            assert!(parse_volume(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn env_and_user() {
        assert_eq!(parse_env("A=b=c"), Ok(("A".into(), "b=c".into())));
        assert!(parse_env("=x").is_err());
        assert!(parse_env("NOEQ").is_err());
        assert_eq!(
            parse_user("1000"),
            Ok(UserSpec::Ids {
                uid: 1000,
                gid: None
            })
        );
        assert_eq!(
            parse_user("1000:50"),
            Ok(UserSpec::Ids {
                uid: 1000,
                gid: Some(50)
            })
        );
        assert_eq!(
            parse_user("www:staff"),
            Ok(UserSpec::Named {
                user: "www".into(),
                group: Some("staff".into())
            })
        );
        assert!(parse_user("1000:").is_err());
    }

    proptest! {
        #[test]
        fn size_format_round_trips_whole_units(n in 0u64..1_000_000, unit in 0u32..4) {
            let bytes = n << (10 * unit);
            let text = format_size(bytes);
            let back = parse_size(&text).unwrap();
            // one decimal place: within 5% of the original
            prop_assert!((back as f64 - bytes as f64).abs() <= bytes as f64 * 0.05 + 1.0);
        }

        #[test]
        fn ports_round_trip(h in 1u16.., c in 1u16.., udp: bool) {
            let proto = if udp { "udp" } else { "tcp" };
            let m = parse_port(&format!("{h}:{c}/{proto}")).unwrap();
            prop_assert_eq!((m.host_port, m.container_port, m.protocol.to_string()), (h, c, proto.to_string()));
        }
    }
}
