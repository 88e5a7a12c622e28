//! The cluster's TLS: how a certificate names who holds it, the server configuration every
//! listener uses once its member has a certificate, and the client configuration of everything
//! that talks to a member.
//!
//! Who is who. Every certificate of a cluster is signed by its root CA (`controller/src/pki`)
//! and names its holder in a URI subject alternative name, `urn:hoist:<role>:<id>`
//! ([`CertIdentity`]): a controller member (`member`), a node's agent (`node`) or an operator
//! (`operator`). Members' certificates also carry the DNS name [`MEMBER_NAME`], and clients
//! verify a member against that name rather than the address they dialled: members move and
//! sit behind several addresses, and what matters is that the peer holds a member certificate
//! of this cluster, which only members' certificates carry.
//!
//! No trust on first use. A client that has no copy of the cluster's CA yet (an agent with
//! only its join token) is given the SHA-256 of the root certificate instead
//! ([`Trust::Pinned`]): the member sends its chain, the root in it must have that digest, and
//! the member's certificate must verify under that root. After that first contact the client
//! keeps the root and trusts only it ([`Trust::Roots`]).
//!
//! Nothing here does cryptography itself: chains and signatures are rustls' and webpki's;
//! this module only decides which roots and which name.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use x509_parser::extensions::ParsedExtension;

/// The DNS name every member's certificate carries, and the name clients verify members by.
pub const MEMBER_NAME: &str = "hoist-controller";

/// What a client's TLS error says when the server's chain holds no root with the pinned digest:
/// callers that must stop rather than retry (the address is not the cluster's) look for it.
pub const WRONG_ROOT: &str = "holds no root with the digest in the token";

/// The prefix of the URI that names a certificate's holder.
const URN_PREFIX: &str = "urn:hoist:";

/// What a certificate's holder is to the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CertRole {
    /// A controller member.
    Member,
    /// A node's agent.
    Node,
    /// An operator (a client certificate instead of a bearer token).
    Operator,
}

impl CertRole {
    pub fn as_str(self) -> &'static str {
        match self {
            CertRole::Member => "member",
            CertRole::Node => "node",
            CertRole::Operator => "operator",
        }
    }

    fn parse(text: &str) -> Option<CertRole> {
        match text {
            "member" => Some(CertRole::Member),
            "node" => Some(CertRole::Node),
            "operator" => Some(CertRole::Operator),
            _ => None,
        }
    }
}

/// Who a verified certificate names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertIdentity {
    pub role: CertRole,
    /// The member id, node id or operator name.
    pub id: String,
    /// Lowercase hex SHA-256 of the certificate's SubjectPublicKeyInfo (DER): the key it was
    /// issued for, which the cluster state records per node.
    pub key_sha256: String,
    /// When it became valid and when it expires (seconds since the epoch).
    pub not_before: i64,
    pub not_after: i64,
    /// Lowercase hex of its authority key identifier: which root signed it ([`key_id`] of that
    /// root); empty when it names none.
    pub issuer_key_id: String,
}

/// The URI a certificate of `role` for `id` carries.
pub fn identity_uri(role: CertRole, id: &str) -> String {
    format!("{URN_PREFIX}{}:{id}", role.as_str())
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The digest of a root certificate, as join tokens carry it.
pub fn ca_digest(der: &[u8]) -> String {
    sha256_hex(der)
}

/// Who `der` names (its first `urn:hoist:` URI), or `None` for a certificate that names no one
/// of a Hoist cluster. Reads only; the chain must have been verified before.
pub fn identity_of(der: &[u8]) -> Option<CertIdentity> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let san = cert.subject_alternative_name().ok()??;
    let (role, id) = san.value.general_names.iter().find_map(|n| match n {
        x509_parser::extensions::GeneralName::URI(uri) => {
            let rest = uri.strip_prefix(URN_PREFIX)?;
            let (role, id) = rest.split_once(':')?;
            Some((CertRole::parse(role)?, id.to_string()))
        }
        _ => None,
    })?;
    let issuer_key_id = cert
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(aki) => {
                aki.key_identifier.as_ref().map(|k| hex::encode(k.0))
            }
            _ => None,
        })
        .unwrap_or_default();
    Some(CertIdentity {
        role,
        id,
        key_sha256: sha256_hex(cert.tbs_certificate.subject_pki.raw),
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        issuer_key_id,
    })
}

