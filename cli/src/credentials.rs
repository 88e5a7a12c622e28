//! The operator's credentials for the controllers: `--token`, else `HOIST_TOKEN`, else the file
//! `hoist cluster login` wrote (`$HOIST_CONFIG_DIR/credentials.json`, mode 0600). Every client
//! of the controllers sends it as `Authorization: Bearer TOKEN`.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::OnceLock;

/// What `hoist cluster login` keeps.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Saved {
    pub token: String,
    /// The cluster the token is for, as the controllers said at login.
    pub cluster_id: Option<String>,
    /// The token's name and role at login.
    pub name: Option<String>,
    pub role: Option<String>,
    /// The controllers logged in through.
    #[serde(default)]
    pub controllers: Vec<String>,
    /// The cluster's root certificate (PEM), as the controllers gave it over a connection
    /// verified with the token's digest.
    #[serde(default)]
    pub ca_certificate: Option<String>,
}

static TOKEN: OnceLock<Option<String>> = OnceLock::new();

/// Where the credentials file lives.
pub fn path() -> PathBuf {
    crate::private_file::config_dir().join("credentials.json")
}

/// The saved credentials, if any (a file that cannot be read is an error worth saying).
pub fn saved() -> Result<Option<Saved>, String> {
    let path = path();
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

pub fn save(s: &Saved) -> Result<(), String> {
    let bytes = serde_json::to_vec_pretty(s).map_err(|e| e.to_string())?;
    crate::private_file::write(&path(), &bytes)
}

/// Forgets the saved credentials; answers whether there were any.
pub fn forget() -> Result<bool, String> {
    match std::fs::remove_file(path()) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(format!("{}: {e}", path().display())),
    }
}

/// Settles the token for this process: `given` (the flag or `HOIST_TOKEN`), else the saved one.
pub fn init(given: Option<String>) {
    let token = given
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .or_else(|| match saved() {
            Ok(s) => s.map(|s| s.token),
            Err(e) => {
                eprintln!("warning: ignoring the saved credentials: {e}");
                None
            }
        });
    let _ = TOKEN.set(token);
}

/// The token to send, if any.
pub fn token() -> Option<&'static str> {
    TOKEN.get().and_then(|t| t.as_deref())
}

/// The cluster id an operator token names (`HOISTOP2-<cluster>-<CA digest>-<id>-<secret>` or
/// `HOISTOP1-<cluster>-<id>-<secret>`).
pub fn cluster_of(token: &str) -> Option<&str> {
    let token = token.trim();
    let rest = token
        .strip_prefix("HOISTOP2-")
        .or_else(|| token.strip_prefix("HOISTOP1-"))?;
    rest.split('-').next().filter(|c| !c.is_empty())
}

/// The digest of the cluster's root an operator token carries (`HOISTOP2`): the CLI then talks
/// TLS to members whose certificate chain holds that root.
pub fn ca_digest_of(token: &str) -> Option<&str> {
    let rest = token.trim().strip_prefix("HOISTOP2-")?;
    rest.split('-')
        .nth(1)
        .filter(|d| d.len() == 64 && d.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `token` (a `HOISTOP2` operator token) carrying `digest` instead of its root's digest: after a
/// rotation of the root the same secret is verified against the new root.
pub fn with_ca_digest(token: &str, digest: &str) -> Option<String> {
    let old = ca_digest_of(token)?;
    let ok = digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit());
    ok.then(|| {
        token
            .trim()
            .replacen(&format!("-{old}-"), &format!("-{digest}-"), 1)
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_cluster_is_read_from_a_token() {
        assert_eq!(super::cluster_of("HOISTOP1-00aa-11bb-22cc"), Some("00aa"));
        assert_eq!(super::cluster_of("HOIST1-00aa-11"), None);
        let digest = "ab".repeat(32);
        let two = format!("HOISTOP2-00aa-{digest}-11-22");
        assert_eq!(super::cluster_of(&two), Some("00aa"));
        let next = "cd".repeat(32);
        assert_eq!(
            super::with_ca_digest(&two, &next).unwrap(),
            format!("HOISTOP2-00aa-{next}-11-22")
        );
        assert_eq!(super::with_ca_digest(&two, "cd"), None);
        assert_eq!(super::with_ca_digest("HOISTOP1-00aa-11-22", &next), None);
        assert_eq!(super::ca_digest_of(&two), Some(digest.as_str()));
        assert_eq!(super::ca_digest_of("HOISTOP1-00aa-11-22"), None);
    }
}
