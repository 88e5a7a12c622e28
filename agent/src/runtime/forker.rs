//! The supervisors' forker: one process per agent (`hoist-agent __shim-forker`) that forks each
//! container's supervisor, so that the agent does not exec a new one for every container.
//!
//! Why: the agent is a static-pie binary. Every process exec'd from it applies its ~43,000
//! relative relocations at startup, which copies the binary's whole RELRO segment (~750 KiB)
//! into memory of its own: three quarters of an exec'd supervisor's ~930 KiB
//! (`bench/README.md`, "Dense hosts"). A supervisor forked from a process that relocated once
//! shares those pages copy-on-write (read-only after relocation, they are never copied again),
//! and starts without an exec or a relocation pass.
//!
//! Protocol: the agent holds one end of a `SOCK_SEQPACKET` pair, the forker the other as its
//! stdin. A request is one message: the container directory's path, with one descriptor, the
//! supervisor's stdout, on which the agent reads its one report line as from an exec'd
//! supervisor's pipe. The forker forks; the child becomes what `hoist-agent __shim DIR` would be
//! (its own process group, SIGCHLD back to its default, stdin on /dev/null, its command line
//! rewritten so that `ps` and `pkill -f "__shim DIR"` see it as before) and runs the supervisor
//! ([`super::shim::main`]). The forker ignores SIGCHLD, so the kernel reaps its children, and
//! exits when the agent's end closes; supervisors outlive it as they outlive the agent.
//!
//! Fork safety: the forker is single-threaded (chosen in the agent's `main` before any runtime
//! starts, and it starts none), so its child may run anything.

use super::StartReport;
use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};
use std::io::{self, IoSlice, IoSliceMut, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;

/// The hidden argument that makes `hoist-agent` the forker.
pub const ARG: &str = "__shim-forker";
/// The forker's second argument: blanks that its children write their own command line over.
pub const PADDING: usize = 2048;
/// The longest request: a container directory's path.
const MAX_REQUEST: usize = 4096;

/// The agent's side: the forker process and the socket to it.
#[derive(Debug)]
pub struct Forker {
    control: OwnedFd,
    pid: u32,
    /// To signal it without a race with its pid's reuse; `None` if it could not be opened.
    pidfd: Option<OwnedFd>,
}

impl Forker {
    /// Starts `hoist-agent __shim-forker` from `exe` (the agent's sealed copy of itself) in a
    /// process group of its own. Its exit is reaped by a thread that waits for it.
    pub fn spawn(exe: &Path) -> io::Result<Forker> {
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )?;
        let mut child = std::process::Command::new(exe)
            .process_group(0)
            .arg(ARG)
            .arg(" ".repeat(PADDING))
            .stdin(std::process::Stdio::from(theirs))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .spawn()?;
        let pid = child.id();
        // SAFETY: pidfd_open of our own child, not reaped yet (its reaper starts below).
        let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
        // SAFETY: a new descriptor owned by nothing else.
        let pidfd = (raw >= 0).then(|| unsafe { OwnedFd::from_raw_fd(raw as RawFd) });
        std::thread::Builder::new()
            .name("shim-forker-reaper".into())
            .spawn(move || {
                let _ = child.wait();
            })?;
        Ok(Forker {
            control: ours,
            pid,
            pidfd,
        })
    }

    /// The forker's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Whether the forker is stopped (`SIGSTOP`, `SIGTSTP`): it would take requests into its
    /// queue and answer none, and each start would wait for it.
    pub fn is_stopped(&self) -> bool {
        std::fs::read_to_string(format!("/proc/{}/stat", self.pid))
            .is_ok_and(|stat| process_state(&stat) == Some('T'))
    }

    /// Kills the forker (stopped or not), through its pidfd, so never another process that
    /// took its pid after it was reaped. Requests in its queue die with it: the report sockets
    /// they carried close, and their starts fail instead of waiting.
    pub fn kill(&self) {
        if let Some(pidfd) = &self.pidfd {
            // SAFETY: pidfd_send_signal with a pidfd we own and no siginfo.
            unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    pidfd.as_raw_fd(),
                    libc::SIGKILL,
                    std::ptr::null::<libc::siginfo_t>(),
                    0,
                )
            };
        }
    }

    /// Asks for a supervisor of the container in `dir`; returns the socket its report comes on.
    /// An error means the forker did not take the request (it is gone): nothing was started.
    pub fn fork_supervisor(&self, dir: &Path) -> io::Result<OwnedFd> {
        let path = dir.as_os_str().as_bytes();
        if path.len() > MAX_REQUEST {
            return Err(io::Error::other(format!(
                "container directory path of {} bytes is longer than {MAX_REQUEST}",
                path.len()
            )));
        }
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_CLOEXEC,
        )?;
        let fds = [theirs.as_raw_fd()];
        // Never waits: a forker whose queue is full (stopped, or stuck) counts as gone, and the
        // caller holds a lock while it asks.
        sendmsg::<()>(
            self.control.as_raw_fd(),
            &[IoSlice::new(path)],
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::MSG_NOSIGNAL | MsgFlags::MSG_DONTWAIT,
            None,
        )?;
        Ok(ours)
    }
}

