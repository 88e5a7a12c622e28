//! Autolock (`crate::keyring::lock`): `POST /v1/cluster/autolock` turns it on (answering the new
//! unlock key, once) or off; `POST /v1/cluster/unlock` gives a locked member the unlock key (the
//! key is the credential, and each member is unlocked by itself, never through another);
//! `GET /v1/cluster/lock` says whether this member is locked.

use super::body::json;
use super::error::ApiError;
use super::services::unexpected;
use super::{write, Ctx};
use crate::keyring::lock::{UnlockError, UnlockKey, AUTOLOCK_AAD};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use hoist_proto::raft::{Command, Response};
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutolockRequest {
    enabled: bool,
}

#[derive(Debug, Serialize)]
pub struct AutolockAnswer {
    autolock: bool,
    /// The new unlock key: shown once, needed by every member after a restart.
    #[serde(skip_serializing_if = "Option::is_none")]
    unlock_key: Option<String>,
}

/// `POST /v1/cluster/autolock` `{"enabled": true|false}` (admins). Turning it on again makes a
/// new unlock key (the members re-encrypt their keys with it).
pub async fn set(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<AutolockAnswer>, ApiError> {
    let req: AutolockRequest = json(&headers, &body, "autolock request")?;
    let (sealed, unlock) = if req.enabled {
        let key = ctx
            .node
            .stale_read(|s| ctx.keyring.data_key(s))
            .ok_or_else(|| super::files::key_not_ready(&ctx))?;
        let unlock = UnlockKey::generate();
        (key.seal(AUTOLOCK_AAD, unlock.as_bytes()), Some(unlock))
    } else {
        (Vec::new(), None)
    };
    match write(
        &ctx,
        Command::SetAutolock {
            sealed_unlock_key: sealed,
        },
    )
    .await?
    {
        Response::Ok => Ok(Json(AutolockAnswer {
            autolock: req.enabled,
            unlock_key: unlock.map(|k| k.text()),
        })),
        Response::Error(e) => Err(e.into()),
        other => Err(unexpected(&other)),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnlockRequest {
    key: String,
}

#[derive(Debug, Serialize)]
pub struct LockState {
    member: u64,
    locked: bool,
    /// Whether the cluster has autolock on.
    autolock: bool,
}

fn lock_state(ctx: &Ctx) -> LockState {
    LockState {
        member: ctx.node.id(),
        locked: ctx.keyring.is_locked(),
        autolock: ctx.node.stale_read(|s| !s.autolock.is_empty()),
    }
}

/// `GET /v1/cluster/lock`: whether this member is locked.
pub async fn state(State(ctx): State<Ctx>) -> Json<LockState> {
    Json(lock_state(&ctx))
}

/// `POST /v1/cluster/unlock` `{"key": "HOISTUK1-..."}`: opens this member's key.
pub async fn unlock(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<LockState>, ApiError> {
    let req: UnlockRequest = json(&headers, &body, "unlock request")?;
    match ctx.keyring.unlock(&req.key) {
        Ok(()) => Ok(Json(lock_state(&ctx))),
        Err(e @ UnlockError::NotLocked) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_locked",
            e.to_string(),
        )),
        Err(e @ UnlockError::Malformed) => Err(ApiError::field(StatusCode::BAD_REQUEST, "key", e)),
        Err(e @ UnlockError::WrongKey) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "wrong_key",
            e.to_string(),
        )),
        Err(UnlockError::Io(e)) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            e,
        )),
    }
}
