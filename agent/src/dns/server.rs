//! The DNS server's loops: UDP and TCP on one address, answers built with hickory-proto (the wire
//! format is never hand-written), lookups in the shared [`Registry`].

use super::names::{Lookup, Registry};
use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::{rdata::A, RData, Record, RecordType};
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

/// TTL of the records we answer.
pub const TTL: u32 = 5;
/// The largest query we read; anything longer is malformed for our purposes.
const MAX_QUERY: usize = 4096;
/// How long the host's resolvers get before the client is told SERVFAIL.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);

/// Where the server listens and where other names go.
#[derive(Debug, Clone)]
pub struct DnsConfig {
    pub listen: SocketAddr,
    /// The host's resolvers (`--dns-upstream`); empty: SERVFAIL for names that are not ours.
    pub upstreams: Vec<SocketAddr>,
    /// Queries per second one source address may send over UDP; beyond, its queries are dropped
    /// so that one flooding container cannot starve the others. `None`: no limit.
    pub per_source_qps: Option<u32>,
}

/// The default per-source limit: far above what any program resolving names needs.
pub const PER_SOURCE_QPS: u32 = 20_000;

/// A per-source rate limit over windows of 100 ms (pure; the clock is passed in).
#[derive(Debug)]
pub struct Limiter {
    per_window: u32,
    windows: std::collections::HashMap<std::net::IpAddr, (std::time::Instant, u32)>,
}

impl Limiter {
    const WINDOW: Duration = Duration::from_millis(100);

    pub fn new(qps: u32) -> Limiter {
        Limiter {
            per_window: (qps / 10).max(1),
            windows: Default::default(),
        }
    }

    /// Whether a query from `ip` at `now` is answered.
    pub fn allow(&mut self, ip: std::net::IpAddr, now: std::time::Instant) -> bool {
        if self.windows.len() > 4096 {
            self.windows
                .retain(|_, (start, _)| now.duration_since(*start) < Self::WINDOW);
        }
        let w = self.windows.entry(ip).or_insert((now, 0));
        if now.duration_since(w.0) >= Self::WINDOW {
            *w = (now, 0);
        }
        w.1 += 1;
        w.1 <= self.per_window
    }
}

/// The table the server answers from; the endpoints watch replaces it.
pub type Table = Arc<RwLock<Arc<Registry>>>;

/// What to do with one query.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    Reply(Vec<u8>),
    /// Not ours: relay the query to the host's resolvers.
    Forward,
    /// Not even a header to answer to.
    Drop,
}

/// Answers one query from `registry` (pure apart from the table read).
pub fn answer(query: &[u8], registry: &Registry) -> Action {
    let req = match Message::from_vec(query) {
        Ok(m) => m,
        Err(_) => {
            // FORMERR when at least the id is there, as resolvers expect.
            return if query.len() >= 2 {
                let id = u16::from_be_bytes([query[0], query[1]]);
                reply(&Message::error_msg(
                    id,
                    OpCode::Query,
                    ResponseCode::FormErr,
                ))
            } else {
                Action::Drop
            };
        }
    };
    if req.metadata.message_type != MessageType::Query {
        return Action::Drop;
    }
    let mut resp = Message::new(req.metadata.id, MessageType::Response, req.metadata.op_code);
    resp.metadata.recursion_desired = req.metadata.recursion_desired;
    resp.metadata.recursion_available = true;
    if req.metadata.op_code != OpCode::Query || req.queries.len() != 1 {
        resp.metadata.response_code = ResponseCode::NotImp;
        resp.add_queries(req.queries.clone());
        return reply(&resp);
    }
    let q = &req.queries[0];
    resp.add_query(q.clone());
    match registry.lookup(&q.name().to_ascii()) {
        Lookup::NotOurs => Action::Forward,
        Lookup::NoSuchName => {
            resp.metadata.authoritative = true;
            resp.metadata.response_code = ResponseCode::NXDomain;
            reply(&resp)
        }
        Lookup::Addresses(mut addrs) => {
            resp.metadata.authoritative = true;
            if matches!(q.query_type(), RecordType::A | RecordType::ANY) && !addrs.is_empty() {
                // Spread clients over the replicas: each query starts at another one.
                let n = addrs.len();
                addrs.rotate_left(usize::from(req.metadata.id) % n);
                for ip in addrs {
                    resp.add_answer(Record::from_rdata(q.name().clone(), TTL, RData::A(A(ip))));
                }
            }
            reply(&resp)
        }
    }
}

fn reply(m: &Message) -> Action {
    match m.to_vec() {
        Ok(b) => Action::Reply(b),
        Err(_) => Action::Drop,
    }
}

