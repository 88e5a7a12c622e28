//! `RUN --mount=...` specifications, parsed and checked without I/O.
//!
//! BuildKit's syntax: comma-separated `key=value` pairs (`type=cache,target=/root/.cache,id=go`),
//! `type` defaulting to `bind`; `ro`/`readonly`/`rw` alone are booleans. Parsed at parse time, so
//! a mistake in any mount is reported with the other problems of the file before a step runs.

use hoist_common::dockerignore;

/// What a `RUN --mount` provides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountKind {
    /// A directory kept by the builder between builds, never in a layer.
    Cache,
    /// Files of the build context, of a stage or of an image, read-only.
    Bind,
    /// An empty tmpfs.
    Tmpfs,
    /// A secret file given to `hoist build --secret`.
    Secret,
}

/// One `--mount` of a RUN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunMount {
    pub kind: MountKind,
    /// Absolute path in the container (made absolute against the workdir by the builder).
    pub target: String,
    /// Cache: its identity (default: the target); secret: its name.
    pub id: String,
    /// Bind/cache: a stage name or index, or an image, to take the files from.
    pub from: Option<String>,
    /// Bind: the path in the context or in `from` (default: its root).
    pub source: String,
    /// A bind with `rw` gets a writable layer of its own over its source, thrown away after
    /// the step (BuildKit's semantics: the step may write, nothing is kept).
    pub read_only: bool,
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// Tmpfs: its size in bytes.
    pub size: Option<u64>,
    /// Secret: fail the step when the secret was not given (default: skip the mount).
    pub required: bool,
}

/// Parses one `--mount` value.
pub fn parse(spec: &str) -> Result<RunMount, String> {
    let mut kind = MountKind::Bind;
    let mut target = None;
    let mut id = None;
    let mut from = None;
    let mut source = None;
    let mut read_only = None;
    let (mut mode, mut uid, mut gid, mut size) = (None, None, None, None);
    let mut required = false;
    for field in spec.split(',').map(str::trim).filter(|f| !f.is_empty()) {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k.to_ascii_lowercase(), Some(v)),
            None => (field.to_ascii_lowercase(), None),
        };
        let need = |v: Option<&str>| {
            v.filter(|v| !v.is_empty())
                .map(str::to_owned)
                .ok_or_else(|| format!("--mount {key} needs a value ({key}=...)"))
        };
        let flag = |v: Option<&str>| match v.map(str::to_ascii_lowercase).as_deref() {
            None | Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(other) => Err(format!("--mount {key}={other}: use true or false")),
        };
        let number = |v: Option<&str>, radix: u32| {
            let v = need(v)?;
            u32::from_str_radix(&v, radix).map_err(|_| format!("--mount {key}={v}: not a number"))
        };
        match key.as_str() {
            "type" => {
                kind = match need(value)?.as_str() {
                    "cache" => MountKind::Cache,
                    "bind" => MountKind::Bind,
                    "tmpfs" => MountKind::Tmpfs,
                    "secret" => MountKind::Secret,
                    "ssh" => return Err("--mount type=ssh is not supported".into()),
                    other => return Err(format!("--mount type={other}: unknown type")),
                }
            }
            "target" | "dst" | "destination" => target = Some(need(value)?),
            "id" => id = Some(need(value)?),
            "from" => from = Some(need(value)?),
            "source" | "src" => source = Some(need(value)?),
            "ro" | "readonly" => read_only = Some(flag(value)?),
            "rw" | "readwrite" => read_only = Some(!flag(value)?),
            "mode" => mode = Some(number(value, 8)?),
            "uid" => uid = Some(number(value, 10)?),
            "gid" => gid = Some(number(value, 10)?),
            "size" => {
                let v = need(value)?;
                size = Some(
                    hoist_proto::quantity::parse_size(&v)
                        .map_err(|e| format!("--mount size={v}: {e}"))?,
                )
            }
            "required" => required = flag(value)?,
            "env" => {
                return Err(
                    "--mount env= (a secret as an environment variable) is not supported: use the secret's file".into(),
                )
            }
            // Concurrency of cache users: every value is honoured as `shared`, which is safe
            // for the package caches it is used for.
            "sharing" => match need(value)?.as_str() {
                "shared" | "private" | "locked" => {}
                other => {
                    return Err(format!(
                        "--mount sharing={other}: use shared|private|locked"
                    ))
                }
            },
            other => return Err(format!("--mount {other}: unknown option")),
        }
    }
    let target = match (kind, target) {
        (_, Some(t)) => t,
        (MountKind::Secret, None) => match &id {
            Some(id) => format!("/run/secrets/{id}"),
            None => return Err("--mount type=secret needs id= or target=".into()),
        },
        // BuildKit's default for a bind or cache without a target: the working directory.
        (MountKind::Bind | MountKind::Cache, None) => ".".to_owned(),
        (MountKind::Tmpfs, None) => return Err("--mount type=tmpfs needs target=PATH".into()),
    };
    if target.contains('\0') {
        return Err("--mount target contains a NUL byte".into());
    }
    let id = match (kind, id) {
        (_, Some(id)) => id,
        (MountKind::Secret, None) => target.rsplit('/').next().unwrap_or_default().to_owned(),
        (_, None) => target.clone(),
    };
    if from.is_some() && !matches!(kind, MountKind::Bind) {
        return Err("--mount from= is only supported with type=bind".into());
    }
    let source = match source {
        Some(s) => dockerignore::clean(&s)
            .ok_or_else(|| format!("--mount source={s} is outside its root"))?,
        None => String::new(),
    };
    Ok(RunMount {
        kind,
        target,
        id,
        from,
        source,
        read_only: read_only.unwrap_or(kind == MountKind::Bind || kind == MountKind::Secret),
        mode,
        uid,
        gid,
        size,
        required,
    })
}

