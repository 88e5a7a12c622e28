//! The first admin token. A cluster at format 2 with no operator token at all (a new cluster, or
//! one just upgraded from 0.2) would lock everyone out, so the leader makes one: named `admin`,
//! written to `DATA_DIR/admin.token` (0600) and printed once on standard output.
//!
//! The file is written before the token is proposed and renamed into place once committed:
//! `admin.token.pending` holds a token that may not exist yet. If the leader dies in between,
//! the next round (here or on the next leader, with its own file) tries again, and a pending
//! file whose token did get committed is renamed at the next round on that member.

use crate::credentials::{digest, generate_operator, parse_operator};
use crate::raft::RaftNode;
use hoist_proto::cluster::{OperatorToken, Role};
use hoist_proto::raft::{Command, Response};
use std::path::{Path, PathBuf};

/// The first admin token's name.
pub const NAME: &str = "admin";

fn paths(dir: &Path) -> (PathBuf, PathBuf) {
    (dir.join("admin.token.pending"), dir.join("admin.token"))
}

/// Writes `text` (and a newline) to `path`, readable by its owner only, on disk before this
/// returns.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    hoist_common::private_file::write(path, format!("{text}\n").as_bytes())
}

/// How long the first admin token waits for the cluster's CA before it is made without its
/// digest.
const CA_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// When this process first looked.
fn started() -> std::time::Instant {
    static STARTED: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    *STARTED.get_or_init(std::time::Instant::now)
}

/// The record a pending token's text stands for.
fn record_of(text: &str, now_ms: u64) -> Option<OperatorToken> {
    let t = parse_operator(text)?;
    Some(OperatorToken {
        name: NAME.into(),
        role: Role::Admin,
        id: t.id.to_string(),
        secret_sha256: digest(t.secret),
        created_ms: now_ms,
        created_by: "bootstrap".into(),
        last_used_ms: 0,
    })
}

/// One round: makes the first admin token if the cluster needs one, and finishes a pending one.
pub async fn ensure(node: &RaftNode, dir: &Path, now_ms: u64) -> Result<(), String> {
    let (pending, done) = paths(dir);
    let (format, tokens_exist, cluster_id, ca_digest) = node.stale_read(|s| {
        (
            s.cluster_format,
            !s.operator_tokens.is_empty(),
            s.identity.as_ref().map(|i| i.cluster_id.clone()),
            s.ca.as_ref().map(|c| c.digest.clone()),
        )
    });
    let pending_text = std::fs::read_to_string(&pending)
        .ok()
        .map(|t| t.trim().to_string());
    if tokens_exist {
        if let Some(text) = pending_text {
            let committed = parse_operator(&text).is_some_and(|t| {
                node.stale_read(|s| s.operator_tokens.values().any(|o| o.id == t.id))
            });
            if committed {
                publish(&pending, &done, &text)?;
            } else {
                let _ = std::fs::remove_file(&pending);
            }
        }
        return Ok(());
    }
    if format < 2 {
        return Ok(());
    }
    let Some(cluster_id) = cluster_id else {
        let init = Command::InitCluster {
            cluster_id: format!("{:016x}", rand::random::<u64>()),
            secret: format!("{:032x}", rand::random::<u128>()),
        };
        node.write(init).await.map_err(|e| e.to_string())?;
        return Ok(());
    };
    // The token carries the root's digest, so that the CLI verifies the cluster from its first
    // request: made once the CA is (moments after the data key), unless that takes long.
    if ca_digest.is_none() && started().elapsed() < CA_WAIT {
        return Ok(());
    }
    let reusable =
        pending_text.filter(|t| parse_operator(t).is_some_and(|p| p.cluster_id == cluster_id));
    let (text, record) = match reusable.and_then(|t| Some((record_of(&t, now_ms)?, t))) {
        Some((record, text)) => (text, record),
        None => {
            let (text, record) = generate_operator(
                &cluster_id,
                ca_digest.as_deref(),
                NAME,
                Role::Admin,
                "bootstrap",
                now_ms,
            );
            write_private(&pending, &text)
                .map_err(|e| format!("writing {}: {e}", pending.display()))?;
            (text, record)
        }
    };
    match node.write(Command::CreateOperatorToken(record)).await {
        Ok(Response::Ok) => publish(&pending, &done, &text),
        Ok(Response::Error(e)) => Err(format!("the first admin token was refused: {}", e.message)),
        Ok(other) => Err(format!("unexpected answer {other:?}")),
        Err(e) => Err(e.to_string()),
    }
}

