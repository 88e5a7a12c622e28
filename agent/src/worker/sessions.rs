//! The agent's end of sessions (`hoist_proto::session`): `hoist service logs` and `hoist service
//! exec` of this node's replicas, asked through the controllers. The agent opens no port for
//! them: it keeps one session poll open at the leader, runs each session it is given against
//! its container manager (the task's container, found by its `hoist.task` label), and streams
//! the output back as the body of one request. The session ends when the output does (an exec's
//! exit, the end of a log), or when the leader answers that request early (the operator left, or
//! the node registered again): what was being streamed is then dropped, which ends a followed
//! log at once. All sessions end when the node registers again.

use super::{backoff, Node, POLL_WAIT};
use crate::containers::{LogOptions, Manager};
use bytes::Bytes;
use hoist_proto::format::CURRENT;
use hoist_proto::session::{
    encode_frame, OutputStream, SessionError, SessionFrame, SessionKind, SessionRequest,
};
use hoist_proto::{ContainerInfo, ContainerStatus, StreamChunk};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

impl Node {
    /// Polls for sessions while the node is registered; serves each one in a task of its own.
    pub(super) async fn sessions(self: Arc<Self>) {
        let mut session_rx = self.session.subscribe();
        let mut serving = JoinSet::new();
        let mut failures = 0u32;
        loop {
            let node_id = match session_rx.wait_for(Option::is_some).await {
                Ok(s) => s.as_ref().map(|s| s.node_id.clone()).unwrap_or_default(),
                Err(_) => return,
            };
            session_rx.mark_unchanged();
            let wait = tokio::select! {
                r = self.client.sessions(&node_id, POLL_WAIT) => match r {
                    Ok(asked) => {
                        failures = 0;
                        if self.check_term(asked.term, "sessions") == super::Verdict::Stale {
                            Duration::from_millis(200)
                        } else {
                            for req in asked.sessions {
                                serving.spawn(serve(self.clone(), node_id.clone(), req));
                            }
                            Duration::ZERO
                        }
                    }
                    Err(e) => {
                        failures += 1;
                        if failures == 1 || failures.is_multiple_of(30) {
                            tracing::warn!(failures, "polling for sessions failed: {e}");
                        }
                        // A controller without sessions (older than 0.3) refuses for good.
                        if matches!(e, super::client::ClientError::Refused { .. }) {
                            Duration::from_secs(30)
                        } else {
                            backoff(failures.min(4))
                        }
                    }
                },
                _ = session_rx.changed() => Duration::ZERO,
            };
            while serving.try_join_next().is_some() {}
            if session_rx.has_changed().unwrap_or(true) {
                // Registered again: the leader has ended every session of the node.
                if !serving.is_empty() {
                    tracing::info!(
                        sessions = serving.len(),
                        "registered again: ending sessions"
                    );
                }
                serving.abort_all();
                continue;
            }
            if !wait.is_zero() {
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = session_rx.changed() => serving.abort_all(),
                }
            }
        }
    }
}

/// Runs one session and streams its output to the controllers until either side ends it.
async fn serve(node: Arc<Node>, node_id: String, req: SessionRequest) {
    let (tx, rx) = mpsc::channel(32);
    let what = match &req.kind {
        SessionKind::Logs(_) => "logs",
        SessionKind::Exec(_) => "exec",
    };
    tracing::info!(session = %req.id, task = %req.task_id, service = %req.service, slot = req.slot, what, "session started");
    let producer = tokio::spawn(produce(node.mgr.clone(), req.clone(), tx));
    let t = std::time::Instant::now();
    let r = node.client.session_output(&node_id, &req.id, rx).await;
    // The answer came: the output is no longer wanted (a followed log would run on).
    producer.abort();
    match r {
        Ok(()) => tracing::info!(session = %req.id, took = ?t.elapsed(), "session ended"),
        Err(e) => tracing::warn!(session = %req.id, "session ended: {e}"),
    }
}

