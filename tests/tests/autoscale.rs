//! Autoscaling by hook, on the lab (3 controller members, one agent host), as a monitor and an
//! operator would drive it: hook tokens made with `hoist hook token create`; `scale-hook` and
//! Alertmanager's webhook (version 4) payloads posted to a member that is not the leader; every
//! decision listed by `hoist service autoscale history` with its source and what limited it;
//! the same alert delivered again scales once; bounds are kept; bad input changes nothing; a
//! scale is no version, so `history` and `rollback` keep to real deploys.

use anyhow::{ensure, Context, Result};
use hoist_tests::cluster_lab::ClusterLab;
use hoist_tests::controller_lab::serial;
use serde_json::{json, Value};
use std::time::Duration;

const MEMBER_FLAGS: &[&str] = &[
    "--node-grace",
    "3s",
    "--heartbeat-interval",
    "500ms",
    "--autoscale-max-replicas",
    "50",
];

fn web(max: i64) -> Value {
    json!({
        "name": "web",
        "image": "busybox",
        "command": ["httpd", "-f", "-p", "80"],
        "replicas": 1,
        "autoscale": {"min": 1, "max": max, "cooldown_up": "0s", "stabilization_down": "2s"},
    })
}

/// An Alertmanager (webhook version 4) payload with one alert for `service`.
fn alert(service: &str, direction: &str, starts_at: &str) -> Value {
    json!({
        "version": "4",
        "groupKey": "{}:{alertname=\"HighLoad\"}",
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "hoist",
        "groupLabels": {"alertname": "HighLoad"},
        "commonLabels": {"alertname": "HighLoad"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.invalid:9093",
        "alerts": [{
            "status": "firing",
            "labels": {"alertname": "HighLoad", "hoist_service": service, "hoist_scale": direction},
            "annotations": {"summary": "load"},
            "startsAt": starts_at,
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.invalid/graph",
            "fingerprint": format!("{service}-{direction}"),
        }],
    })
}

/// A POST to member `i` with a bearer token: status and JSON body.
fn post(
    lab: &ClusterLab,
    i: usize,
    path: &str,
    token: Option<&str>,
    body: &Value,
) -> Result<(u16, Value)> {
    let http = reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()?;
    let mut req = http
        .post(format!("http://{}{path}", lab.lab.addr(i)))
        .header("content-type", "application/json")
        .body(serde_json::to_vec(body)?);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let r = req.send()?;
    let code = r.status().as_u16();
    Ok((
        code,
        serde_json::from_slice(&r.bytes()?).unwrap_or(Value::Null),
    ))
}

fn replicas(lab: &ClusterLab) -> Result<i64> {
    lab.get("/v1/services/web")?["spec"]["replicas"]
        .as_i64()
        .context("replicas")
}

fn history(lab: &ClusterLab) -> Result<Value> {
    let out = lab.hoist_ok(&["-o", "json", "service", "autoscale", "history", "web"])?;
    Ok(serde_json::from_str(&out)?)
}

#[test]
fn hooks_scale_within_bounds_once_per_alert_and_say_why() -> Result<()> {
    let _serial = serial();
    let mut lab = ClusterLab::start(3, MEMBER_FLAGS)?;
    lab.add_agent("a1", &[])?;
    let (code, out, err) = lab.apply(&web(3), &[])?;
    ensure!(code == 0, "apply: {out}{err}");
    let leader = lab.lab.leader().context("a leader")?;
    let follower = (leader + 1) % 3;
    let via_follower =
        |path: &str, token: Option<&str>, body: &Value| post(&lab, follower, path, token, body);

    // No token exists yet: the hooks answer 401 and scale nothing.
    let (code, body) = via_follower(
        "/v1/services/web/scale-hook",
        None,
        &json!({"direction": "up"}),
    )?;
    ensure!(
        code == 401 && body["code"] == "unauthorized",
        "{code} {body}"
    );
    ensure!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("hoist hook token create"),
        "{body}"
    );

    let token = lab.hoist_ok(&["hook", "token", "create", "--service", "web"])?;
    let token = token.trim().to_string();
    ensure!(token.starts_with("HOISTHOOK-"), "{token}");
    let any = lab
        .hoist_ok(&["hook", "token", "create"])?
        .trim()
        .to_string();
    let ls = lab.hoist_ok(&["hook", "token", "ls"])?;
    ensure!(
        ls.contains("web") && ls.contains("(any)") && !ls.contains(&token[10..]),
        "{ls}"
    );

    // A wrong token: 401.
    let (code, _) = via_follower(
        "/v1/services/web/scale-hook",
        Some("HOISTHOOK-0-00"),
        &json!({"direction": "up"}),
    )?;
    ensure!(code == 401, "{code}");

    // Up by a step, through a member that is not the leader.
    let (code, body) = via_follower(
        "/v1/services/web/scale-hook",
        Some(&token),
        &json!({"direction": "up"}),
    )?;
    ensure!(code == 200, "{code} {body}");
    ensure!(body["decisions"][0]["decision"]["to"] == 2, "{body}");
    ensure!(replicas(&lab)? == 2);

    // The same alert twice scales once; a new firing (another startsAt) scales again, clamped.
    let first = alert("web", "up", "2026-12-04T10:00:00Z");
    let (code, body) = via_follower("/v1/hooks/alertmanager", Some(&any), &first)?;
    ensure!(
        code == 200 && body["decisions"][0]["applied"] == true,
        "{code} {body}"
    );
    let (code, body) = post(&lab, leader, "/v1/hooks/alertmanager", Some(&any), &first)?;
    ensure!(
        code == 200 && body["decisions"][0]["applied"] == false,
        "{code} {body}"
    );
    ensure!(replicas(&lab)? == 3, "one scale for one alert");
    let (_, body) = via_follower(
        "/v1/hooks/alertmanager",
        Some(&any),
        &alert("web", "up", "2026-12-04T10:30:00Z"),
    )?;
    let d = &body["decisions"][0]["decision"];
    ensure!(d["to"] == 3 && d["detail"] == "clamped to max 3", "{body}");

    // Bad input: named field, nothing changes.
    let mut bad = first.clone();
    bad["alerts"][0]["labels"]["hoist_scale"] = json!("sideways");
    let (code, body) = via_follower("/v1/hooks/alertmanager", Some(&any), &bad)?;
    ensure!(
        code == 400 && body["field"] == "alerts[0].labels.hoist_scale",
        "{code} {body}"
    );
    let (code, body) = via_follower(
        "/v1/hooks/alertmanager",
        Some(&any),
        &json!({"version": "4"}),
    )?;
    ensure!(code == 400, "{code} {body}");
    let (code, body) = via_follower(
        "/v1/hooks/alertmanager",
        Some(&any),
        &alert("nosuch", "up", "2026-12-04T10:00:00Z"),
    )?;
    ensure!(code == 404, "{code} {body}");
    // A token for web cannot scale another service.
    let (code, body) = via_follower(
        "/v1/services/other/scale-hook",
        Some(&token),
        &json!({"replicas": 2}),
    )?;
    ensure!(code == 403, "{code} {body}");
    let (code, body) = via_follower(
        "/v1/services/web/scale-hook",
        Some(&token),
        &json!({"direction": "up", "replicas": 2}),
    )?;
    ensure!(code == 400, "{code} {body}");
    ensure!(replicas(&lab)? == 3);

    // Down: held by the stabilization window (the last up is within 2 s), then allowed.
    let (_, body) = via_follower(
        "/v1/services/web/scale-hook",
        Some(&token),
        &json!({"replicas": 1}),
    )?;
    let d = &body["decisions"][0]["decision"];
    ensure!(
        d["to"] == 3
            && d["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("stabilization_down"),
        "{body}"
    );
    std::thread::sleep(Duration::from_millis(2_100)); // the window itself, not a wait for a condition
    let (_, body) = via_follower(
        "/v1/services/web/scale-hook",
        Some(&token),
        &json!({"replicas": 1}),
    )?;
    ensure!(body["decisions"][0]["decision"]["to"] == 1, "{body}");

    // The history says who asked and what limited it, newest last; no new versions.
    let h = history(&lab)?;
    let sources: Vec<&str> = h["decisions"]
        .as_array()
        .context("decisions")?
        .iter()
        .filter_map(|d| d["source"].as_str())
        .collect();
    ensure!(
        sources == ["hook", "alertmanager", "alertmanager", "hook", "hook"],
        "{h}"
    );
    let table = lab.hoist_ok(&["service", "autoscale", "history", "web"])?;
    ensure!(
        table.contains("clamped to max 3") && table.contains("alert HighLoad firing"),
        "{table}"
    );
    let versions: Value =
        serde_json::from_str(&lab.hoist_ok(&["-o", "json", "service", "history", "web"])?)?;
    ensure!(
        versions.as_array().map(Vec::len) == Some(1),
        "scales made versions: {versions}"
    );

    // The operator's scale is recorded too and is no version either; an apply of the same file
    // keeps the autoscaled count.
    lab.hoist_ok(&["service", "scale", "web", "2"])?;
    let (code, out, err) = lab.apply(&web(3), &[])?;
    ensure!(code == 0, "{out}{err}");
    ensure!(replicas(&lab)? == 2, "apply kept the count");
    ensure!(
        history(&lab)?["decisions"]
            .as_array()
            .and_then(|d| d.last())
            .map(|d| d["source"].clone())
            == Some(json!("operator"))
    );

    // Bounds: min > max, and max above the cluster's cap, are refused at apply.
    let mut wrong = web(3);
    wrong["autoscale"]["min"] = json!(5);
    let (code, _, err) = lab.apply(&wrong, &[])?;
    ensure!(code != 0 && err.contains("autoscale.max"), "{err}");
    let (code, _, err) = lab.apply(&web(100), &[])?;
    ensure!(code != 0 && err.contains("cap of 50"), "{err}");

    // Revoked tokens stop working.
    let id = token.split('-').nth(1).context("token id")?.to_string();
    lab.hoist_ok(&["hook", "token", "rm", &id])?;
    let (code, _) = via_follower(
        "/v1/services/web/scale-hook",
        Some(&token),
        &json!({"direction": "up"}),
    )?;
    ensure!(code == 401, "{code}");
    Ok(())
}

/// A process of the test (Prometheus, Alertmanager, a load generator), killed when dropped.
struct Daemon(std::process::Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(cmd: &str, log: &std::path::Path) -> Result<Daemon> {
    let out = std::fs::File::create(log)?;
    let child = std::process::Command::new("sh")
        .args(["-c", &format!("exec {cmd}")])
        .stdout(out.try_clone()?)
        .stderr(out)
        .spawn()
        .with_context(|| format!("start {cmd}"))?;
    Ok(Daemon(child))
}

fn http_get(url: &str) -> Result<(u16, String)> {
    let r = reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()?
        .get(url)
        .send()?;
    Ok((r.status().as_u16(), r.text()?))
}

/// The sum of a counter's samples in a Prometheus text exposition.
fn counter(text: &str, name: &str, label: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The issue's end-to-end run with the real tools: Prometheus scrapes the controllers and the
/// agent; a rule on the service's traffic fires while a load generator runs against it;
/// Alertmanager posts to the hook and the service scales up, once, though Alertmanager repeats
/// the notification; when the load stops, the pull policy (a PromQL query through the leader)
/// scales it back down, but only after the stabilization window.
#[test]
fn prometheus_and_alertmanager_scale_up_on_an_alert_and_the_query_scales_down() -> Result<()> {
    let _serial = serial();
    for tool in ["prometheus", "prometheus-alertmanager", "hey"] {
        ensure!(
            hoist_tests::sh(&format!("command -v {tool}")).is_ok(),
            "{tool} is required (deploy/install-deps.sh installs it)"
        );
    }
    // Prometheus and Alertmanager run on controller host 0, reachable by every member.
    let mut mon_ip = String::new();
    let mut lab = ClusterLab::start_with(3, |l| {
        mon_ip = l.ip(0).to_string();
        ["--node-grace", "3s", "--heartbeat-interval", "500ms"]
            .iter()
            .map(|s| s.to_string())
            .chain(["--prometheus".into(), format!("http://{}:9090", l.ip(0))])
            .collect()
    })?;
    lab.agent_flags = vec!["--metrics-listen".into(), "0.0.0.0:9323".into()];
    let a = lab.add_agent("a1", &[])?;
    let agent_ip = lab.lab.ip(lab.agents[a].lab_index()).to_string();
    let ns = lab.lab.netns(0).to_string();
    let dir = tempfile::tempdir()?;
    let d = dir.path();

    let window_s = 8;
    let spec = json!({
        "name": "web",
        "image": "busybox",
        "command": ["sh", "-c", "mkdir -p /w && dd if=/dev/zero of=/w/blob bs=1k count=32 2>/dev/null && exec httpd -f -p 80 -h /w"],
        "replicas": 1,
        "ports": [{"target": 80, "published": 18090}],
        "health_check": {"tcp_port": 80, "interval": "500ms", "timeout": "1s", "retries": 2},
        "autoscale": {
            "min": 1, "max": 3, "cooldown_up": "0s", "stabilization_down": format!("{window_s}s"),
            // Bytes sent per replica per second, capped at the target: it never asks for more
            // replicas (the alert does), and asks for fewer once the traffic stops.
            "query": "clamp_max(sum(rate(hoist_container_network_transmit_bytes_total{service=\"web\"}[5s])) / max(hoist_service_replicas_running{service=\"web\"}), 100000)",
            "target_value": 100000,
            "interval": "1s",
        },
    });
    let (code, out, err) = lab.apply(&spec, &[])?;
    ensure!(code == 0, "apply: {out}{err}");
    let token = lab
        .hoist_ok(&["hook", "token", "create", "--service", "web"])?
        .trim()
        .to_string();
    // Prometheus reads the controllers' /metrics as a viewer.
    let scrape = lab
        .hoist_ok(&["token", "create", "prometheus", "--role", "viewer"])?
        .trim()
        .to_string();

    let targets = |port: u16, hosts: Vec<String>| {
        hosts
            .iter()
            .map(|h| format!("'{h}:{port}'"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let members: Vec<String> = (0..3).map(|i| lab.lab.ip(i).to_string()).collect();
    std::fs::write(
        d.join("rules.yml"),
        r#"groups:
  - name: hoist
    interval: 1s
    rules:
      - alert: HighLoad
        expr: sum(rate(hoist_container_network_transmit_bytes_total{service="web"}[5s])) > 200000
        labels: {hoist_service: web, hoist_scale: up}
        annotations: {summary: "web sends more than 200 kB/s"}
"#,
    )?;
    std::fs::write(
        d.join("prometheus.yml"),
        format!(
            "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
             rule_files: ['{rules}']\n\
             alerting: {{alertmanagers: [{{static_configs: [{{targets: ['{mon_ip}:9093']}}]}}]}}\n\
             scrape_configs:\n\
             \x20 - {{job_name: controllers, authorization: {{credentials: '{scrape}'}}, static_configs: [{{targets: [{controllers}]}}]}}\n\
             \x20 - {{job_name: agents, static_configs: [{{targets: ['{agent_ip}:9323']}}]}}\n",
            rules = d.join("rules.yml").display(),
            controllers = targets(7070, members.clone()),
        ),
    )?;
    std::fs::write(
        d.join("alertmanager.yml"),
        format!(
            "route: {{receiver: hoist, group_by: [alertname], group_wait: 1s, group_interval: 1s, repeat_interval: 2s}}\n\
             receivers:\n\
             \x20 - name: hoist\n\
             \x20   webhook_configs:\n\
             \x20     - url: 'http://{member}/v1/hooks/alertmanager'\n\
             \x20       send_resolved: true\n\
             \x20       http_config: {{authorization: {{credentials: '{token}'}}}}\n",
            member = lab.lab.addr(1),
        ),
    )?;
    let _prometheus = spawn(
        &format!(
            "ip netns exec {ns} prometheus --config.file={d}/prometheus.yml --storage.tsdb.path={d}/tsdb --web.listen-address={mon_ip}:9090",
            d = d.display()
        ),
        &d.join("prometheus.log"),
    )?;
    let _alertmanager = spawn(
        &format!(
            "ip netns exec {ns} prometheus-alertmanager --config.file={d}/alertmanager.yml --storage.path={d}/am --web.listen-address={mon_ip}:9093 --cluster.listen-address=",
            d = d.display()
        ),
        &d.join("alertmanager.log"),
    )?;
    let logs = || {
        format!(
            "--- prometheus\n{}\n--- alertmanager\n{}",
            hoist_tests::tail(
                &std::fs::read_to_string(d.join("prometheus.log")).unwrap_or_default(),
                8
            ),
            hoist_tests::tail(
                &std::fs::read_to_string(d.join("alertmanager.log")).unwrap_or_default(),
                8
            )
        )
    };
    lab.wait_until(
        "Prometheus and Alertmanager ready, web serving",
        Duration::from_secs(60),
        || {
            let p = http_get(&format!("http://{mon_ip}:9090/-/ready"))
                .map(|r| r.0)
                .unwrap_or(0);
            let am = http_get(&format!("http://{mon_ip}:9093/-/ready"))
                .map(|r| r.0)
                .unwrap_or(0);
            let ready = lab.ready_replicas("web")?;
            Ok((
                ((p, am, ready) == (200, 200, 1)).then_some(()),
                format!(
                    "prometheus {p}, alertmanager {am}, web ready {ready}\n{}",
                    logs()
                ),
            ))
        },
    )?;
    // Every target is up before the load starts.
    lab.wait_until(
        "Prometheus scraping 3 controllers and the agent",
        Duration::from_secs(30),
        || {
            let (_, body) = http_get(&format!("http://{mon_ip}:9090/api/v1/query?query=sum(up)"))?;
            let up = body.contains("\"4\"");
            Ok((up.then_some(()), body))
        },
    )?;

    let load = spawn(
        &format!("hey -z 60s -c 4 http://{agent_ip}:18090/blob"),
        &d.join("hey.log"),
    )?;
    let decisions = |src: &str| -> Result<Vec<Value>> {
        Ok(history(&lab)?["decisions"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|d| d["source"] == src)
            .collect())
    };
    let up = lab.wait_until("the alert to scale web up", Duration::from_secs(60), || {
        let am = decisions("alertmanager")?;
        let scaled = am
            .iter()
            .find(|d| d["to"].as_i64() > d["from"].as_i64())
            .cloned();
        Ok((scaled, format!("alertmanager decisions {am:?}\n{}", logs())))
    })?;
    ensure!(up["from"] == 1 && up["to"] == 2, "{up}");
    // Alertmanager repeats the notification every 2 s while the alert fires: it scaled once.
    let sent = lab.wait_until(
        "Alertmanager to notify the hook 3 times",
        Duration::from_secs(30),
        || {
            let (_, m) = http_get(&format!("http://{mon_ip}:9093/metrics"))?;
            let n = counter(
                &m,
                "alertmanager_notifications_total",
                "integration=\"webhook\"",
            );
            Ok(((n >= 3.0).then_some(n), format!("{n} notifications")))
        },
    )?;
    let am = decisions("alertmanager")?;
    ensure!(
        am.len() == 1,
        "{sent} notifications made {} decisions: {am:?}",
        am.len()
    );
    ensure!(replicas(&lab)? == 2, "web scaled once");

    drop(load);
    let stopped = std::time::Instant::now();
    let down = lab.wait_until(
        "the query to scale web down",
        Duration::from_secs(90),
        || {
            let q = decisions("query")?;
            let down = q
                .iter()
                .find(|d| d["to"].as_i64() < d["from"].as_i64())
                .cloned();
            Ok((down, format!("query decisions {q:?}\n{}", logs())))
        },
    )?;
    let after = stopped.elapsed();
    ensure!(down["from"] == 2 && down["to"] == 1, "{down}");
    ensure!(
        after >= Duration::from_secs(window_s),
        "scaled down {after:?} after the load stopped, within the {window_s}s stabilization window"
    );
    ensure!(
        down["reason"]
            .as_str()
            .unwrap_or_default()
            .starts_with("query value"),
        "{down}"
    );
    eprintln!("[lab] scaled up by the alert, down by the query {after:.1?} after the load stopped");

    // A query Prometheus refuses is recorded once, with Prometheus' own error, and scales nothing.
    let mut broken = spec.clone();
    broken["name"] = json!("broken");
    broken["ports"] = json!([]);
    broken["autoscale"]["query"] = json!("sum(rate(");
    let (code, out, err) = lab.apply(&broken, &["-d"])?;
    ensure!(code == 0, "apply: {out}{err}");
    let failed = lab.wait_until(
        "the broken query to be recorded",
        Duration::from_secs(30),
        || {
            let out = lab.hoist_ok(&["-o", "json", "service", "autoscale", "history", "broken"])?;
            let h: Value = serde_json::from_str(&out)?;
            let d = h["decisions"].as_array().cloned().unwrap_or_default();
            Ok((d.first().cloned(), out))
        },
    )?;
    ensure!(
        failed["reason"] == "query failed: nothing scaled"
            && failed["from"] == failed["to"]
            && failed["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("bad_data"),
        "{failed}"
    );
    // Evaluated every second, it is still one entry: the same error is recorded once.
    std::thread::sleep(Duration::from_secs(3)); // three more evaluations, not a wait for a condition
    let out = lab.hoist_ok(&["-o", "json", "service", "autoscale", "history", "broken"])?;
    let h: Value = serde_json::from_str(&out)?;
    ensure!(h["decisions"].as_array().map(Vec::len) == Some(1), "{h}");
    ensure!(h["replicas"] == 1, "{h}");
    Ok(())
}
