//! Network kinds: what each `--network` value gives a container, decided in one place (pure).
//!
//! - `bridge`: its own namespace, a veth into this host's bridge and an address of the host's
//!   subnet; the host's resolvers.
//! - `cluster`: the same attachment on a node of the overlay (whose bridge *is* its share of the
//!   cluster CIDR, reachable from every node), with the cluster DNS: Swarm's attachable overlay.
//!   Service replicas on an overlay node use it.
//! - `host`: the host's namespace; `none`: a namespace with only loopback.

use hoist_proto::agent::NetworkMode;

/// Which resolvers a container gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolvers {
    /// The host's `/etc/resolv.conf` (minus loopback resolvers), or the host's own file in host mode.
    Host,
    /// The cluster DNS on the node's gateway.
    Cluster,
}

/// What attaching a container of a kind involves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kind {
    /// Its own network namespace.
    pub netns: bool,
    /// An address from the host's subnet (a veth into the bridge).
    pub address: bool,
    /// Whether it may publish ports.
    pub ports: bool,
    pub resolvers: Resolvers,
}

/// What `mode` means on this node (`on_overlay`: the agent joined a cluster's overlay). A mode the
/// node cannot give is refused with what to do instead.
pub fn kind(mode: NetworkMode, on_overlay: bool) -> Result<Kind, String> {
    Ok(match mode {
        NetworkMode::Bridge => Kind {
            netns: true,
            address: true,
            ports: true,
            resolvers: Resolvers::Host,
        },
        NetworkMode::Cluster if on_overlay => Kind {
            netns: true,
            address: true,
            ports: true,
            resolvers: Resolvers::Cluster,
        },
        NetworkMode::Cluster => {
            return Err(
                "--network cluster needs an agent on a cluster's overlay (started with --join \
                        and without --subnet); use --network bridge here"
                    .into(),
            )
        }
        NetworkMode::Host => Kind {
            netns: false,
            address: false,
            ports: false,
            resolvers: Resolvers::Host,
        },
        NetworkMode::None => Kind {
            netns: true,
            address: false,
            ports: false,
            resolvers: Resolvers::Host,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        let b = kind(NetworkMode::Bridge, true).unwrap();
        assert!(b.netns && b.address && b.ports && b.resolvers == Resolvers::Host);
        let c = kind(NetworkMode::Cluster, true).unwrap();
        assert!(c.address && c.resolvers == Resolvers::Cluster);
        assert!(kind(NetworkMode::Cluster, false)
            .unwrap_err()
            .contains("--network bridge"));
        let h = kind(NetworkMode::Host, false).unwrap();
        assert!(!h.netns && !h.ports);
        let n = kind(NetworkMode::None, false).unwrap();
        assert!(n.netns && !n.address);
    }
}
