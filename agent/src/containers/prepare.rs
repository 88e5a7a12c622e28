//! Pure preparation of a container: from the operator's request and the image's config to the
//! process the runtime starts (argv, env, working directory, hostname, generated `/etc` files).
//! No I/O here, so every Docker-compatible defaulting rule is tested directly.

use hoist_proto::{CreateContainer, ImageConfig};

/// The process as it will be started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    /// The user to resolve against the image (`None`: root).
    pub user: Option<String>,
}

pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Docker's rules: an explicit entrypoint replaces the image's and drops the image's CMD; a given
/// command replaces CMD; env entries override the image's by key; `HOSTNAME` is set; a missing
/// `PATH` gets the default.
pub fn process(
    req: &CreateContainer,
    image: &ImageConfig,
    hostname: &str,
) -> Result<Process, String> {
    let entrypoint = req
        .entrypoint
        .clone()
        .or_else(|| image.entrypoint.clone())
        .unwrap_or_default();
    let cmd = if !req.cmd.is_empty() {
        req.cmd.clone()
    } else if req.entrypoint.is_some() {
        Vec::new()
    } else {
        image.cmd.clone().unwrap_or_default()
    };
    let args: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    if args.is_empty() {
        return Err("no command given and the image has no CMD or ENTRYPOINT".into());
    }
    for e in &req.env {
        hoist_common::parse::parse_env(e).map_err(|m| format!("env: {m}"))?;
    }
    let mut env = hoist_common::parse::merge_env(
        std::iter::once(format!("HOSTNAME={hostname}"))
            .chain(image.env.iter().cloned())
            .chain(req.env.iter().cloned()),
    );
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, DEFAULT_PATH.to_string());
    }
    let cwd = req
        .workdir
        .clone()
        .or_else(|| image.working_dir.clone())
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "/".into());
    if !cwd.starts_with('/') {
        return Err(format!("workdir {cwd:?}: must be an absolute path"));
    }
    let user = req
        .user
        .clone()
        .or_else(|| image.user.clone())
        .filter(|u| !u.is_empty());
    Ok(Process {
        args,
        env,
        cwd,
        user,
    })
}

/// `/etc/hosts` of a container.
pub fn hosts_file(hostname: &str, ip: Option<std::net::Ipv4Addr>) -> String {
    let mut s = String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    match ip {
        Some(ip) => s.push_str(&format!("{ip}\t{hostname}\n")),
        None => s.push_str(&format!("127.0.1.1\t{hostname}\n")),
    }
    s
}

