//! Session routes (`crate::sessions`, `hoist_proto::session`): the operator's
//! `GET /v1/services/{name}/logs` and `POST /v1/services/{name}/exec` (newline-delimited JSON
//! answers, streamed as they come), and the agents' session poll and output. Only the leader
//! holds sessions; other members stream these routes to it both ways (`stream_forward.rs`).

use super::agent::{agent_version, check_reporter, encode, AgentVersion};
use super::body::{buffer, json, JSON_LIMIT};
use super::error::ApiError;
use super::query::Query;
use super::Ctx;
use crate::raft::peers::body_format;
use crate::sessions::replicas::{self, Replica, TargetError};
use crate::sessions::{logs, new_id, AttachError, SessionEvent, Sessions};
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use hoist_proto::cluster::NodeStatus;
use hoist_proto::node::StatusAck;
use hoist_proto::session::{
    ExecBody, ExecRecord, ExecReplica, FrameDecoder, SessionError, SessionKind, SessionRequest,
    SessionRequests,
};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

const NDJSON: &str = "application/x-ndjson";

/// An answer whose body is what `rx` yields, as it comes.
fn ndjson(rx: mpsc::Receiver<Bytes>) -> Response {
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        let b = rx.recv().await?;
        Some((Ok::<_, std::convert::Infallible>(b), rx))
    });
    ([(header::CONTENT_TYPE, NDJSON)], Body::from_stream(stream)).into_response()
}

fn no_service(name: &str) -> ApiError {
    ApiError::not_found(format!("service {name:?} not found"))
}

/// The running replicas of `name` (`None`: no such service), as `s` has them.
fn scan(s: &crate::state::State, name: &str) -> Option<Vec<Replica>> {
    s.services.get(name)?;
    Some(replicas::running(s.tasks.of_service(name), &s.nodes, name))
}

/// The running replicas of `name` now, from the leader (a linearizable read).
async fn running_now(ctx: &Ctx, name: &str) -> Result<Vec<Replica>, ApiError> {
    ctx.node.ensure_leader()?;
    ctx.node
        .read(|s| scan(s, name))
        .await?
        .ok_or_else(|| no_service(name))
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// `GET /v1/services/{name}/logs?follow=&tail=&since=`: every running replica's output, line
/// by line ([`hoist_proto::session::LogRecord`]).
pub async fn service_logs(
    State(ctx): State<Ctx>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let opts = crate::sessions::query::logs_options(q.as_deref(), now_ms())
        .map_err(ApiError::bad_request)?;
    let first = running_now(&ctx, &name).await?;
    let (out, rx) = mpsc::channel(256);
    let node = ctx.node.clone();
    let service = name.clone();
    let rescan = move || {
        node.stale_read(|s| {
            Some(logs::Snapshot {
                replicas: scan(s, &service)?,
                down: s
                    .nodes
                    .values()
                    .filter(|n| n.status == NodeStatus::Down)
                    .map(|n| n.id.clone())
                    .collect(),
            })
        })
    };
    tokio::spawn(logs::merge(
        ctx.sessions.clone(),
        name,
        opts,
        first,
        rescan,
        out,
    ));
    Ok(ndjson(rx))
}

/// `POST /v1/services/{name}/exec` ([`ExecBody`]): runs a command in one replica and streams
/// its output ([`ExecRecord`]s), the exit code last.
pub async fn service_exec(
    State(ctx): State<Ctx>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = buffer(&headers, body, JSON_LIMIT).await?;
    let req: ExecBody = json(&headers, &bytes, "exec request")?;
    if req.cmd.is_empty() {
        return Err(ApiError::field(
            StatusCode::BAD_REQUEST,
            "cmd",
            "must name a command",
        ));
    }
    let running = running_now(&ctx, &name).await?;
    let target = replicas::exec_target(&name, &running, req.slot).map_err(|e| match e {
        TargetError::NodeDown { .. } => {
            ApiError::new(StatusCode::CONFLICT, "node_down", e.to_string())
        }
        _ => ApiError::not_found(e.to_string()),
    })?;
    let (tx, mut rx) = mpsc::channel(64);
    let request = SessionRequest {
        id: new_id(),
        task_id: target.task.clone(),
        service: name.clone(),
        slot: target.slot,
        kind: SessionKind::Exec(hoist_proto::ExecRequest {
            cmd: req.cmd,
            env: req.env,
            workdir: req.workdir,
            user: req.user,
        }),
    };
    ctx.sessions
        .open(&target.node, request, tx)
        .map_err(|m| ApiError::new(StatusCode::TOO_MANY_REQUESTS, "busy", m))?;
    // The agent's answer begins, or the reason it does not, before the answer's status.
    match rx.recv().await {
        Some(SessionEvent::Attached) => {}
        Some(SessionEvent::Ended(Some(why))) => {
            return Err(ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "agent_timeout",
                why,
            ))
        }
        _ => {
            return Err(ApiError::new(
                StatusCode::BAD_GATEWAY,
                "agent_failed",
                format!("node {} ended the session at once", target.node),
            ))
        }
    }
    let (out, body) = mpsc::channel(64);
    tokio::spawn(pipe_exec(target, rx, out));
    Ok(ndjson(body))
}

