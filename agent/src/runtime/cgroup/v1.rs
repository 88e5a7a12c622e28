//! cgroup v1: one directory per controller. Used on hosts with the legacy or hybrid layout.

use super::{read_keyed, read_u64, weight_to_shares, write, CgroupHandle, CgroupStats};
use hoist_proto::Resources;
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

pub(super) const CONTROLLERS: [&str; 5] = ["memory", "cpu", "cpuacct", "pids", "devices"];

/// The devices a container may read and write: Docker's default allow list. Any device node may
/// be created (`mknod` is a default capability), but only these may be opened.
const ALLOWED_DEVICES: [&str; 10] = [
    "c *:* m",
    "b *:* m",
    "c 1:3 rwm",   // null
    "c 1:5 rwm",   // zero
    "c 1:7 rwm",   // full
    "c 1:8 rwm",   // random
    "c 1:9 rwm",   // urandom
    "c 5:0 rwm",   // tty
    "c 5:2 rwm",   // ptmx
    "c 136:* rwm", // pts
];

pub(super) fn handle(root: &Path, parent: &Path, id: &str) -> CgroupHandle {
    let dirs = CONTROLLERS
        .iter()
        .filter(|c| root.join(c).is_dir())
        .map(|c| (c.to_string(), root.join(c).join(parent).join(id)))
        .collect();
    CgroupHandle::V1 { dirs }
}

pub(super) fn create(root: &Path, parent: &Path, id: &str) -> io::Result<CgroupHandle> {
    let handle = handle(root, parent, id);
    let CgroupHandle::V1 { dirs } = &handle else {
        unreachable!("v1 handle")
    };
    for (controller, dir) in dirs {
        if let Err(e) = std::fs::create_dir_all(dir) {
            let _ = handle.remove();
            return Err(io::Error::new(
                e.kind(),
                format!("create cgroup {}: {e}", dir.display()),
            ));
        }
        if controller == "devices" {
            if let Err(e) = restrict_devices(dir) {
                let _ = handle.remove();
                return Err(e);
            }
        }
    }
    Ok(handle)
}

fn restrict_devices(dir: &Path) -> io::Result<()> {
    write(&dir.join("devices.deny"), "a")?;
    for rule in ALLOWED_DEVICES {
        write(&dir.join("devices.allow"), rule)?;
    }
    Ok(())
}

pub(super) fn apply(dirs: &BTreeMap<String, PathBuf>, res: &Resources) -> io::Result<()> {
    if let (Some(bytes), Some(dir)) = (res.memory_bytes, dirs.get("memory")) {
        write(&dir.join("memory.limit_in_bytes"), &bytes.to_string())?;
        // No swap beyond the limit, where the kernel accounts swap at all.
        let memsw = dir.join("memory.memsw.limit_in_bytes");
        if memsw.exists() {
            write(&memsw, &bytes.to_string())?;
        }
    }
    if let Some(dir) = dirs.get("cpu") {
        if let Some(millis) = res.cpu_millis {
            write(&dir.join("cpu.cfs_period_us"), "100000")?;
            write(&dir.join("cpu.cfs_quota_us"), &(millis * 100).to_string())?;
        }
        if let Some(weight) = res.cpu_weight {
            write(
                &dir.join("cpu.shares"),
                &weight_to_shares(weight).to_string(),
            )?;
        }
    }
    if let (Some(max), Some(dir)) = (res.pids_limit, dirs.get("pids")) {
        write(&dir.join("pids.max"), &max.to_string())?;
    }
    Ok(())
}

pub(super) fn stats(dirs: &BTreeMap<String, PathBuf>) -> CgroupStats {
    let memory_bytes = dirs
        .get("memory")
        .map(|d| {
            let usage = read_u64(&d.join("memory.usage_in_bytes")).unwrap_or(0);
            // Like `docker stats`: page cache that can be dropped does not count.
            let inactive = read_keyed(&d.join("memory.stat"), "total_inactive_file").unwrap_or(0);
            usage.saturating_sub(inactive)
        })
        .unwrap_or(0);
    CgroupStats {
        memory_bytes,
        cpu_usage_ns: dirs
            .get("cpuacct")
            .and_then(|d| read_u64(&d.join("cpuacct.usage")))
            .unwrap_or(0),
        pids: dirs
            .get("pids")
            .and_then(|d| read_u64(&d.join("pids.current")))
            .unwrap_or(0),
    }
}
