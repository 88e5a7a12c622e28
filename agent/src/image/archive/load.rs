//! `load`: reads a docker-archive or oci-archive tarball into the store.
//!
//! The tarball is first extracted into a private temp directory (regular files only, names
//! normalised beneath it; symlinks — which `docker save` uses for repeated layers — are resolved
//! by name inside the archive, never created), then each image's layers are staged and verified
//! and the image committed.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::PathBuf;

use hoist_proto::ImageSummary;
use oci_spec::image::MediaType;
use serde::Deserialize;

use super::{ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME};
use crate::image::blobs::MAX_METADATA_BYTES;
use crate::image::digest::{self, parse_sha256};
use crate::image::error::io_err;
use crate::image::platform::{self, Platform};
use crate::image::pull::verify_blob;
use crate::image::registry::RemoteRef;
use crate::image::stage::{Expected, StagedLayer};
use crate::image::unpack::normalize;
use crate::image::{oci, ImageError, ImageStore};

/// An extracted archive: files by normalised path, plus symlink aliases.
struct Extracted {
    dir: tempfile::TempDir,
    links: BTreeMap<String, String>,
}

impl Extracted {
    fn path(&self, name: &str) -> Result<PathBuf, ImageError> {
        let mut name = normal(name)?;
        for _ in 0..16 {
            match self.links.get(&name) {
                Some(target) => name = target.clone(),
                None => break,
            }
        }
        let p = self.dir.path().join(&name);
        if !p.is_file() {
            return Err(ImageError::Archive(format!(
                "{name} is missing from the archive"
            )));
        }
        Ok(p)
    }

    fn small(&self, name: &str) -> Result<Vec<u8>, ImageError> {
        digest::read_limited(&self.path(name)?, MAX_METADATA_BYTES)
    }

    fn blob_name(digest: &str) -> Result<String, ImageError> {
        let hex = parse_sha256(digest)
            .ok_or_else(|| ImageError::Archive(format!("{digest:?} is not a sha256 digest")))?;
        Ok(format!("blobs/sha256/{hex}"))
    }
}

