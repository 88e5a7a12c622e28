//! The TLS listener and clients, against real sockets on loopback, with certificates of a real
//! (test) cluster CA.

use super::*;
use crate::pki::{self, Subject};
use crate::server::{serve_tls, Limits};
use axum::routing::get;
use axum::{Extension, Router};
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

struct Cluster {
    ca: pki::Ca,
}

impl Cluster {
    fn new() -> Cluster {
        Cluster {
            ca: pki::make_ca("test", SystemTime::now()).unwrap(),
        }
    }

    fn issue(&self, role: CertRole, id: &str, lifetime: Duration, at: SystemTime) -> Identity {
        let key = pki::new_key().unwrap();
        let csr = pki::request(&key, role, id).unwrap();
        let subject = Subject {
            role,
            id: id.into(),
            addresses: vec!["127.0.0.1".parse().unwrap()],
        };
        let cert = pki::sign(&self.ca, &csr, &subject, at, lifetime).unwrap();
        Identity::from_pem(&format!("{cert}{}", self.ca.cert_pem), &key).unwrap()
    }

    fn roots(&self) -> Vec<CertificateDer<'static>> {
        certs_from_pem(&self.ca.cert_pem).unwrap()
    }
}

/// A listener whose `/who` answers who the client certificate names ("plain" without TLS).
async fn start(member: Identity, roots: Vec<CertificateDer<'static>>) -> SocketAddr {
    crate::tls::tests::install();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = Router::new().route(
        "/who",
        get(|peer: Option<Extension<TlsPeer>>| async move {
            match peer {
                None => "plain".to_string(),
                Some(Extension(TlsPeer { identity: None })) => "anonymous".to_string(),
                Some(Extension(TlsPeer { identity: Some(i) })) => {
                    format!("{}:{}", i.role.as_str(), i.id)
                }
            }
        }),
    );
    let config = server_config(member, &roots).unwrap();
    let (_tx, rx) = tokio::sync::watch::channel(Some(config));
    tokio::spawn(async move {
        let _keep = _tx;
        serve_tls(
            listener,
            router,
            Limits::default(),
            rx,
            std::future::pending(),
        )
        .await
    });
    addr
}

fn install() {
    hoist_common::init_tls();
}

async fn who(addr: SocketAddr, tls: Option<ClientConfig>) -> Result<String, String> {
    let (scheme, builder) = match tls {
        Some(c) => ("https", crate::client::builder_tls(c)),
        None => ("http", crate::client::builder()),
    };
    let client = builder.build().unwrap();
    let resp = client
        .get(format!("{scheme}://{addr}/who"))
        .send()
        .await
        .map_err(|e| format!("{e:?}"))?;
    Ok(resp.text().await.unwrap())
}

#[tokio::test]
async fn one_port_serves_plain_and_mutual_tls_and_names_the_client() {
    let cluster = Cluster::new();
    let now = SystemTime::now();
    let member = cluster.issue(CertRole::Member, "1", pki::CERT_LIFETIME, now);
    let addr = start(member, cluster.roots()).await;
    assert_eq!(who(addr, None).await.unwrap(), "plain");
    // First contact with only the digest (a join token's), no certificate of its own.
    let pinned = client_config(Trust::Pinned(cluster.ca.digest.clone()), None).unwrap();
    assert_eq!(who(addr, Some(pinned)).await.unwrap(), "anonymous");
    // A node with its certificate, trusting the root.
    let node = cluster.issue(CertRole::Node, "n1", pki::CERT_LIFETIME, now);
    let config = client_config(Trust::Roots(cluster.roots()), Some(node)).unwrap();
    assert_eq!(who(addr, Some(config)).await.unwrap(), "node:n1");
}

#[tokio::test]
async fn a_client_refuses_a_server_of_another_cluster() {
    let ours = Cluster::new();
    let theirs = Cluster::new();
    let now = SystemTime::now();
    let addr = start(
        theirs.issue(CertRole::Member, "1", pki::CERT_LIFETIME, now),
        theirs.roots(),
    )
    .await;
    let pinned = client_config(Trust::Pinned(ours.ca.digest.clone()), None).unwrap();
    let e = who(addr, Some(pinned)).await.unwrap_err();
    assert!(e.contains("no root with the digest"), "{e}");
    let roots = client_config(Trust::Roots(ours.roots()), None).unwrap();
    assert!(who(addr, Some(roots)).await.is_err());
}

