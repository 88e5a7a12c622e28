//! `hoist service logs` and `hoist service exec` through the controllers, on the lab: 3
//! controller members and 2 agent hosts. As an operator would, always through a member that
//! does not lead (so every byte crosses the streaming forwarder as well): every replica's lines
//! with their `NAME.SLOT@NODE ` prefix, stdout and stderr; `--tail 1`; `-f` sees a line written
//! after it started and a replica that started after it, names a node that went down while the
//! others stream on, and ends cleanly on Ctrl-C, ending every agent's session with it; `--since`;
//! exec's output and exit code, and clear errors for an unknown service or slot. No byte of a
//! session reaches a controller's disk (the Raft log, snapshots).
//!
//! The replicas print `hello-x42y`, which their spec spells `hello-x$((40+2))y`: the marker
//! appears in output only, never in anything the controllers store.

use anyhow::{bail, ensure, Context, Result};
use hoist_tests::cluster_lab::ClusterLab;
use hoist_tests::controller_lab::serial;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const MEMBER_FLAGS: &[&str] = &["--node-grace", "3s", "--heartbeat-interval", "500ms"];

/// Three lines at start (stdout, stderr, then stdout a moment later, so that it is the last
/// record whatever order the two pipes are read in), then one `poked-x42y` each time
/// `/tmp/poke` appears.
fn talker(replicas: i64) -> Value {
    let script = "echo first-x$((40+2))y; echo err-x$((40+2))y >&2; sleep 0.3; echo hello-x$((40+2))y; \
                  while true; do if [ -f /tmp/poke ]; then rm /tmp/poke; echo poked-x$((40+2))y; fi; \
                  sleep 0.1; done";
    json!({
        "name": "talk",
        "image": "busybox",
        "command": ["sh", "-c", script],
        "replicas": replicas,
        "stop_grace_period": "1s",
    })
}

