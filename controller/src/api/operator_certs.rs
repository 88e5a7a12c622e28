//! Operator client certificates: an alternative to sending a bearer token with every request.
//!
//! Why they stand for a token rather than beside tokens: roles, names in the audit log and
//! revocation already belong to operator tokens, and a second kind of operator would need all
//! of them again (and a replicated record of its own). So `POST /v1/tokens/certificate` signs
//! the caller's key into a certificate naming `urn:hoist:operator:<token id>`, and a request
//! over mutual TLS with that certificate (and no bearer token) acts as that token: its role,
//! its name in the audit log, its last use. Removing the token revokes its certificates at
//! once. The token's public id, not its name, is named: a token removed and made again under
//! the same name gets a new id, so the old one's certificates stay refused.
//!
//! Why nothing is written: signing needs only the CA, which any member that can open it holds,
//! so any member signs (from its applied state) and the request never reaches Raft.
//!
//! Forwarding: a member that sends an operator's request on to the leader calls it over its
//! own mutual TLS, with its member certificate; the operator's certificate cannot travel with
//! the request. The member names the token id the operator's certificate names in
//! [`FORWARDED_OPERATOR`], and the leader believes that header only from a current member's
//! certificate on a forwarded request (members are trusted with the whole state anyway). The
//! leader then checks the token as for a certificate of its own.

use super::agent::sign_error;
use super::auth::principal;
use super::body::json;
use super::error::ApiError;
use super::forward::FORWARDED;
use super::Ctx;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::Json;
use hoist_proto::cluster::{OperatorToken, Role};
use hoist_transport::tls::{CertIdentity, CertRole};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The longest an operator certificate may live: a stolen one is revoked only by removing its
/// token, so a renewal (`hoist token cert`) now and then is the price of a long one.
pub const MAX_LIFETIME: Duration = Duration::from_secs(90 * 24 * 3600);

/// Set by a member forwarding a request that came with an operator certificate and no bearer
/// token: the token id that certificate names (see the module doc).
pub const FORWARDED_OPERATOR: &str = "x-hoist-operator-certificate";

/// `POST /v1/tokens/certificate`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateRequest {
    /// A PEM signing request for the operator's key (made on the operator's machine).
    pub csr: String,
    /// Seconds; default the cluster's `--cert-lifetime`, at most [`MAX_LIFETIME`].
    #[serde(default)]
    pub lifetime_s: Option<u64>,
}

/// The answer: the certificate, the root to trust members by, and whom it acts as.
#[derive(Debug, Serialize)]
pub struct OperatorCertificate {
    pub certificate: String,
    pub ca_certificate: String,
    /// The token's name and role (the certificate acts as the token).
    pub name: String,
    pub role: Role,
    pub not_after_ms: u64,
}

/// How long a certificate asked for `asked` seconds lives, with `default` (the cluster's
/// `--cert-lifetime`) when none is asked; the message says what is wrong otherwise.
pub fn lifetime(asked: Option<u64>, default: Duration) -> Result<Duration, String> {
    let max = MAX_LIFETIME.as_secs();
    match asked {
        None => Ok(default.min(MAX_LIFETIME)),
        Some(0) => Err("must be at least 1 second".into()),
        Some(s) if s > max => Err(format!(
            "{s} s is more than the 90 days ({max} s) an operator certificate may live: ask for \
             less, and renew it before it ends (`hoist token cert` with the certificate)"
        )),
        Some(s) => Ok(Duration::from_secs(s)),
    }
}

