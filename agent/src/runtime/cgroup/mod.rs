//! Control groups: one cgroup per container under the agent's own parent (`hoist/...`), with memory,
//! cpu and pids limits, usage for `stats`, OOM detection and a kill-everything fallback.
//!
//! Both hierarchies are supported: v2 (one tree, `cgroup.subtree_control`) and v1 (a tree per
//! controller, as on this machine's hybrid layout). The driver only writes files below a root
//! directory it is given, so unit tests run it against a plain temp directory standing in for
//! cgroupfs; integration tests use the real one. Nothing outside the agent's parent is touched.

mod v1;
mod v2;

use hoist_proto::Resources;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

/// The cgroup of one container, as stored in its spec. Enough to find it again after a restart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CgroupHandle {
    /// One directory per controller name (`memory`, `cpu`, `cpuacct`, `pids`, `devices`).
    V1 {
        dirs: BTreeMap<String, PathBuf>,
    },
    V2 {
        dir: PathBuf,
    },
}

/// Resource usage read from a cgroup.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CgroupStats {
    pub memory_bytes: u64,
    pub cpu_usage_ns: u64,
    pub pids: u64,
}

/// Which hierarchy the host uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CgroupVersion {
    V1,
    V2,
}

/// The cgroup operations the container manager needs. [`CgroupDriver`] writes cgroupfs; tests
/// pass a recording fake (`crate::testing`). The supervisor, a process of its own, uses the
/// [`CgroupHandle`] in its spec directly.
pub trait Cgroups: Send + Sync + std::fmt::Debug {
    /// Which hierarchy the host uses.
    fn version(&self) -> CgroupVersion;
    /// The handle a container with `id` has or would have: for finding leftovers.
    fn handle_for(&self, id: &str) -> CgroupHandle;
    /// Creates the container's cgroup and applies `res`. On failure nothing is left behind.
    /// Blocking.
    fn create(&self, id: &str, res: &Resources) -> io::Result<CgroupHandle>;
    /// Removes the cgroup; one that is already gone is fine. Blocking (retries while busy).
    fn remove(&self, cgroup: &CgroupHandle) -> io::Result<()>;
    /// Resource usage, for `stats`.
    fn stats(&self, cgroup: &CgroupHandle) -> CgroupStats;
    /// Whether the kernel's OOM killer has killed a process in it.
    fn oom_killed(&self, cgroup: &CgroupHandle) -> bool;
    /// How many processes the kernel's OOM killer has killed in it (for the metrics).
    fn oom_kills(&self, cgroup: &CgroupHandle) -> u64 {
        u64::from(self.oom_killed(cgroup))
    }
    /// Host pids of every process in it.
    fn pids(&self, cgroup: &CgroupHandle) -> Vec<i32>;
    /// Sends `signal` to every process in it: the fallback when the supervisor is gone.
    fn signal_all(&self, cgroup: &CgroupHandle, signal: nix::sys::signal::Signal);
}

impl Cgroups for CgroupDriver {
    fn version(&self) -> CgroupVersion {
        self.version
    }
    fn handle_for(&self, id: &str) -> CgroupHandle {
        CgroupDriver::handle_for(self, id)
    }
    fn create(&self, id: &str, res: &Resources) -> io::Result<CgroupHandle> {
        CgroupDriver::create(self, id, res)
    }
    fn remove(&self, cgroup: &CgroupHandle) -> io::Result<()> {
        cgroup.remove()
    }
    fn stats(&self, cgroup: &CgroupHandle) -> CgroupStats {
        cgroup.stats()
    }
    fn oom_killed(&self, cgroup: &CgroupHandle) -> bool {
        cgroup.oom_killed()
    }
    fn oom_kills(&self, cgroup: &CgroupHandle) -> u64 {
        cgroup.oom_kills()
    }
    fn pids(&self, cgroup: &CgroupHandle) -> Vec<i32> {
        cgroup.pids()
    }
    fn signal_all(&self, cgroup: &CgroupHandle, signal: nix::sys::signal::Signal) {
        cgroup.signal_all(signal)
    }
}

