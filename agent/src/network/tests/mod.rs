//! Kernel integration tests (root only): every test builds its own "host" network namespace and
//! runs `Network` inside it, so the machine's own network is never touched. Guards tear down
//! namespaces and mounts even when a test panics.

pub(super) use super::*;
pub(super) use hoist_proto::agent::{NetworkMode, PortMapping, Protocol};
pub(super) use std::collections::BTreeSet;
use std::future::Future;
use std::io::{Read, Write};
pub(super) use std::net::SocketAddr;
use std::net::{TcpListener, TcpStream};
pub(super) use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
pub(super) use std::sync::Arc;
pub(super) use std::time::{Duration, Instant};

pub(super) fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

macro_rules! require_root {
    () => {
        if !is_root() {
            eprintln!("skipped: needs root (network namespaces, bridges, nftables)");
            return;
        }
    };
}

pub(super) fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("spawn");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A named test namespace (`ip netns add hoist-nt-...`), deleted on drop.
pub(super) struct TestNs {
    pub(super) name: String,
}

impl TestNs {
    fn new(tag: &str) -> Self {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "hoist-nt-{tag}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        run(Command::new("ip").args(["netns", "add", &name]));
        run(Command::new("ip").args(["-n", &name, "link", "set", "lo", "up"]));
        TestNs { name }
    }

    fn path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.name)
    }
}

impl Drop for TestNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// A host namespace plus a data dir; on drop unmounts any netns files left in it.
pub(super) struct Fixture {
    pub(super) cfg: NetworkConfig,
    pub(super) host: TestNs,
    _dir: tempfile::TempDir,
}

impl Fixture {
    fn new(tag: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = NetworkConfig::new(dir.path());
        Fixture {
            cfg,
            host: TestNs::new(tag),
            _dir: dir,
        }
    }

    /// Runs `f` on a multi-threaded runtime whose threads live in the host namespace.
    fn run<F, Fut, T>(&self, f: F) -> T
    where
        F: FnOnce(NetworkConfig) -> Fut + Send + 'static,
        Fut: Future<Output = T>,
        T: Send + 'static,
    {
        let ns = self.host.path();
        let cfg = self.cfg.clone();
        let thread = std::thread::spawn(move || {
            enter(&ns);
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(f(cfg))
        });
        thread
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Ok(entries) = std::fs::read_dir(&self.cfg.netns_dir) {
            for e in entries.flatten() {
                let _ = nix::mount::umount2(&e.path(), nix::mount::MntFlags::MNT_DETACH);
            }
        }
    }
}

/// Moves the calling thread into the network namespace at `path`.
pub(super) fn enter(path: &Path) {
    let f = std::fs::File::open(path).expect("open netns");
    nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
}

/// Runs a command inside the namespace at `path`.
pub(super) fn ns_cmd(path: &Path, args: &[&str]) -> String {
    let net = format!("--net={}", path.display());
    run(Command::new("nsenter").arg(net).args(args))
}

/// A TCP server in a namespace answering `hello from <tag>` until dropped.
pub(super) struct Server {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start(ns: &Path, addr: SocketAddr, tag: &str) -> Self {
        let (ns, tag) = (ns.to_path_buf(), tag.to_string());
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let stop2 = stop.clone();
        let thread = std::thread::spawn(move || {
            enter(&ns);
            let listener = TcpListener::bind(addr).expect("bind");
            listener.set_nonblocking(true).expect("nonblocking");
            ready_tx.send(()).expect("ready");
            while !stop2.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut s, _)) => {
                        let _ = s.set_nonblocking(false);
                        let _ = s.write_all(format!("hello from {tag}").as_bytes());
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        ready_rx
            .recv_timeout(Duration::from_secs(5))
            .expect("server ready");
        Server {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Connects from inside namespace `ns` (None: the caller's) and returns what the server said.
/// Generous timeouts: the tests run niced on 2 shared, often saturated cores.
pub(super) fn fetch(ns: Option<&Path>, addr: SocketAddr) -> std::io::Result<String> {
    fetch_within(ns, addr, Duration::from_secs(10))
}

/// `fetch` for connections that are expected to fail (dropped packets fail by timeout).
pub(super) fn fetch_fails(ns: Option<&Path>, addr: SocketAddr) -> bool {
    fetch_within(ns, addr, Duration::from_secs(2)).is_err()
}

fn fetch_within(ns: Option<&Path>, addr: SocketAddr, timeout: Duration) -> std::io::Result<String> {
    let ns = ns.map(Path::to_path_buf);
    std::thread::spawn(move || {
        if let Some(ns) = ns {
            enter(&ns);
        }
        let mut s = TcpStream::connect_timeout(&addr, timeout)?;
        s.set_read_timeout(Some(timeout))?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        Ok(out)
    })
    .join()
    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

pub(super) fn tcp(host_port: u16, container_port: u16) -> PortMapping {
    PortMapping {
        host_port,
        container_port,
        protocol: Protocol::Tcp,
    }
}

pub(super) fn sock(ip: Option<Ipv4Addr>, port: u16) -> SocketAddr {
    SocketAddr::from((ip.expect("bridge mode has an address"), port))
}

pub(super) fn netns_of(a: &Attachment) -> PathBuf {
    a.netns.clone().expect("own netns")
}

pub(super) fn nft_table(host: &Path) -> String {
    ns_cmd(host, &["nft", "-j", "list", "table", "ip", "hoist_hoist0"])
}

mod t10_modes;
mod t20_ports;
mod t30_lifecycle;
mod t90_timing;