/// SERVFAIL for `query` (its id and question), when the host's resolvers cannot answer.
fn servfail(query: &[u8]) -> Option<Vec<u8>> {
    let req = Message::from_vec(query).ok()?;
    let mut resp = Message::new(req.metadata.id, MessageType::Response, req.metadata.op_code);
    resp.metadata.recursion_desired = req.metadata.recursion_desired;
    resp.metadata.recursion_available = true;
    resp.metadata.response_code = ResponseCode::ServFail;
    resp.add_queries(req.queries);
    resp.to_vec().ok()
}

/// Relays `query` to the first upstream that answers in time; SERVFAIL otherwise.
async fn forward(query: Vec<u8>, upstreams: Arc<Vec<SocketAddr>>) -> Option<Vec<u8>> {
    for up in upstreams.iter() {
        let bind: SocketAddr = if up.is_ipv4() {
            "0.0.0.0:0".parse().expect("literal")
        } else {
            "[::]:0".parse().expect("literal")
        };
        let Ok(sock) = UdpSocket::bind(bind).await else {
            continue;
        };
        if sock.connect(up).await.is_err() || sock.send(&query).await.is_err() {
            continue;
        }
        let mut buf = vec![0u8; 65535];
        if let Ok(Ok(n)) = tokio::time::timeout(UPSTREAM_TIMEOUT, sock.recv(&mut buf)).await {
            if n >= 2 && buf[..2] == query[..2] {
                buf.truncate(n);
                return Some(buf);
            }
        }
    }
    servfail(&query)
}

fn current(table: &Table) -> Arc<Registry> {
    table.read().unwrap_or_else(|p| p.into_inner()).clone()
}

/// Binds UDP and TCP on `cfg.listen` and serves until the process ends.
pub async fn start(cfg: DnsConfig, table: Table) -> std::io::Result<()> {
    let udp = Arc::new(UdpSocket::bind(cfg.listen).await?);
    let tcp = TcpListener::bind(cfg.listen).await?;
    let upstreams = Arc::new(cfg.upstreams);
    tracing::info!(listen = %cfg.listen, upstreams = ?upstreams, per_source_qps = ?cfg.per_source_qps, "cluster DNS serving");
    // Two receivers on one socket: one per core here, and a slow send never stalls all reads.
    // Each keeps half of the per-source budget.
    for _ in 0..2 {
        let limiter = cfg.per_source_qps.map(|q| Limiter::new(q / 2));
        tokio::spawn(serve_udp(
            udp.clone(),
            table.clone(),
            upstreams.clone(),
            limiter,
        ));
    }
    tokio::spawn(serve_tcp(tcp, table, upstreams));
    Ok(())
}

async fn serve_udp(
    sock: Arc<UdpSocket>,
    table: Table,
    upstreams: Arc<Vec<SocketAddr>>,
    mut limiter: Option<Limiter>,
) {
    let mut buf = vec![0u8; MAX_QUERY + 1];
    loop {
        let (n, peer) = match sock.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) => {
                tracing::debug!("dns recv: {e}");
                continue;
            }
        };
        if let Some(l) = limiter.as_mut() {
            if !l.allow(peer.ip(), std::time::Instant::now()) {
                continue; // a flood from one source: drop it, keep answering the others
            }
        }
        if n > MAX_QUERY {
            continue; // oversized (the kernel cut it): not a query we take
        }
        match answer(&buf[..n], &current(&table)) {
            Action::Reply(b) => {
                let _ = sock.send_to(&b, peer).await;
            }
            Action::Forward => {
                let (sock, q, ups) = (sock.clone(), buf[..n].to_vec(), upstreams.clone());
                tokio::spawn(async move {
                    if let Some(b) = forward(q, ups).await {
                        let _ = sock.send_to(&b, peer).await;
                    }
                });
            }
            Action::Drop => {}
        }
    }
}

