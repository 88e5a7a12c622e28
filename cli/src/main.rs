//! `hoist`: the operator's command line, a thin client of Hoist's HTTP APIs.
//!
//! Interim wiring of the controller commands (the integrator merges them with the container commands).

mod cluster;
mod controller_client;
mod service;
mod spec_file;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(name = "hoist", version)]
struct Cli {
    /// Controller addresses, tried in turn.
    #[arg(
        long,
        env = "HOIST_CONTROLLER",
        value_delimiter = ',',
        global = true,
        default_value = "127.0.0.1:7070"
    )]
    controller: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Text, global = true)]
    output: Output,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Output {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Services on the cluster.
    #[command(subcommand)]
    Service(service::ServiceCmd),
    /// The controller cluster.
    #[command(subcommand)]
    Cluster(cluster::ClusterCmd),
}

fn main() {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let json = cli.output == Output::Json;
    let code = rt.block_on(async {
        match cli.cmd {
            Cmd::Service(c) => service::run(c, &cli.controller, json).await,
            Cmd::Cluster(c) => cluster::run(c, &cli.controller, json).await,
        }
    });
    match code {
        Ok(c) => std::process::exit(c),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(1);
        }
    }
}
