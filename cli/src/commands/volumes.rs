//! `hoist volume ls|inspect|rm`: the named volumes of this node's agent (`/v1/volumes`).

use crate::client::{enc, Client, ClientError};
use crate::output::{self, Format};
use clap::Subcommand;
use hoist_proto::VolumeInfo;
use hyper::Method;

#[derive(Debug, Subcommand)]
pub enum VolumeCmd {
    /// List the named volumes of this node.
    #[command(alias = "list")]
    Ls {
        /// Only print names.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Show volumes: mountpoint, creation time, size on disk, containers using them (JSON).
    Inspect {
        #[arg(required = true)]
        volumes: Vec<String>,
    },
    /// Remove volumes and their data (refused while a container uses one).
    #[command(alias = "remove")]
    Rm {
        #[arg(required = true)]
        volumes: Vec<String>,
    },
}

pub async fn run(cmd: VolumeCmd, client: &Client, format: Format) -> Result<i32, ClientError> {
    match cmd {
        VolumeCmd::Ls { quiet } => {
            let list: Vec<VolumeInfo> = client.get("/v1/volumes").await?;
            if quiet {
                list.iter().for_each(|v| println!("{}", v.name));
            } else if format == Format::Json {
                output::json(&list);
            } else {
                output::table(&["VOLUME NAME", "CREATED", "USED BY"], rows(&list));
            }
            Ok(0)
        }
        VolumeCmd::Inspect { volumes } => {
            let mut out = Vec::new();
            let mut code = 0;
            for v in volumes {
                match client
                    .get::<VolumeInfo>(&format!("/v1/volumes/{}", enc(&v)))
                    .await
                {
                    Ok(info) => out.push(info),
                    Err(e @ ClientError::Connect { .. }) => return Err(e),
                    Err(e) => {
                        eprintln!("hoist: {e}");
                        code = 1;
                    }
                }
            }
            output::json(&out);
            Ok(code)
        }
        VolumeCmd::Rm { volumes } => {
            let mut code = 0;
            for v in volumes {
                let path = format!("/v1/volumes/{}", enc(&v));
                match client.call::<()>(Method::DELETE, &path, None::<&()>).await {
                    Ok(()) => println!("{v}"),
                    Err(e @ ClientError::Connect { .. }) => return Err(e),
                    Err(e) => {
                        eprintln!("hoist: {e}");
                        code = 1;
                    }
                }
            }
            Ok(code)
        }
    }
}

/// The table rows of `volume ls`.
fn rows(list: &[VolumeInfo]) -> Vec<Vec<String>> {
    list.iter()
        .map(|v| {
            vec![
                v.name.clone(),
                v.created_at
                    .as_deref()
                    .map(|t| format!("{} ago", output::since(t)))
                    .unwrap_or_default(),
                v.used_by.join(", "),
            ]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_show_name_and_users() {
        let v = VolumeInfo {
            name: "db".into(),
            created_at: None,
            mountpoint: "/d/named-volumes/db/_data".into(),
            size_bytes: None,
            used_by: vec!["a".into(), "b".into()],
        };
        assert_eq!(
            rows(&[v]),
            [vec!["db".to_string(), String::new(), "a, b".into()]]
        );
    }
}
