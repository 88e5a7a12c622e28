//! `hoist`: the command-line client of Hoist. Container and image commands talk to a node agent
//! over its unix socket, Docker-style; service and cluster commands talk to the controllers.

// Doc comments here are also clap's `--help` text, which writes optional parts in brackets
// (`IMAGE[:TAG]`, `USER[:GROUP]`): rustdoc would take them for links.
#![allow(rustdoc::broken_intra_doc_links)]

mod autoscale;
mod ca;
mod client;
mod cluster;
mod commands;
mod compose;
mod controller_client;
mod credentials;
mod events;
mod files;
mod node;
mod output;
mod private_file;
mod ps;
mod resolve;
mod rollout;
mod service;
mod service_exec;
mod service_logs;
mod session_stream;
mod spec_file;
mod sse;
mod stack;
mod stack_ops;
mod token;

use clap::{Parser, Subcommand};
use client::{Client, ClientError};
use hoist_proto::files::FileKind;
use std::path::PathBuf;

/// Hoist: run containers on this host (and, with a controller, services across many).
#[derive(Debug, Parser)]
#[command(name = "hoist", version, about, long_about = None)]
struct Cli {
    /// The agent's API socket.
    #[arg(
        long,
        global = true,
        env = "HOIST_AGENT",
        default_value = "/run/hoist/agent.sock"
    )]
    agent: PathBuf,
    /// Controller addresses (HOST:PORT), tried in turn when one is down.
    #[arg(
        long,
        global = true,
        env = "HOIST_CONTROLLER",
        value_delimiter = ',',
        default_value = "127.0.0.1:7070"
    )]
    controller: Vec<String>,
    /// An operator token for the controllers (default: the one `hoist cluster login` kept).
    #[arg(long, global = true, env = "HOIST_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// An operator's client certificate instead of a token, with --key; before the command.
    ///
    /// `hoist token cert` writes one. The CLI then talks TLS to the controllers, verifying
    /// them under the ca.crt beside the certificate (else the root after it in the file), and
    /// presents the certificate instead of a token. Without a token or this, operator.crt and
    /// operator.key in the config dir are used when they are there.
    #[arg(long, env = "HOIST_CERT", value_name = "FILE")]
    cert: Option<PathBuf>,
    /// The private key of --cert (operator.key); before the command.
    #[arg(long = "key", env = "HOIST_KEY", value_name = "FILE")]
    client_key: Option<PathBuf>,
    /// Output format: tables for people, JSON for scripts.
    #[arg(long, short = 'o', global = true, value_enum, default_value_t)]
    output: output::Format,
    #[command(subcommand)]
    command: Command,
}

// Parsed once per process: the size difference between variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    #[command(flatten)]
    Container(commands::containers::ContainerCmd),
    #[command(flatten)]
    Snapshot(commands::commit::SnapshotCmd),
    /// Manage images: pull, push, load, save, import, list, inspect, tag, remove, prune.
    #[command(subcommand)]
    Image(commands::images::ImageCmd),
    /// Manage this node's named volumes: list, inspect, remove.
    #[command(subcommand)]
    Volume(commands::volumes::VolumeCmd),
    /// Build an image from a Dockerfile and a context directory.
    #[command(after_help = commands::build::EXAMPLES)]
    Build(commands::build::BuildArgs),
    /// Show the agent's configuration and counts.
    Info,
    /// Log in to a registry: the agent checks the credentials, the CLI keeps them (mode 0600).
    Login(commands::registry::LoginArgs),
    /// Forget the credentials of a registry.
    Logout(commands::registry::LogoutArgs),
    /// Services on the cluster: apply specs, scale, roll back (talks to the controllers).
    #[command(subcommand)]
    Service(service::ServiceCmd),
    /// Stacks: several services from Compose files.
    #[command(subcommand)]
    Stack(stack::StackCmd),
    /// The controller cluster: status, members, snapshots, join token.
    #[command(subcommand)]
    Cluster(cluster::ClusterCmd),
    /// Agent hosts in the cluster: list, inspect, label, drain, pause, activate.
    #[command(subcommand)]
    Node(node::NodeCmd),
    /// Operators' tokens and their roles: create, list, revoke (admins); `cert` gets a client
    /// certificate of your own token (any role).
    #[command(subcommand, after_help = token::TOKEN_EXAMPLES)]
    Token(token::TokenCmd),
    /// Secrets for services' replicas: create (new versions rotate them live), list, inspect, rm.
    #[command(subcommand, after_help = files::SECRET_EXAMPLES)]
    Secret(files::FileCmd),
    /// Configs for services' replicas: create, list, inspect, rm.
    #[command(subcommand, after_help = files::CONFIG_EXAMPLES)]
    Config(files::FileCmd),
    /// Scaling hooks for monitors: their tokens.
    #[command(subcommand)]
    Hook(autoscale::HookCmd),
    /// Follow the cluster's events: services, rollouts, replicas, nodes, stacks, autoscaling.
    #[command(after_help = events::EXAMPLES)]
    Events(events::EventsArgs),
    /// This node's network: `hoist net doctor` checks its end of the overlay (talks to the agent).
    #[command(subcommand)]
    Net(commands::net::NetCmd),
}

