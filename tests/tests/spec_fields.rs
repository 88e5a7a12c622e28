//! The complete spec's container fields, seen from inside the container (the probe's `spec`
//! report): first through `hoist run`'s Docker flags on one host, then as a one-node cluster
//! service whose named volume keeps its data across a service update, and which the controllers
//! list with their users (`hoist node volumes`).

use anyhow::{ensure, Context, Result};
use hoist_tests::cluster_lab::ClusterLab;
use hoist_tests::controller_lab::serial;
use hoist_tests::{run_id, Host};
use serde_json::{json, Value};
use std::time::Duration;

/// The fields every report must show: uid/gid 1000, cwd /srv, the hostname, nofile 1024:2048, a
/// read-only root, a pids limit of 32 that stops forks, an 8 MiB tmpfs at /scratch (nosuid,
/// nodev, mode 1777), `/var/www` a volume with the image's content, `/tmp` a volume with the
/// image's mode (1777).
fn check_report(r: &Value, hostname: &str) -> Result<()> {
    let first = |f: &str| {
        r[f].as_str()
            .unwrap_or_default()
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string()
    };
    ensure!(first("uid") == "1000" && first("gid") == "1000", "ids: {r}");
    ensure!(r["cwd"] == "/srv", "cwd: {r}");
    ensure!(r["hostname"] == hostname, "hostname: {r}");
    ensure!(r["nofile"] == json!([1024, 2048]), "nofile: {r}");
    ensure!(r["root_read_only"] == true, "read-only root: {r}");
    ensure!(r["pids_max"] == "32", "pids.max: {r}");
    let forks = r["forks_of_64"].as_u64().unwrap_or(64);
    ensure!(
        forks < 32,
        "the pids limit let {forks} of 64 forks through: {r}"
    );
    let scratch = &r["paths"]["/scratch"];
    ensure!(scratch["tmpfs"] == true, "/scratch is a tmpfs: {r}");
    ensure!(scratch["size_bytes"] == 8 << 20, "/scratch is 8 MiB: {r}");
    ensure!(
        scratch["nosuid_nodev"] == true && scratch["mode"] == "1777",
        "{r}"
    );
    let www = &r["paths"]["/var/www"];
    ensure!(
        www["tmpfs"] == false && www["entries"] == json!(["index.html"]),
        "/var/www starts with the image's content: {r}"
    );
    ensure!(
        www["uid"] == 0 && www["mode"] == "755",
        "the image's owner and mode: {r}"
    );
    ensure!(
        r["paths"]["/tmp"]["mode"] == "1777",
        "/tmp keeps the image's mode: {r}"
    );
    Ok(())
}

#[test]
fn run_flags_reach_the_container_and_volumes_are_managed() -> Result<()> {
    let h = Host::start("h1")?;
    let id = run_id();
    let (www, tmp) = (format!("www-{id}"), format!("tmp-{id}"));
    let out = h.hoist_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-u",
        "1000:1000",
        "-w",
        "/srv",
        "--hostname",
        "spec-run",
        "--read-only",
        "--ulimit",
        "nofile=1024:2048",
        "--tmpfs",
        "/scratch:size=8m,mode=1777",
        "--pids-limit",
        "32",
        "-v",
        &format!("{www}:/var/www:ro"),
        "--mount",
        &format!("type=volume,source={tmp},target=/tmp"),
        "probe",
        "/bin/probe",
        "spec",
        "/scratch",
        "/var/www",
        "/tmp",
    ])?;
    let report: Value = serde_json::from_str(out.trim()).context(out.clone())?;
    check_report(&report, "spec-run")?;
    ensure!(report["paths"]["/var/www"]["read_only"] == true, "{report}");

    // Both volumes outlived the --rm container; ls and inspect show them.
    let ls: Value = serde_json::from_str(&h.hoist_ok(&["volume", "ls", "-o", "json"])?)?;
    let names: Vec<&str> = ls
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["name"].as_str())
        .collect();
    ensure!(
        names.contains(&www.as_str()) && names.contains(&tmp.as_str()),
        "{ls}"
    );
    let inspect: Value = serde_json::from_str(&h.hoist_ok(&["volume", "inspect", &www])?)?;
    ensure!(inspect[0]["size_bytes"].as_u64() > Some(0), "{inspect}");
    ensure!(inspect[0]["used_by"] == json!([]), "{inspect}");

    // In use: rm is refused with a clear error; once the container is gone, it goes.
    let user = format!("user-{id}");
    h.hoist_ok(&[
        "run",
        "-d",
        "--name",
        &user,
        "--network",
        "none",
        "-v",
        &format!("{www}:/w"),
        "busybox",
        "sleep",
        "100",
    ])?;
    let refused = h.hoist(&["volume", "rm", &www])?;
    let err = String::from_utf8_lossy(&refused.stderr);
    ensure!(!refused.status.success(), "rm of a volume in use succeeded");
    ensure!(
        err.contains(&format!("volume {www} is in use by container(s) {user}")),
        "{err}"
    );
    h.hoist_ok(&["rm", "-f", &user])?;
    h.hoist_ok(&["volume", "rm", &www, &tmp])?;
    let gone = h.hoist(&["volume", "inspect", &www])?;
    ensure!(
        !gone.status.success(),
        "inspect of a removed volume succeeded"
    );
    ensure!(h.hoist_ok(&["volume", "ls", "-q"])?.trim().is_empty());
    Ok(())
}

