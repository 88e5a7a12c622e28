//! What a controller member answers on `GET /metrics` (`api/metrics.rs` serves it): Raft's
//! progress, the API's requests, the scheduler's placements and pending replicas, and each
//! service's replicas, in Prometheus text or OpenMetrics (`hoist_common::metrics`).
//!
//! Two kinds of values:
//! - **Recorded** as things happen, in this process ([`recorders`]): log fsync durations (the
//!   WAL's writer thread), the commit index (the log store), leader changes (Raft's metrics
//!   watch), API requests (a middleware), placements (the leader's loop). Process-wide, because
//!   the WAL writer and the log store have no handle of the member; a process runs one member.
//! - **Computed at scrape time** from one read-locked look at this member's applied [`State`]
//!   ([`cluster`]) and the leader's in-memory explanations of unplaced slots ([`pending`]):
//!   nothing is kept between scrapes, so a removed service simply disappears.
//!
//! Every member answers for itself (the route is never forwarded to the leader): the replicated
//! values are the same on every member that has caught up, so dashboards aggregate them with
//! `max by (service)`, or keep the member with `hoist_raft_leader == 1`. Unplaced slots and
//! placements are the leader's alone.

pub mod cluster;
pub mod pending;

use crate::leader::Leader;
use crate::raft::RaftNode;
use crate::state::State;
use hoist_common::metrics::{counters, gauges, Exposition, LATENCY_BUCKETS};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use std::sync::LazyLock;
use std::time::Duration;

/// Labels of an API request: the route as matched (`/v1/services/{name}`, never the raw path;
/// `unmatched` for none), the method and the answer's status code.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: String,
    pub route: String,
    pub status: String,
}

/// Labels of an API request's latency: its route and method.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub method: String,
    pub route: String,
}

/// Labels of a placement: `placed`, or `refused` by `apply`'s re-check of the plan.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: &'static str,
}

/// Labels of a request to another member: what it asks (`append`, `vote`, `snapshot`,
/// `propose`) and how it travelled (`link`, or `http` when the member link could not be used).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PeerRequestLabels {
    pub kind: &'static str,
    pub transport: &'static str,
}

/// Log fsync buckets in seconds: 100 µs to 5 s (a stalled disk shows in the last ones).
const FSYNC_BUCKETS: [f64; 15] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// The values recorded as things happen (see the module doc). Cheap to update: atomics behind
/// `Arc`s, a read lock to find a label set already seen.
#[derive(Debug)]
pub struct Recorders {
    fsync: Histogram,
    commit_index: Gauge,
    leader_changes: Counter,
    requests: Family<RequestLabels, Counter>,
    request_seconds: Family<RouteLabels, Histogram, fn() -> Histogram>,
    placements: Family<ResultLabel, Counter>,
    peer_requests: Family<PeerRequestLabels, Counter>,
}

impl Default for Recorders {
    fn default() -> Self {
        Recorders {
            fsync: Histogram::new(FSYNC_BUCKETS),
            commit_index: Gauge::default(),
            leader_changes: Counter::default(),
            requests: Family::default(),
            request_seconds: Family::new_with_constructor(latency_histogram),
            placements: Family::default(),
            peer_requests: Family::default(),
        }
    }
}

impl Recorders {
    /// One `fdatasync` round of the Raft log (the segments written and, when one was created,
    /// the directory).
    pub fn log_synced(&self, took: Duration) {
        self.fsync.observe(took.as_secs_f64());
    }

    /// The log store saved a new commit index.
    pub fn committed(&self, index: u64) {
        self.commit_index
            .set(i64::try_from(index).unwrap_or(i64::MAX));
    }

    /// This member saw another member (or itself) become the leader.
    pub fn leader_changed(&self) {
        self.leader_changes.inc();
    }

    /// One API request answered.
    pub fn request(&self, method: &str, route: &str, status: u16, took: Duration) {
        self.requests
            .get_or_create(&RequestLabels {
                method: method.to_string(),
                route: route.to_string(),
                status: status.to_string(),
            })
            .inc();
        self.request_seconds
            .get_or_create(&RouteLabels {
                method: method.to_string(),
                route: route.to_string(),
            })
            .observe(took.as_secs_f64());
    }

