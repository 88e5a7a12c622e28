//! The cluster's data key: it seals secrets in the Raft log, in snapshots and in backups, so that
//! a copy of a member's log or a downloaded snapshot never holds a secret's value.
//!
//! Why sealed to each member, through Raft: the key must be the same on every member (any of
//! them may seal or open), and a member that joins later, or was upgraded from a version without
//! it, must get it without a channel of its own. Each member keeps an X25519 private key in its
//! data dir (`member.key`, 0600) and publishes the public half (`Command::SetMemberKey`); the
//! leader seals the data key to every public key it sees without a copy
//! (`Command::SealDataKey`), and the first leader to find no data key at all makes it. The log
//! then holds only sealed copies, each opened by one member's private key, as Swarm keeps its
//! Raft encryption key under a key of each manager's own.
//!
//! Constructions, all from RustCrypto and dalek (crates.md; nothing hand-made beyond the wiring):
//! - a secret: ChaCha20-Poly1305 under the data key, a random 96-bit nonce, the kind and name as
//!   associated data: `HSEAL1 ‖ key id (8) ‖ nonce (12) ‖ ciphertext+tag`;
//! - the data key for a member: an ephemeral X25519 exchange with the member's public key,
//!   HKDF-SHA256 over the shared secret (salt: both public keys), ChaCha20-Poly1305 with a zero
//!   nonce (the derived key is used once): `ephemeral public (32) ‖ ciphertext+tag (48)`.

pub mod lock;
mod sync;

pub use sync::run;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use x25519_dalek::{PublicKey, StaticSecret};

/// What every sealed secret starts with.
const SEAL_MAGIC: &[u8] = b"HSEAL1";
const KEY_ID_LEN: usize = 8;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const WRAP_INFO: &[u8] = b"hoist data key for a member v1";

/// The cluster's data key.
#[derive(Clone)]
pub struct DataKey {
    id: [u8; KEY_ID_LEN],
    key: [u8; 32],
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataKey")
            .field("id", &self.id_hex())
            .finish_non_exhaustive()
    }
}

/// Why a sealed value could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error("not a sealed value")]
    Malformed,
    #[error("sealed under data key {found}, and this cluster's is {ours} (a snapshot of another cluster): create it again")]
    OtherKey { found: String, ours: String },
    #[error("the sealed value does not authenticate (corrupted, or not this name's)")]
    Forged,
}

impl DataKey {
    /// A new random key.
    pub fn generate() -> DataKey {
        DataKey::from_bytes(rand::random())
    }

    fn from_bytes(key: [u8; 32]) -> DataKey {
        let digest = Sha256::new()
            .chain_update(b"hoist data key id")
            .chain_update(key)
            .finalize();
        let mut id = [0u8; KEY_ID_LEN];
        id.copy_from_slice(&digest[..KEY_ID_LEN]);
        DataKey { id, key }
    }

    /// The key's public name (hex), which the state records.
    pub fn id_hex(&self) -> String {
        hex::encode(self.id)
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(Key::from_slice(&self.key))
    }

    /// Seals `plaintext`, bound to `aad` (what it is: `secret/NAME`).
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let nonce: [u8; NONCE_LEN] = rand::random();
        let ct = self
            .cipher()
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .expect("ChaCha20-Poly1305 seals any message under 256 GiB");
        let mut out = Vec::with_capacity(SEAL_MAGIC.len() + KEY_ID_LEN + NONCE_LEN + ct.len());
        out.extend_from_slice(SEAL_MAGIC);
        out.extend_from_slice(&self.id);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    /// Opens what [`DataKey::seal`] made with the same `aad`.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, OpenError> {
        let rest = sealed
            .strip_prefix(SEAL_MAGIC)
            .ok_or(OpenError::Malformed)?;
        if rest.len() < KEY_ID_LEN + NONCE_LEN + TAG_LEN {
            return Err(OpenError::Malformed);
        }
        let (id, rest) = rest.split_at(KEY_ID_LEN);
        if id != self.id {
            return Err(OpenError::OtherKey {
                found: hex::encode(id),
                ours: self.id_hex(),
            });
        }
        let (nonce, ct) = rest.split_at(NONCE_LEN);
        self.cipher()
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad })
            .map_err(|_| OpenError::Forged)
    }
}

