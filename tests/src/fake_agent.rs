//! A test-only agent that speaks the real agent–controller protocol over HTTP (format 1: protobuf
//! bodies and this build's version headers):
//! it registers, heartbeats, long-polls its assignments and reports tasks Running (healthy, or
//! unhealthy when the image name contains "bad") and Shutdown when told to stop. It runs no
//! containers: controller tests use it to drive many nodes cheaply. `set_alive(false)` makes it
//! go silent (as if killed or cut off) while remembering its tasks.

use anyhow::{bail, Context, Result};
use hoist_proto::cluster::{NodeResources, TaskState};
use hoist_proto::format::{self, Codec};
use hoist_proto::node::{
    Assignments, Health, Heartbeat, HeartbeatAck, RegisterRequest, RegisterResponse, StatusAck,
    StatusReport, TaskStatus,
};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What one fake node is.
#[derive(Debug, Clone)]
pub struct FakeNode {
    pub hostname: String,
    pub address: String,
    pub labels: BTreeMap<String, String>,
    pub capacity: NodeResources,
}

impl FakeNode {
    pub fn new(hostname: &str, labels: &[(&str, &str)]) -> FakeNode {
        FakeNode {
            hostname: hostname.into(),
            address: format!("192.0.2.{}", hostname.len()),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            capacity: NodeResources {
                cpu_millis: 4000,
                memory_bytes: 8 << 30,
            },
        }
    }
}

#[derive(Debug, Default)]
struct Shared {
    node_id: Option<String>,
    /// task id → last reported state.
    reported: HashMap<String, TaskState>,
    term_seen: u64,
    errors: u64,
}

/// A fake agent running on its own thread.
#[derive(Debug)]
pub struct FakeAgent {
    alive: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    shared: Arc<Mutex<Shared>>,
    thread: Option<JoinHandle<()>>,
}

struct Conn {
    controllers: Vec<String>,
    next: usize,
    http: reqwest::blocking::Client,
    /// The join token: what registers.
    join: String,
    /// The node's own credential once registered (format 2): what every other request carries,
    /// as the real agent's do.
    credential: Option<String>,
}

impl Conn {
    fn call<T: Codec>(
        &mut self,
        method: reqwest::Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<T> {
        let mut last = String::new();
        for _ in 0..self.controllers.len() {
            let base = &self.controllers[self.next % self.controllers.len()];
            let mut req = self
                .http
                .request(method.clone(), format!("http://{base}{path}"))
                .bearer_auth(match &self.credential {
                    Some(c) if path != "/v1/agent/register" => c,
                    _ => &self.join,
                })
                .header(format::VERSION_HEADER, format::VERSION)
                .header(format::FORMAT_HEADER, format::CURRENT)
                .header(format::OLDEST_FORMAT_HEADER, format::OLDEST);
            if let Some(b) = &body {
                req = req
                    .header("content-type", format::PROTOBUF_MEDIA_TYPE)
                    .body(b.clone());
            }
            match req.send() {
                Ok(r) if r.status().is_success() => {
                    let bytes = r.bytes()?;
                    return T::decode(&bytes, format::CURRENT).context("answer decodes");
                }
                Ok(r) => {
                    let status = r.status();
                    let text = r.text().unwrap_or_default();
                    if status.as_u16() != 503 && status.as_u16() != 504 {
                        bail!("{path}: {status}: {text}");
                    }
                    last = format!("{base}: {status} {text}");
                }
                Err(e) => last = format!("{base}: {e}"),
            }
            self.next += 1;
        }
        bail!("{path}: no controller answered: {last}")
    }
}

fn body<T: Codec>(v: &T) -> Option<Vec<u8>> {
    Some(v.encode(format::CURRENT).expect("encodes"))
}

impl FakeAgent {
    /// Registers `node` with `token` through `controllers` and starts its loop.
    pub fn start(controllers: &[String], token: &str, node: FakeNode) -> Result<FakeAgent> {
        hoist_common::init_tls();
        let http = reqwest::blocking::Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_millis(500))
            .timeout(Duration::from_secs(10))
            .build()?;
        let mut conn = Conn {
            controllers: controllers.to_vec(),
            next: 0,
            http,
            join: token.to_string(),
            credential: None,
        };
        let shared = Arc::new(Mutex::new(Shared::default()));
        let reg = register(&mut conn, token, &node, None)?;
        {
            let mut s = shared.lock().unwrap();
            s.node_id = Some(reg.node_id.clone());
            s.term_seen = reg.term;
        }
        let alive = Arc::new(AtomicBool::new(true));
        let stop = Arc::new(AtomicBool::new(false));
        let (a, st, sh) = (alive.clone(), stop.clone(), shared.clone());
        let token = token.to_string();
        let interval = Duration::from_millis(reg.heartbeat_interval_ms.min(300));
        let thread = std::thread::spawn(move || {
            run(conn, token, node, reg.node_id, interval, a, st, sh);
        });
        Ok(FakeAgent {
            alive,
            stop,
            shared,
            thread: Some(thread),
        })
    }