#[test]
fn a_service_runs_every_field_and_its_volume_keeps_data_across_an_update() -> Result<()> {
    let _g = serial();
    let mut lab = ClusterLab::start(1, &[])?;
    lab.add_agent("a1", &[])?;
    let id = run_id();
    let (name, state, www) = (
        format!("spec{id}"),
        format!("state-{id}"),
        format!("www-{id}"),
    );
    let spec = |version: &str| {
        json!({
            "name": name,
            "image": "probe",
            "command": ["sh", "-c",
                "/bin/probe spec /scratch /var/www /tmp > /tmp/report-$V.json; \
                 echo $V >> /tmp/versions; exec sleep 1000"],
            "env": {"V": version},
            "user": "1000:1000",
            "workdir": "/srv",
            "hostname": "spec-svc",
            "read_only": true,
            "ulimits": {"nofile": {"soft": 1024, "hard": 2048}},
            "mounts": [
                {"type": "volume", "source": state, "target": "/tmp"},
                {"type": "volume", "source": www, "target": "/var/www", "read_only": true},
                {"type": "tmpfs", "target": "/scratch", "size": "8Mi", "mode": "1777"},
            ],
            "resources": {"limits": {"pids": 32, "memory": "64Mi"}},
            "update": {"parallelism": 1, "monitor": "1s"},
        })
    };
    let data = lab.agents[0]
        .host
        .data_dir()
        .join("named-volumes")
        .join(&state)
        .join("_data");
    for version in ["1", "2"] {
        let (code, out, err) = lab.apply(&spec(version), &[])?;
        ensure!(code == 0, "apply v{version}: {out} {err}");
        let report = data.join(format!("report-{version}.json"));
        // The report is complete once it parses (the shell makes the file before the probe
        // writes it).
        let r: Value = lab.wait_until(
            &format!("the v{version} replica's report"),
            Duration::from_secs(60),
            || {
                let text = std::fs::read_to_string(&report).unwrap_or_default();
                let running = lab.running_on(0, &name)?.len();
                Ok((
                    serde_json::from_str(text.trim()).ok(),
                    format!("{running} replica(s) running on a1; report {text:?}"),
                ))
            },
        )?;
        check_report(&r, "spec-svc")?;
    }
    // One volume across the update: the v2 replica found what v1 wrote.
    let versions = std::fs::read_to_string(data.join("versions"))?;
    ensure!(versions == "1\n2\n", "the volume's history: {versions:?}");
    let vols: Value = serde_json::from_str(
        &lab.agents[0]
            .host
            .hoist_ok(&["volume", "ls", "-o", "json"])?,
    )?;
    ensure!(vols.as_array().map(Vec::len) == Some(2), "{vols}");
    // The controllers know them too: the agent reports its volumes to the leader when their
    // users change, so `hoist node volumes` soon lists both with the v2 replica as a user.
    let node = lab.node_id(0).context("a1's node id")?;
    lab.wait_until(
        "hoist node volumes to list both volumes used by the running replica",
        Duration::from_secs(30),
        || {
            let running: Vec<String> = lab
                .running_on(0, &name)?
                .iter()
                .filter_map(|c| c["name"].as_str().map(str::to_owned))
                .collect();
            let out = lab.hoist_ok(&["node", "volumes", &node, "-o", "json"])?;
            let v: Value = serde_json::from_str(&out)?;
            let listed = |vol: &str| {
                let found = v["volumes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|x| x["name"] == vol);
                found.is_some_and(|x| {
                    let users: Vec<String> =
                        serde_json::from_value(x["used_by"].clone()).unwrap_or_default();
                    users.contains(&running[0]) && x["size_bytes"].is_u64()
                })
            };
            let ok = running.len() == 1
                && v["node"] == node.as_str()
                && v["reported_ms_ago"].is_u64()
                && [&state, &www].iter().all(|vol| listed(vol));
            Ok((
                ok.then_some(()),
                format!("running {running:?}; node volumes {v}"),
            ))
        },
    )?;
    let (code, _, err) = lab.hoist(&["node", "volumes", "no-such-node"])?;
    ensure!(
        code != 0 && err.contains("not found"),
        "an unknown node: {code} {err}"
    );
    lab.hoist_ok(&["service", "rm", &name])?;
    Ok(())
}
