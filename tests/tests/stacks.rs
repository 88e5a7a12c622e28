//! Stacks from Compose files, on the lab: 3 controller members and 2 agent hosts on the overlay,
//! an external client in a namespace of its own. As an operator would: `hoist stack deploy` of a
//! three-service application (a web front end with a published port, an API, a database with a
//! named volume and a stop signal) that answers through each service's short Compose name; a
//! second deploy without a change changes nothing; the database's data survives its update; a
//! broken image in one service rolls the whole release back and the deploy exits non-zero.

use anyhow::{ensure, Context, Result};
use hoist_tests::cluster_lab::ClusterLab;
use hoist_tests::controller_lab::serial;
use hoist_tests::sh;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

const MEMBER_FLAGS: &[&str] = &["--node-grace", "3s", "--heartbeat-interval", "500ms"];

/// The scripts the replicas run, bind-mounted read-only from the host (every lab host shares
/// its filesystem). Each serves HTTP with busybox httpd; the API and the front end ask the
/// next service by its short name (`db`, `api`), which only the stack's search domain resolves.
const DB: &str = "#!/bin/sh\n\
    [ -f /data/seed ] || cat /proc/sys/kernel/random/uuid > /data/seed\n\
    exec httpd -f -p 5432 -h /data\n";
const API: &str = "#!/bin/sh\n\
    mkdir -p /w/cgi-bin\n\
    printf '#!/bin/sh\\necho Content-Type: text/plain\\necho\\necho \"api sees $(wget -q -O - http://db:5432/seed)\"\\n' > /w/cgi-bin/data\n\
    chmod +x /w/cgi-bin/data\n\
    exec httpd -f -p 80 -h /w\n";
const WEB: &str = "#!/bin/sh\n\
    mkdir -p /w/cgi-bin\n\
    printf '#!/bin/sh\\necho Content-Type: text/plain\\necho\\necho \"web -> $(wget -q -O - http://api/cgi-bin/data)\"\\n' > /w/cgi-bin/front\n\
    chmod +x /w/cgi-bin/front\n\
    exec httpd -f -p 80 -h /w\n";

/// The Compose file: `api_image` and `db_rev` change between deploys.
fn compose(scripts: &Path, api_image: &str, db_rev: &str) -> String {
    let s = scripts.display();
    format!(
        r#"
name: ignored-by-stacks
x-probe: &probe
  interval: 500ms
  timeout: 2s
  retries: 2
services:
  web:
    image: busybox
    command: ["sh", "/s/web.sh"]
    volumes: ["{s}:/s:ro"]
    ports: ["18080:80"]
    depends_on: [api]
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1/cgi-bin/front"]
      <<: *probe
  api:
    image: {api_image}
    command: ["sh", "/s/api.sh"]
    volumes:
      - type: bind
        source: {s}
        target: /s
        read_only: true
    deploy:
      replicas: 2
      update_config:
        monitor: 2s
    healthcheck:
      test: ["CMD-SHELL", "wget -q -O /dev/null http://127.0.0.1/cgi-bin/data"]
      <<: *probe
  db:
    image: busybox
    command: ["sh", "/s/db.sh"]
    environment:
      REV: "{db_rev}"
    stop_signal: SIGINT
    stop_grace_period: 5s
    volumes:
      - dbdata:/data
      - {s}:/s:ro
    deploy:
      placement:
        constraints: ["node.labels.db == yes"]
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:5432/seed"]
      <<: *probe
volumes:
  dbdata: {{}}
"#
    )
}

struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn deploy(lab: &ClusterLab, file: &Path, stack: &str) -> Result<(i32, String, String)> {
    let file = file.to_str().context("path")?;
    lab.hoist(&[
        "stack",
        "deploy",
        "-c",
        file,
        "--no-resolve-image",
        "--progress-deadline",
        "90s",
        stack,
    ])
}

