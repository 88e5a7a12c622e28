//! The state's snapshot encoding: a self-describing, checksummed image of [`State`], used for Raft
//! snapshots (stored by each member, sent to members that catch up) and for the operator's
//! `hoist cluster snapshot save|restore`. Also the state's canonical bytes, hashed by
//! [`State::hash`].
//!
//! `MAGIC (8) | image format (u32 LE) | SHA-256 of the body (32) | body`. Image format N + 2 is
//! the state in format N: 2 is format 0 (postcard, what 0.1.0 wrote), 3 format 1 (protobuf), 4
//! format 2 (protobuf with the overlay). A cluster writes the image of its own format, so every
//! member can read every snapshot it is sent; this build reads every format it reads.

use super::{ClusterIdentity, Map, ServiceRecord, State, TaskTable};
use hoist_proto::format::mirror::{FromV0, FromV1, ToV0, ToV1};
use hoist_proto::format::{v0, v1, DecodeError, Unrepresentable, CURRENT, OLDEST};
use prost::Message;
use sha2::{Digest, Sha256};

const MAGIC: &[u8; 8] = b"HOISTSM\0";
const HEADER: usize = 44;
/// The image format that carries state format `f`.
const fn image_format(state_format: u32) -> u32 {
    state_format + 2
}

/// The state format an image format carries, if this build reads it.
fn state_format(image: u32) -> Option<u32> {
    image
        .checked_sub(2)
        .filter(|f| (OLDEST..=CURRENT).contains(f))
}

/// Why bytes are not a state image. Offsets are from the start of the image.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("not a Hoist state image: bad magic at offset 0")]
    BadMagic,
    #[error("truncated: {len} bytes, a state image has at least {HEADER}")]
    Truncated { len: usize },
    #[error(
        "state image format {image} at offset 8 is not one this build reads ({} to {})",
        image_format(OLDEST),
        image_format(CURRENT)
    )]
    Format { image: u32 },
    #[error("checksum mismatch over the body at offsets {HEADER}..{len} (truncated or corrupted)")]
    Checksum { len: usize },
    #[error("body at offset {HEADER}: {0}")]
    Decode(#[from] DecodeError),
}

/// Encodes `state` as an image of state format `format`; refuses what that format cannot say.
/// The body is encoded in place after the header, not copied there: one image in memory, not
/// two.
pub fn encode_snapshot(state: &State, format: u32) -> Result<Vec<u8>, Unrepresentable> {
    let mut out = Vec::new();
    let header = |out: &mut Vec<u8>, body_len: usize| {
        out.reserve_exact(HEADER + body_len);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&image_format(format).to_le_bytes());
        out.extend_from_slice(&[0; 32]);
    };
    match format {
        0 => {
            let body = postcard::to_stdvec(&to_v0(state)?).expect("plain data encodes");
            header(&mut out, body.len());
            out.extend_from_slice(&body);
        }
        _ => {
            let parts = V1Parts::of(state, format)?;
            header(&mut out, parts.encoded_len(state));
            parts.encode(state, &mut out);
        }
    }
    let digest = Sha256::digest(&out[HEADER..]);
    out[HEADER - 32..HEADER].copy_from_slice(&digest);
    Ok(out)
}

/// SHA-256 of the state's canonical encoding in `format` (an image's body: what [`State::hash`]
/// hashes), hashed as it is encoded: the encoding is never held whole (at 60,000 tasks it is
/// 33 MiB, most of a member's heap at the moment of the hash).
pub(super) fn canonical_digest(state: &State, format: u32) -> Result<[u8; 32], Unrepresentable> {
    let mut sink = DigestSink::default();
    match format {
        0 => {
            postcard::to_io(&to_v0(state)?, &mut sink.hasher).expect("plain data encodes");
        }
        _ => V1Parts::of(state, format)?.encode(state, &mut sink),
    }
    Ok(sink.finish())
}

/// How many tasks [`V1Parts`] converts at a time.
const TASK_CHUNK: usize = 1024;

/// A state's format-1+ encoding in three parts, the tasks converted [`TASK_CHUNK`] at a time:
/// the same bytes as `v1::State::encode` of the whole state converted at once, without that
/// copy of every task (the largest part of the state) in memory. Prost writes a message's
/// fields in tag order and a map's entries in key order, each entry on its own, so the fields
/// before the tasks' (tag 3), the tasks' entries chunk by chunk, then the fields after them
/// add up to the whole.
struct V1Parts {
    /// `services` (1) and `nodes` (2).
    before: v1::State,
    /// Tags 4 and up.
    after: v1::State,
}

