//! Orchestration across hosts, on the lab: 3 controller members and agent hosts, each in its own
//! network namespace, driven through the `hoist` CLI and the controllers' HTTP API as an operator
//! would. Replica counts are checked twice: as the controllers report them and as the agents
//! themselves run them (`hoist ps` on each host), so a controller that believes the wrong thing
//! cannot pass.

use anyhow::{ensure, Result};
use hoist_tests::cluster_lab::ClusterLab;
use hoist_tests::controller_lab::serial;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

/// Fast liveness so that node failures show within seconds.
const MEMBER_FLAGS: &[&str] = &["--node-grace", "3s", "--heartbeat-interval", "500ms"];

fn lab_with_agents(labels: &[&[(&str, &str)]]) -> Result<ClusterLab> {
    let mut lab = ClusterLab::start(3, MEMBER_FLAGS)?;
    for (i, l) in labels.iter().enumerate() {
        lab.add_agent(&format!("a{}", i + 1), l)?;
    }
    Ok(lab)
}

/// An httpd service with a TCP health check.
fn web(name: &str, replicas: i64) -> Value {
    json!({
        "name": name,
        "image": "busybox",
        "command": ["httpd", "-f", "-p", "80"],
        "replicas": replicas,
        "health_check": {"tcp_port": 80, "interval": "500ms", "timeout": "1s", "retries": 2},
        "update": {"parallelism": 2, "monitor": "2s", "failure_action": "rollback"},
    })
}

fn total(spread: &BTreeMap<String, usize>) -> usize {
    spread.values().sum()
}

/// Waits until the agents run exactly `n` replicas of `service` (with `check` on the spread) and
/// the controllers count `n` ready.
fn wait_replicas(
    lab: &ClusterLab,
    service: &str,
    n: usize,
    what: &str,
    timeout: Duration,
    check: impl Fn(&BTreeMap<String, usize>) -> bool,
) -> Result<BTreeMap<String, usize>> {
    lab.wait_until(what, timeout, || {
        let spread = lab.spread(service)?;
        let ready = lab.ready_replicas(service)?;
        let ok = total(&spread) == n && ready == n && check(&spread);
        Ok((
            ok.then(|| spread.clone()),
            format!("agents run {spread:?}, controllers count {ready} ready"),
        ))
    })
}

#[test]
fn replicas_spread_evenly_and_survive_a_dead_and_a_partitioned_agent() -> Result<()> {
    let _g = serial();
    let mut lab = lab_with_agents(&[&[], &[], &[]])?;
    let (code, out, err) = lab.apply(&web("web", 30), &[])?;
    ensure!(code == 0, "apply: {out} {err}");
    wait_replicas(
        &lab,
        "web",
        30,
        "30 replicas running, 10 per agent",
        Duration::from_secs(120),
        |s| s.values().all(|&n| n == 10),
    )?;

    // kill -9 of an agent: its node goes down and its replicas run healthy elsewhere within 30 s.
    let a1 = lab.node_id(0).unwrap_or_default();
    lab.kill_agent(0)?;
    let t = std::time::Instant::now();
    lab.wait_until("a1's node marked down", Duration::from_secs(15), || {
        let nodes = lab.nodes()?;
        let st = nodes.get(&a1).map(|s| s.0.clone());
        Ok((
            (st.as_deref() == Some("down")).then_some(()),
            format!("{nodes:?}"),
        ))
    })?;
    lab.wait_until(
        "30 ready replicas on a2 and a3",
        Duration::from_secs(30),
        || {
            let on_others = lab.running_on(1, "web")?.len() + lab.running_on(2, "web")?.len();
            let ready = lab.ready_replicas("web")?;
            Ok((
                (on_others == 30 && ready == 30).then_some(()),
                format!("a2+a3 run {on_others}, controllers count {ready} ready"),
            ))
        },
    )?;
    let moved = t.elapsed();
    ensure!(moved < Duration::from_secs(30), "took {moved:?}");
    eprintln!("replicas replaced {moved:.1?} after kill -9 of the agent");

    // The agent comes back: its old replicas are stopped, exactly 30 run.
    lab.restart_agent(0)?;
    wait_replicas(
        &lab,
        "web",
        30,
        "exactly 30 after a1 returns",
        Duration::from_secs(60),
        |s| s["a1"] == 0,
    )?;

    // Partition a2 (link down), heal it: exactly 30 again.
    lab.cut_agent(1)?;
    lab.wait_until("30 ready without a2", Duration::from_secs(45), || {
        let others = lab.running_on(0, "web")?.len() + lab.running_on(2, "web")?.len();
        let ready = lab.ready_replicas("web")?;
        Ok((
            (others == 30 && ready == 30).then_some(()),
            format!("a1+a3 run {others}, controllers count {ready} ready"),
        ))
    })?;
    lab.heal_agent(1)?;
    wait_replicas(
        &lab,
        "web",
        30,
        "exactly 30 after healing a2",
        Duration::from_secs(60),
        |_| true,
    )?;
    std::thread::sleep(Duration::from_secs(3));
    let spread = lab.spread("web")?;
    ensure!(total(&spread) == 30, "not stable at 30: {spread:?}");
    Ok(())
}

