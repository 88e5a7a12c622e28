//! Secrets and configs: named, versioned files that services' replicas see in their filesystem
//! (format 2).
//!
//! Both are stored the same way (their content sealed under the cluster's data key) and reach a
//! replica the same way: the agent that runs it fetches the
//! current versions and writes them to a tmpfs of the container, never to its disk. A new
//! version replaces the file in running replicas at once (`on_update`), which Swarm cannot do
//! (its secrets are immutable).
//!
//! The rules here are shared: the controller checks a spec's references at apply with them, and
//! the agent resolves targets, modes and owners with them.

use serde::{Deserialize, Serialize};

/// The largest content of one version (Swarm's limit).
pub const MAX_FILE_BYTES: usize = 500 * 1024;

/// Which store a file lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    Secret,
    Config,
}

impl FileKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FileKind::Secret => "secret",
            FileKind::Config => "config",
        }
    }

    /// The spec key that lists references of this kind.
    pub fn spec_key(self) -> &'static str {
        match self {
            FileKind::Secret => "secrets",
            FileKind::Config => "configs",
        }
    }
}

impl std::fmt::Display for FileKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A secret or config as the API shows it: never its content.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredFile {
    pub kind: FileKind,
    pub name: String,
    /// The current version: 1 when created, one more for every `create` of the same name.
    pub version: u64,
    /// Leader time of the first version, milliseconds since the Unix epoch.
    pub created_ms: u64,
    /// Leader time of the current version.
    pub updated_ms: u64,
    /// Bytes of the current version's content.
    pub size: u64,
    /// The current version's content, sealed under the cluster's data key. Only the state and
    /// the Raft log hold it; the API never writes it.
    #[serde(skip)]
    pub data: Vec<u8>,
}

impl std::fmt::Debug for StoredFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredFile")
            .field("kind", &self.kind)
            .field("name", &self.name)
            .field("version", &self.version)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl StoredFile {
    /// The same without its content (for answers and events).
    pub fn metadata(&self) -> StoredFile {
        StoredFile {
            data: Vec::new(),
            ..self.clone()
        }
    }
}

/// A service's reference to a secret or config: `secrets = [{ source = "db-pass", target =
/// "/run/secrets/db-pass", mode = "0400", uid = 0 }]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRef {
    /// The secret's or config's name.
    pub source: String,
    /// Where the file appears in the container, an absolute path; default
    /// `/run/secrets/SOURCE` for a secret and `/SOURCE` for a config (Docker's defaults).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Octal permissions, default `"0444"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Owner, default 0 (the container's root).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// Group, default 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
    /// What a new version does to running replicas: nothing more than replacing the file
    /// (default, `"none"`), replacing it and sending a signal (`"signal:SIGHUP"`), or replacing
    /// the replicas through the service's update policy (`"restart"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_update: Option<String>,
}

/// What a new version does to a running replica (see [`FileRef::on_update`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnUpdate {
    /// The file is replaced; the program reads it again when it wants.
    Replace,
    /// The file is replaced, then the container's main process gets this signal.
    Signal(i32),
    /// The replicas are replaced through the service's update policy (a new service version,
    /// origin `restart`); running ones keep the version they started with.
    Restart,
}

/// A reference with its defaults applied: what the agent mounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedRef {
    pub kind: FileKind,
    pub source: String,
    pub target: String,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub on_update: OnUpdate,
}

/// The default mode of a file (`FileRef::mode`).
pub const DEFAULT_MODE: u32 = 0o444;

/// Checks a secret's or config's name: Docker's rule (letters, digits, `-`, `_`, `.`; starting
/// with a letter or digit; at most 64 characters), which keeps names usable as file names.
pub fn validate_file_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a valid name (1 to 64 letters, digits, '-', '_' or '.', starting \
             with a letter or digit)"
        ))
    }
}

/// Checks a version's content: at most [`MAX_FILE_BYTES`], not empty.
pub fn validate_content(kind: FileKind, data: &[u8]) -> Result<(), String> {
    if data.is_empty() {
        return Err(format!("a {kind} cannot be empty"));
    }
    if data.len() > MAX_FILE_BYTES {
        return Err(format!(
            "the {kind} is {} bytes; the limit is {} bytes (500 KiB)",
            data.len(),
            MAX_FILE_BYTES
        ));
    }
    Ok(())
}

fn parse_mode(text: &str) -> Result<u32, String> {
    let digits = text.strip_prefix("0o").unwrap_or(text);
    match u32::from_str_radix(digits, 8) {
        Ok(m) if m <= 0o777 && !digits.is_empty() => Ok(m),
        _ => Err(format!(
            "{text:?} is not a file mode (octal, at most 0777, e.g. \"0400\")"
        )),
    }
}

