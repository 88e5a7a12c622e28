//! The tunnel device: the [`Tunnel`] seam and [`HostTunnel`], the real one (kernel WireGuard
//! where it exists, else the embedded userspace device in its own helper process), configured
//! through wireguard-control (netlink for the kernel, the UAPI socket for userspace) and wired
//! with rtnetlink (link up, MTU, the cluster CIDR's route).

use super::{OverlayError, PeerChange, PeerState};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use wireguard_control::{Backend, Device, DeviceUpdate, InterfaceName, Key, PeerConfigBuilder};

/// How the device must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunnelConfig {
    pub interface: String,
    pub listen_port: u16,
    /// Base64; never logged.
    pub private_key: String,
    pub mtu: u32,
    /// Routed into the device (the node's own subnet is more specific and stays on the bridge).
    pub cluster_cidr: ipnet::Ipv4Net,
    /// The route's source address: this node's gateway, inside its subnet, so that a peer's
    /// cryptokey routing accepts what the host itself sends (probes, DNS).
    pub source: Ipv4Addr,
}

/// Everything the overlay does to the kernel and the device. Blocking calls: run them off the
/// async runtime.
pub trait Tunnel: Send + Sync + std::fmt::Debug {
    /// Makes the device exist (adopting a running one), up, with `cfg`'s key, port and MTU, and
    /// the cluster CIDR routed into it.
    fn ensure(&self, cfg: &TunnelConfig) -> Result<(), OverlayError>;
    /// The peers the device has, with their handshake and byte counts.
    fn peers(&self, interface: &str) -> Result<Vec<PeerState>, OverlayError>;
    /// Applies the changes in one configuration request.
    fn update_peers(&self, interface: &str, changes: &[PeerChange]) -> Result<(), OverlayError>;
    /// The MTU of the interface that holds `ip`, if any does.
    fn underlay_mtu(&self, ip: IpAddr) -> Option<u32>;
}

/// The host's tunnel.
#[derive(Debug, Default)]
pub struct HostTunnel {
    /// The backend in use, once found.
    backend: Mutex<Option<Backend>>,
}

fn iface(name: &str) -> Result<InterfaceName, OverlayError> {
    name.parse()
        .map_err(|e| OverlayError::Invalid(format!("WireGuard interface {name:?}: {e}")))
}

fn key(b64: &str) -> Result<Key, OverlayError> {
    Key::from_base64(b64)
        .map_err(|_| OverlayError::Invalid(format!("{b64:?} is not a WireGuard key")))
}

/// Runs a netlink conversation on a connection of the calling thread's namespace.
fn netlink<T>(
    what: &str,
    f: impl AsyncFnOnce(&rtnetlink::Handle) -> Result<T, rtnetlink::Error>,
) -> Result<T, OverlayError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(OverlayError::io("start a netlink runtime"))?;
    rt.block_on(async {
        let (conn, handle, _) =
            rtnetlink::new_connection().map_err(OverlayError::io("open a netlink socket"))?;
        let task = tokio::spawn(conn);
        let r = f(&handle).await;
        task.abort();
        r.map_err(|e| OverlayError::Invalid(format!("{what}: {e}")))
    })
}

impl HostTunnel {
    pub fn new() -> HostTunnel {
        HostTunnel::default()
    }

    /// The backend of a device that already exists, if one does.
    fn existing(name: &InterfaceName) -> Option<Backend> {
        if Device::get(name, Backend::Kernel).is_ok() {
            return Some(Backend::Kernel);
        }
        // Only after the socket answers: wireguard-control's userspace `apply` would otherwise
        // try to start `wireguard-go` by itself.
        Device::get(name, Backend::Userspace)
            .is_ok()
            .then_some(Backend::Userspace)
    }

