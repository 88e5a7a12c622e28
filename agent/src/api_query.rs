//! The agent API's query strings: `hoist_common::query` (the parser both daemons share) as an
//! extractor whose bad input is a JSON 400 naming the parameter, like every other error of the
//! API (axum's own `Query` answers `text/plain`).

use crate::error::AgentError;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

/// A query string decoded into `T`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = AgentError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, AgentError> {
        hoist_common::query::parse(parts.uri.query())
            .map(Query)
            .map_err(|e| AgentError::Invalid(e.message))
    }
}
