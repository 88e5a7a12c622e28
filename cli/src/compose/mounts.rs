//! `ports`, `volumes` and `tmpfs` of a service: short and long syntax → Hoist's ports and mounts.

use super::convert::Svc;
use super::syntax;
use super::value::{boolean, entries, kind, list, mapping, string};
use hoist_proto::quantity::Quantity;
use hoist_proto::service::{Mount, MountType, PortMode, PortProtocol, ServicePort};
use serde_yaml_ng::Value;

/// Addresses a published port may name: every address (Hoist publishes on all of a node's).
fn any_address(ip: &str) -> bool {
    matches!(ip, "" | "0.0.0.0" | "::")
}

fn protocol(p: &str) -> Result<PortProtocol, String> {
    match p {
        "tcp" => Ok(PortProtocol::Tcp),
        "udp" => Ok(PortProtocol::Udp),
        other => Err(format!(
            "Hoist cannot honour protocol {other:?} (tcp or udp)"
        )),
    }
}

pub fn ports(s: &mut Svc<'_, '_>, v: &Value, out: &mut Vec<ServicePort>) {
    let Some(items) = s.get("ports", list(v)) else {
        return;
    };
    for (i, item) in items.iter().enumerate() {
        let key = format!("ports[{i}]");
        let r = match item {
            Value::String(_) | Value::Number(_) => short_port(&string(item).unwrap_or_default()),
            Value::Mapping(_) => long_port(item).map(|p| vec![p]),
            other => Err(format!(
                "expected a string or a mapping, found {}",
                kind(other)
            )),
        };
        if let Some(ports) = s.get(&key, r) {
            out.extend(ports);
        }
    }
}

fn short_port(text: &str) -> Result<Vec<ServicePort>, String> {
    let parsed = syntax::parse_port(text)?;
    let mut out = Vec::new();
    for p in parsed {
        if let Some(ip) = p.host_ip.as_deref().filter(|ip| !any_address(ip)) {
            return Err(format!(
                "{text:?}: Hoist cannot publish on one address ({ip}): a published port answers \
                 on every address of every node"
            ));
        }
        out.push(ServicePort {
            target: i64::from(p.target),
            published: p.published.map(i64::from),
            protocol: protocol(&p.protocol)?,
            mode: PortMode::Ingress,
        });
    }
    Ok(out)
}

fn long_port(v: &Value) -> Result<ServicePort, String> {
    let m = mapping(v)?;
    let mut port = ServicePort {
        target: 0,
        published: None,
        protocol: PortProtocol::Tcp,
        mode: PortMode::Ingress,
    };
    let mut has_target = false;
    for (k, val) in entries(m)? {
        let one = |val: &Value| -> Result<i64, String> {
            let (a, b) = syntax::port_range(&string(val)?)?;
            if a != b {
                return Err(format!(
                    "{k}: Hoist takes one port here, not the range {a}-{b}"
                ));
            }
            Ok(i64::from(a))
        };
        match k {
            "target" => {
                port.target = one(val)?;
                has_target = true;
            }
            "published" => port.published = Some(one(val)?),
            "protocol" => port.protocol = protocol(&string(val)?)?,
            "mode" => {
                port.mode = match string(val)?.as_str() {
                    "ingress" => PortMode::Ingress,
                    "host" => PortMode::Host,
                    o => return Err(format!("mode: {o:?} is not ingress or host")),
                }
            }
            "host_ip" => {
                let ip = string(val)?;
                if !any_address(&ip) {
                    return Err(format!(
                        "host_ip: Hoist cannot publish on one address ({ip}): a published port \
                         answers on every address of every node"
                    ));
                }
            }
            // Descriptions only.
            "name" | "app_protocol" => {}
            k if k.starts_with("x-") => {}
            other => return Err(format!("{other}: not a port key")),
        }
    }
    if !has_target {
        return Err("a port needs a target".into());
    }
    Ok(port)
}

pub fn volumes(s: &mut Svc<'_, '_>, v: &Value, out: &mut Vec<Mount>) {
    let Some(items) = s.get("volumes", list(v)) else {
        return;
    };
    for (i, item) in items.iter().enumerate() {
        let key = format!("volumes[{i}]");
        let mount = match item {
            Value::String(text) => short_volume(s, &key, text),
            Value::Mapping(_) => long_volume(s, &key, item),
            other => Err(format!(
                "expected a string or a mapping, found {}",
                kind(other)
            )),
        };
        if let Some(m) = s.get(&key, mount) {
            if m.kind == MountType::Bind {
                s.warn(
                    &key,
                    format!(
                        "the bind mount's source {} must exist on every node that may run the service",
                        m.source.as_deref().unwrap_or_default()
                    ),
                );
            }
            out.push(m);
        }
    }
}

/// The source of a bind mount: `~` is the home directory of the deploying user.
fn bind_source(s: &Svc<'_, '_>, src: &str) -> Result<String, String> {
    if src == "~" || src.starts_with("~/") {
        let home = s
            .ctx
            .vars
            .get("HOME")
            .ok_or_else(|| format!("{src:?}: HOME is not set"))?;
        return Ok(syntax::clean_path(&format!("{home}{}", &src[1..])));
    }
    Ok(src.to_string())
}

/// A named volume's name on the nodes; it must be declared under the top-level `volumes`.
fn volume_name(s: &Svc<'_, '_>, src: &str) -> Result<String, String> {
    s.ctx
        .volumes
        .get(src)
        .cloned()
        .ok_or_else(|| format!("the volume {src:?} is not declared under the top-level volumes"))
}

