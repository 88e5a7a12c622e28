//! The agent's TLS: the pure parts (which roots it trusts, what it keeps where, when it renews,
//! how a failure reads), then its client against a fake controller on a real TLS listener of
//! `hoist_transport` with certificates of a real (test) CA.

use super::*;
use crate::worker::client::{ClientError, ControllerClient};
use hoist_proto::format::{
    Codec, CURRENT, FORMAT_HEADER, OLDEST, OLDEST_FORMAT_HEADER, PROTOBUF_MEDIA_TYPE,
    VERSION_HEADER,
};
use hoist_proto::node::{
    CertificateRequest, CertificateResponse, Heartbeat, HeartbeatAck, RegisterRequest,
    RegisterResponse, POSTCARD_MEDIA_TYPE,
};
use hoist_transport::pki::{Ca, Subject};
use hoist_transport::tls::TlsPeer;
use std::os::unix::fs::PermissionsExt;
use std::sync::{Arc, Mutex};

const CLUSTER: &str = "0123456789abcdef";
const SECRET: &str = "00112233445566778899aabbccddeeff";

fn ca() -> Ca {
    pki::make_ca(CLUSTER, SystemTime::now()).unwrap()
}

fn token(digest: &str) -> String {
    format!("HOIST2-{CLUSTER}-{digest}-{SECRET}")
}

