//! Checking a service spec: every problem with the dotted path of its field, so that the API, the
//! CLI and the replicated `apply` refuse the same specs with the same words.

use super::{Autoscale, FieldError, MountType, ServiceSpec};
use crate::quantity::{parse_cpu_millis, parse_duration_ms, parse_ratio_permille, parse_size};
use crate::rules;

/// Largest replica count accepted; keeps a typo from asking for billions of tasks.
pub const MAX_REPLICAS: i64 = 100_000;

/// Checks a service name as a cluster at `cluster_format` does: from format 2 a stack's services
/// (`STACK_SERVICE`, Swarm's convention) may hold `_`; before, a DNS label.
pub fn validate_name_in(name: &str, cluster_format: u32) -> Result<(), String> {
    if cluster_format < 2 || !name.contains('_') {
        return validate_name(name);
    }
    if name.len() > 63 {
        return Err(format!("{name:?} must be 1 to 63 characters"));
    }
    for part in name.split('_') {
        validate_name(part).map_err(|_| {
            format!(
                "{name:?} is not a service name (DNS labels joined by '_': lowercase letters, \
                 digits and '-', not at either end of a label)"
            )
        })?;
    }
    Ok(())
}

/// Checks a stack name: a DNS label (no `_`, which separates it from its services' names).
pub fn validate_stack_name(name: &str) -> Result<(), String> {
    validate_name(name)?;
    if name.len() > 40 {
        return Err(format!(
            "{name:?} is longer than 40 characters (its services are named STACK_SERVICE, at most 63)"
        ));
    }
    Ok(())
}

/// Checks a service name: a DNS label.
pub fn validate_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 63 {
        return Err(format!("{name:?} must be 1 to 63 characters"));
    }
    let ok_chars = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !ok_chars || name.starts_with('-') || name.ends_with('-') {
        return Err(format!(
            "{name:?} is not a DNS label (lowercase letters, digits and '-', not at either end)"
        ));
    }
    Ok(())
}

/// Checks a replica count.
pub fn validate_replicas(replicas: i64) -> Result<(), String> {
    if replicas < 0 {
        return Err("must be ≥ 0".into());
    }
    if replicas > MAX_REPLICAS {
        return Err(format!("must be ≤ {MAX_REPLICAS}"));
    }
    Ok(())
}

/// Whether `replicas` lies within valid autoscale bounds `a`.
fn within_autoscale(replicas: i64, a: &Autoscale) -> Result<(), String> {
    if (a.min..=a.max).contains(&replicas) {
        return Ok(());
    }
    Err(format!(
        "{replicas} is outside autoscale bounds {}..={}",
        a.min, a.max
    ))
}

/// What is wrong with the policy fields of `[autoscale]`, by field.
fn autoscale_policy_problems(a: &Autoscale) -> Vec<(&'static str, String)> {
    let mut out = vec![];
    if let Some(step) = a.step {
        if !(1..=MAX_REPLICAS).contains(&step) {
            out.push(("step", format!("must be 1 to {MAX_REPLICAS}")));
        }
    }
    for (field, value) in [("target", a.target), ("target_value", a.target_value)] {
        if let Some(v) = value {
            if !(v.0.is_finite() && v.0 > 0.0) {
                out.push((field, format!("{} must be a number above 0", v.0)));
            }
        }
    }
    for (field, value) in [
        ("cooldown_up", &a.cooldown_up),
        ("stabilization_down", &a.stabilization_down),
        ("interval", &a.interval),
    ] {
        if let Some(d) = value {
            match parse_duration_ms(d) {
                None => out.push((field, not_duration(d))),
                Some(ms) if field == "interval" && ms < 1_000 => {
                    out.push((field, format!("{d:?} is shorter than the minimum of 1s")))
                }
                Some(_) => {}
            }
        }
    }
    match (&a.query, &a.target_value) {
        (Some(q), _) if q.trim().is_empty() => out.push(("query", "must not be empty".into())),
        (Some(_), None) => out.push((
            "target_value",
            "is required with query (the per-replica value to scale toward)".into(),
        )),
        (None, _) if a.interval.is_some() => {
            out.push(("interval", "only applies to a query (set query)".into()))
        }
        _ => {}
    }
    out
}

