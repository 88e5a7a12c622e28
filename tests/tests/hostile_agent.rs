//! The agent's API against hostile clients, on a real `hoist-agent` over its unix socket with
//! hand-written HTTP: content types, duplicate JSON keys, oversized creates (clear 400s before
//! any work, and the time a large one takes), and creates whose client hangs up before the answer.

use anyhow::{ensure, Context, Result};
use hoist_tests::raw_http::{self, Answer};
use hoist_tests::{wait_for, Host};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const JSON: Option<&str> = Some("application/json");

/// A create of a container that sleeps, on no network, with `env`.
fn create_body(env: &[String]) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "image": "probe",
        "cmd": ["sleep", "600"],
        "network": "none",
        "env": env,
    }))
    .expect("json")
}

/// `n` short variables (`E0=1` ...): 100,000 of them fit in what execve takes.
fn env_of(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("E{i}=1")).collect()
}

fn post(h: &Host, path: &str, ct: Option<&str>, body: &[u8]) -> Result<Answer> {
    raw_http::unix(&h.socket(), "POST", path, ct, body)
}

/// Every container the agent lists, by id, with its status.
fn containers(h: &Host) -> Result<Vec<(String, String)>> {
    let a = raw_http::unix(&h.socket(), "GET", "/v1/containers?all=true", None, b"")?;
    ensure!(a.status == 200, "list: {} {}", a.status, a.body);
    Ok(a.json()
        .as_array()
        .context("a list")?
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap_or_default().to_string(),
                c["status"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect())
}

/// Asserts that answer `a` has `status` and a JSON error whose message contains `needle`.
fn refused(a: &Answer, status: u16, needle: &str) -> Result<()> {
    ensure!(
        a.status == status && a.json()["message"].as_str().unwrap_or("").contains(needle),
        "expected {status} with {needle:?}, got {} {}",
        a.status,
        a.body
    );
    Ok(())
}

/// Creates a container with `n` environment variables; answers how long the create took.
fn timed_create(h: &Host, n: usize) -> Result<Duration> {
    let body = create_body(&env_of(n));
    let t = Instant::now();
    let a = post(h, "/v1/containers", JSON, &body)?;
    let took = t.elapsed();
    ensure!(
        a.status == 201,
        "create with {n} env: {} {}",
        a.status,
        a.body
    );
    let id = a.json()["id"].as_str().unwrap_or_default().to_string();
    h.hoist_ok(&["rm", "-f", &id])?;
    Ok(took)
}

#[test]
fn json_bodies_need_their_type_and_unique_keys() -> Result<()> {
    let h = Host::start("h1")?;
    let create = br#"{"image":"probe","cmd":["sleep","600"],"network":"none"}"#;
    // No type, a form, UTF-16, a JSON-ish type that is not application/json: 415, nothing made.
    for ct in [
        None,
        Some("application/x-www-form-urlencoded"),
        Some("application/json; charset=utf-16"),
        Some("text/plain"),
        Some("application/merge-patch+json"),
    ] {
        let a = post(&h, "/v1/containers", ct, create)?;
        refused(&a, 415, "content-type must be application/json")?;
        ensure!(a.json()["code"] == "unsupported_media_type", "{}", a.body);
    }
    // A key twice: refused for a field and for a map key alike, naming where.
    let a = post(
        &h,
        "/v1/containers",
        JSON,
        br#"{"image":"probe","image":"other","cmd":["true"]}"#,
    )?;
    refused(&a, 400, "duplicate key \"image\"")?;
    let a = post(
        &h,
        "/v1/containers",
        JSON,
        br#"{"image":"probe","cmd":["true"],"labels":{"a":"1","b":"2","a":"3"}}"#,
    )?;
    refused(&a, 400, "labels: duplicate key \"a\"")?;
    let a = post(
        &h,
        "/v1/containers",
        JSON,
        br#"{"image":"probe"} {"image":"x"}"#,
    )?;
    refused(&a, 400, "trailing characters")?;
    ensure!(
        containers(&h)?.is_empty(),
        "a refused create made a container"
    );

    // The same rules on every JSON route: exec, tag, pull.
    let a = post(
        &h,
        "/v1/containers",
        Some("application/json; charset=UTF-8"),
        create,
    )?;
    ensure!(a.status == 201, "create: {} {}", a.status, a.body);
    let id = a.json()["id"].as_str().unwrap_or_default().to_string();
    let exec = format!("/v1/containers/{id}/exec");
    refused(
        &post(&h, &exec, None, br#"{"cmd":["true"]}"#)?,
        415,
        "content-type",
    )?;
    refused(
        &post(&h, &exec, JSON, br#"{"cmd":["true"],"cmd":["false"]}"#)?,
        400,
        "duplicate key \"cmd\"",
    )?;
    let tag = br#"{"source":"probe","target":"probe:two"}"#;
    refused(
        &post(&h, "/v1/images/tag", Some("text/plain"), tag)?,
        415,
        "content-type",
    )?;
    refused(
        &post(
            &h,
            "/v1/images/tag",
            JSON,
            br#"{"source":"probe","target":"a","target":"b"}"#,
        )?,
        400,
        "duplicate key \"target\"",
    )?;
    ensure!(post(&h, "/v1/images/tag", JSON, tag)?.status == 201);
    refused(
        &post(&h, "/v1/images/pull", None, br#"{"reference":"x"}"#)?,
        415,
        "content-type",
    )?;
    h.hoist_ok(&["rm", "-f", &id])?;
    Ok(())
}

#[test]
fn oversized_creates_are_refused_at_once() -> Result<()> {
    let h = Host::start("h1")?;
    let many = |n: usize, make: &dyn Fn(usize) -> Value| (0..n).map(make).collect::<Vec<_>>();
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"env": env_of(100_001)}),
            "env: 100001 entries, at most 100000",
        ),
        (
            // 100,000 variables of 13 bytes: over the 2 MiB execve takes.
            json!({"env": many(100_000, &|i| json!(format!("E{i:05}=v{i:05}")))}),
            "env: the command and environment take 2200013 bytes",
        ),
        (
            json!({"env": [format!("A={}", "x".repeat(128 << 10))]}),
            "env[0]: 131074 bytes, above the kernel's limit",
        ),
        (
            json!({"cmd": vec!["x"; 10_001]}),
            "cmd: 10001 arguments, at most 10000",
        ),
        (
            json!({"labels": (0..1_001)
                .map(|i| (format!("l{i}"), json!("")))
                .collect::<serde_json::Map<String, Value>>()}),
            "labels: 1001 labels, at most 1000",
        ),
        (
            json!({"tmpfs": many(1_001, &|i| json!({"target": format!("/t{i}")}))}),
            "mounts: 1001 mounts, at most 1000",
        ),
    ];
    for (extra, needle) in cases {
        let mut body = json!({"image": "probe", "cmd": ["true"], "network": "none"});
        for (k, v) in extra.as_object().context("object")? {
            body[k] = v.clone();
        }
        let t = Instant::now();
        let a = post(&h, "/v1/containers", JSON, &serde_json::to_vec(&body)?)?;
        refused(&a, 400, needle)?;
        ensure!(
            t.elapsed() < Duration::from_secs(5),
            "{needle}: refused only after {:?}",
            t.elapsed()
        );
    }
    // A body beyond any create within the limits is not read at all.
    let huge = vec![b' '; 17 << 20];
    refused(
        &post(&h, "/v1/containers", JSON, &huge)?,
        413,
        "request body exceeds",
    )?;
    ensure!(
        containers(&h)?.is_empty(),
        "a refused create made a container"
    );
    Ok(())
}

