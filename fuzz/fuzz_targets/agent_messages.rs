//! Every message between an agent and the controllers, and every record stored with them, as the
//! receiving side decodes it (`hoist_proto::format::Codec`, in each format it may arrive in: the
//! first byte picks type and format), and the stream of session frames an agent sends. A value
//! that decodes must encode, and what it encodes to must decode to a value that encodes to the
//! same bytes: what one side writes, the other reads as written.

#![no_main]

use hoist_proto::format::{Codec, CURRENT};
use hoist_proto::{cluster as c, node as n, raft as r, service as s, session};
use libfuzzer_sys::fuzz_target;

fn roundtrip<T: Codec>(bytes: &[u8], format: u32) {
    let Ok(v) = T::decode(bytes, format) else {
        return;
    };
    // A value read in format 0 may still carry nothing format 0 cannot say; one read in a later
    // format may hold what format 0 refuses (Unrepresentable), never what its own format cannot.
    let b1 = match v.encode(format) {
        Ok(b) => b,
        Err(e) => {
            assert_eq!(
                format,
                0,
                "{} read in format {format} does not encode: {e}",
                T::NAME
            );
            return;
        }
    };
    let v2 = T::decode(&b1, format).unwrap_or_else(|e| {
        panic!(
            "{} does not read what it wrote in format {format}: {e}",
            T::NAME
        )
    });
    let b2 = v2.encode(format).expect("re-encode");
    assert_eq!(
        b1,
        b2,
        "{} reads back differently in format {format}",
        T::NAME
    );
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, bytes)) = data.split_first() else {
        return;
    };
    let format = u32::from(which) % (CURRENT + 1);
    match (which / 3) % 20 {
        0 => roundtrip::<n::RegisterRequest>(bytes, format),
        1 => roundtrip::<n::RegisterResponse>(bytes, format),
        2 => roundtrip::<n::Heartbeat>(bytes, format),
        3 => roundtrip::<n::HeartbeatAck>(bytes, format),
        4 => roundtrip::<n::Assignments>(bytes, format),
        5 => roundtrip::<n::StatusReport>(bytes, format),
        6 => roundtrip::<n::StatusAck>(bytes, format),
        7 => roundtrip::<n::ServiceEndpoints>(bytes, format),
        8 => roundtrip::<n::OverlayReport>(bytes, format),
        9 => roundtrip::<n::VolumeReport>(bytes, format),
        10 => roundtrip::<session::SessionRequests>(bytes, format),
        11 => roundtrip::<session::SessionFrame>(bytes, format),
        12 => roundtrip::<s::ServiceSpec>(bytes, format),
        13 => roundtrip::<c::Node>(bytes, format),
        14 => roundtrip::<c::Task>(bytes, format),
        15 => roundtrip::<c::Rollout>(bytes, format),
        16 => roundtrip::<r::Request>(bytes, format),
        17 => roundtrip::<r::Response>(bytes, format),
        _ => {
            // An output body: length-delimited frames, arriving in arbitrary pieces.
            let mut decoder = session::FrameDecoder::new(format.max(2));
            for piece in bytes.chunks(usize::from(which % 7) + 1) {
                if decoder.push(piece).is_err() {
                    return;
                }
            }
            let _ = decoder.is_clean();
        }
    }
});
