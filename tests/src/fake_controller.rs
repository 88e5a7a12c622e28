//! A scripted controller for testing the agent on its own: it speaks the real agent–controller
//! protocol (`proto::node`, format 0 over HTTP, as a 0.1.0 controller speaks it: no version
//! headers, postcard bodies) from the test process, and the test decides what
//! it answers — assignments, terms, forgetting the node — and reads back what the agent sent.
//! It listens on the lab bridge's own address, so only the lab's namespaces reach it.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use hoist_proto::format::Codec;
use hoist_proto::node::{
    Assignment, Assignments, Heartbeat, HeartbeatAck, RegisterRequest, RegisterResponse, StatusAck,
    StatusReport, TaskStatus,
};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// The cluster id inside [`TOKEN`].
pub const CLUSTER_ID: &str = "0123456789abcdef";
/// A join token the fake accepts.
pub const TOKEN: &str = "HOIST1-0123456789abcdef-00112233445566778899aabbccddeeff";

/// What the fake answers and what it has seen.
#[derive(Debug, Default)]
pub struct FakeState {
    pub term: u64,
    /// The term stamped on assignments answers (defaults to `term` when 0).
    pub assignments_term: u64,
    pub index: u64,
    pub tasks: Vec<Assignment>,
    /// Registered node ids.
    pub nodes: Vec<String>,
    /// Every registration request received.
    pub registrations: Vec<RegisterRequest>,
    pub heartbeats: u64,
    /// Latest status per task.
    pub statuses: BTreeMap<String, TaskStatus>,
    /// Every report's size, in order.
    pub report_sizes: Vec<usize>,
}

#[derive(Debug, Clone)]
struct Shared {
    state: Arc<Mutex<FakeState>>,
    changed: Arc<Notify>,
}

/// A running fake controller; stops when dropped.
#[derive(Debug)]
pub struct FakeController {
    pub addr: String,
    shared: Shared,
    runtime: Option<tokio::runtime::Runtime>,
}

fn postcard<T: Codec>(v: &T) -> Response {
    (
        [("content-type", hoist_proto::node::POSTCARD_MEDIA_TYPE)],
        v.encode(0).unwrap_or_default(),
    )
        .into_response()
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [("content-type", "application/json")],
        r#"{"code":"not_found","message":"node is not registered"}"#,
    )
        .into_response()
}

impl FakeController {
    /// Listens on `ip:0`.
    pub fn start(ip: &str) -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let shared = Shared {
            state: Arc::new(Mutex::new(FakeState {
                term: 1,
                index: 1,
                ..FakeState::default()
            })),
            changed: Arc::new(Notify::new()),
        };
        let listener = runtime.block_on(tokio::net::TcpListener::bind((ip, 0)))?;
        let addr = listener.local_addr()?.to_string();
        let app = Router::new()
            .route("/v1/agent/register", post(register))
            .route("/v1/agent/heartbeat", post(heartbeat))
            .route("/v1/agent/assignments", get(assignments))
            .route("/v1/agent/status", post(status))
            .with_state(shared.clone());
        runtime.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(FakeController {
            addr,
            shared,
            runtime: Some(runtime),
        })
    }

    /// Changes what the fake answers (and wakes long polls).
    pub fn update(&self, f: impl FnOnce(&mut FakeState)) {
        f(&mut self.shared.state.lock().unwrap_or_else(|e| e.into_inner()));
        self.shared.changed.notify_waiters();
    }

    /// Sets the assignments (a new index).
    pub fn assign(&self, tasks: Vec<Assignment>) {
        self.update(|s| {
            s.tasks = tasks;
            s.index += 1;
        });
    }

    /// Reads what the fake has seen.
    pub fn read<T>(&self, f: impl FnOnce(&FakeState) -> T) -> T {
        f(&self.shared.state.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Drop for FakeController {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(1));
        }
    }
}

fn lock(s: &Shared) -> std::sync::MutexGuard<'_, FakeState> {
    s.state.lock().unwrap_or_else(|e| e.into_inner())
}

async fn register(State(s): State<Shared>, body: Bytes) -> Response {
    let Ok(req) = RegisterRequest::decode(&body, 0) else {
        return (StatusCode::BAD_REQUEST, "bad body").into_response();
    };
    if req.token != TOKEN {
        return (StatusCode::UNAUTHORIZED, "bad token").into_response();
    }
    let mut st = lock(&s);
    let id = req
        .node_id
        .clone()
        .unwrap_or_else(|| format!("node-{}", st.registrations.len() + 1));
    if !st.nodes.contains(&id) {
        st.nodes.push(id.clone());
    }
    st.registrations.push(req);
    postcard(&RegisterResponse {
        node_id: id,
        term: st.term,
        heartbeat_interval_ms: 300,
        grace_ms: 3000,
        cluster_id: CLUSTER_ID.into(),
        node_credential: None,
        certificate: None,
        ca_certificate: None,
    })
}

async fn heartbeat(State(s): State<Shared>, body: Bytes) -> Response {
    let Ok(hb) = Heartbeat::decode(&body, 0) else {
        return (StatusCode::BAD_REQUEST, "bad body").into_response();
    };
    let mut st = lock(&s);
    st.heartbeats += 1;
    postcard(&HeartbeatAck {
        term: st.term,
        known: st.nodes.contains(&hb.node_id),
        ca_digest: String::new(),
        heartbeat_interval_ms: 0,
    })
}

#[derive(Debug, Deserialize)]
struct Poll {
    node: String,
    index: u64,
    wait_ms: u64,
}

async fn assignments(State(s): State<Shared>, Query(q): Query<Poll>) -> Response {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(q.wait_ms.min(30_000));
    loop {
        let notified = s.changed.notified();
        {
            let st = lock(&s);
            if !st.nodes.contains(&q.node) {
                return not_found();
            }
            if q.index == 0 || st.index > q.index || tokio::time::Instant::now() >= deadline {
                let term = if st.assignments_term == 0 {
                    st.term
                } else {
                    st.assignments_term
                };
                return postcard(&Assignments {
                    index: st.index,
                    term,
                    tasks: st.tasks.clone(),
                    overlay: None,
                    overlay_index: 0,
                    changed_since: 0,
                    unchanged: vec![],
                });
            }
        }
        let _ = tokio::time::timeout_at(deadline, notified).await;
    }
}

async fn status(State(s): State<Shared>, body: Bytes) -> Response {
    let Ok(report) = StatusReport::decode(&body, 0) else {
        return (StatusCode::BAD_REQUEST, "bad body").into_response();
    };
    let mut st = lock(&s);
    if !st.nodes.contains(&report.node_id) {
        return not_found();
    }
    st.report_sizes.push(report.tasks.len());
    for t in report.tasks {
        st.statuses.insert(t.task_id.clone(), t);
    }
    postcard(&StatusAck { term: st.term })
}