/// Creates container cgroups below `root/<parent>` (v2) or `root/<controller>/<parent>` (v1).
#[derive(Debug, Clone)]
pub struct CgroupDriver {
    root: PathBuf,
    parent: PathBuf,
    version: CgroupVersion,
}

const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;

impl CgroupDriver {
    /// Detects the host's layout at `/sys/fs/cgroup` (hybrid hosts count as v1).
    pub fn detect(parent: &str) -> io::Result<Self> {
        let root = PathBuf::from("/sys/fs/cgroup");
        let fs = nix::sys::statfs::statfs(&root).map_err(io::Error::from)?;
        let version = if fs.filesystem_type().0 as i64 == CGROUP2_SUPER_MAGIC {
            CgroupVersion::V2
        } else {
            CgroupVersion::V1
        };
        Ok(Self::new(root, parent, version))
    }

    /// A driver over an explicit root, for tests.
    pub fn new(root: PathBuf, parent: &str, version: CgroupVersion) -> Self {
        Self {
            root,
            parent: PathBuf::from(parent.trim_matches('/')),
            version,
        }
    }

    pub fn version(&self) -> CgroupVersion {
        self.version
    }

    /// Creates the container's cgroup and applies `res`. On failure nothing is left behind.
    pub fn create(&self, id: &str, res: &Resources) -> io::Result<CgroupHandle> {
        let handle = match self.version {
            CgroupVersion::V2 => v2::create(&self.root, &self.parent, id)?,
            CgroupVersion::V1 => v1::create(&self.root, &self.parent, id)?,
        };
        if let Err(e) = handle.apply(res) {
            let _ = handle.remove();
            return Err(e);
        }
        Ok(handle)
    }

    /// The handle a container with `id` would have, for finding leftovers.
    pub fn handle_for(&self, id: &str) -> CgroupHandle {
        match self.version {
            CgroupVersion::V2 => CgroupHandle::V2 {
                dir: self.root.join(&self.parent).join(id),
            },
            CgroupVersion::V1 => v1::handle(&self.root, &self.parent, id),
        }
    }
}

impl CgroupHandle {
    fn apply(&self, res: &Resources) -> io::Result<()> {
        match self {
            CgroupHandle::V1 { dirs } => v1::apply(dirs, res),
            CgroupHandle::V2 { dir } => v2::apply(dir, res),
        }
    }

