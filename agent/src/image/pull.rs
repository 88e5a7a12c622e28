//! `pull`: resolve a reference to one manifest (through an index when needed), fetch and verify
//! the config, then stream every missing layer — download → hash → decompress → unpack in one
//! pass, layers in parallel, resuming an interrupted download with a `Range` request — and commit
//! the image last, so a failed or killed pull leaves no image behind.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use hoist_proto::{ImageProgress, ImageSummary, PullRequest};
use tokio::sync::mpsc;

use super::digest::sha256_of;
use super::platform::{self, Platform};
use super::registry::{RegistryClient, RegistryConfig, RemoteRef};
use super::stage::{ChannelReader, Expected, StagedLayer};
use super::{oci, ImageError, ImageStore};

/// Layers downloaded at once.
const PARALLEL_LAYERS: usize = 4;
/// Attempts to resume one blob download before giving up.
const MAX_RESUMES: u32 = 5;
/// Chunks buffered between a download and its unpacker.
const CHANNEL_DEPTH: usize = 64;

/// Where progress records go (the API streams them to the CLI).
pub type Progress = mpsc::UnboundedSender<ImageProgress>;

pub fn report(progress: &Progress, id: &str, status: &str, current: u64, total: u64) {
    let _ = progress.send(ImageProgress {
        id: id.to_owned(),
        status: status.to_owned(),
        current,
        total,
        ..ImageProgress::default()
    });
}

