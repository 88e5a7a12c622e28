//! The agent API's routes over a container's filesystem (axum), next to `api.rs`:
//! `POST /v1/containers/{id}/commit` (JSON [`CommitRequest`] in, 201 [`CommitResult`] out),
//! `GET /v1/containers/{id}/changes` (JSON [`FileChange`]s, `docker diff`'s lines) and
//! `GET /v1/containers/{id}/export` (the flattened filesystem as a tar, streamed).
//!
//! Each resolves the container's image again by the id in its record, for its layers: an image
//! that containers use cannot be removed (`api.rs`, `prune`), so it is there.

use std::path::PathBuf;
use std::sync::Arc;

use crate::api_body::JsonBody;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use hoist_proto::{CommitRequest, CommitResult, FileChange};

use crate::api::Services;
use crate::containers::{diff, Container};
use crate::error::AgentError;
use crate::image::archive::save::ChannelWriter;
use crate::image::{commit, export, ImageStore};

type Svc = State<Services>;
type ApiResult<T> = Result<T, AgentError>;

/// The routes, merged into the main router.
pub fn routes() -> Router<Services> {
    Router::new()
        .route("/v1/containers/{id}/commit", post(commit_container))
        .route("/v1/containers/{id}/changes", get(changes))
        .route("/v1/containers/{id}/export", get(export_container))
}

async fn blocking<T: Send + 'static>(
    what: &'static str,
    f: impl FnOnce() -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| AgentError::internal(what, e))?
}

/// The container's image layers (snapshot directories, lowest first). Blocking.
fn lowers(images: &ImageStore, c: &Container) -> ApiResult<Vec<PathBuf>> {
    let image_id = &c.record.image_id;
    match images.resolve(image_id) {
        Ok(image) => Ok(image.layers),
        Err(crate::image::ImageError::NotFound(_)) => Err(AgentError::NotFound(format!(
            "the image of container {} ({image_id}) is no longer on this host",
            c.record.name
        ))),
        Err(e) => Err(e.into()),
    }
}

async fn commit_container(
    State(s): Svc,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<CommitRequest>,
) -> ApiResult<(StatusCode, Json<CommitResult>)> {
    if req.reference.trim().is_empty() {
        return Err(AgentError::Invalid(
            "a commit needs the new image's name: NAME[:TAG]".into(),
        ));
    }
    let c = s.containers.get(&id)?;
    let images = s.images.clone();
    let result = blocking("commit", move || {
        commit::commit(
            &images,
            &c.dir.upper(),
            &c.record.image_id,
            &c.record.spec,
            c.record.userns,
            &req,
        )
    })
    .await?;
    tracing::info!(container = %id, image = %result.reference, id = %result.id, "committed");
    Ok((StatusCode::CREATED, Json(result)))
}

async fn changes(State(s): Svc, Path(id): Path<String>) -> ApiResult<Json<Vec<FileChange>>> {
    let c = s.containers.get(&id)?;
    let images = s.images.clone();
    let list = blocking("diff", move || {
        let lowers = lowers(&images, &c)?;
        diff::changes(&c.dir.upper(), &lowers, c.record.userns)
            .map_err(|e| AgentError::internal("read the container's changes", e))
    })
    .await?;
    Ok(Json(list))
}

/// The tar is streamed as it is written; a failure after the first byte breaks the transfer
/// (the client sees an incomplete body, never a tar that looks whole).
async fn export_container(State(s): Svc, Path(id): Path<String>) -> ApiResult<Response> {
    let c = s.containers.get(&id)?;
    let images: Arc<ImageStore> = s.images.clone();
    // Everything that can fail with a status does so before the first byte.
    let spec = blocking("export", move || {
        let lowers = lowers(&images, &c)?;
        let lower = diff::LowerDirs(&lowers);
        let skip = diff::RUNTIME_MOUNT_POINTS
            .iter()
            .filter(|p| diff::Lower::stat(&lower, p).is_none())
            .map(|p| p.to_string())
            .collect();
        export::ExportSpec::new(&images, lowers, c.dir.upper(), skip, c.record.userns)
            .map_err(|e| AgentError::internal("create export directory", e))
    })
    .await?;
    let (tx, mut rx) = tokio::sync::mpsc::channel(8);
    tokio::task::spawn_blocking(move || match export::export(spec, ChannelWriter::new(tx)) {
        (Some(mut w), Ok(())) => {
            if let Err(e) = std::io::Write::flush(&mut w) {
                tracing::debug!(container = %id, error = %e, "export: the client went away");
            }
        }
        (w, Err(e)) => {
            tracing::warn!(container = %id, error = %e, "export failed");
            if let Some(w) = w {
                w.fail(e);
            }
        }
        (None, Ok(())) => {}
    });
    let stream = futures::stream::poll_fn(move |cx| rx.poll_recv(cx));
    Response::builder()
        .header(header::CONTENT_TYPE, "application/x-tar")
        .body(Body::from_stream(stream))
        .map_err(|e| AgentError::internal("export", e))
}
