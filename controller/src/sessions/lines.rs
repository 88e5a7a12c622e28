//! Whole lines out of a replica's output: log records arrive one line each, except a line longer
//! than the agent's record limit (16 KiB), which arrives in pieces. Each stream (stdout, stderr)
//! of each replica is put back together here, so that the merged output never holds half a line
//! of one replica next to another's. A line grows to at most [`MAX_LINE`] bytes; beyond that it
//! is cut there, rather than held without bound.

use hoist_proto::session::OutputStream;

/// Longest line kept whole.
pub const MAX_LINE: usize = 256 * 1024;

/// One complete line of one stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub stream: OutputStream,
    /// The time of its first piece.
    pub time: Option<String>,
    /// Without its newline.
    pub text: String,
}

#[derive(Debug, Default)]
struct Partial {
    bytes: Vec<u8>,
    time: Option<String>,
}

/// Puts the pieces of one replica's two streams back into lines.
#[derive(Debug, Default)]
pub struct Lines {
    stdout: Partial,
    stderr: Partial,
}

impl Lines {
    /// Takes the next piece of `stream`; answers the lines it completes, in order.
    pub fn push(&mut self, stream: OutputStream, time: Option<&str>, data: &[u8]) -> Vec<Line> {
        let partial = match stream {
            OutputStream::Stdout => &mut self.stdout,
            OutputStream::Stderr => &mut self.stderr,
        };
        let mut out = Vec::new();
        let mut rest = data;
        while !rest.is_empty() {
            if partial.bytes.is_empty() {
                partial.time = time.map(str::to_string);
            }
            let room = MAX_LINE - partial.bytes.len();
            match rest.iter().take(room + 1).position(|&b| b == b'\n') {
                Some(i) => {
                    partial.bytes.extend_from_slice(&rest[..i]);
                    rest = &rest[i + 1..];
                    out.push(take(stream, partial));
                }
                None if rest.len() >= room => {
                    partial.bytes.extend_from_slice(&rest[..room]);
                    rest = &rest[room..];
                    out.push(take(stream, partial));
                }
                None => {
                    partial.bytes.extend_from_slice(rest);
                    rest = &[];
                }
            }
        }
        out
    }

    /// The output ended: what is left of each stream, as lines of their own.
    pub fn finish(&mut self) -> Vec<Line> {
        let mut out = Vec::new();
        for (stream, partial) in [
            (OutputStream::Stdout, &mut self.stdout),
            (OutputStream::Stderr, &mut self.stderr),
        ] {
            if !partial.bytes.is_empty() {
                out.push(take(stream, partial));
            }
        }
        out
    }
}

fn take(stream: OutputStream, partial: &mut Partial) -> Line {
    let bytes = std::mem::take(&mut partial.bytes);
    let text = String::from_utf8(bytes)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
    let text = text.strip_suffix('\r').map(str::to_string).unwrap_or(text);
    Line {
        stream,
        time: partial.time.take(),
        text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use OutputStream::{Stderr, Stdout};

    fn texts(lines: &[Line]) -> Vec<&str> {
        lines.iter().map(|l| l.text.as_str()).collect()
    }

    #[test]
    fn records_of_one_line_each_pass_through() {
        let mut l = Lines::default();
        let got = l.push(Stdout, Some("t1"), b"hello\n");
        assert_eq!(
            got,
            vec![Line {
                stream: Stdout,
                time: Some("t1".into()),
                text: "hello".into()
            }]
        );
        assert_eq!(
            texts(&l.push(Stdout, None, b"a\nb\n\nc\n")),
            ["a", "b", "", "c"]
        );
        assert!(l.finish().is_empty());
    }

    #[test]
    fn pieces_of_a_line_are_joined_and_streams_kept_apart() {
        let mut l = Lines::default();
        assert!(l.push(Stdout, Some("t1"), b"abc").is_empty());
        assert_eq!(texts(&l.push(Stderr, Some("t2"), b"err\n")), ["err"]);
        let got = l.push(Stdout, Some("t3"), b"def\nghi");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].text, "abcdef");
        assert_eq!(got[0].time.as_deref(), Some("t1"), "the first piece's time");
        let rest = l.finish();
        assert_eq!(texts(&rest), ["ghi"]);
        assert_eq!(rest[0].time.as_deref(), Some("t3"));
        assert!(l.finish().is_empty());
    }

    #[test]
    fn a_line_without_end_is_cut_at_the_limit() {
        let mut l = Lines::default();
        let long = vec![b'x'; MAX_LINE + 10];
        let got = l.push(Stdout, None, &long);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].text.len(), MAX_LINE);
        assert_eq!(texts(&l.push(Stdout, None, b"\n")), ["xxxxxxxxxx"]);
        // Exactly at the limit with its newline right after: one line, no empty one.
        let mut exact = vec![b'y'; MAX_LINE];
        exact.push(b'\n');
        let got = l.push(Stdout, None, &exact);
        assert_eq!(got.len(), 1, "no empty line after it");
        assert_eq!(got[0].text.len(), MAX_LINE);
    }

    #[test]
    fn invalid_utf8_and_crlf() {
        let mut l = Lines::default();
        let got = l.push(Stdout, None, b"caf\xc3\xa9 \xff\r\n");
        assert_eq!(got[0].text, "caf\u{e9} \u{fffd}");
    }
}
