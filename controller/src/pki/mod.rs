//! The cluster's certificate authority on the controllers: the root made once by a leader, its
//! key sealed under the data key in the replicated state, node certificates signed from the
//! agents' requests, and each member's own certificate for its listener.
//!
//! Why the CA key lives in the replicated state, sealed: any member may become leader and must
//! then sign registrations, so every member needs the key; the data key (`crate::keyring`)
//! already reaches every member and only members, and keeps the log, snapshots and backups free
//! of the key in clear. A member that cannot open it (locked by autolock) signs nothing and
//! serves plain HTTP only until it is unlocked.
//!
//! Why members sign their own listener certificate: it needs nothing from the leader (no round
//! trip, no Raft write) and its private key never leaves the member's memory; a restart makes a
//! new one.

pub mod rotation;
pub mod sync;

use crate::keyring::Keyring;
use crate::state::State;
use hoist_transport::client::PeerClients;
use hoist_transport::pki::{self, Ca, Subject};
use hoist_transport::tls::{self, CertRole};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::sync::watch;

/// The associated data the CA's private key is sealed with.
pub const CA_KEY_AAD: &[u8] = b"hoist cluster CA key";

/// Why a certificate could not be signed here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    #[error("the cluster has no certificate authority yet (it is made once the cluster runs at format 2 and has its data key): retry shortly")]
    NoCa,
    #[error("this member cannot open the cluster CA's key: it is locked (`hoist cluster unlock`) or has no copy of the data key yet")]
    Locked,
    #[error("the cluster CA's key does not open: {0}")]
    Corrupt(String),
    #[error("{0}")]
    Request(String),
}

/// `ca` as the state keeps it: its key sealed under `data_key`, made at `now`, with the root it
/// replaces and its cross-signature by that root during a rotation (empty otherwise).
pub fn sealed_record(
    ca: &Ca,
    data_key: &crate::keyring::DataKey,
    now: SystemTime,
    previous_pem: String,
    cross_pem: String,
) -> hoist_proto::cluster::ClusterCa {
    hoist_proto::cluster::ClusterCa {
        cert_pem: ca.cert_pem.clone(),
        sealed_key: data_key.seal(CA_KEY_AAD, ca.key_pem.as_bytes()),
        digest: ca.digest.clone(),
        created_ms: now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
        previous_pem,
        cross_pem,
    }
}

/// The CA of `state`, with its private key opened with this member's copy of the data key.
pub fn open_ca(state: &State, keyring: &Keyring) -> Result<Ca, SignError> {
    open_signer(state, keyring).map(|s| s.ca)
}

/// The CA of `state` opened ([`open_ca`]), with what a certificate it signs is handed out with.
pub fn open_signer(state: &State, keyring: &Keyring) -> Result<Signer, SignError> {
    let ca = state.ca.as_ref().ok_or(SignError::NoCa)?;
    let key = keyring.data_key(state).ok_or(SignError::Locked)?;
    let key_pem = key
        .open(CA_KEY_AAD, &ca.sealed_key)
        .map_err(|e| SignError::Corrupt(e.to_string()))?;
    Ok(Signer {
        ca: Ca {
            cert_pem: ca.cert_pem.clone(),
            key_pem: String::from_utf8(key_pem)
                .map_err(|_| SignError::Corrupt("not a PEM text".into()))?,
            digest: ca.digest.clone(),
        },
        intermediates: ca.intermediates_pem().to_string(),
        roots: ca.trusted_pem(),
    })
}

/// The cluster's CA, opened, and what the certificates it signs are handed out with.
#[derive(Debug, Clone)]
pub struct Signer {
    pub ca: Ca,
    /// PEM to present after a certificate it signs: the root cross-signed by the previous one
    /// during a rotation, nothing otherwise.
    pub intermediates: String,
    /// PEM: the roots to trust now, the current one first (and the previous one during a
    /// rotation).
    pub roots: String,
}

impl Signer {
    /// A certificate signed here, with what it is presented with (PEM): the certificate, then
    /// the intermediates.
    pub fn with_intermediates(&self, cert_pem: &str) -> String {
        join_pem(&[cert_pem, &self.intermediates])
    }
}

