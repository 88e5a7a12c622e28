//! Cluster events end to end, on the lab: 3 controller members and an agent host. `hoist events`
//! runs as an operator runs it (JSON lines, filters, table lines) while a service is created,
//! scaled and removed; the member it reads from is killed mid-way and it goes on with another.
//! Every member must tell the same events with the same ids: a stream resumed with
//! `Last-Event-ID` on another member gives exactly the events that follow (no gap, no
//! duplicate, the same JSON), and a member restarted from a snapshot says which events it no
//! longer holds (`events.lost`) before going on.

use anyhow::{bail, ensure, Context, Result};
use hoist_tests::cluster_lab::ClusterLab;
use hoist_tests::controller_lab::serial;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Fast liveness; a snapshot every 16 entries, so a restarted member starts after one.
const MEMBER_FLAGS: &[&str] = &[
    "--node-grace",
    "3s",
    "--heartbeat-interval",
    "500ms",
    "--snapshot-every",
    "16",
];

/// `hoist events ARGS` running in the background; its stdout lines collected as they come.
struct Follower {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<String>>,
}

impl Follower {
    fn start(lab: &ClusterLab, args: &[&str]) -> Result<Follower> {
        let mut child = lab
            .hoist_command()
            .arg("events")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("start hoist events")?;
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let out = child.stdout.take().context("stdout")?;
        let err = child.stderr.take().context("stderr")?;
        {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for l in BufReader::new(out).lines().map_while(Result::ok) {
                    lines.lock().unwrap().push(l);
                }
            });
        }
        {
            let stderr = stderr.clone();
            std::thread::spawn(move || {
                for l in BufReader::new(err).lines().map_while(Result::ok) {
                    let mut s = stderr.lock().unwrap();
                    s.push_str(&l);
                    s.push('\n');
                }
            });
        }
        Ok(Follower {
            child,
            lines,
            stderr,
        })
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Its lines as JSON events (`-o json`).
    fn events(&self) -> Result<Vec<Value>> {
        self.lines()
            .iter()
            .map(|l| serde_json::from_str(l).with_context(|| format!("not JSON: {l}")))
            .collect()
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn is(e: &Value, kind: &str, service: &str) -> bool {
    e["type"] == kind && e["service"] == service
}

/// Distinct tasks of `service` told `running`.
fn running_tasks(events: &[Value], service: &str) -> usize {
    let mut tasks: Vec<&str> = events
        .iter()
        .filter(|e| is(e, "task.state", service) && e["to"] == "running")
        .filter_map(|e| e["task"].as_str())
        .collect();
    tasks.sort_unstable();
    tasks.dedup();
    tasks.len()
}

/// Waits until `f`'s events satisfy `check`.
fn wait_events(
    lab: &ClusterLab,
    f: &Follower,
    what: &str,
    check: impl Fn(&[Value]) -> bool,
) -> Result<Vec<Value>> {
    lab.wait_until(what, Duration::from_secs(90), || {
        let events = f.events()?;
        let seen: Vec<String> = events
            .iter()
            .rev()
            .take(12)
            .map(|e| format!("{} {} {}", e["id"], e["type"], e["message"]))
            .collect();
        Ok((
            check(&events).then(|| events.clone()),
            format!(
                "last events (newest first): {seen:#?}\nstderr: {}",
                f.stderr()
            ),
        ))
    })
}

/// Reads `GET /v1/events` from member `i` with `Last-Event-ID: last_id` until `done` says the
/// events that arrived are enough: their JSON.
fn stream_until(
    lab: &ClusterLab,
    i: usize,
    last_id: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Result<Vec<Value>> {
    let client = lab
        .lab
        .client_builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let resp = client
        .get(format!("http://{}/v1/events", lab.lab.addr(i)))
        .header("last-event-id", last_id)
        .send()?;
    ensure!(
        resp.status() == 200,
        "GET /v1/events on member {i}: HTTP {}",
        resp.status()
    );
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    ensure!(ct.starts_with("text/event-stream"), "content-type {ct}");
    let mut out = Vec::new();
    let mut id = None;
    for line in BufReader::new(resp).lines() {
        let line =
            line.with_context(|| format!("reading member {i}'s stream ({} so far)", out.len()))?;
        if let Some(v) = line.strip_prefix("id: ") {
            id = Some(v.to_string());
        } else if let Some(data) = line.strip_prefix("data: ") {
            let e: Value = serde_json::from_str(data)?;
            // The SSE id is the event's id.
            ensure!(
                id.as_deref() == e["id"].as_str(),
                "SSE id {id:?} for event {e}"
            );
            out.push(e);
            if done(&out) {
                return Ok(out);
            }
        }
    }
    bail!("member {i}'s stream ended after {} events", out.len())
}

/// The first `n` events member `i` sends after `last_id`.
fn stream_from(lab: &ClusterLab, i: usize, last_id: &str, n: usize) -> Result<Vec<Value>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    stream_until(lab, i, last_id, |got| got.len() >= n)
}

/// Follows member `i`'s stream from now on, in a thread: each event with when it arrived.
type Arrivals = Arc<Mutex<Vec<(Instant, Value)>>>;

fn watch_member(lab: &ClusterLab, i: usize) -> Result<Arrivals> {
    let client = lab.lab.client_builder().timeout(None).build()?;
    let resp = client
        .get(format!("http://{}/v1/events", lab.lab.addr(i)))
        .send()?;
    ensure!(
        resp.status() == 200,
        "GET /v1/events: HTTP {}",
        resp.status()
    );
    let arrivals = Arrivals::default();
    let seen = arrivals.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(resp).lines().map_while(Result::ok) {
            if let Some(Ok(e)) = line.strip_prefix("data: ").map(serde_json::from_str) {
                seen.lock().unwrap().push((Instant::now(), e));
            }
        }
    });
    Ok(arrivals)
}