/// Whether the store has an image under `reference` (a name or an id).
pub async fn is_present(store: &Arc<ImageStore>, reference: &str) -> Result<bool, ImageError> {
    let (s, r) = (store.clone(), reference.to_owned());
    let found = tokio::task::spawn_blocking(move || s.resolve(&r))
        .await
        .map_err(|e| ImageError::Corrupt(format!("image lookup failed: {e}")))?;
    match found {
        Ok(_) => Ok(true),
        Err(ImageError::NotFound(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Pulls `reference` (with `auth`, if any) unless the store already has it; answers whether it
/// pulled. Builds (`FROM`, anonymously) and orchestrated replicas (with their service's
/// credentials) use it, as `docker run` and Swarm tasks do. A reference with a digest
/// (`NAME[:TAG]@sha256:...`) is present only when those bits are.
pub async fn pull_if_missing(
    store: Arc<ImageStore>,
    registries: &RegistryConfig,
    reference: &str,
    auth: Option<hoist_proto::RegistryAuth>,
    progress: Progress,
) -> Result<bool, ImageError> {
    if is_present(&store, reference).await? {
        return Ok(false);
    }
    let req = PullRequest {
        reference: reference.to_owned(),
        platform: None,
        auth,
    };
    pull(store, registries, req, progress).await?;
    Ok(true)
}

/// Pulls `req.reference` into the store; returns the summary and the manifest digest. Counted
/// in the metrics with its duration.
pub async fn pull(
    store: Arc<ImageStore>,
    registries: &RegistryConfig,
    req: PullRequest,
    progress: Progress,
) -> Result<(ImageSummary, String), ImageError> {
    let started = std::time::Instant::now();
    let pulled = fetch(store, registries, req, progress).await;
    crate::metrics::events().pull(pulled.is_ok(), started.elapsed());
    pulled
}

/// [`pull`] without the metrics.
async fn fetch(
    store: Arc<ImageStore>,
    registries: &RegistryConfig,
    req: PullRequest,
    progress: Progress,
) -> Result<(ImageSummary, String), ImageError> {
    let remote = RemoteRef::parse(&req.reference)?;
    let want = match &req.platform {
        Some(p) => Platform::parse(p).map_err(|e| ImageError::reference(&req.reference, e))?,
        None => Platform::default(),
    };
    report(&progress, "", "resolving", 0, 0);
    let client = RegistryClient::connect(
        registries,
        &remote.registry,
        &remote.repository,
        req.auth.clone(),
        "pull",
        &[],
    )
    .await?;
    let err = |m: String| ImageError::registry(&remote.registry, m);

    let (mut manifest, content_type, header_digest) =
        client.manifest(remote.manifest_reference()).await?;
    let mut digest = sha256_of(&manifest);
    let pinned = remote.digest.clone().or(header_digest);
    if let Some(want) = &pinned {
        if want != &digest {
            return Err(ImageError::DigestMismatch {
                what: format!("manifest {remote}"),
                expected: want.clone(),
                actual: digest,
            });
        }
    }
    if platform::is_index(content_type.as_deref(), &manifest) {
        let entry = platform::select(&manifest, &want).map_err(err)?;
        let (bytes, _, _) = client.manifest(&entry.digest).await?;
        verify_blob(&bytes, &entry.digest, entry.size, "platform manifest")?;
        manifest = bytes;
        digest = entry.digest;
    }
    check_manifest_type(&manifest, &digest)?;
    let parsed = oci::parse_manifest(&manifest, &digest)?;

    let config_desc = parsed.config();
    let config_digest = config_desc.digest().to_string();
    let config = client.small_blob(&config_digest).await?;
    verify_blob(&config, &config_digest, config_desc.size(), "image config")?;
    let image_config = oci::parse_image_config(&config, &config_digest)?;
    let diff_ids = image_config.rootfs().diff_ids().clone();
    if diff_ids.len() != parsed.layers().len() {
        return Err(ImageError::Corrupt(format!(
            "manifest {digest} has {} layers but its config {} diff_ids",
            parsed.layers().len(),
            diff_ids.len()
        )));
    }

    // One job per distinct layer blob.
    let mut jobs = Vec::new();
    for (layer, diff_id) in parsed.layers().iter().zip(&diff_ids) {
        let d = layer.digest().to_string();
        if jobs.iter().any(|(j, _, _): &(String, u64, String)| j == &d) {
            continue;
        }
        jobs.push((d, layer.size(), diff_id.clone()));
    }
    let client = Arc::new(client);
    // On the first failure the other downloads stop; every layer task is awaited before
    // returning, so their staged files are gone when the caller hears of the failure.
    let failed = Arc::new(AtomicBool::new(false));
    let results: Vec<Result<Option<StagedLayer>, ImageError>> = futures::stream::iter(jobs)
        .map(|(layer_digest, size, diff_id)| {
            let store = store.clone();
            let client = client.clone();
            let progress = progress.clone();
            let failed = failed.clone();
            async move {
                if failed.load(Ordering::Relaxed) {
                    return Err(ImageError::layer(layer_digest, "cancelled"));
                }
                let state = store.layer_state(&layer_digest, &diff_id)?;
                if state.blob && state.snapshot {
                    report(&progress, &layer_digest, "exists", size, size);
                    return Ok(None);
                }
                let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
                let expected = Expected {
                    digest: Some(layer_digest.clone()),
                    size: Some(size),
                    diff_id: Some(diff_id),
                };
                let unpack = !state.snapshot;
                let consumer = tokio::task::spawn_blocking(move || {
                    store.stage_layer(ChannelReader::new(rx), &expected, unpack)
                });
                let downloaded =
                    download(&client, &layer_digest, size, tx, &progress, &failed).await;
                let staged = consumer
                    .await
                    .map_err(|e| ImageError::layer(layer_digest.clone(), e.to_string()))
                    .and_then(|s| {
                        // A download error explains a consumer error better than "unexpected end".
                        downloaded?;
                        s
                    });
                if staged.is_err() {
                    failed.store(true, Ordering::Relaxed);
                }
                let staged = staged?;
                report(&progress, &layer_digest, "done", size, size);
                Ok(Some(staged))
            }
        })
        .buffer_unordered(PARALLEL_LAYERS)
        .collect()
        .await;
    let mut staged = Vec::new();
    let mut errors = Vec::new();
    for r in results {
        match r {
            Ok(s) => staged.push(s),
            Err(e) => errors.push(e),
        }
    }
    // The cause, not the cancellations it triggered.
    errors.sort_by_key(|e| e.to_string().contains("cancelled"));
    if let Some(e) = errors.into_iter().next() {
        return Err(e);
    }

    report(&progress, &digest, "manifest", 0, 0);
    // A pull by digest is also kept under `NAME@sha256:...` (the digest asked for: an index's
    // when the image is multi-platform), the name a pinned reference is looked up by.
    let mut names = vec![remote.local_name()];
    names.extend(remote.pinned_name().filter(|p| *p != names[0]));
    let store2 = store.clone();
    let summary = tokio::task::spawn_blocking(move || {
        store2.commit_image(
            &names,
            &manifest,
            &config,
            staged.into_iter().flatten().collect(),
        )
    })
    .await
    .map_err(|e| ImageError::Corrupt(format!("commit: {e}")))??;
    Ok((summary, digest))
}

/// Refuses what we cannot run: schema 1 manifests and artifacts that are not images.
fn check_manifest_type(bytes: &[u8], digest: &str) -> Result<(), ImageError> {
    let v: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| ImageError::Corrupt(format!("manifest {digest}: {e}")))?;
    if v.get("schemaVersion").and_then(|s| s.as_u64()) != Some(2) {
        return Err(ImageError::Corrupt(format!(
            "manifest {digest}: only schema 2 manifests are supported (Docker schema 1 is deprecated)"
        )));
    }
    let media = v.get("mediaType").and_then(|m| m.as_str()).unwrap_or("");
    match media {
        ""
        | "application/vnd.oci.image.manifest.v1+json"
        | "application/vnd.docker.distribution.manifest.v2+json" => Ok(()),
        other => Err(ImageError::Corrupt(format!(
            "manifest {digest}: unsupported media type {other}"
        ))),
    }
}

/// Checks a small blob against its descriptor.
pub fn verify_blob(bytes: &[u8], digest: &str, size: u64, what: &str) -> Result<(), ImageError> {
    let actual = sha256_of(bytes);
    if actual != digest {
        return Err(ImageError::DigestMismatch {
            what: what.to_owned(),
            expected: digest.to_owned(),
            actual,
        });
    }
    if bytes.len() as u64 != size {
        return Err(ImageError::Corrupt(format!(
            "{what} {digest} is {} bytes, its descriptor says {size}",
            bytes.len()
        )));
    }
    Ok(())
}

/// Streams a blob into `tx`, resuming with `Range` after an interrupted transfer. The consumer
/// going away (it failed) ends the download quietly.
async fn download(
    client: &RegistryClient,
    digest: &str,
    size: u64,
    tx: mpsc::Sender<std::io::Result<Bytes>>,
    progress: &Progress,
    failed: &AtomicBool,
) -> Result<(), ImageError> {
    let mut offset = 0u64;
    let mut failures = 0u32;
    let mut last_report = Instant::now();
    loop {
        let problem = match client.blob_from(digest, offset).await {
            Err(e) if e.failure() == super::registry::Failure::Unreachable => e.to_string(),
            Err(e) => {
                let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                return Err(e.into());
            }
            Ok(mut resp) => {
                let mut skip =
                    if offset > 0 && resp.status() != reqwest::StatusCode::PARTIAL_CONTENT {
                        offset
                    } else {
                        0
                    };
                loop {
                    match resp.chunk().await {
                        Ok(Some(mut chunk)) => {
                            if skip > 0 {
                                let n = skip.min(chunk.len() as u64);
                                let _ = chunk.split_to(n as usize);
                                skip -= n;
                            }
                            if chunk.is_empty() {
                                continue;
                            }
                            offset += chunk.len() as u64;
                            if offset > size {
                                let e = ImageError::layer(
                                    digest,
                                    format!("registry sent more than the {size} bytes the manifest says"),
                                );
                                let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                                return Err(e);
                            }
                            if failed.load(Ordering::Relaxed) {
                                let e = ImageError::layer(digest, "cancelled");
                                let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                                return Err(e);
                            }
                            if tx.send(Ok(chunk)).await.is_err() {
                                return Ok(());
                            }
                            if last_report.elapsed() >= Duration::from_millis(100) {
                                report(progress, digest, "downloading", offset, size);
                                last_report = Instant::now();
                            }
                        }
                        Ok(None) if offset == size => return Ok(()),
                        Ok(None) => break format!("transfer ended at byte {offset} of {size}"),
                        Err(e) => break super::registry::client::error_chain(&e),
                    }
                }
            }
        };
        failures += 1;
        if failures > MAX_RESUMES {
            let e = ImageError::registry(
                client.registry(),
                format!("blob {digest}: giving up after {MAX_RESUMES} resumes: {problem}"),
            );
            let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
            return Err(e);
        }
        tracing::warn!(blob = %digest, offset, error = %problem, "blob download interrupted; resuming");
        report(progress, digest, "resuming", offset, size);
        tokio::time::sleep(Duration::from_millis(200 * u64::from(failures))).await;
    }
}
