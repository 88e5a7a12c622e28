//! `hoist cluster ...`: status, members, member add/remove, snapshot save/restore; login, logout
//! and the audit log are in `token.rs`.

use crate::controller_client::{report, ControllerClient};
use comfy_table::Table;
use hoist_proto::cluster::{ClusterStatus, Member};
use reqwest::Method;
use std::path::PathBuf;

/// Cluster commands.
/// Who a join token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TokenRole {
    Worker,
    Manager,
}

#[derive(Debug, clap::Subcommand)]
pub enum ClusterCmd {
    /// Leader, term and every member's role, log position and state hash.
    Status,
    /// List members.
    Members,
    /// Add a member that is already running (normally it joins by itself with --join).
    MemberAdd {
        id: u64,
        address: String,
        /// Add as a non-voting learner.
        #[arg(long)]
        learner: bool,
    },
    /// Remove a member.
    MemberRm { id: u64 },
    /// Print the join token agents need (`hoist-agent --join TOKEN`); made once per cluster.
    /// Format: `HOIST2-<cluster id, 16 hex>-<root CA digest, 64 hex>-<secret, 32 hex>`: an
    /// agent checks that the controllers it reaches hold a certificate under the root with that
    /// digest before it sends anything (no trust on first use). A cluster still being upgraded
    /// (below format 2) hands out `HOIST1-<cluster id>-<secret>` tokens, without the digest.
    Token {
        /// `worker`: for agents (`hoist-agent --join TOKEN`). `manager`: for controller members
        /// (`hoist-controller --join ADDR --token TOKEN`), which it lets add themselves and
        /// nothing else; it carries the root's digest too, and is made at its first request.
        #[arg(long, value_enum, default_value = "worker")]
        role: TokenRole,
        /// Make a new secret: the old token registers no node (adds no member) from now on;
        /// nodes and members already joined keep working. After `hoist node rm` of a node whose
        /// host you no longer trust, rotate the worker token so that its agent cannot join
        /// again.
        #[arg(long)]
        rotate: bool,
    },
    /// Print the cluster's root certificate (PEM; with `-o json` also its digest, the one join
    /// tokens carry, the roots trusted now and how far a rotation is), e.g. for `curl
    /// --cacert`: members' certificates name `hoist-controller` and their address. `rotate`
    /// replaces the root.
    Ca {
        #[command(subcommand)]
        cmd: Option<crate::ca::CaCmd>,
    },
    /// Save or restore the replicated state.
    #[command(subcommand)]
    Snapshot(SnapshotCmd),
    /// Check an operator token with the controllers and keep it for later commands (mode 0600
    /// file under ~/.config/hoist). The token comes from --token, HOIST_TOKEN, or standard input.
    Login,
    /// Forget the kept operator token.
    Logout,
    /// Autolock (admins): `on` keeps every member's private key encrypted with an unlock key,
    /// printed once (a new one each time); after a restart a member opens no secret until
    /// `hoist cluster unlock`. `off` keeps the keys in the clear again.
    Autolock {
        #[arg(value_parser = ["on", "off"])]
        state: String,
    },
    /// Give locked members the unlock key: every member named by --controller is asked (those
    /// not locked say so). The key comes from --key, HOIST_UNLOCK_KEY, or standard input.
    Unlock {
        #[arg(long, env = "HOIST_UNLOCK_KEY", hide_env_values = true)]
        key: Option<String>,
    },
    /// Operators' writes, newest last: who, when, what, and whether it was refused (admins).
    Audit {
        /// At most this many entries.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
}

/// `hoist cluster snapshot ...`
#[derive(Debug, clap::Subcommand)]
pub enum SnapshotCmd {
    /// Download the state to FILE.
    Save { file: PathBuf },
    /// Replace the whole cluster state with FILE.
    Restore { file: PathBuf },
}

fn members_table(members: &[Member]) -> Table {
    let mut t = Table::new();
    t.load_preset(comfy_table::presets::NOTHING);
    t.set_header(["ID", "ADDRESS", "VOTER", "VERSION"]);
    for m in members {
        t.add_row([
            m.id.to_string(),
            m.address.clone(),
            m.voter.to_string(),
            m.version.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    t
}

/// Runs one cluster command; answers the exit code. `token` is the one given by `--token` or
/// `HOIST_TOKEN` (for `login`).
pub async fn run(
    cmd: ClusterCmd,
    controllers: &[String],
    token: Option<String>,
    json: bool,
) -> anyhow::Result<i32> {
    let client = ControllerClient::new(controllers)?;
    match cmd {
        ClusterCmd::Login => return crate::token::login(controllers, token, json).await,
        ClusterCmd::Logout => return crate::token::logout(json),
        ClusterCmd::Audit { limit } => return crate::token::audit(controllers, limit, json).await,
        ClusterCmd::Autolock { state } => {
            let body = serde_json::json!({ "enabled": state == "on" });
            match client
                .json::<serde_json::Value>(Method::POST, "/v1/cluster/autolock", Some(&body))
                .await
            {
                Ok(v) if json => println!("{}", serde_json::to_string_pretty(&v)?),
                Ok(v) => match v["unlock_key"].as_str() {
                    Some(key) => {
                        eprintln!(
                            "autolock is on. The unlock key, shown once: keep it safe; every member \
                             needs it after a restart (hoist cluster unlock)"
                        );
                        println!("{key}");
                    }
                    None => println!("autolock is off"),
                },
                Err(e) => return Ok(report(&e)),
            }
        }
        ClusterCmd::Unlock { key } => return unlock(controllers, key, json).await,
        ClusterCmd::Ca { cmd: None } => return crate::ca::show(&client, json).await,
        ClusterCmd::Ca {
            cmd: Some(crate::ca::CaCmd::Rotate { detach, timeout }),
        } => return crate::ca::rotate(client, detach, timeout, json).await,
        ClusterCmd::Token { role, rotate } => {
            let route = if rotate {
                "/v1/cluster/token/rotate"
            } else {
                "/v1/cluster/token"
            };
            let path = match role {
                TokenRole::Worker => route.to_string(),
                TokenRole::Manager => format!("{route}?role=manager"),
            };
            let method = if rotate { Method::POST } else { Method::GET };
            match client
                .json::<hoist_proto::cluster::JoinToken>(method, &path, None)
                .await
            {
                Ok(t) if json => println!("{}", serde_json::to_string_pretty(&t)?),
                Ok(t) => println!("{}", t.token),
                Err(e) => return Ok(report(&e)),
            }
        }
        ClusterCmd::Status => {
            let st = match client
                .json::<ClusterStatus>(Method::GET, "/v1/cluster/status", None)
                .await
            {
                Ok(s) => s,
                Err(e) => return Ok(report(&e)),
            };
            let mut views = Vec::new();
            for m in &st.members {
                views.push((m.clone(), client.status_of(&m.address).await));
            }
            // A member says its own version; one that does not answer, as the other last heard.
            let version_of = |m: &Member, s: &Option<ClusterStatus>| match s {
                Some(s) => (Some(s.version.clone()), Some(s.format)),
                None => (m.version.clone(), m.format),
            };
            if json {
                let v: Vec<_> = views
                    .iter()
                    .map(|(m, s)| {
                        let (version, format) = version_of(m, s);
                        serde_json::json!({
                            "member": m,
                            "version": version,
                            "format": format,
                            "status": s,
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(0);
            }
            match (st.leader, &st.leader_address) {
                (Some(id), Some(addr)) => println!("leader: {id} at {addr}, term {}", st.term),
                _ => println!("leader: none known (term {})", st.term),
            }
            println!("cluster format: {}", st.cluster_format);
            let mut t = Table::new();
            t.load_preset(comfy_table::presets::NOTHING);
            t.set_header([
                "ID",
                "ADDRESS",
                "VOTER",
                "ROLE",
                "TERM",
                "APPLIED",
                "STATE HASH",
                "VERSION",
            ]);
            for (m, s) in views {
                let version = match version_of(&m, &s) {
                    (Some(v), Some(f)) => format!("{v} (format {f})"),
                    _ => "-".into(),
                };
                let (role, term, applied, hash) = match s {
                    Some(s) => (
                        s.role,
                        s.term.to_string(),
                        s.last_applied.map_or("-".into(), |i| i.to_string()),
                        s.state_hash[..12].to_string(),
                    ),
                    None => ("unreachable".into(), "-".into(), "-".into(), "-".into()),
                };
                t.add_row([
                    m.id.to_string(),
                    m.address,
                    m.voter.to_string(),
                    role,
                    term,
                    applied,
                    hash,
                    version,
                ]);
            }
            println!("{t}");
        }
        ClusterCmd::Members => match client
            .json::<Vec<Member>>(Method::GET, "/v1/cluster/members", None)
            .await
        {
            Ok(m) if json => println!("{}", serde_json::to_string_pretty(&m)?),
            Ok(m) => println!("{}", members_table(&m)),
            Err(e) => return Ok(report(&e)),
        },
        ClusterCmd::MemberAdd {
            id,
            address,
            learner,
        } => {
            let body = serde_json::json!({ "id": id, "address": address, "learner": learner });
            match client
                .json::<Vec<Member>>(Method::POST, "/v1/cluster/members", Some(&body))
                .await
            {
                Ok(m) if json => println!("{}", serde_json::to_string_pretty(&m)?),
                Ok(m) => println!("{}", members_table(&m)),
                Err(e) => return Ok(report(&e)),
            }
        }
        ClusterCmd::MemberRm { id } => {
            match client
                .json::<Vec<Member>>(Method::DELETE, &format!("/v1/cluster/members/{id}"), None)
                .await
            {
                Ok(m) if json => println!("{}", serde_json::to_string_pretty(&m)?),
                Ok(m) => println!("{}", members_table(&m)),
                Err(e) => return Ok(report(&e)),
            }
        }
        ClusterCmd::Snapshot(SnapshotCmd::Save { file }) => {
            match client.call(Method::GET, "/v1/cluster/snapshot", None).await {
                Ok(bytes) => {
                    std::fs::write(&file, &bytes)
                        .map_err(|e| anyhow::anyhow!("writing {}: {e}", file.display()))?;
                    if json {
                        println!(
                            "{}",
                            serde_json::json!({ "file": file, "bytes": bytes.len() })
                        );
                    } else {
                        println!("saved {} bytes to {}", bytes.len(), file.display());
                    }
                }
                Err(e) => return Ok(report(&e)),
            }
        }
        ClusterCmd::Snapshot(SnapshotCmd::Restore { file }) => {
            let bytes = std::fs::read(&file)
                .map_err(|e| anyhow::anyhow!("reading {}: {e}", file.display()))?;
            let body = Some(("application/octet-stream", bytes));
            match client
                .call(Method::POST, "/v1/cluster/snapshot", body)
                .await
            {
                Ok(out) if json => println!("{}", String::from_utf8_lossy(&out)),
                Ok(_) => println!("restored the cluster state from {}", file.display()),
                Err(e) => return Ok(report(&e)),
            }
        }
    }
    Ok(0)
}

/// `hoist cluster unlock`: each member is asked by itself (a member unlocks only its own key).
async fn unlock(controllers: &[String], key: Option<String>, json: bool) -> anyhow::Result<i32> {
    let key = match key {
        Some(k) => k.trim().to_string(),
        None => {
            eprintln!("paste the unlock key (HOISTUK1-...), then Enter:");
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            line.trim().to_string()
        }
    };
    if key.is_empty() {
        anyhow::bail!("no unlock key given: pass --key, set HOIST_UNLOCK_KEY, or paste it");
    }
    let body = serde_json::json!({ "key": key });
    let mut code = 0;
    let mut results = Vec::new();
    for addr in controllers {
        let client = ControllerClient::new(std::slice::from_ref(addr))?;
        let outcome = match client
            .json::<serde_json::Value>(Method::POST, "/v1/cluster/unlock", Some(&body))
            .await
        {
            Ok(_) => "unlocked".to_string(),
            Err(crate::controller_client::CallError::Api { body, .. })
                if body.code == "not_locked" =>
            {
                "not locked".to_string()
            }
            Err(e) => {
                code = 1;
                format!("error: {e}")
            }
        };
        results.push(serde_json::json!({ "controller": addr, "result": outcome }));
        if !json {
            println!("{addr}: {outcome}");
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    }
    Ok(code)
}
