//! Published ports: from another host, from the host itself, localhost, conflicts, and the localhost guard.

use super::*;

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
        let localhost = SocketAddr::from(([127, 0, 0, 1], 8080));
        assert_eq!(
            fetch(None, localhost).expect("host -> localhost:8080"),
            "hello from web1"
        );
        // Hairpin: containers (another one, and web1 itself) through the host's addresses. With
        // br_netfilter, bridged replies pass conntrack and would hide a missing SNAT: turn it off
        // in this test namespace (the sysctl is per namespace) to test the worst case.
        let brnf = "/proc/sys/net/bridge/bridge-nf-call-iptables";
        ns_cmd(
            &host,
            &["sh", "-c", &format!("[ ! -e {brnf} ] || echo 0 > {brnf}")],
        );
        let other = net
            .attach("other", NetworkMode::Bridge, &[])
            .await
            .expect("attach other");
        for (who, ns) in [("other", netns_of(&other)), ("web1", netns_of(&web))] {
            for addr in [published, SocketAddr::from(([10, 89, 0, 1], 8080))] {
                let got = fetch(Some(&ns), addr).unwrap_or_else(|e| panic!("{who} -> {addr}: {e}"));
                assert_eq!(got, "hello from web1");
            }
        }
        net.detach("other").await.expect("detach other");

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
            fetch_fails(Some(&client_ns), published),
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
            fetch_fails(Some(&ns), target),
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

/// UDP is published through its own maps: a datagram to host:5353 reaches the container's :53
/// and the reply comes back from the published address.
#[test]
fn network_published_udp_port() {
    require_root!();
    let fx = Fixture::new("ud");
    let host = fx.host.path();
    fx.run(move |cfg| async move {
        let net = Network::new(cfg).await.expect("new");
        let dns = PortMapping {
            host_port: 5353,
            container_port: 53,
            protocol: Protocol::Udp,
        };
        let att = net
            .attach("dns", NetworkMode::Bridge, &[dns])
            .await
            .expect("attach");
        let ns = netns_of(&att);
        let server_addr = sock(att.ip, 53);
        let server = std::thread::spawn(move || {
            enter(&ns);
            let sock = std::net::UdpSocket::bind(server_addr).expect("bind");
            sock.set_read_timeout(Some(Duration::from_secs(10)))
                .expect("timeout");
            let mut buf = [0u8; 64];
            let (n, from) = sock.recv_from(&mut buf).expect("datagram");
            sock.send_to(&[b"re:", &buf[..n]].concat(), from)
                .expect("reply");
        });
        // From the host to its own (gateway) address, so the output chain's DNAT is used.
        let reply = std::thread::spawn(move || {
            enter(&host);
            let sock = std::net::UdpSocket::bind("0.0.0.0:0").expect("bind");
            sock.set_read_timeout(Some(Duration::from_secs(10)))
                .expect("timeout");
            sock.connect("10.89.0.1:5353").expect("connect");
            // Retry: the server thread may not be bound yet.
            let mut buf = [0u8; 64];
            for _ in 0..50 {
                sock.send(b"ping").expect("send");
                sock.set_read_timeout(Some(Duration::from_millis(200)))
                    .expect("timeout");
                if let Ok(n) = sock.recv(&mut buf) {
                    return String::from_utf8_lossy(&buf[..n]).into_owned();
                }
            }
            String::new()
        })
        .join()
        .expect("client");
        server.join().expect("server");
        assert_eq!(reply, "re:ping");
        net.detach("dns").await.expect("detach");
    });
}
