//! What the other members said of their versions, from the `hoist-version` / `hoist-format`
//! headers of every Raft RPC and its answer, and the format to speak to each. A member never
//! heard from is taken for format 0: every build reads it, and 0.1.0 sends no headers at all.
//! The leader raises the cluster format only once every member has answered in the newer one
//! (see `leader::run`); until then what it writes stays readable by all. Once it is raised, every
//! member reads it (a member too old for it is refused when it joins), so the cluster format is the
//! floor of every peer's format, also of a peer this member has not exchanged a word with yet (a
//! new leader and a follower it never spoke to).

use hoist_proto::format::{
    PeerVersion, CURRENT, FORMAT_HEADER, OLDEST, OLDEST_FORMAT_HEADER, PROTOBUF_MEDIA_TYPE,
    VERSION, VERSION_HEADER,
};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// Header naming the member that sends a Raft RPC (its id).
pub const MEMBER_HEADER: &str = "hoist-member";
/// Media type of format-0 Raft RPC bodies (0.1.0's).
pub const POSTCARD_RAFT: &str = "application/postcard";

/// This build's version headers, for every request and answer between Hoist processes.
pub fn version_headers() -> [(HeaderName, HeaderValue); 3] {
    [
        (
            HeaderName::from_static(VERSION_HEADER),
            HeaderValue::from_static(VERSION),
        ),
        (
            HeaderName::from_static(FORMAT_HEADER),
            HeaderValue::from(CURRENT),
        ),
        (
            HeaderName::from_static(OLDEST_FORMAT_HEADER),
            HeaderValue::from(OLDEST),
        ),
    ]
}

/// What the sender of `headers` said of itself.
pub fn peer_version(headers: &HeaderMap) -> PeerVersion {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    PeerVersion::from_headers(
        get(VERSION_HEADER),
        get(FORMAT_HEADER),
        get(OLDEST_FORMAT_HEADER),
    )
}

/// The format a body is in, from its media type: protobuf is format 1 or later, anything else
/// (postcard, 0.1.0's) format 0.
pub fn body_format(headers: &HeaderMap) -> u32 {
    let ct = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ct.starts_with(PROTOBUF_MEDIA_TYPE) {
        CURRENT
    } else {
        0
    }
}

/// The media type of Raft bodies in `format`.
pub fn raft_media_type(format: u32) -> &'static str {
    if format == 0 {
        POSTCARD_RAFT
    } else {
        PROTOBUF_MEDIA_TYPE
    }
}

#[derive(Debug, Clone)]
struct Seen {
    version: PeerVersion,
    at: Instant,
}

/// Versions of the members this one has exchanged RPCs with, by id and by address.
#[derive(Debug, Default)]
pub struct Peers {
    by_id: RwLock<HashMap<u64, Seen>>,
    by_addr: RwLock<HashMap<String, Seen>>,
    /// The cluster format as of the last applied entry (kept by the state machine).
    cluster_format: Arc<AtomicU32>,
}

impl Peers {
    /// A registry whose floor is `cluster_format`, which the state machine keeps current.
    pub fn new(cluster_format: Arc<AtomicU32>) -> Peers {
        Peers {
            cluster_format,
            ..Peers::default()
        }
    }

    fn floor(&self) -> u32 {
        self.cluster_format.load(Ordering::Relaxed)
    }

    /// Records what member `id` (if known) at `addr` (if known) said of itself.
    pub fn record(&self, id: Option<u64>, addr: Option<&str>, version: PeerVersion) {
        let seen = Seen {
            version,
            at: Instant::now(),
        };
        if let Some(id) = id {
            let mut m = self.by_id.write().expect("peers lock");
            if m.get(&id).is_none_or(|s| s.version != seen.version) {
                tracing::info!(
                    member = id,
                    version = %seen.version.version,
                    format = seen.version.format,
                    "member version"
                );
            }
            m.insert(id, seen.clone());
        }
        if let Some(addr) = addr {
            self.by_addr
                .write()
                .expect("peers lock")
                .insert(addr.to_string(), seen);
        }
    }

    /// The format to speak to member `id`: the newest both read (0 when never heard from).
    pub fn format_of(&self, id: u64) -> u32 {
        self.by_id
            .read()
            .expect("peers lock")
            .get(&id)
            .map_or(0, |s| s.version.common_format())
            .max(self.floor())
    }

    /// The format to speak to the member at `addr`.
    pub fn format_at(&self, addr: &str) -> u32 {
        self.by_addr
            .read()
            .expect("peers lock")
            .get(addr)
            .map_or(0, |s| s.version.common_format())
            .max(self.floor())
    }

    /// What member `id` last said of itself, and how long ago, if it said anything.
    pub fn get(&self, id: u64) -> Option<(PeerVersion, Duration)> {
        self.by_id
            .read()
            .expect("peers lock")
            .get(&id)
            .map(|s| (s.version.clone(), s.at.elapsed()))
    }
}
