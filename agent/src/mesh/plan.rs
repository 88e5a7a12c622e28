//! The nftables side as data: what our table should hold for a view ([`build`]) and the
//! difference between two such models ([`diff`]). Pure: no I/O.

use super::{MeshConfig, MeshEndpoint, MeshView};
use hoist_proto::agent::Protocol;
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

/// Mark (meta and ct) of a connection DNATed here to a remote backend for a client outside the
/// cluster CIDR: routes through the INGRESS table, i.e. over the vxlan device.
pub const INGRESS_MARK: u32 = 0x4700_0000;
/// Mark of a connection that arrived over vxlan from peer `k`: `PEER_MARK | k`. Its replies are
/// routed back to that peer (table `PEER_MARK | k`).
pub const PEER_MARK: u32 = 0x4800_0000;
/// The mark bits that tell our marks apart; the low 24 bits carry the peer index.
pub const MARK_MASK: u32 = 0xff00_0000;

/// `VIP . proto . port`.
pub type VipKey = (Ipv4Addr, Protocol, u16);
/// `proto . published port`.
pub type PortKey = (Protocol, u16);

/// Everything in our table besides its fixed chains.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NftModel {
    /// Service chains (`svc_*`, `ing_*`) → their rules.
    pub chains: BTreeMap<String, Vec<String>>,
    /// `vips` map: key → chain.
    pub vips: BTreeMap<VipKey, String>,
    /// `vip_all` map: a VIP → the chain for any port its service declares none for (Swarm's
    /// VIP forwards every port: Compose services seldom declare the ports they talk on).
    pub vip_all: BTreeMap<Ipv4Addr, String>,
    /// `ingress` map: key → chain.
    pub ingress: BTreeMap<PortKey, String>,
    /// `nodes` set: peers' underlay addresses.
    pub nodes: BTreeSet<Ipv4Addr>,
    /// `vx_peers` map: a peer's vxlan MAC → `PEER_MARK | k`.
    pub vx_peers: BTreeMap<[u8; 6], u32>,
    /// Services programmed (with at least one chain) and their distinct endpoints, for status.
    pub services: usize,
    pub endpoints: usize,
}

/// The changes that turn one model into another.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NftDiff {
    pub add_chains: Vec<(String, Vec<String>)>,
    /// Chains whose rules changed: flushed and refilled.
    pub change_chains: Vec<(String, Vec<String>)>,
    pub remove_chains: Vec<String>,
    pub del_vips: Vec<VipKey>,
    pub add_vips: Vec<(VipKey, String)>,
    pub del_vip_all: Vec<Ipv4Addr>,
    pub add_vip_all: Vec<(Ipv4Addr, String)>,
    pub del_ingress: Vec<PortKey>,
    pub add_ingress: Vec<(PortKey, String)>,
    pub del_nodes: Vec<Ipv4Addr>,
    pub add_nodes: Vec<Ipv4Addr>,
    pub del_vx_peers: Vec<[u8; 6]>,
    pub add_vx_peers: Vec<([u8; 6], u32)>,
}

impl NftDiff {
    pub fn is_empty(&self) -> bool {
        *self == NftDiff::default()
    }

    pub fn elements_added(&self) -> usize {
        self.add_vips.len()
            + self.add_vip_all.len()
            + self.add_ingress.len()
            + self.add_nodes.len()
            + self.add_vx_peers.len()
    }

    pub fn elements_removed(&self) -> usize {
        self.del_vips.len()
            + self.del_vip_all.len()
            + self.del_ingress.len()
            + self.del_nodes.len()
            + self.del_vx_peers.len()
    }
}

pub fn proto_name(p: Protocol) -> &'static str {
    match p {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
    }
}

/// A name usable in a chain name, injective: a DNS label (`[a-z0-9-]`, not starting with `-`)
/// becomes itself with `-` → `_`; anything else `_` + the hex of its bytes (which no label can
/// give, as no label starts with `-`).
pub fn safe_name(name: &str) -> String {
    let label = !name.is_empty()
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if label {
        name.replace('-', "_")
    } else {
        let mut s = String::from("_");
        for b in name.bytes() {
            s.push_str(&format!("{b:02x}"));
        }
        s
    }
}

