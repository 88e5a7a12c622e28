//! Feasibility: whether a node can take one more replica (free cpu and memory, constraints, max per
//! node, host ports, node state), and the one-line reason when it cannot.

use hoist_proto::cluster::{Node, NodeAvailability, NodeStatus, Task};
use hoist_proto::format::v0::memory_bytes;
use hoist_proto::quantity::parse_cpu_millis;
use hoist_proto::service::{PortMode, PortProtocol, ServiceSpec};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

/// What one replica of a service asks of a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Demand {
    /// Shared by every node's count of the service's replicas that this demand adds to.
    pub service: Arc<str>,
    pub cpu_millis: u64,
    pub memory_bytes: u64,
    /// Host ports it publishes.
    pub ports: Vec<(u16, PortProtocol)>,
    /// Those of them the routing mesh serves on overlay nodes (`mode = "ingress"`, cluster
    /// format 2): there the replica binds no host port, so they do not keep replicas apart.
    pub mesh_ports: Vec<(u16, PortProtocol)>,
    pub constraints: Vec<Constraint>,
    /// 0: no limit.
    pub max_per_node: u64,
    /// The oldest agent format that runs the spec as written ([`ServiceSpec::format`]).
    pub agent_format: u32,
}

/// A parsed placement constraint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Constraint {
    /// `node.id`, `node.hostname` or `node.labels.KEY`.
    pub attribute: String,
    pub equal: bool,
    pub value: String,
}

impl Constraint {
    /// Parses a constraint the spec validation accepted; `None` otherwise.
    pub fn parse(text: &str) -> Option<Constraint> {
        let (lhs, rhs, equal) = match text.split_once("==") {
            Some((l, r)) => (l, r, true),
            None => {
                let (l, r) = text.split_once("!=")?;
                (l, r, false)
            }
        };
        Some(Constraint {
            attribute: lhs.trim().to_string(),
            equal,
            value: rhs.trim().to_string(),
        })
    }

    /// Whether `node` satisfies it. A missing label equals nothing.
    pub fn matches(&self, node: &Node) -> bool {
        let actual = match self.attribute.as_str() {
            "node.id" => Some(node.id.as_str()),
            "node.hostname" => Some(node.hostname.as_str()),
            a => a
                .strip_prefix("node.labels.")
                .and_then(|k| node.labels.get(k).map(String::as_str)),
        };
        (actual == Some(self.value.as_str())) == self.equal
    }

    /// `zone == a`, as explanations show it.
    pub fn short(&self) -> String {
        let attr = self
            .attribute
            .strip_prefix("node.labels.")
            .unwrap_or(&self.attribute);
        let op = if self.equal { "==" } else { "!=" };
        format!("{attr} {op} {}", self.value)
    }
}

impl Demand {
    /// The demand of one replica of `spec` in a cluster at `cluster_format` (amounts that do not
    /// parse count as zero; validation refused such specs before they were stored). A format-0
    /// cluster reads sizes as 0.1.0 did, so that members of both versions agree on every
    /// placement until the last one is upgraded.
    pub fn of(spec: &ServiceSpec, cluster_format: u32) -> Demand {
        let size = |text: &str| memory_bytes(text, cluster_format);
        let r = &spec.resources;
        Demand {
            service: Arc::from(spec.name.as_str()),
            cpu_millis: r
                .reserved_cpu()
                .and_then(|q| parse_cpu_millis(q.as_str()))
                .unwrap_or(0),
            memory_bytes: r
                .reserved_memory()
                .and_then(|q| size(q.as_str()))
                .unwrap_or(0),
            ports: spec
                .ports
                .iter()
                .filter_map(|p| Some((u16::try_from(p.published?).ok()?, p.protocol)))
                .collect(),
            mesh_ports: spec
                .ports
                .iter()
                .filter(|p| cluster_format >= 2 && p.mode == PortMode::Ingress)
                .filter_map(|p| Some((u16::try_from(p.published?).ok()?, p.protocol)))
                .collect(),
            constraints: spec
                .placement
                .constraints
                .iter()
                .filter_map(|c| Constraint::parse(c))
                .collect(),
            max_per_node: spec.placement.max_per_node.max(0) as u64,
            agent_format: spec.format(),
        }
    }
}

/// What the tasks already on a node hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeUsage {
    pub cpu_millis: u64,
    pub memory_bytes: u64,
    pub ports: BTreeSet<(u16, PortProtocol)>,
    /// Replicas per service, under the name its demand holds (one allocation for every node
    /// that a plan's replicas of the service land on, not one per node).
    pub per_service: BTreeMap<Arc<str>, u64>,
    pub tasks: u64,
}

impl NodeUsage {
    /// Adds one replica with `demand`.
    pub fn add(&mut self, demand: &Demand) {
        self.cpu_millis += demand.cpu_millis;
        self.memory_bytes += demand.memory_bytes;
        for p in &demand.ports {
            self.ports.insert(*p);
        }
        match self.per_service.get_mut(&demand.service) {
            Some(c) => *c += 1,
            None => {
                self.per_service.insert(demand.service.clone(), 1);
            }
        }
        self.tasks += 1;
    }
}