fn parse_on_update(text: &str) -> Result<OnUpdate, String> {
    match text {
        "none" => Ok(OnUpdate::Replace),
        "restart" => Ok(OnUpdate::Restart),
        _ => match text.strip_prefix("signal:") {
            Some(sig) => crate::signal::parse_signal(sig).map(OnUpdate::Signal),
            None => Err(format!(
                "{text:?} is not an update action: \"none\" (replace the file), \
                 \"signal:SIGNAL\" (replace it, then signal the replica, e.g. \"signal:SIGHUP\") \
                 or \"restart\" (replace the replicas through the update policy)"
            )),
        },
    }
}

impl FileRef {
    /// The reference with its defaults, or what is wrong with it (a message without the field).
    pub fn resolve(&self, kind: FileKind) -> Result<ResolvedRef, (&'static str, String)> {
        validate_file_name(&self.source).map_err(|m| ("source", m))?;
        let target = match &self.target {
            Some(t) => t.clone(),
            None => match kind {
                FileKind::Secret => format!("/run/secrets/{}", self.source),
                FileKind::Config => format!("/{}", self.source),
            },
        };
        crate::rules::check_container_path(&target).map_err(|m| ("target", m))?;
        if target == "/" || target.ends_with('/') {
            return Err(("target", format!("{target:?} must name a file")));
        }
        let mode = match &self.mode {
            Some(m) => parse_mode(m).map_err(|m| ("mode", m))?,
            None => DEFAULT_MODE,
        };
        let on_update = match &self.on_update {
            Some(a) => parse_on_update(a).map_err(|m| ("on_update", m))?,
            None => OnUpdate::Replace,
        };
        Ok(ResolvedRef {
            kind,
            source: self.source.clone(),
            target,
            mode,
            uid: self.uid.unwrap_or(0),
            gid: self.gid.unwrap_or(0),
            on_update,
        })
    }
}

/// Every reference of a spec's `secrets` and `configs`, resolved, or the first error as
/// `(field, message)` (`secrets[0].mode`). Two references may not share a target.
pub fn resolve_all(
    secrets: &[FileRef],
    configs: &[FileRef],
) -> Result<Vec<ResolvedRef>, (String, String)> {
    let mut out: Vec<ResolvedRef> = Vec::new();
    for (kind, refs) in [(FileKind::Secret, secrets), (FileKind::Config, configs)] {
        for (i, r) in refs.iter().enumerate() {
            let resolved = r
                .resolve(kind)
                .map_err(|(field, m)| (format!("{}[{i}].{field}", kind.spec_key()), m))?;
            if out.iter().any(|o| o.target == resolved.target) {
                return Err((
                    format!("{}[{i}].target", kind.spec_key()),
                    format!(
                        "{:?} is the target of another secret or config",
                        resolved.target
                    ),
                ));
            }
            out.push(resolved);
        }
    }
    Ok(out)
}

/// `hoist secret create`: a new version of a secret or config (the first creates it). `data`
/// is already sealed under the cluster's data key: the Raft log never holds the content.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileWrite {
    pub kind: FileKind,
    pub name: String,
    pub data: Vec<u8>,
    /// Bytes of the content before sealing (what `inspect` shows).
    pub size: u64,
}

impl std::fmt::Debug for FileWrite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileWrite")
            .field("kind", &self.kind)
            .field("name", &self.name)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

/// The signals the container's init (`init = true`, the default) forwards to the program, by
/// number (`agent/src/runtime/reaper.rs` forwards exactly these; a test there checks it).
pub const INIT_FORWARDS: [i32; 8] = [15, 2, 1, 3, 10, 12, 28, 18];

/// Refuses an `on_update` signal the program would never get: with the init (`init` not
/// `false`), only [`INIT_FORWARDS`] reach it. `(field, message)` as [`resolve_all`].
pub fn check_update_signals(
    secrets: &[FileRef],
    configs: &[FileRef],
    init: bool,
) -> Result<(), (String, String)> {
    if !init {
        return Ok(());
    }
    for (kind, refs) in [(FileKind::Secret, secrets), (FileKind::Config, configs)] {
        for (i, r) in refs.iter().enumerate() {
            if let Ok(ResolvedRef {
                on_update: OnUpdate::Signal(n),
                ..
            }) = r.resolve(kind)
            {
                if !INIT_FORWARDS.contains(&n) {
                    return Err((
                        format!("{}[{i}].on_update", kind.spec_key()),
                        format!(
                            "signal {n} would stop at the container's init, which forwards only \
                             TERM, INT, HUP, QUIT, USR1, USR2, WINCH and CONT: use one of those, \
                             or set init = false"
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// The version of a secret or config a task's replica must have (in its assignment).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileVersion {
    pub kind: FileKind,
    pub name: String,
    pub version: u64,
}

/// One file's content as an agent fetches it for a task it runs (never stored by the agent).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileContent {
    pub kind: FileKind,
    pub name: String,
    pub version: u64,
    pub data: Vec<u8>,
}

impl std::fmt::Debug for FileContent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileContent")
            .field("kind", &self.kind)
            .field("name", &self.name)
            .field("version", &self.version)
            .field("data", &format_args!("<{} bytes>", self.data.len()))
            .finish()
    }
}

/// `GET /v1/agent/files?node=ID&task=TASK`: the current content of every secret and config the
/// task's spec references.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskFiles {
    pub files: Vec<FileContent>,
}

/// A controller member's public key (X25519), to which the leader seals the cluster's data key
/// (format 2). The data key never travels or rests in the clear: the Raft log holds one sealed
/// copy per member, which only that member's private key (in its data dir) opens.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberKey {
    pub public_key: Vec<u8>,
    /// The data key sealed to `public_key`; empty until the leader has sealed it.
    pub sealed_data_key: Vec<u8>,
}

impl std::fmt::Debug for MemberKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemberKey")
            .field("public_key", &self.public_key.len())
            .field("sealed", &!self.sealed_data_key.is_empty())
            .finish()
    }
}

