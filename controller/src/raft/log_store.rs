//! The Raft log and vote: an in-memory mirror for reads; entries persisted to append-only segment
//! files ([`super::wal`]), vote, committed id and purge point to redb, by one writer thread that
//! groups every pending operation into one write and one `fdatasync` (group commit).
//!
//! The mirror holds each entry encoded, as it was written, and decodes it on every read. It held
//! them decoded until purged, which at 2,000 nodes × 20,000 tasks made the leader's RSS 5,754 B
//! per task, against 2,804 B encoded (`bench/README.md`). A read deep-cloned the decoded entry
//! anyway, and a decode costs about what that clone did.
//!
//! openraft hands over one `append` per client write; waiting for an fsync in each would cap the
//! cluster at the disk's fsync rate. Instead `append` updates the mirror (so the entries are
//! readable at once, as openraft requires) and queues the write; the writer thread writes all
//! queued operations, in order, and only after the sync reports the entries durable. Votes,
//! truncations and purges wait for their own durable write before returning.

use super::stall::StallGuard;
use super::store::{Store, StoreError, KEY_COMMITTED, KEY_PURGED, KEY_VOTE, LOG};
use super::wal::{Record, Wal};
use super::wire;
use super::TypeConfig;
use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{Entry, LogId, OptionalSend, RaftLogReader, StorageError, StorageIOError, Vote};
use redb::{ReadableDatabase, ReadableTable};
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::ops::RangeBounds;
use std::sync::mpsc;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

type SResult<T> = Result<T, StorageError<u64>>;
type Done = oneshot::Sender<Result<(), String>>;

fn io_read(e: impl std::fmt::Display) -> StorageError<u64> {
    StorageIOError::read_logs(openraft::AnyError::error(e.to_string())).into()
}
fn io_write(e: impl std::fmt::Display) -> StorageError<u64> {
    StorageIOError::write_logs(openraft::AnyError::error(e.to_string())).into()
}
fn io_vote(e: impl std::fmt::Display) -> StorageError<u64> {
    StorageIOError::write_vote(openraft::AnyError::error(e.to_string())).into()
}

/// One queued write, applied by the writer thread in arrival order.
enum WriteOp {
    Append {
        rows: Vec<Record>,
        done: LogFlushed<TypeConfig>,
    },
    Truncate {
        from: u64,
        done: Done,
    },
    Purge {
        upto: u64,
        purged: Vec<u8>,
        done: Done,
    },
    Meta {
        key: &'static str,
        value: Vec<u8>,
        done: Option<Done>,
    },
}

/// One entry of the mirror: its id, and its bytes in the format they were written in (the same
/// allocation as the record written to the segment file; shared, so that a read takes them under
/// the lock and decodes after releasing it).
#[derive(Debug, Clone)]
struct Held {
    log_id: LogId<u64>,
    format: u32,
    bytes: Arc<[u8]>,
}

impl Held {
    fn entry(&self) -> Result<Entry<TypeConfig>, hoist_proto::format::DecodeError> {
        wire::decode_entry(&self.bytes, self.format)
    }
}

/// What reads are served from.
#[derive(Debug, Default)]
struct Mirror {
    entries: BTreeMap<u64, Held>,
    purged: Option<LogId<u64>>,
    vote: Option<Vote<u64>>,
    committed: Option<LogId<u64>>,
}

#[derive(Debug)]
struct Shared {
    mirror: RwLock<Mirror>,
    writer: std::sync::Mutex<mpsc::Sender<WriteOp>>,
    /// The format entries and values are written in (the data dir's).
    format: u32,
}

/// The log store; clones share the mirror and the writer (openraft reads through clones).
#[derive(Clone, Debug)]
pub struct LogStore {
    shared: Arc<Shared>,
}