/// A certificate (PEM) of `ca` for `key`, as the controllers sign them.
fn issue(ca: &Ca, key: &str, role: CertRole, id: &str, at: SystemTime, life: Duration) -> String {
    let csr = pki::request(key, role, id).unwrap();
    let subject = Subject {
        role,
        id: id.into(),
        addresses: vec!["127.0.0.1".parse().unwrap()],
    };
    pki::sign(ca, &csr, &subject, at, life).unwrap()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn trust_is_the_kept_roots_only_when_they_hold_the_tokens_root() {
    let ours = ca();
    let other = ca();
    // First contact: nothing kept.
    assert!(matches!(trust_from(None, None, &ours.digest), Trust::Pinned(d) if d == ours.digest));
    // The root the token names: trusted, with the other roots kept beside it (a rotation).
    match trust_from(Some(&ours.cert_pem), None, &ours.digest) {
        Trust::Roots(r) => assert_eq!(r.len(), 1),
        t => panic!("{t:?}"),
    }
    let both = format!("{}{}", other.cert_pem, ours.cert_pem);
    match trust_from(Some(&both), None, &ours.digest) {
        Trust::Roots(r) => assert_eq!(r.len(), 2),
        t => panic!("{t:?}"),
    }
    // After a rotation of the root, the kept roots no longer hold the token's, but were
    // obtained through it: still trusted. Obtained through another token: only the token.
    match trust_from(Some(&other.cert_pem), Some(&ours.digest), &ours.digest) {
        Trust::Roots(r) => assert_eq!(r.len(), 1),
        t => panic!("{t:?}"),
    }
    assert!(matches!(
        trust_from(Some(&other.cert_pem), Some(&other.digest), &ours.digest),
        Trust::Pinned(_)
    ));
    assert!(matches!(
        trust_from(Some("garbage"), Some(&ours.digest), &ours.digest),
        Trust::Pinned(_)
    ));
    // Roots of another cluster (or CA), or a file that holds no certificate: only the token.
    assert!(
        matches!(trust_from(Some(&other.cert_pem), None, &ours.digest), Trust::Pinned(d) if d == ours.digest)
    );
    assert!(matches!(
        trust_from(Some("garbage"), None, &ours.digest),
        Trust::Pinned(_)
    ));
    assert!(matches!(
        trust_from(Some(""), None, &ours.digest),
        Trust::Pinned(_)
    ));

    // The same from the directory.
    let data = tempfile::tempdir().unwrap();
    let d = dir(data.path());
    assert!(matches!(trust(&d, &ours.digest), Trust::Pinned(_)));
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(ca_path(&d), &ours.cert_pem).unwrap();
    assert!(matches!(trust(&d, &ours.digest), Trust::Roots(_)));
    assert!(matches!(trust(&d, &other.digest), Trust::Pinned(_)));
}

#[test]
fn the_key_is_made_once_private_and_kept() {
    let data = tempfile::tempdir().unwrap();
    let d = dir(data.path());
    let key = load_or_make_key(&d).unwrap();
    assert!(key.contains("BEGIN PRIVATE KEY"), "PKCS#8: {key}");
    assert_eq!(mode(&key_path(&d)), 0o600);
    assert_eq!(mode(&d), 0o700);
    assert_eq!(load_or_make_key(&d).unwrap(), key, "reused, not made again");
    // Two agents' state for the same directory (a restart) hold the same key.
    let a = NodeTls::new(data.path(), &ca().digest).unwrap();
    let b = NodeTls::new(data.path(), &ca().digest).unwrap();
    assert_eq!(a.key_sha256, b.key_sha256);
    // A damaged key is not silently replaced.
    std::fs::write(key_path(&d), "not a key").unwrap();
    let e = load_or_make_key(&d).unwrap_err().to_string();
    assert!(e.contains("node.key") && e.contains("remove it"), "{e}");
}

#[test]
fn the_chain_file_is_the_certificate_then_the_roots() {
    let ca = ca();
    let key = pki::new_key().unwrap();
    let cert = issue(
        &ca,
        &key,
        CertRole::Node,
        "n1",
        SystemTime::now(),
        pki::CERT_LIFETIME,
    );
    let text = chain(&cert, &ca.cert_pem);
    assert!(text.starts_with(cert.trim_end()), "{text}");
    assert!(text.ends_with(&ca.cert_pem), "{text}");
    // No text between them, whatever trailing newlines each has.
    assert_eq!(chain(cert.trim_end(), &ca.cert_pem), text);
    assert_eq!(chain(&format!("{cert}\n\n"), &ca.cert_pem), text);

    let data = tempfile::tempdir().unwrap();
    let d = dir(data.path());
    save(&d, &cert, &ca.cert_pem, &ca.digest).unwrap();
    let kept = std::fs::read_to_string(cert_path(&d)).unwrap();
    assert_eq!(kept, text);
    let certs = tls::certs_from_pem(&kept).unwrap();
    assert_eq!(certs.len(), 2);
    assert_eq!(tls::identity_of(&certs[0]).unwrap().id, "n1");
    assert_eq!(tls::ca_digest(&certs[1]), ca.digest);
    assert_eq!(std::fs::read_to_string(ca_path(&d)).unwrap(), ca.cert_pem);
    // What the agent presents is built from those files and the key.
    Identity::from_pem(&kept, &key).unwrap();
}

#[test]
fn renewal_falls_between_half_and_four_fifths_of_the_lifetime() {
    let ca = ca();
    let key = pki::new_key().unwrap();
    let issued = SystemTime::UNIX_EPOCH + Duration::from_secs(1_900_000_000);
    let cert = issue(&ca, &key, CertRole::Node, "n1", issued, pki::CERT_LIFETIME);
    let (id, v) = read_certificate(&cert).unwrap();
    assert_eq!((id.role, id.id.as_str()), (CertRole::Node, "n1"));
    // Valid for the lifetime, from a little before it was issued (clock skew).
    assert_eq!(v.not_after, issued + pki::CERT_LIFETIME);
    assert!(v.not_before < issued && v.not_before >= issued - Duration::from_secs(300));
    let life = v.not_after.duration_since(v.not_before).unwrap();
    assert_eq!(v.renew_at(0.5), v.not_before + life / 2);
    for _ in 0..100 {
        let at = v.renew_at(pki::renewal_fraction());
        assert!(at >= v.not_before + life / 2 && at <= v.not_before + life.mul_f64(0.8));
    }
    assert!(!v.expired(issued) && v.expired(v.not_after));
    // A chain's first certificate is the one read.
    let (id, _) = read_certificate(&chain(&cert, &ca.cert_pem)).unwrap();
    assert_eq!(id.id, "n1");
    assert!(
        read_certificate(&ca.cert_pem).is_err(),
        "a root names no holder"
    );
    assert!(read_certificate("nope").is_err());
}

#[test]
fn renewal_retries_from_five_seconds_to_a_minute() {
    let secs: Vec<u64> = (0..7).map(|a| renewal_backoff(a).as_secs()).collect();
    assert_eq!(secs, [5, 10, 20, 40, 60, 60, 60]);
    assert_eq!(renewal_backoff(u32::MAX), Duration::from_secs(60));
}

#[test]
fn only_a_node_certificate_for_this_nodes_key_is_taken() {
    let ca = ca();
    let data = tempfile::tempdir().unwrap();
    let node = NodeTls::new(data.path(), &ca.digest).unwrap();
    let now = SystemTime::now();
    let other_key = pki::new_key().unwrap();
    let foreign = issue(
        &ca,
        &other_key,
        CertRole::Node,
        "n1",
        now,
        pki::CERT_LIFETIME,
    );
    let e = node.accept(&foreign, &ca.cert_pem).unwrap_err();
    assert!(e.contains("another key"), "{e}");
    let member = issue(
        &ca,
        &node.key_pem,
        CertRole::Member,
        "1",
        now,
        pki::CERT_LIFETIME,
    );
    let e = node.accept(&member, &ca.cert_pem).unwrap_err();
    assert!(e.contains("member"), "{e}");
    assert!(node.accept("nope", &ca.cert_pem).is_err());
    assert!(!node.has_certificate());
    assert!(!cert_path(&dir(data.path())).exists(), "nothing kept");

    let ours = issue(
        &ca,
        &node.key_pem,
        CertRole::Node,
        "n1",
        now,
        pki::CERT_LIFETIME,
    );
    assert!(node.accept(&ours, "nope").is_err(), "no roots");
    let (_, v) = node.accept(&ours, &ca.cert_pem).unwrap();
    assert_eq!(*node.held().borrow(), Some(v));
    assert!(node.has_certificate() && !node.pinned());
    assert_eq!(
        std::fs::read_to_string(cert_path(&dir(data.path()))).unwrap(),
        chain(&ours, &ca.cert_pem)
    );
}

#[test]
fn a_tls_failure_says_what_failed() {
    let pinned = [
        "error sending request for url (https://10.0.0.1:7070/v1/agent/register)".to_string(),
        "client error (Connect)".to_string(),
        "unexpected error: this server's certificate chain holds no root with the digest in the \
         token (sha256 ab): it is not a member of that cluster"
            .to_string(),
    ];
    let m = tls_failure("10.0.0.1:7070", &pinned, true).unwrap();
    assert!(
        m.starts_with(
            "controller 10.0.0.1:7070 is not a member of the cluster in the join token: \
             unexpected error: this server's certificate chain holds no root"
        ),
        "{m}"
    );
    let unknown = [
        "x".to_string(),
        "invalid peer certificate: UnknownIssuer".to_string(),
    ];
    let m = tls_failure("a:1", &unknown, false).unwrap();
    assert!(
        m.contains("not a member of this cluster") && m.contains("UnknownIssuer"),
        "{m}"
    );
    let alert = [
        "x".to_string(),
        "received fatal alert: CertificateExpired".to_string(),
    ];
    let m = tls_failure("a:1", &alert, false).unwrap();
    assert!(
        m.contains("refused this node's TLS connection") && m.contains("CertificateExpired"),
        "{m}"
    );
    let refused = [
        "x".to_string(),
        "Connection refused (os error 111)".to_string(),
    ];
    assert_eq!(tls_failure("a:1", &refused, true), None);
}

// ---- The client against a fake controller over TLS. ----

/// What the fake controller saw of one request.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    format: u32,
    /// `role:id` of the client certificate, `anonymous` for TLS without one, `plain`.
    peer: String,
    bearer: Option<String>,
    csr: bool,
}