/// What the front end answers through the published port of agent `i`'s host.
fn front(lab: &ClusterLab, client_ns: &str, i: usize) -> Result<String> {
    let ip = lab.lab.ip(lab.agents[i].lab_index());
    let out = sh(&format!(
        "ip netns exec {client_ns} timeout 5 busybox wget -q -O - http://{ip}:18080/cgi-bin/front"
    ))?;
    ensure!(
        out.status.success(),
        "GET front: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// `hoist stack ps`, and what an API replica sees of its names, for failure reports.
fn stack_ps(lab: &ClusterLab, stack: &str) -> String {
    let mut out = match lab.hoist(&["stack", "ps", stack]) {
        Ok((_, out, err)) => format!("{out}{err}"),
        Err(e) => e.to_string(),
    };
    for (i, a) in lab.agents.iter().enumerate() {
        let Ok(list) = lab.running_on(i, &format!("{stack}_api")) else {
            continue;
        };
        if let Some(id) = list.first().and_then(|c| c["id"].as_str()) {
            if let Ok(o) =
                a.host
                    .hoist(&["exec", id, "sh", "-c", "cat /etc/resolv.conf; nslookup db"])
            {
                out.push_str(&format!(
                    "api on a{}: {}{}\n",
                    i + 1,
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                ));
            }
        }
    }
    out
}

fn service_version(lab: &ClusterLab, name: &str) -> Result<(u64, String)> {
    let s = lab.get(&format!("/v1/services/{name}"))?;
    Ok((
        s["version"].as_u64().context("version")?,
        s["spec"]["image"].as_str().unwrap_or_default().to_string(),
    ))
}

#[test]
fn a_compose_stack_deploys_answers_by_short_names_and_rolls_back_as_one() -> Result<()> {
    let _g = serial();
    // Made before the lab, so that it goes after the lab's agents (no replica left to recreate
    // the bind mount's source).
    let run = hoist_tests::run_id();
    let scratch = Scratch(std::env::temp_dir().join(format!("hoist-stack-{run}")));
    let mut lab = ClusterLab::start(3, MEMBER_FLAGS)?;
    lab.add_overlay_agent("a1", &[("db", "yes")])?;
    lab.add_overlay_agent("a2", &[])?;
    let client_ns = {
        let i = lab.lab.add_host()?;
        lab.lab.netns(i).to_string()
    };
    let scripts = scratch.0.join("scripts");
    std::fs::create_dir_all(&scripts)?;
    for (name, body) in [("db.sh", DB), ("api.sh", API), ("web.sh", WEB)] {
        std::fs::write(scripts.join(name), body)?;
    }
    let file = scratch.0.join("compose.yaml");
    let stack = format!("shop{run}");

    // 1. The first deploy: one release, followed to its verdict.
    std::fs::write(&file, compose(&scripts, "busybox", "1"))?;
    let (code, out, err) = deploy(&lab, &file, &stack)?;
    ensure!(code == 0, "first deploy: {out}\n{err}");
    ensure!(out.contains("release 1 completed"), "{out}");
    ensure!(
        err.contains("depends_on"),
        "a key without meaning in a cluster is a warning: {err}"
    );
    let seed = lab.wait_until(
        "the front end answers through api and db",
        Duration::from_secs(60),
        || match front(&lab, &client_ns, 1) {
            Ok(a) if a.starts_with("web -> api sees ") && a.len() > "web -> api sees ".len() => {
                Ok((Some(a), String::new()))
            }
            Ok(a) => Ok((None, a)),
            Err(e) => Ok((None, format!("{e}\n{}", stack_ps(&lab, &stack)))),
        },
    )?;
    let services = lab.hoist_ok(&["stack", "services", &stack])?;
    for s in ["web", "api", "db"] {
        ensure!(services.contains(&format!("{stack}_{s}")), "{services}");
    }
    ensure!(services.contains("2/2"), "api runs 2/2: {services}");
    let ps: Value = serde_json::from_str(&lab.hoist_ok(&["stack", "ps", &stack, "-o", "json"])?)?;
    ensure!(ps.as_array().map(Vec::len) == Some(3), "{ps}");
    let db = format!("{stack}_db");
    let inspect: Value = serde_json::from_str(&lab.hoist_ok(&["service", "inspect", &db])?)?;
    ensure!(inspect["spec"]["stop_signal"] == "SIGINT", "{inspect}");
    ensure!(
        inspect["spec"]["mounts"][0]["source"] == format!("{stack}_dbdata"),
        "the named volume carries the stack's name: {inspect}"
    );

    // 2. The same file again: nothing changes, no release.
    let (code, out, err) = deploy(&lab, &file, &stack)?;
    ensure!(code == 0 && out.contains("unchanged"), "{out}\n{err}");
    let history: Value =
        serde_json::from_str(&lab.hoist_ok(&["stack", "history", &stack, "-o", "json"])?)?;
    ensure!(history.as_array().map(Vec::len) == Some(1), "{history}");

    // 3. The database updated (a new container on the same node): its data stays.
    let (db_v1, _) = service_version(&lab, &db)?;
    std::fs::write(&file, compose(&scripts, "busybox", "2"))?;
    let (code, out, err) = deploy(&lab, &file, &stack)?;
    ensure!(
        code == 0 && out.contains("release 2 completed"),
        "{out}\n{err}"
    );
    ensure!(service_version(&lab, &db)?.0 == db_v1 + 1, "db updated");
    let after = lab.wait_until(
        "the front end answers after the db update",
        Duration::from_secs(30),
        || match front(&lab, &client_ns, 0) {
            Ok(a) if a.starts_with("web -> api sees ") && a.len() > 16 => {
                Ok((Some(a), String::new()))
            }
            Ok(a) => Ok((None, a)),
            Err(e) => Ok((None, e.to_string())),
        },
    )?;
    ensure!(
        after == seed,
        "the named volume kept the data: {seed:?} then {after:?}"
    );

    // 4. A broken image in the API (and a change to the db): the API's update fails, and the
    //    whole release goes back — the db too — with a non-zero exit.
    let (api_before, api_image) = service_version(&lab, &format!("{stack}_api"))?;
    let (db_before, _) = service_version(&lab, &db)?;
    std::fs::write(&file, compose(&scripts, "hoist-no-such-image:1", "3"))?;
    let (code, out, err) = deploy(&lab, &file, &stack)?;
    ensure!(code != 0, "a failed release exits non-zero: {out}\n{err}");
    ensure!(err.contains("rolled back"), "{out}\n{err}");
    let (api_after, image) = service_version(&lab, &format!("{stack}_api"))?;
    ensure!(
        api_after > api_before + 1 && image == api_image,
        "api went back to {api_image}: version {api_after}, {image}"
    );
    let db_spec = lab.get(&format!("/v1/services/{db}"))?;
    ensure!(
        db_spec["version"].as_u64() > Some(db_before + 1) && db_spec["spec"]["env"]["REV"] == "2",
        "db went back to REV=2 with the release: {db_spec}"
    );
    let history: Value =
        serde_json::from_str(&lab.hoist_ok(&["stack", "history", &stack, "-o", "json"])?)?;
    ensure!(history[2]["state"] == "rolled-back", "{history}");
    lab.wait_until(
        "the front end answers after the rollback",
        Duration::from_secs(60),
        || match front(&lab, &client_ns, 1) {
            Ok(a) if a == seed => Ok((Some(()), a)),
            Ok(a) => Ok((None, a)),
            Err(e) => Ok((None, e.to_string())),
        },
    )?;

    // 5. `stack rm` removes every service.
    lab.hoist_ok(&["stack", "rm", &stack])?;
    let left = lab.get("/v1/services")?;
    ensure!(
        !left.to_string().contains(&format!("{stack}_")),
        "no service of the stack is left: {left}"
    );
    Ok(())
}
