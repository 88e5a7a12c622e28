//! The overlay: this host's end of the cluster-wide WireGuard mesh.
//!
//! Every node gets a subnet of the cluster CIDR from the controller; its bridge and containers
//! use it, and one route sends the rest of the CIDR into the tunnel device, where WireGuard's
//! cryptokey routing picks the peer whose subnet holds the destination. The controller hands
//! every agent the peer list (key, endpoint, subnet, generation) with its assignments, so peers
//! converge without gossip: whole once, then only the peers changed since the one the agent
//! holds (`worker/held_overlay.rs`). The agent applies the difference to its device (never a
//! full replace, which would reset every session).
//!
//! Why it looks like this:
//! - The private key is made here and never leaves the host (`keys.rs`, `DATA_DIR/overlay/`,
//!   mode 0600); only the public key is registered.
//! - The kernel's WireGuard is used where `ip link add type wireguard` works; otherwise the
//!   device is an embedded userspace implementation (gotatun) in a small process of its own,
//!   `hoist-agent __wg IFACE` (`helper.rs`), started detached like a container's supervisor. The
//!   agent configures either through the standard UAPI (wireguard-control), so `wg show` works,
//!   and re-adopts a running helper after a restart or an upgrade: the data plane never stops
//!   with the agent.
//! - MTU: the tunnel's is the underlay's minus WireGuard's 80 bytes, and the bridge and every
//!   container interface get the same, so no TCP flow black-holes on a full-size segment.
//! - Seam: everything that touches the kernel or the device is the [`Tunnel`] trait; the diff
//!   of peers ([`mod@plan`]) is pure.

pub mod helper;
pub mod keys;
pub mod plan;
pub mod probe;
pub mod state;
pub mod tunnel;

pub use plan::{plan, PeerChange, PeerState};
pub use tunnel::{HostTunnel, Tunnel, TunnelConfig};

use hoist_proto::node::Overlay as OverlayView;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Errors of the overlay, each naming what it was doing.
#[derive(Debug, thiserror::Error)]
pub enum OverlayError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

impl OverlayError {
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> OverlayError {
        let what = what.into();
        move |source| OverlayError::Io { what, source }
    }
}

/// What the agent was started with (`--wg-interface`, `--wg-port`) and what it knows of itself.
#[derive(Debug, Clone)]
pub struct OverlayConfig {
    pub interface: String,
    pub listen_port: u16,
    /// This host's address on the underlay (its advertise address): its endpoint's IP and where
    /// the underlay MTU is read.
    pub underlay_ip: Option<std::net::IpAddr>,
}

/// The overlay of this node: applies each view the controller sends.
#[derive(Debug)]
pub struct Overlay {
    cfg: OverlayConfig,
    tunnel: Arc<dyn Tunnel>,
    keys: keys::KeyPair,
    views: watch::Sender<Option<OverlayView>>,
    /// Probe results per peer node (see `probe.rs`).
    probes: Mutex<probe::Probes>,
    /// Why the last apply failed, if it did.
    problem: Mutex<Option<String>>,
}

impl Overlay {
    pub fn new(cfg: OverlayConfig, keys: keys::KeyPair, tunnel: Arc<dyn Tunnel>) -> Arc<Overlay> {
        Arc::new(Overlay {
            cfg,
            tunnel,
            keys,
            views: watch::channel(None).0,
            probes: Mutex::new(probe::Probes::default()),
            problem: Mutex::new(None),
        })
    }

    /// The base64 public key to register.
    pub fn public_key(&self) -> String {
        self.keys.public_base64()
    }

    pub fn config(&self) -> &OverlayConfig {
        &self.cfg
    }

    /// The MTU containers on the overlay get: the underlay's minus WireGuard's overhead.
    pub fn mtu(&self) -> u32 {
        let underlay = self
            .cfg
            .underlay_ip
            .and_then(|ip| self.tunnel.underlay_mtu(ip))
            .unwrap_or(1500);
        underlay
            .saturating_sub(hoist_proto::overlay::WG_OVERHEAD)
            .max(1280)
    }

    /// The views as they come (the routing mesh follows the peers too).
    pub fn subscribe(&self) -> watch::Receiver<Option<OverlayView>> {
        self.views.subscribe()
    }

    /// Hands the newest view to the apply loop (a newer one replaces one not applied yet).
    pub fn offer(&self, view: OverlayView) {
        self.views.send_if_modified(|cur| {
            if cur.as_ref() == Some(&view) {
                false
            } else {
                *cur = Some(view);
                true
            }
        });
    }

