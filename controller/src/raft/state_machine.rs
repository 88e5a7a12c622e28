//! The state machine glue: applies committed entries to the pure [`State`] held in memory, and
//! persists it only as snapshots (in redb). On restart the last snapshot is loaded and openraft
//! re-applies the committed log after it. A snapshot is written in the cluster's format at its
//! index, so every member it may be sent to reads it.

use super::store::{Store, StoreError, KEY_SNAPSHOT_DATA, KEY_SNAPSHOT_META};
use super::wire;
use super::TypeConfig;
use crate::events::{EventLog, EVENTS_KEPT};
use crate::state::{decode_snapshot, encode_snapshot, State};
use hoist_proto::raft::Response;
use openraft::storage::RaftStateMachine;
use openraft::{
    BasicNode, Entry, EntryPayload, LogId, OptionalSend, RaftSnapshotBuilder, Snapshot,
    SnapshotMeta, StorageError, StorageIOError, StoredMembership,
};
use std::io::Cursor;
use std::sync::{Arc, RwLock};

/// What has been applied: the state and the Raft position it corresponds to.
#[derive(Debug, Default, Clone)]
pub struct Applied {
    pub state: State,
    pub last_applied: Option<LogId<u64>>,
    pub membership: StoredMembership<u64, BasicNode>,
}

/// The state machine; [`Machine::shared`] is read by the API without going through Raft.
#[derive(Debug, Clone)]
pub struct Machine {
    pub shared: Arc<RwLock<Applied>>,
    /// The last applied log index, for waiters (long polls, watches).
    pub applied: Arc<tokio::sync::watch::Sender<u64>>,
    store: Store,
    snapshot_seq: Arc<std::sync::atomic::AtomicU64>,
    /// Snapshots installed from a leader since start (reported in the cluster status).
    pub installed: Arc<std::sync::atomic::AtomicU64>,
    /// The applied state's cluster format, for the network's choice of format.
    pub cluster_format: Arc<std::sync::atomic::AtomicU32>,
    /// The events the applied entries told (`crate::events`): in memory only.
    pub events: Arc<EventLog>,
    /// The agents' polls to wake after an apply (`super::watches`).
    pub watches: Arc<super::watches::Watches>,
}

type SResult<T> = Result<T, StorageError<u64>>;

fn sm_err(e: impl std::fmt::Display) -> StorageError<u64> {
    StorageIOError::write_state_machine(openraft::AnyError::error(e.to_string())).into()
}
fn snap_err(e: impl std::fmt::Display) -> StorageError<u64> {
    StorageIOError::read_snapshot(None, openraft::AnyError::error(e.to_string())).into()
}

impl Machine {
    /// Opens the state machine from the last persisted snapshot, if any.
    pub fn open(store: Store) -> Result<Machine, StoreError> {
        let mut applied = Applied::default();
        if let Some((meta, data)) = load_snapshot(&store)? {
            applied.state = decode_snapshot(&data).map_err(|e| {
                StoreError::Format(format!(
                    "{}: the stored snapshot (key {KEY_SNAPSHOT_DATA}): {e}: refusing to start \
                     (nothing was changed)",
                    store.file().display()
                ))
            })?;
            applied.last_applied = meta.last_log_id;
            applied.membership = meta.last_membership;
        }
        let index = applied.last_applied.map_or(0, |l| l.index);
        let cluster_format = Arc::new(std::sync::atomic::AtomicU32::new(
            applied.state.cluster_format,
        ));
        Ok(Machine {
            cluster_format,
            events: Arc::new(EventLog::new(EVENTS_KEPT, index)),
            watches: Arc::default(),
            applied: Arc::new(tokio::sync::watch::Sender::new(index)),
            shared: Arc::new(RwLock::new(applied)),
            store,
            snapshot_seq: Arc::default(),
            installed: Arc::default(),
        })
    }

    fn persist(&self, meta: &SnapshotMeta<u64, BasicNode>, data: &[u8]) -> Result<(), StoreError> {
        let m = wire::encode_snapshot_meta(meta, self.store.format);
        self.store
            .put_meta(&[(KEY_SNAPSHOT_META, &m), (KEY_SNAPSHOT_DATA, data)], true)
    }
}

/// A persisted snapshot: its meta and the state image.
type StoredSnapshot = (SnapshotMeta<u64, BasicNode>, Vec<u8>);

fn load_snapshot(store: &Store) -> Result<Option<StoredSnapshot>, StoreError> {
    let (Some(m), Some(d)) = (
        store.get_meta(KEY_SNAPSHOT_META)?,
        store.get_meta(KEY_SNAPSHOT_DATA)?,
    ) else {
        return Ok(None);
    };
    let meta = wire::decode_snapshot_meta(&m, store.format).map_err(|e| store.decode_error(e))?;
    Ok(Some((meta, d)))
}

