//! HTTP/1.1 by hand over a unix or TCP socket, for the hostile-client tests: requests no
//! well-behaved client library would send (no or a foreign `Content-Type`, duplicate JSON keys),
//! and clients that hang up before the answer.

use anyhow::{bail, Context, Result};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// One answer: status and body.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

impl Answer {
    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// The bytes of a request, with `Connection: close` unless `extra_headers` name a `Connection`;
/// `content_type` `None` sends no such header.
pub fn request_bytes(
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: &[u8],
    extra_headers: &[(&str, &str)],
) -> Vec<u8> {
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: hoist\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !extra_headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("connection"))
    {
        head.push_str("Connection: close\r\n");
    }
    if let Some(ct) = content_type {
        head.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    for (k, v) in extra_headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// Sends a request over the unix socket `socket` and reads the whole answer.
pub fn unix(
    socket: &Path,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Answer> {
    let s =
        UnixStream::connect(socket).with_context(|| format!("connect to {}", socket.display()))?;
    s.set_read_timeout(Some(Duration::from_secs(600)))?;
    exchange(s, &request_bytes(method, path, content_type, body, &[]))
}

/// Sends a request over TCP to `addr` and reads the whole answer.
pub fn tcp(
    addr: &str,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: &[u8],
    extra_headers: &[(&str, &str)],
) -> Result<Answer> {
    let s = std::net::TcpStream::connect(addr).with_context(|| format!("connect to {addr}"))?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    let request = request_bytes(method, path, content_type, body, extra_headers);
    exchange(s, &request)
}

/// Writes `request` and reads the answer until the server closes the connection.
fn exchange(mut s: impl Read + Write, request: &[u8]) -> Result<Answer> {
    s.write_all(request)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    parse(&raw)
}

/// Sends a whole request over the unix socket, waits `after`, and closes the connection without
/// reading the answer: a client that gave up. The request asks for keep-alive, as clients do
/// (hyper stops watching a `Connection: close` request's socket once it is read, so it would not
/// notice the hang-up).
pub fn unix_hang_up(
    socket: &Path,
    method: &str,
    path: &str,
    body: &[u8],
    after: Duration,
) -> Result<()> {
    let mut s =
        UnixStream::connect(socket).with_context(|| format!("connect to {}", socket.display()))?;
    s.write_all(&request_bytes(
        method,
        path,
        Some("application/json"),
        body,
        &[("Connection", "keep-alive")],
    ))?;
    if !after.is_zero() {
        std::thread::sleep(after);
    }
    s.shutdown(std::net::Shutdown::Both)?;
    Ok(())
}

/// Splits a `Connection: close` answer into status and body (chunked bodies decoded).
fn parse(raw: &[u8]) -> Result<Answer> {
    let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        bail!(
            "no complete answer: {:?}",
            String::from_utf8_lossy(&raw[..raw.len().min(200)])
        );
    };
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("no status in {head:?}"))?;
    let body = &raw[end + 4..];
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")
    });
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_vec()
    };
    Ok(Answer {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn dechunk(mut b: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = b.windows(2).position(|w| w == b"\r\n") else {
            bail!("a chunk without its size line");
        };
        let size = usize::from_str_radix(String::from_utf8_lossy(&b[..eol]).trim(), 16)
            .context("chunk size")?;
        b = &b[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        if b.len() < size + 2 {
            bail!("a chunk cut short");
        }
        out.extend_from_slice(&b[..size]);
        b = &b[size + 2..];
    }
}
