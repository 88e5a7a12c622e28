//! Bridge, none and host modes: addresses, routes, connectivity, address reuse.

use super::*;

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
        let mac = bridge::stable_mac("hoist0", cfg.subnet);
        let mac = mac
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":");
        let bridge_mac = || {
            let link = ns_cmd(&host, &["ip", "-o", "link", "show", "dev", "hoist0"]);
            let mac = link
                .split("link/ether ")
                .nth(1)
                .and_then(|r| r.split_whitespace().next());
            mac.expect("bridge MAC").to_string()
        };
        assert_eq!(
            bridge_mac(),
            mac,
            "the bridge keeps its own MAC with ports attached"
        );
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
        let srv_a = Server::start(&netns_of(&a), sock(a.ip, 81), "a");
        assert_eq!(
            fetch(Some(&netns_of(&b)), sock(a.ip, 81)).expect("b -> a"),
            "hello from a"
        );

        // a's host-side veth: eth0@ifN inside a's namespace.
        let eth0 = ns_cmd(&netns_of(&a), &["ip", "-o", "link", "show", "dev", "eth0"]);
        let peer = eth0
            .split("eth0@if")
            .nth(1)
            .and_then(|r| r.split(':').next())
            .expect("peer index");
        let peer = format!("{peer}:");
        drop(srv_a); // its thread sits in a's namespace and would keep it alive
        net.detach("a").await.expect("detach a");
        // The kernel removes a's veth with its namespace: the bridge MAC must not follow it.
        let host_links = || ns_cmd(&host, &["ip", "-o", "link", "show"]);
        let deadline = Instant::now() + Duration::from_secs(10);
        while host_links().lines().any(|l| l.starts_with(&peer)) {
            assert!(Instant::now() < deadline, "veth of a still there");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(bridge_mac(), mac);
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
fn network_none_and_host_modes() {
    require_root!();
    let fx = Fixture::new("nm");
    fx.run(move |cfg| async move {
        let net = Network::new(cfg.clone()).await.expect("new");
        // none: the container's first process makes its namespace (`kind::Netns::Own`), so
        // there is nothing here to make, pin or record; the lab tests look inside one.
        let none = net
            .attach("quiet", NetworkMode::None, &[])
            .await
            .expect("none");
        assert_eq!(
            none,
            Attachment {
                netns: None,
                ip: None,
                gateway: None,
                prefix_len: 0
            }
        );
        assert!(!cfg.netns_dir.join("quiet").exists());
        assert!(net.addresses().is_empty());
        net.detach("quiet").await.expect("detach none is a no-op");
        let err = net
            .attach("quiet", NetworkMode::None, &[tcp(80, 80)])
            .await
            .expect_err("ports");
        assert!(err.to_string().contains("cannot publish ports"), "{err}");

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
fn network_is_send_sync() {
    fn check<T: Send + Sync + std::fmt::Debug>() {}
    check::<Network>();
    check::<Attachment>();
    check::<NetworkError>();
}