    /// The leader committed a plan: `placed` new tasks, `refused` placements dropped by the
    /// re-check.
    pub fn placements(&self, placed: u64, refused: u64) {
        for (result, n) in [("placed", placed), ("refused", refused)] {
            self.placements
                .get_or_create(&ResultLabel { result })
                .inc_by(n);
        }
    }

    /// One request sent to another member, over `transport`.
    pub fn peer_request(&self, kind: &'static str, transport: &'static str) {
        self.peer_requests
            .get_or_create(&PeerRequestLabels { kind, transport })
            .inc();
    }

    /// Registers clones (they share the values) in a scrape's registry.
    fn register(&self, r: &mut Registry) {
        r.register_with_unit(
            "hoist_raft_log_fsync_duration",
            "Time to make a batch of Raft log appends durable (fdatasync of the segment files)",
            Unit::Seconds,
            self.fsync.clone(),
        );
        r.register(
            "hoist_raft_commit_index",
            "The newest log index this member knows to be committed",
            self.commit_index.clone(),
        );
        r.register(
            "hoist_raft_leader_changes",
            "Times this member saw a new leader since it started",
            self.leader_changes.clone(),
        );
        r.register(
            "hoist_api_requests",
            "API requests answered by this member, by route (as matched), method and status",
            self.requests.clone(),
        );
        r.register_with_unit(
            "hoist_api_request_duration",
            "Time from a request's arrival to its answer, by route and method (forwarding to the leader included)",
            Unit::Seconds,
            self.request_seconds.clone(),
        );
        r.register(
            "hoist_scheduler_placements",
            "Replicas the leader placed on nodes (placed), or dropped when the plan's re-check found they no longer fit (refused), while this member led",
            self.placements.clone(),
        );
        r.register(
            "hoist_peer_requests",
            "Requests this member sent to other members (Raft RPCs and forwarded writes), by kind and by transport: the member link, or HTTP when this member or the peer cannot use it",
            self.peer_requests.clone(),
        );
    }
}

/// This process's recorders.
pub fn recorders() -> &'static Recorders {
    static RECORDERS: LazyLock<Recorders> = LazyLock::new(Recorders::default);
    &RECORDERS
}

