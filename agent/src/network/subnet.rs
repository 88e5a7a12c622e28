//! `Ipv4Subnet`: the bridge's address range, parsed from `a.b.c.d/len` with errors that say what is wrong.

use super::NetworkError;
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// An IPv4 network: a base address with all host bits zero and a prefix length 1..=30
/// (at least two usable host addresses: the gateway and one container).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Subnet {
    network: Ipv4Addr,
    prefix_len: u8,
}

impl Ipv4Subnet {
    /// Checks the same rules as `FromStr`.
    pub fn new(network: Ipv4Addr, prefix_len: u8) -> Result<Self, NetworkError> {
        let input = format!("{network}/{prefix_len}");
        let bad = |reason: String| NetworkError::InvalidSubnet {
            input: input.clone(),
            reason,
        };
        if !(1..=30).contains(&prefix_len) {
            return Err(bad(format!("prefix length {prefix_len} is outside 1..=30")));
        }
        let mask = mask(prefix_len);
        if u32::from(network) & !mask != 0 {
            let base = Ipv4Addr::from(u32::from(network) & mask);
            return Err(bad(format!(
                "host bits are set; did you mean {base}/{prefix_len}?"
            )));
        }
        Ok(Ipv4Subnet {
            network,
            prefix_len,
        })
    }

    /// The network address (all host bits zero).
    pub fn network(&self) -> Ipv4Addr {
        self.network
    }

    pub fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    /// The first host address; it goes on the bridge and is every container's default route.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + 1)
    }

    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) | !mask(self.prefix_len))
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & mask(self.prefix_len) == u32::from(self.network)
    }
}

fn mask(prefix_len: u8) -> u32 {
    u32::MAX
        .checked_shl(32 - u32::from(prefix_len))
        .unwrap_or(0)
}

impl Default for Ipv4Subnet {
    /// `10.89.0.0/24`.
    fn default() -> Self {
        Ipv4Subnet {
            network: Ipv4Addr::new(10, 89, 0, 0),
            prefix_len: 24,
        }
    }
}

impl fmt::Display for Ipv4Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix_len)
    }
}

impl FromStr for Ipv4Subnet {
    type Err = NetworkError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason: &str| NetworkError::InvalidSubnet {
            input: s.to_string(),
            reason: reason.to_string(),
        };
        let (addr, len) = s
            .split_once('/')
            .ok_or_else(|| bad("expected ADDRESS/PREFIX, e.g. 10.89.0.0/24"))?;
        let network: Ipv4Addr = addr
            .parse()
            .map_err(|_| bad("not an IPv4 address before '/'"))?;
        let prefix_len: u8 = len
            .parse()
            .map_err(|_| bad("prefix length is not a number"))?;
        Ipv4Subnet::new(network, prefix_len).map_err(|e| match e {
            NetworkError::InvalidSubnet { reason, .. } => NetworkError::InvalidSubnet {
                input: s.to_string(),
                reason,
            },
            other => other,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_displays() {
        let s: Ipv4Subnet = "10.89.0.0/24".parse().expect("valid");
        assert_eq!(s.to_string(), "10.89.0.0/24");
        assert_eq!(s.gateway(), Ipv4Addr::new(10, 89, 0, 1));
        assert_eq!(s.broadcast(), Ipv4Addr::new(10, 89, 0, 255));
        assert!(s.contains(Ipv4Addr::new(10, 89, 0, 77)));
        assert!(!s.contains(Ipv4Addr::new(10, 89, 1, 1)));
        assert_eq!(s, Ipv4Subnet::default());
    }

    #[test]
    fn rejects_bad_input_with_clear_messages() {
        let msg = |s: &str| s.parse::<Ipv4Subnet>().expect_err(s).to_string();
        assert_eq!(
            msg("10.89.0.5/24"),
            "invalid subnet \"10.89.0.5/24\": host bits are set; did you mean 10.89.0.0/24?"
        );
        assert!(msg("10.89.0.0").contains("expected ADDRESS/PREFIX"));
        assert!(msg("10.89.0/24").contains("not an IPv4 address"));
        assert!(msg("10.89.0.0/x").contains("not a number"));
        assert!(msg("10.89.0.0/31").contains("outside 1..=30"));
        assert!(msg("0.0.0.0/0").contains("outside 1..=30"));
    }
}
