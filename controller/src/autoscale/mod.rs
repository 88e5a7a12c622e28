//! Autoscaling on the leader: hooks pushed by monitors (Alertmanager's webhook, `scale-hook`)
//! and the query pulled from Prometheus become decisions, each committed through Raft with its
//! reason (`Command::Autoscale`, applied in `state/autoscale.rs`).
//!
//! The policy is pure (`policy.rs`); what it needs beyond the replicated history lives here, in
//! the leader's memory: the recommendations of the stabilization window (replicated decisions
//! count too), and when this member started leading. A new leader knows no recommendation older
//! than its own leadership, so it scales nothing down until a whole window has passed: a
//! failover never turns a held scale-down into a sudden one.

pub mod alertmanager;
pub mod policy;
pub mod prometheus;
mod pull;
pub mod tokens;

pub use pull::run_pull;

use crate::raft::{RaftNode, WriteError};
use hoist_proto::cluster::{AutoscaleDecision, AutoscaleOutcome, AutoscaleSource};
use hoist_proto::raft::{Command, CommandError, ErrorCode, Response};
use policy::Ask;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// A decision to make: who asks what of which service, and why.
#[derive(Debug, Clone)]
pub struct Request {
    pub service: String,
    pub source: AutoscaleSource,
    pub ask: Ask,
    /// What asked, for the history (`alert HighLoad firing (hoist_scale=up)`).
    pub reason: String,
    /// An alert's identity: applied once.
    pub dedup: Option<String>,
    /// Record the decision even when it changes nothing (a hook's request is always recorded;
    /// the query's evaluations only when their outcome changes).
    pub record_unchanged: bool,
}

impl Request {
    /// The decision it makes from `from` to `to` (`apply` sets its index and time).
    fn decision(&self, from: i64, to: i64, detail: String) -> AutoscaleDecision {
        AutoscaleDecision {
            service: self.service.clone(),
            source: self.source,
            from,
            to,
            reason: self.reason.clone(),
            detail,
            dedup: self.dedup.clone(),
            index: 0,
            time_ms: 0,
        }
    }
}

/// Why a decision could not be made.
#[derive(Debug)]
pub enum DecideError {
    /// Refused by the state (no such service, no bounds, ...).
    Refused(CommandError),
    Write(WriteError),
}

impl std::fmt::Display for DecideError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecideError::Refused(e) => write!(f, "{}", e.message),
            DecideError::Write(e) => write!(f, "{e}"),
        }
    }
}

/// The leader's autoscaling memory.
#[derive(Debug, Default)]
pub struct Autoscaler {
    /// One decision at a time: each is made from the count the previous one committed.
    deciding: tokio::sync::Mutex<()>,
    memory: Mutex<Memory>,
}

#[derive(Debug, Default)]
struct Memory {
    /// Leader time this member started leading.
    leading_since_ms: u64,
    services: HashMap<String, ServiceMemory>,
}

#[derive(Debug, Default)]
struct ServiceMemory {
    /// (time, recommendation), oldest first, at most a window long.
    recent: VecDeque<(u64, i64)>,
    /// What the last recorded query evaluation said (to record only changes).
    last_pull: Option<String>,
}

/// How many recommendations are kept per service at most (an evaluation a second for 10 min).
const RECENT_LIMIT: usize = 600;

impl Autoscaler {
    /// This member started leading at `now_ms`: what an earlier leadership remembered is gone.
    pub fn lead_started(&self, now_ms: u64) {
        let mut m = self.memory.lock().expect("autoscaler memory");
        m.leading_since_ms = now_ms;
        m.services.clear();
    }

    /// Decides on `req` and commits the decision (unless it changes nothing and need not be
    /// recorded: then `Ok(None)`).
    pub async fn decide(
        &self,
        node: &RaftNode,
        req: Request,
    ) -> Result<Option<AutoscaleOutcome>, DecideError> {
        let _one = self.deciding.lock().await;
        // A conflict means the count moved between the read and the commit (an operator's
        // scale): decide again from the new one.
        for _ in 0..3 {
            let Some(decision) = self.make(node, &req)? else {
                return Ok(None);
            };
            let answer = node
                .write(Command::Autoscale(Box::new(decision)))
                .await
                .map_err(DecideError::Write)?;
            match answer {
                Response::Autoscale(outcome) => return Ok(Some(*outcome)),
                Response::Error(e) if e.code == ErrorCode::Conflict => continue,
                Response::Error(e) => return Err(DecideError::Refused(e)),
                other => {
                    return Err(DecideError::Refused(CommandError {
                        code: ErrorCode::Conflict,
                        message: format!("unexpected answer {other:?}"),
                        field: None,
                    }))
                }
            }
        }
        Err(DecideError::Refused(CommandError {
            code: ErrorCode::Conflict,
            message: format!("service {:?} kept changing: try again", req.service),
            field: None,
        }))
    }

