//! The agent's side of the cluster's TLS (a join token `HOIST2-<cluster>-<CA digest>-<secret>`):
//! the node's key, its certificate and the cluster's roots in `DATA_DIR/tls/`, which of them the
//! agent trusts the controllers by, and the HTTP clients built from them. The cryptography is
//! `hoist_transport`'s ([`hoist_transport::pki`], [`hoist_transport::tls`]).
//!
//! - `node.key`: the node's private key (PKCS#8 PEM, 0600), made once and kept across restarts:
//!   it never leaves the host; the controllers see only signing requests for it.
//! - `node.crt`: the node's certificate followed by the cluster's root(s): the chain the agent
//!   presents.
//! - `ca.crt`: the cluster's root certificate(s), as the last registration or renewal answered
//!   (the current root first; during a rotation of the root, the previous one after it).
//! - `ca.anchor`: the digest of the join token through which `ca.crt` was obtained.
//!
//! Trust: once `ca.crt` holds the root whose digest the join token carries, or was obtained
//! through that token (`ca.anchor`: after a rotation of the root the token's digest names a
//! root the cluster dropped, but the roots kept descend from it), the controllers must verify
//! under the roots of `ca.crt` ([`Trust::Roots`]); before that (first contact, or a token for
//! another cluster or CA) under the root with the token's digest only ([`Trust::Pinned`]): no
//! trust on first use.
//!
//! Registration always goes through a client that presents no certificate (the join token is
//! what registers, and a certificate that expired while the agent was off would fail the
//! handshake); every other request through one that presents the node's certificate once a
//! registration gave one.

use hoist_transport::pki;
use hoist_transport::tls::{self, CertRole, Identity, Trust};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};
use tokio::sync::watch;

/// `DATA_DIR/tls`.
pub fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join("tls")
}

/// The node's private key in `dir`.
pub fn key_path(dir: &Path) -> PathBuf {
    dir.join("node.key")
}

/// The chain the node presents (its certificate, then the roots).
pub fn cert_path(dir: &Path) -> PathBuf {
    dir.join("node.crt")
}

/// The cluster's root certificate(s).
pub fn ca_path(dir: &Path) -> PathBuf {
    dir.join("ca.crt")
}

/// The digest of the join token `ca.crt` was obtained through.
pub fn anchor_path(dir: &Path) -> PathBuf {
    dir.join("ca.anchor")
}

/// Makes `dir` (0700) if it is missing.
fn make_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// The node's key in `dir`: the one kept there, or a new one written there (0600) first.
pub fn load_or_make_key(dir: &Path) -> anyhow::Result<String> {
    let path = key_path(dir);
    match std::fs::read_to_string(&path) {
        Ok(pem) => {
            tls::key_from_pem(&pem).map_err(|e| {
                anyhow::anyhow!(
                    "{}: {e} (remove it to make a new key: the node then registers again with \
                     its join token)",
                    path.display()
                )
            })?;
            Ok(pem)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let pem = pki::new_key().map_err(anyhow::Error::msg)?;
            make_dir(dir).map_err(|e| anyhow::anyhow!("make {}: {e}", dir.display()))?;
            hoist_common::private_file::write(&path, pem.as_bytes())
                .map_err(|e| anyhow::anyhow!("write {}: {e}", path.display()))?;
            tracing::info!(path = %path.display(), "made this node's private key");
            Ok(pem)
        }
        Err(e) => Err(anyhow::anyhow!("read {}: {e}", path.display())),
    }
}

/// How to trust the controllers, given the roots kept (`ca_pem`, the text of `ca.crt`), the
/// token they were obtained through (`anchor`, the text of `ca.anchor`) and the digest of the
/// join token: the kept roots when one of them is the token's or they were obtained through
/// it, else only the token's digest. Pure.
pub fn trust_from(ca_pem: Option<&str>, anchor: Option<&str>, token_digest: &str) -> Trust {
    let kept = ca_pem.and_then(|pem| tls::certs_from_pem(pem).ok());
    let through_token = anchor.is_some_and(|a| a.trim() == token_digest);
    match kept {
        Some(roots) if through_token || roots.iter().any(|r| tls::ca_digest(r) == token_digest) => {
            Trust::Roots(roots)
        }
        _ => Trust::Pinned(token_digest.to_string()),
    }
}

/// [`trust_from`] with the `ca.crt` and `ca.anchor` kept in `dir`.
pub fn trust(dir: &Path, token_digest: &str) -> Trust {
    let kept = std::fs::read_to_string(ca_path(dir)).ok();
    let anchor = std::fs::read_to_string(anchor_path(dir)).ok();
    trust_from(kept.as_deref(), anchor.as_deref(), token_digest)
}

