//! Store operations the registry and archive code builds on: committing staged images (the
//! atomic last step of pull and load), reading an image's raw content (push and save), tagging,
//! inspecting, history, and garbage collection (`prune`).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::PathBuf;

use hoist_proto::{HistoryEntry, ImageInspect, ImageSummary, LayerInfo, PruneReport};

use super::digest::{self, parse_sha256};
use super::error::io_err;
use super::index::Index;
use super::oci;
use super::stage::StagedLayer;
use super::store::{blob_digests, sync_filesystem};
use super::{ImageError, ImageStore, Reference};

/// Whether the store already has a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerState {
    pub blob: bool,
    pub snapshot: bool,
}

/// An image's raw content, for push and save.
#[derive(Debug, Clone)]
pub struct ImageContent {
    /// The name it was found under (or its id).
    pub reference: String,
    pub manifest_digest: String,
    pub manifest: Vec<u8>,
    pub manifest_media_type: String,
    pub config_digest: String,
    pub config: Vec<u8>,
    /// `(digest, size, media type)` of each layer blob, lowest first.
    pub layers: Vec<(String, u64, String)>,
    pub diff_ids: Vec<String>,
}

/// The `mediaType` a manifest declares (OCI manifests may omit it).
pub fn manifest_media_type(bytes: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()
        .and_then(|v| v.get("mediaType")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| "application/vnd.oci.image.manifest.v1+json".to_owned())
}

impl ImageStore {
    /// What the store has of a layer blob and its snapshot.
    pub fn layer_state(&self, digest: &str, diff_id: &str) -> Result<LayerState, ImageError> {
        Ok(LayerState {
            blob: self.blobs.path(digest)?.is_file(),
            snapshot: self.snapshot_dir(diff_id)?.is_dir(),
        })
    }

    /// The path of a stored blob.
    pub fn blob_path(&self, digest: &str) -> Result<PathBuf, ImageError> {
        self.blobs.path(digest)
    }

    /// Makes a staged image visible: blobs and snapshots renamed into place, manifest and config
    /// stored, and — last — the index updated with `references`. Fails without touching the index
    /// when any content the image needs is missing (e.g. removed by a concurrent prune).
    pub fn commit_image(
        &self,
        references: &[String],
        manifest: &[u8],
        config: &[u8],
        layers: Vec<StagedLayer>,
    ) -> Result<ImageSummary, ImageError> {
        let _content = self.content_shared();
        let manifest_digest = digest::sha256_of(manifest);
        let parsed = oci::parse_manifest(manifest, &manifest_digest)?;
        let config_digest = digest::sha256_of(config);
        if parsed.config().digest().to_string() != config_digest {
            return Err(ImageError::DigestMismatch {
                what: "image config".into(),
                expected: parsed.config().digest().to_string(),
                actual: config_digest,
            });
        }
        let image_config = oci::parse_image_config(config, &config_digest)?;
        let diff_ids = image_config.rootfs().diff_ids().clone();
        if diff_ids.len() != parsed.layers().len() {
            return Err(ImageError::Corrupt(format!(
                "manifest {manifest_digest} has {} layers but its config {} diff_ids",
                parsed.layers().len(),
                diff_ids.len()
            )));
        }
        if layers.iter().any(|l| l.snapshot.is_some()) {
            sync_filesystem(&self.tmp)?;
        }
        let mut infos = BTreeMap::new();
        for layer in layers {
            let dest = self.blobs.path(&layer.digest)?;
            if !dest.is_file() {
                layer
                    .blob
                    .persist(&dest)
                    .map_err(|e| io_err("rename into place", &dest)(e.error))?;
            }
            if let (Some((dir, info)), Some(diff_id)) = (layer.snapshot, layer.diff_id) {
                let target = self.snapshot_dir(&diff_id)?;
                if !target.is_dir() {
                    let staged = dir.keep();
                    if let Err(e) = fs::rename(&staged, &target) {
                        let _ = fs::remove_dir_all(&staged);
                        if !target.is_dir() {
                            return Err(io_err("rename snapshot into place", &target)(e));
                        }
                    }
                }
                infos.insert(diff_id, info);
            }
        }
        self.blobs.put_bytes(config)?;
        self.blobs.put_bytes(manifest)?;
        digest::fsync_dir(&self.snapshots)?;
        if let Some(blob_dir) = self.blobs.path(&manifest_digest)?.parent() {
            digest::fsync_dir(blob_dir)?;
        }
        for (layer, diff_id) in parsed.layers().iter().zip(&diff_ids) {
            let state = self.layer_state(layer.digest().as_ref(), diff_id)?;
            if !state.blob || !state.snapshot {
                return Err(ImageError::Corrupt(format!(
                    "layer {} went missing while the image was committed (removed concurrently?); try again",
                    layer.digest()
                )));
            }
        }
        let _index = self.index_lock();
        let mut index = Index::load(&self.index_path)?;
        for (diff_id, info) in infos {
            index.snapshots.insert(diff_id, info);
        }
        for r in references {
            index.references.insert(r.clone(), manifest_digest.clone());
        }
        index.save(&self.index_path)?;
        tracing::info!(references = ?references, manifest = %manifest_digest, "committed image");
        self.summary(&index, &manifest_digest)
    }

