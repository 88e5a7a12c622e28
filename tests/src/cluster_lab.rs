//! The multi-host orchestration lab: controller members and agent hosts, each in its own network
//! namespace on one per-run bridge. Controllers come from [`crate::controller_lab`]; each agent is
//! a [`crate::Host`] (own data dir, cgroup parent, container subnet `10.90.<n>.0/24`) running
//! `hoist-agent --join TOKEN --controller ...`. Tests drive it with the `hoist` CLI and the HTTP
//! API, wait on named conditions with deadlines that print the last observed state when they
//! expire, and `Drop` tears everything down (agents and their containers first, then the
//! namespaces and the bridge), also when a test fails.

use crate::controller_lab::{self, Lab};
use crate::Host;
use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// One agent host of the lab.
#[derive(Debug)]
pub struct Agent {
    pub host: Host,
    /// Index of its namespace in the controller lab (for cut/heal).
    lab_index: usize,
    /// The node id it registered as (read from its data dir).
    pub name: String,
    /// Its overlay device (`--wg-interface`), when it is on the overlay.
    pub wg_interface: Option<String>,
}

impl Agent {
    /// Index of its namespace in the controller lab.
    pub fn lab_index(&self) -> usize {
        self.lab_index
    }
}

impl Drop for Agent {
    /// The overlay's userspace device outlives its agent by design: stop it with the lab host.
    fn drop(&mut self) {
        if let Some(i) = &self.wg_interface {
            let _ = std::fs::remove_file(format!("/var/run/wireguard/{i}.sock"));
            let _ = std::process::Command::new("pkill")
                .args(["-9", "-f", &format!("__wg {i}$")])
                .status();
        }
    }
}

/// Controllers and agents on one bridge. Field order matters: agents are dropped first.
#[derive(Debug)]
pub struct ClusterLab {
    pub agents: Vec<Agent>,
    pub lab: Lab,
    controllers: usize,
    pub token: String,
    /// Extra flags for every agent (`--cpus`, `--memory` ...).
    pub agent_flags: Vec<String>,
    /// The `hoist-agent` new agents run (default: this build's).
    pub agent_bin: Option<std::path::PathBuf>,
}

impl ClusterLab {
    /// Starts `controllers` members (with `member_flags`), waits for a leader, fetches a join token.
    pub fn start(controllers: usize, member_flags: &[&str]) -> Result<Self> {
        Self::start_release(controllers, member_flags, None)
    }

    /// As [`Self::start`], with member flags that name the lab's own addresses (a Prometheus
    /// running on host 0, say): `flags` gets the lab before any member starts.
    pub fn start_with(controllers: usize, flags: impl FnOnce(&Lab) -> Vec<String>) -> Result<Self> {
        let lab = Lab::new(controllers)?;
        let flags = flags(&lab);
        Self::start_in(lab, controllers, flags, None)
    }

    /// As [`Self::start`], with every process from the binaries in `bins` (a past release, see
    /// [`crate::release_bins`]) instead of this build's.
    pub fn start_release(
        controllers: usize,
        member_flags: &[&str],
        bins: Option<&std::path::Path>,
    ) -> Result<Self> {
        let lab = Lab::new(controllers)?;
        let flags = member_flags.iter().map(|s| s.to_string()).collect();
        Self::start_in(lab, controllers, flags, bins)
    }

    fn start_in(
        mut lab: Lab,
        controllers: usize,
        member_flags: Vec<String>,
        bins: Option<&std::path::Path>,
    ) -> Result<Self> {
        lab.flags = controller_lab::MemberFlags(member_flags);
        if let Some(b) = bins {
            for i in 0..controllers {
                lab.set_bin(i, b.join("hoist-controller"));
            }
        }
        lab.start_cluster(controllers)?;
        lab.wait_leader(Duration::from_secs(15))?;
        let mut me = ClusterLab {
            agents: Vec::new(),
            lab,
            controllers,
            token: String::new(),
            agent_flags: Vec::new(),
            agent_bin: bins.map(|b| b.join("hoist-agent")),
        };
        let out = me.hoist_ok(&["cluster", "token"])?;
        me.token = out
            .split_whitespace()
            .find(|w| w.starts_with("HOIST1-") || w.starts_with("HOIST2-"))
            .map(str::to_owned)
            .with_context(|| format!("`hoist cluster token` printed no token: {out}"))?;
        Ok(me)
    }

