//! `hoist events`: follows the cluster's events (`GET /v1/events`) until interrupted, one line
//! per event, and goes on with another controller member when the one it reads from fails,
//! resuming after the last event it printed (every member numbers events alike).

use crate::controller_client::ControllerClient;
use crate::output::Format;
use crate::sse;
use hoist_proto::cluster::ErrorBody;
use hoist_proto::events::{Event, EventId};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub const EXAMPLES: &str = "\
Each line is one event: the leader's time, the type, what it is about (service, node or stack)
and what happened. Every controller member tells the same events with the same ids; when the
member being read fails, hoist goes on with the next one after the last event it printed.

Types (a filter names a group, such as `service`, or an exact type, such as `task.state`):
  service.    created updated scaled removed
  rollout.    started progress completed paused rolling_back rolled_back failed
  task.       state health restarted removed
  node.       registered up down drained paused active removed
  stack.      deployed completed rolled_back superseded removed
  autoscale.  decision
  cluster.    format restored
  events.     lost: the member no longer holds events you asked for (it keeps the last 10000)

Examples:
  hoist events                                  follow from now on
  hoist events --since 30m                      what happened in the last 30 minutes, then follow
  hoist events --filter service=web             one service (its replicas and rollouts too)
  hoist events --filter type=node --filter type=rollout
  hoist events --filter type=task.state --filter node=n2 -o json | jq .message
  hoist events --after 1234.0                   resume after an event id (from -o json)";

/// `hoist events` arguments.
#[derive(Debug, clap::Args)]
pub struct EventsArgs {
    /// Start with the events since this long ago (`30s`, `10m`, `2h`) or this time
    /// (`2025-05-01T10:00:00Z`): as far back as the member keeps them.
    #[arg(long, value_name = "DURATION|TIME", conflicts_with = "after")]
    since: Option<String>,
    /// Start after this event id (`INDEX.SEQ`, as `-o json` prints it).
    #[arg(long, value_name = "ID")]
    after: Option<String>,
    /// Only events that match: `type=GROUP|TYPE`, `service=NAME`, `node=ID`. Repeat it: values
    /// of one key are alternatives, different keys must all match.
    #[arg(long, short = 'f', value_name = "KEY=VALUE")]
    filter: Vec<String>,
}

/// Where to start, as query parameters.
fn start_query(args: &EventsArgs, now: SystemTime) -> anyhow::Result<Vec<(String, String)>> {
    if let Some(id) = &args.after {
        let id: EventId = id.parse().map_err(|e| anyhow::anyhow!("--after: {e}"))?;
        return Ok(vec![("index".into(), id.to_string())]);
    }
    let Some(since) = &args.since else {
        return Ok(Vec::new());
    };
    let at = match humantime::parse_duration(since) {
        Ok(d) => now.checked_sub(d).unwrap_or(UNIX_EPOCH),
        Err(_) => humantime::parse_rfc3339_weak(since).map_err(|_| {
            anyhow::anyhow!(
                "--since: {since:?} is neither a duration (30s, 10m, 2h) nor a time \
                 (2025-05-01T10:00:00Z)"
            )
        })?,
    };
    let ms = at
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    Ok(vec![("since_ms".into(), ms.to_string())])
}

/// `--filter` values as query parameters: the values of one key joined with commas.
fn filter_query(filters: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    let mut out: Vec<(String, String)> = Vec::new();
    for f in filters {
        let Some((key, value)) = f.split_once('=') else {
            anyhow::bail!("--filter {f:?}: write KEY=VALUE (type=, service= or node=)");
        };
        let key = key.trim();
        if !["type", "service", "node"].contains(&key) {
            anyhow::bail!("--filter {f:?}: the key is type, service or node");
        }
        match out.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => {
                v.push(',');
                v.push_str(value.trim());
            }
            None => out.push((key.to_string(), value.trim().to_string())),
        }
    }
    Ok(out)
}

/// An event as one line for people.
pub fn line(e: &Event) -> String {
    let time = humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(e.time_ms));
    let about = e
        .service
        .as_deref()
        .or(e.node.as_deref())
        .or(e.stack.as_deref())
        .unwrap_or("-");
    format!("{time}  {:<18} {about:<16} {}", e.kind, e.message)
}

/// Why one member's stream ended.
enum Ended {
    /// It could not be reached, failed or closed: go on with another.
    Member(String),
    /// It refused the request (a bad filter): no member would take it.
    Refused(String),
}