impl LogStore {
    /// Loads the log and vote from `store` and starts the writer thread.
    pub fn open(store: Store, stall: Arc<StallGuard>) -> Result<LogStore, StoreError> {
        let mut mirror = Mirror::default();
        let format = store.format;
        let meta =
            |key: &'static str| -> Result<Option<Vec<u8>>, StoreError> { store.get_meta(key) };
        let bad = |e| store.decode_error(e);
        mirror.purged = meta(KEY_PURGED)?
            .map(|b| wire::decode_purged(&b, format).map_err(bad))
            .transpose()?;
        mirror.vote = meta(KEY_VOTE)?
            .map(|b| wire::decode_vote(&b, format).map_err(bad))
            .transpose()?;
        mirror.committed = meta(KEY_COMMITTED)?
            .map(|b| wire::decode_log_id("committed", &b, format).map_err(bad))
            .transpose()?
            .flatten();
        // The commit index gauge starts where the member left off, not at 0.
        if let Some(c) = mirror.committed {
            crate::metrics::recorders().committed(c.index);
        }
        let purged = mirror.purged.map(|l| l.index);
        let (mut wal, records) = Wal::open(&store.dir.join("raft-log"), purged, format)
            .map_err(|e| StoreError::Log(e.to_string()))?;
        for l in records {
            // Decoded once to refuse a data dir with a corrupt entry before anything starts.
            let entry = wire::decode_entry(&l.record.bytes, l.format).map_err(|e| {
                StoreError::Log(format!(
                    "raft log {}: entry {} at offset {}: {e}: refusing to start (nothing was changed)",
                    l.path.display(),
                    l.record.index,
                    l.offset
                ))
            })?;
            let held = Held {
                log_id: entry.log_id,
                format: l.format,
                bytes: l.record.bytes,
            };
            mirror.entries.insert(l.record.index, held);
        }
        migrate_redb_log(&store, &mut wal, &mut mirror)?;
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("raft-log-writer".into())
            .spawn(move || writer_loop(&store, &mut wal, &rx, &stall))
            .map_err(|e| StoreError::Db(format!("starting the log writer: {e}")))?;
        Ok(LogStore {
            shared: Arc::new(Shared {
                mirror: RwLock::new(mirror),
                writer: std::sync::Mutex::new(tx),
                format,
            }),
        })
    }

    fn send(&self, op: WriteOp) -> Result<(), String> {
        self.shared
            .writer
            .lock()
            .expect("writer lock")
            .send(op)
            .map_err(|_| "the log writer stopped".to_string())
    }

    /// Queues `op` and waits until it is durable.
    async fn send_and_wait(&self, op: impl FnOnce(Done) -> WriteOp) -> Result<(), String> {
        let (tx, rx) = oneshot::channel();
        self.send(op(tx))?;
        rx.await.map_err(|_| "the log writer stopped".to_string())?
    }
}

/// Moves log entries a data dir from before the segment files kept in redb into them.
fn migrate_redb_log(store: &Store, wal: &mut Wal, mirror: &mut Mirror) -> Result<(), StoreError> {
    let mut rows = Vec::new();
    {
        let tx = store.db.begin_read()?;
        let log = tx.open_table(LOG)?;
        for item in log.iter()? {
            let (k, v) = item?;
            if mirror.purged.is_some_and(|p| k.value() <= p.index) {
                continue;
            }
            let e = wire::decode_entry(v.value(), 0).map_err(|e| store.decode_error(e))?;
            let bytes: Arc<[u8]> = wire::encode_entry(&e, store.format)
                .map_err(|e| StoreError::Log(e.to_string()))?
                .into();
            let held = Held {
                log_id: e.log_id,
                format: store.format,
                bytes: bytes.clone(),
            };
            rows.push(Record {
                index: e.log_id.index,
                term: e.log_id.leader_id.term,
                bytes,
            });
            mirror.entries.insert(e.log_id.index, held);
        }
    }
    if rows.is_empty() {
        return Ok(());
    }
    let log_err = |e: super::wal::WalError| StoreError::Log(e.to_string());
    if let Some(first) = rows.first() {
        wal.truncate(first.index).map_err(log_err)?;
    }
    wal.append(&rows).map_err(log_err)?;
    wal.sync().map_err(log_err)?;
    let tx = store.db.begin_write()?;
    tx.open_table(LOG)?.retain(|_, _| false)?;
    tx.commit()?;
    tracing::info!(
        entries = rows.len(),
        "moved the raft log from redb to segment files"
    );
    Ok(())
}

