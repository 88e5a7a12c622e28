//! The member link ([`hoist_proto::peer_link`]): Raft RPCs and forwarded writes as frames on one
//! persistent mutual-TLS connection per peer, both ends.
//!
//! [`Links`] is the calling side: a pool of open links by address, used by the Raft network
//! ([`super::network`]) and the forwarder ([`super::forwarder`]). A call that cannot use a
//! link answers `Ok(None)` and the caller sends the same body over HTTP, as it always could:
//! this member has no certificate yet (or peers are plain), the peer does not offer the link
//! (an older build, or it has no certificate), the body is too large for a frame, or no link
//! could be opened (then the HTTP path reports why). A peer that did not offer the link is
//! asked again after [`RETRY_UNSUPPORTED`], so that an upgraded member is used at once.
//!
//! [`Server`] is the answering side, handed the TLS connections that negotiated the link by the
//! listener. It serves only a member certificate of a member of this cluster (checked again for
//! every request, so that a removed member loses its link), and answers each request with the
//! same [`RaftNode::handle_rpc`] as the `/raft/{kind}` routes. Until its hello is read, a client
//! is not known to be anyone: the hello is read up to 4 KiB and within 500 ms, so that no one
//! makes a member allocate a frame's 64 MiB or hold a connection by saying nothing.
//!
//! A link carries one request at a time: a caller takes a link from the pool, sends, waits for
//! the answer and puts it back, so concurrent calls to one peer open more links (as an HTTP
//! pool opens more connections). A call whose time runs out after its request was sent leaves
//! the link to a task that reads the late answer and then puts the link back (for up to
//! [`LATE_ANSWER`]): a Raft append has only the heartbeat interval (50 ms), and a loaded
//! follower's fsync often takes longer, so dropping the link would cost a new TLS handshake
//! just when the peers are busiest. A link that fails is dropped. A peer holds at most
//! [`MAX_LINKS`] links open from this member: past that (a peer that takes requests but answers
//! none, as one whose disk stalls), calls go over HTTP instead of opening more.

use super::node::RaftNode;
use super::peers::Peers;
use hoist_proto::format::PeerVersion;
use hoist_proto::peer_link::{self, FrameError, Hello, Kind, Status};
use hoist_transport::client::PeerClients;
use hoist_transport::tls::{CertRole, TlsPeer, MEMBER_NAME};
use hoist_transport::{StreamIo, StreamService};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a link may sit unused in the pool: below the server's [`IDLE`], so that a caller
/// never sends on a link the server is closing.
const POOL_IDLE: Duration = Duration::from_secs(20);
/// How long a server keeps a link that carries no request.
const IDLE: Duration = Duration::from_secs(30);
/// How long opening a link may take (TCP, TLS, hello).
const OPEN_TIMEOUT: Duration = Duration::from_millis(500);
/// How long a peer that did not offer the link is called over HTTP before it is asked again.
pub const RETRY_UNSUPPORTED: Duration = Duration::from_secs(30);
/// How long a peer that could not be reached or refused the link is called over HTTP.
const RETRY_FAILED: Duration = Duration::from_secs(1);
/// The largest hello read: before it, the caller is not known to be a member.
const HELLO_MAX: usize = 4096;
/// Most idle links kept per peer.
const MAX_IDLE: usize = 8;
/// How long a late answer is waited for before its link is dropped.
const LATE_ANSWER: Duration = Duration::from_secs(10);
/// Most links open to one peer: idle, carrying a call, or waiting for a late answer.
const MAX_LINKS: usize = 16;

type Io = tokio_rustls::client::TlsStream<TcpStream>;

/// One open link.
struct Conn {
    io: Io,
    /// What the peer said of itself when the link opened.
    version: PeerVersion,
    /// When it was last put back in the pool.
    idle_since: Instant,
    /// Counts the link among its peer's open ones while it lives.
    _open: OpenLink,
}

/// One link counted as open to its peer, from its opening to its drop.
struct OpenLink(Arc<AtomicUsize>);

impl OpenLink {
    fn new(count: Arc<AtomicUsize>) -> OpenLink {
        count.fetch_add(1, Ordering::SeqCst);
        OpenLink(count)
    }
}