fn main() {
    // A closed stdout (`hoist ps -q | head -1`) ends the CLI quietly, as it ends other Unix
    // tools, instead of a panic in `println!`. Sockets are not affected: Rust writes them with
    // MSG_NOSIGNAL and sees EPIPE as an error.
    // SAFETY: called first thing in main, before any thread exists; SIG_DFL is a valid handler.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse_from(commands::commit::docker_export_args(
        std::env::args_os().collect(),
    ));
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hoist: {e}");
            std::process::exit(1);
        }
    };
    let json = cli.output == output::Format::Json;
    credentials::init(cli.token.clone(), cli.cert.clone(), cli.client_key.clone());
    let code = rt.block_on(async {
        let client = Client::new(&cli.agent);
        let result = match cli.command {
            Command::Container(cmd) => commands::containers::run(cmd, &client, cli.output).await,
            Command::Snapshot(cmd) => commands::commit::run(cmd, &client, cli.output).await,
            Command::Image(cmd) => commands::images::run(cmd, &client, cli.output).await,
            Command::Volume(cmd) => commands::volumes::run(cmd, &client, cli.output).await,
            Command::Build(args) => commands::build::run(args, &client, cli.output).await,
            Command::Info => commands::info(&client, cli.output).await,
            Command::Login(args) => commands::registry::login(args, &client).await,
            Command::Net(cmd) => commands::net::run(cmd, &client, cli.output).await,
            Command::Logout(args) => commands::registry::logout(args),
            Command::Service(cmd) => {
                return controller_result(service::run(cmd, &cli.controller, json).await)
            }
            Command::Stack(cmd) => {
                return controller_result(stack::run(cmd, &cli.controller, cli.output).await)
            }
            Command::Cluster(cmd) => {
                return controller_result(
                    cluster::run(cmd, &cli.controller, cli.token.clone(), json).await,
                )
            }
            Command::Node(cmd) => {
                return controller_result(node::run(cmd, &cli.controller, json).await)
            }
            Command::Events(args) => {
                return controller_result(events::run(args, &cli.controller, cli.output).await)
            }
            Command::Token(cmd) => {
                return controller_result(token::run(cmd, &cli.controller, json).await)
            }
            Command::Secret(cmd) => {
                return controller_result(
                    files::run(FileKind::Secret, cmd, &cli.controller, json).await,
                )
            }
            Command::Config(cmd) => {
                return controller_result(
                    files::run(FileKind::Config, cmd, &cli.controller, json).await,
                )
            }
            Command::Hook(cmd) => {
                return controller_result(autoscale::run_hook(cmd, &cli.controller, json).await)
            }
        };
        match result {
            Ok(code) => code,
            Err(e) => {
                eprintln!("hoist: {e}");
                exit_code_for(&e)
            }
        }
    });
    std::process::exit(code);
}

fn controller_result(r: anyhow::Result<i32>) -> i32 {
    match r {
        Ok(code) => code,
        Err(e) => {
            eprintln!("hoist: {e:#}");
            1
        }
    }
}

/// Docker's convention: 125 when the engine refuses, 126 when the command cannot be executed,
/// 127 when it is not found; 1 when the agent cannot be reached.
fn exit_code_for(e: &ClientError) -> i32 {
    match e {
        ClientError::Api { error, .. } => match error.code.as_str() {
            "not_executable" => 126,
            "command_not_found" => 127,
            _ => 125,
        },
        ClientError::Connect { .. } | ClientError::Transport(_) => 1,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
