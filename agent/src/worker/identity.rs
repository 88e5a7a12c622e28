//! Who this node is to the cluster: its id (kept in the data dir and reused after a restart), the
//! newest term it has seen, what it offers (CPUs from its affinity mask, memory from
//! `/proc/meminfo`, or operator overrides), and the address other hosts reach it on.

use hoist_proto::cluster::NodeResources;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The version of `node.json` this build writes; 0.1.0's had none (read as 0, same fields).
pub const IDENTITY_VERSION: u32 = 1;

/// `DATA_DIR/node.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// Absent in the files of 0.1.0.
    #[serde(default)]
    pub version: u32,
    pub node_id: Option<String>,
    pub term_seen: u64,
    /// The cluster the id and term belong to; a token for another cluster starts afresh.
    #[serde(default)]
    pub cluster_id: Option<String>,
}

impl Identity {
    /// The identity to use with a token for `cluster_id`: this one, or a fresh one when it was
    /// made in another cluster (whose node ids and terms mean nothing here).
    pub fn for_cluster(self, cluster_id: &str) -> Identity {
        match &self.cluster_id {
            Some(c) if c != cluster_id => Identity {
                cluster_id: Some(cluster_id.to_string()),
                ..Identity::default()
            },
            _ => Identity {
                cluster_id: Some(cluster_id.to_string()),
                ..self
            },
        }
    }
}

pub fn identity_path(data_dir: &Path) -> PathBuf {
    data_dir.join("node.json")
}

/// Reads `node.json` (version 0 or 1); a newer one is refused rather than misread.
pub fn load(data_dir: &Path) -> anyhow::Result<Identity> {
    let p = identity_path(data_dir);
    let id: Identity = crate::runtime::read_json(&p)
        .map_err(|e| anyhow::anyhow!("read {}: {e}", p.display()))?
        .unwrap_or_default();
    if id.version > IDENTITY_VERSION {
        anyhow::bail!(
            "{}: version {} is newer than this agent reads ({IDENTITY_VERSION})",
            p.display(),
            id.version
        );
    }
    Ok(id)
}

/// Writes `node.json` in this build's version.
pub fn save(data_dir: &Path, id: &Identity) -> std::io::Result<()> {
    let id = Identity {
        version: IDENTITY_VERSION,
        ..id.clone()
    };
    crate::runtime::write_json_atomic(&identity_path(data_dir), &id)
}

/// Total memory from the text of `/proc/meminfo` (`MemTotal: N kB`).
pub fn parse_meminfo_total(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let mut parts = line.split_whitespace().skip(1);
    let n: u64 = parts.next()?.parse().ok()?;
    match parts.next() {
        Some("kB") | None => Some(n * 1024),
        _ => None,
    }
}

/// What this host offers, unless overridden: the CPUs the agent may run on and the host's memory.
pub fn host_resources(
    cpu_millis: Option<u64>,
    memory_bytes: Option<u64>,
) -> anyhow::Result<NodeResources> {
    let cpu_millis = match cpu_millis {
        Some(c) => c,
        None => {
            let n = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0))
                .map(|set| {
                    (0..nix::sched::CpuSet::count())
                        .filter(|&i| set.is_set(i).unwrap_or(false))
                        .count()
                })
                .unwrap_or(0);
            let n = if n == 0 {
                std::thread::available_parallelism().map_or(1, |n| n.get())
            } else {
                n
            };
            n as u64 * 1000
        }
    };
    let memory_bytes = match memory_bytes {
        Some(m) => m,
        None => {
            let text = std::fs::read_to_string("/proc/meminfo")
                .map_err(|e| anyhow::anyhow!("read /proc/meminfo: {e}"))?;
            parse_meminfo_total(&text)
                .ok_or_else(|| anyhow::anyhow!("/proc/meminfo: no MemTotal line"))?
        }
    };
    Ok(NodeResources {
        cpu_millis,
        memory_bytes,
    })
}

/// The local address the kernel would use to reach `controller` (`HOST:PORT`): the address the
/// controllers, and so other hosts, can reach this node on. No packet is sent.
pub fn route_source(controller: &str) -> anyhow::Result<String> {
    use std::net::ToSocketAddrs;
    let target = controller
        .to_socket_addrs()
        .map_err(|e| anyhow::anyhow!("controller address {controller:?}: {e}"))?
        .next()
        .ok_or_else(|| anyhow::anyhow!("controller address {controller:?} resolves to nothing"))?;
    let bind = if target.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let sock = std::net::UdpSocket::bind(bind)?;
    sock.connect(target)
        .map_err(|e| anyhow::anyhow!("no route to controller {controller}: {e}"))?;
    Ok(sock.local_addr()?.ip().to_string())
}

pub fn hostname() -> String {
    nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "localhost".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo() {
        let text = "MemTotal:       24590164 kB\nMemFree:  100 kB\n";
        assert_eq!(parse_meminfo_total(text), Some(24590164 * 1024));
        assert_eq!(parse_meminfo_total("MemFree: 1 kB"), None);
        assert_eq!(parse_meminfo_total("MemTotal: x kB"), None);
    }

    #[test]
    fn overrides_win_and_the_host_has_something() {
        let r = host_resources(Some(1500), Some(1 << 30)).unwrap();
        assert_eq!((r.cpu_millis, r.memory_bytes), (1500, 1 << 30));
        let r = host_resources(None, None).unwrap();
        assert!(r.cpu_millis >= 1000 && r.memory_bytes > 0, "{r:?}");
    }

    #[test]
    fn identity_round_trips_through_the_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()).unwrap(), Identity::default());
        let id = Identity {
            version: IDENTITY_VERSION,
            node_id: Some("n-1".into()),
            term_seen: 4,
            cluster_id: Some("c1".into()),
        };
        save(dir.path(), &id).unwrap();
        assert_eq!(load(dir.path()).unwrap(), id);
        assert_eq!(id.clone().for_cluster("c1"), id);
        let other = id.for_cluster("c2");
        assert_eq!(
            (other.node_id, other.term_seen, other.cluster_id.as_deref()),
            (None, 0, Some("c2"))
        );
    }

    #[test]
    fn route_source_is_loopback_for_loopback() {
        assert_eq!(route_source("127.0.0.1:7070").unwrap(), "127.0.0.1");
    }
}