/// Lowercase hex of a CA certificate's subject key identifier: what the certificates it signs
/// name as their issuer ([`CertIdentity::issuer_key_id`]). `None` for a certificate without one.
pub fn key_id(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    cert.extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(k) => Some(hex::encode(k.0)),
            _ => None,
        })
}

/// Whether `der` is a root: issued by itself (a cross-signed root's certificate is not: another
/// root issued it).
pub fn is_root(der: &[u8]) -> bool {
    x509_parser::parse_x509_certificate(der)
        .is_ok_and(|(_, c)| c.tbs_certificate.subject.as_raw() == c.tbs_certificate.issuer.as_raw())
}

/// A chain's certificates split into what a holder presents before the roots (its certificate
/// and any cross-signed one) and the roots it trusts (self-issued), both in their order.
pub fn split_roots(
    certs: Vec<CertificateDer<'static>>,
) -> (Vec<CertificateDer<'static>>, Vec<CertificateDer<'static>>) {
    certs.into_iter().partition(|c| !is_root(c))
}

/// The certificates in a PEM text (a chain, or a bundle of roots).
pub fn certs_from_pem(pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    use rustls::pki_types::pem::PemObject;
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not PEM certificates: {e}"))?;
    if certs.is_empty() {
        return Err("no certificate in the PEM text".into());
    }
    Ok(certs)
}

/// A private key from PEM (PKCS#8, as rcgen writes them).
pub fn key_from_pem(pem: &str) -> Result<PrivateKeyDer<'static>, String> {
    use rustls::pki_types::pem::PemObject;
    PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|e| format!("not a PEM private key: {e}"))
}

/// A certificate chain (leaf first) and its private key.
#[derive(Debug)]
pub struct Identity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl Identity {
    /// From the PEM texts of a chain (leaf first) and a key.
    pub fn from_pem(chain: &str, key: &str) -> Result<Identity, String> {
        Ok(Identity {
            chain: certs_from_pem(chain)?,
            key: key_from_pem(key)?,
        })
    }
}

