//! `hoist-agent`: the node agent daemon, and (as hidden subcommands chosen before any runtime
//! starts, so they are single-threaded) the per-container supervisor and the exec helper.

use anyhow::Context;
use clap::Parser;
use hoist_agent::config::AgentConfig;
use hoist_agent::containers::{Deps, Manager, Shim};
use hoist_agent::image::ImageStore;
use hoist_agent::network::{Network, NetworkConfig};
use hoist_agent::runtime::cgroup::CgroupDriver;
use hoist_agent::worker::JoinConfig;
use std::path::PathBuf;
use std::sync::Arc;

/// Hoist's node agent: runs containers on this host and serves the local API on a unix socket.
#[derive(Debug, Parser)]
#[command(name = "hoist-agent", version, about, long_about = None)]
struct Args {
    /// Where images, containers and network state are kept.
    #[arg(long, env = "HOIST_DATA_DIR", default_value = "/var/lib/hoist")]
    data_dir: PathBuf,
    /// The local API socket (`hoist --agent PATH` talks to it).
    #[arg(long, env = "HOIST_AGENT", default_value = "/run/hoist/agent.sock")]
    socket: PathBuf,
    /// The bridge containers attach to.
    #[arg(long, default_value = "hoist0")]
    bridge: String,
    /// The subnet container addresses come from; the bridge takes its first address. Default
    /// 10.89.0.0/24 for a standalone agent; a cluster node (`--join`) without it gets a subnet of
    /// the cluster CIDR from the controller and joins the WireGuard overlay.
    #[arg(long)]
    subnet: Option<String>,
    /// The overlay's WireGuard port on this host (UDP); peers reach it on the advertise address.
    #[arg(long, default_value_t = hoist_proto::overlay::DEFAULT_WG_PORT)]
    wg_port: u16,
    /// The overlay's WireGuard interface (its UAPI socket is /var/run/wireguard/NAME.sock, so
    /// `wg show NAME` works).
    #[arg(long, default_value = "hoist-wg0")]
    wg_interface: String,
    /// Where the cluster DNS sends names that are not the cluster's: `host` (the nameservers of
    /// /etc/resolv.conf), `none` (answer SERVFAIL), or `IP[:PORT]`, comma-separated.
    #[arg(long, default_value = "host", value_name = "host|none|IP[:PORT],...")]
    dns_upstream: String,
    /// Masquerade containers' outbound traffic (NAT to the host's address).
    #[arg(long)]
    masquerade: bool,
    /// Parent of this agent's container cgroups (one per agent when several share a host).
    #[arg(long, default_value = "hoist")]
    cgroup_parent: String,
    /// Rotate a container's log file when it exceeds this size (e.g. 10m).
    #[arg(long, default_value = "10m", value_parser = |s: &str| hoist_common::parse::parse_size(s))]
    log_max_size: u64,
    /// Join a cluster with this token (from `hoist cluster token`): register with the controllers,
    /// run the replicas they assign to this node, report their status. Without it the agent is
    /// standalone and only serves its local API.
    #[arg(
        long,
        env = "HOIST_JOIN_TOKEN",
        value_name = "TOKEN",
        requires = "controller"
    )]
    join: Option<String>,
    /// Controller members to register with, `HOST:PORT`, comma-separated; tried in turn.
    #[arg(
        long,
        env = "HOIST_CONTROLLER",
        value_name = "ADDR[,ADDR...]",
        value_delimiter = ','
    )]
    controller: Vec<String>,
    /// A node label for placement constraints (`--label zone=a`); repeatable.
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = parse_label)]
    labels: Vec<(String, String)>,
    /// The address other hosts reach this node on (default: the local address on the route to the
    /// first controller).
    #[arg(long, value_name = "IP")]
    advertise_addr: Option<String>,
    /// CPUs this node offers to replicas (default: the CPUs the agent may run on), e.g. 4 or 1.5.
    #[arg(long, value_parser = |s: &str| hoist_common::parse::parse_cpus(s))]
    cpus: Option<u64>,
    /// Memory this node offers to replicas (default: the host's), e.g. 2g.
    #[arg(long, value_parser = |s: &str| hoist_common::parse::parse_size(s))]
    memory: Option<u64>,
    /// Serve Prometheus metrics (`GET /metrics`: per-container CPU, memory, network, restarts,
    /// OOM kills, health probes; image pulls) on this TCP address, `IP:PORT`. The default is
    /// loopback on Docker's metrics port; `none` turns the listener off. Starting fails when
    /// the address is taken.
    #[arg(long, value_name = "IP:PORT|none", default_value = hoist_agent::metrics::DEFAULT_LISTEN)]
    metrics_listen: String,
    /// How containers' supervisors start: `fork` (from one forker process per agent, sharing
    /// the agent binary's relocated pages: ~750 KiB less memory per container and no exec per
    /// start) or `exec` (a new `hoist-agent __shim DIR` process each). Either way a supervisor
    /// is listed as `hoist-agent __shim DIR` and outlives the agent.
    #[arg(long, value_enum, default_value = "fork")]
    supervisor_start: hoist_agent::containers::StartMode,
    /// The host ids that `--userns` containers' ids map onto (container root is the first):
    /// FIRST:COUNT, or a user name whose range /etc/subuid and /etc/subgid give (as Docker's
    /// userns-remap). The default, 0x70000000 and up, is above the ranges useradd and
    /// systemd-nspawn hand out. Every such container shares the range, so volumes keep their
    /// owners between them.
    #[arg(
        long,
        value_name = "FIRST:COUNT|USER",
        default_value = "1879048192:65536"
    )]
    userns_range: String,
    /// A registry (`HOST[:PORT]`) to reach over plain HTTP instead of HTTPS; repeatable.
    /// Loopback registries (localhost, 127.0.0.0/8, [::1]) are always treated as insecure.
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]")]
    insecure_registry: Vec<String>,
}

