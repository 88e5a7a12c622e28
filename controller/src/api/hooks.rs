//! Autoscaling over HTTP: the hooks monitors push to (`POST /v1/hooks/alertmanager`,
//! `POST /v1/services/{name}/scale-hook`), their tokens (`/v1/hooks/tokens`), and each
//! service's decision history (`GET /v1/services/{name}/autoscale`).
//!
//! Hooks run on the leader (the forwarder sends them there): the stabilization window lives in
//! its memory. They authenticate with hook tokens only, never operator credentials, and answer
//! 401 while no token exists. A payload is checked whole before anything is applied.

use super::body::json;
use super::error::ApiError;
use super::{read, write, Ctx};
use crate::autoscale::policy::Ask;
use crate::autoscale::{alertmanager, tokens, DecideError, Request};
use crate::raft::ConsensusError;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use hoist_proto::cluster::{AutoscaleOutcome, AutoscaleSource, AutoscaleStatus, HookToken};
use hoist_proto::raft::{Command, Response};
use serde::{Deserialize, Serialize};

/// `POST /v1/services/{name}/scale-hook`: one of `direction`, `replicas` or `value`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScaleHook {
    #[serde(default)]
    pub direction: Option<Direction>,
    #[serde(default)]
    pub replicas: Option<i64>,
    /// A value for the proportional policy (`[autoscale] target`).
    #[serde(default)]
    pub value: Option<f64>,
    /// Why, for the history (default: `scale-hook`).
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Up,
    Down,
}

/// The answer of a hook: one entry per decision made.
#[derive(Debug, Serialize)]
pub struct HookAnswer {
    pub decisions: Vec<AutoscaleOutcome>,
    /// Alerts of the payload that asked nothing (resolved).
    pub ignored: usize,
}

/// `POST /v1/hooks/tokens` body.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    #[serde(default)]
    pub service: Option<String>,
}

/// `POST /v1/hooks/tokens` answer: the token, shown this once.
#[derive(Debug, Serialize)]
pub struct CreatedToken {
    pub id: String,
    pub token: String,
    pub service: Option<String>,
}

