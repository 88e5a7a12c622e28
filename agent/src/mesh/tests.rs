//! The mesh on a real kernel (root only; skipped otherwise): two "hosts" as network namespaces
//! on an underlay switch (a third namespace with a bridge), each with a bridge, backends and a
//! client container, plus an external client on the underlay with no route to the cluster.
//! Plain routing of the cluster CIDR over the underlay stands in for WireGuard, which does not
//! check sources; so the test also checks that ingress traffic went through the vxlan device.
//! Every namespace and process is removed by a drop guard, even on failure.

use super::*;
use hoist_proto::agent::Protocol;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn sh(cmd: &str) -> String {
    let out = Command::new("sh")
        .args(["-c", cmd])
        .output()
        .expect("run sh");
    assert!(
        out.status.success(),
        "`{cmd}` failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Namespaces and processes of one test; removed on drop.
struct Lab {
    prefix: String,
    namespaces: Vec<String>,
    children: Vec<Child>,
    dir: tempfile::TempDir,
}

impl Lab {
    fn new() -> Lab {
        static N: AtomicUsize = AtomicUsize::new(0);
        let prefix = format!(
            "hm{}x{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        Lab {
            prefix,
            namespaces: Vec::new(),
            children: Vec::new(),
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn ns(&mut self, role: &str) -> String {
        let name = format!("{}{role}", self.prefix);
        sh(&format!(
            "ip netns add {name} && ip -n {name} link set lo up"
        ));
        self.namespaces.push(name.clone());
        name
    }

    /// A veth from `a` (named `a_if`) to `b` (named `b_if`).
    fn veth(&self, a: &str, a_if: &str, b: &str, b_if: &str) {
        sh(&format!(
            "ip -n {a} link add {a_if} type veth peer name {b_if} netns {b} && \
             ip -n {a} link set {a_if} up && ip -n {b} link set {b_if} up"
        ));
    }

    /// A container namespace on `host`'s bridge with `addr`/24 and its default route.
    fn container(&mut self, host: &str, role: &str, addr: &str, gw: &str) -> String {
        let c = self.ns(role);
        self.veth(host, &format!("v{role}"), &c, "eth0");
        sh(&format!(
            "ip -n {host} link set v{role} master hoist0 && \
             ip -n {c} addr add {addr}/24 dev eth0 && ip -n {c} route add default via {gw}"
        ));
        c
    }

    /// A busybox httpd in `ns` whose `/cgi-bin/id` prints `name REMOTE_ADDR`.
    fn httpd(&mut self, ns: &str, name: &str) {
        self.httpd_on(ns, name, 80);
    }

    /// An HTTP server in `ns` on `port` whose `/cgi-bin/id` answers `NAME CLIENT_ADDRESS`.
    fn httpd_on(&mut self, ns: &str, name: &str, port: u16) {
        let root = self.dir.path().join(name);
        std::fs::create_dir_all(root.join("cgi-bin")).expect("mkdir");
        let script = root.join("cgi-bin/id");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\necho 'Content-Type: text/plain'\necho\necho \"{name} $REMOTE_ADDR\"\n"
            ),
        )
        .expect("write cgi");
        sh(&format!("chmod 755 {}", script.display()));
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                ns,
                "busybox",
                "httpd",
                "-f",
                "-p",
                &format!("0.0.0.0:{port}"),
                "-h",
            ])
            .arg(&root)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start httpd");
        self.children.push(child);
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for n in &self.namespaces {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
    }
}

/// `count` requests from `ns` to `url`, one connection each; the bodies, failures as "ERR".
fn fetch(ns: &str, url: &str, count: usize) -> Vec<String> {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "sh", "-c"])
        .arg(format!(
            "for i in $(seq {count}); do timeout 3 busybox wget -q -O - {url} 2>/dev/null || echo ERR; done"
        ))
        .output()
        .expect("run wget");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

fn vx_packets(ns: &str, dir: &str) -> u64 {
    let out = sh(&format!("ip -n {ns} -s -j link show dev hoist-vx0"));
    let v: serde_json::Value = serde_json::from_str(&out).expect("ip -j");
    v[0]["stats64"][dir]["packets"].as_u64().expect("packets")
}

fn cfg(n: u8) -> MeshConfig {
    MeshConfig {
        table: "hoist_mesh".into(),
        vx_iface: "hoist-vx0".into(),
        bridge: "hoist0".into(),
        cluster_cidr: "10.230.0.0/16".parse().unwrap(),
        subnet: format!("10.230.{n}.0/24").parse().unwrap(),
        mtu: 1420,
    }
}

fn port(target: u16, published: Option<u16>) -> MeshPort {
    MeshPort {
        protocol: Protocol::Tcp,
        target,
        published,
    }
}

