//! Staging a layer: one pass over the (compressed) blob stream that writes the blob file, hashes
//! it, decompresses it and unpacks it into a snapshot directory, all under the store's `tmp/`.
//!
//! Nothing staged is visible: the blob is a temp file and the snapshot a temp directory until
//! [`ImageStore::commit_image`](super::ImageStore::commit_image) renames them into place, and
//! only after the blob's digest and size and the layer's `diff_id` matched what the manifest and
//! config promised. A dropped `StagedLayer` deletes its files, so a failed pull leaves nothing.
//! Unpacking before the digest check is safe because the unpacker is the security boundary
//! anyway (it contains hostile tars) and its output stays in `tmp/` until verified.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};

use bytes::Bytes;
use sha2::{Digest as _, Sha256};
use tempfile::{TempDir, TempPath};

use super::error::io_err;
use super::index::SnapshotInfo;
use super::unpack;
use super::{ImageError, ImageStore};

/// A verified layer in `tmp/`, ready to be committed.
#[derive(Debug)]
pub struct StagedLayer {
    /// `sha256:<hex>` of the blob as stored (compressed or not).
    pub digest: String,
    pub size: u64,
    /// OCI media type from the blob's magic bytes.
    pub media_type: oci_spec::image::MediaType,
    /// `sha256:<hex>` of the uncompressed tar; `None` when not unpacked (snapshot already there).
    pub diff_id: Option<String>,
    /// The blob's temp file.
    pub blob: TempPath,
    /// The unpacked snapshot, when one was made.
    pub snapshot: Option<(TempDir, SnapshotInfo)>,
}

/// What the caller knows about the layer in advance (from a manifest and config).
#[derive(Debug, Clone, Default)]
pub struct Expected {
    pub digest: Option<String>,
    pub size: Option<u64>,
    pub diff_id: Option<String>,
}

/// Copies everything read through it into a file while hashing and counting; refuses to read
/// past an expected size (a registry sending more than the descriptor says).
struct Tee<R> {
    inner: R,
    out: BufWriter<File>,
    hasher: Sha256,
    count: u64,
    limit: Option<u64>,
    head: Vec<u8>,
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        if self.limit.is_some_and(|l| self.count > l) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "blob is larger than the {} bytes its descriptor says",
                    self.limit.unwrap_or(0)
                ),
            ));
        }
        if self.head.len() < 4 {
            let take = (4 - self.head.len()).min(n);
            self.head.extend_from_slice(&buf[..take]);
        }
        self.hasher.update(&buf[..n]);
        self.out.write_all(&buf[..n])?;
        Ok(n)
    }
}

impl ImageStore {
    /// Stages one layer from `reader` (see the module doc). With `unpack` false only the blob is
    /// kept (its snapshot already exists).
    pub fn stage_layer(
        &self,
        reader: impl Read,
        expected: &Expected,
        unpack: bool,
    ) -> Result<StagedLayer, ImageError> {
        let tmp = tempfile::Builder::new()
            .prefix(".blob-")
            .tempfile_in(&self.tmp)
            .map_err(io_err("create temp file in", &self.tmp))?;
        let (file, blob) = tmp.into_parts();
        let mut tee = Tee {
            inner: reader,
            out: BufWriter::with_capacity(1 << 20, file),
            hasher: Sha256::new(),
            count: 0,
            limit: expected.size,
            head: Vec::with_capacity(4),
        };
        let what = expected
            .digest
            .clone()
            .unwrap_or_else(|| "<layer>".to_owned());
        let read_err =
            |e: io::Error| ImageError::layer(what.clone(), format!("cannot read layer: {e}"));
        let mut snapshot = None;
        let mut diff_id = None;
        if unpack {
            let staging = tempfile::Builder::new()
                .prefix(".snapshot-")
                .tempdir_in(&self.tmp)
                .map_err(io_err("create temp directory in", &self.tmp))?;
            std::fs::set_permissions(
                staging.path(),
                std::os::unix::fs::PermissionsExt::from_mode(0o755),
            )
            .map_err(io_err("chmod", staging.path()))?;
            let stats = {
                let stream = unpack::decompress(&mut tee).map_err(read_err)?;
                unpack::apply_layer(staging.path(), stream, self.limits)?
            };
            if let Some(want) = &expected.diff_id {
                if &stats.diff_id != want {
                    return Err(ImageError::DigestMismatch {
                        what: format!("uncompressed layer {what}"),
                        expected: want.clone(),
                        actual: stats.diff_id,
                    });
                }
            }
            diff_id = Some(stats.diff_id);
            snapshot = Some((
                staging,
                SnapshotInfo {
                    bytes: stats.bytes,
                    entries: stats.entries,
                },
            ));
        }
        // Whatever the decompressor left unread (trailing padding) still counts for the digest.
        io::copy(&mut tee, &mut io::sink()).map_err(read_err)?;
        tee.out
            .flush()
            .and_then(|()| tee.out.get_ref().sync_data())
            .map_err(io_err("write", &blob))?;
        let digest = format!("sha256:{}", hex::encode(tee.hasher.finalize()));
        if let Some(want) = &expected.digest {
            if &digest != want {
                return Err(ImageError::DigestMismatch {
                    what: format!("layer blob {want}"),
                    expected: want.clone(),
                    actual: digest,
                });
            }
        }
        if let Some(want) = expected.size {
            if tee.count != want {
                return Err(ImageError::layer(
                    what,
                    format!("blob is {} bytes, its descriptor says {want}", tee.count),
                ));
            }
        }
        Ok(StagedLayer {
            digest,
            size: tee.count,
            media_type: unpack::layer_media_type(&tee.head),
            diff_id,
            blob,
            snapshot,
        })
    }
}

/// A blocking `Read` over chunks sent by an async task (the HTTP download); an `Err` item ends the
/// stream with that error, a closed channel is the end of the stream.
#[derive(Debug)]
pub struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<io::Result<Bytes>>,
    cur: Bytes,
}

impl ChannelReader {
    pub fn new(rx: tokio::sync::mpsc::Receiver<io::Result<Bytes>>) -> Self {
        Self {
            rx,
            cur: Bytes::new(),
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.cur = b,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur.split_to(n));
        Ok(n)
    }
}
