//! The per-container supervisor ("shim"): holds one container for its whole life, independently of
//! the agent. It starts the container's first process, writes its output to the log file, answers
//! `kill` and `wait` on a unix socket, and records the exit status, so that containers outlive an
//! agent restart (even `kill -9`) and the agent re-attaches from the container's directory.
//!
//! Started as `hoist-agent __shim DIR` (forked by the agent's single-threaded supervisor forker,
//! [`super::forker`], or a re-exec of the agent binary, chosen before any runtime starts: either
//! way single-threaded when it forks) in a process group of its own, so that signals
//! meant for the agent's terminal or group never reach it. It reports one JSON [`StartReport`] line
//! on its stdout, then serves until the container exits. When the agent goes away the kernel
//! re-parents it to init, which reaps it.
//!
//! Socket protocol, one line each way: `kill SIGNUM` → `ok` | `error MSG`; `wait` → the
//! [`ExitInfo`] JSON once the container has exited.

use super::cgroup::CgroupHandle;
use super::init::{self, InitFds, EXIT_START_FAILED};
use super::logfile::{LogWriter, MAX_LINE};
use super::security::Privileges;
use super::{
    now_rfc3339, read_json, write_json_atomic, ContainerDir, RuntimeSpec, StartReport, Started,
};
use hoist_proto::ExitInfo;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

/// Entry point of `hoist-agent __shim DIR`. Never returns.
pub fn main(dir: &Path) -> ! {
    let cd = ContainerDir(dir.to_path_buf());
    let spec: RuntimeSpec = match read_json(&cd.spec()) {
        Ok(Some(s)) => s,
        Ok(None) => fail(format!("{}: missing", cd.spec().display())),
        Err(e) => fail(format!("read spec: {e}")),
    };
    let (pid, pidfd, pipes) = match start(&spec, &cd) {
        Ok(v) => v,
        Err((message, exit_code)) => report_and_exit(&StartReport::Failed { message, exit_code }),
    };
    let started = Started {
        shim_pid: std::process::id() as i32,
        pid: pid.as_raw(),
        started_at: now_rfc3339(),
    };
    if let Err(e) = write_json_atomic(&cd.started(), &started) {
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        let _ = waitpid(pid, None);
        fail(format!("record start: {e}"));
    }
    // The socket exists before the agent hears "started", so it can connect at once.
    let listener = match cd
        .socket_short()
        .and_then(|(_dir, path)| std::os::unix::net::UnixListener::bind(path))
    {
        Ok(l) => l,
        Err(e) => {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = waitpid(pid, None);
            fail(format!("bind {}: {e}", cd.socket().display()));
        }
    };
    report(&StartReport::Started(started));
    detach_stdio(&cd.shim_log());
    // What serving needs of the spec; the rest, and what starting allocated, is given back:
    // a supervisor lives as long as its container, and a host runs hundreds of them.
    let (cgroup, log_max_bytes) = what_serving_needs(spec);
    give_back_memory();
    // A supervisor watches a handful of descriptors (two pipes, a pidfd, its socket and its
    // clients): a small event buffer instead of tokio's 1,024 events (12 KiB).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_io_events_per_tick(32)
        .build();
    let code = match rt {
        Ok(rt) => rt.block_on(serve(
            cd,
            cgroup,
            log_max_bytes,
            pid,
            pidfd,
            pipes,
            listener,
        )),
        Err(_) => 1,
    };
    std::process::exit(code)
}

/// The parts of the spec the supervisor keeps after the start; the rest is dropped here.
fn what_serving_needs(spec: RuntimeSpec) -> (CgroupHandle, u64) {
    (spec.cgroup, spec.log_max_bytes)
}

/// Returns the heap's free pages to the kernel (glibc keeps them otherwise).
fn give_back_memory() {
    // SAFETY: malloc_trim only releases free memory of this process's allocator.
    unsafe { libc::malloc_trim(0) };
}

fn fail(message: String) -> ! {
    report_and_exit(&StartReport::Failed {
        message,
        exit_code: EXIT_START_FAILED,
    })
}

