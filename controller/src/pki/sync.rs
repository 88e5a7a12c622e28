//! Keeping the certificates where they must be: the leader makes the cluster's CA once the
//! cluster has its data key, and every member keeps a current certificate for its listener
//! (signed when the CA appears, renewed at a random point between half and four fifths of its
//! lifetime, and again at once when the root changes).

use super::{needs_renewal, open_ca, Pki, SignError, CA_KEY_AAD};
use crate::keyring::Keyring;
use crate::raft::RaftNode;
use hoist_proto::cluster::ClusterCa;
use hoist_proto::raft::{Command, Response};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// The longest the loop sleeps without a change (a lost proposal is retried).
const RETRY: Duration = Duration::from_secs(2);

/// The shortest pause between two looks: a busy cluster applies thousands of entries a second,
/// and none of them is worth more than one look per this.
const THROTTLE: Duration = Duration::from_millis(100);

/// Makes the cluster's CA (the leader, when there is none): the root's key is sealed under the
/// data key before it goes into the log. Answers once the CA is in the state (this one, or
/// another member's that won the race).
pub async fn make_ca(node: &RaftNode, keyring: &Keyring) -> Result<(), String> {
    let (cluster_id, key, exists) = node.stale_read(|s| {
        (
            s.identity.as_ref().map(|i| i.cluster_id.clone()),
            keyring.data_key(s),
            s.ca.is_some(),
        )
    });
    if exists {
        return Ok(());
    }
    let key = key.ok_or("the cluster has no data key yet")?;
    let now = SystemTime::now();
    let ca = hoist_transport::pki::make_ca(cluster_id.as_deref().unwrap_or("unnamed"), now)?;
    let record = ClusterCa {
        cert_pem: ca.cert_pem,
        sealed_key: key.seal(CA_KEY_AAD, ca.key_pem.as_bytes()),
        digest: ca.digest.clone(),
        created_ms: now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
    };
    match node.write(Command::SetClusterCa(Box::new(record))).await {
        Ok(Response::Error(e)) if node.stale_read(|s| s.ca.is_none()) => Err(e.message),
        Ok(_) => {
            if node.stale_read(|s| s.ca.as_ref().is_some_and(|c| c.digest == ca.digest)) {
                tracing::info!(digest = %ca.digest, "made the cluster's root certificate authority");
            }
            Ok(())
        }
        Err(e) => Err(e.to_string()),
    }
}

/// Runs until Raft shuts down.
pub async fn run(node: RaftNode, keyring: Arc<Keyring>, pki: Arc<Pki>) {
    let mut applied = node.applied_watch();
    let mut said_locked = false;
    loop {
        let make = node.is_leader()
            && node.stale_read(|s| {
                s.cluster_format >= 2 && s.ca.is_none() && keyring.data_key(s).is_some()
            });
        if make {
            if let Err(e) = make_ca(&node, &keyring).await {
                tracing::debug!(error = %e, "cluster CA not made yet; retrying");
            }
        }
        let now = SystemTime::now();
        let current = pki.current();
        let ca = node.stale_read(|s| match &s.ca {
            Some(ca) if needs_renewal(current.as_ref(), &ca.digest, now) => {
                Some(open_ca(s, &keyring))
            }
            _ => None,
        });
        match ca {
            Some(Ok(ca)) => match pki.renew_own(&ca, now) {
                Ok(cert) => {
                    said_locked = false;
                    tracing::info!(
                        root = %cert.ca_digest,
                        valid_until = %humantime::format_rfc3339_seconds(cert.not_after),
                        "serving TLS with a new member certificate"
                    );
                }
                Err(e) => tracing::error!(error = %e, "cannot sign this member's certificate"),
            },
            Some(Err(SignError::Locked)) if !said_locked => {
                said_locked = true;
                tracing::warn!("this member cannot open the cluster CA (locked): it serves plain HTTP only until unlocked");
            }
            Some(Err(e)) if !matches!(e, SignError::Locked) => {
                tracing::error!(error = %e, "cannot sign this member's certificate")
            }
            _ => {}
        }
        let wait = pki
            .current()
            .map_or(RETRY, |c| {
                c.renew_at.duration_since(now).unwrap_or(Duration::ZERO)
            })
            .min(RETRY);
        applied.mark_unchanged();
        tokio::select! {
            changed = applied.changed() => if changed.is_err() { return },
            _ = tokio::time::sleep(wait) => {}
        }
        tokio::time::sleep(THROTTLE).await;
    }
}
