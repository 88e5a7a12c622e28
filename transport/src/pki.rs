//! Making the cluster's certificates: the root CA, keys with their signing requests, and
//! certificates signed from those requests. Pure functions over PEM texts (rcgen does the
//! ASN.1 and the signatures; ring the keys).
//!
//! Why requests: a node's or member's private key is made on its own host and never leaves it;
//! the controller sees only the public key, inside a request whose self-signature proves the
//! sender holds the key. The controller takes nothing else from a request: who the certificate
//! names, for how long and for what is the controller's decision ([`sign`]).

use crate::tls::{identity_uri, sha256_hex, CertRole, MEMBER_NAME};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, PublicKeyData, SanType,
    SerialNumber,
};
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

/// How long a root lives: rotated by an operator long before (`hoist cluster ca rotate`).
pub const CA_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// How long a node's or member's certificate lives by default (Swarm's is 90 days): a stolen
/// one is worth a day, and renewal is automatic.
pub const CERT_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// How far back a certificate's validity starts, for clocks a little behind the issuer's: five
/// minutes, or a tenth of a short lifetime (tests use seconds).
fn backdate(lifetime: Duration) -> Duration {
    (lifetime / 10).min(Duration::from_secs(300))
}

/// A root CA: its certificate and private key (PKCS#8), both PEM, and the certificate's digest.
#[derive(Clone)]
pub struct Ca {
    pub cert_pem: String,
    pub key_pem: String,
    /// [`crate::tls::ca_digest`] of the certificate.
    pub digest: String,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca")
            .field("digest", &self.digest)
            .finish_non_exhaustive()
    }
}

fn err(what: &str) -> impl Fn(rcgen::Error) -> String + '_ {
    move |e| format!("{what}: {e}")
}

fn serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    // A positive INTEGER of at most 20 bytes (RFC 5280 §4.1.2.2).
    bytes[0] &= 0x7f;
    SerialNumber::from_slice(&bytes)
}

/// A new root CA for the cluster `cluster_id`, valid from `now` for [`CA_LIFETIME`].
pub fn make_ca(cluster_id: &str, now: SystemTime) -> Result<Ca, String> {
    let key = KeyPair::generate().map_err(err("CA key"))?;
    let cert = root_params(&format!("Hoist cluster {cluster_id} root CA"), now)
        .self_signed(&key)
        .map_err(err("CA certificate"))?;
    Ok(Ca {
        digest: crate::tls::ca_digest(cert.der()),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// A root to replace `old` (`hoist cluster ca rotate`), and its certificate cross-signed by
/// `old`. The new root has a key and a name of its own (the old root's with the time of the
/// rotation), so that chains under either root are told apart by name as well as by key.
///
/// The cross-signed certificate has the new root's name and key and `old` as issuer, valid until
/// the first of the two roots expires. During a rotation, chains under the new root carry it,
/// so that whoever still trusts only `old` verifies them: leaf → cross-signed → `old`.
pub fn make_next_ca(cluster_id: &str, old: &Ca, now: SystemTime) -> Result<(Ca, String), String> {
    let key = KeyPair::generate().map_err(err("CA key"))?;
    let since = humantime::format_rfc3339_seconds(now);
    let params = root_params(
        &format!("Hoist cluster {cluster_id} root CA since {since}"),
        now,
    );
    let cert = params.self_signed(&key).map_err(err("CA certificate"))?;
    let next = Ca {
        digest: crate::tls::ca_digest(cert.der()),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    };
    let old_key = KeyPair::from_pem(&old.key_pem).map_err(err("old CA key"))?;
    let old_until = crate::tls::certs_from_pem(&old.cert_pem)?
        .first()
        .and_then(|c| x509_parser::parse_x509_certificate(c).ok())
        .map(|(_, c)| c.validity().not_after.to_datetime())
        .ok_or("the old root certificate does not parse")?;
    let issuer = Issuer::from_ca_cert_pem(&old.cert_pem, old_key).map_err(err("old CA"))?;
    let mut cross = params;
    cross.not_after = cross.not_after.min(old_until);
    cross.serial_number = Some(serial());
    cross.use_authority_key_identifier_extension = true;
    let cross = cross
        .signed_by(&key, &issuer)
        .map_err(err("cross-signed certificate"))?;
    Ok((next, cross.pem()))
}

fn root_params(name: &str, now: SystemTime) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, name);
    params
        .distinguished_name
        .push(DnType::OrganizationName, "Hoist");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = (now - backdate(CA_LIFETIME)).into();
    params.not_after = (now + CA_LIFETIME).into();
    params.serial_number = Some(serial());
    params
}

/// A new private key (PKCS#8 PEM) for a holder to keep.
pub fn new_key() -> Result<String, String> {
    Ok(KeyPair::generate().map_err(err("key"))?.serialize_pem())
}

/// A signing request for the key `key_pem`. Its subject is informative only: [`sign`] decides
/// what the certificate says.
pub fn request(key_pem: &str, role: CertRole, id: &str) -> Result<String, String> {
    let key = KeyPair::from_pem(key_pem).map_err(err("key"))?;
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, format!("{} {id}", role.as_str()));
    params
        .serialize_request(&key)
        .and_then(|csr| csr.pem())
        .map_err(err("signing request"))
}

