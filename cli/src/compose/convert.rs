//! One merged Compose service → one [`ServiceSpec`], key by key. Every key of a service is
//! matched here: converted, warned about, or refused (the module doc of `compose` lists which).

use super::error::Problems;
use super::value::{
    self, boolean, command, duration, entries, int, kind, list, mapping, scalar, string,
};
use super::FileSource;
use hoist_proto::service::{HealthCheck, ServiceSpec, Ulimit};
use serde_yaml_ng::{Mapping, Value};
use std::collections::BTreeMap;

/// Keys a replica of a cluster service cannot have, with what Hoist does instead.
const UNSUPPORTED: &[(&str, &str)] = &[
    (
        "privileged",
        "replicas run with Hoist's default capabilities",
    ),
    ("devices", "replicas get no host devices"),
    ("device_cgroup_rules", "replicas get no host devices"),
    ("gpus", "replicas get no host devices"),
    (
        "network_mode",
        "every replica is on the stack's overlay network",
    ),
    ("links", "services find each other by name on the overlay"),
    (
        "external_links",
        "services find each other by name on the overlay",
    ),
    (
        "extra_hosts",
        "replicas resolve names through the cluster's DNS",
    ),
    ("dns", "replicas resolve names through the cluster's DNS"),
    (
        "dns_opt",
        "replicas resolve names through the cluster's DNS",
    ),
    (
        "dns_search",
        "replicas resolve names through the cluster's DNS",
    ),
    ("domainname", "replicas have a hostname only"),
    (
        "mac_address",
        "a replica's address comes from its node's subnet",
    ),
    ("pid", "each replica has its own pid namespace"),
    ("ipc", "each replica has its own ipc namespace"),
    ("uts", "each replica has its own uts namespace"),
    ("cgroup", "replicas run in their own cgroup namespace"),
    ("cgroup_parent", "the agent places every replica's cgroup"),
    ("sysctls", "replicas cannot set kernel parameters"),
    (
        "shm_size",
        "/dev/shm has a fixed size (mount a tmpfs at /dev/shm instead)",
    ),
    ("volumes_from", "replicas share no volumes by container"),
    ("runtime", "replicas run in Hoist's own runtime"),
    ("isolation", "replicas run in Hoist's own runtime"),
    ("group_add", "give the user its groups in the image instead"),
    ("cpu_count", "use deploy.resources.limits.cpus"),
    ("cpu_percent", "use deploy.resources.limits.cpus"),
    ("cpu_period", "use deploy.resources.limits.cpus"),
    ("cpu_quota", "use deploy.resources.limits.cpus"),
    ("cpu_rt_period", "use deploy.resources.limits.cpus"),
    ("cpu_rt_runtime", "use deploy.resources.limits.cpus"),
    ("cpu_shares", "use deploy.resources.limits.cpus"),
    ("cpuset", "use deploy.resources.limits.cpus"),
    ("memswap_limit", "use deploy.resources.limits.memory"),
    ("mem_swappiness", "use deploy.resources.limits.memory"),
    (
        "oom_kill_disable",
        "a replica over its memory limit is killed",
    ),
    ("oom_score_adj", "a replica over its memory limit is killed"),
    ("blkio_config", "replicas have no block I/O limits"),
    (
        "storage_opt",
        "a replica's writable layer has no size option",
    ),
    ("credential_spec", "this is a Windows option"),
    ("annotations", "replicas have labels only"),
    ("label_file", "write the labels in the file"),
    ("post_start", "replicas have no lifecycle hooks"),
    (
        "pre_stop",
        "replicas have no lifecycle hooks (stop_signal and stop_grace_period are honoured)",
    ),
    ("use_api_socket", "replicas get no engine socket"),
    ("models", "Hoist runs no models"),
    ("provider", "Hoist runs containers only"),
];

/// Keys with no meaning in a cluster: ignored, with a warning saying why.
const IGNORED: &[(&str, &str)] = &[
    (
        "container_name",
        "replicas are named after the service and their slot",
    ),
    (
        "depends_on",
        "services start in any order; make them wait for each other",
    ),
    (
        "restart",
        "deploy.restart_policy decides (default: restart on any exit), as in Swarm",
    ),
    ("platform", "nodes run the image for their own platform"),
    (
        "pull_policy",
        "nodes pull an image they do not have, pinned to the digest resolved at deploy",
    ),
    ("profiles", "every service of the file is deployed"),
    ("develop", "compose watch is a local development feature"),
    ("attach", "use hoist service logs"),
    (
        "expose",
        "every port of a replica is reachable on the overlay",
    ),
];

