//! One simulated node: the real agent's client of the controllers
//! ([`hoist_agent::worker::client::ControllerClient`]: join token, signing request and TLS with a
//! `HOIST2` token, formats, failover between members) driven by a small async loop instead of a
//! container runtime. It is `tests/src/fake_agent.rs` made async so that thousands fit in one
//! process: it heartbeats at the interval the controller gave, long-polls its assignments, reports
//! a new task Running (or Failed, for the run's failure share) after a simulated start time, and
//! Shutdown when told; reports due together go in one status batch.
//!
//! Killing a node ends its loop and drops its client (its connections close): to the controller
//! it went silent, as a crashed host does.
//!
//! For the phases after the fill, a node also keeps what only the agent side knows: how many of
//! its running tasks run which version of which service (a rolling update is done when all run
//! the new one), when it last had a long poll answered (a leader kill is over for the agents when
//! every node has had one since), and, while a [`Trace`] is armed, when each new task of the
//! traced service first appeared in a poll answer (the time an assignment takes to reach its
//! agent).

use base64::Engine as _;
use hoist_agent::worker::backoff;
use hoist_agent::worker::client::{ClientError, ControllerClient};
use hoist_proto::cluster::{NodeResources, TaskState};
use hoist_proto::held_specs::HeldSpecs;
use hoist_proto::node::{
    Assignments, Health, Heartbeat, RegisterRequest, StatusReport, TaskStatus,
};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::stats;

/// How long an assignments poll waits (the real agent's `POLL_WAIT`).
const POLL_WAIT: Duration = Duration::from_secs(25);

/// What a run tells every node.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub addrs: Vec<String>,
    pub join_token: String,
    pub fail_percent: u8,
    /// Simulated container start time bounds (ms).
    pub start_ms: (u64, u64),
    /// The run's clock origin: [`NodeView::last_poll_ok_ms`] counts from it.
    pub epoch: Instant,
    pub trace: Arc<Trace>,
    /// Register with a WireGuard key and endpoint, as an agent on the overlay does: every
    /// node is then every other node's peer, and the assignments answers carry them.
    pub overlay: bool,
    /// Never name the overlay held: every answer carries it (agents before the overlay index).
    pub full_overlay: bool,
    /// Never name the specs held: every answer carries every task's spec (agents before
    /// `specs`).
    pub full_specs: bool,
    /// Never name the term of the answer whose tasks the node holds: every answer lists every
    /// task in full (agents before `tasks_term`).
    pub full_tasks: bool,
    /// Ask for HTTP/1.1 only (agents before HTTP/2).
    pub http1: bool,
    /// Hold the endpoints and sessions long polls too, as agents do.
    pub watches: bool,
}

/// When new tasks of one service first appear in the nodes' poll answers, while armed.
#[derive(Debug, Default)]
pub struct Trace {
    armed: Mutex<Option<(String, Vec<Instant>)>>,
}

impl Trace {
    /// Records from now on the first appearance of every new task of `service`.
    pub fn arm(&self, service: &str) {
        *self.lock() = Some((service.to_string(), Vec::new()));
    }

    /// How many appearances were recorded so far.
    pub fn count(&self) -> usize {
        self.lock().as_ref().map_or(0, |(_, v)| v.len())
    }

    /// Stops recording; answers what was recorded.
    pub fn take(&self) -> Vec<Instant> {
        self.lock().take().map(|(_, v)| v).unwrap_or_default()
    }