    pub fn node_id(&self) -> String {
        self.shared
            .lock()
            .unwrap()
            .node_id
            .clone()
            .unwrap_or_default()
    }

    /// False: no heartbeats, polls or reports (as if killed or partitioned); true: back.
    pub fn set_alive(&self, alive: bool) {
        self.alive.store(alive, Ordering::SeqCst);
    }

    /// Tasks this agent believes run (reported Running).
    pub fn running(&self) -> usize {
        self.shared
            .lock()
            .unwrap()
            .reported
            .values()
            .filter(|s| **s == TaskState::Running)
            .count()
    }

    pub fn errors(&self) -> u64 {
        self.shared.lock().unwrap().errors
    }
}

impl Drop for FakeAgent {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn register(
    conn: &mut Conn,
    token: &str,
    node: &FakeNode,
    node_id: Option<String>,
) -> Result<RegisterResponse> {
    let req = RegisterRequest {
        token: token.into(),
        node_id,
        hostname: node.hostname.clone(),
        address: node.address.clone(),
        labels: node.labels.clone(),
        capacity: node.capacity,
        agent_version: "fake".into(),
        wg_public_key: None,
        wg_endpoint: None,
        csr: None,
    };
    let resp: RegisterResponse =
        conn.call(reqwest::Method::POST, "/v1/agent/register", body(&req))?;
    conn.credential = resp.node_credential.clone();
    Ok(resp)
}

#[allow(clippy::too_many_arguments)]
fn run(
    mut conn: Conn,
    token: String,
    node: FakeNode,
    node_id: String,
    interval: Duration,
    alive: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    shared: Arc<Mutex<Shared>>,
) {
    let mut index = 0u64;
    let mut last_beat = Instant::now() - interval;
    while !stop.load(Ordering::SeqCst) {
        if !alive.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(50));
            index = 0;
            continue;
        }
        let term_seen = shared.lock().unwrap().term_seen;
        if last_beat.elapsed() >= interval {
            last_beat = Instant::now();
            let hb = Heartbeat {
                node_id: node_id.clone(),
                term_seen,
                endpoints_applied: 0,
            };
            match conn.call::<HeartbeatAck>(reqwest::Method::POST, "/v1/agent/heartbeat", body(&hb))
            {
                Ok(ack) if !ack.known => {
                    let _ = register(&mut conn, &token, &node, Some(node_id.clone()));
                }
                Ok(_) => {}
                Err(_) => shared.lock().unwrap().errors += 1,
            }
        }
        let path = format!(
            "/v1/agent/assignments?node={node_id}&index={index}&wait_ms={}",
            interval.as_millis()
        );
        let a: Assignments = match conn.call(reqwest::Method::GET, &path, None) {
            Ok(a) => a,
            Err(_) => {
                shared.lock().unwrap().errors += 1;
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        if a.term < term_seen || !alive.load(Ordering::SeqCst) {
            continue; // an instruction from a deposed leader
        }
        index = a.index;
        let mut report = Vec::new();
        {
            let mut s = shared.lock().unwrap();
            s.term_seen = s.term_seen.max(a.term);
            let assigned: std::collections::HashSet<&str> =
                a.tasks.iter().map(|t| t.task_id.as_str()).collect();
            s.reported.retain(|id, _| assigned.contains(id.as_str()));
            for t in &a.tasks {
                let prev = s.reported.get(&t.task_id).copied();
                let (state, health) = match t.desired {
                    TaskState::Running if prev.is_none() => {
                        let health = if t.spec.image.contains("bad") {
                            Health::Unhealthy
                        } else if t.spec.health_check.is_some() {
                            Health::Healthy
                        } else {
                            Health::None
                        };
                        (TaskState::Running, health)
                    }
                    TaskState::Shutdown if prev != Some(TaskState::Shutdown) => {
                        (TaskState::Shutdown, Health::None)
                    }
                    _ => continue,
                };
                s.reported.insert(t.task_id.clone(), state);
                report.push(TaskStatus {
                    task_id: t.task_id.clone(),
                    state,
                    health,
                    container_id: Some(format!("c-{}", t.task_id)),
                    address: Some(format!(
                        "10.89.{}.{}",
                        node.hostname.len(),
                        t.slot % 250 + 2
                    )),
                    exit_code: None,
                    message: if health == Health::Unhealthy {
                        "health check failed".into()
                    } else {
                        String::new()
                    },
                    restarts: 0,
                });
            }
        }
        if !report.is_empty() {
            let r = StatusReport {
                node_id: node_id.clone(),
                term_seen: a.term,
                tasks: report,
            };
            if conn
                .call::<StatusAck>(reqwest::Method::POST, "/v1/agent/status", body(&r))
                .is_err()
            {
                let mut s = shared.lock().unwrap();
                s.errors += 1;
                s.reported.clear(); // report again next time
                index = 0;
            }
        }
    }
}