/// What converting needs besides the service.
pub struct Ctx<'a> {
    pub stack: &'a str,
    /// The variables (process environment over `.env`), for `environment: [NAME]`.
    pub vars: &'a BTreeMap<String, String>,
    pub source: &'a dyn FileSource,
    /// Declared named volumes: the key in the file → the volume's name on the nodes.
    pub volumes: &'a BTreeMap<String, String>,
    pub warnings: Vec<String>,
    pub problems: Problems,
}

/// One service being converted: its name and which file each of its keys came from.
pub struct Svc<'c, 'a> {
    pub ctx: &'c mut Ctx<'a>,
    pub name: &'c str,
    pub origin: &'c dyn Fn(&str) -> String,
}

impl Svc<'_, '_> {
    pub fn at(&self, key: &str) -> String {
        let top = key.split(['.', '[']).next().unwrap_or(key);
        format!("{}: service {}: {key}", (self.origin)(top), self.name)
    }
    pub fn err(&mut self, key: &str, message: impl Into<String>) {
        let at = self.at(key);
        self.ctx.problems.push(at, message);
    }
    pub fn warn(&mut self, key: &str, message: impl std::fmt::Display) {
        let at = self.at(key);
        self.ctx.warnings.push(format!("{at}: {message}"));
    }
    /// Runs `f`; an error is pushed for `key`.
    pub fn get<T>(&mut self, key: &str, r: Result<T, String>) -> Option<T> {
        r.map_err(|m| self.err(key, m)).ok()
    }
}

/// Converts service `svc` (merged, extends resolved) into a spec named `STACK_NAME`.
pub fn service(s: &mut Svc<'_, '_>, svc: &Mapping) -> Option<ServiceSpec> {
    let mut spec = ServiceSpec::new(&format!("{}_{}", s.ctx.stack, s.name), "");
    let before = s.ctx.problems.0.len();
    let keys = s.get("", entries(svc))?;
    let mut env_files = None;
    let mut environment = None;
    let mut legacy: Vec<(&str, &Value)> = Vec::new();
    let mut build = false;
    let mut service_labels = BTreeMap::new();
    for (key, v) in keys {
        match key {
            "image" => {
                if let Some(i) = s.get(key, string(v)) {
                    spec.image = i;
                }
            }
            "command" => spec.args = s.get(key, command(v)).unwrap_or_default(),
            "entrypoint" => spec.command = s.get(key, command(v)).unwrap_or_default(),
            "environment" => environment = Some(v),
            "env_file" => env_files = Some(v),
            "ports" => super::mounts::ports(s, v, &mut spec.ports),
            "volumes" => super::mounts::volumes(s, v, &mut spec.mounts),
            "tmpfs" => super::mounts::tmpfs(s, v, &mut spec.mounts),
            "user" => spec.user = s.get(key, string(v)),
            "working_dir" => spec.workdir = s.get(key, string(v)),
            "hostname" => spec.hostname = s.get(key, string(v)),
            "init" => spec.init = s.get(key, boolean(v)),
            "read_only" => spec.read_only = s.get(key, boolean(v)).unwrap_or(false),
            "stop_signal" => spec.stop_signal = s.get(key, string(v)),
            "stop_grace_period" => spec.stop_grace_period = s.get(key, duration(v)),
            "ulimits" => ulimits(s, v, &mut spec.ulimits),
            "cap_add" => spec.cap_add = strings(s, key, v),
            "cap_drop" => spec.cap_drop = strings(s, key, v),
            "security_opt" => security_opt(s, v, &mut spec),
            "userns_mode" => {
                if let Some(mode) = s.get(key, string(v)) {
                    match mode.as_str() {
                        "host" => spec.userns = false,
                        "private" => spec.userns = true,
                        other => s.err(
                            key,
                            format!(
                                "{other:?}: use private (a user namespace mapping root to the \
                                 node's --userns-range) or host"
                            ),
                        ),
                    }
                }
            }
            "healthcheck" => spec.health_check = healthcheck(s, v),
            "labels" => service_labels = string_map(s, key, v).unwrap_or_default(),
            "deploy" => super::deploy::deploy(s, v, &mut spec),
            "cpus" | "mem_limit" | "mem_reservation" | "pids_limit" | "scale" => {
                legacy.push((key, v))
            }
            "build" => build = true,
            "networks" => networks(s, v),
            "secrets" | "configs" => s.err(
                key,
                format!(
                    "Hoist does not support {key} yet (they come with the security work); \
                     remove the key or pass the values another way"
                ),
            ),
            "logging" => logging(s, v),
            "tty" | "stdin_open" => {
                if s.get(key, boolean(v)) == Some(true) {
                    s.err(key, "replicas run without a terminal or stdin");
                }
            }
            "extends" => s.err(key, "extends was not resolved (a cycle?)"),
            k if k.starts_with("x-") => {}
            k => {
                if let Some((_, why)) = UNSUPPORTED.iter().find(|(u, _)| *u == k) {
                    s.err(k, format!("Hoist cannot honour {k}: {why}"));
                } else if let Some((_, why)) = IGNORED.iter().find(|(u, _)| *u == k) {
                    s.warn(k, format!("ignored: {why}"));
                } else {
                    s.err(k, "not a Compose service key Hoist knows");
                }
            }
        }
    }
    if spec.image.is_empty() {
        if build {
            s.err(
                "build",
                "Hoist does not build images at deploy: build and push the image, and name it with image",
            );
        } else if s.ctx.problems.0.len() == before {
            s.err("image", "a service needs an image");
        }
    } else if build {
        s.warn("build", "ignored: the image is pulled from its registry");
    }
    // Service labels win over deploy.labels, which Hoist also puts on the containers.
    spec.labels.extend(service_labels);
    spec.env = environment_of(s, env_files, environment);
    super::deploy::legacy(s, &legacy, &mut spec);
    (s.ctx.problems.0.len() == before).then_some(spec)
}

