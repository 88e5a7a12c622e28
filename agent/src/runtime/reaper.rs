//! `--init`: a minimal pid 1 in the container, like tini or Docker's `--init`. It forwards the
//! signals a container is stopped or controlled with to the command, reaps every orphan that the
//! kernel re-parents to it (so zombies never pile up under a command that does not wait for its
//! children), and exits with the command's status.

use super::init::{InitError, EXIT_START_FAILED};
use super::security::Privileges;
use super::RuntimeSpec;
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

const FORWARDED: [Signal; 8] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
    Signal::SIGCONT,
];

fn signals() -> SigSet {
    let mut set = SigSet::empty();
    for s in FORWARDED {
        set.add(s);
    }
    set.add(Signal::SIGCHLD);
    set
}

/// Forks the command's process. Returns `Some(pid)` in pid 1, `None` in the child (which goes on to
/// `execve`). Signals are blocked first so none is lost between the fork and the wait loop.
pub fn fork_command() -> Result<Option<Pid>, InitError> {
    let set = signals();
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)
        .map_err(|e| start_err(format!("block signals: {e}")))?;
    // SAFETY: pid 1 is single-threaded here (a child of the single-threaded supervisor).
    match unsafe { nix::unistd::fork() } {
        Err(e) => Err(start_err(format!("fork: {e}"))),
        Ok(nix::unistd::ForkResult::Parent { child }) => Ok(Some(child)),
        Ok(nix::unistd::ForkResult::Child) => {
            nix::sys::signal::sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&set), None)
                .map_err(|e| start_err(format!("unblock signals: {e}")))?;
            Ok(None)
        }
    }
}

fn start_err(m: String) -> InitError {
    InitError {
        code: EXIT_START_FAILED,
        message: m,
    }
}

/// Pid 1's life: drop to the container's privileges, then forward and reap until the command exits.
pub fn run(child: Pid, spec: &RuntimeSpec, privileges: &Privileges) -> ! {
    // Keep only stdio. Among the rest is the status pipe's write end, which must close in pid 1
    // too or the supervisor never sees the command's `execve`. Nothing here is used again, and
    // this function never returns to code that owns those descriptors.
    // SAFETY: close_range on this process's own descriptor table.
    unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
    let _ = privileges.apply(spec.uid, spec.gid, &spec.additional_gids);
    let set = signals();
    loop {
        let Ok(sig) = set.wait() else { continue };
        if sig != Signal::SIGCHLD {
            let _ = nix::sys::signal::kill(child, sig);
            continue;
        }
        // Reap everything that has exited; leave when the command itself has.
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) if pid == child => std::process::exit(code),
                Ok(WaitStatus::Signaled(pid, sig, _)) if pid == child => {
                    std::process::exit(128 + sig as i32)
                }
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }
}

#[cfg(test)]
mod forwarded_tests {
    /// The controllers refuse an `on_update` signal the init would not forward, from the same
    /// list: it must be this one.
    #[test]
    fn the_controllers_know_what_the_init_forwards() {
        let ours: Vec<i32> = super::FORWARDED.iter().map(|s| *s as i32).collect();
        assert_eq!(ours, hoist_proto::files::INIT_FORWARDS);
    }
}