/// `(slot, node)` of every replica the controllers count running.
fn replicas(lab: &ClusterLab) -> Result<BTreeSet<(u64, String)>> {
    let ps = lab.service_ps("talk")?;
    Ok(ps["replicas"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["task"]["state"] == "running")
        .map(|r| {
            (
                r["slot"].as_u64().unwrap_or(u64::MAX),
                r["task"]["node"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect())
}

/// `hoist ARGS` against one member only: exit code, stdout, stderr.
fn hoist_at(lab: &ClusterLab, addr: &str, args: &[&str]) -> Result<(i32, String, String)> {
    hoist_tests::hoist_cli_as(addr, lab.lab.token().as_deref(), args)
}

/// A `hoist service logs -f` running in the background, its output collected by line.
struct Follower {
    child: Child,
    out: Arc<Mutex<Vec<String>>>,
    err: Arc<Mutex<Vec<String>>>,
}

impl Follower {
    fn start(lab: &ClusterLab, addr: &str, args: &[&str]) -> Result<Follower> {
        let mut child = hoist_tests::hoist_command(addr, lab.lab.token().as_deref())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("start hoist service logs -f")?;
        let collect = |r: Box<dyn std::io::Read + Send>| {
            let lines = Arc::new(Mutex::new(Vec::new()));
            let keep = lines.clone();
            std::thread::spawn(move || {
                for l in BufReader::new(r).lines().map_while(Result::ok) {
                    keep.lock().unwrap().push(l);
                }
            });
            lines
        };
        let out = collect(Box::new(child.stdout.take().context("stdout")?));
        let err = collect(Box::new(child.stderr.take().context("stderr")?));
        Ok(Follower { child, out, err })
    }

    fn has(&self, line: &str) -> bool {
        self.out.lock().unwrap().iter().any(|l| l == line)
    }

    fn has_err(&self, line: &str) -> bool {
        self.err.lock().unwrap().iter().any(|l| l == line)
    }

    fn seen(&self) -> String {
        format!(
            "stdout: {:?}\nstderr: {:?}",
            self.out.lock().unwrap(),
            self.err.lock().unwrap()
        )
    }

    /// Ctrl-C, then its exit code (within 5 s).
    fn interrupt(&mut self) -> Result<i32> {
        // SAFETY: kill(2) with the pid of a child we started and have not reaped.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let t = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait()? {
                return Ok(st.code().unwrap_or(-1));
            }
            if t.elapsed() > Duration::from_secs(5) {
                bail!("hoist service logs -f did not end within 5 s of Ctrl-C");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Session starts and ends in an agent's log.
fn sessions_in(log: &str) -> (usize, usize) {
    (
        log.matches("session started").count(),
        log.matches("session ended").count(),
    )
}

#[test]
fn logs_and_exec_reach_every_replica_through_any_member() -> Result<()> {
    let _g = serial();
    let mut lab = ClusterLab::start(3, MEMBER_FLAGS)?;
    lab.add_agent("a1", &[])?;
    lab.add_agent("a2", &[])?;
    let (n1, n2) = (
        lab.node_id(0).context("a1's node id")?,
        lab.node_id(1).context("a2's node id")?,
    );
    let (code, out, err) = lab.apply(&talker(3), &["-d"])?;
    ensure!(code == 0, "apply: {out} {err}");
    let running = lab.wait_until(
        "3 replicas running on both nodes",
        Duration::from_secs(60),
        || {
            let r = replicas(&lab)?;
            let nodes: BTreeSet<&String> = r.iter().map(|(_, n)| n).collect();
            Ok((
                (r.len() == 3 && nodes.len() == 2).then(|| r.clone()),
                format!("{r:?}"),
            ))
        },
    )?;
    let leader = lab.lab.wait_leader(Duration::from_secs(10))?;
    let member = lab.lab.addr((leader + 1) % 3);
    eprintln!("leader is member {leader}; asking {member}");

    // Every replica's lines, stdout and stderr, each with its prefix.
    let t = Instant::now();
    let (out, err) = lab.wait_until("every replica's lines", Duration::from_secs(20), || {
        let (code, out, err) = hoist_at(&lab, &member, &["service", "logs", "talk"])?;
        let ok = code == 0
            && running.iter().all(|(slot, node)| {
                out.contains(&format!("talk.{slot}@{node} first-x42y\n"))
                    && out.contains(&format!("talk.{slot}@{node} hello-x42y\n"))
                    && err.contains(&format!("talk.{slot}@{node} err-x42y\n"))
            });
        Ok((
            ok.then(|| (out.clone(), err.clone())),
            format!("exit {code}\n{out}\n{err}"),
        ))
    })?;
    eprintln!(
        "service logs of 3 replicas on 2 nodes through a follower: {:?}",
        t.elapsed()
    );
    ensure!(
        out.lines().count() == 6 && err.lines().count() == 3,
        "only theirs: {out}\n{err}"
    );

    // --tail 1: each replica's last line only (its last record of both streams).
    let (code, out, err) = hoist_at(&lab, &member, &["service", "logs", "--tail", "1", "talk"])?;
    ensure!(code == 0, "{out} {err}");
    let want: BTreeSet<String> = running
        .iter()
        .map(|(slot, node)| format!("talk.{slot}@{node} hello-x42y"))
        .collect();
    let got: BTreeSet<String> = out.lines().map(str::to_string).collect();
    ensure!(
        got == want && out.lines().count() == 3,
        "--tail 1:\n{out}\nstderr: {err}"
    );
    ensure!(err.is_empty(), "--tail 1 has no stderr line: {err}");

    // Exec: output and exit code, by slot; errors for what does not exist.
    let (code, out, err) = hoist_at(
        &lab,
        &member,
        &[
            "service",
            "exec",
            "talk.2",
            "--",
            "sh",
            "-c",
            "echo hi; exit 3",
        ],
    )?;
    ensure!(
        code == 3 && out == "hi\n",
        "exec talk.2: exit {code}, {out:?} {err:?}"
    );
    let (code, out, _) = hoist_at(
        &lab,
        &member,
        &[
            "service",
            "exec",
            "talk",
            "--",
            "sh",
            "-c",
            "echo ex$((40+2))ec",
        ],
    )?;
    ensure!(
        code == 0 && out == "ex42ec\n",
        "exec talk: exit {code}, {out:?}"
    );
    let (code, _, err) = hoist_at(&lab, &member, &["service", "exec", "nosuch", "--", "true"])?;
    ensure!(
        code == 125 && err.contains("service \"nosuch\" not found"),
        "unknown service: exit {code}, {err}"
    );
    let (code, _, err) = hoist_at(&lab, &member, &["service", "exec", "talk.9", "--", "true"])?;
    ensure!(
        code == 125
            && err
                .contains("service talk has no running replica in slot 9 (running: slots 0, 1, 2)"),
        "unknown slot: exit {code}, {err}"
    );
    let (code, _, err) = hoist_at(&lab, &member, &["service", "logs", "nosuch"])?;
    ensure!(
        code != 0 && err.contains("service \"nosuch\" not found"),
        "logs of nothing: {err}"
    );
    let (code, _, err) = hoist_at(
        &lab,
        &member,
        &["service", "logs", "--since", "yesterday", "talk"],
    )?;
    ensure!(
        code != 0 && err.contains("since: expected a duration"),
        "bad --since: {err}"
    );

    // -f: a line written after it started, and a replica that starts after it.
    let mut f = Follower::start(
        &lab,
        &member,
        &["service", "logs", "-f", "--tail", "1", "talk"],
    )?;
    lab.wait_until(
        "-f prints the replicas' last lines",
        Duration::from_secs(15),
        || Ok((want.iter().all(|l| f.has(l)).then_some(()), f.seen())),
    )?;
    let since = String::from_utf8(
        Command::new("date")
            .args(["-u", "+%Y-%m-%dT%H:%M:%S.%NZ"])
            .output()?
            .stdout,
    )?;
    let node_of_1 = running
        .iter()
        .find(|(s, _)| *s == 1)
        .map(|(_, n)| n.clone())
        .context("slot 1")?;
    let (code, out, err) = hoist_at(
        &lab,
        &member,
        &["service", "exec", "talk.1", "--", "touch", "/tmp/poke"],
    )?;
    ensure!(code == 0, "poke: {out} {err}");
    let poked = format!("talk.1@{node_of_1} poked-x42y");
    let t = Instant::now();
    lab.wait_until("-f prints the new line", Duration::from_secs(10), || {
        Ok((f.has(&poked).then_some(()), f.seen()))
    })?;
    eprintln!("a new line reached -f after {:?}", t.elapsed());
    lab.hoist_ok(&["service", "scale", "talk", "4"])?;
    lab.wait_until(
        "-f prints the new replica's lines",
        Duration::from_secs(30),
        || {
            let seen = f
                .out
                .lock()
                .unwrap()
                .iter()
                .any(|l| l.starts_with("talk.3@") && l.ends_with(" first-x42y"));
            Ok((seen.then_some(()), f.seen()))
        },
    )?;

    // --since: only what was written after that time.
    let (code, out, err) = hoist_at(
        &lab,
        &member,
        &["service", "logs", "--since", since.trim(), "talk"],
    )?;
    ensure!(code == 0, "--since: {err}");
    ensure!(
        out.contains(&format!("{poked}\n")),
        "--since {since}: {out}"
    );
    let old: Vec<&str> = out
        .lines()
        .filter(|l| !l.starts_with("talk.3@") && !l.ends_with("poked-x42y"))
        .collect();
    ensure!(
        old.is_empty(),
        "--since {since} printed older lines: {old:?}"
    );

    // A node cut off: -f names it for its replicas, and the others stream on (their
    // replacements on the other node too).
    let on_a2: Vec<u64> = replicas(&lab)?
        .into_iter()
        .filter(|(_, n)| *n == n2)
        .map(|(s, _)| s)
        .collect();
    ensure!(!on_a2.is_empty(), "a replica runs on a2");
    lab.cut_agent(1)?;
    // An exec asked of it now waits for its agent a few seconds, then names the node (or, once
    // the grace period marked it down, says so at once).
    let (code, _, err) = hoist_at(
        &lab,
        &member,
        &[
            "service",
            "exec",
            &format!("talk.{}", on_a2[0]),
            "--",
            "true",
        ],
    )?;
    ensure!(
        code == 125
            && (err.contains(&format!("node {n2} did not answer within 5s"))
                || err.contains(&format!("runs on node {n2}, which is down"))),
        "exec on a cut-off node: exit {code}, {err}"
    );
    lab.wait_until(
        "-f names the node that went down",
        Duration::from_secs(20),
        || {
            let all = on_a2
                .iter()
                .all(|s| f.has_err(&format!("talk.{s}@{n2} error: node {n2} is down")));
            Ok((all.then_some(()), f.seen()))
        },
    )?;
    lab.wait_until(
        "-f streams a1's replicas on, replacements included",
        Duration::from_secs(30),
        || {
            let moved = on_a2
                .iter()
                .all(|s| f.has(&format!("talk.{s}@{n1} first-x42y")));
            Ok((moved.then_some(()), f.seen()))
        },
    )?;
    let (code, out, err) = hoist_at(
        &lab,
        &member,
        &["service", "exec", "talk.1", "--", "touch", "/tmp/poke"],
    )?;
    ensure!(code == 0, "poke after the cut: {out} {err}");
    let node_of_1 = replicas(&lab)?
        .into_iter()
        .find(|(s, _)| *s == 1)
        .map(|(_, n)| n)
        .context("slot 1")?;
    let poked = format!("talk.1@{node_of_1} poked-x42y");
    lab.wait_until("-f still follows", Duration::from_secs(10), || {
        Ok((f.has(&poked).then_some(()), f.seen()))
    })?;
    lab.heal_agent(1)?;

    // An exec's round trip (CLI → member → leader → agent's poll → agent's output → back).
    let mut took = Vec::new();
    for _ in 0..10 {
        let t = Instant::now();
        let (code, _, err) = hoist_at(&lab, &member, &["service", "exec", "talk.0", "--", "true"])?;
        ensure!(code == 0, "exec true: {err}");
        took.push(t.elapsed());
    }
    took.sort();
    eprintln!(
        "hoist service exec talk.0 -- true through a follower: p50 {:?}, max {:?}",
        took[5], took[9]
    );

    // Ctrl-C ends it at once, and every agent's session with it.
    let code = f.interrupt()?;
    ensure!(code == 0, "-f after Ctrl-C exited {code}: {}", f.seen());
    lab.wait_until("every session on a1 ended", Duration::from_secs(10), || {
        let (started, ended) = sessions_in(&lab.agents[0].host.agent_log());
        let seen = format!("a1: {started} sessions started, {ended} ended");
        Ok((
            (started > 0 && started == ended).then(|| eprintln!("{seen}")),
            seen,
        ))
    })?;

    // An agent killed and restarted while followed: its replicas' streams end, naming the node
    // (the connection broke, or the node registered again), instead of hanging.
    let before = sessions_in(&lab.agents[0].host.agent_log()).0;
    let on_a1: Vec<u64> = replicas(&lab)?
        .into_iter()
        .filter(|(_, n)| *n == n1)
        .map(|(s, _)| s)
        .collect();
    let f = Follower::start(
        &lab,
        &member,
        &["service", "logs", "-f", "--tail", "0", "talk"],
    )?;
    lab.wait_until("a1 serves the new -f", Duration::from_secs(10), || {
        let started = sessions_in(&lab.agents[0].host.agent_log()).0;
        Ok((
            (started >= before + on_a1.len()).then_some(()),
            format!("{started} sessions started on a1, {before} before"),
        ))
    })?;
    lab.kill_agent(0)?;
    lab.restart_agent(0)?;
    lab.wait_until(
        "-f names the restarted agent's node",
        Duration::from_secs(20),
        || {
            let named = on_a1.iter().all(|s| {
                let prefix = format!("talk.{s}@{n1} error: node {n1}");
                f.err.lock().unwrap().iter().any(|l| l.starts_with(&prefix))
            });
            Ok((named.then_some(()), f.seen()))
        },
    )?;
    drop(f);

    // Nothing of a session's output is on any controller's disk.
    for i in 0..3 {
        for marker in [
            b"hello-x42y".as_slice(),
            b"err-x42y",
            b"poked-x42y",
            b"ex42ec",
        ] {
            if let Some(file) =
                hoist_tests::file_holding(lab.lab.data_dir(i), marker, &mut |_| false)?
            {
                bail!(
                    "member {i} stored {:?} in {}",
                    String::from_utf8_lossy(marker),
                    file.display()
                );
            }
        }
    }
    Ok(())
}

/// How fast merged logs come: one replica that wrote 200,000 lines, read whole through the leader,
/// through a member that does not lead, and, for comparison, from its own agent (`hoist logs`).
/// A measurement, ignored by default:
/// `hcargo test -p hoist-tests --test service_logs -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement, not a check: run it with --ignored --nocapture"]
fn logs_throughput() -> Result<()> {
    const LINES: usize = 200_000;
    let _g = serial();
    let mut lab = ClusterLab::start(3, MEMBER_FLAGS)?;
    lab.add_agent("a1", &[])?;
    let spec = json!({
        "name": "bulk",
        "image": "busybox",
        "command": ["sh", "-c", format!("seq 1 {LINES}; exec sleep 3600")],
        "replicas": 1,
    });
    let (code, out, err) = lab.apply(&spec, &["-d"])?;
    ensure!(code == 0, "apply: {out} {err}");
    let leader = lab.lab.wait_leader(Duration::from_secs(10))?;
    let (at_leader, at_member) = (lab.lab.addr(leader), lab.lab.addr((leader + 1) % 3));
    let last = format!("{LINES}");
    lab.wait_until(
        "the replica wrote every line",
        Duration::from_secs(60),
        || {
            let (_, out, _) = hoist_at(
                &lab,
                &at_leader,
                &["service", "logs", "--tail", "1", "bulk"],
            )?;
            Ok((
                out.trim_end().ends_with(&format!(" {last}")).then_some(()),
                out,
            ))
        },
    )?;
    let name = lab.running_on(0, "bulk")?[0]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let time = |what: &str, run: &dyn Fn() -> Result<String>| -> Result<()> {
        let mut took = Vec::new();
        let mut bytes = 0;
        for _ in 0..3 {
            let t = Instant::now();
            let out = run()?;
            took.push(t.elapsed());
            ensure!(
                out.lines().count() == LINES,
                "{what}: {} lines",
                out.lines().count()
            );
            bytes = out.len();
        }
        took.sort();
        let best = took[0].as_secs_f64();
        eprintln!(
            "{what}: {LINES} lines ({bytes} bytes) in {:.2} s (best of 3; median {:.2} s): {:.0} lines/s",
            best,
            took[1].as_secs_f64(),
            LINES as f64 / best
        );
        Ok(())
    };
    time("hoist logs on the agent's host", &|| {
        Ok(String::from_utf8(
            lab.agents[0].host.hoist(&["logs", &name])?.stdout,
        )?)
    })?;
    for (what, addr) in [
        ("service logs via the leader", &at_leader),
        ("service logs via a follower", &at_member),
    ] {
        time(what, &|| {
            let (code, out, err) = hoist_at(&lab, addr, &["service", "logs", "bulk"])?;
            ensure!(code == 0, "{err}");
            Ok(out)
        })?;
    }
    Ok(())
}
