//! The simulator's own controller cluster: three `hoist-controller` processes on loopback, as
//! `bench/controller/run.sh` starts them, so that a run needs nothing but the binaries. The
//! processes belong to the run: [`OwnCluster`]'s `Drop` kills them and removes their data dirs,
//! whichever way the run ends (its end, an error, ctrl-c).
//!
//! Being their parent also gives what no API answers: their pids, hence their resident memory
//! and CPU time, and the power to kill one (`--kill-leader`) or stop and start it again on the
//! same data dir (`--restart-member`).

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::api::Api;

/// How the simulator starts its members (the flags a run changes).
#[derive(Debug, Clone)]
pub struct MemberSettings {
    /// `--node-grace`: how long a silent node has before its replicas move.
    pub node_grace: String,
    /// `--heartbeat-interval`: what the members tell agents.
    pub heartbeat_interval: String,
    /// `--snapshot-every` and `--keep-logs`, if not the controller's defaults.
    pub snapshots: Option<(u64, u64)>,
    /// `HOIST_LOG` of the members.
    pub log: String,
    /// Where the temp dir with the data dirs and logs goes.
    pub parent: Option<PathBuf>,
    /// Keep the data dirs and logs after the run (their path is printed).
    pub keep: bool,
}

#[derive(Debug)]
struct Member {
    id: u64,
    addr: String,
    data: PathBuf,
    child: Child,
}

/// Three members the simulator started (killed and removed on drop).
#[derive(Debug)]
pub struct OwnCluster {
    bin: PathBuf,
    settings: MemberSettings,
    members: Vec<Member>,
    dir: Option<tempfile::TempDir>,
    /// The first admin token, which the first member wrote to its data dir.
    pub admin_token: String,
}

/// `hoist-controller`: `--controller-bin`, else next to this executable, else on `PATH`.
pub fn find_controller(given: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = given {
        return Ok(p.to_path_buf());
    }
    let exe = std::env::current_exe()?;
    // Next to us; a test binary (in deps/) finds it one level up.
    for dir in exe.ancestors().skip(1).take(2) {
        let p = dir.join("hoist-controller");
        if p.is_file() {
            return Ok(p);
        }
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("hoist-controller"))
        .find(|p| p.is_file())
        .context("no hoist-controller next to hoist-sim nor on PATH: build it (cargo build -p hoist-controller) or give --controller-bin")
}

/// Ports free on loopback now (bound then released: a tiny race with other programs, as every
/// test harness that picks ports has).
fn free_ports(n: usize) -> Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<Vec<_>>>()?;
    listeners
        .iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect()
}

impl OwnCluster {
    /// Starts three members and waits until they are three voters with a leader.
    pub async fn start(bin: &Path, settings: &MemberSettings) -> Result<OwnCluster> {
        let mut builder = tempfile::Builder::new();
        builder.prefix("hoist-sim-cluster.");
        let dir = match &settings.parent {
            Some(p) => builder.tempdir_in(p)?,
            None => builder.tempdir()?,
        };
        let ports = free_ports(3)?;
        let mut cluster = OwnCluster {
            bin: bin.to_path_buf(),
            settings: settings.clone(),
            members: Vec::new(),
            dir: Some(dir),
            admin_token: String::new(),
        };
        let first = format!("127.0.0.1:{}", ports[0]);
        cluster.spawn(1, ports[0], &["--bootstrap"], None)?;
        cluster.wait_health(0).await?;
        cluster.admin_token = cluster.wait_admin_token().await?;
        for (i, port) in ports.iter().enumerate().skip(1) {
            let token = cluster.admin_token.clone();
            cluster.spawn(
                i as u64 + 1,
                *port,
                &["--join", first.as_str()],
                Some(&token),
            )?;
        }
        let api = Api::new(cluster.addrs(), &cluster.admin_token)?;
        wait_voters(&api, 3, Duration::from_secs(60)).await?;
        Ok(cluster)
    }

    fn spawn(&mut self, id: u64, port: u16, extra: &[&str], token: Option<&str>) -> Result<()> {
        let addr = format!("127.0.0.1:{port}");
        let (data, child) = self.start_process(id, &addr, extra, token)?;
        self.members.push(Member {
            id,
            addr,
            data,
            child,
        });
        Ok(())
    }

