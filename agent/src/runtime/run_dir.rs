//! `DATA/run`: the volatile half of every container's files (see [`super::ContainerDir`]) on a
//! tmpfs of the agent's own.
//!
//! Why a tmpfs: those files live only while the host is up, so the disk gains nothing from them.
//! And on ext4 without a journal (this project's CI machine), allocating an inode scans past every
//! inode freed in the last minute or more (`recently_deleted`); with ~20 files made and removed per
//! container, starting a batch of containers right after removing one spent a quarter of its CPU
//! there. Mounted once, the tmpfs stays when the agent restarts (its containers keep running) and
//! is gone after a reboot, as the containers are.

use nix::mount::{mount, MsFlags};
use nix::sys::statfs::{statfs, TMPFS_MAGIC};
use std::path::Path;

/// The directory's name under the data dir.
pub const NAME: &str = "run";

/// Makes sure `dir` exists and is a tmpfs, mounting one (mode 0700, 256 MiB at most) if not.
/// Returns whether it mounted one.
pub fn ensure_tmpfs(dir: &Path) -> std::io::Result<bool> {
    std::fs::create_dir_all(dir)?;
    if statfs(dir)?.filesystem_type() == TMPFS_MAGIC {
        return Ok(false);
    }
    mount(
        Some("tmpfs"),
        dir,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("mode=0700,size=256m"),
    )?;
    Ok(true)
}