    /// The raw manifest, config and layer list of a local image.
    pub fn content(&self, reference_or_id: &str) -> Result<ImageContent, ImageError> {
        let _content = self.content_shared();
        let index = Index::load(&self.index_path)?;
        let (shown, manifests) = self.lookup(&index, reference_or_id)?;
        let manifest_digest = manifests
            .first()
            .ok_or_else(|| ImageError::NotFound(reference_or_id.to_owned()))?
            .clone();
        let manifest = self.blobs.read_verified(&manifest_digest)?;
        let loaded = self.load(&manifest_digest)?;
        let config = self.blobs.read_verified(&loaded.config_digest)?;
        Ok(ImageContent {
            reference: shown,
            manifest_media_type: manifest_media_type(&manifest),
            manifest_digest,
            manifest,
            config_digest: loaded.config_digest.clone(),
            config,
            layers: loaded
                .manifest
                .layers()
                .iter()
                .map(|l| (l.digest().to_string(), l.size(), l.media_type().to_string()))
                .collect(),
            diff_ids: loaded.config.rootfs().diff_ids().clone(),
        })
    }

    /// Points `target` (`NAME[:TAG]`) at the image `source` names.
    pub fn tag(&self, source: &str, target: &str) -> Result<ImageSummary, ImageError> {
        let target = Reference::parse(target)?;
        let _content = self.content_shared();
        let _index = self.index_lock();
        let mut index = Index::load(&self.index_path)?;
        let (_, manifests) = self.lookup(&index, source)?;
        let manifest = manifests
            .first()
            .ok_or_else(|| ImageError::NotFound(source.to_owned()))?
            .clone();
        index
            .references
            .insert(target.to_string(), manifest.clone());
        index.save(&self.index_path)?;
        self.summary(&index, &manifest)
    }

    /// Everything `image inspect` shows.
    pub fn inspect(&self, reference_or_id: &str) -> Result<ImageInspect, ImageError> {
        let c = self.content(reference_or_id)?;
        let _content = self.content_shared();
        let index = Index::load(&self.index_path)?;
        let summary = self.summary(&index, &c.manifest_digest)?;
        let file = oci::parse_config_file(&c.config, &c.config_digest)?;
        let config = &file.image;
        Ok(ImageInspect {
            id: c.config_digest,
            references: summary.references,
            manifest_digest: c.manifest_digest,
            manifest_media_type: c.manifest_media_type,
            created_at: config.created().clone(),
            architecture: config.architecture().to_string(),
            os: config.os().to_string(),
            config: file.container_config(),
            diff_ids: c.diff_ids,
            layers: c
                .layers
                .into_iter()
                .map(|(digest, size, media_type)| LayerInfo {
                    digest,
                    media_type,
                    size,
                })
                .collect(),
            size: summary.size,
        })
    }

