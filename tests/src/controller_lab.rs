//! A lab of controller hosts: each member of a `hoist-controller` cluster runs in its own network
//! namespace on a per-run bridge, so tests can kill (`-9`), pause (`STOP`/`CONT`), partition (link
//! down) and restart members. Names carry a per-run id; `Drop` kills every process and deletes the
//! namespaces and the bridge, also when a test fails.

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The port every member listens on inside its namespace.
pub const PORT: u16 = 7070;

/// The `hoist-controller` binary (or `HOIST_CONTROLLER_BIN`).
pub fn controller_bin() -> PathBuf {
    match std::env::var("HOIST_CONTROLLER_BIN") {
        Ok(p) => PathBuf::from(p),
        Err(_) => crate::bin("hoist-controller"),
    }
}

fn run(cmd: &str) -> Result<()> {
    let out = crate::sh(cmd)?;
    if !out.status.success() {
        bail!("{cmd}: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

/// Polls `check` every 20 ms until it yields a value or `timeout` passes.
pub fn wait_for<T>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> Result<T> {
    crate::wait_for(what, timeout, || Ok(check()))
}

/// Extra flags passed to every member (none: the binary's defaults).
#[derive(Debug, Clone, Default)]
pub struct MemberFlags(pub Vec<String>);

#[derive(Debug)]
struct Host {
    ns: String,
    veth: String,
    ip: String,
    data: PathBuf,
    child: Option<Child>,
    id: u64,
    /// The `hoist-controller` it runs (default: [`controller_bin`]); an upgrade test changes it.
    bin: Option<PathBuf>,
}

/// A member's own disk (see [`Lab::own_disk`]). `Drop` thaws and detaches it, also when a test
/// fails; declare it after the lab so that it is dropped first.
#[derive(Debug)]
pub struct Disk {
    mount: PathBuf,
}

impl Disk {
    /// Stalls every write to the disk (`fsfreeze`) until [`Disk::thaw`]: a real disk stall, as a
    /// shared or failing disk makes one.
    pub fn freeze(&self) -> Result<()> {
        run(&format!("fsfreeze --freeze {}", self.mount.display()))
    }

    pub fn thaw(&self) -> Result<()> {
        run(&format!("fsfreeze --unfreeze {}", self.mount.display()))
    }
}

impl Drop for Disk {
    fn drop(&mut self) {
        let _ = self.thaw();
        // Lazy: the member may still hold files open; the loop device goes with its last user.
        let _ = run(&format!("umount -l {}", self.mount.display()));
    }
}

/// The lab: a bridge with the test's address, and one namespace per member.
#[derive(Debug)]
pub struct Lab {
    pub run_id: String,
    bridge: String,
    subnet: u8,
    hosts: Vec<Host>,
    dir: tempfile::TempDir,
    pub flags: MemberFlags,
    http: reqwest::blocking::Client,
    /// The first admin token, once a leader wrote it (see [`Lab::token`]).
    token: std::sync::Mutex<Option<String>>,
}

fn free_subnet() -> Result<u8> {
    let out = Command::new("ip")
        .args(["-o", "-4", "addr", "show"])
        .output()?;
    let used = String::from_utf8_lossy(&out.stdout).to_string();
    for _ in 0..64 {
        let s = (rand::random::<u8>() % 250) + 2;
        if !used.contains(&format!("10.78.{s}.")) {
            return Ok(s);
        }
    }
    bail!("no free 10.78.x.0/24 subnet")
}

impl Lab {
    /// A lab with `n` hosts (no members started yet).
    pub fn new(n: usize) -> Result<Lab> {
        let run_id = format!("{:06x}", rand::random::<u32>() & 0xff_ffff);
        let subnet = free_subnet()?;
        let bridge = format!("hc{run_id}b");
        run(&format!("ip link add {bridge} type bridge && ip addr add 10.78.{subnet}.1/24 dev {bridge} && ip link set {bridge} up"))?;
        hoist_common::init_tls();
        let http = reqwest::blocking::Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_millis(1000))
            .timeout(Duration::from_secs(5))
            .build()?;
        let mut lab = Lab {
            run_id,
            bridge,
            subnet,
            hosts: vec![],
            dir: tempfile::tempdir()?,
            flags: MemberFlags::default(),
            http,
            token: std::sync::Mutex::new(None),
        };
        for _ in 0..n {
            lab.add_host()?;
        }
        Ok(lab)
    }

    /// Adds a host (namespace + veth on the bridge); answers its index.
    pub fn add_host(&mut self) -> Result<usize> {
        let i = self.hosts.len();
        let ns = format!("hoist-c{}-h{}", self.run_id, i + 1);
        let veth = format!("hc{}h{}", self.run_id, i + 1);
        let ip = format!("10.78.{}.{}", self.subnet, 11 + i);
        run(&format!(
            "ip netns add {ns} && ip link add {veth} type veth peer name eth0 netns {ns} && \
             ip link set {veth} master {b} up && ip -n {ns} addr add {ip}/24 dev eth0 && \
             ip -n {ns} link set eth0 up && ip -n {ns} link set lo up",
            b = self.bridge
        ))?;
        let data = self.dir.path().join(format!("h{}", i + 1));
        self.hosts.push(Host {
            ns,
            veth,
            ip,
            data,
            child: None,
            id: i as u64 + 1,
            bin: None,
        });
        Ok(i)
    }

    /// The test's own address on the lab bridge (`10.78.S.1`): services the test runs in-process
    /// (a scripted controller) listen here.
    pub fn bridge_ip(&self) -> String {
        format!("10.78.{}.1", self.subnet)
    }

    /// The network namespace of host `i`.
    pub fn netns(&self, i: usize) -> &str {
        &self.hosts[i].ns
    }

    /// The lab address of host `i`.
    pub fn ip(&self, i: usize) -> &str {
        &self.hosts[i].ip
    }

    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    /// `IP:PORT` of host `i`.
    pub fn addr(&self, i: usize) -> String {
        format!("{}:{PORT}", self.hosts[i].ip)
    }

    /// The member id host `i` is started with.
    pub fn id(&self, i: usize) -> u64 {
        self.hosts[i].id
    }

    /// The log file of host `i`'s member.
    pub fn log_path(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("h{}.log", i + 1))
    }

    pub fn data_dir(&self, i: usize) -> &Path {
        &self.hosts[i].data
    }

    /// The directory holding every member's data dir and log.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Starts host `i`'s member with `extra` flags (`--bootstrap`, `--join ADDR`, or nothing to resume).
    pub fn start(&mut self, i: usize, extra: &[&str]) -> Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(i))?;
        let h = &self.hosts[i];
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &h.ns])
            .arg(h.bin.clone().unwrap_or_else(controller_bin))
            .arg("--data-dir")
            .arg(&h.data)
            .args([
                "--listen",
                &format!("{}:{PORT}", h.ip),
                "--id",
                &h.id.to_string(),
            ])
            .args(&self.flags.0)
            .args(extra)
            .env("HOIST_LOG", "info,openraft=error")
            // For --join: adding a member is an admin's act.
            .env("HOIST_TOKEN", self.token().unwrap_or_default())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        let child = cmd.spawn().context("spawn hoist-controller")?;
        self.hosts[i].child = Some(child);
        let addr = self.addr(i);
        wait_for(
            &format!("{addr} to answer"),
            Duration::from_secs(10),
            || matches!(self.get(i, "/v1/health"), Ok((200, _))).then_some(()),
        )?;
        if extra.contains(&"--bootstrap") && self.hosts[i].bin.is_none() {
            // This build makes the first admin token: every other request needs it. A data dir
            // bootstrapped anew (wiped) makes a new one.
            self.forget_token();
            self.wait_token(Duration::from_secs(15))?;
        }
        Ok(())
    }

    /// The first admin token, once a leader has written it to its data dir (a cluster below
    /// format 2 has none, and takes requests without it).
    pub fn token(&self) -> Option<String> {
        let mut cached = self.token.lock().unwrap_or_else(|e| e.into_inner());
        if cached.is_none() {
            *cached = self.hosts.iter().find_map(|h| {
                let t = std::fs::read_to_string(h.data.join("admin.token")).ok()?;
                Some(t.trim().to_string()).filter(|t| !t.is_empty())
            });
        }
        cached.clone()
    }

    /// Reads the first admin token from the members' data dirs, from any thread: for a writer
    /// that runs across an upgrade to format 2 (when the token appears).
    pub fn token_source(&self) -> impl Fn() -> Option<String> + Send + Sync + 'static {
        let dirs: Vec<PathBuf> = self.hosts.iter().map(|h| h.data.clone()).collect();
        move || {
            dirs.iter().find_map(|d| {
                let t = std::fs::read_to_string(d.join("admin.token")).ok()?;
                Some(t.trim().to_string()).filter(|t| !t.is_empty())
            })
        }
    }

    /// Uses `token` from now on (a restored snapshot brings its own tokens back).
    pub fn set_token(&self, token: Option<String>) {
        *self.token.lock().unwrap_or_else(|e| e.into_inner()) = token;
    }

    /// Forgets the token read so far (the cluster was made anew): the next request reads it
    /// again.
    pub fn forget_token(&self) {
        *self.token.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// A blocking client builder that sends the lab's admin token (when there is one) on every
    /// request, for tests that make their own clients.
    pub fn client_builder(&self) -> reqwest::blocking::ClientBuilder {
        hoist_common::init_tls();
        let b = reqwest::blocking::Client::builder().no_proxy();
        match self.token() {
            Some(t) => b.default_headers(auth_headers(&t)),
            None => b,
        }
    }

    /// Waits until member `i` serves TLS with a certificate under the cluster's root (it signs
    /// its own once the cluster has a CA); answers the root's digest.
    pub fn wait_tls(&self, i: usize, timeout: Duration) -> Result<String> {
        wait_for(&format!("member {i} serving TLS"), timeout, || {
            let (code, ca) = self.get(i, "/v1/cluster/ca").ok()?;
            let digest = ca["digest"].as_str().filter(|_| code == 200)?.to_string();
            let config = hoist_transport::tls::client_config(
                hoist_transport::tls::Trust::Pinned(digest.clone()),
                None,
            )
            .ok()?;
            let http = reqwest::blocking::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(2))
                .tls_backend_preconfigured(config)
                .build()
                .ok()?;
            let r = http
                .get(format!("https://{}/v1/health", self.addr(i)))
                .send()
                .ok()?;
            r.status().is_success().then_some(digest)
        })
    }

    /// A client that speaks for member `i`: its own certificate and key from its data dir
    /// (`tls/member.{crt,key}`), trusting the root at the end of that chain.
    pub fn member_client(&self, i: usize) -> Result<reqwest::blocking::Client> {
        let dir = self.data_dir(i).join("tls");
        let chain = std::fs::read_to_string(dir.join("member.crt"))?;
        let key = std::fs::read_to_string(dir.join("member.key"))?;
        let certs = hoist_transport::tls::certs_from_pem(&chain).map_err(anyhow::Error::msg)?;
        let root = certs.last().context("no root in the chain")?.clone();
        let identity =
            hoist_transport::tls::Identity::from_pem(&chain, &key).map_err(anyhow::Error::msg)?;
        let config = hoist_transport::tls::client_config(
            hoist_transport::tls::Trust::Roots(vec![root]),
            Some(identity),
        )
        .map_err(anyhow::Error::msg)?;
        Ok(reqwest::blocking::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(5))
            .tls_backend_preconfigured(config)
            .build()?)
    }

    /// Waits for the first admin token.
    pub fn wait_token(&self, timeout: Duration) -> Result<String> {
        wait_for("the first admin token", timeout, || self.token())
    }

    /// A request to host `i` with the lab's credentials.
    fn request(
        &self,
        method: reqwest::Method,
        i: usize,
        path: &str,
    ) -> reqwest::blocking::RequestBuilder {
        let r = self
            .http
            .request(method, format!("http://{}{path}", self.addr(i)));
        match self.token() {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    /// Starts a 3- (or n-) member cluster: host 0 bootstraps, the others join through it.
    pub fn start_cluster(&mut self, n: usize) -> Result<()> {
        self.start(0, &["--bootstrap"])?;
        let seed = self.addr(0);
        for i in 1..n {
            self.start(i, &["--join", &seed])?;
        }
        self.wait_voters(n, Duration::from_secs(30))
    }

    /// Waits until every running member lists `n` voters and all have applied the same entries
    /// (so the membership change is committed, not just proposed).
    pub fn wait_voters(&self, n: usize, timeout: Duration) -> Result<()> {
        wait_for(&format!("{n} committed voters"), timeout, || {
            for i in (0..self.hosts.len()).filter(|&i| self.is_running(i)) {
                let st = self.status(i).ok()?;
                let voters = st["members"]
                    .as_array()?
                    .iter()
                    .filter(|m| m["voter"] == true)
                    .count();
                if voters != n {
                    return None;
                }
            }
            Some(())
        })?;
        self.wait_caught_up(timeout)
    }

    /// Waits until every running member has applied what the most advanced one had applied when
    /// the wait began: the members caught up, even while writes go on (comparing state hashes
    /// needs a quiet cluster, see [`Lab::wait_converged`]).
    pub fn wait_caught_up(&self, timeout: Duration) -> Result<()> {
        let applied = |i: usize| {
            self.status(i)
                .ok()
                .and_then(|st| st["last_applied"].as_u64())
        };
        let running: Vec<usize> = (0..self.hosts.len())
            .filter(|&i| self.is_running(i))
            .collect();
        let target = running
            .iter()
            .filter_map(|&i| applied(i))
            .max()
            .unwrap_or(0);
        wait_for(
            &format!("every member to apply index {target}"),
            timeout,
            || {
                running
                    .iter()
                    .all(|&i| applied(i).is_some_and(|a| a >= target))
                    .then_some(())
            },
        )
    }

    fn pid(&self, i: usize) -> Result<i32> {
        let c = self.hosts[i]
            .child
            .as_ref()
            .ok_or_else(|| anyhow!("host {i} runs no member"))?;
        Ok(c.id() as i32)
    }

    /// Whether member `i`'s process may have transparent huge pages (`THP_enabled` in its
    /// `/proc/PID/status`).
    pub fn huge_pages(&self, i: usize) -> Result<bool> {
        let pid = self.pid(i)?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let line = status
            .lines()
            .find_map(|l| l.strip_prefix("THP_enabled:"))
            .ok_or_else(|| anyhow!("no THP_enabled in /proc/{pid}/status"))?;
        Ok(line.trim() == "1")
    }

    fn signal(&self, i: usize, sig: i32) -> Result<()> {
        let pid = self.pid(i)?;
        // SAFETY: kill(2) with a pid of a child we started and have not reaped.
        let rc = unsafe { libc::kill(pid, sig) };
        if rc != 0 {
            bail!("kill({pid}, {sig}): {}", std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// `kill -9` host `i`'s member and reap it.
    pub fn kill9(&mut self, i: usize) -> Result<()> {
        if self.hosts[i].child.is_none() {
            return Ok(());
        }
        let _ = self.signal(i, libc::SIGCONT);
        self.signal(i, libc::SIGKILL)?;
        if let Some(mut c) = self.hosts[i].child.take() {
            let _ = c.wait();
        }
        Ok(())
    }

    /// Runs `bin` as host `i`'s member from its next start (an older or newer build).
    pub fn set_bin(&mut self, i: usize, bin: PathBuf) {
        self.hosts[i].bin = Some(bin);
    }

    /// Stops host `i`'s member as an operator or systemd does: SIGTERM, then SIGKILL after
    /// `grace` (systemd's `TimeoutStopSec`). Answers whether it exited by itself.
    pub fn stop(&mut self, i: usize, grace: Duration) -> Result<bool> {
        if self.hosts[i].child.is_none() {
            return Ok(true);
        }
        self.signal(i, libc::SIGTERM)?;
        let mut c = self.hosts[i].child.take().expect("checked");
        let deadline = std::time::Instant::now() + grace;
        while c.try_wait()?.is_none() {
            if std::time::Instant::now() > deadline {
                let _ = c.kill();
                let _ = c.wait();
                return Ok(false);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(true)
    }

    /// Waits up to `timeout` for host `i`'s member to exit by itself; answers whether it exited
    /// with success.
    pub fn wait_exit(&mut self, i: usize, timeout: Duration) -> Result<bool> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let c = self.hosts[i]
                .child
                .as_mut()
                .ok_or_else(|| anyhow!("host {i} runs no member"))?;
            if let Some(status) = c.try_wait()? {
                self.hosts[i].child = None;
                return Ok(status.success());
            }
            if std::time::Instant::now() > deadline {
                bail!("member {} still runs after {timeout:?}", i + 1);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn is_running(&self, i: usize) -> bool {
        self.hosts[i].child.is_some()
    }

    /// Freezes host `i`'s member (`SIGSTOP`).
    pub fn pause(&self, i: usize) -> Result<()> {
        self.signal(i, libc::SIGSTOP)
    }

    /// Thaws host `i`'s member (`SIGCONT`).
    pub fn resume(&self, i: usize) -> Result<()> {
        self.signal(i, libc::SIGCONT)
    }

    /// Cuts host `i` off the bridge (from peers and from the test).
    pub fn cut(&self, i: usize) -> Result<()> {
        run(&format!("ip link set {} down", self.hosts[i].veth))
    }

    /// Reconnects host `i`.
    pub fn heal(&self, i: usize) -> Result<()> {
        run(&format!("ip link set {} up", self.hosts[i].veth))
    }

    /// Deletes host `i`'s data dir (its member must be stopped).
    pub fn wipe(&self, i: usize) -> Result<()> {
        let d = &self.hosts[i].data;
        if d.exists() {
            std::fs::remove_dir_all(d)?;
        }
        Ok(())
    }

    /// Puts host `i`'s data dir on a disk of its own (a loop-mounted ext4 image), so the test can
    /// stall its writes with [`Disk::freeze`]. Call before the member first starts.
    pub fn own_disk(&self, i: usize) -> Result<Disk> {
        let data = &self.hosts[i].data;
        let image = self.dir.path().join(format!("h{}.img", i + 1));
        std::fs::create_dir_all(data)?;
        run(&format!(
            "truncate -s 64M {img} && mkfs.ext4 -q -F {img} && mount -o loop {img} {data}",
            img = image.display(),
            data = data.display()
        ))?;
        Ok(Disk {
            mount: data.clone(),
        })
    }

    /// `GET /v1/cluster/status` of host `i`.
    pub fn status(&self, i: usize) -> Result<Value> {
        let (code, v) = self.get(i, "/v1/cluster/status")?;
        if code != 200 {
            bail!("status of {}: HTTP {code}", self.addr(i));
        }
        Ok(v)
    }

    /// The host index of the leader, as the running members agree.
    pub fn leader(&self) -> Option<usize> {
        for i in 0..self.hosts.len() {
            if !self.is_running(i) {
                continue;
            }
            if let Ok(st) = self.status(i) {
                if st["role"] == "leader" {
                    return Some(i);
                }
            }
        }
        None
    }

    /// Waits until a leader is elected; answers its host index.
    pub fn wait_leader(&self, timeout: Duration) -> Result<usize> {
        wait_for("a leader", timeout, || self.leader())
    }

    /// Waits until every running member reports the same `last_applied` and state hash; answers the hash.
    pub fn wait_converged(&self, timeout: Duration) -> Result<String> {
        wait_for("members to converge on one state hash", timeout, || {
            let mut seen: Option<(Value, Value)> = None;
            for i in (0..self.hosts.len()).filter(|&i| self.is_running(i)) {
                let st = self.status(i).ok()?;
                let pair = (st["last_applied"].clone(), st["state_hash"].clone());
                match &seen {
                    None => seen = Some(pair),
                    Some(p) if *p == pair => {}
                    Some(_) => return None,
                }
            }
            seen.and_then(|(_, h)| h.as_str().map(String::from))
        })
        .map_err(|e| {
            // Say what each member had, so that a divergence (same index, other hash) can be
            // told from a cluster that never stops writing.
            let mut seen = String::new();
            for i in (0..self.hosts.len()).filter(|&i| self.is_running(i)) {
                if let Ok(st) = self.status(i) {
                    seen.push_str(&format!(
                        "\n  member {i}: role {} applied {} hash {}",
                        st["role"], st["last_applied"], st["state_hash"]
                    ));
                }
            }
            anyhow::anyhow!("{e}{seen}\n{}", self.logs_tail())
        })
    }

    /// A GET to host `i`: status code and JSON body (`Null` when not JSON).
    pub fn get(&self, i: usize, path: &str) -> Result<(u16, Value)> {
        let r = self.request(reqwest::Method::GET, i, path).send()?;
        let code = r.status().as_u16();
        let body = r.bytes()?;
        Ok((code, serde_json::from_slice(&body).unwrap_or(Value::Null)))
    }

    /// A request with a raw body to host `i`.
    pub fn send(
        &self,
        i: usize,
        method: &str,
        path: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<(u16, Value)> {
        let m = reqwest::Method::from_bytes(method.as_bytes())?;
        let r = self
            .request(m, i, path)
            .header("content-type", content_type)
            .body(body)
            .send()?;
        let code = r.status().as_u16();
        let body = r.bytes()?;
        Ok((code, serde_json::from_slice(&body).unwrap_or(Value::Null)))
    }

    /// A JSON POST to host `i`.
    pub fn post(&self, i: usize, path: &str, body: &Value) -> Result<(u16, Value)> {
        self.send(
            i,
            "POST",
            path,
            serde_json::to_vec(body)?,
            "application/json",
        )
    }

    /// The last lines of every member's log, for failure messages.
    pub fn logs_tail(&self) -> String {
        let mut out = String::new();
        for i in 0..self.hosts.len() {
            let text = std::fs::read_to_string(self.log_path(i)).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let start = lines.len().saturating_sub(15);
            out.push_str(&format!(
                "--- h{} ({})\n{}\n",
                i + 1,
                self.addr(i),
                lines[start..].join("\n")
            ));
        }
        out
    }

    /// Every member's last warnings and errors, for a failed test's output (the harness shows
    /// what a test printed only when it fails): a flake in CI is explained by its own run.
    fn warnings_tail(&self) -> String {
        let mut out = String::new();
        for i in 0..self.hosts.len() {
            let text = std::fs::read_to_string(self.log_path(i)).unwrap_or_default();
            let lines: Vec<&str> = text
                .lines()
                .filter(|l| l.contains("WARN") || l.contains("ERROR"))
                .collect();
            if !lines.is_empty() {
                let start = lines.len().saturating_sub(20);
                out.push_str(&format!(
                    "--- h{} warnings\n{}\n",
                    i + 1,
                    lines[start..].join("\n")
                ));
            }
        }
        out
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let warnings = self.warnings_tail();
        if !warnings.is_empty() {
            eprintln!("[lab {}] members' last warnings:\n{warnings}", self.run_id);
        }
        for i in 0..self.hosts.len() {
            let _ = self.kill9(i);
        }
        for h in &self.hosts {
            let _ = run(&format!("ip netns del {}", h.ns));
        }
        let _ = run(&format!("ip link del {}", self.bridge));
    }
}

/// `Authorization: Bearer TOKEN` as default headers for a client.
pub fn auth_headers(token: &str) -> reqwest::header::HeaderMap {
    let mut h = reqwest::header::HeaderMap::new();
    if let Ok(v) = format!("Bearer {token}").parse() {
        h.insert(reqwest::header::AUTHORIZATION, v);
    }
    h
}

/// Tests in one binary share the machine's 2 cores: run lab tests one at a time.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}
