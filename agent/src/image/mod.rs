//! The image content store: blobs addressed by sha256, manifests, configs and unpacked layer snapshots.