impl Drop for OpenLink {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Why a call on a link failed after it started: the request may have been delivered.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The peer answered, and refused the request (as an HTTP error status would).
    #[error("{addr} refused: {reason}")]
    Refused { addr: String, reason: String },
    /// No answer: the link broke or the time ran out.
    #[error("{addr}: no answer on the member link: {why}")]
    Lost { addr: String, why: String },
}

/// Why a link could not be opened.
enum Open {
    /// The peer does not offer the link (ALPN).
    Unsupported,
    Failed(String),
    /// Not open yet when the caller's time ran out (it will be pooled once open).
    Late,
}

/// The calling side (see the module doc).
pub struct Links {
    clients: Arc<PeerClients>,
    me: u64,
    peers: Arc<Peers>,
    idle: Arc<Pool>,
    /// Peers to call over HTTP until an instant.
    avoid: Mutex<HashMap<String, Instant>>,
}

impl std::fmt::Debug for Links {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Links").field("me", &self.me).finish()
    }
}

impl Links {
    pub fn new(me: u64, peers: Arc<Peers>, clients: Arc<PeerClients>) -> Links {
        Links {
            clients,
            me,
            peers,
            idle: Arc::default(),
            avoid: Mutex::default(),
        }
    }

    /// Sends a `kind` request with `body` in `format` to the member at `addr` (member `target`
    /// when known) and answers the peer's answer body and its format; `Ok(None)` when no link
    /// can be used (send it over HTTP; see the module doc).
    pub async fn call(
        &self,
        target: Option<u64>,
        addr: &str,
        kind: Kind,
        format: u32,
        body: &[u8],
        timeout: Duration,
    ) -> Result<Option<(u32, bytes::Bytes)>, LinkError> {
        let Some(config) = self.clients.stream_tls() else {
            return over_http(kind);
        };
        if !peer_link::fits(body.len()) || self.avoided(addr) {
            return over_http(kind);
        }
        let started = Instant::now();
        let conn = match self.take_open(addr) {
            Some(conn) => conn,
            None if self.idle.open_count(addr).load(Ordering::SeqCst) >= MAX_LINKS => {
                tracing::debug!(peer = addr, "{MAX_LINKS} member links busy; HTTP");
                return over_http(kind);
            }
            None => match self.open(addr, config, timeout).await {
                Ok(conn) => conn,
                // Not open within this call's time (a slow handshake under load): the link goes
                // to the pool when it opens, for the next call.
                Err(Open::Late) => {
                    crate::metrics::recorders().peer_request(kind.name(), "link");
                    return Err(LinkError::Lost {
                        addr: addr.to_string(),
                        why: format!(
                            "the link was not open within this call's {timeout:?}; \
                             it is kept for the next call once it opens"
                        ),
                    });
                }
                Err(Open::Unsupported) => {
                    tracing::debug!(peer = addr, "the member link is not offered; HTTP");
                    self.avoid(addr, RETRY_UNSUPPORTED);
                    return over_http(kind);
                }
                Err(Open::Failed(why)) => {
                    tracing::debug!(peer = addr, error = %why, "no member link; HTTP");
                    self.avoid(addr, RETRY_FAILED);
                    return over_http(kind);
                }
            },
        };
        crate::metrics::recorders().peer_request(kind.name(), "link");
        let left = timeout.saturating_sub(started.elapsed());
        let lost = |why: String| LinkError::Lost {
            addr: addr.to_string(),
            why,
        };
        let version = conn.version.clone();
        let exchange = exchange(
            conn,
            peer_link::encode_request(kind, format, body),
            addr.to_string(),
            self.idle.clone(),
        );
        let payload = match tokio::time::timeout(left, exchange).await {
            Ok(Ok(Ok(payload))) => payload,
            Ok(Ok(Err(e))) => return Err(lost(e.to_string())),
            Ok(Err(_)) => return Err(lost("the link's task ended".into())),
            Err(_) => return Err(lost(format!("no answer in {timeout:?}"))),
        };
        let (status, answered_in, _) =
            peer_link::decode_answer(&payload).map_err(|e| lost(e.to_string()))?;
        // The body without a copy: what follows the status and format bytes.
        let answer = bytes::Bytes::from(payload).slice(peer_link::HEAD - 4..);
        self.peers.record(target, Some(addr), version);
        if status == Status::Refused {
            // A refusal is an answer (the link went back to the pool).
            return Err(LinkError::Refused {
                addr: addr.to_string(),
                reason: String::from_utf8_lossy(&answer).into_owned(),
            });
        }
        Ok(Some((answered_in, answer)))
    }