async fn serve_tcp(listener: TcpListener, table: Table, upstreams: Arc<Vec<SocketAddr>>) {
    loop {
        let Ok((mut conn, _)) = listener.accept().await else {
            continue;
        };
        let (table, upstreams) = (table.clone(), upstreams.clone());
        tokio::spawn(async move {
            loop {
                let len = match tokio::time::timeout(Duration::from_secs(10), conn.read_u16()).await
                {
                    Ok(Ok(l)) => usize::from(l),
                    _ => return,
                };
                if len > MAX_QUERY {
                    return; // a 64 KiB "query": close, never buffer it
                }
                let mut q = vec![0u8; len];
                if !matches!(
                    tokio::time::timeout(Duration::from_secs(10), conn.read_exact(&mut q)).await,
                    Ok(Ok(_))
                ) {
                    return;
                }
                let out = match answer(&q, &current(&table)) {
                    Action::Reply(b) => b,
                    Action::Forward => match forward(q, upstreams.clone()).await {
                        Some(b) => b,
                        None => return,
                    },
                    Action::Drop => return,
                };
                let Ok(l) = u16::try_from(out.len()) else {
                    return;
                };
                if conn.write_u16(l).await.is_err() || conn.write_all(&out).await.is_err() {
                    return;
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Query;
    use hickory_proto::rr::Name;
    use hoist_proto::node::{ReplicaAddress, ServiceAddresses, ServiceEndpoints};
    use std::str::FromStr;

    fn registry() -> Registry {
        Registry::from_endpoints(&ServiceEndpoints {
            index: 3,
            term: 1,
            services: vec![ServiceAddresses {
                service: "api".into(),
                replicas: vec![
                    ReplicaAddress {
                        slot: 0,
                        task: "a".into(),
                        node: "n1".into(),
                        address: "10.200.0.2".into(),
                    },
                    ReplicaAddress {
                        slot: 1,
                        task: "b".into(),
                        node: "n2".into(),
                        address: "10.200.1.2".into(),
                    },
                ],
                ..Default::default()
            }],
            ..Default::default()
        })
    }

    fn query(id: u16, name: &str, t: RecordType) -> Vec<u8> {
        let mut m = Message::new(id, MessageType::Query, OpCode::Query);
        m.metadata.recursion_desired = true;
        m.add_query(Query::query(Name::from_str(name).unwrap(), t));
        m.to_vec().unwrap()
    }

    fn parse(a: Action) -> Message {
        match a {
            Action::Reply(b) => Message::from_vec(&b).unwrap(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_records_rotate_per_query() {
        let r = registry();
        let m = parse(answer(&query(7, "api.", RecordType::A), &r));
        assert_eq!(m.metadata.id, 7);
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert_eq!(m.answers.len(), 2);
        assert!(m.answers.iter().all(|a| a.ttl == TTL));
        let first = |id| {
            parse(answer(&query(id, "api.", RecordType::A), &r)).answers[0]
                .data
                .clone()
        };
        assert_ne!(first(0), first(1), "another replica first");
        let aaaa = parse(answer(&query(8, "tasks.api.", RecordType::AAAA), &r));
        assert_eq!(
            (aaaa.metadata.response_code, aaaa.answers.len()),
            (ResponseCode::NoError, 0)
        );
    }

    #[test]
    fn unknown_is_nxdomain_and_others_are_forwarded() {
        let r = registry();
        let m = parse(answer(&query(9, "nope.", RecordType::A), &r));
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
        assert_eq!(
            answer(&query(9, "example.com.", RecordType::A), &r),
            Action::Forward
        );
    }

    #[test]
    fn garbage_gets_formerr_or_nothing() {
        let r = registry();
        assert_eq!(answer(&[1], &r), Action::Drop);
        let m = parse(answer(&[0x12, 0x34, 0xff, 0xff, 0, 9], &r));
        assert_eq!(
            (m.metadata.id, m.metadata.response_code),
            (0x1234, ResponseCode::FormErr)
        );
        // A name of 300 labels cannot be a DNS name (255 bytes at most).
        let mut q = query(5, "a.", RecordType::A);
        q.truncate(12);
        for _ in 0..300 {
            q.extend_from_slice(&[1, b'a']);
        }
        q.extend_from_slice(&[0, 0, 1, 0, 1]);
        let m = parse(answer(&q, &r));
        assert_eq!(m.metadata.response_code, ResponseCode::FormErr);
    }

    #[test]
    fn a_flooding_source_is_cut_and_others_are_not() {
        let mut l = Limiter::new(1000); // 100 per 100 ms
        let t0 = std::time::Instant::now();
        let (flood, quiet): (std::net::IpAddr, std::net::IpAddr) =
            ("10.200.0.5".parse().unwrap(), "10.200.0.6".parse().unwrap());
        let answered = (0..500).filter(|_| l.allow(flood, t0)).count();
        assert_eq!(answered, 100);
        assert!(l.allow(quiet, t0), "another container is still answered");
        assert!(
            l.allow(flood, t0 + Duration::from_millis(100)),
            "the next window"
        );
    }

    #[tokio::test]
    async fn no_upstream_is_servfail_at_once() {
        let t = std::time::Instant::now();
        let out = forward(query(4, "example.com.", RecordType::A), Arc::new(vec![]))
            .await
            .unwrap();
        let m = Message::from_vec(&out).unwrap();
        assert_eq!(
            (m.metadata.id, m.metadata.response_code),
            (4, ResponseCode::ServFail)
        );
        // Well under the upstream timeout: it did not wait for one (a loaded machine may take
        // tens of milliseconds to schedule the task at all).
        assert!(t.elapsed() < UPSTREAM_TIMEOUT / 2, "{:?}", t.elapsed());
    }
}
