//! The agent API's registry and archive image routes (axum), next to `api.rs`:
//! `POST /v1/images/pull` and `POST /v1/images/push` (JSON in, newline-delimited
//! [`ImageProgress`] out), `POST /v1/images/load?tag=` (a tarball in), `GET
//! /v1/images/save?reference=&format=docker|oci` (a tarball out), `GET
//! /v1/images/inspect?reference=`, `GET /v1/images/history?reference=`, `POST /v1/images/tag`,
//! `POST /v1/images/prune`, `POST /v1/registry/login`.
//!
//! Pulls and pushes run in their own task: a client that disconnects does not cancel them.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::api_body::JsonBody;
use crate::api_query::Query;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::StreamExt;
use hoist_proto::{
    HistoryEntry, ImageInspect, ImageProgress, ImageSummary, LoginRequest, PruneReport,
    PullRequest, PushRequest, TagRequest,
};
use serde::Deserialize;

use crate::api::Services;
use crate::error::AgentError;
use crate::image::archive::{save::ChannelWriter, Format};
use crate::image::registry::RegistryClient;
use crate::image::{pull, push, ImageStore};

type Svc = State<Services>;
type ApiResult<T> = Result<T, AgentError>;

/// The image routes, merged into the main router.
pub fn routes() -> Router<Services> {
    Router::new()
        .route("/v1/images/pull", post(pull_image))
        .route("/v1/images/push", post(push_image))
        .route("/v1/images/load", post(load))
        .route("/v1/images/save", get(save))
        .route("/v1/images/inspect", get(inspect))
        .route("/v1/images/history", get(history))
        .route("/v1/images/tag", post(tag))
        .route("/v1/images/prune", post(prune))
        .route("/v1/registry/login", post(login))
}

async fn blocking<T: Send + 'static>(
    what: &'static str,
    f: impl FnOnce() -> Result<T, crate::image::ImageError> + Send + 'static,
) -> ApiResult<T> {
    Ok(tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| AgentError::internal(what, e))??)
}

