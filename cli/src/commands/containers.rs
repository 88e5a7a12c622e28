//! Container commands, Docker-style: `run`, `ps`, `logs`, `stop`, `kill`, `rm`, `exec`, `inspect`, `stats`.

use crate::client::{enc, Client, ClientError};
use crate::output::{self, ellipsize, Format};
use clap::{Args, Subcommand};
use hoist_common::mount_flags::{self, MountArg};
use hoist_common::parse;
use hoist_proto::{
    AttachEvent, ContainerInfo, ContainerStats, ContainerStatus, CreateContainer, Created,
    ExecRequest, NetworkMode, Resources, StreamChunk,
};
use hyper::Method;
use std::io::Write;

#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per run
pub enum ContainerCmd {
    /// Create and start a container; without -d, stream its output and exit with its exit code.
    Run(RunArgs),
    /// List containers (running only, unless -a).
    #[command(alias = "list")]
    Ps {
        /// Show all containers, also exited ones.
        #[arg(short, long)]
        all: bool,
        /// Only print ids.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Print a container's output.
    Logs {
        /// Keep printing new output until the container exits.
        #[arg(short, long)]
        follow: bool,
        /// Only the last N lines.
        #[arg(long, short = 'n')]
        tail: Option<usize>,
        /// Prefix each line with its time.
        #[arg(short, long)]
        timestamps: bool,
        container: String,
    },
    /// Stop containers: the stop signal, then SIGKILL after the grace period.
    Stop {
        /// Seconds to wait before killing (default: the container's --stop-timeout, else 10).
        #[arg(short = 't', long = "time")]
        time: Option<u64>,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Send a signal to containers (default SIGKILL).
    Kill {
        #[arg(short, long, default_value = "SIGKILL")]
        signal: String,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Remove containers.
    Rm {
        /// Kill running containers first.
        #[arg(short, long)]
        force: bool,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Run a command in a running container.
    Exec {
        /// Set an environment variable (KEY=VALUE).
        #[arg(short, long = "env", value_parser = check_env)]
        env: Vec<String>,
        /// Working directory inside the container.
        #[arg(short, long)]
        workdir: Option<String>,
        /// User: UID[:GID] or NAME[:GROUP].
        #[arg(short, long)]
        user: Option<String>,
        container: String,
        /// The command and its arguments.
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        cmd: Vec<String>,
    },
    /// Show everything about containers (JSON).
    Inspect {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Show resource usage of running containers.
    Stats {
        /// Only these containers (default: all running).
        containers: Vec<String>,
    },
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Run in the background and print the container id.
    #[arg(short, long)]
    detach: bool,
    /// Remove the container when it exits.
    #[arg(long)]
    rm: bool,
    /// Run an init as pid 1 that forwards signals and reaps zombies.
    #[arg(long)]
    init: bool,
    /// A name for the container.
    #[arg(long)]
    name: Option<String>,
    /// Set an environment variable (KEY=VALUE); repeatable.
    #[arg(short, long = "env", value_parser = check_env)]
    env: Vec<String>,
    /// Working directory inside the container.
    #[arg(short, long)]
    workdir: Option<String>,
    /// User: UID[:GID] or NAME[:GROUP] from the image.
    #[arg(short, long)]
    user: Option<String>,
    /// Container hostname (default: the short id).
    #[arg(long)]
    hostname: Option<String>,
    /// Memory limit, e.g. 64m, 1g.
    #[arg(short, long, value_parser = |s: &str| parse::parse_size(s))]
    memory: Option<u64>,
    /// CPU limit in CPUs, e.g. 0.5.
    #[arg(long, value_parser = |s: &str| parse::parse_cpus(s))]
    cpus: Option<u64>,
    /// Relative CPU weight (1-10000, default 100).
    #[arg(long)]
    cpu_weight: Option<u64>,
    /// Maximum number of processes.
    #[arg(long)]
    pids_limit: Option<u64>,
    /// Network: bridge (own address on the host bridge), host, or none.
    #[arg(long, default_value = "bridge", value_parser = parse_network)]
    network: NetworkMode,
    /// Publish a port: HOSTPORT:PORT[/tcp|udp]; repeatable.
    #[arg(short, long = "publish", value_parser = |s: &str| parse::parse_port(s))]
    publish: Vec<hoist_proto::PortMapping>,
    /// Mount a host path (HOSTPATH:PATH[:ro]) or a named volume of this node (NAME:PATH[:ro],
    /// made on first use with the image's content there); repeatable.
    #[arg(short, long = "volume", value_parser = |s: &str| mount_flags::parse_volume_flag(s))]
    volume: Vec<MountArg>,
    /// Mount a bind, named volume or tmpfs: type=bind|volume|tmpfs,source=...,target=...
    /// [,readonly][,tmpfs-size=64m][,tmpfs-mode=1777]; repeatable.
    #[arg(long = "mount", value_parser = |s: &str| mount_flags::parse_mount(s))]
    mount: Vec<MountArg>,
    /// Mount a fresh tmpfs: PATH[:size=64m,mode=1777]; repeatable.
    #[arg(long, value_parser = |s: &str| mount_flags::parse_tmpfs(s))]
    tmpfs: Vec<hoist_proto::TmpfsMount>,
    /// Set a process limit: NAME=SOFT[:HARD] (nofile=1024:4096; -1 is unlimited); repeatable.
    #[arg(long, value_parser = |s: &str| mount_flags::parse_ulimit(s))]
    ulimit: Vec<(String, hoist_proto::Ulimit)>,
    /// The signal that asks the command to stop (default: the image's STOPSIGNAL, else SIGTERM).
    #[arg(long, value_parser = check_signal)]
    stop_signal: Option<String>,
    /// Seconds `hoist stop` waits after the stop signal before SIGKILL (default 10).
    #[arg(long)]
    stop_timeout: Option<u64>,
    /// Mount the root filesystem read-only.
    #[arg(long)]
    read_only: bool,
    /// Add a Linux capability to Docker's default set (NET_ADMIN or CAP_NET_ADMIN; ALL for
    /// every one). CAP_SYS_ADMIN also opens the system calls it guards (mount, unshare, setns);
    /// repeatable.
    #[arg(long = "cap-add", value_name = "CAP", value_parser = check_capability)]
    cap_add: Vec<String>,
    /// Drop a capability of the default set (ALL drops every one but those added); repeatable.
    #[arg(long = "cap-drop", value_name = "CAP", value_parser = check_capability)]
    cap_drop: Vec<String>,
    /// no_new_privs for every process (on by default): setuid binaries and file capabilities
    /// cannot raise privileges. --no-new-privileges=false lets them (an image needing sudo or su).
    #[arg(
        long,
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true"
    )]
    no_new_privileges: Option<bool>,
    /// Run in a user namespace: the container's root is an unprivileged id range of the host
    /// (the agent's --userns-range), so files it writes to volumes belong to that range.
    #[arg(long)]
    userns: bool,
    /// Override the image's entrypoint.
    #[arg(long)]
    entrypoint: Option<String>,
    /// Set a label KEY=VALUE; repeatable.
    #[arg(short, long = "label", value_parser = |s: &str| parse::parse_env(s))]
    label: Vec<(String, String)>,
    /// IMAGE [COMMAND [ARG...]]
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "IMAGE [COMMAND]"
    )]
    args: Vec<String>,
}

fn check_capability(s: &str) -> Result<String, String> {
    hoist_proto::capabilities::normalize(s).map(|_| s.to_string())
}

fn check_env(s: &str) -> Result<String, String> {
    parse::parse_env(s).map(|_| s.to_string())
}

fn parse_network(s: &str) -> Result<NetworkMode, String> {
    match s {
        "bridge" => Ok(NetworkMode::Bridge),
        "host" => Ok(NetworkMode::Host),
        "none" => Ok(NetworkMode::None),
        "cluster" => Ok(NetworkMode::Cluster),
        _ => Err(format!(
            "{s:?}: use bridge, cluster (on a node of a cluster's overlay), host or none"
        )),
    }
}

pub async fn run(cmd: ContainerCmd, client: &Client, format: Format) -> Result<i32, ClientError> {
    match cmd {
        ContainerCmd::Run(args) => run_container(args, client, format).await,
        ContainerCmd::Ps { all, quiet } => ps(client, format, all, quiet).await,
        ContainerCmd::Logs {
            follow,
            tail,
            timestamps,
            container,
        } => logs(client, format, &container, follow, tail, timestamps).await,
        ContainerCmd::Stop { time, containers } => {
            let t = time.map(|t| format!("?t={t}")).unwrap_or_default();
            let t = t.as_str();
            each(containers, |c| async move {
                client
                    .call::<ContainerInfo>(
                        Method::POST,
                        &format!("/v1/containers/{}/stop{t}", enc(&c)),
                        None::<&()>,
                    )
                    .await
                    .map(|_| c)
            })
            .await
        }
        ContainerCmd::Kill { signal, containers } => {
            let signal = &signal;
            each(containers, |c| async move {
                client
                    .call::<()>(
                        Method::POST,
                        &format!("/v1/containers/{}/kill?signal={}", enc(&c), enc(signal)),
                        None::<&()>,
                    )
                    .await
                    .map(|_| c)
            })
            .await
        }
        ContainerCmd::Rm { force, containers } => {
            each(containers, |c| async move {
                client
                    .call::<()>(
                        Method::DELETE,
                        &format!("/v1/containers/{}?force={force}", enc(&c)),
                        None::<&()>,
                    )
                    .await
                    .map(|_| c)
            })
            .await
        }
        ContainerCmd::Exec {
            env,
            workdir,
            user,
            container,
            cmd,
        } => {
            let req = ExecRequest {
                cmd,
                env,
                workdir,
                user,
            };
            let mut code = 0;
            let path = format!("/v1/containers/{}/exec", enc(&container));
            client
                .stream(Method::POST, &path, Some(&req), |chunk: StreamChunk| {
                    if format == Format::Json {
                        println!("{}", serde_json::to_string(&chunk).unwrap_or_default());
                    } else {
                        print_chunk(&chunk, false);
                    }
                    if let Some(c) = chunk.exit_code {
                        code = c;
                    }
                    true
                })
                .await?;
            Ok(code)
        }
        ContainerCmd::Inspect { containers } => {
            let mut out = Vec::new();
            let mut code = 0;
            for c in containers {
                match client
                    .get::<ContainerInfo>(&format!("/v1/containers/{}", enc(&c)))
                    .await
                {
                    Ok(info) => out.push(info),
                    Err(e) => {
                        eprintln!("hoist: {e}");
                        code = 1;
                    }
                }
            }
            output::json(&out);
            Ok(code)
        }
        ContainerCmd::Stats { containers } => stats(client, format, containers).await,
    }
}

/// Applies `f` to each container, printing each name that succeeded (as Docker does) and each error.
async fn each<F, Fut>(containers: Vec<String>, f: F) -> Result<i32, ClientError>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<String, ClientError>>,
{
    let mut code = 0;
    for c in containers {
        match f(c).await {
            Ok(name) => println!("{name}"),
            Err(e @ ClientError::Connect { .. }) => return Err(e),
            Err(e) => {
                eprintln!("hoist: {e}");
                code = 1;
            }
        }
    }
    Ok(code)
}

fn print_chunk(chunk: &StreamChunk, timestamps: bool) {
    let Some(data) = &chunk.data else { return };
    let prefix = match (&chunk.time, timestamps) {
        (Some(t), true) => format!("{t} "),
        _ => String::new(),
    };
    if chunk.stream.as_deref() == Some("stderr") {
        let mut e = std::io::stderr().lock();
        let _ = write!(e, "{prefix}{data}");
        let _ = e.flush();
    } else {
        let mut o = std::io::stdout().lock();
        let _ = write!(o, "{prefix}{data}");
        let _ = o.flush();
    }
}

fn check_signal(text: &str) -> Result<String, String> {
    hoist_proto::signal::parse_signal(text).map(|_| text.to_string())
}

async fn run_container(args: RunArgs, client: &Client, format: Format) -> Result<i32, ClientError> {
    let mut rest = args.args.into_iter();
    let image = rest.next().unwrap_or_default();
    let (mut volumes, mut named_volumes, mut tmpfs) = (Vec::new(), Vec::new(), args.tmpfs);
    for m in args.volume.into_iter().chain(args.mount) {
        match m {
            MountArg::Bind(b) => volumes.push(b),
            MountArg::Volume(v) => named_volumes.push(v),
            MountArg::Tmpfs(t) => tmpfs.push(t),
        }
    }
    let req = CreateContainer {
        image,
        name: args.name,
        cmd: rest.collect(),
        entrypoint: args.entrypoint.map(|e| vec![e]),
        env: args.env,
        workdir: args.workdir,
        user: args.user,
        hostname: args.hostname,
        resources: Resources {
            memory_bytes: args.memory,
            cpu_millis: args.cpus,
            cpu_weight: args.cpu_weight,
            pids_limit: args.pids_limit,
        },
        network: args.network,
        ports: args.publish,
        volumes,
        read_only: args.read_only,
        auto_remove: args.rm,
        init: args.init,
        labels: args.label.into_iter().collect(),
        stop_signal: args.stop_signal,
        stop_grace_ms: args.stop_timeout.map(|s| s.saturating_mul(1000)),
        ulimits: args.ulimit.into_iter().collect(),
        tmpfs,
        named_volumes,
        cap_add: args.cap_add,
        cap_drop: args.cap_drop,
        no_new_privileges: args.no_new_privileges,
        userns: args.userns,
    };
    if args.detach {
        let created: Created = client
            .call(Method::POST, "/v1/containers", Some(&req))
            .await?;
        match format {
            Format::Json => output::json(&created),
            Format::Table => println!("{}", created.id),
        }
        return Ok(0);
    }
    // Attached: print the output as it comes, forward Ctrl-C / SIGTERM to the container (like
    // docker's sig-proxy), exit with the container's exit code.
    let id: std::cell::RefCell<Option<String>> = std::cell::RefCell::new(None);
    let code = std::cell::Cell::new(0);
    let api_error = std::cell::RefCell::new(None);
    let attach = client.stream(
        Method::POST,
        "/v1/containers?attach=true",
        Some(&req),
        |event: AttachEvent| {
            if format == Format::Json {
                println!("{}", serde_json::to_string(&event).unwrap_or_default());
            }
            match event {
                AttachEvent::Created(c) => *id.borrow_mut() = Some(c.id),
                AttachEvent::Output(chunk) if format == Format::Table => print_chunk(&chunk, false),
                AttachEvent::Output(_) => {}
                AttachEvent::Exit(exit) => code.set(exit.code),
                AttachEvent::Error(e) => *api_error.borrow_mut() = Some(e),
            }
            true
        },
    );
    tokio::pin!(attach);
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).ok();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let result = loop {
        let signal = tokio::select! {
            r = &mut attach => break r,
            Some(()) = async { int.as_mut()?.recv().await } => "SIGINT",
            Some(()) = async { term.as_mut()?.recv().await } => "SIGTERM",
        };
        let target = id.borrow().clone();
        if let Some(target) = target {
            let _ = client
                .call::<()>(
                    Method::POST,
                    &format!("/v1/containers/{target}/kill?signal={signal}"),
                    None::<&()>,
                )
                .await;
        }
    };
    result?;
    if let Some(error) = api_error.take() {
        return Err(ClientError::Api { error });
    }
    Ok(code.get())
}

