//! The per-host data plane of service virtual IPs and the ingress routing mesh.
//!
//! Given a [`MeshView`] (every service's VIP, ports and ready endpoints cluster-wide, and the
//! overlay peers), [`Mesh::apply`] programs this host so that:
//!
//! - a packet to `VIP:port` (tcp/udp) from a local container or the host is DNATed to one of the
//!   service's endpoints, uniformly at random over all of them, local and remote (remote ones
//!   are reached over the overlay as usual: no SNAT, replies come back directly); a port the
//!   service does not declare goes to the same endpoint address and port (map `vip_all`, chain
//!   `svc_NAME_all`), as Swarm's VIPs do: Compose services seldom declare the ports they use
//!   among themselves;
//! - a packet to a published port on any local address (`fib daddr type local`), or on another
//!   node's underlay address (set `@nodes`, so that a local container reaching another node's
//!   published port is balanced here and keeps its own address), is DNATed to a local endpoint if
//!   there is one, else to any endpoint; the backend sees the client's real address;
//! - a service port with no endpoint rejects (tcp reset / icmp port unreachable).
//!
//! ## nftables
//!
//! One table of our own, `ip hoist_mesh` ([`MeshConfig::table`]), never any other:
//! maps `vips` (`ipv4_addr . inet_proto . inet_service : verdict`) and `ingress`
//! (`inet_proto . inet_service : verdict`) jump to one chain per service port
//! (`svc_NAME_PROTO_PORT`, `ing_NAME_PROTO_PUBLISHED`; `plan::safe_name`) holding
//! one rule per endpoint, `numgen random mod (N-i) 0 dnat ip to ADDR:PORT` (the last one
//! unconditional: each endpoint gets 1/N; no set per chain, which would make a table of 10,000
//! services load quadratically), or a reject; the nat `prerouting`
//! (dstnat − 5) and `output` (−105) chains dispatch through the maps. Text syntax (`nft -f -`):
//! nft 1.0.6 cannot read concatenated map types from JSON. Changes are incremental: the last
//! applied model is kept in memory (`plan.rs`, pure) and each apply sends one transaction with
//! only the difference (`script.rs`, pure): new chains, `flush chain` + the new rule for a service
//! port whose endpoints changed, element deletes/adds, then `delete chain` for ports gone. The
//! first apply, and the one after any failure (the kernel state is then unknown), is a full
//! resync: `add table; delete table; table … {…}` in one atomic transaction. A failed
//! transaction leaves the kernel untouched; the old model and the error are kept
//! ([`Mesh::status`]).
//!
//! Hairpin: a container reaching a VIP or published port whose backend is on the same bridge is
//! SNATed to the gateway (`postrouting`), else the backend would answer it directly over the
//! bridge from an address it never connected to (the network module's own table does the same
//! for published ports; the mesh does not rely on it).
//!
//! ## Ingress to a remote backend for an external client
//!
//! WireGuard drops inner packets whose source is not in the sending peer's allowed IPs, and the
//! reply must come back through the ingress host to undo the DNAT. So such connections (client
//! outside the cluster CIDR, DNATed to a remote endpoint) travel in a vxlan device,
//! `hoist-vx0` (VNI [`VXLAN_VNI`], port 4789, `local` = own gateway, `nolearning`, MTU = the
//! overlay's − 50, MAC `02:68:a:b:c:d` from gateway `a.b.c.d`), whose outer packets go
//! gateway → gateway, i.e. inside WireGuard. Per peer `k` (subnet `10.200.k.0/24`, gateway `g`):
//! a permanent neighbour `g → mac(g)`, an fdb entry `mac(g) dst g`, `SUBNET via g dev hoist-vx0
//! onlink table 0x47000000`, `default via g dev hoist-vx0 onlink table 0x48000000|k` and a rule
//! `fwmark 0x48000000|k lookup 0x48000000|k` (priority 1001); plus `fwmark 0x47000000 lookup
//! 0x47000000` (priority 1000). `routes.rs` (pure) makes the `ip -batch`/`bridge -batch` lines.
//!
//! - Ingress host A: the service chain marks (`meta mark` and `ct mark` 0x47000000) a connection
//!   whose source is outside the cluster CIDR, so its first packet routes by the INGRESS table
//!   (the local subnet is not in it: local backends fall through to `main`); `mangle_pre` (and
//!   `mangle_out`, a `route` chain, for host-originated traffic) restores the mark on its later
//!   original-direction packets.
//! - Backend host B: `mangle_pre` sets the ct mark of a new connection arriving on `hoist-vx0`
//!   from the sender's MAC (`@vx_peers`: `mac(g_k) → 0x48000000|k`), and copies it to the meta
//!   mark of reply packets, which the rule routes back into `hoist-vx0` towards A, where
//!   conntrack undoes the DNAT.
//! - `mangle_fwd` clamps the MSS of SYNs leaving through `hoist-vx0` to the route MTU.
//!
//! What the real test (`tests.rs`) found, and the fixes (each shown necessary by removing it):
//! - The vxlan device's own route lookup for its outer packet uses the inner packet's mark, so
//!   with only the routes above it finds `hoist-vx0` again and the kernel drops the packet
//!   ("circular route"). Each of our tables therefore also holds `throw g/32` for the peers'
//!   gateways: the outer packet's lookup falls through to `main` (the overlay route).
//! - Reverse-path filtering: packets arriving on `hoist-vx0` have a source (the external client
//!   on B, the backend on A) whose route does not point back into `hoist-vx0`. The effective
//!   value is the maximum of `all` and the device's, so the device gets 0 when
//!   `net.ipv4.conf.all.rp_filter` is 0, else 2 (loose). In loose mode the kernel also rejects
//!   packets arriving on a device without any IPv4 address, so the device gets the own subnet's
//!   network address as a `/32` (flannel's convention; no container ever has it).
//! - A published udp port 4789 would capture the mesh's own vxlan packets: it is skipped (warned).
//! - A host-originated connection to a VIP needs a route covering the VIP for its first lookup
//!   (normally the default route); its source is then not in the cluster CIDR, so it is marked
//!   like an external client's and a remote backend is reached through vxlan too.

