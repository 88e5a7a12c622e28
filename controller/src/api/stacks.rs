//! `/v1/stacks`: deploy a stack as one release, read it, remove it.

use super::body::json;
use super::error::ApiError;
use super::services::unexpected;
use super::{read, write, Ctx};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::Json;
use hoist_proto::cluster::{Stack, StackChange};
use hoist_proto::raft::{Command, Response, StackDeploy};

fn stack_change(resp: Response) -> Result<Json<StackChange>, ApiError> {
    match resp {
        Response::Stack(c) => Ok(Json(*c)),
        Response::Error(e) => Err(e.into()),
        other => Err(unexpected(&other)),
    }
}

/// `POST /v1/stacks`: every service of the stack as one release (all or nothing).
pub async fn deploy(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<StackChange>, ApiError> {
    let d: StackDeploy = json(&headers, &body, "stack")?;
    for (i, spec) in d.services.iter().enumerate() {
        super::services::check_spec(&ctx, spec).map_err(|e| in_service(e, i))?;
    }
    stack_change(write(&ctx, Command::DeployStack(Box::new(d))).await?)
}

/// A spec's problems named within the stack (`services[1].image`), as the state machine names
/// the ones it finds.
fn in_service(mut e: ApiError, i: usize) -> ApiError {
    let within = |f: &str| format!("services[{i}].{f}");
    if let Some(f) = e.body.field.as_mut() {
        *f = within(f);
        e.body.message = within(&e.body.message);
    }
    for fe in &mut e.body.errors {
        fe.field = within(&fe.field);
    }
    e
}

/// `GET /v1/stacks`
pub async fn list(
    State(ctx): State<Ctx>,
    RawQuery(q): RawQuery,
) -> Result<Json<Vec<Stack>>, ApiError> {
    Ok(Json(
        read(&ctx, q, |s| s.stacks.values().cloned().collect()).await?,
    ))
}

/// `GET /v1/stacks/{name}`: the stack with its releases, the current one last.
pub async fn get(
    State(ctx): State<Ctx>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<Stack>, ApiError> {
    let s = read(&ctx, q, |s| s.stack(&name)).await?;
    s.map(Json)
        .ok_or_else(|| ApiError::not_found(format!("stack {name:?} not found")))
}

/// `DELETE /v1/stacks/{name}`: the stack and every service of it.
pub async fn remove(
    State(ctx): State<Ctx>,
    Path(name): Path<String>,
) -> Result<Json<StackChange>, ApiError> {
    stack_change(write(&ctx, Command::RemoveStack { name }).await?)
}
