//! Compose's short syntaxes: ports (`[IP:][PUBLISHED[-END]:]TARGET[-END][/PROTOCOL]`), volumes
//! (`SOURCE:TARGET[:OPTIONS]`, `TARGET`) and tmpfs (`TARGET[:size=..,mode=..]`), and path helpers.
//! Each parser returns what the text says; the converter decides what Hoist makes of it.

use serde_yaml_ng::Value;
use std::path::Path;

/// The most ports one range may expand to.
pub const MAX_PORT_RANGE: u32 = 1000;

/// One port of a short port entry, after range expansion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShortPort {
    pub host_ip: Option<String>,
    pub published: Option<u16>,
    pub target: u16,
    pub protocol: String,
}

/// Parses `"8080:80"`, `"80"`, `"127.0.0.1:8080:80/udp"`, `"8000-8001:8000-8001"`.
pub fn parse_port(text: &str) -> Result<Vec<ShortPort>, String> {
    let (rest, protocol) = match text.rsplit_once('/') {
        Some((r, p)) => (r, p.to_string()),
        None => (text, "tcp".to_string()),
    };
    let (host, target) = match rest.rsplit_once(':') {
        Some((h, t)) => (Some(h), t),
        None => (None, rest),
    };
    let (host_ip, published) = match host {
        None => (None, None),
        Some(h) => {
            let (ip, published) = if let Some(bracketed) = h.strip_prefix('[') {
                let (ip, after) = bracketed
                    .split_once(']')
                    .ok_or_else(|| format!("{text:?}: an IPv6 address without its ']'"))?;
                (Some(ip), after.strip_prefix(':').unwrap_or(after))
            } else {
                match h.rsplit_once(':') {
                    Some((ip, p)) => (Some(ip), p),
                    None => (None, h),
                }
            };
            (
                ip.map(str::to_string),
                (!published.is_empty()).then_some(published),
            )
        }
    };
    let (t0, t1) = port_range(target).map_err(|m| format!("{text:?}: {m}"))?;
    let published = match published {
        None => None,
        Some(p) => Some(port_range(p).map_err(|m| format!("{text:?}: {m}"))?),
    };
    let count = u32::from(t1 - t0) + 1;
    if count > MAX_PORT_RANGE {
        return Err(format!(
            "{text:?}: a range of more than {MAX_PORT_RANGE} ports"
        ));
    }
    if let Some((p0, p1)) = published {
        if u32::from(p1 - p0) + 1 != count {
            return Err(format!(
                "{text:?}: the published range and the target range must have the same length"
            ));
        }
    }
    Ok((0..count)
        .map(|i| {
            let i = i as u16;
            ShortPort {
                host_ip: host_ip.clone(),
                published: published.map(|(p0, _)| p0 + i),
                target: t0 + i,
                protocol: protocol.clone(),
            }
        })
        .collect())
}

/// `"80"` → (80, 80); `"8000-8010"` → (8000, 8010).
pub fn port_range(text: &str) -> Result<(u16, u16), String> {
    let one = |p: &str| -> Result<u16, String> {
        match p.trim().parse::<u16>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!("{p:?} is not a port (1-65535)")),
        }
    };
    match text.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (one(a)?, one(b)?);
            if b < a {
                return Err(format!("{text:?} is an empty range"));
            }
            Ok((a, b))
        }
        None => {
            let p = one(text)?;
            Ok((p, p))
        }
    }
}

/// A short volume entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShortVolume {
    /// A path (`/x`, `./x`, `~/x`) or a volume name; none for an anonymous volume.
    pub source: Option<String>,
    pub target: String,
    /// The options after the second `:` (`ro`, `rw`, `z`, `nocopy`, ...).
    pub options: Vec<String>,
}

/// Parses `"data:/var/lib/x:ro"`, `"/host:/path"`, `"/path"`.
pub fn parse_volume(text: &str) -> Result<ShortVolume, String> {
    let parts: Vec<&str> = text.split(':').collect();
    let (source, target, options) = match parts.as_slice() {
        [t] => (None, *t, ""),
        [s, t] => (Some(*s), *t, ""),
        [s, t, o] => (Some(*s), *t, *o),
        _ => return Err(format!("{text:?} is not SOURCE:TARGET[:OPTIONS]")),
    };
    if target.is_empty() || source.is_some_and(str::is_empty) {
        return Err(format!("{text:?} is not SOURCE:TARGET[:OPTIONS]"));
    }
    Ok(ShortVolume {
        source: source.map(str::to_string),
        target: target.to_string(),
        options: options
            .split(',')
            .filter(|o| !o.is_empty())
            .map(str::to_string)
            .collect(),
    })
}

/// Whether a volume source is a host path (rather than a volume's name).
pub fn is_path(source: &str) -> bool {
    source.starts_with('/') || source.starts_with('.') || source.starts_with('~')
}

/// Whether `p` is a path relative to the Compose file (not absolute, not `~`).
pub fn is_relative_path(p: &str) -> bool {
    !p.starts_with('/') && !p.starts_with('~')
}

/// A short volume whose source is a relative path, with the source joined to `dir`.
pub fn rebase_short_volume(text: &str, dir: &Path) -> Option<String> {
    let v = parse_volume(text).ok()?;
    let src = v.source.as_deref().filter(|s| s.starts_with('.'))?;
    let mut out = format!("{}:{}", super::merge::rebase(dir, src), v.target);
    if !v.options.is_empty() {
        out.push(':');
        out.push_str(&v.options.join(","));
    }
    Some(out)
}

/// The target of a service's volume entry, short or long (for merging by target).
pub fn volume_target(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => parse_volume(s).ok().map(|v| v.target),
        Value::Mapping(m) => m.get("target").and_then(Value::as_str).map(str::to_string),
        _ => None,
    }
}

/// A tmpfs entry: `"/run"` or `"/run:size=64m,mode=1777"`.
pub fn parse_tmpfs(text: &str) -> (String, Vec<(String, String)>) {
    let (target, opts) = text.split_once(':').unwrap_or((text, ""));
    let opts = opts
        .split(',')
        .filter(|o| !o.is_empty())
        .map(|o| match o.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (o.to_string(), String::new()),
        })
        .collect();
    (target.to_string(), opts)
}

/// Lexically cleans a path (`a/./b/../c` → `a/c`), keeping a leading `/` and leading `..`s.
pub fn clean_path(p: &str) -> String {
    let abs = p.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|l| *l != "..") {
                    out.pop();
                } else if !abs {
                    out.push("..");
                }
            }
            s => out.push(s),
        }
    }
    let joined = out.join("/");
    match (abs, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}