/// Whether `data` looks sealed (what the state accepts as a secret's content).
pub fn is_sealed(data: &[u8]) -> bool {
    data.starts_with(SEAL_MAGIC)
        && data.len() >= SEAL_MAGIC.len() + KEY_ID_LEN + NONCE_LEN + TAG_LEN
}

fn wrap_cipher(shared: &[u8; 32], ephemeral: &[u8; 32], recipient: &[u8; 32]) -> ChaCha20Poly1305 {
    let mut salt = [0u8; 64];
    salt[..32].copy_from_slice(ephemeral);
    salt[32..].copy_from_slice(recipient);
    let mut key = [0u8; 32];
    hkdf::Hkdf::<Sha256>::new(Some(&salt), shared)
        .expand(WRAP_INFO, &mut key)
        .expect("32 bytes is a valid HKDF-SHA256 length");
    ChaCha20Poly1305::new(Key::from_slice(&key))
}

/// Seals `key` to the member whose public key is `recipient` (32 bytes).
pub fn seal_for_member(key: &DataKey, recipient: &[u8]) -> Option<Vec<u8>> {
    let recipient: [u8; 32] = recipient.try_into().ok()?;
    let ephemeral = StaticSecret::from(rand::random::<[u8; 32]>());
    let ephemeral_public = PublicKey::from(&ephemeral).to_bytes();
    let shared = ephemeral.diffie_hellman(&PublicKey::from(recipient));
    let ct = wrap_cipher(shared.as_bytes(), &ephemeral_public, &recipient)
        .encrypt(Nonce::from_slice(&[0u8; NONCE_LEN]), key.key.as_slice())
        .ok()?;
    let mut out = ephemeral_public.to_vec();
    out.extend_from_slice(&ct);
    Some(out)
}

/// Opens a data key sealed to this member.
pub fn open_for_member(secret: &StaticSecret, sealed: &[u8]) -> Option<DataKey> {
    if sealed.len() != 32 + 32 + TAG_LEN {
        return None;
    }
    let (ephemeral, ct) = sealed.split_at(32);
    let ephemeral: [u8; 32] = ephemeral.try_into().ok()?;
    let mine = PublicKey::from(secret).to_bytes();
    let shared = secret.diffie_hellman(&PublicKey::from(ephemeral));
    let key = wrap_cipher(shared.as_bytes(), &ephemeral, &mine)
        .decrypt(Nonce::from_slice(&[0u8; NONCE_LEN]), ct)
        .ok()?;
    Some(DataKey::from_bytes(key.try_into().ok()?))
}

/// This member's keys and, once opened, the cluster's data key.
pub struct Keyring {
    me: u64,
    public: [u8; 32],
    /// `None` while the member is locked (autolock, after a restart, before `unlock`).
    secret: RwLock<Option<StaticSecret>>,
    data: RwLock<Option<Arc<DataKey>>>,
    /// Where the private key is kept (`None`: only in memory, for tests).
    dir: Option<std::path::PathBuf>,
    /// The id of the unlock key the file on disk is encrypted with (`None`: in the clear).
    locked_with: Mutex<Option<String>>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("me", &self.me)
            .field("locked", &self.is_locked())
            .field(
                "data_key",
                &self.data.read().map(|d| d.is_some()).unwrap_or(false),
            )
            .finish_non_exhaustive()
    }
}

impl Keyring {
    pub fn new(me: u64, secret: StaticSecret) -> Keyring {
        let public = PublicKey::from(&secret).to_bytes();
        Keyring {
            me,
            public,
            secret: RwLock::new(Some(secret)),
            data: RwLock::new(None),
            dir: None,
            locked_with: Mutex::new(None),
        }
    }

    /// This member's keyring from its data dir: the private key in the clear (`member.key`),
    /// or encrypted with the unlock key (`member.key.locked`: the keyring starts locked), or
    /// a new one on a member's first start.
    pub fn open(me: u64, dir: &Path) -> Result<Keyring, String> {
        match lock::read(dir)? {
            lock::OnDisk::Clear(secret) => Ok(Keyring {
                dir: Some(dir.to_path_buf()),
                ..Keyring::new(me, secret)
            }),
            lock::OnDisk::Locked { public, lock_id } => Ok(Keyring {
                me,
                public,
                secret: RwLock::new(None),
                data: RwLock::new(None),
                dir: Some(dir.to_path_buf()),
                locked_with: Mutex::new(Some(lock_id)),
            }),
            lock::OnDisk::None => {
                let secret = StaticSecret::from(rand::random::<[u8; 32]>());
                lock::write_clear(dir, &secret).map_err(|e| e.to_string())?;
                Ok(Keyring {
                    dir: Some(dir.to_path_buf()),
                    ..Keyring::new(me, secret)
                })
            }
        }
    }

