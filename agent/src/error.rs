//! The agent's errors. Failures of the image store, the network and a container's supervisor are
//! carried as their own typed errors (the source chain stays intact); [`AgentError::kind`] is the
//! one place that decides what each means for the API: its HTTP status and machine-readable code.

use crate::containers::SupervisorError;
use crate::image::ImageError;
use crate::network::NetworkError;

/// A boxed underlying error, for failures that have no type of their own here.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What went wrong, in the operator's terms. Messages are one line, lowercase, and name the
/// container, image or value involved.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The named container does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request clashes with current state (name taken, container running).
    #[error("{0}")]
    Conflict(String),
    /// The request itself is malformed.
    #[error("{0}")]
    Invalid(String),
    /// The image store failed or refused.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// Wiring a container to the network failed or was refused (e.g. a port in use).
    #[error(transparent)]
    Network(#[from] NetworkError),
    /// A container's supervisor could not start it, or could not be asked.
    #[error(transparent)]
    Supervisor(#[from] SupervisorError),
    /// Anything else (I/O and kernel failures, a helper task that died), with what was being done.
    #[error("{context}: {source}")]
    Internal {
        context: String,
        #[source]
        source: BoxError,
    },
}

/// What a failure means for the client: one status and one `code` each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    NotFound,
    Conflict,
    Invalid,
    /// The command exists but cannot be executed (Docker's exit code 126).
    NotExecutable,
    /// The command does not exist (Docker's exit code 127).
    CommandNotFound,
    /// The container could not be started for another reason (125).
    StartFailed,
    Internal,
}

impl ErrorKind {
    /// The `code` field of the JSON error body.
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not_found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Invalid => "invalid",
            ErrorKind::NotExecutable => "not_executable",
            ErrorKind::CommandNotFound => "command_not_found",
            ErrorKind::StartFailed => "start_failed",
            ErrorKind::Internal => "internal",
        }
    }

    /// The HTTP status of the API's answer.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::NotFound => 404,
            ErrorKind::Conflict => 409,
            ErrorKind::Invalid
            | ErrorKind::NotExecutable
            | ErrorKind::CommandNotFound
            | ErrorKind::StartFailed => 400,
            ErrorKind::Internal => 500,
        }
    }
}

impl AgentError {
    /// An internal failure: `context` says what was being done, `source` why it failed.
    pub fn internal(context: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Self::Internal {
            context: context.into(),
            source: source.into(),
        }
    }

    /// What this failure means for the client (the one place that decides it).
    pub fn kind(&self) -> ErrorKind {
        match self {
            AgentError::NotFound(_) => ErrorKind::NotFound,
            AgentError::Conflict(_) => ErrorKind::Conflict,
            AgentError::Invalid(_) => ErrorKind::Invalid,
            AgentError::Image(e) => match e {
                ImageError::NotFound(_) => ErrorKind::NotFound,
                ImageError::InvalidReference { .. }
                | ImageError::InvalidLayer { .. }
                | ImageError::Archive(_) => ErrorKind::Invalid,
                _ => ErrorKind::Internal,
            },
            AgentError::Network(e) => match e {
                NetworkError::PortInUse { .. } => ErrorKind::Conflict,
                _ => ErrorKind::Internal,
            },
            AgentError::Supervisor(e) => match e {
                SupervisorError::StartFailed { exit_code: 126, .. } => ErrorKind::NotExecutable,
                SupervisorError::StartFailed { exit_code: 127, .. } => ErrorKind::CommandNotFound,
                SupervisorError::StartFailed { .. } => ErrorKind::StartFailed,
                _ => ErrorKind::Internal,
            },
            AgentError::Internal { .. } => ErrorKind::Internal,
        }
    }

    /// The `code` field of the JSON error body.
    pub fn code(&self) -> &'static str {
        self.kind().code()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn sources_are_kept_and_kinds_follow_the_source() {
        let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "denied");
        let e = AgentError::from(ImageError::Io {
            op: "read",
            path: "/data/images/index.json".into(),
            source: io,
        });
        assert_eq!(e.to_string(), "read /data/images/index.json: denied");
        assert_eq!(e.kind(), ErrorKind::Internal);
        let source = e.source().expect("the i/o error underneath");
        assert_eq!(source.to_string(), "denied");
        assert!(source.downcast_ref::<std::io::Error>().is_some());

        let e = AgentError::from(ImageError::NotFound("nope:1".into()));
        assert_eq!((e.code(), e.kind().http_status()), ("not_found", 404));
        let e = AgentError::from(NetworkError::PortInUse {
            port: 8080,
            protocol: hoist_proto::Protocol::Tcp,
            owner: "web1".into(),
        });
        assert_eq!((e.code(), e.kind().http_status()), ("conflict", 409));
        assert_eq!(
            e.to_string(),
            "host port 8080/tcp is already published by container web1"
        );
    }

    #[test]
    fn start_failures_carry_dockers_codes() {
        let failed = |exit_code| {
            AgentError::from(SupervisorError::StartFailed {
                message: "exec /nope: no such file or directory".into(),
                exit_code,
            })
        };
        assert_eq!(failed(127).code(), "command_not_found");
        assert_eq!(failed(126).code(), "not_executable");
        assert_eq!(failed(125).code(), "start_failed");
        assert_eq!(failed(125).kind().http_status(), 400);
        assert_eq!(
            failed(127).to_string(),
            "exec /nope: no such file or directory"
        );
    }

    #[test]
    fn internal_errors_name_what_was_done() {
        let e = AgentError::internal("remove cgroup", std::io::Error::other("busy"));
        assert_eq!(e.to_string(), "remove cgroup: busy");
        assert_eq!((e.code(), e.kind().http_status()), ("internal", 500));
        assert!(e.source().is_some());
    }
}
