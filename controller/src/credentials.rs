//! Bearer credentials that the replicated state keeps only as a SHA-256: operator tokens
//! (`HOISTOP2-<cluster id>-<root CA digest>-<id>-<secret>`, or `HOISTOP1-<cluster id>-<id>-<secret>`
//! when made before the cluster had its CA) and hook tokens (`autoscale/tokens.rs`).
//!
//! An operator token names its cluster, as a join token does, so that the CLI can tell a token
//! for another cluster from a wrong one, and the digest of the cluster's root, so that the CLI
//! talks TLS to members it has verified on first contact; the id finds the record, and only the
//! secret's hash is compared, in constant time (the digest is not part of the secret).

use hoist_proto::cluster::{OperatorToken, Role};
use sha2::{Digest, Sha256};

const OPERATOR_PREFIX: &str = "HOISTOP1-";
const OPERATOR_PREFIX_CA: &str = "HOISTOP2-";

/// Lowercase hex SHA-256 of `secret`.
pub fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Whether `secret` hashes to `sha256_hex`, compared in constant time.
pub fn matches(sha256_hex: &str, secret: &str) -> bool {
    let a = digest(secret);
    a.len() == sha256_hex.len()
        && a.bytes()
            .zip(sha256_hex.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// An operator token as presented: its cluster, id and secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorTokenText<'a> {
    pub cluster_id: &'a str,
    /// The root's digest (`HOISTOP2`).
    pub ca_digest: Option<&'a str>,
    pub id: &'a str,
    pub secret: &'a str,
}

/// A new operator token: the text to show once, and what the state keeps.
pub fn generate_operator(
    cluster_id: &str,
    ca_digest: Option<&str>,
    name: &str,
    role: Role,
    created_by: &str,
    now_ms: u64,
) -> (String, OperatorToken) {
    let id = hex::encode(rand::random::<[u8; 4]>());
    let secret = hex::encode(rand::random::<[u8; 32]>());
    let record = OperatorToken {
        name: name.to_string(),
        role,
        id: id.clone(),
        secret_sha256: digest(&secret),
        created_ms: now_ms,
        created_by: created_by.to_string(),
        last_used_ms: 0,
    };
    let text = match ca_digest {
        Some(d) => format!("{OPERATOR_PREFIX_CA}{cluster_id}-{d}-{id}-{secret}"),
        None => format!("{OPERATOR_PREFIX}{cluster_id}-{id}-{secret}"),
    };
    (text, record)
}

/// Reads an operator token; `None` when `text` is not one.
pub fn parse_operator(text: &str) -> Option<OperatorTokenText<'_>> {
    let text = text.trim();
    let hex = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit());
    if let Some(rest) = text.strip_prefix(OPERATOR_PREFIX_CA) {
        let mut parts = rest.splitn(4, '-');
        let (cluster_id, digest, id, secret) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let ok = hex(cluster_id) && digest.len() == 64 && hex(digest) && hex(id) && hex(secret);
        return ok.then_some(OperatorTokenText {
            cluster_id,
            ca_digest: Some(digest),
            id,
            secret,
        });
    }
    let mut parts = text.strip_prefix(OPERATOR_PREFIX)?.splitn(3, '-');
    let (cluster_id, id, secret) = (parts.next()?, parts.next()?, parts.next()?);
    (hex(cluster_id) && hex(id) && hex(secret)).then_some(OperatorTokenText {
        cluster_id,
        ca_digest: None,
        id,
        secret,
    })
}

/// The token among `tokens` that `presented` is, if any.
pub fn find_operator<'a>(
    tokens: impl IntoIterator<Item = &'a OperatorToken>,
    presented: &OperatorTokenText<'_>,
) -> Option<&'a OperatorToken> {
    tokens
        .into_iter()
        .find(|t| t.id == presented.id)
        .filter(|t| matches(&t.secret_sha256, presented.secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_operator_token_is_found_and_a_forged_one_is_not() {
        let (text, record) =
            generate_operator("00112233aabbccdd", None, "ci", Role::Deployer, "root", 5);
        let p = parse_operator(&text).unwrap();
        assert_eq!(
            (p.cluster_id, p.id),
            ("00112233aabbccdd", record.id.as_str())
        );
        assert_eq!(find_operator([&record], &p), Some(&record));
        let forged = OperatorTokenText {
            secret: "00",
            ..p.clone()
        };
        assert_eq!(find_operator([&record], &forged), None);
        assert!(!text.contains(&record.secret_sha256));
        for bad in [
            "",
            "HOISTOP1-",
            "HOISTOP1-abc-def",
            "HOISTOP1-zz-00-11",
            "HOIST1-0011-2233",
        ] {
            assert_eq!(parse_operator(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_token_made_with_the_root_carries_its_digest_and_acts_the_same() {
        let digest = "ab".repeat(32);
        let (text, record) = generate_operator(
            "00112233aabbccdd",
            Some(&digest),
            "ci",
            Role::Viewer,
            "root",
            5,
        );
        assert!(text.starts_with("HOISTOP2-00112233aabbccdd-"), "{text}");
        let p = parse_operator(&text).unwrap();
        assert_eq!(p.ca_digest, Some(digest.as_str()));
        assert_eq!(find_operator([&record], &p), Some(&record));
        for bad in [
            "HOISTOP2-0011-abab-22-33",
            "HOISTOP2-0011-22-33",
            &format!("HOISTOP2-0011-{}-zz-33", "ab".repeat(32)),
        ] {
            assert_eq!(parse_operator(bad), None, "{bad}");
        }
    }
}
