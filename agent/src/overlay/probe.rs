//! Probes through the tunnel: every few seconds a DNS query (for a name nobody has) to each
//! peer's gateway, where its cluster DNS answers NXDOMAIN. The packet leaves with this node's
//! gateway as source (the tunnel route's), so an answer proves both directions of the tunnel
//! and the peer's agent; the round trip is the overlay's latency.

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};
use hoist_proto::node::OverlayPeer;
use std::collections::{BTreeMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::time::{Duration, Instant};

/// How often each peer is probed.
pub const EVERY: Duration = Duration::from_secs(3);
/// How long an answer may take before the probe counts as lost.
const TIMEOUT: Duration = Duration::from_secs(1);
/// Probes kept per peer (the window `hoist net doctor` judges).
const WINDOW: usize = 10;

/// Recent results per peer node: `Some(rtt)` answered, `None` lost.
#[derive(Debug, Default)]
pub struct Probes {
    by_node: BTreeMap<String, VecDeque<Option<Duration>>>,
}

impl Probes {
    /// Adds one round's results and forgets peers that are gone.
    pub fn record(&mut self, peers: &[OverlayPeer], results: Vec<(String, Option<Duration>)>) {
        self.by_node
            .retain(|n, _| peers.iter().any(|p| &p.node == n));
        for (node, r) in results {
            let w = self.by_node.entry(node).or_default();
            w.push_back(r);
            while w.len() > WINDOW {
                w.pop_front();
            }
        }
    }

    /// (sent, lost, lost in a row at the end, last round trip) in the window.
    pub fn summary(&self, node: &str) -> (u32, u32, u32, Option<Duration>) {
        let Some(w) = self.by_node.get(node) else {
            return (0, 0, 0, None);
        };
        let lost = w.iter().filter(|r| r.is_none()).count() as u32;
        let in_a_row = w.iter().rev().take_while(|r| r.is_none()).count() as u32;
        (
            w.len() as u32,
            lost,
            in_a_row,
            w.iter().rev().find_map(|r| *r),
        )
    }
}

/// The gateway of a peer's subnet.
fn gateway(subnet: &str) -> Option<Ipv4Addr> {
    let net: ipnet::Ipv4Net = subnet.parse().ok()?;
    Some(Ipv4Addr::from(u32::from(net.network()) + 1))
}

/// Probes every peer once, concurrently.
pub async fn round(peers: &[OverlayPeer]) -> Vec<(String, Option<Duration>)> {
    let probes = peers.iter().map(|p| async move {
        let r = match gateway(&p.subnet) {
            Some(gw) => probe(SocketAddr::new(gw.into(), 53)).await,
            None => None,
        };
        (p.node.clone(), r)
    });
    futures::future::join_all(probes).await
}

async fn probe(to: SocketAddr) -> Option<Duration> {
    let id: u16 = rand_id();
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(
        Name::from_str("hoist-overlay-probe.").ok()?,
        RecordType::A,
    ));
    let q = m.to_vec().ok()?;
    let sock = tokio::net::UdpSocket::bind("0.0.0.0:0").await.ok()?;
    sock.connect(to).await.ok()?;
    let t = Instant::now();
    sock.send(&q).await.ok()?;
    let mut buf = [0u8; 512];
    let n = tokio::time::timeout(TIMEOUT, sock.recv(&mut buf))
        .await
        .ok()?
        .ok()?;
    (n >= 2 && buf[..2] == id.to_be_bytes()).then(|| t.elapsed())
}

fn rand_id() -> u16 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    (nanos ^ (nanos >> 16)) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(node: &str) -> OverlayPeer {
        OverlayPeer {
            node: node.into(),
            public_key: "k".into(),
            endpoint: "10.0.0.1:51820".into(),
            subnet: "10.200.1.0/24".into(),
            generation: 1,
        }
    }

    #[test]
    fn a_window_per_peer_and_gone_peers_forgotten() {
        let mut p = Probes::default();
        for i in 0..12 {
            let r = if i % 4 == 0 {
                None
            } else {
                Some(Duration::from_millis(i))
            };
            p.record(
                &[peer("a"), peer("b")],
                vec![
                    ("a".into(), r),
                    ("b".into(), Some(Duration::from_millis(1))),
                ],
            );
        }
        let (sent, lost, in_a_row, rtt) = p.summary("a");
        assert_eq!(
            (sent, lost, in_a_row, rtt),
            (10, 2, 0, Some(Duration::from_millis(11)))
        );
        p.record(&[peer("a")], vec![("a".into(), None), ("a".into(), None)]);
        assert_eq!(p.summary("a").2, 2);
        assert_eq!(p.summary("b"), (0, 0, 0, None));
        assert_eq!(
            gateway("10.200.1.0/24"),
            Some("10.200.1.1".parse().unwrap())
        );
    }
}
