//! `hoist-sim`: the controller at scale without the hosts. Thousands of simulated nodes in one
//! process speak the real agent protocol (the agent's own client, over real sockets, TLS with a
//! `HOIST2` join token) to a real 3-member controller cluster, which the simulator starts on
//! loopback unless given one. Nothing runs containers: a simulated node reports its tasks Running
//! after a short start time, fails a share of them, and can go silent.
//!
//! A run: the nodes join; services totalling `--tasks` replicas are applied; the simulator watches
//! the cluster fill from the agents' side and times the operator API meanwhile; then
//! `--kill-nodes` nodes go silent at once and it times until their replicas run elsewhere. Opt-in
//! phases follow (`phases.rs`): idle CPU, assignment latency, a rolling update, a member restart
//! and a leader kill. What it measured is printed as a table or JSON (`--json`); see
//! `bench/README.md` and `bench/sim.sh`.
//!
//! It never gives up on the first controller error: every request is retried with backoff and
//! counted, and a phase that does not finish within `--timeout` is reported as such.

mod api;
mod cluster;
mod node;
mod phases;
mod report;
mod stats;

use anyhow::{anyhow, Context, Result};
use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

use api::Api;
use cluster::{MemberSettings, OwnCluster};
use node::{Counters, Node, NodeConfig, NodeView, Trace};
use report::{Outcome, Report};

