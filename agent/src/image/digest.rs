//! Sha256 digests: parsing `sha256:<hex>`, hashing readers and writers, atomic durable writes.
//!
//! Everything the store keeps is named by the sha256 of its bytes, so every write goes through a
//! hashing stream and every read of a blob is checked against its name.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::Path;

use sha2::{Digest as _, Sha256};

use super::error::io_err;
use super::ImageError;

pub use hoist_registry::digest::{is_hex64, parse_sha256, sha256_of, HEX_LEN};

/// A reader that hashes and counts everything read through it.
#[derive(Debug)]
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// Reads the rest of the stream (so the digest covers all of it), then returns
    /// `(sha256:<hex>, bytes read)`.
    pub fn finish(mut self) -> io::Result<(String, u64)> {
        io::copy(&mut self, &mut io::sink())?;
        Ok((
            format!("sha256:{}", hex::encode(self.hasher.finalize())),
            self.count,
        ))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// Hashes a whole stream: `(sha256:<hex>, size)`.
pub fn sha256_reader(reader: impl Read) -> io::Result<(String, u64)> {
    HashingReader::new(reader).finish()
}

/// Fsyncs a directory so a rename into it survives a crash.
pub fn fsync_dir(dir: &Path) -> Result<(), ImageError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("fsync directory", dir))
}

/// Writes `bytes` to `path` atomically and durably: a temp file in the same directory, fsync,
/// rename over `path`, fsync of the directory. Readers see the old or the new content, never a mix.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<(), ImageError> {
    let dir = path.parent().ok_or_else(|| {
        ImageError::Corrupt(format!("{} has no parent directory", path.display()))
    })?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(io_err("create temp file in", dir))?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(io_err("write", tmp.path()))?;
    tmp.persist(path)
        .map_err(|e| io_err("rename into place", path)(e.error))?;
    fsync_dir(dir)
}

/// Reads a whole file, refusing files larger than `limit` bytes.
pub fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>, ImageError> {
    let file = File::open(path).map_err(io_err("open", path))?;
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(io_err("read", path))?;
    if bytes.len() as u64 > limit {
        return Err(ImageError::Corrupt(format!(
            "{} is larger than {limit} bytes",
            path.display()
        )));
    }
    Ok(bytes)
}

/// Creates a directory and its parents, naming the path on failure.
pub fn create_dir_all(path: &Path) -> Result<(), ImageError> {
    fs::create_dir_all(path).map_err(io_err("create directory", path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_only_canonical_sha256() {
        let hex = "a".repeat(64);
        assert_eq!(parse_sha256(&format!("sha256:{hex}")), Some(hex.as_str()));
        assert_eq!(parse_sha256(&format!("sha512:{hex}")), None);
        assert_eq!(parse_sha256(&format!("sha256:{}", "A".repeat(64))), None);
        assert_eq!(parse_sha256("sha256:abc"), None);
    }

    #[test]
    fn hashing_reader_matches_known_digest() {
        // sha256("abc") from FIPS 180-2.
        let (d, n) = sha256_reader(&b"abc"[..]).unwrap();
        assert_eq!(
            d,
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(n, 3);
        assert_eq!(sha256_of(b"abc"), d);
    }

    #[test]
    fn atomic_write_replaces_content() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.json");
        atomic_write(&p, b"one").unwrap();
        atomic_write(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temp files left"
        );
        assert!(read_limited(&p, 2).is_err());
        assert_eq!(read_limited(&p, 3).unwrap(), b"two");
    }
}
