//! `/v1/cluster`: status, membership changes, and snapshot download/restore.

use super::body::json;
use super::error::ApiError;
use super::services::unexpected;
use super::{read, write, Ctx};
use crate::raft::peers::peer_version;
use crate::state::{decode_snapshot, encode_snapshot};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use hoist_proto::cluster::{
    ClusterStatus, JoinRequest, Member, MemberCertificate, MemberCertificateRequest,
};
use hoist_proto::raft::{Command, Response};

/// `GET /v1/cluster/status`: as the answering member sees it (never forwarded). On a blocking
/// thread: the state hash in it encodes the whole state once per applied entry.
pub async fn status(State(ctx): State<Ctx>) -> Result<Json<ClusterStatus>, ApiError> {
    let status = tokio::task::spawn_blocking(move || ctx.node.status()).await;
    let status = status
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    Ok(Json(status))
}

/// `GET /v1/cluster/members`
pub async fn members(State(ctx): State<Ctx>) -> Json<Vec<Member>> {
    Json(ctx.node.members())
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
    // Another member's address (this one's, say) would make the cluster replicate to itself.
    let members = ctx.node.members();
    if let Some(m) = members
        .iter()
        .find(|m| m.address == req.address && m.id != req.id)
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!(
                "{} is the address of member {}: a new member needs its own",
                req.address, m.id
            ),
        ));
    }
    if let Some(m) = members
        .iter()
        .find(|m| m.id == req.id && m.address != req.address)
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!("member {} is at {}, not {}", m.id, m.address, req.address),
        ));
    }
    // The new member must read everything the cluster writes, and the cluster what it writes. A
    // joining member says its version; an operator's `hoist cluster member-add` cannot, so the
    // member itself is asked.
    let joiner = if headers.contains_key(hoist_proto::format::VERSION_HEADER) {
        peer_version(&headers)
    } else {
        version_of_member(&ctx, &req.address)
            .await
            .unwrap_or_else(|| peer_version(&headers))
    };
    let refusal = |why: String| {
        ApiError::new(
            StatusCode::UPGRADE_REQUIRED,
            "incompatible_version",
            format!("member {} cannot join: {why}", req.id),
        )
    };
    let cluster_format = ctx.node.stale_read(|s| s.cluster_format);
    if let Some(why) = joiner.incompatibility(cluster_format) {
        return Err(refusal(why));
    }
    ctx.node
        .peers()
        .record(Some(req.id), Some(&req.address), joiner.clone());
    ctx.node
        .add_member(req.id, &req.address, req.learner)
        .await?;
    // The cluster format may have risen while the member was being added (the leader raises it
    // once every member of the membership reads it, and the new one was not a member yet).
    let cluster_format = ctx.node.stale_read(|s| s.cluster_format);
    if let Some(why) = joiner.incompatibility(cluster_format) {
        ctx.node.remove_member(req.id).await?;
        return Err(refusal(why));
    }
    Ok(Json(ctx.node.members()))
}

/// `POST /v1/cluster/members/{id}/certificate`: signs a joining member's certificate (an
/// admin's act, as adding it is). Its key stays on the member: only the request comes here.
pub async fn member_certificate(
    State(ctx): State<Ctx>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<MemberCertificate>, ApiError> {
    let id: u64 = id.parse().ok().filter(|id| *id > 0).ok_or_else(|| {
        ApiError::field(
            StatusCode::BAD_REQUEST,
            "id",
            format!("{id:?} is not a member id"),
        )
    })?;
    let req: MemberCertificateRequest = json(&headers, &body, "member certificate request")?;
    if req.address.parse::<std::net::SocketAddr>().is_err() {
        return Err(ApiError::field(
            StatusCode::UNPROCESSABLE_ENTITY,
            "address",
            format!("{:?} is not HOST:PORT", req.address),
        ));
    }
    hoist_transport::pki::request_key_sha256(&req.csr)
        .map_err(|m| ApiError::field(StatusCode::UNPROCESSABLE_ENTITY, "csr", m))?;
    if ctx.node.stale_read(|s| s.cluster_format) < 2 {
        // A CA is made only at format 2: the member joins without a certificate, as the
        // cluster talks, and signs its own later.
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no_ca",
            "the cluster runs below format 2 and has no certificate authority yet",
        ));
    }
    let signer = super::agent::signer(&ctx)?;
    let certificate = ctx
        .pki
        .sign_member(&signer.ca, id, &req.address, &req.csr)
        .map_err(|e| match e {
            crate::pki::SignError::Request(m) => {
                ApiError::field(StatusCode::UNPROCESSABLE_ENTITY, "csr", m)
            }
            e => super::agent::sign_error(e),
        })?;
    tracing::info!(member = id, address = %req.address, "signed a joining member's certificate");
    Ok(Json(MemberCertificate {
        certificate: signer.with_intermediates(&certificate),
        ca_certificate: signer.roots,
    }))
}

/// The version a running member at `address` says in its answers (`GET /v1/health`).
async fn version_of_member(ctx: &Ctx, address: &str) -> Option<hoist_proto::format::PeerVersion> {
    use hoist_proto::format::{FORMAT_HEADER, OLDEST_FORMAT_HEADER, VERSION_HEADER};
    let resp = ctx
        .http
        .get(format!("http://{address}/v1/health"))
        .timeout(std::time::Duration::from_secs(2))
        .send()
        .await
        .ok()?;
    let get = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok());
    get(VERSION_HEADER)?;
    Some(hoist_proto::format::PeerVersion::from_headers(
        get(VERSION_HEADER),
        get(FORMAT_HEADER),
        get(OLDEST_FORMAT_HEADER),
    ))
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
    Ok(Json(ctx.node.members()))
}

/// `GET /v1/cluster/snapshot`: the replicated state as a checksummed image, in the cluster's
/// format (so a snapshot of a cluster still at format 0 also restores into Hoist 0.1.0).
pub async fn download(
    State(ctx): State<Ctx>,
    RawQuery(q): RawQuery,
) -> Result<impl IntoResponse, ApiError> {
    let image = read(&ctx, q, |s| encode_snapshot(s, s.cluster_format)).await?;
    let image = image.map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("snapshot: {e}"),
        )
    })?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], image))
}

/// `POST /v1/cluster/snapshot`: replace the whole replicated state with an image (through Raft).
/// An image of any format this build reads is taken; it is proposed in the cluster's format, so
/// that members not upgraded yet can apply it, or refused when that format cannot carry it.
pub async fn restore(
    State(ctx): State<Ctx>,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let mut state =
        decode_snapshot(&body).map_err(|e| ApiError::bad_request(format!("snapshot: {e}")))?;
    let cluster_format = ctx.node.stale_read(|s| s.cluster_format);
    state.cluster_format = state.cluster_format.min(cluster_format);
    let image = encode_snapshot(&state, cluster_format).map_err(|e| {
        ApiError::new(
            StatusCode::CONFLICT,
            "needs_upgrade",
            format!(
                "snapshot: {}, and the cluster is at format {cluster_format}: finish upgrading \
                 every controller member first",
                e.what
            ),
        )
    })?;
    match write(&ctx, Command::Restore(image)).await? {
        Response::Restored(n) => Ok(Json(serde_json::json!({ "restored": true, "services": n }))),
        Response::Error(e) => Err(e.into()),
        other => Err(unexpected(&other)),
    }
}
