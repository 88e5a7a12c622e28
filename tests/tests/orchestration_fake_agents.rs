//! The controller's orchestration driven as an operator and agents would: `hoist` CLI commands and
//! fake agents speaking the real agent–controller protocol over HTTP to controllers in lab
//! namespaces. Spread, node down and back, pending with reasons, rollback on an unhealthy update,
//! endpoints, and a rolling update that survives the leader's death.

use anyhow::{ensure, Context, Result};
use hoist_tests::controller_lab::{serial, wait_for, Lab, MemberFlags};
use hoist_tests::fake_agent::{FakeAgent, FakeNode};

/// The admin token of the lab the running test made (tests in this file run one at a time).
static TOKEN: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// `hoist ARGS` with the running lab's admin token.
fn hoist(ctl: &str, args: &[&str]) -> Result<(i32, String, String)> {
    let token = TOKEN.lock().unwrap_or_else(|e| e.into_inner()).clone();
    hoist_tests::hoist_cli_as(ctl, token.as_deref(), args)
}
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

fn spec_file(dir: &tempfile::TempDir, name: &str, spec: &Value) -> Result<PathBuf> {
    let p = dir.path().join(format!("{name}.json"));
    std::fs::write(&p, serde_json::to_vec_pretty(spec)?)?;
    Ok(p)
}

/// Ready replicas of `service` per node, from `GET /v1/services/{name}/ps`.
fn ready_per_node(lab: &Lab, i: usize, service: &str) -> Result<BTreeMap<String, usize>> {
    let (code, ps) = lab.get(i, &format!("/v1/services/{service}/ps"))?;
    ensure!(code == 200, "ps: {code} {ps}");
    let mut m = BTreeMap::new();
    for r in ps["replicas"].as_array().context("replicas")? {
        let t = &r["task"];
        let ready = t["state"] == "running" && (t["health"] == "none" || t["health"] == "healthy");
        if ready {
            *m.entry(t["node"].as_str().unwrap_or("").to_string())
                .or_default() += 1;
        }
    }
    Ok(m)
}

fn node_status(lab: &Lab, i: usize, id: &str) -> Result<String> {
    let (_, v) = lab.get(i, &format!("/v1/nodes/{id}"))?;
    Ok(v["node"]["status"].as_str().unwrap_or("").to_string())
}

fn token(ctl: &str) -> Result<String> {
    let (code, out, err) = hoist(ctl, &["cluster", "token"])?;
    ensure!(code == 0, "token: {err}");
    Ok(out.trim().to_string())
}