/// The MAC of a host's vxlan device, from its gateway address: `02:68:a:b:c:d`.
pub fn vx_mac(gateway: Ipv4Addr) -> [u8; 6] {
    let o = gateway.octets();
    [0x02, 0x68, o[0], o[1], o[2], o[3]]
}

pub fn mac_text(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// A subnet's index in the cluster CIDR, if it lies inside it (and the index fits in 24 bits).
pub fn subnet_index(
    cluster: crate::network::Ipv4Subnet,
    subnet: crate::network::Ipv4Subnet,
) -> Option<u32> {
    if subnet.prefix_len() < cluster.prefix_len() || !cluster.contains(subnet.network()) {
        return None;
    }
    let offset = u32::from(subnet.network()) - u32::from(cluster.network());
    let k = offset >> (32 - u32::from(subnet.prefix_len()));
    (k <= 0x00ff_ffff).then_some(k)
}

/// The rules of a chain that balances over `endpoints`, or rejects: to `address:target` for one
/// declared port (`Some((protocol, target))`), or to the same port of `address` for any port of
/// a VIP (`None`).
fn chain_rules(
    cfg: &MeshConfig,
    port: Option<(Protocol, u16)>,
    endpoints: &[Ipv4Addr],
) -> Vec<String> {
    if endpoints.is_empty() {
        return match port {
            Some((Protocol::Tcp, _)) => vec!["meta l4proto tcp reject with tcp reset".into()],
            Some((Protocol::Udp, _)) => vec!["reject".into()],
            None => vec![
                "meta l4proto tcp reject with tcp reset".into(),
                "reject".into(),
            ],
        };
    }
    // One rule per endpoint, each taking its share of what the rules before it left: endpoint i
    // of N matches with probability 1/(N-i), so every endpoint gets 1/N (kube-proxy's iptables
    // chains do the same). No set per chain: a table of 10,000 services of anonymous maps loads
    // quadratically in the kernel (21 s measured, against 3 s this way).
    let n = endpoints.len();
    let mut rules = vec![format!(
        "ip saddr != {} meta mark set {INGRESS_MARK:#010x} ct mark set {INGRESS_MARK:#010x}",
        cfg.cluster_cidr
    )];
    let (proto, to_port) = match port {
        Some((p, target)) => (
            format!("meta l4proto {} ", proto_name(p)),
            format!(":{target}"),
        ),
        None => (String::new(), String::new()),
    };
    for (i, a) in endpoints.iter().enumerate() {
        if i + 1 < n {
            rules.push(format!(
                "{proto}numgen random mod {} 0 dnat ip to {a}{to_port}",
                n - i
            ));
        } else {
            rules.push(format!("{proto}dnat ip to {a}{to_port}"));
        }
    }
    rules
}

/// What our table should hold for `view`. Duplicates (a service name, a VIP key or a published
/// port seen twice) keep the first one.
pub fn build(cfg: &MeshConfig, view: &MeshView) -> NftModel {
    let mut m = NftModel::default();
    let mut names = BTreeSet::new();
    let mut endpoints_seen = BTreeSet::new();
    for svc in &view.services {
        if !names.insert(svc.name.as_str()) {
            tracing::warn!(service = %svc.name, "service listed twice in the mesh view; keeping the first");
            continue;
        }
        let all: BTreeSet<Ipv4Addr> = svc.endpoints.iter().map(|e| e.address).collect();
        let local: BTreeSet<Ipv4Addr> = svc
            .endpoints
            .iter()
            .filter(|e: &&MeshEndpoint| e.local)
            .map(|e| e.address)
            .collect();
        let all: Vec<Ipv4Addr> = all.into_iter().collect();
        let ingress_eps: Vec<Ipv4Addr> = if local.is_empty() {
            all.clone()
        } else {
            local.into_iter().collect()
        };
        let name = safe_name(&svc.name);
        let mut any = false;
        if let Some(vip) = svc.vip {
            if !m.vip_all.contains_key(&vip) {
                let chain = format!("svc_{name}_all");
                m.chains.insert(chain.clone(), chain_rules(cfg, None, &all));
                m.vip_all.insert(vip, chain);
                any = true;
            }
        }
        for port in &svc.ports {
            let p = proto_name(port.protocol);
            if let Some(vip) = svc.vip {
                let key = (vip, port.protocol, port.target);
                let chain = format!("svc_{name}_{p}_{}", port.target);
                if !m.vips.contains_key(&key) {
                    m.chains.insert(
                        chain.clone(),
                        chain_rules(cfg, Some((port.protocol, port.target)), &all),
                    );
                    m.vips.insert(key, chain);
                    any = true;
                }
            }
            if let Some(published) = port.published {
                if port.protocol == Protocol::Udp && published == super::VXLAN_PORT {
                    tracing::warn!(service = %svc.name, "udp port {published} carries the mesh's vxlan; not published");
                    continue;
                }
                let key = (port.protocol, published);
                let chain = format!("ing_{name}_{p}_{published}");
                if m.ingress.contains_key(&key) {
                    tracing::warn!(service = %svc.name, port = published, "published port already taken in the mesh view; skipping");
                } else {
                    m.chains.insert(
                        chain.clone(),
                        chain_rules(cfg, Some((port.protocol, port.target)), &ingress_eps),
                    );
                    m.ingress.insert(key, chain);
                    any = true;
                }
            }
        }
        if any {
            m.services += 1;
            endpoints_seen.extend(all);
        }
    }
    m.endpoints = endpoints_seen.len();
    let own = cfg.subnet;
    for peer in &view.peers {
        if peer.subnet == own {
            continue;
        }
        m.nodes.insert(peer.underlay);
        if let Some(k) = subnet_index(cfg.cluster_cidr, peer.subnet) {
            m.vx_peers
                .insert(vx_mac(peer.subnet.gateway()), PEER_MARK | k);
        }
    }
    m
}

fn diff_map<K: Ord + Clone, V: PartialEq + Clone>(
    old: &BTreeMap<K, V>,
    new: &BTreeMap<K, V>,
) -> (Vec<K>, Vec<(K, V)>) {
    let mut del = Vec::new();
    let mut add = Vec::new();
    for (k, v) in old {
        match new.get(k) {
            Some(nv) if nv == v => {}
            // A changed value: delete then add (`add element` keeps an existing key's value).
            _ => del.push(k.clone()),
        }
    }
    for (k, v) in new {
        if old.get(k) != Some(v) {
            add.push((k.clone(), v.clone()));
        }
    }
    (del, add)
}

/// The changes from `old` (applied) to `new`.
pub fn diff(old: &NftModel, new: &NftModel) -> NftDiff {
    let mut d = NftDiff::default();
    for (name, rules) in &new.chains {
        match old.chains.get(name) {
            None => d.add_chains.push((name.clone(), rules.clone())),
            Some(r) if r != rules => d.change_chains.push((name.clone(), rules.clone())),
            Some(_) => {}
        }
    }
    d.remove_chains = old
        .chains
        .keys()
        .filter(|n| !new.chains.contains_key(*n))
        .cloned()
        .collect();
    (d.del_vips, d.add_vips) = diff_map(&old.vips, &new.vips);
    (d.del_vip_all, d.add_vip_all) = diff_map(&old.vip_all, &new.vip_all);
    (d.del_ingress, d.add_ingress) = diff_map(&old.ingress, &new.ingress);
    (d.del_vx_peers, d.add_vx_peers) = diff_map(&old.vx_peers, &new.vx_peers);
    d.del_nodes = old.nodes.difference(&new.nodes).copied().collect();
    d.add_nodes = new.nodes.difference(&old.nodes).copied().collect();
    d
}
