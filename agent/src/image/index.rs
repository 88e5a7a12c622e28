//! `index.json`: the store's only mutable state — references to manifests, and snapshot sizes.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::digest::{atomic_write, read_limited};
use super::ImageError;

const INDEX_VERSION: u32 = 1;
const MAX_INDEX_BYTES: u64 = 64 << 20;

/// The persisted index. Written only whole, atomically.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Index {
    pub version: u32,
    /// `NAME:TAG` → manifest digest `sha256:<hex>`.
    pub references: BTreeMap<String, String>,
    /// Layer `diff_id` (`sha256:<hex>`) → what its snapshot holds.
    pub snapshots: BTreeMap<String, SnapshotInfo>,
}

/// Size of an unpacked snapshot, recorded at unpack time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotInfo {
    pub bytes: u64,
    pub entries: u64,
}

impl Index {
    /// Loads the index; a missing file is an empty index.
    pub fn load(path: &Path) -> Result<Self, ImageError> {
        let bytes = match read_limited(path, MAX_INDEX_BYTES) {
            Err(ImageError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                return Ok(Self {
                    version: INDEX_VERSION,
                    ..Self::default()
                })
            }
            other => other?,
        };
        let index: Self = serde_json::from_slice(&bytes)
            .map_err(|e| ImageError::Corrupt(format!("{}: {e}", path.display())))?;
        if index.version != INDEX_VERSION {
            return Err(ImageError::Corrupt(format!(
                "{}: unsupported index version {}",
                path.display(),
                index.version
            )));
        }
        Ok(index)
    }

    /// Writes the index atomically (temp + fsync + rename).
    pub fn save(&self, path: &Path) -> Result<(), ImageError> {
        let bytes = serde_json::to_vec_pretty(self)
            .map_err(|e| ImageError::Corrupt(format!("cannot encode index: {e}")))?;
        atomic_write(path, &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_pins_its_format() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.json");
        let mut index = Index::load(&path).unwrap();
        assert_eq!(index.version, 1);
        index
            .references
            .insert("a:latest".into(), "sha256:00".into());
        index.snapshots.insert(
            "sha256:11".into(),
            SnapshotInfo {
                bytes: 5,
                entries: 2,
            },
        );
        index.save(&path).unwrap();
        assert_eq!(Index::load(&path).unwrap(), index);
        let golden = r#"{"version":1,"references":{"a:latest":"sha256:00"},"snapshots":{"sha256:11":{"bytes":5,"entries":2}}}"#;
        assert_eq!(serde_json::to_string(&index).unwrap(), golden);
    }
}
