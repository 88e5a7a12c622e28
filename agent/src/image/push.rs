//! `push`: send a local image's blobs and manifest to the registry its name points at. Blobs the
//! repository already has (`HEAD`) are skipped; blobs another local image from the same registry
//! has are mounted across repositories (`POST ...?mount=&from=`) instead of uploaded. The
//! manifest is sent byte for byte as stored, so its digest is the same everywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use hoist_proto::PushRequest;

use super::content::ImageContent;
use super::pull::{report, Progress};
use super::registry::client::Upload;
use super::registry::{RegistryClient, RegistryConfig, RemoteRef};
use super::{ImageError, ImageStore};

const PARALLEL_BLOBS: usize = 4;

/// Pushes the local image `req.reference`; returns the manifest digest.
pub async fn push(
    store: Arc<ImageStore>,
    registries: &RegistryConfig,
    req: PushRequest,
    progress: Progress,
) -> Result<String, ImageError> {
    let remote = RemoteRef::parse(&req.reference)?;
    let s = store.clone();
    let local = req.reference.clone();
    let (content, sources) = tokio::task::spawn_blocking(move || {
        let content = s.content(&local)?;
        let sources = mount_sources(&s, &content, &remote_of(&local)?)?;
        Ok::<_, ImageError>((content, sources))
    })
    .await
    .map_err(|e| ImageError::Corrupt(format!("push: {e}")))??;
    let from: Vec<String> = sources
        .values()
        .flatten()
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let client = Arc::new(
        RegistryClient::connect(
            registries,
            &remote.registry,
            &remote.repository,
            req.auth.clone(),
            "pull,push",
            &from,
        )
        .await?,
    );

    let mut blobs: Vec<(String, u64)> = content
        .layers
        .iter()
        .map(|(d, s, _)| (d.clone(), *s))
        .collect();
    blobs.push((content.config_digest.clone(), content.config.len() as u64));
    blobs.dedup();
    futures::stream::iter(blobs)
        .map(|(digest, size)| {
            let client = client.clone();
            let store = store.clone();
            let progress = progress.clone();
            let candidates = sources.get(&digest).cloned().unwrap_or_default();
            async move { push_blob(&client, &store, &digest, size, &candidates, &progress).await }
        })
        .buffer_unordered(PARALLEL_BLOBS)
        .try_collect::<Vec<()>>()
        .await?;

    let ImageContent {
        manifest,
        manifest_digest,
        manifest_media_type,
        ..
    } = content;
    let tag = remote
        .tag
        .clone()
        .unwrap_or_else(|| manifest_digest.clone());
    report(&progress, &manifest_digest, "manifest", 0, 0);
    let answered = client
        .put_manifest(&tag, &manifest_media_type, Bytes::from(manifest))
        .await?;
    if let Some(d) = answered {
        if d != manifest_digest {
            return Err(ImageError::DigestMismatch {
                what: format!("manifest pushed to {remote}"),
                expected: manifest_digest,
                actual: d,
            });
        }
    }
    Ok(manifest_digest)
}

fn remote_of(local: &str) -> Result<RemoteRef, ImageError> {
    Ok(RemoteRef::parse(local)?)
}

/// For each blob of `content`, other repositories of the same registry that local images came
/// from (their names) holding it: candidates for a cross-repository mount.
fn mount_sources(
    store: &ImageStore,
    content: &ImageContent,
    target: &RemoteRef,
) -> Result<BTreeMap<String, Vec<String>>, ImageError> {
    let wanted: BTreeSet<&String> = content.layers.iter().map(|(d, _, _)| d).collect();
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for image in store.list()? {
        for name in &image.references {
            let Ok(r) = RemoteRef::parse(name) else {
                continue;
            };
            if r.registry != target.registry || r.repository == target.repository {
                continue;
            }
            let Ok(other) = store.content(name) else {
                continue;
            };
            for (d, _, _) in &other.layers {
                if wanted.contains(d) {
                    let list = out.entry(d.clone()).or_default();
                    if !list.contains(&r.repository) {
                        list.push(r.repository.clone());
                    }
                }
            }
        }
    }
    Ok(out)
}

async fn push_blob(
    client: &RegistryClient,
    store: &ImageStore,
    digest: &str,
    size: u64,
    mount_from: &[String],
    progress: &Progress,
) -> Result<(), ImageError> {
    if client.blob_exists(digest).await? {
        report(progress, digest, "exists", size, size);
        return Ok(());
    }
    // One mount attempt: a registry that cannot mount answers 202 with an upload session,
    // which the blob is then sent to.
    let mut location = None;
    if let Some(from) = mount_from.first() {
        match client.start_upload(Some((digest, from))).await? {
            Upload::Mounted => {
                report(progress, digest, "mounted", size, size);
                return Ok(());
            }
            Upload::Location(l) => location = Some(l),
        }
    }
    let location = match location {
        Some(l) => l,
        None => match client.start_upload(None).await? {
            Upload::Location(l) => l,
            Upload::Mounted => return Ok(()),
        },
    };
    report(progress, digest, "uploading", 0, size);
    let path = store.blob_path(digest)?;
    client.put_blob(&location, digest, &path, size).await?;
    report(progress, digest, "done", size, size);
    Ok(())
}
