//! nft scripts (text syntax, for `nft -f -`) from the models of `plan.rs`. Pure.
//!
//! nft 1.0.6 wants a newline (or `;`) before a chain's closing brace and cannot parse quoted
//! chain names, hence one statement per line and `plan::safe_name`.

use super::plan::{
    mac_text, proto_name, NftDiff, NftModel, PortKey, VipKey, INGRESS_MARK, MARK_MASK, PEER_MARK,
};
use super::MeshConfig;
use std::fmt::Write;
use std::net::Ipv4Addr;

fn vip_key((ip, p, port): &VipKey) -> String {
    format!("{ip} . {} . {port}", proto_name(*p))
}

fn port_key((p, port): &PortKey) -> String {
    format!("{} . {port}", proto_name(*p))
}

/// The fixed part of our table: sets, maps and the hooked chains.
fn fixed(cfg: &MeshConfig) -> String {
    let (vx, br) = (&cfg.vx_iface, &cfg.bridge);
    let dispatch = "\t\tip daddr . meta l4proto . th dport vmap @vips\n\
                    \t\tip daddr vmap @vip_all\n\
                    \t\tfib daddr type local meta l4proto . th dport vmap @ingress\n\
                    \t\tip daddr @nodes meta l4proto . th dport vmap @ingress\n";
    format!(
        "\tmap vips {{ type ipv4_addr . inet_proto . inet_service : verdict; }}\n\
         \tmap vip_all {{ type ipv4_addr : verdict; }}\n\
         \tmap ingress {{ type inet_proto . inet_service : verdict; }}\n\
         \tset nodes {{ type ipv4_addr; }}\n\
         \tmap vx_peers {{ type ether_addr : mark; }}\n\
         \tchain prerouting {{\n\
         \t\ttype nat hook prerouting priority dstnat - 5; policy accept;\n{dispatch}\t}}\n\
         \tchain output {{\n\
         \t\ttype nat hook output priority -105; policy accept;\n{dispatch}\t}}\n\
         \tchain postrouting {{\n\
         \t\ttype nat hook postrouting priority srcnat - 5; policy accept;\n\
         \t\tiifname \"{br}\" oifname \"{br}\" ct status dnat masquerade\n\
         \t}}\n\
         \tchain mangle_pre {{\n\
         \t\ttype filter hook prerouting priority mangle; policy accept;\n\
         \t\tct direction original ct mark {INGRESS_MARK:#010x} meta mark set ct mark\n\
         \t\tiifname \"{vx}\" ct state new ct mark set ether saddr map @vx_peers\n\
         \t\tct direction reply ct mark & {MARK_MASK:#010x} == {PEER_MARK:#010x} meta mark set ct mark\n\
         \t}}\n\
         \tchain mangle_out {{\n\
         \t\ttype route hook output priority mangle; policy accept;\n\
         \t\tct direction original ct mark {INGRESS_MARK:#010x} meta mark set ct mark\n\
         \t\tct direction reply ct mark & {MARK_MASK:#010x} == {PEER_MARK:#010x} meta mark set ct mark\n\
         \t}}\n\
         \tchain mangle_fwd {{\n\
         \t\ttype filter hook forward priority mangle; policy accept;\n\
         \t\toifname \"{vx}\" tcp flags syn tcp option maxseg size set rt mtu\n\
         \t}}\n"
    )
}

fn add_rules(out: &mut String, table: &str, chain: &str, rules: &[String]) {
    for r in rules {
        let _ = writeln!(out, "add rule ip {table} {chain} {r}");
    }
}

