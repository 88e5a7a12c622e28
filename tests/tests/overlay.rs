//! The overlay, on the lab: 3 controller members and 3 agent hosts in network namespaces, each
//! agent on the WireGuard overlay (the embedded userspace device: this kernel has no WireGuard
//! module). As an operator would: subnets come from the controllers, a client container on one
//! host reaches replicas on the two others by address, nothing crosses the lab wire in clear,
//! the data plane keeps forwarding through a `kill -9` and restart of an agent, and a removed
//! node is gone from every peer within 2 s.

use anyhow::{ensure, Context, Result};
use hoist_tests::cluster_lab::ClusterLab;
use hoist_tests::controller_lab::serial;
use hoist_tests::sh;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::time::{Duration, Instant};

const MEMBER_FLAGS: &[&str] = &["--node-grace", "3s", "--heartbeat-interval", "500ms"];

/// The public keys a WireGuard device has as peers, read over its UAPI socket.
fn device_peers(interface: &str) -> Result<BTreeSet<String>> {
    let path = format!("/var/run/wireguard/{interface}.sock");
    let mut s = std::os::unix::net::UnixStream::connect(&path).with_context(|| path.clone())?;
    s.write_all(b"get=1\n\n")?;
    let mut keys = BTreeSet::new();
    for line in BufReader::new(s).lines() {
        let line = line?;
        if line.is_empty() {
            break;
        }
        if let Some(hex) = line.strip_prefix("public_key=") {
            keys.insert(hex.to_string());
        }
    }
    Ok(keys)
}

/// An HTTP GET from a throwaway container on agent `i`; the body.
fn get_from(lab: &ClusterLab, i: usize, ip: &str) -> Result<Option<String>> {
    let script = format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {ip} 80");
    let out = lab.agents[i]
        .host
        .hoist(&["run", "--rm", "busybox", "sh", "-c", &script])?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    Ok(text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()))
}