/// Whether a task still holds its node's resources: until it is known to have stopped.
pub fn holds_resources(task: &Task) -> bool {
    !task.state.is_terminal()
}

/// Usage per node from tasks, given each task's demand (`demand_of` answers `None` for tasks
/// whose spec is unknown: they hold nothing but count towards max per node). Demands are looked
/// up once per service version.
pub fn usage_of<'a>(
    tasks: impl IntoIterator<Item = &'a Task>,
    mut demand_of: impl FnMut(&Task) -> Option<Demand>,
) -> BTreeMap<String, NodeUsage> {
    let mut out: BTreeMap<String, NodeUsage> = BTreeMap::new();
    let mut cache: HashMap<(&'a str, u64), Demand> = HashMap::new();
    for t in tasks.into_iter().filter(|t| holds_resources(t)) {
        let d = cache
            .entry((t.service.as_str(), t.service_version))
            .or_insert_with(|| {
                demand_of(t).unwrap_or_else(|| Demand {
                    service: Arc::from(t.service.as_str()),
                    cpu_millis: 0,
                    memory_bytes: 0,
                    ports: vec![],
                    mesh_ports: vec![],
                    constraints: vec![],
                    max_per_node: 0,
                    agent_format: 0,
                })
            });
        match out.get_mut(t.node.as_str()) {
            Some(u) => u.add(d),
            None => out.entry(t.node.to_string()).or_default().add(d),
        }
    }
    out
}

/// Why a node cannot take a replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Misfit {
    Down,
    Paused,
    Drained,
    Constraint(String),
    MaxPerNode(u64),
    Port(u16, PortProtocol),
    Cpu {
        need: u64,
        free: u64,
    },
    Memory {
        need: u64,
        free: u64,
    },
    /// The node's agent reads an older format than the spec needs.
    AgentFormat {
        has: u32,
        needs: u32,
    },
    /// The node has no overlay subnet (the cluster CIDR is exhausted): its agent cannot run
    /// containers on the overlay.
    NoSubnet(String),
}

impl std::fmt::Display for Misfit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Misfit::Down => write!(f, "down"),
            Misfit::Paused => write!(f, "paused"),
            Misfit::Drained => write!(f, "drained"),
            Misfit::Constraint(c) => write!(f, "constraint {c}"),
            Misfit::MaxPerNode(m) => write!(f, "already runs max_per_node = {m}"),
            Misfit::Port(p, proto) => {
                let proto = match proto {
                    PortProtocol::Tcp => "tcp",
                    PortProtocol::Udp => "udp",
                };
                write!(f, "host port {p}/{proto} in use")
            }
            Misfit::Cpu { need, free } => {
                write!(f, "needs {} CPU, {} free", cpus(*need), cpus(*free))
            }
            Misfit::Memory { need, free } => {
                write!(f, "needs {}, {} free", bytes(*need), bytes(*free))
            }
            Misfit::AgentFormat { has, needs } => write!(
                f,
                "agent reads format {has}, the spec needs {needs}: upgrade the agent"
            ),
            Misfit::NoSubnet(why) => write!(f, "no overlay subnet: {why}"),
        }
    }
}

fn cpus(millis: u64) -> String {
    if millis.is_multiple_of(1000) {
        format!("{}", millis / 1000)
    } else {
        format!("{}m", millis)
    }
}

