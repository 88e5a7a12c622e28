//! The build cache: which image state a build step produced, keyed by everything that decides it.
//!
//! A step's key is `sha256(parent key, instruction after substitution, content hash of the files
//! it copies)`, and the chain starts at the base image's manifest digest, so a key names the whole
//! history up to that step. A hit maps to the manifest of the state after the step (stored in the
//! content store like any image, but unnamed), so a fully cached rebuild only reads. A one-file
//! change alters the content hash of the COPY that reads it, hence that step's key and every later
//! one: exactly those steps run again.
//!
//! On disk: `DIR/<key hex>` holds the manifest digest, written atomically. Entries whose content
//! was since removed are treated as misses by the builder.

use std::io;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

/// The cache key of a step (64 hex).
pub fn step_key(parent: &str, instruction: &str, content: Option<&str>) -> String {
    let mut h = Sha256::new();
    for part in [parent, instruction, content.unwrap_or("-")] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(h.finalize())
}

/// The key a build starts from: its base image.
pub fn base_key(base_manifest: Option<&str>) -> String {
    step_key("", "FROM", Some(base_manifest.unwrap_or("scratch")))
}

/// What of a source entry decides a COPY's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceEntry {
    /// Path relative to the context root.
    pub name: String,
    /// `f` file, `d` directory, `l` symlink.
    pub kind: char,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// `sha256:` of a file's bytes, a symlink's target, empty for directories.
    pub content: String,
}

/// Hash over the sorted entries of a COPY's sources.
pub fn content_hash(entries: &[SourceEntry]) -> String {
    let mut sorted: Vec<&SourceEntry> = entries.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let mut h = Sha256::new();
    for e in sorted {
        let line = format!(
            "{}\0{}\0{:o}\0{}\0{}\0{}\n",
            e.name, e.kind, e.mode, e.uid, e.gid, e.content
        );
        h.update(line.as_bytes());
    }
    format!("sha256:{}", hex::encode(h.finalize()))
}

/// The cache directory.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    pub fn open(dir: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    /// The manifest digest recorded for `key`, if any.
    pub fn get(&self, key: &str) -> Option<String> {
        let text = std::fs::read_to_string(self.dir.join(key)).ok()?;
        let digest = text.trim();
        digest.starts_with("sha256:").then(|| digest.to_owned())
    }

    /// Records `key → manifest` (temp + rename; not fsync'd: a lost entry is only a miss).
    pub fn put(&self, key: &str, manifest: &str) -> io::Result<()> {
        let tmp = self.dir.join(format!(".{key}.tmp"));
        std::fs::write(&tmp, manifest)?;
        std::fs::rename(&tmp, self.dir.join(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, content: &str) -> SourceEntry {
        SourceEntry {
            name: name.into(),
            kind: 'f',
            mode: 0o644,
            uid: 0,
            gid: 0,
            content: content.into(),
        }
    }

    #[test]
    fn keys_depend_on_parent_instruction_and_content() {
        let base = base_key(Some("sha256:aa"));
        assert_ne!(base, base_key(None));
        let k = step_key(&base, "RUN echo hi", None);
        assert_eq!(k, step_key(&base, "RUN echo hi", None), "deterministic");
        assert_ne!(k, step_key(&base, "RUN echo ho", None));
        assert_ne!(
            k,
            step_key(&base_key(Some("sha256:bb")), "RUN echo hi", None)
        );
        assert_ne!(
            step_key(&base, "COPY a /", Some("sha256:1")),
            step_key(&base, "COPY a /", Some("sha256:2"))
        );
        // Length prefixes: moving bytes between parts changes the key.
        assert_ne!(step_key("ab", "c", None), step_key("a", "bc", None));
    }

    #[test]
    fn content_hash_sees_bytes_modes_owners_and_names_but_not_order() {
        let a = vec![entry("x", "sha256:1"), entry("y", "sha256:2")];
        let reordered = vec![a[1].clone(), a[0].clone()];
        assert_eq!(content_hash(&a), content_hash(&reordered));
        let mut changed = a.clone();
        changed[0].content = "sha256:9".into();
        assert_ne!(content_hash(&a), content_hash(&changed));
        let mut mode = a.clone();
        mode[0].mode = 0o755;
        assert_ne!(content_hash(&a), content_hash(&mode));
        let mut owner = a.clone();
        owner[1].uid = 1000;
        assert_ne!(content_hash(&a), content_hash(&owner));
        let mut renamed = a.clone();
        renamed[1].name = "z".into();
        assert_ne!(content_hash(&a), content_hash(&renamed));
    }

    #[test]
    fn cache_round_trips_and_ignores_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let key = step_key("p", "RUN x", None);
        assert_eq!(cache.get(&key), None);
        cache.put(&key, "sha256:abc").unwrap();
        assert_eq!(cache.get(&key).as_deref(), Some("sha256:abc"));
        std::fs::write(dir.path().join("bad"), "nonsense").unwrap();
        assert_eq!(cache.get("bad"), None);
    }
}