impl ServiceSpec {
    /// What is wrong with `replicas` for this otherwise valid spec: what a scale request checks,
    /// without validating the rest again.
    pub fn replicas_problem(&self, replicas: i64) -> Result<(), String> {
        validate_replicas(replicas)?;
        self.autoscale
            .as_ref()
            .map_or(Ok(()), |a| within_autoscale(replicas, a))
    }

    /// Every problem of the spec, in field order; empty when it is valid.
    pub fn validate(&self) -> Vec<FieldError> {
        self.validate_in(crate::format::CURRENT)
    }

    /// [`ServiceSpec::validate`] as a cluster at `cluster_format` does it: the controller's
    /// `apply` must accept exactly what every member accepts, and a format-0 cluster reads sizes
    /// as 0.1.0 did.
    pub fn validate_in(&self, cluster_format: u32) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let mut bad = |field: &str, message: String| {
            errs.push(FieldError {
                field: field.to_string(),
                message,
            })
        };
        if let Err(m) = validate_name_in(&self.name, cluster_format) {
            bad("name", m);
        }
        if self.image.trim().is_empty() {
            bad("image", "must not be empty".into());
        } else if self.image.chars().any(char::is_whitespace) {
            bad(
                "image",
                format!("{:?} must not contain whitespace", self.image),
            );
        }
        for (i, c) in self.command.iter().chain(&self.args).enumerate() {
            if c.contains('\0') {
                let (f, j) = if i < self.command.len() {
                    ("command", i)
                } else {
                    ("args", i - self.command.len())
                };
                bad(&format!("{f}[{j}]"), "must not contain a NUL byte".into());
            }
        }
        for (k, v) in &self.env {
            if k.is_empty() || k.contains('=') || k.contains('\0') {
                bad(
                    &format!("env.{k}"),
                    "a name must be non-empty, without '=' or NUL".into(),
                );
            } else if v.contains('\0') {
                bad(&format!("env.{k}"), "must not contain a NUL byte".into());
            }
        }
        if let Err(m) = validate_replicas(self.replicas) {
            bad("replicas", m);
        }
        if let Some(cpu) = &self.resources.cpu {
            match parse_cpu_millis(cpu.as_str()) {
                None => bad(
                    "resources.cpu",
                    format!("{:?} is not a CPU amount", cpu.as_str()),
                ),
                Some(0) => bad("resources.cpu", "must be > 0".into()),
                Some(_) => {}
            }
        }
        if let Some(mem) = &self.resources.memory {
            let size = if cluster_format == 0 {
                crate::format::v0::parse_size_decimal_letters(mem.as_str())
                    .ok_or_else(|| format!("{:?} is not a size", mem.as_str()))
            } else {
                parse_size(mem.as_str())
            };
            match size {
                Err(m) => bad("resources.memory", m),
                // Before format 2 a cluster accepted what agents then refused; since, it refuses
                // at apply what every agent would (a member of each version must agree).
                Ok(n) if cluster_format >= 2 => {
                    if let Err(m) = rules::check_memory(n) {
                        bad("resources.memory", m);
                    }
                }
                Ok(n) if n < (1 << 20) => bad("resources.memory", "must be ≥ 1Mi".into()),
                Ok(_) => {}
            }
        }
        self.validate_complete_spec(&mut bad);
        self.validate_hardening(&mut bad);
        if let Err((field, m)) = crate::files::resolve_all(&self.secrets, &self.configs) {
            bad(&field, m);
        } else if let Err((field, m)) = crate::files::check_update_signals(
            &self.secrets,
            &self.configs,
            self.init != Some(false),
        ) {
            bad(&field, m);
        }
        let mut published = std::collections::BTreeSet::new();
        for (i, p) in self.ports.iter().enumerate() {
            if !(1..=65535).contains(&p.target) {
                bad(
                    &format!("ports[{i}].target"),
                    format!("{} is not in 1..=65535", p.target),
                );
            }
            if let Some(pp) = p.published {
                if !(1..=65535).contains(&pp) {
                    bad(
                        &format!("ports[{i}].published"),
                        format!("{pp} is not in 1..=65535"),
                    );
                } else if !published.insert((pp, p.protocol as u8)) {
                    bad(
                        &format!("ports[{i}].published"),
                        format!("{pp} is published twice"),
                    );
                }
            }
        }
        if let Some(h) = &self.health_check {
            let kinds = usize::from(!h.command.is_empty())
                + usize::from(h.http_path.is_some())
                + usize::from(h.tcp_port.is_some() && h.http_path.is_none());
            if kinds != 1 {
                bad(
                    "health_check",
                    "set exactly one of command, http_path or tcp_port".into(),
                );
            }
            if let Some(path) = &h.http_path {
                if !path.starts_with('/') {
                    bad(
                        "health_check.http_path",
                        format!("{path:?} must start with '/'"),
                    );
                }
                if h.tcp_port.is_none() {
                    bad("health_check.tcp_port", "is needed with http_path".into());
                }
            }
            if let Some(port) = h.tcp_port {
                if !(1..=65535).contains(&port) {
                    bad(
                        "health_check.tcp_port",
                        format!("{port} is not in 1..=65535"),
                    );
                }
            }
            for (f, v) in [("interval", &h.interval), ("timeout", &h.timeout)] {
                match parse_duration_ms(v) {
                    None => bad(&format!("health_check.{f}"), not_duration(v)),
                    Some(0) => bad(&format!("health_check.{f}"), "must be > 0".into()),
                    Some(_) => {}
                }
            }
            if parse_duration_ms(&h.start_period).is_none() {
                bad("health_check.start_period", not_duration(&h.start_period));
            }
            if h.retries < 1 {
                bad("health_check.retries", "must be ≥ 1".into());
            }
        }
        if self.restart.max_attempts < 0 {
            bad("restart.max_attempts", "must be ≥ 0".into());
        }
        for (f, v) in [
            ("delay", &self.restart.delay),
            ("window", &self.restart.window),
        ] {
            if parse_duration_ms(v).is_none() {
                bad(&format!("restart.{f}"), not_duration(v));
            }
        }
        if self.update.parallelism < 1 {
            bad("update.parallelism", "must be ≥ 1".into());
        }
        if let Some(r) = &self.update.max_failure_ratio {
            if parse_ratio_permille(r.as_str()).is_none() {
                bad(
                    "update.max_failure_ratio",
                    format!("{:?} is not a ratio between 0 and 1", r.as_str()),
                );
            }
        }
        for (f, v) in [
            ("delay", &self.update.delay),
            ("monitor", &self.update.monitor),
        ] {
            if parse_duration_ms(v).is_none() {
                bad(&format!("update.{f}"), not_duration(v));
            }
        }
        if let Some(d) = &self.update.drain {
            if parse_duration_ms(d).is_none() {
                bad("update.drain", not_duration(d));
            }
        }
        for (i, c) in self.placement.constraints.iter().enumerate() {
            if let Err(m) = validate_constraint(c) {
                bad(&format!("placement.constraints[{i}]"), m);
            }
        }
        if self.placement.max_per_node < 0 {
            bad("placement.max_per_node", "must be ≥ 0".into());
        }
        if let Some(k) = &self.placement.spread {
            let k = k.strip_prefix("node.labels.").unwrap_or(k);
            if k.is_empty() || k.len() > 253 || k.chars().any(char::is_whitespace) {
                bad("placement.spread", format!("{k:?} is not a node label key"));
            }
        }
        for k in self.labels.keys() {
            if k.is_empty() || k.len() > 253 {
                bad(
                    &format!("labels.{k}"),
                    "a key must be 1 to 253 characters".into(),
                );
            }
        }
        if let Some(a) = &self.autoscale {
            if let Err(m) = validate_replicas(a.min) {
                bad("autoscale.min", m);
            } else if let Err(m) = validate_replicas(a.max) {
                bad("autoscale.max", m);
            } else if a.min > a.max {
                bad(
                    "autoscale.max",
                    format!("must be ≥ autoscale.min ({})", a.min),
                );
            } else if self.replicas >= 0 {
                if let Err(m) = within_autoscale(self.replicas, a) {
                    bad("replicas", m);
                }
            }
            for (field, problem) in autoscale_policy_problems(a) {
                bad(&format!("autoscale.{field}"), problem);
            }
        }
        if let Some(sig) = &self.stop_signal {
            if let Err(m) = crate::signal::parse_signal(sig) {
                bad("stop_signal", m);
            }
        }
        if let Some(g) = &self.stop_grace_period {
            if parse_duration_ms(g).is_none() {
                bad("stop_grace_period", not_duration(g));
            }
        }
        errs
    }
}

