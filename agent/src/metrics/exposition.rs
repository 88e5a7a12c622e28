//! The agent's scrape as metric families: per container its usage ([`super::sample`]), its
//! health probes, then image pulls and the agent itself. Names follow Prometheus' conventions
//! (base units in the name, `_total` on counters); `hoist_common::metrics` writes them.

use super::events::{Probes, Pulls};
use super::labels::ContainerLabels;
use super::sample::ContainerSample;
use hoist_common::metrics::{counters, gauges};
use hoist_proto::node::Health;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;
use std::collections::HashMap;

/// Everything one scrape reports, gathered before encoding.
#[derive(Debug, Default)]
pub struct Scrape {
    pub containers: Vec<ContainerSample>,
    /// Probes by container id.
    pub probes: Vec<(String, Probes)>,
    pub pulls: Option<Pulls>,
    /// This agent's node id (empty when standalone) and version.
    pub node: String,
    /// How long reading the containers' files took, in seconds.
    pub collect_seconds: f64,
}

type Rows<L> = Vec<(L, f64)>;

impl Scrape {
    fn per_container(&self, f: impl Fn(&ContainerSample) -> Option<f64>) -> Rows<ContainerLabels> {
        self.containers
            .iter()
            .filter_map(|c| Some((c.labels.clone(), f(c)?)))
            .collect()
    }

    /// The probes with their container's labels (probes of a container no longer sampled are
    /// left out).
    fn probes_labelled(&self) -> Vec<(&ContainerLabels, &Probes)> {
        let by_id: HashMap<&str, &ContainerLabels> = self
            .containers
            .iter()
            .map(|c| (c.id.as_str(), &c.labels))
            .collect();
        self.probes
            .iter()
            .filter_map(|(id, p)| Some((*by_id.get(id.as_str())?, p)))
            .collect()
    }
}

/// Labels of a container plus one more.
type Extra = (ContainerLabels, [(&'static str, &'static str); 1]);

impl Collector for Scrape {
    fn encode(&self, mut e: DescriptorEncoder) -> std::fmt::Result {
        let (secs, bytes) = (Some(&Unit::Seconds), Some(&Unit::Bytes));
        counters(
            &mut e,
            "hoist_container_cpu",
            "CPU time the container's processes used (its cgroup's count).",
            secs,
            &self.per_container(|c| Some(c.cpu_seconds)),
        )?;
        gauges(
            &mut e,
            "hoist_container_memory_usage",
            "Memory the container uses, without inactive page cache (as docker stats counts it).",
            bytes,
            &self.per_container(|c| Some(c.memory_bytes as f64)),
        )?;
        gauges(
            &mut e,
            "hoist_container_memory_limit",
            "The container's memory limit (containers without one have no sample).",
            bytes,
            &self.per_container(|c| c.memory_limit_bytes.map(|b| b as f64)),
        )?;
        counters(
            &mut e,
            "hoist_container_network_receive",
            "Bytes received on the container's interfaces, loopback excepted (while it runs, in a network namespace of its own).",
            bytes,
            &self.per_container(|c| c.net.map(|n| n.rx as f64)),
        )?;
        counters(
            &mut e,
            "hoist_container_network_transmit",
            "Bytes sent on the container's interfaces, loopback excepted (while it runs, in a network namespace of its own).",
            bytes,
            &self.per_container(|c| c.net.map(|n| n.tx as f64)),
        )?;
        gauges(
            &mut e,
            "hoist_container_pids",
            "Processes and threads in the container.",
            None,
            &self.per_container(|c| Some(c.pids as f64)),
        )?;
        counters(
            &mut e,
            "hoist_container_restarts",
            "Times the agent restarted the container's task under its restart policy (the last 100 are kept; 0 for a plain container).",
            None,
            &self.per_container(|c| Some(c.restarts as f64)),
        )?;
        counters(
            &mut e,
            "hoist_container_oom_kills",
            "Processes of the container the kernel's OOM killer killed.",
            None,
            &self.per_container(|c| Some(c.oom_kills as f64)),
        )?;
        gauges(
            &mut e,
            "hoist_container_running",
            "1 while the container runs, 0 once it exited (until it is removed).",
            None,
            &self.per_container(|c| Some(f64::from(u8::from(c.running)))),
        )?;
        self.encode_probes(&mut e)?;
        self.encode_pulls(&mut e)?;
        let info = vec![(
            vec![
                ("version", env!("CARGO_PKG_VERSION").to_string()),
                ("node", self.node.clone()),
            ],
            1.0,
        )];
        gauges(
            &mut e,
            "hoist_agent_build_info",
            "Always 1: this agent's version and node id (empty when standalone).",
            None,
            &info,
        )?;
        gauges(
            &mut e,
            "hoist_agent_metrics_collect_duration",
            "Time this scrape took to read the containers' cgroup and network files.",
            secs,
            &[(Vec::<(&str, String)>::new(), self.collect_seconds)],
        )
    }
}

impl Scrape {
    fn encode_probes(&self, e: &mut DescriptorEncoder) -> std::fmt::Result {
        let probes = self.probes_labelled();
        if probes.is_empty() {
            return Ok(());
        }
        let outcome = |p: &Probes, passed: bool| if passed { p.successes } else { p.failures };
        let results: Rows<Extra> = probes
            .iter()
            .flat_map(|(l, p)| {
                [("success", true), ("failure", false)]
                    .map(|(r, passed)| (((*l).clone(), [("result", r)]), outcome(p, passed) as f64))
            })
            .collect();
        counters(
            e,
            "hoist_health_probes",
            "Health probes run against the container, by result (success or failure).",
            None,
            &results,
        )?;
        let health: Rows<Extra> = probes
            .iter()
            .flat_map(|(l, p)| {
                [
                    ("starting", Health::Starting),
                    ("healthy", Health::Healthy),
                    ("unhealthy", Health::Unhealthy),
                ]
                .map(|(s, h)| {
                    (
                        ((*l).clone(), [("status", s)]),
                        f64::from(u8::from(p.health == h)),
                    )
                })
            })
            .collect();
        gauges(
            e,
            "hoist_container_health_status",
            "1 for the container's health after its last probe (starting, healthy or unhealthy), 0 for the others.",
            None,
            &health,
        )?;
        let mut family = e.encode_descriptor(
            "hoist_health_probe_duration",
            "Time health probes of the container took (a probe that timed out counts its timeout).",
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?;
        for (l, p) in probes {
            p.seconds.encode(family.encode_family(l)?)?;
        }
        Ok(())
    }

    fn encode_pulls(&self, e: &mut DescriptorEncoder) -> std::fmt::Result {
        let Some(p) = &self.pulls else {
            return Ok(());
        };
        let rows = vec![
            (vec![("result", "success")], p.succeeded.get() as f64),
            (vec![("result", "failure")], p.failed.get() as f64),
        ];
        counters(
            e,
            "hoist_image_pulls",
            "Image pulls from registries (hoist pull, a build's FROM, a replica's image), by result.",
            None,
            &rows,
        )?;
        let family = e.encode_descriptor(
            "hoist_image_pull_duration",
            "Time image pulls took, successful or not.",
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?;
        p.seconds.encode(family)
    }
}