/// PEM texts one after the other, each ending with a newline.
pub fn join_pem(texts: &[&str]) -> String {
    let mut out = String::new();
    for t in texts.iter().map(|t| t.trim()).filter(|t| !t.is_empty()) {
        out.push_str(t);
        out.push('\n');
    }
    out
}

/// This member's TLS: its private key, its certificate, the listener's current configuration,
/// the client its peers are called with, and the lifetime of the certificates it signs.
#[derive(Debug)]
pub struct Pki {
    member: u64,
    key_pem: String,
    /// Where the key and certificate are kept (`DATA_DIR/tls`); none in tests.
    dir: Option<PathBuf>,
    /// How this member calls the others: given the mutual-TLS client at every new certificate.
    peers: Arc<PeerClients>,
    /// The addresses this member's certificate names besides [`tls::MEMBER_NAME`].
    addresses: Vec<IpAddr>,
    /// How long node certificates live (`--cert-lifetime`).
    pub cert_lifetime: Duration,
    tls: watch::Sender<Option<Arc<rustls::ServerConfig>>>,
    current: Mutex<Option<MemberCert>>,
    /// The mutual-TLS client configuration of the certificate served now: the leader asks
    /// other members which certificate they serve with it during a rotation.
    client: Mutex<Option<Arc<rustls::ClientConfig>>>,
    /// How a rotation of the root is going, as the leader last saw it.
    pub rotation: rotation::Tracker,
    /// `--unsafe-plain-peers`: peers are called, and taken, over plain HTTP.
    plain_peers: bool,
}

/// The certificate this member serves with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberCert {
    /// The digest of the root it was signed under.
    pub ca_digest: String,
    /// The digests of the roots this member trusts with it (the current one first).
    pub trusted: Vec<String>,
    /// When to sign a new one.
    pub renew_at: SystemTime,
    pub not_after: SystemTime,
}

impl Pki {
    /// `member` reached at `advertise` (`HOST:PORT`), with a key in memory only; `peers` gets
    /// the mutual-TLS client at every new certificate.
    pub fn new(
        member: u64,
        advertise: &str,
        cert_lifetime: Duration,
        peers: Arc<PeerClients>,
    ) -> Result<Pki, String> {
        let host = advertise
            .rsplit_once(':')
            .map_or(advertise, |(h, _)| h)
            .trim_matches(['[', ']']);
        let addresses = host.parse::<IpAddr>().into_iter().collect();
        Ok(Pki {
            member,
            key_pem: pki::new_key()?,
            dir: None,
            peers,
            addresses,
            cert_lifetime,
            tls: watch::channel(None).0,
            current: Mutex::new(None),
            client: Mutex::new(None),
            rotation: rotation::Tracker::default(),
            plain_peers: false,
        })
    }

    /// With `plain`, peers are called over plain HTTP and plain Raft RPCs are taken although
    /// this member has a certificate: only to measure what mutual TLS costs.
    pub fn with_plain_peers(self, plain: bool) -> Pki {
        if plain {
            tracing::warn!("--unsafe-plain-peers: Raft between members is not authenticated");
            self.peers.clear_tls();
        }
        Pki {
            plain_peers: plain,
            ..self
        }
    }

    /// Whether peers must present a member's certificate (this member has one, and plain peers
    /// were not asked for).
    pub fn requires_peer_certificates(&self) -> bool {
        !self.plain_peers && self.current().is_some()
    }

