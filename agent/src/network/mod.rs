//! Container networking on one host: the bridge, a network namespace + veth per container, IPAM,
//! and published ports (nftables DNAT).
//!
//! ```no_run
//! # async fn demo() -> Result<(), hoist_agent::network::NetworkError> {
//! use hoist_agent::network::{Network, NetworkConfig};
//! use hoist_proto::agent::{NetworkMode, PortMapping, Protocol};
//! let net = Network::new(NetworkConfig::new("/var/lib/hoist".as_ref())).await?;
//! let web = [PortMapping { host_port: 8080, container_port: 80, protocol: Protocol::Tcp }];
//! let att = net.attach("web1", NetworkMode::Bridge, &web).await?;
//! // The runtime setns()es the container's init into `att.netns` before exec.
//! net.detach("web1").await?;
//! # Ok(()) }
//! ```
//!
//! Why it looks like this:
//! - Speed: the host's netlink connection is long-lived, and a small pool keeps network
//!   namespaces ready with their veth pair made (`pool.rs`), so a bridge `attach` is a bind mount
//!   plus three netlink requests inside the namespace (eth0 up + address, default route).
//!   Persisting the state (fsync) runs concurrently with that; `nft` is only spawned when ports
//!   are published. A namespace is created by `unshare` on a throwaway thread (`netns.rs`), never
//!   by forking the daemon.
//! - Cleanliness: every step of `attach` is undone on failure. `detach` deletes the netns file and
//!   lets the kernel remove the veth with the namespace (a synchronous veth delete costs 13-33 ms).
//! - Restarts: attachments are persisted (`state_dir/attachments.json`); `detach` and `retain` work
//!   from that file, and published ports are map elements commented with the container id, so
//!   leftovers are found even without it.
//! - Namespaces: a `Network` belongs to the network namespace of the thread that called `new`
//!   (the agent's host namespace). Everything that must run there (`nft`, sysctls) runs on a
//!   throwaway thread that `setns`es into it, so callers may use any runtime thread.
//! - Seams: the kernel is reached only through two traits (`kernel.rs`): `Links` (namespaces and
//!   veth, netlink) and `Nft` (our table and sysctls). `Network::with_kernel` takes any; tests
//!   pass recording fakes (`crate::testing`), so IPAM, port tables, validation, the state file
//!   and every undo run for real without root.
//! - The bridge has a fixed MAC (`bridge.rs`), so the gateway's MAC does not change when
//!   containers come and go.
//! - Published ports work from other hosts, from the host to its own addresses, and on
//!   `127.0.0.1` (kube-proxy style, with a guard against CVE-2020-8558; see `nft.rs`).
//!
//! Contract: calls for different containers may run concurrently; calls for the same container id
//! must not overlap (the agent serializes a container's lifecycle anyway). Call `retain` once
//! after start, before new attaches.
//!
//! Docker hosts: Docker Engine loads `br_netfilter` and sets the iptables FORWARD policy to DROP.
//! We accept our bridge's traffic in our own `forward` chain, but an accept in our table cannot
//! override a drop in Docker's; see `nft.rs` for what to add there.

mod attach;
mod bridge;
mod detach;
mod error;
mod ipam;
mod kernel;
pub mod kind;
mod netns;
mod nft;
mod pool;
mod portmap;
pub(crate) mod state;
mod subnet;
pub mod tool;
mod veth;

#[cfg(test)]
mod tests;

pub use error::NetworkError;
pub use ipam::Ipam;
pub use kernel::{Address, HostLinks, HostNft, Links, Nft, PortElement, Sysctl};
pub use netns::set_loopback_up;
pub use portmap::PortTable;
pub use subnet::Ipv4Subnet;

use serde::{Deserialize, Serialize};
use state::{PersistedState, Record};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard};

/// Namespaces kept warm (with their veth) for fast bridge attaches.
const WARM_NETNS: usize = 2;

