//! `blobs/sha256/<hex>`: immutable content named by its digest, written atomically, read verified.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::PathBuf;

use super::digest::{self, parse_sha256, HashingReader};
use super::error::io_err;
use super::ImageError;

/// Largest manifest or config read into memory (hardening.md: ≤ 4 MiB).
pub const MAX_METADATA_BYTES: u64 = hoist_registry::MAX_METADATA_BYTES;

/// The blob directory of a store.
#[derive(Debug, Clone)]
pub struct Blobs {
    dir: PathBuf,
    tmp: PathBuf,
}

impl Blobs {
    /// `dir` holds the blobs, `tmp` (same filesystem) their staging files.
    pub fn new(dir: PathBuf, tmp: PathBuf) -> Self {
        Self { dir, tmp }
    }

    /// Where the blob `sha256:<hex>` lives (whether or not it exists).
    pub fn path(&self, digest: &str) -> Result<PathBuf, ImageError> {
        let hex = parse_sha256(digest)
            .ok_or_else(|| ImageError::Corrupt(format!("{digest:?} is not a sha256 digest")))?;
        Ok(self.dir.join(hex))
    }

    /// Streams `reader` into a new blob, hashing as it goes: `(sha256:<hex>, size)`.
    pub fn put_stream(&self, reader: &mut dyn Read) -> Result<(String, u64), ImageError> {
        let mut tmp = tempfile::Builder::new()
            .prefix(".blob-")
            .tempfile_in(&self.tmp)
            .map_err(io_err("create temp file in", &self.tmp))?;
        let mut hashing = HashingReader::new(reader);
        io::copy(&mut hashing, tmp.as_file_mut()).map_err(io_err("write", tmp.path()))?;
        let (digest, size) = hashing
            .finish()
            .map_err(io_err("read input for", tmp.path()))?;
        tmp.as_file()
            .sync_all()
            .map_err(io_err("fsync", tmp.path()))?;
        let dest = self.path(&digest)?;
        tmp.persist(&dest)
            .map_err(|e| io_err("rename into place", &dest)(e.error))?;
        digest::fsync_dir(&self.dir)?;
        Ok((digest, size))
    }

    /// Stores `bytes` as a blob and returns its digest; an existing blob is left as is.
    pub fn put_bytes(&self, bytes: &[u8]) -> Result<String, ImageError> {
        let digest = digest::sha256_of(bytes);
        let dest = self.path(&digest)?;
        if !dest.exists() {
            let mut tmp = tempfile::Builder::new()
                .prefix(".blob-")
                .tempfile_in(&self.tmp)
                .map_err(io_err("create temp file in", &self.tmp))?;
            tmp.write_all(bytes)
                .and_then(|()| tmp.as_file().sync_all())
                .map_err(io_err("write", tmp.path()))?;
            tmp.persist(&dest)
                .map_err(|e| io_err("rename into place", &dest)(e.error))?;
            digest::fsync_dir(&self.dir)?;
        }
        Ok(digest)
    }

    /// Reads a small blob (manifest, config) and checks it hashes to its name.
    pub fn read_verified(&self, digest: &str) -> Result<Vec<u8>, ImageError> {
        let path = self.path(digest)?;
        let bytes = match digest::read_limited(&path, MAX_METADATA_BYTES) {
            Err(ImageError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                return Err(ImageError::Corrupt(format!("blob {digest} is missing")))
            }
            other => other?,
        };
        let actual = digest::sha256_of(&bytes);
        if actual != digest {
            return Err(ImageError::DigestMismatch {
                what: format!("blob {}", path.display()),
                expected: digest.to_owned(),
                actual,
            });
        }
        Ok(bytes)
    }

    /// Opens a blob for streaming.
    pub fn open(&self, digest: &str) -> Result<File, ImageError> {
        let path = self.path(digest)?;
        File::open(&path).map_err(io_err("open blob", &path))
    }

    /// Deletes a blob; a missing one is fine.
    pub fn remove(&self, digest: &str) -> Result<(), ImageError> {
        let path = self.path(digest)?;
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err("remove blob", &path)(e)),
            _ => Ok(()),
        }
    }
}
