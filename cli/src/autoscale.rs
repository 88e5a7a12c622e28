//! `hoist service autoscale history NAME` and `hoist hook token create|ls|rm`: what the
//! autoscaler decided and why, and the tokens monitors call the scaling hooks with.

use crate::controller_client::{report, ControllerClient};
use crate::output;
use hoist_proto::cluster::{AutoscaleDecision, AutoscaleStatus, HookToken};
use reqwest::Method;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `hoist service autoscale ...`
#[derive(Debug, clap::Subcommand)]
pub enum AutoscaleCmd {
    /// Every scaling decision kept for the service (the last 100), oldest first: who asked
    /// (alertmanager, hook, query, operator), from → to, why, and what limited it (bounds,
    /// cooldown_up, stabilization_down, a failed query).
    #[command(
        after_help = "Examples:\n  hoist service autoscale history web\n  hoist -o json service autoscale history web | jq '.decisions[-1]'"
    )]
    History { name: String },
}

/// `hoist hook ...`
#[derive(Debug, clap::Subcommand)]
pub enum HookCmd {
    /// Tokens for the scaling hooks (`POST /v1/hooks/alertmanager`,
    /// `POST /v1/services/NAME/scale-hook`), sent as `Authorization: Bearer TOKEN`. Separate from
    /// operator credentials; while none exists the hooks answer 401.
    #[command(subcommand)]
    Token(TokenCmd),
}

#[derive(Debug, clap::Subcommand)]
pub enum TokenCmd {
    /// Make a token and print it once (only its hash is kept).
    #[command(
        after_help = "Examples:\n  hoist hook token create                 # may scale any autoscaled service\n  hoist hook token create --service web   # only web\n\nIn Alertmanager's receiver:\n  webhook_configs:\n    - url: http://MEMBER:7070/v1/hooks/alertmanager\n      http_config:\n        authorization: { credentials: HOISTHOOK-... }"
    )]
    Create {
        /// Only this service may be scaled with it.
        #[arg(long)]
        service: Option<String>,
    },
    /// List tokens: id, scope, age (never the secret).
    Ls,
    /// Revoke a token by its id.
    Rm { id: String },
}

pub async fn history(name: &str, client: &ControllerClient, json: bool) -> anyhow::Result<i32> {
    let path = format!("/v1/services/{}/autoscale", crate::service::path_name(name));
    let status = match client
        .json::<AutoscaleStatus>(Method::GET, &path, None)
        .await
    {
        Ok(s) => s,
        Err(e) => return Ok(report(&e)),
    };
    if json {
        output::json(&status);
        return Ok(0);
    }
    match &status.autoscale {
        Some(a) => println!(
            "{}: {} replicas, autoscale {}..={}{}",
            status.service,
            status.replicas,
            a.min,
            a.max,
            a.query
                .as_ref()
                .map(|q| format!(
                    ", query {q:?} toward {} per replica",
                    a.target_value.map_or(0.0, |t| t.0)
                ))
                .unwrap_or_default()
        ),
        None => println!(
            "{}: {} replicas, no [autoscale] bounds (only `hoist service scale` changes it)",
            status.service, status.replicas
        ),
    }
    if status.decisions.is_empty() {
        println!("no decisions yet");
        return Ok(0);
    }
    let now = now_ms();
    output::table(
        &["WHEN", "SOURCE", "REPLICAS", "REASON", "LIMITED BY"],
        status.decisions.iter().map(|d| row(d, now)).collect(),
    );
    Ok(0)
}

fn row(d: &AutoscaleDecision, now: u64) -> Vec<String> {
    let replicas = if d.to == d.from {
        format!("{} (unchanged)", d.to)
    } else {
        format!("{} -> {}", d.from, d.to)
    };
    vec![
        format!(
            "{} ago",
            output::human_duration(Duration::from_millis(now.saturating_sub(d.time_ms)))
        ),
        d.source.as_str().to_string(),
        replicas,
        d.reason.clone(),
        d.detail.clone(),
    ]
}

pub async fn run_hook(cmd: HookCmd, controllers: &[String], json: bool) -> anyhow::Result<i32> {
    let client = ControllerClient::new(controllers)?;
    let HookCmd::Token(cmd) = cmd;
    match cmd {
        TokenCmd::Create { service } => {
            let body = serde_json::json!({ "service": service });
            match client
                .json::<serde_json::Value>(Method::POST, "/v1/hooks/tokens", Some(&body))
                .await
            {
                Ok(v) if json => output::json(&v),
                Ok(v) => {
                    let token = v["token"].as_str().unwrap_or_default();
                    let scope = service.map_or("any autoscaled service".to_string(), |s| {
                        format!("service {s}")
                    });
                    eprintln!(
                        "hook token {} for {scope} (shown once; send it as `Authorization: Bearer TOKEN`):",
                        v["id"].as_str().unwrap_or_default()
                    );
                    println!("{token}");
                }
                Err(e) => return Ok(report(&e)),
            }
        }
        TokenCmd::Ls => match client
            .json::<Vec<HookToken>>(Method::GET, "/v1/hooks/tokens", None)
            .await
        {
            Ok(list) if json => output::json(&list),
            Ok(list) => {
                let now = now_ms();
                output::table(
                    &["ID", "SERVICE", "CREATED"],
                    list.iter()
                        .map(|t| {
                            vec![
                                t.id.clone(),
                                t.service.clone().unwrap_or_else(|| "(any)".into()),
                                format!(
                                    "{} ago",
                                    output::human_duration(Duration::from_millis(
                                        now.saturating_sub(t.created_ms)
                                    ))
                                ),
                            ]
                        })
                        .collect(),
                );
            }
            Err(e) => return Ok(report(&e)),
        },
        TokenCmd::Rm { id } => {
            match client
                .call(Method::DELETE, &format!("/v1/hooks/tokens/{id}"), None)
                .await
            {
                Ok(_) => println!("hook token {id}: revoked"),
                Err(e) => return Ok(report(&e)),
            }
        }
    }
    Ok(0)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
