//! Autolock: a member's private key kept on disk only encrypted with the cluster's unlock key,
//! so that a copy of a member's data dir (or a stolen disk) opens no secret. After a restart
//! the member is locked until an operator gives it the unlock key (`hoist cluster unlock`), as
//! Swarm's managers are with `--autolock`.
//!
//! The unlock key is 32 random bytes (`HOISTUK1-<64 hex>`). The file `member.key.locked` holds
//! `HLOCK1 ‖ public key (32) ‖ unlock key id (8) ‖ salt (16) ‖ nonce (12) ‖ ciphertext+tag`:
//! ChaCha20-Poly1305 under HKDF-SHA256(unlock key, salt), the public key as associated data.
//! The replicated state holds the unlock key sealed under the data key, so that running members
//! can re-encrypt their own key when autolock is turned on or the unlock key changes.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use sha2::{Digest, Sha256};
use std::path::Path;
use x25519_dalek::{PublicKey, StaticSecret};

/// The private key in the clear.
pub const MEMBER_KEY_FILE: &str = "member.key";
/// The private key encrypted with the unlock key.
pub const LOCKED_KEY_FILE: &str = "member.key.locked";

const MAGIC: &[u8] = b"HLOCK1";
const PREFIX: &str = "HOISTUK1-";
const INFO: &[u8] = b"hoist member key lock v1";

/// The cluster's unlock key.
#[derive(Clone, PartialEq, Eq)]
pub struct UnlockKey([u8; 32]);

impl std::fmt::Debug for UnlockKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "UnlockKey({})", self.id())
    }
}

/// Why `unlock` failed.
#[derive(Debug, thiserror::Error)]
pub enum UnlockError {
    #[error("this member is not locked")]
    NotLocked,
    #[error("not an unlock key (they look like HOISTUK1-<64 hex digits>)")]
    Malformed,
    #[error("the unlock key does not open this member's key")]
    WrongKey,
    #[error("{0}")]
    Io(String),
}

impl UnlockKey {
    pub fn generate() -> UnlockKey {
        UnlockKey(rand::random())
    }

    pub fn parse(text: &str) -> Result<UnlockKey, UnlockError> {
        let hex_part = text
            .trim()
            .strip_prefix(PREFIX)
            .ok_or(UnlockError::Malformed)?;
        let bytes = hex::decode(hex_part).map_err(|_| UnlockError::Malformed)?;
        Ok(UnlockKey(
            bytes.try_into().map_err(|_| UnlockError::Malformed)?,
        ))
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<UnlockKey> {
        Some(UnlockKey(bytes.try_into().ok()?))
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// What operators keep and type.
    pub fn text(&self) -> String {
        format!("{PREFIX}{}", hex::encode(self.0))
    }

    /// A public name for it (which one a file is locked with).
    pub fn id(&self) -> String {
        let d = Sha256::new()
            .chain_update(b"hoist unlock key id")
            .chain_update(self.0)
            .finalize();
        hex::encode(&d[..8])
    }

    fn cipher(&self, salt: &[u8]) -> ChaCha20Poly1305 {
        let mut key = [0u8; 32];
        hkdf::Hkdf::<Sha256>::new(Some(salt), &self.0)
            .expand(INFO, &mut key)
            .expect("32 bytes is a valid HKDF-SHA256 length");
        ChaCha20Poly1305::new(Key::from_slice(&key))
    }
}

/// What a data dir holds of the member's key.
pub enum OnDisk {
    Clear(StaticSecret),
    Locked { public: [u8; 32], lock_id: String },
    None,
}

impl std::fmt::Debug for OnDisk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OnDisk::Clear(_) => f.write_str("Clear(..)"),
            OnDisk::Locked { lock_id, .. } => write!(f, "Locked({lock_id})"),
            OnDisk::None => f.write_str("None"),
        }
    }
}

fn invalid(path: &Path, what: &str) -> String {
    format!("{}: {what}", path.display())
}

/// Reads the member's key from `dir`. The clear file wins over a locked one (a crash between
/// writing one and removing the other leaves both; the next sync removes the stale one).
pub fn read(dir: &Path) -> Result<OnDisk, String> {
    let clear = dir.join(MEMBER_KEY_FILE);
    match std::fs::read(&clear) {
        Ok(bytes) => {
            let bytes: [u8; 32] = bytes
                .as_slice()
                .try_into()
                .map_err(|_| invalid(&clear, "not a 32-byte key"))?;
            return Ok(OnDisk::Clear(StaticSecret::from(bytes)));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(invalid(&clear, &e.to_string())),
    }
    let locked = dir.join(LOCKED_KEY_FILE);
    match std::fs::read(&locked) {
        Ok(bytes) => {
            let (public, lock_id) =
                header(&bytes).ok_or_else(|| invalid(&locked, "not a locked member key"))?;
            Ok(OnDisk::Locked { public, lock_id })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(OnDisk::None),
        Err(e) => Err(invalid(&locked, &e.to_string())),
    }
}

const HEADER: usize = 6 + 32 + 8;
const LOCKED_LEN: usize = HEADER + 16 + 12 + 32 + 16;

fn header(bytes: &[u8]) -> Option<([u8; 32], String)> {
    if bytes.len() != LOCKED_LEN || !bytes.starts_with(MAGIC) {
        return None;
    }
    let public: [u8; 32] = bytes[6..38].try_into().ok()?;
    Some((public, hex::encode(&bytes[38..46])))
}

/// The locked file's bytes for `secret` under `key`.
pub fn lock_bytes(secret: &StaticSecret, key: &UnlockKey) -> Vec<u8> {
    let public = PublicKey::from(secret).to_bytes();
    let salt: [u8; 16] = rand::random();
    let nonce: [u8; 12] = rand::random();
    let ct = key
        .cipher(&salt)
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: secret.as_bytes(),
                aad: &public,
            },
        )
        .expect("ChaCha20-Poly1305 seals 32 bytes");
    let mut out = Vec::with_capacity(LOCKED_LEN);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&public);
    out.extend_from_slice(&hex::decode(key.id()).expect("hex id"));
    out.extend_from_slice(&salt);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    out
}