/// `POST /v1/tokens/certificate` `{"csr", "lifetime_s"}`: signs a certificate that acts as the
/// caller's operator token (authenticated by that token, or by a current certificate of it).
pub async fn sign(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<OperatorCertificate>, ApiError> {
    let req: CertificateRequest = json(&headers, &body, "certificate request")?;
    let lifetime = lifetime(req.lifetime_s, ctx.pki.cert_lifetime)
        .map_err(|m| ApiError::field(StatusCode::BAD_REQUEST, "lifetime_s", m))?;
    hoist_transport::pki::request_key_sha256(&req.csr)
        .map_err(|m| ApiError::field(StatusCode::BAD_REQUEST, "csr", m))?;
    let caller = principal().ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "an operator certificate acts as an operator token: authenticate with yours \
             (`Authorization: Bearer HOISTOP2-...`, or a current certificate of it)",
        )
    })?;
    let Some(token_id) = caller.token_id.clone() else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "{} is not an operator token: certificates are signed for operator tokens only",
                caller.name
            ),
        ));
    };
    // During a rotation of the root: under the new root, with its cross-signature and both roots.
    let signer = super::agent::signer(&ctx)?;
    let certificate = ctx
        .pki
        .sign_operator(&signer.ca, &token_id, &req.csr, lifetime)
        .map_err(sign_error)?;
    let not_after_ms = hoist_transport::tls::certs_from_pem(&certificate)
        .ok()
        .and_then(|der| hoist_transport::tls::identity_of(der.first()?))
        .map_or(0, |i| {
            u64::try_from(i.not_after).unwrap_or(0).saturating_mul(1000)
        });
    tracing::info!(
        token = %caller.name,
        id = %token_id,
        valid_until = %humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + Duration::from_millis(not_after_ms)
        ),
        "signed an operator certificate"
    );
    Ok(Json(OperatorCertificate {
        certificate: signer.with_intermediates(&certificate),
        ca_certificate: signer.roots,
        name: caller.name,
        role: caller.role,
        not_after_ms,
    }))
}

/// The operator token id a request's certificate acts as, if any: the id an operator
/// certificate names, or, on a request forwarded by a current member (`member_admitted` says
/// which are), the id that member named in [`FORWARDED_OPERATOR`].
pub fn token_id_of<'a>(
    certificate: Option<&'a CertIdentity>,
    headers: &'a HeaderMap,
    member_admitted: impl Fn(u64) -> bool,
) -> Option<&'a str> {
    let cert = certificate?;
    match cert.role {
        CertRole::Operator => Some(cert.id.as_str()),
        CertRole::Member => {
            let member = cert.id.parse::<u64>().ok()?;
            if !headers.contains_key(FORWARDED) || !member_admitted(member) {
                return None;
            }
            let id = headers.get(FORWARDED_OPERATOR)?.to_str().ok()?;
            valid_token_id(id).then_some(id)
        }
        CertRole::Node => None,
    }
}

/// Whether `id` has the shape of an operator token's public id (lowercase hex).
fn valid_token_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The header a member adds when it forwards a request that came with an operator certificate
/// and no bearer token (see the module doc); `None` for any other request.
pub fn forwarded_header(
    certificate: Option<&CertIdentity>,
    headers: &HeaderMap,
) -> Option<(HeaderName, HeaderValue)> {
    let cert = certificate.filter(|c| c.role == CertRole::Operator)?;
    if headers.contains_key(axum::http::header::AUTHORIZATION) {
        return None;
    }
    let value = HeaderValue::from_str(&cert.id).ok()?;
    Some((HeaderName::from_static(FORWARDED_OPERATOR), value))
}

