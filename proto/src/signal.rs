//! Signal names as specs, images and the CLI write them (`SIGTERM`, `TERM`, `term`, `15`), to the
//! numbers of Linux on x86-64 and arm64. One table, so the controller checks a spec's
//! `stop_signal` with the rule the agent uses to send it.

const NAMES: [(&str, i32); 31] = [
    ("HUP", 1),
    ("INT", 2),
    ("QUIT", 3),
    ("ILL", 4),
    ("TRAP", 5),
    ("ABRT", 6),
    ("BUS", 7),
    ("FPE", 8),
    ("KILL", 9),
    ("USR1", 10),
    ("SEGV", 11),
    ("USR2", 12),
    ("PIPE", 13),
    ("ALRM", 14),
    ("TERM", 15),
    ("STKFLT", 16),
    ("CHLD", 17),
    ("CONT", 18),
    ("STOP", 19),
    ("TSTP", 20),
    ("TTIN", 21),
    ("TTOU", 22),
    ("URG", 23),
    ("XCPU", 24),
    ("XFSZ", 25),
    ("VTALRM", 26),
    ("PROF", 27),
    ("WINCH", 28),
    ("IO", 29),
    ("PWR", 30),
    ("SYS", 31),
];

/// Real-time signals `SIGRTMIN..=SIGRTMAX` as the C library numbers them (glibc reserves 32, 33).
const RTMIN: i32 = 34;
const RTMAX: i32 = 64;

/// The number of a signal given by name (with or without `SIG`, any case, `RTMIN+N`) or number.
pub fn parse_signal(text: &str) -> Result<i32, String> {
    let bad = || format!("{text:?} is not a signal (like \"SIGTERM\", \"QUIT\" or \"15\")");
    let t = text.trim();
    if let Ok(n) = t.parse::<i32>() {
        return if (1..=31).contains(&n) || (RTMIN..=RTMAX).contains(&n) {
            Ok(n)
        } else {
            Err(bad())
        };
    }
    let upper = t.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some((_, n)) = NAMES.iter().find(|(k, _)| *k == name) {
        return Ok(*n);
    }
    let rt = |base: i32, rest: &str, sign: i32| -> Option<i32> {
        let off: i32 = if rest.is_empty() {
            0
        } else {
            rest.parse().ok()?
        };
        Some(base + sign * off).filter(|n| (RTMIN..=RTMAX).contains(n))
    };
    let n = match name {
        "POLL" => Some(29),
        "IOT" => Some(6),
        _ if name.starts_with("RTMIN") => {
            let rest = &name[5..];
            rt(RTMIN, rest.strip_prefix('+').unwrap_or(rest), 1)
        }
        _ if name.starts_with("RTMAX") => {
            let rest = &name[5..];
            rt(RTMAX, rest.strip_prefix('-').unwrap_or(rest), -1)
        }
        _ => None,
    };
    n.ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::parse_signal;

    #[test]
    fn names_and_numbers() {
        assert_eq!(parse_signal("SIGTERM"), Ok(15));
        assert_eq!(parse_signal("term"), Ok(15));
        assert_eq!(parse_signal("Quit"), Ok(3));
        assert_eq!(parse_signal("9"), Ok(9));
        assert_eq!(parse_signal("SIGPOLL"), Ok(29));
        assert_eq!(parse_signal("RTMIN+2"), Ok(36));
        assert_eq!(parse_signal("SIGRTMAX"), Ok(64));
        assert!(parse_signal("SIGNOPE").is_err());
        assert!(parse_signal("0").is_err());
        assert!(parse_signal("32").is_err());
        assert!(parse_signal("RTMIN+40").is_err());
    }
}
