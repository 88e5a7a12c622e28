//! `ImageStore`: import, list, resolve and remove images over the blob, snapshot and index files.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use hoist_proto::{ImageConfig, ImageSummary};
use oci_spec::image::{ImageConfiguration, ImageManifest, MediaType};

use super::blobs::Blobs;
use super::digest::{self, create_dir_all, parse_sha256, sha256_reader};
use super::error::io_err;
use super::index::{Index, SnapshotInfo};
use super::oci;
use super::unpack::{self, LayerLimits};
use super::{ImageError, Reference};

mod built;
pub use built::BuiltLayer;

/// Shortest id prefix `resolve` accepts (like docker's short ids).
const MIN_ID_PREFIX: usize = 12;

/// The agent's local image store. Cheap to share behind an `Arc`; all calls block.
#[derive(Debug)]
pub struct ImageStore {
    pub(super) root: PathBuf,
    pub(super) blobs: Blobs,
    pub(super) snapshots: PathBuf,
    pub(super) tmp: PathBuf,
    pub(super) index_path: PathBuf,
    pub(super) limits: LayerLimits,
    /// Shared by import, list and resolve; exclusive for remove, so a removal never deletes
    /// content an import in flight is about to reference.
    content: RwLock<()>,
    /// Serialises the index's read-modify-write cycles.
    index: Mutex<()>,
}

/// An image ready to run: its config and its unpacked layers.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    /// `sha256:<config digest hex>`.
    pub id: String,
    /// The normalised `NAME:TAG` asked for, or the id when resolved by id.
    pub reference: String,
    pub config: ImageConfig,
    /// Unpacked snapshot dirs, lowest first (reverse them for overlayfs `lowerdir=`).
    pub layers: Vec<PathBuf>,
}

/// A manifest and its config, loaded and verified.
pub(super) struct Loaded {
    pub(super) manifest: ImageManifest,
    pub(super) config: ImageConfiguration,
    /// Docker's extensions of the config (HEALTHCHECK, ONBUILD, SHELL).
    pub(super) docker: oci::DockerExtensions,
    pub(super) config_digest: String,
}

impl ImageStore {
    /// Opens (creating if needed) a store rooted at `root` with the default layer quotas.
    pub fn open(root: &Path) -> Result<Self, ImageError> {
        Self::with_limits(root, LayerLimits::default())
    }

