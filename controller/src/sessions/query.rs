//! The query of `GET /v1/services/{name}/logs`: `follow`, `tail` (per replica) and `since` (a
//! duration back from now such as `10m`, an RFC 3339 time, or Unix seconds as Docker's API takes
//! them). Pure: the error names the parameter and what it accepts.

use hoist_proto::quantity::parse_duration_ms;
use hoist_proto::session::LogsOptions;

/// Parses the raw query into the options each replica's agent gets; `now_ms` is the leader's
/// clock (milliseconds since the Unix epoch), against which a duration counts back.
pub fn logs_options(query: Option<&str>, now_ms: u64) -> Result<LogsOptions, String> {
    let mut out = LogsOptions::default();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = decode(value);
        match key {
            "follow" => out.follow = flag("follow", &value)?,
            "tail" => out.tail = tail(&value)?,
            "since" => out.since_ms = Some(since_ms(&value, now_ms)?),
            // Answered by the forwarding layer, meaningless here.
            "stale" => {}
            other => {
                return Err(format!(
                    "unknown query parameter {other:?} (follow, tail, since)"
                ))
            }
        }
    }
    Ok(out)
}

fn flag(name: &str, value: &str) -> Result<bool, String> {
    match value {
        "" | "1" | "true" => Ok(true),
        "0" | "false" => Ok(false),
        v => Err(format!("{name}: expected true or false, not {v:?}")),
    }
}

fn tail(value: &str) -> Result<Option<u64>, String> {
    if value == "all" {
        return Ok(None);
    }
    value
        .parse()
        .map(Some)
        .map_err(|_| format!("tail: expected a number of lines or \"all\", not {value:?}"))
}

/// `since` as milliseconds since the Unix epoch.
pub fn since_ms(value: &str, now_ms: u64) -> Result<u64, String> {
    let value = value.trim();
    if let Some(ms) = parse_duration_ms(value) {
        return Ok(now_ms.saturating_sub(ms));
    }
    if let Ok(t) = humantime::parse_rfc3339_weak(value) {
        return Ok(t
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64));
    }
    if let Ok(secs) = value.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Ok((secs * 1000.0) as u64);
        }
    }
    Err(format!(
        "since: expected a duration such as 10m, an RFC 3339 time such as 2026-01-02T15:04:05Z \
         or Unix seconds, not {value:?}"
    ))
}

/// Percent-decoding of a query value (`+` is a space); an invalid escape stays as it is.
fn decode(value: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16);
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = match bytes.get(i..i + 3) {
            Some([b'%', hi, lo]) => hex(*hi).zip(hex(*lo)).map(|(h, l)| (h * 16 + l) as u8),
            _ => None,
        };
        match (escaped, bytes[i]) {
            (Some(b), _) => {
                out.push(b);
                i += 3;
                continue;
            }
            (None, b'+') => out.push(b' '),
            (None, b) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_767_323_045_000; // 2026-01-02T03:04:05Z

    #[test]
    fn options() {
        assert_eq!(logs_options(None, NOW).unwrap(), LogsOptions::default());
        let o = logs_options(Some("follow=true&tail=5&since=10m"), NOW).unwrap();
        assert_eq!(
            o,
            LogsOptions {
                follow: true,
                tail: Some(5),
                since_ms: Some(NOW - 600_000),
            }
        );
        let o = logs_options(Some("follow&tail=all&stale=true"), NOW).unwrap();
        assert!(o.follow);
        assert_eq!(o.tail, None);
        assert!(!logs_options(Some("follow=0"), NOW).unwrap().follow);
    }

    #[test]
    fn since_forms() {
        assert_eq!(since_ms("90s", NOW).unwrap(), NOW - 90_000);
        assert_eq!(since_ms("1h30m", NOW).unwrap(), NOW - 5_400_000);
        assert_eq!(since_ms("2026-01-02T03:04:05Z", NOW).unwrap(), NOW);
        assert_eq!(
            logs_options(Some("since=2026-01-02T03%3A04%3A05.5Z"), NOW)
                .unwrap()
                .since_ms,
            Some(NOW + 500)
        );
        assert_eq!(since_ms("1767323045", NOW).unwrap(), NOW);
        assert_eq!(since_ms("1000000h", 5).unwrap(), 0, "before the epoch: all");
    }

    #[test]
    fn errors_name_the_parameter() {
        let e = logs_options(Some("tail=x"), NOW).unwrap_err();
        assert_eq!(e, "tail: expected a number of lines or \"all\", not \"x\"");
        let e = logs_options(Some("since=yesterday"), NOW).unwrap_err();
        assert!(
            e.starts_with("since: expected a duration such as 10m"),
            "{e}"
        );
        let e = logs_options(Some("follow=maybe"), NOW).unwrap_err();
        assert_eq!(e, "follow: expected true or false, not \"maybe\"");
        let e = logs_options(Some("lines=3"), NOW).unwrap_err();
        assert_eq!(e, "unknown query parameter \"lines\" (follow, tail, since)");
        assert!(logs_options(Some("since=-5"), NOW).is_err());
        assert_eq!(decode("a%2Fb+c%zz%e2%82%ac%"), "a/b c%zz\u{20ac}%");
    }
}