/// An exec's events → its answer's records; ends when the operator goes (dropping `rx` ends the
/// agent's output request).
async fn pipe_exec(
    target: Replica,
    mut rx: mpsc::Receiver<SessionEvent>,
    out: mpsc::Sender<Bytes>,
) {
    let write = |rec: ExecRecord| {
        let mut line = serde_json::to_vec(&rec).unwrap_or_default();
        line.push(b'\n');
        Bytes::from(line)
    };
    let first = ExecRecord {
        replica: Some(ExecReplica {
            slot: target.slot,
            node: target.node.clone(),
            task: target.task.clone(),
        }),
        ..ExecRecord::default()
    };
    if out.send(write(first)).await.is_err() {
        return;
    }
    loop {
        let event = tokio::select! {
            e = rx.recv() => e,
            _ = out.closed() => return,
        };
        let rec = match event {
            Some(SessionEvent::Attached) => continue,
            Some(SessionEvent::Frame(f))
                if f.data.is_empty() && f.exit_code.is_none() && f.error.is_none() =>
            {
                continue
            }
            Some(SessionEvent::Frame(f)) => {
                let last = f.exit_code.is_some() || f.error.is_some();
                let rec = ExecRecord {
                    stream: f.stream.map(|s| s.name().to_string()),
                    data: (!f.data.is_empty())
                        .then(|| String::from_utf8_lossy(&f.data).into_owned()),
                    exit_code: f.exit_code,
                    error: f.error,
                    replica: None,
                };
                if out.send(write(rec)).await.is_err() || last {
                    return;
                }
                continue;
            }
            Some(SessionEvent::Ended(why)) => ExecRecord {
                error: Some(SessionError {
                    code: "session_ended".into(),
                    message: why.unwrap_or_else(|| {
                        format!(
                            "node {}: the command's output ended without an exit code",
                            target.node
                        )
                    }),
                }),
                ..ExecRecord::default()
            },
            None => ExecRecord {
                error: Some(SessionError {
                    code: "session_ended".into(),
                    message: format!("node {}: the command's output stopped", target.node),
                }),
                ..ExecRecord::default()
            },
        };
        let _ = out.send(write(rec)).await;
        return;
    }
}

#[derive(Debug, Deserialize)]
pub struct PollQuery {
    node: String,
    #[serde(default)]
    wait_ms: u64,
}

