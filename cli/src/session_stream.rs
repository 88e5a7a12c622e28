//! Streamed answers of the controllers (`hoist service logs`, `hoist service exec`): opened with
//! the same fail-over as every call (the next address on a connection error or a 503, before
//! anything was received), without an overall timeout, and read as newline-delimited JSON
//! records as they come.

use crate::controller_client::{CallError, ControllerClient};
use reqwest::Method;
use serde::de::DeserializeOwned;
use std::time::Duration;

/// Opens `method path` with a JSON `body` at the first controller that takes it.
pub async fn open(
    client: &ControllerClient,
    method: Method,
    path: &str,
    body: Option<&serde_json::Value>,
) -> Result<reqwest::Response, CallError> {
    let http = crate::controller_client::http_builder()
        .connect_timeout(Duration::from_millis(700))
        .build()
        .map_err(|e| CallError::Unreachable(e.to_string()))?;
    let body = body.map(|b| {
        (
            "application/json",
            serde_json::to_vec(b).unwrap_or_default(),
        )
    });
    client.open(&http, method, path, body, &[]).await
}

/// Splits a byte stream into its lines (records); blank lines are none.
#[derive(Debug, Default)]
pub struct Lines {
    pending: Vec<u8>,
}

impl Lines {
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<Vec<u8>> {
        self.pending.extend_from_slice(chunk);
        let mut out = Vec::new();
        while let Some(end) = self.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            let line = &line[..line.len() - 1];
            if !line.iter().all(u8::is_ascii_whitespace) {
                out.push(line.to_vec());
            }
        }
        out
    }
}

/// Calls `f` with the records of `resp` as they come, those of one piece of the answer at a
/// time (so that printing them costs one write), until the answer ends (`Ok`), `f` says stop,
/// or the connection breaks or a record does not decode (`Err`, saying which).
pub async fn each<T: DeserializeOwned>(
    mut resp: reqwest::Response,
    mut f: impl FnMut(Vec<T>) -> bool,
) -> Result<(), String> {
    let mut lines = Lines::default();
    loop {
        let chunk = match resp.chunk().await {
            Ok(Some(c)) => c,
            Ok(None) => return Ok(()),
            Err(e) => return Err(format!("the answer stopped: {e}")),
        };
        let records = lines
            .feed(&chunk)
            .into_iter()
            .map(|line| {
                serde_json::from_slice(&line).map_err(|e| {
                    format!(
                        "a record does not decode ({e}): {}",
                        String::from_utf8_lossy(&line)
                    )
                })
            })
            .collect::<Result<Vec<T>, String>>()?;
        if !records.is_empty() && !f(records) {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_split_anywhere() {
        let mut l = Lines::default();
        assert!(l.feed(b"{\"a\":").is_empty());
        assert_eq!(
            l.feed(b"1}\n\n{\"b\":2}\n{"),
            vec![b"{\"a\":1}".to_vec(), b"{\"b\":2}".to_vec()]
        );
        assert_eq!(l.feed(b"}\n"), vec![b"{}".to_vec()]);
    }
}
