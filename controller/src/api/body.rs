//! Request bodies: JSON decoded with the path of the offending field in the message, unknown fields
//! refused by the types themselves (`deny_unknown_fields`).

use super::error::ApiError;
use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, StatusCode};
use futures::StreamExt;
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

/// Decodes a JSON body; `what` names it in messages. An empty body decodes as `{}` when `T` allows it.
pub fn json<T: DeserializeOwned>(
    headers: &HeaderMap,
    bytes: &[u8],
    what: &str,
) -> Result<T, ApiError> {
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or("");
        // curl's `-d` sends a form type for what is JSON; accept it rather than surprise operators.
        let ok = ct.starts_with("application/json")
            || ct.contains("+json")
            || ct.starts_with("application/x-www-form-urlencoded");
        if !ok {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!("{what}: content-type must be application/json, not {ct:?}"),
            ));
        }
    }
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let msg = strip_position(&inner.to_string());
        if path.is_empty() || path == "." || path == "?" {
            ApiError::bad_request(format!("{what}: {msg}"))
        } else {
            ApiError::field(StatusCode::BAD_REQUEST, &path, msg)
        }
    })
}

/// serde_json appends " at line L column C"; the path already says where.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hoist_proto::service::ServiceSpec;

    #[test]
    fn errors_name_the_field() {
        let h = HeaderMap::new();
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