/// A mount target made absolute against the workdir: `None` when `..` would leave the root.
pub fn absolute_target(target: &str, workdir: &str) -> Option<String> {
    let joined = if target.starts_with('/') {
        target.to_owned()
    } else {
        format!("{workdir}/{target}")
    };
    dockerignore::clean(&joined)
        .filter(|c| !c.is_empty())
        .map(|c| format!("/{c}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_mounts_default_their_id_to_the_target() {
        let m = parse("type=cache,target=/root/.cache,sharing=locked").unwrap();
        assert_eq!(m.kind, MountKind::Cache);
        assert_eq!(m.id, "/root/.cache");
        assert!(!m.read_only);
        let m = parse("type=cache,id=go,dst=/go/pkg,mode=0755,uid=1000").unwrap();
        assert_eq!(
            (m.id.as_str(), m.mode, m.uid),
            ("go", Some(0o755), Some(1000))
        );
    }

    #[test]
    fn binds_are_read_only_and_secrets_default_their_target() {
        let m = parse("target=/src,source=app,from=build").unwrap();
        assert_eq!(m.kind, MountKind::Bind);
        assert!(m.read_only);
        assert_eq!(
            (m.source.as_str(), m.from.as_deref()),
            ("app", Some("build"))
        );
        let s = parse("type=secret,id=token").unwrap();
        assert_eq!(s.target, "/run/secrets/token");
        let s = parse("type=secret,target=/etc/key,required").unwrap();
        assert_eq!((s.id.as_str(), s.required), ("key", true));
        let t = parse("type=tmpfs,target=/tmp,size=64Mi").unwrap();
        assert_eq!(t.size, Some(64 << 20));
    }

    #[test]
    fn mistakes_are_named() {
        assert!(parse("type=ssh")
            .unwrap_err()
            .contains("ssh is not supported"));
        assert!(parse("type=tmpfs").unwrap_err().contains("needs target"));
        assert!(parse("type=secret,env=TOKEN,id=t")
            .unwrap_err()
            .contains("env="));
        assert!(parse("type=weird,target=/x")
            .unwrap_err()
            .contains("unknown type"));
        assert!(parse("type=cache,target=/x,bogus=1")
            .unwrap_err()
            .contains("bogus"));
        assert!(!parse("type=bind,target=/x,rw").unwrap().read_only);
        // Without a target, a bind or cache lands in the working directory.
        assert_eq!(parse("type=cache").unwrap().target, ".");
        assert_eq!(parse("from=bin").unwrap().target, ".");
        assert!(parse("type=bind,target=/x,source=../../etc").is_err());
        assert!(parse("type=cache,target=/x,mode=9z").is_err());
    }

    #[test]
    fn targets_stay_inside_the_root() {
        assert_eq!(
            absolute_target("cache", "/app").as_deref(),
            Some("/app/cache")
        );
        assert_eq!(absolute_target("/a/../b", "/").as_deref(), Some("/b"));
        assert_eq!(absolute_target("../../..", "/app"), None);
        assert_eq!(absolute_target("/", "/"), None);
    }
}
