//! API errors: every non-2xx answer is an [`ErrorBody`] with a code and a message naming the field
//! or thing at fault.

use crate::raft::ConsensusError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use hoist_proto::cluster::ErrorBody;
use hoist_proto::raft::{CommandError, ErrorCode};
use hoist_proto::service::FieldError;

/// An error answer. `leader` marks "not the leader, but that one is": the forwarding layer
/// retries the request there.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: Box<ErrorBody>,
    pub leader: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            body: Box::new(ErrorBody {
                code: code.into(),
                message: message.into(),
                field: None,
                errors: vec![],
            }),
            leader: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid", message)
    }

    pub fn field(status: StatusCode, field: &str, message: impl std::fmt::Display) -> ApiError {
        let mut e = ApiError::new(status, "invalid", format!("{field}: {message}"));
        e.body.field = Some(field.into());
        e
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// A spec with problems: the first names the message, all are listed.
    pub fn invalid_spec(errors: Vec<FieldError>) -> ApiError {
        let first = &errors[0];
        let mut e = ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            first.to_string(),
        );
        if errors.len() > 1 {
            e.body.message = format!("{first} (and {} more)", errors.len() - 1);
        }
        e.body.field = Some(first.field.clone());
        e.body.errors = errors;
        e
    }
}

impl From<ConsensusError> for ApiError {
    fn from(e: ConsensusError) -> ApiError {
        match e {
            ConsensusError::NotLeader {
                leader: Some((id, addr)),
            } => {
                let mut err = ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "not_leader",
                    format!("this member is not the leader; member {id} at {addr} is"),
                );
                err.leader = Some(addr);
                err
            }
            ConsensusError::NotLeader { leader: None } => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "no_leader",
                "no leader is known (election in progress or quorum lost); retry",
            ),
            ConsensusError::NoQuorum(m) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "no_quorum", m)
            }
            ConsensusError::Unknown(m) => {
                ApiError::new(StatusCode::GATEWAY_TIMEOUT, "outcome_unknown", m)
            }
            ConsensusError::Rejected(m) => ApiError::new(StatusCode::CONFLICT, "conflict", m),
            e @ ConsensusError::NeedsUpgrade { .. } => {
                ApiError::new(StatusCode::CONFLICT, "needs_upgrade", e.to_string())
            }
            // Raft stopped: the member is shutting down (or its storage failed). Another member
            // can serve; nothing was proposed (a write in flight is answered outcome_unknown).
            ConsensusError::Fatal(m) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "raft_stopped",
                format!("{m}: retry on another member"),
            ),
        }
    }
}

impl From<CommandError> for ApiError {
    fn from(e: CommandError) -> ApiError {
        let (status, code) = match e.code {
            ErrorCode::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            ErrorCode::Invalid => (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
            ErrorCode::Conflict => (StatusCode::CONFLICT, "conflict"),
        };
        let mut err = ApiError::new(status, code, e.message);
        err.body.field = e.field;
        err
    }
}

/// Names the leader at `addr` in a "not the leader" answer, for clients that go there
/// themselves (`hoist_proto::node::LEADER_HEADER`).
pub fn leader_header(resp: &mut Response, addr: &str) {
    if let Ok(v) = axum::http::HeaderValue::from_str(addr) {
        resp.headers_mut()
            .insert(hoist_proto::node::LEADER_HEADER, v);
    }
}

/// Where a not-leader answer should be forwarded to (read by the forwarding layer).
#[derive(Debug, Clone)]
pub struct LeaderHint(pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, Json(*self.body)).into_response();
        if let Some(addr) = self.leader {
            leader_header(&mut resp, &addr);
            resp.extensions_mut().insert(LeaderHint(addr));
        }
        resp
    }
}