/// `--userns-range`: `FIRST:COUNT`, or a user's range in `/etc/subuid` and `/etc/subgid` (which
/// must be the same: one range serves for uids and gids).
fn userns_range(flag: &str) -> anyhow::Result<hoist_agent::runtime::userns::IdRange> {
    use hoist_agent::runtime::userns::IdRange;
    if flag.contains(':') {
        return IdRange::parse(flag).map_err(|e| anyhow::anyhow!("--userns-range: {e}"));
    }
    let lookup = |file: &str| -> anyhow::Result<IdRange> {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("--userns-range: read {file}"))?;
        IdRange::from_subid(&text, flag)
            .ok_or_else(|| anyhow::anyhow!("--userns-range: {file} has no range for {flag:?}"))?
            .map_err(|e| anyhow::anyhow!("--userns-range: {file}: {flag}: {e}"))
    };
    let (uids, gids) = (lookup("/etc/subuid")?, lookup("/etc/subgid")?);
    if uids != gids {
        anyhow::bail!(
            "--userns-range: {flag}'s ranges differ ({}:{} in /etc/subuid, {}:{} in /etc/subgid); give FIRST:COUNT",
            uids.first, uids.count, gids.first, gids.count
        );
    }
    Ok(uids)
}

fn parse_label(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("{s:?} is not KEY=VALUE")),
    }
}

/// `--dns-upstream`: the resolvers names that are not the cluster's go to.
fn dns_upstreams(flag: &str) -> anyhow::Result<Vec<std::net::SocketAddr>> {
    let with_port = |a: &str| -> Option<std::net::SocketAddr> {
        a.parse()
            .ok()
            .or_else(|| a.parse::<std::net::IpAddr>().ok().map(|ip| (ip, 53).into()))
    };
    match flag.trim() {
        "none" => Ok(vec![]),
        "host" => Ok(std::fs::read_to_string("/etc/resolv.conf")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.strip_prefix("nameserver"))
            .filter_map(|a| with_port(a.trim()))
            .collect()),
        list => list
            .split(',')
            .map(|a| {
                with_port(a.trim())
                    .ok_or_else(|| anyhow::anyhow!("--dns-upstream: {a:?} is not IP[:PORT]"))
            })
            .collect(),
    }
}