    /// Applies views as they come, and again every few seconds (a helper that died is
    /// restarted, a peer whose update failed is retried).
    pub async fn run(self: Arc<Self>) {
        let mut rx = self.views.subscribe();
        let mut failures = 0u32;
        loop {
            let view = rx.borrow_and_update().clone();
            if let Some(view) = view {
                let me = self.clone();
                let r = tokio::task::spawn_blocking(move || me.apply(&view)).await;
                match r {
                    Ok(Ok(())) => {
                        if failures > 0 {
                            tracing::info!("overlay wired again");
                        }
                        failures = 0;
                        *lock(&self.problem) = None;
                    }
                    Ok(Err(e)) => {
                        failures += 1;
                        *lock(&self.problem) = Some(e.to_string());
                        if failures == 1 || failures.is_multiple_of(20) {
                            tracing::warn!(failures, "wiring the overlay: {e}");
                        }
                    }
                    Err(e) => tracing::warn!("overlay apply panicked: {e}"),
                }
            }
            let every = if failures > 0 {
                Duration::from_millis(500)
            } else {
                Duration::from_secs(3)
            };
            tokio::select! {
                r = rx.changed() => if r.is_err() { return },
                _ = tokio::time::sleep(every) => {}
            }
        }
    }

    /// Probes every peer through the tunnel every few seconds (a DNS query to its gateway).
    pub async fn probe_loop(self: Arc<Self>) {
        loop {
            tokio::time::sleep(probe::EVERY).await;
            let Some(view) = self.views.borrow().clone() else {
                continue;
            };
            let results = probe::round(&view.peers).await;
            lock(&self.probes).record(&view.peers, results);
        }
    }

    /// What `GET /v1/overlay` answers: the device's peers with their handshakes and bytes, and
    /// the probes' results.
    pub fn status(&self) -> hoist_proto::OverlayStatus {
        let view = self.views.borrow().clone();
        let mut problem = lock(&self.problem).clone();
        let device = match self.tunnel.peers(&self.cfg.interface) {
            Ok(p) => p,
            Err(e) => {
                problem.get_or_insert(format!("the overlay device does not answer: {e}"));
                Vec::new()
            }
        };
        let probes = lock(&self.probes);
        let now = std::time::SystemTime::now();
        let peers = view
            .as_ref()
            .map(|v| v.peers.as_slice())
            .unwrap_or_default()
            .iter()
            .map(|p| {
                let d = device.iter().find(|d| d.public_key == p.public_key);
                let (sent, lost, in_a_row, rtt) = probes.summary(&p.node);
                hoist_proto::PeerStatus {
                    node: p.node.clone(),
                    endpoint: p.endpoint.clone(),
                    subnet: p.subnet.clone(),
                    handshake_age_s: d
                        .and_then(|d| d.last_handshake)
                        .and_then(|t| now.duration_since(t).ok())
                        .map(|a| a.as_secs()),
                    rx_bytes: d.map_or(0, |d| d.rx_bytes),
                    tx_bytes: d.map_or(0, |d| d.tx_bytes),
                    probes_sent: sent,
                    probes_lost: lost,
                    probes_lost_in_a_row: in_a_row,
                    probe_rtt_ms: rtt.map(|r| r.as_secs_f64() * 1000.0),
                }
            })
            .collect();
        hoist_proto::OverlayStatus {
            interface: self.cfg.interface.clone(),
            public_key: self.public_key(),
            listen_port: self.cfg.listen_port,
            subnet: view.as_ref().and_then(|v| v.subnet.clone()),
            cluster_cidr: view.as_ref().map(|v| v.cluster_cidr.clone()),
            problem: problem.or_else(|| {
                view.is_none()
                    .then(|| "no overlay view from the controllers yet".into())
            }),
            peers,
            mesh: None,
        }
    }

    /// One pass: the device, its address plan route, then the peers' difference.
    fn apply(&self, view: &OverlayView) -> Result<(), OverlayError> {
        let Some(subnet) = &view.subnet else {
            return Err(OverlayError::Invalid(view.problem.clone().unwrap_or_else(
                || "the controller has not allocated this node a subnet yet".into(),
            )));
        };
        let subnet: ipnet::Ipv4Net = subnet
            .parse()
            .map_err(|_| OverlayError::Invalid(format!("subnet {subnet:?} from the controller")))?;
        let cidr: ipnet::Ipv4Net = view.cluster_cidr.parse().map_err(|_| {
            OverlayError::Invalid(format!(
                "cluster CIDR {:?} from the controller",
                view.cluster_cidr
            ))
        })?;
        // The route's source: this node's gateway, inside its subnet, so that peers' cryptokey
        // routing accepts what the host itself sends (probes, DNS).
        let gateway = std::net::Ipv4Addr::from(u32::from(subnet.network()) + 1);
        self.tunnel.ensure(&TunnelConfig {
            interface: self.cfg.interface.clone(),
            listen_port: self.cfg.listen_port,
            private_key: self.keys.private_base64(),
            mtu: self.mtu(),
            cluster_cidr: cidr,
            source: gateway,
        })?;
        let current = self.tunnel.peers(&self.cfg.interface)?;
        let changes = plan(&view.peers, &current);
        if !changes.is_empty() {
            tracing::info!(
                interface = %self.cfg.interface,
                changes = changes.len(),
                peers = view.peers.len(),
                "updating overlay peers"
            );
            self.tunnel.update_peers(&self.cfg.interface, &changes)?;
        }
        Ok(())
    }
}
