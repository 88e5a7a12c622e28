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
    /// `--idle-secs`: the members' CPU with everything running and no writes.
    pub idle: Option<Idle>,
    /// `--assignment-latency`: a scale-up's new tasks reaching their agents.
    pub assignment_latency: Option<AssignmentLatency>,
    /// `--update-service`: a rolling update of the largest service.
    pub update: Option<Update>,
    /// `--restart-member`: a follower stopped and started again on its data dir.
    pub restart_member: Option<RestartMember>,
    pub add_member: Option<AddMember>,
    /// `--kill-leader`: the leader killed with SIGKILL.
    pub kill_leader: Option<KillLeader>,
    /// The specs in the nodes' assignments answers, over the whole run.
    pub specs: Specs,
    /// The tasks in the nodes' assignments answers, over the whole run.
    pub task_entries: TaskEntries,
    pub errors: Errors,
    /// Whether every phase finished (all joined, all tasks ran, killed nodes' tasks moved, and
    /// each phase asked for finished).
    pub complete: bool,
}

/// How a phase after the fill ended: `finished` false with `error` saying why (not run, a
/// request failed, or it did not finish within `--timeout`).
#[derive(Debug, Default, Serialize)]
pub struct Outcome {
    pub finished: bool,
    pub error: Option<String>,
}

impl Outcome {
    pub fn done() -> Outcome {
        Outcome {
            finished: true,
            error: None,
        }
    }

    pub fn failed(why: impl Into<String>) -> Outcome {
        Outcome {
            finished: false,
            error: Some(why.into()),
        }
    }

    fn render(&self) -> String {
        match &self.error {
            None if self.finished => String::new(),
            None => " — NOT finished".into(),
            Some(e) => format!(" — NOT finished: {e}"),
        }
    }
}

#[derive(Debug, Default, Serialize)]
pub struct MemberCpu {
    pub id: u64,
    pub pid: u32,
    pub leader: bool,
    /// utime + stime over the window, in percent of one core.
    pub cpu_percent: Option<f64>,
}

#[derive(Debug, Default, Serialize)]
pub struct Idle {
    #[serde(flatten)]
    pub outcome: Outcome,
    pub seconds: f64,
    /// Live nodes heartbeating and long-polling meanwhile.
    pub nodes: u64,
    pub members: Vec<MemberCpu>,
    pub leader_cpu_percent: Option<f64>,
    /// The simulator itself (all nodes' heartbeats, polls and TLS), in percent of one core.
    pub simulator_cpu_percent: Option<f64>,
}

#[derive(Debug, Default, Serialize)]
pub struct AssignmentLatency {
    #[serde(flatten)]
    pub outcome: Outcome,
    pub service: String,
    /// Replicas added by the scale.
    pub replicas_added: u64,
    /// How long the scale request took to answer.
    pub scale_answer_ms: Option<f64>,
    /// New tasks seen in the nodes' poll answers.
    pub seen: usize,
    /// From the scale's answer to a new task's first appearance in its node's poll answer, both
    /// on the simulator's monotonic clock; negative when a node saw it before the API answered.
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
    pub min_ms: Option<f64>,
}

