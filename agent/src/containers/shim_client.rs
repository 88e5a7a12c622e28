//! Talking to a container's supervisor over its socket (`kill`, `wait`), and starting one.

use crate::error::AgentError;
use crate::runtime::{ContainerDir, StartReport, Started};
use hoist_proto::ExitInfo;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

/// Starts `hoist-agent __shim DIR` and returns once the container has exec'd (or failed to).
pub async fn start(dir: &ContainerDir) -> Result<Started, AgentError> {
    let exe = crate::runtime::selfexe::helper_exe();
    let mut child = tokio::process::Command::new(exe)
        .process_group(0)
        .arg("__shim")
        .arg(dir.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .map_err(|e| AgentError::internal("start supervisor", e))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| AgentError::Internal("supervisor has no stdout".into()))?;
    // The supervisor lives as long as the container; reap it whenever it exits.
    tokio::spawn(async move {
        let _ = child.wait().await;
    });
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .await
        .map_err(|e| AgentError::internal("read supervisor report", e))?;
    match serde_json::from_str::<StartReport>(&line) {
        Ok(StartReport::Started(s)) => Ok(s),
        Ok(StartReport::Failed { message, exit_code }) => {
            Err(AgentError::StartFailed { message, exit_code })
        }
        Err(_) => Err(AgentError::Internal(format!(
            "supervisor died while starting the container (said {:?})",
            line.trim()
        ))),
    }
}

async fn request(dir: &ContainerDir, line: &str) -> std::io::Result<String> {
    let (_dir, socket) = dir.socket_short()?;
    let stream = UnixStream::connect(socket).await?;
    let (r, mut w) = stream.into_split();
    w.write_all(format!("{line}\n").as_bytes()).await?;
    let mut reply = String::new();
    BufReader::new(r).read_line(&mut reply).await?;
    if reply.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "supervisor closed the connection",
        ));
    }
    Ok(reply.trim_end().to_string())
}

/// Asks the supervisor to signal the container's first process.
pub async fn kill(dir: &ContainerDir, signal: i32) -> std::io::Result<()> {
    let reply = request(dir, &format!("kill {signal}")).await?;
    match reply.strip_prefix("error ") {
        None => Ok(()),
        Some(e) => Err(std::io::Error::other(e.to_string())),
    }
}

/// Blocks until the container exits and returns how. Errors if the supervisor is gone.
pub async fn wait(dir: &ContainerDir) -> std::io::Result<ExitInfo> {
    let reply = request(dir, "wait").await?;
    serde_json::from_str(&reply).map_err(std::io::Error::other)
}
