//! Request bodies: read whole within a limit (413 beyond), and JSON decoded strictly by
//! `hoist_common::json_body` (the agent's reader too): 415 for another media type, 400 for a key
//! given twice, the path of the offending field in every message; unknown fields are refused by
//! the types themselves (`deny_unknown_fields`).

use super::error::ApiError;
use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, StatusCode};
use futures::StreamExt;
use hoist_common::json_body::{self, BodyError};
use serde::de::DeserializeOwned;

/// Largest JSON body accepted (a service spec is a few KiB).
pub const JSON_LIMIT: usize = 1 << 20;
/// Largest snapshot accepted for restore and largest Raft RPC body.
pub const BLOB_LIMIT: usize = 512 << 20;

/// A body over its limit is still read (and dropped) up to this size before the 413 answer, so
/// that a client still sending gets the answer instead of a reset connection.
pub const DRAIN_LIMIT: usize = 64 << 20;

/// Reads a whole request body of at most `limit` bytes.
///
/// A longer one gets 413: its remainder is read and dropped (up to [`DRAIN_LIMIT`]) first, because
/// closing a socket with unread data makes the kernel reset the connection, and the client would
/// see the reset rather than the answer. Past the drain limit the answer is sent at once.
pub async fn buffer(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("request body exceeds {limit} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let give_up = limit.max(DRAIN_LIMIT);
    if declared.is_some_and(|n| n > limit && n > give_up) {
        return Err(too_large());
    }
    let mut stream = body.into_data_stream();
    let mut kept = Vec::with_capacity(declared.unwrap_or(0).min(limit));
    let mut total = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_request(format!("reading the body: {e}")))?;
        total += chunk.len();
        if total > give_up {
            return Err(too_large());
        }
        if total <= limit {
            kept.extend_from_slice(&chunk);
        }
    }
    if total > limit {
        return Err(too_large());
    }
    Ok(Bytes::from(kept))
}

/// Decodes a JSON body with the one strict reader both APIs share (`hoist_common::json_body`):
/// `application/json` (at most `charset=utf-8`) or 415, no key twice in any object, errors
/// naming the field; `what` names the body in messages. An empty body decodes as `{}` when `T`
/// allows it. A number with an integral value (`3.0`) reads as an integer.
pub fn json<T: DeserializeOwned>(
    headers: &HeaderMap,
    bytes: &[u8],
    what: &str,
) -> Result<T, ApiError> {
    let content_type = headers.get(header::CONTENT_TYPE).map(|v| v.as_bytes());
    json_body::decode(content_type, bytes, what).map_err(|e| match e {
        BodyError::UnsupportedMediaType(m) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            m,
        ),
        BodyError::Invalid {
            path: Some(path),
            message,
        } => ApiError::field(StatusCode::BAD_REQUEST, &path, message),
        BodyError::Invalid {
            path: None,
            message,
        } => ApiError::bad_request(message),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hoist_proto::service::ServiceSpec;

    fn json_headers() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
        h
    }

    #[test]
    fn strict_types_and_keys() {
        let spec = br#"{"name":"a","image":"b"}"#;
        let e = json::<ServiceSpec>(&HeaderMap::new(), spec, "spec").unwrap_err();
        assert_eq!(e.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(e.body.code, "unsupported_media_type");
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            "application/x-www-form-urlencoded".parse().unwrap(),
        );
        assert_eq!(
            json::<ServiceSpec>(&h, spec, "spec").unwrap_err().status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
        let e = json::<ServiceSpec>(
            &json_headers(),
            br#"{"name":"a","image":"b","env":{"A":"1","A":"2"}}"#,
            "spec",
        )
        .unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(e.body.field.as_deref(), Some("env"));
        assert_eq!(e.body.message, "env: duplicate key \"A\"");
        let e = json::<ServiceSpec>(
            &json_headers(),
            br#"{"name":"a","name":"a","image":"b"}"#,
            "spec",
        )
        .unwrap_err();
        assert_eq!(e.body.message, "spec: duplicate key \"name\"");
    }

    #[test]
    fn errors_name_the_field() {
        let h = json_headers();
        let e = json::<ServiceSpec>(
            &h,
            br#"{"name":"a","image":"b","resources":{"memroy":"1"}}"#,
            "spec",
        )
        .unwrap_err();
        assert_eq!(e.body.field.as_deref(), Some("resources.memroy"));
        assert!(
            e.body
                .message
                .starts_with("resources.memroy: unknown field `memroy`"),
            "{}",
            e.body.message
        );
        let e = json::<ServiceSpec>(&h, br#"{"name":"a","image":"b","replicas":"x"}"#, "spec")
            .unwrap_err();
        assert_eq!(
            e.body.message,
            "replicas: invalid type: string \"x\", expected i64"
        );
        let e = json::<ServiceSpec>(&h, b"{not json", "spec").unwrap_err();
        assert!(
            e.body.message.starts_with("spec: key must be a string"),
            "{}",
            e.body.message
        );
    }
}