#[derive(Debug, Parser)]
#[command(
    version,
    about = "Simulates Hoist nodes against a controller cluster and measures it"
)]
struct Args {
    /// Simulated nodes to join.
    #[arg(long)]
    nodes: u64,
    /// Replicas in total, over --services services.
    #[arg(long)]
    tasks: u64,
    /// Controller addresses (HOST:PORT,...); without, the simulator starts its own 3 members.
    #[arg(long, value_delimiter = ',')]
    controller: Vec<String>,
    /// The join token (default: asked of the cluster with the admin token).
    #[arg(long)]
    token: Option<String>,
    /// An admin token of the cluster given with --controller.
    #[arg(long, env = "HOIST_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Services to spread the replicas over (default: enough for --max-per-service).
    #[arg(long)]
    services: Option<u64>,
    /// The most replicas of one service when --services is not given.
    #[arg(long, default_value_t = 1000)]
    max_per_service: u64,
    /// Share of tasks (percent) reported Failed instead of Running.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=100))]
    fail_percent: u8,
    /// Nodes that go silent at once after the fill.
    #[arg(long, default_value_t = 0)]
    kill_nodes: u64,
    /// Register the nodes without WireGuard keys, as agents on a `--subnet` of their own: the
    /// assignments answers then carry no overlay peers.
    #[arg(long)]
    no_overlay: bool,
    /// Poll without naming the overlay the node holds, as agents before the overlay index did:
    /// every answer carries every peer (to measure what the index saves).
    #[arg(long)]
    full_overlay: bool,
    /// Poll without naming the specs the node holds, as agents before `specs` did: every answer
    /// carries the spec of every task (to measure what leaving them out saves).
    #[arg(long)]
    full_specs: bool,
    /// Poll without naming the term of the answer whose tasks the node holds, as agents before
    /// `tasks_term` did: every answer lists every task in full (to measure what naming the
    /// unchanged ones saves).
    #[arg(long)]
    full_tasks: bool,
    /// Ask the members for HTTP/1.1 only, as agents before HTTP/2 did: one connection per
    /// request in flight instead of one per node (to measure what multiplexing saves).
    #[arg(long)]
    http1: bool,
    /// Also hold the endpoints and sessions long polls an agent holds beside its assignments
    /// poll (the service registry for its DNS, and `hoist exec` requests), each node on its
    /// own, as agents do.
    #[arg(long)]
    watches: bool,
    /// Apply specs the size of an operator's (command, env, ports, restart and update policies,
    /// labels: 374 bytes encoded) instead of the minimal ones (image, replicas, a label: 87).
    #[arg(long)]
    rich_specs: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Where the simulated nodes' keys go (default: a temp dir in /dev/shm, removed at exit).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// The hoist-controller to start (default: next to hoist-sim, else on PATH).
    #[arg(long)]
    controller_bin: Option<PathBuf>,
    /// `--node-grace` of the members the simulator starts.
    #[arg(long, default_value = "5s")]
    node_grace: String,
    /// `--heartbeat-interval` of the members the simulator starts.
    #[arg(long, default_value = "1s")]
    heartbeat_interval: String,
    /// `--snapshot-every` and `--keep-logs` of the members the simulator starts (`N,M`; empty:
    /// the controller's defaults). Small values make --add-member install a snapshot.
    #[arg(long, value_parser = parse_snapshots)]
    member_snapshots: Option<(u64, u64)>,
    /// `HOIST_LOG` of the members the simulator starts (their logs are in the cluster dir that
    /// --keep keeps).
    #[arg(long, default_value = "warn,openraft=error")]
    member_log: String,
    /// Registrations in flight at once.
    #[arg(long, default_value_t = 64)]
    join_concurrency: usize,
    /// Simulated container start time, `MIN_MS,MAX_MS`.
    #[arg(long, default_value = "50,500", value_parser = parse_range)]
    start_ms: (u64, u64),
    /// How long each phase (join, fill, reschedule) may take.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// How often the running count is sampled during the fill (ms).
    #[arg(long, default_value_t = 200)]
    sample_ms: u64,
    /// Keep the members' data dirs and logs (their path is printed).
    #[arg(long)]
    keep: bool,
    /// After the fill: measure the members' and the simulator's CPU for this many seconds with
    /// everything running and nothing written (0: skip).
    #[arg(long, default_value_t = 0)]
    idle_secs: u64,
    /// After the fill: scale the last service up by --assignment-replicas and time each new task
    /// from the scale's answer to its node's poll answer.
    #[arg(long)]
    assignment_latency: bool,
    /// Replicas added for --assignment-latency, and by --kill-leader after the failover.
    #[arg(long, default_value_t = 100)]
    assignment_replicas: u64,
    /// After the fill: a rolling update (new image and env) of the largest service, timed until
    /// all its replicas run the new version.
    #[arg(long)]
    update_service: bool,
    /// `update.parallelism` of --update-service (0: the whole service at once).
    #[arg(long, default_value_t = 0)]
    update_parallelism: u64,
    /// After the fill: stop a follower (SIGTERM), start it again 2 s later on its data dir, and
    /// time its catch-up (own cluster only).
    #[arg(long)]
    restart_member: bool,
    /// After the fill: a fourth member joins through the leader, timed until it is a voter and
    /// has caught up (snapshots installed, their size), as an operator adds one (own cluster
    /// only). It stays: a leader kill afterwards leaves three of four.
    #[arg(long)]
    add_member: bool,
    /// Last: kill the leader (SIGKILL), time until a write succeeds again, then an assignment
    /// change under the new leader as --assignment-latency does (own cluster only).
    #[arg(long)]
    kill_leader: bool,
}

/// `A,B` as two numbers; `names` says what they are, for the error.
fn parse_pair(s: &str, names: &str) -> Result<(u64, u64), String> {
    let (a, b) = s.split_once(',').ok_or_else(|| names.to_string())?;
    let n = |v: &str| v.trim().parse::<u64>().map_err(|e| format!("{v:?}: {e}"));
    Ok((n(a)?, n(b)?))
}

fn parse_snapshots(s: &str) -> Result<(u64, u64), String> {
    parse_pair(s, "SNAPSHOT_EVERY,KEEP_LOGS")
}

fn parse_range(s: &str) -> Result<(u64, u64), String> {
    let (a, b) = parse_pair(s, "MIN_MS,MAX_MS")?;
    (a <= b)
        .then_some((a, b))
        .ok_or_else(|| "MIN_MS must be ≤ MAX_MS".into())
}

