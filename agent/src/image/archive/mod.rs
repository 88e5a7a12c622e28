//! Image archives: `docker save` tarballs (docker-archive: `manifest.json`, `repositories`,
//! `<id>.json` configs and `<id>/layer.tar` layers) and OCI image layouts in a tarball
//! (oci-archive: `oci-layout`, `index.json`, `blobs/sha256/<hex>`), read by `load` and written by
//! `save`. Loading verifies every digest like a pull and commits each image atomically.

pub mod load;
pub mod save;

/// Annotation Docker and containerd put the full image name in.
pub const ANNOTATION_IMAGE_NAME: &str = "io.containerd.image.name";
/// The OCI annotation for a reference name inside a layout (usually just the tag).
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Which kind of archive `save` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Docker,
    Oci,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "docker" | "docker-archive" => Ok(Self::Docker),
            "oci" | "oci-archive" => Ok(Self::Oci),
            other => Err(format!("unknown archive format {other:?} (docker or oci)")),
        }
    }
}
