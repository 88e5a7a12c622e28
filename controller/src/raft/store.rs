//! The redb database under `--data-dir`: vote, committed id, purge point, the last snapshot and
//! this member's identity (log entries live in [`super::wal`]; older data dirs kept them here).
//! Every call blocks, so async callers go through `spawn_blocking`.
//!
//! The values are in the data dir's format, kept under `format` (absent: format 0, a data dir of
//! Hoist 0.1.0). Opening an older data dir rewrites its values in the current format in one
//! transaction, so a crash leaves it wholly old or wholly new; the snapshot image says its own
//! format and stays as it is. A data dir of a newer format than this build reads is refused.

use super::wire;
use hoist_proto::format::{DecodeError, CURRENT, OLDEST};
use redb::{Database, Durability, ReadableDatabase, TableDefinition};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Log index → postcard-encoded entry: only in data dirs from before [`super::wal`]; moved on open.
pub(super) const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
/// Named small values (see the `KEY_*` constants).
pub(super) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

pub(super) const KEY_VOTE: &str = "vote";
pub(super) const KEY_COMMITTED: &str = "committed";
pub(super) const KEY_PURGED: &str = "last_purged";
pub(super) const KEY_SNAPSHOT_META: &str = "snapshot_meta";
pub(super) const KEY_SNAPSHOT_DATA: &str = "snapshot_data";
const KEY_IDENTITY: &str = "identity";
/// The format of the values here (u32 LE); absent in a data dir of 0.1.0.
const KEY_FORMAT: &str = "format";

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("redb: {0}")]
    Db(String),
    #[error("{0}")]
    Log(String),
    /// A stored value that does not read back.
    #[error("{path}: {source}")]
    Decode { path: PathBuf, source: DecodeError },
    /// A data dir this build cannot use.
    #[error("{0}")]
    Format(String),
}

macro_rules! db_err {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Db(e.to_string())
            }
        }
    )*};
}
db_err!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError
);

/// A shared handle to the database file `DIR/raft.redb`.
#[derive(Clone, Debug)]
pub struct Store {
    pub(super) db: Arc<Database>,
    /// The data directory (the Raft log's segment files live in `raft-log/` under it).
    pub(super) dir: std::path::PathBuf,
    /// The format of the values (always [`CURRENT`] once open).
    pub(super) format: u32,
}

