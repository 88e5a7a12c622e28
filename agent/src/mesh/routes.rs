//! The routing side as data: per peer a neighbour, an fdb entry, routes in the INGRESS table and
//! in the peer's own table, and a policy rule; `ip -batch` / `bridge -batch` lines for a diff or
//! a full resync. Pure.

use super::plan::{mac_text, subnet_index, vx_mac, INGRESS_MARK, PEER_MARK};
use super::{MeshConfig, MeshView};
use crate::network::Ipv4Subnet;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// The routing table of marked ingress connections (also its fwmark).
pub const INGRESS_TABLE: u32 = INGRESS_MARK;
/// Priority of the `fwmark INGRESS lookup INGRESS` rule: after `local` (0), before `main`.
pub const INGRESS_RULE_PRIORITY: u32 = 1000;
/// Priority of every `fwmark PEER|k lookup PEER|k` rule.
pub const PEER_RULE_PRIORITY: u32 = 1001;

/// One peer as the routing side needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerLink {
    pub index: u32,
    pub subnet: Ipv4Subnet,
    pub gateway: Ipv4Addr,
    pub mac: [u8; 6],
}

impl PeerLink {
    pub fn table(&self) -> u32 {
        PEER_MARK | self.index
    }
}

/// Peers by index.
pub type RouteModel = BTreeMap<u32, PeerLink>;

/// A policy rule as `ip -j rule show` lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RuleEntry {
    pub priority: u32,
    pub fwmark: Option<u32>,
    pub table: Option<u32>,
}

/// Lines for `ip -batch -` and `bridge -batch -`. `cleanup` may fail line by line (it removes
/// what may or may not be there); `ip` and `bridge` must all succeed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RouteBatch {
    pub cleanup: Vec<String>,
    pub ip: Vec<String>,
    pub bridge: Vec<String>,
}

impl RouteBatch {
    pub fn is_empty(&self) -> bool {
        self.cleanup.is_empty() && self.ip.is_empty() && self.bridge.is_empty()
    }
}

/// The peers of `view` with a subnet inside the cluster CIDR, other than our own.
pub fn build(cfg: &MeshConfig, view: &MeshView) -> RouteModel {
    let mut m = RouteModel::new();
    for p in &view.peers {
        if p.subnet == cfg.subnet {
            continue;
        }
        let Some(index) = subnet_index(cfg.cluster_cidr, p.subnet) else {
            tracing::warn!(subnet = %p.subnet, cluster = %cfg.cluster_cidr, "mesh peer outside the cluster CIDR; skipped");
            continue;
        };
        let gateway = p.subnet.gateway();
        m.entry(index).or_insert(PeerLink {
            index,
            subnet: p.subnet,
            gateway,
            mac: vx_mac(gateway),
        });
    }
    m
}

fn add_peer(cfg: &MeshConfig, p: &PeerLink, b: &mut RouteBatch, new_rule: bool) {
    let vx = &cfg.vx_iface;
    let (g, t) = (p.gateway, p.table());
    b.ip.push(format!(
        "neigh replace {g} lladdr {} dev {vx} nud permanent",
        mac_text(p.mac)
    ));
    b.ip.push(format!(
        "route replace {} via {g} dev {vx} onlink table {INGRESS_TABLE}",
        p.subnet
    ));
    // The vxlan packet's own route lookup carries the inner packet's mark: without these it
    // would find the vxlan device again ("circular route") and be dropped.
    b.ip.push(format!("route replace throw {g}/32 table {INGRESS_TABLE}"));
    b.ip.push(format!(
        "route replace default via {g} dev {vx} onlink table {t}"
    ));
    b.ip.push(format!("route replace throw {g}/32 table {t}"));
    if new_rule {
        b.ip.push(format!(
            "rule add priority {PEER_RULE_PRIORITY} fwmark {t:#010x} lookup {t}"
        ));
    }
    b.bridge.push(format!(
        "fdb replace {} dev {vx} dst {g} self permanent",
        mac_text(p.mac)
    ));
}

fn remove_peer(cfg: &MeshConfig, p: &PeerLink, b: &mut RouteBatch) {
    let vx = &cfg.vx_iface;
    let (g, t) = (p.gateway, p.table());
    b.ip.push(format!(
        "rule del priority {PEER_RULE_PRIORITY} fwmark {t:#010x} lookup {t}"
    ));
    b.ip.push(format!("route del default table {t}"));
    b.ip.push(format!("route del throw {g}/32 table {t}"));
    b.ip.push(format!("route del {} table {INGRESS_TABLE}", p.subnet));
    b.ip.push(format!("route del throw {g}/32 table {INGRESS_TABLE}"));
    b.ip.push(format!("neigh del {g} dev {vx}"));
    b.bridge
        .push(format!("fdb del {} dev {vx} dst {g} self", mac_text(p.mac)));
}

/// From the applied peers to `new`: removals first, then additions and changes.
pub fn diff(cfg: &MeshConfig, old: &RouteModel, new: &RouteModel) -> RouteBatch {
    let mut b = RouteBatch::default();
    for (k, p) in old {
        match new.get(k) {
            Some(n) if n == p => {}
            _ => remove_peer(cfg, p, &mut b),
        }
    }
    for (k, p) in new {
        if old.get(k) != Some(p) {
            add_peer(cfg, p, &mut b, true);
        }
    }
    b
}

/// Removes our rules found in `existing` and what they point to (best effort), and the
/// neighbours on the vxlan device.
fn cleanup(cfg: &MeshConfig, existing: &[RuleEntry], b: &mut RouteBatch) {
    for r in existing {
        let ours = matches!(r.priority, INGRESS_RULE_PRIORITY | PEER_RULE_PRIORITY)
            && r.fwmark
                .is_some_and(|m| m == INGRESS_MARK || m & 0xff00_0000 == PEER_MARK);
        if !ours {
            continue;
        }
        let mut line = format!("rule del priority {}", r.priority);
        if let Some(m) = r.fwmark {
            line.push_str(&format!(" fwmark {m:#010x}"));
        }
        if let Some(t) = r.table {
            line.push_str(&format!(" lookup {t}"));
            b.cleanup.push(line);
            b.cleanup.push(format!("route flush table {t}"));
        } else {
            b.cleanup.push(line);
        }
    }
    b.cleanup.push(format!("route flush table {INGRESS_TABLE}"));
    b.cleanup.push(format!("neigh flush dev {}", cfg.vx_iface));
}

/// Everything from scratch: clean up `existing` (rules listed before), then the ingress rule
/// and every peer.
pub fn full(cfg: &MeshConfig, existing: &[RuleEntry], new: &RouteModel) -> RouteBatch {
    let mut b = RouteBatch::default();
    cleanup(cfg, existing, &mut b);
    b.ip.push(format!(
        "rule add priority {INGRESS_RULE_PRIORITY} fwmark {INGRESS_MARK:#010x} lookup {INGRESS_TABLE}"
    ));
    for p in new.values() {
        add_peer(cfg, p, &mut b, true);
    }
    b
}

/// Removes our rules and tables (the vxlan device goes separately).
pub fn teardown(cfg: &MeshConfig, existing: &[RuleEntry]) -> RouteBatch {
    let mut b = RouteBatch::default();
    cleanup(cfg, existing, &mut b);
    b
}
