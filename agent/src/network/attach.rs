//! `Network::attach`: reserve an address and ports in memory, then persist and wire the kernel
//! side concurrently; undo everything if either fails.

use super::state::Record;
use super::{nft, validate_id, Address, Attachment, Network, NetworkError, Sysctl};
use hoist_proto::agent::{NetworkMode, PortMapping};
use std::net::Ipv4Addr;
use std::sync::atomic::Ordering;

impl Network {
    /// Wires container `id` up according to `mode` and publishes `ports` (bridge mode only).
    /// On failure everything done so far is undone.
    pub async fn attach(
        &self,
        id: &str,
        mode: NetworkMode,
        ports: &[PortMapping],
    ) -> Result<Attachment, NetworkError> {
        validate_id(id)?;
        // Whether the node is on an overlay is the agent's to check (`containers::create`);
        // here a cluster attachment is a bridge attachment.
        let k = super::kind::kind(mode, true).map_err(|_| NetworkError::PortsNeedBridge {
            id: id.to_string(),
            mode: "cluster",
        })?;
        if !k.ports && !ports.is_empty() {
            let mode = if mode == NetworkMode::Host {
                "host"
            } else {
                "none"
            };
            return Err(NetworkError::PortsNeedBridge {
                id: id.to_string(),
                mode,
            });
        }
        // Only a wired namespace is the agent's to make (`kind::Netns`).
        if k.netns != super::kind::Netns::Wired {
            return Ok(Attachment {
                netns: None,
                ip: None,
                gateway: None,
                prefix_len: 0,
            });
        }
        let record = self.reserve(id, mode, ports)?;
        let (persisted, wired) = tokio::join!(self.persist(), self.wire(id, &record));
        // Replace the warm namespace `wire` may have used, now that the hot path is over.
        self.links.refill();
        if let Err(e) = persisted.and(wired) {
            if let Err(undo) = self.unwire(id, &record).await {
                tracing::warn!(container = id, error = %undo, "undo of a failed attach left something behind");
            }
            self.forget(id);
            if let Err(p) = self.persist().await {
                tracing::warn!(container = id, error = %p, "persist after a failed attach");
            }
            return Err(e);
        }
        Ok(record.attachment)
    }

    /// Claims ports and an address for `id` in memory (no kernel side effects yet).
    fn reserve(
        &self,
        id: &str,
        mode: NetworkMode,
        ports: &[PortMapping],
    ) -> Result<Record, NetworkError> {
        let mut inner = self.lock();
        if inner.records.contains_key(id) {
            return Err(NetworkError::AlreadyAttached { id: id.to_string() });
        }
        inner.ports.check(id, ports)?;
        let mut attachment = Attachment {
            netns: Some(self.netns_path(id)),
            ip: None,
            gateway: None,
            prefix_len: 0,
        };
        if super::kind::kind(mode, true).is_ok_and(|k| k.address) {
            let ip = inner
                .ipam
                .allocate()
                .ok_or_else(|| NetworkError::SubnetFull {
                    subnet: self.cfg.subnet.to_string(),
                    id: id.to_string(),
                })?;
            attachment.ip = Some(ip);
            attachment.gateway = Some(self.cfg.subnet.gateway());
            attachment.prefix_len = self.cfg.subnet.prefix_len();
        }
        inner.ports.claim(id, ports)?;
        let record = Record {
            mode,
            attachment,
            ports: ports.to_vec(),
        };
        inner.records.insert(id.to_string(), record.clone());
        inner.generation += 1;
        Ok(record)
    }

    /// The kernel side of `attach`: netns, veth + addresses, and port elements (concurrently).
    async fn wire(&self, id: &str, rec: &Record) -> Result<(), NetworkError> {
        let path = self.netns_path(id);
        // A file without a record is a leftover of a crash mid-attach: it is ours to replace.
        self.links.remove(&path)?;
        let links = async {
            // Every wired kind has an address (`kind`).
            let ip = rec.attachment.ip.ok_or_else(|| NetworkError::Link {
                name: id.to_string(),
                problem: "a wired namespace without an address".into(),
            })?;
            let addr = Address {
                ip,
                prefix_len: self.cfg.subnet.prefix_len(),
                gateway: self.cfg.subnet.gateway(),
            };
            self.links.bridged(&path, addr).await
        };
        let ports = async {
            match rec.attachment.ip {
                Some(ip) if !rec.ports.is_empty() => self.publish(id, ip, &rec.ports).await,
                _ => Ok(()),
            }
        };
        let (links, ports) = tokio::join!(links, ports);
        links.and(ports)
    }

    /// Adds the port elements (and turns on forwarding the first time).
    async fn publish(
        &self,
        id: &str,
        ip: Ipv4Addr,
        ports: &[PortMapping],
    ) -> Result<(), NetworkError> {
        let batch = nft::add_ports(&self.table, id, ip, ports);
        let mut sysctls = Vec::new();
        if !self.forwarding_on.load(Ordering::Relaxed) {
            sysctls.push(Sysctl::forwarding());
        }
        self.nft.apply("publish ports", sysctls, batch).await?;
        self.forwarding_on.store(true, Ordering::Relaxed);
        Ok(())
    }
}