#[derive(Debug, Default, Serialize)]
pub struct Update {
    #[serde(flatten)]
    pub outcome: Outcome,
    pub service: String,
    pub replicas: u64,
    pub from_version: u64,
    pub to_version: u64,
    /// `update.parallelism` used (the replicas replaced at once).
    pub parallelism: u64,
    /// `update.monitor` used.
    pub monitor: String,
    pub apply_ms: Option<f64>,
    /// From the update's answer until every replica ran the new version, by the agents' account.
    pub seconds: Option<f64>,
    /// Replicas running the new version at the end.
    pub running_new: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct RestartMember {
    #[serde(flatten)]
    pub outcome: Outcome,
    pub member: u64,
    /// It exited on SIGTERM within 10 s (else it was killed).
    pub stopped_cleanly: bool,
    pub down_seconds: f64,
    /// From its start until it answered its status.
    pub answer_seconds: Option<f64>,
    /// From its start until its applied index reached the leader's.
    pub catch_up_seconds: Option<f64>,
    pub applied_at_start: Option<u64>,
    pub leader_applied_at_start: Option<u64>,
    /// Snapshots it installed from the leader since its start (0: the log sufficed).
    pub snapshots_installed: Option<u64>,
    pub snapshot_index: Option<u64>,
    /// Its data dir on disk after the catch-up (the redb file with log, state and snapshot).
    pub data_dir_bytes: u64,
    /// The size of a snapshot as `GET /v1/cluster/snapshot` answers it.
    pub snapshot_bytes: Option<u64>,
}

#[derive(Debug, Default, Serialize)]
pub struct AddMember {
    #[serde(flatten)]
    pub outcome: Outcome,
    pub member: u64,
    /// From its start until it answered its status.
    pub answer_seconds: Option<f64>,
    /// From its start until the cluster listed it as a voter.
    pub voter_seconds: Option<f64>,
    /// From its start until its applied index reached the leader's.
    pub catch_up_seconds: Option<f64>,
    /// The leader's applied index when it started.
    pub leader_applied_at_start: Option<u64>,
    /// Snapshots it installed from the leader (0: the leader's log reached back far enough).
    pub snapshots_installed: Option<u64>,
    pub snapshot_index: Option<u64>,
    /// The size of a snapshot as `GET /v1/cluster/snapshot` answers it.
    pub snapshot_bytes: Option<u64>,
    /// Its data dir on disk after the catch-up.
    pub data_dir_bytes: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct KillLeader {
    #[serde(flatten)]
    pub outcome: Outcome,
    pub member: Option<u64>,
    /// From the SIGKILL until a write through the API succeeded (tried every 20 ms).
    pub write_seconds: Option<f64>,
    pub writes_tried: u64,
    pub new_leader: Option<u64>,
    pub term_before: Option<u64>,
    pub term_after: Option<u64>,
    /// Terms that passed: elections, counting any that did not elect.
    pub elections: Option<u64>,
    /// Once a write succeeded: service scaled up under the new leader, each new task timed from
    /// the scale's answer to its node's poll answer (what an agent waits for after a failover).
    pub assignment_after: Option<AssignmentLatency>,
    /// From the SIGKILL until every live node's long poll was back: answered, or sent after the
    /// kill and held by a leader (in flight ≥ 1 s; the time is its sending). `None` if some
    /// node never was within `--timeout`. An upper bound: a poll the client retried on the next
    /// member inside one call (a follower's forward to the dead leader failed) is held by the
    /// new leader unseen, and counts only when answered, up to its 25 s wait later.
    pub polls_back_seconds: Option<f64>,
    /// The median of the same over the nodes.
    pub polls_back_p50_seconds: Option<f64>,
    /// Live nodes, and how many were back.
    pub nodes: u64,
    pub nodes_back: u64,
    /// Fewest tasks running (by the agents' account) from the kill to the end of the phase.
    pub min_running: u64,
    pub expected_running: u64,
    pub all_running_after: bool,
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
    /// The TCP connections it held once the nodes had joined (the agents', its peers').
    pub connections_before_services: Option<u64>,
    pub rss_kib_after_fill: Option<u64>,
    pub peak_rss_kib: Option<u64>,
    /// CPU time (user + system) from the first apply until all ran.
    pub cpu_seconds_fill: Option<f64>,
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
    /// The simulator's own CPU time over the fill (every node's polls, reports and TLS).
    pub simulator_cpu_seconds_fill: Option<f64>,
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
    /// `hoist cluster status`, whose state hash encodes the whole state.
    pub cluster_status: Latency,
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

/// Specs sent in assignments answers, and left out because the poll held them.
#[derive(Debug, Default, Serialize)]
pub struct Specs {
    pub sent: u64,
    pub left_out: u64,
}

/// Tasks listed in full in assignments answers, and named only because the poll held them
/// unchanged (`tasks_term`).
#[derive(Debug, Default, Serialize)]
pub struct TaskEntries {
    pub sent: u64,
    pub unchanged: u64,
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
    /// Answers that left out a spec the poll had not said it held (a controller bug).
    pub specs: u64,
    /// Answers that named as unchanged a task the node did not hold (a controller bug).
    pub tasks_unheld: u64,
    /// Failed endpoints and sessions polls (`--watches`).
    pub watches: u64,
}

/// `held` in percent of `held` and `sent` together (0 when both are 0).
fn held_percent(held: u64, sent: u64) -> f64 {
    100.0 * held as f64 / (held + sent).max(1) as f64
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
                    "{} before, {} after, peak {}; CPU {} s over the fill; {} connections before",
                    kib(m.rss_kib_before_services),
                    kib(m.rss_kib_after_fill),
                    kib(m.peak_rss_kib),
                    num(m.cpu_seconds_fill, 2),
                    m.connections_before_services
                        .map_or("?".to_string(), |n| n.to_string())
                ),
            );
        }
        line(
            "simulator CPU over the fill",
            format!("{} s", num(c.simulator_cpu_seconds_fill, 2)),
        );
        line(
            "leader RSS per task",
            format!("{} B", num(c.leader_rss_bytes_per_task, 0)),
        );
        line(
            "mean member RSS per task",
            format!("{} B", num(c.mean_rss_bytes_per_task, 0)),
        );
        for l in [
            &self.api.node_ls,
            &self.api.service_ps,
            &self.api.cluster_status,
        ] {
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
        if let Some(i) = &self.idle {
            for m in &i.members {
                line(
                    &format!(
                        "member {}{} CPU idle",
                        m.id,
                        if m.leader { " (leader)" } else { "" }
                    ),
                    format!(
                        "{} % of a core over {:.0} s, {} nodes",
                        num(m.cpu_percent, 1),
                        i.seconds,
                        i.nodes
                    ),
                );
            }
            line(
                "simulator CPU idle",
                format!(
                    "{} % of a core{}",
                    num(i.simulator_cpu_percent, 1),
                    i.outcome.render()
                ),
            );
        }
        if let Some(a) = &self.assignment_latency {
            line(
                "assignment → agent",
                format!(
                    "p50 {} ms, p99 {} ms, max {} ms ({} of {} new in {}, scale answered in {} ms){}",
                    num(a.p50_ms, 1),
                    num(a.p99_ms, 1),
                    num(a.max_ms, 1),
                    a.seen,
                    a.replicas_added,
                    a.service,
                    num(a.scale_answer_ms, 1),
                    a.outcome.render()
                ),
            );
        }
        if let Some(u) = &self.update {
            line(
                "rolling update",
                format!(
                    "{} ({} replicas, v{} → v{}, parallelism {}, monitor {}): all new after {} s{}",
                    u.service,
                    u.replicas,
                    u.from_version,
                    u.to_version,
                    u.parallelism,
                    u.monitor,
                    num(u.seconds, 1),
                    u.outcome.render()
                ),
            );
        }
        if let Some(r) = &self.restart_member {
            line(
                "member restart",
                format!(
                    "member {} down {:.0} s: answered after {} s, caught up after {} s, {} snapshots installed, data dir {:.1} MiB, snapshot {}{}",
                    r.member,
                    r.down_seconds,
                    num(r.answer_seconds, 2),
                    num(r.catch_up_seconds, 2),
                    r.snapshots_installed.map_or("-".into(), |n| n.to_string()),
                    r.data_dir_bytes as f64 / 1048576.0,
                    r.snapshot_bytes
                        .map_or("-".into(), |b| format!("{:.1} MiB", b as f64 / 1048576.0)),
                    r.outcome.render()
                ),
            );
        }
        if let Some(a) = &self.add_member {
            line(
                "member added",
                format!(
                    "member {}: answered after {} s, voter after {} s, caught up after {} s (leader at {}), {} snapshots installed (index {}), snapshot {}, data dir {:.1} MiB{}",
                    a.member,
                    num(a.answer_seconds, 2),
                    num(a.voter_seconds, 2),
                    num(a.catch_up_seconds, 2),
                    a.leader_applied_at_start.map_or("-".into(), |n| n.to_string()),
                    a.snapshots_installed.map_or("-".into(), |n| n.to_string()),
                    a.snapshot_index.map_or("-".into(), |n| n.to_string()),
                    a.snapshot_bytes
                        .map_or("-".into(), |b| format!("{:.1} MiB", b as f64 / 1048576.0)),
                    a.data_dir_bytes as f64 / 1048576.0,
                    a.outcome.render()
                ),
            );
        }
        if let Some(k) = &self.kill_leader {
            line(
                "leader killed",
                format!(
                    "member {}: write after {} s ({} tries), {} elections, new leader {}, then assignment → agent p50 {} ms, p99 {} ms ({} new), nodes' polls back after {} s (p50 {} s), tasks {}/{} at least{}",
                    k.member.map_or("-".into(), |m| m.to_string()),
                    num(k.write_seconds, 2),
                    k.writes_tried,
                    k.elections.map_or("-".into(), |n| n.to_string()),
                    k.new_leader.map_or("-".into(), |m| m.to_string()),
                    num(k.assignment_after.as_ref().and_then(|a| a.p50_ms), 1),
                    num(k.assignment_after.as_ref().and_then(|a| a.p99_ms), 1),
                    k.assignment_after.as_ref().map_or(0, |a| a.seen),
                    num(k.polls_back_seconds, 2),
                    num(k.polls_back_p50_seconds, 2),
                    k.min_running,
                    k.expected_running,
                    k.outcome.render()
                ),
            );
        }
        let sp = &self.specs;
        let share = held_percent(sp.left_out, sp.sent);
        line(
            "specs in answers",
            format!(
                "{} sent, {} left out as held ({share:.0} %)",
                sp.sent, sp.left_out
            ),
        );
        let te = &self.task_entries;
        let share = held_percent(te.unchanged, te.sent);
        line(
            "tasks in answers",
            format!(
                "{} in full, {} named as held unchanged ({share:.0} %)",
                te.sent, te.unchanged
            ),
        );
        let e = &self.errors;
        line(
            "errors",
            format!(
                "register {}, heartbeat {}, poll {}, status {}, re-registrations {}, joins failed {}, apply {}, specs left out unheld {}, tasks named unheld {}, watches {}",
                e.register, e.heartbeat, e.poll, e.status, e.reregistrations, e.join_failed, e.apply, e.specs, e.tasks_unheld, e.watches
            ),
        );
        line("complete", self.complete.to_string());
        out
    }
}
