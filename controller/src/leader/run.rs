//! The loop: when this member leads, turn silence into "down", reconcile, and commit the plan.

use super::{admin_token, drain, stacks, versions, Leader};
use crate::raft::RaftNode;
use hoist_proto::raft::{Command, Plan, Response};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A new task id: 16 hex digits.
pub fn new_task_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// Runs until the process ends.
pub async fn run(node: RaftNode, leader: Arc<Leader>) {
    let mut applied = node.applied_watch();
    let mut leading_term: Option<u64> = None;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(leader.settings.tick) => {}
            r = applied.changed() => {
                if r.is_err() { return; }
                // Let a burst of commits settle before reconciling again.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        if !node.is_leader() {
            leading_term = None;
            continue;
        }
        let term = node.term();
        if leading_term != Some(term) {
            leading_term = Some(term);
            leader.autoscaler.lead_started(now_ms());
            let now = Instant::now();
            leader.liveness.fresh_grace(node.view().nodes.values(), now);
        }
        if let Err(e) = step(&node, &leader).await {
            tracing::debug!(error = %e, "orchestration step");
        }
    }
}

/// One round: the cluster format and node versions, liveness changes, then reconciliation.
pub async fn step(node: &RaftNode, leader: &Leader) -> Result<(), crate::raft::WriteError> {
    let now = Instant::now();
    let cluster_format = node.stale_read(|s| s.cluster_format);
    let members: Vec<_> = node
        .member_versions()
        .into_iter()
        .map(|(_, _, v)| v)
        .collect();
    // Version bookkeeping never holds up liveness and reconciliation: a failure is retried
    // next round.
    if let Some(format) = versions::format_to_raise(cluster_format, &members) {
        match node.write(Command::SetClusterFormat { format }).await {
            Ok(_) => tracing::info!(
                from = cluster_format,
                to = format,
                "every member reads a newer format: the cluster moved to it"
            ),
            Err(e) => tracing::warn!(error = %e, format, "raising the cluster format"),
        }
    }
    if let Some(dir) = &leader.settings.data_dir {
        if let Err(e) = admin_token::ensure(node, dir, now_ms()).await {
            tracing::warn!(error = %e, "making the first admin token");
        }
    }
    let plan_missing = node.stale_read(|s| {
        s.cluster_format >= 2 && s.network.as_ref().is_none_or(|n| n.vip_cidr.is_none())
    });
    if plan_missing {
        let net = leader.settings.network.clone();
        match node.write(Command::SetClusterNetwork(net.clone())).await {
            Ok(_) => {
                tracing::info!(cidr = %net.cidr, prefix = net.subnet_prefix, "overlay address plan set")
            }
            Err(e) => tracing::warn!(error = %e, "setting the overlay address plan"),
        }
    }
    // The passes over every node read a copy of the state (a few pointer copies): at thousands
    // of nodes they would otherwise hold the lock `apply` needs at each step.
    let state = node.view();
    let updates =
        versions::node_version_updates(state.cluster_format, state.nodes.values(), |id| {
            leader.liveness.version_of(id)
        });
    drop(state);
    if !updates.is_empty() {
        if let Err(e) = node.write(Command::Batch(updates)).await {
            tracing::warn!(error = %e, "recording node versions");
        }
    }
    let state = node.view();
    let pace = leader.pace(state.nodes.len());
    leader.liveness.set_grace(pace.grace);
    let changes = leader.liveness.changes(state.nodes.values(), now);
    drop(state);
    if !changes.is_empty() {
        for (id, status) in &changes {
            tracing::info!(node = %id, ?status, "node liveness changed");
        }
        let cmds = changes
            .into_iter()
            .map(|(id, status)| Command::SetNodeStatus { id, status })
            .collect();
        node.write(Command::Batch(cmds)).await?;
    }
    // Stack releases whose verdict is in: one command each (a rollback is one entry for every
    // service of the release).
    let verdicts = node.stale_read(stacks::verdicts);
    for v in verdicts {
        match &v {
            Command::RollbackStack {
                stack,
                release,
                reason,
            } => {
                tracing::warn!(%stack, release, %reason, "stack release failed: rolling it back")
            }
            Command::SetReleaseState {
                stack,
                release,
                state,
                ..
            } => {
                tracing::info!(%stack, release, ?state, "stack release ended")
            }
            _ => {}
        }
        if let Response::Error(e) = node.write(v).await? {
            tracing::debug!(error = %e.message, "stack verdict refused");
        }
    }
    // Reconcile on a copy of the state, off the runtime's threads: commits (and so the agents'
    // reports and the API's writes) go on meanwhile. The plan is checked against the state it
    // is applied to (`State::apply` of `Plan` refuses what no longer holds). The reconciler
    // comes back with what it remembers for the next pass; if the pass panics it is lost, and
    // the next pass runs whole.
    let view = node.view();
    let drain_barrier = leader.settings.drain_barrier;
    let mut reconciler = std::mem::take(&mut *leader.reconciler());
    let reconciled = tokio::task::spawn_blocking(move || {
        let mut ids = new_task_id;
        let mut r = reconciler.pass(&view, now_ms(), &mut ids);
        if drain_barrier {
            let (stop, drain) = drain::split_stops(&view, std::mem::take(&mut r.plan.stop));
            r.plan.stop = stop;
            r.plan.drain = drain;
        }
        (view, r, reconciler)
    })
    .await;
    let (view, mut r) = match reconciled {
        Ok((view, r, reconciler)) => {
            *leader.reconciler() = reconciler;
            (view, r)
        }
        Err(e) => {
            tracing::error!(error = %e, "reconciliation failed: nothing planned this round");
            return Ok(());
        }
    };
    let grace = pace.grace;
    let live = |n: &str| leader.liveness.since(n, now).is_some_and(|d| d < grace);
    r.plan
        .stop
        .extend(leader.drains.due(&view, now, grace, live));
    drop(view);
    leader.set_pending(std::mem::take(&mut r.pending));
    if r.is_empty() {
        return Ok(());
    }
    for (service, from, rollout) in r.rollbacks {
        tracing::warn!(%service, from, "rolling back");
        let cmds = vec![
            Command::RollbackService {
                name: service.clone(),
                version: Some(from),
            },
            Command::Plan(Plan {
                rollouts: vec![(service, rollout)],
                ..Default::default()
            }),
        ];
        let answer = node.write(Command::Batch(cmds)).await?;
        let refused: Vec<String> = match &answer {
            Response::Error(e) => vec![e.message.clone()],
            Response::Batch(all) => all
                .iter()
                .filter_map(|a| match a {
                    Response::Error(e) => Some(e.message.clone()),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        if !refused.is_empty() {
            tracing::error!(?refused, "rollback refused");
        }
    }
    let plan = r.plan;
    if plan == Plan::default() {
        return Ok(());
    }
    for (id, why) in &plan.drain {
        tracing::info!(task = %id, %why, "draining: out of every node's addresses, then stopped");
    }
    // One Raft entry per part: a whole service placed at once would not fit in one.
    for part in super::plan_split::split(plan, super::plan_split::PLACEMENTS_PER_ENTRY) {
        let answer = node.write(Command::Plan(part)).await?;
        if let Response::Plan(p) = &answer {
            crate::metrics::recorders().placements(p.placed, p.refused.len() as u64);
        }
        match answer {
            Response::Plan(p) if !p.refused.is_empty() => {
                tracing::debug!(placed = p.placed, refused = ?p.refused.first(), "plan partly refused");
            }
            _ => {}
        }
    }
    Ok(())
}
