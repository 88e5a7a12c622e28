//! Sessions: an operator's `hoist service logs` or `hoist service exec` of replicas that run on
//! other hosts, carried by the controllers over each agent's own outbound connection.
//!
//! Agents open no port for this: an agent keeps one long poll open at the leader, and the leader
//! answers it when an operator asks for the logs or an exec of a task on that node. The agent runs
//! the request against its container manager and streams the output back in the body of one
//! request, which the leader pipes to the operator's answer. Nothing of a session enters Raft.
//!
//! | route | body | answer |
//! | --- | --- | --- |
//! | `GET /v1/agent/sessions?node=ID&wait_ms=M` | — | [`SessionRequests`] (long poll, format 2) |
//! | `POST /v1/agent/sessions/{id}?node=ID` | [`SessionFrame`]s, each length-delimited | [`crate::node::StatusAck`] |
//!
//! - **poll**: answers as soon as sessions wait for the node (or after `wait_ms`, at most 30 s,
//!   with none). A session not answered within a few seconds is given up, and the operator is
//!   told which node did not answer. All of a node's sessions end when it registers again.
//! - **output**: only the node the session was asked of may answer it (403 otherwise; 404 once
//!   the session is over or unknown, 409 when already answered). The body is a stream of
//!   frames, each a protobuf [`SessionFrame`] preceded by its length as a varint (protobuf's
//!   "length-delimited" framing, [`encode_frame`], [`FrameDecoder`]). The leader answers when
//!   the operator has gone (its connection closed) or the session ended, and the agent then
//!   stops what it was streaming.
//!
//! The operator's side is JSON ([`LogRecord`], [`ExecRecord`], [`ExecBody`]), newline-delimited,
//! on `GET /v1/services/{name}/logs` and `POST /v1/services/{name}/exec` of any member.

use crate::agent::ExecRequest;
use crate::format::{Codec, DecodeError};
use serde::{Deserialize, Serialize};

/// The leader's answer to a node's session poll: what it must run now. Format 2.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRequests {
    pub term: u64,
    pub sessions: Vec<SessionRequest>,
}

/// One session asked of a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRequest {
    /// Random, 32 hex digits: the path of the output request (`/v1/agent/sessions/{id}`).
    pub id: String,
    /// The replica's task: the agent finds its container by the `hoist.task` label.
    pub task_id: String,
    pub service: String,
    pub slot: u64,
    pub kind: SessionKind,
}

/// What a session does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SessionKind {
    Logs(LogsOptions),
    Exec(ExecRequest),
}

/// Which of a replica's log lines to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LogsOptions {
    /// Keep sending new lines until the container exits or the session ends.
    pub follow: bool,
    /// Only the last N lines (of those `since_ms` lets through).
    pub tail: Option<u64>,
    /// Only lines written at or after this time (milliseconds since the Unix epoch).
    pub since_ms: Option<u64>,
}

/// Which output a frame's bytes came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OutputStream {
    Stdout,
    Stderr,
}

impl OutputStream {
    pub fn name(self) -> &'static str {
        match self {
            OutputStream::Stdout => "stdout",
            OutputStream::Stderr => "stderr",
        }
    }

    /// `stdout` or `stderr`, as the agent's streams name them.
    pub fn parse(name: &str) -> Option<OutputStream> {
        match name {
            "stdout" => Some(OutputStream::Stdout),
            "stderr" => Some(OutputStream::Stderr),
            _ => None,
        }
    }
}

/// One piece of a session's output, agent → leader. Format 2.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SessionFrame {
    /// Where `data` came from; `None` on a frame that only ends the session.
    pub stream: Option<OutputStream>,
    /// The bytes as written (a log record: one line, keeping its newline).
    pub data: Vec<u8>,
    /// RFC 3339 time the line was written (logs only).
    pub time: Option<String>,
    /// An exec's exit code: its last frame.
    pub exit_code: Option<i32>,
    /// Why the session could not run or stopped (no container for the task, not running...):
    /// its last frame.
    pub error: Option<SessionError>,
}

/// Why a session failed on the agent, with the agent's error code (`not_found`, `conflict`...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionError {
    pub code: String,
    pub message: String,
}

/// Largest frame accepted: a log record is at most 16 KiB, an exec chunk 32 KiB.
pub const MAX_FRAME: usize = 1 << 20;

/// A frame as it travels in the output body: its length (varint), then its protobuf bytes.
pub fn encode_frame(
    frame: &SessionFrame,
    format: u32,
) -> Result<Vec<u8>, crate::format::Unrepresentable> {
    let body = frame.encode(format)?;
    let mut out = Vec::with_capacity(body.len() + 5);
    prost::encoding::encode_varint(body.len() as u64, &mut out);
    out.extend_from_slice(&body);
    Ok(out)
}

/// Splits an output body, read in chunks of any size, into frames.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    format: u32,
}

impl FrameDecoder {
    pub fn new(format: u32) -> FrameDecoder {
        FrameDecoder {
            buf: Vec::new(),
            format,
        }
    }