impl RaftSnapshotBuilder<TypeConfig> for Machine {
    async fn build_snapshot(&mut self) -> SResult<Snapshot<TypeConfig>> {
        let (state, last, membership) = {
            let a = self.shared.read().expect("state lock");
            (a.state.clone(), a.last_applied, a.membership.clone())
        };
        let seq = self
            .snapshot_seq
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let this = self.clone();
        let (meta, data) = tokio::task::spawn_blocking(move || {
            // `apply` admits nothing the cluster's format cannot say; should it ever, the
            // snapshot is still taken (in the current format) and the fault is told.
            let data = encode_snapshot(&state, state.cluster_format)
                .or_else(|e| {
                    tracing::error!(error = %e, "the state does not fit its cluster format");
                    encode_snapshot(&state, hoist_proto::format::CURRENT)
                })
                .expect("the current format says everything");
            let snapshot_id = match last {
                Some(l) => format!("{}-{}-{seq}", l.leader_id.term, l.index),
                None => format!("none-{seq}"),
            };
            let meta = SnapshotMeta {
                last_log_id: last,
                last_membership: membership,
                snapshot_id,
            };
            this.persist(&meta, &data).map(|()| (meta, data))
        })
        .await
        .map_err(sm_err)?
        .map_err(sm_err)?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl Machine {
    /// Applies committed entries to the state, then wakes who waits on them.
    fn apply_now(&self, entries: Vec<Entry<TypeConfig>>) -> Vec<Response> {
        let mut a = self.shared.write().expect("state lock");
        let overlay_before = a.state.overlay_index;
        let mut out = Vec::new();
        let mut told = Vec::new();
        for entry in entries {
            a.last_applied = Some(entry.log_id);
            out.push(match entry.payload {
                EntryPayload::Blank => Response::Ok,
                EntryPayload::Normal(req) => {
                    let (response, events) = a.state.apply_at_telling(entry.log_id.index, &req);
                    told.extend(events);
                    response
                }
                EntryPayload::Membership(m) => {
                    a.membership = StoredMembership::new(Some(entry.log_id), m);
                    Response::Ok
                }
            });
        }
        let index = a.last_applied.map_or(0, |l| l.index);
        self.cluster_format
            .store(a.state.cluster_format, std::sync::atomic::Ordering::Relaxed);
        let touched = a.state.touched.take();
        let overlay_changed = a.state.overlay_index != overlay_before;
        drop(a);
        self.events.push(told);
        self.watches.applied(index, touched, overlay_changed);
        self.applied.send_replace(index);
        out
    }
}

/// Runs `f` where a long computation does not hold up the runtime's other tasks: in place, but
/// with the worker's queue handed to another thread (on the multi-threaded runtime the
/// controller runs on; a test's single-threaded runtime just runs it).
fn off_the_runtime<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

impl RaftStateMachine<TypeConfig> for Machine {
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> SResult<(Option<LogId<u64>>, StoredMembership<u64, BasicNode>)> {
        let a = self.shared.read().expect("state lock");
        Ok((a.last_applied, a.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> SResult<Vec<Response>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<_> = entries.into_iter().collect();
        // A batch of large plans is milliseconds of CPU: off the runtime's worker, so Raft's
        // own tasks (heartbeats, votes) keep running beside it.
        Ok(off_the_runtime(|| self.apply_now(entries)))
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> SResult<Box<Cursor<Vec<u8>>>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<u64, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> SResult<()> {
        let data = snapshot.into_inner();
        let mut state = decode_snapshot(&data).map_err(snap_err)?;
        // What the image holds changed at some index up to its last one.
        let last = meta.last_log_id.map_or(0, |l| l.index);
        state.everything_changed(last);
        let this = self.clone();
        let m = meta.clone();
        tokio::task::spawn_blocking(move || this.persist(&m, &data))
            .await
            .map_err(sm_err)?
            .map_err(sm_err)?;
        let mut a = self.shared.write().expect("state lock");
        a.state = state;
        a.last_applied = meta.last_log_id;
        a.membership = meta.last_membership.clone();
        self.installed
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let index = a.last_applied.map_or(0, |l| l.index);
        self.cluster_format
            .store(a.state.cluster_format, std::sync::atomic::Ordering::Relaxed);
        drop(a);
        self.events.reset(index);
        self.watches.everything_changed(index);
        self.applied.send_replace(index);
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> SResult<Option<Snapshot<TypeConfig>>> {
        let store = self.store.clone();
        let loaded = tokio::task::spawn_blocking(move || load_snapshot(&store))
            .await
            .map_err(snap_err)?
            .map_err(snap_err)?;
        Ok(loaded.map(|(meta, data)| Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        }))
    }
}
