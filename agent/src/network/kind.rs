//! Network kinds: what each `--network` value gives a container, decided in one place (pure).
//!
//! - `bridge`: its own namespace, a veth into this host's bridge and an address of the host's
//!   subnet; the host's resolvers.
//! - `cluster`: the same attachment on a node of the overlay (whose bridge *is* its share of the
//!   cluster CIDR, reachable from every node), with the cluster DNS: Swarm's attachable overlay.
//!   Service replicas on an overlay node use it.
//! - `host`: the host's namespace; `none`: a namespace with only loopback, which the container's
//!   first process makes for itself (as runc's default spec does): there is nothing in it to
//!   wire from outside, so the agent neither makes, pins, records nor removes it, and it goes
//!   with the container.

use hoist_proto::agent::NetworkMode;

/// Which resolvers a container gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolvers {
    /// The host's `/etc/resolv.conf` (minus loopback resolvers), or the host's own file in host mode.
    Host,
    /// The cluster DNS on the node's gateway.
    Cluster,
}

/// Whose network namespace a container runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Netns {
    /// The host's.
    Host,
    /// Its own, made by its first process with only `lo` up (`RuntimeSpec::own_netns`).
    Own,
    /// Its own, made by the agent, pinned at a file and wired with a veth into the bridge.
    Wired,
}

/// What attaching a container of a kind involves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kind {
    pub netns: Netns,
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
            netns: Netns::Wired,
            address: true,
            ports: true,
            resolvers: Resolvers::Host,
        },
        NetworkMode::Cluster if on_overlay => Kind {
            netns: Netns::Wired,
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
            netns: Netns::Host,
            address: false,
            ports: false,
            resolvers: Resolvers::Host,
        },
        NetworkMode::None => Kind {
            netns: Netns::Own,
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
        assert!(b.netns == Netns::Wired && b.address && b.ports && b.resolvers == Resolvers::Host);
        let c = kind(NetworkMode::Cluster, true).unwrap();
        assert!(c.address && c.resolvers == Resolvers::Cluster);
        assert!(kind(NetworkMode::Cluster, false)
            .unwrap_err()
            .contains("--network bridge"));
        let h = kind(NetworkMode::Host, false).unwrap();
        assert!(h.netns == Netns::Host && !h.ports);
        let n = kind(NetworkMode::None, false).unwrap();
        assert!(n.netns == Netns::Own && !n.address && !n.ports);
    }
}