/// Applies `spec` through the HTTP API (`POST /v1/services`), which answers at once; answers
/// the new version.
fn apply_http(lab: &ClusterLab, spec: &Value) -> Result<u64> {
    let change = lab.post("/v1/services", spec)?;
    change["service"]["version"]
        .as_u64()
        .ok_or_else(|| anyhow::anyhow!("no version in {change}"))
}

/// Waits until the update to `version` has been rolled back.
fn wait_rolled_back(lab: &ClusterLab, service: &str, version: u64) -> Result<Value> {
    lab.wait_until(
        &format!("{service}'s update to version {version} rolled back"),
        Duration::from_secs(60),
        || {
            let r = lab.get(&format!("/v1/services/{service}/rollout"))?;
            // Either the rollback's own record (a new version made from the old spec, naming
            // the failed one) or the failed version's record, marked rolled back.
            let ok = r["state"] == "rolled_back"
                && (r["rollback_of"] == version || r["version"] == version);
            Ok((ok.then(|| r.clone()), format!("{r}")))
        },
    )
}

#[test]
fn a_bad_image_or_failing_health_check_during_an_update_rolls_back() -> Result<()> {
    let _g = serial();
    let lab = lab_with_agents(&[&[], &[]])?;
    apply_http(&lab, &web("api", 4))?;
    wait_replicas(
        &lab,
        "api",
        4,
        "4 api replicas",
        Duration::from_secs(60),
        |_| true,
    )?;

    let mut bad = web("api", 4);
    bad["image"] = json!("127.0.0.1:9/nope:1");
    let v = apply_http(&lab, &bad)?;
    wait_rolled_back(&lab, "api", v)?;
    wait_replicas(
        &lab,
        "api",
        4,
        "4 replicas of the old spec",
        Duration::from_secs(60),
        |_| true,
    )?;

    let mut sick = web("api", 4);
    sick["health_check"]["tcp_port"] = json!(81);
    let v = apply_http(&lab, &sick)?;
    wait_rolled_back(&lab, "api", v)?;
    wait_replicas(
        &lab,
        "api",
        4,
        "4 healthy replicas after the rollback",
        Duration::from_secs(60),
        |_| true,
    )?;
    for i in 0..lab.agents.len() {
        for c in lab.running_on(i, "api")? {
            ensure!(c["spec"]["image"] == "busybox", "{c}");
        }
    }
    Ok(())
}

