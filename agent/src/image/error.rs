//! The image store's error type: one enum, lowercase one-line messages naming the thing involved.

use std::io;
use std::path::{Path, PathBuf};

/// Everything that can go wrong in the image store.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// No image is known under this reference or id.
    #[error("image {0:?} not found")]
    NotFound(String),
    /// The reference is not a valid `NAME[:TAG]`.
    #[error("invalid reference {reference:?}: {reason}")]
    InvalidReference { reference: String, reason: String },
    /// An id prefix matches more than one image.
    #[error("image id prefix {0:?} is ambiguous: it matches several images")]
    Ambiguous(String),
    /// A layer tarball is hostile, malformed or over quota; `path` is the entry.
    #[error("invalid layer entry {path:?}: {reason}")]
    InvalidLayer { path: String, reason: String },
    /// Content does not hash to the digest that names it.
    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    /// A manifest, config or index in the store cannot be parsed or is inconsistent.
    #[error("corrupt image store: {0}")]
    Corrupt(String),
    /// A registry refused or failed a request; names the registry and what was asked.
    #[error("registry {registry}: {message}")]
    Registry { registry: String, message: String },
    /// An image archive (docker-archive or oci-archive) is malformed.
    #[error("invalid image archive: {0}")]
    Archive(String),
    /// An I/O error on a named path.
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl ImageError {
    /// Builds an [`ImageError::InvalidLayer`].
    pub(crate) fn layer(path: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidLayer {
            path: path.into(),
            reason: reason.into(),
        }
    }

    /// Builds an [`ImageError::Registry`].
    pub(crate) fn registry(registry: &str, message: impl Into<String>) -> Self {
        Self::Registry {
            registry: registry.to_owned(),
            message: message.into(),
        }
    }

    /// Builds an [`ImageError::InvalidReference`].
    pub(crate) fn reference(reference: &str, reason: impl Into<String>) -> Self {
        Self::InvalidReference {
            reference: reference.to_owned(),
            reason: reason.into(),
        }
    }
}

/// `map_err` helper: wraps an I/O (or errno) error with the operation and path.
pub(crate) fn io_err<'p, E: Into<io::Error>>(
    op: &'static str,
    path: &'p Path,
) -> impl FnOnce(E) -> ImageError + 'p {
    move |e| ImageError::Io {
        op,
        path: path.to_path_buf(),
        source: e.into(),
    }
}

impl From<hoist_registry::RegistryError> for ImageError {
    fn from(e: hoist_registry::RegistryError) -> Self {
        use hoist_registry::RegistryError as R;
        match e {
            R::InvalidReference { reference, reason } => {
                Self::InvalidReference { reference, reason }
            }
            R::Registry {
                registry, message, ..
            } => Self::Registry { registry, message },
            R::DigestMismatch {
                what,
                expected,
                actual,
            } => Self::DigestMismatch {
                what,
                expected,
                actual,
            },
            R::Io { op, path, source } => Self::Io { op, path, source },
        }
    }
}