impl ServiceSpec {
    /// Container hardening: capability names (`crate::capabilities`, as the agent reads them).
    fn validate_hardening(&self, bad: &mut impl FnMut(&str, String)) {
        for (field, names) in [("cap_add", &self.cap_add), ("cap_drop", &self.cap_drop)] {
            for (i, name) in names.iter().enumerate() {
                if let Err(m) = crate::capabilities::normalize(name) {
                    bad(&format!("{field}[{i}]"), m);
                }
            }
        }
    }

    /// Format 2's fields: limits and reservations, user, workdir, hostname, ulimits, mounts,
    /// the pinned digest. The same rules as the agent's (`crate::rules`).
    fn validate_complete_spec(&self, bad: &mut impl FnMut(&str, String)) {
        let r = &self.resources;
        let cpus = [
            (
                "resources.limits.cpu",
                r.limits.as_ref().and_then(|l| l.cpu.as_ref()),
            ),
            (
                "resources.reservations.cpu",
                r.reservations.as_ref().and_then(|l| l.cpu.as_ref()),
            ),
        ];
        for (field, cpu) in cpus {
            if let Some(cpu) = cpu {
                match parse_cpu_millis(cpu.as_str()) {
                    None => bad(field, format!("{:?} is not a CPU amount", cpu.as_str())),
                    Some(0) => bad(field, "must be > 0".into()),
                    Some(_) => {}
                }
            }
        }
        let limit_memory = r.limits.as_ref().and_then(|l| l.memory.as_ref());
        let mems = [
            ("resources.limits.memory", limit_memory),
            (
                "resources.reservations.memory",
                r.reservations.as_ref().and_then(|l| l.memory.as_ref()),
            ),
        ];
        for (field, mem) in mems {
            if let Some(mem) = mem {
                match parse_size(mem.as_str()) {
                    Err(m) => bad(field, m),
                    Ok(n) if field.contains("limits") => {
                        if let Err(m) = rules::check_memory(n) {
                            bad(field, m);
                        }
                    }
                    Ok(_) => {}
                }
            }
        }
        if let (Some(limit), Some(reserved)) = (r.limit_memory(), r.reserved_memory()) {
            if let (Ok(l), Ok(res)) = (parse_size(limit.as_str()), parse_size(reserved.as_str())) {
                if res > l {
                    bad(
                        "resources.reservations.memory",
                        format!(
                            "{:?} is more than the limit {:?}",
                            reserved.as_str(),
                            limit.as_str()
                        ),
                    );
                }
            }
        }
        if let Some(p) = r.limits.as_ref().and_then(|l| l.pids) {
            if let Err(m) = rules::check_pids(p) {
                bad("resources.limits.pids", m);
            }
        }
        if let Some(u) = &self.user {
            if let Err(m) = rules::check_user(u) {
                bad("user", m);
            }
        }
        if let Some(w) = &self.workdir {
            if !w.starts_with('/') || w.contains('\0') {
                bad("workdir", format!("{w:?} must be an absolute path"));
            }
        }
        if let Some(h) = &self.hostname {
            if let Err(m) = rules::check_hostname(h) {
                bad("hostname", m);
            }
        }
        for (name, u) in &self.ulimits {
            if let Err(m) = rules::check_ulimit(name, u.soft, u.hard) {
                bad(&format!("ulimits.{name}"), m);
            }
        }
        let mut targets = std::collections::BTreeSet::new();
        for (i, m) in self.mounts.iter().enumerate() {
            let f = |k: &str| format!("mounts[{i}].{k}");
            if let Err(e) = rules::check_container_path(&m.target) {
                bad(&f("target"), e);
            } else if !targets.insert(m.target.trim_end_matches('/')) {
                bad(&f("target"), format!("{:?} is mounted twice", m.target));
            }
            match (m.kind, &m.source) {
                (MountType::Bind, None) => bad(&f("source"), "a bind mount needs a source".into()),
                (MountType::Bind, Some(s)) => {
                    if let Err(e) = rules::check_host_path(s) {
                        bad(&f("source"), e);
                    }
                }
                (MountType::Volume, None) => bad(
                    &f("source"),
                    "a volume mount needs the volume's name".into(),
                ),
                (MountType::Volume, Some(s)) => {
                    if let Err(e) = rules::check_volume_name(s) {
                        bad(&f("source"), e);
                    }
                }
                (MountType::Tmpfs, Some(_)) => bad(&f("source"), "a tmpfs has no source".into()),
                (MountType::Tmpfs, None) => {}
            }
            if m.kind != MountType::Tmpfs {
                if m.size.is_some() {
                    bad(&f("size"), "is for tmpfs mounts only".into());
                }
                if m.mode.is_some() {
                    bad(&f("mode"), "is for tmpfs mounts only".into());
                }
            }
            if let Some(size) = &m.size {
                match parse_size(size.as_str()) {
                    Err(e) => bad(&f("size"), e),
                    Ok(0) => bad(&f("size"), "must be > 0".into()),
                    Ok(_) => {}
                }
            }
            if let Some(mode) = &m.mode {
                if let Err(e) = rules::parse_mode(mode) {
                    bad(&f("mode"), e);
                }
            }
        }
        if let Some(d) = &self.image_digest {
            let hex = d.strip_prefix("sha256:").unwrap_or("");
            if hex.len() != 64
                || !hex
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            {
                bad(
                    "image_digest",
                    format!("{d:?} is not a sha256:<64 hex> digest"),
                );
            } else if self.image.contains('@') {
                bad("image_digest", "the image already names a digest".into());
            }
        }
    }
}

fn not_duration(v: &str) -> String {
    format!("{v:?} is not a duration (like \"10s\", \"500ms\", \"1m30s\")")
}

/// Checks one placement constraint: `node.id`, `node.hostname` or `node.labels.KEY`, then `==` or
/// `!=`, then a non-empty value.
pub fn validate_constraint(c: &str) -> Result<(), String> {
    let (lhs, rhs) = c
        .split_once("==")
        .or_else(|| c.split_once("!="))
        .ok_or_else(|| format!("{c:?} needs == or !="))?;
    let lhs = lhs.trim();
    let attr_ok = lhs == "node.id"
        || lhs == "node.hostname"
        || lhs
            .strip_prefix("node.labels.")
            .is_some_and(|k| !k.is_empty());
    if !attr_ok {
        return Err(format!(
            "{lhs:?} is not node.id, node.hostname or node.labels.KEY"
        ));
    }
    if rhs.trim().is_empty() {
        return Err(format!("{c:?} has no value"));
    }
    Ok(())
}
