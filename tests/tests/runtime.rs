//! One host, driven through the `hoist` CLI: running, exit codes, logs, stop, exec, limits,
//! isolation as seen from inside (the probe), bad input, and cleanup after every container.

use anyhow::Result;
use hoist_tests::{sh, wait_for, Host};
use serde_json::Value;
use std::time::{Duration, Instant};

fn code(out: &std::process::Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn assert_clean(h: &Host, id: &str) {
    let left = h.leftovers(id);
    assert!(left.is_empty(), "container {id} left behind: {left:#?}");
}

/// `hoist run -d --name NAME --network none busybox sleep 1000`: the container's id.
fn sleeper(h: &Host, name: &str) -> Result<String> {
    let out = h.hoist_ok(&[
        "run",
        "-d",
        "--name",
        name,
        "--network",
        "none",
        "busybox",
        "sleep",
        "1000",
    ])?;
    Ok(out.trim().to_string())
}

fn all_ids(h: &Host) -> Vec<String> {
    let v: Value = serde_json::from_str(&h.hoist_ok(&["ps", "-a", "-o", "json"]).unwrap()).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect()
}

/// The superblock options of the overlay mounted on `/`, from a `/proc/self/mountinfo`.
fn root_overlay_options(mountinfo: &str) -> String {
    mountinfo
        .lines()
        .find_map(|l| {
            let (mount, fs) = l.split_once(" - ")?;
            let mut fs = fs.split(' ');
            (mount.split(' ').nth(4) == Some("/") && fs.next() == Some("overlay"))
                .then(|| fs.nth(1).unwrap_or_default().to_string())
        })
        .unwrap_or_default()
}

#[test]
fn run_streams_output_and_exit_codes() -> Result<()> {
    let h = Host::start("h1")?;
    let out = h.hoist(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 7",
    ])?;
    assert_eq!(code(&out), 7, "{}", stderr(&out));
    assert_eq!(stdout(&out), "out\n");
    assert_eq!(stderr(&out), "err\n");
    assert!(all_ids(&h).is_empty(), "--rm removed the container");
    // A container removed at exit never syncs its layer; one that stays does.
    let mountinfo = h.hoist_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "cat",
        "/proc/self/mountinfo",
    ])?;
    assert!(
        root_overlay_options(&mountinfo).contains("volatile"),
        "{mountinfo}"
    );

    // Without --rm the container stays, exited, with its code and signal. (pid 1 ignores signals it
    // has no handler for, except SIGKILL from outside, exactly as under Docker.)
    h.hoist_ok(&[
        "run",
        "-d",
        "--name",
        "sig",
        "--network",
        "none",
        "busybox",
        "sleep",
        "100",
    ])?;
    let mountinfo = h.hoist_ok(&["exec", "sig", "cat", "/proc/self/mountinfo"])?;
    let root = root_overlay_options(&mountinfo);
    assert!(
        root.contains("upperdir=") && !root.contains("volatile"),
        "{mountinfo}"
    );
    h.hoist_ok(&["kill", "sig"])?;
    let v = h.wait_exited("sig", Duration::from_secs(5))?;
    assert_eq!(v["exit"]["code"], 137, "killed by SIGKILL reads as 128+9");
    assert_eq!(v["exit"]["signal"], 9);
    let id = v["id"].as_str().unwrap().to_string();
    h.hoist_ok(&["rm", "sig"])?;
    assert_clean(&h, &id);
    // Its files went into the trash with the removal, and are deleted right after.
    let trash = h.data_dir().join("trash");
    wait_for("the trash to be emptied", Duration::from_secs(5), || {
        Ok((std::fs::read_dir(&trash)?.count() == 0).then_some(()))
    })?;
    Ok(())
}

