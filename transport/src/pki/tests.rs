use super::*;
use crate::tls::{identity_of, CertRole};

fn node(id: &str) -> Subject {
    Subject {
        role: CertRole::Node,
        id: id.into(),
        addresses: vec![],
    }
}

fn der(pem: &str) -> Vec<u8> {
    crate::tls::certs_from_pem(pem).unwrap()[0].to_vec()
}

#[test]
fn a_signed_certificate_names_the_subject_and_the_requested_key_only() {
    let now = SystemTime::now();
    let ca = make_ca("c0ffee", now).unwrap();
    assert_eq!(ca.digest, crate::tls::ca_digest(&der(&ca.cert_pem)));
    let key = new_key().unwrap();
    // The request asks to be a member; the controller decides it is node n1.
    let csr = request(&key, CertRole::Member, "m9").unwrap();
    let cert = sign(&ca, &csr, &node("n1"), now, CERT_LIFETIME).unwrap();
    let id = identity_of(&der(&cert)).unwrap();
    assert_eq!(id.role, CertRole::Node);
    assert_eq!(id.id, "n1");
    assert_eq!(id.key_sha256, request_key_sha256(&csr).unwrap());
    let life = id.not_after - id.not_before;
    assert_eq!(life as u64, CERT_LIFETIME.as_secs() + 300);
    // A renewal request for the same key names the same key.
    let again = request(&key, CertRole::Node, "n1").unwrap();
    assert_eq!(request_key_sha256(&again).unwrap(), id.key_sha256);
    // Another key is another key.
    let other = request(&new_key().unwrap(), CertRole::Node, "n1").unwrap();
    assert_ne!(request_key_sha256(&other).unwrap(), id.key_sha256);
}

#[test]
fn a_forged_or_malformed_request_is_refused() {
    let ca = make_ca("c0ffee", SystemTime::now()).unwrap();
    let csr = request(&new_key().unwrap(), CertRole::Node, "n1").unwrap();
    // Flip a byte inside the base64 body: the self-signature no longer verifies (or the DER
    // no longer parses); both are refusals with a message.
    let mut lines: Vec<String> = csr.lines().map(str::to_string).collect();
    let mid = lines.len() / 2;
    let flipped: String = lines[mid]
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if i == 10 {
                if c == 'A' {
                    'B'
                } else {
                    'A'
                }
            } else {
                c
            }
        })
        .collect();
    lines[mid] = flipped;
    let forged = lines.join("\n");
    assert!(request_key_sha256(&forged).is_err());
    assert!(sign(&ca, &forged, &node("n1"), SystemTime::now(), CERT_LIFETIME).is_err());
    assert!(
        sign(&ca, "hello", &node("n1"), SystemTime::now(), CERT_LIFETIME)
            .unwrap_err()
            .contains("signing request")
    );
}

#[test]
fn renewal_falls_between_half_and_four_fifths_of_the_lifetime() {
    let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
    let end = start + Duration::from_secs(1000);
    for _ in 0..100 {
        let f = renewal_fraction();
        assert!((0.5..=0.8).contains(&f), "{f}");
        let at = renew_at(start, end, f);
        let secs = at.duration_since(start).unwrap().as_secs();
        assert!((500..=800).contains(&secs), "{secs}");
    }
    assert_eq!(
        renew_at(end, start, 0.5),
        end,
        "an inverted validity renews at once"
    );
}