/// Entry point of `hoist-agent __shim-forker PADDING`, its control socket on stdin. Never
/// returns.
pub fn main() -> ! {
    // SAFETY: setting a signal's disposition to "ignore" in a single-threaded process.
    unsafe { libc::signal(libc::SIGCHLD, libc::SIG_IGN) };
    // Where this process's arguments are: the same in every child, so looked up once.
    let arguments = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| argument_area(&stat));
    let mut buf = vec![0u8; MAX_REQUEST + 1];
    loop {
        let (len, report) = match receive(0, &mut buf) {
            Ok(Some(request)) => request,
            // The agent's end closed: the agent is gone or replaced it.
            Ok(None) => std::process::exit(0),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                eprintln!("hoist-agent {ARG}: read a request: {e}");
                std::process::exit(1)
            }
        };
        let Some(report) = report else {
            eprintln!("hoist-agent {ARG}: a request came without its report socket");
            continue;
        };
        if len > MAX_REQUEST {
            refuse(report, "the container directory's path is too long");
            continue;
        }
        let dir = Path::new(std::ffi::OsStr::from_bytes(&buf[..len])).to_path_buf();
        // SAFETY: fork in a single-threaded process (see the module doc).
        match unsafe { libc::fork() } {
            0 => become_supervisor(&dir, report, arguments),
            -1 => refuse(
                report,
                &format!("fork the supervisor: {}", io::Error::last_os_error()),
            ),
            _ => drop(report),
        }
    }
}

/// One request from `fd`: the bytes read into `buf` and the descriptor that came with them;
/// `None` at the end of the stream.
fn receive(fd: RawFd, buf: &mut [u8]) -> io::Result<Option<(usize, Option<OwnedFd>)>> {
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let mut iov = [IoSliceMut::new(buf)];
    let msg = recvmsg::<()>(fd, &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)?;
    let mut report = None;
    for cmsg in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            for raw in fds {
                // SAFETY: a descriptor just received, owned by nothing else in this process.
                let fd = unsafe { OwnedFd::from_raw_fd(raw) };
                report.get_or_insert(fd);
            }
        }
    }
    let truncated = msg.flags.contains(MsgFlags::MSG_TRUNC);
    let len = msg.bytes;
    if len == 0 && report.is_none() {
        return Ok(None);
    }
    Ok(Some((if truncated { usize::MAX } else { len }, report)))
}

/// The fields of a `/proc/PID/stat` line from the third (the state) on: past the command name,
/// which is in parentheses and may itself hold spaces and parentheses.
fn stat_fields(stat: &str) -> Option<std::str::Split<'_, char>> {
    Some(stat.get(stat.rfind(')')? + 2..)?.split(' '))
}

/// The state letter of `/proc/PID/stat` (`R`, `S`, `T`...).
fn process_state(stat: &str) -> Option<char> {
    stat_fields(stat)?.next()?.chars().next()
}

/// Answers a request that started nothing: a failed start report on its socket.
fn refuse(report: OwnedFd, why: &str) {
    let line = serde_json::to_string(&StartReport::Failed {
        message: why.to_string(),
        exit_code: super::init::EXIT_START_FAILED,
    })
    .unwrap_or_default();
    let mut out = std::fs::File::from(report);
    let _ = writeln!(out, "{line}");
}

/// In the forked child: takes the place an exec'd `hoist-agent __shim DIR` would have, then runs
/// the supervisor. Never returns.
fn become_supervisor(dir: &Path, report: OwnedFd, arguments: Option<(usize, usize)>) -> ! {
    // SAFETY: plain syscalls on this process's own dispositions and descriptors.
    unsafe {
        // The supervisor waits for its container's first process.
        libc::signal(libc::SIGCHLD, libc::SIG_DFL);
        libc::setpgid(0, 0);
        libc::dup2(report.as_raw_fd(), 1);
    }
    drop(report);
    if let Ok(null) = std::fs::File::open("/dev/null") {
        // SAFETY: replaces stdin (the forker's control socket) with /dev/null.
        unsafe { libc::dup2(null.as_raw_fd(), 0) };
    }
    if let Some(area) = arguments {
        name_as_shim(dir, area);
    }
    super::shim::main(dir)
}

