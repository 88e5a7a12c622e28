//! The agent's errors, each mapped to an HTTP status and a machine-readable code by the API.

/// What went wrong, in the operator's terms. Messages are one line, lowercase, and name the
/// container, image or value involved.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The named container or image does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request clashes with current state (name taken, container running, port in use).
    #[error("{0}")]
    Conflict(String),
    /// The request itself is malformed.
    #[error("{0}")]
    Invalid(String),
    /// The container's command could not be started; carries Docker's exit code (125, 126, 127).
    #[error("{message}")]
    StartFailed { message: String, exit_code: i32 },
    /// Anything else: I/O and kernel failures.
    #[error("{0}")]
    Internal(String),
}

impl AgentError {
    pub fn internal(context: &str, e: impl std::fmt::Display) -> Self {
        Self::Internal(format!("{context}: {e}"))
    }

    /// The `code` field of the JSON error body.
    pub fn code(&self) -> &'static str {
        match self {
            AgentError::NotFound(_) => "not_found",
            AgentError::Conflict(_) => "conflict",
            AgentError::Invalid(_) => "invalid",
            AgentError::StartFailed { exit_code: 126, .. } => "not_executable",
            AgentError::StartFailed { exit_code: 127, .. } => "command_not_found",
            AgentError::StartFailed { .. } => "start_failed",
            AgentError::Internal(_) => "internal",
        }
    }
}

impl From<crate::image::ImageError> for AgentError {
    fn from(e: crate::image::ImageError) -> Self {
        use crate::image::ImageError as E;
        match e {
            E::NotFound(_) => AgentError::NotFound(e.to_string()),
            E::InvalidReference { .. } | E::InvalidLayer { .. } | E::Archive(_) => {
                AgentError::Invalid(e.to_string())
            }
            other => AgentError::Internal(other.to_string()),
        }
    }
}

impl From<crate::network::NetworkError> for AgentError {
    fn from(e: crate::network::NetworkError) -> Self {
        use crate::network::NetworkError as E;
        match e {
            E::PortInUse { .. } => AgentError::Conflict(e.to_string()),
            other => AgentError::Internal(other.to_string()),
        }
    }
}
