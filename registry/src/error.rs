//! The registry client's error: one enum, lowercase one-line messages naming the registry or the
//! reference, and for registry failures what kind of failure it was (the CLI says why an image
//! cannot be resolved; the agent's image store wraps the rest in its own error).

use std::io;
use std::path::PathBuf;

/// Why a registry request failed, as far as the client can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The repository, tag or digest does not exist (404).
    NotFound,
    /// Credentials are missing or were rejected (401, 403, or a token server's refusal).
    Unauthorized,
    /// The registry (or its token server) could not be reached: DNS, connect, TLS, timeout.
    Unreachable,
    /// Anything else: an unexpected status, a malformed answer.
    Other,
}

/// Everything the registry client can fail with.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The reference is not a valid `[REGISTRY/]REPO[:TAG][@DIGEST]`.
    #[error("invalid reference {reference:?}: {reason}")]
    InvalidReference { reference: String, reason: String },
    /// A registry refused or failed a request; names the registry and what was asked.
    #[error("registry {registry}: {message}")]
    Registry {
        registry: String,
        message: String,
        failure: Failure,
    },
    /// Content does not hash to the digest that names it.
    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    /// An I/O error on a named path (a blob being uploaded).
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl RegistryError {
    /// Builds a [`RegistryError::InvalidReference`].
    pub fn reference(reference: &str, reason: impl Into<String>) -> Self {
        Self::InvalidReference {
            reference: reference.to_owned(),
            reason: reason.into(),
        }
    }

    /// Builds a [`RegistryError::Registry`].
    pub fn registry(registry: &str, failure: Failure, message: impl Into<String>) -> Self {
        Self::Registry {
            registry: registry.to_owned(),
            message: message.into(),
            failure,
        }
    }

    /// What kind of failure this is ([`Failure::Other`] for everything but registry answers).
    pub fn failure(&self) -> Failure {
        match self {
            Self::Registry { failure, .. } => *failure,
            _ => Failure::Other,
        }
    }
}
