//! Reading a server-sent event stream (the WHATWG `text/event-stream` rules, the parts Hoist's
//! controllers send: `id`, `data`, comments). Pure: bytes in, messages out, so it is tested
//! without a server.

/// One dispatched message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The `id` field, when the message had one (an id-only message only moves the position).
    pub id: Option<String>,
    /// The `data` lines joined with `\n`; `None` for an id-only message.
    pub data: Option<String>,
}

/// Splits a byte stream into messages; chunks may end anywhere, even inside a UTF-8 character.
#[derive(Debug, Default)]
pub struct Parser {
    pending: Vec<u8>,
    id: Option<String>,
    data: Option<String>,
}

impl Parser {
    /// Adds a chunk; answers the messages it completed.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<Message> {
        self.pending.extend_from_slice(chunk);
        let mut out = Vec::new();
        while let Some(end) = self.pending.iter().position(|b| *b == b'\n') {
            let mut line: Vec<u8> = self.pending.drain(..=end).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            let line = String::from_utf8_lossy(&line);
            if line.is_empty() {
                if self.id.is_some() || self.data.is_some() {
                    out.push(Message {
                        id: self.id.take(),
                        data: self.data.take(),
                    });
                }
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = match line.split_once(':') {
                Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
                None => (line.as_ref(), ""),
            };
            match field {
                "id" => self.id = Some(value.to_string()),
                "data" => match &mut self.data {
                    Some(d) => {
                        d.push('\n');
                        d.push_str(value);
                    }
                    None => self.data = Some(value.to_string()),
                },
                _ => {}
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(id: Option<&str>, data: Option<&str>) -> Message {
        Message {
            id: id.map(str::to_string),
            data: data.map(str::to_string),
        }
    }

    #[test]
    fn messages_ids_comments_and_split_chunks() {
        let mut p = Parser::default();
        assert!(p.feed(b": keep-alive\n\nid: 12.0\nda").is_empty());
        assert_eq!(
            p.feed(b"ta: {\"a\":1}\n\nid: 13\n\n"),
            [msg(Some("12.0"), Some("{\"a\":1}")), msg(Some("13"), None)]
        );
        // CRLF, several data lines, a field without a value, a character split in two.
        let bytes = "data: é\r\ndata\r\n\r\n".as_bytes();
        let (a, b) = bytes.split_at(7);
        assert!(p.feed(a).is_empty());
        assert_eq!(p.feed(b), [msg(None, Some("é\n"))]);
        // Unknown fields are ignored; a blank line alone dispatches nothing.
        assert!(p.feed(b"event: x\nretry: 10\n\n\n").is_empty());
    }
}
