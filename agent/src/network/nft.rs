//! Published ports and masquerade in nftables: one table of our own, `ip hoist_<bridge>`, that
//! never touches other tables.
//!
//! Ports live in maps rather than per-container rules: the DNAT rules are fixed
//! (`dnat to tcp dport map @tcp_addr : tcp dport map @tcp_port`) and a published port is one
//! element in each map, keyed by host port and commented with the container id. Attach and detach
//! therefore add or delete exactly their own elements in one atomic `nft -j -f -` batch, and
//! leftovers are found by comment. (Two maps instead of one `ipv4_addr . inet_service` map because
//! nft 1.0.6, Debian 12's, cannot parse concatenated map types from JSON.)
//!
//! Chains:
//! - `prerouting` (nat, dstnat): DNAT for traffic arriving from other hosts/namespaces to a local address;
//! - `output` (nat, -100): the same for locally generated traffic to the host's own addresses,
//!   including `127.0.0.1` (with `route_localnet` on the bridge, set by the caller);
//! - `postrouting` (nat, srcnat): SNAT to the gateway address of that localhost traffic and of
//!   hairpin traffic (a container reaching a published port that leads back into the bridge),
//!   and masquerade of traffic leaving the subnet when enabled;
//! - `input` (filter): drops new connections from the bridge to `127.0.0.0/8`, which
//!   `route_localnet` would otherwise let in;
//! - `forward` (filter, policy accept): accepts traffic from and to our bridge. This only matters
//!   next to Docker Engine, which loads `br_netfilter` and sets the iptables FORWARD policy to DROP:
//!   an accept in our table does not override a drop in Docker's table, so on such hosts also allow
//!   the bridge in Docker's `DOCKER-USER` chain (or set `net.bridge.bridge-nf-call-iptables=0`).
//!
//! `nft` runs as a child process, so callers run these functions on a thread inside the agent's
//! network namespace (see `netns::run_in`).

use super::{Ipv4Subnet, NetworkError};
use hoist_proto::agent::{PortMapping, Protocol};
use nftables::expr::{
    Elem, Expression, Fib, FibFlag, FibResult, Map, Meta, MetaKey, NamedExpression, Payload,
    PayloadField, Prefix, SetItem, CT,
};
use nftables::schema::{
    self, Chain, Element, FlushObject, NfCmd, NfListObject, NfObject, Nftables, Rule, SetType,
    SetTypeValue, Table,
};
use nftables::stmt::{Match, Operator, Statement, NAT};
use nftables::types::{NfChainPolicy, NfChainType, NfFamily, NfHook};
use std::borrow::Cow;
use std::collections::BTreeSet;
use std::net::Ipv4Addr;

const FAMILY: NfFamily = NfFamily::IP;

/// Our table's name for `bridge`: `hoist_` + the bridge name with anything unusual replaced by `_`.
pub fn table_name(bridge: &str) -> String {
    let clean: String = bridge
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("hoist_{clean}")
}

fn proto_name(p: Protocol) -> &'static str {
    match p {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
    }
}

fn addr_map(p: Protocol) -> String {
    format!("{}_addr", proto_name(p))
}

fn port_map(p: Protocol) -> String {
    format!("{}_port", proto_name(p))
}

const PROTOCOLS: [Protocol; 2] = [Protocol::Tcp, Protocol::Udp];

fn cmd(c: NfCmd<'static>) -> NfObject<'static> {
    NfObject::CmdObject(c)
}

fn dport(p: Protocol) -> Expression<'static> {
    Expression::Named(NamedExpression::Payload(Payload::PayloadField(
        PayloadField {
            protocol: proto_name(p).into(),
            field: "dport".into(),
        },
    )))
}

fn daddr_is_local() -> Statement<'static> {
    Statement::Match(Match {
        left: Expression::Named(NamedExpression::Fib(Fib {
            result: FibResult::Type,
            flags: [FibFlag::Daddr].into_iter().collect(),
        })),
        right: Expression::String("local".into()),
        op: Operator::EQ,
    })
}

fn dnat_via_maps(p: Protocol) -> Statement<'static> {
    let lookup = |map: String| {
        Expression::Named(NamedExpression::Map(Box::new(Map {
            key: dport(p),
            data: Expression::String(format!("@{map}").into()),
        })))
    };
    Statement::DNAT(Some(NAT {
        addr: Some(lookup(addr_map(p))),
        family: Some(nftables::stmt::NATFamily::IP),
        port: Some(lookup(port_map(p))),
        flags: None,
    }))
}