/// The digest of the first root of `ca_pem` (the cluster's current one when it was answered).
pub fn first_root_digest(ca_pem: &str) -> Option<String> {
    tls::certs_from_pem(ca_pem)
        .ok()?
        .first()
        .map(|r| tls::ca_digest(r))
}

/// The chain a node presents: its certificate, then the roots. Pure.
pub fn chain(cert_pem: &str, ca_pem: &str) -> String {
    let mut text = cert_pem.trim_end().to_string();
    text.push('\n');
    text.push_str(ca_pem.trim_start());
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text
}

/// When a certificate is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    pub not_before: SystemTime,
    pub not_after: SystemTime,
}

impl Validity {
    /// When to renew, at `fraction` of the lifetime ([`pki::renew_at`]).
    pub fn renew_at(&self, fraction: f64) -> SystemTime {
        pki::renew_at(self.not_before, self.not_after, fraction)
    }

    pub fn expired(&self, now: SystemTime) -> bool {
        now >= self.not_after
    }
}

fn epoch(secs: i64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs.max(0) as u64)
}

/// A node certificate (PEM; the first certificate of the text) and who it names. Pure.
pub fn read_certificate(cert_pem: &str) -> Result<(tls::CertIdentity, Validity), String> {
    let certs = tls::certs_from_pem(cert_pem)?;
    let id =
        tls::identity_of(&certs[0]).ok_or("the certificate names no holder of a Hoist cluster")?;
    let validity = Validity {
        not_before: epoch(id.not_before),
        not_after: epoch(id.not_after),
    };
    Ok((id, validity))
}

/// The agent's TLS state with one cluster (see the module doc).
pub struct NodeTls {
    dir: PathBuf,
    /// The CA digest of the join token.
    digest: String,
    /// The node's private key, PEM.
    key_pem: String,
    /// The SHA-256 of the key's SubjectPublicKeyInfo: what a certificate for it names.
    key_sha256: String,
    /// The certificate in use, once a registration gave one.
    held: watch::Sender<Option<Validity>>,
    /// Whether [`Trust::Pinned`] is in use (no root of the cluster kept yet).
    pinned: AtomicBool,
    /// The digest of the root the certificate in use was answered with (the cluster's current
    /// root then).
    root: std::sync::Mutex<Option<String>>,
    /// Whether the clients ask members for HTTP/2 (see [`http_client`]).
    http2: bool,
}

impl std::fmt::Debug for NodeTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeTls")
            .field("dir", &self.dir)
            .field("digest", &self.digest)
            .field("held", &*self.held.borrow())
            .finish_non_exhaustive()
    }
}

/// The clients a [`NodeTls`] makes: one that registers (no certificate) and one for everything
/// else.
#[derive(Debug, Clone)]
pub struct Clients {
    pub register: reqwest::Client,
    pub other: reqwest::Client,
}

/// Time allowed to connect (and shake hands) with a member.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// A client speaking TLS with `trust`, presenting `identity` when given. With `http2`, over
/// HTTP/2 with the members that offer it, so that the node's long polls, heartbeats and reports
/// share one connection to its member; else over HTTP/1.1, one connection per request in flight.
pub fn http_client(
    trust: Trust,
    identity: Option<Identity>,
    http2: bool,
) -> Result<reqwest::Client, String> {
    let config = tls::client_config(trust, identity)?;
    let builder = if http2 {
        hoist_transport::client::builder_tls_http2(config)
    } else {
        hoist_transport::client::builder_tls(config)
    };
    builder
        .connect_timeout(CONNECT_TIMEOUT)
        .build()
        .map_err(|e| format!("HTTP client: {e}"))
}

impl NodeTls {
    /// The TLS state for a join token carrying `digest`, with the key and roots kept in
    /// `data_dir` (the key is made now if there is none).
    pub fn new(data_dir: &Path, digest: &str) -> anyhow::Result<NodeTls> {
        let dir = dir(data_dir);
        let key_pem = load_or_make_key(&dir)?;
        let key_sha256 = pki::request(&key_pem, CertRole::Node, "key")
            .and_then(|csr| pki::request_key_sha256(&csr))
            .map_err(|e| anyhow::anyhow!("{}: {e}", key_path(&dir).display()))?;
        Ok(NodeTls {
            dir,
            digest: digest.to_string(),
            key_pem,
            key_sha256,
            held: watch::channel(None).0,
            pinned: AtomicBool::new(true),
            root: std::sync::Mutex::new(None),
            http2: true,
        })
    }

    /// Makes the clients ask for HTTP/1.1 only, as agents before HTTP/2 did (for hoist-sim's
    /// `--http1`, which measures what one connection per agent saves).
    pub fn set_http1_only(&mut self) {
        self.http2 = false;
    }