async fn ps(client: &Client, format: Format, all: bool, quiet: bool) -> Result<i32, ClientError> {
    let list: Vec<ContainerInfo> = client.get(&format!("/v1/containers?all={all}")).await?;
    if quiet {
        for c in &list {
            println!("{}", &c.id[..12.min(c.id.len())]);
        }
        return Ok(0);
    }
    if format == Format::Json {
        output::json(&list);
        return Ok(0);
    }
    let rows = list
        .iter()
        .map(|c| {
            let ports = c
                .spec
                .ports
                .iter()
                .map(|p| {
                    format!(
                        "0.0.0.0:{}->{}/{}",
                        p.host_port, p.container_port, p.protocol
                    )
                })
                .collect::<Vec<_>>()
                .join(", ");
            vec![
                c.id[..12.min(c.id.len())].to_string(),
                c.image.clone(),
                format!("\"{}\"", ellipsize(&c.command.join(" "), 20)),
                format!("{} ago", output::since(&c.created_at)),
                status_text(c),
                ports,
                c.name.clone(),
            ]
        })
        .collect();
    output::table(
        &[
            "CONTAINER ID",
            "IMAGE",
            "COMMAND",
            "CREATED",
            "STATUS",
            "PORTS",
            "NAMES",
        ],
        rows,
    );
    Ok(0)
}