#[test]
fn detached_logs_stop_and_rm() -> Result<()> {
    let h = Host::start("h1")?;
    let script = "echo started; trap 'echo got TERM; exit 0' TERM; while true; do sleep 0.05; done";
    let id = h
        .hoist_ok(&[
            "run",
            "-d",
            "--name",
            "web",
            "--network",
            "none",
            "busybox",
            "sh",
            "-c",
            script,
        ])?
        .trim()
        .to_string();
    assert_eq!(id.len(), 64);
    wait_for("first log line", Duration::from_secs(5), || {
        Ok(h.hoist_ok(&["logs", "web"])?
            .contains("started")
            .then_some(()))
    })?;
    let ps = h.hoist_ok(&["ps"])?;
    assert!(ps.contains("web") && ps.contains("Up"), "{ps}");

    // logs -f runs until the container exits; stop makes it exit through its TERM trap.
    let socket = h.socket();
    let follower = std::thread::spawn(move || {
        std::process::Command::new(hoist_tests::bin("hoist"))
            .args(["logs", "-f", "web"])
            .env("HOIST_AGENT", socket)
            .output()
    });
    std::thread::sleep(Duration::from_millis(200));
    let t = Instant::now();
    h.hoist_ok(&["stop", "web"])?;
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "stop honoured the trap, no kill after the grace period"
    );
    let followed = follower.join().unwrap()?;
    assert!(
        stdout(&followed).contains("started\n") && stdout(&followed).contains("got TERM\n"),
        "{}",
        stdout(&followed)
    );
    assert_eq!(h.inspect("web")?["exit"]["code"], 0);
    assert_eq!(h.hoist_ok(&["logs", "--tail", "1", "web"])?, "got TERM\n");

    h.hoist_ok(&["rm", "web"])?;
    assert_clean(&h, &id);
    let out = h.hoist(&["inspect", "web"])?;
    assert!(
        !out.status.success() && stderr(&out).contains("no such container"),
        "{}",
        stderr(&out)
    );
    Ok(())
}

#[test]
fn stop_kills_after_grace_period_and_rm_force() -> Result<()> {
    let h = Host::start("h1")?;
    // pid 1 without a TERM handler ignores SIGTERM: stop must fall back to SIGKILL.
    sleeper(&h, "stubborn")?;
    let t = Instant::now();
    h.hoist_ok(&["stop", "-t", "1", "stubborn"])?;
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "took {took:?}"
    );
    assert_eq!(h.inspect("stubborn")?["exit"]["code"], 137);

    let id = h
        .hoist_ok(&["run", "-d", "--network", "none", "busybox", "sleep", "1000"])?
        .trim()
        .to_string();
    let out = h.hoist(&["rm", &id])?;
    assert!(
        !out.status.success() && stderr(&out).contains("is running"),
        "{}",
        stderr(&out)
    );
    h.hoist_ok(&["rm", "-f", &id])?;
    assert_clean(&h, &id);
    Ok(())
}

#[test]
fn the_probe_sees_an_isolated_hardened_container() -> Result<()> {
    let h = Host::start("h1")?;
    let out = h.hoist_ok(&[
        "run",
        "--rm",
        "--hostname",
        "probe-host",
        "-m",
        "48m",
        "probe",
        "probe",
        "view",
    ])?;
    let v: Value = serde_json::from_str(out.trim())?;
    assert_eq!(v["pid"], 1, "first process is pid 1 of its own namespace");
    assert_eq!(v["hostname"], "probe-host");
    // Docker's 14 default capabilities and no others, in every set but ambient.
    for set in ["cap_eff", "cap_prm", "cap_bnd"] {
        assert_eq!(v[set], "00000000a80425fb", "{set}");
    }
    assert_eq!(v["cap_amb"], "0000000000000000");
    assert_eq!(v["no_new_privs"], "1");
    assert_eq!(v["seccomp"], "2");
    assert_eq!(
        v["fds"],
        serde_json::json!([0, 1, 2]),
        "only stdio is inherited"
    );
    for (path, masked) in v["masked"].as_object().unwrap() {
        assert_eq!(masked, true, "{path} must be masked");
    }
    for (path, ro) in v["read_only"].as_object().unwrap() {
        assert_eq!(ro, true, "{path} must be read-only");
    }
    for (call, denied) in v["denied"].as_object().unwrap() {
        assert_eq!(denied, true, "{call} must be denied by seccomp");
    }
    assert_eq!(v["memory_limit"], 48 << 20);
    Ok(())
}

