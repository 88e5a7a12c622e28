//! Every Raft message and record as a member decodes it (`controller/src/raft/wire.rs`: entries,
//! votes, log ids, snapshot metadata, identity, AppendEntries, Vote and InstallSnapshot requests
//! and results, proposals and their outcomes; the state machine's commands through their codec;
//! whole snapshot files; the member link's frames and hello, `hoist_proto::peer_link`), in each
//! format (the first byte picks message and format). A value that
//! decodes must encode to bytes that decode to a value encoding to the same bytes, with one
//! exception: a peer's storage error is read as a local one saying "on the peer: ..." (so that
//! it is never taken for this member's own), whose text therefore grows on each round trip.

#![no_main]

use hoist_controller::raft::wire;
use hoist_proto::format::{Codec, CURRENT};
use libfuzzer_sys::fuzz_target;
use openraft::error::{Fatal, RaftError};

/// The round trip for one decoder/encoder pair; `encode` answers `None` when the value cannot be
/// said in `format` (format 0 only).
fn roundtrip<T, E: std::fmt::Debug>(
    what: &str,
    bytes: &[u8],
    format: u32,
    decode: impl Fn(&[u8], u32) -> Result<T, E>,
    encode: impl Fn(&T, u32) -> Option<Vec<u8>>,
) {
    let Ok(v) = decode(bytes, format) else {
        return;
    };
    let Some(b1) = encode(&v, format) else {
        assert_eq!(format, 0, "{what} read in format {format} does not encode");
        return;
    };
    let v2 = decode(&b1, format)
        .unwrap_or_else(|e| panic!("{what} does not read what it wrote in format {format}: {e:?}"));
    let b2 = encode(&v2, format).expect("re-encode");
    assert_eq!(b1, b2, "{what} reads back differently in format {format}");
}

/// An RPC's result whose error, if any, keeps its bytes through a round trip (see the module doc).
fn stable_result<T, E>(r: &Result<T, RaftError<u64, E>>) -> bool {
    !matches!(r, Err(RaftError::Fatal(Fatal::StorageError(_))))
}

/// [`roundtrip`] of an RPC result, skipping the byte comparison for a peer's storage error.
fn result_roundtrip<T, E, D: std::fmt::Debug>(
    what: &str,
    bytes: &[u8],
    format: u32,
    decode: impl Fn(&[u8], u32) -> Result<Result<T, RaftError<u64, E>>, D>,
    encode: impl Fn(&Result<T, RaftError<u64, E>>, u32) -> Vec<u8>,
) {
    match decode(bytes, format) {
        Ok(r) if !stable_result(&r) => {
            let again = decode(&encode(&r, format), format);
            assert!(
                again.is_ok(),
                "{what} does not read what it wrote in format {format}"
            );
        }
        Ok(_) => roundtrip(what, bytes, format, &decode, |v, f| Some(encode(v, f))),
        Err(_) => {}
    }
}

