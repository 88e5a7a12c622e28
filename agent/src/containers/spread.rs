//! Ask ext4 to spread the container directories over its block groups (`chattr +T` on
//! `DATA/containers`).
//!
//! Why: ext4 places a new directory in its parent's block group, and the files in it follow. On
//! ext4 without a journal (this project's CI machine), allocating an inode there first skips, one
//! inode-table lookup each, every inode of that group freed in the last one to six minutes
//! (`recently_deleted` in fs/ext4/ialloc.c). A host that starts and removes containers in bulk
//! frees hundreds of inodes a minute, all in one group, and each start paid for all of them
//! (37% of the agent's CPU when starting 50 replicas right after removing 50). With the
//! "top directory" flag on the parent, ext4's Orlov allocator gives each container directory a
//! group of its own choosing, so a start only meets its own group's frees. Measured with
//! `bench/orchestration.sh 50 5`: median 0.51-0.56 s without, 0.37-0.38 s with, two runs each.
//! Filesystems without the flag (tmpfs, xfs...) refuse it; that is fine.

use std::os::fd::AsRawFd;
use std::path::Path;

/// ext4's `EXT4_TOPDIR_FL` (`FS_TOPDIR_FL` in linux/fs.h).
const FS_TOPDIR_FL: libc::c_int = 0x0002_0000;

/// Sets the top-directory flag on `dir` if its filesystem has one; returns whether it is set.
pub fn spread_subdirectories(dir: &Path) -> std::io::Result<bool> {
    let f = std::fs::File::open(dir)?;
    let mut flags: libc::c_int = 0;
    // SAFETY: FS_IOC_GETFLAGS writes one int (the kernel's `int`, despite the `long` in the ioctl's
    // number) to the pointer, which lives for the call; `f` is an open fd.
    if unsafe { libc::ioctl(f.as_raw_fd(), libc::FS_IOC_GETFLAGS, &mut flags) } != 0 {
        return unsupported(std::io::Error::last_os_error());
    }
    if flags & FS_TOPDIR_FL != 0 {
        return Ok(true);
    }
    flags |= FS_TOPDIR_FL;
    // SAFETY: FS_IOC_SETFLAGS reads one int from the pointer, which lives for the call.
    if unsafe { libc::ioctl(f.as_raw_fd(), libc::FS_IOC_SETFLAGS, &flags) } != 0 {
        return unsupported(std::io::Error::last_os_error());
    }
    Ok(true)
}

fn unsupported(e: std::io::Error) -> std::io::Result<bool> {
    match e.raw_os_error() {
        Some(libc::ENOTTY | libc::EOPNOTSUPP | libc::EINVAL) => Ok(false),
        _ => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_is_set_where_the_filesystem_has_it() {
        // The temp dir is on the build machine's filesystem: ext4 here, maybe tmpfs elsewhere.
        let d = tempfile::tempdir().unwrap();
        let set = spread_subdirectories(d.path()).unwrap();
        let fs = nix::sys::statfs::statfs(d.path())
            .unwrap()
            .filesystem_type();
        if fs == nix::sys::statfs::EXT4_SUPER_MAGIC {
            assert!(set, "ext4 has the top-directory flag");
            let out = std::process::Command::new("lsattr")
                .arg("-d")
                .arg(d.path())
                .output();
            if let Ok(out) = out {
                let attrs = String::from_utf8_lossy(&out.stdout);
                assert!(
                    attrs.split_whitespace().next().unwrap_or("").contains('T'),
                    "{attrs}"
                );
            }
        }
        // Idempotent.
        assert_eq!(spread_subdirectories(d.path()).unwrap(), set);
    }
}
