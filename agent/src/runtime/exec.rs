//! `hoist exec`: runs another process inside a running container.
//!
//! Started as `hoist-agent __exec DIR` by the agent with the request's JSON on its stdin (an
//! argument is at most 128 KiB, and an exec may carry 100,000 variables) and its stdout and
//! stderr piped; the command's stdin is `/dev/null`.
//! The helper joins the container's cgroup and namespaces (cgroup, ipc, uts, net, pid, mount, and
//! last its user namespace if it has one, as its first process did), forks so the child lands in
//! the container's pid namespace, and the child drops privileges exactly as the container's first
//! process did before `execve`. The helper exits with the child's exit code.
//!
//! Before joining, the helper makes itself non-dumpable, so processes of the container cannot open
//! `/proc/PID/exe` of it and overwrite the agent binary (CVE-2019-5736).

use super::init::{exec_prepared, InitError, EXIT_START_FAILED};
use super::security::{self, Privileges};
use super::{read_json, userns, users, ContainerDir, RuntimeSpec, Started};
use hoist_proto::ExecRequest;
use nix::sched::CloneFlags;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult};
use std::os::fd::OwnedFd;
use std::path::Path;

/// Entry point of `hoist-agent __exec DIR` (the request on stdin). Never returns.
pub fn main(dir: &Path) -> ! {
    match read_request().and_then(|request| run(dir, &request)) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("hoist exec: {}", e.message);
            std::process::exit(e.code)
        }
    }
}

/// The request from stdin, which then becomes `/dev/null` for the command.
fn read_request() -> Result<String, InitError> {
    use std::io::Read;
    let mut request = String::new();
    std::io::stdin()
        .read_to_string(&mut request)
        .map_err(|e| start_err(format!("read the exec request: {e}")))?;
    let null =
        std::fs::File::open("/dev/null").map_err(|e| start_err(format!("open /dev/null: {e}")))?;
    nix::unistd::dup2_stdin(&null).map_err(|e| start_err(format!("stdin: {e}")))?;
    Ok(request)
}

fn start_err(m: impl std::fmt::Display) -> InitError {
    InitError {
        code: EXIT_START_FAILED,
        message: m.to_string(),
    }
}

fn run(dir: &Path, request: &str) -> Result<i32, InitError> {
    let req: ExecRequest =
        serde_json::from_str(request).map_err(|e| start_err(format!("bad exec request: {e}")))?;
    let cd = ContainerDir(dir.to_path_buf());
    let spec: RuntimeSpec = read_json(&cd.spec())
        .map_err(start_err)?
        .ok_or_else(|| start_err("container has no spec"))?;
    let started: Started = read_json(&cd.started())
        .map_err(start_err)?
        .ok_or_else(|| start_err("container is not running"))?;
    if cd.exit().exists() {
        return Err(start_err("container is not running"));
    }
    let pid = started.pid;

    // The user's ids come from the container's own view of /etc/passwd.
    let (uid, gid, groups) = match &req.user {
        None => (spec.uid, spec.gid, spec.additional_gids.clone()),
        Some(u) => {
            let root = format!("/proc/{pid}/root");
            let passwd = std::fs::read_to_string(format!("{root}/etc/passwd")).unwrap_or_default();
            let group = std::fs::read_to_string(format!("{root}/etc/group")).unwrap_or_default();
            let id = users::resolve(Some(u), &passwd, &group).map_err(start_err)?;
            (id.uid, id.gid, id.additional_gids)
        }
    };
    // The container's environment with the request's entries over it (linear in both).
    let env = hoist_common::parse::merge_env(spec.env.iter().chain(&req.env).cloned());
    let cwd = req.workdir.clone().unwrap_or_else(|| spec.cwd.clone());
    if let Some(range) = spec.userns {
        range.check_ids(uid, gid, &groups).map_err(start_err)?;
    }
    let privileges =
        Privileges::new(spec.capabilities.as_deref(), spec.no_new_privileges).map_err(start_err)?;

    // Open every namespace first: once we are in the container's mount namespace, the host's /proc is gone.
    let namespaces: Vec<(OwnedFd, CloneFlags)> = [
        ("cgroup", CloneFlags::CLONE_NEWCGROUP),
        ("ipc", CloneFlags::CLONE_NEWIPC),
        ("uts", CloneFlags::CLONE_NEWUTS),
        ("net", CloneFlags::CLONE_NEWNET),
        ("pid", CloneFlags::CLONE_NEWPID),
        ("mnt", CloneFlags::CLONE_NEWNS),
    ]
    .into_iter()
    .map(|(name, flag)| {
        std::fs::File::open(format!("/proc/{pid}/ns/{name}"))
            .map(|f| (OwnedFd::from(f), flag))
            .map_err(|e| start_err(format!("container is not running ({name} namespace: {e})")))
    })
    .collect::<Result<_, _>>()?;
    let user_ns = match spec.userns {
        Some(_) => Some(OwnedFd::from(
            std::fs::File::open(format!("/proc/{pid}/ns/user")).map_err(|e| {
                start_err(format!("container is not running (user namespace: {e})"))
            })?,
        )),
        None => None,
    };

    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    // Single-threaded here: the helper starts no thread before it forks the command.
    spec.cgroup
        .add_current_process()
        .map_err(|e| start_err(format!("join cgroup: {e}")))?;
    for (fd, flag) in &namespaces {
        nix::sched::setns(fd, *flag).map_err(|e| start_err(format!("join {flag:?}: {e}")))?;
    }
    drop(namespaces);
    if let Some(ns) = &user_ns {
        // Limits first: raising one takes the host's CAP_SYS_RESOURCE, which stays outside.
        security::set_rlimits(&spec.rlimits).map_err(start_err)?;
        userns::enter(ns).map_err(start_err)?;
    }

    // SAFETY: this helper is single-threaded; the child only runs the exec path.
    match unsafe { fork() }.map_err(|e| start_err(format!("fork: {e}")))? {
        ForkResult::Child => {
            let e = match exec_prepared(
                &req.cmd,
                &env,
                &cwd,
                (uid, gid, &groups),
                &spec.rlimits,
                &privileges,
            ) {
                Ok(never) => match never {},
                Err(e) => e,
            };
            eprintln!("hoist exec: {}", e.message);
            // SAFETY: _exit in the forked child.
            unsafe { libc::_exit(e.code) }
        }
        ForkResult::Parent { child } => loop {
            match waitpid(child, None) {
                Ok(WaitStatus::Exited(_, c)) => return Ok(c),
                Ok(WaitStatus::Signaled(_, s, _)) => return Ok(128 + s as i32),
                Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(start_err(format!("wait: {e}"))),
            }
        },
    }
}
