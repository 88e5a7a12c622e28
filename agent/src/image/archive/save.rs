//! `save`: writes one image as a docker-archive or an oci-archive tarball to any `Write`.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Write};

use serde_json::json;

use super::{Format, ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME};
use crate::image::digest::parse_sha256;
use crate::image::error::io_err;
use crate::image::registry::RemoteRef;
use crate::image::unpack;
use crate::image::{ImageError, ImageStore};

fn hex(d: &str) -> Result<&str, ImageError> {
    parse_sha256(d).ok_or_else(|| ImageError::Corrupt(format!("{d:?} is not a sha256 digest")))
}

fn header(size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_mode(0o644);
    h.set_size(size);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h.set_entry_type(tar::EntryType::Regular);
    h
}

fn add(
    b: &mut tar::Builder<impl Write>,
    name: &str,
    size: u64,
    data: impl Read,
) -> Result<(), ImageError> {
    let mut h = header(size);
    b.append_data(&mut h, name, data)
        .map_err(|e| ImageError::Archive(format!("cannot write {name}: {e}")))
}

fn add_bytes(b: &mut tar::Builder<impl Write>, name: &str, bytes: &[u8]) -> Result<(), ImageError> {
    add(b, name, bytes.len() as u64, bytes)
}

impl ImageStore {
    /// Writes the image `reference` as an archive of `format` to `out`.
    pub fn save_archive(
        &self,
        reference: &str,
        format: Format,
        out: impl Write,
    ) -> Result<(), ImageError> {
        let c = self.content(reference)?;
        // Names this image has, as full references (`docker.io/library/x:1`) and the tags.
        let names: Vec<String> = self
            .list()?
            .into_iter()
            .find(|i| i.manifest_digest == c.manifest_digest)
            .map(|i| i.references)
            .unwrap_or_default()
            .into_iter()
            .filter(|r| !r.contains('@'))
            .collect();
        let mut b = tar::Builder::new(out);
        match format {
            Format::Oci => {
                add_bytes(&mut b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
                let shown = names.iter().find(|n| *n == &c.reference).or(names.first());
                let mut annotations = BTreeMap::new();
                if let Some(n) = shown {
                    let r = RemoteRef::parse(n)?;
                    annotations.insert(ANNOTATION_IMAGE_NAME, r.to_string());
                    if let Some(t) = r.tag {
                        annotations.insert(ANNOTATION_REF_NAME, t);
                    }
                }
                let index = json!({
                    "schemaVersion": 2,
                    "mediaType": "application/vnd.oci.image.index.v1+json",
                    "manifests": [{
                        "mediaType": c.manifest_media_type,
                        "digest": c.manifest_digest,
                        "size": c.manifest.len(),
                        "annotations": annotations,
                    }],
                });
                add_bytes(&mut b, "index.json", index.to_string().as_bytes())?;
                add_bytes(
                    &mut b,
                    &format!("blobs/sha256/{}", hex(&c.manifest_digest)?),
                    &c.manifest,
                )?;
                add_bytes(
                    &mut b,
                    &format!("blobs/sha256/{}", hex(&c.config_digest)?),
                    &c.config,
                )?;
                let mut seen = Vec::new();
                for (d, size, _) in &c.layers {
                    if seen.contains(d) {
                        continue;
                    }
                    seen.push(d.clone());
                    let path = self.blob_path(d)?;
                    let f = File::open(&path).map_err(io_err("open blob", &path))?;
                    add(&mut b, &format!("blobs/sha256/{}", hex(d)?), *size, f)?;
                }
            }
            Format::Docker => {
                let config_name = format!("{}.json", hex(&c.config_digest)?);
                add_bytes(&mut b, &config_name, &c.config)?;
                let mut layer_names = Vec::new();
                for ((d, _, _), diff_id) in c.layers.iter().zip(&c.diff_ids) {
                    let name = format!("{}/layer.tar", hex(diff_id)?);
                    if !layer_names.contains(&name) {
                        // docker-archive layers are uncompressed tars whose digest is the diff_id.
                        let path = self.blob_path(d)?;
                        let mut plain = tempfile::tempfile_in(&self.tmp)
                            .map_err(io_err("create temp file in", &self.tmp))?;
                        let f = File::open(&path).map_err(io_err("open blob", &path))?;
                        let mut stream =
                            unpack::decompress(f).map_err(io_err("decompress", &path))?;
                        let size = io::copy(&mut stream, &mut plain)
                            .map_err(io_err("decompress", &path))?;
                        io::Seek::rewind(&mut plain).map_err(io_err("rewind", &self.tmp))?;
                        add(&mut b, &name, size, plain)?;
                    }
                    layer_names.push(name);
                }
                let tags: Vec<String> = names
                    .iter()
                    .filter(|n| !n.starts_with("sha256:"))
                    .cloned()
                    .collect();
                let manifest = json!([{
                    "Config": config_name,
                    "RepoTags": tags,
                    "Layers": layer_names,
                }]);
                add_bytes(&mut b, "manifest.json", manifest.to_string().as_bytes())?;
                let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
                let top = c
                    .diff_ids
                    .last()
                    .map(|d| hex(d).map(str::to_owned))
                    .transpose()?;
                for t in &tags {
                    if let (Some((repo, tag)), Some(top)) = (t.rsplit_once(':'), &top) {
                        repositories
                            .entry(repo.to_owned())
                            .or_default()
                            .insert(tag.to_owned(), top.clone());
                    }
                }
                add_bytes(
                    &mut b,
                    "repositories",
                    serde_json::to_string(&repositories)
                        .unwrap_or_default()
                        .as_bytes(),
                )?;
            }
        }
        b.into_inner()
            .and_then(|mut w| w.flush())
            .map_err(|e| ImageError::Archive(format!("cannot finish archive: {e}")))
    }
}

/// A blocking `Write` whose bytes go to an async consumer in chunks (the HTTP response).
#[derive(Debug)]
pub struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<io::Result<bytes::Bytes>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    const CHUNK: usize = 256 << 10;

    pub fn new(tx: tokio::sync::mpsc::Sender<io::Result<bytes::Bytes>>) -> Self {
        Self {
            tx,
            buf: Vec::with_capacity(Self::CHUNK),
        }
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = bytes::Bytes::from(std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(Self::CHUNK),
        ));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }

    /// Ends the stream with an error the client sees as a broken transfer.
    pub fn fail(self, message: String) {
        let _ = self.tx.blocking_send(Err(io::Error::other(message)));
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= Self::CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}