    /// Opens a store with explicit per-layer quotas.
    pub fn with_limits(root: &Path, limits: LayerLimits) -> Result<Self, ImageError> {
        let blob_dir = root.join("blobs").join("sha256");
        let snapshots = root.join("snapshots");
        let tmp = root.join("tmp");
        for dir in [&blob_dir, &snapshots, &tmp] {
            create_dir_all(dir)?;
        }
        // Leftovers of a crash mid-import or mid-remove: never visible, safe to drop now.
        for entry in fs::read_dir(&tmp).map_err(io_err("read directory", &tmp))? {
            let path = entry.map_err(io_err("read directory", &tmp))?.path();
            let removed = if path.is_dir() {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
            if let Err(e) = removed {
                tracing::warn!(path = %path.display(), error = %e, "cannot clean image store temp entry");
            }
        }
        Ok(Self {
            root: root.to_path_buf(),
            blobs: Blobs::new(blob_dir, tmp.clone()),
            snapshots,
            tmp,
            index_path: root.join("index.json"),
            limits,
            content: RwLock::new(()),
            index: Mutex::new(()),
        })
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Imports a rootfs tarball (plain, gzip or zstd) as a one-layer image named `reference`.
    pub fn import(
        &self,
        rootfs_tar: &mut dyn Read,
        reference: &str,
        config: Option<ImageConfig>,
    ) -> Result<ImageSummary, ImageError> {
        let reference = Reference::parse(reference)?;
        let _content = self.content_shared();

        let (layer_digest, layer_size) = self.blobs.put_stream(rootfs_tar)?;
        let media_type = self.layer_media_type(&layer_digest)?;
        let diff_id = if media_type == MediaType::ImageLayer {
            layer_digest.clone()
        } else {
            let path = self.blobs.path(&layer_digest)?;
            let stream = unpack::decompress(self.blobs.open(&layer_digest)?)
                .map_err(io_err("decompress", &path))?;
            sha256_reader(stream)
                .map_err(|e| {
                    ImageError::layer("<archive>", format!("cannot decompress layer: {e}"))
                })?
                .0
        };
        let info = self.ensure_snapshot(&layer_digest, &diff_id)?;

        let config = oci::with_import_defaults(config);
        let config_bytes = oci::build_image_config(&config, vec![diff_id.clone()])?;
        let config_digest = self.blobs.put_bytes(&config_bytes)?;
        let manifest_bytes = oci::build_manifest(
            oci::descriptor(
                MediaType::ImageConfig,
                config_bytes.len() as u64,
                &config_digest,
            )?,
            vec![oci::descriptor(media_type, layer_size, &layer_digest)?],
        )?;
        let manifest_digest = self.blobs.put_bytes(&manifest_bytes)?;

        let _index = self.index_lock();
        let mut index = Index::load(&self.index_path)?;
        index.snapshots.insert(diff_id, info);
        index
            .references
            .insert(reference.to_string(), manifest_digest.clone());
        index.save(&self.index_path)?;
        tracing::info!(reference = %reference, id = %config_digest, "imported image");
        self.summary(&index, &manifest_digest)
    }

    /// Every image with at least one reference, sorted by first reference.
    pub fn list(&self) -> Result<Vec<ImageSummary>, ImageError> {
        let _content = self.content_shared();
        let index = Index::load(&self.index_path)?;
        let manifests: BTreeSet<&String> = index.references.values().collect();
        let mut out = manifests
            .into_iter()
            .map(|m| self.summary(&index, m))
            .collect::<Result<Vec<_>, _>>()?;
        out.sort_by(|a, b| a.references.cmp(&b.references));
        Ok(out)
    }

    /// Finds an image by `NAME[:TAG]`, full id `sha256:<hex>` or a unique id prefix (≥ 12 hex).
    pub fn resolve(&self, reference_or_id: &str) -> Result<ResolvedImage, ImageError> {
        let _content = self.content_shared();
        let index = Index::load(&self.index_path)?;
        let (shown, manifests) = self.lookup(&index, reference_or_id)?;
        let manifest_digest = manifests
            .first()
            .ok_or_else(|| ImageError::NotFound(reference_or_id.to_owned()))?;
        let loaded = self.load(manifest_digest)?;
        let mut layers = Vec::new();
        for diff_id in loaded.config.rootfs().diff_ids() {
            let dir = self.snapshot_dir(diff_id)?;
            if !dir.is_dir() {
                return Err(ImageError::Corrupt(format!(
                    "snapshot {} is missing",
                    dir.display()
                )));
            }
            layers.push(dir);
        }
        Ok(ResolvedImage {
            id: loaded.config_digest,
            reference: shown,
            config: oci::ConfigFile {
                image: loaded.config,
                docker: loaded.docker,
            }
            .container_config(),
            layers,
        })
    }

    /// Untags `NAME[:TAG]` (or, given an id, every tag of that image); content no remaining
    /// reference uses is deleted.
    pub fn remove(&self, reference_or_id: &str) -> Result<(), ImageError> {
        let _content = self.content_exclusive();
        let _index = self.index_lock();
        let mut index = Index::load(&self.index_path)?;
        // A name (as given, normalised, or pinned by digest) untags that name only; an id
        // untags every name of the image.
        let (found, manifests) = self.lookup(&index, reference_or_id)?;
        let by_name = Some(found).filter(|r| index.references.contains_key(r));
        match by_name {
            Some(name) => {
                index.references.remove(&name);
            }
            None => index.references.retain(|_, m| !manifests.contains(m)),
        }

        // Everything still referenced stays; of what the removed manifests used, the rest goes.
        let mut live_blobs = BTreeSet::new();
        let mut live_snapshots = BTreeSet::new();
        for manifest in index.references.values().collect::<BTreeSet<_>>() {
            let loaded = self.load(manifest)?;
            live_blobs.extend(blob_digests(manifest, &loaded));
            live_snapshots.extend(loaded.config.rootfs().diff_ids().iter().cloned());
        }
        let mut dead_blobs = BTreeSet::new();
        let mut dead_snapshots = BTreeSet::new();
        for manifest in &manifests {
            if live_blobs.contains(manifest) {
                continue;
            }
            match self.load(manifest) {
                Ok(loaded) => {
                    dead_blobs.extend(blob_digests(manifest, &loaded));
                    dead_snapshots.extend(loaded.config.rootfs().diff_ids().iter().cloned());
                }
                Err(e) => {
                    tracing::warn!(manifest = %manifest, error = %e, "removing unreadable manifest");
                    dead_blobs.insert(manifest.clone());
                }
            }
        }
        dead_blobs.retain(|d| !live_blobs.contains(d));
        dead_snapshots.retain(|d| !live_snapshots.contains(d));
        for diff_id in &dead_snapshots {
            index.snapshots.remove(diff_id);
        }
        // The index first: it must never name content that is gone.
        index.save(&self.index_path)?;
        for diff_id in &dead_snapshots {
            self.remove_snapshot(diff_id)?;
        }
        for blob in &dead_blobs {
            self.blobs.remove(blob)?;
        }
        tracing::info!(image = %reference_or_id, blobs = dead_blobs.len(), snapshots = dead_snapshots.len(), "removed image");
        Ok(())
    }

    /// Finds the manifests `s` names: `(what to call it, manifest digests)`. By name first, then
    /// by id or id prefix (several manifests can share one config, e.g. the same tar imported
    /// plain and gzipped).
    pub(super) fn lookup(
        &self,
        index: &Index,
        s: &str,
    ) -> Result<(String, Vec<String>), ImageError> {
        // Digest-pinned pulls are kept under `NAME@sha256:...` as given.
        if let Some(m) = index.references.get(s) {
            return Ok((s.to_owned(), vec![m.clone()]));
        }
        // `NAME[:TAG]@sha256:...`: exactly those bits, by the name a pull by digest keeps them
        // under, or a tag that names that very manifest; never the tag alone (it may have moved).
        if let Some(pinned) = pinned_lookup(index, s) {
            return pinned;
        }
        let parsed = Reference::parse(s);
        if let Ok(reference) = &parsed {
            if let Some(m) = index.references.get(&reference.to_string()) {
                return Ok((reference.to_string(), vec![m.clone()]));
            }
        }
        // Docker's normalisation: `docker.io/library/busybox:latest`, `library/busybox` and
        // `busybox` name the same local image (stored under the familiar name).
        let remote = super::registry::name::RemoteRef::parse(s);
        if let Ok(remote) = &remote {
            let familiar = remote.local_name();
            if let Some(m) = index.references.get(&familiar) {
                return Ok((familiar, vec![m.clone()]));
            }
        }
        let hex = s.strip_prefix("sha256:").unwrap_or(s);
        let id_like = hex.len() >= MIN_ID_PREFIX
            && hex.len() <= digest::HEX_LEN
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !id_like {
            return match (parsed, remote) {
                (Ok(reference), _) => Err(ImageError::NotFound(reference.to_string())),
                // `NAME@sha256:...`: a valid remote reference that is not here (yet).
                (Err(_), Ok(remote)) => Err(ImageError::NotFound(remote.local_name())),
                (Err(e), Err(_)) => Err(e.into()),
            };
        }
        let mut by_id: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for manifest in index.references.values().collect::<BTreeSet<_>>() {
            let config_digest = self.config_digest_of(manifest)?;
            if parse_sha256(&config_digest).is_some_and(|h| h.starts_with(hex)) {
                by_id
                    .entry(config_digest)
                    .or_default()
                    .push(manifest.clone());
            }
        }
        let mut matches = by_id.into_iter();
        match (matches.next(), matches.next()) {
            (Some((id, manifests)), None) => Ok((id, manifests)),
            (Some(_), Some(_)) => Err(ImageError::Ambiguous(s.to_owned())),
            (None, _) => Err(ImageError::NotFound(
                parsed
                    .map(|r| r.to_string())
                    .unwrap_or_else(|_| s.to_owned()),
            )),
        }
    }

    /// Makes sure `snapshots/<diff_id hex>` holds the unpacked layer blob `layer_digest`:
    /// unpacked into `tmp/`, verified against `diff_id`, then renamed into place.
    fn ensure_snapshot(
        &self,
        layer_digest: &str,
        diff_id: &str,
    ) -> Result<SnapshotInfo, ImageError> {
        let dir = self.snapshot_dir(diff_id)?;
        if dir.is_dir() {
            let index = Index::load(&self.index_path)?;
            return Ok(index.snapshots.get(diff_id).copied().unwrap_or_default());
        }
        let staging = tempfile::Builder::new()
            .prefix(".snapshot-")
            .tempdir_in(&self.tmp)
            .map_err(io_err("create temp directory in", &self.tmp))?;
        fs::set_permissions(staging.path(), fs::Permissions::from_mode(0o755))
            .map_err(io_err("chmod", staging.path()))?;
        let blob_path = self.blobs.path(layer_digest)?;
        let stream = unpack::decompress(self.blobs.open(layer_digest)?)
            .map_err(io_err("decompress", &blob_path))?;
        let stats = unpack::apply_layer(staging.path(), stream, self.limits)?;
        if stats.diff_id != diff_id {
            return Err(ImageError::DigestMismatch {
                what: format!("layer {layer_digest}"),
                expected: diff_id.to_owned(),
                actual: stats.diff_id,
            });
        }
        sync_filesystem(staging.path())?;
        let staged = staging.keep();
        match fs::rename(&staged, &dir) {
            Ok(()) => digest::fsync_dir(&self.snapshots)?,
            // Another import of the same layer won the race: its snapshot is identical.
            Err(e) if dir.is_dir() => {
                tracing::debug!(error = %e, "snapshot appeared concurrently");
                let _ = fs::remove_dir_all(&staged);
            }
            Err(e) => {
                let _ = fs::remove_dir_all(&staged);
                return Err(io_err("rename snapshot into place", &dir)(e));
            }
        }
        Ok(SnapshotInfo {
            bytes: stats.bytes,
            entries: stats.entries,
        })
    }

    /// Moves a snapshot out of `snapshots/` (atomic), then deletes it.
    pub(super) fn remove_snapshot(&self, diff_id: &str) -> Result<(), ImageError> {
        let dir = self.snapshot_dir(diff_id)?;
        let doomed = tempfile::Builder::new()
            .prefix(".removing-")
            .tempdir_in(&self.tmp)
            .map_err(io_err("create temp directory in", &self.tmp))?;
        let target = doomed.path().join("snapshot");
        match fs::rename(&dir, &target) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("move snapshot out of", &dir)(e)),
            Ok(()) => doomed.close().map_err(io_err("remove snapshot", &target)),
        }
    }

