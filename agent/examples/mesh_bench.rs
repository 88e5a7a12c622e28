//! The routing mesh on a real kernel, for `bench/mesh-maps.sh` (which creates the network
//! namespaces and removes them). Not a product binary. Two subcommands, each printing one JSON
//! object on stdout (progress on stderr):
//!
//! `update INC_NS FULL_NS SERVICES ENDPOINTS CHANGES RESYNCS`: SERVICES services with ENDPOINTS
//! simulated endpoints each (10.230.0.0/16, namespace-only), one VIP port each. Then CHANGES
//! endpoint changes (one endpoint added to, or removed from, a different service each time),
//! each applied twice, interleaved: by Hoist's `Mesh::apply` in `INC_NS` (incremental), and as
//! a full rewrite of the same table in `FULL_NS` (`script::full` of the same model, one
//! `nft -f -` transaction: what kube-proxy's iptables mode and Docker do on every sync). Each
//! sample is the time from the call until the transaction is committed. Then RESYNCS applies
//! of a fresh `Mesh` in `INC_NS` (Hoist's own full-resync path: vxlan device, rules, routes, the
//! whole table). Finally `nft list chain` of the changed services in both namespaces checks
//! that the last changes are there.
//!
//! `connect CONNS BATCH CASE...` with CASE = `hoist|linear:SERVICES:HOST_NS:CLIENT_NS:SERVER_NS`:
//! each HOST_NS holds a bridge `hoist0` (10.230.1.1/24) with CLIENT_NS (10.230.1.2) and
//! SERVER_NS (10.230.1.3) on it. `hoist` programs SERVICES services with `Mesh::apply`;
//! `linear` one `ip daddr VIP tcp dport 80 dnat to EP:80` rule per service in one chain (the
//! iptables-mode design), with the probed service last. The probed service is the last one;
//! its only endpoint is a TCP accept loop in SERVER_NS. Then CONNS new connections per case to
//! the VIP from CLIENT_NS, round robin over the cases in batches of BATCH; each sample is the
//! `connect()` duration (SYN → SYN-ACK through the DNAT), closed with a reset (no TIME_WAIT).

use hoist_agent::mesh::{
    plan, script, HostMesh, Mesh, MeshConfig, MeshEndpoint, MeshKernel, MeshPeer, MeshPort,
    MeshService, MeshView,
};
use hoist_proto::agent::Protocol;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("update") if args.len() == 7 => update(
            &args[1],
            &args[2],
            args[3].parse()?,
            args[4].parse()?,
            args[5].parse()?,
            args[6].parse()?,
        ),
        Some("connect") if args.len() >= 4 => {
            connect(args[1].parse()?, args[2].parse()?, &args[3..])
        }
        _ => anyhow::bail!(
            "usage: mesh_bench update INC_NS FULL_NS SERVICES ENDPOINTS CHANGES RESYNCS\n       \
             mesh_bench connect CONNS BATCH hoist|linear:SERVICES:HOST_NS:CLIENT_NS:SERVER_NS..."
        ),
    }
}

fn cfg() -> MeshConfig {
    MeshConfig {
        table: "hoist_mesh".into(),
        vx_iface: "hoist-vx0".into(),
        bridge: "hoist0".into(),
        cluster_cidr: "10.230.0.0/16".parse().unwrap(),
        subnet: "10.230.1.0/24".parse().unwrap(),
        mtu: 1420,
    }
}

fn netns(name: &str) -> String {
    format!("/run/netns/{name}")
}

/// Service `i`'s VIP: 10.231.0.1 onwards (outside the cluster CIDR).
fn vip(i: usize) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 231, 0, 1)) + i as u32)
}

/// The `n`-th simulated endpoint address: 10.230.2.0 onwards (host 1's subnet is 10.230.1.0/24).
fn sim_addr(n: usize) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 230, 2, 0)) + n as u32)
}

