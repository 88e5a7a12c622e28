//! How much disk a directory tree takes, walked without ever following a link: each directory is
//! opened relative to its parent with `O_NOFOLLOW`, so a container that swaps a directory of its
//! volume for a symlink to `/` between two steps cannot send the walk across the host. Only the
//! tree's own filesystem counts (a mount inside it is not entered), each inode once.

use nix::dir::Dir;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{fstat, fstatat, Mode};
use std::collections::HashSet;
use std::ffi::CString;
use std::os::fd::OwnedFd;
use std::path::Path;

/// Deeper trees are counted down to this depth.
const MAX_DEPTH: usize = 256;

const DIR_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);

/// Bytes the files below `dir` take on disk (allocated blocks); 0 when it cannot be opened.
pub fn disk_usage(dir: &Path) -> u64 {
    let Ok(root) = nix::fcntl::open(dir, DIR_FLAGS, Mode::empty()) else {
        return 0;
    };
    let Ok(st) = fstat(&root) else { return 0 };
    let mut walk = Walk {
        dev: st.st_dev,
        seen: HashSet::new(),
        total: 0,
    };
    walk.dir(&root, 0);
    walk.total
}

struct Walk {
    dev: u64,
    seen: HashSet<(u64, u64)>,
    total: u64,
}

impl Walk {
    fn dir(&mut self, fd: &OwnedFd, depth: usize) {
        let Ok(mut d) = Dir::openat(fd, ".", DIR_FLAGS, Mode::empty()) else {
            return;
        };
        let names: Vec<CString> = d
            .iter()
            .flatten()
            .map(|e| e.file_name().to_owned())
            .filter(|n| n.to_bytes() != b"." && n.to_bytes() != b"..")
            .collect();
        drop(d);
        for name in names {
            let Ok(st) = fstatat(fd, name.as_c_str(), AtFlags::AT_SYMLINK_NOFOLLOW) else {
                continue;
            };
            if st.st_dev != self.dev {
                continue;
            }
            if self.seen.insert((st.st_dev, st.st_ino)) {
                self.total += st.st_blocks.max(0) as u64 * 512;
            }
            if st.st_mode & libc::S_IFMT == libc::S_IFDIR && depth < MAX_DEPTH {
                if let Ok(sub) = openat(fd, name.as_c_str(), DIR_FLAGS, Mode::empty()) {
                    self.dir(&sub, depth + 1);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_files_once_and_never_follows_a_link() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        std::fs::create_dir_all(d.join("a/b")).unwrap();
        std::fs::write(d.join("a/b/f"), vec![1u8; 64 << 10]).unwrap();
        std::fs::hard_link(d.join("a/b/f"), d.join("a/g")).unwrap();
        std::os::unix::fs::symlink("/", d.join("root")).unwrap();
        std::os::unix::fs::symlink("/usr", d.join("a/usr")).unwrap();
        let n = disk_usage(d);
        assert!((64 << 10..1 << 20).contains(&n), "{n}");
        // The tree itself may not be a link either.
        assert_eq!(disk_usage(&d.join("root")), 0);
        assert_eq!(disk_usage(&d.join("missing")), 0);
    }
}
