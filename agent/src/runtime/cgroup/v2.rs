//! cgroup v2: one unified tree. Controllers must be enabled in every ancestor's `subtree_control`.

use super::{read_keyed, read_u64, write, CgroupHandle, CgroupStats};
use hoist_proto::Resources;
use std::io;
use std::path::Path;

const CONTROLLERS: &str = "+cpu +memory +pids";

pub(super) fn create(root: &Path, parent: &Path, id: &str) -> io::Result<CgroupHandle> {
    // Enable the controllers from the root down to the parent; the leaf holds processes only.
    let mut dir = root.to_path_buf();
    for component in parent.components() {
        write(&dir.join("cgroup.subtree_control"), CONTROLLERS)?;
        dir.push(component);
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("create cgroup {}: {e}", dir.display()),
                ))
            }
        }
    }
    write(&dir.join("cgroup.subtree_control"), CONTROLLERS)?;
    let leaf = dir.join(id);
    std::fs::create_dir(&leaf)
        .map_err(|e| io::Error::new(e.kind(), format!("create cgroup {}: {e}", leaf.display())))?;
    Ok(CgroupHandle::V2 { dir: leaf })
}

pub(super) fn apply(dir: &Path, res: &Resources) -> io::Result<()> {
    if let Some(bytes) = res.memory_bytes {
        write(&dir.join("memory.max"), &bytes.to_string())?;
        let swap = dir.join("memory.swap.max");
        if swap.exists() {
            write(&swap, "0")?;
        }
    }
    if let Some(millis) = res.cpu_millis {
        write(&dir.join("cpu.max"), &format!("{} 100000", millis * 100))?;
    }
    if let Some(weight) = res.cpu_weight {
        write(&dir.join("cpu.weight"), &weight.clamp(1, 10000).to_string())?;
    }
    if let Some(max) = res.pids_limit {
        write(&dir.join("pids.max"), &max.to_string())?;
    }
    Ok(())
}

pub(super) fn stats(dir: &Path) -> CgroupStats {
    let current = read_u64(&dir.join("memory.current")).unwrap_or(0);
    let inactive = read_keyed(&dir.join("memory.stat"), "inactive_file").unwrap_or(0);
    CgroupStats {
        memory_bytes: current.saturating_sub(inactive),
        cpu_usage_ns: read_keyed(&dir.join("cpu.stat"), "usage_usec").unwrap_or(0) * 1000,
        pids: read_u64(&dir.join("pids.current")).unwrap_or(0),
    }
}
