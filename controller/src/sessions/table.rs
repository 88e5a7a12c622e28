//! The routing table of sessions: which sessions wait for which node's poll, which are under
//! way, and where each one's output goes. No I/O and no clock of its own (times come in), so the
//! rules are tested directly: a session is answered only by its node, at most once; one not
//! answered in time is given up; a node that registers again loses all of its sessions.

use hoist_proto::session::{SessionFrame, SessionRequest};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

/// What the operator's side of a session hears.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEvent {
    /// The agent has begun answering.
    Attached,
    Frame(SessionFrame),
    /// The session is over; `Some` says why it did not end normally.
    Ended(Option<String>),
}

/// Most sessions waiting for or open at one node.
pub const MAX_PER_NODE: usize = 256;

#[derive(Debug)]
enum Phase {
    /// Waiting for the node's poll (queued) or for the agent's output request (delivered).
    Asked,
    Attached,
}

#[derive(Debug)]
struct Open {
    node: String,
    phase: Phase,
    opened: Instant,
    to_operator: mpsc::Sender<SessionEvent>,
    /// Dropped when the session is ended from here: the agent's output request then stops.
    _ended: watch::Sender<()>,
    ended: watch::Receiver<()>,
}

/// Why an agent may not answer a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttachError {
    /// Over, given up, or never asked.
    Unknown,
    /// Asked of another node.
    WrongNode {
        owner: String,
    },
    AlreadyAttached,
}

/// An answered session's ends: where its frames go, and a signal that closes when the session
/// is ended from here (the node registered again).
#[derive(Debug)]
pub struct Attached {
    pub to_operator: mpsc::Sender<SessionEvent>,
    pub ended: watch::Receiver<()>,
}

#[derive(Debug, Default)]
pub struct Table {
    /// By session id, with the requests queued per node in order.
    open: HashMap<String, Open>,
    queued: BTreeMap<String, Vec<SessionRequest>>,
}

impl Table {
    /// Asks `node` to run `request`; its output goes to `to_operator`. Refused when the node has
    /// [`MAX_PER_NODE`] sessions already.
    pub fn open(
        &mut self,
        node: &str,
        request: SessionRequest,
        to_operator: mpsc::Sender<SessionEvent>,
        now: Instant,
    ) -> Result<(), String> {
        let busy = self.open.values().filter(|o| o.node == node).count();
        if busy >= MAX_PER_NODE {
            return Err(format!(
                "node {node} has {busy} sessions open already; try again later"
            ));
        }
        let (tx, rx) = watch::channel(());
        self.open.insert(
            request.id.clone(),
            Open {
                node: node.to_string(),
                phase: Phase::Asked,
                opened: now,
                to_operator,
                _ended: tx,
                ended: rx,
            },
        );
        self.queued
            .entry(node.to_string())
            .or_default()
            .push(request);
        Ok(())
    }

    /// Whether sessions wait for `node`'s poll.
    pub fn has_queued(&self, node: &str) -> bool {
        self.queued.get(node).is_some_and(|q| !q.is_empty())
    }

    /// The sessions waiting for `node`, handed to its poll; those whose operator has gone
    /// already are dropped instead.
    pub fn take_queued(&mut self, node: &str) -> Vec<SessionRequest> {
        let list = self.queued.remove(node).unwrap_or_default();
        let mut out = Vec::with_capacity(list.len());
        for r in list {
            let Some(o) = self.open.get_mut(&r.id) else {
                continue;
            };
            if o.to_operator.is_closed() {
                self.open.remove(&r.id);
                continue;
            }
            out.push(r);
        }
        out
    }

    /// `node` begins answering session `id`.
    pub fn attach(&mut self, id: &str, node: &str) -> Result<Attached, AttachError> {
        let o = self.open.get_mut(id).ok_or(AttachError::Unknown)?;
        if o.node != node {
            return Err(AttachError::WrongNode {
                owner: o.node.clone(),
            });
        }
        if matches!(o.phase, Phase::Attached) {
            return Err(AttachError::AlreadyAttached);
        }
        o.phase = Phase::Attached;
        if let Some(q) = self.queued.get_mut(node) {
            q.retain(|r| r.id != id);
        }
        Ok(Attached {
            to_operator: o.to_operator.clone(),
            ended: o.ended.clone(),
        })
    }

    /// The session is over (its output request ended).
    pub fn finish(&mut self, id: &str) {
        self.open.remove(id);
    }

    /// Gives up the sessions not answered within `timeout` of being opened: each one's
    /// operator side and node.
    pub fn expire(
        &mut self,
        now: Instant,
        timeout: Duration,
    ) -> Vec<(mpsc::Sender<SessionEvent>, String)> {
        let late: Vec<String> = self
            .open
            .iter()
            .filter(|(_, o)| {
                matches!(o.phase, Phase::Asked)
                    && now.saturating_duration_since(o.opened) >= timeout
            })
            .map(|(id, _)| id.clone())
            .collect();
        self.remove(&late)
    }