/// The committed id is only a restart hint (a lower one is re-learned from the leader), so it is
/// written along with other values, or at most this often, rather than in every group: each redb
/// commit rewrites pages, and at thousands of groups a second that was most of the writer's work.
const COMMITTED_EVERY: Duration = Duration::from_millis(250);

/// The newest committed id not written yet, and when one was last written.
struct LazyCommitted {
    value: Option<Vec<u8>>,
    written: Instant,
}

impl LazyCommitted {
    fn flush(&mut self, store: &Store, durable: bool) -> Result<(), StoreError> {
        if let Some(v) = self.value.take() {
            store.put_meta(&[(KEY_COMMITTED, &v)], durable)?;
            self.written = Instant::now();
        }
        Ok(())
    }
}

/// Applies queued operations in order, as many per sync as are waiting.
fn writer_loop(store: &Store, wal: &mut Wal, rx: &mpsc::Receiver<WriteOp>, stall: &StallGuard) {
    let mut lazy = LazyCommitted {
        value: None,
        written: Instant::now(),
    };
    loop {
        let next = if lazy.value.is_some() {
            rx.recv_timeout(COMMITTED_EVERY)
        } else {
            rx.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected)
        };
        let first = match next {
            Ok(op) => op,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if let Err(e) = lazy.flush(store, false) {
                    tracing::warn!(error = %e, "saving the committed log id");
                }
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let _ = lazy.flush(store, true);
                return;
            }
        };
        let mut batch = vec![first];
        while batch.len() < 4096 {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        let started = Instant::now();
        stall.write_begins();
        let result = commit(store, wal, &batch, &mut lazy).map_err(|e| e.to_string());
        let took = started.elapsed();
        stall.write_ends(took);
        if took >= super::stall::SLOW {
            // Like etcd's "slow fdatasync": a stalled disk stalls this member's Raft, and a long
            // enough stall shows up as an election.
            tracing::warn!(
                ms = took.as_millis() as u64,
                ops = batch.len(),
                "slow raft log write"
            );
        }
        for op in batch {
            match op {
                WriteOp::Append { done, .. } => {
                    done.log_io_completed(result.clone().map_err(std::io::Error::other));
                }
                WriteOp::Truncate { done, .. } | WriteOp::Purge { done, .. } => {
                    let _ = done.send(result.clone());
                }
                WriteOp::Meta { done, .. } => {
                    if let Some(d) = done {
                        let _ = d.send(result.clone());
                    }
                }
            }
        }
    }
}