fn service(i: usize, endpoints: &[Ipv4Addr]) -> MeshService {
    MeshService {
        name: format!("s{i}"),
        vip: Some(vip(i)),
        ports: vec![MeshPort {
            protocol: Protocol::Tcp,
            target: 80,
            published: None,
        }],
        endpoints: endpoints
            .iter()
            .map(|&address| MeshEndpoint {
                address,
                local: cfg().subnet.contains(address),
            })
            .collect(),
    }
}

/// Three other nodes, so that the routes side is not empty.
fn peers() -> Vec<MeshPeer> {
    (2..5u8)
        .map(|k| MeshPeer {
            subnet: format!("10.230.{}.0/24", 200 + k).parse().unwrap(),
            underlay: Ipv4Addr::new(10, 250, 0, k),
        })
        .collect()
}

struct Summary {
    p50: f64,
    p99: f64,
    max: f64,
    mean: f64,
    n: usize,
}

/// Percentiles in ms of samples in µs (nearest rank).
fn summary(samples: &[u64]) -> Summary {
    let mut v = samples.to_vec();
    v.sort_unstable();
    let rank = |p: f64| v[((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
    Summary {
        p50: rank(0.50) as f64 / 1000.0,
        p99: rank(0.99) as f64 / 1000.0,
        max: *v.last().unwrap() as f64 / 1000.0,
        mean: v.iter().sum::<u64>() as f64 / v.len() as f64 / 1000.0,
        n: v.len(),
    }
}

fn summary_json(s: &Summary) -> serde_json::Value {
    let r = |x: f64| (x * 1000.0).round() / 1000.0;
    serde_json::json!({"n": s.n, "p50_ms": r(s.p50), "p99_ms": r(s.p99), "max_ms": r(s.max), "mean_ms": r(s.mean)})
}

fn sh_out(cmd: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(cmd[0]).args(&cmd[1..]).output()?;
    anyhow::ensure!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn update(
    inc_ns: &str,
    full_ns: &str,
    n_services: usize,
    per_service: usize,
    changes: usize,
    resyncs: usize,
) -> anyhow::Result<()> {
    let cfg = cfg();
    let mut eps: Vec<Vec<Ipv4Addr>> = (0..n_services)
        .map(|i| {
            (0..per_service)
                .map(|j| sim_addr(i * per_service + j))
                .collect()
        })
        .collect();
    let mut next_addr = n_services * per_service;
    let view_of = |eps: &Vec<Vec<Ipv4Addr>>| MeshView {
        services: eps.iter().enumerate().map(|(i, e)| service(i, e)).collect(),
        peers: peers(),
    };
    let mesh = Mesh::new(cfg.clone(), Arc::new(HostMesh::in_netns(netns(inc_ns))));
    let full_kernel = HostMesh::in_netns(netns(full_ns));
    // The peer's full rewrite: the same model, the whole table in one transaction.
    let full_rewrite = |view: &MeshView| -> anyhow::Result<usize> {
        let text = script::full(&cfg, &plan::build(&cfg, view));
        full_kernel
            .nft(&text)
            .map_err(|e| anyhow::anyhow!("nft (full): {e}"))?;
        Ok(text.len())
    };

    let view = view_of(&eps);
    let t = Instant::now();
    let first = mesh.apply(&view)?;
    let first_ms = t.elapsed().as_secs_f64() * 1000.0;
    let t = Instant::now();
    let script_bytes = full_rewrite(&view)?;
    let first_full_ms = t.elapsed().as_secs_f64() * 1000.0;
    eprintln!(
        "update: loaded {n_services} services x {per_service} endpoints: Mesh::apply (full) {first_ms:.0} ms, full script {first_full_ms:.0} ms ({script_bytes} bytes)"
    );
    anyhow::ensure!(first.full_resync, "the first apply should be a full resync");

    let mut inc = Vec::with_capacity(changes);
    let mut full = Vec::with_capacity(changes);
    // The pure part of an incremental apply (model of the whole view, diff, script), measured
    // apart from the timed calls: the rest of `inc` is the nft process and the transaction.
    let mut planning = Vec::with_capacity(changes);
    let mut model = plan::build(&cfg, &view);
    // What the last changes should have left: (service, address, present).
    let mut expect: Vec<(usize, Ipv4Addr, bool)> = Vec::new();
    for k in 0..changes {
        // A different service each time (stride 37 over 1000 services: all distinct for
        // 1000 changes); adds and removes alternate.
        let s = (k * 37 + 1) % n_services;
        let (addr, present) = if k % 2 == 0 {
            let a = sim_addr(next_addr);
            next_addr += 1;
            eps[s].push(a);
            (a, true)
        } else {
            (eps[s].remove(0), false)
        };
        expect.push((s, addr, present));
        let view = view_of(&eps);
        let t = Instant::now();
        let next = plan::build(&cfg, &view);
        let text = script::incremental(&cfg, &plan::diff(&model, &next));
        planning.push(t.elapsed().as_micros() as u64);
        anyhow::ensure!(!text.is_empty());
        model = next;
        // Alternate which design goes first, so that neither always runs right after the other.
        let mut run_inc = || -> anyhow::Result<()> {
            let t = Instant::now();
            let st = mesh.apply(&view)?;
            inc.push(t.elapsed().as_micros() as u64);
            anyhow::ensure!(
                !st.full_resync && st.chains_changed == 1 && st.chains_added == 0,
                "unexpected apply: {st:?}"
            );
            Ok(())
        };
        let mut run_full = || -> anyhow::Result<()> {
            let t = Instant::now();
            full_rewrite(&view)?;
            full.push(t.elapsed().as_micros() as u64);
            Ok(())
        };
        if k % 2 == 0 {
            run_inc()?;
            run_full()?;
        } else {
            run_full()?;
            run_inc()?;
        }
        if (k + 1) % 50 == 0 {
            eprintln!("update: {} changes", k + 1);
        }
    }

    // Hoist's own full-resync path (first apply, or after a failure): a fresh Mesh.
    let mut resync = Vec::new();
    let view = view_of(&eps);
    for _ in 0..resyncs {
        let fresh = Mesh::new(cfg.clone(), Arc::new(HostMesh::in_netns(netns(inc_ns))));
        let t = Instant::now();
        let st = fresh.apply(&view)?;
        resync.push(t.elapsed().as_micros() as u64);
        anyhow::ensure!(st.full_resync);
    }
    // The last full resync rewrote INC_NS: make one more incremental change after it, so that the
    // check below sees the incremental path's work, with a mesh that knows the table.
    let mesh = Mesh::new(cfg.clone(), Arc::new(HostMesh::in_netns(netns(inc_ns))));
    mesh.apply(&view)?;
    let s = (changes * 37 + 1) % n_services;
    let a = sim_addr(next_addr);
    eps[s].push(a);
    expect.push((s, a, true));
    let view = view_of(&eps);
    let st = mesh.apply(&view)?;
    anyhow::ensure!(!st.full_resync && st.chains_changed == 1);
    full_rewrite(&view)?;

    // Check the last few changes in both namespaces with `nft list chain`.
    let mut checked = Vec::new();
    for &(s, addr, present) in expect.iter().rev().take(6) {
        let chain = format!("svc_{}_tcp_80", plan::safe_name(&format!("s{s}")));
        for ns in [inc_ns, full_ns] {
            let text = sh_out(&[
                "ip",
                "netns",
                "exec",
                ns,
                "nft",
                "list",
                "chain",
                "ip",
                "hoist_mesh",
                &chain,
            ])?;
            // One `dnat to ADDR:80` rule per endpoint.
            let needle = format!("{addr}:80");
            let found = text.contains(&needle);
            let dests = text.matches(":80").count();
            anyhow::ensure!(
                found == present && dests == eps[s].len(),
                "{ns} {chain}: expected {addr} {} and {} endpoints:\n{text}",
                if present { "present" } else { "absent" },
                eps[s].len()
            );
            checked.push(format!(
                "{ns}: {chain} {} {addr} ({dests} endpoints)",
                if present { "has" } else { "lacks" }
            ));
        }
    }
    let sample_chain = format!("svc_{}_tcp_80", plan::safe_name(&format!("s{s}")));
    let listing = sh_out(&[
        "ip",
        "netns",
        "exec",
        inc_ns,
        "nft",
        "list",
        "chain",
        "ip",
        "hoist_mesh",
        &sample_chain,
    ])?;

    let (si, sf) = (summary(&inc), summary(&full));
    let out = serde_json::json!({
        "bench": "update",
        "services": n_services,
        "endpoints": n_services * per_service,
        "changes": changes,
        "initial_apply_ms": first_ms.round(),
        "full_script_bytes": script_bytes,
        "hoist_incremental": summary_json(&si),
        "full_rewrite": summary_json(&sf),
        "hoist_planning_only": summary_json(&summary(&planning)),
        "hoist_fresh_mesh_resync": if resync.is_empty() { serde_json::Value::Null } else { summary_json(&summary(&resync)) },
        "ratio_p50": (sf.p50 / si.p50 * 10.0).round() / 10.0,
        "ratio_p99": (sf.p99 / si.p99 * 10.0).round() / 10.0,
        "verified": checked,
        "sample_listing": listing,
    });
    println!("{out}");
    Ok(())
}

/// Runs `f` on a new thread inside the network namespace `name`.
fn in_ns<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let path = netns(name);
    std::thread::spawn(move || {
        let ns = std::fs::File::open(&path).expect("open netns");
        nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        f()
    })
}

/// Closes with a reset: no TIME_WAIT, so the client's ports and the host's conntrack do not fill.
fn close_hard(s: TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket and a correctly sized option value.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

struct Case {
    design: String,
    services: usize,
    host: String,
    client: String,
    server: String,
    load_ms: f64,
    samples: Vec<u64>,
}

const SERVER: Ipv4Addr = Ipv4Addr::new(10, 230, 1, 3);

/// The linear peer: one dnat rule per service in one chain, the probed (last) service last;
/// the same hairpin masquerade as the mesh.
fn linear_script(n: usize) -> String {
    use std::fmt::Write;
    let mut s = String::from(
        "add table ip peer_linear\ndelete table ip peer_linear\ntable ip peer_linear {\n\
         \tchain prerouting {\n\t\ttype nat hook prerouting priority dstnat - 5; policy accept;\n",
    );
    for i in 0..n {
        let ep = if i == n - 1 { SERVER } else { sim_addr(i) };
        let _ = writeln!(s, "\t\tip daddr {} tcp dport 80 dnat to {ep}:80", vip(i));
    }
    s.push_str(
        "\t}\n\tchain postrouting {\n\t\ttype nat hook postrouting priority srcnat - 5; policy accept;\n\
         \t\tiifname \"hoist0\" oifname \"hoist0\" ct status dnat masquerade\n\t}\n}\n",
    );
    s
}

fn connect(conns: usize, batch: usize, specs: &[String]) -> anyhow::Result<()> {
    let mut cases = Vec::new();
    let mut meshes = Vec::new();
    for spec in specs {
        let p: Vec<&str> = spec.split(':').collect();
        anyhow::ensure!(p.len() == 5, "bad case {spec}");
        let n: usize = p[1].parse()?;
        let t = Instant::now();
        match p[0] {
            "hoist" => {
                let view = MeshView {
                    services: (0..n)
                        .map(|i| {
                            let ep = if i == n - 1 { SERVER } else { sim_addr(i) };
                            service(i, &[ep])
                        })
                        .collect(),
                    peers: peers(),
                };
                let mesh = Mesh::new(cfg(), Arc::new(HostMesh::in_netns(netns(p[2]))));
                mesh.apply(&view)?;
                meshes.push(mesh);
            }
            "linear" => HostMesh::in_netns(netns(p[2]))
                .nft(&linear_script(n))
                .map_err(|e| anyhow::anyhow!("nft (linear): {e}"))?,
            other => anyhow::bail!("unknown design {other}"),
        }
        let load_ms = t.elapsed().as_secs_f64() * 1000.0;
        eprintln!(
            "connect: {} with {n} services loaded in {load_ms:.0} ms",
            p[0]
        );
        cases.push(Case {
            design: p[0].into(),
            services: n,
            host: p[2].into(),
            client: p[3].into(),
            server: p[4].into(),
            load_ms,
            samples: Vec::with_capacity(conns),
        });
    }
    // The backends: accept and drop, forever (the process exits at the end).
    for c in &cases {
        let ready = in_ns(&c.server, || {
            let l = TcpListener::bind((SERVER, 80)).expect("bind server");
            std::thread::spawn(move || {
                for s in l.incoming() {
                    drop(s);
                }
            });
        });
        ready.join().expect("server thread");
    }
    // One client thread per case, each inside its client namespace, fed batch by batch so that
    // the cases take turns (round robin) and share the machine's drift.
    let mut workers = Vec::new();
    for c in &cases {
        let (tx, rx) = std::sync::mpsc::channel::<usize>();
        let (dtx, drx) = std::sync::mpsc::channel::<Result<Vec<u64>, String>>();
        let target = SocketAddr::from((vip(c.services - 1), 80));
        in_ns(&c.client, move || {
            for count in rx {
                let mut v = Vec::with_capacity(count);
                let mut err = None;
                for _ in 0..count {
                    let t = Instant::now();
                    match TcpStream::connect(target) {
                        Ok(s) => {
                            v.push(t.elapsed().as_nanos() as u64 / 1000);
                            close_hard(s);
                        }
                        Err(e) => {
                            err = Some(format!("connect {target}: {e}"));
                            break;
                        }
                    }
                }
                let _ = dtx.send(err.map_or(Ok(v), Err));
            }
        });
        workers.push((tx, drx));
    }
    // Warm up (and check the path works) with a timeout, then measure.
    for c in &cases {
        let target = SocketAddr::from((vip(c.services - 1), 80));
        let client = c.client.clone();
        in_ns(&client, move || -> Result<(), String> {
            for _ in 0..50 {
                let s = TcpStream::connect_timeout(&target, Duration::from_secs(2))
                    .map_err(|e| format!("warm-up connect {target}: {e}"))?;
                close_hard(s);
            }
            Ok(())
        })
        .join()
        .expect("warm-up thread")
        .map_err(|e| anyhow::anyhow!("{} {} ({}): {e}", c.design, c.services, c.host))?;
    }
    // Round robin, starting each round at the next case, so that no case always follows the
    // same one.
    let (mut done, mut round) = (0, 0);
    while done < conns {
        let count = batch.min(conns - done);
        for k in 0..cases.len() {
            let i = (round + k) % cases.len();
            let (tx, rx) = &workers[i];
            tx.send(count)?;
            cases[i]
                .samples
                .extend(rx.recv()?.map_err(|e| anyhow::anyhow!(e))?);
        }
        done += count;
        round += 1;
    }
    let mut rows = Vec::new();
    for c in &cases {
        let s = summary(&c.samples);
        eprintln!(
            "connect: {} {} services: p50 {:.3} ms p99 {:.3} ms",
            c.design, c.services, s.p50, s.p99
        );
        let mut j = summary_json(&s);
        j["design"] = c.design.clone().into();
        j["services"] = c.services.into();
        j["load_ms"] = c.load_ms.round().into();
        rows.push(j);
    }
    println!(
        "{}",
        serde_json::json!({"bench": "connect", "conns": conns, "batch": batch, "cases": rows})
    );
    drop(meshes);
    Ok(())
}
