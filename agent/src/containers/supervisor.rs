//! The container's supervisor as the manager sees it: start one for a prepared container
//! directory and hear whether the command was exec'd; ask a live one to `kill` or `wait`.
//!
//! [`Supervisor`] is the seam: [`Shim`] is the real one (`hoist-agent __shim DIR`, see
//! [`crate::runtime::shim`], forked by [`crate::runtime::forker`] or exec'd, spoken to over its
//! socket); tests pass a recording fake
//! (`crate::testing`) so that the manager runs without spawning anything.

use crate::runtime::forker::Forker;
use crate::runtime::{ContainerDir, StartReport, Started};
use futures::future::BoxFuture;
use hoist_proto::ExitInfo;
use std::io;
use std::os::fd::OwnedFd;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

/// Why a supervisor could not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    /// The container's command could not be started; carries Docker's exit code (125, 126, 127).
    #[error("{message}")]
    StartFailed { message: String, exit_code: i32 },
    /// The supervisor answered with an error (e.g. a signal it could not send).
    #[error("{0}")]
    Refused(String),
    /// The supervisor ended without reporting on the start.
    #[error("supervisor died while starting the container (said {0:?})")]
    Died(String),
    /// Starting or reaching the supervisor failed; when connecting fails, no supervisor is left.
    #[error("{context}: {source}")]
    Io {
        context: &'static str,
        #[source]
        source: io::Error,
    },
}

impl SupervisorError {
    fn io(context: &'static str) -> impl FnOnce(io::Error) -> Self {
        move |source| SupervisorError::Io { context, source }
    }
}

/// Starting and speaking to containers' supervisors.
pub trait Supervisor: Send + Sync + std::fmt::Debug {
    /// Starts the supervisor of the container prepared in `dir` (its `spec.json` written) and
    /// returns once the container's command has been exec'd, or why it was not.
    fn start<'a>(
        &'a self,
        dir: &'a ContainerDir,
    ) -> BoxFuture<'a, Result<Started, SupervisorError>>;
    /// Asks the supervisor to send `signal` to the container's first process.
    fn kill<'a>(
        &'a self,
        dir: &'a ContainerDir,
        signal: i32,
    ) -> BoxFuture<'a, Result<(), SupervisorError>>;
    /// Resolves once the container has exited, with how; errors at once if no supervisor answers.
    fn wait<'a>(
        &'a self,
        dir: &'a ContainerDir,
    ) -> BoxFuture<'a, Result<ExitInfo, SupervisorError>>;
}

/// How supervisors are started (`hoist-agent --supervisor-start`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum StartMode {
    /// Forked by the agent's supervisor forker ([`crate::runtime::forker`]): a supervisor
    /// shares the agent binary's relocated pages and starts without an exec. Falls back to
    /// `exec` when the forker cannot be started.
    #[default]
    Fork,
    /// Each supervisor a new `hoist-agent __shim DIR` process.
    Exec,
}

/// The real supervisor: `hoist-agent __shim DIR` in its own process group, one per container,
/// forked by the agent's forker or exec'd ([`StartMode`]).
#[derive(Debug, Default)]
pub struct Shim {
    mode: StartMode,
    /// The forker, once started; replaced when it is found gone.
    forker: std::sync::Mutex<Option<Forker>>,
}

impl Shim {
    pub fn new(mode: StartMode) -> Shim {
        Shim {
            mode,
            forker: Default::default(),
        }
    }

    /// The report socket of a supervisor the forker forked for `dir`; `None` when the forker
    /// cannot be had (the caller execs one instead). A forker found gone is started again once;
    /// one found stopped is killed and replaced first.
    fn forked(&self, dir: &ContainerDir) -> Option<OwnedFd> {
        if self.mode != StartMode::Fork {
            return None;
        }
        let mut forker = self.forker.lock().unwrap_or_else(|e| e.into_inner());
        // A stopped forker would queue the request and answer none: replaced, not waited for.
        if forker.as_ref().is_some_and(Forker::is_stopped) {
            if let Some(stopped) = forker.take() {
                tracing::warn!(
                    pid = stopped.pid(),
                    "the supervisor forker is stopped; replacing it"
                );
                stopped.kill();
            }
        }
        for _ in 0..2 {
            if forker.is_none() {
                match Forker::spawn(&crate::runtime::selfexe::helper_exe()) {
                    Ok(f) => {
                        tracing::debug!(pid = f.pid(), "started the supervisor forker");
                        *forker = Some(f);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot start the supervisor forker; exec'ing supervisors");
                        return None;
                    }
                }
            }
            match forker.as_ref().map(|f| f.fork_supervisor(dir.path())) {
                Some(Ok(report)) => return Some(report),
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "the supervisor forker is gone; starting another");
                    *forker = None;
                }
                None => return None,
            }
        }
        None
    }
}

