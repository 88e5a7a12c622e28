//! Cluster events as `GET /v1/events` sends them (server-sent events, JSON `data`) and `hoist
//! events` reads them. JSON only, never stored or sent between Hoist processes: every controller
//! member derives the same events from the Raft entries it applies, so an event's id (the entry's
//! index and the event's place in it) names the same event on every member, and a client resumes
//! on any member after a failover.
//!
//! The JSON is flat: `{id, index, time_ms, type, service?, node?, task?, slot?, version?, stack?,
//! release?, from?, to?, message}`; fields that do not apply to a type are left out. Fields are
//! only ever added.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Where an event stands in the Raft log: the entry's index and the event's position among the
/// events of that entry. Written `INDEX.SEQ` (`1234.0`). A position after a whole entry (every
/// event of it) is written `INDEX` alone: `1234` resumes with entry 1235, as `?index=1234` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventId {
    pub index: u64,
    /// [`EventId::WHOLE_ENTRY`] for "after every event of the entry".
    pub seq: u32,
}

impl EventId {
    /// The `seq` of a position after every event of an entry.
    pub const WHOLE_ENTRY: u32 = u32::MAX;

    pub fn new(index: u64, seq: u32) -> EventId {
        EventId { index, seq }
    }

    /// The position after every event of entry `index` (0: before everything).
    pub fn after_entry(index: u64) -> EventId {
        EventId {
            index,
            seq: Self::WHOLE_ENTRY,
        }
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.seq == Self::WHOLE_ENTRY {
            write!(f, "{}", self.index)
        } else {
            write!(f, "{}.{}", self.index, self.seq)
        }
    }
}

impl FromStr for EventId {
    type Err = String;

    fn from_str(s: &str) -> Result<EventId, String> {
        let bad = || format!("{s:?} is not an event id (INDEX.SEQ, such as 1234.0, or INDEX)");
        let (index, seq) = match s.trim().split_once('.') {
            Some((i, q)) => (i, Some(q)),
            None => (s.trim(), None),
        };
        let index: u64 = index.parse().map_err(|_| bad())?;
        let seq = match seq {
            None => Self::WHOLE_ENTRY,
            Some(q) => q
                .parse::<u32>()
                .ok()
                .filter(|q| *q != Self::WHOLE_ENTRY)
                .ok_or_else(bad)?,
        };
        Ok(EventId { index, seq })
    }
}

impl Serialize for EventId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for EventId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<EventId, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// One thing that happened to the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub id: EventId,
    /// The Raft log index of the entry it comes from (`id` without the position).
    pub index: u64,
    /// The leader's clock when the entry was proposed, milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// What happened: one of [`TYPES`] (`service.scaled`, `task.state`, ...).
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// The replica slot of a task event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<u64>,
    /// The service version the event is about (the task's, the rollout's, the new one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<u64>,
    /// What changed, before and after, as text: task states (`pending` → `running`), replica
    /// counts (`3` → `5`), versions (`2` → `3`), rollout progress (`2/5` → `3/5`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// One line for people.
    pub message: String,
}

impl Event {
    /// An event of `kind` at `time_ms` saying `message`, with no subject yet and id `0.0` (the
    /// member numbers it when it keeps it).
    pub fn new(kind: &str, time_ms: u64, message: impl Into<String>) -> Event {
        Event {
            id: EventId::new(0, 0),
            index: 0,
            time_ms,
            kind: kind.to_string(),
            service: None,
            node: None,
            task: None,
            slot: None,
            version: None,
            stack: None,
            release: None,
            from: None,
            to: None,
            message: message.into(),
        }
    }

    /// Whether it is about the stream itself (`events.lost`) rather than the cluster.
    pub fn is_meta(&self) -> bool {
        self.kind.starts_with("events.")
    }
}

