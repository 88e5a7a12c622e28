//! `GET /metrics` on the lab, scraped as Prometheus would: every controller member answers for
//! itself (one leader among them), per service desired = running = healthy replicas, pending
//! replicas with their reason, API requests by route template; the agent's listener (its
//! default, `127.0.0.1:9323`, inside its network namespace) answers per container with the
//! replica's labels, real cgroup and network numbers, health probes, a restart after a kill,
//! an OOM kill, a failed pull. Every answer goes through `promtool check metrics`.

use anyhow::{ensure, Context, Result};
use hoist_tests::cluster_lab::ClusterLab;
use hoist_tests::controller_lab::serial;
use hoist_tests::exposition::{find, one, parse, promtool_check, Sample};
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

const MEMBER_FLAGS: &[&str] = &["--node-grace", "3s", "--heartbeat-interval", "500ms"];

/// The answer of `GET /metrics` on controller member `i`, in the format `accept` asks for:
/// content type and body.
fn scrape_member(lab: &ClusterLab, i: usize, accept: Option<&str>) -> Result<(String, String)> {
    let client = lab
        .lab
        .client_builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let mut req = client.get(format!("http://{}/metrics", lab.lab.addr(i)));
    if let Some(a) = accept {
        req = req.header("accept", a);
    }
    let resp = req.send()?;
    ensure!(resp.status() == 200, "member {i}: HTTP {}", resp.status());
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    Ok((ct, resp.text()?))
}

/// Member `i`'s samples, after `promtool check metrics` accepted its answer.
fn member_samples(lab: &ClusterLab, i: usize) -> Result<Vec<Sample>> {
    let (ct, text) = scrape_member(lab, i, None)?;
    ensure!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    promtool_check(&text).with_context(|| format!("member {i}"))?;
    parse(&text)
}