/// Writes a batch: log records go to the segment files in queue order and are synced once at the
/// end; redb values are committed after that sync (fsync'd only when someone waits for one: a
/// vote). A purge point is made durable before the purged segments are deleted. Nothing is
/// answered before this returns, so moving a redb write after the log writes queued before it
/// changes no answer; the committed id may come later still (see [`COMMITTED_EVERY`]).
fn commit(
    store: &Store,
    wal: &mut Wal,
    batch: &[WriteOp],
    lazy: &mut LazyCommitted,
) -> Result<(), StoreError> {
    let log_err = |e: super::wal::WalError| StoreError::Log(e.to_string());
    let mut meta: Vec<(&str, &[u8])> = Vec::new();
    let mut durable = false;
    for op in batch {
        match op {
            WriteOp::Append { rows, .. } => wal.append(rows).map_err(log_err)?,
            WriteOp::Truncate { from, .. } => wal.truncate(*from).map_err(log_err)?,
            WriteOp::Purge { upto, purged, .. } => {
                meta.push((KEY_PURGED, purged.as_slice()));
                store.put_meta(&meta, true)?;
                meta.clear();
                wal.purge(*upto).map_err(log_err)?;
            }
            WriteOp::Meta {
                key: KEY_COMMITTED,
                value,
                done: None,
            } => lazy.value = Some(value.clone()),
            WriteOp::Meta { key, value, done } => {
                meta.push((key, value.as_slice()));
                durable |= done.is_some();
            }
        }
    }
    wal.sync().map_err(log_err)?;
    let due = !meta.is_empty() || lazy.written.elapsed() >= COMMITTED_EVERY;
    let committed = if due { lazy.value.take() } else { None };
    if let Some(c) = &committed {
        meta.push((KEY_COMMITTED, c.as_slice()));
    }
    if !meta.is_empty() {
        store.put_meta(&meta, durable)?;
        if committed.is_some() {
            lazy.written = Instant::now();
        }
    }
    Ok(())
}