fn ip_prefix_match(field: &'static str, addr: Ipv4Addr, len: u8) -> Statement<'static> {
    Statement::Match(Match {
        left: Expression::Named(NamedExpression::Payload(Payload::PayloadField(
            PayloadField {
                protocol: "ip".into(),
                field: field.into(),
            },
        ))),
        right: Expression::Named(NamedExpression::Prefix(Prefix {
            addr: Box::new(Expression::String(addr.to_string().into())),
            len: u32::from(len),
        })),
        op: Operator::EQ,
    })
}

fn iface_match(key: MetaKey, name: &str, op: Operator) -> Statement<'static> {
    Statement::Match(Match {
        left: Expression::Named(NamedExpression::Meta(Meta { key })),
        right: Expression::String(name.to_string().into()),
        op,
    })
}

fn base_chain(table: &str, name: &str, ty: NfChainType, hook: NfHook, prio: i32) -> Chain<'static> {
    Chain {
        family: FAMILY,
        table: table.to_string().into(),
        name: name.to_string().into(),
        _type: Some(ty),
        hook: Some(hook),
        prio: Some(prio),
        policy: Some(NfChainPolicy::Accept),
        ..Chain::default()
    }
}

fn rule(table: &str, chain: &str, expr: Vec<Statement<'static>>) -> NfObject<'static> {
    cmd(NfCmd::Add(NfListObject::Rule(Rule {
        family: FAMILY,
        table: table.to_string().into(),
        chain: chain.to_string().into(),
        expr: expr.into(),
        ..Rule::default()
    })))
}

/// The whole table, idempotently: tables, maps and chains are added (existing map elements, i.e.
/// published ports, survive), and each chain is flushed and refilled so rules never pile up.
pub fn setup(table: &str, bridge: &str, subnet: Ipv4Subnet, masquerade: bool) -> Nftables<'static> {
    let mut objs = vec![cmd(NfCmd::Add(NfListObject::Table(Table {
        family: FAMILY,
        name: table.to_string().into(),
        handle: None,
    })))];
    for p in PROTOCOLS {
        for (name, value) in [
            (addr_map(p), SetType::Ipv4Addr),
            (port_map(p), SetType::InetService),
        ] {
            objs.push(cmd(NfCmd::Add(NfListObject::Map(Box::new(schema::Map {
                family: FAMILY,
                table: table.to_string().into(),
                name: name.into(),
                handle: None,
                set_type: SetTypeValue::Single(SetType::InetService),
                map: SetTypeValue::Single(value),
                policy: None,
                flags: None,
                elem: None,
                timeout: None,
                gc_interval: None,
                size: None,
                comment: None,
            })))));
        }
    }
    let chains = [
        base_chain(
            table,
            "prerouting",
            NfChainType::NAT,
            NfHook::Prerouting,
            -100,
        ),
        base_chain(table, "output", NfChainType::NAT, NfHook::Output, -100),
        base_chain(
            table,
            "postrouting",
            NfChainType::NAT,
            NfHook::Postrouting,
            100,
        ),
        base_chain(table, "forward", NfChainType::Filter, NfHook::Forward, 0),
        base_chain(table, "input", NfChainType::Filter, NfHook::Input, 0),
    ];
    for c in chains {
        objs.push(cmd(NfCmd::Add(NfListObject::Chain(c.clone()))));
        objs.push(cmd(NfCmd::Flush(FlushObject::Chain(c))));
    }
    for p in PROTOCOLS {
        objs.push(rule(
            table,
            "prerouting",
            vec![daddr_is_local(), dnat_via_maps(p)],
        ));
        // Includes 127.0.0.0/8: see `localhost` below.
        objs.push(rule(
            table,
            "output",
            vec![daddr_is_local(), dnat_via_maps(p)],
        ));
    }
    // localhost:PORT, like kube-proxy: the DNATed packet leaves through the bridge with source
    // 127.0.0.1 (allowed by route_localnet on the bridge, set by the caller) and is SNATed to the
    // gateway address so the container can answer.
    objs.push(rule(
        table,
        "postrouting",
        vec![
            ip_prefix_match("saddr", Ipv4Addr::new(127, 0, 0, 0), 8),
            iface_match(MetaKey::Oifname, bridge, Operator::EQ),
            Statement::Masquerade(None),
        ],
    ));
    // Hairpin: a container reaching a published port (on any host address) whose DNAT leads back
    // into the bridge. Without SNAT the target answers the client directly over the bridge, from
    // an address the client never connected to, and the connection fails.
    objs.push(rule(
        table,
        "postrouting",
        vec![
            iface_match(MetaKey::Iifname, bridge, Operator::EQ),
            iface_match(MetaKey::Oifname, bridge, Operator::EQ),
            Statement::Match(Match {
                left: Expression::Named(NamedExpression::CT(CT {
                    key: "status".into(),
                    family: None,
                    dir: None,
                })),
                right: Expression::String("dnat".into()),
                op: Operator::IN,
            }),
            Statement::Masquerade(None),
        ],
    ));
    // route_localnet also lets packets to 127.0.0.0/8 in from the bridge (CVE-2020-8558): only
    // replies of the connections above may pass, new ones from containers are dropped.
    objs.push(rule(
        table,
        "input",
        vec![
            iface_match(MetaKey::Iifname, bridge, Operator::EQ),
            ip_prefix_match("daddr", Ipv4Addr::new(127, 0, 0, 0), 8),
            Statement::Match(Match {
                left: Expression::Named(NamedExpression::CT(CT {
                    key: "state".into(),
                    family: None,
                    dir: None,
                })),
                right: Expression::Named(NamedExpression::Set(vec![
                    SetItem::Element(Expression::String("new".into())),
                    SetItem::Element(Expression::String("invalid".into())),
                ])),
                op: Operator::EQ,
            }),
            Statement::Drop(None),
        ],
    ));
    if masquerade {
        let from_subnet = ip_prefix_match("saddr", subnet.network(), subnet.prefix_len());
        objs.push(rule(
            table,
            "postrouting",
            vec![
                from_subnet,
                iface_match(MetaKey::Oifname, bridge, Operator::NEQ),
                Statement::Masquerade(None),
            ],
        ));
    }
    objs.push(rule(
        table,
        "forward",
        vec![
            iface_match(MetaKey::Iifname, bridge, Operator::EQ),
            Statement::Accept(None),
        ],
    ));
    objs.push(rule(
        table,
        "forward",
        vec![
            iface_match(MetaKey::Oifname, bridge, Operator::EQ),
            Statement::Accept(None),
        ],
    ));
    Nftables {
        objects: objs.into(),
    }
}