#[test]
fn user_env_workdir_readonly_and_volumes() -> Result<()> {
    let h = Host::start("h1")?;
    let vol = h.dir.path().join("vol");
    std::fs::create_dir(&vol)?;
    std::fs::write(vol.join("in.txt"), "from host\n")?;
    let vol_arg = format!("{}:/data", vol.display());
    let out = h.hoist_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-u",
        "www-data",
        "-e",
        "GREETING=hi there",
        "-w",
        "/var/www",
        "-v",
        &vol_arg,
        "busybox",
        "sh",
        "-c",
        "id -u; id -g; id -G; echo $GREETING; pwd; cat /data/in.txt",
    ])?;
    assert_eq!(out, "33\n33\n33 50\nhi there\n/var/www\nfrom host\n");

    let out = h.hoist_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-u",
        "1234:4321",
        "probe",
        "probe",
        "view",
    ])?;
    let v: Value = serde_json::from_str(out.trim())?;
    assert!(
        v["uid"].as_str().unwrap().starts_with("1234\t")
            && v["gid"].as_str().unwrap().starts_with("4321\t")
    );
    assert_eq!(
        v["cap_eff"], "0000000000000000",
        "a non-root user has no effective capabilities"
    );

    let ro_arg = format!("{}:/data:ro", vol.display());
    let out = h.hoist(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--read-only",
        "-v",
        &ro_arg,
        "busybox",
        "sh",
        "-c",
        "touch /x || echo rootfs-ro; touch /data/y || echo volume-ro",
    ])?;
    assert_eq!(stdout(&out), "rootfs-ro\nvolume-ro\n", "{}", stderr(&out));
    assert!(!vol.join("y").exists());
    let out = h.hoist_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &vol_arg,
        "busybox",
        "sh",
        "-c",
        "echo written > /data/out.txt",
    ])?;
    assert_eq!(out, "");
    assert_eq!(std::fs::read_to_string(vol.join("out.txt"))?, "written\n");
    Ok(())
}

#[test]
fn oom_kill_is_reported() -> Result<()> {
    let h = Host::start("h1")?;
    let out = h.hoist(&[
        "run",
        "--name",
        "hog",
        "--network",
        "none",
        "-m",
        "16m",
        "probe",
        "probe",
        "hog",
        "256",
    ])?;
    assert_eq!(code(&out), 137, "{}", stderr(&out));
    let v = h.inspect("hog")?;
    assert_eq!(v["exit"]["oom_killed"], true);
    let ps = h.hoist_ok(&["ps", "-a"])?;
    assert!(ps.contains("OOM killed"), "{ps}");
    Ok(())
}

#[test]
fn pids_limit_stops_a_fork_bomb() -> Result<()> {
    let h = Host::start("h1")?;
    let out = h.hoist_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--pids-limit",
        "10",
        "probe",
        "probe",
        "fork",
        "50",
    ])?;
    let v: Value = serde_json::from_str(out.lines().last().unwrap_or("{}"))?;
    let started = v["started"].as_u64().unwrap();
    assert!(
        started < 10,
        "at most 9 children next to the probe itself, got {started}"
    );
    assert!(v["failed"].as_u64().unwrap() >= 40);
    Ok(())
}

#[test]
fn exec_runs_inside_the_container() -> Result<()> {
    let h = Host::start("h1")?;
    h.hoist_ok(&[
        "run",
        "-d",
        "--name",
        "box",
        "--hostname",
        "boxy",
        "--network",
        "none",
        "-e",
        "A=1",
        "busybox",
        "sleep",
        "1000",
    ])?;
    assert_eq!(h.hoist_ok(&["exec", "box", "hostname"])?, "boxy\n");
    assert_eq!(
        h.hoist_ok(&[
            "exec",
            "-e",
            "B=2",
            "box",
            "sh",
            "-c",
            "echo $A$B; tr '\\0' ' ' < /proc/1/cmdline"
        ])?,
        "12\nsleep 1000 ",
        "sees the container's env and pid namespace"
    );
    // In the container's cgroups, where its cgroup namespace is rooted: every hierarchy reads
    // `/` as for pid 1 (a process left outside would read a path up from the root, `/..`).
    let cgroups = h.hoist_ok(&["exec", "box", "cat", "/proc/self/cgroup", "/proc/1/cgroup"])?;
    let lines: Vec<&str> = cgroups.lines().collect();
    assert!(
        !lines.is_empty() && lines.iter().all(|l| l.ends_with(":/")),
        "exec and pid 1 both in the container's cgroups:\n{cgroups}"
    );
    assert_eq!(
        h.hoist_ok(&[
            "exec",
            "-u",
            "www-data",
            "-w",
            "/tmp",
            "box",
            "sh",
            "-c",
            "id -u; pwd"
        ])?,
        "33\n/tmp\n"
    );
    let out = h.hoist(&["exec", "box", "sh", "-c", "exit 5"])?;
    assert_eq!(code(&out), 5);
    let out = h.hoist(&["exec", "box", "nope"])?;
    assert_eq!(code(&out), 127, "{}", stderr(&out));
    let out = h.hoist_ok(&["exec", "box", "probe", "view"])?;
    let v: Value = serde_json::from_str(out.trim())?;
    assert_eq!(v["cap_bnd"], "00000000a80425fb");
    assert_eq!(v["no_new_privs"], "1");
    assert_eq!(v["fds"], serde_json::json!([0, 1, 2]));
    h.hoist_ok(&["rm", "-f", "box"])?;
    Ok(())
}

