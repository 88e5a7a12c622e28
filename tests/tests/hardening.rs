//! Container hardening, seen from inside containers (the probe) and from the host: the seccomp
//! allow-list (Docker's default profile), `--cap-add`/`--cap-drop`, `no_new_privs`, and user
//! namespaces (`--userns`: the container's root is an unprivileged id range of the host); then
//! the same fields as a cluster service's spec.

use anyhow::{ensure, Context, Result};
use hoist_tests::cluster_lab::ClusterLab;
use hoist_tests::controller_lab::serial;
use hoist_tests::{run_id, wait_for, Host};
use serde_json::{json, Value};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

/// The agent's default `--userns-range`: container id N is host id FIRST + N.
const FIRST: u32 = 1_879_048_192;
const EPERM: i64 = libc::EPERM as i64;

fn json_of(out: &str) -> Result<Value> {
    serde_json::from_str(out.trim()).with_context(|| format!("not JSON: {out:?}"))
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `/proc/PID/status`'s `Uid:` line, whitespace-normalized.
fn host_uids(pid: u64) -> Result<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .context("no Uid line")?;
    Ok(line.split_whitespace().collect::<Vec<_>>().join(" "))
}

fn owner(p: &Path) -> Result<(u32, u32)> {
    let m = std::fs::symlink_metadata(p).with_context(|| format!("stat {}", p.display()))?;
    Ok((m.uid(), m.gid()))
}

/// The agent's answer to a raw `POST /v1/containers` (status line and body), through curl on
/// its socket: what an API client gets, without the CLI's own checks.
fn post_create(h: &Host, body: &Value) -> Result<(u16, Value)> {
    let out = std::process::Command::new("curl")
        .args(["-s", "-o", "-", "-w", "\n%{http_code}", "--unix-socket"])
        .arg(h.socket())
        .args(["-H", "Content-Type: application/json", "-d"])
        .arg(body.to_string())
        .arg("http://agent/v1/containers")
        .output()
        .context("curl")?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').context("curl output")?;
    Ok((
        code.trim().parse()?,
        serde_json::from_str(body).unwrap_or(json!(body)),
    ))
}

#[test]
fn the_allow_list_blocks_what_docker_blocks_and_ordinary_work_runs() -> Result<()> {
    let h = Host::start("h1")?;
    let run = |flags: &[&str]| -> Result<Value> {
        let mut args = vec!["run", "--rm", "--network", "none"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["probe", "probe", "syscalls"]);
        json_of(&h.hoist_ok(&args)?)
    };
    let v = run(&[])?;
    for call in [
        "keyctl",
        "add_key",
        "request_key",
        "unshare_user",
        "unshare_mount",
        "mount",
        "setns",
        "bpf",
        "userfaultfd",
        "io_uring_setup",
        "socket_vsock",
    ] {
        ensure!(v[call] == EPERM, "{call} must fail with EPERM: {v}");
    }
    ensure!(
        v["clone3"] == libc::ENOSYS as i64,
        "clone3 answers ENOSYS (libc falls back to clone): {v}"
    );
    for call in [
        "socket_inet",
        "personality_query",
        "chroot",
        "ptrace_traceme",
        "getppid",
    ] {
        ensure!(v[call] == 0, "{call} must run: {v}");
    }

    // CAP_SYS_ADMIN opens the calls it guards, as under Docker: the kernel decides them then
    // (the mount and unshare succeed inside the container's own namespaces; clone3 with no
    // arguments is the kernel's EINVAL). What no capability opens stays closed.
    let admin = run(&["--cap-add", "SYS_ADMIN"])?;
    for call in ["mount", "unshare_mount", "unshare_user"] {
        ensure!(admin[call] == 0, "{call} with CAP_SYS_ADMIN: {admin}");
    }
    ensure!(admin["clone3"] == libc::EINVAL as i64, "{admin}");
    ensure!(
        admin["keyctl"] == EPERM && admin["add_key"] == EPERM,
        "{admin}"
    );
    // Dropping a default capability closes its calls too.
    let no_chroot = run(&["--cap-drop", "SYS_CHROOT"])?;
    ensure!(no_chroot["chroot"] == EPERM, "{no_chroot}");

    // Ordinary work: threads (libc's clone3 falls back to clone), a shell pipeline, an HTTP
    // server and a client over loopback, process listing, signals.
    let t = json_of(&h.hoist_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "probe",
        "probe",
        "threads",
        "16",
    ])?)?;
    ensure!(t["threads"] == 16, "{t}");
    let script = "mkdir -p /tmp/www && echo served > /tmp/www/index.html && \
        (httpd -f -p 127.0.0.1:8080 -h /tmp/www &) && \
        for i in $(seq 1 200); do wget -q -O - http://127.0.0.1:8080/ && break; usleep 20000; done; \
        printf 'b\\na\\nb\\n' | sort | uniq | tr '\\n' ' '; echo; \
        ps -o comm | grep -cx httpd; sleep 30 & kill $! && wait $! ; echo killed=$?";
    let out = h.hoist_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        script,
    ])?;
    ensure!(out == "served\na b \n1\nkilled=143\n", "{out:?}");
    Ok(())
}