/// 100,000 variables took 400 s of the agent's CPU before the create was made linear (and 10,000
/// took 3.7 s); the bound here is far from both and from the 0.5 s it takes now.
#[test]
fn a_create_with_100000_variables_takes_no_time() -> Result<()> {
    let h = Host::start("h1")?;
    let took = timed_create(&h, 100_000)?;
    ensure!(
        took < Duration::from_secs(10),
        "a create with 100,000 env vars took {took:?}"
    );
    Ok(())
}

/// An exec's environment goes over the container's through the same linear merge.
#[test]
fn an_exec_with_100000_variables_takes_no_time() -> Result<()> {
    let h = Host::start("h1")?;
    let a = post(&h, "/v1/containers", JSON, &create_body(&env_of(10)))?;
    ensure!(a.status == 201, "create: {} {}", a.status, a.body);
    let id = a.json()["id"].as_str().unwrap_or_default().to_string();
    // 100,000 entries; the last sets E5 again, over the container's and its own first one.
    let mut env = env_of(99_999);
    env.push("E5=x".into());
    let exec = serde_json::to_vec(&json!({
        "cmd": ["sh", "-c", "echo $E5 $E99998"],
        "env": env,
    }))?;
    let t = Instant::now();
    let a = post(&h, &format!("/v1/containers/{id}/exec"), JSON, &exec)?;
    let took = t.elapsed();
    ensure!(a.status == 200, "exec: {} {}", a.status, a.body);
    let lines: Vec<Value> = a
        .body
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    let out: String = lines.iter().filter_map(|l| l["data"].as_str()).collect();
    ensure!(out == "x 1\n", "exec printed {out:?}: {}", a.body);
    ensure!(
        lines.last().is_some_and(|l| l["exit_code"] == 0),
        "exec: {}",
        a.body
    );
    ensure!(
        took < Duration::from_secs(10),
        "an exec with 100,000 env vars took {took:?}"
    );
    h.hoist_ok(&["rm", "-f", &id])?;
    Ok(())
}