    /// `node` registered again (its agent restarted, or it was removed and came back): none of
    /// its sessions will be answered or continue. Answers their operator sides.
    pub fn node_registered(&mut self, node: &str) -> Vec<(mpsc::Sender<SessionEvent>, String)> {
        let ids: Vec<String> = self
            .open
            .iter()
            .filter(|(_, o)| o.node == node)
            .map(|(id, _)| id.clone())
            .collect();
        self.remove(&ids)
    }

    fn remove(&mut self, ids: &[String]) -> Vec<(mpsc::Sender<SessionEvent>, String)> {
        let mut out = Vec::new();
        for id in ids {
            if let Some(o) = self.open.remove(id) {
                if let Some(q) = self.queued.get_mut(&o.node) {
                    q.retain(|r| &r.id != id);
                }
                out.push((o.to_operator, o.node));
            }
        }
        self.queued.retain(|_, q| !q.is_empty());
        out
    }

    /// Sessions open (asked or answering), for tests and diagnostics.
    pub fn len(&self) -> usize {
        self.open.len()
    }

    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hoist_proto::session::{LogsOptions, SessionKind};

    fn req(id: &str) -> SessionRequest {
        SessionRequest {
            id: id.into(),
            task_id: format!("task-{id}"),
            service: "web".into(),
            slot: 0,
            kind: SessionKind::Logs(LogsOptions::default()),
        }
    }

    #[test]
    fn only_the_asked_node_answers_and_only_once() {
        let mut t = Table::default();
        let now = Instant::now();
        let (tx, _rx) = mpsc::channel(4);
        t.open("n1", req("a"), tx, now).unwrap();
        assert!(t.has_queued("n1"));
        assert!(!t.has_queued("n2"));
        assert!(t.take_queued("n2").is_empty());
        assert_eq!(t.take_queued("n1"), vec![req("a")]);
        assert!(!t.has_queued("n1"), "handed over once");
        assert_eq!(
            t.attach("a", "n2").unwrap_err(),
            AttachError::WrongNode { owner: "n1".into() }
        );
        assert_eq!(t.attach("zz", "n1").unwrap_err(), AttachError::Unknown);
        let a = t.attach("a", "n1").unwrap();
        assert!(!a.to_operator.is_closed());
        assert_eq!(
            t.attach("a", "n1").unwrap_err(),
            AttachError::AlreadyAttached
        );
        t.finish("a");
        assert_eq!(t.attach("a", "n1").unwrap_err(), AttachError::Unknown);
        assert!(t.is_empty());
    }

    #[test]
    fn unanswered_sessions_expire_answered_ones_do_not() {
        let mut t = Table::default();
        let t0 = Instant::now();
        let (tx, _rx) = mpsc::channel(4);
        t.open("n1", req("a"), tx.clone(), t0).unwrap();
        t.open("n1", req("b"), tx.clone(), t0).unwrap();
        t.open("n2", req("c"), tx, t0 + Duration::from_secs(3))
            .unwrap();
        t.take_queued("n1");
        let _b = t.attach("b", "n1").unwrap();
        let timeout = Duration::from_secs(5);
        assert!(t.expire(t0 + Duration::from_secs(4), timeout).is_empty());
        let gone = t.expire(t0 + Duration::from_secs(5), timeout);
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].1, "n1", "a, delivered but never answered");
        assert_eq!(t.len(), 2);
        let gone = t.expire(t0 + Duration::from_secs(9), timeout);
        assert_eq!(gone.len(), 1, "c, never polled");
        assert!(!t.has_queued("n2"));
        assert_eq!(t.len(), 1, "b answers");
    }

    #[test]
    fn a_node_registering_again_ends_its_sessions() {
        let mut t = Table::default();
        let now = Instant::now();
        let (tx, _rx) = mpsc::channel(4);
        t.open("n1", req("a"), tx.clone(), now).unwrap();
        t.open("n1", req("b"), tx.clone(), now).unwrap();
        t.open("n2", req("c"), tx, now).unwrap();
        t.take_queued("n1");
        let a = t.attach("a", "n1").unwrap();
        assert!(a.ended.has_changed().is_ok(), "still open");
        let ended = t.node_registered("n1");
        assert_eq!(ended.len(), 2);
        assert!(
            a.ended.has_changed().is_err(),
            "the answering agent is told"
        );
        assert_eq!(t.attach("b", "n1").unwrap_err(), AttachError::Unknown);
        assert_eq!(t.take_queued("n2"), vec![req("c")]);
    }

    #[test]
    fn a_gone_operator_is_not_asked_for_and_nodes_have_a_limit() {
        let mut t = Table::default();
        let now = Instant::now();
        let (tx, rx) = mpsc::channel(4);
        t.open("n1", req("a"), tx, now).unwrap();
        drop(rx);
        assert!(t.take_queued("n1").is_empty());
        assert!(t.is_empty());
        let (tx, _rx) = mpsc::channel(4);
        for i in 0..MAX_PER_NODE {
            t.open("n1", req(&i.to_string()), tx.clone(), now).unwrap();
        }
        let e = t.open("n1", req("over"), tx.clone(), now).unwrap_err();
        assert!(e.contains("node n1 has 256 sessions open"), "{e}");
        t.open("n2", req("other"), tx, now).unwrap();
    }
}
