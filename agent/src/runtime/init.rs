//! The container's first process, from fork to `execve`: join the network namespace, unshare the
//! rest, build the filesystem view, drop privileges and exec the command.
//!
//! Runs in a child forked by the single-threaded supervisor, as pid 1 of a new pid namespace. On any
//! failure it writes `CODE:message` to the status pipe and exits; on success the pipe (close-on-exec)
//! closes at `execve`, which is how the supervisor knows the exact moment the command started.

use super::security::{self, Privileges};
use super::{mounts, userns, RuntimeSpec};
use nix::sched::CloneFlags;
use std::ffi::CString;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

/// Docker's exit codes for a failed start.
pub const EXIT_START_FAILED: i32 = 125;
pub const EXIT_NOT_EXECUTABLE: i32 = 126;
pub const EXIT_NOT_FOUND: i32 = 127;

/// Failure of a step before `execve`: an exit code and a message for the operator.
#[derive(Debug)]
pub struct InitError {
    pub code: i32,
    pub message: String,
}

impl InitError {
    fn start(message: impl std::fmt::Display) -> Self {
        Self {
            code: EXIT_START_FAILED,
            message: message.to_string(),
        }
    }
}

/// File descriptors the child receives from the supervisor.
#[derive(Debug)]
pub struct InitFds {
    /// Readable once the child is in its cgroup: at once when it was born there (v2) or moves
    /// itself (v1); after the supervisor moved it otherwise (a v2 kernel before 5.7).
    pub go: OwnedFd,
    /// Close-on-exec; receives `CODE:message` on failure.
    pub status: OwnedFd,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
    /// The network namespace to join, opened before the fork.
    pub netns: Option<OwnedFd>,
    /// The user namespace to enter last (`--userns`), made by the supervisor.
    pub userns: Option<OwnedFd>,
}

/// Runs in the forked child; never returns.
pub fn run(spec: &RuntimeSpec, dir: &Path, fds: InitFds, privileges: &Privileges) -> ! {
    let err = match setup(spec, dir, &fds, privileges) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    let mut status = std::fs::File::from(fds.status);
    let _ = write!(status, "{}:{}", err.code, err.message);
    // SAFETY: _exit is async-signal-safe and skips the parent's atexit handlers.
    unsafe { libc::_exit(err.code) }
}