    /// Moves process `pid` into this cgroup (every hierarchy).
    pub fn add_process(&self, pid: i32) -> io::Result<()> {
        for dir in self.dirs() {
            write(&dir.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    /// Whether a process that is to run in this cgroup should move itself in
    /// ([`CgroupHandle::add_current_process`]) rather than be moved by its parent
    /// ([`CgroupHandle::add_process`]): on v1, where a process moving itself takes no lock
    /// that waits.
    pub fn joined_from_inside(&self) -> bool {
        matches!(self, CgroupHandle::V1 { .. })
    }

    /// The v2 directory, open, for the container's first process to be born in
    /// (`CLONE_INTO_CGROUP`: no move, no lock); `None` on v1, or when it cannot be opened (the
    /// process is then moved).
    pub fn open_for_clone(&self) -> Option<std::os::fd::OwnedFd> {
        match self {
            CgroupHandle::V2 { dir } => std::fs::File::open(dir).ok().map(Into::into),
            CgroupHandle::V1 { .. } => None,
        }
    }

    /// Moves the calling process, which must be single-threaded (a child just forked, before it
    /// starts a thread), into this cgroup.
    ///
    /// Why: a write of a pid to `cgroup.procs` takes the kernel's global
    /// `cgroup_threadgroup_rwsem` for writing, and that percpu rwsem, idle, first waits for an
    /// RCU grace period: 6.5 ms on this host, most of a container's start (`bench/README.md`,
    /// "Container start"). On v1, a thread that moves only itself (`0` written to `tasks`) takes
    /// no such lock: it cannot exit or exec while it writes, so the kernel skips it. For a
    /// single-threaded process, its one thread is the whole process, and its children are born
    /// where it is. v2 has no move of one thread between domain cgroups, so there the process
    /// moves as a whole (`0` to `cgroup.procs`, lock and all).
    pub fn add_current_process(&self) -> io::Result<()> {
        let file = match self {
            CgroupHandle::V1 { .. } => "tasks",
            CgroupHandle::V2 { .. } => "cgroup.procs",
        };
        for dir in self.dirs() {
            write(&dir.join(file), "0")?;
        }
        Ok(())
    }

    /// Whether the kernel's OOM killer has killed a process in this cgroup.
    pub fn oom_killed(&self) -> bool {
        self.oom_kills() > 0
    }

    /// How many processes the kernel's OOM killer has killed in this cgroup (`oom_kill` of
    /// `memory.events`, v2, or of `memory.oom_control`, v1 since Linux 4.13).
    pub fn oom_kills(&self) -> u64 {
        let file = match self {
            CgroupHandle::V1 { dirs } => match dirs.get("memory") {
                Some(d) => d.join("memory.oom_control"),
                None => return 0,
            },
            CgroupHandle::V2 { dir } => dir.join("memory.events"),
        };
        read_keyed(&file, "oom_kill").unwrap_or(0)
    }

    pub fn stats(&self) -> CgroupStats {
        match self {
            CgroupHandle::V1 { dirs } => v1::stats(dirs),
            CgroupHandle::V2 { dir } => v2::stats(dir),
        }
    }

    /// Host pids of every process in the cgroup.
    pub fn pids(&self) -> Vec<i32> {
        let dir = match self {
            CgroupHandle::V1 { dirs } => dirs.get("pids").or_else(|| dirs.values().next()),
            CgroupHandle::V2 { dir } => Some(dir),
        };
        let Some(dir) = dir else { return Vec::new() };
        std::fs::read_to_string(dir.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// Sends `signal` to every process of the cgroup: the fallback when the supervisor is gone.
    pub fn signal_all(&self, signal: nix::sys::signal::Signal) {
        for pid in self.pids() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal);
        }
    }

    /// Removes the cgroup directories. Retries briefly: the kernel keeps a cgroup busy for a moment
    /// after its last process exits. Missing directories are fine.
    pub fn remove(&self) -> io::Result<()> {
        for dir in self.dirs() {
            let mut tries = 0;
            loop {
                match std::fs::remove_dir(dir) {
                    Ok(()) => break,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                    Err(e) if e.raw_os_error() == Some(libc::EBUSY) && tries < 1000 => {
                        tries += 1;
                        std::thread::sleep(std::time::Duration::from_millis(1));
                    }
                    Err(e) => {
                        return Err(io::Error::new(
                            e.kind(),
                            format!("remove cgroup {}: {e}", dir.display()),
                        ))
                    }
                }
            }
        }
        Ok(())
    }

    fn dirs(&self) -> Vec<&PathBuf> {
        match self {
            CgroupHandle::V1 { dirs } => {
                let mut v: Vec<&PathBuf> = dirs.values().collect();
                v.dedup();
                v
            }
            CgroupHandle::V2 { dir } => vec![dir],
        }
    }
}

/// Writes a cgroup control file, naming it in the error.
fn write(path: &Path, value: &str) -> io::Result<()> {
    std::fs::write(path, value).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("write {value:?} to {}: {e}", path.display()),
        )
    })
}

/// Reads a number from a single-value file (`memory.current`).
fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Reads `key N` from a flat-keyed file (`memory.events`, `cpu.stat`).
fn read_keyed(path: &Path, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// cgroup v2 `cpu.weight` (1..=10000, default 100) to v1 `cpu.shares` (default 1024), in proportion,
/// so that both defaults mean the same. (runc's formula maps weight 100 to 2597 shares instead.)
pub fn weight_to_shares(weight: u64) -> u64 {
    (weight.clamp(1, 10000) * 1024 / 100).clamp(2, 262_144)
}

#[cfg(test)]
mod tests;