/// The tasks' field of `v1::State` alone, for some of the tasks.
#[derive(Clone, PartialEq, prost::Message)]
struct V1Tasks {
    #[prost(btree_map = "string, message", tag = "3")]
    tasks: std::collections::BTreeMap<String, v1::Task>,
}

impl V1Parts {
    fn of(s: &State, format: u32) -> Result<V1Parts, Unrepresentable> {
        let mut after = to_v1_but_tasks(s, format)?;
        let before = v1::State {
            services: std::mem::take(&mut after.services),
            nodes: std::mem::take(&mut after.nodes),
            ..Default::default()
        };
        Ok(V1Parts { before, after })
    }

    /// The tasks of `s`, converted a chunk at a time.
    fn tasks(s: &State) -> impl Iterator<Item = V1Tasks> + '_ {
        let mut all = s.tasks.iter();
        std::iter::from_fn(move || {
            let tasks: std::collections::BTreeMap<_, _> = (all.by_ref().take(TASK_CHUNK))
                .map(|(id, t)| (id.to_string(), t.to_v1()))
                .collect();
            (!tasks.is_empty()).then_some(V1Tasks { tasks })
        })
    }

    fn encoded_len(&self, s: &State) -> usize {
        let tasks: usize = Self::tasks(s).map(|c| c.encoded_len()).sum();
        self.before.encoded_len() + tasks + self.after.encoded_len()
    }

    /// Writes the whole encoding of `s` (the state these parts are of) to `buf`.
    fn encode(&self, s: &State, buf: &mut impl bytes::BufMut) {
        let grows = "the buffer takes the whole encoding";
        self.before.encode(buf).expect(grows);
        for chunk in Self::tasks(s) {
            chunk.encode(buf).expect(grows);
        }
        self.after.encode(buf).expect(grows);
    }
}

/// A [`bytes::BufMut`] that hashes what is written to it, through a buffer of
/// [`DigestSink::BUFFER`] bytes.
#[derive(Default)]
struct DigestSink {
    hasher: Sha256,
    buf: Vec<u8>,
}

impl DigestSink {
    const BUFFER: usize = 64 * 1024;

    fn finish(mut self) -> [u8; 32] {
        self.hasher.update(&self.buf);
        self.hasher.finalize().into()
    }
}

// SAFETY: `chunk_mut` and `advance_mut` hand on to the `Vec<u8>`'s own implementation. The
// buffer is hashed and cleared only at the start of a call, never while a chunk it lent is
// being written.
unsafe impl bytes::BufMut for DigestSink {
    fn remaining_mut(&self) -> usize {
        usize::MAX - self.buf.len()
    }

    unsafe fn advance_mut(&mut self, cnt: usize) {
        // SAFETY: as the caller promised for this sink: `cnt` bytes of the last chunk written.
        unsafe { bytes::BufMut::advance_mut(&mut self.buf, cnt) }
    }

    fn put_slice(&mut self, src: &[u8]) {
        // What prost writes most: small slices and single bytes, appended without a chunk.
        if self.buf.len() + src.len() > Self::BUFFER {
            self.hasher.update(&self.buf);
            self.buf.clear();
        }
        if src.len() >= Self::BUFFER {
            self.hasher.update(src);
        } else {
            self.buf.extend_from_slice(src);
        }
    }

    fn chunk_mut(&mut self) -> &mut bytes::buf::UninitSlice {
        if self.buf.len() >= Self::BUFFER {
            self.hasher.update(&self.buf);
            self.buf.clear();
        }
        if self.buf.capacity() < Self::BUFFER {
            self.buf.reserve_exact(Self::BUFFER);
        }
        bytes::BufMut::chunk_mut(&mut self.buf)
    }
}

/// The state format of an image, from its header (`None` when it is not an image this build reads).
pub fn snapshot_format(bytes: &[u8]) -> Option<u32> {
    if bytes.len() < HEADER || &bytes[..8] != MAGIC {
        return None;
    }
    state_format(u32::from_le_bytes(
        bytes[8..12].try_into().expect("4 bytes"),
    ))
}