#[test]
fn hoist_service_apply_exits_non_zero_when_the_update_rolls_back() -> Result<()> {
    let _g = serial();
    let lab = lab_with_agents(&[&[]])?;
    let (code, out, err) = lab.apply(&web("api", 2), &[])?;
    ensure!(code == 0, "apply: {out} {err}");
    wait_replicas(
        &lab,
        "api",
        2,
        "2 api replicas",
        Duration::from_secs(60),
        |_| true,
    )?;
    let mut bad = web("api", 2);
    bad["image"] = json!("127.0.0.1:9/nope:1");
    let (code, out, err) = lab.apply(&bad, &[])?;
    ensure!(code != 0, "apply of a bad image must fail: {out} {err}");
    let r = lab.get("/v1/services/api/rollout")?;
    ensure!(r["state"] == "rolled_back", "{r}");
    Ok(())
}

/// The env of the replicas of `service` agent `i` runs.
fn env_on(lab: &ClusterLab, i: usize, service: &str) -> Result<Vec<Vec<String>>> {
    Ok(lab
        .running_on(i, service)?
        .iter()
        .map(|c| serde_json::from_value(c["spec"]["env"].clone()).unwrap_or_default())
        .collect())
}

/// Agents hold the specs of their replicas and are sent them only when they changed. A service
/// deleted and created again has versions from 1 again: its new replicas on a node that still
/// runs (or stops) the old ones must run the new spec, not the one the agent holds for the same
/// name and version.
#[test]
fn a_service_deleted_and_created_again_runs_its_new_spec() -> Result<()> {
    let _g = serial();
    let lab = lab_with_agents(&[&[]])?;
    let mut spec = web("again", 2);
    spec["env"] = json!({"GENERATION": "1"});
    let (code, out, err) = lab.apply(&spec, &[])?;
    ensure!(code == 0, "apply: {out} {err}");
    wait_replicas(
        &lab,
        "again",
        2,
        "2 replicas",
        Duration::from_secs(60),
        |_| true,
    )?;
    // A scale in place: the agent's next answers leave out the spec it holds.
    lab.hoist_ok(&["service", "scale", "again", "3"])?;
    wait_replicas(
        &lab,
        "again",
        3,
        "3 replicas",
        Duration::from_secs(60),
        |_| true,
    )?;

    lab.hoist_ok(&["service", "rm", "again"])?;
    spec["env"] = json!({"GENERATION": "2"});
    spec["replicas"] = json!(3);
    let (code, out, err) = lab.apply(&spec, &[])?;
    ensure!(code == 0, "apply again: {out} {err}");
    lab.wait_until(
        "3 replicas of the new spec and none of the old",
        Duration::from_secs(60),
        || {
            let env = env_on(&lab, 0, "again")?;
            let new = env
                .iter()
                .filter(|e| e.contains(&"GENERATION=2".to_string()));
            let ok = env.len() == 3 && new.count() == 3 && lab.ready_replicas("again")? == 3;
            Ok((
                ok.then_some(()),
                format!("the agent runs replicas with env {env:?}"),
            ))
        },
    )?;
    Ok(())
}

#[test]
fn draining_a_node_moves_its_replicas() -> Result<()> {
    let _g = serial();
    let lab = lab_with_agents(&[&[], &[], &[]])?;
    let (code, out, err) = lab.apply(&web("web", 6), &[])?;
    ensure!(code == 0, "apply: {out} {err}");
    wait_replicas(
        &lab,
        "web",
        6,
        "6 replicas, 2 per agent",
        Duration::from_secs(60),
        |s| s.values().all(|&n| n == 2),
    )?;
    let a1 = lab.node_id(0).unwrap_or_default();
    lab.hoist_ok(&["node", "drain", &a1])?;
    wait_replicas(
        &lab,
        "web",
        6,
        "6 replicas, none on drained a1",
        Duration::from_secs(60),
        |s| s["a1"] == 0,
    )?;
    ensure!(lab.nodes()?[&a1].1 == "drained");
    Ok(())
}