    /// As [`Pki::new`], keeping the key (made once, 0600) and the certificate in `dir`: a
    /// restarted member serves TLS with its certificate at once, before it can sign (a locked
    /// member cannot until it is unlocked).
    pub fn open(
        member: u64,
        advertise: &str,
        cert_lifetime: Duration,
        peers: Arc<PeerClients>,
        dir: &Path,
    ) -> Result<Pki, String> {
        let key_path = dir.join(KEY_FILE);
        let key_pem = match std::fs::read_to_string(&key_path) {
            Ok(k) => k,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let k = pki::new_key()?;
                std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
                hoist_common::private_file::write(&key_path, k.as_bytes())
                    .map_err(|e| format!("{}: {e}", key_path.display()))?;
                k
            }
            Err(e) => return Err(format!("{}: {e}", key_path.display())),
        };
        let me = Pki {
            key_pem,
            dir: Some(dir.to_path_buf()),
            ..Pki::new(member, advertise, cert_lifetime, peers)?
        };
        if let Ok(chain) = std::fs::read_to_string(dir.join(CERT_FILE)) {
            match me.install(&chain, false) {
                Ok(c) => tracing::info!(
                    root = %c.ca_digest,
                    valid_until = %humantime::format_rfc3339_seconds(c.not_after),
                    "serving TLS with this member's certificate"
                ),
                Err(e) => {
                    tracing::warn!(error = %e, "this member's certificate is not usable; a new one is signed once the CA opens")
                }
            }
        }
        Ok(me)
    }

    /// The listener's TLS configurations as they change (`hoist_transport::serve_tls`).
    pub fn tls_source(&self) -> hoist_transport::TlsSource {
        self.tls.subscribe()
    }

    /// The certificate served now, if any.
    pub fn current(&self) -> Option<MemberCert> {
        self.current.lock().ok()?.clone()
    }

    /// A signing request for this member's key (a joining member sends it to the cluster).
    pub fn request(&self) -> Result<String, String> {
        pki::request(&self.key_pem, CertRole::Member, &self.member.to_string())
    }

    /// Signs a new certificate for this member's listener with `signer` and serves with it.
    pub fn renew_own(&self, signer: &Signer, now: SystemTime) -> Result<MemberCert, String> {
        let csr = self.request()?;
        let cert = sign_member(
            &signer.ca,
            &csr,
            self.member,
            &self.addresses,
            now,
            self.cert_lifetime,
        )?;
        self.install(
            &join_pem(&[&signer.with_intermediates(&cert), &signer.roots]),
            true,
        )
    }

    /// The member's data dir (the parent of `DATA_DIR/tls`), when it keeps its files.
    pub fn data_dir(&self) -> Option<&Path> {
        self.dir.as_deref().and_then(Path::parent)
    }

    /// The mutual-TLS client configuration of the certificate served now.
    pub fn client_config(&self) -> Option<Arc<rustls::ClientConfig>> {
        self.client.lock().ok()?.clone()
    }

    /// Serves with `chain` from now on, and calls peers with it; kept in the data dir when
    /// `keep`. The chain is this member's certificate, any intermediates (the cross-signed root
    /// during a rotation), then the roots to trust (self-issued; the current one first). All
    /// of it is presented: a client pinned to a root's digest finds that root in it.
    pub fn install(&self, chain: &str, keep: bool) -> Result<MemberCert, String> {
        let identity = tls::Identity::from_pem(chain, &self.key_pem)?;
        let (presented, roots) = tls::split_roots(identity.chain.clone());
        if presented.is_empty() || roots.is_empty() {
            return Err("the certificate file holds no certificate, or no root after it".into());
        }
        let leaf = tls::identity_of(&presented[0]).ok_or("the certificate names no one")?;
        if leaf.role != CertRole::Member || leaf.id != self.member.to_string() {
            return Err(format!(
                "the certificate is for {} {}, not member {}",
                leaf.role.as_str(),
                leaf.id,
                self.member
            ));
        }
        let at = |secs: i64| SystemTime::UNIX_EPOCH + Duration::from_secs(secs.max(0) as u64);
        let not_after = at(leaf.not_after);
        if not_after <= SystemTime::now() {
            return Err(format!(
                "the certificate expired at {}",
                humantime::format_rfc3339_seconds(not_after)
            ));
        }
        let config =
            tls::server_config_alpn(identity.clone(), &roots, &[hoist_proto::peer_link::ALPN])?;
        let trusted = roots.iter().map(|r| tls::ca_digest(r)).collect::<Vec<_>>();
        let client_config = tls::client_config(tls::Trust::Roots(roots), Some(identity))?;
        let client = hoist_transport::client::builder_tls(client_config.clone())
            .connect_timeout(Duration::from_millis(500))
            .tcp_nodelay(true)
            .build()
            .map_err(|e| format!("peer client: {e}"))?;
        let made = MemberCert {
            ca_digest: trusted[0].clone(),
            trusted,
            renew_at: pki::renew_at(at(leaf.not_before), not_after, pki::renewal_fraction()),
            not_after,
        };
        if keep {
            if let Some(dir) = &self.dir {
                let path = dir.join(CERT_FILE);
                hoist_common::private_file::write(&path, chain.as_bytes())
                    .map_err(|e| format!("{}: {e}", path.display()))?;
            }
        }
        self.tls.send_replace(Some(config));
        if !self.plain_peers {
            self.peers.set_tls(client);
            let mut link = client_config.clone();
            link.alpn_protocols = vec![hoist_proto::peer_link::ALPN.to_vec()];
            self.peers.set_stream_tls(Arc::new(link));
        }
        if let Ok(mut slot) = self.client.lock() {
            *slot = Some(Arc::new(client_config));
        }
        if let Ok(mut slot) = self.current.lock() {
            *slot = Some(made.clone());
        }
        Ok(made)
    }

    /// A certificate for member `member` (a joining one) from its request, signed under `ca`.
    pub fn sign_member(
        &self,
        ca: &Ca,
        member: u64,
        address: &str,
        csr: &str,
    ) -> Result<String, SignError> {
        let addresses: Vec<IpAddr> = address
            .parse::<std::net::SocketAddr>()
            .map(|a| vec![a.ip()])
            .unwrap_or_default();
        sign_member(
            ca,
            csr,
            member,
            &addresses,
            SystemTime::now(),
            self.cert_lifetime,
        )
        .map_err(SignError::Request)
    }

    /// A certificate for node `node` from the agent's request, signed under `ca`.
    pub fn sign_node(&self, ca: &Ca, node: &str, csr: &str) -> Result<String, SignError> {
        let subject = Subject {
            role: CertRole::Node,
            id: node.to_string(),
            addresses: Vec::new(),
        };
        pki::sign(ca, csr, &subject, SystemTime::now(), self.cert_lifetime)
            .map_err(SignError::Request)
    }

    /// A certificate for the operator token whose public id is `token_id`, from the operator's
    /// request, signed under `ca` for `lifetime`. It names the token's id, not its name: a
    /// token removed and made again under the same name has a new id, so the old token's
    /// certificates stay refused (`api/auth.rs`).
    pub fn sign_operator(
        &self,
        ca: &Ca,
        token_id: &str,
        csr: &str,
        lifetime: Duration,
    ) -> Result<String, SignError> {
        let subject = Subject {
            role: CertRole::Operator,
            id: token_id.to_string(),
            addresses: Vec::new(),
        };
        pki::sign(ca, csr, &subject, SystemTime::now(), lifetime).map_err(SignError::Request)
    }
}