mod host;
pub mod plan;
pub mod routes;
pub mod script;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod unit_tests;

pub use host::HostMesh;
pub use routes::RuleEntry;

use crate::network::Ipv4Subnet;
use routes::RouteModel;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// The vxlan network identifier of the mesh device.
pub const VXLAN_VNI: u32 = 7300;
/// The vxlan UDP port.
pub const VXLAN_PORT: u16 = 4789;
/// vxlan's overhead over IPv4: outer IP 20 + UDP 8 + vxlan 8 + inner Ethernet 14.
pub const VXLAN_OVERHEAD: u32 = 50;

/// Where and what the mesh programs on this host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MeshConfig {
    /// Our nftables table (family `ip`): `hoist_mesh`.
    pub table: String,
    /// The vxlan device: `hoist-vx0`.
    pub vx_iface: String,
    /// The containers' bridge (`hoist0`).
    pub bridge: String,
    /// The cluster CIDR (`10.200.0.0/16`).
    pub cluster_cidr: Ipv4Subnet,
    /// This node's subnet; its gateway is the vxlan device's local address.
    pub subnet: Ipv4Subnet,
    /// The bridge's (overlay's) MTU; the vxlan device gets 50 less.
    pub mtu: u32,
}

/// Everything the mesh should program: the whole desired state.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct MeshView {
    pub services: Vec<MeshService>,
    pub peers: Vec<MeshPeer>,
}

/// A service: its VIP (if it has one), ports and ready endpoints on every node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MeshService {
    /// A DNS label (`[a-z0-9-]`); anything else still works (hex-encoded in chain names).
    pub name: String,
    pub vip: Option<Ipv4Addr>,
    pub ports: Vec<MeshPort>,
    pub endpoints: Vec<MeshEndpoint>,
}

/// A port of a service: `VIP:target` → `endpoint:target`; `published` (ingress mode only) →
/// `endpoint:target` on every node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MeshPort {
    pub protocol: hoist_proto::agent::Protocol,
    pub target: u16,
    pub published: Option<u16>,
}

/// A ready replica's address; `local` when it runs on this node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MeshEndpoint {
    pub address: Ipv4Addr,
    pub local: bool,
}

/// Another node: its overlay subnet and underlay address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MeshPeer {
    pub subnet: Ipv4Subnet,
    pub underlay: Ipv4Addr,
}

/// The mesh's vxlan device as it should be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VxlanSpec {
    pub name: String,
    pub vni: u32,
    pub port: u16,
    /// The outer source address: our gateway.
    pub local: Ipv4Addr,
    /// The device's own address (`/32`): our subnet's network address, which no container gets.
    pub address: Ipv4Addr,
    pub mac: [u8; 6],
    pub mtu: u32,
}

