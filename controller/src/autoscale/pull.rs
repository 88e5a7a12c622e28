//! Pull mode: while this member leads, each service with a `query` is evaluated every
//! `interval` against `--prometheus`, and its value scaled toward `target_value` per replica.
//! Evaluations run beside the leader's loop (a slow Prometheus never holds up scheduling), one
//! at a time per service.

use super::policy::Ask;
use super::{prometheus, Request};
use crate::leader::Leader;
use crate::raft::RaftNode;
use hoist_proto::cluster::AutoscaleSource;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A service whose query is due, with what it needs.
struct Due {
    service: String,
    query: String,
    target: f64,
}

/// Runs until the process ends.
pub async fn run_pull(node: RaftNode, leader: Arc<Leader>) {
    let http = reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(Duration::from_secs(2))
        .build()
        .expect("http client builds");
    let mut last: HashMap<String, Instant> = HashMap::new();
    let running: Arc<Mutex<HashSet<String>>> = Arc::default();
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tick.tick().await;
        if !node.is_leader() {
            last.clear();
            continue;
        }
        let now = Instant::now();
        let due: Vec<Due> = node.stale_read(|s| {
            s.services
                .iter()
                .filter_map(|(name, r)| {
                    let a = r.current().spec.autoscale.as_ref()?;
                    let query = a.query.clone()?;
                    let target = a.target_value?.0;
                    let every = Duration::from_millis(a.interval_ms());
                    let fresh = last
                        .get(name)
                        .is_some_and(|t| now.duration_since(*t) < every);
                    (!fresh).then(|| Due {
                        service: name.clone(),
                        query,
                        target,
                    })
                })
                .collect()
        });
        last.retain(|name, _| node.stale_read(|s| s.services.contains_key(name)));
        for d in due {
            if !running
                .lock()
                .expect("running set")
                .insert(d.service.clone())
            {
                continue;
            }
            last.insert(d.service.clone(), now);
            let (node, leader, http, running) =
                (node.clone(), leader.clone(), http.clone(), running.clone());
            tokio::spawn(async move {
                evaluate(&node, &leader, &http, &d).await;
                running.lock().expect("running set").remove(&d.service);
            });
        }
    }
}

async fn evaluate(node: &RaftNode, leader: &Leader, http: &reqwest::Client, d: &Due) {
    let autoscaler = &leader.autoscaler;
    let Some(base) = leader.settings.prometheus.as_deref() else {
        let e = "no Prometheus to ask: start the controllers with --prometheus URL".to_string();
        if let Err(e) = autoscaler.query_failed(node, &d.service, e).await {
            tracing::debug!(service = %d.service, error = %e, "recording a query failure");
        }
        return;
    };
    let value = match prometheus::query(http, base, &d.query).await {
        Ok(v) => v,
        Err(e) => {
            tracing::info!(service = %d.service, error = %e, "autoscale query failed");
            if let Err(e) = autoscaler.query_failed(node, &d.service, e).await {
                tracing::debug!(service = %d.service, error = %e, "recording a query failure");
            }
            return;
        }
    };
    let req = Request {
        service: d.service.clone(),
        source: AutoscaleSource::Query,
        ask: Ask::Value {
            value,
            target: d.target,
        },
        reason: format!(
            "query value {} per replica, target {}",
            trim(value),
            trim(d.target)
        ),
        dedup: None,
        record_unchanged: false,
    };
    match autoscaler.decide(node, req).await {
        Ok(Some(o)) if o.decision.to != o.decision.from => tracing::info!(
            service = %d.service, from = o.decision.from, to = o.decision.to,
            reason = %o.decision.reason, "autoscaled"
        ),
        Ok(_) => {}
        Err(e) => tracing::info!(service = %d.service, error = %e, "autoscale decision"),
    }
}

/// A number as people write it: `12.5`, `3`, `0.333`.
pub fn trim(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}