/// The token among `tokens` whose id `token_id` is; the error's message says the token is gone
/// and what to do.
pub fn token_for<'a>(
    tokens: impl IntoIterator<Item = &'a OperatorToken>,
    token_id: &str,
) -> Result<&'a OperatorToken, String> {
    tokens
        .into_iter()
        .find(|t| t.id == token_id)
        .ok_or_else(|| {
            format!(
            "the operator token {token_id} this client certificate acts as was removed (or never \
             existed here): the certificate is refused; ask an admin for a new token \
             (`hoist token create`), then a new certificate with it (`hoist token cert`)"
        )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(name: &str, id: &str) -> OperatorToken {
        OperatorToken {
            name: name.into(),
            role: Role::Deployer,
            id: id.into(),
            secret_sha256: String::new(),
            created_ms: 1,
            created_by: "root".into(),
            last_used_ms: 0,
        }
    }

    fn cert(role: CertRole, id: &str) -> CertIdentity {
        CertIdentity {
            role,
            id: id.into(),
            key_sha256: String::new(),
            not_before: 0,
            not_after: 1,
            issuer_key_id: String::new(),
        }
    }

    #[test]
    fn the_lifetime_defaults_to_the_clusters_and_stays_within_90_days() {
        let day = Duration::from_secs(24 * 3600);
        assert_eq!(lifetime(None, day), Ok(day));
        assert_eq!(lifetime(None, 400 * day), Ok(MAX_LIFETIME));
        assert_eq!(lifetime(Some(60), day), Ok(Duration::from_secs(60)));
        assert_eq!(lifetime(Some(90 * 24 * 3600), day), Ok(MAX_LIFETIME));
        assert!(lifetime(Some(0), day).is_err());
        let e = lifetime(Some(90 * 24 * 3600 + 1), day).unwrap_err();
        assert!(e.contains("90 days"), "{e}");
    }

    #[test]
    fn an_operator_certificate_acts_as_the_token_it_names_and_a_members_only_when_forwarding() {
        let mut plain = HeaderMap::new();
        let any = |_: u64| true;
        let op = cert(CertRole::Operator, "0a1b2c3d");
        assert_eq!(token_id_of(Some(&op), &plain, any), Some("0a1b2c3d"));
        assert_eq!(token_id_of(None, &plain, any), None);
        assert_eq!(
            token_id_of(Some(&cert(CertRole::Node, "n1")), &plain, any),
            None
        );
        // A member names an operator's token only on a forwarded request.
        let member = cert(CertRole::Member, "2");
        plain.insert(FORWARDED_OPERATOR, "0a1b2c3d".parse().unwrap());
        assert_eq!(token_id_of(Some(&member), &plain, any), None);
        let mut fwd = plain.clone();
        fwd.insert(FORWARDED, "1".parse().unwrap());
        assert_eq!(token_id_of(Some(&member), &fwd, any), Some("0a1b2c3d"));
        assert_eq!(token_id_of(Some(&member), &fwd, |m| m != 2), None);
        // A node's certificate, or no certificate, is never believed.
        assert_eq!(
            token_id_of(Some(&cert(CertRole::Node, "2")), &fwd, any),
            None
        );
        assert_eq!(token_id_of(None, &fwd, any), None);
        fwd.insert(FORWARDED_OPERATOR, "not hex".parse().unwrap());
        assert_eq!(token_id_of(Some(&member), &fwd, any), None);
    }

    #[test]
    fn a_forwarding_member_names_the_certificate_only_without_a_bearer_token() {
        let op = cert(CertRole::Operator, "0a1b2c3d");
        let mut h = HeaderMap::new();
        let (name, value) = forwarded_header(Some(&op), &h).unwrap();
        assert_eq!(
            (name.as_str(), value.to_str().unwrap()),
            (FORWARDED_OPERATOR, "0a1b2c3d")
        );
        assert!(forwarded_header(Some(&cert(CertRole::Node, "n1")), &h).is_none());
        assert!(forwarded_header(None, &h).is_none());
        h.insert(
            axum::http::header::AUTHORIZATION,
            "Bearer x".parse().unwrap(),
        );
        assert!(forwarded_header(Some(&op), &h).is_none(), "the token wins");
    }

    #[test]
    fn a_removed_token_refuses_its_certificates_even_under_a_new_token_of_the_same_name() {
        let old = token("ci", "0a1b2c3d");
        assert_eq!(token_for([&old], "0a1b2c3d"), Ok(&old));
        let again = token("ci", "99887766");
        let e = token_for([&again], "0a1b2c3d").unwrap_err();
        assert!(
            e.contains("was removed") && e.contains("hoist token cert"),
            "{e}"
        );
    }

    #[test]
    fn a_certificate_is_signed_for_the_token_id_only() {
        hoist_common::init_tls();
        let ca = hoist_transport::pki::make_ca("c", std::time::SystemTime::now()).unwrap();
        let peers = std::sync::Arc::new(hoist_transport::client::PeerClients::new(
            reqwest::Client::new(),
        ));
        let pki =
            crate::pki::Pki::new(1, "10.0.0.1:7000", Duration::from_secs(600), peers).unwrap();
        let key = hoist_transport::pki::new_key().unwrap();
        // Whatever the request says, the certificate names the token id it was signed for.
        let csr = hoist_transport::pki::request(&key, CertRole::Member, "1").unwrap();
        let pem = pki
            .sign_operator(&ca, "0a1b2c3d", &csr, Duration::from_secs(120))
            .unwrap();
        let der = hoist_transport::tls::certs_from_pem(&pem).unwrap();
        let who = hoist_transport::tls::identity_of(&der[0]).unwrap();
        assert_eq!(
            (who.role, who.id.as_str()),
            (CertRole::Operator, "0a1b2c3d")
        );
        assert!(who.not_after - who.not_before <= 120 + 12);
        assert!(matches!(
            pki.sign_operator(&ca, "0a1b2c3d", "not a request", Duration::from_secs(60)),
            Err(crate::pki::SignError::Request(_))
        ));
    }
}