impl Store {
    /// Opens or creates the database in `dir`, creating the directory and tables, and moves the
    /// values of an older data dir to the current format.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Db(format!("creating {}: {e}", dir.display())))?;
        let db = Database::create(dir.join("raft.redb"))?;
        let tx = db.begin_write()?;
        tx.open_table(LOG)?;
        tx.open_table(META)?;
        tx.commit()?;
        let mut store = Store {
            db: Arc::new(db),
            dir: dir.to_path_buf(),
            format: 0,
        };
        store.format = match store.get_meta(KEY_FORMAT)? {
            None => 0,
            Some(b) => u32::from_le_bytes(b.as_slice().try_into().map_err(|_| {
                StoreError::Format(format!(
                    "{}: a format value of {} bytes",
                    store.file().display(),
                    b.len()
                ))
            })?),
        };
        if !(OLDEST..=CURRENT).contains(&store.format) {
            return Err(StoreError::Format(format!(
                "{}: the data dir is format {}, and this build (Hoist {}) reads formats {OLDEST}..={CURRENT}: \
                 run a Hoist that reads it",
                dir.display(),
                store.format,
                hoist_proto::format::VERSION
            )));
        }
        if store.format < CURRENT {
            store.upgrade()?;
        }
        Ok(store)
    }

    /// `DIR/raft.redb`, for messages.
    pub(super) fn file(&self) -> PathBuf {
        self.dir.join("raft.redb")
    }

    /// A decoding error of a value of this file.
    pub(super) fn decode_error(&self, source: DecodeError) -> StoreError {
        StoreError::Decode {
            path: self.file(),
            source,
        }
    }

    /// Rewrites every value in the current format, and records it, in one transaction.
    fn upgrade(&mut self) -> Result<(), StoreError> {
        let from = self.format;
        let to = CURRENT;
        let mut pairs: Vec<(&str, Vec<u8>)> = Vec::new();
        if let Some(b) = self.get_meta(KEY_VOTE)? {
            let v = wire::decode_vote(&b, from).map_err(|e| self.decode_error(e))?;
            pairs.push((KEY_VOTE, wire::encode_vote(&v, to)));
        }
        if let Some(b) = self.get_meta(KEY_COMMITTED)? {
            let c = wire::decode_log_id("committed", &b, from).map_err(|e| self.decode_error(e))?;
            pairs.push((KEY_COMMITTED, wire::encode_log_id(c.as_ref(), to)));
        }
        if let Some(b) = self.get_meta(KEY_PURGED)? {
            let p = wire::decode_purged(&b, from).map_err(|e| self.decode_error(e))?;
            pairs.push((KEY_PURGED, wire::encode_purged(&p, to)));
        }
        if let Some(b) = self.get_meta(KEY_SNAPSHOT_META)? {
            let m = wire::decode_snapshot_meta(&b, from).map_err(|e| self.decode_error(e))?;
            pairs.push((KEY_SNAPSHOT_META, wire::encode_snapshot_meta(&m, to)));
        }
        if let Some(b) = self.get_meta(KEY_IDENTITY)? {
            let (id, addr) = wire::decode_identity(&b, from).map_err(|e| self.decode_error(e))?;
            pairs.push((KEY_IDENTITY, wire::encode_identity(id, &addr, to)));
        }
        let format = to.to_le_bytes();
        let mut all: Vec<(&str, &[u8])> = pairs.iter().map(|(k, v)| (*k, v.as_slice())).collect();
        all.push((KEY_FORMAT, &format));
        self.put_meta(&all, true)?;
        if pairs.is_empty() {
            tracing::debug!(dir = %self.dir.display(), format = to, "new data dir");
        } else {
            tracing::info!(dir = %self.dir.display(), from, to, "moved the data dir's raft values to the current format");
        }
        self.format = to;
        Ok(())
    }

    /// Reads one meta value.
    pub(super) fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(META)?;
        Ok(table.get(key)?.map(|v| v.value().to_vec()))
    }

    /// Writes meta values in one transaction; `durable` waits for fsync.
    pub(super) fn put_meta(
        &self,
        pairs: &[(&str, &[u8])],
        durable: bool,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin_write()?;
        if !durable {
            tx.set_durability(Durability::None)?;
        }
        {
            let mut table = tx.open_table(META)?;
            for (k, v) in pairs {
                table.insert(*k, *v)?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// This member's id and address, fixed when it first started.
    pub fn identity(&self) -> Result<Option<(u64, String)>, StoreError> {
        match self.get_meta(KEY_IDENTITY)? {
            None => Ok(None),
            Some(b) => wire::decode_identity(&b, self.format)
                .map(Some)
                .map_err(|e| self.decode_error(e)),
        }
    }

    /// Records this member's id and address (durably).
    pub fn set_identity(&self, id: u64, address: &str) -> Result<(), StoreError> {
        let b = wire::encode_identity(id, address, self.format);
        self.put_meta(&[(KEY_IDENTITY, &b)], true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_data_dir_of_a_newer_format_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            store
                .put_meta(&[(KEY_FORMAT, &(CURRENT + 1).to_le_bytes())], true)
                .unwrap();
        }
        let e = loop {
            match Store::open(dir.path()) {
                Err(StoreError::Db(_)) => std::thread::sleep(std::time::Duration::from_millis(10)),
                other => break other.unwrap_err().to_string(),
            }
        };
        assert!(
            e.contains(&format!("the data dir is format {}", CURRENT + 1)),
            "{e}"
        );
    }
}
