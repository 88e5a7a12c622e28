//! Parsers for Docker's mount and limit flags of `run`: `--ulimit nofile=1024:4096`,
//! `--tmpfs /run:size=64m,mode=1777`, `-v NAME:/path[:ro]` (a named volume when the source is not
//! a path) and `--mount type=bind|volume|tmpfs,source=...,target=...,readonly,...`.
//!
//! Pure; each error quotes the flag's text and names what is wrong. Values are checked with the
//! container rules the agent and the controller share (`hoist_proto::rules`).

use crate::parse::{parse_size, parse_volume};
use hoist_proto::rules;
use hoist_proto::{NamedVolumeMount, TmpfsMount, Ulimit, VolumeMount};

/// One mount of a container, as `-v`, `--tmpfs` and `--mount` give it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountArg {
    /// A path of the host (`-v /src:/dst`, `type=bind`).
    Bind(VolumeMount),
    /// A named volume of the node (`-v NAME:/dst`, `type=volume`).
    Volume(NamedVolumeMount),
    /// A fresh tmpfs (`--tmpfs`, `type=tmpfs`).
    Tmpfs(TmpfsMount),
}

/// `--ulimit NAME=SOFT[:HARD]` (HARD defaults to SOFT; `-1` is unlimited).
pub fn parse_ulimit(text: &str) -> Result<(String, Ulimit), String> {
    let bad = || format!("{text:?} is not NAME=SOFT[:HARD] (like nofile=1024:4096)");
    let (name, values) = text.split_once('=').ok_or_else(bad)?;
    let (soft, hard) = match values.split_once(':') {
        Some((s, h)) => (s, h),
        None => (values, values),
    };
    let num = |v: &str| v.trim().parse::<i64>().map_err(|_| bad());
    let (soft, hard) = (num(soft)?, num(hard)?);
    rules::check_ulimit(name, soft, hard).map_err(|e| format!("--ulimit {text:?}: {e}"))?;
    Ok((name.to_string(), Ulimit { soft, hard }))
}

/// `--tmpfs PATH[:OPTIONS]`, options comma-separated: `size=64m`, `mode=1777`, `ro`, `rw`.
pub fn parse_tmpfs(text: &str) -> Result<TmpfsMount, String> {
    let (target, options) = match text.split_once(':') {
        Some((t, o)) => (t, o),
        None => (text, ""),
    };
    rules::check_container_path(target).map_err(|e| format!("--tmpfs {text:?}: {e}"))?;
    let mut t = TmpfsMount {
        target: target.to_string(),
        size_bytes: None,
        mode: None,
        read_only: false,
    };
    for opt in options.split(',').filter(|o| !o.is_empty()) {
        match opt.split_once('=') {
            Some(("size", v)) => t.size_bytes = Some(tmpfs_size(v, text)?),
            Some(("mode", v)) => {
                t.mode = Some(rules::parse_mode(v).map_err(|e| format!("--tmpfs {text:?}: {e}"))?)
            }
            None if opt == "ro" => t.read_only = true,
            None if opt == "rw" => t.read_only = false,
            _ => {
                return Err(format!(
                    "--tmpfs {text:?}: unknown option {opt:?} (size=, mode=, ro, rw)"
                ))
            }
        }
    }
    Ok(t)
}

fn tmpfs_size(v: &str, text: &str) -> Result<u64, String> {
    match parse_size(v) {
        Ok(0) => Err(format!("{text:?}: a tmpfs size must be more than 0")),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("{text:?}: {e}")),
    }
}

/// `-v SOURCE:PATH[:ro|rw]`: a bind of a host path when SOURCE starts with `/`, else a named
/// volume called SOURCE (Docker's rule).
pub fn parse_volume_flag(text: &str) -> Result<MountArg, String> {
    if text.starts_with('/') {
        return parse_volume(text).map(MountArg::Bind);
    }
    let parts: Vec<&str> = text.split(':').collect();
    let (name, target, read_only) = match parts.as_slice() {
        [n, t] => (*n, *t, false),
        [n, t, "ro"] => (*n, *t, true),
        [n, t, "rw"] => (*n, *t, false),
        [_, _, opt] => {
            return Err(format!(
                "{text:?}: unknown volume option {opt:?} (use ro or rw)"
            ))
        }
        _ => {
            return Err(format!(
                "{text:?} is not NAME:PATH[:ro] or HOSTPATH:PATH[:ro]"
            ))
        }
    };
    rules::check_volume_name(name)
        .and_then(|()| rules::check_container_path(target))
        .map_err(|e| format!("-v {text:?}: {e}"))?;
    Ok(MountArg::Volume(NamedVolumeMount {
        name: name.to_string(),
        target: target.to_string(),
        read_only,
    }))
}

