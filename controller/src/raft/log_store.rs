//! The Raft log and vote in redb. Appends are one write transaction per batch, committed with
//! fsync before openraft is told the entries are durable.

use super::store::{Store, StoreError, KEY_COMMITTED, KEY_PURGED, KEY_VOTE, LOG, META};
use super::TypeConfig;
use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{Entry, LogId, OptionalSend, RaftLogReader, StorageError, StorageIOError, Vote};
use redb::ReadableTable;
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};

/// The log store; clones share the database (openraft reads through clones while it appends).
#[derive(Clone, Debug)]
pub struct LogStore {
    store: Store,
}

type SResult<T> = Result<T, StorageError<u64>>;

fn io_read(e: impl std::fmt::Display) -> StorageError<u64> {
    StorageIOError::read_logs(openraft::AnyError::error(e.to_string())).into()
}
fn io_write(e: impl std::fmt::Display) -> StorageError<u64> {
    StorageIOError::write_logs(openraft::AnyError::error(e.to_string())).into()
}
fn io_vote(e: impl std::fmt::Display) -> StorageError<u64> {
    StorageIOError::write_vote(openraft::AnyError::error(e.to_string())).into()
}

/// Runs blocking store work off the async runtime.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Db(format!("store task: {e}")))?
}

fn decode<T: DeserializeOwned>(what: &'static str, bytes: &[u8]) -> Result<T, StoreError> {
    postcard::from_bytes(bytes).map_err(|source| StoreError::Decode { what, source })
}

impl LogStore {
    pub fn new(store: Store) -> Self {
        LogStore { store }
    }

    fn meta<T: DeserializeOwned>(&self, key: &'static str) -> Result<Option<T>, StoreError> {
        self.store
            .get_meta(key)?
            .map(|b| decode(key, &b))
            .transpose()
    }

    fn read_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> Result<Vec<Entry<TypeConfig>>, StoreError> {
        let tx = self.store.db.begin_read_tx()?;
        let table = tx.open_table(LOG)?;
        let mut out = Vec::new();
        for item in table.range::<u64>((start, end))? {
            let (_, v) = item?;
            out.push(decode("log entry", v.value())?);
        }
        Ok(out)
    }
}

/// redb 4 moved `begin_read` into a trait; this keeps call sites short.
trait BeginRead {
    fn begin_read_tx(&self) -> Result<redb::ReadTransaction, redb::TransactionError>;
}
impl BeginRead for redb::Database {
    fn begin_read_tx(&self) -> Result<redb::ReadTransaction, redb::TransactionError> {
        redb::ReadableDatabase::begin_read(self)
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> SResult<Vec<Entry<TypeConfig>>> {
        let this = self.clone();
        let (start, end) = (range.start_bound().cloned(), range.end_bound().cloned());
        blocking(move || this.read_range(start, end))
            .await
            .map_err(io_read)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> SResult<LogState<TypeConfig>> {
        let this = self.clone();
        blocking(move || {
            let purged: Option<LogId<u64>> = this.meta(KEY_PURGED)?;
            let tx = this.store.db.begin_read_tx()?;
            let table = tx.open_table(LOG)?;
            let last = match table.last()? {
                Some((_, v)) => Some(decode::<Entry<TypeConfig>>("log entry", v.value())?.log_id),
                None => purged,
            };
            Ok(LogState {
                last_purged_log_id: purged,
                last_log_id: last,
            })
        })
        .await
        .map_err(io_read)
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<u64>) -> SResult<()> {
        let this = self.clone();
        let bytes = postcard::to_stdvec(vote).map_err(io_vote)?;
        blocking(move || this.store.put_meta(&[(KEY_VOTE, &bytes)], true))
            .await
            .map_err(io_vote)
    }

    async fn read_vote(&mut self) -> SResult<Option<Vote<u64>>> {
        let this = self.clone();
        blocking(move || this.meta(KEY_VOTE)).await.map_err(io_read)
    }

    /// Saved without its own fsync: a lower committed id after a crash is only re-learned from the leader.
    async fn save_committed(&mut self, committed: Option<LogId<u64>>) -> SResult<()> {
        let this = self.clone();
        let bytes = postcard::to_stdvec(&committed).map_err(io_write)?;
        blocking(move || this.store.put_meta(&[(KEY_COMMITTED, &bytes)], false))
            .await
            .map_err(io_write)
    }

    async fn read_committed(&mut self) -> SResult<Option<LogId<u64>>> {
        let this = self.clone();
        blocking(move || Ok(this.meta::<Option<LogId<u64>>>(KEY_COMMITTED)?.flatten()))
            .await
            .map_err(io_read)
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> SResult<()>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut encoded = Vec::new();
        for e in entries {
            encoded.push((e.log_id.index, postcard::to_stdvec(&e).map_err(io_write)?));
        }
        let this = self.clone();
        let res = blocking(move || {
            let tx = this.store.db.begin_write()?;
            {
                let mut table = tx.open_table(LOG)?;
                for (index, bytes) in &encoded {
                    table.insert(*index, bytes.as_slice())?;
                }
            }
            tx.commit()?; // Durability::Immediate: fsync before we report.
            Ok(())
        })
        .await;
        match res {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(io_write(e))
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId<u64>) -> SResult<()> {
        let this = self.clone();
        blocking(move || {
            let tx = this.store.db.begin_write()?;
            tx.open_table(LOG)?
                .retain_in(log_id.index.., |_, _| false)?;
            tx.commit()?;
            Ok(())
        })
        .await
        .map_err(io_write)
    }

    async fn purge(&mut self, log_id: LogId<u64>) -> SResult<()> {
        let this = self.clone();
        let bytes = postcard::to_stdvec(&log_id).map_err(io_write)?;
        blocking(move || {
            let tx = this.store.db.begin_write()?;
            tx.open_table(META)?.insert(KEY_PURGED, bytes.as_slice())?;
            tx.open_table(LOG)?
                .retain_in(..=log_id.index, |_, _| false)?;
            tx.commit()?;
            Ok(())
        })
        .await
        .map_err(io_write)
    }
}