#[test]
fn capabilities_follow_cap_add_and_cap_drop() -> Result<()> {
    let h = Host::start("h1")?;
    let view = |flags: &[&str]| -> Result<Value> {
        let mut args = vec!["run", "--rm", "--network", "none"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["probe", "probe", "view"]);
        json_of(&h.hoist_ok(&args)?)
    };
    let v = view(&["--cap-drop", "ALL", "--cap-add", "net_bind_service"])?;
    for set in ["cap_eff", "cap_prm", "cap_bnd"] {
        ensure!(v[set] == "0000000000000400", "{set}: {v}");
    }
    // Docker's 14 (a80425fb) without CAP_CHOWN (bit 0), with CAP_NET_ADMIN (bit 12).
    let v = view(&["--cap-add", "CAP_NET_ADMIN", "--cap-drop", "chown"])?;
    ensure!(v["cap_eff"] == "00000000a80435fa", "{v}");
    let out = h.hoist(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--cap-drop",
        "CHOWN",
        "busybox",
        "sh",
        "-c",
        "touch /tmp/f && chown 1000 /tmp/f || echo refused",
    ])?;
    let text = String::from_utf8_lossy(&out.stdout);
    ensure!(text == "refused\n", "{text:?} {}", stderr(&out));

    // Unknown names are refused by the CLI and by the agent's API, naming the field.
    let out = h.hoist(&["run", "--rm", "--cap-add", "FLY", "busybox", "true"])?;
    ensure!(
        !out.status.success() && stderr(&out).contains("unknown capability \"FLY\""),
        "{}",
        stderr(&out)
    );
    let (code, body) = post_create(&h, &json!({"image": "busybox", "cap_drop": ["NET_ADMN"]}))?;
    ensure!(code == 400, "{code} {body}");
    ensure!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("cap_drop: unknown capability \"NET_ADMN\"")),
        "{body}"
    );
    ensure!(
        h.hoist_ok(&["ps", "-a", "-q"])?.trim().is_empty(),
        "a refused create leaves nothing"
    );
    Ok(())
}

#[test]
fn no_new_privileges_is_on_unless_turned_off() -> Result<()> {
    let h = Host::start("h1")?;
    // A setuid-root copy of the probe, run by user 1000 through `hoist exec`: with no_new_privs
    // its effective uid stays 1000; without, the setuid bit makes it 0.
    let id = run_id();
    let mut effective = Vec::new();
    for (flag, nnp) in [(None, "1"), (Some("--no-new-privileges=false"), "0")] {
        let name = format!("nnp-{id}-{nnp}");
        let mut args = vec!["run", "-d", "--name", &name, "--network", "none"];
        args.extend(flag);
        args.extend_from_slice(&[
            "probe",
            "sh",
            "-c",
            "cp /bin/probe /bin/probe-suid && chmod 4755 /bin/probe-suid && exec sleep 1000",
        ]);
        h.hoist_ok(&args)?;
        wait_for("the setuid copy", Duration::from_secs(10), || {
            let out = h.hoist(&["exec", &name, "test", "-u", "/bin/probe-suid"])?;
            Ok(out.status.success().then_some(()))
        })?;
        let own = json_of(&h.hoist_ok(&["exec", &name, "probe", "view"])?)?;
        ensure!(own["no_new_privs"] == nnp, "{flag:?}: {own}");
        let v = json_of(&h.hoist_ok(&["exec", "-u", "1000", &name, "/bin/probe-suid", "view"])?)?;
        let uids: Vec<String> = v["uid"]
            .as_str()
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_string)
            .collect();
        ensure!(uids.len() == 4 && uids[0] == "1000", "{v}");
        effective.push(uids[1].clone());
        h.hoist_ok(&["rm", "-f", &name])?;
    }
    ensure!(effective == ["1000", "0"], "effective uids: {effective:?}");
    Ok(())
}