fn setup(
    spec: &RuntimeSpec,
    dir: &Path,
    fds: &InitFds,
    privileges: &Privileges,
) -> Result<std::convert::Infallible, InitError> {
    // Keep other container processes from opening /proc/1/exe (the agent binary) while we set up.
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    nix::sys::stat::umask(nix::sys::stat::Mode::empty());
    // First, so that what the setup allocates is the container's: on cgroup v1 we move
    // ourselves in (no lock that waits, see `add_current_process`); on v2 we were born in it
    // (`CLONE_INTO_CGROUP`), or the supervisor moves us while we set up.
    if spec.cgroup.joined_from_inside() {
        spec.cgroup
            .add_current_process()
            .map_err(|e| InitError::start(format!("join cgroup: {e}")))?;
    }

    // A network namespace of its own, joined or made here (else the host's).
    let private_netns = match &fds.netns {
        Some(netns) => nix::sched::setns(netns, CloneFlags::CLONE_NEWNET)
            .map_err(|e| InitError::start(format!("join network namespace: {e}")))
            .map(|()| true)?,
        None if spec.own_netns => {
            nix::sched::unshare(CloneFlags::CLONE_NEWNET)
                .map_err(|e| InitError::start(format!("unshare network namespace: {e}")))?;
            crate::network::set_loopback_up()
                .map_err(|e| InitError::start(format!("bring up lo: {e}")))?;
            true
        }
        None => false,
    };
    if private_netns && spec.userns.is_some() {
        userns::open_network_to_root().map_err(InitError::start)?;
    }
    nix::sched::unshare(
        CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWUTS | CloneFlags::CLONE_NEWIPC,
    )
    .map_err(|e| InitError::start(format!("unshare namespaces: {e}")))?;

    let cd = super::ContainerDir(dir.to_path_buf());
    mounts::make_private().map_err(InitError::start)?;
    let layers = match &fds.userns {
        Some(ns) => idmapped_layers(&spec.layers, &cd.run().join("layers"), ns)?,
        None => spec.layers.clone(),
    };
    mounts::mount_overlay(
        &layers,
        &cd.upper(),
        &cd.work(),
        &cd.rootfs(),
        spec.volatile_rootfs,
    )
    .map_err(InitError::start)?;
    let root: OwnedFd = std::fs::File::open(cd.rootfs())
        .map_err(|e| InitError::start(format!("open rootfs: {e}")))?
        .into();
    mounts::mount_kernel_filesystems(&root, spec.userns).map_err(InitError::start)?;
    for step in super::mount_order(&spec.binds, &spec.tmpfs) {
        match step {
            super::MountStep::Bind(bind) => {
                mounts::bind_into(&root, &bind.source, &bind.target, bind.read_only)
            }
            super::MountStep::Tmpfs(t) => mounts::tmpfs_into(&root, t, spec.userns),
        }
        .map_err(InitError::start)?;
    }
    // Secrets and configs last: on top of any tmpfs or volume at `/run`, and their targets'
    // links made wherever those paths lead now.
    if let Some(files) = &spec.files {
        super::secret_files::mount_into(&root, files)
            .map_err(|e| InitError::start(format!("secrets and configs: {e}")))?;
    }
    mounts::open_in_root(&root, &spec.cwd, mounts::Create::Dir)
        .map_err(|e| InitError::start(format!("working directory {}: {e}", spec.cwd)))?;

    // Where the supervisor moves us into the container's cgroup (v2 without
    // `CLONE_INTO_CGROUP`), it does so while we build the mounts above (the move may wait for an
    // RCU grace period, milliseconds). Wait for it to finish before the cgroup namespace is
    // made, so that it roots at the container's cgroup, and before any of the container's own
    // code runs. Otherwise we are in already and this does not wait.
    let mut byte = [0u8; 1];
    nix::unistd::read(&fds.go, &mut byte)
        .map_err(|e| InitError::start(format!("sync with supervisor: {e}")))?;
    nix::sched::unshare(CloneFlags::CLONE_NEWCGROUP)
        .map_err(|e| InitError::start(format!("unshare cgroup namespace: {e}")))?;
    mounts::mount_cgroups(&root, &spec.cgroup).map_err(InitError::start)?;
    mounts::pivot_root(&root).map_err(InitError::start)?;
    drop(root);
    mounts::protect_kernel_paths().map_err(InitError::start)?;
    if spec.read_only {
        mounts::remount_root_readonly().map_err(InitError::start)?;
    }
    nix::unistd::sethostname(&spec.hostname)
        .map_err(|e| InitError::start(format!("sethostname: {e}")))?;

    // The process's stdio: nothing to read, output to the supervisor's pipes.
    let null = std::fs::File::open("/dev/null")
        .map_err(|e| InitError::start(format!("open /dev/null: {e}")))?;
    dup_to(null.as_raw_fd(), 0)?;
    dup_to(fds.stdout.as_raw_fd(), 1)?;
    dup_to(fds.stderr.as_raw_fd(), 2)?;

    if let Some(ns) = &fds.userns {
        // Limits first: raising one takes the host's CAP_SYS_RESOURCE, which stays outside.
        security::set_rlimits(&spec.rlimits).map_err(InitError::start)?;
        userns::enter(ns).map_err(InitError::start)?;
    }
    if spec.init {
        // Pid 1 stays ours: it forwards signals and reaps; the command runs as its child.
        if let Some(child) = super::reaper::fork_command()? {
            super::reaper::run(child, spec, privileges);
        }
    }
    exec_prepared(
        &spec.args,
        &spec.env,
        &spec.cwd,
        (spec.uid, spec.gid, &spec.additional_gids),
        &spec.rlimits,
        privileges,
    )
}

/// Mounts each of `layers` idmapped with the user namespace `ns` on `under/N` (in this
/// process's mount namespace only), and answers those paths, lowest first.
fn idmapped_layers(
    layers: &[std::path::PathBuf],
    under: &Path,
    ns: &OwnedFd,
) -> Result<Vec<std::path::PathBuf>, InitError> {
    layers
        .iter()
        .enumerate()
        .map(|(i, layer)| {
            let target = under.join(i.to_string());
            std::fs::create_dir_all(&target)
                .map_err(|e| InitError::start(format!("create {}: {e}", target.display())))?;
            userns::idmapped_bind(layer, &target, ns).map_err(InitError::start)?;
            Ok(target)
        })
        .collect()
}