/// The cluster as host `n` (1 or 2) sees it; `web_eps` are web's endpoints.
fn view(n: u8, web_eps: &[&str]) -> MeshView {
    let ep = |a: &str| MeshEndpoint {
        address: a.parse().unwrap(),
        local: a.starts_with(&format!("10.230.{n}.")),
    };
    MeshView {
        services: vec![
            MeshService {
                name: "web".into(),
                vip: Some("10.201.0.1".parse().unwrap()),
                ports: vec![
                    port(80, Some(8080)),
                    MeshPort {
                        protocol: Protocol::Udp,
                        target: 53,
                        published: None,
                    },
                ],
                endpoints: web_eps.iter().map(|a| ep(a)).collect(),
            },
            MeshService {
                name: "api-1".into(),
                vip: Some("10.201.0.2".parse().unwrap()),
                ports: vec![port(80, Some(8081))],
                endpoints: vec![ep("10.230.2.2")],
            },
            MeshService {
                name: "none".into(),
                vip: Some("10.201.0.3".parse().unwrap()),
                ports: vec![port(80, Some(8082))],
                endpoints: vec![],
            },
        ],
        peers: vec![
            MeshPeer {
                subnet: "10.230.1.0/24".parse().unwrap(),
                underlay: "10.77.0.1".parse().unwrap(),
            },
            MeshPeer {
                subnet: "10.230.2.0/24".parse().unwrap(),
                underlay: "10.77.0.2".parse().unwrap(),
            },
        ],
    }
}

