//! Published-port bookkeeping: which container owns which host port. Pure, no I/O.
//!
//! The kernel side (nftables map elements) is in `nft.rs`; this table decides conflicts before
//! anything touches the kernel, so a conflicting `attach` fails without side effects.

use super::NetworkError;
use hoist_proto::agent::{PortMapping, Protocol};
use std::collections::{BTreeMap, BTreeSet};

/// Host port → owning container id, per protocol.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortTable {
    owners: BTreeMap<(Protocol, u16), String>,
}

impl PortTable {
    /// Fails if a mapping repeats a host port or one is owned by another container.
    pub fn check(&self, id: &str, ports: &[PortMapping]) -> Result<(), NetworkError> {
        let mut seen = BTreeSet::new();
        for p in ports {
            if p.host_port == 0 || p.container_port == 0 {
                return Err(NetworkError::InvalidPort {
                    id: id.to_string(),
                    mapping: format!("{}:{}/{}", p.host_port, p.container_port, p.protocol),
                });
            }
            if !seen.insert((p.protocol, p.host_port)) {
                return Err(NetworkError::DuplicatePort {
                    port: p.host_port,
                    protocol: p.protocol,
                    id: id.to_string(),
                });
            }
            if let Some(owner) = self.owners.get(&(p.protocol, p.host_port)) {
                if owner != id {
                    return Err(NetworkError::PortInUse {
                        port: p.host_port,
                        protocol: p.protocol,
                        owner: owner.clone(),
                    });
                }
            }
        }
        Ok(())
    }

    /// Checks, then records `id` as the owner of every host port in `ports`.
    pub fn claim(&mut self, id: &str, ports: &[PortMapping]) -> Result<(), NetworkError> {
        self.check(id, ports)?;
        for p in ports {
            self.owners
                .insert((p.protocol, p.host_port), id.to_string());
        }
        Ok(())
    }

    /// Releases every port owned by `id`.
    pub fn release(&mut self, id: &str) {
        self.owners.retain(|_, owner| owner != id);
    }

    pub fn owner(&self, protocol: Protocol, host_port: u16) -> Option<&str> {
        self.owners.get(&(protocol, host_port)).map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.owners.len()
    }

    pub fn is_empty(&self) -> bool {
        self.owners.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn tcp(host_port: u16, container_port: u16) -> PortMapping {
        PortMapping {
            host_port,
            container_port,
            protocol: Protocol::Tcp,
        }
    }

    #[test]
    fn conflict_names_port_and_owner() {
        let mut t = PortTable::default();
        t.claim("web1", &[tcp(8080, 80)]).expect("free");
        let err = t.claim("web2", &[tcp(8080, 8080)]).expect_err("taken");
        assert_eq!(
            err.to_string(),
            "host port 8080/tcp is already published by container web1"
        );
        // The failed claim took nothing.
        assert_eq!(t.len(), 1);
        // Same port number over UDP is a different port.
        t.claim(
            "web2",
            &[PortMapping {
                host_port: 8080,
                container_port: 53,
                protocol: Protocol::Udp,
            }],
        )
        .expect("udp free");
        t.release("web1");
        t.claim("web2", &[tcp(8080, 80)]).expect("released");
        assert_eq!(t.owner(Protocol::Tcp, 8080), Some("web2"));
    }

    #[test]
    fn port_zero_is_invalid() {
        let err = PortTable::default()
            .check("a", &[tcp(0, 80)])
            .expect_err("zero");
        assert_eq!(
            err.to_string(),
            "invalid port mapping 0:80/tcp for container a: ports must be 1-65535"
        );
        assert!(PortTable::default().check("a", &[tcp(80, 0)]).is_err());
    }

    #[test]
    fn duplicate_in_one_request() {
        let t = PortTable::default();
        let err = t.check("a", &[tcp(80, 80), tcp(80, 81)]).expect_err("dup");
        assert_eq!(
            err.to_string(),
            "host port 80/tcp is listed twice for container a"
        );
    }

    proptest! {
        /// After any sequence of claims and releases, each port has at most one owner and
        /// releasing every container empties the table.
        #[test]
        fn claims_are_exclusive(ops in proptest::collection::vec((0u8..4, 1u16..6, any::<bool>()), 0..100)) {
            let mut t = PortTable::default();
            let mut model: BTreeMap<u16, String> = BTreeMap::new();
            for (who, port, release) in ops {
                let id = format!("c{who}");
                if release {
                    t.release(&id);
                    model.retain(|_, o| *o != id);
                } else {
                    let res = t.claim(&id, &[tcp(port, 80)]);
                    match model.get(&port) {
                        Some(o) if *o != id => prop_assert!(res.is_err()),
                        _ => { prop_assert!(res.is_ok()); model.insert(port, id); }
                    }
                }
            }
            for who in 0..4 { t.release(&format!("c{who}")); }
            prop_assert!(t.is_empty());
        }
    }
}
