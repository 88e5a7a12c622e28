//! The node's WireGuard key pair: made on this host at first start and kept in
//! `DATA_DIR/overlay/private.key` (mode 0600, in a 0700 directory). Only the public key ever
//! leaves the host.

use super::OverlayError;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use wireguard_control::Key;

/// The key pair (x25519, WireGuard's).
pub struct KeyPair {
    private: Key,
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPair")
            .field("public", &self.public_base64())
            .finish_non_exhaustive()
    }
}

impl KeyPair {
    pub fn public_base64(&self) -> String {
        self.private.get_public().to_base64()
    }

    /// For the device's configuration only; never logged or sent.
    pub(super) fn private_base64(&self) -> String {
        self.private.to_base64()
    }

    /// Loads the pair from `dir/private.key`, or makes one and writes it there first. A key
    /// file readable by others is refused, as `wg` refuses it.
    pub fn load_or_create(dir: &Path) -> Result<KeyPair, OverlayError> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(OverlayError::io(format!("create {}", dir.display())))?;
        let path = dir.join("private.key");
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let mode = std::fs::metadata(&path)
                    .map_err(OverlayError::io(format!("stat {}", path.display())))?
                    .permissions()
                    .mode();
                if mode & 0o077 != 0 {
                    return Err(OverlayError::Invalid(format!(
                        "{} is readable by others (mode {:o}); chmod 600 it",
                        path.display(),
                        mode & 0o777
                    )));
                }
                let private = Key::from_base64(text.trim()).map_err(|_| {
                    OverlayError::Invalid(format!(
                        "{}: not a WireGuard private key",
                        path.display()
                    ))
                })?;
                Ok(KeyPair { private })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let private = Key::generate_private();
                let tmp = dir.join("private.key.tmp");
                let _ = std::fs::remove_file(&tmp);
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&tmp)
                    .map_err(OverlayError::io(format!("create {}", tmp.display())))?;
                writeln!(f, "{}", private.to_base64())
                    .and_then(|_| f.sync_all())
                    .map_err(OverlayError::io(format!("write {}", tmp.display())))?;
                std::fs::rename(&tmp, &path)
                    .map_err(OverlayError::io(format!("rename to {}", path.display())))?;
                tracing::info!(public_key = %private.get_public().to_base64(), "made this node's WireGuard key pair");
                Ok(KeyPair { private })
            }
            Err(e) => Err(OverlayError::io(format!("read {}", path.display()))(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_once_private_to_the_owner_then_reused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("overlay");
        let a = KeyPair::load_or_create(&dir).unwrap();
        let mode = std::fs::metadata(dir.join("private.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let b = KeyPair::load_or_create(&dir).unwrap();
        assert_eq!(a.public_base64(), b.public_base64());
        hoist_proto::overlay::check_public_key(&a.public_base64()).unwrap();
        assert!(
            !format!("{a:?}").contains(&a.private_base64()),
            "Debug hides the private key"
        );
        std::fs::set_permissions(
            dir.join("private.key"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        let e = KeyPair::load_or_create(&dir).unwrap_err().to_string();
        assert!(e.contains("readable by others"), "{e}");
    }
}