#[test]
fn bad_input_gets_clear_errors_and_leaves_nothing() -> Result<()> {
    let h = Host::start("h1")?;
    let cases: &[(&[&str], i32, &str)] = &[
        (&["run", "--rm", "nosuchimage"], 125, "not found"),
        (
            &[
                "run",
                "--rm",
                "--network",
                "none",
                "busybox",
                "no-such-command",
            ],
            127,
            "executable file not found",
        ),
        (
            &["run", "--rm", "--network", "none", "busybox", "/etc/passwd"],
            126,
            "permission denied",
        ),
        (
            &["run", "--rm", "-m", "12x", "busybox", "true"],
            2,
            "is not a size",
        ),
        (
            &["run", "--rm", "-m", "1m", "busybox", "true"],
            125,
            "minimum",
        ),
        (
            &["run", "--rm", "-p", "80", "busybox", "true"],
            2,
            "HOSTPORT:PORT",
        ),
        (
            &["run", "--rm", "-w", "relative", "busybox", "true"],
            125,
            "absolute",
        ),
        (
            &["run", "--rm", "--name", "bad/name", "busybox", "true"],
            125,
            "invalid container name",
        ),
        (
            &[
                "run",
                "--rm",
                "--network",
                "host",
                "-p",
                "8080:80",
                "busybox",
                "true",
            ],
            125,
            "needs --network bridge",
        ),
        (
            &["run", "--rm", "-u", "nobody-here", "busybox", "true"],
            125,
            "unable to find user",
        ),
    ];
    for (args, want_code, want_msg) in cases {
        let out = h.hoist(args)?;
        let err = stderr(&out);
        assert_eq!(code(&out), *want_code, "hoist {}: {err}", args.join(" "));
        assert!(
            err.contains(want_msg),
            "hoist {}: expected {want_msg:?} in {err:?}",
            args.join(" ")
        );
        assert_eq!(
            err.trim().lines().count().min(2),
            if *want_code == 2 {
                err.trim().lines().count().min(2)
            } else {
                1
            },
            "one line: {err}"
        );
    }
    assert!(all_ids(&h).is_empty(), "no failed container is left listed");
    let containers = std::fs::read_dir(h.data_dir().join("containers"))?.count();
    assert_eq!(containers, 0, "no failed container left a directory");

    // A name already taken.
    h.hoist_ok(&[
        "run",
        "-d",
        "--name",
        "taken",
        "--network",
        "none",
        "busybox",
        "sleep",
        "100",
    ])?;
    let out = h.hoist(&[
        "run",
        "--name",
        "taken",
        "--network",
        "none",
        "busybox",
        "true",
    ])?;
    assert_eq!(code(&out), 125);
    assert!(stderr(&out).contains("already in use"), "{}", stderr(&out));
    h.hoist_ok(&["rm", "-f", "taken"])?;
    Ok(())
}

