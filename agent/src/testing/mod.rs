//! Recording fakes of everything the agent reaches outside its own process, for tests that run
//! as a normal user: the image store, cgroups, network namespaces and links, nftables, the
//! supervisor (`kernel.rs`, `process.rs`), and the node as the worker's executor sees it
//! (`node.rs`). youki's `Syscall`/`TestHelperSyscall` pattern, with one difference: fakes are
//! passed in explicitly (`Manager::new(config, deps)`, `Network::with_kernel`), never chosen by
//! `cfg!(test)`. Compiled into the library so that integration tests can use them too.
//!
//! The fakes are views of one [`FakeHost`]: a temporary data dir plus the kernel state a real
//! host would hold (cgroups, namespaces, table elements, live supervisors, images). It records
//! every call that changes something, in order, across all fakes ([`FakeHost::calls`]); it can
//! make the n-th call from now, or the next call of an operation, fail ([`FakeHost::fail_nth`],
//! [`FakeHost::fail_op`]); and it can keep a copy of the whole host (data dir and kernel state)
//! as it was right before the n-th call ([`FakeHost::snapshot_before`]), which is exactly what a
//! `kill -9` of the agent at that point leaves for the next agent ([`FakeHost::rewind`]).
//!
//! Only the edges are fake: IPAM, port tables, attach's validation, the state files, Docker's
//! defaulting and every undo are the real code. Being test support, the host panics when its own
//! temporary directory cannot be written.

mod kernel;
mod mesh;
mod node;
mod process;

pub use kernel::{FakeCgroups, FakeLinks, FakeNft};
pub use mesh::{FakeMesh, MeshCall};
pub use node::{FakeContainers, FakeFiles, NodeCall};
pub use process::{FakeImages, FakeSupervisor};

use crate::config::AgentConfig;
use crate::containers::{Deps, Manager};
use crate::network::{Address, Network, NetworkConfig, PortElement};
use hoist_proto::{ExitInfo, ImageConfig, Protocol, Resources};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// One call a fake received: the operation (`"cgroup create"`) and what it concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub op: &'static str,
    pub subject: String,
}

/// A container's supervisor as the fake host runs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Supervised {
    /// The container directory it was started for.
    pub dir: PathBuf,
    /// Set once the container has exited (the real supervisor then leaves).
    pub exit: Option<ExitInfo>,
}

/// What the host's kernel holds: the state the fakes change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct World {
    /// Container cgroups by id, with their limits.
    pub cgroups: BTreeMap<String, Resources>,
    /// Network namespaces the agent pinned, by netns file name, with `eth0`'s address.
    pub namespaces: BTreeMap<String, Address>,
    /// nftables tables by name.
    pub tables: BTreeSet<String>,
    /// Map elements: (table, map, host port) → comment (the owning container).
    pub elements: BTreeMap<(String, String, u16), String>,
    /// `/proc/sys` settings written, by key.
    pub sysctls: BTreeMap<String, String>,
    /// Supervisors by container id.
    pub supervisors: BTreeMap<String, Supervised>,
}

#[derive(Debug)]
enum Fault {
    /// The call with this index in the log fails.
    At(usize),
    /// The next call of this operation fails.
    Op(&'static str),
}

#[derive(Debug, Default)]
struct State {
    world: World,
    calls: Vec<Call>,
    faults: Vec<Fault>,
    /// Take a snapshot right before the call with this index.
    snapshot_at: Option<usize>,
    snapshot: Option<World>,
}

/// A host for tests: a data dir and a fake kernel, shared by the fakes.
#[derive(Debug)]
pub struct FakeHost {
    dir: tempfile::TempDir,
    state: Mutex<State>,
    /// Bumped whenever a supervised container exits: wakes waiters.
    exits: tokio::sync::watch::Sender<u64>,
    images: Mutex<BTreeMap<String, hoist_proto::ImageConfig>>,
}

impl FakeHost {
    /// An empty host with one image, `busybox` (command `sh`, an `/etc/passwd` with root).
    pub fn new() -> Arc<Self> {
        let dir = tempfile::tempdir().expect("create a temp dir for the fake host");
        std::fs::create_dir_all(dir.path().join("data")).expect("create the data dir");
        let host = Arc::new(FakeHost {
            dir,
            state: Mutex::new(State::default()),
            exits: tokio::sync::watch::channel(0).0,
            images: Mutex::new(BTreeMap::new()),
        });
        host.add_image(
            "busybox",
            ImageConfig {
                cmd: Some(vec!["sh".into()]),
                ..ImageConfig::default()
            },
            &[("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n")],
        );
        host
    }