fn report(r: &StartReport) {
    let mut out = std::io::stdout().lock();
    let _ = serde_json::to_writer(&mut out, r);
    let _ = out.write_all(b"\n");
    let _ = out.flush();
}

fn report_and_exit(r: &StartReport) -> ! {
    report(r);
    std::process::exit(1)
}

/// Leaves the agent's pipe: stdin and stdout to /dev/null, stderr (panics, if any) to `log`.
fn detach_stdio(log: &Path) {
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        let err = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log);
        let err_fd = err.as_ref().map_or(null.as_raw_fd(), |f| f.as_raw_fd());
        // SAFETY: dup2 onto the standard descriptors of this process.
        unsafe {
            libc::dup2(null.as_raw_fd(), 0);
            libc::dup2(null.as_raw_fd(), 1);
            libc::dup2(err_fd, 2);
        }
    }
}

/// Read ends of the container's stdout and stderr.
struct OutputPipes {
    stdout: OwnedFd,
    stderr: OwnedFd,
}

fn pipe() -> Result<(OwnedFd, OwnedFd), (String, i32)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| (format!("pipe: {e}"), EXIT_START_FAILED))
}

/// Forks the container's first process into a new pid namespace and waits until it has exec'd.
fn start(
    spec: &RuntimeSpec,
    cd: &ContainerDir,
) -> Result<(Pid, OwnedFd, OutputPipes), (String, i32)> {
    let privileges = Privileges::new(spec.capabilities.as_deref(), spec.no_new_privileges)
        .map_err(|e| (e, EXIT_START_FAILED))?;
    let userns = match spec.userns {
        Some(range) => Some(super::userns::create(range).map_err(|e| (e, EXIT_START_FAILED))?),
        None => None,
    };
    let netns = match &spec.netns {
        Some(p) => Some(OwnedFd::from(std::fs::File::open(p).map_err(|e| {
            (
                format!("open network namespace {}: {e}", p.display()),
                EXIT_START_FAILED,
            )
        })?)),
        None => None,
    };
    let (go_r, go_w) = pipe()?;
    let (status_r, status_w) = pipe()?;
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    // The child becomes pid 1 of a new pid namespace; we stay outside to supervise it. On
    // cgroup v2 it is born in its cgroup.
    let flags = libc::CLONE_NEWPID as u64;
    let into = spec.cgroup.open_for_clone();
    let (forked, born_inside) =
        match super::fork::clone_fork_into(flags, into.as_ref().map(|f| f.as_fd())) {
            // A kernel before 5.7, or a cgroup that takes no process this way: fork, then move.
            Err(_) if into.is_some() => (super::fork::clone_fork(flags), false),
            forked => (forked, into.is_some()),
        };
    drop(into);
    match forked {
        Err(e) => Err((format!("clone: {e}"), EXIT_START_FAILED)),
        Ok(None) => {
            drop((go_w, status_r, out_r, err_r));
            init::run(
                spec,
                cd.path(),
                InitFds {
                    go: go_r,
                    status: status_w,
                    stdout: out_w,
                    stderr: err_w,
                    netns,
                    userns,
                },
                &privileges,
            )
        }
        Ok(Some((child, pidfd))) => {
            drop((go_r, status_w, out_w, err_w, netns, userns));
            let fail = |message: String| {
                let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
                let _ = waitpid(child, None);
                (message, EXIT_START_FAILED)
            };
            // On v1 the child moves itself, without the wait a move from here takes.
            if !born_inside && !spec.cgroup.joined_from_inside() {
                spec.cgroup
                    .add_process(child.as_raw())
                    .map_err(|e| fail(format!("join cgroup: {e}")))?;
            }
            // If the child already failed (and closed its end), its reason is in the status pipe.
            let _ = nix::unistd::write(&go_w, b"g");
            let mut msg = Vec::new();
            let mut f = std::fs::File::from(status_r);
            let _ = std::io::Read::read_to_end(&mut f, &mut msg);
            if msg.is_empty() {
                return Ok((
                    child,
                    pidfd,
                    OutputPipes {
                        stdout: out_r,
                        stderr: err_r,
                    },
                ));
            }
            let _ = waitpid(child, None);
            let text = String::from_utf8_lossy(&msg);
            let (code, message) = match text.split_once(':') {
                Some((c, m)) => (c.parse().unwrap_or(EXIT_START_FAILED), m.to_string()),
                None => (EXIT_START_FAILED, text.into_owned()),
            };
            Err((message, code))
        }
    }
}

