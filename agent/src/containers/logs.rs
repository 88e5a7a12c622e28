//! Streams of a container's output: `logs` (with `--tail` and `-f`), the output of an attached `run`,
//! and `exec`. Each is a channel of [`StreamChunk`]s that the API writes as newline-delimited JSON.

use super::{Container, Manager};
use crate::error::AgentError;
use crate::runtime::logfile::LogFollower;
use hoist_proto::{ExecRequest, StreamChunk};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// `hoist logs` options.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogOptions {
    pub follow: bool,
    pub tail: Option<usize>,
}

/// How often a follower looks for new output while the container runs. The exit wakes it at once.
const FOLLOW_INTERVAL: Duration = Duration::from_millis(25);

impl Manager {
    pub fn logs(
        &self,
        key: &str,
        opts: LogOptions,
    ) -> Result<mpsc::Receiver<StreamChunk>, AgentError> {
        let c = self.get(key)?;
        Ok(stream_logs(c, opts))
    }

    /// Runs `req` in the container; the last chunk carries the exit code.
    pub async fn exec(
        &self,
        key: &str,
        req: ExecRequest,
    ) -> Result<mpsc::Receiver<StreamChunk>, AgentError> {
        let c = self.get(key)?;
        if !c.state().is_running() {
            return Err(AgentError::Conflict(format!(
                "container {} is not running",
                c.record.name
            )));
        }
        if req.cmd.is_empty() {
            return Err(AgentError::Invalid("cmd: must not be empty".into()));
        }
        let exe = crate::runtime::selfexe::helper_exe();
        let json =
            serde_json::to_string(&req).map_err(|e| AgentError::internal("encode exec", e))?;
        let mut child = tokio::process::Command::new(exe)
            .arg("__exec")
            .arg(c.dir.path())
            .arg(json)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| AgentError::internal("start exec helper", e))?;
        let (tx, rx) = mpsc::channel(64);
        let out = child
            .stdout
            .take()
            .map(|s| tokio::spawn(pump(s, "stdout", tx.clone())));
        let err = child
            .stderr
            .take()
            .map(|s| tokio::spawn(pump(s, "stderr", tx.clone())));
        tokio::spawn(async move {
            for task in [out, err].into_iter().flatten() {
                let _ = task.await;
            }
            let code = match child.wait().await {
                Ok(s) => s
                    .code()
                    .or_else(|| std::os::unix::process::ExitStatusExt::signal(&s).map(|n| 128 + n))
                    .unwrap_or(255),
                Err(_) => 255,
            };
            let _ = tx
                .send(StreamChunk {
                    stream: None,
                    data: None,
                    time: None,
                    exit_code: Some(code),
                })
                .await;
        });
        Ok(rx)
    }
}

async fn pump(
    mut r: impl tokio::io::AsyncRead + Unpin,
    stream: &'static str,
    tx: mpsc::Sender<StreamChunk>,
) {
    use tokio::io::AsyncReadExt;
    let mut buf = vec![0u8; 32 * 1024];
    while let Ok(n) = r.read(&mut buf).await {
        if n == 0 {
            break;
        }
        let chunk = StreamChunk {
            stream: Some(stream.into()),
            data: Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
            time: None,
            exit_code: None,
        };
        if tx.send(chunk).await.is_err() {
            break;
        }
    }
}

/// The container's log from the start (or its last `tail` records), then, if `follow`, new records
/// until the container exits.
pub(super) fn stream_logs(c: Arc<Container>, opts: LogOptions) -> mpsc::Receiver<StreamChunk> {
    let (tx, rx) = mpsc::channel(256);
    tokio::spawn(async move {
        let Ok((mut first, mut follower)) = LogFollower::from_start(&c.dir.log()) else {
            return;
        };
        first.extend(follower.poll().unwrap_or_default());
        if let Some(n) = opts.tail {
            let skip = first.len().saturating_sub(n);
            first.drain(..skip);
        }
        for rec in first {
            if tx.send(rec.into()).await.is_err() {
                return;
            }
        }
        if !opts.follow {
            return;
        }
        let mut state = c.state.subscribe();
        loop {
            let exited =
                !state.borrow().is_running() && !matches!(*state.borrow(), super::State::Created);
            if !exited {
                tokio::select! {
                    _ = state.changed() => {}
                    _ = tokio::time::sleep(FOLLOW_INTERVAL) => {}
                    _ = tx.closed() => return,
                }
            }
            for rec in follower.poll().unwrap_or_default() {
                if tx.send(rec.into()).await.is_err() {
                    return;
                }
            }
            if exited {
                return;
            }
        }
    });
    rx
}