#[test]
fn a_user_namespaced_containers_root_is_unprivileged_on_the_host() -> Result<()> {
    let h = Host::start("h1")?;
    let id = run_id();
    let map = format!("0 {FIRST} 65536");

    // From inside: root, with Docker's capabilities and filter, in a namespace mapping 0 to
    // the range.
    // The probe in a `--userns --network none` container, its JSON answer.
    let probe_userns_none = |args: &[&str]| -> Result<Value> {
        let mut run = vec![
            "run",
            "--rm",
            "--userns",
            "--network",
            "none",
            "probe",
            "probe",
        ];
        run.extend_from_slice(args);
        json_of(&h.hoist_ok(&run)?)
    };
    let v = probe_userns_none(&["view"])?;
    let squeeze = |s: &Value| {
        s.as_str()
            .unwrap_or_default()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    ensure!(
        squeeze(&v["uid_map"]) == map && squeeze(&v["gid_map"]) == map,
        "{v}"
    );
    ensure!(squeeze(&v["uid"]) == "0 0 0 0", "{v}");
    ensure!(
        v["cap_eff"] == "00000000a80425fb" && v["seccomp"] == "2",
        "{v}"
    );
    for (call, denied) in v["denied"].as_object().context("denied")? {
        ensure!(denied == true, "{call} must be denied: {v}");
    }

    // From the host: a running container's processes are the range's ids, the files it writes
    // to volumes and its writable layer are the range's, and root inside gets nothing of the
    // host's root.
    let (name, vol) = (format!("uns-{id}"), format!("uns-vol-{id}"));
    let made = h.dir.path().join("made-by-agent");
    let secret = h.dir.path().join("host-secret");
    std::fs::write(&secret, "host root only\n")?;
    std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    let script = "echo v > /state/by-root && chmod 1777 /state && echo b > /bind/by-root && \
        echo 'extra:x:7:7::/:/bin/false' >> /etc/passwd && touch /new-in-root && \
        touch /ready && exec sleep 1000";
    let binds = [
        format!("{vol}:/state"),
        format!("{}:/bind", made.display()),
        format!("{}:/host-secret", secret.display()),
    ];
    h.hoist_ok(&[
        "run", "-d", "--init", "--userns", "--name", &name, "-v", &binds[0], "-v", &binds[1], "-v",
        &binds[2], "busybox", "sh", "-c", script,
    ])?;
    wait_for("the container's files", Duration::from_secs(10), || {
        let out = h.hoist(&["exec", &name, "test", "-e", "/ready"])?;
        Ok(out.status.success().then_some(()))
    })?;
    let info = h.inspect(&name)?;
    let pid = info["pid"].as_u64().context("pid")?;
    ensure!(
        host_uids(pid)? == format!("{FIRST} {FIRST} {FIRST} {FIRST}"),
        "pid 1 (the init) on the host: {}",
        host_uids(pid)?
    );
    let host_map = std::fs::read_to_string(format!("/proc/{pid}/uid_map"))?;
    ensure!(host_map.split_whitespace().collect::<Vec<_>>().join(" ") == map);
    let volume = h.data_dir().join("named-volumes").join(&vol).join("_data");
    ensure!(
        owner(&volume.join("by-root"))? == (FIRST, FIRST),
        "named volume file"
    );
    ensure!(
        owner(&made)? == (FIRST, FIRST),
        "the bind source the agent made"
    );
    ensure!(owner(&made.join("by-root"))? == (FIRST, FIRST), "bind file");
    let cid = info["id"].as_str().context("id")?;
    let upper = h.data_dir().join("containers").join(cid).join("upper");
    ensure!(
        owner(&upper.join("etc/passwd"))? == (FIRST, FIRST),
        "copied-up file"
    );
    ensure!(
        owner(&upper.join("new-in-root"))? == (FIRST, FIRST),
        "new file"
    );
    let passwd = std::fs::read_to_string(upper.join("etc/passwd"))?;
    ensure!(passwd.starts_with("root:x:0:0") && passwd.ends_with("extra:x:7:7::/:/bin/false\n"));

    // An exec'd process joins the namespace too; a user inside is the range's id plus its own.
    let out = h.hoist_ok(&["exec", &name, "cat", "/proc/self/uid_map"])?;
    ensure!(
        out.split_whitespace().collect::<Vec<_>>().join(" ") == map,
        "{out:?}"
    );
    h.hoist_ok(&["exec", "-u", "1000:1000", &name, "touch", "/state/by-user"])?;
    ensure!(owner(&volume.join("by-user"))? == (FIRST + 1000, FIRST + 1000));
    // Root inside cannot read or write a host root's file, even mounted read-write.
    let out = h.hoist(&[
        "exec",
        &name,
        "sh",
        "-c",
        "cat /host-secret; echo x >> /host-secret",
    ])?;
    let err = stderr(&out);
    ensure!(
        !out.status.success() && err.matches("Permission denied").count() == 2,
        "{err}"
    );
    ensure!(std::fs::read_to_string(&secret)? == "host root only\n");

    // The writable layer's host ids are mapped back for commit, diff and export: the image
    // made from the container has root's files as root's, whatever namespace runs it.
    let diff = h.hoist_ok(&["diff", &name])?;
    ensure!(
        diff.lines().any(|l| l == "A /new-in-root") && diff.lines().any(|l| l == "C /etc/passwd"),
        "{diff}"
    );
    let image = format!("uns-commit-{id}");
    h.hoist_ok(&["commit", &name, &image])?;
    let out = h.hoist_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        &image,
        "stat",
        "-c",
        "%u:%g %n",
        "/new-in-root",
        "/etc/passwd",
    ])?;
    ensure!(out == "0:0 /new-in-root\n0:0 /etc/passwd\n", "{out:?}");
    let tar = h.hoist(&["export", &name])?;
    ensure!(tar.status.success(), "{}", stderr(&tar));
    let mut archive = tar::Archive::new(tar.stdout.as_slice());
    let mut owners = std::collections::BTreeMap::new();
    for entry in archive.entries()? {
        let entry = entry?;
        let path = entry.path()?.display().to_string();
        if ["new-in-root", "etc/passwd", "bin/busybox"].contains(&path.as_str()) {
            owners.insert(path, (entry.header().uid()?, entry.header().gid()?));
        }
    }
    ensure!(
        owners.len() == 3 && owners.values().all(|o| *o == (0, 0)),
        "{owners:?}"
    );
    h.hoist_ok(&["rm", "-f", &name])?;
    h.hoist_ok(&["image", "rm", &image])?;
    h.hoist_ok(&["volume", "rm", &vol])?;

    // The network still works for root: a port below 1024 on the bridge, read-only roots too.
    let b = json_of(&h.hoist_ok(&["run", "--rm", "--userns", "probe", "probe", "bind", "80"])?)?;
    ensure!(b["bound"] == true, "{b}");
    // And in the namespace a `--network none` container makes for itself.
    let b = probe_userns_none(&["bind", "80"])?;
    ensure!(b["bound"] == true, "{b}");
    let out = h.hoist(&[
        "run",
        "--rm",
        "--userns",
        "--read-only",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "touch /x || echo read-only",
    ])?;
    ensure!(
        String::from_utf8_lossy(&out.stdout) == "read-only\n",
        "{}",
        stderr(&out)
    );

    // What cannot work is refused up front, by name.
    let out = h.hoist(&[
        "run",
        "--rm",
        "--userns",
        "--network",
        "host",
        "busybox",
        "true",
    ])?;
    ensure!(
        !out.status.success() && stderr(&out).contains("userns:"),
        "{}",
        stderr(&out)
    );
    let out = h.hoist(&["run", "--rm", "--userns", "-u", "70000", "busybox", "true"])?;
    ensure!(
        !out.status.success()
            && stderr(&out).contains("user 70000 is outside the user namespace's 65536 ids"),
        "{}",
        stderr(&out)
    );
    ensure!(
        h.hoist_ok(&["ps", "-a", "-q"])?.trim().is_empty(),
        "nothing left"
    );
    Ok(())
}

