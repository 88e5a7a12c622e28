//! The agent as a cluster node, against a scripted controller that speaks the real protocol:
//! joining (fail-over past a dead address, labels, resources, advertise address), running its
//! assignments as labelled containers, health checks (TCP, exec), the restart policy, creation
//! failures, ignoring answers from an older term, re-adopting containers after `kill -9` of the
//! agent, registering again when the controller forgets the node, and keeping (and restarting)
//! replicas while no controller answers. Containers the worker did not create are never
//! touched.

use anyhow::{ensure, Result};
use hoist_proto::cluster::TaskState;
use hoist_proto::node::{Assignment, Health, TaskStatus};
use hoist_proto::service::{HealthCheck, RestartCondition, ServiceSpec};
use hoist_tests::controller_lab::{serial, Lab};
use hoist_tests::fake_controller::{FakeController, TOKEN};
use hoist_tests::{wait_for, Host};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

fn task(id: &str, slot: u64, spec: &ServiceSpec) -> Assignment {
    Assignment {
        task_id: id.into(),
        service: spec.name.clone(),
        service_version: 1,
        slot,
        spec: spec.clone(),
        desired: TaskState::Running,
        files: vec![],
        spec_held: false,
    }
}

fn spec(name: &str, command: &[&str]) -> ServiceSpec {
    let mut s = ServiceSpec::new(name, "busybox");
    s.command = command.iter().map(|c| c.to_string()).collect();
    s
}

fn check(interval: &str, retries: i64) -> HealthCheck {
    HealthCheck {
        command: vec![],
        http_path: None,
        tcp_port: None,
        interval: interval.into(),
        timeout: "1s".into(),
        retries,
        start_period: "0s".into(),
    }
}

/// The agent's containers by `hoist.task` label: (container id, status, labels).
fn tasks_on(host: &Host) -> Result<BTreeMap<String, Vec<(String, String)>>> {
    let list: Vec<Value> = serde_json::from_str(&host.hoist_ok(&["ps", "-a", "-o", "json"])?)?;
    let mut m: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for c in list {
        if let Some(t) = c["spec"]["labels"]["hoist.task"].as_str() {
            m.entry(t.to_string()).or_default().push((
                c["id"].as_str().unwrap_or_default().to_string(),
                c["status"].as_str().unwrap_or_default().to_string(),
            ));
        }
    }
    Ok(m)
}

fn status_of(fake: &FakeController, id: &str) -> Option<TaskStatus> {
    fake.read(|s| s.statuses.get(id).cloned())
}

fn wait_status(
    fake: &FakeController,
    host: &Host,
    id: &str,
    what: &str,
    ok: impl Fn(&TaskStatus) -> bool,
) -> Result<TaskStatus> {
    wait_for(
        &format!("task {id}: {what}"),
        Duration::from_secs(30),
        || {
            let st = status_of(fake, id);
            if st.as_ref().is_some_and(&ok) {
                return Ok(st);
            }
            anyhow::bail!(
                "last status {st:?}\nagent log:\n{}",
                hoist_tests::tail(&host.agent_log(), 15)
            )
        },
    )
}