/// Newline-delimited JSON of progress records until the sender side is dropped.
fn progress_stream(rx: tokio::sync::mpsc::UnboundedReceiver<ImageProgress>) -> Response {
    let mut rx = rx;
    let stream = futures::stream::poll_fn(move |cx| rx.poll_recv(cx)).map(|item| {
        let mut line = serde_json::to_vec(&item).unwrap_or_default();
        line.push(b'\n');
        Ok::<_, std::convert::Infallible>(line)
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "application/x-ndjson")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

fn finish(
    tx: &pull::Progress,
    status: &str,
    result: Result<(Option<ImageSummary>, String), crate::image::ImageError>,
) {
    let last = match result {
        Ok((image, digest)) => ImageProgress {
            status: status.to_owned(),
            image,
            digest: Some(digest),
            ..ImageProgress::default()
        },
        Err(e) => ImageProgress {
            status: "error".to_owned(),
            error: Some(e.to_string()),
            ..ImageProgress::default()
        },
    };
    let _ = tx.send(last);
}

/// Runs a pull or push in the background and streams its progress; the last record says how
/// it ended (`done` or `error`).
fn with_progress<F, Fut>(
    action: &'static str,
    done: &'static str,
    reference: String,
    work: F,
) -> Response
where
    F: FnOnce(pull::Progress) -> Fut,
    Fut: std::future::Future<
            Output = Result<(Option<ImageSummary>, String), crate::image::ImageError>,
        > + Send
        + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let work = work(tx.clone());
    tokio::spawn(async move {
        let result = work.await;
        if let Err(e) = &result {
            tracing::warn!(image = %reference, error = %e, "{action} failed");
        }
        finish(&tx, done, result);
    });
    progress_stream(rx)
}

async fn pull_image(State(s): Svc, JsonBody(req): JsonBody<PullRequest>) -> ApiResult<Response> {
    let (store, regs) = (s.images.clone(), s.containers.config.registries());
    Ok(with_progress(
        "pull",
        "pulled",
        req.reference.clone(),
        |tx| async move {
            pull::pull(store, &regs, req, tx)
                .await
                .map(|(s, d)| (Some(s), d))
        },
    ))
}

async fn push_image(State(s): Svc, JsonBody(req): JsonBody<PushRequest>) -> ApiResult<Response> {
    let (store, regs) = (s.images.clone(), s.containers.config.registries());
    Ok(with_progress(
        "push",
        "pushed",
        req.reference.clone(),
        |tx| async move { push::push(store, &regs, req, tx).await.map(|d| (None, d)) },
    ))
}

#[derive(Deserialize)]
struct LoadQuery {
    #[serde(default)]
    tag: Option<String>,
}

async fn load(
    State(s): Svc,
    Query(q): Query<LoadQuery>,
    body: Body,
) -> ApiResult<(StatusCode, Json<Vec<ImageSummary>>)> {
    use tokio_util::io::{StreamReader, SyncIoBridge};
    let stream = body
        .into_data_stream()
        .map(|r| r.map_err(std::io::Error::other));
    let reader = SyncIoBridge::new(StreamReader::new(stream));
    let images = s.images.clone();
    let loaded = blocking("load", move || {
        images.load_archive(reader, q.tag.as_deref())
    })
    .await?;
    Ok((StatusCode::CREATED, Json(loaded)))
}

#[derive(Deserialize)]
struct SaveQuery {
    reference: String,
    #[serde(default)]
    format: Option<String>,
}

async fn save(State(s): Svc, Query(q): Query<SaveQuery>) -> ApiResult<Response> {
    let format: Format = q
        .format
        .as_deref()
        .unwrap_or("docker")
        .parse()
        .map_err(AgentError::Invalid)?;
    let images: Arc<ImageStore> = s.images.clone();
    // Fail with a proper status before the first byte when the image does not exist.
    let probe = images.clone();
    let reference = q.reference.clone();
    blocking("save", move || probe.content(&reference).map(drop)).await?;
    let (tx, mut rx) = tokio::sync::mpsc::channel(8);
    tokio::task::spawn_blocking(move || {
        let mut w = ChannelWriter::new(tx);
        if let Err(e) = images.save_archive(&q.reference, format, &mut w) {
            tracing::warn!(image = %q.reference, error = %e, "save failed");
            w.fail(e.to_string());
        }
    });
    let stream = futures::stream::poll_fn(move |cx| rx.poll_recv(cx));
    Response::builder()
        .header(header::CONTENT_TYPE, "application/x-tar")
        .body(Body::from_stream(stream))
        .map_err(|e| AgentError::internal("save", e))
}

#[derive(Deserialize)]
struct RefQuery {
    reference: String,
}

async fn inspect(State(s): Svc, Query(q): Query<RefQuery>) -> ApiResult<Json<ImageInspect>> {
    let images = s.images.clone();
    Ok(Json(
        blocking("inspect", move || images.inspect(&q.reference)).await?,
    ))
}

async fn history(State(s): Svc, Query(q): Query<RefQuery>) -> ApiResult<Json<Vec<HistoryEntry>>> {
    let images = s.images.clone();
    Ok(Json(
        blocking("history", move || images.history(&q.reference)).await?,
    ))
}

async fn tag(
    State(s): Svc,
    JsonBody(req): JsonBody<TagRequest>,
) -> ApiResult<(StatusCode, Json<ImageSummary>)> {
    let images = s.images.clone();
    let s = blocking("tag", move || images.tag(&req.source, &req.target)).await?;
    Ok((StatusCode::CREATED, Json(s)))
}

async fn prune(State(s): Svc) -> ApiResult<Json<PruneReport>> {
    let in_use: BTreeSet<String> = s
        .containers
        .list(true)
        .into_iter()
        .map(|c| c.image_id)
        .collect();
    let images = s.images.clone();
    Ok(Json(
        blocking("prune", move || images.prune(&in_use)).await?,
    ))
}

async fn login(State(s): Svc, JsonBody(req): JsonBody<LoginRequest>) -> ApiResult<StatusCode> {
    RegistryClient::connect(
        &s.containers.config.registries(),
        &req.registry,
        "",
        Some(req.auth),
        "pull",
        &[],
    )
    .await
    .map_err(|e| AgentError::Invalid(e.to_string()))?;
    Ok(StatusCode::NO_CONTENT)
}