/// A service was created (`version` 1, `to` its replicas).
pub const SERVICE_CREATED: &str = "service.created";
/// A service got a new version that runs differently (`from` → `to`: versions).
pub const SERVICE_UPDATED: &str = "service.updated";
/// A service's replica count changed (`from` → `to`: replicas).
pub const SERVICE_SCALED: &str = "service.scaled";
pub const SERVICE_REMOVED: &str = "service.removed";
/// A rolling update began (`from` → `to`: versions).
pub const ROLLOUT_STARTED: &str = "rollout.started";
/// More (or fewer) replicas run the new version (`from` → `to`: `updated/total`).
pub const ROLLOUT_PROGRESS: &str = "rollout.progress";
pub const ROLLOUT_COMPLETED: &str = "rollout.completed";
pub const ROLLOUT_PAUSED: &str = "rollout.paused";
/// An update failed and the previous spec is rolling out (`version`: the rollback's).
pub const ROLLOUT_ROLLING_BACK: &str = "rollout.rolling_back";
pub const ROLLOUT_ROLLED_BACK: &str = "rollout.rolled_back";
/// The automatic rollback itself failed.
pub const ROLLOUT_FAILED: &str = "rollout.failed";
/// A replica's state changed (`from` → `to`: `pending`, `running`, `shutdown`, `failed`,
/// `complete`; a new replica has no `from`).
pub const TASK_STATE: &str = "task.state";
/// A replica's health changed (`starting`, `healthy`, `unhealthy`).
pub const TASK_HEALTH: &str = "task.health";
/// A replica's container was restarted by its agent (`to`: its restarts so far).
pub const TASK_RESTARTED: &str = "task.restarted";
/// A replica that had not ended was forgotten (its node is down or gone).
pub const TASK_REMOVED: &str = "task.removed";
pub const NODE_REGISTERED: &str = "node.registered";
pub const NODE_UP: &str = "node.up";
pub const NODE_DOWN: &str = "node.down";
pub const NODE_DRAINED: &str = "node.drained";
pub const NODE_PAUSED: &str = "node.paused";
pub const NODE_ACTIVE: &str = "node.active";
pub const NODE_REMOVED: &str = "node.removed";
/// A stack deploy made a new release (`to`: `deploying`, or `completed` when nothing rolls out).
pub const STACK_DEPLOYED: &str = "stack.deployed";
pub const STACK_COMPLETED: &str = "stack.completed";
pub const STACK_ROLLED_BACK: &str = "stack.rolled_back";
pub const STACK_SUPERSEDED: &str = "stack.superseded";
pub const STACK_REMOVED: &str = "stack.removed";
/// An autoscaling decision (`from` → `to`: replicas; `message`: source and reason).
pub const AUTOSCALE_DECISION: &str = "autoscale.decision";
/// The cluster format was raised (`from` → `to`).
pub const CLUSTER_FORMAT: &str = "cluster.format";
/// An operator's snapshot replaced the state.
pub const CLUSTER_RESTORED: &str = "cluster.restored";
/// Not the cluster's: events between the client's position and `to` (an id) are no longer kept
/// on this member; the stream goes on after `to`.
pub const EVENTS_LOST: &str = "events.lost";

/// Every event type, for filters and documentation.
pub const TYPES: &[&str] = &[
    SERVICE_CREATED,
    SERVICE_UPDATED,
    SERVICE_SCALED,
    SERVICE_REMOVED,
    ROLLOUT_STARTED,
    ROLLOUT_PROGRESS,
    ROLLOUT_COMPLETED,
    ROLLOUT_PAUSED,
    ROLLOUT_ROLLING_BACK,
    ROLLOUT_ROLLED_BACK,
    ROLLOUT_FAILED,
    TASK_STATE,
    TASK_HEALTH,
    TASK_RESTARTED,
    TASK_REMOVED,
    NODE_REGISTERED,
    NODE_UP,
    NODE_DOWN,
    NODE_DRAINED,
    NODE_PAUSED,
    NODE_ACTIVE,
    NODE_REMOVED,
    STACK_DEPLOYED,
    STACK_COMPLETED,
    STACK_ROLLED_BACK,
    STACK_SUPERSEDED,
    STACK_REMOVED,
    AUTOSCALE_DECISION,
    CLUSTER_FORMAT,
    CLUSTER_RESTORED,
    EVENTS_LOST,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_read_back_and_order_by_entry_then_position() {
        for s in ["1234.0", "7.12", "0", "99"] {
            assert_eq!(s.parse::<EventId>().unwrap().to_string(), s);
        }
        assert_eq!("5".parse::<EventId>().unwrap(), EventId::after_entry(5));
        assert!(EventId::new(5, 3) < EventId::after_entry(5));
        assert!(EventId::after_entry(5) < EventId::new(6, 0));
        for bad in ["", "x", "1.", ".1", "1.2.3", "-1", "1.4294967295"] {
            assert!(bad.parse::<EventId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn json_is_flat_and_leaves_out_what_does_not_apply() {
        let mut e = Event::new(SERVICE_SCALED, 1_700_000_000_000, "web scaled from 3 to 5");
        e.id = EventId::new(12, 1);
        e.index = 12;
        e.service = Some("web".into());
        e.from = Some("3".into());
        e.to = Some("5".into());
        let j = serde_json::to_value(&e).unwrap();
        assert_eq!(
            j,
            serde_json::json!({"id": "12.1", "index": 12, "time_ms": 1_700_000_000_000u64,
                "type": "service.scaled", "service": "web", "from": "3", "to": "5",
                "message": "web scaled from 3 to 5"})
        );
        assert_eq!(serde_json::from_value::<Event>(j).unwrap(), e);
    }

    #[test]
    fn types_are_unique_and_dotted() {
        let set: std::collections::BTreeSet<_> = TYPES.iter().collect();
        assert_eq!(set.len(), TYPES.len());
        assert!(TYPES.iter().all(|t| t.split_once('.').is_some()));
    }
}