fn dup_to(fd: i32, target: i32) -> Result<(), InitError> {
    // SAFETY: dup2 on descriptors this process owns.
    if unsafe { libc::dup2(fd, target) } < 0 {
        return Err(InitError::start(format!(
            "dup2 to fd {target}: {}",
            std::io::Error::last_os_error()
        )));
    }
    Ok(())
}

/// The last steps shared by a container's first process and `exec`'d processes: rlimits, the
/// privileges ([`Privileges::apply`]: capabilities, `no_new_privs`, seccomp, user), working
/// directory, fd hygiene, `execve`.
pub fn exec_prepared(
    args: &[String],
    env: &[String],
    cwd: &str,
    (uid, gid, groups): (u32, u32, &[u32]),
    rlimits: &[security::Rlimit],
    privileges: &Privileges,
) -> Result<std::convert::Infallible, InitError> {
    security::set_rlimits(rlimits).map_err(InitError::start)?;
    privileges
        .apply(uid, gid, groups)
        .map_err(InitError::start)?;
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));

    nix::unistd::chdir(cwd)
        .map_err(|e| InitError::start(format!("chdir to working directory {cwd}: {e}")))?;
    // A working directory that resolves outside the root (a leaked fd, CVE-2024-21626) has no path.
    match nix::unistd::getcwd() {
        Ok(p) if p.is_absolute() && !p.to_string_lossy().starts_with("(unreachable)") => {}
        _ => {
            return Err(InitError::start(format!(
                "working directory {cwd} is outside the container"
            )))
        }
    }
    // Only 0, 1, 2 survive the exec (the status pipe is among those closed by it).
    // SAFETY: close_range with the CLOEXEC flag only marks descriptors.
    if unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    } != 0
    {
        return Err(InitError::start(format!(
            "close_range: {}",
            std::io::Error::last_os_error()
        )));
    }

    let program = find_program(args.first().map(String::as_str).unwrap_or(""), env)?;
    let argv = cstrings(args)?;
    let envp = cstrings(env)?;
    let e = nix::unistd::execve(&program, &argv, &envp).unwrap_err();
    let code = if e == nix::errno::Errno::ENOENT {
        EXIT_NOT_FOUND
    } else {
        EXIT_NOT_EXECUTABLE
    };
    Err(InitError {
        code,
        message: format!("exec {:?}: {e}", args[0]),
    })
}

fn cstrings(v: &[String]) -> Result<Vec<CString>, InitError> {
    v.iter()
        .map(|s| {
            CString::new(s.as_str())
                .map_err(|_| InitError::start(format!("{s:?} contains a NUL byte")))
        })
        .collect()
}

/// Resolves the command like `execvp`, with the container's `PATH`.
fn find_program(cmd: &str, env: &[String]) -> Result<CString, InitError> {
    use nix::unistd::{access, AccessFlags};
    if cmd.is_empty() {
        return Err(InitError::start(
            "no command: the image has no CMD or ENTRYPOINT and none was given",
        ));
    }
    let candidates: Vec<String> = if cmd.contains('/') {
        vec![cmd.to_string()]
    } else {
        let path = env
            .iter()
            .find_map(|e| e.strip_prefix("PATH="))
            .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        path.split(':')
            .filter(|d| !d.is_empty())
            .map(|d| format!("{d}/{cmd}"))
            .collect()
    };
    let mut found_not_exec = None;
    for c in &candidates {
        match std::fs::metadata(c) {
            Ok(m) if m.is_file() => {
                if access(c.as_str(), AccessFlags::X_OK).is_ok() {
                    return CString::new(c.as_str()).map_err(|_| InitError::start("NUL in path"));
                }
                found_not_exec.get_or_insert(c.clone());
            }
            Ok(_) => {
                found_not_exec.get_or_insert(c.clone());
            }
            Err(_) => {}
        }
    }
    match found_not_exec {
        Some(p) => Err(InitError {
            code: EXIT_NOT_EXECUTABLE,
            message: format!("exec: {p:?}: permission denied (not an executable file)"),
        }),
        None if cmd.contains('/') => Err(InitError {
            code: EXIT_NOT_FOUND,
            message: format!("exec: {cmd:?}: no such file or directory"),
        }),
        None => Err(InitError {
            code: EXIT_NOT_FOUND,
            message: format!("exec: {cmd:?}: executable file not found in $PATH"),
        }),
    }
}
