//! `hoist secret create|ls|inspect|rm` and `hoist config create|ls|inspect|rm`: named, versioned
//! files that services' replicas see in their filesystem. The CLI sends a secret's content once
//! and never prints it; no command reads it back.

use crate::controller_client::{report, ControllerClient};
use crate::output;
use crate::token::{ago, list};
use hoist_proto::files::{validate_content, validate_file_name, FileKind};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use std::io::Read;

pub const SECRET_EXAMPLES: &str = "\
A service references a secret in its spec; its replicas see it as a file on a tmpfs, never on
a node's disk. Creating an existing name makes a new version, which replaces the file in every
running replica at once (with on_update = \"signal:SIGHUP\", the replica is also signalled).

  secrets = [{ source = \"db-pass\", target = \"/run/secrets/db-pass\", mode = \"0400\", uid = 0 }]

Examples:
  printf %s \"$PASSWORD\" | hoist secret create db-pass -f -
  hoist secret create tls-key -f ./server.key
  hoist secret ls
  hoist secret inspect db-pass        # version, size, times, users (never the value)
  hoist secret rm db-pass             # refused while a service uses it";

pub const CONFIG_EXAMPLES: &str = "\
A service references a config in its spec as it does a secret (`configs = [{ source =
\"nginx.conf\", target = \"/etc/nginx/nginx.conf\" }]`); a new version replaces the file in every
running replica.

Examples:
  hoist config create nginx.conf -f ./nginx.conf
  hoist config ls
  hoist config inspect nginx.conf
  hoist config rm nginx.conf";

/// `hoist secret ...` / `hoist config ...`
#[derive(Debug, clap::Subcommand)]
pub enum FileCmd {
    /// Create it from a file (or standard input with `-f -`); an existing name gets a new
    /// version, which running replicas see at once. At most 500 KiB.
    Create {
        /// Letters, digits, `-`, `_`, `.`; starting with a letter or digit; at most 64.
        name: String,
        /// The content: a file, or `-` for standard input.
        #[arg(short = 'f', long = "file", value_name = "FILE")]
        file: String,
    },
    /// List them: name, version, size, creation and last update (never the content).
    Ls,
    /// Show one: version, size, times and the services that use it (never the content).
    Inspect { name: String },
    /// Remove them (refused while a service uses one).
    Rm {
        #[arg(required = true)]
        names: Vec<String>,
    },
}

#[derive(Debug, Deserialize, Serialize)]
struct FileView {
    kind: String,
    name: String,
    version: u64,
    created_ms: u64,
    updated_ms: u64,
    size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    services: Option<Vec<String>>,
}

fn plural(kind: FileKind) -> &'static str {
    kind.spec_key()
}

/// Reads the content to send: at most 500 KiB (checked here too, for a clear error before any
/// byte leaves).
fn read_content(kind: FileKind, file: &str) -> anyhow::Result<Vec<u8>> {
    let limit = hoist_proto::files::MAX_FILE_BYTES as u64 + 1;
    let mut data = Vec::new();
    if file == "-" {
        std::io::stdin().take(limit).read_to_end(&mut data)?;
    } else {
        std::fs::File::open(file)
            .map_err(|e| anyhow::anyhow!("{file}: {e}"))?
            .take(limit)
            .read_to_end(&mut data)
            .map_err(|e| anyhow::anyhow!("{file}: {e}"))?;
    }
    validate_content(kind, &data).map_err(anyhow::Error::msg)?;
    Ok(data)
}

pub async fn run(
    kind: FileKind,
    cmd: FileCmd,
    controllers: &[String],
    json: bool,
) -> anyhow::Result<i32> {
    let client = ControllerClient::new(controllers)?;
    let base = format!("/v1/{}", plural(kind));
    match cmd {
        FileCmd::Create { name, file } => {
            validate_file_name(&name).map_err(anyhow::Error::msg)?;
            let data = read_content(kind, &file)?;
            let path = format!("{base}/{name}");
            let body = Some(("application/octet-stream", data));
            match client.call(Method::PUT, &path, body).await {
                Ok(bytes) => {
                    let v: FileView = serde_json::from_slice(&bytes)?;
                    if json {
                        output::json(&v);
                    } else if v.version == 1 {
                        println!("created {kind} {} ({} bytes)", v.name, v.size);
                    } else {
                        println!(
                            "{kind} {}: version {} ({} bytes) replaces the file in running replicas",
                            v.name, v.version, v.size
                        );
                    }
                }
                Err(e) => return Ok(report(&e)),
            }
        }
        FileCmd::Ls => {
            let header = ["NAME", "VERSION", "SIZE", "CREATED", "UPDATED"];
            return list(&client, &base, json, &header, |f: FileView, now| {
                vec![
                    f.name,
                    f.version.to_string(),
                    f.size.to_string(),
                    ago(f.created_ms, now),
                    ago(f.updated_ms, now),
                ]
            })
            .await;
        }
        FileCmd::Inspect { name } => {
            let path = format!("{base}/{name}");
            match client.json::<FileView>(Method::GET, &path, None).await {
                Ok(v) if json => output::json(&v),
                Ok(v) => {
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_millis() as u64);
                    println!("Name:     {}", v.name);
                    println!("Kind:     {}", v.kind);
                    println!("Version:  {}", v.version);
                    println!("Size:     {} bytes", v.size);
                    println!("Created:  {}", ago(v.created_ms, now));
                    println!("Updated:  {}", ago(v.updated_ms, now));
                    let users = v.services.unwrap_or_default();
                    let users = if users.is_empty() {
                        "none".to_string()
                    } else {
                        users.join(", ")
                    };
                    println!("Used by:  {users}");
                }
                Err(e) => return Ok(report(&e)),
            }
        }
        FileCmd::Rm { names } => {
            let mut code = 0;
            for name in names {
                let path = format!("{base}/{name}");
                match client.call(Method::DELETE, &path, None).await {
                    Ok(_) if json => output::json(&serde_json::json!({ "removed": name })),
                    Ok(_) => println!("removed {kind} {name}"),
                    Err(e) => code = report(&e),
                }
            }
            return Ok(code);
        }
    }
    Ok(0)
}
