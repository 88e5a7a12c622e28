//! Hoist's persisted and wire formats, and how they evolve.
//!
//! One number, the **format**, names what a build can read and write. Format 0 is what Hoist
//! 0.1.0 wrote: positional postcard encodings of the same structs the JSON API used, with no
//! version anywhere. Format 1 and later are protobuf (prost messages written here by hand, no
//! code generator): every field has a tag, so a reader fills fields it does not find with their
//! defaults and skips fields it does not know. Protobuf alone does not make a mixed-version
//! cluster safe, though: a member that skips a field it does not know computes a different state
//! from one that applies it. So a field or command that changes what `apply` or an agent does
//! belongs to a format, and the leader writes it only once every member reads that format
//! (`State::cluster_format`, raised through Raft when the last member has been upgraded).
//!
//! - [`v0`]: frozen copies of the format-0 structs, byte for byte what 0.1.0 wrote, and their
//!   conversions to and from today's types. Needed to read old data dirs and snapshots, and to
//!   speak to 0.1.0 members and agents during a rolling upgrade.
//! - [`v1`]: the protobuf messages of format 1 and later (format 2 added the overlay's fields
//!   and messages, new tags only) and their conversions.
//!
//! A build reads formats [`OLDEST`]..=[`CURRENT`] (N-1 and N) and writes [`CURRENT`], or an older
//! one to a peer that has not been upgraded yet. Golden files of every message and record type,
//! one directory per format (`proto/golden/vN/`), are add-only; `golden_test.rs` decodes every one
//! of them with the current code.

mod codecs;
#[cfg(any(test, feature = "golden"))]
pub mod golden;
pub mod mirror;
#[cfg(any(test, feature = "golden"))]
pub mod samples;
pub mod v0;
pub mod v1;

#[cfg(test)]
mod golden_test;

/// The highest format this build reads and writes.
pub const CURRENT: u32 = 2;
/// The oldest format this build reads.
pub const OLDEST: u32 = 0;

/// This build's version, `MAJOR.MINOR.PATCH`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// HTTP header on every request and answer between Hoist processes: the sender's version.
pub const VERSION_HEADER: &str = "hoist-version";
/// HTTP header on every request and answer between Hoist processes: the newest format the sender
/// reads and writes. Its absence means format 0 (Hoist 0.1.0 sent no such header).
pub const FORMAT_HEADER: &str = "hoist-format";
/// HTTP header: the oldest format the sender still reads.
pub const OLDEST_FORMAT_HEADER: &str = "hoist-oldest-format";

/// Media type of format-1+ bodies between Hoist processes (protobuf).
pub const PROTOBUF_MEDIA_TYPE: &str = "application/x-protobuf";

/// What a peer (member or agent) told us about itself, from its headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerVersion {
    /// Its binary's version; `"0.1.0"` when it sent none (only 0.1.0 sent no version).
    pub version: String,
    /// The newest format it reads and writes.
    pub format: u32,
    /// The oldest format it reads.
    pub oldest: u32,
}

impl PeerVersion {
    /// What 0.1.0, which sent no version headers, is.
    pub fn legacy() -> PeerVersion {
        PeerVersion {
            version: "0.1.0".into(),
            format: 0,
            oldest: 0,
        }
    }

    /// This build.
    pub fn this_build() -> PeerVersion {
        PeerVersion {
            version: VERSION.into(),
            format: CURRENT,
            oldest: OLDEST,
        }
    }

    /// From header values (`None` where a header was absent or unreadable).
    pub fn from_headers(
        version: Option<&str>,
        format: Option<&str>,
        oldest: Option<&str>,
    ) -> PeerVersion {
        let Some(format) = format.and_then(|f| f.trim().parse().ok()) else {
            return PeerVersion::legacy();
        };
        PeerVersion {
            version: version.unwrap_or("unknown").trim().to_string(),
            format,
            oldest: oldest.and_then(|o| o.trim().parse().ok()).unwrap_or(format),
        }
    }

    /// The format to speak with this peer: the newest both sides read.
    pub fn common_format(&self) -> u32 {
        self.format.min(CURRENT)
    }

