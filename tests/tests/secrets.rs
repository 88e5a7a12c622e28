//! Secrets and configs as an operator uses them, on the lab (3 controller members, 2 agent
//! hosts): `hoist secret create` from standard input and `hoist config create` from a file; a
//! service whose replicas read both as files with the spec's mode; a new version of the secret
//! replaces the file in the running replicas (same containers) and sends them SIGHUP; `inspect`
//! tells the version and who uses it; `rm` is refused while a service uses it; 500 KiB is the
//! limit. Then the byte search the issue asks for: the secret's value is in none of the
//! controllers' or agents' data dirs (the agents' tmpfs aside, where the replicas read it), in no
//! log, in no snapshot and in no API answer.
//!
//! The value is made at run time (`v4lue-<pid>-...`), so that no file can hold it by accident.

use anyhow::{ensure, Context, Result};
use hoist_tests::cluster_lab::ClusterLab;
use hoist_tests::controller_lab::serial;
use serde_json::{json, Value};
use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

const MEMBER_FLAGS: &[&str] = &["--node-grace", "3s", "--heartbeat-interval", "500ms"];

/// `hoist secret create NAME -f -` with `value` on standard input.
fn create_secret(lab: &ClusterLab, name: &str, value: &str) -> Result<(i32, String, String)> {
    let mut child = lab
        .hoist_command()
        .args(["secret", "create", name, "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .context("stdin")?
        .write_all(value.as_bytes())?;
    let out = child.wait_with_output()?;
    Ok((
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// Whether the filesystem at `p` is a tmpfs (memory, not disk).
fn is_tmpfs(p: &Path) -> bool {
    let Ok(c) = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    // SAFETY: a zeroed statfs is a valid out-parameter; `c` is a NUL-terminated path.
    unsafe {
        let mut st: libc::statfs = std::mem::zeroed();
        libc::statfs(c.as_ptr(), &mut st) == 0 && st.f_type == libc::TMPFS_MAGIC
    }
}

/// The first file under `dir` (on disk: tmpfs mounts are skipped, and listed in `skipped`) that
/// holds `needle`.
fn disk_holds(dir: &Path, needle: &[u8], skipped: &mut Vec<String>) -> Result<Option<String>> {
    let mut skip = |d: &Path| {
        let memory = is_tmpfs(d);
        if memory {
            skipped.push(d.display().to_string());
        }
        memory
    };
    Ok(hoist_tests::file_holding(dir, needle, &mut skip)?.map(|p| p.display().to_string()))
}

/// Whether any regular file under `dir` (whatever its filesystem) holds `needle`.
fn disk_holds_anywhere(dir: &Path, needle: &[u8]) -> bool {
    matches!(
        hoist_tests::file_holding(dir, needle, &mut |_| false),
        Ok(Some(_))
    )
}

/// `hoist service exec api.SLOT -- ARGS`: stdout, which must succeed.
fn exec(lab: &ClusterLab, slot: u64, args: &[&str]) -> Result<String> {
    let target = format!("api.{slot}");
    let mut all = vec!["service", "exec", target.as_str(), "--"];
    all.extend_from_slice(args);
    lab.hoist_ok(&all)
}

/// Task ids of the running replicas, by slot.
fn tasks(lab: &ClusterLab) -> Result<Vec<(u64, String)>> {
    let ps = lab.service_ps("api")?;
    let mut out: Vec<(u64, String)> = ps["replicas"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["task"]["state"] == "running")
        .map(|r| {
            (
                r["slot"].as_u64().unwrap_or(u64::MAX),
                r["task"]["id"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    out.sort();
    Ok(out)
}

#[test]
fn secrets_reach_replicas_as_files_rotate_live_and_rest_nowhere_in_the_clear() -> Result<()> {
    let _g = serial();
    let mut lab = ClusterLab::start(3, MEMBER_FLAGS)?;
    lab.add_agent("sa", &[])?;
    lab.add_agent("sb", &[])?;
    let value = format!("v4lue-{}-{}", std::process::id(), 6 * 7);
    let rotated = format!("r0tated-{}-{}", std::process::id(), 6 * 7);

    // The data key is made by the first leader of format 2 right after the start: the CLI
    // retries a member that does not hold it yet.
    let (code, out, err) = create_secret(&lab, "db-pass", &value)?;
    ensure!(code == 0, "secret create: {code}\n{out}\n{err}");
    ensure!(out.contains("created secret db-pass"), "{out}");
    let conf = tempfile::NamedTempFile::new()?;
    std::fs::write(conf.path(), "port = 8080\n")?;
    let conf_path = conf.path().to_str().context("path")?;
    lab.hoist_ok(&["config", "create", "app.conf", "-f", conf_path])?;

    // A spec naming a secret that does not exist is refused, naming the field.
    let mut spec = json!({
        "name": "api",
        "image": "busybox",
        "command": ["sh", "-c", "trap 'echo hup >> /tmp/hups' HUP; while true; do sleep 0.2; done"],
        "replicas": 2,
        "stop_grace_period": "1s",
        "secrets": [{"source": "nosuch"}],
    });
    let (code, _, err) = lab.apply(&spec, &[])?;
    ensure!(
        code != 0 && err.contains("secrets[0].source"),
        "{code} {err}"
    );
    spec["secrets"] = json!([{"source": "db-pass", "mode": "0400", "on_update": "signal:SIGHUP"}]);
    spec["configs"] = json!([{"source": "app.conf", "target": "/etc/app.conf"}]);
    let (code, out, err) = lab.apply(&spec, &[])?;
    ensure!(code == 0, "apply: {out}\n{err}");
    lab.wait_until("2 replicas of api", Duration::from_secs(60), || {
        let n = lab.ready_replicas("api")?;
        Ok(((n == 2).then_some(()), format!("{n} ready")))
    })?;
    let before = tasks(&lab)?;
    ensure!(before.len() == 2, "{before:?}");

    for (slot, _) in &before {
        let got = exec(&lab, *slot, &["cat", "/run/secrets/db-pass"])?;
        ensure!(got == value, "slot {slot} read {got:?}");
        let mode = exec(
            &lab,
            *slot,
            &["stat", "-L", "-c", "%a %u", "/run/secrets/db-pass"],
        )?;
        ensure!(
            mode.trim() == "400 0",
            "slot {slot}: mode and owner {mode:?}"
        );
        let config = exec(&lab, *slot, &["cat", "/etc/app.conf"])?;
        ensure!(config == "port = 8080\n", "slot {slot}: config {config:?}");
        // Read-only for the replica, even as its root.
        let write = lab.hoist(&[
            "service",
            "exec",
            &format!("api.{slot}"),
            "--",
            "sh",
            "-c",
            "echo x > /run/secrets/db-pass",
        ])?;
        ensure!(write.0 != 0, "slot {slot} could write its secret");
    }

    // A new version: the same containers read it, and were signalled.
    let (code, out, err) = create_secret(&lab, "db-pass", &rotated)?;
    ensure!(
        code == 0 && out.contains("version 2"),
        "{code}\n{out}\n{err}"
    );
    for (slot, _) in &before {
        lab.wait_until(
            &format!("api.{slot} to read version 2"),
            Duration::from_secs(20),
            || {
                let got = exec(&lab, *slot, &["cat", "/run/secrets/db-pass"])?;
                Ok(((got == rotated).then_some(()), got))
            },
        )?;
        lab.wait_until(
            &format!("api.{slot} to get SIGHUP"),
            Duration::from_secs(10),
            || {
                let got = exec(&lab, *slot, &["cat", "/tmp/hups"]).unwrap_or_default();
                Ok((got.contains("hup").then_some(()), got))
            },
        )?;
    }
    ensure!(tasks(&lab)? == before, "replicas were replaced: {before:?}");

    // `on_update = "restart"`: a new version of the config replaces that service's replica
    // through its update policy, while api's replicas see the new file in place.
    let rolled = json!({
        "name": "rolled",
        "image": "busybox",
        "command": ["sh", "-c", "while true; do sleep 0.2; done"],
        "stop_grace_period": "1s",
        "configs": [{"source": "app.conf", "on_update": "restart"}],
    });
    let (code, out, err) = lab.apply(&rolled, &[])?;
    ensure!(code == 0, "apply rolled: {out}\n{err}");
    let rolled_task = |lab: &ClusterLab| -> Result<Option<String>> {
        let ps = lab.service_ps("rolled")?;
        Ok(ps["replicas"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["task"]["state"] == "running")
            .and_then(|r| r["task"]["id"].as_str().map(String::from)))
    };
    let first = lab.wait_until("rolled to run", Duration::from_secs(60), || {
        let t = rolled_task(&lab)?;
        Ok((t.clone(), format!("{t:?}")))
    })?;
    std::fs::write(conf.path(), "port = 9090\n")?;
    lab.hoist_ok(&["config", "create", "app.conf", "-f", conf_path])?;
    lab.wait_until(
        "rolled's replica to be replaced",
        Duration::from_secs(60),
        || {
            let t = rolled_task(&lab)?;
            Ok((t.clone().filter(|t| *t != first), format!("{t:?}")))
        },
    )?;
    let got = lab.hoist_ok(&["service", "exec", "rolled", "--", "cat", "/app.conf"])?;
    ensure!(got == "port = 9090\n", "rolled reads {got:?}");
    let history = lab.hoist_ok(&["service", "history", "rolled"])?;
    ensure!(history.contains("restart"), "{history}");
    for (slot, _) in &before {
        lab.wait_until(
            &format!("api.{slot} to read config version 2"),
            Duration::from_secs(20),
            || {
                let got = exec(&lab, *slot, &["cat", "/etc/app.conf"])?;
                Ok(((got == "port = 9090\n").then_some(()), got))
            },
        )?;
    }
    ensure!(
        tasks(&lab)? == before,
        "api's replicas were replaced: {before:?}"
    );
    lab.hoist_ok(&["service", "rm", "rolled"])?;

    let inspect = lab.hoist_ok(&["secret", "inspect", "db-pass", "-o", "json"])?;
    let v: Value = serde_json::from_str(&inspect)?;
    ensure!(v["version"] == 2 && v["services"] == json!(["api"]), "{v}");
    let (code, _, err) = lab.hoist(&["secret", "rm", "db-pass"])?;
    ensure!(code != 0 && err.contains("used by"), "{code} {err}");
    let big = tempfile::NamedTempFile::new()?;
    std::fs::write(big.path(), vec![b'x'; 600 * 1024])?;
    let (code, _, err) = lab.hoist(&[
        "secret",
        "create",
        "big",
        "-f",
        big.path().to_str().context("path")?,
    ])?;
    ensure!(code != 0 && err.contains("500 KiB"), "{code} {err}");

    // Nowhere in the clear: answers, snapshots, data dirs, logs.
    let mut answers = vec![
        inspect,
        lab.hoist_ok(&["secret", "ls", "-o", "json"])?,
        lab.hoist_ok(&["service", "inspect", "api"])?,
        lab.get("/v1/cluster/audit")?.to_string(),
        lab.get("/v1/services/api")?.to_string(),
    ];
    let snapshot = lab
        .lab
        .client_builder()
        .build()?
        .get(format!("http://{}/v1/cluster/snapshot", lab.lab.addr(0)))
        .send()?
        .bytes()?;
    answers.push(String::from_utf8_lossy(&snapshot).into_owned());
    for needle in [&value, &rotated] {
        for a in &answers {
            ensure!(
                !a.contains(needle.as_str()),
                "an answer holds the secret: {a}"
            );
        }
        let mut skipped = Vec::new();
        let found = disk_holds(lab.lab.root(), needle.as_bytes(), &mut skipped)?;
        ensure!(
            found.is_none(),
            "a controller's file holds the secret: {found:?}"
        );
        for a in &lab.agents {
            let found = disk_holds(a.host.dir.path(), needle.as_bytes(), &mut skipped)?;
            ensure!(
                found.is_none(),
                "an agent's file holds the secret: {found:?}"
            );
        }
        ensure!(
            !skipped.is_empty() && skipped.iter().all(|s| s.ends_with("/run")),
            "only the agents' run dirs are memory: {skipped:?}"
        );
    }
    // The search finds what is there: the current value is on the agents' tmpfs, where the
    // replicas read it.
    let on_tmpfs = lab.agents.iter().any(|a| {
        let run = a.host.data_dir().join("run");
        disk_holds_anywhere(&run, rotated.as_bytes())
    });
    ensure!(
        on_tmpfs,
        "the byte search does not find the value where it is"
    );

    lab.hoist_ok(&["service", "rm", "api"])?;
    lab.wait_until("api's replicas gone", Duration::from_secs(30), || {
        let n = tasks(&lab).map(|t| t.len()).unwrap_or(0);
        Ok(((n == 0).then_some(()), format!("{n} running")))
    })?;
    lab.hoist_ok(&["secret", "rm", "db-pass"])?;
    lab.hoist_ok(&["config", "rm", "app.conf"])?;
    Ok(())
}

/// The members' key files in each data dir: (clear, locked).
fn key_files(lab: &ClusterLab) -> Vec<(bool, bool)> {
    (0..3)
        .map(|i| {
            let d = lab.lab.data_dir(i);
            (
                d.join("member.key").exists(),
                d.join("member.key.locked").exists(),
            )
        })
        .collect()
}

/// `GET /v1/cluster/lock` of member `i`: whether it is locked.
fn locked(lab: &ClusterLab, i: usize) -> Result<bool> {
    let (code, v) = lab.lab.get(i, "/v1/cluster/lock")?;
    ensure!(code == 200, "{code} {v}");
    v["locked"].as_bool().context("locked")
}

#[test]
fn autolock_keeps_member_keys_encrypted_and_a_restarted_member_opens_secrets_after_unlock(
) -> Result<()> {
    let _g = serial();
    let mut lab = ClusterLab::start(3, MEMBER_FLAGS)?;
    let (code, out, err) = create_secret(&lab, "api-key", "k3y-value")?;
    ensure!(code == 0, "{out}\n{err}");
    ensure!(
        key_files(&lab) == vec![(true, false); 3],
        "{:?}",
        key_files(&lab)
    );

    let key = lab
        .hoist_ok(&["cluster", "autolock", "on"])?
        .trim()
        .to_string();
    ensure!(key.starts_with("HOISTUK1-"), "{key}");
    lab.wait_until(
        "every member's key encrypted",
        Duration::from_secs(20),
        || {
            let files = key_files(&lab);
            Ok((
                (files == vec![(false, true); 3]).then_some(()),
                format!("{files:?}"),
            ))
        },
    )?;
    for i in 0..3 {
        let data = lab.lab.data_dir(i).to_path_buf();
        let mut skipped = Vec::new();
        ensure!(
            disk_holds(&data, key.as_bytes(), &mut skipped)?.is_none(),
            "the unlock key is on disk"
        );
    }

    // A follower restarts locked: it cannot open secrets until it is given the key.
    let leader = lab.lab.wait_leader(Duration::from_secs(10))?;
    let follower = (0..3).find(|&i| i != leader).context("a follower")?;
    lab.lab.kill9(follower)?;
    lab.lab.start(follower, &[])?;
    ensure!(locked(&lab, follower)?, "a restarted member is not locked");
    let only = lab.lab.addr(follower);
    let through_it =
        |args: &[&str]| hoist_tests::hoist_cli_as(&only, lab.lab.token().as_deref(), args);
    let value = tempfile::NamedTempFile::new()?;
    std::fs::write(value.path(), "n3w-value")?;
    let value_path = value.path().to_str().context("path")?;
    let (code, _, err) = through_it(&["secret", "create", "api-key", "-f", value_path])?;
    ensure!(
        code != 0 && err.contains("data key"),
        "a locked member sealed: {code} {err}"
    );
    let wrong = format!("HOISTUK1-{}", "00".repeat(32));
    let (code, out, _) = through_it(&["cluster", "unlock", "--key", &wrong])?;
    ensure!(
        code != 0 && out.contains("does not open"),
        "a wrong key: {code} {out}"
    );
    ensure!(locked(&lab, follower)?);
    let out = lab.hoist_ok(&["cluster", "unlock", "--key", &key])?;
    ensure!(
        out.matches("not locked").count() == 2 && out.matches(": unlocked").count() == 1,
        "{out}"
    );
    ensure!(!locked(&lab, follower)?);
    let (code, out, err) = through_it(&["secret", "create", "api-key", "-f", value_path])?;
    ensure!(
        code == 0 && out.contains("version 2"),
        "after unlock: {code} {out} {err}"
    );

    // Off: the keys are in the clear again.
    lab.hoist_ok(&["cluster", "autolock", "off"])?;
    lab.wait_until(
        "every member's key in the clear",
        Duration::from_secs(20),
        || {
            let files = key_files(&lab);
            Ok((
                (files == vec![(true, false); 3]).then_some(()),
                format!("{files:?}"),
            ))
        },
    )?;
    Ok(())
}
