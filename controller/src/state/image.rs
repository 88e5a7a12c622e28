//! The state image: a self-describing, checksummed encoding of [`State`] used for Raft snapshots and
//! the operator's snapshot download/restore, so that a file from one version is recognised by the next.

use super::State;
use sha2::{Digest, Sha256};

const MAGIC: &[u8; 8] = b"HOISTSM\0";
/// Bumped when [`State`]'s encoding changes incompatibly.
const FORMAT: u32 = 2;

/// Why bytes are not a state image.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("not a Hoist state image (bad magic)")]
    BadMagic,
    #[error("state image format {0} is not supported (this build reads {FORMAT})")]
    Format(u32),
    #[error("state image checksum mismatch (truncated or corrupted)")]
    Checksum,
    #[error("state image does not decode: {0}")]
    Decode(#[from] postcard::Error),
}

/// `MAGIC | FORMAT (u32 LE) | SHA-256 of body | body = postcard(State)`.
pub fn encode_image(state: &State) -> Vec<u8> {
    let body = postcard::to_stdvec(state).expect("state encodes");
    let mut out = Vec::with_capacity(body.len() + 44);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT.to_le_bytes());
    out.extend_from_slice(&Sha256::digest(&body));
    out.extend_from_slice(&body);
    out
}

/// Reads bytes written by [`encode_image`].
pub fn decode_image(bytes: &[u8]) -> Result<State, ImageError> {
    if bytes.len() < 44 || &bytes[..8] != MAGIC {
        return Err(ImageError::BadMagic);
    }
    let format = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    if format != FORMAT {
        return Err(ImageError::Format(format));
    }
    let body = &bytes[44..];
    if Sha256::digest(body).as_slice() != &bytes[12..44] {
        return Err(ImageError::Checksum);
    }
    Ok(postcard::from_bytes(body)?)
}