/// A mapping of strings (labels): values may be numbers or booleans.
pub fn string_map(s: &mut Svc<'_, '_>, key: &str, v: &Value) -> Option<BTreeMap<String, String>> {
    let m = s.get(key, mapping(v))?;
    let mut out = BTreeMap::new();
    for (k, val) in s.get(key, entries(m))? {
        let val = match val {
            Value::Null => String::new(),
            other => s.get(&format!("{key}.{k}"), scalar(other))?,
        };
        out.insert(k.to_string(), val);
    }
    Some(out)
}

/// `env_file` entries in order, then `environment` over them.
fn environment_of(
    s: &mut Svc<'_, '_>,
    env_files: Option<&Value>,
    environment: Option<&Value>,
) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    if let Some(files) = env_files {
        for (i, f) in s
            .get("env_file", list(files))
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let key = format!("env_file[{i}]");
            let (path, required) = match f {
                Value::String(p) => (p.clone(), true),
                Value::Mapping(m) => {
                    let path = m.get("path").map(string);
                    let required = m.get("required").map(boolean).unwrap_or(Ok(true));
                    match (path, required) {
                        (Some(Ok(p)), Ok(r)) => (p, r),
                        (None, _) => {
                            s.err(&key, "needs a path");
                            continue;
                        }
                        (Some(Err(e)), _) | (_, Err(e)) => {
                            s.err(&key, e);
                            continue;
                        }
                    }
                }
                other => {
                    s.err(&key, format!("expected a path, found {}", kind(other)));
                    continue;
                }
            };
            let bytes = match s.ctx.source.read(std::path::Path::new(&path)) {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => continue,
                Err(e) => {
                    s.err(&key, format!("reading {path}: {e}"));
                    continue;
                }
            };
            let Ok(text) = String::from_utf8(bytes) else {
                s.err(&key, format!("{path} is not UTF-8 text"));
                continue;
            };
            match super::dotenv::parse(&text, s.ctx.vars) {
                Ok((pairs, unset)) => {
                    for u in unset {
                        s.warn(&key, format!("{path}: the variable {u} is not set"));
                    }
                    env.extend(pairs);
                }
                Err((line, m)) => s.err(&key, format!("{path}:{line}: {m}")),
            }
        }
    }
    if let Some(v) = environment {
        let Some(m) = s.get("environment", mapping(v)) else {
            return env;
        };
        for (k, val) in s.get("environment", entries(m)).unwrap_or_default() {
            match val {
                // `NAME` alone: the variable's value here, or nothing when it has none.
                Value::Null => match s.ctx.vars.get(k) {
                    Some(x) => {
                        env.insert(k.to_string(), x.clone());
                    }
                    None => {
                        env.remove(k);
                    }
                },
                other => {
                    if let Some(x) = s.get(&format!("environment.{k}"), scalar(other)) {
                        env.insert(k.to_string(), x);
                    }
                }
            }
        }
    }
    env
}

