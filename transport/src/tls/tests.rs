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
    start_with(member, roots, |_| {}).await
}

/// As [`start`], with `change` made to the TLS configuration.
async fn start_with(
    member: Identity,
    roots: Vec<CertificateDer<'static>>,
    change: impl FnOnce(&mut rustls::ServerConfig),
) -> SocketAddr {
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
    let mut config = (*server_config(member, &roots).unwrap()).clone();
    change(&mut config);
    let (_tx, rx) = tokio::sync::watch::channel(Some(Arc::new(config)));
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

/// A rotation of the root, as the cluster rolls it out: certificates under the new root carry the
/// old root's cross-signature, so that everyone still trusting only the old root verifies them,
/// and everyone trusting both takes certificates under either; once the old root is dropped,
/// certificates under it are refused.
#[tokio::test]
async fn a_rotated_root_is_trusted_through_its_cross_signature_until_the_old_one_is_dropped() {
    let old = Cluster::new();
    let now = SystemTime::now();
    let (next, cross) = pki::make_next_ca("test", &old.ca, now).unwrap();
    assert_ne!(next.digest, old.ca.digest);
    let cross_der = certs_from_pem(&cross).unwrap();
    assert!(
        !is_root(&cross_der[0]),
        "a cross-signed root is not self-issued"
    );
    assert!(is_root(&old.roots()[0]));
    // Same key as the new root: the same key id, so certificates it signs name it either way.
    let next_root = certs_from_pem(&next.cert_pem).unwrap();
    assert_eq!(key_id(&cross_der[0]), key_id(&next_root[0]));
    assert_ne!(key_id(&next_root[0]), key_id(&old.roots()[0]));

    // A member under the new root presents [leaf, cross, new root, old root].
    let issue_next = |role, id: &str| {
        let key = pki::new_key().unwrap();
        let csr = pki::request(&key, role, id).unwrap();
        let subject = Subject {
            role,
            id: id.into(),
            addresses: vec![],
        };
        let cert = pki::sign(&next, &csr, &subject, now, pki::CERT_LIFETIME).unwrap();
        let chain = format!("{cert}{cross}{}{}", next.cert_pem, old.ca.cert_pem);
        Identity::from_pem(&chain, &key).unwrap()
    };
    let member = issue_next(CertRole::Member, "1");
    let leaf = identity_of(&member.chain[0]).unwrap();
    assert_eq!(Some(leaf.issuer_key_id.clone()), key_id(&next_root[0]));
    let (presented, roots) = split_roots(member.chain.clone());
    assert_eq!((presented.len(), roots.len()), (2, 2));
    let both: Vec<_> = next_root
        .iter()
        .chain(old.roots().iter())
        .cloned()
        .collect();
    let addr = start(member, both.clone()).await;

    // Clients trusting only the old root, pinned to its digest (an old join token), or trusting
    // only the new root all verify the member.
    for trust in [
        Trust::Roots(old.roots()),
        Trust::Pinned(old.ca.digest.clone()),
        Trust::Roots(next_root.clone()),
        Trust::Pinned(next.digest.clone()),
    ] {
        let config = client_config(trust.clone(), None).unwrap();
        assert_eq!(
            who(addr, Some(config)).await.unwrap(),
            "anonymous",
            "{trust:?}"
        );
    }
    // During the rotation the member takes a node certificate under either root.
    let old_node = old.issue(CertRole::Node, "n-old", pki::CERT_LIFETIME, now);
    let new_node = issue_next(CertRole::Node, "n-new");
    let config = client_config(Trust::Roots(old.roots()), Some(old_node.clone())).unwrap();
    assert_eq!(who(addr, Some(config)).await.unwrap(), "node:n-old");
    let config = client_config(Trust::Roots(both.clone()), Some(new_node.clone())).unwrap();
    assert_eq!(who(addr, Some(config)).await.unwrap(), "node:n-new");

    // A member that still trusts only the old root takes the new node certificate too (through
    // the cross-signature it carries).
    let lagging = start(
        old.issue(CertRole::Member, "2", pki::CERT_LIFETIME, now),
        old.roots(),
    )
    .await;
    let config = client_config(Trust::Roots(both), Some(new_node.clone())).unwrap();
    assert_eq!(who(lagging, Some(config)).await.unwrap(), "node:n-new");

    // Once the old root is dropped, a certificate under it fails the handshake.
    let finished = {
        let key = pki::new_key().unwrap();
        let csr = pki::request(&key, CertRole::Member, "3").unwrap();
        let subject = Subject {
            role: CertRole::Member,
            id: "3".into(),
            addresses: vec![],
        };
        let cert = pki::sign(&next, &csr, &subject, now, pki::CERT_LIFETIME).unwrap();
        start(
            Identity::from_pem(&format!("{cert}{}", next.cert_pem), &key).unwrap(),
            next_root.clone(),
        )
        .await
    };
    let config = client_config(Trust::Roots(next_root.clone()), Some(old_node)).unwrap();
    assert!(who(finished, Some(config)).await.is_err());
    let config = client_config(Trust::Roots(next_root), Some(new_node)).unwrap();
    assert_eq!(who(finished, Some(config)).await.unwrap(), "node:n-new");
}

/// The leader asks a member which certificate it serves with one handshake.
#[tokio::test]
async fn the_served_certificate_is_read_from_a_handshake() {
    let cluster = Cluster::new();
    let member = cluster.issue(CertRole::Member, "7", pki::CERT_LIFETIME, SystemTime::now());
    let addr = start(member, cluster.roots()).await;
    let config = client_config(Trust::Roots(cluster.roots()), None).unwrap();
    let served = crate::client::served_certificate(
        &addr.to_string(),
        std::sync::Arc::new(config),
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    let who = identity_of(&served).unwrap();
    assert_eq!((who.role, who.id.as_str()), (CertRole::Member, "7"));
    assert_eq!(Some(who.issuer_key_id), key_id(&cluster.roots()[0]));
    let other = Cluster::new();
    let config = client_config(Trust::Roots(other.roots()), None).unwrap();
    let e = crate::client::served_certificate(
        &addr.to_string(),
        std::sync::Arc::new(config),
        Duration::from_secs(5),
    )
    .await
    .unwrap_err();
    assert!(e.contains("TLS with"), "{e}");
}

/// Echoes one line back with the client certificate's holder in front.
struct Echo;

impl crate::server::StreamService for Echo {
    fn serve(
        &self,
        mut io: Box<dyn crate::server::StreamIo>,
        peer: TlsPeer,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        Box::pin(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let who = peer.identity.map_or("anonymous".into(), |i| i.id);
            let mut buf = [0u8; 64];
            let n = io.read(&mut buf).await.unwrap_or(0);
            let mut out = format!("{who}:").into_bytes();
            out.extend_from_slice(&buf[..n]);
            let _ = io.write_all(&out).await;
            let _ = io.shutdown().await;
        })
    }
}

/// A client that asks for a stream protocol by ALPN gets it, with its certificate's holder;
/// HTTP clients on the same port are served as before, and a server that offers no stream
/// protocol negotiates none (the client then knows to use HTTP).
#[tokio::test]
async fn a_stream_protocol_is_served_beside_http_when_its_alpn_is_asked_for() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    install();
    let cluster = Cluster::new();
    let now = SystemTime::now();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = Router::new().route("/who", get(|| async { "http" }));
    let member = cluster.issue(CertRole::Member, "1", pki::CERT_LIFETIME, now);
    let config = server_config_alpn(member, &cluster.roots(), &[b"echo/1"]).unwrap();
    let (_tx, rx) = tokio::sync::watch::channel(Some(config));
    let streams: crate::server::Streams = vec![(b"echo/1", Arc::new(Echo))];
    tokio::spawn(async move {
        let _keep = _tx;
        crate::server::serve_tls_with(
            listener,
            router,
            Limits::default(),
            rx,
            streams,
            std::future::pending(),
        )
        .await
    });
    let me = cluster.issue(CertRole::Member, "2", pki::CERT_LIFETIME, now);
    let plain = client_config(Trust::Roots(cluster.roots()), Some(me.clone())).unwrap();
    assert_eq!(who(addr, Some(plain.clone())).await.unwrap(), "http");
    assert_eq!(who(addr, None).await.unwrap(), "http");

    let stream = |alpn: &[u8]| {
        let mut config = plain.clone();
        config.alpn_protocols = vec![alpn.to_vec()];
        Arc::new(config)
    };
    let name = ServerName::try_from(MEMBER_NAME).unwrap();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(stream(b"echo/1"))
        .connect(name.clone(), tcp)
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"echo/1"[..]));
    tls.write_all(b"hello").await.unwrap();
    tls.flush().await.unwrap();
    let mut got = String::new();
    tls.read_to_string(&mut got).await.unwrap();
    assert_eq!(got, "2:hello");

    // An older member's listener, which offered no ALPN name at all: the handshake succeeds
    // and names no protocol.
    let old = start_with(
        cluster.issue(CertRole::Member, "3", pki::CERT_LIFETIME, now),
        cluster.roots(),
        |config| config.alpn_protocols.clear(),
    )
    .await;
    let tcp = tokio::net::TcpStream::connect(old).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(stream(b"echo/1"))
        .connect(name, tcp)
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), None);
}

