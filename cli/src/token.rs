//! `hoist token create|ls|rm` (operators' tokens, admins only), `hoist cluster login|logout`
//! (keep a token for later commands), and `hoist cluster audit` (who wrote what).

use crate::controller_client::{report, ControllerClient};
use crate::credentials::{self, Saved};
use crate::output;
use reqwest::Method;
use serde::Deserialize;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub const TOKEN_EXAMPLES: &str = "\
Roles:
  viewer    reads everything but the audit log, tokens and snapshots
  deployer  a viewer who also applies, scales, rolls back and removes services and stacks,
            and runs commands in replicas (hoist service exec)
  admin     everything: tokens, members, nodes, snapshots, join tokens, the audit log

Examples:
  hoist token create ci --role deployer     # prints the token once
  HOIST_TOKEN=HOISTOP2-... hoist service ls
  hoist token ls
  hoist token rm ci";

/// `hoist token ...`
#[derive(Debug, clap::Subcommand)]
pub enum TokenCmd {
    /// Make an operator token; it is printed once and never shown again.
    Create {
        /// A unique name (lowercase letters, digits, `-`, `_`, `.`): the audit log names it.
        name: String,
        /// What it may do: admin, deployer or viewer.
        #[arg(long, value_parser = ["admin", "deployer", "viewer"])]
        role: String,
    },
    /// List operator tokens: names, roles, when made and last used (never their secrets).
    Ls,
    /// Revoke a token at once (the last admin token cannot be removed).
    Rm { name: String },
}

