//! The difference between the peers the controller lists and those the device has: pure.

use hoist_proto::node::OverlayPeer;
use std::collections::BTreeMap;

/// A peer as the device has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerState {
    /// Base64 public key.
    pub public_key: String,
    pub endpoint: Option<std::net::SocketAddr>,
    /// Allowed IPs, `a.b.c.d/len`, sorted.
    pub allowed_ips: Vec<String>,
    /// Seconds since the Unix epoch of the last handshake, if any.
    pub last_handshake: Option<std::time::SystemTime>,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
}

/// One change to make on the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerChange {
    /// Add the peer, or set its endpoint and replace its allowed IPs (its session survives).
    Upsert {
        public_key: String,
        endpoint: std::net::SocketAddr,
        allowed_ip: ipnet::Ipv4Net,
    },
    Remove {
        public_key: String,
    },
}

/// What to change so that the device has exactly `wanted` (peers with an unreadable endpoint or
/// subnet are skipped: one bad record must not block the others). Peers already right are not
/// touched.
pub fn plan(wanted: &[OverlayPeer], current: &[PeerState]) -> Vec<PeerChange> {
    let have: BTreeMap<&str, &PeerState> =
        current.iter().map(|p| (p.public_key.as_str(), p)).collect();
    let mut out = Vec::new();
    let mut keep = std::collections::BTreeSet::new();
    for w in wanted {
        let (Ok(endpoint), Ok(allowed_ip)) = (
            w.endpoint.parse::<std::net::SocketAddr>(),
            w.subnet.parse::<ipnet::Ipv4Net>(),
        ) else {
            tracing::warn!(peer = %w.node, endpoint = %w.endpoint, subnet = %w.subnet, "skipping an overlay peer whose record does not read");
            continue;
        };
        keep.insert(w.public_key.as_str());
        let right = have.get(w.public_key.as_str()).is_some_and(|p| {
            p.endpoint == Some(endpoint) && p.allowed_ips == [allowed_ip.to_string()]
        });
        if !right {
            out.push(PeerChange::Upsert {
                public_key: w.public_key.clone(),
                endpoint,
                allowed_ip,
            });
        }
    }
    for p in current {
        if !keep.contains(p.public_key.as_str()) {
            out.push(PeerChange::Remove {
                public_key: p.public_key.clone(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(node: &str, key: &str, endpoint: &str, subnet: &str) -> OverlayPeer {
        OverlayPeer {
            node: node.into(),
            public_key: key.into(),
            endpoint: endpoint.into(),
            subnet: subnet.into(),
            generation: 1,
        }
    }

    fn state(key: &str, endpoint: &str, subnet: &str) -> PeerState {
        PeerState {
            public_key: key.into(),
            endpoint: Some(endpoint.parse().unwrap()),
            allowed_ips: vec![subnet.into()],
            last_handshake: None,
            rx_bytes: 0,
            tx_bytes: 0,
        }
    }

    #[test]
    fn only_the_difference_is_applied() {
        let wanted = [
            peer("a", "KA", "10.0.0.1:51820", "10.200.0.0/24"),
            peer("b", "KB", "10.0.0.2:51820", "10.200.1.0/24"),
            peer("c", "KC", "10.0.0.3:51821", "10.200.2.0/24"),
        ];
        let current = [
            state("KA", "10.0.0.1:51820", "10.200.0.0/24"),
            state("KC", "10.0.0.3:51820", "10.200.2.0/24"),
            state("KGONE", "10.0.0.9:51820", "10.200.9.0/24"),
        ];
        let changes = plan(&wanted, &current);
        assert_eq!(
            changes,
            [
                PeerChange::Upsert {
                    public_key: "KB".into(),
                    endpoint: "10.0.0.2:51820".parse().unwrap(),
                    allowed_ip: "10.200.1.0/24".parse().unwrap(),
                },
                PeerChange::Upsert {
                    public_key: "KC".into(),
                    endpoint: "10.0.0.3:51821".parse().unwrap(),
                    allowed_ip: "10.200.2.0/24".parse().unwrap(),
                },
                PeerChange::Remove {
                    public_key: "KGONE".into()
                },
            ]
        );
        assert!(
            plan(&wanted[..1], &current[..1]).is_empty(),
            "nothing to do"
        );
    }

    #[test]
    fn a_bad_record_skips_only_that_peer() {
        let wanted = [
            peer("a", "KA", "not an endpoint", "10.200.0.0/24"),
            peer("b", "KB", "10.0.0.2:51820", "10.200.1.0/24"),
        ];
        let changes = plan(&wanted, &[]);
        assert_eq!(changes.len(), 1);
        assert!(matches!(&changes[0], PeerChange::Upsert { public_key, .. } if public_key == "KB"));
    }
}
