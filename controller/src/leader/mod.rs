//! The leader's loop and the in-memory state it keeps: agents' heartbeats (never in
//! the Raft log), the grace period that turns silence into "down" through Raft, and the pending
//! explanations of the last reconciliation. Every member runs the loop; only the leader acts.

pub mod admin_token;
mod drain;
mod liveness;
mod plan_split;
mod run;
mod stacks;
pub mod versions;

pub use liveness::Liveness;
pub use run::run;

use crate::scheduler::reconcile::{Pending, Reconciler};
use hoist_proto::cluster::ClusterNetwork;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Timings of the loop and of node liveness.
#[derive(Debug, Clone)]
pub struct LeaderSettings {
    /// Silence after which a node is marked down (`--node-grace`).
    pub grace: Duration,
    /// How often agents are told to heartbeat, at least (`--heartbeat-interval`).
    pub heartbeat_interval: Duration,
    /// The most heartbeats per second the leader asks of all nodes together: the interval
    /// grows past `heartbeat_interval` to keep under it (`--max-heartbeats-per-second`; 0: no
    /// limit; `liveness::pace`).
    pub max_heartbeats_per_second: u32,
    /// How often the leader reconciles when nothing changes.
    pub tick: Duration,
    /// The overlay's address plan it sets once the cluster is at format 2 and has none
    /// (`--cluster-cidr`, `--node-subnet-prefix`).
    pub network: ClusterNetwork,
    /// Replicas serving clients leave every node's addresses before they stop
    /// (`leader/drain.rs`); off only to show what the barrier prevents (`--unsafe-no-drain`).
    pub drain_barrier: bool,
    /// Where autoscaling queries are evaluated (`--prometheus`, `http://host:9090`).
    pub prometheus: Option<String>,
    /// The highest `autoscale.max` a spec may set (`--autoscale-max-replicas`).
    pub autoscale_max_replicas: i64,
    /// Where the first admin token is written (the member's data dir); `None`: nowhere, and
    /// none is made.
    pub data_dir: Option<std::path::PathBuf>,
}

impl Default for LeaderSettings {
    fn default() -> Self {
        LeaderSettings {
            grace: Duration::from_secs(15),
            heartbeat_interval: Duration::from_secs(1),
            max_heartbeats_per_second: 500,
            tick: Duration::from_millis(250),
            network: ClusterNetwork {
                cidr: hoist_proto::overlay::DEFAULT_CLUSTER_CIDR.into(),
                subnet_prefix: hoist_proto::overlay::DEFAULT_SUBNET_PREFIX,
                vip_cidr: Some(hoist_proto::overlay::DEFAULT_VIP_CIDR.into()),
            },
            drain_barrier: true,
            prometheus: None,
            autoscale_max_replicas: 1000,
            data_dir: None,
        }
    }
}

/// A node's latest overlay report as the leader keeps it.
#[derive(Debug, Clone)]
struct OverlayReportSeen {
    at: std::time::Instant,
    peers: Vec<hoist_proto::PeerStatus>,
    mesh_error: Option<String>,
}

/// A node's latest volume report as the leader keeps it.
#[derive(Debug, Clone)]
struct VolumeReportSeen {
    at: std::time::Instant,
    volumes: Vec<hoist_proto::node::NodeVolume>,
}

/// What the API handlers share with the loop.
#[derive(Debug)]
pub struct Leader {
    pub settings: LeaderSettings,
    pub liveness: Liveness,
    /// What each node applied of the endpoints, and the drains in progress.
    pub drains: drain::Drains,
    /// Per service: slots that could not be placed, with the reason per node.
    pending: RwLock<Pending>,
    /// Each node's latest overlay report (`POST /v1/agent/overlay`), in memory only.
    overlay: RwLock<std::collections::HashMap<String, OverlayReportSeen>>,
    /// Each node's latest named-volume report (`POST /v1/agent/volumes`), in memory only.
    volumes: RwLock<std::collections::HashMap<String, VolumeReportSeen>>,
    /// Autoscaling's memory: the stabilization window's recommendations.
    pub autoscaler: crate::autoscale::Autoscaler,
    /// The reconciliation's memory of the services it found with nothing to do; taken by the
    /// pass in progress (only the loop reconciles).
    reconciler: std::sync::Mutex<Reconciler>,
}

