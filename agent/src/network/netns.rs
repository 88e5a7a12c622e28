//! Network namespaces as files: create one per container (bind mount of a fresh netns onto
//! `netns_dir/<id>`), run code inside a namespace on a throwaway thread, and remove them.
//!
//! Why threads: a namespace belongs to a thread, not to the process. The daemon is multi-threaded
//! and must never fork, so we `unshare`/`setns` on a dedicated `std::thread` that exits afterwards
//! (never on a tokio worker or blocking-pool thread, which would be reused in the wrong namespace).
//! Netlink sockets keep the namespace they were opened in, so a socket opened on such a thread can
//! be driven from the normal runtime.

use super::NetworkError;
use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use std::fs::{File, OpenOptions};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

const THREAD_NS: &str = "/proc/thread-self/ns/net";

/// A netlink connection opened inside a container namespace: drive `connection` while using `handle`.
pub type NetlinkPair = (NetlinkConnection, rtnetlink::Handle);

/// The connection half of a netlink pair: a future that must be polled for requests to complete.
pub type NetlinkConnection =
    rtnetlink::proto::Connection<rtnetlink::packet_route::RouteNetlinkMessage>;

/// What `create` hands back.
pub struct Created {
    /// An fd of the new namespace (for `IFLA_NET_NS_FD`); close it when done.
    pub fd: OwnedFd,
    /// A netlink connection inside it, if asked for.
    pub netlink: Option<NetlinkPair>,
}

impl std::fmt::Debug for Created {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Created")
            .field("fd", &self.fd)
            .field("netlink", &self.netlink.is_some())
            .finish()
    }
}

/// Opens the calling thread's network namespace (the agent's "host" namespace at `Network::new`).
pub fn open_current() -> Result<OwnedFd, NetworkError> {
    File::open(THREAD_NS)
        .map(OwnedFd::from)
        .map_err(|e| NetworkError::io("open", THREAD_NS, e))
}

/// Runs `f` on a fresh thread inside namespace `ns` and returns its result without blocking the runtime.
pub async fn run_in<T, F>(ns: &OwnedFd, what: &str, f: F) -> Result<T, NetworkError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, NetworkError> + Send + 'static,
{
    let ns = ns
        .try_clone()
        .map_err(|e| NetworkError::io("duplicate netns fd for", what, e))?;
    run_on_thread(what, move || {
        setns(ns.as_fd(), CloneFlags::CLONE_NEWNET)
            .map_err(|e| NetworkError::errno("setns into", THREAD_NS, e))?;
        f()
    })
    .await
}

/// Runs `f` on a fresh `std::thread` (which then exits) and awaits its result.
pub async fn run_on_thread<T, F>(what: &str, f: F) -> Result<T, NetworkError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, NetworkError> + Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("hoist-netns".into())
        .spawn(move || {
            let _ = tx.send(f());
        })
        .map_err(|e| NetworkError::io("spawn thread for", what, e))?;
    rx.await.map_err(|_| NetworkError::ThreadPanicked {
        what: what.to_string(),
    })?
}

/// Creates a new network namespace with `lo` up, pinned at `path` (which must not exist) or, with
/// `None`, held only by the returned fd. With `netlink`, also opens a netlink connection inside it,
/// registered with that runtime. On failure nothing is left behind.
pub async fn create(
    path: Option<&Path>,
    netlink: Option<tokio::runtime::Handle>,
) -> Result<Created, NetworkError> {
    let path = path.map(Path::to_path_buf);
    run_on_thread("netns create", move || {
        if let Some(path) = &path {
            create_file(path)?;
        }
        let res = enter_new_netns(path.as_deref(), netlink);
        if let (Err(_), Some(path)) = (&res, &path) {
            // Best effort: the original error is the one worth reporting.
            let _ = remove(path);
        }
        res
    })
    .await
}

/// Pins the namespace of `fd` at `path` (which must not exist) by a bind mount. Blocking but fast.
pub fn adopt(fd: &OwnedFd, path: &Path) -> Result<(), NetworkError> {
    create_file(path)?;
    let source = format!("/proc/self/fd/{}", fd.as_raw_fd());
    let res = mount(
        Some(source.as_str()),
        path,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| NetworkError::errno("bind mount netns onto", path, e));
    if res.is_err() {
        let _ = remove(path);
    }
    res
}

fn create_file(path: &Path) -> Result<(), NetworkError> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map(drop)
        .map_err(|e| NetworkError::io("create netns file", path, e))
}

/// Runs on the dedicated thread: after `unshare` this thread lives in the new namespace until it exits.
fn enter_new_netns(
    path: Option<&Path>,
    netlink: Option<tokio::runtime::Handle>,
) -> Result<Created, NetworkError> {
    let what = path.unwrap_or(Path::new("(anonymous netns)"));
    unshare(CloneFlags::CLONE_NEWNET)
        .map_err(|e| NetworkError::errno("unshare netns for", what, e))?;
    if let Some(path) = path {
        mount(
            Some(THREAD_NS),
            path,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| NetworkError::errno("bind mount netns onto", path, e))?;
    }
    set_loopback_up().map_err(|e| NetworkError::errno("bring up lo in", what, e))?;
    let fd = open_current()?;
    let netlink = match netlink {
        Some(rt) => {
            let _guard = rt.enter();
            let (conn, handle, _) = rtnetlink::new_connection()
                .map_err(|e| NetworkError::io("open netlink socket in", what, e))?;
            Some((conn, handle))
        }
        None => None,
    };
    Ok(Created { fd, netlink })
}

/// `ip link set lo up` in the calling thread's namespace, by ioctl (no netlink round trip needed).
/// Also what a `--network none` container's first process does in the namespace it makes.
pub fn set_loopback_up() -> Result<(), Errno> {
    // SAFETY: plain socket(2) call; the result is checked and wrapped in an OwnedFd right away.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(Errno::last());
    }
    // SAFETY: `raw` is a fresh, valid fd that nothing else owns.
    let sock = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) };
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads the flags of the interface named in `req` into `req`; both live for the call.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } < 0 {
        return Err(Errno::last());
    }
    // SAFETY: SIOCGIFFLAGS filled the `ifru_flags` member of the union.
    unsafe { req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
    // SAFETY: SIOCSIFFLAGS reads `req` (name + flags); both live for the call.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) } < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// Unmounts and deletes a netns file; missing or unmounted files are fine (idempotent).
/// The namespace, and the veth inside it, go away once no process or socket uses it any more.
pub fn remove(path: &Path) -> Result<(), NetworkError> {
    match umount2(path, MntFlags::MNT_DETACH) {
        Ok(()) | Err(Errno::EINVAL) | Err(Errno::ENOENT) => {}
        Err(e) => return Err(NetworkError::errno("unmount netns file", path, e)),
    }
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(NetworkError::io("delete netns file", path, e)),
    }
}
