use super::sync::{plan, Step};
use super::*;
use crate::state::State;
use hoist_proto::files::{FileKind, MemberKey};

#[test]
fn a_secret_opens_only_with_its_key_and_its_name() {
    let key = DataKey::generate();
    let aad = file_aad(FileKind::Secret, "db-pass");
    let sealed = key.seal(&aad, b"hunter2");
    assert!(is_sealed(&sealed));
    assert!(
        !sealed.windows(7).any(|w| w == b"hunter2"),
        "the value shows through"
    );
    assert_eq!(key.open(&aad, &sealed).unwrap(), b"hunter2");
    // Moved to another name: refused.
    let other = file_aad(FileKind::Secret, "other");
    assert_eq!(key.open(&other, &sealed), Err(OpenError::Forged));
    // A flipped bit: refused.
    let mut bad = sealed.clone();
    *bad.last_mut().unwrap() ^= 1;
    assert_eq!(key.open(&aad, &bad), Err(OpenError::Forged));
    // Another cluster's key: named.
    let e = DataKey::generate().open(&aad, &sealed).unwrap_err();
    assert!(matches!(e, OpenError::OtherKey { .. }), "{e}");
    assert_eq!(key.open(&aad, b"HSEAL1short"), Err(OpenError::Malformed));
    assert!(!is_sealed(b"plain text"));
}

#[test]
fn the_data_key_sealed_for_a_member_opens_with_its_private_key_only() {
    let key = DataKey::generate();
    let secret = StaticSecret::from(rand::random::<[u8; 32]>());
    let public = PublicKey::from(&secret).to_bytes();
    let sealed = seal_for_member(&key, &public).unwrap();
    let opened = open_for_member(&secret, &sealed).unwrap();
    assert_eq!(opened.id_hex(), key.id_hex());
    assert_eq!(opened.key, key.key);
    let stranger = StaticSecret::from(rand::random::<[u8; 32]>());
    assert!(open_for_member(&stranger, &sealed).is_none());
    assert!(
        seal_for_member(&key, &[1, 2, 3]).is_none(),
        "not a public key"
    );
}

#[test]
fn a_member_key_is_made_once_private_and_a_bad_file_is_an_error() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let a = Keyring::open(1, dir.path()).unwrap();
    let b = Keyring::open(1, dir.path()).unwrap();
    assert_eq!(a.public_key(), b.public_key());
    let file = dir.path().join(lock::MEMBER_KEY_FILE);
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    std::fs::write(&file, b"short").unwrap();
    assert!(Keyring::open(1, dir.path()).is_err());
}

fn none() -> std::collections::BTreeSet<u64> {
    std::collections::BTreeSet::new()
}

#[test]
fn plan_forgets_the_keys_of_removed_members_on_the_leader_only() {
    let s = state_with(
        &[
            (1, &[1; 32], true),
            (2, &[2; 32], true),
            (3, &[3; 32], true),
        ],
        "ab",
    );
    let members = std::collections::BTreeSet::from([1, 2]);
    assert_eq!(
        plan(&s, 1, &[1; 32], true, true, &members),
        Some(Step::Forget { members: vec![3] })
    );
    assert_eq!(plan(&s, 2, &[2; 32], false, true, &members), None);
    // Not knowing the membership removes nothing.
    assert_eq!(plan(&s, 1, &[1; 32], true, true, &none()), None);
}

fn state_with(keys: &[(u64, &[u8], bool)], key_id: &str) -> State {
    let mut s = State {
        cluster_format: 2,
        data_key_id: key_id.into(),
        ..State::default()
    };
    for (id, public, sealed) in keys {
        s.member_keys.insert(
            *id,
            MemberKey {
                public_key: public.to_vec(),
                sealed_data_key: if *sealed { vec![1; 80] } else { vec![] },
            },
        );
    }
    s
}

#[test]
fn plan_publishes_then_the_leader_makes_and_seals_the_key() {
    let below = State::default();
    assert_eq!(
        plan(&below, 1, &[1; 32], true, false, &none()),
        None,
        "format < 2"
    );
    let s = state_with(&[], "");
    assert_eq!(
        plan(&s, 1, &[1; 32], true, false, &none()),
        Some(Step::Publish)
    );
    let s = state_with(&[(1, &[9; 32], false)], "");
    assert_eq!(
        plan(&s, 1, &[1; 32], false, false, &none()),
        Some(Step::Publish),
        "key changed"
    );
    let s = state_with(&[(1, &[1; 32], false), (2, &[2; 32], false)], "");
    assert_eq!(
        plan(&s, 2, &[2; 32], false, false, &none()),
        None,
        "a follower waits"
    );
    assert_eq!(
        plan(&s, 1, &[1; 32], true, false, &none()),
        Some(Step::Create {
            members: vec![(1, vec![1; 32]), (2, vec![2; 32])]
        })
    );
    let s = state_with(&[(1, &[1; 32], true), (2, &[2; 32], false)], "ab");
    assert_eq!(
        plan(&s, 1, &[1; 32], true, true, &none()),
        Some(Step::SealFor {
            members: vec![(2, vec![2; 32])]
        })
    );
    assert_eq!(
        plan(&s, 1, &[1; 32], true, false, &none()),
        None,
        "cannot open its own copy"
    );
    let s = state_with(&[(1, &[1; 32], true), (2, &[2; 32], true)], "ab");
    assert_eq!(
        plan(&s, 1, &[1; 32], true, true, &none()),
        None,
        "all sealed"
    );
}