fn main() -> anyhow::Result<()> {
    let argv: Vec<String> = std::env::args().collect();
    match argv.get(1).map(String::as_str) {
        Some("__shim") if argv.len() == 3 => hoist_agent::runtime::shim::main(argv[2].as_ref()),
        Some(hoist_agent::runtime::forker::ARG) if argv.len() == 3 => {
            hoist_agent::runtime::forker::main()
        }
        Some("__wg") if argv.len() == 3 => return hoist_agent::overlay::helper::main(&argv[2]),
        Some("__exec") if argv.len() == 3 => hoist_agent::runtime::exec::main(argv[2].as_ref()),
        _ => {}
    }
    let args = Args::parse();
    hoist_common::init_tracing();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let userns_range = userns_range(&args.userns_range)?;
    // Bound first, so that a taken address stops the agent before it touches anything.
    let metrics = match hoist_agent::metrics::parse_listen(&args.metrics_listen)
        .map_err(anyhow::Error::msg)?
    {
        Some(addr) => Some(tokio::net::TcpListener::bind(addr).await.with_context(|| {
            format!("--metrics-listen {addr}: listen (give another address, or none)")
        })?),
        None => None,
    };
    let mut join = args.join.map(|token| JoinConfig {
        token,
        controllers: args
            .controller
            .iter()
            .map(|a| a.trim().to_string())
            .filter(|a| !a.is_empty())
            .collect(),
        labels: args.labels.into_iter().collect(),
        advertise_addr: args.advertise_addr,
        cpu_millis: args.cpus,
        memory_bytes: args.memory,
        data_dir: args.data_dir.clone(),
        overlay: None,
        dns: None,
        mesh: None,
    });
    // A cluster node without a subnet of its own joins the overlay: its key first (registered
    // with the node), then the subnet the controller allocates.
    let mut mtu = None;
    let mut cluster_cidr = None;
    let subnet = match (&mut join, &args.subnet) {
        (Some(j), None) => {
            let keys =
                hoist_agent::overlay::keys::KeyPair::load_or_create(&args.data_dir.join("overlay"))
                    .context("the overlay's key pair")?;
            let underlay_ip = hoist_agent::worker::advertise_address(j)
                .ok()
                .and_then(|a| a.parse().ok());
            let overlay = hoist_agent::overlay::Overlay::new(
                hoist_agent::overlay::OverlayConfig {
                    interface: args.wg_interface.clone(),
                    listen_port: args.wg_port,
                    underlay_ip,
                },
                keys,
                Arc::new(hoist_agent::overlay::HostTunnel::new()),
            );
            j.overlay = Some(overlay.clone());
            let o = overlay.clone();
            mtu = Some(tokio::task::spawn_blocking(move || o.mtu()).await?);
            tracing::info!(interface = %args.wg_interface, port = args.wg_port, public_key = %overlay.public_key(), "joining the overlay");
            let state = hoist_agent::worker::wait_for_subnet(j).await?;
            tokio::spawn(overlay.clone().run());
            tokio::spawn(overlay.clone().probe_loop());
            j.dns = Some(Default::default());
            cluster_cidr = Some(state.cluster_cidr.clone());
            state.subnet
        }
        (_, Some(s)) => s.clone(),
        (None, None) => "10.89.0.0/24".to_string(),
    };
    let cluster_dns = match &join {
        Some(j) if j.dns.is_some() => {
            let net: hoist_agent::network::Ipv4Subnet = subnet
                .parse()
                .map_err(|e| anyhow::anyhow!("subnet from the controller: {e}"))?;
            Some(net.gateway())
        }
        _ => None,
    };
    let mut config = AgentConfig {
        data_dir: args.data_dir,
        socket: args.socket,
        bridge: args.bridge,
        subnet,
        masquerade: args.masquerade,
        cgroup_parent: args.cgroup_parent,
        log_max_bytes: args.log_max_size,
        insecure_registries: args.insecure_registry,
        cluster_dns,
        userns_range,
        // Known once the tmpfs is mounted, below.
        volatile_on_tmpfs: false,
    };
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("create {}", config.data_dir.display()))?;
    // The agent's alone (as Docker keeps /var/lib/docker): image layers and containers' writable
    // layers hold files as root made them, setuid bits included, which no other user of the host
    // may reach. Containers see their files through mounts, never through these paths.
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&config.data_dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("chmod 700 {}", config.data_dir.display()))?;
    }
    if let Err(e) = hoist_agent::runtime::selfexe::init() {
        tracing::warn!(
            "no sealed copy of the agent binary for helpers (CVE-2019-5736 hardening off): {e}"
        );
    }
    config.volatile_on_tmpfs = match hoist_agent::runtime::run_dir::ensure_tmpfs(&config.run_dir())
    {
        Ok(true) => {
            tracing::info!(dir = %config.run_dir().display(), "mounted a tmpfs for the containers' volatile files");
            true
        }
        Ok(false) => true,
        Err(e) => {
            tracing::warn!(dir = %config.run_dir().display(), "no tmpfs for the containers' volatile files; they stay on disk, and replicas with secrets are refused: {e}");
            false
        }
    };
    let images = Arc::new(ImageStore::open(&config.images_dir()).context("open image store")?);
    hoist_agent::image::build::clean_leftovers(&config.data_dir);
    let network = Arc::new(
        Network::new(NetworkConfig {
            bridge: config.bridge.clone(),
            subnet: config
                .subnet
                .parse()
                .map_err(|e| anyhow::anyhow!("--subnet: {e}"))?,
            masquerade: config.masquerade,
            mtu,
            forward: cluster_cidr.is_some(),
            state_dir: config.network_dir(),
            netns_dir: config.netns_dir(),
        })
        .await
        .context("set up networking")?,
    );
    if let (Some(ip), Some(table)) = (cluster_dns, join.as_ref().and_then(|j| j.dns.clone())) {
        let upstreams = dns_upstreams(&args.dns_upstream)?;
        hoist_agent::dns::start(
            hoist_agent::dns::DnsConfig {
                listen: std::net::SocketAddr::new(ip.into(), 53),
                upstreams,
                per_source_qps: Some(hoist_agent::dns::server::PER_SOURCE_QPS),
            },
            table,
        )
        .await
        .with_context(|| format!("serve the cluster DNS on {ip}:53"))?;
    }
    // The routing mesh: service VIPs and ingress ports of every service, on every overlay node.
    if let (Some(j), Some(cidr)) = (join.as_mut(), cluster_cidr) {
        let mesh = hoist_agent::mesh::Mesh::new(
            hoist_agent::mesh::MeshConfig {
                table: "hoist_mesh".into(),
                vx_iface: "hoist-vx0".into(),
                bridge: config.bridge.clone(),
                cluster_cidr: cidr
                    .parse()
                    .map_err(|e| anyhow::anyhow!("cluster CIDR from the controller: {e}"))?,
                subnet: config
                    .subnet
                    .parse()
                    .map_err(|e| anyhow::anyhow!("subnet from the controller: {e}"))?,
                mtu: mtu.unwrap_or(1420),
            },
            Arc::new(hoist_agent::mesh::HostMesh::default()),
        );
        j.mesh = Some(hoist_agent::worker::mesh_view::MeshHandle::new(mesh));
    }
    let cgroups = CgroupDriver::detect(&config.cgroup_parent).context("detect cgroups")?;
    let socket = config.socket.clone();
    let manager = Manager::new(
        config,
        Deps {
            images: images.clone(),
            network,
            cgroups: Arc::new(cgroups),
            supervisor: Arc::new(Shim::new(args.supervisor_start)),
        },
    );
    let restored = manager.restore().await.context("restore containers")?;
    if let Some(listener) = metrics {
        tracing::info!(address = %listener.local_addr()?, "serving metrics on /metrics");
        let mgr = manager.clone();
        tokio::spawn(async move {
            if let Err(e) = hoist_agent::metrics::serve(listener, mgr).await {
                tracing::error!("the metrics listener stopped: {e}");
            }
        });
    }
    let overlay = join.as_ref().and_then(|j| j.overlay.clone());
    let mesh = join.as_ref().and_then(|j| j.mesh.clone());
    if let Some(join) = join {
        tracing::info!(controllers = ?join.controllers, "joining the cluster");
        hoist_agent::worker::start(manager.clone(), images.clone(), join)?;
    }

    if let Some(dir) = socket.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    let _ = std::fs::remove_file(&socket);
    let listener = tokio::net::UnixListener::bind(&socket)
        .with_context(|| format!("listen on {}", socket.display()))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o660))?;
    tracing::info!(socket = %socket.display(), restored, "hoist-agent ready");

    let shutdown = async {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
        }
        tracing::info!("shutting down; containers keep running");
    };
    let services = hoist_agent::api::Services {
        containers: manager,
        images,
        overlay,
        mesh,
    };
    hoist_transport::serve(
        listener,
        hoist_agent::api::router(services),
        hoist_transport::Limits::default(),
        shutdown,
    )
    .await?;
    let _ = std::fs::remove_file(&socket);
    Ok(())
}
