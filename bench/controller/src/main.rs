//! `hoist-bench-load`: one HTTP load generator for both Hoist's controller API and etcd's v3 JSON
//! gateway, so the two clusters are measured with the same client.
//!
//! - `load SYSTEM ENDPOINTS CLIENTS SECS`: small writes in a closed loop, one key per client,
//!   clients spread over the endpoints; prints ops/s, p50 and p99 as JSON.
//! - `failover SYSTEM ENDPOINTS PIDS`: `kill -9` the leader, then write until one succeeds; prints
//!   the time and which endpoint was killed.
//! - `steady SYSTEM ENDPOINTS RATE SECS`: writes at a fixed rate (round robin over the endpoints)
//!   for a long run; prints ops, errors, p50, p99 and the slowest write as JSON.
//! - `term SYSTEM ENDPOINTS`: the current Raft term (to count elections).
//! - `setup SYSTEM ENDPOINTS KEYS`: creates the keys (Hoist services) the load writes to.

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::time::{Duration, Instant, SystemTime};

#[derive(Clone, Copy, PartialEq, Eq)]
enum System {
    Hoist,
    Etcd,
}

fn b64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn client(sys: System) -> reqwest::Client {
    client_with_timeout(sys, Duration::from_secs(5))
}

/// A client of the system under test; only Hoist's requests carry `HOIST_TOKEN` (an admin
/// token): etcd refuses a request with a bearer token it did not issue.
fn client_with_timeout(sys: System, timeout: Duration) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(v) = std::env::var("HOIST_TOKEN")
        .ok()
        .filter(|_| sys == System::Hoist)
        .and_then(|t| format!("Bearer {t}").parse().ok())
    {
        headers.insert(reqwest::header::AUTHORIZATION, v);
    }
    reqwest::Client::builder()
        .no_proxy()
        .default_headers(headers)
        .connect_timeout(Duration::from_millis(200))
        .timeout(timeout)
        .tcp_nodelay(true)
        .pool_max_idle_per_host(256)
        .build()
        .expect("client")
}

/// One small write of `value` to `key`; true when acknowledged.
async fn write(http: &reqwest::Client, sys: System, ep: &str, key: &str, value: u64) -> bool {
    let r = match sys {
        System::Hoist => {
            http.post(format!("http://{ep}/v1/services/{key}/scale"))
                .json(&json!({ "replicas": value % 1000 }))
                .send()
                .await
        }
        System::Etcd => http
            .post(format!("http://{ep}/v3/kv/put"))
            .json(
                &json!({ "key": b64(key.as_bytes()), "value": b64(value.to_string().as_bytes()) }),
            )
            .send()
            .await,
    };
    match r {
        Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
        Err(_) => false,
    }
}

/// The `p` quantile of sorted latencies, in ms.
fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
    sorted
        .get(((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1)))
        .map_or(0.0, |d| d.as_secs_f64() * 1e3)
}

