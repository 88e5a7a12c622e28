//! The overlay's address plan on a real 3-member controller cluster, driven by 20 agents (fake
//! agents speaking the real protocol) that all register at the same moment against a cluster CIDR
//! with room for 16 subnets: no subnet is handed out twice, the 4 nodes left without one say why
//! naming the CIDR (API and `hoist node ls`), and a subnet freed by `hoist node rm` goes to one of
//! them.

use anyhow::{ensure, Context, Result};
use hoist_tests::controller_lab::{serial, Lab, MemberFlags};
use hoist_tests::fake_agent::{FakeAgent, FakeNode};
use hoist_tests::wait_for;
use std::collections::BTreeSet;
use std::time::Duration;

/// 20 replicas, at most one per node, as a spec file (removed when dropped, even on failure).
fn spec_file() -> Result<tempfile::NamedTempFile> {
    let file = tempfile::Builder::new()
        .prefix("hoist-wide-")
        .suffix(".json")
        .tempfile()?;
    std::fs::write(
        file.path(),
        r#"{"name": "wide", "image": "busybox", "replicas": 20, "placement": {"max_per_node": 1}}"#,
    )?;
    Ok(file)
}

/// A node's id, subnet and why it has none.
type NodeSubnet = (String, Option<String>, Option<String>);

/// (node id, subnet, problem) of every node.
fn subnets(lab: &Lab) -> Result<Vec<NodeSubnet>> {
    let (code, v) = lab.get(0, "/v1/nodes")?;
    ensure!(code == 200, "nodes: {code} {v}");
    Ok(v.as_array()
        .context("nodes")?
        .iter()
        .map(|n| {
            let s = |k: &str| n["node"][k].as_str().map(str::to_owned);
            (
                s("id").unwrap_or_default(),
                s("subnet"),
                s("overlay_problem"),
            )
        })
        .collect())
}

#[test]
fn simultaneous_registrations_never_share_a_subnet_and_exhaustion_is_said() -> Result<()> {
    let _g = serial();
    let mut lab = Lab::new(3)?;
    lab.flags = MemberFlags(vec!["--cluster-cidr".into(), "10.210.0.0/20".into()]);
    lab.start_cluster(3)?;
    lab.wait_leader(Duration::from_secs(15))?;
    let ctl = lab.addr(0);
    let admin = lab.token();
    let hoist = |ctl: &str, args: &[&str]| hoist_tests::hoist_cli_as(ctl, admin.as_deref(), args);
    let (code, out, err) = hoist(&ctl, &["cluster", "token"])?;
    ensure!(code == 0, "token: {err}");
    let token = out.trim().to_string();
    // The plan is set once the cluster runs format 2.
    wait_for("the overlay plan", Duration::from_secs(15), || {
        let (_, st) = lab.get(0, "/v1/cluster/status")?;
        Ok((st["network"]["cidr"] == "10.210.0.0/20").then_some(()))
    })?;

    // 20 agents register at once, to every member (followers forward to the leader).
    let controllers: Vec<String> = (0..3).map(|i| lab.addr(i)).collect();
    let threads: Vec<_> = (0..20)
        .map(|i| {
            let mut cs = controllers.clone();
            cs.rotate_left(i % 3);
            let token = token.clone();
            std::thread::spawn(move || {
                FakeAgent::start(&cs, &token, FakeNode::new(&format!("h{i}"), &[]))
            })
        })
        .collect();
    let agents: Vec<FakeAgent> = threads
        .into_iter()
        .map(|t| t.join().expect("thread"))
        .collect::<Result<_>>()?;
    let nodes = wait_for("20 nodes", Duration::from_secs(20), || {
        let n = subnets(&lab)?;
        Ok((n.len() == 20).then_some(n))
    })?;
    let given: Vec<&String> = nodes.iter().filter_map(|n| n.1.as_ref()).collect();
    let distinct: BTreeSet<&&String> = given.iter().collect();
    ensure!(
        given.len() == 16 && distinct.len() == 16,
        "subnets: {nodes:?}"
    );
    let waiting: Vec<_> = nodes.iter().filter(|n| n.1.is_none()).collect();
    ensure!(waiting.len() == 4, "{nodes:?}");
    for n in &waiting {
        let why = n.2.as_deref().unwrap_or_default();
        ensure!(
            why.contains("10.210.0.0/20 has no free /24"),
            "{}: {why:?}",
            n.0
        );
    }
    let (code, table, _) = hoist(&ctl, &["node", "ls"])?;
    ensure!(
        code == 0 && table.contains("none: CIDR exhausted"),
        "{table}"
    );
    // Nothing is placed on a node without a subnet: 20 replicas, one per node, leave 4 pending.
    let spec = spec_file()?;
    let (code, _, err) = hoist(
        &ctl,
        &[
            "service",
            "apply",
            "--no-resolve-image",
            "-f",
            &spec.path().display().to_string(),
            "--detach",
        ],
    )?;
    ensure!(code == 0, "apply: {err}");
    let waiting_ids: BTreeSet<&str> = waiting.iter().map(|n| n.0.as_str()).collect();
    wait_for(
        "16 placed, 4 pending with a reason",
        Duration::from_secs(20),
        || {
            let (_, ps) = lab.get(0, "/v1/services/wide/ps")?;
            let replicas = ps["replicas"].as_array().cloned().unwrap_or_default();
            let placed: Vec<&str> = replicas
                .iter()
                .filter_map(|r| r["task"]["node"].as_str())
                .collect();
            let pending = replicas
                .iter()
                .filter(|r| r["pending"].is_string() || r["pending"].is_object())
                .count();
            ensure!(
                placed.iter().all(|n| !waiting_ids.contains(n)),
                "placed on a node without a subnet: {ps}"
            );
            Ok((placed.len() == 16 && pending == 4).then_some(()))
        },
    )?;
    // A node removed frees its subnet for a waiting one.
    let (victim, freed) = nodes
        .iter()
        .find_map(|n| Some((n.0.clone(), n.1.clone()?)))
        .context("a node with a subnet")?;
    let agent = agents
        .iter()
        .find(|a| a.node_id() == victim)
        .context("its agent")?;
    agent.set_alive(false);
    wait_for("the node down", Duration::from_secs(30), || {
        let (_, v) = lab.get(0, &format!("/v1/nodes/{victim}"))?;
        Ok((v["node"]["status"] == "down").then_some(()))
    })?;
    let (code, _, err) = hoist(&ctl, &["node", "rm", &victim])?;
    ensure!(code == 0, "node rm: {err}");
    let after = subnets(&lab)?;
    let taken: Vec<_> = after
        .iter()
        .filter(|n| n.1.as_deref() == Some(freed.as_str()))
        .collect();
    ensure!(
        taken.len() == 1 && waiting.iter().any(|w| w.0 == taken[0].0),
        "{freed} after rm: {after:?}"
    );
    Ok(())
}