/// How the agent's networking is set up (agent options).
#[derive(Debug, Clone)]
pub struct NetworkConfig {
    /// Bridge name, default `hoist0`.
    pub bridge: String,
    /// Container subnet, default `10.89.0.0/24`; the gateway (first host address) goes on the bridge.
    pub subnet: Ipv4Subnet,
    /// Outbound NAT from the subnet; default off.
    pub masquerade: bool,
    /// MTU of the bridge and the containers' interfaces (the overlay's, on a cluster node);
    /// `None` keeps the kernel's default.
    pub mtu: Option<u32>,
    /// The host routes its containers' traffic to other hosts (the overlay): forwarding on from
    /// the start.
    pub forward: bool,
    /// `DATA_DIR/network`: the persisted attachments.
    pub state_dir: PathBuf,
    /// `DATA_DIR/netns`: one bind-mounted netns file per container.
    pub netns_dir: PathBuf,
}

impl NetworkConfig {
    /// The defaults, with state under `data_dir`.
    pub fn new(data_dir: &Path) -> Self {
        NetworkConfig {
            bridge: "hoist0".into(),
            subnet: Ipv4Subnet::default(),
            masquerade: false,
            mtu: None,
            forward: false,
            state_dir: data_dir.join("network"),
            netns_dir: data_dir.join("netns"),
        }
    }
}

/// What the runtime needs to start a container: the netns to `setns` into and, in bridge mode,
/// the address it got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// `None` in host mode.
    pub netns: Option<PathBuf>,
    /// The container's address on `eth0` (bridge mode only).
    pub ip: Option<Ipv4Addr>,
    /// Its default route (bridge mode only).
    pub gateway: Option<Ipv4Addr>,
    /// Prefix length of `ip` (0 without an address).
    pub prefix_len: u8,
}

/// In-memory view; IPAM and port owners are derived from `records`.
#[derive(Debug)]
struct Inner {
    records: BTreeMap<String, Record>,
    ipam: Ipam,
    ports: PortTable,
    /// Bumped on every change of `records` (what the state file must catch up with).
    generation: u64,
}

/// The host's container network. Cheap to share behind an `Arc`; all methods take `&self`.
pub struct Network {
    cfg: NetworkConfig,
    table: String,
    /// The kernel edges: namespaces and veth, nftables and sysctls (`kernel.rs`).
    links: Arc<dyn Links>,
    nft: Arc<dyn Nft>,
    inner: Mutex<Inner>,
    persist_lock: tokio::sync::Mutex<()>,
    /// The newest `generation` the state file holds.
    durable: std::sync::atomic::AtomicU64,
    forwarding_on: AtomicBool,
}

impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Network")
            .field("cfg", &self.cfg)
            .field("table", &self.table)
            .field("links", &self.links)
            .field("nft", &self.nft)
            .finish_non_exhaustive()
    }
}

impl Network {
    /// Idempotent: ensures the bridge (up, gateway address), our nftables table, and loads the
    /// persisted attachments. Call it on a thread in the agent's (host) network namespace.
    pub async fn new(cfg: NetworkConfig) -> Result<Self, NetworkError> {
        let b = &cfg.bridge;
        if b.is_empty() || b.len() > 15 || b.contains('/') || b.chars().any(char::is_whitespace) {
            return Err(NetworkError::InvalidBridgeName { name: b.clone() });
        }
        let nft = HostNft::new()?;
        let links = HostLinks::new(&cfg.bridge, cfg.subnet, cfg.mtu, WARM_NETNS).await?;
        Self::with_kernel(cfg, Arc::new(links), Arc::new(nft)).await
    }

