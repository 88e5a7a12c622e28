//! The agent's configuration: where its state lives, where it listens, how containers are networked.

use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// State: images, containers, network allocations. Default `/var/lib/hoist`.
    pub data_dir: PathBuf,
    /// The local API's unix socket. Default `/run/hoist/agent.sock`.
    pub socket: PathBuf,
    /// The per-host bridge containers attach to.
    pub bridge: String,
    /// The subnet containers on this host get addresses from.
    pub subnet: String,
    /// Outbound NAT for containers (off by default; never in tests).
    pub masquerade: bool,
    /// Parent of every container cgroup, below each hierarchy's root.
    pub cgroup_parent: String,
    /// Rotate a container's log file beyond this size.
    pub log_max_bytes: u64,
    /// Registries (`HOST[:PORT]`) spoken to over plain HTTP (loopback ones always are).
    pub insecure_registries: Vec<String>,
    /// The cluster DNS containers on the bridge use (the node's gateway), on an overlay node.
    pub cluster_dns: Option<std::net::Ipv4Addr>,
    /// The host ids a user-namespaced container's ids map onto (`--userns-range`).
    pub userns_range: crate::runtime::userns::IdRange,
    /// Whether `DATA/run` is a tmpfs (`runtime::run_dir::ensure_tmpfs`): secrets are written
    /// there only, so a node without one refuses containers that have any.
    pub volatile_on_tmpfs: bool,
}

impl AgentConfig {
    /// How this agent speaks to registries (which ones are plain HTTP).
    pub fn registries(&self) -> crate::image::registry::RegistryConfig {
        crate::image::registry::RegistryConfig {
            insecure: self.insecure_registries.clone(),
        }
    }

    pub fn containers_dir(&self) -> PathBuf {
        self.data_dir.join("containers")
    }
    /// Removed containers' directories, moved out of [`Self::containers_dir`] by one rename and
    /// deleted after the removal has answered (`containers::release`); what a crash leaves here
    /// is deleted at the next start.
    pub fn trash_dir(&self) -> PathBuf {
        self.data_dir.join("trash")
    }
    /// The volatile half of the containers' files, on a tmpfs (`runtime::run_dir`).
    pub fn run_dir(&self) -> PathBuf {
        self.data_dir.join(crate::runtime::run_dir::NAME)
    }
    pub fn images_dir(&self) -> PathBuf {
        self.data_dir.join("images")
    }
    /// Anonymous volumes: `volumes/<id>/_data`, each belonging to one container
    /// (`containers::volumes`).
    pub fn volumes_dir(&self) -> PathBuf {
        self.data_dir.join("volumes")
    }
    pub fn network_dir(&self) -> PathBuf {
        self.data_dir.join("network")
    }
    /// The containers' network namespaces, pinned by bind mounts: volatile too (like `/run/netns`).
    pub fn netns_dir(&self) -> PathBuf {
        self.run_dir().join("netns")
    }
}