/// Opens the locked file's bytes.
pub fn unlock_bytes(bytes: &[u8], key: &UnlockKey) -> Result<StaticSecret, UnlockError> {
    let (public, lock_id) = header(bytes).ok_or(UnlockError::Malformed)?;
    if lock_id != key.id() {
        return Err(UnlockError::WrongKey);
    }
    let salt = &bytes[HEADER..HEADER + 16];
    let nonce = &bytes[HEADER + 16..HEADER + 28];
    let ct = &bytes[HEADER + 28..];
    let plain = key
        .cipher(salt)
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: ct,
                aad: &public,
            },
        )
        .map_err(|_| UnlockError::WrongKey)?;
    let bytes: [u8; 32] = plain.try_into().map_err(|_| UnlockError::WrongKey)?;
    Ok(StaticSecret::from(bytes))
}

/// Opens `dir`'s locked file with `key`.
pub fn open_locked(dir: &Path, key: &UnlockKey) -> Result<StaticSecret, UnlockError> {
    let bytes = std::fs::read(dir.join(LOCKED_KEY_FILE))
        .map_err(|e| UnlockError::Io(format!("{LOCKED_KEY_FILE}: {e}")))?;
    unlock_bytes(&bytes, key)
}

fn remove_if_there(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Keeps the key in the clear (autolock off, or a new member).
pub fn write_clear(dir: &Path, secret: &StaticSecret) -> std::io::Result<()> {
    hoist_common::private_file::write(&dir.join(MEMBER_KEY_FILE), secret.as_bytes())?;
    remove_if_there(&dir.join(LOCKED_KEY_FILE))
}

/// Keeps the key only encrypted with `key`: the locked file first, then the clear one goes.
pub fn write_locked(dir: &Path, secret: &StaticSecret, key: &UnlockKey) -> std::io::Result<()> {
    hoist_common::private_file::write(&dir.join(LOCKED_KEY_FILE), &lock_bytes(secret, key))?;
    remove_if_there(&dir.join(MEMBER_KEY_FILE))?;
    std::fs::File::open(dir)?.sync_all()
}

/// The associated data the unlock key is sealed with in the state.
pub const AUTOLOCK_AAD: &[u8] = b"autolock/unlock-key";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_locked_key_opens_with_its_unlock_key_only() {
        let secret = StaticSecret::from(rand::random::<[u8; 32]>());
        let key = UnlockKey::generate();
        let bytes = lock_bytes(&secret, &key);
        assert!(!bytes.windows(32).any(|w| w == secret.as_bytes().as_slice()));
        let opened = unlock_bytes(&bytes, &key).unwrap();
        assert_eq!(opened.as_bytes(), secret.as_bytes());
        assert!(matches!(
            unlock_bytes(&bytes, &UnlockKey::generate()),
            Err(UnlockError::WrongKey)
        ));
        let mut bad = bytes.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(matches!(
            unlock_bytes(&bad, &key),
            Err(UnlockError::WrongKey)
        ));
        assert_eq!(UnlockKey::parse(&key.text()).unwrap(), key);
        for text in ["", "HOISTUK1-zz", "HOISTUK1-00", "nope"] {
            assert!(matches!(
                UnlockKey::parse(text),
                Err(UnlockError::Malformed)
            ));
        }
    }

    #[test]
    fn the_files_follow_autolock_and_a_locked_dir_starts_locked() {
        let dir = tempfile::tempdir().unwrap();
        let ring = super::super::Keyring::open(1, dir.path()).unwrap();
        assert!(!ring.is_locked());
        let public = *ring.public_key();
        let key = UnlockKey::generate();
        ring.keep_locked_with(Some(&key)).unwrap();
        assert!(!dir.path().join(MEMBER_KEY_FILE).exists());
        assert!(dir.path().join(LOCKED_KEY_FILE).exists());

        // After a restart: locked, the same public key, opened by the unlock key only.
        let again = super::super::Keyring::open(1, dir.path()).unwrap();
        assert!(again.is_locked());
        assert_eq!(*again.public_key(), public);
        assert!(matches!(
            again.unlock(&UnlockKey::generate().text()),
            Err(UnlockError::WrongKey)
        ));
        again.unlock(&key.text()).unwrap();
        assert!(!again.is_locked());
        assert!(matches!(
            again.unlock(&key.text()),
            Err(UnlockError::NotLocked)
        ));

        // Autolock off: the key is in the clear again, and the next start is unlocked.
        again.keep_locked_with(None).unwrap();
        assert!(!dir.path().join(LOCKED_KEY_FILE).exists());
        let third = super::super::Keyring::open(1, dir.path()).unwrap();
        assert!(!third.is_locked());
        assert_eq!(*third.public_key(), public);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(MEMBER_KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
