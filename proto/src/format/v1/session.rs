//! Format 2's session messages (`crate::session`): what the leader asks of an agent's session
//! poll and the frames of its output. Never stored; sent only between an agent and the leader.

use crate::format::mirror::{FromV1, ToV1};
use crate::{mirror_v1, mirror_v1_enum, session as d};

#[derive(Clone, PartialEq, prost::Message)]
pub struct SessionRequests {
    #[prost(uint64, tag = "1")]
    pub term: u64,
    #[prost(message, repeated, tag = "2")]
    pub sessions: Vec<SessionRequest>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SessionRequest {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(string, tag = "2")]
    pub task_id: String,
    #[prost(string, tag = "3")]
    pub service: String,
    #[prost(uint64, tag = "4")]
    pub slot: u64,
    #[prost(oneof = "session_request::Kind", tags = "5, 6")]
    pub kind: Option<session_request::Kind>,
}

pub mod session_request {
    /// What the session does: exactly one; variants get new tags, never reused ones.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Kind {
        #[prost(message, tag = "5")]
        Logs(super::SessionLogs),
        #[prost(message, tag = "6")]
        Exec(super::SessionExec),
    }
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SessionLogs {
    #[prost(bool, tag = "1")]
    pub follow: bool,
    #[prost(uint64, optional, tag = "2")]
    pub tail: Option<u64>,
    #[prost(uint64, optional, tag = "3")]
    pub since_ms: Option<u64>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SessionExec {
    #[prost(string, repeated, tag = "1")]
    pub cmd: Vec<String>,
    #[prost(string, repeated, tag = "2")]
    pub env: Vec<String>,
    #[prost(string, optional, tag = "3")]
    pub workdir: Option<String>,
    #[prost(string, optional, tag = "4")]
    pub user: Option<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SessionFrame {
    /// `OutputStream` + 1: 0 none, 1 stdout, 2 stderr.
    #[prost(int32, tag = "1")]
    pub stream: i32,
    #[prost(bytes = "vec", tag = "2")]
    pub data: Vec<u8>,
    #[prost(string, optional, tag = "3")]
    pub time: Option<String>,
    #[prost(int32, optional, tag = "4")]
    pub exit_code: Option<i32>,
    #[prost(message, optional, tag = "5")]
    pub error: Option<SessionError>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SessionError {
    #[prost(string, tag = "1")]
    pub code: String,
    #[prost(string, tag = "2")]
    pub message: String,
}

mirror_v1!(d::SessionRequests => SessionRequests { term, sessions });
mirror_v1!(d::LogsOptions => SessionLogs { follow, tail, since_ms });
mirror_v1!(crate::agent::ExecRequest => SessionExec { cmd, env, workdir, user });
mirror_v1!(d::SessionError => SessionError { code, message });
mirror_v1!(d::SessionFrame => SessionFrame { stream, data, time, exit_code, error });

/// The stream travels as its value + 1, so that 0 (absent) means none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stream {
    Stdout,
    Stderr,
}
mirror_v1_enum!(Stream { Stdout = 1, Stderr = 2 });

impl ToV1<i32> for Option<d::OutputStream> {
    fn to_v1(&self) -> i32 {
        match self {
            None => 0,
            Some(d::OutputStream::Stdout) => Stream::Stdout.to_v1(),
            Some(d::OutputStream::Stderr) => Stream::Stderr.to_v1(),
        }
    }
}
impl FromV1<i32> for Option<d::OutputStream> {
    fn from_v1(v: i32) -> Result<Self, String> {
        if v == 0 {
            return Ok(None);
        }
        Ok(Some(match Stream::from_v1(v)? {
            Stream::Stdout => d::OutputStream::Stdout,
            Stream::Stderr => d::OutputStream::Stderr,
        }))
    }
}

impl ToV1<SessionRequest> for d::SessionRequest {
    fn to_v1(&self) -> SessionRequest {
        SessionRequest {
            id: self.id.clone(),
            task_id: self.task_id.clone(),
            service: self.service.clone(),
            slot: self.slot,
            kind: Some(match &self.kind {
                d::SessionKind::Logs(o) => session_request::Kind::Logs(o.to_v1()),
                d::SessionKind::Exec(e) => session_request::Kind::Exec(e.to_v1()),
            }),
        }
    }
}
impl FromV1<SessionRequest> for d::SessionRequest {
    fn from_v1(v: SessionRequest) -> Result<Self, String> {
        let kind = match v.kind {
            Some(session_request::Kind::Logs(o)) => d::SessionKind::Logs(FromV1::from_v1(o)?),
            Some(session_request::Kind::Exec(e)) => d::SessionKind::Exec(FromV1::from_v1(e)?),
            None => return Err("kind: a session this build does not know".into()),
        };
        Ok(d::SessionRequest {
            id: v.id,
            task_id: v.task_id,
            service: v.service,
            slot: v.slot,
            kind,
        })
    }
}