    /// Makes the device: the kernel's, or the embedded userspace one in `hoist-agent __wg`.
    fn create(name: &InterfaceName) -> Result<Backend, OverlayError> {
        match DeviceUpdate::new().apply(name, Backend::Kernel) {
            Ok(()) => {
                tracing::info!(interface = %name, "overlay device: kernel WireGuard");
                return Ok(Backend::Kernel);
            }
            Err(e) => {
                tracing::debug!(interface = %name, "no kernel WireGuard ({e}); using the embedded userspace device")
            }
        }
        super::helper::spawn(&name.to_string())?;
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if Device::get(name, Backend::Userspace).is_ok() {
                tracing::info!(interface = %name, "overlay device: embedded userspace WireGuard (hoist-agent __wg)");
                return Ok(Backend::Userspace);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(OverlayError::Invalid(format!(
            "the userspace WireGuard device {name} did not answer on its UAPI socket within 5 s"
        )))
    }

    fn backend(&self, name: &InterfaceName) -> Result<Backend, OverlayError> {
        let mut slot = self.backend.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(b) = *slot {
            if Device::get(name, b).is_ok() {
                return Ok(b);
            }
            tracing::warn!(interface = %name, "the overlay device vanished; making it again");
        }
        let b = match Self::existing(name) {
            Some(b) => {
                if slot.is_none() {
                    tracing::info!(interface = %name, ?b, "adopted the running overlay device");
                }
                b
            }
            None => Self::create(name)?,
        };
        *slot = Some(b);
        Ok(b)
    }
}

impl Tunnel for HostTunnel {
    fn ensure(&self, cfg: &TunnelConfig) -> Result<(), OverlayError> {
        let name = iface(&cfg.interface)?;
        let backend = self.backend(&name)?;
        let dev = Device::get(&name, backend)
            .map_err(OverlayError::io(format!("read WireGuard device {name}")))?;
        let private = key(&cfg.private_key)?;
        // The port only when it differs: setting it reopens the device's UDP sockets, which
        // drops what is in flight. The key whenever the device does not show it as ours (the
        // userspace device never shows it; setting the same key again is a no-op there).
        let mut update = DeviceUpdate::new();
        let mut needed = false;
        if dev.private_key.as_ref() != Some(&private) {
            update = update.set_private_key(private);
            needed = true;
        }
        if dev.listen_port != Some(cfg.listen_port) {
            update = update.set_listen_port(cfg.listen_port);
            needed = true;
        }
        if needed {
            update
                .apply(&name, backend)
                .map_err(OverlayError::io(format!(
                    "set the key and port {} of {name}",
                    cfg.listen_port
                )))?;
        }
        let (ifname, mtu, cidr, source) =
            (cfg.interface.clone(), cfg.mtu, cfg.cluster_cidr, cfg.source);
        netlink(
            &format!("wire {ifname}"),
            async move |h: &rtnetlink::Handle| {
                use futures::TryStreamExt;
                let mut links = h.link().get().match_name(ifname.clone()).execute();
                let Some(link) = links.try_next().await? else {
                    return Ok(());
                };
                let index = link.header.index;
                h.link()
                    .change(
                        rtnetlink::LinkUnspec::new_with_index(index)
                            .up()
                            .mtu(mtu)
                            .build(),
                    )
                    .execute()
                    .await?;
                let route = rtnetlink::RouteMessageBuilder::<Ipv4Addr>::new()
                    .destination_prefix(cidr.network(), cidr.prefix_len())
                    .output_interface(index)
                    .pref_source(source)
                    .build();
                h.route().add(route).replace().execute().await
            },
        )
    }

    fn peers(&self, interface: &str) -> Result<Vec<PeerState>, OverlayError> {
        let name = iface(interface)?;
        let backend = self.backend(&name)?;
        let dev = Device::get(&name, backend)
            .map_err(OverlayError::io(format!("read WireGuard device {name}")))?;
        Ok(dev
            .peers
            .into_iter()
            .map(|p| {
                let mut allowed: Vec<String> = p
                    .config
                    .allowed_ips
                    .iter()
                    .map(|a| format!("{}/{}", a.address, a.cidr))
                    .collect();
                allowed.sort();
                PeerState {
                    public_key: p.config.public_key.to_base64(),
                    endpoint: p.config.endpoint,
                    allowed_ips: allowed,
                    last_handshake: p.stats.last_handshake_time,
                    rx_bytes: p.stats.rx_bytes,
                    tx_bytes: p.stats.tx_bytes,
                }
            })
            .collect())
    }

    fn update_peers(&self, interface: &str, changes: &[PeerChange]) -> Result<(), OverlayError> {
        let name = iface(interface)?;
        let backend = self.backend(&name)?;
        let mut update = DeviceUpdate::new();
        for c in changes {
            update = match c {
                PeerChange::Upsert {
                    public_key,
                    endpoint,
                    allowed_ip,
                } => update.add_peer(
                    PeerConfigBuilder::new(&key(public_key)?)
                        .set_endpoint(*endpoint)
                        .replace_allowed_ips()
                        .add_allowed_ip(IpAddr::V4(allowed_ip.network()), allowed_ip.prefix_len())
                        .set_persistent_keepalive_interval(25),
                ),
                PeerChange::Remove { public_key } => update.remove_peer_by_key(&key(public_key)?),
            };
        }
        update
            .apply(&name, backend)
            .map_err(OverlayError::io(format!("update the peers of {name}")))
    }

    fn underlay_mtu(&self, ip: IpAddr) -> Option<u32> {
        netlink(
            "read the underlay MTU",
            async move |h: &rtnetlink::Handle| {
                use futures::TryStreamExt;
                use rtnetlink::packet_route::address::AddressAttribute;
                use rtnetlink::packet_route::link::LinkAttribute;
                let mut addrs = h.address().get().execute();
                let mut index = None;
                while let Some(a) = addrs.try_next().await? {
                    if a.attributes
                        .iter()
                        .any(|at| matches!(at, AddressAttribute::Address(x) if *x == ip))
                    {
                        index = Some(a.header.index);
                        break;
                    }
                }
                let Some(index) = index else { return Ok(None) };
                let mut links = h.link().get().match_index(index).execute();
                let Some(link) = links.try_next().await? else {
                    return Ok(None);
                };
                Ok(link.attributes.iter().find_map(|at| match at {
                    LinkAttribute::Mtu(m) => Some(*m),
                    _ => None,
                }))
            },
        )
        .ok()
        .flatten()
    }
}