/// The SHA-256 (lowercase hex) of the SubjectPublicKeyInfo a request asks a certificate for,
/// once its self-signature verifies: what the state records as a node's key.
pub fn request_key_sha256(csr_pem: &str) -> Result<String, String> {
    let csr = CertificateSigningRequestParams::from_pem(csr_pem)
        .map_err(err("not a valid signing request"))?;
    Ok(sha256_hex(&csr.public_key.subject_public_key_info()))
}

/// What a certificate is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub role: CertRole,
    pub id: String,
    /// Addresses a member is reached at (its certificate names them besides [`MEMBER_NAME`],
    /// for tools that check the address they dialled).
    pub addresses: Vec<IpAddr>,
}

/// A certificate (PEM) for `subject`, for the key in `csr_pem`, signed by `ca`, valid from `now`
/// for `lifetime`. Everything but the key is taken from `subject`, never from the request.
pub fn sign(
    ca: &Ca,
    csr_pem: &str,
    subject: &Subject,
    now: SystemTime,
    lifetime: Duration,
) -> Result<String, String> {
    let ca_key = KeyPair::from_pem(&ca.key_pem).map_err(err("CA key"))?;
    let issuer = Issuer::from_ca_cert_pem(&ca.cert_pem, ca_key).map_err(err("CA certificate"))?;
    let mut csr = CertificateSigningRequestParams::from_pem(csr_pem)
        .map_err(err("not a valid signing request"))?;
    let uri = identity_uri(subject.role, &subject.id);
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, uri.clone());
    params
        .distinguished_name
        .push(DnType::OrganizationName, "Hoist");
    params.subject_alt_names =
        vec![SanType::URI(uri.as_str().try_into().map_err(|_| {
            format!("{:?} cannot be named in a certificate", subject.id)
        })?)];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    if subject.role == CertRole::Member {
        params.subject_alt_names.push(SanType::DnsName(
            MEMBER_NAME.try_into().expect("an IA5 name"),
        ));
        params
            .subject_alt_names
            .extend(subject.addresses.iter().map(|a| SanType::IpAddress(*a)));
        params
            .extended_key_usages
            .push(ExtendedKeyUsagePurpose::ServerAuth);
    }
    params.not_before = (now - backdate(lifetime)).into();
    params.not_after = (now + lifetime).into();
    params.serial_number = Some(serial());
    params.use_authority_key_identifier_extension = true;
    csr.params = params;
    Ok(csr.signed_by(&issuer).map_err(err("certificate"))?.pem())
}

/// When a certificate issued at `not_before` and expiring at `not_after` should be renewed: at
/// `fraction` (a random point in 0.5..0.8, as Swarm does, so that a fleet issued at once does
/// not renew at once) of its lifetime.
pub fn renew_at(not_before: SystemTime, not_after: SystemTime, fraction: f64) -> SystemTime {
    let life = not_after
        .duration_since(not_before)
        .unwrap_or(Duration::ZERO);
    not_before + life.mul_f64(fraction.clamp(0.0, 1.0))
}

/// A random renewal point in 0.5..0.8 of a lifetime.
pub fn renewal_fraction() -> f64 {
    0.5 + 0.3 * rand::random::<f64>()
}

#[cfg(test)]
mod tests;