/// After a rotation of the cluster's root, `DATA_DIR/admin.token` (in `data_dir`, if this member
/// wrote one) carries the new root's `digest`: the token's secret is unchanged and the
/// controllers do not read its digest part, but the CLI verifies members by it, and a file
/// that operators `cat` into `HOIST_TOKEN` should keep working. Answers whether it rewrote it.
pub fn follow_root(data_dir: &Path, digest: &str) -> Result<bool, String> {
    let (_, done) = paths(data_dir);
    let text = match std::fs::read_to_string(&done) {
        Ok(t) => t.trim().to_string(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(format!("reading {}: {e}", done.display())),
    };
    let Some(old) = parse_operator(&text).and_then(|t| t.ca_digest) else {
        return Ok(false);
    };
    if old == digest || !hoist_proto::node::is_ca_digest(digest) {
        return Ok(false);
    }
    let new = text.replacen(&format!("-{old}-"), &format!("-{digest}-"), 1);
    write_private(&done, &new).map_err(|e| format!("writing {}: {e}", done.display()))?;
    Ok(true)
}

/// Moves the committed token into `admin.token` and prints it once.
fn publish(pending: &Path, done: &Path, text: &str) -> Result<(), String> {
    std::fs::rename(pending, done).map_err(|e| format!("renaming to {}: {e}", done.display()))?;
    tracing::info!(path = %done.display(), "made the first admin token");
    println!(
        "The first admin token of this cluster (shown once; also in {}, readable by root only):\n{text}\nUse it with `hoist cluster login --token TOKEN`, or HOIST_TOKEN.",
        done.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_admin_token_file_follows_a_rotated_root() {
        let dir = tempfile::tempdir().unwrap();
        assert!(
            !follow_root(dir.path(), &"4d".repeat(32)).unwrap(),
            "no file"
        );
        let old = "3c".repeat(32);
        let (text, _) = generate_operator(
            "00112233aabbccdd",
            Some(old.as_str()),
            NAME,
            Role::Admin,
            "bootstrap",
            7,
        );
        let file = dir.path().join("admin.token");
        write_private(&file, &text).unwrap();
        let new = "4d".repeat(32);
        assert!(follow_root(dir.path(), &new).unwrap());
        let now = std::fs::read_to_string(&file).unwrap();
        assert_eq!(now.trim(), text.replacen(&old, &new, 1));
        let (a, b) = (
            parse_operator(&text).unwrap(),
            parse_operator(now.trim()).unwrap(),
        );
        assert_eq!((a.id, a.secret), (b.id, b.secret), "the same token");
        assert!(!follow_root(dir.path(), &new).unwrap(), "already");
        assert!(!follow_root(dir.path(), "not a digest").unwrap());
        // A token without a digest (made before the CA) is left alone.
        let (plain, _) =
            generate_operator("00112233aabbccdd", None, NAME, Role::Admin, "bootstrap", 7);
        write_private(&file, &plain).unwrap();
        assert!(!follow_root(dir.path(), &new).unwrap());
    }

    #[test]
    fn a_pending_token_stands_for_one_admin_record() {
        let (text, made) =
            generate_operator("00112233aabbccdd", None, NAME, Role::Admin, "bootstrap", 7);
        let again = record_of(&text, 7).unwrap();
        assert_eq!(again, made);
        assert_eq!(record_of("not a token", 7), None);
    }

    #[test]
    fn the_file_is_private() {
        let dir = std::env::temp_dir().join(format!("hoist-admin-{:x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        let (pending, done) = paths(&dir);
        write_private(&pending, "T").unwrap();
        publish(&pending, &done, "T").unwrap();
        let meta = std::fs::metadata(&done).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read_to_string(&done).unwrap(), "T\n");
        assert!(!pending.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