    /// The decision `req` makes now, from the leader's state and memory.
    fn make(
        &self,
        node: &RaftNode,
        req: &Request,
    ) -> Result<Option<AutoscaleDecision>, DecideError> {
        let now = now_ms();
        let refused = |code, message: String| {
            DecideError::Refused(CommandError {
                code,
                message,
                field: None,
            })
        };
        let read = node.stale_read(|s| {
            let record = s.services.get(&req.service)?;
            let spec = &record.current().spec;
            let log = s.autoscale.get(&req.service);
            let seen = match (&req.dedup, log) {
                (Some(k), Some(l)) => l.seen.contains(k),
                _ => false,
            };
            let decided: Vec<(u64, i64)> = log
                .map(|l| l.decisions.iter().map(|d| (d.time_ms, d.to)).collect())
                .unwrap_or_default();
            let last_up = log.and_then(|l| l.last_up()).map(|d| d.time_ms);
            Some((
                spec.replicas,
                spec.autoscale.clone(),
                seen,
                decided,
                last_up,
            ))
        });
        let Some((current, bounds, seen, decided, last_up)) = read else {
            return Err(refused(
                ErrorCode::NotFound,
                format!("service {:?} not found", req.service),
            ));
        };
        if seen {
            // Applied before: the state answers with the decision it recorded then, changing
            // nothing; a repeat is no new recommendation either.
            return Ok(Some(req.decision(current, current, String::new())));
        }
        let Some(bounds) = bounds else {
            return Err(refused(
                ErrorCode::Conflict,
                format!(
                    "service {:?} has no [autoscale] bounds: add them to its spec to scale it by hook",
                    req.service
                ),
            ));
        };
        let mut memory = self.memory.lock().expect("autoscaler memory");
        let since = memory.leading_since_ms;
        let window = bounds.stabilization_down_ms();
        let mem = memory.services.entry(req.service.clone()).or_default();
        // Recommendations of the window: this leader's, the committed decisions', and the count
        // it found when it started leading (it knows nothing older).
        let mut recent: Vec<(u64, i64)> = mem.recent.iter().copied().collect();
        recent.extend(decided);
        recent.push((since, current));
        recent.sort_unstable();
        let verdict = policy::decide(
            req.ask,
            &policy::Context {
                current,
                bounds: &bounds,
                now_ms: now,
                last_up_ms: last_up,
                recent: &recent,
            },
        );
        mem.recent.push_back((now, verdict.recommendation));
        while mem
            .recent
            .front()
            .is_some_and(|(t, _)| *t + window < now || mem.recent.len() > RECENT_LIMIT)
        {
            mem.recent.pop_front();
        }
        let decision = req.decision(current, verdict.to, verdict.detail);
        if !req.record_unchanged {
            // The query's evaluations: one that changes nothing is recorded only when its
            // outcome differs from the last one recorded.
            let signature = format!("{}|{}", decision.to, decision.detail);
            if decision.to == current && mem.last_pull.as_deref() == Some(&signature) {
                return Ok(None);
            }
            mem.last_pull = Some(signature);
        }
        Ok(Some(decision))
    }

    /// A query that could not be evaluated: recorded once per distinct error, scales nothing.
    pub async fn query_failed(
        &self,
        node: &RaftNode,
        service: &str,
        error: String,
    ) -> Result<(), DecideError> {
        let _one = self.deciding.lock().await;
        let current =
            node.stale_read(|s| s.services.get(service).map(|r| r.current().spec.replicas));
        let Some(current) = current else {
            return Ok(());
        };
        {
            let mut memory = self.memory.lock().expect("autoscaler memory");
            let mem = memory.services.entry(service.to_string()).or_default();
            let signature = format!("error|{error}");
            if mem.last_pull.as_deref() == Some(&signature) {
                return Ok(());
            }
            mem.last_pull = Some(signature);
        }
        let decision = AutoscaleDecision {
            service: service.to_string(),
            source: AutoscaleSource::Query,
            from: current,
            to: current,
            reason: "query failed: nothing scaled".into(),
            detail: error,
            dedup: None,
            index: 0,
            time_ms: 0,
        };
        match node
            .write(Command::Autoscale(Box::new(decision)))
            .await
            .map_err(DecideError::Write)?
        {
            Response::Error(e) => Err(DecideError::Refused(e)),
            _ => Ok(()),
        }
    }
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
