//! The phases after the fill, each asked for by its flag and each bounded by `--timeout`: the
//! members' CPU while idle, an assignment change's way to its agents, a rolling update, a
//! follower's restart and a leader's kill. They run in that order, so that the two that disturb
//! the cluster come last and the kill, which leaves a member dead, is the very last.
//!
//! A phase that cannot run (the fill did not finish, or it needs the simulator's own cluster)
//! or does not finish says so in its report and the run goes on: one broken measurement must not
//! cost the others. Times are taken on the simulator's monotonic clock, from the moment the
//! API answered the change to the moment the simulated agents saw (or reported) its effect.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

use crate::api::{self, Api};
use crate::cluster::{self, OwnCluster};
use crate::node::Trace;
use crate::report::{
    AddMember, AssignmentLatency, Idle, KillLeader, MemberCpu, Outcome, RestartMember, Update,
};
use crate::{stats, Args, Fleet};

/// What the phases share: the API, the nodes, and how many replicas should run.
pub struct Ctx<'a> {
    pub args: &'a Args,
    pub api: &'a Api,
    pub fleet: &'a Arc<Fleet>,
    pub trace: &'a Trace,
    /// Replicas of each service, as last applied (index = service number).
    pub replicas: Vec<u64>,
    /// Replicas that should run on the live nodes now.
    pub target: u64,
    pub epoch: Instant,
}

impl std::fmt::Debug for Ctx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx").field("target", &self.target).finish()
    }
}

impl Ctx<'_> {
    fn deadline(&self) -> Instant {
        Instant::now() + self.args.timeout
    }

    /// Waits until the live nodes run `target` replicas again; answers whether they do.
    async fn settle(&self, deadline: Instant) -> bool {
        while self.fleet.running() < self.target {
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        true
    }
}

/// Signed milliseconds from `from` to `to` (negative when `to` came first).
fn signed_ms(from: Instant, to: Instant) -> f64 {
    if to >= from {
        (to - from).as_secs_f64() * 1000.0
    } else {
        -((from - to).as_secs_f64() * 1000.0)
    }
}

/// `--idle-secs`: every member's and the simulator's CPU over `seconds` with nothing written.
pub async fn idle(ctx: &Ctx<'_>, own: Option<&mut OwnCluster>, seconds: u64) -> Idle {
    let hz = cluster::ticks_per_second();
    let leader = ctx.api.leader().await;
    let pids = own.map(|c| c.live_pids()).unwrap_or_default();
    let own_ticks = || cluster::cpu_ticks(std::process::id());
    let before: Vec<Option<u64>> = pids.iter().map(|(_, p)| cluster::cpu_ticks(*p)).collect();
    let sim_before = own_ticks();
    let start = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let after: Vec<Option<u64>> = pids.iter().map(|(_, p)| cluster::cpu_ticks(*p)).collect();
    let sim_after = own_ticks();
    let secs = start.elapsed().as_secs_f64();
    let pct = |b: Option<u64>, a: Option<u64>| stats::cpu_percent(b?, a?, hz, secs);
    let members: Vec<MemberCpu> = pids
        .iter()
        .zip(before.iter().zip(&after))
        .map(|((id, pid), (b, a))| MemberCpu {
            id: *id,
            pid: *pid,
            leader: leader == Some(*id),
            cpu_percent: pct(*b, *a),
        })
        .collect();
    let outcome = if members.iter().any(|m| m.cpu_percent.is_none()) {
        Outcome::failed("a member's /proc/PID/stat could not be read twice")
    } else {
        Outcome::done()
    };
    Idle {
        outcome,
        seconds: secs,
        nodes: ctx.fleet.live(),
        leader_cpu_percent: members
            .iter()
            .find(|m| m.leader)
            .and_then(|m| m.cpu_percent),
        members,
        simulator_cpu_percent: pct(sim_before, sim_after),
    }
}