fn main() -> ExitCode {
    let args = Args::parse();
    init_tracing();
    hoist_common::init_tls();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hoist-sim: {e}");
            return ExitCode::from(2);
        }
    };
    // The nodes' keys outlive the runtime: a node still running (re-registering, say) when the
    // run ends must not make its directory again after it was removed.
    let keys = match node_key_dir(args.data_dir.as_deref()) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("hoist-sim: the nodes' key dir: {e:#}");
            return ExitCode::from(2);
        }
    };
    let result = rt.block_on(async {
        tokio::select! {
            r = run(&args, keys.path()) => r,
            s = shutdown_signal() => Err(anyhow!("interrupted by {s}")),
        }
    });
    rt.shutdown_timeout(Duration::from_secs(1));
    drop(keys);
    match result {
        Ok(report) => {
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).unwrap_or_default()
                );
            } else {
                print!("{}", report.render());
            }
            if report.complete {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("hoist-sim: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Logs on stderr, `warn` unless `RUST_LOG` says otherwise (a line per node would drown a run).
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Ctrl-c or SIGTERM: the run future is dropped, and with it the members it started.
async fn shutdown_signal() -> &'static str {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "ctrl-c",
        _ = term.recv() => "SIGTERM",
    }
}

/// The simulated nodes of a run, as the samplers see them.
struct Fleet {
    views: Vec<Arc<NodeView>>,
}

impl Fleet {
    /// Tasks running on live nodes, by their own account.
    fn running(&self) -> u64 {
        self.views
            .iter()
            .filter(|v| !v.killed.load(Ordering::Relaxed))
            .map(|v| v.running.load(Ordering::Relaxed))
            .sum()
    }

    fn registered(&self) -> u64 {
        self.views
            .iter()
            .filter(|v| v.registered.load(Ordering::Relaxed))
            .count() as u64
    }

    /// Kills `m` live nodes that run tasks; answers how many tasks they ran.
    fn kill(&self, m: u64) -> (u64, u64) {
        let (mut nodes, mut tasks) = (0, 0);
        for v in &self.views {
            if nodes == m {
                break;
            }
            let running = v.running.load(Ordering::Relaxed);
            if running > 0 && !v.killed.load(Ordering::Relaxed) {
                v.killed.store(true, Ordering::SeqCst);
                v.kill.notify_one();
                nodes += 1;
                tasks += running;
            }
        }
        (nodes, tasks)
    }
}

async fn run(args: &Args, keys: &std::path::Path) -> Result<Report> {
    let mut report = Report::default();
    let settings = MemberSettings {
        node_grace: args.node_grace.clone(),
        heartbeat_interval: args.heartbeat_interval.clone(),
        snapshots: args.member_snapshots,
        log: args.member_log.clone(),
        parent: None,
        keep: args.keep,
    };
    let mut own = None;
    let (addrs, admin) = if args.controller.is_empty() {
        let bin = cluster::find_controller(args.controller_bin.as_deref())?;
        let c = OwnCluster::start(&bin, &settings).await?;
        let out = (c.addrs(), c.admin_token.clone());
        own = Some(c);
        out
    } else {
        let token = args
            .admin_token
            .clone()
            .context("--controller needs --admin-token (or HOIST_TOKEN)")?;
        (args.controller.clone(), token)
    };
    let result = measure(args, &mut report, own.as_mut(), addrs, &admin, keys).await;
    if let Some(c) = own.as_mut().filter(|_| settings.keep) {
        if let Some(dir) = c.keep() {
            eprintln!(
                "hoist-sim: members' data dirs and logs kept in {}",
                dir.display()
            );
        }
    }
    result.map(|()| report)
}

