//! Query strings decoded into typed structs, for both daemons' APIs: a bad one is told as the
//! parameter at fault and what is wrong with it, for the API to answer as a JSON 400 like any
//! other bad input (axum's own `Query` answers `text/plain`, which neither API documents).
//!
//! A parameter given twice is refused, as a repeated JSON key is; parameters a struct does not
//! name are ignored, so that an older daemon does not refuse a newer client.

use serde::de::DeserializeOwned;

/// What is wrong with a query string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    /// The parameter at fault, when one is.
    pub field: Option<String>,
    /// One line, starting with the parameter's name when there is one.
    pub message: String,
}

/// Decodes a query string (`None`: the URL has no `?`).
pub fn parse<T: DeserializeOwned>(query: Option<&str>) -> Result<T, QueryError> {
    let de =
        serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.unwrap_or("").as_bytes()));
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        // serde names a missing or repeated parameter in its message, with no path.
        let named = inner
            .split('`')
            .nth(1)
            .filter(|_| inner.starts_with("missing field") || inner.starts_with("duplicate field"));
        let (field, what) = match (path.as_str(), named) {
            ("." | "?" | "", Some(name)) if inner.starts_with("missing") => {
                (Some(name.to_string()), "is required".to_string())
            }
            ("." | "?" | "", Some(name)) => (
                Some(name.to_string()),
                "is given more than once".to_string(),
            ),
            ("." | "?" | "", None) => (None, inner),
            (name, _) => (Some(name.to_string()), inner),
        };
        let message = match &field {
            Some(f) => format!("{f}: {what}"),
            None => format!("query: {what}"),
        };
        QueryError { field, message }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    struct Watch {
        node: String,
        #[serde(default)]
        timeout_ms: Option<u64>,
    }

    #[test]
    fn a_bad_parameter_is_named() {
        let e = parse::<Watch>(Some("node=a&timeout_ms=null")).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("timeout_ms"));
        assert!(e.message.starts_with("timeout_ms: "), "{}", e.message);
        let e = parse::<Watch>(Some("timeout_ms=5")).unwrap_err();
        assert_eq!(e.message, "node: is required");
        let e = parse::<Watch>(Some("node=a&node=b")).unwrap_err();
        assert_eq!(e.message, "node: is given more than once");
        let w = parse::<Watch>(Some("node=a%20b&timeout_ms=7&other=x")).unwrap();
        assert_eq!((w.node.as_str(), w.timeout_ms), ("a b", Some(7)));
    }
}
