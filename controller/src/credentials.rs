//! Bearer credentials that the replicated state keeps only as a SHA-256: operator tokens
//! (`HOISTOP1-<cluster id>-<id>-<secret>`) and hook tokens (`autoscale/tokens.rs`).
//!
//! An operator token names its cluster, as a join token does, so that the CLI can tell a token
//! for another cluster from a wrong one; the id finds the record, and only the secret's hash is
//! compared, in constant time.

use hoist_proto::cluster::{OperatorToken, Role};
use sha2::{Digest, Sha256};

const OPERATOR_PREFIX: &str = "HOISTOP1-";

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
    pub id: &'a str,
    pub secret: &'a str,
}

/// A new operator token: the text to show once, and what the state keeps.
pub fn generate_operator(
    cluster_id: &str,
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
    (
        format!("{OPERATOR_PREFIX}{cluster_id}-{id}-{secret}"),
        record,
    )
}

/// Reads an operator token; `None` when `text` is not one.
pub fn parse_operator(text: &str) -> Option<OperatorTokenText<'_>> {
    let mut parts = text.trim().strip_prefix(OPERATOR_PREFIX)?.splitn(3, '-');
    let (cluster_id, id, secret) = (parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hex(cluster_id) && hex(id) && hex(secret)).then_some(OperatorTokenText {
        cluster_id,
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
        let (text, record) = generate_operator("00112233aabbccdd", "ci", Role::Deployer, "root", 5);
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
}