/// The phases of a run, filling `report` as they go.
async fn measure(
    args: &Args,
    report: &mut Report,
    mut own: Option<&mut OwnCluster>,
    addrs: Vec<String>,
    admin: &str,
    keys: &std::path::Path,
) -> Result<()> {
    let api = Api::new(addrs.clone(), admin)?;
    let join_token = match &args.token {
        Some(t) => t.clone(),
        None => api
            .join_token()
            .await
            .context("asking for the join token")?,
    };
    let counters = Arc::new(Counters::default());
    let fleet = Arc::new(Fleet {
        views: (0..args.nodes).map(|_| Arc::default()).collect(),
    });
    let trace = Arc::new(Trace::default());
    let epoch = Instant::now();
    let config = Arc::new(NodeConfig {
        addrs,
        join_token,
        fail_percent: args.fail_percent,
        start_ms: args.start_ms,
        epoch,
        trace: trace.clone(),
        overlay: !args.no_overlay,
        full_overlay: args.full_overlay,
        full_specs: args.full_specs,
        full_tasks: args.full_tasks,
        http1: args.http1,
        watches: args.watches,
    });
    join_nodes(args, report, &fleet, &config, &counters, keys).await;

    let members = own.as_deref().map(OwnCluster::pids).unwrap_or_default();
    let before: Vec<Option<(u64, u64)>> =
        members.iter().map(|(_, p)| cluster::rss_kib(*p)).collect();
    let connections: Vec<Option<u64>> = members
        .iter()
        .map(|(_, p)| cluster::tcp_connections(*p))
        .collect();

    // The fill is watched from the first apply on: a large apply overlaps the placements.
    let cpu_before = fill_cpu_ticks(&members);
    let t0 = Instant::now();
    let applied = Arc::new(AtomicU64::new(0));
    let sampler = ApiSampler::start(api.clone(), applied.clone());
    let ((samples, done), ()) = tokio::join!(
        sample_fill(args, &fleet, t0),
        apply_services(args, report, &api, &applied)
    );
    rate_fill(args, report, &samples, done);
    let cpu_after = fill_cpu_ticks(&members);
    report.api = sampler.stop().await;

    let leader = api.leader().await;
    memory(report, &members, &before, leader, args.tasks);
    for (m, n) in report.controllers.members.iter_mut().zip(connections) {
        m.connections_before_services = n;
    }
    fill_cpu(report, &cpu_before, &cpu_after);
    // A cluster given with --controller has its own settings, which no API answers.
    report.controllers.own = own.is_some();
    let ours = |v: &String| {
        if own.is_some() {
            v.clone()
        } else {
            "unknown".into()
        }
    };
    report.controllers.heartbeat_interval = ours(&args.heartbeat_interval);
    report.controllers.node_grace = ours(&args.node_grace);

    let mut ctx = phases::Ctx {
        args,
        api: &api,
        fleet: &fleet,
        trace: &trace,
        replicas: stats::split(args.tasks, args.services_count()),
        target: args.tasks,
        epoch,
    };
    let filled = report.tasks.all_running;
    let skip = || Outcome::failed("not run: the fill did not finish");
    let not_own = || Outcome::failed("not run: needs the simulator's own cluster");
    if args.idle_secs > 0 {
        if filled {
            // Scripts wait for this line to look at the members while the nodes stay connected.
            eprintln!(
                "hoist-sim: all running; idle for {} s with every node connected",
                args.idle_secs
            );
        }
        report.idle = Some(if filled {
            phases::idle(&ctx, own.as_deref_mut(), args.idle_secs).await
        } else {
            report::Idle {
                outcome: skip(),
                ..Default::default()
            }
        });
    }
    if args.kill_nodes > 0 && filled {
        report.kill = Some(kill(args, &fleet).await);
    }
    // The kill's replicas are back (or not: the phases below then wait for them in vain).
    if args.assignment_latency {
        let last = ctx.replicas.len().saturating_sub(1);
        report.assignment_latency = Some(if filled {
            phases::assignment_latency(&mut ctx, last, args.assignment_replicas).await
        } else {
            report::AssignmentLatency {
                outcome: skip(),
                ..Default::default()
            }
        });
    }
    if args.update_service {
        // Service 0 is the largest: the split gives the first ones the remainder.
        report.update = Some(if filled {
            phases::update(&ctx, 0, args.update_parallelism).await
        } else {
            report::Update {
                outcome: skip(),
                ..Default::default()
            }
        });
    }
    if args.restart_member {
        report.restart_member = Some(match own.as_deref_mut() {
            Some(c) if filled => phases::restart_member(&ctx, c).await,
            c => report::RestartMember {
                outcome: if c.is_some() { skip() } else { not_own() },
                ..Default::default()
            },
        });
    }
    if args.add_member {
        report.add_member = Some(match own.as_deref_mut() {
            Some(c) if filled => phases::add_member(&ctx, c).await,
            c => report::AddMember {
                outcome: if c.is_some() { skip() } else { not_own() },
                ..Default::default()
            },
        });
    }
    if args.kill_leader {
        report.kill_leader = Some(match own {
            Some(c) if filled => {
                let last = ctx.replicas.len().saturating_sub(1);
                phases::kill_leader(&mut ctx, c, last, args.assignment_replicas).await
            }
            c => report::KillLeader {
                outcome: if c.is_some() { skip() } else { not_own() },
                ..Default::default()
            },
        });
    }
    count_errors(report, &counters);
    let ok = |o: Option<&Outcome>| o.is_none_or(|o| o.finished);
    report.complete = report.nodes.joined == args.nodes
        && report.tasks.all_running
        && report.kill.as_ref().is_none_or(|k| k.rescheduled)
        && (args.kill_nodes == 0 || report.kill.is_some())
        && ok(report.idle.as_ref().map(|p| &p.outcome))
        && ok(report.assignment_latency.as_ref().map(|p| &p.outcome))
        && ok(report.update.as_ref().map(|p| &p.outcome))
        && ok(report.restart_member.as_ref().map(|p| &p.outcome))
        && ok(report.add_member.as_ref().map(|p| &p.outcome))
        && ok(report.kill_leader.as_ref().map(|p| &p.outcome));
    Ok(())
}

