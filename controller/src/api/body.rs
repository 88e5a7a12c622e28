//! Request bodies: JSON decoded with the path of the offending field in the message, unknown fields
//! refused by the types themselves (`deny_unknown_fields`).

use super::error::ApiError;
use axum::http::{header, HeaderMap, StatusCode};
use serde::de::DeserializeOwned;

/// Largest JSON body accepted (a service spec is a few KiB).
pub const JSON_LIMIT: usize = 1 << 20;
/// Largest snapshot accepted for restore and largest Raft RPC body.
pub const BLOB_LIMIT: usize = 512 << 20;

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