/// `/etc/resolv.conf` of a container: the host's, minus loopback resolvers, which would point at
/// the container's own loopback.
pub fn resolv_conf(host: &str) -> String {
    host.lines()
        .filter(|l| {
            let mut parts = l.split_whitespace();
            !(parts.next() == Some("nameserver")
                && parts
                    .next()
                    .is_some_and(|a| a.starts_with("127.") || a == "::1"))
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

/// `/etc/resolv.conf` of a container on an overlay node: the cluster DNS on its gateway only
/// (which forwards other names to the host's resolvers), keeping the host's search domains and
/// options. A replica of a stack's service searches the stack first, so `db` finds `db.shop`,
/// which the cluster DNS answers with `shop_db` (Compose's short names).
pub fn cluster_resolv_conf(dns: std::net::Ipv4Addr, host: &str, stack: Option<&str>) -> String {
    let mut out = format!("nameserver {dns}\n");
    let mut search: Vec<&str> = stack.into_iter().collect();
    for l in host.lines() {
        let mut words = l.split_whitespace();
        match words.next() {
            Some("search" | "domain") => search.extend(words),
            Some("options") => {
                out.push_str(l);
                out.push('\n');
            }
            _ => {}
        }
    }
    if !search.is_empty() {
        out.push_str(&format!("search {}\n", search.join(" ")));
    }
    out
}

/// The stack a task's container belongs to: its service is named `STACK_SERVICE`.
pub fn stack_of(labels: &std::collections::BTreeMap<String, String>) -> Option<&str> {
    let service = labels.get("hoist.service")?;
    service.split_once('_').map(|(stack, _)| stack)
}

/// Parses a stop signal as images give it (`SIGTERM`, `TERM`, `15`); default SIGTERM.
pub fn stop_signal(text: Option<&str>) -> Result<i32, String> {
    match text {
        None | Some("") => Ok(libc::SIGTERM),
        Some(t) => parse_signal(t),
    }
}

/// `SIGKILL`, `KILL`, `kill` or `9`: the one rule of Hoist (`hoist_proto::signal`), which the
/// controller also checks a spec's `stop_signal` with.
pub use hoist_proto::signal::parse_signal;

#[cfg(test)]
mod tests {
    use super::*;

    fn image() -> ImageConfig {
        ImageConfig {
            env: vec!["PATH=/bin".into(), "A=1".into()],
            entrypoint: Some(vec!["/entry".into()]),
            cmd: Some(vec!["serve".into()]),
            working_dir: Some("/app".into()),
            user: Some("www".into()),
            ..Default::default()
        }
    }

    #[test]
    fn image_defaults() {
        let p = process(&CreateContainer::default(), &image(), "h").unwrap();
        assert_eq!(p.args, ["/entry", "serve"]);
        assert_eq!(p.env, ["HOSTNAME=h", "PATH=/bin", "A=1"]);
        assert_eq!(p.cwd, "/app");
        assert_eq!(p.user.as_deref(), Some("www"));
    }

    #[test]
    fn overrides() {
        let req = CreateContainer {
            cmd: vec!["sh".into(), "-c".into(), "x".into()],
            env: vec!["A=2".into(), "B=3".into()],
            workdir: Some("/w".into()),
            user: Some("1000:1000".into()),
            ..Default::default()
        };
        let p = process(&req, &image(), "h").unwrap();
        assert_eq!(p.args, ["/entry", "sh", "-c", "x"]);
        assert_eq!(p.env, ["HOSTNAME=h", "PATH=/bin", "A=2", "B=3"]);
        assert_eq!(
            (p.cwd.as_str(), p.user.as_deref()),
            ("/w", Some("1000:1000"))
        );
    }

    #[test]
    fn entrypoint_override_drops_image_cmd() {
        let req = CreateContainer {
            entrypoint: Some(vec!["/bin/true".into()]),
            ..Default::default()
        };
        assert_eq!(process(&req, &image(), "h").unwrap().args, ["/bin/true"]);
    }

    #[test]
    fn default_path_and_errors() {
        let bare = ImageConfig::default();
        let req = CreateContainer {
            cmd: vec!["true".into()],
            ..Default::default()
        };
        let p = process(&req, &bare, "h").unwrap();
        assert_eq!(p.env[0], DEFAULT_PATH);
        assert_eq!(p.cwd, "/");
        assert!(process(&CreateContainer::default(), &bare, "h")
            .unwrap_err()
            .contains("no command"));
        let rel = CreateContainer {
            cmd: vec!["x".into()],
            workdir: Some("rel".into()),
            ..Default::default()
        };
        assert!(process(&rel, &bare, "h").unwrap_err().contains("absolute"));
        let badenv = CreateContainer {
            cmd: vec!["x".into()],
            env: vec!["=x".into()],
            ..Default::default()
        };
        assert!(process(&badenv, &bare, "h")
            .unwrap_err()
            .starts_with("env:"));
    }

    #[test]
    fn generated_files() {
        assert!(hosts_file("web", Some("10.89.0.2".parse().unwrap())).contains("10.89.0.2\tweb\n"));
        let host = "nameserver 10.0.0.1\nsearch lan\noptions edns0\n";
        let c = cluster_resolv_conf("10.200.0.1".parse().unwrap(), host, None);
        assert_eq!(c, "nameserver 10.200.0.1\noptions edns0\nsearch lan\n");
        let c = cluster_resolv_conf("10.200.0.1".parse().unwrap(), host, Some("shop"));
        assert_eq!(c, "nameserver 10.200.0.1\noptions edns0\nsearch shop lan\n");
        let labels = |s: &str| {
            std::collections::BTreeMap::from([("hoist.service".to_string(), s.to_string())])
        };
        assert_eq!(stack_of(&labels("shop_web")), Some("shop"));
        assert_eq!(stack_of(&labels("web")), None);
        assert_eq!(stack_of(&Default::default()), None);
        let r = resolv_conf("nameserver 127.0.0.53\nnameserver 10.0.0.1\nsearch lan\n");
        assert_eq!(r, "nameserver 10.0.0.1\nsearch lan\n");
    }

    #[test]
    fn signals() {
        assert_eq!(stop_signal(None), Ok(libc::SIGTERM));
        assert_eq!(parse_signal("SIGKILL"), Ok(9));
        assert_eq!(parse_signal("kill"), Ok(9));
        assert_eq!(parse_signal("15"), Ok(15));
        assert!(parse_signal("SIGNOPE").is_err());
        assert!(parse_signal("99").is_err());
        assert_eq!(stop_signal(Some("QUIT")), Ok(libc::SIGQUIT));
    }
}