    pub(super) fn summary(
        &self,
        index: &Index,
        manifest_digest: &str,
    ) -> Result<ImageSummary, ImageError> {
        let loaded = self.load(manifest_digest)?;
        let diff_ids = loaded.config.rootfs().diff_ids();
        Ok(ImageSummary {
            id: loaded.config_digest.clone(),
            references: index
                .references
                .iter()
                .filter(|(_, m)| m.as_str() == manifest_digest)
                .map(|(r, _)| r.clone())
                .collect(),
            manifest_digest: manifest_digest.to_owned(),
            size: diff_ids
                .iter()
                .filter_map(|d| index.snapshots.get(d))
                .map(|s| s.bytes)
                .sum(),
            created_at: loaded.config.created().clone(),
            layers: loaded.manifest.layers().len(),
        })
    }

    /// Loads and verifies a manifest and its config.
    pub(super) fn load(&self, manifest_digest: &str) -> Result<Loaded, ImageError> {
        let manifest =
            oci::parse_manifest(&self.blobs.read_verified(manifest_digest)?, manifest_digest)?;
        let descriptor = manifest.config();
        let config_digest = descriptor.digest().to_string();
        let bytes = self.blobs.read_verified(&config_digest)?;
        if bytes.len() as u64 != descriptor.size() {
            return Err(ImageError::Corrupt(format!(
                "config {config_digest} is {} bytes, its descriptor says {}",
                bytes.len(),
                descriptor.size()
            )));
        }
        let oci::ConfigFile {
            image: config,
            docker,
        } = oci::parse_config_file(&bytes, &config_digest)?;
        if config.rootfs().diff_ids().len() != manifest.layers().len() {
            return Err(ImageError::Corrupt(format!(
                "manifest {manifest_digest} has {} layers but its config {} diff_ids",
                manifest.layers().len(),
                config.rootfs().diff_ids().len()
            )));
        }
        Ok(Loaded {
            manifest,
            config,
            docker,
            config_digest,
        })
    }

