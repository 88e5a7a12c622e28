//! One service's logs: a session per running replica, merged into one answer of
//! newline-delimited [`LogRecord`]s. Each replica's output is put back into whole lines
//! ([`Lines`]) and each line is written as one record, so lines of different replicas never mix.
//! Replicas are merged as their lines arrive (each replica's in order), not sorted by time.
//!
//! Following (`follow`), the service's replicas are looked at again every second: a replica that
//! started since (a new task, or a task's new container after a restart) is streamed from its
//! first line; a replica whose node went down gets a record saying so, and the others stream on.
//! The answer ends when the operator goes (its connection closes: every session ends with it),
//! or the service is removed. Without `follow` it ends once every replica's output has.

use super::lines::{Line, Lines};
use super::replicas::Replica;
use super::{new_id, SessionEvent, Sessions};
use bytes::Bytes;
use futures::stream::{BoxStream, SelectAll, StreamExt};
use futures::FutureExt;
use hoist_proto::session::{LogRecord, LogsOptions, SessionKind, SessionRequest};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// How often a followed service's replicas are looked at again.
pub const RESCAN: Duration = Duration::from_secs(1);

/// The service as the merge looks at it again.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Its running replicas.
    pub replicas: Vec<Replica>,
    /// The nodes marked down (their replicas are being replaced and leave the list).
    pub down: BTreeSet<String>,
}

/// What the merge asks of the replicated state: the service now, or `None` once it is gone.
pub trait Scan: Send + 'static {
    fn scan(&self) -> Option<Snapshot>;
}

impl<F: Fn() -> Option<Snapshot> + Send + 'static> Scan for F {
    fn scan(&self) -> Option<Snapshot> {
        self()
    }
}

struct Streamed {
    replica: Replica,
    lines: Lines,
    /// Its session's events still arrive.
    live: bool,
    /// Ends its event stream early (its node went down).
    stop: Option<oneshot::Sender<()>>,
}

/// Merges the logs of `service`'s replicas into `out` (see the module doc). `first` are the
/// replicas running when the operator asked.
pub async fn merge(
    sessions: Arc<Sessions>,
    service: String,
    opts: LogsOptions,
    first: Vec<Replica>,
    scan: impl Scan,
    out: mpsc::Sender<Bytes>,
) {
    let mut m = Merge {
        sessions,
        service,
        streams: Vec::new(),
        by_task: HashMap::new(),
        events: SelectAll::new(),
        out,
        pending: Vec::new(),
    };
    for r in first {
        m.start(r, opts);
    }
    let mut tick = tokio::time::interval(RESCAN);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        // Every event already there, then what they made as one piece of the answer.
        while m.pending.len() < FLUSH_AT {
            match m.events.next().now_or_never() {
                Some(Some((i, event))) => m.event(i, event),
                _ => break,
            }
        }
        if !m.flush().await {
            return;
        }
        if !opts.follow && m.streams.iter().all(|s| !s.live) {
            return;
        }
        tokio::select! {
            Some((i, event)) = m.events.next() => m.event(i, event),
            _ = tick.tick(), if opts.follow => {
                let Some(now) = scan.scan() else {
                    tracing::debug!(service = %m.service, "followed logs: the service is gone");
                    return;
                };
                m.nodes_down(&now.down);
                // Streamed from their first line: they started after the operator asked.
                let later = LogsOptions { tail: None, ..opts };
                for r in now.replicas {
                    m.rescan(r, later);
                }
            }
            _ = m.out.closed() => return,
        }
    }
}

/// Records are sent to the operator in pieces of about this size when they come faster than
/// they are sent (one piece per record would cost a write per line at every hop).
const FLUSH_AT: usize = 64 * 1024;

struct Merge {
    sessions: Arc<Sessions>,
    service: String,
    streams: Vec<Streamed>,
    /// Index of each task's latest stream.
    by_task: HashMap<String, usize>,
    events: SelectAll<BoxStream<'static, (usize, SessionEvent)>>,
    out: mpsc::Sender<Bytes>,
    /// Records not sent yet.
    pending: Vec<u8>,
}