/// The data key sealed for one member, as the leader proposes it (format 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedKey {
    pub member: u64,
    /// The public key it was sealed to: a copy for a key the member has since replaced is
    /// ignored.
    pub public_key: Vec<u8>,
    pub sealed: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(source: &str) -> FileRef {
        FileRef {
            source: source.into(),
            target: None,
            mode: None,
            uid: None,
            gid: None,
            on_update: None,
        }
    }

    #[test]
    fn defaults_follow_docker() {
        let s = r("db-pass").resolve(FileKind::Secret).unwrap();
        assert_eq!(s.target, "/run/secrets/db-pass");
        assert_eq!((s.mode, s.uid, s.gid), (0o444, 0, 0));
        assert_eq!(s.on_update, OnUpdate::Replace);
        let c = r("nginx.conf").resolve(FileKind::Config).unwrap();
        assert_eq!(c.target, "/nginx.conf");
    }

    #[test]
    fn modes_signals_and_targets_are_checked() {
        let mut x = r("a");
        x.mode = Some("0400".into());
        x.on_update = Some("signal:SIGHUP".into());
        let ok = x.resolve(FileKind::Secret).unwrap();
        assert_eq!((ok.mode, ok.on_update), (0o400, OnUpdate::Signal(1)));
        x.mode = Some("0999".into());
        assert_eq!(x.resolve(FileKind::Secret).unwrap_err().0, "mode");
        x.mode = None;
        x.on_update = Some("restart".into());
        assert_eq!(
            x.resolve(FileKind::Secret).unwrap().on_update,
            OnUpdate::Restart
        );
        x.on_update = Some("restart-please".into());
        assert_eq!(x.resolve(FileKind::Secret).unwrap_err().0, "on_update");
        x.on_update = None;
        x.target = Some("relative/path".into());
        assert_eq!(x.resolve(FileKind::Secret).unwrap_err().0, "target");
        x.target = Some("/run/secrets/".into());
        assert_eq!(x.resolve(FileKind::Secret).unwrap_err().0, "target");
    }

    #[test]
    fn names_follow_docker_and_content_has_a_limit() {
        for ok in ["db-pass", "nginx.conf", "A_1"] {
            validate_file_name(ok).unwrap();
        }
        for bad in ["", "-x", ".hidden", "a/b", "a b", &"x".repeat(65)] {
            assert!(validate_file_name(bad).is_err(), "{bad:?}");
        }
        validate_content(FileKind::Secret, &[1; MAX_FILE_BYTES]).unwrap();
        let e = validate_content(FileKind::Secret, &vec![1; MAX_FILE_BYTES + 1]).unwrap_err();
        assert!(e.contains("500 KiB"), "{e}");
        assert!(validate_content(FileKind::Config, b"").is_err());
    }

    #[test]
    fn a_signal_the_init_does_not_forward_is_refused_unless_there_is_no_init() {
        let mut x = r("a");
        x.on_update = Some("signal:SIGALRM".into());
        let (field, m) = check_update_signals(&[x.clone()], &[], true).unwrap_err();
        assert_eq!(field, "secrets[0].on_update");
        assert!(m.contains("init = false"), "{m}");
        check_update_signals(&[x.clone()], &[], false).unwrap();
        x.on_update = Some("signal:SIGHUP".into());
        check_update_signals(&[], &[x], true).unwrap();
    }

    #[test]
    fn two_references_cannot_share_a_target() {
        let mut c = r("x");
        c.target = Some("/run/secrets/x".into());
        let (field, m) = resolve_all(&[r("x")], &[c]).unwrap_err();
        assert_eq!(field, "configs[0].target");
        assert!(m.contains("another"), "{m}");
    }
}
