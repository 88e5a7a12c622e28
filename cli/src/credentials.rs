//! The operator's credentials for the controllers, first found first:
//!
//! 1. a token given (`--token`, `HOIST_TOKEN`), sent as `Authorization: Bearer TOKEN`;
//! 2. a client certificate given (`--cert FILE --key FILE`, `HOIST_CERT`/`HOIST_KEY`);
//! 3. the token `hoist cluster login` kept (`$HOIST_CONFIG_DIR/credentials.json`, mode 0600);
//! 4. the client certificate `hoist token cert` wrote into the config dir (`operator.crt`,
//!    `operator.key`, `ca.crt`).
//!
//! A client certificate acts as the operator token it was made for (see the controller's
//! `api/operator_certs.rs`): the CLI then talks TLS only, verifying members under the kept root
//! (`ca.crt` beside the certificate), and sends no token. Given with a token, both are sent and
//! the token wins.

use hoist_transport::tls::{self, Identity, Trust};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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

/// What the command line and environment gave ([`init`]).
#[derive(Debug, Default)]
struct Given {
    token: Option<String>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
}

static GIVEN: OnceLock<Given> = OnceLock::new();
/// The credentials settled from [`GIVEN`] and the saved files, at their first use (commands
/// that talk only to the local agent read no file).
static SETTLED: OnceLock<Settled> = OnceLock::new();

/// A token to send, and a client certificate to present or why a given one cannot be used.
type Settled = (Option<String>, Result<Option<ClientCert>, String>);

/// The files `hoist token cert` writes, and later commands read, in a directory.
pub const CERT_FILE: &str = "operator.crt";
pub const KEY_FILE: &str = "operator.key";
pub const CA_FILE: &str = "ca.crt";

/// An operator's client certificate and how members are verified when it is used.
#[derive(Debug, Clone)]
pub struct ClientCert {
    pub identity: Identity,
    /// The cluster's root (`ca.crt` beside the certificate, else the root after it).
    pub trust: Trust,
    /// The certificate's file.
    pub path: PathBuf,
}

/// Reads the client certificate `cert` (the certificate, then optionally the root) with its
/// key `key`; the message says what is wrong and what to do.
pub fn load_certificate(cert: &Path, key: &Path) -> Result<ClientCert, String> {
    let read = |p: &Path| std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()));
    let chain_pem = read(cert)?;
    let key_pem = read(key)?;
    let identity = Identity::from_pem(&chain_pem, &key_pem)
        .map_err(|e| format!("{} with {}: {e}", cert.display(), key.display()))?;
    let who = identity
        .chain
        .first()
        .and_then(|leaf| tls::identity_of(leaf))
        .filter(|w| w.role == tls::CertRole::Operator)
        .ok_or_else(|| {
            format!(
                "{} is not an operator's certificate of a Hoist cluster (get one with `hoist \
                 token cert`)",
                cert.display()
            )
        })?;
    if who.not_after <= now_s() {
        return Err(format!(
            "the certificate {} ended at {}: get a new one with a token (`hoist token cert`)",
            cert.display(),
            humantime::format_rfc3339_seconds(
                UNIX_EPOCH + Duration::from_secs(who.not_after.max(0) as u64)
            )
        ));
    }
    let beside = cert.with_file_name(CA_FILE);
    let roots = match std::fs::read_to_string(&beside) {
        Ok(pem) => tls::certs_from_pem(&pem).map_err(|e| format!("{}: {e}", beside.display()))?,
        Err(_) if identity.chain.len() > 1 => identity.chain[identity.chain.len() - 1..].to_vec(),
        Err(_) => {
            return Err(format!(
                "no root to verify members by: put the cluster's root (`hoist cluster ca`) in {}",
                beside.display()
            ))
        }
    };
    let trust = Trust::Roots(roots);
    // Checks that the key is the certificate's, and the root usable, before any request.
    tls::client_config(trust.clone(), Some(identity.clone()))
        .map_err(|e| format!("{} with {}: {e}", cert.display(), key.display()))?;
    Ok(ClientCert {
        identity,
        trust,
        path: cert.to_path_buf(),
    })
}

fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

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

/// Takes what the command line and environment give: `token` (the flag or `HOIST_TOKEN`),
/// `cert` and `key` (the flags or `HOIST_CERT`, `HOIST_KEY`). The credentials are settled at
/// their first use (see the module doc).
pub fn init(token: Option<String>, cert: Option<PathBuf>, key: Option<PathBuf>) {
    let _ = GIVEN.set(Given { token, cert, key });
}

/// The credentials of this process: a token, and a client certificate or why a given one
/// cannot be used (an error of the controller commands only).
fn settled() -> &'static Settled {
    SETTLED.get_or_init(|| {
        let given = GIVEN.get_or_init(Given::default);
        settle(given.token.clone(), given.cert.clone(), given.key.clone())
    })
}

fn settle(given: Option<String>, cert: Option<PathBuf>, key: Option<PathBuf>) -> Settled {
    let given = given
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty());
    let given_cert = match (cert, key) {
        (Some(c), Some(k)) => Some(load_certificate(&c, &k)),
        (Some(_), None) => Some(Err(
            "--cert needs --key (HOIST_KEY): the certificate's private key".to_string(),
        )),
        (None, Some(_)) => Some(Err(
            "--key needs --cert (HOIST_CERT): the certificate it is the key of".to_string(),
        )),
        (None, None) => None,
    };
    let saved_token = || match saved() {
        Ok(s) => s.map(|s| s.token),
        Err(e) => {
            eprintln!("warning: ignoring the saved credentials: {e}");
            None
        }
    };
    choose(given, given_cert, saved_token, kept_certificate)
}

