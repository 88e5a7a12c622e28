//! `hoist stack`: multi-service applications from Compose files. `config` is local (it prints
//! what the files become); the commands that talk to the controllers join this enum.

use crate::{compose, output};
use clap::Subcommand;
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum StackCmd {
    /// Print the service specs Compose files become, contacting no one (like `docker compose
    /// config`); warnings go to stderr.
    Config {
        /// A Compose file; several merge in order, later ones overriding.
        #[arg(short = 'c', long = "compose-file", required = true)]
        files: Vec<PathBuf>,
        /// The stack's name: services are named NAME_SERVICE.
        name: String,
    },
}

pub async fn run(
    cmd: StackCmd,
    controllers: &[String],
    format: output::Format,
) -> anyhow::Result<i32> {
    let _ = controllers;
    match cmd {
        StackCmd::Config { files, name } => compose::command::config(&name, &files, format),
    }
}
