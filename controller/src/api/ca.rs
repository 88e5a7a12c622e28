//! The cluster's root certificate: `GET /v1/cluster/ca` and its rotation,
//! `POST /v1/cluster/ca/rotate` (`hoist cluster ca [rotate]`).
//!
//! A rotation is one write: a new root, cross-signed by the current one, with the current one
//! beside it as still trusted (`crate::pki::rotation` says how it ends). Everything else follows
//! from the state: members sign themselves new certificates, agents renew at their next
//! heartbeat, and certificates signed from now on are under the new root.

use super::error::ApiError;
use super::{write, Ctx};
use crate::pki::{open_signer, sealed_record};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use hoist_proto::raft::{Command, Response};
use serde_json::{json, Value};
use std::time::SystemTime;

fn no_ca() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no_ca",
        "the cluster has no certificate authority yet (made once it runs at format 2)",
    )
}

/// `GET /v1/cluster/ca`: the cluster's root certificate (PEM), its digest, the roots trusted now
/// and, during a rotation, how far it is (seen by the leader, which answers then). Public by
/// nature, but like everything else behind a viewer's token.
pub async fn get(State(ctx): State<Ctx>) -> Result<Json<Value>, ApiError> {
    let ca = ctx.node.stale_read(|s| s.ca.clone()).ok_or_else(no_ca)?;
    let rotation = if ca.rotating() {
        // Only the leader sees who is under which root.
        ctx.node.ensure_leader()?;
        let previous = hoist_transport::tls::certs_from_pem(&ca.previous_pem)
            .ok()
            .and_then(|c| c.first().map(|c| hoist_transport::tls::ca_digest(c)));
        let mut view = json!({"previous_digest": previous, "members": null, "nodes": null});
        if let Some(p) = ctx
            .pki
            .rotation
            .progress()
            .filter(|p| p.digest == ca.digest)
        {
            view["members"] = json!(p.members);
            view["nodes"] = json!(p.nodes);
        }
        view
    } else {
        Value::Null
    };
    Ok(Json(json!({
        "certificate": ca.cert_pem,
        "digest": ca.digest,
        "created_ms": ca.created_ms,
        "trusted": crate::pki::trusted_digests(&ca),
        "rotation": rotation,
    })))
}

/// `POST /v1/cluster/ca/rotate`: a new root replaces the cluster's. Answers at once with both
/// digests; the rotation ends by itself once every member and live node holds a certificate
/// under the new root (`GET /v1/cluster/ca` shows how far it is). 409 while one is going on.
pub async fn rotate(State(ctx): State<Ctx>) -> Result<Json<Value>, ApiError> {
    ctx.node.ensure_leader()?;
    let (current, signer, cluster_id) = ctx.node.stale_read(|s| {
        (
            s.ca.clone(),
            open_signer(s, &ctx.keyring),
            s.identity.as_ref().map(|i| i.cluster_id.clone()),
        )
    });
    let current = current.ok_or_else(no_ca)?;
    if current.rotating() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "rotation_in_progress",
            format!(
                "a rotation to the root sha256 {} is going on: it ends by itself once every \
                 member and node holds a certificate under it (`hoist cluster ca` shows who is \
                 left)",
                current.digest
            ),
        ));
    }
    let signer = signer.map_err(super::agent::sign_error)?;
    let data_key = ctx
        .node
        .stale_read(|s| ctx.keyring.data_key(s))
        .ok_or_else(|| super::agent::sign_error(crate::pki::SignError::Locked))?;
    let now = SystemTime::now();
    let (next, cross) = hoist_transport::pki::make_next_ca(
        cluster_id.as_deref().unwrap_or("unnamed"),
        &signer.ca,
        now,
    )
    .map_err(|m| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", m))?;
    let record = sealed_record(&next, &data_key, now, current.cert_pem.clone(), cross);
    if let Response::Error(e) = write(&ctx, Command::RotateClusterCa(Box::new(record))).await? {
        return Err(e.into());
    }
    tracing::info!(previous = %current.digest, root = %next.digest, "rotating the cluster's root");
    Ok(Json(json!({
        "digest": next.digest,
        "previous_digest": current.digest,
    })))
}