/// `POST /v1/hooks/alertmanager`
pub async fn alertmanager(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<HookAnswer>, ApiError> {
    ensure_leader(&ctx)?;
    let token = authenticate(&ctx, &headers)?;
    let payload: alertmanager::Payload = json(&headers, &body, "Alertmanager payload")?;
    let asks = alertmanager::asks(&payload)
        .map_err(|e| ApiError::field(StatusCode::BAD_REQUEST, &e.field, e.message))?;
    // Every alert's service is checked before any is applied: a bad one changes nothing.
    for a in &asks {
        allowed(&token, &a.service)?;
        check_service(&ctx, &a.service)?;
    }
    let ignored = payload.alerts.len() - asks.len();
    let mut decisions = vec![];
    for a in asks {
        let ask = match (a.value, target_of(&ctx, &a.service)) {
            (Some(value), Some(target)) => Ask::Value { value, target },
            _ => Ask::Step { up: a.up },
        };
        let direction = if a.up { "up" } else { "down" };
        let req = Request {
            service: a.service.clone(),
            source: AutoscaleSource::Alertmanager,
            ask,
            reason: format!("alert {} firing (hoist_scale={direction})", a.name),
            dedup: Some(a.dedup),
            record_unchanged: true,
        };
        if let Some(o) = decide(&ctx, req).await? {
            decisions.push(o);
        }
    }
    Ok(Json(HookAnswer { decisions, ignored }))
}

/// `POST /v1/services/{name}/scale-hook`
pub async fn scale_hook(
    State(ctx): State<Ctx>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<HookAnswer>, ApiError> {
    ensure_leader(&ctx)?;
    let token = authenticate(&ctx, &headers)?;
    let hook: ScaleHook = json(&headers, &body, "scale hook")?;
    let (ask, what) = match (hook.direction, hook.replicas, hook.value) {
        (Some(d), None, None) => {
            let up = matches!(d, Direction::Up);
            (Ask::Step { up }, if up { "up" } else { "down" }.to_string())
        }
        (None, Some(n), None) => (Ask::Replicas(n), format!("{n} replicas")),
        (None, None, Some(v)) if v.is_finite() && v >= 0.0 => {
            let target = target_of(&ctx, &name).ok_or_else(|| {
                ApiError::field(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "value",
                    format!("service {name:?} has no [autoscale] target to scale a value toward"),
                )
            })?;
            (Ask::Value { value: v, target }, format!("value {v}"))
        }
        (None, None, Some(v)) => {
            return Err(ApiError::field(
                StatusCode::BAD_REQUEST,
                "value",
                format!("{v} is not a number ≥ 0"),
            ))
        }
        _ => {
            return Err(ApiError::bad_request(
                "give exactly one of direction (\"up\" or \"down\"), replicas or value",
            ))
        }
    };
    allowed(&token, &name)?;
    check_service(&ctx, &name)?;
    let reason = match hook.reason {
        Some(r) if !r.trim().is_empty() => format!("scale-hook {what}: {}", r.trim()),
        _ => format!("scale-hook {what}"),
    };
    let req = Request {
        service: name,
        source: AutoscaleSource::Hook,
        ask,
        reason,
        dedup: None,
        record_unchanged: true,
    };
    let decisions = decide(&ctx, req).await?.into_iter().collect();
    Ok(Json(HookAnswer {
        decisions,
        ignored: 0,
    }))
}

/// `GET /v1/services/{name}/autoscale`
pub async fn status(
    State(ctx): State<Ctx>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<AutoscaleStatus>, ApiError> {
    let status = read(&ctx, q, |s| {
        let record = s.services.get(&name)?;
        let spec = &record.current().spec;
        let log = s.autoscale.get(&name);
        Some(AutoscaleStatus {
            service: name.clone(),
            replicas: spec.replicas,
            autoscale: spec.autoscale.clone(),
            decisions: log
                .map(|l| l.decisions.iter().map(|d| (**d).clone()).collect())
                .unwrap_or_default(),
            total: log.map_or(0, |l| l.total),
        })
    })
    .await?;
    status
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("service {name:?} not found")))
}

/// `GET /v1/hooks/tokens`: ids, scopes and creation times (never secrets).
pub async fn list_tokens(
    State(ctx): State<Ctx>,
    RawQuery(q): RawQuery,
) -> Result<Json<Vec<HookToken>>, ApiError> {
    Ok(Json(
        read(&ctx, q, |s| s.hook_tokens.values().cloned().collect()).await?,
    ))
}

/// `POST /v1/hooks/tokens`
pub async fn create_token(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    let req: NewToken = if body.is_empty() {
        NewToken::default()
    } else {
        json(&headers, &body, "token request")?
    };
    if let Some(service) = &req.service {
        if let Err(m) =
            hoist_proto::service::validate_name_in(service, hoist_proto::format::CURRENT)
        {
            return Err(ApiError::field(
                StatusCode::UNPROCESSABLE_ENTITY,
                "service",
                m,
            ));
        }
    }
    let (token, record) = tokens::generate(req.service.clone(), crate::autoscale::now_ms());
    let id = record.id.clone();
    match write(&ctx, Command::CreateHookToken(record)).await? {
        Response::Ok => Ok((
            StatusCode::CREATED,
            Json(CreatedToken {
                id,
                token,
                service: req.service,
            }),
        )),
        Response::Error(e) => Err(e.into()),
        other => Err(super::services::unexpected(&other)),
    }
}

/// `DELETE /v1/hooks/tokens/{id}`
pub async fn remove_token(
    State(ctx): State<Ctx>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    match write(&ctx, Command::RemoveHookToken { id }).await? {
        Response::Ok => Ok(StatusCode::NO_CONTENT),
        Response::Error(e) => Err(e.into()),
        other => Err(super::services::unexpected(&other)),
    }
}

/// Hooks need the leader's memory: elsewhere, answer "not the leader" (the forwarder retries
/// there).
fn ensure_leader(ctx: &Ctx) -> Result<(), ApiError> {
    if ctx.node.is_leader() {
        return Ok(());
    }
    let leader = ctx.node.leader().filter(|(id, _)| *id != ctx.node.id());
    Err(ConsensusError::NotLeader { leader }.into())
}

/// The hook token the request carries, checked.
fn authenticate(ctx: &Ctx, headers: &HeaderMap) -> Result<HookToken, ApiError> {
    let unauthorized = |m: &str| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", m);
    let (any, presented) = ctx.node.stale_read(|s| {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .and_then(tokens::parse)
            .and_then(|(id, secret)| {
                let t = s.hook_tokens.get(id)?;
                tokens::verify(t, secret).then(|| t.clone())
            });
        (!s.hook_tokens.is_empty(), presented)
    });
    if !any {
        return Err(unauthorized(
            "no hook token exists yet: create one with `hoist hook token create` and send it as `Authorization: Bearer TOKEN`",
        ));
    }
    presented.ok_or_else(|| {
        unauthorized("a valid hook token is required (`Authorization: Bearer HOISTHOOK-...`)")
    })
}

/// Whether `token` may scale `service`.
fn allowed(token: &HookToken, service: &str) -> Result<(), ApiError> {
    match &token.service {
        Some(s) if s != service => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "hook token {} may scale only service {s:?}, not {service:?}",
                token.id
            ),
        )),
        _ => Ok(()),
    }
}

/// 404 for an unknown service, 409 for one without bounds.
fn check_service(ctx: &Ctx, service: &str) -> Result<(), ApiError> {
    let bounds = ctx.node.stale_read(|s| {
        s.services
            .get(service)
            .map(|r| r.current().spec.autoscale.is_some())
    });
    match bounds {
        None => Err(ApiError::not_found(format!(
            "service {service:?} not found"
        ))),
        Some(false) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_autoscaled",
            format!("service {service:?} has no [autoscale] bounds: add them to scale it by hook"),
        )),
        Some(true) => Ok(()),
    }
}

/// The proportional target of `service`'s pushed values (`target`, else `target_value`).
fn target_of(ctx: &Ctx, service: &str) -> Option<f64> {
    ctx.node.stale_read(|s| {
        let a = s.services.get(service)?.current().spec.autoscale.clone()?;
        a.target.or(a.target_value).map(|n| n.0)
    })
}

async fn decide(ctx: &Ctx, req: Request) -> Result<Option<AutoscaleOutcome>, ApiError> {
    ctx.leader
        .autoscaler
        .decide(&ctx.node, req)
        .await
        .map_err(|e| match e {
            DecideError::Refused(e) => e.into(),
            DecideError::Write(e) => e.into(),
        })
}