/// Reads an image written by [`encode_snapshot`] of any format this build reads.
pub fn decode_snapshot(bytes: &[u8]) -> Result<State, SnapshotError> {
    let head = bytes.len().min(MAGIC.len());
    if bytes[..head] != MAGIC[..head] {
        return Err(SnapshotError::BadMagic);
    }
    if bytes.len() < HEADER {
        return Err(SnapshotError::Truncated { len: bytes.len() });
    }
    let image = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    let format = state_format(image).ok_or(SnapshotError::Format { image })?;
    let body = &bytes[HEADER..];
    if Sha256::digest(body).as_slice() != &bytes[12..HEADER] {
        return Err(SnapshotError::Checksum { len: bytes.len() });
    }
    Ok(from_canonical_bytes(body, format)?)
}

fn from_canonical_bytes(body: &[u8], format: u32) -> Result<State, DecodeError> {
    let err = |e: &dyn std::fmt::Display| DecodeError::new("state", format, e);
    let mut state = match format {
        0 => from_v0(postcard::from_bytes(body).map_err(|e| err(&e))?),
        _ => from_v1(v1::State::decode(body).map_err(|e| err(&e))?).map_err(|e| err(&e))?,
    };
    if let Some((name, _)) = state.services.iter().find(|(_, r)| r.history.is_empty()) {
        return Err(err(&format!("service {name:?} has no version")));
    }
    state.rebuild_usage();
    Ok(state)
}

fn to_v0(s: &State) -> Result<v0::State, Unrepresentable> {
    if s.cluster_format != 0 {
        return Err(Unrepresentable::new("State.cluster_format", 1, 0));
    }
    if s.network.is_some() || s.overlay_index != 0 || !s.vips.is_empty() {
        return Err(Unrepresentable::new("State.network", 2, 0));
    }
    if !s.stacks.is_empty() {
        return Err(Unrepresentable::new("State.stacks", 2, 0));
    }
    if !s.autoscale.is_empty() || !s.hook_tokens.is_empty() {
        return Err(Unrepresentable::new("State.autoscale", 2, 0));
    }
    if !s.operator_tokens.is_empty() || !s.audit.is_empty() {
        return Err(Unrepresentable::new("State.operator_tokens", 2, 0));
    }
    if uses_files(s) {
        return Err(Unrepresentable::new("State.secrets", 2, 0));
    }
    Ok(v0::State {
        services: s
            .services
            .iter()
            .map(|(k, r)| {
                Ok((
                    k.clone(),
                    v0::ServiceRecord {
                        created_ms: r.created_ms,
                        history: r.history.to_v0()?,
                    },
                ))
            })
            .collect::<Result<_, Unrepresentable>>()?,
        nodes: s.nodes.to_v0()?,
        tasks: (s.tasks.iter())
            .map(|(id, t)| Ok((id.to_string(), t.to_v0()?)))
            .collect::<Result<_, Unrepresentable>>()?,
        identity: s.identity.as_ref().map(|i| v0::ClusterIdentity {
            cluster_id: i.cluster_id.clone(),
            secret: i.secret.clone(),
        }),
        rollouts: s.rollouts.to_v0()?,
        slot_history: s.slot_history.to_v0()?,
        node_index: s.node_index.to_v0()?,
        endpoints_index: s.endpoints_index.to_v0()?,
    })
}

fn from_v0(s: v0::State) -> State {
    State {
        services: s
            .services
            .into_iter()
            .map(|(k, r)| {
                (
                    k,
                    ServiceRecord {
                        created_ms: r.created_ms,
                        history: FromV0::from_v0(r.history),
                    },
                )
            })
            .collect(),
        nodes: FromV0::from_v0(s.nodes),
        tasks: TaskTable::from_map(FromV0::from_v0(s.tasks)),
        identity: s.identity.map(|i| ClusterIdentity {
            cluster_id: i.cluster_id,
            secret: i.secret,
            manager_secret: String::new(),
        }),
        rollouts: FromV0::from_v0(s.rollouts),
        slot_history: FromV0::from_v0(s.slot_history),
        node_index: s.node_index.into_iter().collect(),
        endpoints_index: s.endpoints_index.into_iter().collect(),
        cluster_format: 0,
        network: None,
        overlay_index: 0,
        vips: Map::new(),
        stacks: Map::new(),
        autoscale: Map::new(),
        hook_tokens: Map::new(),
        operator_tokens: Map::new(),
        audit: imbl::Vector::new(),
        secrets: Map::new(),
        configs: Map::new(),
        member_keys: Map::new(),
        data_key_id: String::new(),
        autolock: Vec::new(),
        ca: None,
        index: 0,
        touched: Default::default(),
        usage: Default::default(),
        spec_changes: Default::default(),
        assignment_changes: Default::default(),
        endpoint_changes: Default::default(),
    }
}