#[test]
fn containers_outlive_an_agent_kill() -> Result<()> {
    let mut h = Host::start("h1")?;
    let script = "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done";
    let id = h
        .hoist_ok(&[
            "run",
            "-d",
            "--name",
            "survivor",
            "--network",
            "none",
            "busybox",
            "sh",
            "-c",
            script,
        ])?
        .trim()
        .to_string();
    let pid_before = h.inspect("survivor")?["pid"].clone();
    // Started with --rm, and ends while the agent is away: removed when it comes back.
    let ephemeral = h
        .hoist_ok(&[
            "run",
            "-d",
            "--rm",
            "--name",
            "ephemeral",
            "--network",
            "none",
            "busybox",
            "sleep",
            "1000",
        ])?
        .trim()
        .to_string();
    let ephemeral_pid = h.inspect("ephemeral")?["pid"].as_i64().unwrap();
    h.kill_agent()?;
    sh(&format!("kill -9 {ephemeral_pid}"))?;
    wait_for(
        "the --rm container's end to be recorded",
        Duration::from_secs(5),
        || {
            Ok(h.data_dir()
                .join("containers")
                .join(&ephemeral)
                .join("exit.json")
                .is_file()
                .then_some(()))
        },
    )?;
    // What a crash in the middle of a removal leaves: volatile files without a container.
    let stray = h.data_dir().join("run").join("ab".repeat(32));
    std::fs::create_dir_all(stray.join("rootfs"))?;
    std::fs::write(stray.join("spec.json"), "{}")?;
    // And what one leaves that had answered: a container directory in the trash.
    let trashed = h.data_dir().join("trash").join("cd".repeat(32));
    std::fs::create_dir_all(trashed.join("upper/etc"))?;
    std::fs::write(trashed.join("container.json"), "{}")?;
    std::thread::sleep(Duration::from_millis(300));
    h.start_agent()?;
    assert!(!stray.exists(), "stray volatile files are swept on restart");
    wait_for("the trash to be emptied", Duration::from_secs(5), || {
        Ok((!trashed.exists()).then_some(()))
    })?;
    let v = h.inspect("survivor")?;
    assert_eq!(v["status"], "running", "re-attached after kill -9");
    assert_eq!(v["pid"], pid_before, "the same process, not a restart");
    let out = h.hoist(&["inspect", "ephemeral"])?;
    assert!(
        stderr(&out).contains("no such container"),
        "{}",
        stderr(&out)
    );
    assert_clean(&h, &ephemeral);
    // Output kept flowing into the log while the agent was away.
    let logs = h.hoist_ok(&["logs", "survivor"])?;
    assert!(logs.lines().count() >= 3, "{logs}");
    h.hoist_ok(&["exec", "survivor", "true"])?;
    h.hoist_ok(&["stop", "-t", "1", "survivor"])?;
    assert_eq!(h.inspect("survivor")?["status"], "exited");
    h.hoist_ok(&["rm", "survivor"])?;
    assert_clean(&h, &id);
    Ok(())
}

/// The containers' volatile files (spec, supervisor socket, rootfs mount point, generated /etc
/// files) live on a tmpfs the agent mounts on `DATA/run`. A reboot takes that tmpfs and every
/// process away; the container is still listed afterwards, exited, and removes cleanly.
#[test]
fn containers_of_a_rebooted_host_are_kept_as_exited() -> Result<()> {
    let mut h = Host::start("h1")?;
    let run_dir = h.data_dir().join("run");
    let id = h
        .hoist_ok(&["run", "-d", "--name", "lost", "busybox", "sleep", "1000"])?
        .trim()
        .to_string();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo")?;
    assert!(
        mounts
            .lines()
            .any(|l| l.contains(&format!(" {} ", run_dir.display())) && l.contains(" - tmpfs ")),
        "{} is a tmpfs",
        run_dir.display()
    );
    assert!(run_dir.join(&id).join("spec.json").is_file());
    // The "reboot": the agent, the supervisor and the container die, and the tmpfs is gone.
    let pid = h.inspect("lost")?["pid"].as_i64().unwrap();
    h.kill_agent()?;
    // The supervisor first, so no end is recorded. Not through `sh -c`, whose own command line
    // would match the pattern.
    std::process::Command::new("pkill")
        .args(["-9", "-f", &format!("__shim {}", h.data_dir().display())])
        .status()?;
    sh(&format!("kill -9 {pid}"))?;
    sh(&format!("umount -l {}", run_dir.display()))?;
    wait_for(
        "the container's process to be gone",
        Duration::from_secs(5),
        || Ok((!std::path::Path::new(&format!("/proc/{pid}")).exists()).then_some(())),
    )?;
    h.start_agent()?;
    let v = h.inspect("lost")?;
    assert_eq!(v["status"], "exited", "{v}");
    assert_eq!(v["exit"]["code"], 255, "the end was not seen: {v}");
    h.hoist_ok(&["rm", "lost"])?;
    assert_clean(&h, &id);
    Ok(())
}

