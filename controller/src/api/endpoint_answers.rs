//! The endpoints answers given lately, encoded, by what they answer: the poll's index and kind,
//! and the table's index. Each endpoints change wakes every agent's poll; most of them hold the
//! same answer (they took the last change together), so they are owed the same bytes. Building
//! an answer of changes costs a walk of the changes since the poll's index and the copies of the
//! replicas: in a profile of the leader during a fill of 1,000 nodes with their watches, building
//! answers took over a third of the leader's samples, much of it the same answer over and over.
//!
//! An answer depends on the table's index (`endpoints_index`, replicated: equal indexes mean the
//! same replicas, between two restores) and on the poll; a service created since without a change to its replicas may
//! be missing from an answer taken from here, which is then what an agent that asked a moment
//! earlier holds, and the next change lists it.

use axum::body::Bytes;
use std::collections::VecDeque;
use std::sync::Mutex;

/// What an answer answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    /// The poll's index, 0 for the whole table.
    pub since: u64,
    /// Whether it lists changed replicas (`changed=2`) or whole services.
    pub replicas: bool,
    /// The table's index (the answer's).
    pub index: u64,
    /// The state's endpoints floor (`state/endpoint_changes.rs`): a restored image brings
    /// indexes of another time, and an index then no longer names the same table.
    pub floor: u64,
    pub term: u64,
    pub format: u32,
    pub pace_ms: u64,
}

/// The newest answers, at most [`Answers::KEEP`].
#[derive(Debug, Default)]
pub struct Answers(Mutex<VecDeque<(Key, Bytes)>>);

impl Answers {
    /// Enough for the indexes the agents hold at once while the table changes fast (each agent
    /// asks at most at its pace): a few dozen encoded answers of changes, a few KiB each.
    pub const KEEP: usize = 32;

    pub fn get(&self, key: &Key) -> Option<Bytes> {
        let answers = self.0.lock().unwrap_or_else(|p| p.into_inner());
        answers
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, b)| b.clone())
    }

    pub fn put(&self, key: Key, bytes: Bytes) {
        let mut answers = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if answers.iter().any(|(k, _)| *k == key) {
            return;
        }
        if answers.len() == Self::KEEP {
            answers.pop_front();
        }
        answers.push_back((key, bytes));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(since: u64) -> Key {
        Key {
            since,
            replicas: true,
            index: 90,
            floor: 0,
            term: 3,
            format: 2,
            pace_ms: 500,
        }
    }

    #[test]
    fn answers_are_kept_by_what_they_answer_the_newest_first() {
        let answers = Answers::default();
        answers.put(key(80), Bytes::from_static(b"since 80"));
        assert_eq!(answers.get(&key(80)), Some(Bytes::from_static(b"since 80")));
        assert_eq!(answers.get(&key(81)), None);
        assert_eq!(
            answers.get(&Key {
                replicas: false,
                ..key(80)
            }),
            None
        );
        assert_eq!(
            answers.get(&Key {
                index: 91,
                ..key(80)
            }),
            None
        );
        for since in 0..Answers::KEEP as u64 {
            answers.put(key(1000 + since), Bytes::new());
        }
        assert_eq!(answers.get(&key(80)), None, "the oldest is dropped");
        assert!(answers.get(&key(1000)).is_some());
    }
}