/// Everything computed at scrape time, collected under the state's read lock and encoded after.
#[derive(Debug, Default)]
struct Snapshot {
    term: u64,
    applied: u64,
    leader: bool,
    services: Vec<(String, cluster::Replicas)>,
    /// (service, reason, replicas).
    pending: Vec<(String, String, u64)>,
    nodes: Vec<(&'static str, u64)>,
    cluster_format: u32,
    /// (service, scaled, held).
    autoscale: Vec<(String, u64, u64)>,
}

type Labels = Vec<(&'static str, String)>;

impl Snapshot {
    fn take(node: &RaftNode, leader: &Leader) -> Snapshot {
        let is_leader = node.is_leader();
        let mut snap = Snapshot {
            term: node.term(),
            applied: *node.applied_watch().borrow(),
            leader: is_leader,
            ..Snapshot::default()
        };
        // Counted on a copy: a count goes over every task, and the state lock held meanwhile
        // would keep entries from being applied.
        let s: State = node.view();
        snap.services = cluster::replicas(&s).into_iter().collect();
        snap.nodes = cluster::nodes_by_status(&s).into_iter().collect();
        snap.cluster_format = s.cluster_format;
        snap.autoscale = cluster::autoscale_decisions(&s);
        for (service, r) in &snap.services {
            if r.starting > 0 {
                snap.pending
                    .push((service.clone(), "starting".into(), r.starting));
            }
            // The leader's loop explains unplaced slots; a follower's copy is from its last term.
            if is_leader {
                let mut by_reason: std::collections::BTreeMap<String, u64> = Default::default();
                for (_, why) in leader.pending(service) {
                    *by_reason.entry(pending::reason_label(&why)).or_default() += 1;
                }
                snap.pending.extend(
                    by_reason
                        .into_iter()
                        .map(|(reason, n)| (service.clone(), reason, n)),
                );
            }
        }
        snap
    }

    fn service_rows(&self, f: impl Fn(&cluster::Replicas) -> u64) -> Vec<(Labels, f64)> {
        self.services
            .iter()
            .map(|(name, r)| (vec![("service", name.clone())], f(r) as f64))
            .collect()
    }
}

impl Collector for Snapshot {
    fn encode(&self, mut e: DescriptorEncoder) -> std::fmt::Result {
        let none: Labels = Vec::new();
        let one = |v: u64| vec![(none.clone(), v as f64)];
        gauges(
            &mut e,
            "hoist_raft_term",
            "The newest Raft term this member knows.",
            None,
            &one(self.term),
        )?;
        gauges(
            &mut e,
            "hoist_raft_applied_index",
            "The newest log index applied to this member's state.",
            None,
            &one(self.applied),
        )?;
        gauges(
            &mut e,
            "hoist_raft_leader",
            "1 when this member is the leader, else 0.",
            None,
            &one(u64::from(self.leader)),
        )?;
        gauges(
            &mut e,
            "hoist_cluster_format",
            "The format every member reads (the cluster's, replicated).",
            None,
            &one(u64::from(self.cluster_format)),
        )?;
        let nodes: Vec<(Labels, f64)> = self
            .nodes
            .iter()
            .map(|(status, n)| (vec![("status", status.to_string())], *n as f64))
            .collect();
        gauges(&mut e, "hoist_nodes", "Nodes by status.", None, &nodes)?;
        gauges(
            &mut e,
            "hoist_service_replicas_desired",
            "Replicas a service wants: its spec's replicas, or one per eligible node for a global service.",
            None,
            &self.service_rows(|r| r.desired),
        )?;
        gauges(
            &mut e,
            "hoist_service_replicas_running",
            "Replicas of a service whose container runs (any version), still wanted.",
            None,
            &self.service_rows(|r| r.running),
        )?;
        gauges(
            &mut e,
            "hoist_service_replicas_healthy",
            "Running replicas of a service that passed their health check (or have none).",
            None,
            &self.service_rows(|r| r.healthy),
        )?;
        let pending: Vec<(Labels, f64)> = self
            .pending
            .iter()
            .map(|(service, reason, n)| {
                (
                    vec![("service", service.clone()), ("reason", reason.clone())],
                    *n as f64,
                )
            })
            .collect();
        gauges(
            &mut e,
            "hoist_pending_tasks",
            "Replicas wanted but not running, by reason: starting (placed, being pulled or started on its node), or why no node could take it (memory, cpu, port, constraint, drained, paused, down, max_per_node, agent_format, no_subnet, no_nodes; comma-joined when nodes differ; the leader's alone).",
            None,
            &pending,
        )?;
        let decisions: Vec<(Labels, f64)> = self
            .autoscale
            .iter()
            .flat_map(|(service, scaled, held)| {
                [("scaled", scaled), ("held", held)].map(|(outcome, n)| {
                    (
                        vec![
                            ("service", service.clone()),
                            ("outcome", outcome.to_string()),
                        ],
                        *n as f64,
                    )
                })
            })
            .collect();
        counters(
            &mut e,
            "hoist_autoscale_decisions",
            "Autoscaling decisions committed for a service (replicated): scaled changed its replicas, held did not (a bound, cooldown_up, stabilization_down, a failed query).",
            None,
            &decisions,
        )
    }
}

/// The whole `/metrics` answer of this member.
pub fn render(node: &RaftNode, leader: &Leader, format: Exposition) -> String {
    let mut registry = Registry::default();
    recorders().register(&mut registry);
    let build: Family<Vec<(&'static str, String)>, Gauge> = Family::default();
    build
        .get_or_create(&vec![
            ("version", hoist_proto::format::VERSION.to_string()),
            ("format", hoist_proto::format::CURRENT.to_string()),
            ("member", node.id().to_string()),
        ])
        .set(1);
    registry.register(
        "hoist_controller_build_info",
        "Always 1: this member's Hoist version, the newest format it reads, and its member id",
        build,
    );
    registry.register_collector(Box::new(Snapshot::take(node, leader)));
    format.encode(&registry)
}

#[cfg(test)]
mod tests;
