//! `hoist-probe`: runs inside a container and reports what the container sees, so the tests check
//! isolation from the inside rather than trusting the runtime's own account.
//!
//! `probe view` prints one JSON object: pid, hostname, uid/gid, capability sets, no_new_privs,
//! seccomp mode, open fds, masked and read-only kernel paths, the memory limit, whether privileged
//! syscalls are denied. `probe hog MIB` allocates and touches memory. `probe fork N` tries to start
//! N processes and reports how many it got. `probe spec PATH...` reports what a service spec's
//! fields look like from inside (ids, cwd, hostname, nofile, read-only root, pids limit, and the
//! filesystem, owner, mode and entries of each PATH). `probe syscalls` reports the errno of
//! system calls a seccomp profile decides about, each made in a child of its own (0: it ran).
//! `probe threads N` starts N threads. `probe bind PORT` binds a TCP port. `probe bench N`
//! times N calls of `getppid` and of `personality(query)`. Static, so it runs in a busybox image.

use serde_json::{json, Value};
use std::fs;

fn status_field(name: &str) -> String {
    fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix(&format!("{name}:"))
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_default()
}

fn fds() -> Vec<i32> {
    // Opening the directory adds one fd of our own; leave it out.
    let dir = fs::read_dir("/proc/self/fd").expect("read /proc/self/fd");
    let mut v: Vec<i32> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    v.sort_unstable();
    v.retain(|fd| fs::read_link(format!("/proc/self/fd/{fd}")).is_ok());
    v
}

/// A masked path reads as empty (a /dev/null bind or an empty tmpfs) or is unreadable.
fn masked(path: &str) -> bool {
    match fs::metadata(path) {
        Err(_) => true,
        Ok(m) if m.is_dir() => fs::read_dir(path).map(|d| d.count() == 0).unwrap_or(true),
        Ok(_) => fs::read(path).map(|b| b.is_empty()).unwrap_or(true),
    }
}

/// Writing a read-only path fails with EROFS (or EACCES).
fn read_only(path: &str) -> bool {
    match fs::OpenOptions::new().write(true).open(path) {
        Ok(_) => false,
        // A path this kernel does not have cannot be written either.
        Err(e) => matches!(
            e.raw_os_error(),
            Some(libc::EROFS) | Some(libc::EACCES) | Some(libc::EPERM) | Some(libc::ENOENT)
        ),
    }
}