/// The supervisor's life after the start: copy output to the log, answer the socket, reap.
async fn serve(
    cd: ContainerDir,
    cgroup: CgroupHandle,
    log_max: u64,
    pid: Pid,
    pidfd: OwnedFd,
    pipes: OutputPipes,
    listener: std::os::unix::net::UnixListener,
) -> i32 {
    use tokio::sync::{mpsc, watch};
    let (exit_tx, exit_rx) = watch::channel::<Option<ExitInfo>>(None);

    // Log writes are small appends to a local file: done inline, in order, by one task.
    let (log_tx, mut log_rx) = mpsc::channel::<(&'static str, Vec<u8>)>(256);
    let writer = {
        let path = cd.log();
        tokio::spawn(async move {
            let mut w = LogWriter::open(&path, log_max).ok();
            while let Some((stream, bytes)) = log_rx.recv().await {
                if let Some(w) = w.as_mut() {
                    let _ = w.write(stream, &bytes);
                }
            }
        })
    };
    let out = tokio::spawn(copy_lines(pipes.stdout, "stdout", log_tx.clone()));
    let err = tokio::spawn(copy_lines(pipes.stderr, "stderr", log_tx));

    let _ = listener.set_nonblocking(true);
    if let Ok(listener) = tokio::net::UnixListener::from_std(listener) {
        let exit_rx = exit_rx.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(handle_client(stream, pid, exit_rx.clone()));
            }
        });
    }

    let status = wait_exit(pid, pidfd).await;
    // Every process of the pid namespace is gone with its pid 1, so the pipes reach EOF promptly.
    let _ = out.await;
    let _ = err.await;
    let _ = writer.await;
    let (code, signal) = match status {
        WaitStatus::Exited(_, c) => (c, None),
        WaitStatus::Signaled(_, s, _) => (128 + s as i32, Some(s as i32)),
        _ => (255, None),
    };
    let info = ExitInfo {
        code,
        signal,
        oom_killed: cgroup.oom_killed(),
        finished_at: now_rfc3339(),
    };
    let _ = write_json_atomic(&cd.exit(), &info);
    let _ = exit_tx.send(Some(info));
    // Give connected waiters a moment to read the answer, then leave.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let _ = std::fs::remove_file(cd.socket());
    0
}

/// Waits for the child to exit without blocking the runtime: its pidfd becomes readable at exit.
/// (The supervisor has no blocking threads: it may not create any, see [`super::fork`].)
async fn wait_exit(pid: Pid, pidfd: OwnedFd) -> WaitStatus {
    // SAFETY: `pidfd` is an open pidfd that the AsyncFd owns until it is dropped below.
    if let Ok(afd) = unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(pidfd, tokio::io::Interest::READABLE)
    } {
        let _ = afd.readable().await;
    }
    loop {
        match waitpid(pid, None) {
            Ok(s @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..))) => return s,
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return WaitStatus::StillAlive,
        }
    }
}

/// How much of a pipe [`copy_lines`] reads at a time. Its buffer is never zeroed: pages of it
/// become resident only as output arrives, so a quiet container's supervisor keeps none, and a
/// chatty one at most this much per stream. (A zeroed 64 KiB buffer per stream was 128 KiB of
/// every supervisor's resident memory: bench/dense.sh.)
const READ_CHUNK: usize = 16 * 1024;