impl Merge {
    /// Asks for `r`'s output.
    fn start(&mut self, r: Replica, opts: LogsOptions) {
        let i = self.streams.len();
        self.by_task.insert(r.task.clone(), i);
        self.streams.push(Streamed {
            replica: r.clone(),
            lines: Lines::default(),
            live: false,
            stop: None,
        });
        if r.node_down {
            return self.error(i, format!("node {} is down", r.node));
        }
        let (tx, rx) = mpsc::channel(64);
        let request = SessionRequest {
            id: new_id(),
            task_id: r.task.clone(),
            service: self.service.clone(),
            slot: r.slot,
            kind: SessionKind::Logs(opts),
        };
        if let Err(why) = self.sessions.open(&r.node, request, tx) {
            return self.error(i, why);
        }
        let (stop, stopped) = oneshot::channel();
        let events = futures::stream::unfold(rx, |mut rx| async move {
            let e = rx.recv().await?;
            Some((e, rx))
        })
        // A session whose sender went without a word ended all the same.
        .chain(futures::stream::once(async { SessionEvent::Ended(None) }))
        .take_until(stopped)
        .map(move |e| (i, e));
        self.events.push(events.boxed());
        let s = &mut self.streams[i];
        s.live = true;
        s.stop = Some(stop);
    }

    /// The streamed replicas of nodes marked down are told as such and left (a partitioned
    /// node's output would hang, not end).
    fn nodes_down(&mut self, down: &BTreeSet<String>) {
        for i in 0..self.streams.len() {
            let s = &mut self.streams[i];
            if !s.live || !down.contains(&s.replica.node) {
                continue;
            }
            s.replica.node_down = true;
            s.live = false;
            if let Some(stop) = s.stop.take() {
                let _ = stop.send(());
            }
            let rest = s.lines.finish();
            let node = s.replica.node.clone();
            self.write_lines(i, rest);
            self.error(i, format!("node {node} is down"));
        }
    }

    /// A replica seen on a later look: a new one is streamed, and a streamed one that has a new
    /// container since its output ended (restarted in place) is streamed again.
    fn rescan(&mut self, r: Replica, opts: LogsOptions) {
        let Some(&i) = self.by_task.get(&r.task) else {
            return self.start(r, opts);
        };
        let s = &mut self.streams[i];
        let restarted = r.container.is_some() && r.container != s.replica.container;
        if !s.live && !r.node_down && restarted {
            return self.start(r, opts);
        }
        if s.live && r.container.is_some() && s.replica.container.is_none() {
            // Reported since: the same container.
            s.replica.container = r.container;
        }
    }

    fn event(&mut self, i: usize, event: SessionEvent) {
        if !self.streams[i].live {
            return;
        }
        match event {
            SessionEvent::Attached => {}
            SessionEvent::Frame(f) => {
                if let Some(e) = f.error {
                    let s = &mut self.streams[i];
                    s.live = false;
                    let rest = s.lines.finish();
                    self.write_lines(i, rest);
                    return self.error(i, e.message);
                }
                let Some(stream) = f.stream else {
                    return;
                };
                let lines = self.streams[i]
                    .lines
                    .push(stream, f.time.as_deref(), &f.data);
                self.write_lines(i, lines);
            }
            SessionEvent::Ended(why) => {
                let s = &mut self.streams[i];
                s.live = false;
                let rest = s.lines.finish();
                self.write_lines(i, rest);
                if let Some(why) = why {
                    self.error(i, why);
                }
            }
        }
    }

    fn record(&self, i: usize) -> LogRecord {
        let r = &self.streams[i].replica;
        LogRecord {
            slot: r.slot,
            node: r.node.clone(),
            task: r.task.clone(),
            stream: None,
            time: None,
            line: None,
            error: None,
        }
    }

    fn write_lines(&mut self, i: usize, lines: Vec<Line>) {
        for l in lines {
            let rec = LogRecord {
                stream: Some(l.stream.name().into()),
                time: l.time,
                line: Some(l.text),
                ..self.record(i)
            };
            self.write(&rec);
        }
    }

    fn error(&mut self, i: usize, why: String) {
        let rec = LogRecord {
            error: Some(why),
            ..self.record(i)
        };
        self.write(&rec);
    }