#[derive(Debug, Deserialize, serde::Serialize)]
struct TokenView {
    name: String,
    role: String,
    id: String,
    created_ms: u64,
    created_by: String,
    last_used_ms: u64,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

pub(crate) fn ago(ms: u64, now: u64) -> String {
    if ms == 0 {
        return "never".into();
    }
    format!(
        "{} ago",
        output::human_duration(Duration::from_millis(now.saturating_sub(ms)))
    )
}

pub async fn run(cmd: TokenCmd, controllers: &[String], json: bool) -> anyhow::Result<i32> {
    let client = ControllerClient::new(controllers)?;
    match cmd {
        TokenCmd::Create { name, role } => {
            let body = serde_json::json!({ "name": name, "role": role });
            match client
                .json::<serde_json::Value>(Method::POST, "/v1/tokens", Some(&body))
                .await
            {
                Ok(v) if json => output::json(&v),
                Ok(v) => {
                    eprintln!(
                        "token {name} ({role}), shown once: keep it (HOIST_TOKEN, --token, or `hoist cluster login`)"
                    );
                    println!("{}", v["token"].as_str().unwrap_or_default());
                }
                Err(e) => return Ok(report(&e)),
            }
        }
        TokenCmd::Ls => {
            let header = ["NAME", "ROLE", "ID", "CREATED", "CREATED BY", "LAST USED"];
            return list(&client, "/v1/tokens", json, &header, |t: TokenView, now| {
                vec![
                    t.name,
                    t.role,
                    t.id,
                    ago(t.created_ms, now),
                    t.created_by,
                    ago(t.last_used_ms, now),
                ]
            })
            .await;
        }
        TokenCmd::Rm { name } => {
            match client
                .call(Method::DELETE, &format!("/v1/tokens/{name}"), None)
                .await
            {
                Ok(_) if json => output::json(&serde_json::json!({ "removed": name })),
                Ok(_) => println!("removed token {name}"),
                Err(e) => return Ok(report(&e)),
            }
        }
    }
    Ok(0)
}

#[derive(Debug, Deserialize)]
struct WhoAmI {
    name: Option<String>,
    role: Option<String>,
    cluster_id: Option<String>,
}

/// `hoist cluster login`: checks the token (`given` by `--token` or `HOIST_TOKEN`, else read
/// from standard input) with the controllers and keeps it.
pub async fn login(
    controllers: &[String],
    given: Option<String>,
    json: bool,
) -> anyhow::Result<i32> {
    let token = match given {
        Some(t) => t.trim().to_string(),
        None => {
            eprintln!("paste the operator token (HOISTOP2-... or HOISTOP1-...), then Enter:");
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            line.trim().to_string()
        }
    };
    if token.is_empty() {
        anyhow::bail!("no token given: pass --token, set HOIST_TOKEN, or paste one");
    }
    let Some(cluster) = credentials::cluster_of(&token).map(str::to_string) else {
        anyhow::bail!(
            "not an operator token: they look like HOISTOP2-<cluster>-<CA digest>-<id>-<secret>"
        );
    };
    let client = ControllerClient::new(controllers)?.with_token(&token)?;
    let who = match client.json::<WhoAmI>(Method::GET, "/v1/whoami", None).await {
        Ok(w) => w,
        Err(e) => return Ok(report(&e)),
    };
    if let Some(id) = who.cluster_id.as_deref().filter(|id| *id != cluster) {
        anyhow::bail!("the controllers belong to cluster {id}, the token to cluster {cluster}");
    }
    // The root, fetched over the connection the token's digest verified: kept with the token.
    let ca_certificate = match credentials::ca_digest_of(&token) {
        Some(_) => client
            .json::<serde_json::Value>(Method::GET, "/v1/cluster/ca", None)
            .await
            .ok()
            .and_then(|ca| ca["certificate"].as_str().map(str::to_string)),
        None => None,
    };
    let saved = Saved {
        token,
        cluster_id: who.cluster_id.clone(),
        name: who.name.clone(),
        role: who.role.clone(),
        controllers: controllers.to_vec(),
        ca_certificate,
    };
    credentials::save(&saved).map_err(anyhow::Error::msg)?;
    if json {
        output::json(&serde_json::json!({
            "cluster_id": saved.cluster_id, "name": saved.name, "role": saved.role,
            "file": credentials::path(),
        }));
    } else {
        println!(
            "logged in to cluster {} as {} ({}); credentials in {}",
            saved.cluster_id.as_deref().unwrap_or("?"),
            saved.name.as_deref().unwrap_or("?"),
            saved.role.as_deref().unwrap_or("?"),
            credentials::path().display()
        );
    }
    Ok(0)
}

/// `hoist cluster logout`
pub fn logout(json: bool) -> anyhow::Result<i32> {
    let had = credentials::forget().map_err(anyhow::Error::msg)?;
    if json {
        output::json(&serde_json::json!({ "removed": had }));
    } else if had {
        println!(
            "forgot the credentials in {}",
            credentials::path().display()
        );
    } else {
        println!("no saved credentials");
    }
    Ok(0)
}

#[derive(Debug, Deserialize, serde::Serialize)]
struct AuditEntry {
    index: u64,
    time_ms: u64,
    actor: String,
    action: String,
    #[serde(default)]
    error: Option<String>,
}

/// `hoist cluster audit`
pub async fn audit(controllers: &[String], limit: usize, json: bool) -> anyhow::Result<i32> {
    let client = ControllerClient::new(controllers)?;
    let path = format!("/v1/cluster/audit?limit={limit}");
    let header = ["WHEN", "WHO", "WHAT", "OUTCOME"];
    list(&client, &path, json, &header, |e: AuditEntry, now| {
        vec![
            ago(e.time_ms, now),
            e.actor,
            e.action,
            e.error.map_or("ok".into(), |m| format!("refused: {m}")),
        ]
    })
    .await
}

/// GETs the list at `path` and prints it: as JSON, or as a table of `row`s (given the time now).
pub(crate) async fn list<T: serde::de::DeserializeOwned + serde::Serialize>(
    client: &ControllerClient,
    path: &str,
    json: bool,
    header: &[&str],
    row: impl Fn(T, u64) -> Vec<String>,
) -> anyhow::Result<i32> {
    match client.json::<Vec<T>>(Method::GET, path, None).await {
        Ok(v) if json => output::json(&v),
        Ok(v) => {
            let now = now_ms();
            output::table(header, v.into_iter().map(|t| row(t, now)).collect());
        }
        Err(e) => return Ok(report(&e)),
    }
    Ok(0)
}
