//! Keeping the data key where it must be: every member publishes its public key, and the leader
//! seals the data key (making it first if the cluster has none) for every member without a
//! copy. What to do is decided by [`plan`], a pure function of the state; [`run`] does it, and
//! keeps the member's own key file as autolock says (`lock.rs`).

use super::{seal_for_member, DataKey, Keyring};
use crate::raft::RaftNode;
use crate::state::State;
use hoist_proto::files::SealedKey;
use hoist_proto::raft::Command;
use std::sync::Arc;
use std::time::Duration;

/// What the keyring should do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Publish this member's public key.
    Publish,
    /// (Leader) make the cluster's data key and seal it for these members.
    Create { members: Vec<(u64, Vec<u8>)> },
    /// (Leader) seal the existing data key for these members.
    SealFor { members: Vec<(u64, Vec<u8>)> },
    /// (Leader) forget the keys of members no longer in the cluster.
    Forget { members: Vec<u64> },
}

/// The next step for member `me` with public key `public`, given the state.
pub fn plan(
    state: &State,
    me: u64,
    public: &[u8],
    leader: bool,
    have_key: bool,
    members: &std::collections::BTreeSet<u64>,
) -> Option<Step> {
    if state.cluster_format < 2 {
        return None;
    }
    if state
        .member_keys
        .get(&me)
        .is_none_or(|k| k.public_key != public)
    {
        return Some(Step::Publish);
    }
    if !leader {
        return None;
    }
    // A removed member's key goes (its copy of the data key with it). An empty view of the
    // membership (not known yet) removes nothing.
    let gone: Vec<u64> = state
        .member_keys
        .keys()
        .filter(|id| !members.is_empty() && !members.contains(id) && **id != me)
        .copied()
        .collect();
    if !gone.is_empty() {
        return Some(Step::Forget { members: gone });
    }
    let without: Vec<(u64, Vec<u8>)> = state
        .member_keys
        .iter()
        .filter(|(_, k)| k.sealed_data_key.is_empty() && !k.public_key.is_empty())
        .map(|(id, k)| (*id, k.public_key.clone()))
        .collect();
    if state.data_key_id.is_empty() {
        let members = state
            .member_keys
            .iter()
            .map(|(id, k)| (*id, k.public_key.clone()))
            .collect();
        return Some(Step::Create { members });
    }
    (have_key && !without.is_empty()).then_some(Step::SealFor { members: without })
}

fn sealed(key: &DataKey, members: &[(u64, Vec<u8>)]) -> Vec<SealedKey> {
    members
        .iter()
        .filter_map(|(member, public)| {
            Some(SealedKey {
                member: *member,
                public_key: public.clone(),
                sealed: seal_for_member(key, public)?,
            })
        })
        .collect()
}

/// How often the keyring looks again without a change (a lost proposal is retried).
const RETRY: Duration = Duration::from_secs(2);

/// The least time between two looks that found nothing to do: under a stream of writes, the
/// keyring looks a few times a second, not once per applied entry. A look that acted is
/// followed at once by the next (a new cluster's member key, then its data key, are never
/// delayed).
const MIN_PAUSE: Duration = Duration::from_millis(200);

/// Runs until Raft shuts down.
pub async fn run(node: RaftNode, keyring: Arc<Keyring>) {
    let mut applied = node.applied_watch();
    // The sealed unlock key the key file was last made to follow: opened again only when it
    // changes.
    let mut followed: Option<Vec<u8>> = None;
    loop {
        if keyring.is_locked() {
            // Nothing to publish or seal until an operator unlocks this member.
            applied.mark_unchanged();
            if let Ok(Err(_)) = tokio::time::timeout(RETRY, applied.changed()).await {
                return;
            }
            continue;
        }
        // Autolock: keep the private key on disk as the state says (once the data key opens
        // the unlock key).
        let autolock = node.stale_read(|s| {
            if followed.as_ref() == Some(&s.autolock) {
                return None;
            }
            let unlock = match s.autolock.is_empty() {
                true => None,
                false => {
                    let bytes = keyring
                        .data_key(s)?
                        .open(super::lock::AUTOLOCK_AAD, &s.autolock)
                        .ok()?;
                    Some(super::lock::UnlockKey::from_bytes(&bytes)?)
                }
            };
            Some((s.autolock.clone(), unlock))
        });
        if let Some((sealed, unlock)) = autolock {
            match keyring.keep_locked_with(unlock.as_ref()) {
                Ok(()) => followed = Some(sealed),
                Err(e) => {
                    tracing::error!(error = %e, "autolock: cannot rewrite this member's key file")
                }
            }
        }
        let members = node.member_ids();
        let next = node.stale_read(|s| {
            let key = keyring.data_key(s);
            let step = plan(
                s,
                keyring.member(),
                keyring.public_key(),
                node.is_leader(),
                key.is_some(),
                &members,
            );
            step.map(|st| (st, key))
        });
        let acted = next.is_some();
        if let Some((step, key)) = next {
            let command = match &step {
                Step::Publish => Some(Command::SetMemberKey {
                    member: keyring.member(),
                    public_key: keyring.public_key().to_vec(),
                }),
                Step::Create { members } => {
                    let key = Arc::new(DataKey::generate());
                    let keys = sealed(&key, members);
                    tracing::info!(key = %key.id_hex(), members = keys.len(), "made the cluster's data key");
                    keyring.remember(key.clone());
                    Some(Command::SealDataKey {
                        key_id: key.id_hex(),
                        keys,
                    })
                }
                Step::SealFor { members } => key.map(|key| Command::SealDataKey {
                    key_id: key.id_hex(),
                    keys: sealed(&key, members),
                }),
                Step::Forget { members } => Some(Command::RemoveMemberKeys {
                    members: members.clone(),
                }),
            };
            if let Some(command) = command {
                if let Err(e) = node.write(command).await {
                    tracing::debug!(error = %e, ?step, "keyring step not committed; retrying");
                }
            }
        }
        applied.mark_unchanged();
        if let Ok(Err(_)) = tokio::time::timeout(RETRY, applied.changed()).await {
            return;
        }
        if !acted {
            tokio::time::sleep(MIN_PAUSE).await;
        }
    }
}