#[test]
fn replicas_spread_heal_wait_for_constraints_and_roll_back() -> Result<()> {
    let _g = serial();
    let mut lab = Lab::new(1)?;
    lab.flags = MemberFlags(vec!["--node-grace".into(), "2s".into()]);
    lab.start(0, &["--bootstrap"])?;
    lab.wait_leader(Duration::from_secs(10))?;
    let ctl = lab.addr(0);
    *TOKEN.lock().unwrap_or_else(|e| e.into_inner()) = lab.token();
    let tok = token(&ctl)?;
    ensure!(
        tok.starts_with("HOIST2-") && token(&ctl)? == tok,
        "one token: {tok}"
    );
    let ctls = vec![ctl.clone()];
    // A wrong token is refused (before any agent route is served).
    let mut wrong = tok.clone();
    let last = wrong.pop().context("token")?;
    wrong.push(if last == '0' { '1' } else { '0' });
    let refused = FakeAgent::start(&ctls, &wrong, FakeNode::new("bad", &[]));
    ensure!(
        refused
            .as_ref()
            .is_err_and(|e| e.to_string().contains("401") && e.to_string().contains("join token")),
        "a wrong token must be refused: {refused:?}"
    );
    let agents: Vec<FakeAgent> = ["h1", "h2", "h3"]
        .iter()
        .map(|h| FakeAgent::start(&ctls, &tok, FakeNode::new(h, &[("zone", "a")])))
        .collect::<Result<_>>()?;
    let dir = tempfile::tempdir()?;
    let web = json!({"name": "web", "image": "img:1", "replicas": 30,
        "ports": [{"target": 80}, {"target": 9090, "protocol": "udp"}],
        "update": {"parallelism": 5, "monitor": "0s", "failure_action": "rollback"}});
    let f = spec_file(&dir, "web", &web)?;
    let (code, out, err) = hoist(
        &ctl,
        &[
            "service",
            "apply",
            "--no-resolve-image",
            "-f",
            f.to_str().unwrap(),
        ],
    )?;
    ensure!(code == 0, "apply waits and succeeds: {code} {out} {err}");
    ensure!(out.contains("completed 30/30"), "progress shown: {out}");
    let spread = ready_per_node(&lab, 0, "web")?;
    ensure!(
        spread.len() == 3 && spread.values().all(|&c| c == 10),
        "30 replicas spread evenly: {spread:?}"
    );
    let (code, out, _) = hoist(&ctl, &["node", "ls"])?;
    ensure!(code == 0 && out.matches("ready").count() == 3, "{out}");

    // Endpoints: 30 healthy replicas; a watch returns when they change.
    let (_, ep) = lab.get(0, "/v1/services/web/endpoints")?;
    ensure!(ep["endpoints"].as_array().map(Vec::len) == Some(30), "{ep}");
    let first = &ep["endpoints"][0];
    ensure!(
        first["port"] == 80,
        "the first port stays in `port`: {first}"
    );
    ensure!(
        first["ports"]
            == json!([{"target": 80, "published": null, "protocol": "tcp", "mode": "ingress"},
                      {"target": 9090, "published": null, "protocol": "udp", "mode": "ingress"}]),
        "every port is listed: {first}"
    );
    let ep_index = ep["index"].as_u64().unwrap_or(0);

    // h3 goes silent: down after the grace period, its replicas replaced on h1 and h2.
    let h3 = agents[2].node_id();
    agents[2].set_alive(false);
    wait_for("h3 down", Duration::from_secs(10), || {
        (node_status(&lab, 0, &h3).ok()? == "down").then_some(())
    })?;
    let (code, ep2) = lab.get(
        0,
        &format!("/v1/services/web/endpoints?index={ep_index}&timeout_ms=5000"),
    )?;
    ensure!(
        code == 200 && ep2["index"].as_u64() > Some(ep_index),
        "watch: {ep2}"
    );
    wait_for("30 ready on h1+h2", Duration::from_secs(15), || {
        let m = ready_per_node(&lab, 0, "web").ok()?;
        (m.values().sum::<usize>() == 30 && !m.contains_key(&h3)).then_some(())
    })?;
    // h3 comes back: its old replicas are stopped, exactly 30 run.
    agents[2].set_alive(true);
    wait_for("h3 ready", Duration::from_secs(10), || {
        (node_status(&lab, 0, &h3).ok()? == "ready").then_some(())
    })?;
    wait_for(
        "h3 stopped its old replicas",
        Duration::from_secs(10),
        || (agents[2].running() == 0).then_some(()),
    )?;
    let total: usize = agents.iter().map(FakeAgent::running).sum();
    ensure!(total == 30, "exactly 30 run after the heal, not {total}");
    let (_, ps) = lab.get(0, "/v1/services/web/ps")?;
    ensure!(
        ps.to_string().contains(&format!("node {h3} is down")),
        "history keeps the reason: {ps}"
    );

    // Constraints nobody meets: pending with the reason, placed when a matching node joins.
    let zoned = json!({"name": "zoned", "image": "img:1", "replicas": 2,
        "placement": {"constraints": ["node.labels.zone==b"]}});
    let f = spec_file(&dir, "zoned", &zoned)?;
    let (code, _, err) = hoist(
        &ctl,
        &[
            "service",
            "apply",
            "--no-resolve-image",
            "-d",
            "-f",
            f.to_str().unwrap(),
        ],
    )?;
    ensure!(code == 0, "{err}");
    wait_for("pending explanation", Duration::from_secs(5), || {
        let (_, out, _) = hoist(&ctl, &["service", "ps", "zoned"]).ok()?;
        out.contains("constraint zone == b").then_some(out)
    })?;
    let h4 = FakeAgent::start(&ctls, &tok, FakeNode::new("h4", &[("zone", "b")]))?;
    wait_for("zoned placed on h4", Duration::from_secs(10), || {
        let m = ready_per_node(&lab, 0, "zoned").ok()?;
        (m.get(&h4.node_id()) == Some(&2)).then_some(())
    })?;
    let (code, _, _) = hoist(&ctl, &["service", "rollout", "status", "zoned"])?;
    ensure!(code == 0);

    // An update whose replicas are unhealthy rolls back, and apply exits non-zero.
    let mut bad = web.clone();
    bad["image"] = json!("img:bad");
    let f = spec_file(&dir, "web-bad", &bad)?;
    let (code, out, err) = hoist(
        &ctl,
        &[
            "service",
            "apply",
            "--no-resolve-image",
            "-f",
            f.to_str().unwrap(),
        ],
    )?;
    ensure!(code != 0, "a failed update must exit non-zero: {out} {err}");
    ensure!(err.contains("rolled back"), "{out} {err}");
    let (_, svc) = lab.get(0, "/v1/services/web")?;
    ensure!(
        svc["spec"]["image"] == "img:1" && svc["version"] == 3,
        "{svc}"
    );
    wait_for("30 healthy again", Duration::from_secs(15), || {
        let m = ready_per_node(&lab, 0, "web").ok()?;
        (m.values().sum::<usize>() == 30).then_some(())
    })?;
    let (_, r) = lab.get(0, "/v1/services/web/rollout")?;
    ensure!(r["state"] == "rolled_back" && r["rollback_of"] == 2, "{r}");

    // Delete stops everything.
    let (code, _, _) = hoist(&ctl, &["service", "rm", "web", "zoned"])?;
    ensure!(code == 0);
    wait_for("all stopped", Duration::from_secs(10), || {
        let n: usize = agents.iter().map(FakeAgent::running).sum::<usize>() + h4.running();
        (n == 0).then_some(())
    })?;
    Ok(())
}