    /// The network over the given kernel edges: the host's ([`Network::new`]) or fakes
    /// (`crate::testing`). Loads the persisted attachments and sets up our nftables table with
    /// their ports (in case the table was lost).
    pub async fn with_kernel(
        cfg: NetworkConfig,
        links: Arc<dyn Links>,
        nft: Arc<dyn Nft>,
    ) -> Result<Self, NetworkError> {
        for dir in [&cfg.state_dir, &cfg.netns_dir] {
            std::fs::create_dir_all(dir)
                .map_err(|e| NetworkError::io("create directory", dir, e))?;
        }
        let persisted = state::load(&cfg.state_dir)?;
        let inner = rebuild(cfg.subnet, persisted.attachments);
        let table = nft::table_name(&cfg.bridge);

        // The table, plus the elements of every persisted attachment (in case the table was lost).
        let mut batch = nft::setup(&table, &cfg.bridge, cfg.subnet, cfg.masquerade)
            .objects
            .into_owned();
        for (id, rec) in &inner.records {
            if let (Some(ip), false) = (rec.attachment.ip, rec.ports.is_empty()) {
                batch.extend(
                    nft::add_ports(&table, id, ip, &rec.ports)
                        .objects
                        .into_owned(),
                );
            }
        }
        // Forwarding is needed for published ports (and outbound NAT); turn it on now if the
        // persisted attachments publish any, else on the first publish.
        let forwarding =
            cfg.masquerade || cfg.forward || inner.records.values().any(|r| !r.ports.is_empty());
        let mut sysctls = Vec::new();
        if forwarding {
            sysctls.push(Sysctl::forwarding());
        }
        sysctls.push(Sysctl::route_localnet(&cfg.bridge));
        let batch = nftables::schema::Nftables {
            objects: batch.into(),
        };
        nft.apply("set up table", sysctls, batch).await?;
        links.refill();

        Ok(Network {
            cfg,
            table,
            links,
            nft,
            inner: Mutex::new(inner),
            persist_lock: tokio::sync::Mutex::new(()),
            durable: Default::default(),
            forwarding_on: AtomicBool::new(forwarding),
        })
    }

    /// The attachment of container `id`, if it is attached in bridge or none mode (also right after
    /// a restart, from the persisted state).
    pub fn attachment(&self, id: &str) -> Option<Attachment> {
        self.lock().records.get(id).map(|r| r.attachment.clone())
    }

    /// The configuration this network was created with.
    pub fn config(&self) -> &NetworkConfig {
        &self.cfg
    }

    /// The addresses handed out, lowest first.
    pub fn addresses(&self) -> Vec<Ipv4Addr> {
        self.lock().ipam.allocated().collect()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave `Inner` half-updated (no await, no I/O inside).
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn netns_path(&self, id: &str) -> PathBuf {
        self.cfg.netns_dir.join(id)
    }

    /// Drops `id` from memory: record, address, ports.
    fn forget(&self, id: &str) {
        let mut inner = self.lock();
        if let Some(rec) = inner.records.remove(id) {
            inner.generation += 1;
            if let Some(ip) = rec.attachment.ip {
                inner.ipam.release(ip);
            }
        }
        inner.ports.release(id);
    }

    /// Makes the records durable as of this call. Concurrent calls are group-committed: each
    /// write holds the records as of when it got the lock, and a caller whose change an earlier
    /// write already holds returns without writing (starting many containers at once costs a
    /// few `fdatasync`s, not one each).
    async fn persist(&self) -> Result<(), NetworkError> {
        use std::sync::atomic::Ordering;
        let wanted = self.lock().generation;
        let _guard = self.persist_lock.lock().await;
        if self.durable.load(Ordering::Acquire) >= wanted {
            return Ok(());
        }
        let (bytes, generation) = {
            let inner = self.lock();
            let bytes = state::encode(&PersistedState {
                version: state::STATE_VERSION,
                attachments: inner.records.clone(),
            });
            (bytes, inner.generation)
        };
        let dir = self.cfg.state_dir.clone();
        tokio::task::spawn_blocking(move || state::write_atomic(&dir, &bytes))
            .await
            .map_err(|_| NetworkError::ThreadPanicked {
                what: "state write".into(),
            })??;
        self.durable.fetch_max(generation, Ordering::AcqRel);
        Ok(())
    }
}

/// Rebuilds the in-memory view from persisted records.
fn rebuild(subnet: Ipv4Subnet, records: BTreeMap<String, Record>) -> Inner {
    let ips = records.values().filter_map(|r| r.attachment.ip);
    let (ipam, rejected) = Ipam::from_allocated(subnet, ips);
    for ip in rejected {
        tracing::warn!(%ip, %subnet, "persisted address is outside the subnet or duplicated; ignored");
    }
    let mut ports = PortTable::default();
    for (id, rec) in &records {
        if let Err(e) = ports.claim(id, &rec.ports) {
            tracing::warn!(container = %id, error = %e, "persisted port conflict; ignored");
        }
    }
    Inner {
        records,
        ipam,
        ports,
        generation: 0,
    }
}

/// Container ids become file names: keep them boring.
pub(crate) fn validate_id(id: &str) -> Result<(), NetworkError> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id != "."
        && id != ".."
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(NetworkError::InvalidId { id: id.to_string() })
    }
}