fn anonymous(target: &str) -> String {
    format!(
        "{target:?}: Hoist has no anonymous volumes: name one (NAME:{target}, declared under the \
         top-level volumes) or use a tmpfs"
    )
}

fn short_volume(s: &mut Svc<'_, '_>, key: &str, text: &str) -> Result<Mount, String> {
    let v = syntax::parse_volume(text)?;
    let src = v.source.as_deref().ok_or_else(|| anonymous(&v.target))?;
    let bind = syntax::is_path(src);
    let mut mount = Mount {
        kind: if bind {
            MountType::Bind
        } else {
            MountType::Volume
        },
        source: Some(if bind {
            bind_source(s, src)?
        } else {
            volume_name(s, src)?
        }),
        target: v.target.clone(),
        read_only: false,
        size: None,
        mode: None,
    };
    for o in &v.options {
        match o.as_str() {
            "ro" => mount.read_only = true,
            "rw" => mount.read_only = false,
            "z" | "Z" => s.warn(
                key,
                format!("ignored option {o}: Hoist sets no SELinux labels"),
            ),
            // macOS file sharing hints.
            "consistent" | "cached" | "delegated" => {}
            "nocopy" => return Err(
                "Hoist cannot honour nocopy: a new volume gets the image's content at its target"
                    .into(),
            ),
            other => return Err(format!("{text:?}: unknown option {other:?} (ro or rw)")),
        }
    }
    Ok(mount)
}

fn long_volume(s: &mut Svc<'_, '_>, key: &str, v: &Value) -> Result<Mount, String> {
    let m = mapping(v)?;
    let kind = match m.get("type").map(string).transpose()?.as_deref() {
        Some("volume") | None => MountType::Volume,
        Some("bind") => MountType::Bind,
        Some("tmpfs") => MountType::Tmpfs,
        Some(other) => return Err(format!("type: Hoist cannot honour {other:?} mounts")),
    };
    let mut mount = Mount {
        kind,
        source: None,
        target: String::new(),
        read_only: false,
        size: None,
        mode: None,
    };
    for (k, val) in entries(m)? {
        match k {
            "type" => {}
            "source" => {
                let src = string(val)?;
                mount.source = Some(match kind {
                    MountType::Bind => bind_source(s, &src)?,
                    MountType::Volume => volume_name(s, &src)?,
                    MountType::Tmpfs => return Err("source: a tmpfs has no source".into()),
                });
            }
            "target" => mount.target = string(val)?,
            "read_only" => mount.read_only = boolean(val)?,
            "consistency" => {}
            "bind" => {
                for (bk, bv) in entries(mapping(val)?)? {
                    match bk {
                        "create_host_path" => {}
                        "propagation" if string(bv)? == "rprivate" => {}
                        "selinux" => {
                            s.warn(key, "ignored bind.selinux: Hoist sets no SELinux labels")
                        }
                        other => return Err(format!("bind.{other}: Hoist cannot honour it")),
                    }
                }
            }
            "volume" => {
                for (vk, vv) in entries(mapping(val)?)? {
                    match vk {
                        "nocopy" if !boolean(vv)? => {}
                        other => return Err(format!("volume.{other}: Hoist cannot honour it")),
                    }
                }
            }
            "tmpfs" => {
                for (tk, tv) in entries(mapping(val)?)? {
                    match tk {
                        "size" => mount.size = Some(Quantity(string(tv)?)),
                        "mode" => mount.mode = Some(octal(tv)?),
                        other => return Err(format!("tmpfs.{other}: Hoist cannot honour it")),
                    }
                }
            }
            other => return Err(format!("{other}: not a volume key")),
        }
    }
    if mount.target.is_empty() {
        return Err("a mount needs a target".into());
    }
    if kind == MountType::Volume && mount.source.is_none() {
        return Err(anonymous(&mount.target));
    }
    if kind == MountType::Bind && mount.source.is_none() {
        return Err("a bind mount needs a source".into());
    }
    Ok(mount)
}

/// A mode written as octal digits: `1777` (a YAML number, read as the digits written), `"0755"`.
fn octal(v: &Value) -> Result<String, String> {
    let text = string(v)?;
    let digits = text.strip_prefix("0o").unwrap_or(&text);
    hoist_proto::rules::parse_mode(digits)?;
    Ok(digits.to_string())
}

pub fn tmpfs(s: &mut Svc<'_, '_>, v: &Value, out: &mut Vec<Mount>) {
    let Some(items) = s.get("tmpfs", list(v)) else {
        return;
    };
    for (i, item) in items.iter().enumerate() {
        let key = format!("tmpfs[{i}]");
        let Some(text) = s.get(&key, string(item)) else {
            continue;
        };
        let (target, opts) = syntax::parse_tmpfs(&text);
        let mut mount = Mount {
            kind: MountType::Tmpfs,
            source: None,
            target,
            read_only: false,
            size: None,
            mode: None,
        };
        for (k, val) in opts {
            match k.as_str() {
                "size" => mount.size = Some(Quantity(val)),
                "mode" => match octal(&Value::String(val)) {
                    Ok(m) => mount.mode = Some(m),
                    Err(e) => s.err(&key, e),
                },
                other => s.err(
                    &key,
                    format!("Hoist cannot honour the tmpfs option {other:?} (size and mode only)"),
                ),
            }
        }
        out.push(mount);
    }
}
