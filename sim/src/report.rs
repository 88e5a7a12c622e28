//! What a run measured, as JSON (`--json`, for scripts and `bench/sim.sh`) or a human table.

use serde::Serialize;

use crate::stats;

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub nodes: Nodes,
    pub tasks: Tasks,
    pub placements: Placements,
    pub controllers: Controllers,
    pub api: ApiLatency,
    pub kill: Option<Kill>,
    pub errors: Errors,
    /// Whether every phase finished (all joined, all tasks ran, killed nodes' tasks moved).
    pub complete: bool,
}

#[derive(Debug, Default, Serialize)]
pub struct Nodes {
    pub requested: u64,
    pub joined: u64,
    pub join_seconds: f64,
    pub join_concurrency: u64,
    /// The join token carried the cluster's CA digest: the nodes spoke TLS with certificates.
    pub tls: bool,
}

#[derive(Debug, Default, Serialize)]
pub struct Tasks {
    pub requested: u64,
    pub services: u64,
    pub apply_seconds: f64,
    /// Running on live nodes at the end of the fill, as the agents see it.
    pub running: u64,
    pub all_running: bool,
    /// From the first service applied until every replica ran.
    pub seconds_to_all_running: Option<f64>,
    pub fail_percent: u8,
    pub reported_failed: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct Placements {
    /// Replicas running over the time they took.
    pub per_second_overall: Option<f64>,
    /// The rate through each tenth of the fill (0–10 %, …, 90–100 %).
    pub per_second_by_decile: Vec<Option<f64>>,
    /// The slowest tenth's rate over the fastest's (1.0 is flat).
    pub flatness: Option<f64>,
    pub sample_period_ms: u64,
    pub samples: usize,
}

#[derive(Debug, Default, Serialize)]
pub struct Member {
    pub id: u64,
    pub pid: u32,
    pub leader: bool,
    pub rss_kib_before_services: Option<u64>,
    pub rss_kib_after_fill: Option<u64>,
    pub peak_rss_kib: Option<u64>,
}

#[derive(Debug, Default, Serialize)]
pub struct Controllers {
    /// Started by the simulator (else given with --controller: nothing measured of them).
    pub own: bool,
    pub heartbeat_interval: String,
    pub node_grace: String,
    pub members: Vec<Member>,
    /// The leader's RSS growth over the fill, per replica.
    pub leader_rss_bytes_per_task: Option<f64>,
    /// The same, averaged over the members.
    pub mean_rss_bytes_per_task: Option<f64>,
}

#[derive(Debug, Default, Serialize)]
pub struct Latency {
    pub path: String,
    pub requests: usize,
    pub errors: u64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
}

impl Latency {
    pub fn of(path: &str, ms: &[f64], errors: u64) -> Latency {
        Latency {
            path: path.into(),
            requests: ms.len(),
            errors,
            p50_ms: stats::percentile(ms, 50.0),
            p99_ms: stats::percentile(ms, 99.0),
            max_ms: stats::percentile(ms, 100.0),
        }
    }
}

#[derive(Debug, Default, Serialize)]
pub struct ApiLatency {
    pub node_ls: Latency,
    pub service_ps: Latency,
}

#[derive(Debug, Default, Serialize)]
pub struct Kill {
    pub nodes: u64,
    /// Replicas the killed nodes ran.
    pub tasks_on_them: u64,
    /// Every replica ran again on the live nodes.
    pub rescheduled: bool,
    /// From the kill until every replica ran on live nodes (includes the node grace).
    pub seconds: Option<f64>,
}

#[derive(Debug, Default, Serialize)]
pub struct Errors {
    pub register: u64,
    pub heartbeat: u64,
    pub poll: u64,
    pub status: u64,
    pub reregistrations: u64,
    pub join_failed: u64,
    pub apply: u64,
    pub status_batches: u64,
}

fn num(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.digits$}"))
}

fn kib(v: Option<u64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{:.1} MiB", v as f64 / 1024.0))
}

impl Report {
    /// The human table.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut line = |k: &str, v: String| out.push_str(&format!("{k:<34} {v}\n"));
        let (n, t, p) = (&self.nodes, &self.tasks, &self.placements);
        line(
            "nodes joined",
            format!(
                "{}/{} in {:.1} s ({})",
                n.joined,
                n.requested,
                n.join_seconds,
                if n.tls { "TLS" } else { "plain HTTP" }
            ),
        );
        line(
            "services applied",
            format!(
                "{} ({} replicas) in {:.1} s",
                t.services, t.requested, t.apply_seconds
            ),
        );
        line(
            "tasks running",
            format!(
                "{}/{} after {} s",
                t.running,
                t.requested,
                num(t.seconds_to_all_running, 1)
            ),
        );
        line(
            "tasks reported failed",
            format!("{} ({} % asked)", t.reported_failed, t.fail_percent),
        );
        line("placements/s overall", num(p.per_second_overall, 0));
        let deciles: Vec<String> = p.per_second_by_decile.iter().map(|r| num(*r, 0)).collect();
        line("placements/s per tenth of the fill", deciles.join(" "));
        line("flatness (slowest/fastest tenth)", num(p.flatness, 2));
        let c = &self.controllers;
        for m in &c.members {
            line(
                &format!(
                    "member {}{} RSS",
                    m.id,
                    if m.leader { " (leader)" } else { "" }
                ),
                format!(
                    "{} before, {} after, peak {}",
                    kib(m.rss_kib_before_services),
                    kib(m.rss_kib_after_fill),
                    kib(m.peak_rss_kib)
                ),
            );
        }
        line(
            "leader RSS per task",
            format!("{} B", num(c.leader_rss_bytes_per_task, 0)),
        );
        line(
            "mean member RSS per task",
            format!("{} B", num(c.mean_rss_bytes_per_task, 0)),
        );
        for l in [&self.api.node_ls, &self.api.service_ps] {
            line(
                &format!("GET {}", l.path),
                format!(
                    "p50 {} ms, p99 {} ms, max {} ms ({} requests, {} errors)",
                    num(l.p50_ms, 1),
                    num(l.p99_ms, 1),
                    num(l.max_ms, 1),
                    l.requests,
                    l.errors
                ),
            );
        }
        if let Some(k) = &self.kill {
            line(
                "nodes killed",
                format!(
                    "{} with {} tasks: {} after {} s",
                    k.nodes,
                    k.tasks_on_them,
                    if k.rescheduled {
                        "all running elsewhere"
                    } else {
                        "NOT all rescheduled"
                    },
                    num(k.seconds, 1)
                ),
            );
        }
        let e = &self.errors;
        line(
            "errors",
            format!(
                "register {}, heartbeat {}, poll {}, status {}, re-registrations {}, joins failed {}, apply {}",
                e.register, e.heartbeat, e.poll, e.status, e.reregistrations, e.join_failed, e.apply
            ),
        );
        line("complete", self.complete.to_string());
        out
    }
}