impl LogStore {
    /// Entry `log_id` as this store wrote it, if it holds it in format 1 or later (where an
    /// entry is encoded alike in every format): for the leader's AppendEntries
    /// ([`wire::encode_append_reusing`]).
    pub fn stored_entry(&self, log_id: &LogId<u64>) -> Option<Arc<[u8]>> {
        let m = self.shared.mirror.read().ok()?;
        let held = m.entries.get(&log_id.index)?;
        (held.log_id == *log_id && held.format >= 1).then(|| held.bytes.clone())
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> SResult<Vec<Entry<TypeConfig>>> {
        // Decoded off the lock: a catch-up read of many entries never holds up an append.
        let held: Vec<Held> = {
            let m = self.shared.mirror.read().map_err(io_read)?;
            m.entries.range(range).map(|(_, h)| h.clone()).collect()
        };
        let mut entries = Vec::with_capacity(held.len());
        for h in held {
            let entry = h.entry().map_err(|e| {
                io_read(format!(
                    "raft log entry {} held in memory: {e}",
                    h.log_id.index
                ))
            })?;
            entries.push(entry);
        }
        Ok(entries)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> SResult<LogState<TypeConfig>> {
        let m = self.shared.mirror.read().map_err(io_read)?;
        let last = m
            .entries
            .values()
            .next_back()
            .map(|h| h.log_id)
            .or(m.purged);
        Ok(LogState {
            last_purged_log_id: m.purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<u64>) -> SResult<()> {
        let value = wire::encode_vote(vote, self.shared.format);
        self.shared.mirror.write().map_err(io_vote)?.vote = Some(*vote);
        self.send_and_wait(|d| WriteOp::Meta {
            key: KEY_VOTE,
            value,
            done: Some(d),
        })
        .await
        .map_err(io_vote)
    }

    async fn read_vote(&mut self) -> SResult<Option<Vote<u64>>> {
        Ok(self.shared.mirror.read().map_err(io_read)?.vote)
    }

    /// Queued without waiting: a lower committed id after a crash is re-learned from the leader.
    async fn save_committed(&mut self, committed: Option<LogId<u64>>) -> SResult<()> {
        let value = wire::encode_log_id(committed.as_ref(), self.shared.format);
        self.shared.mirror.write().map_err(io_write)?.committed = committed;
        if let Some(c) = committed {
            crate::metrics::recorders().committed(c.index);
        }
        self.send(WriteOp::Meta {
            key: KEY_COMMITTED,
            value,
            done: None,
        })
        .map_err(io_write)
    }

    async fn read_committed(&mut self) -> SResult<Option<LogId<u64>>> {
        Ok(self.shared.mirror.read().map_err(io_read)?.committed)
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> SResult<()>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        // Encoded before the mirror is locked: readers (replication) never wait for it.
        let format = self.shared.format;
        let mut rows = Vec::new();
        let mut held = Vec::new();
        for e in entries {
            let bytes: Arc<[u8]> = wire::encode_entry(&e, format).map_err(io_write)?.into();
            held.push(Held {
                log_id: e.log_id,
                format,
                bytes: bytes.clone(),
            });
            rows.push(Record {
                index: e.log_id.index,
                term: e.log_id.leader_id.term,
                bytes,
            });
        }
        {
            let mut m = self.shared.mirror.write().map_err(io_write)?;
            for h in held {
                m.entries.insert(h.log_id.index, h);
            }
        }
        // The mirror and the queue are updated under one order: appends are only called by
        // openraft's single storage task, one at a time.
        self.send(WriteOp::Append {
            rows,
            done: callback,
        })
        .map_err(io_write)
    }

    async fn truncate(&mut self, log_id: LogId<u64>) -> SResult<()> {
        self.shared
            .mirror
            .write()
            .map_err(io_write)?
            .entries
            .split_off(&log_id.index);
        self.send_and_wait(|d| WriteOp::Truncate {
            from: log_id.index,
            done: d,
        })
        .await
        .map_err(io_write)
    }

    async fn purge(&mut self, log_id: LogId<u64>) -> SResult<()> {
        let purged = wire::encode_purged(&log_id, self.shared.format);
        {
            let mut m = self.shared.mirror.write().map_err(io_write)?;
            let keep = m.entries.split_off(&(log_id.index + 1));
            m.entries = keep;
            m.purged = Some(log_id);
        }
        self.send_and_wait(|d| WriteOp::Purge {
            upto: log_id.index,
            purged,
            done: d,
        })
        .await
        .map_err(io_write)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::{CommittedLeaderId, EntryPayload};

    fn blank(index: u64, term: u64) -> Entry<TypeConfig> {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(term, 1), index),
            payload: EntryPayload::Blank,
        }
    }

    /// A data dir from before the segment files kept its entries in redb: they are moved over.
    #[tokio::test]
    async fn entries_kept_in_redb_move_to_the_segment_files() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            let tx = store.db.begin_write().unwrap();
            {
                let mut log = tx.open_table(LOG).unwrap();
                for e in [blank(1, 1), blank(2, 1), blank(3, 2)] {
                    let bytes = postcard::to_stdvec(&e).unwrap();
                    log.insert(e.log_id.index, bytes.as_slice()).unwrap();
                }
            }
            tx.commit().unwrap();
            let mut logs =
                LogStore::open(store.clone(), StallGuard::new(Duration::from_millis(250))).unwrap();
            let got = logs.try_get_log_entries(1..).await.unwrap();
            assert_eq!(got.len(), 3);
            let tx = store.db.begin_read().unwrap();
            assert!(tx.open_table(LOG).unwrap().iter().unwrap().next().is_none());
        }
        // The writer thread holds the database until its channel closes; wait for that.
        let store = loop {
            match Store::open(dir.path()) {
                Ok(s) => break s,
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
            }
        };
        let mut logs = LogStore::open(store, StallGuard::new(Duration::from_millis(250))).unwrap();
        let got = logs.try_get_log_entries(1..).await.unwrap();
        assert_eq!(
            got.iter().map(|e| e.log_id.index).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        let state = logs.get_log_state().await.unwrap();
        assert_eq!(state.last_log_id.map(|l| l.leader_id.term), Some(2));
        // What the leader sends (format 1 on): the stored bytes of that very entry, by log id.
        let format = logs.shared.format;
        assert!(format >= 1, "a new data dir's format is {format}");
        let bytes = logs.stored_entry(&blank(3, 2).log_id).expect("held");
        assert_eq!(wire::decode_entry(&bytes, format).unwrap(), blank(3, 2));
        assert!(
            logs.stored_entry(&blank(3, 1).log_id).is_none(),
            "another term's entry 3"
        );
        assert!(
            logs.stored_entry(&blank(4, 2).log_id).is_none(),
            "past the end"
        );
    }
}
