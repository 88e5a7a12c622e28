//! `hoist service ...`: apply, list, inspect, remove, scale, history and rollback of services;
//! their replicas' logs and exec (`service_logs.rs`, `service_exec.rs`).

use crate::controller_client::{report, ControllerClient};
use crate::{ps, resolve, rollout, spec_file};
use comfy_table::Table;
use hoist_proto::cluster::{Service, ServiceChange, ServiceSummary, ServiceVersion, VersionOrigin};
use reqwest::Method;
use std::path::PathBuf;

/// Service commands.
#[derive(Debug, clap::Subcommand)]
pub enum ServiceCmd {
    /// Create or update services from a spec file (TOML, YAML or JSON; `-` reads stdin).
    ///
    /// Then follows the rolling update: exits 0 once every replica runs the new version (healthy
    /// when the spec has a health check), non-zero when it pauses, fails or rolls back.
    Apply {
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        /// Do not wait for the rollout.
        #[arg(short = 'd', long)]
        detach: bool,
        #[command(flatten)]
        follow: rollout::FollowArgs,
        #[command(flatten)]
        resolve: resolve::ResolveArgs,
    },
    /// List services.
    Ls,
    /// Show a service's current spec.
    Inspect { name: String },
    /// Delete services.
    Rm {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Set a service's replica count.
    Scale { name: String, replicas: i64 },
    /// Show a service's kept versions.
    History { name: String },
    /// Make a new version from an old one (default: the previous version).
    Rollback { name: String, version: Option<u64> },
    /// Every replica's output, merged line by line, each line prefixed NAME.SLOT@NODE.
    Logs(crate::service_logs::LogsArgs),
    /// Run a command in a replica wherever it runs; its exit code becomes hoist's.
    Exec(crate::service_exec::ExecArgs),
    /// Every replica: node, state, health, and its recent tasks with reasons.
    Ps { name: String },
    /// Rolling updates.
    #[command(subcommand)]
    Rollout(RolloutCmd),
    /// Autoscaling: the decisions made and why.
    #[command(subcommand)]
    Autoscale(crate::autoscale::AutoscaleCmd),
}

/// `hoist service rollout ...`
#[derive(Debug, clap::Subcommand)]
pub enum RolloutCmd {
    /// Follow the current rollout: exit 0 when it completes, non-zero when it pauses, fails or
    /// rolls back.
    Status {
        name: String,
        #[command(flatten)]
        follow: rollout::FollowArgs,
    },
}

pub fn path_name(name: &str) -> String {
    // Names are DNS labels; anything else is refused by the server with a clear message.
    name.replace('/', "%2F")
}

fn print_json<T: serde::Serialize>(v: &T) {
    println!("{}", serde_json::to_string_pretty(v).expect("json encodes"));
}

fn describe(c: &ServiceChange, verb: &str) -> String {
    let s = &c.service;
    if !c.changed {
        format!("{}: unchanged (version {})", s.name, s.version)
    } else if s.version == 1 && verb == "applied" {
        match &s.vip {
            Some(vip) => format!("{}: created (version 1); virtual IP {vip}", s.name),
            None => format!("{}: created (version 1)", s.name),
        }
    } else {
        format!("{}: {verb} (version {})", s.name, s.version)
    }
}

/// The `hoist service ls` table: REPLICAS is running/desired, as `docker service ls` shows it.
pub fn print_services(list: &[ServiceSummary]) {
    let mut t = Table::new();
    t.load_preset(comfy_table::presets::NOTHING);
    t.set_header(["NAME", "MODE", "VERSION", "IMAGE", "REPLICAS", "VIP"]);
    for s in list {
        let svc = &s.service;
        let mode = match svc.spec.mode {
            hoist_proto::service::ServiceMode::Replicated => "replicated",
            hoist_proto::service::ServiceMode::Global => "global",
        };
        t.add_row([
            svc.name.clone(),
            mode.into(),
            svc.version.to_string(),
            resolve::shown_image(&svc.spec),
            format!("{}/{}", s.running, s.desired),
            svc.vip.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    println!("{t}");
}

/// Runs one service command; answers the exit code.
pub async fn run(cmd: ServiceCmd, controllers: &[String], json: bool) -> anyhow::Result<i32> {
    let client = ControllerClient::new(controllers)?;
    match cmd {
        ServiceCmd::Apply {
            file,
            detach,
            follow,
            resolve,
        } => {
            let mut specs = match spec_file::read(&file) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("error: {e}");
                    return Ok(2);
                }
            };
            // 0.1.0's status has no format: it is format 0.
            let cluster_format = match client
                .json::<serde_json::Value>(Method::GET, "/v1/cluster/status", None)
                .await
            {
                Ok(st) => st["cluster_format"].as_u64().unwrap_or(0) as u32,
                Err(e) => return Ok(report(&e)),
            };
            let opts = resolve::for_cluster(resolve.into(), cluster_format);
            if let Err(e) = resolve::prepare(&mut specs, &opts).await {
                eprintln!("error: {e}");
                return Ok(1);
            }
            let mut changes = Vec::new();
            for spec in specs {
                let body = resolve::apply_body(&spec)?;
                match client
                    .json::<ServiceChange>(Method::POST, "/v1/services", Some(&body))
                    .await
                {
                    Ok(c) => {
                        if !json {
                            println!("{}", describe(&c, "applied"));
                        }
                        changes.push(c);
                    }
                    Err(e) => return Ok(report(&e)),
                }
            }
            if json {
                print_json(&changes);
            }
            if !detach {
                for c in changes.iter().filter(|c| c.changed) {
                    let name = path_name(&c.service.name);
                    let limits = (&follow).into();
                    let code =
                        rollout::follow(&client, &name, Some(c.service.version), limits, json)
                            .await;
                    if code != 0 {
                        return Ok(code);
                    }
                }
            }
        }
        ServiceCmd::Autoscale(crate::autoscale::AutoscaleCmd::History { name }) => {
            return crate::autoscale::history(&name, &client, json).await
        }
        ServiceCmd::Logs(args) => return Ok(crate::service_logs::run(&client, args, json).await),
        ServiceCmd::Exec(args) => return Ok(crate::service_exec::run(&client, args, json).await),
        ServiceCmd::Ps { name } => return Ok(ps::run(&client, &path_name(&name), json).await),
        ServiceCmd::Rollout(RolloutCmd::Status { name, follow }) => {
            let limits = (&follow).into();
            return Ok(rollout::follow(&client, &path_name(&name), None, limits, json).await);
        }
        ServiceCmd::Ls => match client
            .json::<Vec<ServiceSummary>>(Method::GET, "/v1/services", None)
            .await
        {
            Ok(list) if json => print_json(&list),
            Ok(list) => print_services(&list),
            Err(e) => return Ok(report(&e)),
        },
        ServiceCmd::Inspect { name } => {
            match client
                .json::<Service>(
                    Method::GET,
                    &format!("/v1/services/{}", path_name(&name)),
                    None,
                )
                .await
            {
                Ok(s) => print_json(&s),
                Err(e) => return Ok(report(&e)),
            }
        }
        ServiceCmd::Rm { names } => {
            for name in names {
                match client
                    .json::<Service>(
                        Method::DELETE,
                        &format!("/v1/services/{}", path_name(&name)),
                        None,
                    )
                    .await
                {
                    Ok(s) if json => print_json(&s),
                    Ok(s) => println!("{}: removed", s.name),
                    Err(e) => return Ok(report(&e)),
                }
            }
        }
        ServiceCmd::Scale { name, replicas } => {
            let body = serde_json::json!({ "replicas": replicas });
            let path = format!("/v1/services/{}/scale", path_name(&name));
            match client
                .json::<ServiceChange>(Method::POST, &path, Some(&body))
                .await
            {
                Ok(c) if json => print_json(&c),
                Ok(c) => println!("{}", describe(&c, &format!("scaled to {replicas}"))),
                Err(e) => return Ok(report(&e)),
            }
        }
        ServiceCmd::History { name } => {
            let path = format!("/v1/services/{}/history", path_name(&name));
            match client
                .json::<Vec<ServiceVersion>>(Method::GET, &path, None)
                .await
            {
                Ok(h) if json => print_json(&h),
                Ok(h) => {
                    let current = h.last().map(|v| v.version);
                    let mut t = Table::new();
                    t.load_preset(comfy_table::presets::NOTHING);
                    t.set_header(["VERSION", "ORIGIN", "IMAGE", "REPLICAS", ""]);
                    for v in h {
                        let origin = match v.origin {
                            VersionOrigin::Apply => "apply".to_string(),
                            VersionOrigin::Scale => "scale".to_string(),
                            VersionOrigin::Rollback { from } => format!("rollback to {from}"),
                            VersionOrigin::Restart { .. } => {
                                "restart (a secret or config changed)".to_string()
                            }
                        };
                        let mark = if Some(v.version) == current {
                            "current"
                        } else {
                            ""
                        };
                        t.add_row([
                            v.version.to_string(),
                            origin,
                            resolve::shown_image(&v.spec),
                            v.spec.replicas.to_string(),
                            mark.into(),
                        ]);
                    }
                    println!("{t}");
                }
                Err(e) => return Ok(report(&e)),
            }
        }
        ServiceCmd::Rollback { name, version } => {
            let body = serde_json::json!({ "version": version });
            let path = format!("/v1/services/{}/rollback", path_name(&name));
            match client
                .json::<ServiceChange>(Method::POST, &path, Some(&body))
                .await
            {
                Ok(c) if json => print_json(&c),
                Ok(c) => println!("{}", describe(&c, "rolled back")),
                Err(e) => return Ok(report(&e)),
            }
        }
    }
    Ok(0)
}
