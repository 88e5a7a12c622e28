//! IP address management for one subnet: pure bookkeeping, no I/O.
//!
//! Hands out the lowest free host address, never the network, gateway or broadcast address.
//! The allocation set is rebuilt from the persisted attachments on start, so it has no file of its own.

use super::Ipv4Subnet;
use std::collections::BTreeSet;
use std::net::Ipv4Addr;

/// Allocated addresses of one subnet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ipam {
    subnet: Ipv4Subnet,
    allocated: BTreeSet<Ipv4Addr>,
}

impl Ipam {
    pub fn new(subnet: Ipv4Subnet) -> Self {
        Ipam {
            subnet,
            allocated: BTreeSet::new(),
        }
    }

    /// Rebuilds the allocations from persisted addresses; addresses outside the usable range
    /// (e.g. after the subnet was changed) are ignored and returned so the caller can log them.
    pub fn from_allocated(
        subnet: Ipv4Subnet,
        ips: impl IntoIterator<Item = Ipv4Addr>,
    ) -> (Self, Vec<Ipv4Addr>) {
        let mut ipam = Ipam::new(subnet);
        let mut rejected = Vec::new();
        for ip in ips {
            if !ipam.reserve(ip) {
                rejected.push(ip);
            }
        }
        (ipam, rejected)
    }

    /// Marks `ip` as used; false if it is not a usable address of the subnet or already taken.
    pub fn reserve(&mut self, ip: Ipv4Addr) -> bool {
        self.usable(ip) && self.allocated.insert(ip)
    }

    /// The lowest free usable address, now marked as used; `None` when the subnet is full.
    pub fn allocate(&mut self) -> Option<Ipv4Addr> {
        let first = u32::from(self.subnet.gateway()) + 1;
        let last = u32::from(self.subnet.broadcast()) - 1;
        // Allocations are sorted: the first gap in the run starting at `first` is the answer.
        let mut candidate = first;
        for ip in self.allocated.range(Ipv4Addr::from(first)..) {
            let ip = u32::from(*ip);
            if ip != candidate {
                break;
            }
            candidate += 1;
        }
        if candidate > last {
            return None;
        }
        let ip = Ipv4Addr::from(candidate);
        self.allocated.insert(ip);
        Some(ip)
    }

    /// Frees `ip`; true if it was allocated.
    pub fn release(&mut self, ip: Ipv4Addr) -> bool {
        self.allocated.remove(&ip)
    }

    pub fn is_allocated(&self, ip: Ipv4Addr) -> bool {
        self.allocated.contains(&ip)
    }

    pub fn allocated(&self) -> impl Iterator<Item = Ipv4Addr> + '_ {
        self.allocated.iter().copied()
    }

    fn usable(&self, ip: Ipv4Addr) -> bool {
        self.subnet.contains(ip)
            && ip != self.subnet.network()
            && ip != self.subnet.gateway()
            && ip != self.subnet.broadcast()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn subnet(s: &str) -> Ipv4Subnet {
        s.parse().expect("valid subnet")
    }

    #[test]
    fn allocates_lowest_free_and_skips_reserved() {
        let mut ipam = Ipam::new(subnet("10.89.0.0/24"));
        assert_eq!(ipam.allocate(), Some(Ipv4Addr::new(10, 89, 0, 2)));
        assert_eq!(ipam.allocate(), Some(Ipv4Addr::new(10, 89, 0, 3)));
        assert_eq!(ipam.allocate(), Some(Ipv4Addr::new(10, 89, 0, 4)));
        assert!(ipam.release(Ipv4Addr::new(10, 89, 0, 3)));
        assert!(!ipam.release(Ipv4Addr::new(10, 89, 0, 3)));
        assert_eq!(ipam.allocate(), Some(Ipv4Addr::new(10, 89, 0, 3)));
        assert_eq!(ipam.allocate(), Some(Ipv4Addr::new(10, 89, 0, 5)));
    }

    #[test]
    fn exhaustion_and_reuse() {
        // /29: network .0, gateway .1, broadcast .7 → five container addresses .2-.6.
        let mut ipam = Ipam::new(subnet("192.168.5.0/29"));
        let got: Vec<_> = std::iter::from_fn(|| ipam.allocate()).collect();
        assert_eq!(got.len(), 5);
        assert_eq!(got.first(), Some(&Ipv4Addr::new(192, 168, 5, 2)));
        assert_eq!(got.last(), Some(&Ipv4Addr::new(192, 168, 5, 6)));
        assert_eq!(ipam.allocate(), None);
        ipam.release(Ipv4Addr::new(192, 168, 5, 4));
        assert_eq!(ipam.allocate(), Some(Ipv4Addr::new(192, 168, 5, 4)));
        assert_eq!(ipam.allocate(), None);
    }

    #[test]
    fn smallest_subnet_has_one_address() {
        let mut ipam = Ipam::new(subnet("10.0.0.0/30"));
        assert_eq!(ipam.allocate(), Some(Ipv4Addr::new(10, 0, 0, 2)));
        assert_eq!(ipam.allocate(), None);
    }

    #[test]
    fn reserve_rejects_unusable_addresses() {
        let s = subnet("10.89.0.0/24");
        let (ipam, rejected) = Ipam::from_allocated(
            s,
            [
                Ipv4Addr::new(10, 89, 0, 0),
                Ipv4Addr::new(10, 89, 0, 1),
                Ipv4Addr::new(10, 89, 0, 255),
                Ipv4Addr::new(10, 90, 0, 2),
                Ipv4Addr::new(10, 89, 0, 9),
            ],
        );
        assert_eq!(rejected.len(), 4);
        assert_eq!(
            ipam.allocated().collect::<Vec<_>>(),
            vec![Ipv4Addr::new(10, 89, 0, 9)]
        );
    }

    proptest! {
        /// Any sequence of allocate/release keeps addresses unique, usable, lowest-first,
        /// and survives a round trip through the persisted list.
        #[test]
        fn round_trip_and_invariants(ops in proptest::collection::vec(any::<(bool, u8)>(), 0..200)) {
            let s = subnet("10.1.0.0/27");
            let mut ipam = Ipam::new(s);
            let mut live: Vec<Ipv4Addr> = Vec::new();
            for (alloc, pick) in ops {
                if alloc || live.is_empty() {
                    match ipam.allocate() {
                        Some(ip) => {
                            prop_assert!(!live.contains(&ip));
                            prop_assert!(s.contains(ip) && ip != s.gateway() && ip != s.broadcast() && ip != s.network());
                            // Lowest free: every usable address below it is taken.
                            for lower in (u32::from(s.gateway()) + 1)..u32::from(ip) {
                                prop_assert!(live.contains(&Ipv4Addr::from(lower)));
                            }
                            live.push(ip);
                        }
                        None => prop_assert_eq!(live.len(), 29),
                    }
                } else {
                    let ip = live.swap_remove(usize::from(pick) % live.len());
                    prop_assert!(ipam.release(ip));
                }
                let (restored, rejected) = Ipam::from_allocated(s, ipam.allocated());
                prop_assert!(rejected.is_empty());
                prop_assert_eq!(&restored, &ipam);
            }
        }
    }
}