/// `GET /metrics` of agent `i` on its default address, from inside its network namespace.
fn scrape_agent(lab: &ClusterLab, i: usize) -> Result<String> {
    let out = lab.agents[i]
        .host
        .command(Path::new("curl"))
        .args(["-sS", "--fail", "--max-time", "5"])
        .arg("http://127.0.0.1:9323/metrics")
        .output()?;
    ensure!(
        out.status.success(),
        "curl the agent's metrics: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}

fn agent_samples(lab: &ClusterLab, i: usize) -> Result<Vec<Sample>> {
    let text = scrape_agent(lab, i)?;
    promtool_check(&text).context("the agent's answer")?;
    parse(&text)
}

/// A sample that must have a value: its name, labels and the value.
type Want<'a> = (&'a str, &'a [(&'a str, &'a str)], f64);

/// Waits until every member's answer has each of `want`.
fn wait_every_member(lab: &ClusterLab, what: &str, want: &[Want]) -> Result<()> {
    lab.wait_until(what, Duration::from_secs(60), || {
        let mut seen = Vec::new();
        for i in 0..3 {
            let s = member_samples(lab, i)?;
            let got: Vec<f64> = want
                .iter()
                .map(|(n, l, _)| one(&s, n, l).unwrap_or(-1.0))
                .collect();
            seen.push(got);
        }
        let ok = seen
            .iter()
            .all(|got| got.iter().zip(want).all(|(g, (_, _, w))| g == w));
        Ok((ok.then_some(()), format!("per member: {seen:?}")))
    })
}

/// httpd replicas with a TCP health check and a memory limit.
fn web(replicas: i64) -> Value {
    json!({
        "name": "web",
        "image": "busybox",
        "command": ["httpd", "-f", "-p", "80"],
        "replicas": replicas,
        "resources": {"limits": {"memory": "64Mi"}},
        "health_check": {"tcp_port": 80, "interval": "300ms", "timeout": "1s", "retries": 2},
        "restart": {"condition": "any", "delay": "200ms"},
        "autoscale": {"min": 1, "max": 3, "cooldown_up": "0s"},
    })
}

#[test]
fn controllers_and_agents_answer_metrics_prometheus_accepts() -> Result<()> {
    let _g = serial();
    let mut lab = ClusterLab::start(3, MEMBER_FLAGS)?;
    lab.add_agent("a1", &[])?;
    let node = lab.node_id(0).context("a1's node id")?;
    let (code, out, err) = lab.apply(&web(2), &[])?;
    ensure!(code == 0, "apply: {out} {err}");
    // More memory than any node has: a replica no node can take.
    let (code, out, err) = lab.apply(
        &json!({"name": "huge", "image": "busybox", "command": ["sleep", "1000"],
                "resources": {"memory": "100Ti"}}),
        &["--detach"],
    )?;
    ensure!(code == 0, "apply huge: {out} {err}");

    // Every member, leader or not, answers the replicated counts once it has applied them.
    let web_l: &[(&str, &str)] = &[("service", "web")];
    wait_every_member(
        &lab,
        "every member counts 2 desired, running and healthy replicas of web",
        &[
            ("hoist_service_replicas_desired", web_l, 2.0),
            ("hoist_service_replicas_running", web_l, 2.0),
            ("hoist_service_replicas_healthy", web_l, 2.0),
        ],
    )?;

    let all: Vec<Vec<Sample>> = (0..3)
        .map(|i| member_samples(&lab, i))
        .collect::<Result<_>>()?;
    let leaders: Vec<usize> = (0..3)
        .filter(|&i| one(&all[i], "hoist_raft_leader", &[]).ok() == Some(1.0))
        .collect();
    ensure!(leaders.len() == 1, "one member says it leads: {leaders:?}");
    let leader = &all[leaders[0]];
    for (i, s) in all.iter().enumerate() {
        let member = (lab.lab.id(i)).to_string();
        ensure!(
            one(s, "hoist_controller_build_info", &[("member", &member)])? == 1.0,
            "member {i} answers for itself"
        );
        ensure!(one(s, "hoist_raft_term", &[])? >= 1.0);
        let applied = one(s, "hoist_raft_applied_index", &[])?;
        let commit = one(s, "hoist_raft_commit_index", &[])?;
        ensure!(
            applied >= 3.0 && commit >= applied,
            "member {i}: applied {applied}, commit {commit}"
        );
        ensure!(one(s, "hoist_raft_leader_changes_total", &[])? >= 1.0);
        ensure!(
            one(s, "hoist_raft_log_fsync_duration_seconds_count", &[])? >= 1.0,
            "member {i} synced its log"
        );
        ensure!(one(s, "hoist_nodes", &[("status", "ready")])? == 1.0);
    }
    ensure!(
        one(
            leader,
            "hoist_scheduler_placements_total",
            &[("result", "placed")]
        )? >= 2.0,
        "the leader placed web's replicas"
    );
    ensure!(
        one(
            leader,
            "hoist_pending_tasks",
            &[("service", "huge"), ("reason", "memory")]
        )? == 1.0,
        "huge waits for memory: {:?}",
        find(leader, "hoist_pending_tasks", &[])
    );
    // Requests are counted by route template, never by the raw path (the lab polled
    // /v1/services/web/ps above).
    let routes: Vec<&str> = all
        .iter()
        .flatten()
        .filter(|s| s.name == "hoist_api_requests_total")
        .filter_map(|s| s.labels.get("route").map(String::as_str))
        .collect();
    ensure!(routes.contains(&"/v1/services/{name}/ps"), "{routes:?}");
    ensure!(routes.iter().all(|r| !r.contains("/web")), "{routes:?}");
    let posts: f64 = all
        .iter()
        .flat_map(|s| {
            find(
                s,
                "hoist_api_requests_total",
                &[
                    ("route", "/v1/services"),
                    ("method", "POST"),
                    ("status", "200"),
                ],
            )
        })
        .map(|s| s.value)
        .sum();
    ensure!(posts >= 2.0, "two applies counted: {posts}");

    // OpenMetrics when asked for.
    let (ct, text) = scrape_member(&lab, 1, Some("application/openmetrics-text; version=1.0.0"))?;
    ensure!(ct.starts_with("application/openmetrics-text"), "{ct}");
    ensure!(text.ends_with("# EOF\n"), "{text}");
    ensure!(
        text.contains("# TYPE hoist_raft_leader_changes counter\n"),
        "{text}"
    );

    // The agent: both replicas, labelled as the controllers know them.
    let ps = lab.service_ps("web")?;
    let tasks: Vec<(String, String)> = ps["replicas"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            (
                r["task"]["id"].as_str().unwrap_or_default().to_string(),
                r["slot"].to_string(),
            )
        })
        .collect();
    ensure!(tasks.len() == 2, "{ps}");
    let s = lab.wait_until(
        "the agent reports both replicas with traffic and passed probes",
        Duration::from_secs(30),
        || {
            let s = agent_samples(&lab, 0)?;
            let ok = tasks.iter().all(|(task, slot)| {
                let l = [
                    ("service", "web"),
                    ("task", task),
                    ("slot", slot),
                    ("node", &node),
                ];
                let v = |n: &str| one(&s, n, &l).unwrap_or(0.0);
                v("hoist_container_memory_usage_bytes") > 0.0
                    && v("hoist_container_network_receive_bytes_total") > 0.0
                    && v("hoist_container_network_transmit_bytes_total") > 0.0
                    && one(
                        &s,
                        "hoist_health_probes_total",
                        &[l[1], ("result", "success")],
                    )
                    .unwrap_or(0.0)
                        >= 1.0
                    && one(
                        &s,
                        "hoist_container_health_status",
                        &[l[1], ("status", "healthy")],
                    )
                    .unwrap_or(0.0)
                        == 1.0
            });
            Ok((ok.then_some(s), "not yet".to_string()))
        },
    )?;
    let (task, slot) = &tasks[0];
    let l = [
        ("service", "web"),
        ("task", task.as_str()),
        ("slot", slot.as_str()),
    ];
    ensure!(one(&s, "hoist_container_memory_limit_bytes", &l)? == (64u64 << 20) as f64);
    ensure!(one(&s, "hoist_container_cpu_seconds_total", &l)? >= 0.0);
    ensure!(one(&s, "hoist_container_running", &l)? == 1.0);
    ensure!(one(&s, "hoist_container_restarts_total", &l)? == 0.0);
    ensure!(one(&s, "hoist_health_probe_duration_seconds_count", &l)? >= 1.0);
    ensure!(one(&s, "hoist_agent_build_info", &[("node", &node)])? == 1.0);

    // A killed replica comes back as the same task, its restart counted.
    let host = &lab.agents[0].host;
    let name = find(&s, "hoist_container_running", &l)[0].labels["container"].clone();
    host.hoist_ok(&["kill", &name])?;
    lab.wait_until(
        "the restarted replica counts one restart",
        Duration::from_secs(30),
        || {
            let s = agent_samples(&lab, 0)?;
            let r = find(&s, "hoist_container_restarts_total", &l);
            let running = one(&s, "hoist_container_running", &l).unwrap_or(0.0);
            let ok = r.len() == 1 && r[0].value == 1.0 && running == 1.0;
            Ok((ok.then_some(()), format!("{r:?}, running {running}")))
        },
    )?;

    // A plain container over its memory limit: the OOM killer's kill is counted; and a pull
    // from nowhere counts as a failed pull.
    host.hoist_ok(&[
        "run",
        "-d",
        "--name",
        "hog",
        "--network",
        "none",
        "--memory",
        "8m",
        "busybox",
        "sh",
        "-c",
        "head -c 64m /dev/zero | tail; sleep 1000",
    ])?;
    let pull = host.hoist(&["image", "pull", "127.0.0.1:9/nope:1"])?;
    let said = String::from_utf8_lossy(&pull.stderr);
    ensure!(
        !pull.status.success() && said.contains("127.0.0.1:9"),
        "a pull from a closed port fails: {said}"
    );
    lab.wait_until("the OOM kill counted", Duration::from_secs(30), || {
        let s = agent_samples(&lab, 0)?;
        let hog = [
            ("container", "hog"),
            ("service", ""),
            ("node", node.as_str()),
        ];
        let kills = one(&s, "hoist_container_oom_kills_total", &hog).unwrap_or(0.0);
        let limit = one(&s, "hoist_container_memory_limit_bytes", &hog).unwrap_or(0.0);
        let failed = one(&s, "hoist_image_pulls_total", &[("result", "failure")]).unwrap_or(0.0);
        let ok = kills >= 1.0 && limit == (8u64 << 20) as f64 && failed == 1.0;
        Ok((
            ok.then_some(()),
            format!("oom kills {kills}, limit {limit}, failed pulls {failed}"),
        ))
    })?;
    host.hoist_ok(&["rm", "-f", "hog"])?;

    // OpenMetrics from the agent too, and nothing but /metrics on its listener.
    let out = host
        .command(Path::new("curl"))
        .args([
            "-sS",
            "-H",
            "Accept: application/openmetrics-text",
            "-o",
            "/dev/null",
        ])
        .args(["-w", "%{content_type} %{http_code}"])
        .arg("http://127.0.0.1:9323/metrics")
        .output()?;
    let said = String::from_utf8_lossy(&out.stdout);
    ensure!(
        said.starts_with("application/openmetrics-text") && said.ends_with(" 200"),
        "{said}"
    );
    let out = host
        .command(Path::new("curl"))
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg("http://127.0.0.1:9323/v1/containers")
        .output()?;
    ensure!(String::from_utf8_lossy(&out.stdout) == "404");

    // Autoscaling decisions, from the replicated history on every member: one that scaled
    // (up a step), one held by the bound (5 asked, max 3).
    let token = lab.hoist_ok(&["hook", "token", "create", "--service", "web"])?;
    for body in [json!({"direction": "up"}), json!({"replicas": 5})] {
        scale_hook(&lab, token.trim(), &body)?;
    }
    wait_every_member(
        &lab,
        "every member counts 1 scaled and 1 held decision",
        &[
            (
                "hoist_autoscale_decisions_total",
                &[("service", "web"), ("outcome", "scaled")],
                1.0,
            ),
            (
                "hoist_autoscale_decisions_total",
                &[("service", "web"), ("outcome", "held")],
                1.0,
            ),
        ],
    )?;
    Ok(())
}

/// `POST /v1/services/web/scale-hook` with `token`, which must succeed.
fn scale_hook(lab: &ClusterLab, token: &str, body: &Value) -> Result<()> {
    let r = reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()?
        .post(format!(
            "http://{}/v1/services/web/scale-hook",
            lab.lab.addr(0)
        ))
        .bearer_auth(token)
        .json(body)
        .send()?;
    let status = r.status();
    ensure!(status == 200, "scale-hook {body}: {status} {}", r.text()?);
    Ok(())
}