/// The session's output as frames into `tx`; ends when the output does or `tx` closes.
async fn produce(mgr: Arc<Manager>, req: SessionRequest, tx: mpsc::Sender<Bytes>) {
    let send = |frame: SessionFrame| {
        let tx = tx.clone();
        async move {
            match encode_frame(&frame, CURRENT) {
                Ok(b) => tx.send(Bytes::from(b)).await.is_ok(),
                Err(_) => false,
            }
        }
    };
    let lookup = mgr.clone();
    let list = tokio::task::spawn_blocking(move || lookup.list(true))
        .await
        .unwrap_or_default();
    let Some(container) = container_of(&list, &req.task_id) else {
        let message = format!(
            "no container of task {} ({}.{}) on this node",
            req.task_id, req.service, req.slot
        );
        send(failed("not_found", message)).await;
        return;
    };
    let chunks = match req.kind {
        SessionKind::Logs(o) => mgr.logs(
            &container,
            LogOptions {
                follow: o.follow,
                tail: o.tail.map(|n| n.try_into().unwrap_or(usize::MAX)),
                since_ms: o.since_ms,
            },
        ),
        SessionKind::Exec(x) => mgr.exec(&container, x).await,
    };
    let mut chunks = match chunks {
        Ok(rx) => rx,
        Err(e) => {
            send(failed(e.code(), e.to_string())).await;
            return;
        }
    };
    loop {
        let chunk = tokio::select! {
            c = chunks.recv() => c,
            _ = tx.closed() => return,
        };
        let Some(chunk) = chunk else { return };
        // What is there already goes with it, in one piece of the body (a log read from its
        // start comes a line per chunk).
        let mut piece = Vec::new();
        let mut next = Some(chunk);
        while let Some(c) = next.take() {
            match encode_frame(&frame_of(c), CURRENT) {
                Ok(b) => piece.extend_from_slice(&b),
                Err(_) => return,
            }
            if piece.len() < PIECE {
                next = chunks.try_recv().ok();
            }
        }
        if tx.send(Bytes::from(piece)).await.is_err() {
            return;
        }
    }
}

/// Frames are sent in pieces of about this size when they come faster than they are sent.
const PIECE: usize = 64 * 1024;

fn failed(code: &str, message: String) -> SessionFrame {
    SessionFrame {
        error: Some(SessionError {
            code: code.into(),
            message,
        }),
        ..SessionFrame::default()
    }
}

/// The container that stands for `task` now: its running one, else its newest (a replica in a
/// restart loop has had several).
pub fn container_of(list: &[ContainerInfo], task: &str) -> Option<String> {
    let mine = || {
        list.iter().filter(|c| {
            c.spec
                .labels
                .get(super::container::TASK)
                .map(String::as_str)
                == Some(task)
        })
    };
    mine()
        .filter(|c| c.status == ContainerStatus::Running)
        .max_by(|a, b| a.created_at.cmp(&b.created_at))
        .or_else(|| mine().max_by(|a, b| a.created_at.cmp(&b.created_at)))
        .map(|c| c.id.clone())
}

/// A chunk of the manager's streams as a session frame.
pub fn frame_of(c: StreamChunk) -> SessionFrame {
    SessionFrame {
        stream: c.stream.as_deref().and_then(OutputStream::parse),
        data: c.data.map(String::into_bytes).unwrap_or_default(),
        time: c.time,
        exit_code: c.exit_code,
        error: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(id: &str, task: Option<&str>, status: ContainerStatus, created: &str) -> ContainerInfo {
        let mut spec = hoist_proto::CreateContainer {
            image: "busybox".into(),
            ..Default::default()
        };
        if let Some(t) = task {
            spec.labels
                .insert(super::super::container::TASK.into(), t.into());
        }
        ContainerInfo {
            id: id.into(),
            name: id.into(),
            image: "busybox".into(),
            image_id: String::new(),
            command: vec![],
            status,
            created_at: created.into(),
            started_at: None,
            pid: None,
            exit: None,
            ip_address: None,
            spec,
            mounts: vec![],
            healthcheck: None,
            shell: None,
        }
    }

    #[test]
    fn the_task_s_container_running_first_then_newest() {
        use ContainerStatus::{Exited, Running};
        let list = vec![
            info("old", Some("t1"), Exited, "2026-01-01T00:00:00Z"),
            info("run", Some("t1"), Running, "2026-01-01T00:00:01Z"),
            info("new", Some("t1"), Exited, "2026-01-01T00:00:02Z"),
            info("other", Some("t2"), Running, "2026-01-01T00:00:03Z"),
            info("mine", None, Running, "2026-01-01T00:00:04Z"),
        ];
        assert_eq!(container_of(&list, "t1").as_deref(), Some("run"));
        assert_eq!(container_of(&list[..1], "t1").as_deref(), Some("old"));
        assert_eq!(
            container_of(&[list[0].clone(), list[2].clone()], "t1").as_deref(),
            Some("new")
        );
        assert_eq!(container_of(&list, "t3"), None);
    }

    #[test]
    fn chunks_become_frames() {
        let f = frame_of(StreamChunk {
            stream: Some("stderr".into()),
            data: Some("oops\n".into()),
            time: Some("2026-01-01T00:00:00Z".into()),
            exit_code: None,
        });
        assert_eq!(f.stream, Some(OutputStream::Stderr));
        assert_eq!(f.data, b"oops\n");
        let end = frame_of(StreamChunk {
            stream: None,
            data: None,
            time: None,
            exit_code: Some(3),
        });
        assert_eq!(
            (end.stream, end.exit_code, end.data.len()),
            (None, Some(3), 0)
        );
    }
}
