//! Query strings: the controller's extractor over `hoist_common::query` (one parser for both
//! daemons), a bad one answered like every other bad input, as a JSON 400 naming the parameter.

use super::error::ApiError;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde::Deserialize;

/// A query string decoded into `T`; a bad one is a JSON 400 naming the parameter.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parse(parts.uri.query()).map(Query)
    }
}

/// Decodes a query string (`None`: no `?`).
pub fn parse<T: DeserializeOwned>(query: Option<&str>) -> Result<T, ApiError> {
    hoist_common::query::parse(query).map_err(|e| {
        let mut err = ApiError::bad_request(e.message);
        err.body.field = e.field;
        err
    })
}

/// The query every read takes: `stale=true` answers from this member's applied state.
#[derive(Debug, Default, Deserialize)]
pub struct ReadQuery {
    #[serde(default)]
    pub stale: bool,
}

/// Whether a read's query asks for a stale read; anything but `true` or `false` is a 400.
pub fn stale(query: Option<&str>) -> Result<bool, ApiError> {
    parse::<ReadQuery>(query).map(|q| q.stale)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    #[derive(Debug, Deserialize)]
    struct Watch {
        #[allow(dead_code)]
        node: String,
        #[serde(default)]
        timeout_ms: Option<u64>,
    }

    #[test]
    fn a_bad_value_names_its_parameter_in_json() {
        let e = parse::<Watch>(Some("node=a&timeout_ms=null")).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(e.body.field.as_deref(), Some("timeout_ms"));
        assert!(
            e.body.message.starts_with("timeout_ms: "),
            "{}",
            e.body.message
        );
        let e = parse::<Watch>(Some("timeout_ms=5")).unwrap_err();
        assert_eq!(e.body.field.as_deref(), Some("node"));
        assert_eq!(e.body.message, "node: is required");
        let e = parse::<Watch>(Some("node=a&node=b")).unwrap_err();
        assert_eq!(e.body.field.as_deref(), Some("node"));
        assert_eq!(e.body.message, "node: is given more than once");
        let w = parse::<Watch>(Some("node=a%20b&timeout_ms=7&other=x")).unwrap();
        assert_eq!((w.node.as_str(), w.timeout_ms), ("a b", Some(7)));
    }

    #[test]
    fn stale_is_true_or_false() {
        assert!(!stale(None).unwrap());
        assert!(stale(Some("stale=true")).unwrap());
        assert!(!stale(Some("stale=false")).unwrap());
        for bad in ["stale=null", "stale=", "stale=1", "stale=true&stale=true"] {
            let e = stale(Some(bad)).unwrap_err();
            assert_eq!(e.body.field.as_deref(), Some("stale"), "{bad}");
        }
    }
}
