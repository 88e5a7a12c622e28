//! The agent's local HTTP API (JSON over a unix socket). The only module that names axum: handlers
//! parse the request, call the [`Manager`], and turn its answer or [`AgentError`] into HTTP.
//!
//! Routes (all under `/v1`):
//! `GET /info`, `GET /containers?all=`, `POST /containers?attach=`, `GET /containers/{id}`,
//! `DELETE /containers/{id}?force=`, `POST /containers/{id}/stop?t=`, `POST /containers/{id}/kill?signal=`,
//! `POST /containers/{id}/wait`, `GET /containers/{id}/logs?follow=&tail=`, `POST /containers/{id}/exec`,
//! `GET /containers/{id}/stats`, `GET /stats`, `GET /images`, `POST /images/import?reference=`,
//! `DELETE /images/{ref}`, `POST /build` (body: a JSON request line, then the context tar;
//! answer: newline-delimited [`hoist_proto::BuildEvent`]s), `GET /volumes`, `GET /volumes/{name}`,
//! `DELETE /volumes/{name}` (409 while a container names it).

use crate::api_body::JsonBody;
use crate::api_query::Query;
use crate::containers::{LogOptions, Manager};
use crate::error::AgentError;
use crate::image::ImageStore;
use axum::body::Body;
use axum::extract::{FromRef, Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use futures::StreamExt;
use hoist_proto::{AgentInfo, ApiError, AttachEvent, CreateContainer, ExecRequest, WaitResult};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// What the handlers work with: the container manager and the image store.
#[derive(Debug, Clone)]
pub struct Services {
    pub containers: Arc<Manager>,
    pub images: Arc<ImageStore>,
    /// This node's end of the overlay, when it is on one.
    pub overlay: Option<Arc<crate::overlay::Overlay>>,
    /// This node's routing mesh, when it is on the overlay.
    pub mesh: Option<Arc<crate::worker::mesh_view::MeshHandle>>,
}

impl FromRef<Services> for Arc<Manager> {
    fn from_ref(s: &Services) -> Self {
        s.containers.clone()
    }
}

type Mgr = State<Arc<Manager>>;
type Svc = State<Services>;

pub fn router(services: Services) -> Router {
    Router::new()
        .route("/v1/openapi.json", get(crate::api_openapi::document))
        .route("/v1/info", get(info))
        .route("/v1/overlay", get(overlay))
        .route("/v1/containers", get(list).post(create))
        .route("/v1/containers/{id}", get(inspect).delete(remove))
        .route("/v1/containers/{id}/stop", post(stop))
        .route("/v1/containers/{id}/kill", post(kill))
        .route("/v1/containers/{id}/wait", post(wait))
        .route("/v1/containers/{id}/logs", get(logs))
        .route("/v1/containers/{id}/exec", post(exec))
        .route("/v1/containers/{id}/stats", get(stats))
        .route("/v1/stats", get(stats_all))
        .route("/v1/images", get(images))
        .route("/v1/images/import", post(import))
        .route("/v1/images/{reference}", delete(remove_image))
        .route("/v1/build", post(build))
        .route("/v1/volumes", get(volumes))
        .route("/v1/volumes/{name}", get(volume).delete(remove_volume))
        .merge(crate::api_images::routes())
        .merge(crate::api_commit::routes())
        .layer(axum::middleware::from_fn(
            crate::api_body::run_to_completion,
        ))
        .with_state(services)
}

impl IntoResponse for AgentError {
    fn into_response(self) -> Response {
        let kind = self.kind();
        let status =
            StatusCode::from_u16(kind.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (
            status,
            Json(ApiError {
                code: kind.code().into(),
                message: self.to_string(),
            }),
        )
            .into_response()
    }
}

type ApiResult<T> = Result<T, AgentError>;

/// Newline-delimited JSON: one record per line, flushed as produced.
fn ndjson<T: Serialize + Send + 'static>(rx: tokio::sync::mpsc::Receiver<T>) -> Response {
    let stream = tokio_stream_from(rx).map(|item| {
        let mut line = serde_json::to_vec(&item).unwrap_or_default();
        line.push(b'\n');
        Ok::<_, std::convert::Infallible>(line)
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "application/x-ndjson")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

fn tokio_stream_from<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

async fn info(State(s): Svc) -> ApiResult<Json<AgentInfo>> {
    let m = &s.containers;
    let all = m.list(true);
    let images = s.images.clone();
    let n_images = tokio::task::spawn_blocking(move || images.list().map(|l| l.len()).unwrap_or(0))
        .await
        .unwrap_or(0);
    Ok(Json(AgentInfo {
        version: env!("CARGO_PKG_VERSION").into(),
        data_dir: m.config.data_dir.display().to_string(),
        cgroup_version: format!("{:?}", m.cgroup_version()).to_lowercase(),
        cgroup_parent: m.config.cgroup_parent.clone(),
        bridge: m.config.bridge.clone(),
        subnet: m.config.subnet.clone(),
        running: all
            .iter()
            .filter(|c| c.status == hoist_proto::ContainerStatus::Running)
            .count(),
        containers: all.len(),
        images: n_images,
    }))
}

/// `GET /v1/overlay`: this node's end of the overlay and each peer's health.
async fn overlay(
    State(s): Svc,
) -> Result<Json<hoist_proto::OverlayStatus>, (axum::http::StatusCode, Json<ApiError>)> {
    let Some(o) = s.overlay.clone() else {
        return Err((
            axum::http::StatusCode::NOT_FOUND,
            Json(ApiError {
                code: "no_overlay".into(),
                message: "this agent is not on an overlay (standalone, or started with --subnet)"
                    .into(),
            }),
        ));
    };
    let mesh = s.mesh.clone();
    let status = tokio::task::spawn_blocking(move || {
        let mut status = o.status();
        status.mesh = mesh.map(|m| m.report());
        status
    })
    .await
    .map_err(|e| {
        (
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            Json(ApiError {
                code: "internal".into(),
                message: e.to_string(),
            }),
        )
    })?;
    Ok(Json(status))
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(default)]
    all: bool,
}

async fn list(State(m): Mgr, Query(q): Query<ListQuery>) -> Json<Vec<hoist_proto::ContainerInfo>> {
    Json(m.list(q.all))
}

#[derive(Deserialize)]
struct CreateQuery {
    #[serde(default)]
    attach: bool,
}

async fn create(
    State(m): Mgr,
    Query(q): Query<CreateQuery>,
    JsonBody(req): JsonBody<CreateContainer>,
) -> ApiResult<Response> {
    if !q.attach {
        let (_, created) = m.create(req, false).await?;
        return Ok((StatusCode::CREATED, Json(created)).into_response());
    }
    // Attached: the container's whole output, then its exit, in one response; no output is missed
    // because the log is read from its start.
    let auto_remove = req.auto_remove;
    let (tx, rx) = tokio::sync::mpsc::channel(256);
    match m.create(req, true).await {
        Err(e) => {
            let _ = tx
                .send(AttachEvent::Error(ApiError {
                    code: e.code().into(),
                    message: e.to_string(),
                }))
                .await;
        }
        Ok((c, created)) => {
            let _ = tx.send(AttachEvent::Created(created)).await;
            let mut logs = m.logs(
                &c.record.id,
                LogOptions {
                    follow: true,
                    tail: None,
                    ..LogOptions::default()
                },
            )?;
            tokio::spawn(async move {
                let mut client_gone = false;
                while let Some(chunk) = logs.recv().await {
                    if !client_gone && tx.send(AttachEvent::Output(chunk)).await.is_err() {
                        client_gone = true;
                    }
                }
                let exit = c.wait_exit().await;
                let _ = tx.send(AttachEvent::Exit(exit)).await;
                if auto_remove {
                    if let Err(e) = m.remove(&c.record.id, false).await {
                        tracing::warn!(id = %c.record.id, "auto-remove: {e}");
                    }
                }
            });
        }
    }
    Ok(ndjson(rx))
}

async fn inspect(
    State(m): Mgr,
    Path(id): Path<String>,
) -> ApiResult<Json<hoist_proto::ContainerInfo>> {
    Ok(Json(m.get(&id)?.info()))
}

#[derive(Deserialize)]
struct RemoveQuery {
    #[serde(default)]
    force: bool,
}

async fn remove(
    State(m): Mgr,
    Path(id): Path<String>,
    Query(q): Query<RemoveQuery>,
) -> ApiResult<StatusCode> {
    m.remove(&id, q.force).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct StopQuery {
    /// Seconds to wait before SIGKILL; default 10.
    t: Option<u64>,
}

async fn stop(
    State(m): Mgr,
    Path(id): Path<String>,
    Query(q): Query<StopQuery>,
) -> ApiResult<Json<hoist_proto::ContainerInfo>> {
    Ok(Json(m.stop(&id, q.t.map(Duration::from_secs)).await?))
}

#[derive(Deserialize)]
struct KillQuery {
    signal: Option<String>,
}

async fn kill(
    State(m): Mgr,
    Path(id): Path<String>,
    Query(q): Query<KillQuery>,
) -> ApiResult<StatusCode> {
    let signal = crate::containers::prepare::parse_signal(q.signal.as_deref().unwrap_or("SIGKILL"))
        .map_err(AgentError::Invalid)?;
    m.kill(&id, signal).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn wait(State(m): Mgr, Path(id): Path<String>) -> ApiResult<Json<WaitResult>> {
    Ok(Json(WaitResult {
        exit: m.wait(&id).await?,
    }))
}

#[derive(Deserialize)]
struct LogsQuery {
    #[serde(default)]
    follow: bool,
    tail: Option<usize>,
}

async fn logs(
    State(m): Mgr,
    Path(id): Path<String>,
    Query(q): Query<LogsQuery>,
) -> ApiResult<Response> {
    Ok(ndjson(m.logs(
        &id,
        LogOptions {
            follow: q.follow,
            tail: q.tail,
            ..LogOptions::default()
        },
    )?))
}

async fn exec(
    State(m): Mgr,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<ExecRequest>,
) -> ApiResult<Response> {
    hoist_proto::limits::check_exec(&req).map_err(AgentError::Invalid)?;
    Ok(ndjson(m.exec(&id, req).await?))
}

async fn stats(
    State(m): Mgr,
    Path(id): Path<String>,
) -> ApiResult<Json<hoist_proto::ContainerStats>> {
    Ok(Json(m.stats(&id)?))
}

async fn stats_all(State(m): Mgr) -> Json<Vec<hoist_proto::ContainerStats>> {
    Json(m.stats_all())
}

async fn images(State(s): Svc) -> ApiResult<Json<Vec<hoist_proto::ImageSummary>>> {
    let images = s.images.clone();
    let list = tokio::task::spawn_blocking(move || images.list())
        .await
        .map_err(|e| AgentError::internal("list images", e))??;
    Ok(Json(list))
}

#[derive(Deserialize)]
struct ImportQuery {
    reference: String,
}

async fn import(
    State(s): Svc,
    Query(q): Query<ImportQuery>,
    body: Body,
) -> ApiResult<(StatusCode, Json<hoist_proto::ImageSummary>)> {
    use tokio_util::io::{StreamReader, SyncIoBridge};
    let stream = body
        .into_data_stream()
        .map(|r| r.map_err(std::io::Error::other));
    let reader = SyncIoBridge::new(StreamReader::new(stream));
    let images = s.images.clone();
    let summary = tokio::task::spawn_blocking(move || {
        let mut reader = reader;
        images.import(&mut reader, &q.reference, None)
    })
    .await
    .map_err(|e| AgentError::internal("import", e))??;
    Ok((StatusCode::CREATED, Json(summary)))
}

async fn remove_image(State(s): Svc, Path(reference): Path<String>) -> ApiResult<StatusCode> {
    let images = s.images.clone();
    let containers = s.containers.list(true);
    tokio::task::spawn_blocking(move || -> ApiResult<()> {
        // Like Docker: the last name of an image that containers use cannot be removed, because the
        // layers would go with it.
        let image = images.resolve(&reference)?;
        let names = images
            .list()?
            .into_iter()
            .find(|i| i.id == image.id)
            .map_or(0, |i| i.references.len());
        let by_id = image.reference.starts_with("sha256:");
        let removes_layers = by_id || names <= 1;
        let users: Vec<String> = containers
            .into_iter()
            .filter(|c| c.image_id == image.id)
            .map(|c| c.name)
            .collect();
        if removes_layers && !users.is_empty() {
            return Err(AgentError::Conflict(format!(
                "image {reference} is used by container(s) {}: remove them first",
                users.join(", ")
            )));
        }
        images.remove(&reference)?;
        Ok(())
    })
    .await
    .map_err(|e| AgentError::internal("remove image", e))??;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/build`: a bad request line or Dockerfile is a 400; after that, the build's events.
async fn build(State(s): Svc, body: Body) -> ApiResult<Response> {
    use tokio_util::io::{StreamReader, SyncIoBridge};
    let stream = body
        .into_data_stream()
        .map(|r| r.map_err(std::io::Error::other));
    let reader = SyncIoBridge::new(StreamReader::new(stream));
    let tmp = crate::image::build::build_dir(&s.containers.config.data_dir).join("tmp");
    let (req, df, context) =
        tokio::task::spawn_blocking(move || crate::image::build::receive(reader, &tmp))
            .await
            .map_err(|e| AgentError::internal("receive build", e))??;
    let (tx, rx) = tokio::sync::mpsc::channel(256);
    tokio::spawn(crate::image::build::run(
        s.containers,
        s.images,
        req,
        df,
        context,
        tx,
    ));
    Ok(ndjson(rx))
}

/// `GET /v1/volumes`: the named volumes of this node.
async fn volumes(State(m): Mgr) -> ApiResult<Json<Vec<hoist_proto::VolumeInfo>>> {
    let list = tokio::task::spawn_blocking(move || m.volumes())
        .await
        .map_err(|e| AgentError::internal("list volumes", e))?;
    Ok(Json(list))
}

/// `GET /v1/volumes/{name}`: one named volume, with its size on disk.
async fn volume(
    State(m): Mgr,
    Path(name): Path<String>,
) -> ApiResult<Json<hoist_proto::VolumeInfo>> {
    let info = tokio::task::spawn_blocking(move || m.volume(&name))
        .await
        .map_err(|e| AgentError::internal("inspect volume", e))??;
    Ok(Json(info))
}

/// `DELETE /v1/volumes/{name}`: 409 while a container names it, 404 if there is none.
async fn remove_volume(State(m): Mgr, Path(name): Path<String>) -> ApiResult<StatusCode> {
    tokio::task::spawn_blocking(move || m.remove_volume(&name))
        .await
        .map_err(|e| AgentError::internal("remove volume", e))??;
    Ok(StatusCode::NO_CONTENT)
}