fn normal(name: &str) -> Result<String, ImageError> {
    let comps = normalize(name.as_bytes())
        .map_err(|e| ImageError::Archive(format!("entry {name:?}: {e}")))?;
    Ok(comps
        .iter()
        .map(|c| c.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/"))
}

impl ImageStore {
    /// Loads every image of an archive; `name` names an image the archive leaves unnamed.
    pub fn load_archive(
        &self,
        tar: impl Read,
        name: Option<&str>,
    ) -> Result<Vec<ImageSummary>, ImageError> {
        let x = self.extract(tar)?;
        let oci = x.dir.path().join("index.json").is_file();
        if !oci && !x.dir.path().join("manifest.json").is_file() {
            return Err(ImageError::Archive(
                "neither index.json (oci-archive) nor manifest.json (docker-archive) found".into(),
            ));
        }
        if oci {
            self.load_oci(&x, name)
        } else {
            self.load_docker(&x, name)
        }
    }

    fn extract(&self, tar: impl Read) -> Result<Extracted, ImageError> {
        let dir = tempfile::Builder::new()
            .prefix(".load-")
            .tempdir_in(&self.tmp)
            .map_err(io_err("create temp directory in", &self.tmp))?;
        let mut links = BTreeMap::new();
        let mut archive = tar::Archive::new(tar);
        let bad = |e: io::Error| ImageError::Archive(format!("cannot read tar: {e}"));
        for entry in archive.entries().map_err(bad)? {
            let mut entry = entry.map_err(bad)?;
            let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let name = normal(&raw)?;
            if name.is_empty() {
                continue;
            }
            let kind = entry.header().entry_type();
            if kind.is_dir() {
                continue;
            }
            if kind.is_symlink() || kind.is_hard_link() {
                let target = entry
                    .link_name_bytes()
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                // Symlinks are relative to their directory, hardlinks to the archive root.
                let joined = if kind.is_symlink() && !target.starts_with('/') {
                    match name.rsplit_once('/') {
                        Some((parent, _)) => format!("{parent}/{target}"),
                        None => target,
                    }
                } else {
                    target
                };
                links.insert(name, normal(&joined)?);
                continue;
            }
            if !kind.is_file() {
                continue;
            }
            let dest = dir.path().join(&name);
            if let Some(parent) = dest.parent() {
                digest::create_dir_all(parent)?;
            }
            let mut f = File::create(&dest).map_err(io_err("create", &dest))?;
            io::copy(&mut entry, &mut f).map_err(bad)?;
        }
        Ok(Extracted { dir, links })
    }

    fn load_oci(&self, x: &Extracted, name: Option<&str>) -> Result<Vec<ImageSummary>, ImageError> {
        #[derive(Deserialize)]
        struct Index {
            manifests: Vec<Desc>,
        }
        #[derive(Deserialize)]
        struct Desc {
            #[serde(rename = "mediaType", default)]
            media_type: String,
            digest: String,
            size: u64,
            #[serde(default)]
            annotations: BTreeMap<String, String>,
        }
        let bytes = x.small("index.json")?;
        let index: Index = serde_json::from_slice(&bytes)
            .map_err(|e| ImageError::Archive(format!("index.json: {e}")))?;
        let mut out = Vec::new();
        for desc in index.manifests {
            let mut bytes = x.small(&Extracted::blob_name(&desc.digest)?)?;
            verify_blob(&bytes, &desc.digest, desc.size, "manifest")?;
            let mut manifest_digest = desc.digest.clone();
            if platform::is_index(Some(&desc.media_type), &bytes) {
                let entry =
                    platform::select(&bytes, &Platform::default()).map_err(ImageError::Archive)?;
                bytes = x.small(&Extracted::blob_name(&entry.digest)?)?;
                verify_blob(&bytes, &entry.digest, entry.size, "platform manifest")?;
                manifest_digest = entry.digest;
            }
            let reference = desc
                .annotations
                .get(ANNOTATION_IMAGE_NAME)
                .or(desc
                    .annotations
                    .get(ANNOTATION_REF_NAME)
                    .filter(|r| r.contains(':') || r.contains('/')))
                .cloned()
                .or(name.map(str::to_owned))
                .ok_or_else(|| {
                    ImageError::Archive(format!(
                        "image {manifest_digest} has no name in the archive; give one with --tag"
                    ))
                })?;
            let manifest = oci::parse_manifest(&bytes, &manifest_digest)?;
            let config_digest = manifest.config().digest().to_string();
            let config = x.small(&Extracted::blob_name(&config_digest)?)?;
            verify_blob(
                &config,
                &config_digest,
                manifest.config().size(),
                "image config",
            )?;
            let diff_ids = oci::parse_image_config(&config, &config_digest)?
                .rootfs()
                .diff_ids()
                .clone();
            if diff_ids.len() != manifest.layers().len() {
                return Err(ImageError::Archive(format!(
                    "manifest {manifest_digest} and its config disagree on the number of layers"
                )));
            }
            let mut staged = Vec::new();
            for (layer, diff_id) in manifest.layers().iter().zip(&diff_ids) {
                let d = layer.digest().to_string();
                let state = self.layer_state(&d, diff_id)?;
                if state.blob && state.snapshot
                    || staged.iter().any(|s: &StagedLayer| s.digest == d)
                {
                    continue;
                }
                let path = x.path(&Extracted::blob_name(&d)?)?;
                let f = File::open(&path).map_err(io_err("open", &path))?;
                let expected = Expected {
                    digest: Some(d),
                    size: Some(layer.size()),
                    diff_id: Some(diff_id.clone()),
                };
                staged.push(self.stage_layer(f, &expected, !state.snapshot)?);
            }
            let local = local_name(&reference)?;
            out.push(self.commit_image(&[local], &bytes, &config, staged)?);
        }
        Ok(out)
    }

    fn load_docker(
        &self,
        x: &Extracted,
        name: Option<&str>,
    ) -> Result<Vec<ImageSummary>, ImageError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Item {
            config: String,
            #[serde(default)]
            repo_tags: Option<Vec<String>>,
            layers: Vec<String>,
        }
        let items: Vec<Item> = serde_json::from_slice(&x.small("manifest.json")?)
            .map_err(|e| ImageError::Archive(format!("manifest.json: {e}")))?;
        let mut out = Vec::new();
        for item in items {
            let config = x.small(&item.config)?;
            let config_digest = digest::sha256_of(&config);
            let diff_ids = oci::parse_image_config(&config, &config_digest)?
                .rootfs()
                .diff_ids()
                .clone();
            if diff_ids.len() != item.layers.len() {
                return Err(ImageError::Archive(format!(
                    "manifest.json lists {} layers for {}, its config {}",
                    item.layers.len(),
                    item.config,
                    diff_ids.len()
                )));
            }
            let mut descriptors = Vec::new();
            let mut staged: Vec<StagedLayer> = Vec::new();
            for (layer, diff_id) in item.layers.iter().zip(&diff_ids) {
                let path = x.path(layer)?;
                let f = File::open(&path).map_err(io_err("open", &path))?;
                let snapshot = self.snapshot_dir(diff_id)?.is_dir();
                let expected = Expected {
                    diff_id: Some(diff_id.clone()),
                    ..Expected::default()
                };
                let s = self.stage_layer(f, &expected, !snapshot)?;
                descriptors.push(oci::descriptor(s.media_type.clone(), s.size, &s.digest)?);
                if !staged.iter().any(|o| o.digest == s.digest) {
                    staged.push(s);
                }
            }
            let manifest = oci::build_manifest(
                oci::descriptor(MediaType::ImageConfig, config.len() as u64, &config_digest)?,
                descriptors,
            )?;
            let mut names = Vec::new();
            for t in item.repo_tags.unwrap_or_default() {
                names.push(local_name(&t)?);
            }
            if names.is_empty() {
                match name {
                    Some(n) => names.push(local_name(n)?),
                    None => {
                        return Err(ImageError::Archive(format!(
                            "image {config_digest} has no RepoTags; give it a name with --tag"
                        )))
                    }
                }
            }
            out.push(self.commit_image(&names, &manifest, &config, staged)?);
        }
        Ok(out)
    }
}

/// The store's name for a reference found in an archive (`docker.io/library/x:1` → `x:1`).
fn local_name(reference: &str) -> Result<String, ImageError> {
    Ok(RemoteRef::parse(reference)?.local_name())
}
