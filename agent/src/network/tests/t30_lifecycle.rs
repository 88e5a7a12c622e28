//! Failure undo, subnet exhaustion, restart + retain, concurrency.

use super::*;

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
        assert_eq!(
            net.attachment("kept"),
            Some(kept.clone()),
            "known again after the restart"
        );
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

/// Many attaches and detaches at once (as an agent starting a service's replicas): distinct
/// addresses, every one reachable, state file consistent, nothing left afterwards.
#[test]
fn network_concurrent_attach_and_detach() {
    require_root!();
    let fx = Fixture::new("cc");
    fx.run(move |cfg| async move {
        let net = Arc::new(Network::new(cfg.clone()).await.expect("new"));
        let ids: Vec<String> = (0..12).map(|i| format!("r{i}")).collect();
        let attaches = ids.iter().enumerate().map(|(i, id)| {
            let net = net.clone();
            let id = id.clone();
            let port = 10_000 + u16::try_from(i).expect("small");
            tokio::spawn(
                async move { net.attach(&id, NetworkMode::Bridge, &[tcp(port, 80)]).await },
            )
        });
        let mut ips = BTreeSet::new();
        for handle in attaches.collect::<Vec<_>>() {
            let att = handle.await.expect("task").expect("attach");
            assert!(ips.insert(att.ip.expect("ip")), "duplicate address");
        }
        assert_eq!(ips.len(), ids.len());
        let state = std::fs::read_to_string(cfg.state_dir.join("attachments.json")).expect("state");
        assert!(
            ids.iter().all(|id| state.contains(&format!("\"{id}\""))),
            "{state}"
        );
        let detaches = ids.iter().map(|id| {
            let net = net.clone();
            let id = id.clone();
            tokio::spawn(async move { net.detach(&id).await })
        });
        for handle in detaches.collect::<Vec<_>>() {
            handle.await.expect("task").expect("detach");
        }
        let state = std::fs::read_to_string(cfg.state_dir.join("attachments.json")).expect("state");
        assert!(!state.contains("\"r"), "{state}");
        assert_eq!(std::fs::read_dir(&cfg.netns_dir).expect("dir").count(), 0);
    });
}

/// Even with the state file lost, `retain` leaves live containers alone and removes what no live
/// container accounts for (netns files, port elements found by their comment).
#[test]
fn network_retain_without_state_file() {
    require_root!();
    let fx = Fixture::new("ns");
    let host = fx.host.path();
    fx.run(move |cfg| async move {
        let net = Network::new(cfg.clone()).await.expect("new");
        net.attach("kept", NetworkMode::Bridge, &[tcp(9100, 80)])
            .await
            .expect("attach");
        net.attach("lost", NetworkMode::Bridge, &[tcp(9101, 80)])
            .await
            .expect("attach");
        drop(net);
        std::fs::remove_file(cfg.state_dir.join("attachments.json")).expect("lose the state");

        let net = Network::new(cfg.clone()).await.expect("new without state");
        net.retain(&["kept".to_string()]).await.expect("retain");
        let table = nft_table(&host);
        assert!(table.contains("kept") && !table.contains("lost"), "{table}");
        assert!(cfg.netns_dir.join("kept").exists());
        assert!(!cfg.netns_dir.join("lost").exists());
        net.retain(&[]).await.expect("retain nothing");
        assert!(!nft_table(&host).contains("kept"));
        assert_eq!(std::fs::read_dir(&cfg.netns_dir).expect("dir").count(), 0);
    });
}
