//! The lab harness for Hoist's end-to-end tests: hosts are network namespaces on one machine, each
//! running its own `hoist-agent` with its own data dir, socket and cgroup parent; tests drive the real
//! `hoist` CLI against them, as an operator would.
//!
//! Every name carries a per-run id so parallel tests never collide, and [`Host`]'s `Drop` removes
//! everything it made — processes, cgroups, mounts, namespaces, files — also when a test fails.
//!
//! - [`controller_lab`]: controller members in network namespaces, with kill/pause/partition.
//! - [`linearizability`]: a per-key register linearizability checker for recorded histories.
//! - [`browser`]: a headless Chromium driven over the DevTools protocol (the dashboard tests).

pub mod browser;
pub mod build_lab;
pub mod cluster_lab;
pub mod controller_lab;
pub mod exposition;
pub mod fake_agent;
pub mod fake_controller;
pub mod linearizability;
pub mod raw_http;
pub mod registry_lab;

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The directory with the workspace's built binaries (`hoist`, `hoist-agent`, `hoist-probe`).
pub fn bin_dir() -> PathBuf {
    // Test executables live in <target>/<triple>/debug/deps; the binaries one level up.
    let exe = std::env::current_exe().expect("current exe");
    let deps = exe.parent().expect("deps dir");
    let dir = if deps.ends_with("deps") {
        deps.parent().expect("profile dir")
    } else {
        deps
    };
    dir.to_path_buf()
}

pub fn bin(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(
        p.exists(),
        "{} is missing: run `cargo build --workspace --bins` first",
        p.display()
    );
    p
}

/// Runs the `hoist` CLI with `HOIST_CONTROLLER=controllers`, as an operator would; answers exit
/// code, stdout and stderr.
pub fn hoist_cli(controllers: &str, args: &[&str]) -> Result<(i32, String, String)> {
    hoist_cli_as(controllers, None, args)
}

/// [`hoist_cli`] with an operator token (`HOIST_TOKEN`).
pub fn hoist_cli_as(
    controllers: &str,
    token: Option<&str>,
    args: &[&str],
) -> Result<(i32, String, String)> {
    run_hoist(hoist_command(controllers, token), args)
}

