//! The container runtime: everything between "a prepared container directory" and "a process running
//! isolated in it".
//!
//! The agent writes a [`RuntimeSpec`] into the container's directory and starts the supervisor
//! (`hoist-agent __shim DIR`, see [`shim`], forked by [`forker`]). The supervisor forks the container's first process, which
//! sets up its namespaces, mounts and privileges ([`init`]) and `execve`s the command. Only this module
//! and its children touch namespaces, mounts, cgroups and credentials.

pub mod cgroup;
pub mod disk_usage;
pub mod exec;
pub mod fork;
pub mod forker;
pub mod image_copy;
pub mod init;
pub mod logfile;
pub mod mounts;
mod reaper;
pub mod run_dir;
pub mod seccomp;
pub mod secret_files;
pub mod security;
pub mod selfexe;
pub mod shim;
pub mod userns;
pub mod users;

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Everything the supervisor needs to start a container; written by the agent as `spec.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RuntimeSpec {
    pub id: String,
    /// Image layers as overlayfs lower dirs, lowest first.
    pub layers: Vec<PathBuf>,
    /// The process: argv, environment, working directory.
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub hostname: String,
    pub read_only: bool,
    /// The container is removed when it exits (`--rm`): its overlay is mounted `volatile`, never
    /// synced to disk ([`mounts::mount_overlay`]). A spec written before this field reads as
    /// `false`: the durable overlay every container had then.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub volatile_rootfs: bool,
    /// Bind mounts into the rootfs: volumes and the generated `/etc/hosts`, `/etc/hostname`, `/etc/resolv.conf`.
    pub binds: Vec<Bind>,
    /// The network namespace to join; `None` keeps the host's unless `own_netns`.
    pub netns: Option<PathBuf>,
    /// The first process makes a network namespace of its own with only `lo` up (`--network
    /// none`, as runc's default spec does): there is nothing in it to wire from outside, so the
    /// agent neither makes, pins nor removes it, and it goes with the container. Read only with
    /// `netns` unset. (`spec.json` passes only from an agent to the supervisor it starts from
    /// its own binary, so no older reader meets this field.)
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub own_netns: bool,
    pub cgroup: cgroup::CgroupHandle,
    /// Rotate the log file when it passes this size.
    pub log_max_bytes: u64,
    /// Pid 1 is a minimal init (signal forwarding, zombie reaping) and the command its child.
    #[serde(default)]
    pub init: bool,
    /// Fresh tmpfs mounts, made among the binds in [`mount_order`].
    #[serde(default)]
    pub tmpfs: Vec<hoist_proto::TmpfsMount>,
    /// Process limits set before `execve`, over the runtime's defaults (also for `exec`).
    #[serde(default)]
    pub rlimits: Vec<security::Rlimit>,
    /// The capabilities the container keeps (canonical names, `cap_add`/`cap_drop` applied);
    /// `None` in a spec written before they could change: Docker's default set.
    #[serde(default)]
    pub capabilities: Option<Vec<String>>,
    /// `no_new_privs` for every process (always set by agents before it could be turned off).
    #[serde(default = "yes")]
    pub no_new_privileges: bool,
    /// Run in a user namespace mapping container ids onto this host range.
    #[serde(default)]
    pub userns: Option<userns::IdRange>,
    /// The container's secrets and configs: their directory, mounted after every other mount,
    /// and the targets linked into it ([`secret_files`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<secret_files::FilesMount>,
}

fn yes() -> bool {
    true
}

/// One mount of the container's own, in the order [`mount_order`] gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountStep<'a> {
    Bind(&'a Bind),
    Tmpfs(&'a hoist_proto::TmpfsMount),
}

/// The order the binds (already in theirs: the generated `/etc` files, then volumes parents
/// first) and the tmpfs mounts are made in: each tmpfs (shallower ones first) just before the
/// first bind below its target, else after every bind. So a tmpfs never hides a mount below it,
/// and lands on top of any mount above it. Pure.
pub fn mount_order<'a>(
    binds: &'a [Bind],
    tmpfs: &'a [hoist_proto::TmpfsMount],
) -> Vec<MountStep<'a>> {
    let depth = |p: &str| p.split('/').filter(|c| !c.is_empty()).count();
    let mut fs: Vec<&hoist_proto::TmpfsMount> = tmpfs.iter().collect();
    fs.sort_by_key(|t| depth(&t.target));
    let below = |parent: &str, child: &str| {
        let parent = parent.trim_end_matches('/');
        child.len() > parent.len() + 1
            && child.starts_with(parent)
            && child.as_bytes()[parent.len()] == b'/'
    };
    let mut out: Vec<MountStep<'a>> = binds.iter().map(MountStep::Bind).collect();
    for t in fs {
        let at = out
            .iter()
            .position(|m| match m {
                MountStep::Bind(b) => below(&t.target, &b.target),
                MountStep::Tmpfs(_) => false,
            })
            .unwrap_or(out.len());
        out.insert(at, MountStep::Tmpfs(t));
    }
    out
}

/// A bind mount of a host path (file or directory) onto a path inside the container.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Bind {
    pub source: PathBuf,
    pub target: String,
    pub read_only: bool,
}

/// The files of one container, in two directories. `DATA/containers/ID` (this path) is on disk
/// and holds what must outlive a reboot: the agent's record, the exit, the log and the writable
/// layer. `DATA/run/ID` ([`ContainerDir::run`]) holds what matters only while the host is up: the
/// runtime spec, the supervisor's start record, socket and own log, the rootfs mount point and the
/// generated `/etc` files. The agent mounts a tmpfs on `DATA/run` ([`run_dir::ensure_tmpfs`]), as
/// containerd and runc keep such state under `/run`. The agent and the supervisor communicate
/// only through these files and the supervisor's socket.
#[derive(Debug, Clone)]
pub struct ContainerDir(pub PathBuf);

