//! Format 0: what Hoist 0.1.0 wrote, frozen. These structs are copies of the 0.1.0 types as
//! postcard saw them (positional: field order, variant order and integer widths are the format),
//! and must never change; `golden/v0/` holds bytes written by 0.1.0 itself, which they decode and
//! re-encode byte for byte.
//!
//! Today's types convert to these with [`ToV0`], which refuses what format 0 cannot say (a field
//! added in format 1 with a value other than its default), and from them with [`FromV0`].

mod cluster;
mod convert;
mod node;
mod raft;
mod service;
mod state;

pub use cluster::*;
pub use node::*;
pub use raft::*;
pub use service::*;
pub use state::*;

pub use super::mirror::{FromV0, ToV0};

/// The size rule format 0 read service quantities with: single-letter suffixes (`k`, `M`, `G`,
/// `T`, any case, with an optional `B`) were decimal. Format 1 reads them as Docker does (binary,
/// see [`crate::quantity::parse_size`]); a cluster keeps this reading until it moves to format 1,
/// so that members of both versions place replicas alike.
pub fn parse_size_decimal_letters(text: &str) -> Option<u64> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (_, unit) = t.split_at(split);
    match unit.trim().to_ascii_lowercase().as_str() {
        "k" | "kb" => crate::quantity::parse_size_with(t, 1_000),
        "m" | "mb" => crate::quantity::parse_size_with(t, 1_000_000),
        "g" | "gb" => crate::quantity::parse_size_with(t, 1_000_000_000),
        "t" | "tb" => crate::quantity::parse_size_with(t, 1_000_000_000_000),
        _ => crate::quantity::parse_size(t).ok(),
    }
}
