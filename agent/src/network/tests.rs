//! Kernel integration tests (root only): every test builds its own "host" network namespace and
//! runs `Network` inside it, so the machine's own network is never touched. Guards tear down
//! namespaces and mounts even when a test panics.

use super::*;
use hoist_proto::agent::{NetworkMode, PortMapping, Protocol};
use std::future::Future;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn is_root() -> bool {
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

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("spawn");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A named test namespace (`ip netns add hoist-nt-...`), deleted on drop.
struct TestNs {
    name: String,
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
struct Fixture {
    cfg: NetworkConfig,
    host: TestNs,
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
fn enter(path: &Path) {
    let f = std::fs::File::open(path).expect("open netns");
    nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
}

/// Runs a command inside the namespace at `path`.
fn ns_cmd(path: &Path, args: &[&str]) -> String {
    let net = format!("--net={}", path.display());
    run(Command::new("nsenter").arg(net).args(args))
}

/// A TCP server in a namespace answering `hello from <tag>` until dropped.
struct Server {
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
fn fetch(ns: Option<&Path>, addr: SocketAddr) -> std::io::Result<String> {
    let ns = ns.map(Path::to_path_buf);
    std::thread::spawn(move || {
        if let Some(ns) = ns {
            enter(&ns);
        }
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        s.set_read_timeout(Some(Duration::from_secs(2)))?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        Ok(out)
    })
    .join()
    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

fn tcp(host_port: u16, container_port: u16) -> PortMapping {
    PortMapping {
        host_port,
        container_port,
        protocol: Protocol::Tcp,
    }
}

fn sock(ip: Option<Ipv4Addr>, port: u16) -> SocketAddr {
    SocketAddr::from((ip.expect("bridge mode has an address"), port))
}

fn netns_of(a: &Attachment) -> PathBuf {
    a.netns.clone().expect("own netns")
}

fn nft_table(host: &Path) -> String {
    ns_cmd(host, &["nft", "-j", "list", "table", "ip", "hoist_hoist0"])
}

#[test]
fn network_bridge_containers_reach_each_other_and_the_host() {
    require_root!();
    let fx = Fixture::new("br");
    let host = fx.host.path();
    fx.run(move |cfg| async move {
        let net = Network::new(cfg.clone()).await.expect("new");
        drop(net);
        let net = Network::new(cfg.clone()).await.expect("new is idempotent");
        let a = net
            .attach("a", NetworkMode::Bridge, &[])
            .await
            .expect("attach a");
        let b = net
            .attach("b", NetworkMode::Bridge, &[])
            .await
            .expect("attach b");
        assert_eq!(a.ip, Some(Ipv4Addr::new(10, 89, 0, 2)));
        assert_eq!(b.ip, Some(Ipv4Addr::new(10, 89, 0, 3)));
        assert_eq!(a.gateway, Some(Ipv4Addr::new(10, 89, 0, 1)));
        assert_eq!(a.prefix_len, 24);
        assert_eq!(a.netns, Some(cfg.netns_dir.join("a")));

        let bridge = ns_cmd(&host, &["ip", "-4", "-o", "addr", "show", "dev", "hoist0"]);
        assert!(bridge.contains("10.89.0.1/24"), "{bridge}");
        for (att, ip) in [(&a, "10.89.0.2/24"), (&b, "10.89.0.3/24")] {
            let ns = netns_of(att);
            let addr = ns_cmd(&ns, &["ip", "-4", "-o", "addr", "show", "dev", "eth0"]);
            assert!(addr.contains(ip), "{addr}");
            let route = ns_cmd(&ns, &["ip", "route", "show", "default"]);
            assert!(route.contains("default via 10.89.0.1 dev eth0"), "{route}");
            let lo = ns_cmd(&ns, &["ip", "-o", "link", "show", "lo"]);
            assert!(lo.contains("UP"), "{lo}");
        }

        let _srv_b = Server::start(&netns_of(&b), sock(b.ip, 80), "b");
        assert_eq!(
            fetch(Some(&netns_of(&a)), sock(b.ip, 80)).expect("a -> b"),
            "hello from b"
        );
        assert_eq!(
            fetch(None, sock(b.ip, 80)).expect("host -> b"),
            "hello from b"
        );
        let _srv_a = Server::start(&netns_of(&a), sock(a.ip, 81), "a");
        assert_eq!(
            fetch(Some(&netns_of(&b)), sock(a.ip, 81)).expect("b -> a"),
            "hello from a"
        );

        net.detach("a").await.expect("detach a");
        net.detach("a").await.expect("detach is idempotent");
        assert!(!cfg.netns_dir.join("a").exists());
        let c = net
            .attach("c", NetworkMode::Bridge, &[])
            .await
            .expect("attach c");
        assert_eq!(
            c.ip,
            Some(Ipv4Addr::new(10, 89, 0, 2)),
            "released address is reused"
        );
        net.detach("b").await.expect("detach b");
        net.detach("c").await.expect("detach c");
        assert_eq!(std::fs::read_dir(&cfg.netns_dir).expect("dir").count(), 0);
    });
}

#[test]
fn network_published_port_from_another_host_and_locally() {
    require_root!();
    let fx = Fixture::new("pp");
    let client = TestNs::new("cl");
    // The client "host" reaches our host over a veth pair in the 10.77.0.0/24 test range.
    run(Command::new("ip").args([
        "-n",
        &fx.host.name,
        "link",
        "add",
        "up0",
        "type",
        "veth",
        "peer",
        "name",
        "c0",
        "netns",
        &client.name,
    ]));
    run(Command::new("ip").args([
        "-n",
        &fx.host.name,
        "addr",
        "add",
        "10.77.0.1/24",
        "dev",
        "up0",
    ]));
    run(Command::new("ip").args(["-n", &fx.host.name, "link", "set", "up0", "up"]));
    run(Command::new("ip").args([
        "-n",
        &client.name,
        "addr",
        "add",
        "10.77.0.2/24",
        "dev",
        "c0",
    ]));
    run(Command::new("ip").args(["-n", &client.name, "link", "set", "c0", "up"]));
    let (host, client_ns) = (fx.host.path(), client.path());
    fx.run(move |cfg| async move {
        let net = Network::new(cfg.clone()).await.expect("new");
        let web = net
            .attach("web1", NetworkMode::Bridge, &[tcp(8080, 80)])
            .await
            .expect("attach web1");
        let _srv = Server::start(&netns_of(&web), sock(web.ip, 80), "web1");
        let published = SocketAddr::from(([10, 77, 0, 1], 8080));
        assert_eq!(
            fetch(Some(&client_ns), published).expect("client -> host:8080"),
            "hello from web1"
        );
        assert_eq!(
            fetch(None, published).expect("host -> own address:8080"),
            "hello from web1"
        );

        let err = net
            .attach("web2", NetworkMode::Bridge, &[tcp(8080, 80)])
            .await
            .expect_err("conflict");
        assert_eq!(
            err.to_string(),
            "host port 8080/tcp is already published by container web1"
        );
        assert!(!cfg.netns_dir.join("web2").exists());
        let web3 = net
            .attach("web3", NetworkMode::Bridge, &[tcp(8081, 80)])
            .await
            .expect("attach web3");
        assert_eq!(
            web3.ip,
            Some(Ipv4Addr::new(10, 89, 0, 3)),
            "the failed attach took no address"
        );
        let table = nft_table(&host);
        assert!(
            table.contains(r#""comment": "web1""#) && table.contains(r#""comment": "web3""#),
            "{table}"
        );

        net.detach("web1").await.expect("detach");
        let table = nft_table(&host);
        assert!(!table.contains("web1") && table.contains("web3"), "{table}");
        assert!(
            fetch(Some(&client_ns), published).is_err(),
            "port no longer published"
        );
        net.detach("web3").await.expect("detach");
        assert!(!nft_table(&host).contains("\"elem\""));
        // The port is free again.
        let again = net
            .attach("web2", NetworkMode::Bridge, &[tcp(8080, 80)])
            .await
            .expect("port reusable");
        net.detach("web2").await.expect("detach");
        assert_eq!(again.ip, Some(Ipv4Addr::new(10, 89, 0, 2)));
    });
}

#[test]
fn network_none_and_host_modes() {
    require_root!();
    let fx = Fixture::new("nm");
    fx.run(move |cfg| async move {
        let net = Network::new(cfg.clone()).await.expect("new");
        let none = net
            .attach("quiet", NetworkMode::None, &[])
            .await
            .expect("none");
        assert_eq!((none.ip, none.gateway, none.prefix_len), (None, None, 0));
        let links = ns_cmd(&netns_of(&none), &["ip", "-o", "link", "show"]);
        assert_eq!(links.lines().count(), 1, "{links}");
        assert!(links.contains("lo:") && links.contains("UP"), "{links}");
        net.detach("quiet").await.expect("detach");
        assert!(!cfg.netns_dir.join("quiet").exists());

        let host = net
            .attach("hostnet", NetworkMode::Host, &[])
            .await
            .expect("host");
        assert_eq!(
            host,
            Attachment {
                netns: None,
                ip: None,
                gateway: None,
                prefix_len: 0
            }
        );
        net.detach("hostnet")
            .await
            .expect("detach host mode is a no-op");
        let err = net
            .attach("hostnet", NetworkMode::Host, &[tcp(80, 80)])
            .await
            .expect_err("ports");
        assert_eq!(
            err.to_string(),
            "container hostnet uses network mode host and cannot publish ports"
        );
        let err = net
            .attach("../x", NetworkMode::Bridge, &[])
            .await
            .expect_err("bad id");
        assert!(err.to_string().starts_with("invalid container id"));
    });
}

#[test]
fn network_failed_attach_is_undone_and_subnet_can_fill() {
    require_root!();
    let mut fx = Fixture::new("fa");
    fx.cfg.subnet = "10.89.0.0/29".parse().expect("subnet");
    let host = fx.host.path();
    fx.run(move |cfg| async move {
        let net = Network::new(cfg.clone()).await.expect("new");
        // Break nftables behind our back: publishing must fail and undo the netns and address.
        ns_cmd(&host, &["nft", "delete", "table", "ip", "hoist_hoist0"]);
        let err = net
            .attach("broken", NetworkMode::Bridge, &[tcp(8080, 80)])
            .await
            .expect_err("nft fails");
        assert!(
            err.to_string().starts_with("nftables: publish ports"),
            "{err}"
        );
        assert!(!cfg.netns_dir.join("broken").exists());
        let state = std::fs::read_to_string(cfg.state_dir.join("attachments.json")).expect("state");
        assert!(!state.contains("broken"), "{state}");
        drop(net);

        let net = Network::new(cfg.clone())
            .await
            .expect("new restores the table");
        let ids: Vec<String> = (0..5).map(|i| format!("c{i}")).collect();
        for id in &ids {
            net.attach(id, NetworkMode::Bridge, &[])
                .await
                .expect("attach");
        }
        let err = net
            .attach("c5", NetworkMode::Bridge, &[])
            .await
            .expect_err("full");
        assert_eq!(
            err.to_string(),
            "subnet 10.89.0.0/29 is full: no free address for container c5"
        );
        let err = net
            .attach("c0", NetworkMode::Bridge, &[])
            .await
            .expect_err("twice");
        assert_eq!(err.to_string(), "container c0 is already attached");
        for id in &ids {
            net.detach(id).await.expect("detach");
        }
    });
}

#[test]
fn network_retain_after_restart_cleans_leftovers() {
    require_root!();
    let fx = Fixture::new("rt");
    let host = fx.host.path();
    fx.run(move |cfg| async move {
        let net = Network::new(cfg.clone()).await.expect("new");
        net.attach("gone", NetworkMode::Bridge, &[tcp(9000, 80)])
            .await
            .expect("attach gone");
        let kept = net
            .attach("kept", NetworkMode::Bridge, &[tcp(9001, 80)])
            .await
            .expect("attach kept");
        drop(net); // "agent restart"
        std::fs::write(cfg.netns_dir.join("stray"), b"").expect("stray file");

        let net = Network::new(cfg.clone()).await.expect("new after restart");
        net.retain(&["kept".to_string()]).await.expect("retain");
        assert!(!cfg.netns_dir.join("gone").exists());
        assert!(!cfg.netns_dir.join("stray").exists());
        assert!(cfg.netns_dir.join("kept").exists());
        let table = nft_table(&host);
        assert!(!table.contains("gone") && table.contains("kept"), "{table}");
        // The survivor still works and its address is not handed out again.
        let _srv = Server::start(&netns_of(&kept), sock(kept.ip, 80), "kept");
        assert_eq!(
            fetch(None, SocketAddr::from(([10, 89, 0, 1], 9001))).expect("published"),
            "hello from kept"
        );
        let next = net
            .attach("new", NetworkMode::Bridge, &[])
            .await
            .expect("attach");
        assert_eq!(
            next.ip,
            Some(Ipv4Addr::new(10, 89, 0, 2)),
            "gone's address was released, kept's is not reused"
        );
        net.detach("new").await.expect("detach");
        net.detach("kept")
            .await
            .expect("detach from persisted state");
        assert!(!nft_table(&host).contains("kept"));
    });
}

#[test]
fn network_attach_detach_timing() {
    require_root!();
    let fx = Fixture::new("tm");
    fx.run(move |cfg| async move {
        let net = Network::new(cfg).await.expect("new");
        for (label, ports) in [("bridge", vec![]), ("bridge+1 port", vec![tcp(7000, 80)])] {
            let (mut attach, mut detach) = (Vec::new(), Vec::new());
            for i in 0..15 {
                let id = format!("t{i}");
                let t = Instant::now();
                net.attach(&id, NetworkMode::Bridge, &ports)
                    .await
                    .expect("attach");
                attach.push(t.elapsed());
                let t = Instant::now();
                net.detach(&id).await.expect("detach");
                detach.push(t.elapsed());
            }
            attach.sort();
            detach.sort();
            eprintln!(
                "{label}: attach median {:?} min {:?}; detach median {:?} min {:?}",
                attach[attach.len() / 2],
                attach[0],
                detach[detach.len() / 2],
                detach[0]
            );
        }
    });
}

/// Where the time of one bridge attach/detach goes, phase by phase (printed, not asserted).
#[test]
fn network_attach_phase_timing() {
    require_root!();
    let fx = Fixture::new("ph");
    fx.run(move |cfg| async move {
        let net = Network::new(cfg.clone()).await.expect("new");
        let mut rows: Vec<[Duration; 7]> = Vec::new();
        for i in 0..15 {
            let (cold_path, warm_path) = (cfg.netns_dir.join(format!("c{i}")), cfg.netns_dir.join(format!("w{i}")));
            let t0 = Instant::now();
            let cold = net.pool.build(Some(&cold_path)).await.expect("cold build");
            let t1 = Instant::now();
            let warm = net.pool.build(None).await.expect("warm build");
            let t2 = Instant::now();
            netns::adopt(&warm.fd, &warm_path).expect("adopt");
            let t3 = Instant::now();
            let pool::Ready { mut conn, handle, eth0, .. } = warm;
            let configure = veth::configure_container(&handle, eth0, Ipv4Addr::new(10, 89, 0, 200), 24, Ipv4Addr::new(10, 89, 0, 1));
            tokio::select! { r = configure => r.expect("configure"), () = &mut conn => panic!("closed") }
            let t4 = Instant::now();
            net.persist().await.expect("persist");
            let t5 = Instant::now();
            netns::remove(&warm_path).expect("remove");
            let t6 = Instant::now();
            netns::remove(&cold_path).expect("remove");
            drop(cold);
            rows.push([t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5, (t4 - t2) + (t6 - t5)]);
        }
        let names = [
            "cold netns+veth",
            "warm build (bg)",
            "adopt (mount)",
            "configure eth0",
            "persist (fsync)",
            "netns remove",
            "warm kernel path",
        ];
        for (col, name) in names.iter().enumerate() {
            let mut v: Vec<Duration> = rows.iter().map(|r| r[col]).collect();
            v.sort();
            eprintln!("{name:>18}: median {:?} min {:?}", v[v.len() / 2], v[0]);
        }
    });
}

/// `route_localnet` on the bridge must not open the host's 127.0.0.1 services to containers
/// (CVE-2020-8558): a container routing 127.0.0.1 to the gateway gets nowhere, and the same
/// attack does work once our input rule is gone (so the test proves something).
#[test]
fn network_containers_cannot_reach_host_localhost() {
    require_root!();
    let fx = Fixture::new("lo");
    let host = fx.host.path();
    fx.run(move |cfg| async move {
        let net = Network::new(cfg).await.expect("new");
        let evil = net
            .attach("evil", NetworkMode::Bridge, &[])
            .await
            .expect("attach");
        let ns = netns_of(&evil);
        let _local_only = Server::start(
            &host,
            SocketAddr::from(([127, 0, 0, 1], 9999)),
            "host-local",
        );
        // Inside the container: send 127.0.0.1 to the gateway instead of the container's own lo.
        ns_cmd(
            &ns,
            &[
                "sh",
                "-c",
                "echo 1 > /proc/sys/net/ipv4/conf/eth0/route_localnet",
            ],
        );
        ns_cmd(
            &ns,
            &[
                "ip",
                "route",
                "add",
                "127.0.0.1/32",
                "via",
                "10.89.0.1",
                "dev",
                "eth0",
                "table",
                "100",
            ],
        );
        ns_cmd(
            &ns,
            &[
                "ip",
                "rule",
                "add",
                "pref",
                "10",
                "to",
                "127.0.0.1",
                "lookup",
                "100",
            ],
        );
        ns_cmd(&ns, &["ip", "rule", "del", "pref", "0"]);
        ns_cmd(&ns, &["ip", "rule", "add", "pref", "20", "lookup", "local"]);
        let target = SocketAddr::from(([127, 0, 0, 1], 9999));
        assert!(
            fetch(Some(&ns), target).is_err(),
            "container reached the host's 127.0.0.1"
        );
        ns_cmd(
            &host,
            &["nft", "flush", "chain", "ip", "hoist_hoist0", "input"],
        );
        assert_eq!(
            fetch(Some(&ns), target).expect("attack works without the rule"),
            "hello from host-local"
        );
        net.detach("evil").await.expect("detach");
    });
}
