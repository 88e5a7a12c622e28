//! The overlay's address plan and the checks on what agents register for it: pure functions
//! shared by the controller (which allocates) and the agent (which wires).
//!
//! The cluster CIDR (`hoist-controller --cluster-cidr`, default `10.200.0.0/16`) is cut into one
//! subnet per node (`/24` by default). The controller allocates the lowest free one in `apply`,
//! so every member computes the same answer and two registrations can never get the same subnet
//! (Raft orders them).

use base64::Engine;
use ipnet::Ipv4Net;
use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};

/// The default `--cluster-cidr`.
pub const DEFAULT_CLUSTER_CIDR: &str = "10.200.0.0/16";
/// The default prefix length of a node's subnet.
pub const DEFAULT_SUBNET_PREFIX: u32 = 24;
/// Where services' virtual IPs come from, unless `hoist-controller --vip-cidr` says otherwise.
pub const DEFAULT_VIP_CIDR: &str = "10.201.0.0/16";
/// The default `hoist-agent --wg-port`.
pub const DEFAULT_WG_PORT: u16 = 51820;
/// WireGuard's overhead on an IPv4 or IPv6 underlay (outer IPv6 40 + UDP 8 + WireGuard 32): the
/// tunnel's MTU is the underlay's minus this.
pub const WG_OVERHEAD: u32 = 80;

/// Parses and checks an address plan: `cidr` must be a network address (host bits zero) and
/// `subnet_prefix` must fit in it and leave room for a gateway and containers (≤ 30).
pub fn parse_plan(cidr: &str, subnet_prefix: u32) -> Result<Ipv4Net, String> {
    let net: Ipv4Net = cidr.trim().parse().map_err(|_| {
        format!("cluster CIDR {cidr:?}: expected an IPv4 network like 10.200.0.0/16")
    })?;
    if net.network() != net.addr() {
        return Err(format!(
            "cluster CIDR {cidr}: host bits are set; did you mean {}?",
            net.trunc()
        ));
    }
    if subnet_prefix < u32::from(net.prefix_len()) || subnet_prefix > 30 {
        return Err(format!(
            "node subnet prefix /{subnet_prefix} must be between /{} (the cluster CIDR's) and /30",
            net.prefix_len()
        ));
    }
    Ok(net)
}

/// How many node subnets the plan holds.
pub fn capacity(cidr: Ipv4Net, subnet_prefix: u32) -> u64 {
    1u64 << (subnet_prefix - u32::from(cidr.prefix_len()))
}

/// The lowest subnet of `cidr` of length `subnet_prefix` that is not in `used` (compared by
/// network address); `None` when all are taken.
pub fn allocate(cidr: Ipv4Net, subnet_prefix: u32, used: &BTreeSet<Ipv4Addr>) -> Option<Ipv4Net> {
    let step = 1u64 << (32 - subnet_prefix);
    let base = u64::from(u32::from(cidr.network()));
    (0..capacity(cidr, subnet_prefix))
        .map(|i| Ipv4Addr::from((base + i * step) as u32))
        .find(|a| !used.contains(a))
        .map(|a| Ipv4Net::new(a, subnet_prefix as u8).expect("prefix ≤ 30"))
}

/// What a node that finds no free subnet is told.
pub fn exhausted(cidr: &str, subnet_prefix: u32) -> String {
    format!(
        "the cluster CIDR {cidr} has no free /{subnet_prefix} left for this node's containers \
         (remove a node, or start a cluster with a larger --cluster-cidr)"
    )
}

/// Checks a WireGuard public key as registered: base64 of exactly 32 bytes.
pub fn check_public_key(key: &str) -> Result<(), String> {
    match base64::engine::general_purpose::STANDARD.decode(key.trim()) {
        Ok(b) if b.len() == 32 => Ok(()),
        Ok(b) => Err(format!(
            "wg_public_key: {} bytes, a WireGuard key has 32",
            b.len()
        )),
        Err(e) => Err(format!("wg_public_key: not base64 ({e})")),
    }
}

/// Checks a tunnel endpoint as registered: `IP:PORT` with a non-zero port and a unicast address.
pub fn check_endpoint(endpoint: &str) -> Result<SocketAddr, String> {
    let addr: SocketAddr = endpoint
        .trim()
        .parse()
        .map_err(|_| format!("wg_endpoint: {endpoint:?} is not IP:PORT"))?;
    if addr.port() == 0 || addr.ip().is_unspecified() || addr.ip().is_multicast() {
        return Err(format!(
            "wg_endpoint: {endpoint} is not a reachable address"
        ));
    }
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn plans_are_checked() {
        assert!(parse_plan("10.200.0.0/16", 24).is_ok());
        assert!(parse_plan("10.200.1.0/16", 24)
            .unwrap_err()
            .contains("did you mean 10.200.0.0/16"));
        assert!(parse_plan("10.200.0.0/16", 8)
            .unwrap_err()
            .contains("between /16"));
        assert!(parse_plan("10.200.0.0/16", 31).is_err());
        assert!(parse_plan("nope", 24).unwrap_err().contains("IPv4 network"));
        assert_eq!(capacity(parse_plan("10.200.0.0/16", 24).unwrap(), 24), 256);
    }

    #[test]
    fn lowest_free_first_then_none() {
        let cidr = parse_plan("10.9.0.0/22", 24).unwrap();
        let mut used = BTreeSet::new();
        for want in ["10.9.0.0/24", "10.9.1.0/24", "10.9.2.0/24", "10.9.3.0/24"] {
            let got = allocate(cidr, 24, &used).unwrap();
            assert_eq!(got.to_string(), want);
            used.insert(got.network());
        }
        assert_eq!(allocate(cidr, 24, &used), None);
        used.remove(&"10.9.1.0".parse().unwrap());
        assert_eq!(
            allocate(cidr, 24, &used).unwrap().to_string(),
            "10.9.1.0/24",
            "freed, reused"
        );
    }

    #[test]
    fn keys_and_endpoints() {
        assert!(check_public_key("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").is_ok());
        assert!(check_public_key("AAAA").unwrap_err().contains("3 bytes"));
        assert!(check_public_key("!!").unwrap_err().contains("not base64"));
        assert!(check_endpoint("10.0.0.1:51820").is_ok());
        assert!(check_endpoint("10.0.0.1").unwrap_err().contains("IP:PORT"));
        assert!(check_endpoint("0.0.0.0:51820").is_err());
        assert!(check_endpoint("10.0.0.1:0").is_err());
    }

    proptest! {
        /// Whatever the order of registrations and removals, every node holds a distinct subnet
        /// inside the CIDR, and a node is refused only when every subnet is taken.
        #[test]
        fn allocations_never_overlap(ops in proptest::collection::vec((any::<bool>(), 0u8..40), 1..200)) {
            let cidr = parse_plan("10.200.0.0/19", 24).unwrap(); // 32 subnets
            let mut held: std::collections::BTreeMap<u8, Ipv4Net> = Default::default();
            for (add, node) in ops {
                if add {
                    if held.contains_key(&node) { continue; }
                    let used = held.values().map(|n| n.network()).collect();
                    match allocate(cidr, 24, &used) {
                        Some(net) => {
                            prop_assert!(cidr.contains(&net));
                            prop_assert!(held.values().all(|h| !h.contains(&net.network()) && !net.contains(&h.network())));
                            held.insert(node, net);
                        }
                        None => prop_assert_eq!(held.len() as u64, capacity(cidr, 24)),
                    }
                } else {
                    held.remove(&node);
                }
            }
        }
    }
}
