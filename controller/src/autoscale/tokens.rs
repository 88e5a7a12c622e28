//! Hook tokens: `HOISTHOOK-<id>-<secret>`. The id is public (listed, revoked by it); only the
//! SHA-256 of the secret is replicated, so a snapshot or a Raft log never holds a usable token.

use crate::credentials::{digest, matches};
use hoist_proto::cluster::HookToken;

const PREFIX: &str = "HOISTHOOK-";

/// A new token for `service` (or any): the token to show once, and what the state keeps.
pub fn generate(service: Option<String>, now_ms: u64) -> (String, HookToken) {
    let id = format!("{:08x}", rand::random::<u32>());
    let secret = hex::encode(rand::random::<[u8; 32]>());
    let record = HookToken {
        id: id.clone(),
        service,
        secret_sha256: digest(&secret),
        created_ms: now_ms,
    };
    (format!("{PREFIX}{id}-{secret}"), record)
}

/// The id and secret of a presented token; `None` when it is not one.
pub fn parse(token: &str) -> Option<(&str, &str)> {
    let rest = token.trim().strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('-')?;
    (!id.is_empty() && !secret.is_empty()).then_some((id, secret))
}

/// Whether `secret` is the one `record` was made with (compared in constant time).
pub fn verify(record: &HookToken, secret: &str) -> bool {
    matches(&record.secret_sha256, secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_token_verifies_and_another_does_not() {
        let (token, record) = generate(Some("web".into()), 5);
        let (id, secret) = parse(&token).unwrap();
        assert_eq!(id, record.id);
        assert!(verify(&record, secret));
        assert!(!verify(&record, "00"));
        assert!(!token.contains(&record.secret_sha256));
        assert_eq!(parse("Bearer x"), None);
        assert_eq!(parse("HOISTHOOK-abc"), None);
    }
}