#[derive(Clone)]
struct Fake {
    ca: Arc<Ca>,
    seen: Arc<Mutex<Vec<Seen>>>,
    lifetime: Duration,
    /// The status renewals get (200 when `None`).
    refuse_renewal: Arc<Mutex<Option<u16>>>,
}

impl Fake {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn answer<T: Codec>(value: &T, format: u32) -> axum::response::Response {
    let media = if format == 0 {
        POSTCARD_MEDIA_TYPE
    } else {
        PROTOBUF_MEDIA_TYPE
    };
    axum::response::Response::builder()
        .header("content-type", media)
        .header(VERSION_HEADER, "0.3.0")
        .header(FORMAT_HEADER, CURRENT.to_string())
        .header(OLDEST_FORMAT_HEADER, OLDEST.to_string())
        .body(axum::body::Body::from(value.encode(format).unwrap()))
        .unwrap()
}

async fn fake_handler(
    axum::extract::State(fake): axum::extract::State<Fake>,
    uri: axum::http::Uri,
    peer: Option<axum::Extension<TlsPeer>>,
    headers: axum::http::HeaderMap,
    body: bytes::Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let format = match headers.get("content-type").and_then(|v| v.to_str().ok()) {
        Some(ct) if ct.starts_with(PROTOBUF_MEDIA_TYPE) => CURRENT,
        _ => 0,
    };
    let peer = match peer {
        None => "plain".to_string(),
        Some(axum::Extension(TlsPeer { identity: None })) => "anonymous".into(),
        Some(axum::Extension(TlsPeer { identity: Some(i) })) => {
            format!("{}:{}", i.role.as_str(), i.id)
        }
    };
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let sign = |csr: &str| {
        let subject = Subject {
            role: CertRole::Node,
            id: "n1".into(),
            addresses: vec![],
        };
        pki::sign(&fake.ca, csr, &subject, SystemTime::now(), fake.lifetime).unwrap()
    };
    let mut seen = Seen {
        path: uri.path().to_string(),
        format,
        peer,
        bearer,
        csr: false,
    };
    let response = match uri.path() {
        "/v1/agent/register" => {
            let req = RegisterRequest::decode(&body, format).unwrap();
            seen.csr = req.csr.is_some();
            let certificate = req.csr.as_deref().map(sign);
            let node_credential = (format >= 2 && certificate.is_none())
                .then(|| "HOISTNODE1-n1-00112233445566778899aabbccddeeff".to_string());
            answer(
                &RegisterResponse {
                    node_id: "n1".into(),
                    term: 1,
                    heartbeat_interval_ms: 1000,
                    grace_ms: 5000,
                    cluster_id: CLUSTER.into(),
                    node_credential,
                    ca_certificate: certificate.as_ref().map(|_| fake.ca.cert_pem.clone()),
                    certificate,
                },
                format,
            )
        }
        "/v1/agent/heartbeat" => {
            Heartbeat::decode(&body, format).unwrap();
            answer(
                &HeartbeatAck {
                    term: 1,
                    known: true,
                    ca_digest: fake.ca.digest.clone(),
                    heartbeat_interval_ms: 0,
                },
                format,
            )
        }
        "/v1/agent/certificate" => {
            let refused = *fake.refuse_renewal.lock().unwrap();
            if let Some(status) = refused {
                let status = axum::http::StatusCode::from_u16(status).unwrap();
                (
                    status,
                    r#"{"message":"node \"n1\" registered another key"}"#,
                )
                    .into_response()
            } else {
                let req = CertificateRequest::decode(&body, format).unwrap();
                seen.csr = true;
                answer(
                    &CertificateResponse {
                        certificate: sign(&req.csr),
                        ca_certificate: fake.ca.cert_pem.clone(),
                    },
                    format,
                )
            }
        }
        _ => axum::http::StatusCode::NOT_FOUND.into_response(),
    };
    fake.seen.lock().unwrap().push(seen);
    response
}

/// A fake controller member of `ca`'s cluster, serving plain HTTP and TLS on one port.
async fn fake_controller(ca: Ca, lifetime: Duration) -> (String, Fake) {
    hoist_common::init_tls();
    let key = pki::new_key().unwrap();
    let cert = issue(
        &ca,
        &key,
        CertRole::Member,
        "1",
        SystemTime::now(),
        pki::CERT_LIFETIME,
    );
    let identity = Identity::from_pem(&chain(&cert, &ca.cert_pem), &key).unwrap();
    let config = tls::server_config(identity, &tls::certs_from_pem(&ca.cert_pem).unwrap()).unwrap();
    let fake = Fake {
        ca: Arc::new(ca),
        seen: Arc::default(),
        lifetime,
        refuse_renewal: Arc::default(),
    };
    let router = axum::Router::new()
        .fallback(fake_handler)
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, rx) = tokio::sync::watch::channel(Some(config));
    tokio::spawn(async move {
        let _keep = tx;
        hoist_transport::serve_tls(
            listener,
            router,
            hoist_transport::Limits::default(),
            rx,
            std::future::pending(),
        )
        .await
    });
    (addr, fake)
}

