//! `sha256:<hex>` digests: the one parser every part of Hoist uses for them, and hashing of bytes.

use sha2::{Digest as _, Sha256};

/// Length of a sha256 digest in lowercase hex.
pub const HEX_LEN: usize = 64;

/// Returns the hex of a `sha256:<64 lowercase hex>` digest, or `None` when it is not one.
pub fn parse_sha256(digest: &str) -> Option<&str> {
    let hex = digest.strip_prefix("sha256:")?;
    is_hex64(hex).then_some(hex)
}

/// Whether `s` is 64 lowercase hex characters.
pub fn is_hex64(s: &str) -> bool {
    s.len() == HEX_LEN
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `sha256:<hex>` of a byte slice.
pub fn sha256_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_only_lowercase_sha256() {
        let d = sha256_of(b"");
        assert_eq!(
            d,
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert!(parse_sha256(&d).is_some());
        assert!(parse_sha256(&d.to_uppercase()).is_none());
        assert!(parse_sha256("sha512:00").is_none());
        assert!(parse_sha256(&d[..70]).is_none());
    }
}
