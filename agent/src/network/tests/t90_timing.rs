//! Timings (printed, not asserted): `cargo test -p hoist-agent network_attach -- --nocapture --test-threads 1`.

use super::*;

/// Attach + detach, one container at a time. "warm": spaced out enough for the pool to refill
/// (the steady state); "no wait": back to back, so the pool is often empty and its refill competes
/// for the CPU.
#[test]
fn network_attach_detach_timing() {
    require_root!();
    let fx = Fixture::new("tm");
    fx.run(move |cfg| async move {
        let (net, links) = with_host_links(cfg).await;
        let series = [
            ("bridge, warm", vec![], true),
            ("bridge, no wait", vec![], false),
            ("bridge + 1 port, warm", vec![tcp(7000, 80)], true),
        ];
        for (label, ports, warm) in series {
            let (mut attach, mut detach) = (Vec::new(), Vec::new());
            for i in 0..15 {
                let id = format!("t{i}");
                if warm {
                    let deadline = Instant::now() + Duration::from_secs(10);
                    while links.pool.len() < WARM_NETNS {
                        assert!(Instant::now() < deadline, "pool does not refill");
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                }
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
                "{label:>22}: attach median {:?} min {:?}; detach median {:?} min {:?}",
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
        let (net, links) = with_host_links(cfg.clone()).await;
        let mut rows: Vec<[Duration; 7]> = Vec::new();
        for i in 0..15 {
            let (cold_path, warm_path) = (cfg.netns_dir.join(format!("c{i}")), cfg.netns_dir.join(format!("w{i}")));
            let t0 = Instant::now();
            let cold = links.pool.build(Some(&cold_path)).await.expect("cold build");
            let t1 = Instant::now();
            let warm = links.pool.build(None).await.expect("warm build");
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

/// A `Network` as `Network::new` makes it, with its links at hand (for their warm pool).
async fn with_host_links(cfg: NetworkConfig) -> (Network, Arc<HostLinks>) {
    let nft = Arc::new(HostNft::new().expect("nft"));
    let links = HostLinks::new(&cfg.bridge, cfg.subnet, cfg.mtu, WARM_NETNS)
        .await
        .expect("links");
    let links = Arc::new(links);
    let net = Network::with_kernel(cfg, links.clone(), nft)
        .await
        .expect("new");
    (net, links)
}