#[test]
fn a_rolling_update_completes_under_a_new_leader() -> Result<()> {
    let _g = serial();
    let mut lab = Lab::new(3)?;
    lab.flags = MemberFlags(vec!["--node-grace".into(), "3s".into()]);
    lab.start_cluster(3)?;
    lab.wait_leader(Duration::from_secs(10))?;
    let ctls: Vec<String> = (0..3).map(|i| lab.addr(i)).collect();
    let ctl = ctls.join(",");
    *TOKEN.lock().unwrap_or_else(|e| e.into_inner()) = lab.token();
    let tok = token(&ctl)?;
    let _agents: Vec<FakeAgent> = ["h1", "h2", "h3"]
        .iter()
        .map(|h| FakeAgent::start(&ctls, &tok, FakeNode::new(h, &[])))
        .collect::<Result<_>>()?;
    let dir = tempfile::tempdir()?;
    let mut web = json!({"name": "web", "image": "img:1", "replicas": 6,
        "update": {"parallelism": 1, "delay": "700ms", "monitor": "300ms"}});
    let f = spec_file(&dir, "web", &web)?;
    let (code, out, err) = hoist(
        &ctl,
        &[
            "service",
            "apply",
            "--no-resolve-image",
            "-f",
            f.to_str().unwrap(),
        ],
    )?;
    ensure!(code == 0, "{out} {err}");
    web["image"] = json!("img:2");
    let f = spec_file(&dir, "web2", &web)?;
    let (code, _, err) = hoist(
        &ctl,
        &[
            "service",
            "apply",
            "--no-resolve-image",
            "-d",
            "-f",
            f.to_str().unwrap(),
        ],
    )?;
    ensure!(code == 0, "{err}");
    let leader = lab.wait_leader(Duration::from_secs(5))?;
    wait_for("update under way", Duration::from_secs(15), || {
        let (_, r) = lab.get(leader, "/v1/services/web/rollout").ok()?;
        (r["state"] == "updating" && r["updated"].as_u64()? >= 1).then_some(())
    })?;
    lab.kill9(leader)?;
    let other = (leader + 1) % 3;
    let (code, out, err) = hoist(
        &ctl,
        &["service", "rollout", "status", "web", "--timeout", "60s"],
    )?;
    ensure!(code == 0, "completes under the new leader: {out} {err}");
    let (_, ps) = lab.get(other, "/v1/services/web/ps")?;
    for r in ps["replicas"].as_array().context("replicas")? {
        ensure!(r["task"]["service_version"] == 2, "{r}");
    }
    ensure!(
        ready_per_node(&lab, other, "web")?.values().sum::<usize>() == 6,
        "6 ready"
    );
    Ok(())
}
