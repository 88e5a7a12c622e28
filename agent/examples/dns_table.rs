//! The cluster DNS server on its own, for `bench/dns.sh`: the agent's real server code
//! (`hoist_agent::dns`) answering from a table of N services with 2 ready replicas each, as an
//! endpoints watch would have filled it. Not a product binary.
//!
//!   cargo run --release -p hoist-agent --example dns_table -- 127.0.0.1:5353 1000

use hoist_proto::node::{ReplicaAddress, ServiceAddresses, ServiceEndpoints};
use std::sync::{Arc, RwLock};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let listen: std::net::SocketAddr = args.next().unwrap_or("127.0.0.1:5353".into()).parse()?;
    let n: u32 = args.next().unwrap_or("1000".into()).parse()?;
    let services = (0..n)
        .map(|i| ServiceAddresses {
            service: format!("svc{i}"),
            replicas: (0..2)
                .map(|slot| ReplicaAddress {
                    slot,
                    task: format!("t{i}-{slot}"),
                    node: format!("n{slot}"),
                    address: format!("10.200.{}.{}", slot, 2 + i % 250),
                })
                .collect(),
            vip: None,
            ports: vec![],
            ..Default::default()
        })
        .collect();
    let registry = hoist_agent::dns::Registry::from_endpoints(&ServiceEndpoints {
        index: 1,
        term: 1,
        services,
        ..Default::default()
    });
    let table = Arc::new(RwLock::new(Arc::new(registry)));
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(async {
            hoist_agent::dns::start(
                hoist_agent::dns::DnsConfig {
                    listen,
                    upstreams: vec![],
                    // dnsperf is a single source: measure the server, not the flood guard.
                    per_source_qps: None,
                },
                table,
            )
            .await?;
            println!("ready");
            std::future::pending::<anyhow::Result<()>>().await
        })
}