impl Clone for Identity {
    fn clone(&self) -> Self {
        Identity {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn root_store(roots: &[CertificateDer<'static>]) -> Result<Arc<RootCertStore>, String> {
    let mut store = RootCertStore::empty();
    for root in roots {
        store
            .add(root.clone())
            .map_err(|e| format!("not a usable root certificate: {e}"))?;
    }
    Ok(Arc::new(store))
}

/// HTTP/2's ALPN name.
pub const ALPN_HTTP2: &[u8] = b"h2";

/// HTTP/1.1's ALPN name.
pub const ALPN_HTTP1: &[u8] = b"http/1.1";

/// The configuration of a member's listeners: its own chain, and client certificates checked
/// against `client_roots` when a client sends one. Clients without a certificate are served
/// too (an operator with a bearer token, an agent registering with its join token): what each
/// route needs is the router's business, which reads the [`TlsPeer`] of the connection.
pub fn server_config(
    identity: Identity,
    client_roots: &[CertificateDer<'static>],
) -> Result<Arc<ServerConfig>, String> {
    server_config_alpn(identity, client_roots, &[])
}

/// As [`server_config`], also offering the stream protocols `protocols` by ALPN (see
/// [`crate::server::serve_tls_with`]). HTTP/2 and HTTP/1.1 are offered after them: a client
/// that asks for `h2` gets HTTP/2, one that asks for nothing HTTP/1.1 as before.
pub fn server_config_alpn(
    identity: Identity,
    client_roots: &[CertificateDer<'static>],
    protocols: &[&[u8]],
) -> Result<Arc<ServerConfig>, String> {
    let verifier =
        WebPkiClientVerifier::builder_with_provider(root_store(client_roots)?, provider())
            .allow_unauthenticated()
            .build()
            .map_err(|e| format!("client verifier: {e}"))?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| e.to_string())?
        .with_client_cert_verifier(verifier)
        .with_single_cert(identity.chain, identity.key)
        .map_err(|e| format!("this member's certificate: {e}"))?;
    config.alpn_protocols = protocols.iter().map(|p| p.to_vec()).collect();
    config.alpn_protocols.push(ALPN_HTTP2.to_vec());
    config.alpn_protocols.push(ALPN_HTTP1.to_vec());
    Ok(Arc::new(config))
}

/// How a client decides that it talks to a member of its cluster.
#[derive(Debug, Clone)]
pub enum Trust {
    /// Members whose certificate verifies under one of these roots.
    Roots(Vec<CertificateDer<'static>>),
    /// First contact: members whose chain holds a root with this SHA-256 (lowercase hex), and
    /// whose certificate verifies under it.
    Pinned(String),
}

/// A client configuration that talks only to members of the cluster `trust` describes,
/// presenting `identity` when given.
pub fn client_config(trust: Trust, identity: Option<Identity>) -> Result<ClientConfig, String> {
    let verifier = Arc::new(MemberVerifier::new(trust)?);
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    match identity {
        Some(id) => builder
            .with_client_auth_cert(id.chain, id.key)
            .map_err(|e| format!("client certificate: {e}")),
        None => Ok(builder.with_no_client_auth()),
    }
}

/// Verifies a member: webpki's verification of the chain under the trusted roots, for the name
/// [`MEMBER_NAME`] whatever address was dialled.
#[derive(Debug)]
struct MemberVerifier {
    trust: Trust,
    /// The verifier for [`Trust::Roots`] (built once).
    roots: Option<Arc<rustls::client::WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
}

impl MemberVerifier {
    fn new(trust: Trust) -> Result<MemberVerifier, String> {
        let roots = match &trust {
            Trust::Roots(roots) => Some(webpki_verifier(roots)?),
            Trust::Pinned(digest) => {
                if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(format!("{digest:?} is not a SHA-256 digest"));
                }
                None
            }
        };
        Ok(MemberVerifier {
            trust,
            roots,
            provider: provider(),
        })
    }
}

fn webpki_verifier(
    roots: &[CertificateDer<'static>],
) -> Result<Arc<rustls::client::WebPkiServerVerifier>, String> {
    rustls::client::WebPkiServerVerifier::builder_with_provider(root_store(roots)?, provider())
        .build()
        .map_err(|e| format!("server verifier: {e}"))
}

impl ServerCertVerifier for MemberVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _dialled: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let name = ServerName::try_from(MEMBER_NAME).expect("a valid DNS name");
        let pinned;
        let verifier = match (&self.roots, &self.trust) {
            (Some(v), _) => v,
            (None, Trust::Pinned(digest)) => {
                let root = intermediates
                    .iter()
                    .find(|c| ca_digest(c) == *digest)
                    .ok_or_else(|| {
                        rustls::Error::General(format!(
                            "this server's certificate chain {WRONG_ROOT} (sha256 {digest}): it is \
                             not a member of that cluster, or the cluster's root was rotated since \
                             the token was made (then the token's digest part must be the new \
                             root's, as `hoist cluster ca -o json` shows)"
                        ))
                    })?;
                pinned = webpki_verifier(&[root.clone().into_owned()])
                    .map_err(rustls::Error::General)?;
                &pinned
            }
            (None, Trust::Roots(_)) => unreachable!("built in new()"),
        };
        verifier.verify_server_cert(end_entity, intermediates, &name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// What a request's connection says of its client: inserted into every request's extensions
/// by [`crate::serve_tls`] (plain connections carry none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsPeer {
    /// The verified client certificate's holder, when the client sent one that names a holder.
    pub identity: Option<CertIdentity>,
}

#[cfg(test)]
mod tests;
