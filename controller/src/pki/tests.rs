use super::*;

fn cert(digest: &str, renew_in: i64) -> MemberCert {
    let now = SystemTime::now();
    MemberCert {
        ca_digest: digest.into(),
        trusted: vec![digest.into()],
        renew_at: if renew_in >= 0 {
            now + Duration::from_secs(renew_in as u64)
        } else {
            now - Duration::from_secs((-renew_in) as u64)
        },
        not_after: now + Duration::from_secs(3600),
    }
}

#[test]
fn a_member_signs_its_certificate_when_it_has_none_the_root_changed_or_renewal_is_due() {
    let now = SystemTime::now();
    let a = ["a".to_string()];
    assert!(needs_renewal(None, &a, now));
    assert!(!needs_renewal(Some(&cert("a", 60)), &a, now));
    assert!(needs_renewal(Some(&cert("a", 60)), &["b".into()], now));
    assert!(needs_renewal(Some(&cert("a", -1)), &a, now));
    // A rotation starts (two roots to trust) and ends (one again).
    assert!(needs_renewal(
        Some(&cert("a", 60)),
        &["b".into(), "a".into()],
        now
    ));
}

#[test]
fn a_member_serves_a_member_certificate_and_signs_node_certificates_for_the_node_only() {
    hoist_common::init_tls();
    let ca = hoist_transport::pki::make_ca("c", SystemTime::now()).unwrap();
    let peers = Arc::new(PeerClients::new(reqwest::Client::new()));
    let pki = Pki::new(7, "10.0.0.7:7000", Duration::from_secs(600), peers.clone()).unwrap();
    assert!(peers.tls().is_none());
    assert!(pki.tls_source().borrow().is_none());
    let made = pki.renew_own(&signer(&ca), SystemTime::now()).unwrap();
    assert_eq!(made.ca_digest, ca.digest);
    assert!(pki.tls_source().borrow().is_some());
    assert!(
        peers.tls().is_some(),
        "peers are called over TLS from now on"
    );
    let life = made.not_after.duration_since(SystemTime::now()).unwrap();
    assert!(life <= Duration::from_secs(600) && life > Duration::from_secs(590));
    // Renewal falls between half and four fifths of the lifetime (counted from the backdated
    // start, five minutes earlier).
    let renew_in = made
        .renew_at
        .duration_since(SystemTime::now())
        .unwrap_or_default();
    assert!(renew_in <= Duration::from_secs(480), "{renew_in:?}");

    let key = hoist_transport::pki::new_key().unwrap();
    let csr = hoist_transport::pki::request(&key, CertRole::Member, "7").unwrap();
    let pem = pki.sign_node(&ca, "n1", &csr).unwrap();
    let der = tls::certs_from_pem(&pem).unwrap();
    let who = tls::identity_of(&der[0]).unwrap();
    assert_eq!((who.role, who.id.as_str()), (CertRole::Node, "n1"));
    assert!(matches!(
        pki.sign_node(&ca, "n1", "not a request"),
        Err(SignError::Request(_))
    ));
}

fn signer(ca: &Ca) -> Signer {
    Signer {
        ca: ca.clone(),
        intermediates: String::new(),
        roots: ca.cert_pem.clone(),
    }
}

/// A member's certificate during a rotation: under the new root, presented with the
/// cross-signed root and both roots, and trusting both; once the rotation ends, only the new.
#[test]
fn a_member_under_a_rotating_root_presents_the_cross_signature_and_trusts_both_roots() {
    hoist_common::init_tls();
    let now = SystemTime::now();
    let old = hoist_transport::pki::make_ca("c", now).unwrap();
    let (next, cross) = hoist_transport::pki::make_next_ca("c", &old, now).unwrap();
    let peers = Arc::new(PeerClients::new(reqwest::Client::new()));
    let pki = Pki::new(7, "10.0.0.7:7000", Duration::from_secs(600), peers).unwrap();
    let rotating = Signer {
        ca: next.clone(),
        intermediates: cross.clone(),
        roots: join_pem(&[&next.cert_pem, &old.cert_pem]),
    };
    let made = pki.renew_own(&rotating, now).unwrap();
    assert_eq!(made.ca_digest, next.digest);
    assert_eq!(made.trusted, vec![next.digest.clone(), old.digest.clone()]);
    let record = hoist_proto::cluster::ClusterCa {
        cert_pem: next.cert_pem.clone(),
        sealed_key: Vec::new(),
        digest: next.digest.clone(),
        created_ms: 0,
        previous_pem: old.cert_pem.clone(),
        cross_pem: cross,
    };
    assert_eq!(trusted_digests(&record), made.trusted);
    assert!(!needs_renewal(Some(&made), &trusted_digests(&record), now));
    let done = hoist_proto::cluster::ClusterCa {
        previous_pem: String::new(),
        cross_pem: String::new(),
        ..record
    };
    assert!(needs_renewal(Some(&made), &trusted_digests(&done), now));
    let made = pki.renew_own(&signer(&next), now).unwrap();
    assert_eq!(made.trusted, vec![next.digest.clone()]);
    assert!(!needs_renewal(Some(&made), &trusted_digests(&done), now));
}
