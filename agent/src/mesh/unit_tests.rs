//! Pure parts (plan, script, routes) and `Mesh` over the recording fake.

use super::plan::{self, safe_name, PEER_MARK};
use super::routes::{self, RuleEntry};
use super::*;
use crate::testing::{FakeMesh, MeshCall};
use hoist_proto::agent::Protocol;

fn cfg() -> MeshConfig {
    MeshConfig {
        table: "hoist_mesh".into(),
        vx_iface: "hoist-vx0".into(),
        bridge: "hoist0".into(),
        cluster_cidr: "10.200.0.0/16".parse().unwrap(),
        subnet: "10.200.1.0/24".parse().unwrap(),
        mtu: 1420,
    }
}

fn ep(a: &str, local: bool) -> MeshEndpoint {
    MeshEndpoint {
        address: a.parse().unwrap(),
        local,
    }
}

fn web(endpoints: Vec<MeshEndpoint>) -> MeshService {
    MeshService {
        name: "my-web".into(),
        vip: Some("10.201.0.1".parse().unwrap()),
        ports: vec![MeshPort {
            protocol: Protocol::Tcp,
            target: 80,
            published: Some(8080),
        }],
        endpoints,
    }
}

fn peer(subnet: &str, underlay: &str) -> MeshPeer {
    MeshPeer {
        subnet: subnet.parse().unwrap(),
        underlay: underlay.parse().unwrap(),
    }
}

fn view(services: Vec<MeshService>) -> MeshView {
    MeshView {
        services,
        peers: vec![peer("10.200.2.0/24", "192.168.0.2")],
    }
}

fn incremental(old: &MeshView, new: &MeshView) -> String {
    let c = cfg();
    script::incremental(
        &c,
        &plan::diff(&plan::build(&c, old), &plan::build(&c, new)),
    )
}

#[test]
fn names_are_sanitized_and_injective() {
    assert_eq!(safe_name("my-web-2"), "my_web_2");
    assert_eq!(safe_name("Web_1"), "_5765625f31");
    assert_ne!(safe_name("a-b"), safe_name("a_b"));
    assert_eq!(safe_name("-x"), "_2d78");
}

#[test]
fn new_service_adds_chains_and_elements() {
    let s = incremental(
        &view(vec![]),
        &view(vec![web(vec![
            ep("10.200.1.7", true),
            ep("10.200.2.7", false),
        ])]),
    );
    let want = "add chain ip hoist_mesh ing_my_web_tcp_8080\n\
        add rule ip hoist_mesh ing_my_web_tcp_8080 ip saddr != 10.200.0.0/16 meta mark set 0x47000000 ct mark set 0x47000000\n\
        add rule ip hoist_mesh ing_my_web_tcp_8080 meta l4proto tcp dnat ip to 10.200.1.7:80\n\
        add chain ip hoist_mesh svc_my_web_all\n\
        add rule ip hoist_mesh svc_my_web_all ip saddr != 10.200.0.0/16 meta mark set 0x47000000 ct mark set 0x47000000\n\
        add rule ip hoist_mesh svc_my_web_all numgen random mod 2 0 dnat ip to 10.200.1.7\n\
        add rule ip hoist_mesh svc_my_web_all dnat ip to 10.200.2.7\n\
        add chain ip hoist_mesh svc_my_web_tcp_80\n\
        add rule ip hoist_mesh svc_my_web_tcp_80 ip saddr != 10.200.0.0/16 meta mark set 0x47000000 ct mark set 0x47000000\n\
        add rule ip hoist_mesh svc_my_web_tcp_80 meta l4proto tcp numgen random mod 2 0 dnat ip to 10.200.1.7:80\n\
        add rule ip hoist_mesh svc_my_web_tcp_80 meta l4proto tcp dnat ip to 10.200.2.7:80\n\
        add element ip hoist_mesh vips { 10.201.0.1 . tcp . 80 : goto svc_my_web_tcp_80 }\n\
        add element ip hoist_mesh vip_all { 10.201.0.1 : goto svc_my_web_all }\n\
        add element ip hoist_mesh ingress { tcp . 8080 : goto ing_my_web_tcp_8080 }\n";
    assert_eq!(s, want);
}

