//! `hoist-controller`: one member of Hoist's Raft-replicated control plane.

use anyhow::Context;
use clap::Parser;
use hoist_controller::leader::LeaderSettings;
use hoist_controller::member::{self, MemberOptions, StartMode};
use hoist_controller::raft::RaftSettings;
use std::path::PathBuf;
use std::time::Duration;

/// A member of a Hoist controller cluster.
#[derive(Debug, Parser)]
#[command(name = "hoist-controller", version)]
struct Args {
    /// Where the Raft log, vote and snapshots live.
    #[arg(long)]
    data_dir: PathBuf,
    /// `HOST:PORT` serving the API and Raft RPCs.
    #[arg(long)]
    listen: String,
    /// The address others reach this member at (default: --listen).
    #[arg(long)]
    advertise: Option<String>,
    /// Start a new cluster with this member as its only voter.
    #[arg(long, conflicts_with = "join")]
    bootstrap: bool,
    /// Join the cluster through a member at ADDR (comma-separated list tried in turn).
    #[arg(long, value_delimiter = ',')]
    join: Vec<String>,
    /// For --join: the manager join token (`hoist cluster token --role manager`: the member
    /// checks the cluster by the root's digest in it before it sends anything), or an admin's
    /// operator token.
    #[arg(long, env = "HOIST_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// With --bootstrap: start the cluster with autolock on (Swarm's option). The unlock key is
    /// printed once on standard output and never written to disk; every member needs it after
    /// a restart (`hoist cluster unlock`) before it opens secrets again.
    #[arg(long, requires = "bootstrap")]
    autolock: bool,
    /// Join as a non-voting learner.
    #[arg(long)]
    learner: bool,
    /// Recover from a lost quorum: make this member the only voter of the cluster in --data-dir,
    /// keeping all its state (also what the lost majority may not have committed). Only when
    /// the other members are gone for good; add members back with --join from empty data dirs.
    /// See deploy/upgrade.md.
    #[arg(long, conflicts_with_all = ["join", "bootstrap"])]
    force_new_cluster: bool,
    /// Member id of a new member (default: random).
    #[arg(long)]
    id: Option<u64>,
    #[arg(long, default_value_t = 50)]
    heartbeat_ms: u64,
    #[arg(long, default_value_t = 150)]
    election_min_ms: u64,
    #[arg(long, default_value_t = 200)]
    election_max_ms: u64,
    /// Snapshot (and compact the log) every N applied entries.
    #[arg(long, default_value_t = 10_000)]
    snapshot_every: u64,
    /// Log entries kept behind a snapshot for slow followers.
    #[arg(long, default_value_t = 1_000)]
    keep_logs: u64,
    /// Writes and linearizable reads not done by then answer 503.
    #[arg(long, default_value_t = 3_000)]
    op_timeout_ms: u64,
    /// A node silent for this long is marked down and its replicas move (`15s`, `500ms`).
    #[arg(long, default_value = "15s", value_parser = duration)]
    node_grace: Duration,
    /// How often agents heartbeat, at least (told to them when they register and in every
    /// heartbeat's answer).
    #[arg(long, default_value = "1s", value_parser = duration)]
    heartbeat_interval: Duration,
    /// The most heartbeats per second the leader asks of all nodes together: past
    /// N × --heartbeat-interval nodes, each heartbeats less often (and the node grace grows to
    /// three intervals). 0: no limit.
    #[arg(long, default_value_t = 500, value_name = "N")]
    max_heartbeats_per_second: u32,
    /// The overlay's address range: every node gets a subnet of it for its containers (set once,
    /// when the cluster first runs at format 2; later values are ignored).
    #[arg(long, default_value = hoist_proto::overlay::DEFAULT_CLUSTER_CIDR, value_name = "CIDR")]
    cluster_cidr: String,
    /// The prefix length of each node's subnet of the cluster CIDR.
    #[arg(long, default_value_t = hoist_proto::overlay::DEFAULT_SUBNET_PREFIX, value_name = "LEN")]
    node_subnet_prefix: u32,
    /// Where services' stable virtual IPs come from (one per service with endpoint_mode =
    /// "vip"); must not overlap the cluster CIDR. Set once, like the cluster CIDR.
    #[arg(long, default_value = hoist_proto::overlay::DEFAULT_VIP_CIDR, value_name = "CIDR")]
    vip_cidr: String,
    /// Stop replicas without draining them first (no barrier, no drain period): only to show
    /// the requests an update loses without it. Never in production.
    #[arg(long, hide = true)]
    unsafe_no_drain: bool,
    /// Members call each other over plain HTTP and take plain Raft RPCs even with certificates:
    /// only to measure what mutual TLS costs (bench/controller). Never in production.
    #[arg(long, hide = true)]
    unsafe_plain_peers: bool,
    /// The Prometheus the leader asks for services' autoscaling queries (`[autoscale] query`),
    /// e.g. `http://127.0.0.1:9090`. Without it such services record that nothing can be asked.
    #[arg(long, value_name = "URL")]
    prometheus: Option<String>,
    /// The highest `[autoscale] max` a service may set: a bound above it is refused at apply.
    #[arg(long, default_value_t = 1000, value_name = "N")]
    autoscale_max_replicas: i64,
    /// A connection must send a request's headers within this long of opening or of its
    /// previous answer; idle connections are closed after it too.
    #[arg(long, default_value = "30s", value_parser = duration)]
    header_read_timeout: Duration,
    /// How long the certificates this member signs live: nodes' (renewed by their agents at a
    /// random point between half and four fifths of it) and its own (`24h`, `10m`).
    #[arg(long, default_value = "24h", value_parser = duration)]
    cert_lifetime: Duration,
    /// Connections served at once on the listener; more wait until one closes.
    #[arg(long, default_value_t = hoist_transport::server::MAX_CONNECTIONS, value_name = "N")]
    max_connections: usize,
}