/// A listener that counts the connections it accepted and those it has dropped since.
struct Counting {
    inner: tokio::net::TcpListener,
    accepted: Arc<std::sync::atomic::AtomicUsize>,
    dropped: Arc<std::sync::atomic::AtomicUsize>,
}

/// A connection that counts itself dropped.
struct Tracked {
    inner: tokio::net::TcpStream,
    dropped: Arc<std::sync::atomic::AtomicUsize>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.dropped
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl tokio::io::AsyncRead for Tracked {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Tracked {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl axum::serve::Listener for Counting {
    type Io = Tracked;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Tracked, SocketAddr) {
        let (io, addr) = axum::serve::Listener::accept(&mut self.inner).await;
        self.accepted
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dropped = self.dropped.clone();
        (Tracked { inner: io, dropped }, addr)
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// A client that asks for HTTP/2 sends its requests over its connection, however many wait at
/// once and for longer than the listener's idle limit, and each answer is dated; the listener
/// closes that connection once it has had no request in flight for the limit. A client that
/// asks for nothing still gets HTTP/1.1.
#[tokio::test]
async fn http2_clients_share_one_connection_closed_once_idle() {
    use std::sync::atomic::Ordering::SeqCst;
    install();
    let cluster = Cluster::new();
    let now = SystemTime::now();
    let idle_limit = Duration::from_millis(300);
    let inner = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = inner.local_addr().unwrap();
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let dropped = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let listener = Counting {
        inner,
        accepted: accepted.clone(),
        dropped: dropped.clone(),
    };
    let router = Router::new().route(
        "/slow",
        get(move |peer: Option<Extension<TlsPeer>>| async move {
            tokio::time::sleep(idle_limit * 2).await;
            let id = peer.and_then(|Extension(p)| p.identity).map(|i| i.id);
            id.unwrap_or_default()
        }),
    );
    let member = cluster.issue(CertRole::Member, "1", pki::CERT_LIFETIME, now);
    let config = server_config(member, &cluster.roots()).unwrap();
    let (_tx, rx) = tokio::sync::watch::channel(Some(config));
    let limits = Limits {
        header_read_timeout: idle_limit,
        ..Limits::default()
    };
    tokio::spawn(async move {
        let _keep = _tx;
        serve_tls(listener, router, limits, rx, std::future::pending()).await
    });
    let node = cluster.issue(CertRole::Node, "n1", pki::CERT_LIFETIME, now);
    let tls = client_config(Trust::Roots(cluster.roots()), Some(node)).unwrap();
    let client = crate::client::builder_tls_http2(tls.clone())
        .build()
        .unwrap();
    let url = format!("https://{addr}/slow");
    // The first request makes the connection (requests that start together before one is made
    // each make their own), then three wait at once on it.
    client.get(&url).send().await.unwrap();
    let answers = futures::future::join_all((0..3).map(|_| client.get(&url).send())).await;
    for answer in answers {
        let answer = answer.unwrap();
        assert_eq!(answer.version(), reqwest::Version::HTTP_2);
        // Dated by the listener (hyper's own date is off for HTTP/2: `server::date_header`).
        let date = answer
            .headers()
            .get("date")
            .expect("an HTTP/2 answer has a date");
        let date = httpdate::parse_http_date(date.to_str().unwrap()).unwrap();
        let off = date.duration_since(now).unwrap_or_else(|e| e.duration());
        assert!(off < Duration::from_secs(30), "date {date:?}, now {now:?}");
        assert_eq!(answer.text().await.unwrap(), "n1");
    }
    assert_eq!(
        accepted.load(SeqCst),
        1,
        "one connection for all the requests"
    );

    let closed_by = std::time::Instant::now() + Duration::from_secs(5);
    while dropped.load(SeqCst) == 0 {
        assert!(
            std::time::Instant::now() < closed_by,
            "an idle HTTP/2 connection stays open"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let plain = crate::client::builder_tls(tls).build().unwrap();
    let answer = plain.get(&url).send().await.unwrap();
    assert_eq!(answer.version(), reqwest::Version::HTTP_11);
}