fn element(table: &str, map: String, items: Vec<Expression<'static>>) -> NfListObject<'static> {
    NfListObject::Element(Element {
        family: FAMILY,
        table: table.to_string().into(),
        name: map.into(),
        elem: items.into(),
    })
}

fn keyed(host_port: u16, id: &str, value: Expression<'static>) -> Expression<'static> {
    let key = Expression::Named(NamedExpression::Elem(Elem {
        val: Box::new(Expression::Number(u32::from(host_port))),
        timeout: None,
        expires: None,
        comment: Some(Cow::Owned(id.to_string())),
        counter: None,
    }));
    Expression::List(vec![key, value])
}

/// Map elements publishing `ports` of container `id` at `ip`.
pub fn add_ports(table: &str, id: &str, ip: Ipv4Addr, ports: &[PortMapping]) -> Nftables<'static> {
    let mut objs = Vec::new();
    for p in ports {
        let addr = keyed(p.host_port, id, Expression::String(ip.to_string().into()));
        let port = keyed(
            p.host_port,
            id,
            Expression::Number(u32::from(p.container_port)),
        );
        objs.push(cmd(NfCmd::Add(element(
            table,
            addr_map(p.protocol),
            vec![addr],
        ))));
        objs.push(cmd(NfCmd::Add(element(
            table,
            port_map(p.protocol),
            vec![port],
        ))));
    }
    Nftables {
        objects: objs.into(),
    }
}

/// Deletes the elements of `ports` (by key). Fails as a whole if one is missing; see `delete_ports`.
pub fn delete_ports(table: &str, ports: &[(Protocol, u16)]) -> Nftables<'static> {
    let mut objs = Vec::new();
    for (proto, port) in ports {
        for map in [addr_map(*proto), port_map(*proto)] {
            objs.push(cmd(NfCmd::Delete(element(
                table,
                map,
                vec![Expression::Number(u32::from(*port))],
            ))));
        }
    }
    Nftables {
        objects: objs.into(),
    }
}

/// Applies a batch atomically with `nft -j -f -`. Blocking.
pub fn apply(batch: &Nftables, op: &str) -> Result<(), NetworkError> {
    if batch.objects.is_empty() {
        return Ok(());
    }
    let json = serde_json::to_vec(batch).map_err(|e| NetworkError::Nft {
        op: op.to_string(),
        message: e.to_string(),
    })?;
    run_nft(&["-j", "-f", "-"], Some(&json), op).map(drop)
}