/// `--assignment-latency`: scales service `index` up by `k` and times each new task from the
/// scale's answer to its first appearance in its node's poll answer.
pub async fn assignment_latency(ctx: &mut Ctx<'_>, index: usize, k: u64) -> AssignmentLatency {
    let name = api::service_name(index as u64);
    let mut r = AssignmentLatency {
        service: name.clone(),
        replicas_added: k,
        ..Default::default()
    };
    let replicas = ctx.replicas[index] + k;
    let deadline = ctx.deadline();
    ctx.trace.arm(&name);
    let sent = Instant::now();
    let body = serde_json::json!({ "replicas": replicas });
    let scaled = ctx
        .api
        .post_json(&format!("/v1/services/{name}/scale"), &body)
        .await;
    let answered = Instant::now();
    if let Err(e) = scaled {
        ctx.trace.take();
        r.outcome = Outcome::failed(format!("scaling {name}: {e:#}"));
        return r;
    }
    ctx.replicas[index] = replicas;
    ctx.target += k;
    r.scale_answer_ms = Some(signed_ms(sent, answered));
    while (ctx.trace.count() as u64) < k && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seen = ctx.trace.take();
    let ms: Vec<f64> = seen.iter().map(|t| signed_ms(answered, *t)).collect();
    r.seen = ms.len();
    r.p50_ms = stats::percentile(&ms, 50.0);
    r.p99_ms = stats::percentile(&ms, 99.0);
    r.max_ms = stats::percentile(&ms, 100.0);
    r.min_ms = stats::percentile(&ms, 0.0);
    r.outcome = if (r.seen as u64) < k {
        Outcome::failed(format!(
            "{} of {k} new tasks seen within {:?}",
            r.seen, ctx.args.timeout
        ))
    } else if !ctx.settle(deadline).await {
        Outcome::failed("the new tasks did not all run within --timeout")
    } else {
        Outcome::done()
    };
    r
}

