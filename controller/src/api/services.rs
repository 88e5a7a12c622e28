//! `/v1/services`: thin handlers that decode, validate, and either propose a command or read.

use super::body::json;
use super::error::ApiError;
use super::{read, write, Ctx};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use hoist_proto::cluster::{
    RollbackRequest, ScaleRequest, Service, ServiceChange, ServiceSummary, ServiceVersion,
};
use hoist_proto::raft::{Command, Response};
use hoist_proto::service::ServiceSpec;

fn change(resp: Response) -> Result<Json<ServiceChange>, ApiError> {
    match resp {
        Response::Service(c) => Ok(Json(c)),
        Response::Error(e) => Err(e.into()),
        other => Err(unexpected(&other)),
    }
}

pub(super) fn unexpected(r: &Response) -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        format!("unexpected answer from the state machine: {r:?}"),
    )
}

fn not_found(name: &str) -> ApiError {
    ApiError::not_found(format!("service {name:?} not found"))
}

fn decode_spec(ctx: &Ctx, headers: &HeaderMap, body: &[u8]) -> Result<ServiceSpec, ApiError> {
    let spec: ServiceSpec = json(headers, body, "spec")?;
    check_spec(ctx, &spec)?;
    Ok(spec)
}

/// What the controller refuses in a spec: its own problems, what every agent would refuse (its
/// sizes, `hoist_proto::limits`; an image reference they cannot read, `image_ref`), and this
/// cluster's limits (`--autoscale-max-replicas`).
pub(super) fn check_spec(ctx: &Ctx, spec: &ServiceSpec) -> Result<(), ApiError> {
    let mut errors = spec.validate();
    errors.extend(hoist_proto::limits::check_service(spec));
    errors.extend(super::image_ref::check(spec));
    let cap = ctx.leader.settings.autoscale_max_replicas;
    if let Some(a) = spec.autoscale.as_ref().filter(|a| a.max > cap) {
        errors.push(hoist_proto::service::FieldError {
            field: "autoscale.max".into(),
            message: format!(
                "{} is above this cluster's cap of {cap} (--autoscale-max-replicas)",
                a.max
            ),
        });
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid_spec(errors))
    }
}

/// `GET /v1/services`
pub async fn list(
    State(ctx): State<Ctx>,
    RawQuery(q): RawQuery,
) -> Result<Json<Vec<ServiceSummary>>, ApiError> {
    Ok(Json(read(&ctx, q, |s| s.service_summaries()).await?))
}

/// `POST /v1/services`: create or update from the spec's name.
pub async fn apply(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<ServiceChange>, ApiError> {
    let spec = decode_spec(&ctx, &headers, &body)?;
    change(write(&ctx, Command::ApplyService(Box::new(spec))).await?)
}

/// `PUT /v1/services/{name}`: like apply, but the spec's name must match the path.
pub async fn put(
    State(ctx): State<Ctx>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<ServiceChange>, ApiError> {
    let spec = decode_spec(&ctx, &headers, &body)?;
    if spec.name != name {
        return Err(ApiError::field(
            StatusCode::BAD_REQUEST,
            "name",
            format!("{:?} does not match the path ({name:?})", spec.name),
        ));
    }
    change(write(&ctx, Command::ApplyService(Box::new(spec))).await?)
}

/// `GET /v1/services/{name}`
pub async fn get(
    State(ctx): State<Ctx>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<Service>, ApiError> {
    let svc = read(&ctx, q, |s| s.service(&name)).await?;
    svc.map(Json).ok_or_else(|| not_found(&name))
}

/// `DELETE /v1/services/{name}`: answers the deleted service.
pub async fn delete(
    State(ctx): State<Ctx>,
    Path(name): Path<String>,
) -> Result<Json<Service>, ApiError> {
    match write(&ctx, Command::DeleteService { name }).await? {
        Response::Deleted(s) => Ok(Json(s)),
        Response::Error(e) => Err(e.into()),
        other => Err(unexpected(&other)),
    }
}

/// `POST /v1/services/{name}/scale`
pub async fn scale(
    State(ctx): State<Ctx>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<ServiceChange>, ApiError> {
    let req: ScaleRequest = json(&headers, &body, "scale request")?;
    if let Err(m) = hoist_proto::service::validate_replicas(req.replicas) {
        return Err(ApiError::field(
            StatusCode::UNPROCESSABLE_ENTITY,
            "replicas",
            m,
        ));
    }
    change(
        write(
            &ctx,
            Command::ScaleService {
                name,
                replicas: req.replicas,
            },
        )
        .await?,
    )
}

/// `GET /v1/services/{name}/history`: kept versions, oldest first.
pub async fn history(
    State(ctx): State<Ctx>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<Vec<ServiceVersion>>, ApiError> {
    let h = read(&ctx, q, |s| s.history(&name)).await?;
    h.map(Json).ok_or_else(|| not_found(&name))
}

/// `POST /v1/services/{name}/rollback`: to `version`, or to the one before the current.
pub async fn rollback(
    State(ctx): State<Ctx>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<ServiceChange>, ApiError> {
    let req: RollbackRequest = json(&headers, &body, "rollback request")?;
    change(
        write(
            &ctx,
            Command::RollbackService {
                name,
                version: req.version,
            },
        )
        .await?,
    )
}
