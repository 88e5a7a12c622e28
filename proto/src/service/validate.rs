//! Checking a service spec: every problem with the dotted path of its field, so that the API, the
//! CLI and the replicated `apply` refuse the same specs with the same words.

use super::{Autoscale, FieldError, ServiceSpec};
use crate::quantity::{parse_cpu_millis, parse_duration_ms, parse_ratio_permille, parse_size};

/// Largest replica count accepted; keeps a typo from asking for billions of tasks.
pub const MAX_REPLICAS: i64 = 100_000;

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
        if let Err(m) = validate_name(&self.name) {
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
                Ok(n) if n < (1 << 20) => bad("resources.memory", "must be ≥ 1Mi".into()),
                Ok(_) => {}
            }
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