    fn config_digest_of(&self, manifest_digest: &str) -> Result<String, ImageError> {
        let manifest =
            oci::parse_manifest(&self.blobs.read_verified(manifest_digest)?, manifest_digest)?;
        Ok(manifest.config().digest().to_string())
    }

    fn layer_media_type(&self, layer_digest: &str) -> Result<MediaType, ImageError> {
        let path = self.blobs.path(layer_digest)?;
        let mut head = Vec::with_capacity(4);
        File::open(&path)
            .and_then(|f| f.take(4).read_to_end(&mut head))
            .map_err(io_err("read", &path))?;
        Ok(unpack::layer_media_type(&head))
    }

    pub(super) fn snapshot_dir(&self, diff_id: &str) -> Result<PathBuf, ImageError> {
        let hex = parse_sha256(diff_id).ok_or_else(|| {
            ImageError::Corrupt(format!("diff_id {diff_id:?} is not a sha256 digest"))
        })?;
        Ok(self.snapshots.join(hex))
    }

    pub(super) fn content_shared(&self) -> RwLockReadGuard<'_, ()> {
        self.content.read().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn content_exclusive(&self) -> RwLockWriteGuard<'_, ()> {
        self.content.write().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn index_lock(&self) -> MutexGuard<'_, ()> {
        self.index.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The manifest, config and layer blobs an image uses.
pub(super) fn blob_digests(manifest_digest: &str, loaded: &Loaded) -> Vec<String> {
    let mut out = vec![manifest_digest.to_owned(), loaded.config_digest.clone()];
    out.extend(
        loaded
            .manifest
            .layers()
            .iter()
            .map(|l| l.digest().to_string()),
    );
    out
}

/// Flushes a freshly unpacked snapshot to disk before it is renamed into view.
pub(super) fn sync_filesystem(path: &Path) -> Result<(), ImageError> {
    let dir = File::open(path).map_err(io_err("open", path))?;
    nix::unistd::syncfs(&dir).map_err(io_err("syncfs", path))
}

/// The lookup of a reference with a digest (`None` when `s` has none): found under its pinned
/// name, or under its tag when the tag names the pinned manifest itself; else not found.
fn pinned_lookup(index: &Index, s: &str) -> Option<Result<(String, Vec<String>), ImageError>> {
    let remote = super::registry::RemoteRef::parse(s).ok()?;
    let digest = remote.digest.clone()?;
    let pinned = remote.pinned_name()?;
    if let Some(m) = index.references.get(&pinned) {
        return Some(Ok((pinned, vec![m.clone()])));
    }
    let tagged = remote.local_name();
    if index.references.get(&tagged) == Some(&digest) {
        return Some(Ok((pinned, vec![digest])));
    }
    Some(Err(ImageError::NotFound(s.to_owned())))
}