    fn avoided(&self, addr: &str) -> bool {
        let mut avoid = self.avoid.lock().expect("links lock");
        match avoid.get(addr) {
            Some(until) if *until > Instant::now() => true,
            Some(_) => {
                avoid.remove(addr);
                false
            }
            None => false,
        }
    }

    fn avoid(&self, addr: &str, for_: Duration) {
        self.avoid
            .lock()
            .expect("links lock")
            .insert(addr.to_string(), Instant::now() + for_);
    }

    /// An idle link to `addr` that the peer has not closed. A link whose peer went away while
    /// it sat in the pool has its end of stream waiting: it is dropped here, before a request
    /// is written to it, so that the request goes on a new link (or over HTTP, which then says
    /// whether the peer can be reached) instead of being lost with an unknown outcome.
    fn take_open(&self, addr: &str) -> Option<Conn> {
        use futures::FutureExt;
        while let Some(mut conn) = self.idle.take(addr) {
            let mut byte = [0u8; 1];
            match conn.io.read(&mut byte).now_or_never() {
                // Nothing to read: open. (A peer sends nothing unasked.)
                None => return Some(conn),
                Some(_) => tracing::debug!(peer = addr, "a pooled member link was closed"),
            }
        }
        None
    }

    fn put(&self, addr: &str, conn: Conn) {
        self.idle.put(addr, conn);
    }

    /// Opens a link to `addr` for a call about to come, unless one is idle there: a follower
    /// that may soon stand for election asks its votes over links already open, where opening
    /// one first took about 44 ms on a loaded host (`raft/leader_loss.rs`). The link waits in the
    /// pool like any other.
    pub fn warm(&self, addr: &str) {
        let Some(config) = self.clients.stream_tls() else {
            return;
        };
        if self.avoided(addr) || self.idle.open_count(addr).load(Ordering::SeqCst) >= MAX_LINKS {
            return;
        }
        if let Some(conn) = self.take_open(addr) {
            self.put(addr, conn);
            return;
        }
        let (me, idle, owned) = (self.me, self.idle.clone(), addr.to_string());
        super::runtime::spawn(async move {
            match Self::opening(me, idle.clone(), owned.clone(), config).await {
                Ok(conn) => idle.put(&owned, conn),
                Err(Open::Failed(why)) => {
                    tracing::debug!(peer = owned, error = %why, "no member link opened ahead");
                }
                Err(_) => {}
            }
        });
    }

    /// Opens a link in a task of its own on Raft's runtime (`raft/runtime.rs`), whoever asks:
    /// its socket is then polled by Raft's threads, not by the API's. The caller waits up to
    /// `timeout`. A link that opens later, or after the caller was dropped, goes to the pool
    /// for the next call: openraft drops an append after the heartbeat interval (50 ms), and a
    /// handshake on a loaded host can take longer, so a new leader's first appends would
    /// otherwise abort every opening and never get a link.
    async fn open(
        &self,
        addr: &str,
        config: Arc<rustls::ClientConfig>,
        timeout: Duration,
    ) -> Result<Conn, Open> {
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        let (me, idle, owned) = (self.me, self.idle.clone(), addr.to_string());
        super::runtime::spawn(async move {
            let opened = Self::opening(me, idle.clone(), owned.clone(), config).await;
            if let Err(Ok(conn)) = tx.send(opened) {
                idle.put(&owned, conn);
            }
        });
        match tokio::time::timeout(timeout, &mut rx).await {
            Ok(Ok(opened)) => opened,
            Ok(Err(_)) => Err(Open::Failed("the opening task ended".into())),
            Err(_) => {
                // Opened just as the time ran out: sent, not received.
                rx.close();
                if let Ok(Ok(conn)) = rx.try_recv() {
                    self.put(addr, conn);
                }
                Err(Open::Late)
            }
        }
    }