#[tokio::test]
async fn a_node_certificate_cannot_serve_as_a_member() {
    // A node holds a certificate of the cluster, but not a member's: a client must not take it
    // for a controller.
    let cluster = Cluster::new();
    let now = SystemTime::now();
    let addr = start(
        cluster.issue(CertRole::Node, "n1", pki::CERT_LIFETIME, now),
        cluster.roots(),
    )
    .await;
    let config = client_config(Trust::Roots(cluster.roots()), None).unwrap();
    assert!(who(addr, Some(config)).await.is_err());
}

#[tokio::test]
async fn an_expired_or_foreign_client_certificate_is_refused_at_the_handshake() {
    let cluster = Cluster::new();
    let now = SystemTime::now();
    let addr = start(
        cluster.issue(CertRole::Member, "1", pki::CERT_LIFETIME, now),
        cluster.roots(),
    )
    .await;
    let two_days_ago = now - Duration::from_secs(2 * 24 * 3600);
    let expired = cluster.issue(CertRole::Node, "n1", pki::CERT_LIFETIME, two_days_ago);
    let config = client_config(Trust::Roots(cluster.roots()), Some(expired)).unwrap();
    assert!(who(addr, Some(config)).await.is_err());
    let other = Cluster::new().issue(CertRole::Node, "n1", pki::CERT_LIFETIME, now);
    let config = client_config(Trust::Roots(cluster.roots()), Some(other)).unwrap();
    assert!(who(addr, Some(config)).await.is_err());
}

#[tokio::test]
async fn a_silent_connection_is_closed_before_its_first_byte_counts() {
    use tokio::io::AsyncReadExt;
    let cluster = Cluster::new();
    let member = cluster.issue(CertRole::Member, "1", pki::CERT_LIFETIME, SystemTime::now());
    crate::tls::tests::install();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = server_config(member, &cluster.roots()).unwrap();
    let (_tx, rx) = tokio::sync::watch::channel(Some(config));
    let limits = Limits {
        header_read_timeout: Duration::from_millis(300),
        max_connections: 4,
    };
    tokio::spawn(async move {
        let _keep = _tx;
        serve_tls(listener, Router::new(), limits, rx, std::future::pending()).await
    });
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut buf = [0u8; 1];
    let closed = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .expect("closed within 5 s");
    assert_eq!(closed.unwrap(), 0);
}

#[tokio::test]
async fn a_peer_that_spoke_tls_is_never_downgraded_to_plain_http() {
    install();
    let ours = Cluster::new();
    let theirs = Cluster::new();
    let now = SystemTime::now();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let router = Router::new().route(
        "/who",
        get(|peer: Option<Extension<TlsPeer>>| async move {
            if peer.is_some() {
                "tls"
            } else {
                "plain"
            }
        }),
    );
    let member = ours.issue(CertRole::Member, "1", pki::CERT_LIFETIME, now);
    let (config_tx, config_rx) =
        tokio::sync::watch::channel(Some(server_config(member, &ours.roots()).unwrap()));
    tokio::spawn(async move {
        serve_tls(
            listener,
            router,
            Limits::default(),
            config_rx,
            std::future::pending(),
        )
        .await
    });
    let me = ours.issue(CertRole::Member, "2", pki::CERT_LIFETIME, now);
    let tls_client = |identity: Identity| {
        let config = client_config(Trust::Roots(ours.roots()), Some(identity)).unwrap();
        // A new connection per request: a kept one was made with the genuine member.
        crate::client::builder_tls(config)
            .pool_max_idle_per_host(0)
            .build()
            .unwrap()
    };
    async fn who(clients: &crate::client::PeerClients, addr: &str) -> String {
        match clients
            .send(addr, |c, base| c.get(format!("{base}/who")))
            .await
        {
            Ok(r) => r.text().await.unwrap(),
            Err(_) => "refused".to_string(),
        }
    }
    let peers = crate::client::PeerClients::new(crate::client::builder().build().unwrap());
    peers.set_tls(tls_client(me.clone()));
    assert_eq!(who(&peers, &addr).await, "tls");
    // Someone on the network answers in the member's place with another root: the request
    // fails; it is not sent again over plain HTTP.
    let impostor = theirs.issue(CertRole::Member, "1", pki::CERT_LIFETIME, now);
    config_tx.send_replace(Some(server_config(impostor, &theirs.roots()).unwrap()));
    assert_eq!(who(&peers, &addr).await, "refused");
    // A peer never heard over TLS (joining, without a certificate): plain HTTP.
    config_tx.send_replace(None);
    let fresh = crate::client::PeerClients::new(crate::client::builder().build().unwrap());
    fresh.set_tls(tls_client(me));
    assert_eq!(who(&fresh, &addr).await, "plain");
}
