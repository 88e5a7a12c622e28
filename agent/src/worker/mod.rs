//! The agent as a worker node of the cluster (`hoist-agent --join TOKEN --controller ADDR,...`): it registers
//! with the controllers, heartbeats, watches its assignments (long poll), makes its containers
//! match them, runs their health checks, and reports task status in batches.
//!
//! Four loops share one [`Node`]:
//! - membership: register (next address, backoff), then heartbeat; register again when the
//!   controller no longer knows the node;
//! - assignments: long poll with the last index; answers from an older term are ignored;
//! - reconcile: every change of assignments, finished action or half second, compare assignments
//!   with the labelled containers ([`reconcile::reconcile`], pure) and apply the actions
//!   ([`executor`]); start and stop health monitors;
//! - report: send the statuses that changed since the last acknowledgement;
//! - volumes: the node's named volumes to the leader, on change and every 30 s ([`volumes`]);
//! - sessions: logs and exec of its replicas asked through the controllers ([`sessions`]);
//! - certificate (a `HOIST2` join token, [`tls`]): renews the node's certificate at 50–80 % of
//!   its lifetime; registers again when the controllers no longer take its key.
//!
//! The content of a replica's secrets and configs is fetched from the controllers when its
//! container is made and when its assignment names a newer version ([`files`]).
//!
//! The controller being unreachable changes nothing locally: containers keep running and exited
//! ones are restarted per their policy. After an agent restart nothing is touched until the first
//! assignments arrive; the labelled containers are then adopted as the tasks they carry.

pub mod client;
pub mod container;
pub mod executor;
pub mod files;
pub mod health;
pub mod held_overlay;
pub mod identity;
pub mod mesh_view;
pub mod probe;
pub mod reconcile;
pub mod restart;
pub mod sessions;
pub mod status;
pub mod term;
pub mod tls;
pub mod volumes;

use crate::containers::Manager;
use crate::image::ImageStore;
use client::ControllerClient;
use executor::Executor;
use health::{Check, HealthState, Timing};
use hoist_proto::held_specs::HeldSpecs;
use hoist_proto::node::{
    Assignment, Health, Heartbeat, RegisterRequest, ServiceEndpoints, StatusReport, TaskStatus,
};
use reconcile::{ObservedTask, Phase};
use status::Batcher;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use term::{TermGuard, Verdict};
use tokio::sync::{watch, Notify};

/// `--join` and its companions.
#[derive(Debug, Clone)]
pub struct JoinConfig {
    pub token: String,
    /// Controller members, `HOST:PORT`, tried in turn.
    pub controllers: Vec<String>,
    pub labels: BTreeMap<String, String>,
    /// The address to register; default: the local address on the route to the first controller.
    pub advertise_addr: Option<String>,
    /// Override the CPUs offered (thousandths), to simulate a smaller or bigger host.
    pub cpu_millis: Option<u64>,
    /// Override the memory offered.
    pub memory_bytes: Option<u64>,
    pub data_dir: PathBuf,
    /// This node's end of the overlay: its key is registered, and the peers the controller
    /// lists are handed to it. `None` for a node on a `--subnet` of its own (no overlay).
    pub overlay: Option<Arc<crate::overlay::Overlay>>,
    /// The cluster DNS's table, fed by the endpoints watch (overlay nodes only).
    pub dns: Option<crate::dns::server::Table>,
    /// The routing mesh (service VIPs and ingress ports in nftables), fed by the same watch
    /// (overlay nodes only).
    pub mesh: Option<Arc<mesh_view::MeshHandle>>,
}

/// The address this node registers: `--advertise-addr`, or the local address on the route to
/// the first controller that has one.
pub fn advertise_address(cfg: &JoinConfig) -> anyhow::Result<String> {
    match &cfg.advertise_addr {
        Some(a) => Ok(a.clone()),
        None => cfg
            .controllers
            .iter()
            .find_map(|c| identity::route_source(c).ok())
            .ok_or_else(|| anyhow::anyhow!("no route to any controller to find the advertise address (give --advertise-addr)")),
    }
}

/// What this node registers with.
fn registration(cfg: &JoinConfig, node_id: Option<String>) -> anyhow::Result<RegisterRequest> {
    let address = advertise_address(cfg)?;
    let (wg_public_key, wg_endpoint) = match &cfg.overlay {
        Some(o) => {
            let endpoint = match address.parse::<std::net::IpAddr>() {
                Ok(ip) => std::net::SocketAddr::new(ip, o.config().listen_port).to_string(),
                Err(_) => format!("{address}:{}", o.config().listen_port),
            };
            (Some(o.public_key()), Some(endpoint))
        }
        None => (None, None),
    };
    Ok(RegisterRequest {
        token: cfg.token.clone(),
        node_id,
        hostname: identity::hostname(),
        address,
        labels: cfg.labels.clone(),
        capacity: identity::host_resources(cfg.cpu_millis, cfg.memory_bytes)?,
        agent_version: env!("CARGO_PKG_VERSION").to_string(),
        wg_public_key,
        wg_endpoint,
        // Made per registration by the client, over TLS (`client::ControllerClient::register`).
        csr: None,
    })
}

