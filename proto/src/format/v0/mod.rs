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

/// The size rule format 0 read service quantities with, exactly as 0.1.0 did (rounding and all):
/// single-letter suffixes (`k`, `M`, `G`, `T`, any case, with an optional `B`) decimal, `Ki`..`Ti`
/// binary. Format 1 reads sizes as Docker does ([`crate::quantity::parse_size`]); a cluster keeps
/// this reading, in `apply`'s validation and placement, until it moves to format 1, so that members
/// of both versions accept and place alike.
pub fn parse_size_decimal_letters(text: &str) -> Option<u64> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    if num.is_empty() {
        return None;
    }
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "m" | "mb" => 1_000_000,
        "g" | "gb" => 1_000_000_000,
        "t" | "tb" => 1_000_000_000_000,
        "ki" | "kib" => 1 << 10,
        "mi" | "mib" => 1 << 20,
        "gi" | "gib" => 1 << 30,
        "ti" | "tib" => 1 << 40,
        _ => return None,
    };
    scale_decimal_0_1_0(num, mult)
}

/// 0.1.0's `scale_decimal`, verbatim (it rounds a fraction digit by digit).
fn scale_decimal_0_1_0(num: &str, mult: u64) -> Option<u64> {
    let (int, frac) = match num.split_once('.') {
        Some((i, f)) => (i, f),
        None => (num, ""),
    };
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let int_v: u64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut value = int_v.checked_mul(mult)?;
    let mut scale = mult;
    for d in frac.bytes().take(18) {
        scale /= 10;
        if scale == 0 {
            break;
        }
        value = value.checked_add(u64::from(d - b'0') * scale)?;
    }
    Some(value)
}

/// A service's memory in bytes as a cluster at `cluster_format` reads it.
pub fn memory_bytes(text: &str, cluster_format: u32) -> Option<u64> {
    match cluster_format {
        0 => parse_size_decimal_letters(text),
        _ => crate::quantity::parse_size(text).ok(),
    }
}