    /// The clients to start with: trusting [`trust`], presenting no certificate.
    pub fn initial_clients(&self) -> anyhow::Result<Clients> {
        let trust = trust(&self.dir, &self.digest);
        self.set_pinned(matches!(trust, Trust::Pinned(_)));
        let c = http_client(trust, None, self.http2).map_err(anyhow::Error::msg)?;
        Ok(Clients {
            register: c.clone(),
            other: c,
        })
    }

    fn set_pinned(&self, pinned: bool) {
        self.pinned.store(pinned, Ordering::Relaxed);
    }

    /// Whether the controllers are trusted by the token's digest only (no root kept yet).
    pub fn pinned(&self) -> bool {
        self.pinned.load(Ordering::Relaxed)
    }

    /// The token's CA digest.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// A signing request for the node's key, naming `id` (informative only).
    pub fn csr(&self, id: &str) -> Result<String, String> {
        pki::request(&self.key_pem, CertRole::Node, id)
    }

    /// The digest of the root the certificate in use was answered with, once there is one.
    pub fn root_digest(&self) -> Option<String> {
        self.root.lock().ok()?.clone()
    }

    /// Whether a registration gave the node a certificate (presented since).
    pub fn has_certificate(&self) -> bool {
        self.held.borrow().is_some()
    }

    /// The certificate in use: its validity, and a watch of its replacements.
    pub fn held(&self) -> watch::Receiver<Option<Validity>> {
        self.held.subscribe()
    }

    /// Takes a certificate and roots the controllers answered: checks that the certificate is a
    /// node's, for this node's key; keeps them in the directory; and makes the clients that
    /// present it and trust those roots.
    pub fn accept(&self, cert_pem: &str, ca_pem: &str) -> Result<(Clients, Validity), String> {
        let (id, validity) = read_certificate(cert_pem)?;
        if id.role != CertRole::Node {
            return Err(format!(
                "the certificate is a {}'s, not a node's",
                id.role.as_str()
            ));
        }
        if id.key_sha256 != self.key_sha256 {
            return Err("the certificate is for another key than this node's".into());
        }
        let roots = tls::certs_from_pem(ca_pem).map_err(|e| format!("the roots: {e}"))?;
        let chain = chain(cert_pem, ca_pem);
        let identity = Identity::from_pem(&chain, &self.key_pem)?;
        let register = http_client(Trust::Roots(roots.clone()), None, self.http2)?;
        let other = http_client(Trust::Roots(roots), Some(identity), self.http2)?;
        save(&self.dir, cert_pem, ca_pem, &self.digest).map_err(|e| format!("keep it: {e}"))?;
        self.set_pinned(false);
        if let Ok(mut root) = self.root.lock() {
            *root = first_root_digest(ca_pem);
        }
        self.held.send_replace(Some(validity));
        tracing::debug!(node = %id.id, not_after = %humantime::format_rfc3339_seconds(validity.not_after), "node certificate in use");
        Ok((Clients { register, other }, validity))
    }
}

/// Keeps a certificate and the roots in `dir`: `node.crt` (the chain, [`chain`]), `ca.crt`, and
/// the digest of the join token they were obtained through (`ca.anchor`).
pub fn save(dir: &Path, cert_pem: &str, ca_pem: &str, token_digest: &str) -> std::io::Result<()> {
    make_dir(dir)?;
    hoist_common::private_file::write(&cert_path(dir), chain(cert_pem, ca_pem).as_bytes())?;
    hoist_common::private_file::write(&ca_path(dir), ca_pem.as_bytes())?;
    hoist_common::private_file::write(&anchor_path(dir), token_digest.as_bytes())
}

/// What a failure to reach a member over TLS means, if it was TLS that failed: the messages of
/// `e`'s causes, from the outermost, and whether the controllers are trusted by the token's
/// digest only.
pub fn tls_failure(addr: &str, causes: &[String], pinned: bool) -> Option<String> {
    let tls = causes.iter().rev().find(|m| {
        let m = m.to_ascii_lowercase();
        m.contains("certificate") || m.contains("alert") || m.contains("handshake")
    })?;
    let refused_ours = tls.to_ascii_lowercase().contains("received fatal alert");
    Some(if refused_ours {
        format!("controller {addr} refused this node's TLS connection: {tls}")
    } else if pinned {
        format!("controller {addr} is not a member of the cluster in the join token: {tls}")
    } else {
        format!(
            "controller {addr} is not a member of this cluster (its certificate does not verify \
             under the cluster's roots in DATA_DIR/tls/ca.crt): {tls}"
        )
    })
}

/// The wait before renewal attempt `attempt` (0-based) after a failure: 5 s doubling to 1 min.
pub fn renewal_backoff(attempt: u32) -> Duration {
    (Duration::from_secs(5) * (1u32 << attempt.min(4))).min(Duration::from_secs(60))
}

#[cfg(test)]
mod tests;