/// The key's file in `DATA_DIR/tls`.
const KEY_FILE: &str = "member.key";
/// The certificate's file (the member's certificate, then the root).
const CERT_FILE: &str = "member.crt";

fn sign_member(
    ca: &Ca,
    csr: &str,
    member: u64,
    addresses: &[IpAddr],
    now: SystemTime,
    lifetime: Duration,
) -> Result<String, String> {
    let subject = Subject {
        role: CertRole::Member,
        id: member.to_string(),
        addresses: addresses.to_vec(),
    };
    pki::sign(ca, csr, &subject, now, lifetime)
}

/// Whether this member must sign a new certificate for itself: none yet, one under another
/// root, one served with other roots than `trusted` (a rotation started or ended: the digests
/// of the roots to trust, the current one first), or one past its renewal point.
pub fn needs_renewal(current: Option<&MemberCert>, trusted: &[String], now: SystemTime) -> bool {
    match current {
        None => true,
        Some(c) => c.trusted != trusted || now >= c.renew_at,
    }
}

/// The digests of the roots `ca` says to trust now, the current one first.
pub fn trusted_digests(ca: &hoist_proto::cluster::ClusterCa) -> Vec<String> {
    let mut digests = vec![ca.digest.clone()];
    if let Ok(previous) = tls::certs_from_pem(&ca.previous_pem) {
        digests.extend(previous.iter().map(|c| tls::ca_digest(c)));
    }
    digests
}

#[cfg(test)]
mod tests;