    /// Why this peer cannot work with a cluster at `cluster_format`, if it cannot: it must read
    /// every format the cluster may write, and the cluster must read what it writes.
    pub fn incompatibility(&self, cluster_format: u32) -> Option<String> {
        if self.format < cluster_format {
            Some(format!(
                "it runs Hoist {} (format {}), too old for this cluster, which is at format {cluster_format} \
                 (Hoist {VERSION} here): upgrade it to {VERSION} or later",
                self.version, self.format
            ))
        } else if self.oldest > CURRENT {
            Some(format!(
                "it runs Hoist {} (formats {}..={}), too new for this Hoist {VERSION} (formats {OLDEST}..={CURRENT}): \
                 upgrade this cluster first",
                self.version, self.oldest, self.format
            ))
        } else {
            None
        }
    }
}

/// Bytes that are not a valid encoding of what they should be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} (format {format}): {detail}")]
pub struct DecodeError {
    /// The message or record type, as named in the golden files (`raft-entry`, `state`...).
    pub what: &'static str,
    pub format: u32,
    pub detail: String,
}

impl DecodeError {
    pub fn new(what: &'static str, format: u32, detail: impl std::fmt::Display) -> DecodeError {
        DecodeError {
            what,
            format,
            detail: detail.to_string(),
        }
    }
}

/// A value that uses something an older format cannot say.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} needs format {needs}, but format {format} was asked for")]
pub struct Unrepresentable {
    /// The field or command that needs the newer format (`spec.stop_grace_period`).
    pub what: String,
    /// The format that introduced it.
    pub needs: u32,
    /// The format it was to be written in.
    pub format: u32,
}

impl Unrepresentable {
    pub fn new(what: impl Into<String>, needs: u32, format: u32) -> Unrepresentable {
        Unrepresentable {
            what: what.into(),
            needs,
            format,
        }
    }
}

/// Encodes `value` as format `format`: postcard of the frozen v0 type, or protobuf.
pub trait Codec: Sized {
    /// The golden-file name of the type.
    const NAME: &'static str;
    fn encode(&self, format: u32) -> Result<Vec<u8>, Unrepresentable>;
    fn decode(bytes: &[u8], format: u32) -> Result<Self, DecodeError>;
}

/// Implements [`Codec`] for a domain type with a frozen v0 twin (postcard) and a v1 message
/// (protobuf), given the [`mirror`] conversions in both directions.
#[macro_export]
#[doc(hidden)]
macro_rules! codec_via {
    ($ty:ty, $name:literal, $v0:ty, $v1:ty) => {
        impl $crate::format::Codec for $ty {
            const NAME: &'static str = $name;
            fn encode(&self, format: u32) -> Result<Vec<u8>, $crate::format::Unrepresentable> {
                if format == 0 {
                    let v: $v0 = $crate::format::mirror::ToV0::to_v0(self)?;
                    Ok(postcard::to_stdvec(&v).expect("plain data encodes"))
                } else {
                    let v: $v1 = $crate::format::mirror::ToV1::to_v1(self);
                    Ok(prost::Message::encode_to_vec(&v))
                }
            }
            fn decode(bytes: &[u8], format: u32) -> Result<Self, $crate::format::DecodeError> {
                let err =
                    |e: &dyn std::fmt::Display| $crate::format::DecodeError::new($name, format, e);
                match format {
                    0 => {
                        let v: $v0 = postcard::from_bytes(bytes).map_err(|e| err(&e))?;
                        Ok(<$ty as $crate::format::mirror::FromV0<$v0>>::from_v0(v))
                    }
                    f if f <= $crate::format::CURRENT => {
                        let v = <$v1 as prost::Message>::decode(bytes).map_err(|e| err(&e))?;
                        <$ty as $crate::format::mirror::FromV1<$v1>>::from_v1(v)
                            .map_err(|e| err(&e))
                    }
                    f => Err(err(&format!(
                        "this build reads formats {}..={}, not {f}",
                        $crate::format::OLDEST,
                        $crate::format::CURRENT
                    ))),
                }
            }
        }
    };
}