#[test]
fn unmet_constraints_stay_pending_with_a_reason_until_a_node_fits() -> Result<()> {
    let _g = serial();
    let mut lab = lab_with_agents(&[&[("zone", "a")], &[("zone", "a")]])?;
    let mut spec = web("db", 2);
    spec["placement"] = json!({"constraints": ["node.labels.zone==b"]});
    apply_http(&lab, &spec)?;
    lab.wait_until(
        "db pending with a reason naming the constraint",
        Duration::from_secs(20),
        || {
            let ps = lab.service_ps("db")?;
            let reasons: Vec<String> = ps["replicas"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| r["pending"].as_str().map(str::to_owned))
                .collect();
            let ok = reasons.len() == 2 && reasons.iter().all(|r| r.contains("zone"));
            Ok((ok.then_some(()), format!("{ps}")))
        },
    )?;
    lab.add_agent("b1", &[("zone", "b")])?;
    wait_replicas(
        &lab,
        "db",
        2,
        "db placed on the zone=b node",
        Duration::from_secs(60),
        |s| s["b1"] == 2,
    )?;
    Ok(())
}

#[test]
fn an_update_completes_under_a_new_leader() -> Result<()> {
    let _g = serial();
    let mut lab = lab_with_agents(&[&[], &[]])?;
    let mut spec = web("web", 6);
    spec["update"] = json!({"parallelism": 1, "delay": "1s", "monitor": "1s"});
    let (code, out, err) = lab.apply(&spec, &[])?;
    ensure!(code == 0, "apply: {out} {err}");
    wait_replicas(
        &lab,
        "web",
        6,
        "6 replicas",
        Duration::from_secs(60),
        |_| true,
    )?;
    spec["env"] = json!({"VERSION": "2"});
    apply_http(&lab, &spec)?;
    lab.wait_until("the update under way", Duration::from_secs(30), || {
        let r = lab.get("/v1/services/web/rollout")?;
        let ok = r["state"] == "updating" && r["updated"].as_u64().unwrap_or(0) >= 1;
        Ok((ok.then_some(()), format!("{r}")))
    })?;
    let leader = lab.lab.leader().unwrap_or(0);
    lab.lab.kill9(leader)?;
    lab.wait_until(
        "the update completed under the new leader",
        Duration::from_secs(90),
        || {
            let r = lab.get("/v1/services/web/rollout")?;
            Ok(((r["state"] == "completed").then_some(()), format!("{r}")))
        },
    )?;
    lab.wait_until(
        "6 replicas of version 2 on the agents",
        Duration::from_secs(30),
        || {
            let mut v2 = 0;
            for i in 0..lab.agents.len() {
                v2 += lab
                    .running_on(i, "web")?
                    .iter()
                    .filter(|c| {
                        c["spec"]["env"]
                            .as_array()
                            .is_some_and(|e| e.iter().any(|x| x == "VERSION=2"))
                    })
                    .count();
            }
            let spread = lab.spread("web")?;
            Ok((
                (v2 == 6 && total(&spread) == 6).then_some(()),
                format!("{v2} at v2, {spread:?}"),
            ))
        },
    )?;
    Ok(())
}

#[test]
fn hoist_service_rollout_status_exits_non_zero_after_a_rollback() -> Result<()> {
    let _g = serial();
    let lab = lab_with_agents(&[&[]])?;
    let (code, out, err) = lab.apply(&web("api", 2), &[])?;
    ensure!(code == 0, "apply: {out} {err}");
    let mut bad = web("api", 2);
    bad["image"] = json!("127.0.0.1:9/nope:1");
    let (code, _, _) = lab.apply(&bad, &[])?;
    ensure!(code != 0);
    let (code, out, err) = lab.hoist(&["service", "rollout", "status", "api"])?;
    ensure!(
        code != 0 && out.contains("rolled_back"),
        "{code} {out} {err}"
    );
    Ok(())
}