impl Args {
    fn services_count(&self) -> u64 {
        self.services
            .unwrap_or_else(|| stats::services_for(self.tasks, self.max_per_service))
            .max(1)
    }
}

/// A temp dir for the nodes' keys: in `/dev/shm` when there is one (thousands of small files,
/// nothing worth a disk write), else the usual temp dir; or under `--data-dir`.
fn node_key_dir(given: Option<&std::path::Path>) -> Result<tempfile::TempDir> {
    let mut b = tempfile::Builder::new();
    b.prefix("hoist-sim-nodes.");
    let shm = std::path::Path::new("/dev/shm");
    Ok(match given {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            b.tempdir_in(d)?
        }
        None if shm.is_dir() => b.tempdir_in(shm)?,
        None => b.tempdir()?,
    })
}

/// Joins every node (at most `--join-concurrency` registrations in flight); each goes on with
/// its loop once registered.
async fn join_nodes(
    args: &Args,
    report: &mut Report,
    fleet: &Arc<Fleet>,
    config: &Arc<NodeConfig>,
    counters: &Arc<Counters>,
    keys: &std::path::Path,
) {
    let start = Instant::now();
    let deadline = start + args.timeout;
    let gate = Arc::new(tokio::sync::Semaphore::new(args.join_concurrency.max(1)));
    let failed = Arc::new(AtomicU64::new(0));
    for (i, view) in fleet.views.iter().enumerate() {
        let (gate, view, config, counters, failed) = (
            gate.clone(),
            view.clone(),
            config.clone(),
            counters.clone(),
            failed.clone(),
        );
        let dir = keys.join(format!("n{i}"));
        tokio::spawn(async move {
            let Ok(permit) = gate.acquire_owned().await else {
                return;
            };
            let joined = Node::join(i, dir, config, view, counters, deadline).await;
            drop(permit);
            match joined {
                Ok(node) => node.run().await,
                Err(e) => {
                    tracing::warn!(node = i, "did not join: {e:#}");
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    while fleet.registered() + failed.load(Ordering::Relaxed) < args.nodes
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    report.nodes.requested = args.nodes;
    report.nodes.joined = fleet.registered();
    report.nodes.join_seconds = start.elapsed().as_secs_f64();
    report.nodes.join_concurrency = args.join_concurrency as u64;
    report.nodes.tls = config
        .join_token
        .starts_with(hoist_proto::node::TOKEN_PREFIX_CA);
    report.errors.join_failed = args.nodes - report.nodes.joined;
}

/// Applies the services, each retried with backoff; counts them in `applied`.
async fn apply_services(args: &Args, report: &mut Report, api: &Api, applied: &AtomicU64) {
    let start = Instant::now();
    let services = args.services_count();
    for (i, replicas) in stats::split(args.tasks, services).into_iter().enumerate() {
        let name = api::service_name(i as u64);
        let spec = if args.rich_specs {
            api::rich_service_spec(&name, replicas)
        } else {
            api::service_spec(&name, replicas)
        };
        for attempt in 0..8 {
            match api.post_json("/v1/services", &spec).await {
                Ok(_) => {
                    applied.fetch_add(1, Ordering::SeqCst);
                    break;
                }
                Err(e) => {
                    report.errors.apply += 1;
                    tracing::warn!("applying {}: {e:#}", spec["name"]);
                    tokio::time::sleep(hoist_agent::worker::backoff(attempt)).await;
                }
            }
        }
    }
    report.tasks.requested = args.tasks;
    report.tasks.services = services;
    report.tasks.apply_seconds = start.elapsed().as_secs_f64();
    report.tasks.fail_percent = args.fail_percent;
}

/// Samples the running count from `t0` until every replica runs (or the timeout): the samples
/// `(seconds, running)` and when all ran.
async fn sample_fill(args: &Args, fleet: &Fleet, t0: Instant) -> (Vec<(f64, u64)>, Option<f64>) {
    let period = Duration::from_millis(args.sample_ms.max(10));
    let mut samples = vec![(0.0, fleet.running())];
    let mut done = None;
    while t0.elapsed() < args.timeout {
        tokio::time::sleep(period).await;
        let n = fleet.running();
        let t = t0.elapsed().as_secs_f64();
        samples.push((t, n));
        if n >= args.tasks {
            done = Some(t);
            break;
        }
    }
    (samples, done)
}

/// Rates the fill from its samples.
fn rate_fill(args: &Args, report: &mut Report, samples: &[(f64, u64)], done: Option<f64>) {
    let running = samples.last().map_or(0, |s| s.1);
    report.tasks.running = running;
    report.tasks.all_running = done.is_some();
    report.tasks.seconds_to_all_running = done;
    let p = &mut report.placements;
    p.per_second_overall = done.filter(|t| *t > 0.0).map(|t| args.tasks as f64 / t);
    p.per_second_by_decile = stats::decile_rates(samples, args.tasks);
    p.flatness = stats::flatness(&p.per_second_by_decile);
    p.sample_period_ms = args.sample_ms.max(10);
    p.samples = samples.len();
}

/// `--kill-nodes`: that many nodes go silent at once; times until their replicas run elsewhere.
async fn kill(args: &Args, fleet: &Fleet) -> report::Kill {
    let (nodes, tasks_on_them) = fleet.kill(args.kill_nodes);
    let start = Instant::now();
    let mut seconds = None;
    while start.elapsed() < args.timeout {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if fleet.running() >= args.tasks {
            seconds = Some(start.elapsed().as_secs_f64());
            break;
        }
    }
    report::Kill {
        nodes,
        tasks_on_them,
        rescheduled: seconds.is_some() && nodes == args.kill_nodes,
        seconds,
    }
}

/// The CPU time used so far by each member, then by the simulator itself (clock ticks).
fn fill_cpu_ticks(members: &[(u64, u32)]) -> Vec<Option<u64>> {
    let pids = members.iter().map(|(_, p)| *p);
    pids.chain([std::process::id()])
        .map(cluster::cpu_ticks)
        .collect()
}

/// Each member's and the simulator's CPU time over the fill, from the ticks before and after.
fn fill_cpu(report: &mut Report, before: &[Option<u64>], after: &[Option<u64>]) {
    let hz = cluster::ticks_per_second() as f64;
    let mut used = before.iter().zip(after).map(|(b, a)| match (b, a) {
        (Some(b), Some(a)) if a >= b => Some((a - b) as f64 / hz),
        _ => None,
    });
    for m in &mut report.controllers.members {
        m.cpu_seconds_fill = used.next().flatten();
    }
    report.controllers.simulator_cpu_seconds_fill = used.next().flatten();
}

/// The members' RSS before the services and after the fill, and what that is per task.
fn memory(
    report: &mut Report,
    members: &[(u64, u32)],
    before: &[Option<(u64, u64)>],
    leader: Option<u64>,
    tasks: u64,
) {
    let mut growth = Vec::new();
    for ((id, pid), before) in members.iter().zip(before) {
        let after = cluster::rss_kib(*pid);
        let m = report::Member {
            id: *id,
            pid: *pid,
            leader: leader == Some(*id),
            rss_kib_before_services: before.map(|b| b.0),
            connections_before_services: None,
            rss_kib_after_fill: after.map(|a| a.0),
            peak_rss_kib: after.map(|a| a.1),
            cpu_seconds_fill: None,
        };
        if let (Some(b), Some(a)) = (m.rss_kib_before_services, m.rss_kib_after_fill) {
            let per_task = (a as f64 - b as f64) * 1024.0 / tasks.max(1) as f64;
            growth.push(per_task);
            if m.leader {
                report.controllers.leader_rss_bytes_per_task = Some(per_task);
            }
        }
        report.controllers.members.push(m);
    }
    if !growth.is_empty() {
        report.controllers.mean_rss_bytes_per_task =
            Some(growth.iter().sum::<f64>() / growth.len() as f64);
    }
}

fn count_errors(report: &mut Report, c: &Counters) {
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let e = &mut report.errors;
    e.register = get(&c.register_errors);
    e.heartbeat = get(&c.heartbeat_errors);
    e.poll = get(&c.poll_errors);
    e.status = get(&c.status_errors);
    e.reregistrations = get(&c.reregistrations);
    e.status_batches = get(&c.status_batches);
    e.specs = get(&c.spec_errors);
    e.tasks_unheld = get(&c.task_errors);
    e.watches = get(&c.watch_errors);
    report.specs.sent = get(&c.specs_sent);
    report.specs.left_out = get(&c.specs_left_out);
    report.task_entries.sent = get(&c.tasks_sent);
    report.task_entries.unchanged = get(&c.tasks_unchanged);
    report.tasks.reported_failed = get(&c.reported_failed);
}

/// Latencies of one request, in ms, and its failures.
#[derive(Debug, Default)]
struct Timings {
    ms: Vec<f64>,
    errors: u64,
}

impl Timings {
    fn record(&mut self, r: Result<Duration>) {
        match r {
            Ok(d) => self.ms.push(d.as_secs_f64() * 1000.0),
            Err(e) => {
                tracing::debug!("API sample: {e:#}");
                self.errors += 1;
            }
        }
    }
}

/// An operator during the fill: `node ls` and `service ps` (of each service applied so far, in
/// turn), one request at a time, every 100 ms.
struct ApiSampler {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
    timings: Arc<Mutex<ApiTimings>>,
}

/// What [`ApiSampler`] measured, by request.
#[derive(Default)]
struct ApiTimings {
    node_ls: Timings,
    service_ps: Timings,
    cluster_status: Timings,
}

impl ApiSampler {
    fn start(api: Api, applied: Arc<AtomicU64>) -> ApiSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let timings = Arc::new(Mutex::new(ApiTimings::default()));
        let (s, t) = (stop.clone(), timings.clone());
        let task = tokio::spawn(async move {
            let mut i = 0u64;
            while !s.load(Ordering::SeqCst) {
                let nodes = api.timed_get("/v1/nodes").await;
                t.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .node_ls
                    .record(nodes);
                let services = applied.load(Ordering::SeqCst);
                if services > 0 {
                    let path = format!("/v1/services/{}/ps", api::service_name(i % services));
                    let ps = api.timed_get(&path).await;
                    t.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .service_ps
                        .record(ps);
                }
                let status = api.timed_get("/v1/cluster/status").await;
                t.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .cluster_status
                    .record(status);
                i += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        ApiSampler {
            stop,
            task,
            timings,
        }
    }

    async fn stop(self) -> report::ApiLatency {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.task.await;
        let t = std::mem::take(&mut *self.timings.lock().unwrap_or_else(|e| e.into_inner()));
        let of = |path, t: Timings| report::Latency::of(path, &t.ms, t.errors);
        report::ApiLatency {
            node_ls: of("/v1/nodes", t.node_ls),
            service_ps: of("/v1/services/{name}/ps", t.service_ps),
            cluster_status: of("/v1/cluster/status", t.cluster_status),
        }
    }
}