    async fn opening(
        me: u64,
        idle: Arc<Pool>,
        addr: String,
        config: Arc<rustls::ClientConfig>,
    ) -> Result<Conn, Open> {
        let addr = addr.as_str();
        let failed = |what: &str, e: &dyn std::fmt::Display| Open::Failed(format!("{what}: {e}"));
        let opening = async {
            let tcp = TcpStream::connect(addr)
                .await
                .map_err(|e| failed("connect", &e))?;
            tcp.set_nodelay(true).map_err(|e| failed("nodelay", &e))?;
            let name = rustls::pki_types::ServerName::try_from(MEMBER_NAME)
                .map_err(|e| failed("name", &e))?;
            let mut io = tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await
                .map_err(|e| failed("TLS", &e))?;
            if io.get_ref().1.alpn_protocol() != Some(peer_link::ALPN) {
                return Err(Open::Unsupported);
            }
            let hello = Hello::this_build(me).to_bytes();
            let frame =
                peer_link::encode_request(Kind::Hello, hoist_proto::format::CURRENT, &hello);
            io.write_all(&frame)
                .await
                .map_err(|e| failed("hello", &e))?;
            io.flush().await.map_err(|e| failed("hello", &e))?;
            let payload = read_frame(&mut io, HELLO_MAX)
                .await
                .map_err(|e| failed("hello", &e))?;
            let (status, _, body) =
                peer_link::decode_answer(&payload).map_err(|e| failed("hello", &e))?;
            if status == Status::Refused {
                let reason = String::from_utf8_lossy(body);
                tracing::warn!(peer = addr, reason = %reason, "a member refused this member's link");
                return Err(Open::Failed(format!("refused: {reason}")));
            }
            let hello = Hello::from_bytes(body).map_err(|e| failed("hello", &e))?;
            Ok(Conn {
                io,
                version: hello.peer_version(),
                idle_since: Instant::now(),
                _open: OpenLink::new(idle.open_count(addr)),
            })
        };
        match tokio::time::timeout(OPEN_TIMEOUT, opening).await {
            Ok(result) => result,
            Err(_) => Err(Open::Failed(format!("not open in {OPEN_TIMEOUT:?}"))),
        }
    }
}

/// Sends `frame` on `conn` and reads the answer in a task of its own, which puts the link back
/// in `pool` once the answer is read: also when the caller stopped waiting (its time ran out,
/// or it was dropped), so that a late answer does not cost the link.
fn exchange(
    mut conn: Conn,
    frame: Vec<u8>,
    addr: String,
    pool: Arc<Pool>,
) -> tokio::task::JoinHandle<std::io::Result<Vec<u8>>> {
    tokio::spawn(async move {
        let io = async {
            conn.io.write_all(&frame).await?;
            conn.io.flush().await?;
            read_frame(&mut conn.io, peer_link::MAX_FRAME).await
        };
        let payload = match tokio::time::timeout(LATE_ANSWER, io).await {
            Ok(result) => result?,
            Err(_) => return Err(std::io::ErrorKind::TimedOut.into()),
        };
        pool.put(&addr, conn);
        Ok(payload)
    })
}

/// Links by peer address: the idle ones, and how many are open.
#[derive(Default)]
struct Pool(Mutex<HashMap<String, PeerLinks>>);

#[derive(Default)]
struct PeerLinks {
    idle: Vec<Conn>,
    open: Arc<AtomicUsize>,
}

impl Pool {
    /// How many links to `addr` are open (a count that each link keeps while it lives).
    fn open_count(&self, addr: &str) -> Arc<AtomicUsize> {
        let mut links = self.0.lock().expect("links lock");
        links.entry(addr.to_string()).or_default().open.clone()
    }

    /// The most recently used idle link to `addr` that is not too old.
    fn take(&self, addr: &str) -> Option<Conn> {
        let mut links = self.0.lock().expect("links lock");
        let pool = &mut links.get_mut(addr)?.idle;
        while let Some(conn) = pool.pop() {
            if conn.idle_since.elapsed() < POOL_IDLE {
                return Some(conn);
            }
        }
        None
    }

    fn put(&self, addr: &str, mut conn: Conn) {
        conn.idle_since = Instant::now();
        let mut links = self.0.lock().expect("links lock");
        let pool = &mut links.entry(addr.to_string()).or_default().idle;
        if pool.len() < MAX_IDLE {
            pool.push(conn);
        }
    }
}

/// What [`Links::call`] answers for a request it leaves to HTTP (counted as such).
fn over_http(kind: Kind) -> Result<Option<(u32, bytes::Bytes)>, LinkError> {
    crate::metrics::recorders().peer_request(kind.name(), "http");
    Ok(None)
}