fn registration(node_id: Option<&str>) -> RegisterRequest {
    RegisterRequest {
        token: String::new(),
        node_id: node_id.map(String::from),
        hostname: "h".into(),
        address: "127.0.0.1".into(),
        labels: Default::default(),
        capacity: hoist_proto::cluster::NodeResources {
            cpu_millis: 1000,
            memory_bytes: 1 << 30,
        },
        agent_version: "0.3.0".into(),
        wg_public_key: None,
        wg_endpoint: None,
        csr: None,
    }
}

fn heartbeat() -> Heartbeat {
    Heartbeat {
        node_id: "n1".into(),
        term_seen: 1,
        endpoints_applied: 0,
    }
}

#[tokio::test]
async fn over_tls_the_agent_registers_with_a_csr_and_then_presents_its_certificate() {
    let ca = ca();
    let digest = ca.digest.clone();
    let (addr, fake) = fake_controller(ca.clone(), pki::CERT_LIFETIME).await;
    let data = tempfile::tempdir().unwrap();
    let client = ControllerClient::new(vec![addr.clone()], &token(&digest), data.path()).unwrap();
    assert!(client.uses_tls());
    let mut held = client.certificate().unwrap();
    assert_eq!(*held.borrow(), None);

    let resp = client.register(&registration(None)).await.unwrap();
    assert_eq!(resp.node_id, "n1");
    assert!(resp.certificate.is_some() && resp.node_credential.is_none());
    // The first registration, in format 0, cannot carry the CSR; the second, in format 2,
    // does; a certificate ends it (no node credential is looked for). Then the connection the
    // node's requests will share is opened, presenting the certificate.
    let seen = fake.seen();
    let registrations: Vec<(u32, bool, &str)> = seen
        .iter()
        .filter(|s| s.path == "/v1/agent/register")
        .map(|s| (s.format, s.csr, s.peer.as_str()))
        .collect();
    assert_eq!(
        registrations,
        [(0, false, "anonymous"), (2, true, "anonymous")]
    );
    assert!(seen
        .iter()
        .filter(|s| s.path == "/v1/agent/register")
        .all(|s| s.bearer.as_deref() == Some(&*format!("Bearer {}", token(&digest)))));
    let opened = seen.last().unwrap();
    assert_eq!(
        (
            opened.path.as_str(),
            opened.peer.as_str(),
            opened.bearer.as_deref()
        ),
        ("/v1/health", "node:n1", None)
    );
    let d = dir(data.path());
    assert_eq!(mode(&key_path(&d)), 0o600);
    assert_eq!(std::fs::read_to_string(ca_path(&d)).unwrap(), ca.cert_pem);
    let kept = std::fs::read_to_string(cert_path(&d)).unwrap();
    assert_eq!(tls::certs_from_pem(&kept).unwrap().len(), 2);
    assert!(held.has_changed().unwrap());
    let first = held.borrow_and_update().unwrap();

    // Everything else presents the certificate, and carries no bearer.
    client.heartbeat(&heartbeat()).await.unwrap();
    let hb = fake.seen().pop().unwrap();
    assert_eq!(
        (hb.path.as_str(), hb.peer.as_str()),
        ("/v1/agent/heartbeat", "node:n1")
    );
    assert_eq!(hb.bearer, None);

    // Registering again (as after a 401) still presents no certificate, and asks once.
    let before = fake.seen().len();
    client.register(&registration(Some("n1"))).await.unwrap();
    let again: Vec<Seen> = fake.seen()[before..]
        .iter()
        .filter(|s| s.path == "/v1/agent/register")
        .cloned()
        .collect();
    assert_eq!(again.len(), 1, "{again:?}");
    assert_eq!(
        (again[0].format, again[0].csr, again[0].peer.as_str()),
        (2, true, "anonymous")
    );

    // Renewal: a CSR for the same key, over the certificate.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let renewed = client.renew("n1").await.unwrap();
    let seen = fake.seen();
    let r = seen
        .iter()
        .rfind(|s| s.path != "/v1/health")
        .unwrap()
        .clone();
    assert_eq!(
        (r.path.as_str(), r.peer.as_str(), r.bearer),
        ("/v1/agent/certificate", "node:n1", None)
    );
    assert!(renewed.not_after > first.not_after, "{renewed:?} {first:?}");
    assert_eq!(*held.borrow(), Some(renewed));
    client.heartbeat(&heartbeat()).await.unwrap();

    // The controllers no longer take the key: the caller registers again.
    *fake.refuse_renewal.lock().unwrap() = Some(403);
    let e = client.renew("n1").await.unwrap_err();
    assert!(e.is_unknown_node(), "{e}");
    assert!(e.to_string().contains("another key"), "{e}");

    // A restart: the same key, and the kept root is trusted rather than the digest alone.
    let restarted = ControllerClient::new(vec![addr], &token(&digest), data.path()).unwrap();
    client_trusts_roots(data.path(), &digest);
    restarted.register(&registration(Some("n1"))).await.unwrap();
    let seen = fake.seen();
    let last = seen.iter().rfind(|s| s.path != "/v1/health").unwrap();
    assert_eq!((last.csr, last.peer.as_str()), (true, "anonymous"));
    let (id, _) = read_certificate(&std::fs::read_to_string(cert_path(&d)).unwrap()).unwrap();
    let (first_id, _) = read_certificate(&kept).unwrap();
    assert_eq!(
        id.key_sha256, first_id.key_sha256,
        "the key is kept across restarts"
    );
}

