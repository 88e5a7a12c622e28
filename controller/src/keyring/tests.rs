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
    let member = Keyring::ephemeral(2);
    let sealed = seal_for_member(&key, member.public_key()).unwrap();
    let opened = open_for_member(&member.secret, &sealed).unwrap();
    assert_eq!(opened.id_hex(), key.id_hex());
    assert_eq!(opened.key, key.key);
    let stranger = Keyring::ephemeral(3);
    assert!(open_for_member(&stranger.secret, &sealed).is_none());
    assert!(
        seal_for_member(&key, &[1, 2, 3]).is_none(),
        "not a public key"
    );
}

#[test]
fn a_member_key_file_is_made_once_and_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let a = load_or_create_member_key(dir.path()).unwrap();
    let b = load_or_create_member_key(dir.path()).unwrap();
    assert_eq!(a.as_bytes(), b.as_bytes());
    let mode = std::fs::metadata(dir.path().join(MEMBER_KEY_FILE))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    std::fs::write(dir.path().join(MEMBER_KEY_FILE), b"short").unwrap();
    assert!(load_or_create_member_key(dir.path()).is_err());
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
    assert_eq!(plan(&below, 1, &[1; 32], true, false), None, "format < 2");
    let s = state_with(&[], "");
    assert_eq!(plan(&s, 1, &[1; 32], true, false), Some(Step::Publish));
    let s = state_with(&[(1, &[9; 32], false)], "");
    assert_eq!(
        plan(&s, 1, &[1; 32], false, false),
        Some(Step::Publish),
        "key changed"
    );
    let s = state_with(&[(1, &[1; 32], false), (2, &[2; 32], false)], "");
    assert_eq!(
        plan(&s, 2, &[2; 32], false, false),
        None,
        "a follower waits"
    );
    assert_eq!(
        plan(&s, 1, &[1; 32], true, false),
        Some(Step::Create {
            members: vec![(1, vec![1; 32]), (2, vec![2; 32])]
        })
    );
    let s = state_with(&[(1, &[1; 32], true), (2, &[2; 32], false)], "ab");
    assert_eq!(
        plan(&s, 1, &[1; 32], true, true),
        Some(Step::SealFor {
            members: vec![(2, vec![2; 32])]
        })
    );
    assert_eq!(
        plan(&s, 1, &[1; 32], true, false),
        None,
        "cannot open its own copy"
    );
    let s = state_with(&[(1, &[1; 32], true), (2, &[2; 32], true)], "ab");
    assert_eq!(plan(&s, 1, &[1; 32], true, true), None, "all sealed");
}