#[test]
fn endpoint_removed_flushes_and_refills_only_that_chain() {
    let old = view(vec![web(vec![
        ep("10.200.2.7", false),
        ep("10.200.2.8", false),
    ])]);
    let new = view(vec![web(vec![ep("10.200.2.8", false)])]);
    let s = incremental(&old, &new);
    assert!(
        !s.contains("add element") && !s.contains("delete") && !s.contains("add chain"),
        "{s}"
    );
    assert!(
        s.contains("flush chain ip hoist_mesh svc_my_web_tcp_80\n"),
        "{s}"
    );
    assert!(
        s.contains(
            "add rule ip hoist_mesh svc_my_web_tcp_80 meta l4proto tcp dnat ip to 10.200.2.8:80\n"
        ),
        "{s}"
    );
    assert_eq!(s.matches("flush chain").count(), 3, "{s}"); // svc, any-port and ing chains
    assert!(!s.contains("table"), "never a rewrite: {s}");
}

#[test]
fn service_gone_deletes_elements_then_chains() {
    let s = incremental(
        &view(vec![web(vec![ep("10.200.2.7", false)])]),
        &view(vec![]),
    );
    let want = "delete element ip hoist_mesh vips { 10.201.0.1 . tcp . 80 }\n\
        delete element ip hoist_mesh vip_all { 10.201.0.1 }\n\
        delete element ip hoist_mesh ingress { tcp . 8080 }\n\
        delete chain ip hoist_mesh ing_my_web_tcp_8080\n\
        delete chain ip hoist_mesh svc_my_web_all\n\
        delete chain ip hoist_mesh svc_my_web_tcp_80\n";
    assert_eq!(s, want);
}

#[test]
fn ingress_prefers_local_endpoints() {
    let m = plan::build(
        &cfg(),
        &view(vec![web(vec![
            ep("10.200.1.7", true),
            ep("10.200.2.7", false),
        ])]),
    );
    let ing = &m.chains["ing_my_web_tcp_8080"];
    assert_eq!(
        ing.len(),
        2,
        "the mark, then the only local endpoint: {ing:?}"
    );
    assert!(ing[1].ends_with("dnat ip to 10.200.1.7:80"));
    let svc = &m.chains["svc_my_web_tcp_80"];
    assert!(
        svc[1].contains("numgen random mod 2 0 dnat ip to 10.200.1.7:80"),
        "{svc:?}"
    );
    assert!(svc[2].ends_with("dnat ip to 10.200.2.7:80"), "{svc:?}");
    let m = plan::build(
        &cfg(),
        &view(vec![web(vec![
            ep("10.200.3.7", false),
            ep("10.200.2.7", false),
        ])]),
    );
    let ing = &m.chains["ing_my_web_tcp_8080"];
    assert!(
        ing[1].contains("numgen random mod 2 0 dnat ip to 10.200.2.7:80"),
        "{ing:?}"
    );
    assert!(ing[2].ends_with("dnat ip to 10.200.3.7:80"), "{ing:?}");
    assert_eq!((m.services, m.endpoints), (1, 2));
}

#[test]
fn no_endpoints_rejects() {
    let mut svc = web(vec![]);
    svc.ports.push(MeshPort {
        protocol: Protocol::Udp,
        target: 53,
        published: None,
    });
    let m = plan::build(&cfg(), &view(vec![svc]));
    assert_eq!(
        m.chains["svc_my_web_tcp_80"],
        vec!["meta l4proto tcp reject with tcp reset"]
    );
    assert_eq!(
        m.chains["ing_my_web_tcp_8080"],
        vec!["meta l4proto tcp reject with tcp reset"]
    );
    assert_eq!(m.chains["svc_my_web_udp_53"], vec!["reject"]);
}

#[test]
fn published_vxlan_port_is_skipped() {
    let mut svc = web(vec![]);
    svc.ports = vec![MeshPort {
        protocol: Protocol::Udp,
        target: 4789,
        published: Some(4789),
    }];
    let m = plan::build(&cfg(), &view(vec![svc]));
    assert!(m.ingress.is_empty());
    assert_eq!(m.vips.len(), 1);
}

#[test]
fn vip_moving_to_another_chain_is_deleted_then_added() {
    let mut other = web(vec![ep("10.200.2.7", false)]);
    other.name = "other".into();
    let s = incremental(&view(vec![web(vec![])]), &view(vec![other]));
    let del = s
        .find("delete element ip hoist_mesh vips { 10.201.0.1 . tcp . 80 }")
        .unwrap();
    let add = s
        .find("add element ip hoist_mesh vips { 10.201.0.1 . tcp . 80 : goto svc_other_tcp_80 }")
        .unwrap();
    let gone = s
        .find("delete chain ip hoist_mesh svc_my_web_tcp_80")
        .unwrap();
    assert!(del < add && add < gone, "{s}");
}