    /// The agent's data dir on this host.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// An agent configuration over [`FakeHost::data_dir`].
    pub fn config(&self) -> AgentConfig {
        AgentConfig {
            data_dir: self.data_dir(),
            socket: self.dir.path().join("agent.sock"),
            bridge: "hoist0".into(),
            subnet: "10.89.0.0/24".into(),
            masquerade: false,
            cgroup_parent: "hoist".into(),
            log_max_bytes: 1 << 20,
            insecure_registries: Vec::new(),
            cluster_dns: None,
            userns_range: crate::runtime::userns::IdRange::DEFAULT,
            // The fake host's data dir stands in for the tmpfs a real agent mounts.
            volatile_on_tmpfs: true,
        }
    }

    /// Adds an image with one layer holding `files` (path in the layer, content).
    pub fn add_image(&self, reference: &str, config: ImageConfig, files: &[(&str, &str)]) {
        let layer = self.dir.path().join("layers").join(reference);
        for (path, content) in files {
            let path = layer.join(path);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).expect("create a layer dir");
            }
            std::fs::write(&path, content).expect("write a layer file");
        }
        std::fs::create_dir_all(&layer).expect("create a layer dir");
        self.images
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(reference.to_string(), config);
    }

    fn image(&self, reference: &str) -> Option<(ImageConfig, PathBuf)> {
        let images = self.images.lock().unwrap_or_else(|p| p.into_inner());
        let config = images.get(reference)?.clone();
        Some((config, self.dir.path().join("layers").join(reference)))
    }

    /// The network an agent on this host makes (real logic, fake links and nftables).
    pub async fn network(self: &Arc<Self>) -> Arc<Network> {
        let config = self.config();
        let cfg = NetworkConfig {
            bridge: config.bridge.clone(),
            subnet: config.subnet.parse().expect("subnet"),
            masquerade: false,
            state_dir: config.network_dir(),
            netns_dir: config.netns_dir(),
            mtu: None,
            forward: false,
        };
        let links = Arc::new(FakeLinks::new(self.clone()));
        let nft = Arc::new(FakeNft::new(self.clone()));
        Arc::new(
            Network::with_kernel(cfg, links, nft)
                .await
                .expect("set up the network"),
        )
    }

    /// Everything a manager on this host works through, over `network`.
    pub fn deps(self: &Arc<Self>, network: Arc<Network>) -> Deps {
        Deps {
            images: Arc::new(FakeImages::new(self.clone())),
            network,
            cgroups: Arc::new(FakeCgroups::new(self.clone())),
            supervisor: Arc::new(FakeSupervisor::new(self.clone())),
        }
    }

    /// An agent starting on this host: its network and its (not yet restored) manager.
    pub async fn agent(self: &Arc<Self>) -> (Arc<Manager>, Arc<Network>) {
        let network = self.network().await;
        let manager = Manager::new(self.config(), self.deps(network.clone()));
        (manager, network)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a call; fails it if a fault says so. Takes the snapshot due before it.
    fn call(&self, op: &'static str, subject: impl Into<String>) -> Result<(), String> {
        let subject = subject.into();
        let mut st = self.state();
        let index = st.calls.len();
        if st.snapshot_at == Some(index) {
            st.snapshot_at = None;
            st.snapshot = Some(st.world.clone());
            copy_tree(&self.data_dir(), &self.dir.path().join("snapshot"));
        }
        st.calls.push(Call {
            op,
            subject: subject.clone(),
        });
        let due = st.faults.iter().position(|f| match f {
            Fault::At(i) => *i == index,
            Fault::Op(o) => *o == op,
        });
        match due {
            Some(i) => {
                st.faults.remove(i);
                Err(format!("injected failure of {op} ({subject})"))
            }
            None => Ok(()),
        }
    }

    /// Changes the kernel state.
    fn world<T>(&self, f: impl FnOnce(&mut World) -> T) -> T {
        f(&mut self.state().world)
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.state().calls.clone()
    }

    /// The operations of the calls from index `from` on.
    pub fn ops_since(&self, from: usize) -> Vec<&'static str> {
        self.state().calls[from..].iter().map(|c| c.op).collect()
    }

    /// The kernel state now.
    pub fn snapshot_world(&self) -> World {
        self.state().world.clone()
    }

    /// Makes the `n`-th call from now (0: the next one) fail.
    pub fn fail_nth(&self, n: usize) {
        let mut st = self.state();
        let at = st.calls.len() + n;
        st.faults.push(Fault::At(at));
    }

    /// Makes the next call of operation `op` fail.
    pub fn fail_op(&self, op: &'static str) {
        self.state().faults.push(Fault::Op(op));
    }

    /// Copies the host (data dir and kernel state) right before the `n`-th call from now.
    pub fn snapshot_before(&self, n: usize) {
        let mut st = self.state();
        st.snapshot_at = Some(st.calls.len() + n);
    }

    /// Copies the host as it is now.
    pub fn snapshot(&self) {
        let mut st = self.state();
        st.snapshot_at = None;
        st.snapshot = Some(st.world.clone());
        copy_tree(&self.data_dir(), &self.dir.path().join("snapshot"));
    }

    /// Puts the host back as the snapshot found it: what an agent killed at that moment left.
    /// Nothing of the old agent may run any more. Panics if no snapshot was taken.
    pub fn rewind(&self) {
        let mut st = self.state();
        let world = st.snapshot.take().expect("a snapshot to rewind to");
        st.world = world;
        let (data, copy) = (self.data_dir(), self.dir.path().join("snapshot"));
        std::fs::remove_dir_all(&data).expect("remove the data dir");
        copy_tree(&copy, &data);
        std::fs::remove_dir_all(&copy).expect("remove the snapshot");
    }

    /// What a reboot leaves: the kernel state is gone, and so is the agent's tmpfs (`DATA/run`).
    /// Nothing of the old agent may run any more.
    pub fn reboot(&self) {
        self.state().world = World::default();
        let run = self.config().run_dir();
        std::fs::remove_dir_all(&run).expect("remove the volatile dir");
    }

    /// Makes a supervised container exit with `code`, as its command would.
    pub fn exit_container(&self, id: &str, code: i32) {
        self.end(id, code, None);
    }

    /// Records the exit of container `id` where its supervisor would (`exit.json`) and wakes
    /// its waiters. False if it has no live supervisor.
    fn end(&self, id: &str, code: i32, signal: Option<i32>) -> bool {
        let exit = ExitInfo {
            code,
            signal,
            oom_killed: false,
            finished_at: crate::runtime::now_rfc3339(),
        };
        let dir = self.world(|w| match w.supervisors.get_mut(id) {
            Some(s) if s.exit.is_none() => {
                s.exit = Some(exit.clone());
                Some(s.dir.clone())
            }
            _ => None,
        });
        let Some(dir) = dir else { return false };
        let dir = crate::runtime::ContainerDir(dir);
        crate::runtime::write_json_atomic(&dir.exit(), &exit).expect("write exit.json");
        self.exits.send_modify(|n| *n += 1);
        true
    }

    /// The ports published in our tables: (protocol, host port, owner).
    pub fn published(&self) -> BTreeSet<PortElement> {
        self.world(|w| published(w, None))
    }
}

/// The (protocol, port, owner) elements of the address maps, of one table or all.
fn published(w: &World, table: Option<&str>) -> BTreeSet<PortElement> {
    w.elements
        .iter()
        .filter(|((t, _, _), _)| table.is_none_or(|want| t == want))
        .filter_map(|((_, map, port), owner)| {
            let proto = match map.as_str() {
                "tcp_addr" => Protocol::Tcp,
                "udp_addr" => Protocol::Udp,
                _ => return None,
            };
            Some((proto, *port, owner.clone()))
        })
        .collect()
}

/// Copies directories and regular files from `from` to `to` (which is replaced).
fn copy_tree(from: &Path, to: &Path) {
    if to.exists() {
        std::fs::remove_dir_all(to).expect("remove an old copy");
    }
    std::fs::create_dir_all(to).expect("create a copy");
    for entry in std::fs::read_dir(from)
        .expect("read a dir to copy")
        .flatten()
    {
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        match entry.file_type() {
            Ok(t) if t.is_dir() => copy_tree(&src, &dst),
            Ok(t) if t.is_file() => {
                // A file being replaced (temp + rename) may vanish meanwhile; so may it in a crash.
                let _ = std::fs::copy(&src, &dst);
            }
            _ => {}
        }
    }
}
