//! The image content store: blobs addressed by sha256, manifests, configs and unpacked layer snapshots.
//!
//! Why it is shaped like this: every later image feature (registry pull and push, docker/OCI
//! archives, builds, garbage collection) needs the same three things — immutable content named by
//! its digest, a safe way to turn a layer tarball into a directory overlayfs can use, and a small
//! mutable map of names to manifests. Layout under the store root:
//!
//! ```text
//! blobs/sha256/<hex>        layer tarballs, image configs, manifests (immutable, verified on read)
//! snapshots/<diff_id hex>/  one unpacked layer each, usable as an overlayfs lowerdir
//! index.json                references (NAME:TAG) -> manifest digest, plus snapshot sizes
//! tmp/                      staging for blobs and snapshots (same filesystem, for rename)
//! ```
//!
//! Architecture invariant: a file is visible under `blobs/` or `snapshots/` only once complete
//! (temp + fsync + rename), and the index names only content that already exists. A crash can
//! leave unreferenced content behind (for a future gc), never a reference to missing content.

pub mod archive;
mod blobs;
pub mod build;
pub mod commit;
pub mod content;
mod digest;
mod error;
pub mod export;
pub(crate) mod index;
mod oci;
pub mod platform;
pub mod pull;
pub mod push;
/// The registry client, shared with the CLI (which resolves digests with it at apply).
pub use hoist_registry as registry;
/// Image references (`NAME[:TAG]`), in the shared registry crate.
use hoist_registry::reference;
pub mod stage;
mod store;
#[cfg(test)]
mod store_tests;
#[cfg(test)]
mod testutil;
pub mod unpack;

pub use error::ImageError;
pub use reference::Reference;
pub use store::{BuiltLayer, ImageStore, ResolvedImage};
pub use unpack::{LayerLimits, LayerStats};

/// What the container manager needs from the image store: an image's config and layer dirs.
/// [`ImageStore`] is the real one; tests pass a recording fake (`crate::testing`).
pub trait Images: Send + Sync + std::fmt::Debug {
    /// An image by `NAME[:TAG]`, full id or unique id prefix ([`ImageStore::resolve`]). Blocking.
    fn resolve(&self, reference_or_id: &str) -> Result<ResolvedImage, ImageError>;
}

impl Images for ImageStore {
    fn resolve(&self, reference_or_id: &str) -> Result<ResolvedImage, ImageError> {
        ImageStore::resolve(self, reference_or_id)
    }
}
