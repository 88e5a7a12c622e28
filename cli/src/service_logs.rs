//! `hoist service logs NAME`: every replica's output, wherever it runs, merged by the
//! controllers line by line (`GET /v1/services/NAME/logs`), each line prefixed with the replica
//! it came from, `NAME.SLOT@NODE `. A replica's stdout goes to stdout, its stderr to stderr;
//! why a replica's output is missing (its node is down, did not answer) goes to stderr.

use crate::controller_client::{report, ControllerClient};
use crate::session_stream;
use hoist_proto::session::LogRecord;
use reqwest::Method;
use std::io::Write;

const EXAMPLES: &str = "Examples:
  hoist service logs web                 every replica's log, each line prefixed web.SLOT@NODE
  hoist service logs --tail 20 -f web    the last 20 lines of each replica, then new ones until Ctrl-C
  hoist service logs --since 10m web     what the replicas wrote in the last ten minutes
  hoist service logs --since 2026-01-02T15:04:05Z -t web";

/// `hoist service logs`
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct LogsArgs {
    /// Keep printing new lines, also of replicas that start later, until Ctrl-C.
    #[arg(short, long)]
    pub follow: bool,
    /// Only the last N lines of each replica.
    #[arg(long, short = 'n', value_name = "N")]
    pub tail: Option<u64>,
    /// Only lines written since: a duration back from now (10m, 1h30m, 45s) or an RFC 3339
    /// time (2026-01-02T15:04:05Z).
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// Show each line's time after the replica.
    #[arg(short, long)]
    pub timestamps: bool,
    /// The service.
    pub name: String,
}

/// The query of the logs route.
pub fn query(a: &LogsArgs) -> String {
    let mut q = format!("follow={}", a.follow);
    if let Some(n) = a.tail {
        q.push_str(&format!("&tail={n}"));
    }
    if let Some(s) = &a.since {
        q.push_str("&since=");
        q.push_str(&crate::client::enc(s));
    }
    q
}

/// How a record is printed: to stderr or not, and the text (with its newline).
pub fn render(service: &str, r: &LogRecord, timestamps: bool) -> (bool, String) {
    let prefix = format!("{service}.{}@{} ", r.slot, r.node);
    if let Some(e) = &r.error {
        return (true, format!("{prefix}error: {e}\n"));
    }
    let mut out = prefix;
    if timestamps {
        if let Some(t) = &r.time {
            out.push_str(t);
            out.push(' ');
        }
    }
    out.push_str(r.line.as_deref().unwrap_or(""));
    out.push('\n');
    (r.stream.as_deref() == Some("stderr"), out)
}

/// Runs the command; answers the exit code.
pub async fn run(client: &ControllerClient, args: LogsArgs, json: bool) -> i32 {
    let path = format!(
        "/v1/services/{}/logs?{}",
        args.name.replace('/', "%2F"),
        query(&args)
    );
    let resp = match session_stream::open(client, Method::GET, &path, None).await {
        Ok(r) => r,
        Err(e) => return report(&e),
    };
    let print = |records: Vec<LogRecord>| {
        // Each line whole, and one write per stream for what came together: lines of
        // different replicas never mix.
        let (mut out, mut err) = (Vec::new(), Vec::new());
        for r in records {
            if json {
                let _ = serde_json::to_writer(&mut out, &r);
                out.push(b'\n');
                continue;
            }
            match render(&args.name, &r, args.timestamps) {
                (true, text) => err.extend_from_slice(text.as_bytes()),
                (false, text) => out.extend_from_slice(text.as_bytes()),
            }
        }
        let ok_out = out.is_empty() || std::io::stdout().lock().write_all(&out).is_ok();
        let ok_err = err.is_empty() || std::io::stderr().lock().write_all(&err).is_ok();
        ok_out && ok_err
    };
    tokio::select! {
        r = session_stream::each(resp, print) => match r {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("error: {e}");
                1
            }
        },
        // Ctrl-C ends a followed log: the normal way out. The connection closes with the
        // process, and with it every replica's session.
        _ = tokio::signal::ctrl_c() => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> LogsArgs {
        use clap::Parser;
        #[derive(Debug, clap::Parser)]
        struct Cli {
            #[command(flatten)]
            logs: LogsArgs,
        }
        let mut argv = vec!["hoist"];
        argv.extend_from_slice(extra);
        Cli::try_parse_from(argv).expect("parses").logs
    }

    #[test]
    fn arguments_become_the_query() {
        let a = args(&["web"]);
        assert_eq!((a.name.as_str(), query(&a)), ("web", "follow=false".into()));
        let a = args(&["-f", "--tail", "1", "--since", "10m", "web"]);
        assert_eq!(query(&a), "follow=true&tail=1&since=10m");
        let a = args(&["-n", "5", "--since", "2026-01-02T15:04:05+01:00", "web"]);
        assert_eq!(
            query(&a),
            "follow=false&tail=5&since=2026-01-02T15%3A04%3A05%2B01%3A00"
        );
        assert!(
            std::panic::catch_unwind(|| args(&["--tail", "x", "web"])).is_err(),
            "a tail is a number"
        );
    }

    #[test]
    fn records_are_prefixed_with_their_replica() {
        let line = LogRecord {
            slot: 2,
            node: "n1".into(),
            task: "t".into(),
            stream: Some("stdout".into()),
            time: Some("2026-01-02T03:04:05.5Z".into()),
            line: Some("hello".into()),
            error: None,
        };
        assert_eq!(
            render("web", &line, false),
            (false, "web.2@n1 hello\n".into())
        );
        assert_eq!(
            render("web", &line, true),
            (false, "web.2@n1 2026-01-02T03:04:05.5Z hello\n".into())
        );
        let err = LogRecord {
            stream: Some("stderr".into()),
            ..line.clone()
        };
        assert!(render("web", &err, false).0, "stderr stays stderr");
        let down = LogRecord {
            error: Some("node n1 is down".into()),
            line: None,
            ..line
        };
        assert_eq!(
            render("web", &down, false),
            (true, "web.2@n1 error: node n1 is down\n".into())
        );
    }
}