/// Whether the state holds secrets, configs, keys or a CA (format 2).
fn uses_files(s: &State) -> bool {
    !s.secrets.is_empty()
        || !s.configs.is_empty()
        || !s.member_keys.is_empty()
        || !s.data_key_id.is_empty()
        || !s.autolock.is_empty()
        || s.ca.is_some()
        || s.identity
            .as_ref()
            .is_some_and(|i| !i.manager_secret.is_empty())
}

/// The state in format `format` (1 or later) as one message. Only tests build it whole; the
/// encodings go through [`V1Parts`].
#[cfg(test)]
pub(super) fn to_v1(s: &State, format: u32) -> Result<v1::State, Unrepresentable> {
    Ok(v1::State {
        tasks: (s.tasks.iter())
            .map(|(id, t)| (id.to_string(), t.to_v1()))
            .collect(),
        ..to_v1_but_tasks(s, format)?
    })
}

/// The state in format `format` (1 or later) as one message, but for its tasks.
fn to_v1_but_tasks(s: &State, format: u32) -> Result<v1::State, Unrepresentable> {
    if format < 2 {
        if s.network.is_some() || s.overlay_index != 0 || !s.vips.is_empty() {
            return Err(Unrepresentable::new("State.network", 2, format));
        }
        if !s.stacks.is_empty() {
            return Err(Unrepresentable::new("State.stacks", 2, format));
        }
        if !s.autoscale.is_empty() || !s.hook_tokens.is_empty() {
            return Err(Unrepresentable::new("State.autoscale", 2, format));
        }
        if !s.operator_tokens.is_empty() || !s.audit.is_empty() {
            return Err(Unrepresentable::new("State.operator_tokens", 2, format));
        }
        if uses_files(s) {
            return Err(Unrepresentable::new("State.secrets", 2, format));
        }
        if let Some(n) = s.nodes.values().find(|n| n.format() >= 2) {
            return Err(Unrepresentable::new(
                format!("node {}'s overlay record", n.id),
                2,
                format,
            ));
        }
    }
    Ok(v1::State {
        services: s
            .services
            .iter()
            .map(|(k, r)| {
                (
                    k.clone(),
                    v1::ServiceRecord {
                        created_ms: r.created_ms,
                        history: r.history.to_v1(),
                    },
                )
            })
            .collect(),
        nodes: s.nodes.to_v1(),
        tasks: Default::default(),
        identity: s.identity.as_ref().map(|i| v1::ClusterIdentity {
            cluster_id: i.cluster_id.clone(),
            secret: i.secret.clone(),
            manager_secret: i.manager_secret.clone(),
        }),
        rollouts: s.rollouts.to_v1(),
        slot_history: s.slot_history.to_v1(),
        node_index: s.node_index.to_v1(),
        endpoints_index: s.endpoints_index.to_v1(),
        cluster_format: s.cluster_format,
        network: s.network.to_v1(),
        overlay_index: s.overlay_index,
        vips: s.vips.to_v1(),
        stacks: s.stacks.to_v1(),
        autoscale: s.autoscale.to_v1(),
        hook_tokens: s.hook_tokens.to_v1(),
        operator_tokens: s.operator_tokens.to_v1(),
        audit: s.audit.iter().map(ToV1::to_v1).collect(),
        secrets: s.secrets.to_v1(),
        configs: s.configs.to_v1(),
        member_keys: s.member_keys.to_v1(),
        data_key_id: s.data_key_id.clone(),
        autolock: s.autolock.clone(),
        ca: s.ca.to_v1(),
    })
}

