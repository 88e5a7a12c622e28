//! `hoist-controller --force-new-cluster`: recovery from a lost quorum. When most members of a
//! cluster are gone for good, no write can commit; this makes the member in `--data-dir` the only
//! voter of its cluster, keeping everything its log and snapshot hold (Swarm's
//! `--force-new-cluster`, etcd's and Nomad's `peers.json` recovery). The operator then adds
//! members back with `--join`, from empty data dirs.
//!
//! How: a membership entry naming only this member is appended right after the last entry of its
//! log, in a term above every term it has seen, and its vote is set to that term. A Raft member
//! takes the newest membership in its log as its own at once, so on start it is a cluster of one,
//! elects itself and commits that entry, and with it every entry before it. Entries this member
//! had but the old cluster never committed are committed too, as etcd's recovery does: the state
//! it serves is at least what the old cluster acknowledged.

use super::store::{Store, StoreError, KEY_PURGED, KEY_SNAPSHOT_META, KEY_VOTE};
use super::wal::{Record, Wal};
use super::wire;
use super::TypeConfig;
use openraft::{BasicNode, CommittedLeaderId, Entry, EntryPayload, LogId, Membership, Vote};
use std::collections::{BTreeMap, BTreeSet};

/// What the recovery did, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forced {
    /// The index of the new membership entry.
    pub index: u64,
    pub term: u64,
    /// The voters of the membership it replaced.
    pub previous_voters: Vec<u64>,
}