/// `--mount type=bind|volume|tmpfs,source=...,target=...[,readonly][,tmpfs-size=...]
/// [,tmpfs-mode=...]`, with Docker's other spellings (`src`, `destination`/`dst`, `ro`,
/// `readonly=true|false`). `type` defaults to `volume`, as in Docker.
pub fn parse_mount(text: &str) -> Result<MountArg, String> {
    let err = |m: String| format!("--mount {text:?}: {m}");
    let (mut kind, mut source, mut target) = ("volume", None, None);
    let (mut read_only, mut size, mut mode) = (false, None, None);
    for field in text.split(',').filter(|f| !f.is_empty()) {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v)),
            None => (field.trim(), None),
        };
        let need = || value.ok_or_else(|| err(format!("{key} needs a value")));
        match key {
            "type" => kind = need()?,
            "source" | "src" => source = Some(need()?),
            "target" | "destination" | "dst" => target = Some(need()?),
            "readonly" | "ro" => {
                read_only = match value {
                    None | Some("true") | Some("1") => true,
                    Some("false") | Some("0") => false,
                    Some(v) => return Err(err(format!("{key}={v}: use true or false"))),
                }
            }
            "tmpfs-size" => size = Some(tmpfs_size(need()?, text)?),
            "tmpfs-mode" => mode = Some(rules::parse_mode(need()?).map_err(err)?),
            _ => {
                return Err(err(format!(
                    "unknown key {key:?} (type, source, target, readonly, tmpfs-size, tmpfs-mode)"
                )))
            }
        }
    }
    let target = target.ok_or_else(|| err("target is required".into()))?;
    rules::check_container_path(target).map_err(|e| err(format!("target: {e}")))?;
    let tmpfs_only = size.is_some() || mode.is_some();
    match kind {
        "bind" | "volume" if tmpfs_only => Err(err(format!(
            "tmpfs-size and tmpfs-mode are for type=tmpfs, not {kind}"
        ))),
        "bind" => {
            let source = source.ok_or_else(|| err("a bind needs a source".into()))?;
            rules::check_host_path(source).map_err(|e| err(format!("source: {e}")))?;
            Ok(MountArg::Bind(VolumeMount {
                host_path: source.into(),
                container_path: target.into(),
                read_only,
            }))
        }
        "volume" => {
            let source = source.ok_or_else(|| err("a volume needs a source (its name)".into()))?;
            rules::check_volume_name(source).map_err(|e| err(format!("source: {e}")))?;
            Ok(MountArg::Volume(NamedVolumeMount {
                name: source.into(),
                target: target.into(),
                read_only,
            }))
        }
        "tmpfs" if source.is_some() => Err(err("a tmpfs has no source".into())),
        "tmpfs" => Ok(MountArg::Tmpfs(TmpfsMount {
            target: target.into(),
            size_bytes: size,
            mode,
            read_only,
        })),
        other => Err(err(format!("type {other:?} is not bind, volume or tmpfs"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulimits() {
        let u = |s, h| Ulimit { soft: s, hard: h };
        assert_eq!(
            parse_ulimit("nofile=1024:4096"),
            Ok(("nofile".into(), u(1024, 4096)))
        );
        assert_eq!(parse_ulimit("nproc=64"), Ok(("nproc".into(), u(64, 64))));
        assert_eq!(parse_ulimit("core=0:-1"), Ok(("core".into(), u(0, -1))));
        assert_eq!(
            parse_ulimit("nofile=4096:1024").unwrap_err(),
            "--ulimit \"nofile=4096:1024\": soft 4096 is above hard 1024"
        );
        assert!(parse_ulimit("files=1")
            .unwrap_err()
            .contains("is not a ulimit"));
        assert!(parse_ulimit("nofile")
            .unwrap_err()
            .contains("NAME=SOFT[:HARD]"));
        assert!(parse_ulimit("nofile=x").is_err());
    }

    #[test]
    fn tmpfs() {
        assert_eq!(
            parse_tmpfs("/run:size=64m,mode=1777").unwrap(),
            TmpfsMount {
                target: "/run".into(),
                size_bytes: Some(64 << 20),
                mode: Some(0o1777),
                read_only: false
            }
        );
        let t = parse_tmpfs("/tmp").unwrap();
        assert_eq!((t.size_bytes, t.mode, t.read_only), (None, None, false));
        assert!(parse_tmpfs("/x:ro").unwrap().read_only);
        assert!(parse_tmpfs("run").unwrap_err().contains("absolute"));
        assert!(parse_tmpfs("/run:exec")
            .unwrap_err()
            .contains("unknown option \"exec\""));
        assert!(parse_tmpfs("/run:size=0")
            .unwrap_err()
            .contains("more than 0"));
        assert!(parse_tmpfs("/run:mode=999").unwrap_err().contains("octal"));
    }

    #[test]
    fn volume_flags_tell_names_from_paths() {
        assert_eq!(
            parse_volume_flag("db:/var/lib/db:ro").unwrap(),
            MountArg::Volume(NamedVolumeMount {
                name: "db".into(),
                target: "/var/lib/db".into(),
                read_only: true
            })
        );
        assert!(matches!(
            parse_volume_flag("/srv:/data").unwrap(),
            MountArg::Bind(VolumeMount {
                read_only: false,
                ..
            })
        ));
        assert!(parse_volume_flag("_db:/x")
            .unwrap_err()
            .contains("not a volume name"));
        assert!(parse_volume_flag("db:rel")
            .unwrap_err()
            .contains("absolute"));
        assert!(parse_volume_flag("db:/x:rx")
            .unwrap_err()
            .contains("unknown volume option"));
        assert!(parse_volume_flag("db").is_err());
    }

    #[test]
    fn mount_flags_of_each_type() {
        assert_eq!(
            parse_mount("type=bind,source=/srv,target=/data,readonly").unwrap(),
            MountArg::Bind(VolumeMount {
                host_path: "/srv".into(),
                container_path: "/data".into(),
                read_only: true
            })
        );
        assert_eq!(
            parse_mount("src=db,dst=/var/lib/db").unwrap(),
            MountArg::Volume(NamedVolumeMount {
                name: "db".into(),
                target: "/var/lib/db".into(),
                read_only: false
            })
        );
        assert_eq!(
            parse_mount("type=tmpfs,target=/run,tmpfs-size=1g,tmpfs-mode=700").unwrap(),
            MountArg::Tmpfs(TmpfsMount {
                target: "/run".into(),
                size_bytes: Some(1 << 30),
                mode: Some(0o700),
                read_only: false
            })
        );
        assert!(matches!(
            parse_mount("type=volume,source=v,target=/v,readonly=false").unwrap(),
            MountArg::Volume(NamedVolumeMount {
                read_only: false,
                ..
            })
        ));
        for (bad, why) in [
            ("type=bind,target=/x", "a bind needs a source"),
            (
                "type=bind,source=rel,target=/x",
                "source: \"rel\" must be an absolute path",
            ),
            ("type=tmpfs,source=x,target=/x", "a tmpfs has no source"),
            (
                "type=nfs,target=/x",
                "type \"nfs\" is not bind, volume or tmpfs",
            ),
            ("type=volume,source=v", "target is required"),
            ("source=v,target=/x,tmpfs-size=1m", "are for type=tmpfs"),
            (
                "source=v,target=/x,bind-propagation=rshared",
                "unknown key \"bind-propagation\"",
            ),
            ("source=v,target=/x,readonly=maybe", "use true or false"),
        ] {
            let e = parse_mount(bad).unwrap_err();
            assert!(
                e.starts_with(&format!("--mount {bad:?}: ")) && e.contains(why),
                "{e}"
            );
        }
    }
}
