//! The binary the agent's helpers (supervisors, exec helpers) are started from: a sealed in-memory
//! copy of the agent itself.
//!
//! A process of a container can reach a helper's `/proc/PID/exe` (for instance by making its
//! command `#!/proc/self/exe`, which makes the kernel run the helper's own binary inside the
//! container) and, with the file open, overwrite the agent binary on the host once it is no longer
//! busy: runc's CVE-2019-5736. Helpers therefore run from a `memfd` that is sealed against writes,
//! so there is no host file behind their `/proc/PID/exe` to write to. The copy is made once per
//! agent start (about 10 MB for a release build).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::OnceLock;

static SEALED: OnceLock<Option<OwnedFd>> = OnceLock::new();

/// Makes the sealed copy. Called once at agent start; on failure helpers fall back to
/// `/proc/self/exe` (and the agent logs why).
pub fn init() -> io::Result<()> {
    let mut result = Ok(());
    SEALED.get_or_init(|| match sealed_copy() {
        Ok(fd) => Some(fd),
        Err(e) => {
            result = Err(e);
            None
        }
    });
    result
}

/// The path to exec a helper from: the sealed copy if there is one.
pub fn helper_exe() -> PathBuf {
    match SEALED.get() {
        Some(Some(fd)) => PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd())),
        // /proc/self/exe rather than a path: it names this very binary even after an upgrade
        // replaced the file.
        _ => PathBuf::from("/proc/self/exe"),
    }
}

fn sealed_copy() -> io::Result<OwnedFd> {
    // SAFETY: memfd_create with a NUL-terminated name and flags; returns a new fd or -1.
    let raw = unsafe {
        libc::memfd_create(
            c"hoist-agent".as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
        )
    };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a new descriptor owned by nothing else.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let mut src = std::fs::File::open("/proc/self/exe")?;
    let mut dst = std::fs::File::from(fd.try_clone()?);
    io::copy(&mut src, &mut dst)?;
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: fcntl on an fd we own, with integer arguments.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_copy_is_sealed_against_writes() {
        init().unwrap();
        let path = helper_exe();
        assert!(path.starts_with("/proc/self/fd/"), "{}", path.display());
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        let e = f.write_all(b"\x7fELF overwritten").unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EPERM), "{e}");
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            std::fs::metadata("/proc/self/exe").unwrap().len()
        );
    }
}