/// `/proc/PID/cmdline`, split at its NULs (empty when the process is gone).
fn cmdline(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .unwrap_or_default()
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

/// The parent of `pid`, from `/proc/PID/stat` (field 4, past the command name).
fn parent(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 2..].split(' ').nth(1)?.parse().ok()
}

/// The supervisor of container `id`, found as an operator would: by `__shim DIR` in `ps`.
fn supervisor_of(id: &str) -> Result<u32> {
    std::fs::read_dir("/proc")?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .find(|pid| {
            let argv = cmdline(*pid);
            argv.len() == 3 && argv[1] == "__shim" && argv[2].ends_with(id)
        })
        .ok_or_else(|| anyhow::anyhow!("no `__shim .../{id}` process"))
}

/// Supervisors are forked by the agent's one forker, not exec'd: a supervisor's parent is the
/// forker (the agent's child), and its command line reads `__shim DIR` as an exec'd one's. A
/// forker killed takes no container with it and is replaced at the next start; a stopped one
/// is replaced rather than waited for. With
/// `--supervisor-start exec` the agent execs each supervisor itself.
#[test]
fn supervisors_are_forked_and_listed_as_exec_d_ones() -> Result<()> {
    let mut h = Host::start("h1")?;
    let agent = h.agent_pid().expect("an agent");
    let first = sleeper(&h, "first")?;
    let shim = supervisor_of(&first)?;
    let forker = parent(shim).expect("the supervisor's parent");
    assert_eq!(
        cmdline(forker).get(1).map(String::as_str),
        Some("__shim-forker"),
        "the supervisor's parent {forker}: {:?}",
        cmdline(forker)
    );
    assert_eq!(parent(forker), Some(agent));
    sh(&format!("kill -9 {forker}"))?;
    wait_for("the forker to be gone", Duration::from_secs(5), || {
        Ok(cmdline(forker).is_empty().then_some(()))
    })?;
    h.hoist_ok(&["exec", "first", "true"])?;
    let second = sleeper(&h, "second")?;
    let replaced = parent(supervisor_of(&second)?).expect("a parent");
    assert_ne!(replaced, forker);
    assert_eq!(parent(replaced), Some(agent));

    // A stopped forker would take the request and answer none: it is replaced, not waited for.
    sh(&format!("kill -STOP {replaced}"))?;
    let start = sh(&format!(
        "HOIST_AGENT={} timeout 20 {} run -d --name fourth --network none busybox sleep 1000",
        h.socket().display(),
        hoist_tests::bin("hoist").display()
    ));
    sh(&format!("kill -9 {replaced}"))?;
    let start = start?;
    assert!(
        start.status.success(),
        "a start past a stopped forker: {:?} {}",
        start.status,
        stderr(&start)
    );
    let fourth = stdout(&start).trim().to_string();
    let newer = parent(supervisor_of(&fourth)?).expect("a parent");
    assert!(
        newer != replaced && newer != forker,
        "a new forker: {newer}"
    );
    assert_eq!(parent(newer), Some(agent));

    h.stop_agent()?;
    h.agent_args = vec!["--supervisor-start".into(), "exec".into()];
    h.start_agent()?;
    let third = sleeper(&h, "third")?;
    assert_eq!(parent(supervisor_of(&third)?), h.agent_pid());
    for (name, id) in [
        ("first", &first),
        ("second", &second),
        ("third", &third),
        ("fourth", &fourth),
    ] {
        h.hoist_ok(&["rm", "-f", name])?;
        assert_clean(&h, id);
    }
    Ok(())
}