/// nft counters in agent `i`'s namespace, on the lab wire (`eth0`): TCP to port 80 in clear,
/// and WireGuard's UDP.
fn count_wire(lab: &ClusterLab, i: usize) -> Result<()> {
    let ns = lab.lab.netns(lab.agents[i].lab_index());
    let rules = "table inet hoistlabwire {\n chain post {\n  type filter hook postrouting priority 0;\n  \
                 oifname \"eth0\" tcp dport 80 counter\n  oifname \"eth0\" udp dport 51820 counter\n }\n}";
    let out = sh(&format!(
        "ip netns exec {ns} nft -f - <<'EOF'\n{rules}\nEOF"
    ))?;
    ensure!(
        out.status.success(),
        "nft: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// (clear TCP packets, WireGuard packets) counted so far in agent `i`'s namespace.
fn wire_counts(lab: &ClusterLab, i: usize) -> Result<(u64, u64)> {
    let ns = lab.lab.netns(lab.agents[i].lab_index());
    let out = sh(&format!(
        "ip netns exec {ns} nft -j list table inet hoistlabwire"
    ))?;
    let v: Value = serde_json::from_slice(&out.stdout)?;
    let mut counts = Vec::new();
    for item in v["nftables"].as_array().into_iter().flatten() {
        if let Some(rule) = item.get("rule") {
            for e in rule["expr"].as_array().into_iter().flatten() {
                if let Some(c) = e.get("counter") {
                    counts.push(c["packets"].as_u64().unwrap_or(0));
                }
            }
        }
    }
    ensure!(counts.len() == 2, "counters: {v}");
    Ok((counts[0], counts[1]))
}

/// Agent `i`'s gateway (where its cluster DNS listens), from the subnet it keeps in its data dir.
fn gateway(lab: &ClusterLab, i: usize) -> Result<String> {
    let path = lab.agents[i].host.data_dir().join("overlay/state.json");
    let v: Value = serde_json::from_slice(&std::fs::read(&path)?)?;
    let subnet = v["subnet"].as_str().context("subnet")?;
    let net: std::net::Ipv4Addr = subnet.split('/').next().unwrap_or_default().parse()?;
    Ok(std::net::Ipv4Addr::from(u32::from(net) + 1).to_string())
}

/// How many replicas of `api` agent `i`'s DNS lists (`tasks.api`, asked from its host).
fn dns_replicas(lab: &ClusterLab, i: usize) -> Result<usize> {
    let ns = lab.lab.netns(lab.agents[i].lab_index());
    let out = sh(&format!(
        "ip netns exec {ns} busybox nslookup tasks.api {}",
        gateway(lab, i)?
    ))?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .matches("Address: 10.200.")
        .count())
}

/// Waits until the controllers list `want` endpoints of `api` and the DNS of agents a1 and a2
/// lists `want` replicas; each DNS must follow the controllers within 1 s.
fn dns_follows_the_controller(
    lab: &ClusterLab,
    want: usize,
    what: &str,
    timeout: Duration,
) -> Result<()> {
    let start = Instant::now();
    let (mut controller_at, mut dns_at) = (None, [None, None]);
    while start.elapsed() < timeout
        && (controller_at.is_none() || dns_at.iter().any(Option::is_none))
    {
        if controller_at.is_none() {
            let e = lab.get("/v1/services/api/endpoints")?;
            if e["endpoints"].as_array().map(Vec::len) == Some(want) {
                controller_at = Some(start.elapsed());
            }
        }
        for (i, at) in dns_at.iter_mut().enumerate() {
            if at.is_none() && dns_replicas(lab, i)? == want {
                *at = Some(start.elapsed());
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let controller_at =
        controller_at.with_context(|| format!("the controller never showed {want} endpoints"))?;
    for (i, at) in dns_at.iter().enumerate() {
        let at = at.with_context(|| format!("a{}'s DNS never listed {want} replicas", i + 1))?;
        let lag = at.saturating_sub(controller_at);
        eprintln!(
            "a{}: {what} {lag:?} after the controller's endpoints",
            i + 1
        );
        ensure!(lag <= Duration::from_secs(1), "a{}: {lag:?}", i + 1);
    }
    Ok(())
}

#[test]
fn hosts_are_linked_by_the_overlay() -> Result<()> {
    let _g = serial();
    let mut lab = ClusterLab::start(3, MEMBER_FLAGS)?;
    lab.add_overlay_agent("a1", &[("role", "api")])?;
    lab.add_overlay_agent("a2", &[("role", "api")])?;
    lab.add_overlay_agent("a3", &[("role", "client")])?;

    // Every node has its own subnet of the default cluster CIDR, shown by `node ls -o json`.
    let subnets = lab.wait_until("three distinct subnets", Duration::from_secs(20), || {
        let out = lab.hoist_ok(&["node", "ls", "-o", "json"])?;
        let nodes: Vec<Value> = serde_json::from_str(&out)?;
        let subnets: BTreeSet<String> = nodes
            .iter()
            .filter_map(|n| n["subnet"].as_str().map(str::to_owned))
            .collect();
        Ok(((subnets.len() == 3).then(|| subnets.clone()), out))
    })?;
    ensure!(
        subnets
            .iter()
            .all(|s| s.starts_with("10.200.") && s.ends_with("/24")),
        "{subnets:?}"
    );

    let spec = json!({
        "name": "api",
        "image": "busybox",
        "command": ["httpd", "-f", "-p", "80", "-h", "/var/www"],
        "replicas": 2,
        // Its virtual IP answers on its declared ports.
        "ports": [{"target": 80}],
        "placement": {"constraints": ["node.labels.role==api"], "max_per_node": 1},
        "health_check": {"tcp_port": 80, "interval": "500ms", "timeout": "1s", "retries": 2},
    });
    let (code, out, err) = lab.apply(&spec, &[])?;
    ensure!(code == 0, "apply: {out} {err}");
    let addrs: Vec<String> =
        lab.wait_until("2 api replicas ready", Duration::from_secs(60), || {
            let ps = lab.service_ps("api")?;
            let addrs: Vec<String> = ps["replicas"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| &r["task"])
                .filter(|t| t["state"] == "running" && t["health"] == "healthy")
                .filter_map(|t| t["address"].as_str().map(str::to_owned))
                .collect();
            Ok(((addrs.len() == 2).then(|| addrs.clone()), ps.to_string()))
        })?;

    // The client on a3 reaches both replicas (on a1 and a2) by address, through the tunnel only.
    count_wire(&lab, 2)?;
    for ip in &addrs {
        let body = lab.wait_until(
            &format!("GET {ip} from a3"),
            Duration::from_secs(20),
            || {
                let b = get_from(&lab, 2, ip)?;
                Ok((b.clone(), format!("{b:?}")))
            },
        )?;
        ensure!(body.contains("hello from hoist"), "{body}");
    }
    let (clear, tunnelled) = wire_counts(&lab, 2)?;
    ensure!(
        clear == 0,
        "{clear} TCP packets to port 80 left a3 in clear"
    );
    ensure!(tunnelled > 0, "no WireGuard packet left a3");

    // By name, from a container attached to the cluster network on a3 (`--network cluster`, as
    // replicas are): the service (its virtual IP), every replica, one slot; unknown names fail
    // at once (NXDOMAIN).
    let inspect: Value = serde_json::from_str(&lab.hoist_ok(&["service", "inspect", "api"])?)?;
    let vip = inspect["vip"]
        .as_str()
        .context("api's virtual IP")?
        .to_string();
    // `hoist run --rm --network cluster busybox ARGS...` on a3: (exit 0, stdout + stderr).
    let on_cluster = |args: &[&str]| -> Result<(bool, String)> {
        let mut all = vec!["run", "--rm", "--network", "cluster", "busybox"];
        all.extend_from_slice(args);
        let out = lab.agents[2].host.hoist(&all)?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok((out.status.success(), text))
    };
    let lookup = |name: &str| on_cluster(&["nslookup", name]);
    let by_name = lab.wait_until("api resolves on a3", Duration::from_secs(10), || {
        let (ok, text) = lookup("api")?;
        Ok(((ok && text.contains(&vip)).then(|| text.clone()), text))
    })?;
    eprintln!("{by_name}");
    let (ok, text) = lookup("tasks.api")?;
    ensure!(
        ok && addrs.iter().all(|a| text.contains(a.as_str())),
        "tasks.api: {text}"
    );
    let (ok, text) = lookup("0.api")?;
    ensure!(
        ok && addrs.iter().filter(|a| text.contains(a.as_str())).count() == 1,
        "0.api: {text}"
    );
    let t = Instant::now();
    let (ok, text) = lookup("nope")?;
    ensure!(
        !ok && text.to_lowercase().contains("nxdomain"),
        "nope: {text}"
    );
    ensure!(
        t.elapsed() < Duration::from_secs(2),
        "NXDOMAIN took {:?}",
        t.elapsed()
    );
    let body = lab.wait_until("GET api by name from a3", Duration::from_secs(10), || {
        let (_, text) = on_cluster(&[
            "sh",
            "-c",
            "printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 2 api 80",
        ])?;
        Ok((
            text.contains("hello from hoist").then(|| text.clone()),
            text,
        ))
    })?;
    ensure!(body.contains("hello from hoist"));
    // A replica itself resolves the others (replicas are on the cluster network).
    let replica = lab.running_on(0, "api")?;
    let id = replica
        .first()
        .and_then(|c| c["id"].as_str())
        .context("a replica on a1")?
        .to_string();
    let out = lab.agents[0]
        .host
        .hoist_ok(&["exec", &id, "nslookup", "tasks.api"])?;
    ensure!(
        addrs.iter().all(|a| out.contains(a.as_str())),
        "from a replica: {out}"
    );

    // A continuous stream of requests from a3 to a1's replica while a1's agent is killed and
    // restarted: the tunnel lives in its own process, so no request fails.
    let target = lab.running_on(0, "api")?;
    let ip = target
        .first()
        .and_then(|c| c["ip_address"].as_str())
        .context("a1 runs a replica")?
        .to_string();
    let script = format!(
        "while true; do if printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 1 {ip} 80 | grep -q hello; \
         then echo ok; else echo FAIL; fi; sleep 0.05; done"
    );
    let client = lab.agents[2].host.hoist_ok(&[
        "run", "-d", "--name", "prober", "busybox", "sh", "-c", &script,
    ])?;
    let client = client.trim().to_string();
    let probes = |lab: &ClusterLab| -> Result<(usize, usize)> {
        let log = lab.agents[2].host.hoist_ok(&["logs", &client])?;
        Ok((log.matches("ok").count(), log.matches("FAIL").count()))
    };
    lab.wait_until("probes flowing", Duration::from_secs(10), || {
        let (ok, fail) = probes(&lab)?;
        Ok(((ok >= 5).then_some(()), format!("{ok} ok, {fail} failed")))
    })?;
    lab.kill_agent(0)?;
    std::thread::sleep(Duration::from_secs(1));
    lab.restart_agent(0)?;
    let (ok_before, _) = probes(&lab)?;
    lab.wait_until("probes after the restart", Duration::from_secs(20), || {
        let (ok, fail) = probes(&lab)?;
        Ok((
            (ok >= ok_before + 20).then_some(()),
            format!("{ok} ok, {fail} failed"),
        ))
    })?;
    let (ok, fail) = probes(&lab)?;
    ensure!(
        fail == 0,
        "{fail} of {} probes failed across the agent's restart",
        ok + fail
    );
    lab.agents[2].host.hoist_ok(&["rm", "-f", &client])?;

    // `hoist net doctor` on a1: every check passes while all agents run...
    let doctor = |lab: &ClusterLab, i: usize| -> Result<(i32, String)> {
        let out = lab.agents[i].host.hoist(&["net", "doctor"])?;
        Ok((
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        ))
    };
    let a3 = lab.node_id(2).context("a3's id")?;
    // `hoist node inspect` shows a1's view of its peers, as its agent reported it.
    let a1 = lab.node_id(0).context("a1's id")?;
    lab.wait_until(
        "a1's peers in node inspect",
        Duration::from_secs(15),
        || {
            let out = lab.hoist_ok(&["node", "inspect", &a1])?;
            let v: Value = serde_json::from_str(&out)?;
            let peers = v["peers"].as_array().cloned().unwrap_or_default();
            let ok = peers.len() == 2
                && peers
                    .iter()
                    .all(|p| p["handshake_age_s"].is_u64() && p["probes_sent"].as_u64() > Some(0));
            Ok((ok.then_some(()), out))
        },
    )?;
    lab.wait_until("net doctor passes on a1", Duration::from_secs(15), || {
        let (code, text) = doctor(&lab, 0)?;
        Ok((
            (code == 0 && text.contains(&a3) && text.contains("All checks passed")).then_some(()),
            text,
        ))
    })?;
    // ... and says what is wrong when a3's agent is gone (its tunnel still answers: only its
    // agent, and so its DNS, is down).
    lab.kill_agent(2)?;
    let said = lab.wait_until("net doctor on a1 names a3", Duration::from_secs(20), || {
        let (code, text) = doctor(&lab, 0)?;
        Ok((
            (code == 1 && text.contains(&format!("PROBLEM: {a3}"))).then(|| text.clone()),
            text,
        ))
    })?;
    eprintln!("{said}");
    // The controllers say the same of a1's peers, from its agent's reports.
    lab.wait_until(
        "node inspect of a1 names a3",
        Duration::from_secs(15),
        || {
            let out = lab.hoist_ok(&["node", "inspect", &a1])?;
            let v: Value = serde_json::from_str(&out)?;
            let named = v["peer_problems"].as_array().is_some_and(|p| {
                p.iter()
                    .any(|l| l.as_str().is_some_and(|l| l.starts_with(&a3)))
            });
            Ok((named.then_some(()), out))
        },
    )?;

    // A node removed is gone from every peer's device within 2 s.
    let peers_before = device_peers(lab.agents[0].wg_interface.as_deref().unwrap())?;
    ensure!(peers_before.len() == 2, "a1's peers: {peers_before:?}");
    lab.wait_until("a3 down", Duration::from_secs(20), || {
        let nodes = lab.nodes()?;
        let st = nodes.get(&a3).map(|(s, _)| s.clone());
        Ok((
            (st.as_deref() == Some("down")).then_some(()),
            format!("{st:?}"),
        ))
    })?;
    let t = Instant::now();
    lab.hoist_ok(&["node", "rm", &a3])?;
    for i in [0, 1] {
        let iface = lab.agents[i].wg_interface.clone().unwrap();
        lab.wait_until(
            &format!("a3 gone from a{}'s device", i + 1),
            Duration::from_secs(2),
            || {
                let p = device_peers(&iface)?;
                Ok(((p.len() == 1).then_some(()), format!("{p:?}")))
            },
        )?;
    }
    eprintln!("node rm reached both peers in {:?}", t.elapsed());

    // A replica that stops being ready leaves every host's DNS within 1 s of the controller
    // knowing it (scale down: the controller stops one replica)...
    ensure!(
        dns_replicas(&lab, 0)? == 2 && dns_replicas(&lab, 1)? == 2,
        "before the scale down"
    );
    lab.hoist_ok(&["service", "scale", "api", "1"])?;
    dns_follows_the_controller(&lab, 1, "replica gone from DNS", Duration::from_secs(20))?;
    // ... and a replica that becomes ready resolves on every host soon after the controller counts it.
    lab.hoist_ok(&["service", "scale", "api", "2"])?;
    dns_follows_the_controller(&lab, 2, "new replica in DNS", Duration::from_secs(30))?;
    Ok(())
}
