//! The member-to-member link: a lean framed protocol that carries Raft RPCs and forwarded writes
//! over one persistent mutual-TLS connection per peer, instead of one HTTP request each.
//!
//! Why: at 64 clients the members spent about a third of their CPU in HTTP (hyper's server,
//! reqwest's client, routing, headers with the version on every request). The bodies already
//! are the format-N messages of [`crate::format`]; what the link removes is everything around
//! them. A link is negotiated by TLS ALPN ([`ALPN`]) on the member's usual port, so a member
//! that does not speak it (an older build, or one without a certificate yet) is called over
//! HTTP as before, and the listener needs no second port.
//!
//! The framing (this module, pure; the I/O is the controller's `raft::link`):
//!
//! ```text
//! frame   = length:u32 (big endian) payload     2 <= length <= MAX_FRAME
//! request = code:u8 format:u8 body              code: Kind
//! answer  = status:u8 format:u8 body            status: 0 ok (body: the RPC's answer),
//!                                               1 refused (body: the reason, UTF-8)
//! ```
//!
//! The first request on a connection is a [`Kind::Hello`] whose body is a [`Hello`] (protobuf):
//! who the caller is and which versions and formats it reads; the answer is the callee's
//! [`Hello`]. After it, requests are answered in order, one at a time. `format` is the format of
//! the body, as the media type says it over HTTP. Codes and statuses are forever: new kinds get
//! new codes, and a callee answers an unknown code "refused" and keeps the connection. A framing
//! that cannot be read this way gets a new ALPN name (`hoist-peer/2`), offered beside this one.

use crate::format::PeerVersion;
use prost::Message;

/// The ALPN protocol name of this framing.
pub const ALPN: &[u8] = b"hoist-peer/1";

/// The largest payload of a frame (a request or answer). Raft appends are cut at 1 MiB and
/// snapshot chunks at a few MiB; a body that would not fit goes over HTTP.
pub const MAX_FRAME: usize = 64 << 20;

/// Bytes before a body: the frame's length, then code (or status) and format.
pub const HEAD: usize = 6;

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The first request of a connection: body and answer are [`Hello`]s.
    Hello,
    /// Raft AppendEntries.
    Append,
    /// Raft RequestVote.
    Vote,
    /// Raft InstallSnapshot (one chunk).
    Snapshot,
    /// Writes forwarded to the leader (a proposal; the answer is their outcomes).
    Propose,
}

impl Kind {
    /// The code on the wire.
    pub fn code(self) -> u8 {
        match self {
            Kind::Hello => 0,
            Kind::Append => 1,
            Kind::Vote => 2,
            Kind::Snapshot => 3,
            Kind::Propose => 4,
        }
    }

    pub fn from_code(code: u8) -> Option<Kind> {
        Some(match code {
            0 => Kind::Hello,
            1 => Kind::Append,
            2 => Kind::Vote,
            3 => Kind::Snapshot,
            4 => Kind::Propose,
            _ => return None,
        })
    }

    /// The name of the same RPC over HTTP (`/raft/{name}`).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Hello => "hello",
            Kind::Append => "append",
            Kind::Vote => "vote",
            Kind::Snapshot => "snapshot",
            Kind::Propose => "propose",
        }
    }
}

/// The status of an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// The body is the RPC's answer.
    Ok,
    /// The request was not handled; the body says why (UTF-8).
    Refused,
}

impl Status {
    pub fn code(self) -> u8 {
        match self {
            Status::Ok => 0,
            Status::Refused => 1,
        }
    }
}

/// A frame that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("a frame of {0} bytes is over the limit of {MAX_FRAME}")]
    TooLarge(usize),
    #[error("a frame of {0} bytes is too short for its code and format")]
    TooShort(usize),
    #[error("unknown answer status {0}")]
    UnknownStatus(u8),
    #[error("the hello does not decode: {0}")]
    Hello(String),
}

/// Who is at the other end of a link, as it says at the start.
#[derive(Clone, PartialEq, Message)]
pub struct Hello {
    /// Its member id.
    #[prost(uint64, tag = "1")]
    pub member: u64,
    /// Its binary's version, `MAJOR.MINOR.PATCH`.
    #[prost(string, tag = "2")]
    pub version: String,
    /// The newest format it reads and writes.
    #[prost(uint32, tag = "3")]
    pub format: u32,
    /// The oldest format it reads.
    #[prost(uint32, tag = "4")]
    pub oldest_format: u32,
}

impl Hello {
    /// This build, as member `member`.
    pub fn this_build(member: u64) -> Hello {
        let v = PeerVersion::this_build();
        Hello {
            member,
            version: v.version,
            format: v.format,
            oldest_format: v.oldest,
        }
    }