fn client_trusts_roots(data_dir: &Path, digest: &str) {
    assert!(matches!(trust(&dir(data_dir), digest), Trust::Roots(_)));
}

#[tokio::test]
async fn a_controller_of_another_cluster_is_refused_with_rustls_words() {
    let theirs = ca();
    let (addr, fake) = fake_controller(theirs, pki::CERT_LIFETIME).await;
    let data = tempfile::tempdir().unwrap();
    let ours = ca();
    let client =
        ControllerClient::new(vec![addr.clone()], &token(&ours.digest), data.path()).unwrap();
    let e = client.register(&registration(None)).await.unwrap_err();
    assert!(matches!(e, ClientError::Unreachable(_)), "{e:?}");
    let text = e.to_string();
    assert!(
        text.contains(&format!(
            "controller {addr} is not a member of the cluster in the join token"
        )) && text.contains("holds no root with the digest in the token"),
        "{text}"
    );
    assert!(fake.seen().is_empty(), "no request reached it");
    assert!(!cert_path(&dir(data.path())).exists());
}

#[tokio::test]
async fn with_a_hoist1_token_nothing_changes() {
    let (addr, fake) = fake_controller(ca(), pki::CERT_LIFETIME).await;
    let data = tempfile::tempdir().unwrap();
    let token = format!("HOIST1-{CLUSTER}-{SECRET}");
    let client = ControllerClient::new(vec![addr], &token, data.path()).unwrap();
    assert!(!client.uses_tls() && client.certificate().is_none());
    let resp = client.register(&registration(None)).await.unwrap();
    assert!(resp.node_credential.is_some() && resp.certificate.is_none());
    client.heartbeat(&heartbeat()).await.unwrap();
    let seen = fake.seen();
    let shape: Vec<(&str, u32, &str, bool)> = seen
        .iter()
        .map(|s| (s.path.as_str(), s.format, s.peer.as_str(), s.csr))
        .collect();
    assert_eq!(
        shape,
        [
            ("/v1/agent/register", 0, "plain", false),
            ("/v1/agent/register", 2, "plain", false),
            ("/v1/agent/heartbeat", 2, "plain", false),
        ]
    );
    assert_eq!(
        seen[2].bearer.as_deref(),
        Some("Bearer HOISTNODE1-n1-00112233445566778899aabbccddeeff")
    );
    assert!(
        !dir(data.path()).exists(),
        "no key made for a plain cluster"
    );
}
