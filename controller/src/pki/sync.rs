//! Keeping the certificates where they must be: the leader makes the cluster's CA once the
//! cluster has its data key, and every member keeps a current certificate for its listener
//! (signed when the CA appears, renewed at a random point between half and four fifths of its
//! lifetime, and again at once when the roots to trust change: a rotation started or ended).
//! During a rotation the leader also watches who is under the new root and ends the rotation
//! when everyone is (`super::rotation`).

use super::{needs_renewal, open_signer, rotation, trusted_digests, Pki, SignError};
use crate::keyring::Keyring;
use crate::raft::RaftNode;
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
    let record = super::sealed_record(&ca, &key, now, String::new(), String::new());
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

/// How often the leader looks at who is under a new root during a rotation.
const ROTATION_LOOK: Duration = Duration::from_secs(1);

/// The leader, during a rotation: sees which root every member's and node's certificate is
/// under, and ends the rotation once they are all under the new one.
async fn watch_rotation(node: &RaftNode, pki: &Pki) {
    let ca = node.stale_read(|s| s.ca.clone().filter(|c| c.rotating()));
    let Some(ca) = ca else {
        pki.rotation.reset();
        return;
    };
    let Some(root_key_id) = hoist_transport::tls::certs_from_pem(&ca.cert_pem)
        .ok()
        .and_then(|c| hoist_transport::tls::key_id(&c[0]))
    else {
        tracing::error!(root = %ca.digest, "the new root has no key identifier: its rotation cannot be followed");
        return;
    };
    let mut members = std::collections::BTreeMap::new();
    for (id, addr) in node.member_addresses() {
        let served = if id == node.id() {
            match pki.current() {
                Some(c) if c.ca_digest == ca.digest => Ok(root_key_id.clone()),
                Some(_) => Ok(String::new()),
                None => Err("this member serves no certificate".into()),
            }
        } else {
            match pki.client_config() {
                Some(config) => hoist_transport::client::served_certificate(&addr, config, RETRY)
                    .await
                    .and_then(|der| {
                        hoist_transport::tls::identity_of(&der)
                            .map(|i| i.issuer_key_id)
                            .ok_or_else(|| "its certificate names no member".into())
                    }),
                None => Err("this member serves no certificate".into()),
            }
        };
        members.insert(id, served);
    }
    let presented = pki.rotation.nodes();
    let progress = node.stale_read(|s| {
        rotation::progress(
            &ca.digest,
            &root_key_id,
            &members,
            s.nodes.values(),
            &presented,
        )
    });
    let complete = progress.complete();
    pki.rotation.set_progress(Some(progress));
    if complete {
        let digest = ca.digest.clone();
        match node.write(Command::FinishCaRotation { digest }).await {
            Ok(Response::Ok) => {
                pki.rotation.reset();
                tracing::info!(root = %ca.digest, "every member and node is under the new root: the previous root is no longer trusted");
            }
            Ok(other) => {
                tracing::warn!(response = ?other, "the rotation of the root could not end")
            }
            Err(e) => tracing::debug!(error = %e, "the rotation of the root could not end yet"),
        }
    }
}

/// Runs until Raft shuts down.
pub async fn run(node: RaftNode, keyring: Arc<Keyring>, pki: Arc<Pki>) {
    let mut applied = node.applied_watch();
    let mut said_locked = false;
    let mut last_look = std::time::Instant::now()
        .checked_sub(ROTATION_LOOK)
        .unwrap_or_else(std::time::Instant::now);
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
            Some(ca) if needs_renewal(current.as_ref(), &trusted_digests(ca), now) => {
                Some(open_signer(s, &keyring))
            }
            _ => None,
        });
        match ca {
            Some(Ok(ca)) => match pki.renew_own(&ca, now) {
                Ok(cert) => {
                    said_locked = false;
                    if let Some(dir) = pki.data_dir() {
                        match crate::leader::admin_token::follow_root(dir, &cert.ca_digest) {
                            Ok(true) => {
                                tracing::info!(root = %cert.ca_digest, "DATA_DIR/admin.token now carries the new root's digest")
                            }
                            Ok(false) => {}
                            Err(e) => {
                                tracing::warn!(error = %e, "updating DATA_DIR/admin.token for the new root")
                            }
                        }
                    }
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
        if node.is_leader() && last_look.elapsed() >= ROTATION_LOOK {
            last_look = std::time::Instant::now();
            watch_rotation(&node, &pki).await;
        } else if !node.is_leader() {
            pki.rotation.reset();
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