#[test]
fn full_script_replaces_the_table_atomically() {
    let c = cfg();
    let s = script::full(
        &c,
        &plan::build(&c, &view(vec![web(vec![ep("10.200.2.7", false)])])),
    );
    assert!(
        s.starts_with(
            "add table ip hoist_mesh\ndelete table ip hoist_mesh\ntable ip hoist_mesh {\n"
        ),
        "{s}"
    );
    assert!(s.contains("add element ip hoist_mesh nodes { 192.168.0.2 }"));
    assert!(s.contains("add element ip hoist_mesh vx_peers { 02:68:0a:c8:02:01 : 0x48000002 }"));
    assert!(s.contains("iifname \"hoist-vx0\" ct state new ct mark set ether saddr map @vx_peers"));
    assert!(s.contains("oifname \"hoist-vx0\" tcp flags syn tcp option maxseg size set rt mtu"));
}

#[test]
fn peers_give_routes_rules_neighbours() {
    let c = cfg();
    let old = routes::RouteModel::new();
    let mut v = view(vec![]);
    v.peers.push(peer("10.200.1.0/24", "192.168.0.1")); // ourselves: skipped
    v.peers.push(peer("10.99.0.0/24", "192.168.0.9")); // outside the CIDR: skipped
    v.peers.push(peer("10.200.3.0/24", "192.168.0.3"));
    let new = routes::build(&c, &v);
    assert_eq!(new.keys().copied().collect::<Vec<_>>(), vec![2, 3]);
    let b = routes::diff(&c, &old, &new);
    assert_eq!(b.ip.len(), 12);
    assert!(b.ip.contains(
        &"neigh replace 10.200.3.1 lladdr 02:68:0a:c8:03:01 dev hoist-vx0 nud permanent"
            .to_string()
    ));
    assert!(b.ip.contains(&format!(
        "route replace 10.200.3.0/24 via 10.200.3.1 dev hoist-vx0 onlink table {}",
        0x4700_0000u32
    )));
    assert!(b.ip.contains(&format!(
        "route replace default via 10.200.3.1 dev hoist-vx0 onlink table {}",
        PEER_MARK | 3
    )));
    assert!(b.ip.contains(&format!(
        "rule add priority 1001 fwmark 0x48000003 lookup {}",
        PEER_MARK | 3
    )));
    assert!(b.ip.contains(&format!(
        "route replace throw 10.200.3.1/32 table {}",
        PEER_MARK | 3
    )));
    assert_eq!(
        b.bridge,
        vec![
            "fdb replace 02:68:0a:c8:02:01 dev hoist-vx0 dst 10.200.2.1 self permanent".to_string(),
            "fdb replace 02:68:0a:c8:03:01 dev hoist-vx0 dst 10.200.3.1 self permanent".to_string(),
        ]
    );
    // Same peers: nothing. One gone: only its removal.
    assert!(routes::diff(&c, &new, &new).is_empty());
    let b = routes::diff(&c, &new, &routes::build(&c, &view(vec![])));
    assert!(
        b.ip.iter()
            .all(|l| l.contains("10.200.3.") || l.contains(&(PEER_MARK | 3).to_string())),
        "{:?}",
        b.ip
    );
    assert!(b
        .ip
        .iter()
        .any(|l| l.starts_with("rule del priority 1001 fwmark 0x48000003")));
    // Full: old rules found are removed first (leniently), other rules are left alone.
    let existing = vec![
        RuleEntry {
            priority: 1001,
            fwmark: Some(PEER_MARK | 9),
            table: Some(PEER_MARK | 9),
        },
        RuleEntry {
            priority: 1001,
            fwmark: Some(0x10),
            table: Some(100),
        },
        RuleEntry {
            priority: 32766,
            fwmark: None,
            table: Some(254),
        },
    ];
    let b = routes::full(&c, &existing, &new);
    assert_eq!(
        b.cleanup[0],
        format!(
            "rule del priority 1001 fwmark 0x48000009 lookup {}",
            PEER_MARK | 9
        )
    );
    assert!(!b
        .cleanup
        .iter()
        .any(|l| l.contains("lookup 100") || l.contains("254")));
    assert_eq!(
        b.ip[0],
        format!(
            "rule add priority 1000 fwmark 0x47000000 lookup {}",
            0x4700_0000u32
        )
    );
}