/// Runs `nft ARGS` with `stdin`; nft's first error line becomes the message.
fn run_nft(args: &[&str], stdin: Option<&[u8]>, op: &str) -> Result<String, NetworkError> {
    super::tool::run("nft", args, stdin).map_err(|e| NetworkError::Nft {
        op: op.to_string(),
        message: e
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("failed without a message")
            .to_string(),
    })
}

/// The published ports currently in our maps: (protocol, host port, container id from the comment).
/// An absent table yields nothing. Blocking.
pub fn list_ports(table: &str) -> Result<BTreeSet<(Protocol, u16, String)>, NetworkError> {
    let op = format!("list table {table}");
    let out = match run_nft(&["-j", "list", "table", "ip", table], None, &op) {
        Ok(out) => out,
        Err(NetworkError::Nft { message, .. }) if message.contains("No such file") => {
            return Ok(BTreeSet::new())
        }
        Err(e) => return Err(e),
    };
    let value: serde_json::Value = serde_json::from_str(&out).map_err(|e| NetworkError::Nft {
        op: op.clone(),
        message: e.to_string(),
    })?;
    Ok(parse_ports(&value))
}

/// Pulls (protocol, host port, comment) out of `nft -j list table` output; tolerant of shapes it does not know.
fn parse_ports(value: &serde_json::Value) -> BTreeSet<(Protocol, u16, String)> {
    let mut found = BTreeSet::new();
    let objects = value
        .get("nftables")
        .and_then(|v| v.as_array())
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    for obj in objects {
        let Some(map) = obj.get("map") else { continue };
        let proto = match map.get("name").and_then(|n| n.as_str()) {
            Some("tcp_addr") => Protocol::Tcp,
            Some("udp_addr") => Protocol::Udp,
            _ => continue,
        };
        for pair in map
            .get("elem")
            .and_then(|e| e.as_array())
            .map(Vec::as_slice)
            .unwrap_or(&[])
        {
            let Some(key) = pair.get(0) else { continue };
            let (port, comment) = match key.get("elem") {
                Some(elem) => (
                    elem.get("val").and_then(|v| v.as_u64()),
                    elem.get("comment").and_then(|c| c.as_str()).unwrap_or(""),
                ),
                None => (key.as_u64(), ""),
            };
            if let Some(port) = port.and_then(|p| u16::try_from(p).ok()) {
                found.insert((proto, port, comment.to_string()));
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_are_sanitized() {
        assert_eq!(table_name("hoist0"), "hoist_hoist0");
        assert_eq!(table_name("br-x.1"), "hoist_br_x_1");
    }

    #[test]
    fn port_elements_json() {
        let batch = add_ports(
            "hoist_hoist0",
            "web1",
            Ipv4Addr::new(10, 89, 0, 2),
            &[PortMapping {
                host_port: 8080,
                container_port: 80,
                protocol: Protocol::Tcp,
            }],
        );
        let json = serde_json::to_value(&batch).expect("json");
        let first = &json["nftables"][0]["add"]["element"];
        assert_eq!(first["name"], "tcp_addr");
        assert_eq!(first["elem"][0][0]["elem"]["val"], 8080);
        assert_eq!(first["elem"][0][0]["elem"]["comment"], "web1");
        assert_eq!(first["elem"][0][1], "10.89.0.2");
        assert_eq!(json["nftables"][1]["add"]["element"]["elem"][0][1], 80);
    }

    #[test]
    fn parses_listed_elements() {
        let listed = serde_json::json!({"nftables": [
            {"metainfo": {"version": "1.0.6"}},
            {"map": {"family": "ip", "name": "tcp_addr", "table": "t", "type": "inet_service", "map": "ipv4_addr",
                     "elem": [[{"elem": {"val": 8080, "comment": "web1"}}, "10.89.0.2"], [9090, "10.89.0.3"]]}},
            {"map": {"family": "ip", "name": "tcp_port", "table": "t", "type": "inet_service", "map": "inet_service",
                     "elem": [[{"elem": {"val": 8080, "comment": "web1"}}, 80]]}},
            {"map": {"family": "ip", "name": "udp_addr", "table": "t", "type": "inet_service", "map": "ipv4_addr"}}
        ]});
        let got: Vec<_> = parse_ports(&listed).into_iter().collect();
        assert_eq!(
            got,
            vec![
                (Protocol::Tcp, 8080, "web1".to_string()),
                (Protocol::Tcp, 9090, String::new())
            ]
        );
    }
}