/// The measurement behind the linear create: 10,000 and 100,000 environment variables
/// (`cargo test -p hoist-tests --test hostile_agent create_time -- --ignored --nocapture`).
#[test]
#[ignore = "a measurement: prints the create times"]
fn create_time_with_many_env() -> Result<()> {
    let h = Host::start("h1")?;
    timed_create(&h, 1)?;
    for n in [1usize, 10_000, 100_000] {
        let mut runs: Vec<Duration> = (0..3).map(|_| timed_create(&h, n)).collect::<Result<_>>()?;
        runs.sort();
        println!("create with {n} env vars: median {:?} of {runs:?}", runs[1]);
    }
    Ok(())
}

/// Subdirectories of `dir`, by name (none when it does not exist).
fn subdirs(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

fn cgroup_dirs(h: &Host) -> Vec<PathBuf> {
    let unified = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let roots: Vec<PathBuf> = if unified {
        vec!["/sys/fs/cgroup".into()]
    } else {
        ["memory", "pids", "cpu"]
            .iter()
            .map(|c| Path::new("/sys/fs/cgroup").join(c))
            .filter(|p| p.exists())
            .collect()
    };
    roots
        .into_iter()
        .map(|r| r.join(&h.cgroup_parent))
        .collect()
}

#[test]
fn a_create_whose_client_hangs_up_finishes() -> Result<()> {
    let h = Host::start("h1")?;
    // Large enough that the create is still under way when the client leaves.
    let body = create_body(&env_of(30_000));
    let delays_ms = [0u64, 1, 2, 5, 10, 20, 50, 100];
    for ms in delays_ms {
        raw_http::unix_hang_up(
            &h.socket(),
            "POST",
            "/v1/containers",
            &body,
            Duration::from_millis(ms),
        )?;
    }
    // Every create finishes: as many containers as requests, each running.
    let listed = wait_for(
        "every abandoned create to finish",
        Duration::from_secs(60),
        || {
            let list = containers(&h)?;
            Ok(
                (list.len() == delays_ms.len() && list.iter().all(|(_, s)| s == "running"))
                    .then_some(list),
            )
        },
    )
    .map_err(|e| anyhow::anyhow!("{e}: {:?}", containers(&h)))?;
    let ids: BTreeSet<String> = listed.into_iter().map(|(id, _)| id).collect();
    // Nothing on disk or in the cgroup tree that no listed container owns.
    let data = h.data_dir();
    ensure!(
        subdirs(&data.join("containers")) == ids,
        "container directories {:?} vs listed {ids:?}",
        subdirs(&data.join("containers"))
    );
    let run: BTreeSet<String> = subdirs(&data.join("run"))
        .into_iter()
        .filter(|d| d.len() == 64)
        .collect();
    ensure!(run == ids, "run directories {run:?} vs listed {ids:?}");
    for parent in cgroup_dirs(&h) {
        let cgroups: BTreeSet<String> = subdirs(&parent)
            .into_iter()
            .filter(|d| d.len() == 64)
            .collect();
        ensure!(
            cgroups == ids,
            "cgroups under {} {cgroups:?} vs listed {ids:?}",
            parent.display()
        );
    }
    for id in &ids {
        h.hoist_ok(&["rm", "-f", id])?;
    }
    Ok(())
}