/// `512 MiB`, `1.5 GiB`, `300 B`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < UNITS.len() {
        v /= 1024.0;
        i += 1;
    }
    if v.fract() == 0.0 {
        format!("{} {}", v as u64, UNITS[i])
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

/// Whether `node` (with `usage`) can take one more replica with `demand`. Checked in a fixed
/// order, so the reason given is the most fundamental one.
pub fn check(node: &Node, usage: Option<&NodeUsage>, demand: &Demand) -> Result<(), Misfit> {
    if node.status == NodeStatus::Down {
        return Err(Misfit::Down);
    }
    if let Some(why) = &node.overlay_problem {
        return Err(Misfit::NoSubnet(why.clone()));
    }
    match node.availability {
        NodeAvailability::Active => {}
        NodeAvailability::Paused => return Err(Misfit::Paused),
        NodeAvailability::Drained => return Err(Misfit::Drained),
    }
    if let Some(c) = demand.constraints.iter().find(|c| !c.matches(node)) {
        return Err(Misfit::Constraint(c.short()));
    }
    if node.agent_format < demand.agent_format {
        return Err(Misfit::AgentFormat {
            has: node.agent_format,
            needs: demand.agent_format,
        });
    }
    let empty = NodeUsage::default();
    let usage = usage.unwrap_or(&empty);
    if demand.max_per_node > 0
        && usage.per_service.get(&demand.service).copied().unwrap_or(0) >= demand.max_per_node
    {
        return Err(Misfit::MaxPerNode(demand.max_per_node));
    }
    let on_mesh = |p: &(u16, PortProtocol)| node.subnet.is_some() && demand.mesh_ports.contains(p);
    if let Some(p) = demand
        .ports
        .iter()
        .find(|p| !on_mesh(p) && usage.ports.contains(p))
    {
        return Err(Misfit::Port(p.0, p.1));
    }
    let free_cpu = node.capacity.cpu_millis.saturating_sub(usage.cpu_millis);
    if demand.cpu_millis > free_cpu {
        return Err(Misfit::Cpu {
            need: demand.cpu_millis,
            free: free_cpu,
        });
    }
    let free_mem = node
        .capacity
        .memory_bytes
        .saturating_sub(usage.memory_bytes);
    if demand.memory_bytes > free_mem {
        return Err(Misfit::Memory {
            need: demand.memory_bytes,
            free: free_mem,
        });
    }
    Ok(())
}

/// `n2: needs 512 MiB, 300 MiB free; n3: constraint zone == a`; "no nodes" when there are none.
/// Long lists are cut after 8 nodes with a count of the rest.
pub fn explain(misfits: &[(String, Misfit)]) -> String {
    if misfits.is_empty() {
        return "no nodes".into();
    }
    let mut parts: Vec<String> = misfits
        .iter()
        .take(8)
        .map(|(n, m)| format!("{n}: {m}"))
        .collect();
    if misfits.len() > 8 {
        parts.push(format!("and {} more nodes", misfits.len() - 8));
    }
    parts.join("; ")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use hoist_proto::cluster::NodeResources;

    pub(crate) fn node(id: &str, mem_mib: u64, labels: &[(&str, &str)]) -> Node {
        Node {
            id: id.into(),
            hostname: format!("h-{id}"),
            address: "10.0.0.1".into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            agent_labels: Default::default(),
            capacity: NodeResources {
                cpu_millis: 2000,
                memory_bytes: mem_mib << 20,
            },
            status: NodeStatus::Ready,
            availability: NodeAvailability::Active,
            agent_version: String::new(),
            agent_format: 0,
            registered_ms: 0,
            updated_ms: 0,
            subnet: None,
            wg_public_key: None,
            wg_endpoint: None,
            overlay_generation: 0,
            overlay_problem: None,
            credential_sha256: String::new(),
            cert_key_sha256: String::new(),
        }
    }

    #[test]
    fn reasons_per_node() {
        let mut spec = ServiceSpec::new("web", "img");
        spec.resources.memory = Some("512Mi".into());
        spec.placement.constraints = vec!["node.labels.zone==a".into()];
        let d = Demand::of(&spec, 1);
        let n2 = node("n2", 812, &[("zone", "a")]);
        let u = NodeUsage {
            memory_bytes: 512 << 20,
            ..Default::default()
        };
        let n3 = node("n3", 4096, &[("zone", "b")]);
        let m2 = check(&n2, Some(&u), &d).unwrap_err();
        let m3 = check(&n3, None, &d).unwrap_err();
        assert_eq!(
            explain(&[("n2".into(), m2), ("n3".into(), m3)]),
            "n2: needs 512 MiB, 300 MiB free; n3: constraint zone == a"
        );
        assert!(check(&node("n4", 1024, &[("zone", "a")]), None, &d).is_ok());
        let mut n5 = node("n5", 1024, &[("zone", "a")]);
        n5.overlay_problem = Some("the cluster CIDR 10.9.0.0/23 has no free /24 left".into());
        assert_eq!(
            check(&n5, None, &d).unwrap_err().to_string(),
            "no overlay subnet: the cluster CIDR 10.9.0.0/23 has no free /24 left"
        );
    }

    #[test]
    fn node_state_ports_and_max_per_node() {
        let mut spec = ServiceSpec::new("web", "img");
        spec.ports.push(hoist_proto::service::ServicePort {
            target: 80,
            published: Some(8080),
            protocol: PortProtocol::Tcp,
            mode: Default::default(),
        });
        spec.placement.max_per_node = 1;
        spec.placement.constraints = vec!["node.hostname!=h-n9".into()];
        let d = Demand::of(&spec, 1);
        let mut n = node("n1", 1024, &[]);
        let mut u = NodeUsage::default();
        assert_eq!(check(&n, Some(&u), &d), Ok(()));
        u.add(&Demand {
            service: "other".into(),
            ports: vec![(8080, PortProtocol::Tcp)],
            ..d.clone()
        });
        assert_eq!(
            check(&n, Some(&u), &d).unwrap_err().to_string(),
            "host port 8080/tcp in use"
        );
        let mut u2 = NodeUsage::default();
        u2.per_service.insert("web".into(), 1);
        assert_eq!(check(&n, Some(&u2), &d), Err(Misfit::MaxPerNode(1)));
        n.availability = NodeAvailability::Paused;
        assert_eq!(check(&n, None, &d), Err(Misfit::Paused));
        n.status = NodeStatus::Down;
        assert_eq!(check(&n, None, &d), Err(Misfit::Down));
        assert_eq!(
            check(&node("n9", 1024, &[]), None, &d),
            Err(Misfit::Constraint("node.hostname != h-n9".into()))
        );
        assert_eq!(bytes(1536 << 20), "1.5 GiB");
    }
}