/// Before the agent builds its bridge on a cluster node: registers, then waits until the
/// controller has allocated this node a subnet of the cluster CIDR (the cluster must be at
/// format 2: every member upgraded). Keeps it in `DATA_DIR/overlay/state.json` so that a restart
/// builds the bridge at once.
pub async fn wait_for_subnet(
    cfg: &JoinConfig,
) -> anyhow::Result<crate::overlay::state::OverlayState> {
    let cluster_id = hoist_proto::node::parse_join_token(&cfg.token)
        .map_err(|e| anyhow::anyhow!("--join: {e}"))?
        .cluster_id;
    if let Some(s) = crate::overlay::state::load(&cfg.data_dir)? {
        if s.cluster_id == cluster_id {
            return Ok(s);
        }
    }
    let client = ControllerClient::new(cfg.controllers.clone(), &cfg.token, &cfg.data_dir)?;
    let mut attempt = 0u32;
    loop {
        let r: anyhow::Result<Option<crate::overlay::state::OverlayState>> = async {
            let mut ident = identity::load(&cfg.data_dir)?.for_cluster(&cluster_id);
            let resp = client
                .register(&registration(cfg, ident.node_id.clone())?)
                .await?;
            if resp.cluster_id != cluster_id {
                anyhow::bail!(
                    "the controllers belong to cluster {}, the join token to cluster {cluster_id}",
                    resp.cluster_id
                );
            }
            if ident.node_id.as_deref() != Some(&resp.node_id) {
                ident.node_id = Some(resp.node_id.clone());
                identity::save(&cfg.data_dir, &ident)?;
            }
            let a = client
                .assignments(&resp.node_id, 0, 0, None, None, Duration::ZERO)
                .await?;
            match a.overlay {
                Some(o) => match o.subnet {
                    Some(subnet) => Ok(Some(crate::overlay::state::OverlayState {
                        version: crate::overlay::state::STATE_VERSION,
                        cluster_id: cluster_id.clone(),
                        subnet,
                        cluster_cidr: o.cluster_cidr,
                    })),
                    None => anyhow::bail!(
                        "no subnet for this node: {}",
                        o.problem.unwrap_or_else(|| "not allocated yet".into())
                    ),
                },
                None => anyhow::bail!(
                    "the cluster has no overlay yet (it sets one up once every controller member \
                     runs Hoist 0.3 or later)"
                ),
            }
        }
        .await;
        match r {
            Ok(Some(s)) => {
                crate::overlay::state::save(&cfg.data_dir, &s)?;
                tracing::info!(subnet = %s.subnet, cluster_cidr = %s.cluster_cidr, "the controller allocated this node's subnet");
                return Ok(s);
            }
            Ok(None) => {}
            Err(e) => {
                if attempt == 0 || attempt.is_multiple_of(10) {
                    tracing::warn!("waiting for this node's subnet: {e:#}");
                }
            }
        }
        attempt = attempt.saturating_add(1);
        tokio::time::sleep(backoff(attempt.min(3))).await;
    }
}

/// How long one assignments long poll may wait at the controller.
const POLL_WAIT: Duration = Duration::from_secs(25);
const RECONCILE_EVERY: Duration = Duration::from_millis(500);
const REPORT_EVERY: Duration = Duration::from_secs(1);
/// The longest the renewal task sleeps before it looks at the clock again.
const RENEWAL_LOOK_EVERY: Duration = Duration::from_secs(300);

/// The back-off before registration attempt `attempt` (0-based): 200 ms doubling to 10 s.
pub fn backoff(attempt: u32) -> Duration {
    Duration::from_millis((200u64 << attempt.min(16)).min(10_000))
}

