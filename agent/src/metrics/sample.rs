//! One look at every container for a scrape: the usage its cgroup counts (the same files `hoist
//! stats` reads, v1 or v2, through [`crate::runtime::cgroup::Cgroups`]), its OOM kills, its
//! network namespace's bytes ([`super::netdev`]) and, from its record, its limit and restarts.
//! Files only, no process started: about five small reads per container. Blocking.

use super::labels::{self, ContainerLabels};
use super::netdev::{self, NetBytes};
use crate::containers::{Container, Manager};
use crate::runtime::cgroup::Cgroups;
use hoist_proto::NetworkMode;
use std::sync::Arc;

/// What a scrape reports of one container.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerSample {
    pub id: String,
    pub labels: ContainerLabels,
    pub running: bool,
    pub cpu_seconds: f64,
    /// In use, without inactive page cache (as `docker stats` counts it).
    pub memory_bytes: u64,
    /// The container's memory limit, when it has one.
    pub memory_limit_bytes: Option<u64>,
    pub pids: u64,
    pub oom_kills: u64,
    pub restarts: u64,
    /// Its own network namespace's bytes, while it runs (not for `host` or `none` networking).
    pub net: Option<NetBytes>,
}

/// Samples every container `mgr` knows, labelled with `node`, spread over `threads` threads.
pub fn all(mgr: &Manager, node: &str, threads: usize) -> Vec<ContainerSample> {
    let containers = mgr.containers();
    let cgroups = mgr.cgroups();
    let per = containers.len().div_ceil(threads.max(1)).max(1);
    if containers.len() <= per {
        return containers.iter().map(|c| one(cgroups, c, node)).collect();
    }
    std::thread::scope(|s| {
        let parts: Vec<_> = containers
            .chunks(per)
            .map(|chunk| {
                s.spawn(move || {
                    chunk
                        .iter()
                        .map(|c| one(cgroups, c, node))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        parts
            .into_iter()
            .flat_map(|p| p.join().unwrap_or_default())
            .collect()
    })
}

/// One container (see the module doc).
fn one(cgroups: &Arc<dyn Cgroups>, c: &Container, node: &str) -> ContainerSample {
    let spec = &c.record.spec;
    let stats = cgroups.stats(&c.cgroup);
    let pid = match c.state() {
        crate::containers::record::State::Running { pid, .. } => Some(pid),
        _ => None,
    };
    let own_netns = matches!(spec.network, NetworkMode::Bridge | NetworkMode::Cluster);
    ContainerSample {
        id: c.record.id.clone(),
        labels: ContainerLabels::of(&c.record.name, &spec.labels, node),
        running: pid.is_some(),
        cpu_seconds: stats.cpu_usage_ns as f64 / 1e9,
        memory_bytes: stats.memory_bytes,
        memory_limit_bytes: spec.resources.memory_bytes,
        pids: stats.pids,
        oom_kills: cgroups.oom_kills(&c.cgroup),
        restarts: labels::restarts(&spec.labels),
        net: pid.filter(|_| own_netns).and_then(netdev::of_process),
    }
}