#[test]
fn stats_report_usage() -> Result<()> {
    let h = Host::start("h1")?;
    h.hoist_ok(&[
        "run",
        "-d",
        "--name",
        "busy",
        "--network",
        "none",
        "-m",
        "64m",
        "--pids-limit",
        "50",
        "busybox",
        "sh",
        "-c",
        "while true; do :; done",
    ])?;
    let out = h.hoist_ok(&["stats", "-o", "json", "busy"])?;
    let v: Value = serde_json::from_str(&out)?;
    let s = &v[0];
    assert_eq!(s["name"], "busy");
    assert_eq!(s["memory_limit_bytes"], 64 << 20);
    assert!(s["cpu_usage_ns"].as_u64().unwrap() > 0);
    assert!(s["pids"].as_u64().unwrap() >= 1);
    let table = h.hoist_ok(&["stats"])?;
    assert!(table.contains("busy") && table.contains("64MiB"), "{table}");
    h.hoist_ok(&["rm", "-f", "busy"])?;
    Ok(())
}

/// CVE-2019-5736: supervisors and exec helpers run from a sealed in-memory copy of the agent, so a
/// container that reaches their `/proc/PID/exe` finds nothing on the host to overwrite.
#[test]
fn helpers_cannot_be_used_to_overwrite_the_agent_binary() -> Result<()> {
    let h = Host::start("h1")?;
    let id = h
        .hoist_ok(&["run", "-d", "--network", "none", "busybox", "sleep", "100"])?
        .trim()
        .to_string();
    let started: Value = serde_json::from_str(&std::fs::read_to_string(
        h.data_dir().join("run").join(&id).join("started.json"),
    )?)?;
    let shim = started["shim_pid"].as_i64().unwrap();
    let exe = std::fs::read_link(format!("/proc/{shim}/exe"))?;
    assert!(
        exe.to_string_lossy().starts_with("/memfd:hoist-agent"),
        "supervisor runs from {}",
        exe.display()
    );
    // Busy while it runs; sealed (EPERM) for good, which the agent's unit test checks on the memfd.
    let e = std::fs::OpenOptions::new()
        .write(true)
        .open(format!("/proc/{shim}/exe"))
        .unwrap_err();
    assert!(
        matches!(e.raw_os_error(), Some(libc::EPERM) | Some(libc::ETXTBSY)),
        "not writable: {e}"
    );
    // An exec whose command is `#!/proc/self/exe` runs the helper's own binary in the container; it
    // must not be the host's file either.
    let out = h.hoist(&[
        "exec",
        &id,
        "sh",
        "-c",
        "printf '#!/proc/self/exe\\n' > /evil; chmod +x /evil; /evil; readlink /proc/self/exe",
    ])?;
    assert!(!stdout(&out).contains("hoist-agent"), "{}", stdout(&out));
    h.hoist_ok(&["rm", "-f", &id])?;
    Ok(())
}

/// CVE-2024-21626: a working directory through a leaked fd never starts.
#[test]
fn workdir_through_proc_fd_is_refused() -> Result<()> {
    let h = Host::start("h1")?;
    for fd in ["3", "4", "7"] {
        let dir = format!("/proc/self/fd/{fd}");
        let out = h.hoist(&[
            "run",
            "--rm",
            "--network",
            "none",
            "-w",
            &dir,
            "busybox",
            "pwd",
        ])?;
        assert_eq!(
            code(&out),
            125,
            "-w {dir}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        assert!(
            stderr(&out).contains("working directory"),
            "{}",
            stderr(&out)
        );
    }
    Ok(())
}

