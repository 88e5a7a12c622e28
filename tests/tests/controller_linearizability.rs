//! Linearizability of the controller API under faults: several clients scale and read services
//! (each service's replica count is a register) through random members while a nemesis kills,
//! pauses and partitions members. The recorded history is checked per key with a Wing–Gong search;
//! a failing history is kept under the target directory.

use anyhow::{ensure, Context, Result};
use hoist_tests::controller_lab::{serial, Lab};
use hoist_tests::linearizability::{check, Op, OpKind};
use serde_json::json;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const KEYS: [&str; 3] = ["k0", "k1", "k2"];
const CLIENTS: usize = 5;
const RUN: Duration = Duration::from_secs(10);

struct Shared {
    start: Instant,
    history: Mutex<Vec<Op>>,
    /// Writes answered as refused (4xx, 503, no connection), left out of the history as never
    /// applied: kept for the report of a failing history, to tell which answer was wrong.
    refused: Mutex<Vec<serde_json::Value>>,
    next_value: AtomicI64,
    stop: AtomicBool,
}

fn client(id: usize, addrs: Vec<String>, shared: Arc<Shared>, token: String) {
    hoist_common::init_tls();
    let http = reqwest::blocking::Client::builder()
        .no_proxy()
        .default_headers(hoist_tests::controller_lab::auth_headers(&token))
        .connect_timeout(Duration::from_millis(300))
        .timeout(Duration::from_secs(4))
        .build()
        .expect("client");
    let now = |s: &Shared| s.start.elapsed().as_nanos() as u64;
    while !shared.stop.load(Ordering::Relaxed) {
        let key = KEYS[rand::random::<u32>() as usize % KEYS.len()];
        let addr = &addrs[rand::random::<u32>() as usize % addrs.len()];
        if rand::random::<bool>() {
            let v = shared.next_value.fetch_add(1, Ordering::Relaxed);
            let call = now(&shared);
            let r = http
                .post(format!("http://{addr}/v1/services/{key}/scale"))
                .json(&json!({ "replicas": v }))
                .send();
            let ret = match r {
                Ok(r) if r.status().as_u16() == 200 => Some(now(&shared)),
                // 4xx and 503 (no leader, no quorum, leader unreachable) are refusals before
                // anything was proposed: the write did not happen.
                Ok(r) if r.status().is_client_error() || r.status().as_u16() == 503 => {
                    let status = r.status().as_u16();
                    let body = r.text().unwrap_or_default();
                    shared.refused.lock().unwrap().push(json!({
                        "key": key, "value": v, "addr": addr, "call": call, "status": status,
                        "body": body,
                    }));
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                }
                // The request never left this machine.
                Err(e) if e.is_connect() => {
                    shared.refused.lock().unwrap().push(json!({
                        "key": key, "value": v, "addr": addr, "call": call,
                        "error": format!("{e:#}"),
                    }));
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                }
                // 504 outcome_unknown, other 5xx, timeouts, lost connections: it may or may not have happened.
                _ => None,
            };
            shared.history.lock().unwrap().push(Op {
                client: id,
                key: key.into(),
                kind: OpKind::Write(v),
                call,
                ret,
            });
            if ret.is_none() {
                std::thread::sleep(Duration::from_millis(20));
            }
        } else {
            let call = now(&shared);
            // HOIST_LIN_STALE_READS=1 reads without confirming leadership: a self-test of the
            // checker, which should then (usually) report a violation under partitions.
            let stale = if std::env::var_os("HOIST_LIN_STALE_READS").is_some() {
                "?stale=true"
            } else {
                ""
            };
            let r = http
                .get(format!("http://{addr}/v1/services/{key}{stale}"))
                .send();
            let Ok(r) = r else { continue };
            if r.status().as_u16() != 200 {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            let Ok(body) = r.json::<serde_json::Value>() else {
                continue;
            };
            let ret = Some(now(&shared));
            let Some(v) = body["spec"]["replicas"].as_i64() else {
                continue;
            };
            shared.history.lock().unwrap().push(Op {
                client: id,
                key: key.into(),
                kind: OpKind::Read(v),
                call,
                ret,
            });
        }
    }
}

/// One fault at a time on a random member, held briefly, then healed.
fn nemesis(lab: &mut Lab, until: Instant) -> Result<Vec<String>> {
    let mut log = Vec::new();
    while Instant::now() < until {
        let i = rand::random::<u32>() as usize % lab.len();
        let hold = Duration::from_millis(400 + rand::random::<u64>() % 1100);
        match rand::random::<u32>() % 3 {
            0 => {
                log.push(format!("kill -9 h{}", i + 1));
                lab.kill9(i)?;
                std::thread::sleep(hold);
                lab.start(i, &[])?;
            }
            1 => {
                log.push(format!("pause h{}", i + 1));
                lab.pause(i)?;
                std::thread::sleep(hold);
                lab.resume(i)?;
            }
            _ => {
                log.push(format!("partition h{}", i + 1));
                lab.cut(i)?;
                std::thread::sleep(hold);
                lab.heal(i)?;
            }
        }
        // Fault schedule, not a wait for a condition: let the cluster run healthy for a moment.
        std::thread::sleep(Duration::from_millis(300 + rand::random::<u64>() % 500));
    }
    Ok(log)
}

#[test]
fn api_is_linearizable_under_kill_pause_and_partition() -> Result<()> {
    let _g = serial();
    let mut lab = Lab::new(3)?;
    lab.start_cluster(3)?;
    let leader = lab.wait_leader(Duration::from_secs(10))?;
    for k in KEYS {
        let (code, v) = lab.post(
            leader,
            "/v1/services",
            &json!({ "name": k, "image": "busybox", "replicas": 0 }),
        )?;
        ensure!(code == 200, "create {k}: {code} {v}");
    }
    let shared = Arc::new(Shared {
        start: Instant::now(),
        history: Mutex::new(Vec::new()),
        refused: Mutex::new(Vec::new()),
        next_value: AtomicI64::new(1),
        stop: AtomicBool::new(false),
    });
    let addrs: Vec<String> = (0..lab.len()).map(|i| lab.addr(i)).collect();
    let token = lab.token().context("the first admin token")?;
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (a, s, t) = (addrs.clone(), shared.clone(), token.clone());
            std::thread::spawn(move || client(c, a, s, t))
        })
        .collect();
    let faults = nemesis(&mut lab, Instant::now() + RUN);
    shared.stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().expect("client thread");
    }
    let faults = faults.context("nemesis")?;
    let history = std::mem::take(&mut *shared.history.lock().unwrap());
    let ok_writes = history
        .iter()
        .filter(|o| matches!(o.kind, OpKind::Write(_)) && o.ret.is_some())
        .count();
    let unknown = history.iter().filter(|o| o.ret.is_none()).count();
    let reads = history
        .iter()
        .filter(|o| matches!(o.kind, OpKind::Read(_)))
        .count();
    eprintln!(
        "history: {} ops ({ok_writes} acknowledged writes, {unknown} unknown, {reads} reads); faults: {}",
        history.len(),
        faults.join(", ")
    );
    // Run the search on a thread with room for large histories.
    let h = history.clone();
    let bad = std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(move || check(&h, 0, 2_000_000))?
        .join()
        .expect("checker");
    if !bad.is_empty() {
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("linearizability");
        std::fs::create_dir_all(&dir)?;
        let file = dir.join(format!("history-{}.json", lab.run_id));
        let refused = shared.refused.lock().unwrap().clone();
        let doc = json!({
            "faults": faults, "verdicts": format!("{bad:?}"), "history": history,
            "refused": refused,
        });
        std::fs::write(&file, serde_json::to_vec_pretty(&doc)?)?;
        anyhow::bail!(
            "not linearizable: {bad:?}; history kept at {}",
            file.display()
        );
    }
    ensure!(
        ok_writes >= 30 && reads >= 30,
        "too few operations to mean anything"
    );
    Ok(())
}
