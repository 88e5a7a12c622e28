//! `hoist stack`: multi-service applications from Compose files. `config` is local (it prints
//! what the files become); `deploy` sends them to the controllers as one release and follows it
//! to its verdict; the others read and remove (`stack_ops.rs`).

use crate::controller_client::ControllerClient;
use crate::{compose, output, resolve, rollout, stack_ops};
use clap::Subcommand;
use std::collections::BTreeMap;
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
    /// Deploy a stack from Compose files as one release: every service it changes rolls out
    /// together, and when one fails its update, every one of them goes back to its previous
    /// version (and services the release created are removed).
    ///
    /// Waits for the release's verdict: exit 0 when every changed service runs its new version,
    /// non-zero when the release was rolled back, superseded, or made no progress for
    /// `--progress-deadline`. A deploy that changes nothing makes no release.
    Deploy {
        /// A Compose file; several merge in order, later ones overriding.
        #[arg(short = 'c', long = "compose-file", required = true)]
        files: Vec<PathBuf>,
        /// Remove the stack's services the files no longer name.
        #[arg(long)]
        prune: bool,
        /// Do not wait for the release's verdict.
        #[arg(short = 'd', long)]
        detach: bool,
        #[command(flatten)]
        follow: rollout::FollowArgs,
        #[command(flatten)]
        resolve: resolve::ResolveArgs,
        /// The stack's name: services are named NAME_SERVICE.
        name: String,
    },
    /// List stacks with their current release.
    Ls,
    /// A stack's services, with running/desired replicas.
    Services { name: String },
    /// Every replica of every service of a stack.
    Ps { name: String },
    /// A stack's releases, the current one last.
    History { name: String },
    /// Remove stacks and every service of them.
    Rm {
        #[arg(required = true)]
        names: Vec<String>,
    },
}

pub async fn run(
    cmd: StackCmd,
    controllers: &[String],
    format: output::Format,
) -> anyhow::Result<i32> {
    let json = format == output::Format::Json;
    if let StackCmd::Config { files, name } = &cmd {
        return compose::command::config(name, files, format);
    }
    let client = ControllerClient::new(controllers)?;
    Ok(match cmd {
        StackCmd::Config { .. } => unreachable!("answered above"),
        StackCmd::Deploy {
            files,
            prune,
            detach,
            follow,
            resolve,
            name,
        } => {
            let env: BTreeMap<String, String> = std::env::vars().collect();
            let loaded = match compose::load_from_disk(&name, &files, &env) {
                Ok(l) => l,
                Err(e) => {
                    let n = e.problems.len();
                    eprintln!(
                        "error: {n} problem{} in the Compose files:\n{e}",
                        if n == 1 { "" } else { "s" }
                    );
                    return Ok(2);
                }
            };
            for w in &loaded.warnings {
                eprintln!("warning: {w}");
            }
            let limits = (!detach).then(|| (&follow).into());
            return stack_ops::deploy(
                &client,
                &name,
                loaded.services,
                prune,
                &resolve.into(),
                limits,
                json,
            )
            .await;
        }
        StackCmd::Ls => stack_ops::ls(&client, json).await,
        StackCmd::Services { name } => stack_ops::services(&client, &name, json).await,
        StackCmd::Ps { name } => stack_ops::ps(&client, &name, json).await,
        StackCmd::History { name } => stack_ops::history(&client, &name, json).await,
        StackCmd::Rm { names } => stack_ops::rm(&client, &names, json).await,
    })
}