fn codec<T: Codec>(bytes: &[u8], format: u32) {
    roundtrip(T::NAME, bytes, format, T::decode, |v: &T, f| {
        v.encode(f).ok()
    });
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, bytes)) = data.split_first() else {
        return;
    };
    let f = u32::from(which) % (CURRENT + 1);
    match (which / 3) % 19 {
        0 => roundtrip("entry", bytes, f, wire::decode_entry, |v, f| {
            wire::encode_entry(v, f).ok()
        }),
        1 => roundtrip("vote", bytes, f, wire::decode_vote, |v, f| {
            Some(wire::encode_vote(v, f))
        }),
        2 => roundtrip(
            "log-id",
            bytes,
            f,
            |b, f| wire::decode_log_id("log-id", b, f),
            |v, f| Some(wire::encode_log_id(v.as_ref(), f)),
        ),
        3 => roundtrip("purged", bytes, f, wire::decode_purged, |v, f| {
            Some(wire::encode_purged(v, f))
        }),
        4 => roundtrip(
            "snapshot-meta",
            bytes,
            f,
            wire::decode_snapshot_meta,
            |v, f| Some(wire::encode_snapshot_meta(v, f)),
        ),
        5 => roundtrip("identity", bytes, f, wire::decode_identity, |(id, a), f| {
            Some(wire::encode_identity(*id, a, f))
        }),
        6 => roundtrip("append", bytes, f, wire::decode_append, |v, f| {
            wire::encode_append(v, f).ok()
        }),
        7 => result_roundtrip(
            "append-result",
            bytes,
            f,
            wire::decode_append_result,
            wire::encode_append_result,
        ),
        8 => roundtrip(
            "vote-request",
            bytes,
            f,
            wire::decode_vote_request,
            |v, f| Some(wire::encode_vote_request(v, f)),
        ),
        9 => result_roundtrip(
            "vote-result",
            bytes,
            f,
            wire::decode_vote_result,
            wire::encode_vote_result,
        ),
        10 => roundtrip(
            "snapshot-request",
            bytes,
            f,
            wire::decode_snapshot_request,
            |v, f| Some(wire::encode_snapshot_request(v, f)),
        ),
        11 => result_roundtrip(
            "snapshot-result",
            bytes,
            f,
            wire::decode_snapshot_result,
            wire::encode_snapshot_result,
        ),
        12 => roundtrip("proposal", bytes, f, wire::decode_proposal, |v, f| {
            wire::encode_proposal(v, f).ok()
        }),
        13 => roundtrip("outcomes", bytes, f, wire::decode_outcomes, |v, f| {
            Some(wire::encode_outcomes(v, f))
        }),
        14 => codec::<hoist_proto::raft::Request>(bytes, f),
        15 => codec::<hoist_proto::raft::Response>(bytes, f),
        16 => codec::<hoist_proto::raft::StallNotice>(bytes, f),
        17 => peer_link_frame(bytes),
        _ => {
            // A whole snapshot file (header, format, checksum, body): the checksum makes random
            // bodies fail early, so the body is also tried behind a header made for it.
            use hoist_controller::state as snapshot;
            let _ = snapshot::decode_snapshot(bytes);
            if let Ok(state) = snapshot::decode_snapshot(&with_header(bytes, f)) {
                if let Ok(b1) = snapshot::encode_snapshot(&state, f) {
                    let back = snapshot::decode_snapshot(&b1).expect("a snapshot reads back");
                    assert_eq!(snapshot::encode_snapshot(&back, f).ok(), Some(b1));
                }
            }
        }
    }
});

/// A member link frame's payload, read as a request and as an answer: what reads encodes back
/// to the same bytes, and a hello reads back.
fn peer_link_frame(bytes: &[u8]) {
    use hoist_proto::peer_link::{self as link, Hello, Kind};
    if let Some(prefix) = bytes.first_chunk::<4>() {
        let _ = link::payload_len(*prefix);
    }
    if let Ok((kind, f, body)) = link::decode_request(bytes) {
        if let Ok(kind) = kind {
            assert_eq!(&link::encode_request(kind, f, body)[4..], bytes);
        }
        if kind == Ok(Kind::Hello) {
            if let Ok(hello) = Hello::from_bytes(body) {
                assert_eq!(Hello::from_bytes(&hello.to_bytes()).ok(), Some(hello));
            }
        }
    }
    if let Ok((status, f, body)) = link::decode_answer(bytes) {
        assert_eq!(&link::encode_answer(status, f, body)[4..], bytes);
    }
}

/// `body` behind a valid snapshot header of state format `f`, as `state/snapshot.rs` documents
/// it: `HOISTSM\0`, image format `f + 2` (u32 LE), SHA-256 of the body.
fn with_header(body: &[u8], f: u32) -> Vec<u8> {
    use sha2::Digest;
    let mut out = b"HOISTSM\0".to_vec();
    out.extend_from_slice(&(f + 2).to_le_bytes());
    out.extend_from_slice(&sha2::Sha256::digest(body));
    out.extend_from_slice(body);
    out
}
