//! Recovering from a lost quorum (deploy/upgrade.md, "Quorum loss"): two of three members are
//! gone for good; `hoist-controller --force-new-cluster` makes the survivor a cluster of one with
//! every service intact, the agents carry on, and the others come back with `--join`.

use anyhow::{ensure, Result};
use hoist_tests::cluster_lab::ClusterLab;
use hoist_tests::controller_lab::serial;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

/// Every service: name → version.
fn services(lab: &ClusterLab) -> Result<BTreeMap<String, u64>> {
    Ok(lab
        .get("/v1/services")?
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| Some((s["name"].as_str()?.to_string(), s["version"].as_u64()?)))
        .collect())
}

#[test]
fn force_new_cluster_recovers_a_lost_quorum_with_all_state_and_members_rejoin() -> Result<()> {
    let _g = serial();
    let flags = ["--node-grace", "5s", "--heartbeat-interval", "500ms"];
    let mut lab = ClusterLab::start(3, &flags)?;
    lab.add_agent("a1", &[])?;
    let web =
        json!({"name": "web", "image": "probe", "command": ["sleep", "100000"], "replicas": 2});
    lab.post("/v1/services", &web)?;
    let mut web2 = web.clone();
    web2["env"] = json!({"V": "2"});
    lab.post("/v1/services", &web2)?;
    lab.post(
        "/v1/services",
        &json!({"name": "db", "image": "probe", "replicas": 0}),
    )?;
    lab.wait_until("web ready", Duration::from_secs(60), || {
        let n = lab.ready_replicas("web")?;
        Ok(((n == 2).then_some(()), format!("{n} ready")))
    })?;
    let before = services(&lab)?;
    let containers_before = lab.running_on(0, "web")?;

    // Two members gone for good: no quorum, writes are refused.
    let survivor = 2;
    lab.lab.kill9(0)?;
    lab.lab.kill9(1)?;
    let (code, v) = lab.lab.post(
        survivor,
        "/v1/services",
        &json!({"name": "x", "image": "probe"}),
    )?;
    ensure!(code == 503, "a write without quorum: {code} {v}");

    // The flag is refused where there is no cluster to recover.
    let fresh = lab.lab.add_host()?;
    let _ = lab.lab.start(fresh, &["--force-new-cluster"]);
    ensure!(!lab.lab.wait_exit(fresh, Duration::from_secs(10))?);
    let log = std::fs::read_to_string(lab.lab.log_path(fresh))?;
    ensure!(log.contains("is not the data dir of a member"), "{log}");

    // The survivor restarts as a cluster of one, with everything it had.
    lab.lab.kill9(survivor)?;
    lab.lab.start(survivor, &["--force-new-cluster"])?;
    lab.lab.wait_leader(Duration::from_secs(10))?;
    let st = lab.lab.status(survivor)?;
    ensure!(
        st["role"] == "leader" && st["members"].as_array().map(Vec::len) == Some(1),
        "after --force-new-cluster: {st}"
    );
    ensure!(
        services(&lab)? == before,
        "services changed: {:?}",
        services(&lab)?
    );
    let history = lab.get("/v1/services/web/history")?;
    ensure!(history.as_array().map(Vec::len) == Some(2), "{history}");
    lab.post(
        "/v1/services",
        &json!({"name": "after", "image": "probe", "replicas": 0}),
    )?;
    lab.wait_until(
        "the agent back with the new leader",
        Duration::from_secs(30),
        || {
            let n = lab.ready_replicas("web")?;
            let nodes = lab.nodes()?;
            let ready = nodes.values().all(|(status, _)| status == "ready");
            Ok((
                (n == 2 && ready).then_some(()),
                format!("{n} ready, nodes {nodes:?}"),
            ))
        },
    )?;
    let ids = |v: &[Value]| -> Vec<String> {
        v.iter()
            .filter_map(|c| c["id"].as_str().map(String::from))
            .collect()
    };
    ensure!(
        ids(&lab.running_on(0, "web")?) == ids(&containers_before),
        "the replicas were replaced"
    );

    // The lost members come back from empty data dirs.
    let seed = lab.lab.addr(survivor);
    for i in [0, 1] {
        lab.lab.wipe(i)?;
        lab.lab.start(i, &["--join", &seed])?;
    }
    lab.lab.wait_voters(3, Duration::from_secs(60))?;
    let hash = lab.lab.wait_converged(Duration::from_secs(30))?;
    eprintln!("[quorum loss] 3 members again, state {}", &hash[..12]);
    let mut after = before.clone();
    after.insert("after".into(), 1);
    ensure!(services(&lab)? == after);
    Ok(())
}