#[test]
fn what_a_containers_root_writes_is_out_of_reach_of_the_hosts_users() -> Result<()> {
    let h = Host::start("h1")?;
    // Root in an ordinary container plants a setuid-root copy of the probe in its writable
    // layer (an image's own layers may hold setuid files too)...
    let name = format!("suid-{}", run_id());
    h.hoist_ok(&[
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "none",
        "probe",
        "sh",
        "-c",
        "cp /bin/probe /p && chmod 4755 /p && touch /ready && exec sleep 1000",
    ])?;
    wait_for("the setuid copy", Duration::from_secs(10), || {
        let out = h.hoist(&["exec", &name, "test", "-e", "/ready"])?;
        Ok(out.status.success().then_some(()))
    })?;
    let id = h.inspect(&name)?["id"].as_str().context("id")?.to_string();
    let planted = h.data_dir().join("containers").join(&id).join("upper/p");
    let m = std::fs::metadata(&planted)?;
    ensure!(
        m.uid() == 0 && m.mode() & 0o7777 == 0o4755,
        "{:o}",
        m.mode()
    );
    // ...which no other user of the host can run (it would be root): the data dir is the
    // agent's alone. (What it is asked to do is harmless on the host, should it run: the probe's
    // `view` tries a mount.)
    let mode = std::fs::metadata(h.data_dir())?.mode() & 0o777;
    ensure!(mode == 0o700, "the data dir's mode is {mode:o}");
    let as_nobody = |path: &Path| {
        std::process::Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "sh",
                "-c",
            ])
            .arg("exec \"$0\" threads 1")
            .arg(path)
            .output()
    };
    let out = as_nobody(&planted)?;
    ensure!(
        !out.status.success() && stderr(&out).contains("Permission denied"),
        "a host user ran it: {} {}",
        String::from_utf8_lossy(&out.stdout),
        stderr(&out)
    );
    h.hoist_ok(&["rm", "-f", &name])?;
    Ok(())
}

