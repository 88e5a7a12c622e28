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
    /// The last N records (of those `since_ms` lets through).
    pub tail: Option<usize>,
    /// Only records written at or after this time (ms since the Unix epoch).
    pub since_ms: Option<u64>,
}

/// Whether a record written at `time` (RFC 3339) passes `since_ms`; one whose time does not
/// parse is kept.
fn written_since(time: &str, since_ms: Option<u64>) -> bool {
    let Some(since) = since_ms else {
        return true;
    };
    match humantime::parse_rfc3339_weak(time) {
        Ok(t) => t
            .duration_since(std::time::UNIX_EPOCH)
            .is_ok_and(|d| d.as_millis() as u64 >= since),
        Err(_) => true,
    }
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
        // The request goes on the helper's stdin: an argument is at most 128 KiB.
        let mut child = tokio::process::Command::new(exe)
            .arg("__exec")
            .arg(c.dir.path())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| AgentError::internal("start exec helper", e))?;
        if let Some(mut stdin) = child.stdin.take() {
            use tokio::io::AsyncWriteExt;
            // A helper that failed before reading says why on stderr and in its exit code.
            tokio::spawn(async move {
                let _ = stdin.write_all(json.as_bytes()).await;
            });
        }
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
        first.retain(|r| written_since(&r.time, opts.since_ms));
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
                if !written_since(&rec.time, opts.since_ms) {
                    continue;
                }
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

#[cfg(test)]
mod tests {
    use super::written_since;

    #[test]
    fn since_compares_the_record_time() {
        let t = "2026-01-02T03:04:05.250000000Z";
        let ms = 1_767_323_045_250;
        assert!(written_since(t, None));
        assert!(written_since(t, Some(ms)));
        assert!(!written_since(t, Some(ms + 1)));
        assert!(
            written_since("garbled", Some(ms)),
            "kept when the time does not parse"
        );
    }
}