/// Copies one output pipe into the log, a line (or [`MAX_LINE`] bytes) per record.
async fn copy_lines(
    fd: OwnedFd,
    stream: &'static str,
    tx: tokio::sync::mpsc::Sender<(&'static str, Vec<u8>)>,
) {
    let Ok(rx) = tokio::net::unix::pipe::Receiver::from_owned_fd(fd) else {
        return;
    };
    // Allocated at the first output: a quiet container's supervisor holds no buffer at all (even
    // untouched, one costs the pages its allocator writes its bookkeeping into).
    let mut buf: Vec<u8> = Vec::new();
    let mut line: Vec<u8> = Vec::new();
    loop {
        if rx.readable().await.is_err() {
            break;
        }
        buf.clear();
        buf.reserve_exact(READ_CHUNK);
        // `try_read_buf` fills the spare capacity (READ_CHUNK bytes) without growing the vector.
        let n = match rx.try_read_buf(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(_) => break,
        };
        for &b in &buf[..n] {
            line.push(b);
            if (b == b'\n' || line.len() >= MAX_LINE)
                && tx.send((stream, std::mem::take(&mut line))).await.is_err()
            {
                return;
            }
        }
    }
    if !line.is_empty() {
        let _ = tx.send((stream, line)).await;
    }
}

async fn handle_client(
    stream: tokio::net::UnixStream,
    pid: Pid,
    mut exit: tokio::sync::watch::Receiver<Option<ExitInfo>>,
) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let (r, mut w) = stream.into_split();
    let mut lines = BufReader::new(r).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let reply = match line.split_whitespace().collect::<Vec<_>>().as_slice() {
            ["kill", sig] => match sig
                .parse::<i32>()
                .ok()
                .and_then(|s| nix::sys::signal::Signal::try_from(s).ok())
            {
                Some(sig) if exit.borrow().is_none() => match nix::sys::signal::kill(pid, sig) {
                    Ok(()) => "ok".to_string(),
                    Err(e) => format!("error {e}"),
                },
                Some(_) => "error container has exited".to_string(),
                None => format!("error unknown signal {sig}"),
            },
            ["wait"] => {
                let info = match exit.wait_for(Option::is_some).await {
                    Ok(v) => v.clone(),
                    Err(_) => return,
                };
                serde_json::to_string(&info).unwrap_or_default()
            }
            _ => format!("error unknown command {line:?}"),
        };
        if w.write_all(format!("{reply}\n").as_bytes()).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Output through a real pipe comes out as one record per line, a line longer than
    /// [`MAX_LINE`] (and than [`READ_CHUNK`]) in [`MAX_LINE`] pieces, and an unfinished last
    /// line as is.
    #[tokio::test]
    async fn copy_lines_splits_output_into_records() {
        // Both ends blocking, as the container's are; the copier's end is made non-blocking by
        // tokio.
        let (r, w) = pipe().unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::channel(256);
        let copy = tokio::spawn(copy_lines(r, "stdout", tx));
        let long = vec![b'x'; MAX_LINE * 2 + 10];
        let mut input = b"one\ntwo\n".to_vec();
        input.extend_from_slice(&long);
        input.extend_from_slice(b"\ntail");
        // More than a pipe holds, so the copier must keep reading while this writes.
        let writer = tokio::task::spawn_blocking(move || {
            std::fs::File::from(w).write_all(&input).unwrap();
        });
        writer.await.unwrap();
        copy.await.unwrap();
        let mut records = Vec::new();
        while let Some((stream, bytes)) = rx.recv().await {
            assert_eq!(stream, "stdout");
            records.push(bytes);
        }
        let mut want: Vec<Vec<u8>> = vec![b"one\n".to_vec(), b"two\n".to_vec()];
        want.push(vec![b'x'; MAX_LINE]);
        want.push(vec![b'x'; MAX_LINE]);
        let mut last = vec![b'x'; 10];
        last.push(b'\n');
        want.push(last);
        want.push(b"tail".to_vec());
        assert_eq!(records.len(), want.len());
        assert!(records == want, "records differ from the lines written");
    }
}
