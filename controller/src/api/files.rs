//! `/v1/secrets` and `/v1/configs`: named, versioned files for services' replicas, and
//! `/v1/agent/files`, where an agent fetches the content for a task it runs.
//!
//! A secret's (or config's) content exists in the clear only in the request that creates it, in
//! memory while it is sealed under the cluster's data key (`crate::keyring`), in the answer to
//! the agent that runs a replica using it, and in that replica's tmpfs. No answer to an operator
//! holds it, and no error message quotes it.

use super::agent::{agent_version, encode};
use super::error::ApiError;
use super::services::unexpected;
use super::{read, write, Ctx};
use axum::body::Bytes;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use hoist_proto::files::{
    validate_content, validate_file_name, FileContent, FileKind, FileWrite, StoredFile, TaskFiles,
};
use hoist_proto::raft::{self, Command};
use serde::{Deserialize, Serialize};

/// A secret or config with the services that use it.
#[derive(Debug, Serialize)]
pub struct FileView {
    #[serde(flatten)]
    file: StoredFile,
    /// Services whose current spec references it.
    services: Vec<String>,
}

fn answer(r: raft::Response, status: StatusCode) -> Result<Response, ApiError> {
    match r {
        raft::Response::File(f) => {
            let status = if f.version == 1 {
                status
            } else {
                StatusCode::OK
            };
            Ok((status, Json(*f)).into_response())
        }
        raft::Response::Error(e) => Err(e.into()),
        other => Err(unexpected(&other)),
    }
}

fn name_problem(name: &str) -> Result<(), ApiError> {
    validate_file_name(name).map_err(|m| ApiError::field(StatusCode::BAD_REQUEST, "name", m))
}

async fn list(
    ctx: Ctx,
    kind: FileKind,
    q: Option<String>,
) -> Result<Json<Vec<StoredFile>>, ApiError> {
    Ok(Json(
        read(&ctx, q, |s| {
            s.files(kind).values().map(StoredFile::metadata).collect()
        })
        .await?,
    ))
}

async fn get(
    ctx: Ctx,
    kind: FileKind,
    name: String,
    q: Option<String>,
) -> Result<Json<FileView>, ApiError> {
    let found = read(&ctx, q, |s| {
        s.files(kind).get(&name).map(|f| FileView {
            file: f.metadata(),
            services: s.services_using(kind, &name),
        })
    })
    .await?;
    found
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no {kind} named {name:?}")))
}

async fn put(ctx: Ctx, kind: FileKind, name: String, body: Bytes) -> Result<Response, ApiError> {
    name_problem(&name)?;
    validate_content(kind, &body).map_err(|m| {
        let status = if body.is_empty() {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::PAYLOAD_TOO_LARGE
        };
        ApiError::field(status, "body", m)
    })?;
    // Configs are sealed as secrets are: neither is in the Raft log or a snapshot in the clear.
    let key = ctx
        .node
        .stale_read(|s| ctx.keyring.data_key(s))
        .ok_or_else(|| key_not_ready(&ctx))?;
    let data = key.seal(&crate::keyring::file_aad(kind, &name), &body);
    let w = FileWrite {
        kind,
        name,
        data,
        size: body.len() as u64,
    };
    answer(
        write(&ctx, Command::PutFile(Box::new(w))).await?,
        StatusCode::CREATED,
    )
}

pub(super) fn key_not_ready(ctx: &Ctx) -> ApiError {
    let message = if ctx.keyring.is_locked() {
        "this member is locked (autolock): it opens the cluster's data key once it is given the \
         unlock key (`hoist cluster unlock`)"
    } else {
        "this member does not hold the cluster's data key yet (the cluster is below format 2, or \
         the leader has not sealed it for this member): retry in a moment"
    };
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready", message)
}

async fn remove(ctx: Ctx, kind: FileKind, name: String) -> Result<Response, ApiError> {
    name_problem(&name)?;
    answer(
        write(&ctx, Command::RemoveFile { kind, name }).await?,
        StatusCode::OK,
    )
}

/// Declares the four handlers of one kind.
macro_rules! file_routes {
    ($kind:expr, $list:ident, $get:ident, $put:ident, $remove:ident) => {
        /// `GET /v1/{secrets,configs}`: every one, without content.
        pub async fn $list(
            State(ctx): State<Ctx>,
            RawQuery(q): RawQuery,
        ) -> Result<Json<Vec<StoredFile>>, ApiError> {
            list(ctx, $kind, q).await
        }

        /// `GET /v1/{secrets,configs}/{name}`: one, without content, and who uses it.
        pub async fn $get(
            State(ctx): State<Ctx>,
            Path(name): Path<String>,
            RawQuery(q): RawQuery,
        ) -> Result<Json<FileView>, ApiError> {
            get(ctx, $kind, name, q).await
        }

        /// `PUT /v1/{secrets,configs}/{name}` with the content as the body: creates it, or
        /// makes a new version that replaces the file in running replicas.
        pub async fn $put(
            State(ctx): State<Ctx>,
            Path(name): Path<String>,
            body: Bytes,
        ) -> Result<Response, ApiError> {
            put(ctx, $kind, name, body).await
        }

        /// `DELETE /v1/{secrets,configs}/{name}`: only when no service uses it.
        pub async fn $remove(
            State(ctx): State<Ctx>,
            Path(name): Path<String>,
        ) -> Result<Response, ApiError> {
            remove(ctx, $kind, name).await
        }
    };
}

file_routes!(
    FileKind::Secret,
    list_secrets,
    get_secret,
    put_secret,
    remove_secret
);
file_routes!(
    FileKind::Config,
    list_configs,
    get_config,
    put_config,
    remove_config
);

#[derive(Debug, Deserialize)]
pub struct TaskQuery {
    node: String,
    task: String,
}

/// `GET /v1/agent/files?node=ID&task=TASK`: the current content of every secret and config the
/// task's spec references, for the agent of the node the task is on. Format 2.
pub async fn agent_files(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    Query(q): Query<TaskQuery>,
) -> Result<Response, ApiError> {
    let format = agent_version(&headers)?.common_format();
    if format < 2 {
        return Err(ApiError::bad_request(
            "secrets and configs need an agent of format 2 or newer",
        ));
    }
    super::auth::check_acts_for(&ctx, &q.node)?;
    let files = ctx.node.stale_read(|s| -> Result<TaskFiles, ApiError> {
        let task = s
            .tasks
            .get(&q.task)
            .filter(|t| t.node == q.node)
            .ok_or_else(|| {
                ApiError::not_found(format!("no task {:?} on node {:?}", q.task, q.node))
            })?;
        let spec = s
            .spec_of(&task.service, task.service_version)
            .ok_or_else(|| ApiError::not_found(format!("no service {:?}", task.service)))?;
        let mut files = Vec::new();
        for (kind, name) in spec.file_sources() {
            let stored = s
                .files(kind)
                .get(name)
                .ok_or_else(|| ApiError::not_found(format!("{kind} {name:?} no longer exists")))?;
            let key = ctx.keyring.data_key(s).ok_or_else(|| key_not_ready(&ctx))?;
            let data = key
                .open(&crate::keyring::file_aad(kind, name), &stored.data)
                .map_err(|e| {
                    ApiError::new(
                        StatusCode::CONFLICT,
                        "unreadable",
                        format!("{kind} {name:?}: {e}"),
                    )
                })?;
            files.push(FileContent {
                kind,
                name: name.to_string(),
                version: stored.version,
                data,
            });
        }
        Ok(TaskFiles { files })
    })?;
    Ok(encode(&files, format))
}
