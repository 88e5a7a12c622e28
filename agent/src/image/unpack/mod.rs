//! The layer unpacker: applies one layer tarball onto a snapshot directory, safely.
//!
//! This is the security boundary between an untrusted image and the host. Every entry is resolved
//! beneath the layer root by this module (never by the `tar` crate's `unpack_in`): paths are
//! normalised lexically and rejected when `..` would climb above the root, absolute paths are taken
//! relative to the root, and parents are opened component by component with `O_NOFOLLOW`. A
//! symlink is created as an entry but never followed: an entry beneath one is rejected. Hardlinks
//! must name an existing non-directory inside the root. Device nodes, fifos and sockets are skipped
//! (containers get their own `/dev`). OCI whiteouts are converted to overlayfs form: `.wh.NAME`
//! becomes a 0:0 character device `NAME`, `.wh..wh..opq` the xattr `trusted.overlay.opaque=y`.
//! A per-layer byte and entry quota stops decompression bombs.
//!
//! The caller unpacks into a fresh temporary directory and renames it into place only on success
//! (see the store), so a rejected or crashed unpack never leaves a half snapshot visible.

mod entry;
mod fsat;
#[cfg(test)]
mod tests;

use std::ffi::OsString;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::Path;

use nix::fcntl::open;
use nix::sys::stat::Mode;

use super::digest::HashingReader;
use super::error::io_err;
use super::ImageError;

/// Longest entry path accepted (Linux `PATH_MAX`); bounds the depth of what a layer can create.
const MAX_PATH_LEN: usize = 4096;

/// Per-layer quotas against decompression bombs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerLimits {
    /// Most bytes of regular-file content one layer may write (sparse files count expanded).
    pub max_bytes: u64,
    /// Most entries (including implicitly created parent directories) one layer may create.
    pub max_entries: u64,
}

impl Default for LayerLimits {
    fn default() -> Self {
        Self {
            max_bytes: 32 << 30,
            max_entries: 2_000_000,
        }
    }
}

/// What applying a layer produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerStats {
    /// `sha256:<hex>` of the uncompressed tar stream (the OCI `diff_id`).
    pub diff_id: String,
    /// Bytes of regular-file content written.
    pub bytes: u64,
    /// Entries processed, including skipped ones and created parents.
    pub entries: u64,
}

/// Applies the uncompressed layer tar `tar` onto the existing directory `root`.
///
/// On error the directory is left partly written: callers unpack into a temporary directory and
/// discard it on failure.
pub fn apply_layer(
    root: &Path,
    tar: impl Read,
    limits: LayerLimits,
) -> Result<LayerStats, ImageError> {
    let root_fd =
        open(root, fsat::DIR_NOFOLLOW, Mode::empty()).map_err(io_err("open layer root", root))?;
    let mut unpacker = Unpacker {
        root: root_fd,
        root_path: root,
        limits,
        bytes: 0,
        entries: 0,
        dir_times: Vec::new(),
    };
    let mut archive = tar::Archive::new(ZeroTail::new(HashingReader::new(tar)));
    let entries = archive
        .entries()
        .map_err(|e| ImageError::layer("<archive>", format!("cannot read tar: {e}")))?;
    for entry in entries {
        let mut entry = entry
            .map_err(|e| ImageError::layer("<archive>", format!("cannot read tar entry: {e}")))?;
        unpacker.apply_entry(&mut entry)?;
    }
    unpacker.restore_dir_times();
    let (diff_id, _) = archive
        .into_inner()
        .inner
        .finish()
        .map_err(|e| ImageError::layer("<archive>", format!("cannot read tar: {e}")))?;
    Ok(LayerStats {
        diff_id,
        bytes: unpacker.bytes,
        entries: unpacker.entries,
    })
}

/// Answers up to 1 KiB of zeros after the real stream ends, so a tar cut off right after its
/// last entry's data (no padding, no end-of-archive blocks — what `umoci insert` 0.4.7 writes)
/// reads as complete, as Go's `archive/tar` (Docker, containerd, umoci) accepts it. The zeros are
/// outside the hashed stream: the `diff_id` is that of the real bytes, which pulls and loads
/// check against the image config.
struct ZeroTail<R> {
    inner: R,
    zeros_left: usize,
    ended: bool,
}

impl<R> ZeroTail<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            zeros_left: 1024,
            ended: false,
        }
    }
}

impl<R: Read> Read for ZeroTail<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if !self.ended {
            let n = self.inner.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            self.ended = true;
        }
        let n = buf.len().min(self.zeros_left);
        buf[..n].fill(0);
        self.zeros_left -= n;
        Ok(n)
    }
}

/// State of one layer application.
struct Unpacker<'a> {
    /// The layer root, opened once; every operation is relative to it.
    root: OwnedFd,
    root_path: &'a Path,
    limits: LayerLimits,
    bytes: u64,
    entries: u64,
    /// Directory mtimes, applied last (creating children would change them).
    dir_times: Vec<(Vec<OsString>, u64)>,
}

/// Normalises a tar entry path into components beneath the root: empty and `.` components are
/// dropped, a leading `/` is ignored, `..` removes the previous component and is an error when
/// there is none (the path would escape the root).
pub(crate) fn normalize(raw: &[u8]) -> Result<Vec<OsString>, String> {
    use std::os::unix::ffi::OsStrExt;
    if raw.len() > MAX_PATH_LEN {
        return Err(format!("path is longer than {MAX_PATH_LEN} bytes"));
    }
    if raw.contains(&0) {
        return Err("path contains a NUL byte".to_owned());
    }
    let mut out: Vec<OsString> = Vec::new();
    for comp in raw.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                if out.pop().is_none() {
                    return Err("path escapes the layer root".to_owned());
                }
            }
            c => out.push(std::ffi::OsStr::from_bytes(c).to_os_string()),
        }
    }
    Ok(out)
}

/// Renders a path for messages.
fn display(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw).into_owned()
}

/// Where a (compressed or plain) layer stream is decompressed: detects gzip and zstd by their
/// magic bytes, anything else is taken as a plain tar.
pub fn decompress<'r>(mut reader: impl Read + 'r) -> std::io::Result<Box<dyn Read + 'r>> {
    let mut magic = [0u8; 4];
    let mut n = 0;
    while n < magic.len() {
        match reader.read(&mut magic[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let head = std::io::Cursor::new(magic[..n].to_vec());
    let stream = head.chain(reader);
    Ok(match &magic[..n] {
        [0x1f, 0x8b, ..] => Box::new(flate2::read::MultiGzDecoder::new(stream)),
        [0x28, 0xb5, 0x2f, 0xfd] => Box::new(zstd::stream::read::Decoder::new(stream)?),
        _ => Box::new(stream),
    })
}

/// The media type of a layer blob, from its first bytes.
pub fn layer_media_type(head: &[u8]) -> oci_spec::image::MediaType {
    use oci_spec::image::MediaType;
    match head {
        [0x1f, 0x8b, ..] => MediaType::ImageLayerGzip,
        [0x28, 0xb5, 0x2f, 0xfd, ..] => MediaType::ImageLayerZstd,
        _ => MediaType::ImageLayer,
    }
}