#[test]
fn a_service_runs_with_its_hardening_fields() -> Result<()> {
    let _g = serial();
    let mut lab = ClusterLab::start(1, &[])?;
    lab.add_agent("a1", &[])?;
    let id = run_id();
    let (name, vol) = (format!("hard{id}"), format!("hard-{id}"));
    let spec = json!({
        "name": name,
        "image": "probe",
        "command": ["sh", "-c", "/bin/probe view > /state/tmp.json && mv /state/tmp.json /state/view.json; exec sleep 1000"],
        "cap_drop": ["ALL"],
        "cap_add": ["NET_BIND_SERVICE", "DAC_OVERRIDE"],
        "no_new_privileges": false,
        "userns": true,
        "mounts": [{"type": "volume", "source": vol, "target": "/state"}],
    });
    let (code, out, err) = lab.apply(&spec, &[])?;
    ensure!(code == 0, "apply: {out} {err}");
    let view = lab.agents[0]
        .host
        .data_dir()
        .join("named-volumes")
        .join(&vol)
        .join("_data/view.json");
    let v: Value = lab.wait_until("the replica's view", Duration::from_secs(60), || {
        let text = std::fs::read_to_string(&view).unwrap_or_default();
        Ok((serde_json::from_str(text.trim()).ok(), format!("{text:?}")))
    })?;
    // NET_BIND_SERVICE (bit 10) and DAC_OVERRIDE (bit 1) only.
    ensure!(v["cap_eff"] == "0000000000000402", "{v}");
    ensure!(v["no_new_privs"] == "0" && v["seccomp"] == "2", "{v}");
    let map: Vec<&str> = v["uid_map"]
        .as_str()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    ensure!(map == ["0", &FIRST.to_string(), "65536"], "{v}");
    ensure!(
        owner(&view)? == (FIRST, FIRST),
        "written by the replica's root"
    );
    // The spec keeps its fields: inspect shows them as applied.
    let s = lab.get(&format!("/v1/services/{name}"))?;
    let spec_back = &s["spec"];
    ensure!(
        spec_back["userns"] == true
            && spec_back["no_new_privileges"] == false
            && spec_back["cap_drop"] == json!(["ALL"]),
        "{s}"
    );
    // A bad capability is refused at apply, naming the field, and changes nothing.
    let bad = json!({"name": format!("bad{id}"), "image": "probe", "cap_add": ["SYS_ADMN"]});
    let (code, out, err) = lab.apply(&bad, &[])?;
    ensure!(
        code != 0 && format!("{out}{err}").contains("cap_add[0]"),
        "{out} {err}"
    );
    lab.hoist_ok(&["service", "rm", &name])?;
    Ok(())
}