impl ContainerDir {
    pub fn path(&self) -> &Path {
        &self.0
    }
    /// The volatile half: `DATA/run/ID` for `DATA/containers/ID`.
    pub fn run(&self) -> PathBuf {
        let id = self.0.file_name().unwrap_or_default();
        match self.0.parent().and_then(Path::parent) {
            Some(data) => data.join(run_dir::NAME).join(id),
            None => self.0.join(run_dir::NAME),
        }
    }
    pub fn spec(&self) -> PathBuf {
        self.run().join("spec.json")
    }
    /// The agent's record of the container (its create request and metadata).
    pub fn record(&self) -> PathBuf {
        self.0.join("container.json")
    }
    /// Written by the supervisor once the process runs: pids and start time.
    pub fn started(&self) -> PathBuf {
        self.run().join("started.json")
    }
    /// Written by the supervisor when the process has ended.
    pub fn exit(&self) -> PathBuf {
        self.0.join("exit.json")
    }
    pub fn socket(&self) -> PathBuf {
        self.run().join("shim.sock")
    }
    /// The socket's path through an open fd of the directory. Unix socket paths are limited to 107
    /// bytes and data dirs can be deep; `/proc/self/fd/N/shim.sock` always fits. Keep the returned
    /// file open while binding or connecting.
    pub fn socket_short(&self) -> std::io::Result<(std::fs::File, PathBuf)> {
        use std::os::fd::AsRawFd;
        let dir = std::fs::File::open(self.run())?;
        let path = PathBuf::from(format!("/proc/self/fd/{}/shim.sock", dir.as_raw_fd()));
        Ok((dir, path))
    }
    /// The supervisor's own stderr once it has detached.
    pub fn shim_log(&self) -> PathBuf {
        self.run().join("shim.log")
    }
    pub fn log(&self) -> PathBuf {
        self.0.join("log.json")
    }
    pub fn upper(&self) -> PathBuf {
        self.0.join("upper")
    }
    pub fn work(&self) -> PathBuf {
        self.0.join("work")
    }
    pub fn rootfs(&self) -> PathBuf {
        self.run().join("rootfs")
    }
    /// The content of the container's secrets and configs ([`secret_files`]): volatile only.
    pub fn files(&self) -> PathBuf {
        self.run().join("files")
    }
    /// Which secrets and configs the container has, at which versions (no content).
    pub fn files_state(&self) -> PathBuf {
        self.run().join("files.json")
    }
}

/// What the supervisor records once the container's process has exec'd.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Started {
    pub shim_pid: i32,
    pub pid: i32,
    pub started_at: String,
}

/// The supervisor's one-line answer to the agent on its stdout after starting the container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum StartReport {
    Started(Started),
    /// The container could not start; `exit_code` follows Docker: 127 command not found,
    /// 126 not executable, 125 anything else.
    Failed {
        message: String,
        exit_code: i32,
    },
}

/// Writes `value` as JSON to `path` atomically (temp file, rename), so a reader never sees half a
/// file even if the writer dies. Not fsync'd: these files describe running processes, which a
/// power loss ends anyway, and an fsync costs milliseconds on every container start.
pub fn write_json_atomic<T: Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(
        &tmp,
        serde_json::to_vec(value).map_err(std::io::Error::other)?,
    )?;
    std::fs::rename(&tmp, path)
}

/// Reads a JSON file written by [`write_json_atomic`]; `Ok(None)` if it does not exist.
pub fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> std::io::Result<Option<T>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| std::io::Error::other(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Now, RFC 3339 with nanoseconds, UTC.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hoist_proto::TmpfsMount;

    fn bind(target: &str) -> Bind {
        Bind {
            source: "/x".into(),
            target: target.into(),
            read_only: false,
        }
    }

    fn tmpfs(target: &str) -> TmpfsMount {
        TmpfsMount {
            target: target.into(),
            size_bytes: None,
            mode: None,
            read_only: false,
        }
    }

    #[test]
    fn a_tmpfs_goes_before_the_mounts_below_it_and_after_those_above() {
        let binds = [
            bind("/etc/hosts"),
            bind("/data"),
            bind("/run/app/sock"),
            bind("/data/cache/x"),
        ];
        let fs = [tmpfs("/data/cache"), tmpfs("/run"), tmpfs("/tmp")];
        let order: Vec<String> = mount_order(&binds, &fs)
            .into_iter()
            .map(|m| match m {
                MountStep::Bind(b) => format!("bind {}", b.target),
                MountStep::Tmpfs(t) => format!("tmpfs {}", t.target),
            })
            .collect();
        assert_eq!(
            order,
            [
                "bind /etc/hosts",
                "bind /data",
                "tmpfs /run",
                "bind /run/app/sock",
                "tmpfs /data/cache",
                "bind /data/cache/x",
                "tmpfs /tmp",
            ]
        );
        // `/runner` is not below `/run`.
        let binds = [bind("/runner")];
        let order = mount_order(&binds, &fs[1..2]);
        assert!(matches!(order[1], MountStep::Tmpfs(_)));
    }

    #[test]
    fn tmpfs_options_carry_mode_and_size() {
        let mut t = tmpfs("/run");
        assert_eq!(mounts::tmpfs_options(&t), "mode=1777");
        t.mode = Some(0o700);
        t.size_bytes = Some(64 << 20);
        assert_eq!(mounts::tmpfs_options(&t), "mode=700,size=67108864");
    }
}
