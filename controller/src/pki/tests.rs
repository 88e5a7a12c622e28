use super::*;

fn cert(digest: &str, renew_in: i64) -> MemberCert {
    let now = SystemTime::now();
    MemberCert {
        ca_digest: digest.into(),
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
    assert!(needs_renewal(None, "a", now));
    assert!(!needs_renewal(Some(&cert("a", 60)), "a", now));
    assert!(needs_renewal(Some(&cert("a", 60)), "b", now));
    assert!(needs_renewal(Some(&cert("a", -1)), "a", now));
}

#[test]
fn a_member_serves_a_member_certificate_and_signs_node_certificates_for_the_node_only() {
    hoist_common::init_tls();
    let ca = hoist_transport::pki::make_ca("c", SystemTime::now()).unwrap();
    let peers = Arc::new(PeerClients::new(reqwest::Client::new()));
    let pki = Pki::new(7, "10.0.0.7:7000", Duration::from_secs(600), peers.clone()).unwrap();
    assert!(peers.tls().is_none());
    assert!(pki.tls_source().borrow().is_none());
    let made = pki.renew_own(&ca, SystemTime::now()).unwrap();
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