#[test]
fn vips_ingress_and_updates_on_a_real_kernel() {
    if !is_root() {
        eprintln!("skipped: the mesh test needs root (network namespaces, nftables)");
        return;
    }
    let started = std::time::Instant::now();
    let mut lab = Lab::new();
    let sw = lab.ns("sw");
    sh(&format!(
        "ip -n {sw} link add sw0 type bridge && ip -n {sw} link set sw0 up"
    ));
    let (h1, h2, cl) = (lab.ns("h1"), lab.ns("h2"), lab.ns("cl"));
    for (i, (h, addr)) in [(&h1, "10.77.0.1"), (&h2, "10.77.0.2"), (&cl, "10.77.0.100")]
        .into_iter()
        .enumerate()
    {
        lab.veth(&sw, &format!("p{i}"), h, "u0");
        sh(&format!(
            "ip -n {sw} link set p{i} master sw0 && ip -n {h} addr add {addr}/24 dev u0"
        ));
    }
    for (n, h) in [(1u8, &h1), (2u8, &h2)] {
        let other = if n == 1 { "10.77.0.2" } else { "10.77.0.1" };
        sh(&format!(
            "ip -n {h} link add hoist0 type bridge && ip -n {h} addr add 10.230.{n}.1/24 dev hoist0 && \
             ip -n {h} link set hoist0 up && ip -n {h} route add 10.230.0.0/16 via {other} && \
             ip netns exec {h} sh -c 'echo 1 > /proc/sys/net/ipv4/ip_forward && \
               echo 1 > /proc/sys/net/ipv4/conf/all/rp_filter'"
        ));
    }
    let c1 = lab.container(&h1, "c1", "10.230.1.2", "10.230.1.1");
    let b1 = lab.container(&h1, "b1", "10.230.1.3", "10.230.1.1");
    let b2 = lab.container(&h2, "b2", "10.230.2.2", "10.230.2.1");
    lab.httpd(&b1, "b1");
    lab.httpd(&b2, "b2");
    // A port api-1 does not declare: its VIP forwards it all the same (as Swarm's does).
    lab.httpd_on(&b2, "b2", 8000);

    let mesh1 = Mesh::new(
        cfg(1),
        Arc::new(HostMesh::in_netns(format!("/run/netns/{h1}"))),
    );
    let mesh2 = Mesh::new(
        cfg(2),
        Arc::new(HostMesh::in_netns(format!("/run/netns/{h2}"))),
    );
    let both = ["10.230.1.3", "10.230.2.2"];
    assert!(mesh1.apply(&view(1, &both)).expect("apply h1").full_resync);
    assert!(mesh2.apply(&view(2, &both)).expect("apply h2").full_resync);
    // Idempotent: nothing sent again.
    assert!(!mesh1.apply(&view(1, &both)).expect("reapply h1").changed);

    // The servers are up once b2 answers directly.
    let mut last = Vec::new();
    for _ in 0..50 {
        last = fetch(&c1, "http://10.230.2.2/cgi-bin/id", 1);
        if last == ["b2 10.230.1.2"] {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    if last != ["b2 10.230.1.2"] {
        let diag = Command::new("sh").arg("-c").arg(format!(
            "ip netns exec {c1} busybox wget -O - http://10.230.2.2/cgi-bin/id; ip netns exec {c1} ping -c1 -W1 10.230.2.2; \
             ip netns exec {b2} busybox netstat -ltn; ip -n {h1} route; ip -n {h1} rule; ip -n {h2} addr"
        )).output().expect("diag");
        panic!(
            "backend b2 never answered: {last:?}\n{}{}",
            String::from_utf8_lossy(&diag.stdout),
            String::from_utf8_lossy(&diag.stderr)
        );
    }

    // (a) 60 connections from a container to the VIP reach both backends.
    let got = fetch(&c1, "http://10.201.0.1/cgi-bin/id", 60);
    assert_eq!(got.len(), 60, "{got:?}");
    let to_b1 = got.iter().filter(|l| l.starts_with("b1 ")).count();
    let to_b2 = got.iter().filter(|l| *l == "b2 10.230.1.2").count();
    assert_eq!(to_b1 + to_b2, 60, "{got:?}");
    assert!(to_b1 > 0 && to_b2 > 0, "b1 {to_b1}, b2 {to_b2}");

    // (a') A port no service declares, on api-1's VIP: forwarded to its backend unchanged.
    let got = fetch(&c1, "http://10.201.0.2:8000/cgi-bin/id", 3);
    assert_eq!(got, vec!["b2 10.230.1.2"; 3], "any port of a VIP");
    // A VIP without a ready backend refuses at once, on any port.
    let t = std::time::Instant::now();
    assert_eq!(fetch(&c1, "http://10.201.0.3:9999/", 1), ["ERR"]);
    assert!(
        t.elapsed() < std::time::Duration::from_secs(2),
        "{:?}",
        t.elapsed()
    );

    // (b) An external client on host 1's published port, the only backend on host 2: the backend
    // sees the client's address, and the packets went through vxlan both ways.
    let (tx1, rx1) = (vx_packets(&h1, "tx"), vx_packets(&h1, "rx"));
    let got = fetch(&cl, "http://10.77.0.1:8081/cgi-bin/id", 5);
    assert_eq!(got, vec!["b2 10.77.0.100"; 5]);
    assert!(
        vx_packets(&h1, "tx") > tx1,
        "ingress did not go out through hoist-vx0"
    );
    assert!(
        vx_packets(&h1, "rx") > rx1,
        "replies did not come back through hoist-vx0"
    );
    // The host itself on its own published port: marked like an external client, through vxlan.
    assert_eq!(
        fetch(&h1, "http://10.77.0.1:8081/cgi-bin/id", 3),
        vec!["b2 10.77.0.1"; 3]
    );
    // The ingress prefers local endpoints: on host 2, web's published port goes to b2 only.
    assert_eq!(
        fetch(&cl, "http://10.77.0.2:8080/cgi-bin/id", 5),
        vec!["b2 10.77.0.100"; 5]
    );
    // A container reaching another node's published port is balanced here and keeps its address.
    assert_eq!(
        fetch(&c1, "http://10.77.0.2:8081/cgi-bin/id", 3),
        vec!["b2 10.230.1.2"; 3]
    );

    // No endpoint: rejected at once (not a timeout).
    let t = std::time::Instant::now();
    assert_eq!(fetch(&c1, "http://10.201.0.3/", 1), ["ERR"]);
    assert_eq!(fetch(&cl, "http://10.77.0.1:8082/", 1), ["ERR"]);
    assert!(
        t.elapsed() < std::time::Duration::from_secs(2),
        "{:?}",
        t.elapsed()
    );

    // (c) b1 leaves: web's chains refilled (VIP tcp, udp and any port, ingress), no resync; new connections go to b2 only.
    let stats = mesh1
        .apply(&view(1, &["10.230.2.2"]))
        .expect("apply without b1");
    assert!(!stats.full_resync);
    assert_eq!(
        (
            stats.chains_changed,
            stats.chains_added,
            stats.chains_removed
        ),
        (4, 0, 0)
    );
    let got = fetch(&c1, "http://10.201.0.1/cgi-bin/id", 20);
    assert_eq!(got, vec!["b2 10.230.1.2"; 20]);
    let status = mesh1.status();
    assert_eq!(
        (status.services, status.endpoints, status.last_error),
        (3, 1, None)
    );

    // (d) A real nft failure: a transaction the kernel refuses changes nothing and is reported.
    let bad = Mesh::new(
        MeshConfig {
            table: "bad name".into(),
            ..cfg(1)
        },
        Arc::new(HostMesh::in_netns(format!("/run/netns/{h1}"))),
    );
    let err = bad
        .apply(&view(1, &both))
        .expect_err("an invalid table name");
    assert!(err.to_string().starts_with("nft: "), "{err}");
    assert!(bad.status().last_error.is_some());
    assert_eq!(
        fetch(&c1, "http://10.201.0.1/cgi-bin/id", 3),
        vec!["b2 10.230.1.2"; 3]
    );

    // Teardown removes what the mesh made.
    mesh1.teardown().expect("teardown");
    let tables = sh(&format!("ip netns exec {h1} nft list tables"));
    assert!(!tables.contains("hoist_mesh"), "{tables}");
    let rules = sh(&format!("ip -n {h1} rule show"));
    assert!(
        !rules.contains("1000:") && !rules.contains("1001:"),
        "{rules}"
    );
    assert!(Command::new("ip")
        .args(["-n", &h1, "link", "show", "hoist-vx0"])
        .stderr(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .map(|s| !s.success())
        .unwrap_or(false));
    eprintln!("mesh test took {:?}", started.elapsed());
}