    /// The image's history, newest first; entries that made a layer carry its unpacked size.
    pub fn history(&self, reference_or_id: &str) -> Result<Vec<HistoryEntry>, ImageError> {
        let c = self.content(reference_or_id)?;
        let config = oci::parse_image_config(&c.config, &c.config_digest)?;
        let index = Index::load(&self.index_path)?;
        let sizes: Vec<u64> = c
            .diff_ids
            .iter()
            .map(|d| index.snapshots.get(d).map_or(0, |s| s.bytes))
            .collect();
        let history = config.history().clone().unwrap_or_default();
        let mut out = Vec::new();
        let mut layer = 0;
        if history.is_empty() {
            // Imported images carry no history: one line per layer.
            for size in &sizes {
                out.push(HistoryEntry {
                    created: config.created().clone(),
                    created_by: None,
                    comment: None,
                    empty_layer: false,
                    size: *size,
                });
            }
        }
        for h in history {
            let empty = h.empty_layer().unwrap_or(false);
            let size = if empty {
                0
            } else {
                layer += 1;
                sizes.get(layer - 1).copied().unwrap_or(0)
            };
            out.push(HistoryEntry {
                created: h.created().clone(),
                created_by: h.created_by().clone(),
                comment: h.comment().clone(),
                empty_layer: empty,
                size,
            });
        }
        out.reverse();
        Ok(out)
    }

    /// Deletes every blob and snapshot that no referenced image uses and no image in `keep_ids`
    /// (config digests of images containers run) uses.
    pub fn prune(&self, keep_ids: &BTreeSet<String>) -> Result<PruneReport, ImageError> {
        let _content = self.content_exclusive();
        let _index = self.index_lock();
        let mut index = Index::load(&self.index_path)?;
        let mut live_blobs = BTreeSet::new();
        let mut live_snapshots = BTreeSet::new();
        let keep = |manifest: &str,
                    blobs: &mut BTreeSet<String>,
                    snapshots: &mut BTreeSet<String>|
         -> Result<(), ImageError> {
            let loaded = self.load(manifest)?;
            blobs.extend(blob_digests(manifest, &loaded));
            snapshots.extend(loaded.config.rootfs().diff_ids().iter().cloned());
            Ok(())
        };
        for manifest in index.references.values().collect::<BTreeSet<_>>() {
            keep(manifest, &mut live_blobs, &mut live_snapshots)?;
        }
        let blob_dir = self.blobs.path(&format!("sha256:{}", "0".repeat(64)))?;
        let blob_dir = blob_dir.parent().unwrap_or(&self.root).to_path_buf();
        let mut all_blobs = Vec::new();
        for entry in fs::read_dir(&blob_dir).map_err(io_err("read directory", &blob_dir))? {
            let entry = entry.map_err(io_err("read directory", &blob_dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if digest::is_hex64(&name) {
                all_blobs.push((
                    format!("sha256:{name}"),
                    entry.metadata().map_or(0, |m| m.len()),
                ));
            }
        }
        // Manifests of images that containers use keep their content even when untagged.
        if !keep_ids.is_empty() {
            for (blob, size) in &all_blobs {
                if *size > super::blobs::MAX_METADATA_BYTES || live_blobs.contains(blob) {
                    continue;
                }
                let Ok(bytes) = self.blobs.read_verified(blob) else {
                    continue;
                };
                let Ok(m) = oci::parse_manifest(&bytes, blob) else {
                    continue;
                };
                if keep_ids.contains(&m.config().digest().to_string()) {
                    keep(blob, &mut live_blobs, &mut live_snapshots)?;
                }
            }
        }
        let mut report = PruneReport::default();
        let dead_snapshots: Vec<String> = fs::read_dir(&self.snapshots)
            .map_err(io_err("read directory", &self.snapshots))?
            .filter_map(|e| e.ok())
            .map(|e| format!("sha256:{}", e.file_name().to_string_lossy()))
            .filter(|d| parse_sha256(d).is_some() && !live_snapshots.contains(d))
            .collect();
        for d in &dead_snapshots {
            report.bytes += index.snapshots.get(d).map_or(0, |s| s.bytes);
        }
        index.snapshots.retain(|d, _| live_snapshots.contains(d));
        index.save(&self.index_path)?;
        for d in &dead_snapshots {
            self.remove_snapshot(d)?;
            report.snapshots += 1;
        }
        for (blob, size) in all_blobs {
            if !live_blobs.contains(&blob) {
                self.blobs.remove(&blob)?;
                report.blobs += 1;
                report.bytes += size;
            }
        }
        tracing::info!(
            blobs = report.blobs,
            snapshots = report.snapshots,
            bytes = report.bytes,
            "pruned image store"
        );
        Ok(report)
    }
}