/// A list of strings (`cap_add: [NET_ADMIN]`).
fn strings(s: &mut Svc<'_, '_>, key: &str, v: &Value) -> Vec<String> {
    let items = s.get(key, list(v)).unwrap_or_default();
    items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| s.get(&format!("{key}[{i}]"), string(item)))
        .collect()
}

/// `security_opt`: `no-new-privileges[:true|false]` (also with `=`); the other options (a
/// seccomp profile, AppArmor, SELinux labels) are refused: replicas run with Hoist's profile.
fn security_opt(s: &mut Svc<'_, '_>, v: &Value, spec: &mut ServiceSpec) {
    for (i, opt) in strings(s, "security_opt", v).into_iter().enumerate() {
        let key = format!("security_opt[{i}]");
        let (name, value) = match opt.split_once([':', '=']) {
            Some((n, v)) => (n, Some(v)),
            None => (opt.as_str(), None),
        };
        match (name, value) {
            ("no-new-privileges", None | Some("true")) => spec.no_new_privileges = Some(true),
            ("no-new-privileges", Some("false")) => spec.no_new_privileges = Some(false),
            ("no-new-privileges", Some(other)) => s.err(
                &key,
                format!("no-new-privileges takes true or false, not {other:?}"),
            ),
            _ => s.err(
                &key,
                format!(
                    "Hoist cannot honour {opt:?}: replicas run with Hoist's seccomp profile \
                     (Docker's default) and no AppArmor or SELinux options; only \
                     no-new-privileges[:true|false] is supported"
                ),
            ),
        }
    }
}

fn ulimits(s: &mut Svc<'_, '_>, v: &Value, out: &mut BTreeMap<String, Ulimit>) {
    let Some(m) = s.get("ulimits", mapping(v)) else {
        return;
    };
    for (name, val) in s.get("ulimits", entries(m)).unwrap_or_default() {
        let key = format!("ulimits.{name}");
        let limit = match val {
            Value::Mapping(sh) => {
                let soft = sh.get("soft").map(int);
                let hard = sh.get("hard").map(int);
                match (soft, hard) {
                    (Some(Ok(soft)), Some(Ok(hard))) => Some(Ulimit { soft, hard }),
                    (Some(Err(e)), _) | (_, Some(Err(e))) => {
                        s.err(&key, e);
                        None
                    }
                    _ => {
                        s.err(&key, "needs soft and hard");
                        None
                    }
                }
            }
            other => s.get(&key, int(other)).map(|n| Ulimit { soft: n, hard: n }),
        };
        if let Some(l) = limit {
            out.insert(name.to_string(), l);
        }
    }
}

/// Docker's defaults for what a Compose healthcheck leaves out (not Hoist's own).
const DOCKER_INTERVAL: &str = "30s";
const DOCKER_TIMEOUT: &str = "30s";