fn duration(text: &str) -> Result<Duration, String> {
    hoist_proto::quantity::parse_duration_ms(text)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("{text:?} is not a duration (e.g. 15s, 500ms)"))
}

/// mimalloc rather than glibc's allocator: under write load the API and Raft paths allocate and
/// free many small buffers on every request, and glibc's malloc/free took about a third of the
/// member's own CPU in a profile of 64 concurrent writers. The `system-allocator` feature keeps
/// glibc's, for heap profilers that hook malloc (heaptrack: `bench/heap-profile.sh`).
///
/// Transparent huge pages are turned off for the process (`PR_SET_THP_DISABLE`, first thing in
/// `main`; `HOIST_HUGE_PAGES=1` leaves them as the host has them). mimalloc asks for them on its
/// arenas (`MADV_HUGEPAGE`), and a 2 MiB page stays resident while one object in it lives: at
/// 1,000 nodes and 100,000 tasks, a leader held 299–308 MiB after the fill with them and 236–245
/// MiB without, its followers 149–159 and 117–125 MiB, with no change in write rate
/// (`bench/results/thp-2026-12-07.md`).
#[cfg(not(feature = "system-allocator"))]
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    // Before the heap grows: the flag holds for every page faulted in from here on.
    let small_pages = if std::env::var_os("HOIST_HUGE_PAGES").is_some_and(|v| v == "1") {
        Ok(())
    } else {
        nix::sys::prctl::set_thp_disable(true)
    };
    let args = Args::parse();
    if args.cert_lifetime < Duration::from_secs(10) {
        anyhow::bail!(
            "--cert-lifetime {:?} is too short: at least 10s",
            args.cert_lifetime
        );
    }
    if let Err(e) = hoist_proto::overlay::parse_plan(&args.cluster_cidr, args.node_subnet_prefix) {
        anyhow::bail!("--cluster-cidr / --node-subnet-prefix: {e}");
    }
    let vips: ipnet::Ipv4Net = args
        .vip_cidr
        .trim()
        .parse()
        .map_err(|e| anyhow::anyhow!("--vip-cidr {:?}: {e}", args.vip_cidr))?;
    let cluster: ipnet::Ipv4Net = args.cluster_cidr.trim().parse()?;
    if vips.contains(&cluster.network()) || cluster.contains(&vips.network()) {
        anyhow::bail!("--vip-cidr {vips} overlaps --cluster-cidr {cluster}: virtual IPs must not be container addresses");
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HOIST_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = small_pages {
        tracing::warn!("could not turn transparent huge pages off for this process: {e}");
    }
    let mode = if args.bootstrap {
        StartMode::Bootstrap
    } else if !args.join.is_empty() {
        StartMode::Join {
            seeds: args.join.clone(),
            token: args.token.clone(),
        }
    } else {
        StartMode::Resume
    };
    let opts = MemberOptions {
        data_dir: args.data_dir,
        listen: args.listen,
        autolock: args.autolock,
        limits: hoist_transport::Limits {
            header_read_timeout: args.header_read_timeout,
            max_connections: args.max_connections,
        },
        advertise: args.advertise,
        id: args.id,
        mode,
        learner: args.learner,
        leader: LeaderSettings {
            grace: args.node_grace,
            heartbeat_interval: args.heartbeat_interval,
            max_heartbeats_per_second: args.max_heartbeats_per_second,
            network: hoist_proto::cluster::ClusterNetwork {
                cidr: args.cluster_cidr.trim().to_string(),
                subnet_prefix: args.node_subnet_prefix,
                vip_cidr: Some(vips.trunc().to_string()),
            },
            drain_barrier: !args.unsafe_no_drain,
            prometheus: args.prometheus.clone(),
            autoscale_max_replicas: args.autoscale_max_replicas,
            ..LeaderSettings::default()
        },
        cert_lifetime: args.cert_lifetime,
        plain_peers: args.unsafe_plain_peers,
        settings: RaftSettings {
            heartbeat_ms: args.heartbeat_ms,
            election_min_ms: args.election_min_ms,
            election_max_ms: args.election_max_ms,
            snapshot_every: args.snapshot_every,
            keep_logs: args.keep_logs,
            op_timeout: Duration::from_millis(args.op_timeout_ms),
            force_new_cluster: args.force_new_cluster,
        },
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    rt.block_on(async {
        let shutdown = async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("signal handler");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        };
        member::run(opts, shutdown)
            .await
            .context("controller member")
    })
}
