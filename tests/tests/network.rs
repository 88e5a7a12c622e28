//! Bridge networking on one host: containers reach each other over the bridge, published ports are
//! reachable from another machine and from the host itself, port clashes are refused, and removal
//! leaves no namespace, address or rule behind.

use anyhow::Result;
use hoist_tests::{wait_for, Host, Peer, HOST_LAB_IP};
use std::time::Duration;

fn httpd(h: &Host, name: &str, extra: &[&str]) -> Result<String> {
    let mut args = vec!["run", "-d", "--name", name];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["busybox", "httpd", "-f", "-p", "80", "-h", "/var/www"]);
    Ok(h.hoist_ok(&args)?.trim().to_string())
}

/// An HTTP GET from inside a container with busybox `nc` (busybox's static `wget` crashes on this
/// host's kernel); returns the response body.
fn get_from_container(h: &Host, ip: &str) -> Result<Option<String>> {
    let script = format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {ip} 80");
    let out = h.hoist(&["run", "--rm", "busybox", "sh", "-c", &script])?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    Ok(text
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string()))
}

#[test]
fn containers_talk_over_the_bridge() -> Result<()> {
    let h = Host::start("h1")?;
    httpd(&h, "srv", &[])?;
    let ip = h.inspect("srv")?["ip_address"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        ip.starts_with("10.89.0."),
        "address from the host subnet: {ip}"
    );
    let body = wait_for("httpd in srv", Duration::from_secs(10), || {
        get_from_container(&h, &ip)
    })?;
    assert_eq!(body, "<h1>hello from hoist</h1>\n");
    // Each container has its own address; /etc/hosts names it.
    let other = h.hoist_ok(&[
        "run",
        "--rm",
        "--hostname",
        "peer",
        "busybox",
        "sh",
        "-c",
        "grep peer /etc/hosts; ip -4 -o addr show eth0",
    ])?;
    assert!(
        other.contains("10.89.0.") && !other.contains(&format!("{ip}/")),
        "{other}"
    );
    h.hoist_ok(&["rm", "-f", "srv"])?;
    Ok(())
}

#[test]
fn published_ports_reach_the_container() -> Result<()> {
    let h = Host::start("h1")?;
    let peer = Peer::attach(&h)?;
    let id = httpd(&h, "web", &["-p", "8080:80"])?;
    let remote = format!("http://{HOST_LAB_IP}:8080/");
    let body = wait_for(
        "the published port from another machine",
        Duration::from_secs(10),
        || Ok(peer.curl(&remote)),
    )?;
    assert_eq!(body, "<h1>hello from hoist</h1>\n");
    // From the host itself, to its own address and to localhost.
    for url in [remote.as_str(), "http://127.0.0.1:8080/"] {
        let body = h.curl(url);
        assert_eq!(
            body.as_deref(),
            Some("<h1>hello from hoist</h1>\n"),
            "{url}"
        );
    }
    let ps = h.hoist_ok(&["ps"])?;
    assert!(ps.contains("0.0.0.0:8080->80/tcp"), "{ps}");

    // The same host port again: refused, and nothing is left of the attempt.
    let out = h.hoist(&[
        "run", "-d", "--name", "clash", "-p", "8080:80", "busybox", "true",
    ])?;
    assert_eq!(out.status.code(), Some(125));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("8080") && err.contains("already"), "{err}");
    assert!(h.hoist(&["inspect", "clash"])?.status.code() != Some(0));

    h.hoist_ok(&["rm", "-f", "web"])?;
    assert!(h.leftovers(&id).is_empty(), "{:?}", h.leftovers(&id));
    let gone = peer.curl(&remote);
    assert_eq!(gone, None, "the port is closed after rm");
    // The port is free again.
    httpd(&h, "web2", &["-p", "8080:80"])?;
    h.hoist_ok(&["rm", "-f", "web2"])?;
    Ok(())
}

#[test]
fn host_and_none_networks() -> Result<()> {
    let h = Host::start("h1")?;
    let peer = Peer::attach(&h)?;
    let _ = peer;
    // host: the host's interfaces, including the lab link.
    let out = h.hoist_ok(&[
        "run",
        "--rm",
        "--network",
        "host",
        "busybox",
        "ip",
        "-4",
        "-o",
        "addr",
    ])?;
    assert!(out.contains(HOST_LAB_IP), "{out}");
    // none: loopback only.
    let out = h.hoist_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "ip",
        "-o",
        "link",
    ])?;
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.contains("lo:") && out.contains("UP"), "{out}");
    Ok(())
}