/// An event id's entry index and position, for ordering.
fn id_of(e: &Value) -> (u64, u64) {
    let s = e["id"].as_str().unwrap_or_default();
    let (i, q) = s.split_once('.').unwrap_or((s, "0"));
    (i.parse().unwrap_or(0), q.parse().unwrap_or(0))
}

#[test]
fn events_follow_a_service_resume_on_another_member_and_tell_what_is_lost() -> Result<()> {
    let _g = serial();
    let mut lab = ClusterLab::start(3, MEMBER_FLAGS)?;
    lab.add_agent("a1", &[])?;
    let node = lab.node_id(0).context("the agent's node id")?;

    // Started before anything happens to the service: everything kept since 10 minutes ago,
    // then what comes; one with filters; one for people.
    let all = Follower::start(&lab, &["-o", "json", "--since", "10m"])?;
    let svc = Follower::start(
        &lab,
        &[
            "-o",
            "json",
            "--since",
            "10m",
            "--filter",
            "type=service",
            "--filter",
            "type=task.state",
            "--filter",
            "service=evweb",
        ],
    )?;
    let text = Follower::start(&lab, &["--since", "10m", "--filter", "service=evweb"])?;
    // The replay reached back to the agent's registration: the stream is up.
    wait_events(&lab, &all, "the node's registration replayed", |ev| {
        ev.iter()
            .any(|e| e["type"] == "node.registered" && e["node"] == node.as_str())
    })?;

    let spec = json!({
        "name": "evweb",
        "image": "busybox",
        "command": ["httpd", "-f", "-p", "80"],
        "replicas": 2,
        "health_check": {"tcp_port": 80, "interval": "500ms", "timeout": "1s", "retries": 2},
    });
    let (code, out, err) = lab.apply(&spec, &[])?;
    ensure!(code == 0, "apply: {out} {err}");
    wait_events(
        &lab,
        &all,
        "evweb created, 2 replicas running and healthy",
        |ev| {
            ev.iter()
                .any(|e| is(e, "service.created", "evweb") && e["to"] == "2")
                && running_tasks(ev, "evweb") == 2
                && ev
                    .iter()
                    .filter(|e| is(e, "task.health", "evweb") && e["to"] == "healthy")
                    .count()
                    >= 2
        },
    )?;
    // How soon a change reaches a stream on a member the write did not go through.
    let member2 = watch_member(&lab, 2)?;
    let asked = Instant::now();
    lab.post("/v1/services/evweb/scale", &json!({"replicas": 3}))?;
    let answered = Instant::now();
    let seen = lab.wait_until(
        "service.scaled on member 2's stream",
        Duration::from_secs(10),
        || {
            let got = member2.lock().unwrap();
            let hit = got
                .iter()
                .find(|(_, e)| is(e, "service.scaled", "evweb") && e["to"] == "3")
                .map(|(at, _)| *at);
            Ok((hit, format!("{} events", got.len())))
        },
    )?;
    eprintln!(
        "service.scaled on member 2's stream {:?} after the scale was asked, {:?} after it was answered",
        seen.duration_since(asked),
        seen.saturating_duration_since(answered)
    );
    ensure!(seen.duration_since(asked) < Duration::from_secs(2));
    wait_events(
        &lab,
        &all,
        "evweb scaled 2 → 3, a third replica running",
        |ev| {
            ev.iter()
                .any(|e| is(e, "service.scaled", "evweb") && e["from"] == "2" && e["to"] == "3")
                && running_tasks(ev, "evweb") == 3
        },
    )?;

    // The member the followers read from (the first address) is killed; they go on with the
    // next one after the last id they read.
    lab.wait_until(
        "member 0 took a snapshot (for the restart below)",
        Duration::from_secs(60),
        || {
            let st = lab.lab.status(0)?;
            let snap = st["snapshot_index"].as_u64().unwrap_or(0);
            Ok(((snap > 0).then_some(snap), format!("snapshot_index {snap}")))
        },
    )?;
    lab.lab.kill9(0)?;
    lab.hoist_ok(&["service", "scale", "evweb", "1"])?;
    let after_scale = wait_events(&lab, &all, "evweb scaled 3 → 1 after the failover", |ev| {
        ev.iter()
            .any(|e| is(e, "service.scaled", "evweb") && e["from"] == "3" && e["to"] == "1")
            && ev
                .iter()
                .filter(|e| is(e, "task.state", "evweb") && e["to"] == "shutdown")
                .count()
                >= 2
    })?;
    ensure!(
        all.stderr()
            .contains("trying the next member, resuming after"),
        "the follower did not say it moved on: {}",
        all.stderr()
    );
    lab.hoist_ok(&["service", "rm", "evweb"])?;
    let events = wait_events(&lab, &all, "evweb removed", |ev| {
        ev.iter().any(|e| is(e, "service.removed", "evweb"))
    })?;
    ensure!(events.len() >= after_scale.len());

    // One stream across the failover: strictly increasing ids (no duplicate), no gap.
    let ids: Vec<(u64, u64)> = events.iter().map(id_of).collect();
    ensure!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "ids not strictly increasing: {ids:?}"
    );
    ensure!(
        !events.iter().any(|e| e["type"] == "events.lost"),
        "nothing should be lost on members that kept running"
    );
    // Resumed on another member after the first event: exactly what followed, the same JSON
    // (ids, times, messages): every member tells the same events.
    for member in [1, 2] {
        let resumed = stream_from(
            &lab,
            member,
            events[0]["id"].as_str().unwrap_or_default(),
            events.len() - 1,
        )?;
        ensure!(
            resumed == events[1..],
            "member {member} resumed after {} with other events:\n{:#?}\nvs\n{:#?}",
            events[0]["id"],
            resumed.iter().map(|e| &e["id"]).collect::<Vec<_>>(),
            events[1..].iter().map(|e| &e["id"]).collect::<Vec<_>>()
        );
    }
    // From the middle: the scale to 3 and exactly what came after it.
    let mid = events
        .iter()
        .position(|e| is(e, "service.scaled", "evweb") && e["to"] == "3")
        .context("the scale to 3")?;
    let resumed = stream_from(
        &lab,
        2,
        events[mid]["id"].as_str().unwrap_or_default(),
        events.len() - mid - 1,
    )?;
    ensure!(
        resumed == events[mid + 1..],
        "resumed from the middle: {resumed:#?}"
    );

    // The filtered follower got exactly the matching events, through the same failover.
    let wanted: Vec<Value> = events
        .iter()
        .filter(|e| {
            e["service"] == "evweb"
                && (e["type"]
                    .as_str()
                    .unwrap_or_default()
                    .starts_with("service.")
                    || e["type"] == "task.state")
        })
        .cloned()
        .collect();
    let filtered = wait_events(&lab, &svc, "the filtered follower caught up", |ev| {
        ev.len() >= wanted.len()
    })?;
    ensure!(
        filtered == wanted,
        "filtered: {:#?}\nwanted: {:#?}",
        filtered.iter().map(|e| &e["type"]).collect::<Vec<_>>(),
        wanted.iter().map(|e| &e["type"]).collect::<Vec<_>>()
    );
    ensure!(wanted.iter().any(|e| e["type"] == "service.removed"));
    ensure!(!wanted.iter().any(|e| e["type"] == "task.health"));
    // For people: one line per event, with its type and what happened.
    lab.wait_until(
        "the table follower printed the removal",
        Duration::from_secs(30),
        || {
            let lines = text.lines();
            let ok = lines.iter().any(|l| {
                l.contains("service.created") && l.contains("evweb created: 2 replicas of busybox")
            }) && lines
                .iter()
                .any(|l| l.contains("service.removed") && l.contains("evweb removed"));
            Ok((ok.then_some(()), format!("{lines:#?}")))
        },
    )?;

    // Member 0 comes back from its snapshot: it holds no event of the entries before it, says
    // so to a reader resuming from before it, then goes on with exactly what follows.
    lab.lab.start(0, &[])?;
    lab.wait_until("member 0 caught up", Duration::from_secs(60), || {
        let st = lab.lab.status(0)?;
        let applied = st["last_applied"].as_u64().unwrap_or(0);
        let want = ids.last().map_or(0, |l| l.0);
        Ok(((applied >= want).then_some(()), format!("{st}")))
    })?;
    let after = |horizon: u64| -> Vec<Value> {
        events
            .iter()
            .filter(|e| id_of(e).0 > horizon)
            .cloned()
            .collect()
    };
    let resumed = stream_until(
        &lab,
        0,
        events[0]["id"].as_str().unwrap_or_default(),
        |got| {
            if got[0]["type"] != "events.lost" {
                return true;
            }
            let horizon = got[0]["to"]
                .as_str()
                .and_then(|t| t.parse().ok())
                .unwrap_or(0);
            got.len() > after(horizon).len()
        },
    )?;
    let lost = &resumed[0];
    let horizon: u64 = lost["to"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    ensure!(
        lost["type"] == "events.lost" && lost["from"] == events[0]["id"],
        "expected events.lost first: {lost}"
    );
    let snapshot = lab.lab.status(0)?["snapshot_index"].as_u64().unwrap_or(0);
    ensure!(
        horizon > ids[0].0 && horizon <= snapshot,
        "member 0 started after its snapshot (now at {snapshot}); it says events up to {horizon} are lost, and the first was at {}",
        ids[0].0
    );
    ensure!(
        resumed[1..] == after(horizon)[..],
        "after the gap: {:#?}",
        &resumed[1..]
    );

    // Bad filters are refused, naming the field, by the CLI and the API.
    let (code, _, err) = lab.hoist(&["events", "--filter", "type=servce"])?;
    ensure!(
        code == 1 && err.contains("\"servce\" is not an event type"),
        "exit {code}: {err}"
    );
    let (status, body) = lab.lab.get(1, "/v1/events?node=")?;
    ensure!(
        status == 400 && body["field"] == "node",
        "HTTP {status}: {body}"
    );
    Ok(())
}