/// Reads one frame's payload (after its length), of at most `max` bytes.
async fn read_frame(io: &mut (impl AsyncRead + Unpin), max: usize) -> std::io::Result<Vec<u8>> {
    let mut prefix = [0u8; 4];
    io.read_exact(&mut prefix).await?;
    let len = peer_link::payload_len(prefix).map_err(invalid)?;
    if len > max {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("a frame of {len} bytes is over the limit of {max}"),
        ));
    }
    let mut payload = vec![0u8; len];
    io.read_exact(&mut payload).await?;
    Ok(payload)
}

fn invalid(e: FrameError) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, e)
}

/// The answering side (see the module doc).
#[derive(Debug)]
pub struct Server {
    node: RaftNode,
}

impl Server {
    pub fn new(node: RaftNode) -> Server {
        Server { node }
    }
}

impl StreamService for Server {
    fn serve(
        &self,
        io: Box<dyn StreamIo>,
        peer: TlsPeer,
    ) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        let node = self.node.clone();
        // On Raft's own runtime (`raft/runtime.rs`): a follower's answers do not wait behind
        // the API's.
        Box::pin(super::runtime::run(async move {
            if let Err(e) = serve(&node, io, peer).await {
                tracing::debug!(error = %e, "member link closed");
            }
        }))
    }
}

/// The member a link's client certificate names, if it is one of this cluster's members.
fn admitted(node: &RaftNode, peer: &TlsPeer) -> Result<u64, String> {
    let Some(cert) = &peer.identity else {
        return Err("the member link needs a member's certificate".into());
    };
    let id = (cert.role == CertRole::Member)
        .then(|| cert.id.parse::<u64>().ok())
        .flatten()
        .ok_or_else(|| {
            format!(
                "a {} certificate cannot open a member link: only members' can",
                cert.role.as_str()
            )
        })?;
    if !node.admits_member(id) {
        return Err(format!(
            "member {id} is not a member of this cluster (removed)"
        ));
    }
    Ok(id)
}

/// Answers a refusal and closes the link.
async fn refuse(io: &mut (impl AsyncWrite + Unpin), format: u32, why: &str) -> std::io::Result<()> {
    answer(io, Status::Refused, format, why.as_bytes()).await?;
    io.shutdown().await
}

async fn answer(
    io: &mut (impl AsyncWrite + Unpin),
    status: Status,
    format: u32,
    body: &[u8],
) -> std::io::Result<()> {
    let frame = if peer_link::fits(body.len()) {
        peer_link::encode_answer(status, format, body)
    } else {
        let why = format!("an answer of {} bytes does not fit in a frame", body.len());
        peer_link::encode_answer(Status::Refused, format, why.as_bytes())
    };
    io.write_all(&frame).await?;
    io.flush().await
}

async fn serve(node: &RaftNode, mut io: Box<dyn StreamIo>, peer: TlsPeer) -> std::io::Result<()> {
    let format = hoist_proto::format::CURRENT;
    // Read before the client is known to be a member: a hello's size, never a frame's.
    let payload = match tokio::time::timeout(OPEN_TIMEOUT, read_frame(&mut io, HELLO_MAX)).await {
        Ok(Ok(payload)) => payload,
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::InvalidData => {
            return refuse(&mut io, format, &format!("not a hello: {e}")).await;
        }
        Ok(Err(e)) => return Err(e),
        Err(_) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "no hello",
            ))
        }
    };
    let (kind, _, body) = peer_link::decode_request(&payload).map_err(invalid)?;
    let hello = match (kind, admitted(node, &peer)) {
        (Ok(Kind::Hello), Ok(id)) => match Hello::from_bytes(body) {
            Ok(hello) if hello.member == id => hello,
            Ok(hello) => {
                let why = format!(
                    "the hello names member {} and the certificate member {id}",
                    hello.member
                );
                return refuse(&mut io, format, &why).await;
            }
            Err(e) => return refuse(&mut io, format, &e.to_string()).await,
        },
        (Ok(Kind::Hello), Err(why)) => {
            tracing::warn!(reason = %why, "member link refused");
            return refuse(&mut io, format, &why).await;
        }
        _ => {
            return refuse(&mut io, format, "a member link starts with a hello").await;
        }
    };
    let member = hello.member;
    let version = hello.peer_version();
    answer(
        &mut io,
        Status::Ok,
        format,
        &Hello::this_build(node.id()).to_bytes(),
    )
    .await?;
    match requests(node, &mut io, &peer, member, version).await {
        Err(e) if closed_by_peer(&e) => {
            node.member_link_closed(member);
            match e.kind() {
                std::io::ErrorKind::UnexpectedEof => Ok(()),
                _ => Err(e),
            }
        }
        end => end,
    }
}