/// The heartbeat period a controller asked for, within 100 ms and a minute.
fn heartbeat_period(ms: u64) -> Duration {
    Duration::from_millis(ms.clamp(100, 60_000))
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Session {
    node_id: String,
    heartbeat: Duration,
}

#[derive(Debug, Clone)]
struct Monitor {
    health: Health,
    message: String,
    task: Arc<tokio::task::AbortHandle>,
}

#[derive(Debug)]
struct Node {
    /// From the join token: the cluster this node may join.
    cluster_id: String,
    mgr: Arc<Manager>,
    cfg: JoinConfig,
    client: Arc<ControllerClient>,
    executor: Arc<Executor>,
    term: Mutex<TermGuard>,
    session: watch::Sender<Option<Session>>,
    desired: watch::Sender<Option<Arc<Vec<Assignment>>>>,
    statuses: Mutex<Vec<TaskStatus>>,
    batcher: Mutex<Batcher>,
    monitors: Monitors,
    reregister: Notify,
    /// The cluster's current root as heartbeat answers name it: a certificate under another
    /// one (the root was rotated) is renewed at once.
    cluster_root: watch::Sender<String>,
    report_now: Arc<Notify>,
    /// The DNS table must catch up with assignments at this Raft index (see `endpoints`).
    dns_at_least: watch::Sender<u64>,
    /// The newest endpoints answer, for the mesh loop.
    endpoints_seen: watch::Sender<Option<Arc<ServiceEndpoints>>>,
    /// The index of the newest endpoints answer applied to DNS and the mesh: sent with every
    /// heartbeat, and at once when it moves (a drain waits for it; `leader/drain.rs`).
    endpoints_applied: std::sync::atomic::AtomicU64,
    heartbeat_now: Notify,
    /// A new leader: report the named volumes at once.
    volumes_now: Notify,
}

type Monitors = Arc<Mutex<BTreeMap<String, Monitor>>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Starts the node's loops; they run for the life of the process.
pub fn start(mgr: Arc<Manager>, images: Arc<ImageStore>, cfg: JoinConfig) -> anyhow::Result<()> {
    if cfg.controllers.is_empty() {
        anyhow::bail!("--join needs --controller ADDR[,ADDR...]");
    }
    let cluster_id = hoist_proto::node::parse_join_token(&cfg.token)
        .map_err(|e| anyhow::anyhow!("--join: {e}"))?
        .cluster_id;
    let ident = identity::load(&cfg.data_dir)?.for_cluster(&cluster_id);
    identity::save(&cfg.data_dir, &ident)?;
    let client = Arc::new(ControllerClient::new(
        cfg.controllers.clone(),
        &cfg.token,
        &cfg.data_dir,
    )?);
    let session = watch::channel(None).0;
    let node = Arc::new(Node {
        cluster_id,
        executor: Executor::new(
            Arc::new(executor::Local {
                containers: mgr.clone(),
                images,
                registries: mgr.config.registries(),
            }),
            Arc::new(files::ControllerFiles::new(
                client.clone(),
                session.subscribe(),
            )),
        ),
        client,
        mgr,
        term: Mutex::new(TermGuard::new(ident.term_seen)),
        session,
        desired: watch::channel(None).0,
        statuses: Mutex::new(Vec::new()),
        batcher: Mutex::new(Batcher::default()),
        monitors: Arc::new(Mutex::new(BTreeMap::new())),
        reregister: Notify::new(),
        cluster_root: watch::channel(String::new()).0,
        report_now: Arc::new(Notify::new()),
        dns_at_least: watch::channel(0).0,
        endpoints_seen: watch::channel(None).0,
        endpoints_applied: std::sync::atomic::AtomicU64::new(0),
        heartbeat_now: Notify::new(),
        volumes_now: Notify::new(),
        cfg,
    });
    if node.cfg.mesh.is_some() {
        node.executor.use_mesh();
    }
    tokio::spawn(node.clone().membership());
    tokio::spawn(node.clone().assignments());
    if let Some(table) = node.cfg.dns.clone() {
        tokio::spawn(node.clone().endpoints(table));
    }
    if let Some(mesh) = node.cfg.mesh.clone() {
        tokio::spawn(node.clone().mesh_loop(mesh));
    }
    if let Some(overlay) = node.cfg.overlay.clone() {
        tokio::spawn(node.clone().overlay_reports(overlay));
    }
    tokio::spawn(node.clone().volume_reports());
    tokio::spawn(node.clone().sessions());
    if let Some(held) = node.client.certificate() {
        tokio::spawn(node.clone().renewal(held));
    }
    tokio::spawn(node.clone().reconcile_loop());
    tokio::spawn(node.report_loop());
    Ok(())
}

impl Node {
    /// Judges an answer's term; a newer one is remembered and earns the new leader a full report.
    fn check_term(&self, term: u64, what: &str) -> Verdict {
        let v = lock(&self.term).check(term);
        match v {
            Verdict::Stale => tracing::warn!(
                term,
                newest = lock(&self.term).newest(),
                "ignoring {what} from a deposed leader"
            ),
            Verdict::Newer => {
                lock(&self.batcher).reset();
                self.report_now.notify_one();
                self.volumes_now.notify_one();
                self.save_identity();
            }
            Verdict::Current => {}
        }
        v
    }

    fn save_identity(&self) {
        let ident = identity::Identity {
            version: identity::IDENTITY_VERSION,
            node_id: self
                .session
                .borrow()
                .as_ref()
                .map(|s| s.node_id.clone())
                .or_else(|| {
                    identity::load(&self.cfg.data_dir)
                        .ok()
                        .and_then(|i| i.node_id)
                }),
            term_seen: lock(&self.term).newest(),
            cluster_id: Some(self.cluster_id.clone()),
        };
        if let Err(e) = identity::save(&self.cfg.data_dir, &ident) {
            tracing::warn!("save the node identity: {e}");
        }
    }

    async fn register(&self) -> Session {
        let mut attempt = 0u32;
        loop {
            match self.try_register().await {
                Ok(s) => return s,
                Err(e) => {
                    let wait = backoff(attempt);
                    tracing::warn!(
                        attempt = attempt + 1,
                        "joining the cluster failed: {e:#}; retrying in {wait:?}"
                    );
                    tokio::time::sleep(wait).await;
                    attempt = attempt.saturating_add(1);
                }
            }
        }
    }

    async fn try_register(&self) -> anyhow::Result<Session> {
        let ident = identity::load(&self.cfg.data_dir)?;
        let req = registration(&self.cfg, ident.node_id.clone())?;
        let resp = self.client.register(&req).await?;
        if resp.cluster_id != self.cluster_id {
            anyhow::bail!(
                "the controllers belong to cluster {}, the join token to cluster {}",
                resp.cluster_id,
                self.cluster_id
            );
        }
        if self.check_term(resp.term, "a registration answer") == Verdict::Stale {
            anyhow::bail!("the answer came from a deposed leader (term {})", resp.term);
        }
        let session = Session {
            node_id: resp.node_id.clone(),
            heartbeat: heartbeat_period(resp.heartbeat_interval_ms),
        };
        if ident.node_id.as_deref() != Some(&resp.node_id) {
            identity::save(
                &self.cfg.data_dir,
                &identity::Identity {
                    version: identity::IDENTITY_VERSION,
                    node_id: Some(resp.node_id.clone()),
                    term_seen: lock(&self.term).newest(),
                    cluster_id: Some(self.cluster_id.clone()),
                },
            )?;
        }
        tracing::info!(
            node = %resp.node_id, address = %req.address, cpus = req.capacity.cpu_millis as f64 / 1000.0,
            memory = %hoist_common::parse::format_size(req.capacity.memory_bytes),
            labels = ?req.labels, term = resp.term, rejoined = ident.node_id.is_some(),
            tls = self.client.uses_tls(), "joined the cluster"
        );
        Ok(session)
    }

    /// Renews the node's certificate at a random 50–80 % of its lifetime, for the same key
    /// (TLS only). A failure is retried from 5 s to 1 min apart; an answer that the controllers
    /// no longer take the key (the node was removed, or registered another), or a certificate
    /// that expired meanwhile, makes the node register again with its join token, which gives
    /// it a new certificate.
    async fn renewal(self: Arc<Self>, mut held: watch::Receiver<Option<tls::Validity>>) {
        let mut session_rx = self.session.subscribe();
        let mut cluster_root = self.cluster_root.subscribe();
        // The renewal point of the certificate in use, drawn once per certificate.
        let mut drawn: Option<(tls::Validity, f64)> = None;
        loop {
            let Some(current) = *held.borrow_and_update() else {
                if held.changed().await.is_err() {
                    return;
                }
                continue;
            };
            let fraction = match drawn {
                Some((v, f)) if v == current => f,
                _ => {
                    let f = hoist_transport::pki::renewal_fraction();
                    drawn = Some((current, f));
                    f
                }
            };
            let due = current.renew_at(fraction);
            let wait = due
                .duration_since(std::time::SystemTime::now())
                .unwrap_or(Duration::ZERO);
            let rotated = {
                let root = cluster_root.borrow_and_update();
                !root.is_empty() && self.client.root_digest().is_some_and(|ours| ours != *root)
            };
            if rotated {
                tracing::info!("the cluster's root was rotated: renewing the node certificate under the new one");
            } else if !wait.is_zero() {
                // Looked at again at least every few minutes: the wall clock may jump (a host
                // that slept) while the monotonic one does not.
                tokio::select! {
                    _ = tokio::time::sleep(wait.min(RENEWAL_LOOK_EVERY)) => {}
                    r = held.changed() => if r.is_err() { return },
                    r = cluster_root.changed() => if r.is_err() { return },
                }
                continue;
            }
            let mut attempt = 0u32;
            loop {
                let node_id = match session_rx.wait_for(Option::is_some).await {
                    Ok(s) => s.as_ref().map(|s| s.node_id.clone()).unwrap_or_default(),
                    Err(_) => return,
                };
                if *held.borrow() != Some(current) {
                    // A registration meanwhile gave a new certificate.
                    break;
                }
                let register_again = match self.client.renew(&node_id).await {
                    Ok(v) => {
                        tracing::info!(
                            node = %node_id,
                            "certificate renewed, valid until {}",
                            humantime::format_rfc3339_seconds(v.not_after)
                        );
                        break;
                    }
                    Err(e) if e.is_unknown_node() => {
                        tracing::warn!("renewing the node certificate: {e}: registering again");
                        true
                    }
                    Err(e) if current.expired(std::time::SystemTime::now()) => {
                        tracing::warn!(
                            "renewing the node certificate failed and it has expired ({e}): registering again with the join token"
                        );
                        true
                    }
                    Err(e) => {
                        let wait = tls::renewal_backoff(attempt);
                        tracing::warn!(
                            attempt = attempt + 1,
                            "renewing the node certificate failed: {e}; retrying in {wait:?}"
                        );
                        attempt = attempt.saturating_add(1);
                        tokio::select! {
                            _ = tokio::time::sleep(wait) => {}
                            r = held.changed() => if r.is_err() { return },
                        }
                        false
                    }
                };
                if register_again {
                    self.reregister.notify_one();
                    // The registration's certificate replaces this one.
                    if held.changed().await.is_err() {
                        return;
                    }
                    break;
                }
            }
        }
    }

    async fn membership(self: Arc<Self>) {
        loop {
            let mut session = self.register().await;
            lock(&self.batcher).reset();
            self.session.send_replace(Some(session.clone()));
            self.report_now.notify_one();
            let mut failures = 0u32;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(session.heartbeat) => {}
                    _ = self.heartbeat_now.notified() => {}
                    _ = self.reregister.notified() => break,
                }
                let hb = Heartbeat {
                    node_id: session.node_id.clone(),
                    term_seen: lock(&self.term).newest(),
                    endpoints_applied: self
                        .endpoints_applied
                        .load(std::sync::atomic::Ordering::Relaxed),
                };
                match self.client.heartbeat(&hb).await {
                    Ok(ack) => {
                        if self.check_term(ack.term, "a heartbeat answer") == Verdict::Stale {
                            continue;
                        }
                        if failures > 0 {
                            tracing::info!(failures, "the controllers answer again");
                        }
                        failures = 0;
                        if !ack.known {
                            tracing::warn!(node = %session.node_id, "the controller no longer knows this node: registering again");
                            break;
                        }
                        // The leader spreads heartbeats as the cluster grows.
                        if ack.heartbeat_interval_ms > 0 {
                            let pace = heartbeat_period(ack.heartbeat_interval_ms);
                            if pace != session.heartbeat {
                                tracing::info!(from = ?session.heartbeat, to = ?pace, "heartbeat interval changed by the leader");
                                session.heartbeat = pace;
                            }
                        }
                        self.cluster_root.send_if_modified(|root| {
                            let changed = !ack.ca_digest.is_empty() && *root != ack.ca_digest;
                            if changed {
                                root.clone_from(&ack.ca_digest);
                            }
                            changed
                        });
                    }
                    Err(e) if e.is_unknown_node() => {
                        tracing::warn!("heartbeat: {e}: registering again");
                        break;
                    }
                    Err(e) => {
                        failures += 1;
                        if failures == 1 || failures.is_multiple_of(30) {
                            tracing::warn!(
                                failures,
                                "heartbeat failed: {e}; containers keep running"
                            );
                        }
                    }
                }
            }
            self.session.send_replace(None);
        }
    }

    async fn assignments(self: Arc<Self>) {
        let mut index = 0u64;
        // The term of the answer whose specs `desired` holds.
        let mut specs_term = 0u64;
        let mut held = held_overlay::HeldOverlay::default();
        let mut failures = 0u32;
        let mut session_rx = self.session.subscribe();
        loop {
            let node_id = match session_rx.wait_for(Option::is_some).await {
                Ok(s) => s.as_ref().map(|s| s.node_id.clone()).unwrap_or_default(),
                Err(_) => return,
            };
            let t = std::time::Instant::now();
            // The tasks and specs of the answer taken last (at `index`): the controller names
            // the tasks and leaves out the specs that are unchanged.
            let desired = self.desired.borrow().clone();
            let specs = desired.as_deref().map(|d| HeldSpecs::of(specs_term, d));
            let tasks_term = desired.is_some().then_some(specs_term);
            let poll = self.client.assignments(
                &node_id,
                index,
                held.index(),
                specs.as_ref(),
                tasks_term,
                POLL_WAIT,
            );
            match poll.await {
                Ok(mut a) => {
                    failures = 0;
                    if self.check_term(a.term, "assignments") == Verdict::Stale {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                    let holds = desired.as_deref().map_or(&[][..], Vec::as_slice);
                    let specs_held = a.tasks.iter().filter(|t| t.spec_held).count();
                    let unchanged = a.unchanged.len();
                    if let Err(e) = hoist_proto::held_tasks::merge(holds, &mut a) {
                        tracing::warn!("assignments: {e}: asking for all of them");
                        index = 0;
                        continue;
                    }
                    specs_term = a.term;
                    let changed = self
                        .desired
                        .borrow()
                        .as_deref()
                        .is_none_or(|d| *d != a.tasks);
                    // DNS answers are never older than what this agent has applied.
                    self.dns_at_least.send_if_modified(|at| {
                        let newer = a.index > *at;
                        *at = (*at).max(a.index);
                        newer
                    });
                    let taken = held.take(a.overlay, a.overlay_index);
                    let ask_whole = taken == held_overlay::Taken::AskWhole;
                    if let (Some(o), held_overlay::Taken::New(view)) = (&self.cfg.overlay, taken) {
                        if let Some(s) = view
                            .subnet
                            .as_deref()
                            .filter(|s| *s != self.mgr.config.subnet)
                        {
                            // The node was removed and registered afresh: its old bridge no longer
                            // matches what peers route here.
                            tracing::error!(
                                allocated = s, bridge = %self.mgr.config.subnet,
                                "the controller allocated this node another subnet than its bridge uses: \
                                 drain the node, remove its containers and DATA_DIR/overlay/state.json, and restart the agent"
                            );
                        }
                        o.offer(view.clone());
                    }
                    if changed {
                        let running = a
                            .tasks
                            .iter()
                            .filter(|t| t.desired == hoist_proto::cluster::TaskState::Running)
                            .count();
                        tracing::info!(
                            index = a.index,
                            term = a.term,
                            tasks = a.tasks.len(),
                            running,
                            specs_held,
                            unchanged,
                            "new assignments"
                        );
                        self.desired.send_replace(Some(Arc::new(a.tasks)));
                    }
                    if a.index == index && t.elapsed() < Duration::from_millis(100) {
                        // A controller that does not block: do not spin.
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                    // The whole overlay is asked for at once, not at the next change.
                    index = if ask_whole { 0 } else { a.index };
                }
                Err(e) if e.is_unknown_node() => {
                    tracing::warn!("assignments: {e}: registering again");
                    self.reregister.notify_one();
                    index = 0;
                    held.forget();
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => {
                    failures += 1;
                    if failures == 1 || failures.is_multiple_of(30) {
                        tracing::warn!(failures, "watching assignments failed: {e}");
                    }
                    tokio::time::sleep(backoff(failures.min(4))).await;
                }
            }
        }
    }

    /// The cluster-wide endpoints watch that feeds the DNS table: one long poll for every
    /// service, whose answers list the services and replicas changed since the table held
    /// (merged into it), or the whole table at first and from an older controller. Polls are
    /// paced as the leader asks ([`ServiceEndpoints::pace_ms`]).
    ///
    /// [`ServiceEndpoints::pace_ms`]: hoist_proto::node::ServiceEndpoints::pace_ms
    async fn endpoints(self: Arc<Self>, table: crate::dns::server::Table) {
        let mut index = 0u64;
        let mut failures = 0u32;
        let mut session_rx = self.session.subscribe();
        let mut next_poll = tokio::time::Instant::now();
        loop {
            if session_rx.wait_for(Option::is_some).await.is_err() {
                return;
            }
            // A new assignments index wakes the watch: the next answer, asked not to wait, is as
            // of the leader's applied index, which is at least the assignments'. It lists what
            // changed since the table held (a controller that cannot sends the whole table).
            let mut fresh = self.dns_at_least.subscribe();
            fresh.mark_unchanged();
            let mut at_once = false;
            let paced = async {
                tokio::time::sleep_until(next_poll).await;
                let t = std::time::Instant::now();
                (self.client.endpoints(index, POLL_WAIT).await, t)
            };
            let (answer, t) = tokio::select! {
                r = paced => r,
                _ = fresh.changed() => {
                    at_once = true;
                    let t = std::time::Instant::now();
                    (self.client.endpoints(index, Duration::ZERO).await, t)
                }
            };
            match answer {
                Ok(e) => {
                    failures = 0;
                    // Bounded: a pace past the poll's own wait is not a pace.
                    let pace = Duration::from_millis(e.pace_ms).min(POLL_WAIT);
                    next_poll = tokio::time::Instant::now() + pace;
                    if self.check_term(e.term, "endpoints") == Verdict::Stale {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                    let held = self.endpoints_seen.borrow().clone();
                    let Some(e) = e.merge(held.as_deref()) else {
                        tracing::debug!(
                            index,
                            "endpoints changes that do not add up to the table held: asking for the whole table"
                        );
                        index = 0;
                        continue;
                    };
                    let at = e.index;
                    if e.index != index {
                        let reg = crate::dns::Registry::from_endpoints(&e);
                        tracing::debug!(index = e.index, services = reg.len(), "DNS table updated");
                        *table.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(reg);
                        self.endpoints_seen.send_replace(Some(Arc::new(e)));
                        if self.cfg.mesh.is_none() {
                            self.acknowledge_endpoints(at);
                        }
                    } else if !at_once && t.elapsed() < Duration::from_millis(100) {
                        // A controller that answers at once, unasked: do not spin.
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                    index = at;
                }
                Err(e) => {
                    failures += 1;
                    if failures == 1 || failures.is_multiple_of(30) {
                        tracing::warn!(
                            failures,
                            "watching endpoints for DNS failed: {e}; answers stay as they were"
                        );
                    }
                    tokio::time::sleep(backoff(failures.min(4))).await;
                }
            }
        }
    }

    /// Says (with a heartbeat now) that the endpoints as of `index` are applied here.
    fn acknowledge_endpoints(&self, index: u64) {
        let prev = self
            .endpoints_applied
            .fetch_max(index, std::sync::atomic::Ordering::Relaxed);
        if index > prev {
            self.heartbeat_now.notify_one();
        }
    }

    /// Applies the newest endpoints and overlay peers to the routing mesh (one nftables
    /// transaction of what changed), then acknowledges the endpoints' index. A failure is kept
    /// for `hoist net doctor` and node status, not acknowledged, and retried every second.
    async fn mesh_loop(self: Arc<Self>, mesh: Arc<mesh_view::MeshHandle>) {
        let mut endpoints = self.endpoints_seen.subscribe();
        let overlay = self.cfg.overlay.clone();
        let mut views = overlay.as_ref().map(|o| o.subscribe());
        let mut failing = false;
        loop {
            let e = endpoints.borrow_and_update().clone();
            let peers = views.as_mut().and_then(|v| v.borrow_and_update().clone());
            let node_id = self
                .session
                .borrow()
                .as_ref()
                .map(|s| s.node_id.clone())
                .or_else(|| identity::load(&self.cfg.data_dir).ok()?.node_id);
            if let (Some(e), Some(node_id)) = (e, node_id) {
                let view = mesh_view::of(&e, peers.as_ref(), &node_id);
                let m = mesh.clone();
                let t = std::time::Instant::now();
                match tokio::task::spawn_blocking(move || m.mesh.apply(&view)).await {
                    Ok(Ok(stats)) => {
                        if failing {
                            tracing::info!("service addresses applied again");
                        }
                        failing = false;
                        tracing::debug!(index = e.index, ?stats, took = ?t.elapsed(), "service addresses applied");
                        mesh.applied
                            .store(e.index, std::sync::atomic::Ordering::Relaxed);
                        self.acknowledge_endpoints(e.index);
                    }
                    Ok(Err(err)) => {
                        if !failing {
                            tracing::warn!(
                                index = e.index,
                                "applying service addresses failed (retrying every second): {err}"
                            );
                        }
                        failing = true;
                    }
                    Err(err) => tracing::warn!("mesh apply panicked: {err}"),
                }
            }
            let retry = async {
                if failing {
                    tokio::time::sleep(Duration::from_secs(1)).await
                } else {
                    std::future::pending().await
                }
            };
            let overlay_changed = async {
                match views.as_mut() {
                    Some(v) => v.changed().await.is_ok(),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                r = endpoints.changed() => if r.is_err() { return },
                ok = overlay_changed => if !ok { return },
                _ = retry => {}
            }
        }
    }

    /// Every few seconds, this node's view of its overlay peers to the leader (for `hoist node
    /// inspect`).
    async fn overlay_reports(self: Arc<Self>, overlay: Arc<crate::overlay::Overlay>) {
        let mut session_rx = self.session.subscribe();
        loop {
            tokio::time::sleep(crate::overlay::probe::EVERY).await;
            let node_id = match session_rx.wait_for(Option::is_some).await {
                Ok(s) => s.as_ref().map(|s| s.node_id.clone()).unwrap_or_default(),
                Err(_) => return,
            };
            let o = overlay.clone();
            let Ok(status) = tokio::task::spawn_blocking(move || o.status()).await else {
                continue;
            };
            let report = hoist_proto::node::OverlayReport {
                node_id,
                peers: status.peers,
                mesh_error: self
                    .cfg
                    .mesh
                    .as_ref()
                    .and_then(|m| m.mesh.status().last_error),
            };
            if let Err(e) = self.client.overlay_report(&report).await {
                tracing::debug!("overlay report: {e}");
            }
        }
    }

    /// This node's named volumes to the leader, for `hoist node volumes`: when their names or
    /// users change, every 30 s otherwise; all sizes measured at most once a minute, a new
    /// volume's with the report that first lists it ([`volumes`]).
    async fn volume_reports(self: Arc<Self>) {
        let mut session_rx = self.session.subscribe();
        let mut reporter = volumes::Reporter::default();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(volumes::CHECK_EVERY) => {}
                _ = self.volumes_now.notified() => reporter.forget_sent(),
            }
            let node_id = match session_rx.wait_for(Option::is_some).await {
                Ok(s) => s.as_ref().map(|s| s.node_id.clone()).unwrap_or_default(),
                Err(_) => return,
            };
            let mgr = self.mgr.clone();
            let Ok(vols) = tokio::task::spawn_blocking(move || mgr.node_volumes()).await else {
                continue;
            };
            if !reporter.due(&node_id, &vols, std::time::Instant::now()) {
                continue;
            }
            let (names, all) = reporter.to_measure(&vols, std::time::Instant::now());
            if !names.is_empty() || all {
                let mgr = self.mgr.clone();
                let walk = move || {
                    names
                        .into_iter()
                        .map(|n| {
                            let size = mgr.volume_size(&n);
                            (n, size)
                        })
                        .collect()
                };
                if let Ok(sizes) = tokio::task::spawn_blocking(walk).await {
                    reporter.measured(sizes, all, std::time::Instant::now());
                }
            }
            let report = reporter.report(&node_id, &vols);
            match self.client.volume_report(&report).await {
                Ok(_) => reporter.sent(&node_id, &vols, std::time::Instant::now()),
                Err(e) => {
                    tracing::debug!("volume report: {e}");
                    reporter.failed(std::time::Instant::now());
                }
            }
        }
    }

    async fn reconcile_loop(self: Arc<Self>) {
        let mut desired_rx = self.desired.subscribe();
        loop {
            tokio::select! {
                r = desired_rx.changed() => if r.is_err() { return },
                _ = tokio::time::sleep(RECONCILE_EVERY) => {}
                _ = self.executor.done.notified() => {}
            }
            let Some(desired) = desired_rx.borrow_and_update().clone() else {
                // No assignments yet since start: touch nothing.
                continue;
            };
            self.reconcile_once(&desired);
        }
    }

    fn reconcile_once(&self, desired: &[Assignment]) {
        let now = now_ms();
        let observed = self.executor.observed();
        let actions = reconcile::reconcile(desired, &observed, now);
        self.executor.apply(actions);
        let assigned: BTreeSet<&str> = desired.iter().map(|a| a.task_id.as_str()).collect();
        self.executor.forget(|t| assigned.contains(t));
        lock(&self.batcher).retain(|t| assigned.contains(t));
        self.sync_monitors(desired, &observed);

        let mut by_task: BTreeMap<&str, Vec<&ObservedTask>> = BTreeMap::new();
        for o in &observed {
            by_task.entry(o.task_id.as_str()).or_default().push(o);
        }
        let monitors = lock(&self.monitors);
        let statuses: Vec<TaskStatus> = desired
            .iter()
            .map(|a| {
                let obs = by_task.get(a.task_id.as_str()).map(|list| {
                    list.iter()
                        .copied()
                        .find(|o| o.phase == Phase::Busy)
                        .unwrap_or_else(|| reconcile::primary(list))
                });
                let monitor = obs
                    .and_then(|o| o.container_id.as_ref())
                    .and_then(|c| monitors.get(c));
                let check = health::check_for(a, obs);
                let health = health::task_health(check.as_ref(), monitor.map(|m| m.health));
                let mut st = status::task_status(a, obs, health, now);
                if let (Health::Unhealthy, Some(m)) = (st.health, monitor) {
                    st.message = format!("unhealthy: {}", m.message);
                }
                st
            })
            .collect();
        drop(monitors);
        let mut current = lock(&self.statuses);
        if *current != statuses {
            *current = statuses;
            self.report_now.notify_one();
        }
    }

    /// One health monitor per running container whose task has a health check: its spec's, or
    /// else its image's ([`health::check_for`]).
    fn sync_monitors(&self, desired: &[Assignment], observed: &[ObservedTask]) {
        let assigned: BTreeMap<&str, &Assignment> =
            desired.iter().map(|a| (a.task_id.as_str(), a)).collect();
        let mut monitors = lock(&self.monitors);
        let mut live = BTreeSet::new();
        for o in observed.iter().filter(|o| o.phase == Phase::Running) {
            let (Some(c), Some(a)) = (&o.container_id, assigned.get(o.task_id.as_str())) else {
                continue;
            };
            let Some(Check { probe, timing }) = health::check_for(a, Some(o)) else {
                continue;
            };
            live.insert(c.clone());
            if monitors.contains_key(c) {
                continue;
            }
            let task = tokio::spawn(monitor(
                self.mgr.clone(),
                self.monitors.clone(),
                self.report_now.clone(),
                c.clone(),
                probe,
                timing,
                o.created_ms,
            ));
            monitors.insert(
                c.clone(),
                Monitor {
                    health: Health::Starting,
                    message: String::new(),
                    task: Arc::new(task.abort_handle()),
                },
            );
        }
        monitors.retain(|c, m| {
            let keep = live.contains(c);
            if !keep {
                m.task.abort();
            }
            keep
        });
    }

    async fn report_loop(self: Arc<Self>) {
        let mut failures = 0u32;
        loop {
            tokio::select! {
                _ = self.report_now.notified() => {}
                _ = tokio::time::sleep(REPORT_EVERY) => {}
            }
            let Some(session) = self.session.borrow().clone() else {
                continue;
            };
            let current = lock(&self.statuses).clone();
            let changes = lock(&self.batcher).changes(&current);
            if changes.is_empty() {
                continue;
            }
            let report = StatusReport {
                node_id: session.node_id.clone(),
                term_seen: lock(&self.term).newest(),
                tasks: changes.clone(),
            };
            match self.client.status(&report).await {
                Ok(ack) => {
                    failures = 0;
                    if self.check_term(ack.term, "a status acknowledgement") != Verdict::Stale {
                        tracing::debug!(tasks = changes.len(), "status reported");
                        lock(&self.batcher).ack(changes);
                    }
                }
                Err(e) if e.is_unknown_node() => {
                    tracing::warn!("status: {e}: registering again");
                    self.reregister.notify_one();
                }
                Err(e) => {
                    failures += 1;
                    if failures == 1 || failures.is_multiple_of(30) {
                        tracing::warn!(failures, "reporting status failed: {e}");
                    }
                    tokio::time::sleep(backoff(failures.min(4))).await;
                }
            }
        }
    }
}

/// Probes one container every interval and records its health; ends when aborted (the container
/// stopped or its task went away).
#[allow(clippy::too_many_arguments)]
async fn monitor(
    mgr: Arc<Manager>,
    monitors: Monitors,
    report_now: Arc<Notify>,
    container: String,
    probe: probe::Probe,
    timing: Timing,
    started_ms: u64,
) {
    let http = probe::http_client();
    let mut state = HealthState::new(started_ms);
    loop {
        tokio::time::sleep(Duration::from_millis(timing.interval_ms)).await;
        // Looked up every time: the address is recorded once the network is attached.
        let ip = mgr.get(&container).ok().and_then(|c| c.info().ip_address);
        let started = std::time::Instant::now();
        let result = probe::run(
            &probe,
            &mgr,
            &container,
            ip.as_deref(),
            Duration::from_millis(timing.timeout_ms),
            &http,
        )
        .await;
        let (before, passed) = (state.health, result.is_ok());
        let health = state.record(&timing, result, now_ms());
        crate::metrics::events().probe(&container, passed, started.elapsed(), health);
        if health != before {
            tracing::info!(%container, ?health, message = %state.last_message, "health changed");
        }
        let mut m = lock(&monitors);
        let Some(entry) = m.get_mut(&container) else {
            return;
        };
        entry.health = health;
        entry.message = state.last_message.clone();
        drop(m);
        if health != before {
            report_now.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_ten_seconds() {
        assert_eq!(backoff(0), Duration::from_millis(200));
        assert_eq!(backoff(1), Duration::from_millis(400));
        assert_eq!(backoff(5), Duration::from_millis(6400));
        assert_eq!(backoff(6), Duration::from_secs(10));
        assert_eq!(backoff(u32::MAX), Duration::from_secs(10));
    }
}