/// `GET /v1/agent/sessions?node=ID&wait_ms=M`: the sessions asked of the node, as soon as there
/// are some (format 2).
pub async fn agent_poll(
    State(ctx): State<Ctx>,
    AgentVersion(version): AgentVersion,
    Query(q): Query<PollQuery>,
) -> Result<Response, ApiError> {
    let format = version.common_format();
    if format < 2 {
        return Err(ApiError::bad_request(
            "sessions need an agent of format 2 or newer",
        ));
    }
    check_reporter(&ctx, &q.node)?;
    let sessions = ctx
        .sessions
        .poll(&q.node, Duration::from_millis(q.wait_ms))
        .await;
    let out = SessionRequests {
        term: ctx.node.term(),
        sessions,
    };
    Ok(encode(&out, format))
}

#[derive(Debug, Deserialize)]
pub struct OutputQuery {
    node: String,
}

/// Ends a session however its output request ends (the connection may drop the handler).
struct Finish {
    sessions: Arc<Sessions>,
    id: String,
}

impl Drop for Finish {
    fn drop(&mut self) {
        self.sessions.finish(&self.id);
    }
}

/// How an output request ended.
enum Outcome {
    /// The body ended; `Some` says what was wrong with it.
    Done(Option<String>),
    OperatorGone,
    /// Ended from here: the node registered again.
    Ended,
}

/// `POST /v1/agent/sessions/{id}?node=ID`: the agent's output of a session, a stream of
/// length-delimited frames piped to the operator as they come. Only the node asked may answer.
pub async fn agent_output(
    State(ctx): State<Ctx>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(q): Query<OutputQuery>,
    body: Body,
) -> Result<Response, ApiError> {
    agent_version(&headers)?;
    let format = body_format(&headers);
    if format < 2 {
        return Err(ApiError::bad_request(
            "session output is sent in format 2 or newer",
        ));
    }
    super::auth::check_acts_for(&ctx, &q.node)?;
    let attached = ctx.sessions.attach(&id, &q.node).map_err(|e| match e {
        AttachError::Unknown => {
            ApiError::not_found(format!("session {id} is over or was never asked"))
        }
        AttachError::WrongNode { owner } => ApiError::new(
            StatusCode::FORBIDDEN,
            "wrong_node",
            format!("session {id} was asked of node {owner}, not {}", q.node),
        ),
        AttachError::AlreadyAttached => ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!("session {id} is answered already"),
        ),
    })?;
    let _finish = Finish {
        sessions: ctx.sessions.clone(),
        id: id.clone(),
    };
    let to_operator = attached.to_operator;
    let mut ended = attached.ended;
    let mut data = body.into_data_stream();
    let mut decoder = FrameDecoder::new(format);
    let _ = to_operator.send(SessionEvent::Attached).await;
    let outcome = 'read: loop {
        let chunk = tokio::select! {
            c = data.next() => c,
            _ = to_operator.closed() => break Outcome::OperatorGone,
            _ = ended.changed() => break Outcome::Ended,
        };
        let bytes = match chunk {
            None if decoder.is_clean() => break Outcome::Done(None),
            None => {
                break Outcome::Done(Some(format!(
                    "node {}: the output ended inside a frame",
                    q.node
                )))
            }
            Some(Err(e)) => {
                break Outcome::Done(Some(format!(
                    "node {}: the output connection broke ({e})",
                    q.node
                )))
            }
            Some(Ok(b)) => b,
        };
        let frames = match decoder.push(&bytes) {
            Ok(f) => f,
            Err(e) => break Outcome::Done(Some(format!("node {}: {e}", q.node))),
        };
        for f in frames {
            tokio::select! {
                r = to_operator.send(SessionEvent::Frame(f)) => {
                    if r.is_err() {
                        break 'read Outcome::OperatorGone;
                    }
                }
                _ = ended.changed() => break 'read Outcome::Ended,
            }
        }
    };
    match outcome {
        Outcome::Done(why) => {
            let _ = to_operator.send(SessionEvent::Ended(why)).await;
        }
        Outcome::OperatorGone => {
            tracing::debug!(session = %id, node = %q.node, "the operator left: session ended");
        }
        Outcome::Ended => {}
    }
    Ok(encode(
        &StatusAck {
            term: ctx.node.term(),
        },
        format,
    ))
}