/// Makes member `id` at `address` the only voter of the cluster stored in `store` (see the
/// module doc). Refuses a data dir that holds no cluster.
pub fn force_new_cluster(store: &Store, id: u64, address: &str) -> Result<Forced, StoreError> {
    let format = store.format;
    let bad = |e| store.decode_error(e);
    let vote = store
        .get_meta(KEY_VOTE)?
        .map(|b| wire::decode_vote(&b, format).map_err(bad))
        .transpose()?;
    let purged = store
        .get_meta(KEY_PURGED)?
        .map(|b| wire::decode_purged(&b, format).map_err(bad))
        .transpose()?;
    let snapshot = store
        .get_meta(KEY_SNAPSHOT_META)?
        .map(|b| wire::decode_snapshot_meta(&b, format).map_err(bad))
        .transpose()?;
    let log_err = |e: super::wal::WalError| StoreError::Log(e.to_string());
    let (mut wal, records) =
        Wal::open(&store.dir.join("raft-log"), purged.map(|p| p.index), format).map_err(log_err)?;
    let mut last: Option<LogId<u64>> = purged;
    let mut previous: Option<Membership<u64, BasicNode>> = snapshot
        .as_ref()
        .map(|s| s.last_membership.membership().clone());
    for l in &records {
        let e = wire::decode_entry(&l.record.bytes, l.format).map_err(bad)?;
        if let EntryPayload::Membership(m) = &e.payload {
            previous = Some(m.clone());
        }
        last = Some(e.log_id);
    }
    if let Some(s) = snapshot.as_ref().and_then(|s| s.last_log_id) {
        if last.is_none_or(|l| l.index < s.index) {
            // The snapshot reaches past the log (a snapshot installed from a leader before the
            // log was purged to it): the log is purged to the snapshot first, durably, so that the
            // new entry continues it.
            store.put_meta(&[(KEY_PURGED, &wire::encode_purged(&s, format))], true)?;
            wal.purge(s.index).map_err(log_err)?;
            last = Some(s);
        }
    }
    let Some(previous) = previous else {
        return Err(StoreError::Format(format!(
            "--force-new-cluster: {} holds no cluster (no membership in its log or snapshot); \
             start a new one with --bootstrap",
            store.dir.display()
        )));
    };
    let seen_term = vote
        .map(|v| v.leader_id.term)
        .into_iter()
        .chain(last.map(|l| l.leader_id.term))
        .max()
        .unwrap_or(0);
    let term = seen_term + 1;
    let index = last.map_or(1, |l| l.index + 1);
    let entry: Entry<TypeConfig> = Entry {
        log_id: LogId::new(CommittedLeaderId::new(term, id), index),
        payload: EntryPayload::Membership(Membership::new(
            vec![BTreeSet::from([id])],
            BTreeMap::from([(id, BasicNode::new(address))]),
        )),
    };
    let bytes = wire::encode_entry(&entry, format)
        .map_err(|e| StoreError::Log(e.to_string()))?
        .into();
    wal.append(&[Record { index, term, bytes }])
        .map_err(log_err)?;
    wal.sync().map_err(log_err)?;
    let vote = wire::encode_vote(&Vote::new_committed(term, id), format);
    store.put_meta(&[(KEY_VOTE, &vote)], true)?;
    Ok(Forced {
        index,
        term,
        previous_voters: previous.voter_ids().collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::log_store::LogStore;
    use crate::raft::stall::StallGuard;
    use hoist_proto::raft::{Command, Request};
    use openraft::storage::RaftLogStorage;
    use openraft::RaftLogReader;
    use std::time::Duration;

    #[test]
    fn an_empty_data_dir_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let e = force_new_cluster(&store, 1, "a:1").unwrap_err().to_string();
        assert!(e.contains("holds no cluster"), "{e}");
    }

    /// A log of a three-member cluster gets a one-member membership after its last entry, in a
    /// newer term, and the vote follows.
    #[tokio::test]
    async fn the_member_becomes_the_only_voter_and_keeps_every_entry() {
        let dir = tempfile::tempdir().unwrap();
        let three = Membership::new(
            vec![BTreeSet::from([1, 2, 3])],
            BTreeMap::from([
                (1, BasicNode::new("a:1")),
                (2, BasicNode::new("b:1")),
                (3, BasicNode::new("c:1")),
            ]),
        );
        {
            let store = Store::open(dir.path()).unwrap();
            let (mut wal, _) = Wal::open(&dir.path().join("raft-log"), None, store.format).unwrap();
            let entries: Vec<Entry<TypeConfig>> = vec![
                Entry {
                    log_id: LogId::new(CommittedLeaderId::new(1, 1), 1),
                    payload: EntryPayload::Membership(three),
                },
                Entry {
                    log_id: LogId::new(CommittedLeaderId::new(4, 2), 2),
                    payload: EntryPayload::Normal(Request {
                        time_ms: 1,
                        command: Command::Noop,
                    }),
                },
            ];
            let rows: Vec<Record> = entries
                .iter()
                .map(|e| Record {
                    index: e.log_id.index,
                    term: e.log_id.leader_id.term,
                    bytes: wire::encode_entry(e, store.format).unwrap().into(),
                })
                .collect();
            wal.append(&rows).unwrap();
            wal.sync().unwrap();
            let vote = wire::encode_vote(&Vote::new(5, 3), store.format);
            store.put_meta(&[(KEY_VOTE, &vote)], true).unwrap();
            let forced = force_new_cluster(&store, 2, "b:1").unwrap();
            assert_eq!(
                forced,
                Forced {
                    index: 3,
                    term: 6,
                    previous_voters: vec![1, 2, 3]
                }
            );
        }
        let store = Store::open(dir.path()).unwrap();
        let mut logs = LogStore::open(store, StallGuard::new(Duration::from_millis(250))).unwrap();
        let got = logs.try_get_log_entries(1..).await.unwrap();
        assert_eq!(got.len(), 3);
        match &got[2].payload {
            EntryPayload::Membership(m) => {
                assert_eq!(m.voter_ids().collect::<Vec<_>>(), [2]);
                assert_eq!(m.get_node(&2).map(|n| n.addr.as_str()), Some("b:1"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            logs.read_vote().await.unwrap(),
            Some(Vote::new_committed(6, 2))
        );
    }

    /// A snapshot installed from a leader past the end of the log: the new membership follows the
    /// snapshot, and the log opens again.
    #[tokio::test]
    async fn a_snapshot_past_the_log_is_followed() {
        use openraft::{SnapshotMeta, StoredMembership};
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            let (mut wal, _) = Wal::open(&dir.path().join("raft-log"), None, store.format).unwrap();
            let e: Entry<TypeConfig> = Entry {
                log_id: LogId::new(CommittedLeaderId::new(1, 1), 1),
                payload: EntryPayload::Blank,
            };
            let bytes = wire::encode_entry(&e, store.format).unwrap().into();
            wal.append(&[Record {
                index: 1,
                term: 1,
                bytes,
            }])
            .unwrap();
            wal.sync().unwrap();
            let at = LogId::new(CommittedLeaderId::new(2, 1), 10);
            let meta = SnapshotMeta {
                last_log_id: Some(at),
                last_membership: StoredMembership::new(
                    Some(at),
                    Membership::new(
                        vec![BTreeSet::from([1, 2])],
                        BTreeMap::from([(1, BasicNode::new("a:1")), (2, BasicNode::new("b:1"))]),
                    ),
                ),
                snapshot_id: "2-10-0".into(),
            };
            let m = wire::encode_snapshot_meta(&meta, store.format);
            store.put_meta(&[(KEY_SNAPSHOT_META, &m)], true).unwrap();
            let forced = force_new_cluster(&store, 1, "a:1").unwrap();
            assert_eq!((forced.index, forced.term), (11, 3));
        }
        let store = Store::open(dir.path()).unwrap();
        let mut logs = LogStore::open(store, StallGuard::new(Duration::from_millis(250))).unwrap();
        let state = logs.get_log_state().await.unwrap();
        assert_eq!(state.last_purged_log_id.map(|l| l.index), Some(10));
        assert_eq!(state.last_log_id.map(|l| l.index), Some(11));
    }
}
