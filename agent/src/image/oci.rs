//! Building and reading OCI image configs and manifests (types from `oci-spec`).
//!
//! Serialisation is canonical (keys sorted, no whitespace) so importing the same content twice
//! yields byte-identical configs and manifests, hence the same digests.

use std::collections::HashMap;

use hoist_proto::ImageConfig;
use oci_spec::image::{
    Config, ConfigBuilder, Descriptor, Digest, ImageConfiguration, ImageConfigurationBuilder,
    ImageManifest, ImageManifestBuilder, MediaType, RootFsBuilder,
};
use serde::Serialize;

use super::ImageError;

/// The `PATH` an imported image gets when its config names none.
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Canonical JSON: through `serde_json::Value`, whose maps are sorted (`HashMap` fields are not).
pub fn canonical_json(value: &impl Serialize) -> Result<Vec<u8>, ImageError> {
    serde_json::to_value(value)
        .and_then(|v| serde_json::to_vec(&v))
        .map_err(|e| ImageError::Corrupt(format!("cannot encode json: {e}")))
}

/// Fills the defaults of an imported image: `PATH` when the env has none, `Cmd ["/bin/sh"]`
/// when neither entrypoint nor cmd is given.
pub fn with_import_defaults(config: Option<ImageConfig>) -> ImageConfig {
    let mut config = config.unwrap_or_default();
    if !config.env.iter().any(|e| e.starts_with("PATH=")) {
        config.env.insert(0, DEFAULT_PATH.to_owned());
    }
    if config.cmd.is_none() && config.entrypoint.is_none() {
        config.cmd = Some(vec!["/bin/sh".to_owned()]);
    }
    config
}

/// Our config → the OCI `config` object.
pub fn to_oci_config(c: &ImageConfig) -> Result<Config, ImageError> {
    let mut b = ConfigBuilder::default().env(c.env.clone());
    if let Some(u) = &c.user {
        b = b.user(u.clone());
    }
    if let Some(e) = &c.entrypoint {
        b = b.entrypoint(e.clone());
    }
    if let Some(cmd) = &c.cmd {
        b = b.cmd(cmd.clone());
    }
    if let Some(w) = &c.working_dir {
        b = b.working_dir(w.clone());
    }
    if let Some(s) = &c.stop_signal {
        b = b.stop_signal(s.clone());
    }
    if !c.exposed_ports.is_empty() {
        b = b.exposed_ports(c.exposed_ports.clone());
    }
    if !c.labels.is_empty() {
        b = b.labels(
            c.labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<HashMap<_, _>>(),
        );
    }
    b.build()
        .map_err(|e| ImageError::Corrupt(format!("cannot build image config: {e}")))
}

/// The OCI `config` object → ours.
pub fn from_oci_config(c: Option<&Config>) -> ImageConfig {
    let Some(c) = c else {
        return ImageConfig::default();
    };
    let mut exposed_ports = c.exposed_ports().clone().unwrap_or_default();
    exposed_ports.sort();
    ImageConfig {
        user: c.user().clone(),
        env: c.env().clone().unwrap_or_default(),
        entrypoint: c.entrypoint().clone(),
        cmd: c.cmd().clone(),
        working_dir: c.working_dir().clone(),
        stop_signal: c.stop_signal().clone(),
        exposed_ports,
        labels: c.labels().clone().unwrap_or_default().into_iter().collect(),
    }
}

/// A one-or-more-layer image configuration (no timestamps: imports must be reproducible).
pub fn build_image_config(
    config: &ImageConfig,
    diff_ids: Vec<String>,
) -> Result<Vec<u8>, ImageError> {
    let rootfs = RootFsBuilder::default()
        .typ("layers")
        .diff_ids(diff_ids)
        .build()
        .map_err(|e| ImageError::Corrupt(format!("cannot build rootfs: {e}")))?;
    let image = ImageConfigurationBuilder::default()
        .config(to_oci_config(config)?)
        .rootfs(rootfs)
        .build()
        .map_err(|e| ImageError::Corrupt(format!("cannot build image config: {e}")))?;
    canonical_json(&image)
}

/// An OCI image manifest for a config blob and layer blobs.
pub fn build_manifest(config: Descriptor, layers: Vec<Descriptor>) -> Result<Vec<u8>, ImageError> {
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(config)
        .layers(layers)
        .build()
        .map_err(|e| ImageError::Corrupt(format!("cannot build manifest: {e}")))?;
    canonical_json(&manifest)
}

/// A descriptor for a blob we just stored.
pub fn descriptor(
    media_type: MediaType,
    size: u64,
    digest: &str,
) -> Result<Descriptor, ImageError> {
    let digest: Digest = digest
        .parse()
        .map_err(|e| ImageError::Corrupt(format!("bad digest {digest:?}: {e}")))?;
    Ok(Descriptor::new(media_type, size, digest))
}

pub fn parse_manifest(bytes: &[u8], digest: &str) -> Result<ImageManifest, ImageError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ImageError::Corrupt(format!("manifest {digest}: {e}")))
}

pub fn parse_image_config(bytes: &[u8], digest: &str) -> Result<ImageConfiguration, ImageError> {
    serde_json::from_slice(bytes).map_err(|e| ImageError::Corrupt(format!("config {digest}: {e}")))
}