    /// Takes the next chunk of the body; answers every frame it completes.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<SessionFrame>, DecodeError> {
        self.buf.extend_from_slice(chunk);
        let mut out = Vec::new();
        let mut at = 0;
        loop {
            let rest = &self.buf[at..];
            // A varint is at most 10 bytes; an unfinished one waits for more.
            let Some(end) = rest.iter().take(10).position(|b| b & 0x80 == 0) else {
                if rest.len() >= 10 {
                    return Err(self.error("frame length is not a varint"));
                }
                break;
            };
            let mut len_bytes = &rest[..=end];
            let len = prost::encoding::decode_varint(&mut len_bytes)
                .map_err(|e| self.error(&e.to_string()))?;
            if len > MAX_FRAME as u64 {
                return Err(self.error(&format!("frame of {len} bytes exceeds {MAX_FRAME}")));
            }
            let start = end + 1;
            let stop = start + len as usize;
            if rest.len() < stop {
                break;
            }
            out.push(SessionFrame::decode(&rest[start..stop], self.format)?);
            at += stop;
        }
        self.buf.drain(..at);
        Ok(out)
    }

    /// Whether the body ended between frames (not inside one).
    pub fn is_clean(&self) -> bool {
        self.buf.is_empty()
    }

    fn error(&self, detail: &str) -> DecodeError {
        DecodeError::new("session-frame", self.format, detail)
    }
}

/// One line of `GET /v1/services/{name}/logs` (newline-delimited JSON): a complete line of one
/// replica's output, or why a replica's output cannot be (or no longer is) streamed. A blank
/// line is not a record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogRecord {
    pub slot: u64,
    /// The node the replica runs on.
    pub node: String,
    pub task: String,
    /// `stdout` or `stderr` (with `line`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    /// RFC 3339 time the line was written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    /// The line, without its newline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<String>,
    /// Why this replica's output stops here (its node is down, did not answer...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `POST /v1/services/{name}/exec`: the command, and which replica (default: the running
/// replica of the lowest slot).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecBody {
    #[serde(default)]
    pub slot: Option<u64>,
    pub cmd: Vec<String>,
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default)]
    pub workdir: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
}

/// One line of an exec's answer (newline-delimited JSON): output as it comes, then the exit
/// code, or an error.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ExecRecord {
    /// The first record says where the command runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica: Option<ExecReplica>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// The command's exit code: the last record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Why the command did not run or its output stopped: the last record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<SessionError>,
}

/// The replica an exec runs in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecReplica {
    pub slot: u64,
    pub node: String,
    pub task: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(text: &str) -> SessionFrame {
        SessionFrame {
            stream: Some(OutputStream::Stdout),
            data: text.as_bytes().to_vec(),
            time: Some("2026-01-02T03:04:05.000000006Z".into()),
            ..SessionFrame::default()
        }
    }

    #[test]
    fn frames_split_anywhere_decode_whole() {
        let frames = vec![
            frame("one\n"),
            frame(&"x".repeat(300)),
            SessionFrame {
                exit_code: Some(3),
                ..SessionFrame::default()
            },
        ];
        let body: Vec<u8> = frames
            .iter()
            .flat_map(|f| encode_frame(f, 2).unwrap())
            .collect();
        for piece in [1, 2, 3, 7, body.len()] {
            let mut d = FrameDecoder::new(2);
            let mut got = Vec::new();
            for chunk in body.chunks(piece) {
                got.extend(d.push(chunk).unwrap());
            }
            assert_eq!(got, frames, "pieces of {piece} bytes");
            assert!(d.is_clean());
        }
        let mut d = FrameDecoder::new(2);
        d.push(&body[..body.len() - 1]).unwrap();
        assert!(!d.is_clean(), "a body cut inside a frame is noticed");
    }

    /// The golden files of the session messages (format 2; kept here rather than in the shared
    /// samples so that the file of every message's sample stays small).
    #[test]
    fn golden_files_decode() {
        use crate::format::golden::{assert_none_missing, check};
        let requests = SessionRequests {
            term: 4,
            sessions: vec![
                SessionRequest {
                    id: "0123456789abcdef0123456789abcdef".into(),
                    task_id: "00000000000000aa".into(),
                    service: "web".into(),
                    slot: 2,
                    kind: SessionKind::Logs(LogsOptions {
                        follow: true,
                        tail: Some(10),
                        since_ms: Some(1_700_000_000_000),
                    }),
                },
                SessionRequest {
                    id: "fedcba9876543210fedcba9876543210".into(),
                    task_id: "00000000000000ab".into(),
                    service: "web".into(),
                    slot: 0,
                    kind: SessionKind::Exec(ExecRequest {
                        cmd: vec!["sh".into(), "-c".into(), "echo hi; exit 3".into()],
                        env: vec!["A=1".into()],
                        workdir: Some("/tmp".into()),
                        user: Some("nobody".into()),
                    }),
                },
            ],
        };
        let mut missing = Vec::new();
        for format in 2..=crate::format::CURRENT {
            let m = &mut missing;
            check(format, "session-requests", &requests, m);
            check(format, "session-frame", &frame("hello\n"), m);
            let end = SessionFrame {
                exit_code: Some(3),
                ..SessionFrame::default()
            };
            check(format, "session-frame-exit", &end, m);
            let failed = SessionFrame {
                error: Some(SessionError {
                    code: "not_found".into(),
                    message: "no container runs task 00000000000000aa".into(),
                }),
                ..SessionFrame::default()
            };
            check(format, "session-frame-error", &failed, m);
        }
        assert_none_missing(&missing);
        assert!(requests.encode(1).is_err(), "never said to a format-1 peer");
    }

    #[test]
    fn bad_frames_are_refused() {
        let mut d = FrameDecoder::new(2);
        assert!(d.push(&[0xff; 11]).is_err(), "not a varint");
        let mut huge = Vec::new();
        prost::encoding::encode_varint(MAX_FRAME as u64 + 1, &mut huge);
        assert!(FrameDecoder::new(2).push(&huge).is_err(), "over the limit");
        let mut garbage = vec![3];
        garbage.extend([0xff, 0xff, 0xff]);
        assert!(FrameDecoder::new(2).push(&garbage).is_err(), "not protobuf");
        assert!(encode_frame(&frame("a"), 1).is_err(), "format 2 only");
    }
}