impl Supervisor for Shim {
    fn start<'a>(
        &'a self,
        dir: &'a ContainerDir,
    ) -> BoxFuture<'a, Result<Started, SupervisorError>> {
        Box::pin(async move {
            match self.forked(dir) {
                Some(report) => read_report(forked_report(report)?).await,
                None => read_report(exec(dir)?).await,
            }
        })
    }

    fn kill<'a>(
        &'a self,
        dir: &'a ContainerDir,
        signal: i32,
    ) -> BoxFuture<'a, Result<(), SupervisorError>> {
        Box::pin(async move {
            let reply = request(dir, &format!("kill {signal}")).await?;
            match reply.strip_prefix("error ") {
                None => Ok(()),
                Some(e) => Err(SupervisorError::Refused(e.to_string())),
            }
        })
    }

    fn wait<'a>(
        &'a self,
        dir: &'a ContainerDir,
    ) -> BoxFuture<'a, Result<ExitInfo, SupervisorError>> {
        Box::pin(async move {
            let reply = request(dir, "wait").await?;
            serde_json::from_str(&reply)
                .map_err(|e| SupervisorError::io("read the exit")(io::Error::other(e)))
        })
    }
}

/// The agent's end of a forked supervisor's report socket, to read asynchronously.
fn forked_report(report: OwnedFd) -> Result<UnixStream, SupervisorError> {
    let std = std::os::unix::net::UnixStream::from(report);
    std.set_nonblocking(true)
        .and_then(|()| UnixStream::from_std(std))
        .map_err(SupervisorError::io("read supervisor report"))
}

/// Execs `hoist-agent __shim DIR`; returns the pipe its report comes on.
fn exec(dir: &ContainerDir) -> Result<tokio::process::ChildStdout, SupervisorError> {
    let exe = crate::runtime::selfexe::helper_exe();
    let mut child = tokio::process::Command::new(exe)
        .process_group(0)
        .arg("__shim")
        .arg(dir.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .map_err(SupervisorError::io("start supervisor"))?;
    let stdout = child.stdout.take().ok_or_else(|| {
        SupervisorError::io("start supervisor")(io::Error::other("no stdout to read its report"))
    })?;
    // The supervisor lives as long as the container; reap it whenever it exits.
    tokio::spawn(async move {
        let _ = child.wait().await;
    });
    Ok(stdout)
}

/// Reads a supervisor's one report line: the container's command was exec'd, or why not.
async fn read_report(
    report: impl tokio::io::AsyncRead + Unpin,
) -> Result<Started, SupervisorError> {
    let mut line = String::new();
    BufReader::new(report)
        .read_line(&mut line)
        .await
        .map_err(SupervisorError::io("read supervisor report"))?;
    match serde_json::from_str::<StartReport>(&line) {
        Ok(StartReport::Started(s)) => Ok(s),
        Ok(StartReport::Failed { message, exit_code }) => {
            Err(SupervisorError::StartFailed { message, exit_code })
        }
        Err(_) => Err(SupervisorError::Died(line.trim().to_string())),
    }
}

/// One request line to the supervisor's socket, one reply line back.
async fn request(dir: &ContainerDir, line: &str) -> Result<String, SupervisorError> {
    let talk = async {
        let (_dir, socket) = dir.socket_short()?;
        let stream = UnixStream::connect(socket).await?;
        let (r, mut w) = stream.into_split();
        w.write_all(format!("{line}\n").as_bytes()).await?;
        let mut reply = String::new();
        BufReader::new(r).read_line(&mut reply).await?;
        if reply.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "supervisor closed the connection",
            ));
        }
        Ok(reply.trim_end().to_string())
    };
    talk.await
        .map_err(SupervisorError::io("ask the supervisor"))
}