/// The kernel as the mesh reaches it. Errors are the tool's own message.
pub trait MeshKernel: Send + Sync + std::fmt::Debug {
    /// Runs one nft transaction (`nft -f -`, text syntax): all or nothing.
    fn nft(&self, script: &str) -> Result<(), String>;
    /// Makes the vxlan device exist as `spec` says (recreated if its kind, VNI, port or local
    /// address differ), up, with its reverse-path filter set for the mesh.
    fn ensure_vxlan(&self, spec: &VxlanSpec) -> Result<(), String>;
    /// Deletes a link if it exists.
    fn remove_link(&self, name: &str) -> Result<(), String>;
    /// The policy routing rules (`ip -j rule show`).
    fn rules(&self) -> Result<Vec<RuleEntry>, String>;
    /// Runs `ip -batch` lines; `lenient`: a failing line does not stop the others nor fail the call.
    fn ip(&self, lines: &[String], lenient: bool) -> Result<(), String>;
    /// Runs `bridge -batch` lines (fdb entries).
    fn bridge(&self, lines: &[String]) -> Result<(), String>;
}

/// A failure to program the mesh, naming the tool.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MeshError {
    #[error("nft: {0}")]
    Nft(String),
    #[error("ip: {0}")]
    Ip(String),
    #[error("bridge: {0}")]
    Bridge(String),
    #[error("vxlan device: {0}")]
    Vxlan(String),
    #[error("mesh config: {0}")]
    Config(String),
}

/// What an apply did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ApplyStats {
    /// Everything was rewritten (first apply, or after a failure).
    pub full_resync: bool,
    /// Service chains (one per VIP port and per published port) added, refilled, removed.
    pub chains_added: usize,
    pub chains_changed: usize,
    pub chains_removed: usize,
    /// Map and set elements added and deleted (a changed element counts in both).
    pub elements_added: usize,
    pub elements_removed: usize,
    /// Peers whose routes were added or removed.
    pub peers_added: usize,
    pub peers_removed: usize,
    /// Whether anything was sent to the kernel.
    pub changed: bool,
    pub duration_ms: u64,
}

/// For `hoist net doctor` and node status.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct MeshStatus {
    /// The last apply's error; `None` once an apply succeeded.
    pub last_error: Option<String>,
    /// Services and distinct endpoints programmed.
    pub services: usize,
    pub endpoints: usize,
    /// Unix time (ms) of the last successful apply; 0 before the first.
    pub applied_ms: u64,
}

#[derive(Debug, Default)]
struct Applied {
    nft: plan::NftModel,
    routes: RouteModel,
    /// The kernel holds exactly the models above; false at first and after a failure.
    synced: bool,
    last_error: Option<String>,
    applied_ms: u64,
}

/// The mesh of one host.
#[derive(Debug)]
pub struct Mesh {
    cfg: MeshConfig,
    kernel: Arc<dyn MeshKernel>,
    state: Mutex<Applied>,
}

impl Mesh {
    pub fn new(cfg: MeshConfig, kernel: Arc<dyn MeshKernel>) -> Mesh {
        Mesh {
            cfg,
            kernel,
            state: Mutex::new(Applied::default()),
        }
    }

    pub fn config(&self) -> &MeshConfig {
        &self.cfg
    }

    fn vxlan_spec(&self) -> VxlanSpec {
        let local = self.cfg.subnet.gateway();
        VxlanSpec {
            name: self.cfg.vx_iface.clone(),
            vni: VXLAN_VNI,
            port: VXLAN_PORT,
            local,
            address: self.cfg.subnet.network(),
            mac: plan::vx_mac(local),
            mtu: self.cfg.mtu.saturating_sub(VXLAN_OVERHEAD).max(576),
        }
    }

    /// Applies the whole desired view (services and peers); blocking (call from
    /// `spawn_blocking`). Idempotent: an unchanged view sends nothing.
    pub fn apply(&self, view: &MeshView) -> Result<ApplyStats, MeshError> {
        let started = Instant::now();
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let nft_new = plan::build(&self.cfg, view);
        let routes_new = routes::build(&self.cfg, view);
        let result = if st.synced {
            self.incremental(&st, &nft_new, &routes_new)
        } else {
            self.full(&nft_new, &routes_new)
        };
        match result {
            Ok(mut stats) => {
                stats.duration_ms = started.elapsed().as_millis() as u64;
                st.nft = nft_new;
                st.routes = routes_new;
                st.synced = true;
                st.last_error = None;
                st.applied_ms = now_ms();
                Ok(stats)
            }
            Err(e) => {
                tracing::warn!(error = %e, "mesh apply failed; the next apply resyncs fully");
                st.synced = false;
                st.last_error = Some(e.to_string());
                Err(e)
            }
        }
    }