fn syscall_denied(what: &str) -> bool {
    let rc = match what {
        // SAFETY: invalid arguments; we only look at the errno.
        "mount" => unsafe {
            libc::mount(
                c"none".as_ptr(),
                c"/tmp".as_ptr(),
                c"tmpfs".as_ptr(),
                0,
                std::ptr::null(),
            )
        },
        // SAFETY: keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0); harmless.
        "keyctl" => unsafe { libc::syscall(libc::SYS_keyctl, 0, -3, 0) as i32 },
        // SAFETY: add_key of an empty user key to the session keyring; harmless if allowed.
        "add_key" => unsafe {
            libc::syscall(
                libc::SYS_add_key,
                c"user".as_ptr(),
                c"probe".as_ptr(),
                std::ptr::null::<u8>(),
                0,
                -3,
            ) as i32
        },
        // SAFETY: unshare of a user namespace; harmless if allowed.
        "unshare_user" => unsafe { libc::unshare(libc::CLONE_NEWUSER) },
        _ => 0,
    };
    rc != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

fn memory_limit() -> Option<u64> {
    for p in [
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
        "/sys/fs/cgroup/memory.max",
    ] {
        if let Ok(s) = fs::read_to_string(p) {
            return s.trim().parse().ok();
        }
    }
    None
}

fn flags(paths: &[&str], f: fn(&str) -> bool) -> Value {
    Value::Object(
        paths
            .iter()
            .map(|p| (p.to_string(), Value::Bool(f(p))))
            .collect(),
    )
}

fn view() -> Value {
    let masked = flags(
        &[
            "/proc/kcore",
            "/proc/keys",
            "/proc/timer_list",
            "/proc/sched_debug",
            "/sys/firmware",
            "/proc/scsi",
            "/proc/acpi",
        ],
        masked,
    );
    let read_only = flags(
        &[
            "/proc/sys/kernel/hostname",
            "/proc/sysrq-trigger",
            "/proc/sys/vm/drop_caches",
            "/sys/kernel/mm/transparent_hugepage/enabled",
        ],
        read_only,
    );
    let denied = flags(
        &["mount", "keyctl", "add_key", "unshare_user"],
        syscall_denied,
    );
    json!({
        "pid": std::process::id(),
        "hostname": fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default().trim(),
        "uid": status_field("Uid"),
        "gid": status_field("Gid"),
        "groups": status_field("Groups"),
        "cap_eff": status_field("CapEff"),
        "cap_prm": status_field("CapPrm"),
        "cap_bnd": status_field("CapBnd"),
        "cap_amb": status_field("CapAmb"),
        "no_new_privs": status_field("NoNewPrivs"),
        "seccomp": status_field("Seccomp"),
        "fds": fds(),
        "cwd": std::env::current_dir().map(|p| p.display().to_string()).unwrap_or_default(),
        "masked": masked,
        "read_only": read_only,
        "denied": denied,
        "memory_limit": memory_limit(),
        "env": std::env::vars().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
        "root_writable": fs::write("/probe-write-test", b"x").is_ok(),
        "uid_map": fs::read_to_string("/proc/self/uid_map").unwrap_or_default(),
        "gid_map": fs::read_to_string("/proc/self/gid_map").unwrap_or_default(),
    })
}

/// The calls `probe syscalls` makes, by name.
const CALLS: [&str; 17] = [
    "keyctl",
    "add_key",
    "request_key",
    "unshare_user",
    "unshare_mount",
    "mount",
    "setns",
    "clone3",
    "bpf",
    "userfaultfd",
    "io_uring_setup",
    "socket_vsock",
    "socket_inet",
    "personality_query",
    "chroot",
    "ptrace_traceme",
    "getppid",
];

/// Makes the call `name` of [`CALLS`]. Arguments are chosen so that an allowed call fails
/// harmlessly or changes only the calling process (errno tells the filter's `EPERM`/`ENOSYS`
/// from the kernel's own answer).
fn raw_call(name: &str) -> libc::c_long {
    let null = std::ptr::null::<u8>();
    // SAFETY: raw system calls with constant arguments, NULL pointers or pointers to static C
    // strings; made in a throwaway child (`errno_in_child`).
    unsafe {
        match name {
            "keyctl" => libc::syscall(libc::SYS_keyctl, 0, -3, 0),
            "add_key" => libc::syscall(
                libc::SYS_add_key,
                c"user".as_ptr(),
                c"probe".as_ptr(),
                null,
                0,
                -3,
            ),
            "request_key" => libc::syscall(
                libc::SYS_request_key,
                c"user".as_ptr(),
                c"probe".as_ptr(),
                null,
                0,
            ),
            "unshare_user" => libc::syscall(libc::SYS_unshare, libc::CLONE_NEWUSER),
            "unshare_mount" => libc::syscall(libc::SYS_unshare, libc::CLONE_NEWNS),
            "mount" => libc::syscall(
                libc::SYS_mount,
                c"none".as_ptr(),
                c"/tmp".as_ptr(),
                c"tmpfs".as_ptr(),
                0,
                0,
            ),
            "setns" => libc::syscall(libc::SYS_setns, -1, 0),
            "clone3" => libc::syscall(libc::SYS_clone3, null, 0),
            "bpf" => libc::syscall(libc::SYS_bpf, 0, null, 0),
            "userfaultfd" => libc::syscall(libc::SYS_userfaultfd, 0),
            "io_uring_setup" => libc::syscall(libc::SYS_io_uring_setup, 0, null),
            "socket_vsock" => libc::syscall(libc::SYS_socket, libc::AF_VSOCK, libc::SOCK_STREAM, 0),
            "socket_inet" => libc::syscall(libc::SYS_socket, libc::AF_INET, libc::SOCK_STREAM, 0),
            "personality_query" => libc::syscall(libc::SYS_personality, 0xffff_ffffu64),
            "chroot" => libc::syscall(libc::SYS_chroot, c"/".as_ptr()),
            "ptrace_traceme" => libc::syscall(libc::SYS_ptrace, libc::PTRACE_TRACEME, 0, 0, 0),
            _ => libc::syscall(libc::SYS_getppid),
        }
    }
}

/// One call of `probe syscalls`, made in a child (so that one that succeeds, as `unshare` or
/// `chroot` may, changes nothing here); answers its errno, 0 if it succeeded.
fn errno_in_child(name: &str) -> i32 {
    // SAFETY: the probe is single-threaded; the child makes one call and exits.
    match unsafe { libc::fork() } {
        -1 => -1,
        0 => {
            let rc = raw_call(name);
            let errno = std::io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(255);
            // SAFETY: leave the child without running the parent's handlers.
            unsafe { libc::_exit(if rc == -1 { errno.min(255) } else { 0 }) }
        }
        pid => {
            let mut status = 0;
            // SAFETY: waiting for our own child.
            unsafe { libc::waitpid(pid, &mut status, 0) };
            if libc::WIFEXITED(status) {
                libc::WEXITSTATUS(status)
            } else {
                -libc::WTERMSIG(status)
            }
        }
    }
}

/// `probe syscalls`: `{call: errno}` for calls Docker's default profile refuses and some it
/// allows.
fn syscalls() -> Value {
    Value::Object(
        CALLS
            .iter()
            .map(|name| (name.to_string(), json!(errno_in_child(name))))
            .collect(),
    )
}

/// `probe threads N`: starts N threads (libc's `clone3` falling back to `clone`) and joins them.
fn threads(n: usize) -> Value {
    let started: Vec<_> = (0..n)
        .map(|i| std::thread::Builder::new().spawn(move || i))
        .collect();
    let ok = started
        .into_iter()
        .filter_map(Result::ok)
        .filter_map(|h| h.join().ok())
        .count();
    json!({"threads": ok})
}

/// `probe bind PORT`: whether a TCP listener can bind the port on every address.
fn bind(port: u16) -> Value {
    match std::net::TcpListener::bind(("0.0.0.0", port)) {
        Ok(_) => json!({"bound": true}),
        Err(e) => json!({"bound": false, "error": e.to_string()}),
    }
}

/// `probe bench N`: nanoseconds per call of `getppid` (whose verdict the kernel can cache) and
/// of `personality(0xffffffff)` (a query whose verdict depends on its argument, so the filter
/// runs each time), the best of five runs of N calls each.
fn bench(n: u64) -> Value {
    let time = |f: fn() -> libc::c_long| {
        (0..5)
            .map(|_| {
                let t = std::time::Instant::now();
                for _ in 0..n {
                    std::hint::black_box(f());
                }
                t.elapsed().as_nanos() as f64 / n as f64
            })
            .fold(f64::MAX, f64::min)
    };
    // SAFETY: calls without side effects.
    let getppid = time(|| unsafe { libc::syscall(libc::SYS_getppid) });
    // SAFETY: 0xffffffff only queries the personality.
    let personality = time(|| unsafe { libc::syscall(libc::SYS_personality, 0xffff_ffffu64) });
    json!({"calls": n, "getppid_ns": getppid, "personality_ns": personality})
}

fn hog(mib: usize) {
    let mut chunks = Vec::new();
    for i in 0..mib {
        let mut v = vec![0u8; 1 << 20];
        for j in (0..v.len()).step_by(4096) {
            v[j] = (i + j) as u8;
        }
        chunks.push(v);
        if i % 16 == 0 {
            println!("allocated {} MiB", i + 1);
        }
    }
    println!("allocated all {mib} MiB");
}

fn fork(n: usize) {
    let mut children = Vec::new();
    let mut failed = 0;
    for _ in 0..n {
        // SAFETY: single-threaded; the child only sleeps and exits.
        match unsafe { libc::fork() } {
            -1 => failed += 1,
            0 => {
                std::thread::sleep(std::time::Duration::from_secs(2));
                // SAFETY: exit the child without running the parent's handlers.
                unsafe { libc::_exit(0) }
            }
            pid => children.push(pid),
        }
    }
    println!("{}", json!({"started": children.len(), "failed": failed}));
    for pid in children {
        // SAFETY: waiting for our own children.
        unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
    }
}

/// `probe spec PATH...`: what the complete spec's fields look like from inside: ids, cwd,
/// hostname, `RLIMIT_NOFILE`, whether `/` is read-only, the pids limit (cgroup file, and how many
/// of 64 forks succeed), and for each PATH its filesystem (statfs: tmpfs or not, size), owner,
/// mode and entries.
fn spec(paths: &[String]) -> Value {
    use std::os::unix::fs::MetadataExt;
    let mut nofile = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut nofile) };
    let as_i64 = |v: libc::rlim_t| {
        if v == libc::RLIM_INFINITY {
            -1
        } else {
            v as i64
        }
    };
    let root_write = fs::write("/probe-write-test", b"x");
    let pids_max = ["/sys/fs/cgroup/pids.max", "/sys/fs/cgroup/pids/pids.max"]
        .iter()
        .find_map(|p| fs::read_to_string(p).ok())
        .map(|s| s.trim().to_string());
    let mut paths_out = serde_json::Map::new();
    for p in paths {
        let c = std::ffi::CString::new(p.as_str()).unwrap_or_default();
        // SAFETY: an all-zero statfs is a valid out-parameter.
        let mut st: libc::statfs = unsafe { std::mem::zeroed() };
        // SAFETY: a NUL-terminated path and a struct we own.
        let rc = unsafe { libc::statfs(c.as_ptr(), &mut st) };
        // SAFETY: an all-zero statvfs is a valid out-parameter.
        let mut vfs: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: a NUL-terminated path and a struct we own.
        let vrc = unsafe { libc::statvfs(c.as_ptr(), &mut vfs) };
        let flag = |f: libc::c_ulong| vrc == 0 && (vfs.f_flag & f) != 0;
        let meta = fs::metadata(p).ok();
        let mut entries: Vec<String> = fs::read_dir(p)
            .map(|d| {
                d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                    .collect()
            })
            .unwrap_or_default();
        entries.sort();
        paths_out.insert(
            p.clone(),
            json!({
                "tmpfs": rc == 0 && st.f_type == libc::TMPFS_MAGIC,
                "size_bytes": if rc == 0 { st.f_blocks * st.f_bsize as u64 } else { 0 },
                "read_only": flag(libc::ST_RDONLY),
                "nosuid_nodev": flag(libc::ST_NOSUID) && flag(libc::ST_NODEV),
                "uid": meta.as_ref().map(|m| m.uid()),
                "mode": meta.as_ref().map(|m| format!("{:o}", m.mode() & 0o7777)),
                "entries": entries,
            }),
        );
    }
    json!({
        "uid": status_field("Uid"),
        "gid": status_field("Gid"),
        "cwd": std::env::current_dir().map(|p| p.display().to_string()).unwrap_or_default(),
        "hostname": fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default().trim(),
        "nofile": [as_i64(nofile.rlim_cur), as_i64(nofile.rlim_max)],
        "root_read_only": root_write.err().and_then(|e| e.raw_os_error()) == Some(libc::EROFS),
        "pids_max": pids_max,
        "forks_of_64": forks(64),
        "paths": paths_out,
    })
}

