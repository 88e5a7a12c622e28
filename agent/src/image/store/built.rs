//! What the builder needs from the store: add a layer made from a directory diff, write an image
//! (config + manifest) without naming it, load one by manifest digest, and name it.
//!
//! Kept apart from `store.rs` so the build feature adds to the store without reshaping it. Layers
//! made by builds are stored like pulled ones: a gzip blob plus an unpacked snapshot.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use hoist_proto::ImageSummary;
use oci_spec::image::{Descriptor, ImageManifest, MediaType};

use super::super::digest::sha256_reader;
use super::super::error::io_err;
use super::super::index::Index;
use super::super::oci;
use super::super::{ImageError, Reference};
use super::ImageStore;

/// A layer blob stored by a build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltLayer {
    /// The OCI descriptor of the compressed blob (for the manifest).
    pub descriptor: Descriptor,
    /// `sha256:` of the uncompressed tar (for the config's `rootfs.diff_ids`).
    pub diff_id: String,
}

impl ImageStore {
    /// Stores an uncompressed layer tar: a gzip blob and its unpacked snapshot.
    pub fn add_built_layer(&self, tar: &Path) -> Result<BuiltLayer, ImageError> {
        let _content = self.content_shared();
        let open = || File::open(tar).map_err(io_err("open", tar));
        let (diff_id, _) = sha256_reader(BufReader::new(open()?)).map_err(io_err("read", tar))?;
        let mut gz =
            flate2::read::GzEncoder::new(BufReader::new(open()?), flate2::Compression::fast());
        let (digest, size) = self.blobs.put_stream(&mut gz)?;
        let info = self.ensure_snapshot(&digest, &diff_id)?;
        {
            let _index = self.index_lock();
            let mut index = Index::load(&self.index_path)?;
            index.snapshots.insert(diff_id.clone(), info);
            index.save(&self.index_path)?;
        }
        Ok(BuiltLayer {
            descriptor: oci::descriptor(MediaType::ImageLayerGzip, size, &digest)?,
            diff_id,
        })
    }

    /// Writes an image's config and manifest blobs (no reference): the manifest digest.
    pub fn write_built_image(
        &self,
        config: &oci::ConfigFile,
        layers: Vec<Descriptor>,
    ) -> Result<String, ImageError> {
        let _content = self.content_shared();
        let config_bytes = config.to_json()?;
        let config_digest = self.blobs.put_bytes(&config_bytes)?;
        let manifest = oci::build_manifest(
            oci::descriptor(
                MediaType::ImageConfig,
                config_bytes.len() as u64,
                &config_digest,
            )?,
            layers,
        )?;
        self.blobs.put_bytes(&manifest)
    }

    /// Loads a manifest and its config, verified; errors if a layer blob or snapshot is missing
    /// (a build cache entry whose image was removed since).
    pub fn load_built_image(
        &self,
        manifest_digest: &str,
    ) -> Result<(ImageManifest, oci::ConfigFile), ImageError> {
        let _content = self.content_shared();
        let loaded = self.load(manifest_digest)?;
        for diff_id in loaded.config.rootfs().diff_ids() {
            if !self.snapshot_dir(diff_id)?.is_dir() {
                return Err(ImageError::Corrupt(format!(
                    "snapshot {diff_id} is missing"
                )));
            }
        }
        for layer in loaded.manifest.layers() {
            let digest = layer.digest().to_string();
            if !self.blobs.path(&digest)?.is_file() {
                return Err(ImageError::Corrupt(format!(
                    "layer blob {digest} is missing"
                )));
            }
        }
        Ok((
            loaded.manifest,
            oci::ConfigFile {
                image: loaded.config,
                docker: loaded.docker,
            },
        ))
    }

    /// The manifest digest `reference_or_id` names.
    pub fn manifest_digest_of(&self, reference_or_id: &str) -> Result<String, ImageError> {
        let _content = self.content_shared();
        let index = Index::load(&self.index_path)?;
        let (_, manifests) = self.lookup(&index, reference_or_id)?;
        manifests
            .into_iter()
            .next()
            .ok_or_else(|| ImageError::NotFound(reference_or_id.to_owned()))
    }

    /// Where the snapshot of layer `diff_id` lives.
    pub fn snapshot_path(&self, diff_id: &str) -> Result<PathBuf, ImageError> {
        self.snapshot_dir(diff_id)
    }

    /// Points `reference` at `manifest_digest` (which must exist).
    pub fn name_built_image(
        &self,
        reference: &str,
        manifest_digest: &str,
    ) -> Result<ImageSummary, ImageError> {
        let reference = Reference::parse(reference)?;
        let _content = self.content_shared();
        self.load(manifest_digest)?;
        let _index = self.index_lock();
        let mut index = Index::load(&self.index_path)?;
        if index
            .references
            .get(&reference.to_string())
            .map(String::as_str)
            != Some(manifest_digest)
        {
            index
                .references
                .insert(reference.to_string(), manifest_digest.to_owned());
            index.save(&self.index_path)?;
        }
        self.summary(&index, manifest_digest)
    }
}
