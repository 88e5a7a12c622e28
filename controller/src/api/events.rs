//! `GET /v1/events`: the cluster's events as server-sent events, from this member's ring
//! (`crate::events`), never forwarded to the leader (every member tells the same events with the
//! same ids, and the forwarder buffers whole bodies, which a stream has not).
//!
//! Each SSE message is `id: INDEX.SEQ` and `data: EVENT-JSON` (no `event:` line, so a browser's
//! `EventSource.onmessage` gets every type). A stream starts after `Last-Event-ID` (what
//! `EventSource` sends when it reconnects), else after `?index=` (an entry index or an event id),
//! else with the first event at or after `?since_ms=`, else with the next event. When the start
//! is older than what this member holds, the first message is an `events.lost` event whose id
//! is the last entry not held. Filters: `?type=` (exact types or groups such as `service`),
//! `?service=`, `?node=`, each a comma list. A stream started without an id begins with an
//! id-only message (its position), so that a reconnect misses nothing even before the first
//! event. A comment every 15 s keeps proxies from closing a quiet stream; a filtered stream that
//! skipped events sends an id-only message after 10 quiet seconds, so that a reconnect resumes
//! from there rather than replaying what it skipped.

use super::error::ApiError;
use super::Ctx;
use crate::events::{EventLog, Filter, Lost, Start, EVENTS_KEPT};
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use hoist_proto::events::{self as ev, Event, EventId};
use serde::Deserialize;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Events read from the ring at once.
const BATCH: usize = 256;
/// After this long without a message, a filtered stream says where it is.
const QUIET: Duration = Duration::from_secs(10);
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The query of `GET /v1/events` (all optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    index: Option<String>,
    since_ms: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    service: Option<String>,
    node: Option<String>,
}

/// Where the stream starts and what it passes, from the request; bad input is a 400 naming the
/// field.
fn parse(headers: &HeaderMap, uri: &Uri) -> Result<(Start, Filter), ApiError> {
    let q: EventsQuery = super::query::parse(uri.query())?;
    let bad =
        |field: &str, m: String| ApiError::field(axum::http::StatusCode::BAD_REQUEST, field, m);
    let last_id = headers
        .get("last-event-id")
        .map(|v| v.to_str().unwrap_or("\u{fffd}").trim())
        .filter(|v| !v.is_empty());
    if q.index.is_some() && q.since_ms.is_some() {
        return Err(bad(
            "since_ms",
            "give index or since_ms, not both".to_string(),
        ));
    }
    let start = if let Some(id) = last_id {
        Start::After(id.parse().map_err(|m| bad("Last-Event-ID", m))?)
    } else if let Some(index) = &q.index {
        Start::After(index.parse().map_err(|m| bad("index", m))?)
    } else if let Some(ms) = &q.since_ms {
        Start::Since(ms.trim().parse().map_err(|_| {
            bad(
                "since_ms",
                format!("{ms:?} is not a time in milliseconds since the Unix epoch"),
            )
        })?)
    } else {
        Start::Now
    };
    let filter = Filter::parse(q.kind.as_deref(), q.service.as_deref(), q.node.as_deref())
        .map_err(|(field, m)| bad(field, m))?;
    Ok((start, filter))
}

/// `GET /v1/events`.
pub async fn stream(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let (start, filter) = parse(&headers, &uri)?;
    let log = ctx.node.events().clone();
    let rx = log.subscribe();
    let (at, lost) = log.position(start);
    let queue = opening(start, at, lost);
    let follow = Follow {
        log,
        rx,
        at,
        said: at,
        filter,
        queue,
        quiet: QUIET,
    };
    Ok(Sse::new(follow.into_stream())
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE).text("keep-alive"))
        .into_response())
}

/// What a stream says first: what it lost, or (for a client that gave no id) where it is, so
/// that should this member fail before the next event, the client resumes on another from here.
fn opening(start: Start, at: EventId, lost: Option<Lost>) -> VecDeque<SseEvent> {
    let mut queue = VecDeque::new();
    match (lost, start) {
        (Some(lost), _) => queue.push_back(lost_message(lost)),
        (None, Start::Now | Start::Since(_)) => {
            queue.push_back(SseEvent::default().id(at.to_string()))
        }
        (None, Start::After(_)) => {}
    }
    queue
}

/// One stream's position and what it has yet to send.
struct Follow {
    log: Arc<EventLog>,
    rx: watch::Receiver<u64>,
    /// Read up to here.
    at: EventId,
    /// The client's last id: the last event sent (or an id-only message).
    said: EventId,
    filter: Filter,
    queue: VecDeque<SseEvent>,
    /// How long without a message before a filtered stream says where it is.
    quiet: Duration,
}

impl Follow {
    fn into_stream(self) -> impl Stream<Item = Result<SseEvent, Infallible>> {
        futures::stream::unfold(self, |mut f| async move {
            let next = f.next().await?;
            Some((Ok(next), f))
        })
    }

    /// The next message; `None` when the member stops.
    async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(m) = self.queue.pop_front() {
                return Some(m);
            }
            if self.log.is_closed() {
                return None;
            }
            self.rx.borrow_and_update();
            let read = self.log.read(self.at, BATCH);
            if let Some(lost) = read.lost {
                self.queue.push_back(lost_message(lost));
                self.said = EventId::after_entry(lost.through);
            }
            for e in read.events.iter().filter(|e| self.filter.matches(e)) {
                self.queue.push_back(message(e));
                self.said = e.id;
            }
            self.at = read.next.unwrap_or(self.at);
            if !self.queue.is_empty() || read.more {
                continue;
            }
            match tokio::time::timeout(self.quiet, self.rx.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return None,
                Err(_quiet) if self.said != self.at => {
                    self.said = self.at;
                    return Some(SseEvent::default().id(self.at.to_string()));
                }
                Err(_quiet) => {}
            }
        }
    }
}