    fn write(&mut self, rec: &LogRecord) {
        if serde_json::to_writer(&mut self.pending, rec).is_ok() {
            self.pending.push(b'\n');
        }
    }

    /// Sends the records made so far; answers false once the operator has gone.
    async fn flush(&mut self) -> bool {
        if self.pending.is_empty() {
            return !self.out.is_closed();
        }
        let piece = Bytes::from(std::mem::take(&mut self.pending));
        self.out.send(piece).await.is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hoist_proto::session::{OutputStream, SessionFrame};
    use std::sync::Mutex;

    fn replica(slot: u64, node: &str, task: &str) -> Replica {
        Replica {
            slot,
            node: node.into(),
            task: task.into(),
            container: Some(format!("c-{task}")),
            node_down: false,
            draining: false,
            version: 1,
        }
    }

    fn frame(stream: OutputStream, text: &str) -> SessionFrame {
        SessionFrame {
            stream: Some(stream),
            data: text.as_bytes().to_vec(),
            time: Some("t".into()),
            ..SessionFrame::default()
        }
    }

    /// The operator's side of a merge: records one by one, however they were sent.
    struct Records {
        rx: mpsc::Receiver<Bytes>,
        queue: std::collections::VecDeque<LogRecord>,
    }

    impl Records {
        async fn next(&mut self) -> LogRecord {
            while self.queue.is_empty() {
                let b = tokio::time::timeout(Duration::from_secs(10), self.rx.recv())
                    .await
                    .expect("a record in time")
                    .expect("the merge runs");
                for line in b.split(|&c| c == b'\n').filter(|l| !l.is_empty()) {
                    self.queue
                        .push_back(serde_json::from_slice(line).expect("a record"));
                }
            }
            self.queue.pop_front().expect("a record")
        }

        async fn end(&mut self) -> bool {
            self.queue.is_empty() && self.rx.recv().await.is_none()
        }
    }

    fn records(rx: mpsc::Receiver<Bytes>) -> Records {
        Records {
            rx,
            queue: Default::default(),
        }
    }

    /// An agent of the test: takes `node`'s sessions and attaches to each.
    async fn answer(
        sessions: &Sessions,
        node: &str,
    ) -> Vec<(SessionRequest, super::super::Attached)> {
        let reqs = sessions.poll(node, Duration::from_secs(5)).await;
        reqs.into_iter()
            .map(|r| {
                let a = sessions.attach(&r.id, node).expect("attach");
                (r, a)
            })
            .collect()
    }

    #[tokio::test]
    async fn replicas_are_merged_by_whole_lines() {
        let sessions = Arc::new(Sessions::default());
        let (out, rx) = mpsc::channel(64);
        let mut rx = records(rx);
        let opts = LogsOptions {
            tail: Some(1),
            ..LogsOptions::default()
        };
        let first = vec![replica(0, "n1", "a"), replica(1, "n2", "b")];
        let task = tokio::spawn(merge(
            sessions.clone(),
            "web".into(),
            opts,
            first,
            || None::<Snapshot>,
            out,
        ));
        let mut n1 = answer(&sessions, "n1").await;
        let mut n2 = answer(&sessions, "n2").await;
        assert_eq!(n1.len(), 1);
        assert_eq!(n1[0].0.task_id, "a");
        assert_eq!(n1[0].0.kind, SessionKind::Logs(opts));
        let (_, a) = n1.remove(0);
        let (_, b) = n2.remove(0);
        a.to_operator
            .send(SessionEvent::Frame(frame(OutputStream::Stdout, "hel")))
            .await
            .unwrap();
        b.to_operator
            .send(SessionEvent::Frame(frame(OutputStream::Stderr, "from b\n")))
            .await
            .unwrap();
        let r = rx.next().await;
        assert_eq!(
            (
                r.slot,
                r.node.as_str(),
                r.stream.as_deref(),
                r.line.as_deref()
            ),
            (1, "n2", Some("stderr"), Some("from b")),
            "a's half line waits"
        );
        a.to_operator
            .send(SessionEvent::Frame(frame(OutputStream::Stdout, "lo\n")))
            .await
            .unwrap();
        let r = rx.next().await;
        assert_eq!((r.task.as_str(), r.line.as_deref()), ("a", Some("hello")));
        a.to_operator.send(SessionEvent::Ended(None)).await.unwrap();
        drop(a);
        let failed = SessionFrame {
            error: Some(hoist_proto::session::SessionError {
                code: "not_found".into(),
                message: "no container runs task b".into(),
            }),
            ..SessionFrame::default()
        };
        b.to_operator
            .send(SessionEvent::Frame(failed))
            .await
            .unwrap();
        let r = rx.next().await;
        assert_eq!(r.error.as_deref(), Some("no container runs task b"));
        drop(b);
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("ends when every replica's output has")
            .unwrap();
        assert!(rx.end().await);
    }

    #[tokio::test]
    async fn a_down_node_and_a_silent_one_are_named() {
        let sessions = Arc::new(Sessions::default());
        let (out, rx) = mpsc::channel(64);
        let mut rx = records(rx);
        let mut down = replica(1, "n2", "b");
        down.node_down = true;
        let first = vec![replica(0, "n1", "a"), down];
        tokio::spawn(merge(
            sessions.clone(),
            "web".into(),
            LogsOptions::default(),
            first,
            || None::<Snapshot>,
            out,
        ));
        let r = rx.next().await;
        assert_eq!(r.error.as_deref(), Some("node n2 is down"));
        assert_eq!(r.slot, 1);
        // n1 never polls: after the attach timeout its replica is named.
        let t = std::time::Instant::now();
        let r = rx.next().await;
        assert!(t.elapsed() >= Duration::from_secs(4), "{:?}", t.elapsed());
        let e = r.error.unwrap();
        assert!(e.starts_with("node n1 did not answer within 5s"), "{e}");
        assert!(rx.end().await, "then the answer ends");
        assert_eq!(sessions.open_count(), 0);
    }

    #[tokio::test]
    async fn following_picks_up_new_replicas_and_ends_with_the_operator() {
        let sessions = Arc::new(Sessions::default());
        let (out, rx) = mpsc::channel(64);
        let mut rx = records(rx);
        let now: Arc<Mutex<Vec<Replica>>> = Arc::new(Mutex::new(vec![replica(0, "n1", "a")]));
        let down: Arc<Mutex<BTreeSet<String>>> = Arc::default();
        let scan = {
            let (now, down) = (now.clone(), down.clone());
            move || {
                Some(Snapshot {
                    replicas: now.lock().unwrap().clone(),
                    down: down.lock().unwrap().clone(),
                })
            }
        };
        let opts = LogsOptions {
            follow: true,
            tail: Some(3),
            since_ms: None,
        };
        let first = now.lock().unwrap().clone();
        let task = tokio::spawn(merge(
            sessions.clone(),
            "web".into(),
            opts,
            first,
            scan,
            out,
        ));
        let (_, a) = answer(&sessions, "n1").await.remove(0);
        now.lock().unwrap().push(replica(1, "n2", "b"));
        let (req, b) = answer(&sessions, "n2").await.remove(0);
        assert_eq!(
            req.kind,
            SessionKind::Logs(LogsOptions { tail: None, ..opts }),
            "a replica that started later is streamed from its first line"
        );
        b.to_operator
            .send(SessionEvent::Frame(frame(OutputStream::Stdout, "late\n")))
            .await
            .unwrap();
        assert_eq!(rx.next().await.line.as_deref(), Some("late"));
        // n1 goes down (its replica is replaced): named once, the others stream on.
        now.lock().unwrap().remove(0);
        down.lock().unwrap().insert("n1".into());
        let r = rx.next().await;
        assert_eq!(
            (r.node.as_str(), r.error.as_deref()),
            ("n1", Some("node n1 is down"))
        );
        b.to_operator
            .send(SessionEvent::Frame(frame(OutputStream::Stdout, "more\n")))
            .await
            .unwrap();
        assert_eq!(rx.next().await.line.as_deref(), Some("more"));
        // The operator goes: the merge ends, and with it every session's operator side.
        drop(rx);
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("the merge ends with its operator")
            .unwrap();
        assert!(b.to_operator.is_closed());
        assert!(a.to_operator.is_closed());
    }
}
