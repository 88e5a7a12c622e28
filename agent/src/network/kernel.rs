//! The kernel edges of container networking, as two traits: [`Links`] (network namespaces and
//! the veth on the bridge, over netlink) and [`Nft`] (our nftables table and the sysctls that go
//! with it, in the host's namespace). [`Network`](super::Network) keeps everything else — IPAM,
//! port tables, validation, the persisted attachments, undo on failure — and reaches the kernel
//! only through these, so tests run it for real over recording fakes (`crate::testing`).
//!
//! The real implementations are [`HostLinks`] (the bridge and the warm pools of `pool.rs`) and
//! [`HostNft`] (`nft -j -f -` on a thread in the agent's namespace, `nft.rs`). The traits are cut
//! at the operations `attach` and `detach` perform, so the hot path makes the same calls as
//! before: one bind mount and three netlink requests for a bridge attach, one thread running `nft`
//! when ports are published.

use super::{bridge, netns, nft, pool, veth, Ipv4Subnet, NetworkError};
use futures::future::BoxFuture;
use hoist_proto::agent::Protocol;
use nftables::schema::Nftables;
use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::Arc;

/// A container's address on the bridge, with what goes with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Address {
    pub ip: Ipv4Addr,
    pub prefix_len: u8,
    /// The default route's next hop: the bridge's address.
    pub gateway: Ipv4Addr,
}

/// A published port as our table holds it: protocol, host port, and the owning container id
/// (the element's comment).
pub type PortElement = (Protocol, u16, String);

/// Network namespaces and their links.
pub trait Links: Send + Sync + std::fmt::Debug {
    /// Pins a new namespace at `path` (which must not exist) whose `eth0` is a veth on the
    /// bridge, up with `addr` (and the MAC derived from it), with a default route via the
    /// gateway. On failure the file may be left pinned: [`Links::remove`] takes it away.
    fn bridged<'a>(
        &'a self,
        path: &'a Path,
        addr: Address,
    ) -> BoxFuture<'a, Result<(), NetworkError>>;
    /// Unmounts and deletes a netns file; the namespace, and its veth, go once nothing uses it.
    /// Missing or unmounted files are fine (idempotent). Blocking but fast.
    fn remove(&self, path: &Path) -> Result<(), NetworkError>;
    /// Replaces, in the background, warm namespaces the calls above used. Called once an attach
    /// is done, so that building them does not compete with it for the CPU.
    fn refill(&self);
}

/// Our nftables table, and kernel settings, in the host's network namespace.
pub trait Nft: Send + Sync + std::fmt::Debug {
    /// Writes `sysctls`, then applies `batch` atomically (all of it or nothing). `op` names the
    /// change in errors ("publish ports").
    fn apply(
        &self,
        op: &'static str,
        sysctls: Vec<Sysctl>,
        batch: Nftables<'static>,
    ) -> BoxFuture<'_, Result<(), NetworkError>>;
    /// The published ports in `table`; an absent table has none.
    fn list_ports<'a>(
        &'a self,
        table: &'a str,
    ) -> BoxFuture<'a, Result<BTreeSet<PortElement>, NetworkError>>;
}

/// A kernel setting under `/proc/sys`, written in the host's namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sysctl {
    /// The path below `/proc/sys`: `net/ipv4/ip_forward`.
    pub key: String,
    pub value: &'static str,
}

impl Sysctl {
    /// `net.ipv4.ip_forward=1`: published ports and outbound NAT forward packets.
    pub fn forwarding() -> Self {
        Sysctl {
            key: "net/ipv4/ip_forward".into(),
            value: "1",
        }
    }

    /// `route_localnet` on the bridge: lets `localhost:PORT` be DNATed out through it (`nft.rs`).
    pub fn route_localnet(bridge: &str) -> Self {
        Sysctl {
            key: format!("net/ipv4/conf/{bridge}/route_localnet"),
            value: "1",
        }
    }

    /// Writes it in the calling thread's network namespace.
    fn write(&self) -> Result<(), NetworkError> {
        let path = format!("/proc/sys/{}", self.key);
        std::fs::write(&path, self.value).map_err(|e| NetworkError::io("write", path, e))
    }
}

/// The real [`Links`]: the host's bridge, and namespaces kept warm with their veth (`pool.rs`).
#[derive(Debug)]
pub struct HostLinks {
    pub(super) pool: Arc<pool::Pool>,
}

impl HostLinks {
    /// Opens the long-lived netlink connection and makes sure `bridge` exists, is up and carries
    /// the subnet's gateway address; `warm` namespaces of each kind are kept ready once
    /// [`Links::refill`] is first called. Call it in the agent's (host) namespace.
    pub async fn new(
        bridge: &str,
        subnet: Ipv4Subnet,
        mtu: Option<u32>,
        warm: usize,
    ) -> Result<Self, NetworkError> {
        let (conn, host, _) = rtnetlink::new_connection()
            .map_err(|e| NetworkError::io("open netlink socket for", bridge, e))?;
        tokio::spawn(conn);
        let bridge_index = bridge::ensure(&host, bridge, subnet, mtu).await?;
        Ok(HostLinks {
            pool: pool::Pool::new(host, bridge_index, mtu, warm),
        })
    }
}

impl Links for HostLinks {
    fn bridged<'a>(
        &'a self,
        path: &'a Path,
        addr: Address,
    ) -> BoxFuture<'a, Result<(), NetworkError>> {
        Box::pin(async move {
            let ready = match self.pool.take() {
                Some(warm) => {
                    netns::adopt(&warm.fd, path)?;
                    warm
                }
                None => self.pool.build(Some(path)).await?,
            };
            let pool::Ready {
                fd,
                mut conn,
                handle,
                eth0,
            } = ready;
            let configure =
                veth::configure_container(&handle, eth0, addr.ip, addr.prefix_len, addr.gateway);
            // Drive the netns connection only for as long as we need it; dropping it (and `fd`)
            // afterwards leaves the bind mount as the namespace's only anchor.
            let res = tokio::select! {
                res = configure => res,
                () = &mut conn => Err(pool::closed()),
            };
            drop(fd);
            res
        })
    }

    fn remove(&self, path: &Path) -> Result<(), NetworkError> {
        netns::remove(path)
    }

    fn refill(&self) {
        self.pool.refill();
    }
}

/// The real [`Nft`]: runs `nft` and writes sysctls on a throwaway thread in the namespace the
/// agent started in (`netns::run_in`), so callers may be on any runtime thread.
#[derive(Debug)]
pub struct HostNft {
    host_ns: OwnedFd,
}

impl HostNft {
    /// Works in the calling thread's network namespace (the agent's host namespace).
    pub fn new() -> Result<Self, NetworkError> {
        Ok(HostNft {
            host_ns: netns::open_current()?,
        })
    }
}

impl Nft for HostNft {
    fn apply(
        &self,
        op: &'static str,
        sysctls: Vec<Sysctl>,
        batch: Nftables<'static>,
    ) -> BoxFuture<'_, Result<(), NetworkError>> {
        if sysctls.is_empty() && batch.objects.is_empty() {
            return Box::pin(async { Ok(()) });
        }
        Box::pin(netns::run_in(&self.host_ns, op, move || {
            for s in &sysctls {
                s.write()?;
            }
            nft::apply(&batch, op)
        }))
    }

    fn list_ports<'a>(
        &'a self,
        table: &'a str,
    ) -> BoxFuture<'a, Result<BTreeSet<PortElement>, NetworkError>> {
        let owned = table.to_string();
        Box::pin(netns::run_in(&self.host_ns, "list ports", move || {
            nft::list_ports(&owned)
        }))
    }
}