impl Leader {
    /// The reconciler, even if a pass panicked while holding it (it is only ever swapped whole).
    fn reconciler(&self) -> std::sync::MutexGuard<'_, Reconciler> {
        self.reconciler.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The heartbeat pace for a cluster of `nodes` nodes (`liveness::pace`).
    pub fn pace(&self, nodes: usize) -> liveness::Pace {
        liveness::pace(
            nodes,
            self.settings.heartbeat_interval,
            self.settings.grace,
            self.settings.max_heartbeats_per_second,
        )
    }

    pub fn new(settings: LeaderSettings) -> Arc<Leader> {
        Arc::new(Leader {
            liveness: Liveness::new(settings.grace),
            drains: drain::Drains::default(),
            settings,
            pending: RwLock::default(),
            overlay: RwLock::default(),
            volumes: RwLock::default(),
            autoscaler: crate::autoscale::Autoscaler::default(),
            reconciler: std::sync::Mutex::default(),
        })
    }

    /// Keeps `node`'s overlay report.
    pub fn overlay_reported(
        &self,
        node: &str,
        peers: Vec<hoist_proto::PeerStatus>,
        mesh_error: Option<String>,
        now: std::time::Instant,
    ) {
        self.overlay.write().expect("overlay lock").insert(
            node.to_string(),
            OverlayReportSeen {
                at: now,
                peers,
                mesh_error,
            },
        );
    }

    /// `node`'s latest overlay report and its age.
    pub fn overlay_of(
        &self,
        node: &str,
        now: std::time::Instant,
    ) -> Option<(std::time::Duration, Vec<hoist_proto::PeerStatus>)> {
        let map = self.overlay.read().expect("overlay lock");
        map.get(node)
            .map(|r| (now.saturating_duration_since(r.at), r.peers.clone()))
    }

    /// Why `node` could not apply its service addresses, as its latest report says.
    pub fn mesh_error_of(&self, node: &str) -> Option<String> {
        let map = self.overlay.read().expect("overlay lock");
        map.get(node).and_then(|r| r.mesh_error.clone())
    }

    /// Keeps `node`'s named-volume report.
    pub fn volumes_reported(
        &self,
        node: &str,
        volumes: Vec<hoist_proto::node::NodeVolume>,
        now: std::time::Instant,
    ) {
        self.volumes
            .write()
            .expect("volumes lock")
            .insert(node.to_string(), VolumeReportSeen { at: now, volumes });
    }

    /// `node`'s latest named-volume report and its age; `None` when it has not reported to this
    /// leader.
    pub fn volumes_of(
        &self,
        node: &str,
        now: std::time::Instant,
    ) -> Option<(std::time::Duration, Vec<hoist_proto::node::NodeVolume>)> {
        let map = self.volumes.read().expect("volumes lock");
        map.get(node)
            .map(|r| (now.saturating_duration_since(r.at), r.volumes.clone()))
    }

    /// Unplaced slots of `service` and why, as of the last reconciliation on this leader.
    pub fn pending(&self, service: &str) -> Vec<(u64, Arc<str>)> {
        let pending = self.pending.read().expect("pending lock");
        let runs = pending.get(service).map_or(&[][..], Vec::as_slice);
        runs.iter()
            .flat_map(|(slots, why)| slots.clone().map(move |s| (s, why.clone())))
            .collect()
    }

    fn set_pending(&self, p: Pending) {
        *self.pending.write().expect("pending lock") = p;
    }
}