    pub fn peer_version(&self) -> PeerVersion {
        PeerVersion {
            version: self.version.clone(),
            format: self.format,
            oldest: self.oldest_format,
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        self.encode_to_vec()
    }

    pub fn from_bytes(body: &[u8]) -> Result<Hello, FrameError> {
        Hello::decode(body).map_err(|e| FrameError::Hello(e.to_string()))
    }
}

/// The length a frame's first four bytes announce, checked against [`MAX_FRAME`].
pub fn payload_len(prefix: [u8; 4]) -> Result<usize, FrameError> {
    let len = u32::from_be_bytes(prefix) as usize;
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge(len));
    }
    if len < HEAD - 4 {
        return Err(FrameError::TooShort(len));
    }
    Ok(len)
}

/// Whether a body of `len` bytes fits in one frame.
pub fn fits(len: usize) -> bool {
    len <= MAX_FRAME - (HEAD - 4)
}

fn frame(code: u8, format: u32, body: &[u8]) -> Vec<u8> {
    let format = u8::try_from(format).expect("formats are small numbers");
    let mut out = Vec::with_capacity(HEAD + body.len());
    out.extend_from_slice(&((body.len() + HEAD - 4) as u32).to_be_bytes());
    out.push(code);
    out.push(format);
    out.extend_from_slice(body);
    out
}

/// A whole request frame, length included. `body` must [`fit`](fits).
pub fn encode_request(kind: Kind, format: u32, body: &[u8]) -> Vec<u8> {
    frame(kind.code(), format, body)
}

/// A whole answer frame, length included. `body` must [`fit`](fits).
pub fn encode_answer(status: Status, format: u32, body: &[u8]) -> Vec<u8> {
    frame(status.code(), format, body)
}

/// A request as read: its kind (`Err` holds an unknown code, which is answered "refused"), its
/// format and its body.
pub type Request<'a> = (Result<Kind, u8>, u32, &'a [u8]);

/// A request's payload (after the length).
pub fn decode_request(payload: &[u8]) -> Result<Request<'_>, FrameError> {
    let (code, format, body) = split(payload)?;
    Ok((Kind::from_code(code).ok_or(code), format, body))
}

/// An answer's payload (after the length): its status, format and body.
pub fn decode_answer(payload: &[u8]) -> Result<(Status, u32, &[u8]), FrameError> {
    let (code, format, body) = split(payload)?;
    let status = match code {
        0 => Status::Ok,
        1 => Status::Refused,
        other => return Err(FrameError::UnknownStatus(other)),
    };
    Ok((status, format, body))
}

fn split(payload: &[u8]) -> Result<(u8, u32, &[u8]), FrameError> {
    let [code, format, body @ ..] = payload else {
        return Err(FrameError::TooShort(payload.len()));
    };
    Ok((*code, u32::from(*format), body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_reads_back() {
        let frame = encode_request(Kind::Append, 2, b"body");
        assert_eq!(&frame[..4], &6u32.to_be_bytes());
        let len = payload_len(frame[..4].try_into().unwrap()).unwrap();
        assert_eq!(len, frame.len() - 4);
        let (kind, format, body) = decode_request(&frame[4..]).unwrap();
        assert_eq!((kind, format, body), (Ok(Kind::Append), 2, &b"body"[..]));
    }

    #[test]
    fn an_answer_reads_back() {
        let frame = encode_answer(Status::Refused, 1, b"no");
        let (status, format, body) = decode_answer(&frame[4..]).unwrap();
        assert_eq!((status, format, body), (Status::Refused, 1, &b"no"[..]));
    }

    #[test]
    fn every_kind_keeps_its_code() {
        for kind in [
            Kind::Hello,
            Kind::Append,
            Kind::Vote,
            Kind::Snapshot,
            Kind::Propose,
        ] {
            assert_eq!(Kind::from_code(kind.code()), Some(kind));
        }
        // The codes are the wire's: never renumbered.
        assert_eq!(Kind::Propose.code(), 4);
        let (kind, _, _) = decode_request(&[9, 2]).unwrap();
        assert_eq!(kind, Err(9), "an unknown code is handed back to be refused");
    }

    #[test]
    fn bad_lengths_and_statuses_are_refused() {
        assert_eq!(
            payload_len(((MAX_FRAME + 1) as u32).to_be_bytes()),
            Err(FrameError::TooLarge(MAX_FRAME + 1))
        );
        assert_eq!(
            payload_len(1u32.to_be_bytes()),
            Err(FrameError::TooShort(1))
        );
        assert_eq!(decode_answer(&[7, 2]), Err(FrameError::UnknownStatus(7)));
        assert_eq!(decode_request(&[1]), Err(FrameError::TooShort(1)));
        assert!(fits(MAX_FRAME - 2) && !fits(MAX_FRAME - 1));
    }

    #[test]
    fn a_hello_says_this_build() {
        let hello = Hello::this_build(3);
        let back = Hello::from_bytes(&hello.to_bytes()).unwrap();
        assert_eq!(back, hello);
        assert_eq!(back.peer_version(), PeerVersion::this_build());
        assert!(Hello::from_bytes(&[0xff, 0xff]).is_err());
    }
}