fn status_text(c: &ContainerInfo) -> String {
    match (c.status, &c.exit, &c.started_at) {
        (ContainerStatus::Running, _, Some(s)) => format!("Up {}", output::since(s)),
        (ContainerStatus::Exited, Some(e), _) => {
            let oom = if e.oom_killed { " (OOM killed)" } else { "" };
            format!(
                "Exited ({}) {} ago{oom}",
                e.code,
                output::since(&e.finished_at)
            )
        }
        (status, _, _) => status.to_string(),
    }
}

async fn logs(
    client: &Client,
    format: Format,
    container: &str,
    follow: bool,
    tail: Option<usize>,
    timestamps: bool,
) -> Result<i32, ClientError> {
    let mut path = format!("/v1/containers/{}/logs?follow={follow}", enc(container));
    if let Some(n) = tail {
        path.push_str(&format!("&tail={n}"));
    }
    client
        .stream(Method::GET, &path, None::<&()>, |chunk: StreamChunk| {
            if format == Format::Json {
                println!("{}", serde_json::to_string(&chunk).unwrap_or_default());
            } else {
                print_chunk(&chunk, timestamps);
            }
            true
        })
        .await?;
    Ok(0)
}

async fn stats(
    client: &Client,
    format: Format,
    containers: Vec<String>,
) -> Result<i32, ClientError> {
    let sample = || async {
        let all: Vec<ContainerStats> = client.get("/v1/stats").await?;
        Ok::<_, ClientError>(
            all.into_iter()
                .filter(|s| {
                    containers.is_empty()
                        || containers
                            .iter()
                            .any(|c| s.id.starts_with(c.as_str()) || &s.name == c)
                })
                .collect::<Vec<_>>(),
        )
    };
    let first = sample().await?;
    let t0 = std::time::Instant::now();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let second = sample().await?;
    let wall = t0.elapsed().as_nanos().max(1) as f64;
    if format == Format::Json {
        output::json(&second);
        return Ok(0);
    }
    let rows = second
        .iter()
        .map(|s| {
            let before = first
                .iter()
                .find(|f| f.id == s.id)
                .map_or(s.cpu_usage_ns, |f| f.cpu_usage_ns);
            let cpu = (s.cpu_usage_ns.saturating_sub(before)) as f64 / wall * 100.0;
            let limit = s
                .memory_limit_bytes
                .map(hoist_common::parse::format_size)
                .unwrap_or_else(|| "unlimited".into());
            let mem_pct = s
                .memory_limit_bytes
                .map(|l| format!("{:.2}%", s.memory_bytes as f64 / l as f64 * 100.0))
                .unwrap_or_else(|| "--".into());
            let pids = match s.pids_limit {
                Some(l) => format!("{} / {l}", s.pids),
                None => s.pids.to_string(),
            };
            vec![
                s.id[..12.min(s.id.len())].to_string(),
                s.name.clone(),
                format!("{cpu:.2}%"),
                format!(
                    "{} / {limit}",
                    hoist_common::parse::format_size(s.memory_bytes)
                ),
                mem_pct,
                pids,
            ]
        })
        .collect();
    output::table(
        &[
            "CONTAINER ID",
            "NAME",
            "CPU %",
            "MEM USAGE / LIMIT",
            "MEM %",
            "PIDS",
        ],
        rows,
    );
    Ok(0)
}