/// Whether a link ended because its other end went away (closed, or its process died), rather
/// than by this member's choice.
fn closed_by_peer(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        UnexpectedEof | ConnectionReset | ConnectionAborted | BrokenPipe
    )
}

/// Answers `member`'s requests on an open link until it closes (an error) or stays idle for
/// [`IDLE`].
async fn requests(
    node: &RaftNode,
    io: &mut Box<dyn StreamIo>,
    peer: &TlsPeer,
    member: u64,
    version: PeerVersion,
) -> std::io::Result<()> {
    loop {
        let payload = match tokio::time::timeout(IDLE, read_frame(io, peer_link::MAX_FRAME)).await {
            Ok(result) => result?,
            Err(_) => return Ok(()),
        };
        let (kind, format, body) = peer_link::decode_request(&payload).map_err(invalid)?;
        if let Err(why) = admitted(node, peer) {
            return refuse(io, format, &why).await;
        }
        let out = match kind {
            Ok(Kind::Hello) => Err("a member link says hello once".to_string()),
            Ok(kind) => node
                .handle_rpc(kind.name(), body, format, Some(member), version.clone())
                .await
                .map_err(|e| e.to_string()),
            Err(code) => Err(format!("no member link request with code {code}")),
        };
        match out {
            Ok(body) => answer(io, Status::Ok, format, &body).await?,
            Err(why) => answer(io, Status::Refused, format, why.as_bytes()).await?,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hoist_transport::pki::{self, Subject};
    use hoist_transport::tls::{self, Identity, Trust};
    use std::time::SystemTime;

    fn issue(ca: &pki::Ca, id: &str) -> Identity {
        let key = pki::new_key().unwrap();
        let csr = pki::request(&key, CertRole::Member, id).unwrap();
        let subject = Subject {
            role: CertRole::Member,
            id: id.into(),
            addresses: vec!["127.0.0.1".parse().unwrap()],
        };
        let cert = pki::sign(ca, &csr, &subject, SystemTime::now(), pki::CERT_LIFETIME).unwrap();
        Identity::from_pem(&format!("{cert}{}", ca.cert_pem), &key).unwrap()
    }

    /// Links of member 2, with a certificate of `ca` when `tls`.
    fn links(ca: &pki::Ca, tls: bool) -> Links {
        let clients = Arc::new(PeerClients::new(super::super::network::plain_peer_client()));
        if tls {
            let roots = tls::certs_from_pem(&ca.cert_pem).unwrap();
            let mut config = tls::client_config(Trust::Roots(roots), Some(issue(ca, "2"))).unwrap();
            config.alpn_protocols = vec![peer_link::ALPN.to_vec()];
            clients.set_stream_tls(Arc::new(config));
        }
        Links::new(2, Arc::default(), clients)
    }

    /// Member 1 of `ca` listening on loopback, serving `link` when given (offered by ALPN) and
    /// HTTP; answers its address.
    async fn member(ca: &pki::Ca, link: Option<Arc<dyn StreamService>>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let roots = tls::certs_from_pem(&ca.cert_pem).unwrap();
        let offered: &[&[u8]] = if link.is_some() {
            &[peer_link::ALPN]
        } else {
            &[]
        };
        let config = tls::server_config_alpn(issue(ca, "1"), &roots, offered).unwrap();
        let (keep, rx) = tokio::sync::watch::channel(Some(config));
        let streams = link.map(|l| (peer_link::ALPN, l)).into_iter().collect();
        tokio::spawn(async move {
            let _keep = keep;
            hoist_transport::serve_tls_with(
                listener,
                axum::Router::new(),
                hoist_transport::Limits::default(),
                rx,
                streams,
                std::future::pending(),
            )
            .await
        });
        addr
    }

    /// A peer that speaks the link: answers the hello after `delay`, then echoes each body (a
    /// body that starts with "slow" after `delay` too), and counts the links it serves.
    struct SlowEcho {
        delay: Duration,
        links: Arc<AtomicUsize>,
    }

    impl SlowEcho {
        fn new(delay: Duration) -> SlowEcho {
            SlowEcho {
                delay,
                links: Arc::default(),
            }
        }
    }

    impl StreamService for SlowEcho {
        fn serve(
            &self,
            mut io: Box<dyn StreamIo>,
            _peer: TlsPeer,
        ) -> Pin<Box<dyn Future<Output = ()> + Send>> {
            let delay = self.delay;
            self.links.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                let _hello = read_frame(&mut io, HELLO_MAX).await;
                tokio::time::sleep(delay).await;
                let hello = Hello::this_build(1).to_bytes();
                let _ = answer(&mut io, Status::Ok, 2, &hello).await;
                while let Ok(payload) = read_frame(&mut io, peer_link::MAX_FRAME).await {
                    let (_, format, body) = peer_link::decode_request(&payload).unwrap();
                    if body.starts_with(b"slow") {
                        tokio::time::sleep(delay).await;
                    }
                    let _ = answer(&mut io, Status::Ok, format, body).await;
                }
            })
        }
    }

    /// Member 2's links to a member 1 that answers a hello (and a body that starts with "slow")
    /// after 150 ms, its address, and its count of links served.
    async fn slow_member() -> (Links, String, Arc<AtomicUsize>) {
        hoist_common::init_tls();
        let ca = pki::make_ca("test", SystemTime::now()).unwrap();
        let echo = SlowEcho::new(Duration::from_millis(150));
        let served = echo.links.clone();
        let addr = member(&ca, Some(Arc::new(echo))).await;
        (links(&ca, true), addr, served)
    }

    /// Once the slow hello is answered, a short call finds the link in the pool.
    async fn the_next_call_uses_the_pooled_link(links: &Links, addr: &str) {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let short = Duration::from_millis(50);
        let call = links.call(Some(1), addr, Kind::Append, 2, b"second", short);
        let (format, body) = call.await.unwrap().expect("the pooled link");
        assert_eq!((format, &body[..]), (2, &b"second"[..]));
    }

    /// A link that opens after a call's time has run out (a slow handshake under load) fails
    /// that call and is kept: the next call uses it. Answers come back with their format.
    #[tokio::test]
    async fn a_link_opened_too_late_for_its_call_serves_the_next() {
        let (links, addr, served) = slow_member().await;
        let short = Duration::from_millis(50);
        let call = links.call(Some(1), &addr, Kind::Append, 2, b"first", short);
        match call.await {
            Err(LinkError::Lost { why, .. }) => assert!(why.contains("not open within"), "{why}"),
            other => panic!("expected a late link, got {other:?}"),
        }
        the_next_call_uses_the_pooled_link(&links, &addr).await;
        assert_eq!(served.load(Ordering::SeqCst), 1, "one link opened");
    }

    /// A link opened ahead (a follower about to stand for election) waits in the pool: the next
    /// call uses it without opening one, and warming a peer with an idle link opens none.
    #[tokio::test]
    async fn a_link_opened_ahead_serves_the_next_call() {
        let (links, addr, served) = slow_member().await;
        links.warm(&addr);
        the_next_call_uses_the_pooled_link(&links, &addr).await;
        links.warm(&addr);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(served.load(Ordering::SeqCst), 1, "one link opened");
    }

    /// openraft does not wait for an append's answer past its time: it drops the call. A link
    /// still opening then is not dropped with it, and serves the next call: a new leader whose
    /// handshakes take longer than the heartbeat interval still gets its links.
    #[tokio::test]
    async fn a_link_opening_when_its_call_is_dropped_serves_the_next() {
        let (links, addr, served) = slow_member().await;
        // Dropped as openraft drops it, before the call's own time runs out.
        let call = links.call(
            Some(1),
            &addr,
            Kind::Append,
            2,
            b"first",
            Duration::from_secs(2),
        );
        let dropped = tokio::time::timeout(Duration::from_millis(50), call).await;
        assert!(dropped.is_err(), "{dropped:?}");
        the_next_call_uses_the_pooled_link(&links, &addr).await;
        assert_eq!(served.load(Ordering::SeqCst), 1, "one link opened");
    }

    /// A call whose answer comes after its time ran out leaves the link to be drained: the late
    /// answer is not taken for the next call's, and the next call after it uses the same link.
    #[tokio::test]
    async fn a_late_answer_keeps_its_link() {
        let (links, addr, served) = slow_member().await;
        let (short, long) = (Duration::from_millis(50), Duration::from_secs(2));
        links
            .call(Some(1), &addr, Kind::Append, 2, b"open", long)
            .await
            .unwrap()
            .unwrap();
        let call = links.call(Some(1), &addr, Kind::Append, 2, b"slow answer", short);
        match call.await {
            Err(LinkError::Lost { why, .. }) => assert!(why.contains("no answer"), "{why}"),
            other => panic!("expected no answer in time, got {other:?}"),
        }
        let back = Instant::now();
        while links
            .idle
            .0
            .lock()
            .unwrap()
            .get(&addr)
            .map_or(0, |p| p.idle.len())
            == 0
        {
            assert!(back.elapsed() < long, "the drained link never came back");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let (_, body) = links
            .call(Some(1), &addr, Kind::Append, 2, b"next", long)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&body[..], b"next");
        assert_eq!(served.load(Ordering::SeqCst), 1, "links opened");
    }

    /// A peer that takes requests and answers none (as one whose disk stalls): answers the hello,
    /// then reads on. Counts the links it serves.
    struct Mute {
        links: Arc<AtomicUsize>,
    }

    impl StreamService for Mute {
        fn serve(
            &self,
            mut io: Box<dyn StreamIo>,
            _peer: TlsPeer,
        ) -> Pin<Box<dyn Future<Output = ()> + Send>> {
            self.links.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                let _hello = read_frame(&mut io, HELLO_MAX).await;
                let hello = Hello::this_build(1).to_bytes();
                let _ = answer(&mut io, Status::Ok, 2, &hello).await;
                while read_frame(&mut io, peer_link::MAX_FRAME).await.is_ok() {}
            })
        }
    }

    /// Calls to a peer that answers none wait for their late answers on at most [`MAX_LINKS`]
    /// links; the calls after that go over HTTP instead of opening more.
    #[tokio::test]
    async fn a_peer_that_answers_nothing_gets_a_bounded_number_of_links() {
        hoist_common::init_tls();
        let ca = pki::make_ca("test", SystemTime::now()).unwrap();
        let served = Arc::new(AtomicUsize::new(0));
        let addr = member(
            &ca,
            Some(Arc::new(Mute {
                links: served.clone(),
            })),
        )
        .await;
        let links = links(&ca, true);
        let short = Duration::from_millis(100);
        let mut over_http = 0;
        for _ in 0..MAX_LINKS + 4 {
            match links
                .call(Some(1), &addr, Kind::Append, 2, b"append", short)
                .await
            {
                Err(LinkError::Lost { .. }) => {}
                Ok(None) => over_http += 1,
                other => panic!("expected no answer, or HTTP, got {other:?}"),
            }
        }
        assert_eq!(served.load(Ordering::SeqCst), MAX_LINKS, "links opened");
        assert_eq!(over_http, 4, "calls past the limit");
    }

    /// A member that serves TLS but not the link (an older build): the call is left to HTTP,
    /// and the link is not asked for again until [`RETRY_UNSUPPORTED`] has passed. Without a
    /// certificate, or to a member that cannot be reached, the call is left to HTTP too.
    #[tokio::test]
    async fn a_call_the_link_cannot_carry_is_left_to_http() {
        hoist_common::init_tls();
        let ca = pki::make_ca("test", SystemTime::now()).unwrap();
        let addr = member(&ca, None).await;
        let second = Duration::from_secs(1);
        let with_tls = links(&ca, true);
        let call = with_tls.call(Some(1), &addr, Kind::Vote, 2, b"vote", second);
        assert!(matches!(call.await, Ok(None)));
        assert!(with_tls.avoided(&addr), "asked again at once");

        let without = links(&ca, false);
        let call = without.call(Some(1), &addr, Kind::Vote, 2, b"vote", second);
        assert!(matches!(call.await, Ok(None)));

        let nobody = "127.0.0.1:1";
        let call = with_tls.call(Some(3), nobody, Kind::Append, 2, b"append", second);
        assert!(matches!(call.await, Ok(None)));
        assert!(with_tls.avoided(nobody));
    }
}