#[test]
fn mesh_applies_incrementally_and_is_idempotent() {
    let fake = Arc::new(FakeMesh::new());
    let mesh = Mesh::new(cfg(), fake.clone());
    let v1 = view(vec![web(vec![
        ep("10.200.2.7", false),
        ep("10.200.2.8", false),
    ])]);
    let stats = mesh.apply(&v1).unwrap();
    assert!(stats.full_resync);
    assert!(
        matches!(fake.calls()[0], MeshCall::EnsureVxlan(ref s) if s.name == "hoist-vx0" && s.mtu == 1370 && s.mac == [2, 0x68, 10, 200, 1, 1])
    );
    assert_eq!(fake.scripts().len(), 1);
    let stats = mesh.apply(&v1).unwrap();
    assert!(!stats.changed && !stats.full_resync);
    assert_eq!(
        fake.scripts().len(),
        1,
        "nothing sent for an unchanged view"
    );
    let v2 = view(vec![web(vec![ep("10.200.2.8", false)])]);
    let stats = mesh.apply(&v2).unwrap();
    assert_eq!(
        (
            stats.chains_changed,
            stats.chains_added,
            stats.elements_added
        ),
        (3, 0, 0)
    );
    assert!(fake.scripts()[1].starts_with("flush chain"));
    let st = mesh.status();
    assert_eq!((st.services, st.endpoints, st.last_error), (1, 1, None));
    assert!(st.applied_ms > 0);
}

#[test]
fn failed_transaction_keeps_the_model_and_resyncs_next_time() {
    let fake = Arc::new(FakeMesh::new());
    let mesh = Mesh::new(cfg(), fake.clone());
    let v1 = view(vec![web(vec![ep("10.200.2.7", false)])]);
    mesh.apply(&v1).unwrap();
    fake.fail_next_nft();
    let v2 = view(vec![web(vec![ep("10.200.2.8", false)])]);
    let err = mesh.apply(&v2).unwrap_err();
    assert!(err.to_string().starts_with("nft: injected"), "{err}");
    let st = mesh.status();
    assert_eq!(st.endpoints, 1);
    assert!(st.last_error.as_deref().unwrap().starts_with("nft: "));
    // The next apply (even of the same view) rewrites everything.
    fake.clear();
    let stats = mesh.apply(&v2).unwrap();
    assert!(stats.full_resync);
    let scripts = fake.scripts();
    assert_eq!(scripts.len(), 1);
    assert!(scripts[0].starts_with("add table ip hoist_mesh\ndelete table ip hoist_mesh\n"));
    assert!(scripts[0].contains("10.200.2.8:80"));
    assert!(matches!(fake.calls()[0], MeshCall::EnsureVxlan(_)));
    assert_eq!(mesh.status().last_error, None);
    // A failing route batch too.
    fake.clear();
    let mut v3 = v2.clone();
    v3.peers.push(peer("10.200.5.0/24", "192.168.0.5"));
    fake.fail_nth(0);
    let err = mesh.apply(&v3).unwrap_err();
    assert!(err.to_string().starts_with("ip: "), "{err}");
    assert!(mesh.apply(&v3).unwrap().full_resync);
}

#[test]
fn teardown_removes_everything() {
    let fake = Arc::new(FakeMesh::new());
    let mesh = Mesh::new(cfg(), fake.clone());
    mesh.apply(&view(vec![])).unwrap();
    fake.set_rules(vec![RuleEntry {
        priority: 1000,
        fwmark: Some(0x4700_0000),
        table: Some(0x4700_0000),
    }]);
    fake.clear();
    mesh.teardown().unwrap();
    let calls = fake.calls();
    assert_eq!(
        calls[0],
        MeshCall::Nft("add table ip hoist_mesh\ndelete table ip hoist_mesh\n".into())
    );
    assert!(
        matches!(&calls[2], MeshCall::Ip { lines, lenient: true } if lines[0].starts_with("rule del priority 1000"))
    );
    assert_eq!(
        calls.last(),
        Some(&MeshCall::RemoveLink("hoist-vx0".into()))
    );
    assert!(mesh.apply(&view(vec![])).unwrap().full_resync);
}