/// The order of the module doc: a given token (with a given certificate beside it, if any),
/// a given certificate, the saved token, the kept certificate. The saved ones are read only
/// when nothing was given.
fn choose<C>(
    given: Option<String>,
    given_cert: Option<Result<C, String>>,
    saved_token: impl FnOnce() -> Option<String>,
    kept_cert: impl FnOnce() -> Option<C>,
) -> (Option<String>, Result<Option<C>, String>) {
    match (given, given_cert) {
        (Some(t), c) => (Some(t), c.transpose()),
        (None, Some(c)) => (None, c.map(Some)),
        (None, None) => match saved_token() {
            Some(t) => (Some(t), Ok(None)),
            None => (None, Ok(kept_cert())),
        },
    }
}

/// The certificate `hoist token cert` wrote into the config dir, when it is there and usable
/// (an ended one is said and passed over).
fn kept_certificate() -> Option<ClientCert> {
    let dir = crate::private_file::config_dir();
    let (cert, key) = (dir.join(CERT_FILE), dir.join(KEY_FILE));
    if !cert.exists() || !key.exists() {
        return None;
    }
    match load_certificate(&cert, &key) {
        Ok(c) => Some(c),
        Err(e) => {
            eprintln!("warning: not using the kept client certificate: {e}");
            None
        }
    }
}

/// The token to send, if any.
pub fn token() -> Option<&'static str> {
    settled().0.as_deref()
}

/// The client certificate to present, if any; an error when one was given and cannot be used.
pub fn certificate() -> Result<Option<&'static ClientCert>, String> {
    match &settled().1 {
        Ok(c) => Ok(c.as_ref()),
        Err(e) => Err(e.clone()),
    }
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
    use super::*;

    #[test]
    fn a_token_given_comes_first_then_a_certificate_given_then_the_saved_ones() {
        let t = |s: &str| Some(s.to_string());
        let never = || -> Option<String> { panic!("read although something was given") };
        let never_cert = || -> Option<u8> { panic!("read although something was given") };
        assert_eq!(choose(t("T"), None, never, never_cert), (t("T"), Ok(None)));
        assert_eq!(
            choose(t("T"), Some(Ok(1)), never, never_cert),
            (t("T"), Ok(Some(1))),
            "both given: both sent (the token wins at the controller)"
        );
        assert_eq!(
            choose(None, Some(Ok(1)), never, never_cert),
            (None, Ok(Some(1)))
        );
        assert_eq!(
            choose::<u8>(None, Some(Err("bad".into())), never, never_cert),
            (None, Err("bad".into()))
        );
        assert_eq!(
            choose(None, None, || t("S"), never_cert),
            (t("S"), Ok(None)),
            "a kept login before a kept certificate"
        );
        assert_eq!(choose(None, None, || None, || Some(2)), (None, Ok(Some(2))));
        assert_eq!(choose::<u8>(None, None, || None, || None), (None, Ok(None)));
    }

    /// A directory of this test's own, emptied.
    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("hoist-cred-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A certificate of `role` signed by `ca` for `life` seconds from `from` (a Unix time).
    fn signed(
        ca: &hoist_transport::pki::Ca,
        role: tls::CertRole,
        from: u64,
        life: u64,
    ) -> (String, String) {
        let key = hoist_transport::pki::new_key().unwrap();
        let csr = hoist_transport::pki::request(&key, role, "x").unwrap();
        let subject = hoist_transport::pki::Subject {
            role,
            id: "0a1b2c3d".into(),
            addresses: vec![],
        };
        let at = UNIX_EPOCH + Duration::from_secs(from);
        let cert =
            hoist_transport::pki::sign(ca, &csr, &subject, at, Duration::from_secs(life)).unwrap();
        (cert, key)
    }

    #[test]
    fn a_client_certificate_is_read_with_its_root_and_refused_when_unusable() {
        hoist_common::init_tls();
        let ca = hoist_transport::pki::make_ca("c", SystemTime::now()).unwrap();
        let now = now_s() as u64;
        let dir = scratch("load");
        let (cert, key) = signed(&ca, tls::CertRole::Operator, now, 3600);
        let write = |name: &str, text: &str| std::fs::write(dir.join(name), text).unwrap();
        let load = || load_certificate(&dir.join(CERT_FILE), &dir.join(KEY_FILE));
        // The certificate then the root, as `hoist token cert` writes it: the root after it
        // is used when there is no ca.crt beside it.
        write(CERT_FILE, &format!("{cert}{}", ca.cert_pem));
        write(KEY_FILE, &key);
        let c = load().unwrap();
        assert!(matches!(&c.trust, Trust::Roots(r) if r.len() == 1));
        // The certificate alone needs ca.crt.
        write(CERT_FILE, &cert);
        let e = load().unwrap_err();
        assert!(e.contains("ca.crt"), "{e}");
        write(CA_FILE, &ca.cert_pem);
        load().unwrap();
        // Another key, an ended certificate, a node's certificate: said, with what to do.
        write(KEY_FILE, &hoist_transport::pki::new_key().unwrap());
        assert!(load().is_err());
        let (ended, key) = signed(&ca, tls::CertRole::Operator, now - 7200, 3600);
        write(CERT_FILE, &ended);
        write(KEY_FILE, &key);
        let e = load().unwrap_err();
        assert!(e.contains("ended") && e.contains("hoist token cert"), "{e}");
        let (node, key) = signed(&ca, tls::CertRole::Node, now, 3600);
        write(CERT_FILE, &node);
        write(KEY_FILE, &key);
        let e = load().unwrap_err();
        assert!(e.contains("not an operator's certificate"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

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
