//! The redb database under `--data-dir`: vote, committed id, purge point, the last snapshot and
//! this member's identity (log entries live in [`super::wal`]; older data dirs kept them here). Every call blocks, so async callers go through `spawn_blocking`.

use redb::{Database, Durability, ReadableDatabase, TableDefinition};
use std::path::Path;
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

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("redb: {0}")]
    Db(String),
    #[error("{0}")]
    Log(String),
    #[error("decoding {what}: {source}")]
    Decode {
        what: &'static str,
        source: postcard::Error,
    },
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
}

impl Store {
    /// Opens or creates the database in `dir`, creating the directory and tables.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Db(format!("creating {}: {e}", dir.display())))?;
        let db = Database::create(dir.join("raft.redb"))?;
        let tx = db.begin_write()?;
        tx.open_table(LOG)?;
        tx.open_table(META)?;
        tx.commit()?;
        Ok(Store {
            db: Arc::new(db),
            dir: dir.to_path_buf(),
        })
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
            Some(b) => postcard::from_bytes(&b)
                .map(Some)
                .map_err(|source| StoreError::Decode {
                    what: "identity",
                    source,
                }),
        }
    }

    /// Records this member's id and address (durably).
    pub fn set_identity(&self, id: u64, address: &str) -> Result<(), StoreError> {
        let b = postcard::to_stdvec(&(id, address)).expect("identity encodes");
        self.put_meta(&[(KEY_IDENTITY, &b)], true)
    }
}