async fn load(sys: System, eps: Vec<String>, clients: usize, secs: f64) -> Result<Value> {
    let http = client(sys);
    let warmup = Duration::from_millis(1000);
    let run = Duration::from_secs_f64(secs);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (http, ep) = (http.clone(), eps[c % eps.len()].clone());
        tasks.push(tokio::spawn(async move {
            let key = format!("k{c}");
            let (mut lat, mut errors, mut n) = (Vec::new(), 0u64, 0u64);
            while start.elapsed() < warmup + run {
                n += 1;
                let t = Instant::now();
                let ok = write(&http, sys, &ep, &key, n).await;
                if start.elapsed() > warmup {
                    if ok {
                        lat.push(t.elapsed());
                    } else {
                        errors += 1;
                    }
                }
            }
            (lat, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await?;
        all.extend(l);
        errors += e;
    }
    all.sort();
    let pct = |p: f64| percentile_ms(&all, p);
    Ok(json!({
        "clients": clients,
        "ops": all.len(),
        "errors": errors,
        "ops_per_sec": all.len() as f64 / run.as_secs_f64(),
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
    }))
}

async fn steady(sys: System, eps: Vec<String>, rate: f64, secs: f64) -> Result<Value> {
    let http = client(sys);
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let end = Instant::now() + Duration::from_secs_f64(secs);
    let (mut lat, mut errors, mut n) = (Vec::new(), 0u64, 0u64);
    while Instant::now() < end {
        tick.tick().await;
        n += 1;
        let t = Instant::now();
        if write(&http, sys, &eps[n as usize % eps.len()], "k0", n).await {
            lat.push(t.elapsed());
        } else {
            errors += 1;
        }
    }
    lat.sort();
    let pct = |p: f64| percentile_ms(&lat, p);
    Ok(json!({
        "rate": rate,
        "ops": lat.len(),
        "errors": errors,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "max_ms": lat.last().map_or(0.0, |d| d.as_secs_f64() * 1e3),
    }))
}

async fn leader_index(sys: System, eps: &[String]) -> Result<usize> {
    let http = client(sys);
    for ep in eps {
        match sys {
            System::Hoist => {
                let Ok(r) = http
                    .get(format!("http://{ep}/v1/cluster/status"))
                    .send()
                    .await
                else {
                    continue;
                };
                let v: Value = r.json().await?;
                if let Some(addr) = v["leader_address"].as_str() {
                    return eps
                        .iter()
                        .position(|e| e == addr)
                        .context("leader address not among the endpoints");
                }
            }
            System::Etcd => {
                let mut leader = None;
                let mut ids = Vec::new();
                for e in eps {
                    let r = http
                        .post(format!("http://{e}/v3/maintenance/status"))
                        .json(&json!({}))
                        .send()
                        .await;
                    let v: Value = match r {
                        Ok(r) => r.json().await?,
                        Err(_) => Value::Null,
                    };
                    ids.push(v["header"]["member_id"].as_str().map(String::from));
                    if leader.is_none() {
                        leader = v["leader"].as_str().map(String::from);
                    }
                }
                if let Some(l) = leader {
                    return ids
                        .iter()
                        .position(|i| i.as_deref() == Some(&l))
                        .context("leader not among the endpoints");
                }
            }
        }
    }
    bail!("no leader found")
}

async fn term(sys: System, eps: &[String]) -> Result<u64> {
    let http = client(sys);
    let mut best = 0;
    for ep in eps {
        let v: Value = match sys {
            System::Hoist => match http
                .get(format!("http://{ep}/v1/cluster/status"))
                .send()
                .await
            {
                Ok(r) => r.json().await?,
                Err(_) => continue,
            },
            System::Etcd => match http
                .post(format!("http://{ep}/v3/maintenance/status"))
                .json(&json!({}))
                .send()
                .await
            {
                Ok(r) => r.json().await?,
                Err(_) => continue,
            },
        };
        let t = match sys {
            System::Hoist => v["term"].as_u64(),
            System::Etcd => v["raftTerm"].as_str().and_then(|s| s.parse().ok()),
        };
        best = best.max(t.unwrap_or(0));
    }
    Ok(best)
}

async fn failover(sys: System, eps: Vec<String>, pids: Vec<i32>) -> Result<Value> {
    // A write stuck on a dead leader is abandoned after 100 ms and retried, for both systems alike
    // (healthy writes take 1–3 ms), so the measure resolves to ~0.1 s rather than to the timeout.
    let http = client_with_timeout(sys, Duration::from_millis(100));
    let leader = leader_index(sys, &eps).await?;
    let survivors: Vec<&String> = eps
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != leader)
        .map(|(_, e)| e)
        .collect();
    // Steady writes first so that every connection is warm.
    for n in 0..50 {
        write(&http, sys, survivors[n % 2], "failover", n as u64).await;
    }
    // SAFETY: kill(2) on a pid given by the caller (the leader's process).
    let rc = unsafe { libc::kill(pids[leader], libc::SIGKILL) };
    if rc != 0 {
        bail!("kill {}: {}", pids[leader], std::io::Error::last_os_error());
    }
    let t0 = Instant::now();
    // The kill's wall-clock time, to line up the failover with the members' logs.
    let killed_unix_ms = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let mut n = 100u64;
    loop {
        n += 1;
        if write(&http, sys, survivors[n as usize % 2], "failover", n).await {
            break;
        }
        if t0.elapsed() > Duration::from_secs(30) {
            bail!("no write succeeded within 30 s of the leader's kill");
        }
    }
    Ok(json!({
        "killed": leader,
        "killed_unix_ms": killed_unix_ms,
        "attempts": n - 100,
        "failover_ms": t0.elapsed().as_secs_f64() * 1e3,
    }))
}

async fn setup(eps: Vec<String>, keys: usize) -> Result<()> {
    let http = client(System::Hoist);
    for k in ["failover".to_string()]
        .into_iter()
        .chain((0..keys).map(|c| format!("k{c}")))
    {
        let spec = json!({ "name": k, "image": "busybox", "replicas": 0 });
        let mut ok = false;
        for attempt in 0..50 {
            let ep = &eps[attempt % eps.len()];
            if let Ok(r) = http
                .post(format!("http://{ep}/v1/services"))
                .json(&spec)
                .send()
                .await
            {
                if r.status().is_success() {
                    ok = true;
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if !ok {
            bail!("could not create service {k}");
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: hoist-bench-load (load SYS EPS CLIENTS SECS | steady SYS EPS RATE SECS | failover SYS EPS PIDS | term SYS EPS | setup SYS EPS KEYS)";
    if args.len() < 4 {
        bail!(usage);
    }
    let sys = match args[2].as_str() {
        "hoist" => System::Hoist,
        "etcd" => System::Etcd,
        other => bail!("unknown system {other}"),
    };
    let eps: Vec<String> = args[3].split(',').map(String::from).collect();
    let arg = |i: usize| args.get(i).cloned().context(usage);
    match args[1].as_str() {
        "load" => println!(
            "{}",
            load(sys, eps, arg(4)?.parse()?, arg(5)?.parse()?).await?
        ),
        "failover" => {
            let pids = arg(4)?
                .split(',')
                .map(str::parse)
                .collect::<Result<Vec<i32>, _>>()?;
            println!("{}", failover(sys, eps, pids).await?);
        }
        "steady" => println!(
            "{}",
            steady(sys, eps, arg(4)?.parse()?, arg(5)?.parse()?).await?
        ),
        "term" => println!("{}", term(sys, &eps).await?),
        "setup" if sys == System::Hoist => setup(eps, arg(4)?.parse()?).await?,
        "setup" => {}
        _ => bail!(usage),
    }
    Ok(())
}
