//! Operators' tokens (`/v1/tokens`), who a token is (`/v1/whoami`), and the audit log of their
//! writes (`/v1/cluster/audit`). A token's secret is answered once, when it is made.

use super::auth::principal;
use super::error::ApiError;
use super::services::unexpected;
use super::{body::json, read, write, Ctx};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use hoist_proto::cluster::{AuditEntry, OperatorToken, Role};
use hoist_proto::raft::{Command, Response};
use serde::{Deserialize, Serialize};

/// `POST /v1/tokens`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    pub name: String,
    pub role: Role,
}

/// A token as listed: never its secret or hash.
#[derive(Debug, Serialize)]
pub struct TokenView {
    pub name: String,
    pub role: Role,
    pub id: String,
    pub created_ms: u64,
    pub created_by: String,
    /// 0: never used.
    pub last_used_ms: u64,
}

impl From<&OperatorToken> for TokenView {
    fn from(t: &OperatorToken) -> TokenView {
        TokenView {
            name: t.name.clone(),
            role: t.role,
            id: t.id.clone(),
            created_ms: t.created_ms,
            created_by: t.created_by.clone(),
            last_used_ms: t.last_used_ms,
        }
    }
}

/// A new token: the only answer that holds its secret.
#[derive(Debug, Serialize)]
pub struct CreatedToken {
    pub name: String,
    pub role: Role,
    pub token: String,
}

/// `GET /v1/tokens`: every operator token, by name.
pub async fn list(
    State(ctx): State<Ctx>,
    RawQuery(q): RawQuery,
) -> Result<Json<Vec<TokenView>>, ApiError> {
    read(&ctx, q, |s| {
        s.operator_tokens.values().map(TokenView::from).collect()
    })
    .await
    .map(Json)
}

/// `POST /v1/tokens` `{"name", "role"}`: answers the token once.
pub async fn create(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    let req: CreateRequest = json(&headers, &body, "token request")?;
    crate::state::valid_token_name(&req.name)
        .map_err(|m| ApiError::field(StatusCode::UNPROCESSABLE_ENTITY, "name", m))?;
    let (cluster_id, ca_digest) = ctx.node.stale_read(|s| {
        (
            s.identity.as_ref().map(|i| i.cluster_id.clone()),
            s.ca.as_ref().map(|c| c.digest.clone()),
        )
    });
    let cluster_id = cluster_id.ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "not_ready",
            "the cluster has no identity yet; retry in a moment",
        )
    })?;
    let by = principal().map_or_else(|| "anonymous".to_string(), |p| p.name);
    let (token, record) = crate::credentials::generate_operator(
        &cluster_id,
        ca_digest.as_deref(),
        &req.name,
        req.role,
        &by,
        crate::autoscale::now_ms(),
    );
    match write(&ctx, Command::CreateOperatorToken(record)).await? {
        Response::Ok => Ok((
            StatusCode::CREATED,
            Json(CreatedToken {
                name: req.name,
                role: req.role,
                token,
            }),
        )),
        Response::Error(e) => Err(e.into()),
        other => Err(unexpected(&other)),
    }
}

/// `DELETE /v1/tokens/{name}`
pub async fn remove(
    State(ctx): State<Ctx>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    match write(&ctx, Command::RemoveOperatorToken { name }).await? {
        Response::Ok => Ok(StatusCode::NO_CONTENT),
        Response::Error(e) => Err(e.into()),
        other => Err(unexpected(&other)),
    }
}

/// `DELETE /v1/tokens/certificate`: [`remove`] for a token named `certificate`. The router
/// matches a path before its method, so the literal `POST /v1/tokens/certificate`
/// (`operator_certs.rs`) would otherwise leave such a token without a way to be revoked.
pub async fn remove_named_certificate(ctx: State<Ctx>) -> Result<StatusCode, ApiError> {
    remove(ctx, Path("certificate".to_string())).await
}

/// `GET /v1/whoami`: the token's name and role, and the cluster's id.
#[derive(Debug, Serialize)]
pub struct WhoAmI {
    /// `None` while the cluster is below format 2 (no credentials yet).
    pub name: Option<String>,
    pub role: Option<Role>,
    pub cluster_id: Option<String>,
}

pub async fn whoami(State(ctx): State<Ctx>) -> Json<WhoAmI> {
    let p = principal();
    Json(WhoAmI {
        name: p.as_ref().map(|p| p.name.clone()),
        role: p.map(|p| p.role),
        cluster_id: ctx
            .node
            .stale_read(|s| s.identity.as_ref().map(|i| i.cluster_id.clone())),
    })
}

/// `GET /v1/cluster/audit[?limit=N]`: the newest writes, oldest first.
pub async fn audit(
    State(ctx): State<Ctx>,
    RawQuery(q): RawQuery,
) -> Result<Json<Vec<AuditEntry>>, ApiError> {
    #[derive(Deserialize)]
    struct AuditQuery {
        limit: Option<usize>,
    }
    let limit = super::query::parse::<AuditQuery>(q.as_deref())?
        .limit
        .unwrap_or(crate::state::AUDIT_KEEP);
    read(&ctx, q, |s| {
        let skip = s.audit.len().saturating_sub(limit);
        s.audit.iter().skip(skip).cloned().collect()
    })
    .await
    .map(Json)
}
