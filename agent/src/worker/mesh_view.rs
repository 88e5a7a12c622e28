//! What the routing mesh of this node must hold, from the controller's endpoints answer and the
//! overlay's peers. Pure, tested directly.
//!
//! - A service's VIP ports are its spec's container ports (`VIP:target` → `replica:target`, as
//!   in Swarm); its ingress ports are the published ports of `mode = "ingress"` (`host` ones
//!   are published by the replicas themselves).
//! - An endpoint is local when its replica runs on this node (the ingress prefers those).
//! - Peers are the other overlay nodes: their subnet and underlay address (the IP of their
//!   WireGuard endpoint).

use crate::mesh::{MeshEndpoint, MeshPeer, MeshPort, MeshService, MeshView};
use hoist_proto::node::{Overlay, ServiceEndpoints};
use hoist_proto::service::{PortMode, PortProtocol};
use hoist_proto::Protocol;
use std::net::{Ipv4Addr, SocketAddr};

/// The mesh view of `endpoints` and `overlay` for node `me`.
pub fn of(endpoints: &ServiceEndpoints, overlay: Option<&Overlay>, me: &str) -> MeshView {
    let services = endpoints
        .services
        .iter()
        .map(|s| MeshService {
            name: s.service.clone(),
            vip: s.vip.as_deref().and_then(|v| v.parse().ok()),
            ports: s
                .ports
                .iter()
                .filter_map(|p| {
                    Some(MeshPort {
                        protocol: match p.protocol {
                            PortProtocol::Tcp => Protocol::Tcp,
                            PortProtocol::Udp => Protocol::Udp,
                        },
                        target: u16::try_from(p.target).ok().filter(|t| *t > 0)?,
                        published: p
                            .published
                            .filter(|_| p.mode == PortMode::Ingress)
                            .and_then(|v| u16::try_from(v).ok())
                            .filter(|v| *v > 0),
                    })
                })
                .collect(),
            endpoints: s
                .replicas
                .iter()
                .filter_map(|r| {
                    Some(MeshEndpoint {
                        address: r.address.parse::<Ipv4Addr>().ok()?,
                        local: r.node == me,
                    })
                })
                .collect(),
        })
        .collect();
    let peers = overlay
        .map(|o| {
            o.peers
                .iter()
                .filter(|p| p.node != me)
                .filter_map(|p| {
                    Some(MeshPeer {
                        subnet: p.subnet.parse().ok()?,
                        underlay: match p.endpoint.parse::<SocketAddr>().ok()?.ip() {
                            std::net::IpAddr::V4(a) => a,
                            std::net::IpAddr::V6(_) => return None,
                        },
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    MeshView { services, peers }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hoist_proto::node::{OverlayPeer, ReplicaAddress, ServiceAddresses};
    use hoist_proto::service::ServicePort;

    #[test]
    fn ports_endpoints_and_peers() {
        let r = |node: &str, address: &str| ReplicaAddress {
            slot: 0,
            task: "t".into(),
            node: node.into(),
            address: address.into(),
        };
        let port = |target, published, mode| ServicePort {
            target,
            published,
            protocol: PortProtocol::Tcp,
            mode,
        };
        let e = ServiceEndpoints {
            index: 5,
            term: 1,
            services: vec![ServiceAddresses {
                service: "web".into(),
                replicas: vec![r("n1", "10.200.0.5"), r("n2", "10.200.1.5"), r("n2", "bad")],
                vip: Some("10.201.0.1".into()),
                ports: vec![
                    port(80, Some(8080), PortMode::Ingress),
                    port(81, Some(8081), PortMode::Host),
                    port(0, None, PortMode::Ingress),
                ],
                ..Default::default()
            }],
            ..Default::default()
        };
        let overlay = Overlay {
            cluster_cidr: "10.200.0.0/16".into(),
            subnet: Some("10.200.0.0/24".into()),
            problem: None,
            peers: vec![OverlayPeer {
                node: "n2".into(),
                public_key: "k".into(),
                endpoint: "10.77.0.3:51820".into(),
                subnet: "10.200.1.0/24".into(),
                generation: 1,
            }],
            changed_since: 0,
            peer_count: 0,
        };
        let v = of(&e, Some(&overlay), "n1");
        let s = &v.services[0];
        assert_eq!(s.vip, Some(Ipv4Addr::new(10, 201, 0, 1)));
        assert_eq!(
            s.ports,
            vec![
                MeshPort {
                    protocol: Protocol::Tcp,
                    target: 80,
                    published: Some(8080)
                },
                MeshPort {
                    protocol: Protocol::Tcp,
                    target: 81,
                    published: None
                },
            ]
        );
        assert_eq!(s.endpoints.len(), 2);
        assert!(s.endpoints[0].local && !s.endpoints[1].local);
        assert_eq!(v.peers.len(), 1);
        assert_eq!(v.peers[0].underlay, Ipv4Addr::new(10, 77, 0, 3));
    }
}

/// The node's routing mesh with the endpoints index it holds (for `GET /v1/overlay`).
#[derive(Debug)]
pub struct MeshHandle {
    pub mesh: crate::mesh::Mesh,
    /// The index of the endpoints answer last applied.
    pub applied: std::sync::atomic::AtomicU64,
}

impl MeshHandle {
    pub fn new(mesh: crate::mesh::Mesh) -> std::sync::Arc<MeshHandle> {
        std::sync::Arc::new(MeshHandle {
            mesh,
            applied: Default::default(),
        })
    }

    /// What `hoist net doctor` shows of it.
    pub fn report(&self) -> hoist_proto::agent::MeshReport {
        let s = self.mesh.status();
        hoist_proto::agent::MeshReport {
            services: s.services,
            endpoints: s.endpoints,
            endpoints_index: self.applied.load(std::sync::atomic::Ordering::Relaxed),
            applied_ms: s.applied_ms,
            last_error: s.last_error,
        }
    }
}
