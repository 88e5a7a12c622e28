//! The agent's JSON request bodies and the lifetime of its requests.
//!
//! [`JsonBody`] reads a body with `hoist_common::json_body`, the controller's reader too: only
//! `application/json` (with at most `charset=utf-8`, else 415), no key twice in any object
//! (400), nothing after the value, errors naming the field; bodies over [`JSON_LIMIT`] get 413.
//! axum's own `Json` took any `application/*+json` type with any charset and kept the last of
//! a repeated map key.
//!
//! [`run_to_completion`] runs every request in a task of its own, so that a client that hangs up
//! does not cancel its handler half-way: hyper drops the handler's future when the connection
//! closes, and a create dropped between its steps left a container in `created` with its
//! directory and cgroup and no one to finish or undo it. A request now finishes (a create
//! starts its container, which the client can list and remove) whether its client waits or not.

use axum::extract::{FromRequest, Request};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::StreamExt;
use hoist_common::json_body::{self, BodyError};
use hoist_proto::ApiError;
use serde::de::DeserializeOwned;

/// The largest JSON body read. A create request within every limit of `hoist_proto::limits`
/// is under 4 MiB even with every character escaped; what is beyond is refused unread.
pub const JSON_LIMIT: usize = 16 << 20;

/// A JSON body of type `T`, read strictly (see the module doc).
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = Response;

    async fn from_request(req: Request, _: &S) -> Result<Self, Response> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.as_bytes().to_vec());
        let bytes = read_limited(req.into_body(), JSON_LIMIT).await?;
        json_body::decode(content_type.as_deref(), &bytes, "request body")
            .map(JsonBody)
            .map_err(|e| match e {
                BodyError::UnsupportedMediaType(m) => error(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    m,
                ),
                e @ BodyError::Invalid { .. } => {
                    error(StatusCode::BAD_REQUEST, "invalid", e.to_string())
                }
            })
    }
}

/// A body over the limit is still read, and dropped, up to this size before the 413 answer:
/// closing a socket with unread data resets the connection, and the client would see the reset
/// rather than the answer (as the controller does, `controller/src/api/body.rs`).
const DRAIN_LIMIT: usize = 64 << 20;

/// Reads a whole body of at most `limit` bytes; a longer one is a 413.
async fn read_limited(body: axum::body::Body, limit: usize) -> Result<Vec<u8>, Response> {
    let mut stream = body.into_data_stream();
    let mut kept = Vec::new();
    let mut total = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            error(
                StatusCode::BAD_REQUEST,
                "invalid",
                format!("reading the request body: {e}"),
            )
        })?;
        total += chunk.len();
        if total > DRAIN_LIMIT {
            break;
        }
        if total <= limit {
            kept.extend_from_slice(&chunk);
        }
    }
    if total > limit {
        return Err(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("request body exceeds {limit} bytes"),
        ));
    }
    Ok(kept)
}

fn error(status: StatusCode, code: &str, message: String) -> Response {
    (
        status,
        Json(ApiError {
            code: code.into(),
            message,
        }),
    )
        .into_response()
}

/// Middleware: runs the rest of the request in its own task, which a client hanging up does not
/// cancel (see the module doc). A handler that panics is answered 500 rather than dropping the
/// connection.
pub async fn run_to_completion(req: Request, next: Next) -> Response {
    match tokio::spawn(next.run(req)).await {
        Ok(resp) => resp,
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("the request's handler failed: {e}"),
        ),
    }
}