    /// Starts member `id`'s process on `addr`; its log is appended to (a restart keeps the
    /// first run's lines).
    fn start_process(
        &self,
        id: u64,
        addr: &str,
        extra: &[&str],
        token: Option<&str>,
    ) -> Result<(PathBuf, Child)> {
        let (bin, settings) = (&self.bin, &self.settings);
        let root = self.root().to_path_buf();
        let data = root.join(format!("c{id}"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(root.join(format!("c{id}.log")))?;
        let addr = addr.to_string();
        let mut cmd = Command::new(bin);
        cmd.arg("--data-dir")
            .arg(&data)
            .args(["--listen", &addr, "--id", &id.to_string()])
            .args(["--node-grace", &settings.node_grace])
            .args(["--heartbeat-interval", &settings.heartbeat_interval])
            // Room for a subnet per simulated node (the default /16 holds 256 of /24).
            .args(["--cluster-cidr", "100.64.0.0/10"])
            .args(extra)
            .args(settings.snapshots.iter().flat_map(|(every, keep)| {
                [
                    "--snapshot-every".to_string(),
                    every.to_string(),
                    "--keep-logs".to_string(),
                    keep.to_string(),
                ]
            }))
            .env("HOIST_LOG", &settings.log)
            .env_remove("HOIST_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        if let Some(t) = token {
            cmd.env("HOIST_TOKEN", t);
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        Ok((data, child))
    }

    /// Starts a new member `id` that joins through the member at `join` with the admin token,
    /// as an operator adds one. Answers its address.
    pub fn add(&mut self, id: u64, join: &str) -> Result<String> {
        let port = free_ports(1)?[0];
        let token = self.admin_token.clone();
        self.spawn(id, port, &["--join", join], Some(&token))?;
        Ok(format!("127.0.0.1:{port}"))
    }

    /// The id a new member would take.
    pub fn next_id(&self) -> u64 {
        self.members.iter().map(|m| m.id).max().unwrap_or(0) + 1
    }

    fn member(&mut self, id: u64) -> Result<&mut Member> {
        self.members
            .iter_mut()
            .find(|m| m.id == id)
            .with_context(|| format!("no member {id}"))
    }

    /// Member `id`'s `HOST:PORT`.
    pub fn addr(&self, id: u64) -> Option<String> {
        self.members
            .iter()
            .find(|m| m.id == id)
            .map(|m| m.addr.clone())
    }

    /// Member `id`'s data dir.
    pub fn data_dir(&self, id: u64) -> Option<PathBuf> {
        self.members
            .iter()
            .find(|m| m.id == id)
            .map(|m| m.data.clone())
    }

    /// Kills member `id` with SIGKILL, as a crash would, and reaps it.
    pub fn kill(&mut self, id: u64) -> Result<()> {
        let m = self.member(id)?;
        m.child
            .kill()
            .with_context(|| format!("killing member {id}"))?;
        m.child.wait()?;
        Ok(())
    }

    /// Stops member `id` with SIGTERM, as an operator would, and waits up to `wait` for it to
    /// exit (then kills it: the run must go on). Answers whether it exited by itself.
    pub async fn stop(&mut self, id: u64, wait: Duration) -> Result<bool> {
        let m = self.member(id)?;
        let pid = i32::try_from(m.child.id()).context("a pid beyond i32")?;
        // SAFETY: kill(2) with a pid of our own child (not yet reaped, so not reused) and a
        // valid signal number; it touches no memory of ours.
        if unsafe { libc::kill(pid, libc::SIGTERM) } != 0 {
            bail!(
                "SIGTERM to member {id}: {}",
                std::io::Error::last_os_error()
            );
        }
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            if m.child.try_wait()?.is_some() {
                return Ok(true);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        m.child.kill()?;
        m.child.wait()?;
        Ok(false)
    }

    /// Starts member `id` again on its data dir and address, with the flags it had but neither
    /// `--bootstrap` nor `--join`: it resumes from what it stored.
    pub fn restart(&mut self, id: u64) -> Result<()> {
        let addr = self.member(id)?.addr.clone();
        let (_, child) = self.start_process(id, &addr, &[], None)?;
        self.member(id)?.child = child;
        Ok(())
    }

    async fn wait_health(&self, i: usize) -> Result<()> {
        let url = format!("http://{}/v1/health", self.members[i].addr);
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(r) = http.get(&url).send().await {
                if r.status().is_success() {
                    return Ok(());
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!(
            "member {} did not answer within 20 s (log: {})",
            self.members[i].id,
            self.root()
                .join(format!("c{}.log", self.members[i].id))
                .display()
        )
    }

    async fn wait_admin_token(&self) -> Result<String> {
        let path = self.members[0].data.join("admin.token");
        for _ in 0..300 {
            if let Ok(t) = std::fs::read_to_string(&path) {
                if !t.trim().is_empty() {
                    return Ok(t.trim().to_string());
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("no admin token in {} after 30 s", path.display())
    }

    /// `HOST:PORT` of every member, in id order.
    pub fn addrs(&self) -> Vec<String> {
        self.members.iter().map(|m| m.addr.clone()).collect()
    }

    /// `(member id, pid)` of every member.
    pub fn pids(&self) -> Vec<(u64, u32)> {
        self.members.iter().map(|m| (m.id, m.child.id())).collect()
    }

    /// `(member id, pid)` of the members whose process still runs.
    pub fn live_pids(&mut self) -> Vec<(u64, u32)> {
        self.members
            .iter_mut()
            .filter_map(|m| matches!(m.child.try_wait(), Ok(None)).then(|| (m.id, m.child.id())))
            .collect()
    }

    /// The directory with the members' data dirs and logs.
    pub fn root(&self) -> &Path {
        self.dir.as_ref().map_or(Path::new("/"), |d| d.path())
    }

    /// Keeps the data dirs and logs after the run.
    pub fn keep(&mut self) -> Option<PathBuf> {
        self.dir.take().map(tempfile::TempDir::keep)
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        for m in &mut self.members {
            let _ = m.child.kill();
            let _ = m.child.wait();
        }
    }
}

/// Waits until the cluster has `n` voters and a leader.
pub async fn wait_voters(api: &Api, n: usize, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    while Instant::now() < deadline {
        match api.get_json("/v1/cluster/status").await {
            Ok(v) => {
                let voters = v["members"]
                    .as_array()
                    .map_or(0, |m| m.iter().filter(|m| m["voter"] == true).count());
                if voters >= n && !v["leader"].is_null() {
                    return Ok(());
                }
                last = format!("{voters} voters, leader {}", v["leader"]);
            }
            Err(e) => last = format!("{e:#}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!("the cluster did not get {n} voters and a leader within {timeout:?} ({last})")
}

/// CPU time (user + system, clock ticks) `pid` used so far.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    crate::stats::stat_cpu_ticks(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// How many established TCP connections `pid` holds: its socket descriptors found established
/// in this network namespace's tables.
pub fn tcp_connections(pid: u32) -> Option<u64> {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    let sockets: std::collections::HashSet<u64> = fds
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|target| {
            let t = target.to_str()?;
            t.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
        })
        .collect();
    let mut n = 0;
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let table = std::fs::read_to_string(table).unwrap_or_default();
        let held = crate::stats::established_inodes(&table).filter(|i| sockets.contains(i));
        n += held.count() as u64;
    }
    Some(n)
}

/// Clock ticks per second (`CLK_TCK`), 100 if the system does not say.
pub fn ticks_per_second() -> u64 {
    // SAFETY: sysconf(3) reads a constant of the system; no pointers.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(hz).ok().filter(|h| *h > 0).unwrap_or(100)
}

/// The size in bytes of every file under `dir`, summed; 0 for a dir that cannot be read.
pub fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            Ok(_) => e.metadata().map_or(0, |m| m.len()),
            Err(_) => 0,
        })
        .sum()
}

/// Resident memory of `pid` in KiB (`VmRSS`), and its peak (`VmHWM`).
pub fn rss_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    Some((field_kib(&status, "VmRSS:")?, field_kib(&status, "VmHWM:")?))
}

/// The KiB value of a `/proc/PID/status` line such as `VmRSS:   1234 kB`.
fn field_kib(status: &str, name: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_kib_fields_of_proc_status() {
        let s = "Name:\thoist\nVmHWM:\t  20480 kB\nVmRSS:\t   10240 kB\n";
        assert_eq!(field_kib(s, "VmRSS:"), Some(10240));
        assert_eq!(field_kib(s, "VmHWM:"), Some(20480));
        assert_eq!(field_kib(s, "VmSwap:"), None);
        // Our own process has both.
        let (rss, hwm) = rss_kib(std::process::id()).unwrap();
        assert!(rss > 0 && hwm >= rss);
    }
}