#[test]
fn the_agent_runs_heals_and_reports_its_assignments() -> Result<()> {
    let _g = serial();
    let mut lab = Lab::new(0)?;
    let h = lab.add_host()?;
    let fake = FakeController::start(&lab.bridge_ip())?;
    // The first address refuses connections: the agent must move on to the next.
    let dead = format!("{}:1", lab.bridge_ip());
    let controllers = format!("{dead},{}", fake.addr);
    let mut host = Host::start_in(
        "node1",
        lab.netns(h),
        false,
        [
            "--subnet",
            "10.90.1.0/24",
            "--join",
            TOKEN,
            "--controller",
            &controllers,
            "--label",
            "zone=a",
            "--cpus",
            "1.5",
            "--memory",
            "1g",
        ]
        .map(String::from)
        .to_vec(),
        None,
    )?;

    // Joined with what it offers, its labels and its address on the lab network.
    let reg = wait_for("registration", Duration::from_secs(20), || {
        Ok(fake.read(|s| s.registrations.first().cloned()))
    })?;
    ensure!(reg.node_id.is_none(), "{reg:?}");
    ensure!(
        reg.labels.get("zone").map(String::as_str) == Some("a"),
        "{reg:?}"
    );
    ensure!(
        reg.capacity.cpu_millis == 1500 && reg.capacity.memory_bytes == 1 << 30,
        "{reg:?}"
    );
    ensure!(
        reg.address == lab.ip(h),
        "advertised {} not {}",
        reg.address,
        lab.ip(h)
    );
    ensure!(!reg.hostname.is_empty() && !reg.agent_version.is_empty());

    // A container of the operator's own: the worker must never touch it.
    host.hoist_ok(&["run", "-d", "--name", "mine", "busybox", "sleep", "1000"])?;

    let web = spec("web", &["sleep", "1000"]);
    let mut httpd = spec("httpd", &["httpd", "-f", "-p", "80"]);
    httpd.health_check = Some(HealthCheck {
        tcp_port: Some(80),
        ..check("300ms", 2)
    });
    let mut web_ok = spec("webok", &["httpd", "-f", "-p", "8080", "-h", "/"]);
    web_ok.health_check = Some(HealthCheck {
        http_path: Some("/etc/hostname".into()),
        tcp_port: Some(8080),
        ..check("300ms", 2)
    });
    let mut web_404 = web_ok.clone();
    web_404.name = "web404".into();
    if let Some(h) = web_404.health_check.as_mut() {
        h.http_path = Some("/nope".into());
    }
    let mut sick = spec("sick", &["sleep", "1000"]);
    sick.health_check = Some(HealthCheck {
        command: vec!["false".into()],
        ..check("300ms", 2)
    });
    let mut crash = spec("crash", &["sh", "-c", "exit 3"]);
    crash.restart.delay = "100ms".into();
    crash.restart.max_attempts = 2;
    crash.restart.window = "1m".into();
    let mut once = spec("once", &["true"]);
    once.restart.condition = RestartCondition::OnFailure;
    let bad = ServiceSpec::new("bad", "127.0.0.1:9/nope:1");
    fake.assign(vec![
        task("web-0", 0, &web),
        task("web-1", 1, &web),
        task("web-2", 2, &web),
        task("httpd-0", 0, &httpd),
        task("sick-0", 0, &sick),
        task("webok-0", 0, &web_ok),
        task("web404-0", 0, &web_404),
        task("crash-0", 0, &crash),
        task("once-0", 0, &once),
        task("bad-0", 0, &bad),
    ]);

    for id in ["web-0", "web-1", "web-2"] {
        let st = wait_status(&fake, &host, id, "running with an address", |s| {
            s.state == TaskState::Running && s.address.is_some()
        })?;
        ensure!(
            st.address
                .as_deref()
                .is_some_and(|a| a.starts_with("10.90.1."))
                && st.health == Health::None,
            "{st:?}"
        );
    }
    wait_status(&fake, &host, "httpd-0", "healthy (TCP check)", |s| {
        s.state == TaskState::Running && s.health == Health::Healthy
    })?;
    wait_status(&fake, &host, "webok-0", "healthy (HTTP check)", |s| {
        s.health == Health::Healthy
    })?;
    let st = wait_status(&fake, &host, "web404-0", "unhealthy (HTTP 404)", |s| {
        s.health == Health::Unhealthy
    })?;
    ensure!(st.message.contains("HTTP 404"), "{st:?}");
    let st = wait_status(&fake, &host, "sick-0", "unhealthy (exec check)", |s| {
        s.state == TaskState::Running && s.health == Health::Unhealthy
    })?;
    ensure!(st.message.contains("false exited with code 1"), "{st:?}");
    let st = wait_status(&fake, &host, "crash-0", "given up after 2 restarts", |s| {
        s.state == TaskState::Failed
    })?;
    ensure!(
        st.restarts == 2
            && st.exit_code == Some(3)
            && st.message.contains("gave up after 2 restarts"),
        "{st:?}"
    );
    let st = wait_status(&fake, &host, "once-0", "complete", |s| {
        s.state == TaskState::Complete
    })?;
    ensure!(st.exit_code == Some(0) && st.restarts == 0, "{st:?}");
    let st = wait_status(&fake, &host, "bad-0", "failed to start", |s| {
        s.state == TaskState::Failed
    })?;
    ensure!(
        st.message
            .contains("\"127.0.0.1:9/nope:1\" is not on this node and could not be pulled"),
        "{st:?}"
    );
    ensure!(host.inspect("mine")?["status"] == "running");

    // A deposed leader (older term) tells the node to run nothing: ignored.
    fake.update(|s| s.term = 5);
    wait_for("the agent to see term 5", Duration::from_secs(10), || {
        Ok(fake.read(|s| s.heartbeats > 0).then_some(()))
    })?;
    std::thread::sleep(Duration::from_millis(700));
    fake.update(|s| {
        s.assignments_term = 3;
        s.tasks.clear();
        s.index += 1;
    });
    std::thread::sleep(Duration::from_secs(2));
    let running = tasks_on(&host)?
        .values()
        .flatten()
        .filter(|(_, st)| st == "running")
        .count();
    ensure!(
        running >= 7,
        "a stale answer stopped containers: {:?}",
        tasks_on(&host)?
    );
    ensure!(host
        .agent_log()
        .contains("ignoring assignments from a deposed leader"));

    // The current leader: web-2 shuts down, everything else that is not assigned goes away.
    let mut web2 = task("web-2", 2, &web);
    web2.desired = TaskState::Shutdown;
    fake.update(|s| {
        s.assignments_term = 0;
        s.tasks = vec![task("web-0", 0, &web), task("web-1", 1, &web), web2];
        s.index += 1;
    });
    wait_status(&fake, &host, "web-2", "shut down", |s| {
        s.state == TaskState::Shutdown
    })?;
    wait_for("only web-0 and web-1 left", Duration::from_secs(30), || {
        let t = tasks_on(&host)?;
        let keys: Vec<&str> = t.keys().map(String::as_str).collect();
        Ok((keys == ["web-0", "web-1"]).then_some(()))
    })?;
    ensure!(
        host.inspect("mine")?["status"] == "running",
        "the operator's container was touched"
    );

    // kill -9 of the agent: the containers keep running and are adopted, not replaced.
    let before = tasks_on(&host)?;
    let reports_before = fake.read(|s| s.report_sizes.len());
    host.kill_agent()?;
    host.start_agent()?;
    let reg = wait_for(
        "registration after restart",
        Duration::from_secs(20),
        || Ok(fake.read(|s| s.registrations.get(1).cloned())),
    )?;
    ensure!(reg.node_id.as_deref() == Some("node-1"), "{reg:?}");
    wait_for(
        "a full status report after re-registering",
        Duration::from_secs(10),
        || {
            Ok(fake
                .read(|s| s.report_sizes[reports_before..].contains(&3))
                .then_some(()))
        },
    )?;
    std::thread::sleep(Duration::from_secs(2));
    ensure!(
        tasks_on(&host)? == before,
        "containers were replaced: {before:?} → {:?}",
        tasks_on(&host)?
    );

    // The controller forgets the node: it registers again under the same id.
    fake.update(|s| s.nodes.clear());
    wait_for(
        "registration after being forgotten",
        Duration::from_secs(10),
        || Ok(fake.read(|s| s.registrations.get(2).cloned())),
    )?;
    ensure!(fake.read(|s| s.registrations[2].node_id.as_deref() == Some("node-1")));

    // No controller at all: replicas keep running, and one that dies is restarted locally.
    drop(fake);
    let (web0, _) = before["web-0"][0].clone();
    host.hoist_ok(&["kill", &web0])?;
    let restarted = wait_for(
        "web-0 restarted without a controller",
        Duration::from_secs(20),
        || {
            let t = tasks_on(&host)?;
            Ok(t.get("web-0").and_then(|v| {
                v.iter()
                    .find(|(id, st)| *id != web0 && st == "running")
                    .map(|(id, _)| id.clone())
            }))
        },
    )?;
    let c = host.inspect(&restarted)?;
    ensure!(
        c["spec"]["labels"]["hoist.restarts"].as_str().is_some(),
        "{c}"
    );
    ensure!(tasks_on(&host)?["web-1"] == before["web-1"]);
    Ok(())
}