/// `--update-service`: a new image and env for service `index` through the API, as `hoist service
/// update` does; times until every replica runs the new version by the agents' account.
pub async fn update(ctx: &Ctx<'_>, index: usize, parallelism: u64) -> Update {
    let name = api::service_name(index as u64);
    let replicas = ctx.replicas[index];
    let parallelism = if parallelism == 0 {
        replicas.max(1)
    } else {
        parallelism
    };
    let mut u = Update {
        service: name.clone(),
        replicas,
        parallelism,
        monitor: "0s".into(),
        ..Default::default()
    };
    let deadline = ctx.deadline();
    match ctx.api.get_json(&format!("/v1/services/{name}")).await {
        Ok(v) => u.from_version = v["version"].as_u64().unwrap_or(0),
        Err(e) => {
            u.outcome = Outcome::failed(format!("reading {name}: {e:#}"));
            return u;
        }
    }
    let spec = api::updated_spec(&name, replicas, parallelism);
    let sent = Instant::now();
    let applied = ctx.api.post_json("/v1/services", &spec).await;
    let answered = Instant::now();
    u.apply_ms = Some(signed_ms(sent, answered));
    match applied {
        Ok(v) => u.to_version = v["service"]["version"].as_u64().unwrap_or(0),
        Err(e) => {
            u.outcome = Outcome::failed(format!("updating {name}: {e:#}"));
            return u;
        }
    }
    if u.to_version <= u.from_version {
        u.outcome = Outcome::failed(format!(
            "the update made no new version (v{} → v{})",
            u.from_version, u.to_version
        ));
        return u;
    }
    loop {
        u.running_new = ctx.fleet.running_at_least(&name, u.to_version);
        if u.running_new >= replicas && ctx.fleet.running() >= ctx.target {
            u.seconds = Some(answered.elapsed().as_secs_f64());
            u.outcome = Outcome::done();
            return u;
        }
        if Instant::now() >= deadline {
            u.outcome = Outcome::failed(format!(
                "{} of {replicas} replicas ran the new version within {:?}",
                u.running_new, ctx.args.timeout
            ));
            return u;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Fields of a member's `/v1/cluster/status`.
fn status_u64(v: &serde_json::Value, key: &str) -> Option<u64> {
    v[key].as_u64()
}

/// A member's progress against the leader's, from both `GET /v1/cluster/status`.
struct Progress {
    leader_applied: Option<u64>,
    applied: Option<u64>,
    snapshots_installed: Option<u64>,
    snapshot_index: Option<u64>,
}

impl Progress {
    /// Asks the leader at `leader_addr` and the member at `addr`; the error says which failed.
    async fn read(api: &Api, leader_addr: &str, addr: &str) -> Result<Progress, String> {
        let l = api
            .member_status(leader_addr)
            .await
            .map_err(|e| format!("the leader's status: {e:#}"))?;
        let m = api
            .member_status(addr)
            .await
            .map_err(|e| format!("its status: {e:#}"))?;
        Ok(Progress {
            leader_applied: status_u64(&l, "last_applied"),
            applied: status_u64(&m, "last_applied"),
            snapshots_installed: status_u64(&m, "snapshots_installed"),
            snapshot_index: status_u64(&m, "snapshot_index"),
        })
    }

    /// Its applied index has reached the leader's.
    fn caught_up(&self) -> bool {
        self.leader_applied.is_some() && self.applied >= self.leader_applied
    }

    fn describe(&self) -> String {
        format!(
            "applied {:?}, the leader's {:?}",
            self.applied, self.leader_applied
        )
    }
}

/// `--restart-member`: a follower stopped with SIGTERM, down 2 s, started again on its data dir;
/// times until its applied index reaches the leader's.
pub async fn restart_member(ctx: &Ctx<'_>, own: &mut OwnCluster) -> RestartMember {
    let mut r = RestartMember {
        down_seconds: 2.0,
        ..Default::default()
    };
    let Some(leader) = ctx.api.leader().await else {
        r.outcome = Outcome::failed("no leader to compare with");
        return r;
    };
    let Some(id) = own
        .live_pids()
        .into_iter()
        .map(|(id, _)| id)
        .find(|id| *id != leader)
    else {
        r.outcome = Outcome::failed("no live follower");
        return r;
    };
    r.member = id;
    let (Some(addr), Some(leader_addr), Some(data)) =
        (own.addr(id), own.addr(leader), own.data_dir(id))
    else {
        r.outcome = Outcome::failed("member addresses unknown");
        return r;
    };
    match own.stop(id, Duration::from_secs(10)).await {
        Ok(clean) => r.stopped_cleanly = clean,
        Err(e) => {
            r.outcome = Outcome::failed(format!("stopping member {id}: {e:#}"));
            return r;
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    if let Err(e) = own.restart(id) {
        r.outcome = Outcome::failed(format!("starting member {id} again: {e:#}"));
        return r;
    }
    let start = Instant::now();
    let deadline = ctx.deadline();
    let mut last = String::from("no answer");
    while Instant::now() < deadline {
        match Progress::read(ctx.api, &leader_addr, &addr).await {
            Ok(p) => {
                if r.answer_seconds.is_none() {
                    r.answer_seconds = Some(start.elapsed().as_secs_f64());
                    r.applied_at_start = p.applied;
                    r.leader_applied_at_start = p.leader_applied;
                }
                r.snapshots_installed = p.snapshots_installed;
                r.snapshot_index = p.snapshot_index;
                if p.caught_up() {
                    r.catch_up_seconds = Some(start.elapsed().as_secs_f64());
                    break;
                }
                last = p.describe();
            }
            Err(e) => last = e,
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    r.data_dir_bytes = cluster::dir_bytes(&data);
    r.snapshot_bytes = ctx.api.get_len("/v1/cluster/snapshot").await.ok();
    r.outcome = if r.catch_up_seconds.is_some() {
        Outcome::done()
    } else {
        Outcome::failed(format!(
            "member {id} did not catch up within {:?} ({last})",
            ctx.args.timeout
        ))
    };
    r
}

/// `--add-member`: a new member joins through the leader (`--join`, the admin token), as an
/// operator adds one; times until it answers, until it is a voter, and until its applied index
/// reaches the leader's, and says how many snapshots it installed and their size.
pub async fn add_member(ctx: &Ctx<'_>, own: &mut OwnCluster) -> AddMember {
    let mut r = AddMember::default();
    let Some(leader) = ctx.api.leader().await else {
        r.outcome = Outcome::failed("no leader to join");
        return r;
    };
    let Some(leader_addr) = own.addr(leader) else {
        r.outcome = Outcome::failed("the leader's address is unknown");
        return r;
    };
    let id = own.next_id();
    r.member = id;
    r.leader_applied_at_start = ctx
        .api
        .member_status(&leader_addr)
        .await
        .ok()
        .and_then(|v| status_u64(&v, "last_applied"));
    let start = Instant::now();
    let addr = match own.add(id, &leader_addr) {
        Ok(a) => a,
        Err(e) => {
            r.outcome = Outcome::failed(format!("starting member {id}: {e:#}"));
            return r;
        }
    };
    let deadline = ctx.deadline();
    let mut last = String::from("no answer");
    while Instant::now() < deadline {
        if r.voter_seconds.is_none() {
            if let Ok(v) = ctx.api.get_json("/v1/cluster/status").await {
                let voter = v["members"].as_array().is_some_and(|m| {
                    m.iter()
                        .any(|m| m["id"].as_u64() == Some(id) && m["voter"] == true)
                });
                if voter {
                    r.voter_seconds = Some(start.elapsed().as_secs_f64());
                }
            }
        }
        match Progress::read(ctx.api, &leader_addr, &addr).await {
            Ok(p) => {
                r.answer_seconds
                    .get_or_insert(start.elapsed().as_secs_f64());
                r.snapshots_installed = p.snapshots_installed;
                r.snapshot_index = p.snapshot_index;
                if r.catch_up_seconds.is_none() && p.caught_up() {
                    r.catch_up_seconds = Some(start.elapsed().as_secs_f64());
                }
                last = p.describe();
            }
            Err(e) => last = e,
        }
        if r.catch_up_seconds.is_some() && r.voter_seconds.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if let Some(data) = own.data_dir(id) {
        r.data_dir_bytes = cluster::dir_bytes(&data);
    }
    r.snapshot_bytes = ctx.api.get_len("/v1/cluster/snapshot").await.ok();
    r.outcome = match (r.voter_seconds, r.catch_up_seconds) {
        (Some(_), Some(_)) => Outcome::done(),
        (None, _) => Outcome::failed(format!(
            "member {id} was not a voter within {:?} ({last})",
            ctx.args.timeout
        )),
        (_, None) => Outcome::failed(format!(
            "member {id} did not catch up within {:?} ({last})",
            ctx.args.timeout
        )),
    };
    r
}

/// `--kill-leader`: SIGKILL to the leader; times until a write through the API succeeds again
/// (a probe service rewritten every 20 ms), then how long an assignment change takes to reach
/// the nodes under the new leader (service `index` scaled up by `k`, as `--assignment-latency`),
/// then until every live node had a poll answered, and watches that the running tasks stay
/// running.
pub async fn kill_leader(
    ctx: &mut Ctx<'_>,
    own: &mut OwnCluster,
    index: usize,
    k_added: u64,
) -> KillLeader {
    let mut k = KillLeader {
        expected_running: ctx.target,
        ..Default::default()
    };
    // A first write, so that every probe after the kill is an update like the others.
    let mut n = 0u64;
    if let Err(e) = ctx.api.post_json("/v1/services", &api::probe_spec(n)).await {
        k.outcome = Outcome::failed(format!("writing the probe service: {e:#}"));
        return k;
    }
    let before = ctx.api.get_json("/v1/cluster/status").await.ok();
    let leader = before.as_ref().and_then(|v| status_u64(v, "leader"));
    k.term_before = before.as_ref().and_then(|v| status_u64(v, "term"));
    let Some(leader) = leader else {
        k.outcome = Outcome::failed("no leader to kill");
        return k;
    };
    k.member = Some(leader);
    k.min_running = ctx.fleet.running();
    let killed_ms = ctx.epoch.elapsed().as_millis() as u64 + 1;
    if let Err(e) = own.kill(leader) {
        k.outcome = Outcome::failed(format!("{e:#}"));
        return k;
    }
    let start = Instant::now();
    let deadline = ctx.deadline();
    while Instant::now() < deadline {
        n += 1;
        k.writes_tried += 1;
        k.min_running = k.min_running.min(ctx.fleet.running());
        if ctx
            .api
            .post_json("/v1/services", &api::probe_spec(n))
            .await
            .is_ok()
        {
            k.write_seconds = Some(start.elapsed().as_secs_f64());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if let Ok(v) = ctx.api.get_json("/v1/cluster/status").await {
        k.new_leader = status_u64(&v, "leader");
        k.term_after = status_u64(&v, "term");
    }
    k.elections = k.term_before.zip(k.term_after).map(|(b, a)| a - b.min(a));
    if k.write_seconds.is_some() {
        // What matters to the agents: a change made under the new leader reaches them at once.
        k.assignment_after = Some(assignment_latency(ctx, index, k_added).await);
    }
    // A node is back once a poll was answered after the kill, or once a poll it sent after the
    // kill has been held for a second (a controller that is not the leader refuses at once).
    let views = ctx.fleet.live_views();
    let mut back: Vec<Option<u64>> = vec![None; views.len()];
    while Instant::now() < deadline {
        k.min_running = k.min_running.min(ctx.fleet.running());
        let now = ctx.epoch.elapsed().as_millis() as u64 + 1;
        for (b, v) in back.iter_mut().zip(&views) {
            if b.is_some() {
                continue;
            }
            let ok = v.last_poll_ok_ms.load(Ordering::Relaxed);
            let sent = v.poll_sent_ms.load(Ordering::Relaxed);
            if ok > killed_ms {
                *b = Some(ok);
            } else if sent > killed_ms && now.saturating_sub(sent) >= 1000 {
                *b = Some(sent);
            }
        }
        if back.iter().all(Option::is_some) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let secs: Vec<f64> = back
        .iter()
        .flatten()
        .map(|b| b.saturating_sub(killed_ms) as f64 / 1000.0)
        .collect();
    k.nodes_back = secs.len() as u64;
    k.nodes = views.len() as u64;
    k.polls_back_p50_seconds = stats::percentile(&secs, 50.0);
    if k.nodes_back == k.nodes {
        k.polls_back_seconds = stats::percentile(&secs, 100.0);
    }
    k.min_running = k.min_running.min(ctx.fleet.running());
    k.all_running_after = ctx.fleet.running() >= ctx.target;
    let assigned = k.assignment_after.as_ref().map(|a| &a.outcome);
    k.outcome = match (k.write_seconds, assigned, k.polls_back_seconds) {
        (None, _, _) => {
            Outcome::failed(format!("no write succeeded within {:?}", ctx.args.timeout))
        }
        (_, Some(a), _) if !a.finished => Outcome::failed(format!(
            "after the failover: {}",
            a.error.as_deref().unwrap_or_default()
        )),
        (_, _, None) => Outcome::failed(format!(
            "{} of {} nodes had their polls answered or held within {:?}",
            k.nodes_back, k.nodes, ctx.args.timeout
        )),
        _ => Outcome::done(),
    };
    k
}

/// Fleet views the phases read.
impl Fleet {
    /// Live nodes.
    pub fn live(&self) -> u64 {
        self.views
            .iter()
            .filter(|v| !v.killed.load(Ordering::Relaxed))
            .count() as u64
    }

    /// Running tasks of `service` at `version` or newer on live nodes.
    pub fn running_at_least(&self, service: &str, version: u64) -> u64 {
        self.views
            .iter()
            .filter(|v| !v.killed.load(Ordering::Relaxed))
            .map(|v| v.running_at_least(service, version))
            .sum()
    }

    /// The live, registered nodes.
    pub fn live_views(&self) -> Vec<Arc<crate::node::NodeView>> {
        self.views
            .iter()
            .filter(|v| !v.killed.load(Ordering::Relaxed) && v.registered.load(Ordering::Relaxed))
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_ms_goes_both_ways() {
        let a = Instant::now();
        let b = a + Duration::from_millis(250);
        assert!((signed_ms(a, b) - 250.0).abs() < 1e-9);
        assert!((signed_ms(b, a) + 250.0).abs() < 1e-9);
        assert_eq!(signed_ms(a, a), 0.0);
    }
}