/// Starts up to `n` children that wait for the parent to finish, and answers how many started.
fn forks(n: usize) -> usize {
    let mut children = Vec::new();
    for _ in 0..n {
        // SAFETY: the child only sleeps briefly and exits.
        match unsafe { libc::fork() } {
            -1 => break,
            0 => {
                std::thread::sleep(std::time::Duration::from_millis(500));
                // SAFETY: exit the child without running the parent's handlers.
                unsafe { libc::_exit(0) }
            }
            pid => children.push(pid),
        }
    }
    for pid in &children {
        // SAFETY: waiting for our own children.
        unsafe { libc::waitpid(*pid, std::ptr::null_mut(), 0) };
    }
    children.len()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("view") => println!("{}", view()),
        Some("hog") => hog(args.get(2).and_then(|s| s.parse().ok()).unwrap_or(256)),
        Some("fork") => fork(args.get(2).and_then(|s| s.parse().ok()).unwrap_or(100)),
        Some("spec") => println!("{}", spec(&args[2..])),
        Some("syscalls") => println!("{}", syscalls()),
        Some("threads") => println!(
            "{}",
            threads(args.get(2).and_then(|s| s.parse().ok()).unwrap_or(8))
        ),
        Some("bind") => println!(
            "{}",
            bind(args.get(2).and_then(|s| s.parse().ok()).unwrap_or(80))
        ),
        Some("bench") => println!(
            "{}",
            bench(
                args.get(2)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(1_000_000)
            )
        ),
        _ => {
            eprintln!(
                "usage: hoist-probe view | hog MIB | fork N | spec PATH... | syscalls \
                 | threads N | bind PORT | bench N"
            );
            std::process::exit(2);
        }
    }
}