/// Runs `hoist events`; answers the exit code (it returns only on a refusal).
pub async fn run(args: EventsArgs, controllers: &[String], output: Format) -> anyhow::Result<i32> {
    let client = ControllerClient::new(controllers)?;
    let mut query = start_query(&args, SystemTime::now())?;
    query.extend(filter_query(&args.filter)?);
    let http = crate::controller_client::http_builder()
        .connect_timeout(Duration::from_millis(700))
        // The controllers send a keep-alive every 15 s: silence this long is a dead member.
        .read_timeout(Duration::from_secs(40))
        .build()?;
    let mut last: Option<String> = None;
    let mut failures = 0u32;
    for base in client.bases().iter().cycle() {
        let printed_before = last.clone();
        match follow(&http, base, &query, &mut last, output).await {
            Ended::Refused(m) => {
                eprintln!("error: {m}");
                return Ok(1);
            }
            Ended::Member(why) => {
                let progressed = last != printed_before;
                failures = if progressed { 1 } else { failures + 1 };
                let resume = last
                    .as_deref()
                    .map_or(String::new(), |id| format!(", resuming after {id}"));
                eprintln!("hoist events: {base}: {why}; trying the next member{resume}");
                // A pass over every member without progress waits a little longer each time.
                let passes = failures / client.bases().len().max(1) as u32;
                tokio::time::sleep(Duration::from_millis(200 * u64::from(passes.min(10)))).await;
            }
        }
    }
    Ok(1)
}

/// Reads one member's stream, printing events and keeping the last id, until it ends.
async fn follow(
    http: &reqwest::Client,
    base: &str,
    query: &[(String, String)],
    last: &mut Option<String>,
    output: Format,
) -> Ended {
    let url = match reqwest::Url::parse_with_params(&format!("{base}/v1/events"), query) {
        Ok(u) => u,
        Err(e) => return Ended::Refused(format!("{base}: {e}")),
    };
    let mut req = http.get(url).header("accept", "text/event-stream");
    if let Some(id) = last.as_deref() {
        req = req.header("last-event-id", id);
    }
    let mut resp = match req.send().await {
        Ok(r) => r,
        Err(e) => return Ended::Member(e.to_string()),
    };
    let status = resp.status();
    if !status.is_success() {
        let body = resp.bytes().await.unwrap_or_default();
        let message = serde_json::from_slice::<ErrorBody>(&body)
            .map(|b| b.message)
            .unwrap_or_else(|_| format!("HTTP {status}: {}", String::from_utf8_lossy(&body)));
        return if status.is_client_error() {
            Ended::Refused(message)
        } else {
            Ended::Member(message)
        };
    }
    let mut parser = sse::Parser::default();
    loop {
        let chunk = match resp.chunk().await {
            Ok(Some(c)) => c,
            Ok(None) => return Ended::Member("the stream ended".into()),
            Err(e) => return Ended::Member(e.to_string()),
        };
        for m in parser.feed(&chunk) {
            if let Some(data) = &m.data {
                match output {
                    Format::Json => println!("{data}"),
                    Format::Table => match serde_json::from_str::<Event>(data) {
                        Ok(e) => println!("{}", line(&e)),
                        Err(_) => println!("{data}"),
                    },
                }
            }
            if let Some(id) = m.id {
                *last = Some(id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(since: Option<&str>, after: Option<&str>, filter: &[&str]) -> EventsArgs {
        EventsArgs {
            since: since.map(str::to_string),
            after: after.map(str::to_string),
            filter: filter.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn since_reads_durations_and_times() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let q = start_query(&args(Some("10m"), None, &[]), now).unwrap();
        assert_eq!(q, [("since_ms".to_string(), "999400000".to_string())]);
        let q = start_query(&args(Some("1970-01-02T00:00:00Z"), None, &[]), now).unwrap();
        assert_eq!(q, [("since_ms".to_string(), "86400000".to_string())]);
        assert!(start_query(&args(Some("yesterday"), None, &[]), now).is_err());
        let q = start_query(&args(None, Some("12.3"), &[]), now).unwrap();
        assert_eq!(q, [("index".to_string(), "12.3".to_string())]);
        assert!(start_query(&args(None, Some("12.x"), &[]), now).is_err());
        assert!(start_query(&args(None, None, &[]), now).unwrap().is_empty());
    }

    #[test]
    fn filters_of_one_key_are_alternatives() {
        let q = filter_query(&[
            "type=service".into(),
            "service=web".into(),
            "type=task.state".into(),
        ])
        .unwrap();
        assert_eq!(
            q,
            [
                ("type".to_string(), "service,task.state".to_string()),
                ("service".to_string(), "web".to_string())
            ]
        );
        assert!(filter_query(&["web".into()]).is_err());
        assert!(filter_query(&["colour=red".into()]).is_err());
    }

    #[test]
    fn the_help_lists_every_type() {
        for t in hoist_proto::events::TYPES {
            let (group, name) = t.split_once('.').unwrap();
            let listed = EXAMPLES.lines().any(|l| {
                l.trim_start()
                    .strip_prefix(&format!("{group}."))
                    .is_some_and(|rest| rest.split([' ', ':']).any(|w| w == name))
            });
            assert!(listed, "{t} is not in hoist events --help");
        }
    }

    #[test]
    fn a_line_says_when_what_about_and_what_happened() {
        let mut e = Event::new(
            "service.scaled",
            86_400_123,
            "web scaled from 3 to 5 replicas",
        );
        e.service = Some("web".into());
        let l = line(&e);
        assert!(
            l.starts_with("1970-01-02T00:00:00.123Z  service.scaled"),
            "{l}"
        );
        assert!(l.contains(" web "), "{l}");
        assert!(l.ends_with("web scaled from 3 to 5 replicas"), "{l}");
    }
}