    /// `ADDR,ADDR,...` of every controller member.
    pub fn controllers_arg(&self) -> String {
        (0..self.controllers)
            .map(|i| self.lab.addr(i))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Adds an agent host named `name` with node labels; answers its index in [`Self::agents`].
    /// It has a subnet of its own (`10.90.<n>.0/24`) and no overlay.
    pub fn add_agent(&mut self, name: &str, labels: &[(&str, &str)]) -> Result<usize> {
        self.add_agent_with(name, labels, false)
    }

    /// Adds an agent host on the overlay: its subnet comes from the controllers and its WireGuard
    /// device has a name unique to this run (`hw<run><n>`).
    pub fn add_overlay_agent(&mut self, name: &str, labels: &[(&str, &str)]) -> Result<usize> {
        self.add_agent_with(name, labels, true)
    }

    fn add_agent_with(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        overlay: bool,
    ) -> Result<usize> {
        let lab_index = self.lab.add_host()?;
        let n = self.agents.len();
        let wg_interface = overlay.then(|| format!("hw{}{n}", crate::run_id()));
        let mut args = match &wg_interface {
            Some(i) => vec!["--wg-interface".to_string(), i.clone()],
            None => vec!["--subnet".to_string(), format!("10.90.{}.0/24", n + 1)],
        };
        args.extend([
            "--join".into(),
            self.token.clone(),
            "--controller".into(),
            self.controllers_arg(),
            "--advertise-addr".into(),
            self.lab.ip(lab_index).to_string(),
        ]);
        for (k, v) in labels {
            args.push("--label".into());
            args.push(format!("{k}={v}"));
        }
        args.extend(self.agent_flags.iter().cloned());
        let netns = self.lab.netns(lab_index).to_string();
        let host = Host::start_in(name, &netns, false, args, self.agent_bin.clone())?;
        self.agents.push(Agent {
            host,
            lab_index,
            name: name.into(),
            wg_interface,
        });
        let idx = self.agents.len() - 1;
        self.wait_until(
            &format!("agent {name} registered"),
            Duration::from_secs(20),
            || {
                let id = self.node_id(idx);
                Ok((id.clone(), format!("node id in data dir: {id:?}")))
            },
        )?;
        Ok(idx)
    }

    /// The node id agent `i` registered as, from `DATA_DIR/node.json`.
    pub fn node_id(&self, i: usize) -> Option<String> {
        let p = self.agents[i].host.data_dir().join("node.json");
        let v: Value = serde_json::from_slice(&std::fs::read(p).ok()?).ok()?;
        v["node_id"].as_str().map(str::to_owned)
    }

    /// `kill -9` agent `i` (its containers keep running under their supervisors).
    pub fn kill_agent(&mut self, i: usize) -> Result<()> {
        self.agents[i].host.kill_agent()
    }

    /// Starts agent `i` again with the same flags and data dir.
    pub fn restart_agent(&mut self, i: usize) -> Result<()> {
        self.agents[i].host.start_agent()
    }

    /// Cuts agent `i`'s link to the bridge (the agent and its containers keep running).
    pub fn cut_agent(&self, i: usize) -> Result<()> {
        self.lab.cut(self.agents[i].lab_index)
    }

    pub fn heal_agent(&self, i: usize) -> Result<()> {
        self.lab.heal(self.agents[i].lab_index)
    }

    /// Runs `hoist ARGS` against the controllers: exit code, stdout, stderr.
    pub fn hoist(&self, args: &[&str]) -> Result<(i32, String, String)> {
        crate::hoist_cli_as(&self.controllers_arg(), self.lab.token().as_deref(), args)
    }

    /// The `hoist` CLI for this lab's controllers, with its admin token.
    pub fn hoist_command(&self) -> std::process::Command {
        crate::hoist_command(&self.controllers_arg(), self.lab.token().as_deref())
    }

    /// `hoist ARGS`, which must succeed; answers stdout.
    pub fn hoist_ok(&self, args: &[&str]) -> Result<String> {
        let (code, out, err) = self.hoist(args)?;
        if code != 0 {
            bail!(
                "hoist {} exited {code}\nstdout: {out}\nstderr: {err}",
                args.join(" ")
            );
        }
        Ok(out)
    }

    /// Applies a service spec given as JSON through `hoist service apply -f FILE`; answers the
    /// exit code, stdout and stderr.
    pub fn apply(&self, spec: &Value, extra: &[&str]) -> Result<(i32, String, String)> {
        let file = tempfile::Builder::new().suffix(".json").tempfile()?;
        std::fs::write(file.path(), serde_json::to_vec_pretty(spec)?)?;
        let path = file.path().to_str().unwrap_or_default().to_string();
        let mut args = vec!["service", "apply", "--no-resolve-image", "-f", &path];
        args.extend_from_slice(extra);
        self.hoist(&args)
    }

    /// A JSON POST to the first controller that answers.
    pub fn post(&self, path: &str, body: &Value) -> Result<Value> {
        let mut last = None;
        for i in 0..self.controllers {
            if !self.lab.is_running(i) {
                continue;
            }
            match self.lab.post(i, path, body) {
                Ok((code, v)) if (200..300).contains(&code) => return Ok(v),
                Ok((code, v)) => last = Some(anyhow::anyhow!("POST {path}: HTTP {code}: {v}")),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("no controller runs")))
    }

    /// Every node as the controllers see it (`GET /v1/nodes`): node id → (status, availability).
    pub fn nodes(&self) -> Result<BTreeMap<String, (String, String)>> {
        let v = self.get("/v1/nodes")?;
        let mut m = BTreeMap::new();
        for n in v.as_array().into_iter().flatten() {
            let node = &n["node"];
            m.insert(
                node["id"].as_str().unwrap_or_default().to_string(),
                (
                    node["status"].as_str().unwrap_or_default().to_string(),
                    node["availability"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                ),
            );
        }
        Ok(m)
    }

    /// A GET on the first controller that answers: the JSON body.
    pub fn get(&self, path: &str) -> Result<Value> {
        let mut last = None;
        for i in 0..self.controllers {
            if !self.lab.is_running(i) {
                continue;
            }
            match self.lab.get(i, path) {
                Ok((200, v)) => return Ok(v),
                Ok((code, v)) => last = Some(anyhow::anyhow!("GET {path}: HTTP {code}: {v}")),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("no controller runs")))
    }

    /// The containers of `service` running on agent `i`, as the agent itself sees them.
    pub fn running_on(&self, i: usize, service: &str) -> Result<Vec<Value>> {
        let out = self.agents[i].host.hoist_ok(&["ps", "-o", "json"])?;
        let list: Vec<Value> = serde_json::from_str(&out)?;
        Ok(list
            .into_iter()
            .filter(|c| c["spec"]["labels"]["hoist.service"] == service && c["status"] == "running")
            .collect())
    }

    /// Running containers of `service` per agent (by agent name), from the agents themselves:
    /// ground truth, independent of what the controller believes.
    pub fn spread(&self, service: &str) -> Result<BTreeMap<String, usize>> {
        let mut m = BTreeMap::new();
        for (i, a) in self.agents.iter().enumerate() {
            m.insert(a.name.clone(), self.running_on(i, service)?.len());
        }
        Ok(m)
    }

    /// `GET /v1/services/NAME/ps` (the data behind `hoist service ps`).
    pub fn service_ps(&self, service: &str) -> Result<Value> {
        self.get(&format!("/v1/services/{service}/ps"))
    }

    /// Replicas of `service` the controller counts as running and ready (healthy or unchecked).
    pub fn ready_replicas(&self, service: &str) -> Result<usize> {
        let ps = self.service_ps(service)?;
        Ok(ps["replicas"]
            .as_array()
            .map(|r| {
                r.iter()
                    .filter(|s| {
                        let t = &s["task"];
                        t["state"] == "running"
                            && (t["health"] == "healthy" || t["health"] == "none")
                    })
                    .count()
            })
            .unwrap_or(0))
    }

    /// Polls `check` until it yields a value or `timeout` passes. `check` answers the value (when
    /// the condition holds) and a description of what it observed; on timeout the error names the
    /// condition and shows the last observation, the agents' and controllers' log tails.
    pub fn wait_until<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut() -> Result<(Option<T>, String)>,
    ) -> Result<T> {
        let start = Instant::now();
        loop {
            let last = match check() {
                Ok((Some(v), _)) => {
                    eprintln!("[lab] {what}: after {:.1?}", start.elapsed());
                    return Ok(v);
                }
                Ok((None, seen)) => seen,
                Err(e) => format!("error: {e:#}"),
            };
            if start.elapsed() > timeout {
                bail!(
                    "timed out after {timeout:?} waiting for {what}\nlast observed: {last}\n{}",
                    self.logs_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The last lines of every agent's and controller's log.
    pub fn logs_tail(&self) -> String {
        let mut out = String::new();
        for a in &self.agents {
            out.push_str(&format!(
                "--- agent {}\n{}\n",
                a.name,
                crate::tail(&a.host.agent_log(), 12)
            ));
        }
        out.push_str(&self.lab.logs_tail());
        out
    }
}