fn healthcheck(s: &mut Svc<'_, '_>, v: &Value) -> Option<HealthCheck> {
    let m = s.get("healthcheck", mapping(v))?;
    let mut hc = HealthCheck {
        command: vec![],
        http_path: None,
        tcp_port: None,
        interval: DOCKER_INTERVAL.into(),
        timeout: DOCKER_TIMEOUT.into(),
        retries: 3,
        start_period: "0s".into(),
    };
    let mut disabled = false;
    let mut has_test = false;
    for (k, val) in s.get("healthcheck", entries(m))? {
        let key = format!("healthcheck.{k}");
        match k {
            "test" => {
                has_test = true;
                match test_command(val) {
                    Ok(Some(c)) => hc.command = c,
                    Ok(None) => disabled = true,
                    Err(e) => s.err(&key, e),
                }
            }
            "interval" => hc.interval = s.get(&key, duration(val)).unwrap_or_default(),
            "timeout" => hc.timeout = s.get(&key, duration(val)).unwrap_or_default(),
            "start_period" => hc.start_period = s.get(&key, duration(val)).unwrap_or_default(),
            "retries" => hc.retries = s.get(&key, int(val)).unwrap_or(3),
            "disable" => disabled |= s.get(&key, boolean(val)).unwrap_or(false),
            "start_interval" => s.warn(&key, "ignored: Hoist checks at interval from the start"),
            other => s.err(&format!("healthcheck.{other}"), "not a healthcheck key"),
        }
    }
    if disabled {
        s.warn(
            "healthcheck",
            "Hoist cannot turn off an image's own HEALTHCHECK yet: if the image has one, it runs",
        );
        return None;
    }
    if !has_test {
        s.warn(
            "healthcheck",
            "ignored without test: if the image has a HEALTHCHECK, it runs with its own timings",
        );
        return None;
    }
    Some(hc)
}

/// `["CMD", ...]`, `["CMD-SHELL", "..."]`, a string (CMD-SHELL), `["NONE"]` (`None`).
fn test_command(v: &Value) -> Result<Option<Vec<String>>, String> {
    let shell = |c: String| vec!["/bin/sh".to_string(), "-c".into(), c];
    match v {
        Value::String(c) => Ok(Some(shell(c.clone()))),
        Value::Sequence(items) => {
            let items: Vec<String> = items.iter().map(string).collect::<Result<_, _>>()?;
            match items.split_first() {
                Some((first, rest)) if first == "CMD" && !rest.is_empty() => Ok(Some(rest.to_vec())),
                Some((first, rest)) if first == "CMD-SHELL" && rest.len() == 1 => {
                    Ok(Some(shell(rest[0].clone())))
                }
                Some((first, [])) if first == "NONE" => Ok(None),
                _ => Err(
                    "must be [\"CMD\", ARGS...], [\"CMD-SHELL\", \"COMMAND\"], [\"NONE\"] or a string"
                        .into(),
                ),
            }
        }
        other => Err(format!(
            "expected a list or a string, found {}",
            value::kind(other)
        )),
    }
}

/// Only the default network may be named: the overlay is that network.
fn networks(s: &mut Svc<'_, '_>, v: &Value) {
    let names: Vec<String> = match v {
        Value::Mapping(m) => m
            .keys()
            .map(|k| k.as_str().unwrap_or("?").to_string())
            .collect(),
        Value::Sequence(l) => l
            .iter()
            .map(|k| k.as_str().unwrap_or("?").to_string())
            .collect(),
        _ => vec!["?".into()],
    };
    if names.iter().all(|n| n == "default") {
        s.warn(
            "networks",
            "ignored: every service is on the stack's one network",
        );
    } else {
        s.err(
            "networks",
            format!(
                "Hoist does not support networks yet: every service of the stack is on one \
                 overlay network, where services find each other by name (remove {})",
                names.join(", ")
            ),
        );
    }
}

/// Replicas write Hoist's json-file logs; another driver is refused.
fn logging(s: &mut Svc<'_, '_>, v: &Value) {
    let driver = match v {
        Value::Mapping(m) => m.get("driver").map(string),
        _ => Some(Err(format!("expected a mapping, found {}", kind(v)))),
    };
    match driver {
        None => s.warn(
            "logging",
            "ignored: replicas log to json-file, read with hoist service logs",
        ),
        Some(Ok(d)) if d == "json-file" || d == "local" => s.warn(
            "logging",
            "ignored: replicas log to json-file, read with hoist service logs",
        ),
        Some(Ok(d)) => s.err(
            "logging.driver",
            format!("Hoist cannot honour the {d} driver: replicas log to json-file"),
        ),
        Some(Err(e)) => s.err("logging", e),
    }
}