/// Runs `cmd` (a `hoist` command) with `args` and no standard input: its exit code, stdout and
/// stderr.
pub fn run_hoist(mut cmd: Command, args: &[&str]) -> Result<(i32, String, String)> {
    let out = cmd
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("run hoist")?;
    Ok((
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// The status and JSON body (`null` when it is none) of a request sent to walk the route table:
/// a stream's 200 (`/v1/events`) is taken at its headers, and a long poll that waits past the
/// client's timeout is status 0 (it got past authorization).
pub fn route_answer(
    sent: reqwest::Result<reqwest::blocking::Response>,
) -> Result<(u16, serde_json::Value)> {
    match sent {
        Ok(r) => {
            let code = r.status().as_u16();
            let body = if code == 200 && r.url().path() == "/v1/events" {
                serde_json::Value::Null
            } else {
                serde_json::from_slice(&r.bytes().unwrap_or_default())
                    .unwrap_or(serde_json::Value::Null)
            };
            Ok((code, body))
        }
        Err(e) if e.is_timeout() => Ok((0, serde_json::Value::Null)),
        Err(e) => Err(e.into()),
    }
}

/// A concrete path for a controller route's pattern (axum's syntax): unknown names for path
/// parameters, `raft_kind` for the Raft RPC's kind, a file for the dashboard's assets.
pub fn concrete_path(pattern: &str, raft_kind: &str) -> String {
    pattern
        .split('/')
        .map(|seg| match seg {
            "{*asset}" => "app.js",
            "{kind}" => raft_kind,
            s if s.starts_with('{') => "nosuch",
            s => s,
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The CLI's own files for this test process (see [`hoist_command`]).
static CLI_CONFIG: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// Removes [`CLI_CONFIG`] when the test process exits, whatever its tests did.
extern "C" fn remove_cli_config() {
    if let Some(dir) = CLI_CONFIG.get() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// The `hoist` CLI for `controllers`, with `token` as `HOIST_TOKEN` (none: no credentials but a
/// kept login). The CLI's own files (a kept login) are looked for in a directory of this test
/// process, never the user's, removed when the process exits.
pub fn hoist_command(controllers: &str, token: Option<&str>) -> Command {
    let config = CLI_CONFIG.get_or_init(|| {
        // SAFETY: registers a plain function with no arguments, as atexit(3) asks.
        unsafe { libc::atexit(remove_cli_config) };
        std::env::temp_dir().join(format!(
            "hoist-cli-config-{}-{}",
            std::process::id(),
            run_id()
        ))
    });
    let mut cmd = Command::new(bin("hoist"));
    match token {
        Some(t) => cmd.env("HOIST_TOKEN", t),
        None => cmd.env_remove("HOIST_TOKEN"),
    };
    cmd.env("HOIST_CONFIG_DIR", config)
        .env("HOIST_CONTROLLER", controllers);
    cmd
}

/// A short random id for names (netns, bridges, cgroups) in this run.
/// The binaries of past release `version` (`deploy/releases`), built once per machine by
/// `deploy/build-release.sh` under `target/releases/`.
pub fn release_bins(version: &str) -> Result<PathBuf> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new(repo.join("deploy/build-release.sh"))
        .arg(version)
        .stderr(Stdio::inherit())
        .output()
        .context("run deploy/build-release.sh")?;
    if !out.status.success() {
        bail!("deploy/build-release.sh {version} failed");
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let dir = text.lines().last().unwrap_or_default().trim();
    Ok(PathBuf::from(dir))
}

pub fn run_id() -> String {
    use rand::Rng;
    format!("{:06x}", rand::rng().random::<u32>() & 0xff_ffff)
}

/// Polls `check` until it returns `Ok(Some(v))` or the deadline passes; the error names `what`.
pub fn wait_for<T>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> Result<Option<T>>,
) -> Result<T> {
    let deadline = Instant::now() + timeout;
    let mut last_err = None;
    loop {
        match check() {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last_err = Some(e),
        }
        if Instant::now() > deadline {
            match last_err {
                Some(e) => bail!("timed out after {timeout:?} waiting for {what}: {e:#}"),
                None => bail!("timed out after {timeout:?} waiting for {what}"),
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs a command and returns its output; fails if it cannot be started.
pub fn sh(cmd: &str) -> Result<Output> {
    Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .output()
        .with_context(|| format!("run {cmd}"))
}

/// The busybox image tarball with the probe at `/bin/probe`, built once per test binary next to
/// the binaries (built under a temporary name, then renamed over the last one: the same bytes).
pub fn probe_image_tar() -> PathBuf {
    static ONCE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    ONCE.get_or_init(|| {
        let path = bin_dir().join("probe-image.tar");
        let out = bin_dir().join(format!("probe-image.tar.{}", std::process::id()));
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/busybox-image.sh");
        let probe = bin("hoist-probe");
        let status = Command::new("bash")
            .arg(&script)
            .arg(&out)
            .arg(format!("{}:/bin/probe", probe.display()))
            .stdout(Stdio::null())
            .status()
            .expect("run busybox-image.sh");
        assert!(
            status.success(),
            "building the busybox image failed (is busybox-static installed?)"
        );
        std::fs::rename(&out, &path).expect("rename the probe image into place");
        path
    })
    .clone()
}

/// One lab host: a network namespace with its own agent.
#[derive(Debug)]
pub struct Host {
    pub name: String,
    pub netns: String,
    pub dir: tempfile::TempDir,
    pub cgroup_parent: String,
    /// Extra `hoist-agent` flags (`--subnet`, `--join`...), kept for restarts.
    pub agent_args: Vec<String>,
    /// Whether `Drop` deletes the namespace (false when a lab made it).
    owns_netns: bool,
    agent: Option<Child>,
    /// The `hoist-agent` it runs (default: this build's); an upgrade test changes it.
    pub agent_bin: Option<PathBuf>,
}

impl Host {
    /// Creates the namespace (loopback up) and starts an agent in it, with the probe image imported
    /// as `probe` (and tagged `busybox`).
    pub fn start(name: &str) -> Result<Self> {
        let id = run_id();
        let netns = format!("hoist-t{id}-{name}");
        let status = Command::new("ip").args(["netns", "add", &netns]).status()?;
        if !status.success() {
            bail!("ip netns add {netns} failed");
        }
        Self::start_in(name, &netns, true, vec![], None)
    }

    /// Starts an agent with `agent_args` in the existing namespace `netns`; `owns_netns` says
    /// whether dropping the host deletes the namespace; `agent_bin` which `hoist-agent` it runs
    /// (default: this build's).
    pub fn start_in(
        name: &str,
        netns: &str,
        owns_netns: bool,
        agent_args: Vec<String>,
        agent_bin: Option<PathBuf>,
    ) -> Result<Self> {
        let id = run_id();
        let mut host = Host {
            name: name.into(),
            netns: netns.into(),
            dir: tempfile::Builder::new().prefix("hoist-test-").tempdir()?,
            cgroup_parent: format!("hoist-t{id}-{name}"),
            agent_args,
            owns_netns,
            agent: None,
            agent_bin,
        };
        host.ip(&["link", "set", "lo", "up"])?;
        host.start_agent()?;
        let tar = probe_image_tar();
        host.hoist_ok(&["image", "import", tar.to_str().unwrap_or_default(), "probe"])?;
        host.hoist_ok(&[
            "image",
            "import",
            tar.to_str().unwrap_or_default(),
            "busybox",
        ])?;
        Ok(host)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("agent.sock")
    }

    /// `ip -n NETNS ...`
    pub fn ip(&self, args: &[&str]) -> Result<()> {
        let out = Command::new("ip")
            .arg("-n")
            .arg(&self.netns)
            .args(args)
            .output()?;
        if !out.status.success() {
            bail!(
                "ip -n {} {}: {}",
                self.netns,
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    /// A command run inside this host's network namespace (only the network namespace: the agent's
    /// mounts must stay visible to the host, so no `ip netns exec`).
    pub fn command(&self, program: &Path) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net=/run/netns/{}", self.netns))
            .arg(program);
        c
    }

    pub fn start_agent(&mut self) -> Result<()> {
        let _ = std::fs::remove_file(self.socket());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("agent.log"))?;
        let program = self.agent_bin.clone().unwrap_or_else(|| bin("hoist-agent"));
        let child = self
            .command(&program)
            .arg("--data-dir")
            .arg(self.data_dir())
            .arg("--socket")
            .arg(self.socket())
            .arg("--cgroup-parent")
            .arg(&self.cgroup_parent)
            .args(&self.agent_args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("start hoist-agent")?;
        self.agent = Some(child);
        let sock = self.socket();
        // A cluster node on the overlay answers once the controllers have given it a subnet.
        wait_for("the agent's socket", Duration::from_secs(30), || {
            Ok(std::os::unix::net::UnixStream::connect(&sock)
                .ok()
                .map(|_| ()))
        })
        .map_err(|e| anyhow::anyhow!("{e}; agent log:\n{}", tail(&self.agent_log(), 30)))
    }

    /// Stops the agent as systemd does (SIGTERM, the agent alone: `KillMode=process`), waiting for
    /// it to exit; its containers keep running.
    pub fn stop_agent(&mut self) -> Result<()> {
        if let Some(mut c) = self.agent.take() {
            // SAFETY: kill(2) with the pid of a child we started and have not reaped.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(10);
            while c.try_wait()?.is_none() {
                if Instant::now() > deadline {
                    c.kill()?;
                    c.wait()?;
                    bail!(
                        "the agent of {} did not stop within 10 s of SIGTERM",
                        self.name
                    );
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Ok(())
    }

    /// The running agent's process id.
    pub fn agent_pid(&self) -> Option<u32> {
        self.agent.as_ref().map(Child::id)
    }

    /// `kill -9` the agent (containers must survive).
    pub fn kill_agent(&mut self) -> Result<()> {
        if let Some(mut c) = self.agent.take() {
            c.kill()?;
            c.wait()?;
        }
        Ok(())
    }

    pub fn agent_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("agent.log")).unwrap_or_default()
    }

    /// Runs `hoist ARGS` against this host's agent.
    pub fn hoist(&self, args: &[&str]) -> Result<Output> {
        Command::new(bin("hoist"))
            .args(args)
            .env("HOIST_AGENT", self.socket())
            .stdin(Stdio::null())
            .output()
            .context("run hoist")
    }

    /// Runs `hoist ARGS`, requires success, returns stdout.
    pub fn hoist_ok(&self, args: &[&str]) -> Result<String> {
        let out = self.hoist(args)?;
        if !out.status.success() {
            bail!(
                "hoist {} exited {:?}\nstdout: {}\nstderr: {}\nagent log tail:\n{}",
                args.join(" "),
                out.status.code(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                tail(&self.agent_log(), 20)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `hoist inspect C` as JSON.
    pub fn inspect(&self, container: &str) -> Result<serde_json::Value> {
        let out = self.hoist_ok(&["inspect", container])?;
        let v: serde_json::Value = serde_json::from_str(&out)?;
        Ok(v[0].clone())
    }

    /// Waits until `hoist inspect C` shows the container exited; returns the inspect JSON.
    pub fn wait_exited(&self, container: &str, timeout: Duration) -> Result<serde_json::Value> {
        wait_for(&format!("container {container} to exit"), timeout, || {
            let v = self.inspect(container)?;
            Ok((v["status"] == "exited").then_some(v))
        })
    }

    /// What a container left on the host: its directory, cgroups, netns file, mounts. Empty when clean.
    pub fn leftovers(&self, id: &str) -> Vec<String> {
        let mut left = Vec::new();
        for dir in [
            self.data_dir().join("containers").join(id),
            self.data_dir().join("run").join(id),
        ] {
            if dir.exists() {
                left.push(format!("directory {}", dir.display()));
            }
        }
        if self.data_dir().join("run/netns").join(id).exists() {
            left.push("netns file".into());
        }
        for line in std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
        {
            if line.contains(id) {
                left.push(format!("mount: {line}"));
            }
        }
        for root in cgroup_roots() {
            let p = root.join(&self.cgroup_parent).join(id);
            if p.exists() {
                left.push(format!("cgroup {}", p.display()));
            }
        }
        left
    }
}

fn cgroup_roots() -> Vec<PathBuf> {
    let unified = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    if unified {
        return vec![PathBuf::from("/sys/fs/cgroup")];
    }
    ["memory", "cpu", "cpuacct", "pids", "devices"]
        .iter()
        .map(|c| Path::new("/sys/fs/cgroup").join(c))
        .filter(|p| p.exists())
        .collect()
}

pub fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.kill_agent();
        // Containers and their supervisors: everything in this host's cgroups.
        for root in cgroup_roots() {
            let parent = root.join(&self.cgroup_parent);
            for _ in 0..50 {
                let mut any = false;
                for entry in std::fs::read_dir(&parent).into_iter().flatten().flatten() {
                    if !entry.path().is_dir() {
                        continue;
                    }
                    for pid in std::fs::read_to_string(entry.path().join("cgroup.procs"))
                        .unwrap_or_default()
                        .lines()
                    {
                        any = true;
                        let _ = Command::new("kill").args(["-9", pid]).status();
                    }
                }
                if !any {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        // Supervisors are not in the container cgroups: find them by their container directory.
        let data = self.data_dir();
        let _ = Command::new("pkill")
            .arg("-9")
            .arg("-f")
            .arg(format!("__(shim|exec) {}", data.display()))
            .status();
        std::thread::sleep(Duration::from_millis(50));
        for root in cgroup_roots() {
            let parent = root.join(&self.cgroup_parent);
            for entry in std::fs::read_dir(&parent).into_iter().flatten().flatten() {
                let _ = std::fs::remove_dir(entry.path());
            }
            let _ = std::fs::remove_dir(&parent);
        }
        // netns files bind-mounted by the agent, the tmpfs of its containers' volatile files,
        // then the host's namespace itself.
        for entry in std::fs::read_dir(data.join("run/netns"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let _ = nix_umount(&entry.path());
        }
        let _ = nix_umount(&data.join("run"));
        if self.owns_netns {
            let _ = Command::new("ip")
                .args(["netns", "del", &self.netns])
                .status();
        }
    }
}

fn nix_umount(p: &Path) -> std::io::Result<()> {
    let c =
        std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).map_err(std::io::Error::other)?;
    // SAFETY: umount2 with a valid NUL-terminated path.
    if unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// A second machine on a point-to-point link to a [`Host`]: the host gets `10.77.0.1/24` on its
/// `eth0`, the peer `10.77.0.2/24`. Used to reach published ports from outside the host.
#[derive(Debug)]
pub struct Peer {
    pub netns: String,
}

pub const HOST_LAB_IP: &str = "10.77.0.1";

impl Peer {
    pub fn attach(host: &Host) -> Result<Self> {
        let netns = format!("{}-peer", host.netns);
        let status = Command::new("ip").args(["netns", "add", &netns]).status()?;
        if !status.success() {
            bail!("ip netns add {netns} failed");
        }
        let peer = Peer {
            netns: netns.clone(),
        };
        let run = |args: &[&str]| -> Result<()> {
            let out = Command::new("ip").args(args).output()?;
            if !out.status.success() {
                bail!(
                    "ip {}: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            Ok(())
        };
        run(&[
            "-n",
            &host.netns,
            "link",
            "add",
            "eth0",
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            &netns,
        ])?;
        run(&[
            "-n",
            &host.netns,
            "addr",
            "add",
            "10.77.0.1/24",
            "dev",
            "eth0",
        ])?;
        run(&["-n", &host.netns, "link", "set", "eth0", "up"])?;
        run(&["-n", &netns, "addr", "add", "10.77.0.2/24", "dev", "eth0"])?;
        run(&["-n", &netns, "link", "set", "eth0", "up"])?;
        run(&["-n", &netns, "link", "set", "lo", "up"])?;
        Ok(peer)
    }

    /// `curl URL` from the peer's network namespace: the body, if the request succeeded.
    pub fn curl(&self, url: &str) -> Option<String> {
        curl_in(&self.netns, url)
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.netns])
            .status();
    }
}

impl Host {
    /// `curl URL` from the host's network namespace (as a process on the host, not in a container).
    pub fn curl(&self, url: &str) -> Option<String> {
        curl_in(&self.netns, url)
    }
}

fn curl_in(netns: &str, url: &str) -> Option<String> {
    let out = Command::new("nsenter")
        .arg(format!("--net=/run/netns/{netns}"))
        .args(["curl", "-sf", "--max-time", "2", url])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The first regular file under `dir` that holds `needle`, for the tests that check a value
/// reaches no disk. Symlinks are not followed; a directory for which `skip` answers true is not
/// entered (a tmpfs, say).
pub fn file_holding(
    dir: &Path,
    needle: &[u8],
    skip: &mut dyn FnMut(&Path) -> bool,
) -> Result<Option<PathBuf>> {
    if skip(dir) {
        return Ok(None);
    }
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let p = entry.path();
        let kind = entry.file_type()?;
        if kind.is_dir() {
            if let Some(f) = file_holding(&p, needle, skip)? {
                return Ok(Some(f));
            }
        } else if kind.is_file() {
            if let Ok(bytes) = std::fs::read(&p) {
                if bytes.windows(needle.len()).any(|w| w == needle) {
                    return Ok(Some(p));
                }
            }
        }
    }
    Ok(None)
}