fn from_v1(s: v1::State) -> Result<State, String> {
    Ok(State {
        services: s
            .services
            .into_iter()
            .map(|(k, r)| {
                let history = FromV1::from_v1(r.history)
                    .map_err(|e| format!("services[{k}].history: {e}"))?;
                Ok((
                    k,
                    ServiceRecord {
                        created_ms: r.created_ms,
                        history,
                    },
                ))
            })
            .collect::<Result<_, String>>()?,
        nodes: FromV1::from_v1(s.nodes).map_err(|e| format!("nodes: {e}"))?,
        tasks: TaskTable::from_map(FromV1::from_v1(s.tasks).map_err(|e| format!("tasks: {e}"))?),
        identity: s.identity.map(|i| ClusterIdentity {
            cluster_id: i.cluster_id,
            secret: i.secret,
            manager_secret: i.manager_secret,
        }),
        rollouts: FromV1::from_v1(s.rollouts).map_err(|e| format!("rollouts: {e}"))?,
        slot_history: FromV1::from_v1(s.slot_history).map_err(|e| format!("slot_history: {e}"))?,
        node_index: s.node_index.into_iter().collect(),
        endpoints_index: s.endpoints_index.into_iter().collect(),
        cluster_format: s.cluster_format,
        network: FromV1::from_v1(s.network).map_err(|e| format!("network: {e}"))?,
        overlay_index: s.overlay_index,
        vips: s.vips.into_iter().collect(),
        stacks: FromV1::from_v1(s.stacks).map_err(|e| format!("stacks: {e}"))?,
        autoscale: FromV1::from_v1(s.autoscale).map_err(|e| format!("autoscale: {e}"))?,
        hook_tokens: FromV1::from_v1(s.hook_tokens).map_err(|e| format!("hook_tokens: {e}"))?,
        operator_tokens: FromV1::from_v1(s.operator_tokens)
            .map_err(|e| format!("operator_tokens: {e}"))?,
        audit: s
            .audit
            .into_iter()
            .map(FromV1::from_v1)
            .collect::<Result<_, String>>()
            .map_err(|e| format!("audit: {e}"))?,
        secrets: FromV1::from_v1(s.secrets).map_err(|e| format!("secrets: {e}"))?,
        configs: FromV1::from_v1(s.configs).map_err(|e| format!("configs: {e}"))?,
        member_keys: FromV1::from_v1(s.member_keys).map_err(|e| format!("member_keys: {e}"))?,
        data_key_id: s.data_key_id,
        autolock: s.autolock,
        ca: FromV1::from_v1(s.ca).map_err(|e| format!("ca: {e}"))?,
        index: 0,
        touched: Default::default(),
        usage: Default::default(),
        spec_changes: Default::default(),
        assignment_changes: Default::default(),
        endpoint_changes: Default::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_offset() {
        let image = encode_snapshot(&State::default(), 1).unwrap();
        let mut bad = image.clone();
        bad[0] = b'X';
        assert!(decode_snapshot(&bad)
            .unwrap_err()
            .to_string()
            .contains("offset 0"));
        let mut bad = image.clone();
        bad[8] = 9;
        assert!(decode_snapshot(&bad)
            .unwrap_err()
            .to_string()
            .contains("format 9 at offset 8"));
        let e = decode_snapshot(&image[..20]).unwrap_err().to_string();
        assert!(e.contains("truncated: 20 bytes"), "{e}");
        let mut bad = image.clone();
        bad.push(1);
        let e = decode_snapshot(&bad).unwrap_err().to_string();
        assert!(
            e.contains("checksum mismatch over the body at offsets 44.."),
            "{e}"
        );
    }

    #[test]
    fn the_image_is_the_whole_message_and_the_digest_its_checksum_over_many_buffers() {
        use crate::state::tests::{req, spec, test_node, test_task};
        use hoist_proto::raft::Command;
        let mut st = State::default();
        let node = test_node("n1", 1 << 20, 1 << 40);
        st.apply_at(1, &req(1, Command::RegisterNode(node)));
        let web = spec("web", "nginx", 6000);
        st.apply_at(2, &req(2, Command::ApplyService(Box::new(web))));
        let tasks = (0..6000)
            .map(|i| test_task(&format!("t{i:05}"), "web", 1, i, "n1"))
            .collect();
        st.apply_at(3, &req(3, Command::PutTasks(tasks)));
        assert_eq!(st.tasks.len(), 6000);
        let image = encode_snapshot(&st, CURRENT).unwrap();
        assert!(image.len() > 2 * DigestSink::BUFFER, "{}", image.len());
        let whole = to_v1(&st, CURRENT).unwrap().encode_to_vec();
        assert!(
            st.tasks.len() > 4 * TASK_CHUNK,
            "the tasks span several chunks"
        );
        assert!(
            image[HEADER..] == whole[..],
            "the parts add up to the whole message"
        );
        let checksum = &image[HEADER - 32..HEADER];
        assert_eq!(Sha256::digest(&image[HEADER..])[..], *checksum);
        assert_eq!(canonical_digest(&st, CURRENT).unwrap()[..], *checksum);
    }

    #[test]
    fn a_format_1_state_is_not_written_as_format_0() {
        let state = State {
            cluster_format: 1,
            ..State::default()
        };
        assert_eq!(
            encode_snapshot(&state, 0).unwrap_err().what,
            "State.cluster_format"
        );
        let back = decode_snapshot(&encode_snapshot(&state, 1).unwrap()).unwrap();
        assert_eq!(back, state);
    }
}