fn message(e: &Event) -> SseEvent {
    let data = serde_json::to_string(e).unwrap_or_else(|_| "{}".into());
    SseEvent::default().id(e.id.to_string()).data(data)
}

/// The `events.lost` message: its id is the last entry not held, so a client that reconnects
/// with it goes on from what is held.
fn lost_message(lost: Lost) -> SseEvent {
    let through = EventId::after_entry(lost.through);
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let mut e = Event::new(
        ev::EVENTS_LOST,
        now_ms,
        format!(
            "events up to entry {} are not held by this member (it keeps the last {EVENTS_KEPT} \
             events, from what it applied since it started): going on after it",
            lost.through
        ),
    );
    e.id = through;
    e.index = lost.through;
    e.from = lost.after.map(|a| a.to_string());
    e.to = Some(through.to_string());
    message(&e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(query: &str, last_id: Option<&str>) -> Result<(Start, Filter), ApiError> {
        let uri: Uri = format!("/v1/events{query}").parse().unwrap();
        let mut headers = HeaderMap::new();
        if let Some(id) = last_id {
            headers.insert("last-event-id", id.parse().unwrap());
        }
        parse(&headers, &uri)
    }

    #[test]
    fn the_start_comes_from_the_header_then_index_then_since() {
        assert_eq!(req("", None).unwrap().0, Start::Now);
        assert_eq!(
            req("?index=40", None).unwrap().0,
            Start::After(EventId::after_entry(40))
        );
        assert_eq!(
            req("?index=40.2", None).unwrap().0,
            Start::After(EventId::new(40, 2))
        );
        assert_eq!(
            req("?index=40", Some("41.1")).unwrap().0,
            Start::After(EventId::new(41, 1))
        );
        assert_eq!(
            req("?since_ms=1700000000000", None).unwrap().0,
            Start::Since(1_700_000_000_000)
        );
    }

    #[test]
    fn bad_input_names_the_field() {
        let field = |r: Result<(Start, Filter), ApiError>| {
            let e = r.unwrap_err();
            assert_eq!(e.status, axum::http::StatusCode::BAD_REQUEST);
            e.body
                .field
                .clone()
                .unwrap_or_else(|| e.body.message.clone())
        };
        assert_eq!(field(req("?index=x", None)), "index");
        assert_eq!(field(req("", Some("1.x"))), "Last-Event-ID");
        assert_eq!(field(req("?since_ms=yesterday", None)), "since_ms");
        assert_eq!(field(req("?index=1&since_ms=2", None)), "since_ms");
        assert_eq!(field(req("?type=servce", None)), "type");
        assert!(field(req("?colour=red", None)).contains("colour"));
    }

    /// A message as it goes on the wire.
    async fn text(m: SseEvent) -> String {
        let stream = futures::stream::once(async { Ok::<_, Infallible>(m) });
        let body = Sse::new(stream).into_response().into_body();
        let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn a_stream_without_an_id_is_told_its_position_first() {
        let at = EventId::new(7, 1);
        let first = |start| opening(start, at, None).pop_front();
        assert_eq!(text(first(Start::Now).unwrap()).await, "id: 7.1\n\n");
        assert_eq!(text(first(Start::Since(5)).unwrap()).await, "id: 7.1\n\n");
        assert!(first(Start::After(at)).is_none());
        let lost = Lost {
            after: None,
            through: 4,
        };
        let said = text(opening(Start::Since(5), at, Some(lost))[0].clone()).await;
        assert!(said.contains("events.lost"), "{said}");
    }

    #[tokio::test]
    async fn a_stream_tells_gaps_filters_and_says_where_it_is_when_quiet() {
        use hoist_proto::events::Event;
        let log = Arc::new(EventLog::new(2, 0));
        let event = |index: u64, kind: &str| {
            let mut e = Event::new(kind, index, "");
            e.id = EventId::new(index, 0);
            e.index = index;
            e
        };
        log.push(vec![event(1, ev::SERVICE_CREATED)]);
        log.push(vec![event(2, ev::NODE_DOWN)]);
        log.push(vec![event(3, ev::SERVICE_SCALED)]);
        let (_, filter) = req("?type=service", None).unwrap();
        let mut f = Follow {
            rx: log.subscribe(),
            log: log.clone(),
            at: EventId::after_entry(0),
            said: EventId::after_entry(0),
            filter,
            queue: VecDeque::new(),
            quiet: Duration::from_millis(50),
        };
        // Entry 1 was evicted: the gap first, then what passes the filter.
        let lost = text(f.next().await.unwrap()).await;
        assert!(lost.starts_with("id: 1\ndata: {"), "{lost}");
        assert!(lost.contains("\"type\":\"events.lost\""), "{lost}");
        let scaled = text(f.next().await.unwrap()).await;
        assert!(scaled.starts_with("id: 3.0\n"), "{scaled}");
        assert!(scaled.contains("service.scaled"), "{scaled}");
        // Quiet and filtered: after a while, the position alone.
        log.push(vec![event(4, ev::NODE_UP)]);
        let id_only = text(f.next().await.unwrap()).await;
        assert_eq!(id_only, "id: 4.0\n\n");
        // Closing the log ends the stream.
        log.close();
        assert!(f.next().await.is_none());
    }
}