/// Makes this process's command line read `ARGV0 __shim DIR`, as an exec'd supervisor's does,
/// so that operators and scripts find it the same way: written over the forker's own arguments
/// in place, which [`PADDING`] made long enough (moving them elsewhere with `PR_SET_MM` would
/// need CAP_SYS_RESOURCE, which a container host's root may not have). `(start, len)` is the
/// argument area ([`argument_area`]). Left as it is if the path does not fit.
fn name_as_shim(dir: &Path, (start, len): (usize, usize)) {
    let argv0 = std::env::args_os().next().unwrap_or_default();
    let line = command_line(argv0.as_bytes(), dir);
    if line.len() > len {
        return;
    }
    // SAFETY: `start..start + len` is this process's argument strings, as the kernel reports
    // them: writable memory on the initial stack that nothing else uses once `main` has read
    // its arguments (this process is single-threaded).
    unsafe {
        let area = start as *mut u8;
        std::ptr::copy_nonoverlapping(line.as_ptr(), area, line.len());
        std::ptr::write_bytes(area.add(line.len()), 0, len - line.len());
    }
}

/// Where the argument strings are, from `/proc/self/stat`: its fields 48 and 49
/// (`arg_start`, `arg_end`), counted past the parenthesized command name.
fn argument_area(stat: &str) -> Option<(usize, usize)> {
    let fields: Vec<&str> = stat_fields(stat)?.collect();
    // `fields` begins at field 3.
    let start: usize = fields.get(48 - 3)?.parse().ok()?;
    let end: usize = fields.get(49 - 3)?.parse().ok()?;
    (end > start).then_some((start, end - start))
}

/// `ARGV0 __shim DIR` as the kernel lays out a command line: each argument ends with a NUL.
fn command_line(argv0: &[u8], dir: &Path) -> Vec<u8> {
    let mut line = Vec::with_capacity(argv0.len() + dir.as_os_str().len() + 10);
    for arg in [argv0, b"__shim", dir.as_os_str().as_bytes()] {
        line.extend_from_slice(arg);
        line.push(0);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_an_exec_d_supervisor_s() {
        assert_eq!(
            command_line(
                b"/proc/self/fd/3",
                Path::new("/var/lib/hoist/containers/c1")
            ),
            b"/proc/self/fd/3\0__shim\0/var/lib/hoist/containers/c1\0"
        );
    }

    #[test]
    fn the_state_is_read_past_the_command_name() {
        assert_eq!(process_state("42 (hoist-agent) S 1 42 42 0"), Some('S'));
        assert_eq!(process_state("42 (a) T (b) R 1 42) T 1 42"), Some('T'));
        assert_eq!(process_state("42 (x"), None);
        let own = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        assert_eq!(
            process_state(&own),
            Some('R'),
            "this thread, running: {own}"
        );
    }

    #[test]
    fn the_argument_area_is_read_past_the_command_name() {
        // A command name with a space and a parenthesis, then fields 3 to 52.
        let fields: Vec<String> = (3..=52).map(|f| f.to_string()).collect();
        let stat = format!("42 (a b) c) {}", fields.join(" "));
        assert_eq!(argument_area(&stat), Some((48, 1)));
        let mine = std::fs::read_to_string("/proc/self/stat").unwrap();
        let (start, len) = argument_area(&mine).expect("this process's arguments");
        let total: usize = std::env::args_os().map(|a| a.len() + 1).sum();
        assert!(start > 0 && len == total, "{len} vs {total}");
    }

    #[test]
    fn a_request_carries_the_path_and_the_report_socket() {
        let (agent, forker) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .unwrap();
        let f = Forker {
            control: agent,
            pid: 0,
            pidfd: None,
        };
        let ours = f
            .fork_supervisor(Path::new("/data/containers/abc"))
            .unwrap();
        let mut buf = vec![0u8; MAX_REQUEST + 1];
        let (len, report) = receive(forker.as_raw_fd(), &mut buf).unwrap().unwrap();
        assert_eq!(&buf[..len], b"/data/containers/abc");
        // What the forker writes on the socket it got, the agent reads on its end.
        refuse(report.expect("a report socket"), "no fork today");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(std::fs::File::from(ours)),
            &mut line,
        )
        .unwrap();
        match serde_json::from_str::<StartReport>(&line).unwrap() {
            StartReport::Failed { message, exit_code } => {
                assert_eq!(message, "no fork today");
                assert_eq!(exit_code, super::super::init::EXIT_START_FAILED);
            }
            other => panic!("{other:?}"),
        }
        // The agent's end closed: the forker's next read is the end.
        drop(f);
        assert!(receive(forker.as_raw_fd(), &mut buf).unwrap().is_none());
    }
}