    /// A keyring with a fresh private key (tests).
    pub fn ephemeral(me: u64) -> Keyring {
        Keyring::new(me, StaticSecret::from(rand::random::<[u8; 32]>()))
    }

    pub fn member(&self) -> u64 {
        self.me
    }

    pub fn public_key(&self) -> &[u8; 32] {
        &self.public
    }

    /// Whether the private key is still encrypted (autolock, after a restart).
    pub fn is_locked(&self) -> bool {
        self.secret.read().map(|s| s.is_none()).unwrap_or(true)
    }

    /// Opens the private key with the unlock key (`HOISTUK1-...`).
    pub fn unlock(&self, key_text: &str) -> Result<(), lock::UnlockError> {
        if !self.is_locked() {
            return Err(lock::UnlockError::NotLocked);
        }
        let key = lock::UnlockKey::parse(key_text)?;
        let dir = self.dir.as_deref().ok_or(lock::UnlockError::NotLocked)?;
        let secret = lock::open_locked(dir, &key)?;
        if PublicKey::from(&secret).to_bytes() != self.public {
            return Err(lock::UnlockError::WrongKey);
        }
        if let Ok(mut slot) = self.secret.write() {
            *slot = Some(secret);
        }
        tracing::info!("unlocked: this member's key is open again");
        Ok(())
    }

    /// Keeps the private key on disk as autolock says: encrypted with `unlock` (rewritten when
    /// the unlock key changed), or in the clear when autolock is off. Does nothing while locked
    /// or for an in-memory keyring.
    pub fn keep_locked_with(&self, unlock: Option<&lock::UnlockKey>) -> std::io::Result<()> {
        let Some(dir) = self.dir.as_deref() else {
            return Ok(());
        };
        let secret = match self.secret.read() {
            Ok(s) => match s.as_ref() {
                Some(s) => s.clone(),
                None => return Ok(()),
            },
            Err(_) => return Ok(()),
        };
        let mut locked_with = self.locked_with.lock().expect("lock state");
        let want = unlock.map(lock::UnlockKey::id);
        if *locked_with == want {
            return Ok(());
        }
        match unlock {
            Some(key) => {
                lock::write_locked(dir, &secret, key)?;
                tracing::info!("autolock: this member's key is kept encrypted with the unlock key");
            }
            None => {
                lock::write_clear(dir, &secret)?;
                tracing::info!("autolock is off: this member's key is kept in the clear");
            }
        }
        *locked_with = want;
        Ok(())
    }

    /// The cluster's data key, opened from this member's sealed copy in `state` (and kept).
    pub fn data_key(&self, state: &crate::state::State) -> Option<Arc<DataKey>> {
        if state.data_key_id.is_empty() {
            return None;
        }
        if let Some(k) = self.data.read().ok()?.as_ref() {
            if k.id_hex() == state.data_key_id {
                return Some(k.clone());
            }
        }
        let mine = state.member_keys.get(&self.me)?;
        if mine.public_key != self.public {
            return None;
        }
        let key = {
            let secret = self.secret.read().ok()?;
            open_for_member(secret.as_ref()?, &mine.sealed_data_key)?
        };
        if key.id_hex() != state.data_key_id {
            return None;
        }
        let key = Arc::new(key);
        if let Ok(mut slot) = self.data.write() {
            *slot = Some(key.clone());
        }
        Some(key)
    }

    /// Keeps `key` as the data key (the leader that made it).
    fn remember(&self, key: Arc<DataKey>) {
        if let Ok(mut slot) = self.data.write() {
            *slot = Some(key);
        }
    }
}

/// The associated data a file's content is sealed with.
pub fn file_aad(kind: hoist_proto::files::FileKind, name: &str) -> Vec<u8> {
    format!("{kind}/{name}").into_bytes()
}

#[cfg(test)]
mod tests;