    fn incremental(
        &self,
        st: &Applied,
        nft_new: &plan::NftModel,
        routes_new: &RouteModel,
    ) -> Result<ApplyStats, MeshError> {
        let rb = routes::diff(&self.cfg, &st.routes, routes_new);
        self.run_routes(&rb)?;
        let d = plan::diff(&st.nft, nft_new);
        if !d.is_empty() {
            self.kernel
                .nft(&script::incremental(&self.cfg, &d))
                .map_err(MeshError::Nft)?;
        }
        Ok(ApplyStats {
            full_resync: false,
            chains_added: d.add_chains.len(),
            chains_changed: d.change_chains.len(),
            chains_removed: d.remove_chains.len(),
            elements_added: d.elements_added(),
            elements_removed: d.elements_removed(),
            peers_added: routes_new
                .iter()
                .filter(|(k, p)| st.routes.get(k) != Some(p))
                .count(),
            peers_removed: st
                .routes
                .iter()
                .filter(|(k, p)| routes_new.get(k) != Some(p))
                .count(),
            changed: !d.is_empty() || !rb.is_empty(),
            duration_ms: 0,
        })
    }

    fn full(
        &self,
        nft_new: &plan::NftModel,
        routes_new: &RouteModel,
    ) -> Result<ApplyStats, MeshError> {
        if subnet_check(&self.cfg).is_none() {
            return Err(MeshError::Config(format!(
                "own subnet {} is not inside the cluster CIDR {}",
                self.cfg.subnet, self.cfg.cluster_cidr
            )));
        }
        self.kernel
            .ensure_vxlan(&self.vxlan_spec())
            .map_err(MeshError::Vxlan)?;
        let existing = self.kernel.rules().map_err(MeshError::Ip)?;
        self.run_routes(&routes::full(&self.cfg, &existing, routes_new))?;
        self.kernel
            .nft(&script::full(&self.cfg, nft_new))
            .map_err(MeshError::Nft)?;
        Ok(ApplyStats {
            full_resync: true,
            chains_added: nft_new.chains.len(),
            elements_added: nft_new.vips.len()
                + nft_new.ingress.len()
                + nft_new.nodes.len()
                + nft_new.vx_peers.len(),
            peers_added: routes_new.len(),
            changed: true,
            ..ApplyStats::default()
        })
    }

    fn run_routes(&self, b: &routes::RouteBatch) -> Result<(), MeshError> {
        if !b.cleanup.is_empty() {
            self.kernel.ip(&b.cleanup, true).map_err(MeshError::Ip)?;
        }
        if !b.ip.is_empty() {
            self.kernel.ip(&b.ip, false).map_err(MeshError::Ip)?;
        }
        if !b.bridge.is_empty() {
            self.kernel.bridge(&b.bridge).map_err(MeshError::Bridge)?;
        }
        Ok(())
    }

    /// Removes the table, the vxlan device, our rules and routing tables (agent shutdown is not a
    /// reason to call it; tests and `down` are). The next apply starts from scratch.
    pub fn teardown(&self) -> Result<(), MeshError> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.synced = false;
        st.nft = plan::NftModel::default();
        st.routes = RouteModel::new();
        self.kernel
            .nft(&script::teardown(&self.cfg))
            .map_err(MeshError::Nft)?;
        let existing = self.kernel.rules().map_err(MeshError::Ip)?;
        self.run_routes(&routes::teardown(&self.cfg, &existing))?;
        self.kernel
            .remove_link(&self.cfg.vx_iface)
            .map_err(MeshError::Vxlan)
    }

    /// The last error (None when the last apply succeeded) and what is programmed.
    pub fn status(&self) -> MeshStatus {
        let st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        MeshStatus {
            last_error: st.last_error.clone(),
            services: st.nft.services,
            endpoints: st.nft.endpoints,
            applied_ms: st.applied_ms,
        }
    }
}

/// Our own subnet's index, if the configuration is consistent.
fn subnet_check(cfg: &MeshConfig) -> Option<u32> {
    plan::subnet_index(cfg.cluster_cidr, cfg.subnet)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