/// An image whose `/dev` is a symlink to somewhere else: the mounts stay inside the container.
#[test]
fn image_with_dev_symlink_is_contained() -> Result<()> {
    let h = Host::start("h1")?;
    let dir = h.dir.path().join("evil-rootfs");
    std::fs::create_dir(&dir)?;
    let tar = hoist_tests::probe_image_tar();
    let evil = h.dir.path().join("evil.tar");
    let script = format!(
        "tar -C {d} -xf {t} && rm -rf {d}/dev && ln -s /etc {d}/dev && mkdir -p {d}/x && ln -s ../../../../../../etc {d}/x/sys && tar --numeric-owner -C {d} -cf {e} .",
        d = dir.display(),
        t = tar.display(),
        e = evil.display()
    );
    assert!(hoist_tests::sh(&script)?.status.success());
    h.hoist_ok(&["image", "import", evil.to_str().unwrap(), "evil"])?;
    // Host mount points under /etc: the tmpfs meant for the container's /dev must never land there.
    // (Counting all host mounts would race with other tests' network namespace files.)
    let etc_mounts = || -> Result<Vec<String>> {
        Ok(std::fs::read_to_string("/proc/self/mountinfo")?
            .lines()
            .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
            .filter(|m| m == "/etc" || m.starts_with("/etc/"))
            .collect())
    };
    let etc_before = etc_mounts()?;
    let passwd_before = std::fs::read("/etc/passwd")?;
    let out = h.hoist(&[
        "run",
        "--rm",
        "--network",
        "none",
        "evil",
        "sh",
        "-c",
        "ls /dev/null && echo inside",
    ])?;
    // Either contained (the tmpfs lands on the image's own /etc) or refused; never on the host.
    assert!(
        out.status.success() || code(&out) == 125,
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read("/etc/passwd")?, passwd_before);
    assert_eq!(etc_mounts()?, etc_before);
    Ok(())
}

#[test]
fn images_import_list_and_remove() -> Result<()> {
    let h = Host::start("h1")?;
    let ls = h.hoist_ok(&["image", "ls"])?;
    assert!(
        ls.contains("busybox") && ls.contains("probe") && ls.contains("latest"),
        "{ls}"
    );
    let v: Value = serde_json::from_str(&h.hoist_ok(&["image", "ls", "-o", "json"])?)?;
    assert_eq!(v.as_array().unwrap().len(), 1, "one image, two names: {v}");
    h.hoist_ok(&[
        "run",
        "--name",
        "user",
        "--network",
        "none",
        "busybox",
        "true",
    ])?;
    // Another name of the same image may go; the last one may not while a container uses it.
    h.hoist_ok(&["image", "rm", "probe"])?;
    let out = h.hoist(&["image", "rm", "busybox"])?;
    assert!(
        !out.status.success() && stderr(&out).contains("used by container(s) user"),
        "{}",
        stderr(&out)
    );
    h.hoist_ok(&["rm", "user"])?;
    h.hoist_ok(&["image", "rm", "busybox"])?;
    assert_eq!(h.hoist_ok(&["image", "ls", "-o", "json"])?.trim(), "[]");
    let out = h.hoist(&["run", "--rm", "busybox", "true"])?;
    assert_eq!(code(&out), 125);
    assert!(stderr(&out).contains("not found"), "{}", stderr(&out));
    Ok(())
}

/// `--init`: orphans are reaped and signals reach the command; without it, pid 1 is the command.
#[test]
fn init_reaps_orphans_and_forwards_signals() -> Result<()> {
    let h = Host::start("h1")?;
    // The orphan `sleep 0.1` is re-parented to pid 1; `sleep 1000` as pid 1 would never reap it.
    let script = "(sleep 0.1 &); exec sleep 1000";
    let zombies = "for s in /proc/[0-9]*/stat; do cut -d' ' -f3 $s; done | grep -c Z || true";
    h.hoist_ok(&[
        "run",
        "-d",
        "--name",
        "plain",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        script,
    ])?;
    h.hoist_ok(&[
        "run",
        "-d",
        "--name",
        "inited",
        "--init",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        script,
    ])?;
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(
        h.hoist_ok(&["exec", "plain", "sh", "-c", zombies])?.trim(),
        "1",
        "the zombie stays without --init"
    );
    assert_eq!(
        h.hoist_ok(&["exec", "inited", "sh", "-c", zombies])?.trim(),
        "0",
        "--init reaps it"
    );
    // SIGTERM reaches `sleep` through the init (pid 1 itself would ignore it), so stop is quick.
    let t = Instant::now();
    h.hoist_ok(&["stop", "-t", "5", "inited"])?;
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "stopped by the forwarded SIGTERM, took {:?}",
        t.elapsed()
    );
    assert_eq!(h.inspect("inited")?["exit"]["code"], 143);
    h.hoist_ok(&["rm", "-f", "plain", "inited"])?;
    Ok(())
}