    fn seen(&self, service: &str, at: Instant) {
        if let Some((s, v)) = self.lock().as_mut() {
            if s == service {
                v.push(at);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(String, Vec<Instant>)>> {
        self.armed.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What the run and a node share: the node's own view, read by the samplers.
#[derive(Debug, Default)]
pub struct NodeView {
    /// Tasks this node reported Running (acknowledged) and has not stopped.
    pub running: AtomicU64,
    pub registered: AtomicBool,
    pub killed: AtomicBool,
    /// Set with [`NodeView::killed`]: wakes the loop to end it.
    pub kill: Notify,
    /// When a long poll was last answered, in ms since [`NodeConfig::epoch`] plus one (0: never).
    pub last_poll_ok_ms: AtomicU64,
    /// When the poll in flight was sent, likewise (0: none in flight). A poll a controller
    /// holds (no change yet) stays in flight for up to 25 s; one it refuses ends at once.
    pub poll_sent_ms: AtomicU64,
    /// Running tasks by service and the service version of their assignment.
    versions: Mutex<HashMap<String, BTreeMap<u64, u64>>>,
}

impl NodeView {
    /// Running tasks of `service` at version `version` or newer.
    pub fn running_at_least(&self, service: &str, version: u64) -> u64 {
        let v = self.versions.lock().unwrap_or_else(|e| e.into_inner());
        v.get(service)
            .map_or(0, |by| by.range(version..).map(|(_, n)| n).sum())
    }

    fn count_version(&self, service: &str, version: u64, up: bool) {
        let mut v = self.versions.lock().unwrap_or_else(|e| e.into_inner());
        let by = v.entry(service.to_string()).or_default();
        let n = by.entry(version).or_default();
        if up {
            *n += 1;
        } else {
            *n = n.saturating_sub(1);
            if *n == 0 {
                by.remove(&version);
            }
        }
    }
}

/// Whether every spec `a` left out is one the poll said it held (what the agent checks as it
/// fills them in).
fn holds_left_out(specs: Option<&HeldSpecs>, a: &Assignments) -> bool {
    a.tasks
        .iter()
        .filter(|t| t.spec_held)
        .all(|t| specs.is_some_and(|h| h.holds(&t.service, t.service_version)))
}

/// What a node knows of one of its tasks.
#[derive(Debug, Clone)]
struct TaskInfo {
    local: Local,
    slot: u64,
    service: String,
    version: u64,
}

/// Errors and events of all nodes, counted.
#[derive(Debug, Default)]
pub struct Counters {
    pub register_errors: AtomicU64,
    pub heartbeat_errors: AtomicU64,
    pub poll_errors: AtomicU64,
    pub status_errors: AtomicU64,
    pub reregistrations: AtomicU64,
    pub reported_running: AtomicU64,
    pub reported_failed: AtomicU64,
    pub reported_shutdown: AtomicU64,
    pub status_batches: AtomicU64,
    /// Answers that left out a spec the poll did not say it held.
    pub spec_errors: AtomicU64,
    /// Specs in answers, and specs left out of them as held.
    pub specs_sent: AtomicU64,
    pub specs_left_out: AtomicU64,
    /// Answers that named as unchanged a task the node did not hold.
    pub task_errors: AtomicU64,
    /// Tasks listed in full in answers, and named only as unchanged.
    pub tasks_sent: AtomicU64,
    pub tasks_unchanged: AtomicU64,
    /// Failed endpoints and sessions polls.
    pub watch_errors: AtomicU64,
}

impl Counters {
    fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }
}

/// What the node did with a task so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Local {
    /// Assigned to run; its Running (or Failed) report is due later.
    Starting,
    Running,
    Failed,
    /// Told to stop; its Shutdown report is due.
    Stopping,
    Stopped,
}

/// A report waiting for its time.
#[derive(Debug, Clone)]
struct Due {
    at: Instant,
    task_id: String,
    state: TaskState,
}

type Poll = Pin<Box<dyn Future<Output = Result<Assignments, ClientError>> + Send>>;

/// A registered simulated node.
pub struct Node {
    index: usize,
    config: Arc<NodeConfig>,
    client: Arc<ControllerClient>,
    id: String,
    term: u64,
    heartbeat: Duration,
    tasks: HashMap<String, TaskInfo>,
    due: Vec<Due>,
    view: Arc<NodeView>,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node").field("id", &self.id).finish()
    }
}

/// The registration of simulated node `index`; with `overlay`, a WireGuard key (no one holds its
/// private half) and an endpoint in the benchmark range.
fn register_request(
    index: usize,
    join_token: &str,
    node_id: Option<String>,
    overlay: bool,
) -> RegisterRequest {
    let mut key = [0x5au8; 32];
    key[..8].copy_from_slice(&(index as u64).to_le_bytes());
    // The benchmark range (198.18.0.0/15): no one routes to it.
    let address = format!("198.18.{}.{}", index / 250, index % 250 + 1);
    RegisterRequest {
        token: join_token.to_string(),
        node_id,
        hostname: format!("sim-{index:05}"),
        wg_public_key: overlay.then(|| base64::engine::general_purpose::STANDARD.encode(key)),
        wg_endpoint: overlay.then(|| format!("{address}:51820")),
        address,
        labels: BTreeMap::from([("hoist-sim".to_string(), "1".to_string())]),
        capacity: NodeResources {
            cpu_millis: 64_000,
            memory_bytes: 256 << 30,
        },
        agent_version: format!("hoist-sim {}", env!("CARGO_PKG_VERSION")),
        csr: None,
    }
}

impl Node {
    /// Makes node `index`'s client (its key goes to `dir`) and registers it, retrying with
    /// backoff until `deadline`.
    pub async fn join(
        index: usize,
        dir: PathBuf,
        config: Arc<NodeConfig>,
        view: Arc<NodeView>,
        counters: Arc<Counters>,
        deadline: Instant,
    ) -> anyhow::Result<Node> {
        std::fs::create_dir_all(&dir)?;
        let mut client = ControllerClient::new(config.addrs.clone(), &config.join_token, &dir)?;
        if config.http1 {
            client = client.http1_only()?;
        }
        let mut node = Node {
            index,
            config,
            client: Arc::new(client),
            id: String::new(),
            term: 0,
            heartbeat: Duration::from_secs(1),
            tasks: HashMap::new(),
            due: Vec::new(),
            view,
            counters,
        };
        let mut attempt = 0;
        loop {
            match node.register().await {
                Ok(()) => break,
                Err(e) if Instant::now() + backoff(attempt) < deadline => {
                    tracing::debug!(node = index, "register: {e}");
                    tokio::time::sleep(backoff(attempt)).await;
                    attempt += 1;
                }
                Err(e) => return Err(e.into()),
            }
        }
        node.view.registered.store(true, Ordering::SeqCst);
        Ok(node)
    }

    async fn register(&mut self) -> Result<(), ClientError> {
        let id = (!self.id.is_empty()).then(|| self.id.clone());
        let req = register_request(self.index, &self.config.join_token, id, self.config.overlay);
        match self.client.register(&req).await {
            Ok(r) => {
                self.id = r.node_id;
                self.term = self.term.max(r.term);
                self.heartbeat = Duration::from_millis(r.heartbeat_interval_ms.max(50));
                Ok(())
            }
            Err(e) => {
                Counters::add(&self.counters.register_errors, 1);
                Err(e)
            }
        }
    }

    /// Registers again after the controller forgot the node; counts it.
    async fn reregister(&mut self) {
        Counters::add(&self.counters.reregistrations, 1);
        let mut attempt = 0;
        while self.register().await.is_err() && !self.view.killed.load(Ordering::SeqCst) {
            tokio::time::sleep(backoff(attempt)).await;
            attempt += 1;
        }
    }

    fn poll(
        &self,
        index: u64,
        overlay_index: u64,
        specs: Option<HeldSpecs>,
        tasks_term: Option<u64>,
        delay: Duration,
    ) -> Poll {
        let (client, id) = (self.client.clone(), self.id.clone());
        let (view, epoch) = (self.view.clone(), self.config.epoch);
        Box::pin(async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let sent = epoch.elapsed().as_millis() as u64 + 1;
            view.poll_sent_ms.store(sent, Ordering::Relaxed);
            let r = client
                .assignments(
                    &id,
                    index,
                    overlay_index,
                    specs.as_ref(),
                    tasks_term,
                    POLL_WAIT,
                )
                .await;
            view.poll_sent_ms.store(0, Ordering::Relaxed);
            r
        })
    }

    /// The node's life until it is killed.
    pub async fn run(mut self) {
        let mut beat = tokio::time::interval(self.heartbeat);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let (mut index, mut overlay_index) = (0u64, 0u64);
        // The specs of the answer taken last, named as the agent names them (a simulated node
        // keeps only which ones: it runs nothing).
        let mut specs: Option<HeldSpecs> = None;
        // The term of the answer whose tasks the node holds, named as the agent names it.
        let mut tasks_term: Option<u64> = None;
        let mut failures = 0u32;
        let mut poll = self.poll(index, overlay_index, None, None, Duration::ZERO);
        let mut polled_at = Instant::now();
        let view = self.view.clone();
        // Dropped, so aborted, when the node ends.
        let _watches = self.config.watches.then(|| self.watch());
        loop {
            if view.killed.load(Ordering::SeqCst) {
                return;
            }
            let next_due = self.due.iter().map(|d| d.at).min();
            tokio::select! {
                _ = view.kill.notified() => return,
                _ = beat.tick() => {
                    self.beat().await;
                    if beat.period() != self.heartbeat {
                        beat = tokio::time::interval_at(
                            tokio::time::Instant::now() + self.heartbeat,
                            self.heartbeat,
                        );
                        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    }
                }
                r = &mut poll => {
                    let delay = match r {
                        Ok(a) => {
                            failures = 0;
                            let since = self.config.epoch.elapsed().as_millis() as u64 + 1;
                            view.last_poll_ok_ms.store(since, Ordering::Relaxed);
                            let same = a.index == index;
                            let left_out = a.tasks.iter().filter(|t| t.spec_held).count() as u64;
                            Counters::add(&self.counters.specs_left_out, left_out);
                            Counters::add(&self.counters.specs_sent, a.tasks.len() as u64 - left_out);
                            Counters::add(&self.counters.tasks_sent, a.tasks.len() as u64);
                            Counters::add(&self.counters.tasks_unchanged, a.unchanged.len() as u64);
                            let delay = if a.term < self.term {
                                Duration::from_millis(200) // a deposed leader's answer
                            } else if !holds_left_out(specs.as_ref(), &a) {
                                // As the agent does: ask for the whole answer.
                                Counters::add(&self.counters.spec_errors, 1);
                                (index, specs, tasks_term) = (0, None, None);
                                Duration::ZERO
                            } else if !self.holds_unchanged(&a) {
                                Counters::add(&self.counters.task_errors, 1);
                                (index, specs, tasks_term) = (0, None, None);
                                Duration::ZERO
                            } else {
                                index = a.index;
                                // Named from the first overlay on, as the agent does (which
                                // also merges the changed peers; a simulated node keeps none).
                                let holds = a.overlay.is_some() || overlay_index != 0;
                                if holds && !self.config.full_overlay {
                                    overlay_index = a.overlay_index;
                                }
                                let term = a.term;
                                self.assigned(a);
                                // What the node holds now: every task of the answer, merged.
                                if !self.config.full_specs {
                                    let versions = self.tasks.values();
                                    let versions =
                                        versions.map(|t| (t.service.clone(), t.version));
                                    specs = Some(HeldSpecs::from_versions(term, versions));
                                }
                                if !self.config.full_tasks {
                                    tasks_term = Some(term);
                                }
                                Duration::ZERO
                            };
                            // A controller that does not block: do not spin.
                            if same && polled_at.elapsed() < Duration::from_millis(100) {
                                Duration::from_millis(500)
                            } else {
                                delay
                            }
                        }
                        Err(e) => {
                            Counters::add(&self.counters.poll_errors, 1);
                            failures += 1;
                            if e.is_unknown_node() {
                                self.reregister().await;
                                (index, overlay_index, specs, tasks_term) = (0, 0, None, None);
                            }
                            backoff(failures)
                        }
                    };
                    polled_at = Instant::now() + delay;
                    poll = self.poll(index, overlay_index, specs.clone(), tasks_term, delay);
                }
                _ = sleep_until_opt(next_due) => self.report_due().await,
            }
        }
    }

    /// The endpoints and sessions long polls, each in a loop of its own as the agent's are:
    /// answers are taken (the endpoints' index named in the next poll, at the pace the leader
    /// asks) and nothing is done with them: the agent would merge an answer of changes into
    /// the table it holds, which the simulator does not keep (2,000 tables of 60,000 replicas
    /// would not fit). Stopped when the set is dropped.
    fn watch(&self) -> tokio::task::JoinSet<()> {
        let mut set = tokio::task::JoinSet::new();
        let (client, counters) = (self.client.clone(), self.counters.clone());
        set.spawn(async move {
            let (mut index, mut failures) = (0u64, 0u32);
            loop {
                let asked = Instant::now();
                match client.endpoints(index, POLL_WAIT).await {
                    Ok(e) => {
                        failures = 0;
                        let pace = Duration::from_millis(e.pace_ms).min(POLL_WAIT);
                        tokio::time::sleep(pace).await;
                        // A controller that does not block: do not spin.
                        if e.index == index && asked.elapsed() < Duration::from_millis(100) {
                            tokio::time::sleep(Duration::from_millis(500)).await;
                        }
                        index = e.index;
                    }
                    Err(_) => {
                        Counters::add(&counters.watch_errors, 1);
                        failures += 1;
                        tokio::time::sleep(backoff(failures)).await;
                    }
                }
            }
        });
        let (client, counters, id) = (self.client.clone(), self.counters.clone(), self.id.clone());
        set.spawn(async move {
            let mut failures = 0u32;
            loop {
                let asked = Instant::now();
                match client.sessions(&id, POLL_WAIT).await {
                    Ok(_) if asked.elapsed() < Duration::from_millis(100) => {
                        failures = 0;
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                    Ok(_) => failures = 0,
                    Err(_) => {
                        Counters::add(&counters.watch_errors, 1);
                        failures += 1;
                        tokio::time::sleep(backoff(failures)).await;
                    }
                }
            }
        });
        set
    }

    async fn beat(&mut self) {
        let hb = Heartbeat {
            node_id: self.id.clone(),
            term_seen: self.term,
            endpoints_applied: 0,
        };
        match self.client.heartbeat(&hb).await {
            Ok(ack) if !ack.known => self.reregister().await,
            Ok(ack) => {
                self.term = self.term.max(ack.term);
                // As the agent: the leader spreads heartbeats as the cluster grows.
                if ack.heartbeat_interval_ms > 0 {
                    self.heartbeat = Duration::from_millis(ack.heartbeat_interval_ms.max(50));
                }
            }
            Err(e) => {
                Counters::add(&self.counters.heartbeat_errors, 1);
                if e.is_unknown_node() {
                    self.reregister().await;
                }
            }
        }
    }

    /// Whether every task `a` names as unchanged is one this node holds (what the agent checks
    /// as it merges the answer).
    fn holds_unchanged(&self, a: &Assignments) -> bool {
        a.unchanged.iter().all(|id| self.tasks.contains_key(id))
    }

    /// Takes a new list of assignments: starts what is new, stops what is told to stop, forgets
    /// what is gone (named neither in full nor as unchanged).
    fn assigned(&mut self, a: Assignments) {
        self.term = self.term.max(a.term);
        let listed = a.tasks.iter().map(|t| t.task_id.as_str());
        let listed: HashSet<&str> = listed
            .chain(a.unchanged.iter().map(String::as_str))
            .collect();
        let gone: Vec<String> = self
            .tasks
            .keys()
            .filter(|id| !listed.contains(id.as_str()))
            .cloned()
            .collect();
        for id in gone {
            if let Some(info) = self.tasks.remove(&id) {
                if info.local == Local::Running {
                    self.view.running.fetch_sub(1, Ordering::Relaxed);
                    self.view.count_version(&info.service, info.version, false);
                }
            }
        }
        let now = Instant::now();
        for t in &a.tasks {
            // A scale makes a new version of the running tasks under the same ids.
            if let Some(info) = self.tasks.get_mut(&t.task_id) {
                if info.version != t.service_version {
                    if info.local == Local::Running {
                        self.view.count_version(&info.service, info.version, false);
                        self.view
                            .count_version(&info.service, t.service_version, true);
                    }
                    info.version = t.service_version;
                }
            }
            let local = self.tasks.get(&t.task_id).map(|i| i.local);
            let info = |local| TaskInfo {
                local,
                slot: t.slot,
                service: t.service.clone(),
                version: t.service_version,
            };
            match (t.desired, local) {
                (TaskState::Running, None) => {
                    let (lo, hi) = self.config.start_ms;
                    let delay = stats::start_delay_ms(&t.task_id, lo, hi);
                    let state = if stats::fails(&t.task_id, self.config.fail_percent) {
                        TaskState::Failed
                    } else {
                        TaskState::Running
                    };
                    self.config.trace.seen(&t.service, now);
                    self.tasks.insert(t.task_id.clone(), info(Local::Starting));
                    self.due.push(Due {
                        at: now + Duration::from_millis(delay),
                        task_id: t.task_id.clone(),
                        state,
                    });
                }
                (TaskState::Shutdown, l)
                    if l != Some(Local::Stopping) && l != Some(Local::Stopped) =>
                {
                    if l == Some(Local::Running) {
                        self.view.running.fetch_sub(1, Ordering::Relaxed);
                        self.view
                            .count_version(&t.service, t.service_version, false);
                    }
                    self.tasks.insert(t.task_id.clone(), info(Local::Stopping));
                    self.due.push(Due {
                        at: now,
                        task_id: t.task_id.clone(),
                        state: TaskState::Shutdown,
                    });
                }
                _ => {}
            }
        }
    }

    /// Sends every report that is due, in one batch; on failure they are due again later.
    async fn report_due(&mut self) {
        let now = Instant::now();
        let (ready, later): (Vec<Due>, Vec<Due>) = std::mem::take(&mut self.due)
            .into_iter()
            .partition(|d| d.at <= now);
        self.due = later;
        let ready: Vec<Due> = ready
            .into_iter()
            .filter(|d| {
                let want = if d.state == TaskState::Shutdown {
                    Local::Stopping
                } else {
                    Local::Starting
                };
                self.tasks.get(&d.task_id).is_some_and(|i| i.local == want)
            })
            .collect();
        if ready.is_empty() {
            return;
        }
        let report = StatusReport {
            node_id: self.id.clone(),
            term_seen: self.term,
            tasks: ready.iter().map(|d| self.status_of(d)).collect(),
        };
        match self.client.status(&report).await {
            Ok(ack) => {
                self.term = self.term.max(ack.term);
                Counters::add(&self.counters.status_batches, 1);
                for d in ready {
                    self.reported(&d);
                }
            }
            Err(e) => {
                Counters::add(&self.counters.status_errors, 1);
                if e.is_unknown_node() {
                    self.reregister().await;
                }
                let again = Instant::now() + Duration::from_millis(500);
                self.due
                    .extend(ready.into_iter().map(|d| Due { at: again, ..d }));
            }
        }
    }

    fn status_of(&self, d: &Due) -> TaskStatus {
        let slot = self.tasks.get(&d.task_id).map_or(0, |i| i.slot);
        TaskStatus {
            task_id: d.task_id.clone(),
            state: d.state,
            health: Health::None,
            container_id: Some(format!("sim-{}", d.task_id)),
            address: Some(format!("100.64.{}.{}", self.index % 250, slot % 250 + 2)),
            exit_code: (d.state == TaskState::Failed).then_some(1),
            message: if d.state == TaskState::Failed {
                "hoist-sim: simulated failure".into()
            } else {
                String::new()
            },
            restarts: 0,
        }
    }

    /// A report of `d` was acknowledged.
    fn reported(&mut self, d: &Due) {
        let Some(entry) = self.tasks.get_mut(&d.task_id) else {
            return;
        };
        let (local, counter) = match d.state {
            TaskState::Running => {
                self.view.running.fetch_add(1, Ordering::Relaxed);
                self.view.count_version(&entry.service, entry.version, true);
                (Local::Running, &self.counters.reported_running)
            }
            TaskState::Failed => (Local::Failed, &self.counters.reported_failed),
            _ => (Local::Stopped, &self.counters.reported_shutdown),
        };
        entry.local = local;
        Counters::add(counter, 1);
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registrations_differ_per_node() {
        let a = register_request(1, "HOIST1-x-y", None, true);
        let b = register_request(251, "HOIST1-x-y", Some("n".into()), true);
        assert_ne!(a.hostname, b.hostname);
        assert_ne!(a.address, b.address);
        assert_eq!(b.node_id.as_deref(), Some("n"));
        assert_eq!(a.address, "198.18.0.2");
        assert_eq!(a.wg_endpoint.as_deref(), Some("198.18.0.2:51820"));
        assert_ne!(a.wg_public_key, b.wg_public_key);
        for r in [&a, &b] {
            let key = r.wg_public_key.as_deref().expect("a key");
            hoist_proto::overlay::check_public_key(key).expect("a WireGuard key");
        }
        let plain = register_request(1, "HOIST1-x-y", None, false);
        assert_eq!((plain.wg_public_key, plain.wg_endpoint), (None, None));
    }

    #[test]
    fn running_tasks_are_counted_by_version() {
        let v = NodeView::default();
        v.count_version("s", 1, true);
        v.count_version("s", 1, true);
        v.count_version("s", 2, true);
        assert_eq!(v.running_at_least("s", 1), 3);
        assert_eq!(v.running_at_least("s", 2), 1);
        v.count_version("s", 1, false);
        v.count_version("s", 1, false);
        v.count_version("s", 1, false);
        assert_eq!(v.running_at_least("s", 1), 1);
        assert_eq!(v.running_at_least("t", 1), 0);
    }

    #[test]
    fn a_trace_records_only_its_service_while_armed() {
        let t = Trace::default();
        t.seen("a", Instant::now());
        assert_eq!(t.count(), 0);
        t.arm("a");
        t.seen("a", Instant::now());
        t.seen("b", Instant::now());
        assert_eq!(t.count(), 1);
        assert_eq!(t.take().len(), 1);
        t.seen("a", Instant::now());
        assert_eq!(t.count(), 0);
    }
}