#[allow(clippy::too_many_arguments)]
fn add_elements(
    out: &mut String,
    table: &str,
    vips: &[(VipKey, String)],
    vip_all: &[(Ipv4Addr, String)],
    ingress: &[(PortKey, String)],
    nodes: &[Ipv4Addr],
    vx_peers: &[([u8; 6], u32)],
) {
    for (k, c) in vips {
        let _ = writeln!(
            out,
            "add element ip {table} vips {{ {} : goto {c} }}",
            vip_key(k)
        );
    }
    for (ip, c) in vip_all {
        let _ = writeln!(out, "add element ip {table} vip_all {{ {ip} : goto {c} }}");
    }
    for (k, c) in ingress {
        let _ = writeln!(
            out,
            "add element ip {table} ingress {{ {} : goto {c} }}",
            port_key(k)
        );
    }
    for n in nodes {
        let _ = writeln!(out, "add element ip {table} nodes {{ {n} }}");
    }
    for (mac, mark) in vx_peers {
        let _ = writeln!(
            out,
            "add element ip {table} vx_peers {{ {} : {mark:#010x} }}",
            mac_text(*mac)
        );
    }
}

/// The whole table in one transaction that replaces any previous one atomically
/// (`add table` so that `delete table` cannot fail when it is absent).
pub fn full(cfg: &MeshConfig, m: &NftModel) -> String {
    let t = &cfg.table;
    let mut out = format!("add table ip {t}\ndelete table ip {t}\ntable ip {t} {{\n");
    out.push_str(&fixed(cfg));
    for (name, rules) in &m.chains {
        let _ = writeln!(out, "\tchain {name} {{");
        for r in rules {
            let _ = writeln!(out, "\t\t{r}");
        }
        out.push_str("\t}\n");
    }
    out.push_str("}\n");
    let vips: Vec<_> = m.vips.iter().map(|(k, v)| (*k, v.clone())).collect();
    let vip_all: Vec<_> = m.vip_all.iter().map(|(k, v)| (*k, v.clone())).collect();
    let ingress: Vec<_> = m.ingress.iter().map(|(k, v)| (*k, v.clone())).collect();
    let nodes: Vec<_> = m.nodes.iter().copied().collect();
    let peers: Vec<_> = m.vx_peers.iter().map(|(k, v)| (*k, *v)).collect();
    add_elements(&mut out, t, &vips, &vip_all, &ingress, &nodes, &peers);
    out
}

/// The changes of `d` as one transaction: new chains, refilled chains, element deletes, element
/// adds, then the chains no element refers to any more. Empty when there is nothing to do.
pub fn incremental(cfg: &MeshConfig, d: &NftDiff) -> String {
    let t = &cfg.table;
    let mut out = String::new();
    for (name, rules) in &d.add_chains {
        let _ = writeln!(out, "add chain ip {t} {name}");
        add_rules(&mut out, t, name, rules);
    }
    for (name, rules) in &d.change_chains {
        let _ = writeln!(out, "flush chain ip {t} {name}");
        add_rules(&mut out, t, name, rules);
    }
    for k in &d.del_vips {
        let _ = writeln!(out, "delete element ip {t} vips {{ {} }}", vip_key(k));
    }
    for ip in &d.del_vip_all {
        let _ = writeln!(out, "delete element ip {t} vip_all {{ {ip} }}");
    }
    for k in &d.del_ingress {
        let _ = writeln!(out, "delete element ip {t} ingress {{ {} }}", port_key(k));
    }
    for n in &d.del_nodes {
        let _ = writeln!(out, "delete element ip {t} nodes {{ {n} }}");
    }
    for mac in &d.del_vx_peers {
        let _ = writeln!(
            out,
            "delete element ip {t} vx_peers {{ {} }}",
            mac_text(*mac)
        );
    }
    add_elements(
        &mut out,
        t,
        &d.add_vips,
        &d.add_vip_all,
        &d.add_ingress,
        &d.add_nodes,
        &d.add_vx_peers,
    );
    for name in &d.remove_chains {
        let _ = writeln!(out, "delete chain ip {t} {name}");
    }
    out
}

/// Removes our table whether or not it exists.
pub fn teardown(cfg: &MeshConfig) -> String {
    format!("add table ip {0}\ndelete table ip {0}\n", cfg.table)
}
