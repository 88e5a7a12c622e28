//! `/v1/cluster`: status, membership changes, and snapshot download/restore.

use super::body::json;
use super::error::ApiError;
use super::services::unexpected;
use super::{read, write, Ctx};
use crate::state::{decode_image, encode_image};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use hoist_proto::cluster::{ClusterStatus, JoinRequest, Member};
use hoist_proto::raft::{Command, Response};

/// `GET /v1/cluster/status`: as the answering member sees it (never forwarded).
pub async fn status(State(ctx): State<Ctx>) -> Json<ClusterStatus> {
    Json(ctx.node.status())
}

/// `GET /v1/cluster/members`
pub async fn members(State(ctx): State<Ctx>) -> Json<Vec<Member>> {
    Json(ctx.node.status().members)
}

/// `POST /v1/cluster/members`: add a member; answers the new member list.
pub async fn add_member(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Vec<Member>>, ApiError> {
    let req: JoinRequest = json(&headers, &body, "join request")?;
    if req.id == 0 {
        return Err(ApiError::field(
            StatusCode::UNPROCESSABLE_ENTITY,
            "id",
            "must be > 0",
        ));
    }
    if req.address.parse::<std::net::SocketAddr>().is_err() {
        return Err(ApiError::field(
            StatusCode::UNPROCESSABLE_ENTITY,
            "address",
            format!("{:?} is not HOST:PORT", req.address),
        ));
    }
    ctx.node
        .add_member(req.id, &req.address, req.learner)
        .await?;
    Ok(Json(ctx.node.status().members))
}

/// `DELETE /v1/cluster/members/{id}`
pub async fn remove_member(
    State(ctx): State<Ctx>,
    Path(id): Path<String>,
) -> Result<Json<Vec<Member>>, ApiError> {
    let id: u64 = id.parse().map_err(|_| {
        ApiError::field(
            StatusCode::BAD_REQUEST,
            "id",
            format!("{id:?} is not a member id"),
        )
    })?;
    if !ctx.node.remove_member(id).await? {
        return Err(ApiError::not_found(format!("member {id} not found")));
    }
    Ok(Json(ctx.node.status().members))
}

/// `GET /v1/cluster/snapshot`: the replicated state as a checksummed image.
pub async fn download(
    State(ctx): State<Ctx>,
    RawQuery(q): RawQuery,
) -> Result<impl IntoResponse, ApiError> {
    let image = read(&ctx, q, encode_image).await?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], image))
}

/// `POST /v1/cluster/snapshot`: replace the whole replicated state with an image (through Raft).
pub async fn restore(
    State(ctx): State<Ctx>,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    if let Err(e) = decode_image(&body) {
        return Err(ApiError::bad_request(format!("snapshot: {e}")));
    }
    match write(&ctx, Command::Restore(body.to_vec())).await? {
        Response::Restored(n) => Ok(Json(serde_json::json!({ "restored": true, "services": n }))),
        Response::Error(e) => Err(e.into()),
        other => Err(unexpected(&other)),
    }
}
